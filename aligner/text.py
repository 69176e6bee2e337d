"""Transcript normalization: the user's text -> target label ids for a CTC model.

Each whitespace-separated word of the *original* text becomes one
:class:`TranscriptWord` that keeps the user's spelling (``"Don't,"``) next to
the label ids it is aligned with (``D O N ' T``). On the way the text is

* NFKC-normalized and folded to the case of the model's letters;
* stripped of punctuation (apostrophes survive inside words when the model
  has an apostrophe label; hyphens, slashes and underscores split a word into
  sub-words joined by the separator label);
* spelled out where it holds numbers (:mod:`num2words`: cardinals, decimals,
  ordinals, years, currency, percentages; in English an amount followed by a
  scale word is read as people say it: ``"$25 billion"`` -> ``TWENTY FIVE``,
  ``BILLION DOLLARS``);
* romanized with ``uroman`` where it is in a non-Latin script and the model's
  letters are Latin (this is how MMS_FA aligns any language), and stripped of
  accents the model has no label for (``"café"`` -> ``CAFE``).

What still cannot be represented becomes the model's star (wildcard) label,
or is dropped with one :class:`UnrepresentableCharacterWarning` per
transcript.

Phone models (``AlignmentModel.phonemizer`` set) go one step further
(:func:`phonemize_transcript`): the transcript is first normalized as for an
English character model (:data:`ENGLISH_LABELS`), then every word's
spelled-out form is phonemized, and its tokens are phone ids.
:func:`transcript_for_model` picks the right path for a model.
"""

from __future__ import annotations

import os
import re
import threading
import unicodedata
import warnings
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from decimal import Decimal
from functools import lru_cache
from pathlib import Path
from typing import TYPE_CHECKING, Any

from .errors import AlignerError, ModelError, TranscriptError

if TYPE_CHECKING:  # pragma: no cover
    from .models.alignment_model import AlignmentModel

__all__ = [
    "ENGLISH_LABELS",
    "Transcript",
    "TranscriptWord",
    "UnrepresentableCharacterWarning",
    "normalize_transcript",
    "normalize_transcript_collecting",
    "phonemize_transcript",
    "read_transcript",
    "transcript_for_model",
]

#: Labels of torchaudio's English 960h bundles (blank ``-``, separator ``|``);
#: also the spelling a phone model's transcripts are normalized to before
#: they are phonemized.
ENGLISH_LABELS: tuple[str, ...] = (
    "-",
    "|",
    "E",
    "T",
    "A",
    "O",
    "N",
    "I",
    "H",
    "S",
    "R",
    "D",
    "L",
    "U",
    "M",
    "W",
    "C",
    "F",
    "G",
    "Y",
    "P",
    "B",
    "V",
    "K",
    "'",
    "X",
    "J",
    "Q",
    "Z",
)


class UnrepresentableCharacterWarning(UserWarning):
    """Characters of a transcript were dropped: the model has no label for them."""


@dataclass(frozen=True)
class TranscriptWord:
    """One whitespace-separated word of the transcript.

    Attributes:
        text: the word exactly as the user wrote it, punctuation included
            (``"Don't,"``).
        tokens: its label ids. Sub-words of one word (``"$5"`` -> ``FIVE``,
            ``DOLLARS``) are joined by the separator id when the model has
            one. For a phone model, its phones (``F AY V D AA L ER Z``).
            Empty when nothing in the word could be represented.
        labels: the model's labels, used by :attr:`normalized` (not compared).
        joiner: what :attr:`normalized` puts between labels: ``""`` for
            characters, ``" "`` for phones (not compared).
    """

    text: str
    tokens: tuple[int, ...]
    labels: tuple[str, ...] = field(default=(), repr=False, compare=False)
    joiner: str = field(default="", repr=False, compare=False)

    @property
    def normalized(self) -> str:
        """The word's labels joined (``"FIVE|DOLLARS"``, phones with spaces:
        ``"F AY V D AA L ER Z"``); ``""`` without labels."""
        if not self.labels:
            return ""
        return self.joiner.join(self.labels[t] for t in self.tokens)


@dataclass(frozen=True)
class Transcript:
    """A normalized transcript.

    Attributes:
        words: one entry per whitespace-separated word of the original text,
            including words that have no representable character.
        dropped: the distinct characters dropped because the model cannot
            represent them, sorted.
    """

    words: tuple[TranscriptWord, ...]
    dropped: tuple[str, ...] = ()

    def targets(self, separator_id: int | None) -> tuple[list[int], list[int]]:
        """Concatenated target ids for all words that have tokens.

        ``separator_id`` is inserted between consecutive words when not None
        (words with no tokens are skipped, never separated twice).

        Returns:
            ``(targets, word_index)``: two lists of length ``L``;
            ``word_index[l]`` is the index in :attr:`words` of the word that
            ``targets[l]`` belongs to, ``-1`` for an inserted separator (a
            separator *inside* a word, between its sub-words, belongs to it).
        """
        targets: list[int] = []
        word_index: list[int] = []
        for index, word in enumerate(self.words):
            if not word.tokens:
                continue
            if separator_id is not None and targets:
                targets.append(separator_id)
                word_index.append(-1)
            targets.extend(word.tokens)
            word_index.extend([index] * len(word.tokens))
        return targets, word_index


