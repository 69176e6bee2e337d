"""Where acoustic models come from: turn a model spec into an :class:`AlignmentModel`.

A spec is one of

* ``"TRELLIS_EN_PHONES"`` (case-insensitive), the English phone model shipped
  inside the package (:data:`PACKAGED_MODEL`, see MODEL.md) and the default;
* a torchaudio bundle name, case-insensitive (``"wav2vec2_asr_base_960h"``,
  ``"MMS_FA"``, see :data:`BUNDLE_NAMES`); weights are fetched by torchaudio's
  own bundle code into the torch hub cache (``torch.hub.get_dir()/checkpoints``)
  and never touch the network once cached;
* a folder in the project's own format (``aligner_model.json`` +
  ``model.safetensors``, written by :func:`save_model`), or the path of its
  ``aligner_model.json``;
* a Hugging Face ``Wav2Vec2ForCTC`` / ``HubertForCTC`` folder (``config.json``,
  ``vocab.json``, ``model.safetensors`` or ``pytorch_model.bin``), converted to
  a torchaudio ``Wav2Vec2Model`` from the files alone (no ``transformers``);
* an :class:`AlignmentModel`, returned as is.

A string that is a bundle name always means the bundle; write ``./mms_fa`` for
a folder of that name.
"""

from __future__ import annotations

import contextlib
import http.client
import json
import math
import os
import sys
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import Any

import torch
import torchaudio
from safetensors import SafetensorError
from safetensors.torch import load_file as _load_safetensors
from safetensors.torch import save_file as _save_safetensors
from torch import nn
from torchaudio.models import Wav2Vec2Model

from ..errors import AlignerError, ModelError, ModelNotAvailableError, OutputError
from ._torchaudio_compat import unwrap_bundle_model
from .alignment_model import PHONEMIZERS, AlignmentModel
from .frontend import LogMelFrontEnd, build_network
from .registry import (
    BUNDLE_NAMES,
    CONFIG_FILE,
    DEFAULT_MODEL,
    PACKAGED_MODEL,
    PACKAGED_NAME,
    WEIGHTS_FILE,
    ModelInfo,
    checkpoint_location,
    list_models,
)
from .registry import BUNDLES as _BUNDLES

__all__ = [
    "BUNDLE_NAMES",
    "DEFAULT_MODEL",
    "ModelInfo",
    "architecture_of",
    "build_from_architecture",
    "list_models",
    "load_model",
    "save_model",
    "PACKAGED_MODEL",
    "PACKAGED_NAME",
    "CONFIG_FILE",
    "WEIGHTS_FILE",
]

FORMAT_NAME = "trellis-align-model"
FORMAT_VERSION = 1

_FOLDER_HINT = (
    f"a model folder must contain either {CONFIG_FILE} + {WEIGHTS_FILE} (trellis-align format, "
    "written by save_model) or config.json + vocab.json + model.safetensors/pytorch_model.bin "
    "(Hugging Face Wav2Vec2ForCTC / HubertForCTC)"
)


# ---------------------------------------------------------------------------
# Public API
# ---------------------------------------------------------------------------


def load_model(spec: str | os.PathLike | AlignmentModel | None = None) -> AlignmentModel:
    """Resolve a model spec (see the module docstring) to an :class:`AlignmentModel`.

    ``None`` means the environment variable ``ALIGNER_MODEL`` when it is set
    (any spec), else :data:`DEFAULT_MODEL`. The returned network is on the
    CPU in eval mode.

    Raises:
        ModelNotAvailableError: a bundle's checkpoint is not cached and cannot
            be downloaded.
        ModelError: anything else wrong with the spec or the files.
    """
    if spec is None:
        spec = os.environ.get("ALIGNER_MODEL") or DEFAULT_MODEL
    if isinstance(spec, AlignmentModel):
        return spec
    if not isinstance(spec, (str, os.PathLike)):
        raise ModelError(f"model spec must be a bundle name, a path or an AlignmentModel, not {type(spec).__name__}")
    if isinstance(spec, str):
        if not spec.strip():
            raise ModelError(f"empty model spec; known bundles: {', '.join(BUNDLE_NAMES)}")
        if spec.strip().upper() == PACKAGED_NAME:
            return _load_path(PACKAGED_MODEL)
        if spec.strip().upper() in _BUNDLES:
            return _load_bundle(spec.strip().upper())
    path = Path(spec).expanduser()
    if path.exists():
        return _load_path(path)
    raise ModelError(
        f"unknown model {os.fspath(spec)!r}: not a known torchaudio bundle "
        f"({', '.join(BUNDLE_NAMES)}) and no such file or folder; {_FOLDER_HINT}"
    )


