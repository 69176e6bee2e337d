"""Duration-aware Viterbi: every token lasts at least ``min_frames`` frames,
and silence (the blank) may fall only between words.

The plain CTC path (:func:`aligner.viterbi.forced_align`) lets a token take
a single frame and lets blank frames fall anywhere, also inside a word.
With a frame-level model that hears a speaker poorly, the best path may
then squeeze most of a sentence into one frame per token and stretch one
word (or a blank run) over the rest. This decoder uses a left-to-right
topology instead::

    [sil] -> w1: t1^d -> t2^d -> ... -> [sil] -> w2: ... -> [sil]

where ``t^d`` is a chain of ``d = min_frames`` states of token ``t`` whose
last state may repeat (so the token lasts ``d`` frames or more), and each
``[sil]`` is an optional run of blank frames (one frame or more, or
skipped). Two equal tokens in a row need no blank between them. The
score of a path is the sum of the log-probabilities of its frames' labels,
as in CTC forced alignment.

Shapes: ``log_probs`` ``(T, C)`` for one item; the batched entry point
:func:`duration_align` takes ``(B, T, C)`` with valid lengths.

Work and memory: only the *band* of each frame is computed -- the states a
complete path can be in then, given the fewest frames needed to reach a
state and to finish from it (:func:`band`) -- so a recording with room to
spare costs about half of ``T x S`` (``S`` states, about ``min_frames``
per token plus one per word). Back-pointers take one byte per band cell;
above ``max_memory`` the forward pass keeps only every ``K``-th score row
and recomputes the back-pointers segment by segment (the path is the
same). Long inputs run the compiled kernels of
:mod:`aligner._duration_kernels` (numba, imported on first use); short
ones the same recursion in numpy (:data:`NUMPY_CELLS`), so aligning one
short file does not pay numba's import and cache load. Once the kernels
are loaded, :func:`duration_align` decodes each plain chain (no skips, no
maximum duration) whose back-pointers fit in one compiled call that builds
the graph and the band itself (``chain_align``; the same path, tested).
"""

from __future__ import annotations

import importlib
import itertools
import sys
from collections.abc import Sequence
from dataclasses import dataclass
from functools import cached_property
from types import ModuleType
from typing import NamedTuple

import numpy as np
import torch

from ._shares import run_in_shares
from .errors import AlignmentError

__all__ = [
    "StateGraph",
    "band",
    "compute_dtype",
    "duration_align",
    "kernels_loaded",
    "load_kernels",
    "state_graph",
    "viterbi_states",
]

_NEG = -1e30
_KERNELS = "aligner._duration_kernels"
#: ``"auto"`` and ``"numba"``: the CPU path (numba kernels, or numpy for
#: short inputs); ``"torch"``: torch on the input's device, item by item
#: (a GPU search; not the default: it launches a dozen small kernels per
#: frame and has not been timed on a GPU). All give the same path.
BACKENDS: tuple[str, ...] = ("auto", "numba", "torch")
#: Default back-pointer budget per item (bytes) before segments are recomputed.
DEFAULT_MAX_MEMORY = 256 * 2**20
#: Inputs of at most this many frames x states (all the items of a
#: :func:`duration_align` call together) are decoded in numpy while the
#: compiled kernels are not loaded (:func:`load_kernels`): a short file's
#: alignment then starts without numba. Same path either way.
NUMPY_CELLS = 2_000_000


