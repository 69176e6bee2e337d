"""Read Praat TextGrids back into :class:`~aligner.records.Alignment` records.

:func:`read_textgrid` turns a word tier (and optionally a character or phone
tier) of any Praat text TextGrid into an ``Alignment``, for plotting and for
comparing an automatic alignment with a human one. :func:`read_tiers` gives
the raw tiers.

Reading gives :mod:`textgrid` objects (``textgrid.TextGrid``, the package
that also writes them, see :mod:`aligner.writers`). This module decodes the
bytes (UTF-8 with or without BOM, UTF-16 with or without BOM, else Latin-1
with a warning), checks the ``ooTextFile`` header, and reads the values of
both of Praat's text formats, the long one (``xmin = 0``, ``intervals [1]:``)
and the short one (bare values), interval and point tiers alike, as Praat
does: numbers, texts in double quotes (``""`` is a quote; a text may span
lines) and ``<exists>`` flags, skipping the names of the long format and
``!`` comments (the ``textgrid`` package's own line-by-line reader takes
only a path, rounds times to 5 decimals, loses point tiers' time domains and
stops at a comment). Errors become :class:`TextGridError` naming the file.
Labels are stripped of surrounding white space, entries come sorted by time,
and a tier's or the grid's time domain widens to cover its entries (as
praatio, used before, read them). Binary TextGrids are not read.
"""

from __future__ import annotations

import bisect
import math
import os
import re
import unicodedata
from dataclasses import dataclass
from pathlib import Path
from typing import cast

import textgrid

from .errors import TextGridError
from .records import Alignment, CharSpan, WordSpan

__all__ = ["TextGridError", "TextGridTier", "read_textgrid", "read_tiers", "normalize_word"]


@dataclass(frozen=True)
class TextGridTier:
    """One tier of a TextGrid.

    Attributes:
        name: the tier name.
        kind: ``"IntervalTier"`` or ``"TextTier"`` (a point tier).
        xmin, xmax: the tier's time domain in seconds.
        items: ``(start, end, label)`` for an interval tier, ``(time, time,
            label)`` for a point tier, by time; empty labels kept, labels
            stripped of surrounding white space.
    """

    name: str
    kind: str
    xmin: float
    xmax: float
    items: tuple[tuple[float, float, str], ...]

    @property
    def is_interval(self) -> bool:
        return self.kind == "IntervalTier"


# ------------------------------------------------------------------ reading

_HEADER = re.compile(r'\s*File type = "ooTextFile[^"\n]*"\s*Object class = "([^"\n]*)"')


def _decode(raw: bytes, path: Path) -> tuple[str, str | None]:
    """Text of a TextGrid file and a warning when the encoding was a guess."""
    if raw.startswith(b"ooBinaryFile"):
        raise TextGridError(
            f"{path}: binary TextGrids are not supported; save it from Praat as a text file (Save as text file...)"
        )
    if raw.startswith((b"\xff\xfe", b"\xfe\xff")):
        encoding = "utf-16"
    elif raw[:1] == b"\x00":
        encoding = "utf-16-be"
    elif raw[1:2] == b"\x00":
        encoding = "utf-16-le"
    else:
        encoding = "utf-8-sig"  # with or without BOM
    try:
        return raw.decode(encoding), None
    except UnicodeDecodeError:
        if encoding != "utf-8-sig":
            raise TextGridError(f"{path}: cannot decode the file as {encoding.upper()}") from None
    # Praat itself writes UTF-8 or UTF-16; older tools wrote Latin-1
    return raw.decode("latin-1"), f"{path}: not valid UTF-8 or UTF-16; read as Latin-1"


class ParsingError(ValueError):
    """The values of a TextGrid do not make one (named in the message)."""


# One value of Praat's text format: a text in quotes (its "" is a quote), an
# <exists> flag, a number (after a space, "=" or ":", so not the digits of a
# name or of an [n] index), a ! comment (its quotes open no text) or a stray
# quote or "<". What comes before it (the names of the long format, white
# space) is skipped; the value is optional, so a match never backtracks.
_TOKEN = re.compile(
    r'(?:[^"!<\d+.\-]+|(?<=[^\s=:])[-+.\d])*'
    r'(?:(?P<text>"(?:[^"]|"")*")|(?P<flag><[A-Za-z]+>)|(?P<number>[-+.\d][^\s"!\[<=:]*)'
    r'|(?P<comment>![^\n]*)|(?P<stray>["<]))?'
)
_NUMBER = re.compile(r"[-+]?(?:\d+(?:\.\d*)?|\.\d+)(?:[eE][-+]?\d+)?")
_INTERVAL = ("number", "number", "text")
_POINT = ("number", "text")


