"""The model the emission stage runs: a torchaudio ``Wav2Vec2Model`` plus what
is needed to read its output (labels, sample rate, special tokens)."""

from __future__ import annotations

import math
from dataclasses import dataclass

from torchaudio.models import Wav2Vec2Model

from .frontend import frame_geometry, receptive_field

#: Phonemizers a phone model can name: ``"espeak-arpabet"`` is
#: :func:`aligner.phones.phonemize` (espeak-ng, mapped to ARPAbet).
PHONEMIZERS = ("espeak-arpabet",)


def is_group_norm(net: Wav2Vec2Model) -> bool:
    """True for the ``group_norm`` feature extractor (base-size models),
    which normalizes over time so padding would change its output."""
    layers = getattr(net.feature_extractor, "conv_layers", None)
    return layers is not None and type(layers[0].layer_norm).__name__ == "GroupNorm"


#: Log-probability taken off the non-blank labels of quiet frames (``quiet_db``).
QUIET_PENALTY = 8.0


@dataclass(frozen=True, eq=False)
class AlignmentModel:
    """A CTC acoustic model ready for alignment.

    Attributes:
        model: bare ``torchaudio.models.Wav2Vec2Model`` in eval mode whose
            output is per-frame logits (or log-probabilities) over
            ``labels`` (minus the star column when ``append_star``).
        labels: output classes; the index of a label is its id.
        sample_rate: sample rate the model expects (Hz).
        name: short name used in messages and output metadata.
        blank: id of the CTC blank label.
        separator: the word-separator label (``"|"``), or None when the
            vocabulary has none (MMS_FA); word boundaries are then kept on
            the side by the text stage.
        star: the wildcard label (MMS_FA's ``"*"``) if the model has one.
        normalize_waveform: zero-mean / unit-variance each waveform over its
            valid samples before the model (large wav2vec 2.0, HuBERT, MMS).
        append_star: the network's output lacks the star column; the
            emission stage appends a column of log-probability 0, as
            torchaudio's MMS_FA bundle does.
        phonetic: labels are phones rather than characters.
        phonemizer: how a phone model's transcripts become phones
            (one of :data:`PHONEMIZERS`); None for character models.
        end_extension: seconds of trailing blank frames a word keeps by
            default (None: the aligner's default, for peaky CTC models; 0
            for a model trained on frame-level targets, whose phones
            already last as long as they sound).
        blank_penalty: log-probability taken off the blank (silence) label
            at every frame before the Viterbi (0: none). A calibration of
            models that call weak speech silence too readily.
        min_frames: decode with the duration-aware Viterbi
            (:mod:`aligner.duration_viterbi`), every token at least this
            many frames and silence only between words; None: the plain
            CTC path (character models).
        quiet_db: frames more than this many dB under the recording's
            speech level (:mod:`aligner.activity`) cannot be speech: the
            decoder takes :data:`QUIET_PENALTY` (8) off every label but the
            blank there. None: no such prior.
    """

    model: Wav2Vec2Model
    labels: tuple[str, ...]
    sample_rate: int
    name: str = "model"
    blank: int = 0
    separator: str | None = "|"
    star: str | None = None
    normalize_waveform: bool = False
    append_star: bool = False
    phonetic: bool = False
    phonemizer: str | None = None
    end_extension: float | None = None
    blank_penalty: float = 0.0
    min_frames: int | None = None
    quiet_db: float | None = None

    @property
    def frame_samples(self) -> int:
        """Samples per output frame: the product of the conv strides (320)."""
        return math.prod(stride for _, stride in frame_geometry(self.model))

    @property
    def receptive_field(self) -> int:
        """Samples one output frame of the conv feature extractor sees (400)."""
        return receptive_field(frame_geometry(self.model))

    @property
    def frame_seconds(self) -> float:
        return self.frame_samples / self.sample_rate

    @property
    def group_norm(self) -> bool:
        """True for the ``group_norm`` feature extractor (base-size models),
        which normalizes over time so padding would change its output."""
        return is_group_norm(self.model)

    @property
    def separator_id(self) -> int | None:
        return None if self.separator is None else self.labels.index(self.separator)

    @property
    def star_id(self) -> int | None:
        return None if self.star is None else self.labels.index(self.star)

    @property
    def num_labels(self) -> int:
        return len(self.labels)
