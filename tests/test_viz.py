"""Tests of the viz package and the `aligner plot` command (matplotlib Agg)."""

from __future__ import annotations

import io
import itertools
import math

import matplotlib

matplotlib.use("Agg")

import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402
import pytest  # noqa: E402
import torch  # noqa: E402
from matplotlib.figure import Figure  # noqa: E402

import viz  # noqa: E402
from aligner.errors import AlignerError, AlignmentError  # noqa: E402
from aligner.records import Alignment, CharSpan, WordSpan  # noqa: E402

SR = 16000


@pytest.fixture(autouse=True)
def _no_show_and_close(monkeypatch):
    def refuse(*args, **kwargs):
        raise AssertionError("plt.show() must never be called")

    monkeypatch.setattr(plt, "show", refuse)
    rc_before = dict(matplotlib.rcParams)
    yield
    plt.close("all")
    assert dict(matplotlib.rcParams) == rc_before, "rcParams changed"


def _word(text, start, end, labels, score=0.8, aligned=True):
    step = (end - start) / max(len(labels), 1)
    chars = tuple(CharSpan(label, start + k * step, start + (k + 1) * step, score) for k, label in enumerate(labels))
    return WordSpan(text, text.upper(), start, end, score, chars, aligned)


@pytest.fixture
def made() -> Alignment:
    """A hand-made alignment: 4 words on 2 s, one of them unaligned."""
    words = (
        _word("the", 0.10, 0.30, "THE", 0.9),
        _word("cat", 0.30, 0.70, "CAT", 0.4),
        WordSpan("€", "", 0.70, 0.80, 0.0, (), False),
        _word("sat", 1.20, 1.60, "SAT", 0.7),
    )
    return Alignment(words, 2.0)


@pytest.fixture
def audio() -> np.ndarray:
    rng = np.random.default_rng(1)
    t = np.arange(2 * SR) / SR
    return (0.3 * np.sin(2 * np.pi * 220 * t) * (t > 0.1) + 0.01 * rng.standard_normal(t.size)).astype(np.float32)


@pytest.fixture(scope="module")
def realistic():
    """Output of the real pipeline with a tiny random model, plus its emissions."""
    from aligner import Aligner, forced_align
    from aligner.testing import tiny_model
    from aligner.text import normalize_transcript

    model = tiny_model()
    rng = np.random.default_rng(0)
    wave = (0.1 * rng.standard_normal(int(1.2 * SR))).astype(np.float32)
    aligner = Aligner(model, device="cpu")
    text = "a cat sat"
    alignment = aligner.align((wave, SR), text)
    log_probs = aligner.emitter([torch.from_numpy(wave)]).log_probs[0]
    targets, _ = normalize_transcript(text, model.labels).targets(model.separator_id)
    paths, _ = forced_align(log_probs[None], torch.tensor([targets]))
    return dict(model=model, wave=wave, alignment=alignment, log_probs=log_probs, targets=targets, path=paths[0])


def _strings(texts):
    return [t.get_text() for t in texts]


def _segment_xs(collection):
    return [float(seg[0][0]) for seg in collection.get_segments()]


def _render(fig):
    buffer = io.BytesIO()
    fig.savefig(buffer, format="png", dpi=40)
    assert buffer.getvalue().startswith(b"\x89PNG")


# ------------------------------------------------------------ plot_alignment


def test_plot_alignment_content(made, audio):
    result = viz.plot_alignment(audio, SR, made)
    assert len(result.axes) == 4 and result.spectrogram is not None
    assert result.axes == (result.waveform_ax, result.spectrogram_ax, result.words_ax, result.chars_ax)
    # one label per word / char, in order, in the tier axes
    assert _strings(result.words_ax.texts) == ["the", "cat", "€", "sat"]
    assert _strings(result.chars_ax.texts) == list("THECATSAT")
    assert result.words.labels == tuple(result.words_ax.texts)
    # word boundaries: distinct word edges; drawn in every signal panel and the word tier
    expected = [0.10, 0.30, 0.70, 0.80, 1.20, 1.60]
    assert result.words.boundary_times == pytest.approx(expected)
    assert len(result.boundaries) == 2
    for lines in result.boundaries + (result.words.boundaries,):
        assert _segment_xs(lines) == pytest.approx(expected)
    char_edges = sorted({round(t, 9) for c in made.chars for t in (c.start, c.end)})
    assert _segment_xs(result.chars.boundaries) == pytest.approx(char_edges)
    for ax in result.axes:
        assert ax.get_xlim() == pytest.approx((0.0, 2.0))
    assert result.chars_ax.get_ylabel() == "chars" and result.words_ax.get_ylabel() == "words"
    assert result.chars_ax.get_xlabel() == "Time (s)"
    # labels centred in their intervals, clipped to them
    assert [t.get_position()[0] for t in result.words_ax.texts] == pytest.approx([0.2, 0.5, 0.75, 1.4])
    assert all(t.get_clip_on() for t in result.words_ax.texts)
    # score shading for the 3 aligned words, hatching for the unaligned one
    assert len(result.words.patches) == 4
    assert result.words.patches[2].get_hatch() == "///"
    # the waveform line is the audio
    x, y = result.waveform.get_data()
    assert np.asarray(y) == pytest.approx(audio.astype(np.float64))
    assert x[0] == 0.0 and x[-1] == pytest.approx((audio.size - 1) / SR)
    _render(result.figure)


