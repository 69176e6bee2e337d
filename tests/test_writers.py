"""Tests of the output writers and atomic file writing."""

from __future__ import annotations

import json
import os
import re
import stat
from pathlib import Path

import parselmouth
import pytest
import textgrid
from hypothesis import given, settings
from hypothesis import strategies as st
from parselmouth.praat import call
from praatio import textgrid as ptg

from aligner import writers
from aligner.atomic import atomic_path, atomic_write_text
from aligner.errors import AlignerError, OutputError
from aligner.records import Alignment, CharSpan, WordSpan
from aligner.writers import FORMATS, format_from_path, to_ctm, to_json, to_srt, to_textgrid, to_vtt, write_alignment


def word(text, start, end, score=0.9, chars=None, aligned=True, normalized=None):
    if chars is None:
        # one char label per letter, evenly spread over the word
        letters = [c for c in text.upper() if c.isalpha()] if aligned and end > start else []
        step = (end - start) / max(len(letters), 1)
        chars = tuple(CharSpan(c, start + i * step, start + (i + 1) * step, score) for i, c in enumerate(letters))
    return WordSpan(text, normalized if normalized is not None else text.upper(), start, end, score, chars, aligned)


@pytest.fixture
def alignment():
    """Word at time 0, a gap, an unaligned zero-length word between touching
    neighbours, non-ASCII text, a word ending exactly at the duration."""
    words = (
        word(
            "Don't,",
            0.0,
            0.4,
            0.91,
            chars=(
                CharSpan("D", 0.0, 0.1, 0.9),
                CharSpan("O", 0.1, 0.2, 0.8),
                CharSpan("N", 0.2, 0.3, 0.7),
                CharSpan("'", 0.3, 0.32, 0.6),
                CharSpan("T", 0.32, 0.4, 0.5),
            ),
            normalized="DON'T",
        ),
        word(
            "café",
            0.6,
            1.0,
            0.8,
            chars=(
                CharSpan("C", 0.6, 0.7, 0.8),
                CharSpan("A", 0.7, 0.8, 0.8),
                CharSpan("F", 0.8, 0.9, 0.8),
                CharSpan("E", 0.9, 1.0, 0.8),
            ),
            normalized="CAFE",
        ),
        word("1984", 1.0, 1.0, 0.0, aligned=False, normalized=""),
        word(
            "now",
            1.0,
            1.5,
            0.7,
            chars=(CharSpan("N", 1.0, 1.2, 0.7), CharSpan("O", 1.2, 1.4, 0.7), CharSpan("W", 1.4, 1.5, 0.7)),
        ),
    )
    return Alignment(words, duration=1.5, frame_seconds=0.02, audio="/data/rec 01.wav", model="tiny")


# ------------------------------------------------------------------ formats


@pytest.mark.parametrize(
    "name, expected",
    [
        ("a.TextGrid", "textgrid"),
        ("a.textgrid", "textgrid"),
        ("A.TEXTGRID", "textgrid"),
        ("x/y.json", "json"),
        ("a.JSON", "json"),
        ("a.ctm", "ctm"),
        ("a.Srt", "srt"),
        ("a.vtt", "vtt"),
        ("a.txt", None),
        ("a", None),
        ("a.json.bak", None),
    ],
)
def test_format_from_path(name, expected):
    assert format_from_path(name) == expected
    assert format_from_path(Path(name)) == expected


def test_formats_constant():
    assert FORMATS == ("textgrid", "json", "ctm", "srt", "vtt")


# ----------------------------------------------------------------- TextGrid


def tier_tuples(tier):
    return [(i.minTime, i.maxTime, i.mark) for i in tier]


def check_partition(intervals, duration):
    """Contiguous, strictly increasing, from 0 to duration."""
    assert intervals[0][0] == 0.0
    assert intervals[-1][1] == duration
    for (_, e, _), (s2, _, _) in zip(intervals, intervals[1:]):
        assert e == s2
    assert all(e > s for s, e, _ in intervals)


