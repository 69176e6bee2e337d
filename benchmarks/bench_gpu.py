"""GPU throughput (needs CUDA): emissions in bf16 for a base- and a
large-size architecture at several batch sizes, and our batched GPU Viterbi
against torchaudio's CUDA ``forced_align`` called per item.

    python benchmarks/bench_gpu.py
    python benchmarks/bench_gpu.py --seconds 15 --batches 1 8 32 64

Models are torchaudio's ``wav2vec2_base`` / ``wav2vec2_large_lv60k``
architectures with random weights and the 29 English labels (the cost of
the real checkpoints; weights cannot be downloaded on the benchmark machine).
Emission throughput is audio seconds per wall second (x real time) through
``aligner.models.emissions.EmissionModel`` (padding, per-item normalization,
log-softmax included), after a warm-up, synchronised.
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

import torch

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))


def _timed(fn, repeats: int = 3) -> float:
    fn()
    torch.cuda.synchronize()
    best = float("inf")
    for _ in range(repeats):
        start = time.perf_counter()
        fn()
        torch.cuda.synchronize()
        best = min(best, time.perf_counter() - start)
    return best


def emission_throughput(arch: str, seconds: float, batches: list[int], dtype: str) -> list[tuple[int, float]]:
    from aligner.models.emissions import EmissionModel
    from aligner.testing import random_model

    model = random_model(arch)
    results = []
    for batch in batches:
        emitter = EmissionModel(model, device="cuda", dtype=dtype, window_batch=batch)
        waves = [0.1 * torch.randn(int(seconds * 16000), device="cuda") for _ in range(batch)]
        try:
            best = _timed(lambda emitter=emitter, waves=waves: emitter(waves))
        except torch.OutOfMemoryError:
            results.append((batch, float("nan")))
            break
        results.append((batch, batch * seconds / best))
        torch.cuda.empty_cache()
    return results


def viterbi_comparison(batch: int, frames: int, tokens: int) -> tuple[float, float]:
    import torchaudio.functional as TAF

    from aligner.viterbi import forced_align

    gen = torch.Generator().manual_seed(0)
    log_probs = torch.randn(batch, frames, 32, generator=gen).log_softmax(-1).cuda()
    targets = torch.randint(1, 32, (batch, tokens), generator=gen).cuda()
    ours = _timed(lambda: forced_align(log_probs, targets))

    def per_item():
        for b in range(batch):
            TAF.forced_align(log_probs[b : b + 1], targets[b : b + 1], blank=0)

    theirs = _timed(per_item)
    paths, _ = forced_align(log_probs, targets)
    for b in range(batch):
        ref, _ = TAF.forced_align(log_probs[b : b + 1], targets[b : b + 1], blank=0)
        if not torch.equal(ref[0], paths[b]):
            raise SystemExit(f"paths differ from torchaudio's for item {b}")
    return ours, theirs


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--seconds", type=float, default=15.0, help="length of each utterance")
    parser.add_argument("--batches", type=int, nargs="+", default=[1, 4, 8, 16, 32, 64])
    parser.add_argument("--dtype", default="bfloat16")
    args = parser.parse_args()
    if not torch.cuda.is_available():
        raise SystemExit("bench_gpu.py needs a CUDA GPU; none is present")
    print(f"device: {torch.cuda.get_device_name()}, torch {torch.__version__}, dtype {args.dtype}")
    print()
    print("| architecture | batch | x real time |")
    print("|---|---|---|")
    for arch in ("wav2vec2_base", "wav2vec2_large_lv60k"):
        for batch, speed in emission_throughput(arch, args.seconds, args.batches, args.dtype):
            print(f"| {arch} | {batch} × {args.seconds:g} s | {speed:.0f} |", flush=True)
    print()
    print("| Viterbi on the GPU | ours (batched) | torchaudio CUDA (per item) | ratio |")
    print("|---|---|---|---|")
    for batch, frames, tokens in ((32, 750, 225), (4, 30000, 9000)):
        ours, theirs = viterbi_comparison(batch, frames, tokens)
        print(
            f"| {batch} × T {frames}, L {tokens} | {ours * 1000:.1f} ms | {theirs * 1000:.1f} ms | "
            f"{theirs / ours:.2f}x |",
            flush=True,
        )


if __name__ == "__main__":
    main()
