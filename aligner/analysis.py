"""What do the layers of a speech model encode? Frame labels and per-layer metrics.

Frame labels come from an :class:`~aligner.records.Alignment`
(:func:`frame_labels`); the metrics compare a layer's frame vectors with
them:

* :func:`probe_accuracy` -- a linear probe (logistic regression on
  standardized features) trained on part of the frames, tested on the rest.
* :func:`cluster_metrics` -- k-means on the features, then cluster purity,
  phone purity and phone-normalized mutual information (PNMI) as defined
  in the HuBERT paper (Hsu et al. 2021, section IV.C).
* :func:`linear_cka` / :func:`cka_matrix` -- linear centered kernel
  alignment between layers (Kornblith et al. 2019).
* :func:`pca_projection` -- 2-D view of a layer.

:func:`layerwise_report` runs them on every layer; :func:`analyze_layers`
goes from a model, waveforms and their alignments to a
:class:`LayerReport`. The metrics need scikit-learn (``pip install
scikit-learn``).

Array shapes use ``N`` for frames, ``D`` for feature dimensions and ``L``
for layers.
"""

from __future__ import annotations

import csv
import importlib.util
import io
import os
from collections.abc import Iterator, Sequence
from contextlib import AbstractContextManager
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np
import torch

from .atomic import atomic_write_text
from .errors import AlignerError, AlignmentError
from .models.alignment_model import AlignmentModel
from .models.features import (
    AnyModel,
    _as_waveforms,
    _check_frames,
    _frame_samples,
    extract_layer_features,
    resolve_network,
)
from .records import Alignment

if TYPE_CHECKING:  # pragma: no cover
    import numpy.typing as npt

__all__ = [
    "SILENCE",
    "UNKNOWN",
    "LABEL_KINDS",
    "frame_labels",
    "probe_accuracy",
    "contingency_metrics",
    "cluster_metrics",
    "linear_cka",
    "cka_matrix",
    "pca_projection",
    "LayerReport",
    "layerwise_report",
    "analyze_layers",
]

#: Label of frames outside every word.
SILENCE = "sil"
#: Label of frames inside a word that has no aligned characters.
UNKNOWN = "unk"
#: The kinds of frame labels :func:`frame_labels` makes.
LABEL_KINDS = ("char", "phone", "word_position", "speech")


# --------------------------------------------------------------------------- frame labels


def _frame_slice(centres: np.ndarray, start: float, end: float) -> slice:
    """Frames whose centre lies in ``[start, end)``."""
    return slice(int(np.searchsorted(centres, start, "left")), int(np.searchsorted(centres, end, "left")))


def frame_labels(
    alignment: Alignment, num_frames: int, frame_seconds: float | None = None, kind: str = "char"
) -> np.ndarray:
    """One label per model frame, read off an alignment.

    Frame ``t`` is labelled by the interval that contains its **centre**
    ``(t + 0.5) * frame_seconds``, so a frame straddling a boundary goes to
    the interval holding most of it and boundaries on the frame grid (as
    the aligner makes them) never fall on a centre.

    Kinds:

    * ``"char"``: the character (model label) whose span contains the frame.
    * ``"phone"``: the same for a phonetic model (``alignment.phonetic``).
    * ``"word_position"``: position of the frame in its word: ``"B"``
      (first frame), ``"I"`` (inside), ``"E"`` (last frame) or ``"S"``
      (a one-frame word).
    * ``"speech"``: ``"speech"`` inside any word.

    Frames outside every word are :data:`SILENCE` (``"sil"``); for
    ``"char"`` / ``"phone"``, frames of a word with no aligned characters
    are :data:`UNKNOWN` (``"unk"``).

    Args:
        alignment: the recording's alignment.
        num_frames: frames to label (the model's frame count for the audio).
        frame_seconds: seconds per frame; None = ``alignment.frame_seconds``.
        kind: one of :data:`LABEL_KINDS`.

    Returns:
        String array. Shape: ``(num_frames,)``.
    """
    if kind not in LABEL_KINDS:
        raise AlignerError(f"unknown label kind {kind!r}; choose one of {', '.join(LABEL_KINDS)}")
    if kind == "phone" and not alignment.phonetic:
        raise AlignerError(
            f"kind='phone' needs an alignment made by a phonetic model, but {alignment.audio or 'this alignment'} "
            f"was made by {alignment.model or 'a character model'}; use kind='char'"
        )
    if isinstance(num_frames, bool) or not isinstance(num_frames, (int, np.integer)) or num_frames < 0:
        raise AlignerError(f"num_frames must be a non-negative integer, got {num_frames!r}")
    if frame_seconds is None:
        frame_seconds = alignment.frame_seconds
    if not frame_seconds > 0:
        raise AlignerError(f"frame_seconds must be positive, got {frame_seconds!r}")
    centres = (np.arange(int(num_frames)) + 0.5) * frame_seconds
    width = max([len(SILENCE), len(UNKNOWN), len("speech")] + [len(c.label) for c in alignment.chars])
    labels = np.full(int(num_frames), SILENCE, dtype=f"<U{width}")
    for word in alignment.words:
        frames = _frame_slice(centres, word.start, word.end)
        if kind == "speech":
            labels[frames] = "speech"
        elif kind == "word_position":
            count = frames.stop - frames.start
            if count == 1:
                labels[frames] = "S"
            elif count > 1:
                labels[frames] = "I"
                labels[frames.start] = "B"
                labels[frames.stop - 1] = "E"
        else:
            labels[frames] = UNKNOWN
            for char in word.chars:
                labels[_frame_slice(centres, char.start, char.end)] = char.label
    return labels


