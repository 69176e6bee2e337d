"""Tests for aligner.models.loading: bundles (offline), own format, Hugging Face folders."""

from __future__ import annotations

import json
import os
import urllib.error
from pathlib import Path

import pytest
import torch
import torchaudio
from safetensors.torch import load_file, save_file
from torchaudio.models import wav2vec2_model

from aligner.errors import ModelError, ModelNotAvailableError
from aligner.models import loading
from aligner.models.alignment_model import AlignmentModel
from aligner.models.loading import (
    BUNDLE_NAMES,
    DEFAULT_MODEL,
    ModelInfo,
    architecture_of,
    list_models,
    load_model,
    save_model,
)
from aligner.testing import ENGLISH_LABELS, MMS_LABELS, tiny_architecture, tiny_model

BASE_CHECKPOINT = "wav2vec2_fairseq_base_ls960_asr_ls960.pth"


def _logits(model: AlignmentModel, waveform: torch.Tensor) -> torch.Tensor:
    with torch.inference_mode():
        return model.model(waveform)[0]


@pytest.fixture
def waveform() -> torch.Tensor:
    gen = torch.Generator().manual_seed(1)
    return torch.randn(1, 4000, generator=gen)


@pytest.fixture
def hub_dir(tmp_path, monkeypatch) -> Path:
    """An empty torch hub cache in tmp_path (restored afterwards)."""
    monkeypatch.setattr(torch.hub, "_hub_dir", torch.hub._hub_dir)
    folder = tmp_path / "hub"
    torch.hub.set_dir(str(folder))
    return folder


@pytest.fixture
def no_download(monkeypatch):
    """Make any download attempt fail loudly."""

    def fail(url, *args, **kwargs):
        pytest.fail(f"download attempted: {url}")

    monkeypatch.setattr(torch.hub, "download_url_to_file", fail)


# ---------------------------------------------------------------------------
# architecture_of
# ---------------------------------------------------------------------------


@pytest.mark.parametrize("mode", ["group_norm", "layer_norm"])
def test_architecture_of_rebuilds_tiny_models(mode, waveform):
    net = tiny_model(extractor_mode=mode).model
    arch = architecture_of(net)
    assert arch["extractor_mode"] == mode
    assert arch["extractor_conv_bias"] == (mode == "layer_norm")
    assert arch == tiny_architecture(len(ENGLISH_LABELS), mode)
    rebuilt = wav2vec2_model(**arch)
    rebuilt.load_state_dict(net.state_dict())
    rebuilt.eval()
    with torch.inference_mode():
        torch.testing.assert_close(rebuilt(waveform)[0], net(waveform)[0])


@pytest.mark.parametrize("name", BUNDLE_NAMES)
def test_architecture_of_full_size_bundle_params(name):
    params = getattr(torchaudio.pipelines, name)._params
    with torch.device("meta"):  # no memory, no init cost
        net = wav2vec2_model(**params)
    arch = architecture_of(net)
    zeroed = {k: (0.0 if "dropout" in k or k == "encoder_layer_drop" else v) for k, v in params.items()}
    assert arch == {**zeroed, "extractor_conv_layer_config": list(params["extractor_conv_layer_config"])}
    with torch.device("meta"):
        wav2vec2_model(**arch).load_state_dict(net.state_dict())


def test_architecture_of_rejects_non_wav2vec2():
    with pytest.raises(ModelError, match="Wav2Vec2Model"):
        architecture_of(torch.nn.Linear(2, 2))


# ---------------------------------------------------------------------------
# Own format
# ---------------------------------------------------------------------------


@pytest.mark.parametrize("mode", ["group_norm", "layer_norm"])
def test_save_load_round_trip(tmp_path, mode, waveform):
    original = tiny_model(extractor_mode=mode, name="tiny-en", normalize_waveform=True, phonetic=True)
    folder = save_model(original, tmp_path / "nested" / "model")
    assert folder == tmp_path / "nested" / "model"
    assert sorted(p.name for p in folder.iterdir()) == ["aligner_model.json", "model.safetensors"]
    config = json.loads((folder / "aligner_model.json").read_text())
    assert config["format"] == "trellis-align-model" and config["version"] == 1

    loaded = load_model(folder)
    assert loaded.labels == original.labels
    assert (loaded.name, loaded.sample_rate, loaded.blank, loaded.separator) == ("tiny-en", 16000, 0, "|")
    assert loaded.normalize_waveform and loaded.phonetic and not loaded.append_star
    assert loaded.group_norm == (mode == "group_norm")
    assert not loaded.model.training
    torch.testing.assert_close(_logits(loaded, waveform), _logits(original, waveform), rtol=0, atol=0)


