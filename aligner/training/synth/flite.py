"""A ctypes binding to the flite 2.2 speech synthesizer (``libflite.so.1``,
Debian package ``libflite1``) that returns the audio together with flite's
own phone and word timings.

Only the clustergen voices ``awb`` and ``rms`` may be used
(:data:`ALLOWED_VOICES`). The other flite voices (``kal``, ``kal16``,
``slt``) and Festival's ``kal_diphone``, ``ked_diphone`` and
``cmu_us_slt_arctic_hts`` are reserved for the independent evaluation of
this project: :func:`synthesize` refuses them and their libraries are never
loaded.

Where the libraries come from: by default the system's, by soname
(``libflite.so.1``, ``libflite_cmulex.so.1``, ``libflite_usenglish.so.1``,
then ``libflite_cmu_us_rms.so.1`` / ``libflite_cmu_us_awb.so.1``). The
environment variable ``ALIGNER_FLITE_LIB_DIR`` names a folder holding these
files instead, e.g. the ``usr/lib/x86_64-linux-gnu`` folder of a
``dpkg -x libflite1_*.deb DIR`` on a machine without flite: the dependency
libraries are loaded from it first, with ``RTLD_GLOBAL``, so that the voice
library's own references to them resolve to the already loaded copies. The
variable is read once, when the process first loads flite.

flite keeps global state (the registered voices, their features, the
vocoder's noise source, libc's ``rand()``): one process holds one
synthesizer, loaded on first use and guarded by a lock. To synthesize in
parallel use a process pool.

How flite times its output (flite 2.2, awb and rms; see
``tests/test_flite.py``): the utterance's ``Segment`` relation holds every
phone, with ``pau`` for silence at the start, at the end and at phrase
breaks, and each segment's ``end`` in seconds; a segment starts where the
previous one ends, the first at 0. Those are the synthesizer's own
boundaries: the clustergen model gives each phone's HMM states their
durations, and the vocoder renders one parameter frame per 5 ms (80 samples
at 16 kHz), moving linearly from one frame's parameters to the next's, so
the sound changes within the frame around each boundary. Two small lags
come on top: voicing after silence or an unvoiced frame starts one frame
late (the vocoder keeps noise excitation for that frame), and a voiced
onset waits for its first pitch pulse. Measured at 16 kHz: vowel onsets
after the leading pause come a median 5 ms after their label; pauses are
about 40 dB quieter than vowels; the wave ends within one frame of the last
pause's end (it is one frame shorter than the parameter track), which is
clipped to the wave. Segments are rounded to whole samples and cover the
wave without gaps.

Each record is one whitespace-separated input word: flite's ``Token``
relation must hold exactly the input words (else :class:`SynthesisError`),
and a token spoken as several flite words (a word spelled out as letters,
``"nth"`` -> ``n t h``) stays one record, see :attr:`FliteWord.spoken`.

The mixed excitation of these voices draws noise from libc's ``rand()``;
:func:`synthesize` calls ``srand(1)`` before each synthesis, so the same
arguments give byte-identical audio whatever the process did before.
"""

from __future__ import annotations

import ctypes
import math
import os
import threading
from collections.abc import Iterator
from dataclasses import astuple, dataclass

import numpy as np

from .espeak import SynthesisError

__all__ = [
    "ALLOWED_VOICES",
    "DURATION_STRETCH_RANGE",
    "F0_MEAN_RANGE",
    "F0_STDDEV_RANGE",
    "F0_VOICES",
    "FLITE_TO_ARPABET",
    "FlitePhone",
    "FliteSynthesis",
    "FliteWord",
    "LIB_DIR_ENV",
    "RESERVED_VOICES",
    "SynthesisError",
    "flite_available",
    "synthesize",
]

#: The flite voices this project may use.
ALLOWED_VOICES: tuple[str, ...] = ("awb", "rms")

#: Voices reserved for the project's independent evaluation: never loaded.
RESERVED_VOICES: tuple[str, ...] = ("kal", "kal16", "slt", "kal_diphone", "ked_diphone", "cmu_us_slt_arctic_hts")

#: Names the evaluation voices go by; a requested voice containing one is refused.
_RESERVED_STEMS = ("kal", "ked", "slt")

#: The environment variable naming a folder with the flite libraries.
LIB_DIR_ENV = "ALIGNER_FLITE_LIB_DIR"

