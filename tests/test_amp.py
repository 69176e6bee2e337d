"""aligner.training._amp: the optimizer step of the training loops, with and without
a gradient scaler (float16 autocast on CUDA)."""

from __future__ import annotations

import torch

from aligner.training._amp import grad_scaler, optimizer_step


def test_a_scaler_only_for_float16_on_cuda():
    assert grad_scaler(torch.device("cpu"), None) is None
    assert grad_scaler(torch.device("cpu"), torch.float16) is None
    assert grad_scaler(torch.device("cuda"), torch.bfloat16) is None
    assert grad_scaler(torch.device("cuda"), None) is None


def _model_and_loss(seed: int = 0) -> tuple[torch.nn.Module, torch.Tensor]:
    torch.manual_seed(seed)
    model = torch.nn.Sequential(torch.nn.Linear(4, 8), torch.nn.Tanh(), torch.nn.Linear(8, 1))
    loss = model(torch.randn(16, 4)).pow(2).mean()
    return model, loss


def test_the_scaled_step_is_the_plain_step_and_skips_non_finite_gradients():
    plain, loss = _model_and_loss()
    optimizer_step(loss, torch.optim.AdamW(plain.parameters(), lr=0.1), plain.parameters(), 0.5)
    scaled, loss = _model_and_loss()
    scaler = torch.amp.GradScaler("cpu")  # the same code path as CUDA's, runnable here
    optimizer_step(loss, torch.optim.AdamW(scaled.parameters(), lr=0.1), scaled.parameters(), 0.5, scaler)
    for a, b in zip(plain.parameters(), scaled.parameters()):
        torch.testing.assert_close(a, b, rtol=0, atol=0)  # a power-of-two scale unscales exactly

    before = [p.detach().clone() for p in scaled.parameters()]
    scale = scaler.get_scale()
    loss = scaled(torch.randn(16, 4)).pow(2).mean() * float("inf")
    optimizer_step(loss, torch.optim.AdamW(scaled.parameters(), lr=0.1), scaled.parameters(), 0.5, scaler)
    assert all(torch.equal(a, b) for a, b in zip(before, scaled.parameters()))  # step skipped
    assert scaler.get_scale() < scale
