"""Corpus alignment (aligner.corpus.files, aligner.corpus.align, `align-corpus`,
`validate`): batches, mirrored outputs, resume, failures, interruption."""

from __future__ import annotations

import csv
import json
import shutil
from pathlib import Path

import numpy as np
import pytest
import soundfile
from click.testing import CliRunner
from hypothesis import given, settings
from hypothesis import strategies as st
from praatio import textgrid as praat_textgrid

from aligner.cli import main
from aligner.corpus.align import CONFIDENCE_FILE, FAILURES_FILE, align_corpus, plan_batches
from aligner.corpus.files import CorpusFile, find_corpus_files, output_path, validate_corpus
from aligner.errors import CorpusError
from aligner.pipeline import Aligner
from aligner.testing import tiny_model
from aligner.writers import to_json

TEXTS = ["the cat sat", "on the mat today", "hello world", "a quick brown fox jumps", "zero"]


def _noise(seconds: float, rate: int, seed: int, channels: int = 1) -> np.ndarray:
    rng = np.random.default_rng(seed)
    n = int(seconds * rate)
    envelope = (np.sin(np.linspace(0, 9 * np.pi, n)) > 0).astype(np.float32)
    audio = 0.2 * rng.standard_normal((n, channels)).astype(np.float32) * envelope[:, None]
    return audio[:, 0] if channels == 1 else audio


@pytest.fixture
def corpus(tmp_path) -> Path:
    """Five good files of different lengths, rates and formats, two speakers."""
    root = tmp_path / "corpus"
    specs = [
        ("spk1/a.wav", 1.5, 16000, 1, ".txt"),
        ("spk1/b.flac", 3.2, 22050, 1, ".lab"),
        ("spk2/c.wav", 2.4, 44100, 2, ".txt"),
        ("spk2/deep/d.wav", 4.1, 8000, 1, ".txt"),
        ("e.wav", 1.1, 16000, 1, ".txt"),
    ]
    for index, (key, seconds, rate, channels, ext) in enumerate(specs):
        path = root / key
        path.parent.mkdir(parents=True, exist_ok=True)
        soundfile.write(path, _noise(seconds, rate, index, channels), rate)
        path.with_suffix(ext).write_text(TEXTS[index] + "\n")
    return root


@pytest.fixture(scope="module")
def aligner() -> Aligner:
    return Aligner(tiny_model(name="tiny-corpus"), device="cpu")


def _add_bad_files(root: Path) -> dict[str, str]:
    """Bad files and the stage each must fail at."""
    soundfile.write(root / "notext.wav", _noise(1.0, 16000, 9), 16000)
    (root / "corrupt.wav").write_bytes(b"RIFF\x00\x00not really a wav file")
    (root / "corrupt.txt").write_text("some words\n")
    soundfile.write(root / "silent.wav", np.zeros(16000, np.float32), 16000)
    (root / "silent.txt").write_text("quiet please\n")
    soundfile.write(root / "short.wav", _noise(0.3, 16000, 10), 16000)
    (root / "short.txt").write_text("this transcript is far too long for a third of a second\n")
    soundfile.write(root / "empty.wav", _noise(1.0, 16000, 11), 16000)
    (root / "empty.txt").write_text("   \n")
    return {
        "notext.wav": "transcript",
        "corrupt.wav": "audio",
        "silent.wav": "audio",
        "short.wav": "transcript",
        "empty.wav": "transcript",
    }


def _failures(out: Path) -> dict[str, list[str]]:
    with (out / FAILURES_FILE).open(newline="") as handle:
        rows = list(csv.reader(handle, delimiter="\t"))
    assert rows[0] == ["file", "stage", "message"]
    return {row[0]: row for row in rows[1:]}


def _without_scores(words: list[dict]) -> list[dict]:
    return [
        {
            **{k: v for k, v in w.items() if k != "score"},
            "chars": [{k: v for k, v in c.items() if k != "score"} for c in w["chars"]],
        }
        for w in words
    ]


def _temporaries(out: Path) -> list[Path]:
    return [p for p in out.rglob(".*") if p.name.endswith(".tmp")]


# --- batches -----------------------------------------------------------------


def _fake(n: int) -> CorpusFile:
    return CorpusFile(f"f{n}.wav", Path(f"f{n}.wav"), None, None, "")


