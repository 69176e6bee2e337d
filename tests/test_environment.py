"""The installed native dependencies load together, and a broken install is
one clear line (installed versions, cause, fix) with exit code 2."""

import importlib.abc
import importlib.machinery
import re
import sys
from pathlib import Path

import pytest
import torch
from click.testing import CliRunner

from aligner import environment
from aligner.cli import main
from aligner.errors import AlignerError, EnvironmentBrokenError

ROOT = Path(__file__).resolve().parents[1]
EXAMPLES = ROOT / "examples"
UNDEFINED = "libtorchaudio.abi3.so: undefined symbol: torch_exception_get_what_without_backtrace"


def test_installed_torch_and_torchaudio_load_together():
    import torchaudio
    import torchaudio.functional as F

    # the compiled extension is loaded and its kernel runs on a tiny input
    log_probs = torch.log_softmax(torch.randn(1, 6, 3), dim=-1)
    targets = torch.tensor([[1, 2]], dtype=torch.int32)
    path, scores = F.forced_align(log_probs, targets, blank=0)
    assert path.shape == (1, 6) and scores.shape == (1, 6)
    assert [int(t) for t in torch.unique_consecutive(path[0]) if t != 0] == [1, 2]
    assert torchaudio.__version__.split("+")[0] == environment.installed_version("torchaudio")


def test_the_installed_pair_is_the_pinned_pair():
    pins = {name: environment.pinned_version(name) for name in ("torch", "torchaudio")}
    project = set(re.findall(r'"(torch(?:audio)?==[^"]+)"', (ROOT / "pyproject.toml").read_text(encoding="utf-8")))
    assert project == {f"{name}=={version}" for name, version in pins.items()}, (pins, project)
    for name, version in pins.items():
        assert environment.installed_version(name) == version


class _BrokenTorchaudio(importlib.abc.MetaPathFinder, importlib.abc.Loader):
    """Makes ``import torchaudio`` fail the way a torchaudio built for another
    torch does: an OSError raised while its module body runs."""

    def find_spec(self, name, path=None, target=None):
        if name == "torchaudio":
            return importlib.machinery.ModuleSpec(name, self)
        return None

    def create_module(self, spec):
        return None

    def exec_module(self, module):
        exec(compile(f"raise OSError({UNDEFINED!r})", "torchaudio/__init__.py", "exec"), module.__dict__)


@pytest.fixture
def broken_torchaudio(monkeypatch):
    """torchaudio 2.11.1 installed beside the pinned torch, and failing to load."""
    for name in [m for m in sys.modules if m == "torchaudio" or m.startswith("torchaudio.")]:
        monkeypatch.delitem(sys.modules, name)
    monkeypatch.setattr(sys, "meta_path", [_BrokenTorchaudio(), *sys.meta_path])
    versions = {"torch": "2.11.0", "torchaudio": "2.11.1"}
    monkeypatch.setattr(environment, "installed_version", lambda name: versions.get(name, "1.0"))
    monkeypatch.setattr(environment, "requirements", lambda: {"torch": "==2.11.0", "torchaudio": "==2.11.0"})


def test_require_names_versions_cause_and_fix(broken_torchaudio):
    with pytest.raises(EnvironmentBrokenError) as caught:
        environment.require("torch", "torchaudio")
    message = str(caught.value)
    assert isinstance(caught.value, AlignerError) and "\n" not in message
    assert re.search(
        r"^torchaudio cannot be loaded \(OSError: .*undefined symbol.*\); "
        r"installed: torch 2\.11\.0, torchaudio 2\.11\.1; "
        r"this package is tested with torch 2\.11\.0 and torchaudio 2\.11\.0 .*; "
        r"fix: pip install torchaudio==2\.11\.0$",
        message,
    ), message


def test_cli_reports_a_broken_torchaudio_in_one_line(broken_torchaudio, tmp_path):
    out = tmp_path / "example.TextGrid"
    args = ["align", str(EXAMPLES / "example.wav"), str(EXAMPLES / "example.txt"), "-o", str(out)]
    result = CliRunner().invoke(main, args)
    assert result.exit_code == 2, result.output
    lines = result.output.strip().splitlines()
    assert len(lines) == 1 and "internal error" not in lines[0], result.output
    assert lines[0].startswith("error: torchaudio cannot be loaded")
    assert "installed: torch 2.11.0, torchaudio 2.11.1" in lines[0]
    assert lines[0].endswith("fix: pip install torchaudio==2.11.0")
    assert not out.exists()


def test_a_failure_inside_any_native_import_is_explained(monkeypatch):
    """The CLI's last line of defence: an ImportError raised while numba's
    module body runs (say, a numba built for another numpy) names numba."""
    namespace = {"__name__": "numba.core.config"}
    with pytest.raises(ImportError) as caught:
        exec(compile("raise ImportError('Numba needs NumPy 2.3 or less')", "numba/core/config.py", "exec"), namespace)
    explained = environment.explain(caught.value)
    assert explained is not None
    assert str(explained).startswith("numba cannot be loaded (ImportError: Numba needs NumPy 2.3 or less)")
    assert "installed: numba " in str(explained) and "fix: pip install" in str(explained)
    # a missing module is named as missing; an ordinary OSError (a file) is not an install problem
    missing = environment.explain(ModuleNotFoundError("No module named 'soundfile'", name="soundfile"))
    assert missing is not None and "soundfile cannot be loaded" in str(missing)
    assert environment.explain(FileNotFoundError(2, "No such file", "x.wav")) is None
    assert environment.explain(ValueError("bad")) is None
