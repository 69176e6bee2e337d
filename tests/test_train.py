"""Tests of aligner.training.ctc: CTC training on a tiny synthetic corpus.

The corpus is made of tone sequences: every letter is an 80 ms tone whose
pitch depends on the letter, words are separated by silence, so a model can
actually learn it. TextGrids hold the exact word timings.
"""

from __future__ import annotations

import json
import warnings
from pathlib import Path

import numpy as np
import pytest
import soundfile as sf
import torch
from click.testing import CliRunner

from aligner import Aligner, load_model, save_model
from aligner.cli import main
from aligner.testing import ENGLISH_LABELS, MMS_LABELS, tiny_model
from aligner.training.ctc import (
    CorpusError,
    SkippedUtterancesWarning,
    TrainingError,
    bucket_batches,
    character_error_rate,
    edit_distance,
    find_corpus_files,
    greedy_decode,
    time_mask,
    timing_loss,
    train,
)

RATE = 16000
LETTERS = "ABCDEHINORST"
SENTENCES = [
    "CAB DOT",
    "BIRD NOTE",
    "RAT SHIN",
    "TOAD BEST",
    "HAT ROD",
    "DIRT SANE",
    "COAT HEN",
    "STAB RINE",
    "BRED HOST",
    "NICE TRAD",
    "DASH CORN",
    "HIDE CART",
]
FAST = dict(workers=0, progress=False, threads=1)


def synthesize(text: str, seed: int, rate: int = RATE) -> tuple[np.ndarray, list[tuple[float, float, str]]]:
    """Tones for the letters of ``text``; returns the waveform and word timings."""
    rng = np.random.default_rng(seed)
    char, gap, edge = 0.08, 0.12, 0.1
    pieces, t, words = [np.zeros(int(edge * rate))], edge, []
    for index, word in enumerate(text.split()):
        if index:
            pieces.append(np.zeros(int(gap * rate)))
            t += gap
        start = t
        for letter in word:
            n = int(char * rate)
            x = np.arange(n) / rate
            pieces.append(0.3 * np.sin(2 * np.pi * (300 + 150 * LETTERS.index(letter)) * x))
            t += char
        words.append((start, t, word))
    pieces.append(np.zeros(int(edge * rate)))
    y = np.concatenate(pieces)
    return (y + 0.003 * rng.standard_normal(len(y))).astype(np.float32), words


def textgrid_text(words: list[tuple[float, float, str]], total: float) -> str:
    intervals, last = [], 0.0
    for start, end, word in words:
        if start > last:
            intervals.append((last, start, ""))
        intervals.append((start, end, word))
        last = end
    if last < total:
        intervals.append((last, total, ""))
    lines = [
        'File type = "ooTextFile"',
        'Object class = "TextGrid"',
        "",
        "xmin = 0",
        f"xmax = {total}",
        "tiers? <exists>",
        "size = 1",
        "item []:",
        "    item [1]:",
        '        class = "IntervalTier"',
        '        name = "words"',
        "        xmin = 0",
        f"        xmax = {total}",
        f"        intervals: size = {len(intervals)}",
    ]
    for k, (start, end, word) in enumerate(intervals, 1):
        lines += [
            f"        intervals [{k}]:",
            f"            xmin = {start}",
            f"            xmax = {end}",
            f'            text = "{word}"',
        ]
    return "\n".join(lines) + "\n"


def make_corpus(root: Path, sentences=SENTENCES) -> Path:
    """Two speaker folders; one .lab transcript; one file at 22.05 kHz."""
    for index, text in enumerate(sentences):
        folder = root / f"speaker{index % 2}"
        folder.mkdir(parents=True, exist_ok=True)
        rate = 22050 if index == 5 else RATE
        y, words = synthesize(text, index, rate)
        sf.write(folder / f"utt{index:02d}.wav", y, rate)
        suffix = ".lab" if index == 3 else ".txt"
        (folder / f"utt{index:02d}{suffix}").write_text(text.lower() + "\n", encoding="utf-8")
        (folder / f"utt{index:02d}.TextGrid").write_text(textgrid_text(words, len(y) / rate))
    return root


@pytest.fixture(scope="module")
def corpus(tmp_path_factory) -> Path:
    return make_corpus(tmp_path_factory.mktemp("corpus"))


