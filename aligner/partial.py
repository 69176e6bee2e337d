"""Partial alignment: a star for audio that has no text, flags for text that
has no audio.

A plain CTC forced alignment explains every frame with the transcript, so
audio the transcript does not mention (an intro, music, a sentence that was
not transcribed) pulls words into it, and text that is not spoken is squeezed
into the audio of its neighbours. Partial mode (``Aligner(partial=True)``)
changes both, for any CTC model, with the unchanged Viterbi of
:func:`aligner.forced_align`.

The star (audio with no text)
-----------------------------
One column is appended to the emissions, the *star*, whose log-probability
at frame ``t`` is ::

    star(t) = max(log p(blank|t), log p(separator|t), max_c log p(c|t) - star_penalty)

with ``c`` over the other labels (the model's own star label, if any,
excluded), the first two terms less :data:`TIE_MARGIN`. The star explains a
frame as silence, as a word boundary, or as *anything the network hears* at
a price of ``star_penalty`` per frame (a garbage model). A star token is placed before the first word, after the last
word and at every clause boundary of the transcript (a word ending in
``. , ; : ! ? …`` or a dash, before closing quotes and brackets), replacing
the separator there (``star_at="clauses"``; ``"edges"``: first and last only;
``"words"``: between all words).

This is the ``<star>`` token of torchaudio's MMS_FA tutorial and of
ctc-forced-aligner (``star_frequency="edges"`` / ``"segment"``), with two
differences. There the star column is a constant log-probability 0, so a
star absorbs any frame for free and many paths tie; here it costs
``star_penalty`` per frame of audio it absorbs, so the path prefers to
explain speech with the words that match it. And because the star also
scores as blank and separator, a star token on silence or at an ordinary word
boundary costs nothing, so putting one at every clause boundary does not
move the words of a transcript that matches its audio. Like any CTC token a
star takes at least one frame (a silent one when there is one).

Frames of a star token on which the garbage term wins are *skipped audio*
(:attr:`aligner.records.Alignment.skipped`): from the first to the last such
frame of each star token, when that is at least :data:`MIN_SKIP_FRAMES`
frames (a single such frame is a speech onset the network is unsure of).
A word's end never extends into a frame the garbage term wins.

Stars sit between clauses, not between every word, because a star between
two words lets each word be placed on its own: a short word ("in", "the")
then happily moves onto the same word in untranscribed speech. Measured on
the packaged model, ``"clauses"`` keeps words within 50 ms of the truth as
often with a 2-4 s untranscribed intro, outro or inserted sentence as
without one; ``"words"`` also handles insertions inside a clause but moves
short words more often.

Text with no audio
------------------
A CTC path cannot skip a target token: every token takes at least one
frame. Unspoken words are therefore found in a first *detection* pass in
which every frame is split into :data:`DETECTION_SPLIT` equal frames (the
emissions repeated), so that a token costs only a fraction of a frame of
time and unspoken text fits into pauses instead of into its neighbours.
A word whose characters then have a geometric-mean probability below
``min_word_score`` is *not placed*: it is removed from the targets of the
final pass and reported with ``aligned=False``, no characters, the interval
between its placed neighbours (as for a word with no representable
character) and that geometric mean as its score (below ``min_word_score``:
measured, not invented). The geometric mean separates unspoken from spoken
words much better than the mean per-frame probability (the score of placed
words), which one well-matched character can lift: on the packaged model,
threshold 0.02 flags 0.5 % of the words of matching transcripts and 89 % of
inserted words.

Cost: the detection pass is a Viterbi on a trellis ``DETECTION_SPLIT`` times
longer, so partial mode takes about five times the Viterbi time and four
times its memory (the emission model runs once).

With the duration-aware decoder (phone models)
----------------------------------------------
Models decoded by :mod:`aligner.duration_viterbi` (every phone at least
``min_frames``, silence only between words: the packaged phone model) do
not use the CTC path above. Their partial mode is one pass of that decoder
(:func:`duration_plan`): the star is the label of the optional run between
words wherever a star token would go (silence or garbage, the same star
column as above), and every word may be *left out* at a price of
:data:`WORD_SKIP_COST` per token (``state_graph(skip_cost=...)``): the path
leaves a word out where forcing its phones onto the audio costs more than
that. A left-out word is reported as not placed (``aligned=False``) with
score 0. Skipped audio is a run of star frames where the garbage term beats
the blank's own probability (without the blank penalty), at least
:data:`MIN_SKIP_FRAMES` long; the star's price per frame is
:data:`DURATION_STAR_PENALTY`.

Why not the detection pass: a frame-level model trained on synthetic speech
is unsure of the phones of real speech, so the geometric mean of a spoken
word's phone probabilities is often as low as that of an unspoken one (on
the 13 shared recordings without human alignments, 15 % of the spoken
words score below 0.02). Comparing the whole path with and without the word
separates them much better. Measured (``benchmarks/bench_partial.py``; 60 held-out
synthetic files and those 13 real files, each once as transcribed and once
with one word inserted): per-token price 7 leaves out 0 % of the synthetic
and 0.6 % of the real spoken words, and 75 % of the synthetic and 15 % of
the real inserted words (5: 0.1 % / 1.2 % and 87 % / 23 %; 9: 0 % / 0.2 %
and 52 % / 8 %); 7 is chosen so that a long, well-matched recording keeps
its words (a 10-minute concatenation of the shared recordings: 2 of 1,308
words left out; the CTC detection pass left out 192). Inserted words that
stay placed take the minimum duration where they fit best.
"""