def test_to_textgrid_tiers(alignment):
    grid = to_textgrid(alignment)
    assert isinstance(grid, textgrid.TextGrid)
    assert grid.getNames() == ["words", "chars", "unaligned"]  # no skipped audio: no "skipped" tier
    assert grid.minTime == 0.0 and grid.maxTime == 1.5
    words = tier_tuples(grid.getFirst("words"))
    assert [m for _, _, m in words] == ["Don't,", "", "café", "1984", "now"]
    check_partition(words, 1.5)
    assert words[0][:2] == (0.0, 0.4)
    assert words[1][:2] == (0.4, 0.6)
    assert words[2][:2] == (0.6, 1.0)
    # the zero-length unaligned word borrows 1 ms from its right neighbour
    assert words[3][:2] == (1.0, 1.001)
    assert words[4][:2] == (1.001, 1.5)
    chars = tier_tuples(grid.getFirst("chars"))
    check_partition(chars, 1.5)
    assert [m for _, _, m in chars] == ["D", "O", "N", "'", "T", "", "C", "A", "F", "E", "N", "O", "W"]
    assert tier_tuples(grid.getFirst("unaligned")) == [(0.0, 1.0, ""), (1.0, 1.001, "1984"), (1.001, 1.5, "")]
    for tier in grid:
        assert tier.minTime == 0.0 and tier.maxTime == 1.5


def test_textgrid_phonetic_tier_name(alignment):
    from dataclasses import replace

    grid = to_textgrid(replace(alignment, phonetic=True))
    assert grid.getNames() == ["words", "phones", "unaligned"]


def test_phonetic_json_lists_phones_and_ctm_stays_word_level(alignment):
    from dataclasses import replace

    phonetic = replace(alignment, phonetic=True)
    chars, phones = to_json(alignment), to_json(phonetic)
    for char_word, phone_word in zip(chars["words"], phones["words"]):
        assert "phones" not in char_word and "chars" not in phone_word
        assert phone_word["phones"] == char_word["chars"]
    assert to_ctm(phonetic) == to_ctm(alignment)


def test_write_textgrid_read_back_with_praatio(alignment, tmp_path):
    path = write_alignment(alignment, tmp_path / "out" / "rec.TextGrid")
    assert path == tmp_path / "out" / "rec.TextGrid"
    tg = ptg.openTextgrid(str(path), includeEmptyIntervals=True)
    assert tg.tierNames == ("words", "chars", "unaligned")
    assert tg.minTimestamp == 0.0 and tg.maxTimestamp == 1.5
    words = tg.getTier("words")
    assert [e.label for e in words.entries] == ["Don't,", "", "café", "1984", "now"]
    assert [(e.start, e.end) for e in words.entries] == [(0.0, 0.4), (0.4, 0.6), (0.6, 1.0), (1.0, 1.001), (1.001, 1.5)]
    chars = tg.getTier("chars")
    assert len(chars.entries) == 13
    assert chars.entries[-1].end == 1.5
    assert words.maxTimestamp == 1.5 and chars.maxTimestamp == 1.5


def test_write_textgrid_read_back_with_praat(alignment, tmp_path):
    path = write_alignment(alignment, tmp_path / "rec.TextGrid")
    tg = parselmouth.read(str(path))
    assert call(tg, "Get number of tiers") == 3
    assert call(tg, "Get tier name", 1) == "words"
    assert call(tg, "Get tier name", 2) == "chars"
    assert call(tg, "Get start time") == 0.0
    assert call(tg, "Get end time") == pytest.approx(1.5, abs=1e-12)
    assert call(tg, "Get number of intervals", 1) == 5
    labels = [call(tg, "Get label of interval", 1, i) for i in range(1, 6)]
    assert labels == ["Don't,", "", "café", "1984", "now"]
    ends = [call(tg, "Get end time of interval", 1, i) for i in range(1, 6)]
    assert ends == pytest.approx([0.4, 0.6, 1.0, 1.001, 1.5], abs=1e-9)
    assert call(tg, "Get start time of interval", 1, 4) == pytest.approx(1.0, abs=1e-9)
    assert call(tg, "Get number of intervals", 2) == 13
    assert call(tg, "Get label of interval", 2, 1) == "D"
    assert call(tg, "Get end time of interval", 2, 13) == pytest.approx(1.5, abs=1e-12)


