"""Make docs/images/view.png: the page of ``aligner view`` in headless Chromium.

    python scripts/make_view_screenshot.py [--model SPEC] [--out docs/images/view.png]

Aligns ``examples/example.wav`` with the default (packaged) model, builds the
page with the human ``examples/example.reference.TextGrid`` as the reference,
zooms on a few words, moves one boundary towards the reference (as a user
correcting it would) and saves a screenshot of the view. Needs Chromium and
chromedriver (``apt-get install chromium chromium-driver``) and selenium.
"""

from __future__ import annotations

import argparse
import os
import shutil
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
EXAMPLE = ROOT / "examples" / "example.wav"
REFERENCE = ROOT / "examples" / "example.reference.TextGrid"


def browser(width: int, height: int):
    """Headless Chromium through the system chromedriver (no network)."""
    os.environ.setdefault("SE_OFFLINE", "true")
    from selenium import webdriver
    from selenium.webdriver.chrome.service import Service

    options = webdriver.ChromeOptions()
    options.binary_location = shutil.which("chromium") or shutil.which("chromium-browser") or "chromium"
    for argument in (
        "--headless=new",
        "--disable-gpu",
        "--hide-scrollbars",
        "--mute-audio",
        f"--window-size={width},{height}",
        "--force-device-scale-factor=1",
    ):
        options.add_argument(argument)
    if hasattr(os, "geteuid") and os.geteuid() == 0:
        options.add_argument("--no-sandbox")
    driver = shutil.which("chromedriver") or "/usr/bin/chromedriver"
    return webdriver.Chrome(service=Service(driver), options=options)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--model", default=None, help="model spec (default: the packaged default model)")
    parser.add_argument("--out", type=Path, default=ROOT / "docs" / "images" / "view.png")
    parser.add_argument("--start", type=float, default=2.2, help="window start (s)")
    parser.add_argument("--end", type=float, default=5.0, help="window end (s)")
    args = parser.parse_args()

    import aligner
    from aligner.atomic import atomic_path
    from aligner.readers import read_textgrid
    from viz.compare import boundary_differences
    from viz.view import write_view

    result = aligner.Aligner(args.model, device="cpu").align(EXAMPLE, EXAMPLE.with_suffix(".txt"))
    with tempfile.TemporaryDirectory() as folder:
        page = write_view(EXAMPLE, result, Path(folder) / "example.html", reference=REFERENCE).path
        driver = browser(1280, 760)
        try:
            from selenium.webdriver.common.action_chains import ActionChains
            from selenium.webdriver.common.by import By

            driver.get(page.as_uri())
            time.sleep(0.5)
            driver.execute_script(f"document.querySelector('.tv-root').alignmentView.setView({args.start}, {args.end})")
            time.sleep(0.3)
            # correct the word end furthest from the reference in the window, as a user would:
            # drag its boundary onto the reference's
            differences = boundary_differences(result, read_textgrid(REFERENCE))
            ends = [
                (abs(ms), result.words[i].end, ms)
                for i, ms in zip(differences.alignment_index, differences.end_ms)
                if args.start < result.words[i].end < args.end
            ]
            root = driver.find_element(By.CSS_SELECTOR, ".tv-root")
            if ends:
                _, end, ms = max(ends)
                spp = float(root.get_attribute("data-seconds-per-pixel"))
                handle = next(
                    h
                    for h in root.find_elements(By.CSS_SELECTOR, '.tv-bd[data-boundary-tier="words"]')
                    if h.is_displayed() and abs(float(h.get_attribute("data-time")) - end) < 1e-5
                )
                ActionChains(driver).click_and_hold(handle).move_by_offset(
                    round(-ms / 1000 / spp), 0
                ).release().perform()
            # place the cursor on the first word of the window
            wave = root.find_element(By.CSS_SELECTOR, ".tv-wave canvas")
            ActionChains(driver).move_to_element_with_offset(wave, -420, 0).click().perform()
            time.sleep(0.5)
            args.out.parent.mkdir(parents=True, exist_ok=True)
            with atomic_path(args.out) as temporary:
                temporary.write_bytes(root.screenshot_as_png)
        finally:
            driver.quit()
    print(f"wrote {args.out} ({args.out.stat().st_size / 1024:.0f} KB)")


if __name__ == "__main__":
    main()
