"""Adapting a model to the corpus it aligns (:mod:`aligner.training.adapt`,
``align-corpus --adapt``)."""

from __future__ import annotations

import csv
import math
from dataclasses import replace
from pathlib import Path

import pytest
import torch
import torch.nn.functional as F
from click.testing import CliRunner

from aligner import Aligner, load_model
from aligner.training.adapt import IGNORE, AdaptOptions, adapt_model, adaptation_budget, frame_targets
from aligner.cli import main
from aligner.corpus.align import CONFIDENCE_FILE, align_corpus
from aligner.errors import AlignerError
from aligner.records import Alignment, CharSpan, WordSpan
from aligner.testing import tiny_phone_model


@pytest.fixture(scope="module")
def speech_corpus(tmp_path_factory) -> Path:
    """Eight short espeak-ng utterances (audio + transcript)."""
    from aligner.training.synth.corpus import make_corpus

    root = tmp_path_factory.mktemp("adapt") / "corpus"
    make_corpus(root, num_utterances=8, seed=5, split="heldout", augment=False)
    for grid in root.rglob("*.TextGrid"):
        grid.unlink()  # a corpus to align: audio and transcripts only
    return root


def _phone_aligner(seed: int = 0) -> Aligner:
    """A tiny random phone model decoded like the packaged one (duration decoder)."""
    return Aligner(replace(tiny_phone_model(seed=seed), min_frames=2), device="cpu")


def _items(aligner: Aligner, root: Path) -> list:
    return [aligner.prepare(str(wav), wav.with_suffix(".txt")) for wav in sorted(root.rglob("*.wav"))]


def test_frame_targets_label_phones_silence_and_ignore_weak_words():
    words = (
        WordSpan("a", "AH", 0.1, 0.2, 0.9, (CharSpan("AH", 0.1, 0.2, 0.9),)),
        WordSpan("b", "B IY", 0.3, 0.5, 0.05, (CharSpan("B", 0.3, 0.4, 0.1), CharSpan("IY", 0.4, 0.5, 0.0))),
    )
    alignment = Alignment(words, 0.6, 0.1, phonetic=True)
    targets = frame_targets(alignment, 6, ("-", "AH", "B", "IY"), 0)
    assert targets.tolist() == [0, 1, IGNORE, IGNORE, IGNORE, IGNORE]  # a weak word and the silence around it


def test_adaptation_lowers_the_training_loss_and_reports(speech_corpus):
    aligner = _phone_aligner(seed=1)
    items = _items(aligner, speech_corpus)
    result = adapt_model(
        aligner,
        items,
        seconds=120,
        lr=3e-3,
        prior_weight=0.0,
        eval_every=3,
        patience=50,
        holdout=0.25,
        seed=1,
        max_steps=12,
        max_epochs=10,
        min_target_score=0.0,
    )
    assert result.train_items == 6 and result.held_out_items == 2 and len(result.first_pass) == 8
    assert result.steps >= 3 and result.history and result.history[0][0] == 3
    assert result.steps == 12 and [step for step, _ in result.history] == [3, 6, 9, 12]
    assert result.improved and result.model.model is not aligner.model.model  # the original is never changed

    def loss(model) -> float:  # frame cross-entropy of every item against the original model's alignment
        total = 0.0
        for item, alignment in zip(items, aligner.align_prepared(items)):
            targets = frame_targets(alignment, 10**6, model.labels, model.blank, min_score=0.0)
            log_probs = Aligner(model, device="cpu").emitter([item.waveform]).log_probs[0]
            total += float(F.nll_loss(log_probs, targets[: log_probs.shape[0]], ignore_index=IGNORE))
        return total

    assert loss(result.model) < loss(aligner.model)
    assert result.held_out_after == max(score for _, score in result.history) > result.held_out_before
    assert "adapted model kept" in result.describe()