from __future__ import annotations

import math
import re
from collections.abc import Sequence

import torch

from .records import TokenSpan

__all__ = [
    "DETECTION_SPLIT",
    "MIN_SKIP_FRAMES",
    "TIE_MARGIN",
    "STAR_POSITIONS",
    "WORD_SKIP_COST",
    "DURATION_STAR_PENALTY",
    "duration_plan",
    "ends_clause",
    "partial_targets",
    "skipped_runs",
    "star_emissions",
    "split_star_spans",
    "word_detection_scores",
]

#: Where star tokens may go: ``"edges"`` (before the first and after the last
#: word), ``"clauses"`` (also at clause boundaries), ``"words"`` (between
#: every two words).
STAR_POSITIONS: tuple[str, ...] = ("edges", "clauses", "words")

#: Each frame is split into this many in the detection pass.
DETECTION_SPLIT = 4

#: Price (log-probability) per token of leaving a word out with the
#: duration-aware decoder (phone models): see
#: :func:`aligner.duration_viterbi.state_graph`.
WORD_SKIP_COST = 7.0

#: Default ``star_penalty`` with the duration-aware decoder.
DURATION_STAR_PENALTY = 5.0

#: Shortest run of garbage frames reported as skipped audio.
MIN_SKIP_FRAMES = 2

#: The star scores a silent frame this much (log-probability) below the
#: blank, and a boundary frame below the separator. Without it a star and the
#: blank after it tie exactly, and on such ties torchaudio's Viterbi (which
#: :func:`aligner.forced_align` reproduces) can return a path far below the
#: best one (an advance tied with a skip yields a stay).
TIE_MARGIN = 0.01

# floor of a probability before its log (a char's score can underflow to 0)
_TINY = 1e-300

#: Frame codes of :func:`star_emissions`: what the star explains a frame as.
SILENCE, BOUNDARY, GARBAGE = 0, 1, 2

# clause punctuation at the end of a word, before closing quotes or brackets
_CLAUSE_END = re.compile(r"[.,;:!?\u2026\u2013\u2014][\"'\u2019\u201d\u00bb)\]}]*$")


def ends_clause(text: str) -> bool:
    """True when a word as written ends a clause (``"Moon;"``, ``"it.”"``).

    Examples:
        >>> from aligner.partial import ends_clause
        >>> ends_clause("Moon;"), ends_clause("it.”"), ends_clause("(1969)"), ends_clause("two")
        (True, True, False, False)
    """
    return _CLAUSE_END.search(text) is not None


