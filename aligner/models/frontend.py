"""A log-mel feature extractor for ``torchaudio.models.Wav2Vec2Model``.

``Wav2Vec2Model`` takes any feature-extractor module that maps
``(waveforms (B, S), lengths (B,))`` to ``(features (B, T, F), lengths (B,))``.
:class:`LogMelFrontEnd` is such a module: 80 log-mel bands every 10 ms
(25 ms Hann windows), two consecutive 10 ms frames stacked into one 20 ms
frame (the frame rate of wav2vec 2.0), and each recording's features
normalized to zero mean and unit variance over its own valid frames
(cepstral mean and variance normalization), so the output does not depend
on gain, on a fixed channel filter, or on padding. With ``dynamic_range_db``
set, each recording's log-mel energies are first floored at its own peak
minus that many decibels, so how quiet its silences are (digital silence,
a noise floor at -90 or -50 dB) no longer changes what the network sees.
With ``floor_span_seconds`` also set, a recording longer than the span
(a window of a long recording) is floored at a local peak instead: the
loudest energy within the span around each 10 ms frame, so its loud
passages do not floor away a soft one. Recordings up to the span, the
length of the utterances the model was trained on, keep their own peak.

Frame geometry: output frame ``t`` is computed from samples
``[320 t, 320 t + 560)`` (two 400-sample windows 160 samples apart), so a
recording of ``S >= 560`` samples has ``(S - 560) // 320 + 1`` frames. The
geometry is that of a one-layer convolution with kernel 560 and stride
320, which :func:`frame_geometry` reports for every kind of extractor.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from typing import TYPE_CHECKING, Any

import torch
from torch import nn

from ..errors import ModelConfigError

if TYPE_CHECKING:  # pragma: no cover
    from torchaudio.models import Wav2Vec2Model

__all__ = ["LogMelFrontEnd", "frame_geometry", "frames_for_samples", "warp_spectrum"]


def warp_spectrum(power: torch.Tensor, alpha: torch.Tensor) -> torch.Tensor:
    """Vocal-tract-length perturbation: ``out[f] = power[f / alpha]`` per item
    (linear interpolation). Shape: power ``(B, N, F)``, alpha ``(B,)``."""
    bins = power.shape[-1]
    source = torch.arange(bins, device=power.device).float()[None, :] / alpha[:, None]
    source = source.clamp(0, bins - 1)
    low = source.floor().long()
    high = (low + 1).clamp(max=bins - 1)
    frac = (source - low.float())[:, None, :]
    gather_low = torch.gather(power, 2, low[:, None, :].expand(-1, power.shape[1], -1))
    gather_high = torch.gather(power, 2, high[:, None, :].expand(-1, power.shape[1], -1))
    return gather_low * (1 - frac) + gather_high * frac


def _mel_filters(num_bins: int, n_fft: int, sample_rate: int, f_min: float, f_max: float) -> torch.Tensor:
    """HTK-style triangular mel filters. Shape: ``(n_fft // 2 + 1, num_bins)``."""
    import torchaudio.functional as F

    with torch.device("cpu"):  # also when the module is built on the meta device (a shape check)
        return F.melscale_fbanks(n_fft // 2 + 1, f_min, f_max, num_bins, sample_rate, norm=None, mel_scale="htk")


class LogMelFrontEnd(nn.Module):
    """Log-mel features, 2 frames stacked, per-recording normalization.

    Args:
        sample_rate: input rate (Hz).
        num_bins: mel bands per 10 ms frame (output width ``2 * num_bins``).
        win_length, hop_length: analysis window and hop in samples.
        stack: 10 ms frames stacked per output frame.
        f_min, f_max: band edges of the filterbank (Hz).
        dynamic_range_db: floor every log-mel energy of a recording at its
            loudest (over its valid frames and all bands) minus this many
            dB before normalization; None: no floor.
        floor_span_seconds: for a recording longer than this many
            seconds, take that loudest energy within the span centred on
            each 10 ms frame (all bands); None, or a shorter recording: over
            the whole recording. Needs ``dynamic_range_db``.

    Raises:
        ModelConfigError: ``dynamic_range_db`` or ``floor_span_seconds`` is
            not a positive number, or a span without a floor.
    """

    window: torch.Tensor  # buffers (registered in __init__)
    filters: torch.Tensor

    def __init__(
        self,
        sample_rate: int = 16000,
        num_bins: int = 80,
        win_length: int = 400,
        hop_length: int = 160,
        stack: int = 2,
        f_min: float = 40.0,
        f_max: float = 7600.0,
        dynamic_range_db: float | None = None,
        floor_span_seconds: float | None = None,
    ) -> None:
        super().__init__()
        if dynamic_range_db is not None and not (math.isfinite(dynamic_range_db) and dynamic_range_db > 0):
            raise ModelConfigError(
                f"dynamic_range_db must be a positive number of dB or None, not {dynamic_range_db!r}"
            )
        if floor_span_seconds is not None and not (
            dynamic_range_db is not None and math.isfinite(floor_span_seconds) and floor_span_seconds > 0
        ):
            raise ModelConfigError(
                f"floor_span_seconds must be a positive number of seconds (with dynamic_range_db) or None, "
                f"not {floor_span_seconds!r}"
            )
        self.dynamic_range_db = None if dynamic_range_db is None else float(dynamic_range_db)
        self.floor_span_seconds = None if floor_span_seconds is None else float(floor_span_seconds)
        self.sample_rate = int(sample_rate)
        self.num_bins = int(num_bins)
        self.win_length = int(win_length)
        self.hop_length = int(hop_length)
        self.stack = int(stack)
        self.f_min = float(f_min)
        self.f_max = float(f_max)
        self.n_fft = 1 << (self.win_length - 1).bit_length()
        with torch.device("cpu"):  # a real window also when the module is built on the meta device
            window = torch.hann_window(self.win_length, periodic=True)
        self.register_buffer("window", window, persistent=False)
        self.register_buffer(
            "filters",
            _mel_filters(self.num_bins, self.n_fft, self.sample_rate, self.f_min, self.f_max),
            persistent=False,
        )

    # ------------------------------------------------------------------ geometry
    @property
    def kernel(self) -> int:
        """Samples one output frame is computed from (560)."""
        return self.win_length + (self.stack - 1) * self.hop_length

    @property
    def stride(self) -> int:
        """Samples between output frames (320)."""
        return self.stack * self.hop_length

    @property
    def output_dim(self) -> int:
        return self.stack * self.num_bins

    def config(self) -> dict:
        """Constructor arguments (saved with the model)."""
        return {
            "type": "log_mel",
            "sample_rate": self.sample_rate,
            "num_bins": self.num_bins,
            "win_length": self.win_length,
            "hop_length": self.hop_length,
            "stack": self.stack,
            "f_min": self.f_min,
            "f_max": self.f_max,
            **({} if self.dynamic_range_db is None else {"dynamic_range_db": self.dynamic_range_db}),
            **({} if self.floor_span_seconds is None else {"floor_span_seconds": self.floor_span_seconds}),
        }

    def num_frames(self, lengths: torch.Tensor) -> torch.Tensor:
        """Output frames for waveforms of ``lengths`` samples (0 when shorter
        than :attr:`kernel`)."""
        return torch.clamp(torch.div(lengths - self.kernel, self.stride, rounding_mode="floor") + 1, min=0)

    # ------------------------------------------------------------------- compute
    def power_spectrum(self, waveforms: torch.Tensor) -> torch.Tensor:
        """|STFT|² of 10 ms frames (no centring). Shape: ``(B, S)`` -> ``(B, N, n_fft//2+1)``."""
        frames = waveforms.float().unfold(-1, self.win_length, self.hop_length)
        frames = frames - frames.mean(dim=-1, keepdim=True)
        spectrum = torch.fft.rfft(frames * self.window, n=self.n_fft)
        return spectrum.real.square() + spectrum.imag.square()

    def log_mel(self, power: torch.Tensor) -> torch.Tensor:
        """Log-mel energies of a power spectrum. Shape: ``(..., n_fft//2+1)`` -> ``(..., num_bins)``."""
        return torch.log(power @ self.filters + 1e-8)

    def stack_and_normalize(
        self, log_mel: torch.Tensor, lengths: torch.Tensor | None
    ) -> tuple[torch.Tensor, torch.Tensor]:
        """Floor (``dynamic_range_db``), stack 10 ms frames and normalize
        each item over its valid frames.

        Shape: log_mel ``(B, N, num_bins)``, lengths ``(B,)`` in samples ->
        ``(B, T, stack * num_bins)``, ``(B,)`` frames.
        """
        if self.dynamic_range_db is not None:
            log_mel = self.floor(log_mel, lengths)
        batch, count, bins = log_mel.shape
        total = count // self.stack
        x = log_mel[:, : total * self.stack].reshape(batch, total, self.stack * bins)
        if lengths is None:
            frames = torch.full((batch,), total, dtype=torch.int64, device=x.device)
        else:
            frames = torch.clamp(self.num_frames(lengths.to(x.device)), max=total)
        mask = (torch.arange(total, device=x.device)[None, :] < frames[:, None]).unsqueeze(-1)
        count_valid = frames.clamp(min=1).to(x.dtype)[:, None, None]
        mean = (x * mask).sum(dim=1, keepdim=True) / count_valid
        var = (((x - mean) * mask).square()).sum(dim=1, keepdim=True) / count_valid
        x = (x - mean) / torch.sqrt(var + 1e-5)
        return x * mask, frames

    def floor(self, log_mel: torch.Tensor, lengths: torch.Tensor | None) -> torch.Tensor:
        """``log_mel`` floored at each item's peak (over its valid 10 ms
        frames; within ``floor_span_seconds`` of each frame when set) minus
        ``dynamic_range_db`` (a new tensor).
        Shape: ``(B, N, num_bins)``, lengths ``(B,)`` samples."""
        assert self.dynamic_range_db is not None, "floor() needs dynamic_range_db"
        count = log_mel.shape[1]
        if lengths is None:
            valid = torch.full((log_mel.shape[0],), count, dtype=torch.int64, device=log_mel.device)
        else:
            valid = torch.div(lengths.to(log_mel.device) - self.win_length, self.hop_length, rounding_mode="floor") + 1
            valid = valid.clamp(min=1, max=count)
        inside = (torch.arange(count, device=log_mel.device)[None, :] < valid[:, None]).unsqueeze(-1)
        loudest = torch.where(inside, log_mel, torch.finfo(log_mel.dtype).min)
        peak = loudest.amax(dim=(1, 2), keepdim=True)
        span = (
            0
            if self.floor_span_seconds is None
            else round(self.floor_span_seconds * self.sample_rate / self.hop_length)
        )
        if span and count > span:  # items longer than the span: the running maximum of each frame's loudest band
            half = span // 2
            frame_peak = loudest.amax(dim=2)[:, None]  # (B, 1, N)
            local = nn.functional.max_pool1d(frame_peak, 2 * half + 1, stride=1, padding=half)[:, 0, :, None]
            peak = torch.where((valid > span)[:, None, None], local, peak)
        return torch.maximum(log_mel, peak - self.dynamic_range_db * math.log(10) / 10)

    def forward(
        self, waveforms: torch.Tensor, lengths: torch.Tensor | None = None, warp: float | torch.Tensor = 1.0
    ) -> tuple[torch.Tensor, torch.Tensor | None]:
        """Shape: waveforms ``(B, S)``, lengths ``(B,)`` samples -> features
        ``(B, T, 2 * num_bins)``, lengths ``(B,)`` frames (None when
        ``lengths`` is None). ``warp``: a vocal-tract-length warp of the
        spectrum (:func:`warp_spectrum`; 1: none), one for the batch or one
        per item (Shape ``(B,)``)."""
        if waveforms.shape[-1] < self.win_length:
            waveforms = nn.functional.pad(waveforms, (0, self.win_length - waveforms.shape[-1]))
        with torch.autocast(device_type=waveforms.device.type, enabled=False):
            power = self.power_spectrum(waveforms)
            alpha = torch.as_tensor(warp, dtype=torch.float32, device=power.device).expand(power.shape[0])
            if bool((alpha != 1.0).any()):
                power = warp_spectrum(power, alpha)
            features, frames = self.stack_and_normalize(self.log_mel(power), lengths)
        return features, (frames if lengths is not None else None)


def frame_geometry(network: nn.Module) -> list[tuple[int, int]]:
    """``(kernel, stride)`` in samples of each layer of the feature
    extractor of a ``Wav2Vec2Model`` (conv stack or :class:`LogMelFrontEnd`)."""
    extractor: Any = network.feature_extractor
    if isinstance(extractor, LogMelFrontEnd):
        return [(extractor.kernel, extractor.stride)]
    return [(int(layer.conv.kernel_size[0]), int(layer.conv.stride[0])) for layer in extractor.conv_layers]


def frames_for_samples(geometry: Sequence[tuple[int, int]], num_samples: int) -> int:
    """Output frames of a feature extractor of this geometry for a waveform
    of ``num_samples`` (0 when too short)."""
    length = int(num_samples)
    for kernel, stride in geometry:
        length = math.floor((length - kernel) / stride) + 1
        if length <= 0:
            return 0
    return length


def receptive_field(geometry: Sequence[tuple[int, int]]) -> int:
    """Samples one output frame sees."""
    field = 1
    for kernel, stride in reversed(list(geometry)):
        field = (field - 1) * stride + kernel
    return field


def build_network(architecture: dict[str, Any]) -> Wav2Vec2Model:
    """``torchaudio.models.wav2vec2_model(**architecture)``, where an extra
    ``front_end`` entry (a :meth:`LogMelFrontEnd.config` dict) replaces the
    convolutional feature extractor by a :class:`LogMelFrontEnd`.

    Raises:
        TypeError, ValueError: bad arguments (the callers name the source;
            the front end's own checks raise :class:`ModelConfigError`, a
            ``ValueError``).
    """
    from torchaudio.models import wav2vec2_model

    kwargs = dict(architecture)
    front_end = kwargs.pop("front_end", None)
    kwargs["extractor_conv_layer_config"] = [
        tuple(layer) if isinstance(layer, list) else layer for layer in kwargs["extractor_conv_layer_config"]
    ]
    if front_end is None:
        return wav2vec2_model(**kwargs)
    if not isinstance(front_end, dict) or front_end.get("type") != "log_mel":
        raise ModelConfigError(f"unknown front_end {front_end!r} (only type 'log_mel' is known)")
    options = {key: value for key, value in front_end.items() if key != "type"}
    extractor = LogMelFrontEnd(**options)
    # the placeholder conv layer only sets the width the encoder's projection expects
    kwargs["extractor_conv_layer_config"] = [(extractor.output_dim, 1, 1)]
    net = wav2vec2_model(**kwargs)
    net.feature_extractor = extractor
    return net
