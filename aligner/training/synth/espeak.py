"""A ctypes binding to the espeak-ng speech synthesizer (``libespeak-ng.so.1``)
that returns the audio together with the synthesizer's own word and phoneme
events, and turns those events into exact word and phone intervals.

espeak-ng keeps all of its state in globals: one process holds one
synthesizer, initialised on first use (synchronous mode, phoneme events on)
and guarded by a lock. To synthesize in parallel use a process pool, one
synthesizer per worker.

How espeak reports timing (measured on espeak-ng 1.51, see
``tests/test_synth.py``): each event carries the sample at which it happens
(the event's ``sample`` field, at the library rate of 22050 Hz; its
``audio_position`` is the same in whole milliseconds). A ``WORD`` event is
emitted where the synthesizer starts generating a word, *before* any silence
that belongs to it (the closure of a word-initial stop, a short inter-word
gap); the word's first ``PHONEME`` event comes where its first phone starts
sounding (for a stop: the burst). A stop closure inside a word falls at the
end of the previous phone's event interval. Pauses are phonemes whose names
start with ``_`` (``_:`` at a comma or full stop, ``_`` a short one, often of
zero length). Silence in espeak's output is digital zero, which
:func:`word_timings` uses to cut closures and gaps out of phones. Measured
over 300 sentences and random voices: the 60 s of pause intervals hold not
one non-zero sample, and sound resumes within 5 samples (0.2 ms) of the
phoneme event after a pause.

Two quirks are handled here: espeak merges unstressed function words with
the next word into one word event ("in the"), so :func:`synthesize` sends a
zero-width space after each word; and espeak's output depends slightly on
what the process synthesized before (its pitch jitter keeps running, moving
durations by up to a pitch period), so byte-identical output needs a fresh
process (:func:`aligner.training.synth.corpus.make_corpus` forks one per batch). The
timings are exact either way.
"""

from __future__ import annotations

import ctypes
import ctypes.util
import os
import re
import threading
from dataclasses import dataclass

import numpy as np

from ...errors import AlignerError

__all__ = [
    "Event",
    "Segment",
    "Synthesis",
    "SynthesisError",
    "TimedWord",
    "espeak_available",
    "espeak_version",
    "synthesize",
    "word_timings",
]


class SynthesisError(AlignerError):
    """espeak-ng is missing or failed, a voice is unknown, a parameter is out
    of range, or the events cannot be matched to the words of the text."""


# ------------------------------------------------------------ C declarations

_AUDIO_OUTPUT_SYNCHRONOUS = 2
_INITIALIZE_PHONEME_EVENTS = 0x0001
_INITIALIZE_DONT_EXIT = 0x8000
_CHARS_UTF8 = 1
_POS_CHARACTER = 1
_PARAMETERS = {"rate": 1, "volume": 2, "pitch": 3, "range": 4, "wordgap": 7}

#: espeak_EVENT_TYPE values and the names :class:`Event` uses for them.
_EVENT_KINDS = {
    1: "word",
    2: "sentence",
    3: "mark",
    4: "play",
    5: "end",
    6: "msg_terminated",
    7: "phoneme",
    8: "samplerate",
}

#: Words per minute espeak-ng accepts (espeakRATE_MINIMUM / MAXIMUM).
RATE_RANGE = (80, 450)


class _EventId(ctypes.Union):
    _fields_ = [("number", ctypes.c_int), ("name", ctypes.c_char_p), ("string", ctypes.c_char * 8)]


class _Event(ctypes.Structure):
    _fields_ = [
        ("type", ctypes.c_int),
        ("unique_identifier", ctypes.c_uint),
        ("text_position", ctypes.c_int),
        ("length", ctypes.c_int),
        ("audio_position", ctypes.c_int),
        ("sample", ctypes.c_int),
        ("user_data", ctypes.c_void_p),
        ("id", _EventId),
    ]


_CALLBACK = ctypes.CFUNCTYPE(ctypes.c_int, ctypes.POINTER(ctypes.c_short), ctypes.c_int, ctypes.POINTER(_Event))


# ------------------------------------------------------------------- records


