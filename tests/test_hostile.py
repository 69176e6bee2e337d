"""Hostile input: outputs onto inputs, devices, symlinks, closed
standard output, colliding corpus outputs, malicious checkpoints, control
characters and markup in transcripts, wrong argument types."""

from __future__ import annotations

import json
import os
import stat
import subprocess
import sys
import threading
from pathlib import Path

import click
import numpy as np
import pytest
import soundfile
import torch
import torchaudio
from click.testing import CliRunner

import aligner
from aligner.atomic import atomic_write_text, same_file
from aligner.cli import main
from aligner.corpus.align import FAILURES_FILE
from aligner.errors import AlignerError, AudioError, ModelError, OutputError, TranscriptError
from aligner.models.loading import load_model
from aligner.writers import FORMATS, SUFFIXES

TEXT = "the cat sat on the mat"
BASE_CHECKPOINT = torchaudio.pipelines.WAV2VEC2_ASR_BASE_960H._path


def _noise(seconds: float, rate: int = 16000, seed: int = 0) -> np.ndarray:
    rng = np.random.default_rng(seed)
    n = int(seconds * rate)
    envelope = (np.sin(np.linspace(0, 9 * np.pi, n)) > 0).astype(np.float32)
    return 0.2 * rng.standard_normal(n).astype(np.float32) * envelope


@pytest.fixture
def pair(tmp_path) -> tuple[Path, Path]:
    """``data/a.wav`` and its transcript ``data/a.txt``."""
    folder = tmp_path / "data"
    folder.mkdir()
    audio = folder / "a.wav"
    soundfile.write(audio, _noise(2.0), 16000)
    transcript = folder / "a.txt"
    transcript.write_text(TEXT + "\n", encoding="utf-8")
    return audio, transcript


def run(*args):
    return CliRunner().invoke(main, [str(a) for a in args])


def _snapshot(path: Path) -> tuple[bytes, int, int]:
    info = os.stat(path)
    return path.read_bytes(), info.st_ino, info.st_mtime_ns


def _one_line_error(result, *fragments, code: int = 2) -> str:
    assert result.exit_code == code, result.output
    lines = [line for line in result.output.splitlines() if line.strip()]
    assert len(lines) == 1 and lines[0].startswith("error: "), result.output
    for fragment in fragments:
        assert fragment in lines[0], lines[0]
    return lines[0]


# ---------------------------------------------------------------------------
# 1. an output never overwrites an input
# ---------------------------------------------------------------------------


@pytest.mark.parametrize("which", ["audio", "transcript"])
def test_output_onto_an_input_is_refused(pair, tiny_model_dir, which):
    audio, transcript = pair
    target = audio if which == "audio" else transcript
    before = {p: _snapshot(p) for p in pair}
    result = run("align", audio, transcript, "-o", target, "--format", "json", "--model", tiny_model_dir)
    _one_line_error(result, str(target), "is the input file", "refusing to overwrite")
    assert {p: _snapshot(p) for p in pair} == before
    assert sorted(p.name for p in audio.parent.iterdir()) == ["a.txt", "a.wav"]  # no stray temporary file


def test_output_onto_an_input_through_a_symlinked_folder(pair, tiny_model_dir, tmp_path):
    audio, transcript = pair
    link = tmp_path / "link"
    link.symlink_to(audio.parent, target_is_directory=True)
    before = {p: _snapshot(p) for p in pair}
    for target in (link / "a.wav", link / "a.txt", link / ".." / "data" / "a.txt"):
        result = run("align", audio, transcript, "-o", target, "-f", "json", "--model", tiny_model_dir)
        _one_line_error(result, str(target), "is the input file")
    # the transcript found beside the audio is an input too
    result = run("align", audio, "-o", link / "a.txt", "-f", "json", "--model", tiny_model_dir)
    _one_line_error(result, "a.txt", "is the input file")
    assert {p: _snapshot(p) for p in pair} == before


def test_output_onto_a_hard_link_of_an_input_is_refused(pair, tiny_model_dir, tmp_path):
    audio, transcript = pair
    hard = tmp_path / "copy.json"
    os.link(audio, hard)
    assert same_file(hard, audio)
    before = _snapshot(audio)
    result = run("align", audio, transcript, "-o", hard, "--model", tiny_model_dir)
    _one_line_error(result, str(hard), str(audio))
    assert _snapshot(audio) == before


def test_write_alignment_refuses_the_audio_it_aligned(pair, tiny_model_dir):
    audio, transcript = pair
    alignment = aligner.align(audio, transcript, tiny_model_dir, device="cpu")
    before = _snapshot(audio)
    with pytest.raises(OutputError, match=r"a\.wav: output file is the input file .*a\.wav"):
        aligner.write_alignment(alignment, audio, "json")
    assert _snapshot(audio) == before


