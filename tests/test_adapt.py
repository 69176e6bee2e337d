"""Adapting a model to the corpus it aligns (:mod:`aligner.training.adapt`,
``align-corpus --adapt``)."""

from __future__ import annotations

import copy
import csv
import json
import math
import shutil
from dataclasses import replace
from pathlib import Path

import pytest
import torch
import torch.nn.functional as F
from click.testing import CliRunner

from aligner import Aligner, load_model
from aligner.cli import main
from aligner.corpus.align import CONFIDENCE_FILE, align_corpus
from aligner.corpus.files import find_corpus_files
from aligner.errors import AlignerError, CorpusError
from aligner.records import Alignment, CharSpan, WordSpan
from aligner.testing import tiny_phone_model
from aligner.training import adapt as adapt_module
from aligner.training.adapt import (
    IGNORE,
    MIN_SPEAKER_FILES,
    MIN_SPEAKER_SECONDS,
    AdaptationResult,
    AdaptOptions,
    adapt_model,
    adaptation_budget,
    frame_targets,
    speaker_of,
    speakers_to_adapt,
)


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
    result = adapt_model(aligner, items, lr=1e-12, eval_every=2, patience=1, seed=1, max_steps=20)
    assert not result.improved and result.model is aligner.model and result.steps == 2
    assert result.held_out_after == result.held_out_before and "not kept" in result.describe()


def test_adaptation_stops_after_max_epochs(speech_corpus):
    aligner = _phone_aligner()
    items = _items(aligner, speech_corpus)  # 6 training items, 4 per step: 2 epochs = 3 steps
    result = adapt_model(aligner, items, eval_every=100, holdout=0.25, max_epochs=2)
    assert result.steps == 3 and result.history == () and not result.improved


def test_bad_arguments_are_errors(speech_corpus):
    aligner = _phone_aligner()
    items = _items(aligner, speech_corpus)[:1]
    with pytest.raises(AlignerError, match="at least 2 files"):
        adapt_model(aligner, items, seconds=1)
    with pytest.raises(AlignerError, match="holdout in"):
        adapt_model(aligner, items * 2, seconds=1, holdout=1.5)
    assert adaptation_budget(None) is None and adaptation_budget(0.5) == 30.0
    with pytest.raises(AlignerError, match="positive"):
        adaptation_budget(-1.0)


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


# --------------------------------------------------------------------------- --adapt-per-speaker


def _regroup(source: Path, root: Path, places: dict[str, list[int]]) -> Path:
    """Copies of ``source``'s utterances (sorted, by index) in new speaker
    folders (``""``: directly in ``root``); a copy is named after its folder
    and index so that one utterance can be copied several times."""
    wavs = sorted(source.rglob("*.wav"))
    for folder, indices in places.items():
        target = root / folder if folder else root
        target.mkdir(parents=True, exist_ok=True)
        for n, index in enumerate(indices):
            stem = f"{folder or 'top'}-{n:02d}"
            shutil.copy(wavs[index], target / f"{stem}.wav")
            shutil.copy(wavs[index].with_suffix(".txt"), target / f"{stem}.txt")
    return root


@pytest.fixture(scope="module")
def speaker_corpus(speech_corpus, tmp_path_factory) -> Path:
    """The eight utterances regrouped: spkA (15 s) and spkB (20 s) three
    files each, spkC one file, one file without a speaker folder."""
    places = {"spkA": [0, 1, 2], "spkB": [3, 4, 5], "spkC": [6], "": [7]}
    return _regroup(speech_corpus, tmp_path_factory.mktemp("speakers") / "corpus", places)


def _audio_seconds(folder: Path) -> float:
    import soundfile

    return math.fsum(soundfile.info(str(wav)).duration for wav in folder.rglob("*.wav"))


def _rows(out: Path) -> dict[str, dict[str, str]]:
    with (out / CONFIDENCE_FILE).open(newline="") as handle:
        return {row["file"]: row for row in csv.DictReader(handle, delimiter="\t")}


