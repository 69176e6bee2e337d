"""Boundary refinement (:mod:`aligner.refine`, ``Aligner(refine=True)``,
``--refine``): its guarantees as properties, the rule on tone bursts, and
the option end to end."""

from __future__ import annotations

import inspect
import json
import math
from dataclasses import replace
from pathlib import Path

import numpy as np
import pytest
import soundfile
import torch
from click.testing import CliRunner
from hypothesis import given, settings
from hypothesis import strategies as st

from aligner import Aligner, AlignerError, AlignmentError
from aligner.activity import frame_levels
from aligner.cli import main
from aligner.models.emissions import num_frames
from aligner.records import CharSpan, WordSpan
from aligner.refine import LEVEL_WINDOW_SAMPLES, REFINE_WINDOW, refine_words
from aligner.testing import tiny_model, tiny_phone_model

RATE = 16000
FRAME = 0.02
EPS = 1e-9


# --------------------------------------------------------------------------- helpers


def _word(text: str, start: float, end: float, phones: int = 2, aligned: bool = True) -> WordSpan:
    """A word whose ``phones`` phones tile ``[start, end]`` evenly."""
    if not aligned:
        return WordSpan(text, text.upper(), start, end, 0.0, (), False)
    step = (end - start) / phones
    chars = tuple(
        CharSpan(f"P{k}", start + k * step, end if k == phones - 1 else start + (k + 1) * step, 0.8)
        for k in range(phones)
    )
    return WordSpan(text, text.upper(), start, end, 0.8, chars)


def _tones(seconds: float, bursts: list[tuple[float, float]], amplitude: float = 0.3) -> torch.Tensor:
    """``seconds`` of silence with a 220 Hz tone in each ``(start, end)`` burst."""
    t = torch.arange(round(seconds * RATE), dtype=torch.float64) / RATE
    wave = torch.zeros_like(t)
    for start, end in bursts:
        wave = torch.where((t >= start) & (t < end), amplitude * torch.sin(2 * math.pi * 220 * t), wave)
    return wave.float()


