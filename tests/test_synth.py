"""The espeak-ng binding and the synthetic corpus generator (aligner.training.synth)."""

from __future__ import annotations

import importlib.util
import json
from pathlib import Path

import numpy as np
import pytest
import soundfile
import textgrid

from aligner.errors import AlignerError
from aligner.training.synth.espeak import espeak_available

pytestmark = pytest.mark.skipif(
    not espeak_available(), reason="libespeak-ng.so.1 is not installed (apt-get install espeak-ng libespeak-ng1)"
)

from aligner.training.synth import corpus as corpus_module  # noqa: E402
from aligner.training.synth.corpus import (  # noqa: E402
    BASE_VOICES,
    FEMALE_VARIANTS,
    MALE_VARIANTS,
    CorpusError,
    make_corpus,
    plan_corpus,
    render_speech,
    sentence_split,
    speech_from_synthesis,
    split_voices,
)
from aligner.training.synth.espeak import SynthesisError, synthesize, word_timings  # noqa: E402

SCRIPT = Path(__file__).resolve().parents[1] / "scripts" / "make_synthetic_corpus.py"
SENTENCE = "Wait, it cost $5 in 1999 and the rest of it was free."


# --------------------------------------------------------------- fixtures


@pytest.fixture(scope="module")
def corpora(tmp_path_factory) -> tuple[Path, Path]:
    """The same 4-utterance corpus made twice: with 1 and with 2 jobs, in
    batches of 2, so that one worker renders both batches in the first and
    each worker one batch in the second."""
    root = tmp_path_factory.mktemp("synth")
    with pytest.MonkeyPatch.context() as patch:
        patch.setattr(corpus_module, "_BATCH", 2)
        one = make_corpus(root / "one", num_utterances=4, seed=11, jobs=1)
        two = make_corpus(root / "two", num_utterances=4, seed=11, jobs=2)
    assert len(one.entries) == len(two.entries) == 4
    return one.out_dir, two.out_dir


def _entries(folder: Path) -> list[dict]:
    return [json.loads(line) for line in (folder / "manifest.jsonl").read_text().splitlines()]


def _tiers(path: Path) -> tuple[textgrid.TextGrid, list, list]:
    grid = textgrid.TextGrid()
    grid.read(str(path), round_digits=9)
    return grid, list(grid.getFirst("words")), list(grid.getFirst("phones"))


def _frame_db(audio: np.ndarray, rate: int, start: float, end: float, frame: float = 0.01) -> list[float]:
    values = []
    for t in np.arange(start, end - frame + 1e-9, frame):
        chunk = audio[int(t * rate) : int((t + frame) * rate)].astype(np.float64)
        if chunk.size:
            values.append(10 * np.log10(np.mean(chunk**2) + 1e-12))
    return values


# ------------------------------------------------------------ the binding


def test_synthesize_returns_audio_and_events():
    synthesis = synthesize(SENTENCE, "en-us", rate=170)
    assert synthesis.sample_rate == 22050
    assert synthesis.samples.dtype == np.int16 and synthesis.samples.ndim == 1
    kinds = {event.kind for event in synthesis.events}
    assert {"word", "phoneme", "end"} <= kinds
    samples = [e.sample for e in synthesis.events if e.kind in ("word", "phoneme")]
    assert samples == sorted(samples) and samples[-1] <= len(synthesis.samples)
    assert any(e.is_pause for e in synthesis.events)  # the comma and full stop


def test_word_timings_give_one_interval_per_written_word():
    synthesis = synthesize(SENTENCE, "en-us", rate=170)
    words = word_timings(synthesis)
    assert [w.text for w in words] == SENTENCE.split()
    by_text = {w.text: w for w in words}
    # "in the" / "of it" would be one espeak word without the zero-width breaks
    assert by_text["the"].phones and by_text["of"].phones
    # written words spoken as several words stay one interval
    assert by_text["$5"].spoken >= 2 and by_text["1999"].spoken >= 2
    for before, after in zip(words, words[1:]):
        assert before.start < before.end <= after.start
    for word in words:
        assert word.phones[0].start == word.start and word.phones[-1].end == word.end
        assert all(a.end <= b.start for a, b in zip(word.phones, word.phones[1:]))
        assert not any(p.label.startswith("_") for p in word.phones)