def save_model(model: AlignmentModel, folder: str | os.PathLike, *, half: bool = False) -> Path:
    """Write ``model`` to ``folder`` in the project's own format.

    Creates the folder if needed and writes ``model.safetensors`` and then
    ``aligner_model.json`` (overwriting existing ones). Returns the folder.
    ``half=True`` stores floating-point weights as float16 (half the size;
    they are loaded back as float32).

    Raises:
        ModelError: the network is not a plain wav2vec 2.0 / HuBERT model.
        OutputError: the folder cannot be written.
    """
    if not isinstance(model, AlignmentModel):
        raise ModelError(f"save_model needs an AlignmentModel, not {type(model).__name__}")
    folder = Path(folder).expanduser()
    config = {
        "format": FORMAT_NAME,
        "version": FORMAT_VERSION,
        "name": model.name,
        "architecture": architecture_of(model.model),
        "labels": list(model.labels),
        "sample_rate": int(model.sample_rate),
        "blank": int(model.blank),
        "separator": model.separator,
        "star": model.star,
        "normalize_waveform": bool(model.normalize_waveform),
        "append_star": bool(model.append_star),
        "phonetic": bool(model.phonetic),
        "phonemizer": model.phonemizer,
        "end_extension": model.end_extension,
        "blank_penalty": model.blank_penalty,
        "min_frames": model.min_frames,
        "quiet_db": model.quiet_db,
    }
    state = {key: value.detach().to("cpu").contiguous() for key, value in model.model.state_dict().items()}
    if half:
        state = {key: value.half() if value.is_floating_point() else value for key, value in state.items()}
    try:
        folder.mkdir(parents=True, exist_ok=True)
        _save_safetensors(state, str(folder / WEIGHTS_FILE), metadata={"format": "pt"})
        text = json.dumps(config, indent=2, ensure_ascii=False) + "\n"
        (folder / CONFIG_FILE).write_text(text, encoding="utf-8")
    except OSError as exc:
        raise OutputError(f"cannot write model folder {folder}: {exc}") from exc
    return folder


def architecture_of(net: Wav2Vec2Model) -> dict:
    """Keyword arguments of ``torchaudio.models.wav2vec2_model`` that rebuild ``net``.

    Dropouts and layer drop are 0 (the model is used for inference), so
    ``wav2vec2_model(**architecture_of(net)).load_state_dict(net.state_dict())``
    works. Reads only attributes, so it also works on a ``meta``-device model.

    Raises:
        ModelError: ``net`` is not a plain wav2vec 2.0 / HuBERT model (WavLM,
            a wrapper, ...).
    """
    if not isinstance(net, Wav2Vec2Model):
        raise ModelError(f"expected a torchaudio Wav2Vec2Model, got {type(net).__name__}")
    front_end = None
    if isinstance(net.feature_extractor, LogMelFrontEnd):
        front_end = net.feature_extractor.config()
        extractor_mode = "layer_norm"
        conv_config = [(net.feature_extractor.output_dim, 1, 1)]
        conv_bias = True
    else:
        conv_layers = net.feature_extractor.conv_layers
        first_norm = conv_layers[0].layer_norm
        if isinstance(first_norm, nn.GroupNorm):
            extractor_mode = "group_norm"
        elif isinstance(first_norm, nn.LayerNorm):
            extractor_mode = "layer_norm"
        else:
            raise ModelError("unsupported feature extractor: its first conv layer has no normalization")
        conv_config = [
            (int(layer.conv.out_channels), int(layer.conv.kernel_size[0]), int(layer.conv.stride[0]))
            for layer in conv_layers
        ]
        conv_bias = conv_layers[0].conv.bias is not None
    transformer = net.encoder.transformer
    first_layer = transformer.layers[0]
    if type(first_layer.attention).__name__ != "SelfAttention":
        raise ModelError(
            f"unsupported encoder attention {type(first_layer.attention).__name__} "
            "(only wav2vec 2.0 / HuBERT models can be saved)"
        )
    architecture = dict(
        extractor_mode=extractor_mode,
        extractor_conv_layer_config=conv_config,
        extractor_conv_bias=conv_bias,
        encoder_embed_dim=int(net.encoder.feature_projection.projection.out_features),
        encoder_projection_dropout=0.0,
        encoder_pos_conv_kernel=int(transformer.pos_conv_embed.kernel_size),
        encoder_pos_conv_groups=int(transformer.pos_conv_embed.conv.groups),
        encoder_num_layers=len(transformer.layers),
        encoder_num_heads=int(first_layer.attention.num_heads),
        encoder_attention_dropout=0.0,
        encoder_ff_interm_features=int(first_layer.feed_forward.intermediate_dense.out_features),
        encoder_ff_interm_dropout=0.0,
        encoder_dropout=0.0,
        encoder_layer_norm_first=bool(first_layer.layer_norm_first),
        encoder_layer_drop=0.0,
        aux_num_out=None if net.aux is None else int(net.aux.out_features),
    )
    if front_end is not None:
        architecture["front_end"] = front_end
    return architecture


