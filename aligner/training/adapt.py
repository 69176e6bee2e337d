"""Adapt a model to the corpus it aligns (``aligner align-corpus --adapt``).

The Montreal Forced Aligner's accuracy comes largely from training on the
corpus it aligns; the transcripts are all the supervision a model needs.
:func:`adapt_model` fine-tunes a copy of the aligner's model on prepared
corpus items and returns it with a report:

* **Targets.** A frame-level phone model (``min_frames`` set, e.g. the
  packaged default) is trained by *Viterbi training*: frame labels come
  from the current model's own alignment of each item (each phone's frames
  get the phone, the silence between words the blank), words scoring below
  :data:`MIN_TARGET_SCORE` are left out of the loss, and the labels are
  re-computed with the adapted model at every evaluation (align,
  re-estimate, re-align, as an HMM aligner does). A character CTC model
  (torchaudio bundles) gets the CTC loss of its transcripts, which needs no
  alignment.
* **A prior to the original weights.** The loss adds ``prior_weight`` times
  the squared distance of the weights to the original ones (L2-SP), the
  learning rate is small and the steps are few, so the model cannot drift
  far from what it knew.
* **Held-out stopping.** A share of the items (``holdout``, at least one)
  is never trained on. Their mean word score (:attr:`Alignment.score`) is
  measured before adapting and after every ``eval_every`` steps; the best
  weights are kept, adaptation stops when the score has not improved for
  ``patience`` evaluations or after ``max_epochs`` passes over the training
  items, and when no evaluation beats the original model the original
  model is returned (``improved`` False).
* **Reproducible.** The budget is work, not time: at most ``max_epochs``
  passes over the training items (``max_steps`` when given), every random
  choice (split, order, windows, and torch's own generator while training)
  from ``seed``. The same items and options give the same weights on a
  quiet or a busy machine with the same number of threads. A wall-clock
  limit (``seconds``, ``--adapt-minutes``) applies only when asked for, and
  the report then says whether it stopped the adaptation (where it stops
  depends on the machine's speed). The score is the model's own confidence: it rises
  when the model hears these speakers better, but a sharper model is also
  a more confident one, so ``align-corpus`` reports the per-file scores of
  both passes rather than claiming the alignments improved.

Items longer than :data:`MAX_ITEM_SECONDS` are cut into windows of that
length for training (phone models; a CTC model skips them: its targets
cannot be cut without an alignment).

**Per speaker** (``align-corpus --adapt --adapt-per-speaker``): the speaker
of a corpus file is its first folder below the corpus folder
(:func:`speaker_of`); a speaker with at least :data:`MIN_SPEAKER_SECONDS` of
audio in at least :data:`MIN_SPEAKER_FILES` files to align
(:func:`speakers_to_adapt`) gets a model of its own, adapted by
:func:`adapt_model` from the *original* model on that speaker's files only
(its own held-out files, the same prior and the same "keep the original
when it does not improve" rule). :class:`SpeakerAdaptations` reports them.
"""

from __future__ import annotations

import copy
import math
import time
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, replace
from typing import TYPE_CHECKING

import numpy as np
import torch
import torch.nn.functional as F

from ..errors import AlignerError
from ..models.alignment_model import AlignmentModel
from ..models.emissions import conv_features, num_frames

if TYPE_CHECKING:  # pragma: no cover
    from ..pipeline import Aligner, PreparedItem
    from ..records import Alignment

__all__ = [
    "MIN_SCORE_GAIN",
    "MIN_SPEAKER_FILES",
    "MIN_SPEAKER_SECONDS",
    "AdaptOptions",
    "AdaptationResult",
    "SpeakerAdaptation",
    "SpeakerAdaptations",
    "adapt_model",
    "adaptation_budget",
    "frame_targets",
    "speaker_of",
    "speakers_to_adapt",
]