@settings(max_examples=60, deadline=None)
@given(st.lists(st.one_of(st.none(), st.floats(0.1, 50.0)), min_size=1, max_size=40), st.floats(1.0, 100.0))
def test_plan_batches_respects_the_padded_budget(durations, budget):
    items = [(_fake(i), d) for i, d in enumerate(durations)]
    batches = plan_batches(items, budget)
    flat = [item for batch in batches for item in batch]
    assert sorted(f.key for f, _ in flat) == sorted(f.key for f, _ in items)  # each file once
    for batch in batches:
        if any(d is None for _, d in batch):
            assert len(batch) == 1
            continue
        longest = max(d for _, d in batch)
        assert batch[0][1] == longest
        assert len(batch) == 1 or longest * len(batch) <= budget
    known = [d for _, d in flat if d is not None]
    assert known == sorted(known, reverse=True)  # longest first


# --- alignment ---------------------------------------------------------------


def test_outputs_mirror_the_tree_and_equal_single_file_alignment(corpus, aligner, tmp_path):
    out = tmp_path / "out"
    summary = align_corpus(corpus, out, aligner, formats=("textgrid", "json", "ctm", "srt", "vtt"), batch_seconds=8.0)
    assert (summary.aligned, summary.failed, summary.skipped) == (5, 0, 0)
    assert not (out / FAILURES_FILE).exists()
    for item in find_corpus_files(corpus):
        for fmt in ("textgrid", "json", "ctm", "srt", "vtt"):
            assert output_path(out, item.key, fmt).is_file(), (item.key, fmt)
        alone = to_json(aligner.align(item.audio, item.transcript))
        written = json.loads(output_path(out, item.key, "json").read_text())
        # batching changes no time; scores only by float32 rounding
        assert _without_scores(written["words"]) == _without_scores(alone["words"]), item.key
        assert [w["score"] for w in written["words"]] == pytest.approx([w["score"] for w in alone["words"]], rel=1e-5)
        grid = praat_textgrid.openTextgrid(str(output_path(out, item.key, "textgrid")), includeEmptyIntervals=False)
        assert [e.label for e in grid.getTier("words").entries] == [w["text"] for w in written["words"]]
    assert (out / "spk2" / "deep" / "d.TextGrid").is_file()
    assert summary.audio_seconds == pytest.approx(1.5 + 3.2 + 2.4 + 4.1 + 1.1, abs=0.01)


def test_confidence_report_lists_files_worst_first(corpus, aligner, tmp_path):
    out = tmp_path / "out"
    summary = align_corpus(corpus, out, aligner, formats=("json",))
    with (out / CONFIDENCE_FILE).open(newline="") as handle:
        rows = list(csv.reader(handle, delimiter="\t"))
    assert rows[0][:3] == ["file", "score", "words"]
    scores = [float(r[1]) for r in rows[1:]]
    assert scores == sorted(scores) and len(scores) == 5
    worst = summary.worst(2)
    assert [r.key for r in worst] == [r[0] for r in rows[1:3]]
    assert "lowest mean word scores" in summary.describe(2)


def test_one_bad_file_never_aborts_the_run(corpus, aligner, tmp_path):
    expected = _add_bad_files(corpus)
    out = tmp_path / "out"
    summary = align_corpus(corpus, out, aligner, formats=("textgrid",))
    assert summary.aligned == 5 and summary.failed == len(expected)
    failures = _failures(out)
    assert {key: row[1] for key, row in failures.items()} == expected
    assert "no transcript" in failures["notext.wav"][2]
    assert "silent" in failures["silent.wav"][2]
    assert "too long" in failures["short.wav"][2]
    assert "empty" in failures["empty.wav"][2]
    for key in expected:
        assert not output_path(out, key, "textgrid").exists()
    # fixing a file and running again: only it is aligned, the report is rewritten
    (corpus / "notext.txt").write_text("now it has words\n")
    again = align_corpus(corpus, out, aligner, formats=("textgrid",))
    assert again.aligned == 1 and again.skipped == 5 and again.failed == len(expected) - 1
    assert "notext.wav" not in _failures(out)