def _levels(wave: torch.Tensor) -> torch.Tensor:
    return frame_levels(wave, 320, wave.numel() // 320)


def _recording(rng: np.random.Generator, frame_seconds: float) -> tuple[list[WordSpan], torch.Tensor, float]:
    """Random words (touching, with pauses between them, some not placed,
    0-4 phones) over levels of speech placed near them but not exactly
    there (random jitter, noise, clicks, digital silence)."""
    words, clock = [], float(rng.uniform(0, 0.3))
    for index in range(int(rng.integers(1, 8))):
        if index and rng.random() > 0.4:  # else touching the word before
            clock += float(rng.choice([rng.uniform(0.001, 0.03), rng.uniform(0.03, 0.5)]))
        length = float(rng.uniform(0.005, 0.6))
        phones = int(rng.integers(0, 5))
        aligned = rng.random() > 0.15
        word = _word(f"w{index}", clock, clock + length, max(phones, 1), aligned)
        if aligned and phones == 0:
            word = replace(word, chars=())
        words.append(word)
        clock += length
    duration = clock + float(rng.choice([0.0, rng.uniform(0, 0.4)]))
    frames = int(duration / frame_seconds) + int(rng.integers(-2, 3))
    centres = (np.arange(max(frames, 0)) + 0.5) * frame_seconds
    floor = -120.0 if rng.random() < 0.3 else float(rng.uniform(-90, -40))
    level = floor + rng.normal(0, 3, centres.size)
    for word in words:
        start = word.start + rng.normal(0, 0.05)
        end = word.end + rng.normal(0, 0.05)
        level[(centres >= start) & (centres < end)] = float(rng.uniform(-40, 0)) + rng.normal(0, 4)
    clicks = rng.random(centres.size) < 0.03
    level[clicks] = float(rng.uniform(-40, 0))
    return words, torch.from_numpy(level), duration


def _check_guarantees(
    words: list[WordSpan], refined: tuple[WordSpan, ...], duration: float, window: float, min_pause: float = 0.0
) -> int:
    """Assert every guarantee of :func:`refine_words`; return how many boundaries moved."""
    assert [w.text for w in refined] == [w.text for w in words]  # same words, same order
    moved = 0
    for index, (old, new) in enumerate(zip(words, refined)):
        if not old.aligned:
            assert new is old  # a word not placed is left as it is
            continue
        for before, after in ((old.start, new.start), (old.end, new.end)):
            assert abs(after - before) <= window + EPS  # never more than the window
            if after != before:
                moved += 1
                assert -EPS <= after <= duration + EPS  # never outside the audio
        assert new.end > new.start  # a positive duration
        if new.chars:  # the phones still tile the word; only the outer edges moved
            assert new.chars[0].start == new.start and new.chars[-1].end == new.end
            assert all(a.end == b.start for a, b in zip(new.chars, new.chars[1:]))
            assert new.chars[1:-1] == old.chars[1:-1]
            assert len(new.chars) == len(old.chars)
            assert all(c.end > c.start for c in new.chars)
            assert [(c.label, c.score) for c in new.chars] == [(c.label, c.score) for c in old.chars]
        assert (new.text, new.normalized, new.score, new.aligned) == (old.text, old.normalized, old.score, True)
        if index and not old.start - words[index - 1].end > min_pause:
            assert new.start == old.start  # no pause before it: its start stays
        if index + 1 < len(words) and not words[index + 1].start - old.end > min_pause:
            assert new.end == old.end  # no pause after it: its end stays
    for a, b in zip(refined, refined[1:]):
        assert a.end <= b.start + EPS  # never overlapping, never reordered
    return moved


# --------------------------------------------------------------------------- properties


@settings(max_examples=300, deadline=None)
@given(
    seed=st.integers(0, 2**32 - 1),
    frame_seconds=st.sampled_from([0.02, 0.01]),
    window=st.floats(0.0, 0.15),
    fraction=st.floats(0.05, 0.95),
    level_window=st.sampled_from([0.0, 0.03]),
    min_pause=st.sampled_from([0.0, 0.02]),
)
def test_refinement_guarantees(seed, frame_seconds, window, fraction, level_window, min_pause):
    """Never reorders words, never moves a boundary by more than the
    window or outside [0, duration], never overlaps words, never gives a
    word (or phone) a non-positive duration, keeps the phones tiling each
    word, leaves words without a pause between them and words not placed
    untouched, and does not modify its input."""
    words, levels, duration = _recording(np.random.default_rng(seed), frame_seconds)
    before = list(words)
    refined = refine_words(
        words,
        levels,
        frame_seconds,
        duration,
        window=window,
        fraction=fraction,
        level_window=level_window,
        min_pause=min_pause,
    )
    assert words == before
    _check_guarantees(words, refined, duration, window, min_pause)


@settings(max_examples=100, deadline=None)
@given(seed=st.integers(0, 2**32 - 1), spans=st.lists(st.tuples(st.floats(0, 3), st.floats(0, 0.3)), max_size=4))
def test_no_boundary_enters_kept_out_audio(seed, spans):
    words, levels, duration = _recording(np.random.default_rng(seed), FRAME)
    keep_out = [(start, start + length) for start, length in spans]
    refined = refine_words(words, levels, FRAME, duration, keep_out=keep_out)
    _check_guarantees(words, refined, duration, REFINE_WINDOW)
    for old, new in zip(words, refined):
        for was, now in ((old.start, new.start), (old.end, new.end)):
            for first, last in keep_out:  # a boundary that moved neither entered nor crossed one
                if now != was:
                    assert not (min(was, now) < last and max(was, now) > first), (was, now, first, last)


def test_the_property_recordings_move_boundaries():
    """The recordings of the properties exercise the rule: most of them move
    some boundary (a property that held because nothing moved would prove
    nothing), and so both ways."""
    moved = earlier = later = 0
    for seed in range(200):
        words, levels, duration = _recording(np.random.default_rng(seed), FRAME)
        refined = refine_words(words, levels, FRAME, duration)
        count = _check_guarantees(words, refined, duration, REFINE_WINDOW)
        moved += count > 0
        earlier += any(new.end < old.end or new.start < old.start for old, new in zip(words, refined))
        later += any(new.end > old.end or new.start > old.start for old, new in zip(words, refined))
    assert moved >= 120 and earlier >= 50 and later >= 50, (moved, earlier, later)


# --------------------------------------------------------------------------- the rule


@pytest.mark.parametrize("offset", [0.8, 0.807, 0.813, 0.819])
def test_a_word_end_placed_too_early_moves_to_the_bursts_offset(offset):
    wave = _tones(2.0, [(0.3, offset), (1.2, 1.6)])
    words = [_word("one", 0.3, offset - 0.05, 3), _word("two", 1.2, 1.6)]
    refined = refine_words(words, _levels(wave), FRAME, 2.0)
    assert refined[0].end == pytest.approx(offset, abs=0.003)
    assert refined[0].chars[-1].end == refined[0].end
    # the edges already at the bursts' edges stay there
    assert refined[0].start == pytest.approx(0.3, abs=0.003)
    assert (refined[1].start, refined[1].end) == pytest.approx((1.2, 1.6), abs=0.003)


def test_a_word_start_placed_too_late_moves_to_the_bursts_onset():
    wave = _tones(2.0, [(0.3, 0.8), (1.213, 1.6)])
    words = [_word("one", 0.3, 0.8), _word("two", 1.253, 1.6, 1)]
    refined = refine_words(words, _levels(wave), FRAME, 2.0)
    assert refined[1].start == pytest.approx(1.213, abs=0.003)
    assert refined[1].chars == (replace(words[1].chars[0], start=refined[1].start, end=refined[1].end),)


def test_without_the_window_model_the_crossing_lands_inside_the_pause():
    """``level_window`` 0 reads the levels as point measurements: the
    30 ms windows of frame_levels then put the offset past the burst's end."""
    wave = _tones(2.0, [(0.3, 0.8), (1.2, 1.6)])
    words = [_word("one", 0.3, 0.78), _word("two", 1.2, 1.6)]
    point = refine_words(words, _levels(wave), FRAME, 2.0, level_window=0.0)
    assert 0.27 < point[0].start < 0.29 and 0.81 < point[0].end < 0.83
    window_model = refine_words(words, _levels(wave), FRAME, 2.0)
    assert (window_model[0].start, window_model[0].end) == pytest.approx((0.3, 0.8), abs=0.003)


def test_a_boundary_moves_at_most_the_window():
    wave = _tones(2.0, [(0.3, 0.9), (1.2, 1.6)])
    words = [_word("one", 0.3, 0.8), _word("two", 1.2, 1.6)]
    assert refine_words(words, _levels(wave), FRAME, 2.0)[0].end == pytest.approx(0.8 + REFINE_WINDOW)
    assert refine_words(words, _levels(wave), FRAME, 2.0, window=0.03)[0].end == pytest.approx(0.83)
    assert refine_words(words, _levels(wave), FRAME, 2.0, window=0.0) == tuple(words)


def test_touching_words_keep_their_shared_boundary():
    wave = _tones(2.0, [(0.3, 1.0)])
    words = [_word("one", 0.3, 0.55), _word("two", 0.55, 0.95)]  # one burst, two words
    refined = refine_words(words, _levels(wave), FRAME, 2.0)
    assert refined[0].end == refined[1].start == 0.55
    assert refined[1].end == pytest.approx(1.0, abs=0.003)


def test_no_contrast_no_evidence_no_move():
    words = [_word("one", 0.3, 0.75), _word("two", 1.2, 1.6)]
    flat = torch.full((100,), -30.0)
    assert refine_words(words, flat, FRAME, 2.0) == tuple(words)
    nan = torch.full((100,), math.nan)
    assert refine_words(words, nan, FRAME, 2.0) == tuple(words)
    assert refine_words(words, torch.zeros(0), FRAME, 2.0) == tuple(words)
    # 4 dB of contrast: under the default 6 dB, over a 3 dB minimum
    steps = torch.full((100,), -34.0)
    steps[15:40] = -30.0
    assert refine_words(words, steps, FRAME, 2.0) == tuple(words)
    assert refine_words(words, steps, FRAME, 2.0, min_contrast=3.0) != tuple(words)


def test_a_word_never_moves_into_its_neighbour_nor_shrinks_its_outer_phone_away():
    # the pause between the words is only 20 ms: the first word's end may not pass the second's start
    wave = _tones(2.0, [(0.3, 1.0)])
    words = [_word("one", 0.3, 0.5), _word("two", 0.52, 0.9)]
    refined = refine_words(words, _levels(wave), FRAME, 2.0)
    assert refined[0].end <= refined[1].start
    # a word that starts on silence: its start moves in no further than leaves its first phone a frame
    wave = _tones(2.0, [(0.3, 0.8), (1.2, 1.6)])
    words = [_word("one", 0.3, 0.8), _word("late", 1.0, 1.5, 5), _word("two", 1.5, 1.6)]
    refined = refine_words(words, _levels(wave), FRAME, 2.0, window=0.15)
    assert refined[1].start == pytest.approx(1.08) and refined[1].chars[0].duration == pytest.approx(FRAME)
    assert refined[1].end == refined[2].start == 1.5


def test_skipped_audio_is_never_entered():
    wave = _tones(2.0, [(0.3, 1.0), (1.2, 1.6)])
    words = [_word("one", 0.3, 0.8), _word("two", 1.2, 1.6)]
    free = refine_words(words, _levels(wave), FRAME, 2.0)
    assert free[0].end == pytest.approx(0.8 + REFINE_WINDOW)
    kept = refine_words(words, _levels(wave), FRAME, 2.0, keep_out=[(0.82, 1.0)])
    assert kept[0].end == pytest.approx(0.82)
    inside = refine_words(words, _levels(wave), FRAME, 2.0, keep_out=[(0.7, 0.9)])
    assert inside[0].end == 0.8  # a boundary inside skipped audio stays


def test_the_level_window_matches_frame_levels():
    assert inspect.signature(frame_levels).parameters["window"].default == LEVEL_WINDOW_SAMPLES


@pytest.mark.parametrize(
    ("options", "message"),
    [
        ({"window": -0.01}, "window must be a number of seconds >= 0"),
        ({"window": math.inf}, "window must be"),
        ({"fraction": 0.0}, r"fraction must be a number in \(0, 1\)"),
        ({"fraction": 1.0}, "fraction must be"),
        ({"fraction": math.nan}, "fraction must be"),
        ({"min_contrast": -1.0}, "min_contrast must be"),
        ({"min_pause": True}, "min_pause must be"),
        ({"level_window": "30 ms"}, "level_window must be"),
    ],
)
def test_bad_options_are_refused(options, message):
    with pytest.raises(AlignmentError, match=message):
        refine_words([_word("one", 0.1, 0.5)], torch.zeros(50), FRAME, 1.0, **options)


def test_bad_shapes_and_frames_are_refused():
    with pytest.raises(AlignmentError, match=r"levels must have shape \(T,\), not \(2, 50\)"):
        refine_words([_word("one", 0.1, 0.5)], torch.zeros(2, 50), FRAME, 1.0)
    with pytest.raises(AlignmentError, match="frame_seconds must be a number of seconds > 0"):
        refine_words([_word("one", 0.1, 0.5)], torch.zeros(50), 0.0, 1.0)
    with pytest.raises(AlignmentError, match="duration must be"):
        refine_words([_word("one", 0.1, 0.5)], torch.zeros(50), FRAME, -1.0)


# --------------------------------------------------------------------------- the aligner

BURSTS = [(0.3, 0.8), (1.2, 1.5), (1.5, 1.9)]
TEXT = "one two three"


@pytest.fixture(scope="module")
def bursts() -> torch.Tensor:
    return _tones(2.4, BURSTS)


def _valid(result):
    for word in result.words:
        assert 0 <= word.start < word.end <= result.duration
        if word.chars:
            assert word.chars[0].start == word.start and word.chars[-1].end == word.end
            assert all(a.end == b.start for a, b in zip(word.chars, word.chars[1:]))
    for a, b in zip(result.words, result.words[1:]):
        if a.aligned or b.aligned:  # words not placed side by side share the gap between placed ones
            assert a.end <= b.start


def test_aligner_refine_moves_pause_edges_and_off_is_the_default(bursts):
    model = tiny_model()
    default = Aligner(model, device="cpu").align((bursts, RATE), TEXT)
    off = Aligner(model, device="cpu", refine=False).align((bursts, RATE), TEXT)
    on = Aligner(model, device="cpu", refine=True).align((bursts, RATE), TEXT)
    assert off == default
    assert on.words != off.words  # this model's words sit off the bursts: some edge moves
    _valid(on)
    _check_guarantees(list(off.words), on.words, on.duration, REFINE_WINDOW)
    levels = frame_levels(bursts, 320, num_frames(model, bursts.numel()))
    assert on.words == refine_words(off.words, levels, FRAME, on.duration)
    # with_model keeps the setting
    other = Aligner(model, device="cpu", refine=True).with_model(tiny_model(seed=0))
    assert other.refine and other.align((bursts, RATE), TEXT).words == on.words


def test_the_duration_decoder_and_its_fallback_are_refined(bursts):
    """The tiny phone model (duration decoder) scores too low for the guard,
    so every alignment is decoded again: the refined result is the
    refinement of that second alignment."""
    model = tiny_phone_model()
    off = Aligner(model, device="cpu", min_frames=2).align((bursts, RATE), TEXT)
    on = Aligner(model, device="cpu", min_frames=2, refine=True).align((bursts, RATE), TEXT)
    assert "re-aligned" in off.suspect[-1] and "re-aligned" in on.suspect[-1]
    levels = frame_levels(bursts, 320, num_frames(model, bursts.numel()))
    assert on.words == refine_words(off.words, levels, FRAME, on.duration)
    _valid(on)


@pytest.mark.parametrize(
    ("make", "options", "unplaced"),
    [(tiny_model, {"min_word_score": 0.05}, 2), (tiny_phone_model, {"min_frames": 2}, 0)],
)
def test_partial_mode_refines_only_the_placed_words(bursts, make, options, unplaced):
    """The CTC partial path (this model leaves two words out) and the
    duration decoder's partial path."""
    model = make()
    off = Aligner(model, device="cpu", partial=True, **options).align((bursts, RATE), TEXT)
    on = Aligner(model, device="cpu", partial=True, refine=True, **options).align((bursts, RATE), TEXT)
    levels = frame_levels(bursts, 320, num_frames(model, bursts.numel()))
    assert on.words == refine_words(off.words, levels, FRAME, on.duration, keep_out=off.skipped)
    assert on.words != off.words
    assert len(on.unaligned_words) == unplaced and on.unaligned_words == off.unaligned_words
    _valid(on)


@pytest.mark.parametrize("value", ["yes", 1, None, 0.0])
def test_aligner_refuses_a_refine_that_is_not_a_bool(value):
    with pytest.raises(AlignerError, match=f"refine must be True or False, not {value!r}"):
        Aligner(tiny_model(), device="cpu", refine=value)


# --------------------------------------------------------------------------- the command line


@pytest.fixture(scope="module")
def burst_file(tmp_path_factory) -> Path:
    path = tmp_path_factory.mktemp("refine") / "bursts.wav"
    soundfile.write(path, _tones(2.4, BURSTS).numpy(), RATE)
    return path


def _align_json(audio: Path, out: Path, model: Path, *flags: str) -> dict:
    result = CliRunner().invoke(
        main, ["align", str(audio), "--text", TEXT, "-o", str(out), "--model", str(model), *flags]
    )
    assert result.exit_code == 0, result.output
    return json.loads(out.read_text())


def test_cli_refine_flag(burst_file, tiny_model_dir, tmp_path):
    default = _align_json(burst_file, tmp_path / "default.json", tiny_model_dir)
    off = _align_json(burst_file, tmp_path / "off.json", tiny_model_dir, "--no-refine")
    on = _align_json(burst_file, tmp_path / "on.json", tiny_model_dir, "--refine")
    assert off == default
    times = [[(w["start"], w["end"]) for w in data["words"]] for data in (off, on)]
    assert times[0] != times[1]
    expected = Aligner(str(tiny_model_dir), device="cpu", refine=True).align(burst_file, TEXT)
    assert times[1] == [(round(w.start, 6), round(w.end, 6)) for w in expected.words]


@pytest.mark.parametrize("command", ["align", "align-corpus"])
def test_cli_refine_takes_no_value(command, tmp_path):
    args = [command, str(tmp_path / "a.wav"), str(tmp_path / "out"), "--refine=yes"]
    result = CliRunner().invoke(main, args)
    assert result.exit_code == 2 and "Option '--refine' does not take a value" in result.output


@pytest.mark.parametrize("flags", [[], ["--refine"], ["--no-refine"], ["--refine", "--ray", "auto"]])
def test_align_corpus_passes_refine_to_the_aligner(flags, burst_file, tiny_model_dir, tmp_path, monkeypatch):
    import aligner.corpus.align as corpus_align
    from aligner.corpus.align import CorpusSummary

    corpus = tmp_path / "corpus"
    corpus.mkdir()
    (corpus / "a.wav").write_bytes(burst_file.read_bytes())
    (corpus / "a.txt").write_text(TEXT)
    seen = []

    def run(in_dir, out_dir, aligner, **options):
        seen.append(aligner)
        return CorpusSummary()

    monkeypatch.setattr(corpus_align, "align_corpus", run)
    args = ["align-corpus", str(corpus), str(tmp_path / "out"), "--model", str(tiny_model_dir), "-q", *flags]
    result = CliRunner().invoke(main, args)
    assert result.exit_code == 0, result.output
    (aligner,) = seen
    if "--ray" in flags:
        assert aligner.options == {"refine": True, "vtl_warps": (1.0,)}
        aligner = aligner.build("cpu")  # what every actor builds
    assert aligner.refine is ("--refine" in flags)
