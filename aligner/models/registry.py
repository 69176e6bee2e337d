"""Which models exist and where their weights are, without importing torch.

``aligner models`` and :func:`list_models` read only this module (a
listing takes well under a second); :mod:`aligner.models.loading` loads them.
Bundle checkpoints are cached where torchaudio's own download puts them
(``torch.hub.load_state_dict_from_url``): ``$TORCH_HOME/hub/checkpoints``,
by default ``~/.cache/torch/hub/checkpoints``. The checkpoint names below
are those of the pinned torchaudio (2.11); a test compares them with
torchaudio's bundles, so a torchaudio that changes them fails loudly.
"""

from __future__ import annotations

import os
import sys
import urllib.parse
from dataclasses import dataclass
from pathlib import Path

from ._torchaudio_compat import CHECKPOINT_URL

__all__ = [
    "BUNDLES",
    "BUNDLE_NAMES",
    "CONFIG_FILE",
    "DEFAULT_MODEL",
    "ModelInfo",
    "PACKAGED_MODEL",
    "PACKAGED_NAME",
    "WEIGHTS_FILE",
    "checkpoint_location",
    "hub_dir",
    "list_models",
]

#: Name of the English phone model shipped inside the package (MODEL.md).
PACKAGED_NAME = "TRELLIS_EN_PHONES"
#: Its folder, in the project's own format.
PACKAGED_MODEL = Path(__file__).resolve().parent / "en-phones"

#: The model used when none is given: the packaged model (works offline).
DEFAULT_MODEL = PACKAGED_NAME

#: Name of the config file of the project's own model format.
CONFIG_FILE = "aligner_model.json"
#: Name of the weights file of the project's own model format.
WEIGHTS_FILE = "model.safetensors"

#: torchaudio bundles: name -> (one line for people, checkpoint path or URL as torchaudio has it).
BUNDLES: dict[str, tuple[str, str]] = {
    "WAV2VEC2_ASR_BASE_960H": (
        "wav2vec 2.0 base (95M), fine-tuned on LibriSpeech 960 h; English letters",
        "wav2vec2_fairseq_base_ls960_asr_ls960.pth",
    ),
    "WAV2VEC2_ASR_LARGE_960H": (
        "wav2vec 2.0 large (317M), fine-tuned on LibriSpeech 960 h; English letters",
        "wav2vec2_fairseq_large_ls960_asr_ls960.pth",
    ),
    "WAV2VEC2_ASR_LARGE_LV60K_960H": (
        "wav2vec 2.0 large (317M), Libri-Light 60k h + LibriSpeech 960 h; English letters",
        "wav2vec2_fairseq_large_lv60k_asr_ls960.pth",
    ),
    "HUBERT_ASR_LARGE": (
        "HuBERT large (316M), Libri-Light 60k h + LibriSpeech 960 h; English letters",
        "hubert_fairseq_large_ll60k_asr_ls960.pth",
    ),
    "HUBERT_ASR_XLARGE": (
        "HuBERT extra large (964M), Libri-Light 60k h + LibriSpeech 960 h; English letters",
        "hubert_fairseq_xlarge_ll60k_asr_ls960.pth",
    ),
    "VOXPOPULI_ASR_BASE_10K_EN": (
        "wav2vec 2.0 base, VoxPopuli 10k h, fine-tuned on English; lower-case letters (CC BY-NC 4.0)",
        "wav2vec2_voxpopuli_base_10k_asr_en.pt",
    ),
    "VOXPOPULI_ASR_BASE_10K_DE": (
        "wav2vec 2.0 base, VoxPopuli 10k h, fine-tuned on German; lower-case letters (CC BY-NC 4.0)",
        "wav2vec2_voxpopuli_base_10k_asr_de.pt",
    ),
    "VOXPOPULI_ASR_BASE_10K_FR": (
        "wav2vec 2.0 base, VoxPopuli 10k h, fine-tuned on French; lower-case letters (CC BY-NC 4.0)",
        "wav2vec2_voxpopuli_base_10k_asr_fr.pt",
    ),
    "VOXPOPULI_ASR_BASE_10K_ES": (
        "wav2vec 2.0 base, VoxPopuli 10k h, fine-tuned on Spanish; lower-case letters (CC BY-NC 4.0)",
        "wav2vec2_voxpopuli_base_10k_asr_es.pt",
    ),
    "VOXPOPULI_ASR_BASE_10K_IT": (
        "wav2vec 2.0 base, VoxPopuli 10k h, fine-tuned on Italian; lower-case letters (CC BY-NC 4.0)",
        "wav2vec2_voxpopuli_base_10k_asr_it.pt",
    ),
    "MMS_FA": (
        "MMS forced-alignment model (wav2vec 2.0, 300M), 1,130 languages; romanized (uroman) "
        "lower-case letters, no word separator (CC BY-NC 4.0)",
        "https://dl.fbaipublicfiles.com/mms/torchaudio/ctc_alignment_mling_uroman/model.pt",
    ),
}