# --------------------------------------------------------------------------- labels

# Characters written as apostrophes; mapped to the model's apostrophe label.
_APOSTROPHES = "'\u2019\u2018\u02bc`\u00b4"
_APOSTROPHE_TABLE = str.maketrans(dict.fromkeys(_APOSTROPHES, "'"))

# Besides dash (Pd) and connector (Pc) punctuation, these split a word into
# sub-words: slashes, backslash, fraction slash ("1⁄2" from NFKC of "½"),
# minus sign ("5−3"; a leading one is read as "minus").
_SPLITTERS = "/\\\u2044\u2215\u2212"

# Results of classifying one character.
_IDS, _BOUNDARY, _SKIP, _MARK, _UNREPRESENTABLE = range(5)


class _LabelSet:
    """What a label vocabulary can represent, with a per-character cache."""

    def __init__(self, labels: tuple[str, ...], blank: int, separator: str | None, star: str | None) -> None:
        if not 0 <= blank < len(labels):
            raise ModelError(f"blank id {blank} is out of range for {len(labels)} labels")
        for name, label in (("separator", separator), ("star", star)):
            if label is not None and label == labels[blank]:
                raise ModelError(f"the {name} label {label!r} is the blank label")
        special = {blank}
        self.separator_id: int | None = None
        self.star_id: int | None = None
        if separator is not None:
            if separator not in labels:
                raise ModelError(f"separator {separator!r} is not one of the model's labels")
            self.separator_id = labels.index(separator)
            special.add(self.separator_id)
        if star is not None:
            if star not in labels:
                raise ModelError(f"star label {star!r} is not one of the model's labels")
            self.star_id = labels.index(star)
            special.add(self.star_id)
        self.labels = labels
        self.separator = separator
        # Single-character labels that spell text (multi-character labels such
        # as "<unk>" or "<s>" never match transcript text).
        self.ids: dict[str, int] = {}
        for index, label in enumerate(labels):
            if index not in special and len(label) == 1 and label not in self.ids:
                self.ids[label] = index
        letters = [c for c in self.ids if c.isalpha() and c.upper() != c.lower()]
        if letters and all(c.isupper() for c in letters):
            self.case = "upper"
        elif letters and all(c.islower() for c in letters):
            self.case = "lower"
        else:
            self.case = "keep"
        alphabetic = [c for c in self.ids if c.isalpha()]
        self.latin = bool(alphabetic) and all(unicodedata.name(c, "").startswith("LATIN") for c in alphabetic)
        self.apostrophe_id = next((self.ids[a] for a in ("'", "\u2019", "\u02bc") if a in self.ids), None)
        self.digits = all(d in self.ids for d in "0123456789")
        self._cache: dict[str, tuple[int, tuple[int, ...]]] = {}

    def fold(self, text: str) -> str:
        if self.case == "upper":
            return text.upper()
        if self.case == "lower":
            return text.lower()
        return text

    def _spell(self, text: str) -> tuple[int, ...] | None:
        if text and all(c in self.ids for c in text):
            return tuple(self.ids[c] for c in text)
        return None

    def classify(self, ch: str) -> tuple[int, tuple[int, ...]]:
        """``(kind, ids)`` for one (NFKC-normalized) character."""
        cached = self._cache.get(ch)
        if cached is None:
            cached = self._cache[ch] = self._classify(ch)
        return cached

    def _classify(self, ch: str) -> tuple[int, tuple[int, ...]]:
        if ch == "'" and self.apostrophe_id is not None:
            return _IDS, (self.apostrophe_id,)
        folded = self.fold(ch)
        ids = self._spell(ch) or self._spell(folded)
        if not ids and self.case == "keep":  # mixed-case labels: the other case will do
            ids = self._spell(ch.lower()) or self._spell(ch.upper())
        if ids:
            return _IDS, ids
        category = unicodedata.category(ch)
        if ch.isspace() or ch == self.separator or category in ("Pd", "Pc") or ch in _SPLITTERS:
            return _BOUNDARY, ()
        if category[0] == "P" or category in ("Cc", "Cf"):
            return _SKIP, ()
        if category[0] == "M":
            return _MARK, ()
        stripped = "".join(c for c in unicodedata.normalize("NFKD", folded) if not unicodedata.combining(c))
        ids = self._spell(stripped)
        if ids:
            return _IDS, ids
        return _UNREPRESENTABLE, ()


@lru_cache(maxsize=32)
def _label_set(labels: tuple[str, ...], blank: int, separator: str | None, star: str | None) -> _LabelSet:
    return _LabelSet(labels, blank, separator, star)


# --------------------------------------------------------------------------- uroman

_uroman_lock = threading.Lock()
_uroman_instance = None