def test_corpus_output_folder_equal_to_corpus_never_overwrites_a_human_textgrid(pair, tiny_model_dir):
    audio, _ = pair
    corpus = audio.parent
    human = corpus / "a.TextGrid"
    human.write_text("human TextGrid, not ours\n", encoding="utf-8")
    before = _snapshot(human)
    result = run(
        "align-corpus", corpus, corpus, "-f", "textgrid", "-f", "json", "--overwrite", "--model", tiny_model_dir, "-q"
    )
    assert result.exit_code == 3, result.output
    assert _snapshot(human) == before
    rows = (corpus / FAILURES_FILE).read_text(encoding="utf-8").splitlines()
    assert rows[0] == "file\tstage\tmessage"
    assert len(rows) == 2 and rows[1].startswith("a.wav\toutput\t") and "is the input file" in rows[1]
    assert not (corpus / "a.json").exists()


# ---------------------------------------------------------------------------
# 2. symlinks, devices and FIFOs as outputs
# ---------------------------------------------------------------------------


def test_dev_null_stays_a_device(pair, tiny_model_dir):
    audio, transcript = pair
    result = run("align", audio, transcript, "-o", "/dev/null", "-f", "json", "--model", tiny_model_dir)
    assert result.exit_code == 0, result.output
    assert stat.S_ISCHR(os.stat("/dev/null").st_mode)


@pytest.mark.skipif(not os.path.exists("/dev/full"), reason="no /dev/full")
def test_dev_full_fails_with_no_space_left(pair, tiny_model_dir):
    audio, transcript = pair
    result = run("align", audio, transcript, "-o", "/dev/full", "-f", "json", "--model", tiny_model_dir)
    _one_line_error(result, "/dev/full", "No space left")
    assert stat.S_ISCHR(os.stat("/dev/full").st_mode)
    with pytest.raises(OutputError, match="No space left"):
        atomic_write_text("/dev/full", "x" * 100)


def test_symlink_output_rewrites_its_target_and_stays_a_link(pair, tiny_model_dir, tmp_path):
    audio, transcript = pair
    real = tmp_path / "real" / "out.json"
    real.parent.mkdir()
    real.write_text("old\n", encoding="utf-8")
    os.chmod(real, 0o640)
    link = tmp_path / "link.json"
    link.symlink_to(real)
    result = run("align", audio, transcript, "-o", link, "--model", tiny_model_dir)
    assert result.exit_code == 0, result.output
    assert link.is_symlink() and os.readlink(link) == str(real)
    assert [w["text"] for w in json.loads(real.read_text(encoding="utf-8"))["words"]] == TEXT.split()
    assert stat.S_IMODE(os.stat(real).st_mode) == 0o640
    assert sorted(p.name for p in real.parent.iterdir()) == ["out.json"]

    dangling = tmp_path / "dangling.ctm"
    dangling.symlink_to(tmp_path / "real" / "new.ctm")
    atomic_write_text(dangling, "x\n")
    assert dangling.is_symlink() and (tmp_path / "real" / "new.ctm").read_text() == "x\n"


def test_fifo_is_written_through_not_replaced(tmp_path):
    fifo = tmp_path / "pipe"
    os.mkfifo(fifo)
    received = []
    reader = threading.Thread(target=lambda: received.append(fifo.read_bytes()))
    reader.start()
    atomic_write_text(fifo, "through the pipe\n")
    reader.join(timeout=30)
    assert received == [b"through the pipe\n"]
    assert stat.S_ISFIFO(os.lstat(fifo).st_mode)
    assert sorted(p.name for p in tmp_path.iterdir()) == ["pipe"]


# ---------------------------------------------------------------------------
# 3. closed standard output
# ---------------------------------------------------------------------------


def test_closed_stdout_is_an_error(pair, tiny_model_dir):
    audio, transcript = pair
    command = f"exec {sys.executable!s} -m aligner align {audio} {transcript} --model {tiny_model_dir} >&-"
    result = subprocess.run(
        ["bash", "-c", command], capture_output=False, stderr=subprocess.PIPE, text=True, timeout=300
    )
    assert result.returncode in (1, 2), result.stderr
    assert "standard output" in result.stderr


# ---------------------------------------------------------------------------
# 4. corpus files whose outputs would collide
# ---------------------------------------------------------------------------


