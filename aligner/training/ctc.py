"""CTC training of torchaudio wav2vec 2.0 models on a corpus folder.

``train(corpus_dir, model_dir)`` trains a model from scratch with a named
configuration (:mod:`aligner.training.configs`) or fine-tunes any model
:func:`aligner.load_model` accepts (``init=``), and leaves in ``model_dir``

* the best model on the held-out dev split (lowest CTC loss plus
  ``timing_weight`` times the timing loss), in the project's own format
  (``aligner_model.json`` + ``model.safetensors``), so ``model_dir`` works
  with ``load_model(model_dir)`` and ``aligner align --model model_dir``;
* ``training_state.pt``: everything needed to continue (``resume=True``):
  network, optimizer, scheduler (and the gradient scaler of float16 CUDA
  training), step, epoch, position in the epoch, RNG
  states, configuration, dev split and history; written atomically after
  every evaluation, every ``save_every`` steps, at the end and on Ctrl-C;
* ``training_log.jsonl``: one JSON object per line: the command line and
  options of each (re)start, then the metrics of every evaluation.

Corpus layout (as for Montreal Forced Aligner and ``aligner align``): audio
files (wav, flac, mp3, ogg, opus; any rate, resampled to the model's) with a
transcript of the same name and a ``.txt`` or ``.lab`` extension beside them,
optionally in speaker subfolders. A same-name ``.TextGrid`` with a ``words``
tier gives exact word timings for the optional timing loss.

Training: utterances sorted by duration are packed into batches of at most
``batch_seconds`` of padded audio, whose order is shuffled every epoch
(deterministic for a seed); AdamW with linear warm-up and cosine (or linear)
decay; gradient clipping; ``torch.nn.functional.ctc_loss`` per target token;
optional SpecAugment-style time masking of the convolutional features; and
the timing loss (:func:`timing_loss`) weighted by ``timing_weight``. After
every epoch (and every ``eval_every`` steps) the dev split is scored: CTC
loss per token and the greedy character error rate.

Resuming with the same arguments gives the same weights as an uninterrupted
run (on the same device and thread count).
"""

from __future__ import annotations

import json
import math
import os
import random
import shlex
import sys
import time
import warnings
from collections import defaultdict
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, cast

import torch
import torch.nn.functional as F
from torch import nn
from torch.utils.data import DataLoader, Dataset
from torchaudio.models import Wav2Vec2Model

from ..atomic import atomic_path
from ..audio import load_audio
from ..corpus.files import AUDIO_EXTENSIONS, CorpusFile, bucket_batches, find_corpus_files
from ..errors import AudioError, CorpusError, OutputError, TextGridError, TrainingError, TranscriptError
from ..models.alignment_model import AlignmentModel
from ..models.emissions import conv_features, num_frames, resolve_device
from ..models.loading import CONFIG_FILE, WEIGHTS_FILE, architecture_of, build_from_architecture, load_model, save_model
from ..readers import read_tiers
from ..text import ENGLISH_LABELS, UnrepresentableCharacterWarning, read_transcript, transcript_for_model
from ..viterbi import minimum_frames
from ._amp import grad_scaler, optimizer_step
from .configs import CONFIG_NAMES, CONFIGS, TrainConfig, get_config

__all__ = [
    "AUDIO_EXTENSIONS",
    "CONFIGS",
    "CONFIG_NAMES",
    "CorpusError",
    "CorpusFile",
    "LOG_FILE",
    "STATE_FILE",
    "SkippedUtterancesWarning",
    "TrainConfig",
    "TrainResult",
    "TrainingError",
    "bucket_batches",
    "character_error_rate",
    "edit_distance",
    "find_corpus_files",
    "greedy_decode",
    "time_mask",
    "timing_loss",
    "train",
]

#: Training state file in the model folder.
STATE_FILE = "training_state.pt"
#: Metrics log in the model folder.
LOG_FILE = "training_log.jsonl"
#: Word-tier marks that mean silence in a TextGrid.
SILENCE_MARKS = frozenset({"", "sil", "sp", "<sil>", "<eps>", "<p:>", "#"})
#: Frames on each side of a word that are neither word nor silence for the timing loss.
SILENCE_MARGIN_FRAMES = 1

_STATE_VERSION = 1


class SkippedUtterancesWarning(UserWarning):
    """Some utterances of the corpus are unusable for training and were skipped."""


# ---------------------------------------------------------------------------
# Corpus
# ---------------------------------------------------------------------------


@dataclass
class _Utterance:
    """A usable training utterance (mutable only for the audio cache)."""

    key: str
    audio: Path
    num_samples: int
    num_frames: int
    targets: tuple[int, ...]
    # (start frame, end frame, first token or -1) per word, or None without timings
    words: tuple[tuple[int, int, int], ...] | None
    waveform: torch.Tensor | None = None

    def seconds(self, sample_rate: int) -> float:
        return self.num_samples / sample_rate


class _DecodeDataset(Dataset):
    """Decodes and resamples audio files (used with DataLoader workers)."""

    def __init__(self, paths: Sequence[Path], sample_rate: int) -> None:
        self.paths = list(paths)
        self.sample_rate = sample_rate

    def __len__(self) -> int:
        return len(self.paths)

    def __getitem__(self, index: int) -> tuple[int, torch.Tensor | None, str | None]:
        try:
            return index, load_audio(self.paths[index], self.sample_rate), None
        except AudioError as error:
            return index, None, str(error)


def _identity(item: Any) -> Any:
    return item


@dataclass(frozen=True)
class _Labels:
    """What the text stage and the losses need to know about the labels."""

    labels: tuple[str, ...]
    blank: int
    separator: str | None
    star: str | None  # only when the network has a star column
    phonemizer: str | None = None  # phone models: how transcripts become phones

    @property
    def separator_id(self) -> int | None:
        return None if self.separator is None else self.labels.index(self.separator)


def _targets_for(
    text: str, labels: _Labels, language: str, source: str, dropped: set[str]
) -> tuple[list[int], list[tuple[int, ...]]]:
    """Target ids of a transcript (phones for a phone model) and the tokens
    of each original word."""
    transcript, _ = transcript_for_model(text, labels, language=language, source=source)  # type: ignore[arg-type]
    dropped.update(transcript.dropped)
    targets, _ = transcript.targets(labels.separator_id)
    return targets, [w.tokens for w in transcript.words]


def _read_word_intervals(path: Path) -> list[tuple[float, float]] | str:
    """Start and end (seconds) of the non-silent intervals of the ``words``
    tier, or a reason why there are none."""
    try:
        tiers = [t for t in read_tiers(path) if t.is_interval]
    except TextGridError as error:
        return f"unreadable ({type(error).__name__})"
    tier = next((t for t in tiers if t.name.strip().lower() in ("words", "word")), None)
    if tier is None:
        return "no 'words' interval tier"
    return [(start, end) for start, end, label in tier.items if label.strip().lower() not in SILENCE_MARKS]