# ---------------------------------------------------------------------------
# torchaudio bundles
# ---------------------------------------------------------------------------


def _bundle(name: str) -> torchaudio.pipelines.Wav2Vec2ASRBundle:
    bundle = getattr(torchaudio.pipelines, name, None)
    if bundle is None:
        raise ModelError(f"torchaudio {torchaudio.__version__} has no bundle {name}")
    return bundle


def _load_bundle(name: str) -> AlignmentModel:
    bundle = _bundle(name)
    file_name, url, cache = checkpoint_location(name)
    checkpoint = cache / file_name
    was_cached = checkpoint.is_file()
    is_fa = name == "MMS_FA"
    # weights_only: a checkpoint is tensors only; a pickle that would run code is refused
    dl_kwargs = {"map_location": "cpu", "weights_only": True}
    try:
        # torch.hub prints "Downloading: ..." on stdout; keep stdout for results.
        with contextlib.redirect_stdout(sys.stderr):
            if is_fa:
                loaded = bundle.get_model(with_star=False, dl_kwargs=dl_kwargs)
            else:
                loaded = bundle.get_model(dl_kwargs=dl_kwargs)
    except (OSError, http.client.HTTPException) as exc:
        if was_cached:
            raise ModelError(f"cannot read the cached checkpoint {checkpoint} of {name}: {exc}") from exc
        raise ModelNotAvailableError(
            f"model {name} is not cached and could not be downloaded ({type(exc).__name__}: {exc}). "
            f"Download the checkpoint file {file_name!r} from {url} and place it, under that name, "
            f"in the torch hub cache folder {cache} (set TORCH_HOME to use another cache)."
        ) from exc
    except Exception as exc:  # corrupt or foreign file in the cache: torch.load / load_state_dict
        raise ModelError(
            f"the checkpoint {checkpoint} of {name} is corrupt or does not match the model "
            f"({type(exc).__name__}: {_first_line(exc)}); delete it so that it is downloaded again "
            f"from {url}"
        ) from exc
    net, normalize = _unwrap(loaded)
    labels = bundle.get_labels(star="*") if is_fa else bundle.get_labels()
    model = AlignmentModel(
        model=net.eval(),
        labels=tuple(labels),
        sample_rate=int(bundle.sample_rate),
        name=name,
        blank=0,
        separator=None if is_fa else "|",
        star="*" if is_fa else None,
        normalize_waveform=normalize,
        append_star=is_fa,
    )
    _check_outputs(model, f"bundle {name}")
    return model


def _unwrap(loaded: nn.Module) -> tuple[Wav2Vec2Model, bool]:
    """The bare ``Wav2Vec2Model`` inside torchaudio's ``_Wav2Vec2Model`` wrapper
    and its ``normalize_waveform`` flag (log-softmax and star are dropped: the
    emission stage applies them)."""
    if isinstance(loaded, Wav2Vec2Model):
        return loaded, False
    unwrapped = unwrap_bundle_model(loaded)
    if unwrapped is None:
        raise ModelError(f"unexpected model type {type(loaded).__name__} from torchaudio")
    return unwrapped


# ---------------------------------------------------------------------------
# Folders
# ---------------------------------------------------------------------------


def _load_path(path: Path) -> AlignmentModel:
    if path.is_file():
        if path.name == "config.json":
            return _load_huggingface(path.parent)
        if path.suffix.lower() == ".json":
            return _load_own(path)
        raise ModelError(f"{path} is a file; give a model folder or its {CONFIG_FILE} ({_FOLDER_HINT})")
    if (path / CONFIG_FILE).is_file():
        return _load_own(path / CONFIG_FILE)
    if (path / "config.json").is_file():
        return _load_huggingface(path)
    raise ModelError(f"{path} is not a model folder: {_FOLDER_HINT}")