# --------------------------------------------------------------------------- metrics


def _sklearn() -> None:
    if importlib.util.find_spec("sklearn") is None:
        raise AlignerError("the layer metrics need scikit-learn: pip install scikit-learn")


def _one_blas_thread() -> AbstractContextManager[object]:
    """Context: BLAS on one thread. The probe solver, k-means++ and the PCA
    eigen-solver make many small products that run several times slower
    with a thread pool (about 10x for the probe on a busy 2-core machine)."""
    from threadpoolctl import threadpool_limits  # a scikit-learn dependency

    return threadpool_limits(limits=1, user_api="blas")


def _check_xy(features: npt.ArrayLike, labels: npt.ArrayLike, name: str = "features") -> tuple[np.ndarray, np.ndarray]:
    x = np.asarray(features)
    y = np.asarray(labels)
    if x.ndim != 2:
        raise AlignerError(f"{name} must be a 2-D array (frames, dim), got shape {x.shape}")
    if y.ndim != 1 or y.shape[0] != x.shape[0]:
        raise AlignerError(
            f"labels must be a 1-D array with one label per frame: {name} have {x.shape[0]} frames, "
            f"labels have shape {y.shape}"
        )
    if x.shape[0] == 0:
        raise AlignerError(f"{name} have no frames")
    if not np.issubdtype(x.dtype, np.number) or not np.all(np.isfinite(x)):
        raise AlignerError(f"{name} must be finite numbers")
    return x, y


def probe_accuracy(
    features: npt.ArrayLike,
    labels: npt.ArrayLike,
    *,
    groups: npt.ArrayLike | None = None,
    test_size: float = 0.25,
    seed: int = 0,
    max_iter: int = 1000,
    C: float = 1.0,
) -> dict:
    """Accuracy of a linear probe predicting the labels from the features.

    A multinomial logistic regression on standardized features is trained
    on one part of the frames and scored on the other. With ``groups``
    (e.g. an utterance id per frame) whole groups go to one side, so the
    probe is tested on unseen utterances; without, frames are split at
    random (neighbouring frames are similar, so this is optimistic).

    Args:
        features: Shape: ``(N, D)``.
        labels: one label per frame. Shape: ``(N,)``.
        groups: optional group id per frame. Shape: ``(N,)``.
        test_size: fraction of frames (or groups) held out.
        seed: seed of the split and the solver.
        max_iter: iterations of the L-BFGS solver.
        C: inverse L2 regularization strength.

    Returns:
        ``accuracy`` on the held-out frames; ``chance``: the held-out
        accuracy of always answering the most frequent training label;
        ``train_frames``, ``test_frames``, ``classes`` (distinct labels).
    """
    _sklearn()
    from sklearn.linear_model import LogisticRegression
    from sklearn.model_selection import GroupShuffleSplit, ShuffleSplit
    from sklearn.pipeline import make_pipeline
    from sklearn.preprocessing import StandardScaler

    x, y = _check_xy(features, labels)
    if not 0 < test_size < 1:
        raise AlignerError(f"test_size must be between 0 and 1, got {test_size}")
    if groups is not None:
        groups = np.asarray(groups)
        if groups.shape != y.shape:
            raise AlignerError(f"groups must have one id per frame: shape {groups.shape}, expected {y.shape}")
        if len(np.unique(groups)) < 2:
            raise AlignerError("groups: splitting by group needs at least 2 groups (utterances); pass groups=None")
        splitter = GroupShuffleSplit(n_splits=1, test_size=test_size, random_state=seed)
    else:
        if len(y) < 2:
            raise AlignerError(f"the probe needs at least 2 frames, got {len(y)}")
        splitter = ShuffleSplit(n_splits=1, test_size=test_size, random_state=seed)
    train, test = next(splitter.split(x, y, groups))
    values, counts = np.unique(y[train], return_counts=True)
    majority = values[np.argmax(counts)]
    chance = float(np.mean(y[test] == majority))
    if len(values) < 2:
        accuracy = chance
    else:
        probe = make_pipeline(StandardScaler(), LogisticRegression(C=C, max_iter=max_iter, random_state=seed))
        with _one_blas_thread():
            probe.fit(x[train].astype(np.float64), y[train])
        accuracy = float(probe.score(x[test].astype(np.float64), y[test]))
    return {
        "accuracy": accuracy,
        "chance": chance,
        "train_frames": int(len(train)),
        "test_frames": int(len(test)),
        "classes": int(len(np.unique(y))),
    }


