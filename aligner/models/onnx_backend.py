"""ONNX Runtime emission backend (CPU): the transformer encoder of a
``Wav2Vec2Model`` exported to ONNX, run by ``onnxruntime``.

Which part runs where: the feature extractor (conv stack or log-mel front
end) stays in torch, exactly as on the torch path (item by item for
``group_norm`` extractors, each waveform normalized over its own samples);
the rest — feature projection, positional convolution, transformer layers,
the output layer (``aux``) and ``log_softmax`` — is one ONNX graph with
dynamic batch and frame axes that takes the padded features and each item's
valid frame count, and masks padding exactly as torchaudio's ``Encoder``
does. So padded batches give each item the frames it gets alone.

Precisions:

* ``"float32"``: the exported graph, optimized by ONNX Runtime (fused
  layer norms, GELU, ...); equal to the torch float32 log-probabilities
  within ~1e-5 (checked on a padded random batch after every export).
* ``"int8"``: the same graph with its matrix multiplications (the
  transformer's linear layers and the output layer) quantized by ONNX
  Runtime's dynamic quantization: int8 weights (per tensor), activations
  quantized per call. An approximation (log-probabilities differ by up to
  ~1); it pays off on CPUs with int8 dot-product instructions (AVX512-VNNI,
  AVX-VNNI, ARM dot product), much less on plain AVX2. Activations are
  quantized with one scale per padded batch, so an item's log-probabilities
  also depend (slightly) on the other items of its batch: batching is exact
  only in float32.

Exports are cached: ``CACHE/KEY.float32.onnx`` and ``CACHE/KEY.int8.onnx``,
where ``KEY`` hashes the exported modules' structure and weights (and the
torch / onnxruntime versions), so a model is exported once and an adapted
or retrained copy gets its own file. ``CACHE`` is ``$ALIGNER_CACHE_DIR/onnx``,
else ``$XDG_CACHE_HOME/trellis-align/onnx`` (``~/.cache/...``). Files are
written atomically (a temporary file renamed), and a cached file that does
not load is exported again.

Needs the ``onnx`` extra: ``pip install "trellis-align[onnx]"``
(``onnxruntime``, ``onnx``, ``onnxscript``).
"""

from __future__ import annotations

import hashlib
import importlib
import logging
import os
import warnings
from pathlib import Path
from typing import Any

import torch
from torch import nn

from ..errors import AlignerError, ModelError

__all__ = [
    "BACKENDS",
    "ONNX_PRECISIONS",
    "OnnxEncoder",
    "cache_dir",
    "export_encoder",
    "parse_backend",
    "require_onnx",
    "weights_key",
]

#: Emission backends: torch (any device, float32/bfloat16/float16) and ONNX Runtime (CPU).
BACKENDS = ("torch", "onnx")
#: Precisions of the ONNX backend.
ONNX_PRECISIONS = ("float32", "int8")
#: Bumped when the exported graph changes (part of the cache key).
EXPORT_VERSION = 1
#: Largest |difference| of log-probabilities between the float32 export and torch accepted after an export.
EXPORT_TOLERANCE = 1e-3

_MISSING = (
    "the onnx emission backend (--dtype onnx, onnx-int8) needs onnxruntime, onnx and onnxscript "
    '({name} is missing): pip install "trellis-align[onnx]" (from a checkout: pip install -e ".[onnx]")'
)

_ALIASES = {"fp32": "float32", "float32": "float32", "int8": "int8"}


