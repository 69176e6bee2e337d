"""The duration-aware Viterbi (:mod:`aligner.duration_viterbi`): exact
against a brute-force search on small cases, memory-bounded mode equal to
the single pass, the band, the numpy path and the compiled kernels equal
to a plain full recursion, batching, errors, and its use by the aligner."""

from __future__ import annotations

import itertools
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st

from aligner import Aligner, AlignerError, AlignmentError
from aligner.duration_viterbi import duration_align, state_graph, viterbi_states

ROOT = Path(__file__).resolve().parents[1]


def _brute_force(
    log_probs: np.ndarray, words: list[list[int]], min_frames: int, blank: int = 0, max_frames: int | None = None
) -> float:
    """Best score over every frame labelling the topology allows, by
    enumerating the length of every silence run and token run."""
    tokens = [(w, t) for w, word in enumerate(words) for t in word]
    frames = log_probs.shape[0]
    best = -np.inf
    gaps = len(words) + 1  # silences: before, between words, after
    for silences in itertools.product(range(frames + 1), repeat=gaps):
        remaining = frames - sum(silences)
        if remaining < min_frames * len(tokens):
            continue
        longest = remaining if max_frames is None else min(remaining, max_frames)
        for durations in itertools.product(range(min_frames, longest + 1), repeat=len(tokens)):
            if sum(durations) != remaining:
                continue
            labels: list[int] = [blank] * silences[0]
            k = 0
            for w, word in enumerate(words):
                for _ in word:
                    labels += [tokens[k][1]] * durations[k]
                    k += 1
                labels += [blank] * silences[w + 1]
            best = max(best, float(log_probs[np.arange(frames), labels].sum()))
    return best


def _score(log_probs: np.ndarray, labels: np.ndarray) -> float:
    return float(log_probs[np.arange(len(labels)), labels].sum())


@settings(max_examples=40, deadline=None)
@given(
    seed=st.integers(0, 10**6),
    frames=st.integers(3, 7),
    min_frames=st.integers(1, 2),
    shape=st.sampled_from([[1], [2], [1, 1], [2, 1], [1, 1, 1]]),
)
def test_exact_against_brute_force(seed, frames, min_frames, shape):
    rng = np.random.default_rng(seed)
    words = [list(rng.integers(1, 4, size=n)) for n in shape]
    if min_frames * sum(shape) > frames:
        return
    log_probs = np.log(rng.dirichlet(np.ones(4), size=frames))
    graph = state_graph(words, min_frames=min_frames)
    states, score = viterbi_states(log_probs, graph)
    labels = graph.label[states]
    assert score == pytest.approx(_brute_force(log_probs, words, min_frames), abs=1e-9)
    assert _score(log_probs, labels) == pytest.approx(score, abs=1e-9)
    # the path obeys the topology: every token lasts >= min_frames, tokens in order
    positions = graph.token[states]
    runs = [(p, len(list(g))) for p, g in itertools.groupby(positions) if p >= 0]
    assert [p for p, _ in runs] == list(range(sum(shape)))
    assert all(n >= min_frames for _, n in runs)


@settings(max_examples=40, deadline=None)
@given(
    seed=st.integers(0, 10**6),
    frames=st.integers(3, 8),
    min_frames=st.integers(1, 2),
    extra=st.integers(0, 2),
    shape=st.sampled_from([[1], [2], [1, 1], [2, 1], [1, 2]]),
)
def test_maximum_duration_exact_against_brute_force(seed, frames, min_frames, extra, shape):
    rng = np.random.default_rng(seed)
    words = [list(rng.integers(1, 4, size=n)) for n in shape]
    max_frames = min_frames + extra
    if min_frames * sum(shape) > frames:
        return
    log_probs = np.log(rng.dirichlet(np.ones(4), size=frames))
    graph = state_graph(words, min_frames=min_frames, max_frames=max_frames)
    states, score = viterbi_states(log_probs, graph)
    assert score == pytest.approx(_brute_force(log_probs, words, min_frames, max_frames=max_frames), abs=1e-9)
    positions = graph.token[states]
    runs = [(p, len(list(g))) for p, g in itertools.groupby(positions) if p >= 0]
    assert [p for p, _ in runs] == list(range(sum(shape)))
    assert all(min_frames <= n <= max_frames for _, n in runs), runs


