"""Compiled (numba) kernels of the duration-aware Viterbi
(:mod:`aligner.duration_viterbi`), imported only when an input is long
enough to need them (short ones run the same recursion in numpy), so a
one-file ``aligner align`` does not pay numba's import and cache load.

Rows are padded: state ``s`` lives in column ``s + 2`` of a score row and
columns 0 and 1 hold ``-1e30``, so ``s - 1`` and ``s - 2`` never wrap
around. Frame ``t`` computes only the band ``[lo[t], hi[t]]`` of states
that can lie on a complete path (see :func:`aligner.duration_viterbi.band`);
back-pointer codes are stored for the band only, one byte each (uint8): 0
stay, 1 from ``s - 1``, 2 from ``s - 2``, ``3 + r`` from the state's
``r``-th further edge (:attr:`aligner.duration_viterbi.StateGraph.edges`:
partial mode's word skips, the entries of a maximum duration). Scores are
in the dtype of ``log_probs`` (float32 or float64; the edges' costs must be
in the same dtype), as in :func:`aligner.viterbi.forced_align`. A frame
gathers its band's emissions first (32-bit label indices), then runs one
branch-free pass that LLVM vectorizes; a band with further edges takes the
best of the chain, applies the edges in a sparse pass and adds the
emissions in a third. The tie rule is the reference one: stay, then
``s - 1``, ``s - 2`` and the further edges in order, each only when
strictly better. :func:`chain_align` runs a plain chain's whole decoding
(:func:`chain_graph`, :func:`chain_band`, the forward pass and the trace)
in one call, without Python between the steps.
"""

from __future__ import annotations

import numpy as np
from numba import njit

NEG = -1e30


@njit(cache=True, nogil=True)
def _gather(frame, label, emit, st, en):  # pragma: no cover - numba
    """``emit[0 : en - st] = frame[label[st:en]]`` (the band's emissions)."""
    lb = label[st:en]
    for i in range(en - st):
        emit[i] = frame[lb[i]]


@njit(cache=True, nogil=True)
def _step(p0, p1, p2, stay, two, emit, out, codes, n, neg):  # pragma: no cover - numba
    """``n`` states of a frame without further edges, in one pass: from the
    previous row's cells of each state (``p0``), the one before (``p1``)
    and two before (``p2``), the best plus the emission into ``out``, the
    code into ``codes``. ``stay`` and ``two``: 0 where a state may repeat
    (may be entered from two states back), -inf where not (additions
    vectorize better than selects on booleans). Every argument is sliced to
    the band by the caller."""
    for i in range(n):
        x0 = p0[i] + stay[i]
        x1 = p1[i]
        x2 = p2[i] + two[i]
        c1 = x1 > x0
        best = x1 if c1 else x0
        c2 = x2 > best
        best = x2 if c2 else best
        out[i] = max(best + emit[i], neg)  # what cannot be reached stays at -1e30 (not below, not -inf)
        codes[i] = np.uint8(c1 & ~c2) | (np.uint8(c2) << np.uint8(1))


@njit(cache=True, nogil=True)
def _step_edges(p0, p1, p2, stay, two, emit, out, codes, n, neg, prev, edges, st, zeros):  # pragma: no cover
    """:func:`_step` for a band (from state ``st``) with further edges: the
    chain's best first (:func:`_step` with ``zeros`` for emissions: the best
    is never under -1e30), then the edges (sparse, from the padded row
    ``prev``), then the emissions."""
    _step(p0, p1, p2, stay, two, zeros, out, codes, n, neg)
    to, source, cost, rank = edges  # cost in the rows' dtype
    for k in range(np.searchsorted(to, st), to.shape[0]):
        s = to[k]
        if s >= st + n:
            break
        value = prev[source[k] + 2] - cost[k]
        if value > out[s - st]:
            out[s - st] = value
            codes[s - st] = 3 + rank[k]
    for i in range(n):
        out[i] = max(out[i] + emit[i], neg)