@dataclass(frozen=True)
class Event:
    """One synthesizer event.

    Attributes:
        kind: ``"word"``, ``"sentence"``, ``"phoneme"``, ``"end"`` (end of a
            clause or sentence), ``"msg_terminated"``, ``"mark"`` or ``"play"``.
        sample: where it happens in the output, in samples at the library
            rate.
        text_position: 0-based character offset into the text (word events:
            the first character of the spoken word).
        length: characters of the text the word event covers (0 otherwise).
        name: the phoneme mnemonic (``"aI"``, ``"_:"``) of a phoneme event;
            ``""`` for other events.
        number: word / sentence number of a word / sentence event, else 0.
    """

    kind: str
    sample: int
    text_position: int
    length: int = 0
    name: str = ""
    number: int = 0

    @property
    def is_pause(self) -> bool:
        """A pause phoneme (``_``, ``_:``, ``_!``...): silence, not a phone."""
        return self.kind == "phoneme" and self.name.startswith("_")


@dataclass(frozen=True, eq=False)
class Synthesis:
    """What espeak-ng produced for one text.

    Attributes:
        text: the text synthesized.
        samples: 16-bit PCM. Shape: ``(samples,)``.
        sample_rate: the library's rate (22050 Hz).
        events: all events, in order.
        voice: the voice (``"en-us+f3"``).
        rate, pitch, pitch_range, word_gap: the parameters used.
    """

    text: str
    samples: np.ndarray
    sample_rate: int
    events: tuple[Event, ...]
    voice: str
    rate: int
    pitch: int
    pitch_range: int
    word_gap: int = 0

    @property
    def duration(self) -> float:
        return len(self.samples) / self.sample_rate


@dataclass(frozen=True)
class Segment:
    """A labelled interval in samples: ``[start, end)``."""

    label: str
    start: int
    end: int


@dataclass(frozen=True)
class TimedWord:
    """One whitespace-separated word of the text with its interval.

    Attributes:
        text: the word as written (``"$5,"``).
        start, end: samples, ``[start, end)``: from the start of its first
            audible phone to the end of its last one.
        phones: its audible phones in order, pauses and silence excluded.
        spoken: how many espeak words it was spoken as (``"1999"``: 4).
    """

    text: str
    start: int
    end: int
    phones: tuple[Segment, ...]
    spoken: int = 1


# ----------------------------------------------------------------- the library


def _library_candidates() -> list[tuple[str, bytes | None]]:
    """Libraries to try, each with the folder holding its ``espeak-ng-data``
    (None: the library's built-in location).

    The pinned ``espeakng-loader`` package comes first (a pip dependency,
    espeak-ng 1.52 with its data): phone labels must be those the packaged
    model was trained with. ``ALIGNER_ESPEAK_LIBRARY`` names another
    library (its data in the default location, or ``ESPEAK_DATA_PATH``);
    the system's ``libespeak-ng.so.1`` is the fallback.
    """
    candidates: list[tuple[str, bytes | None]] = []
    override = os.environ.get("ALIGNER_ESPEAK_LIBRARY")
    if override:
        data = os.environ.get("ESPEAK_DATA_PATH")
        return [(override, os.fsencode(data) if data else None)]
    try:
        import espeakng_loader
    except ImportError:
        pass
    else:
        library = espeakng_loader.get_library_path()
        data_dir = os.path.dirname(espeakng_loader.get_data_path())
        candidates.append((library, os.fsencode(data_dir)))
    for name in ("libespeak-ng.so.1", "libespeak-ng.so", ctypes.util.find_library("espeak-ng")):
        if name:
            candidates.append((name, None))
    return candidates


