"""Audio + transcript → :class:`~aligner.records.Alignment`.

The whole chain: read and resample audio, normalize the transcript to the
model's labels, compute emissions in a batch, run the batched Viterbi, and
turn the path into character and word spans in seconds. With
``partial=True`` the Viterbi gets a star for audio with no text and a
detection pass for text with no audio (see :mod:`aligner.partial`).
"""

from __future__ import annotations

import copy
import math
import numbers
import os
import warnings
from collections.abc import Sequence
from dataclasses import dataclass, replace
from typing import Any

import torch

from .activity import SPEECH_SPAN_SECONDS, frame_levels, quiet_masks, recording_speech_level
from .audio import load_audio, prepare_waveform
from .duration_viterbi import duration_align, load_kernels
from .errors import AlignerError, AudioError, TranscriptError, TranscriptTooLongError
from .fits import check_text_size, check_word_count
from .guard import (
    FALLBACK_MAX_CELLS,
    FALLBACK_MAX_PHONE_SECONDS,
    FALLBACK_QUIET_DB,
    QUIET_DB,
    suspect_reasons,
    suspect_reasons_batch,
)
from .models.alignment_model import QUIET_PENALTY, AlignmentModel
from .models.emissions import EmissionModel, Emissions, num_frames
from .models.frontend import LogMelFrontEnd
from .models.loading import load_model
from .partial import (
    DETECTION_SPLIT,
    DURATION_STAR_PENALTY,
    STAR_POSITIONS,
    WORD_SKIP_COST,
    duration_plan,
    partial_targets,
    skipped_runs,
    split_star_spans,
    star_emissions,
    word_detection_scores,
)
from .records import Alignment, TokenSpan, WordSpan
from .refine import LEVEL_WINDOW_SAMPLES, refine_words
from .spans import position_spans, token_spans, word_spans
from .text import Transcript, UnrepresentableCharacterWarning, phonemizer_voice, read_transcript, transcript_for_model

#: Seconds of trailing blank frames a word keeps when neither the caller nor
#: the model says otherwise (peaky CTC models).
DEFAULT_END_EXTENSION = 0.1

#: Audio: a file path, or ``(waveform, sample_rate)`` with a waveform of
#: shape ``(samples,)`` or ``(samples, channels)``.
AudioInput = str | os.PathLike | tuple
#: Transcript: the text itself (``str``) or a path to a UTF-8 text file.
TextInput = str | os.PathLike


@dataclass(frozen=True)
class PreparedItem:
    """One recording decoded at the model's rate with its normalized
    transcript, ready for :meth:`Aligner.align_prepared`. ``min_frames``:
    set when the recording is too short for its transcript at the
    aligner's minimum duration per token (fast speech): the largest
    minimum that fits, which the duration-aware decoder then uses for it.
    ``warp``: the vocal-tract-length warp to align it with (set by
    ``align_corpus`` for a speaker's files, :mod:`aligner.vtln`); None: 1,
    or the aligner's own search when ``vtln`` is on."""

    waveform: torch.Tensor
    transcript: Transcript
    targets: list[int]
    word_index: list[int]
    audio_name: str
    warnings: tuple[str, ...]
    min_frames: int | None = None
    warp: float | None = None


