"""The package's lazy public names (PEP 562)."""

import subprocess
import sys

import pytest

import aligner
import aligner.synth


def test_import_loads_no_heavy_module():
    code = ("import sys, aligner, aligner.synth; "
            "print(sorted(m for m in ('torch', 'torchaudio', 'librosa', 'numba') if m in sys.modules))")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout
    assert out.strip() == "[]"


def test_public_names_resolve_and_unknown_names_fail():
    from aligner.pipeline import Aligner

    assert aligner.Aligner is Aligner
    assert set(aligner.__all__) <= set(dir(aligner))
    assert callable(aligner.synth.synthesize)
    with pytest.raises(AttributeError, match="has no attribute 'nope'"):
        aligner.nope  # noqa: B018
    with pytest.raises(AttributeError, match="aligner.synth"):
        aligner.synth.nope  # noqa: B018
