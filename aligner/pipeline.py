"""Audio + transcript → :class:`~aligner.records.Alignment`.

The whole chain: read and resample audio, normalize the transcript to the
model's labels, compute emissions in a batch, run the batched Viterbi, and
turn the path into character and word spans in seconds.
"""

from __future__ import annotations

import os
import threading
import warnings
from dataclasses import dataclass
from typing import Sequence, Union

import torch

from .audio import load_audio, prepare_waveform
from .emissions import EmissionModel, num_frames
from .errors import TranscriptError
from .loading import load_model
from .model import AlignmentModel
from .records import Alignment
from .spans import token_spans, word_spans
from .text import Transcript, normalize_transcript, read_transcript
from .viterbi import forced_align

#: Audio: a file path, or ``(waveform, sample_rate)`` with a waveform of
#: shape ``(samples,)`` or ``(samples, channels)``.
AudioInput = Union[str, os.PathLike, tuple]
#: ``warnings.catch_warnings`` changes process-wide state: one thread at a time.
_WARNINGS_LOCK = threading.Lock()
#: Transcript: the text itself (``str``) or a path to a UTF-8 text file.
TextInput = Union[str, os.PathLike]


@dataclass(frozen=True)
class PreparedItem:
    """One recording decoded at the model's rate with its normalized
    transcript, ready for :meth:`Aligner.align_prepared`."""

    waveform: torch.Tensor
    transcript: Transcript
    targets: list[int]
    word_index: list[int]
    audio_name: str
    warnings: tuple[str, ...]


class Aligner:
    """Forced aligner: one model, reused for many files.

    Args:
        model: anything :func:`aligner.load_model` accepts (None = default).
        device: ``"cpu"``, ``"cuda"``, ``"cuda:1"``; None = CUDA if present.
        dtype: ``"float32"``, ``"bfloat16"``, ``"float16"``; None = bf16 on
            CUDA, float32 on CPU.
        chunk_seconds, context_seconds: window size and context on each
            side for recordings longer than ``chunk + 2 * context``.
        end_extension: seconds of trailing blank frames a word may keep
            (see :mod:`aligner.spans`).
        language: language of the transcripts (number expansion).
    """

    def __init__(self, model: str | os.PathLike | AlignmentModel | None = None, *,
                 device: str | torch.device | None = None, dtype: str | torch.dtype | None = None,
                 chunk_seconds: float = 20.0, context_seconds: float = 2.0,
                 end_extension: float = 0.1, language: str = "en"):
        self.model = load_model(model)
        self.emitter = EmissionModel(self.model, device=device, dtype=dtype,
                                     chunk_seconds=chunk_seconds, context_seconds=context_seconds)
        self.end_extension_frames = max(0, round(end_extension / self.model.frame_seconds))
        self.language = language

    @property
    def device(self) -> torch.device:
        return self.emitter.device

    def align(self, audio: AudioInput, transcript: TextInput) -> Alignment:
        """Align one recording to its transcript."""
        return self.align_batch([(audio, transcript)])[0]

    def align_batch(self, pairs: Sequence[tuple[AudioInput, TextInput]]) -> list[Alignment]:
        """Align several recordings in one batch (same results as one by one)."""
        return self.align_prepared([self.prepare(audio, text) for audio, text in pairs])

    def align_prepared(self, items: Sequence[PreparedItem]) -> list[Alignment]:
        """Align items made by :meth:`prepare` in one batch (emissions and
        Viterbi batched; same results as one by one)."""
        emissions = self.emitter([item.waveform for item in items])
        lengths = emissions.lengths
        max_targets = max(len(item.targets) for item in items)
        targets = torch.zeros(len(items), max_targets, dtype=torch.int64)
        for row, item in enumerate(items):
            targets[row, : len(item.targets)] = torch.tensor(item.targets)
        target_lengths = torch.tensor([len(item.targets) for item in items])
        device = emissions.log_probs.device
        paths, scores = forced_align(emissions.log_probs, targets.to(device), lengths,
                                     target_lengths.to(device), blank=self.model.blank)
        paths, scores, lengths = paths.cpu(), scores.cpu(), lengths.cpu()
        results = []
        for row, item in enumerate(items):
            frames = int(lengths[row])
            spans = token_spans(paths[row, :frames], scores[row, :frames], self.model.blank)
            words = word_spans(spans, item.word_index, item.transcript.words, self.model.labels,
                               self.model.frame_seconds, frames, separator=self.model.separator_id,
                               end_extension_frames=self.end_extension_frames)
            duration = item.waveform.shape[-1] / self.model.sample_rate
            results.append(Alignment(tuple(words), duration, self.model.frame_seconds,
                                     self.model.phonetic, item.audio_name, self.model.name,
                                     item.warnings))
        return results

    def prepare(self, audio: AudioInput, text: TextInput, *, warn: bool = True) -> PreparedItem:
        """Decode, resample and normalize one pair without running the model
        (thread-safe: corpus alignment runs it in background threads).

        Transcript warnings (dropped characters) are always kept in the
        item (and the alignment); ``warn=False`` does not also emit them.

        Raises:
            AudioError, TranscriptError: unusable audio or transcript, or a
                transcript too long for the audio.
        """
        rate = self.model.sample_rate
        if isinstance(audio, tuple):
            data, sample_rate = audio
            audio_name = "<waveform>"
            waveform = prepare_waveform(data, int(sample_rate), rate, source=audio_name)
        else:
            audio_name = str(audio)
            waveform = load_audio(audio, rate)
        if isinstance(text, os.PathLike):
            source = str(text)
            text = read_transcript(text)
        else:
            source = f"transcript of {audio_name}"
        with _WARNINGS_LOCK, warnings.catch_warnings(record=True) as caught:  # not thread-safe alone
            warnings.simplefilter("always")
            transcript = normalize_transcript(
                text, self.model.labels, blank=self.model.blank, separator=self.model.separator,
                star=self.model.star, language=self.language, source=source)
        for warning in caught if warn else ():
            warnings.warn_explicit(warning.message, warning.category, warning.filename, warning.lineno)
        targets, word_index = transcript.targets(self.model.separator_id)
        _check_fits(targets, waveform, self.model, source, audio_name)
        return PreparedItem(waveform, transcript, targets, word_index, audio_name,
                     tuple(str(w.message) for w in caught))


def minimum_frames(targets: Sequence[int]) -> int:
    """Frames a CTC path needs: one per token plus one blank per repeat."""
    repeats = sum(1 for a, b in zip(targets, targets[1:]) if a == b)
    return len(targets) + repeats


def _check_fits(targets: list[int], waveform: torch.Tensor, model: AlignmentModel,
                source: str, audio_name: str) -> None:
    frames = num_frames(model, int(waveform.shape[-1]))
    needed = minimum_frames(targets)
    if needed > frames:
        audio_seconds = waveform.shape[-1] / model.sample_rate
        raise TranscriptError(
            f"{source}: transcript too long for the audio: its {len(targets)} tokens need at least "
            f"{needed * model.frame_seconds:.2f} s of audio ({needed} frames of "
            f"{model.frame_seconds * 1000:g} ms) but {audio_name} is only {audio_seconds:.2f} s long")


def align(audio: AudioInput, transcript: TextInput, model: str | os.PathLike | AlignmentModel | None = None,
          **options) -> Alignment:
    """Align one recording: ``aligner.align("a.wav", "the text")``.

    ``transcript`` is the text itself, or a :class:`pathlib.Path` to a text
    file. ``options`` go to :class:`Aligner`. For many files, build one
    :class:`Aligner` and reuse it.
    """
    return Aligner(model, **options).align(audio, transcript)

