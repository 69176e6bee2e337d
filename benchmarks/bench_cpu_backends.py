"""Emission backends on a CPU: torch float32 against ONNX Runtime float32
and ONNX Runtime int8 (``--dtype onnx`` / ``--dtype onnx-int8``), same
process, same inputs, alternating, best of ``--rounds``.

    python benchmarks/bench_cpu_backends.py                       # everything
    python benchmarks/bench_cpu_backends.py --rounds 1 --threads 1 --base-seconds 10   # short

Prints markdown tables:

* emission speed: x real time (audio seconds / best wall seconds of the
  emission stage, ``EmissionModel``, batches of 4 length-sorted recordings
  as ``align-corpus`` runs them on a CPU) and the ratio to torch float32,
  for the packaged model (``TRELLIS_EN_PHONES``) on the real recordings of
  ``../shared/data/speech`` and for a base-size random-weight
  ``wav2vec2_base`` (95 M parameters) on the first ``--base-seconds`` of
  them; with the largest |difference| of the log-probabilities to torch
  float32 (valid frames) and how many frames keep the same best label.
* word-boundary accuracy of the packaged model with each backend on the
  human-aligned shared recordings (as ``bench_accuracy.py``'s "real" set):
  MAE, median, % within 20 / 50 ms, and the MAE change against torch
  float32 (the rule: it must not get worse by more than 1 ms).

Needs the ``onnx`` extra (``pip install -e '.[onnx]'``); praatio (the
``dev`` extra) for the accuracy table. Exports are cached (see
:mod:`aligner.models.onnx_backend`); ``--cache DIR`` chooses the folder
(``ALIGNER_CACHE_DIR``; the first run of a model pays its export, outside the timings).
"""

from __future__ import annotations

import argparse
import os
import platform
import sys
import time
from pathlib import Path

import torch

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "benchmarks"))

BACKENDS = {"torch float32": "float32", "onnx float32": "onnx", "onnx int8": "onnx-int8"}


def cpu_summary() -> str:
    flags: set[str] = set()
    name = platform.processor() or platform.machine()
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("flags") and not flags:
                flags = set(line.split(":", 1)[1].split())
            elif line.startswith("model name") and name in ("", platform.machine()):
                name = line.split(":", 1)[1].strip()
    except OSError:
        pass
    wanted = ["avx2", "avx512f", "avx512_vnni", "avx_vnni", "avx512_bf16", "amx_bf16", "amx_int8"]
    present = [flag for flag in wanted if flag in flags]
    shown = " ".join(present) or f"none of {wanted}"
    return f"{name}, {os.cpu_count()} cores, flags: {shown}"


def recordings(limit_seconds: float | None = None) -> list[torch.Tensor]:
    """The shared recordings at 16 kHz, shortest first (up to ``limit_seconds`` in all)."""
    from bench_accuracy import SPEECH

    from aligner.audio import load_audio

    waves = [
        load_audio(path, 16000)
        for path in sorted(SPEECH.iterdir())
        if path.suffix.lower() in {".wav", ".flac", ".mp3"} and path.with_suffix(".txt").is_file()
    ]
    waves.sort(key=lambda w: w.numel())
    if limit_seconds is None:
        return waves
    chosen, total = [], 0.0
    for wave in waves:
        if total + wave.numel() / 16000 > limit_seconds and chosen:
            break
        chosen.append(wave)
        total += wave.numel() / 16000
    return chosen


def emission_rows(name: str, model, waves, threads_list, rounds: int) -> list[str]:
    from aligner.models.emissions import EmissionModel

    seconds = sum(w.numel() for w in waves) / 16000
    rows = []
    for threads in threads_list:
        torch.set_num_threads(threads)
        emitters = {
            label: EmissionModel(model, device="cpu", dtype=dtype, window_batch=4) for label, dtype in BACKENDS.items()
        }
        reference = emitters["torch float32"](waves)
        quality = {}
        for label, emitter in emitters.items():
            out = emitter(waves)  # also the warm-up
            diffs, same, frames = 0.0, 0, 0
            for i, n in enumerate(reference.lengths.tolist()):
                a, b = out.log_probs[i, :n], reference.log_probs[i, :n]
                diffs = max(diffs, float((a - b).abs().max()))
                same += int((a.argmax(-1) == b.argmax(-1)).sum())
                frames += n
            quality[label] = (diffs, 100 * same / frames)
        best = {label: float("inf") for label in emitters}
        for _ in range(rounds):
            for label, emitter in emitters.items():
                start = time.perf_counter()
                emitter(waves)
                best[label] = min(best[label], time.perf_counter() - start)
        base = best["torch float32"]
        for label in emitters:
            diff, agree = quality[label]
            rows.append(
                f"| {name} | {threads} | {label} | {best[label]:.2f} s | {seconds / best[label]:.1f} | "
                f"{base / best[label]:.2f}x | {diff:.2g} | {agree:.1f} % |"
            )
        print(f"  done: {name}, {threads} thread(s)", file=sys.stderr, flush=True)
    return rows


