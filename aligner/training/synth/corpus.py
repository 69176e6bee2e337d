"""A seeded synthetic English speech corpus with exact word and phone timings.

:func:`make_corpus` writes, in the Montreal Forced Aligner layout::

    OUT/SPEAKER/UTT.wav        16 kHz mono PCM_16
    OUT/SPEAKER/UTT.txt        the transcript as written (punctuation, digits)
    OUT/SPEAKER/UTT.TextGrid   tiers "words" (the whitespace-split words of
                               UTT.txt, one interval each) and "phones"
                               (espeak phoneme mnemonics); "" = silence
    OUT/manifest.jsonl         one JSON object per utterance

Everything is decided up front by :func:`plan_corpus` from the seed (texts,
voices, prosody, augmentations and their random seeds), then rendered,
in batches of 8, each in a freshly forked process (espeak-ng's output
depends slightly on what its process synthesized before); the same
arguments give byte-identical files whatever the number of jobs.

Two splits, ``train`` and ``heldout``, never share a voice, a variant or a
sentence: both partitions depend only on ``split_seed`` (not on ``seed``), so
corpora made with different seeds but the same ``split_seed`` stay disjoint.

Timings come from espeak's events (see :func:`aligner.training.synth.espeak.word_timings`)
and follow every time change (padding, speed perturbation). Convention: a
word runs from the start of its first phone to the end of its last; the
silent closure of a stop after speech (a gap of at most
:data:`aligner.phones.MAX_CLOSURE`) belongs to the stop, as phoneticians
segment it, so a word beginning with a stop after another word starts at
the closure (after a pause, at the burst); espeak's other short gaps
between words are empty intervals. Augmentations
that do not move the direct sound (noise, reverberation, telephone band,
gain) leave them unchanged.
"""

from __future__ import annotations

import hashlib
import json
import math
import multiprocessing
import os
import pickle
import re
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field, replace
from functools import lru_cache
from pathlib import Path
from typing import Any

import numpy as np
import soundfile
import soxr
from scipy import fft as scipy_fft
from scipy import signal

from ...atomic import atomic_path, atomic_write_text
from ...errors import AlignerError, CorpusError
from ...phones import MAX_CLOSURE, attach_closures
from ...records import Alignment, CharSpan, WordSpan
from ...writers import write_alignment
from .espeak import Synthesis, SynthesisError, synthesize, word_timings

__all__ = [
    "BASE_VOICES",
    "CorpusError",
    "CorpusSummary",
    "FEMALE_VARIANTS",
    "MALE_VARIANTS",
    "SAMPLE_RATE",
    "Speech",
    "UtterancePlan",
    "add_noise",
    "dictionary_words",
    "fortune_sentences",
    "make_corpus",
    "pink_noise",
    "plan_corpus",
    "render_speech",
    "render_utterance",
    "reverberate",
    "sentence_split",
    "speech_from_synthesis",
    "split_voices",
    "telephone",
]


#: Sample rate of the written audio (Hz).
SAMPLE_RATE = 16000
SPLITS = ("train", "heldout")

# ------------------------------------------------------------------- voices

#: English espeak-ng voices (``espeak-ng --voices=en``, without mbrola).
BASE_VOICES: tuple[str, ...] = (
    "en",
    "en-us",
    "en-gb-x-rp",
    "en-gb-scotland",
    "en-029",
    "en-gb-x-gbclan",
    "en-gb-x-gbcwmd",
    "en-us-nyc",
)
#: Female voice variants whose silences are digital silence (variants with
#: breath noise or echo, e.g. f2..f5, fill stop closures and pauses with
#: sound, which blurs the phone timings; they are left out).
FEMALE_VARIANTS: tuple[str, ...] = (
    "f1",
    "Andrea",
    "Annie",
    "anika",
    "aunty",
    "belinda",
    "grandma",
    "linda",
    "steph",
    "steph2",
    "steph3",
    "whisperf",
)
#: Male / neutral variants with digital silence ("" = the voice's own default).
MALE_VARIANTS: tuple[str, ...] = (
    "",
    "m1",
    "m3",
    "m4",
    "m5",
    "m6",
    "m7",
    "m8",
    "klatt",
    "klatt2",
    "klatt3",
    "klatt4",
    "klatt5",
    "klatt6",
    "croak",
    "whisper",
    "fast",
    "Alex",
    "Andy",
    "AnxiousAndy",
    "Denis",
    "Diogo",
    "Gene",
    "Gene2",
    "Henrique",
    "Hugo",
    "Jacky",
    "Lee",
    "Mario",
    "Michael",
    "Mike",
    "Nguyen",
    "Storm",
    "Tweaky",
    "adam",
    "antonio",
    "benjamin",
    "boris",
    "caleb",
    "david",
    "ed",
    "edward",
    "edward2",
    "grandpa",
    "gustave",
    "iven",
    "iven2",
    "iven3",
    "iven4",
    "john",
    "kaukovalta",
    "marcelo",
    "max",
    "michel",
    "miguel",
    "norbert",
    "paul",
    "pedro",
    "quincy",
    "rob",
    "robert",
    "sandro",
    "shelby",
    "travis",
    "victor",
    "zac",
)

HELDOUT_BASE_VOICES = 2  # of the 8 base voices
HELDOUT_VARIANT_FRACTION = 0.25  # of each gender's variants
HELDOUT_SENTENCE_PERCENT = 10  # of all sentences (by hash)


def _hash_int(*parts: object) -> int:
    data = "\x1f".join(str(p) for p in parts).encode("utf-8")
    return int.from_bytes(hashlib.sha256(data).digest()[:8], "big")


def _split_off(items: Sequence[str], count: int, split_seed: int, what: str) -> tuple[set[str], set[str]]:
    ranked = sorted(items, key=lambda item: _hash_int("split", split_seed, what, item))
    return set(ranked[count:]), set(ranked[:count])