@dataclass(frozen=True, eq=False)
class StateGraph:
    """A left-to-right state graph.

    Attributes:
        label: label id each state emits. Shape: ``(S,)``.
        pred1, pred2: the (up to) two predecessor states other than itself,
            -1 for none. Shape: ``(S,)``.
        loop: whether a state may repeat. Shape: ``(S,)``.
        start: states a path may begin in. Shape: ``(S,)``.
        final: states a path may end in. Shape: ``(S,)``.
        token: target position of each state, -1 for silence. Shape: ``(S,)``.
        jump: a further predecessor of each state, -1 for none (partial
            mode's way round a word, :func:`state_graph`). Shape: ``(S,)``.
        jump_cost: log-probability price of taking ``jump``. Shape: ``(S,)``.
        extra: more predecessors, ``(to, source, cost)`` arrays of the same
            length (a maximum duration's entries, :func:`state_graph`), or None.
    """

    label: np.ndarray
    pred1: np.ndarray
    pred2: np.ndarray
    loop: np.ndarray
    start: np.ndarray
    final: np.ndarray
    token: np.ndarray
    jump: np.ndarray | None = None
    jump_cost: np.ndarray | None = None
    extra: tuple[np.ndarray, np.ndarray, np.ndarray] | None = None

    @cached_property
    def edges(self) -> tuple[tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray], np.ndarray]:
        """Every predecessor besides ``s``, ``s - 1`` and ``s - 2``: ``((to,
        source, cost, rank), first)``, sorted by ``to`` (a state's ``jump``
        first, then its ``extra`` edges in order; ``rank`` counts a state's
        edges from 0) and ``first``, each state's first edge (-1 for none).
        The decoders try a state's edges in this order (computed once per
        graph: the band and the decoder both use them). Shapes: ``(E,)``
        and ``(S,)``."""
        jump, jump_cost = self.jumps
        has = np.flatnonzero(jump >= 0)
        to, source, cost = [has], [jump[has]], [jump_cost[has]]
        if self.extra is not None:
            to.append(np.asarray(self.extra[0], np.int64))
            source.append(np.asarray(self.extra[1], np.int64))
            cost.append(np.asarray(self.extra[2], np.float64))
        all_to = np.concatenate(to).astype(np.int64)
        order = np.argsort(all_to, kind="stable")
        all_to = all_to[order]
        all_source = np.concatenate(source).astype(np.int64)[order]
        all_cost = np.concatenate(cost).astype(np.float64)[order]
        first = np.full(self.label.shape[0], -1, np.int64)
        index = np.arange(all_to.shape[0])
        starts = np.flatnonzero(np.r_[True, all_to[1:] != all_to[:-1]]) if all_to.shape[0] else index
        first[all_to[starts]] = starts
        rank = index - first[all_to] if all_to.shape[0] else index
        return (all_to, all_source, all_cost, rank.astype(np.int64)), first

    @property
    def jumps(self) -> tuple[np.ndarray, np.ndarray]:
        """``(jump, jump_cost)`` with no jumps filled in as -1 and 0."""
        if self.jump is None or self.jump_cost is None:
            size = self.label.shape[0]
            return np.full(size, -1, np.int64), np.zeros(size)
        return np.ascontiguousarray(self.jump, np.int64), np.ascontiguousarray(self.jump_cost, np.float64)

    @property
    def num_states(self) -> int:
        return int(self.label.shape[0])

    @cached_property
    def skip(self) -> np.ndarray:
        """Whether a state may be entered from two states back. The graphs
        of :func:`state_graph` are chains: ``pred1`` is always ``s - 1``
        (-1 for state 0) and ``pred2`` is ``s - 2`` or -1, which the kernels
        use directly. Shape: ``(S,)``, bool.

        Raises:
            AlignmentError: the graph is not such a chain.
        """
        index = np.arange(self.label.shape[0])
        if not (
            np.all((self.pred1 == index - 1) | ((index == 0) & (self.pred1 < 0)))
            and np.all((self.pred2 < 0) | (self.pred2 == index - 2))
        ):
            raise AlignmentError("the state graph is not a left-to-right chain")
        return np.ascontiguousarray(self.pred2 >= 0)


def state_graph(
    words: Sequence[Sequence[int]],
    *,
    blank: int = 0,
    min_frames: int = 1,
    max_frames: int | None = None,
    gaps: Sequence[int] | None = None,
    skip_cost: float | Sequence[float] | None = None,
) -> StateGraph:
    """The graph for ``words`` (label ids per word, empty words skipped):
    optional silence before, between and after the words, no silence
    inside a word, every token at least ``min_frames`` frames.

    ``max_frames`` (optional) also caps every token's duration: a token is
    then a chain of ``max_frames`` states without repeats, the last
    ``min_frames`` of them mandatory and the others entered at any point
    (``extra`` edges), so it lasts ``min_frames`` to ``max_frames`` frames.
    The graph is about ``max_frames / min_frames`` times larger; the guard's
    re-alignment uses it to keep a phone from swallowing a pause.

    ``gaps`` (optional) gives the label of each optional run between words:
    one per gap of the non-empty words, before the first and after the last
    included (``len`` = non-empty words + 1); default the blank everywhere.
    Partial mode puts its star (:mod:`aligner.partial`) in some gaps.

    ``skip_cost`` (optional) makes every word optional: the run after a word
    may be entered straight from the run before it at this price (a
    log-probability, > 0; one for all words or one per non-empty word), so a path can leave out a word that is not
    spoken. The two runs then take at least a frame each; a skipped word's
    tokens have no frame (``token`` never takes their positions).

    Raises:
        AlignmentError: no token at all, ``min_frames < 1``, a token is the
            blank, or ``gaps`` has the wrong length.

    Examples:
        Two words, ``1 2`` and ``1``, every token at least 2 frames: each
        token gets ``min_frames`` states, and a silence state (the blank, 0)
        sits before, between and after the words.

        >>> from aligner.duration_viterbi import state_graph
        >>> graph = state_graph([[1, 2], [1]], min_frames=2)
        >>> graph.label.tolist()
        [0, 1, 1, 2, 2, 0, 1, 1, 0]
        >>> graph.token.tolist()  # target position of each state, -1 for silence
        [-1, 0, 0, 1, 1, -1, 2, 2, -1]
    """
    if min_frames < 1:
        raise AlignmentError(f"min_frames must be >= 1, got {min_frames}")
    if max_frames is not None and max_frames < min_frames:
        raise AlignmentError(f"max_frames must be >= min_frames ({min_frames}), got {max_frames}")
    count = sum(1 for word in words if word)
    if gaps is not None and len(gaps) != count + 1:
        raise AlignmentError(f"{len(gaps)} gap labels for {count} words (need {count + 1})")
    if skip_cost is None and max_frames is None:
        return _chain_graph(_chain(words, blank, min_frames, gaps), min_frames)
    gap_labels = [blank] * (count + 1) if gaps is None else [int(g) for g in gaps]
    costs_per_word = None
    if skip_cost is not None:
        costs_per_word = (
            [float(skip_cost)] * count if isinstance(skip_cost, (int, float)) else [float(c) for c in skip_cost]
        )
        if len(costs_per_word) != count:
            raise AlignmentError(f"{len(costs_per_word)} skip costs for {count} words")
        if not all(c > 0 for c in costs_per_word):
            raise AlignmentError(f"skip_cost must be > 0, got {skip_cost}")
    return _general_graph(words, blank, min_frames, max_frames, gap_labels, costs_per_word)