def test_events_line_up_with_the_audio_to_the_sample():
    """espeak's silence is digital zero: no sound inside its pause intervals,
    sound starting within 1 ms of the phone after a pause, and words that
    start and end on sound (within 1 ms)."""
    synthesis = synthesize("Yes, we can. No, we will not. Maybe, later.", "en-gb-x-rp+f1")
    silent = synthesis.samples == 0
    phonemes = [e for e in synthesis.events if e.kind == "phoneme"]
    pauses = onsets = 0
    for event, following in zip(phonemes, phonemes[1:]):
        if event.is_pause and following.sample > event.sample:
            assert silent[event.sample : following.sample].all()
            pauses += 1
        if event.is_pause and not following.is_pause:
            assert silent[following.sample - 1]
            loud = np.flatnonzero(~silent[following.sample :])
            assert loud[0] <= 22  # 1 ms at 22050 Hz
            onsets += 1
    assert pauses >= 4 and onsets >= 4
    for word in word_timings(synthesis):  # sound within 1 ms of each end (a waveform may cross zero on a sample)
        assert not silent[word.start : word.start + 22].all() and not silent[word.end - 22 : word.end].all()


def test_synthesize_rejects_bad_input():
    with pytest.raises(SynthesisError, match="no voice 'xx-nowhere'"):
        synthesize("hello", "xx-nowhere")
    with pytest.raises(SynthesisError, match=r"rate must be an integer in \[80, 450\]"):
        synthesize("hello", rate=20)
    with pytest.raises(SynthesisError, match="non-empty"):
        synthesize("   ")
    assert issubclass(SynthesisError, AlignerError)


def test_word_without_sound_is_an_error():
    # a lone dash is whitespace-separated but never spoken: its timing is unknown
    with pytest.raises(SynthesisError, match=r"espeak spoke word \d \('(-|no)'\) .* timing is unknown"):
        word_timings(synthesize("yes - no", "en-us"))


# ------------------------------------------------------------- the corpus


def test_corpus_files_and_durations(corpora):
    folder, _ = corpora
    entries = _entries(folder)
    assert [e["utterance"] for e in entries] == [f"train-{k:06d}" for k in range(4)]
    for entry in entries:
        wav = folder / entry["wav"]
        assert wav.parent.name == entry["speaker"]
        for suffix in (".wav", ".txt", ".TextGrid"):
            assert wav.with_suffix(suffix).is_file()
        info = soundfile.info(str(wav))
        assert (info.samplerate, info.channels, info.subtype) == (16000, 1, "PCM_16")
        assert info.frames / 16000 == pytest.approx(entry["duration"], abs=1e-6)
        grid, words, phones = _tiers(wav.with_suffix(".TextGrid"))
        assert grid.minTime == 0 and grid.maxTime == pytest.approx(entry["duration"], abs=1e-6)
        assert words[0].minTime == 0 and words[-1].maxTime == pytest.approx(entry["duration"], abs=1e-6)
        assert entry["voice"] in BASE_VOICES
        assert entry["variant"] in FEMALE_VARIANTS + MALE_VARIANTS
        assert {"text", "rate", "pitch", "augmentations", "source"} <= set(entry)


def test_textgrid_words_are_the_transcript_words(corpora):
    folder, _ = corpora
    for entry in _entries(folder):
        wav = folder / entry["wav"]
        text = wav.with_suffix(".txt").read_text(encoding="utf-8")
        assert text.strip() == entry["text"]
        _, words, phones = _tiers(wav.with_suffix(".TextGrid"))
        assert [w.mark for w in words if w.mark] == text.split()
        for tier in (words, phones):
            assert all(0 <= i.minTime < i.maxTime <= entry["duration"] + 1e-9 for i in tier)
            assert all(a.maxTime == pytest.approx(b.minTime) for a, b in zip(tier, tier[1:]))
        for word in (w for w in words if w.mark):  # every word holds phones, none spill out
            inside = [p for p in phones if p.mark and word.minTime - 1e-6 <= p.minTime < word.maxTime]
            assert inside and inside[-1].maxTime <= word.maxTime + 1e-6


