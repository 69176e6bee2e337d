"""Mixed-precision optimizer steps shared by the training loops
(:mod:`aligner.training.ctc`, :mod:`aligner.training.phone`).

float16 autocast on CUDA needs a gradient scaler (small float16 gradients
underflow to zero otherwise); bfloat16 has float32's range and needs none,
and float32 (the CPU path) takes the plain step: ``backward``, clipping,
``optimizer.step``.
"""

from __future__ import annotations

from collections.abc import Iterable

import torch
from torch import nn


def grad_scaler(device: torch.device, autocast_dtype: torch.dtype | None) -> torch.amp.GradScaler | None:
    """A ``torch.amp.GradScaler`` for float16 autocast on CUDA, else None."""
    if device.type == "cuda" and autocast_dtype == torch.float16:
        return torch.amp.GradScaler("cuda")
    return None


def optimizer_step(
    loss: torch.Tensor,
    optimizer: torch.optim.Optimizer,
    parameters: Iterable[torch.Tensor],
    clip_norm: float,
    scaler: torch.amp.GradScaler | None = None,
) -> None:
    """Zero the gradients, back-propagate ``loss``, clip the gradient norm of
    ``parameters`` to ``clip_norm`` and step ``optimizer``; with ``scaler``
    the loss is scaled, the gradients unscaled before clipping, and a step
    whose gradients are not finite is skipped (the scale then shrinks)."""
    optimizer.zero_grad(set_to_none=True)
    if scaler is None:
        loss.backward()
        nn.utils.clip_grad_norm_(parameters, clip_norm)
        optimizer.step()
        return
    scaler.scale(loss).backward()
    scaler.unscale_(optimizer)
    nn.utils.clip_grad_norm_(parameters, clip_norm)
    scaler.step(optimizer)
    scaler.update()