def split_voices(split_seed: int = 0) -> dict[str, tuple[str, ...]]:
    """The voices (``"voice"`` or ``"voice+variant"``) of each split.

    Two of the base voices and a quarter of the female and of the male
    variants (at least one each) are held out, chosen by ``split_seed``; a
    split's voices are all combinations of its base voices and its variants,
    so train and heldout share neither.

    Returns:
        ``{"train": (...), "heldout": (...)}``, each sorted.
    """
    train, heldout = _split_voices(int(split_seed))
    return {"train": train, "heldout": heldout}


@lru_cache(maxsize=16)
def _split_voices(split_seed: int) -> tuple[tuple[str, ...], tuple[str, ...]]:
    train_voices, held_voices = _split_off(BASE_VOICES, HELDOUT_BASE_VOICES, split_seed, "voice")
    train_variants: set[str] = set()
    held_variants: set[str] = set()
    for name, variants in (("female", FEMALE_VARIANTS), ("male", MALE_VARIANTS)):
        count = max(1, round(len(variants) * HELDOUT_VARIANT_FRACTION))
        train, held = _split_off(variants, count, split_seed, name)
        train_variants |= train
        held_variants |= held

    def combine(voices: set[str], variants: set[str]) -> tuple[str, ...]:
        return tuple(sorted(f"{v}+{x}" if x else v for v in voices for x in variants))

    return combine(train_voices, train_variants), combine(held_voices, held_variants)


def _parse_voice(spec: str) -> tuple[str, str]:
    voice, _, variant = spec.partition("+")
    return voice, variant


def _speaker(spec: str) -> str:
    voice, variant = _parse_voice(spec)
    name = f"{voice}_{variant}" if variant else voice
    return re.sub(r"[^A-Za-z0-9_.-]", "-", name)


# --------------------------------------------------------------------- text

FORTUNE_DIR = Path("/usr/share/games/fortunes")
WORDS_FILE = Path("/usr/share/dict/words")
#: Fortune databases not used: the offensive ones (``off/``) and those built
#: on stereotypes or of no use as sentences.
_FORTUNE_SKIP = {"off", "ethnic", "men-women", "ascii-art", "translate-me"}

_ALLOWED = re.compile(r"^[A-Za-z0-9 .,;:!?'\"$%()-]+$")
_WORD = re.compile(r"[A-Za-z0-9]")
_SENTENCE_END = re.compile(r"(?<=[.!?])[\"')]?\s+(?=[\"'(]?[A-Z0-9])")
_SHAPE = re.compile(r"^[\"'(]?[A-Z0-9].*[.!?][\"')]?$")
MIN_WORDS, MAX_WORDS = 3, 25


def _clean(text: str) -> str:
    return " ".join(text.split())


def _usable(sentence: str) -> bool:
    """A sentence espeak can speak word by word: 3..25 plain ASCII words,
    each with a letter or digit, no dashes or ellipses standing alone."""
    if not _ALLOWED.match(sentence) or "--" in sentence or ".." in sentence:
        return False
    if sentence.count("(") != sentence.count(")") or sentence.count('"') % 2:
        return False
    if re.search(r":(?!\d)|\(\d*\)", sentence) or not _SHAPE.match(sentence):
        return False  # "Sam: ...", "Moon, n.: 1.", "(1)"; must look like a sentence
    tokens = sentence.split()
    if not MIN_WORDS <= len(tokens) <= MAX_WORDS:
        return False
    return all(_WORD.search(t) and len(t) <= 20 and not t.startswith("-") for t in tokens)


def _fortune_records(path: Path) -> Iterable[str]:
    text = path.read_bytes().decode("latin-1")
    for record in re.split(r"^%\s*$", text, flags=re.MULTILINE):
        lines = [
            line for line in record.splitlines() if not re.match(r"^\s*(--|-- |\u2014)", line)
        ]  # drop "-- Author" lines
        if any(line.startswith(("\t", "    ")) and ":" in line for line in lines):
            continue  # dialogue / code layouts
        yield _clean(" ".join(lines))


@lru_cache(maxsize=4)
def fortune_sentences(root: str | os.PathLike[str] = FORTUNE_DIR) -> tuple[str, ...]:
    """Usable sentences (see :func:`_usable`) from the fortune databases in
    ``root`` (Debian ``fortunes``), sorted and deduplicated; ``()`` when the
    folder is absent. Offensive databases (``off/``) are skipped."""
    folder = Path(root)
    if not folder.is_dir():
        return ()
    sentences: set[str] = set()
    for path in sorted(folder.iterdir()):
        if path.name in _FORTUNE_SKIP or path.suffix in (".dat", ".u8") or not path.is_file():
            continue
        for record in _fortune_records(path):
            for sentence in _SENTENCE_END.split(record):
                sentence = sentence.strip()
                if _usable(sentence):
                    sentences.add(sentence)
    return tuple(sorted(sentences))


@lru_cache(maxsize=4)
def dictionary_words(path: str | os.PathLike[str] = WORDS_FILE) -> tuple[str, ...]:
    """Plain lower-case words of 2..12 letters from a word list (Debian
    ``wamerican``); ``()`` when the file is absent."""
    try:
        text = Path(path).read_text(encoding="utf-8", errors="replace")
    except OSError:
        return ()
    return tuple(sorted({w for w in text.split() if re.fullmatch(r"[a-z]{2,12}", w)}))


def _sentence_key(sentence: str) -> str:
    return " ".join(re.findall(r"[a-z0-9]+", sentence.lower()))


def sentence_split(sentence: str, split_seed: int = 0) -> str:
    """``"heldout"`` for about 10 % of all sentences (by a hash of their
    lower-cased words and ``split_seed``), ``"train"`` for the rest."""
    bucket = _hash_int("sentence", split_seed, _sentence_key(sentence)) % 100
    return "heldout" if bucket < HELDOUT_SENTENCE_PERCENT else "train"