def _uroman() -> Any:
    """The shared ``uroman.Uroman`` (loading its tables takes a second or two)."""
    global _uroman_instance
    with _uroman_lock:
        if _uroman_instance is None:
            import uroman

            _uroman_instance = uroman.Uroman()
        return _uroman_instance


def _romanize(text: str, language: str) -> str:
    lcode = language.lower() if len(language) == 3 and language.isalpha() else None
    try:
        return str(_uroman().romanize_string(text, lcode=lcode))
    except Exception:  # noqa: BLE001 - an odd character must not fail the alignment
        return ""


# --------------------------------------------------------------------------- numbers

# ISO 639-3 codes (as MMS uses them) of languages num2words can spell.
_ISO3 = {
    "amh": "am",
    "ara": "ar",
    "aze": "az",
    "bel": "be",
    "ben": "bn",
    "cat": "ca",
    "ces": "cs",
    "cym": "cy",
    "dan": "da",
    "deu": "de",
    "eng": "en",
    "epo": "eo",
    "spa": "es",
    "fas": "fa",
    "pes": "fa",
    "fin": "fi",
    "fra": "fr",
    "heb": "he",
    "hun": "hu",
    "ind": "id",
    "isl": "is",
    "ita": "it",
    "jpn": "ja",
    "kan": "kn",
    "kor": "ko",
    "kaz": "kz",
    "lit": "lt",
    "lav": "lv",
    "nld": "nl",
    "nob": "no",
    "nor": "no",
    "pol": "pl",
    "por": "pt",
    "ron": "ro",
    "rus": "ru",
    "slk": "sk",
    "slv": "sl",
    "srp": "sr",
    "swe": "sv",
    "tel": "te",
    "tgk": "tg",
    "tha": "th",
    "tur": "tr",
    "ukr": "uk",
    "vie": "vi",
}
# Languages writing "3,5" for three point five (and "1.000" for a thousand).
_DECIMAL_COMMA = {
    "az",
    "be",
    "ca",
    "cs",
    "da",
    "de",
    "eo",
    "es",
    "fi",
    "fr",
    "hu",
    "id",
    "is",
    "it",
    "kz",
    "lt",
    "lv",
    "nl",
    "no",
    "pl",
    "pt",
    "ro",
    "ru",
    "sk",
    "sl",
    "sr",
    "sv",
    "tr",
    "uk",
    "vi",
}
_CURRENCY_CODES = {"$": "USD", "£": "GBP", "€": "EUR", "¥": "JPY", "₹": "INR"}
_CURRENCY_SYMBOLS = "".join(_CURRENCY_CODES)
# English unit names as spoken ("three pounds", not num2words' "pounds sterling").
_EN_CURRENCY: dict[str, tuple[tuple[str, str], tuple[str, str] | None]] = {
    "USD": (("dollar", "dollars"), ("cent", "cents")),
    "GBP": (("pound", "pounds"), ("penny", "pence")),
    "EUR": (("euro", "euros"), ("cent", "cents")),
    "JPY": (("yen", "yen"), None),
    "INR": (("rupee", "rupees"), ("paisa", "paise")),
}
_PERCENT = {
    "en": "percent",
    "fr": "pour cent",
    "de": "Prozent",
    "es": "por ciento",
    "it": "per cento",
    "pt": "por cento",
    "nl": "procent",
}
# Symbols read as words in English when the model has no label for them.
_EN_SYMBOLS = {"&": "and", "@": "at", "+": "plus", "%": "percent"}
# Longest integer spelled as a number; longer ones (ids, phone numbers) are
# read digit by digit.
_MAX_DIGITS = 15


def _num2words_language(language: str) -> str | None:
    """num2words' code for ``language`` (``"en"``, ``"en-GB"``, ``"eng"``), or None."""
    from num2words import CONVERTER_CLASSES

    code = language.replace("-", "_")
    if code in CONVERTER_CLASSES:
        return code
    if code.lower() in _ISO3:
        return _ISO3[code.lower()]
    if "_" in code and code.split("_")[0].lower() in CONVERTER_CLASSES:
        return code.split("_")[0].lower()
    return None


@lru_cache(maxsize=8)
def _number_pattern(decimal_comma: bool, english: bool) -> re.Pattern[str]:
    group, point = (r"\.", ",") if decimal_comma else (",", r"\.")
    suffix = r"|(?:st|nd|rd|th|s)(?![^\W\d_])" if english else ""
    return re.compile(
        rf"(?P<sign>[-\u2212])?(?P<pre>[{_CURRENCY_SYMBOLS}])?"
        rf"(?P<int>\d{{1,3}}(?:{group}\d{{3}})+|\d+|(?<!\d)(?={point}\d))(?:{point}(?P<frac>\d+))?"
        rf"(?P<post>%|[{_CURRENCY_SYMBOLS}]{suffix})?",
        re.IGNORECASE,
    )


def _ascii_digits(text: str) -> str:
    return "".join(str(unicodedata.decimal(c)) for c in text)


