"""`aligner view` / `viz.view`: the self-contained page (fast tests), then the
page in a real browser (headless Chromium driven by selenium): playback,
boundary dragging, the downloaded TextGrid read back by Praat (parselmouth).

The browser tests skip, with the reason, where Chromium, chromedriver or
selenium are absent (`apt-get install chromium chromium-driver`,
`pip install selenium`); they share one browser (about 10 s in all)."""

from __future__ import annotations

import base64
import html
import io
import json
import math
import os
import re
import shutil
import time
from dataclasses import replace
from html.parser import HTMLParser
from pathlib import Path
from types import SimpleNamespace

import numpy as np
import pytest
import soundfile
from click.testing import CliRunner

import viz
from aligner.cli import main
from aligner.errors import AlignerError, AudioError, OutputError, TextGridError
from aligner.readers import read_textgrid, read_tiers
from aligner.records import Alignment
from aligner.writers import write_alignment
from viz.view import (
    SPECTROGRAM_MAX_COLUMNS,
    View,
    envelope_levels,
    page_tiers,
    read_alignment,
    spectrogram_levels,
    view_page,
    write_view,
)

ROOT = Path(__file__).resolve().parents[1]
EXAMPLE = ROOT / "examples" / "example.wav"
REFERENCE = ROOT / "examples" / "example.reference.TextGrid"
CHROMIUM = next(
    (p for p in (shutil.which("chromium"), shutil.which("chromium-browser"), shutil.which("google-chrome")) if p), None
)
CHROMEDRIVER = "/usr/bin/chromedriver" if os.path.exists("/usr/bin/chromedriver") else shutil.which("chromedriver")


# ------------------------------------------------------------------ fixtures


@pytest.fixture(scope="module")
def alignment() -> Alignment:
    """The example's human alignment (words and phones) with made-up scores:
    every fifth word from the third on scores 0.1 (low), the others 0.9."""
    human = read_textgrid(REFERENCE)
    words = tuple(
        replace(w, score=0.1 if k % 5 == 2 else 0.9, chars=tuple(replace(c, score=0.8) for c in w.chars))
        for k, w in enumerate(human.words)
    )
    return replace(human, words=words, audio=str(EXAMPLE), model="made-up")


@pytest.fixture(scope="module")
def files(tmp_path_factory, alignment) -> SimpleNamespace:
    folder = tmp_path_factory.mktemp("view")
    return SimpleNamespace(
        folder=folder,
        json=write_alignment(alignment, folder / "example.json"),
        textgrid=write_alignment(alignment, folder / "example.TextGrid"),
    )


def run(*args: str | os.PathLike):
    return CliRunner().invoke(main, ["view", *map(str, args)])


class _Elements(HTMLParser):
    """Attributes of the elements that carry data-tier."""

    def __init__(self):
        super().__init__()
        self.items: list[dict[str, str]] = []

    def handle_starttag(self, tag, attrs):
        attrs = dict(attrs)
        if "data-tier" in attrs:
            self.items.append(attrs)


class _Links(HTMLParser):
    """Values of every src and href attribute."""

    def __init__(self):
        super().__init__()
        self.values: list[str] = []

    def handle_starttag(self, tag, attrs):
        self.values += [value or "" for name, value in attrs if name in ("src", "href")]


def intervals(page: str, tier: str | None = None) -> list[dict[str, str]]:
    parser = _Elements()
    parser.feed(page)
    return [a for a in parser.items if tier is None or a["data-tier"] == tier]


def payload(page: str) -> dict:
    match = re.search(r'<script type="application/json" class="tv-data">(.*?)</script>', page, re.S)
    return json.loads(match.group(1))


# ------------------------------------------------------------- the page file


