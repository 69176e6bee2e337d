"""Random models for tests, examples and benchmarks (no download): tiny
ones, and full-size architectures that cost what a real checkpoint costs."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import torch
from torchaudio.models import wav2vec2_model

from .models.alignment_model import AlignmentModel, is_group_norm
from .text import ENGLISH_LABELS

__all__ = ["ENGLISH_LABELS", "MMS_LABELS", "random_model", "tiny_architecture", "tiny_model", "tiny_phone_model"]

#: Labels of torchaudio's MMS_FA bundle, star included.
MMS_LABELS: tuple[str, ...] = (
    "-",
    "a",
    "i",
    "e",
    "n",
    "o",
    "u",
    "t",
    "s",
    "r",
    "m",
    "k",
    "l",
    "d",
    "g",
    "h",
    "y",
    "b",
    "p",
    "w",
    "c",
    "v",
    "j",
    "z",
    "f",
    "'",
    "q",
    "x",
    "*",
)


def tiny_architecture(
    num_labels: int,
    extractor_mode: str = "layer_norm",
    *,
    embed_dim: int = 32,
    num_layers: int = 2,
    layer_norm_first: bool | None = None,
) -> dict:
    """Keyword arguments of ``torchaudio.models.wav2vec2_model`` for a tiny
    model with the standard 320-sample frame (default conv strides)."""
    if layer_norm_first is None:
        layer_norm_first = extractor_mode == "layer_norm"
    return dict(
        extractor_mode=extractor_mode,
        extractor_conv_layer_config=[(16, 10, 5)] + [(16, 3, 2)] * 4 + [(16, 2, 2)] * 2,
        extractor_conv_bias=extractor_mode == "layer_norm",
        encoder_embed_dim=embed_dim,
        encoder_projection_dropout=0.0,
        encoder_pos_conv_kernel=16,
        encoder_pos_conv_groups=4,
        encoder_num_layers=num_layers,
        encoder_num_heads=2,
        encoder_attention_dropout=0.0,
        encoder_ff_interm_features=2 * embed_dim,
        encoder_ff_interm_dropout=0.0,
        encoder_dropout=0.0,
        encoder_layer_norm_first=layer_norm_first,
        encoder_layer_drop=0.0,
        aux_num_out=num_labels,
    )


def tiny_model(
    labels: Sequence[str] = ENGLISH_LABELS,
    extractor_mode: str = "layer_norm",
    *,
    seed: int = 0,
    name: str = "tiny",
    **kwargs: Any,
) -> AlignmentModel:
    """A randomly initialised, tiny ``AlignmentModel`` (eval mode, CPU).

    ``kwargs`` go to :class:`AlignmentModel` (``separator``, ``star``, ...).
    """
    labels = tuple(labels)
    with torch.random.fork_rng():
        torch.manual_seed(seed)
        net = wav2vec2_model(**tiny_architecture(len(labels), extractor_mode))
    net.eval()
    if "separator" not in kwargs:
        kwargs["separator"] = "|" if "|" in labels else None
    return AlignmentModel(model=net, labels=labels, sample_rate=16000, name=name, **kwargs)


def tiny_phone_model(*, seed: int = 0, name: str = "tiny-phones") -> AlignmentModel:
    """A randomly initialised, tiny phone model (log-mel front end, ARPAbet
    labels, espeak phonemizer, ``end_extension=0``), as the packaged phone
    model is configured (eval mode, CPU)."""
    from .models.frontend import build_network
    from .training.phone import LABELS, phone_architecture

    with torch.random.fork_rng():
        torch.manual_seed(seed)
        net = build_network(phone_architecture(embed_dim=32, num_layers=1, num_heads=2, ff_dim=64))
    net.eval()
    return AlignmentModel(
        model=net,
        labels=LABELS,
        sample_rate=16000,
        name=name,
        blank=0,
        separator=None,
        star=None,
        normalize_waveform=False,
        phonetic=True,
        phonemizer="espeak-arpabet",
        end_extension=0.0,
    )


def random_model(
    architecture: str = "wav2vec2_base",
    labels: Sequence[str] = ENGLISH_LABELS,
    *,
    seed: int = 0,
    name: str | None = None,
) -> AlignmentModel:
    """A full-size torchaudio architecture (``"wav2vec2_base"``,
    ``"wav2vec2_large_lv60k"``, ``"hubert_large"``, ...) with random weights,
    for benchmarks: it costs what the real checkpoint costs (weights cannot be
    downloaded everywhere) but its alignments are meaningless. Waveforms are
    normalized for ``layer_norm`` extractors, as torchaudio's bundles do.
    """
    from torchaudio import models

    labels = tuple(labels)
    with torch.random.fork_rng():
        torch.manual_seed(seed)
        net = getattr(models, architecture)(aux_num_out=len(labels)).eval()
    return AlignmentModel(
        model=net,
        labels=labels,
        sample_rate=16000,
        name=name or f"{architecture} (random weights)",
        normalize_waveform=not is_group_norm(net),
    )
