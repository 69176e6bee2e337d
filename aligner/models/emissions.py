"""Emission stage: batches of waveforms → frame log-probabilities.

Batching is exact: padding never changes a valid frame. The model gets
``lengths`` and its valid output lengths are used; models whose feature
extractor normalizes over time (``group_norm``, base-size wav2vec 2.0) run
that extractor item by item on the unpadded waveform, and waveform
normalization (large models, HuBERT, MMS) uses each item's valid samples.

Long recordings are cut into windows of ``chunk_seconds`` with
``context_seconds`` of extra audio on each side; the context frames are
dropped and the window cores stitched, so no more than one window of audio
goes through the transformer at a time and frames away from window edges
match one-shot inference.
"""

from __future__ import annotations

import copy
import numbers
import os
from collections.abc import Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING

import torch
import torch.nn.functional as F

from ..errors import AlignerError
from .alignment_model import AlignmentModel, is_group_norm
from .frontend import LogMelFrontEnd, frame_geometry, frames_for_samples
from .onnx_backend import OnnxEncoder, parse_backend

if TYPE_CHECKING:
    from torchaudio.models import Wav2Vec2Model

#: The range of vocal-tract-length warps (``EmissionModel(vtl_warps=...)``).
MIN_WARP, MAX_WARP = 0.5, 2.0


@dataclass(frozen=True)
class Emissions:
    """Frame log-probabilities of a batch.

    Attributes:
        log_probs: float32 CTC log-probabilities (padding frames are 0).
            Shape: ``(batch, frames, labels)``.
        lengths: valid frames of each item. Shape: ``(batch,)``, int64.
        frame_seconds: duration of one frame; frame ``t`` starts at
            ``t * frame_seconds``.
    """

    log_probs: torch.Tensor
    lengths: torch.Tensor
    frame_seconds: float


def resolve_device(device: str | torch.device | None) -> torch.device:
    """``None``/``"auto"`` → CUDA when available, else CPU."""
    if device is None or str(device) == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    try:
        device = torch.device(device)
    except RuntimeError as error:
        raise AlignerError(f"invalid device {device!r}: {error}") from None
    if device.type == "cuda" and not torch.cuda.is_available():
        raise AlignerError(f"device {device} requested but CUDA is not available on this machine")
    return device


_DTYPES = {
    "float32": torch.float32,
    "fp32": torch.float32,
    "bfloat16": torch.bfloat16,
    "bf16": torch.bfloat16,
    "float16": torch.float16,
    "fp16": torch.float16,
}


def resolve_dtype(dtype: str | torch.dtype | None, device: torch.device) -> torch.dtype:
    """``None``/``"auto"`` → bfloat16 on CUDA (float16 if bf16 is unsupported), float32 on CPU."""
    if isinstance(dtype, torch.dtype):
        return dtype
    if dtype is None or dtype == "auto":
        if device.type == "cuda":
            return torch.bfloat16 if torch.cuda.is_bf16_supported() else torch.float16
        return torch.float32
    try:
        return _DTYPES[str(dtype).lower()]
    except KeyError:
        raise AlignerError(f"unknown dtype {dtype!r}; choose one of {sorted(set(_DTYPES))}") from None


def _onnx_device(device: str | torch.device | None) -> torch.device:
    """The onnx backend runs on the CPU: None/``"auto"``/``"cpu"`` → CPU."""
    if device is None or str(device) in ("auto", "cpu"):
        return torch.device("cpu")
    raise AlignerError(f"the onnx backend runs on the CPU only, not on {device}; use --device cpu or the torch backend")


def conv_frames(network: torch.nn.Module, num_samples: int) -> int:
    """Frames the feature extractor of ``network`` (a ``Wav2Vec2Model``)
    outputs for ``num_samples`` samples (0 if too short)."""
    return frames_for_samples(frame_geometry(network), num_samples)


def num_frames(model: AlignmentModel, num_samples: int) -> int:
    """Frames the model outputs for ``num_samples`` input samples (0 if too
    short): :func:`conv_frames` of its network."""
    return conv_frames(model.model, num_samples)