_NAMES = (
    "Alice",
    "Bob",
    "Carol",
    "David",
    "Emma",
    "Frank",
    "Grace",
    "Henry",
    "Irene",
    "Jack",
    "Karen",
    "Liam",
    "Maria",
    "Nathan",
    "Olivia",
    "Peter",
    "Quentin",
    "Rachel",
    "Samuel",
    "Tina",
    "Victor",
    "Wendy",
    "Yusuf",
    "Zoe",
)
_NOUNS = (
    "book",
    "ticket",
    "chair",
    "bicycle",
    "lamp",
    "sandwich",
    "ladder",
    "kettle",
    "umbrella",
    "guitar",
    "blanket",
    "camera",
    "window",
    "basket",
    "engine",
    "garden",
    "jacket",
    "violin",
    "letter",
    "bottle",
    "carpet",
    "rocket",
    "pencil",
    "island",
    "village",
    "bridge",
    "river",
)
_ADJECTIVES = (
    "old",
    "new",
    "red",
    "quiet",
    "heavy",
    "strange",
    "bright",
    "broken",
    "tiny",
    "famous",
    "golden",
    "wooden",
    "lucky",
    "dusty",
    "narrow",
    "gentle",
    "curious",
    "careful",
)
_MONTHS = (
    "January",
    "February",
    "March",
    "April",
    "May",
    "June",
    "July",
    "August",
    "September",
    "October",
    "November",
    "December",
)
_DAYS = ("Monday", "Tuesday", "Wednesday", "Thursday", "Friday", "Saturday", "Sunday")


def _ordinal(n: int) -> str:
    suffix = "th" if 10 <= n % 100 <= 20 else {1: "st", 2: "nd", 3: "rd"}.get(n % 10, "th")
    return f"{n}{suffix}"


def _number(rng: np.random.Generator) -> str:
    n = int(rng.choice([rng.integers(2, 20), rng.integers(20, 1000), rng.integers(1000, 100000)]))
    return f"{n:,}" if n >= 1000 and rng.random() < 0.6 else str(n)


def _money(rng: np.random.Generator) -> str:
    dollars = int(rng.choice([rng.integers(1, 20), rng.integers(20, 500), rng.integers(500, 20000)]))
    text = f"${dollars:,}" if dollars >= 1000 else f"${dollars}"
    if dollars < 500 and rng.random() < 0.4:
        text += f".{int(rng.integers(1, 100)):02d}"
    return text


def _percent(rng: np.random.Generator) -> str:
    if rng.random() < 0.3:
        return f"{rng.integers(0, 100)}.{rng.integers(1, 10)}%"
    return f"{rng.integers(1, 101)}%"


def _year(rng: np.random.Generator) -> str:
    return str(int(rng.integers(1066, 2031)))


def _time(rng: np.random.Generator) -> str:
    return f"{rng.integers(1, 13)}:{int(rng.choice([0, 15, 30, 45, int(rng.integers(1, 60))])):02d}"


_TEMPLATES: tuple[str, ...] = (
    "{name} paid {money} for the {adj} {noun} on {month} {ordinal}, {year}.",
    "The price of a {noun} rose by {percent} in {year}.",
    "About {number} people came to the {ordinal} meeting of the {noun} club.",
    "Please call me at {time} on {day}, not before.",
    "In {year}, a {adj} {noun} cost only {money}!",
    "Is it true that {percent} of all {noun}s are {adj}?",
    "{name} finished {ordinal} out of {number} runners; {name2} was {ordinal2}.",
    "We sold {number} {noun}s and {number2} {noun2}s last {day}.",
    "The {adj} {noun} was built in {year} and rebuilt in {year2}.",
    "Chapter {small}: {name} and the {adj} {noun}.",
    "On {month} {ordinal}, {name} found {money} under a {noun}.",
    "Room {number} is on the {ordinal} floor, next to the {noun}.",
    "Nearly {percent} of the {noun}s were {adj}, said {name}.",
    '"Wait," said {name}, "the train leaves at {time}!"',
    "Between {year} and {year2}, the town grew by {percent}.",
    "My {ordinal} {noun} was a gift from {name}, who paid {money}.",
    "{name} counted {number} {noun}s, {number2} {noun2}s, and one {adj} {noun3}.",
    "Do you remember {month} {year}? It rained for {small} days.",
    "The recipe needs {small} eggs, {small2} cups of flour, and a {adj} {noun}.",
    "Flight {number} to {name}ville departs at {time} from gate {small}.",
)


def _template_sentence(rng: np.random.Generator) -> str:
    template = str(rng.choice(_TEMPLATES))

    def pick(options: Sequence[str]) -> str:
        return str(options[int(rng.integers(len(options)))])

    fillers: dict[str, Callable[[], str]] = {
        "name": lambda: pick(_NAMES),
        "noun": lambda: pick(_NOUNS),
        "adj": lambda: pick(_ADJECTIVES),
        "month": lambda: pick(_MONTHS),
        "day": lambda: pick(_DAYS),
        "money": lambda: _money(rng),
        "percent": lambda: _percent(rng),
        "year": lambda: _year(rng),
        "time": lambda: _time(rng),
        "number": lambda: _number(rng),
        "ordinal": lambda: _ordinal(int(rng.integers(1, 40))),
        "small": lambda: str(int(rng.integers(2, 13))),
    }

    def fill(match: re.Match[str]) -> str:
        return fillers[re.sub(r"\d+$", "", match.group(1))]()

    return re.sub(r"\{(\w+)\}", fill, template)


def _word_sequence(rng: np.random.Generator, words: Sequence[str]) -> str:
    count = int(rng.integers(MIN_WORDS, 13))
    chosen = [str(words[int(i)]) for i in rng.integers(len(words), size=count)]
    if count > 5 and rng.random() < 0.5:
        cut = int(rng.integers(2, count - 2))
        chosen[cut] += ","
    chosen[0] = chosen[0].capitalize()
    return " ".join(chosen) + str(rng.choice([".", ".", ".", "?", "!"]))


# ----------------------------------------------------------------------- plan