def _load_own(config_path: Path) -> AlignmentModel:
    """Load the project's format from its ``aligner_model.json``."""
    config = _read_json(config_path)
    if not isinstance(config, dict) or config.get("format") != FORMAT_NAME:
        raise ModelError(f'{config_path} is not a trellis-align model config (expected "format": "{FORMAT_NAME}")')
    version = config.get("version")
    if version != FORMAT_VERSION:
        raise ModelError(
            f"{config_path}: unsupported format version {version!r} (this trellis-align reads version {FORMAT_VERSION})"
        )
    for key in ("architecture", "labels", "sample_rate"):
        if key not in config:
            raise ModelError(f"{config_path}: missing field {key!r}")
    labels = config["labels"]
    if not isinstance(labels, list) or not labels or not all(isinstance(x, str) for x in labels):
        raise ModelError(f"{config_path}: 'labels' must be a non-empty list of strings")
    if len(set(labels)) != len(labels):
        raise ModelError(f"{config_path}: 'labels' contains duplicates")
    sample_rate = config["sample_rate"]
    if not isinstance(sample_rate, int) or isinstance(sample_rate, bool) or sample_rate <= 0:
        raise ModelError(f"{config_path}: 'sample_rate' must be a positive integer, got {sample_rate!r}")
    blank = config.get("blank", 0)
    if not isinstance(blank, int) or isinstance(blank, bool) or not 0 <= blank < len(labels):
        raise ModelError(f"{config_path}: 'blank' must be a label index below {len(labels)}, got {blank!r}")
    for key in ("separator", "star"):
        value = config.get(key)
        if value is not None and value not in labels:
            raise ModelError(f"{config_path}: {key} {value!r} is not one of the labels")
    weights = config_path.parent / WEIGHTS_FILE
    if not weights.is_file():
        raise ModelError(f"model folder {config_path.parent} has {config_path.name} but no weights file {WEIGHTS_FILE}")
    net = _build_for_weights(config["architecture"], config_path, _read_safetensors(weights), weights)
    model = AlignmentModel(
        model=net.eval(),
        labels=tuple(labels),
        sample_rate=sample_rate,
        name=str(config.get("name") or config_path.parent.resolve().name),
        blank=blank,
        separator=config.get("separator"),
        star=config.get("star"),
        normalize_waveform=bool(config.get("normalize_waveform", False)),
        append_star=bool(config.get("append_star", False)),
        phonetic=bool(config.get("phonetic", False)),
        phonemizer=_phonemizer_of(config, config_path),
        end_extension=_end_extension_of(config, config_path),
        blank_penalty=_blank_penalty_of(config, config_path),
        min_frames=_min_frames_of(config, config_path),
        quiet_db=_quiet_db_of(config, config_path),
    )
    _check_outputs(model, str(config_path))
    return model


def _phonemizer_of(config: Mapping[str, Any], source: Path) -> str | None:
    value = config.get("phonemizer")
    if value is not None and value not in PHONEMIZERS:
        raise ModelError(f"{source}: unknown phonemizer {value!r}; known: {', '.join(PHONEMIZERS)}")
    return value


def _number_of(
    config: Mapping[str, Any],
    source: Path,
    key: str,
    what: str,
    valid: Callable[[float], bool],
    default: float | None = None,
    optional: bool = True,
) -> float | None:
    """``config[key]`` as a float checked by ``valid`` (None when missing or
    null and ``optional``); otherwise a :class:`ModelError` saying ``what`` it must be."""
    value = config.get(key, default)
    if value is None and optional:
        return None
    if isinstance(value, bool) or not isinstance(value, (int, float)) or not valid(value):
        raise ModelError(f"{source}: '{key}' must be {what}, got {value!r}")
    return float(value)


def _end_extension_of(config: Mapping[str, Any], source: Path) -> float | None:
    return _number_of(config, source, "end_extension", "seconds in [0, 5]", lambda v: 0 <= v <= 5)


def _blank_penalty_of(config: Mapping[str, Any], source: Path) -> float:
    return (
        _number_of(
            config, source, "blank_penalty", "a number in [0, 50]", lambda v: 0 <= v <= 50, default=0.0, optional=False
        )
        or 0.0
    )  # never None: not optional


def _min_frames_of(config: Mapping[str, Any], source: Path) -> int | None:
    value = config.get("min_frames")
    if value is not None and (isinstance(value, bool) or not isinstance(value, int) or not 1 <= value <= 50):
        raise ModelError(f"{source}: 'min_frames' must be null or an integer in [1, 50], got {value!r}")
    return value


