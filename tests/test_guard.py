"""Speech activity, the quiet prior of the packaged model, and the
plausibility check (:mod:`aligner.activity`, :mod:`aligner.guard`)."""

from __future__ import annotations

import csv
import json
import shutil
from dataclasses import replace
from pathlib import Path

import numpy as np
import pytest
import soundfile
import torch
from click.testing import CliRunner
from hypothesis import given, settings
from hypothesis import strategies as st

import aligner.activity as activity
from aligner import Aligner, load_model
from aligner.activity import (
    FAR_FROM_SPEECH_DB,
    frame_levels,
    local_speech_levels,
    quiet_frames,
    quiet_masks,
    recording_speech_level,
    speech_level,
)
from aligner.cli import main
from aligner.corpus.align import CONFIDENCE_FILE
from aligner.errors import AlignerError
from aligner.guard import (
    FALLBACK_MAX_PHONE_SECONDS,
    LOW_MEAN_SCORE,
    MAX_PHONE_SECONDS,
    MAX_QUIET_SECONDS,
    MAX_SECONDS_PER_TOKEN,
    MAX_WORD_BASE,
    shown,
    suspect_reasons,
    suspect_reasons_batch,
)
from aligner.records import CharSpan, WordSpan
from aligner.writers import to_json

EXAMPLES = Path(__file__).resolve().parents[1] / "examples"


def _word(text: str, start: float, end: float, score: float = 0.8, phones: int = 3) -> WordSpan:
    step = (end - start) / phones
    chars = tuple(CharSpan("AH", start + k * step, start + (k + 1) * step, score) for k in range(phones))
    return WordSpan(text, "AH " * phones, start, end, score, chars)


# --------------------------------------------------------------------------- activity


@pytest.fixture(params=["numpy", "compiled"])
def levels_path(request, monkeypatch):
    """Run a test with frame_levels' numpy path (numba not in the process)
    and with its compiled twin (aligner._activity_kernels)."""
    compiled = request.param == "compiled"
    monkeypatch.setattr(activity, "_numba_loaded", lambda: compiled)
    return request.param


def test_frame_levels_are_centred_on_frames_and_blocked_exactly(monkeypatch, levels_path):
    wave = torch.zeros(16000)
    wave[4000:8000] = 0.1 * torch.randn(4000, generator=torch.Generator().manual_seed(0))
    levels = frame_levels(wave, 320, 49)
    quiet = quiet_frames(levels, 40.0)
    # frame t is centred on sample 320 t + 160; a 480-sample window touches the noise for frames 12..25
    assert quiet.tolist() == [True] * 12 + [False] * 14 + [True] * 23
    assert levels[0] == pytest.approx(-120.0) and levels[18] == pytest.approx(-20.0, abs=1.0)
    monkeypatch.setattr(activity, "_BLOCK", 7)
    assert torch.equal(frame_levels(wave, 320, 49), levels)
    assert frame_levels(wave, 320, 0).numel() == 0 and quiet_frames(torch.zeros(0), 40).numel() == 0


def _levels_by_definition(wave: np.ndarray, frame_samples: int, frames: int, window: int) -> np.ndarray:
    """Each frame's window summed sample by sample (zeros outside the audio)."""
    out = []
    for t in range(frames):
        start = t * frame_samples + frame_samples // 2 - window // 2
        samples = [float(wave[i]) if 0 <= i < wave.size else 0.0 for i in range(start, start + window)]
        out.append(10 * np.log10(sum(v * v for v in samples) / window + 1e-12))
    return np.asarray(out)


@pytest.mark.parametrize(
    ("frame_samples", "window", "frames"),
    [(320, 480, 30), (320, 400, 31), (160, 400, 40), (321, 480, 25), (320, 320, 30), (100, 37, 60)],
)
def test_frame_levels_match_their_definition_for_any_geometry(monkeypatch, levels_path, frame_samples, window, frames):
    rng = np.random.default_rng(frame_samples + window)
    wave = (
        rng.normal(0, 0.2, frame_samples * frames - 500)
        * np.repeat(rng.uniform(0, 1, 40), 1000)[: frame_samples * frames - 500]
    )
    wave[1000:2500] = 0.0  # digital silence inside
    expected = _levels_by_definition(wave, frame_samples, frames, window)
    got = frame_levels(torch.from_numpy(wave.astype(np.float32)), frame_samples, frames, window).numpy()
    # the float32 audio is squared in float64: the same sums up to rounding
    assert np.allclose(got, _levels_by_definition(wave.astype(np.float32), frame_samples, frames, window), atol=1e-4)
    assert np.allclose(got, expected, atol=1e-3)
    monkeypatch.setattr(activity, "_BLOCK", 3)
    assert torch.equal(
        frame_levels(torch.from_numpy(wave.astype(np.float32)), frame_samples, frames, window), torch.from_numpy(got)
    )