def _pluralize_last(words: str) -> str:
    """``"nineteen ninety"`` -> ``"nineteen nineties"`` (English decades)."""
    head, _, last = words.rpartition(" ")
    if "-" in last:
        prefix, _, last = last.rpartition("-")
        head = f"{head} {prefix}".strip()
    last = last[:-1] + "ies" if last.endswith("y") else last + ("es" if last.endswith("x") else "s")
    return f"{head} {last}".strip()


class _NumberSpeller:
    """Spells the numbers of one language; None where it cannot."""

    def __init__(self, language: str) -> None:
        self.code = _num2words_language(language)
        self.english = self.code is not None and self.code.startswith("en")
        decimal_comma = self.code is not None and self.code.split("_")[0] in _DECIMAL_COMMA
        self.pattern = _number_pattern(decimal_comma, self.english)
        self.group = "." if decimal_comma else ","

    def _words(self, value: int | Decimal, to: str = "cardinal") -> str | None:
        from num2words import num2words

        try:
            return str(num2words(value, lang=self.code, to=to))
        except Exception:  # noqa: BLE001 - num2words raises many types; fall back
            return None

    def digits(self, digits: str) -> str | None:
        words = [self._words(int(d)) for d in digits]
        return None if None in words else " ".join(words)  # type: ignore[arg-type]

    def cardinal(self, digits: str) -> str | None:
        if len(digits) > _MAX_DIGITS or (len(digits) > 1 and digits.startswith("0")):
            return self.digits(digits)
        return self._words(int(digits)) or self.digits(digits)

    def decimal(self, integer: str, frac: str) -> str | None:
        """``"3", "50"`` -> ``"three point five zero"``; ``integer`` may be
        empty (``".5"`` -> ``"point five"``)."""
        if self.english:
            whole = self.cardinal(integer) if integer else ""
            tail = self.digits(frac)
            return None if whole is None or tail is None else f"{whole} point {tail}".strip()
        integer = integer or "0"
        whole = self.cardinal(integer)
        if whole is None:
            return None
        if len(integer) + len(frac) <= _MAX_DIGITS:
            words = self._words(Decimal(f"{integer}.{frac}"))
            zeros = len(frac) - len(frac.rstrip("0"))
            zero = self._words(0)
            if words is not None and zero is not None:
                return " ".join([words] + [zero] * zeros)
        tail = self.digits(frac)
        return None if tail is None else f"{whole} {tail}"

    def currency(self, code: str, integer: str, frac: str | None) -> str | None:
        """``USD, "5", "50"`` -> ``"five dollars fifty cents"``."""
        whole = int(integer or "0")
        subunit = _EN_CURRENCY[code][1] if self.english else None
        if frac is not None and (len(frac) > 2 or (self.english and subunit is None)):
            # "$5.125", "¥2.5": a decimal amount of the main unit
            return self._unit(code, 2, self.decimal(integer, frac))
        cents = int(frac.ljust(2, "0")) if frac else 0
        if not cents:
            return self._unit(code, whole, self.cardinal(integer or "0"))
        if subunit is None:  # not English: num2words' own wording
            return self._words_currency(Decimal(f"{integer}.{frac}"), code)
        cents_words = f"{self._words(cents)} {subunit[cents != 1]}"
        if not whole:
            return cents_words
        whole_words = self._unit(code, whole, self.cardinal(integer or "0"))
        return None if whole_words is None else f"{whole_words} {cents_words}"

    def _unit(self, code: str, count: int, amount: str | None) -> str | None:
        if amount is None:
            return None
        if self.english:
            return f"{amount} {_EN_CURRENCY[code][0][count != 1]}"
        from num2words import CONVERTER_CLASSES

        converter = CONVERTER_CLASSES[self.code]
        try:
            unit = converter.pluralize(count, converter.CURRENCY_FORMS[code][0])
        except Exception:  # noqa: BLE001 - currency or plural rules not implemented
            return None
        return f"{amount} {unit}"

    def _words_currency(self, value: Decimal, code: str) -> str | None:
        from num2words import num2words

        try:
            return str(num2words(value, lang=self.code, to="currency", currency=code))
        except Exception:  # noqa: BLE001
            return None

    def spell(self, match: re.Match[str], negative: bool) -> list[str]:
        """Pieces of text for one number match: its words, plus any currency
        or percent sign that could not be spelled (left to the label mapping)."""
        integer = _ascii_digits(match["int"].replace(self.group, ""))
        frac = _ascii_digits(match["frac"]) if match["frac"] else None
        pre, post = match["pre"] or "", match["post"] or ""
        suffix = post.lower()
        words: str | None = None
        if pre or post in _CURRENCY_CODES:
            words = self.currency(_CURRENCY_CODES[pre or post], integer, frac)
        elif suffix == "%":
            words = self.percent(integer, frac)
        elif suffix in ("st", "nd", "rd", "th") and frac is None:
            words = self._words(int(integer), to="ordinal")
        elif suffix == "s" and frac is None:
            base = self._year(integer) or self.cardinal(integer)
            words = None if base is None else _pluralize_last(base)
        elif frac is None and not negative and self.group not in match["int"]:
            words = self._year(integer)
        if words is None:  # a plain number, or a form num2words cannot do
            words = self.decimal(integer, frac) if frac is not None else self.cardinal(integer)
            if words is None:  # no number words in this language at all
                return [match[0][len(match["sign"] or "") :]]
        else:
            pre = post = ""
        if negative:
            words = f"{self.minus} {words}".strip()
        return [pre, words, post]

    @property
    def minus(self) -> str:
        """The word for a minus sign (``"minus"``), from num2words' ``-1``."""
        negative, one = self._words(-1), self._words(1)
        if negative and one and negative.endswith(one):
            return negative[: -len(one)].strip()
        return ""

    def percent(self, integer: str, frac: str | None) -> str | None:
        word = _PERCENT.get(self.code.split("_")[0]) if self.code else None
        amount = self.decimal(integer, frac) if frac is not None else self.cardinal(integer)
        return None if word is None or amount is None else f"{amount} {word}"

    def _year(self, digits: str) -> str | None:
        if len(digits) == 4 and 1100 <= int(digits) <= 2099:
            return self._words(int(digits), to="year") or self.cardinal(digits)
        return None