#: Words of the current alignment scoring below this give no frame labels.
MIN_TARGET_SCORE = 0.1
#: Longest stretch of audio (seconds) trained on at once.
MAX_ITEM_SECONDS = 20.0
#: Ignored frames in the cross-entropy loss.
IGNORE = -100
#: ``--adapt-per-speaker``: the least audio (seconds) a speaker's files to
#: align must hold for the speaker to get a model of its own. A minute of
#: speech is some 150 words, 500 phones: below that, the fifth held out to
#: decide whether the model improved is a few seconds (a score that says
#: more about those sentences than about the speaker), and the speaker's
#: share of the budget (in proportion to audio) is a handful of steps.
MIN_SPEAKER_SECONDS = 60.0
#: ``--adapt-per-speaker``: the least number of files a speaker needs for a
#: model of its own: one is held out (the guard) and at least two remain to
#: train on, so that the held-out file is never judged by a model fitted to
#: a single other recording.
MIN_SPEAKER_FILES = 3
#: The held-out measures :func:`adapt_model` can stop and keep by.
CRITERIA = ("score", "likelihood")
_MEASURES = {"score": "mean word score", "likelihood": "log-probability per frame"}
#: A held-out score counts as better only when it beats the best so far by
#: this much: a model whose weights barely moved scores within rounding
#: noise of the original (which differs with the number of threads), and
#: that is no improvement.
MIN_SCORE_GAIN = 1e-4


@dataclass(frozen=True)
class AdaptationResult:
    """The adapted model and how adaptation went.

    Attributes:
        model: the adapted model (the original one when ``improved`` is False).
        improved: whether any evaluation beat the original model on the
            held-out items (by at least :data:`MIN_SCORE_GAIN`).
        steps: optimizer steps taken.
        seconds: wall time spent adapting.
        train_items, held_out_items: how many items each side had.
        held_out_before, held_out_after: the held-out measure
            (``criterion``) with the original and with the returned model.
        history: ``(step, held-out score)`` of every evaluation.
        first_pass: per item (in the order given), the mean word score with
            the original model.
        max_steps: the step budget (``max_epochs`` passes over the training
            items, or ``max_steps`` when lower).
        time_limit: the wall-clock limit asked for (seconds; None: none).
        stopped_by_time: whether that limit stopped the adaptation before
            its step budget and patience did.
        criterion: the held-out measure (:data:`CRITERIA`): ``"score"``,
            mean word score; ``"likelihood"``, log-probability per frame.
    """

    model: AlignmentModel
    improved: bool
    steps: int
    seconds: float
    train_items: int
    held_out_items: int
    held_out_before: float
    held_out_after: float
    history: tuple[tuple[int, float], ...]
    first_pass: tuple[float, ...]
    max_steps: int = 0
    time_limit: float | None = None
    stopped_by_time: bool = False
    criterion: str = "score"

    def describe(self) -> str:
        """One line for people."""
        verdict = "kept" if self.improved else "not kept (no held-out improvement)"
        budget = f" of {self.max_steps}" if self.max_steps else ""
        line = (
            f"adapted on {self.train_items} files ({self.held_out_items} held out) for {self.steps}{budget} steps "
            f"in {self.seconds:.0f} s: held-out {_MEASURES.get(self.criterion, self.criterion)} "
            f"{self.held_out_before:.3f} -> "
            f"{self.held_out_after:.3f}, adapted model {verdict}"
        )
        if self.stopped_by_time and self.time_limit is not None:
            line += (
                f"; stopped by the time limit of {self.time_limit:.0f} s asked for, so another machine "
                "(or a busier one) may stop elsewhere"
            )
        return line