#: torchaudio bundles :func:`aligner.load_model` accepts (case-insensitive).
BUNDLE_NAMES: tuple[str, ...] = tuple(BUNDLES)


@dataclass(frozen=True)
class ModelInfo:
    """One entry of :func:`list_models`.

    Attributes:
        name: the spec to pass to :func:`aligner.load_model`.
        kind: ``"torchaudio"`` (bundle), ``"trellis-align"`` or ``"huggingface"``
            (folders).
        description: one line for humans.
        available: True when it loads without network access.
        location: local path of the weights (for bundles: where the checkpoint
            is or will be cached).
        url: where a bundle's checkpoint is downloaded from (None for folders).
        default: True for :data:`DEFAULT_MODEL`.
    """

    name: str
    kind: str
    description: str
    available: bool
    location: str
    url: str | None = None
    default: bool = False


def hub_dir() -> Path:
    """torch's hub folder: ``torch.hub.get_dir()`` when torch is already
    imported (it honours ``torch.hub.set_dir``), else the same rule from the
    environment (``$TORCH_HOME/hub``, ``$XDG_CACHE_HOME/torch/hub``,
    ``~/.cache/torch/hub``) without importing torch."""
    if "torch" in sys.modules:
        return Path(sys.modules["torch"].hub.get_dir())
    torch_home = os.getenv("TORCH_HOME") or os.path.join(os.getenv("XDG_CACHE_HOME") or "~/.cache", "torch")
    return Path(os.path.expanduser(torch_home)) / "hub"


def checkpoint_location(name: str) -> tuple[str, str, Path]:
    """``(file name, download URL, cache folder)`` of a bundle's checkpoint,
    computed the way torchaudio and ``torch.hub.load_state_dict_from_url`` do."""
    path = BUNDLES[name][1]
    url = path if path.startswith("https") else CHECKPOINT_URL.format(path=path)
    file_name = os.path.basename(urllib.parse.urlparse(url).path)
    return file_name, url, hub_dir() / "checkpoints"


def _folder_info(path: Path) -> ModelInfo:
    if (path / CONFIG_FILE).is_file() or path.name == CONFIG_FILE:
        kind = "trellis-align"
    elif (path / "config.json").is_file():
        kind = "huggingface"
    else:
        kind = "folder"
    return ModelInfo(
        name=str(path),
        kind=kind,
        description="default model (local folder)",
        available=path.exists(),
        location=str(path),
        default=True,
    )


def list_models() -> list[ModelInfo]:
    """Every known bundle, with whether its checkpoint is cached, plus the
    default (``$ALIGNER_MODEL`` when set, as :func:`aligner.load_model` uses it).

    Looks only at the local cache; never downloads; never imports torch.
    """
    default = os.environ.get("ALIGNER_MODEL") or DEFAULT_MODEL
    infos = [
        ModelInfo(
            name=PACKAGED_NAME,
            kind="trellis-align",
            description="English phone model shipped with the package (MODEL.md)",
            available=(PACKAGED_MODEL / CONFIG_FILE).is_file(),
            location=str(PACKAGED_MODEL),
            default=default.upper() == PACKAGED_NAME,
        )
    ]
    for name, (description, _) in BUNDLES.items():
        file_name, url, cache = checkpoint_location(name)
        path = cache / file_name
        infos.append(
            ModelInfo(
                name=name,
                kind="torchaudio",
                description=description,
                available=path.is_file(),
                location=str(path),
                url=url,
                default=name == default.upper(),
            )
        )
    if default.upper() not in BUNDLES and default.upper() != PACKAGED_NAME:
        infos.append(_folder_info(Path(default)))
    return infos