def test_plot_alignment_window(made, audio):
    result = viz.plot_alignment(audio, SR, made, start=0.5, end=1.3)
    assert result.window == (0.5, 1.3)
    for ax in result.axes:
        assert ax.get_xlim() == pytest.approx((0.5, 1.3))
    # "the" (0.1-0.3) ends before the window and is not drawn
    assert _strings(result.words_ax.texts) == ["cat", "€", "sat"]
    # "cat" has C 0.30-0.43, A 0.43-0.57, T 0.57-0.70; "sat" S 1.20-1.33, A 1.33-1.47
    assert _strings(result.chars_ax.texts) == ["A", "T", "S"]
    # labels sit at the centre of the visible part of each interval
    assert [t.get_position()[0] for t in result.words_ax.texts] == pytest.approx([0.6, 0.75, 1.25])
    assert result.words.boundary_times == pytest.approx([0.70, 0.80, 1.20])
    x, _ = result.waveform.get_data()
    assert x[0] == pytest.approx(0.5) and x[-1] == pytest.approx(1.3, abs=2 / SR)
    _render(result.figure)


def test_plot_alignment_window_chars_exact(audio):
    words = (_word("ab", 0.0, 1.0, "AB"), _word("cd", 1.0, 2.0, "CD"))
    result = viz.plot_alignment(audio, SR, Alignment(words, 2.0), start=0.6, end=1.4)
    assert _strings(result.chars_ax.texts) == ["B", "C"]
    assert _segment_xs(result.chars.boundaries) == pytest.approx([1.0])


def test_plot_alignment_without_spectrogram_into_given_figure(made, audio):
    fig = Figure()
    result = viz.plot_alignment(audio, SR, made, spectrogram=False, fig=fig, title="T", scores=False)
    assert result.figure is fig and result.spectrogram_ax is None and result.spectrogram is None
    assert len(fig.axes) == 3 and len(result.boundaries) == 1
    assert result.words.patches[0].get_hatch() == "///" and len(result.words.patches) == 1
    assert fig.get_suptitle() == "T"
    _render(fig)


def test_plot_alignment_into_subfigure_and_stereo_torch(made, audio):
    fig = plt.figure()
    left, right = fig.subfigures(1, 2)
    stereo = torch.from_numpy(np.stack([audio, audio], axis=1))
    result = viz.plot_alignment(stereo, SR, made, fig=right)
    assert result.figure is right and len(right.axes) == 4 and not left.axes
    _, y = result.waveform.get_data()
    assert np.asarray(y) == pytest.approx(audio.astype(np.float64), abs=1e-6)


def test_plot_alignment_phonetic_and_no_chars(audio):
    phones = Alignment((_word("a", 0.1, 0.5, ["ə"]),), 2.0, phonetic=True)
    assert viz.plot_alignment(audio, SR, phones).chars_ax.get_ylabel() == "phones"
    bare = Alignment((WordSpan("a", "A", 0.1, 0.5, math.nan),), 2.0)
    result = viz.plot_alignment(audio, SR, bare, spectrogram=False)
    assert result.chars_ax is None and result.chars is None and len(result.axes) == 2
    assert result.words.patches == ()  # NaN score: no shading
    assert result.words_ax.get_xlabel() == "Time (s)"


def test_plot_alignment_long_audio_envelope(made):
    long_audio = np.random.default_rng(0).standard_normal(SR * 10).astype(np.float32)
    result = viz.plot_alignment(long_audio, SR, Alignment(made.words, 10.0), spectrogram=False)
    assert not hasattr(result.waveform, "get_data")  # min/max envelope, not 160000 points
    assert result.waveform_ax.get_xlim() == pytest.approx((0.0, 10.0))