def frame_targets(
    alignment: Alignment, frames: int, labels: Sequence[str], blank: int, min_score: float = MIN_TARGET_SCORE
) -> torch.Tensor:
    """Per-frame class ids from an alignment: each phone's frames get its
    label and the frames between words the blank; a word scoring below
    ``min_score`` and the silence on either side of it are ignored (a weak
    word's neighbourhood is where its boundaries are least certain).

    Shape: ``(frames,)``, int64; :data:`IGNORE` where no label is given.
    """
    index = {label: k for k, label in enumerate(labels)}
    step = alignment.frame_seconds
    targets = torch.full((frames,), blank, dtype=torch.int64)

    def span(start: float, end: float) -> tuple[int, int]:
        first = min(frames, max(0, round(start / step)))
        return first, min(frames, max(first, round(end / step)))

    words = alignment.words
    for position, word in enumerate(words):
        first, last = span(word.start, word.end)
        if word.aligned and word.score >= min_score and word.chars:
            for char in word.chars:
                a, b = span(char.start, char.end)
                targets[a:b] = index.get(char.label, IGNORE)
            continue
        before = span(words[position - 1].end, word.start)[0] if position else 0
        after = span(word.end, words[position + 1].start)[1] if position + 1 < len(words) else frames
        targets[before:after] = IGNORE
    return targets


def _forward(model: AlignmentModel, waveform: torch.Tensor, device: torch.device) -> torch.Tensor:
    """Log-probabilities of one waveform, with gradients. Shape ``(S,)`` -> ``(T, C)``."""
    features, lengths = conv_features(
        model.model, [waveform.to(device, torch.float32)], normalize=model.normalize_waveform
    )
    hidden = model.model.encoder(features, lengths)
    return torch.log_softmax(model.model.aux(hidden)[0].float(), dim=-1)


def _window(frames: int, frame_samples: int, sample_rate: int, rng: np.random.Generator) -> tuple[int, int]:
    """A random window of at most :data:`MAX_ITEM_SECONDS` (frame range)."""
    longest = max(1, int(MAX_ITEM_SECONDS * sample_rate / frame_samples))
    if frames <= longest:
        return 0, frames
    first = int(rng.integers(0, frames - longest + 1))
    return first, first + longest


@dataclass(frozen=True)
class AdaptOptions:
    """How ``align_corpus`` adapts (``--adapt``, ``--adapt-minutes``,
    ``--save-adapted``, ``--adapt-per-speaker``).

    Attributes:
        minutes: a wall-clock limit on the adaptation, only when asked for
            (its result then depends on the machine's speed); None: no
            limit, the budget is counted in steps (:func:`adapt_model`'s
            ``max_epochs``, ``max_steps``). With ``per_speaker`` it is the
            limit of all the adaptations together (first pass included),
            shared among them in proportion to the audio each adapts on.
        max_audio_minutes: audio (in minutes) drawn at random from the
            corpus (with ``per_speaker``: also from each speaker's files) to
            adapt on; the rest is aligned with the adapted model without
            being trained on.
        save_to: folder to save the adapted model in (for ``--model``); with
            ``per_speaker`` each speaker that got a model of its own has it
            saved in ``save_to/SPEAKER/``, and ``save_to`` holds the model
            that aligned the other files.
        seed: random seed.
        max_steps: stop after this many steps at the latest (None: 5
            passes over the training files and the held-out patience
            decide); with ``per_speaker``, per adaptation.
        per_speaker: also adapt one model per speaker (the first folder
            below the corpus folder, :func:`speaker_of`) that has at least
            ``min_speaker_seconds`` of audio in ``min_speaker_files`` files
            to align; see :func:`aligner.corpus.align.align_corpus`.
        min_speaker_seconds: see :data:`MIN_SPEAKER_SECONDS`.
        min_speaker_files: see :data:`MIN_SPEAKER_FILES` (at least 2).
    """

    minutes: float | None = None
    max_audio_minutes: float = 60.0
    save_to: str | None = None
    seed: int = 0
    max_steps: int | None = None
    per_speaker: bool = False
    min_speaker_seconds: float = MIN_SPEAKER_SECONDS
    min_speaker_files: int = MIN_SPEAKER_FILES