def _general_graph(
    words: Sequence[Sequence[int]],
    blank: int,
    min_frames: int,
    max_frames: int | None,
    gap_labels: list[int],
    costs_per_word: list[float] | None,
) -> StateGraph:
    """:func:`state_graph` state by state (any option; arguments checked)."""
    optional_copies = 0 if max_frames is None else max_frames - min_frames
    extra_to: list[int] = []
    extra_from: list[int] = []
    jump_cost: list[float] = []
    jump: list[int] = []
    label: list[int] = []
    pred1: list[int] = []
    pred2: list[int] = []
    loop: list[bool] = []
    token: list[int] = []

    def add(lab: int, a: int, b: int, repeat: bool, position: int, over: int = -1) -> int:
        jump.append(over)
        jump_cost.append(0.0)
        label.append(lab)
        pred1.append(a)
        pred2.append(b)
        loop.append(repeat)
        token.append(position)
        return len(label) - 1

    silence = add(gap_labels[0], -1, -1, True, -1)
    starts = [silence]
    gap = 0
    last_token_state = -1  # last state of the previous word's last token
    position = 0
    for word in words:
        if not word:
            continue
        previous = -1
        for k, lab in enumerate(word):
            if lab == blank:
                raise AlignmentError(f"target {position} is the blank label {blank}")
            # where the token may be entered from besides the state before it
            sources = ([silence] + ([last_token_state] if last_token_state >= 0 else [])) if k == 0 else [previous]
            for copy in range(optional_copies + min_frames):
                repeat = max_frames is None and copy == min_frames - 1
                if copy == 0 and k == 0:
                    state = add(lab, silence, last_token_state, repeat, position)
                else:
                    state = add(lab, previous, -1, repeat, position)
                if copy <= optional_copies:  # an entry: the token lasts max_frames - copy frames from here
                    if k == 0 and last_token_state < 0:
                        starts.append(state)
                    if copy > 0:
                        extra_to.extend([state] * len(sources))
                        extra_from.extend(sources)
                previous = state
            position += 1
        last_token_state = previous
        gap += 1
        silence = add(gap_labels[gap], last_token_state, -1, True, -1, silence if costs_per_word else -1)
        if costs_per_word:
            jump_cost[-1] = costs_per_word[gap - 1]
    if position == 0:
        raise AlignmentError("no target token to align")
    size = len(label)
    start = np.zeros(size, dtype=np.bool_)
    start[starts] = True
    final = np.zeros(size, dtype=np.bool_)
    final[[last_token_state, silence]] = True
    optional = costs_per_word is not None
    return StateGraph(
        np.asarray(label, np.int64),
        np.asarray(pred1, np.int64),
        np.asarray(pred2, np.int64),
        np.asarray(loop, np.bool_),
        start,
        final,
        np.asarray(token, np.int64),
        np.asarray(jump, np.int64) if optional else None,
        np.asarray(jump_cost, np.float64) if optional else None,
        (np.asarray(extra_to, np.int64), np.asarray(extra_from, np.int64), np.zeros(len(extra_to)))
        if extra_to
        else None,
    )


class _Chain(NamedTuple):
    """A plain chain's inputs, checked (see :func:`_chain`)."""

    labels: np.ndarray  # every token of the non-empty words, Shape (N,)
    counts: np.ndarray  # tokens per non-empty word, Shape (W,)
    gaps: np.ndarray  # label of each optional run between words, Shape (W + 1,)
    size: int  # states of its graph