class _FakeAdapt:
    """Stands in for :func:`adapt_model`: records each call and returns a
    visibly different model (noise on the output layer), kept or not as
    ``kept`` says for the speaker of the items (``"corpus"`` for a call
    whose items come from several folders). With a ``clock`` (a one-item
    list read by a fake ``time.perf_counter``) each call spends ``spend``
    of the time it is given."""

    def __init__(self, kept: dict[str, bool], clock: list[float] | None = None, spend: float = 1.0):
        self.kept = kept
        self.calls: list[dict] = []
        self.clock, self.spend = clock, spend

    def __call__(self, aligner, items, *, seconds=None, first_pass=None, seed=0, max_steps=None, on_step=None, **_):
        folders = {Path(item.audio_name).parent.name for item in items}
        name = folders.pop() if len(folders) == 1 else "corpus"
        self.calls.append(
            dict(name=name, model=aligner.model, files=sorted(Path(i.audio_name).name for i in items), seconds=seconds)
        )
        self.calls[-1]["first_pass"] = dict(zip((Path(i.audio_name).name for i in items), first_pass or []))
        model = replace(aligner.model, model=copy.deepcopy(aligner.model.model))
        generator = torch.Generator().manual_seed(len(self.calls))
        with torch.no_grad():
            for parameter in model.model.aux.parameters():
                parameter.add_(2.0 * torch.randn(parameter.shape, generator=generator))
        if on_step is not None:
            on_step(1, 0.6)
        if self.clock is not None:
            self.clock[0] += self.spend * seconds
        improved = self.kept[name]
        return AdaptationResult(
            model if improved else aligner.model,
            improved,
            1,
            0.0,
            len(items) - 1,
            1,
            0.5,
            0.6 if improved else 0.5,
            ((1, 0.6),),
            tuple(first_pass if first_pass is not None else [0.5] * len(items)),
        )


def test_speaker_of_and_who_gets_a_model(speaker_corpus):
    assert speaker_of("spk1/utt1.wav") == "spk1" and speaker_of("spk1/day2/utt7.wav") == "spk1"
    assert speaker_of("utt3.wav") == ""
    assert all(speaker_of(f.key) == f.speaker for f in find_corpus_files(speaker_corpus))
    assert (MIN_SPEAKER_SECONDS, MIN_SPEAKER_FILES) == (60.0, 3)
    files = [
        ("big/1.wav", 30.0),
        ("big/2.wav", 20.0),
        ("big/sub/3.wav", 10.0),  # deeper folders belong to their first-level folder
        ("two/1.wav", 100.0),  # enough audio, too few files
        ("two/2.wav", 100.0),
        ("short/1.wav", 19.0),  # enough files, too little audio
        ("short/2.wav", 20.0),
        ("short/3.wav", None),  # unknown duration counts 0 s
        ("top1.wav", 500.0),  # no speaker: never
        ("top2.wav", 500.0),
        ("top3.wav", 500.0),
    ]
    assert speakers_to_adapt(files) == {"big": ["big/1.wav", "big/2.wav", "big/sub/3.wav"]}
    assert list(speakers_to_adapt(files, min_seconds=39.0, min_files=2)) == ["big", "short", "two"]
    assert speakers_to_adapt(files, min_seconds=61.0) == {}