def test_ctc_models_adapt_on_their_transcripts(speech_corpus):
    aligner = Aligner(tiny_phone_model(seed=2), device="cpu")  # no min_frames: the CTC path
    items = _items(aligner, speech_corpus)

    def ctc(model) -> float:
        emitter = Aligner(model, device="cpu").emitter
        total = 0.0
        for item in items:
            log_probs = emitter([item.waveform]).log_probs[0]
            total += float(
                F.ctc_loss(
                    log_probs[:, None],
                    torch.tensor([item.targets]),
                    torch.tensor([log_probs.shape[0]]),
                    torch.tensor([len(item.targets)]),
                )
            )
        return total

    result = adapt_model(
        aligner,
        items,
        seconds=120,
        lr=3e-3,
        prior_weight=0.0,
        eval_every=4,
        patience=50,
        holdout=0.25,
        seed=0,
        max_steps=12,
        max_epochs=10,
    )
    assert result.improved
    assert ctc(result.model) < ctc(aligner.model)


def test_no_held_out_improvement_keeps_the_original(speech_corpus):
    aligner = _phone_aligner()
    items = _items(aligner, speech_corpus)
    result = adapt_model(aligner, items, seconds=120, lr=1e-12, eval_every=2, patience=1, seed=1, max_steps=20)
    assert not result.improved and result.model is aligner.model and result.steps == 2
    assert result.held_out_after == result.held_out_before and "not kept" in result.describe()


def test_adaptation_stops_after_max_epochs(speech_corpus):
    aligner = _phone_aligner()
    items = _items(aligner, speech_corpus)  # 6 training items, 4 per step: 2 epochs = 3 steps
    result = adapt_model(aligner, items, seconds=120, eval_every=100, holdout=0.25, max_epochs=2)
    assert result.steps == 3 and result.history == () and not result.improved


def test_bad_arguments_are_errors(speech_corpus):
    aligner = _phone_aligner()
    items = _items(aligner, speech_corpus)[:1]
    with pytest.raises(AlignerError, match="at least 2 files"):
        adapt_model(aligner, items, seconds=1)
    with pytest.raises(AlignerError, match="holdout in"):
        adapt_model(aligner, items * 2, seconds=1, holdout=1.5)
    assert adaptation_budget(2.0, None) == 60.0 and adaptation_budget(100.0, None) == 500.0
    assert adaptation_budget(2.0, 0.5) == 30.0
    with pytest.raises(AlignerError, match="positive"):
        adaptation_budget(1.0, -1.0)


def test_align_corpus_adapts_reports_both_scores_and_saves(speech_corpus, tmp_path):
    aligner = _phone_aligner()
    out = tmp_path / "out"
    saved = tmp_path / "adapted"
    steps = []
    summary = align_corpus(
        speech_corpus,
        out,
        aligner,
        formats=("json",),
        adapt=AdaptOptions(minutes=10, save_to=str(saved), max_steps=3),
        on_adapt_step=lambda step, score: steps.append(step),
    )
    assert summary.aligned == 8 and summary.adaptation is not None and steps == [1, 2, 3]
    assert "adapted on 6 files (2 held out)" in summary.describe()
    assert load_model(saved).name.endswith("-adapted") == summary.adaptation.improved
    with (out / CONFIDENCE_FILE).open(newline="") as handle:
        rows = list(csv.DictReader(handle, delimiter="\t"))
    assert len(rows) == 8 and all(not math.isnan(float(row["first_pass_score"])) for row in rows)
    if summary.adaptation.improved:  # every file scored lower than before is counted, never hidden
        lower = [row for row in rows if float(row["score"]) < float(row["first_pass_score"])]
        assert f"{len(lower)} of 8 files scored lower than with the original model" in summary.describe()


def test_cli_adapt_options(speech_corpus, tmp_path):
    from aligner.models.loading import save_model

    save_model(_phone_aligner().model, tmp_path / "tiny")
    result = CliRunner().invoke(
        main, ["align-corpus", str(speech_corpus), str(tmp_path / "out"), "-q", "--adapt", "--adapt-minutes", "0"]
    )
    assert result.exit_code == 2 and "--adapt-minutes" in result.output
    result = CliRunner().invoke(
        main,
        [
            "align-corpus",
            str(speech_corpus),
            str(tmp_path / "out"),
            "-q",
            "--adapt",
            "--adapt-minutes",
            "0.05",
            "-f",
            "json",
            "--model",
            str(tmp_path / "tiny"),
        ],
    )
    assert result.exit_code == 0, result.output
    assert "adapted on 6 files (2 held out)" in result.output