def test_round_trip_mms_like_model_and_json_path(tmp_path, waveform):
    net = wav2vec2_model(**tiny_architecture(len(MMS_LABELS) - 1)).eval()
    original = AlignmentModel(
        model=net,
        labels=MMS_LABELS,
        sample_rate=16000,
        name="mms-tiny",
        separator=None,
        star="*",
        normalize_waveform=True,
        append_star=True,
    )
    save_model(original, tmp_path)
    loaded = load_model(str(tmp_path / "aligner_model.json"))
    assert (loaded.star, loaded.star_id, loaded.separator) == ("*", len(MMS_LABELS) - 1, None)
    assert loaded.append_star and loaded.normalize_waveform
    torch.testing.assert_close(_logits(loaded, waveform), _logits(original, waveform), rtol=0, atol=0)


def test_save_model_does_not_mutate_input(tmp_path):
    original = tiny_model()
    before = {k: v.clone() for k, v in original.model.state_dict().items()}
    save_model(original, tmp_path)
    after = original.model.state_dict()
    assert before.keys() == after.keys()
    assert all(torch.equal(before[k], after[k]) for k in before)


def test_own_format_accepts_old_weight_norm_keys(tmp_path, waveform):
    original = tiny_model()
    save_model(original, tmp_path)
    state = load_file(tmp_path / "model.safetensors")
    prefix = "encoder.transformer.pos_conv_embed.conv."
    state[prefix + "weight_g"] = state.pop(prefix + "parametrizations.weight.original0")
    state[prefix + "weight_v"] = state.pop(prefix + "parametrizations.weight.original1")
    save_file(state, tmp_path / "model.safetensors")
    torch.testing.assert_close(_logits(load_model(tmp_path), waveform), _logits(original, waveform))


def test_load_model_passes_alignment_model_through():
    model = tiny_model()
    assert load_model(model) is model


# ---------------------------------------------------------------------------
# Errors
# ---------------------------------------------------------------------------


def test_unknown_name_lists_alternatives():
    with pytest.raises(ModelError, match=r"unknown model 'wav2vec3'.*WAV2VEC2_ASR_BASE_960H.*MMS_FA") as info:
        load_model("wav2vec3")
    assert "aligner_model.json" in str(info.value) and "config.json" in str(info.value)


@pytest.mark.parametrize("spec", ["", "   "])
def test_empty_spec(spec):
    with pytest.raises(ModelError, match="empty model spec"):
        load_model(spec)


def test_bad_spec_type():
    with pytest.raises(ModelError, match="not int"):
        load_model(42)


def test_folder_without_config(tmp_path):
    with pytest.raises(ModelError, match=r"is not a model folder: .*aligner_model.json"):
        load_model(tmp_path)


def test_other_file_is_rejected(tmp_path):
    (tmp_path / "weights.pt").write_bytes(b"x")
    with pytest.raises(ModelError, match=r"weights.pt is a file"):
        load_model(tmp_path / "weights.pt")


def test_missing_weights_file(tmp_path):
    save_model(tiny_model(), tmp_path)
    (tmp_path / "model.safetensors").unlink()
    with pytest.raises(ModelError, match="no weights file model.safetensors"):
        load_model(tmp_path)


def test_bad_json(tmp_path):
    save_model(tiny_model(), tmp_path)
    (tmp_path / "aligner_model.json").write_text("{not json")
    with pytest.raises(ModelError, match=r"aligner_model.json is not valid JSON"):
        load_model(tmp_path)


@pytest.mark.parametrize(
    "change, message",
    [
        ({"format": "other"}, "not a trellis-align model config"),
        ({"version": 2}, "unsupported format version 2"),
        ({"labels": []}, "non-empty list of strings"),
        ({"labels": ["a", "a"]}, "duplicates"),
        ({"blank": 99}, "'blank' must be a label index"),
        ({"separator": "#"}, "separator '#' is not one of the labels"),
        ({"sample_rate": "16k"}, "'sample_rate' must be a positive integer"),
        ({"architecture": {"bogus": 1}}, "invalid model architecture"),
        ({"labels": list(ENGLISH_LABELS[:-1])}, "28 labels"),
    ],
)
def test_bad_config_fields(tmp_path, change, message):
    save_model(tiny_model(), tmp_path)
    config = json.loads((tmp_path / "aligner_model.json").read_text())
    config.update(change)
    (tmp_path / "aligner_model.json").write_text(json.dumps(config))
    with pytest.raises(ModelError, match=message):
        load_model(tmp_path)


