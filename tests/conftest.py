from __future__ import annotations

from pathlib import Path

import pytest

SPEECH_DIR = Path(__file__).resolve().parents[1].parent / "shared" / "data" / "speech"


@pytest.fixture(scope="session")
def speech_dir() -> Path:
    """The real recordings in ../shared/data/speech (skip when absent)."""
    if not SPEECH_DIR.is_dir():
        pytest.skip(
            f"real-speech fixtures not found at {SPEECH_DIR} (they live beside the project, "
            "in ../shared/data/speech, and are not part of a plain clone)"
        )
    return SPEECH_DIR


@pytest.fixture(scope="session")
def tiny_model_dir(tmp_path_factory) -> Path:
    """A tiny random English model saved in the project's own format."""
    from aligner.models.loading import save_model
    from aligner.testing import tiny_model

    return save_model(tiny_model(name="tiny-test"), tmp_path_factory.mktemp("models") / "tiny")


@pytest.fixture(scope="session")
def base_bundle_hub(tmp_path_factory) -> Path:
    """A torch hub cache holding a correctly named WAV2VEC2_ASR_BASE_960H
    checkpoint with random full-size weights, so torchaudio's own bundle
    code loads it without a download."""
    import torch
    import torchaudio
    from torchaudio.models import wav2vec2_model

    hub = tmp_path_factory.mktemp("hub")
    bundle = torchaudio.pipelines.WAV2VEC2_ASR_BASE_960H
    with torch.random.fork_rng():
        torch.manual_seed(0)
        # fairseq checkpoints carry 3 unused output rows that torchaudio removes on load
        state = wav2vec2_model(**{**bundle._params, "aux_num_out": 32}).state_dict()
    (hub / "checkpoints").mkdir()
    torch.save(state, hub / "checkpoints" / bundle._path)
    return hub
