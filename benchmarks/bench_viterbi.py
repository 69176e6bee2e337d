"""Benchmark: our batched CTC Viterbi vs a loop of torchaudio's forced_align.

Two cases, float32, identical CPU inputs, both methods in the same run:

1. batch: B utterances of 10-20 s (T uniform in [500, 1000] frames, L in
   [150, 300] tokens, C = 32): one batched call vs a Python loop of
   ``torchaudio.functional.forced_align`` (one item at a time). Best and
   median of a few repeats after a warm-up call (numba load/compile time is
   excluded).
2. long: one 10-minute utterance (T = 30000, L = 9000, C = 32): time ratio
   and extra memory. torchaudio's T x S int8 back-pointer table lives in C++,
   so memory is the growth of peak RSS over one call in a fresh process per
   method (see ``_memory.py``).

Usage::

    python benchmarks/bench_viterbi.py            # full size
    python benchmarks/bench_viterbi.py --quick    # reduced sizes, a few seconds
"""

from __future__ import annotations

import argparse
import os
import platform
import statistics
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(Path(__file__).resolve().parent))

import torch  # noqa: E402
import torchaudio.functional as taf  # noqa: E402

from _memory import make_inputs, probe_subprocess  # noqa: E402
from aligner.viterbi import forced_align  # noqa: E402


def timed(fn, repeats: int) -> list[float]:
    """Wall-clock seconds of ``repeats`` calls (after the caller's warm-up)."""
    times = []
    for _ in range(repeats):
        start = time.perf_counter()
        fn()
        times.append(time.perf_counter() - start)
    return times


def batch_inputs(batch: int, classes: int, seed: int = 0):
    gen = torch.Generator().manual_seed(seed)
    frames = torch.randint(500, 1001, (batch,), generator=gen)
    tokens = torch.randint(150, 301, (batch,), generator=gen)
    log_probs = torch.randn(batch, int(frames.max()), classes, generator=gen).log_softmax(-1)
    targets = torch.randint(1, classes, (batch, int(tokens.max())), generator=gen)
    return log_probs, targets, frames, tokens


def torchaudio_loop(log_probs, targets, frames, tokens):
    """Each item alone through torchaudio, padded like our output."""
    B, T = log_probs.shape[:2]
    paths = torch.zeros((B, T), dtype=torch.int64)
    for b in range(B):
        n, m = int(frames[b]), int(tokens[b])
        p, _ = taf.forced_align(log_probs[b : b + 1, :n], targets[b : b + 1, :m], blank=0)
        paths[b, :n] = p[0]
    return paths


def bench_batch(batch: int, classes: int, repeats: int) -> dict:
    lp, tg, frames, tokens = batch_inputs(batch, classes)
    ours = lambda: forced_align(lp, tg, frames, tokens)[0]  # noqa: E731
    ours_1 = lambda: forced_align(lp, tg, frames, tokens, num_threads=1)[0]  # noqa: E731
    ref = lambda: torchaudio_loop(lp, tg, frames, tokens)  # noqa: E731
    same = torch.equal(ours(), ref())  # also the warm-up of both
    ours_1()
    t_ours = timed(ours, repeats)
    t_ours_1 = timed(ours_1, repeats)
    t_ref = timed(ref, repeats)
    return {"ours": t_ours, "ours_1thread": t_ours_1, "torchaudio": t_ref, "same": same}


def bench_long(frames: int, tokens: int, classes: int, repeats: int) -> dict:
    lp, tg = make_inputs(frames, tokens, classes)
    small_lp, small_tg = make_inputs(50, 10, classes, 1)
    forced_align(small_lp, small_tg)  # warm-up
    taf.forced_align(small_lp, small_tg, blank=0)
    ours = lambda: forced_align(lp, tg)[0]  # noqa: E731
    ref = lambda: taf.forced_align(lp, tg, blank=0)[0]  # noqa: E731
    same = torch.equal(ours(), ref())
    t_ours = timed(ours, repeats)
    t_ref = timed(ref, repeats)
    mem_ours = probe_subprocess("ours", frames, tokens, classes)
    mem_ref = probe_subprocess("torchaudio", frames, tokens, classes)
    table_mib = frames * (2 * tokens + 1) / 2**20  # torchaudio: one int8 per T x S cell
    return {"ours": t_ours, "torchaudio": t_ref, "same": same,
            "mem_ours": mem_ours["extra_mib"], "mem_ref": mem_ref["extra_mib"],
            "table_mib": table_mib}


