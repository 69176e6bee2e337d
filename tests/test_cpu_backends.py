"""The ONNX Runtime emission backend (``--dtype onnx`` / ``--dtype onnx-int8``,
:mod:`aligner.models.onnx_backend`): equal to torch float32 within a stated
tolerance on padded batches, valid lengths respected, the export cache, the
command line end to end, and the one-line error when the optional packages
are missing.

Tolerances: float32 through ONNX Runtime: |Δ log-probability| ≤ 1e-4 on
every valid frame (observed ~1e-6). int8 (dynamic quantization of the
linear layers, an approximation): |Δ| ≤ 2.5 at worst and ≤ 0.3 on average
for these tiny random models (observed ≤ 1.2 and ≤ 0.2); its word-boundary
accuracy on real speech is measured by ``benchmarks/bench_cpu_backends.py``.
"""

from __future__ import annotations

import importlib.util
import json
import shutil
import sys
from pathlib import Path

import pytest
import torch
from click.testing import CliRunner

from aligner.cli import main
from aligner.errors import AlignerError
from aligner.models import onnx_backend
from aligner.models.emissions import EmissionModel, num_frames
from aligner.testing import tiny_model, tiny_phone_model

ROOT = Path(__file__).resolve().parents[1]
EXAMPLE = ROOT / "examples" / "example.wav"
FLOAT_TOLERANCE = 1e-4
INT8_MAX, INT8_MEAN = 2.5, 0.3

HAVE_ONNX = all(importlib.util.find_spec(name) is not None for name in ("onnxruntime", "onnx", "onnxscript"))
needs_onnx = pytest.mark.skipif(
    not HAVE_ONNX, reason='onnxruntime, onnx or onnxscript not installed (pip install "trellis-align[onnx]")'
)


@pytest.fixture(scope="module")
def cache(tmp_path_factory) -> Path:
    """One export cache for the module: each tiny model is exported once."""
    return tmp_path_factory.mktemp("onnx-cache")


@pytest.fixture
def user_cache(cache, monkeypatch) -> Path:
    """The same cache as the default one (``ALIGNER_CACHE_DIR``), for the
    command line and :class:`aligner.Aligner`."""
    monkeypatch.setenv("ALIGNER_CACHE_DIR", str(cache))
    return cache / "onnx"


def _waves(*sizes, seed=0):
    generator = torch.Generator().manual_seed(seed)
    return [0.1 * torch.randn(n, generator=generator) for n in sizes]


SIZES = (16000, 5000, 23456, 800, 560)  # 560 samples: one frame of every tiny model

MODELS = {
    "layer_norm": lambda: tiny_model(),
    "group_norm-normalized": lambda: tiny_model(extractor_mode="group_norm", normalize_waveform=True),
    "log_mel-phones": lambda: tiny_phone_model(),
}


def _valid_diffs(out, ref) -> torch.Tensor:
    return torch.cat([(out.log_probs[i, :n] - ref.log_probs[i, :n]).abs().flatten() for i, n in enumerate(ref.lengths)])


@needs_onnx
@pytest.mark.parametrize("kind", list(MODELS))
def test_onnx_float32_equals_torch_on_padded_batches(kind, cache):
    model = MODELS[kind]()
    waves = _waves(*SIZES)
    ref = EmissionModel(model, device="cpu")(waves)
    emitter = EmissionModel(model, dtype="onnx", cache_dir=cache)
    assert (emitter.backend, emitter.precision, emitter.device.type) == ("onnx", "float32", "cpu")
    out = emitter(waves)
    assert out.log_probs.dtype == torch.float32
    assert out.lengths.tolist() == ref.lengths.tolist() == [num_frames(model, n) for n in SIZES]
    assert float(_valid_diffs(out, ref).max()) <= FLOAT_TOLERANCE
    for i, n in enumerate(out.lengths.tolist()):
        assert torch.all(out.log_probs[i, n:] == 0)  # padding frames are zero
        alone = emitter([waves[i]])  # valid lengths respected: an item in a batch is the item alone
        assert alone.log_probs.shape[1] == n
        assert float((alone.log_probs[0] - out.log_probs[i, :n]).abs().max()) <= FLOAT_TOLERANCE


@needs_onnx
def test_onnx_with_vtl_warps_equals_torch(cache):
    """Test-time warps average the ONNX encoder's passes as they do torch's."""
    model = tiny_phone_model()
    waves = _waves(*SIZES)
    ref = EmissionModel(model, device="cpu", vtl_warps=(0.9, 1.0, 1.1))(waves)
    out = EmissionModel(model, dtype="onnx", cache_dir=cache, vtl_warps=(0.9, 1.0, 1.1))(waves)
    assert out.lengths.tolist() == ref.lengths.tolist()
    assert float(_valid_diffs(out, ref).max()) <= FLOAT_TOLERANCE
    plain = EmissionModel(model, dtype="onnx", cache_dir=cache)(waves)
    assert float(_valid_diffs(out, plain).max()) > FLOAT_TOLERANCE  # the warps are applied