def _word_frames(
    intervals: list[tuple[float, float]], word_tokens: list[tuple[int, ...]], frames: int, frame_seconds: float
) -> tuple[tuple[int, int, int], ...] | str:
    """Word intervals in frames with their first token, or a reason for none."""
    if len(intervals) != len(word_tokens):
        return "word count differs from the transcript"
    words = []
    for (start, end), tokens in zip(intervals, word_tokens):
        first = min(frames - 1, max(0, int(math.floor(start / frame_seconds))))
        last = min(frames, max(first + 1, int(math.ceil(end / frame_seconds))))
        words.append((first, last, tokens[0] if tokens else -1))
    return tuple(words)


def _prepare_corpus(
    files: Sequence[CorpusFile],
    labels: _Labels,
    *,
    sample_rate: int,
    frames_of: Callable[[int], int],
    frame_seconds: float,
    language: str,
    max_seconds: float,
    use_timing: bool,
    workers: int,
    cache_bytes: float,
    progress: bool,
) -> tuple[list[_Utterance], dict[str, list[str]], dict[str, list[str]]]:
    """Read, check and (within ``cache_bytes``) cache every utterance.

    Returns ``(utterances, skipped, timing_problems)``: the two dicts map a
    reason to the keys it applies to.
    """
    from tqdm import tqdm

    skipped: dict[str, list[str]] = defaultdict(list)
    timing_problems: dict[str, list[str]] = defaultdict(list)
    dropped: set[str] = set()
    candidates = []
    texts = {}
    for item in files:
        if item.transcript is None:
            skipped["no transcript"].append(item.key)
            continue
        try:
            texts[item.key] = read_transcript(item.transcript)
        except TranscriptError:
            skipped["unreadable transcript"].append(item.key)
            continue
        candidates.append(item)
    if not candidates:
        raise CorpusError(
            f"none of the {len(files)} audio files in the corpus has a transcript beside it "
            f"(a .txt or .lab file with the same name), e.g. {files[0].key}"
        )
    loader = DataLoader(
        _DecodeDataset([c.audio for c in candidates], sample_rate),
        batch_size=None,
        num_workers=workers,
        collate_fn=_identity,
        generator=torch.Generator().manual_seed(0),
    )
    utterances = []
    cached = 0
    for index, waveform, _error in tqdm(
        loader, total=len(candidates), desc="reading corpus", unit="file", disable=not progress, leave=False
    ):
        item = candidates[index]
        if waveform is None:
            skipped["unreadable audio"].append(item.key)
            continue
        samples = int(waveform.shape[-1])
        if samples / sample_rate > max_seconds:
            skipped[f"longer than {max_seconds:g} s"].append(item.key)
            continue
        try:
            targets, word_tokens = _targets_for(texts[item.key], labels, language, str(item.transcript), dropped)
        except TranscriptError:
            skipped["transcript with nothing the model can represent"].append(item.key)
            continue
        frames = frames_of(samples)
        if frames < 1 or minimum_frames(targets) > frames:
            skipped["transcript too long for the audio"].append(item.key)
            continue
        words = None
        if use_timing and item.textgrid is not None:
            intervals = _read_word_intervals(item.textgrid)
            words_or_reason = (
                intervals if isinstance(intervals, str) else _word_frames(intervals, word_tokens, frames, frame_seconds)
            )
            if isinstance(words_or_reason, str):
                timing_problems[words_or_reason].append(item.key)
            else:
                words = words_or_reason
        size = waveform.numel() * waveform.element_size()
        keep = cached + size <= cache_bytes
        cached += size if keep else 0
        utterances.append(
            _Utterance(item.key, item.audio, samples, frames, tuple(targets), words, waveform.clone() if keep else None)
        )
    if dropped:
        warnings.warn(
            "corpus transcripts: dropped characters the model cannot represent: "
            + ", ".join(repr(c) for c in sorted(dropped)),
            UnrepresentableCharacterWarning,
            stacklevel=3,
        )
    return utterances, dict(skipped), dict(timing_problems)


def _summary(problems: Mapping[str, list[str]], limit: int = 3) -> str:
    parts = []
    for reason, keys in problems.items():
        shown = ", ".join(keys[:limit]) + (", ..." if len(keys) > limit else "")
        parts.append(f"{len(keys)} {reason} ({shown})")
    return "; ".join(parts)


def _split(keys: Sequence[str], fraction: float, seed: int) -> set[str]:
    """The dev keys: a seeded random ``fraction`` of ``keys`` (at least one
    when ``fraction > 0`` and there are two or more keys; never all)."""
    if fraction <= 0 or len(keys) < 2:
        return set()
    count = min(len(keys) - 1, max(1, round(fraction * len(keys))))
    order = sorted(keys)
    random.Random(seed).shuffle(order)
    return set(order[:count])


# ---------------------------------------------------------------------------
# Batches, losses, metrics
# ---------------------------------------------------------------------------


def _epoch_batches(batches: Sequence[list[int]], seed: int, epoch: int, sortagrad: bool) -> list[list[int]]:
    """The batches of one epoch: shuffled (seeded by ``seed`` and ``epoch``),
    or shortest first in epoch 0 with ``sortagrad``."""
    order = [list(b) for b in batches]
    if not (sortagrad and epoch == 0):
        random.Random(seed * 1_000_003 + epoch).shuffle(order)
    return order


def time_mask(features: torch.Tensor, prob: float, length: int) -> torch.Tensor:
    """SpecAugment-style time masking: each frame starts a run of ``length``
    zeroed frames with probability ``prob`` (torch's global RNG).

    Args:
        features: Shape: ``(batch, frames, channels)``.

    Returns:
        A new tensor of the same shape (the input is not modified).
    """
    if prob <= 0 or length < 1:
        return features
    starts = (torch.rand(features.shape[:2], device=features.device) < prob).float()
    spread = F.max_pool1d(F.pad(starts[:, None], (length - 1, 0)), length, stride=1)[:, 0]
    return features.masked_fill(spread[..., None] > 0, 0.0)


