"""Batched CTC Viterbi (aligner.viterbi) against torchaudio's forced_align."""

from __future__ import annotations

import math
import re

import numpy as np
import pytest
import torch
import torchaudio.functional as TAF
from hypothesis import given, settings
from hypothesis import strategies as st

from aligner import viterbi
from aligner.errors import AlignerError, AlignmentError
from aligner.viterbi import BACKENDS, count_repeats, forced_align

BACKEND_PARAMS = pytest.mark.parametrize("backend", ["numba", "torch"])


def reference(log_probs, targets, input_lengths, target_lengths, blank):
    """torchaudio's path and scores of every item aligned alone, padded the
    way our contract says (blank / 0 on frames past the item's length)."""
    B, T, _ = log_probs.shape
    paths = torch.full((B, T), blank, dtype=torch.int64)
    scores = torch.zeros((B, T), dtype=log_probs.dtype)
    for b in range(B):
        n, m = int(input_lengths[b]), int(target_lengths[b])
        p, s = TAF.forced_align(log_probs[b : b + 1, :n].contiguous(), targets[b : b + 1, :m].contiguous(), blank=blank)
        paths[b, :n] = p[0]
        scores[b, :n] = s[0]
    return paths, scores


def collapse(path, blank):
    out = []
    prev = None
    for x in path:
        if x != prev and x != blank:
            out.append(x)
        prev = x
    return out


def random_batch(gen, *, dtype=torch.float64, quantize=False, max_b=6, max_l=8, max_extra=6):
    """A padded random batch with garbage in every padding cell."""
    B = int(torch.randint(1, max_b + 1, (1,), generator=gen))
    C = int(torch.randint(2, 6, (1,), generator=gen))
    blank = int(torch.randint(0, C, (1,), generator=gen))
    others = torch.tensor([c for c in range(C) if c != blank])
    items = []
    for _ in range(B):
        L = int(torch.randint(1, max_l + 1, (1,), generator=gen))
        tgt = others[torch.randint(0, len(others), (L,), generator=gen)]
        R = count_repeats(tgt)
        # A third of the items get exactly L + R frames (the tightest fit).
        extra = 0 if torch.rand(1, generator=gen) < 0.33 else int(torch.randint(1, max_extra + 1, (1,), generator=gen))
        items.append((tgt, L + R + extra))
    T = max(n for _, n in items) + int(torch.randint(0, 3, (1,), generator=gen))
    Lmax = max(len(t) for t, _ in items)
    raw = torch.randn(B, T, C, generator=gen, dtype=torch.float64)
    if quantize:  # coarse values: many exactly tied paths
        raw = (raw * 2).round() / 2
    log_probs = raw.log_softmax(-1).to(dtype)
    targets = torch.randint(-50, 10**6, (B, Lmax), generator=gen)  # garbage padding
    for b, (tgt, n) in enumerate(items):
        targets[b, : len(tgt)] = tgt
        log_probs[b, n:] = torch.empty(T - n, C).uniform_(-1e4, 1e4, generator=gen).to(dtype)
    input_lengths = torch.tensor([n for _, n in items])
    target_lengths = torch.tensor([len(t) for t, _ in items])
    return log_probs, targets, input_lengths, target_lengths, blank


# --------------------------------------------------------------------------
# Agreement with torchaudio
# --------------------------------------------------------------------------


def test_matches_torchaudio_on_random_float64_batches():
    gen = torch.Generator().manual_seed(1234)
    for i in range(240):
        lp, tg, il, tl, blank = random_batch(gen)
        want_p, want_s = reference(lp, tg, il, tl, blank)
        backends = ("numba", "torch") if i % 4 == 0 else ("numba",)
        for backend in backends:
            paths, scores = forced_align(lp, tg, il, tl, blank, backend=backend)
            assert paths.dtype == torch.int64 and scores.dtype == torch.float64
            assert torch.equal(paths, want_p), (i, backend)
            assert torch.equal(scores, want_s), (i, backend)


@BACKEND_PARAMS
def test_float32_ties_are_broken_like_torchaudio(backend):
    gen = torch.Generator().manual_seed(99)
    for _ in range(60):
        lp, tg, il, tl, blank = random_batch(gen, dtype=torch.float32, quantize=True, max_b=3)
        want_p, want_s = reference(lp, tg, il, tl, blank)
        paths, scores = forced_align(lp, tg, il, tl, blank, backend=backend)
        assert torch.equal(paths, want_p)
        assert torch.equal(scores, want_s)


