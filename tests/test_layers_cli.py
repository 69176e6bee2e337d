"""``aligner layers``: per-layer metrics and figures of an aligned file or corpus."""

from __future__ import annotations

import csv
import shutil
from pathlib import Path

import numpy as np
import pytest
import soundfile
from click.testing import CliRunner
from PIL import Image

from aligner.cli import main

COLUMNS = [
    "layer",
    "frames",
    "classes",
    "probe_accuracy",
    "probe_chance",
    "phone_purity",
    "cluster_purity",
    "pnmi",
    "n_clusters",
]
FIGURES = ("layer_metrics.png", "cka.png", "projection.png")
TINY_LAYERS = 2  # transformer layers of aligner.testing.tiny_model


def _bursts(path: Path, seconds: float = 2.0, rate: int = 16000, seed: int = 0) -> Path:
    """Noise bursts (a crude stand-in for syllables) written as a WAV file."""
    rng = np.random.default_rng(seed)
    count = int(seconds * rate)
    envelope = (np.sin(np.linspace(0, 8 * np.pi, count)) > 0).astype(np.float32)
    path.parent.mkdir(parents=True, exist_ok=True)
    soundfile.write(path, 0.2 * rng.standard_normal(count).astype(np.float32) * envelope, rate)
    return path


@pytest.fixture(scope="module")
def corpus(tmp_path_factory) -> Path:
    """Three usable utterances in two speaker folders, one undecodable file
    and one audio file without a transcript."""
    root = tmp_path_factory.mktemp("corpus")
    texts = {"spk1/a.wav": "hello there world", "spk1/b.wav": "one two three", "spk2/c.wav": "the cat sat on the mat"}
    for index, (name, text) in enumerate(texts.items()):
        _bursts(root / name, seed=index)
        (root / name).with_suffix(".txt").write_text(text, encoding="utf-8")
    (root / "spk2" / "broken.wav").write_text("not audio", encoding="utf-8")
    (root / "spk2" / "broken.lab").write_text("broken", encoding="utf-8")
    _bursts(root / "spk2" / "untranscribed.wav", seed=9)
    return root


def run(*args):
    return CliRunner().invoke(main, [str(a) for a in args])


def _rows(report: Path) -> list[dict]:
    with open(report / "layers.csv", newline="", encoding="utf-8") as handle:
        reader = csv.DictReader(handle)
        assert reader.fieldnames == COLUMNS
        return list(reader)


def _check_figures(report: Path) -> None:
    for name in FIGURES:
        path = report / name
        assert path.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n", name
        with Image.open(path) as image:
            image.verify()
        with Image.open(path) as image:
            width, height = image.size
            assert width > 200 and height > 200, name
            pixels = np.asarray(image.convert("L"))
            assert pixels.std() > 5, f"{name} is blank"


def test_corpus_report_one_row_per_layer(tmp_path, corpus, tiny_model_dir):
    report = tmp_path / "report"
    result = run("layers", corpus, "-o", report, "--model", tiny_model_dir, "--clusters", 8)
    assert result.exit_code == 0, result.output
    rows = _rows(report)
    assert [int(row["layer"]) for row in rows] == list(range(TINY_LAYERS + 1))
    frames = {int(row["frames"]) for row in rows}
    assert len(frames) == 1  # every layer is measured on the same frames
    # 3 usable files of 2 s at 50 frames per second
    assert frames == {3 * 99}
    for row in rows:
        assert int(row["n_clusters"]) == 8
        for metric in ("probe_accuracy", "probe_chance", "phone_purity", "cluster_purity", "pnmi"):
            assert 0.0 <= float(row[metric]) <= 1.0
    _check_figures(report)
    assert sorted(p.name for p in report.iterdir()) == sorted(("layers.csv",) + FIGURES)  # no temporaries


def test_unusable_files_are_reported_and_skipped(tmp_path, corpus, tiny_model_dir):
    result = run("layers", corpus, "-o", tmp_path / "r", "--model", tiny_model_dir, "--clusters", 4)
    assert result.exit_code == 0, result.output
    skipped = [line for line in result.output.splitlines() if line.startswith("skipped ")]
    assert len(skipped) == 2, result.output
    assert any("untranscribed.wav" in line and "no .txt or .lab" in line for line in skipped)
    assert any("broken.wav" in line and "cannot decode" in line for line in skipped)
    assert "analysed 3 file(s)" in result.output


