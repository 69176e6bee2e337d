"""Batched CTC Viterbi forced alignment (our own kernels, no torchaudio op).

:func:`forced_align` finds, for every item of a padded batch, the Viterbi
path: the most likely CTC path through the emissions that collapses to the
item's target sequence. The result is *identical* to
``torchaudio.functional.forced_align`` applied to each item alone --
tie-breaking included, so even float32 inputs with exactly equal path scores
give the same path (verified against torchaudio 2.11 in the tests).

Trellis
-------
For a target ``y`` of length ``L`` the trellis has ``S = 2L + 1`` states:
even state ``s`` is the blank, odd state ``s`` is token ``y[s // 2]``. ``R``
is the number of consecutive repeats (``i`` with ``y[i] == y[i - 1]``); an
item needs ``T >= L + R`` frames. State ``s`` at frame ``t`` is reached from
``s`` (stay, back-pointer 0), ``s - 1`` (advance, 1) or ``s - 2`` (skip a
blank, 2; only between two different tokens). Ties are broken like
torchaudio 2.11's CPU kernel: the skip wins only when strictly greater than
both others, the advance only when strictly greater than both others, and the
stay wins otherwise (so an advance tied with a skip, both better than the
stay, yields the stay: with exact ties the path can score below the optimum,
as torchaudio's does). The final state is the last token unless the final
blank is strictly better.
At every frame only the band ``[start_t, end_t)`` of states that can still
lie on a complete path is computed (the same band torchaudio uses).

Backends
--------
``"numba"`` (CPU): a ``@njit(nogil=True)`` kernel per item, its inner loop
branch-free so that LLVM vectorizes it; the items are split into one share
per core (longest first) and the shares run in parallel threads without the
GIL. Memory per item being aligned: ``O(S + C)`` working rows (two alpha
rows in the input dtype) plus the band's back-pointers at 2 bits each,
packed 4 per byte in ragged per-frame rows: about
``sum_t (end_t - start_t) / 4`` bytes, at most ``T * S / 4``; torchaudio
stores one byte per ``T * S`` cell. For a 10-minute utterance (T = 30000,
L = 9000) that is 90 MiB instead of 515 MiB. Time
``O(sum_t (end_t - start_t))``.

``"torch"`` (any device, the default for CUDA tensors): a loop over frames,
vectorized over batch and states; back-pointers are kept on the device as
``uint8`` ``(T, B, S)`` (or ``(K, B, S)`` in segments, see below), so the
emissions never leave the GPU. Time ``O(T)`` kernel launches, each over
``B * S`` cells.

Bounded memory
--------------
Back-pointers grow as ``T * S``, i.e. quadratically with the duration: for
one hour of 20 ms frames (T = 180000, L = 54000) the numba band takes about
3.2 GiB and a torch or torchaudio table 18 GiB. When an item's table would
exceed ``max_memory`` bytes (:func:`forced_align`; default 64 MiB: the
numba band of up to about 8 minutes of speech), both backends search it in
segments of ``K`` frames instead (checkpointing): a forward pass keeps only
the alpha row of every ``K``-th frame (the checkpoints, in the input dtype);
then, from the last segment to the first, the segment's ``K`` alpha rows are
recomputed from its checkpoint by the same code as the forward pass -- so
every cell, and hence the path, is bit-identical to the single-pass search
-- with their back-pointers, and the path is traced back through them. The
numba kernel keeps only the band of each checkpoint. Memory per item
becomes ``(T / K) * S * w + K * S / 4`` bytes for ``w``-byte floats (numba;
``K * S`` for torch's uint8 codes), minimised at ``K`` about
``sqrt(4 w T)`` (numba) or ``sqrt(w T)`` (torch): about 73 MiB (numba) and
175 MiB per item (torch) for the hour above in float32, for about 1.5 to 2
times the single-pass time.

Precision
---------
float32 and float64 log-probabilities are used as they are (alpha rows in the
input dtype). float16 and bfloat16 inputs are upcast to float32 (torchaudio
accumulates float16 in float16, so paths of half-precision inputs may differ
from torchaudio's on near-ties).
"""

from __future__ import annotations

import math
import os
from collections.abc import Sequence
from typing import Any

import numpy as np
import torch
from numba import njit

from ._shares import run_in_shares
from .errors import AlignmentError

__all__ = ["forced_align", "count_repeats", "minimum_frames", "BACKENDS", "DEFAULT_MAX_MEMORY"]

#: Accepted values of the ``backend`` keyword of :func:`forced_align`.
BACKENDS: tuple[str, ...] = ("auto", "numba", "torch")

#: Default ``max_memory`` of :func:`forced_align`: 64 MiB of back-pointers
#: per item (the numba single-pass search up to about 8 minutes of speech;
#: longer items are searched in segments, about 1.5x the time of one pass,
#: a small share of the network's time on such audio).
DEFAULT_MAX_MEMORY: int = 64 * 2**20

# --------------------------------------------------------------------------
# Small helpers
# --------------------------------------------------------------------------


def count_repeats(targets: torch.Tensor | np.ndarray | Sequence[int]) -> int:
    """Number of consecutive repeats ``R`` in a 1-D target sequence.

    ``R`` counts the positions ``i >= 1`` with ``targets[i] == targets[i - 1]``
    (``"aabbc"`` has 2). A CTC path needs at least ``len(targets) + R``
    frames, since a blank must separate two equal tokens.

    Args:
        targets: token ids. Shape: (L,).
    """
    t = torch.as_tensor(targets)
    if t.ndim != 1:
        raise AlignmentError(f"count_repeats: targets must be 1-D, got shape {tuple(t.shape)}")
    if t.numel() < 2:
        return 0
    return int((t[1:] == t[:-1]).sum())