def test_corpus_outputs_that_would_collide_are_reported_not_overwritten(tmp_path, tiny_model_dir):
    corpus = tmp_path / "corpus"
    corpus.mkdir()
    soundfile.write(corpus / "dup.wav", _noise(1.5, seed=1), 16000)
    soundfile.write(corpus / "dup.flac", _noise(1.5, seed=2), 16000)
    (corpus / "dup.txt").write_text("shared words\n", encoding="utf-8")
    soundfile.write(corpus / "ok.wav", _noise(1.5, seed=3), 16000)
    (corpus / "ok.txt").write_text("fine words\n", encoding="utf-8")
    out = tmp_path / "out"
    for _ in range(2):  # the same on a second run: never "skipped", never overwritten
        result = run("align-corpus", corpus, out, "-f", "textgrid", "-f", "json", "--model", tiny_model_dir, "-q")
        assert result.exit_code == 3, result.output
        assert not (out / "dup.TextGrid").exists() and not (out / "dup.json").exists()
        assert (out / "ok.TextGrid").is_file() and (out / "ok.json").is_file()
        rows = [line.split("\t") for line in (out / FAILURES_FILE).read_text(encoding="utf-8").splitlines()]
        assert [row[:2] for row in rows[1:]] == [["dup.flac", "output"], ["dup.wav", "output"]]
        for row in rows[1:]:
            assert "dup.flac" in row[2] and "dup.wav" in row[2] and "several audio files" in row[2]


# ---------------------------------------------------------------------------
# 5. checkpoints never execute code
# ---------------------------------------------------------------------------


class _Payload:
    """Unpickling this creates the file ``marker`` (as arbitrary code could)."""

    def __init__(self, marker: str):
        self.marker = marker

    def __reduce__(self):
        return (open, (self.marker, "w"))


@pytest.fixture
def hub_dir(tmp_path, monkeypatch) -> Path:
    monkeypatch.setattr(torch.hub, "_hub_dir", torch.hub._hub_dir)
    folder = tmp_path / "hub"
    torch.hub.set_dir(str(folder))

    def fail(url, *args, **kwargs):
        pytest.fail(f"download attempted: {url}")

    monkeypatch.setattr(torch.hub, "download_url_to_file", fail)
    return folder


def test_malicious_bundle_checkpoint_is_refused_and_never_runs(hub_dir, tmp_path, pair):
    marker = tmp_path / "pwned"
    checkpoint = hub_dir / "checkpoints" / BASE_CHECKPOINT
    checkpoint.parent.mkdir(parents=True)
    torch.save({"weights": _Payload(str(marker))}, checkpoint)

    with pytest.raises(ModelError, match=r"WAV2VEC2_ASR_BASE_960H.*corrupt or does not match"):
        load_model("WAV2VEC2_ASR_BASE_960H")
    assert not marker.exists()

    audio, transcript = pair
    result = run("align", audio, transcript, "-o", tmp_path / "out.json", "--model", "WAV2VEC2_ASR_BASE_960H")
    _one_line_error(result, str(checkpoint), "WAV2VEC2_ASR_BASE_960H")
    assert not marker.exists() and not (tmp_path / "out.json").exists()

    # the payload is real: an unrestricted unpickler would have run it
    torch.load(checkpoint, weights_only=False)
    assert marker.exists()


# ---------------------------------------------------------------------------
# 6. control characters and markup in labels
# ---------------------------------------------------------------------------


HOSTILE = "the \x00cat\x1b[31m sat <script>alert</script> & <i>mat</i>"


@pytest.mark.parametrize("fmt", FORMATS)
def test_control_characters_and_markup_never_reach_outputs(pair, tiny_model_dir, tmp_path, fmt):
    audio, _ = pair
    out = tmp_path / f"out{SUFFIXES[fmt]}"
    result = run("align", audio, "--text", HOSTILE, "-o", out, "--model", tiny_model_dir)
    assert result.exit_code == 0, result.output
    data = out.read_bytes()
    assert not any(byte < 0x20 and byte not in b"\n\t\r" for byte in data), data
    assert b"\x1b" not in data and b"\x00" not in data
    text = data.decode("utf-8")
    if fmt in ("srt", "vtt"):
        assert "<script>" not in text and "<i>mat</i>" not in text
        assert "&lt;script&gt;alert&lt;/script&gt;" in text and " &amp; " in text
    else:
        assert "<script>alert</script>" in text  # plain text formats keep the word as written
    if fmt == "json":
        words = [w["text"] for w in json.loads(text)["words"]]
        assert words == ["the", "cat", "[31m", "sat", "<script>alert</script>", "&", "<i>mat</i>"]