def _quiet_db_of(config: Mapping[str, Any], source: Path) -> float | None:
    return _number_of(config, source, "quiet_db", "null or decibels in (0, 120]", lambda v: 0 < v <= 120)


def build_from_architecture(
    architecture: Any, source: str | os.PathLike[str] | None = None, *, error: type[AlignerError] = ModelError
) -> Wav2Vec2Model:
    """:func:`~aligner.models.frontend.build_network` (the one way the package builds
    a network from its architecture), with a bad architecture raised as
    ``error`` naming ``source`` (loading: :class:`ModelError` naming the
    config file; training: :class:`~aligner.errors.TrainingError`)."""
    where = "" if source is None else f"{source}: "
    if not isinstance(architecture, dict):
        raise error(f"{where}'architecture' must be an object of wav2vec2_model arguments")
    try:
        return build_network(architecture)
    except (TypeError, ValueError, RuntimeError, ZeroDivisionError, KeyError) as exc:
        raise error(f"{where}invalid model architecture ({_first_line(exc)})") from exc


# ---------------------------------------------------------------------------
# Hugging Face folders
# ---------------------------------------------------------------------------

# Defaults of transformers' Wav2Vec2Config / HubertConfig for keys a
# hand-written config.json may leave out.
_HF_DEFAULTS: dict[str, Any] = {
    "feat_extract_norm": "group",
    "conv_dim": [512] * 7,
    "conv_kernel": [10, 3, 3, 3, 3, 2, 2],
    "conv_stride": [5, 2, 2, 2, 2, 2, 2],
    "conv_bias": False,
    "hidden_size": 768,
    "num_conv_pos_embeddings": 128,
    "num_conv_pos_embedding_groups": 16,
    "num_hidden_layers": 12,
    "num_attention_heads": 12,
    "intermediate_size": 3072,
    "do_stable_layer_norm": False,
    "hidden_act": "gelu",
    "feat_extract_activation": "gelu",
    "layer_norm_eps": 1e-5,
}

_HF_PREFIXES = {"wav2vec2": "wav2vec2.", "hubert": "hubert."}
_HF_WEIGHT_FILES = (
    "model.safetensors",
    "pytorch_model.bin",
    "model.safetensors.index.json",
    "pytorch_model.bin.index.json",
)


def _load_huggingface(folder: Path) -> AlignmentModel:
    config_path = folder / "config.json"
    config = _read_json(config_path)
    if not isinstance(config, dict):
        raise ModelError(f"{config_path}: expected a JSON object")
    model_type = config.get("model_type")
    if model_type not in _HF_PREFIXES:
        raise ModelError(
            f"{config_path}: model_type {model_type!r} is not supported (supported: {', '.join(_HF_PREFIXES)})"
        )
    vocab_path = folder / "vocab.json"
    if not vocab_path.is_file():
        raise ModelError(f"Hugging Face model folder {folder} has no vocab.json (the CTC labels)")
    vocab = _read_json(vocab_path)
    weights_path, raw_state = _read_hf_weights(folder)
    state = _rename_hf_keys(raw_state, _HF_PREFIXES[model_type], weights_path)
    num_out = int(state["aux.weight"].shape[0])
    net = _build_for_weights(
        _hf_architecture(config, model_type, config_path, num_out), config_path, state, weights_path
    )

    labels = _hf_labels(vocab, num_out, vocab_path)
    blank = config.get("pad_token_id", 0)
    blank = 0 if blank is None else blank
    if not isinstance(blank, int) or not 0 <= blank < num_out:
        raise ModelError(f"{config_path}: pad_token_id {blank!r} is not an output index below {num_out}")
    tokenizer = _read_optional_json(folder / "tokenizer_config.json")
    delimiter = tokenizer.get("word_delimiter_token", "|")
    preprocessor = _read_optional_json(folder / "preprocessor_config.json")
    feat_norm = config.get("feat_extract_norm", _HF_DEFAULTS["feat_extract_norm"])
    sample_rate = preprocessor.get("sampling_rate", 16000)
    if not isinstance(sample_rate, int) or sample_rate <= 0:
        raise ModelError(f"{folder / 'preprocessor_config.json'}: bad sampling_rate {sample_rate!r}")
    model = AlignmentModel(
        model=net.eval(),
        labels=labels,
        sample_rate=sample_rate,
        name=folder.resolve().name,
        blank=blank,
        separator=delimiter if delimiter in labels else None,
        star=None,
        normalize_waveform=bool(preprocessor.get("do_normalize", feat_norm == "layer")),
        append_star=False,
        phonetic=tokenizer.get("tokenizer_class") == "Wav2Vec2PhonemeCTCTokenizer",
    )
    _check_outputs(model, str(folder))
    return model


