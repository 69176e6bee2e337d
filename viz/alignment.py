"""Praat-like figures of an :class:`~aligner.records.Alignment`.

:func:`plot_alignment` draws waveform, spectrogram and the word and
character/phone tiers on one time axis; :func:`plot_confidence` draws the
word scores as bars. :func:`draw_tier` draws one interval tier into an axes
and is shared with :mod:`viz.compare`.

Times are seconds, as everywhere in the package (see
:mod:`aligner.records`). Functions never call ``plt.show()`` and never
change rcParams; they return the artists they made.
"""

from __future__ import annotations

import math
import sys
from collections.abc import Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING

import numpy as np

from aligner.errors import AlignerError, AlignmentError
from aligner.records import Alignment

if TYPE_CHECKING:  # pragma: no cover
    import numpy.typing as npt
    import torch
    from matplotlib.axes import Axes
    from matplotlib.collections import LineCollection, PolyCollection, QuadMesh
    from matplotlib.container import BarContainer
    from matplotlib.figure import Figure, SubFigure
    from matplotlib.lines import Line2D
    from matplotlib.patches import Patch
    from matplotlib.text import Text

__all__ = [
    "AlignmentFigure",
    "ConfidencePlot",
    "TierArtists",
    "draw_tier",
    "plot_alignment",
    "plot_confidence",
    "time_window",
]

#: Colour of interval boundaries (Praat draws them blue).
BOUNDARY_COLOR = "#1f4fbf"
#: Colormap for word scores: red (0) to green (1).
SCORE_CMAP = "RdYlGn"
#: Beyond this many samples the waveform is drawn as a min/max envelope.
MAX_WAVEFORM_POINTS = 100_000
#: The spectrogram never has more STFT frames than this (the hop grows).
MAX_SPECTROGRAM_FRAMES = 3000

_TOLERANCE = 1e-9


# -------------------------------------------------------------------- window


def time_window(start: float | None, end: float | None, duration: float) -> tuple[float, float]:
    """The time window ``(start, end)`` a figure shows, in seconds.

    None means the beginning (0) or the end (``duration``) of the recording.

    Raises:
        AlignmentError: a bound is not a finite number, or ``start >= end``.
    """
    start = 0.0 if start is None else start
    end = float(duration) if end is None else end
    for name, value in (("start", start), ("end", end)):
        if (
            isinstance(value, bool)
            or not isinstance(value, (int, float, np.floating, np.integer))
            or not math.isfinite(value)
        ):
            raise AlignmentError(f"plot window: {name} must be a finite number of seconds, not {value!r}")
    if start >= end:
        raise AlignmentError(f"plot window: start ({start:g} s) must be before end ({end:g} s)")
    return float(start), float(end)


def _boundaries(intervals: Sequence[tuple[float, float, str]], start: float, end: float) -> list[float]:
    """Sorted distinct interval edges that lie within ``[start, end]``."""
    times: list[float] = []
    for t in sorted({t for s, e, _ in intervals for t in (s, e)}):
        if start - _TOLERANCE <= t <= end + _TOLERANCE and (not times or t - times[-1] > _TOLERANCE):
            times.append(t)
    return times


# ---------------------------------------------------------------------- tiers


@dataclass(frozen=True)
class TierArtists:
    """What :func:`draw_tier` drew.

    Attributes:
        labels: one centred text per drawn interval, in time order.
        boundaries: the vertical boundary lines (one collection).
        boundary_times: their times in seconds, ascending.
        patches: background shading of intervals (score colours,
            hatching of unaligned words), possibly empty.
    """

    labels: tuple[Text, ...]
    boundaries: LineCollection
    boundary_times: tuple[float, ...]
    patches: tuple[Patch, ...]