# --------------------------------------------------------------------------- words


class _WordBuilder:
    """Collects the sub-words (lists of label ids) of one transcript word."""

    def __init__(self, labels: _LabelSet) -> None:
        self.labels = labels
        self.subwords: list[list[int]] = []
        self.current: list[int] = []
        self.events = 0  # ids, stars or drops added (to tell whether a run produced anything)

    def add(self, ids: tuple[int, ...]) -> None:
        self.current.extend(ids)
        self.events += 1

    def add_star(self, star_id: int) -> None:
        if not self.current or self.current[-1] != star_id:
            self.current.append(star_id)
        self.events += 1

    def boundary(self) -> None:
        apostrophe = self.labels.apostrophe_id
        current = self.current
        start, end = 0, len(current)
        while start < end and current[start] == apostrophe:
            start += 1
        while end > start and current[end - 1] == apostrophe:
            end -= 1
        if start < end:
            self.subwords.append(current[start:end])
        self.current = []

    def tokens(self) -> tuple[int, ...]:
        self.boundary()
        separator = self.labels.separator_id
        out: list[int] = []
        for subword in self.subwords:
            if out and separator is not None:
                out.append(separator)
            out.extend(subword)
        return tuple(out)


class _Normalizer:
    """Normalizes the words of one transcript; collects dropped characters."""

    def __init__(self, labels: _LabelSet, language: str) -> None:
        self.labels = labels
        self.language = language
        self.numbers = _NumberSpeller(language)
        self.dropped: set[str] = set()

    def word(self, text: str) -> tuple[int, ...]:
        builder = _WordBuilder(self.labels)
        for piece in self._pieces(text):
            self._map(piece, builder, romanize=True)
            builder.boundary()
        return builder.tokens()

    def _pieces(self, text: str) -> list[str]:
        """NFKC text split into pieces; spelled-out numbers and symbols are
        pieces of their own (a sub-word boundary on each side)."""
        text = unicodedata.normalize("NFKC", text.translate(_APOSTROPHE_TABLE))
        pieces: list[str] = []
        if self.labels.digits or self.numbers.code is None:
            matches = []
        else:
            matches = list(self.numbers.pattern.finditer(text))
        position = 0
        for match in matches:
            start = match.start()
            negative = False
            if match["sign"]:
                if start == 0 or not text[start - 1].isalnum():
                    negative = True
                else:
                    start += 1  # a hyphen between "1999-2005", not a minus sign
            pieces.extend(self._symbols(text[position:start]))
            pieces.extend(self.numbers.spell(match, negative))
            position = match.end()
        pieces.extend(self._symbols(text[position:]))
        return [p for p in pieces if p]

    def _symbols(self, text: str) -> list[str]:
        if not self.numbers.english or not text:
            return [text]
        pieces, start = [], 0
        for i, ch in enumerate(text):
            if ch in _EN_SYMBOLS and ch not in self.labels.ids:
                pieces += [text[start:i], _EN_SYMBOLS[ch]]
                start = i + 1
        pieces.append(text[start:])
        return pieces

    def _map(self, text: str, builder: _WordBuilder, romanize: bool) -> None:
        run: list[str] = []
        for ch in text:
            kind, ids = self.labels.classify(ch)
            if kind == _UNREPRESENTABLE or (kind == _MARK and run):
                run.append(ch)
                continue
            if run:
                self._unrepresentable("".join(run), builder, romanize)
                run = []
            if kind == _IDS:
                builder.add(ids)
            elif kind == _BOUNDARY:
                builder.boundary()
            # _SKIP, and a _MARK on a representable letter: nothing
        if run:
            self._unrepresentable("".join(run), builder, romanize)

    def _unrepresentable(self, run: str, builder: _WordBuilder, romanize: bool) -> None:
        if romanize and self.labels.latin and any(unicodedata.category(c)[0] in "LMN" for c in run):
            before = builder.events
            self._map(_romanize(run, self.language), builder, romanize=False)
            if builder.events != before:
                return
        if self.labels.star_id is not None:
            builder.add_star(self.labels.star_id)
        else:
            self.dropped.update(c for c in run if unicodedata.category(c)[0] != "M")
            builder.events += 1