@dataclass(frozen=True)
class UtterancePlan:
    """Everything needed to render one utterance, decided from the seed.

    Attributes:
        index: position in the corpus.
        name, speaker: file stem and speaker folder.
        split: ``"train"`` or ``"heldout"``.
        voice: espeak voice with variant (``"en-us+f1"``).
        texts: the sentence, then fallbacks used only when espeak cannot
            time every word of the ones before.
        sources: where each text came from (``fortune``, ``words``,
            ``template``).
        rate, pitch, pitch_range, word_gap: espeak parameters.
        lead, trail: silence added before / after the speech (seconds,
            before speed perturbation).
        speed: speed factor (1.1 = 10 % faster and shorter).
        reverb, noise, telephone, gain_db: augmentations (``None`` / False
            when not applied; see :func:`render_utterance`).
        babble: ``(text, voice)`` of the speech mixed in as babble noise.
        noise_seed: seed of the noise and impulse-response generators.
    """

    index: int
    name: str
    speaker: str
    split: str
    voice: str
    texts: tuple[str, ...]
    sources: tuple[str, ...]
    rate: int
    pitch: int
    pitch_range: int
    word_gap: int
    lead: float
    trail: float
    speed: float = 1.0
    reverb: dict[str, float] | None = None
    noise: dict[str, Any] | None = None
    telephone: bool = False
    gain_db: float = 0.0
    babble: tuple[tuple[str, str], ...] = ()
    noise_seed: int = 0


class _TextSource:
    """Draws sentences of one split, never the same one twice."""

    def __init__(self, rng: np.random.Generator, split: str, split_seed: int) -> None:
        self.rng = rng
        self.split = split
        self.split_seed = split_seed
        pool = [s for s in fortune_sentences() if sentence_split(s, split_seed) == split]
        self.fortunes = [pool[int(i)] for i in rng.permutation(len(pool))]
        self.words = dictionary_words()
        self.used: set[str] = set()
        weights = {"fortune": 0.5 if self.fortunes else 0.0, "template": 0.3, "words": 0.2 if self.words else 0.0}
        total = sum(weights.values())
        self.kinds = tuple(weights)
        self.weights = np.array([weights[k] / total for k in self.kinds])

    def _accept(self, sentence: str) -> bool:
        key = _sentence_key(sentence)
        if key in self.used or not _usable(sentence) or sentence_split(sentence, self.split_seed) != self.split:
            return False
        self.used.add(key)
        return True

    def draw(self, kind: str | None = None) -> tuple[str, str]:
        kind = kind or str(self.rng.choice(self.kinds, p=self.weights))
        for _ in range(10000):
            if kind == "fortune" and self.fortunes:
                sentence = self.fortunes.pop()
            elif kind == "words":
                sentence = _word_sequence(self.rng, self.words)
            else:
                kind = "template"
                sentence = _template_sentence(self.rng)
            if self._accept(sentence):
                return sentence, kind
        raise CorpusError(f"could not draw a new {self.split} sentence; the text sources are exhausted")

    def background(self) -> str:
        """A template or random-word sentence of the split for babble noise
        (may repeat; never one of the other split)."""
        while True:
            if self.words and self.rng.random() < 0.5:
                sentence = _word_sequence(self.rng, self.words)
            else:
                sentence = _template_sentence(self.rng)
            if sentence_split(sentence, self.split_seed) == self.split:
                return sentence


def _choose_augmentations(rng: np.random.Generator) -> dict[str, Any]:
    speed = float(rng.uniform(0.9, 1.1)) if rng.random() < 0.3 else 1.0
    reverb = None
    if rng.random() < 0.25:
        reverb = {"rt60": round(float(rng.uniform(0.15, 0.7)), 3), "drr_db": round(float(rng.uniform(0.0, 12.0)), 2)}
    noise = None
    if rng.random() < 0.4:
        noise = {
            "kind": str(rng.choice(["white", "pink", "babble"])),
            "snr_db": round(float(rng.uniform(5.0, 30.0)), 2),
        }
    telephone_band = bool(rng.random() < 0.1)
    gain_db = round(float(rng.uniform(-20.0, -1.0)), 2)
    return {"speed": round(speed, 4), "reverb": reverb, "noise": noise, "telephone": telephone_band, "gain_db": gain_db}


def plan_corpus(
    num_utterances: int,
    seed: int,
    *,
    split: str = "train",
    voices: Sequence[str] | None = None,
    split_seed: int = 0,
    augment: bool = True,
) -> list[UtterancePlan]:
    """Decide every utterance of a corpus (texts, voices, prosody,
    augmentations) from ``seed``; see :func:`make_corpus` for the arguments.

    Raises:
        CorpusError: a bad argument.
    """
    num_utterances, seed, split_seed = _check_counts(num_utterances, seed, split_seed)
    split = _check_split(split)
    pool = split_voices(split_seed)[split] if voices is None else _check_voices(voices)
    rng = np.random.default_rng([seed, SPLITS.index(split), 20250101])
    texts = _TextSource(rng, split, split_seed)
    plans = []
    for index in range(num_utterances):
        voice = str(pool[int(rng.integers(len(pool)))])
        primary = texts.draw()
        fallbacks = [texts.draw("template") for _ in range(2)]
        options: dict[str, Any] = (
            _choose_augmentations(rng)
            if augment
            else {"speed": 1.0, "reverb": None, "noise": None, "telephone": False, "gain_db": -3.0}
        )
        babble: tuple[tuple[str, str], ...] = ()
        if options["noise"] is not None and options["noise"]["kind"] == "babble":
            # babble: voices of the split saying sentences of the split
            babble = tuple(
                (texts.background(), str(pool[int(rng.integers(len(pool)))])) for _ in range(int(rng.integers(3, 6)))
            )
        plans.append(
            UtterancePlan(
                index=index,
                name=f"{split}-{index:06d}",
                speaker=_speaker(voice),
                split=split,
                voice=voice,
                texts=(primary[0], *(f[0] for f in fallbacks)),
                sources=(primary[1], *(f[1] for f in fallbacks)),
                rate=int(rng.integers(120, 221)),
                pitch=int(rng.integers(20, 81)),
                pitch_range=int(rng.integers(20, 91)),
                word_gap=int(rng.integers(1, 4)) if rng.random() < 0.2 else 0,
                lead=round(float(rng.uniform(0.05, 0.6)), 3),
                trail=round(float(rng.uniform(0.05, 0.6)), 3),
                speed=options["speed"],
                reverb=options["reverb"],
                noise=options["noise"],
                telephone=options["telephone"],
                gain_db=options["gain_db"],
                babble=babble,
                noise_seed=int(rng.integers(2**63 - 1)),
            )
        )
    return plans