def test_page_is_one_self_contained_file(files, tmp_path):
    out = tmp_path / "page.html"
    result = run(EXAMPLE, files.json, "-o", out)
    assert result.exit_code == 0, result.output
    assert "wrote" in result.output and "tiers words, phones" in result.output
    assert os.listdir(tmp_path) == ["page.html"]  # one file, no leftovers
    page = out.read_text(encoding="utf-8")
    assert "http://" not in page and "https://" not in page and "//cdn" not in page
    # every src/href attribute is embedded data: no external script, style sheet, image or font
    links = _Links()
    links.feed(page)
    assert links.values and all(value.startswith("data:") for value in links.values), links.values
    assert "@import" not in page and "url(" not in page
    data = payload(page)
    audio = base64.b64decode(data["audio"]["data"])
    assert audio[:4] == b"OggS" and data["audio"]["mime"].startswith("audio/ogg")
    samples, rate = soundfile.read(io.BytesIO(audio))
    assert abs(len(samples) / rate - soundfile.info(EXAMPLE).duration) < 0.01
    assert len(audio) < 0.25 * EXAMPLE.stat().st_size  # compressed
    assert data["envelope"]["levels"] and data["spectrogram"]["levels"][0]["tiles"][0].startswith("data:image/jpeg")


def test_every_interval_has_its_data_attributes(files, alignment, tmp_path):
    page = (write_view(EXAMPLE, files.json, tmp_path / "p.html").path).read_text(encoding="utf-8")
    words, phones = intervals(page, "words"), intervals(page, "phones")
    assert len(words) == len(alignment.words) and len(phones) == len(alignment.chars)
    assert [w["data-label"] for w in words] == [w.text for w in alignment.words]
    for element, word in zip(words, alignment.words):
        assert float(element["data-start"]) == pytest.approx(word.start, abs=1e-6)
        assert float(element["data-end"]) == pytest.approx(word.end, abs=1e-6)
    assert all({"data-tier", "data-start", "data-end", "data-label", "data-index"} <= set(e) for e in words + phones)
    # low-confidence words are marked and carry their score for the hover text
    low = [w for w in words if "tv-low" in w["class"]]
    assert [w["data-label"] for w in low] == [w.text for w in alignment.words if w.score < 0.2]
    assert all("score 0.10" in w["title"] for w in low)


def test_textgrid_input_keeps_every_tier_and_boundary(tmp_path):
    page = view_page(REFERENCE, EXAMPLE)
    tiers = payload(page)["tiers"]
    original = read_tiers(REFERENCE)
    assert [t["name"] for t in tiers] == [t.name for t in original]
    for shown, tier in zip(tiers, original):
        assert shown["bounds"] == [tier.items[0][0]] + [end for _, end, _ in tier.items]
        assert shown["labels"] == [label for _, _, label in tier.items]
        assert shown["scores"] is None
        assert len(intervals(page, tier.name)) == sum(1 for _, _, label in tier.items if label)


def test_the_colour_key_is_shown_only_when_words_have_scores(files):
    key = "word score from red (0) to green (1)"
    scored = view_page(files.json, EXAMPLE, threshold=0.3)
    assert key in scored and "below 0.3" in scored
    plain = view_page(REFERENCE, EXAMPLE)  # a TextGrid: no scores, words drawn uncoloured
    assert key not in plain and "tv-iv tv-scored" not in plain and "tv-iv tv-scored" in scored


def test_json_reader_round_trip(files, alignment):
    back = read_alignment(files.json)
    assert [w.text for w in back.words] == [w.text for w in alignment.words]
    assert [w.score for w in back.words] == pytest.approx([w.score for w in alignment.words])
    assert back.phonetic == alignment.phonetic and len(back.chars) == len(alignment.chars)
    assert [t.name for t in page_tiers(files.json)[0]] == ["words", "phones"]
    assert [t.name for t in page_tiers(files.textgrid)[0]] == ["words", "phones"]


def test_tiers_option_selects_and_orders(files, tmp_path):
    out = tmp_path / "p.html"
    assert run(EXAMPLE, files.textgrid, "-o", out, "--tiers", "Phones, words").exit_code == 0
    page = out.read_text(encoding="utf-8")
    assert [t["name"] for t in payload(page)["tiers"]] == ["phones", "words"]
    assert run(EXAMPLE, files.textgrid, "-o", out, "--tiers", "words").exit_code == 0
    page = out.read_text(encoding="utf-8")
    assert not intervals(page, "phones") and len(intervals(page, "words")) == 19


