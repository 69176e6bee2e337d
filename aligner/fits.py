"""Cheap bounds on how much transcript a recording can hold, checked before
the expensive work on the text (normalizing, romanizing, phonemizing).

A model places at most one token per frame, and every word that has a token
needs one, so a recording of ``T`` frames holds at most ``T`` words; no
transcript anyone speaks has more than :data:`MAX_CHARS_PER_SECOND`
characters per second of audio either. A transcript over these bounds is
refused at once with one line naming the file, whatever its size (a 5 MB
transcript on a 10 s recording costs the reading of the file and nothing
more), so the time and memory the text stages may take are proportional to
what the audio can hold. The exact check (:func:`aligner.pipeline.check_fits`,
tokens against frames) follows the normalizing as before.

Nothing here imports torch: the command line runs the character bound
before it loads a model.
"""

from __future__ import annotations

from .errors import TranscriptTooLongError

__all__ = ["MAX_CHARS_PER_SECOND", "check_text_size", "check_word_count", "max_characters"]

#: Characters (spaces and punctuation included) a transcript may have per
#: second of audio: about 70 times what people say (15 per second), and
#: 20 per frame of the 20 ms models.
MAX_CHARS_PER_SECOND = 1000
#: Characters any recording may have, however short (a word with its punctuation).
MIN_CHARS = 100


def max_characters(seconds: float) -> int:
    """The most characters a transcript of a recording of ``seconds`` may have."""
    return MIN_CHARS + int(MAX_CHARS_PER_SECOND * max(0.0, seconds))


def check_text_size(text: str, seconds: float, source: str, audio_name: str) -> None:
    """Refuse a transcript with more characters than a recording of
    ``seconds`` can hold (:func:`max_characters`); costs nothing but
    ``len(text)``.

    Raises:
        TranscriptTooLongError: one line naming ``source`` and ``audio_name``.
    """
    limit = max_characters(seconds)
    if len(text) > limit:
        raise TranscriptTooLongError(
            f"{source}: transcript too long for the audio: {len(text):,} characters, but {audio_name} "
            f"({seconds:.2f} s) can hold at most {limit:,} ({MAX_CHARS_PER_SECOND:,} per second of audio)"
        )


def check_word_count(
    words: int, frames: int, frame_seconds: float, seconds: float, source: str, audio_name: str
) -> None:
    """Refuse a transcript whose ``words`` (those with at least one token)
    outnumber the ``frames`` of a recording of ``seconds``: each needs a frame at least.

    Raises:
        TranscriptTooLongError: one line naming ``source`` and ``audio_name``.
    """
    if words > frames:
        raise TranscriptTooLongError(
            f"{source}: transcript too long for the audio: its {words:,} words need at least one frame of "
            f"{frame_seconds * 1000:g} ms each ({words * frame_seconds:.2f} s) but {audio_name} is only "
            f"{seconds:.2f} s long"
        )