def _chain(words: Sequence[Sequence[int]], blank: int, min_frames: int, gaps: Sequence[int] | None) -> _Chain:
    """What a plain chain (no skips, no maximum duration) is built from, by
    :func:`_chain_graph` (numpy) or the compiled decoder, with
    :func:`state_graph`'s checks."""
    if min_frames < 1:
        raise AlignmentError(f"min_frames must be >= 1, got {min_frames}")
    sizes = [len(word) for word in words if len(word)]
    if not sizes:
        raise AlignmentError("no target token to align")
    labels = np.fromiter(itertools.chain.from_iterable(words), np.int64, sum(sizes))
    blanks = np.flatnonzero(labels == blank)
    if blanks.size:
        raise AlignmentError(f"target {int(blanks[0])} is the blank label {blank}")
    counts = np.asarray(sizes, dtype=np.int64)
    if gaps is not None and len(gaps) != counts.shape[0] + 1:
        raise AlignmentError(f"{len(gaps)} gap labels for {counts.shape[0]} words (need {counts.shape[0] + 1})")
    gap_labels = np.full(counts.shape[0] + 1, blank, np.int64) if gaps is None else np.asarray(gaps, np.int64)
    return _Chain(labels, counts, gap_labels, labels.shape[0] * min_frames + counts.shape[0] + 1)


def _chain_decode(
    log_probs: np.ndarray, chain: _Chain, min_frames: int, labels: np.ndarray, positions: np.ndarray
) -> None:
    """Labels and target positions of the best path through a plain chain
    (the compiled kernels' :func:`chain_align`; the path of
    :func:`viterbi_states` on :func:`state_graph`'s graph), written into
    ``labels`` and ``positions`` (int64, contiguous). Shape: ``log_probs``
    ``(T, C)``, float32 or float64; ``labels`` and ``positions`` ``(T,)``."""
    frames = log_probs.shape[0]
    score = load_kernels().chain_align(log_probs, chain.labels, chain.counts, chain.gaps, min_frames, labels, positions)
    if score == -np.inf:
        tokens = chain.labels.shape[0]
        raise _too_few_tokens(tokens, tokens * min_frames, frames)


def _chain_graph(chain: _Chain, min_frames: int) -> StateGraph:
    """:func:`state_graph` without skips or a maximum duration, built with
    numpy from a checked :class:`_Chain` (the graph of every plain
    alignment; the same arrays as the general builder, which a test checks)."""
    labels, counts = chain.labels, chain.counts
    lengths = counts * min_frames
    silences = np.concatenate([[0], np.cumsum(lengths + 1)])  # state of each silence: before, between, after
    size = int(silences[-1]) + 1
    is_token = np.ones(size, dtype=np.bool_)
    is_token[silences] = False
    label = np.empty(size, dtype=np.int64)
    label[silences] = chain.gaps
    label[is_token] = np.repeat(labels, min_frames)
    token = np.full(size, -1, dtype=np.int64)
    token[is_token] = np.repeat(np.arange(labels.shape[0]), min_frames)
    loop = ~is_token
    loop[np.flatnonzero(is_token)[min_frames - 1 :: min_frames]] = True  # each token's last copy repeats
    pred1 = np.arange(size, dtype=np.int64) - 1
    pred2 = np.full(size, -1, dtype=np.int64)
    firsts = silences[1:-1] + 1  # first state of every word after the first: may follow the word before directly
    pred2[firsts] = firsts - 2
    start = np.zeros(size, dtype=np.bool_)
    start[[0, 1]] = True
    final = np.zeros(size, dtype=np.bool_)
    final[[size - 2, size - 1]] = True
    return StateGraph(label, pred1, pred2, loop, start, final, token)


def load_kernels() -> ModuleType:
    """Import the compiled kernels (numba; about a second the first time in
    a process). From then on every input, short ones included, runs
    compiled; an :class:`aligner.Aligner` calls it from its second decoding
    on, :func:`duration_align` for a batch too large for numpy."""
    return importlib.import_module(_KERNELS)


def kernels_loaded() -> bool:
    """Whether :func:`load_kernels` has run in this process."""
    return _KERNELS in sys.modules


def _min_frames_to(graph: StateGraph) -> tuple[np.ndarray, np.ndarray]:
    """``(before, after)``: the fewest frames a path needs to reach each state
    (that frame included) and to finish from it (that frame included).
    Shape: ``(S,)`` each."""
    is_token = graph.token >= 0
    if graph.jump is None and graph.extra is None:  # a chain whose silences can all be skipped
        before = np.cumsum(is_token) + ~is_token
        after = np.cumsum(is_token[::-1])[::-1] + ~is_token
        return before.astype(np.int64), after.astype(np.int64)
    size = graph.num_states
    predecessors: list[list[int]] = [[s - 1] if s else [] for s in range(size)]
    for s in np.flatnonzero(graph.pred2 >= 0).tolist():
        predecessors[s].append(int(graph.pred2[s]))
    (to, source, _, _), _ = graph.edges
    for s, p in zip(to.tolist(), source.tolist()):
        predecessors[s].append(p)
    start, final = graph.start.tolist(), graph.final.tolist()
    big = 1 << 60
    before_list = [big] * size
    for s in range(size):
        best = 0 if start[s] else big
        for p in predecessors[s]:
            best = min(best, before_list[p])
        before_list[s] = best + 1
    after_list = [1 if final[s] else big for s in range(size)]
    successors: list[list[int]] = [[] for _ in range(size)]
    for s in range(size):
        for p in predecessors[s]:
            successors[p].append(s)
    for s in range(size - 1, -1, -1):  # every edge goes forward: successors are done
        for q in successors[s]:
            after_list[s] = min(after_list[s], after_list[q] + 1)
    return np.asarray(before_list, np.int64), np.asarray(after_list, np.int64)


