"""``--adapt`` is reproducible: its budget is work (steps), its random
choices come from its seed, and a wall-clock limit applies only when asked
for (:mod:`aligner.training.adapt`)."""

from __future__ import annotations

import subprocess
import sys
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import replace
from pathlib import Path

import pytest
import torch

from aligner import Aligner
from aligner.corpus.align import align_corpus
from aligner.errors import AlignerError
from aligner.testing import tiny_phone_model
from aligner.training.adapt import MIN_SCORE_GAIN, AdaptOptions, adapt_model, adaptation_budget


@pytest.fixture(scope="module")
def speech_corpus(tmp_path_factory) -> Path:
    """Eight short espeak-ng utterances (audio + transcript)."""
    from aligner.training.synth.corpus import make_corpus

    root = tmp_path_factory.mktemp("reproducible") / "corpus"
    make_corpus(root, num_utterances=8, seed=5, split="heldout", augment=False)
    for grid in root.rglob("*.TextGrid"):
        grid.unlink()
    return root


def _phone_aligner(seed: int = 1) -> Aligner:
    return Aligner(replace(tiny_phone_model(seed=seed), min_frames=2), device="cpu")


def _items(aligner: Aligner, root: Path) -> list:
    return [aligner.prepare(str(wav), wav.with_suffix(".txt")) for wav in sorted(root.rglob("*.wav"))]


@contextmanager
def _busy_machine(processes: int = 2) -> Iterator[None]:
    """Busy-loop subprocesses competing for the CPUs while the block runs."""
    loops = [subprocess.Popen([sys.executable, "-c", "while True: pass"]) for _ in range(processes)]
    try:
        yield
    finally:
        for loop in loops:
            loop.kill()
            loop.wait()


def test_the_same_adaptation_on_a_busy_machine_gives_identical_weights(speech_corpus):
    aligner = _phone_aligner()
    items = _items(aligner, speech_corpus)
    options = {
        "lr": 3e-3,
        "prior_weight": 0.0,
        "eval_every": 3,
        "patience": 50,
        "holdout": 0.25,
        "seed": 1,
        "max_steps": 12,
        "max_epochs": 10,
        "min_target_score": 0.0,
    }
    torch.manual_seed(1234)
    caller = torch.random.get_rng_state()
    quiet = adapt_model(aligner, items, **options)
    assert torch.equal(torch.random.get_rng_state(), caller)  # the caller's generator is left as it was
    with _busy_machine():
        busy = adapt_model(aligner, items, **options)
    assert quiet.improved and quiet.model is not aligner.model  # weights that moved: the comparison has teeth
    assert (quiet.steps, quiet.max_steps) == (busy.steps, busy.max_steps) == (12, 12)
    assert quiet.history == busy.history and len(quiet.history) == 4
    mine, theirs = quiet.model.model.state_dict(), busy.model.model.state_dict()
    assert mine.keys() == theirs.keys() and all(torch.equal(mine[k], theirs[k]) for k in mine)
    original = aligner.model.model.state_dict()
    assert not all(torch.equal(mine[k], original[k]) for k in mine)
    assert not quiet.stopped_by_time and quiet.time_limit is None and "time limit" not in quiet.describe()
    assert "for 12 of 12 steps" in quiet.describe()


def test_a_time_limit_applies_only_when_asked_for_and_says_so(speech_corpus):
    aligner = _phone_aligner()
    items = _items(aligner, speech_corpus)
    limited = adapt_model(aligner, items, seconds=1e-6, max_steps=6)
    assert limited.stopped_by_time and limited.steps == 0 and limited.time_limit == 1e-6
    assert "stopped by the time limit" in limited.describe() and not limited.improved
    assert adaptation_budget(None) is None and adaptation_budget(0.5) == 30.0


def test_align_corpus_adapt_gives_identical_alignments_on_a_busy_machine(speech_corpus, tmp_path):
    aligner = _phone_aligner()
    outputs = []
    for name in ("quiet", "busy"):
        out = tmp_path / name
        if name == "busy":
            with _busy_machine():
                summary = align_corpus(speech_corpus, out, aligner, formats=("json",), adapt=AdaptOptions())
        else:
            summary = align_corpus(speech_corpus, out, aligner, formats=("json",), adapt=AdaptOptions())
        assert summary.aligned == 8 and summary.adaptation is not None
        assert summary.adaptation.time_limit is None and not summary.adaptation.stopped_by_time
        assert summary.adaptation.steps > 0
        outputs.append({p.relative_to(out): p.read_bytes() for p in sorted(out.rglob("*.json"))})
    assert len(outputs[0]) == 8 and outputs[0] == outputs[1]


def test_the_likelihood_criterion_stops_and_keeps_by_log_probability_per_frame(speech_corpus):
    aligner = _phone_aligner()
    items = _items(aligner, speech_corpus)
    seen = []
    result = adapt_model(
        aligner,
        items,
        lr=3e-3,
        prior_weight=0.0,
        eval_every=3,
        patience=50,
        seed=1,
        max_steps=6,
        criterion="likelihood",
        on_evaluate=lambda step, model, value: seen.append((step, value)),
    )
    assert result.criterion == "likelihood" and "held-out log-probability per frame" in result.describe()
    assert list(result.history) == seen and [step for step, _ in seen] == [3, 6]
    assert all(value < 0 for _, value in seen) and result.held_out_before < 0  # log-probabilities, not scores
    best = max([result.held_out_before, *(value for _, value in seen)])
    assert result.improved == (best > result.held_out_before + MIN_SCORE_GAIN)
    assert result.held_out_after == (best if result.improved else result.held_out_before)
    with pytest.raises(AlignerError, match="criterion must be one of score, likelihood"):
        adapt_model(aligner, items, criterion="mae")