def _hf_architecture(config: Mapping[str, Any], model_type: str, source: Path, num_out: int) -> dict:
    """Map a transformers ``Wav2Vec2Config`` / ``HubertConfig`` dict to
    ``wav2vec2_model`` keyword arguments (dropouts 0)."""

    def get(key: str) -> Any:
        return config.get(key, _HF_DEFAULTS[key])

    norm = get("feat_extract_norm")
    if norm not in ("group", "layer"):
        raise ModelError(f"{source}: feat_extract_norm {norm!r} is not 'group' or 'layer'")
    for key in ("hidden_act", "feat_extract_activation"):
        if get(key) != "gelu":
            raise ModelError(f"{source}: {key} {get(key)!r} is not supported (only 'gelu')")
    if get("layer_norm_eps") != 1e-5:
        raise ModelError(f"{source}: layer_norm_eps {get('layer_norm_eps')!r} is not supported (only 1e-5)")
    unsupported = [key for key in ("add_adapter", "adapter_attn_dim", "conv_pos_batch_norm") if config.get(key)]
    if model_type == "hubert" and config.get("feat_proj_layer_norm", True) is False:
        unsupported.append("feat_proj_layer_norm=false")
    if unsupported:
        raise ModelError(f"{source}: unsupported model options: {', '.join(unsupported)}")
    dims, kernels, strides = get("conv_dim"), get("conv_kernel"), get("conv_stride")
    if not (
        isinstance(dims, list)
        and isinstance(kernels, list)
        and isinstance(strides, list)
        and len(dims) == len(kernels) == len(strides) > 0
    ):
        raise ModelError(f"{source}: conv_dim, conv_kernel and conv_stride must be lists of one length")
    return dict(
        extractor_mode=f"{norm}_norm",
        extractor_conv_layer_config=list(zip(dims, kernels, strides)),
        extractor_conv_bias=bool(get("conv_bias")),
        encoder_embed_dim=get("hidden_size"),
        encoder_projection_dropout=0.0,
        encoder_pos_conv_kernel=get("num_conv_pos_embeddings"),
        encoder_pos_conv_groups=get("num_conv_pos_embedding_groups"),
        encoder_num_layers=get("num_hidden_layers"),
        encoder_num_heads=get("num_attention_heads"),
        encoder_attention_dropout=0.0,
        encoder_ff_interm_features=get("intermediate_size"),
        encoder_ff_interm_dropout=0.0,
        encoder_dropout=0.0,
        encoder_layer_norm_first=bool(get("do_stable_layer_norm")),
        encoder_layer_drop=0.0,
        aux_num_out=num_out,
    )


def _read_hf_weights(folder: Path) -> tuple[Path, dict[str, torch.Tensor]]:
    """The state dict of a Hugging Face folder (single file or sharded)."""
    for name in _HF_WEIGHT_FILES:
        path = folder / name
        if not path.is_file():
            continue
        if not name.endswith(".index.json"):
            return path, _read_weights_file(path)
        index = _read_json(path)
        weight_map = index.get("weight_map") if isinstance(index, dict) else None
        if not isinstance(weight_map, dict):
            raise ModelError(f"{path}: missing 'weight_map'")
        state: dict[str, torch.Tensor] = {}
        for shard in sorted(set(weight_map.values())):
            shard_path = folder / str(shard)
            if not shard_path.is_file():
                raise ModelError(f"{path} names the shard {shard}, which is missing")
            state.update(_read_weights_file(shard_path))
        return path, state
    raise ModelError(
        f"Hugging Face model folder {folder} has config.json but no weights "
        f"(expected one of {', '.join(_HF_WEIGHT_FILES)})"
    )