@njit(cache=True, nogil=True)
def _first_row(log_probs, label, start):  # pragma: no cover - numba
    """The (padded) score row of frame 0, in the dtype of ``log_probs``."""
    row = np.full(label.shape[0] + 2, NEG, log_probs.dtype)
    for s in range(label.shape[0]):
        if start[s]:
            row[s + 2] = log_probs[0, label[s]]
    return row


@njit(cache=True, nogil=True)
def _frames(log_probs, label, skip, loop, edges, lo, hi, row, first, last, codes, offsets, reset):
    """Frames ``first + 1 .. last`` from the (padded) row of frame ``first``
    (not changed); frame ``t``'s codes at ``codes[offsets[t - first - 1]:]``
    (all offsets 0: one scratch row). ``edges``: ``(to, source, cost, rank)``
    of the further edges, sorted by ``to``. ``reset``: cells below the band
    set to -1e30 (so that stale values from older frames are never read).
    Returns the row of frame ``last``."""  # pragma: no cover - numba
    previous = row.copy()
    current = np.full(row.shape[0], NEG, row.dtype)
    emit = np.empty(label.shape[0], row.dtype)
    compact = label.astype(np.int32)  # 32-bit indices gather faster
    stay = np.zeros(label.shape[0], row.dtype)  # 0 or -inf: see _step
    two = np.zeros(label.shape[0], row.dtype)
    for s in range(label.shape[0]):
        if not loop[s]:
            stay[s] = -np.inf
        if not skip[s]:
            two[s] = -np.inf
    if edges[0].shape[0]:
        return _graph_frames(
            log_probs, compact, stay, two, edges, lo, hi, previous, current, emit, first, last, codes, offsets, reset
        )
    return _chain_frames(log_probs, compact, stay, two, lo, hi, previous, current, emit, first, last, codes, offsets)


@njit(cache=True, nogil=True)
def _chain_frames(log_probs, label, stay, two, lo, hi, previous, current, emit, first, last, codes, offsets):
    """:func:`_frames` without further edges (a loop of its own: a branch to
    :func:`_step_edges` in it slows every frame down by a fifth). Rows
    ``previous`` (of frame ``first``) and ``current`` (scratch) are reused."""  # pragma: no cover - numba
    neg = current[0]  # -1e30 in the rows' dtype
    for t in range(first + 1, last + 1):
        st, en = lo[t], hi[t] + 1
        for s in range(max(st - 2, 0), st):  # a chain's predecessors lie at most two states below
            current[s + 2] = neg
        _gather(log_probs[t], label, emit, st, en)
        p0, p1, p2 = previous[st + 2 : en + 2], previous[st + 1 : en + 1], previous[st:en]
        out, codes_t = current[st + 2 : en + 2], codes[offsets[t - first - 1] :]
        _step(p0, p1, p2, stay[st:en], two[st:en], emit, out, codes_t, en - st, neg)
        previous, current = current, previous
    return previous


@njit(cache=True, nogil=True)
def _graph_frames(
    log_probs, label, stay, two, edges, lo, hi, previous, current, emit, first, last, codes, offsets, reset
):  # pragma: no cover - numba
    """:func:`_frames` with further edges: :func:`_step_edges` where one
    enters the band, :func:`_step` elsewhere."""
    neg = current[0]
    to = edges[0]
    zeros = np.zeros(emit.shape[0], emit.dtype)
    for t in range(first + 1, last + 1):
        st, en = lo[t], hi[t] + 1
        for s in range(max(st - reset, 0), st):
            current[s + 2] = neg
        _gather(log_probs[t], label, emit, st, en)
        p0, p1, p2 = previous[st + 2 : en + 2], previous[st + 1 : en + 1], previous[st:en]
        out, codes_t = current[st + 2 : en + 2], codes[offsets[t - first - 1] :]
        if to[-1] >= st and to[np.searchsorted(to, st)] < en:
            _step_edges(
                p0, p1, p2, stay[st:en], two[st:en], emit, out, codes_t, en - st, neg, previous, edges, st, zeros
            )  # fmt: skip
        else:
            _step(p0, p1, p2, stay[st:en], two[st:en], emit, out, codes_t, en - st, neg)
        previous, current = current, previous
    return previous