def test_the_compiled_levels_are_used_once_numba_is_loaded_and_agree_with_numpy(monkeypatch):
    import sys

    wave = torch.from_numpy((np.random.default_rng(5).normal(0, 0.1, 48_000) ** 3).astype(np.float32))
    monkeypatch.setattr(activity, "_numba_loaded", lambda: False)
    monkeypatch.delitem(sys.modules, "aligner._activity_kernels", raising=False)
    by_numpy = frame_levels(wave, 320, 150)
    assert "aligner._activity_kernels" not in sys.modules
    monkeypatch.setattr(activity, "_numba_loaded", lambda: True)
    compiled = frame_levels(wave[::1], 320, 150)
    assert "aligner._activity_kernels" in sys.modules
    assert compiled.dtype == by_numpy.dtype == torch.float32
    assert torch.allclose(compiled, by_numpy, atol=1e-4, rtol=0)  # reassociated float32 sums: not bit for bit


def test_the_speech_level_is_the_95th_percentile():
    levels = torch.arange(101, dtype=torch.float32) - 100.0  # -100 .. 0 dB
    assert activity.speech_level(levels) == pytest.approx(-5.0)
    assert activity.speech_level(levels[:2]) == pytest.approx(-99.05)  # between ranks, as numpy.percentile
    assert quiet_frames(levels, 40.0).sum() == 55  # under -45 dB
    assert quiet_frames(levels, 60.0).sum() == 35  # under -65 dB


@pytest.mark.parametrize("size", [1, 2, 3, 20, 21, 750, 1001])
def test_the_speech_level_interpolates_as_numpy_percentile(size):
    rng = np.random.default_rng(size)
    levels = torch.from_numpy(np.round(rng.normal(-40, 20, size)).astype(np.float32))  # ties too
    expected = np.percentile(levels.numpy().astype(np.float64), activity.SPEECH_PERCENTILE)
    assert activity.speech_level(levels) == pytest.approx(expected, rel=1e-12, abs=1e-12)


def test_a_speech_level_given_is_used_as_is():
    levels = torch.arange(101, dtype=torch.float32) - 100.0  # -100 .. 0 dB, speech level -5 dB
    assert torch.equal(quiet_frames(levels, 40.0, activity.speech_level(levels)), quiet_frames(levels, 40.0))
    assert quiet_frames(levels, 40.0, -50.0).sum() == 10  # under -90 dB


def test_quiet_is_relative_to_the_recordings_own_speech_level():
    rng = np.random.default_rng(1)
    loud = torch.from_numpy(np.concatenate([rng.normal(0, 0.3, 8000), rng.normal(0, 0.001, 8000)]))
    soft = loud * 1e-3  # the same recording 60 dB down: the same frames are quiet
    assert torch.equal(quiet_frames(frame_levels(loud, 320, 49), 40), quiet_frames(frame_levels(soft, 320, 49), 40))


# --------------------------------------------------------------------------- reasons


def test_a_plausible_alignment_has_no_reasons():
    words = [_word("one", 0.1, 0.4), _word("two", 0.45, 0.8)]
    assert suspect_reasons(words, 0.02, torch.zeros(50, dtype=torch.bool)) == ()


def test_low_mean_score_long_word_and_word_on_silence_are_named():
    words = [_word("she", 0.0, 1.6, score=0.05, phones=2), _word("sells", 1.6, 1.8, score=0.1, phones=4)]
    quiet = torch.zeros(100, dtype=torch.bool)
    quiet[10:40] = True  # 0.6 s of quiet audio inside "she"
    reasons = suspect_reasons(words, 0.02, quiet)
    assert len(reasons) == 3
    assert reasons[0].startswith("low score: mean word score 0.08 < 0.1")
    assert reasons[1].startswith("long word: 'she' lasts 1.60 s (0.00-1.60 s) for 2 tokens")
    assert reasons[2].startswith("word on silence: 'she' (0.00-1.60 s) has 0.60 s of quiet audio")
    unplaced = replace(words[0], aligned=False, chars=())
    assert suspect_reasons([unplaced, words[1]], 0.02) == ()  # not placed: reported elsewhere