def speaker_of(key: str) -> str:
    """The speaker of a corpus file: the first folder of its ``key`` (its
    path relative to the corpus folder, POSIX form), ``""`` for a file
    directly in the corpus folder (no speaker). Deeper folders belong to
    their first-level folder's speaker (the Montreal Forced Aligner layout;
    :attr:`aligner.corpus.files.CorpusFile.speaker` is the same).

    Examples:
        >>> speaker_of("spk1/utt1.wav"), speaker_of("spk1/day2/utt7.wav"), speaker_of("utt3.wav")
        ('spk1', 'spk1', '')
    """
    head, separator, _ = key.partition("/")
    return head if separator else ""


def speakers_to_adapt(
    files: Iterable[tuple[str, float | None]],
    min_seconds: float = MIN_SPEAKER_SECONDS,
    min_files: int = MIN_SPEAKER_FILES,
) -> dict[str, list[str]]:
    """The speakers with enough audio for a model of their own.

    Args:
        files: ``(key, audio seconds)`` of the files to align (None: unknown
            duration, counts as 0 s).
        min_seconds: least audio of a speaker (:data:`MIN_SPEAKER_SECONDS`).
        min_files: least number of files of a speaker (:data:`MIN_SPEAKER_FILES`).

    Returns:
        Each speaker (:func:`speaker_of`) with at least ``min_files`` files
        holding at least ``min_seconds`` of audio, with its keys, sorted by
        speaker. Files without a speaker never count.

    Examples:
        >>> speakers_to_adapt([("a/1.wav", 40.0), ("a/2.wav", 30.0), ("a/3.wav", 5.0), ("b/1.wav", 90.0)])
        {'a': ['a/1.wav', 'a/2.wav', 'a/3.wav']}
    """
    groups: dict[str, list[tuple[str, float]]] = {}
    for key, seconds in files:
        speaker = speaker_of(key)
        if speaker:
            groups.setdefault(speaker, []).append((key, seconds or 0.0))
    return {
        speaker: [key for key, _ in group]
        for speaker, group in sorted(groups.items())
        if len(group) >= min_files and math.fsum(s for _, s in group) >= min_seconds
    }


@dataclass(frozen=True)
class SpeakerAdaptation:
    """One speaker's adaptation (``--adapt-per-speaker``).

    Attributes:
        speaker: the speaker (first-level folder).
        files: the speaker's files to align.
        audio_seconds: their audio (from the file headers).
        result: how adapting on the speaker's files went; None when it did
            not run (``note`` says why).
        note: why there is no result.
    """

    speaker: str
    files: int
    audio_seconds: float
    result: AdaptationResult | None = None
    note: str = ""

    @property
    def kept(self) -> bool:
        """Whether the speaker's files are aligned with its own model."""
        return self.result is not None and self.result.improved

    def describe(self) -> str:
        """One line for people."""
        if self.result is None:
            return f"{self.speaker}: not adapted ({self.note}); its files use the whole-corpus model"
        line = f"{self.speaker}: {self.result.describe()}"
        return line if self.kept else f"{line}; its files use the whole-corpus model"


@dataclass(frozen=True)
class SpeakerAdaptations:
    """What ``--adapt-per-speaker`` did.

    Attributes:
        speakers: the speakers with enough audio (:func:`speakers_to_adapt`),
            by name, each with its adaptation.
        small_speakers: speakers below the threshold (aligned with the
            whole-corpus model).
        files_without_speaker: files directly in the corpus folder (aligned
            with the whole-corpus model).
        min_seconds, min_files: the threshold.
        corpus_note: why the whole-corpus adaptation did not run (empty
            when it ran; then the original model is the whole-corpus model).
    """

    speakers: tuple[SpeakerAdaptation, ...]
    small_speakers: int
    files_without_speaker: int
    min_seconds: float
    min_files: int
    corpus_note: str = ""

    @property
    def kept(self) -> list[str]:
        """The speakers whose files are aligned with their own model."""
        return [s.speaker for s in self.speakers if s.kept]

    def describe(self, limit: int = 10) -> str:
        """A few lines for people (at most ``limit`` speakers listed)."""
        kept = self.kept
        names = f" ({', '.join(kept[:limit])}{', ...' if len(kept) > limit else ''})" if kept else ""
        threshold = f"{self.min_seconds:g} s of audio in {self.min_files} files"
        others = [
            f"{len(self.speakers) - len(kept)} not kept" if len(kept) < len(self.speakers) else "",
            f"{self.small_speakers} below {threshold}" if self.small_speakers else "",
            f"{self.files_without_speaker} file(s) without a speaker folder" if self.files_without_speaker else "",
        ]
        others = [o for o in others if o]
        lines = [
            f"per speaker: {len(kept)} of {len(self.speakers) + self.small_speakers} speaker(s) got their own "
            f"adapted model{names}"
            + (f"; {len(self.speakers)} had at least {threshold}" if self.speakers else f"; none had {threshold}")
            + (f"; whole-corpus model for: {', '.join(others)}" if others else "")
        ]
        if self.corpus_note:
            lines.append(f"  whole corpus: not adapted ({self.corpus_note}); the original model is used instead")
        lines += [f"  {s.describe()}" for s in self.speakers[:limit]]
        if len(self.speakers) > limit:
            lines.append(f"  ... and {len(self.speakers) - limit} more speaker(s)")
        return "\n".join(lines)