def test_no_silence_inside_a_word_and_repeats_need_no_blank():
    # frames favour silence in the middle of the word: the path may not take it
    log_probs = np.log(np.array([[0.05, 0.9, 0.05], [0.9, 0.05, 0.05], [0.05, 0.05, 0.9]]))
    graph = state_graph([[1, 2]], min_frames=1)
    states, _ = viterbi_states(log_probs, graph)
    assert list(graph.label[states]) == [1, 1, 2] or list(graph.label[states]) == [1, 2, 2]
    # two equal tokens in a row: no blank frame between them is needed
    log_probs = np.log(np.full((2, 3), 1 / 3))
    states, _ = viterbi_states(log_probs, state_graph([[1, 1]]))
    assert list(state_graph([[1, 1]]).token[states]) == [0, 1]


@pytest.mark.parametrize("budget", [1, 50, 1000, None])
def test_memory_bounded_path_is_the_same(budget):
    rng = np.random.default_rng(1)
    log_probs = np.log(rng.dirichlet(np.ones(6), size=200))
    words = [list(rng.integers(1, 6, size=3)) for _ in range(12)]
    graph = state_graph(words, min_frames=2)
    reference, score = viterbi_states(log_probs, graph, max_memory=10**9)
    states, bounded = viterbi_states(log_probs, graph, max_memory=budget)
    assert np.array_equal(states, reference) and bounded == score


def test_batch_equals_items_alone_and_padding_is_silence():
    rng = np.random.default_rng(2)
    log_probs = torch.log(torch.from_numpy(rng.dirichlet(np.ones(5), size=(2, 30)))).float()
    words = [[[1, 2], [3]], [[4, 4, 1]]]
    lengths = torch.tensor([30, 21])
    paths, positions = duration_align(log_probs, words, lengths, min_frames=2)
    for row in range(2):
        alone, where = duration_align(log_probs[row : row + 1, : lengths[row]], words[row : row + 1], min_frames=2)
        assert torch.equal(paths[row, : lengths[row]], alone[0]) and torch.equal(
            positions[row, : lengths[row]], where[0]
        )
    assert (paths[1, 21:] == 0).all() and (positions[1, 21:] == -1).all()


def test_errors():
    with pytest.raises(AlignmentError, match="3 frames are too few for this transcript: its 2 tokens need at least 4"):
        viterbi_states(np.zeros((3, 4)), state_graph([[1, 2]], min_frames=2))
    with pytest.raises(AlignmentError, match="no target token"):
        state_graph([[], []])
    with pytest.raises(AlignmentError, match="blank"):
        state_graph([[0]])
    with pytest.raises(AlignmentError, match="min_frames"):
        state_graph([[1]], min_frames=0)
    with pytest.raises(AlignmentError, match="transcripts for a batch"):
        duration_align(torch.zeros(2, 5, 3), [[[1]]])


def test_fast_speech_lowers_the_minimum_duration_and_says_so():
    """A recording too short for its transcript at the minimum duration is
    decoded with the largest minimum that fits (down to one frame per
    token) and flagged; only a transcript that does not fit even then is an
    error naming the file."""
    from dataclasses import replace

    from aligner import TranscriptError
    from aligner.testing import tiny_phone_model

    wave = (torch.zeros(16000).uniform_(-0.1, 0.1, generator=torch.Generator().manual_seed(0)), 16000)  # 49 frames
    text = "this is a sentence that fits in about one second yes"  # 38 phones: 2 frames each do not fit
    aligner = Aligner(replace(tiny_phone_model(), min_frames=2), device="cpu")
    item = aligner.prepare(wave, text)
    assert item.min_frames == 1 and len(item.targets) == 38
    result = aligner.align(wave, text)
    assert all(word.aligned for word in result.words)
    assert result.suspect[-1] == (
        "fast speech: 38 tokens in 1.00 s, so each token's minimum duration was lowered from 2 to 1 frames"
    )
    assert aligner.prepare(wave, "this is a short one").min_frames is None  # fits at 2 frames: untouched
    three = Aligner(replace(tiny_phone_model(), min_frames=3), device="cpu")
    short = "this is a sentence that fits"  # 19 phones: 2 frames each fit, 3 do not
    assert three.prepare(wave, short).min_frames == 2
    phones = [c for w in three.align(wave, short).words for c in w.chars]
    assert min(c.end - c.start for c in phones) >= 0.04 - 1e-9
    with pytest.raises(TranscriptError, match=r"<waveform>: transcript too long .* need at least 1\.\d\d s"):
        aligner.prepare(wave, text + " and this is more than one frame per phone")
    # a fast item and a slow one in one batch: each as alone
    slow = (torch.zeros(48000).uniform_(-0.1, 0.1, generator=torch.Generator().manual_seed(1)), 16000)
    batch = aligner.align_batch([(wave, text), (slow, text)])
    for together, alone in zip(batch, [aligner.align(wave, text), aligner.align(slow, text)]):
        assert [(w.start, w.end) for w in together.words] == [(w.start, w.end) for w in alone.words]
        assert together.suspect == alone.suspect


