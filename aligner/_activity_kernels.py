"""Compiled (numba) twin of :func:`aligner.activity.frame_levels`, used
once numba is in the process anyway (the decoders' kernels load it for
batches and long recordings), so a one-file ``aligner align`` still starts
without it. The same blocks and sums as the numpy version, in one pass
over the audio without temporaries: about twice as fast on a batch (the
squares of a block are summed in a vectorized, reassociated order, so the
levels agree with numpy's to about 1e-6 dB, not bit for bit).
"""

from __future__ import annotations

import math

import numpy as np
from numba import njit


@njit(cache=True, nogil=True, fastmath=True)
def _sum_of_squares(block):  # pragma: no cover - numba
    """Sum of squares of a float32 block (reassociated: vectorized)."""
    total = np.float32(0.0)
    for i in range(block.shape[0]):
        total += block[i] * block[i]
    return total


@njit(cache=True, nogil=True)
def frame_levels(x, frame_samples, frames, window, out):  # pragma: no cover - numba
    """:func:`aligner.activity.frame_levels` of the float32 samples ``x``
    into ``out`` (float32, Shape ``(frames,)``): each frame's window is a
    whole number of blocks of ``gcd(frame_samples, window)`` samples
    counted from the first window's start; each block's squares are summed
    once (zeros outside ``x``), then ``window // step`` blocks per frame."""
    offset = frame_samples // 2 - window // 2  # window start of frame t: t * frame_samples + offset
    step = math.gcd(frame_samples, window)
    stride, width = frame_samples // step, window // step
    count = (frames - 1) * stride + width
    energy = np.empty(count)
    size = x.shape[0]
    for j in range(count):
        a = offset + j * step
        if a >= 0 and a + step <= size:
            energy[j] = _sum_of_squares(x[a : a + step])
        else:  # a block that crosses an end of the audio
            total = 0.0
            for i in range(max(a, 0), min(a + step, size)):
                total += x[i] * x[i]
            energy[j] = total
    scale = 10.0 / math.log(10.0)
    for t in range(frames):
        power = 0.0
        for k in range(t * stride, t * stride + width):
            power += energy[k]
        out[t] = scale * math.log(power / window + 1e-12)