def adapt_model(
    aligner: Aligner,
    items: Sequence[PreparedItem],
    *,
    seconds: float | None = None,
    holdout: float = 0.2,
    lr: float = 3e-5,
    prior_weight: float = 1e-2,
    batch_items: int = 4,
    eval_every: int = 10,
    patience: int = 3,
    seed: int = 0,
    max_steps: int | None = None,
    max_epochs: float = 5.0,
    min_target_score: float = MIN_TARGET_SCORE,
    on_step: Callable[[int, float | None], None] | None = None,
    first_pass: Sequence[float] | None = None,
    criterion: str = "score",
    on_evaluate: Callable[[int, AlignmentModel, float], None] | None = None,
) -> AdaptationResult:
    """Fine-tune a copy of ``aligner.models.alignment_model`` on ``items`` (see the module docstring).

    Args:
        aligner: an :class:`aligner.Aligner` (its decoding settings are used
            for every alignment made here; it is not changed).
        items: :class:`aligner.pipeline.PreparedItem` of the corpus.
        seconds: a wall-clock limit on the whole adaptation (the result
            then depends on the machine's speed); None: none, the budget is
            ``max_epochs`` / ``max_steps`` (reproducible).
        holdout: share of the items held out to decide when to stop.
        lr: AdamW learning rate.
        prior_weight: weight of the squared distance to the original weights.
        batch_items: items per optimizer step.
        eval_every: steps between held-out evaluations.
        patience: evaluations without improvement before stopping.
        seed: random seed (split, order, windows, and torch's generator
            while training; the caller's torch generator is left as it was).
        max_steps: stop after this many steps at the latest.
        max_epochs: stop after this many passes over the training items
            (self-training drifts: on the shared recordings 5 passes helped,
            27 passes made the pocketsphinx-referenced set 3 ms worse while
            the held-out score still rose).
        min_target_score: phone models: words scoring below this give no
            frame labels (:func:`frame_targets`).
        on_step: called after every step with the step number and, after an
            evaluation, the held-out score (progress bars).
        first_pass: the items' mean word scores (:attr:`Alignment.score`)
            with ``aligner``, when already known: the first pass is then
            skipped.
        criterion: the held-out measure that decides when to stop and
            which weights to keep (one of :data:`CRITERIA`): ``"score"``,
            the mean word score of the held-out items; ``"likelihood"``,
            the log-probability per frame of their forced paths
            (:meth:`aligner.Aligner.path_log_likelihoods`).
        on_evaluate: called after every held-out evaluation with the step,
            the current model and its held-out measure (benchmarks).

    Raises:
        AlignerError: fewer than two items, or a bad argument.
    """
    if len(items) < 2:
        raise AlignerError(f"adaptation needs at least 2 files (one is held out), got {len(items)}")
    if not (
        (seconds is None or seconds > 0)
        and 0 < holdout < 1
        and lr > 0
        and prior_weight >= 0
        and batch_items >= 1
        and eval_every >= 1
        and patience >= 1
    ):
        raise AlignerError(
            "adaptation: seconds, holdout in (0, 1), lr > 0, prior_weight >= 0, batch_items, "
            "eval_every and patience >= 1 are required"
        )
    if first_pass is not None and len(first_pass) != len(items):
        raise AlignerError("adaptation: first_pass needs one score per item")
    if max_steps is not None and max_steps < 0:
        raise AlignerError(f"adaptation: max_steps must be >= 0, not {max_steps}")
    if criterion not in CRITERIA:
        raise AlignerError(f"adaptation: criterion must be one of {', '.join(CRITERIA)}, not {criterion!r}")
    with torch.random.fork_rng(devices=[]):  # dropout, if any, draws from the seed; the caller's generator is kept
        torch.manual_seed(seed)
        return _adapt(
            aligner.with_vtln(False),  # vtln chooses warps after adapting, per speaker (align_corpus)
            items,
            seconds=seconds,
            holdout=holdout,
            lr=lr,
            prior_weight=prior_weight,
            batch_items=batch_items,
            eval_every=eval_every,
            patience=patience,
            seed=seed,
            max_steps=max_steps,
            max_epochs=max_epochs,
            min_target_score=min_target_score,
            on_step=on_step,
            first_pass=first_pass,
            criterion=criterion,
            on_evaluate=on_evaluate,
        )


