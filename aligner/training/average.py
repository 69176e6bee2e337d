"""Checkpoint averaging: a model whose weights are the mean of several
checkpoints of one training run (stochastic weight averaging after the
fact). Points of one run that lie in the same basin average to a flatter
minimum that often generalizes better than any one of them; the packaged
model is the average of the last three checkpoints of its third stage
(MODEL.md, *Training*).

    >>> from aligner.training.average import average_models
    >>> average = average_models(["run/ckpt-33", "run/ckpt-66", "run/final"])  # doctest: +SKIP
"""

from __future__ import annotations

import copy
import os
from collections.abc import Sequence
from dataclasses import replace

import torch

from ..errors import ModelError
from ..models.alignment_model import AlignmentModel
from ..models.loading import architecture_of, load_model

__all__ = ["average_models"]


def average_models(sources: Sequence[str | os.PathLike | AlignmentModel], *, name: str | None = None) -> AlignmentModel:
    """A model with the mean of ``sources``' weights (each floating-point
    tensor summed in float32, in the order given, and divided by their
    number) and the first source's labels and decoding settings.

    Args:
        sources: model specs (:func:`~aligner.models.loading.load_model`)
            or models, all with the same architecture and labels.
        name: the new model's name (default: the first source's).

    Raises:
        ModelError: no source, or sources that differ in architecture or labels.
    """
    models = [load_model(source) for source in sources]
    if not models:
        raise ModelError("average_models needs at least one model")
    first = models[0]
    for other in models[1:]:
        if architecture_of(other.model) != architecture_of(first.model) or other.labels != first.labels:
            raise ModelError(f"cannot average {other.name!r} with {first.name!r}: architecture or labels differ")
    states = [model.model.state_dict() for model in models]
    average = {}
    for key, value in states[0].items():
        if value.is_floating_point():
            total = torch.zeros_like(value, dtype=torch.float32)
            for state in states:
                total += state[key].float()
            average[key] = (total / len(states)).to(value.dtype)
        else:
            average[key] = value.clone()
    net = copy.deepcopy(first.model).eval()  # the sources stay as they are
    net.load_state_dict(average)
    return replace(first, model=net, name=first.name if name is None else name)