def timing_loss(
    log_probs: torch.Tensor,
    lengths: torch.Tensor,
    words: Sequence[Sequence[tuple[int, int, int]] | None],
    *,
    blank: int,
    separator: int | None,
) -> torch.Tensor | None:
    """Frame-level cross-entropy that anchors CTC emissions to known word timings.

    Two terms, each a mean over the frames it applies to in the batch:

    * **anchor**: at the frame where a word starts, ``-log p(first token of
      the word)``; this pulls each word's first CTC spike onto its start;
    * **silence**: on every frame outside all words (by more than
      :data:`SILENCE_MARGIN_FRAMES`), ``-log(p(blank) + p(separator))``;
      this keeps characters from drifting into pauses.

    Args:
        log_probs: Shape: ``(batch, frames, classes)``.
        lengths: valid frames per item. Shape: ``(batch,)``.
        words: per item, ``(start_frame, end_frame, first_token)`` of every
            word (``first_token`` -1 for a word without tokens: it counts
            as speech but has no anchor), or None for an item without timings.
        blank: blank id; separator: separator id or None.

    Returns:
        The sum of both terms (a term without frames counts 0), or None when
        no item has timings.
    """
    rows, frames, tokens = [], [], []
    silence = torch.zeros(log_probs.shape[:2], dtype=torch.bool)
    any_timing = False
    for row, item in enumerate(words):
        if item is None:
            continue
        any_timing = True
        valid = int(lengths[row])
        speech = torch.zeros(valid, dtype=torch.bool)
        for start, end, token in item:
            speech[max(0, start - SILENCE_MARGIN_FRAMES) : end + SILENCE_MARGIN_FRAMES] = True
            if token >= 0 and start < valid:
                rows.append(row)
                frames.append(start)
                tokens.append(token)
        silence[row, :valid] = ~speech
    if not any_timing:
        return None
    total = log_probs.new_zeros(())
    if rows:
        device = log_probs.device
        picked = log_probs[
            torch.tensor(rows, device=device), torch.tensor(frames, device=device), torch.tensor(tokens, device=device)
        ]
        total = total - picked.mean()
    silence = silence.to(log_probs.device)
    if bool(silence.any()):
        quiet = [blank] if separator is None else [blank, separator]
        quiet_log_prob = torch.logsumexp(log_probs[..., quiet], dim=-1)
        total = total - quiet_log_prob[silence].mean()
    return total


def greedy_decode(log_probs: torch.Tensor, blank: int = 0) -> list[int]:
    """Best-path CTC decoding: argmax per frame, merge repeats, drop blanks.

    Args:
        log_probs: Shape: ``(frames, classes)``.
    """
    best = log_probs.argmax(dim=-1).tolist()
    out, previous = [], None
    for token in best:
        if token != previous and token != blank:
            out.append(token)
        previous = token
    return out


def edit_distance(a: Sequence[Any], b: Sequence[Any]) -> int:
    """Levenshtein distance (insertions, deletions, substitutions cost 1)."""
    if len(a) < len(b):
        a, b = b, a
    previous = list(range(len(b) + 1))
    for i, x in enumerate(a, 1):
        current = [i]
        for j, y in enumerate(b, 1):
            current.append(min(previous[j] + 1, current[j - 1] + 1, previous[j - 1] + (x != y)))
        previous = current
    return previous[-1]


def character_error_rate(hypotheses: Iterable[Sequence[Any]], references: Iterable[Sequence[Any]]) -> float:
    """Total edit distance over total reference length (0.0 for no reference)."""
    edits = total = 0
    for hyp, ref in zip(hypotheses, references):
        edits += edit_distance(hyp, ref)
        total += len(ref)
    return edits / total if total else 0.0


# ---------------------------------------------------------------------------
# Network
# ---------------------------------------------------------------------------


def _dropouts(config: TrainConfig) -> dict[str, float]:
    return dict(
        encoder_projection_dropout=config.projection_dropout,
        encoder_attention_dropout=config.attention_dropout,
        encoder_ff_interm_dropout=config.ff_dropout,
        encoder_dropout=config.encoder_dropout,
        encoder_layer_drop=config.layer_drop,
    )


def _new_network(
    config: TrainConfig, init: Any, labels: Sequence[str] | None, name: str
) -> tuple[Wav2Vec2Model, dict[str, Any]]:
    """The network to train and its metadata (labels etc., see :func:`_model_of`)."""
    if init is not None:
        base = load_model(init)
        architecture = {**architecture_of(base.model), **_dropouts(config)}
        net = build_from_architecture(architecture, error=TrainingError)
        net.load_state_dict(base.model.state_dict())
        meta = dict(
            labels=list(base.labels),
            sample_rate=int(base.sample_rate),
            blank=int(base.blank),
            separator=base.separator,
            star=base.star,
            normalize_waveform=bool(base.normalize_waveform),
            append_star=bool(base.append_star),
            phonetic=bool(base.phonetic),
            phonemizer=base.phonemizer,
            init=base.name,
        )
    else:
        if not config.architecture:
            raise TrainingError(
                f"training config {config.name!r} has no architecture: it is for "
                "fine-tuning and needs init= (--init) naming a pretrained model"
            )
        labels = tuple(labels) if labels is not None else ENGLISH_LABELS
        if len(labels) < 2 or len(set(labels)) != len(labels):
            raise TrainingError("labels must be at least two distinct strings (blank first)")
        architecture = {**config.architecture, **_dropouts(config), "aux_num_out": len(labels)}
        net = build_from_architecture(architecture, error=TrainingError)
        meta = dict(
            labels=list(labels),
            sample_rate=16000,
            blank=0,
            separator="|" if "|" in labels else None,
            star=None,
            normalize_waveform=bool(config.normalize_waveform),
            append_star=False,
            phonetic=False,
            init=None,
        )
    if net.aux is None:
        raise TrainingError("the initial model has no CTC output layer")
    meta["architecture"] = _jsonable_architecture(architecture)
    meta["name"] = name
    return net, meta


def _jsonable_architecture(architecture: Mapping[str, Any]) -> dict[str, Any]:
    data = dict(architecture)
    data["extractor_conv_layer_config"] = [list(x) for x in data["extractor_conv_layer_config"]]
    return data


def _model_of(net: Wav2Vec2Model, meta: Mapping[str, Any]) -> AlignmentModel:
    # A phone model keeps its phonemizer, but not its end_extension: CTC
    # training makes its emissions peaky, so the aligner's default applies.
    return AlignmentModel(
        model=net,
        labels=tuple(meta["labels"]),
        sample_rate=int(meta["sample_rate"]),
        name=str(meta["name"]),
        blank=int(meta["blank"]),
        separator=meta["separator"],
        star=meta["star"],
        normalize_waveform=bool(meta["normalize_waveform"]),
        append_star=bool(meta["append_star"]),
        phonetic=bool(meta["phonetic"]),
        phonemizer=meta.get("phonemizer"),
    )


def _forward(
    net: Wav2Vec2Model,
    waveforms: Sequence[torch.Tensor],
    *,
    normalize: bool,
    device: torch.device,
    autocast_dtype: torch.dtype | None,
    freeze_extractor: bool,
    mask_prob: float = 0.0,
    mask_length: int = 0,
) -> tuple[torch.Tensor, torch.Tensor]:
    """Network output for a list of waveforms.

    Args:
        waveforms: each of shape ``(samples,)``.

    Returns:
        ``(log_probs, lengths)``: float32 log-probabilities over the
        network's classes, Shape: ``(batch, frames, classes)``; valid frames,
        Shape: ``(batch,)``.
    """
    items = [w.to(device, torch.float32) for w in waveforms]
    autocast = torch.autocast(device.type, dtype=autocast_dtype or torch.float32, enabled=autocast_dtype is not None)
    with autocast:
        with torch.set_grad_enabled(torch.is_grad_enabled() and not freeze_extractor):
            features, out_lengths = conv_features(net, items, normalize=normalize)
        if net.training and mask_prob > 0:
            features = time_mask(features, mask_prob, mask_length)
        x = net.encoder(features, out_lengths)
        logits = net.aux(x)
    return torch.log_softmax(logits.float(), dim=-1), out_lengths


