"""Real recordings as training data for the phone model (embedded re-estimation).

Real speech comes without phone times. As hidden-Markov-model aligners have
always done, the current model aligns each recording to its transcript (the
duration decoder), its phones become the frame labels of the next round of
training, and the new model aligns again. Frames the alignment is least sure
of are left out of the loss (label :data:`IGNORE`): the frames around every
boundary between two phones (``margin`` on each side) and between speech and
silence (``edge_margin``), and the frames of words scored below
``min_word_score``; a recording the guard calls suspect is left out.
Synthetic speech, whose phone times are exact, trains beside it and keeps
the boundaries anchored.

Speakers are split once, deterministically (:func:`heldout_speakers`): the
held-out speakers are never trained on and are the development set.

The layout read here (see MODEL.md, *Real speech*)::

    ROOT/ljspeech/lj/NAME.flac + NAME.txt                      one reader, transcribed
    ROOT/librispeech-untranscribed/SPEAKER/NAME.flac           many readers
    ROOT/librispeech-untranscribed/SPEAKERS-*.TXT              LibriSpeech's speaker tables
    TEXT/SPEAKER/NAME.txt                                      transcripts kept by
                                                               scripts/transcribe_real_speech.py
"""

from __future__ import annotations

import os
import random
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np

from .phone import FRAME, IGNORE, SAMPLE_RATE, LabeledUtterance, frame_labels

if TYPE_CHECKING:  # pragma: no cover
    from ..models.alignment_model import AlignmentModel
    from ..records import Alignment

__all__ = [
    "IGNORE",
    "RealClip",
    "find_clips",
    "heldout_speakers",
    "label_clips",
    "load_utterances",
    "save_utterances",
    "speaker_sexes",
    "split_clips",
]

LIBRI = "librispeech-untranscribed"
_FRAME_SECONDS = FRAME / SAMPLE_RATE


@dataclass(frozen=True)
class RealClip:
    """One real recording with its transcript."""

    audio: Path
    text: str
    speaker: str
    corpus: str  # "ljspeech" or "librispeech"


def speaker_sexes(root: Path) -> dict[str, tuple[str, str]]:
    """``speaker -> (sex, subset)`` from LibriSpeech's ``SPEAKERS-*.TXT`` tables,
    for the speakers present under ``root/librispeech-untranscribed``."""
    folder = root / LIBRI
    present = {p.name for p in folder.iterdir() if p.is_dir()}
    out: dict[str, tuple[str, str]] = {}
    for table in sorted(folder.glob("SPEAKERS-*.TXT")):
        for line in table.read_text(encoding="utf-8").splitlines():
            if line.startswith(";") or "|" not in line:
                continue
            fields = [f.strip() for f in line.split("|")]
            if fields[0] in present and fields[2] == table.stem.removeprefix("SPEAKERS-"):
                out[fields[0]] = (fields[1], fields[2])
    return out


def heldout_speakers(root: Path, per_sex: int = 15, seed: int = 0) -> set[str]:
    """The development speakers: every ``test-other`` speaker, and ``per_sex``
    women and ``per_sex`` men of ``train-clean-100`` chosen at random (``seed``).
    Deterministic for a given folder."""
    sexes = speaker_sexes(root)
    held = {s for s, (_, subset) in sexes.items() if subset == "test-other"}
    rng = random.Random(seed)
    for sex in ("F", "M"):
        pool = sorted(s for s, (x, subset) in sexes.items() if x == sex and subset == "train-clean-100")
        held.update(rng.sample(pool, min(per_sex, len(pool))))
    return held


def find_clips(root: Path, texts: Path | None) -> list[RealClip]:
    """Every transcribed clip: LJ Speech's own transcripts, and the LibriSpeech
    clips that ``texts`` holds a kept transcript for."""
    clips = [
        RealClip(audio, audio.with_suffix(".txt").read_text(encoding="utf-8").strip(), "LJ", "ljspeech")
        for audio in sorted((root / "ljspeech" / "lj").glob("*.flac"))
        if audio.with_suffix(".txt").is_file()
    ]
    if texts is not None:
        for text in sorted(texts.glob("*/*.txt")):
            audio = root / LIBRI / text.parent.name / (text.stem + ".flac")
            if audio.is_file():
                clips.append(RealClip(audio, text.read_text(encoding="utf-8").strip(), text.parent.name, "librispeech"))
    return clips