def test_numbers_in_reasons_are_rounded_so_the_comparison_reads_true():
    words = [_word("one", 0.1, 0.4, score=0.098), _word("two", 0.45, 0.8, score=0.098)]
    assert suspect_reasons(words, 0.02)[0] == "low score: mean word score 0.098 < 0.1"
    assert shown(0.05, 0.1) == "0.05" and shown(0.0999, 0.1) == "0.0999" and shown(0.6004, 0.6) == "0.6004"
    assert shown(0.1, 0.1) == "0.10" and shown(1.6, 0.9) == "1.60"


def test_quiet_audio_is_counted_between_a_words_rounded_bounds():
    quiet = torch.zeros(100, dtype=torch.bool)
    quiet[:30] = quiet[70:] = True  # 0.6 s at each end
    words = [
        _word("before", -1.0, 0.46, phones=4),  # frames 0-23: its start is clipped to the first frame
        _word("after", 1.52, 3.0, phones=4),  # frames 76-100: its end is clipped to the last
        _word("backwards", 1.9, 0.1, phones=4),  # ends before it starts: no frames
        _word("inside", 0.3, 1.6, phones=5),  # frames 15-80; over 0.9 s, but not long for 5 tokens
    ]
    assert suspect_reasons(words, 0.02, quiet) == (
        "word on silence: 'before' (-1.00-0.46 s) has 0.46 s of quiet audio",
        "word on silence: 'after' (1.52-3.00 s) has 0.48 s of quiet audio",
        "word on silence: 'inside' (0.30-1.60 s) has 0.50 s of quiet audio",
    )


def test_a_long_phone_is_named_for_phone_models_only():
    phones = (CharSpan("N", 0.1, 0.2, 0.5), CharSpan("AA", 0.2, 0.3, 0.5), CharSpan("T", 0.3, 1.3, 0.5))
    words = [replace(_word("not", 0.1, 1.3), chars=phones), _word("now", 1.3, 1.6)]
    assert suspect_reasons(words, 0.02) == ()  # a CTC model's spans say nothing of durations
    reasons = suspect_reasons(words, 0.02, phone_durations=True)
    assert reasons == ("long phone: T of 'not' lasts 1.00 s (0.30-1.30 s)",)
    shorter = replace(words[0], chars=(*phones[:2], CharSpan("T", 0.3, 0.85, 0.5)))
    assert suspect_reasons([shorter, words[1]], 0.02, phone_durations=True) == ()  # 0.55 s: plausible


def _reference_reasons(words, frame_seconds, quiet, phone_durations):
    """suspect_reasons by its definition, word by word in plain Python."""
    placed = [w for w in words if w.aligned]
    if not placed:
        return ()
    reasons = []
    mean = sum(w.score for w in placed) / len(placed)
    if not mean >= LOW_MEAN_SCORE:
        reasons.append(f"low score: mean word score {shown(mean, LOW_MEAN_SCORE)} < {LOW_MEAN_SCORE}")
    for w in placed:
        tokens = max(1, len(w.chars))
        limit = MAX_WORD_BASE + MAX_SECONDS_PER_TOKEN * tokens
        if w.end - w.start > limit:
            span = f"{shown(w.end - w.start, limit)} s ({w.start:.2f}-{w.end:.2f} s)"
            reasons.append(f"long word: {w.text!r} lasts {span} for {tokens} tokens")
    if phone_durations:
        for w in placed:
            for p in w.chars:
                if p.end - p.start > MAX_PHONE_SECONDS:
                    span = f"{shown(p.end - p.start, MAX_PHONE_SECONDS)} s ({p.start:.2f}-{p.end:.2f} s)"
                    reasons.append(f"long phone: {p.label} of {w.text!r} lasts {span}")
    if quiet is not None:
        flags = quiet.tolist()
        for w in placed:
            first = min(max(round(w.start / frame_seconds), 0), len(flags))
            last = min(max(round(w.end / frame_seconds), 0), len(flags))
            seconds = sum(flags[first:last]) * frame_seconds
            if seconds > MAX_QUIET_SECONDS:
                span = f"({w.start:.2f}-{w.end:.2f} s)"
                reasons.append(
                    f"word on silence: {w.text!r} {span} has {shown(seconds, MAX_QUIET_SECONDS)} s of quiet audio"
                )
    return tuple(reasons)