class _Espeak:
    """The process's one synthesizer (espeak-ng state is global)."""

    def __init__(self) -> None:
        self.lock = threading.Lock()
        self.lib: ctypes.CDLL | None = None
        self.sample_rate = 0
        self.load_error: str | None = None
        self._chunks: list[np.ndarray] = []
        self._events: list[Event] = []
        self._callback = _CALLBACK(self._on_audio)  # kept referenced: espeak holds the pointer

    def _load(self) -> ctypes.CDLL:
        if self.lib is not None:
            return self.lib
        if self.load_error is not None:
            raise SynthesisError(self.load_error)
        lib, data_dir = None, None
        for name, data in _library_candidates():
            try:
                lib = ctypes.CDLL(name)
            except OSError:
                continue
            data_dir = data
            break
        if lib is None:
            self.load_error = (
                "the espeak-ng library (libespeak-ng.so.1) is not installed; "
                "install it with `apt-get install libespeak-ng1 espeak-ng-data`"
            )
            raise SynthesisError(self.load_error)
        lib.espeak_Initialize.argtypes = [ctypes.c_int, ctypes.c_int, ctypes.c_char_p, ctypes.c_int]
        lib.espeak_Initialize.restype = ctypes.c_int
        lib.espeak_SetSynthCallback.argtypes = [_CALLBACK]
        lib.espeak_SetSynthCallback.restype = None
        lib.espeak_SetVoiceByName.argtypes = [ctypes.c_char_p]
        lib.espeak_SetVoiceByName.restype = ctypes.c_int
        lib.espeak_SetParameter.argtypes = [ctypes.c_int, ctypes.c_int, ctypes.c_int]
        lib.espeak_SetParameter.restype = ctypes.c_int
        lib.espeak_Synth.argtypes = [
            ctypes.c_void_p,
            ctypes.c_size_t,
            ctypes.c_uint,
            ctypes.c_int,
            ctypes.c_uint,
            ctypes.c_uint,
            ctypes.c_void_p,
            ctypes.c_void_p,
        ]
        lib.espeak_Synth.restype = ctypes.c_int
        lib.espeak_Synchronize.restype = ctypes.c_int
        lib.espeak_Info.argtypes = [ctypes.POINTER(ctypes.c_char_p)]
        lib.espeak_Info.restype = ctypes.c_char_p
        rate = lib.espeak_Initialize(
            _AUDIO_OUTPUT_SYNCHRONOUS, 0, data_dir, _INITIALIZE_PHONEME_EVENTS | _INITIALIZE_DONT_EXIT
        )
        if rate <= 0:
            self.load_error = "espeak-ng failed to initialise (is its data, espeak-ng-data, installed?)"
            raise SynthesisError(self.load_error)
        lib.espeak_SetSynthCallback(self._callback)
        self.lib = lib
        self.sample_rate = int(rate)
        return lib

    def _on_audio(self, wav: ctypes._Pointer[ctypes.c_short], count: int, events: ctypes._Pointer[_Event]) -> int:
        if wav and count > 0:
            self._chunks.append(np.ctypeslib.as_array(wav, shape=(count,)).astype(np.int16))
        index = 0
        while events and events[index].type != 0:
            raw = events[index]
            kind = _EVENT_KINDS.get(raw.type, str(raw.type))
            name = ""
            number = 0
            if kind == "phoneme":
                name = bytes(raw.id.string).split(b"\0", 1)[0].decode("utf-8", "replace")
            elif kind in ("word", "sentence", "end"):
                number = int(raw.id.number)
            if kind != "samplerate":
                self._events.append(
                    Event(
                        kind=kind,
                        sample=int(raw.sample),
                        text_position=max(int(raw.text_position) - 1, 0),
                        length=int(raw.length),
                        name=name,
                        number=number,
                    )
                )
            index += 1
        return 0

    def version(self) -> str:
        with self.lock:
            lib = self._load()
            return lib.espeak_Info(None).decode("utf-8", "replace")

    def synthesize(
        self, text: str, voice: str, rate: int, pitch: int, pitch_range: int, word_gap: int, split_words: bool
    ) -> Synthesis:
        spoken, origin = _separate_words(text) if split_words else (text, list(range(len(text))))
        with self.lock:
            lib = self._load()
            if lib.espeak_SetVoiceByName(voice.encode("utf-8")) != 0:
                raise SynthesisError(
                    f"espeak-ng has no voice {voice!r} "
                    "(list them with `espeak-ng --voices=en`; variants: "
                    "`espeak-ng --voices=variant`)"
                )
            for name, value in (
                ("rate", rate),
                ("pitch", pitch),
                ("range", pitch_range),
                ("wordgap", word_gap),
                ("volume", 100),
            ):
                if lib.espeak_SetParameter(_PARAMETERS[name], int(value), 0) != 0:
                    raise SynthesisError(f"espeak-ng rejected {name}={value}")
            data = spoken.encode("utf-8") + b"\0"
            self._chunks, self._events = [], []
            try:
                status = lib.espeak_Synth(data, len(data), 0, _POS_CHARACTER, 0, _CHARS_UTF8, None, None)
                lib.espeak_Synchronize()
                if status != 0:
                    raise SynthesisError(f"espeak-ng failed to synthesize {text!r} (error {status})")
                samples = np.concatenate(self._chunks) if self._chunks else np.zeros(0, dtype=np.int16)
                events = tuple(
                    _replace_position(e, origin[min(e.text_position, len(origin) - 1)]) for e in self._events
                )
            finally:
                self._chunks, self._events = [], []
        return Synthesis(
            text=text,
            samples=samples,
            sample_rate=self.sample_rate,
            events=events,
            voice=voice,
            rate=int(rate),
            pitch=int(pitch),
            pitch_range=int(pitch_range),
            word_gap=int(word_gap),
        )