def conv_features(
    net: Wav2Vec2Model, waveforms: Sequence[torch.Tensor], *, normalize: bool, warp: float | Sequence[float] = 1.0
) -> tuple[torch.Tensor, torch.Tensor]:
    """Convolutional features of a padded batch, exactly as for each item alone.

    Each waveform is normalized over its own samples when ``normalize``;
    ``group_norm`` extractors run item by item on the unpadded waveforms.

    Args:
        net: a ``torchaudio.models.Wav2Vec2Model``.
        waveforms: each of shape ``(samples,)``, on the network's device.
        warp: vocal-tract-length warp of the spectrum (a log-mel front end
            only, :class:`~aligner.models.frontend.LogMelFrontEnd`; 1: none),
            one for the batch or one per waveform.

    Returns:
        ``(features, lengths)``: Shape ``(batch, frames, channels)`` and
        ``(batch,)`` (valid frames).
    """
    items = [F.layer_norm(w, w.shape) for w in waveforms] if normalize else list(waveforms)
    extractor = net.feature_extractor
    device = items[0].device
    if is_group_norm(net) and len(items) > 1:
        feats = [extractor(w[None], None)[0][0] for w in items]
        lengths = torch.tensor([f.shape[0] for f in feats], device=device)
        return torch.nn.utils.rnn.pad_sequence(feats, batch_first=True), lengths
    lengths = torch.tensor([w.shape[-1] for w in items], device=device)
    padded = torch.nn.utils.rnn.pad_sequence(items, batch_first=True)
    warps = [float(warp)] * len(items) if isinstance(warp, (int, float)) else [float(w) for w in warp]
    if any(w != 1.0 for w in warps):
        return extractor(padded, lengths, warp=torch.tensor(warps, device=device))
    return extractor(padded, lengths)


