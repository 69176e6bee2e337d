"""Forced alignment of speech to text with torchaudio wav2vec 2.0 / HuBERT / MMS models.

Quick start::

    import aligner
    result = aligner.align("speech.wav", "the transcript")
    aligner.write_alignment(result, "speech.TextGrid")

See :class:`Aligner` for reuse across many files, :func:`forced_align` for
the batched CTC Viterbi on your own emissions.
"""

from .errors import (AlignerError, AlignmentError, AudioError, ModelError, ModelNotAvailableError,
                     OutputError, TranscriptError)
from .records import Alignment, CharSpan, Confidence, TokenSpan, WordSpan
from .model import AlignmentModel
from .viterbi import forced_align
from .loading import load_model, save_model, list_models
from .emissions import EmissionModel, Emissions
from .pipeline import Aligner, align
from .writers import write_alignment
from .corpus_align import align_corpus

__all__ = [
    "AlignerError", "AlignmentError", "AudioError", "ModelError", "ModelNotAvailableError",
    "OutputError", "TranscriptError", "Alignment", "CharSpan", "Confidence", "TokenSpan", "WordSpan",
    "AlignmentModel", "forced_align", "load_model", "save_model", "list_models", "EmissionModel",
    "Emissions", "Aligner", "align", "write_alignment", "align_corpus",
]