def test_textgrid_quotes_in_labels_survive(tmp_path):
    a = Alignment((word('say"hi"', 0.1, 0.5),), duration=1.0)
    path = write_alignment(a, tmp_path / "q.TextGrid")
    tg = parselmouth.read(str(path))
    assert call(tg, "Get label of interval", 1, 2) == 'say"hi"'


def test_textgrid_snaps_float_noise():
    # 0.62 vs 0.62 + 1e-9: no tiny gap or overlap interval may appear
    a = Alignment((word("a", 0.0, 0.62 + 1e-9), word("b", 0.62, 0.7), word("c", 0.7 + 4e-7, 1.0 - 3e-7)), duration=1.0)
    words = tier_tuples(to_textgrid(a).getFirst("words"))
    assert [m for _, _, m in words] == ["a", "b", "c"]
    check_partition(words, 1.0)
    assert words[0][1] == pytest.approx(0.62, abs=2e-9)
    assert words[1][1] == pytest.approx(0.7, abs=1e-6)


def test_textgrid_clamps_and_resolves_overlaps():
    a = Alignment((word("a", -0.5, 0.3), word("b", 0.2, 0.6), word("c", 0.9, 1.7)), duration=1.2)
    words = tier_tuples(to_textgrid(a).getFirst("words"))
    check_partition(words, 1.2)
    assert words == [(0.0, 0.3, "a"), (0.3, 0.6, "b"), (0.6, 0.9, ""), (0.9, 1.2, "c")]


@pytest.mark.parametrize("position", ["start", "end", "touching"])
def test_textgrid_zero_length_words_never_vanish(position):
    if position == "start":
        words = (word("uh", 0.0, 0.0, aligned=False), word("a", 0.0, 0.5))
    elif position == "end":
        words = (word("a", 0.0, 1.0), word("uh", 1.0, 1.0, aligned=False), word("um", 1.0, 1.0, aligned=False))
    else:
        words = (word("a", 0.0, 0.5), word("uh", 0.5, 0.5, aligned=False), word("b", 0.5, 1.0))
    grid = to_textgrid(Alignment(words, duration=1.0))
    intervals = tier_tuples(grid.getFirst("words"))
    check_partition(intervals, 1.0)
    assert [m for _, _, m in intervals if m] == [w.text for w in words]
    for s, e, m in intervals:
        if m in ("uh", "um"):
            assert e - s == pytest.approx(0.001, abs=1e-9)


def test_textgrid_many_zero_length_words_in_tiny_recording():
    words = tuple(word(f"w{i}", 0.0, 0.0, aligned=False) for i in range(20))
    grid = to_textgrid(Alignment(words, duration=0.01))
    intervals = tier_tuples(grid.getFirst("words"))
    check_partition(intervals, 0.01)
    assert [m for _, _, m in intervals] == [w.text for w in words]


def test_textgrid_empty_alignment_is_one_empty_interval():
    grid = to_textgrid(Alignment((), duration=2.0))
    assert tier_tuples(grid.getFirst("words")) == [(0.0, 2.0, "")]
    assert tier_tuples(grid.getFirst("chars")) == [(0.0, 2.0, "")]


@pytest.mark.parametrize("duration", [0.0, -1.0, float("nan"), float("inf")])
def test_textgrid_rejects_bad_duration(duration):
    with pytest.raises(OutputError, match="duration"):
        to_textgrid(Alignment((), duration=duration))


