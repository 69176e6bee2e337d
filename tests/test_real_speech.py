"""End to end on the real recordings in ../shared/data/speech (skipped when absent)."""

import pytest
import soundfile
from click.testing import CliRunner
from conftest import SPEECH_DIR
from praatio import textgrid as praat_textgrid

from aligner.cli import main

AUDIO = sorted(p for p in SPEECH_DIR.glob("*") if p.suffix in {".wav", ".flac", ".mp3"}) if SPEECH_DIR.is_dir() else []


def _align_and_check(audio, out, model):
    result = CliRunner().invoke(main, ["align", str(audio), "-o", str(out), "--model", str(model)])
    assert result.exit_code == 0, result.output
    grid = praat_textgrid.openTextgrid(str(out), includeEmptyIntervals=True)
    words = [entry.label for entry in grid.getTier("words").entries if entry.label]
    assert words == audio.with_suffix(".txt").read_text(encoding="utf-8").split()
    info = soundfile.info(str(audio))
    # mp3 decoders disagree by the encoder padding; everything else is exact
    assert grid.maxTimestamp == pytest.approx(info.frames / info.samplerate, abs=0.06)
    return grid


@pytest.mark.parametrize("audio", AUDIO, ids=[p.name for p in AUDIO])
def test_every_recording_aligns_with_a_tiny_model(speech_dir, audio, tmp_path, tiny_model_dir):
    _align_and_check(audio, tmp_path / f"{audio.stem}.TextGrid", tiny_model_dir)


@pytest.mark.slow
def test_full_size_architecture_through_the_bundle_code_path(speech_dir, tmp_path, base_bundle_hub, monkeypatch):
    """WAV2VEC2_ASR_BASE_960H (random weights, real size) loaded by torchaudio's
    bundle code from a hub cache, run on three formats / rates / channel counts."""
    import torch

    monkeypatch.setattr(torch.hub, "get_dir", lambda: str(base_bundle_hub))

    def no_download(*args, **kwargs):
        raise AssertionError("a download was attempted")

    monkeypatch.setattr(torch.hub, "download_url_to_file", no_download)
    for name in ["jfk.flac", "sonnet001_p001.mp3", "msajc003.wav"]:
        _align_and_check(speech_dir / name, tmp_path / f"{name}.TextGrid", "wav2vec2_asr_base_960h")