def contingency_metrics(labels: npt.ArrayLike, clusters: npt.ArrayLike) -> dict:
    """Purity and PNMI of a clustering against reference labels.

    With ``p(y, z)`` the joint frequency of label ``y`` and cluster ``z``
    (HuBERT paper, section IV.C):

    * phone purity ``= E_z[max_y p(y|z)] = sum_z max_y p(y, z)``
    * cluster purity ``= E_y[max_z p(z|y)] = sum_y max_z p(y, z)``
    * PNMI ``= I(y; z) / H(y)`` (NaN when there is a single label).

    Args:
        labels: reference label per frame. Shape: ``(N,)``.
        clusters: cluster id per frame. Shape: ``(N,)``.

    Returns:
        ``phone_purity``, ``cluster_purity``, ``pnmi``.
    """
    y = np.asarray(labels)
    z = np.asarray(clusters)
    if y.ndim != 1 or y.shape != z.shape or y.size == 0:
        raise AlignerError(
            f"labels and clusters must be non-empty 1-D arrays of the same length, got shapes {y.shape} and {z.shape}"
        )
    _, y_index = np.unique(y, return_inverse=True)
    _, z_index = np.unique(z, return_inverse=True)
    joint = np.zeros((y_index.max() + 1, z_index.max() + 1))
    np.add.at(joint, (y_index, z_index), 1.0)
    joint /= joint.sum()
    p_y = joint.sum(axis=1)
    p_z = joint.sum(axis=0)
    nonzero = joint > 0
    mutual = float(np.sum(joint[nonzero] * np.log(joint[nonzero] / np.outer(p_y, p_z)[nonzero])))
    entropy = float(-np.sum(p_y * np.log(p_y)))
    return {
        "phone_purity": float(joint.max(axis=0).sum()),
        "cluster_purity": float(joint.max(axis=1).sum()),
        "pnmi": max(0.0, mutual) / entropy if entropy > 0 else float("nan"),
    }


