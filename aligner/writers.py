"""Write an :class:`~aligner.records.Alignment` as TextGrid, JSON, CTM, SRT or
WebVTT.

Each format has a pure builder (``to_textgrid``, ``to_json``, ``to_ctm``,
``to_srt``, ``to_vtt``) and :func:`write_alignment` writes any of them
atomically (see :mod:`aligner.atomic`), picking the format from the file
extension unless it is given.

Words that could not be placed and skipped audio
------------------------------------------------
A word with ``aligned=False`` (no representable character, or not found in
the audio by partial mode) keeps its place in every output, at the interval
between its placed neighbours, and is marked:

* TextGrid: an extra interval tier ``unaligned`` holds the word (same
  interval, same label); audio skipped by partial mode
  (:attr:`~aligner.records.Alignment.skipped`) is labelled ``skipped`` in an
  extra tier ``skipped``. Each tier is written only when it has an entry.
* JSON: ``"aligned": false`` and its (low) ``"score"``; top-level
  ``"skipped"`` lists ``[start, end]`` pairs.
* CTM: confidence 0.
* SRT: the word in italics, ``<i>word</i>``; WebVTT: ``<i.unaligned>word</i>``
  (italic, and styleable with ``::cue(.unaligned)``).

Characters and phones
---------------------
The labels under each word (:attr:`~aligner.records.WordSpan.chars`) are
characters for a character model and phones for a phonetic one
(:attr:`~aligner.records.Alignment.phonetic`). The TextGrid tier and the
JSON key are named after them: ``chars`` or ``phones``. CTM, SRT and WebVTT
are word-level formats: they hold the words only, for either kind of model
(the phones are in the TextGrid and the JSON).
"""

from __future__ import annotations

import json
import math
import numbers
import os
import re
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import textgrid

from .atomic import atomic_path, atomic_write_text, check_not_input
from .errors import OutputError
from .records import Alignment, WordSpan

__all__ = [
    "FORMATS",
    "SUFFIXES",
    "format_from_path",
    "json_text",
    "to_ctm",
    "to_json",
    "to_srt",
    "to_textgrid",
    "to_vtt",
    "write_alignment",
]

#: The file extension written for each output format of :func:`write_alignment`.
SUFFIXES: dict[str, str] = {"textgrid": ".TextGrid", "json": ".json", "ctm": ".ctm", "srt": ".srt", "vtt": ".vtt"}
#: Output formats understood by :func:`write_alignment`.
FORMATS: tuple[str, ...] = tuple(SUFFIXES)

_EXTENSIONS = {suffix.lower(): fmt for fmt, suffix in SUFFIXES.items()}

#: Control characters (NUL, escape, ...) never reach an output file.
_CONTROL = re.compile(r"[\x00-\x1f\x7f-\x9f]")


def _clean(text: str) -> str:
    """``text`` without control characters (a label as written to a file)."""
    return _CONTROL.sub("", str(text))


def _markup_escape(text: str) -> str:
    """``text`` cleaned, with ``&``, ``<`` and ``>`` escaped for SRT / WebVTT cues."""
    return _clean(text).replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;")


#: Keyword options each format accepts in :func:`write_alignment`.
_OPTIONS: dict[str, tuple[str, ...]] = {
    "textgrid": (),
    "json": (),
    "ctm": ("utterance", "channel"),
    "srt": ("mode", "max_words", "max_seconds", "max_gap"),
    "vtt": ("mode", "max_words", "max_seconds", "max_gap"),
}

#: Boundaries closer than this (seconds) are the same boundary.
SNAP_SECONDS = 1e-6
#: Width given to an interval that would otherwise have none (seconds).
MIN_INTERVAL_SECONDS = 1e-3
#: Label of skipped audio in the TextGrid tier ``skipped``.
SKIPPED_LABEL = "skipped"


# --------------------------------------------------------------------- formats


def format_from_path(path: str | os.PathLike[str]) -> str | None:
    """The output format named by the extension of ``path`` (case-insensitive),
    e.g. ``"textgrid"`` for ``a.TextGrid``; None for an unknown extension."""
    return _EXTENSIONS.get(Path(path).suffix.lower())


