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
3. hour: one 1-hour utterance (T = 180000 frames of 20 ms, L = 54000 tokens
   drawn uniformly from the 31 non-blank classes, so about 1 in 31 is a
   repeat, C = 32), aligned with the default ``max_memory`` (segmented,
   checkpointed search), then with the single pass forced (``max_memory`` of
   8 GiB), each in a fresh process: wall time, peak RSS of the process
   (``VmHWM``; ``getrusage(RUSAGE_SELF).ru_maxrss`` is shown too, but a
   child inherits its parent's RSS there) and the call's growth over the RSS
   once the inputs are built; both paths must be identical (SHA-1).
   torchaudio is not run at that size: its T x S int8 table alone would be
   18 GiB (reported in theory).
4. bounded: the segmented over the single-pass time of case 2's utterance,
   in this process (``max_memory=1`` forces the segmented search).

Usage::

    python benchmarks/bench_viterbi.py            # full size
    python benchmarks/bench_viterbi.py --quick    # reduced sizes, a few seconds
"""

from __future__ import annotations

import argparse
import hashlib
import json
import os
import platform
import resource
import statistics
import subprocess
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(Path(__file__).resolve().parent))

import torch  # noqa: E402
import torchaudio.functional as taf  # noqa: E402
from _memory import _reset_peak, _status_mib, make_inputs, probe_subprocess  # noqa: E402

from aligner.viterbi import count_repeats, forced_align  # noqa: E402

HOUR_SINGLE_PASS = 8 * 2**30  # max_memory that forces the single pass in case 3


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
    return {
        "ours": t_ours,
        "torchaudio": t_ref,
        "same": same,
        "mem_ours": mem_ours["extra_mib"],
        "mem_ref": mem_ref["extra_mib"],
        "table_mib": table_mib,
    }


def hour_child(frames: int, tokens: int, classes: int, max_memory: int | None) -> dict:
    """Run in a fresh process: time and peak RSS of one call of ours.

    The peak is the kernel's ``VmHWM`` (the peak RSS of this process image),
    reset to the current RSS just before the call when Linux allows it, so
    that ``call_peak_mib`` is the call's own peak; ``peak_mib`` is the whole
    process's peak (imports included). ``getrusage(RUSAGE_SELF).ru_maxrss``
    is reported too, but it cannot go below the RSS of the parent that
    forked this process, so it overstates a child of a large parent.
    """
    small_lp, small_tg = make_inputs(50, 10, classes, 1)
    forced_align(small_lp, small_tg)  # load the compiled kernel
    lp, tg = make_inputs(frames, tokens, classes)
    inputs = _status_mib("VmRSS")
    peak_before = _status_mib("VmHWM")
    reset = _reset_peak()
    start = time.perf_counter()
    paths, _ = forced_align(lp, tg, max_memory=max_memory)
    seconds = time.perf_counter() - start
    call_peak = _status_mib("VmHWM")
    return {
        "seconds": seconds,
        "inputs_mib": inputs,
        "call_peak_mib": call_peak,
        "extra_mib": call_peak - inputs,
        "peak_mib": max(peak_before, call_peak),
        "peak_reset": reset,
        "ru_maxrss_mib": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024.0,
        "repeats": count_repeats(tg[0]),
        "path_sha1": hashlib.sha1(paths.numpy().tobytes()).hexdigest(),
    }


def hour_subprocess(frames: int, tokens: int, classes: int, max_memory: int | None) -> dict:
    """:func:`hour_child` in a fresh Python process (clean peak RSS)."""
    out = subprocess.run(
        [
            sys.executable,
            str(Path(__file__).resolve()),
            "--child-hour",
            str(frames),
            str(tokens),
            str(classes),
            str(max_memory or 0),
        ],
        check=True,
        capture_output=True,
        text=True,
        cwd=ROOT,
    )
    return json.loads(out.stdout.strip().splitlines()[-1])


def bench_hour(frames: int, tokens: int, classes: int, max_memory: int | None) -> dict:
    bounded = hour_subprocess(frames, tokens, classes, max_memory)
    single = hour_subprocess(frames, tokens, classes, HOUR_SINGLE_PASS)
    table_gib = frames * (2 * tokens + 1) / 2**30  # torchaudio: one int8 per T x S cell
    return {
        "bounded": bounded,
        "single": single,
        "table_gib": table_gib,
        "same": bounded["path_sha1"] == single["path_sha1"],
    }


def bench_bounded(frames: int, tokens: int, classes: int, repeats: int) -> dict:
    lp, tg = make_inputs(frames, tokens, classes)
    small_lp, small_tg = make_inputs(50, 10, classes, 1)
    forced_align(small_lp, small_tg)  # warm-up
    single = lambda: forced_align(lp, tg)[0]  # noqa: E731
    bounded = lambda: forced_align(lp, tg, max_memory=1)[0]  # noqa: E731
    same = torch.equal(single(), bounded())
    return {"single": timed(single, repeats), "bounded": timed(bounded, repeats), "same": same}


def fmt(times: list[float]) -> str:
    return f"{min(times) * 1e3:9.1f} / {statistics.median(times) * 1e3:9.1f}"


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--quick", action="store_true", help="reduced sizes (a few seconds)")
    parser.add_argument("--repeats", type=int, default=None, help="timed repeats per method")
    parser.add_argument("--batch", type=int, default=None, help="utterances in case 1 (32)")
    parser.add_argument(
        "--child-hour",
        nargs=4,
        type=int,
        default=None,
        help=argparse.SUPPRESS,
        metavar=("FRAMES", "TOKENS", "CLASSES", "MAX_MEMORY"),
    )
    args = parser.parse_args(argv)
    if args.child_hour:  # case 3, in a fresh process (see hour_subprocess)
        frames, tokens, classes, max_memory = args.child_hour
        print(json.dumps(hour_child(frames, tokens, classes, max_memory or None)))
        return 0

    classes = 32
    batch = args.batch or (8 if args.quick else 32)
    frames, tokens = (6000, 1800) if args.quick else (30000, 9000)
    # Quick: a 6-minute "hour" with a 4 MiB budget, so that it is segmented too.
    hour_frames, hour_tokens, hour_budget = (18000, 5400, 4 * 2**20) if args.quick else (180000, 54000, None)
    repeats = args.repeats or (3 if args.quick else 5)
    cores = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count()

    print(
        f"# bench_viterbi {'(quick) ' if args.quick else ''}- torch {torch.__version__}, "
        f"{platform.processor() or platform.machine()}, {cores} cores, float32, C={classes}"
    )
    b = bench_batch(batch, classes, repeats)
    long = bench_long(frames, tokens, classes, max(2, repeats // 2))
    hour = bench_hour(hour_frames, hour_tokens, classes, hour_budget)
    bounded = bench_bounded(frames, tokens, classes, max(2, repeats // 2))

    batch_ratio = min(b["torchaudio"]) / min(b["ours"])
    batch_ratio_med = statistics.median(b["torchaudio"]) / statistics.median(b["ours"])
    long_ratio = min(long["torchaudio"]) / min(long["ours"])
    mem_ratio = long["mem_ours"] / long["mem_ref"] if long["mem_ref"] > 0 else float("nan")
    hb, hs = hour["bounded"], hour["single"]
    bounded_ratio = min(bounded["bounded"]) / min(bounded["single"])

    print(
        f"\n1. batch of {batch} (T 500-1000, L 150-300): time ms best / median "
        f"of {repeats}; paths identical: {b['same']}"
    )
    print(f"   ours (batched, {cores} threads)  {fmt(b['ours'])}")
    print(f"   ours (batched, 1 thread)   {fmt(b['ours_1thread'])}")
    print(f"   torchaudio loop            {fmt(b['torchaudio'])}")
    print(f"\n2. one utterance T={frames}, L={tokens}: paths identical: {long['same']}")
    print(f"   ours                       {fmt(long['ours'])} ms, extra peak RSS {long['mem_ours']:7.1f} MiB")
    print(
        f"   torchaudio                 {fmt(long['torchaudio'])} ms, extra peak RSS "
        f"{long['mem_ref']:7.1f} MiB (its T*S table: {long['table_mib']:.1f} MiB)"
    )

    print("\n| case | ours | torchaudio | ratio | target | met |")
    print("|---|---|---|---|---|---|")
    print(
        f"| batch {batch} x 10-20 s, time (best) | {min(b['ours']) * 1e3:.1f} ms | "
        f"{min(b['torchaudio']) * 1e3:.1f} ms | {batch_ratio:.1f}x faster "
        f"(median {batch_ratio_med:.1f}x) | >= 2x | {'yes' if batch_ratio >= 2 else 'NO'} |"
    )
    print(
        f"| 1 x T={frames}, time (best) | {min(long['ours']) * 1e3:.0f} ms | "
        f"{min(long['torchaudio']) * 1e3:.0f} ms | {long_ratio:.1f}x faster | >= 1x | "
        f"{'yes' if long_ratio >= 1 else 'NO'} |"
    )
    print(
        f"| 1 x T={frames}, extra memory | {long['mem_ours']:.1f} MiB | "
        f"{long['mem_ref']:.1f} MiB | {mem_ratio:.3f} | <= 0.25 | "
        f"{'yes' if mem_ratio <= 0.25 else 'NO'} |"
    )

    hour_name = f"1 x T={hour_frames}, L={hour_tokens} (R={hb['repeats']})"
    print(
        f"\n3. one utterance T={hour_frames}, L={hour_tokens} with {hb['repeats']} repeats, "
        f"fresh process each; paths identical: {hour['same']}"
    )
    for name, r in (
        (f"ours, segmented (max_memory {'default' if hour_budget is None else hour_budget})", hb),
        ("ours, single pass forced", hs),
    ):
        print(
            f"   {name:36s} {r['seconds']:6.2f} s, peak RSS {r['peak_mib']:7.1f} MiB "
            f"(ru_maxrss {r['ru_maxrss_mib']:.1f}), RSS with inputs {r['inputs_mib']:6.1f} MiB, "
            f"call's extra {r['extra_mib']:7.1f} MiB"
            + ("" if r["peak_reset"] else " (peak not reset: extra is a lower bound)")
        )
    print(f"   torchaudio                           not run: its T*S table alone is {hour['table_gib']:.1f} GiB")
    print(
        f"\n4. T={frames}, L={tokens}, segmented (max_memory=1) vs single pass: time ms best / "
        f"median; paths identical: {bounded['same']}"
    )
    print(f"   single pass                {fmt(bounded['single'])}")
    print(f"   segmented                  {fmt(bounded['bounded'])}")

    print("\n| case | ours | reference | ratio | target | met |")
    print("|---|---|---|---|---|---|")
    print(
        f"| {hour_name}, time | {hb['seconds']:.1f} s (single pass {hs['seconds']:.1f} s) | "
        f"torchaudio not run | {hb['seconds'] / hs['seconds']:.2f}x the single pass | -- | -- |"
    )
    print(
        f"| {hour_name}, peak RSS | {hb['peak_mib']:.0f} MiB (extra {hb['extra_mib']:.0f} MiB) | "
        f"single pass {hs['peak_mib']:.0f} MiB (extra {hs['extra_mib']:.0f} MiB); torchaudio "
        f"table alone {hour['table_gib']:.1f} GiB | {hb['peak_mib'] / hs['peak_mib']:.3f} | "
        f"< 3 GB | {'yes' if hb['peak_mib'] * 2**20 < 3e9 else 'NO'} |"
    )
    print(
        f"| 1 x T={frames}, segmented / single-pass time (best) | "
        f"{min(bounded['bounded']) * 1e3:.0f} ms | {min(bounded['single']) * 1e3:.0f} ms | "
        f"{bounded_ratio:.2f}x | <= 2x | {'yes' if bounded_ratio <= 2 else 'NO'} |"
    )

    print("\nCSV (for benchmarks/RESULTS.md):")
    print(
        "bench,batch,batch_ours_ms,batch_torchaudio_ms,batch_speedup,long_T,long_L,"
        "long_ours_ms,long_torchaudio_ms,long_speedup,long_ours_mib,long_torchaudio_mib,"
        "mem_ratio,cores"
    )
    print(
        f"viterbi{'-quick' if args.quick else ''},{batch},{min(b['ours']) * 1e3:.1f},"
        f"{min(b['torchaudio']) * 1e3:.1f},{batch_ratio:.2f},{frames},{tokens},"
        f"{min(long['ours']) * 1e3:.0f},{min(long['torchaudio']) * 1e3:.0f},{long_ratio:.2f},"
        f"{long['mem_ours']:.1f},{long['mem_ref']:.1f},{mem_ratio:.3f},{cores}"
    )
    print(
        "bench,hour_T,hour_L,hour_R,hour_s,hour_peak_mib,hour_extra_mib,single_s,"
        "single_peak_mib,single_extra_mib,torchaudio_table_gib,bounded_T,bounded_ms,"
        "single_ms,bounded_ratio"
    )
    print(
        f"viterbi-hour{'-quick' if args.quick else ''},{hour_frames},{hour_tokens},"
        f"{hb['repeats']},{hb['seconds']:.2f},{hb['peak_mib']:.0f},{hb['extra_mib']:.0f},"
        f"{hs['seconds']:.2f},{hs['peak_mib']:.0f},{hs['extra_mib']:.0f},"
        f"{hour['table_gib']:.1f},{frames},{min(bounded['bounded']) * 1e3:.0f},"
        f"{min(bounded['single']) * 1e3:.0f},{bounded_ratio:.2f}"
    )
    return 0 if b["same"] and long["same"] and hour["same"] and bounded["same"] else 1


if __name__ == "__main__":
    raise SystemExit(main())