@pytest.mark.parametrize(
    "kept, spend",
    [
        ({"corpus": True, "spkA": True, "spkB": True}, 1.0),
        ({"corpus": False, "spkA": True, "spkB": False}, 0.5),  # not kept: as without a model of its own
    ],
)
def test_speakers_with_enough_audio_get_their_own_model(speaker_corpus, tmp_path, monkeypatch, kept, spend):
    from types import SimpleNamespace

    from aligner.corpus import align as align_module

    clock = [1000.0]  # the run's clock: only the (fake) adaptations take time
    monkeypatch.setattr(align_module, "time", SimpleNamespace(perf_counter=lambda: clock[0]))
    fake = _FakeAdapt(kept, clock, spend)
    monkeypatch.setattr(adapt_module, "adapt_model", fake)
    aligner = _phone_aligner()
    out, saved = tmp_path / "out", tmp_path / "adapted"
    started: list[str] = []
    options = AdaptOptions(minutes=10, save_to=str(saved), min_speaker_seconds=12.0)
    summary = align_corpus(
        speaker_corpus,
        out,
        aligner,
        formats=("json",),
        adapt=options,
        adapt_per_speaker=True,
        on_adapt_start=started.append,
    )
    assert summary.aligned == 8 and started == ["corpus", "spkA", "spkB"]

    # whole corpus first, then each speaker on its own files, always from the original model
    assert [c["name"] for c in fake.calls] == ["corpus", "spkA", "spkB"]
    assert all(c["model"] is aligner.model for c in fake.calls)
    assert len(fake.calls[0]["files"]) == 8
    assert fake.calls[1]["files"] == ["spkA-00.wav", "spkA-01.wav", "spkA-02.wav"]
    assert fake.calls[2]["files"] == ["spkB-00.wav", "spkB-01.wav", "spkB-02.wav"]
    for call in fake.calls[1:]:  # one first pass: the same scores as in the corpus set
        assert all(call["first_pass"][f] == fake.calls[0]["first_pass"][f] for f in call["files"])
    # one budget for all (10 minutes), shared in proportion to the audio adapted on, in turn:
    # the time an adaptation leaves unused goes to the next ones
    audio = [
        _audio_seconds(speaker_corpus),
        _audio_seconds(speaker_corpus / "spkA"),
        _audio_seconds(speaker_corpus / "spkB"),
    ]
    left = 600.0
    for index, call in enumerate(fake.calls):
        assert call["seconds"] == pytest.approx(left * audio[index] / sum(audio[index:]), rel=1e-4)
        left -= spend * call["seconds"]
    spent = sum(spend * c["seconds"] for c in fake.calls)
    assert spent <= 600.0 + 1e-6 and (spend < 1 or spent == pytest.approx(600.0))  # all of it, never more

    default = "corpus" if kept["corpus"] else "original"
    expected = {
        "spkA": "speaker:spkA" if kept["spkA"] else default,
        "spkB": "speaker:spkB" if kept["spkB"] else default,
    }
    rows = _rows(out)
    assert len(rows) == 8 and all(not math.isnan(float(row["first_pass_score"])) for row in rows.values())
    for key, row in rows.items():
        assert row["model"] == expected.get(speaker_of(key), default), key
    own = [s for s in ("spkA", "spkB") if kept[s]]
    assert summary.speakers is not None and summary.speakers.kept == own
    assert (summary.speakers.small_speakers, summary.speakers.files_without_speaker) == (1, 1)
    text = summary.describe()
    assert f"per speaker: {len(own)} of 3 speaker(s) got their own adapted model ({', '.join(own)})" in text
    assert "1 below 12 s of audio in 3 files" in text and "1 file(s) without a speaker folder" in text

    # DIR holds the model of the files without their own, DIR/SPEAKER each speaker's own model
    assert load_model(saved).name == ("tiny-phones-adapted" if kept["corpus"] else "tiny-phones")
    for speaker in ("spkA", "spkB", "spkC"):
        assert (saved / speaker).exists() == kept.get(speaker, False)
        if kept.get(speaker, False):
            assert load_model(saved / speaker).name == f"tiny-phones-adapted-{speaker}"
    assert [p.name for p in saved.iterdir() if p.name.startswith(".")] == []  # no temporary folder left

    # the column does not lie: each output is what its named (saved) model aligns
    def words(model, key: str) -> list[tuple[str, float, float]]:
        wav = speaker_corpus / key
        alignment = aligner.with_model(model).align(str(wav), wav.with_suffix(".txt"))
        return [(w.text, round(w.start, 3), round(w.end, 3)) for w in alignment.words]

    models = {"corpus": load_model(saved), "original": aligner.model}
    models.update({f"speaker:{s}": load_model(saved / s) for s in own})
    differs = False
    for key, row in rows.items():
        written = json.loads((out / key).with_suffix(".json").read_text())
        assert written["model"] == models[row["model"]].name
        got = [(w["text"], round(w["start"], 3), round(w["end"], 3)) for w in written["words"]]
        assert got == words(models[row["model"]], key), key
        differs |= row["model"].startswith("speaker:") and got != words(aligner.model, key)
    assert differs  # the speakers' models align differently: the check above has teeth

    # resuming: the files done keep their row (and model); the one left is too few to adapt on
    (out / "spkA" / "spkA-01.json").unlink()
    again = align_corpus(speaker_corpus, out, aligner, formats=("json",), adapt=options, adapt_per_speaker=True)
    assert (again.aligned, again.skipped, len(fake.calls)) == (1, 7, 3)
    resumed = _rows(out)
    assert resumed["spkA/spkA-01.wav"]["model"] == "original"
    assert all(resumed[key]["model"] == row["model"] for key, row in rows.items() if key != "spkA/spkA-01.wav")


