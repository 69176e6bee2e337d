"""Training a frame-level phone model on synthesized speech.

The packaged default model is trained here: espeak-ng speaks sentences
(:mod:`aligner.training.synth.espeak`), its phoneme events give the exact ARPAbet
phone of every 20 ms frame (:func:`frame_labels`), and the network learns
to classify frames (cross-entropy, not CTC), so its phones last as long as
they sound and need no spike-delay correction. Every batch is made to sound
different on the fly (:func:`augment_batch` and the feature-level steps in
:func:`train_phone_model`): reverberation, noise of many colours, babble,
band limits, vocal-tract-length warping, spectral tilt and equalization,
SpecAugment. ``scripts/train_phone_model.py`` runs the whole recipe.

Conventions: frame ``t`` of a recording is labelled with the phone sounding
at sample ``320 t + 160`` (the middle of ``[t, t + 1) x 20 ms``); label 0 is
silence (the CTC blank of the alignment topology). The silent closure of a
stop after speech belongs to the stop (as phoneticians segment it), and so
to its word; a closure after a pause is silence.
"""

from __future__ import annotations

import math
import os
import threading
import time
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, cast

import numpy as np
import torch
from torch import nn

from ..models.frontend import LogMelFrontEnd, build_network, frames_for_samples, warp_spectrum
from ..phones import ARPABET, MAX_CLOSURE, _is_rhotic, attach_closures, map_segments
from ._amp import grad_scaler, optimizer_step

if TYPE_CHECKING:  # pragma: no cover
    from multiprocessing.pool import Pool

__all__ = [
    "LABELS",
    "FliteSpec",
    "LabeledUtterance",
    "MbrolaSpec",
    "SpeechSpec",
    "frame_labels",
    "phone_architecture",
    "render_labeled",
    "train_phone_model",
]

#: Output classes of the phone model: silence (the blank) and ARPAbet.
LABELS: tuple[str, ...] = ("-",) + ARPABET
_LABEL_IDS = {label: index for index, label in enumerate(LABELS)}
SAMPLE_RATE = 16000
FRAME = 320
#: Frame label left out of the loss (a frame of real speech whose label is not trusted).
IGNORE = 255


@dataclass(frozen=True)
class SpeechSpec:
    """What to synthesize: espeak-ng text and voice parameters, silence around."""

    text: str
    voice: str
    rate: int = 175
    pitch: int = 50
    pitch_range: int = 50
    word_gap: int = 0
    lead: float = 0.2
    trail: float = 0.2


@dataclass(frozen=True)
class FliteSpec:
    """What flite (:mod:`aligner.training.synth.flite`, voices awb and rms) says:
    spoken words in lowercase letters, voice parameters, silence around."""

    text: str
    voice: str
    duration_stretch: float = 1.0
    f0_mean: float | None = None
    f0_stddev: float | None = None
    lead: float = 0.2
    trail: float = 0.2


@dataclass(frozen=True)
class MbrolaSpec:
    """What an MBROLA voice (:mod:`aligner.training.synth.mbrola`, us1/us2/us3) says:
    spoken words in lowercase letters, tempo and pitch ratios, silence around."""

    text: str
    voice: str
    time_ratio: float = 1.0
    pitch_ratio: float = 1.0
    lead: float = 0.2
    trail: float = 0.2


@dataclass(frozen=True, eq=False)
class LabeledUtterance:
    """16 kHz audio with a phone label per 20 ms frame.

    Attributes:
        audio: int16 samples. Shape: ``(S,)``.
        labels: label id per frame (index into :data:`LABELS`). Shape: ``(T,)``.
        words: ``(start, end)`` seconds of every word (for MBROLA, whose
            phone files mark no words, one span over all the speech).
        phones: ``(label, start, end)`` seconds of every phone.
        text: the sentence.
        source: the synthesizer (``"espeak"``, ``"flite"``, ``"mbrola"``).
    """

    audio: np.ndarray
    labels: np.ndarray
    words: tuple[tuple[float, float], ...]
    phones: tuple[tuple[str, float, float], ...]
    text: str
    source: str = "espeak"


