"""Synthetic English speech with exact word and phone timings (espeak-ng).

:mod:`aligner.training.synth.espeak` binds libespeak-ng with ctypes and turns its
events into word / phone intervals; :mod:`aligner.training.synth.corpus` writes seeded,
augmented corpora in the Montreal Forced Aligner layout for training and
evaluating aligners. Needs the system library ``libespeak-ng1``; text comes
from Debian ``fortunes`` and ``wamerican`` when installed.
"""

from __future__ import annotations

from ..._lazy import lazy_exports

_EXPORTS = {
    "CorpusError": "corpus",
    "CorpusSummary": "corpus",
    "make_corpus": "corpus",
    "plan_corpus": "corpus",
    "render_speech": "corpus",
    "split_voices": "corpus",
    "SynthesisError": "espeak",
    "espeak_available": "espeak",
    "synthesize": "espeak",
    "word_timings": "espeak",
}


__getattr__, __dir__ = lazy_exports(__name__, _EXPORTS, globals())

__all__ = [
    "CorpusError",
    "CorpusSummary",
    "SynthesisError",
    "espeak_available",
    "make_corpus",
    "plan_corpus",
    "render_speech",
    "split_voices",
    "synthesize",
    "word_timings",
]