def cluster_metrics(
    features: npt.ArrayLike,
    labels: npt.ArrayLike,
    n_clusters: int = 50,
    *,
    seed: int = 0,
    minibatch: bool | None = None,
) -> dict:
    """K-means on the features, scored against the labels.

    Args:
        features: Shape: ``(N, D)``.
        labels: Shape: ``(N,)``.
        n_clusters: k (at most ``N``).
        seed: k-means seed.
        minibatch: use ``MiniBatchKMeans`` (as HuBERT does) instead of
            ``KMeans``; None = only above 10000 frames.

    Returns:
        the :func:`contingency_metrics` of the clustering plus
        ``n_clusters`` and ``inertia``.

    Note:
        With few frames per (label, cluster) cell these plug-in estimates
        are biased upwards: the mutual information of unrelated labels and
        clusters is about ``(C - 1)(k - 1) / (2 N)`` nats for ``C`` labels,
        ``k`` clusters and ``N`` frames. Compare layers on the same frames
        and use ``N`` well above ``k * C``.
    """
    _sklearn()
    from sklearn.cluster import KMeans, MiniBatchKMeans

    x, y = _check_xy(features, labels)
    if isinstance(n_clusters, bool) or not isinstance(n_clusters, (int, np.integer)) or n_clusters < 1:
        raise AlignerError(f"n_clusters must be a positive integer, got {n_clusters!r}")
    if n_clusters > len(x):
        raise AlignerError(f"n_clusters={n_clusters} is more than the {len(x)} frames given")
    if minibatch is None:
        minibatch = len(x) > 10000
    if minibatch:
        kmeans = MiniBatchKMeans(n_clusters=int(n_clusters), random_state=seed, n_init=3, batch_size=min(len(x), 10000))
    else:
        kmeans = KMeans(n_clusters=int(n_clusters), random_state=seed, n_init=3)
    with _one_blas_thread():
        clusters = kmeans.fit_predict(x.astype(np.float64))
    result = contingency_metrics(y, clusters)
    result.update(n_clusters=int(n_clusters), inertia=float(kmeans.inertia_))
    return result


def _centred(x: npt.ArrayLike, name: str) -> np.ndarray:
    x = np.asarray(x, dtype=np.float64)
    if x.ndim != 2 or x.shape[0] < 2:
        raise AlignerError(f"{name} must be a 2-D array (frames, dim) with at least 2 frames, got shape {x.shape}")
    if not np.all(np.isfinite(x)):
        raise AlignerError(f"{name} must be finite numbers")
    return x - x.mean(axis=0)


def _cka_from_centred(x: np.ndarray, y: np.ndarray) -> float:
    cross = np.linalg.norm(y.T @ x) ** 2
    norm = np.linalg.norm(x.T @ x) * np.linalg.norm(y.T @ y)
    return float(cross / norm) if norm > 0 else float("nan")


def linear_cka(x: npt.ArrayLike, y: npt.ArrayLike) -> float:
    """Linear centered kernel alignment of two representations of the same frames.

    ``CKA = ||Y^T X||_F^2 / (||X^T X||_F ||Y^T Y||_F)`` on column-centred
    ``X``, ``Y`` (Kornblith et al. 2019, eq. 5): 1 for representations
    equal up to an orthogonal transform and isotropic scaling (and
    translation), near 0 for unrelated ones. NaN when one is constant.

    Args:
        x: Shape: ``(N, D1)``.
        y: Shape: ``(N, D2)``.
    """
    xc, yc = _centred(x, "x"), _centred(y, "y")
    if xc.shape[0] != yc.shape[0]:
        raise AlignerError(f"x and y must describe the same frames: {xc.shape[0]} vs {yc.shape[0]} rows")
    return _cka_from_centred(xc, yc)


def cka_matrix(layers: Sequence) -> np.ndarray:
    """Linear CKA between every pair of layers.

    Computed from the ``N x N`` Gram matrices when ``N`` is smaller than
    the feature size (cheaper), from feature cross-products otherwise;
    both give the same value.

    Args:
        layers: one array per layer, each of shape ``(N, D_l)``.

    Returns:
        Symmetric matrix. Shape: ``(L, L)``.
    """
    centred = [_centred(x, f"layers[{i}]") for i, x in enumerate(layers)]
    if not centred:
        raise AlignerError("cka_matrix needs at least one layer")
    frames = {x.shape[0] for x in centred}
    if len(frames) != 1:
        raise AlignerError(f"all layers must have the same frames, got frame counts {sorted(frames)}")
    count = len(centred)
    matrix = np.empty((count, count))
    if centred[0].shape[0] < max(x.shape[1] for x in centred):
        grams = [x @ x.T for x in centred]
        norms = [np.linalg.norm(g) for g in grams]
        for i in range(count):
            for j in range(i, count):
                value = (
                    float(np.vdot(grams[i], grams[j]) / (norms[i] * norms[j]))
                    if norms[i] * norms[j] > 0
                    else float("nan")
                )
                matrix[i, j] = matrix[j, i] = value
    else:
        norms = [np.linalg.norm(x.T @ x) for x in centred]
        for i in range(count):
            matrix[i, i] = 1.0 if norms[i] > 0 else float("nan")
            for j in range(i + 1, count):
                cross = np.linalg.norm(centred[j].T @ centred[i]) ** 2
                value = float(cross / (norms[i] * norms[j])) if norms[i] * norms[j] > 0 else float("nan")
                matrix[i, j] = matrix[j, i] = value
    return matrix


