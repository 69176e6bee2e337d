"""The package's lazy public names (PEP 562)."""

import subprocess
import sys

import pytest

import aligner
import aligner.training.synth


def test_import_loads_no_heavy_module():
    code = (
        "import sys, aligner, aligner.training.synth; "
        "print(sorted(m for m in ('torch', 'torchaudio', 'librosa', 'numba') if m in sys.modules))"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout
    assert out.strip() == "[]"


def test_public_names_resolve_and_unknown_names_fail():
    from aligner.pipeline import Aligner

    assert aligner.Aligner is Aligner
    assert set(aligner.__all__) <= set(dir(aligner))
    assert callable(aligner.training.synth.synthesize)
    with pytest.raises(AttributeError, match="has no attribute 'nope'"):
        aligner.nope  # noqa: B018
    with pytest.raises(AttributeError, match="aligner.training.synth"):
        aligner.training.synth.nope  # noqa: B018


def test_no_package_module_imports_the_test_helpers():
    """aligner.testing (random models) is for tests, examples and benchmarks:
    nothing the package installs imports it."""
    import re
    from pathlib import Path

    root = Path(aligner.__file__).resolve().parent.parent
    pattern = re.compile(
        r"^\s*(from\s+(\.+|aligner\.)testing\b|from\s+(\.+|aligner)\s+import\s+.*\btesting\b"
        r"|import\s+aligner\.testing\b)",
        re.MULTILINE,
    )
    offenders = [
        str(path.relative_to(root))
        for folder in ("aligner", "viz")
        for path in sorted((root / folder).rglob("*.py"))
        if path.name != "testing.py" and pattern.search(path.read_text(encoding="utf-8"))
    ]
    assert offenders == []


def test_the_package_reads_textgrids_without_praatio():
    """One TextGrid library inside the package (``textgrid``); praatio and
    Praat are independent checks in the tests only."""
    code = (
        "import sys, aligner.readers, aligner.training.ctc, aligner.writers, aligner.training.synth.corpus; "
        "print('praatio' in sys.modules, 'textgrid' in sys.modules)"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout
    assert out.split() == ["False", "True"]