def _resolve_format(path: Path, format: str | None) -> str:
    valid = ", ".join(FORMATS)
    if format is not None:
        name = str(format).strip().lower().lstrip(".")
        if name not in FORMATS:
            raise OutputError(f"unknown output format {format!r}; valid formats: {valid}")
        return name
    inferred = format_from_path(path)
    if inferred is None:
        raise OutputError(
            f"cannot tell the output format of {str(path)!r} from its extension "
            f"{path.suffix or '(none)'!r}; use one of .TextGrid, .json, .ctm, .srt, .vtt "
            f"or name the format (valid formats: {valid})"
        )
    return inferred


def write_alignment(
    alignment: Alignment, path: str | os.PathLike[str], format: str | None = None, **options: Any
) -> Path:
    """Write ``alignment`` to ``path`` atomically.

    Args:
        alignment: the alignment to write.
        path: output file; its parent folders are created.
        format: one of :data:`FORMATS` (case-insensitive); by default taken
            from the extension of ``path``. An explicit format wins over the
            extension.
        **options: passed to the builder of the format: ``utterance`` and
            ``channel`` for CTM (:func:`to_ctm`); ``mode``, ``max_words``,
            ``max_seconds`` and ``max_gap`` for SRT / WebVTT (:func:`to_srt`).

    Returns:
        ``path`` as a :class:`~pathlib.Path`.

    Raises:
        OutputError: unknown or missing format, an option the format does not
            take, bad option values, or a file that cannot be written.
    """
    if not isinstance(alignment, Alignment):
        raise OutputError(f"write_alignment needs an Alignment (from aligner.align), not {type(alignment).__name__}")
    if not isinstance(path, (str, os.PathLike)):
        raise OutputError(f"output path must be a str or path, not {type(path).__name__}")
    target = Path(path)
    name = _resolve_format(target, format)
    if alignment.audio is not None and str(alignment.audio) and not str(alignment.audio).startswith("<"):
        check_not_input(target, [alignment.audio])
    unknown = sorted(set(options) - set(_OPTIONS[name]))
    if unknown:
        accepted = ", ".join(_OPTIONS[name]) or "none"
        raise OutputError(f"option(s) {', '.join(unknown)} not valid for {name} output (accepted: {accepted})")

    if name == "textgrid":
        grid = to_textgrid(alignment)
        with atomic_path(target) as temporary:
            grid.write(str(temporary))
        return target
    if name == "json":
        text = json_text(alignment)
    elif name == "ctm":
        text = to_ctm(alignment, **options)
    elif name == "srt":
        text = to_srt(alignment, **options)
    else:
        text = to_vtt(alignment, **options)
    return atomic_write_text(target, text)


# -------------------------------------------------------------------- TextGrid


def _check_time(value: float, what: str) -> float:
    value = float(value)
    if not math.isfinite(value):
        raise OutputError(f"{what} has a non-finite time ({value})")
    return value


