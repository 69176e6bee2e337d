"""Compare an alignment with a reference (e.g. a human TextGrid).

:func:`boundary_differences` matches the words of the two alignments in
order by their normalized text and measures how far each matched word's
start and end lie from the reference; :func:`plot_comparison` stacks both
tiers on one time axis above a panel of the differences in milliseconds.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from difflib import SequenceMatcher
from typing import TYPE_CHECKING

import numpy as np

from aligner.errors import AlignerError
from aligner.readers import normalize_word
from aligner.records import Alignment

from .alignment import TierArtists, _finish_time_axis, draw_tier, time_window

if TYPE_CHECKING:  # pragma: no cover
    from matplotlib.axes import Axes
    from matplotlib.container import StemContainer
    from matplotlib.figure import Figure, SubFigure

__all__ = ["BoundaryComparison", "ComparisonFigure", "boundary_differences", "plot_comparison"]

#: Tolerances (ms) reported by :meth:`BoundaryComparison.summary`.
TOLERANCES_MS: tuple[float, ...] = (20.0, 50.0)


@dataclass(frozen=True)
class BoundaryComparison:
    """Word boundary differences between an alignment and a reference.

    Differences are ``alignment - reference`` in milliseconds: positive
    when the alignment puts the boundary later.

    Attributes:
        words: the matched words (the alignment's spelling), in order.
        alignment_index, reference_index: their indices in
            ``alignment.words`` and ``reference.words``.
        reference_starts, reference_ends: the reference times in seconds.
        start_ms, end_ms: the start and end differences in ms.
        unmatched_alignment: words of the alignment not matched (including
            words it could not align).
        unmatched_reference: words of the reference not matched.
    """

    words: tuple[str, ...]
    alignment_index: tuple[int, ...]
    reference_index: tuple[int, ...]
    reference_starts: tuple[float, ...]
    reference_ends: tuple[float, ...]
    start_ms: tuple[float, ...]
    end_ms: tuple[float, ...]
    unmatched_alignment: int
    unmatched_reference: int

    @property
    def count(self) -> int:
        """Number of matched words (each gives two boundaries)."""
        return len(self.words)

    @property
    def differences_ms(self) -> np.ndarray:
        """All boundary differences: the starts, then the ends. Shape: (2 * count,)."""
        return np.array(self.start_ms + self.end_ms, dtype=np.float64)

    @property
    def mae_ms(self) -> float:
        """Mean absolute boundary difference (NaN with no match)."""
        d = self.differences_ms
        return float(np.abs(d).mean()) if d.size else math.nan

    @property
    def median_ms(self) -> float:
        """Median absolute boundary difference (NaN with no match)."""
        d = self.differences_ms
        return float(np.median(np.abs(d))) if d.size else math.nan

    def within(self, tolerance_ms: float) -> float:
        """Percentage of boundaries within ``tolerance_ms`` (inclusive; NaN with no match)."""
        d = self.differences_ms
        return float((np.abs(d) <= tolerance_ms + 1e-9).mean() * 100) if d.size else math.nan

    @property
    def within_20ms(self) -> float:
        return self.within(20.0)

    @property
    def within_50ms(self) -> float:
        return self.within(50.0)

    def summary(self) -> str:
        """One line: ``"12 words: MAE 23.1 ms, median 15.0 ms, 61% ≤ 20 ms, 90% ≤ 50 ms"``."""
        if not self.count:
            return f"no word matched ({self.unmatched_alignment} vs {self.unmatched_reference} words)"
        within = ", ".join(f"{self.within(t):.0f}% ≤ {t:g} ms" for t in TOLERANCES_MS)
        text = f"{self.count} words: MAE {self.mae_ms:.1f} ms, median {self.median_ms:.1f} ms, {within}"
        if self.unmatched_alignment or self.unmatched_reference:
            text += f" ({self.unmatched_alignment} / {self.unmatched_reference} unmatched)"
        return text


def _key(text: str) -> str:
    key = normalize_word(text)
    return key if key else text.strip().casefold()


def boundary_differences(alignment: Alignment, reference: Alignment) -> BoundaryComparison:
    """Start and end differences of the words the two alignments share.

    Words are matched in order (longest common subsequence blocks of
    :class:`difflib.SequenceMatcher`) by their text reduced with
    :func:`aligner.readers.normalize_word` (case, punctuation and
    typographic apostrophes ignored), so insertions and deletions on either
    side only drop those words. Words of ``alignment`` that the model could
    not align (``aligned=False``) are never counted as matched.

    Returns:
        :class:`BoundaryComparison`; its statistics are NaN when no word
        matched.
    """
    hyp = [_key(w.text) for w in alignment.words]
    ref = [_key(w.text) for w in reference.words]
    pairs = []
    for block in SequenceMatcher(None, hyp, ref, autojunk=False).get_matching_blocks():
        for k in range(block.size):
            i, j = block.a + k, block.b + k
            if alignment.words[i].aligned:
                pairs.append((i, j))
    a_words, r_words = alignment.words, reference.words
    return BoundaryComparison(
        words=tuple(a_words[i].text for i, _ in pairs),
        alignment_index=tuple(i for i, _ in pairs),
        reference_index=tuple(j for _, j in pairs),
        reference_starts=tuple(float(r_words[j].start) for _, j in pairs),
        reference_ends=tuple(float(r_words[j].end) for _, j in pairs),
        start_ms=tuple((a_words[i].start - r_words[j].start) * 1000.0 for i, j in pairs),
        end_ms=tuple((a_words[i].end - r_words[j].end) * 1000.0 for i, j in pairs),
        unmatched_alignment=len(a_words) - len(pairs),
        unmatched_reference=len(r_words) - len(pairs),
    )


@dataclass(frozen=True)
class ComparisonFigure:
    """The axes and artists of :func:`plot_comparison`.

    Attributes:
        figure: the figure (or subfigure) drawn into.
        alignment_ax, reference_ax, differences_ax: the panels, top to bottom.
        alignment_tier, reference_tier: what :func:`viz.alignment.draw_tier`
            drew in the two tier panels.
        starts, ends: stems of the start and end differences (x: reference
            time in s, y: difference in ms) for the boundaries in the window,
            or None when there are none.
        comparison: the :class:`BoundaryComparison` of the whole recordings.
        window: the ``(start, end)`` shown, in seconds.
    """

    figure: Figure | SubFigure
    alignment_ax: Axes
    reference_ax: Axes
    differences_ax: Axes
    alignment_tier: TierArtists
    reference_tier: TierArtists
    starts: StemContainer | None
    ends: StemContainer | None
    comparison: BoundaryComparison
    window: tuple[float, float]


def _tier(alignment: Alignment, tier: str) -> tuple[list[tuple[float, float, str]], str]:
    if tier == "words":
        return [(w.start, w.end, w.text) for w in alignment.words], "words"
    return [(c.start, c.end, c.label) for c in alignment.chars], "phones" if alignment.phonetic else "chars"


def _stems(
    ax: Axes, times: list[float], values: list[float], color: str, marker: str, label: str
) -> StemContainer | None:
    if not times:
        return None
    stems = ax.stem(times, values, linefmt="-", markerfmt=marker, basefmt=" ", label=label)
    stems.markerline.set_color(color)
    stems.stemlines.set_color(color)
    stems.markerline.set_markersize(5)
    return stems


def plot_comparison(
    alignment: Alignment,
    reference: Alignment,
    *,
    tier: str = "words",
    start: float | None = None,
    end: float | None = None,
    fig: Figure | SubFigure | None = None,
    names: tuple[str, str] = ("alignment", "reference"),
) -> ComparisonFigure:
    """Both alignments' tiers stacked on one time axis, with the word
    boundary differences below them.

    The top panel is ``alignment``'s tier, the middle one ``reference``'s,
    and the bottom one a stem plot of the start (circles) and end (squares)
    differences in ms at the reference boundary times, with the ±20 ms band
    shaded. The title is :meth:`BoundaryComparison.summary` of the whole
    recordings. Differences are always measured on words; ``tier`` only
    chooses what the two tier panels show.

    Args:
        alignment, reference: the alignments (e.g. the aligner's output and
            :func:`aligner.readers.read_textgrid` of a human TextGrid).
        tier: ``"words"`` or ``"chars"`` (``"phones"`` is the same).
        start, end: time window in seconds (default: 0 to the longer
            duration).
        fig: an empty figure or subfigure (None: a new pyplot figure).
        names: the two tiers' names in the figure.

    Raises:
        AlignerError: an unknown ``tier``.
        AlignmentError: a bad window.
    """
    if tier not in ("words", "chars", "phones"):
        raise AlignerError(f"tier must be 'words', 'chars' or 'phones', not {tier!r}")
    tier = "words" if tier == "words" else "chars"
    duration = max(alignment.duration, reference.duration)
    start, end = time_window(start, end, duration)
    comparison = boundary_differences(alignment, reference)
    if fig is None:
        import matplotlib.pyplot as plt

        fig = plt.figure(figsize=(12, 4.5), layout="constrained")
    top, middle, bottom = fig.subplots(
        3, 1, sharex=True, gridspec_kw={"height_ratios": [0.5, 0.5, 1.6], "hspace": 0.05}
    )
    tiers = []
    for ax, item, name in ((top, alignment, names[0]), (middle, reference, names[1])):
        intervals, tier_name = _tier(item, tier)
        scores = [w.score for w in item.words] if tier == "words" else None
        aligned = [w.aligned for w in item.words] if tier == "words" else None
        tiers.append(
            draw_tier(ax, intervals, name=f"{name}\n{tier_name}", start=start, end=end, scores=scores, aligned=aligned)
        )

    start_points = [(t, d) for t, d in zip(comparison.reference_starts, comparison.start_ms) if start <= t <= end]
    end_points = [(t, d) for t, d in zip(comparison.reference_ends, comparison.end_ms) if start <= t <= end]
    bottom.axhspan(-TOLERANCES_MS[0], TOLERANCES_MS[0], color="0.9", zorder=0, label=f"±{TOLERANCES_MS[0]:g} ms")
    bottom.axhline(0, color="0.4", linewidth=0.8)
    starts = _stems(bottom, [t for t, _ in start_points], [d for _, d in start_points], "tab:blue", "o", "word start")
    ends = _stems(bottom, [t for t, _ in end_points], [d for _, d in end_points], "tab:orange", "s", "word end")
    shown = [d for _, d in start_points + end_points]
    limit = max([abs(d) for d in shown] + [TOLERANCES_MS[1]]) * 1.15
    bottom.set_ylim(-limit, limit)
    bottom.set_ylabel(f"{names[0]} − {names[1]}\n(ms)")
    bottom.legend(loc="upper right", fontsize="small", ncols=3)
    _finish_time_axis(bottom, start, end)
    fig.suptitle(comparison.summary())
    return ComparisonFigure(fig, top, middle, bottom, tiers[0], tiers[1], starts, ends, comparison, (start, end))