def star_emissions(
    log_probs: torch.Tensor,
    blank: int,
    separator: int | None = None,
    own_star: int | None = None,
    star_penalty: float = 3.0,
) -> tuple[torch.Tensor, torch.Tensor]:
    """Append the star column (see the module docstring).

    Args:
        log_probs: CTC log-probabilities. Shape: ``(B, T, C)``.
        blank: blank id.
        separator: word-separator id, or None.
        own_star: the model's own star label (excluded from the garbage term).
        star_penalty: price of one frame of audio explained as garbage.

    Returns:
        ``(emissions, codes)``: the emissions with the star as column ``C``
        (Shape: ``(B, T, C + 1)``), and what the star explains each frame as:
        :data:`SILENCE` (the blank is best), :data:`BOUNDARY` (the separator)
        or :data:`GARBAGE` (the garbage term is strictly best), int8.
        Shape: ``(B, T)``. The silence and boundary values of the star are
        :data:`TIE_MARGIN` below the blank's and separator's.
    """
    special = [i for i in (blank, separator, own_star) if i is not None]
    others = log_probs.clone()
    others[..., special] = -math.inf
    garbage = others.amax(dim=-1) - star_penalty
    silence = log_probs[..., blank]
    boundary = log_probs[..., separator] if separator is not None else torch.full_like(silence, -math.inf)
    quiet = torch.maximum(silence, boundary) - TIE_MARGIN
    codes = torch.where(boundary > silence, BOUNDARY, SILENCE)
    codes = torch.where(garbage > quiet, GARBAGE, codes).to(torch.int8)
    star = torch.maximum(quiet, garbage)
    return torch.cat([log_probs, star.unsqueeze(-1)], dim=-1), codes


def partial_targets(
    words: Sequence, keep: Sequence[bool], star: int, separator: int | None = None, star_at: str = "clauses"
) -> tuple[list[int], list[int]]:
    """Targets with star tokens for the words to place.

    Args:
        words: transcript words (``text`` and ``tokens``).
        keep: per word, False to leave it out (not placed).
        star: the star id (the appended column).
        separator: the separator id put between words where no star goes.
        star_at: one of :data:`STAR_POSITIONS`.

    Returns:
        ``(targets, word_index)`` as :meth:`aligner.text.Transcript.targets`
        gives them: ``word_index`` is -1 for stars and separators. A star
        starts and ends the targets; a boundary is a clause boundary when a
        word between the two placed words (the first included) ends a clause.
    """
    targets, word_index = [star], [-1]
    previous = None
    for index, word in enumerate(words):
        if not word.tokens or not keep[index]:
            continue
        if previous is not None:
            if _star_between(words, previous, index, star_at):
                targets.append(star)
                word_index.append(-1)
            elif separator is not None:
                targets.append(separator)
                word_index.append(-1)
        targets.extend(word.tokens)
        word_index.extend([index] * len(word.tokens))
        previous = index
    if previous is not None:
        targets.append(star)
        word_index.append(-1)
    return targets, word_index


def _star_between(words: Sequence, previous: int, index: int, star_at: str) -> bool:
    """Whether a star goes between placed words ``previous`` and ``index``."""
    return star_at == "words" or (star_at == "clauses" and any(ends_clause(w.text) for w in words[previous:index]))


def duration_plan(
    words: Sequence, keep: Sequence[bool], star: int, blank: int, star_at: str = "clauses"
) -> tuple[list[list[int]], list[int], list[int]]:
    """Partial mode's input to the duration-aware decoder
    (:func:`aligner.duration_viterbi.duration_align`): the star is the label
    of some of its optional runs between words, where :func:`partial_targets`
    puts a star token (the edges always, clause boundaries or every word
    boundary as ``star_at`` says), and the blank of the others.

    Returns:
        ``(tokens, gaps, word_index)``: the token ids of each placed word,
        the label of each gap (before, between and after them), and the
        word index of each flattened token.
    """
    tokens, gaps, word_index = [], [star], []
    previous = None
    for index, word in enumerate(words):
        if not word.tokens or not keep[index]:
            continue
        if previous is not None:
            gaps.append(star if _star_between(words, previous, index, star_at) else blank)
        tokens.append(list(word.tokens))
        word_index.extend([index] * len(word.tokens))
        previous = index
    if tokens:
        gaps.append(star)
    return tokens, gaps, word_index


