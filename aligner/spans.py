"""From a frame-level CTC path to token, character and word spans.

Where a word starts and ends
----------------------------
CTC emissions are *peaky*: a character usually fires on one or two frames
and the frames between characters are blank. We use these rules:

* A character starts at the first frame of its token and lasts until the
  next token of the same word starts (the blanks inside a word belong to
  the character before them), so the characters of a word tile it.
* A word starts at the first frame of its first character.
* A word ends after its last character's frames **plus the blank frames
  that follow it, up to** ``end_extension_frames`` (default 0.1 s worth),
  never past the next token (the next word or a separator). The rest of a
  longer blank run is silence between words. The spike of a word's last
  sound typically comes before the sound ends, so a short extension is
  closer to where a phonetician puts the boundary than the spike's end,
  while a long pause is not swallowed by the word.
* A phone model trained on frame-level targets (``AlignmentModel.end_extension``
  = 0) is not peaky: its phones last as long as they sound, so its words
  keep no trailing blanks and its phones (the "characters" here) tile them.
* Scores are mean per-frame probabilities (``exp`` of the log-probability)
  over the frames of the tokens themselves, not the borrowed blanks.
* A word with no representable character (no tokens) gets the interval
  between its neighbours (from the end of the previous word to the start
  of the next), score 0 and ``aligned=False``.
"""

from __future__ import annotations

import math
from collections.abc import Sequence

import torch

from .errors import AlignmentError
from .records import CharSpan, TokenSpan, WordSpan


def token_spans(path: torch.Tensor, log_probs: torch.Tensor, blank: int = 0) -> list[TokenSpan]:
    """Collapse a CTC path into one span per target token.

    Args:
        path: label id per frame (valid frames only). Shape: ``(T,)``.
        log_probs: log-probability of ``path[t]`` at frame ``t``. Shape: ``(T,)``.
        blank: blank id.

    Returns:
        One :class:`TokenSpan` per target token, in order. Two equal
        targets in a row are separated by a blank in any CTC path, so runs
        map one-to-one onto targets.

    Examples:
        >>> import torch
        >>> from aligner.spans import token_spans
        >>> path = torch.tensor([0, 1, 1, 0, 2, 2, 0])
        >>> log_probs = torch.tensor([0.9, 0.8, 0.6, 0.7, 0.5, 0.5, 0.9], dtype=torch.float64).log()
        >>> [(span.token, span.start, span.end, round(span.score, 3)) for span in token_spans(path, log_probs)]
        [(1, 1, 3, 0.7), (2, 4, 6, 0.5)]
    """
    labels = path.tolist()
    return _run_spans(labels, labels, log_probs, blank)


def position_spans(positions: torch.Tensor, path: torch.Tensor, log_probs: torch.Tensor) -> list[TokenSpan]:
    """One span per target position from a per-frame position sequence
    (:func:`aligner.duration_viterbi.duration_align`, where two equal
    tokens in a row need no blank between them, so runs of labels are not
    enough).

    Args:
        positions: target position of each frame, -1 for silence. Shape: ``(T,)``.
        path: label of each frame. Shape: ``(T,)``.
        log_probs: log-probability of ``path[t]`` at frame ``t``. Shape: ``(T,)``.
    """
    return _run_spans(positions.tolist(), path.tolist(), log_probs, -1)


def _run_spans(keys: list[int], labels: list[int], log_probs: torch.Tensor, skip: int) -> list[TokenSpan]:
    """One :class:`TokenSpan` per run of equal ``keys`` (runs of ``skip``
    left out): the label of its first frame, its frames, and the mean
    probability of its frames."""
    probs = log_probs.double().exp().tolist()
    spans: list[TokenSpan] = []
    t, total = 0, len(keys)
    while t < total:
        key = keys[t]
        if key == skip:
            t += 1
            continue
        start = t
        while t < total and keys[t] == key:
            t += 1
        spans.append(TokenSpan(labels[start], start, t, math.fsum(probs[start:t]) / (t - start)))
    return spans


def word_spans(
    spans: Sequence[TokenSpan],
    word_index: Sequence[int],
    words: Sequence,
    labels: Sequence[str],
    frame_seconds: float,
    num_frames: int,
    *,
    separator: int | None = None,
    end_extension_frames: int = 5,
    joiner: str = "",
) -> list[WordSpan]:
    """Group token spans into character and word spans in seconds.

    Args:
        spans: one span per target token (from :func:`token_spans`).
        word_index: for every target position, the index into ``words`` of
            the word it belongs to (-1 for separators between words).
        words: transcript words; each has ``text`` and ``tokens``.
        labels: the model's labels.
        frame_seconds: seconds per frame.
        num_frames: valid frames of the item (words never end after it).
        separator: the word-separator id; its spans are never characters.
        end_extension_frames: how many trailing blank frames a word may keep.
        joiner: put between a word's labels in :attr:`WordSpan.normalized`
            (``" "`` for phones: ``"F AY V"``).

    Returns:
        One :class:`WordSpan` per entry of ``words``.

    Raises:
        AlignmentError: not one span per target (also a ``ValueError``).
    """
    if len(spans) != len(word_index):
        raise AlignmentError(f"{len(spans)} token spans for {len(word_index)} targets")
    per_word: dict[int, list[int]] = {}
    for position, index in enumerate(word_index):
        if index >= 0 and spans[position].token != separator:
            per_word.setdefault(index, []).append(position)

    def next_start(position: int) -> int:
        return spans[position + 1].start if position + 1 < len(spans) else num_frames

    frame_spans: list[tuple[int, int, float, tuple[CharSpan, ...]] | None] = []
    for index in range(len(words)):
        positions = per_word.get(index)
        if not positions:
            frame_spans.append(None)
            continue
        chars = []
        for k, position in enumerate(positions):
            span = spans[position]
            if k + 1 < len(positions):
                end = spans[positions[k + 1]].start
            else:
                end = min(span.end + end_extension_frames, next_start(position))
            chars.append(CharSpan(labels[span.token], span.start * frame_seconds, end * frame_seconds, span.score))
        frames = [(spans[p].end - spans[p].start) for p in positions]
        score = sum(spans[p].score * n for p, n in zip(positions, frames)) / sum(frames)
        last = positions[-1]
        end = min(spans[last].end + end_extension_frames, next_start(last))
        frame_spans.append((spans[positions[0]].start, end, score, tuple(chars)))

    result: list[WordSpan] = []
    for index, word in enumerate(words):
        normalized = joiner.join(labels[t] for t in word.tokens)
        found = frame_spans[index]
        if found is not None:
            start, end, score, word_chars = found
            result.append(
                WordSpan(word.text, normalized, start * frame_seconds, end * frame_seconds, score, word_chars, True)
            )
            continue
        before = next((f for f in reversed(frame_spans[:index]) if f is not None), None)
        after = next((f for f in frame_spans[index + 1 :] if f is not None), None)
        start = before[1] if before else 0
        end = after[0] if after else num_frames
        result.append(
            WordSpan(word.text, normalized, start * frame_seconds, max(start, end) * frame_seconds, 0.0, (), False)
        )
    return result