def parse_backend(dtype: Any, backend: str | None) -> tuple[str, Any]:
    """Split a dtype spec into ``(backend, dtype)``.

    ``"onnx"`` and ``"onnx-float32"`` mean ``("onnx", "float32")``,
    ``"onnx-int8"`` means ``("onnx", "int8")`` (the forms the command line's
    ``--dtype`` takes); with ``backend="onnx"`` the dtype is ``"float32"``
    (also None/``"auto"``) or ``"int8"``. Any other dtype is the torch
    backend's (checked by :func:`~aligner.models.emissions.resolve_dtype`).

    Raises:
        AlignerError: an unknown backend, or a precision the backend lacks.
    """
    if backend is not None and backend not in BACKENDS:
        raise AlignerError(f"unknown emission backend {backend!r}; choose one of {list(BACKENDS)}")
    text = dtype.lower() if isinstance(dtype, str) else None
    if text is not None and (text == "onnx" or text.startswith("onnx-")):
        if backend == "torch":
            raise AlignerError(f"dtype {dtype!r} names the onnx backend, but backend='torch' was asked for")
        backend, dtype = "onnx", ("float32" if text == "onnx" else text[len("onnx-") :])
    if backend != "onnx":
        if text == "int8":
            raise AlignerError("int8 runs on the onnx backend: dtype 'onnx-int8' (--dtype onnx-int8)")
        return "torch", dtype
    if dtype is None or dtype == "auto" or dtype is torch.float32:
        return "onnx", "float32"
    precision = _ALIASES.get(str(dtype).lower())
    if precision is None:
        raise AlignerError(f"the onnx backend runs float32 or int8, not {dtype!r}")
    return "onnx", precision


def require_onnx() -> None:
    """Import the optional packages of the backend.

    Raises:
        AlignerError: one is missing (one line naming the extra to install).
    """
    for name in ("onnxruntime", "onnx", "onnxscript"):
        try:
            _module(name)
        except ImportError:
            raise AlignerError(_MISSING.format(name=name)) from None


def _module(name: str) -> Any:
    """An optional package (imported by name: the type checker needs no
    stubs for packages a checkout may lack)."""
    return importlib.import_module(name)


def cache_dir() -> Path:
    """Where exports are cached (see the module documentation)."""
    root = os.environ.get("ALIGNER_CACHE_DIR")
    if root:
        return Path(root).expanduser() / "onnx"
    base = os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache"
    return Path(base).expanduser() / "trellis-align" / "onnx"


class EncoderHead(nn.Module):
    """What the ONNX graph computes: features and valid frame counts →
    log-probabilities, as ``net.encoder`` + ``net.aux`` + ``log_softmax``.

    Padding is masked as torchaudio's encoder masks it before its transformer (projected
    padding frames set to 0, attention to them biased by -10000), written
    with ``masked_fill`` instead of in-place boolean indexing so that it
    exports cleanly.
    """

    def __init__(self, net: nn.Module):
        super().__init__()
        self.encoder: Any = net.encoder
        self.aux: Any = net.aux

    def forward(self, features: torch.Tensor, lengths: torch.Tensor) -> torch.Tensor:
        x = self.encoder.feature_projection(features)
        batch, frames, _ = x.shape
        padding = torch.arange(frames, device=x.device)[None, :] >= lengths[:, None]
        x = x.masked_fill(padding[..., None], 0.0)
        mask = (-10000.0 * padding.to(features.dtype))[:, None, None, :].expand(batch, 1, frames, frames)
        x = self.encoder.transformer(x, attention_mask=mask)
        if self.aux is not None:
            x = self.aux(x)
        return torch.log_softmax(x, dim=-1)


def feature_width(net: nn.Module) -> int:
    """Width of the features the encoder takes (the feature projection's input)."""
    encoder: Any = net.encoder
    return int(encoder.feature_projection.layer_norm.normalized_shape[0])


def weights_key(net: nn.Module) -> str:
    """A hex key of what the export depends on: the structure and weights
    of ``net.encoder`` and ``net.aux``, the export version and the torch
    and onnxruntime versions."""
    head = EncoderHead(net)
    digest = hashlib.sha256()
    digest.update(f"v{EXPORT_VERSION} torch {torch.__version__} ort {_module('onnxruntime').__version__}\n".encode())
    digest.update(repr(head).encode())
    for name, tensor in sorted(head.state_dict().items()):
        data = tensor.detach().to("cpu").contiguous()
        digest.update(f"\n{name} {data.dtype} {tuple(data.shape)}\n".encode())
        digest.update(data.reshape(-1).view(torch.uint8).numpy().tobytes())
    return digest.hexdigest()[:32]