def test_wrong_state_dict_names_file(tmp_path):
    save_model(tiny_model(), tmp_path)
    state = load_file(tmp_path / "model.safetensors")
    state["extra.weight"] = state.pop("aux.weight")
    save_file(state, tmp_path / "model.safetensors")
    with pytest.raises(
        ModelError, match=r"model.safetensors do not match.*missing aux.weight.*unexpected extra.weight"
    ):
        load_model(tmp_path)


def test_wrong_shape_names_file(tmp_path):
    save_model(tiny_model(), tmp_path)
    save_model(tiny_model(labels=ENGLISH_LABELS[:10]), tmp_path / "small")
    (tmp_path / "small" / "model.safetensors").replace(tmp_path / "model.safetensors")
    with pytest.raises(ModelError, match=r"model.safetensors: aux.weight has shape \(10, 32\)"):
        load_model(tmp_path)


def test_corrupt_weights_file(tmp_path):
    save_model(tiny_model(), tmp_path)
    (tmp_path / "model.safetensors").write_bytes(b"garbage")
    with pytest.raises(ModelError, match="cannot read weights file .*model.safetensors"):
        load_model(tmp_path)


# ---------------------------------------------------------------------------
# torchaudio bundles (no network)
# ---------------------------------------------------------------------------


def test_offline_bundle_raises_not_available(hub_dir, monkeypatch, capsys):
    def offline(url, *args, **kwargs):
        raise urllib.error.URLError("no network")

    monkeypatch.setattr(torch.hub, "download_url_to_file", offline)
    with pytest.raises(ModelNotAvailableError, match="WAV2VEC2_ASR_BASE_960H is not cached") as info:
        load_model("wav2vec2_asr_base_960h")
    message = str(info.value)
    assert BASE_CHECKPOINT in message
    assert f"https://download.pytorch.org/torchaudio/models/{BASE_CHECKPOINT}" in message
    assert str(hub_dir / "checkpoints") in message
    captured = capsys.readouterr()  # torch.hub's "Downloading: ..." must not pollute stdout
    assert "Downloading" not in captured.out and "Downloading" in captured.err


def test_unwrap_carries_torchaudio_wrapper_flags():
    from torchaudio.pipelines._wav2vec2.utils import _extend_model

    net = tiny_model().model
    wrapped = _extend_model(net, normalize_waveform=True, apply_log_softmax=True, append_star=True)
    assert loading._unwrap(wrapped) == (net, True)
    assert loading._unwrap(net) == (net, False)
    with pytest.raises(ModelError, match="unexpected model type Linear"):
        loading._unwrap(torch.nn.Linear(2, 2))


def test_offline_mms_fa_names_its_url(hub_dir, monkeypatch):
    def offline(url, *args, **kwargs):
        raise ConnectionRefusedError("refused")

    monkeypatch.setattr(torch.hub, "download_url_to_file", offline)
    with pytest.raises(ModelNotAvailableError, match=r"'model.pt' from https://dl.fbaipublicfiles.com/mms/"):
        load_model("MMS_FA")


def test_corrupt_cached_checkpoint(hub_dir, no_download):
    (hub_dir / "checkpoints").mkdir(parents=True)
    (hub_dir / "checkpoints" / BASE_CHECKPOINT).write_bytes(b"not a checkpoint")
    with pytest.raises(ModelError, match=r"corrupt or does not match.*delete it") as info:
        load_model("WAV2VEC2_ASR_BASE_960H")
    assert not isinstance(info.value, ModelNotAvailableError)


def test_list_models_empty_cache(hub_dir):
    infos = list_models()
    assert all(isinstance(info, ModelInfo) for info in infos)
    assert [info.name for info in infos] == [DEFAULT_MODEL] + list(BUNDLE_NAMES)
    assert not any(info.available for info in infos[1:])
    assert [info.name for info in infos if info.default] == [DEFAULT_MODEL]
    base = infos[1]
    assert base.location == str(hub_dir / "checkpoints" / BASE_CHECKPOINT)
    assert base.url.endswith(BASE_CHECKPOINT) and base.kind == "torchaudio"