@BACKEND_PARAMS
@pytest.mark.parametrize("dtype", [torch.float32, torch.float64])
def test_all_paths_tied_gives_torchaudio_path(backend, dtype):
    # Uniform emissions: every path has the same score, so the result is
    # decided by tie-breaking alone.
    for C, T, tokens in [
        (3, 9, [1, 2, 1]),
        (4, 12, [1, 1, 2, 3, 3]),
        (2, 7, [1, 1, 1]),
        (5, 20, [4, 3, 2, 1, 2, 3, 4]),
        (3, 5, [2, 1, 2]),
    ]:
        lp = torch.full((1, T, C), -math.log(C), dtype=dtype)
        tg = torch.tensor([tokens])
        want, _ = TAF.forced_align(lp, tg, blank=0)
        got, _ = forced_align(lp, tg, backend=backend)
        assert torch.equal(got, want), (C, T, tokens)


@BACKEND_PARAMS
def test_tie_rule_prefers_stay_when_advance_ties_skip(backend):
    # torchaudio 2.11 takes the advance (s-1) only when strictly better than
    # both the stay and the skip: at frame 4 the advance and the skip tie
    # above the stay, so the stay wins -- a path one nat worse than the best.
    logits = torch.tensor(
        [
            [0.0, 0.5, 2.5, 2.0],
            [0.0, 0.0, 0.0, 1.5],
            [0.0, -2.0, 0.5, 0.0],
            [0.0, -1.5, -1.0, 0.0],
            [0.0, 2.0, 1.5, 0.5],
            [0.0, 0.0, 0.5, 1.5],
        ],
        dtype=torch.float64,
    )
    lp = logits.log_softmax(-1)[None]
    tg = torch.tensor([[2, 0, 2]])
    want, _ = TAF.forced_align(lp, tg, blank=3)
    got, scores = forced_align(lp, tg, blank=3, backend=backend)
    assert want.tolist() == [[2, 3, 0, 2, 2, 3]]
    assert torch.equal(got, want)
    better = torch.tensor([2, 3, 0, 3, 2, 3])
    assert float(lp[0].gather(1, better[:, None]).sum()) > float(scores.sum()) + 0.5


@BACKEND_PARAMS
def test_partly_impossible_emissions_match_torchaudio(backend):
    # -inf entries that still leave some path with nonzero probability.
    gen = torch.Generator().manual_seed(7)
    checked = 0
    for _ in range(150):
        lp, tg, il, tl, blank = random_batch(gen, dtype=torch.float32, max_b=1)
        n = int(il[0])
        mask = torch.rand(lp[:, :n].shape, generator=gen) < 0.15
        lp[:, :n] = lp[:, :n].masked_fill(mask, float("-inf"))
        try:
            paths, scores = forced_align(lp, tg, il, tl, blank, backend=backend)
        except AlignmentError as exc:
            assert "probability 0" in str(exc)
            continue
        want_p, want_s = reference(lp, tg, il, tl, blank)
        assert torch.equal(paths, want_p)
        assert torch.equal(scores, want_s)
        checked += 1
    assert checked > 50


# --------------------------------------------------------------------------
# Hand-made edge cases
# --------------------------------------------------------------------------


def _lp(T, C, seed=0, dtype=torch.float64):
    gen = torch.Generator().manual_seed(seed)
    return torch.randn(1, T, C, generator=gen, dtype=torch.float64).log_softmax(-1).to(dtype)


@BACKEND_PARAMS
@pytest.mark.parametrize(
    "tokens,T,C,blank",
    [
        ([1, 1], 3, 3, 0),  # "AA": needs a blank between
        ([1, 1], 5, 3, 0),
        ([2, 2, 2], 5, 3, 0),  # T exactly L + R
        ([1, 2, 2, 1], 5, 4, 0),  # T exactly L + R
        ([1], 1, 2, 0),  # single token, single frame
        ([1], 6, 2, 0),  # single token, C = 2
        ([0, 0, 1], 6, 3, 2),  # blank = C - 1
        ([1, 0], 4, 3, 2),
        ([3, 1, 3], 7, 5, 4),
    ],
)
def test_edge_cases_match_torchaudio(backend, tokens, T, C, blank):
    lp = _lp(T, C, seed=T * 31 + C)
    tg = torch.tensor([tokens])
    want_p, want_s = TAF.forced_align(lp, tg, blank=blank)
    paths, scores = forced_align(lp, tg, blank=blank, backend=backend)
    assert torch.equal(paths, want_p)
    assert torch.equal(scores, want_s)