def test_same_seed_gives_identical_bytes_whatever_the_jobs(corpora):
    one, two = corpora
    files = sorted(p.relative_to(one) for p in one.rglob("*") if p.is_file())
    assert len(files) == 4 * 3 + 1
    for relative in files:
        assert (one / relative).read_bytes() == (two / relative).read_bytes(), relative


def test_words_are_louder_than_silences(corpora):
    folder, _ = corpora
    for entry in _entries(folder):
        wav = folder / entry["wav"]
        audio, rate = soundfile.read(str(wav))
        _, words, _ = _tiers(wav.with_suffix(".TextGrid"))
        inside = [v for w in words if w.mark for v in _frame_db(audio, rate, w.minTime, w.maxTime)]
        outside = [v for w in words if not w.mark for v in _frame_db(audio, rate, w.minTime, w.maxTime)]
        assert inside and outside
        assert np.mean(inside) > np.mean(outside) + 3.0, entry["utterance"]


def test_heldout_voices_and_sentences_are_disjoint_from_train(tmp_path):
    voices = split_voices(0)
    assert voices["train"] and voices["heldout"]
    assert not set(voices["train"]) & set(voices["heldout"])
    parts = {
        split: ({v.partition("+")[0] for v in voices[split]}, {v.partition("+")[2] for v in voices[split]})
        for split in voices
    }
    assert not parts["train"][0] & parts["heldout"][0]  # base voices
    assert not parts["train"][1] & parts["heldout"][1]  # variants
    assert set(FEMALE_VARIANTS) & parts["heldout"][1]  # a female voice is held out

    train = plan_corpus(300, seed=1, split="train")
    heldout = plan_corpus(300, seed=2, split="heldout")
    train_texts = {t for p in train for t in p.texts}
    heldout_texts = {t for p in heldout for t in p.texts}
    assert not train_texts & heldout_texts
    assert {sentence_split(t) for t in train_texts} == {"train"}
    assert {sentence_split(t) for t in heldout_texts} == {"heldout"}
    assert {p.voice for p in heldout} <= set(voices["heldout"])
    babble = [(text, voice) for p in heldout for text, voice in p.babble]
    assert babble  # some utterances get babble noise, made of heldout sentences and voices only
    assert {sentence_split(text) for text, _ in babble} == {"heldout"}
    assert {voice for _, voice in babble} <= set(voices["heldout"])

    summary = make_corpus(tmp_path / "heldout", num_utterances=1, seed=3, split="heldout")
    entry = summary.entries[0]
    assert f"{entry['voice']}+{entry['variant']}".rstrip("+") in voices["heldout"]
    assert entry["split"] == "heldout" and sentence_split(entry["text"]) == "heldout"


def test_plans_are_deterministic_and_varied():
    first, again = plan_corpus(40, seed=7), plan_corpus(40, seed=7)
    assert first == again
    assert plan_corpus(40, seed=8) != first
    assert len({p.texts[0] for p in first}) == 40
    expected = {"template", "fortune"} if corpus_module.fortune_sentences() else {"template"}
    assert {p.sources[0] for p in first} >= expected
    assert len({p.voice for p in first}) > 20
    assert any(p.speed != 1.0 for p in first) and any(p.noise for p in first)


def test_template_sentences_hold_numbers_money_and_ordinals():
    texts = [p.texts[1] for p in plan_corpus(60, seed=5)]  # fallbacks are templates
    joined = " ".join(texts)
    assert "$" in joined and "%" in joined
    assert any(w[:-2].isdigit() and w[-2:] in ("st", "nd", "rd", "th") for t in texts for w in t.split())
    assert all(3 <= len(t.split()) <= 25 for t in texts)


def test_speed_perturbation_scales_the_timings():
    synthesis = synthesize(SENTENCE, "en-us", rate=160)
    normal = speech_from_synthesis(synthesis, lead=0.2, speed=1.0)
    fast = speech_from_synthesis(synthesis, lead=0.2, speed=1.1)
    assert fast.duration == pytest.approx(normal.duration / 1.1, abs=1e-3)
    for a, b in zip(normal.alignment.words, fast.alignment.words):
        assert b.start == pytest.approx(a.start / 1.1, abs=0.01)
        assert b.end == pytest.approx(a.end / 1.1, abs=0.01)
    # the audio moved with them: sound starts where the first word does, and
    # the word after the comma pause starts where sound comes back
    for speech in (normal, fast):
        loud = np.flatnonzero(np.abs(speech.audio) > 1e-3) / speech.sample_rate
        words = speech.alignment.words
        assert loud[0] == pytest.approx(words[0].start, abs=0.01)
        after_pause = loud[loud > words[0].end + 0.005][0]
        assert after_pause == pytest.approx(words[1].start, abs=0.01)


