"""Plausibility check of an alignment: say when it is probably wrong.

When a model hears a speaker poorly, the best path can still be seconds
off: a word stretched over a pause or over untranscribed audio while the
other words are squeezed. Such an alignment must not be written as if it
were fine. :func:`suspect_reasons` lists what is implausible about one:

* ``low score``: the mean word score is below :data:`LOW_MEAN_SCORE`
  (every seconds-off alignment of the old character model on a held-out
  set of 81 read sentences had a mean word score below 0.09);
* ``long word``: a word lasts longer than :data:`MAX_WORD_BASE` +
  :data:`MAX_SECONDS_PER_TOKEN` per phone or character (a 3-phone word
  over 1.4 s);
* ``word on silence``: a word has more than :data:`MAX_QUIET_SECONDS` of
  quiet audio (:data:`QUIET_DB` under the speech level, see
  :mod:`aligner.activity`) inside it;
* ``long phone`` (frame-level phone models, whose phones last as long as
  they sound; not CTC models, whose spikes say nothing of durations): one
  phone lasts longer than :data:`MAX_PHONE_SECONDS`. A phone of read speech
  is rarely longer than 0.3 s; one that takes a second has swallowed a
  pause or noise that the model could not tell from a weak, breathy or
  whispered sound (on the hostile set of ``benchmarks/bench_accuracy.py``
  every file with a word more than 0.5 s off had a phone over 0.8 s, no
  other file of any set one over 0.5 s).

A suspect alignment made by the duration-aware decoder is decoded once
more with a stricter speech/silence constraint (no blank penalty; phones
cannot take frames :data:`FALLBACK_QUIET_DB` under the speech level; no
phone longer than :data:`FALLBACK_MAX_PHONE_SECONDS`), and the second one
replaces it (:meth:`aligner.Aligner.align_prepared`); its
last reason says that it was re-aligned and why, so the file stays
flagged for a look.

The reasons travel with the alignment (:attr:`aligner.records.Alignment.suspect`),
into JSON (``"suspect"``), ``confidence.tsv`` (column ``suspect``) and the
summary lines of ``aligner align`` and ``aligner align-corpus``.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import torch

from .errors import AlignerError
from .records import WordSpan

__all__ = [
    "FALLBACK_MAX_CELLS",
    "FALLBACK_MAX_PHONE_SECONDS",
    "FALLBACK_QUIET_DB",
    "LOW_MEAN_SCORE",
    "MAX_PHONE_SECONDS",
    "MAX_QUIET_SECONDS",
    "MAX_SECONDS_PER_TOKEN",
    "MAX_WORD_BASE",
    "QUIET_DB",
    "suspect_reasons",
    "suspect_reasons_batch",
]

#: Mean word score below which an alignment is suspect.
LOW_MEAN_SCORE = 0.1
#: A word may last this long plus :data:`MAX_SECONDS_PER_TOKEN` per token.
MAX_WORD_BASE = 0.6
MAX_SECONDS_PER_TOKEN = 0.3
#: Frames more than this many dB under the speech level count as quiet here.
QUIET_DB = 40.0
#: The fallback re-alignment of a suspect alignment (duration decoder) takes
#: phones off frames this many dB under the speech level, without blank penalty.
FALLBACK_QUIET_DB = 30.0
#: Seconds of quiet audio a word may contain.
MAX_QUIET_SECONDS = 0.4
#: Longest plausible phone (frame-level phone models only).
MAX_PHONE_SECONDS = 0.6
#: The fallback re-alignment keeps every phone at most this long (a hard
#: limit in the decoder), where the graph stays small enough
#: (:data:`FALLBACK_MAX_CELLS` frames x states).
FALLBACK_MAX_PHONE_SECONDS = 0.5
FALLBACK_MAX_CELLS = 1_000_000_000


def suspect_reasons(
    words: Sequence[WordSpan],
    frame_seconds: float,
    quiet: torch.Tensor | None = None,
    *,
    phone_durations: bool = False,
) -> tuple[str, ...]:
    """What is implausible about ``words`` (empty when nothing is).

    Args:
        words: the aligned words.
        frame_seconds: seconds per model frame (frame ``t`` starts at
            ``t * frame_seconds``).
        quiet: per frame, whether the audio there is quiet (None: not
            checked). Shape ``(T,)``, bool.
        phone_durations: check each token's duration (``long phone``): for
            frame-level phone models only.
    """
    masks = None if quiet is None else [quiet]
    return suspect_reasons_batch([words], frame_seconds, masks, phone_durations=phone_durations)[0]


def suspect_reasons_batch(
    alignments: Sequence[Sequence[WordSpan]],
    frame_seconds: float,
    quiet: Sequence[torch.Tensor] | None = None,
    *,
    phone_durations: bool = False,
) -> list[tuple[str, ...]]:
    """:func:`suspect_reasons` of each alignment's words, in one pass of
    array operations over the whole batch (the per-recording cost is reading
    its records).

    Args:
        alignments: per recording, its aligned words.
        frame_seconds: seconds per model frame.
        quiet: per recording, its quiet frames, shape ``(T_i,)`` bool (an
            empty one: not checked); None: not checked.
        phone_durations: check each token's duration (``long phone``). A
            token is taken to lie within its word (as every alignment the
            aligner makes), so only words longer than
            :data:`MAX_PHONE_SECONDS` are looked into.
    """
    if quiet is not None and len(quiet) != len(alignments):
        raise AlignerError(f"{len(quiet)} quiet masks for {len(alignments)} alignments")
    placed = [[word for word in words if word.aligned] for words in alignments]
    counts = np.array([len(words) for words in placed], dtype=np.int64)
    flat = [word for words in placed for word in words]
    reasons: list[list[str]] = [[] for _ in placed]
    if not flat:
        return [()] * len(placed)
    n = len(flat)
    owner = np.repeat(np.arange(len(placed)), counts)  # the recording of each word
    # starts, ends and scores in one array (comprehensions: the cheapest way to read the records)
    table = np.array([w.start for w in flat] + [w.end for w in flat] + [w.score for w in flat], dtype=np.float64)
    durations = table[n : 2 * n] - table[:n]
    sums = np.bincount(owner, weights=table[2 * n :], minlength=len(placed))
    for row in counts.nonzero()[0].tolist():
        mean = float(sums[row]) / int(counts[row])
        if not mean >= LOW_MEAN_SCORE:
            reasons[row].append(f"low score: mean word score {shown(mean, LOW_MEAN_SCORE)} < {LOW_MEAN_SCORE}")
    # only a word over the limit for one token can be long: check those one by one
    for k in (durations > MAX_WORD_BASE + MAX_SECONDS_PER_TOKEN).nonzero()[0].tolist():
        word = flat[k]
        tokens = max(1, len(word.chars))
        limit = MAX_WORD_BASE + MAX_SECONDS_PER_TOKEN * tokens
        if word.end - word.start > limit:
            reasons[owner[k]].append(
                f"long word: {word.text!r} lasts {shown(word.end - word.start, limit)} s "
                f"({word.start:.2f}-{word.end:.2f} s) for {tokens} tokens"
            )
    if phone_durations:
        for k in (durations > MAX_PHONE_SECONDS).nonzero()[0].tolist():  # only such a word can hold a long phone
            word = flat[k]
            for phone in word.chars:
                if phone.end - phone.start > MAX_PHONE_SECONDS:
                    reasons[owner[k]].append(
                        f"long phone: {phone.label} of {word.text!r} lasts "
                        f"{shown(phone.end - phone.start, MAX_PHONE_SECONDS)} s "
                        f"({phone.start:.2f}-{phone.end:.2f} s)"
                    )
    if quiet is not None:
        for row, k, seconds in _quiet_words(table[: 2 * n], owner, quiet, frame_seconds):
            word = flat[k]
            reasons[row].append(
                f"word on silence: {word.text!r} ({word.start:.2f}-{word.end:.2f} s) "
                f"has {shown(seconds, MAX_QUIET_SECONDS)} s of quiet audio"
            )
    return [tuple(found) for found in reasons]


def shown(value: float, limit: float, decimals: int = 2) -> str:
    """``value`` with ``decimals`` decimals, or more where fewer would hide
    which side of ``limit`` it is on (``0.098`` against 0.1, never ``0.10``),
    so a message comparing the two reads true."""
    for places in range(decimals, 10):
        text = f"{value:.{places}f}"
        if (float(text) < limit) == (value < limit) and (float(text) > limit) == (value > limit):
            return text
    return repr(value)


def _quiet_words(
    bounds: np.ndarray, owner: np.ndarray, quiet: Sequence[torch.Tensor], frame_seconds: float
) -> list[tuple[int, int, float]]:
    """``(recording, word, seconds)`` of each word holding more than
    :data:`MAX_QUIET_SECONDS` of quiet audio, in word order: the quiet
    frames before its last frame less those before its first (its bounds
    rounded to frames and clipped to ``[0, T_i]``: none when its end comes
    first). Shapes: bounds ``(2 N,)`` (the N words' starts, then their
    ends, seconds); owner ``(N,)``; quiet per recording ``(T_i,)``."""
    masks = [mask.numpy(force=True).reshape(-1) for mask in quiet]
    sizes = np.array([mask.size for mask in masks], dtype=np.int64)
    first = np.zeros(len(masks) + 1, dtype=np.int64)  # where each recording's frames start in the batch
    np.cumsum(sizes, out=first[1:])
    before = np.zeros(int(first[-1]) + 1, dtype=np.int64)  # quiet frames of the batch before each frame
    if first[-1]:
        np.cumsum(np.concatenate(masks), out=before[1:])
    n = owner.size
    frames = np.rint(bounds / frame_seconds)
    both = np.concatenate((owner, owner))
    np.clip(frames, 0, sizes[both], out=frames)
    held = np.diff(before[frames.astype(np.int64) + first[both]].reshape(2, n), axis=0)[0]
    seconds = held * frame_seconds
    return [(int(owner[k]), k, float(seconds[k])) for k in (seconds > MAX_QUIET_SECONDS).nonzero()[0].tolist()]