@needs_onnx
def test_valid_lengths_reach_the_graph(cache):
    """The check above can fail: the exported graph masks padding by the
    lengths it is given, so claiming every item is full length changes the
    short item's output."""
    model = tiny_model()
    emitter = EmissionModel(model, dtype="onnx", cache_dir=cache)
    features = torch.randn(2, 60, onnx_backend.feature_width(model.model))
    right = emitter.onnx(features, torch.tensor([60, 20]))
    wrong = emitter.onnx(features, torch.tensor([60, 60]))
    assert float((right[1, :20] - wrong[1, :20]).abs().max()) > 1e-2
    assert float((right[0] - wrong[0]).abs().max()) <= FLOAT_TOLERANCE


@needs_onnx
@pytest.mark.parametrize("kind", ["layer_norm", "log_mel-phones"])
def test_onnx_int8_is_close(kind, cache):
    model = MODELS[kind]()
    waves = _waves(*SIZES)
    ref = EmissionModel(model, device="cpu")(waves)
    out = EmissionModel(model, dtype="onnx-int8", cache_dir=cache)(waves)
    assert out.lengths.tolist() == ref.lengths.tolist()
    diffs = _valid_diffs(out, ref)
    assert float(diffs.max()) <= INT8_MAX and float(diffs.mean()) <= INT8_MEAN
    assert float(diffs.max()) > 1e-4  # really quantized, not the float32 graph
    assert all(torch.all(out.log_probs[i, n:] == 0) for i, n in enumerate(out.lengths.tolist()))
    n = int(out.lengths[0])
    assert torch.allclose(out.log_probs[0, :n].exp().sum(-1), torch.ones(n), atol=1e-4)  # still probabilities


@needs_onnx
def test_long_recording_in_windows_matches_torch(cache):
    model = tiny_model()
    waves = _waves(16000 * 5 + 77, 4000)
    ref = EmissionModel(model, chunk_seconds=1.0, context_seconds=0.5)(waves)
    out = EmissionModel(model, dtype="onnx", chunk_seconds=1.0, context_seconds=0.5, cache_dir=cache)(waves)
    assert out.lengths.tolist() == ref.lengths.tolist()
    assert float(_valid_diffs(out, ref).max()) <= FLOAT_TOLERANCE


@needs_onnx
def test_export_is_cached_per_weights(cache, monkeypatch):
    folder = cache / "own"
    model = tiny_model(seed=3)
    first = EmissionModel(model, dtype="onnx-int8", cache_dir=folder)
    files = sorted(p.name for p in folder.iterdir())
    key = onnx_backend.weights_key(model.model)
    assert files == [f"{key}.float32.onnx", f"{key}.int8.onnx"]  # no temporary file left behind

    def no_export(*args, **kwargs):
        raise AssertionError("exported again although cached")

    monkeypatch.setattr(onnx_backend, "export_encoder", no_export)
    again = EmissionModel(model, dtype="onnx-int8", cache_dir=folder)
    assert again.onnx is not None and first.onnx is not None and again.onnx.path == first.onnx.path
    other = tiny_model(seed=4)  # other weights, other key
    assert onnx_backend.weights_key(other.model) != key
    with pytest.raises(AssertionError, match="exported again"):
        EmissionModel(other, dtype="onnx", cache_dir=folder)
    monkeypatch.undo()

    (folder / f"{key}.float32.onnx").write_bytes(b"not an onnx file")  # a damaged cache file is exported again
    repaired = EmissionModel(model, dtype="onnx", cache_dir=folder)
    wave = _waves(8000)
    assert float((repaired(wave).log_probs - EmissionModel(model)(wave).log_probs).abs().max()) <= FLOAT_TOLERANCE


@needs_onnx
def test_with_model_exports_the_new_weights(cache):
    model = tiny_model()
    emitter = EmissionModel(model, dtype="onnx", cache_dir=cache)
    adapted = tiny_model()
    with torch.no_grad():
        adapted.model.aux.bias += torch.linspace(-1, 1, adapted.model.aux.bias.numel())
    other = emitter.with_model(adapted)
    wave = _waves(12000)
    expected = EmissionModel(adapted)(wave).log_probs
    assert float((other(wave).log_probs - expected).abs().max()) <= FLOAT_TOLERANCE
    assert float((emitter(wave).log_probs - expected).abs().max()) > 1e-2  # the first emitter keeps its model