def minimum_frames(targets: torch.Tensor | np.ndarray | Sequence[int]) -> int:
    """Frames a CTC path through ``targets`` needs: one per token plus one
    blank per repeat, ``len(targets) + count_repeats(targets)`` (the check
    :func:`forced_align` makes; the pipeline and training use it too).

    Args:
        targets: token ids. Shape: (L,).

    Examples:
        >>> from aligner.viterbi import minimum_frames
        >>> minimum_frames([3, 3, 5])  # 3, blank, 3, 5
        4
    """
    return len(targets) + count_repeats(targets)


@njit(cache=True, nogil=True)
def _band(T, tgt, starts, ends):  # pragma: no cover - compiled
    """Fill ``starts[t], ends[t]`` (``t < T``) with the band of frame ``t``.

    Mirrors torchaudio's CPU kernel exactly. ``tgt`` Shape: (L,), L >= 1.
    Returns the total number of band cells.
    """
    L = tgt.shape[0]
    S = 2 * L + 1
    R = 0
    for i in range(1, L):
        if tgt[i] == tgt[i - 1]:
            R += 1
    start = 0 if T - (L + R) > 0 else 1
    end = 1 if S == 1 else 2
    starts[0] = start
    ends[0] = end
    total = end - start
    for t in range(1, T):
        if T - t <= L + R:
            if start % 2 == 1 and start // 2 + 1 < L and tgt[start // 2] != tgt[start // 2 + 1]:
                start += 1
            start += 1
        if t <= L + R:
            if end % 2 == 0 and end < 2 * L and tgt[end // 2 - 1] != tgt[end // 2]:
                end += 1
            end += 1
        if end > S:  # never happens for T >= L + R; keeps memory safe
            end = S
        if start > end:
            start = end
        starts[t] = start
        ends[t] = end
        total += end - start
    return total


@njit(cache=True, nogil=True)
def _step(prev, cur, skip, emit, codes, st, en, ninf):  # pragma: no cover - compiled
    """One frame of the recursion over the band ``[st, en)``.

    ``prev``/``cur``: alpha rows with two leading -inf columns (column
    ``s + 2`` is state ``s``). Shape: (S + 2,). Writes ``cur[st+2 : en+2]``
    and the back-pointer code of each state into ``codes[st:en]``. State
    ``s`` comes from ``s`` (code 0), ``s - 1`` (1) or ``s - 2`` (2, only where
    ``skip[s]``), with torchaudio's tie-breaking. Branch-free so that LLVM
    vectorizes it.
    """
    # Loops over range(n) on slices: indices provably >= 0, so numba's
    # negative-index wraparound disappears and the loads stay contiguous.
    n = en - st
    p0 = prev[st + 2 : en + 2]
    p1 = prev[st + 1 : en + 1]
    p2 = prev[st:en]
    sk = skip[st:en]
    em = emit[st:en]
    out = cur[st + 2 : en + 2]
    cd = codes[st:en]
    for i in range(n):
        x0 = p0[i]
        x1 = p1[i]
        x2 = p2[i]  # unconditional load keeps the loop vectorizable
        x2 = x2 if sk[i] else ninf
        c2 = (x2 > x1) & (x2 > x0)
        c1 = (x1 > x0) & (x1 > x2)
        best = x2 if c2 else (x1 if c1 else x0)
        out[i] = best + em[i]
        cd[i] = np.uint8(c1) | (np.uint8(c2) << np.uint8(1))


@njit(cache=True, nogil=True)
def _gather(row, ulab, emit, st, en):  # pragma: no cover - compiled
    """``emit[s] = row[ulab[s]]`` for ``s`` in ``[st, en)``."""
    lb = ulab[st:en]
    em = emit[st:en]
    for i in range(en - st):
        em[i] = row[lb[i]]


@njit(cache=True, nogil=True)
def _pack(codes, bp, st, en, offset):  # pragma: no cover - compiled
    """Pack ``codes[st:en]`` (2 bits each, 4 per byte, first in the low
    bits) into ``bp[offset:]``; reads up to 3 codes past ``en``."""
    cd = codes[st:]
    out = bp[offset:]
    for j in range((en - st + 3) // 4):
        out[j] = (
            cd[4 * j] | (cd[4 * j + 1] << np.uint8(2)) | (cd[4 * j + 2] << np.uint8(4)) | (cd[4 * j + 3] << np.uint8(6))
        )


@njit(cache=True, nogil=True)
def _states(tgt, blank):  # pragma: no cover - compiled
    """Label id of every trellis state and whether it may skip the blank
    before it (odd ``s > 1`` whose token differs from the previous one).

    ``tgt`` Shape: (L,). Returns ``(lab, skip)``, both Shape: (S,).
    """
    S = 2 * tgt.shape[0] + 1
    lab = np.empty(S, np.int64)
    skip = np.zeros(S, np.bool_)
    for s in range(S):
        if s % 2 == 0:
            lab[s] = blank
        else:
            lab[s] = tgt[s // 2]
            if s != 1 and tgt[s // 2] != tgt[s // 2 - 1]:
                skip[s] = True
    return lab, skip


@njit(cache=True, nogil=True)
def _num_segments(T, K):  # pragma: no cover - compiled
    """Segments of ``K`` frames of back-pointers covering frames ``1 .. T-1``
    (at least one, empty when ``T == 1``)."""
    return 1 if T <= 1 else (T - 2) // K + 1


@njit(cache=True, nogil=True)
def _checkpoint_cells(starts, ends, K, n):  # pragma: no cover - compiled
    """Band cells of the checkpointed alpha rows: frames ``0, K, .., (n-2) K``."""
    total = 0
    for j in range(n - 1):
        total += ends[j * K] - starts[j * K]
    return total


@njit(cache=True, nogil=True)
def _segment_bytes(starts, ends, K, n):  # pragma: no cover - compiled
    """Bytes of the packed back-pointers of the largest segment: segment
    ``j`` holds frames ``j K + 1 .. min((j + 1) K, T - 1)``."""
    T = starts.shape[0]
    most = 0
    for j in range(n):
        size = 0
        for t in range(j * K + 1, min((j + 1) * K, T - 1) + 1):
            size += (ends[t] - starts[t] + 3) // 4
        most = max(most, size)
    return most


@njit(cache=True, nogil=True)
def _segment_frames(starts, ends, itemsize, max_memory):  # pragma: no cover - compiled
    """Frames per back-pointer segment for one item.

    ``T`` (a single segment: the plain single-pass search) when the item's
    packed back-pointers fit in ``max_memory`` bytes or segmenting would not
    use less. Otherwise the ``K`` minimising the checkpoints plus the largest
    segment, ``(T / K) W itemsize + K ceil(M / 4)`` bytes for a mean band
    width ``W`` and a largest one ``M``: ``K = sqrt(T W itemsize / ceil(M / 4))``,
    about ``sqrt(4 itemsize T)``. ``starts``, ``ends`` Shape: (T,).
    """
    T = starts.shape[0]
    single = _segment_bytes(starts, ends, T, 1)
    if T <= 2 or single <= max_memory:
        return T
    widths = ends - starts
    mean = max(1.0, np.sum(widths) / T)
    row = (max(1, np.max(widths)) + 3) // 4  # bytes of the widest packed row
    K = int(np.sqrt(T * mean * itemsize / row) + 0.5)
    K = min(max(K, 1), T - 1)
    n = _num_segments(T, K)
    segmented = _checkpoint_cells(starts, ends, K, n) * itemsize + _segment_bytes(starts, ends, K, n)
    return T if segmented >= single else K


@njit(cache=True, nogil=True)
def _advance(row, prev, cur, ulab, skip, emit, codes, st, en, ninf):  # pragma: no cover - compiled
    """Alpha row ``cur`` of one frame (band ``[st, en)``, emissions ``row``)
    from the previous frame's ``prev``; back-pointer codes into
    ``codes[st:en]``."""
    # Keep the two cells below the band at -inf, as in torchaudio's rows.
    # (Given the band's shape they are never read; this is a safeguard.)
    for s in range(max(st - 2, 0), st):
        cur[s + 2] = ninf
    _gather(row, ulab, emit, st, en)
    _step(prev, cur, skip, emit, codes, st, en, ninf)


@njit(cache=True, nogil=True)
def _backtrack(path, bp, offs, starts, ends, lab, a, b, last):  # pragma: no cover - compiled
    """Write ``path[b], .., path[a + 1]`` following the packed back-pointers
    of frames ``a + 1 .. b`` (frame ``t`` in the row at ``bp[offs[t - a - 1]:]``)
    from state ``last`` at frame ``b``; returns the state at frame ``a``."""
    for t in range(b, a, -1):
        path[t] = lab[last]
        # A finite cell's chosen predecessor is finite, hence inside the band;
        # the check only keeps the indexing memory-safe.
        if starts[t] <= last < ends[t]:
            i = last - starts[t]
            last -= (bp[offs[t - a - 1] + i // 4] >> np.uint8(2 * (i % 4))) & np.uint8(3)
    return last


@njit(cache=True, nogil=True)
def _viterbi_one(lp, tgt, blank, path, max_memory, segment):  # pragma: no cover - compiled
    """Viterbi alignment of one item; writes the state labels into ``path``.

    Returns the score of the best path (``-inf``: no path; ``path`` is then
    left untouched).

    The back-pointers are kept for segments of ``K`` frames at a time
    (:func:`_segment_frames`; ``K >= T - 1``: one segment, the single-pass
    search). With several segments, a forward pass first keeps the band of
    the alpha row at frames ``0, K, 2K, ..`` (checkpoints); then, from the
    last segment to the first, the segment's rows are recomputed from its
    checkpoint by the same code (so every cell is bit-identical), its
    back-pointers packed, and the path traced back through it.

    Args:
        lp: log-probabilities, float32 or float64, C-contiguous, no NaN/+inf.
            Shape: (T, C).
        tgt: target ids, int64, valid (no blank, < C). Shape: (L,), L >= 1.
        blank: blank id.
        path: output label per frame, int64. Shape: (T,).
        max_memory: bytes of back-pointers and checkpoints allowed before
            the search is segmented.
        segment: frames per segment; ``<= 0`` chooses it from ``max_memory``.
    """
    T = lp.shape[0]
    lab, skip = _states(tgt, blank)
    ulab = lab.astype(np.uint32)  # unsigned: no negative-index wraparound
    S = lab.shape[0]
    starts = np.empty(T, np.int64)
    ends = np.empty(T, np.int64)
    _band(T, tgt, starts, ends)
    K = segment if segment > 0 else _segment_frames(starts, ends, lp.itemsize, max_memory)
    n = _num_segments(T, K)

    # Checkpoint j (frame j K, j < n - 1) is the band of that alpha row, at
    # ckpt[coffs[j] : coffs[j + 1]].
    coffs = np.empty(n, np.int64)
    acc = 0
    for j in range(n - 1):
        coffs[j] = acc
        acc += ends[j * K] - starts[j * K]
    coffs[n - 1] = acc
    ckpt = np.empty(acc, lp.dtype)
    # One segment's ragged band of back-pointers, one byte-aligned row per
    # frame: the 2-bit code of cell (t, s) is in byte
    # offs[t - a - 1] + (s - starts[t]) // 4, for the segment's first frame a.
    bp = np.empty(_segment_bytes(starts, ends, K, n), np.uint8)
    offs = np.empty(min(K, T - 1), np.int64)
    codes = np.zeros(S + 3, np.uint8)  # one frame's codes before packing
    emit = np.empty(S, lp.dtype)

    # Two rolling alpha rows in the input dtype. Column s + 2 holds state s;
    # the two leading -inf columns stand for states -2 and -1.
    prev = np.full(S + 2, -np.inf, lp.dtype)
    cur = np.full(S + 2, -np.inf, lp.dtype)
    ninf = prev[0]  # -inf in the input dtype
    for s in range(starts[0], ends[0]):
        prev[s + 2] = lp[0, lab[s]]

    # Forward pass up to the last segment's first frame, keeping checkpoints.
    for j in range(n - 1):
        a = j * K
        ckpt[coffs[j] : coffs[j + 1]] = prev[starts[a] + 2 : ends[a] + 2]
        for t in range(a + 1, a + K + 1):
            _advance(lp[t], prev, cur, ulab, skip, emit, codes, starts[t], ends[t], ninf)
            prev, cur = cur, prev

    # Segments from the last: recompute with back-pointers, then trace back.
    last = 0
    best_score = ninf
    for j in range(n - 1, -1, -1):
        a = j * K
        b = min(a + K, T - 1)
        if j < n - 1:  # restore frame a (the forward pass ended at the last segment's)
            prev[:] = ninf
            cur[:] = ninf
            prev[starts[a] + 2 : ends[a] + 2] = ckpt[coffs[j] : coffs[j + 1]]
        acc = 0
        for t in range(a + 1, b + 1):
            st = starts[t]
            en = ends[t]
            _advance(lp[t], prev, cur, ulab, skip, emit, codes, st, en, ninf)
            offs[t - a - 1] = acc
            _pack(codes, bp, st, en, acc)
            acc += (en - st + 3) // 4
            prev, cur = cur, prev
        if j == n - 1:
            # Start from the better of the last token and the final blank.
            last = S - 1 if prev[S + 1] > prev[S] else S - 2
            best_score = prev[last + 2]
            if not best_score > -np.inf:
                return best_score  # no path has a nonzero probability: caller raises
        last = _backtrack(path, bp, offs, starts, ends, lab, a, b, last)
    path[0] = lab[last]
    return best_score


# --------------------------------------------------------------------------
# Validation
# --------------------------------------------------------------------------


def _lengths(value: Any, name: str, batch: int, size: int, what: str) -> torch.Tensor:
    """Check a lengths argument and return it as an int64 CPU tensor (B,)."""
    if value is None:
        return torch.full((batch,), size, dtype=torch.int64)
    if isinstance(value, torch.Tensor):
        t = value.detach().to("cpu")
    else:
        try:
            t = torch.as_tensor(value)
        except (TypeError, ValueError, RuntimeError) as exc:
            raise AlignmentError(f"{name} must be a 1-D integer tensor, got {value!r}") from exc
    if t.dtype.is_floating_point or t.dtype.is_complex or t.dtype == torch.bool:
        raise AlignmentError(f"{name} must be an integer tensor, got dtype {t.dtype}")
    if t.ndim != 1:
        raise AlignmentError(f"{name} must be 1-D (batch,), got shape {tuple(t.shape)}")
    if t.shape[0] != batch:
        raise AlignmentError(f"{name} has {t.shape[0]} entries but the batch size is {batch}")
    t = t.to(torch.int64)
    bad = (t <= 0).nonzero()
    if len(bad):
        b = int(bad[0, 0])
        raise AlignmentError(f"{name}[{b}] = {int(t[b])}: lengths must be positive")
    bad = (t > size).nonzero()
    if len(bad):
        b = int(bad[0, 0])
        raise AlignmentError(f"{name}[{b}] = {int(t[b])} exceeds the padded {what} size {size}")
    return t


def _validate(
    log_probs: Any,
    targets: Any,
    input_lengths: Any,
    target_lengths: Any,
    blank: Any,
    backend: Any,
    num_threads: Any,
    max_memory: Any,
) -> tuple[int, torch.Tensor, torch.Tensor, torch.Tensor, int]:
    """Check every argument.

    Returns ``(blank, targets, T_b, L_b, max_memory)`` with ``targets`` an
    int64 CPU tensor (B, L), the lengths int64 CPU tensors (B,) and
    ``max_memory`` an int (the default for None).
    """
    if not isinstance(log_probs, torch.Tensor):
        raise AlignmentError(f"log_probs must be a torch.Tensor, got {type(log_probs).__name__}")
    if not isinstance(targets, torch.Tensor):
        raise AlignmentError(f"targets must be a torch.Tensor, got {type(targets).__name__}")
    if log_probs.ndim != 3:
        raise AlignmentError(f"log_probs must be 3-D (batch, frames, classes), got shape {tuple(log_probs.shape)}")
    if targets.ndim != 2:
        raise AlignmentError(f"targets must be 2-D (batch, target length), got shape {tuple(targets.shape)}")
    if not log_probs.dtype.is_floating_point:
        raise AlignmentError(f"log_probs must be a floating-point tensor, got dtype {log_probs.dtype}")
    if targets.dtype.is_floating_point or targets.dtype.is_complex or targets.dtype == torch.bool:
        raise AlignmentError(f"targets must be an integer tensor, got dtype {targets.dtype}")
    B, T, C = log_probs.shape
    if targets.shape[0] != B:
        raise AlignmentError(f"batch size mismatch: log_probs has {B} items, targets has {targets.shape[0]}")
    if B == 0:
        raise AlignmentError("log_probs has an empty batch (batch size 0)")
    if T == 0:
        raise AlignmentError("log_probs has no frames (frame dimension is 0)")
    if C == 0:
        raise AlignmentError("log_probs has no classes (class dimension is 0)")
    if targets.shape[1] == 0:
        raise AlignmentError("targets has no tokens (target dimension is 0)")
    if isinstance(blank, bool) or not isinstance(blank, (int, np.integer)):
        raise AlignmentError(f"blank must be an int, got {blank!r}")
    blank = int(blank)
    if not 0 <= blank < C:
        raise AlignmentError(f"blank = {blank} is out of range for {C} classes [0, {C})")
    if backend not in BACKENDS:
        raise AlignmentError(f"backend must be one of {BACKENDS}, got {backend!r}")
    if num_threads is not None and (
        isinstance(num_threads, bool) or not isinstance(num_threads, int) or num_threads < 1
    ):
        raise AlignmentError(f"num_threads must be a positive int or None, got {num_threads!r}")
    if max_memory is None:
        max_memory = DEFAULT_MAX_MEMORY
    elif isinstance(max_memory, bool) or not isinstance(max_memory, (int, np.integer)) or max_memory < 1:
        raise AlignmentError(f"max_memory must be a positive int (bytes) or None, got {max_memory!r}")

    t_len = _lengths(input_lengths, "input_lengths", B, T, "frame")
    l_len = _lengths(target_lengths, "target_lengths", B, targets.shape[1], "target")

    tgt = targets.detach().to("cpu", torch.int64)
    valid = torch.arange(tgt.shape[1]) < l_len[:, None]
    is_blank = (tgt == blank) & valid
    if bool(is_blank.any()):
        b, i = is_blank.nonzero()[0].tolist()
        raise AlignmentError(f"targets[{b}, {i}] is the blank id {blank}; targets must not contain blank")
    out = ((tgt < 0) | (tgt >= C)) & valid
    if bool(out.any()):
        b, i = out.nonzero()[0].tolist()
        raise AlignmentError(f"targets[{b}, {i}] = {int(tgt[b, i])} is out of range for {C} classes [0, {C})")

    r_len = ((tgt[:, 1:] == tgt[:, :-1]) & valid[:, 1:]).sum(1)
    need = l_len + r_len
    short = (t_len < need).nonzero()
    if len(short):
        b = int(short[0, 0])
        raise AlignmentError(
            f"batch item {b} cannot be aligned: it has {int(t_len[b])} frames but its "
            f"{int(l_len[b])} tokens with {int(r_len[b])} repeats need at least {int(need[b])}"
        )

    return blank, tgt, t_len, l_len, int(max_memory)


def _check_finite(log_probs: torch.Tensor, t_len: torch.Tensor) -> None:
    """Raise on NaN or +inf in a valid frame (the numba kernel checks this
    itself, inside its threads)."""
    T = log_probs.shape[1]
    frame_valid = torch.arange(T, device=log_probs.device) < t_len.to(log_probs.device)[:, None]
    bad = (~(log_probs.detach() < float("inf"))).any(-1) & frame_valid  # NaN fails "<" too
    if bool(bad.any()):
        b, t = bad.nonzero()[0].tolist()
        raise _non_finite(b, t)


def _non_finite(b: int, t: int) -> AlignmentError:
    return AlignmentError(f"log_probs[{b}, {t}] contains NaN or +inf")


def _impossible(b: int) -> AlignmentError:
    return AlignmentError(
        f"batch item {b} cannot be aligned: every CTC path has probability 0 "
        "(log_probs is -inf where each path needs a token or blank)"
    )


# --------------------------------------------------------------------------
# Backends
# --------------------------------------------------------------------------


def _compute_dtype(dtype: torch.dtype) -> torch.dtype:
    """float32/float64 stay; float16/bfloat16 are searched in float32."""
    return dtype if dtype in (torch.float32, torch.float64) else torch.float32


def _default_threads() -> int:
    try:
        return max(1, len(os.sched_getaffinity(0)))
    except AttributeError:  # pragma: no cover - not Linux
        return max(1, os.cpu_count() or 1)


@njit(cache=True, nogil=True)
def _viterbi_items(
    lp, tgt, t_len, l_len, blank, items, paths, best, bad_frame, max_memory, segment
):  # pragma: no cover - compiled
    """Align the batch items listed in ``items`` (one worker's share).

    Writes each item's path into ``paths`` and its best score into ``best``;
    an item with NaN or +inf in a valid frame is skipped and the frame noted
    in ``bad_frame`` (else left at -1). ``max_memory`` and ``segment`` are
    passed to :func:`_viterbi_one`.

    ``lp`` Shape: (B, T, C); ``tgt`` Shape: (B, L); ``t_len``, ``l_len``,
    ``best``, ``bad_frame`` Shape: (B,); ``paths`` Shape: (B, T).
    """
    for b in items:
        n = t_len[b]
        bad = _first_bad_frame(lp[b, :n])
        if bad >= 0:
            bad_frame[b] = bad
        else:
            best[b] = _viterbi_one(lp[b, :n], tgt[b, : l_len[b]], blank, paths[b, :n], max_memory, segment)


@njit(cache=True, nogil=True)
def _first_bad_frame(lp):  # pragma: no cover - compiled
    """First frame holding NaN or +inf, or -1. ``lp`` Shape: (T, C)."""
    for t in range(lp.shape[0]):
        row = lp[t]
        ok = True
        for c in range(row.shape[0]):
            ok &= row[c] < np.inf
        if not ok:
            return t
    return -1


def _numba_paths(
    lp: torch.Tensor,
    tgt: torch.Tensor,
    t_len: torch.Tensor,
    l_len: torch.Tensor,
    blank: int,
    num_threads: int | None,
    max_memory: int,
    segment: int = 0,
) -> torch.Tensor:
    """Paths (B, T) int64 on the CPU from the numba kernel.

    ``lp`` Shape: (B, T, C); ``tgt`` int64 CPU Shape: (B, L). ``segment``
    (frames per back-pointer segment, ``0``: chosen per item from
    ``max_memory``) exists for the tests.
    """
    B, T, _ = lp.shape
    # No copy for a contiguous float32/float64 CPU tensor.
    lp_np = lp.detach().to("cpu", _compute_dtype(lp.dtype)).contiguous().numpy()
    tgt_np = np.ascontiguousarray(tgt.numpy())
    tl = t_len.numpy()
    ll = l_len.numpy()
    paths = np.full((B, T), blank, dtype=np.int64)
    best = np.zeros(B, dtype=np.float64)
    bad_frame = np.full(B, -1, dtype=np.int64)

    def run(items: np.ndarray) -> None:
        _viterbi_items(lp_np, tgt_np, tl, ll, blank, items, paths, best, bad_frame, max_memory, segment)

    run_in_shares((tl * (2 * ll + 1)).tolist(), min(B, num_threads or _default_threads()), run)
    for b in range(B):
        if bad_frame[b] >= 0:
            raise _non_finite(b, int(bad_frame[b]))
        if not best[b] > -np.inf:
            raise _impossible(b)
    return torch.from_numpy(paths)


class _TorchTrellis:
    """The batch's trellis on ``lp.device`` and one frame of its recursion.

    ``lp`` Shape: (B, T, C), float32/float64; ``tgt`` int64 CPU Shape:
    (B, L). ``lab``: label id per state, ``skip``: may skip the blank before
    it, both Shape: (B, S) with S = 2 * max(L_b) + 1; ``starts``, ``ends``:
    band per item and frame, Shape: (B, T) (empty past an item's end).
    """

    def __init__(
        self, lp: torch.Tensor, tgt: torch.Tensor, t_len: torch.Tensor, l_len: torch.Tensor, blank: int
    ) -> None:
        device = lp.device
        B, T, _ = lp.shape
        L = int(l_len.max())
        S = 2 * L + 1
        tgt = tgt[:, :L]
        # Band per item and frame: depends on the targets only (tiny CPU work).
        starts = np.zeros((B, T), np.int64)
        ends = np.zeros((B, T), np.int64)
        for b in range(B):
            n = int(t_len[b])
            _band(n, np.ascontiguousarray(tgt[b, : int(l_len[b])].numpy()), starts[b, :n], ends[b, :n])
        valid = torch.arange(L) < l_len[:, None]
        safe = torch.where(valid, tgt, torch.full_like(tgt, blank))
        lab = torch.full((B, S), blank, dtype=torch.int64)
        lab[:, 1::2] = safe
        skip = torch.zeros((B, S), dtype=torch.bool)
        skip[:, 3::2] = (safe[:, 1:] != safe[:, :-1]) & valid[:, 1:]

        self.lp = lp
        self.S = S
        self.lab = lab.to(device)
        self.skip = skip.to(device)
        self.starts = torch.from_numpy(starts).to(device)
        self.ends = torch.from_numpy(ends).to(device)
        self.sidx = torch.arange(S, device=device)
        self.neg = torch.tensor(float("-inf"), dtype=lp.dtype, device=device)
        self.two = torch.tensor(2, dtype=torch.uint8, device=device)

    def _in_band(self, t: int) -> torch.Tensor:
        """States inside each item's band at frame ``t``. Shape: (B, S)."""
        return (self.sidx >= self.starts[:, t : t + 1]) & (self.sidx < self.ends[:, t : t + 1])

    def first_row(self) -> torch.Tensor:
        """Alpha row of frame 0, padded: ``pad[:, 2:]`` is the row and the
        two -inf columns in front make ``pad[:, 1:-1]`` and ``pad[:, :-2]``
        the rows shifted by one and two states. Shape: (B, S + 2)."""
        B = self.lab.shape[0]
        pad = torch.full((B, self.S + 2), float("-inf"), dtype=self.lp.dtype, device=self.lp.device)
        pad[:, 2:] = torch.where(self._in_band(0), self.lp[:, 0].gather(1, self.lab), self.neg)
        return pad

    def advance(self, pad: torch.Tensor, t: int, codes: torch.Tensor | None = None) -> None:
        """Turn ``pad`` (frame ``t - 1``) into the padded row of frame ``t``
        in place; if given, write the back-pointer codes into ``codes``
        (uint8, Shape: (B, S)), with torchaudio's tie-breaking."""
        x0 = pad[:, 2:]
        x1 = pad[:, 1:-1]
        x2 = torch.where(self.skip, pad[:, :-2], self.neg)
        c2 = (x2 > x1) & (x2 > x0)
        c1 = (x1 > x0) & (x1 > x2)
        best = torch.where(c2, x2, torch.where(c1, x1, x0))
        new = best + self.lp[:, t].gather(1, self.lab)
        if codes is not None:
            codes.copy_(torch.where(c2, self.two, c1.to(torch.uint8)))
        # Past an item's end its band is empty (starts = ends = 0), so its
        # padding frames only ever produce -inf.
        pad[:, 2:] = torch.where(self._in_band(t), new, self.neg)


def _torch_segment_frames(T: int, S: int, itemsize: int, max_memory: int) -> int:
    """Frames per back-pointer segment of the torch backend.

    ``T`` (one segment, the single-pass search) when an item's uint8
    back-pointers ``(T - 1) * S`` bytes fit in ``max_memory`` or
    checkpointing would not use less; otherwise the ``K`` minimising an
    item's checkpoints plus one segment, ``(T / K) (S + 2) itemsize + K S``
    bytes: ``K = sqrt(T (S + 2) itemsize / S)``, about ``sqrt(itemsize T)``.
    """
    single = (T - 1) * S
    if T <= 2 or single <= max_memory:
        return T
    K = min(max(round(math.sqrt(T * (S + 2) * itemsize / S)), 1), T - 1)
    n = _num_segments(T, K)
    if (n - 1) * (S + 2) * itemsize + K * S >= single:
        return T
    return K


def _torch_start_states(final: torch.Tensor, s_len: torch.Tensor) -> torch.Tensor:
    """State of each item at its last frame: its last token, or the final
    blank when strictly better. Raises if an item has no path.

    ``final``: each item's alpha row at its last frame, Shape: (B, S);
    ``s_len``: states per item, Shape: (B,). Returns Shape: (B,).
    """
    a_last = final.gather(1, (s_len - 1)[:, None])[:, 0]
    a_prev = final.gather(1, (s_len - 2)[:, None])[:, 0]
    for b, score in enumerate(torch.maximum(a_last, a_prev).tolist()):
        if not score > float("-inf"):
            raise _impossible(b)
    return torch.where(a_last > a_prev, s_len - 1, s_len - 2)


def _torch_paths(
    lp: torch.Tensor,
    tgt: torch.Tensor,
    t_len: torch.Tensor,
    l_len: torch.Tensor,
    blank: int,
    max_memory: int,
    segment: int = 0,
) -> torch.Tensor:
    """Paths (B, T) int64 on ``lp.device`` from the vectorized torch loop.

    ``lp`` Shape: (B, T, C); ``tgt`` int64 CPU Shape: (B, L). Back-pointers
    are kept as uint8 for segments of ``K`` frames (``segment``, which
    exists for the tests, or :func:`_torch_segment_frames` of
    ``max_memory``); with more than one segment, the padded alpha rows at
    frames ``0, K, 2K, ..`` are kept by a forward pass and each segment is
    recomputed from its checkpoint (same operations, same values) during the
    backtrack, from the last. Working memory: ``(min(K, T - 1), B, S)``
    uint8 back-pointers, ``(ceil((T - 1) / K) - 1, B, S + 2)`` checkpoints
    and a few ``(B, S)`` rows, where S = 2 * max(L_b) + 1.
    """
    device = lp.device
    lp = lp.detach().to(dtype=_compute_dtype(lp.dtype))
    B, T, _ = lp.shape
    trellis = _TorchTrellis(lp, tgt, t_len, l_len, blank)
    S = trellis.S
    K = segment or _torch_segment_frames(T, S, lp.element_size(), max_memory)
    n = _num_segments(T, K)

    # Items whose last frame is t: their alpha row is saved at that frame.
    finishing: dict[int, list[int]] = {}
    for b, frames in enumerate(t_len.tolist()):
        finishing.setdefault(frames - 1, []).append(b)
    final = torch.full((B, S), float("-inf"), dtype=lp.dtype, device=device)

    def keep_final(pad: torch.Tensor, t: int) -> None:
        if t in finishing:
            rows = torch.tensor(finishing[t], device=device)
            final[rows] = pad[rows, 2:]

    # Forward pass up to the last segment's first frame, keeping checkpoints.
    pad = trellis.first_row()
    keep_final(pad, 0)
    checkpoints = torch.empty((n - 1, B, S + 2), dtype=lp.dtype, device=device)
    for j in range(n - 1):
        checkpoints[j] = pad
        for t in range(j * K + 1, (j + 1) * K + 1):
            trellis.advance(pad, t)
            keep_final(pad, t)

    # Segments from the last: recompute with back-pointers, then trace back
    # all items at once (an item starts at its own last frame).
    bps = torch.empty((min(K, T - 1), B, S), dtype=torch.uint8, device=device)
    states = torch.zeros((B, T), dtype=torch.int64, device=device)
    t_len_d = t_len.to(device)
    idx = torch.zeros(B, dtype=torch.int64, device=device)
    for j in range(n - 1, -1, -1):
        a, b = j * K, min(j * K + K, T - 1)
        if j < n - 1:
            pad.copy_(checkpoints[j])
        for t in range(a + 1, b + 1):
            trellis.advance(pad, t, bps[t - a - 1])
            if j == n - 1:
                keep_final(pad, t)
        if j == n - 1:
            idx = _torch_start_states(final, (2 * l_len + 1).to(device))
        for t in range(b, a, -1):
            states[:, t] = idx
            code = bps[t - a - 1].gather(1, idx[:, None])[:, 0].to(torch.int64)
            idx = torch.where(t < t_len_d, idx - code, idx)
    states[:, 0] = idx

    valid = torch.arange(T, device=device) < t_len_d[:, None]
    blank_d = torch.tensor(blank, dtype=torch.int64, device=device)
    return torch.where(valid, trellis.lab.gather(1, states), blank_d)


# --------------------------------------------------------------------------
# Public API
# --------------------------------------------------------------------------


def forced_align(
    log_probs: torch.Tensor,
    targets: torch.Tensor,
    input_lengths: torch.Tensor | Sequence[int] | None = None,
    target_lengths: torch.Tensor | Sequence[int] | None = None,
    blank: int = 0,
    *,
    backend: str = "auto",
    num_threads: int | None = None,
    max_memory: int | None = None,
) -> tuple[torch.Tensor, torch.Tensor]:
    """Most likely CTC path of every item of a padded batch.

    Item ``b`` gets exactly the path of
    ``torchaudio.functional.forced_align(log_probs[b:b+1, :T_b],
    targets[b:b+1, :L_b], blank=blank)`` (same tie-breaking), computed by our
    own kernels (see the module docstring). Inputs are not modified.

    Args:
        log_probs: CTC log-probabilities (float16/bfloat16 are upcast to
            float32 for the search). Shape: (B, T, C).
        targets: padded target ids, any integer dtype; values past
            ``target_lengths[b]`` are ignored. Shape: (B, L).
        input_lengths: valid frames ``T_b`` per item (None: all ``T``);
            values past ``T_b`` in ``log_probs`` are ignored. Shape: (B,).
        target_lengths: valid tokens ``L_b`` per item (None: all ``L``).
            Shape: (B,).
        blank: id of the blank class, in ``[0, C)``.
        backend: ``"auto"`` (numba on CPU, torch on CUDA), ``"numba"``
            (CUDA emissions are copied to the CPU) or ``"torch"``.
        num_threads: worker threads of the numba backend (default: the CPU
            cores available to the process).
        max_memory: bytes of back-pointers one item may use (None:
            :data:`DEFAULT_MAX_MEMORY`, 64 MiB). An item whose back-pointer
            table is larger is searched in segments with checkpoints instead
            (same path, 1.5 to 2 times the time; see the module docstring),
            with the least memory that scheme allows, whatever
            ``max_memory`` is: at most about ``S_b * sqrt(w * T_b)`` bytes
            (numba) or ``2 * S * sqrt(w * T)`` per item (torch) for
            ``w``-byte floats -- 73 MiB (numba) and 175 MiB (torch) for one
            hour of 20 ms frames in float32. Must be a positive int.

    Returns:
        ``(paths, scores)``, both on ``log_probs.device``. ``paths``: int64
        label of every frame, the blank id on frames ``t >= T_b``.
        Shape: (B, T). ``scores``: ``log_probs[b, t, paths[b, t]]`` in the
        dtype of ``log_probs``, 0 on frames ``t >= T_b``. Shape: (B, T).

    Raises:
        AlignmentError: (a ``ValueError``) on wrong types, shapes, dtypes or
            lengths; a target that is blank or outside ``[0, C)``; a blank
            outside ``[0, C)``; NaN or +inf in a valid frame; an item with
            fewer frames than tokens plus repeats; an item none of whose
            paths has a nonzero probability; a ``max_memory`` that is not a
            positive int.

    Complexity (numba): time ``O(sum_b band_b)`` where ``band_b <= T_b * S_b``
    is the number of trellis cells in the item's band (twice that for a
    segmented item); memory ``O(B * C)`` working memory plus, for each item
    being aligned (one per worker thread at a time), about ``band_b / 4``
    bytes of back-pointers if that is at most ``max_memory``, else about
    ``S_b * sqrt(w * T_b)`` bytes of checkpoints and back-pointers.
    (torch): ``O(T)`` (segmented: ``2 T``) steps over ``B * S`` cells;
    device memory ``T * B * S`` bytes of back-pointers if ``T * S`` is at
    most ``max_memory``, else about ``2 * B * S * sqrt(w * T)``.

    Examples:
        Four frames over the labels blank (0), ``a`` (1) and ``b`` (2),
        aligned to the targets ``a b``:

        >>> import torch
        >>> from aligner import forced_align
        >>> probs = torch.tensor([[[0.1, 0.8, 0.1],
        ...                        [0.7, 0.2, 0.1],
        ...                        [0.1, 0.1, 0.8],
        ...                        [0.1, 0.1, 0.8]]])
        >>> paths, scores = forced_align(probs.log(), torch.tensor([[1, 2]]))
        >>> paths
        tensor([[1, 0, 2, 2]])
        >>> scores.exp()
        tensor([[0.8000, 0.7000, 0.8000, 0.8000]])
    """
    blank, tgt, t_len, l_len, max_memory = _validate(
        log_probs, targets, input_lengths, target_lengths, blank, backend, num_threads, max_memory
    )
    device = log_probs.device
    if backend == "auto":
        backend = "torch" if device.type == "cuda" else "numba"
    if backend == "numba":
        paths = _numba_paths(log_probs, tgt, t_len, l_len, blank, num_threads, max_memory).to(device)
    else:
        _check_finite(log_probs, t_len)
        paths = _torch_paths(log_probs, tgt, t_len, l_len, blank, max_memory)

    T = log_probs.shape[1]
    frame_valid = torch.arange(T, device=device) < t_len.to(device)[:, None]
    scores = log_probs.detach().gather(2, paths.unsqueeze(-1)).squeeze(-1)
    scores = torch.where(frame_valid, scores, torch.zeros((), dtype=scores.dtype, device=device))
    return paths, scores