def _example(net: nn.Module, batch: int = 2, frames: int = 50) -> tuple[torch.Tensor, torch.Tensor]:
    generator = torch.Generator().manual_seed(0)
    features = torch.randn(batch, frames, feature_width(net), generator=generator)
    lengths = torch.tensor([frames] + [max(1, frames * 3 // 5)] * (batch - 1), dtype=torch.int64)
    return features, lengths


def export_encoder(net: nn.Module, path: str | os.PathLike[str]) -> None:
    """Export :class:`EncoderHead` of ``net`` (float32, on CPU) to ``path``
    with the torch.export-based exporter: inputs ``features`` (batch,
    frames, width) float32 and ``lengths`` (batch,) int64, output
    ``log_probs`` (batch, frames, labels); batch and frames are dynamic."""
    head = EncoderHead(_cpu_float(net)).eval()
    batch, frames = torch.export.Dim("batch", min=1), torch.export.Dim("frames", min=1)
    quiet = logging.getLogger("torch.onnx")
    level = quiet.level
    quiet.setLevel(logging.ERROR)  # "torchvision is not installed" notes
    try:
        with warnings.catch_warnings(), torch.no_grad():
            warnings.simplefilter("ignore")
            program = torch.onnx.export(
                head,
                _example(net),
                None,
                dynamo=True,
                verbose=False,
                input_names=["features", "lengths"],
                output_names=["log_probs"],
                dynamic_shapes={"features": {0: batch, 1: frames}, "lengths": {0: batch}},
                optimize=True,
            )
    finally:
        quiet.setLevel(level)
    if program is None:  # only the TorchScript exporter returns None
        raise ModelError("the ONNX export returned no program")
    program.save(str(path), external_data=False)


def _cpu_float(net: nn.Module) -> nn.Module:
    """``net`` itself when its weights are float32 on the CPU, else such a copy."""
    if all(p.device.type == "cpu" and p.dtype == torch.float32 for p in net.parameters()):
        return net
    import copy

    return copy.deepcopy(net).to("cpu", torch.float32)


def quantize_int8(source: str | os.PathLike[str], target: str | os.PathLike[str]) -> None:
    """ONNX Runtime dynamic int8 quantization of the MatMul/Gemm nodes of
    ``source`` (int8 weights per tensor, uint8 activations per call)."""
    quantization = _module("onnxruntime.quantization")
    root = logging.getLogger()
    advice = _DropAdvice()
    root.addFilter(advice)  # "Please consider to run pre-processing before quantization" (a root-logger warning)
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            quantization.quantize_dynamic(
                Path(source),
                Path(target),
                op_types_to_quantize=["MatMul", "Gemm"],
                weight_type=quantization.QuantType.QInt8,
            )
    finally:
        root.removeFilter(advice)


class _DropAdvice(logging.Filter):
    def filter(self, record: logging.LogRecord) -> bool:
        return "pre-processing before quantization" not in record.getMessage()


def _session(path: Path, threads: int) -> Any:
    ort = _module("onnxruntime")
    options = ort.SessionOptions()
    options.graph_optimization_level = ort.GraphOptimizationLevel.ORT_ENABLE_ALL
    options.intra_op_num_threads = max(1, threads)
    options.inter_op_num_threads = 1
    options.log_severity_level = 3  # errors only
    return ort.InferenceSession(str(path), options, providers=["CPUExecutionProvider"])


class OnnxEncoder:
    """The exported encoder of one network in one precision, in an ONNX
    Runtime session. Call it with padded ``features`` (batch, frames,
    width) and ``lengths`` (batch,) → float32 log-probabilities (batch,
    frames, labels) as a torch tensor on the CPU.

    Use :meth:`for_network`, which exports (or finds in the cache) the graph.
    """

    def __init__(self, session: Any, path: Path, precision: str):
        self.session = session
        self.path = path
        self.precision = precision

    @classmethod
    def for_network(
        cls,
        net: nn.Module,
        precision: str = "float32",
        *,
        cache: str | os.PathLike[str] | None = None,
        threads: int | None = None,
    ) -> OnnxEncoder:
        """Export ``net``'s encoder (cached) and open it.

        Args:
            net: a ``torchaudio.models.Wav2Vec2Model`` (any device; the
                export is taken from a float32 CPU copy when needed).
            precision: ``"float32"`` or ``"int8"``.
            cache: the cache folder (None: :func:`cache_dir`).
            threads: ONNX Runtime's intra-op threads (None: torch's count).

        Raises:
            AlignerError: onnxruntime/onnx/onnxscript missing, or a bad precision.
            ModelError: the export does not reproduce the torch network.
        """
        require_onnx()
        if precision not in ONNX_PRECISIONS:
            raise AlignerError(f"the onnx backend runs float32 or int8, not {precision!r}")
        folder = Path(cache) if cache is not None else cache_dir()
        key = weights_key(net)
        threads = torch.get_num_threads() if threads is None else threads
        float_path = folder / f"{key}.float32.onnx"
        path = float_path if precision == "float32" else folder / f"{key}.int8.onnx"
        session = _open(path, threads)
        if session is not None:
            return cls(session, path, precision)
        if _open(float_path, threads) is None:
            _export_checked(net, float_path, threads)
        if precision == "int8":
            from ..atomic import atomic_path

            with atomic_path(path, durable=False) as temporary:
                quantize_int8(float_path, temporary)
        session = _open(path, threads)
        if session is None:
            raise ModelError(f"onnxruntime cannot load the exported model {path}")
        return cls(session, path, precision)

    def __call__(self, features: torch.Tensor, lengths: torch.Tensor) -> torch.Tensor:
        inputs = {
            "features": features.detach().to("cpu", torch.float32).contiguous().numpy(),
            "lengths": lengths.detach().to("cpu", torch.int64).contiguous().numpy(),
        }
        (log_probs,) = self.session.run(["log_probs"], inputs)
        return torch.from_numpy(log_probs)


def _open(path: Path, threads: int) -> Any:
    """A session on ``path``, or None when it is missing or does not load
    (a damaged cache file is removed, to be exported again)."""
    if not path.is_file():
        return None
    try:
        return _session(path, threads)
    except Exception:  # noqa: BLE001 - any load failure means: export again
        try:
            path.unlink()
        except OSError:
            pass
        return None


def _export_checked(net: nn.Module, path: Path, threads: int) -> None:
    """Export to ``path`` (atomically) after checking that the exported
    graph reproduces the torch network on a padded batch."""
    from ..atomic import atomic_path

    net = _cpu_float(net)
    with atomic_path(path, durable=False) as temporary:
        export_encoder(net, temporary)
        session = _session(temporary, threads)
        features, lengths = _example(net, batch=3, frames=37)
        with torch.inference_mode():
            expected = EncoderHead(net).eval()(features, lengths)
        got = torch.from_numpy(
            session.run(["log_probs"], {"features": features.numpy(), "lengths": lengths.numpy()})[0]
        )
        worst = max(float((got[i, :n] - expected[i, :n]).abs().max()) for i, n in enumerate(lengths.tolist()))
        if not worst <= EXPORT_TOLERANCE:
            raise ModelError(
                f"the ONNX export differs from the torch network by {worst:.3g} (more than {EXPORT_TOLERANCE}); "
                "use the torch backend for this model"
            )