def test_aligner_uses_the_model_setting_and_the_option(tmp_path):
    from dataclasses import replace

    from aligner.testing import tiny_phone_model

    model = replace(tiny_phone_model(), min_frames=3)
    assert Aligner(model, device="cpu").min_frames == 3
    assert Aligner(model, device="cpu", min_frames=1).min_frames == 1
    for bad in (0, 51, 1.5, True):
        with pytest.raises(AlignerError, match="min_frames"):
            Aligner(model, device="cpu", min_frames=bad)
    rng = np.random.default_rng(0)
    wave = (torch.from_numpy((0.1 * rng.standard_normal(48000)).astype(np.float32)), 16000)
    result = Aligner(model, device="cpu").align(wave, "the cat sat on a mat")
    for word in result.words:
        assert word.aligned
        for char in word.chars:  # every phone at least 3 frames of 20 ms
            assert char.end - char.start >= 0.06 - 1e-9
        assert word.chars[0].start == word.start and word.chars[-1].end == word.end


def _brute_force_optional(log_probs: np.ndarray, words: list[list[int]], min_frames: int, cost: float) -> float:
    """Best score when every word may be left out at ``cost``: the silence
    run where words were left out takes at least one frame per gap state it
    passes through (left-out words + 1); all words may be left out."""
    frames = log_probs.shape[0]
    best = -np.inf
    for skipped in itertools.product([False, True], repeat=len(words)):
        kept = [w for w, s in zip(words, skipped) if not s]  # may be none: all silence
        # left-out words in each gap of the kept words (before, between, after)
        runs, count = [], 0
        for s in skipped:
            if s:
                count += 1
            else:
                runs.append(count)
                count = 0
        runs.append(count)
        minimum = [m + 1 if m else 0 for m in runs]
        tokens = [t for word in kept for t in word]
        for silences in itertools.product(range(frames + 1), repeat=len(kept) + 1):
            if any(s < m for s, m in zip(silences, minimum)):
                continue
            remaining = frames - sum(silences)
            if remaining < min_frames * len(tokens):
                continue
            for durations in itertools.product(range(min_frames, remaining + 1), repeat=len(tokens)):
                if sum(durations) != remaining:
                    continue
                labels: list[int] = [0] * silences[0]
                k = 0
                for w, word in enumerate(kept):
                    for _ in word:
                        labels += [tokens[k]] * durations[k]
                        k += 1
                    labels += [0] * silences[w + 1]
                score = float(log_probs[np.arange(frames), labels].sum()) - cost * sum(skipped)
                best = max(best, score)
    return best


@settings(max_examples=40, deadline=None)
@given(
    seed=st.integers(0, 10**6),
    frames=st.integers(3, 7),
    min_frames=st.integers(1, 2),
    shape=st.sampled_from([[1], [2], [1, 1], [2, 1], [1, 1, 1]]),
    cost=st.sampled_from([0.5, 2.0, 8.0]),
    max_memory=st.sampled_from([None, 8]),
)
def test_optional_words_exact_against_brute_force(seed, frames, min_frames, shape, cost, max_memory):
    rng = np.random.default_rng(seed)
    words = [list(rng.integers(1, 4, size=n)) for n in shape]
    log_probs = np.log(rng.dirichlet(np.ones(4), size=frames))
    graph = state_graph(words, min_frames=min_frames, skip_cost=cost)
    best = _brute_force_optional(log_probs, words, min_frames, cost)
    if best == -np.inf:  # even leaving words out needs a frame per gap: no path
        with pytest.raises(AlignmentError, match="too few"):
            viterbi_states(log_probs, graph, max_memory=max_memory)
        return
    states, score = viterbi_states(log_probs, graph, max_memory=max_memory)
    assert score == pytest.approx(best, abs=1e-9)
    # the score is the path's: its frames' labels less the price of each word it left out
    placed = set(graph.token[states][graph.token[states] >= 0].tolist())
    starts = np.cumsum([0] + shape[:-1])
    left_out = sum(1 for start in starts if start not in placed)
    assert score == pytest.approx(_score(log_probs, graph.label[states]) - cost * left_out, abs=1e-9)


