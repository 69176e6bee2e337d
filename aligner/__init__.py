"""Forced alignment of speech to text with torchaudio wav2vec 2.0 / HuBERT / MMS models.

Quick start::

    import aligner
    result = aligner.align("speech.wav", "the transcript")
    aligner.write_alignment(result, "speech.TextGrid")

See :class:`Aligner` for reuse across many files, :func:`forced_align` for
the batched CTC Viterbi on your own emissions.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from ._lazy import lazy_exports

# Public names and the module each lives in. They are imported on first use
# (PEP 562), so ``import aligner`` and ``aligner --help`` stay fast and a
# module that needs only part of the package (the synthesizer, the phone
# set) does not pull in torch, librosa and the writers.
_EXPORTS = {
    "AlignerError": "errors",
    "AlignmentError": "errors",
    "AudioError": "errors",
    "EnvironmentBrokenError": "errors",
    "ModelError": "errors",
    "ModelNotAvailableError": "errors",
    "OutputError": "errors",
    "TranscriptError": "errors",
    "Alignment": "records",
    "CharSpan": "records",
    "Confidence": "records",
    "TokenSpan": "records",
    "WordSpan": "records",
    "AlignmentModel": "models.alignment_model",
    "forced_align": "viterbi",
    "load_model": "models.loading",
    "save_model": "models.loading",
    "list_models": "models.loading",
    "EmissionModel": "models.emissions",
    "Emissions": "models.emissions",
    "Aligner": "pipeline",
    "align": "pipeline",
    "write_alignment": "writers",
    "align_corpus": "corpus.align",
}

if TYPE_CHECKING:  # pragma: no cover
    from .corpus.align import align_corpus
    from .errors import (
        AlignerError,
        AlignmentError,
        AudioError,
        EnvironmentBrokenError,
        ModelError,
        ModelNotAvailableError,
        OutputError,
        TranscriptError,
    )
    from .models.alignment_model import AlignmentModel
    from .models.emissions import EmissionModel, Emissions
    from .models.loading import list_models, load_model, save_model
    from .pipeline import Aligner, align
    from .records import Alignment, CharSpan, Confidence, TokenSpan, WordSpan
    from .viterbi import forced_align
    from .writers import write_alignment


__getattr__, __dir__ = lazy_exports(__name__, _EXPORTS, globals())

__all__ = [
    "AlignerError",
    "AlignmentError",
    "AudioError",
    "EnvironmentBrokenError",
    "ModelError",
    "ModelNotAvailableError",
    "OutputError",
    "TranscriptError",
    "Alignment",
    "CharSpan",
    "Confidence",
    "TokenSpan",
    "WordSpan",
    "AlignmentModel",
    "forced_align",
    "load_model",
    "save_model",
    "list_models",
    "EmissionModel",
    "Emissions",
    "Aligner",
    "align",
    "write_alignment",
    "align_corpus",
]