def test_textgrid_rejects_non_finite_times():
    with pytest.raises(OutputError, match=r"word 'a' has a non-finite time"):
        to_textgrid(Alignment((word("a", 0.0, float("nan"), chars=()),), duration=1.0))


times = st.floats(min_value=-0.5, max_value=3.5, allow_nan=False)


@settings(max_examples=150, deadline=None)
@given(spans=st.lists(st.tuples(times, times), max_size=12), duration=st.floats(min_value=0.005, max_value=3.0))
def test_textgrid_always_valid(spans, duration):
    """Any spans (out of range, overlapping, reversed, zero-length) give a
    valid tier that keeps every word label in order."""
    words = tuple(WordSpan(f"w{i}", f"W{i}", s, e, 0.5, (CharSpan("X", s, e, 0.5),)) for i, (s, e) in enumerate(spans))
    grid = to_textgrid(Alignment(words, duration=duration))
    for tier in grid:
        intervals = tier_tuples(tier)
        check_partition(intervals, duration)
        # no empty interval next to another empty one, none shorter than the snap
        for (_, _, m), (_, _, m2) in zip(intervals, intervals[1:]):
            assert m or m2
    labels = [m for _, _, m in tier_tuples(grid.getFirst("words")) if m]
    assert labels == [w.text for w in words]
    assert len([m for _, _, m in tier_tuples(grid.getFirst("chars")) if m]) == len(words)


# --------------------------------------------------------------------- JSON


def test_json_round_trip(alignment, tmp_path):
    path = write_alignment(alignment, tmp_path / "rec.json")
    raw = path.read_text(encoding="utf-8")
    assert "café" in raw and "\\u00e9" not in raw
    assert raw.startswith("{\n  ")
    data = json.loads(raw)
    assert set(data) == {
        "audio",
        "model",
        "duration",
        "frame_seconds",
        "score",
        "warnings",
        "skipped",
        "suspect",
        "words",
    }
    assert data["skipped"] == [] and data["suspect"] == []
    assert data["audio"] == "/data/rec 01.wav" and data["model"] == "tiny"
    assert data["duration"] == 1.5 and data["frame_seconds"] == 0.02
    assert data["score"] == pytest.approx((0.91 + 0.8 + 0.7) / 3)
    assert [w["text"] for w in data["words"]] == ["Don't,", "café", "1984", "now"]
    first = data["words"][0]
    assert first == {
        "text": "Don't,",
        "normalized": "DON'T",
        "start": 0.0,
        "end": 0.4,
        "score": 0.91,
        "aligned": True,
        "chars": first["chars"],
    }
    assert first["chars"][3] == {"label": "'", "start": 0.3, "end": 0.32, "score": 0.6}
    unaligned = data["words"][2]
    assert unaligned["aligned"] is False and unaligned["chars"] == [] and unaligned["score"] == 0.0


def test_json_rounds_times_to_microseconds():
    a = Alignment((word("a", 31 * 0.02, 0.1234567891, chars=()),), duration=1.00000049)
    data = to_json(a)
    assert data["words"][0]["start"] == 0.62  # 31 * 0.02 == 0.6200000000000001
    assert data["words"][0]["end"] == 0.123457
    assert data["duration"] == 1.0


def test_json_non_finite_score_is_null(tmp_path):
    a = Alignment((word("a", 0.0, 0.5, score=float("nan"), chars=()),), duration=1.0)
    path = write_alignment(a, tmp_path / "a.json")
    data = json.loads(path.read_text(encoding="utf-8"))
    assert data["words"][0]["score"] is None


# ---------------------------------------------------------------------- CTM