# ---------------------------------------------------------------- validation


def _check_counts(num_utterances: Any, seed: Any, split_seed: Any) -> tuple[int, int, int]:
    for name, value, low in (("num_utterances", num_utterances, 1), ("seed", seed, 0), ("split_seed", split_seed, 0)):
        if isinstance(value, bool) or not isinstance(value, (int, np.integer)) or value < low:
            raise CorpusError(f"{name} must be an integer >= {low}, got {value!r}")
    return int(num_utterances), int(seed), int(split_seed)


def _check_split(split: Any) -> str:
    if split not in SPLITS:
        raise CorpusError(f"split must be one of {', '.join(SPLITS)}, got {split!r}")
    return str(split)


def _check_voices(voices: Sequence[str]) -> tuple[str, ...]:
    if isinstance(voices, str) or not isinstance(voices, Sequence) or not voices:
        raise CorpusError(f"voices must be a non-empty list of espeak voices such as ['en-us+f1'], got {voices!r}")
    for voice in voices:
        if not isinstance(voice, str) or not re.fullmatch(r"[A-Za-z0-9_-]+(\+[A-Za-z0-9_-]+)?", voice):
            raise CorpusError(f"voice {voice!r} is not of the form 'voice' or 'voice+variant' (e.g. 'en-us+f1')")
    return tuple(voices)


# ----------------------------------------------------------------- rendering


@dataclass(frozen=True, eq=False)
class Speech:
    """Clean synthetic speech at :data:`SAMPLE_RATE` with its timings.

    Attributes:
        audio: float32 in [-1, 1]. Shape: ``(samples,)``.
        sample_rate: 16000.
        alignment: words (as written, with their phones as ``chars``) in
            seconds; ``alignment.phonetic`` is True.
        text: the text spoken.
    """

    audio: np.ndarray
    sample_rate: int
    alignment: Alignment
    text: str

    @property
    def duration(self) -> float:
        return len(self.audio) / self.sample_rate


def spoken_form(text: str) -> tuple[str, list[str], list[int]]:
    """``text`` as the aligner's text normalizer reads it, for the
    synthesizer to say: numbers, currency, ordinals and symbols spelled out
    (``"$5,"`` -> ``"five dollars,"``), trailing punctuation kept for the
    prosody. Returns the spoken text, the written words, and for each
    spoken word the index of the written word it belongs to.

    Raises:
        SynthesisError: a written word has nothing to say.
    """
    from ...text import ENGLISH_LABELS, normalize_transcript

    written = text.split()
    pieces: list[str] = []
    owner: list[int] = []
    for index, word in enumerate(normalize_transcript(text, ENGLISH_LABELS).words):
        parts = [part.lower() for part in word.normalized.split("|") if part]
        if not parts:
            raise SynthesisError(f"word {index + 1} ({word.text!r}) of {text!r} has nothing to say")
        tail = re.search(r"[,.;:!?]+$", word.text)
        if tail:
            parts[-1] += tail.group(0)
        pieces.extend(parts)
        owner.extend([index] * len(parts))
    return " ".join(pieces), written, owner


def render_speech(
    text: str,
    voice: str = "en-us",
    *,
    rate: int = 175,
    pitch: int = 50,
    pitch_range: int = 50,
    word_gap: int = 0,
    lead: float = 0.0,
    trail: float = 0.0,
    speed: float = 1.0,
    sample_rate: int = SAMPLE_RATE,
    spell_out: bool = True,
) -> Speech:
    """Synthesize ``text`` (:func:`aligner.training.synth.espeak.synthesize`) and
    resample it with its timings (:func:`speech_from_synthesis`).

    With ``spell_out`` (the default) espeak says :func:`spoken_form` of the
    text, numbers read as the aligner's normalizer reads them (a year as a
    year, ``"$5.50"`` as five dollars fifty cents), so a transcript and its
    audio agree; the words of the result are still the written ones, each
    spanning the words it was spoken as. Without it espeak reads the text
    its own way.

    Raises:
        SynthesisError: espeak failed or could not time every word.
        CorpusError: a bad ``speed``, ``lead``, ``trail`` or ``sample_rate``.
    """
    _check_resampling(lead, trail, speed, sample_rate)
    spoken, written, owner = spoken_form(text) if spell_out else (text, [], [])
    synthesis = synthesize(spoken, voice, rate=rate, pitch=pitch, pitch_range=pitch_range, word_gap=word_gap)
    speech = speech_from_synthesis(synthesis, lead=lead, trail=trail, speed=speed, sample_rate=sample_rate)
    if not spell_out:
        return speech
    return replace(speech, text=text, alignment=_regroup(speech.alignment, written, owner))


def _regroup(alignment: Alignment, written: list[str], owner: list[int]) -> Alignment:
    """Spoken-word spans -> one span per written word (``owner[k]`` is the
    written word of spoken word ``k``)."""
    groups: list[list[WordSpan]] = [[] for _ in written]
    for index, span in zip(owner, alignment.words):
        groups[index].append(span)
    words = tuple(
        WordSpan(
            text=text,
            normalized=" ".join(s.normalized for s in spans),
            start=spans[0].start,
            end=spans[-1].end,
            score=1.0,
            chars=tuple(c for s in spans for c in s.chars),
        )
        for text, spans in zip(written, groups)
    )
    return replace(alignment, words=words)


def _check_resampling(lead: Any, trail: Any, speed: Any, sample_rate: Any) -> None:
    if isinstance(speed, bool) or not (isinstance(speed, (int, float)) and 0.5 <= speed <= 2.0):
        raise CorpusError(f"speed must be a number in [0.5, 2], got {speed!r}")
    for name, value in (("lead", lead), ("trail", trail)):
        if isinstance(value, bool) or not (isinstance(value, (int, float)) and 0.0 <= value <= 60.0):
            raise CorpusError(f"{name} must be a number of seconds in [0, 60], got {value!r}")
    if isinstance(sample_rate, bool) or not isinstance(sample_rate, int) or sample_rate < 8000:
        raise CorpusError(f"sample_rate must be an integer >= 8000, got {sample_rate!r}")


