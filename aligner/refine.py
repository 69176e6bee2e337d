"""Boundary refinement: move the word boundaries at pauses to where the
audio's energy says speech starts or stops (opt-in:
``Aligner(refine=True)``, ``aligner align --refine``).

Which boundaries move
---------------------
Only *pause edges*: the start of a word after a gap (the first word's start,
with the audio before it as its gap) and the end of a word before a gap (the
last word's end, with the audio after it as its gap); a gap is longer than
``min_pause`` seconds. A boundary between two words that touch stays where
it is, and so does every boundary of a word not placed (``aligned=False``),
and of a word of no positive duration. No boundary moves into or across
``keep_out`` audio (partial mode's skipped audio).

The rule
--------
The audio is read from per-frame levels (:func:`aligner.activity.frame_levels`:
the energy in dB of ``level_window`` seconds centred on each frame's
centre, ``(t + 0.5) * frame_seconds``). For one edge:

1. The *word level* is the :data:`WORD_PERCENTILE` of the levels of the
   word's frames, the *pause level* the :data:`PAUSE_PERCENTILE` of the
   gap's frames (frames whose centres lie inside); without frames on either
   side, or when the word is less than ``min_contrast`` dB above the pause,
   there is no evidence and the edge stays.
2. The threshold is ``pause + fraction * (word - pause)`` dB (a low
   fraction keeps weak consonants speech).
3. The levels, joined linearly between frame centres, are shifted by the
   measurement window's reach: a level near the pause level is already
   crossed when the window only starts to overlap the speech, so for a
   step in energy the crossing lies ``level_window / 2 * (1 - 2 p)`` past the
   step (``p``: the share of speech in the window at the threshold's power,
   about 0 for a silent pause).
4. Within the edge's range (``window`` seconds either way, never into the
   neighbouring word, never before 0 or after ``duration``, and never
   further into the word than leaves its outermost phone one frame) an end
   goes to the last point where the shifted levels fall under the threshold
   (a start: the first point where they rise over it); when they stay over
   it through the range the end goes to the range's end (a start: its
   start), when they stay under it to the range's start (a start: its end).
   A range with only a rise (an end) or only a fall (a start) is ambiguous
   (a stop's release after its closure, a neighbour's speech seen through
   the window) and leaves the edge where it is (moving it to the range's
   start or end there made the synthetic set's mean error 1.5 ms worse).
5. A crossing is then placed inside its pair of frames by a step model:
   the speech frame's level and the pause frame's level, relative to the
   pause level and to the louder of the speech frame and the one before
   it, say what share of each frame's window the speech fills, hence where
   the step is (the earlier of the two answers: a frame wholly in speech
   only bounds it). For tone bursts in silence this lands within 2 ms of
   the true edge, where the linear crossing of step 3 alone is up to
   15 ms off (on real speech the two measured within 0.5 ms of mean
   error of each other). With ``level_window`` 0 (levels taken as point
   measurements) there is neither the shift of step 3 nor this model. A
   fall (a rise) placed inside the range counts even when its shifted
   crossing lies just outside.

Only the first phone's start and the last phone's end follow their word's
boundaries, so the phones keep tiling the word. Words are processed in
order, each start limited by the refined end before it, so words never
overlap or change order, and every boundary stays within ``window`` of where
it was.

With the packaged phone model it made word boundaries worse on synthetic
speech and about even on real speech (``MODEL.md``, "Boundary
refinement"): that model's boundaries already sit where its evidence is.
It is meant for the pause edges of peaky CTC models, whose word ends are
otherwise a fixed extension.

Shapes: ``levels`` ``(T,)`` for ``T`` frames.
"""

from __future__ import annotations

import math
import numbers
from collections.abc import Sequence
from dataclasses import replace
from typing import NamedTuple

import numpy as np
import torch

from .errors import AlignmentError
from .records import WordSpan

__all__ = [
    "LEVEL_WINDOW_SAMPLES",
    "PAUSE_PERCENTILE",
    "REFINE_FRACTION",
    "REFINE_MIN_CONTRAST",
    "REFINE_WINDOW",
    "WORD_PERCENTILE",
    "refine_words",
]