class _Values:
    """The values of a TextGrid's text after its header, read in order."""

    def __init__(self, text: str, start: int) -> None:
        self.text = text
        self.kinds: list[str] = []
        self.values: list[str | float] = []
        self.offsets: list[int] = []
        for match in _TOKEN.finditer(text, start):
            group = match.lastgroup
            if group is None or group == "comment":
                continue
            kind, raw = group, match[group]
            value: str | float = raw
            if kind == "text":
                value = raw[1:-1].replace('""', '"')
            elif kind == "number":
                if _NUMBER.fullmatch(raw):
                    value = float(raw) + 0.0  # -0 is 0
                else:
                    kind = "stray"
            self.kinds.append(kind)
            self.values.append(value)
            self.offsets.append(match.start(group))
        self.position = 0

    def _where(self, index: int) -> str:
        return f"line {self.text.count(chr(10), 0, self.offsets[index]) + 1}"

    def next(self, kind: str, what: str) -> str | float:
        index = self.position
        if index == len(self.kinds):
            raise ParsingError(f"the file ends where {what} should be")
        if self.kinds[index] != kind:
            found, value = self.kinds[index], self.values[index]
            shown = (
                f'"{value}"'
                if found == "text"
                else f"{value:g}"
                if found == "number"
                else 'a " that opens a text never closed'
                if value == '"'
                else value
            )
            raise ParsingError(f"{self._where(index)}: {what} should be here, not {shown}")
        self.position += 1
        return self.values[index]

    def peek(self) -> str | None:
        return self.kinds[self.position] if self.position < len(self.kinds) else None

    def count(self, what: str) -> int:
        value = cast(float, self.next("number", what))
        if value < 0 or value != int(value):
            raise ParsingError(f"{self._where(self.position - 1)}: {what} is {value:g}, not a count")
        return int(value)

    def starts_with(self, kinds: tuple[str, ...]) -> bool:
        return tuple(self.kinds[self.position : self.position + len(kinds)]) == kinds

    def runs(self, kinds: tuple[str, ...], size: int, names: tuple[str, ...], entry: str, tier: str) -> list:
        """The values of ``size`` entries of ``kinds`` each (``names`` says
        what each value is and ``entry`` what an entry of ``tier`` is, for
        messages)."""
        end = self.position + len(kinds) * size
        if self.kinds[self.position : end] != list(kinds) * size:  # name the first wrong value
            for number in range(1, size + 1):
                for kind, name in zip(kinds, names):
                    self.next(kind, f"the {name} of {entry} {number} of tier {tier!r}")
        values = self.values[self.position : end]
        self.position = end
        return values

    def check_end(self, tiers: int) -> None:
        if self.position < len(self.kinds):
            raise ParsingError(
                f"{self._where(self.position)}: more after the last of the {tiers} tier(s) the TextGrid says it has"
            )