def test_ctm(alignment, tmp_path):
    path = write_alignment(alignment, tmp_path / "rec.ctm")
    lines = path.read_text(encoding="utf-8").splitlines()
    rows = [line.split(" ") for line in lines]
    assert all(len(r) == 6 for r in rows)
    assert [r[0] for r in rows] == ["rec_01"] * 4
    assert [r[1] for r in rows] == ["1"] * 4
    assert [r[4] for r in rows] == ["Don't,", "café", "1984", "now"]
    assert rows[0][2:4] == ["0.000", "0.400"]
    assert rows[1][2:4] == ["0.600", "0.400"]
    assert rows[2][2:] == ["1.000", "0.000", "1984", "0.000"]
    assert [r[5] for r in rows] == ["0.910", "0.800", "0.000", "0.700"]


def test_ctm_options_and_defaults():
    a = Alignment((word("a", 0.0125, 0.5126, score=0.12345, chars=()),), duration=1.0)
    assert to_ctm(a) == "utt 1 0.013 0.500 a 0.123\n"  # no audio: "utt"
    assert to_ctm(a, utterance="spk1-001", channel="A") == "spk1-001 A 0.013 0.500 a 0.123\n"
    with pytest.raises(OutputError, match="utterance id 'a b'"):
        to_ctm(a, utterance="a b")
    with pytest.raises(OutputError, match="channel id ''"):
        to_ctm(a, channel="")


def test_ctm_option_through_write_alignment(alignment, tmp_path):
    path = write_alignment(alignment, tmp_path / "x.ctm", utterance="u7", channel="2")
    assert path.read_text(encoding="utf-8").splitlines()[0] == "u7 2 0.000 0.400 Don't, 0.910"


# ----------------------------------------------------------------- SRT / VTT

SRT_CUE = re.compile(r"(\d+)\n(\d\d):(\d\d):(\d\d),(\d\d\d) --> (\d\d):(\d\d):(\d\d),(\d\d\d)\n(.+)\n")
VTT_CUE = re.compile(r"(\d\d):(\d\d):(\d\d)\.(\d\d\d) --> (\d\d):(\d\d):(\d\d)\.(\d\d\d)\n(.+)\n")


def ms(h, m, s, milli):
    return ((int(h) * 60 + int(m)) * 60 + int(s)) * 1000 + int(milli)


def parse_srt(text):
    blocks = text.split("\n\n")
    cues = []
    for block in blocks:
        match = SRT_CUE.fullmatch(block if block.endswith("\n") else block + "\n")
        assert match, block
        g = match.groups()
        cues.append((int(g[0]), ms(*g[1:5]), ms(*g[5:9]), g[9]))
    return cues


def parse_vtt(text):
    assert text.startswith("WEBVTT\n\n")
    cues = []
    for block in text[len("WEBVTT\n\n") :].split("\n\n"):
        match = VTT_CUE.fullmatch(block if block.endswith("\n") else block + "\n")
        assert match, block
        g = match.groups()
        cues.append((ms(*g[0:4]), ms(*g[4:8]), g[8]))
    return cues


def test_srt_words(alignment, tmp_path):
    path = write_alignment(alignment, tmp_path / "rec.srt")
    cues = parse_srt(path.read_text(encoding="utf-8"))
    assert cues == [
        (1, 0, 400, "Don't,"),
        (2, 600, 1000, "café"),
        (3, 1000, 1001, "<i>1984</i>"),
        (4, 1000, 1500, "now"),
    ]
    assert all(end > start for _, start, end, _ in cues)


def test_vtt_words(alignment, tmp_path):
    path = write_alignment(alignment, tmp_path / "rec.vtt")
    cues = parse_vtt(path.read_text(encoding="utf-8"))
    assert cues == [(0, 400, "Don't,"), (600, 1000, "café"), (1000, 1001, "<i.unaligned>1984</i>"), (1000, 1500, "now")]


def test_srt_timestamps_with_hours():
    a = Alignment((word("late", 3723.456, 3724.0, chars=()),), duration=4000.0)
    assert "01:02:03,456 --> 01:02:04,000" in to_srt(a)
    assert "01:02:03.456 --> 01:02:04.000" in to_vtt(a)