@njit(cache=True, nogil=True)
def forward_codes(log_probs, label, skip, loop, start, edges, lo, hi, offsets, codes, reset):
    """The whole forward pass with every frame's codes (frame ``t``'s band
    codes at ``codes[offsets[t - 1]:]``); returns the last row (padded).
    """  # pragma: no cover - numba
    row = _first_row(log_probs, label, start)
    return _frames(log_probs, label, skip, loop, edges, lo, hi, row, 0, log_probs.shape[0] - 1, codes, offsets, reset)


@njit(cache=True, nogil=True)
def forward_checkpoints(log_probs, label, skip, loop, start, edges, lo, hi, every, rows, reset):
    """The forward pass keeping row ``t`` in ``rows[t // every]`` when
    ``t % every == 0``; returns the last row (padded)."""  # pragma: no cover - numba
    width = 0
    for t in range(lo.shape[0]):
        width = max(width, hi[t] + 1 - lo[t])
    scratch = np.empty(max(width, 1), dtype=np.uint8)
    offsets = np.zeros(every, dtype=np.int64)  # every frame's codes in the same scratch row
    row = _first_row(log_probs, label, start)
    rows[0, :] = row
    last_frame = log_probs.shape[0] - 1
    for index in range(rows.shape[0]):
        first = index * every
        last = min(first + every, last_frame)
        row = _frames(log_probs, label, skip, loop, edges, lo, hi, row, first, last, scratch, offsets, reset)
        if index + 1 < rows.shape[0]:
            rows[index + 1, :] = row
    return row


@njit(cache=True, nogil=True)
def trace(codes, offsets, lo, edge_first, edge_source, first, last, end_state, path):  # pragma: no cover - numba
    """Follow the codes of frames ``last .. first + 1`` back from
    ``end_state`` (frame ``t``'s codes at ``codes[offsets[t - first - 1]:]``),
    writing ``path[first .. last]``; returns the state at ``first``."""
    state = end_state
    path[last] = state
    for t in range(last, first, -1):
        code = codes[offsets[t - first - 1] + state - lo[t]]
        state = edge_source[edge_first[state] + code - 3] if code >= 3 else state - code
        path[t - 1] = state
    return state


@njit(cache=True, nogil=True)
def segment(
    log_probs, label, skip, loop, edges, edge_first, lo, hi, row, first, last, end_state, path, reset
):  # pragma: no cover - numba
    """Recompute frames ``first + 1 .. last`` from the (padded) row at
    ``first`` and trace them back from ``end_state``; returns the state at ``first``."""
    count = last - first
    offsets = np.zeros(max(count, 1) + 1, dtype=np.int64)
    for k in range(count):
        offsets[k + 1] = offsets[k] + hi[first + 1 + k] + 1 - lo[first + 1 + k]
    codes = np.empty(max(offsets[count], 1), dtype=np.uint8)
    _frames(log_probs, label, skip, loop, edges, lo, hi, row, first, last, codes, offsets, reset)
    return trace(codes, offsets, lo, edge_first, edges[1], first, last, end_state, path)


@njit(cache=True, nogil=True)
def chain_graph(labels, word_lengths, gap_labels, min_frames):  # pragma: no cover - numba
    """The arrays of :func:`aligner.duration_viterbi.state_graph` for a plain
    chain (no skips, no maximum duration): ``(label, token, loop, skip)``,
    Shape ``(S,)`` each; the start states are 0 and 1, the final ones the
    last two. ``labels``: every token of the non-empty words in order;
    ``word_lengths``: tokens per word; ``gap_labels``: one per gap."""
    size = labels.shape[0] * min_frames + word_lengths.shape[0] + 1
    label = np.empty(size, dtype=np.int64)
    token = np.full(size, -1, dtype=np.int64)
    loop = np.ones(size, dtype=np.bool_)
    skip = np.zeros(size, dtype=np.bool_)
    label[0] = gap_labels[0]
    s = 1
    k = 0
    for w in range(word_lengths.shape[0]):
        if w > 0:
            skip[s] = True  # a word's first state may follow the word before without silence
        for _ in range(word_lengths[w]):
            for c in range(min_frames):
                label[s] = labels[k]
                token[s] = k
                loop[s] = c == min_frames - 1
                s += 1
            k += 1
        label[s] = gap_labels[w + 1]
        s += 1
    return label, token, loop, skip