def _tier_intervals(
    items: Sequence[tuple[float, float, str]],
    duration: float,
    min_width: float = MIN_INTERVAL_SECONDS,
    snap: float = SNAP_SECONDS,
) -> list[tuple[float, float, str]]:
    """Turn labelled spans into a Praat interval tier: contiguous intervals
    covering ``[0, duration]`` exactly, strictly increasing, empty labels in
    the gaps.

    Times are clamped into ``[0, duration]``; a span starting before the end
    of the previous one starts at that end; boundaries closer than ``snap``
    merge. A span left with no width (an unaligned word between touching
    neighbours) gets ``min_width`` taken from its neighbours, so its label is
    never lost; when ``duration`` is too short for all minimum widths, gaps
    close first, then the spans' minimum widths shrink in proportion.
    """
    # 1. clamp, order, snap: a list of touching segments (start, end, label, is_span)
    segments: list[list[Any]] = []
    cursor = 0.0
    for start, end, label in items:
        start = min(max(start, 0.0), duration)
        end = min(max(end, 0.0), duration)
        start = max(start, cursor)
        end = max(end, start)
        if start - cursor <= snap:
            start = cursor
        if end - start <= snap:
            end = start
        if start > cursor:
            segments.append([cursor, start, "", False])
        segments.append([start, end, label, True])
        cursor = end
    if duration - cursor > snap or not segments:
        segments.append([cursor, duration, "", False])
    segments[-1][1] = duration  # a last boundary within ``snap`` of the end snaps to it

    # 2. minimum widths: spans need ``min_width``; gaps keep what they have up
    #    to ``min_width``, or may close completely when time is short
    minimum = [min_width if is_span else min(end - start, min_width) for start, end, _, is_span in segments]
    if sum(minimum) > duration:
        minimum = [m if segment[3] else 0.0 for m, segment in zip(minimum, segments)]
        total = sum(minimum)
        if total > duration:
            factor = duration / total * (1.0 - 1e-9)
            minimum = [m * factor for m in minimum]

    # 3. boundaries x[0] = 0 <= x[1] <= ... <= x[n] = duration, widened forward then backward
    x = [0.0] + [segment[1] for segment in segments]
    x[-1] = duration
    n = len(segments)
    for k in range(1, n):
        x[k] = max(x[k], x[k - 1] + minimum[k - 1])
    for k in range(n - 1, 0, -1):
        x[k] = min(x[k], x[k + 1] - minimum[k])
    labels = []
    bounds = [0.0]
    for k, segment in enumerate(segments):
        if segment[3] or x[k + 1] - x[k] > snap:
            labels.append(segment[2])
            bounds.append(x[k + 1])
        elif labels:  # a gap that closed: the previous interval takes its place
            bounds[-1] = x[k + 1]
    if not labels:  # a recording shorter than ``snap`` with nothing in it
        return [(0.0, duration, "")]
    if any(b <= a for a, b in zip(bounds, bounds[1:])):
        raise OutputError(f"cannot fit {len(labels)} intervals into a TextGrid of duration {duration} s")

    # 4. round boundaries to microseconds where that keeps them strictly increasing
    for k in range(1, len(bounds) - 1):
        rounded = round(bounds[k], 6)
        if bounds[k - 1] < rounded < bounds[k + 1]:
            bounds[k] = rounded
    return [(bounds[k], bounds[k + 1], label) for k, label in enumerate(labels)]


def _interval_tier(name: str, intervals: list[tuple[float, float, str]], duration: float) -> textgrid.IntervalTier:
    tier = textgrid.IntervalTier(name=name, minTime=0.0, maxTime=duration)
    # the intervals are ordered and contiguous already: append them instead of
    # ``tier.add``, whose sorted insertion is slow for long recordings
    tier.intervals.extend(textgrid.Interval(start, end, label) for start, end, label in intervals)
    return tier


def to_textgrid(alignment: Alignment) -> textgrid.TextGrid:
    """Build a Praat TextGrid (``textgrid`` package) of ``alignment``.

    Interval tiers from 0 to ``alignment.duration``: ``words`` (labels: the
    words as written) and ``chars`` (``phones`` for a phonetic model;
    labels: the model labels); then, only when there are any, ``unaligned``
    (the words with ``aligned=False``, at their intervals in ``words``) and
    ``skipped`` (audio skipped by partial mode, labelled ``skipped``). Gaps
    are intervals with an empty label. Times are made safe for Praat as
    described in :func:`_tier_intervals`.

    Raises:
        OutputError: ``alignment.duration`` is not a positive number, or a
            time is not finite.
    """
    duration = float(alignment.duration)
    if not (math.isfinite(duration) and duration > 0):
        raise OutputError(
            f"cannot write a TextGrid for a recording of duration {alignment.duration!r} s (it must be positive)"
        )
    words = [
        (_check_time(w.start, f"word {w.text!r}"), _check_time(w.end, f"word {w.text!r}"), _clean(w.text))
        for w in alignment.words
    ]
    chars = [
        (_check_time(c.start, f"label {c.label!r}"), _check_time(c.end, f"label {c.label!r}"), _clean(c.label))
        for c in alignment.chars
    ]
    name = Path(alignment.audio).stem if alignment.audio else None
    grid = textgrid.TextGrid(name=name, minTime=0.0, maxTime=duration)
    grid.append(_interval_tier("words", _tier_intervals(words, duration), duration))
    char_tier = "phones" if alignment.phonetic else "chars"
    grid.append(_interval_tier(char_tier, _tier_intervals(chars, duration), duration))
    flags = {
        "unaligned": [word for word, w in zip(words, alignment.words) if not w.aligned],
        "skipped": [
            (_check_time(start, "skipped audio"), _check_time(end, "skipped audio"), SKIPPED_LABEL)
            for start, end in alignment.skipped
        ],
    }
    for name, items in flags.items():
        if items:
            grid.append(_interval_tier(name, _tier_intervals(items, duration), duration))
    return grid