# An amount of money followed by a scale word: "$25 billion", "(€1.5 million".
_SCALED_AMOUNT = re.compile(
    rf"(?P<lead>[^\w{_CURRENCY_SYMBOLS}]*)(?P<symbol>[{_CURRENCY_SYMBOLS}])(?P<amount>\d[\d,]*(?:\.\d+)?)"
)
_SCALE = re.compile(r"(?P<scale>thousand|million|billion|trillion)(?P<trail>\W*)", re.IGNORECASE)


def _scaled_amounts(originals: Sequence[str]) -> Sequence[str]:
    """The words as they are spoken where an amount of money is followed by
    a scale word (English): ``"$25 billion"`` is read "twenty five billion
    dollars", so ``"$25"`` is spoken ``"25"`` and ``"billion"`` ``"billion
    dollars"`` (each written word keeps its own spoken words);
    ``"$1.5 billion"``: "one point five billion dollars". Other words are
    unchanged."""
    spoken = list(originals)
    for index in range(len(originals) - 1):
        amount = _SCALED_AMOUNT.fullmatch(originals[index])
        scale = _SCALE.fullmatch(originals[index + 1])
        if amount is None or scale is None or spoken[index] != originals[index]:
            continue
        unit = _EN_CURRENCY[_CURRENCY_CODES[amount["symbol"]]][0][1]
        spoken[index] = amount["lead"] + amount["amount"]
        spoken[index + 1] = f"{scale['scale']} {unit}{scale['trail']}"
    return spoken


# --------------------------------------------------------------------------- API


#: Control characters, treated as whitespace when a transcript is split into words.
_CONTROL_CHARACTERS = re.compile(r"[\x00-\x1f\x7f-\x9f]")


def normalize_transcript(
    text: str,
    labels: Sequence[str],
    *,
    blank: int = 0,
    separator: str | None = "|",
    star: str | None = None,
    language: str = "en",
    source: str | None = None,
) -> Transcript:
    """Turn a transcript into target label ids, word by word.

    Args:
        text: the transcript; words are split on its whitespace and its
            control characters (NUL, escape, ...), which belong to no word.
        labels: the model's labels (the index of a label is its id).
        blank: id of the CTC blank label (never produced).
        separator: the word-separator label, or None when the model has none
            (MMS_FA); it also joins the sub-words of one word.
        star: the wildcard label, which then stands for each run of
            characters the model cannot represent.
        language: language of the text for spelling out numbers (num2words
            codes such as ``"en"``, ``"fr"``, ``"pt_BR"``, or ISO 639-3 codes
            such as ``"fra"``); also given to uroman when it is 3 letters.
        source: a file name to put in messages.

    Returns:
        A :class:`Transcript` with one word per whitespace-separated word
        (control characters count as whitespace).

    Raises:
        TranscriptError: the transcript is empty, or no character of it can
            be represented by the labels.
        ModelError: ``blank``, ``separator`` or ``star`` do not fit ``labels``.

    Warns:
        UnrepresentableCharacterWarning: once, listing the dropped characters.

    Examples:
        Numbers and symbols are spelled out; punctuation is dropped silently:

        >>> from aligner.text import ENGLISH_LABELS, normalize_transcript
        >>> transcript = normalize_transcript("Don't pay $5!", ENGLISH_LABELS)
        >>> [(word.text, word.normalized) for word in transcript.words]
        [("Don't", "DON'T"), ('pay', 'PAY'), ('$5!', 'FIVE|DOLLARS')]
        >>> transcript.words[1].tokens
        (20, 4, 19)
        >>> transcript.targets(separator_id=ENGLISH_LABELS.index("|"))[1]  # the word of each target
        [0, 0, 0, 0, 0, -1, 1, 1, 1, -1, 2, 2, 2, 2, 2, 2, 2, 2, 2, 2, 2, 2]
    """
    transcript, message = _normalize(
        text, labels, blank=blank, separator=separator, star=star, language=language, source=source
    )
    if message is not None:
        warnings.warn(message, UnrepresentableCharacterWarning, stacklevel=2)
    return transcript