# ---------------------------------------------------------------------------
# Schedule, optimizer, checkpoints
# ---------------------------------------------------------------------------


def _lr_factor(step: int, total: int, config: TrainConfig) -> float:
    """Learning-rate multiplier at optimizer step ``step`` (0-based)."""
    warmup = max(1, round(config.warmup_fraction * total)) if config.warmup_fraction > 0 else 0
    if step < warmup:
        return (step + 1) / warmup
    progress = min(1.0, (step - warmup) / max(1, total - warmup))
    low = config.min_lr_ratio
    if config.schedule == "linear":
        return 1.0 - (1.0 - low) * progress
    return low + (1.0 - low) * 0.5 * (1.0 + math.cos(math.pi * progress))


def _optimizer(net: nn.Module, config: TrainConfig) -> torch.optim.Optimizer:
    decay: list[nn.Parameter] = []
    no_decay: list[nn.Parameter] = []
    for param in net.parameters():
        if param.requires_grad:
            (decay if param.ndim >= 2 else no_decay).append(param)
    groups = [{"params": decay, "weight_decay": config.weight_decay}, {"params": no_decay, "weight_decay": 0.0}]
    betas = cast("tuple[float, float]", tuple(config.betas))
    return torch.optim.AdamW(groups, lr=config.lr, betas=betas, eps=config.eps)


def _rng_state(device: torch.device) -> dict[str, Any]:
    state = {"torch": torch.get_rng_state()}
    if device.type == "cuda":
        state["cuda"] = torch.cuda.get_rng_state(device)
    return state


def _set_rng_state(state: Mapping[str, Any], device: torch.device) -> None:
    torch.set_rng_state(state["torch"])
    if device.type == "cuda" and "cuda" in state:
        torch.cuda.set_rng_state(state["cuda"], device)


def _save_state(path: Path, state: Mapping[str, Any]) -> None:
    with atomic_path(path) as temporary:
        torch.save(dict(state), temporary)


def _load_state(path: Path) -> dict[str, Any]:
    if not path.is_file():
        raise TrainingError(f"cannot resume: {path} does not exist (start without --resume)")
    try:
        state = torch.load(path, map_location="cpu", weights_only=True)
    except Exception as error:  # noqa: BLE001 - zip, pickle and torch errors alike
        raise TrainingError(f"cannot resume: {path} is unreadable ({type(error).__name__}: {error})") from error
    if not isinstance(state, dict) or state.get("version") != _STATE_VERSION:
        raise TrainingError(f"cannot resume: {path} is not a training state of this version")
    return state


def _save_best(model: AlignmentModel, model_dir: Path) -> None:
    """Write the model into ``model_dir`` file by file with atomic renames."""
    staging = model_dir / ".best-model.tmp"
    save_model(model, staging)
    try:
        os.replace(staging / WEIGHTS_FILE, model_dir / WEIGHTS_FILE)
        os.replace(staging / CONFIG_FILE, model_dir / CONFIG_FILE)
        staging.rmdir()
    except OSError as error:
        raise OutputError(f"cannot write the model into {model_dir}: {error}") from error


def _append_log(path: Path, record: Mapping[str, Any]) -> None:
    try:
        with open(path, "a", encoding="utf-8") as log:
            log.write(json.dumps(record, ensure_ascii=False) + "\n")
    except OSError as error:
        raise OutputError(f"cannot write the training log {path}: {error}") from error


# ---------------------------------------------------------------------------
# Training
# ---------------------------------------------------------------------------


@dataclass(frozen=True)
class TrainResult:
    """What :func:`train` did.

    Attributes:
        model_dir: the model folder (loadable with ``load_model``).
        config: the effective configuration (with ``lr`` overrides).
        steps: optimizer steps done in total (before a resume included).
        epochs_completed: full passes over the training split.
        train_losses: loss of every step run by this call (CTC per target
            token, plus ``timing_weight`` times the timing loss).
        history: one record per evaluation, as in ``training_log.jsonl``.
        best_step, best_dev_loss, best_dev_cer: the saved model's step and
            dev metrics (None without a dev split). The saved model is the
            one with the lowest ``dev_objective``: dev CTC loss plus
            ``timing_weight`` times the dev timing loss.
        num_train, num_dev: utterances in each split.
        train_audio_seconds: audio in the training split.
        skipped: unusable utterances per reason.
        parameters: trainable parameters of the network.
        elapsed: wall-clock seconds of this call.
    """

    model_dir: Path
    config: TrainConfig
    steps: int
    epochs_completed: int
    train_losses: tuple[float, ...]
    history: tuple[dict, ...]
    best_step: int | None
    best_dev_loss: float | None
    best_dev_cer: float | None
    num_train: int
    num_dev: int
    train_audio_seconds: float
    skipped: Mapping[str, int] = field(default_factory=dict)
    parameters: int = 0
    elapsed: float = 0.0


def _check_options(**options: Any) -> None:
    rules = {
        "epochs": lambda v: isinstance(v, int) and v >= 1,
        "max_steps": lambda v: isinstance(v, int) and v >= 1,
        "batch_seconds": lambda v: v > 0,
        "lr": lambda v: v > 0,
        "dev_fraction": lambda v: 0 <= v < 1,
        "timing_weight": lambda v: v >= 0,
        "threads": lambda v: isinstance(v, int) and v >= 1,
        "workers": lambda v: isinstance(v, int) and v >= 0,
        "eval_every": lambda v: isinstance(v, int) and v >= 1,
        "save_every": lambda v: isinstance(v, int) and v >= 1,
        "cache_gb": lambda v: v >= 0,
    }
    wants = {
        "epochs": "an integer >= 1",
        "max_steps": "an integer >= 1",
        "batch_seconds": "> 0",
        "lr": "> 0",
        "dev_fraction": "in [0, 1)",
        "timing_weight": ">= 0",
        "threads": "an integer >= 1",
        "workers": "an integer >= 0",
        "eval_every": "an integer >= 1",
        "save_every": "an integer >= 1",
        "cache_gb": ">= 0",
    }
    for key, value in options.items():
        if value is None:
            continue
        ok = False
        try:
            ok = not isinstance(value, bool) and bool(rules[key](value))
            if isinstance(value, float) and not math.isfinite(value):
                ok = False
        except TypeError:
            ok = False
        if not ok:
            raise TrainingError(f"invalid training option {key}={value!r}: must be {wants[key]}")


