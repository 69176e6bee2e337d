"""Vocal-tract-length normalization chosen by likelihood (``--vtln``).

A speaker's formants sit higher or lower than the voices a model was
trained on; a model with a log-mel front end can undo some of that by
warping each frame's spectrum (``f -> f * warp``,
:func:`~aligner.models.frontend.warp_spectrum`) before the network. The
warp is chosen as an HMM aligner chooses it: the one under which the
forced alignment of the speaker's own audio is most likely, measured as
the log-probability per frame of the Viterbi path (the decoder's own
objective, :meth:`aligner.Aligner.path_log_likelihoods`).

The search costs eight network passes (and Viterbi decodings) over the
audio it looks at (:func:`search_warps`): the six warps of
:data:`FIRST_ROUND`, then the two halfway to the neighbours of the best of
them (inside [:data:`MIN_VTLN_WARP`, :data:`MAX_VTLN_WARP`]); the best of
all is chosen. A grid, not a smooth search: the score is bumpy in the warp
(a warped spectrum is also an interpolated, slightly smoothed one), so a
parabola through three points misses as often as it finds.
``aligner align --vtln`` searches each file on its own audio and keeps the
emissions of the chosen warp (eight passes in all);
``align-corpus --vtln`` searches each speaker (first-level folder) on an
excerpt of at most :data:`EXCERPT_SECONDS` of its audio, then aligns all
its files with the chosen warp in one pass.

A group with less than :data:`MIN_VTLN_SECONDS` of audio is not searched:
its audio is too little for its likelihood to say more about the speaker
than about the sentence. It keeps warp 1 and its :class:`WarpChoice` says
why (:attr:`WarpChoice.note`).
"""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence
from dataclasses import dataclass

__all__ = [
    "EXCERPT_SECONDS",
    "FIRST_ROUND",
    "MAX_VTLN_WARP",
    "MIN_VTLN_SECONDS",
    "MIN_VTLN_WARP",
    "WarpChoice",
    "excerpt",
    "search_warps",
]

#: The range of warps the search may choose (symmetric in log-warp).
MIN_VTLN_WARP, MAX_VTLN_WARP = 0.80, 1.25
#: The warps every search evaluates first.
FIRST_ROUND = (0.84, 0.92, 1.0, 1.08, 1.16, 1.24)
#: The second round: this far on each side of the best of the first.
_HALF_STEP = 0.04
#: The least audio (seconds) a group needs for its warp to be searched.
MIN_VTLN_SECONDS = 2.0
#: ``align-corpus --vtln``: the most audio (seconds) of a speaker searched on.
EXCERPT_SECONDS = 20.0
#: Warps closer than this count as the same (the second round is skipped).
_SAME_WARP = 0.005

#: ``score(rows, warps)``: per row (an item index), with that row's warp,
#: ``(summed log-probability of its forced path, frames)``.
Scorer = Callable[[Sequence[int], Sequence[float]], Sequence[tuple[float, int]]]


@dataclass(frozen=True)
class WarpChoice:
    """The warp chosen for one group of items (a file or a speaker).

    Attributes:
        warp: the chosen warp (1.0 when not searched).
        log_likelihood: log-probability per frame of the forced paths at
            ``warp`` (NaN when not searched).
        identity: the same at warp 1 (NaN when not searched).
        tried: ``(warp, log-probability per frame)`` of every warp
            evaluated, in order.
        seconds: audio the search looked at (or, when not searched, had).
        note: why it was not searched (empty when it was).
    """

    warp: float
    log_likelihood: float
    identity: float
    tried: tuple[tuple[float, float], ...]
    seconds: float
    note: str = ""

    @property
    def searched(self) -> bool:
        return not self.note

    def describe(self) -> str:
        """One line for people."""
        if not self.searched:
            return f"warp 1 ({self.note})"
        return (
            f"warp {self.warp:.3f} chosen on {self.seconds:.1f} s of audio: log-probability per frame "
            f"{self.identity:.4f} at warp 1 -> {self.log_likelihood:.4f}"
        )


