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
:func:`duration_align` takes ``(B, T, C)`` with valid lengths. Memory: the
back-pointers take ``T x S`` bytes (``S`` states, about ``d`` per token
plus one per word); above ``max_memory`` the forward pass keeps only every
``K``-th score row and recomputes the back-pointers segment by segment
(the path is the same).
"""

from __future__ import annotations

from collections.abc import Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass

import numpy as np
import torch
from numba import njit

from .errors import AlignmentError

__all__ = ["StateGraph", "duration_align", "state_graph", "viterbi_states"]

_NEG = -1e30
#: Default back-pointer budget per item (bytes) before segments are recomputed.
DEFAULT_MAX_MEMORY = 256 * 2**20


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

    @property
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
    gaps: Sequence[int] | None = None,
    skip_cost: float | Sequence[float] | None = None,
) -> StateGraph:
    """The graph for ``words`` (label ids per word, empty words skipped):
    optional silence before, between and after the words, no silence
    inside a word, every token at least ``min_frames`` frames.

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
    count = sum(1 for word in words if word)
    if gaps is not None and len(gaps) != count + 1:
        raise AlignmentError(f"{len(gaps)} gap labels for {count} words (need {count + 1})")
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
            for copy in range(min_frames):
                repeat = copy == min_frames - 1
                if k == 0 and copy == 0:
                    state = add(lab, silence, last_token_state, repeat, position)
                    if last_token_state < 0:
                        starts.append(state)
                else:
                    state = add(lab, previous, -1, repeat, position)
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
    )


@njit(cache=True, nogil=True)
def _step(previous, current, choice, frame, label, skip, loop, jump, jump_cost):  # pragma: no cover - numba
    """One frame with back-pointers: 0 = stay, 1 = from ``s - 1``, 2 = from
    ``s - 2``, 3 = from ``jump[s]``."""
    for s in range(label.shape[0]):
        best = _NEG
        pick = 0
        if loop[s]:
            best = previous[s]
        if s >= 1 and previous[s - 1] > best:
            best = previous[s - 1]
            pick = 1
        if skip[s] and previous[s - 2] > best:
            best = previous[s - 2]
            pick = 2
        if jump[s] >= 0 and previous[jump[s]] - jump_cost[s] > best:
            best = previous[jump[s]] - jump_cost[s]
            pick = 3
        current[s] = best + frame[label[s]] if best > _NEG / 2 else _NEG
        choice[s] = pick


