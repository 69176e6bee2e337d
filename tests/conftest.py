from __future__ import annotations

from pathlib import Path

import pytest

SPEECH_DIR = Path(__file__).resolve().parents[1].parent / "shared" / "data" / "speech"


@pytest.fixture(scope="session")
def speech_dir() -> Path:
    """The real recordings in ../shared/data/speech (skip when absent)."""
    if not SPEECH_DIR.is_dir():
        pytest.skip(f"real-speech fixtures not found at {SPEECH_DIR} (they live beside the project, "
                    "in ../shared/data/speech, and are not part of a plain clone)")
    return SPEECH_DIR