def test_writers_strip_control_characters_from_hand_made_alignments(pair, tiny_model_dir, tmp_path):
    from dataclasses import replace

    audio, transcript = pair
    alignment = aligner.align(audio, transcript, tiny_model_dir, device="cpu")
    words = [replace(w, text=f"{w.text}\x00\x07<b>") for w in alignment.words]
    hostile = replace(alignment, words=words)
    for fmt in FORMATS:
        out = aligner.write_alignment(hostile, tmp_path / f"x{SUFFIXES[fmt]}")
        data = out.read_bytes()
        assert b"\x00" not in data and b"\x07" not in data, fmt
        if fmt in ("srt", "vtt"):
            assert b"<b>" not in data and b"&lt;b&gt;" in data


# ---------------------------------------------------------------------------
# 7. wrong argument types raise the package's errors
# ---------------------------------------------------------------------------


def test_api_none_arguments_raise_package_errors(pair, tiny_model_dir, tmp_path):
    audio, transcript = pair
    with pytest.raises(TranscriptError, match="transcript of .*a.wav must be the text .*not NoneType"):
        aligner.align(audio, None)
    with pytest.raises(AudioError, match="audio must be a file path .*not NoneType"):
        aligner.align(None, TEXT)
    with pytest.raises(OutputError, match="needs an Alignment .*not NoneType"):
        aligner.write_alignment(None, tmp_path / "x.json")
    alignment = aligner.align(audio, transcript, tiny_model_dir, device="cpu")
    with pytest.raises(OutputError, match="output path must be a str or path, not NoneType"):
        aligner.write_alignment(alignment, None)
    with pytest.raises(TranscriptError, match="not int"):
        aligner.Aligner(tiny_model_dir, device="cpu").align(audio, 3)
    for error in (TranscriptError, AudioError, OutputError, ModelError):
        assert issubclass(error, AlignerError)


# ---------------------------------------------------------------------------
# audio that is not a regular file, corrupt sample rates, array layouts
# ---------------------------------------------------------------------------


def test_a_fifo_as_audio_is_refused_without_hanging(pair, tiny_model_dir, tmp_path):
    fifo = tmp_path / "f.wav"
    os.mkfifo(fifo)
    result = subprocess.run(
        [
            sys.executable,
            "-m",
            "aligner",
            "align",
            str(fifo),
            str(pair[1]),
            "--model",
            str(tiny_model_dir),
            "-o",
            str(tmp_path / "out.json"),
        ],
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert result.returncode == 2, result.stderr
    assert "f.wav: is not a regular file" in result.stderr
    assert not (tmp_path / "out.json").exists()


def test_an_impossible_sample_rate_is_named(pair, tiny_model_dir, tmp_path):
    audio = tmp_path / "huge_rate.wav"
    data = bytearray(pair[0].read_bytes())
    assert data[:4] == b"RIFF" and data[12:16] == b"fmt "
    data[24:28] = (4294967295).to_bytes(4, "little")  # the fmt chunk's sample rate
    audio.write_bytes(bytes(data))
    result = run("align", audio, pair[1], "--model", tiny_model_dir, "-o", tmp_path / "o.json")
    if result.exit_code == 2 and "cannot decode" in result.output:
        pytest.skip("libsndfile refuses this header outright (also a clean error)")
    _one_line_error(result, "huge_rate.wav", "impossible sample rate 4294967295 Hz")


@pytest.mark.parametrize("rate", [0, 10, 10**7])
def test_in_memory_impossible_rates(rate):
    from aligner.audio import prepare_waveform

    with pytest.raises(AudioError, match=f"impossible sample rate {rate} Hz"):
        prepare_waveform(_noise(1.0), rate, 16000)


def test_channels_first_arrays_are_read_as_torchaudio_lays_them_out():
    from aligner.audio import prepare_waveform

    stereo = np.stack([_noise(1.0, seed=1), _noise(1.0, seed=2)])  # (2, N), torchaudio.load's layout
    first = prepare_waveform(stereo, 16000, 16000)
    last = prepare_waveform(stereo.T, 16000, 16000)  # (N, 2)
    assert first.shape == (16000,) and torch.equal(first, last)
    assert torch.equal(prepare_waveform(torch.from_numpy(stereo), 16000, 16000), last)


# ---------------------------------------------------------------------------
# model folders that lie about their size, or nest JSON without end
# ---------------------------------------------------------------------------


def test_a_config_claiming_a_huge_network_fails_before_allocating(tiny_model_dir, tmp_path):
    import shutil

    folder = tmp_path / "huge"
    shutil.copytree(tiny_model_dir, folder)
    config = json.loads((folder / "aligner_model.json").read_text())
    config["architecture"].update(
        encoder_embed_dim=4096, encoder_num_layers=48, encoder_ff_interm_features=16384, encoder_num_heads=16
    )
    (folder / "aligner_model.json").write_text(json.dumps(config))
    # ~10 GiB of float32 weights if it were built: limit the address space to make that fatal
    code = (
        "import resource; resource.setrlimit(resource.RLIMIT_AS, (6 * 2**30, 6 * 2**30)); "
        f"import aligner; aligner.load_model({str(folder)!r})"
    )
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=300)
    assert result.returncode != 0
    assert "ModelError" in result.stderr and "do not match the model architecture" in result.stderr, result.stderr
    assert "MemoryError" not in result.stderr  # failed on the shape check, not on allocation