def test_lines_mode_gap_split(alignment):
    # pause "Don't," -> "café" is 0.2 s; the others touch
    assert [c[3] for c in parse_srt(to_srt(alignment, mode="lines"))] == ["Don't, café <i>1984</i> now"]
    cues = parse_srt(to_srt(alignment, mode="lines", max_gap=0.1))
    assert cues == [(1, 0, 400, "Don't,"), (2, 600, 1500, "café <i>1984</i> now")]


def test_lines_mode_max_words_and_seconds():
    words = tuple(word(f"w{i}", i * 0.5, i * 0.5 + 0.4, chars=()) for i in range(7))
    a = Alignment(words, duration=4.0)
    by_words = parse_vtt(to_vtt(a, mode="lines", max_words=3))
    assert [c[2] for c in by_words] == ["w0 w1 w2", "w3 w4 w5", "w6"]
    assert by_words[1][:2] == (1500, 2900)
    # w0..w2 spans 0.0-1.4 s; adding w3 would make it 1.9 s > 1.5 s
    by_seconds = parse_vtt(to_vtt(a, mode="lines", max_seconds=1.5))
    assert [c[2] for c in by_seconds] == ["w0 w1 w2", "w3 w4 w5", "w6"]
    # exactly max_seconds is allowed (0.0 - 1.4)
    assert [c[2] for c in parse_vtt(to_vtt(a, mode="lines", max_seconds=1.4))][0] == "w0 w1 w2"
    # a word longer than max_seconds still gets its cue
    long = Alignment((word("long", 0.0, 9.0, chars=()), word("x", 9.0, 9.5, chars=())), duration=10.0)
    assert [c[3] for c in parse_srt(to_srt(long, mode="lines", max_seconds=2.0))] == ["long", "x"]


def test_vtt_escapes_markup():
    a = Alignment((word("<unk>", 0.0, 0.5, chars=()), word("R&D", 0.5, 1.0, chars=())), duration=1.0)
    text = to_vtt(a)
    assert "&lt;unk&gt;" in text and "R&amp;D" in text and "<unk>" not in text


def test_empty_subtitles():
    a = Alignment((), duration=1.0)
    assert to_srt(a) == ""
    assert to_vtt(a) == "WEBVTT\n"


@pytest.mark.parametrize(
    "options, message",
    [
        ({"mode": "sentences"}, "mode must be 'words' or 'lines'"),
        ({"max_words": 0}, "max_words must be a positive integer"),
        ({"max_seconds": 0}, "max_seconds must be a positive"),
        ({"max_gap": -1}, "max_gap must be a non-negative"),
    ],
)
def test_subtitle_option_errors(alignment, options, message):
    with pytest.raises(OutputError, match=message):
        to_srt(alignment, **options)
    with pytest.raises(OutputError, match=message):
        to_vtt(alignment, **options)


# ------------------------------------------------------------ write_alignment


def test_explicit_format_wins_over_extension(alignment, tmp_path):
    path = write_alignment(alignment, tmp_path / "out.txt", format="JSON")
    assert json.loads(path.read_text(encoding="utf-8"))["duration"] == 1.5
    path = write_alignment(alignment, tmp_path / "out.srt", format="vtt")
    assert path.read_text(encoding="utf-8").startswith("WEBVTT")


def test_unknown_format(alignment, tmp_path):
    with pytest.raises(OutputError, match=r"unknown output format 'xml'; valid formats: textgrid, json, ctm, srt, vtt"):
        write_alignment(alignment, tmp_path / "a.json", format="xml")
    with pytest.raises(OutputError, match=r"cannot tell the output format of .*a\.txt.*textgrid, json, ctm, srt, vtt"):
        write_alignment(alignment, tmp_path / "a.txt")
    with pytest.raises(OutputError, match=r"extension '\(none\)'"):
        write_alignment(alignment, tmp_path / "noext")
    assert list(tmp_path.iterdir()) == []