def test_list_models_reports_a_folder_default(hub_dir, tmp_path, monkeypatch):
    save_model(tiny_model(), tmp_path / "default")
    monkeypatch.setenv("ALIGNER_MODEL", str(tmp_path / "default"))  # what load_model(None) uses too
    last = list_models()[-1]
    assert (last.kind, last.available, last.default) == ("trellis-align", True, True)
    assert load_model(None).name == "tiny"


@pytest.mark.slow
def test_cached_bundle_loads_through_torchaudio(hub_dir, no_download):
    bundle = torchaudio.pipelines.WAV2VEC2_ASR_BASE_960H
    torch.manual_seed(0)
    saved = wav2vec2_model(**{**bundle._params, "aux_num_out": 32}).state_dict()
    (hub_dir / "checkpoints").mkdir(parents=True)
    torch.save(saved, hub_dir / "checkpoints" / BASE_CHECKPOINT)

    model = load_model("wav2vec2_asr_base_960h")
    assert model.name == "WAV2VEC2_ASR_BASE_960H"
    assert model.labels == ENGLISH_LABELS
    assert (model.sample_rate, model.blank, model.separator, model.star) == (16000, 0, "|", None)
    assert model.group_norm and not model.normalize_waveform and not model.append_star
    assert type(model.model) is torchaudio.models.Wav2Vec2Model and not model.model.training
    loaded = model.model.state_dict()
    keep = [0] + list(range(4, 32))  # torchaudio drops fairseq's aux rows 1, 2, 3
    for key, value in saved.items():
        expected = value[keep] if key.startswith("aux.") else value
        assert torch.equal(loaded[key], expected), key
    assert next(info for info in list_models() if info.name == "WAV2VEC2_ASR_BASE_960H").available


# ---------------------------------------------------------------------------
# Hugging Face folders
# ---------------------------------------------------------------------------

HF_VOCAB = {"<pad>": 0, "<s>": 1, "</s>": 2, "<unk>": 3, "|": 4, "E": 5, "T": 6, "A": 7, "O": 8, "N": 9}


def _hf_model(model_type: str, norm: str):
    transformers = pytest.importorskip("transformers")
    common = dict(
        vocab_size=len(HF_VOCAB),
        hidden_size=32,
        num_hidden_layers=2,
        num_attention_heads=2,
        intermediate_size=64,
        conv_dim=(16,) * 7,
        num_conv_pos_embeddings=16,
        num_conv_pos_embedding_groups=4,
        feat_extract_norm=norm,
        conv_bias=norm == "layer",
        do_stable_layer_norm=norm == "layer",
        pad_token_id=0,
    )
    torch.manual_seed(3)
    if model_type == "wav2vec2":
        model = transformers.Wav2Vec2ForCTC(transformers.Wav2Vec2Config(**common))
    else:
        model = transformers.HubertForCTC(transformers.HubertConfig(**common))
    return model.eval()


def _write_hf_folder(model, folder: Path, fmt: str, vocab=HF_VOCAB, preprocessor=None) -> Path:
    model.save_pretrained(folder)
    if fmt == "bin":  # the older format, with old-style weight-norm keys
        state = load_file(folder / "model.safetensors")
        (folder / "model.safetensors").unlink()
        for key in list(state):
            state[
                key.replace("parametrizations.weight.original0", "weight_g").replace(
                    "parametrizations.weight.original1", "weight_v"
                )
            ] = state.pop(key)
        torch.save(state, folder / "pytorch_model.bin")
    (folder / "vocab.json").write_text(json.dumps(vocab))
    if preprocessor is not None:
        (folder / "preprocessor_config.json").write_text(json.dumps(preprocessor))
    return folder


@pytest.mark.parametrize("model_type", ["wav2vec2", "hubert"])
@pytest.mark.parametrize("norm", ["group", "layer"])
@pytest.mark.parametrize("fmt", ["safetensors", "bin"])
def test_huggingface_folder_matches_transformers(tmp_path, model_type, norm, fmt, waveform):
    hf = _hf_model(model_type, norm)
    folder = _write_hf_folder(hf, tmp_path / f"hf-{model_type}", fmt)
    if fmt == "bin":
        assert "weight_g" in " ".join(torch.load(folder / "pytorch_model.bin", weights_only=True))
    model = load_model(folder)
    assert model.name == f"hf-{model_type}"
    assert model.labels == tuple(HF_VOCAB)
    assert (model.blank, model.separator, model.sample_rate) == (0, "|", 16000)
    assert model.normalize_waveform == (norm == "layer")
    assert model.group_norm == (norm == "group")
    with torch.inference_mode():
        expected = hf(waveform).logits
    torch.testing.assert_close(_logits(model, waveform), expected, rtol=0, atol=1e-4)