def test_reference_shows_both_alignments_and_differences(files, alignment, tmp_path):
    shifted = replace(
        alignment, words=tuple(replace(w, start=w.start + 0.03, end=w.end + 0.03, chars=()) for w in alignment.words)
    )
    reference = write_alignment(shifted, tmp_path / "shifted.TextGrid")
    out = tmp_path / "p.html"
    result = run(EXAMPLE, files.json, "-o", out, "--reference", reference)
    assert result.exit_code == 0, result.output
    assert "vs reference: 19 words: MAE 30.0 ms" in result.output
    page = out.read_text(encoding="utf-8")
    data = payload(page)
    assert len(data["reference"]["pairs"]) == 19 and data["reference"]["tier"] == "words"
    assert len(intervals(page, "words")) == 19 and len(intervals(page, "reference:words")) == 19
    assert not intervals(page, "reference:phones")  # the shifted reference has empty phone tiers
    assert "tv-diff" in page


def test_default_output_is_beside_the_alignment(files, tmp_path):
    alignment = shutil.copy(files.textgrid, tmp_path / "mine.TextGrid")
    assert run(EXAMPLE, alignment).exit_code == 0
    assert (tmp_path / "mine.html").is_file()


def _corrupt(folder: Path, name: str, content: bytes | str) -> Path:
    path = folder / name
    path.write_bytes(content if isinstance(content, bytes) else content.encode())
    return path


@pytest.mark.parametrize(
    "case, message",
    [
        ("missing audio", r"not found|no such|does not exist"),
        ("corrupt audio", r"cannot (be )?decode|not.*audio|unreadable|cannot read"),
        ("missing alignment", r"TextGrid file not found"),
        ("malformed TextGrid", r"not a Praat TextGrid"),
        ("bad JSON", r"not valid JSON"),
        ("JSON not an alignment", r"not an alignment JSON file"),
        ("unknown tier", r"no tier named 'vowels' \(--tiers\); tiers present: 'words', 'phones'"),
        ("audio too short", r"after the end of the audio"),
        ("output is an input", r"refusing to overwrite an input"),
        ("not a page", r"must end in \.html"),
    ],
)
def test_bad_input_is_one_line_exit_2_and_no_output(case, message, files, tmp_path):
    out = tmp_path / "page.html"
    audio, alignment, extra = EXAMPLE, files.json, []
    if case == "missing audio":
        audio = tmp_path / "none.wav"
    elif case == "corrupt audio":
        audio = _corrupt(tmp_path, "noise.wav", b"RIFF not really a wave file" * 10)
    elif case == "missing alignment":
        alignment = tmp_path / "none.TextGrid"
    elif case == "malformed TextGrid":
        alignment = _corrupt(tmp_path, "bad.TextGrid", "hello")
    elif case == "bad JSON":
        alignment = _corrupt(tmp_path, "bad.json", '{"words": [')
    elif case == "JSON not an alignment":
        alignment = _corrupt(tmp_path, "other.json", '{"hello": 1}')
    elif case == "unknown tier":
        extra = ["--tiers", "words,vowels"]
    elif case == "audio too short":
        audio = tmp_path / "short.wav"
        soundfile.write(audio, np.zeros(8000, np.float32), 16000)
    elif case == "output is an input":
        alignment = shutil.copy(files.textgrid, tmp_path / "grid.TextGrid")
        os.link(alignment, out)  # the same file under an .html name
    elif case == "not a page":
        out = tmp_path / "page.TextGrid"
    before = sorted(os.listdir(tmp_path))
    result = run(audio, alignment, "-o", out, *extra)
    assert result.exit_code == 2, result.output
    lines = result.output.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("error: ") and re.search(message, lines[0]), lines
    assert sorted(os.listdir(tmp_path)) == before  # nothing written, no temporary file left
    if case == "output is an input":
        assert Path(alignment).read_text(encoding="utf-8").startswith('File type = "ooTextFile"')


def test_api_errors_are_aligner_errors(files, tmp_path):
    with pytest.raises(TextGridError, match=r"point tier"):
        grid = tmp_path / "points.TextGrid"
        grid.write_text(
            REFERENCE.read_text(encoding="utf-8").replace(
                'class = "IntervalTier"\n\t\tname = "phones"', 'class = "TextTier"\n\t\tname = "phones"'
            )
        )
        page_tiers(grid, ["phones"])
    with pytest.raises(AudioError, match=r"needs its sample_rate"):
        view_page(files.json, np.zeros(100))
    with pytest.raises(AudioError, match=r"no samples"):
        view_page(files.json, (np.zeros(0), 16000))
    with pytest.raises(AlignerError, match=r"unknown audio format 'mp3'"):
        view_page(files.json, EXAMPLE, audio_format="mp3")
    with pytest.raises(OutputError, match=r"refusing to overwrite an input"):
        write_view(EXAMPLE, files.json, files.json)