@njit(cache=True, nogil=True)
def _forward(log_probs, label, skip, loop, start, every, checkpoints, jump, jump_cost):  # pragma: no cover
    """Score rows; keeps row ``t`` in ``checkpoints[t // every]`` when ``t % every == 0``.
    (The scores only: the back-pointers are recomputed segment by segment.)"""
    frames = log_probs.shape[0]
    states = label.shape[0]
    previous = np.full(states, _NEG)
    for s in range(states):
        if start[s]:
            previous[s] = log_probs[0, label[s]]
    checkpoints[0, :] = previous
    current = np.empty(states)
    for t in range(1, frames):
        frame = log_probs[t]
        for s in range(states):
            best = previous[s] if loop[s] else _NEG
            if s >= 1 and previous[s - 1] > best:
                best = previous[s - 1]
            if skip[s] and previous[s - 2] > best:
                best = previous[s - 2]
            if jump[s] >= 0 and previous[jump[s]] - jump_cost[s] > best:
                best = previous[jump[s]] - jump_cost[s]
            current[s] = best + frame[label[s]] if best > _NEG / 2 else _NEG
        previous, current = current, previous
        if t % every == 0:
            checkpoints[t // every, :] = previous
    return previous


@njit(cache=True, nogil=True)
def _backtrack_segment(
    log_probs, label, skip, loop, first, row, last, end_state, path, jump, jump_cost
):  # pragma: no cover
    """Recompute frames ``first + 1 .. last`` from the score row at ``first``
    and write the states of frames ``first .. last`` (ending in ``end_state``)."""
    count = last - first
    states = label.shape[0]
    choices = np.empty((max(count, 1), states), dtype=np.int8)
    previous = row.copy()
    current = np.empty(states)
    for k in range(count):
        _step(previous, current, choices[k], log_probs[first + 1 + k], label, skip, loop, jump, jump_cost)
        previous, current = current, previous
    state = end_state
    path[last] = state
    for k in range(count - 1, -1, -1):
        state = _back(state, choices[k, state], jump)
        path[first + k] = state
    return state


@njit(cache=True, nogil=True)
def _back(state, choice, jump):  # pragma: no cover - numba
    """The predecessor a back-pointer names: 0 stay, 1 ``s - 1``, 2 ``s - 2``, 3 ``jump[s]``."""
    return jump[state] if choice == 3 else state - choice


@njit(cache=True, nogil=True)
def _forward_choices(log_probs, label, skip, loop, start, choices, jump, jump_cost):  # pragma: no cover
    """Score rows with every frame's back-pointers in ``choices`` (``(T - 1, S)``); the last row."""
    states = label.shape[0]
    previous = np.full(states, _NEG)
    for s in range(states):
        if start[s]:
            previous[s] = log_probs[0, label[s]]
    current = np.empty(states)
    for t in range(1, log_probs.shape[0]):
        _step(previous, current, choices[t - 1], log_probs[t], label, skip, loop, jump, jump_cost)
        previous, current = current, previous
    return previous


@njit(cache=True, nogil=True)
def _trace(choices, end_state, path, jump):  # pragma: no cover - numba
    state = end_state
    path[path.shape[0] - 1] = state
    for t in range(path.shape[0] - 2, -1, -1):
        state = _back(state, choices[t, state], jump)
        path[t] = state


def viterbi_states(
    log_probs: np.ndarray, graph: StateGraph, *, max_memory: int | None = None
) -> tuple[np.ndarray, float]:
    """Best state sequence through ``graph`` and its score.

    Args:
        log_probs: Shape ``(T, C)``, float.
        graph: from :func:`state_graph`.
        max_memory: bytes of back-pointers before segments are recomputed.

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
    log_probs = np.ascontiguousarray(log_probs, dtype=np.float64)
    frames, states = log_probs.shape[0], graph.num_states
    if frames == 0:
        raise AlignmentError("no frames to align")
    budget = DEFAULT_MAX_MEMORY if max_memory is None else int(max_memory)
    every = int(min(frames, max(1, budget // max(states, 1))))
    skip = graph.skip
    jump, jump_cost = graph.jumps
    single = frames * states <= budget  # all back-pointers fit: one pass, no recomputation
    if single:
        choices = np.empty((max(frames - 1, 1), states), dtype=np.int8)
        last_row = _forward_choices(log_probs, graph.label, skip, graph.loop, graph.start, choices, jump, jump_cost)
    else:
        checkpoints = np.empty(((frames - 1) // every + 1, states))
        last_row = _forward(log_probs, graph.label, skip, graph.loop, graph.start, every, checkpoints, jump, jump_cost)
    ends = np.where(graph.final, last_row, _NEG)
    end_state = int(np.argmax(ends))
    score = float(ends[end_state])
    if score <= _NEG / 2:
        tokens = int(graph.token.max()) + 1
        minimum = int(np.sum(graph.token >= 0))  # min_frames states per token
        raise AlignmentError(
            f"{frames} frames are too few for this transcript: its {tokens} tokens need at "
            f"least {minimum} frames at the minimum duration"
        )
    path = np.empty(frames, dtype=np.int64)
    if single:
        _trace(choices, end_state, path, jump)
        return path, score
    last = frames - 1
    for index in range((frames - 1) // every, -1, -1):
        first = index * every
        end_state = _backtrack_segment(
            log_probs, graph.label, skip, graph.loop, first, checkpoints[index], last, end_state, path, jump, jump_cost
        )
        last = first
    return path, score


def duration_align(
    log_probs: torch.Tensor,
    words: Sequence[Sequence[Sequence[int]]],
    input_lengths: torch.Tensor | None = None,
    *,
    blank: int = 0,
    min_frames: int = 2,
    max_memory: int | None = None,
    gaps: Sequence[Sequence[int] | None] | None = None,
    skip_cost: float | Sequence[float | Sequence[float]] | None = None,
) -> tuple[torch.Tensor, torch.Tensor]:
    """Duration-aware forced alignment of a batch.

    Args:
        log_probs: Shape ``(B, T, C)``.
        words: per item, the label ids of each word (a word's tokens are
            never separated by silence).
        input_lengths: valid frames per item, Shape ``(B,)`` (None: all).
        blank: the silence / blank label.
        min_frames: the shortest a token may be, in frames.
        max_memory: per-item back-pointer budget in bytes.
        gaps: per item, the labels of its optional runs between words (see
            :func:`state_graph`), or None for the blank.
        skip_cost: make every word optional at this price (see
            :func:`state_graph`): one for all, or per item (a price or one per word).

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
    data = log_probs.detach().to("cpu", torch.float64).numpy()
    paths = torch.full((batch, frames), blank, dtype=torch.int64)
    positions = torch.full((batch, frames), -1, dtype=torch.int64)
    for row in range(batch):
        if not 0 < lengths[row] <= frames:
            raise AlignmentError(f"input length {lengths[row]} of item {row} is outside 1..{frames}")
    if gaps is not None and len(gaps) != batch:
        raise AlignmentError(f"{len(gaps)} gap lists for a batch of {batch}")
    graphs = [
        state_graph(
            words[row],
            blank=blank,
            min_frames=min_frames,
            gaps=None if gaps is None else gaps[row],
            skip_cost=skip_cost if skip_cost is None or isinstance(skip_cost, (int, float)) else skip_cost[row],
        )
        for row in range(batch)
    ]

    def decode(row: int) -> np.ndarray:
        return viterbi_states(data[row, : lengths[row]], graphs[row], max_memory=max_memory)[0]

    workers = max(1, min(batch, torch.get_num_threads()))
    if workers > 1:  # the numba kernels release the GIL: items run in parallel
        with ThreadPoolExecutor(max_workers=workers, thread_name_prefix="aligner-viterbi") as pool:
            decoded = list(pool.map(decode, range(batch)))
    else:
        decoded = [decode(row) for row in range(batch)]
    for row, states in enumerate(decoded):
        paths[row, : lengths[row]] = torch.from_numpy(graphs[row].label[states])
        positions[row, : lengths[row]] = torch.from_numpy(graphs[row].token[states])
    return paths, positions