def test_deeply_nested_model_json_is_a_model_error(tmp_path):
    folder = tmp_path / "nested"
    folder.mkdir()
    (folder / "aligner_model.json").write_text("[" * 100000 + "]" * 100000)
    with pytest.raises(ModelError, match="nested too deeply"):
        load_model(folder)
    soundfile.write(tmp_path / "x.wav", _noise(1.0), 16000)
    result = run("align", tmp_path / "x.wav", "--text", "hi", "--model", folder)
    _one_line_error(result, "nested too deeply")


# ---------------------------------------------------------------------------
# output paths the system cannot create: exit 2, one line
# ---------------------------------------------------------------------------


def test_an_output_name_too_long_is_bad_output(pair, tiny_model_dir, tmp_path):
    result = run("align", pair[0], pair[1], "--model", tiny_model_dir, "-o", tmp_path / ("x" * 300 + ".json"))
    _one_line_error(result, "File name too long")


@pytest.mark.parametrize("where", ["a_file", "/proc/no_such_process_folder"])
def test_corpus_output_folder_that_cannot_exist_is_bad_output(pair, tiny_model_dir, tmp_path, where):
    target = tmp_path / where if where == "a_file" else Path(where)
    if where == "a_file":
        target.write_text("not a folder")
    result = run("align-corpus", pair[0].parent, target, "--model", tiny_model_dir)
    assert result.exit_code == 2, result.output
    assert f"{target}: cannot create the output folder" in result.output


# ---------------------------------------------------------------------------
# transcript warnings are data, never taken from the process's warnings
# ---------------------------------------------------------------------------


def test_other_threads_warnings_never_become_a_transcripts_warnings():
    import warnings

    from aligner.text import ENGLISH_LABELS, normalize_transcript_collecting

    stop = threading.Event()

    def noisy():
        while not stop.is_set():
            warnings.warn("unrelated warning from another thread", UserWarning, stacklevel=1)

    thread = threading.Thread(target=noisy)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        thread.start()
        try:
            results = [normalize_transcript_collecting("the cat sat", ENGLISH_LABELS) for _ in range(300)]
            dropped = normalize_transcript_collecting("caf€ ok", ENGLISH_LABELS, source="t.txt")
        finally:
            stop.set()
            thread.join()
    assert all(messages == () for _, messages in results)
    assert dropped[1] == ("t.txt: dropped characters the model cannot represent: '€'",)
    assert dropped[0].dropped == ("€",)


# ---------------------------------------------------------------------------
# corpus entries that look like audio but are not regular files
# ---------------------------------------------------------------------------


def test_corpus_special_entries_with_transcripts_are_failures_not_silence(pair, tiny_model_dir, tmp_path):
    corpus = pair[0].parent
    transcript = pair[1].read_text(encoding="utf-8")
    os.mkfifo(corpus / "f.wav")
    (corpus / "d.wav").mkdir()
    (corpus / "loop.wav").symlink_to("loop.wav")
    speaker = tmp_path / "elsewhere" / "spk"
    speaker.mkdir(parents=True)
    soundfile.write(speaker / "s.wav", _noise(2.0, seed=4), 16000)
    (corpus / "linked").symlink_to(speaker.parent)
    for name in ("f", "d", "loop"):
        (corpus / f"{name}.txt").write_text(transcript, encoding="utf-8")
    (speaker / "s.txt").write_text(transcript, encoding="utf-8")
    (corpus / "plain_folder.wav").mkdir()  # no transcript: not an item
    out = tmp_path / "out"
    result = run("align-corpus", corpus, out, "--model", tiny_model_dir)
    assert result.exit_code == 3, result.output
    rows = {line.split("\t")[0]: line for line in (out / FAILURES_FILE).read_text().splitlines()[1:]}
    assert set(rows) == {"d.wav", "f.wav", "loop.wav"}
    assert "is a folder" in rows["d.wav"] and "not a regular file" in rows["f.wav"]
    assert "looping symbolic link" in rows["loop.wav"]
    assert (out / "a.TextGrid").is_file()
    assert "aligned 2, failed 3" in result.output  # a.wav and the symlinked speaker's s.wav


# ---------------------------------------------------------------------------
# plotting a short window of a long recording decodes only that window
# ---------------------------------------------------------------------------