def pca_projection(features: npt.ArrayLike, n_components: int = 2) -> np.ndarray:
    """Project frames onto their first principal components.

    Signs are fixed so that the largest-magnitude loading of each component
    is positive (the same input always gives the same picture).

    Args:
        features: Shape: ``(N, D)``.
        n_components: at most ``min(N, D)``.

    Returns:
        Shape: ``(N, n_components)``.
    """
    x = _centred(features, "features")
    if (
        isinstance(n_components, bool)
        or not isinstance(n_components, (int, np.integer))
        or not 1 <= n_components <= min(x.shape)
    ):
        raise AlignerError(f"n_components must be between 1 and {min(x.shape)}, got {n_components!r}")
    if x.shape[0] >= x.shape[1]:  # eigenvectors of the scatter matrix: cheaper than an SVD here
        scatter = x.T @ x
        with _one_blas_thread():
            values, vectors = np.linalg.eigh(scatter)
        components = vectors[:, np.argsort(values)[::-1][:n_components]].T
    else:
        _, _, vt = np.linalg.svd(x, full_matrices=False)
        components = vt[:n_components]
    signs = np.sign(components[np.arange(n_components), np.argmax(np.abs(components), axis=1)])
    signs[signs == 0] = 1.0
    return x @ (components * signs[:, None]).T


# --------------------------------------------------------------------------- reports

#: Columns of a :class:`LayerReport` row, in CSV order (missing ones are left out).
REPORT_COLUMNS = (
    "layer",
    "frames",
    "classes",
    "probe_accuracy",
    "probe_chance",
    "phone_purity",
    "cluster_purity",
    "pnmi",
    "n_clusters",
)


@dataclass(frozen=True, eq=False)
class LayerReport:
    """Per-layer metrics: a small table (one dict per layer) plus extras.

    Attributes:
        rows: one dict per layer with ``layer`` and the metrics
            (``probe_accuracy``, ``probe_chance``, ``phone_purity``,
            ``cluster_purity``, ``pnmi``, ``n_clusters``, ``frames``,
            ``classes``).
        cka: linear CKA between layers, Shape: ``(L, L)``; None if not computed.
        projections: 2-D PCA projection of the analysed frames per layer,
            each of Shape: ``(N, 2)``; empty if not computed.
        labels: the label of each analysed frame. Shape: ``(N,)``.
        kind: label kind (see :func:`frame_labels`).
        model: model name, if known.
    """

    rows: tuple[dict, ...]
    cka: np.ndarray | None = None
    projections: tuple[np.ndarray, ...] = ()
    labels: np.ndarray = field(default_factory=lambda: np.array([], dtype=str))
    kind: str = "char"
    model: str | None = None

    @property
    def layers(self) -> list[int]:
        return [row["layer"] for row in self.rows]

    def column(self, name: str) -> list:
        """One metric for every layer."""
        if not self.rows or name not in self.rows[0]:
            available = ", ".join(self.rows[0]) if self.rows else "none"
            raise AlignerError(f"the report has no column {name!r}; columns: {available}")
        return [row[name] for row in self.rows]

    def most_informative(self) -> int:
        """Row index of the layer with the best probe accuracy (else the
        best PNMI, else the last layer)."""
        for metric in ("probe_accuracy", "pnmi"):
            if self.rows and metric in self.rows[0]:
                values = np.array(self.column(metric), dtype=float)
                if np.isfinite(values).any():
                    return int(np.nanargmax(values))
        return len(self.rows) - 1

    def to_dicts(self) -> list[dict]:
        return [dict(row) for row in self.rows]

    def __len__(self) -> int:
        return len(self.rows)

    def __iter__(self) -> Iterator[dict]:
        return iter(self.to_dicts())

    def to_csv_text(self) -> str:
        columns = [c for c in REPORT_COLUMNS if self.rows and c in self.rows[0]]
        columns += [c for c in (self.rows[0] if self.rows else ()) if c not in columns]
        buffer = io.StringIO()
        writer = csv.DictWriter(buffer, fieldnames=columns, lineterminator="\n")
        writer.writeheader()
        for row in self.rows:
            writer.writerow({k: (f"{v:.6g}" if isinstance(v, float) else v) for k, v in row.items()})
        return buffer.getvalue()

    def to_csv(self, path: str | os.PathLike) -> Path:
        """Write the table as CSV, atomically; returns the path."""
        return atomic_write_text(path, self.to_csv_text())