def speech_from_synthesis(
    synthesis: Synthesis, *, lead: float = 0.0, trail: float = 0.0, speed: float = 1.0, sample_rate: int = SAMPLE_RATE
) -> Speech:
    """``synthesis`` as float audio at ``sample_rate`` with exact word / phone
    intervals (:func:`aligner.training.synth.espeak.word_timings`): ``lead`` /
    ``trail`` seconds of silence around it, played ``speed`` times faster
    (resampled, so the pitch moves too; every time is divided by ``speed``).
    The resampler (soxr, linear phase) keeps events in place: an impulse at
    ``t`` stays at ``t / speed``.

    Raises:
        SynthesisError: espeak's events cannot time every word.
        CorpusError: a bad ``speed``, ``lead``, ``trail`` or ``sample_rate``.
    """
    _check_resampling(lead, trail, speed, sample_rate)
    words = word_timings(synthesis)
    rate_in = synthesis.sample_rate
    head, tail = int(round(lead * rate_in)), int(round(trail * rate_in))
    clean = np.concatenate(
        [np.zeros(head, np.float32), synthesis.samples.astype(np.float32) / 32768.0, np.zeros(tail, np.float32)]
    )
    audio = soxr.resample(clean, rate_in * float(speed), sample_rate, quality="HQ").astype(np.float32)
    duration = len(audio) / sample_rate

    def seconds(sample: int) -> float:
        return min((head + sample) / (rate_in * float(speed)), duration)

    closed = attach_closures(
        [[(p.label, p.start, p.end) for p in word.phones] for word in words], round(MAX_CLOSURE * rate_in)
    )
    spans = []
    for word, intervals in zip(words, closed):
        phones = tuple(CharSpan(label, seconds(a), seconds(b), 1.0) for label, a, b in intervals)
        spans.append(
            WordSpan(
                text=word.text,
                normalized=" ".join(p.label for p in word.phones),
                start=seconds(intervals[0][1]),
                end=seconds(word.end),
                score=1.0,
                chars=phones,
            )
        )
    alignment = Alignment(
        words=tuple(spans),
        duration=duration,
        frame_seconds=1.0 / sample_rate,
        phonetic=True,
        model=f"espeak-ng {synthesis.voice}",
    )
    return Speech(audio=audio, sample_rate=sample_rate, alignment=alignment, text=synthesis.text)


def pink_noise(num_samples: int, rng: np.random.Generator) -> np.ndarray:
    """Unit-variance 1/f noise. Shape: ``(num_samples,)``."""
    size = scipy_fft.next_fast_len(max(num_samples, 1), real=True)
    spectrum = scipy_fft.rfft(rng.standard_normal(size))
    frequency = np.arange(len(spectrum), dtype=np.float64)
    frequency[0] = 1.0
    noise = scipy_fft.irfft(spectrum / np.sqrt(frequency), n=size)[:num_samples]
    return (noise / (noise.std() + 1e-12)).astype(np.float32)


def _speech_mask(alignment: Alignment, num_samples: int, sample_rate: int) -> np.ndarray:
    mask = np.zeros(num_samples, dtype=bool)
    for word in alignment.words:
        mask[int(word.start * sample_rate) : int(math.ceil(word.end * sample_rate))] = True
    return mask


def add_noise(audio: np.ndarray, noise: np.ndarray, snr_db: float, speech_mask: np.ndarray | None = None) -> np.ndarray:
    """``audio`` plus ``noise`` scaled to ``snr_db`` dB below the speech power
    (mean square over ``speech_mask``, or over all samples). ``noise`` is
    tiled or cut to the length of ``audio``. Shape: ``(samples,)``."""
    if len(noise) == 0:
        raise CorpusError("noise signal is empty")
    noise = np.resize(noise.astype(np.float64), len(audio))
    speech = audio[speech_mask] if speech_mask is not None and speech_mask.any() else audio
    speech_power = float(np.mean(np.square(speech, dtype=np.float64)))
    noise_power = float(np.mean(np.square(noise))) + 1e-20
    scale = math.sqrt(speech_power / noise_power / 10.0 ** (snr_db / 10.0))
    return (audio + scale * noise).astype(np.float32)


def reverberate(
    audio: np.ndarray, rng: np.random.Generator, rt60: float, drr_db: float, sample_rate: int = SAMPLE_RATE
) -> np.ndarray:
    """Convolve with a synthetic room response: a direct path at lag 0 (so
    onsets do not move) plus exponentially decaying noise reaching -60 dB
    after ``rt60`` seconds, ``drr_db`` dB weaker than the direct path in
    energy. The output keeps the input's length. Shape: ``(samples,)``."""
    length = max(int(rt60 * sample_rate), 2)
    t = np.arange(length) / sample_rate
    tail = rng.standard_normal(length) * np.exp(-6.9078 * t / rt60)
    tail[0] = 0.0
    onset = int(0.002 * sample_rate)  # first reflection after 2 ms
    tail[1:onset] = 0.0
    tail *= math.sqrt(10.0 ** (-drr_db / 10.0) / (np.sum(tail**2) + 1e-20))
    response = tail
    response[0] = 1.0
    wet = signal.fftconvolve(audio.astype(np.float64), response)[: len(audio)]
    peak_in, peak_out = np.abs(audio).max(initial=0.0), np.abs(wet).max(initial=0.0)
    if peak_out > 0:
        wet *= peak_in / peak_out
    return wet.astype(np.float32)