def test_augmentations_keep_length_and_timing():
    speech = render_speech("one two three", "en-us", lead=0.1, trail=0.1)
    rng = np.random.default_rng(0)
    audio = speech.audio
    wet = corpus_module.reverberate(audio, rng, rt60=0.4, drr_db=3.0)
    band = corpus_module.telephone(audio)
    noisy = corpus_module.add_noise(audio, corpus_module.pink_noise(len(audio), rng), snr_db=10.0)
    for out in (wet, band, noisy):
        assert out.shape == audio.shape and out.dtype == np.float32 and np.isfinite(out).all()
    noise_power = np.mean((noisy - audio) ** 2)
    assert 10 * np.log10(np.mean(audio**2) / noise_power) == pytest.approx(10.0, abs=0.01)
    pink = corpus_module.pink_noise(48000, rng)
    power = np.abs(np.fft.rfft(pink)) ** 2
    freqs = np.fft.rfftfreq(len(pink), 1 / 16000)
    low, high = power[(freqs > 100) & (freqs < 200)].mean(), power[(freqs > 1000) & (freqs < 2000)].mean()
    assert 5 < low / high < 20  # 1/f: ten times the power per Hz a decade lower
    # reverberation keeps the direct sound in place: onsets do not move
    onset = np.flatnonzero(np.abs(audio) > 1e-3)[0]
    assert abs(int(np.flatnonzero(np.abs(wet) > 1e-3)[0]) - int(onset)) <= 16
    # the telephone band removes what is above 3.4 kHz
    spectrum = np.abs(np.fft.rfft(band)) ** 2
    freqs = np.fft.rfftfreq(len(band), 1 / 16000)
    assert spectrum[freqs > 4000].sum() < 1e-3 * spectrum.sum()


def test_make_corpus_rejects_bad_arguments(tmp_path):
    with pytest.raises(CorpusError, match="split must be one of train, heldout"):
        make_corpus(tmp_path / "a", num_utterances=1, seed=0, split="test")
    with pytest.raises(CorpusError, match="num_utterances must be an integer >= 1"):
        make_corpus(tmp_path / "a", num_utterances=0, seed=0)
    with pytest.raises(CorpusError, match="jobs must be an integer >= 1"):
        make_corpus(tmp_path / "a", num_utterances=1, seed=0, jobs=0)
    with pytest.raises(CorpusError, match="voice 'en us' is not of the form"):
        make_corpus(tmp_path / "a", num_utterances=1, seed=0, voices=["en us"])
    with pytest.raises(SynthesisError, match="no voice 'xx-nowhere'"):
        make_corpus(tmp_path / "a", num_utterances=1, seed=0, voices=["xx-nowhere"])
    (tmp_path / "b").mkdir()
    (tmp_path / "b" / "manifest.jsonl").write_text("")
    with pytest.raises(CorpusError, match="already holds a corpus"):
        make_corpus(tmp_path / "b", num_utterances=1, seed=0)


def _load_script():
    spec = importlib.util.spec_from_file_location("make_synthetic_corpus", SCRIPT)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_script_writes_a_corpus_and_reports_hours(tmp_path, capsys):
    script = _load_script()
    out = tmp_path / "cli"
    code = script.main([str(out), "--utterances", "2", "--seed", "4", "--jobs", "2", "--quiet", "--voice", "en-us+f1"])
    assert code == 0
    printed = capsys.readouterr().out
    assert "wrote 2 utterances" in printed and "hours of audio" in printed
    entries = _entries(out)
    assert [(e["voice"], e["variant"]) for e in entries] == [("en-us", "f1")] * 2
    assert script.main([str(out), "--utterances", "1", "--quiet"]) == 2
    assert "already holds a corpus" in capsys.readouterr().err
