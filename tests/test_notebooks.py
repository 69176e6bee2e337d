"""The notebooks in notebooks/ run top to bottom and produce their key outputs.

Each notebook is executed with nbclient in a ``python3`` kernel from the
notebooks folder. They use the default model (``aligner.load_model()``);
when it cannot be loaded offline, ``ALIGNER_MODEL`` points the kernel at a
tiny random model instead, so nothing is downloaded.
"""

from __future__ import annotations

import json
import os
import re
from pathlib import Path

import pytest

from aligner import ModelNotAvailableError, list_models, load_model
from aligner.readers import read_textgrid

ROOT = Path(__file__).resolve().parents[1]
NOTEBOOKS_DIR = ROOT / "notebooks"
NOTEBOOKS = ("01_quickstart.ipynb", "02_alignment_explorer.ipynb", "03_layerwise_features.ipynb")
CELL_TIMEOUT = 300

nbformat = pytest.importorskip("nbformat", reason="the notebook tests need nbformat (pip install -e '.[dev]')")


def _default_model_loads() -> bool:
    """True when ``aligner.load_model()`` works offline; never starts a download."""
    if not os.environ.get("ALIGNER_MODEL"):
        default = next((info for info in list_models() if info.default), None)
        if default is None or not default.available:
            return False
    try:
        load_model()
    except ModelNotAvailableError:
        return False
    return True


@pytest.fixture(scope="module")
def kernel_ready() -> None:
    """Skip unless a ``python3`` Jupyter kernel can start here."""
    pytest.importorskip("nbclient", reason="the notebook tests need nbclient (pip install -e '.[dev]')")
    pytest.importorskip("ipykernel", reason="the notebook tests need ipykernel (pip install -e '.[dev]')")
    from jupyter_client.kernelspec import KernelSpecManager, NoSuchKernel
    from jupyter_client.manager import start_new_kernel

    try:
        KernelSpecManager().get_kernel_spec("python3")
    except NoSuchKernel:
        pytest.skip("no 'python3' Jupyter kernel; install one with: python -m ipykernel install --user")
    try:
        manager, client = start_new_kernel(kernel_name="python3", startup_timeout=60)
    except Exception as error:  # noqa: BLE001 - any start failure means: cannot run notebooks here
        pytest.skip(f"the 'python3' Jupyter kernel does not start here: {type(error).__name__}: {error}")
    client.stop_channels()
    manager.shutdown_kernel(now=True)


@pytest.fixture(scope="module")
def expected_layers(tiny_model_dir) -> int:
    """Transformer layers of the model the notebooks will load (the default, else the tiny one)."""
    model = load_model() if _default_model_loads() else load_model(tiny_model_dir)
    return len(model.model.encoder.transformer.layers)


@pytest.fixture
def notebook_env(monkeypatch, tmp_path, tiny_model_dir, kernel_ready):
    """Environment of the kernel: the tiny model when the default is not available
    offline, temporary files under tmp_path, the repository importable."""
    if not _default_model_loads():
        monkeypatch.setenv("ALIGNER_MODEL", str(tiny_model_dir))
    monkeypatch.setenv("TMPDIR", str(tmp_path))
    monkeypatch.setenv("PYTHONPATH", os.pathsep.join(filter(None, [str(ROOT), os.environ.get("PYTHONPATH")])))
    return tmp_path


def execute(name: str):
    """Run a notebook top to bottom; a failing cell raises CellExecutionError."""
    from nbclient import NotebookClient

    notebook = nbformat.read(NOTEBOOKS_DIR / name, as_version=4)
    NotebookClient(
        notebook,
        timeout=CELL_TIMEOUT,
        kernel_name="python3",
        allow_errors=False,
        resources={"metadata": {"path": str(NOTEBOOKS_DIR)}},
    ).execute()
    return notebook


def _outputs(notebook) -> list:
    return [output for cell in notebook.cells if cell.cell_type == "code" for output in cell.outputs]