_ESPEAK = _Espeak()

#: Inserted after words for synthesis: stops espeak from merging function
#: words with the next word ("in the", "of the", "for a" would otherwise make
#: one word event, sometimes with a wrong text position). Measured on 400
#: sentences: no missing word events (80 sentences had some without it),
#: durations change by 0.4 % on average.
_WORD_BREAK = "\u200b"
_BREAK_AFTER = re.compile(r"(?<=[A-Za-z0-9])(?=\s)")


def _separate_words(text: str) -> tuple[str, list[int]]:
    """``text`` with :data:`_WORD_BREAK` after every word that ends in a
    letter or digit (not after punctuation, which would change how espeak
    reads it), and for each of its characters the index in ``text`` it came
    from (a break maps to the whitespace after it)."""
    pieces = _BREAK_AFTER.split(text)
    spoken = _WORD_BREAK.join(pieces)
    origin: list[int] = []
    position = 0
    for k, piece in enumerate(pieces):
        if k:
            origin.append(position)
        origin.extend(range(position, position + len(piece)))
        position += len(piece)
    origin.append(position)  # one past the end (final events)
    return spoken, origin


def _replace_position(event: Event, position: int) -> Event:
    if position == event.text_position:
        return event
    return Event(
        kind=event.kind,
        sample=event.sample,
        text_position=position,
        length=event.length,
        name=event.name,
        number=event.number,
    )


def espeak_available() -> bool:
    """True when libespeak-ng can be loaded and initialised in this process."""
    try:
        _ESPEAK.version()
    except SynthesisError:
        return False
    return True


def espeak_version() -> str:
    """The library's version string (``"1.51"``).

    Raises:
        SynthesisError: the library is not installed.
    """
    return _ESPEAK.version()


def _check_int(name: str, value: int, low: int, high: int) -> int:
    if isinstance(value, bool) or not isinstance(value, (int, np.integer)) or not low <= value <= high:
        raise SynthesisError(f"{name} must be an integer in [{low}, {high}], got {value!r}")
    return int(value)


def synthesize(
    text: str,
    voice: str = "en-us",
    *,
    rate: int = 175,
    pitch: int = 50,
    pitch_range: int = 50,
    word_gap: int = 0,
    split_words: bool = True,
) -> Synthesis:
    """Synthesize ``text`` with espeak-ng and collect its events.

    Args:
        text: what to say (UTF-8; plain text, not SSML).
        voice: an espeak-ng voice, optionally with a variant: ``"en-us"``,
            ``"en-gb-x-rp+f3"``.
        rate: speaking rate in words per minute, 80..450.
        pitch: base pitch, 0..100 (espeak's default 50).
        pitch_range: pitch range (intonation), 0..100 (default 50).
        word_gap: extra pause between words in units of 10 ms, 0..100.
        split_words: give every written word its own word event: a
            zero-width space is sent after each word ending in a letter or
            digit, so espeak does not merge unstressed words with the next
            one ("in the"). Event positions always refer to ``text``.

    Returns:
        a :class:`Synthesis`: 16-bit samples at the library rate (22050 Hz)
        and every event.

    Raises:
        SynthesisError: the library is missing, the voice is unknown, a
            parameter is out of range, the text is empty, or synthesis fails.
    """
    if not isinstance(text, str) or not text.strip():
        raise SynthesisError(f"text to synthesize must be a non-empty string, got {text!r}")
    if "\0" in text:
        raise SynthesisError("text to synthesize must not contain NUL characters")
    if not isinstance(voice, str) or not voice.strip():
        raise SynthesisError(f"voice must be a non-empty string such as 'en-us', got {voice!r}")
    rate = _check_int("rate", rate, *RATE_RANGE)
    pitch = _check_int("pitch", pitch, 0, 100)
    pitch_range = _check_int("pitch_range", pitch_range, 0, 100)
    word_gap = _check_int("word_gap", word_gap, 0, 100)
    return _ESPEAK.synthesize(text, voice.strip(), rate, pitch, pitch_range, word_gap, bool(split_words))


# ------------------------------------------------------------------- timings

_TOKEN = re.compile(r"\S+")