def train(
    corpus_dir: str | os.PathLike,
    model_dir: str | os.PathLike,
    *,
    config: str | TrainConfig | None = None,
    init: Any = None,
    epochs: int | None = None,
    max_steps: int | None = None,
    batch_seconds: float | None = None,
    lr: float | None = None,
    device: str | torch.device | None = None,
    resume: bool = False,
    overwrite: bool = False,
    seed: int | None = None,
    dev_fraction: float | None = None,
    timing_weight: float | None = None,
    threads: int | None = None,
    workers: int | None = None,
    eval_every: int | None = None,
    save_every: int | None = None,
    labels: Sequence[str] | None = None,
    language: str = "en",
    name: str | None = None,
    cache_gb: float = 2.0,
    progress: bool = True,
    callback: Callable[[int, float], None] | None = None,
    command: str | None = None,
) -> TrainResult:
    """Train a CTC model on ``corpus_dir`` and save it into ``model_dir``.

    Args:
        corpus_dir: corpus folder (see the module docstring).
        model_dir: output folder; holds the best model, ``training_state.pt``
            and ``training_log.jsonl``.
        config: a name from :data:`CONFIG_NAMES` (``"tiny"``, ``"small"``,
            ``"finetune"``) or a :class:`TrainConfig`. Default: ``"small"``,
            or ``"finetune"`` with ``init``.
        init: start from this model (anything ``load_model`` accepts); its
            architecture and labels are kept, the config's architecture is
            ignored.
        epochs: passes over the training split (default: the config's).
        max_steps: stop after this many optimizer steps in total (the
            learning-rate schedule then ends there).
        batch_seconds: padded audio per batch (default: the config's).
        lr: peak learning rate (default: the config's).
        device: ``"cpu"``, ``"cuda"``, ...; default CUDA when available.
        resume: continue from ``model_dir/training_state.pt``; the config,
            model, seed, dev split and batch size are those of the saved
            run (``epochs``, ``max_steps``, ``lr`` may be changed).
        overwrite: start afresh even if ``model_dir`` holds a training state.
        seed: seeds the initial weights, dev split, batch order, dropout and
            masking (default 0).
        dev_fraction: share of utterances held out for evaluation (default 0.1).
        timing_weight: weight of :func:`timing_loss` (default 0: off).
        threads: ``torch.set_num_threads`` during training (restored after).
        workers: DataLoader worker processes that decode audio (default 1
            when the machine has more than one core, else 0).
        eval_every, save_every: also evaluate / save the state every that
            many steps (always: after each epoch and at the end).
        labels: output labels of a model trained from scratch (blank first;
            default the English letters of torchaudio's 960 h models).
        language: transcript language (numbers are spelled out).
        name: model name stored in the model (default: the folder's name).
        cache_gb: keep decoded audio in memory up to this many GB.
        progress: show progress bars and per-epoch lines on stderr.
        callback: called with ``(step, loss)`` after every step; raising
            ``KeyboardInterrupt`` in it stops training like Ctrl-C does (the
            state is saved first).
        command: the command line to record in the log (default ``sys.argv``).

    Returns:
        A :class:`TrainResult`.

    Raises:
        CorpusError: the corpus is missing, empty, has no transcripts or no
            usable utterance.
        TrainingError: unknown config, invalid option, or an unusable or
            missing training state.
        ModelError: ``init`` cannot be loaded.
        OutputError: ``model_dir`` cannot be written.

    Warns:
        SkippedUtterancesWarning: once, summarizing the utterances that were
            skipped (no transcript, unreadable audio, transcript too long
            for the audio, ...) and TextGrids not used for timings.
    """
    started = time.perf_counter()
    _check_options(
        epochs=epochs,
        max_steps=max_steps,
        batch_seconds=batch_seconds,
        lr=lr,
        dev_fraction=dev_fraction,
        timing_weight=timing_weight,
        threads=threads,
        workers=workers,
        eval_every=eval_every,
        save_every=save_every,
        cache_gb=cache_gb,
    )
    model_dir = Path(model_dir).expanduser()
    if model_dir.exists() and not model_dir.is_dir():
        raise OutputError(f"model folder {model_dir} exists and is not a folder")
    state_path = model_dir / STATE_FILE
    state: dict[str, Any] | None = None
    if resume:
        state = _load_state(state_path)
        if config is not None or init is not None:
            warnings.warn(
                "resuming: --config/--init are ignored (the saved run's model and config are used)",
                UserWarning,
                stacklevel=2,
            )
        train_config = TrainConfig.from_dict(state["config"]).with_options(lr=lr)
        saved = state["options"]
        seed = saved["seed"]
        batch_seconds = saved["batch_seconds"]
        timing_weight = saved["timing_weight"] if timing_weight is None else timing_weight
        epochs = saved["epochs"] if epochs is None else epochs
        max_steps = saved["max_steps"] if max_steps is None else max_steps
        language = saved.get("language", language)
    else:
        if state_path.exists() and not overwrite:
            raise TrainingError(
                f"{model_dir} already holds a training run ({STATE_FILE}); "
                "resume it (--resume), overwrite it (--overwrite) or choose another folder"
            )
        train_config = get_config(config, init=init is not None).with_options(lr=lr)
        seed = 0 if seed is None else int(seed)
        batch_seconds = train_config.batch_seconds if batch_seconds is None else float(batch_seconds)
        timing_weight = 0.0 if timing_weight is None else float(timing_weight)
        epochs = train_config.epochs if epochs is None else epochs
    run = _Run(
        corpus_dir=Path(corpus_dir),
        model_dir=model_dir,
        device=resolve_device(device),
        seed=seed,
        epochs=epochs,
        max_steps=max_steps,
        batch_seconds=batch_seconds,
        dev_fraction=0.1 if dev_fraction is None else dev_fraction,
        timing_weight=timing_weight,
        threads=threads,
        workers=(1 if (os.cpu_count() or 1) > 1 else 0) if workers is None else workers,
        eval_every=eval_every,
        save_every=save_every,
        language=language,
        cache_gb=cache_gb,
        progress=progress,
        callback=callback,
        command=command if command is not None else shlex.join(sys.argv),
        started=started,
    )
    files = find_corpus_files(corpus_dir)

    previous_threads = torch.get_num_threads()
    if threads is not None:
        torch.set_num_threads(threads)
    fork_devices = [run.device] if run.device.type == "cuda" else []
    try:
        with torch.random.fork_rng(devices=fork_devices):
            if state is None:
                torch.manual_seed(seed)
                net, meta = _new_network(train_config, init, labels, name or model_dir.resolve().name or "model")
            else:
                meta = dict(state["meta"])
                net = build_from_architecture(meta["architecture"], error=TrainingError)
                net.load_state_dict(state["model"])
            model = _model_of(net, meta)
            data = _read_corpus(files, model, train_config, run, state)
            return _Trainer(model, meta, train_config, data, run, state).train()
    finally:
        torch.set_num_threads(previous_threads)