def test_per_speaker_below_the_threshold_is_plain_adapt(speaker_corpus, tmp_path, monkeypatch):
    runs = {}
    for per_speaker in (False, True):
        fake = _FakeAdapt({"corpus": True})
        monkeypatch.setattr(adapt_module, "adapt_model", fake)
        out = tmp_path / f"out-{per_speaker}"
        summary = align_corpus(
            speaker_corpus, out, _phone_aligner(), formats=("json",), adapt=True, adapt_per_speaker=per_speaker
        )
        outputs = {p.relative_to(out): p.read_bytes() for p in sorted(out.rglob("*")) if p.is_file()}
        runs[per_speaker] = (fake.calls, outputs, summary)
    (plain_calls, plain_outputs, plain), (calls, outputs, summary) = runs[False], runs[True]
    assert len(calls) == 1 and calls[0]["files"] == plain_calls[0]["files"] and calls[0]["seconds"] is None
    assert outputs == plain_outputs  # every output and confidence.tsv byte for byte (default: 60 s in 3 files)
    assert {row["model"] for row in _rows(tmp_path / "out-True").values()} == {"corpus"}
    assert summary.speakers is not None and summary.speakers.speakers == () and summary.speakers.small_speakers == 3
    assert "per speaker: 0 of 3 speaker(s) got their own adapted model; none had 60 s of audio in 3 files" in (
        summary.describe()
    )

    def lines(text: str) -> list[str]:  # all but the timing
        return [line.replace("out-False", "out-True") for line in text.splitlines() if not line.startswith("audio ")]

    expected = lines(plain.describe())
    after = next(k for k, line in enumerate(expected) if line.startswith("adapted on")) + 1
    assert lines(summary.describe()) == expected[:after] + [summary.speakers.describe()] + expected[after:]


def test_real_per_speaker_adaptation_holds_out_each_speakers_own_files(speaker_corpus, tmp_path):
    aligner = _phone_aligner()
    out = tmp_path / "out"
    options = AdaptOptions(minutes=10, max_steps=2, min_speaker_seconds=12.0)
    summary = align_corpus(speaker_corpus, out, aligner, formats=("json",), adapt=options, adapt_per_speaker=True)
    assert summary.aligned == 8 and summary.adaptation is not None and summary.adaptation.train_items == 6
    assert summary.speakers is not None and [s.speaker for s in summary.speakers.speakers] == ["spkA", "spkB"]
    for speaker in summary.speakers.speakers:
        assert speaker.result is not None and speaker.files == 3
        assert (speaker.result.train_items, speaker.result.held_out_items, speaker.result.steps) == (2, 1, 2)
    rows = _rows(out)
    assert all(not math.isnan(float(row["first_pass_score"])) for row in rows.values())
    default = "corpus" if summary.adaptation.improved else "original"
    for key, row in rows.items():
        speaker = speaker_of(key)
        own = speaker in summary.speakers.kept
        assert row["model"] == (f"speaker:{speaker}" if own else default)


def test_interrupted_adaptation_writes_the_reports(speaker_corpus, tmp_path, monkeypatch):
    def interrupt(*args, **kwargs):
        raise KeyboardInterrupt

    monkeypatch.setattr(adapt_module, "adapt_model", interrupt)
    out = tmp_path / "out"
    (out / "spkA").mkdir(parents=True)
    (out / "spkA" / "spkA-00.json").write_text("{}")  # done earlier: stays listed
    options = AdaptOptions(min_speaker_seconds=12.0)
    summary = align_corpus(
        speaker_corpus, out, _phone_aligner(), formats=("json",), adapt=options, adapt_per_speaker=True
    )
    assert summary.interrupted and (summary.aligned, summary.skipped) == (0, 1)
    assert sorted(p.name for p in out.rglob("*.json")) == ["spkA-00.json"]  # nothing half-written
    result = CliRunner().invoke(
        main, ["align-corpus", str(speaker_corpus), str(out), "-q", "-f", "json", "--adapt", "--adapt-per-speaker"]
    )
    assert result.exit_code == 130 and "run the same command again to resume" in result.output