@st.composite
def _recordings(draw):
    """A recording's words (phones tiling each word, as the aligner makes
    them; some unplaced, some backwards without phones, some outside the
    audio) and its quiet frames (or none)."""
    frames = draw(st.integers(0, 120))
    words, t = [], draw(st.floats(-0.5, 0.5))
    for k in range(draw(st.integers(0, 6))):
        cuts = sorted(draw(st.lists(st.floats(0.0, 2.5), min_size=1, max_size=4)))
        score = draw(st.sampled_from([0.0, 0.05, 0.09, 0.5, 1.0]))
        edges = [t + c for c in [0.0, *cuts]]
        phones = tuple(CharSpan("AH", a, b, score) for a, b in zip(edges, edges[1:]))
        word = WordSpan(f"w{k}", "AH", edges[0], edges[-1], score, phones)
        if draw(st.booleans()) and draw(st.booleans()):
            word = replace(word, start=word.end, end=word.start, chars=())  # backwards
        words.append(replace(word, aligned=False, chars=()) if draw(st.integers(0, 5)) == 0 else word)
        t = edges[-1] + draw(st.floats(0.0, 0.3))
    flags = draw(st.lists(st.booleans(), min_size=frames, max_size=frames))
    quiet = None if draw(st.integers(0, 4)) == 0 else torch.tensor(flags, dtype=torch.bool)
    return words, quiet


@settings(max_examples=300, deadline=None)
@given(st.lists(_recordings(), min_size=1, max_size=5), st.booleans())
def test_the_batched_guard_gives_each_recording_its_reasons_by_definition(recordings, phones):
    quiet = [q if q is not None else torch.zeros(0, dtype=torch.bool) for _, q in recordings]
    batched = suspect_reasons_batch([w for w, _ in recordings], 0.02, quiet, phone_durations=phones)
    for (words, q), mask, found in zip(recordings, quiet, batched):
        expected = _reference_reasons(words, 0.02, mask if mask.numel() else None, phones)
        assert found == expected
        assert suspect_reasons(words, 0.02, q, phone_durations=phones) == _reference_reasons(words, 0.02, q, phones)
    assert suspect_reasons_batch([w for w, _ in recordings], 0.02, None) == [
        _reference_reasons(w, 0.02, None, False) for w, _ in recordings
    ]
    assert suspect_reasons_batch([], 0.02) == []
    with pytest.raises(AlignerError, match="1 quiet masks for 2 alignments"):
        suspect_reasons_batch([[], []], 0.02, [torch.zeros(3, dtype=torch.bool)])


def test_a_recording_no_longer_than_the_span_has_its_own_speech_level_everywhere():
    levels = torch.linspace(-90, 0, 300)
    local = local_speech_levels(levels, span=300)
    assert local.shape == (300,) and local.dtype == torch.float64
    assert torch.equal(local, torch.full((300,), speech_level(levels), dtype=torch.float64))
    assert local_speech_levels(torch.zeros(0), span=10).numel() == 0
    # as the pipeline keeps it: one number up to the span, one per frame beyond
    assert recording_speech_level(levels, 300) == speech_level(levels)
    assert recording_speech_level(levels[:0], 300) == 0.0
    # beyond: the local levels, but the loudest passage's where the local one is far under it (no speech near)
    local = local_speech_levels(levels, 100)
    loudest = float(local.max())
    expected = torch.where(local < loudest - FAR_FROM_SPEECH_DB, torch.tensor(loudest, dtype=local.dtype), local)
    assert bool((local < loudest - FAR_FROM_SPEECH_DB).any()) and not bool((expected < loudest - 45).any())
    assert torch.equal(recording_speech_level(levels, 100), expected)


