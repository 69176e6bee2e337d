"""English phones: espeak-ng's phonemes mapped to ARPAbet, and a
phonemizer for transcripts that uses the synthesizer the packaged model
was trained on.

The packaged model predicts the 39 stress-free ARPAbet phones of the CMU
Pronouncing Dictionary (the symbols of the Montreal Forced Aligner's
``english_us_arpa`` model and of most American English phone-level
annotation). Its training labels are espeak-ng's own phoneme events,
mapped by :func:`arpabet`; a user's transcript is phonemized by the same
library through :func:`phonemize`, so training and alignment agree on
every pronunciation espeak-ng knows.
"""

from __future__ import annotations

import re
import threading
from collections.abc import Sequence
from functools import lru_cache

from .errors import AlignerError

__all__ = ["ARPABET", "STOPS", "PhonemizerError", "arpabet", "attach_closures", "map_segments", "phonemize"]

#: The 39 ARPAbet phones (no stress digits), in CMUdict's order.
ARPABET: tuple[str, ...] = (
    "AA",
    "AE",
    "AH",
    "AO",
    "AW",
    "AY",
    "B",
    "CH",
    "D",
    "DH",
    "EH",
    "ER",
    "EY",
    "F",
    "G",
    "HH",
    "IH",
    "IY",
    "JH",
    "K",
    "L",
    "M",
    "N",
    "NG",
    "OW",
    "OY",
    "P",
    "R",
    "S",
    "SH",
    "T",
    "TH",
    "UH",
    "UW",
    "V",
    "W",
    "Y",
    "Z",
    "ZH",
)


#: Longest silent gap before a stop that is taken as its closure (seconds).
MAX_CLOSURE = 0.12
#: Stops and affricates: their silent closure belongs to them.
STOPS = frozenset({"B", "D", "G", "P", "T", "K", "CH", "JH"})


def attach_closures(words: list[list[tuple[str, int, int]]], limit: int) -> list[list[tuple[str, int, int]]]:
    """Give the silent closure before a stop to the stop.

    ``words`` holds each word's phone intervals ``(label, start, end)``
    (ARPAbet or espeak-ng labels), in time order. A stop (ARPAbet
    :data:`STOPS`, or an espeak phoneme mapping to one) that follows another
    phone after a silent gap of at most ``limit`` samples starts where that
    phone ends: phoneticians segment a stop from the onset of its closure,
    and a word beginning with a stop after speech starts there too. After a
    longer pause (or at the start) the closure cannot be told from the
    pause and the stop starts at its burst. Returns new lists.
    """
    out: list[list[tuple[str, int, int]]] = []
    previous_end: int | None = None
    for phones in words:
        fixed = []
        for label, start, end in phones:
            mapped = arpabet(label) if label not in ARPABET else (label,)
            if previous_end is not None and mapped and mapped[0] in STOPS and 0 < start - previous_end <= limit:
                start = previous_end
            fixed.append((label, start, end))
            previous_end = end
        out.append(fixed)
    return out


class PhonemizerError(AlignerError):
    """A transcript could not be phonemized (espeak-ng missing or failing)."""


# espeak-ng English phoneme (stress marks removed) -> ARPAbet. Two phones
# for r-coloured vowels and triphthongs; their interval is split evenly.
_RHOTIC = {
    "A@": ("AA", "R"),
    "O@": ("AO", "R"),
    "o@": ("AO", "R"),
    "e@": ("EH", "R"),
    "i@3": ("IH", "R"),
    "U@": ("UH", "R"),
    "aI@": ("AY", "ER"),
    "aI3": ("AY", "ER"),
    "i@": ("IY", "AH"),
}
_NON_RHOTIC = {
    "A@": ("AA",),
    "O@": ("AO",),
    "o@": ("AO",),
    "e@": ("EH",),
    "i@3": ("IH", "AH"),
    "U@": ("UH", "AH"),
    "aI@": ("AY", "AH"),
    "aI3": ("AY", "AH"),
    "i@": ("IH", "AH"),
}
_SINGLE = {
    "@": "AH",
    "@-": "AH",
    "@2": "AH",
    "@5": "AH",
    "@L": "L",
    "3": "ER",
    "3:": "ER",
    "VR": "ER",
    "IR": "ER",
    "UR": "ER",
    "a": "AE",
    "aa": "AE",
    "a#": "AH",
    "A:": "AA",
    "A~": "AA",
    "0": "AA",
    "aI": "AY",
    "aI2": "AY",
    "aU": "AW",
    "O:": "AO",
    "O2": "AO",
    "O": "AO",
    "OI": "OY",
    "oU": "OW",
    "o": "OW",
    "E": "EH",
    "E2": "EH",
    "eI": "EY",
    "e": "EY",
    "I": "IH",
    "I2": "IH",
    "I#": "IH",
    "i": "IY",
    "i:": "IY",
    "U": "UH",
    "u:": "UW",
    "u": "UW",
    "V": "AH",
    "b": "B",
    "d": "D",
    "d#": "D",
    "f": "F",
    "g": "G",
    "h": "HH",
    "C": "HH",
    "j": "Y",
    "k": "K",
    "x": "K",
    "l": "L",
    "l/": "L",
    "l-": "L",
    "m": "M",
    "m-": "M",
    "n": "N",
    "n-": "N",
    "N": "NG",
    "p": "P",
    "r": "R",
    "r-": "R",
    "R": "R",
    "s": "S",
    "S": "SH",
    "t": "T",
    "t#": "T",
    "t2": "T",
    "t[": "T",
    "?": "T",
    "T": "TH",
    "D": "DH",
    "v": "V",
    "w": "W",
    "w#": "W",
    "W": "W",
    "z": "Z",
    "z#": "Z",
    "Z": "ZH",
    "tS": "CH",
    "dZ": "JH",
}
_STRESS = re.compile(r"^[',%=]+")
_TRAILING = re.compile(r"[^A-Za-z@0-9:]+$")