def phone_intervals(words: Sequence[Any], rhotic: bool, closure_limit: int) -> list[list[tuple[str, int, int]]]:
    """ARPAbet intervals of each espeak word (``TimedWord``), in the
    synthesis's samples, closures of at most ``closure_limit`` samples given
    to stops (:func:`aligner.phones.attach_closures`)."""
    per_word = [map_segments([(p.label, p.start, p.end) for p in word.phones], rhotic=rhotic) for word in words]
    return attach_closures(per_word, closure_limit)


def frame_labels(num_samples: int, phones: Iterable[tuple[str, int, int]]) -> np.ndarray:
    """Label id of every 20 ms frame (the phone at its middle sample, 0 = silence).

    Frames are those of :class:`~aligner.models.frontend.LogMelFrontEnd` for a
    waveform of ``num_samples``.
    """
    per_sample = np.zeros(num_samples, dtype=np.uint8)
    for label, start, end in phones:
        per_sample[max(start, 0) : max(end, 0)] = _LABEL_IDS[label]
    count = frames_for_samples([(560, FRAME)], num_samples)
    return per_sample[FRAME * np.arange(count) + FRAME // 2]


def render_labeled(spec: SpeechSpec | FliteSpec | MbrolaSpec) -> LabeledUtterance | None:
    """Synthesize one utterance at 16 kHz with frame labels (None when the
    synthesizer cannot time its words)."""
    from .synth.espeak import SynthesisError

    try:
        if isinstance(spec, FliteSpec):
            return _render_flite(spec)
        if isinstance(spec, MbrolaSpec):
            return _render_mbrola(spec)
        return _render_espeak(spec)
    except SynthesisError:
        return None


def _labeled(
    speech: np.ndarray,
    rate_in: int,
    per_word: list[list[tuple[str, int, int]]],
    lead_s: float,
    trail_s: float,
    text: str,
    source: str,
) -> LabeledUtterance:
    """Resample to 16 kHz, pad with silence, label frames. ``per_word``
    holds ARPAbet intervals in samples at ``rate_in`` (closures attached)."""
    from scipy.signal import resample_poly

    if rate_in != SAMPLE_RATE:
        g = math.gcd(SAMPLE_RATE, rate_in)
        speech = resample_poly(speech.astype(np.float32), SAMPLE_RATE // g, rate_in // g)
    lead, trail = round(lead_s * SAMPLE_RATE), round(trail_s * SAMPLE_RATE)
    audio = np.concatenate([np.zeros(lead, np.float32), speech.astype(np.float32), np.zeros(trail, np.float32)])
    scale = SAMPLE_RATE / rate_in
    per_word = [
        [(label, lead + round(a * scale), lead + round(b * scale)) for label, a, b in phones] for phones in per_word
    ]
    spans = [(phones[0][1], phones[-1][2]) for phones in per_word]
    flat = [p for phones in per_word for p in phones]
    labels = frame_labels(len(audio), flat)
    audio16 = np.clip(np.round(audio), -32768, 32767).astype(np.int16)
    sr = float(SAMPLE_RATE)
    return LabeledUtterance(
        audio16,
        labels,
        tuple((a / sr, b / sr) for a, b in spans),
        tuple((label, a / sr, b / sr) for label, a, b in flat),
        text,
        source,
    )


def _render_espeak(spec: SpeechSpec) -> LabeledUtterance:
    from .synth.espeak import synthesize, word_timings

    synthesis = synthesize(
        spec.text, spec.voice, rate=spec.rate, pitch=spec.pitch, pitch_range=spec.pitch_range, word_gap=spec.word_gap
    )
    timed = word_timings(synthesis)
    rate_in = synthesis.sample_rate
    per_word = phone_intervals(timed, _is_rhotic(spec.voice), round(MAX_CLOSURE * rate_in))
    return _labeled(synthesis.samples, rate_in, per_word, spec.lead, spec.trail, spec.text, "espeak")


def _render_flite(spec: FliteSpec) -> LabeledUtterance:
    from .synth.flite import synthesize

    synthesis = synthesize(
        spec.text, spec.voice, duration_stretch=spec.duration_stretch, f0_mean=spec.f0_mean, f0_stddev=spec.f0_stddev
    )
    per_word = [[(p.arpabet, p.start, p.end) for p in word.phones if p.arpabet] for word in synthesis.words]
    if any(not phones for phones in per_word):
        from .synth.espeak import SynthesisError

        raise SynthesisError("a word without phones")
    return _labeled(synthesis.samples, synthesis.sample_rate, per_word, spec.lead, spec.trail, spec.text, "flite")


def _render_mbrola(spec: MbrolaSpec) -> LabeledUtterance:
    from .synth.mbrola import synthesize

    synthesis = synthesize(spec.text, spec.voice, time_ratio=spec.time_ratio, pitch_ratio=spec.pitch_ratio)
    return _labeled(
        synthesis.samples, synthesis.sample_rate, [list(synthesis.phones)], spec.lead, spec.trail, spec.text, "mbrola"
    )


def render_pool(jobs: int) -> Pool:
    """A process pool for :func:`render_many` (create it before CUDA is
    initialised: workers are forked)."""
    import multiprocessing

    return multiprocessing.get_context("fork").Pool(jobs, initializer=_worker_init)


def render_many(
    specs: Sequence[SpeechSpec], on_result: Callable[[LabeledUtterance], None], pool: Any = None, chunk: int = 16
) -> None:
    """Render ``specs`` (in ``pool`` when given), calling ``on_result`` as
    each is done (in any order)."""
    if pool is None:
        for spec in specs:
            item = render_labeled(spec)
            if item is not None:
                on_result(item)
        return
    for item in pool.imap_unordered(render_labeled, specs, chunksize=chunk):
        if item is not None:
            on_result(item)


def _worker_init() -> None:
    torch.set_num_threads(1)
    os.environ["OMP_NUM_THREADS"] = "1"


# --------------------------------------------------------------------------- model


def phone_architecture(
    *,
    embed_dim: int = 256,
    num_layers: int = 6,
    num_heads: int = 4,
    ff_dim: int = 1024,
    dropout: float = 0.1,
    num_bins: int = 80,
    dynamic_range_db: float | None = None,
) -> dict[str, Any]:
    """Arguments of :func:`~aligner.models.frontend.build_network` for the phone model
    (``dynamic_range_db``: the front end's floor, see :class:`~aligner.models.frontend.LogMelFrontEnd`)."""
    front = LogMelFrontEnd(num_bins=num_bins, dynamic_range_db=dynamic_range_db)
    return dict(
        front_end=front.config(),
        extractor_mode="layer_norm",
        extractor_conv_layer_config=[[front.output_dim, 1, 1]],
        extractor_conv_bias=True,
        encoder_embed_dim=embed_dim,
        encoder_projection_dropout=dropout,
        encoder_pos_conv_kernel=64,
        encoder_pos_conv_groups=16,
        encoder_num_layers=num_layers,
        encoder_num_heads=num_heads,
        encoder_attention_dropout=dropout,
        encoder_ff_interm_features=ff_dim,
        encoder_ff_interm_dropout=dropout,
        encoder_dropout=dropout,
        encoder_layer_norm_first=True,
        encoder_layer_drop=0.0,
        aux_num_out=len(LABELS),
    )


# --------------------------------------------------------------------------- augmentation


def _pad(items: Sequence[np.ndarray], value: int = 0) -> np.ndarray:
    width = max(len(x) for x in items)
    out = np.full((len(items), width), value, dtype=items[0].dtype)
    for row, x in enumerate(items):
        out[row, : len(x)] = x
    return out


def _colored_noise(
    shape: tuple[int, int], exponent: torch.Tensor, generator: torch.Generator, device: torch.device
) -> torch.Tensor:
    """Noise with power spectrum ~ 1 / f^exponent per row (0 white, 1 pink, 2 brown)."""
    white = torch.randn(shape, generator=generator, device=device)
    spectrum = torch.fft.rfft(white)
    freqs = torch.arange(spectrum.shape[-1], device=device).clamp(min=1).float()
    spectrum = spectrum * freqs[None, :].pow(-exponent[:, None] / 2)
    noise = torch.fft.irfft(spectrum, n=shape[1])
    return noise / noise.std(dim=-1, keepdim=True).clamp(min=1e-8)


def augment_batch(
    waves: torch.Tensor, lengths: torch.Tensor, generator: torch.Generator, strength: float = 1.0
) -> torch.Tensor:
    """Waveform-level augmentation of a padded batch (returns a new tensor).

    Reverberation (synthetic exponential-decay impulse responses), babble
    (another item of the batch), coloured noise at a random SNR.
    Shape: waves ``(B, S)``, lengths ``(B,)``.
    """
    device = waves.device
    batch, width = waves.shape
    mask = (torch.arange(width, device=device)[None, :] < lengths[:, None]).float()
    x = waves * mask
    power = (x.square().sum(-1) / lengths.clamp(min=1)).clamp(min=1e-10)
    x = x / power.sqrt()[:, None]

    def chance(p: float) -> torch.Tensor:
        return torch.rand(batch, generator=generator, device=device) < p * strength

    # reverberation
    rev = chance(0.35)
    if rev.any():
        rir_len = int(0.6 * SAMPLE_RATE)
        t = torch.arange(rir_len, device=device).float() / SAMPLE_RATE
        rt60 = 0.1 + 0.7 * torch.rand(batch, 1, generator=generator, device=device)
        decay = torch.exp(-6.9 * t[None, :] / rt60)
        tail = torch.randn(batch, rir_len, generator=generator, device=device) * decay
        drr = 10 ** ((torch.rand(batch, 1, generator=generator, device=device) * 15 - 3) / 20)
        tail = tail / tail.square().sum(-1, keepdim=True).sqrt()
        rir = tail
        rir[:, 0] = rir[:, 0] + drr[:, 0]
        n = 1 << (width + rir_len - 1).bit_length()
        wet = torch.fft.irfft(torch.fft.rfft(x, n=n) * torch.fft.rfft(rir, n=n), n=n)[:, :width]
        wet = wet * mask
        wet = wet / (wet.square().sum(-1) / lengths.clamp(min=1)).clamp(min=1e-10).sqrt()[:, None]
        x = torch.where(rev[:, None], wet, x)
    # babble: another recording of the batch, quieter
    bab = chance(0.15)
    if bab.any() and batch > 1:
        other = torch.roll(x, shifts=1, dims=0)
        shift = int(torch.randint(0, width, (1,), generator=generator, device=device))
        other = torch.roll(other, shifts=shift, dims=1)
        snr = 8 + 15 * torch.rand(batch, 1, generator=generator, device=device)
        x = torch.where(bab[:, None], x + other * 10 ** (-snr / 20), x)
    # slow random gain (weak consonants and fading ends as in real recordings)
    env = chance(0.5)
    if env.any():
        knots = max(2, width // 4000 + 2)
        db = torch.randn(batch, 1, knots, generator=generator, device=device) * 5.0
        curve = nn.functional.interpolate(db, size=width, mode="linear", align_corners=True)[:, 0]
        x = torch.where(env[:, None], x * 10 ** (curve / 20), x)
    # coloured noise
    noi = chance(0.7)
    if noi.any():
        exponent = 2.2 * torch.rand(batch, generator=generator, device=device)
        noise = _colored_noise((batch, width), exponent, generator, device)
        snr = -2 + 40 * torch.rand(batch, 1, generator=generator, device=device).pow(0.8)
        x = torch.where(noi[:, None], x + noise * 10 ** (-snr / 20), x)
    return x * mask


def _feature_augment(
    front: LogMelFrontEnd, waves: torch.Tensor, lengths: torch.Tensor, generator: torch.Generator, strength: float
) -> tuple[torch.Tensor, torch.Tensor]:
    device = waves.device
    batch = waves.shape[0]
    power = front.power_spectrum(waves)
    alpha = 0.8 + 0.4 * torch.rand(batch, generator=generator, device=device)
    use = torch.rand(batch, generator=generator, device=device) < 0.85 * strength
    alpha = torch.where(use, alpha, torch.ones_like(alpha))
    power = warp_spectrum(power, alpha)
    # band limit (telephone / low sample rates)
    cut = torch.rand(batch, generator=generator, device=device) < 0.15 * strength
    if cut.any():
        bins = power.shape[-1]
        top = (bins * (0.35 + 0.5 * torch.rand(batch, generator=generator, device=device))).long()
        keep = torch.arange(bins, device=device)[None, :] < torch.where(cut, top, torch.full_like(top, bins))[:, None]
        power = power * keep[:, None, :] + 1e-6 * (~keep[:, None, :])
    log_mel = front.log_mel(power)
    # spectral tilt and smooth equalization (a few cosines over the mel axis)
    bins = log_mel.shape[-1]
    m = torch.arange(bins, device=device).float() / (bins - 1)
    coeffs = (
        torch.randn(batch, 5, generator=generator, device=device)
        * torch.tensor([1.2, 0.6, 0.4, 0.3, 0.2], device=device)
        * strength
    )
    curve = cast(torch.Tensor, sum(coeffs[:, k : k + 1] * torch.cos(math.pi * (k + 1) * m)[None, :] for k in range(5)))
    log_mel = log_mel + curve[:, None, :]
    features, frames = front.stack_and_normalize(log_mel, lengths)
    # SpecAugment: two frequency masks (same bands in each stacked half), time masks
    for _ in range(2):
        width = torch.randint(0, 11, (batch,), generator=generator, device=device)
        start = (torch.rand(batch, generator=generator, device=device) * (front.num_bins - width)).long()
        band = torch.arange(front.num_bins, device=device)[None, :]
        fmask = (band >= start[:, None]) & (band < (start + width)[:, None])
        fmask = fmask.repeat(1, front.stack)
        features = features.masked_fill(fmask[:, None, :], 0.0)
    total = features.shape[1]
    for _ in range(3):
        width = torch.randint(0, 4, (batch,), generator=generator, device=device)
        start = (torch.rand(batch, generator=generator, device=device) * (frames - width).clamp(min=1)).long()
        idx = torch.arange(total, device=device)[None, :]
        tmask = (idx >= start[:, None]) & (idx < (start + width)[:, None])
        features = features.masked_fill(tmask[:, :, None], 0.0)
    return features, frames


# --------------------------------------------------------------------------- training


class GrowingDataset:
    """Utterances that arrive while training runs (thread-safe appends)."""

    def __init__(self) -> None:
        self.items: list[LabeledUtterance] = []
        self.lock = threading.Lock()
        self.done = threading.Event()

    def add(self, item: LabeledUtterance, copies: int = 1) -> None:
        """Add ``item`` (``copies`` times: its sampling weight)."""
        with self.lock:
            self.items.extend([item] * copies)

    def snapshot(self) -> list[LabeledUtterance]:
        with self.lock:
            return list(self.items)


def _batch_indices(
    durations: np.ndarray, batch_seconds: float, rng: np.random.Generator, max_items: int = 256
) -> np.ndarray:
    """A batch of similar lengths: a random window of the length-sorted order."""
    order = np.argsort(durations, kind="stable")
    anchor = int(rng.integers(0, len(order)))
    longest = durations[order[min(anchor + 8, len(order) - 1)]]
    size = int(max(1, min(max_items, batch_seconds // max(longest, 0.5))))
    start = max(0, min(anchor, len(order) - size))
    return order[start : start + size]


def _tensors(
    items: Sequence[LabeledUtterance], device: torch.device
) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    waves = torch.from_numpy(_pad([x.audio for x in items])).to(device, non_blocking=True).float() / 32768.0
    lengths = torch.tensor([len(x.audio) for x in items], device=device)
    labels = _pad([x.labels.astype(np.int64) for x in items], value=-100)
    labels[labels == IGNORE] = -100  # frames a real recording's alignment is not sure of
    return waves, lengths, torch.from_numpy(labels).to(device)


def frame_accuracy(
    net: nn.Module,
    items: Sequence[LabeledUtterance],
    device: torch.device,
    batch: int = 32,
    autocast_dtype: torch.dtype | None = None,
) -> float:
    """Share of frames whose most likely class is the label (no augmentation)."""
    net.eval()
    correct = total = 0
    with torch.no_grad():
        for k in range(0, len(items), batch):
            waves, lengths, labels = _tensors(items[k : k + batch], device)
            with torch.autocast(device.type, dtype=autocast_dtype or torch.float32, enabled=autocast_dtype is not None):
                logits, frames = net(waves, lengths)
            width = min(logits.shape[1], labels.shape[1])
            pred = logits[:, :width].argmax(-1)
            gold = labels[:, :width]
            valid = gold >= 0
            correct += int((pred[valid] == gold[valid]).sum())
            total += int(valid.sum())
    net.train()
    return correct / max(total, 1)


def train_phone_model(
    data: GrowingDataset,
    dev: Sequence[LabeledUtterance],
    *,
    budget_seconds: float,
    device: torch.device,
    architecture: dict[str, Any] | None = None,
    batch_seconds: float = 400.0,
    lr: float = 1.5e-3,
    warmup_steps: int = 400,
    min_items: int = 200,
    seed: int = 0,
    strength: float = 1.0,
    autocast_dtype: torch.dtype | None = torch.bfloat16,
    checkpoints: Sequence[float] = (),
    on_checkpoint: Callable[[nn.Module, float], None] | None = None,
    log: Callable[[dict[str, Any]], None] = print,
    eval_every: float = 30.0,
    net: nn.Module | None = None,
    max_steps: int | None = None,
) -> nn.Module:
    """Train a phone model for ``budget_seconds`` of wall time (or
    ``max_steps`` optimizer steps, whichever comes first).

    The learning rate warms up over ``warmup_steps`` and then follows a
    cosine over the budget (time, or steps when ``max_steps`` is given: the
    number of steps a time budget allows is not known up front).
    ``on_checkpoint(net, fraction)`` is called when each fraction of
    ``checkpoints`` of the budget has passed, and at the end with 1.0.
    """
    torch.manual_seed(seed)
    rng = np.random.default_rng(seed)
    generator = torch.Generator(device=device)
    generator.manual_seed(seed)
    if net is None:
        net = build_network(architecture or phone_architecture())
    trainer = _PhoneTrainer(
        net=net.to(device).train(),
        data=data,
        dev=dev,
        device=device,
        rng=rng,
        generator=generator,
        budget_seconds=budget_seconds,
        max_steps=max_steps,
        batch_seconds=batch_seconds,
        lr=lr,
        warmup_steps=warmup_steps,
        strength=strength,
        autocast_dtype=autocast_dtype,
        eval_every=eval_every,
        pending=sorted(checkpoints),
        on_checkpoint=on_checkpoint,
        log=log,
    )
    trainer.wait_for_data(min_items)
    return trainer.train()


@dataclass(eq=False)
class _PhoneTrainer:
    """The loop of :func:`train_phone_model`: its settings, the network and
    optimizer, and the step, loss, time and checkpoint bookkeeping."""

    net: nn.Module
    data: GrowingDataset
    dev: Sequence[LabeledUtterance]
    device: torch.device
    rng: np.random.Generator  # batch choice
    generator: torch.Generator  # augmentation
    budget_seconds: float
    max_steps: int | None
    batch_seconds: float
    lr: float
    warmup_steps: int
    strength: float
    autocast_dtype: torch.dtype | None
    eval_every: float
    pending: list[float]  # checkpoint fractions still to come, ascending
    on_checkpoint: Callable[[nn.Module, float], None] | None
    log: Callable[[dict[str, Any]], None]
    step: int = 0
    losses: list[float] = field(default_factory=list)  # every 10th step's, repeated in between
    items: list[LabeledUtterance] = field(default_factory=list)  # the data as last read
    durations: np.ndarray = field(default_factory=lambda: np.zeros(0))

    def __post_init__(self) -> None:
        self.front = cast(LogMelFrontEnd, self.net.feature_extractor)
        self.encoder, self.aux = cast(nn.Module, self.net.encoder), cast(nn.Module, self.net.aux)
        self.optimizer = torch.optim.AdamW(self.net.parameters(), lr=self.lr, betas=(0.9, 0.98), weight_decay=0.01)
        self.scaler = grad_scaler(self.device, self.autocast_dtype)  # float16 on CUDA only

    def wait_for_data(self, min_items: int) -> None:
        """Wait until ``min_items`` utterances have arrived (or no more will)."""
        while len(self.data.snapshot()) < min_items and not self.data.done.is_set():
            time.sleep(0.5)

    def train(self) -> nn.Module:
        """Train until the budget is spent, then log and checkpoint a last time."""
        self.start = self.last_eval = time.monotonic()
        while (progress := self._progress()) < 1.0:
            self._step(progress)
            self._log_progress()
            self._checkpoints(progress)
        return self._finish()

    def _progress(self) -> float:
        """Share of the budget spent: of the time, or of ``max_steps`` when further."""
        progress = (time.monotonic() - self.start) / self.budget_seconds
        if self.max_steps is not None:
            progress = max(progress, self.step / self.max_steps)
        return progress

    def _batch(self) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        """Augmented features of a new batch, their valid frames and the frame
        labels (the data is read afresh every 50 steps)."""
        if self.step % 50 == 0:
            self.items = self.data.snapshot()
            self.durations = np.array([len(x.audio) / SAMPLE_RATE for x in self.items])
        batch = [self.items[i] for i in _batch_indices(self.durations, self.batch_seconds, self.rng)]
        waves, lengths, labels = _tensors(batch, self.device)
        with torch.no_grad():
            waves = augment_batch(waves, lengths, self.generator, self.strength)
            features, frames = _feature_augment(self.front, waves, lengths, self.generator, self.strength)
        return features, frames, labels

    def _step(self, progress: float) -> None:
        """One optimizer step on a new batch, at the learning rate for ``progress``."""
        features, frames, labels = self._batch()
        factor = min(1.0, (self.step + 1) / self.warmup_steps) * 0.5 * (1 + math.cos(math.pi * progress))
        for group in self.optimizer.param_groups:
            group["lr"] = self.lr * max(factor, 0.02)
        dtype = self.autocast_dtype
        with torch.autocast(self.device.type, dtype=dtype or torch.float32, enabled=dtype is not None):
            hidden = self.encoder(features, frames)
            logits = self.aux(hidden)
        width = min(logits.shape[1], labels.shape[1])
        loss = nn.functional.cross_entropy(
            logits[:, :width].float().reshape(-1, logits.shape[-1]),
            labels[:, :width].reshape(-1),
            ignore_index=-100,
            label_smoothing=0.1,
        )
        optimizer_step(loss, self.optimizer, self.net.parameters(), 1.0, self.scaler)
        losses = self.losses
        losses.append(float(loss.detach()) if self.step % 10 == 0 else losses[-1] if losses else 0.0)
        self.step += 1

    def _log_progress(self) -> None:
        """Every ``eval_every`` seconds, log loss, learning rate and dev frame accuracy."""
        now = time.monotonic()
        if now - self.last_eval >= self.eval_every:
            self.last_eval = now
            record = {
                "step": self.step,
                "seconds": round(now - self.start, 1),
                "steps_per_s": round(self.step / (now - self.start), 2),
                "loss": round(float(np.mean(self.losses[-50:])), 4),
                "lr": self.optimizer.param_groups[0]["lr"],
                "utterances": len(self.items),
                "dev_frame_accuracy": self._dev_accuracy(),
            }
            self.log(record)

    def _dev_accuracy(self) -> float | None:
        if not self.dev:
            return None
        return round(frame_accuracy(self.net, self.dev, self.device, autocast_dtype=self.autocast_dtype), 4)

    def _checkpoints(self, progress: float) -> None:
        """Call ``on_checkpoint`` for every checkpoint fraction ``progress`` has reached."""
        while self.pending and progress >= self.pending[0]:
            fraction = self.pending.pop(0)
            if self.on_checkpoint is not None:
                self.on_checkpoint(self.net, fraction)

    def _finish(self) -> nn.Module:
        """The final log record and checkpoint; the network in eval mode."""
        seconds = round(time.monotonic() - self.start, 1)
        self.log({"step": self.step, "seconds": seconds, "final": True, "dev_frame_accuracy": self._dev_accuracy()})
        if self.on_checkpoint is not None:
            self.on_checkpoint(self.net, 1.0)
        return self.net.eval()
