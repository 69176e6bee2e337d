"""``align-corpus --vtln``: one vocal-tract-length warp per speaker.

A speaker is the first-level folder of the corpus
(:func:`aligner.training.adapt.speaker_of`). Each speaker's warp is chosen
by :func:`aligner.vtln.search_warps` on an excerpt of its audio: its files
in key order until :data:`aligner.vtln.EXCERPT_SECONDS` (from the
headers), all files of the corpus counted, so a resumed run chooses the
same warp as the first. All the speaker's files are then aligned with it
in one pass. Files directly in the corpus folder have no speaker: each is
searched on its own audio when it is aligned (as ``aligner align --vtln``).
"""

from __future__ import annotations

import statistics
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, replace
from pathlib import Path
from typing import TYPE_CHECKING, cast

from ..errors import AlignerError
from ..vtln import EXCERPT_SECONDS, WarpChoice, excerpt, search_warps
from .files import CorpusFile, audio_duration

if TYPE_CHECKING:  # pragma: no cover
    from ..pipeline import Aligner, PreparedItem

__all__ = ["SpeakerWarps", "choose_speaker_warps"]

#: Most excerpt audio (seconds) scored in one batch.
_BATCH_SECONDS = 120.0


@dataclass(frozen=True)
class SpeakerWarps:
    """The warp of every speaker of a corpus (``--vtln``).

    Attributes:
        choices: each speaker's :class:`~aligner.vtln.WarpChoice`, by name.
        seconds: wall time the searches took.
    """

    choices: dict[str, WarpChoice]
    seconds: float = 0.0

    def warp_item(self, speaker: str, item: PreparedItem) -> PreparedItem:
        """``item`` (a file of ``speaker``) with its speaker's warp, and a
        warning when that speaker's audio was too little to search; itself
        when the speaker has no choice (no speaker folder)."""
        choice = self.choices.get(speaker)
        if choice is None:
            return item
        warnings = item.warnings if choice.searched else (*item.warnings, f"vtln: speaker {speaker}: {choice.note}")
        return replace(item, warp=choice.warp, warnings=warnings)

    def describe(self, limit: int = 5) -> str:
        """One line for people (at most ``limit`` speakers named)."""
        searched = {s: c for s, c in self.choices.items() if c.searched}
        left = sorted(s for s, c in self.choices.items() if not c.searched)
        line = f"vtln: {len(self.choices)} speaker(s) in {self.seconds:.1f} s"
        if searched:
            warps = [c.warp for c in searched.values()]
            line += (
                f"; warps {min(warps):.2f}-{max(warps):.2f} (median {statistics.median(warps):.2f}), "
                f"log-probability per frame {statistics.fmean(c.identity for c in searched.values()):.3f} at warp 1 "
                f"-> {statistics.fmean(c.log_likelihood for c in searched.values()):.3f}"
            )
        if left:
            names = ", ".join(left[:limit]) + (", ..." if len(left) > limit else "")
            line += f"; {len(left)} not warped, too little audio to search ({names})"
        return line


def choose_speaker_warps(
    files: Sequence[CorpusFile],
    aligner_of: Callable[[str], Aligner],
    speaker_of: Callable[[str], str],
    limit: float = EXCERPT_SECONDS,
) -> SpeakerWarps:
    """Each speaker's warp (see the module docstring).

    Args:
        files: every file of the corpus (aligned already or not).
        aligner_of: the aligner that aligns a file (by key).
        speaker_of: a file key's speaker (``""``: none).
        limit: excerpt seconds per speaker.

    A file of the excerpt that cannot be read or normalized is left out
    (the alignment pass reports it).
    """
    started = time.perf_counter()
    speakers: dict[str, list[CorpusFile]] = {}
    for item in sorted(files, key=lambda f: f.key):
        speaker = speaker_of(item.key)
        if speaker and item.transcript is not None:
            speakers.setdefault(speaker, []).append(item)
    choices: dict[str, WarpChoice] = {}
    plans: list[tuple[str, Aligner, list[PreparedItem]]] = []
    for speaker, own in sorted(speakers.items()):
        durations = [audio_duration(item.audio) or 0.0 for item in own]
        aligner = aligner_of(own[0].key)
        prepared = []
        for row in excerpt(durations, limit):
            try:
                prepared.append(aligner.prepare(own[row].audio, cast(Path, own[row].transcript), warn=False))
            except AlignerError:
                continue
        plans.append((speaker, aligner, prepared))
    while plans:  # speakers of the same aligner, up to _BATCH_SECONDS of excerpt per search
        aligner = plans[0][1]
        batch: list[tuple[str, Aligner, list[PreparedItem]]] = []
        rest: list[tuple[str, Aligner, list[PreparedItem]]] = []
        total = 0.0
        for plan in plans:
            size = sum(item.waveform.shape[-1] for item in plan[2]) / aligner.model.sample_rate
            if plan[1] is aligner and (not batch or total + size <= _BATCH_SECONDS):
                batch.append(plan)
                total += size
            else:
                rest.append(plan)
        plans = rest
        items = [item for _, _, chosen in batch for item in chosen]
        groups, first = [], 0
        for _, _, chosen in batch:
            groups.append(list(range(first, first + len(chosen))))
            first += len(chosen)

        def score(
            rows: Sequence[int], warps: Sequence[float], items: list[PreparedItem] = items, aligner: Aligner = aligner
        ) -> list[tuple[float, int]]:
            return aligner.path_log_likelihoods([items[row] for row in rows], warps)[0]

        seconds = [item.waveform.shape[-1] / aligner.model.sample_rate for item in items]
        for (speaker, _, _), choice in zip(batch, search_warps(score, seconds, groups)):
            choices[speaker] = choice
    return SpeakerWarps(dict(sorted(choices.items())), time.perf_counter() - started)