@BACKEND_PARAMS
def test_tightest_fit_has_the_only_possible_path(backend):
    # "AAB" in 4 frames: A, blank, A, B is the only path.
    paths, _ = forced_align(_lp(4, 3), torch.tensor([[1, 1, 2]]), backend=backend)
    assert paths.tolist() == [[1, 0, 1, 2]]
    paths, _ = forced_align(_lp(1, 2), torch.tensor([[1]]), backend=backend)
    assert paths.tolist() == [[1]]


@BACKEND_PARAMS
@pytest.mark.parametrize("tdtype", [torch.int32, torch.int16, torch.uint8, torch.int64])
def test_integer_target_dtypes(backend, tdtype):
    lp = _lp(12, 5)
    tg = torch.tensor([[1, 3, 3, 4]])
    want, _ = TAF.forced_align(lp, tg, blank=0)
    paths, _ = forced_align(lp, tg.to(tdtype), backend=backend)
    assert paths.dtype == torch.int64
    assert torch.equal(paths, want)


@BACKEND_PARAMS
def test_float32_inputs_match_torchaudio(backend):
    gen = torch.Generator().manual_seed(5)
    for _ in range(30):
        lp, tg, il, tl, blank = random_batch(gen, dtype=torch.float32, max_b=3)
        want_p, want_s = reference(lp, tg, il, tl, blank)
        paths, scores = forced_align(lp, tg, il, tl, blank, backend=backend)
        assert scores.dtype == torch.float32
        assert torch.equal(paths, want_p)
        assert torch.equal(scores, want_s)


@BACKEND_PARAMS
@pytest.mark.parametrize("dtype", [torch.float16, torch.bfloat16])
def test_half_inputs_are_searched_in_float32(backend, dtype):
    lp = _lp(20, 6, dtype=dtype)
    tg = torch.tensor([[1, 2, 2, 5]])
    want, _ = forced_align(lp.float(), tg, backend=backend)
    paths, scores = forced_align(lp, tg, backend=backend)
    assert torch.equal(paths, want)
    assert scores.dtype == dtype
    assert torch.equal(scores, lp[0].gather(1, paths[0, :, None])[None, :, 0])


@BACKEND_PARAMS
def test_padding_frames_hold_blank_and_zero_score(backend):
    lp = torch.randn(3, 10, 4).log_softmax(-1)
    lp[0, 4:] = 1e6  # garbage in padding
    lp[1, 7:] = float("nan")  # even NaN in padding is ignored
    tg = torch.tensor([[1, 2, 0], [3, 3, 1], [1, 2, 3]])
    paths, scores = forced_align(lp, tg, [4, 7, 10], [2, 3, 3], blank=0, backend=backend)
    assert paths[0, 4:].eq(0).all() and scores[0, 4:].eq(0).all()
    assert paths[1, 7:].eq(0).all() and scores[1, 7:].eq(0).all()
    assert collapse(paths[0, :4].tolist(), 0) == [1, 2]
    assert collapse(paths[1, :7].tolist(), 0) == [3, 3, 1]


@BACKEND_PARAMS
def test_inputs_are_not_modified(backend):
    gen = torch.Generator().manual_seed(3)
    lp, tg, il, tl, blank = random_batch(gen, dtype=torch.float32)
    copies = [x.clone() for x in (lp, tg, il, tl)]
    forced_align(lp, tg, il, tl, blank, backend=backend)
    for original, copy in zip((lp, tg, il, tl), copies):
        assert torch.equal(original, copy)


@BACKEND_PARAMS
def test_noncontiguous_and_requires_grad_inputs(backend):
    base = torch.randn(9, 2, 5).log_softmax(-1)
    lp = base.transpose(0, 1).requires_grad_(True)  # (2, 9, 5), not contiguous
    tg = torch.tensor([[1, 2, 3, 4], [4, 4, 1, 1]]).t().contiguous().t()
    paths, scores = forced_align(lp, tg, backend=backend)
    want_p, want_s = reference(lp.detach(), tg, [9, 9], [4, 4], 0)
    assert torch.equal(paths, want_p)
    assert torch.equal(scores, want_s)
    assert not scores.requires_grad


