"""Peak-memory probe for one forced-alignment call, run in a fresh process.

torchaudio allocates its back-pointer table in C++, where ``tracemalloc``
cannot see it, so the probe measures the growth of the process's peak
resident set size across one call. Inputs are built and the method is warmed
up (numba kernel loaded, torchaudio op initialised) before the "before"
reading, so only the call's own extra memory counts.

On Linux the peak is first reset to the current RSS (``/proc/self/clear_refs``)
so that an earlier, higher peak (e.g. while importing torch) cannot hide the
call's allocations; the result is then ``VmHWM`` after the call minus
``VmRSS`` before it. Elsewhere it falls back to the growth of
``getrusage(RUSAGE_SELF).ru_maxrss``.

Usage (one method per process)::

    python benchmarks/_memory.py {ours,torchaudio} FRAMES TOKENS CLASSES [SEED] [--cold]

prints one JSON object: ``{"method", "extra_mib", "seconds", "measure", "cold"}``;
``--cold`` skips the warm-up, so the call is the process's first (numba
loading its cached kernels, torchaudio initialising its op).
"""

from __future__ import annotations

import json
import resource
import subprocess
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]


def make_inputs(frames: int, tokens: int, classes: int, seed: int = 0):
    """One float32 utterance: log_probs (1, T, C) and targets (1, L) (no blank)."""
    import torch

    gen = torch.Generator().manual_seed(seed)
    log_probs = torch.randn(1, frames, classes, generator=gen).log_softmax(-1)
    targets = torch.randint(1, classes, (1, tokens), generator=gen)
    return log_probs, targets


def _method(name: str):
    import torchaudio.functional as taf

    from aligner.viterbi import forced_align

    if name == "ours":
        return lambda lp, tg: forced_align(lp, tg)
    if name == "torchaudio":
        return lambda lp, tg: taf.forced_align(lp, tg, blank=0)
    raise SystemExit(f"unknown method {name!r} (expected 'ours' or 'torchaudio')")


def _max_rss_mib() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024.0  # KiB on Linux


def _status_mib(field: str) -> float:
    with open("/proc/self/status") as status:
        for line in status:
            if line.startswith(field + ":"):
                return int(line.split()[1]) / 1024.0  # kB
    raise OSError(f"{field} not in /proc/self/status")


def _reset_peak() -> bool:
    """Reset the peak RSS to the current RSS (Linux >= 4.0); False if unsupported."""
    try:
        with open("/proc/self/clear_refs", "w") as refs:
            refs.write("5")
        _status_mib("VmHWM")
        return True
    except OSError:
        return False


def probe(name: str, frames: int, tokens: int, classes: int, seed: int = 0, cold: bool = False) -> dict:
    """Run in *this* process: peak-RSS growth (MiB) and time of one call
    (``cold``: the first call of the process, kernel loading included)."""
    align = _method(name)
    if not cold:
        small_lp, small_tg = make_inputs(50, 10, classes, seed + 1)
        align(small_lp, small_tg)  # warm-up
    log_probs, targets = make_inputs(frames, tokens, classes, seed)
    reset = _reset_peak()
    before = _status_mib("VmRSS") if reset else _max_rss_mib()
    start = time.perf_counter()
    align(log_probs, targets)
    seconds = time.perf_counter() - start
    after = _status_mib("VmHWM") if reset else _max_rss_mib()
    return {
        "method": name,
        "extra_mib": after - before,
        "seconds": seconds,
        "measure": "VmHWM-reset" if reset else "ru_maxrss",
        "cold": cold,
    }


def probe_subprocess(name: str, frames: int, tokens: int, classes: int, seed: int = 0, cold: bool = False) -> dict:
    """:func:`probe` in a fresh Python process (clean peak-RSS baseline)."""
    out = subprocess.run(
        [sys.executable, str(Path(__file__).resolve()), name, str(frames), str(tokens), str(classes), str(seed)]
        + (["--cold"] if cold else []),
        check=True,
        capture_output=True,
        text=True,
        cwd=ROOT,
    )
    return json.loads(out.stdout.strip().splitlines()[-1])


if __name__ == "__main__":
    sys.path.insert(0, str(ROOT))
    cold = "--cold" in sys.argv
    arguments = [a for a in sys.argv[1:] if a != "--cold"]
    if len(arguments) not in (4, 5):
        raise SystemExit(__doc__)
    method, *numbers = arguments
    print(json.dumps(probe(method, *map(int, numbers), cold=cold)))
