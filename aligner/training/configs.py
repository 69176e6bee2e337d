"""Named training configurations for :func:`aligner.training.ctc.train`.

A :class:`TrainConfig` holds the network architecture (for training from
scratch) and the optimisation hyper-parameters. Three are shipped:

``tiny``
    A few thousand parameters, for tests and examples: trains in seconds.
``small``
    The shipped English model: about 5.7 M parameters (≈ 23 MB as float32
    safetensors), standard 320-sample frames (conv strides 5,2,2,2,2,2,2),
    ``layer_norm`` feature extractor (padding-invariant, so batches are
    exact), pre-norm transformer (6 layers of 256, 4 heads, feed-forward
    1024); about 70-80x faster than real time on 2 CPU cores. Training from
    scratch runs at about 20x real time per CPU thread; CTC leaves its
    all-blank plateau after roughly 1,000 steps of 20 s batches, so plan
    several thousand steps (``max_steps``).
``finetune``
    Hyper-parameters for fine-tuning a pretrained model given with
    ``init=`` (its architecture is kept): small learning rate, frozen
    convolutional feature extractor.

This module is deliberately free of heavy imports (no torch).
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import asdict, dataclass, field, fields, replace
from typing import Any

from ..errors import TrainingError  # re-exported: it lived here before errors.py held it

__all__ = ["CONFIGS", "CONFIG_NAMES", "TrainConfig", "TrainingError", "get_config"]


@dataclass(frozen=True)
class TrainConfig:
    """Architecture and hyper-parameters of one training run.

    Attributes:
        name: the config's name (recorded in logs and checkpoints).
        architecture: keyword arguments of ``torchaudio.models.wav2vec2_model``
            for a model trained from scratch, without the dropouts and
            ``aux_num_out`` (set from the fields below and the labels).
            Ignored when training starts from ``init=``.
        normalize_waveform: zero-mean / unit-variance each waveform before the
            network (from scratch only; an init model keeps its own flag).
        projection_dropout, attention_dropout, ff_dropout, encoder_dropout,
            layer_drop: dropouts of the transformer encoder while training
            (the saved model has none).
        freeze_feature_extractor: do not train the convolutional feature
            extractor (usual when fine-tuning a pretrained model).
        lr: peak learning rate of AdamW.
        betas, eps, weight_decay: AdamW settings; weight decay applies to
            matrices and convolution kernels only (not biases or norms).
        warmup_fraction: share of the total steps spent on a linear warm-up
            from 0 to ``lr``.
        schedule: ``"cosine"`` or ``"linear"`` decay after the warm-up, down to
            ``lr * min_lr_ratio`` at the last step.
        min_lr_ratio: final learning rate as a fraction of ``lr``.
        clip_norm: gradient clipping (global L2 norm).
        epochs: default number of passes over the training utterances.
        batch_seconds: default padded audio per batch (seconds).
        max_seconds: utterances longer than this are skipped (memory).
        time_mask_prob: probability that a feature frame starts a time mask
            (SpecAugment-style masking of the conv features; 0 = off).
        time_mask_length: frames zeroed by each time mask.
        sortagrad: run the first epoch from the shortest to the longest
            batch instead of in random order (a curriculum that helps CTC
            leave its all-blank plateau sooner).
    """

    name: str
    architecture: Mapping[str, Any] = field(default_factory=dict)
    normalize_waveform: bool = True
    projection_dropout: float = 0.0
    attention_dropout: float = 0.0
    ff_dropout: float = 0.0
    encoder_dropout: float = 0.0
    layer_drop: float = 0.0
    freeze_feature_extractor: bool = False
    lr: float = 1e-3
    betas: tuple[float, float] = (0.9, 0.98)
    eps: float = 1e-8
    weight_decay: float = 0.01
    warmup_fraction: float = 0.08
    schedule: str = "cosine"
    min_lr_ratio: float = 0.05
    clip_norm: float = 5.0
    epochs: int = 10
    batch_seconds: float = 60.0
    max_seconds: float = 60.0
    time_mask_prob: float = 0.0
    time_mask_length: int = 5
    sortagrad: bool = False

    def to_dict(self) -> dict[str, Any]:
        """JSON-compatible form (tuples become lists)."""
        data = asdict(self)
        data["architecture"] = _jsonable(dict(self.architecture))
        data["betas"] = list(self.betas)
        return data

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> TrainConfig:
        """Inverse of :meth:`to_dict` (unknown keys are an error)."""
        known = {f.name for f in fields(cls)}
        unknown = sorted(set(data) - known)
        if unknown:
            raise TrainingError(f"unknown training config fields: {', '.join(unknown)}")
        values = dict(data)
        if "betas" in values:
            values["betas"] = tuple(values["betas"])
        if "architecture" in values:
            arch = dict(values["architecture"])
            if isinstance(arch.get("extractor_conv_layer_config"), list):
                arch["extractor_conv_layer_config"] = [tuple(layer) for layer in arch["extractor_conv_layer_config"]]
            values["architecture"] = arch
        return cls(**values)

    def with_options(self, **changes: Any) -> TrainConfig:
        """A copy with some fields changed (``None`` values are ignored)."""
        return replace(self, **{k: v for k, v in changes.items() if v is not None})


def _jsonable(value: Any) -> Any:
    if isinstance(value, (list, tuple)):
        return [_jsonable(v) for v in value]
    if isinstance(value, dict):
        return {k: _jsonable(v) for k, v in value.items()}
    return value


def _architecture(
    conv: list[tuple[int, int, int]],
    embed_dim: int,
    num_layers: int,
    num_heads: int,
    ff_dim: int,
    pos_kernel: int,
    pos_groups: int,
) -> dict[str, Any]:
    return dict(
        extractor_mode="layer_norm",
        extractor_conv_layer_config=conv,
        extractor_conv_bias=True,
        encoder_embed_dim=embed_dim,
        encoder_pos_conv_kernel=pos_kernel,
        encoder_pos_conv_groups=pos_groups,
        encoder_num_layers=num_layers,
        encoder_num_heads=num_heads,
        encoder_ff_interm_features=ff_dim,
        encoder_layer_norm_first=True,
    )


#: The shipped configurations, by name.
CONFIGS: dict[str, TrainConfig] = {
    "tiny": TrainConfig(
        name="tiny",
        architecture=_architecture(
            [(8, 10, 5)] + [(16, 3, 2)] * 4 + [(16, 2, 2)] * 2,
            embed_dim=16,
            num_layers=1,
            num_heads=2,
            ff_dim=32,
            pos_kernel=8,
            pos_groups=4,
        ),
        lr=1e-2,
        warmup_fraction=0.1,
        weight_decay=0.0,
        epochs=20,
        batch_seconds=8.0,
        max_seconds=30.0,
    ),
    "small": TrainConfig(
        name="small",
        architecture=_architecture(
            [(64, 10, 5), (128, 3, 2), (128, 3, 2), (256, 3, 2), (256, 3, 2), (256, 2, 2), (256, 2, 2)],
            embed_dim=256,
            num_layers=6,
            num_heads=4,
            ff_dim=1024,
            pos_kernel=64,
            pos_groups=16,
        ),
        projection_dropout=0.05,
        attention_dropout=0.05,
        ff_dropout=0.05,
        encoder_dropout=0.05,
        lr=1.5e-3,
        warmup_fraction=0.08,
        weight_decay=0.01,
        epochs=30,
        batch_seconds=20.0,
        max_seconds=40.0,
        time_mask_prob=0.02,
        time_mask_length=5,
        sortagrad=True,
    ),
    "finetune": TrainConfig(
        name="finetune",
        projection_dropout=0.1,
        attention_dropout=0.1,
        ff_dropout=0.1,
        encoder_dropout=0.1,
        layer_drop=0.05,
        freeze_feature_extractor=True,
        lr=5e-5,
        warmup_fraction=0.1,
        weight_decay=0.0,
        epochs=10,
        batch_seconds=60.0,
        max_seconds=40.0,
        time_mask_prob=0.05,
        time_mask_length=10,
    ),
}

#: Names of :data:`CONFIGS`.
CONFIG_NAMES: tuple[str, ...] = tuple(CONFIGS)


def get_config(config: str | TrainConfig | None, *, init: bool = False) -> TrainConfig:
    """Resolve a config name (case-insensitive) or pass a :class:`TrainConfig` through.

    ``None`` means ``"finetune"`` when starting from a pretrained model
    (``init=True``) and ``"small"`` otherwise.

    Raises:
        TrainingError: unknown name.
    """
    if isinstance(config, TrainConfig):
        return config
    if config is None:
        config = "finetune" if init else "small"
    if not isinstance(config, str) or config.strip().lower() not in CONFIGS:
        raise TrainingError(f"unknown training config {config!r}; choose one of {', '.join(CONFIG_NAMES)}")
    return CONFIGS[config.strip().lower()]