def _normalize(
    text: str,
    labels: Sequence[str],
    *,
    blank: int,
    separator: str | None,
    star: str | None,
    language: str,
    source: str | None,
) -> tuple[Transcript, str | None]:
    """:func:`normalize_transcript` returning its warning's message (None:
    nothing dropped) instead of emitting it."""
    where = f"{source}: " if source else ""
    # control characters (NUL, escape, ...) are not part of any word: they separate words like whitespace
    originals = _CONTROL_CHARACTERS.sub(" ", text).split()
    if not originals:
        raise TranscriptError(
            f"{where}transcript is empty (nothing but whitespace)" if text else f"{where}transcript is empty"
        )
    label_set = _label_set(tuple(labels), blank, separator, star)
    normalizer = _Normalizer(label_set, language)
    spoken = _scaled_amounts(originals) if normalizer.numbers.english and not label_set.digits else originals
    words = tuple(TranscriptWord(w, normalizer.word(said), label_set.labels) for w, said in zip(originals, spoken))
    dropped = tuple(sorted(normalizer.dropped))
    hint = ""
    if any(c.isdigit() for c in dropped) and normalizer.numbers.code is None:
        hint = f" (numbers cannot be spelled out for language {language!r})"
    if not any(t != label_set.star_id for w in words for t in w.tokens):
        shown = ", ".join(repr(c) for c in dropped[:20]) + (", ..." if len(dropped) > 20 else "")
        raise TranscriptError(
            f"{where}no character of the transcript can be represented by the model's labels"
            + (f" (unrepresentable: {shown})" if shown else "")
            + hint
        )
    message = None
    if dropped:
        message = (
            f"{source or 'transcript'}: dropped characters the model cannot represent: "
            + ", ".join(repr(c) for c in dropped)
            + hint
        )
    return Transcript(words, dropped), message


def normalize_transcript_collecting(
    text: str,
    labels: Sequence[str],
    *,
    blank: int = 0,
    separator: str | None = "|",
    star: str | None = None,
    language: str = "en",
    source: str | None = None,
) -> tuple[Transcript, tuple[str, ...]]:
    """:func:`normalize_transcript` returning its warning messages as data
    instead of emitting them: thread-safe without a lock (corpus workers
    call it in parallel) and never mixed with warnings raised elsewhere in
    the process. Options are those of :func:`normalize_transcript`."""
    transcript, message = _normalize(
        text, labels, blank=blank, separator=separator, star=star, language=language, source=source
    )
    return transcript, (() if message is None else (message,))


# --------------------------------------------------------------------------- phone models

#: The espeak-ng voice of each phonemizer a phone model can name
#: (:data:`aligner.models.alignment_model.PHONEMIZERS`).
_PHONEMIZER_VOICES = {"espeak-arpabet": "en-us"}


def phonemizer_voice(phonemizer: str, language: str = "en") -> str:
    """The espeak-ng voice ``phonemizer`` speaks, checked against the
    transcript ``language`` (``"espeak-arpabet"``: American English, so
    ``"en"``, ``"en_US"``, ``"eng"``...).

    Raises:
        ModelError: an unknown phonemizer.
        AlignerError: ``language`` is not one the phonemizer speaks.
    """
    voice = _PHONEMIZER_VOICES.get(phonemizer)
    if voice is None:
        raise ModelError(f"unknown phonemizer {phonemizer!r}; known: {', '.join(_PHONEMIZER_VOICES)}")
    code = _num2words_language(language)
    if code is None or code.split("_")[0] != voice.split("-")[0]:
        raise AlignerError(
            f"the phone model's phonemizer {phonemizer!r} reads English transcripts only, not language {language!r}"
        )
    return voice


@lru_cache(maxsize=8)
def _phone_ids(labels: tuple[str, ...], blank: int) -> dict[str, int]:
    """ARPAbet phone -> label id in ``labels``.

    Raises:
        ModelError: a phone is missing from the labels, or is the blank.
    """
    from .phones import ARPABET

    missing = [phone for phone in ARPABET if phone not in labels]
    if missing:
        raise ModelError(f"the phone model's labels lack the phone(s) {', '.join(missing)}")
    ids = {phone: labels.index(phone) for phone in ARPABET}
    if blank in ids.values():
        raise ModelError(f"the phone model's blank label {labels[blank]!r} is a phone")
    return ids


def _phonemized(spelled: Transcript, labels: tuple[str, ...], blank: int, voice: str, source: str | None) -> Transcript:
    """A transcript normalized to :data:`ENGLISH_LABELS` -> the same words
    with phone ids: each word's spelled-out form (sub-words joined by
    spaces, lower case), all phonemized in one call."""
    from .phones import phonemize

    ids = _phone_ids(labels, blank)
    present = [index for index, word in enumerate(spelled.words) if word.tokens]
    spoken = [spelled.words[index].normalized.replace("|", " ").lower() for index in present]
    tokens: list[tuple[int, ...]] = [()] * len(spelled.words)
    for index, phones in zip(present, phonemize(spoken, voice=voice)):
        tokens[index] = tuple(ids[phone] for phone in phones)
    if not any(tokens):
        where = f"{source}: " if source else ""
        raise TranscriptError(
            f"{where}no word of the transcript could be phonemized "
            f"(espeak-ng gave no phones for: {' '.join(spoken)[:200]})"
        )
    words = tuple(TranscriptWord(word.text, phones, labels, " ") for word, phones in zip(spelled.words, tokens))
    return Transcript(words, spelled.dropped)


