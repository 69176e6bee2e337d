"""Matplotlib figures of alignments, emissions and the CTC trellis.

In the manner of ``librosa.display``: functions take ``ax=None`` (or
``fig=None`` for multi-panel figures) and keyword options, return the
artists they made (a small frozen dataclass), never call ``plt.show()`` and
never change rcParams. They work with any backend, Agg included.

* :func:`plot_alignment`: Praat-like waveform + spectrogram + tiers.
* :func:`plot_emissions`: frame × label probabilities with the path.
* :func:`plot_trellis`: the CTC trellis with the Viterbi path.
* :func:`plot_confidence`: word scores as bars.
* :func:`plot_comparison` / :func:`boundary_differences`: an alignment
  against a reference (e.g. a human TextGrid read with
  :func:`aligner.readers.read_textgrid`).
* :func:`plot_layer_metrics`, :func:`plot_cka`, :func:`plot_projection`,
  :func:`plot_hubert_accuracy`, :func:`layer_report_figures`: layer-wise
  analysis (:mod:`aligner.analysis`).
* :func:`show` / :func:`view_page`: the interactive page of ``aligner view``
  (listen, zoom, drag boundaries, download the corrected TextGrid), inline in
  Jupyter (:mod:`viz.view`).
"""

from .alignment import AlignmentFigure, ConfidencePlot, TierArtists, draw_tier, plot_alignment, plot_confidence
from .compare import BoundaryComparison, ComparisonFigure, boundary_differences, plot_comparison
from .emissions import EmissionsPlot, TrellisPlot, plot_emissions, plot_trellis, token_positions, trellis_scores
from .layers import layer_report_figures, plot_cka, plot_hubert_accuracy, plot_layer_metrics, plot_projection
from .view import View, show, view_page

__all__ = [
    "AlignmentFigure",
    "BoundaryComparison",
    "ComparisonFigure",
    "ConfidencePlot",
    "EmissionsPlot",
    "TierArtists",
    "TrellisPlot",
    "boundary_differences",
    "draw_tier",
    "plot_alignment",
    "plot_comparison",
    "plot_confidence",
    "plot_emissions",
    "plot_trellis",
    "token_positions",
    "trellis_scores",
    "plot_cka",
    "plot_hubert_accuracy",
    "plot_layer_metrics",
    "plot_projection",
    "layer_report_figures",
    "View",
    "show",
    "view_page",
]
