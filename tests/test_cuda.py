"""The GPU path: bf16/fp16 emissions and the Viterbi on the device.

Skipped without CUDA (CI and the development VM have none); run on a GPU
machine with ``python3 -m pytest -q tests/test_cuda.py``.
"""

from __future__ import annotations

import pytest
import torch

from aligner.pipeline import Aligner
from aligner.testing import tiny_model
from aligner.viterbi import forced_align

pytestmark = pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA GPU (none present)")


def _batch(seed: int, B: int = 6, T: int = 400, C: int = 32, L: int = 120):
    gen = torch.Generator().manual_seed(seed)
    log_probs = torch.randn(B, T, C, generator=gen).log_softmax(-1)
    targets = torch.randint(1, C, (B, L), generator=gen)
    input_lengths = torch.randint(T // 2, T + 1, (B,), generator=gen)
    target_lengths = torch.randint(1, L // 2, (B,), generator=gen)
    return log_probs, targets, input_lengths, target_lengths


@pytest.mark.parametrize("seed", range(3))
def test_gpu_viterbi_equals_cpu_and_torchaudio(seed):
    import torchaudio.functional as TAF

    log_probs, targets, t_len, l_len = _batch(seed)
    cpu_paths, cpu_scores = forced_align(log_probs, targets, t_len, l_len)
    gpu_paths, gpu_scores = forced_align(log_probs.cuda(), targets.cuda(), t_len.cuda(), l_len.cuda())
    assert gpu_paths.device.type == "cuda"
    assert torch.equal(gpu_paths.cpu(), cpu_paths)
    torch.testing.assert_close(gpu_scores.cpu(), cpu_scores)
    for b in range(log_probs.shape[0]):  # torchaudio's own CUDA kernel agrees
        n, m = int(t_len[b]), int(l_len[b])
        ref, _ = TAF.forced_align(log_probs[b : b + 1, :n].cuda(), targets[b : b + 1, :m].cuda(), blank=0)
        assert torch.equal(ref[0].cpu(), cpu_paths[b, :n])


def test_gpu_viterbi_bounded_memory_is_exact():
    log_probs, targets, t_len, l_len = _batch(7, B=3, T=3000, L=800)
    full, _ = forced_align(log_probs.cuda(), targets.cuda(), t_len, l_len)
    torch.cuda.reset_peak_memory_stats()
    bounded, _ = forced_align(log_probs.cuda(), targets.cuda(), t_len, l_len, max_memory=1 << 20)
    assert torch.equal(full, bounded)


@pytest.mark.parametrize("dtype", ["bfloat16", "float16"])
def test_aligner_on_gpu_keeps_emissions_on_the_device(dtype, monkeypatch):
    import numpy as np

    rng = np.random.default_rng(0)
    waves = [(0.1 * rng.standard_normal(int(16000 * s)).astype(np.float32), 16000) for s in (1.3, 2.7, 4.0)]
    texts = ["the cat", "sat on the mat", "and then it slept"]
    model = tiny_model()
    gpu = Aligner(model, device="cuda", dtype=dtype)
    seen = []
    import aligner.viterbi as viterbi

    original = viterbi.forced_align

    def spy(log_probs, *args, **kwargs):
        seen.append(log_probs.device.type)
        return original(log_probs, *args, **kwargs)

    monkeypatch.setattr(viterbi, "forced_align", spy)  # the pipeline imports it when it runs
    results = gpu.align_batch(list(zip(waves, texts)))
    assert seen == ["cuda"]  # the Viterbi ran on the GPU emissions
    assert [len(r.words) for r in results] == [2, 4, 4]
    cpu = Aligner(tiny_model(), device="cpu").align_batch(list(zip(waves, texts)))
    for a, b in zip(results, cpu):  # half-precision emissions: times may move by a frame or two
        for wa, wb in zip(a.words, b.words):
            assert abs(wa.start - wb.start) <= 0.1


def test_duration_decoder_runs_on_the_gpu_and_equals_the_cpu(monkeypatch):
    import aligner.duration_viterbi as dv

    gen = torch.Generator().manual_seed(5)
    log_probs = torch.randn(2, 900, 12, generator=gen, dtype=torch.float64).log_softmax(-1)
    words = [[[1, 2, 3], [4, 5]] * 20, [[6, 7], [8]] * 30]
    lengths = torch.tensor([900, 700])
    used = []
    original = dv._torch_states
    monkeypatch.setattr(dv, "_torch_states", lambda lp, *a: used.append(lp.device.type) or original(lp, *a))
    gpu = dv.duration_align(log_probs.cuda(), words, lengths, skip_cost=3.0, backend="torch")
    assert used == ["cuda", "cuda"]
    cpu = dv.duration_align(log_probs, words, lengths, skip_cost=3.0)
    assert torch.equal(gpu[0], cpu[0]) and torch.equal(gpu[1], cpu[1])
    bounded = dv.duration_align(log_probs.cuda(), words, lengths, skip_cost=3.0, max_memory=4096, backend="torch")
    assert torch.equal(bounded[0], cpu[0])