class Aligner:
    """Forced aligner: one model, reused for many files.

    Args:
        model: anything :func:`aligner.load_model` accepts (None = default).
        device: ``"cpu"``, ``"cuda"``, ``"cuda:1"``; None = CUDA if present.
        dtype: ``"float32"``, ``"bfloat16"``, ``"float16"``; None = bf16 on
            CUDA, float32 on CPU; ``"onnx"`` / ``"onnx-int8"``: the ONNX
            Runtime backend on the CPU (:class:`aligner.EmissionModel`).
        chunk_seconds, context_seconds: window size and context on each
            side for recordings longer than ``chunk + 2 * context``.
        end_extension: seconds of trailing blank frames a word may keep
            (see :mod:`aligner.spans`); None: the model's own
            ``end_extension`` (0 for the frame-level phone model), else 0.1.
        language: language of the transcripts (number expansion; a phone
            model's phonemizer reads English only).
        partial: tolerate a transcript that does not match its audio
            exactly (:mod:`aligner.partial`): audio with no text (an intro,
            music, an untranscribed sentence) is skipped by a star and listed
            in ``Alignment.skipped``; words with no audio are marked
            ``aligned=False`` with their low score instead of being squeezed
            between their neighbours.
        star_penalty: partial mode: log-probability price per frame of audio
            the star explains as something the transcript does not say
            (lower: skips more readily); None: 3 on the CTC path,
            :data:`~aligner.partial.DURATION_STAR_PENALTY` (5) with the
            duration-aware decoder, whose frame-level models are surer of
            silence.
        min_word_score: partial mode: on the CTC path, a word whose
            characters have a geometric-mean probability below this in the
            detection pass is not placed; with the duration-aware decoder
            (phone models) a word is left out where that pays more than
            :data:`~aligner.partial.WORD_SKIP_COST` per token; 0: every word
            is placed.
        star_at: partial mode: where audio may be skipped: ``"clauses"``
            (before and after the text and after words ending in
            punctuation), ``"edges"`` (before and after the text only) or
            ``"words"`` (between any two words; needed when untranscribed
            audio can sit inside a clause, but short words then move more
            easily onto look-alikes in skipped speech).
        window_batch: most windows (or short recordings) per pass through
            the network; corpus alignment raises it, its batches being
            bounded by padded seconds instead.
        blank_penalty: log-probability taken off the blank (silence) label
            at every frame before the Viterbi; None: the model's own
            ``blank_penalty`` (2 for the packaged phone model, else 0).
        min_frames: use the duration-aware decoder
            (:mod:`aligner.duration_viterbi`): every token lasts at least
            this many frames and silence falls only between words. None:
            the model's own ``min_frames`` (2 for the packaged phone model;
            None, the plain CTC path, for character models, whose peaky
            output needs blanks inside words). Partial mode always uses
            the CTC path. A recording too short for its transcript at this
            minimum (fast speech) is decoded with the largest minimum that
            fits, down to one frame per token, and its alignment says so
            (``suspect``: ``fast speech: ...``).
        max_memory: bytes of Viterbi back-pointer memory per recording
            before the memory-bounded search is used (None: the default of
            :func:`forced_align`; the path is the same either way).
        refine: after decoding, move each word boundary at a pause (and
            the first start and last end) up to 60 ms to where the audio's
            energy says speech starts or stops (:mod:`aligner.refine`);
            words that touch and words not placed keep their boundaries.
            Off by default: it made the packaged phone model's boundaries
            worse; it is meant for the pause edges of CTC models.
        vtl_warps: run the network once per vocal-tract-length warp of the
            spectrum and average the log-probabilities (models with a
            log-mel front end, :class:`~aligner.models.emissions.EmissionModel`);
            ``(0.85, 1.0, 1.15)`` (``--vtl-warps``) costs 3 network passes
            and made every evaluation set more accurate (``MODEL.md``).
        vtln: vocal-tract-length normalization chosen by likelihood
            (:mod:`aligner.vtln`, models with a log-mel front end): each
            recording is aligned with the spectral warp under which its
            forced alignment is most likely, searched on its own audio
            (eight network passes); a recording with too little audio
            keeps warp 1 and its alignment's ``warnings`` say so. An item
            whose ``warp`` is set (``align_corpus`` chooses one per
            speaker) is aligned with that warp without a search.

    Raises:
        AlignerError: an option out of range (and see :func:`load_model`).

    Examples:
        A tiny random model (:mod:`aligner.testing`) keeps this fast; leave
        ``model`` out for the packaged English phone model.

        >>> import torch
        >>> from aligner import Aligner
        >>> from aligner.testing import tiny_model
        >>> aligner = Aligner(tiny_model(), device="cpu")
        >>> tone = torch.sin(torch.arange(16000) * 0.2)  # 1 s at 16 kHz
        >>> result = aligner.align((tone, 16000), "Hello, world!")
        >>> [(word.text, word.normalized) for word in result.words]
        [('Hello,', 'HELLO'), ('world!', 'WORLD')]
        >>> [char.label for char in result.words[0].chars]
        ['H', 'E', 'L', 'L', 'O']
        >>> result.duration, result.model
        (1.0, 'tiny')
        >>> all(0 <= w.start < w.end <= result.duration for w in result.words)
        True
    """

    def __init__(
        self,
        model: str | os.PathLike | AlignmentModel | None = None,
        *,
        device: str | torch.device | None = None,
        dtype: str | torch.dtype | None = None,
        chunk_seconds: float = 20.0,
        context_seconds: float = 2.0,
        end_extension: float | None = None,
        language: str = "en",
        partial: bool = False,
        star_penalty: float | None = None,
        min_word_score: float = 0.02,
        star_at: str = "clauses",
        window_batch: int = 4,
        max_memory: int | None = None,
        blank_penalty: float | None = None,
        min_frames: int | None = None,
        refine: bool = False,
        vtl_warps: Sequence[float] = (1.0,),
        vtln: bool = False,
    ):
        if not isinstance(refine, bool):
            raise AlignerError(f"refine must be True or False, not {refine!r}")
        if not isinstance(vtln, bool):
            raise AlignerError(f"vtln must be True or False, not {vtln!r}")
        _check_partial_options(partial, 3.0 if star_penalty is None else star_penalty, min_word_score, star_at)
        _check_end_extension(end_extension)
        if blank_penalty is not None and (
            isinstance(blank_penalty, bool)
            or not isinstance(blank_penalty, numbers.Real)
            or not (math.isfinite(blank_penalty) and blank_penalty >= 0)
        ):
            raise AlignerError(
                f"blank_penalty must be a finite number >= 0 (log-probability per frame), not {blank_penalty!r}"
            )
        self.model = load_model(model)
        if self.model.phonemizer is not None:
            phonemizer_voice(self.model.phonemizer, language)  # an unsupported language fails here, once
        self.emitter = EmissionModel(
            self.model,
            device=device,
            dtype=dtype,
            chunk_seconds=chunk_seconds,
            context_seconds=context_seconds,
            window_batch=window_batch,
            vtl_warps=vtl_warps,
        )
        if vtln:
            _check_vtln_model(self.model)
        self.vtln = vtln
        self.max_memory = max_memory
        # The duration decoder's first call may run in numpy (no numba import: a one-file command
        # starts faster); an aligner used again loads the compiled kernels. Same paths either way.
        self._decoded = False
        if end_extension is None:
            end_extension = DEFAULT_END_EXTENSION if self.model.end_extension is None else self.model.end_extension
        self.end_extension = float(end_extension)
        self.end_extension_frames = max(0, round(self.end_extension / self.model.frame_seconds))
        self.blank_penalty = self.model.blank_penalty if blank_penalty is None else float(blank_penalty)
        if min_frames is not None and (
            isinstance(min_frames, bool) or not isinstance(min_frames, numbers.Integral) or not 1 <= min_frames <= 50
        ):
            raise AlignerError(f"min_frames must be an integer in [1, 50], not {min_frames!r}")
        self.min_frames = self.model.min_frames if min_frames is None else int(min_frames)
        self.language = language
        self.partial = partial
        if star_penalty is None:
            star_penalty = DURATION_STAR_PENALTY if self.min_frames is not None else 3.0
        self.star_penalty = float(star_penalty)
        self.min_word_score = float(min_word_score)
        self.star_at = star_at
        self.refine = refine

    @property
    def device(self) -> torch.device:
        return self.emitter.device

    def with_model(self, model: AlignmentModel) -> Aligner:
        """A new aligner with the same settings (device, dtype, decoding)
        running ``model``, which must have the same labels (e.g. an adapted
        copy of this aligner's model)."""
        if tuple(model.labels) != tuple(self.model.labels):
            raise AlignerError("with_model: the new model must have the same labels")
        other = copy.copy(self)
        other.model = model
        other.emitter = self.emitter.with_model(model)
        return other

    def with_vtln(self, vtln: bool) -> Aligner:
        """This aligner with ``vtln`` on or off (a copy sharing the model;
        ``self`` when it is already so)."""
        if vtln == self.vtln:
            return self
        if vtln:
            _check_vtln_model(self.model)
        other = copy.copy(self)
        other.vtln = vtln
        return other

    def align(self, audio: AudioInput, transcript: TextInput) -> Alignment:
        """Align one recording to its transcript."""
        return self.align_batch([(audio, transcript)])[0]

    def align_batch(self, pairs: Sequence[tuple[AudioInput, TextInput]]) -> list[Alignment]:
        """Align several recordings in one batch (same results as one by one)."""
        return self.align_prepared([self.prepare(audio, text) for audio, text in pairs])

    def align_prepared(self, items: Sequence[PreparedItem]) -> list[Alignment]:
        """Align items made by :meth:`prepare` in one batch (emissions and
        Viterbi batched; same results as one by one)."""
        items = list(items)
        if self.vtln and any(item.warp is None for item in items):
            items, emissions = self._vtln(items)
        else:
            emissions = self.emitter([item.waveform for item in items], self._warps(items))
        levels, speech, quiet, log_probs = self._decoding_inputs(items, emissions)
        if self.partial and self.min_frames is not None:
            results = self._align_partial_durations(items, emissions.log_probs, log_probs, emissions.lengths)
        elif self.partial:
            results = self._align_partial(items, log_probs, emissions.lengths)
        elif self.min_frames is not None:
            results = self._align_durations(items, emissions.log_probs, log_probs, emissions.lengths)
        else:
            results = self._align_ctc(items, log_probs, emissions.lengths)
        results = self._refined(results, levels)
        phones = self.min_frames is not None  # a frame-level model: its phones last as long as they sound
        words = [result.words for result in results]
        reasons = suspect_reasons_batch(words, self.model.frame_seconds, quiet, phone_durations=phones)
        results = [replace(result, suspect=found) for result, found in zip(results, reasons)]
        if self.min_frames is not None and not self.partial:
            results = self._fall_back(items, emissions.log_probs, emissions.lengths, levels, speech, quiet, results)
            results = [  # after the fallback: a lowered minimum is no reason to re-align
                result if item.min_frames is None else replace(result, suspect=(*result.suspect, self._fast(item)))
                for item, result in zip(items, results)
            ]
        return results

    def _warps(self, items: Sequence[PreparedItem]) -> list[float]:
        return [1.0 if item.warp is None else item.warp for item in items]

    def _decoding_inputs(
        self, items: Sequence[PreparedItem], emissions: Emissions
    ) -> tuple[list[torch.Tensor], list[float | torch.Tensor], list[torch.Tensor], torch.Tensor]:
        """``(levels, speech, quiet, log_probs)`` of a batch: each item's
        frame levels, speech level and quiet frames (the guard's), and the
        log-probabilities the decoder chooses paths on (blank penalty and
        quiet prior applied)."""
        frames = [int(n) for n in emissions.lengths.cpu()]
        levels = [frame_levels(item.waveform, self.model.frame_samples, n) for item, n in zip(items, frames)]
        span = round(SPEECH_SPAN_SECONDS / self.model.frame_seconds)
        speech = [recording_speech_level(level, span) for level in levels]  # once per recording (local when long)
        quiet = quiet_masks(levels, speech, QUIET_DB)  # the guard's
        prior = self.model.quiet_db  # the quiet prior's threshold: the guard's masks when it is the same
        masks = None if prior is None else quiet if prior == QUIET_DB else quiet_masks(levels, speech, prior)
        log_probs = self._with_quiet_prior(self._with_blank_penalty(emissions.log_probs), masks)
        return levels, speech, quiet, log_probs

    def path_log_likelihoods(
        self, items: Sequence[PreparedItem], warps: Sequence[float] | None = None
    ) -> tuple[list[tuple[float, int]], Emissions]:
        """Per item, the summed log-probability of its forced path and its
        frames (the Viterbi objective: blank penalty and quiet prior
        applied; the plain forced path, also in partial mode), each item's
        spectrum warped by its warp (None: the items' own, 1 when unset);
        with the emissions they were computed from. The score
        :mod:`aligner.vtln` maximizes."""
        warps = self._warps(items) if warps is None else list(warps)
        emissions = self.emitter([item.waveform for item in items], warps)
        _, _, _, log_probs = self._decoding_inputs(items, emissions)
        lengths = emissions.lengths.cpu()
        if self.min_frames is None:
            _, scores = self._viterbi(log_probs, [item.targets for item in items], emissions.lengths)
        else:
            paths, _ = self._duration_paths(items, log_probs, emissions.lengths)
            scores = log_probs.detach().cpu().float().gather(-1, paths[..., None])[..., 0]
        totals = [
            (float(scores[row, : int(lengths[row])].double().sum()), int(lengths[row])) for row in range(len(items))
        ]
        return totals, emissions

    def _vtln(self, items: list[PreparedItem]) -> tuple[list[PreparedItem], Emissions]:
        """Choose the warp of every item whose ``warp`` is unset on its own
        audio (:func:`aligner.vtln.search_warps`): the items with their
        warps (and a warning where the audio was too little) and the
        emissions of the batch at those warps, kept from the search."""
        from .vtln import search_warps

        kept: dict[tuple[int, float], torch.Tensor] = {}

        def score(rows: Sequence[int], warps: Sequence[float]) -> list[tuple[float, int]]:
            totals, emissions = self.path_log_likelihoods([items[row] for row in rows], warps)
            for k, (row, warp) in enumerate(zip(rows, warps)):
                kept[(row, warp)] = emissions.log_probs[k, : int(emissions.lengths[k])]
            return totals

        open_rows = [row for row, item in enumerate(items) if item.warp is None]
        seconds = [item.waveform.shape[-1] / self.model.sample_rate for item in items]
        choices = search_warps(score, seconds, [[row] for row in open_rows])
        items = list(items)
        for row, choice in zip(open_rows, choices):
            warnings_ = items[row].warnings if choice.searched else (*items[row].warnings, f"vtln: {choice.note}")
            items[row] = replace(items[row], warp=choice.warp, warnings=warnings_)
        missing = [row for row, item in enumerate(items) if (row, item.warp) not in kept]
        if missing:  # items set beforehand, or with too little audio to search
            rest = self.emitter([items[row].waveform for row in missing], self._warps([items[r] for r in missing]))
            for k, row in enumerate(missing):
                kept[(row, self._warps([items[row]])[0])] = rest.log_probs[k, : int(rest.lengths[k])]
        chosen = [kept[(row, self._warps([item])[0])] for row, item in enumerate(items)]
        lengths = torch.tensor([c.shape[0] for c in chosen], dtype=torch.int64, device=self.emitter.device)
        log_probs = torch.zeros(len(items), int(lengths.max()), chosen[0].shape[-1], device=self.emitter.device)
        for row, c in enumerate(chosen):
            log_probs[row, : c.shape[0]] = c
        return items, Emissions(log_probs, lengths, self.model.frame_seconds)

    def _fast(self, item: PreparedItem) -> str:
        """The note of an item decoded with a lowered minimum duration."""
        seconds = item.waveform.shape[-1] / self.model.sample_rate
        return (
            f"fast speech: {len(item.targets)} tokens in {seconds:.2f} s, so each token's minimum duration "
            f"was lowered from {self.min_frames} to {item.min_frames} frames"
        )

    def _fall_back(
        self,
        items: Sequence[PreparedItem],
        log_probs: torch.Tensor,
        lengths: torch.Tensor,
        levels: Sequence[torch.Tensor],
        speech: Sequence[float | torch.Tensor],
        quiet: Sequence[torch.Tensor],
        results: list[Alignment],
    ) -> list[Alignment]:
        """Re-decode the suspect alignments with a stricter speech/silence
        constraint: no blank penalty, phones taken off frames
        :data:`~aligner.guard.FALLBACK_QUIET_DB` under the speech level, and
        no phone longer than :data:`~aligner.guard.FALLBACK_MAX_PHONE_SECONDS`
        (when the capped graph stays under
        :data:`~aligner.guard.FALLBACK_MAX_CELLS` frames x states). The
        second alignment replaces the first (on the hostile set of
        ``benchmarks/bench_accuracy.py`` it took the two files it flagged
        from 1.1 and 1.7 s off to 0.07 and 0.05 s, and cost the two flagged
        files that were fine 10 ms); its ``suspect`` reasons end with a note
        that it was re-aligned, so the file stays flagged for a look.
        Shape: log_probs ``(B, T, C)``, lengths ``(B,)``; levels and quiet
        (the guard's quiet frames) per item ``(T_i,)``; speech: each
        item's speech level (dB; one, or one per frame ``(T_i,)``)."""
        rows = [row for row, result in enumerate(results) if result.suspect]
        if not rows:
            return results
        strict = self._with_quiet_prior(
            log_probs[rows],
            quiet_masks([levels[row] for row in rows], [speech[row] for row in rows], FALLBACK_QUIET_DB),
        )
        assert self.min_frames is not None  # only called for the duration-aware decoder
        cap = max(self.min_frames, round(FALLBACK_MAX_PHONE_SECONDS / self.model.frame_seconds))  # >= any item's
        second = []
        for k, row in enumerate(rows):  # one by one: each gets the phone cap when its graph stays small
            tokens = sum(len(word.tokens) for word in items[row].transcript.words)
            small = int(lengths[row]) * tokens * cap <= FALLBACK_MAX_CELLS
            second += self._align_durations(
                [items[row]],
                log_probs[row : row + 1],
                strict[k : k + 1],
                lengths[row : row + 1],
                cap if small else None,
            )
        second = self._refined(second, [levels[row] for row in rows])
        results = list(results)
        for row, again in zip(rows, second):
            reasons = suspect_reasons(again.words, self.model.frame_seconds, quiet[row], phone_durations=True)
            note = f"re-aligned with a stricter speech/silence constraint after: {results[row].suspect[0]}"
            results[row] = replace(again, suspect=(*reasons, note))
        return results

    def _refined(self, results: Sequence[Alignment], levels: Sequence[torch.Tensor]) -> list[Alignment]:
        """``results`` with their pause edges refined (:mod:`aligner.refine`)
        when ``refine`` is on; ``levels`` per result ``(T_i,)``."""
        if not self.refine:
            return list(results)
        level_window = LEVEL_WINDOW_SAMPLES / self.model.sample_rate  # frame_levels' default window
        return [
            replace(
                result,
                words=refine_words(
                    result.words,
                    level,
                    result.frame_seconds,
                    result.duration,
                    level_window=level_window,
                    keep_out=result.skipped,
                ),
            )
            for result, level in zip(results, levels)
        ]

    def _align_ctc(
        self, items: Sequence[PreparedItem], log_probs: torch.Tensor, lengths: torch.Tensor
    ) -> list[Alignment]:
        """The plain CTC path (:func:`aligner.viterbi.forced_align`).
        Shape: log_probs ``(B, T, C)``, lengths ``(B,)``."""
        paths, scores = self._viterbi(log_probs, [item.targets for item in items], lengths)
        lengths = lengths.cpu()
        results = []
        for row, item in enumerate(items):
            frames = int(lengths[row])
            spans = token_spans(paths[row, :frames], scores[row, :frames], self.model.blank)
            words = self._word_spans(spans, item.word_index, item.transcript.words, frames)
            results.append(self._alignment(item, words))
        return results

    def _before_duration_decoding(self) -> None:
        """From this aligner's second decoding on, the compiled kernels (see ``_decoded``)."""
        if self._decoded:
            load_kernels()
        self._decoded = True

    def _align_durations(
        self,
        items: Sequence[PreparedItem],
        log_probs: torch.Tensor,
        decoded: torch.Tensor,
        lengths: torch.Tensor,
        max_frames: int | None = None,
    ) -> list[Alignment]:
        """The duration-aware decoder (:mod:`aligner.duration_viterbi`):
        every token at least ``min_frames`` frames (and at most
        ``max_frames``), silence only between words. ``decoded`` (blank
        penalty applied) chooses the path; scores are ``log_probs`` of the
        path's labels. Shape: ``(B, T, C)``."""
        paths, positions = self._duration_paths(items, decoded, lengths, max_frames)
        chosen = log_probs.detach().cpu().float().gather(-1, paths[..., None])[..., 0]
        lengths = lengths.cpu()
        results = []
        for row, item in enumerate(items):
            frames = int(lengths[row])
            spans = position_spans(positions[row, :frames], paths[row, :frames], chosen[row, :frames])
            words_ = self._word_spans(spans, item.word_index, item.transcript.words, frames)
            results.append(self._alignment(item, words_))
        return results

    def _duration_paths(
        self,
        items: Sequence[PreparedItem],
        decoded: torch.Tensor,
        lengths: torch.Tensor,
        max_frames: int | None = None,
    ) -> tuple[torch.Tensor, torch.Tensor]:
        """``(paths, positions)`` of the duration-aware decoder on ``decoded``,
        one batch per minimum duration (fast speech has a lower one).
        Shape: decoded ``(B, T, C)``; results ``(B, T)`` on the CPU."""
        assert self.min_frames is not None  # only called for the duration-aware decoder
        self._before_duration_decoding()
        words = [[list(word.tokens) for word in item.transcript.words if word.tokens] for item in items]
        minima = [self.min_frames if item.min_frames is None else item.min_frames for item in items]
        paths = torch.empty(decoded.shape[:2], dtype=torch.int64)
        positions = torch.empty(decoded.shape[:2], dtype=torch.int64)
        for minimum in sorted(set(minima)):
            rows = [row for row, m in enumerate(minima) if m == minimum]
            paths[rows], positions[rows] = duration_align(
                decoded[rows] if len(rows) < len(items) else decoded,
                [words[row] for row in rows],
                lengths[rows],
                blank=self.model.blank,
                min_frames=minimum,
                max_frames=max_frames,
                max_memory=self.max_memory,
            )
        return paths, positions

    def _with_blank_penalty(self, log_probs: torch.Tensor) -> torch.Tensor:
        """``log_probs`` with the model's ``blank_penalty`` taken off the
        blank column (a new tensor; the same one when the penalty is 0).

        A frame-level phone model trained on synthetic speech calls weak
        real speech silence too readily; the penalty is its calibration.
        Shape: ``(B, T, C)``.
        """
        penalty = self.blank_penalty
        if not penalty:
            return log_probs
        adjusted = log_probs.clone()
        adjusted[..., self.model.blank] -= penalty
        return adjusted

    def _with_quiet_prior(self, log_probs: torch.Tensor, masks: Sequence[torch.Tensor] | None) -> torch.Tensor:
        """``log_probs`` with :data:`~aligner.models.alignment_model.QUIET_PENALTY` taken off
        every label but the blank on each item's quiet frames (``masks``,
        :func:`~aligner.activity.quiet_masks`; a new tensor; the same one when None: no
        quiet prior). Shape: ``(B, T, C)``; masks: per item ``(T_i,)``."""
        if masks is None:
            return log_probs
        mask = torch.zeros(log_probs.shape[:2], dtype=log_probs.dtype)
        for row, quiet in enumerate(masks):
            mask[row, : quiet.numel()] = quiet.to(log_probs.dtype)
        penalty = torch.full((log_probs.shape[-1],), QUIET_PENALTY, dtype=log_probs.dtype)
        penalty[self.model.blank] = 0.0
        return log_probs - mask.to(log_probs.device)[..., None] * penalty.to(log_probs.device)

    def _viterbi(
        self, emissions: torch.Tensor, targets: Sequence[Sequence[int]], lengths: torch.Tensor
    ) -> tuple[torch.Tensor, torch.Tensor]:
        """:func:`forced_align` of ragged target lists; paths and scores on the CPU.

        Shape: emissions ``(B, T, C)``, lengths ``(B,)``; results ``(B, T)``.
        """
        padded = torch.zeros(len(targets), max(len(t) for t in targets), dtype=torch.int64)
        for row, row_targets in enumerate(targets):
            padded[row, : len(row_targets)] = torch.tensor(row_targets, dtype=torch.int64)
        target_lengths = torch.tensor([len(t) for t in targets])
        device = emissions.device
        from .viterbi import forced_align  # numba: loaded for CTC models only

        paths, scores = forced_align(
            emissions,
            padded.to(device),
            lengths.to(device),
            target_lengths.to(device),
            blank=self.model.blank,
            max_memory=self.max_memory,
        )
        return paths.cpu(), scores.cpu()

    def _word_spans(
        self, spans: Sequence[TokenSpan], word_index: Sequence[int], words: Sequence, frames: int
    ) -> list[WordSpan]:
        return word_spans(
            spans,
            word_index,
            words,
            self.model.labels,
            self.model.frame_seconds,
            frames,
            separator=self.model.separator_id,
            end_extension_frames=self.end_extension_frames,
            joiner=" " if self.model.phonemizer is not None else "",
        )

    def _alignment(
        self, item: PreparedItem, words: Sequence[WordSpan], skipped_frames: Sequence[tuple[int, int]] = ()
    ) -> Alignment:
        """The item's :class:`Alignment`; ``skipped_frames`` (partial mode's
        skipped audio, ``(first, end)`` frames) become seconds within the audio."""
        duration = item.waveform.shape[-1] / self.model.sample_rate
        seconds = self.model.frame_seconds
        skipped = tuple((start * seconds, min(end * seconds, duration)) for start, end in skipped_frames)
        return Alignment(
            tuple(words),
            duration,
            self.model.frame_seconds,
            self.model.phonetic,
            item.audio_name,
            self.model.name,
            item.warnings,
            skipped,
            warp=item.warp,
        )

    def _align_partial(
        self, items: Sequence[PreparedItem], log_probs: torch.Tensor, lengths: torch.Tensor
    ) -> list[Alignment]:
        """Partial mode: detection pass, then the final pass without the
        words not found. Shape: log_probs ``(B, T, C)``, lengths ``(B,)``."""
        model = self.model
        emissions, codes = star_emissions(log_probs, model.blank, model.separator_id, model.star_id, self.star_penalty)
        star = log_probs.shape[-1]
        keeps = [[bool(w.tokens) for w in item.transcript.words] for item in items]
        if self.min_word_score > 0:
            unplaced = self._detect_unplaced(items, emissions, lengths, keeps, star)
        else:  # nothing can score below 0: no detection pass
            unplaced = [{} for _ in items]
        for keep, found in zip(keeps, unplaced):
            for index in found:
                keep[index] = False
        plans = [
            partial_targets(item.transcript.words, keep, star, model.separator_id, self.star_at)
            for item, keep in zip(items, keeps)
        ]
        paths, scores = self._viterbi(emissions, [targets for targets, _ in plans], lengths)
        codes, lengths = codes.cpu(), lengths.cpu()
        results = []
        for row, item in enumerate(items):
            frames = int(lengths[row])
            spans = token_spans(paths[row, :frames], scores[row, :frames], model.blank)
            spans, word_index, skipped = split_star_spans(spans, plans[row][1], star, codes[row, :frames])
            words = self._placed_words(item, spans, word_index, frames, unplaced[row])
            results.append(self._alignment(item, words, skipped))
        return results

    def _align_partial_durations(
        self, items: Sequence[PreparedItem], log_probs: torch.Tensor, decoded: torch.Tensor, lengths: torch.Tensor
    ) -> list[Alignment]:
        """Partial mode with the duration-aware decoder, in one pass: the
        star is an optional run at the edges and clause boundaries
        (:func:`~aligner.partial.duration_plan`), and every word may be left
        out at the price :data:`~aligner.partial.WORD_SKIP_COST` (none when
        ``min_word_score`` is 0). ``decoded`` (blank penalty and quiet prior
        applied) chooses the paths; scores are ``log_probs``.
        Shape: ``(B, T, C)``, lengths ``(B,)``."""
        assert self.min_frames is not None  # only called for the duration-aware decoder
        model = self.model
        emissions, _ = star_emissions(decoded, model.blank, None, model.star_id, self.star_penalty)
        # skipped audio is what the star takes as speech against the blank's
        # own probability (the blank penalty calibrates word edges, not this)
        _, codes = star_emissions(log_probs, model.blank, None, model.star_id, self.star_penalty)
        star = log_probs.shape[-1]
        plans = [
            duration_plan(
                item.transcript.words, [bool(w.tokens) for w in item.transcript.words], star, model.blank, self.star_at
            )
            for item in items
        ]
        skip_cost = None
        if self.min_word_score > 0:
            skip_cost = [[WORD_SKIP_COST * len(word) for word in plan[0]] for plan in plans]
        self._before_duration_decoding()
        paths, positions = duration_align(
            emissions,
            [plan[0] for plan in plans],
            lengths,
            blank=model.blank,
            min_frames=self.min_frames,
            max_memory=self.max_memory,
            gaps=[plan[1] for plan in plans],
            skip_cost=skip_cost,
        )
        scored = torch.cat([log_probs, torch.zeros_like(log_probs[..., :1])], dim=-1).detach().cpu().float()
        chosen = scored.gather(-1, paths[..., None])[..., 0]
        codes, lengths = codes.cpu(), lengths.cpu()
        results = []
        for row, item in enumerate(items):
            frames = int(lengths[row])
            word_index = plans[row][2]
            placed = sorted(set(positions[row, :frames].tolist()) - {-1})
            left_out = dict.fromkeys(set(word_index) - {word_index[p] for p in placed}, 0.0)
            spans = position_spans(positions[row, :frames], paths[row, :frames], chosen[row, :frames])
            skipped = skipped_runs(paths[row, :frames], star, codes[row, :frames])
            words = self._placed_words(item, spans, [word_index[p] for p in placed], frames, left_out)
            results.append(self._alignment(item, words, skipped))
        return results

    def _placed_words(
        self,
        item: PreparedItem,
        spans: Sequence[TokenSpan],
        word_index: Sequence[int],
        frames: int,
        unplaced: dict[int, float],
    ) -> list[WordSpan]:
        """Word spans of the final pass; the words in ``unplaced`` (left out
        of it) get their interval between neighbours and their score."""
        words = [replace(w, tokens=()) if index in unplaced else w for index, w in enumerate(item.transcript.words)]
        result = self._word_spans(spans, word_index, words, frames)
        for index, score in unplaced.items():
            result[index] = replace(result[index], normalized=item.transcript.words[index].normalized, score=score)
        return result

    def _detect_unplaced(
        self,
        items: Sequence[PreparedItem],
        emissions: torch.Tensor,
        lengths: torch.Tensor,
        keeps: Sequence[Sequence[bool]],
        star: int,
    ) -> list[dict[int, float]]:
        """Per item, ``{word index: score}`` of the words whose characters'
        geometric-mean probability (the score) on the split frames is below
        ``min_word_score``. Shape: emissions ``(B, T, C + 1)``, lengths ``(B,)``."""
        plans = [
            partial_targets(item.transcript.words, keep, star, self.model.separator_id, self.star_at)
            for item, keep in zip(items, keeps)
        ]
        split = DETECTION_SPLIT
        paths, scores = self._viterbi(
            emissions.repeat_interleave(split, dim=1), [targets for targets, _ in plans], lengths * split
        )
        lengths = lengths.cpu()
        found = []
        for row, (_, word_index) in enumerate(plans):
            frames = int(lengths[row]) * split
            spans = token_spans(paths[row, :frames], scores[row, :frames], self.model.blank)
            detected = word_detection_scores(spans, word_index, self.model.separator_id)
            found.append({index: score for index, score in detected.items() if score < self.min_word_score})
        return found

    def prepare(
        self, audio: AudioInput, text: TextInput, *, warn: bool = True, audio_name: str | None = None
    ) -> PreparedItem:
        """Decode, resample and normalize one pair without running the model
        (thread-safe: corpus alignment runs it in background threads).

        Transcript warnings (dropped characters) are always kept in the
        item (and the alignment); ``warn=False`` does not also emit them.
        ``audio_name`` names an in-memory ``(waveform, rate)`` in messages and
        outputs (default ``"<waveform>"``; a path names itself).

        Raises:
            AudioError, TranscriptError: unusable audio or transcript, or a
                transcript too long for the audio.
            PhonemizerError: a phone model without espeak-ng.
        """
        _check_inputs(audio, text)
        rate = self.model.sample_rate
        if isinstance(audio, tuple):
            data, sample_rate = audio
            audio_name = audio_name or "<waveform>"
            waveform = prepare_waveform(data, int(sample_rate), rate, source=audio_name)
        else:
            audio_name = str(audio)
            waveform = load_audio(audio, rate)
        if isinstance(text, os.PathLike):
            source = str(text)
            text = read_transcript(text)
        else:
            source = f"transcript of {audio_name}"
        transcript, caught = self._transcript(text, waveform, source, audio_name)
        for message in caught if warn else ():
            warnings.warn(message, UnrepresentableCharacterWarning, stacklevel=2)
        targets, word_index = transcript.targets(self.model.separator_id)
        if self.partial and self.min_frames is None:  # CTC stars take a frame each
            keep = [True] * len(transcript.words)
            needed, _ = partial_targets(
                transcript.words, keep, self.model.num_labels, self.model.separator_id, self.star_at
            )
            check_fits(needed, waveform, self.model, source, audio_name, " (star tokens of partial mode included)")
        elif self.partial or self.min_frames is None:
            check_fits(targets, waveform, self.model, source, audio_name, min_frames=self.min_frames)
        else:  # the duration-aware decoder: lower the minimum duration for fast speech, down to one frame
            frames = num_frames(self.model, int(waveform.shape[-1]))
            fitting = min(self.min_frames, frames // max(len(targets), 1))
            check_fits(targets, waveform, self.model, source, audio_name, min_frames=max(fitting, 1))
            lowered = fitting if fitting < self.min_frames else None
            return PreparedItem(waveform, transcript, targets, word_index, audio_name, tuple(caught), lowered)
        return PreparedItem(waveform, transcript, targets, word_index, audio_name, tuple(caught))

    def _transcript(
        self, text: str, waveform: torch.Tensor, source: str, audio_name: str
    ) -> tuple[Transcript, tuple[str, ...]]:
        """``text`` in the model's labels, with its warning messages; the
        cheap bounds of :mod:`aligner.fits` (characters, then spoken words)
        come before the expensive steps, so a transcript far too long for
        its audio costs no more than the audio can hold."""
        frames = num_frames(self.model, int(waveform.shape[-1]))
        seconds = waveform.shape[-1] / self.model.sample_rate
        check_text_size(text, seconds, source, audio_name)
        frame = self.model.frame_seconds
        return transcript_for_model(
            text,
            self.model,
            language=self.language,
            source=source,
            spoken_words=lambda words: check_word_count(words, frames, frame, seconds, source, audio_name),
        )


def _check_vtln_model(model: AlignmentModel) -> None:
    if not isinstance(model.model.feature_extractor, LogMelFrontEnd):
        raise AlignerError(
            f"vtln (vocal-tract-length normalization) needs a model with a log-mel front end; "
            f"{model.name} reads the raw waveform"
        )


def _check_end_extension(end_extension: float | None) -> None:
    if end_extension is None:
        return
    if (
        isinstance(end_extension, bool)
        or not isinstance(end_extension, numbers.Real)
        or not (math.isfinite(end_extension) and end_extension >= 0)
    ):
        raise AlignerError(f"end_extension must be None or a finite number of seconds >= 0, not {end_extension!r}")


def _check_partial_options(partial: bool, star_penalty: float, min_word_score: float, star_at: str) -> None:
    if not isinstance(partial, bool):
        raise AlignerError(f"partial must be True or False, not {partial!r}")
    if (
        isinstance(star_penalty, bool)
        or not isinstance(star_penalty, numbers.Real)
        or not (math.isfinite(star_penalty) and star_penalty >= 0)
    ):
        raise AlignerError(
            f"star_penalty must be a finite number >= 0 (log-probability per frame), not {star_penalty!r}"
        )
    if isinstance(min_word_score, bool) or not isinstance(min_word_score, numbers.Real) or not 0 <= min_word_score <= 1:
        raise AlignerError(f"min_word_score must be a probability in [0, 1], not {min_word_score!r}")
    if star_at not in STAR_POSITIONS:
        choices = ", ".join(map(repr, STAR_POSITIONS))
        raise AlignerError(f"star_at must be one of {choices}, not {star_at!r}")


def check_fits(
    targets: list[int],
    waveform: torch.Tensor,
    model: AlignmentModel,
    source: str,
    audio_name: str,
    note: str = "",
    min_frames: int | None = None,
) -> None:
    """Raise :class:`~aligner.errors.TranscriptTooLongError` when the audio has fewer frames than
    the targets need: one per token plus a blank between repeats on the CTC
    path, ``min_frames`` per token with the duration-aware decoder."""
    frames = num_frames(model, int(waveform.shape[-1]))
    if min_frames is None:
        from .viterbi import minimum_frames

        needed = minimum_frames(targets)
    else:
        needed = min_frames * len(targets)
    if needed > frames:
        audio_seconds = waveform.shape[-1] / model.sample_rate
        raise TranscriptTooLongError(
            f"{source}: transcript too long for the audio: its {len(targets)} tokens{note} need at least "
            f"{needed * model.frame_seconds:.2f} s of audio ({needed} frames of "
            f"{model.frame_seconds * 1000:g} ms) but {audio_name} is only {audio_seconds:.2f} s long"
        )


def align(
    audio: AudioInput,
    transcript: TextInput,
    model: str | os.PathLike | AlignmentModel | None = None,
    **options: Any,
) -> Alignment:
    """Align one recording: ``aligner.align("a.wav", "the text")``.

    ``transcript`` is the text itself, or a :class:`pathlib.Path` to a text
    file. ``options`` go to :class:`Aligner`. For many files, build one
    :class:`Aligner` and reuse it.

    Examples:
        ``audio`` is a file path or a ``(waveform, sample_rate)`` pair; here
        a tiny random model (:mod:`aligner.testing`) keeps it fast.

        >>> import torch
        >>> import aligner
        >>> from aligner.testing import tiny_model
        >>> tone = torch.sin(torch.arange(8000) * 0.2)  # 1 s at 8 kHz, resampled to the model's 16 kHz
        >>> result = aligner.align((tone, 8000), "one two", model=tiny_model(), device="cpu")
        >>> [word.text for word in result.words], result.duration
        (['one', 'two'], 1.0)
    """
    _check_inputs(audio, transcript)  # before loading a model
    return Aligner(model, **options).align(audio, transcript)


def _check_inputs(audio: object, text: object) -> None:
    """Raise the package's errors for inputs of the wrong type (``None``)."""
    if not isinstance(audio, (str, os.PathLike, tuple)):
        raise AudioError(f"audio must be a file path or a (waveform, sample_rate) pair, not {type(audio).__name__}")
    if not isinstance(text, (str, os.PathLike)):
        raise TranscriptError(
            f"transcript of {audio if isinstance(audio, (str, os.PathLike)) else 'the audio'} "
            f"must be the text (str) or a path to a text file, not {type(text).__name__}"
        )