#: Libraries every voice needs, in load order.
_DEPENDENCIES = ("libflite.so.1", "libflite_cmulex.so.1", "libflite_usenglish.so.1")
_VOICE_LIBRARIES = {"awb": "libflite_cmu_us_awb.so.1", "rms": "libflite_cmu_us_rms.so.1"}

#: Voices whose pitch ``f0_mean`` / ``f0_stddev`` change. rms predicts its F0
#: with flite's SPAM model, which overwrites the clustergen F0 track after
#: ``int_f0_target_mean`` / ``int_f0_target_stddev`` were applied: in flite 2.2
#: they leave its audio bit-identical, so :func:`synthesize` refuses them.
F0_VOICES: tuple[str, ...] = ("awb",)

#: Accepted ranges of the prosody parameters.
DURATION_STRETCH_RANGE = (0.25, 4.0)
F0_MEAN_RANGE = (50.0, 400.0)
F0_STDDEV_RANGE = (0.0, 100.0)

#: flite's US English phones (``us_phoneset``, lowercase CMU names) -> the 39
#: ARPAbet phones of :data:`aligner.phones.ARPABET`; ``None`` for silence.
#: Every phone of the phoneset is listed; over 600 random words of
#: ``/usr/share/dict/words`` each, awb and rms produced only the 39 CMUdict
#: phones plus ``ax`` and ``pau`` (no ``axr``, ``dx``, syllabics). Syllabic consonants map to their consonant, flaps to
#: ``T`` / ``N``, ``hv`` (voiced h) to ``HH``.
FLITE_TO_ARPABET: dict[str, str | None] = {
    "aa": "AA",
    "ae": "AE",
    "ah": "AH",
    "ao": "AO",
    "aw": "AW",
    "ax": "AH",
    "axr": "ER",
    "ay": "AY",
    "b": "B",
    "ch": "CH",
    "d": "D",
    "dh": "DH",
    "dx": "T",
    "eh": "EH",
    "el": "L",
    "em": "M",
    "en": "N",
    "er": "ER",
    "ey": "EY",
    "f": "F",
    "g": "G",
    "hh": "HH",
    "hv": "HH",
    "ih": "IH",
    "iy": "IY",
    "jh": "JH",
    "k": "K",
    "l": "L",
    "m": "M",
    "n": "N",
    "nx": "N",
    "ng": "NG",
    "ow": "OW",
    "oy": "OY",
    "p": "P",
    "r": "R",
    "s": "S",
    "sh": "SH",
    "t": "T",
    "th": "TH",
    "uh": "UH",
    "uw": "UW",
    "v": "V",
    "w": "W",
    "y": "Y",
    "z": "Z",
    "zh": "ZH",
    "pau": None,
    "h#": None,
    "brth": None,
}

#: Segment names that are silence, not phones.
SILENCE = frozenset(name for name, symbol in FLITE_TO_ARPABET.items() if symbol is None)

#: Path from a segment to the token (input word) it was spoken for.
_WORD_PATH = b"R:SylStructure.parent.parent"
_TOKEN_PATH = _WORD_PATH + b".R:Token.parent"


# ------------------------------------------------------------ C declarations


class _Voice(ctypes.Structure):
    """The head of ``cst_voice`` (flite 2.2 ``cst_voice.h``)."""

    _fields_ = [
        ("name", ctypes.c_char_p),
        ("features", ctypes.c_void_p),
        ("ffunctions", ctypes.c_void_p),
        ("utt_init", ctypes.c_void_p),
    ]


class _Wave(ctypes.Structure):
    """``cst_wave`` (flite 2.2 ``cst_wave.h``)."""

    _fields_ = [
        ("type", ctypes.c_char_p),
        ("sample_rate", ctypes.c_int),
        ("num_samples", ctypes.c_int),
        ("num_channels", ctypes.c_int),
        ("samples", ctypes.POINTER(ctypes.c_short)),
    ]