def test_per_speaker_needs_adapt_and_no_ray(speaker_corpus, tmp_path):
    with pytest.raises(CorpusError, match="adapt_per_speaker needs adapt"):
        align_corpus(speaker_corpus, tmp_path / "out", _phone_aligner(), adapt_per_speaker=True)
    with pytest.raises(CorpusError, match="min_speaker_files >= 2"):
        align_corpus(
            speaker_corpus,
            tmp_path / "out",
            _phone_aligner(),
            adapt=AdaptOptions(per_speaker=True, min_speaker_files=1),
        )
    args = ["align-corpus", str(speaker_corpus), str(tmp_path / "out"), "-q"]
    for extra in (["--adapt-per-speaker"], ["--adapt-per-speaker", "--adapt-minutes", "1"]):
        result = CliRunner().invoke(main, args + extra)
        assert result.exit_code == 2
        assert (
            result.output.strip()
            == "error: --adapt-per-speaker needs --adapt (it adapts per speaker on top of --adapt)"
        )
    option = next(p for p in main.commands["align-corpus"].params if p.name == "adapt_per_speaker")
    assert f"{MIN_SPEAKER_SECONDS:g} s of audio in {MIN_SPEAKER_FILES} files" in (option.help or "")  # help is true
    result = CliRunner().invoke(main, args + ["--adapt", "--adapt-per-speaker", "--ray", "auto"])
    assert result.exit_code == 2 and "--adapt does not run on a Ray cluster" in result.output
    assert not (tmp_path / "out").exists()


def test_cli_adapt_per_speaker_saves_loadable_models(speech_corpus, tmp_path, monkeypatch):
    from aligner.models.loading import save_model

    # two speakers with a minute of audio each (copies of the utterances), one with less, one file at the top
    places = {"spkA": list(range(8)) + [2, 4, 7], "spkB": list(range(8)) + [0, 4, 7], "spkC": [6, 7], "": [2]}
    corpus = _regroup(speech_corpus, tmp_path / "corpus", places)
    fake = _FakeAdapt({"corpus": True, "spkA": True, "spkB": True})
    monkeypatch.setattr(adapt_module, "adapt_model", fake)
    save_model(_phone_aligner().model, tmp_path / "tiny")
    out, saved = tmp_path / "out", tmp_path / "adapted"
    args = ["align-corpus", str(corpus), str(out), "-q", "-f", "json", "--model", str(tmp_path / "tiny")]
    args += ["--adapt", "--adapt-per-speaker", "--adapt-minutes", "5", "--save-adapted", str(saved)]
    result = CliRunner().invoke(main, args)
    assert result.exit_code == 0, result.output
    assert "per speaker: 2 of 3 speaker(s) got their own adapted model (spkA, spkB)" in result.output
    assert [c["name"] for c in fake.calls] == ["corpus", "spkA", "spkB"]
    assert fake.calls[0]["seconds"] < 0.6 * 300 and all(c["seconds"] <= 300 for c in fake.calls)  # shares of 5 min
    assert {row["model"] for key, row in _rows(out).items() if key.startswith("spkA/")} == {"speaker:spkA"}
    assert {row["model"] for key, row in _rows(out).items() if key.startswith("spkC/")} == {"corpus"}
    assert not (saved / "spkC").exists()
    for folder, name in ((saved, "tiny-phones-adapted"), (saved / "spkA", "tiny-phones-adapted-spkA")):
        assert load_model(folder).name == name  # each folder is a model for --model
        again = tmp_path / f"again-{folder.name}"
        result = CliRunner().invoke(
            main, ["align-corpus", str(corpus / "spkC"), str(again), "-q", "--model", str(folder)]
        )
        assert result.exit_code == 0, result.output
        assert sorted(p.name for p in again.glob("*.TextGrid")) == ["spkC-00.TextGrid", "spkC-01.TextGrid"]
