import csv
import math
from functools import partial

import matplotlib

matplotlib.use("Agg")

import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402
import pytest  # noqa: E402
import torch  # noqa: E402

import aligner.analysis  # noqa: E402
from aligner import Aligner  # noqa: E402
from aligner.analysis import (
    LayerReport,
    cka_matrix,
    cluster_metrics,  # noqa: E402
    contingency_metrics,
    frame_labels,
    layerwise_report,
    linear_cka,
    pca_projection,
    probe_accuracy,
)
from aligner.errors import AlignerError, AlignmentError  # noqa: E402
from aligner.records import Alignment, CharSpan, WordSpan  # noqa: E402
from aligner.testing import tiny_model  # noqa: E402
from viz.layers import plot_cka, plot_hubert_accuracy, plot_layer_metrics, plot_projection  # noqa: E402

analyze_layers = partial(aligner.analysis.analyze_layers, device="cpu")


@pytest.fixture(autouse=True)
def _close_figures():
    yield
    plt.close("all")


def _word(text, chars, start=None, end=None):
    spans = tuple(CharSpan(label, a, b, 0.9) for label, a, b in chars)
    start = spans[0].start if start is None else start
    end = spans[-1].end if end is None else end
    return WordSpan(text, text.upper(), start, end, 0.9 if spans else 0.0, spans, bool(spans))


def _alignment(phonetic=False):
    # 10 frames of 0.02 s: "AB" on frames 1-3, an unaligned word on 5-6, "C" on frame 8
    words = (
        _word("ab", [("A", 0.02, 0.04), ("B", 0.04, 0.08)]),
        _word("??", [], 0.10, 0.14),
        _word("c", [("C", 0.16, 0.18)]),
    )
    return Alignment(words, 0.2, 0.02, phonetic=phonetic)


# ------------------------------------------------------------------ frame labels


def test_char_labels_follow_the_spans():
    labels = frame_labels(_alignment(), 10)
    assert labels.tolist() == ["sil", "A", "B", "B", "sil", "unk", "unk", "sil", "C", "sil"]


def test_labels_use_the_frame_centre():
    # a char from 0.03 to 0.07 s: frame 1 [0.02, 0.04) has its centre 0.03 inside,
    # frame 3 [0.06, 0.08) has its centre 0.07 outside (intervals are half-open)
    alignment = Alignment((_word("x", [("X", 0.03, 0.07)]),), 0.1)
    assert frame_labels(alignment, 5).tolist() == ["sil", "X", "X", "sil", "sil"]
    # frames are cut at num_frames, and a different frame size re-grids the labels
    assert frame_labels(alignment, 2).tolist() == ["sil", "X"]
    assert frame_labels(alignment, 3, frame_seconds=0.04).tolist() == ["sil", "X", "sil"]


def test_word_position_and_speech_labels():
    alignment = _alignment()
    assert frame_labels(alignment, 10, kind="word_position").tolist() == [
        "sil",
        "B",
        "I",
        "E",
        "sil",
        "B",
        "E",
        "sil",
        "S",
        "sil",
    ]
    assert frame_labels(alignment, 10, kind="speech").tolist() == [
        "sil",
        "speech",
        "speech",
        "speech",
        "sil",
        "speech",
        "speech",
        "sil",
        "speech",
        "sil",
    ]


def test_phone_labels_need_a_phonetic_alignment():
    assert frame_labels(_alignment(phonetic=True), 10, kind="phone")[1] == "A"
    with pytest.raises(AlignerError, match=r"kind='phone' needs an alignment made by a phonetic model"):
        frame_labels(_alignment(), 10, kind="phone")
    with pytest.raises(AlignerError, match=r"unknown label kind 'word'"):
        frame_labels(_alignment(), 10, kind="word")
    with pytest.raises(AlignerError, match=r"num_frames must be a non-negative integer, got -1"):
        frame_labels(_alignment(), -1)


# ------------------------------------------------------------------ probe


def _structured(n=600, classes=4, dim=16, noise=0.01, seed=0):
    rng = np.random.default_rng(seed)
    labels = rng.integers(0, classes, n)
    mixing = rng.normal(size=(classes, dim))
    features = np.eye(classes)[labels] @ mixing + noise * rng.normal(size=(n, dim))
    return features, np.array([f"c{k}" for k in labels])


