"""Speech activity from the audio itself: which model frames are too quiet
to be speech.

A frame's *level* is the energy (dB) of ``window`` samples centred on the
frame's centre (``t * frame_samples + frame_samples / 2``). The recording's
*speech level* is the 95th percentile of its frame levels (its loud
frames, whatever share of it is silence). A frame more than ``below_db``
under the speech level is *quiet*: digital silence, a noise floor, a pause.
In a recording longer than :data:`SPEECH_SPAN_SECONDS` the speech level
is local (:func:`local_speech_levels`): the percentile of the levels
around each frame, so a softly spoken passage of a long recording (a
whisper, a distant speaker, a quieter file in a concatenation) is not
taken for silence because another passage is loud; but a passage whose
own level is :data:`FAR_FROM_SPEECH_DB` under the loudest one's holds no
speech (a noise floor far from it), and is measured against the loudest.
Weak consonants (``f``, ``th``, a released ``t``) lie 20–35 dB under the
vowels around them, so thresholds of 40 dB or more leave them speech.

The aligner uses quiet frames twice: a model's ``quiet_db`` setting makes
the decoder prefer silence there (:meth:`aligner.Aligner.align_prepared`),
and the plausibility check (:mod:`aligner.guard`) flags words that lie on
quiet audio.

Shapes: a waveform ``(S,)``; levels and masks ``(T,)`` for ``T`` frames.
"""

from __future__ import annotations

import math
import sys
from collections.abc import Sequence

import numpy as np
import torch

__all__ = [
    "FAR_FROM_SPEECH_DB",
    "SPEECH_PERCENTILE",
    "SPEECH_SPAN_SECONDS",
    "frame_levels",
    "local_speech_levels",
    "quiet_frames",
    "quiet_masks",
    "recording_speech_level",
    "speech_level",
]

#: Percentile of the frame levels taken as the recording's speech level.
SPEECH_PERCENTILE = 95.0
#: Seconds of audio whose levels give the speech level around a frame of a
#: longer recording (:func:`local_speech_levels`).
SPEECH_SPAN_SECONDS = 30.0
#: A long recording's passage whose local speech level is this many dB
#: under its loudest passage's holds no speech (a whisper or a distant
#: speaker lies 20-30 dB under a near one; a noise floor 50 dB and more):
#: its frames are measured against the loudest passage's level
#: (:func:`recording_speech_level`).
FAR_FROM_SPEECH_DB = 45.0
_BLOCK = 4096


def frame_levels(waveform: torch.Tensor, frame_samples: int, frames: int, window: int = 480) -> torch.Tensor:
    """Energy in dB (re full scale 1.0) around the centre of each frame.

    Args:
        waveform: Shape ``(S,)``, float (single-threaded: cheap beside the
            network; compiled once numba is in the process, see
            :mod:`aligner._activity_kernels`, numpy before).
        frame_samples: samples per model frame (320 for wav2vec 2.0).
        frames: number of frames ``T``.
        window: samples per measurement (30 ms at 16 kHz).

    Returns:
        Shape ``(T,)``, float32; -120 dB for digital silence.
    """
    if frames <= 0:
        return torch.zeros(0)
    x = (waveform if waveform.dtype == torch.float32 else waveform.float()).numpy(force=True).reshape(-1)
    if _numba_loaded():
        from ._activity_kernels import frame_levels as compiled

        levels = np.empty(frames, dtype=np.float32)
        compiled(np.ascontiguousarray(x), frame_samples, frames, window, levels)
        return torch.from_numpy(levels)
    offset = frame_samples // 2 - window // 2  # window start of frame t: t * frame_samples + offset
    # Counted from the first window's start, every window is a whole number
    # of blocks of ``step`` samples: square and sum each sample once per
    # block, then add ``window // step`` blocks per frame.
    step = math.gcd(frame_samples, window)
    stride, width = frame_samples // step, window // step
    power = np.empty(frames)
    for first in range(0, frames, _BLOCK):  # blocks bound the memory for hours of audio
        count = min(frames - first, _BLOCK)
        energy = _block_energies(x, first * frame_samples + offset, (count - 1) * stride + width, step)
        sums = power[first : first + count]
        np.copyto(sums, energy[0 : (count - 1) * stride + 1 : stride])
        for k in range(1, width):
            sums += energy[k : k + (count - 1) * stride + 1 : stride]
    power /= window
    power += 1e-12
    np.log(power, out=power)
    power *= 10 / math.log(10)  # dB: 10 log10
    return torch.from_numpy(power.astype(np.float32))


def _numba_loaded() -> bool:
    """Whether numba is in the process already (then its import costs nothing)."""
    return "numba" in sys.modules


