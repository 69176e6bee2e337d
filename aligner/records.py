"""Small immutable records for alignment results.

Time convention (used everywhere in the package): model frame ``t`` covers
the half-open interval ``[t * frame_seconds, (t + 1) * frame_seconds)``; a
frame's time is its *start*. ``frame_seconds`` is the product of the model's
convolution strides divided by the sample rate (320 / 16000 = 0.02 s for
wav2vec 2.0 / HuBERT / MMS). A span of frames ``[start, end)`` therefore
maps to ``[start * frame_seconds, end * frame_seconds]`` in seconds.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass, field

from .errors import AlignmentError


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
        score: mean per-frame probability over the frames of its characters
            (the per-word confidence); 0.0 for a word with no representable
            character; for a word not placed in partial mode, the
            geometric-mean probability of its characters in the detection
            pass, below the aligner's ``min_word_score`` (see
            :mod:`aligner.partial`).
        chars: the aligned characters, in order; empty when not aligned.
        aligned: False when the word could not be placed in the audio: no
            character of it can be represented by the model, or (partial
            mode) it was not found in the audio. Such a word still gets an
            interval (between its placed neighbours) so it never vanishes
            from the output; writers mark it (see :mod:`aligner.writers`).
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
        warnings: text-stage warnings (e.g. dropped characters).
        skipped: ``(start, end)`` seconds of audio that partial mode
            explained with the star instead of the transcript: sounds the
            network hears that the text does not say (an untranscribed intro
            or sentence, noise; not what it hears as silence), in time
            order; empty otherwise.
        suspect: why the alignment is probably wrong somewhere (a low mean
            score, a word too long for its sounds, a word on silence; see
            :mod:`aligner.guard`); empty when it looks plausible.
        warp: the vocal-tract-length warp of the spectrum the recording was
            aligned with (``vtln``, :mod:`aligner.vtln`); None when none was
            chosen.

    Examples:
        >>> from aligner.records import Alignment, CharSpan, WordSpan
        >>> hi = WordSpan("Hi", "HI", 0.1, 0.3, 0.9, (CharSpan("H", 0.1, 0.2, 0.9), CharSpan("I", 0.2, 0.3, 0.9)))
        >>> there = WordSpan("there", "THERE", 0.4, 0.8, 0.5)
        >>> alignment = Alignment((hi, there), duration=1.0)
        >>> [char.label for char in alignment.chars], alignment.score
        (['H', 'I'], 0.7)
        >>> [word.text for word in alignment.low_confidence_words(0.6)]
        ['there']
        >>> alignment.confidence(0.6).flagged
        1
    """

    words: tuple[WordSpan, ...]
    duration: float
    frame_seconds: float = 0.02
    phonetic: bool = False
    audio: str | None = None
    model: str | None = None
    warnings: tuple[str, ...] = field(default=())
    skipped: tuple[tuple[float, float], ...] = field(default=())
    suspect: tuple[str, ...] = field(default=())
    warp: float | None = None

    @property
    def chars(self) -> tuple[CharSpan, ...]:
        return tuple(c for w in self.words for c in w.chars)

    @property
    def score(self) -> float:
        """Mean word score over aligned words (0.0 when none)."""
        scores = [w.score for w in self.words if w.aligned]
        return sum(scores) / len(scores) if scores else 0.0

    @property
    def unaligned_words(self) -> tuple[WordSpan, ...]:
        """The words that could not be placed (``aligned`` False)."""
        return tuple(w for w in self.words if not w.aligned)

    def low_confidence_words(self, threshold: float) -> tuple[WordSpan, ...]:
        """Words to check: not placed, or placed with a score below
        ``threshold`` (a non-finite score counts as low), in order."""
        return tuple(w for w in self.words if not w.aligned or not w.score >= threshold)

    def _repr_html_(self) -> str | None:
        """Jupyter: the interactive view of ``aligner view`` (:mod:`viz.view`),
        tiers only: an ``Alignment`` holds no audio (``viz.show(alignment,
        audio)`` adds waveform, spectrogram and playback)."""
        from .errors import AlignerError

        try:
            from viz.view import View
        except ImportError:  # pragma: no cover - the viz package is part of the distribution
            return None
        try:
            return View(self)._repr_html_()
        except AlignerError:  # e.g. a non-finite time: the plain repr shows it
            return None

    def confidence(self, threshold: float) -> Confidence:
        """A :class:`Confidence` summary with ``threshold`` for low scores."""
        placed = [w.score for w in self.words if w.aligned]
        low = sum(1 for s in placed if not s >= threshold)
        finite = [s for s in placed if math.isfinite(s)]
        return Confidence(
            threshold=threshold,
            words=len(self.words),
            unaligned=len(self.words) - len(placed),
            low=low,
            mean_score=math.fsum(finite) / len(finite) if finite else 0.0,
            min_score=min(finite) if finite else 0.0,
            skipped_seconds=math.fsum(end - start for start, end in self.skipped),
        )


@dataclass(frozen=True)
class Confidence:
    """How much of an alignment to trust: counts for one recording, or a
    corpus with :meth:`total`.

    Attributes:
        threshold: word score below which a placed word counts as low.
        words: words in the transcript(s).
        unaligned: words that could not be placed.
        low: placed words with a score below ``threshold``.
        mean_score: mean score of the placed words (0.0 when none).
        min_score: lowest score of a placed word (0.0 when none).
        skipped_seconds: audio explained by the star (partial mode).
    """

    threshold: float
    words: int
    unaligned: int
    low: int
    mean_score: float
    min_score: float
    skipped_seconds: float = 0.0

    @property
    def flagged(self) -> int:
        """Words to check: not placed or low."""
        return self.unaligned + self.low

    @property
    def flagged_share(self) -> float:
        """``flagged / words`` (0.0 without words)."""
        return self.flagged / self.words if self.words else 0.0

    @classmethod
    def total(cls, summaries: Sequence[Confidence]) -> Confidence:
        """Combine per-recording summaries of the same ``threshold`` (the mean
        score is weighted by placed words).

        Raises:
            AlignmentError: no summaries, or different thresholds.
        """
        if not summaries:
            raise AlignmentError("Confidence.total: no summaries to combine")
        thresholds = {s.threshold for s in summaries}
        if len(thresholds) != 1:
            raise AlignmentError(
                f"Confidence.total: cannot combine summaries of different thresholds {sorted(thresholds)}"
            )
        placed = [(s.words - s.unaligned, s) for s in summaries]
        count = sum(n for n, _ in placed)
        return cls(
            threshold=summaries[0].threshold,
            words=sum(s.words for s in summaries),
            unaligned=sum(s.unaligned for s in summaries),
            low=sum(s.low for s in summaries),
            mean_score=math.fsum(n * s.mean_score for n, s in placed) / count if count else 0.0,
            min_score=min((s.min_score for n, s in placed if n), default=0.0),
            skipped_seconds=math.fsum(s.skipped_seconds for s in summaries),
        )