# ------------------------------------------------------------------------ JSON


def _seconds(value: float) -> float:
    return round(float(value), 6)


def _score(value: float) -> float | None:
    value = float(value)
    return value if math.isfinite(value) else None


def json_text(alignment: Alignment) -> str:
    """:func:`to_json` as text: one key per line and one word per line
    (json's C encoder writes each line; with ``indent`` json falls back to
    its pure-Python encoder, 3x slower). Ends with a newline.

    Raises:
        OutputError: a time is not finite.
    """
    data = to_json(alignment)

    def dumps(value: Any) -> str:
        return json.dumps(value, ensure_ascii=False, allow_nan=False)

    lines = ["{"]
    for index, (key, value) in enumerate(data.items()):
        comma = "," if index < len(data) - 1 else ""
        if key == "words":
            lines.append(f"  {dumps(key)}: [")
            lines += [f"    {dumps(word)}{',' if k < len(value) - 1 else ''}" for k, word in enumerate(value)]
            lines.append(f"  ]{comma}")
        else:
            lines.append(f"  {dumps(key)}: {dumps(value)}{comma}")
    return "\n".join(lines) + "\n}\n"


def to_json(alignment: Alignment) -> dict[str, Any]:
    """A JSON-ready dict of ``alignment``.

    Keys: ``audio``, ``model``, ``duration``, ``frame_seconds``, ``score``,
    ``warnings`` (text-stage warnings, e.g. dropped characters), ``skipped``
    (``[start, end]`` of audio skipped by partial mode), ``suspect`` (why
    the alignment is probably wrong somewhere, see :mod:`aligner.guard`;
    empty when it looks plausible) and ``words``, a
    list of ``{"text", "normalized", "start", "end", "score", "aligned",
    "chars": [{"label", "start", "end", "score"}]}``; for a phonetic
    alignment the list of labels is called ``"phones"`` instead of
    ``"chars"`` (and ``"normalized"`` is the phones joined by spaces when
    the model phonemizes its transcripts). Times are rounded to
    microseconds; a non-finite score becomes None (``null``).

    Raises:
        OutputError: a time is not finite.

    Examples:
        >>> from aligner.records import Alignment, CharSpan, WordSpan
        >>> from aligner.writers import to_json
        >>> word = WordSpan("Hi!", "HI", 0.1, 0.3, 0.9, (CharSpan("H", 0.1, 0.2, 0.95), CharSpan("I", 0.2, 0.3, 0.85)))
        >>> data = to_json(Alignment((word,), duration=0.5, model="demo"))
        >>> data["model"], data["duration"], data["score"]
        ('demo', 0.5, 0.9)
        >>> data["words"][0]["chars"][1]
        {'label': 'I', 'start': 0.2, 'end': 0.3, 'score': 0.85}
    """
    labels_key = "phones" if alignment.phonetic else "chars"
    words = []
    for w in alignment.words:
        what = f"word {w.text!r}"
        words.append(
            {
                "text": _clean(w.text),
                "normalized": None if w.normalized is None else _clean(w.normalized),
                "start": _seconds(_check_time(w.start, what)),
                "end": _seconds(_check_time(w.end, what)),
                "score": _score(w.score),
                "aligned": bool(w.aligned),
                labels_key: [
                    {
                        "label": _clean(c.label),
                        "start": _seconds(_check_time(c.start, f"label {c.label!r} of {what}")),
                        "end": _seconds(_check_time(c.end, f"label {c.label!r} of {what}")),
                        "score": _score(c.score),
                    }
                    for c in w.chars
                ],
            }
        )
    return {
        "audio": None if alignment.audio is None else str(alignment.audio),
        "model": None if alignment.model is None else str(alignment.model),
        "duration": _seconds(_check_time(alignment.duration, "the recording")),
        "frame_seconds": float(alignment.frame_seconds),
        "score": _score(alignment.score),
        "warnings": list(alignment.warnings),
        "skipped": [[_seconds(_check_time(t, "skipped audio")) for t in interval] for interval in alignment.skipped],
        "suspect": [_clean(reason) for reason in alignment.suspect],
        **({} if alignment.warp is None else {"warp": float(alignment.warp)}),
        "words": words,
    }