@njit(cache=True, nogil=True)
def chain_band(token, frames):  # pragma: no cover - numba
    """:func:`aligner.duration_viterbi.band` of a plain chain: ``(lo, hi)``,
    Shape ``(T,)`` each."""
    size = token.shape[0]
    reach = np.empty(size, dtype=np.int64)  # fewest frames to reach a state, then min over the states after it
    count = 0
    for s in range(size):
        count += token[s] >= 0
        reach[s] = count + (token[s] < 0)
    for s in range(size - 2, -1, -1):
        reach[s] = min(reach[s], reach[s + 1])
    finish = np.empty(size, dtype=np.int64)  # fewest frames to finish, then min over the states before it
    count = 0
    for s in range(size - 1, -1, -1):
        count += token[s] >= 0
        finish[s] = count + (token[s] < 0)
    for s in range(1, size):
        finish[s] = min(finish[s], finish[s - 1])
    lo = np.empty(frames, dtype=np.int64)
    hi = np.empty(frames, dtype=np.int64)
    top = 0  # states with reach <= t + 1 (reach is nondecreasing)
    bottom = 0  # first state with finish <= frames - t (finish is nonincreasing)
    for t in range(frames):
        while top < size and reach[top] <= t + 1:
            top += 1
        hi[t] = top - 1
        while bottom < size and finish[bottom] > frames - t:
            bottom += 1
        lo[t] = bottom
    return lo, hi


@njit(cache=True, nogil=True)
def chain_align(log_probs, labels, word_lengths, gap_labels, min_frames, path_labels, positions):  # pragma: no cover
    """One item through a plain chain (graph, band, forward pass, trace) in
    one compiled call, writing each frame's label into ``path_labels`` and
    its target position (-1 for silence) into ``positions`` (Shape ``(T,)``
    each). Returns the path's score, or ``-inf`` when no path fits (too few
    frames). The back-pointers of the whole band are kept (the caller
    checks that they fit its memory budget)."""
    frames = log_probs.shape[0]
    label, token, loop, skip = chain_graph(labels, word_lengths, gap_labels, min_frames)
    size = label.shape[0]
    lo, hi = chain_band(token, frames)
    for t in range(frames):
        if lo[t] > hi[t]:
            return -np.inf
    offsets = np.zeros(frames, dtype=np.int64)  # frame t's codes at offsets[t - 1]
    for t in range(1, frames):
        offsets[t] = offsets[t - 1] + hi[t] + 1 - lo[t]
    cells = offsets[frames - 1]
    codes = np.empty(max(cells, 1), dtype=np.uint8)
    start = np.zeros(size, dtype=np.bool_)
    start[0] = True
    start[min(1, size - 1)] = True
    none = np.empty(0, dtype=np.int64)
    edges = (none, none, np.empty(0, dtype=log_probs.dtype), none)
    last_row = forward_codes(log_probs, label, skip, loop, start, edges, lo, hi, offsets, codes, 2)
    end_state = size - 2 if last_row[size] >= last_row[size + 1] else size - 1
    score = last_row[end_state + 2]
    if score <= NEG / 2:
        return -np.inf
    path = np.empty(frames, dtype=np.int64)
    trace(codes, offsets, lo, none, none, 0, frames - 1, end_state, path)
    for t in range(frames):
        path_labels[t] = label[path[t]]
        positions[t] = token[path[t]]
    return score
