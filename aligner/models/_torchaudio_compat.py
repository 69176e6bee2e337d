"""Every use of torchaudio's private internals, in one place.

The package needs a few things torchaudio (pinned at 2.11) does not make
public; each is reached only through a function here, and
``tests/test_torchaudio_compat.py`` checks each one against the installed
torchaudio, so a torchaudio that changes one fails there, loudly, rather
than somewhere deep in alignment or loading:

* :func:`encoder_preprocess`: ``Wav2Vec2Model.encoder._preprocess`` (feature
  projection, positional input and attention mask), to run the transformer
  layer by layer (:mod:`aligner.models.features`);
* :func:`unwrap_bundle_model`: the ``Wav2Vec2Model`` and the
  ``normalize_waveform`` flag inside the private wrapper a bundle's
  ``get_model()`` returns (:mod:`aligner.models.loading`);
* :func:`bundle_checkpoint`: a bundle's ``_path``, the checkpoint that
  :mod:`aligner.models.registry` names without importing torch, and
  :data:`CHECKPOINT_URL`, where torchaudio downloads a relative one from.

torch and torchaudio are imported only inside the functions.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:  # pragma: no cover
    import torch
    from torchaudio.models import Wav2Vec2Model

#: torchaudio's download location for a bundle checkpoint given as a relative
#: path (``torchaudio.pipelines._wav2vec2.utils._get_state_dict``).
CHECKPOINT_URL = "https://download.pytorch.org/torchaudio/models/{path}"


def encoder_preprocess(
    encoder: Any, features: torch.Tensor, lengths: torch.Tensor | None
) -> tuple[torch.Tensor, torch.Tensor | None]:
    """``(x, attention_mask)`` that ``encoder.transformer`` takes, for the
    convolutional ``features`` (``(batch, frames, channels)``) of valid
    ``lengths``: what ``encoder.forward`` computes before its transformer."""
    return encoder._preprocess(features, lengths)


def unwrap_bundle_model(loaded: Any) -> tuple[Wav2Vec2Model, bool] | None:
    """The bare ``Wav2Vec2Model`` inside the wrapper a torchaudio bundle's
    ``get_model()`` returns, and the wrapper's ``normalize_waveform`` flag
    (its log-softmax and star are left out: the emission stage applies
    them); None when ``loaded`` is no such wrapper."""
    from torchaudio.models import Wav2Vec2Model

    inner = getattr(loaded, "model", None)
    if not isinstance(inner, Wav2Vec2Model):
        return None
    return inner, bool(getattr(loaded, "normalize_waveform", False))


def bundle_checkpoint(bundle: Any) -> str:
    """A torchaudio bundle's checkpoint: a path relative to
    :data:`CHECKPOINT_URL`, or a full URL."""
    return bundle._path