def _block_energies(x: np.ndarray, lo: int, count: int, step: int) -> np.ndarray:
    """Sum of squares of each of ``count`` blocks of ``step`` samples from
    sample ``lo`` on (zeros outside ``x``): whole blocks inside the audio in
    one float32 pass over a view, the few that cross its ends one by one.
    Shape ``(count,)``, float64."""
    energy = np.zeros(count, dtype=np.float64)
    inside_first = min(count, max(0, -(lo // step)))  # first block starting at or after sample 0
    inside_end = max(inside_first, min(count, (x.size - lo) // step))  # blocks ending by the audio's end
    if inside_end > inside_first:
        blocks = x[lo + inside_first * step : lo + inside_end * step].reshape(-1, step)
        energy[inside_first:inside_end] = np.einsum("ij,ij->i", blocks, blocks)
    touching_end = min(count, -((lo - x.size) // step))  # blocks starting before the audio's end
    for j in [*range(max(0, (-lo) // step), inside_first), *range(inside_end, touching_end)]:
        a, b = max(lo + j * step, 0), min(lo + (j + 1) * step, x.size)
        if b > a:
            energy[j] = np.dot(x[a:b], x[a:b])
    return energy


def speech_level(levels: torch.Tensor) -> float:
    """The recording's speech level: the :data:`SPEECH_PERCENTILE` of its
    frame levels (dB), interpolated linearly between ranks as
    ``numpy.percentile`` does (one partition instead of its general
    machinery: about 7x faster on a recording's few thousand levels).
    Shape ``(T,)``, ``T > 0``."""
    return _percentile(levels.numpy(force=True).reshape(-1))


def _percentile(values: np.ndarray) -> float:
    """:func:`speech_level` of a numpy array of levels. Shape ``(T,)``, ``T > 0``."""
    rank = SPEECH_PERCENTILE / 100 * (values.size - 1)
    below = int(rank)
    values = np.partition(values, below)
    lower = float(values[below])
    # the next rank: the least value after it (NaN only if all are: a sort puts NaNs last)
    upper = float(np.fmin.reduce(values[below + 1 :])) if below + 1 < values.size else lower
    return lower + (upper - lower) * (rank - below)


def quiet_frames(levels: torch.Tensor, below_db: float, speech: float | None = None) -> torch.Tensor:
    """Frames more than ``below_db`` under the speech level (the
    :data:`SPEECH_PERCENTILE` of ``levels``, :func:`speech_level`; or
    ``speech`` when the caller has it already). Shape ``(T,)`` -> bool ``(T,)``."""
    if levels.numel() == 0:
        return torch.zeros(0, dtype=torch.bool)
    return quiet_masks([levels], [speech_level(levels) if speech is None else speech], below_db)[0]


def local_speech_levels(levels: torch.Tensor, span: int) -> torch.Tensor:
    """The speech level (dB) around each frame: :func:`speech_level` of the
    ``span`` frames centred on it (shifted inward at the recording's ends),
    computed every ``span // 6`` frames and interpolated linearly between.
    A recording of at most ``span`` frames gets its own speech level
    everywhere, as :func:`speech_level` gives it. Shape ``(T,)`` -> float64
    ``(T,)``."""
    values = levels.numpy(force=True).reshape(-1)
    frames = values.size
    if frames <= span:
        return torch.full((frames,), speech_level(levels) if frames else 0.0, dtype=torch.float64)
    hop = max(1, span // 6)
    centres = np.arange(0, frames + hop - 1, hop).clip(max=frames - 1)  # every hop frames, the last frame included
    firsts = (centres - span // 2).clip(0, frames - span)
    at = np.array([_percentile(values[first : first + span]) for first in firsts.tolist()])
    return torch.from_numpy(np.interp(np.arange(frames), centres, at))


def recording_speech_level(levels: torch.Tensor, span: int) -> float | torch.Tensor:
    """A recording's speech level as :func:`quiet_masks` takes it: one
    number (:func:`speech_level`; 0 for no frames) for a recording of at
    most ``span`` frames, one per frame for a longer one: the local level
    (:func:`local_speech_levels`), except where no frame around comes near
    the recording's speech (the local level more than
    :data:`FAR_FROM_SPEECH_DB` under the loudest passage's): there the
    loudest passage's level, so that minutes of a noise floor far from any
    speech are quiet, not speech of their own. Shape ``(T,)`` -> float or
    float64 ``(T,)``."""
    frames = levels.numel()
    if frames > span:
        local = local_speech_levels(levels, span)
        loudest = float(local.max())
        local[local < loudest - FAR_FROM_SPEECH_DB] = loudest
        return local
    return speech_level(levels) if frames else 0.0


def quiet_masks(
    levels: Sequence[torch.Tensor], speech: Sequence[float | torch.Tensor], below_db: float
) -> list[torch.Tensor]:
    """:func:`quiet_frames` of several recordings in one comparison: each
    recording's frames more than ``below_db`` under its speech level
    (``speech``, dB: one for the recording, or one per frame as
    :func:`local_speech_levels` gives them). Shapes: levels per recording
    ``(T_i,)`` -> bool ``(T_i,)``."""
    values = [level.numpy(force=True).reshape(-1) for level in levels]
    sizes = [value.size for value in values]
    if not values:
        return []
    limits = np.empty(sum(sizes))
    first = 0
    for level_db, size in zip(speech, sizes):  # one number, or one per frame
        limits[first : first + size] = level_db.numpy(force=True) if isinstance(level_db, torch.Tensor) else level_db
        first += size
    limits -= below_db
    quiet = torch.from_numpy(np.concatenate(values).astype(np.float64) < limits)
    return list(quiet.split(sizes))