def test_plot_alignment_real_pipeline(realistic):
    alignment = realistic["alignment"]
    result = viz.plot_alignment(realistic["wave"], SR, alignment)
    assert _strings(result.words_ax.texts) == ["a", "cat", "sat"]
    assert _strings(result.chars_ax.texts) == [c.label for c in alignment.chars]
    assert result.words_ax.get_xlim() == pytest.approx((0, alignment.duration))
    _render(result.figure)


@pytest.mark.parametrize(
    "start,end,message",
    [
        (1.0, 1.0, r"start \(1 s\) must be before end \(1 s\)"),
        (1.5, 0.5, "must be before end"),
        (3.0, None, r"start \(3 s\) must be before end \(2 s\)"),
        (float("nan"), None, "start must be a finite number"),
        ("0", None, "start must be a finite number"),
    ],
)
def test_plot_alignment_bad_window(made, audio, start, end, message):
    with pytest.raises(AlignmentError, match=message):
        viz.plot_alignment(audio, SR, made, start=start, end=end)
    assert not plt.get_fignums()  # nothing created on bad input


def test_plot_alignment_bad_waveform(made):
    with pytest.raises(AlignerError, match="expected shape"):
        viz.plot_alignment(np.zeros((2, 2, 2)), SR, made)
    with pytest.raises(AlignerError, match="sample_rate must be a positive"):
        viz.plot_alignment(np.zeros(100), 0, made)


# ------------------------------------------------------------ plot_emissions


def test_plot_emissions(realistic):
    lp, path = realistic["log_probs"], realistic["path"]
    fig, ax = plt.subplots()
    result = viz.plot_emissions(lp, realistic["model"].labels, path=path, ax=ax)
    assert result.ax is ax
    assert np.asarray(result.image.get_array()) == pytest.approx(lp.double().exp().numpy().T)
    frames = lp.shape[0]
    assert result.image.get_extent() == pytest.approx([0, frames * 0.02, -0.5, lp.shape[1] - 0.5])
    assert np.asarray(result.path.get_ydata()).tolist() == path.tolist()
    assert np.asarray(result.path.get_xdata()) == pytest.approx((np.arange(frames) + 0.5) * 0.02)
    assert result.colorbar is not None and len(fig.axes) == 2
    assert [t.get_text() for t in ax.get_yticklabels()] == list(realistic["model"].labels)
    _render(fig)


def test_plot_emissions_log_scale_no_path_no_colorbar(realistic):
    lp = realistic["log_probs"].numpy()[None]  # (1, T, C) numpy
    fig, ax = plt.subplots()
    result = viz.plot_emissions(
        lp, realistic["model"].labels, ax=ax, colorbar=False, probabilities=False, frame_seconds=0.01
    )
    assert result.path is None and result.colorbar is None and len(fig.axes) == 1
    assert np.asarray(result.image.get_array()) == pytest.approx(np.maximum(lp[0], -30).T, rel=1e-6)
    assert result.image.get_extent()[1] == pytest.approx(lp.shape[1] * 0.01)


def test_plot_emissions_errors(realistic):
    lp, labels = realistic["log_probs"], realistic["model"].labels
    with pytest.raises(AlignmentError, match="28 labels given but log_probs has 29"):
        viz.plot_emissions(lp, labels[:-1])
    with pytest.raises(AlignmentError, match="path has 3 entries but log_probs has"):
        viz.plot_emissions(lp, labels, path=[0, 1, 2])
    with pytest.raises(AlignmentError, match="must lie in"):
        viz.plot_emissions(lp, labels, path=torch.full((lp.shape[0],), 99))
    with pytest.raises(AlignmentError, match="shape"):
        viz.plot_emissions(lp[0], labels)


def test_plot_emissions_uses_current_axes(realistic):
    fig, ax = plt.subplots()
    result = viz.plot_emissions(realistic["log_probs"], realistic["model"].labels, colorbar=False)
    assert result.ax is ax


# --------------------------------------------------------------- trellis


