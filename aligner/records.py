"""Small immutable records for alignment results.

Time convention (used everywhere in the package): model frame ``t`` covers
the half-open interval ``[t * frame_seconds, (t + 1) * frame_seconds)``; a
frame's time is its *start*. ``frame_seconds`` is the product of the model's
convolution strides divided by the sample rate (320 / 16000 = 0.02 s for
wav2vec 2.0 / HuBERT / MMS). A span of frames ``[start, end)`` therefore
maps to ``[start * frame_seconds, end * frame_seconds]`` in seconds.
"""

from __future__ import annotations

from dataclasses import dataclass, field


@dataclass(frozen=True)
class TokenSpan:
    """A run of identical non-blank path frames for one target token.

    Attributes:
        token: label id in the model's vocabulary.
        start: first frame (inclusive).
        end: frame after the last one (exclusive).
        score: mean per-frame probability (``exp`` of the log-probability)
            over ``[start, end)``.
    """

    token: int
    start: int
    end: int
    score: float


@dataclass(frozen=True)
class CharSpan:
    """One aligned character (or phone) in seconds.

    Attributes:
        label: the model label (normalized form, e.g. ``"D"``).
        start, end: seconds.
        score: mean per-frame probability of the label over its frames.
    """

    label: str
    start: float
    end: float
    score: float

    @property
    def duration(self) -> float:
        return self.end - self.start


@dataclass(frozen=True)
class WordSpan:
    """One aligned word in seconds.

    Attributes:
        text: the word exactly as the user wrote it (``"Don't,"``).
        normalized: its tokens in the model's label set (``"DON'T"``).
        start, end: seconds.
        score: mean per-frame probability over the frames of its characters;
            0.0 when the word could not be aligned.
        chars: the aligned characters, in order.
        aligned: False when no character of the word could be represented by
            the model; such a word still gets an interval (between its
            neighbours) so it never vanishes from the output.
    """

    text: str
    normalized: str
    start: float
    end: float
    score: float
    chars: tuple[CharSpan, ...] = ()
    aligned: bool = True

    @property
    def duration(self) -> float:
        return self.end - self.start


@dataclass(frozen=True)
class Alignment:
    """The alignment of one recording.

    Attributes:
        words: aligned words in transcript order.
        duration: audio duration in seconds (TextGrid ``xmax``).
        frame_seconds: duration of one model frame.
        phonetic: True when the model's labels are phones (the character tier
            is then called ``phones``).
        audio: path of the audio file, if known.
        model: name of the model that produced it.
    """

    words: tuple[WordSpan, ...]
    duration: float
    frame_seconds: float = 0.02
    phonetic: bool = False
    audio: str | None = None
    model: str | None = None
    warnings: tuple[str, ...] = field(default=())

    @property
    def chars(self) -> tuple[CharSpan, ...]:
        return tuple(c for w in self.words for c in w.chars)

    @property
    def score(self) -> float:
        """Mean word score over aligned words (0.0 when none)."""
        scores = [w.score for w in self.words if w.aligned]
        return sum(scores) / len(scores) if scores else 0.0