def arpabet(phoneme: str, *, rhotic: bool = True) -> tuple[str, ...]:
    """ARPAbet phones of one espeak-ng English phoneme (stress marks
    ignored); ``()`` for a pause or a marker that is not a phone (``;``).

    Args:
        phoneme: espeak-ng's mnemonic (``"'aI"``, ``"t#"``, ``"@L"``).
        rhotic: r-coloured vowels (``"A@"``) get an ``R`` (American
            English); False for non-rhotic voices.
    """
    name = _STRESS.sub("", phoneme)
    if not name or name.startswith("_"):
        return ()
    for candidate in (name, _TRAILING.sub("", name), name.rstrip("0123456789")):
        table = _RHOTIC if rhotic else _NON_RHOTIC
        if candidate in table:
            return table[candidate]
        if candidate in _SINGLE:
            return (_SINGLE[candidate],)
    return ()


def map_segments(segments: Sequence[tuple[str, int, int]], *, rhotic: bool = True) -> list[tuple[str, int, int]]:
    """espeak phone intervals ``(phoneme, start, end)`` -> ARPAbet intervals.

    A phoneme mapped to two phones has its interval split evenly (an
    r-coloured vowel followed by espeak's own ``r`` keeps only its vowel);
    one mapped to nothing (a marker) is given to the phone before it (or
    the one after it at the start). Intervals stay contiguous where they were.
    """
    out: list[tuple[str, int, int]] = []
    orphan: int | None = None
    mapped = [arpabet(name, rhotic=rhotic) for name, _, _ in segments]
    for index, (_, start, end) in enumerate(segments):
        phones = mapped[index]
        following = next((later for later in mapped[index + 1 :] if later), ())
        if len(phones) > 1 and phones[-1] == "R" and following[:1] == ("R",):
            phones = phones[:-1]  # "Mary": espeak's e@ + r is EH R, not EH R R
        if not phones:
            if out and out[-1][2] == start:
                label, a, _ = out[-1]
                out[-1] = (label, a, end)
            elif orphan is None:
                orphan = start
            continue
        if orphan is not None:
            start, orphan = min(start, orphan), None
        step = (end - start) / len(phones)
        for k, phone in enumerate(phones):
            a = start + round(k * step)
            b = end if k + 1 == len(phones) else start + round((k + 1) * step)
            out.append((phone, a, b))
    return out


_LOCK = threading.Lock()


def phonemize(words: Sequence[str], *, voice: str = "en-us") -> list[tuple[str, ...]]:
    """ARPAbet phones of each word, as espeak-ng says them in this context.

    ``words`` are spoken words in letters (numbers already spelled out by
    the text normalizer); a word may hold several space-separated pieces
    (``"five dollars"``). The whole list is synthesized once so that the
    phones are those espeak-ng produces in running speech (the packaged
    model's training labels); a word espeak cannot time is retried alone,
    and gets ``()`` if it still has no phone.

    Raises:
        PhonemizerError: espeak-ng is not available.
    """
    from .training.synth.espeak import SynthesisError, espeak_available

    if not words:
        return []
    if not espeak_available():
        raise PhonemizerError(
            "phone models need espeak-ng to phonemize transcripts: "
            "pip install espeakng-loader (or apt-get install libespeak-ng1)"
        )
    rhotic = _is_rhotic(voice)
    with _LOCK:
        try:
            return _phonemize_together(tuple(words), voice, rhotic)
        except SynthesisError:
            return [_phonemize_word(word, voice, rhotic) for word in words]


def _is_rhotic(voice: str) -> bool:
    base = voice.split("+", 1)[0]
    return base in ("en-us", "en-gb-scotland")


def _phonemize_together(words: tuple[str, ...], voice: str, rhotic: bool) -> list[tuple[str, ...]]:
    from .training.synth.espeak import synthesize, word_timings

    pieces: list[str] = []
    owner: list[int] = []
    for index, word in enumerate(words):
        for piece in word.split():
            pieces.append(piece)
            owner.append(index)
    result: list[list[str]] = [[] for _ in words]
    if not pieces:
        return [() for _ in words]
    timed = word_timings(synthesize(" ".join(pieces) + ".", voice))
    if len(timed) != len(pieces):
        from .training.synth.espeak import SynthesisError

        raise SynthesisError("word count changed")
    for index, timed_word in zip(owner, timed):
        segments = [(p.label, p.start, p.end) for p in timed_word.phones]
        result[index].extend(label for label, _, _ in map_segments(segments, rhotic=rhotic))
    return [tuple(phones) for phones in result]


@lru_cache(maxsize=50000)
def _phonemize_word(word: str, voice: str, rhotic: bool) -> tuple[str, ...]:
    from .training.synth.espeak import SynthesisError

    if not word.split():
        return ()
    try:
        return _phonemize_together((word,), voice, rhotic)[0]
    except SynthesisError:
        return ()