def _brute_force(lp: np.ndarray, targets: list[int], blank: int = 0):
    """Forward scores and best complete-path scores by enumerating every path."""
    frames, labels = lp.shape
    size = len(targets)
    forward = np.full((frames, size), -np.inf)
    through = np.full((frames, size), -np.inf)
    for path in itertools.product(range(labels), repeat=frames):
        tokens, positions, j = [], [], -1
        for t, label in enumerate(path):
            if label != blank and (t == 0 or label != path[t - 1]):
                tokens.append(label)
                j += 1
            positions.append(j)
        prefix_ok = [tokens[: p + 1] == targets[: p + 1] for p in range(len(tokens))]
        score = 0.0
        for t, label in enumerate(path):
            score += lp[t, label]
            j = positions[t]
            if j >= 0 and j < size and all(prefix_ok[: j + 1]):
                forward[t, j] = max(forward[t, j], score)
        if tokens == targets:
            total = sum(lp[t, label] for t, label in enumerate(path))
            for t in range(frames):
                if positions[t] >= 0:
                    through[t, positions[t]] = max(through[t, positions[t]], total)
    return forward, through - through.max()


@pytest.mark.parametrize("targets", [[1, 2], [1, 1], [2, 1, 2]])
def test_trellis_scores_match_brute_force(targets):
    rng = np.random.default_rng(len(targets) * 7 + targets[0])
    lp = torch.log_softmax(torch.from_numpy(rng.standard_normal((6, 3))), dim=-1).numpy()
    forward, relative = _brute_force(lp, targets)
    assert viz.trellis_scores(lp, targets) == pytest.approx(forward)
    assert viz.trellis_scores(lp, targets, kind="relative") == pytest.approx(relative)


def test_token_positions():
    nan = math.nan
    got = viz.token_positions([0, 1, 1, 0, 2, 2, 0, 0], [1, 2])
    assert np.array_equal(got, [nan, 0, 0, 0, 1, 1, 1, 1], equal_nan=True)
    assert viz.token_positions([1, 0, 1], [1, 1]).tolist() == [0, 0, 1]
    with pytest.raises(AlignmentError, match="does not collapse"):
        viz.token_positions([1, 2], [2, 1])
    with pytest.raises(AlignmentError, match="emits 1 tokens but targets has 2"):
        viz.token_positions([1, 1], [1, 1])


def test_plot_trellis(realistic):
    lp, targets, path, labels = (realistic[k] for k in ("log_probs", "targets", "path", "model"))
    labels = labels.labels
    fig, ax = plt.subplots()
    result = viz.plot_trellis(lp, targets, labels, ax=ax)  # computes the Viterbi path itself
    expected = viz.token_positions(path, targets)
    assert np.array_equal(result.positions, expected, equal_nan=True)
    assert np.array_equal(np.asarray(result.path.get_ydata(), dtype=float), expected, equal_nan=True)
    assert result.scores.shape == (lp.shape[0], len(targets))
    assert (
        pytest.approx(np.where(np.isfinite(result.scores), result.scores, np.nan), nan_ok=True)
        == np.ma.getdata(result.image.get_array()).T
    )
    assert result.colorbar is not None and len(fig.axes) == 2
    assert [t.get_text() for t in ax.get_yticklabels()] == [labels[i] for i in targets]
    # on the relative trellis the Viterbi path is the ridge at 0
    relative = viz.plot_trellis(lp, targets, labels, path=path, kind="relative", ax=plt.figure().gca(), colorbar=False)
    frames = np.nonzero(~np.isnan(expected))[0]
    ridge = relative.scores[frames, expected[frames].astype(int)]
    assert ridge == pytest.approx(np.zeros(frames.size), abs=1e-3)
    assert relative.colorbar is None
    _render(fig)


def test_trellis_errors(realistic):
    lp, labels = realistic["log_probs"], realistic["model"].labels
    with pytest.raises(AlignmentError, match="contains the blank id 0"):
        viz.trellis_scores(lp, [3, 0, 4])
    with pytest.raises(AlignmentError, match="too few"):
        viz.trellis_scores(lp[:2], [3, 4, 5])
    with pytest.raises(AlignmentError, match="kind must be one of"):
        viz.trellis_scores(lp, [3], kind="backward")
    with pytest.raises(AlignmentError, match="does not collapse"):
        viz.plot_trellis(lp, [3, 4], labels, path=torch.full((lp.shape[0],), 5))


# ------------------------------------------------------------ confidence