def test_backends_agree_and_thread_count_does_not_matter():
    gen = torch.Generator().manual_seed(11)
    for _ in range(25):
        lp, tg, il, tl, blank = random_batch(gen, dtype=torch.float32, max_l=12, max_extra=15)
        a = forced_align(lp, tg, il, tl, blank, backend="numba")
        b = forced_align(lp, tg, il, tl, blank, backend="torch")
        c = forced_align(lp, tg, il, tl, blank, backend="numba", num_threads=1)
        d = forced_align(lp, tg, il, tl, blank)  # auto = numba on CPU
        for other in (b, c, d):
            assert torch.equal(a[0], other[0]) and torch.equal(a[1], other[1])


def test_longer_sequences_match_torchaudio():
    gen = torch.Generator().manual_seed(21)
    lp = torch.randn(2, 400, 30, generator=gen).log_softmax(-1)
    tg = torch.randint(1, 30, (2, 120), generator=gen)
    il, tl = torch.tensor([400, 333]), torch.tensor([120, 97])
    want = reference(lp, tg, il, tl, 0)
    for backend in ("numba", "torch"):
        got = forced_align(lp, tg, il, tl, backend=backend)
        assert torch.equal(got[0], want[0]) and torch.equal(got[1], want[1])


def test_lengths_default_to_full_and_accept_sequences():
    lp = _lp(8, 4)
    tg = torch.tensor([[1, 2, 3]])
    a = forced_align(lp, tg)
    b = forced_align(lp, tg, [8], (3,))
    c = forced_align(lp, tg, torch.tensor([8], dtype=torch.int32), torch.tensor([3]))
    assert torch.equal(a[0], b[0]) and torch.equal(a[0], c[0])


def test_count_repeats():
    assert count_repeats([1, 1, 2, 2, 3]) == 2
    assert count_repeats(torch.tensor([4, 4, 4])) == 2
    assert count_repeats(np.array([1, 2, 1])) == 0
    assert count_repeats([7]) == 0
    assert count_repeats([]) == 0
    with pytest.raises(AlignmentError, match="1-D"):
        count_repeats([[1, 2]])


# --------------------------------------------------------------------------
# Errors
# --------------------------------------------------------------------------

LP = torch.randn(2, 6, 4).log_softmax(-1)
TG = torch.tensor([[1, 2], [3, 3]])


