"""The English model shipped inside the package: offline default of `align`."""

import json

from click.testing import CliRunner
from praatio import textgrid as praat_textgrid

import aligner
from aligner.cli import main
from aligner.models.frontend import LogMelFrontEnd
from aligner.models.loading import DEFAULT_MODEL, PACKAGED_MODEL, list_models
from aligner.training.phone import LABELS

EXAMPLES = PACKAGED_MODEL.parents[2] / "examples"


def test_packaged_model_is_the_default_and_small():
    files = {p.name: p.stat().st_size for p in PACKAGED_MODEL.iterdir()}
    assert set(files) == {"aligner_model.json", "model.safetensors"}
    assert sum(files.values()) <= 25 * 2**20
    model = aligner.load_model()
    assert DEFAULT_MODEL == "TRELLIS_EN_PHONES"
    assert model.labels == LABELS and model.sample_rate == 16000 and model.separator is None
    assert model.phonetic and model.phonemizer == "espeak-arpabet" and model.end_extension == 0.0
    assert model.blank_penalty > 0
    assert isinstance(model.model.feature_extractor, LogMelFrontEnd)  # per-item normalization: batching is exact
    assert not model.group_norm
    assert next(info for info in list_models() if info.default).available


def test_readme_main_command_aligns_the_example(tmp_path):
    out = tmp_path / "example.TextGrid"
    result = CliRunner().invoke(
        main, ["align", str(EXAMPLES / "example.wav"), str(EXAMPLES / "example.txt"), "-o", str(out)]
    )
    assert result.exit_code == 0, result.output
    grid = praat_textgrid.openTextgrid(str(out), includeEmptyIntervals=True)
    words = [entry.label for entry in grid.getTier("words").entries if entry.label]
    assert words == (EXAMPLES / "example.txt").read_text(encoding="utf-8").split()


def test_example_alignment_is_close_to_the_synthesizer_truth():
    """The example was never part of training; its exact word timings ship
    beside it. Most boundaries must be within 50 ms."""
    from aligner.readers import read_textgrid

    result = aligner.align(EXAMPLES / "example.wav", (EXAMPLES / "example.txt").read_text(encoding="utf-8"))
    truth = read_textgrid(EXAMPLES / "example.reference.TextGrid")
    errors = [
        abs(a - b)
        for ours, ref in zip(result.words, truth.words)
        for a, b in ((ours.start, ref.start), (ours.end, ref.end))
    ]
    assert len(errors) == 2 * len(truth.words)
    assert sum(e <= 0.05 for e in errors) / len(errors) >= 0.8, json.dumps(errors)
    # the audio says "$25" as the normalizer reads it ("twenty five dollars"), so that word aligns like any other
    [(ours, ref)] = [(a, b) for a, b in zip(result.words, truth.words) if a.text == "$25"]
    assert abs(ours.start - ref.start) <= 0.05 and abs(ours.end - ref.end) <= 0.05, (ours, ref)
    assert ours.score >= 0.5, ours