_P = ctypes.c_void_p
_S = ctypes.c_char_p
_SIGNATURES = {
    "flite_init": ([], ctypes.c_int),
    "flite_feat_set_float": ([_P, _S, ctypes.c_float], None),
    "flite_feat_remove": ([_P, _S], ctypes.c_int),
    "flite_get_param_float": ([_P, _S, ctypes.c_float], ctypes.c_float),
    "flite_synth_text": ([_S, ctypes.POINTER(_Voice)], _P),
    "utt_wave": ([_P], ctypes.POINTER(_Wave)),
    "utt_relation": ([_P, _S], _P),
    "relation_head": ([_P], _P),
    "item_next": ([_P], _P),
    "item_feat_present": ([_P, _S], ctypes.c_int),
    "item_feat_string": ([_P, _S], _S),
    "item_feat_float": ([_P, _S], ctypes.c_float),
    "path_to_item": ([_P, _S], _P),
    "delete_utterance": ([_P], None),
}


# ------------------------------------------------------------------- records


@dataclass(frozen=True)
class FlitePhone:
    """One segment: a phone (or ``pau``) and its samples ``[start, end)``.

    Unpacks as ``phone, start, end = segment``.
    """

    phone: str
    start: int
    end: int

    def __iter__(self) -> Iterator:
        return iter(astuple(self))

    @property
    def arpabet(self) -> str | None:
        """The ARPAbet phone (``"AH"`` for ``ax``), None for silence."""
        return FLITE_TO_ARPABET[self.phone]

    @property
    def is_silence(self) -> bool:
        return self.phone in SILENCE


@dataclass(frozen=True)
class FliteWord:
    """One input word with its phones.

    Attributes:
        word: the word as given.
        start, end: samples, ``[start, end)``, from the start of its first
            phone to the end of its last.
        phones: its phones in order (never silence), contiguous.
        spoken: the word(s) flite said it as: ``("dont",)`` for
            ``"don't"``, ``("n", "t", "h")`` for ``"nth"`` (spelled out:
            not in its lexicon and judged unpronounceable).

    Unpacks as ``word, start, end, phones = record``.
    """

    word: str
    start: int
    end: int
    phones: tuple[FlitePhone, ...]
    spoken: tuple[str, ...] = ()

    def __iter__(self) -> Iterator:
        return iter((self.word, self.start, self.end, self.phones))


@dataclass(frozen=True, eq=False)
class FliteSynthesis:
    """What flite produced for one text.

    Attributes:
        text: the text synthesized.
        samples: 16-bit PCM, mono. Shape: ``(samples,)``.
        sample_rate: the wave's rate (16000 Hz for awb and rms).
        words: one :class:`FliteWord` per whitespace-separated input word.
        voice: ``"awb"`` or ``"rms"``.
        segments: every segment, pauses included, contiguous from sample 0
            to the end of the wave.
        duration_stretch, f0_mean, f0_stddev: the parameters used (None:
            the voice's own).
    """

    text: str
    samples: np.ndarray
    sample_rate: int
    words: tuple[FliteWord, ...]
    voice: str
    segments: tuple[FlitePhone, ...] = ()
    duration_stretch: float = 1.0
    f0_mean: float | None = None
    f0_stddev: float | None = None

    @property
    def duration(self) -> float:
        return len(self.samples) / self.sample_rate


# ----------------------------------------------------------------- the library


def _library_path(name: str) -> str:
    folder = os.environ.get(LIB_DIR_ENV)
    return os.path.join(folder, name) if folder else name