def layerwise_report(
    layer_features: Sequence,
    labels: npt.ArrayLike,
    *,
    layer_ids: Sequence[int] | None = None,
    groups: npt.ArrayLike | None = None,
    n_clusters: int = 50,
    probe: bool = True,
    cluster: bool = True,
    cka: bool = True,
    projection: bool = True,
    test_size: float = 0.25,
    seed: int = 0,
    kind: str = "char",
    model: str | None = None,
) -> LayerReport:
    """All metrics for every layer on the same frames.

    Args:
        layer_features: one array per layer, each of shape ``(N, D)``
            (or one array of shape ``(L, N, D)``).
        labels: Shape: ``(N,)``.
        layer_ids: layer number of each entry; default ``0 .. L-1``.
        groups: utterance id per frame for the probe split (see
            :func:`probe_accuracy`). Shape: ``(N,)``.
        n_clusters: k of :func:`cluster_metrics` (reduced to ``N`` if larger).
        probe, cluster, cka, projection: which metrics to compute.
        test_size, seed: probe split and seeds.
        kind, model: stored in the report.

    Returns:
        a :class:`LayerReport`.
    """
    layers = [np.asarray(x) for x in layer_features]
    if not layers:
        raise AlignerError("layer_features is empty")
    labels = np.asarray(labels)
    for index, x in enumerate(layers):
        _check_xy(x, labels, name=f"layer_features[{index}]")
    if layer_ids is None:
        layer_ids = range(len(layers))
    layer_ids = [int(i) for i in layer_ids]
    if len(layer_ids) != len(layers):
        raise AlignerError(f"{len(layer_ids)} layer_ids for {len(layers)} layers")
    frames = len(labels)
    classes = len(np.unique(labels))
    rows = []
    for layer_id, x in zip(layer_ids, layers):
        row: dict = {"layer": layer_id, "frames": frames, "classes": classes}
        if probe:
            result = probe_accuracy(x, labels, groups=groups, test_size=test_size, seed=seed)
            row.update(probe_accuracy=result["accuracy"], probe_chance=result["chance"])
        if cluster:
            result = cluster_metrics(x, labels, min(n_clusters, frames), seed=seed)
            row.update(
                phone_purity=result["phone_purity"],
                cluster_purity=result["cluster_purity"],
                pnmi=result["pnmi"],
                n_clusters=result["n_clusters"],
            )
        rows.append(row)
    matrix = cka_matrix(layers) if cka and frames >= 2 else None
    projections = tuple(pca_projection(x, min(2, *x.shape)) for x in layers) if projection and frames >= 2 else ()
    return LayerReport(tuple(rows), matrix, projections, labels, kind, model)


def _check_durations(alignments: Sequence[Alignment], waves: Sequence[torch.Tensor], sample_rate: int) -> None:
    for index, (alignment, wave) in enumerate(zip(alignments, waves)):
        if not isinstance(alignment, Alignment):
            raise AlignerError(f"alignments[{index}] must be an Alignment, not {type(alignment).__name__}")
        seconds = wave.shape[0] / sample_rate
        if abs(alignment.duration - seconds) > 0.1:
            raise AlignmentError(
                f"alignments[{index}] is for {alignment.duration:.2f} s of audio ({alignment.audio or 'unknown file'}) "
                f"but items[{index}] is {seconds:.2f} s at {sample_rate} Hz; are items and alignments in the "
                f"same order, and is the audio at the model's rate?"
            )