def test_plot_of_a_window_reads_only_the_window(tmp_path, monkeypatch):
    from aligner import audio as audio_module
    from aligner.records import Alignment, WordSpan
    from aligner.writers import write_alignment

    long = tmp_path / "long.wav"
    soundfile.write(long, _noise(120.0), 16000)
    grid = tmp_path / "long.TextGrid"
    words = tuple(WordSpan(f"w{k}", "", k * 2.0, k * 2.0 + 1.0, 1.0, (), True) for k in range(60))
    write_alignment(Alignment(words, 120.0), grid)

    def refuse(*args, **kwargs):
        raise AssertionError("the whole file was decoded")

    monkeypatch.setattr(audio_module, "read_audio", refuse)
    read = []
    original = soundfile.read
    monkeypatch.setattr(soundfile, "read", lambda *a, **k: read.append(k) or original(*a, **k))
    out = tmp_path / "window.png"
    result = run("plot", long, grid, "-o", out, "--start", 50, "--end", 53)
    assert result.exit_code == 0, result.output
    assert out.stat().st_size > 1000
    assert read and read[0]["start"] == 49.5 * 16000 and read[0]["stop"] == 53.5 * 16000


# ---------------------------------------------------------------------------
# a transcript far too long for its audio is answered at once
# ---------------------------------------------------------------------------

HUGE = "the cat sat on the mat " * 220_000  # about 5 MB


def test_huge_transcript_is_refused_before_any_text_work(pair, tiny_model_dir, monkeypatch):
    from aligner import text as text_module

    def refuse(*args, **kwargs):
        raise AssertionError("the transcript was normalized")

    monkeypatch.setattr(text_module, "_normalize", refuse)
    (pair[1]).write_text(HUGE, encoding="utf-8")
    for partial in ([], ["--partial"]):
        line = _one_line_error(run("align", pair[0], pair[1], "--model", tiny_model_dir, *partial), "too long")
        assert str(pair[1]) in line and "characters" in line
    with pytest.raises(TranscriptError, match="too long for the audio: 5,"):
        aligner.Aligner(tiny_model_dir, device="cpu").prepare(pair[0], pair[1])


def test_many_words_stop_before_phonemizing(pair, monkeypatch):
    """A transcript within the character bound but with more words than the
    audio has frames never reaches the phonemizer (the phone model)."""
    from aligner import phones

    def refuse(*args, **kwargs):
        raise AssertionError("the transcript was phonemized")

    monkeypatch.setattr(phones, "phonemize", refuse)
    model = load_model(None)
    assert model.phonemizer is not None
    text = "a " * 1000  # 1000 words, 2000 characters: 2 s of audio holds 100 frames
    with pytest.raises(TranscriptError, match=r"its 1,000 words need at least one frame"):
        aligner.Aligner(model, device="cpu").prepare(pair[0], text)


def test_huge_transcript_in_a_corpus_is_a_failure_row_and_validate_names_it(pair, tiny_model_dir, tmp_path):
    corpus = pair[0].parent
    soundfile.write(corpus / "huge.wav", _noise(2.0, seed=2), 16000)
    (corpus / "huge.txt").write_text(HUGE, encoding="utf-8")
    out = tmp_path / "out"
    result = run("align-corpus", corpus, out, "--model", tiny_model_dir)
    assert result.exit_code == 3, result.output
    rows = (out / FAILURES_FILE).read_text(encoding="utf-8").splitlines()[1:]
    assert len(rows) == 1 and rows[0].startswith("huge.wav\ttranscript\t") and "too long" in rows[0]
    assert (out / "a.TextGrid").is_file()
    result = run("validate", corpus, "--model", tiny_model_dir, "-q")
    assert result.exit_code == 3
    assert "error\thuge.wav\tlength\t" in result.output and "characters" in result.output


# ---------------------------------------------------------------------------
# reports survive a killed run: a resumed run's reports are an uninterrupted run's
# ---------------------------------------------------------------------------

_KILLER = """
import os, signal, sys
import aligner.corpus.align as corpus_align
from aligner.cli import main

stop, sig, when = int(sys.argv[1]), getattr(signal, sys.argv[2]), sys.argv[3]
calls = []
original = corpus_align._write_outputs


def write(alignment, paths, subtitles):
    calls.append(1)
    if len(calls) == stop and when == "before":
        os.kill(os.getpid(), sig)
    original(alignment, paths, subtitles)
    if len(calls) == stop and when == "after":
        os.kill(os.getpid(), sig)


corpus_align._write_outputs = write
main(sys.argv[4:])
"""