def _parse(values: _Values) -> textgrid.TextGrid:
    """A ``textgrid.TextGrid`` of the values (see the module documentation)."""
    low, high = values.next("number", "the TextGrid's xmin"), values.next("number", "the TextGrid's xmax")
    present = values.next("flag", "<exists> (the tiers)") if values.peek() == "flag" else "<exists>"
    count = values.count("the number of tiers") if present == "<exists>" else 0
    tiers: list[textgrid.IntervalTier | textgrid.PointTier] = []
    for number in range(1, count + 1):
        kind = values.next("text", f"the class of tier {number}")
        if kind not in ("IntervalTier", "TextTier"):
            raise ParsingError(f"tier {number} is a {kind!r}; IntervalTier or TextTier expected")
        name = cast(str, values.next("text", f"the name of tier {number}"))
        if any(tier.name == name for tier in tiers):
            raise ParsingError(f"two tiers have the same name {name!r}")
        tier_low = values.next("number", f"the xmin of tier {name!r}")
        tier_high = values.next("number", f"the xmax of tier {name!r}")
        size = values.count(f"the number of entries of tier {name!r}")
        if size and kind == "TextTier" and values.starts_with(_INTERVAL):
            raise ParsingError(f"tier {name!r} is a point tier (TextTier) but its entries are intervals")
        if size and kind == "IntervalTier" and values.starts_with(_POINT):
            raise ParsingError(f"tier {name!r} is an interval tier but its entries are points")
        if kind == "IntervalTier":
            flat = values.runs(_INTERVAL, size, ("start", "end", "text"), "interval", name)
            intervals = sorted(zip(flat[0::3], flat[1::3], (label.strip() for label in flat[2::3])))
            for start, end, label in intervals:
                if not start < end:
                    raise ParsingError(
                        f"tier {name!r}: the interval {label!r} starts at {start:g} s and ends at {end:g} s"
                    )
            for (start, end, label), (start2, end2, label2) in zip(intervals, intervals[1:]):
                if end > start2:
                    raise ParsingError(
                        f"tier {name!r}: the intervals ({start:g}, {end:g}, {label!r}) and "
                        f"({start2:g}, {end2:g}, {label2!r}) overlap"
                    )
            tier = textgrid.IntervalTier(name, min([tier_low] + flat[0::3]), max([tier_high] + flat[1::3]))
            tier.intervals = [textgrid.Interval(*interval) for interval in intervals]
        else:
            flat = values.runs(_POINT, size, ("time", "text"), "point", name)
            points = sorted(zip(flat[0::2], (label.strip() for label in flat[1::2])))
            tier = textgrid.PointTier(name, min([tier_low] + flat[0::2]), max([tier_high] + flat[0::2]))
            tier.points = [textgrid.Point(*point) for point in points]
        tiers.append(tier)
    values.check_end(count)
    grid = textgrid.TextGrid(
        minTime=min([low] + [t.minTime for t in tiers]), maxTime=max([high] + [t.maxTime for t in tiers])
    )
    grid.tiers = tiers
    return grid


def _load(path: str | os.PathLike[str]) -> tuple[Path, textgrid.TextGrid, str | None]:
    path = Path(path)
    if not path.exists():
        raise TextGridError(f"{path}: TextGrid file not found")
    if path.is_dir():
        raise TextGridError(f"{path}: is a folder, not a TextGrid file")
    try:
        raw = path.read_bytes()
    except OSError as error:
        raise TextGridError(f"{path}: cannot read the TextGrid ({error.strerror or error})") from None
    if not raw.strip():
        raise TextGridError(f"{path}: the TextGrid file is empty")
    text, warning = _decode(raw, path)
    text = text.replace("\r\n", "\n").replace("\r", "\n")
    header = _HEADER.match(text)
    if header is None:
        raise TextGridError(f'{path}: not a Praat TextGrid (the file does not start with File type = "ooTextFile")')
    if header[1] != "TextGrid":
        raise TextGridError(f"{path}: a Praat {header[1]!r} file, not a TextGrid")
    try:
        grid = _parse(_Values(text, header.end()))
    except ParsingError as error:
        raise TextGridError(f"{path}: malformed or truncated TextGrid ({type(error).__name__}: {error})") from error
    return path, grid, warning


def _tier(tier: textgrid.IntervalTier | textgrid.PointTier) -> TextGridTier:
    if isinstance(tier, textgrid.IntervalTier):
        items = tuple((i.minTime, i.maxTime, i.mark) for i in tier.intervals)
        return TextGridTier(tier.name, "IntervalTier", tier.minTime, tier.maxTime, items)
    items = tuple((p.time, p.time, p.mark) for p in tier.points)
    return TextGridTier(tier.name, "TextTier", tier.minTime, tier.maxTime, items)


def read_tiers(path: str | os.PathLike[str]) -> tuple[TextGridTier, ...]:
    """All tiers of a Praat text TextGrid, in file order.

    Raises:
        TextGridError: the file is missing, unreadable or not a text TextGrid.
    """
    return tuple(_tier(tier) for tier in _load(path)[1].tiers)


# ---------------------------------------------------------------- Alignment


def normalize_word(text: str) -> str:
    """A word reduced for comparison: NFKC, upper case, only letters, digits
    and apostrophes (typographic ones become ``'``): ``"Don’t,"`` → ``"DON'T"``."""
    text = unicodedata.normalize("NFKC", text).replace("\u2019", "'").replace("\u02bc", "'")
    kept = (ch for ch in text if ch == "'" or unicodedata.category(ch)[0] in "LNM")
    return "".join(kept).upper()