def test_option_not_valid_for_format(alignment, tmp_path):
    with pytest.raises(OutputError, match=r"option\(s\) max_words not valid for json output"):
        write_alignment(alignment, tmp_path / "a.json", max_words=3)
    with pytest.raises(OutputError, match=r"bogus not valid for srt output \(accepted: mode, max_words"):
        write_alignment(alignment, tmp_path / "a.srt", bogus=1)


def test_output_errors_are_aligner_errors():
    assert issubclass(OutputError, AlignerError)


# ----------------------------------------------------------------- atomicity


def leftovers(folder):
    return sorted(p.name for p in Path(folder).iterdir() if p.name.endswith(".tmp"))


def test_failed_textgrid_write_leaves_nothing(alignment, tmp_path, monkeypatch):
    def broken_write(self, f, null=""):
        with open(f, "w", encoding="utf-8") as sink:
            sink.write('File type = "ooTextFile"\nObject class = "TextGrid"\n')
        raise RuntimeError("disk on fire")

    monkeypatch.setattr(textgrid.TextGrid, "write", broken_write)
    target = tmp_path / "rec.TextGrid"
    with pytest.raises(RuntimeError, match="disk on fire"):
        write_alignment(alignment, target)
    assert not target.exists()
    assert leftovers(tmp_path) == []


def test_failed_write_keeps_old_file(alignment, tmp_path, monkeypatch):
    target = tmp_path / "rec.TextGrid"
    write_alignment(alignment, target)
    old = target.read_bytes()

    def broken_write(self, f, null=""):
        Path(f).write_text("partial", encoding="utf-8")
        raise KeyboardInterrupt

    monkeypatch.setattr(textgrid.TextGrid, "write", broken_write)
    with pytest.raises(KeyboardInterrupt):
        write_alignment(alignment, target)
    assert target.read_bytes() == old
    assert leftovers(tmp_path) == []