def test_optional_word_is_left_out_only_when_it_pays():
    # frames say: token 1, silence, token 2; the transcript has a word 3 between them
    log_probs = np.log(np.full((6, 4), 0.01))
    for t, label in enumerate([1, 1, 0, 0, 2, 2]):
        log_probs[t, label] = 0.97
    words = [[1], [3], [2]]
    graph = state_graph(words, min_frames=2, skip_cost=3.0)
    states, _ = viterbi_states(log_probs, graph)
    assert list(graph.label[states]) == [1, 1, 0, 0, 2, 2]
    assert 1 not in set(graph.token[states])  # word 3 (position 1) has no frame
    forced, _ = viterbi_states(log_probs, state_graph(words, min_frames=2))
    assert 1 in set(state_graph(words, min_frames=2).token[forced])
    # a price above what forcing the word in costs keeps it
    expensive = state_graph(words, min_frames=2, skip_cost=50.0)
    states, _ = viterbi_states(log_probs, expensive)
    assert 1 in set(expensive.token[states])
    with pytest.raises(AlignmentError, match="skip_cost must be > 0"):
        state_graph(words, skip_cost=0.0)
    with pytest.raises(AlignmentError, match="2 gap labels for 3 words"):
        state_graph(words, gaps=[0, 0])


def _reference_states(log_probs: np.ndarray, graph) -> tuple[list[int], float]:
    """The recursion over every state, frame by frame, in plain Python (no
    band, no padding): stay, then ``s - 1``, ``s - 2`` and the further
    edges in the graph's order, each only when strictly better; unreachable
    states stay at -1e30."""
    neg = -1e30
    (to, source, cost, _), _ = graph.edges
    further: dict[int, list[tuple[int, float]]] = {}
    for s, p, c in zip(to.tolist(), source.tolist(), cost.tolist()):
        further.setdefault(s, []).append((p, c))
    frames, size = log_probs.shape[0], graph.num_states
    label, loop, skip = graph.label.tolist(), graph.loop.tolist(), graph.skip.tolist()
    previous = [log_probs[0, label[s]] if graph.start[s] else neg for s in range(size)]
    choices = []
    for t in range(1, frames):
        current, choice = [neg] * size, [0] * size
        for s in range(size):
            best, pick = (previous[s] if loop[s] else neg), s
            if s >= 1 and previous[s - 1] > best:
                best, pick = previous[s - 1], s - 1
            if skip[s] and previous[s - 2] > best:
                best, pick = previous[s - 2], s - 2
            for p, c in further.get(s, []):
                if previous[p] - c > best:
                    best, pick = previous[p] - c, p
            current[s] = best + log_probs[t, label[s]] if best > neg / 2 else neg
            choice[s] = pick
        choices.append(choice)
        previous = current
    ends = [previous[s] if graph.final[s] else neg for s in range(size)]
    state = int(np.argmax(ends))
    score = ends[state]
    path = [state]
    for t in range(frames - 2, -1, -1):
        state = choices[t][state]
        path.append(state)
    return path[::-1], score


@settings(max_examples=60, deadline=None)
@given(
    seed=st.integers(0, 10**6),
    extra=st.integers(0, 25),
    min_frames=st.integers(1, 3),
    optional=st.booleans(),
    ties=st.booleans(),
    capped=st.booleans(),
    single=st.booleans(),
)
def test_numpy_compiled_and_segmented_paths_equal_the_full_recursion(
    seed, extra, min_frames, optional, ties, capped, single
):
    """The band, the numpy path, the compiled kernels, the torch backend and
    the memory-bounded segments all give the path of the full recursion
    (float64), ties included; in float32 (summed in float32, as the network's
    output is) they all give the numpy path's path and score."""
    import aligner.duration_viterbi as dv

    rng = np.random.default_rng(seed)
    words = [rng.integers(1, 5, rng.integers(1, 4)).tolist() for _ in range(rng.integers(1, 5))]
    tokens = sum(len(w) for w in words)
    frames = tokens * min_frames + extra + 1
    log_probs = np.log(rng.dirichlet(np.ones(5), frames))
    if ties:
        log_probs = np.round(log_probs * 2) / 2  # many equal scores
    max_frames = min_frames + 3 if capped else None
    frames = frames if max_frames is None else min(frames, tokens * max_frames)  # room for silence anyway
    log_probs = log_probs[:frames]
    graph = state_graph(words, min_frames=min_frames, max_frames=max_frames, skip_cost=1.5 if optional else None)
    if single:
        log_probs = log_probs.astype(np.float32)
        path, score = dv._numpy_states(log_probs, graph)
        path = path.tolist()
    else:
        path, score = _reference_states(log_probs, graph)
    results = [dv._numpy_states(log_probs, graph)]
    original = dv.NUMPY_CELLS
    try:
        dv.NUMPY_CELLS = 0
        results.append(viterbi_states(log_probs, graph))  # compiled, one pass
        results.append(viterbi_states(log_probs, graph, max_memory=7))  # compiled, segments
    finally:
        dv.NUMPY_CELLS = original
    results.append(viterbi_states(torch.from_numpy(log_probs), graph, backend="torch"))  # the GPU code, on the CPU
    results.append(viterbi_states(log_probs, graph, max_memory=7, backend="torch"))
    for states, found in results:
        assert states.tolist() == path
        assert found == score


