"""The ``aligner`` command: every output format, exit codes and bad input."""

import json
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import parselmouth
import pytest
import soundfile
from click.testing import CliRunner
from praatio import textgrid as praat_textgrid

from aligner.cli import main

TEXT = "Don't, stop 2 believing!"


@pytest.fixture(scope="module")
def speechlike(tmp_path_factory) -> Path:
    """3 s of noise bursts at 22.05 kHz (not the model rate)."""
    rng = np.random.default_rng(0)
    rate = 22050
    envelope = (np.sin(np.linspace(0, 12 * np.pi, 3 * rate)) > 0).astype(np.float32)
    audio = 0.2 * rng.standard_normal(3 * rate).astype(np.float32) * envelope
    path = tmp_path_factory.mktemp("audio") / "speech.wav"
    soundfile.write(path, audio, rate)
    return path


def run(*args):
    result = CliRunner().invoke(main, [str(a) for a in args])
    return result


def _one_line_error(result, *fragments):
    assert result.exit_code == 2, result.output
    lines = [line for line in result.output.splitlines() if line.strip()]
    assert len(lines) == 1 and lines[0].startswith("error: "), result.output
    for fragment in fragments:
        assert fragment in lines[0], lines[0]


def test_textgrid_output_read_by_praatio_and_praat(tmp_path, speechlike, tiny_model_dir):
    out = tmp_path / "out" / "speech.TextGrid"
    result = run("align", speechlike, "--text", TEXT, "-o", out, "--model", tiny_model_dir)
    assert result.exit_code == 0, result.output
    duration = soundfile.info(speechlike).duration

    grid = praat_textgrid.openTextgrid(str(out), includeEmptyIntervals=True)
    assert list(grid.tierNames) == ["words", "chars"]
    assert grid.maxTimestamp == pytest.approx(duration, abs=1e-6)
    words = [entry.label for entry in grid.getTier("words").entries if entry.label]
    assert words == TEXT.split()

    praat = parselmouth.read(str(out))
    assert parselmouth.praat.call(praat, "Get number of tiers") == 2
    assert parselmouth.praat.call(praat, "Get end time") == pytest.approx(duration, abs=1e-6)
    count = parselmouth.praat.call(praat, "Get number of intervals", 1)
    labels = [parselmouth.praat.call(praat, "Get label of interval", 1, i + 1) for i in range(count)]
    assert [label for label in labels if label] == TEXT.split()


@pytest.mark.parametrize("suffix,fmt", [(".json", "json"), (".ctm", "ctm"), (".srt", "srt"), (".vtt", "vtt")])
def test_format_follows_extension(tmp_path, speechlike, tiny_model_dir, suffix, fmt):
    out = tmp_path / f"speech{suffix}"
    result = run("align", speechlike, "--text", TEXT, "-o", out, "--model", tiny_model_dir)
    assert result.exit_code == 0, result.output
    text = out.read_text(encoding="utf-8")
    if fmt == "json":
        data = json.loads(text)
        assert [w["text"] for w in data["words"]] == TEXT.split()
        assert [w["normalized"] for w in data["words"]][0] == "DON'T"
    elif fmt == "ctm":
        assert [line.split()[4] for line in text.splitlines()] == TEXT.split()
    elif fmt == "vtt":
        assert text.startswith("WEBVTT")
    else:
        assert " --> " in text


def test_explicit_format_wins_and_stdout_json(tmp_path, speechlike, tiny_model_dir):
    out = tmp_path / "speech.txt"
    result = run("align", speechlike, "--text", TEXT, "-o", out, "--format", "ctm", "--model", tiny_model_dir)
    assert result.exit_code == 0 and out.read_text().count("\n") == 4
    result = run("align", speechlike, "--text", TEXT, "--model", tiny_model_dir)
    assert result.exit_code == 0
    assert [w["text"] for w in json.loads(result.stdout)["words"]] == TEXT.split()


def test_transcript_file_beside_audio(tmp_path, speechlike, tiny_model_dir):
    audio = tmp_path / "utt.wav"
    audio.write_bytes(speechlike.read_bytes())
    (tmp_path / "utt.lab").write_text("hello world\n", encoding="utf-8")
    result = run("align", audio, "-o", tmp_path / "utt.json", "--model", tiny_model_dir)
    assert result.exit_code == 0, result.output
    assert [w["text"] for w in json.loads((tmp_path / "utt.json").read_text())["words"]] == ["hello", "world"]