def test_single_file_with_transcript_beside_it(tmp_path, tiny_model_dir):
    audio = _bursts(tmp_path / "one.wav", seconds=3.0)
    audio.with_suffix(".lab").write_text("a few words here", encoding="utf-8")
    report = tmp_path / "report"
    result = run(
        "layers",
        audio,
        "-o",
        report,
        "--model",
        tiny_model_dir,
        "--layers",
        1,
        "--clusters",
        5,
        "--kind",
        "word_position",
    )
    assert result.exit_code == 0, result.output
    rows = _rows(report)
    assert [int(row["layer"]) for row in rows] == [0, 1]
    assert {int(row["frames"]) for row in rows} == {149}
    # word positions B/I/E/S plus silence: at most 5 classes
    assert 2 <= int(rows[0]["classes"]) <= 5
    _check_figures(report)


def test_single_file_with_explicit_transcript_and_frame_limit(tmp_path, tiny_model_dir):
    audio = _bursts(tmp_path / "clip.flac", seconds=2.0)
    transcript = tmp_path / "elsewhere" / "words.txt"
    transcript.parent.mkdir()
    transcript.write_text("speech or silence", encoding="utf-8")
    report = tmp_path / "report"
    result = run(
        "layers",
        audio,
        transcript,
        "-o",
        report,
        "--model",
        tiny_model_dir,
        "--kind",
        "speech",
        "--max-frames",
        60,
        "--clusters",
        3,
    )
    assert result.exit_code == 0, result.output
    rows = _rows(report)
    assert {int(row["frames"]) for row in rows} == {60}
    assert {int(row["classes"]) for row in rows} <= {1, 2}


def _error(result, *fragments):
    assert result.exit_code == 2, result.output
    lines = [line for line in result.output.splitlines() if line.startswith("error: ")]
    assert len(lines) == 1, result.output
    for fragment in fragments:
        assert fragment in lines[0], lines[0]


def test_missing_path_exits_2(tmp_path, tiny_model_dir):
    result = run("layers", tmp_path / "nothing-here", "-o", tmp_path / "r", "--model", tiny_model_dir)
    _error(result, "nothing-here", "no such audio file or corpus folder")
    assert not (tmp_path / "r").exists()


def test_empty_corpus_exits_2(tmp_path, tiny_model_dir):
    (tmp_path / "corpus" / "speaker").mkdir(parents=True)
    (tmp_path / "corpus" / "speaker" / "notes.txt").write_text("no audio", encoding="utf-8")
    result = run("layers", tmp_path / "corpus", "-o", tmp_path / "r", "--model", tiny_model_dir)
    _error(result, "corpus folder holds no audio files")
    assert not (tmp_path / "r").exists()


def test_corpus_without_transcripts_exits_2(tmp_path, tiny_model_dir):
    _bursts(tmp_path / "corpus" / "a.wav")
    result = run("layers", tmp_path / "corpus", "-o", tmp_path / "r", "--model", tiny_model_dir)
    _error(result, "no audio file has a transcript")


def test_corpus_where_every_file_fails_exits_2(tmp_path, tiny_model_dir):
    folder = tmp_path / "corpus"
    folder.mkdir()
    for name in ("a", "b"):
        (folder / f"{name}.wav").write_bytes(b"RIFF garbage")
        (folder / f"{name}.txt").write_text("words", encoding="utf-8")
    result = run("layers", folder, "-o", tmp_path / "r", "--model", tiny_model_dir)
    _error(result, "none of the 2 files could be aligned")
    assert result.output.count("skipped ") == 2
    assert not (tmp_path / "r").exists()


def test_single_file_without_transcript_exits_2(tmp_path, tiny_model_dir):
    audio = _bursts(tmp_path / "lonely.wav")
    result = run("layers", audio, "-o", tmp_path / "r", "--model", tiny_model_dir)
    _error(result, "lonely.wav", "no transcript given")


def test_single_bad_file_exits_2(tmp_path, tiny_model_dir):
    audio = tmp_path / "bad.wav"
    audio.write_bytes(b"not a wav file")
    audio.with_suffix(".txt").write_text("words", encoding="utf-8")
    result = run("layers", audio, "-o", tmp_path / "r", "--model", tiny_model_dir)
    _error(result, "bad.wav", "cannot decode audio")