class EmissionModel:
    """Runs an :class:`AlignmentModel` on a device, in a dtype, in windows.

    The network is moved to ``device`` once, here (``nn.Module.to`` moves
    in place).

    Backends (``backend``, or a ``dtype`` that names one):

    * ``"torch"`` (default): the torch network on ``device`` in ``dtype``
      (``"float32"``, ``"bfloat16"``, ``"float16"``: autocast).
    * ``"onnx"``: ONNX Runtime on the CPU (:mod:`aligner.models.onnx_backend`,
      the ``onnx`` extra): the feature extractor in torch, the encoder
      exported once per model (cached in ``cache_dir``, None: the default
      cache) and run in ``"float32"`` (equal to torch within ~1e-5) or
      ``"int8"`` (dynamic quantization of its linear layers, an
      approximation). ``dtype="onnx"`` / ``"onnx-int8"`` mean
      ``backend="onnx"`` with float32 / int8.

    ``vtl_warps`` (models with a log-mel front end): run the network once per
    vocal-tract-length warp of the spectrum (``f -> f * warp``, e.g.
    ``(0.85, 1.0, 1.15)``) and average the log-probabilities (then
    renormalized): a test-time augmentation that makes the emissions less
    dependent on a speaker's formant range, at one network pass per warp.

    Raises:
        AlignerError: bad options, the onnx backend on a GPU, or its
            packages missing.
    """

    def __init__(
        self,
        model: AlignmentModel,
        *,
        device: str | torch.device | None = None,
        dtype: str | torch.dtype | None = None,
        chunk_seconds: float = 20.0,
        context_seconds: float = 2.0,
        window_batch: int = 4,
        backend: str | None = None,
        cache_dir: str | os.PathLike[str] | None = None,
        vtl_warps: Sequence[float] = (1.0,),
    ):
        if chunk_seconds <= 0 or context_seconds < 0:
            raise AlignerError("chunk_seconds must be > 0 and context_seconds >= 0")
        self.vtl_warps = check_vtl_warps(vtl_warps, model)
        self.backend, dtype = parse_backend(dtype, backend)
        self.model = model
        self.cache_dir = cache_dir
        self.onnx: OnnxEncoder | None = None
        if self.backend == "onnx":
            self.device = _onnx_device(device)
            self.dtype = torch.float32  # of the feature extractor, which stays in torch
            self.precision = str(dtype)
        else:
            self.device = resolve_device(device)
            self.dtype = resolve_dtype(dtype, self.device)
            self.precision = str(self.dtype).removeprefix("torch.")
        self.net = model.model.to(self.device).eval()
        if self.backend == "onnx":
            self.onnx = OnnxEncoder.for_network(self.net, self.precision, cache=cache_dir)
        frame = model.frame_samples
        self.chunk_frames = max(1, round(chunk_seconds * model.sample_rate / frame))
        self.context_frames = round(context_seconds * model.sample_rate / frame)
        self.window_batch = max(1, window_batch)

    @property
    def frame_seconds(self) -> float:
        return self.model.frame_seconds

    def with_model(self, model: AlignmentModel) -> EmissionModel:
        """The same device, dtype and windows for another model (moved to the device here)."""
        other = copy.copy(self)
        other.model = model
        other.net = model.model.to(self.device).eval()
        if self.onnx is not None:
            other.onnx = OnnxEncoder.for_network(other.net, self.precision, cache=self.cache_dir)
        return other

    def __call__(self, waveforms: Sequence[torch.Tensor], warps: Sequence[float] | None = None) -> Emissions:
        """Log-probabilities of a list of mono waveforms.

        Args:
            waveforms: each of shape ``(samples,)`` at the model's rate.
            warps: a vocal-tract-length warp per waveform (a log-mel front
                end only; None: none), applied on top of ``vtl_warps``
                (each of those is multiplied by it); see :mod:`aligner.vtln`.

        Returns:
            Emissions on ``self.device``; log_probs shape ``(batch, frames, labels)``.
        """
        if not waveforms:
            raise AlignerError("no waveforms given")
        if warps is None:
            warps = [1.0] * len(waveforms)
        elif len(warps) != len(waveforms):
            raise AlignerError(f"{len(warps)} warps for {len(waveforms)} waveforms")
        elif any(w != 1.0 for w in warps):
            check_vtl_warps(list(warps), self.model)
        frames = [num_frames(self.model, int(w.shape[-1])) for w in waveforms]
        for index, count in enumerate(frames):
            if count < 1:
                raise AlignerError(
                    f"waveform {index} is too short: {int(waveforms[index].shape[-1])} samples, "
                    f"the model needs at least {self.model.receptive_field}"
                )
        window_limit = self.chunk_frames + 2 * self.context_frames
        short = [i for i, n in enumerate(frames) if n <= window_limit]
        outputs: dict[int, torch.Tensor] = {}
        for start in range(0, len(short), self.window_batch):
            group = short[start : start + self.window_batch]
            for index, out in zip(group, self._forward([waveforms[i] for i in group], [warps[i] for i in group])):
                outputs[index] = out
        for index, count in enumerate(frames):
            if count > window_limit:
                outputs[index] = self._forward_chunked(waveforms[index], count, warps[index])
        total = max(frames)
        log_probs = torch.zeros(len(waveforms), total, self.model.num_labels, device=self.device)
        for index, out in outputs.items():
            log_probs[index, : out.shape[0]] = out
        lengths = torch.tensor(frames, dtype=torch.int64, device=self.device)
        return Emissions(log_probs, lengths, self.frame_seconds)

    def _forward_chunked(self, waveform: torch.Tensor, total: int, warp: float = 1.0) -> torch.Tensor:
        """Windows with context on both sides; keep each window's core frames."""
        frame, field = self.model.frame_samples, self.model.receptive_field
        n = int(waveform.shape[-1])
        cores = [(a, min(a + self.chunk_frames, total)) for a in range(0, total, self.chunk_frames)]
        pieces = []
        for start in range(0, len(cores), self.window_batch):
            group = cores[start : start + self.window_batch]
            spans = []
            for a, b in group:
                first = max(0, a - self.context_frames)
                last = min(total, b + self.context_frames)
                spans.append((first, a, b, waveform[first * frame : min(n, (last - 1) * frame + field)]))
            outs = self._forward([s[3] for s in spans], [warp] * len(spans))
            for (first, a, b, _), out in zip(spans, outs):
                pieces.append(out[a - first : b - first])
        result = torch.cat(pieces)
        if result.shape[0] != total:  # the frame arithmetic above is exact; guard anyway
            raise RuntimeError(f"chunked emissions have {result.shape[0]} frames, expected {total}")
        return result

    @torch.inference_mode()
    def _forward(self, waveforms: Sequence[torch.Tensor], warps: Sequence[float]) -> list[torch.Tensor]:
        """One padded batch through the network, each item's spectrum warped
        by its warp; returns per-item (frames, labels)."""
        model = self.model
        items = [w.to(self.device, torch.float32) for w in waveforms]
        # one pass per averaged warp (just one by default), each on top of the items' own warps
        passes = [self._pass(items, [warp * own for own in warps]) for warp in self.vtl_warps]
        out_lengths = passes[0][1]
        log_probs = (
            passes[0][0] if len(passes) == 1 else torch.log_softmax(torch.stack([p for p, _ in passes]).mean(0), -1)
        )
        if model.append_star:
            log_probs = torch.cat([log_probs, log_probs.new_zeros(*log_probs.shape[:2], 1)], dim=-1)
        if log_probs.shape[-1] != model.num_labels:
            raise AlignerError(
                f"model {model.name} outputs {log_probs.shape[-1]} classes but has {model.num_labels} labels"
            )
        return [log_probs[i, : int(n)] for i, n in enumerate(out_lengths)]

    def _pass(self, items: list[torch.Tensor], warp: float | Sequence[float]) -> tuple[torch.Tensor, torch.Tensor]:
        """The network once on a padded batch, the spectrum warped by
        ``warp`` (one, or one per item): ``(log_probs, lengths)``, Shape
        ``(B, T, C)`` and ``(B,)``."""
        normalize = self.model.normalize_waveform
        if self.onnx is not None:
            features, lengths = conv_features(self.net, items, normalize=normalize, warp=warp)
            return self.onnx(features, lengths), lengths
        with torch.autocast(self.device.type, dtype=self.dtype, enabled=self.dtype != torch.float32):
            features, lengths = conv_features(self.net, items, normalize=normalize, warp=warp)
            x = self.net.encoder(features, lengths)
            if self.net.aux is not None:
                x = self.net.aux(x)
        return torch.log_softmax(x.float(), dim=-1), lengths