@dataclass(frozen=True)
class _Run:
    """The settings of one :func:`train` call, defaults and a resumed run's
    saved options applied."""

    corpus_dir: Path
    model_dir: Path
    device: torch.device
    seed: int
    epochs: int
    max_steps: int | None
    batch_seconds: float
    dev_fraction: float
    timing_weight: float
    threads: int | None
    workers: int
    eval_every: int | None
    save_every: int | None
    language: str
    cache_gb: float
    progress: bool
    callback: Callable[[int, float], None] | None
    command: str
    started: float  # time.perf_counter() at the start of the call

    @property
    def state_path(self) -> Path:
        return self.model_dir / STATE_FILE

    @property
    def log_path(self) -> Path:
        return self.model_dir / LOG_FILE

    def options(self) -> dict[str, Any]:
        """The options the log and the training state record (a resume reads
        them back)."""
        return dict(
            seed=self.seed,
            batch_seconds=self.batch_seconds,
            dev_fraction=self.dev_fraction,
            timing_weight=self.timing_weight,
            epochs=self.epochs,
            max_steps=self.max_steps,
            language=self.language,
            eval_every=self.eval_every,
            save_every=self.save_every,
            device=str(self.device),
            threads=self.threads,
            workers=self.workers,
        )


@dataclass(frozen=True)
class _Data:
    """The usable utterances of a run, split, and their batches."""

    train_set: list[_Utterance]
    dev_set: list[_Utterance]
    dev_keys: set[str]
    train_batches: list[list[int]]
    dev_batches: list[list[int]]
    skipped: dict[str, list[str]]  # reason -> keys
    train_seconds: float


def _labels_of(model: AlignmentModel) -> _Labels:
    star = model.star if model.star is not None and not model.append_star else None
    return _Labels(model.labels, model.blank, model.separator, star, model.phonemizer)


def _read_corpus(
    files: Sequence[CorpusFile], model: AlignmentModel, config: TrainConfig, run: _Run, state: Mapping[str, Any] | None
) -> _Data:
    """Read and split the corpus (a resumed run keeps its saved dev split).

    Warns once about skipped utterances and once about unused TextGrids; the
    warnings point at the caller of :func:`train`, which must call this
    directly.
    """
    utterances, skipped, timing_problems = _prepare_corpus(
        files,
        _labels_of(model),
        sample_rate=model.sample_rate,
        frames_of=lambda n: num_frames(model, n),
        frame_seconds=model.frame_seconds,
        language=run.language,
        max_seconds=config.max_seconds,
        use_timing=run.timing_weight > 0,
        workers=run.workers,
        cache_bytes=run.cache_gb * 1e9,
        progress=run.progress,
    )
    total_skipped = sum(len(v) for v in skipped.values())
    if not utterances:
        raise CorpusError(
            f"no usable utterance in corpus folder {run.corpus_dir}: all {len(files)} skipped: " + _summary(skipped)
        )
    if total_skipped:
        warnings.warn(
            f"skipped {total_skipped} of {len(files)} utterances: {_summary(skipped)}",
            SkippedUtterancesWarning,
            stacklevel=3,
        )
    if timing_problems:
        count = sum(len(v) for v in timing_problems.values())
        warnings.warn(
            f"{count} TextGrids not used for the timing loss: {_summary(timing_problems)}",
            SkippedUtterancesWarning,
            stacklevel=3,
        )
    keys = [u.key for u in utterances]
    dev_keys = set(state["dev_keys"]) if state is not None else _split(keys, run.dev_fraction, run.seed)
    return _split_corpus(utterances, dev_keys, skipped, model.sample_rate, run)


def _split_corpus(
    utterances: list[_Utterance], dev_keys: set[str], skipped: dict[str, list[str]], sample_rate: int, run: _Run
) -> _Data:
    train_set = [u for u in utterances if u.key not in dev_keys]
    dev_set = [u for u in utterances if u.key in dev_keys]
    if not train_set:
        raise CorpusError(f"no usable training utterance left in {run.corpus_dir} after the dev split")
    return _Data(
        train_set=train_set,
        dev_set=dev_set,
        dev_keys=dev_keys,
        train_batches=bucket_batches([u.seconds(sample_rate) for u in train_set], run.batch_seconds),
        dev_batches=bucket_batches([u.seconds(sample_rate) for u in dev_set], run.batch_seconds),
        skipped=skipped,
        train_seconds=sum(u.seconds(sample_rate) for u in train_set),
    )


