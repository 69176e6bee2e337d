import numpy as np
import pytest
import soundfile

from aligner.audio import load_audio, prepare_waveform
from aligner.errors import AudioError


def _tone(rate, seconds=0.5, channels=1):
    t = np.arange(int(rate * seconds)) / rate
    mono = 0.3 * np.sin(2 * np.pi * 220 * t).astype(np.float32)
    return np.stack([mono] * channels, axis=1) if channels > 1 else mono


@pytest.mark.parametrize(
    "ext,subtype", [("wav", "PCM_16"), ("flac", "PCM_24"), ("ogg", "VORBIS"), ("mp3", "MPEG_LAYER_III")]
)
def test_formats_decode_and_resample(tmp_path, ext, subtype):
    path = tmp_path / f"tone.{ext}"
    soundfile.write(path, _tone(44100), 44100, subtype=subtype)
    wave = load_audio(path, 16000)
    assert wave.ndim == 1 and str(wave.dtype) == "torch.float32"
    assert abs(wave.numel() - 8000) <= 1200  # mp3 adds encoder padding
    assert 0.2 < float(wave.abs().max()) < 0.4


@pytest.mark.parametrize("rate", [8000, 22050, 48000])
def test_any_rate_resampled_to_model_rate(tmp_path, rate):
    path = tmp_path / "a.wav"
    soundfile.write(path, _tone(rate, 1.0), rate)
    assert load_audio(path, 16000).numel() == 16000


def test_stereo_is_downmixed(tmp_path):
    left = _tone(16000)
    stereo = np.stack([left, np.zeros_like(left)], axis=1)
    path = tmp_path / "st.wav"
    soundfile.write(path, stereo, 16000, subtype="FLOAT")
    wave = load_audio(path, 16000)
    np.testing.assert_allclose(wave.numpy(), left / 2, atol=1e-6)


def test_missing_file(tmp_path):
    with pytest.raises(AudioError, match=r"nope\.wav: audio file not found"):
        load_audio(tmp_path / "nope.wav", 16000)


def test_corrupt_file(tmp_path):
    path = tmp_path / "bad.wav"
    path.write_bytes(b"RIFF\x00\x00\x00\x00WAVEfmt garbage" * 10)
    with pytest.raises(AudioError, match=r"bad\.wav: cannot decode audio"):
        load_audio(path, 16000)


def test_text_file_is_not_audio(tmp_path):
    path = tmp_path / "notes.mp3"
    path.write_text("hello, this is text")
    with pytest.raises(AudioError, match=r"notes\.mp3: cannot decode audio"):
        load_audio(path, 16000)


def test_zero_length(tmp_path):
    path = tmp_path / "empty.wav"
    soundfile.write(path, np.zeros(0, dtype=np.float32), 16000)
    with pytest.raises(AudioError, match=r"empty\.wav: audio contains no samples"):
        load_audio(path, 16000)


def test_silent(tmp_path):
    path = tmp_path / "silence.wav"
    soundfile.write(path, np.zeros(16000, dtype=np.float32), 16000)
    with pytest.raises(AudioError, match=r"silence\.wav: audio is silent"):
        load_audio(path, 16000)


def test_folder_is_not_audio(tmp_path):
    with pytest.raises(AudioError, match="is a folder"):
        load_audio(tmp_path, 16000)


def test_in_memory_waveform_checks():
    with pytest.raises(AudioError, match="NaN"):
        prepare_waveform(np.array([0.1, np.nan], dtype=np.float32), 16000, 16000)
    with pytest.raises(AudioError, match="1-D or 2-D"):
        prepare_waveform(np.zeros((2, 2, 2)), 16000, 16000)