def test_a_failing_batch_is_retried_file_by_file(corpus, aligner, tmp_path, monkeypatch):
    original = Aligner.align_prepared

    def flaky(self, items):
        if any(item.audio_name.endswith("b.flac") for item in items):
            raise RuntimeError("simulated out of memory")
        return original(self, items)

    monkeypatch.setattr(Aligner, "align_prepared", flaky)
    out = tmp_path / "out"
    summary = align_corpus(corpus, out, aligner, formats=("json",), batch_seconds=100.0)
    assert summary.aligned == 4 and summary.failed == 1
    assert _failures(out)["spk1/b.flac"][1:] == ["align", f"{corpus / 'spk1/b.flac'}: simulated out of memory"]


def test_resume_skips_existing_outputs_and_overwrite_realigns(corpus, aligner, tmp_path):
    out = tmp_path / "out"
    align_corpus(corpus, out, aligner, formats=("textgrid", "json"))
    output_path(out, "spk1/b.flac", "json").unlink()  # one output missing: that file is redone
    again = align_corpus(corpus, out, aligner, formats=("textgrid", "json"))
    assert (again.aligned, again.skipped) == (1, 4)
    assert [r.key for r in again.results if r.status == "aligned"] == ["spk1/b.flac"]
    forced = align_corpus(corpus, out, aligner, formats=("textgrid", "json"), overwrite=True)
    assert (forced.aligned, forced.skipped) == (5, 0)
    with (out / CONFIDENCE_FILE).open() as handle:
        assert len(handle.read().splitlines()) == 6  # skipped files keep their rows


def test_interrupted_run_leaves_complete_files_and_resumes(corpus, aligner, tmp_path):
    out = tmp_path / "out"
    done = []

    def stop_after_two(result):
        done.append(result.key)
        if len(done) == 2:
            raise KeyboardInterrupt

    summary = align_corpus(
        corpus, out, aligner, formats=("textgrid", "json"), batch_seconds=3.0, on_progress=stop_after_two
    )
    assert summary.interrupted and summary.aligned == 2
    assert _temporaries(out) == []
    for key in done:
        json.loads(output_path(out, key, "json").read_text())  # complete, parseable
    written = {p.relative_to(out).with_suffix("").as_posix() for p in out.rglob("*.json")}
    assert written == {Path(k).with_suffix("").as_posix() for k in done}
    resumed = align_corpus(corpus, out, aligner, formats=("textgrid", "json"))
    assert (resumed.aligned, resumed.skipped, resumed.interrupted) == (3, 2, False)


@pytest.mark.parametrize(
    "kwargs, message",
    [
        ({"formats": ("docx",)}, "unknown output format 'docx'"),
        ({"formats": ()}, "no output format"),
        ({"batch_seconds": 0}, "batch_seconds must be > 0"),
        ({"workers": 0}, "workers must be >= 1"),
    ],
)
def test_bad_options(corpus, aligner, tmp_path, kwargs, message):
    with pytest.raises(CorpusError, match=message):
        align_corpus(corpus, tmp_path / "out", aligner, **kwargs)


def test_missing_or_empty_corpus(aligner, tmp_path):
    with pytest.raises(CorpusError, match="corpus folder not found"):
        align_corpus(tmp_path / "nope", tmp_path / "out", aligner)
    (tmp_path / "empty").mkdir()
    with pytest.raises(CorpusError, match="no audio files"):
        align_corpus(tmp_path / "empty", tmp_path / "out", aligner)


# --- validate ----------------------------------------------------------------


def test_validate_finds_every_problem(corpus, aligner):
    expected = _add_bad_files(corpus)
    (corpus / "e.txt").write_text("zero ☃ snowman\n")  # a character the model cannot represent
    problems = validate_corpus(find_corpus_files(corpus), aligner.model)
    fatal = {p.key: p.stage for p in problems if p.fatal}
    assert fatal == {
        "notext.wav": "transcript",
        "corrupt.wav": "audio",
        "silent.wav": "audio",
        "short.wav": "length",
        "empty.wav": "transcript",
    }
    assert set(expected) == set(fatal)
    [warning] = [p for p in problems if not p.fatal]
    assert warning.key == "e.wav" and warning.stage == "text" and "☃" in warning.message


# --- CLI ---------------------------------------------------------------------


def run(*args):
    return CliRunner().invoke(main, [str(a) for a in args])