@pytest.mark.parametrize("fmt, magic, codec", [("flac", b"fLaC", "PCM_16"), ("opus", b"OggS", "OPUS")])
def test_other_audio_formats(files, fmt, magic, codec):
    data = payload(view_page(files.json, EXAMPLE, audio_format=fmt))["audio"]
    audio = base64.b64decode(data["data"])
    assert audio.startswith(magic) and soundfile.info(io.BytesIO(audio)).subtype == codec


@pytest.mark.slow
def test_long_recordings_ship_bounded_precomputed_levels():
    rate = 2000  # one hour, at a low rate to keep the test quick
    samples = (0.1 * np.sin(np.arange(3600 * rate) * 0.3)).astype(np.float32)
    envelope = envelope_levels(samples, rate)
    bins = [level["n"] for level in envelope["levels"]]
    assert bins[0] <= 1_500_000 and bins[-1] <= 1500 and all(a > b for a, b in zip(bins, bins[1:]))
    assert bins[0] * envelope["levels"][0]["bin"] == pytest.approx(3600, abs=0.01)
    spectrogram = spectrogram_levels(samples, rate)
    columns = [level["n"] for level in spectrogram["levels"]]
    assert columns[0] <= SPECTROGRAM_MAX_COLUMNS and columns[-1] <= 1500
    assert all(len(level["tiles"]) == math.ceil(level["n"] / level["tile"]) for level in spectrogram["levels"])


def test_repr_html_and_show(alignment, tmp_path):
    frame = alignment._repr_html_()
    assert frame.startswith("<iframe") and 'srcdoc="' in frame
    page = html.unescape(re.search(r'srcdoc="([^"]*)"', frame).group(1))
    assert len(intervals(page, "words")) == len(alignment.words)
    assert payload(page)["audio"] is None and 'class="tv-row tv-wave"' not in page  # tiers only, no playback
    shown = viz.show(alignment, EXAMPLE)
    assert isinstance(shown, View) and payload(shown.html)["audio"] is not None
    assert shown._repr_html_().startswith("<iframe")
    samples, rate = soundfile.read(EXAMPLE, dtype="float32")
    from_array = viz.show(alignment, samples, sample_rate=rate, tiers="words")
    assert [t["name"] for t in payload(from_array.html)["tiers"]] == ["words"]
    assert shown.save(tmp_path / "saved.html").read_text(encoding="utf-8") == shown.html
    # two views on one page never share ids
    assert re.search(r'id="(tv-[0-9a-f]+)"', shown.html).group(1) != re.search(
        r'id="(tv-[0-9a-f]+)"', from_array.html
    ).group(1)
    unplaceable = replace(alignment, duration=math.nan)
    assert unplaceable._repr_html_() is None  # falls back to the plain repr


# ------------------------------------------------------------ a real browser


def _browser_missing() -> str | None:
    try:
        import selenium  # noqa: F401
    except ImportError:
        return "selenium is not installed (pip install selenium)"
    if CHROMIUM is None:
        return "Chromium is not installed (apt-get install chromium)"
    if CHROMEDRIVER is None:
        return "chromedriver is not installed (apt-get install chromium-driver)"
    return None