@pytest.fixture
def kill_corpus(tmp_path) -> Path:
    """Seven files of different lengths (one batch each with --batch-seconds
    0.5), one without transcript and one whose transcript cannot fit."""
    corpus = tmp_path / "corpus"
    (corpus / "spk").mkdir(parents=True)
    for k in range(7):
        folder = corpus / ("spk" if k % 2 else "")
        soundfile.write(folder / f"u{k}.wav", _noise(1.0 + 0.2 * k, seed=k), 16000)
        if k != 3:
            (folder / f"u{k}.txt").write_text(TEXT if k != 5 else "word " * 400, encoding="utf-8")
    return corpus


def _reports(out: Path) -> tuple[str, str]:
    return (out / "confidence.tsv").read_text(encoding="utf-8"), (out / FAILURES_FILE).read_text(encoding="utf-8")


@pytest.mark.parametrize(
    ("stop", "sig", "when", "forget"),
    [
        (1, "SIGKILL", "after", False),
        (3, "SIGKILL", "before", False),
        (4, "SIGKILL", "after", True),  # journal and reports gone: rows rebuilt from the JSON outputs
        (2, "SIGTERM", "after", False),
    ],
)
def test_reports_after_a_killed_run_equal_an_uninterrupted_runs(
    kill_corpus, tiny_model_dir, tmp_path, stop, sig, when, forget
):
    args = ["align-corpus", kill_corpus, None, "--model", tiny_model_dir, "-f", "textgrid", "-f", "json"]
    args += ["--batch-seconds", "0.5", "--workers", "1", "-q"]
    whole = tmp_path / "whole"
    assert run(*[whole if a is None else a for a in args]).exit_code == 3
    out = tmp_path / "resumed"
    command = [sys.executable, "-c", _KILLER, str(stop), sig, when] + [str(out if a is None else a) for a in args]
    killed = subprocess.run(command, capture_output=True, text=True, timeout=300)
    if sig == "SIGKILL":
        assert killed.returncode == -9, killed.stderr
    else:
        assert killed.returncode == 130, killed.stderr
        assert "interrupted" in killed.stderr and (out / "confidence.tsv").is_file()
    done = sorted(p.name for p in out.rglob("*.json"))
    assert len(done) == (stop if when == "after" else stop - 1)
    if forget:
        for name in ("confidence.tsv", ".confidence.journal.tsv", FAILURES_FILE):
            (out / name).unlink(missing_ok=True)
    result = run(*[out if a is None else a for a in args])
    assert result.exit_code == 3, result.output
    assert f"skipped {len(done)}" in result.output
    assert _reports(out) == _reports(whole)
    assert len(_reports(out)[0].splitlines()) == 1 + 5  # every aligned file has its row
    assert not (out / ".confidence.journal.tsv").exists()


# ---------------------------------------------------------------------------
# a folder named like audio is reported, never skipped
# ---------------------------------------------------------------------------


def test_a_folder_named_like_audio_is_a_failure_in_every_run(pair, tiny_model_dir, tmp_path):
    corpus = pair[0].parent
    (corpus / "dirnamed.wav").mkdir()
    (corpus / "dirnamed.txt").write_text(TEXT, encoding="utf-8")
    (corpus / "spk" / "deep.flac").mkdir(parents=True)
    (corpus / "spk" / "deep.lab").write_text(TEXT, encoding="utf-8")
    out = tmp_path / "out"
    for attempt in range(2):  # the second run resumes: still reported and counted
        result = run("align-corpus", corpus, out, "--model", tiny_model_dir)
        assert result.exit_code == 3, result.output
        assert ("aligned 1, failed 2" if attempt == 0 else "aligned 0, failed 2, skipped 1") in result.output
        rows = {line.split("\t")[0]: line for line in (out / FAILURES_FILE).read_text().splitlines()[1:]}
        assert set(rows) == {"dirnamed.wav", "spk/deep.flac"} and "is a folder" in rows["dirnamed.wav"]
    result = run("validate", corpus, "--model", tiny_model_dir, "-q")
    assert result.exit_code == 3 and "error\tdirnamed.wav\taudio\t" in result.output
    assert "1 can be aligned (0 with warnings), 2 cannot" in result.output


# ---------------------------------------------------------------------------
# every number option refuses NaN and infinities, naming the option
# ---------------------------------------------------------------------------


def _float_options() -> list[tuple[str, str, list[str]]]:
    """(command, option, arguments that reach the option) of every float option."""
    from aligner.cli.common import Finite, _Warps

    found = []
    for name, cmd in sorted(main.commands.items()):
        required = []
        for param in cmd.params:
            if isinstance(param, click.Argument) and param.required:
                required.append("x")
            elif isinstance(param, click.Option) and param.required:
                required += [param.opts[0], "x.png"]
        for param in cmd.params:
            if isinstance(param, click.Option) and isinstance(param.type, (click.types.FloatParamType, Finite, _Warps)):
                found.append((name, param.opts[0], required))
    return found