@pytest.mark.parametrize(
    "kwargs,match",
    [
        (dict(targets=torch.tensor([[1, 0], [3, 3]])), r"targets\[0, 1\] is the blank id 0"),
        (dict(targets=torch.tensor([[1, 2], [3, 4]])), r"targets\[1, 1\] = 4 is out of range for 4 classes"),
        (dict(targets=torch.tensor([[1, -1], [3, 3]])), r"targets\[0, 1\] = -1 is out of range"),
        (
            dict(log_probs=LP[:, :2]),
            r"batch item 1 cannot be aligned: it has 2 frames .* 2 tokens "
            r"with 1 repeats need at least 3",
        ),
        (dict(input_lengths=[6, 2]), r"batch item 1 cannot be aligned: it has 2 frames"),
        (dict(input_lengths=[6, 0]), r"input_lengths\[1\] = 0: lengths must be positive"),
        (dict(input_lengths=[-1, 6]), r"input_lengths\[0\] = -1: lengths must be positive"),
        (dict(target_lengths=[0, 2]), r"target_lengths\[0\] = 0: lengths must be positive"),
        (dict(input_lengths=[7, 6]), r"input_lengths\[0\] = 7 exceeds the padded frame size 6"),
        (dict(target_lengths=[2, 3]), r"target_lengths\[1\] = 3 exceeds the padded target size 2"),
        (dict(input_lengths=[6]), r"input_lengths has 1 entries but the batch size is 2"),
        (dict(target_lengths=[[2, 2]]), r"target_lengths must be 1-D"),
        (dict(input_lengths=[6.0, 6.0]), r"input_lengths must be an integer tensor"),
        (dict(targets=TG[:1]), r"batch size mismatch: log_probs has 2 items, targets has 1"),
        (dict(log_probs=LP[0]), r"log_probs must be 3-D"),
        (dict(targets=TG[0]), r"targets must be 2-D"),
        (dict(log_probs=LP.to(torch.int64)), r"log_probs must be a floating-point tensor"),
        (dict(targets=TG.float()), r"targets must be an integer tensor"),
        (dict(targets=TG.bool()), r"targets must be an integer tensor"),
        (dict(log_probs=LP.numpy()), r"log_probs must be a torch.Tensor"),
        (dict(targets=[[1, 2], [3, 3]]), r"targets must be a torch.Tensor"),
        (dict(blank=4), r"blank = 4 is out of range for 4 classes"),
        (dict(blank=-1), r"blank = -1 is out of range"),
        (dict(blank=0.0), r"blank must be an int"),
        (dict(backend="cuda"), r"backend must be one of"),
        (dict(num_threads=0), r"num_threads must be a positive int"),
        (dict(log_probs=LP[:, :0]), r"log_probs has no frames"),
        (dict(log_probs=LP[:0], targets=TG[:0]), r"empty batch"),
        (dict(targets=TG[:, :0]), r"targets has no tokens"),
    ],
)
def test_errors(kwargs, match):
    args = dict(log_probs=LP, targets=TG, input_lengths=None, target_lengths=None, blank=0)
    args.update(kwargs)
    backend = args.pop("backend", "auto")
    num_threads = args.pop("num_threads", None)
    with pytest.raises(ValueError, match=match) as info:
        forced_align(**args, backend=backend, num_threads=num_threads)
    assert isinstance(info.value, AlignmentError) and isinstance(info.value, AlignerError)


@BACKEND_PARAMS
@pytest.mark.parametrize("value", [float("nan"), float("inf")])
def test_nan_or_inf_in_valid_frames_is_rejected(backend, value):
    lp = LP.clone()
    lp[1, 4, 2] = value
    with pytest.raises(ValueError, match=r"log_probs\[1, 4\] contains NaN or \+inf"):
        forced_align(lp, TG, backend=backend)


@BACKEND_PARAMS
def test_impossible_alignment_is_rejected(backend):
    lp = LP.clone()
    lp[1, :, 3] = float("-inf")  # token 3 never possible
    with pytest.raises(
        ValueError,
        match=r"batch item 1 cannot be aligned: every CTC path has "
        r"probability 0",
    ):
        forced_align(lp, TG, backend=backend)


def test_backends_constant():
    assert BACKENDS == ("auto", "numba", "torch")


# --------------------------------------------------------------------------
# Properties
# --------------------------------------------------------------------------


@st.composite
def batches(draw):
    C = draw(st.integers(2, 6))
    blank = draw(st.integers(0, C - 1))
    others = [c for c in range(C) if c != blank]
    B = draw(st.integers(1, 4))
    items = []
    for _ in range(B):
        tokens = draw(st.lists(st.sampled_from(others), min_size=1, max_size=7))
        frames = len(tokens) + count_repeats(tokens) + draw(st.integers(0, 8))
        items.append((tokens, frames))
    T = max(n for _, n in items) + draw(st.integers(0, 2))
    L = max(len(t) for t, _ in items)
    seed = draw(st.integers(0, 2**32 - 1))
    dtype = draw(st.sampled_from([torch.float32, torch.float64]))
    gen = torch.Generator().manual_seed(seed)
    log_probs = torch.randn(B, T, C, generator=gen, dtype=torch.float64).log_softmax(-1).to(dtype)
    targets = torch.full((B, L), C + 5)
    for b, (tokens, _) in enumerate(items):
        targets[b, : len(tokens)] = torch.tensor(tokens)
    il = torch.tensor([n for _, n in items])
    tl = torch.tensor([len(t) for t, _ in items])
    return log_probs, targets, il, tl, blank


