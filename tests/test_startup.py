"""What each command imports before it answers: bad input, help and the
model listing are answered without torch; ``aligner plot`` needs neither
torch nor librosa; the romanizer is loaded only for text that needs it.
(Import checks, not timings: ``benchmarks/bench_startup.py`` times them.)"""

import json
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
EXAMPLES = ROOT / "examples"
HEAVY = ("torch", "torchaudio", "librosa", "numba", "uroman", "scipy", "sklearn")

# Runs the command line in a fresh interpreter, then reports its exit code,
# its output and which heavy modules it imported.
RUNNER = """
import json, sys
from click.testing import CliRunner
from aligner.cli import main
result = CliRunner().invoke(main, sys.argv[1:])
heavy = sorted(m for m in {heavy!r} if m in sys.modules)
print(json.dumps({{"code": result.exit_code, "output": result.output, "heavy": heavy}}))
"""


def run_fresh(*args, cwd: Path) -> dict:
    code = RUNNER.format(heavy=HEAVY)
    done = subprocess.run(
        [sys.executable, "-c", code, *map(str, args)], cwd=cwd, capture_output=True, text=True, check=True
    )
    return json.loads(done.stdout.strip().splitlines()[-1])


@pytest.fixture(scope="module")
def files(tmp_path_factory) -> Path:
    folder = tmp_path_factory.mktemp("startup")
    (folder / "t.txt").write_text("hello world\n", encoding="utf-8")
    (folder / "empty.txt").write_text(" \n", encoding="utf-8")
    (folder / "notes.txt").write_text("not audio\n", encoding="utf-8")
    (folder / "huge.txt").write_text("the whole trip cost about $25 billion " * 100_000, encoding="utf-8")
    (folder / "corpus").mkdir()
    (folder / "corpus" / "a.wav").symlink_to(EXAMPLES / "example.wav")
    (folder / "empty_folder").mkdir()
    return folder


@pytest.mark.parametrize(
    "args, fragments",
    [
        (["align", "nope.wav", "t.txt"], ["nope.wav", "audio file not found"]),
        (["align", "notes.txt", "t.txt"], ["notes.txt", "not audio"]),
        (["align", EXAMPLES / "example.wav", "empty.txt"], ["empty.txt", "transcript is empty"]),
        (["align", EXAMPLES / "example.wav", "missing.txt"], ["missing.txt", "not found"]),
        (["align", EXAMPLES / "example.wav", EXAMPLES / "example.wav"], ["example.wav", "not a transcript"]),
        (["align", EXAMPLES / "example.wav", "--text", "  "], ["transcript is empty"]),
        (["align", EXAMPLES / "example.wav", "t.txt", "-o", "out.docx"], ["out.docx", "unknown output extension"]),
        (["align", EXAMPLES / "example.wav", "huge.txt"], ["huge.txt", "too long for the audio", "characters"]),
        (["align-corpus", "nope", "out"], ["corpus folder not found: nope"]),
        (["align-corpus", "corpus", "notes.txt"], ["notes.txt", "not a folder"]),
        (["validate", "nope"], ["corpus folder not found: nope"]),
        (["validate", "empty_folder"], ["no audio files in empty_folder"]),
        (["view", "nope.wav", "t.txt"], ["nope.wav", "audio file not found"]),
        (["view", "notes.txt", "t.txt"], ["notes.txt", "not audio"]),
    ],
)
def test_bad_input_is_answered_before_torch_is_imported(files, args, fragments):
    result = run_fresh(*args, cwd=files)
    assert result["code"] == 2, result
    lines = result["output"].strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("error: "), result
    for fragment in fragments:
        assert fragment in lines[0], lines[0]
    assert result["heavy"] == [], result


@pytest.mark.parametrize("args", [["--help"], ["align", "--help"], ["plot", "--help"], ["models"]])
def test_help_and_models_import_nothing_heavy(files, args):
    result = run_fresh(*args, cwd=files)
    assert result["code"] == 0, result
    assert result["heavy"] == [], result


def test_plot_needs_neither_torch_nor_librosa(tmp_path):
    out = tmp_path / "figure.png"
    result = run_fresh(
        "plot", EXAMPLES / "example.wav", EXAMPLES / "example.reference.TextGrid", "-o", out, cwd=tmp_path
    )
    assert result["code"] == 0, result
    assert out.stat().st_size > 10_000
    assert result["heavy"] == [], result


def test_the_romanizer_is_loaded_only_for_text_that_needs_it():
    code = (
        "import sys; from aligner.text import ENGLISH_LABELS, normalize_transcript; "
        "normalize_transcript(sys.argv[1], ENGLISH_LABELS); print('uroman' in sys.modules)"
    )
    for text, expected in (("Café, naïve façade: 25 dollars!", "False"), ("Москва", "True")):
        done = subprocess.run([sys.executable, "-c", code, text], capture_output=True, text=True, check=True)
        assert done.stdout.strip() == expected, text