def test_a_soft_passage_of_a_long_recording_keeps_its_own_speech_level():
    gen = torch.Generator().manual_seed(0)
    loud = -20 + 3 * torch.randn(3000, generator=gen)  # 60 s of speech at about -20 dB
    soft = -60 + 3 * torch.randn(3000, generator=gen)  # then 60 s at about -60 dB (a whisper, a distant voice)
    levels = torch.cat([loud, soft])
    local = local_speech_levels(levels, span=1500)
    assert abs(float(local[:1500].mean()) - speech_level(loud)) < 0.5
    assert abs(float(local[-1500:].mean()) - speech_level(soft)) < 0.5
    assert (local[1:] - local[:-1]).abs().max() < 40 / 250  # interpolated: no jumps
    # against the recording's one (loud) speech level the soft passage is all quiet; against its own, none of it
    (global_quiet,) = quiet_masks([levels], [speech_level(levels)], 30.0)
    (local_quiet,) = quiet_masks([levels], [local], 30.0)
    assert global_quiet[-1500:].all() and not local_quiet[-1500:].any() and not local_quiet[:1500].any()
    pause = levels.clone()
    pause[1000:1100] = -100.0  # a 2 s pause inside the loud passage is quiet either way
    assert quiet_masks([pause], [local_speech_levels(pause, 1500)], 30.0)[0][1000:1100].all()


def test_quiet_masks_of_a_batch_are_each_recordings_quiet_frames():
    gen = torch.Generator().manual_seed(3)
    levels = [torch.rand(n, generator=gen) * -90 for n in (0, 1, 57, 300)]
    speech = [speech_level(level) if level.numel() else 0.0 for level in levels]
    masks = quiet_masks(levels, speech, 40.0)
    assert [mask.shape for mask in masks] == [level.shape for level in levels]
    for level, level_db, mask in zip(levels, speech, masks):
        expected = quiet_frames(level, 40.0, level_db) if level.numel() else torch.zeros(0, dtype=torch.bool)
        assert torch.equal(mask, expected)
    assert quiet_masks([], [], 40.0) == []


# --------------------------------------------------------------------------- packaged model


@pytest.fixture(scope="module")
def packaged():
    return Aligner(None, device="cpu")


@pytest.fixture(scope="module")
def example():
    wave, rate = soundfile.read(EXAMPLES / "example.wav", dtype="float32")
    return wave, rate, (EXAMPLES / "example.txt").read_text(encoding="utf-8")


def test_the_example_is_plausible_and_noise_is_suspect(packaged, example):
    wave, rate, text = example
    assert packaged.align((wave, rate), text).suspect == ()
    noise = np.random.default_rng(0).normal(0, 0.05, 5 * rate).astype(np.float32)
    result = packaged.align((noise, rate), text)
    assert any(reason.startswith("low score") for reason in result.suspect), result.suspect
    assert to_json(result)["suspect"] == list(result.suspect)


def test_a_long_silent_pause_stays_silence(packaged, example):
    """Two seconds of digital silence pasted into the pause after "Moon;":
    the words after it move by exactly that, the others stay, and no word
    takes the silence (the packaged model's quiet prior)."""
    wave, rate, text = example
    assert packaged.model.quiet_db == 40.0
    before = packaged.align((wave, rate), text)
    moon = next(i for i, w in enumerate(before.words) if w.text == "Moon;")
    cut = round((before.words[moon].end + before.words[moon + 1].start) / 2 * rate)
    longer = np.concatenate([wave[:cut], np.zeros(2 * rate, np.float32), wave[cut:]])
    after = packaged.align((longer, rate), text)
    assert after.suspect == ()
    for index, (old, new) in enumerate(zip(before.words, after.words)):
        shift = 2.0 if index > moon else 0.0
        # within three frames: the network hears each word in a different context
        assert new.start == pytest.approx(old.start + shift, abs=0.061), old.text
        assert new.end == pytest.approx(old.end + shift, abs=0.061), old.text
    plain = Aligner(replace(load_model(None), quiet_db=None), device="cpu")
    assert plain.model.quiet_db is None and plain.align((longer, rate), text).words  # the prior is optional


