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

import itertools
from collections.abc import Sequence

import numpy as np
import torch

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
    placed = [w for w in words if w.aligned]
    reasons: list[str] = []
    if not placed:
        return ()
    count = len(placed)
    table = np.fromiter(
        itertools.chain.from_iterable((w.start, w.end, w.score, max(1, len(w.chars))) for w in placed),
        np.float64,
        4 * count,
    ).reshape(count, 4)
    starts, ends, tokens = table[:, 0], table[:, 1], table[:, 3]
    mean = float(table[:, 2].sum()) / count
    if not mean >= LOW_MEAN_SCORE:
        reasons.append(f"low score: mean word score {mean:.2f} < {LOW_MEAN_SCORE}")
    for k in np.flatnonzero(ends - starts > MAX_WORD_BASE + MAX_SECONDS_PER_TOKEN * tokens).tolist():
        word = placed[k]
        reasons.append(
            f"long word: {word.text!r} lasts {word.end - word.start:.2f} s "
            f"({word.start:.2f}-{word.end:.2f} s) for {int(tokens[k])} tokens"
        )
    if phone_durations:
        phones = [(word, phone) for word in placed for phone in word.chars]
        lengths = np.array([phone.end - phone.start for _, phone in phones], dtype=np.float64)
        for k in np.flatnonzero(lengths > MAX_PHONE_SECONDS).tolist():
            word, phone = phones[k]
            reasons.append(
                f"long phone: {phone.label} of {word.text!r} lasts {phone.end - phone.start:.2f} s "
                f"({phone.start:.2f}-{phone.end:.2f} s)"
            )
    if quiet is not None and quiet.numel():
        frames = quiet.numel()
        counts = np.zeros(frames + 1, dtype=np.int64)  # quiet frames before t
        np.cumsum(quiet.numpy(), out=counts[1:])
        first = np.minimum(np.maximum(np.rint(starts / frame_seconds), 0), frames).astype(np.int64)
        last = np.minimum(np.maximum(np.rint(ends / frame_seconds), first), frames).astype(np.int64)
        seconds = (counts[last] - counts[first]) * frame_seconds
        for k in np.flatnonzero(seconds > MAX_QUIET_SECONDS).tolist():
            word = placed[k]
            reasons.append(
                f"word on silence: {word.text!r} ({word.start:.2f}-{word.end:.2f} s) "
                f"has {seconds[k]:.2f} s of quiet audio"
            )
    return tuple(reasons)