def _find_tier(tiers: list[TextGridTier], name: str, path: Path, argument: str) -> TextGridTier:
    found = next((t for t in tiers if t.name == name), None)
    if found is None:
        matches = [t for t in tiers if t.name.casefold() == name.casefold()]
        found = matches[0] if len(matches) == 1 else None
    if found is None:
        present = ", ".join(repr(t.name) for t in tiers) or "none"
        raise TextGridError(f"{path}: no tier named {name!r} ({argument}); tiers present: {present}")
    if not found.is_interval:
        raise TextGridError(f"{path}: tier {found.name!r} ({argument}) is a point tier; an interval tier is needed")
    return found


def _labelled(tier: TextGridTier) -> list[tuple[float, float, str]]:
    """Non-empty intervals of a tier, by start time, labels stripped."""
    return sorted((s, e, label.strip()) for s, e, label in tier.items if label.strip())


def read_textgrid(
    path: str | os.PathLike[str], *, words_tier: str = "words", chars_tier: str | None = None
) -> Alignment:
    """Read a Praat TextGrid as an :class:`~aligner.records.Alignment`.

    Every interval of ``words_tier`` with a non-blank label becomes a
    :class:`~aligner.records.WordSpan`; empty intervals are gaps. Every
    labelled interval of the character/phone tier becomes a
    :class:`~aligner.records.CharSpan` of the word whose interval contains
    its midpoint (labels outside any word are dropped, with a note in
    ``warnings``). TextGrids carry no scores: all scores are NaN.

    Args:
        path: the TextGrid (long or short text format, UTF-8 or UTF-16).
        words_tier: name of the word tier (exact, else case-insensitive).
        chars_tier: name of the character or phone tier; None picks
            ``"chars"`` or ``"phones"`` when the file has one (the tiers
            :func:`aligner.writers.to_textgrid` writes), else none.

    Returns:
        An ``Alignment`` with ``duration`` = the TextGrid's ``xmax``, word
        ``text`` = the label, ``normalized`` = :func:`normalize_word` of it,
        and ``phonetic`` = True when the character tier's name starts with
        ``"phon"``.

    Raises:
        TextGridError: the file is missing or malformed, a tier is absent
            (the message lists the tiers present) or is a point tier, or the
            TextGrid's ``xmax`` is not positive.

    Examples:
        The human alignment of the example recording (from the repository
        root):

        >>> from aligner.readers import read_textgrid
        >>> reference = read_textgrid("examples/example.reference.TextGrid")
        >>> reference.duration, len(reference.words)
        (9.406875, 19)
        >>> first = reference.words[0]
        >>> first.text, first.normalized, first.start, first.end
        ('In', 'IN', 0.4, 0.533515)
        >>> [char.label for char in first.chars]
        ['I', 'n']
    """
    path, grid, encoding_warning = _load(path)
    tiers, xmax = [_tier(tier) for tier in grid.tiers], grid.maxTime
    if xmax <= 0:
        raise TextGridError(f"{path}: the TextGrid ends at {xmax} s; its xmax must be positive")
    words = _labelled(_find_tier(tiers, words_tier, path, "words tier"))
    if chars_tier is None:
        chars_tier = next((t.name for t in tiers if t.is_interval and t.name in ("chars", "phones")), None)
    chars = [] if chars_tier is None else _labelled(_find_tier(tiers, chars_tier, path, "chars tier"))

    starts = [start for start, _, _ in words]
    per_word: list[list[CharSpan]] = [[] for _ in words]
    dropped = []
    for start, end, label in chars:
        middle = (start + end) / 2
        index = bisect.bisect_right(starts, middle) - 1
        if index >= 0 and middle < words[index][1]:
            per_word[index].append(CharSpan(label, start, end, math.nan))
        else:
            dropped.append(label)
    warnings = [encoding_warning] if encoding_warning else []
    if dropped:
        shown = " ".join(dropped[:10]) + (" ..." if len(dropped) > 10 else "")
        warnings.append(
            f"{path}: {len(dropped)} label(s) of tier {chars_tier!r} outside any word were dropped: {shown}"
        )
    spans = tuple(
        WordSpan(text, normalize_word(text), start, end, math.nan, tuple(chars_of), True)
        for (start, end, text), chars_of in zip(words, per_word)
    )
    phonetic = chars_tier is not None and chars_tier.casefold().startswith("phon")
    return Alignment(spans, float(xmax), phonetic=phonetic, warnings=tuple(warnings))