def _trusted_labels(
    num_samples: int, alignment: Alignment, margin: int, min_word_score: float, edge_margin: int | None = None
) -> np.ndarray:
    """Frame labels from an alignment's phones; untrusted frames set to :data:`IGNORE`.

    ``margin`` frames on each side of a boundary between two phones are not
    trusted, ``edge_margin`` (default ``margin``) around a boundary between
    speech and silence.
    """
    words = alignment.words
    phones = [
        (span.label, round(span.start * SAMPLE_RATE), round(span.end * SAMPLE_RATE)) for w in words for span in w.chars
    ]
    labels = frame_labels(num_samples, phones)
    frames = len(labels)
    edge_margin = margin if edge_margin is None else edge_margin
    edges = {round(t / _FRAME_SECONDS) for w in words for span in w.chars for t in (span.start, span.end)}
    clean = labels.copy()  # which side is silence, read before any frame is left out
    for edge in edges:
        silent = (0 < edge <= frames and clean[edge - 1] == 0) or (edge < frames and clean[edge] == 0)
        m = edge_margin if silent else margin
        labels[max(edge - m, 0) : min(edge + m, frames)] = IGNORE
    for w in words:
        if w.score < min_word_score or not w.aligned:
            start, end = round(w.start / _FRAME_SECONDS), round(w.end / _FRAME_SECONDS)
            labels[max(start - margin, 0) : min(end + margin, frames)] = IGNORE
    return labels


def label_clips(
    model: str | os.PathLike | AlignmentModel | None,
    clips: Sequence[RealClip],
    *,
    margin: int = 1,
    edge_margin: int | None = None,
    min_word_score: float = 0.0,
    batch: int = 8,
    on_result: Callable[[LabeledUtterance], None] | None = None,
) -> tuple[list[LabeledUtterance], list[tuple[RealClip, str]]]:
    """Align ``clips`` with ``model`` (any model spec the aligner loads; the
    duration decoder of a phone model) and turn each alignment into frame
    labels. Returns the labelled utterances (``source`` ``"real"``) and the
    clips left out with the reason (the guard's, or an error)."""
    from ..audio import load_audio
    from ..errors import AlignerError
    from ..pipeline import Aligner

    aligner = Aligner(model, device="cpu")
    kept: list[LabeledUtterance] = []
    dropped: list[tuple[RealClip, str]] = []
    for start in range(0, len(clips), batch):
        group = clips[start : start + batch]
        waves = [load_audio(c.audio, SAMPLE_RATE).numpy() for c in group]
        results: list[Alignment | None]
        try:
            results = list(aligner.align_batch([((w, SAMPLE_RATE), c.text) for w, c in zip(waves, group)]))
        except AlignerError:
            results = []
            for w, c in zip(waves, group):
                try:
                    results.append(aligner.align((w, SAMPLE_RATE), c.text))
                except AlignerError as error:
                    results.append(None)
                    dropped.append((c, str(error)))
        for wave, clip, result in zip(waves, group, results):
            if result is None:
                continue
            if result.suspect:
                dropped.append((clip, "; ".join(result.suspect)))
                continue
            labels = _trusted_labels(len(wave), result, margin, min_word_score, edge_margin)
            audio16 = np.clip(np.round(wave * 32768), -32768, 32767).astype(np.int16)
            item = LabeledUtterance(
                audio16,
                labels,
                tuple((w.start, w.end) for w in result.words),
                tuple((s.label, s.start, s.end) for w in result.words for s in w.chars),
                clip.text,
                "real",
            )
            kept.append(item)
            if on_result is not None:
                on_result(item)
    return kept, dropped


def split_clips(clips: Iterable[RealClip], heldout: set[str]) -> tuple[list[RealClip], list[RealClip]]:
    """``(train, heldout)``: the clips of speakers outside and inside ``heldout``."""
    train: list[RealClip] = []
    held: list[RealClip] = []
    for clip in clips:
        (held if clip.speaker in heldout else train).append(clip)
    return train, held


def save_utterances(path: Path, items: Sequence[LabeledUtterance]) -> None:
    """Write labelled utterances to one ``.npz`` file (no pickles; atomically)."""
    import json
    import os

    audio_ends = np.cumsum([len(x.audio) for x in items])
    label_ends = np.cumsum([len(x.labels) for x in items])
    meta = [{"words": x.words, "phones": x.phones, "text": x.text, "source": x.source} for x in items]
    tmp = path.with_name(path.name + ".tmp.npz")
    np.savez(
        tmp,
        audio=np.concatenate([x.audio for x in items]) if items else np.zeros(0, np.int16),
        labels=np.concatenate([x.labels for x in items]) if items else np.zeros(0, np.uint8),
        audio_ends=audio_ends,
        label_ends=label_ends,
        meta=np.array(json.dumps(meta)),
    )
    os.replace(tmp, path)


def load_utterances(path: Path) -> list[LabeledUtterance]:
    """Read what :func:`save_utterances` wrote."""
    import json

    with np.load(path, allow_pickle=False) as data:
        audio, labels = data["audio"], data["labels"]
        a_ends, l_ends = data["audio_ends"], data["label_ends"]
        meta = json.loads(str(data["meta"]))
    out = []
    a0 = l0 = 0
    for a1, l1, m in zip(a_ends, l_ends, meta):
        out.append(
            LabeledUtterance(
                audio[a0:a1].copy(),
                labels[l0:l1].copy(),
                tuple(tuple(w) for w in m["words"]),
                tuple((p[0], p[1], p[2]) for p in m["phones"]),
                m["text"],
                m["source"],
            )
        )
        a0, l0 = a1, l1
    return out