def analyze_layers(
    model: AnyModel,
    items: Sequence,
    alignments: Sequence[Alignment],
    *,
    kind: str = "char",
    num_layers: int | None = None,
    include_projection: bool = True,
    n_clusters: int = 50,
    max_frames: int | None = 5000,
    exclude: Sequence[str] = (),
    seed: int = 0,
    device: str | torch.device | None = None,
    batch_size: int = 8,
    sample_rate: int | None = None,
    normalize_waveform: bool | None = None,
    cka: bool = True,
) -> LayerReport:
    """Layer-wise analysis of a small corpus: features, labels, metrics.

    Extracts every layer's features (:func:`aligner.models.features.extract_layer_features`),
    labels each frame from its alignment (:func:`frame_labels`), keeps at
    most ``max_frames`` frames drawn at random over the whole corpus (the
    same frames for every layer), and runs :func:`layerwise_report`. The
    probe is tested on held-out utterances when there are at least two.

    Args:
        model: an AlignmentModel, Wav2Vec2Model or HuBERTPretrainModel.
        items: waveforms at the model's sample rate, each of shape ``(samples,)``.
        alignments: one :class:`~aligner.records.Alignment` per item (e.g.
            from :class:`aligner.Aligner`), same order.
        kind: label kind (see :func:`frame_labels`).
        num_layers: analyse only the first transformer layers.
        include_projection: include the CNN feature projection as layer 0.
        n_clusters: k-means k.
        max_frames: frames analysed (None = all; the probe, k-means and CKA
            costs grow with it).
        exclude: labels whose frames are dropped first (e.g. ``("sil",)``).
        seed: frame sampling, probe and k-means seed.
        device, batch_size, sample_rate, normalize_waveform: see
            :func:`extract_layer_features`.
        cka: compute the CKA matrix.

    Returns:
        a :class:`LayerReport`.
    """
    network = resolve_network(model)
    if sample_rate is None:
        sample_rate = model.sample_rate if isinstance(model, AlignmentModel) else 16000
    waves = _as_waveforms(items, "items")
    alignments = list(alignments)
    if len(alignments) != len(waves):
        raise AlignerError(f"got {len(waves)} items but {len(alignments)} alignments")
    if kind not in LABEL_KINDS:
        raise AlignerError(f"unknown label kind {kind!r}; choose one of {', '.join(LABEL_KINDS)}")
    if max_frames is not None and max_frames < 2:
        raise AlignerError(f"max_frames must be at least 2 (or None), got {max_frames}")
    _check_durations(alignments, waves, sample_rate)
    frames = _check_frames(network, waves)

    frame_seconds = _frame_samples(network) / sample_rate
    labels_per_item = [frame_labels(a, n, frame_seconds, kind) for a, n in zip(alignments, frames)]
    excluded = set(exclude)
    keep_per_item = [
        np.flatnonzero(~np.isin(lab, list(excluded))) if excluded else np.arange(len(lab)) for lab in labels_per_item
    ]
    total = sum(len(k) for k in keep_per_item)
    if total < 2:
        raise AlignerError(f"only {total} frames left to analyse after excluding {sorted(excluded)}")
    chosen = np.arange(total)
    if max_frames is not None and total > max_frames:
        chosen = np.sort(np.random.default_rng(seed).choice(total, size=max_frames, replace=False))
    offsets = np.cumsum([0] + [len(k) for k in keep_per_item])
    picks = [
        keep_per_item[i][chosen[(chosen >= offsets[i]) & (chosen < offsets[i + 1])] - offsets[i]]
        for i in range(len(waves))
    ]

    per_layer: list[list[np.ndarray]] | None = None
    layer_ids: tuple[int, ...] = ()
    labels, groups = [], []
    for start in range(0, len(waves), batch_size):
        group = [i for i in range(start, min(len(waves), start + batch_size)) if len(picks[i])]
        if not group:
            continue
        feats = extract_layer_features(
            model,
            [waves[i] for i in group],
            num_layers=num_layers,
            include_projection=include_projection,
            device=device,
            sample_rate=sample_rate,
            normalize_waveform=normalize_waveform,
            batch_size=batch_size,
        )
        layer_ids = feats.layer_ids
        if per_layer is None:
            per_layer = [[] for _ in layer_ids]
        for index, item_features in zip(group, feats.features):
            for row in range(len(layer_ids)):
                per_layer[row].append(item_features[row, picks[index]].numpy())
            labels.append(labels_per_item[index][picks[index]])
            groups.append(np.full(len(picks[index]), index))
    if per_layer is None:  # cannot happen: at least 2 frames were chosen
        raise RuntimeError("no frames were extracted")
    layer_arrays = [np.concatenate(parts) for parts in per_layer]
    all_groups = np.concatenate(groups)
    name = model.name if isinstance(model, AlignmentModel) else None
    return layerwise_report(
        layer_arrays,
        np.concatenate(labels),
        layer_ids=layer_ids,
        groups=all_groups if len(np.unique(all_groups)) >= 2 else None,
        n_clusters=n_clusters,
        cka=cka,
        seed=seed,
        kind=kind,
        model=name,
    )