def too_little(seconds: float, min_seconds: float = MIN_VTLN_SECONDS) -> WarpChoice:
    """The choice of a group with ``seconds`` of audio, too little to search."""
    return WarpChoice(
        1.0,
        math.nan,
        math.nan,
        (),
        seconds,
        f"{seconds:.1f} s of audio is too little to choose a warp by likelihood "
        f"(at least {min_seconds:g} s); not warped",
    )


def refinements(tried: dict[float, float]) -> list[float]:
    """The warps of the second round: half a step of :data:`FIRST_ROUND`
    on each side of the best warp so far, inside the bounds and not tried.

    Examples:
        >>> refinements({0.84: -2.0, 0.92: -1.9, 1.0: -1.8, 1.08: -1.85, 1.16: -2.1, 1.24: -2.2})
        [0.96, 1.04]
        >>> refinements({0.84: -1.7, 0.92: -1.9, 1.0: -1.8, 1.08: -1.85, 1.16: -2.1, 1.24: -2.2})
        [0.8, 0.88]
    """
    best = _best(tried)
    return [
        warp
        for warp in (round(best - _HALF_STEP, 3), round(best + _HALF_STEP, 3))
        if MIN_VTLN_WARP <= warp <= MAX_VTLN_WARP and all(abs(warp - w) >= _SAME_WARP for w in tried)
    ]


def _best(tried: dict[float, float]) -> float:
    """The warp of the highest score; a tie goes to the warp nearest 1."""
    return max(tried, key=lambda w: (tried[w], -abs(math.log(w))))


def search_warps(
    score: Scorer,
    seconds: Sequence[float],
    groups: Sequence[Sequence[int]],
    min_seconds: float = MIN_VTLN_SECONDS,
) -> list[WarpChoice]:
    """The likeliest warp of each group of items.

    Args:
        score: scores rows at warps (:data:`Scorer`); called once per warp
            of :data:`FIRST_ROUND` with every row searched, then once with
            each side of the groups' second-round warps (:func:`refinements`).
        seconds: audio seconds of each row.
        groups: the rows of each group (a file, or a speaker's excerpt);
            a group's score is its rows' summed log-probability over their
            summed frames.
        min_seconds: a group with less audio is not searched
            (:func:`too_little`).

    Returns:
        One :class:`WarpChoice` per group, in order.
    """
    audio = [math.fsum(seconds[row] for row in rows) for rows in groups]
    active = [g for g, rows in enumerate(groups) if rows and audio[g] >= min_seconds]
    tried: dict[int, dict[float, float]] = {g: {} for g in active}

    def run(plan: dict[int, float]) -> None:
        rows = [row for g in plan for row in groups[g]]
        warps = [plan[g] for g in plan for _ in groups[g]]
        if not rows:
            return
        results = iter(score(rows, warps))
        for g, warp in plan.items():
            total, frames = 0.0, 0
            for _ in groups[g]:
                summed, count = next(results)
                total, frames = total + summed, frames + count
            tried[g][warp] = total / max(frames, 1)

    for warp in FIRST_ROUND:
        run(dict.fromkeys(active, warp))
    second = {g: refinements(tried[g]) for g in active}
    for side in (0, 1):
        run({g: warps[side] for g, warps in second.items() if len(warps) > side})

    choices = []
    for g in range(len(groups)):
        if g not in tried:
            choices.append(too_little(audio[g], min_seconds))
            continue
        scores = tried[g]
        best = _best(scores)
        choices.append(WarpChoice(best, scores[best], scores[1.0], tuple(scores.items()), audio[g]))
    return choices


def excerpt(seconds: Sequence[float], limit: float = EXCERPT_SECONDS) -> list[int]:
    """The first rows (in order) whose audio adds up to ``limit`` seconds:
    each row while the total before it is under ``limit``.

    Examples:
        >>> excerpt([8.0, 8.0, 8.0, 8.0])
        [0, 1, 2]
    """
    chosen, total = [], 0.0
    for row, length in enumerate(seconds):
        if total >= limit:
            break
        chosen.append(row)
        total += length
    return chosen