@settings(max_examples=60, deadline=None)
@given(batches())
def test_property_paths_collapse_scores_gather_and_batching_is_invisible(batch):
    lp, tg, il, tl, blank = batch
    paths, scores = forced_align(lp, tg, il, tl, blank)
    for b in range(lp.shape[0]):
        n, m = int(il[b]), int(tl[b])
        assert collapse(paths[b, :n].tolist(), blank) == tg[b, :m].tolist()
        assert torch.equal(scores[b, :n], lp[b, :n].gather(1, paths[b, :n, None])[:, 0])
        assert paths[b, n:].eq(blank).all() and scores[b, n:].eq(0).all()
        alone = forced_align(lp[b : b + 1, :n], tg[b : b + 1, :m], blank=blank)
        assert torch.equal(alone[0][0], paths[b, :n])
        assert torch.equal(alone[1][0], scores[b, :n])


@settings(max_examples=25, deadline=None)
@given(batches())
def test_property_torch_backend_equals_numba_backend(batch):
    lp, tg, il, tl, blank = batch
    a = forced_align(lp, tg, il, tl, blank, backend="numba")
    b = forced_align(lp, tg, il, tl, blank, backend="torch")
    assert torch.equal(a[0], b[0]) and torch.equal(a[1], b[1])


# --------------------------------------------------------------------------
# Bounded memory: segmented (checkpointed) search
# --------------------------------------------------------------------------


def segmented(lp, tg, il, tl, blank, backend, segment):
    """Paths of ``forced_align`` with every item searched in segments of
    ``segment`` frames (the kernels' private test hook)."""
    blank, tgt, t_len, l_len, max_memory = viterbi._validate(lp, tg, il, tl, blank, backend, None, None)
    if backend == "numba":
        return viterbi._numba_paths(lp, tgt, t_len, l_len, blank, None, max_memory, segment)
    return viterbi._torch_paths(lp, tgt, t_len, l_len, blank, max_memory, segment)


def plan(frames, tokens, itemsize, max_memory):
    """(frames per segment, single-pass bytes, segmented bytes) of the numba
    kernel for one item of ``frames`` frames and target ``tokens``."""
    tgt = np.asarray(tokens, dtype=np.int64)
    starts, ends = np.empty(frames, np.int64), np.empty(frames, np.int64)
    viterbi._band(frames, tgt, starts, ends)
    K = viterbi._segment_frames(starts, ends, itemsize, max_memory)
    n = viterbi._num_segments(frames, K)
    single = viterbi._segment_bytes(starts, ends, frames, 1)
    bounded = viterbi._checkpoint_cells(starts, ends, K, n) * itemsize + viterbi._segment_bytes(starts, ends, K, n)
    return K, single, bounded