def band(graph: StateGraph, frames: int) -> tuple[np.ndarray, np.ndarray]:
    """``(lo, hi)``: for each frame, the first and last state that a complete
    path can be in then (a state needs as many frames before it as the
    fewest that reach it, and as many after it as the fewest that finish
    from it). The decoder computes only these states; an empty band
    (``lo > hi``) means no path fits. Shape: ``(T,)`` each."""
    before, after = _min_frames_to(graph)
    reach = np.minimum.accumulate(before[::-1])[::-1]  # nondecreasing
    finish = np.minimum.accumulate(after)  # nonincreasing
    t = np.arange(frames)
    hi = np.searchsorted(reach, t + 1, side="right") - 1
    lo = np.searchsorted(-finish, -(frames - t), side="left")
    return lo.astype(np.int64), hi.astype(np.int64)


def compute_dtype(dtype: np.dtype | type) -> np.dtype:
    """The dtype the scores are summed in: float64 for float64 input,
    float32 for any other (float16 and bfloat16 are upcast), as in
    :func:`aligner.viterbi.forced_align`. Every backend uses it, so they
    give the same path."""
    return np.dtype(np.float64) if np.dtype(dtype) == np.float64 else np.dtype(np.float32)


def _torch_compute_dtype(dtype: torch.dtype) -> torch.dtype:
    """:func:`compute_dtype` of a torch dtype (which numpy may not know: bfloat16)."""
    return torch.float64 if dtype == torch.float64 else torch.float32


def _reset_width(edges: tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]) -> int:
    """How far below a state its predecessors can be."""
    to, source = edges[0], edges[1]
    return max(2, int(np.max(to - source))) if to.shape[0] else 2


def _by_rank(edges: tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]) -> list[tuple[np.ndarray, ...]]:
    """The further edges in groups of equal rank (no state twice in a group):
    ``(to, source, cost)`` per rank, in rank order."""
    to, source, cost, rank = edges
    return [(to[rank == r], source[rank == r], cost[rank == r]) for r in range(int(rank.max()) + 1 if rank.size else 0)]


def _numpy_states(log_probs: np.ndarray, graph: StateGraph) -> tuple[np.ndarray, float]:
    """The recursion in numpy over whole rows, for short inputs (no numba
    import, no compilation). It gives the kernels' path and score: a state
    that cannot be reached keeps -1e30 whichever way it is computed, and
    the tie rule is the same (stay, then ``s - 1``, ``s - 2``, the further
    edges in order, each only when strictly better)."""
    label = graph.label
    edges, first_edge = graph.edges
    dtype = log_probs.dtype
    groups = [(to, source, cost.astype(dtype)) for to, source, cost in _by_rank(edges)]
    no_loop = np.where(graph.loop, 0.0, -np.inf).astype(dtype)  # -inf: never better than a predecessor
    no_skip = np.where(graph.skip, 0.0, -np.inf).astype(dtype)
    emissions = log_probs[:, label]  # (T, S)
    frames, states = emissions.shape
    previous = np.full(states + 2, _NEG, dtype)
    previous[2:] = np.where(graph.start, emissions[0], _NEG)
    codes = []
    for t in range(1, frames):
        stay = previous[2:] + no_loop
        one = previous[1:-1]
        c1 = one > stay
        best = np.maximum(stay, one)
        c2 = (previous[:-2] + no_skip) > best
        best = np.maximum(best, previous[:-2] + no_skip)
        code = np.where(c2, np.int8(2), c1.astype(np.int8))
        for rank, (to, source, cost) in enumerate(groups):
            value = previous[source + 2] - cost
            better = value > best[to]
            best[to[better]] = value[better]
            code[to[better]] = 3 + rank
        current = np.empty(states + 2, dtype)
        current[:2] = _NEG
        np.add(best, emissions[t], out=current[2:])
        np.maximum(current, _NEG, out=current)  # unreachable stays at -1e30 (not -inf)
        codes.append(code)
        previous = current
    state, score = _end_state(previous[2:], graph, frames)
    path = np.empty(frames, dtype=np.int64)
    path[-1] = state
    source_of = edges[1]
    for t in range(frames - 1, 0, -1):
        pick = int(codes[t - 1][state])
        state = int(source_of[first_edge[state] + pick - 3]) if pick >= 3 else state - pick
        path[t - 1] = state
    return path, score