def _rename_hf_keys(state: Mapping[str, torch.Tensor], prefix: str, source: Path) -> dict[str, torch.Tensor]:
    """Hugging Face ``*ForCTC`` state-dict keys → torchaudio ``Wav2Vec2Model`` keys."""
    renames = (
        (prefix + "feature_extractor.", "feature_extractor."),
        (prefix + "feature_projection.", "encoder.feature_projection."),
        (prefix + "encoder.", "encoder.transformer."),
        ("lm_head.", "aux."),
    )
    ignored = {prefix + "masked_spec_embed"}
    renamed: dict[str, torch.Tensor] = {}
    unknown = []
    for key, value in state.items():
        if key in ignored:
            continue
        for old, new in renames:
            if key.startswith(old):
                renamed[new + key[len(old) :]] = value
                break
        else:
            unknown.append(key)
    if unknown:
        raise ModelError(
            f"{source}: unexpected weights {_few(unknown)} (not a plain Wav2Vec2ForCTC / HubertForCTC checkpoint)"
        )
    if "aux.weight" not in renamed:
        raise ModelError(f"{source}: no lm_head weights; not a CTC model (Wav2Vec2ForCTC / HubertForCTC)")
    return renamed


def _hf_labels(vocab: Any, num_out: int, source: Path) -> tuple[str, ...]:
    """Labels sorted by id from a ``vocab.json`` (``{token: id}``)."""
    if not isinstance(vocab, dict) or not vocab:
        raise ModelError(f"{source}: expected a non-empty object mapping tokens to ids")
    if all(isinstance(v, dict) for v in vocab.values()):
        raise ModelError(
            f"{source} holds one vocabulary per language ({_few(list(vocab))}); "
            "adapter/multilingual models are not supported"
        )
    by_id: dict[int, str] = {}
    for token, index in vocab.items():
        if not isinstance(index, int) or isinstance(index, bool) or index < 0:
            raise ModelError(f"{source}: token {token!r} has id {index!r}, not a non-negative integer")
        if index in by_id:
            raise ModelError(f"{source}: tokens {by_id[index]!r} and {token!r} share id {index}")
        if index >= num_out and not (token.startswith("<") and token.endswith(">")):
            raise ModelError(f"{source}: token {token!r} has id {index}, but the model has only {num_out} outputs")
        by_id[index] = token
    return tuple(by_id.get(i, f"<unused-{i}>") for i in range(num_out))


# ---------------------------------------------------------------------------
# Helpers
# ---------------------------------------------------------------------------


def _read_json(path: Path) -> Any:
    if not path.is_file():
        raise ModelError(f"missing file {path}")
    try:
        return json.loads(path.read_text(encoding="utf-8"))
    except json.JSONDecodeError as exc:
        raise ModelError(f"{path} is not valid JSON: {exc}") from exc
    except RecursionError:
        raise ModelError(f"{path} is not a model configuration: its JSON is nested too deeply") from None
    except (OSError, UnicodeDecodeError) as exc:
        raise ModelError(f"cannot read {path}: {exc}") from exc


def _read_optional_json(path: Path) -> dict:
    if not path.is_file():
        return {}
    data = _read_json(path)
    if not isinstance(data, dict):
        raise ModelError(f"{path}: expected a JSON object")
    return data


def _read_safetensors(path: Path) -> dict[str, torch.Tensor]:
    try:
        return _load_safetensors(str(path), device="cpu")
    except (SafetensorError, OSError, ValueError, RuntimeError) as exc:
        raise ModelError(f"cannot read weights file {path}: {_first_line(exc)}") from exc


def _read_weights_file(path: Path) -> dict[str, torch.Tensor]:
    if path.suffix == ".safetensors":
        return _read_safetensors(path)
    try:
        state = torch.load(path, map_location="cpu", weights_only=True)
    except Exception as exc:  # pickle, zip and torch errors all mean "bad file"
        raise ModelError(f"cannot read weights file {path}: {type(exc).__name__}: {_first_line(exc)}") from exc
    if not isinstance(state, dict) or not all(isinstance(v, torch.Tensor) for v in state.values()):
        raise ModelError(f"weights file {path} does not hold a state dict of tensors")
    return state


_WEIGHT_NORM_STYLES = (
    (".weight_g", ".parametrizations.weight.original0"),
    (".weight_v", ".parametrizations.weight.original1"),
)


def _match_weight_norm_style(state: Mapping[str, torch.Tensor], expected: set[str]) -> dict[str, torch.Tensor]:
    """Rename weight-norm keys (``weight_g``/``weight_v`` vs
    ``parametrizations.weight.original0/1``) to the style ``expected`` uses."""
    matched = {}
    for key, value in state.items():
        for old_style, new_style in _WEIGHT_NORM_STYLES:
            for src, dst in ((old_style, new_style), (new_style, old_style)):
                if key.endswith(src) and key not in expected:
                    candidate = key[: -len(src)] + dst
                    if candidate in expected:
                        key = candidate
        matched[key] = value
    return matched