def _words(path: Path) -> list[tuple[str, float, float]]:
    data = json.loads(path.read_text(encoding="utf-8"))
    return [(w["text"], w["start"], w["end"]) for w in data["words"]]


@needs_onnx
@pytest.mark.slow
def test_cli_align_with_the_packaged_model(tmp_path, user_cache):
    """``aligner align --dtype onnx`` on the example recording with the
    packaged model: the same words and times as float32 torch."""
    results = {}
    for dtype in ("float32", "onnx", "onnx-int8"):
        out = tmp_path / f"{dtype}.json"
        result = CliRunner().invoke(main, ["align", str(EXAMPLE), "-o", str(out), "--dtype", dtype])
        assert result.exit_code == 0, result.output
        results[dtype] = _words(out)
    assert results["onnx"] == results["float32"]
    assert [w[0] for w in results["onnx-int8"]] == [w[0] for w in results["float32"]]
    assert any(p.name.endswith(".int8.onnx") for p in user_cache.iterdir())


@needs_onnx
def test_cli_align_corpus_with_a_tiny_model(tmp_path, user_cache, tiny_model_dir):
    corpus = tmp_path / "corpus"
    corpus.mkdir()
    for name in ("a", "b"):
        shutil.copy(EXAMPLE, corpus / f"{name}.wav")
        shutil.copy(EXAMPLE.with_suffix(".txt"), corpus / f"{name}.txt")
    outputs = {}
    for dtype in ("float32", "onnx"):
        out = tmp_path / dtype
        args = ["align-corpus", str(corpus), str(out), "-f", "json", "--model", str(tiny_model_dir), "-q"]
        result = CliRunner().invoke(main, [*args, "--dtype", dtype])
        assert result.exit_code == 0, result.output
        outputs[dtype] = [_words(out / f"{name}.json") for name in ("a", "b")]
    assert outputs["onnx"] == outputs["float32"]
    assert len(outputs["onnx"][0]) == len(EXAMPLE.with_suffix(".txt").read_text().split())


def test_missing_package_is_one_clear_error(monkeypatch, tiny_model_dir, tmp_path):
    monkeypatch.setitem(sys.modules, "onnxruntime", None)  # import onnxruntime now raises ImportError
    missing = (
        r"needs onnxruntime, onnx and onnxscript \(onnxruntime is missing\): pip install \"trellis-align\[onnx\]\""
    )
    with pytest.raises(AlignerError, match=missing):
        EmissionModel(tiny_model(), dtype="onnx", cache_dir=tmp_path)
    result = CliRunner().invoke(
        main, ["align", str(EXAMPLE), "--model", str(tiny_model_dir), "--dtype", "onnx-int8", "-o", tmp_path / "x.json"]
    )
    assert result.exit_code == 2, result.output
    lines = [line for line in result.output.splitlines() if line.strip()]
    assert len(lines) == 1 and lines[0].startswith("error: ") and "trellis-align[onnx]" in lines[0], result.output
    assert not (tmp_path / "x.json").exists()


def test_bad_backend_options():
    model = tiny_model()
    with pytest.raises(AlignerError, match="CPU only"):
        EmissionModel(model, dtype="onnx", device="cuda:0")
    with pytest.raises(AlignerError, match="float32 or int8, not 'bfloat16'"):
        EmissionModel(model, backend="onnx", dtype="bfloat16")
    with pytest.raises(AlignerError, match="onnx-int8"):
        EmissionModel(model, dtype="int8")
    with pytest.raises(AlignerError, match="unknown emission backend 'tpu'"):
        EmissionModel(model, backend="tpu")
    with pytest.raises(AlignerError, match="names the onnx backend"):
        EmissionModel(model, backend="torch", dtype="onnx")
    assert onnx_backend.parse_backend("onnx-fp32", None) == ("onnx", "float32")
    assert onnx_backend.parse_backend(None, "onnx") == ("onnx", "float32")
    assert onnx_backend.parse_backend("bf16", None) == ("torch", "bf16")
    assert EmissionModel(model).backend == "torch" and EmissionModel(model).onnx is None  # the default


def test_cache_folder_follows_the_environment(monkeypatch, tmp_path):
    monkeypatch.setenv("ALIGNER_CACHE_DIR", str(tmp_path / "c"))
    assert onnx_backend.cache_dir() == tmp_path / "c" / "onnx"
    monkeypatch.delenv("ALIGNER_CACHE_DIR")
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "x"))
    assert onnx_backend.cache_dir() == tmp_path / "x" / "trellis-align" / "onnx"