def telephone(audio: np.ndarray, sample_rate: int = SAMPLE_RATE) -> np.ndarray:
    """A narrow-band telephone channel: down to 8 kHz, 300..3400 Hz band
    pass (zero phase, so nothing moves in time), 8-bit mu-law, and back up to
    ``sample_rate``. Shape: ``(samples,)``, same length."""
    narrow = soxr.resample(audio.astype(np.float64), sample_rate, 8000, quality="HQ")
    sos = signal.butter(4, [300.0, 3400.0], btype="bandpass", fs=8000, output="sos")
    narrow = signal.sosfiltfilt(sos, narrow)
    peak = np.abs(narrow).max(initial=0.0)
    if peak > 0:
        mu = 255.0
        x = narrow / peak
        code = np.round((np.sign(x) * np.log1p(mu * np.abs(x)) / np.log1p(mu)) * 127.0) / 127.0
        narrow = np.sign(code) * np.expm1(np.abs(code) * np.log1p(mu)) / mu * peak
    wide = soxr.resample(narrow, 8000, sample_rate, quality="HQ")
    out = np.zeros(len(audio))
    out[: min(len(wide), len(audio))] = wide[: len(audio)]
    return out.astype(np.float32)


def _babble(plan: UtterancePlan, num_samples: int) -> np.ndarray:
    mix = np.zeros(num_samples, dtype=np.float64)
    for k, (text, voice) in enumerate(plan.babble):
        try:
            speech = render_speech(text, voice, rate=160, pitch=50)
        except SynthesisError:
            continue
        talker = speech.audio.astype(np.float64)
        talker /= np.sqrt(np.mean(talker**2)) + 1e-12
        offset = (k * 7919) % max(len(talker), 1)  # talkers start at different points
        mix += np.resize(np.roll(talker, -offset), num_samples)
    if not mix.any():
        raise SynthesisError(f"could not synthesize babble noise for {plan.name}")
    return mix.astype(np.float32)


def _augment(speech: Speech, plan: UtterancePlan) -> np.ndarray:
    rng = np.random.default_rng(plan.noise_seed)
    audio = speech.audio
    if plan.reverb is not None:
        audio = reverberate(audio, rng, plan.reverb["rt60"], plan.reverb["drr_db"], speech.sample_rate)
    if plan.noise is not None:
        kind = plan.noise["kind"]
        if kind == "white":
            noise = rng.standard_normal(len(audio)).astype(np.float32)
        elif kind == "pink":
            noise = pink_noise(len(audio), rng)
        else:
            noise = _babble(plan, len(audio))
        mask = _speech_mask(speech.alignment, len(audio), speech.sample_rate)
        audio = add_noise(audio, noise, plan.noise["snr_db"], mask)
    if plan.telephone:
        audio = telephone(audio, speech.sample_rate)
    peak = float(np.abs(audio).max(initial=0.0))
    if peak > 0:
        audio = audio * (10.0 ** (plan.gain_db / 20.0) / peak)
    return audio.astype(np.float32)


def _pcm16(audio: np.ndarray) -> np.ndarray:
    return np.clip(np.round(audio.astype(np.float64) * 32767.0), -32768, 32767).astype(np.int16)


def render_utterance(plan: UtterancePlan, out_dir: str | os.PathLike[str]) -> dict[str, Any]:
    """Render ``plan`` into ``out_dir/SPEAKER/NAME.{wav,txt,TextGrid}``.

    Order: synthesis, silence padding and speed perturbation (timings
    follow), reverberation, noise (SNR against the speech samples), telephone
    band, then a gain that puts the peak at ``plan.gain_db`` dBFS.

    Returns:
        the utterance's manifest entry.

    Raises:
        SynthesisError: espeak could not time any of ``plan.texts``.
    """
    speech = None
    failures = []
    for text, _source in zip(plan.texts, plan.sources):
        try:
            speech = render_speech(
                text,
                plan.voice,
                rate=plan.rate,
                pitch=plan.pitch,
                pitch_range=plan.pitch_range,
                word_gap=plan.word_gap,
                lead=plan.lead,
                trail=plan.trail,
                speed=plan.speed,
            )
            break
        except SynthesisError as error:
            failures.append(str(error))
    if speech is None:
        raise SynthesisError(f"utterance {plan.name}: espeak could not time any candidate text: " + "; ".join(failures))
    audio = _pcm16(_augment(speech, plan))
    folder = Path(out_dir) / plan.speaker
    folder.mkdir(parents=True, exist_ok=True)
    wav = folder / f"{plan.name}.wav"
    with atomic_path(wav) as temporary:  # every file complete or absent, as the package's other writers
        soundfile.write(temporary, audio, speech.sample_rate, subtype="PCM_16", format="WAV")
    atomic_write_text(folder / f"{plan.name}.txt", speech.text + "\n")
    alignment = Alignment(
        words=speech.alignment.words,
        duration=len(audio) / speech.sample_rate,
        frame_seconds=speech.alignment.frame_seconds,
        phonetic=True,
        audio=str(wav.name),
        model=speech.alignment.model,
    )
    write_alignment(alignment, folder / f"{plan.name}.TextGrid")
    voice, variant = _parse_voice(plan.voice)
    augmentations: dict[str, Any] = {"gain_db": plan.gain_db}
    if plan.speed != 1.0:
        augmentations["speed"] = plan.speed
    if plan.reverb is not None:
        augmentations["reverb"] = dict(plan.reverb)
    if plan.noise is not None:
        augmentations["noise"] = dict(plan.noise)
    if plan.telephone:
        augmentations["telephone"] = True
    return {
        "utterance": plan.name,
        "speaker": plan.speaker,
        "split": plan.split,
        "voice": voice,
        "variant": variant,
        "rate": plan.rate,
        "pitch": plan.pitch,
        "pitch_range": plan.pitch_range,
        "word_gap": plan.word_gap,
        "source": plan.sources[plan.texts.index(speech.text)],
        "augmentations": augmentations,
        "duration": round(len(audio) / speech.sample_rate, 7),
        "text": speech.text,
        "words": len(speech.alignment.words),
        "wav": f"{plan.speaker}/{plan.name}.wav",
        "textgrid": f"{plan.speaker}/{plan.name}.TextGrid",
    }


# -------------------------------------------------------------------- corpus


@dataclass(frozen=True)
class CorpusSummary:
    """What :func:`make_corpus` wrote.

    Attributes:
        out_dir: the corpus folder.
        manifest: path of ``manifest.jsonl``.
        entries: the manifest entries, in utterance order.
    """

    out_dir: Path
    manifest: Path
    entries: tuple[dict[str, Any], ...] = field(repr=False)

    @property
    def seconds(self) -> float:
        return float(sum(entry["duration"] for entry in self.entries))

    @property
    def hours(self) -> float:
        return self.seconds / 3600.0