class _Trainer:
    """The training loop of one :func:`train` call and the state it changes.

    Holds the model record (its network is trained in place), the optimizer,
    learning-rate schedule and gradient scaler, the step, epoch and position
    in the epoch, the evaluation history and the best dev result: what
    ``training_state.pt`` saves (:meth:`_state`) and a resume restores
    (:meth:`_restore`). :meth:`train` runs the loop.
    """

    def __init__(
        self,
        model: AlignmentModel,
        meta: dict[str, Any],
        config: TrainConfig,
        data: _Data,
        run: _Run,
        state: Mapping[str, Any] | None,
    ) -> None:
        self.model, self.meta, self.config, self.data, self.run = model, meta, config, data, run
        self.net = model.model
        self.resumed = state is not None
        self.steps_per_epoch = len(data.train_batches)
        total_steps = run.epochs * self.steps_per_epoch
        self.total_steps = total_steps if run.max_steps is None else min(run.max_steps, total_steps)
        self._set_up_optimization()
        self.step, self.epoch, self.batch_in_epoch = 0, 0, 0
        self.history: list[dict] = []
        self.best: dict[str, Any] = {"step": None, "dev_loss": None, "dev_cer": None, "dev_objective": None}
        if state is not None:
            self._restore(state)
        else:
            self._clear_folder()
        self.parameters = sum(p.numel() for p in self.net.parameters() if p.requires_grad)
        self.dataset = _TrainDataset(data.train_set, model.sample_rate)
        cached = all(u.waveform is not None for u in data.train_set)
        self.loader_workers = 0 if cached else run.workers
        self.rng_snapshot = _rng_state(run.device)  # as after the last step: what a resume restores
        self.losses: list[float] = []  # of this call
        self.since_eval: list[float] = []
        self.smoothed: float | None = None  # for the progress bar

    def _set_up_optimization(self) -> None:
        """Network on the device in training mode, optimizer, schedule, autocast and scaler."""
        config, total_steps = self.config, self.total_steps
        self.net.to(self.run.device).train()
        if config.freeze_feature_extractor:
            for param in self.net.feature_extractor.parameters():
                param.requires_grad_(False)
        self.optimizer = _optimizer(self.net, config)
        # a plain function (not a method or partial): LambdaLR then saves no state for it
        self.scheduler = torch.optim.lr_scheduler.LambdaLR(self.optimizer, lambda s: _lr_factor(s, total_steps, config))
        cuda = self.run.device.type == "cuda"
        self.autocast_dtype = (torch.bfloat16 if torch.cuda.is_bf16_supported() else torch.float16) if cuda else None
        self.scaler = grad_scaler(self.run.device, self.autocast_dtype)  # float16 only

    def _restore(self, state: Mapping[str, Any]) -> None:
        """Continue a saved run: optimizer, schedule, scaler, counters, history, RNG."""
        self.optimizer.load_state_dict(state["optimizer"])
        self.scheduler.load_state_dict(state["scheduler"])
        self.step = int(state["step"])
        self.epoch = int(state["epoch"])
        self.batch_in_epoch = int(state["batch_in_epoch"])
        self.history = list(state["history"])
        self.best = dict(state["best"])
        _set_rng_state(state["rng"], self.run.device)
        if self.scaler is not None and "scaler" in state:
            self.scaler.load_state_dict(state["scaler"])

    def _clear_folder(self) -> None:
        """A fresh start: create the model folder, remove an earlier run's log and state."""
        self.run.model_dir.mkdir(parents=True, exist_ok=True)
        self.run.log_path.unlink(missing_ok=True)
        self.run.state_path.unlink(missing_ok=True)

    def train(self) -> TrainResult:
        """Train to the last step or epoch, evaluate and save the state at the
        end (and on Ctrl-C, logging the interruption)."""
        self._log_start()
        bar = self._progress_bar()
        try:
            while not self._should_stop():
                self._epoch(bar)
            if not (self.history and self.history[-1]["step"] == self.step):  # not evaluated at this step yet
                self._evaluate("eval")
            self._checkpoint()
        except KeyboardInterrupt:
            self._checkpoint()
            _append_log(
                self.run.log_path,
                {"event": "interrupted", "step": self.step, "time": time.strftime("%Y-%m-%dT%H:%M:%S")},
            )
            raise
        finally:
            bar.close()
        return self._finish()

    def _should_stop(self) -> bool:
        return self.step >= self.total_steps or self.epoch >= self.run.epochs

    def _epoch(self, bar: Any) -> None:
        """Train on the rest of the current epoch (or up to the last step); at
        the epoch's end evaluate and save the state."""
        for items in self._loader():
            loss = self._step(items)
            self._after_step(loss, bar)
            if self.step >= self.total_steps:
                break
        if self.batch_in_epoch >= self.steps_per_epoch:
            self.epoch += 1
            self.batch_in_epoch = 0
            self._evaluate("epoch")
            self._checkpoint()

    def _loader(self) -> DataLoader:
        """The batches of the current epoch from the current position, as lists
        of ``(index into the training set, waveform)``."""
        batches = _epoch_batches(self.data.train_batches, self.run.seed, self.epoch, self.config.sortagrad)
        return DataLoader(
            self.dataset,
            batch_sampler=batches[self.batch_in_epoch :],
            num_workers=self.loader_workers,
            collate_fn=_identity,
            generator=torch.Generator().manual_seed(self.run.seed + self.epoch),
        )

    def _step(self, items: Sequence[tuple[int, torch.Tensor]]) -> float:
        """One optimizer and schedule step on a batch; returns its loss."""
        loss = _train_step(
            self.model,
            [w for _, w in items],
            [self.data.train_set[i] for i, _ in items],
            optimizer=self.optimizer,
            config=self.config,
            device=self.run.device,
            autocast_dtype=self.autocast_dtype,
            timing_weight=self.run.timing_weight,
            scaler=self.scaler,
        )
        self.scheduler.step()
        self.step += 1
        self.batch_in_epoch += 1
        self.rng_snapshot = _rng_state(self.run.device)
        self.losses.append(loss)
        self.since_eval.append(loss)
        self.smoothed = loss if self.smoothed is None else 0.9 * self.smoothed + 0.1 * loss
        return loss

    def _after_step(self, loss: float, bar: Any) -> None:
        """Progress bar, callback, and the evaluation and save of every
        ``eval_every`` and ``save_every`` steps."""
        bar.update(1)
        bar.set_postfix(loss=f"{self.smoothed:.3f}", lr=f"{self.scheduler.get_last_lr()[0]:.2e}")
        if self.run.callback is not None:
            self.run.callback(self.step, loss)
        eval_every, save_every = self.run.eval_every, self.run.save_every
        if eval_every and self.step % eval_every == 0 and self.batch_in_epoch < self.steps_per_epoch:
            self._evaluate("eval")  # (the epoch's end evaluates anyway)
        if save_every and self.step % save_every == 0:
            self._checkpoint()

    def _evaluate(self, kind: str) -> None:
        """Score the dev split, log the record (``kind``: ``"eval"`` or
        ``"epoch"``) and save the model when it is the best so far."""
        metrics = _dev_metrics(
            self.model,
            self.data.dev_set,
            self.data.dev_batches,
            device=self.run.device,
            autocast_dtype=self.autocast_dtype,
            timing_weight=self.run.timing_weight,
        )
        record = {
            "event": kind,
            "epoch": self.epoch + self.batch_in_epoch / max(1, self.steps_per_epoch),
            "step": self.step,
            "train_loss": sum(self.since_eval) / len(self.since_eval) if self.since_eval else None,
            **metrics,
            "lr": self.scheduler.get_last_lr()[0],
            "elapsed": round(time.perf_counter() - self.run.started, 2),
        }
        self.since_eval.clear()
        self.history.append(record)
        improved = self._keep_if_best(metrics)
        record["saved_model"] = improved
        _append_log(self.run.log_path, record)
        if self.run.progress:
            self._print_evaluation(record, metrics, improved)

    def _keep_if_best(self, metrics: Mapping[str, float]) -> bool:
        """Save the model if its dev objective is the lowest yet (always
        without a dev split); True if saved."""
        best = self.best
        improved = (
            not self.data.dev_set
            or best.get("dev_objective") is None
            or metrics["dev_objective"] < best["dev_objective"]
        )
        if improved:
            best.update(
                step=self.step,
                dev_loss=metrics.get("dev_loss"),
                dev_cer=metrics.get("dev_cer"),
                dev_objective=metrics.get("dev_objective"),
            )
            _save_best(self.model, self.run.model_dir)
        return improved

    def _print_evaluation(self, record: Mapping[str, Any], metrics: Mapping[str, float], improved: bool) -> None:
        from tqdm import tqdm

        dev = f", dev loss {metrics['dev_loss']:.3f}, dev CER {metrics['dev_cer']:.3f}" if self.data.dev_set else ""
        if "dev_timing_loss" in metrics:
            dev += f", dev timing loss {metrics['dev_timing_loss']:.3f}"
        train_loss = f"{record['train_loss']:.3f}" if record["train_loss"] is not None else "-"
        tqdm.write(
            f"epoch {record['epoch']:.2f} step {self.step}: train loss {train_loss}{dev}"
            + (" (saved)" if improved else ""),
            file=sys.stderr,
        )

    def _checkpoint(self) -> None:
        _save_state(self.run.state_path, self._state())

    def _state(self) -> dict[str, Any]:
        """The contents of ``training_state.pt`` (keys read by :meth:`_restore`
        and :func:`train`)."""
        return {
            "version": _STATE_VERSION,
            "model": {k: v.detach().cpu() for k, v in self.net.state_dict().items()},
            "optimizer": self.optimizer.state_dict(),
            "scheduler": self.scheduler.state_dict(),
            "step": self.step,
            "epoch": self.epoch,
            "batch_in_epoch": self.batch_in_epoch,
            "rng": self.rng_snapshot,
            "config": self.config.to_dict(),
            "meta": self.meta,
            "options": self.run.options(),
            "dev_keys": sorted(self.data.dev_keys),
            "history": self.history,
            "best": self.best,
            **({"scaler": self.scaler.state_dict()} if self.scaler is not None else {}),
        }

    def _log_start(self) -> None:
        """The log's record of this (re)start: command, options, model, corpus."""
        meta = self.meta
        _append_log(
            self.run.log_path,
            {
                "event": "resume" if self.resumed else "start",
                "time": time.strftime("%Y-%m-%dT%H:%M:%S"),
                "command": self.run.command,
                "corpus": str(self.run.corpus_dir),
                "options": self.run.options(),
                "config": self.config.to_dict(),
                "model": {k: v for k, v in meta.items() if k != "architecture"},
                "architecture": meta["architecture"],
                "parameters": self.parameters,
                "step": self.step,
                "total_steps": self.total_steps,
                "num_train": len(self.data.train_set),
                "num_dev": len(self.data.dev_set),
                "train_audio_seconds": round(self.data.train_seconds, 3),
                "skipped": {k: len(v) for k, v in self.data.skipped.items()},
            },
        )

    def _progress_bar(self) -> Any:
        from tqdm import tqdm

        return tqdm(
            total=self.total_steps,
            initial=min(self.step, self.total_steps),
            desc="training",
            unit="step",
            disable=not self.run.progress,
            file=sys.stderr,
            dynamic_ncols=True,
        )

    def _finish(self) -> TrainResult:
        """Log the end and report."""
        elapsed = time.perf_counter() - self.run.started
        _append_log(
            self.run.log_path,
            {"event": "end", "step": self.step, "epoch": self.epoch, "best": self.best, "elapsed": round(elapsed, 2)},
        )
        return TrainResult(
            model_dir=self.run.model_dir,
            config=self.config,
            steps=self.step,
            epochs_completed=self.epoch,
            train_losses=tuple(self.losses),
            history=tuple(self.history),
            best_step=self.best["step"],
            best_dev_loss=self.best["dev_loss"],
            best_dev_cer=self.best["dev_cer"],
            num_train=len(self.data.train_set),
            num_dev=len(self.data.dev_set),
            train_audio_seconds=self.data.train_seconds,
            skipped={k: len(v) for k, v in self.data.skipped.items()},
            parameters=self.parameters,
            elapsed=time.perf_counter() - self.run.started,
        )