#: Seconds a boundary may move either way.
REFINE_WINDOW = 0.06
#: Where the threshold lies between the pause level (0) and the word level (1), in dB.
REFINE_FRACTION = 0.25
#: dB the word level must exceed the pause level by for an edge to move.
REFINE_MIN_CONTRAST = 6.0
#: Percentile of a word's frame levels taken as its level.
WORD_PERCENTILE = 80.0
#: Percentile of a gap's frame levels taken as the pause level.
PAUSE_PERCENTILE = 20.0
#: Samples of audio each level measures: the ``window`` default of
#: :func:`aligner.activity.frame_levels` (divide by the sample rate for ``level_window``).
LEVEL_WINDOW_SAMPLES = 480


def refine_words(
    words: Sequence[WordSpan],
    levels: torch.Tensor,
    frame_seconds: float,
    duration: float,
    *,
    window: float = REFINE_WINDOW,
    fraction: float = REFINE_FRACTION,
    min_contrast: float = REFINE_MIN_CONTRAST,
    min_pause: float = 0.0,
    level_window: float = LEVEL_WINDOW_SAMPLES / 16000,
    keep_out: Sequence[tuple[float, float]] = (),
) -> tuple[WordSpan, ...]:
    """Move the pause edges of ``words`` to the energy onsets and offsets
    (the rule is in the module's docstring).

    Args:
        words: the words of one recording in time order (an
            :class:`~aligner.records.Alignment`'s ``words``); not modified.
        levels: Shape ``(T,)``: dB per model frame
            (:func:`aligner.activity.frame_levels`).
        frame_seconds: seconds per model frame.
        duration: seconds of audio; no boundary moves outside ``[0, duration]``.
        window: seconds a boundary may move either way (>= 0).
        fraction: threshold between the pause level (0) and the word level
            (1), in dB; in ``(0, 1)``.
        min_contrast: dB the word must be above the pause for its edge to move.
        min_pause: a gap longer than this (seconds) is a pause.
        level_window: seconds of audio each level measures (0: no shift for
            the measurement window).
        keep_out: ``(start, end)`` seconds no boundary moves into or across
            (partial mode's skipped audio, :attr:`Alignment.skipped
            <aligner.records.Alignment.skipped>`).

    Returns:
        One word per word of ``words``, in the same order: new records
        where an edge moved (its first phone's start and last phone's end
        moved with it), the same ones elsewhere.

    Raises:
        AlignmentError: ``levels`` not one-dimensional, or an option out of range.

    Examples:
        A 220 Hz tone from 0.2 s to 0.6 s in 1 s of silence; the word was
        placed 40 ms late and ended 40 ms early:

        >>> import math, torch
        >>> from aligner.activity import frame_levels
        >>> from aligner.records import CharSpan, WordSpan
        >>> from aligner.refine import refine_words
        >>> t = torch.arange(16000) / 16000
        >>> tone = torch.where((t >= 0.2) & (t < 0.6), 0.5 * torch.sin(2 * math.pi * 220 * t), torch.zeros(()))
        >>> levels = frame_levels(tone, 320, 50)  # 20 ms frames
        >>> phones = (CharSpan("HH", 0.24, 0.4, 0.9), CharSpan("AY", 0.4, 0.56, 0.9))
        >>> (word,) = refine_words([WordSpan("hi", "HH AY", 0.24, 0.56, 0.9, phones)], levels, 0.02, 1.0)
        >>> round(word.start, 3), round(word.end, 3)
        (0.199, 0.601)
        >>> [(round(phone.start, 3), round(phone.end, 3)) for phone in word.chars]
        [(0.199, 0.4), (0.4, 0.601)]
    """
    _check_options(frame_seconds, duration, window, fraction, min_contrast, min_pause, level_window)
    if levels.dim() != 1:
        raise AlignmentError(f"refine_words: levels must have shape (T,), not {tuple(levels.shape)}")
    level = levels.detach().to("cpu", torch.float64).numpy()
    centres = (np.arange(level.size) + 0.5) * frame_seconds
    half = level_window / 2
    result = list(words)
    limit = 0.0  # the latest end so far (refined), which no start may cross
    for index, word in enumerate(words):
        if not word.aligned or not word.end > word.start:
            limit = max(limit, word.end)
            continue
        before = words[index - 1].end if index else 0.0
        after = words[index + 1].start if index + 1 < len(words) else duration
        start, end = word.start, word.end
        inside = level[_frames(centres, word.start, word.end)]
        if start - before > min_pause:
            found = _levels(inside, level[_frames(centres, before, word.start)], min_contrast)
            first_end = word.chars[0].end if word.chars else end
            lo = max(start - window, limit, before, 0.0)
            hi = min(start + window, max(start, first_end - frame_seconds), duration)
            lo, hi = _kept_out(start, lo, hi, keep_out)
            if found is not None and lo <= start <= hi:
                moved = _find(centres, level, _Edge(*found, fraction, half), lo, hi, frame_seconds, onset=True)
                start = start if moved is None else min(max(moved, lo), hi)
        if after - end > min_pause:
            found = _levels(inside, level[_frames(centres, word.end, after)], min_contrast)
            last_start = word.chars[-1].start if len(word.chars) > 1 else start  # one phone: the word's
            lo = max(end - window, min(end, max(last_start, start) + frame_seconds), 0.0)
            hi = min(end + window, after, duration)
            lo, hi = _kept_out(end, lo, hi, keep_out)
            if found is not None and lo <= end <= hi:
                moved = _find(centres, level, _Edge(*found, fraction, half), lo, hi, frame_seconds, onset=False)
                end = end if moved is None else min(max(moved, lo), hi)
        if (start, end) != (word.start, word.end):
            result[index] = _moved(word, start, end)
        limit = max(limit, end)
    return tuple(result)