@pytest.fixture(scope="module")
def trained(corpus, tmp_path_factory):
    """One 30-step tiny run shared by several tests."""
    model_dir = tmp_path_factory.mktemp("trained") / "model"
    result = train(corpus, model_dir, config="tiny", max_steps=30, seed=1, **FAST)
    return result, model_dir


# --------------------------------------------------------------------------- helpers


def test_find_corpus_files(corpus, tmp_path):
    files = find_corpus_files(corpus)
    assert len(files) == len(SENTENCES)
    assert [f.key for f in files] == sorted(f.key for f in files)
    by_key = {f.key: f for f in files}
    assert by_key["speaker1/utt03.wav"].transcript.suffix == ".lab"
    assert by_key["speaker0/utt00.wav"].transcript.suffix == ".txt"
    assert by_key["speaker0/utt00.wav"].textgrid.name == "utt00.TextGrid"
    assert {f.speaker for f in files} == {"speaker0", "speaker1"}

    flat = tmp_path / "flat"
    (flat / ".hidden").mkdir(parents=True)
    y, _ = synthesize("CAB", 0)
    sf.write(flat / "a.wav", y, RATE)
    sf.write(flat / ".hidden" / "b.wav", y, RATE)
    (flat / "notes.txt").write_text("not audio")
    [only] = find_corpus_files(flat)
    assert only.key == "a.wav" and only.transcript is None and only.speaker == ""


def test_bucket_batches_cover_everything_within_budget():
    durations = [3.0, 1.0, 2.5, 0.5, 9.0, 1.2, 2.0, 4.0]
    batches = bucket_batches(durations, 5.0)
    assert sorted(i for b in batches for i in b) == list(range(len(durations)))
    for batch in batches:
        padded = len(batch) * max(durations[i] for i in batch)
        assert padded <= 5.0 or len(batch) == 1
    assert [4] in batches  # longer than the budget: alone
    assert bucket_batches([], 5.0) == []

    from aligner.training.ctc import _epoch_batches

    assert _epoch_batches(batches, 0, 0, sortagrad=True) == batches  # shortest first
    shuffled = [_epoch_batches(batches, 0, epoch, sortagrad=True) for epoch in (1, 2)]
    assert all(sorted(s) == sorted(batches) for s in shuffled) and shuffled[0] != shuffled[1]
    assert _epoch_batches(batches, 7, 1, sortagrad=False) == _epoch_batches(batches, 7, 1, sortagrad=True)


def test_edit_distance_cer_and_greedy_decode():
    assert edit_distance("kitten", "sitting") == 3
    assert edit_distance([], [1, 2]) == 2
    assert edit_distance([1, 2, 3], [1, 2, 3]) == 0
    assert character_error_rate([[1, 2], [3]], [[1, 2, 4], [3]]) == pytest.approx(1 / 4)
    log_probs = torch.log(
        torch.tensor([[0.1, 0.8, 0.1], [0.1, 0.8, 0.1], [0.8, 0.1, 0.1], [0.1, 0.8, 0.1], [0.1, 0.1, 0.8]])
    )
    assert greedy_decode(log_probs, blank=0) == [1, 1, 2]


def test_time_mask_zeroes_runs_and_leaves_input_alone():
    torch.manual_seed(0)
    features = torch.ones(2, 200, 4)
    masked = time_mask(features, 0.05, 5)
    assert torch.equal(features, torch.ones(2, 200, 4))
    zero_frames = (masked == 0).all(dim=-1)
    assert 0 < zero_frames.float().mean() < 0.6
    assert ((masked == 0) | (masked == 1)).all()
    assert time_mask(features, 0.0, 5) is features


def test_timing_loss_prefers_emissions_on_the_word_start():
    frames, classes = 10, 4  # blank 0, separator 1, letters 2 and 3
    words = [[(3, 6, 2)], None]
    lengths = torch.tensor([10, 10])

    def emissions(letter_frame: int) -> torch.Tensor:
        logits = torch.full((2, frames, classes), -4.0)
        logits[..., 0] = 2.0
        logits[0, letter_frame, :] = -4.0
        logits[0, letter_frame, 2] = 4.0
        return torch.log_softmax(logits, dim=-1)

    on_start = timing_loss(emissions(3), lengths, words, blank=0, separator=1)
    late = timing_loss(emissions(5), lengths, words, blank=0, separator=1)
    in_silence = timing_loss(emissions(9), lengths, words, blank=0, separator=1)
    assert on_start < late < in_silence
    assert timing_loss(emissions(3), lengths, [None, None], blank=0, separator=1) is None