def test_float_options_are_all_checked():
    names = {(cmd, opt) for cmd, opt, _ in _float_options()}
    assert {("align-corpus", "--adapt-minutes"), ("plot", "--start"), ("view", "--threshold")} <= names
    assert ("align", "--vtl-warps") in names and ("train", "--lr") in names


@pytest.mark.parametrize(("cmd", "option", "required"), _float_options())
@pytest.mark.parametrize("value", ["nan", "inf", "-inf"])
def test_float_options_refuse_nan_and_infinity(cmd, option, required, value):
    result = run(cmd, f"{option}={value}", *required)
    line = _one_line_error(result, option, "finite")
    assert value.lstrip("-") in line


# ---------------------------------------------------------------------------
# a Ray address that does not answer is one line, at once
# ---------------------------------------------------------------------------


def test_a_ray_address_nothing_listens_on_is_one_line(pair, tiny_model_dir, tmp_path):
    pytest.importorskip("ray")
    result = run("align-corpus", pair[0].parent, tmp_path / "out", "--model", tiny_model_dir, "--ray", "127.0.0.1:1")
    _one_line_error(result, "cannot connect to the Ray cluster at '127.0.0.1:1'")


_SILENT_HEAD = """
import socket, sys, threading
import aligner.corpus.ray_cluster as ray_cluster
from aligner.cli import main

server = socket.create_server(("127.0.0.1", 0))
threading.Thread(target=lambda: [server.accept() for _ in range(100)], daemon=True).start()
ray_cluster.CONNECT_SECONDS = 3.0
main(sys.argv[1:] + ["--ray", f"127.0.0.1:{server.getsockname()[1]}"])
"""


def test_a_ray_address_that_accepts_but_never_answers_is_an_error_within_the_bound(pair, tiny_model_dir, tmp_path):
    """Something listens on the port but no Ray head answers: Ray's own
    connection would retry for minutes; the run gives up after the bound."""
    pytest.importorskip("ray")
    command = [sys.executable, "-c", _SILENT_HEAD, "align-corpus", str(pair[0].parent), str(tmp_path / "out")]
    done = subprocess.run(command + ["--model", str(tiny_model_dir), "-q"], capture_output=True, text=True, timeout=120)
    assert done.returncode == 2, done.stderr
    assert "error: cannot connect to the Ray cluster at '127.0.0.1:" in done.stderr
    assert "no answer from a Ray head within 3 s" in done.stderr
    assert not (tmp_path / "out" / "a.TextGrid").exists()


# ---------------------------------------------------------------------------
# one word in minutes of near-silence lands in the speech
# ---------------------------------------------------------------------------

EXAMPLE_WAV = Path(__file__).resolve().parents[1] / "examples" / "example.wav"


def _speech_in_noise(minutes: float, at: float) -> tuple[np.ndarray, int, float, float]:
    """``minutes`` of 1e-4 noise with the example sentence pasted in at
    ``at`` seconds: (samples, rate, speech start, speech end)."""
    speech, rate = soundfile.read(EXAMPLE_WAV, dtype="float32")
    samples = 1e-4 * np.random.default_rng(0).standard_normal(int(minutes * 60 * rate)).astype(np.float32)
    first = int(at * rate)
    samples[first : first + speech.size] += speech
    return samples, rate, at, at + speech.size / rate


def test_noise_far_from_any_speech_is_quiet_in_a_long_recording():
    """The local speech level of a noise floor far from speech is the noise
    itself; measured against the recording's speech there, it is quiet."""
    from aligner.activity import frame_levels, quiet_masks, recording_speech_level
    from aligner.guard import QUIET_DB

    samples, rate, start, end = _speech_in_noise(3, 90.0)
    frames = samples.size // 320
    levels = frame_levels(torch.from_numpy(samples), 320, frames)
    quiet = quiet_masks([levels], [recording_speech_level(levels, span=1500)], QUIET_DB)[0]
    seconds = torch.arange(frames) * 0.02
    far = (seconds < start - 20) | (seconds > end + 20)
    assert bool(quiet[far].all())  # minutes of noise: never speech of their own
    assert not bool(quiet[(seconds > start + 0.5) & (seconds < end - 0.5)].all())


def test_one_word_in_minutes_of_noise_lands_in_the_speech():
    samples, rate, start, end = _speech_in_noise(3, 90.0)
    result = aligner.align((torch.from_numpy(samples), rate), "astronauts", device="cpu")
    word = result.words[0]
    assert start <= word.start < word.end <= end, (word, result.suspect)