def _kept_out(where: float, lo: float, hi: float, keep_out: Sequence[tuple[float, float]]) -> tuple[float, float]:
    """The range ``[lo, hi]`` of a boundary at ``where`` narrowed so that it
    enters none of the ``keep_out`` intervals (none when ``where`` is inside one)."""
    for first, last in keep_out:
        if last <= where:
            lo = max(lo, last)
        elif first >= where:
            hi = min(hi, first)
        else:
            return where, where
    return lo, hi


def _frames(centres: np.ndarray, first: float, last: float) -> slice:
    """The frames whose centres lie in ``[first, last]`` (seconds)."""
    return slice(int(np.searchsorted(centres, first, "left")), int(np.searchsorted(centres, last, "right")))


class _Edge(NamedTuple):
    """What decides one pause edge: the word's and the pause's levels (dB),
    the threshold's ``fraction`` between them, and half the measurement window (s)."""

    speech: float
    pause: float
    fraction: float
    half: float


def _levels(word: np.ndarray, gap: np.ndarray, min_contrast: float) -> tuple[float, float] | None:
    """The word and pause levels (dB) from the levels of the word's and the
    gap's frames; None without evidence (no frames, too little contrast,
    non-finite levels)."""
    if word.size == 0 or gap.size == 0:
        return None
    speech = float(np.percentile(word, WORD_PERCENTILE))
    pause = float(np.percentile(gap, PAUSE_PERCENTILE))
    if not (math.isfinite(speech) and math.isfinite(pause) and speech - pause >= max(min_contrast, 1e-6)):
        return None
    return speech, pause


def _find(
    centres: np.ndarray, level: np.ndarray, edge: _Edge, lo: float, hi: float, frame_seconds: float, *, onset: bool
) -> float | None:
    """Where speech starts (``onset``) or stops within ``[lo, hi]``; None:
    ambiguous, or no frames near it. Only the frames near the range are read (an
    hour of audio costs the same per edge); an onset is an offset in
    reversed time. Shapes: centres and level ``(T,)``."""
    near = _frames(centres, lo - edge.half - 3 * frame_seconds, hi + edge.half + 3 * frame_seconds)
    times, values = centres[near], level[near]
    if not onset:
        return _offset(times, values, edge, lo, hi)
    fall = _offset(-times[::-1], values[::-1], edge, -hi, -lo)
    return None if fall is None else -fall


def _offset(times: np.ndarray, level: np.ndarray, edge: _Edge, lo: float, hi: float) -> float | None:
    """Where speech stops within ``[lo, hi]`` (None: ambiguous), from
    ``level`` (dB) measured over ``times +- half`` (increasing times).
    Shapes: ``(T,)``."""
    speech, pause, fraction, half = edge
    threshold = pause + fraction * (speech - pause)
    # a level near the pause's is crossed as soon as the window overlaps the speech: for a step
    # in energy the crossing lies `half * (1 - 2 share)` past the step, `share` being the part of
    # the window that speech fills when its power is the threshold's
    floor = 10 ** ((pause - speech) / 10)
    share = min(max((10 ** ((threshold - speech) / 10) - floor) / (1 - floor), 0.0), 1.0)
    shifted, values = times - half * (1 - 2 * share), level - threshold

    def placed(k: int) -> float:  # the fall between frames k and k + 1
        crossing = float(shifted[k] + (shifted[k + 1] - shifted[k]) * values[k] / (values[k] - values[k + 1]))
        return crossing if half <= 0 else _step(times, level, pause, k, half, crossing)

    # the last fall placed within the range, even when the shifted curve crosses just outside it
    falls = [placed(int(k)) for k in np.flatnonzero((values[:-1] >= 0) & (values[1:] < 0))]
    inside = [where for where in falls if lo <= where <= hi]
    if inside:
        return inside[-1]
    found = _last_fall(shifted, values, lo, hi)
    if found is None:
        return None
    where, k = found
    return min(max(where if k is None else placed(k), lo), hi)


