"""Plots of layer-wise analyses (:mod:`aligner.analysis`, :mod:`aligner.models.features`).

librosa style: every function draws on ``ax`` (the current axes when None),
returns the artists it made, and never calls ``plt.show``.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterable, Mapping, Sequence
from typing import TYPE_CHECKING, Any, cast

import numpy as np

from aligner.errors import AlignerError

if TYPE_CHECKING:  # pragma: no cover
    import numpy.typing as npt
    from matplotlib.axes import Axes
    from matplotlib.collections import PathCollection, QuadMesh
    from matplotlib.colorbar import Colorbar
    from matplotlib.figure import Figure
    from matplotlib.lines import Line2D

    from aligner.analysis import LayerReport

__all__ = ["plot_layer_metrics", "plot_cka", "plot_projection", "plot_hubert_accuracy", "layer_report_figures"]

#: Metrics :func:`plot_layer_metrics` draws by default, when the report has them.
DEFAULT_METRICS = ("probe_accuracy", "probe_chance", "phone_purity", "cluster_purity", "pnmi")


def _axes(ax: Axes | None) -> Axes:
    if ax is None:
        import matplotlib.pyplot as plt

        ax = plt.gca()
    return ax


def _rows(report: LayerReport | Iterable[Mapping[str, Any]]) -> list[dict[str, Any]]:
    source = report.rows if hasattr(report, "rows") else report
    rows = [dict(row) for row in source]
    if not rows:
        raise AlignerError("the layer report is empty")
    return rows


def plot_layer_metrics(
    report: LayerReport | Iterable[Mapping[str, Any]], metrics: Sequence[str] | None = None, ax: Axes | None = None
) -> list[Line2D]:
    """One line per metric against the layer number.

    Args:
        report: a :class:`aligner.analysis.LayerReport` or a list of row
            dicts, each with ``layer`` and the metrics.
        metrics: the row keys to draw; None = those of
            :data:`DEFAULT_METRICS` the report has. ``probe_chance`` is drawn
            dashed.
        ax: matplotlib axes.

    Returns:
        the ``Line2D`` of each metric, in order.
    """
    ax = _axes(ax)
    rows = _rows(report)
    if metrics is None:
        metrics = [m for m in DEFAULT_METRICS if all(m in row for row in rows)]
        if not metrics:
            raise AlignerError(f"the report has none of the metrics {', '.join(DEFAULT_METRICS)}")
    layers = [row.get("layer", index) for index, row in enumerate(rows)]
    lines = []
    for metric in metrics:
        missing = [row.get("layer", i) for i, row in enumerate(rows) if metric not in row]
        if missing:
            raise AlignerError(
                f"metric {metric!r} is missing for layers {missing}; "
                f"available: {', '.join(k for k in rows[0] if k != 'layer')}"
            )
        values = [float(row[metric]) for row in rows]
        style = "--" if metric.endswith("chance") else "-"
        (line,) = ax.plot(layers, values, style, marker="o", label=metric)
        lines.append(line)
    ax.set_xlabel("layer")
    ax.set_ylabel("score")
    ax.set_xticks(layers)
    ax.legend()
    return lines


def plot_cka(
    matrix: LayerReport | npt.ArrayLike,
    ax: Axes | None = None,
    layer_ids: Sequence[int] | None = None,
    cmap: str = "magma",
) -> tuple[QuadMesh, Colorbar]:
    """Heatmap of a layer-by-layer CKA matrix with a colorbar.

    Args:
        matrix: Shape: ``(L, L)``; or a LayerReport (its ``cka`` and layers).
        ax: matplotlib axes.
        layer_ids: tick labels; default ``0 .. L-1`` (a report's layers).
        cmap: colormap; values are drawn on the fixed range [0, 1].

    Returns:
        ``(mesh, colorbar)``: the ``QuadMesh`` and the ``Colorbar``.
    """
    if hasattr(matrix, "cka"):
        report = cast("LayerReport", matrix)  # duck-typed: anything with the report's cka and layers
        if layer_ids is None:
            layer_ids = report.layers
        if report.cka is None:
            raise AlignerError("the report has no CKA matrix (it was computed with cka=False)")
        matrix = report.cka
    matrix = np.asarray(matrix, dtype=float)
    if matrix.ndim != 2 or matrix.shape[0] != matrix.shape[1]:
        raise AlignerError(f"the CKA matrix must be square, got shape {matrix.shape}")
    count = matrix.shape[0]
    if layer_ids is None:
        layer_ids = list(range(count))
    if len(layer_ids) != count:
        raise AlignerError(f"{len(layer_ids)} layer_ids for a {count} x {count} matrix")
    ax = _axes(ax)
    edges = np.arange(count + 1) - 0.5
    mesh = ax.pcolormesh(edges, edges, matrix, cmap=cmap, vmin=0.0, vmax=1.0)
    ax.set_xticks(range(count), [str(i) for i in layer_ids])
    ax.set_yticks(range(count), [str(i) for i in layer_ids])
    ax.set_xlabel("layer")
    ax.set_ylabel("layer")
    ax.set_aspect("equal")
    ax.invert_yaxis()
    colorbar = ax.figure.colorbar(mesh, ax=ax, label="linear CKA")
    return mesh, colorbar


def plot_projection(
    points: npt.ArrayLike,
    labels: npt.ArrayLike,
    ax: Axes | None = None,
    max_labels: int = 12,
    other: str = "other",
    size: float = 8.0,
) -> list[PathCollection]:
    """Scatter of 2-D points coloured by label, with a legend.

    The ``max_labels`` most frequent labels get their own colour and legend
    entry (most frequent first); the rest are drawn in grey as ``other``.

    Args:
        points: Shape: ``(N, 2)`` (e.g. :func:`aligner.analysis.pca_projection`).
        labels: Shape: ``(N,)``.
        ax: matplotlib axes.
        max_labels: labels shown individually.
        other: legend entry of the remaining labels.
        size: marker size.

    Returns:
        one ``PathCollection`` per legend entry.
    """
    points = np.asarray(points, dtype=float)
    labels = np.asarray(labels)
    if points.ndim != 2 or points.shape[1] != 2:
        raise AlignerError(f"points must have shape (N, 2), got {points.shape}")
    if labels.shape != (points.shape[0],):
        raise AlignerError(
            f"labels must have one entry per point: {points.shape[0]} points, labels of shape {labels.shape}"
        )
    if max_labels < 1:
        raise AlignerError(f"max_labels must be at least 1, got {max_labels}")
    ax = _axes(ax)
    ranked = [label for label, _ in sorted(Counter(labels.tolist()).items(), key=lambda kv: (-kv[1], str(kv[0])))]
    shown = ranked[:max_labels]
    colours = _colours(len(shown))
    artists = []
    for label, colour in zip(shown, colours):
        chosen = labels == label
        artists.append(ax.scatter(points[chosen, 0], points[chosen, 1], s=size, color=colour, label=str(label)))
    rest = ~np.isin(labels, shown)
    if rest.any():
        artists.append(ax.scatter(points[rest, 0], points[rest, 1], s=size, color="0.7", label=other))
    ax.legend(markerscale=2, fontsize="small")
    return artists


def layer_report_figures(report: LayerReport) -> dict[str, Figure]:
    """The figures of ``aligner layers`` for a :class:`aligner.analysis.LayerReport`.

    Returns:
        ``{"layer_metrics": ..., "cka": ..., "projection": ...}``, each a
        ``matplotlib.figure.Figure`` (no pyplot state): the metrics per
        layer, the CKA between layers, and the PCA of the most informative
        layer (:meth:`~aligner.analysis.LayerReport.most_informative`)
        coloured by the report's labels.
    """
    from matplotlib.figure import Figure

    rows = _rows(report)
    figures = {}
    figure = Figure(figsize=(7, 4.5), layout="constrained")
    ax = figure.subplots()
    plot_layer_metrics(report, ax=ax)
    ax.set_title(f"{report.model or 'model'}: {report.kind} labels, {rows[0]['frames']} frames")
    figures["layer_metrics"] = figure

    figure = Figure(figsize=(6, 5), layout="constrained")
    ax = figure.subplots()
    plot_cka(report, ax=ax)
    ax.set_title("linear CKA between layers")
    figures["cka"] = figure

    best = report.most_informative()
    figure = Figure(figsize=(7, 6), layout="constrained")
    ax = figure.subplots()
    plot_projection(report.projections[best], report.labels, ax=ax)
    ax.set_title(f"PCA of layer {report.layers[best]} (the most informative), coloured by {report.kind}")
    ax.set_xlabel("PC 1")
    ax.set_ylabel("PC 2")
    figures["projection"] = figure
    return figures


def _colours(count: int) -> list:
    import matplotlib

    cmap = matplotlib.colormaps["tab10" if count <= 10 else "tab20"]
    return [cmap(i % cmap.N) for i in range(count)]


def plot_hubert_accuracy(results: Mapping[str, Any] | Iterable[Mapping[str, Any]], ax: Axes | None = None) -> list:
    """Masked vs unmasked HuBERT prediction accuracy.

    Args:
        results: one result of :func:`aligner.models.features.hubert_prediction_accuracy`
            (drawn as two bars), or several: a mapping ``name -> result`` or
            a list of results (e.g. per checkpoint), drawn as two lines
            (masked, unmasked) over the names / positions.
        ax: matplotlib axes.

    Returns:
        a single result: ``[BarContainer]`` with 2 bars; several: the two
        ``Line2D`` (masked first).
    """
    ax = _axes(ax)
    if isinstance(results, Mapping) and "masked" in results:
        values = [_accuracy(results, "masked"), _accuracy(results, "unmasked")]
        bars = ax.bar(["masked", "unmasked"], values, color=["C0", "C1"])
        ax.set_ylim(0, 1)
        ax.set_ylabel("prediction accuracy")
        return [bars]
    if isinstance(results, Mapping):
        names, entries = [str(k) for k in results], list(results.values())
    else:
        entries = list(results)
        names = [str(i) for i in range(len(entries))]
    if not entries:
        raise AlignerError("no HuBERT accuracy results to plot")
    positions = np.arange(len(entries))
    lines = []
    for key in ("masked", "unmasked"):
        (line,) = ax.plot(positions, [_accuracy(entry, key) for entry in entries], marker="o", label=key)
        lines.append(line)
    ax.set_xticks(positions, names)
    ax.set_ylim(0, 1)
    ax.set_ylabel("prediction accuracy")
    ax.legend()
    return lines


def _accuracy(result: object, key: str) -> float:
    if not isinstance(result, Mapping) or key not in result:
        raise AlignerError(f"a HuBERT accuracy result must be a dict with {key!r}, got {result!r}")
    return float(result[key])