def test_band_holds_every_complete_path_and_is_empty_when_none_fits():
    from aligner.duration_viterbi import band

    graph = state_graph([[1, 2], [3]], min_frames=2)  # states: sil 1 1 2 2 sil 3 3 sil
    lo, hi = band(graph, 6)  # exactly the frames the tokens need: one state per frame, no silence
    assert lo.tolist() == hi.tolist() == [1, 2, 3, 4, 6, 7]
    lo, hi = band(graph, 7)  # one frame to spare
    assert lo.tolist() == [0, 1, 2, 3, 4, 6, 7] and hi.tolist() == [1, 2, 3, 4, 6, 7, 8]
    lo, hi = band(graph, 5)  # 3 tokens x 2 frames do not fit in 5
    assert np.any(lo > hi)
    with pytest.raises(AlignmentError, match="5 frames are too few"):
        viterbi_states(np.zeros((5, 4)), graph)


def test_a_short_alignment_does_not_import_numba_and_a_second_one_does():
    """One short file decodes in numpy: numba (and its kernel cache) is not
    loaded. An aligner used again is aligning many files: it loads the
    compiled kernels, and the alignment is the same."""
    code = (
        "import sys, aligner; "
        "a = aligner.Aligner(); text = open('examples/example.txt').read(); "
        "first = a.align('examples/example.wav', text); loaded = 'numba' in sys.modules; "
        "second = a.align('examples/example.wav', text); "
        "same = [(w.start, w.end) for w in first.words] == [(w.start, w.end) for w in second.words]; "
        "print(len(first.words), loaded, 'numba' in sys.modules, same)"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True, cwd=ROOT)
    words, first_loaded, second_loaded, same = out.stdout.split()
    assert int(words) > 10 and first_loaded == "False" and second_loaded == "True" and same == "True"


@pytest.mark.parametrize("dtype", [torch.float64, torch.float32, torch.bfloat16])
def test_torch_backend_batch_equals_the_cpu_backend_and_rejects_unknown_names(dtype):
    rng = np.random.default_rng(3)
    log_probs = torch.log_softmax(torch.from_numpy(rng.normal(size=(3, 60, 6)) * 3), -1).to(dtype)
    words = [[[1, 2], [3]], [[4, 4, 5]], [[2], [2], [1, 3]]]
    lengths = torch.tensor([60, 41, 25])
    cpu = duration_align(log_probs, words, lengths, backend="numba", skip_cost=2.0)
    on_torch = duration_align(log_probs, words, lengths, backend="torch", skip_cost=2.0)
    assert torch.equal(cpu[0], on_torch[0]) and torch.equal(cpu[1], on_torch[1])
    with pytest.raises(AlignmentError, match="backend must be one of auto, numba, torch"):
        duration_align(log_probs, words, lengths, backend="cuda")


@settings(max_examples=80, deadline=None)
@given(
    lengths=st.lists(st.integers(0, 4), min_size=1, max_size=6),
    min_frames=st.integers(1, 3),
    seed=st.integers(0, 10**6),
    starred=st.booleans(),
)
def test_the_numpy_graph_builder_equals_the_general_one(lengths, min_frames, seed, starred):
    from aligner.duration_viterbi import _chain, _chain_graph, _general_graph

    rng = np.random.default_rng(seed)
    words = [rng.integers(1, 6, n).tolist() for n in lengths]
    count = sum(1 for n in lengths if n)
    if not count:
        with pytest.raises(AlignmentError, match="no target token to align"):
            state_graph(words)
        return
    gaps = rng.integers(0, 7, count + 1).tolist() if starred else [0] * (count + 1)
    fast = _chain_graph(_chain(words, 0, min_frames, gaps), min_frames)
    general = _general_graph(words, 0, min_frames, None, gaps, None)
    for field in ("label", "pred1", "pred2", "loop", "start", "final", "token"):
        assert getattr(fast, field).tolist() == getattr(general, field).tolist(), field
    assert fast.jump is general.jump is None and fast.extra is general.extra is None