def _step(times: np.ndarray, level: np.ndarray, pause: float, k: int, half: float, where: float) -> float:
    """The offset between frames ``k`` (speech) and ``k + 1`` (pause) for a
    step in energy from the louder of frames ``k - 1`` and ``k`` down to
    ``pause``: each frame's level gives the share of its window
    (``times +- half``) the speech fills, so where the step lies; the
    earlier of the two estimates (a frame wholly in speech only bounds
    it). ``where`` when the frames are not louder than the pause."""
    local = float(level[max(k - 1, 0) : k + 1].max())
    if not local > pause:
        return where
    floor = 10 ** ((pause - local) / 10)
    estimates = []
    for j in (k, k + 1):
        share = (10 ** ((float(level[j]) - local) / 10) - floor) / (1 - floor)
        estimates.append(float(times[j]) - half + 2 * half * min(max(share, 0.0), 1.0))
    return min(estimates)


def _last_fall(times: np.ndarray, values: np.ndarray, lo: float, hi: float) -> tuple[float, int | None] | None:
    """For the piecewise-linear curve through ``(times, values)`` (constant
    beyond its ends): the last point in ``[lo, hi]`` where it falls from
    >= 0 to < 0, with the index ``k`` of the points ``k``, ``k + 1`` it
    falls between; ``(hi, None)`` when it is >= 0 throughout, ``(lo,
    None)`` when < 0 throughout, None when it only rises there (or there
    are no points). Shapes: ``(T,)``, increasing times."""
    if times.size == 0:
        return None
    inside = (times > lo) & (times < hi)
    points = np.concatenate([[lo], times[inside], [hi]])
    curve = np.interp(points, times, values)
    above = curve >= 0
    falls = np.flatnonzero(above[:-1] & ~above[1:])
    if falls.size:
        j = int(falls[-1])
        a, b = curve[j], curve[j + 1]
        where = float(points[j] + (points[j + 1] - points[j]) * a / (a - b))
        k = int(np.searchsorted(times, where, side="right")) - 1
        return where, k if 0 <= k < times.size - 1 else None
    if above.all():
        return hi, None
    if not above.any():
        return lo, None
    return None


def _moved(word: WordSpan, start: float, end: float) -> WordSpan:
    """``word`` with new edges; its first phone starts and its last phone ends with it."""
    chars = list(word.chars)
    if chars:
        chars[0] = replace(chars[0], start=start)
        chars[-1] = replace(chars[-1], end=end)
    return replace(word, start=start, end=end, chars=tuple(chars))


def _check_options(
    frame_seconds: float,
    duration: float,
    window: float,
    fraction: float,
    min_contrast: float,
    min_pause: float,
    level_window: float,
) -> None:
    def real(value: object) -> bool:
        return isinstance(value, numbers.Real) and not isinstance(value, bool) and math.isfinite(value)

    checks = {
        "frame_seconds": (frame_seconds, real(frame_seconds) and frame_seconds > 0, "a number of seconds > 0"),
        "duration": (duration, real(duration) and duration >= 0, "a number of seconds >= 0"),
        "window": (window, real(window) and window >= 0, "a number of seconds >= 0"),
        "fraction": (fraction, real(fraction) and 0 < fraction < 1, "a number in (0, 1)"),
        "min_contrast": (min_contrast, real(min_contrast) and min_contrast >= 0, "a number of dB >= 0"),
        "min_pause": (min_pause, real(min_pause) and min_pause >= 0, "a number of seconds >= 0"),
        "level_window": (level_window, real(level_window) and level_window >= 0, "a number of seconds >= 0"),
    }
    for name, (value, ok, what) in checks.items():
        if not ok:
            raise AlignmentError(f"refine_words: {name} must be {what}, not {value!r}")