@pytest.fixture(scope="module")
def browser(tmp_path_factory):
    """One headless Chromium for the module, downloads into a temporary folder."""
    missing = _browser_missing()
    if missing:
        pytest.skip(f"browser tests need Chromium, chromedriver and selenium: {missing}")
    os.environ.setdefault("SE_OFFLINE", "true")  # selenium-manager must not look for drivers online
    from selenium import webdriver
    from selenium.webdriver.chrome.service import Service

    options = webdriver.ChromeOptions()
    options.binary_location = CHROMIUM
    for argument in (
        "--headless=new",
        "--disable-gpu",
        "--disable-dev-shm-usage",
        "--window-size=1400,900",
        "--autoplay-policy=no-user-gesture-required",
        "--mute-audio",
    ):
        options.add_argument(argument)
    if hasattr(os, "geteuid") and os.geteuid() == 0:
        options.add_argument("--no-sandbox")
    options.set_capability("goog:loggingPrefs", {"browser": "ALL"})
    downloads = tmp_path_factory.mktemp("downloads")
    driver = webdriver.Chrome(service=Service(CHROMEDRIVER), options=options)
    driver.execute_cdp_cmd("Browser.setDownloadBehavior", {"behavior": "allow", "downloadPath": str(downloads)})
    driver.downloads = downloads
    yield driver
    driver.quit()


@pytest.fixture(scope="module")
def page(files):
    path = files.folder / "example.html"
    write_view(EXAMPLE, files.json, path)
    return path


def load(driver, path: Path) -> None:
    driver.get(path.as_uri())
    wait(
        lambda: driver.execute_script(
            "var r = document.querySelector('.tv-root'), a = r.querySelector('audio');"
            "return r.dataset.ready === '1' && (!a || a.readyState >= 2)"
        ),
        "the page to load",
    )


def wait(condition, what: str, timeout: float = 10.0):
    end = time.monotonic() + timeout
    while time.monotonic() < end:
        value = condition()
        if value:
            return value
        time.sleep(0.02)
    raise AssertionError(f"timed out waiting for {what}")


def severe(driver) -> list[str]:
    return [entry["message"] for entry in driver.get_log("browser") if entry["level"] == "SEVERE"]


def words_tier(driver) -> list[float]:
    return driver.execute_script("return document.querySelector('.tv-root').alignmentView.bounds('words')")


def test_browser_loads_from_file_without_errors(browser, page, alignment):
    from selenium.webdriver.common.by import By

    load(browser, page)
    assert severe(browser) == []
    assert len(browser.find_elements(By.CSS_SELECTOR, '[data-tier="words"]')) == len(alignment.words)
    assert len(browser.find_elements(By.CSS_SELECTOR, '[data-tier="phones"]')) == len(alignment.chars)
    shown = [e for e in browser.find_elements(By.CSS_SELECTOR, '[data-tier="words"]') if e.is_displayed()]
    assert len(shown) == len(alignment.words)  # the whole (short) recording is in view
    png = browser.get_screenshot_as_png()
    from PIL import Image

    image = Image.open(io.BytesIO(png)).convert("RGB")
    assert len(image.getcolors(maxcolors=1 << 20)) > 200  # waveform, spectrogram, score colours: not blank


def test_click_a_word_plays_exactly_it(browser, page, alignment):
    from selenium.webdriver.common.by import By

    load(browser, page)
    word = max(alignment.words, key=lambda w: w.duration)
    element = browser.find_element(By.CSS_SELECTOR, f'[data-tier="words"][data-label="{word.text}"]')
    start, end = float(element.get_attribute("data-start")), float(element.get_attribute("data-end"))
    element.click()
    seen = []
    deadline = time.monotonic() + word.duration + 3
    while time.monotonic() < deadline:
        now, paused = browser.execute_script(
            "var a = document.querySelector('audio'); return [a.currentTime, a.paused]"
        )
        if paused and seen:
            break
        if not paused:
            seen.append(now)
        time.sleep(0.03)
    assert seen and any(start < t < end for t in seen), (start, end, seen)
    assert all(start - 1e-3 <= t <= end + 0.05 for t in seen), (start, end, seen)
    now, paused = browser.execute_script("var a = document.querySelector('audio'); return [a.currentTime, a.paused]")
    assert paused and now == pytest.approx(end, abs=1e-3)  # stopped at the word's end
    assert severe(browser) == []