def test_probe_reads_a_linear_code_and_not_noise():
    features, labels = _structured()
    good = probe_accuracy(features, labels)
    assert good["accuracy"] >= 0.98
    assert good["train_frames"] + good["test_frames"] == 600 and good["test_frames"] == 150
    assert good["classes"] == 4

    rng = np.random.default_rng(1)
    skewed = np.where(rng.random(600) < 0.6, "a", np.where(rng.random(600) < 0.5, "b", "c"))
    noise = probe_accuracy(rng.normal(size=(600, 8)), skewed)
    assert 0.5 < noise["chance"] < 0.7
    assert abs(noise["accuracy"] - noise["chance"]) <= 0.1


def test_probe_split_by_group_holds_out_whole_groups():
    features, labels = _structured(n=400)
    groups = np.repeat(np.arange(8), 50)
    result = probe_accuracy(features, labels, groups=groups, test_size=0.25)
    assert result["test_frames"] == 100  # 2 whole groups of 50
    assert result["accuracy"] >= 0.98
    with pytest.raises(AlignerError, match=r"needs at least 2 groups"):
        probe_accuracy(features, labels, groups=np.zeros(400))


def test_probe_rejects_mismatched_shapes():
    with pytest.raises(AlignerError, match=r"features have 10 frames, labels have shape \(9,\)"):
        probe_accuracy(np.zeros((10, 3)), np.zeros(9))
    with pytest.raises(AlignerError, match=r"features must be a 2-D array"):
        probe_accuracy(np.zeros(10), np.zeros(10))


# ------------------------------------------------------------------ clustering


def test_pnmi_and_purities_match_a_hand_computed_table():
    # joint counts (rows: labels a, b; columns: clusters 0, 1, 2):
    #   a: 3 1 0
    #   b: 0 1 3
    labels = ["a"] * 4 + ["b"] * 4
    clusters = [0, 0, 0, 1, 1, 2, 2, 2]
    p = np.array([[3, 1, 0], [0, 1, 3]]) / 8
    p_y, p_z = p.sum(1), p.sum(0)
    mutual = sum(p[i, j] * math.log(p[i, j] / (p_y[i] * p_z[j])) for i in range(2) for j in range(3) if p[i, j] > 0)
    entropy = -sum(q * math.log(q) for q in p_y)
    result = contingency_metrics(labels, clusters)
    assert result["pnmi"] == pytest.approx(mutual / entropy)
    assert result["phone_purity"] == pytest.approx((3 + 1 + 3) / 8)  # sum_z max_y p(y, z)
    assert result["cluster_purity"] == pytest.approx((3 + 3) / 8)  # sum_y max_z p(y, z)
    assert contingency_metrics(labels, [0, 0, 0, 0, 1, 1, 1, 1])["pnmi"] == pytest.approx(1.0)
    assert math.isnan(contingency_metrics(["a"] * 4, [0, 1, 0, 1])["pnmi"])


def test_kmeans_finds_separated_clusters_and_nothing_in_noise():
    features, labels = _structured(n=400, noise=0.05)
    clean = cluster_metrics(features * 10, labels, n_clusters=4)
    assert clean["pnmi"] > 0.99 and clean["phone_purity"] > 0.99 and clean["cluster_purity"] > 0.99
    assert clean["n_clusters"] == 4

    rng = np.random.default_rng(2)
    noise = cluster_metrics(rng.normal(size=(400, 8)), labels, n_clusters=4)
    assert noise["pnmi"] < 0.05
    with pytest.raises(AlignerError, match=r"n_clusters=500 is more than the 400 frames"):
        cluster_metrics(features, labels, n_clusters=500)


# ------------------------------------------------------------------ CKA and PCA


def test_linear_cka_invariances():
    rng = np.random.default_rng(3)
    x = rng.normal(size=(200, 10))
    q, _ = np.linalg.qr(rng.normal(size=(10, 10)))
    assert linear_cka(x, x) == pytest.approx(1.0)
    assert linear_cka(x, x @ q) == pytest.approx(1.0)
    assert linear_cka(x, 2 * x + 5.0) == pytest.approx(1.0)
    assert linear_cka(x, rng.normal(size=(200, 10))) < 0.1
    assert linear_cka(x, x[:, :3]) < 0.9  # dropping directions is not invariant
    with pytest.raises(AlignerError, match=r"same frames: 200 vs 100 rows"):
        linear_cka(x, x[:100])