def test_unrepresentable_characters_warn_and_keep_the_word(tmp_path, speechlike, tiny_model_dir):
    out = tmp_path / "w.json"
    result = run("align", speechlike, "--text", "pay 5 € now", "-o", out, "--model", tiny_model_dir)
    assert result.exit_code == 0, result.output
    assert "warning:" in result.stderr and "€" in result.stderr
    words = json.loads(out.read_text())["words"]
    assert [w["text"] for w in words] == ["pay", "5", "€", "now"]
    assert [w["aligned"] for w in words] == [True, True, False, True]


# --- bad input: exit code 2, one line naming the file and the problem, no output file ---


@pytest.fixture
def out(tmp_path):
    path = tmp_path / "result.TextGrid"
    yield path
    assert not path.exists(), "a failed run left an output file"
    assert not [p for p in path.parent.iterdir() if p.name.startswith(".")], "temp file left behind"


def test_missing_audio(tmp_path, out, tiny_model_dir):
    _one_line_error(
        run("align", tmp_path / "gone.wav", "--text", "hi", "-o", out, "--model", tiny_model_dir),
        "gone.wav",
        "not found",
    )


def test_corrupt_audio(tmp_path, out, tiny_model_dir):
    bad = tmp_path / "bad.flac"
    bad.write_bytes(b"fLaC" + os.urandom(500))
    _one_line_error(
        run("align", bad, "--text", "hi", "-o", out, "--model", tiny_model_dir), "bad.flac", "cannot decode audio"
    )


def test_zero_length_audio(tmp_path, out, tiny_model_dir):
    empty = tmp_path / "empty.wav"
    soundfile.write(empty, np.zeros(0, np.float32), 16000)
    _one_line_error(
        run("align", empty, "--text", "hi", "-o", out, "--model", tiny_model_dir), "empty.wav", "no samples"
    )


def test_silent_audio(tmp_path, out, tiny_model_dir):
    silent = tmp_path / "silent.wav"
    soundfile.write(silent, np.zeros(32000, np.float32), 16000)
    _one_line_error(run("align", silent, "--text", "hi", "-o", out, "--model", tiny_model_dir), "silent.wav", "silent")


@pytest.mark.parametrize("text", ["", "   \n\t "])
def test_empty_transcript(tmp_path, out, speechlike, tiny_model_dir, text):
    transcript = tmp_path / "t.txt"
    transcript.write_text(text)
    _one_line_error(run("align", speechlike, transcript, "-o", out, "--model", tiny_model_dir), "t.txt", "empty")


def test_no_representable_character(tmp_path, out, speechlike, tiny_model_dir):
    transcript = tmp_path / "sym.txt"
    transcript.write_text("€ … ♪", encoding="utf-8")
    _one_line_error(run("align", speechlike, transcript, "-o", out, "--model", tiny_model_dir), "sym.txt", "represent")


def test_transcript_too_long(tmp_path, out, speechlike, tiny_model_dir):
    transcript = tmp_path / "long.txt"
    transcript.write_text("abracadabra " * 40)
    result = run("align", speechlike, transcript, "-o", out, "--model", tiny_model_dir)
    _one_line_error(result, "long.txt", "too long", "speech.wav is only 3.00 s")
    assert " s of audio" in result.output


def test_non_utf8_transcript(tmp_path, out, speechlike, tiny_model_dir):
    transcript = tmp_path / "latin1.txt"
    transcript.write_bytes("café olé".encode("latin-1"))
    _one_line_error(run("align", speechlike, transcript, "-o", out, "--model", tiny_model_dir), "latin1.txt", "UTF-8")


def test_missing_transcript(tmp_path, out, speechlike, tiny_model_dir):
    _one_line_error(run("align", speechlike, tmp_path / "none.txt", "-o", out, "--model", tiny_model_dir), "none.txt")


def test_unknown_model(tmp_path, out, speechlike):
    _one_line_error(run("align", speechlike, "--text", "hi", "-o", out, "--model", "no_such_model"), "no_such_model")


def test_unknown_extension(tmp_path, speechlike, tiny_model_dir):
    result = run("align", speechlike, "--text", "hi", "-o", tmp_path / "x.docx", "--model", tiny_model_dir)
    _one_line_error(result, "x.docx", "extension")


def test_internal_error_exit_code_1(tmp_path, speechlike, tiny_model_dir, monkeypatch):
    import aligner.viterbi

    def boom(*args, **kwargs):
        raise RuntimeError("kaboom")

    monkeypatch.setattr(aligner.viterbi, "forced_align", boom)  # the pipeline imports it when it runs
    result = run("align", speechlike, "--text", "hi", "-o", tmp_path / "x.json", "--model", tiny_model_dir)
    assert result.exit_code == 1
    assert "internal error: RuntimeError: kaboom" in result.output
    assert not (tmp_path / "x.json").exists()