def test_drag_a_boundary_undo_and_download_the_textgrid(browser, page, files):
    import parselmouth
    from parselmouth.praat import call
    from selenium.webdriver.common.action_chains import ActionChains
    from selenium.webdriver.common.by import By
    from selenium.webdriver.common.keys import Keys

    load(browser, page)
    tiers = payload(page.read_text(encoding="utf-8"))["tiers"]
    words, phones = tiers[0]["bounds"], tiers[1]["bounds"]
    # a word boundary that is also a phone boundary, with room on both sides
    j = next(
        j
        for j in range(1, len(words) - 1)
        if words[j] in phones
        and min(words[j] - words[j - 1], words[j + 1] - words[j]) > 0.08
        and min(np.diff(phones)[phones.index(words[j]) - 1 : phones.index(words[j]) + 1]) > 0.04
    )
    k = phones.index(words[j])
    browser.execute_script(
        f"document.querySelector('.tv-root').alignmentView.setView({words[j] - 0.5}, {words[j] + 0.5})"
    )
    spp = float(browser.execute_script("return document.querySelector('.tv-root').dataset.secondsPerPixel"))
    handle = browser.find_element(By.CSS_SELECTOR, f'.tv-bd[data-boundary-tier="words"][data-index="{j}"]')
    pixels = 25
    ActionChains(browser).click_and_hold(handle).move_by_offset(pixels, 0).release().perform()
    moved = words[j] + pixels * spp
    assert words_tier(browser)[j] == pytest.approx(moved, abs=2e-6)
    element = browser.find_element(
        By.CSS_SELECTOR, f'[data-tier="words"][data-index="{j}"], [data-tier="words"][data-index="{j - 1}"]'
    )
    assert moved == pytest.approx(
        float(element.get_attribute("data-start" if element.get_attribute("data-index") == str(j) else "data-end")),
        abs=2e-6,
    )

    body = browser.find_element(By.TAG_NAME, "body")
    body.send_keys(Keys.CONTROL, "z")
    assert words_tier(browser)[j] == words[j]  # undone
    body.send_keys(Keys.CONTROL, "y")
    assert words_tier(browser)[j] == pytest.approx(moved, abs=2e-6)  # redone

    browser.find_element(By.CSS_SELECTOR, ".tv-download").click()
    saved = browser.downloads / "example.corrected.TextGrid"
    wait(lambda: saved.is_file() and saved.stat().st_size > 0, "the download")
    grid = parselmouth.Data.read(str(saved))
    assert call(grid, "Get number of tiers") == 2
    assert [call(grid, "Get tier name...", t) for t in (1, 2)] == ["words", "phones"]
    for number, (expected, moved_index) in enumerate([(words, j), (phones, k)], start=1):
        count = call(grid, "Get number of intervals", number)
        assert count == len(expected) - 1
        read = [call(grid, "Get start time of interval", number, i) for i in range(1, count + 1)]
        read.append(call(grid, "Get end time of interval", number, count))
        for index, (got, want) in enumerate(zip(read, expected)):
            if index == moved_index:  # the moved boundary, in both tiers
                assert got == pytest.approx(moved, abs=2e-6)
            else:  # every other boundary unchanged
                assert got == pytest.approx(want, abs=1e-9), (number, index)
    labels = [call(grid, "Get label of interval", 1, i) for i in range(1, len(words))]
    assert labels == tiers[0]["labels"]
    assert severe(browser) == []


def test_keyboard_shortcuts(browser, page):
    from selenium.webdriver.common.by import By
    from selenium.webdriver.common.keys import Keys

    load(browser, page)

    def window():
        return browser.execute_script(
            "var r = document.querySelector('.tv-root').dataset;return [+r.viewStart, +r.viewEnd]"
        )

    body = browser.find_element(By.TAG_NAME, "body")
    start, end = window()
    body.send_keys(Keys.ARROW_UP)  # zoom in
    wait(lambda: window()[1] - window()[0] < 0.6 * (end - start), "the zoom")
    start, end = window()
    body.send_keys(Keys.ARROW_RIGHT)  # scroll a quarter window
    wait(lambda: window()[0] == pytest.approx(start + (end - start) / 4, abs=1e-3), "the scroll")
    body.send_keys("a")  # all
    whole = soundfile.info(EXAMPLE).duration
    wait(lambda: window()[1] - window()[0] > whole - 0.1, "the whole view")
    body.send_keys(Keys.SPACE)
    wait(lambda: not browser.execute_script("return document.querySelector('audio').paused"), "playback")
    body.send_keys(Keys.SPACE)
    wait(lambda: browser.execute_script("return document.querySelector('audio').paused"), "pause")
    assert "Space" in browser.find_element(By.CSS_SELECTOR, ".tv-help").text