@pytest.mark.parametrize("frames", [12, 200])  # Gram path (N < D) and feature path
def test_cka_matrix_matches_pairwise_cka(frames):
    rng = np.random.default_rng(4)
    base = rng.normal(size=(frames, 30))
    layers = [base, base + 0.5 * rng.normal(size=(frames, 30)), rng.normal(size=(frames, 20))]
    matrix = cka_matrix(layers)
    assert matrix.shape == (3, 3)
    assert np.allclose(matrix, matrix.T) and np.allclose(np.diag(matrix), 1.0)
    for i in range(3):
        for j in range(3):
            assert matrix[i, j] == pytest.approx(linear_cka(layers[i], layers[j]))


def test_pca_projection_keeps_the_main_direction():
    rng = np.random.default_rng(5)
    x = rng.normal(size=(300, 5)) * np.array([10.0, 3.0, 1.0, 1.0, 1.0])
    points = pca_projection(x)
    assert points.shape == (300, 2)
    assert np.var(points[:, 0]) > np.var(points[:, 1]) > 1.0
    assert abs(np.corrcoef(points[:, 0], x[:, 0])[0, 1]) > 0.99
    assert np.array_equal(points, pca_projection(x))
    with pytest.raises(AlignerError, match=r"n_components must be between 1 and 5, got 6"):
        pca_projection(x, 6)


# ------------------------------------------------------------------ reports


def _report():
    features, labels = _structured(n=300)
    noise = np.random.default_rng(6).normal(size=features.shape)
    return layerwise_report([noise, features], labels, layer_ids=[0, 1], n_clusters=4)


def test_layerwise_report_ranks_layers_and_writes_csv(tmp_path):
    report = _report()
    assert report.layers == [0, 1] and len(report) == 2
    noise, good = report.rows
    assert good["probe_accuracy"] >= 0.98 > noise["probe_accuracy"] + 0.3
    assert good["pnmi"] > noise["pnmi"] + 0.5
    assert report.cka.shape == (2, 2) and len(report.projections) == 2
    assert report.projections[1].shape == (300, 2)

    path = report.to_csv(tmp_path / "sub" / "layers.csv")
    with open(path, newline="") as handle:
        rows = list(csv.DictReader(handle))
    assert [int(r["layer"]) for r in rows] == [0, 1]
    assert float(rows[1]["pnmi"]) == pytest.approx(good["pnmi"], rel=1e-5)
    assert list(rows[0])[:4] == ["layer", "frames", "classes", "probe_accuracy"]
    assert not list(tmp_path.joinpath("sub").glob(".*.tmp"))
    with pytest.raises(AlignerError, match=r"no column 'wer'"):
        report.column("wer")


# ------------------------------------------------------------------ end to end


@pytest.fixture(scope="module")
def corpus():
    model = tiny_model()
    generator = torch.Generator().manual_seed(0)
    waves = [0.1 * torch.randn(n, generator=generator) for n in (32000, 24000, 40000)]
    texts = ["hello world", "the cat sat", "a quick brown fox"]
    alignments = Aligner(model, device="cpu").align_batch([((w.numpy(), 16000), text) for w, text in zip(waves, texts)])
    return model, waves, alignments


def test_analyze_layers_end_to_end(corpus):
    model, waves, alignments = corpus
    report = analyze_layers(model, waves, alignments, n_clusters=6, max_frames=150)
    assert isinstance(report, LayerReport)
    assert report.layers == [0, 1, 2] and report.model == "tiny" and report.kind == "char"
    assert len(report.labels) == 150 == report.rows[0]["frames"]
    assert set(report.labels) <= {"sil", "unk"} | set("HELOWRDTCASQUIKBNFX")
    assert set(report.labels) > {"sil"}
    for row in report.rows:
        assert 0 <= row["probe_accuracy"] <= 1 and 0 <= row["pnmi"] <= 1
    assert np.allclose(np.diag(report.cka), 1.0)

    speech = analyze_layers(
        model,
        waves,
        alignments,
        kind="word_position",
        exclude=("sil",),
        num_layers=1,
        include_projection=False,
        max_frames=None,
        n_clusters=3,
        cka=False,
    )
    assert speech.layers == [1] and speech.cka is None
    assert set(speech.labels) <= {"B", "I", "E", "S"}
    total = sum(
        np.count_nonzero(frame_labels(a, n, kind="word_position") != "sil") for a, n in zip(alignments, (99, 74, 124))
    )
    assert len(speech.labels) == total