@settings(max_examples=60, deadline=None)
@given(
    lengths=st.lists(st.integers(0, 4), min_size=1, max_size=6),
    min_frames=st.integers(1, 3),
    extra=st.integers(-2, 20),
    seed=st.integers(0, 10**6),
    starred=st.booleans(),
    ties=st.booleans(),
    single=st.booleans(),
)
def test_the_compiled_chain_decoder_equals_the_graph_decoder(lengths, min_frames, extra, seed, starred, ties, single):
    """The one-call compiled path of a plain chain (graph, band, forward
    pass and trace in numba: what a batch runs once the kernels are loaded)
    gives the labels and positions of :func:`viterbi_states` on
    :func:`state_graph`'s graph, ties and too-short inputs included."""
    import aligner.duration_viterbi as dv

    kernels = dv.load_kernels()
    rng = np.random.default_rng(seed)
    words = [rng.integers(1, 6, n).tolist() for n in lengths]
    count = sum(1 for n in lengths if n)
    if not count:
        return
    gaps = rng.integers(0, 7, count + 1).tolist() if starred else None
    tokens = sum(lengths)
    frames = max(1, tokens * min_frames + extra)
    log_probs = np.log(rng.dirichlet(np.ones(7), frames))
    if ties:
        log_probs = np.round(log_probs * 2) / 2
    log_probs = log_probs.astype(np.float32 if single else np.float64)
    graph = state_graph(words, min_frames=min_frames, gaps=gaps)
    chain = dv._chain(words, 0, min_frames, gaps)
    label, token, loop, skip = kernels.chain_graph(chain.labels, chain.counts, chain.gaps, min_frames)
    assert (label.tolist(), token.tolist(), loop.tolist(), skip.tolist()) == (
        graph.label.tolist(), graph.token.tolist(), graph.loop.tolist(), graph.skip.tolist()
    )  # fmt: skip
    assert chain.size == graph.num_states
    lo, hi = kernels.chain_band(token, frames)
    expected_lo, expected_hi = dv.band(graph, frames)
    assert lo.tolist() == expected_lo.tolist() and hi.tolist() == expected_hi.tolist()
    if np.any(expected_lo > expected_hi):
        with pytest.raises(AlignmentError, match="frames are too few for this transcript"):
            dv._chain_decode(log_probs, chain, min_frames, np.empty(frames, np.int64), np.empty(frames, np.int64))
        return
    states, _ = viterbi_states(log_probs, graph, max_memory=10**9)
    labels, positions = np.empty(frames, np.int64), np.empty(frames, np.int64)
    dv._chain_decode(log_probs, chain, min_frames, labels, positions)
    assert labels.tolist() == graph.label[states].tolist()
    assert positions.tolist() == graph.token[states].tolist()


def test_a_batch_uses_the_compiled_chain_path_and_equals_the_numpy_one(monkeypatch):
    import aligner.duration_viterbi as dv

    rng = np.random.default_rng(4)
    log_probs = torch.log(torch.from_numpy(rng.dirichlet(np.ones(6), size=(5, 80))))
    words = [[rng.integers(1, 6, 3).tolist() for _ in range(rng.integers(2, 6))] for _ in range(5)]
    lengths = torch.tensor([80, 77, 60, 41, 80])
    dv.load_kernels()
    calls = []
    original = dv._chain_decode
    monkeypatch.setattr(dv, "_chain_decode", lambda *a: calls.append(1) or original(*a))
    compiled = duration_align(log_probs, words, lengths, min_frames=2)
    assert len(calls) == 5
    monkeypatch.setattr(dv, "kernels_loaded", lambda: False)
    numpy_paths = duration_align(log_probs, words, lengths, min_frames=2)  # the graph decoder (numpy)
    assert len(calls) == 5
    assert torch.equal(compiled[0], numpy_paths[0]) and torch.equal(compiled[1], numpy_paths[1])