def test_reference_view_updates_the_differences(browser, files, tmp_path):
    from selenium.webdriver.common.action_chains import ActionChains
    from selenium.webdriver.common.by import By

    path = tmp_path / "compare.html"
    write_view(EXAMPLE, files.json, path, reference=REFERENCE)
    load(browser, path)
    assert severe(browser) == []
    assert len(browser.find_elements(By.CSS_SELECTOR, '[data-tier="reference:words"]')) == 19
    summary = browser.find_element(By.CSS_SELECTOR, ".tv-cmp")
    assert summary.text.startswith("19 words: MAE 0.0 ms")
    handle = browser.find_element(By.CSS_SELECTOR, '.tv-bd[data-boundary-tier="words"][data-index="1"]')
    ActionChains(browser).click_and_hold(handle).move_by_offset(-3, 0).release().perform()
    assert not summary.text.startswith("19 words: MAE 0.0 ms")  # recomputed after the move


def test_two_notebook_views_on_one_page(browser, alignment, tmp_path):
    """What Jupyter shows: the _repr_html_ of an Alignment (tiers only) and of viz.show (with audio)."""
    from selenium.webdriver.common.by import By

    host = tmp_path / "notebook.html"
    host.write_text(
        "<!DOCTYPE html><html><head><meta charset='utf-8'><link rel='icon' href='data:,'></head><body>"
        + alignment._repr_html_()
        + viz.show(alignment, EXAMPLE)._repr_html_()
        + "</body></html>",
        encoding="utf-8",
    )
    browser.get(host.as_uri())
    frames = browser.find_elements(By.CSS_SELECTOR, "iframe.aligner-view")
    assert len(frames) == 2
    for frame, has_audio in zip(frames, (False, True)):
        browser.switch_to.frame(frame)
        try:
            wait(
                lambda: browser.execute_script("return document.querySelector('.tv-root').dataset.ready === '1'"),
                "the view in its frame",
            )
            assert len(browser.find_elements(By.CSS_SELECTOR, '[data-tier="words"]')) == len(alignment.words)
            assert bool(browser.find_elements(By.CSS_SELECTOR, "audio")) == has_audio
        finally:
            browser.switch_to.default_content()
    assert severe(browser) == []


def test_labels_survive_html_and_the_downloaded_textgrid(browser, tmp_path):
    """Quotes, markup characters and non-ASCII labels: escaped in the page, quoted for Praat."""
    import parselmouth
    from parselmouth.praat import call

    labels = ['say "hi"', "<b>&amp;</b>", "café", "naïve’s"]
    grid = tmp_path / "tricky.TextGrid"
    items = "".join(
        f"\t\t\tintervals [{k + 1}]:\n\t\t\t\txmin = {k * 0.5}\n\t\t\t\txmax = {(k + 1) * 0.5}\n"
        f'\t\t\t\ttext = "{label.replace(chr(34), chr(34) * 2)}"\n'
        for k, label in enumerate(labels)
    )
    grid.write_text(
        'File type = "ooTextFile"\nObject class = "TextGrid"\n\nxmin = 0\nxmax = 2\ntiers? <exists>\n'
        'size = 1\nitem []:\n\titem [1]:\n\t\tclass = "IntervalTier"\n\t\tname = "words"\n\t\txmin = 0\n'
        f"\t\txmax = 2\n\t\tintervals: size = {len(labels)}\n" + items,
        encoding="utf-8",
    )
    page = tmp_path / "tricky.html"
    page.write_text(view_page(grid), encoding="utf-8")
    assert [e["data-label"] for e in intervals(page.read_text(encoding="utf-8"), "words")] == labels
    load(browser, page)
    from selenium.webdriver.common.by import By

    assert [
        e.get_attribute("data-label") for e in browser.find_elements(By.CSS_SELECTOR, '[data-tier="words"]')
    ] == labels
    saved = tmp_path / "back.TextGrid"
    saved.write_text(
        browser.execute_script("return document.querySelector('.tv-root').alignmentView.textGrid()"), encoding="utf-8"
    )
    back = parselmouth.Data.read(str(saved))
    assert [call(back, "Get label of interval", 1, i) for i in range(1, len(labels) + 1)] == labels
    assert severe(browser) == []