def phonemize_transcript(
    text: str,
    labels: Sequence[str],
    *,
    blank: int = 0,
    phonemizer: str = "espeak-arpabet",
    language: str = "en",
    source: str | None = None,
) -> Transcript:
    """Turn a transcript into phone ids for a phone model, word by word.

    The text is normalized exactly as for an English character model
    (:func:`normalize_transcript` with :data:`ENGLISH_LABELS`: numbers,
    currency and symbols spelled out, punctuation stripped, each original
    word kept with its spelling); then the spelled-out form of every word
    (``"$5"`` -> ``"five dollars"``) is phonemized by
    :func:`aligner.phones.phonemize`, all words in one call so they are
    pronounced as in running speech. A word that gets no phone keeps
    ``tokens=()`` (it comes out ``aligned=False``). Words' ``normalized``
    join their phones with spaces (``"F AY V D AA L ER Z"``).

    Args:
        text: the transcript; words are split on its whitespace and its
            control characters (NUL, escape, ...), which belong to no word.
        labels: the model's labels; must hold the 39 ARPAbet phones.
        blank: id of the blank (silence) label.
        phonemizer: one of :data:`aligner.models.alignment_model.PHONEMIZERS`.
        language: language of the text; must be English.
        source: a file name to put in messages.

    Raises:
        TranscriptError: the transcript is empty, or nothing in it can be
            spelled or phonemized.
        ModelError: unknown phonemizer, or labels without the phones.
        AlignerError: a language the phonemizer does not speak;
            :class:`~aligner.phones.PhonemizerError` when espeak-ng is missing.

    Warns:
        UnrepresentableCharacterWarning: once, listing the dropped characters.
    """
    transcript, messages = _phonemize_collecting(text, tuple(labels), blank, phonemizer, language, source)
    for message in messages:
        warnings.warn(message, UnrepresentableCharacterWarning, stacklevel=2)
    return transcript


def _phonemize_collecting(
    text: str,
    labels: tuple[str, ...],
    blank: int,
    phonemizer: str,
    language: str,
    source: str | None,
    spoken_words: Callable[[int], None] | None = None,
) -> tuple[Transcript, tuple[str, ...]]:
    """:func:`phonemize_transcript` returning its warning messages as data;
    ``spoken_words`` (see :func:`transcript_for_model`) is called before phonemizing."""
    voice = phonemizer_voice(phonemizer, language)
    _phone_ids(labels, blank)
    spelled, messages = normalize_transcript_collecting(text, ENGLISH_LABELS, language=language, source=source)
    if spoken_words is not None:
        spoken_words(sum(1 for word in spelled.words if word.tokens))
    return _phonemized(spelled, labels, blank, voice, source), messages


def transcript_for_model(
    text: str,
    model: AlignmentModel,
    *,
    language: str = "en",
    source: str | None = None,
    spoken_words: Callable[[int], None] | None = None,
) -> tuple[Transcript, tuple[str, ...]]:
    """The transcript of ``text`` in ``model``'s labels, with its warning
    messages returned as data instead of emitted (thread-safe): :func:`phonemize_transcript`
    for a phone model (``model.phonemizer`` set), else
    :func:`normalize_transcript` with the model's labels and special tokens.

    ``spoken_words``: for a phone model, called with the number of words
    that have letters once the text is spelled out, before the (costlier)
    phonemizing; it may raise to stop there (a transcript with more words
    than its audio has frames, :func:`aligner.fits.check_word_count`).

    Raises:
        As :func:`normalize_transcript` and :func:`phonemize_transcript`.
    """
    if model.phonemizer is None:
        return normalize_transcript_collecting(
            text,
            model.labels,
            blank=model.blank,
            separator=model.separator,
            star=model.star,
            language=language,
            source=source,
        )
    return _phonemize_collecting(
        text, tuple(model.labels), model.blank, model.phonemizer, language, source, spoken_words
    )


def read_transcript(path: str | os.PathLike[str]) -> str:
    """Read a plain-text transcript (``.txt``, ``.lab``, ...) as one line.

    The file must be UTF-8 (a byte-order mark is allowed); line breaks become
    single spaces.

    Raises:
        TranscriptError: the file is missing, unreadable or not valid UTF-8.
    """
    path = Path(path)
    try:
        data = path.read_bytes()
    except FileNotFoundError:
        raise TranscriptError(f"transcript file not found: {path}") from None
    except IsADirectoryError:
        raise TranscriptError(f"{path}: is a directory, not a transcript file") from None
    except OSError as error:
        raise TranscriptError(f"{path}: cannot read transcript: {error.strerror or error}") from None
    try:
        text = data.decode("utf-8-sig")
    except UnicodeDecodeError as error:
        hint = " (it looks like UTF-16)" if data[:2] in (b"\xff\xfe", b"\xfe\xff") else ""
        raise TranscriptError(
            f"{path}: not valid UTF-8: byte 0x{data[error.start]:02x} at offset {error.start}{hint}; "
            "re-save the file as UTF-8"
        ) from None
    return " ".join(line.strip() for line in text.splitlines() if line.strip())
