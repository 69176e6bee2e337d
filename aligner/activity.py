"""Speech activity from the audio itself: which model frames are too quiet
to be speech.

A frame's *level* is the energy (dB) of ``window`` samples centred on the
frame's centre (``t * frame_samples + frame_samples / 2``). The recording's
*speech level* is the 95th percentile of its frame levels (its loud
frames, whatever share of it is silence). A frame more than ``below_db``
under the speech level is *quiet*: digital silence, a noise floor, a pause.
Weak consonants (``f``, ``th``, a released ``t``) lie 20–35 dB under the
vowels around them, so thresholds of 40 dB or more leave them speech.

The aligner uses quiet frames twice: a model's ``quiet_db`` setting makes
the decoder prefer silence there (:meth:`aligner.Aligner.align_prepared`),
and the plausibility check (:mod:`aligner.guard`) flags words that lie on
quiet audio.

Shapes: a waveform ``(S,)``; levels and masks ``(T,)`` for ``T`` frames.
"""

from __future__ import annotations

import numpy as np
import torch

__all__ = ["SPEECH_PERCENTILE", "frame_levels", "quiet_frames"]

#: Percentile of the frame levels taken as the recording's speech level.
SPEECH_PERCENTILE = 95.0
_BLOCK = 4096


def frame_levels(waveform: torch.Tensor, frame_samples: int, frames: int, window: int = 480) -> torch.Tensor:
    """Energy in dB (re full scale 1.0) around the centre of each frame.

    Args:
        waveform: Shape ``(S,)``, float (numpy, single-threaded: cheap beside the network).
        frame_samples: samples per model frame (320 for wav2vec 2.0).
        frames: number of frames ``T``.
        window: samples per measurement (30 ms at 16 kHz).

    Returns:
        Shape ``(T,)``, float32; -120 dB for digital silence.
    """
    x = waveform.detach().to("cpu", torch.float32).reshape(-1).numpy()
    if frames <= 0:
        return torch.zeros(0)
    half = window // 2
    levels = np.empty(frames, dtype=np.float32)
    for first in range(0, frames, _BLOCK):  # blocks bound the memory for hours of audio
        last = min(frames, first + _BLOCK)
        lo = first * frame_samples + frame_samples // 2 - half  # window start of frame ``first``
        hi = (last - 1) * frame_samples + frame_samples // 2 + half
        segment = np.zeros(hi - lo, dtype=np.float64)  # zeros before the audio and after its end
        a, b = max(lo, 0), min(hi, x.size)
        if b > a:
            segment[a - lo : b - lo] = x[a:b]
        windows = np.lib.stride_tricks.sliding_window_view(segment, window)[::frame_samples]
        power = np.einsum("ij,ij->i", windows, windows) / window
        levels[first:last] = 10 * np.log10(power + 1e-12)
    return torch.from_numpy(levels)


def quiet_frames(levels: torch.Tensor, below_db: float) -> torch.Tensor:
    """Frames more than ``below_db`` under the speech level (the
    :data:`SPEECH_PERCENTILE` of ``levels``). Shape ``(T,)`` -> bool ``(T,)``."""
    if levels.numel() == 0:
        return torch.zeros(0, dtype=torch.bool)
    speech = torch.quantile(levels.double(), SPEECH_PERCENTILE / 100)
    return levels.double() < speech - below_db
