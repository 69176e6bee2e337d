"""Word-boundary accuracy with and without ``--adapt``.

    python benchmarks/bench_adapt.py [--minutes 1 --minutes 5] [--model SPEC]

Two corpora, each adapted on and aligned whole, as ``align-corpus --adapt``
does:
  * real: all recordings of ../shared/data/speech (their audio and
    transcripts, nothing else); scored on the 11 with a human alignment
    ("real") and on the others pocketsphinx can align ("real-ps");
  * synthetic: the held-out synthetic files of one held-out voice (a
    speaker never trained on), scored against the synthesizer's times.
Budgets: none (no adaptation), the default (5 passes, no time limit), and each
``--minutes``. Reported: MAE / % within 50 ms and the held-out score
before -> after.
"""

from __future__ import annotations

import argparse
import sys
from collections import defaultdict
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent))
import bench_accuracy as B  # noqa: E402


def _score(aligner, items) -> tuple[float, float]:
    errors = []
    for path, text, ref in items:
        result = aligner.align((B._audio_16k(path), 16000), text)
        errors += B.boundary_errors([(w.start, w.end) for w in result.words], ref)
    e = np.asarray(errors)
    return round(float(e.mean()), 1), round(100 * float((e <= 50).mean()), 1)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--model", default=None)
    parser.add_argument("--minutes", type=float, action="append", default=None)
    parser.add_argument("--synthetic-files", type=int, default=40)
    args = parser.parse_args()
    import torch

    from aligner import Aligner
    from aligner.training.adapt import adapt_model

    torch.set_num_threads(1)
    base = Aligner(args.model, device="cpu")
    corpora = {}
    if B.SPEECH.is_dir():
        files = []
        for text in sorted(B.SPEECH.glob("*.txt")):
            audio = next((p for p in text.parent.glob(text.stem + ".*") if p.suffix in {".wav", ".flac", ".mp3"}), None)
            if audio is not None:
                files.append((audio, text))
        ps = B.Pocketsphinx()
        corpora["real"] = (files, {"real": list(B.real_items()), "real-ps": list(B.pocketsphinx_items(ps))})
    by_voice = defaultdict(list)
    for grid in sorted((B.OUT / "heldout").rglob("*.TextGrid")):
        by_voice[grid.parent.name].append(grid)
    if by_voice:
        voice, grids = max(by_voice.items(), key=lambda kv: len(kv[1]))
        grids = grids[: args.synthetic_files]
        items = [
            (g.with_suffix(".wav"), g.with_suffix(".txt").read_text(encoding="utf-8").strip(), B.reference_words(g))
            for g in grids
        ]
        corpora[f"synthetic ({voice}, {len(grids)} files)"] = (
            [(g.with_suffix(".wav"), g.with_suffix(".txt")) for g in grids],
            {"synthetic": items},
        )
    budgets = [0.0, None] + [60.0 * m for m in (args.minutes or [])]
    print("| corpus | adaptation | set | MAE ms | within 50 ms | held-out score | steps |")
    print("|---|---|---|---|---|---|---|")
    for name, (files, sets) in corpora.items():
        prepared = [base.prepare(str(audio), text) for audio, text in files]
        for seconds in budgets:
            if seconds == 0.0:
                aligner, label, note, steps = base, "none", "", ""
            else:
                result = adapt_model(base, prepared, seconds=seconds)
                aligner = base.with_model(result.model)
                label = f"{result.seconds:.0f} s" + (" (default)" if seconds is None else "")
                note = f"{result.held_out_before:.3f} -> {result.held_out_after:.3f}" + (
                    "" if result.improved else " (not kept)"
                )
                steps = str(result.steps)
            for set_name, items in sets.items():
                mae, within = _score(aligner, items)
                print(f"| {name} | {label} | {set_name} | {mae} | {within}% | {note} | {steps} |", flush=True)


if __name__ == "__main__":
    main()