def test_huggingface_vocab_order_blank_and_preprocessor(tmp_path):
    hf = _hf_model("wav2vec2", "group")
    hf.config.pad_token_id = 3
    shuffled = dict(reversed(list(HF_VOCAB.items())))
    folder = _write_hf_folder(
        hf, tmp_path, "safetensors", vocab=shuffled, preprocessor={"do_normalize": True, "sampling_rate": 8000}
    )
    model = load_model(folder / "config.json")
    assert model.labels == tuple(HF_VOCAB)  # sorted by id, not file order
    assert (model.blank, model.sample_rate, model.normalize_waveform) == (3, 8000, True)


def test_huggingface_round_trips_to_own_format(tmp_path, waveform):
    model = load_model(_write_hf_folder(_hf_model("hubert", "layer"), tmp_path / "hf", "safetensors"))
    again = load_model(save_model(model, tmp_path / "own"))
    assert again.labels == model.labels and again.normalize_waveform
    torch.testing.assert_close(_logits(again, waveform), _logits(model, waveform), rtol=0, atol=0)


def test_huggingface_errors(tmp_path):
    folder = _write_hf_folder(_hf_model("wav2vec2", "group"), tmp_path, "safetensors")
    (folder / "vocab.json").unlink()
    with pytest.raises(ModelError, match="has no vocab.json"):
        load_model(folder)

    (folder / "vocab.json").write_text(json.dumps({"<pad>": 0, "a": 99}))
    with pytest.raises(ModelError, match=r"token 'a' has id 99, but the model has only 10 outputs"):
        load_model(folder)

    (folder / "vocab.json").write_text(json.dumps(HF_VOCAB))
    state = load_file(folder / "model.safetensors")
    save_file({k: v for k, v in state.items() if not k.startswith("lm_head.")}, folder / "model.safetensors")
    with pytest.raises(ModelError, match="no lm_head weights; not a CTC model"):
        load_model(folder)

    save_file({**state, "wav2vec2.adapter.proj.weight": torch.zeros(2)}, folder / "model.safetensors")
    with pytest.raises(ModelError, match=r"model.safetensors: unexpected weights wav2vec2.adapter.proj.weight"):
        load_model(folder)

    (folder / "model.safetensors").unlink()
    with pytest.raises(ModelError, match="has config.json but no weights"):
        load_model(folder)

    config = json.loads((folder / "config.json").read_text())
    (folder / "config.json").write_text(json.dumps({**config, "model_type": "wavlm"}))
    with pytest.raises(ModelError, match="model_type 'wavlm' is not supported"):
        load_model(folder)


def test_aligner_model_environment_variable_sets_the_default(tmp_path, monkeypatch):
    from aligner.models.loading import save_model
    from aligner.testing import tiny_model

    folder = save_model(tiny_model(name="from-env"), tmp_path / "env-model")
    monkeypatch.setenv("ALIGNER_MODEL", str(folder))
    assert load_model().name == "from-env"
    monkeypatch.setenv("ALIGNER_MODEL", "no_such_model_anywhere")
    with pytest.raises(ModelError, match="no_such_model_anywhere"):
        load_model()


def test_the_registry_matches_torchaudio_and_needs_no_torch(monkeypatch, tmp_path):
    """The checkpoint names listed without importing torch are torchaudio's
    own (a torchaudio that renames them fails here), and the cache folder is
    torch's rule from the environment."""
    import subprocess
    import sys

    from aligner.models import registry

    for name in registry.BUNDLE_NAMES:
        assert registry.BUNDLES[name][1] == getattr(torchaudio.pipelines, name)._path, name
    code = (
        "import sys, aligner.models.registry as r; infos = r.list_models(); "
        "print(len(infos), 'torch' in sys.modules, r.hub_dir())"
    )
    env = {**os.environ, "TORCH_HOME": str(tmp_path / "th"), "ALIGNER_MODEL": "MMS_FA"}
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, env=env, check=True).stdout
    assert out.split() == [str(1 + len(registry.BUNDLE_NAMES)), "False", str(tmp_path / "th" / "hub")]
    monkeypatch.setenv("ALIGNER_MODEL", "MMS_FA")
    assert [info.name for info in registry.list_models() if info.default] == ["MMS_FA"]