#: Utterances rendered, in order, by one freshly forked process; fixed, so
#: that the output does not depend on the number of jobs.
_BATCH = 8


def _render_batch(batch: list[tuple[UtterancePlan, str]]) -> list[dict[str, Any]]:
    return [render_utterance(plan, out_dir) for plan, out_dir in batch]


def _render_batch_fresh(batch: list[tuple[UtterancePlan, str]]) -> list[dict[str, Any]]:
    """:func:`_render_batch` in a forked child whose espeak-ng was never used.

    espeak-ng's output depends slightly on what the process synthesized
    before (its pitch jitter keeps running: durations move by up to a pitch
    period), so byte-identical corpora need every batch to start from a
    fresh synthesizer. Runs in a pool worker, which never synthesizes itself.
    """
    if not hasattr(os, "fork"):
        return _render_batch(batch)
    read, write = os.pipe()
    pid = os.fork()
    if pid == 0:  # the child: render, send the result back, leave without cleanup
        code = 0
        try:
            os.close(read)
            try:
                result: tuple[str, Any] = ("ok", _render_batch(batch))
            except AlignerError as error:
                result = ("aligner", f"{type(error).__name__}: {error}")
            except BaseException as error:  # noqa: BLE001 - reported to the parent
                result = ("internal", f"{type(error).__name__}: {error}")
            with os.fdopen(write, "wb") as stream:
                pickle.dump(result, stream)
        except BaseException:  # noqa: BLE001
            code = 1
        finally:
            os._exit(code)
    os.close(write)
    with os.fdopen(read, "rb") as stream:
        data = stream.read()
    _, status = os.waitpid(pid, 0)
    if not data:
        raise RuntimeError(f"corpus worker process died (wait status {status})")
    kind, value = pickle.loads(data)
    if kind == "ok":
        return value
    if kind == "aligner":
        raise SynthesisError(value)
    raise RuntimeError(value)


def _pool_context() -> multiprocessing.context.BaseContext:
    # forkserver: workers fork from a clean server that imported this module
    # once; never fork a parent that may run torch / OpenMP threads
    if "forkserver" in multiprocessing.get_all_start_methods():
        context = multiprocessing.get_context("forkserver")
        context.set_forkserver_preload([__name__])
        return context
    return multiprocessing.get_context("spawn")


def make_corpus(
    out_dir: str | os.PathLike[str],
    *,
    num_utterances: int,
    seed: int,
    voices: Sequence[str] | None = None,
    split: str = "train",
    split_seed: int = 0,
    augment: bool = True,
    jobs: int = 1,
    progress: bool = False,
    overwrite: bool = False,
) -> CorpusSummary:
    """Write a synthetic corpus (see the module docstring for the layout).

    Args:
        out_dir: output folder (created).
        num_utterances: how many utterances.
        seed: seeds every random choice; the same arguments give
            byte-identical files.
        voices: espeak voices to use (``"en-us"``, ``"en-gb-x-rp+f1"``);
            default: the voices of ``split`` (:func:`split_voices`). Explicit
            voices are used as given, even if they belong to the other split.
        split: ``"train"`` or ``"heldout"``: which voices and sentences.
        split_seed: decides the train / heldout partition of voices and
            sentences; keep it equal for corpora that must be disjoint.
        augment: apply random augmentations (speed 0.9..1.1, reverberation,
            white / pink / babble noise at 5..30 dB SNR, telephone band, gain);
            without it only the prosody and silence padding vary.
        jobs: worker processes (espeak-ng is one global synthesizer per
            process). Workers come from a ``forkserver`` (``spawn`` where
            there is none): call this from under
            ``if __name__ == "__main__":`` in scripts, as usual with
            multiprocessing.
        progress: show a tqdm progress bar.
        overwrite: allow writing into a folder that holds a manifest.

    Returns:
        a :class:`CorpusSummary`.

    Raises:
        CorpusError: bad arguments, or ``out_dir`` holds a corpus and
            ``overwrite`` is False.
        SynthesisError: espeak-ng is missing or a voice is unknown.
    """
    if isinstance(jobs, bool) or not isinstance(jobs, int) or jobs < 1:
        raise CorpusError(f"jobs must be an integer >= 1, got {jobs!r}")
    out = Path(out_dir)
    manifest = out / "manifest.jsonl"
    if manifest.exists() and not overwrite:
        raise CorpusError(
            f"{out} already holds a corpus ({manifest.name}); choose another folder or pass overwrite=True"
        )
    if out.exists() and not out.is_dir():
        raise CorpusError(f"output folder {out} exists and is not a folder")
    plans = plan_corpus(num_utterances, seed, split=split, voices=voices, split_seed=split_seed, augment=augment)
    for voice in sorted({plan.voice for plan in plans}):
        synthesize("test", voice)  # unknown voices fail here, before any work
    out.mkdir(parents=True, exist_ok=True)
    batches = [[(plan, str(out)) for plan in plans[k : k + _BATCH]] for k in range(0, len(plans), _BATCH)]
    bar = None
    if progress:
        from tqdm import tqdm

        bar = tqdm(total=len(plans), unit="utt", desc=f"synthesizing {split}")
    entries: list[dict[str, Any]] = []
    try:
        # every batch runs in a process forked from a pool worker with an
        # unused synthesizer (see _render_batch_fresh): the files do not
        # depend on ``jobs``; the pool's workers start from a clean forkserver
        with _pool_context().Pool(min(jobs, len(batches))) as pool:
            for results in pool.imap(_render_batch_fresh, batches):
                entries.extend(results)
                if bar is not None:
                    bar.update(len(results))
    finally:
        if bar is not None:
            bar.close()
    lines = "".join(json.dumps(entry, sort_keys=True, ensure_ascii=False) + "\n" for entry in entries)
    atomic_write_text(manifest, lines)
    return CorpusSummary(out_dir=out, manifest=manifest, entries=tuple(entries))