class _TrainDataset(Dataset):
    """``index -> (index, waveform)``; decodes files that are not cached."""

    def __init__(self, utterances: Sequence[_Utterance], sample_rate: int) -> None:
        self.utterances = list(utterances)
        self.sample_rate = sample_rate

    def __len__(self) -> int:
        return len(self.utterances)

    def __getitem__(self, index: int) -> tuple[int, torch.Tensor]:
        item = self.utterances[index]
        if item.waveform is not None:
            return index, item.waveform
        return index, load_audio(item.audio, self.sample_rate)


def _ctc(
    log_probs: torch.Tensor, lengths: torch.Tensor, batch: Sequence[_Utterance], blank: int
) -> tuple[torch.Tensor, int]:
    """Summed CTC loss of a batch and its number of target tokens."""
    device = log_probs.device
    targets = torch.tensor([t for u in batch for t in u.targets], dtype=torch.long, device=device)
    target_lengths = torch.tensor([len(u.targets) for u in batch], dtype=torch.long, device=device)
    loss = F.ctc_loss(
        log_probs.transpose(0, 1), targets, lengths, target_lengths, blank=blank, reduction="sum", zero_infinity=True
    )
    return loss, int(target_lengths.sum())


def _train_step(
    model: AlignmentModel,
    waveforms: Sequence[torch.Tensor],
    batch: Sequence[_Utterance],
    *,
    optimizer: torch.optim.Optimizer,
    config: TrainConfig,
    device: torch.device,
    autocast_dtype: torch.dtype | None,
    timing_weight: float,
    scaler: torch.amp.GradScaler | None = None,
) -> float:
    """One optimizer step of ``model``'s network on a batch; returns the loss."""
    net, blank, separator_id = model.model, model.blank, model.separator_id
    log_probs, lengths = _forward(
        net,
        waveforms,
        normalize=model.normalize_waveform,
        device=device,
        autocast_dtype=autocast_dtype,
        freeze_extractor=config.freeze_feature_extractor,
        mask_prob=config.time_mask_prob,
        mask_length=config.time_mask_length,
    )
    ctc_sum, tokens = _ctc(log_probs, lengths, batch, blank)
    loss = ctc_sum / max(1, tokens)
    if timing_weight > 0:
        extra = timing_loss(log_probs, lengths, [u.words for u in batch], blank=blank, separator=separator_id)
        if extra is not None:
            loss = loss + timing_weight * extra
    optimizer_step(loss, optimizer, [p for p in net.parameters() if p.requires_grad], config.clip_norm, scaler)
    return float(loss.detach())


@torch.no_grad()
def _dev_metrics(
    model: AlignmentModel,
    dev_set: Sequence[_Utterance],
    batches: Sequence[list[int]],
    *,
    device: torch.device,
    autocast_dtype: torch.dtype | None,
    timing_weight: float,
) -> dict[str, float]:
    """Dev metrics (empty dict without a dev set): ``dev_loss`` (CTC per
    token), ``dev_cer`` (greedy), with a timing weight ``dev_timing_loss``
    (mean over batches with timings), and ``dev_objective``, the quantity
    the best model is chosen by: ``dev_loss + timing_weight * dev_timing_loss``."""
    if not dev_set:
        return {}
    net, sample_rate, blank, separator_id = model.model, model.sample_rate, model.blank, model.separator_id
    was_training = net.training
    net.eval()
    loss_sum, token_count = 0.0, 0
    timing_values: list[float] = []
    hypotheses, references = [], []
    try:
        for indices in batches:
            batch = [dev_set[i] for i in indices]
            waveforms = [u.waveform if u.waveform is not None else load_audio(u.audio, sample_rate) for u in batch]
            log_probs, lengths = _forward(
                net,
                waveforms,
                normalize=model.normalize_waveform,
                device=device,
                autocast_dtype=autocast_dtype,
                freeze_extractor=True,
            )
            total, tokens = _ctc(log_probs, lengths, batch, blank)
            loss_sum += float(total)
            token_count += tokens
            if timing_weight > 0:
                timing = timing_loss(log_probs, lengths, [u.words for u in batch], blank=blank, separator=separator_id)
                if timing is not None:
                    timing_values.append(float(timing))
            for row, item in enumerate(batch):
                hypotheses.append(greedy_decode(log_probs[row, : int(lengths[row])], blank))
                references.append(list(item.targets))
    finally:
        net.train(was_training)
    metrics = {"dev_loss": loss_sum / max(1, token_count), "dev_cer": character_error_rate(hypotheses, references)}
    metrics["dev_objective"] = metrics["dev_loss"]
    if timing_values:
        metrics["dev_timing_loss"] = sum(timing_values) / len(timing_values)
        metrics["dev_objective"] += timing_weight * metrics["dev_timing_loss"]
    return metrics