# ------------------------------------------------------------------------- CTM

_WHITESPACE = re.compile(r"\s+")


def to_ctm(alignment: Alignment, utterance: str | None = None, channel: str = "1") -> str:
    """Kaldi / NIST CTM: one line ``utt channel start duration word confidence``
    per word, in transcript order (words only, for a phonetic alignment too:
    its phones are in the TextGrid and JSON outputs).

    Start and duration are in seconds with 3 decimals (the duration is the
    difference of the rounded end and start, so they add up); the confidence
    is the word score with 3 decimals, 0 for words that could not be aligned
    (they are still listed; their own low score is in the JSON output).

    Args:
        utterance: utterance id; default: the stem of ``alignment.audio``
            (whitespace replaced by ``_``), or ``"utt"``.
        channel: channel id.

    Raises:
        OutputError: ``utterance`` or ``channel`` is empty or contains
            whitespace, a word is empty, or a time is not finite.

    Examples:
        >>> from aligner.records import Alignment, WordSpan
        >>> from aligner.writers import to_ctm
        >>> words = (WordSpan("Hello,", "HELLO", 0.1, 0.5, 0.9), WordSpan("world", "WORLD", 0.6, 1.0, 0.75))
        >>> print(to_ctm(Alignment(words, duration=1.2, audio="clips/greeting.wav")), end="")
        greeting 1 0.100 0.400 Hello, 0.900
        greeting 1 0.600 0.400 world 0.750
    """
    if utterance is None:
        stem = Path(alignment.audio).stem if alignment.audio else ""
        utterance = _WHITESPACE.sub("_", stem.strip()) or "utt"
    for what, value in (("utterance", utterance), ("channel", channel)):
        value = str(value)
        if not value or _WHITESPACE.search(value):
            raise OutputError(f"CTM {what} id {value!r} must be non-empty and contain no whitespace")
    lines = []
    for w in alignment.words:
        word = _WHITESPACE.sub("_", _clean(w.text).strip())
        if not word:
            raise OutputError(f"cannot write an empty word to CTM (normalized {w.normalized!r})")
        start = round(max(_check_time(w.start, f"word {w.text!r}"), 0.0), 3)
        end = round(max(_check_time(w.end, f"word {w.text!r}"), 0.0), 3)
        length = max(end - start, 0.0)
        score = float(w.score) if w.aligned and math.isfinite(float(w.score)) else 0.0
        lines.append(f"{utterance} {channel} {start:.3f} {length:.3f} {word} {score:.3f}\n")
    return "".join(lines)


# -------------------------------------------------------------- SRT and WebVTT


def _check_cue_options(mode: str, max_words: int, max_seconds: float, max_gap: float) -> None:
    if mode not in ("words", "lines"):
        raise OutputError(f"subtitle mode must be 'words' or 'lines', not {mode!r}")
    if isinstance(max_words, bool) or not isinstance(max_words, numbers.Integral) or max_words < 1:
        raise OutputError(f"max_words must be a positive integer, not {max_words!r}")
    if not (isinstance(max_seconds, numbers.Real) and max_seconds > 0 and math.isfinite(max_seconds)):
        raise OutputError(f"max_seconds must be a positive number of seconds, not {max_seconds!r}")
    if not (isinstance(max_gap, numbers.Real) and max_gap >= 0 and not math.isnan(max_gap)):
        raise OutputError(f"max_gap must be a non-negative number of seconds, not {max_gap!r}")