class _Flite:
    """The process's one flite (its voices and their features are global)."""

    def __init__(self) -> None:
        self.lock = threading.Lock()
        self.lib: ctypes.CDLL | None = None
        self.libc: ctypes.CDLL | None = None
        self.load_error: str | None = None
        self.voices: dict[str, ctypes._Pointer] = {}
        self.voice_errors: dict[str, str] = {}

    def _load(self) -> ctypes.CDLL:
        if self.lib is not None:
            return self.lib
        if self.load_error is not None:
            raise SynthesisError(self.load_error)
        loaded = []
        for name in _DEPENDENCIES:
            path = _library_path(name)
            try:
                loaded.append(ctypes.CDLL(path, mode=ctypes.RTLD_GLOBAL))
            except OSError as error:
                where = (
                    f"in {os.environ[LIB_DIR_ENV]} (from {LIB_DIR_ENV})"
                    if os.environ.get(LIB_DIR_ENV)
                    else "on this system"
                )
                self.load_error = (
                    f"the flite library {name} is not available {where}: {error}; "
                    "install it with `apt-get install libflite1`, or unpack the "
                    f"libflite1 .deb with `dpkg -x` and point {LIB_DIR_ENV} at its "
                    "usr/lib/x86_64-linux-gnu folder"
                )
                raise SynthesisError(self.load_error) from None
        lib = loaded[0]
        try:
            for function, (argtypes, restype) in _SIGNATURES.items():
                getattr(lib, function).argtypes = argtypes
                getattr(lib, function).restype = restype
        except AttributeError as error:
            self.load_error = f"{lib._name} is not flite 2.2 ({error})"
            raise SynthesisError(self.load_error) from None
        lib.flite_init()
        self.libc = ctypes.CDLL(None)
        self.libc.srand.argtypes = [ctypes.c_uint]
        self.libc.srand.restype = None
        self.lib = lib
        return lib

    def voice(self, name: str) -> ctypes._Pointer:
        """The registered voice ``name`` (one of :data:`ALLOWED_VOICES`)."""
        if name not in ALLOWED_VOICES:  # never load anything else
            raise SynthesisError(f"flite voice {name!r} is not allowed")
        if name in self.voices:
            return self.voices[name]
        if name in self.voice_errors:
            raise SynthesisError(self.voice_errors[name])
        self._load()
        library = _VOICE_LIBRARIES[name]
        try:
            voice_lib = ctypes.CDLL(_library_path(library), mode=ctypes.RTLD_GLOBAL)
            register = getattr(voice_lib, f"register_cmu_us_{name}")
        except (OSError, AttributeError) as error:
            self.voice_errors[name] = (
                f"the flite voice {name!r} ({library}) cannot be loaded: "
                f"{error}; install it with `apt-get install libflite1`"
            )
            raise SynthesisError(self.voice_errors[name]) from None
        register.argtypes = [ctypes.c_char_p]
        register.restype = ctypes.POINTER(_Voice)
        voice = register(None)
        if not voice or not voice.contents.features:
            self.voice_errors[name] = f"flite failed to register the voice {name!r}"
            raise SynthesisError(self.voice_errors[name])
        self.voices[name] = voice
        return voice

    def available(self, voices: tuple[str, ...]) -> bool:
        with self.lock:
            try:
                for name in voices:
                    self.voice(name)
            except SynthesisError:
                return False
        return True

    def synthesize(
        self,
        text: str,
        words: list[str],
        voice_name: str,
        duration_stretch: float,
        f0_mean: float | None,
        f0_stddev: float | None,
    ) -> FliteSynthesis:
        with self.lock:
            voice = self.voice(voice_name)
            lib = self.lib
            assert lib is not None and self.libc is not None
            features = voice.contents.features
            lib.flite_feat_set_float(features, b"duration_stretch", duration_stretch)
            for feature, value in ((b"int_f0_target_mean", f0_mean), (b"int_f0_target_stddev", f0_stddev)):
                if value is None:
                    lib.flite_feat_remove(features, feature)
                else:
                    lib.flite_feat_set_float(features, feature, value)
            self.libc.srand(1)
            utterance = lib.flite_synth_text(" ".join(words).encode("ascii"), voice)
            if not utterance:
                raise SynthesisError(f"flite failed to synthesize {text!r}")
            try:
                samples, sample_rate = _wave(lib, utterance, text)
                segments, owners, tokens, spoken = _segments(lib, utterance, text)
            finally:
                lib.delete_utterance(utterance)
        timed = _timings(segments, owners, tokens, spoken, words, samples, sample_rate, text)
        return FliteSynthesis(
            text=text,
            samples=samples,
            sample_rate=sample_rate,
            words=timed[0],
            voice=voice_name,
            segments=timed[1],
            duration_stretch=duration_stretch,
            f0_mean=f0_mean,
            f0_stddev=f0_stddev,
        )


def _wave(lib: ctypes.CDLL, utterance: int, text: str) -> tuple[np.ndarray, int]:
    pointer = lib.utt_wave(utterance)
    if not pointer:
        raise SynthesisError(f"flite produced no wave for {text!r}")
    wave = pointer.contents
    if wave.num_channels != 1 or wave.sample_rate <= 0 or wave.num_samples <= 0 or not wave.samples:
        raise SynthesisError(
            f"flite produced an unusable wave for {text!r} ({wave.num_samples} "
            f"samples, {wave.num_channels} channels at {wave.sample_rate} Hz)"
        )
    samples = np.ctypeslib.as_array(wave.samples, shape=(wave.num_samples,)).astype(np.int16)
    return samples, int(wave.sample_rate)