def test_too_long_transcript_is_skipped_in_a_corpus(tmp_path, tiny_model_dir):
    folder = tmp_path / "corpus"
    _bursts(folder / "ok.wav")
    (folder / "ok.txt").write_text("fine", encoding="utf-8")
    _bursts(folder / "short.wav", seconds=0.3)
    (folder / "short.txt").write_text("far too many words for a third of a second of audio", encoding="utf-8")
    result = run("layers", folder, "-o", tmp_path / "r", "--model", tiny_model_dir, "--clusters", 3)
    assert result.exit_code == 0, result.output
    assert any(
        "short.txt" in line and "too long" in line for line in result.output.splitlines() if line.startswith("skipped ")
    )
    assert {int(row["frames"]) for row in _rows(tmp_path / "r")} == {99}


def test_long_recordings_are_skipped(tmp_path, tiny_model_dir):
    folder = tmp_path / "corpus"
    _bursts(folder / "long.wav", seconds=3.0)
    (folder / "long.txt").write_text("long", encoding="utf-8")
    result = run("layers", folder, "-o", tmp_path / "r", "--model", tiny_model_dir, "--max-seconds", 2)
    _error(result, "none of the 1 files")
    assert "longer than --max-seconds" in result.output


@pytest.mark.parametrize(
    "option,value,message",
    [
        ("--clusters", "0", "--clusters must be at least 1"),
        ("--layers", "0", "--layers must be at least 1"),
        ("--max-frames", "1", "--max-frames must be at least 2"),
        ("--max-seconds", "0", "--max-seconds must be positive"),
    ],
)
def test_bad_numbers_exit_2(tmp_path, tiny_model_dir, option, value, message):
    audio = _bursts(tmp_path / "a.wav")
    audio.with_suffix(".txt").write_text("words", encoding="utf-8")
    result = run("layers", audio, "-o", tmp_path / "r", "--model", tiny_model_dir, option, value)
    _error(result, message)


def test_too_many_layers_exit_2(tmp_path, tiny_model_dir):
    audio = _bursts(tmp_path / "a.wav")
    audio.with_suffix(".txt").write_text("words", encoding="utf-8")
    result = run("layers", audio, "-o", tmp_path / "r", "--model", tiny_model_dir, "--layers", 7)
    _error(result, "num_layers must be between 1 and 2")


def test_transcript_with_a_corpus_is_a_usage_error(tmp_path, corpus, tiny_model_dir):
    transcript = tmp_path / "t.txt"
    transcript.write_text("words", encoding="utf-8")
    result = run("layers", corpus, transcript, "-o", tmp_path / "r", "--model", tiny_model_dir)
    assert result.exit_code == 2
    assert "TRANSCRIPT is only for a single audio file" in result.output


def test_unknown_model_exits_2(tmp_path):
    audio = _bursts(tmp_path / "a.wav")
    audio.with_suffix(".txt").write_text("words", encoding="utf-8")
    result = run("layers", audio, "-o", tmp_path / "r", "--model", tmp_path / "no-model")
    _error(result, "unknown model")


def test_report_folder_that_is_a_file_exits_2(tmp_path, tiny_model_dir):
    audio = _bursts(tmp_path / "a.wav")
    audio.with_suffix(".txt").write_text("some words", encoding="utf-8")
    blocker = tmp_path / "report"
    blocker.write_text("in the way", encoding="utf-8")
    result = run("layers", audio, "-o", blocker, "--model", tiny_model_dir, "--clusters", 3)
    _error(result, "report", "exists and is not a folder")
    assert blocker.read_text(encoding="utf-8") == "in the way"


def test_real_recordings(tmp_path, speech_dir, tiny_model_dir):
    corpus = tmp_path / "corpus"
    corpus.mkdir()
    names = ("msajc003", "msajc010", "msajc012")
    for name in names:
        for suffix in (".wav", ".txt"):
            shutil.copy(speech_dir / f"{name}{suffix}", corpus / f"{name}{suffix}")
    report = tmp_path / "report"
    result = run("layers", corpus, "-o", report, "--model", tiny_model_dir, "--clusters", 10)
    assert result.exit_code == 0, result.output
    assert "analysed 3 file(s)" in result.output
    rows = _rows(report)
    assert len(rows) == TINY_LAYERS + 1
    # the three recordings are 2.9 to 3.1 s long: about 150 frames each
    assert 430 <= int(rows[0]["frames"]) <= 460
    assert int(rows[0]["classes"]) >= 10  # many letters plus silence
    _check_figures(report)