def _group_words(
    words: Sequence[WordSpan], mode: str, max_words: int, max_seconds: float, max_gap: float
) -> list[list[WordSpan]]:
    """Words per cue: one each (``"words"``), or runs that stay within
    ``max_words`` words and ``max_seconds`` seconds with no pause over
    ``max_gap`` seconds (``"lines"``)."""
    if mode == "words":
        return [[w] for w in words]
    tolerance = 1e-9
    cues: list[list[WordSpan]] = []
    current: list[WordSpan] = []
    for word in words:
        if current:
            cue_start = current[0].start
            cue_end = max(w.end for w in current)
            too_many = len(current) + 1 > max_words
            too_long = max(cue_end, word.end) - cue_start > max_seconds + tolerance
            too_far = word.start - current[-1].end > max_gap + tolerance
            if too_many or too_long or too_far:
                cues.append(current)
                current = []
        current.append(word)
    if current:
        cues.append(current)
    return cues


def _cue_times(cue: list[WordSpan]) -> tuple[int, int]:
    """Start and end of a cue in whole milliseconds, end > start."""
    start = max(round(_check_time(cue[0].start, f"word {cue[0].text!r}") * 1000), 0)
    end = max(round(_check_time(w.end, f"word {w.text!r}") * 1000) for w in cue)
    return start, max(end, start + 1)


def _timestamp(milliseconds: int, separator: str) -> str:
    seconds, ms = divmod(milliseconds, 1000)
    minutes, seconds = divmod(seconds, 60)
    hours, minutes = divmod(minutes, 60)
    return f"{hours:02d}:{minutes:02d}:{seconds:02d}{separator}{ms:03d}"


def to_srt(
    alignment: Alignment, mode: str = "words", max_words: int = 12, max_seconds: float = 5.0, max_gap: float = 0.5
) -> str:
    """SubRip subtitles of ``alignment``.

    Args:
        mode: ``"words"``: one cue per word; ``"lines"``: consecutive words
            share a cue, and a new cue starts when adding a word would make
            it longer than ``max_words`` words or ``max_seconds`` seconds, or
            when the pause before the word exceeds ``max_gap`` seconds.

    Cues are numbered from 1, timestamps are ``HH:MM:SS,mmm`` and every cue
    lasts at least 1 ms. Words that could not be aligned are included, in
    italics (``<i>word</i>``), at the interval between their neighbours.
    Word text is escaped (``&amp;``, ``&lt;``, ``&gt;``), so a transcript
    cannot inject markup, and control characters are dropped.

    Raises:
        OutputError: bad option values or a non-finite time.
    """
    _check_cue_options(mode, max_words, max_seconds, max_gap)
    blocks = []
    for number, cue in enumerate(_group_words(alignment.words, mode, max_words, max_seconds, max_gap), 1):
        start, end = _cue_times(cue)
        text = " ".join(_markup_escape(w.text) if w.aligned else f"<i>{_markup_escape(w.text)}</i>" for w in cue)
        blocks.append(f"{number}\n{_timestamp(start, ',')} --> {_timestamp(end, ',')}\n{text}\n")
    return "\n".join(blocks)


def to_vtt(
    alignment: Alignment, mode: str = "words", max_words: int = 12, max_seconds: float = 5.0, max_gap: float = 0.5
) -> str:
    """WebVTT subtitles of ``alignment``: a ``WEBVTT`` header, then cues with
    ``HH:MM:SS.mmm`` timestamps and ``&``, ``<``, ``>`` escaped. Options as
    for :func:`to_srt`. Words that could not be aligned are in an italic
    span of class ``unaligned``: ``<i.unaligned>word</i>``.

    Raises:
        OutputError: bad option values or a non-finite time.
    """
    _check_cue_options(mode, max_words, max_seconds, max_gap)
    blocks = ["WEBVTT\n"]
    for cue in _group_words(alignment.words, mode, max_words, max_seconds, max_gap):
        start, end = _cue_times(cue)
        text = " ".join(
            _markup_escape(w.text) if w.aligned else f"<i.unaligned>{_markup_escape(w.text)}</i>" for w in cue
        )
        blocks.append(f"{_timestamp(start, '.')} --> {_timestamp(end, '.')}\n{text}\n")
    return "\n".join(blocks)