def test_plot_confidence(made):
    fig, ax = plt.subplots()
    result = viz.plot_confidence(made, ax=ax, threshold=0.5, colorbar=True)
    assert result.ax is ax
    assert [bar.get_height() for bar in result.bars] == pytest.approx([0.9, 0.4, 0.0, 0.7])
    assert [t.get_text() for t in ax.get_xticklabels()] == ["the", "cat", "€", "sat"]
    assert list(result.unaligned.get_xdata()) == [2]
    assert list(result.threshold.get_ydata()) == [0.5, 0.5]
    # only "cat" is an aligned word below the threshold: red outline
    edges = [matplotlib.colors.to_hex(bar.get_edgecolor()) for bar in result.bars]
    assert [e == "#ff0000" for e in edges] == [False, True, False, False]
    assert result.colorbar is not None and len(fig.axes) == 2
    _render(fig)


def test_plot_confidence_defaults_and_errors(realistic):
    fig, ax = plt.subplots()
    alignment = realistic["alignment"]
    result = viz.plot_confidence(alignment)
    assert result.ax is ax and result.threshold is None and result.unaligned is None
    assert [bar.get_height() for bar in result.bars] == pytest.approx([w.score for w in alignment.words])
    with pytest.raises(AlignerError, match="threshold must be a score between 0 and 1"):
        viz.plot_confidence(alignment, threshold=2)


# ------------------------------------------------------------ comparison


@pytest.fixture
def pair() -> tuple[Alignment, Alignment]:
    hyp = Alignment(
        (
            _word("The", 0.10, 0.30, "THE"),
            _word("cat,", 0.30, 0.62, "CAT"),
            WordSpan("sat", "SAT", 0.62, 0.62, 0.0, (), False),
            _word("down", 1.00, 1.40, "DOWN"),
            _word("extra", 1.5, 1.7, "EXTRA"),
        ),
        2.0,
    )
    ref = Alignment(
        (
            _word("the", 0.12, 0.31, "ðə"),
            _word("Cat", 0.31, 0.66, "kæt"),
            _word("sat", 0.66, 0.95, "sæt"),
            _word("down", 0.98, 1.45, "daʊn"),
        ),
        2.0,
    )
    return hyp, ref


def test_boundary_differences(pair):
    hyp, ref = pair
    result = viz.boundary_differences(hyp, ref)
    assert result.words == ("The", "cat,", "down")
    assert result.alignment_index == (0, 1, 3) and result.reference_index == (0, 1, 3)
    assert result.start_ms == pytest.approx((-20.0, -10.0, 20.0))
    assert result.end_ms == pytest.approx((-10.0, -40.0, -50.0))
    assert result.count == 3
    assert result.unmatched_alignment == 2 and result.unmatched_reference == 1
    assert result.mae_ms == pytest.approx(150 / 6)
    assert result.median_ms == pytest.approx(20.0)
    assert result.within_20ms == pytest.approx(400 / 6)
    assert result.within_50ms == pytest.approx(100.0)
    assert result.summary().startswith("3 words: MAE 25.0 ms, median 20.0 ms, 67% ≤ 20 ms, 100% ≤ 50 ms")


def test_boundary_differences_no_match(pair):
    hyp, _ = pair
    other = Alignment((_word("zebra", 0.1, 0.2, "Z"),), 1.0)
    result = viz.boundary_differences(hyp, other)
    assert result.count == 0 and math.isnan(result.mae_ms) and math.isnan(result.within_20ms)
    assert result.summary() == "no word matched (5 vs 1 words)"


def test_plot_comparison(pair):
    hyp, ref = pair
    result = viz.plot_comparison(hyp, ref)
    assert len(result.figure.axes) == 3
    assert _strings(result.alignment_ax.texts) == ["The", "cat,", "sat", "down", "extra"]
    assert _strings(result.reference_ax.texts) == ["the", "Cat", "sat", "down"]
    assert list(result.starts.markerline.get_xdata()) == pytest.approx([0.12, 0.31, 0.98])
    assert list(result.starts.markerline.get_ydata()) == pytest.approx([-20.0, -10.0, 20.0])
    assert list(result.ends.markerline.get_xdata()) == pytest.approx([0.31, 0.66, 1.45])
    assert list(result.ends.markerline.get_ydata()) == pytest.approx([-10.0, -40.0, -50.0])
    assert result.figure.get_suptitle() == result.comparison.summary()
    for ax in result.figure.axes:
        assert ax.get_xlim() == pytest.approx((0.0, 2.0))
    _render(result.figure)