# --------------------------------------------------------------------------- training


def test_loss_goes_down_and_model_aligns(trained, corpus):
    result, model_dir = trained
    losses = result.train_losses
    assert result.steps == 30 and len(losses) == 30
    assert np.mean(losses[-5:]) < np.mean(losses[:5])
    assert result.num_train + result.num_dev == len(SENTENCES) and result.num_dev >= 1
    assert result.best_dev_loss is not None and result.history

    model = load_model(model_dir)
    assert model.labels == ENGLISH_LABELS and model.separator == "|" and model.normalize_waveform
    assert model.frame_samples == 320
    assert 1000 < sum(p.numel() for p in model.model.parameters()) < 20000
    alignment = Aligner(model_dir, device="cpu").align(corpus / "speaker0" / "utt00.wav", "Cab dot!")
    assert [w.text for w in alignment.words] == ["Cab", "dot!"]
    assert all(0 <= w.start <= w.end <= alignment.duration for w in alignment.words)

    records = [json.loads(line) for line in (model_dir / "training_log.jsonl").read_text().splitlines()]
    assert records[0]["event"] == "start" and records[0]["command"]
    assert records[0]["config"]["name"] == "tiny" and records[0]["options"]["seed"] == 1
    epochs = [r for r in records if r["event"] == "epoch"]
    assert epochs and all({"dev_loss", "dev_cer", "train_loss", "lr", "step"} <= set(r) for r in epochs)
    assert records[-1]["event"] == "end"
    assert (model_dir / "training_state.pt").is_file()
    assert not list(model_dir.glob(".*"))  # no temporary files left


def test_training_is_deterministic_and_leaves_global_state_alone(corpus, tmp_path):
    torch.manual_seed(123)
    before = torch.get_rng_state()
    threads = torch.get_num_threads()
    first = train(corpus, tmp_path / "a", config="tiny", max_steps=8, seed=5, **FAST)
    assert torch.equal(torch.get_rng_state(), before)
    assert torch.get_num_threads() == threads
    second = train(corpus, tmp_path / "b", config="tiny", max_steps=8, seed=5, **FAST)
    other = train(corpus, tmp_path / "c", config="tiny", max_steps=8, seed=6, **FAST)
    assert first.train_losses == second.train_losses
    assert first.train_losses != other.train_losses


def test_resume_continues_the_step_count(corpus, tmp_path):
    model_dir = tmp_path / "model"
    first = train(corpus, model_dir, config="tiny", max_steps=10, seed=0, **FAST)
    assert first.steps == 10
    resumed = train(corpus, model_dir, resume=True, max_steps=16, **FAST)
    assert resumed.steps == 16 and len(resumed.train_losses) == 6
    assert resumed.num_dev == first.num_dev
    events = [json.loads(line)["event"] for line in (model_dir / "training_log.jsonl").read_text().splitlines()]
    assert events.count("start") == 1 and events.count("resume") == 1
    assert load_model(model_dir).labels == ENGLISH_LABELS


def test_interrupted_run_resumes_exactly(corpus, tmp_path):
    options = dict(config="tiny", max_steps=20, seed=2, timing_weight=0.5, **FAST)
    straight = train(corpus, tmp_path / "straight", **options)

    def stop(step: int, loss: float) -> None:
        if step == 7:
            raise KeyboardInterrupt

    with pytest.raises(KeyboardInterrupt):
        train(corpus, tmp_path / "broken", callback=stop, **options)
    resumed = train(corpus, tmp_path / "broken", resume=True, max_steps=20, **FAST)
    assert resumed.steps == 20
    assert resumed.train_losses == straight.train_losses[7:]
    # with a timing weight the best model is chosen by CTC + weight * timing loss on dev
    last = straight.history[-1]
    assert last["dev_timing_loss"] > 0
    assert last["dev_objective"] == pytest.approx(last["dev_loss"] + 0.5 * last["dev_timing_loss"])