def check_vtl_warps(vtl_warps: Sequence[float], model: AlignmentModel) -> tuple[float, ...]:
    """``vtl_warps`` as a tuple, checked: one or more numbers in
    [:data:`MIN_WARP`, :data:`MAX_WARP`], and any warp other than 1 only for
    a model with a log-mel front end.

    Raises:
        AlignerError: otherwise (one line naming the problem).
    """
    if isinstance(vtl_warps, (str, bytes)) or not isinstance(vtl_warps, Sequence) or not vtl_warps:
        raise AlignerError(f"vtl_warps must be a non-empty sequence of numbers, not {vtl_warps!r}")
    warps: list[float] = []
    for warp in vtl_warps:
        if isinstance(warp, bool) or not isinstance(warp, numbers.Real) or not MIN_WARP <= warp <= MAX_WARP:
            raise AlignerError(
                f"each vocal-tract-length warp must be a number in [{MIN_WARP}, {MAX_WARP}], not {warp!r}"
            )
        warps.append(float(warp))
    if any(w != 1.0 for w in warps) and not isinstance(model.model.feature_extractor, LogMelFrontEnd):
        raise AlignerError(
            f"vocal-tract-length warps need a model with a log-mel front end; {model.name} reads the raw waveform"
        )
    return tuple(warps)