def test_cli_align_corpus_summary_and_exit_codes(corpus, tiny_model_dir, tmp_path):
    out = tmp_path / "out"
    result = run("align-corpus", corpus, out, "--model", tiny_model_dir, "-f", "textgrid", "-f", "json", "-q")
    assert result.exit_code == 0, result.output
    assert "aligned 5, failed 0, skipped 0" in result.output
    assert "x real time" in result.output
    assert (out / "spk1" / "a.TextGrid").is_file() and (out / "spk1" / "a.json").is_file()

    _add_bad_files(corpus)
    result = run("align-corpus", corpus, out, "--model", tiny_model_dir, "-f", "textgrid", "-f", "json", "-q")
    assert result.exit_code == 3, result.output
    assert "aligned 0, failed 5, skipped 5" in result.output
    assert str(out / FAILURES_FILE) in result.output


def test_cli_resumed_run_with_nothing_to_do_prints_no_progress_bar(tmp_path, tiny_model_dir):
    examples = Path(__file__).resolve().parents[1] / "examples"
    corpus = tmp_path / "corpus"
    corpus.mkdir()
    shutil.copy(examples / "example.wav", corpus / "example.wav")
    shutil.copy(examples / "example.txt", corpus / "example.txt")
    first = run("align-corpus", corpus, tmp_path / "out", "--model", tiny_model_dir)
    assert first.exit_code == 0, first.output
    assert "aligning" in first.output  # progress shown (not a terminal: tqdm's plain lines)
    again = run("align-corpus", corpus, tmp_path / "out", "--model", tiny_model_dir)
    assert again.exit_code == 0, again.output
    assert "aligned 0, failed 0, skipped 1" in again.output
    assert "aligning" not in again.output and "0file" not in again.output, again.output


def test_cli_align_corpus_bad_input(tmp_path, tiny_model_dir):
    result = run("align-corpus", tmp_path / "missing", tmp_path / "out", "--model", tiny_model_dir)
    assert result.exit_code == 2
    assert "corpus folder not found" in result.output


def test_cli_validate(corpus, tiny_model_dir):
    result = run("validate", corpus, "--model", tiny_model_dir, "-q")
    assert result.exit_code == 0, result.output
    assert "5 files: 5 can be aligned (0 with warnings), 0 cannot" in result.output
    _add_bad_files(corpus)
    result = run("validate", corpus, "--model", tiny_model_dir, "-q")
    assert result.exit_code == 3
    lines = [line.split("\t") for line in result.output.splitlines() if line.startswith("error\t")]
    assert sorted((line[1], line[2]) for line in lines) == [
        ("corrupt.wav", "audio"),
        ("empty.wav", "transcript"),
        ("notext.wav", "transcript"),
        ("short.wav", "length"),
        ("silent.wav", "audio"),
    ]


def test_cli_partial_flags_unspoken_words_in_the_reports(tmp_path):
    """`align-corpus --partial` with the packaged model: words inserted into
    the example's transcript are marked in the JSON and counted in
    confidence.tsv; the matching file has none."""
    import shutil

    examples = Path(__file__).resolve().parents[1] / "examples"
    root = tmp_path / "corpus"
    (root / "a").mkdir(parents=True)
    (root / "b").mkdir()
    for folder in ("a", "b"):
        shutil.copy(examples / "example.wav", root / folder / "example.wav")
    shutil.copy(examples / "example.txt", root / "a" / "example.txt")
    (root / "b" / "example.txt").write_text(
        "In 1969, two brave young astronauts walked on the Moon; the whole expensive trip cost "
        "about $25 billion, and really nobody forgot it.\n"
    )
    out = tmp_path / "out"
    result = run("align-corpus", root, out, "--partial", "-f", "json", "-q", "--worst", "1")
    assert result.exit_code == 0, result.output
    flagged = [w["text"] for w in json.loads((out / "b" / "example.json").read_text())["words"] if not w["aligned"]]
    assert flagged == ["brave", "young", "expensive", "really"]
    with (out / CONFIDENCE_FILE).open(newline="") as handle:
        rows = {row["file"]: row for row in csv.DictReader(handle, delimiter="\t")}
    assert rows["b/example.wav"]["unaligned_words"] == "4" and rows["a/example.wav"]["unaligned_words"] == "0"
    assert "b/example.wav" in result.output.split("lowest mean word scores")[1]  # the worst file is listed