def test_interrupted_and_resumed_run_ends_like_an_uninterrupted_one(corpus, tmp_path):
    options = dict(config="tiny", max_steps=12, seed=4, timing_weight=0.5, eval_every=5, save_every=3, **FAST)
    straight, broken = tmp_path / "straight" / "model", tmp_path / "broken" / "model"  # same model name
    train(corpus, straight, **options)

    def stop(step: int, loss: float) -> None:
        if step == 7:
            raise KeyboardInterrupt

    with pytest.raises(KeyboardInterrupt):
        train(corpus, broken, callback=stop, **options)
    train(corpus, broken, resume=True, **FAST)
    for name in ("model.safetensors", "aligner_model.json"):  # the best model
        assert (broken / name).read_bytes() == (straight / name).read_bytes()
    first, second = (torch.load(folder / "training_state.pt", weights_only=True) for folder in (straight, broken))
    assert first["step"] == second["step"] == 12
    assert first["model"].keys() == second["model"].keys()
    assert all(torch.equal(value, second["model"][key]) for key, value in first["model"].items())

    def records(folder: Path) -> list[dict]:
        """The log without the (re)start and interruption records and timings."""
        kept = []
        for line in (folder / "training_log.jsonl").read_text().splitlines():
            record = json.loads(line)
            if record["event"] not in ("start", "resume", "interrupted"):
                record.pop("elapsed")
                kept.append(record)
        return kept

    expected, resumed = records(straight), records(broken)
    # the train_loss of the first evaluation after the resume averages the steps run since the resume only
    after = next(index for index, record in enumerate(resumed) if record["step"] > 7)
    del expected[after]["train_loss"], resumed[after]["train_loss"]
    assert resumed == expected


def test_init_keeps_the_labels_of_the_init_model(corpus, tmp_path):
    init_dir = save_model(tiny_model(MMS_LABELS, separator=None, star="*", name="mms-like"), tmp_path / "init")
    result = train(corpus, tmp_path / "tuned", init=init_dir, max_steps=4, seed=0, **FAST)
    assert result.config.name == "finetune"
    tuned = load_model(tmp_path / "tuned")
    assert tuned.labels == MMS_LABELS and tuned.separator is None and tuned.star == "*"
    assert tuned.model.encoder.feature_projection.projection.out_features == 32  # init's architecture
    original = load_model(init_dir)
    # the feature extractor is frozen by the finetune config; the encoder moved
    for key, value in original.model.feature_extractor.state_dict().items():
        assert torch.equal(value, tuned.model.feature_extractor.state_dict()[key])
    assert not torch.equal(original.model.aux.weight, tuned.model.aux.weight)


def test_timing_weight_uses_textgrids_and_reports_mismatches(corpus, tmp_path):
    bad = tmp_path / "corpus"
    make_corpus(bad, SENTENCES[:4])
    grid = bad / "speaker0" / "utt00.TextGrid"
    grid.write_text(grid.read_text().replace('text = "DOT"', 'text = ""'))
    with pytest.warns(SkippedUtterancesWarning, match=r"1 TextGrids not used .*word count differs"):
        result = train(bad, tmp_path / "model", config="tiny", max_steps=3, timing_weight=1.0, **FAST)
    assert result.steps == 3


# --------------------------------------------------------------------------- bad input


def test_unusable_utterances_are_skipped_with_one_warning(tmp_path):
    root = make_corpus(tmp_path / "corpus", SENTENCES[:4])
    (root / "speaker0" / "utt00.txt").write_text("a much much longer transcript than the audio could hold")
    (root / "speaker1" / "utt01.txt").unlink()
    (root / "speaker0" / "broken.wav").write_bytes(b"RIFF not really a wav file")
    (root / "speaker0" / "broken.txt").write_text("cab")
    with pytest.warns(SkippedUtterancesWarning) as caught:
        result = train(root, tmp_path / "model", config="tiny", max_steps=2, **FAST)
    [message] = [str(w.message) for w in caught if str(w.message).startswith("skipped")]
    assert "skipped 3 of 5 utterances" in message
    assert "1 no transcript (speaker1/utt01.wav)" in message
    assert "1 unreadable audio (speaker0/broken.wav)" in message
    assert "1 transcript too long for the audio (speaker0/utt00.wav)" in message
    assert result.num_train + result.num_dev == 2
    assert result.skipped == {"no transcript": 1, "unreadable audio": 1, "transcript too long for the audio": 1}