def _torch_states(
    log_probs: torch.Tensor, graph: StateGraph, lo: np.ndarray, hi: np.ndarray, budget: int
) -> tuple[np.ndarray, float]:
    """The banded recursion with torch on ``log_probs``' device (the GPU
    backend; in the input's compute dtype (:func:`compute_dtype`), so the
    path is the other backends'). Rows every ``K``
    frames are kept and each segment's back-pointer codes (one byte per band
    cell, at most ``budget`` bytes) are recomputed from its row, as in the
    kernels; the trace runs on the CPU. Shape: ``log_probs`` ``(T, C)``."""
    device = log_probs.device
    dtype = _torch_compute_dtype(log_probs.dtype)
    lp = log_probs.to(dtype)
    frames, states = lp.shape[0], graph.num_states
    edges, first_edge = graph.edges
    reset = _reset_width(edges)

    def tensor(array: np.ndarray) -> torch.Tensor:
        return torch.as_tensor(np.ascontiguousarray(array), device=device)

    def scores(array: np.ndarray) -> torch.Tensor:
        return tensor(array).to(dtype)

    label, no_loop = tensor(graph.label), scores(np.where(graph.loop, 0.0, -np.inf))
    no_skip = scores(np.where(graph.skip, 0.0, -np.inf))
    groups = []  # per rank: the edges as tensors and, per frame, the range of them inside the band
    for to, source, cost in _by_rank(edges):
        first, end = np.searchsorted(to, lo).tolist(), np.searchsorted(to, hi + 1).tolist()
        groups.append((tensor(to), tensor(source + 2), scores(cost), first, end))
    starts, ends = lo.tolist(), (hi + 1).tolist()

    def advance(previous: torch.Tensor, current: torch.Tensor, t: int) -> torch.Tensor:
        st, en = starts[t], ends[t]
        stay = previous[st + 2 : en + 2] + no_loop[st:en]
        one = previous[st + 1 : en + 1]
        two = previous[st:en] + no_skip[st:en]
        c1 = one > stay
        best = torch.maximum(stay, one)
        c2 = two > best
        best = torch.maximum(best, two)
        code = torch.where(c2, 2, c1.to(torch.int8)).to(torch.int8)
        for rank, (to, sources, prices, first, end) in enumerate(groups):  # the further edges, sparse
            a, b = first[t], end[t]
            if b > a:
                inside = to[a:b] - st
                value = previous[sources[a:b]] - prices[a:b]
                better = value > best[inside]
                best[inside] = torch.where(better, value, best[inside])
                code[inside] = torch.where(better, 3 + rank, code[inside]).to(torch.int8)
        current[max(st - reset, 0) + 2 : st + 2] = _NEG
        current[st + 2 : en + 2] = torch.clamp_min(best + lp[t, label[st:en]], _NEG)
        return code

    first_row = torch.full((states + 2,), _NEG, dtype=dtype, device=device)
    start = tensor(np.flatnonzero(graph.start))
    first_row[start + 2] = lp[0, label[start]]
    widths = hi + 1 - lo
    every = int(min(frames, max(1, budget // max(int(widths.max()), 1))))
    rows = [first_row]
    previous, current = first_row.clone(), torch.full_like(first_row, _NEG)
    for t in range(1, frames):
        advance(previous, current, t)
        previous, current = current, previous
        if t % every == 0:
            rows.append(previous.clone())
    state, score = _end_state(previous[2:].cpu().numpy(), graph, frames)
    path = np.empty(frames, dtype=np.int64)
    path[-1] = state
    last = frames - 1
    for index in range(len(rows) - 1, -1, -1):
        first = index * every
        previous, current = rows[index].clone(), torch.full_like(first_row, _NEG)
        codes = []
        for t in range(first + 1, last + 1):
            codes.append(advance(previous, current, t))
            previous, current = current, previous
        host = [c.cpu().numpy() for c in codes] if codes else []
        for t in range(last, first, -1):
            code = int(host[t - first - 1][state - lo[t]])
            state = int(edges[1][first_edge[state] + code - 3]) if code >= 3 else state - code
            path[t - 1] = state
        last = first
    return path, score


def _end_state(last_row: np.ndarray, graph: StateGraph, frames: int) -> tuple[int, float]:
    """The best final state of the last (unpadded) row and its score."""
    ends = np.where(graph.final, last_row, _NEG)
    end_state = int(np.argmax(ends))
    score = float(ends[end_state])
    if score <= _NEG / 2:
        raise _too_few(graph, frames)
    return end_state, score


def _too_few(graph: StateGraph, frames: int) -> AlignmentError:
    return _too_few_tokens(int(graph.token.max()) + 1, int(np.sum(graph.token >= 0)), frames)


def _too_few_tokens(tokens: int, minimum: int, frames: int) -> AlignmentError:
    """``minimum``: frames the ``tokens`` need at the minimum duration."""
    return AlignmentError(
        f"{frames} frames are too few for this transcript: its {tokens} tokens need at "
        f"least {minimum} frames at the minimum duration"
    )


def viterbi_states(
    log_probs: np.ndarray | torch.Tensor,
    graph: StateGraph,
    *,
    max_memory: int | None = None,
    backend: str = "auto",
) -> tuple[np.ndarray, float]:
    """Best state sequence through ``graph`` and its score.

    Args:
        log_probs: Shape ``(T, C)``, float (numpy, or a torch tensor on
            any device); summed in its :func:`compute_dtype`.
        graph: from :func:`state_graph`.
        max_memory: bytes of back-pointers before segments are recomputed.
        backend: one of :data:`BACKENDS`.

    Returns:
        ``(states, score)``: the state of each frame, Shape ``(T,)``, and
        the path's total log-probability.

    Raises:
        AlignmentError: no path fits (fewer frames than the graph needs).

    Examples:
        The label ``2`` is likelier than ``1`` on frame 2 alone, but a token
        lasts at least 2 frames, so the path keeps ``1`` there:

        >>> import numpy as np
        >>> from aligner.duration_viterbi import state_graph, viterbi_states
        >>> graph = state_graph([[1, 2]], min_frames=2)
        >>> probs = np.array([[0.8, 0.1, 0.1],
        ...                   [0.1, 0.8, 0.1],
        ...                   [0.1, 0.3, 0.6],
        ...                   [0.1, 0.1, 0.8],
        ...                   [0.1, 0.1, 0.8]])
        >>> states, score = viterbi_states(np.log(probs), graph)
        >>> graph.label[states].tolist()
        [0, 1, 1, 2, 2]
        >>> round(score, 3)  # 4 log 0.8 + log 0.3
        -2.097
    """
    if backend not in BACKENDS:
        raise AlignmentError(f"backend must be one of {', '.join(BACKENDS)}, got {backend!r}")
    on_torch = backend == "torch"
    frames = int(log_probs.shape[0])
    if frames == 0:
        raise AlignmentError("no frames to align")
    budget = DEFAULT_MAX_MEMORY if max_memory is None else int(max_memory)
    lo, hi = band(graph, frames)
    if np.any(lo > hi):
        raise _too_few(graph, frames)
    if on_torch:
        tensor = log_probs if isinstance(log_probs, torch.Tensor) else torch.from_numpy(np.asarray(log_probs))
        return _torch_states(tensor.detach(), graph, lo, hi, budget)
    if isinstance(log_probs, torch.Tensor):
        log_probs = log_probs.detach().cpu().numpy()
    log_probs = np.ascontiguousarray(log_probs, dtype=compute_dtype(log_probs.dtype))
    widths = hi[1:] + 1 - lo[1:]
    cells = int(widths.sum())
    single = cells <= budget  # every frame's back-pointers fit: one pass, no recomputation
    if single and frames * graph.num_states <= NUMPY_CELLS and not kernels_loaded():
        return _numpy_states(log_probs, graph)
    kernels = load_kernels()

    (to, source, cost, rank), first_edge = graph.edges
    edges = (to, source, cost.astype(log_probs.dtype), rank)  # the costs in the scores' dtype
    reset = _reset_width(edges)
    arrays = (graph.label, graph.skip, graph.loop, graph.start, edges, lo, hi)
    path = np.empty(frames, dtype=np.int64)
    if single:
        offsets = np.zeros(frames, dtype=np.int64)
        np.cumsum(widths, out=offsets[1:])
        codes = np.empty(max(cells, 1), dtype=np.uint8)
        last_row = kernels.forward_codes(log_probs, *arrays, offsets, codes, reset)
        end_state, score = _end_state(last_row[2:], graph, frames)
        kernels.trace(codes, offsets, lo, first_edge, edges[1], 0, frames - 1, end_state, path)
        return path, score
    every = int(min(frames, max(1, budget // max(int(widths.max()), 1))))
    rows = np.empty(((frames - 1) // every + 1, graph.num_states + 2), log_probs.dtype)
    last_row = kernels.forward_checkpoints(log_probs, *arrays, every, rows, reset)
    end_state, score = _end_state(last_row[2:], graph, frames)
    last = frames - 1
    for index in range((frames - 1) // every, -1, -1):
        first = index * every
        end_state = kernels.segment(
            log_probs, graph.label, graph.skip, graph.loop, edges, first_edge, lo, hi,
            rows[index], first, last, end_state, path, reset,
        )  # fmt: skip
        last = first
    return path, score


def duration_align(
    log_probs: torch.Tensor,
    words: Sequence[Sequence[Sequence[int]]],
    input_lengths: torch.Tensor | None = None,
    *,
    blank: int = 0,
    min_frames: int = 2,
    max_frames: int | None = None,
    max_memory: int | None = None,
    gaps: Sequence[Sequence[int] | None] | None = None,
    skip_cost: float | Sequence[float | Sequence[float]] | None = None,
    backend: str = "auto",
) -> tuple[torch.Tensor, torch.Tensor]:
    """Duration-aware forced alignment of a batch.

    Args:
        log_probs: Shape ``(B, T, C)``; summed in float64 when float64,
            in float32 otherwise (:func:`compute_dtype`).
        words: per item, the label ids of each word (a word's tokens are
            never separated by silence).
        input_lengths: valid frames per item, Shape ``(B,)`` (None: all).
        blank: the silence / blank label.
        min_frames: the shortest a token may be, in frames.
        max_frames: the longest a token may be, in frames (None: no limit;
            see :func:`state_graph`).
        max_memory: per-item back-pointer budget in bytes.
        gaps: per item, the labels of its optional runs between words (see
            :func:`state_graph`), or None for the blank.
        skip_cost: make every word optional at this price (see
            :func:`state_graph`): one for all, or per item (a price or one per word).
        backend: one of :data:`BACKENDS`.

    Returns:
        ``(paths, positions)``, both Shape ``(B, T)`` on the CPU: the label
        of each frame (blank for padding, the gap's label for silence) and the target
        position of each frame (its index in the item's flattened tokens;
        -1 for silence and padding).

    Raises:
        AlignmentError: inconsistent input or a transcript too long.
    """
    if log_probs.ndim != 3:
        raise AlignmentError(f"log_probs must have shape (B, T, C), got {tuple(log_probs.shape)}")
    batch, frames, _ = log_probs.shape
    if len(words) != batch:
        raise AlignmentError(f"{len(words)} transcripts for a batch of {batch}")
    lengths = [frames] * batch if input_lengths is None else [int(x) for x in input_lengths.tolist()]
    if backend not in BACKENDS:
        raise AlignmentError(f"backend must be one of {', '.join(BACKENDS)}, got {backend!r}")
    on_torch = backend == "torch"
    dtype = _torch_compute_dtype(log_probs.dtype)
    data = log_probs.detach().to(dtype) if on_torch else log_probs.detach().to("cpu", dtype).numpy()
    paths = np.full((batch, frames), blank, dtype=np.int64)
    positions = np.full((batch, frames), -1, dtype=np.int64)
    for row in range(batch):
        if not 0 < lengths[row] <= frames:
            raise AlignmentError(f"input length {lengths[row]} of item {row} is outside 1..{frames}")
    if gaps is not None and len(gaps) != batch:
        raise AlignmentError(f"{len(gaps)} gap lists for a batch of {batch}")
    plain = not on_torch and skip_cost is None and max_frames is None

    def graph_of(row: int) -> StateGraph:
        return state_graph(
            words[row],
            blank=blank,
            min_frames=min_frames,
            max_frames=max_frames,
            gaps=None if gaps is None else gaps[row],
            skip_cost=skip_cost if skip_cost is None or isinstance(skip_cost, (int, float)) else skip_cost[row],
        )

    specs: list[_Chain | StateGraph] = [
        _chain(words[row], blank, min_frames, None if gaps is None else gaps[row]) if plain else graph_of(row)
        for row in range(batch)
    ]
    sizes = [spec.size if isinstance(spec, _Chain) else spec.num_states for spec in specs]
    if not on_torch and sum(lengths[row] * sizes[row] for row in range(batch)) > NUMPY_CELLS:
        load_kernels()  # a batch or a long item: the compiled kernels, whatever the size of each item
    compiled = kernels_loaded()
    budget = DEFAULT_MAX_MEMORY if max_memory is None else int(max_memory)

    def decode(row: int) -> None:  # into the row's part of paths and positions
        item, spec, n = data[row, : lengths[row]], specs[row], lengths[row]
        if isinstance(spec, _Chain):
            if compiled and isinstance(item, np.ndarray) and n * spec.size <= budget:
                _chain_decode(item, spec, min_frames, paths[row, :n], positions[row, :n])  # compiled, no GIL
                return
            spec = _chain_graph(spec, min_frames)
        states = viterbi_states(item, spec, max_memory=max_memory, backend="torch" if on_torch else "numba")[0]
        paths[row, :n], positions[row, :n] = spec.label[states], spec.token[states]

    def decode_share(rows: np.ndarray) -> None:
        for row in rows.tolist():
            decode(row)

    # the numba kernels release the GIL: shares of items run in parallel
    workers = 1 if on_torch else max(1, min(batch, torch.get_num_threads()))
    run_in_shares([lengths[row] * sizes[row] for row in range(batch)], workers, decode_share)
    return torch.from_numpy(paths), torch.from_numpy(positions)
