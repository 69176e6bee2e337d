"""Start-up times a new user sees (issue 16), each in a fresh process:

* ``aligner --help`` and ``aligner align --help``;
* ``aligner models``;
* the README's ``aligner align examples/example.wav examples/example.txt``
  with an empty numba cache (``NUMBA_CACHE_DIR`` pointed at a new folder:
  the first run after an install compiles the Viterbi kernels), then again
  with that cache filled (every later run).

    python benchmarks/bench_startup.py [--repeats 3]

Wall-clock seconds, best of ``--repeats`` (the cold run once).
"""

from __future__ import annotations

import argparse
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
ALIGNER = [sys.executable, "-m", "aligner"]


def wall(args: list[str], env: dict[str, str]) -> float:
    start = time.perf_counter()
    subprocess.run(args, cwd=ROOT, env=env, check=True, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    return time.perf_counter() - start


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--repeats", type=int, default=3)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as folder:
        env = {**os.environ, "NUMBA_CACHE_DIR": str(Path(folder) / "numba")}
        out = str(Path(folder) / "example.TextGrid")
        align = ALIGNER + ["align", "examples/example.wav", "examples/example.txt", "-o", out]
        rows = [
            ("aligner --help", min(wall(ALIGNER + ["--help"], env) for _ in range(args.repeats))),
            ("aligner align --help", min(wall(ALIGNER + ["align", "--help"], env) for _ in range(args.repeats))),
            ("aligner models", min(wall(ALIGNER + ["models"], env) for _ in range(args.repeats))),
            ("first aligner align (empty numba cache)", wall(align, env)),
            ("later aligner align (numba cache filled)", min(wall(align, env) for _ in range(args.repeats))),
        ]
    print("| command | seconds |")
    print("|---|---|")
    for name, seconds in rows:
        print(f"| {name} | {seconds:.2f} |")


if __name__ == "__main__":
    main()