@BACKEND_PARAMS
@pytest.mark.parametrize("dtype,quantize", [(torch.float64, False), (torch.float32, True)])
def test_segmented_search_matches_torchaudio_for_every_segment_length(backend, dtype, quantize):
    gen = torch.Generator().manual_seed(2024)
    for _ in range(12):
        lp, tg, il, tl, blank = random_batch(gen, dtype=dtype, quantize=quantize, max_b=4)
        want, _ = reference(lp, tg, il, tl, blank)
        T = lp.shape[1]
        # 1: every frame its own segment; T - 2: a last segment of one frame;
        # T - 1 and beyond: one segment (the single-pass search).
        for segment in sorted({1, 2, 3, max(1, T // 2), max(1, T - 2), max(1, T - 1), T, T + 5}):
            got = segmented(lp, tg, il, tl, blank, backend, segment)
            assert torch.equal(got, want), (segment, backend)


@BACKEND_PARAMS
@pytest.mark.parametrize(
    "tokens,T",
    [
        ([1, 1], 3),  # T == L + R: the only path, blank between the repeats
        ([2, 2, 2], 5),
        ([1, 2, 2, 1], 5),
        ([1], 1),  # a single frame: no back-pointer at all
        ([1], 2),
        ([1, 2], 2),
        ([3, 1, 3, 3, 2], 12),
    ],
)
@pytest.mark.parametrize("segment", [1, 2, 4])
def test_segmented_edge_cases_match_torchaudio(backend, tokens, T, segment):
    lp = _lp(T, 4, seed=T * 7 + len(tokens))
    tg = torch.tensor([tokens])
    want, _ = TAF.forced_align(lp, tg, blank=0)
    got = segmented(lp, tg, [T], [len(tokens)], 0, backend, segment)
    assert torch.equal(got, want)


@BACKEND_PARAMS
@pytest.mark.parametrize("segment", [1, 7, 64, 299])
def test_segmented_search_breaks_long_float32_ties_like_torchaudio(backend, segment):
    # Coarse emissions: many exactly tied partial paths, also across the
    # segment boundaries.
    gen = torch.Generator().manual_seed(8)
    lp = ((torch.randn(1, 300, 5, generator=gen) * 2).round() / 2).log_softmax(-1)
    tg = torch.randint(1, 5, (1, 80), generator=gen)
    want, _ = TAF.forced_align(lp, tg, blank=0)
    assert torch.equal(segmented(lp, tg, [300], [80], 0, backend, segment), want)


@BACKEND_PARAMS
@pytest.mark.parametrize("dtype", [torch.float32, torch.float64])
def test_small_max_memory_segments_and_keeps_paths_and_scores(backend, dtype):
    gen = torch.Generator().manual_seed(21)
    lp = torch.randn(2, 400, 30, generator=gen, dtype=torch.float64).log_softmax(-1).to(dtype)
    tg = torch.randint(1, 30, (2, 120), generator=gen)
    tg[:, 10:14] = 7  # repeats
    il, tl = torch.tensor([400, 333]), torch.tensor([120, 97])
    K, single, bounded = plan(400, tg[0].tolist(), dtype.itemsize, 1)
    assert K < 399 and bounded < single  # max_memory=1 really segments item 0
    want = reference(lp, tg, il, tl, 0)
    for max_memory in (1, 1000, np.int64(5000)):
        got = forced_align(lp, tg, il, tl, backend=backend, max_memory=max_memory)
        assert torch.equal(got[0], want[0]) and torch.equal(got[1], want[1])
    assert torch.equal(forced_align(lp, tg, il, tl, backend=backend)[0], want[0])


def test_memory_plan_of_one_hour_is_bounded():
    # One hour of 20 ms frames with 0.3 tokens per frame, float32.
    gen = np.random.default_rng(0)
    tokens = gen.integers(1, 32, 54000)
    K, single, bounded = plan(180000, tokens, 4, viterbi.DEFAULT_MAX_MEMORY)
    assert single > 3 * 2**30  # the single-pass band: over 3 GiB
    assert K < 2000 and bounded < 80 * 2**20
    # Eight minutes fit the default budget: one segment, the single pass;
    # ten minutes are searched in segments (the call's extra memory stays bounded)
    K, single, _ = plan(24000, tokens[:7200], 4, viterbi.DEFAULT_MAX_MEMORY)
    assert K == 24000 and single < 64 * 2**20
    K, single, bounded = plan(30000, tokens[:9000], 4, viterbi.DEFAULT_MAX_MEMORY)
    assert K < 30000 and bounded < 8 * 2**20 < single
    # Segmenting a tiny item would not save memory: it stays single-pass.
    assert plan(20, [1, 2, 3], 8, 1)[0] == 20


def test_torch_segment_length_is_memory_minimal_and_bounded():
    T, S = 180000, 108001
    K = viterbi._torch_segment_frames(T, S, 4, viterbi.DEFAULT_MAX_MEMORY)
    n = viterbi._num_segments(T, K)
    assert round(math.sqrt(T * (S + 2) * 4 / S)) == K
    assert (n - 1) * (S + 2) * 4 + K * S < 200 * 2**20  # vs T * S = 18 GiB
    assert viterbi._torch_segment_frames(1000, 601, 4, viterbi.DEFAULT_MAX_MEMORY) == 1000
    assert viterbi._torch_segment_frames(2, 5, 4, 1) == 2


@pytest.mark.parametrize("value", [0, -1, 1.5, True, "1G", 2**20 * 1.0])
def test_bad_max_memory_is_rejected(value):
    with pytest.raises(
        ValueError,
        match=r"max_memory must be a positive int \(bytes\) or None, "
        r"got " + re.escape(repr(value)),
    ) as info:
        forced_align(LP, TG, max_memory=value)
    assert isinstance(info.value, AlignmentError)


@settings(max_examples=40, deadline=None)
@given(batches(), st.integers(1, 12), st.sampled_from(["numba", "torch"]))
def test_property_segmented_search_equals_single_pass(batch, segment, backend):
    lp, tg, il, tl, blank = batch
    want, _ = forced_align(lp, tg, il, tl, blank, backend=backend)
    assert torch.equal(segmented(lp, tg, il, tl, blank, backend, segment), want)
