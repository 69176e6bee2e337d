#!/usr/bin/env python3
"""Write a synthetic English speech corpus (espeak-ng) with exact word and
phone timings, in the Montreal Forced Aligner layout.

    python scripts/make_synthetic_corpus.py OUT_DIR --utterances 1000 --seed 0 --split train --jobs 2

See :mod:`aligner.training.synth.corpus` for the layout, the voices and the
augmentations. Exit status 2 on bad arguments or a missing espeak-ng.
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

# run from a checkout without installing: make the package importable
sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from aligner.errors import AlignerError  # noqa: E402
from aligner.training.synth.corpus import make_corpus  # noqa: E402


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(
        description=__doc__.split("\n\n")[0], formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("out_dir", type=Path, help="output folder (created)")
    parser.add_argument("--utterances", type=int, required=True, help="number of utterances")
    parser.add_argument("--seed", type=int, default=0, help="random seed (default 0)")
    parser.add_argument(
        "--split",
        choices=("train", "heldout"),
        default="train",
        help="voices and sentences to draw from (default train)",
    )
    parser.add_argument(
        "--split-seed",
        type=int,
        default=0,
        help="seed of the train / heldout partition; keep it equal for corpora that must be disjoint (default 0)",
    )
    parser.add_argument(
        "--voice",
        action="append",
        dest="voices",
        metavar="VOICE",
        help="use this espeak voice ('en-us', 'en-gb-x-rp+f1'); repeat for several (default: the split's voices)",
    )
    parser.add_argument("--no-augment", action="store_true", help="no noise, reverb, speed, telephone")
    parser.add_argument("--jobs", type=int, default=1, help="worker processes (default 1)")
    parser.add_argument("--overwrite", action="store_true", help="write into a folder that already holds a corpus")
    parser.add_argument("--quiet", action="store_true", help="no progress bar")
    return parser.parse_args(argv)


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    start = time.perf_counter()
    try:
        summary = make_corpus(
            args.out_dir,
            num_utterances=args.utterances,
            seed=args.seed,
            voices=args.voices,
            split=args.split,
            split_seed=args.split_seed,
            augment=not args.no_augment,
            jobs=args.jobs,
            progress=not args.quiet,
            overwrite=args.overwrite,
        )
    except AlignerError as error:
        print(f"error: {error}", file=sys.stderr)
        return 2
    elapsed = time.perf_counter() - start
    count = len(summary.entries)
    print(
        f"wrote {count} utterances, {summary.hours:.3f} hours of audio ({summary.seconds:.1f} s) "
        f"to {summary.out_dir} in {elapsed:.1f} s ({count / elapsed:.1f} utterances/s, "
        f"{summary.seconds / elapsed:.0f}x real time); manifest: {summary.manifest}"
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
