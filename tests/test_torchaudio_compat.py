"""aligner.models._torchaudio_compat against the installed torchaudio: each private
internal the package relies on is still there and still means the same, so a
torchaudio that changes one fails here, by name."""

from __future__ import annotations

import re
from pathlib import Path

import pytest
import torch
import torchaudio
from torchaudio.models import Wav2Vec2Model
from torchaudio.pipelines._wav2vec2 import utils as bundle_utils

from aligner.models import registry
from aligner.models._torchaudio_compat import CHECKPOINT_URL, bundle_checkpoint, encoder_preprocess, unwrap_bundle_model
from aligner.models.emissions import conv_features
from aligner.testing import tiny_model

PACKAGE = Path(__file__).resolve().parent.parent / "aligner"


def test_encoder_preprocess_is_what_the_encoder_runs_before_its_transformer():
    net = tiny_model().model.eval()
    waves = [torch.randn(16000, generator=torch.Generator().manual_seed(k)) for k in range(2)]
    with torch.inference_mode():
        features, lengths = conv_features(net, [waves[0], waves[1][:9000]], normalize=False)
        x, mask = encoder_preprocess(net.encoder, features, lengths)
        assert mask is not None and x.shape[:2] == features.shape[:2]
        torch.testing.assert_close(
            net.encoder.transformer(x, attention_mask=mask), net.encoder(features, lengths), rtol=0, atol=0
        )


@pytest.mark.parametrize("normalize", [False, True])
def test_unwrap_bundle_model_finds_the_network_in_torchaudios_wrapper(normalize):
    # the wrapper a bundle's get_model() returns (what it calls to build it)
    net = tiny_model().model
    wrapped = bundle_utils._extend_model(net, normalize_waveform=normalize, apply_log_softmax=True, append_star=True)
    assert not isinstance(wrapped, Wav2Vec2Model)
    assert unwrap_bundle_model(wrapped) == (net, normalize)
    assert unwrap_bundle_model(torch.nn.Linear(2, 2)) is None


def test_bundle_checkpoints_and_their_urls_are_what_the_registry_says(monkeypatch):
    """Each bundle's checkpoint is the one aligner.models.registry names without
    torch, and torchaudio downloads it from the registry's URL."""
    requested = []

    class Stop(Exception):
        pass

    def record(url, *args, **kwargs):
        requested.append(url)
        raise Stop

    monkeypatch.setattr(bundle_utils, "load_state_dict_from_url", record)
    for name in registry.BUNDLE_NAMES:
        checkpoint = bundle_checkpoint(getattr(torchaudio.pipelines, name))
        assert checkpoint == registry.BUNDLES[name][1], name
        with pytest.raises(Stop):
            bundle_utils._get_state_dict(checkpoint, None)  # how get_model() fetches the weights
        expected = checkpoint if checkpoint.startswith("https") else CHECKPOINT_URL.format(path=checkpoint)
        assert requested[-1] == expected == registry.checkpoint_location(name)[1], name


def test_private_torchaudio_names_are_used_only_through_the_compat_module():
    private = re.compile(r"\.(_preprocess|_path|_params|_get_state_dict|_extend_model|_Wav2Vec2Model)\b")
    offenders = [
        f"{path.name}:{number}"
        for path in sorted(PACKAGE.rglob("*.py"))
        if path.name != "_torchaudio_compat.py"
        for number, line in enumerate(path.read_text(encoding="utf-8").splitlines(), 1)
        if private.search(line)
    ]
    assert offenders == []