def _segments(
    lib: ctypes.CDLL, utterance: int, text: str
) -> tuple[list[tuple[str, float]], list[int], list[str], list[list[str]]]:
    """Each segment's name and end (seconds), the index of the token it
    belongs to (-1: none, a pause), the tokens' names and the words each
    token was spoken as."""
    token_index: dict[int, int] = {}
    tokens: list[str] = []
    relation = lib.utt_relation(utterance, b"Token")
    item = lib.relation_head(relation) if relation else None
    while item:
        token_index[item] = len(tokens)
        tokens.append(_string(lib, item, b"name"))
        item = lib.item_next(item)

    segments: list[tuple[str, float]] = []
    owners: list[int] = []
    spoken: list[list[str]] = [[] for _ in tokens]
    last_word = None
    relation = lib.utt_relation(utterance, b"Segment")
    item = lib.relation_head(relation) if relation else None
    while item:
        if not lib.item_feat_present(item, b"end"):
            raise SynthesisError(f"flite gave a segment without an end time for {text!r}")
        segments.append((_string(lib, item, b"name"), float(lib.item_feat_float(item, b"end"))))
        token = lib.path_to_item(item, _TOKEN_PATH)
        owner = token_index.get(token, -1) if token else -1
        owners.append(owner)
        word = lib.path_to_item(item, _WORD_PATH) if owner >= 0 else None
        if word and word != last_word:
            spoken[owner].append(_string(lib, word, b"name"))
            last_word = word
        item = lib.item_next(item)
    if not segments:
        raise SynthesisError(f"flite produced no segments for {text!r}")
    return segments, owners, tokens, spoken


def _string(lib: ctypes.CDLL, item: int, feature: bytes) -> str:
    # item_feat_string on a missing feature makes flite exit the process
    if not lib.item_feat_present(item, feature):
        return ""
    value = lib.item_feat_string(item, feature)
    return value.decode("ascii", "replace") if value is not None else ""


def _timings(
    segments: list[tuple[str, float]],
    owners: list[int],
    tokens: list[str],
    spoken: list[list[str]],
    words: list[str],
    samples: np.ndarray,
    sample_rate: int,
    text: str,
) -> tuple[tuple[FliteWord, ...], tuple[FlitePhone, ...]]:
    """Segments in samples and the words they make up; checks that flite's
    tokens are the input words, one to one, and that the times fit the wave."""
    if tokens != words:
        raise SynthesisError(
            f"flite read {text!r} as the words {tokens}, not {words}: its word segmentation does not match the input"
        )
    total = len(samples)
    last_end = segments[-1][1] * sample_rate
    frame = 0.005 * sample_rate
    if not total - 2 * frame <= last_end <= total + 2 * frame:
        raise SynthesisError(
            f"flite's segment times ({last_end / sample_rate:.3f} s) do not fit its "
            f"wave ({total / sample_rate:.3f} s) for {text!r}"
        )
    timed: list[FlitePhone] = []
    per_word: list[list[FlitePhone]] = [[] for _ in words]
    start = 0
    previous_owner = -1
    for index, ((name, end_seconds), owner) in enumerate(zip(segments, owners)):
        end = total if index == len(segments) - 1 else min(int(round(end_seconds * sample_rate)), total)
        if end < start:
            raise SynthesisError(f"flite's segment times go backwards in {text!r}")
        segment = FlitePhone(name, start, end)
        timed.append(segment)
        if name not in SILENCE:  # a pause is no word's phone
            if owner < 0:
                raise SynthesisError(f"flite spoke the phone {name!r} of {text!r} for no input word")
            if owner < previous_owner:
                raise SynthesisError(f"flite spoke the words of {text!r} out of order")
            if name not in FLITE_TO_ARPABET:
                raise SynthesisError(f"flite produced the unknown phone {name!r} for {text!r}")
            per_word[owner].append(segment)
            previous_owner = owner
        start = end
    records = []
    for word, phones, said in zip(words, per_word, spoken):
        if not phones or phones[-1].end <= phones[0].start:
            raise SynthesisError(f"flite spoke no phone for the word {word!r} of {text!r}")
        records.append(FliteWord(word, phones[0].start, phones[-1].end, tuple(phones), tuple(said)))
    return tuple(records), tuple(timed)


