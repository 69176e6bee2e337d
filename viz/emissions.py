"""Figures of CTC emissions and of the Viterbi trellis, for short utterances.

:func:`plot_emissions` shows the frame-by-label probabilities with the
aligned path on top; :func:`plot_trellis` shows the CTC trellis over the
target tokens (scores from :func:`trellis_scores`, a small numpy dynamic
program) with the chosen path on top.

Frame ``t`` covers ``[t * frame_seconds, (t + 1) * frame_seconds)``; the
images use that extent and path markers sit at frame centres.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING

import numpy as np

from aligner.errors import AlignmentError

if TYPE_CHECKING:  # pragma: no cover
    import numpy.typing as npt
    import torch
    from matplotlib.axes import Axes
    from matplotlib.axis import Axis
    from matplotlib.image import AxesImage
    from matplotlib.lines import Line2D

__all__ = [
    "EmissionsPlot",
    "TrellisPlot",
    "plot_emissions",
    "plot_trellis",
    "token_positions",
    "trellis_scores",
    "TRELLIS_KINDS",
]

#: Values of ``kind`` accepted by :func:`trellis_scores`.
TRELLIS_KINDS: tuple[str, ...] = ("forward", "relative")
#: Label axes list every label when there are at most this many.
MAX_TICK_LABELS = 60


# ------------------------------------------------------------------- inputs


def _to_numpy(value: npt.ArrayLike | torch.Tensor, name: str) -> np.ndarray:
    try:
        import torch

        if isinstance(value, torch.Tensor):
            value = value.detach().cpu()
            value = value.double() if value.is_floating_point() else value.long()
            value = value.numpy()
    except ImportError:  # pragma: no cover - torch is a dependency
        pass
    try:
        return np.array(value)  # a copy: inputs are never modified
    except Exception as error:  # noqa: BLE001 - anything numpy cannot take
        raise AlignmentError(f"{name}: not an array ({error})") from None


def _log_probs(log_probs: npt.ArrayLike | torch.Tensor) -> np.ndarray:
    """(frames, labels) or (1, frames, labels) → float64 (frames, labels)."""
    array = _to_numpy(log_probs, "log_probs")
    if array.ndim == 3 and array.shape[0] == 1:
        array = array[0]
    if array.ndim != 2 or array.shape[0] < 1 or array.shape[1] < 1:
        raise AlignmentError(
            f"log_probs must have shape (frames, labels) or (1, frames, labels), got {tuple(array.shape)}"
        )
    if not np.issubdtype(array.dtype, np.floating):
        raise AlignmentError(f"log_probs must be floating point, got {array.dtype}")
    array = array.astype(np.float64)
    if np.isnan(array).any() or np.isposinf(array).any():
        raise AlignmentError("log_probs contains NaN or +inf")
    return array


def _ids(value: npt.ArrayLike | torch.Tensor, name: str, num_labels: int, length: int | None = None) -> np.ndarray:
    """1-D int64 ids in ``[0, num_labels)`` (a leading batch of one is dropped)."""
    array = _to_numpy(value, name)
    if array.ndim == 2 and array.shape[0] == 1:
        array = array[0]
    if array.ndim != 1:
        raise AlignmentError(f"{name} must be 1-D, got shape {tuple(array.shape)}")
    if array.size and not np.issubdtype(array.dtype, np.integer):
        raise AlignmentError(f"{name} must hold integer label ids, got {array.dtype}")
    array = array.astype(np.int64)
    if length is not None and array.size != length:
        raise AlignmentError(f"{name} has {array.size} entries but log_probs has {length} frames")
    if array.size and (array.min() < 0 or array.max() >= num_labels):
        raise AlignmentError(
            f"{name}: label ids must lie in [0, {num_labels}), got {int(array.min())}..{int(array.max())}"
        )
    return array


def _check_labels(labels: Sequence[str], num_labels: int) -> list[str]:
    labels = [str(label) for label in labels]
    if len(labels) != num_labels:
        raise AlignmentError(f"{len(labels)} labels given but log_probs has {num_labels} label columns")
    return labels


def _label_axis(axis: Axis, names: Sequence[str]) -> None:
    if len(names) <= MAX_TICK_LABELS:
        axis.set_ticks(range(len(names)))
        axis.set_ticklabels(names, fontsize="small")


# ---------------------------------------------------------------- emissions


@dataclass(frozen=True)
class EmissionsPlot:
    """The artists of :func:`plot_emissions`.

    Attributes:
        ax: the axes drawn into.
        image: the heatmap (labels on y, time on x).
        path: the path overlay (x: frame centres in seconds, y: label ids),
            or None without a path.
        colorbar: the colorbar, or None.
    """

    ax: Axes
    image: AxesImage
    path: Line2D | None
    colorbar: object | None


def plot_emissions(
    log_probs: npt.ArrayLike | torch.Tensor,
    labels: Sequence[str],
    *,
    path: npt.ArrayLike | torch.Tensor | None = None,
    frame_seconds: float = 0.02,
    ax: Axes | None = None,
    colorbar: bool = True,
    probabilities: bool = True,
    cmap: str = "magma",
    floor: float = -30.0,
) -> EmissionsPlot:
    """Heatmap of CTC emissions: labels × frames, with the path on top.

    Args:
        log_probs: log-probabilities of one utterance (numpy or torch).
            Shape: ``(T, C)`` or ``(1, T, C)``; T frames, C labels.
        labels: the C label names (y tick labels, all shown when C <= 60).
        path: the aligned label of every frame, drawn as a line with
            markers at frame centres. Shape: ``(T,)`` or ``(1, T)``.
        frame_seconds: duration of one frame (x axis in seconds).
        ax: axes to draw into (None: ``plt.gca()``).
        colorbar: add a colorbar.
        probabilities: show ``exp(log_probs)`` (0 to 1); False shows the
            log-probabilities, clipped below at ``floor``.
        cmap: colormap of the heatmap.

    Raises:
        AlignmentError: inconsistent shapes, labels or path.

    Examples:
        >>> import matplotlib.pyplot as plt
        >>> import numpy as np
        >>> from viz import plot_emissions
        >>> probs = np.array([[0.1, 0.8, 0.1], [0.7, 0.2, 0.1], [0.1, 0.1, 0.8], [0.1, 0.1, 0.8]])
        >>> plot = plot_emissions(np.log(probs), ["-", "a", "b"], path=[1, 0, 2, 2])
        >>> plot.image.get_array().shape  # labels x frames
        (3, 4)
        >>> plot.path.get_ydata().tolist(), [tick.get_text() for tick in plot.ax.get_yticklabels()]
        ([1, 0, 2, 2], ['-', 'a', 'b'])
        >>> plt.close(plot.ax.figure)
    """
    lp = _log_probs(log_probs)
    frames, num_labels = lp.shape
    names = _check_labels(labels, num_labels)
    ids = None if path is None else _ids(path, "path", num_labels, frames)
    if ax is None:
        import matplotlib.pyplot as plt

        ax = plt.gca()
    if probabilities:
        data, vmin, vmax, what = np.exp(lp), 0.0, 1.0, "probability"
    else:
        data = np.maximum(lp, floor)
        vmin, vmax, what = float(data.min()), 0.0, "log probability"
    image = ax.imshow(
        data.T,
        origin="lower",
        aspect="auto",
        interpolation="nearest",
        cmap=cmap,
        vmin=vmin,
        vmax=vmax,
        extent=(0.0, frames * frame_seconds, -0.5, num_labels - 0.5),
    )
    line = None
    if ids is not None:
        centres = (np.arange(frames) + 0.5) * frame_seconds
        line = ax.plot(centres, ids, color="cyan", linewidth=0.8, marker="o", markersize=2.5, label="path")[0]
    _label_axis(ax.yaxis, names)
    ax.set_xlabel("Time (s)")
    ax.set_ylabel("label")
    bar = ax.figure.colorbar(image, ax=ax, label=what) if colorbar else None
    return EmissionsPlot(ax, image, line, bar)


# ------------------------------------------------------------------ trellis


def _extended(targets: np.ndarray, blank: int) -> tuple[np.ndarray, np.ndarray]:
    """CTC states ``[blank, y0, blank, y1, ..., blank]`` and where a skip
    from ``s - 2`` is allowed (between two different tokens)."""
    states = np.full(2 * targets.size + 1, blank, dtype=np.int64)
    states[1::2] = targets
    skip = np.zeros(states.size, dtype=bool)
    skip[3::2] = targets[1:] != targets[:-1]
    return states, skip


def _check_targets(targets: np.ndarray, frames: int, blank: int) -> None:
    if targets.size == 0:
        raise AlignmentError("targets is empty: nothing to align")
    if (targets == blank).any():
        raise AlignmentError(f"targets contains the blank id {blank}")
    repeats = int((targets[1:] == targets[:-1]).sum())
    if frames < targets.size + repeats:
        raise AlignmentError(
            f"{frames} frames are too few for {targets.size} tokens with {repeats} "
            f"repeat(s): a CTC path needs at least {targets.size + repeats}"
        )


def trellis_scores(
    log_probs: npt.ArrayLike | torch.Tensor,
    targets: npt.ArrayLike | torch.Tensor,
    *,
    blank: int = 0,
    kind: str = "forward",
) -> np.ndarray:
    """Best log-scores on the CTC trellis, per frame and target token.

    Row ``j`` stands for "token ``j`` has been emitted and token ``j + 1``
    not yet" (the CTC state of token ``j`` and the blank after it).

    * ``kind="forward"``: the cumulative best log-score of a path prefix
      that is at token ``j`` at frame ``t`` (the Viterbi forward variable,
      maximized over the two states).
    * ``kind="relative"``: the score of the best *complete* path through
      ``(t, j)`` minus the score of the best path overall: 0 on the Viterbi
      path, negative elsewhere (how much worse a detour through the cell
      would be).

    Cells no valid path can reach are ``-inf``. The dynamic program is
    plain numpy in float64, ``O(T * L)``: meant for short utterances.

    Args:
        log_probs: Shape: ``(T, C)`` or ``(1, T, C)``.
        targets: target ids (not blank). Shape: ``(L,)`` or ``(1, L)``.
        blank: the blank id.
        kind: ``"forward"`` or ``"relative"``.

    Returns:
        float64 array. Shape: ``(T, L)``.

    Raises:
        AlignmentError: bad shapes or ids, too few frames, unknown ``kind``.
    """
    if kind not in TRELLIS_KINDS:
        raise AlignmentError(f"kind must be one of {', '.join(TRELLIS_KINDS)}, not {kind!r}")
    lp = _log_probs(log_probs)
    frames, num_labels = lp.shape
    if not 0 <= blank < num_labels:
        raise AlignmentError(f"blank id {blank} outside [0, {num_labels})")
    tgt = _ids(targets, "targets", num_labels)
    _check_targets(tgt, frames, blank)
    states, skip = _extended(tgt, blank)
    emit = lp[:, states]  # (T, S)
    size = states.size
    alpha = np.full((frames, size), -np.inf)
    alpha[0, :2] = emit[0, :2]
    with np.errstate(invalid="ignore"):
        for t in range(1, frames):
            prev = alpha[t - 1]
            best = prev.copy()
            best[1:] = np.maximum(best[1:], prev[:-1])
            best[2:] = np.where(skip[2:], np.maximum(best[2:], prev[:-2]), best[2:])
            alpha[t] = best + emit[t]
    if kind == "forward":
        scores = alpha
    else:
        beta = np.full((frames, size), -np.inf)
        beta[-1, -2:] = 0.0
        with np.errstate(invalid="ignore"):
            for t in range(frames - 2, -1, -1):
                after = beta[t + 1] + emit[t + 1]
                best = after.copy()
                best[:-1] = np.maximum(best[:-1], after[1:])
                best[:-2] = np.where(skip[2:], np.maximum(best[:-2], after[2:]), best[:-2])
                beta[t] = best
        total = alpha + beta
        best_path = float(np.max(alpha[-1, -2:]))
        if not np.isfinite(best_path):
            raise AlignmentError("no CTC path through these log_probs has a nonzero probability")
        scores = total - best_path
    return np.maximum(scores[:, 1::2], scores[:, 2::2])


def token_positions(
    path: npt.ArrayLike | torch.Tensor, targets: npt.ArrayLike | torch.Tensor, *, blank: int = 0
) -> np.ndarray:
    """The target position of every frame of a CTC path.

    Frame ``t`` gets ``j`` when token ``j`` is the last one emitted at or
    before ``t`` (its own frames and the blanks after it), NaN before the
    first token.

    Args:
        path: label id per frame. Shape: ``(T,)``.
        targets: the target ids. Shape: ``(L,)``.

    Returns:
        float64 array (NaN where undefined). Shape: ``(T,)``.

    Raises:
        AlignmentError: the path does not collapse to ``targets``.

    Examples:
        >>> from viz import token_positions
        >>> token_positions([0, 1, 1, 0, 2, 2], [1, 2]).tolist()
        [nan, 0.0, 0.0, 0.0, 1.0, 1.0]
    """
    ids = _to_numpy(path, "path").reshape(-1).astype(np.int64)
    tgt = _to_numpy(targets, "targets").reshape(-1).astype(np.int64)
    positions = np.full(ids.size, np.nan)
    j = -1
    for t, label in enumerate(ids):
        if label != blank and (t == 0 or label != ids[t - 1]):
            j += 1
            if j >= tgt.size or tgt[j] != label:
                raise AlignmentError(
                    f"path does not collapse to the targets (frame {t}: label {label}, "
                    f"expected {'nothing more' if j >= tgt.size else int(tgt[j])})"
                )
        if j >= 0:
            positions[t] = j
    if j != tgt.size - 1:
        raise AlignmentError(f"path emits {j + 1} tokens but targets has {tgt.size}")
    return positions


@dataclass(frozen=True)
class TrellisPlot:
    """The artists and data of :func:`plot_trellis`.

    Attributes:
        ax: the axes drawn into.
        image: the trellis heatmap (tokens on y, time on x).
        path: the path overlay (x: frame centres in seconds, y: the token
            position :func:`token_positions` gives).
        colorbar: the colorbar, or None.
        scores: the values drawn. Shape: ``(T, L)``.
        positions: the path's token position per frame. Shape: ``(T,)``.
    """

    ax: Axes
    image: AxesImage
    path: Line2D
    colorbar: object | None
    scores: np.ndarray
    positions: np.ndarray


def plot_trellis(
    log_probs: npt.ArrayLike | torch.Tensor,
    targets: npt.ArrayLike | torch.Tensor,
    labels: Sequence[str],
    *,
    path: npt.ArrayLike | torch.Tensor | None = None,
    ax: Axes | None = None,
    blank: int = 0,
    kind: str = "forward",
    frame_seconds: float = 0.02,
    colorbar: bool = True,
    cmap: str = "viridis",
    vmin: float | None = None,
) -> TrellisPlot:
    """The CTC trellis (tokens × frames) with the chosen path on top.

    The heatmap shows :func:`trellis_scores` (``kind``); unreachable cells
    are left blank. The path (given, or the Viterbi path of
    :func:`aligner.forced_align` when None) is drawn as the token position
    of every frame.

    Args:
        log_probs: log-probabilities of one utterance. Shape: ``(T, C)`` or
            ``(1, T, C)``.
        targets: the transcript's label ids. Shape: ``(L,)``.
        labels: the C label names; the y tick labels are ``labels[targets]``.
        path: label id per frame. Shape: ``(T,)`` or ``(1, T)``.
        ax: axes to draw into (None: ``plt.gca()``).
        blank: the blank id.
        kind: ``"forward"`` (cumulative best log-score) or ``"relative"``
            (best complete path through the cell minus the best path).
        frame_seconds: duration of one frame (x axis in seconds).
        colorbar: add a colorbar.
        cmap: colormap.
        vmin: lowest value of the colour scale (default: the lowest
            finite score).

    Raises:
        AlignmentError: inconsistent shapes, ids, labels or path.
    """
    lp = _log_probs(log_probs)
    frames, num_labels = lp.shape
    names = _check_labels(labels, num_labels)
    scores = trellis_scores(lp, targets, blank=blank, kind=kind)
    tgt = _ids(targets, "targets", num_labels)
    if path is None:
        import torch

        from aligner.viterbi import forced_align

        paths, _ = forced_align(torch.from_numpy(lp[None].astype(np.float32)), torch.from_numpy(tgt[None]), blank=blank)
        ids = paths[0].numpy()
    else:
        ids = _ids(path, "path", num_labels, frames)
    positions = token_positions(ids, tgt, blank=blank)
    if ax is None:
        import matplotlib.pyplot as plt

        ax = plt.gca()
    finite = scores[np.isfinite(scores)]
    low = float(finite.min()) if vmin is None else float(vmin)
    high = float(finite.max()) if finite.size else 0.0
    shown = np.ma.masked_invalid(np.where(np.isfinite(scores), scores, np.nan))
    image = ax.imshow(
        shown.T,
        origin="lower",
        aspect="auto",
        interpolation="nearest",
        cmap=cmap,
        vmin=low,
        vmax=max(high, low + 1e-9),
        extent=(0.0, frames * frame_seconds, -0.5, tgt.size - 0.5),
    )
    centres = (np.arange(frames) + 0.5) * frame_seconds
    line = ax.plot(centres, positions, color="red", linewidth=1.0, marker="o", markersize=2.5, label="path")[0]
    _label_axis(ax.yaxis, [names[i] for i in tgt])
    ax.set_xlabel("Time (s)")
    ax.set_ylabel("target token")
    what = "best log-score so far" if kind == "forward" else "log-score vs best path"
    bar = ax.figure.colorbar(image, ax=ax, label=what) if colorbar else None
    return TrellisPlot(ax, image, line, bar, scores, positions)