def test_analyze_layers_checks_its_inputs(corpus):
    model, waves, alignments = corpus
    with pytest.raises(AlignerError, match=r"got 3 items but 2 alignments"):
        analyze_layers(model, waves, alignments[:2])
    with pytest.raises(AlignmentError, match=r"alignments\[0\] is for 2.00 s of audio .* items\[0\] is 1.50 s"):
        analyze_layers(model, [waves[1], waves[0], waves[2]], alignments)


# ------------------------------------------------------------------ plots


def test_plot_layer_metrics_draws_one_line_per_metric():
    report = _report()
    fig, ax = plt.subplots()
    lines = plot_layer_metrics(report, metrics=("probe_accuracy", "pnmi"), ax=ax)
    assert len(lines) == 2 == len(ax.lines)
    assert list(lines[1].get_xdata()) == [0, 1]
    assert list(lines[1].get_ydata()) == report.column("pnmi")
    assert [t.get_text() for t in ax.get_legend().get_texts()] == ["probe_accuracy", "pnmi"]
    defaults = plot_layer_metrics(report.to_dicts(), ax=plt.subplots()[1])
    assert len(defaults) == 5 and defaults[1].get_linestyle() == "--"  # probe_chance dashed
    with pytest.raises(AlignerError, match=r"metric 'wer' is missing for layers \[0, 1\]"):
        plot_layer_metrics(report, metrics=("wer",), ax=ax)


def test_plot_cka_has_heatmap_and_colorbar():
    report = _report()
    fig, ax = plt.subplots()
    mesh, colorbar = plot_cka(report, ax=ax)
    assert np.allclose(np.asarray(mesh.get_array()).reshape(2, 2), report.cka)
    assert colorbar.mappable is mesh and len(fig.axes) == 2
    assert [t.get_text() for t in ax.get_xticklabels()] == ["0", "1"]
    with pytest.raises(AlignerError, match=r"must be square"):
        plot_cka(np.zeros((2, 3)), ax=ax)


def test_plot_projection_points_and_legend():
    rng = np.random.default_rng(7)
    points = rng.normal(size=(100, 2))
    labels = np.array(["a"] * 40 + ["b"] * 30 + ["c"] * 20 + ["d"] * 10)
    fig, ax = plt.subplots()
    artists = plot_projection(points, labels, ax=ax, max_labels=2)
    assert sum(len(a.get_offsets()) for a in artists) == 100
    assert [t.get_text() for t in ax.get_legend().get_texts()] == ["a", "b", "other"]
    assert np.allclose(artists[1].get_offsets(), points[40:70])
    everything = plot_projection(points, labels, ax=plt.subplots()[1])
    assert len(everything) == 4
    with pytest.raises(AlignerError, match=r"one entry per point: 100 points"):
        plot_projection(points, labels[:5], ax=ax)


def test_plot_hubert_accuracy_bars_and_lines():
    fig, ax = plt.subplots()
    (bars,) = plot_hubert_accuracy({"masked": 0.4, "unmasked": 0.7, "masked_frames": 3}, ax=ax)
    assert [b.get_height() for b in bars] == [0.4, 0.7]
    fig, ax = plt.subplots()
    lines = plot_hubert_accuracy(
        {"iter1": {"masked": 0.2, "unmasked": 0.3}, "iter2": {"masked": 0.5, "unmasked": 0.6}}, ax=ax
    )
    assert [line.get_label() for line in lines] == ["masked", "unmasked"]
    assert list(lines[0].get_ydata()) == [0.2, 0.5] and list(lines[1].get_ydata()) == [0.3, 0.6]
    assert [t.get_text() for t in ax.get_xticklabels()] == ["iter1", "iter2"]
    with pytest.raises(AlignerError, match=r"must be a dict with 'masked'"):
        plot_hubert_accuracy([{"unmasked": 0.1}], ax=ax)
