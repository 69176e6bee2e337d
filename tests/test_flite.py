"""The flite binding (aligner.training.synth.flite): audio with exact phone and word timings."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from aligner.errors import AlignerError
from aligner.phones import ARPABET
from aligner.training.synth import flite as flite_module
from aligner.training.synth.flite import (
    ALLOWED_VOICES,
    FLITE_TO_ARPABET,
    LIB_DIR_ENV,
    RESERVED_VOICES,
    FliteSynthesis,
    SynthesisError,
    flite_available,
    synthesize,
)

pytestmark = pytest.mark.skipif(
    not flite_available(),
    reason="flite 2.2 with the awb and rms voices is not installed (apt-get install libflite1, or "
    f"point {LIB_DIR_ENV} at the usr/lib/x86_64-linux-gnu folder of an unpacked libflite1 .deb)",
)

SENTENCE = "the quick brown fox jumps over the lazy dog while seven birds sing"
VOWELS = {"AA", "AE", "AH", "AO", "AW", "AY", "EH", "ER", "EY", "IH", "IY", "OW", "OY", "UH", "UW"}
ROOT = Path(__file__).resolve().parents[1]


@pytest.fixture(scope="module", params=ALLOWED_VOICES)
def synthesis(request) -> FliteSynthesis:
    return synthesize(SENTENCE, request.param)


def _db(samples: np.ndarray) -> float:
    return 10 * np.log10(np.mean(samples.astype(np.float64) ** 2) + 1.0)


# ------------------------------------------------------------------ output


def test_synthesizes_a_sentence(synthesis):
    assert synthesis.voice in ALLOWED_VOICES
    assert synthesis.sample_rate == 16000
    assert synthesis.samples.dtype == np.int16 and synthesis.samples.ndim == 1
    assert 2.0 < synthesis.duration < 8.0
    assert np.abs(synthesis.samples).max() > 5000
    assert synthesis.text == SENTENCE


def test_one_record_per_input_word(synthesis):
    assert [w.word for w in synthesis.words] == SENTENCE.split()
    assert all(w.spoken == (w.word,) for w in synthesis.words)
    word, start, end, phones = synthesis.words[1]  # records unpack like tuples
    assert (word, start, end) == ("quick", phones[0].start, phones[-1].end)
    assert [p.phone for p in phones] == ["k", "w", "ih", "k"]
    phone, p_start, p_end = phones[0]
    assert (phone, p_start, p_end) == ("k", start, phones[1].start)


def test_timings_monotonic_and_contiguous(synthesis):
    segments = synthesis.segments
    assert segments[0].start == 0 and segments[-1].end == len(synthesis.samples)
    for before, after in zip(segments, segments[1:]):
        assert before.end == after.start
    assert all(s.end > s.start for s in segments)
    assert segments[0].phone == segments[-1].phone == "pau"
    # the final pause is real silence, not a remnant of clipping to the wave
    assert segments[-1].end - segments[-1].start > 0.05 * synthesis.sample_rate

    speech = [s for s in segments if not s.is_silence]
    assert [p for w in synthesis.words for p in w.phones] == speech
    previous_end = 0
    for word in synthesis.words:
        assert previous_end <= word.start < word.end
        assert word.start == word.phones[0].start and word.end == word.phones[-1].end
        for before, after in zip(word.phones, word.phones[1:]):
            assert before.end == after.start
        previous_end = word.end


def test_phones_map_to_arpabet(synthesis):
    assert set(FLITE_TO_ARPABET.values()) - {None} <= set(ARPABET)
    assert set(ARPABET) <= set(FLITE_TO_ARPABET.values())
    for word in synthesis.words:
        for phone in word.phones:
            assert phone.phone in FLITE_TO_ARPABET
            assert phone.arpabet in ARPABET
    assert FLITE_TO_ARPABET["pau"] is None
    assert FLITE_TO_ARPABET["ax"] == "AH" and FLITE_TO_ARPABET["axr"] == "ER"


def test_pauses_are_much_quieter_than_vowels(synthesis):
    samples = synthesis.samples
    pauses = [_db(samples[s.start : s.end]) for s in synthesis.segments if s.is_silence]
    vowels = [_db(samples[p.start : p.end]) for w in synthesis.words for p in w.phones if p.arpabet in VOWELS]
    assert pauses and vowels
    assert max(pauses) < min(vowels) - 10
    assert np.mean(pauses) < np.mean(vowels) - 30


def test_same_output_whatever_came_before():
    first = synthesize("she sells sea shells", "rms")
    synthesize("something else entirely", "awb")
    synthesize("and again", "rms", duration_stretch=1.3)
    again = synthesize("she sells sea shells", "rms")
    assert np.array_equal(first.samples, again.samples)
    assert first.words == again.words


# ------------------------------------------------------------------ prosody


@pytest.mark.parametrize("voice", ALLOWED_VOICES)
def test_duration_stretch_makes_it_longer(voice):
    normal = synthesize(SENTENCE, voice)
    slow = synthesize(SENTENCE, voice, duration_stretch=1.5)
    assert slow.duration_stretch == 1.5
    assert slow.duration / normal.duration == pytest.approx(1.5, rel=0.03)
    for a, b in zip(normal.words, slow.words):
        assert [p.phone for p in a.phones] == [p.phone for p in b.phones]
        assert (b.end - b.start) / (a.end - a.start) == pytest.approx(1.5, rel=0.1)
    assert np.array_equal(synthesize(SENTENCE, voice).samples, normal.samples)  # reset after use


def _pitch(synthesis: FliteSynthesis) -> float:
    """Median F0 (Hz) of the long vowels, by autocorrelation."""
    rate = synthesis.sample_rate
    values = []
    for word in synthesis.words:
        for phone in word.phones:
            if phone.arpabet in VOWELS and phone.end - phone.start > 0.05 * rate:
                x = synthesis.samples[phone.start : phone.end].astype(np.float64)
                x -= x.mean()
                correlation = np.correlate(x, x, "full")[len(x) - 1 :]
                low, high = rate // 400, rate // 60
                values.append(rate / (low + int(np.argmax(correlation[low:high]))))
    return float(np.median(values))


def test_f0_mean_moves_awb_pitch():
    text = "we were away all day in a lovely area by the river"
    low = synthesize(text, "awb", f0_mean=100)
    high = synthesize(text, "awb", f0_mean=180)
    assert _pitch(low) == pytest.approx(100, rel=0.1)
    assert _pitch(high) == pytest.approx(180, rel=0.1)
    assert len(low.samples) == len(high.samples)
    flat = synthesize(text, "awb", f0_stddev=1)
    assert not np.array_equal(flat.samples, synthesize(text, "awb").samples)


def test_rms_refuses_f0_it_would_ignore():
    with pytest.raises(SynthesisError, match="ignores f0_mean"):
        synthesize("hello there", "rms", f0_mean=150)
    with pytest.raises(SynthesisError, match="ignores f0_mean"):
        synthesize("hello there", "rms", f0_stddev=10)


@pytest.mark.parametrize(
    "kwargs",
    [
        {"duration_stretch": 0},
        {"duration_stretch": float("nan")},
        {"duration_stretch": "1.5"},
        {"f0_mean": 20},
        {"f0_stddev": -1},
        {"duration_stretch": True},
    ],
)
def test_bad_parameters_raise(kwargs):
    with pytest.raises(SynthesisError):
        synthesize("hello there", "awb", **kwargs)


# ------------------------------------------------------------------ voices


@pytest.mark.parametrize("voice", [*RESERVED_VOICES, "cmu_us_slt", "cmu_us_kal16", " KAL "])
def test_reserved_voices_are_refused(voice):
    with pytest.raises(SynthesisError, match="reserved for the independent evaluation") as caught:
        synthesize("hello there", voice)
    assert repr(voice) in str(caught.value)
    assert isinstance(caught.value, AlignerError)
    assert not flite_available(voice)


def test_reserved_voice_libraries_are_never_loaded():
    synthesize("hello there", "rms")
    for voice in (*RESERVED_VOICES, "kal16"):
        with pytest.raises(SynthesisError):
            synthesize("hello there", voice)
    maps = Path("/proc/self/maps").read_text()
    loaded = {line.split()[-1] for line in maps.splitlines() if "libflite" in line}
    assert any("cmu_us_rms" in path for path in loaded)
    assert not [path for path in loaded if any(stem in path for stem in ("kal", "slt", "ked"))]


def test_unknown_voice_is_refused():
    with pytest.raises(SynthesisError, match="unknown flite voice 'nobody'; allowed: awb, rms"):
        synthesize("hello there", "nobody")


def test_voice_aliases():
    assert synthesize("hello", "cmu_us_awb").voice == "awb"
    assert synthesize("hello", "RMS").voice == "rms"


# ------------------------------------------------------------------ words


def test_spelled_out_word_stays_one_record():
    result = synthesize("the nth time", "rms")
    assert [w.word for w in result.words] == ["the", "nth", "time"]
    assert result.words[1].spoken == ("n", "t", "h")
    assert [p.phone for p in result.words[1].phones] == ["eh", "n", "t", "iy", "ey", "ch"]


@pytest.mark.parametrize("text", ["hello, world", "(hello) world", "hello world."])
def test_word_mismatch_raises(text):
    with pytest.raises(SynthesisError, match="word segmentation does not match"):
        synthesize(text, "rms")


@pytest.mark.parametrize("text", ["", "   ", "caf\u00e9 au lait", "a\0b", None])
def test_bad_text_raises(text):
    with pytest.raises(SynthesisError):
        synthesize(text, "rms")


def test_whitespace_is_normalised():
    result = synthesize("  hello \t there\n", "rms")
    assert [w.word for w in result.words] == ["hello", "there"]


# ------------------------------------------------------------------ loading


def _run(code: str, lib_dir: Path) -> subprocess.CompletedProcess:
    env = dict(os.environ, **{LIB_DIR_ENV: str(lib_dir)})
    env["PYTHONPATH"] = os.pathsep.join(filter(None, [str(ROOT), env.get("PYTHONPATH")]))
    return subprocess.run(
        [sys.executable, "-c", code], env=env, capture_output=True, text=True, timeout=120, check=False
    )


def test_loads_from_the_lib_dir_variable(tmp_path):
    # copies (not links) of the libraries an unpacked .deb would hold, so that
    # the process's memory map shows where each one was loaded from
    source = Path(os.environ.get(LIB_DIR_ENV) or "/usr/lib/x86_64-linux-gnu")
    names = [*flite_module._DEPENDENCIES, *flite_module._VOICE_LIBRARIES.values()]
    if not all((source / name).exists() for name in names):
        pytest.skip(f"the flite libraries are not in {source}")
    for name in names:
        shutil.copyfile(source / name, tmp_path / name)
    code = (
        "from pathlib import Path\n"
        "from aligner.training.synth.flite import synthesize\n"
        "result = synthesize('hello there world', 'awb')\n"
        "result = synthesize('hello there world', 'rms')\n"
        "print(len(result.words), result.sample_rate)\n"
        "for line in Path('/proc/self/maps').read_text().splitlines():\n"
        "    if 'libflite' in line: print(line.split()[-1])\n"
    )
    done = _run(code, tmp_path)
    assert done.returncode == 0, done.stderr
    lines = done.stdout.split()
    assert lines[:2] == ["3", "16000"]
    paths = set(lines[2:])
    assert paths == {str(tmp_path / name) for name in names}, paths


def test_system_dir_in_the_variable_works():
    folder = Path("/usr/lib/x86_64-linux-gnu")
    if not (folder / "libflite_cmu_us_rms.so.1").exists():
        pytest.skip(f"flite is not installed in {folder}")
    done = _run(
        "from aligner.training.synth.flite import synthesize\nprint(len(synthesize('hello there', 'rms').words))",
        folder,
    )
    assert done.returncode == 0, done.stderr
    assert done.stdout.strip() == "2"


def test_missing_lib_dir_gives_a_clear_error(tmp_path):
    code = (
        "from aligner.training.synth.flite import flite_available, synthesize, SynthesisError\n"
        "print(flite_available())\n"
        "try:\n    synthesize('hello', 'rms')\n"
        "except SynthesisError as error:\n    print(error)\n"
    )
    done = _run(code, tmp_path)
    assert done.returncode == 0, done.stderr
    first, message = done.stdout.split("\n", 1)
    assert first == "False"
    assert "libflite.so.1" in message and str(tmp_path) in message and LIB_DIR_ENV in message