def _stdout(notebook) -> str:
    return "".join(o.text for o in _outputs(notebook) if o.output_type == "stream" and o.name == "stdout")


def _images(notebook) -> int:
    return sum(
        1 for o in _outputs(notebook) if o.output_type in ("display_data", "execute_result") and "image/png" in o.data
    )


def _check_ran(notebook) -> None:
    errors = [o for o in _outputs(notebook) if o.output_type == "error"]
    assert not errors, [f"{o.ename}: {o.evalue}" for o in errors]
    code = [cell for cell in notebook.cells if cell.cell_type == "code"]
    assert all(cell.execution_count is not None for cell in code), "some cells did not run"


@pytest.mark.parametrize("name", NOTEBOOKS)
def test_notebooks_are_stored_without_outputs(name):
    notebook = nbformat.read(NOTEBOOKS_DIR / name, as_version=4)
    nbformat.validate(notebook)
    code = [cell for cell in notebook.cells if cell.cell_type == "code"]
    assert code and all(not cell.outputs and cell.execution_count is None for cell in code)
    assert notebook.metadata.kernelspec.name == "python3"
    source = "\n".join(cell.source for cell in code)
    assert "aligner.load_model()" in source  # the default model, or ALIGNER_MODEL


@pytest.mark.slow
def test_quickstart(notebook_env):
    notebook = execute("01_quickstart.ipynb")
    _check_ran(notebook)
    stdout = _stdout(notebook)
    assert _images(notebook) >= 2  # the whole recording and a zoom
    views = [
        o.data["text/html"]
        for o in _outputs(notebook)
        if o.output_type in ("display_data", "execute_result") and "text/html" in o.data
    ]
    assert any("<iframe" in v and "data-tier=&quot;words&quot;" in v for v in views)  # viz.show, inline
    match = re.search(r"^wrote (\S+\.TextGrid)$", stdout, re.MULTILINE)
    assert match, stdout
    textgrid = Path(match.group(1))
    assert textgrid.is_file() and notebook_env in textgrid.parents
    alignment = read_textgrid(textgrid)
    assert alignment.words and alignment.chars
    assert "same words: True" in stdout
    assert f"read back {len(alignment.words)} words" in stdout
    record = json.loads(textgrid.with_suffix(".json").read_text(encoding="utf-8"))
    assert [w["text"] for w in record["words"]] == [w.text for w in alignment.words]
    assert textgrid.with_suffix(".srt").read_text(encoding="utf-8").startswith("1\n")


@pytest.mark.slow
def test_alignment_explorer(notebook_env):
    notebook = execute("02_alignment_explorer.ipynb")
    _check_ran(notebook)
    stdout = _stdout(notebook)
    # emissions, trellis, confidence, right vs wrong confidence, wrong path (+ comparison)
    assert _images(notebook) >= 5
    assert re.search(r"right transcript: mean word score \d\.\d\d", stdout)
    assert re.search(r"wrong transcript: mean word score \d\.\d\d", stdout)
    if "human TextGrid: none" in stdout:
        assert "nothing to compare" in stdout
    else:
        assert re.search(r"\d+ words: MAE [\d.]+ ms", stdout), stdout
        assert _images(notebook) >= 6


@pytest.mark.slow
def test_layerwise_features(notebook_env, expected_layers):
    notebook = execute("03_layerwise_features.ipynb")
    _check_ran(notebook)
    stdout = _stdout(notebook)
    # metrics, CKA, projections, HuBERT accuracy
    assert _images(notebook) >= 4
    table = stdout[stdout.index("layer,frames,classes,probe_accuracy") :].split("\n\n")[0].splitlines()
    assert [int(line.split(",")[0]) for line in table[1:]] == list(range(expected_layers + 1))
    assert re.search(r"masked frames: +\d\.\d{3} accuracy on \d+ frames", stdout)
    assert re.search(r"unmasked frames: +\d\.\d{3} accuracy on \d+ frames", stdout)