@pytest.mark.parametrize("fmt,subtype", [("ogg", "VORBIS"), ("mp3", "MPEG_LAYER_III"), ("flac", "PCM_24")])
def test_stereo_and_other_formats(tmp_path, speechlike, tiny_model_dir, fmt, subtype):
    data, rate = soundfile.read(speechlike)
    stereo = np.stack([data, 0.5 * data], axis=1)
    audio = tmp_path / f"stereo.{fmt}"
    soundfile.write(audio, stereo, rate, subtype=subtype)
    out = tmp_path / "stereo.json"
    result = run("align", audio, "--text", "hello there", "-o", out, "--model", tiny_model_dir)
    assert result.exit_code == 0, result.output
    assert len(json.loads(out.read_text())["words"]) == 2


def test_models_command_lists_bundles(tmp_path, monkeypatch):
    import torch

    monkeypatch.setattr(torch.hub, "get_dir", lambda: str(tmp_path))
    result = run("models")
    assert result.exit_code == 0
    assert "WAV2VEC2_ASR_BASE_960H" in result.output and "MMS_FA" in result.output
    row = next(line for line in result.output.splitlines() if line.startswith("MMS_FA"))
    assert row.split()[1] == "no"


def test_console_entry_point_exit_codes(tmp_path, tiny_model_dir):
    """The real process: `python -m aligner` returns 2 and a single line."""
    result = subprocess.run(
        [
            sys.executable,
            "-m",
            "aligner",
            "align",
            str(tmp_path / "missing.wav"),
            "--text",
            "hi",
            "--model",
            str(tiny_model_dir),
        ],
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert result.returncode == 2
    assert result.stderr.strip().count("\n") == 0 and "missing.wav" in result.stderr


def test_bad_audio_reported_before_the_model_is_loaded(tmp_path, out):
    """A missing file is reported as such even when the model is unavailable."""
    _one_line_error(
        run("align", tmp_path / "gone.wav", "--text", "hi", "-o", out, "--model", "no_such_model"),
        "gone.wav",
        "not found",
    )


@pytest.mark.parametrize(
    "args,message",
    [
        (["align-corpus", "in", "out", "--worst", "-1"], "--worst must be >= 0, got -1"),
        (["align-corpus", "in", "out", "--workers", "0"], "--workers must be >= 1, got 0"),
        (["validate", "in", "--workers", "0"], "--workers must be >= 1, got 0"),
        (["layers", "a.wav", "-o", "r", "--max-seconds", "nan"], "--max-seconds must be a finite number, got nan"),
    ],
)
def test_numbers_out_of_range_are_one_line_before_anything_runs(tmp_path, args, message):
    """Range checks are click types: the value is refused while parsing (no
    folder is read, no model loaded), as one ``error:`` line, exit code 2."""
    _one_line_error(run(*args), message)


def test_cli_import_and_help_load_no_heavy_module():
    code = (
        "import sys; from click.testing import CliRunner; from aligner.cli import main; "
        "r = CliRunner(); assert r.invoke(main, ['--help']).exit_code == 0; "
        "assert all(r.invoke(main, [c, '--help']).exit_code == 0 for c in main.commands); "
        "print(sorted(m for m in ('torch', 'torchaudio', 'numpy', 'matplotlib', 'aligner.pipeline') "
        "if m in sys.modules))"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout
    assert out.strip() == "[]"


def test_vtl_warps_option(tmp_path):
    """``--vtl-warps``: the packaged model averaged over three warps; bad
    values are a usage error or one line naming the problem."""
    from aligner import Aligner

    examples = Path(__file__).resolve().parents[1] / "examples"
    audio, text = examples / "example.wav", (examples / "example.txt").read_text()
    out = tmp_path / "warped.json"
    args = ["align", str(audio), str(examples / "example.txt"), "-o", str(out)]
    result = CliRunner().invoke(main, [*args, "--vtl-warps", "0.85,1,1.15"])
    assert result.exit_code == 0, result.output
    expected = Aligner(vtl_warps=(0.85, 1.0, 1.15)).align(audio, text)
    plain = Aligner().align(audio, text)
    got = [(w["start"], w["end"]) for w in json.loads(out.read_text())["words"]]
    assert got == [(round(w.start, 6), round(w.end, 6)) for w in expected.words]
    assert got != [(round(w.start, 6), round(w.end, 6)) for w in plain.words]
    result = CliRunner().invoke(main, [*args, "--vtl-warps", "0.9,x"])
    assert result.exit_code == 2 and "'0.9,x' is not a comma-separated list of numbers" in result.output
    result = CliRunner().invoke(main, [*args, "--vtl-warps", "5"])
    assert result.exit_code != 0 and "number in [0.5, 2.0], not 5.0" in result.output
    assert len(result.output.strip().splitlines()) == 1