def test_plot_comparison_window_chars_and_figure(pair):
    hyp, ref = pair
    fig = Figure()
    result = viz.plot_comparison(hyp, ref, tier="chars", start=0.5, end=1.2, fig=fig, names=("auto", "human"))
    assert result.figure is fig and result.window == (0.5, 1.2)
    assert result.reference_ax.get_xlim() == pytest.approx((0.5, 1.2))
    # "Cat" 0.31-0.66: k ends at 0.43; "down" 0.98-1.45: d 0.98-1.10, a 1.10-1.22, ʊ from 1.22
    assert _strings(result.reference_ax.texts) == ["æ", "t", "s", "æ", "t", "d", "a"]
    assert result.reference_ax.get_ylabel() == "human\nchars"
    assert list(result.starts.markerline.get_ydata()) == pytest.approx([20.0])  # only "down" starts inside
    assert list(result.ends.markerline.get_ydata()) == pytest.approx([-40.0])  # only "cat" ends inside
    assert result.comparison.count == 3  # the summary covers the whole recordings
    with pytest.raises(AlignerError, match="tier must be"):
        viz.plot_comparison(hyp, ref, tier="syllables")


def test_plot_comparison_with_human_textgrid(speech_dir, realistic):
    from aligner.readers import read_textgrid

    path = speech_dir / "mary.TextGrid"
    if not path.exists():
        pytest.skip(f"{path} not present")
    reference = read_textgrid(path)
    result = viz.plot_comparison(realistic["alignment"], reference)
    assert _strings(result.reference_ax.texts) == ["mary", "rolled", "the", "barrel"]
    assert result.comparison.count == 0  # different words: nothing to compare, still drawn
    _render(result.figure)


# ------------------------------------------------------------------ CLI


@pytest.fixture
def cli_files(tmp_path, made, audio):
    import soundfile

    from aligner.writers import write_alignment

    wav = tmp_path / "speech.wav"
    soundfile.write(wav, audio, SR)
    grid = write_alignment(made, tmp_path / "speech.TextGrid")
    return wav, grid


def _invoke(*args):
    from click.testing import CliRunner

    from aligner.cli import main

    return CliRunner().invoke(main, [str(a) for a in args])


def test_cli_plot_writes_png(tmp_path, cli_files):
    from PIL import Image

    wav, grid = cli_files
    out = tmp_path / "figs" / "speech.png"
    result = _invoke(
        "plot", wav, grid, "-o", out, "--width", 6, "--height", 4, "--dpi", 50, "--start", 0.2, "--end", 1.5
    )
    assert result.exit_code == 0, result.output
    with Image.open(out) as image:
        assert image.format == "PNG" and image.size == (300, 200)
    assert sorted(p.name for p in out.parent.iterdir()) == ["speech.png"]  # no temporary file left


def test_cli_plot_no_spectrogram_pdf(tmp_path, cli_files):
    wav, grid = cli_files
    out = tmp_path / "speech.pdf"
    result = _invoke("plot", wav, grid, "-o", out, "--no-spectrogram")
    assert result.exit_code == 0, result.output
    assert out.read_bytes().startswith(b"%PDF")


@pytest.mark.parametrize(
    "change,message",
    [
        ("missing_audio", "audio file not found"),
        ("missing_grid", "TextGrid file not found"),
        ("bad_grid", "not a Praat TextGrid"),
        ("window", r"--start \(1.5 s\) must be before --end \(0.5 s\)"),
        ("late_start", r"start \(5 s\) must be before end \(2 s\)"),
        ("tier", "no tier named 'nope'"),
        ("extension", "unknown figure extension"),
    ],
)
def test_cli_plot_bad_input_exit_2(tmp_path, cli_files, change, message):
    wav, grid = cli_files
    out = tmp_path / "out.png"
    args = ["plot", wav, grid, "-o", out]
    if change == "missing_audio":
        args[1] = tmp_path / "none.wav"
    elif change == "missing_grid":
        args[2] = tmp_path / "none.TextGrid"
    elif change == "bad_grid":
        bad = tmp_path / "bad.TextGrid"
        bad.write_text("not a textgrid at all\n")
        args[2] = bad
    elif change == "window":
        args += ["--start", 1.5, "--end", 0.5]
    elif change == "late_start":
        args += ["--start", 5]
    elif change == "tier":
        args += ["--words-tier", "nope"]
    elif change == "extension":
        args[4] = tmp_path / "out.gif"
    result = _invoke(*args)
    assert result.exit_code == 2, result.output
    lines = result.output.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("error: ")
    assert __import__("re").search(message, lines[0]), lines[0]
    assert not out.exists() and not list(tmp_path.glob(".*.tmp"))