def test_failed_text_write_keeps_old_file(alignment, tmp_path, monkeypatch):
    target = tmp_path / "rec.json"
    target.write_text("old content", encoding="utf-8")
    real_write_bytes = Path.write_bytes

    def half_write(self, data):
        real_write_bytes(self, data[: len(data) // 2])
        raise OSError(28, "No space left on device")

    monkeypatch.setattr(Path, "write_bytes", half_write)
    with pytest.raises(OutputError, match=r"cannot write output file .*rec\.json: No space left on device"):
        write_alignment(alignment, target)
    monkeypatch.undo()
    assert target.read_text(encoding="utf-8") == "old content"
    assert leftovers(tmp_path) == []


def test_atomic_path_temporary_name_and_replace(tmp_path):
    target = tmp_path / "deep" / "er" / "out.txt"
    with atomic_path(target) as temporary:
        assert temporary.parent == target.parent  # parent folders created
        assert re.fullmatch(r"\.out\.txt\.[0-9a-f]+\.tmp", temporary.name)
        assert temporary.exists() and not target.exists()
        temporary.write_text("done", encoding="utf-8")
    assert target.read_text(encoding="utf-8") == "done"
    assert leftovers(target.parent) == []


def test_atomic_path_exception_removes_temporary(tmp_path):
    target = tmp_path / "out.txt"
    with pytest.raises(ValueError, match="boom"), atomic_path(target) as temporary:
        temporary.write_text("half", encoding="utf-8")
        raise ValueError("boom")
    assert not target.exists()
    assert list(tmp_path.iterdir()) == []


def test_atomic_write_text(tmp_path):
    path = atomic_write_text(tmp_path / "a" / "b.txt", "café\nline\n")
    assert path.read_bytes() == "café\nline\n".encode()
    atomic_write_text(path, "ünï", encoding="latin-1")
    assert path.read_bytes() == "ünï".encode("latin-1")


def test_atomic_write_text_encoding_errors(tmp_path):
    path = tmp_path / "a.txt"
    with pytest.raises(OutputError, match=r"a\.txt: character 'é' cannot be encoded as ascii"):
        atomic_write_text(path, "café", encoding="ascii")
    with pytest.raises(OutputError, match="unknown encoding 'klingon'"):
        atomic_write_text(path, "x", encoding="klingon")
    assert list(tmp_path.iterdir()) == []


def test_atomic_unwritable_folder_errors(tmp_path):
    blocker = tmp_path / "file"
    blocker.write_text("x", encoding="utf-8")
    with pytest.raises(OutputError, match=r"cannot create the folder .*file.* for output file .*out\.json"):
        atomic_write_text(blocker / "out.json", "{}")
    with pytest.raises(OutputError, match="is a folder, not a file"):
        atomic_write_text(tmp_path, "{}")


@pytest.mark.skipif(os.name != "posix" or os.geteuid() == 0, reason="root ignores permissions")
def test_atomic_read_only_folder(tmp_path):
    folder = tmp_path / "ro"
    folder.mkdir()
    folder.chmod(0o500)
    try:
        with pytest.raises(OutputError, match=r"cannot write output file .*ro.*Permission denied"):
            atomic_write_text(folder / "x.json", "{}")
    finally:
        folder.chmod(0o700)


def test_atomic_permission_denied_names_path(tmp_path, monkeypatch):
    from aligner import atomic

    def denied(target):
        raise PermissionError(13, "Permission denied")

    monkeypatch.setattr(atomic, "_create_temporary", denied)
    with pytest.raises(OutputError, match=r"cannot write output file .*x\.json .*Permission denied"):
        atomic_write_text(tmp_path / "x.json", "{}")
    assert list(tmp_path.iterdir()) == []


@pytest.mark.skipif(os.name != "posix", reason="POSIX permissions")
def test_atomic_permissions(tmp_path):
    umask = os.umask(0o022)
    try:
        fresh = atomic_write_text(tmp_path / "new.txt", "x")
        assert stat.S_IMODE(fresh.stat().st_mode) == 0o644  # like open(), not mkstemp's 0600
        kept = tmp_path / "kept.txt"
        kept.write_text("old", encoding="utf-8")
        kept.chmod(0o640)
        atomic_write_text(kept, "new")
        assert stat.S_IMODE(kept.stat().st_mode) == 0o640
    finally:
        os.umask(umask)


def test_writers_do_not_mutate_alignment(alignment, tmp_path):
    before = repr(alignment)
    for name in FORMATS:
        write_alignment(alignment, tmp_path / f"out.{name}", format=name)
    assert repr(alignment) == before
    assert sorted(p.name for p in tmp_path.iterdir()) == sorted(f"out.{n}" for n in FORMATS)
    assert writers.format_from_path(tmp_path / "out.TextGrid") == "textgrid"


def test_json_text_is_to_json_with_one_word_per_line(tmp_path):
    words = tuple(
        WordSpan(f'w{k}\n"é"', None, 0.1 * k, 0.1 * k + 0.05, 0.5, (CharSpan("A", 0.1 * k, 0.1 * k + 0.05, 0.5),))
        for k in range(3)
    )
    alignment = Alignment(words, duration=1.0, model="demo", suspect=("low score",))
    text = writers.json_text(alignment)
    assert json.loads(text) == to_json(alignment)
    lines = text.splitlines()
    assert lines[0] == "{" and lines[-1] == "}" and text.endswith("}\n")
    assert sum(line.startswith('    {"text": ') for line in lines) == 3  # a word per line, its phones inside
    assert json.loads(write_alignment(alignment, tmp_path / "a.json").read_text(encoding="utf-8")) == to_json(alignment)
    empty = Alignment((), duration=1.0)
    assert json.loads(writers.json_text(empty))["words"] == []
    with pytest.raises(OutputError, match="non-finite time"):
        writers.json_text(Alignment((WordSpan("a", None, float("nan"), 0.2, 0.5, ()),), duration=1.0))
