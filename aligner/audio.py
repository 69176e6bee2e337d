"""Reading audio files into mono float waveforms at the model's sample rate.

torch is imported only where a tensor is made (:func:`prepare_waveform`), so
checking and decoding a file (``aligner plot``, ``aligner view``, the early
checks of ``aligner align``) does not pay for its import."""

from __future__ import annotations

import os
import warnings
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np

from .errors import AudioError

if TYPE_CHECKING:  # pragma: no cover
    import soundfile
    import torch

#: Below this peak amplitude a recording is treated as digital silence.
SILENCE_PEAK = 1e-5


#: Sample rates outside this range (Hz) are taken as a corrupt header.
MIN_RATE, MAX_RATE = 1000, 768000


def read_audio(path: str | os.PathLike) -> tuple[np.ndarray, int]:
    """Decode an audio file (wav, flac, ogg, mp3, ...) as it is.

    Returns:
        (samples, sample_rate): float32 array of shape ``(frames, channels)``.

    Raises:
        AudioError: the file is missing or cannot be decoded.
    """
    path = Path(path)
    check_audio_file(path)
    import soundfile

    try:
        data, rate = soundfile.read(str(path), dtype="float32", always_2d=True)
    except Exception as sf_error:  # libsndfile cannot read it: try librosa/audioread
        data, rate = _read_with_librosa(path, sf_error)
    return data, int(rate)


def check_audio_file(path: Path) -> None:
    """Raise :class:`AudioError` unless ``path`` is an existing regular file
    (not a folder, a broken link, a FIFO or a device). Nothing is decoded."""
    if not path.exists():
        if path.is_symlink():
            raise AudioError(f"{path}: is a broken or looping symbolic link, not an audio file")
        raise AudioError(f"{path}: audio file not found")
    if path.is_dir():
        raise AudioError(f"{path}: is a folder, not an audio file")
    if not path.is_file():  # a FIFO, a device, a socket: reading could block or never end
        raise AudioError(f"{path}: is not a regular file (a pipe or device?); save the audio to a file first")


def _read_with_librosa(path: Path, first_error: Exception) -> tuple[np.ndarray, int]:
    import librosa

    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            data, rate = librosa.load(str(path), sr=None, mono=False)
    except Exception:
        raise AudioError(f"{path}: cannot decode audio ({_short(first_error)})") from None
    data = np.atleast_2d(np.asarray(data, dtype=np.float32))
    return data.T, int(rate)


def _short(error: Exception) -> str:
    text = str(error).strip().splitlines()
    return text[0] if text else type(error).__name__


def load_audio(path: str | os.PathLike, sample_rate: int) -> torch.Tensor:
    """Read ``path`` as a mono waveform at ``sample_rate``.

    Multi-channel audio is down-mixed by averaging the channels; any input
    rate is resampled (soxr, high quality).

    Returns:
        Tensor: float32 waveform. Shape: ``(samples,)``.

    Raises:
        AudioError: missing, undecodable, empty, non-finite or silent audio.
    """
    data, rate = read_mono(path)
    return prepare_waveform(data, rate, sample_rate, source=str(path))


def read_mono(path: str | os.PathLike) -> tuple[np.ndarray, int]:
    """Decode an audio file down-mixed to mono, at its own rate.

    Multi-channel files are decoded and averaged block by block, so memory
    is one mono copy of the recording (an hour of 44.1 kHz stereo needs
    0.6 GB, not the 1.3 GB of its decoded channels).

    Returns:
        (samples, sample_rate): float32 array. Shape: ``(frames,)``.

    Raises:
        AudioError: the file is missing or cannot be decoded.
    """
    path = Path(path)
    check_audio_file(path)
    import soundfile

    try:
        with soundfile.SoundFile(str(path)) as handle:
            return _mono_blocks(handle), int(handle.samplerate)
    except Exception as sf_error:  # libsndfile cannot read it: try librosa/audioread
        data, rate = _read_with_librosa(path, sf_error)
        return data.mean(axis=1, dtype=np.float32) if data.shape[1] > 1 else data[:, 0], rate


def _mono_blocks(handle: soundfile.SoundFile, block_frames: int = 1 << 16) -> np.ndarray:
    """Read an open ``soundfile.SoundFile`` into one mono float32 array."""
    total = max(int(handle.frames), 0)
    out = np.empty(total, np.float32)
    filled = 0
    extra = []  # a header that undercounts its frames (some mp3s)
    for block in handle.blocks(blocksize=block_frames, dtype="float32", always_2d=True):
        mono = block.mean(axis=1, dtype=np.float32) if block.shape[1] > 1 else block[:, 0]
        n = min(len(mono), total - filled)
        out[filled : filled + n] = mono[:n]
        filled += n
        if n < len(mono):
            extra.append(np.array(mono[n:]))
    out = out[:filled]
    return np.concatenate([out, *extra]) if extra else out


def prepare_waveform(
    data: np.ndarray | torch.Tensor, rate: int, sample_rate: int, *, source: str = "<waveform>"
) -> torch.Tensor:
    """Down-mix, validate and resample an in-memory waveform.

    Args:
        data: samples. Shape: ``(samples,)``, ``(samples, channels)``, or
            ``(channels, samples)`` as ``torchaudio.load`` returns it (a 2-D
            array with more columns than rows is read that way: a recording
            has more samples than channels).
        rate: its sample rate.
        sample_rate: the rate wanted.
        source: name used in error messages.

    Returns:
        Tensor: float32 mono waveform at ``sample_rate``. Shape: ``(samples,)``.
    """
    import torch

    if isinstance(data, torch.Tensor):
        data = data.detach().cpu().numpy()
    data = np.asarray(data, dtype=np.float32)
    if data.ndim == 2 and data.shape[0] < data.shape[1]:
        data = data.T  # (channels, samples), torchaudio's layout
    if data.ndim == 2:
        data = data.mean(axis=1, dtype=np.float32) if data.shape[1] > 1 else data[:, 0]
    elif data.ndim != 1:
        raise AudioError(f"{source}: expected a 1-D or 2-D waveform, got shape {tuple(data.shape)}")
    if data.size == 0:
        raise AudioError(f"{source}: audio contains no samples (zero length)")
    if not np.isfinite(data).all():
        raise AudioError(f"{source}: audio contains NaN or infinite samples")
    if max(float(data.max()), -float(data.min())) < SILENCE_PEAK:  # no |data| copy
        raise AudioError(f"{source}: audio is silent (peak amplitude below {SILENCE_PEAK:g}); nothing to align")
    if not MIN_RATE <= rate <= MAX_RATE:
        raise AudioError(
            f"{source}: impossible sample rate {rate} Hz (audio files have {MIN_RATE} to "
            f"{MAX_RATE} Hz); the file's header is probably corrupt"
        )
    if rate != sample_rate:
        import soxr

        data = soxr.resample(data, rate, sample_rate, quality="HQ").astype(np.float32, copy=False)
    return torch.from_numpy(np.ascontiguousarray(data))
