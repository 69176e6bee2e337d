"""MBROLA voices through espeak-ng (aligner.training.synth.mbrola): audio with exact phone times."""

from __future__ import annotations

import numpy as np
import pytest

from aligner.phones import ARPABET
from aligner.training.phone import LABELS, MbrolaSpec, render_labeled
from aligner.training.synth import mbrola
from aligner.training.synth.mbrola import (
    LABEL_DELAY_MS,
    MBROLA_TO_ARPABET,
    MBROLA_VOICES,
    SynthesisError,
    mbrola_available,
    synthesize,
)

pytestmark = pytest.mark.skipif(
    not all(mbrola_available(v) for v in MBROLA_VOICES),
    reason="espeak-ng, mbrola and the voices us1/us2/us3 are not installed (Debian non-free: "
    "apt-get install espeak-ng mbrola mbrola-us1 mbrola-us2 mbrola-us3)",
)

SENTENCE = "she had your dark suit in greasy wash water all year"


def _level(samples: np.ndarray) -> float:
    return float(np.sqrt(np.mean(samples.astype(np.float64) ** 2)))


@pytest.mark.parametrize("voice", MBROLA_VOICES)
def test_phones_cover_the_speech_in_order(voice):
    out = synthesize(SENTENCE, voice)
    assert out.sample_rate == 16000 and out.samples.dtype == np.int16
    labels = [label for label, _, _ in out.phones]
    assert labels[:2] == ["SH", "IY"] and labels[-2:] == ["IY", "R"]
    assert set(labels) <= set(ARPABET)
    starts = [a for _, a, _ in out.phones]
    assert starts == sorted(starts)
    for (_, _, end), (_, start, _) in zip(out.phones, out.phones[1:]):
        assert start >= end  # no overlap (a pause may sit between)
    assert out.phones[-1][2] <= len(out.samples)
    # the silence before the first phone (lead 60 ms + the voice's delay) is quiet
    first = out.phones[0][1]
    assert first == (60 + LABEL_DELAY_MS[voice]) * 16
    assert _level(out.samples[: first - 16 * 15]) < 0.05 * _level(out.samples[first:])


def test_time_and_pitch_ratios():
    base = synthesize(SENTENCE, "us2")
    slow = synthesize(SENTENCE, "us2", time_ratio=1.3)
    assert len(slow.samples) / len(base.samples) == pytest.approx(1.3, rel=0.03)
    assert [p[0] for p in slow.phones] == [p[0] for p in base.phones]
    high = synthesize(SENTENCE, "us2", pitch_ratio=1.2)
    # pitch-synchronous synthesis: the length moves by less than a pitch period
    assert abs(len(high.samples) - len(base.samples)) < 160
    assert [p[:2] for p in high.phones] == [p[:2] for p in base.phones]


def test_stop_after_a_pause_starts_at_its_burst():
    # "top" after the lead silence: MBROLA's T interval includes its closure;
    # the label must start where the sound does
    out = synthesize("top", "us1")
    label, start, end = out.phones[0]
    assert label == "T"
    nominal = (60 + LABEL_DELAY_MS["us1"]) * 16
    assert start > nominal
    assert _level(out.samples[nominal:start]) < 0.05 * _level(out.samples[start:end])


def test_every_phone_espeak_writes_is_mapped():
    text = (
        "the judge's thick leather shoes measured zero point five; joyful cows howled "
        "while bright ships sailed north through foggy little bottles of ink"
    )
    for voice in MBROLA_VOICES:
        names = {name for name, _, _ in mbrola._phone_file(text, voice)} - {"_"}
        assert names <= set(MBROLA_TO_ARPABET), names - set(MBROLA_TO_ARPABET)
    assert set(MBROLA_TO_ARPABET.values()) <= set(ARPABET)


def test_bad_voice_and_empty_text():
    with pytest.raises(SynthesisError, match="unknown MBROLA voice 'en1'"):
        synthesize(SENTENCE, "en1")
    with pytest.raises(SynthesisError, match="no phones"):
        synthesize("   ", "us1")


def test_render_labeled_frames_follow_the_phones():
    spec = MbrolaSpec(text=SENTENCE, voice="us3", time_ratio=0.9, pitch_ratio=1.1, lead=0.3, trail=0.25)
    item = render_labeled(spec)
    assert item is not None and item.source == "mbrola"
    assert len(item.labels) == len(item.audio) // 320 or abs(len(item.labels) - len(item.audio) / 320) <= 2
    first_start = item.phones[0][1]
    assert first_start == pytest.approx(0.3 + (60 * 0.9 + LABEL_DELAY_MS["us3"]) / 1000, abs=0.002)
    assert (item.labels[: int(first_start / 0.02) - 1] == 0).all()  # silence before
    frame = int((item.phones[0][1] + item.phones[0][2]) / 2 / 0.02)
    assert LABELS[item.labels[frame]] == "SH"
    assert item.words == ((item.phones[0][1], item.phones[-1][2]),)