def test_cli_reports_suspect_alignments(tmp_path, example):
    wave, rate, text = example
    corpus = tmp_path / "corpus"
    corpus.mkdir()
    shutil.copy(EXAMPLES / "example.wav", corpus / "good.wav")
    (corpus / "good.txt").write_text(text, encoding="utf-8")
    noise = np.random.default_rng(3).normal(0, 0.05, 6 * rate).astype(np.float32)
    soundfile.write(corpus / "noise.wav", noise, rate)
    (corpus / "noise.txt").write_text(text, encoding="utf-8")

    result = CliRunner().invoke(
        main, ["align", str(corpus / "noise.wav"), str(corpus / "noise.txt"), "-o", str(tmp_path / "noise.json")]
    )
    assert result.exit_code == 0, result.output
    assert "SUSPECT: low score: mean word score" in result.output
    reasons = json.loads((tmp_path / "noise.json").read_text())["suspect"]
    assert reasons[0].startswith("low score") and "re-aligned with a stricter speech/silence constraint" in reasons[-1]

    out = tmp_path / "out"
    result = CliRunner().invoke(main, ["align-corpus", str(corpus), str(out), "-q"])
    assert result.exit_code == 0, result.output
    assert "SUSPECT: 1 alignment(s) look implausible" in result.output and "noise.wav: low score" in result.output
    with (out / CONFIDENCE_FILE).open(newline="") as handle:
        rows = {row["file"]: row for row in csv.DictReader(handle, delimiter="\t")}
    assert rows["noise.wav"]["suspect"].startswith("low score") and rows["good.wav"]["suspect"] == ""


def _flag_first_pass(monkeypatch, reason: str) -> None:
    """Make the guard flag every first-pass alignment with ``reason`` (the
    fallback's own check of its second alignment is left as it is)."""
    import aligner.pipeline as pipeline

    monkeypatch.setattr(pipeline, "suspect_reasons_batch", lambda words, *args, **kwargs: [(reason,)] * len(words))


def test_a_suspect_alignment_is_realigned_with_the_stricter_constraint(packaged, speech_dir, monkeypatch):
    """A real recording with 1 s of -50 dB noise pasted into its middle
    pause: the packaged model keeps every word within 0.15 s of the human
    boundaries; an alignment the guard flags is re-aligned without blank
    penalty and with the stricter quiet prior, the second alignment
    replaces the first, stays as close, and says it was re-aligned."""
    from praatio import textgrid as praat_textgrid

    wave, rate = soundfile.read(speech_dir / "damon_set_test.wav", dtype="float32")
    text = (speech_dir / "damon_set_test.txt").read_text(encoding="utf-8")
    grid = praat_textgrid.openTextgrid(str(speech_dir / "damon_set_test.TextGrid"), includeEmptyIntervals=False)
    ref = [(e.start, e.end) for e in grid.getTier("words").entries if e.label.strip()]
    cut = (ref[1][1] + ref[2][0]) / 2
    at = round(cut * rate)
    pause = np.random.default_rng(0).normal(0, 3e-3, rate).astype(np.float32)  # -50 dB noise
    longer = np.concatenate([wave[:at], pause, wave[at:]])
    shifted = [(a + (a >= cut), b + (b > cut)) for a, b in ref]

    def worst(result):
        return max(max(abs(w.start - a), abs(w.end - b)) for w, (a, b) in zip(result.words, shifted))

    first = packaged.align((longer, rate), text)
    assert worst(first) < 0.15
    _flag_first_pass(monkeypatch, "low score (forced by the test)")
    again = packaged.align((longer, rate), text)
    assert (
        again.suspect[-1]
        == "re-aligned with a stricter speech/silence constraint after: low score (forced by the test)"
    )
    assert worst(again) < 0.15


def test_a_phone_that_swallows_a_noisy_pause_is_capped_when_flagged(packaged, speech_dir, monkeypatch):
    """JFK's inaugural sentence (crowd noise in its pauses) with 2 s of
    -70 dB noise before and after: no phone of the packaged model's
    alignment is over the long-phone limit, and a flagged alignment is
    re-aligned with every phone at most FALLBACK_MAX_PHONE_SECONDS."""
    import librosa

    wave, rate = librosa.load(speech_dir / "jfk.flac", sr=16000, mono=True)
    text = (speech_dir / "jfk.txt").read_text(encoding="utf-8")
    edge = np.random.default_rng(1).normal(0, 3e-4, 2 * rate).astype(np.float32)
    audio = np.concatenate([edge, wave, edge])
    result = packaged.align((audio, rate), text)
    longest = max(phone.end - phone.start for word in result.words for phone in word.chars)
    assert longest <= FALLBACK_MAX_PHONE_SECONDS + 1e-6 or result.suspect
    _flag_first_pass(monkeypatch, "long phone (forced by the test)")
    again = packaged.align((audio, rate), text)
    assert "after: long phone (forced by the test)" in again.suspect[-1], again.suspect
    longest = max(phone.end - phone.start for word in again.words for phone in word.chars)
    assert longest <= FALLBACK_MAX_PHONE_SECONDS + 1e-6  # the re-alignment caps every phone