_FLITE = _Flite()


# ------------------------------------------------------------------- the API


def _canonical_voice(voice: str) -> str:
    if not isinstance(voice, str) or not voice.strip():
        raise SynthesisError(f"voice must be one of {', '.join(ALLOWED_VOICES)}, got {voice!r}")
    name = voice.strip().lower()
    short = name.removeprefix("cmu_us_")
    if short in ALLOWED_VOICES:
        return short
    if name in RESERVED_VOICES or any(stem in name for stem in _RESERVED_STEMS):
        raise SynthesisError(
            f"the flite voice {voice!r} is reserved for the independent evaluation of "
            "this project and must not be used for training or development "
            f"(reserved: {', '.join(RESERVED_VOICES)}; allowed: "
            f"{', '.join(ALLOWED_VOICES)})"
        )
    raise SynthesisError(f"unknown flite voice {voice!r}; allowed: {', '.join(ALLOWED_VOICES)}")


def _check_float(name: str, value: float, low: float, high: float) -> float:
    if isinstance(value, bool) or not isinstance(value, (int, float, np.integer, np.floating)):
        raise SynthesisError(f"{name} must be a number in [{low:g}, {high:g}], got {value!r}")
    value = float(value)
    if not math.isfinite(value) or not low <= value <= high:
        raise SynthesisError(f"{name} must be a number in [{low:g}, {high:g}], got {value!r}")
    return value


def flite_available(voice: str | None = None) -> bool:
    """True when flite and ``voice`` (default: every allowed voice) can be
    loaded in this process. A reserved or unknown voice is never available."""
    try:
        voices = ALLOWED_VOICES if voice is None else (_canonical_voice(voice),)
    except SynthesisError:
        return False
    return _FLITE.available(voices)


def synthesize(
    text: str,
    voice: str = "rms",
    *,
    duration_stretch: float = 1.0,
    f0_mean: float | None = None,
    f0_stddev: float | None = None,
) -> FliteSynthesis:
    """Synthesize ``text`` with flite and time its words and phones.

    Args:
        text: plain words separated by whitespace, as flite should say them
            (lowercase, no digits or punctuation: those would be read out
            as several words or dropped, and the words would no longer
            match); ASCII only.
        voice: ``"rms"`` (male, US) or ``"awb"`` (male, Scottish English);
            ``"cmu_us_rms"`` also works.
        duration_stretch: multiplies every phone's duration (1.5: 50 %
            slower), in :data:`DURATION_STRETCH_RANGE`.
        f0_mean: the mean pitch in Hz (None: the voice's own, about
            130 Hz for awb), in :data:`F0_MEAN_RANGE`; awb only (see
            :data:`F0_VOICES`).
        f0_stddev: the pitch's standard deviation in Hz (None: the
            voice's own), in :data:`F0_STDDEV_RANGE`; awb only.

    Returns:
        a :class:`FliteSynthesis`: 16-bit samples at the voice's rate and one
        timed record per input word.

    Raises:
        SynthesisError: the voice is reserved or unknown, flite is missing,
            a parameter is out of range or not supported by the voice, the
            text is empty or not ASCII, or flite's words are not the input
            words one to one.
    """
    name = _canonical_voice(voice)
    if not isinstance(text, str) or not text.strip():
        raise SynthesisError(f"text to synthesize must be a non-empty string, got {text!r}")
    if not text.isascii() or "\0" in text:
        raise SynthesisError(f"flite needs ASCII text without NUL characters, got {text!r}")
    duration_stretch = _check_float("duration_stretch", duration_stretch, *DURATION_STRETCH_RANGE)
    if f0_mean is not None:
        f0_mean = _check_float("f0_mean", f0_mean, *F0_MEAN_RANGE)
    if f0_stddev is not None:
        f0_stddev = _check_float("f0_stddev", f0_stddev, *F0_STDDEV_RANGE)
    if (f0_mean is not None or f0_stddev is not None) and name not in F0_VOICES:
        raise SynthesisError(
            f"flite's {name} voice ignores f0_mean and f0_stddev (its SPAM F0 model "
            f"overrides them); pitch can be set for: {', '.join(F0_VOICES)}"
        )
    words = text.split()
    return _FLITE.synthesize(text, words, name, duration_stretch, f0_mean, f0_stddev)