def draw_tier(
    ax: Axes,
    intervals: Sequence[tuple[float, float, str]],
    *,
    name: str = "",
    start: float | None = None,
    end: float | None = None,
    scores: Sequence[float] | None = None,
    aligned: Sequence[bool] | None = None,
    cmap: str = SCORE_CMAP,
    fontsize: float | None = None,
    color: str = BOUNDARY_COLOR,
) -> TierArtists:
    """Draw an interval tier into ``ax`` the way Praat does.

    Only intervals overlapping the window are drawn. Each gets its label
    centred in its visible part, clipped to the interval, and a boundary
    line at each edge inside the window. ``ax`` gets y-limits ``(0, 1)``, no
    y ticks, the tier ``name`` as y label and x-limits ``(start, end)``.

    Args:
        ax: the axes of the tier.
        intervals: ``(start, end, label)`` in seconds (gaps left out).
        name: the tier name shown on the left.
        start, end: the window (None: from the first / to the last interval).
        scores: a score in ``[0, 1]`` per interval; finite ones shade the
            interval with ``cmap`` (None: no shading).
        aligned: per interval, False hatches it grey (a word the model
            could not align).
        cmap: colormap of the scores.
        fontsize: label font size (default: rcParams).
        color: boundary colour.
    """
    import matplotlib as mpl
    from matplotlib.transforms import Bbox, TransformedBbox

    intervals = [(float(s), float(e), str(label)) for s, e, label in intervals]
    if scores is not None and len(scores) != len(intervals):
        raise AlignmentError(f"draw_tier: {len(scores)} scores for {len(intervals)} intervals")
    if aligned is not None and len(aligned) != len(intervals):
        raise AlignmentError(f"draw_tier: {len(aligned)} aligned flags for {len(intervals)} intervals")
    if start is None:
        start = min((s for s, _, _ in intervals), default=0.0)
    if end is None:
        end = max((e for _, e, _ in intervals), default=start + 1.0)
    start, end = time_window(start, end, end)
    colormap = mpl.colormaps[cmap]

    keep = [k for k, (s, e, _) in enumerate(intervals) if (s < end and e > start) or (s == e and start <= s <= end)]
    shown = [intervals[k] for k in keep]
    patches = []
    texts = []
    blend = ax.get_xaxis_transform()  # x in data, y in axes coordinates
    for k, (s, e, label) in zip(keep, shown):
        if aligned is not None and not aligned[k]:
            patches.append(ax.axvspan(s, e, facecolor="0.85", edgecolor="0.5", hatch="///", linewidth=0, zorder=0))
        elif scores is not None and math.isfinite(scores[k]):
            value = min(max(float(scores[k]), 0.0), 1.0)
            patches.append(ax.axvspan(s, e, facecolor=colormap(value), alpha=0.35, linewidth=0, zorder=0))
        middle = (max(s, start) + min(e, end)) / 2
        text = ax.text(middle, 0.5, label, ha="center", va="center", fontsize=fontsize, transform=blend, clip_on=True)
        text.set_clip_box(TransformedBbox(Bbox.from_extents(s, 0.0, e, 1.0), blend))
        texts.append(text)
    times = _boundaries(shown, start, end)
    lines = ax.vlines(times, 0, 1, transform=blend, colors=color, linewidths=1.0)
    ax.set_ylim(0, 1)
    ax.set_yticks([])
    ax.set_ylabel(name, rotation=0, ha="right", va="center")
    ax.set_xlim(start, end)
    return TierArtists(tuple(texts), lines, tuple(times), tuple(patches))


# ------------------------------------------------------------------ waveform


def _mono(waveform: npt.ArrayLike | torch.Tensor, what: str = "waveform") -> np.ndarray:
    """Shape (samples,) or (samples, channels) → float64 (samples,)."""
    torch = sys.modules.get("torch")  # a tensor exists only once torch is imported: no import for numpy input
    if torch is not None and isinstance(waveform, torch.Tensor):
        waveform = waveform.detach().cpu().float().numpy()
    data = np.asarray(waveform, dtype=np.float64)
    if data.ndim == 2:
        data = data.mean(axis=1)
    if data.ndim != 1:
        raise AlignerError(f"{what}: expected shape (samples,) or (samples, channels), got {tuple(np.shape(waveform))}")
    if not np.isfinite(data).all():
        raise AlignerError(f"{what}: contains NaN or infinite samples")
    return data