def skipped_runs(
    path: torch.Tensor, star: int, codes: torch.Tensor, min_skip: int = MIN_SKIP_FRAMES
) -> list[tuple[int, int]]:
    """Skipped audio of a duration-decoder path: in each run of star frames,
    from the first to after the last frame the garbage term wins, where
    those are at least ``min_skip`` frames apart. Shape: path and codes ``(T,)``."""
    skipped = []
    on_star = (path == star).tolist()
    garbage = (codes == GARBAGE).tolist()
    t, total = 0, len(on_star)
    while t < total:
        if not on_star[t]:
            t += 1
            continue
        first: int | None = None
        last = 0
        while t < total and on_star[t]:
            if garbage[t]:
                first = t if first is None else first
                last = t
            t += 1
        if first is not None and last + 1 - first >= min_skip:
            skipped.append((first, last + 1))
    return skipped


def split_star_spans(
    spans: Sequence[TokenSpan],
    word_index: Sequence[int],
    star: int,
    codes: torch.Tensor,
    min_skip: int = MIN_SKIP_FRAMES,
) -> tuple[list[TokenSpan], list[int], list[tuple[int, int]]]:
    """Turn the star tokens of a path into boundaries and skipped audio.

    The silent frames at the start of a star span are blanks: the span is
    cut to start at its first frame that is not :data:`SILENCE` (so that a
    word before it keeps its trailing blanks as in a plain alignment), and
    dropped when it has none.

    Args:
        spans: one span per target (from :func:`aligner.spans.token_spans`).
        word_index: per target, as from :func:`partial_targets`.
        star: the star id.
        codes: frame codes of the item (valid frames). Shape: ``(T,)``.
        min_skip: shortest ``last + 1 - first`` reported as skipped.

    Returns:
        ``(spans, word_index, skipped)``: the spans and their word indices
        without dropped stars, and ``(first, last + 1)``, the first and
        after the last garbage frame of each star span where those are at
        least ``min_skip`` frames apart.
    """
    kept_spans, kept_index, skipped = [], [], []
    for span, index in zip(spans, word_index):
        if span.token == star:
            frames = codes[span.start : span.end]
            garbage = torch.nonzero(frames == GARBAGE).flatten().tolist()
            if garbage and garbage[-1] + 1 - garbage[0] >= min_skip:
                skipped.append((span.start + garbage[0], span.start + garbage[-1] + 1))
            loud = torch.nonzero(frames != SILENCE).flatten().tolist()
            if not loud:
                continue
            span = TokenSpan(star, span.start + loud[0], span.end, span.score)
        kept_spans.append(span)
        kept_index.append(index)
    return kept_spans, kept_index, skipped


def word_detection_scores(
    spans: Sequence[TokenSpan], word_index: Sequence[int], separator: int | None
) -> dict[int, float]:
    """Per placed word, the geometric mean of its characters' scores
    (separators inside a word left out): ``exp`` of the mean over its
    characters of the log of their mean per-frame probability.

    Args:
        spans: one span per target (of the detection pass).
        word_index: per target, as from :func:`partial_targets`.
        separator: the separator id.
    """
    per_word: dict[int, list[float]] = {}
    for span, index in zip(spans, word_index):
        if index >= 0 and span.token != separator:
            per_word.setdefault(index, []).append(math.log(max(span.score, _TINY)))
    return {index: math.exp(math.fsum(logs) / len(logs)) for index, logs in per_word.items()}