class _System:
    def __init__(self, label: str, dtype: str):
        from aligner import Aligner

        self.name = label
        self.aligner = Aligner(None, device="cpu", dtype=dtype)

    def align(self, audio, text):
        result = self.aligner.align((audio, 16000), text)
        return [(w.start, w.end) for w in result.words]


def accuracy_rows() -> list[str]:
    """One row per backend; the MAE change is computed from the unrounded
    errors, and "moved" counts boundaries more than 1 ms from where torch
    float32 puts them."""
    import numpy as np
    from bench_accuracy import evaluate, real_items

    items = list(real_items())
    rows, base = [], None
    for label, dtype in BACKENDS.items():
        result = evaluate(_System(label, dtype), items)
        summary = result.summary()
        if "mae_ms" not in summary:
            rows.append(f"| {label} | no boundary ({summary}) | | | | | | |")
            continue
        errors = np.asarray(result.errors_ms, dtype=float)
        if base is None:
            base = errors
        same_set = errors.shape == base.shape and result.failures == 0
        delta = float(errors.mean() - base.mean())
        moved = f"{int((np.abs(errors - base) > 1.0).sum())}" if same_set else "n/a (failures)"
        if label == "torch float32":
            verdict = "baseline"
        else:
            verdict = "ok (≤ 1 ms)" if delta <= 1.0 else "**worse by > 1 ms**"
        rows.append(
            f"| {label} | {summary['boundaries']} | {errors.mean():.2f} ms | {summary['median_ms']:.1f} ms | "
            f"{summary['within_20ms_pct']:.1f} % | {summary['within_50ms_pct']:.1f} % | {delta:+.2f} ms {verdict} | "
            f"{moved} | {summary['failures']} |"
        )
    return rows


def speed_table(rounds: int, threads_list: list[int], base_seconds: float) -> None:
    from aligner import load_model
    from aligner.testing import random_model

    waves = recordings()
    models = [(f"TRELLIS_EN_PHONES ({sum(w.numel() for w in waves) / 16000:.0f} s)", load_model(), waves)]
    if base_seconds > 0:
        base_waves = recordings(base_seconds)
        seconds = sum(w.numel() for w in base_waves) / 16000
        models.append((f"wav2vec2_base, random weights ({seconds:.0f} s)", random_model("wav2vec2_base"), base_waves))
    print(
        "| model (audio) | threads | backend | best time | x real time | ratio | max abs Δ log-prob | same best label |"
    )
    print("|---|---|---|---|---|---|---|---|")
    for name, model, model_waves in models:
        for row in emission_rows(name, model, model_waves, threads_list, rounds):
            print(row, flush=True)


def main(argv=None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--rounds", type=int, default=3, help="timed runs of each backend (best is kept)")
    parser.add_argument("--threads", default="1,2", help="comma-separated torch / onnxruntime thread counts")
    parser.add_argument("--base-seconds", type=float, default=30.0, help="audio for the base-size model (0: skip it)")
    parser.add_argument("--skip-accuracy", action="store_true", help="no word-boundary table")
    parser.add_argument("--skip-speed", action="store_true", help="no emission-speed table")
    parser.add_argument("--cache", default=None, help="export cache folder (sets ALIGNER_CACHE_DIR)")
    args = parser.parse_args(argv)
    if args.cache:
        os.environ["ALIGNER_CACHE_DIR"] = args.cache
    threads_list = [int(t) for t in args.threads.split(",") if t.strip()]

    from aligner.models.onnx_backend import require_onnx

    require_onnx()
    print(f"CPU: {cpu_summary()}; torch {torch.__version__}, capability {torch.backends.cpu.get_cpu_capability()}")
    import onnxruntime

    print(f"onnxruntime {onnxruntime.__version__}; best of {args.rounds} alternating rounds\n")
    if not args.skip_speed:
        speed_table(args.rounds, threads_list, args.base_seconds)
    if not args.skip_accuracy:
        torch.set_num_threads(max(threads_list))
        print("\nWord boundaries of TRELLIS_EN_PHONES against the human TextGrids of ../shared/data/speech:\n")
        print(
            "| backend | boundaries | MAE | median | within 20 ms | within 50 ms | MAE change "
            "| moved > 1 ms | failures |"
        )
        print("|---|---|---|---|---|---|---|---|---|")
        for row in accuracy_rows():
            print(row, flush=True)


if __name__ == "__main__":
    main()