def _token_index(position: int, spans: list[tuple[int, int]], current: int) -> int:
    """Index of the whitespace token a word event at ``position`` belongs to:
    the token containing it, or the next one when it points at whitespace.
    Never goes back before ``current``."""
    for index in range(max(current, 0), len(spans)):
        if position < spans[index][1]:
            return index
    return len(spans) - 1


def _trim(start: int, end: int, silent: np.ndarray, min_run: int) -> tuple[int, int]:
    """Shrink ``[start, end)`` past a leading / trailing run of digital
    silence at least ``min_run`` samples long."""
    if end <= start:
        return start, start
    loud = np.flatnonzero(~silent[start:end])
    if loud.size == 0:
        return start, start
    first, last = start + int(loud[0]), start + int(loud[-1]) + 1
    if first - start >= min_run:
        start = first
    if end - last >= min_run:
        end = last
    return start, end


def word_timings(synthesis: Synthesis, *, min_silence: float = 0.002) -> tuple[TimedWord, ...]:
    """Exact intervals of the whitespace-separated words of ``synthesis.text``
    and of their phones, from espeak's events.

    A phone runs from its phoneme event to the next phoneme event, and never
    past the word event of the next word (where espeak starts generating
    that word, e.g. its stop closure). Runs of digital silence (exact zeros)
    at least ``min_silence`` seconds long at either end of a phone are cut
    off: they are stop closures and inter-word gaps, not sound; a phone that
    is all silence is dropped. A word spans its first to its last audible
    phone. Several spoken words from one written word (``"1999"`` -> four,
    ``"$5"`` -> two) make one :class:`TimedWord`.

    Returns:
        one :class:`TimedWord` per whitespace-separated word, in order.

    Raises:
        SynthesisError: a written word got no word event or no audible phone
            (espeak skipped it, e.g. a lone punctuation mark), or the events
            are out of order.
    """
    text = synthesis.text
    spans = [(m.start(), m.end()) for m in _TOKEN.finditer(text)]
    tokens = [text[a:b] for a, b in spans]
    if not tokens:
        raise SynthesisError("the synthesized text has no words")
    samples = synthesis.samples
    total = len(samples)
    silent = samples == 0
    min_run = max(int(round(min_silence * synthesis.sample_rate)), 1)

    # 1. attach each phoneme event to a token; note where each spoken word starts
    current = -1
    owner: list[int] = []  # token of each phoneme event (-1: pause)
    phonemes: list[Event] = []
    word_starts: list[int] = []  # samples of word events
    spoken = [0] * len(tokens)
    last_sample = 0
    for event in synthesis.events:
        if event.kind == "word" and event.length == 0:
            continue  # espeak emits an empty word event before the final pause
        if event.kind in ("word", "phoneme"):
            if event.sample < last_sample:
                raise SynthesisError(f"espeak events out of order in {text!r}")
            last_sample = event.sample
        if event.kind == "word" and event.length > 0:
            current = _token_index(event.text_position, spans, current)
            spoken[current] += 1
            word_starts.append(event.sample)
        elif event.kind == "phoneme":
            if not event.is_pause and current < 0:
                # espeak loses the sentence's first word event when it drops the
                # word's first phoneme (en-us-nyc: "Humanity" -> j u: m ...)
                current = 0
                spoken[0] += 1
            phonemes.append(event)
            owner.append(-1 if event.is_pause else current)

    # 2. phone intervals
    word_starts_array = np.asarray(word_starts, dtype=np.int64)
    phones: list[list[Segment]] = [[] for _ in tokens]
    for k, event in enumerate(phonemes):
        if owner[k] < 0:
            continue
        start = min(event.sample, total)
        end = phonemes[k + 1].sample if k + 1 < len(phonemes) else total
        following = word_starts_array[word_starts_array > start]
        if following.size:
            end = min(end, int(following[0]))
        start, end = _trim(start, min(end, total), silent, min_run)
        if end > start:
            phones[owner[k]].append(Segment(event.name, start, end))

    # 3. words
    words = []
    for index, token in enumerate(tokens):
        if not phones[index]:
            why = "no word event" if spoken[index] == 0 else "no audible phone"
            raise SynthesisError(
                f"espeak spoke word {index + 1} ({token!r}) of {text!r} with {why}; its timing is unknown"
            )
        words.append(
            TimedWord(
                text=token,
                start=phones[index][0].start,
                end=phones[index][-1].end,
                phones=tuple(phones[index]),
                spoken=spoken[index],
            )
        )
    return tuple(words)