def _adapt(
    aligner: Aligner,
    items: Sequence[PreparedItem],
    *,
    seconds: float | None,
    holdout: float,
    lr: float,
    prior_weight: float,
    batch_items: int,
    eval_every: int,
    patience: int,
    seed: int,
    max_steps: int | None,
    max_epochs: float,
    min_target_score: float,
    on_step: Callable[[int, float | None], None] | None,
    first_pass: Sequence[float] | None,
    criterion: str,
    on_evaluate: Callable[[int, AlignmentModel, float], None] | None,
) -> AdaptationResult:
    """:func:`adapt_model` once its arguments are checked (in its torch generator)."""
    started = time.perf_counter()
    rng = np.random.default_rng(seed)
    order = rng.permutation(len(items))
    held = max(1, round(len(items) * holdout))
    held_out = [items[k] for k in order[:held]]
    train = [items[k] for k in order[held:]]
    original = aligner.model
    phone_model = aligner.min_frames is not None

    if first_pass is None:
        first_pass = [a.score for a in aligner.align_prepared(list(items))]
    if criterion == "likelihood":
        before = _log_likelihood(aligner, held_out)
    else:
        before = float(np.mean([first_pass[k] for k in order[:held]]))

    model = replace(original, model=copy.deepcopy(original.model))
    adapted = aligner.with_model(model)
    device = aligner.device
    if phone_model:
        train = [item for item in train if item.transcript.words]
    else:  # CTC targets cannot be cut: only items that fit in one window
        longest = MAX_ITEM_SECONDS * original.sample_rate
        train = [item for item in train if item.waveform.shape[-1] <= longest]
    if not train:
        raise AlignerError(
            f"adaptation: no file to train on (a character model trains on files of at most {MAX_ITEM_SECONDS:g} s)"
        )

    reference = [p.detach().clone() for p in model.model.parameters()]
    trainable = [p for p in model.model.parameters() if p.requires_grad]
    optimizer = torch.optim.AdamW(trainable, lr=lr, betas=(0.9, 0.98), weight_decay=0.0)

    def targets_of(current: Aligner) -> list[torch.Tensor]:
        model.model.eval()
        alignments = current.align_prepared(train)
        result = []
        for item, alignment in zip(train, alignments):
            frames = num_frames(original, item.waveform.shape[-1])
            result.append(frame_targets(alignment, frames, original.labels, original.blank, min_target_score))
        return result

    def held_out_score() -> float:
        model.model.eval()
        if criterion == "likelihood":
            return _log_likelihood(adapted, held_out)
        return float(np.mean([a.score for a in adapted.align_prepared(held_out)]))

    targets = targets_of(adapted) if phone_model else []
    limit = math.ceil(max_epochs * len(train) / batch_items)
    if max_steps is not None:
        limit = min(limit, max_steps)
    best_score, best_state = before, None
    history: list[tuple[int, float]] = []
    step, stale, out_of_time = 0, 0, False
    while stale < patience and step < limit:
        if seconds is not None and time.perf_counter() - started >= seconds:
            out_of_time = True
            break
        model.model.train()
        chosen = rng.choice(len(train), size=min(batch_items, len(train)), replace=False)
        optimizer.zero_grad(set_to_none=True)
        total = torch.zeros((), device=device)
        for k in chosen:
            item = train[k]
            if phone_model:
                frames = num_frames(original, item.waveform.shape[-1])
                first, last = _window(frames, original.frame_samples, original.sample_rate, rng)
                audio = item.waveform[
                    first * original.frame_samples : (last - 1) * original.frame_samples + original.receptive_field
                ]
                log_probs = _forward(model, audio, device)
                labels = targets[k][first : first + log_probs.shape[0]].to(device)
                width = min(log_probs.shape[0], labels.shape[0])
                if not bool((labels[:width] != IGNORE).any()):
                    continue
                total = total + F.nll_loss(log_probs[:width], labels[:width], ignore_index=IGNORE)
            else:
                log_probs = _forward(model, item.waveform, device)
                target = torch.tensor(item.targets, dtype=torch.long, device=device)
                loss = F.ctc_loss(
                    log_probs[:, None, : original.num_labels - (1 if original.append_star else 0)],
                    target[None],
                    torch.tensor([log_probs.shape[0]]),
                    torch.tensor([len(target)]),
                    blank=original.blank,
                    reduction="mean",
                    zero_infinity=True,
                )
                total = total + loss
        loss = total / len(chosen)
        if prior_weight:
            loss = loss + prior_weight * sum(((p - r) ** 2).sum() for p, r in zip(model.model.parameters(), reference))
        if loss.requires_grad:  # else nothing in these items had a label
            loss.backward()
            torch.nn.utils.clip_grad_norm_(trainable, 1.0)
            optimizer.step()
        step += 1
        score = None
        if step % eval_every == 0:
            score = held_out_score()
            if on_evaluate is not None:
                on_evaluate(step, model, score)
            history.append((step, score))
            if score > best_score + MIN_SCORE_GAIN:
                best_score, stale = score, 0
                best_state = {k: v.detach().clone() for k, v in model.model.state_dict().items()}
            else:
                stale += 1
            if phone_model:
                targets = targets_of(adapted)
        if on_step is not None:
            on_step(step, score)
    model.model.eval()
    if best_state is None:
        return AdaptationResult(
            original,
            False,
            step,
            time.perf_counter() - started,
            len(train),
            held,
            before,
            before,
            tuple(history),
            tuple(first_pass),
            limit,
            seconds,
            out_of_time,
            criterion,
        )
    model.model.load_state_dict(best_state)
    return AdaptationResult(
        model,
        True,
        step,
        time.perf_counter() - started,
        len(train),
        held,
        before,
        best_score,
        tuple(history),
        tuple(first_pass),
        limit,
        seconds,
        out_of_time,
        criterion,
    )


def _log_likelihood(aligner: Aligner, items: Sequence[PreparedItem]) -> float:
    """The log-probability per frame of the forced paths of ``items``."""
    totals, _ = aligner.path_log_likelihoods(items)
    return math.fsum(s for s, _ in totals) / max(1, sum(n for _, n in totals))


def adaptation_budget(minutes: float | None) -> float | None:
    """The wall-clock limit of adaptation in seconds: ``minutes`` when
    given (asked for), else None (no limit: the budget is steps)."""
    if minutes is None:
        return None
    if not (math.isfinite(minutes) and minutes > 0):
        raise AlignerError(f"adapt minutes must be a positive number, not {minutes!r}")
    return 60.0 * minutes
