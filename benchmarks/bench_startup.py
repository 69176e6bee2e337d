"""Start-up times a new user sees, each in a fresh process:

* ``aligner --help``, ``aligner align --help`` and ``aligner models``;
* the answer to bad input, which needs no model (``aligner align nope.wav
  t.txt``, a text file given as the audio, an empty transcript);
* the README's ``aligner align examples/example.wav examples/example.txt``
  with an empty numba cache (``NUMBA_CACHE_DIR`` pointed at a new folder:
  the first run after an install compiles the Viterbi kernels), then again
  with that cache filled (every later run);
* ``aligner plot`` of the example with that alignment, beside the later
  ``aligner align`` (warm: both after a first run);
* with ``--fresh-venv``: ``pip install -e .`` into a brand-new virtual
  environment (pip's download cache as it is) and the first ``aligner
  align`` there (reported, not a target: it is mostly download and unpacking).

    python benchmarks/bench_startup.py [--repeats 3] [--fresh-venv]

Wall-clock seconds, best of ``--repeats`` (the cold runs once). Targets on
2 cores: bad input <= 0.5 s; ``plot`` warm <= ``align`` warm; the first
``aligner align`` after an install <= 10 s.
"""

from __future__ import annotations

import argparse
import os
import subprocess
import sys
import tempfile
import time
import venv
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
ALIGNER = [sys.executable, "-m", "aligner"]
EXAMPLE = ROOT / "examples" / "example.wav"
TRANSCRIPT = ROOT / "examples" / "example.txt"


def wall(args: list[str], env: dict[str, str], expect: int = 0, cwd: Path = ROOT) -> float:
    """Seconds ``args`` takes; its exit code must be ``expect``."""
    start = time.perf_counter()
    done = subprocess.run(args, cwd=cwd, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)
    seconds = time.perf_counter() - start
    if done.returncode != expect:
        raise SystemExit(f"{' '.join(args)}: exit code {done.returncode}, expected {expect}\n{done.stderr}")
    return seconds


def best(args: list[str], env: dict[str, str], repeats: int, expect: int = 0, cwd: Path = ROOT) -> float:
    return min(wall(args, env, expect, cwd) for _ in range(repeats))


def fresh_venv_rows(folder: Path, env: dict[str, str]) -> list[tuple[str, float, str]]:
    """``pip install -e .`` into a new virtual environment, then the first
    ``aligner align`` there."""
    target = folder / "venv"
    start = time.perf_counter()
    venv.create(target, with_pip=True)
    python = str(target / "bin" / "python")
    clean = {k: v for k, v in env.items() if k not in ("VIRTUAL_ENV", "PYTHONPATH")}
    subprocess.run([python, "-m", "pip", "install", "--quiet", "-e", str(ROOT)], env=clean, check=True)
    install = time.perf_counter() - start
    out = str(folder / "fresh.TextGrid")
    first = wall([python, "-m", "aligner", "align", str(EXAMPLE), str(TRANSCRIPT), "-o", out], clean)
    return [
        ("fresh venv: create + pip install -e .", install, "reported"),
        ("fresh venv: first aligner align", first, "<= 10 s"),
    ]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument(
        "--fresh-venv", action="store_true", help="Also time pip install -e . into a new virtual environment."
    )
    args = parser.parse_args()
    repeats = max(1, args.repeats)
    with tempfile.TemporaryDirectory() as name:
        folder = Path(name)
        env = {**os.environ, "NUMBA_CACHE_DIR": str(folder / "numba")}
        (folder / "t.txt").write_text("hello world\n", encoding="utf-8")
        (folder / "empty.txt").write_text("\n", encoding="utf-8")
        out = str(folder / "example.TextGrid")
        align = ALIGNER + ["align", str(EXAMPLE), str(TRANSCRIPT), "-o", out]
        plot = ALIGNER + ["plot", str(EXAMPLE), out, "-o", str(folder / "example.png")]
        bad = [
            ("aligner align nope.wav t.txt (missing audio)", ["align", "nope.wav", "t.txt"]),
            ("aligner align t.txt t.txt (text given as audio)", ["align", "t.txt", "t.txt"]),
            ("aligner align example.wav empty.txt (empty transcript)", ["align", str(EXAMPLE), "empty.txt"]),
        ]
        rows: list[tuple[str, float, str]] = [
            ("aligner --help", best(ALIGNER + ["--help"], env, repeats), ""),
            ("aligner align --help", best(ALIGNER + ["align", "--help"], env, repeats), ""),
            ("aligner models", best(ALIGNER + ["models"], env, repeats), ""),
        ]
        rows += [(label, best(ALIGNER + argv, env, repeats, expect=2, cwd=folder), "<= 0.5 s") for label, argv in bad]
        rows.append(("first aligner align (empty numba cache)", wall(align, env), "<= 10 s"))
        align_warm = best(align, env, repeats)
        rows.append(("later aligner align (numba cache filled)", align_warm, ""))
        wall(plot, env)  # the first plot (font cache, compiled files) is not the warm one
        rows.append(("later aligner plot of the same file", best(plot, env, repeats), f"<= align ({align_warm:.2f})"))
        if args.fresh_venv:
            rows += fresh_venv_rows(folder, env)
    print("| command | seconds | target |")
    print("|---|---|---|")
    for label, seconds, target in rows:
        print(f"| {label} | {seconds:.2f} | {target} |")


if __name__ == "__main__":
    main()
