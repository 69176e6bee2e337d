"""Partial mode (``--partial``) with the duration-aware decoder: what it
leaves out and skips on transcripts that match, and what it finds when a
word is inserted.

    python benchmarks/bench_partial.py                       # the defaults
    python benchmarks/bench_partial.py --costs 5,7,9         # a sweep of WORD_SKIP_COST
    python benchmarks/bench_partial.py --long-minutes 10     # plus a long concatenation
    python benchmarks/bench_partial.py --long-minutes 120 --long-only   # two hours, nothing else

Sets (as in ``bench_accuracy.py``): ``synthetic``, 60 files of the held-out
synthetic corpus (``benchmarks/out/heldout``, files 100-159); ``real-ps``,
the shared recordings without a human alignment. Each file is aligned as
transcribed and again with one word (a random common word) inserted at a
random place. Reported per price: the share of spoken words left out, the
inserted words left out, the audio reported as skipped, and how often a word
start moves more than 50 ms from the plain (non-partial) alignment.

``--long-minutes N``: the shared recordings and the example concatenated
(in a fixed random order, 0.2-0.8 s apart) to N minutes, with their
transcripts: words left out and audio skipped on a long, well-matched
recording.
"""

from __future__ import annotations

import argparse
import random
import sys
import time
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent))

import bench_accuracy as B  # noqa: E402

INSERTED = [
    "the",
    "a",
    "of",
    "and",
    "to",
    "in",
    "is",
    "was",
    "he",
    "it",
    "that",
    "for",
    "on",
    "with",
    "as",
    "his",
    "at",
    "by",
    "had",
    "but",
    "from",
    "they",
    "this",
    "which",
    "river",
    "morning",
    "window",
    "people",
    "garden",
    "silver",
    "yellow",
    "remember",
    "station",
    "captain",
]


def real_ps_items():
    for text_path in sorted(B.SPEECH.glob("*.txt")):
        if text_path.with_suffix(".TextGrid").exists():
            continue
        audio = next(
            (p for p in text_path.parent.glob(text_path.stem + ".*") if p.suffix in {".wav", ".flac", ".mp3"}), None
        )
        if audio is not None:
            yield audio, text_path.read_text(encoding="utf-8").strip()


def cases(seed: int):
    from aligner import Aligner

    rng = random.Random(seed)
    plain = Aligner()
    sets = {"synthetic": [(a, t) for a, t, _ in list(B.synthetic_items(B.OUT / "heldout", 200))[100:160]]}
    if B.SPEECH.is_dir():
        sets["real-ps"] = list(real_ps_items())
    out = []
    for name, items in sets.items():
        for audio_path, text in items:
            audio = (B._audio_16k(audio_path), 16000)
            words = text.split()
            k = rng.randrange(len(words) + 1)
            inserted = " ".join(words[:k] + [rng.choice(INSERTED)] + words[k:])
            base = [w.start for w in plain.align(audio, text).words]
            out.append((name, audio, text, inserted, k, base))
    return out


def sweep(items, cost: float) -> list[str]:
    import aligner.pipeline as pipeline
    from aligner import Aligner

    pipeline.WORD_SKIP_COST = cost
    partial = Aligner(partial=True)
    rows = []
    for name in dict.fromkeys(n for n, *_ in items):
        left_out = spoken = found = inserted = 0
        skipped, moved = 0.0, []
        for set_name, audio, text, with_word, k, base in items:
            if set_name != name:
                continue
            result = partial.align(audio, text)
            left_out += sum(not w.aligned for w in result.words)
            spoken += len(result.words)
            skipped += sum(b - a for a, b in result.skipped)
            moved += [abs(w.start - s) for w, s in zip(result.words, base) if w.aligned]
            result = partial.align(audio, with_word)
            found += not result.words[k].aligned
            inserted += 1
            others = [w for i, w in enumerate(result.words) if i != k]
            left_out += sum(not w.aligned for w in others)
            spoken += len(others)
            moved += [abs(w.start - s) for w, s in zip(others, base) if w.aligned]
        moved_far = 100 * float(np.mean(np.array(moved) > 0.05))
        rows.append(
            f"| {cost:g} | {name} | {left_out}/{spoken} ({100 * left_out / spoken:.1f} %) | "
            f"{found}/{inserted} ({100 * found / inserted:.0f} %) | {skipped:.1f} s | {moved_far:.1f} % |"
        )
    return rows


def long_recording(minutes: float, folder: Path) -> tuple[Path, Path]:
    import librosa
    import soundfile

    files = sorted(p for p in B.SPEECH.iterdir() if p.suffix in (".wav", ".flac") and "whisper" not in p.name)
    files.append(B.ROOT / "examples" / "example.wav")
    rng = np.random.default_rng(0)
    pieces, texts, total = [], [], 0.0
    while total < minutes * 60:
        for path in rng.permutation(files):
            y, _ = librosa.load(path, sr=16000, mono=True)
            pieces += [
                y / max(1e-3, float(np.abs(y).max())) * 0.5,
                np.zeros(int(16000 * rng.uniform(0.2, 0.8)), np.float32),
            ]
            texts.append(path.with_suffix(".txt").read_text(encoding="utf-8").strip())
            total += len(y) / 16000 + 0.5
    folder.mkdir(parents=True, exist_ok=True)
    audio, text = folder / f"long{minutes:g}.wav", folder / f"long{minutes:g}.txt"
    soundfile.write(audio, np.concatenate(pieces), 16000)
    text.write_text(" ".join(texts), encoding="utf-8")
    return audio, text


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--costs", default=None, help="comma-separated WORD_SKIP_COST values (default: the shipped)")
    parser.add_argument("--long-minutes", type=float, default=0.0)
    parser.add_argument("--long-only", action="store_true", help="only the long recording (skip the short sets)")
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args()

    import torch

    from aligner import Aligner
    from aligner.partial import WORD_SKIP_COST

    torch.set_num_threads(1)
    costs = [float(c) for c in args.costs.split(",")] if args.costs else [WORD_SKIP_COST]
    if not args.long_only:
        items = cases(args.seed)
        print(
            "| price per token | set | spoken words left out | inserted words left out | skipped audio "
            "| starts > 50 ms from plain |"
        )
        print("|---|---|---|---|---|---|")
        for cost in costs:
            print("\n".join(sweep(items, cost)), flush=True)
    if args.long_minutes and B.SPEECH.is_dir():
        import aligner.pipeline as pipeline

        pipeline.WORD_SKIP_COST = WORD_SKIP_COST
        audio, text = long_recording(args.long_minutes, B.OUT / "long")
        first_pass = Aligner()
        # compare with the plain alignment's first pass: the guard's fallback
        # (a stricter re-alignment of a suspect file, which partial mode does not do) left out
        first_pass._fall_back = lambda items, log_probs, lengths, levels, quiet, results: results
        plain = first_pass.align(audio, text)
        start = time.perf_counter()
        result = Aligner(partial=True).align(audio, text)
        seconds = time.perf_counter() - start
        moved = np.array([abs(a.start - b.start) for a, b in zip(result.words, plain.words) if a.aligned])
        print(
            f"\nlong recording, {args.long_minutes:g} minutes, {len(result.words)} words: "
            f"{len(result.unaligned_words)} left out, {sum(b - a for a, b in result.skipped):.1f} s skipped "
            f"in {len(result.skipped)} runs, {100 * float(np.mean(moved > 0.05)):.1f} % of starts > 50 ms from "
            f"the plain alignment's first pass; partial mode "
            f"{seconds:.1f} s"
        )


if __name__ == "__main__":
    main()