def test_corpus_errors(tmp_path):
    with pytest.raises(CorpusError, match="corpus folder not found"):
        train(tmp_path / "missing", tmp_path / "m", config="tiny", **FAST)
    (tmp_path / "empty").mkdir()
    with pytest.raises(CorpusError, match="no audio files"):
        train(tmp_path / "empty", tmp_path / "m", config="tiny", **FAST)
    untranscribed = tmp_path / "untranscribed"
    untranscribed.mkdir()
    y, _ = synthesize("CAB", 0)
    sf.write(untranscribed / "a.wav", y, RATE)
    with pytest.raises(CorpusError, match="none of the 1 audio files .* has a transcript"):
        train(untranscribed, tmp_path / "m", config="tiny", **FAST)
    (untranscribed / "a.txt").write_text("far too many words for a third of a second of tones")
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        with pytest.raises(CorpusError, match="no usable utterance .* 1 transcript too long"):
            train(untranscribed, tmp_path / "m", config="tiny", **FAST)


def test_option_errors(corpus, trained, tmp_path):
    with pytest.raises(TrainingError, match="unknown training config 'huge'; choose one of tiny, small"):
        train(corpus, tmp_path / "m", config="huge", **FAST)
    with pytest.raises(TrainingError, match="epochs=0"):
        train(corpus, tmp_path / "m", config="tiny", epochs=0, **FAST)
    with pytest.raises(TrainingError, match="dev_fraction=1.5"):
        train(corpus, tmp_path / "m", config="tiny", dev_fraction=1.5, **FAST)
    with pytest.raises(TrainingError, match="needs init"):
        train(corpus, tmp_path / "m", config="finetune", **FAST)
    with pytest.raises(TrainingError, match="cannot resume: .*training_state.pt does not exist"):
        train(corpus, tmp_path / "fresh", resume=True, **FAST)
    _, model_dir = trained
    with pytest.raises(TrainingError, match="already holds a training run"):
        train(corpus, model_dir, config="tiny", **FAST)


# --------------------------------------------------------------------------- CLI


def test_cli_train(corpus, tmp_path):
    runner = CliRunner()
    out = tmp_path / "cli-model"
    result = runner.invoke(
        main,
        [
            "train",
            str(corpus),
            "-o",
            str(out),
            "--config",
            "tiny",
            "--max-steps",
            "6",
            "--seed",
            "3",
            "--threads",
            "1",
            "--workers",
            "0",
            "--batch-seconds",
            "5",
            "--dev-fraction",
            "0.2",
            "--timing-weight",
            "0.1",
        ],
    )
    assert result.exit_code == 0, result.output
    assert "trained 6 steps" in result.output
    assert load_model(out).labels == ENGLISH_LABELS
    start = json.loads((out / "training_log.jsonl").read_text().splitlines()[0])
    assert start["options"]["batch_seconds"] == 5.0 and start["options"]["timing_weight"] == 0.1

    resumed = runner.invoke(main, ["train", str(corpus), "-o", str(out), "--resume", "--max-steps", "8", "-q"])
    assert resumed.exit_code == 0, resumed.output
    assert "trained 8 steps" in resumed.output


def test_cli_train_bad_input(corpus, tmp_path):
    runner = CliRunner()
    (tmp_path / "empty").mkdir()
    result = runner.invoke(main, ["train", str(tmp_path / "empty"), "-o", str(tmp_path / "m"), "--config", "tiny"])
    assert result.exit_code == 2
    assert "error: no audio files" in result.output and "empty" in result.output
    result = runner.invoke(main, ["train", str(corpus), "-o", str(tmp_path / "m"), "--config", "giant"])
    assert result.exit_code == 2
    assert "unknown training config 'giant'" in result.output
    result = runner.invoke(main, ["train", str(corpus), "-o", str(tmp_path / "m"), "--epochs", "-1"])
    assert result.exit_code == 2 and "epochs=-1" in result.output