def _draw_waveform(ax: Axes, samples: np.ndarray, sample_rate: float, offset: float) -> Line2D | PolyCollection:
    """Line (short windows) or min/max envelope (long ones)."""
    if samples.size == 0:
        return ax.plot([], [], color="black", linewidth=0.6)[0]
    if samples.size <= MAX_WAVEFORM_POINTS:
        times = offset + np.arange(samples.size) / sample_rate
        return ax.plot(times, samples, color="black", linewidth=0.6)[0]
    bins = 4000
    edges = np.linspace(0, samples.size, bins + 1).astype(int)
    low = np.minimum.reduceat(samples, edges[:-1])
    high = np.maximum.reduceat(samples, edges[:-1])
    times = offset + (edges[:-1] + edges[1:]) / 2 / sample_rate
    return ax.fill_between(times, low, high, color="black", linewidth=0.3)


def stft_magnitude(signal: np.ndarray, n_fft: int, hop: int, win_length: int, *, rows: int | None = None) -> np.ndarray:
    """``|STFT|`` of ``signal`` as ``librosa.stft(signal, n_fft=n_fft,
    hop_length=hop, win_length=win_length, window="hann", center=True)``
    computes it (periodic Hann window centred in ``n_fft``, frames centred on
    multiples of ``hop`` over a zero-padded signal), for the first ``rows``
    frequency bins (None: all ``n_fft // 2 + 1``). Shape: ``(rows, frames)``."""
    n = np.arange(win_length)
    window = np.zeros(n_fft)
    left = (n_fft - win_length) // 2
    window[left : left + win_length] = 0.5 - 0.5 * np.cos(2.0 * np.pi * n / win_length)
    padded = np.pad(np.asarray(signal, dtype=np.float64), n_fft // 2)
    frames = 1 + (padded.size - n_fft) // hop
    rows = n_fft // 2 + 1 if rows is None else rows
    out = np.empty((rows, frames), np.float32)
    block = max(1, (1 << 22) // n_fft)  # frames per pass: bounded memory for long recordings
    for f0 in range(0, frames, block):
        f1 = min(frames, f0 + block)
        index = (np.arange(f0, f1) * hop)[:, None] + np.arange(n_fft)[None, :]
        out[:, f0:f1] = np.abs(np.fft.rfft(padded[index] * window, axis=1)[:, :rows]).T
    return out


def amplitude_db(magnitude: np.ndarray, dynamic_range: float) -> np.ndarray:
    """Magnitudes in dB relative to their maximum, floored ``dynamic_range``
    dB below it (``librosa.amplitude_to_db(magnitude, ref=np.max,
    top_db=dynamic_range)``)."""
    power = np.square(magnitude, dtype=np.float64)
    floor = 1e-10  # librosa's amin 1e-5, squared
    db = 10.0 * np.log10(np.maximum(power, floor)) - 10.0 * np.log10(max(float(power.max(initial=0.0)), floor))
    return np.maximum(db, db.max(initial=0.0) - dynamic_range)


def _draw_spectrogram(
    ax: Axes,
    samples: np.ndarray,
    sample_rate: float,
    offset: float,
    *,
    window_seconds: float,
    max_frequency: float,
    dynamic_range: float,
    cmap: str,
) -> QuadMesh:
    """Broadband spectrogram in dB (pre-emphasised, like Praat's), computed
    with numpy (:func:`stft_magnitude`): no librosa import for a figure."""
    win_length = max(8, int(round(window_seconds * sample_rate)))
    n_fft = max(512, 2 << (win_length - 1).bit_length())  # zero-padded: smoother in frequency
    hop = max(1, int(round(0.002 * sample_rate)), math.ceil(samples.size / MAX_SPECTROGRAM_FRAMES))
    signal = samples.astype(np.float32)
    if signal.size < 2:
        signal = np.zeros(win_length, dtype=np.float32)
    signal = np.append(signal[0], signal[1:] - 0.97 * signal[:-1])
    frequencies = np.fft.rfftfreq(n_fft, d=1.0 / sample_rate)
    top = min(max_frequency, sample_rate / 2)
    rows = int(np.count_nonzero(frequencies <= top + 1e-9))
    db = amplitude_db(stft_magnitude(signal, n_fft, hop, win_length, rows=rows), dynamic_range)
    times = offset + np.arange(db.shape[1]) * hop / sample_rate
    mesh = ax.pcolormesh(times, frequencies[:rows], db, shading="auto", cmap=cmap)
    ax.set_ylabel("Hz")
    mesh.set_rasterized(True)
    ax.set_ylim(0, top)
    ax.set_xlabel("")
    return mesh


# ------------------------------------------------------------------- figure


@dataclass(frozen=True)
class AlignmentFigure:
    """The axes and artists of :func:`plot_alignment`.

    Attributes:
        figure: the figure (or subfigure) drawn into.
        waveform_ax, spectrogram_ax, words_ax, chars_ax: the panels, top to
            bottom (``spectrogram_ax`` is None without a spectrogram,
            ``chars_ax`` None when the alignment has no characters).
        waveform: the waveform line (or envelope collection).
        spectrogram: the spectrogram ``QuadMesh`` or None.
        words, chars: the tiers' :class:`TierArtists` (``chars`` None when
            there is no character tier).
        boundaries: word boundary lines drawn through the waveform and
            spectrogram panels (one collection per panel).
        window: the ``(start, end)`` shown, in seconds.
    """

    figure: Figure | SubFigure
    waveform_ax: Axes
    spectrogram_ax: Axes | None
    words_ax: Axes
    chars_ax: Axes | None
    waveform: object
    spectrogram: object | None
    words: TierArtists
    chars: TierArtists | None
    boundaries: tuple[LineCollection, ...]
    window: tuple[float, float]

    @property
    def axes(self) -> tuple[Axes, ...]:
        """All panels, top to bottom."""
        panels = (self.waveform_ax, self.spectrogram_ax, self.words_ax, self.chars_ax)
        return tuple(ax for ax in panels if ax is not None)


def _word_intervals(alignment: Alignment) -> list[tuple[float, float, str]]:
    return [(w.start, w.end, w.text) for w in alignment.words]


def _char_intervals(alignment: Alignment) -> list[tuple[float, float, str]]:
    return [(c.start, c.end, c.label) for c in alignment.chars]


def plot_alignment(
    waveform: npt.ArrayLike | torch.Tensor,
    sample_rate: float,
    alignment: Alignment,
    *,
    start: float | None = None,
    end: float | None = None,
    spectrogram: bool = True,
    fig: Figure | SubFigure | None = None,
    offset: float = 0.0,
    scores: bool = True,
    title: str | None = None,
    max_frequency: float = 5000.0,
    dynamic_range: float = 50.0,
    window_seconds: float = 0.008,
    spectrogram_cmap: str = "gray_r",
    fontsize: float | None = None,
) -> AlignmentFigure:
    """Praat-like figure of an alignment: waveform, spectrogram, word tier and
    character (or phone) tier on one shared time axis.

    Word boundaries are drawn as vertical lines through the waveform,
    spectrogram and word tier; character boundaries through the character
    tier. Labels are centred in their intervals and clipped to them. With
    ``start``/``end`` only the intervals overlapping the window are drawn
    and the x-limits are the window.

    Args:
        waveform: the audio, mono or multi-channel (averaged), numpy or
            torch. Shape: ``(samples,)`` or ``(samples, channels)``.
        sample_rate: its sample rate in Hz.
        alignment: what to draw; its ``duration`` is the default ``end``.
        start, end: time window in seconds (None: whole recording).
        offset: time in seconds of ``waveform``'s first sample, when it is
            only a window of the recording (read with ``start``/``end``
            from a long file); the tiers keep the recording's own times.
        spectrogram: draw the spectrogram panel.
        fig: an empty figure or subfigure to draw into (None: a new
            pyplot figure, 12 x 6 inches, constrained layout).
        scores: shade each word by its score (red 0 → green 1,
            :data:`SCORE_CMAP`); words that could not be aligned are
            hatched grey either way.
        title: figure title (suptitle).
        max_frequency: top of the spectrogram in Hz (capped at Nyquist).
        dynamic_range: dB below the maximum shown in the spectrogram.
        window_seconds: STFT window length (Hann) in seconds.
        spectrogram_cmap: colormap of the spectrogram.
        fontsize: font size of the tier labels.

    Returns:
        :class:`AlignmentFigure`.

    Raises:
        AlignmentError: a bad window (``start >= end``, not finite).
        AlignerError: a bad waveform or sample rate.
    """
    samples = _mono(waveform)
    if (
        isinstance(sample_rate, bool)
        or not isinstance(sample_rate, (int, float, np.integer, np.floating))
        or not sample_rate > 0
        or not math.isfinite(sample_rate)
    ):
        raise AlignerError(f"sample_rate must be a positive number of Hz, not {sample_rate!r}")
    duration = alignment.duration if alignment.duration > 0 else offset + samples.size / sample_rate
    start, end = time_window(start, end, duration)
    if fig is None:
        import matplotlib.pyplot as plt

        fig = plt.figure(figsize=(12, 6), layout="constrained")
    has_chars = bool(alignment.chars)
    ratios = [1.2] + ([2.2] if spectrogram else []) + [0.45] + ([0.45] if has_chars else [])
    axes = list(
        np.atleast_1d(fig.subplots(len(ratios), 1, sharex=True, gridspec_kw={"height_ratios": ratios, "hspace": 0.05}))
    )
    waveform_ax = axes.pop(0)
    spectrogram_ax = axes.pop(0) if spectrogram else None
    words_ax = axes.pop(0)
    chars_ax = axes.pop(0) if has_chars else None

    first = max(0, int(math.floor((start - offset) * sample_rate)))
    last = min(samples.size, int(math.ceil((end - offset) * sample_rate)))
    window = samples[first : max(first, last)]
    wave_artist = _draw_waveform(waveform_ax, window, sample_rate, offset + first / sample_rate)
    peak = float(np.abs(window).max()) if window.size else 0.0
    waveform_ax.set_ylim(-1.05 * peak if peak > 0 else -1, 1.05 * peak if peak > 0 else 1)
    waveform_ax.tick_params(axis="y", labelsize="small")
    mesh = None
    if spectrogram_ax is not None:
        mesh = _draw_spectrogram(
            spectrogram_ax,
            window,
            sample_rate,
            offset + first / sample_rate,
            window_seconds=window_seconds,
            max_frequency=max_frequency,
            dynamic_range=dynamic_range,
            cmap=spectrogram_cmap,
        )
        spectrogram_ax.tick_params(axis="y", labelsize="small")

    words = alignment.words
    words_tier = draw_tier(
        words_ax,
        _word_intervals(alignment),
        name="words",
        start=start,
        end=end,
        scores=[w.score for w in words] if scores else None,
        aligned=[w.aligned for w in words],
        fontsize=fontsize,
    )
    chars_tier = None
    if chars_ax is not None:
        chars_tier = draw_tier(
            chars_ax,
            _char_intervals(alignment),
            name="phones" if alignment.phonetic else "chars",
            start=start,
            end=end,
            fontsize=fontsize,
        )
    lines = []
    for ax in (waveform_ax, spectrogram_ax):
        if ax is not None:
            lines.append(
                ax.vlines(
                    words_tier.boundary_times,
                    0,
                    1,
                    transform=ax.get_xaxis_transform(),
                    colors=BOUNDARY_COLOR,
                    linewidths=0.9,
                    alpha=0.8,
                )
            )
    _finish_time_axis(chars_ax or words_ax, start, end)
    if title:
        fig.suptitle(title)
    return AlignmentFigure(
        fig,
        waveform_ax,
        spectrogram_ax,
        words_ax,
        chars_ax,
        wave_artist,
        mesh,
        words_tier,
        chars_tier,
        tuple(lines),
        (start, end),
    )


def _finish_time_axis(bottom: Axes, start: float, end: float) -> None:
    """Plain-seconds ticks on the shared x axis."""
    from matplotlib.ticker import AutoLocator, ScalarFormatter

    bottom.xaxis.set_major_locator(AutoLocator())
    bottom.xaxis.set_major_formatter(ScalarFormatter())
    bottom.set_xlim(start, end)
    bottom.set_xlabel("Time (s)")


# --------------------------------------------------------------- confidence


@dataclass(frozen=True)
class ConfidencePlot:
    """The artists of :func:`plot_confidence`.

    Attributes:
        ax: the axes drawn into.
        bars: one bar per word, in transcript order (height: the score;
            0 for unaligned words and unknown (NaN) scores).
        unaligned: ``x`` markers at the words that could not be aligned
            (x data: their indices), or None when every word is aligned.
        threshold: the horizontal threshold line, or None.
        colorbar: the score colorbar, or None.
    """

    ax: Axes
    bars: BarContainer
    unaligned: Line2D | None
    threshold: Line2D | None
    colorbar: object | None


def plot_confidence(
    alignment: Alignment,
    *,
    ax: Axes | None = None,
    threshold: float | None = None,
    cmap: str = SCORE_CMAP,
    colorbar: bool = False,
    rotation: float = 60.0,
) -> ConfidencePlot:
    """Bar chart of the word scores (mean frame probability, 0 to 1).

    Bars are coloured by score with ``cmap``; the words are the x tick
    labels. Words the model could not align get a red ``x`` at 0 and a red
    tick label. With ``threshold``, a dashed line is drawn at it and the
    bars of aligned words below it get a red outline.

    Args:
        alignment: the words to show.
        ax: axes to draw into (None: ``plt.gca()``).
        threshold: score below which a word is flagged.
        cmap: colormap of the scores.
        colorbar: add a colorbar of the score colours.
        rotation: angle of the word labels.

    Examples:
        >>> import matplotlib.pyplot as plt
        >>> from aligner.records import Alignment, WordSpan
        >>> from viz import plot_confidence
        >>> words = (WordSpan("Hello", "HELLO", 0.1, 0.5, 0.9), WordSpan("world", "WORLD", 0.6, 1.0, 0.4))
        >>> plot = plot_confidence(Alignment(words, duration=1.2), threshold=0.5)
        >>> [float(bar.get_height()) for bar in plot.bars], plot.unaligned is None, plot.threshold is not None
        ([0.9, 0.4], True, True)
        >>> [tick.get_text() for tick in plot.ax.get_xticklabels()]
        ['Hello', 'world']
        >>> plt.close(plot.ax.figure)
    """
    import matplotlib as mpl

    if threshold is not None and not (isinstance(threshold, (int, float)) and 0 <= threshold <= 1):
        raise AlignerError(f"threshold must be a score between 0 and 1, not {threshold!r}")
    if ax is None:
        import matplotlib.pyplot as plt

        ax = plt.gca()
    colormap = mpl.colormaps[cmap]
    words = alignment.words
    heights = [float(w.score) if w.aligned and math.isfinite(w.score) else 0.0 for w in words]
    colors = [
        colormap(min(max(h, 0.0), 1.0)) if w.aligned and math.isfinite(w.score) else "0.8"
        for h, w in zip(heights, words)
    ]
    flagged = [threshold is not None and w.aligned and math.isfinite(w.score) and w.score < threshold for w in words]
    bars = ax.bar(
        range(len(words)),
        heights,
        color=colors,
        edgecolor=["red" if f else "0.3" for f in flagged],
        linewidth=[1.8 if f else 0.5 for f in flagged],
    )
    missing = [k for k, w in enumerate(words) if not w.aligned]
    unaligned = None
    if missing:
        unaligned = ax.plot(
            missing,
            [0.0] * len(missing),
            "x",
            color="red",
            markersize=9,
            markeredgewidth=2,
            label="not aligned",
            clip_on=False,
        )[0]
    line = None
    if threshold is not None:
        line = ax.axhline(threshold, color="red", linestyle="--", linewidth=1, label=f"threshold {threshold:g}")
    ax.set_xticks(range(len(words)))
    ax.set_xticklabels(
        [w.text for w in words], rotation=rotation, ha="right" if rotation else "center", rotation_mode="anchor"
    )
    for label, word in zip(ax.get_xticklabels(), words):
        if not word.aligned:
            label.set_color("red")
    ax.set_xlim(-0.6, max(len(words), 1) - 0.4)
    ax.set_ylim(0, 1.05)
    ax.set_ylabel("score")
    ax.set_title(f"mean word score {alignment.score:.2f}" if words else "no words")
    if missing or line is not None:
        ax.legend(loc="upper right", fontsize="small")
    bar_colorbar = None
    if colorbar:
        mappable = mpl.cm.ScalarMappable(norm=mpl.colors.Normalize(0, 1), cmap=colormap)
        bar_colorbar = ax.figure.colorbar(mappable, ax=ax, label="score")
    return ConfidencePlot(ax, bars, unaligned, line, bar_colorbar)
