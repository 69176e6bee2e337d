"""Read Praat TextGrids back into :class:`~aligner.records.Alignment` records.

:func:`read_textgrid` turns a word tier (and optionally a character or phone
tier) of any Praat text TextGrid into an ``Alignment``, for plotting and for
comparing an automatic alignment with a human one. :func:`read_tiers` gives
the raw tiers.

Parsing is done by praatio (``praatio.textgrid.openTextgrid``), which reads
both of Praat's text formats, the long one (``xmin = 0``, ``intervals [1]:``)
and the short one (bare values), interval and point tiers alike. This module
only decodes the bytes first (UTF-8 with or without BOM, UTF-16 with or
without BOM, else Latin-1 with a warning), checks the ``ooTextFile`` header
and turns praatio's errors into :class:`TextGridError` naming the file. As
praatio does, labels are stripped of surrounding white space and entries
come sorted by time. Binary TextGrids are not read.
"""

from __future__ import annotations

import bisect
import math
import os
import re
import tempfile
import unicodedata
from dataclasses import dataclass
from pathlib import Path

from praatio import textgrid
from praatio.utilities.errors import PraatioException

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
            stripped of surrounding white space (as praatio reads them).
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
        raise TextGridError(f"{path}: binary TextGrids are not supported; save it from Praat as a "
                            "text file (Save as text file...)")
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


def _load(path: str | os.PathLike[str]) -> tuple[Path, textgrid.Textgrid, str | None]:
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
    header = _HEADER.match(text)
    if header is None:
        raise TextGridError(f"{path}: not a Praat TextGrid (the file does not start with "
                            'File type = "ooTextFile")')
    if header[1] != "TextGrid":
        raise TextGridError(f"{path}: a Praat {header[1]!r} file, not a TextGrid")
    # praatio reads only UTF-8 and UTF-16 with BOM from a path: give it a UTF-8
    # copy, ending in a newline (without one it drops a short-format file's last entry)
    with tempfile.TemporaryDirectory() as folder:
        copy = Path(folder) / "copy.TextGrid"
        copy.write_text(text + "\n", encoding="utf-8")
        try:
            grid = textgrid.openTextgrid(str(copy), includeEmptyIntervals=True, reportingMode="silence")
        except (PraatioException, ValueError, IndexError) as error:
            raise TextGridError(f"{path}: malformed or truncated TextGrid "
                                f"({type(error).__name__}: {error})") from error
    return path, grid, warning


def _tier(tier: textgrid.IntervalTier | textgrid.PointTier) -> TextGridTier:
    if tier.tierType == "IntervalTier":
        items = tuple((start, end, label) for start, end, label in tier.entries)
    else:
        items = tuple((time, time, label) for time, label in tier.entries)
    return TextGridTier(tier.name, tier.tierType, tier.minTimestamp, tier.maxTimestamp, items)


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
        raise TextGridError(f"{path}: tier {found.name!r} ({argument}) is a point tier; "
                            "an interval tier is needed")
    return found


def _labelled(tier: TextGridTier) -> list[tuple[float, float, str]]:
    """Non-empty intervals of a tier, by start time, labels stripped."""
    return sorted((s, e, label.strip()) for s, e, label in tier.items if label.strip())


def read_textgrid(path: str | os.PathLike[str], *, words_tier: str = "words",
                  chars_tier: str | None = None) -> Alignment:
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
    """
    path, grid, encoding_warning = _load(path)
    tiers, xmax = [_tier(tier) for tier in grid.tiers], grid.maxTimestamp
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
        warnings.append(f"{path}: {len(dropped)} label(s) of tier {chars_tier!r} outside any word "
                        f"were dropped: {shown}")
    spans = tuple(WordSpan(text, normalize_word(text), start, end, math.nan, tuple(chars_of), True)
                  for (start, end, text), chars_of in zip(words, per_word))
    phonetic = chars_tier is not None and chars_tier.casefold().startswith("phon")
    return Alignment(spans, float(xmax), phonetic=phonetic, warnings=tuple(warnings))
