"""Hidden representations of wav2vec 2.0 / HuBERT models, layer by layer.

:func:`extract_layer_features` returns, for every recording, the output of
each transformer layer (and the CNN feature projection as "layer 0") on
its valid frames only. Batching is exact in the same way as
:mod:`aligner.models.emissions`: waveform normalization uses each item's own
samples, ``group_norm`` feature extractors (which normalize over time) run
item by item on the unpadded waveform, and the transformer gets the valid
lengths so padded frames are masked out of attention.

:func:`hubert_prediction_accuracy` measures how well a
``torchaudio.models.HuBERTPretrainModel`` predicts the cluster ids it is
pre-trained on, on masked and on unmasked frames.

The layer outputs are those of ``Wav2Vec2Model.extract_features``: the
output of each transformer block, *before* the encoder's final layer norm
for models with ``encoder_layer_norm_first=True`` (large models), which is
what torchaudio returns too.
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, TypeAlias

import numpy as np
import torch
import torch.nn.functional as F
from torchaudio.models import HuBERTPretrainModel, Wav2Vec2Model

from ..errors import AlignerError
from ._torchaudio_compat import encoder_preprocess
from .alignment_model import AlignmentModel, is_group_norm
from .emissions import conv_features, conv_frames, resolve_device
from .frontend import frame_geometry, receptive_field

if TYPE_CHECKING:  # pragma: no cover
    import numpy.typing as npt

__all__ = ["LayerFeatures", "extract_layer_features", "hubert_prediction_accuracy", "resolve_network", "conv_frames"]

#: What :func:`extract_layer_features` accepts as a model.
AnyModel: TypeAlias = AlignmentModel | Wav2Vec2Model | HuBERTPretrainModel


@dataclass(frozen=True)
class LayerFeatures:
    """Per-layer hidden states of a batch of recordings (CPU, float32).

    Attributes:
        features: one tensor per recording, valid frames only.
            Shape: ``(layers, frames_i, dim)``.
        layer_ids: the layer number of each row: 0 is the CNN feature
            projection (the transformer's input), ``k >= 1`` the output of
            transformer block ``k``.
        frame_seconds: duration of one frame; frame ``t`` covers
            ``[t * frame_seconds, (t + 1) * frame_seconds)``.
    """

    features: tuple[torch.Tensor, ...]
    layer_ids: tuple[int, ...]
    frame_seconds: float

    @property
    def num_layers(self) -> int:
        return len(self.layer_ids)

    @property
    def lengths(self) -> list[int]:
        """Valid frames of each recording."""
        return [int(f.shape[1]) for f in self.features]

    @property
    def dim(self) -> int:
        return int(self.features[0].shape[-1])

    def __len__(self) -> int:
        return len(self.features)

    def layer(self, layer_id: int) -> np.ndarray:
        """All frames of all recordings at one layer, concatenated in order.

        Args:
            layer_id: a value of :attr:`layer_ids` (not a row index).

        Returns:
            float32 array. Shape: ``(sum of frames, dim)``.
        """
        if layer_id not in self.layer_ids:
            raise AlignerError(f"layer {layer_id} was not extracted; available layers: {list(self.layer_ids)}")
        row = self.layer_ids.index(layer_id)
        return torch.cat([f[row] for f in self.features]).numpy()


def resolve_network(model: AnyModel) -> Wav2Vec2Model:
    """The bare ``Wav2Vec2Model`` inside any accepted model object."""
    if isinstance(model, AlignmentModel):
        return model.model
    if isinstance(model, HuBERTPretrainModel):
        return model.wav2vec2
    if isinstance(model, Wav2Vec2Model):
        return model
    raise AlignerError(
        f"model must be an AlignmentModel, a torchaudio Wav2Vec2Model or a HuBERTPretrainModel, "
        f"not {type(model).__name__}"
    )


def _frame_samples(network: Wav2Vec2Model) -> int:
    return math.prod(stride for _, stride in frame_geometry(network))


def _as_waveforms(
    waveforms: Sequence[torch.Tensor | np.ndarray] | torch.Tensor | np.ndarray, name: str = "waveforms"
) -> list[torch.Tensor]:
    """A list of 1-D float32 tensors (a single 1-D waveform becomes a list of one)."""
    if isinstance(waveforms, (torch.Tensor, np.ndarray)) and waveforms.ndim == 1:
        waveforms = [waveforms]
    items = []
    for index, wave in enumerate(waveforms):
        wave = torch.as_tensor(wave)
        if wave.ndim != 1:
            raise AlignerError(f"{name}[{index}] must be a 1-D mono waveform, got shape {tuple(wave.shape)}")
        if not wave.is_floating_point():
            raise AlignerError(f"{name}[{index}] must hold float samples in [-1, 1], got dtype {wave.dtype}")
        items.append(wave.float())
    if not items:
        raise AlignerError(f"no {name} given")
    return items


def _check_frames(network: Wav2Vec2Model, waves: Sequence[torch.Tensor]) -> list[int]:
    frames = [conv_frames(network, int(w.shape[0])) for w in waves]
    field = receptive_field(frame_geometry(network))
    for index, count in enumerate(frames):
        if count < 1:
            raise AlignerError(
                f"waveform {index} is too short: {int(waves[index].shape[0])} samples, the model needs at least {field}"
            )
    return frames


class _EvalMode:
    """Eval mode inside the block, the module's previous mode restored after."""

    def __init__(self, module: torch.nn.Module) -> None:
        self.module = module

    def __enter__(self) -> None:
        self.was_training = self.module.training
        self.module.eval()

    def __exit__(self, *exc: object) -> None:
        self.module.train(self.was_training)


def _groups(count: int, size: int) -> list[list[int]]:
    return [list(range(start, min(count, start + size))) for start in range(0, count, size)]


def extract_layer_features(
    model: AnyModel,
    waveforms: Sequence[torch.Tensor] | torch.Tensor,
    *,
    num_layers: int | None = None,
    include_projection: bool = True,
    device: str | torch.device | None = None,
    normalize_waveform: bool | None = None,
    sample_rate: int | None = None,
    batch_size: int = 8,
) -> LayerFeatures:
    """Hidden states of every layer for a list of recordings.

    Equivalent to running ``Wav2Vec2Model.extract_features`` on each
    recording alone, but batched (``batch_size`` recordings per forward
    pass). Every recording goes through the transformer whole: cut long
    recordings (minutes) into utterances first, attention memory grows with
    the square of the length.

    Args:
        model: an :class:`~aligner.models.alignment_model.AlignmentModel`, a bare
            ``torchaudio.models.Wav2Vec2Model`` or a
            ``torchaudio.models.HuBERTPretrainModel`` (its ``wav2vec2``
            encoder is used). The network is moved to ``device`` in place
            and run in eval mode (its train/eval mode is restored after).
        waveforms: mono waveforms at the model's sample rate, each of shape
            ``(samples,)`` (tensors or numpy arrays).
        num_layers: run only the first ``num_layers`` transformer layers
            (None = all).
        include_projection: also return the CNN feature projection (the
            transformer's input) as layer 0.
        device: None/"auto" = CUDA when available.
        normalize_waveform: zero-mean / unit-variance each waveform over its
            samples first; None = the AlignmentModel's setting (False for a
            bare network: pass True for large wav2vec 2.0 / HuBERT models).
        sample_rate: model sample rate, for ``frame_seconds``; None = the
            AlignmentModel's rate, else 16000.
        batch_size: recordings per forward pass.

    Returns:
        :class:`LayerFeatures` on the CPU, per recording of shape
        ``(layers, frames, dim)`` where ``layers = num_layers`` (+1 with
        ``include_projection``).
    """
    network = resolve_network(model)
    if normalize_waveform is None:
        normalize_waveform = isinstance(model, AlignmentModel) and model.normalize_waveform
    if sample_rate is None:
        sample_rate = model.sample_rate if isinstance(model, AlignmentModel) else 16000
    total_layers = len(network.encoder.transformer.layers)
    if num_layers is not None and not 1 <= num_layers <= total_layers:
        raise AlignerError(f"num_layers must be between 1 and {total_layers}, got {num_layers}")
    if batch_size < 1:
        raise AlignerError(f"batch_size must be at least 1, got {batch_size}")
    waves = _as_waveforms(waveforms)
    frames = _check_frames(network, waves)
    device = resolve_device(device)
    network.to(device)

    outputs: list[torch.Tensor] = []
    with _EvalMode(network), torch.inference_mode():
        for group in _groups(len(waves), batch_size):
            items = [waves[i].to(device) for i in group]
            features, lengths = conv_features(network, items, normalize=normalize_waveform)
            projected, attention_mask = encoder_preprocess(network.encoder, features, lengths)
            hidden = network.encoder.transformer.get_intermediate_outputs(
                projected, attention_mask=attention_mask, num_layers=num_layers
            )
            if include_projection:
                hidden = [projected] + hidden
            stacked = torch.stack(hidden).float().cpu()  # (layers, batch, frames, dim)
            for row, n in enumerate(lengths.tolist()):
                outputs.append(stacked[:, row, :n].clone())
    for index, out in enumerate(outputs):
        if out.shape[1] != frames[index]:  # the frame arithmetic is exact; guard anyway
            raise RuntimeError(f"item {index}: {out.shape[1]} frames, expected {frames[index]}")
    count = num_layers if num_layers is not None else total_layers
    layer_ids = tuple(range(0 if include_projection else 1, count + 1))
    return LayerFeatures(tuple(outputs), layer_ids, _frame_samples(network) / sample_rate)


def _count_correct(logits: torch.Tensor | None) -> tuple[int, int]:
    """(correct, frames) of HuBERT prediction logits.

    In torchaudio's ``LogitGenerator`` column 0 of each row is the cosine
    similarity to the frame's own label embedding and columns ``1..C`` are
    all label embeddings (the one equal to the positive set to ``-inf``), so
    a frame is predicted correctly when column 0 is the row maximum. A row
    whose values are all equal counts as wrong.
    """
    if logits is None or logits.shape[0] == 0:
        return 0, 0
    top = logits.argmax(dim=-1) == 0
    bottom = logits.argmin(dim=-1) == 0
    return int((top & ~bottom).sum()), int(logits.shape[0])


def _as_labels(
    frame_labels: Iterable[npt.ArrayLike | torch.Tensor], count: int, frames: list[int], num_classes: int
) -> list[torch.Tensor]:
    labels = list(frame_labels)
    if len(labels) != count:
        raise AlignerError(f"got {count} waveforms but {len(labels)} frame label sequences")
    result = []
    for index, (item, n) in enumerate(zip(labels, frames)):
        item = torch.as_tensor(np.asarray(item))
        if item.ndim != 1:
            raise AlignerError(f"frame_labels[{index}] must be 1-D, got shape {tuple(item.shape)}")
        if item.is_floating_point() or item.is_complex() or item.dtype == torch.bool:
            raise AlignerError(f"frame_labels[{index}] must hold integer cluster ids, got {item.dtype}")
        if item.shape[0] != n:
            raise AlignerError(
                f"frame_labels[{index}] has {item.shape[0]} labels but waveform {index} gives {n} frames"
            )
        if n and (int(item.min()) < 0 or int(item.max()) >= num_classes):
            raise AlignerError(
                f"frame_labels[{index}] holds ids outside [0, {num_classes}) "
                f"(min {int(item.min())}, max {int(item.max())}); the model has {num_classes} classes"
            )
        result.append(item.long())
    return result


def _unmasked_logits(
    model: HuBERTPretrainModel, batch: torch.Tensor, labels: torch.Tensor, lengths: torch.Tensor
) -> torch.Tensor:
    """``HuBERTPretrainModel.forward`` without the mask generator: logits of
    all valid frames (the unmasked ones)."""
    network = model.wav2vec2
    x, out_lengths = network.feature_extractor(batch, lengths)
    valid = torch.arange(x.shape[1], device=x.device)[None, :] < out_lengths[:, None]
    x, attention_mask = encoder_preprocess(network.encoder, x, out_lengths)
    x = network.encoder.transformer(x, attention_mask=attention_mask)
    _, logit_u = model.logit_generator(x, labels, torch.zeros_like(valid), valid)
    return logit_u


def hubert_prediction_accuracy(
    pretrain_model: HuBERTPretrainModel,
    waveforms: Sequence[torch.Tensor] | torch.Tensor,
    frame_labels: Sequence,
    *,
    mask: bool = True,
    seed: int | None = 0,
    device: str | torch.device | None = None,
    normalize_waveform: bool = False,
    batch_size: int = 8,
) -> dict:
    """Masked and unmasked cluster-prediction accuracy of a HuBERT pretraining model.

    With ``mask=True`` this runs ``HuBERTPretrainModel.forward`` (random
    span masking, as in pre-training; ``seed`` makes it reproducible); with
    ``mask=False`` the same computation without masking, so every valid
    frame is an unmasked frame. A frame is correct when its label's
    embedding is the most similar one (see :func:`_count_correct`).
    ``group_norm`` models run one recording per forward pass, so padding
    never changes the result.

    Args:
        pretrain_model: a ``torchaudio.models.HuBERTPretrainModel`` (moved to
            ``device`` in place, run in eval mode so dropout is off).
        waveforms: mono waveforms, each of shape ``(samples,)``.
        frame_labels: one sequence of cluster ids per waveform, each of
            shape ``(frames,)`` with exactly the model's frame count for it.
        mask: apply the model's mask generator.
        seed: seed of the random masks (None = the global RNG state).
        normalize_waveform: zero-mean / unit-variance each waveform first.
        batch_size: recordings per forward pass.

    Returns:
        ``{"masked": acc, "unmasked": acc, "masked_frames": n, "unmasked_frames": n}``;
        an accuracy is NaN when there are no such frames (``mask=False``
        has no masked frames; the model's ``skip_masked`` / ``skip_nomask``).
    """
    if not isinstance(pretrain_model, HuBERTPretrainModel):
        raise AlignerError(
            f"pretrain_model must be a torchaudio HuBERTPretrainModel, not {type(pretrain_model).__name__}"
        )
    if batch_size < 1:
        raise AlignerError(f"batch_size must be at least 1, got {batch_size}")
    network = pretrain_model.wav2vec2
    waves = _as_waveforms(waveforms)
    frames = _check_frames(network, waves)
    num_classes = int(pretrain_model.logit_generator.label_embeddings.shape[0])
    labels = _as_labels(frame_labels, len(waves), frames, num_classes)
    device = resolve_device(device)
    pretrain_model.to(device)
    size = 1 if is_group_norm(network) else batch_size
    counts = {"masked": [0, 0], "unmasked": [0, 0]}
    with torch.random.fork_rng(devices=[device] if device.type == "cuda" else []):
        if seed is not None:
            torch.manual_seed(seed)
        with _EvalMode(pretrain_model), torch.no_grad():
            for group in _groups(len(waves), size):
                items = [waves[i].to(device) for i in group]
                if normalize_waveform:
                    items = [F.layer_norm(w, w.shape) for w in items]
                lengths = torch.tensor([w.shape[0] for w in items], device=device)
                batch = torch.nn.utils.rnn.pad_sequence(items, batch_first=True)
                targets = torch.nn.utils.rnn.pad_sequence([labels[i] for i in group], batch_first=True).to(device)
                if mask:
                    logit_m, logit_u, _ = pretrain_model(batch, targets, lengths)
                else:
                    logit_m, logit_u = None, _unmasked_logits(pretrain_model, batch, targets, lengths)
                for key, logits in (("masked", logit_m), ("unmasked", logit_u)):
                    correct, total = _count_correct(logits)
                    counts[key][0] += correct
                    counts[key][1] += total
    result: dict = {}
    for key, (correct, total) in counts.items():
        result[key] = correct / total if total else float("nan")
    result["masked_frames"] = counts["masked"][1]
    result["unmasked_frames"] = counts["unmasked"][1]
    return result