def fmt(times: list[float]) -> str:
    return f"{min(times) * 1e3:9.1f} / {statistics.median(times) * 1e3:9.1f}"


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--quick", action="store_true", help="reduced sizes (a few seconds)")
    parser.add_argument("--repeats", type=int, default=None, help="timed repeats per method")
    parser.add_argument("--batch", type=int, default=None, help="utterances in case 1 (32)")
    args = parser.parse_args(argv)

    classes = 32
    batch = args.batch or (8 if args.quick else 32)
    frames, tokens = (6000, 1800) if args.quick else (30000, 9000)
    repeats = args.repeats or (3 if args.quick else 5)
    cores = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count()

    print(f"# bench_viterbi {'(quick) ' if args.quick else ''}- torch {torch.__version__}, "
          f"{platform.processor() or platform.machine()}, {cores} cores, float32, C={classes}")
    b = bench_batch(batch, classes, repeats)
    long = bench_long(frames, tokens, classes, max(2, repeats // 2))

    batch_ratio = min(b["torchaudio"]) / min(b["ours"])
    batch_ratio_med = statistics.median(b["torchaudio"]) / statistics.median(b["ours"])
    long_ratio = min(long["torchaudio"]) / min(long["ours"])
    mem_ratio = long["mem_ours"] / long["mem_ref"] if long["mem_ref"] > 0 else float("nan")

    print(f"\n1. batch of {batch} (T 500-1000, L 150-300): time ms best / median "
          f"of {repeats}; paths identical: {b['same']}")
    print(f"   ours (batched, {cores} threads)  {fmt(b['ours'])}")
    print(f"   ours (batched, 1 thread)   {fmt(b['ours_1thread'])}")
    print(f"   torchaudio loop            {fmt(b['torchaudio'])}")
    print(f"\n2. one utterance T={frames}, L={tokens}: paths identical: {long['same']}")
    print(f"   ours                       {fmt(long['ours'])} ms, extra peak RSS "
          f"{long['mem_ours']:7.1f} MiB")
    print(f"   torchaudio                 {fmt(long['torchaudio'])} ms, extra peak RSS "
          f"{long['mem_ref']:7.1f} MiB (its T*S table: {long['table_mib']:.1f} MiB)")

    print("\n| case | ours | torchaudio | ratio | target | met |")
    print("|---|---|---|---|---|---|")
    print(f"| batch {batch} x 10-20 s, time (best) | {min(b['ours']) * 1e3:.1f} ms | "
          f"{min(b['torchaudio']) * 1e3:.1f} ms | {batch_ratio:.1f}x faster "
          f"(median {batch_ratio_med:.1f}x) | >= 2x | {'yes' if batch_ratio >= 2 else 'NO'} |")
    print(f"| 1 x T={frames}, time (best) | {min(long['ours']) * 1e3:.0f} ms | "
          f"{min(long['torchaudio']) * 1e3:.0f} ms | {long_ratio:.1f}x faster | >= 1x | "
          f"{'yes' if long_ratio >= 1 else 'NO'} |")
    print(f"| 1 x T={frames}, extra memory | {long['mem_ours']:.1f} MiB | "
          f"{long['mem_ref']:.1f} MiB | {mem_ratio:.3f} | <= 0.25 | "
          f"{'yes' if mem_ratio <= 0.25 else 'NO'} |")

    print("\nCSV (for benchmarks/RESULTS.md):")
    print("bench,batch,batch_ours_ms,batch_torchaudio_ms,batch_speedup,long_T,long_L,"
          "long_ours_ms,long_torchaudio_ms,long_speedup,long_ours_mib,long_torchaudio_mib,"
          "mem_ratio,cores")
    print(f"viterbi{'-quick' if args.quick else ''},{batch},{min(b['ours']) * 1e3:.1f},"
          f"{min(b['torchaudio']) * 1e3:.1f},{batch_ratio:.2f},{frames},{tokens},"
          f"{min(long['ours']) * 1e3:.0f},{min(long['torchaudio']) * 1e3:.0f},{long_ratio:.2f},"
          f"{long['mem_ours']:.1f},{long['mem_ref']:.1f},{mem_ratio:.3f},{cores}")
    return 0 if b["same"] and long["same"] else 1


if __name__ == "__main__":
    raise SystemExit(main())