def _load_weights(net: nn.Module, state: Mapping[str, Any], source: Path) -> None:
    """``net.load_state_dict(state)`` with a :class:`ModelError` naming
    ``source`` instead of torch's traceback on any mismatch."""
    net.load_state_dict(_checked_state(net.state_dict(), state, source))


def _checked_state(
    expected: Mapping[str, torch.Tensor], state: Mapping[str, Any], source: Path
) -> dict[str, torch.Tensor]:
    """``state`` (weight-norm keys renamed to ``expected``'s style) after
    checking its keys and shapes against ``expected`` (tensors of any
    device, ``meta`` included). Raises :class:`ModelError` naming ``source``."""
    state = _match_weight_norm_style(state, set(expected))
    missing = sorted(set(expected) - set(state))
    unexpected = sorted(set(state) - set(expected))
    if missing or unexpected:
        parts = []
        if missing:
            parts.append(f"missing {_few(missing)}")
        if unexpected:
            parts.append(f"unexpected {_few(unexpected)}")
        raise ModelError(f"weights in {source} do not match the model architecture: {'; '.join(parts)}")
    for key, target in expected.items():
        value = state[key]
        if not isinstance(value, torch.Tensor):
            raise ModelError(f"weights in {source}: {key} is not a tensor")
        if tuple(value.shape) != tuple(target.shape):
            raise ModelError(
                f"weights in {source}: {key} has shape {tuple(value.shape)}, "
                f"the architecture needs {tuple(target.shape)}"
            )
    return state


def _build_for_weights(architecture: Any, source: Path, state: Mapping[str, Any], weights: Path) -> Wav2Vec2Model:
    """The network of ``architecture`` with ``state`` loaded. The
    architecture is first built on the ``meta`` device (no memory) and
    checked against the weights' names and shapes, so a small config that
    claims a huge network fails before anything is allocated."""
    stored = sum(value.numel() for value in state.values() if isinstance(value, torch.Tensor))
    if _estimated_parameters(architecture) > 2 * stored + 2**20:
        # building on the meta device costs 1-2 s once (torch imports its meta kernels): only when needed
        with torch.device("meta"):
            probe = build_from_architecture(architecture, source)
        _checked_state(probe.state_dict(), state, weights)
    net = build_from_architecture(architecture, source)
    _checked_state(net.state_dict(), state, weights)
    _load_weights(net, state, weights)
    return net


def _estimated_parameters(architecture: Any) -> float:
    """About how many parameters ``architecture`` asks for (transformer,
    convolutions, projections); infinite when it cannot be read, so the
    caller takes the safe path."""
    try:
        dim = int(architecture["encoder_embed_dim"])
        layers = int(architecture["encoder_num_layers"])
        feed_forward = int(architecture["encoder_ff_interm_features"])
        kernel = int(architecture["encoder_pos_conv_kernel"])
        groups = max(1, int(architecture["encoder_pos_conv_groups"]))
        outputs = int(architecture.get("aux_num_out") or 0)
        convs, previous = 0, 1
        for channels, width, _ in architecture["extractor_conv_layer_config"] or []:
            convs += int(channels) * previous * int(width)
            previous = int(channels)
        front_end = architecture.get("front_end") or {}
        previous = max(previous, 2 * int(front_end.get("num_bins", 0)))
    except (KeyError, TypeError, ValueError):
        return math.inf
    return float(
        layers * (4 * dim * dim + 2 * dim * feed_forward)
        + dim * dim * kernel / groups
        + convs
        + previous * dim
        + dim * outputs
    )


def _check_outputs(model: AlignmentModel, source: str) -> None:
    """The network's output size must match the labels (minus an appended star)."""
    aux = model.model.aux
    if aux is None:
        raise ModelError(f"{source}: the network has no output layer (aux_num_out is None)")
    expected = model.num_labels - (1 if model.append_star else 0)
    if aux.out_features != expected:
        raise ModelError(
            f"{source}: the network has {aux.out_features} outputs but there are "
            f"{model.num_labels} labels" + (" (including the appended star)" if model.append_star else "")
        )


def _few(items: list[str], limit: int = 5) -> str:
    shown = ", ".join(items[:limit])
    return shown + (f" and {len(items) - limit} more" if len(items) > limit else "")


def _first_line(exc: BaseException) -> str:
    text = str(exc).strip()
    return text.splitlines()[0] if text else type(exc).__name__
