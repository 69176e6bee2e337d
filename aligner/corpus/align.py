"""Align a whole corpus folder: batches, background decoding, resume, reports.

:func:`align_corpus` reads a corpus in the Montreal Forced Aligner layout
(see :mod:`aligner.corpus.files`) and writes, for every audio file, one output per
requested format at the same relative place in the output folder.

* **Batches**: files are sorted by duration (from their headers, no
  decoding) and grouped so that each batch holds at most ``batch_seconds``
  of *padded* audio (batch size × longest item), so little compute is
  spent on padding. Emissions and the Viterbi run on whole batches.
* **Background decoding**: while a batch runs through the network, worker
  threads decode, down-mix and resample the audio of the next batches and
  normalize their transcripts (libsndfile and soxr release the GIL).
* **Resumable**: a file whose outputs all exist is skipped unless
  ``overwrite``; every output is written atomically (temporary file +
  rename), so an interrupted run (Ctrl-C, ``kill``) leaves no partial file
  and the next run picks up where it stopped.
* **Failures never abort the run**: a file that cannot be read, normalized,
  aligned or written is recorded with its stage and message and the run goes
  on; a batch that fails is retried one file at a time so that only the bad
  file fails. The failures go to ``failures.tsv`` in the output folder.
* **Confidence**: ``confidence.tsv`` lists every aligned file (this run and
  earlier ones) with its mean word score, its low-score and unplaced words
  (:meth:`~aligner.records.Alignment.confidence`) and the audio partial
  mode skipped, worst first, so the bad alignments of a corpus are found at
  a glance.
* **Adaptation** (``adapt``): the model is first fine-tuned on the corpus
  itself (:mod:`aligner.training.adapt`), optionally one model per speaker
  folder; ``confidence.tsv`` then says which model aligned each file.
* **Clusters**: with ``ray_address`` the same run (the same batches,
  functions and reports) goes to the actors of a Ray cluster
  (:mod:`aligner.corpus.ray_cluster`).
"""

from __future__ import annotations

import csv
import io
import math
import os
import random
import time
from collections import deque
from collections.abc import Callable, Iterator, Sequence
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import TYPE_CHECKING, Any, cast

from ..atomic import atomic_write_text
from ..errors import AlignerError, AudioError, CorpusError, OutputError
from ..records import Alignment
from .files import CorpusFile, Problem, audio_duration, bucket_batches, find_corpus_files, output_path
from .journal import Journal, confidence_row, row_from_outputs

if TYPE_CHECKING:
    from ..models.alignment_model import AlignmentModel
    from ..pipeline import Aligner, PreparedItem
    from ..training.adapt import AdaptationResult, AdaptOptions, SpeakerAdaptations
    from .ray_cluster import AlignerSpec
    from .speaker_warps import SpeakerWarps

__all__ = ["FAILURES_FILE", "CONFIDENCE_FILE", "CorpusSummary", "FileResult", "align_corpus", "plan_batches"]

#: Failure report written in the output folder (tab-separated: file, stage, message).
FAILURES_FILE = "failures.tsv"
#: Per-file confidence report written in the output folder, worst first.
CONFIDENCE_FILE = "confidence.tsv"
#: Words whose score (mean frame probability) is below this count as low-confidence.
LOW_SCORE = 0.2
_CONFIDENCE_COLUMNS = [
    "file",
    "score",
    "words",
    "low_score_words",
    "unaligned_words",
    "skipped_seconds",
    "worst_words",
    "suspect",
    "first_pass_score",
    "model",
]
#: confidence.tsv of the oldest version still read back (its rows get empty new columns).
_OLDEST_CONFIDENCE_WIDTH = 7
#: ``FileResult.model`` / column ``model`` of confidence.tsv with ``adapt``:
#: the original model, the model adapted on the whole corpus, or (prefix)
#: the speaker's own model (``speaker:NAME``).
MODEL_ORIGINAL, MODEL_CORPUS, MODEL_SPEAKER = "original", "corpus", "speaker:"


@dataclass(frozen=True)
class FileResult:
    """What happened to one corpus file.

    Attributes:
        key: the file, relative to the corpus folder.
        status: ``"aligned"``, ``"failed"`` or ``"skipped"`` (outputs exist).
        seconds: audio duration (0 when unknown).
        score: mean score of all its words (aligned files); unlike
            :attr:`Alignment.score` the words that could not be placed
            count, with their low score, so a file with unplaced words ranks
            low.
        words: number of words.
        low_words: words scoring below :data:`LOW_SCORE`.
        unaligned_words: words that could not be placed (``aligned=False``).
        skipped_seconds: audio the star skipped (partial mode).
        worst_words: up to three lowest-scoring words, ``"WORD:0.03"``.
        suspect: why the alignment is probably wrong somewhere
            (:attr:`Alignment.suspect`); empty when it looks plausible.
        first_pass_score: with ``--adapt``, the file's mean word score
            with the original model (NaN when it was not in the adaptation
            set or there was no adaptation).
        model: with ``--adapt``, the model that aligned the file:
            ``"original"``, ``"corpus"`` (adapted on the whole corpus) or
            ``"speaker:NAME"`` (adapted on speaker NAME's files,
            ``--adapt-per-speaker``); empty without ``--adapt``.
        problem: the failure (failed files).
    """

    key: str
    status: str
    seconds: float = 0.0
    score: float = math.nan
    words: int = 0
    low_words: int = 0
    unaligned_words: int = 0
    skipped_seconds: float = 0.0
    worst_words: tuple[str, ...] = ()
    suspect: tuple[str, ...] = ()
    first_pass_score: float = math.nan
    model: str = ""
    problem: Problem | None = None


@dataclass
class CorpusSummary:
    """Totals of one :func:`align_corpus` run.

    Attributes:
        results: one :class:`FileResult` per corpus file.
        wall_seconds: duration of the run.
        out_dir: the output folder.
        interrupted: True when the run was stopped (Ctrl-C) before the end.
        adaptation: what ``--adapt`` did on the whole corpus (None without it).
        speakers: what ``--adapt-per-speaker`` did (None without it).
        warps: each speaker's vocal-tract-length warp (an aligner with
            ``vtln`` on; None otherwise).
    """

    results: list[FileResult] = field(default_factory=list)
    wall_seconds: float = 0.0
    out_dir: Path | None = None
    interrupted: bool = False
    adaptation: AdaptationResult | None = None
    speakers: SpeakerAdaptations | None = None
    warps: SpeakerWarps | None = None

    @property
    def scored_lower(self) -> list[FileResult]:
        """Files whose mean word score fell below their first-pass score (``--adapt``)."""
        return [r for r in self.results if r.status == "aligned" and r.score < r.first_pass_score]

    def _count(self, status: str) -> int:
        return sum(1 for r in self.results if r.status == status)

    @property
    def aligned(self) -> int:
        return self._count("aligned")

    @property
    def failed(self) -> int:
        return self._count("failed")

    @property
    def skipped(self) -> int:
        return self._count("skipped")

    @property
    def audio_seconds(self) -> float:
        """Audio aligned in this run."""
        return sum(r.seconds for r in self.results if r.status == "aligned")

    @property
    def speed(self) -> float:
        """Audio seconds aligned per wall-clock second (x real time)."""
        return self.audio_seconds / self.wall_seconds if self.wall_seconds > 0 else 0.0

    @property
    def failures(self) -> list[Problem]:
        return [r.problem for r in self.results if r.problem is not None]

    def worst(self, n: int = 10) -> list[FileResult]:
        """The ``n`` aligned files with the lowest mean word score."""
        aligned = [r for r in self.results if r.status == "aligned"]
        return sorted(aligned, key=lambda r: (r.score, r.key))[:n]

    def describe(self, worst: int = 10) -> str:
        """A few lines for people: counts, audio hours, speed, worst files."""
        lines = [
            f"aligned {self.aligned}, failed {self.failed}, skipped {self.skipped} (outputs existed)"
            + (" -- interrupted" if self.interrupted else "")
        ]
        if self.aligned:
            lines.append(
                f"audio {self.audio_seconds / 3600:.3f} h in {self.wall_seconds:.1f} s wall time: "
                f"{self.speed:.1f}x real time (real-time factor {1 / self.speed:.4f})"
            )
        if self.failed and self.out_dir is not None:
            lines.append(f"failures: {self.out_dir / FAILURES_FILE}")
        if self.adaptation is not None:
            lines.append(self.adaptation.describe())
        if self.speakers is not None:
            lines.append(self.speakers.describe())
        if self.warps is not None:
            lines.append(self.warps.describe())
        if (self.adaptation is not None and self.adaptation.improved) or (
            self.speakers is not None and self.speakers.kept
        ):
            lower = self.scored_lower
            compared = sum(1 for r in self.results if r.status == "aligned" and r.first_pass_score >= 0)
            lines.append(
                f"{len(lower)} of {compared} files scored lower than with the original model "
                f"(column first_pass_score of {CONFIDENCE_FILE})" + (f", e.g. {lower[0].key}" if lower else "")
            )
        suspect = [r for r in self.results if r.suspect]
        if suspect:
            lines.append(
                f"SUSPECT: {len(suspect)} alignment(s) look implausible (column 'suspect' of "
                f"{CONFIDENCE_FILE}), e.g. {suspect[0].key}: {suspect[0].suspect[0]}"
            )
        low = self.worst(worst)
        if low:
            lines.append(
                f"lowest mean word scores (all in {self.out_dir / CONFIDENCE_FILE}):"
                if self.out_dir is not None
                else "lowest mean word scores:"
            )
            for r in low:
                unplaced = f", {r.unaligned_words} not placed" if r.unaligned_words else ""
                lines.append(f"  {r.score:.3f}  {r.key}  ({r.low_words}/{r.words} words below {LOW_SCORE}{unplaced})")
        return "\n".join(lines)


def plan_batches(
    durations: Sequence[tuple[CorpusFile, float | None]], batch_seconds: float
) -> list[list[tuple[CorpusFile, float | None]]]:
    """Group files into batches of at most ``batch_seconds`` of padded audio.

    Files are sorted longest first; a batch's padded size is its number of
    files times its longest file. A file longer than ``batch_seconds`` is a
    batch of its own (the emission stage windows long files). Files of
    unknown duration (no readable header) each get a batch of their own.
    """
    seconds = [0.0 if d is None else d for _, d in durations]
    known = sorted(
        (i for i, d in enumerate(durations) if d[1] is not None), key=lambda i: (-seconds[i], durations[i][0].key)
    )
    batches = [[durations[i] for i in batch] for batch in bucket_batches(seconds, batch_seconds, known)]
    batches.extend([d] for d in durations if d[1] is None)
    return batches


def _confidence(key: str, seconds: float, alignment: Alignment) -> FileResult:
    confidence = alignment.confidence(LOW_SCORE)
    worst = sorted(alignment.low_confidence_words(LOW_SCORE), key=lambda w: (w.aligned, w.score))[:3]
    scores = [w.score for w in alignment.words if math.isfinite(w.score)]
    score = math.fsum(scores) / len(scores) if scores else 0.0  # unplaced words count, with their low score
    return FileResult(
        key,
        "aligned",
        seconds,
        score,
        confidence.words,
        confidence.low,
        confidence.unaligned,
        confidence.skipped_seconds,
        tuple(f"{w.text}:{w.score:.2f}" for w in worst),
        alignment.suspect,
    )


def _write_outputs(alignment: Alignment, paths: dict[str, Path], subtitles: str) -> None:
    from ..writers import write_alignment

    for fmt, path in paths.items():
        path.parent.mkdir(parents=True, exist_ok=True)
        options = {"mode": subtitles} if fmt in ("srt", "vtt") else {}
        write_alignment(alignment, path, fmt, **options)


def _read_confidence(path: Path) -> dict[str, list[str]]:
    if not path.is_file():
        return {}
    try:
        with path.open(newline="", encoding="utf-8") as handle:
            rows = list(csv.reader(handle, delimiter="\t"))
    except (OSError, UnicodeDecodeError, csv.Error):
        return {}
    width = len(_CONFIDENCE_COLUMNS)  # rows of earlier versions (7 to 9 columns) get empty new ones
    return {
        row[0]: row + [""] * (width - len(row)) for row in rows[1:] if _OLDEST_CONFIDENCE_WIDTH <= len(row) <= width
    }


def _write_reports(summary: CorpusSummary, out_dir: Path, done_keys: set[str], formats: Sequence[str]) -> None:
    """Rewrite failures.tsv (this run's failures, by file) and confidence.tsv
    (every file whose outputs exist: this run's rows, else the journal's, else
    earlier rows, else rebuilt from its JSON output; see
    :mod:`aligner.corpus.journal`), so that a resumed run's reports equal an
    uninterrupted run's."""
    failures_path = out_dir / FAILURES_FILE
    if summary.failures:
        buffer = io.StringIO()
        writer = csv.writer(buffer, delimiter="\t", lineterminator="\n")
        writer.writerow(["file", "stage", "message"])
        for problem in sorted(summary.failures, key=lambda problem: problem.key):
            writer.writerow([problem.key, problem.stage, " ".join(problem.message.split())])
        atomic_write_text(failures_path, buffer.getvalue())
    elif failures_path.exists():
        failures_path.unlink()

    confidence_path = out_dir / CONFIDENCE_FILE
    journal = Journal(out_dir)
    rows = {k: v for k, v in _read_confidence(confidence_path).items() if k in done_keys}
    for key, row in journal.rows(len(_CONFIDENCE_COLUMNS)).items():  # a file interrupted after its outputs counts
        if key in done_keys or all(output_path(out_dir, key, fmt).is_file() for fmt in formats):
            rows[key] = row
    for r in summary.results:
        if r.status == "aligned":
            rows[r.key] = confidence_row(r)
    json_format = "json" in formats
    for key in sorted(done_keys - rows.keys()):
        rebuilt = row_from_outputs(key, output_path(out_dir, key, "json") if json_format else None)
        if rebuilt is not None:
            rows[key] = rebuilt
    if not rows:
        journal.remove()
        return

    def score(row: list[str]) -> float:
        try:
            return float(row[1])
        except ValueError:
            return math.inf

    buffer = io.StringIO()
    writer = csv.writer(buffer, delimiter="\t", lineterminator="\n")
    writer.writerow(_CONFIDENCE_COLUMNS)
    for row in sorted(rows.values(), key=lambda row: (score(row), row[0])):
        writer.writerow(row)
    atomic_write_text(confidence_path, buffer.getvalue())
    journal.remove()  # its rows are in confidence.tsv now


class _Prepared:
    """A decoded corpus file, or the problem that stopped it."""

    def __init__(
        self,
        item: CorpusFile,
        seconds: float | None,
        prepared: PreparedItem | None = None,
        problem: Problem | None = None,
    ) -> None:
        self.item = item
        self.seconds = seconds
        # None only with a problem; read only for the entries without one
        self.prepared = cast("PreparedItem", prepared)
        self.problem = problem


def _prepare(aligner: Aligner, item: CorpusFile, seconds: float | None) -> _Prepared:
    """Decode and normalize one file (runs in a worker thread)."""
    if item.transcript is None:
        return _Prepared(
            item,
            seconds,
            problem=Problem(
                item.key, "transcript", f"{item.audio}: no transcript (no .txt or .lab file with the same name)"
            ),
        )
    try:
        prepared = aligner.prepare(item.audio, item.transcript, warn=False)  # kept in the outputs
    except AlignerError as error:
        stage = "audio" if isinstance(error, AudioError) else "transcript"
        return _Prepared(item, seconds, problem=Problem(item.key, stage, str(error)))
    except Exception as error:  # noqa: BLE001 - one bad file never aborts the run
        return _Prepared(item, seconds, problem=Problem(item.key, "audio", f"{item.audio}: {error}"))
    actual = prepared.waveform.shape[-1] / aligner.model.sample_rate
    return _Prepared(item, actual, prepared)


def align_corpus(
    in_dir: str | os.PathLike,
    out_dir: str | os.PathLike,
    aligner: Aligner | AlignerSpec | str | os.PathLike | None,
    *,
    formats: Sequence[str] = ("textgrid",),
    batch_seconds: float = 120.0,
    workers: int = 2,
    overwrite: bool = False,
    subtitles: str = "lines",
    on_progress: Callable[[FileResult], None] | None = None,
    on_start: Callable[[int, float], None] | None = None,
    adapt: AdaptOptions | bool | None = None,
    adapt_per_speaker: bool = False,
    on_adapt_step: Callable[[int, float | None], None] | None = None,
    on_adapt_start: Callable[[str], None] | None = None,
    ray_address: str | None = None,
    actors: int | None = None,
    cpus_per_actor: float | None = None,
) -> CorpusSummary:
    """Align every file of a corpus folder and write the outputs.

    Args:
        in_dir: the corpus (audio + same-name ``.txt``/``.lab``, optionally in
            speaker subfolders).
        out_dir: output folder; receives the mirrored tree of outputs,
            ``failures.tsv`` (when some file failed) and ``confidence.tsv``.
        aligner: an :class:`aligner.Aligner`.
        formats: output formats (``textgrid``, ``json``, ``ctm``, ``srt``,
            ``vtt``); one file per format per audio file.
        batch_seconds: padded audio per batch, in seconds.
        workers: threads decoding audio ahead of the network.
        overwrite: realign files whose outputs already exist.
        subtitles: SRT/VTT cue mode, ``"lines"`` or ``"words"``.
        on_progress: called with each file's :class:`FileResult` as soon as
            it is done (progress bars).
        on_start: called once with the number of files to align and their
            total duration in seconds (from the headers).
        adapt: adapt the model to the corpus first (:mod:`aligner.training.adapt`):
            align a random share of the files to do, fine-tune a copy of
            the model on them, then align everything with the adapted model
            if it scored better on held-out files. ``confidence.tsv`` gets
            the first-pass score of the files adapted on and, in column
            ``model``, the model that aligned each file
            (:attr:`FileResult.model`). An
            :class:`~aligner.training.adapt.AdaptOptions`, or True for the
            defaults.
        adapt_per_speaker: with ``adapt``, also give every speaker (the
            first folder below ``in_dir``,
            :func:`~aligner.training.adapt.speaker_of`) with enough audio
            (``AdaptOptions.min_speaker_seconds`` in ``min_speaker_files``
            files to align; 60 s in 3 files by default) a model of its own,
            adapted from the original model on that speaker's files alone
            (its own held-out files decide whether it is kept). The other
            files, and the files of a speaker whose model is not kept, are
            aligned as with plain ``adapt`` (the whole-corpus model, or
            the original when that is not kept either); when no speaker
            has enough audio the run is exactly a plain ``adapt`` run.
            ``AdaptOptions.minutes``, when given, is then the wall-clock
            limit of all the adaptations together (default: none, each
            adaptation's budget is steps), shared in proportion to the
            audio each adapts on (time one leaves unused goes to the next).
            Same as ``AdaptOptions(per_speaker=True)``.
        on_adapt_step: progress callback of the adaptation (step, held-out
            score or None); the steps start again at 1 for every model.
        on_adapt_start: called with ``"corpus"`` or the speaker's name
            before each adaptation of ``adapt_per_speaker``.
        ray_address: run on a Ray cluster instead of this machine
            (:mod:`aligner.corpus.ray_cluster`): ``"auto"`` for the cluster this
            machine belongs to (``ray start``), or ``"HOST:PORT"`` of its
            head. ``aligner`` is then the model *spec* (a model name or a
            folder every node sees, or an
            :class:`~aligner.corpus.ray_cluster.AlignerSpec`), not an
            :class:`aligner.Aligner`: every actor loads its own model. Same
            outputs, reports and resume as the local run.
        actors: Ray: number of actors (default: one per GPU, or as many as
            the nodes' CPUs hold).
        cpus_per_actor: Ray: CPUs (torch threads) per actor (default: 1
            with GPUs, else the CPUs of the smallest node).

    Returns:
        A :class:`CorpusSummary`. ``KeyboardInterrupt`` stops the run after
        the reports are written (``interrupted=True``); the outputs written
        so far are complete and a new run resumes from there.

    Raises:
        CorpusError: ``in_dir`` is missing or holds no audio, or an argument
            is invalid.
    """
    adapt = _adapt_options(adapt, adapt_per_speaker)
    if ray_address is not None:
        if adapt is not None:
            raise CorpusError(
                "adapt is not supported on a Ray cluster; adapt on one machine with "
                "save_to, then align the corpus on the cluster with the saved model"
            )
        from .ray_cluster import align_corpus_ray

        return align_corpus_ray(
            in_dir,
            out_dir,
            # the model spec; a loaded Aligner is refused there (CorpusError: every actor loads its own model)
            cast("AlignerSpec | str | os.PathLike | None", aligner),
            address=ray_address,
            formats=formats,
            batch_seconds=batch_seconds,
            workers=workers,
            overwrite=overwrite,
            subtitles=subtitles,
            on_progress=on_progress,
            on_start=on_start,
            actors=actors,
            cpus_per_actor=cpus_per_actor,
        )
    if actors is not None or cpus_per_actor is not None:
        raise CorpusError("actors and cpus_per_actor need ray_address (a Ray cluster)")
    aligner = cast("Aligner", aligner)  # the local run: a loaded aligner.Aligner (see the docstring)
    started = time.perf_counter()
    in_dir, out_dir = Path(in_dir).expanduser(), Path(out_dir).expanduser()
    formats = _check_options(formats, batch_seconds, workers)
    summary, todo = _scan_corpus(in_dir, out_dir, formats, overwrite)
    if on_progress is not None:
        for result in summary.results:
            on_progress(result)

    durations = [(item, audio_duration(item.audio)) for item in todo]
    if on_start is not None:
        on_start(len(todo), sum(d for _, d in durations if d is not None))
    routes = _Routes(aligner, MODEL_ORIGINAL if adapt is not None else "")
    if adapt is not None and len(todo) >= 2:
        try:
            routes = _adapt_routes(
                aligner, durations, adapt, workers, batch_seconds, on_adapt_step, on_adapt_start, summary
            )
        except KeyboardInterrupt:  # nothing aligned yet: the reports of the files settled so far
            summary.interrupted = True
            _end_run(summary, out_dir, started, formats)
            return summary
    if getattr(aligner, "vtln", False) and todo:  # one warp per speaker, chosen before aligning
        summary.warps = _speaker_warps(in_dir, routes)
    batches = routes.batches(durations, batch_seconds)

    def finish(result: FileResult) -> None:
        summary.results.append(result)
        if on_progress is not None:
            on_progress(result)

    journal = Journal(out_dir)
    pool = ThreadPoolExecutor(max_workers=workers, thread_name_prefix="aligner-decode")
    pending: deque[tuple[str, Any, list[Future]]] = deque()
    queue = iter(batches)

    def submit_next() -> None:
        entry = next(queue, None)
        if entry is not None:
            label, model_aligner, batch = entry
            futures = [pool.submit(_prepare, model_aligner, item, seconds) for item, seconds in batch]
            pending.append((label, model_aligner, futures))

    try:
        for _ in range(2):  # keep two batches decoding ahead
            submit_next()
        while pending:
            label, model_aligner, futures = pending.popleft()
            ready = [_warped(future.result(), summary.warps) for future in futures]
            submit_next()
            for entry, outcome in _batch_outcomes(model_aligner, ready):
                key = entry.item.key
                first = routes.first_pass.get(key, math.nan)
                finish(_settle(key, entry.seconds or 0.0, outcome, out_dir, formats, subtitles, journal, first, label))
    except KeyboardInterrupt:
        summary.interrupted = True
    finally:
        pool.shutdown(wait=True, cancel_futures=True)
        _end_run(summary, out_dir, started, formats)
    return summary


def _speaker_warps(in_dir: Path, routes: _Routes) -> SpeakerWarps:
    """Each speaker's warp (:mod:`aligner.corpus.speaker_warps`), chosen
    with the model that aligns its files."""
    from ..training.adapt import speaker_of
    from .speaker_warps import choose_speaker_warps

    return choose_speaker_warps(find_corpus_files(in_dir), lambda key: routes.route(key)[1], speaker_of)


def _warped(entry: _Prepared, warps: SpeakerWarps | None) -> _Prepared:
    """``entry`` with its speaker's warp (``--vtln``)."""
    if warps is None or entry.problem is not None:
        return entry
    from ..training.adapt import speaker_of

    entry.prepared = warps.warp_item(speaker_of(entry.item.key), entry.prepared)
    return entry


def _scan_corpus(
    in_dir: Path, out_dir: Path, formats: Sequence[str], overwrite: bool
) -> tuple[CorpusSummary, list[CorpusFile]]:
    """List the corpus, create the output folder and sort the files into
    those to align and those settled already: a summary holding the
    latter (``skipped``: outputs exist; ``failed``: outputs that would
    collide or overwrite an input), and the files to align."""
    files = find_corpus_files(in_dir)
    try:
        out_dir.mkdir(parents=True, exist_ok=True)
    except OSError as error:
        reason = error.strerror or type(error).__name__
        raise OutputError(f"{out_dir}: cannot create the output folder ({reason})") from None

    summary = CorpusSummary(out_dir=out_dir)
    blocked = _colliding_outputs(files, out_dir, formats)
    inputs = _input_files(files)
    todo: list[CorpusFile] = []
    for item in files:
        paths = {fmt: output_path(out_dir, item.key, fmt) for fmt in formats}
        if item.key not in blocked and not overwrite and all(p.is_file() for p in paths.values()):
            summary.results.append(FileResult(item.key, "skipped"))
        else:
            problem = blocked.get(item.key) or _overwrites_input(item, paths, inputs)
            if problem is None:
                todo.append(item)
                continue
            summary.results.append(FileResult(item.key, "failed", problem=problem))
    return summary, todo


def _batch_outcomes(aligner: Aligner, ready: Sequence[_Prepared]) -> Iterator[tuple[_Prepared, Alignment | Problem]]:
    """The outcome of every file of a decoded batch, in the order a run
    reports them: the files that could not be decoded first (yielded
    before the batch is aligned), then the others, aligned as one batch
    (retried file by file if it fails)."""
    good = []
    for entry in ready:
        if entry.problem is not None:
            yield entry, entry.problem
        else:
            good.append(entry)
    yield from zip(good, _align_isolating_failures(aligner, good))


def _settle(
    key: str,
    seconds: float,
    outcome: Alignment | Problem,
    out_dir: Path,
    formats: Sequence[str],
    subtitles: str,
    journal: Journal | None = None,
    first_pass_score: float = math.nan,
    model: str = "",
) -> FileResult:
    """Write an aligned file's outputs (atomically) and return its result;
    a problem (or a write error) makes a failed result. The file's
    confidence row goes to ``journal`` before its outputs are written (a
    run killed in between leaves a row without outputs, never outputs
    without a row)."""
    if isinstance(outcome, Problem):
        return FileResult(key, "failed", seconds, problem=outcome)
    result = replace(_confidence(key, seconds, outcome), first_pass_score=first_pass_score, model=model)
    paths = {fmt: output_path(out_dir, key, fmt) for fmt in formats}
    try:
        if journal is not None:
            journal.append(confidence_row(result))
        _write_outputs(outcome, paths, subtitles)
    except (AlignerError, OSError) as error:
        message = str(error) if isinstance(error, AlignerError) else f"{out_dir}: {error.strerror or error}"
        return FileResult(key, "failed", seconds, problem=Problem(key, "write", message))
    return result


def _end_run(summary: CorpusSummary, out_dir: Path, started: float, formats: Sequence[str]) -> None:
    """Close a run: its wall time, and the reports (failures.tsv, confidence.tsv)."""
    summary.wall_seconds = time.perf_counter() - started
    done = {r.key for r in summary.results if r.status in ("aligned", "skipped")}
    _write_reports(summary, out_dir, done, formats)


def _adapt_options(adapt: AdaptOptions | bool | None, per_speaker: bool) -> AdaptOptions | None:
    """``align_corpus``'s ``adapt`` and ``adapt_per_speaker`` as one
    :class:`~aligner.training.adapt.AdaptOptions` (None: no adaptation)."""
    if adapt is None or adapt is False:
        if per_speaker:
            raise CorpusError("adapt_per_speaker needs adapt (per-speaker models are a refinement of adapt)")
        return None
    from ..training.adapt import AdaptOptions

    options = AdaptOptions() if adapt is True else adapt
    if not isinstance(options, AdaptOptions):
        raise CorpusError(f"adapt must be an AdaptOptions, True or None, not {type(adapt).__name__}")
    if per_speaker:
        options = replace(options, per_speaker=True)
    if options.per_speaker and not (
        options.min_speaker_files >= 2
        and math.isfinite(options.min_speaker_seconds)
        and options.min_speaker_seconds >= 0
    ):
        raise CorpusError(
            "per-speaker adaptation needs min_speaker_files >= 2 (one file is held out) and min_speaker_seconds >= 0, "
            f"got {options.min_speaker_files} and {options.min_speaker_seconds}"
        )
    return options


@dataclass
class _Routes:
    """Which model aligns which file: each speaker in ``speakers`` its own
    ``(label, aligner)``, every other file ``aligner`` (``label``, the
    column ``model`` of confidence.tsv). ``first_pass``: the first-pass
    score of the files adaptation aligned with the original model."""

    aligner: Any
    label: str
    speakers: dict[str, tuple[str, Any]] = field(default_factory=dict)
    first_pass: dict[str, float] = field(default_factory=dict)

    def route(self, key: str) -> tuple[str, Any]:
        if not self.speakers:
            return self.label, self.aligner
        from ..training.adapt import speaker_of

        return self.speakers.get(speaker_of(key), (self.label, self.aligner))

    def batches(
        self, durations: Sequence[tuple[CorpusFile, float | None]], batch_seconds: float
    ) -> list[tuple[str, Any, list[tuple[CorpusFile, float | None]]]]:
        """:func:`plan_batches` of each model's files: ``(label, aligner, batch)``."""
        groups: dict[str, tuple[Any, list[tuple[CorpusFile, float | None]]]] = {}
        for item, seconds in durations:
            label, aligner = self.route(item.key)
            groups.setdefault(label, (aligner, []))[1].append((item, seconds))
        return [
            (label, aligner, batch)
            for label, (aligner, files) in sorted(groups.items())
            for batch in plan_batches(files, batch_seconds)
        ]


def _adapt_routes(
    aligner: Aligner,
    durations: Sequence[tuple[CorpusFile, float | None]],
    options: AdaptOptions,
    workers: int,
    batch_seconds: float,
    on_step: Callable[[int, float | None], None] | None,
    on_start: Callable[[str], None] | None,
    summary: CorpusSummary,
) -> _Routes:
    """Adapt (see :func:`align_corpus`): record the reports in ``summary``
    and return which model aligns which file. Without ``per_speaker``, or
    when no speaker has enough audio, this is plain ``adapt``."""
    from ..training.adapt import SpeakerAdaptations, speaker_of, speakers_to_adapt

    eligible: dict[str, list[str]] = {}
    if options.per_speaker:
        eligible = speakers_to_adapt(
            ((item.key, seconds) for item, seconds in durations),
            options.min_speaker_seconds,
            options.min_speaker_files,
        )
    if eligible:
        return _adapt_per_speaker(
            aligner, durations, options, eligible, workers, batch_seconds, on_step, on_start, summary
        )
    adapted, summary.adaptation, first_pass = _adapt(aligner, durations, options, workers, on_step)
    if options.per_speaker:
        speakers = {speaker_of(item.key) for item, _ in durations}
        summary.speakers = SpeakerAdaptations(
            (),
            len(speakers - {""}),
            sum(1 for item, _ in durations if not speaker_of(item.key)),
            options.min_speaker_seconds,
            options.min_speaker_files,
        )
    return _Routes(adapted, MODEL_CORPUS if adapted is not aligner else MODEL_ORIGINAL, first_pass=first_pass)


def _draw(
    durations: Sequence[tuple[CorpusFile, float | None]], max_audio_minutes: float, seed: int | str
) -> list[tuple[CorpusFile, float | None]]:
    """Files drawn at random (``seed``) until ``max_audio_minutes`` of audio."""
    rng = random.Random(seed)
    order = list(durations)
    rng.shuffle(order)
    chosen, total = [], 0.0
    for item, seconds in order:
        if total >= max_audio_minutes * 60:
            break
        chosen.append((item, seconds))
        total += seconds or 0.0
    return chosen


def _decode(aligner: Aligner, chosen: Sequence[tuple[CorpusFile, float | None]], workers: int) -> list[_Prepared]:
    """The files of ``chosen`` that decode, decoded by ``workers`` threads."""
    with ThreadPoolExecutor(max_workers=workers, thread_name_prefix="aligner-decode") as pool:
        return [entry for entry in pool.map(lambda d: _prepare(aligner, *d), chosen) if entry.problem is None]


def _adapt(
    aligner: Aligner,
    durations: Sequence[tuple[CorpusFile, float | None]],
    options: AdaptOptions,
    workers: int,
    on_step: Callable[[int, float | None], None] | None,
) -> tuple[Aligner, AdaptationResult | None, dict[str, float]]:
    """Adapt ``aligner``'s model on a random share of the files (see
    :func:`align_corpus`). Returns the aligner to use, the report and the
    first-pass score of each file adapted on."""
    from ..training.adapt import adapt_model

    ready = _decode(aligner, _draw(durations, options.max_audio_minutes, options.seed), workers)
    if len(ready) < 2:
        return aligner, None, {}
    result = adapt_model(
        aligner,
        [entry.prepared for entry in ready],
        seconds=None if options.minutes is None else 60.0 * options.minutes,
        seed=options.seed,
        max_steps=options.max_steps,
        on_step=on_step,
    )
    # the model that aligns the corpus (the original when not improved), named so in the outputs
    model = replace(result.model, name=f"{result.model.name}-adapted") if result.improved else result.model
    if options.save_to is not None:
        _save_adapted(model, Path(options.save_to))
    first_pass = {entry.item.key: score for entry, score in zip(ready, result.first_pass)}
    return (aligner.with_model(model) if result.improved else aligner), result, first_pass


def _first_pass(
    aligner: Aligner, files: Sequence[tuple[CorpusFile, float | None]], workers: int, batch_seconds: float
) -> tuple[dict[str, float], dict[str, float]]:
    """Align ``files`` with ``aligner`` in batches: the mean word score
    (:attr:`Alignment.score`) and the decoded duration of each file that
    decodes and aligns."""
    scores: dict[str, float] = {}
    seconds: dict[str, float] = {}
    with ThreadPoolExecutor(max_workers=workers, thread_name_prefix="aligner-decode") as pool:
        for batch in plan_batches(files, batch_seconds):
            ready = [entry for entry in pool.map(lambda d: _prepare(aligner, *d), batch) if entry.problem is None]
            for entry, outcome in zip(ready, _align_isolating_failures(aligner, ready)):
                if isinstance(outcome, Alignment):
                    scores[entry.item.key] = outcome.score
                    seconds[entry.item.key] = entry.seconds or 0.0
    return scores, seconds


def _adapt_per_speaker(
    aligner: Aligner,
    durations: Sequence[tuple[CorpusFile, float | None]],
    options: AdaptOptions,
    eligible: dict[str, list[str]],
    workers: int,
    batch_seconds: float,
    on_step: Callable[[int, float | None], None] | None,
    on_start: Callable[[str], None] | None,
    summary: CorpusSummary,
) -> _Routes:
    """Adapt on the whole corpus, then on each speaker of ``eligible``,
    every time from the original model (see :func:`align_corpus`).

    One first pass aligns every file adapted on (each file once, whatever
    the number of sets it is in); a wall-clock limit (``options.minutes``,
    only when given) counts from before it, and what is left is shared in
    proportion to the audio of each adaptation, in turn, so that time one
    leaves unused goes to the next. Without it each adaptation's budget is
    steps (reproducible)."""
    from ..training.adapt import (
        SpeakerAdaptation,
        SpeakerAdaptations,
        adapt_model,
        adaptation_budget,
        speaker_of,
    )

    started = time.perf_counter()
    by_key = {item.key: (item, seconds) for item, seconds in durations}
    sets = [(MODEL_CORPUS, _draw(durations, options.max_audio_minutes, options.seed))]
    sets += [
        (speaker, _draw([by_key[key] for key in keys], options.max_audio_minutes, f"{options.seed}/{speaker}"))
        for speaker, keys in eligible.items()
    ]
    union = {item.key: (item, seconds) for _, chosen in sets for item, seconds in chosen}
    # the first pass scores as adaptation does: without vtln (its search is per speaker, after adapting)
    first_pass, decoded = _first_pass(aligner.with_vtln(False), list(union.values()), workers, batch_seconds)
    limit = adaptation_budget(options.minutes)
    deadline = None if limit is None else started + limit
    sets = [(name, [d for d in chosen if d[0].key in first_pass]) for name, chosen in sets]
    weights = [math.fsum(decoded[item.key] for item, _ in chosen) for _, chosen in sets]

    results: dict[str, AdaptationResult] = {}
    notes: dict[str, str] = {}
    for index, (name, chosen) in enumerate(sets):
        left = math.fsum(weights[index:])
        share = None
        if deadline is not None:
            share = (deadline - time.perf_counter()) * (weights[index] / left if left > 0 else 1.0)
        if len(chosen) < 2:
            notes[name] = "fewer than 2 of its files could be decoded and aligned"
            continue
        if share is not None and share <= 0:
            notes[name] = "the time budget was spent"
            continue
        if on_start is not None:
            on_start(name)
        ready = _decode(aligner, chosen, workers)
        if len(ready) < 2:
            notes[name] = "fewer than 2 of its files could be decoded"
            continue
        try:
            results[name] = adapt_model(
                aligner,  # always the original model
                [entry.prepared for entry in ready],
                seconds=share,
                first_pass=[first_pass[entry.item.key] for entry in ready],
                seed=options.seed,
                max_steps=options.max_steps,
                on_step=on_step,
            )
        except AlignerError as error:
            if name == MODEL_CORPUS:
                raise  # as plain adapt does
            notes[name] = str(error)

    # every adapted model is named for what it was adapted on (outputs, saved folders)
    original = aligner.model
    corpus = results.get(MODEL_CORPUS)
    summary.adaptation = corpus
    if corpus is not None and corpus.improved:
        corpus_model = replace(corpus.model, name=f"{original.name}-adapted")
        routes = _Routes(aligner.with_model(corpus_model), MODEL_CORPUS, first_pass=first_pass)
    else:
        routes = _Routes(aligner, MODEL_ORIGINAL, first_pass=first_pass)
    speakers = []
    for speaker, keys in eligible.items():
        result = results.get(speaker)
        audio = math.fsum(by_key[key][1] or 0.0 for key in keys)
        speakers.append(SpeakerAdaptation(speaker, len(keys), audio, result, notes.get(speaker, "")))
        if result is not None and result.improved:
            model = replace(result.model, name=f"{original.name}-adapted-{speaker}")
            routes.speakers[speaker] = (MODEL_SPEAKER + speaker, aligner.with_model(model))
    all_speakers = {speaker_of(item.key) for item, _ in durations} - {""}
    summary.speakers = SpeakerAdaptations(
        tuple(speakers),
        len(all_speakers - set(eligible)),
        sum(1 for item, _ in durations if not speaker_of(item.key)),
        options.min_speaker_seconds,
        options.min_speaker_files,
        notes.get(MODEL_CORPUS, ""),
    )
    if options.save_to is not None:  # the model of the files without their own in DIR, each speaker's in DIR/SPEAKER
        folder = Path(options.save_to)
        _save_adapted(routes.aligner.model, folder)
        for speaker, (_, speaker_aligner) in routes.speakers.items():
            _save_adapted(speaker_aligner.model, folder / speaker)
    return routes


def _save_adapted(model: AlignmentModel, folder: Path) -> None:
    """:func:`~aligner.models.loading.save_model` into ``folder``, file by
    file atomically: the model is written into a hidden temporary folder
    inside ``folder``, then its weights and its config are renamed into
    place (an interrupted save leaves no partial file)."""
    import shutil
    import tempfile

    from ..models.loading import save_model
    from ..models.registry import CONFIG_FILE, WEIGHTS_FILE

    try:
        folder.mkdir(parents=True, exist_ok=True)
        temporary = Path(tempfile.mkdtemp(prefix=".saving-", dir=folder))
    except OSError as error:
        raise OutputError(f"cannot write model folder {folder}: {error.strerror or error}") from error
    try:
        save_model(model, temporary)
        for name in (WEIGHTS_FILE, CONFIG_FILE):
            os.replace(temporary / name, folder / name)
    except OSError as error:
        raise OutputError(f"cannot write model folder {folder}: {error.strerror or error}") from error
    finally:
        shutil.rmtree(temporary, ignore_errors=True)


def _colliding_outputs(files: Sequence[CorpusFile], out_dir: Path, formats: Sequence[str]) -> dict[str, Problem]:
    """Audio files whose outputs would be the same file (``dup.wav`` and
    ``dup.flac`` both write ``dup.TextGrid``): none of them is aligned, so
    that neither output overwrites the other; each gets a problem naming all
    of them."""
    owners: dict[str, list[CorpusFile]] = {}
    for item in files:
        for fmt in formats:
            target = os.path.normcase(os.path.realpath(output_path(out_dir, item.key, fmt)))
            group = owners.setdefault(target, [])
            if item not in group:
                group.append(item)
    problems: dict[str, Problem] = {}
    for target, items in sorted(owners.items()):
        if len(items) < 2:
            continue
        names = ", ".join(str(i.audio) for i in items)
        for item in items:
            problems.setdefault(
                item.key,
                Problem(
                    item.key,
                    "output",
                    f"{item.audio}: output {target} would be written for several audio files ({names}); "
                    "none of them is aligned: rename them so that their names differ",
                ),
            )
    return problems


def _input_files(files: Sequence[CorpusFile]) -> dict[tuple[int, int], Path]:
    """Every input file of the corpus (audio, transcript, TextGrid) by
    ``(device, inode)``."""
    inputs: dict[tuple[int, int], Path] = {}
    for item in files:
        for source in (item.audio, item.transcript, item.textgrid):
            if source is None:
                continue
            try:
                info = os.stat(source)
            except OSError:
                continue
            inputs[(info.st_dev, info.st_ino)] = source
    return inputs


def _overwrites_input(item: CorpusFile, paths: dict[str, Path], inputs: dict[tuple[int, int], Path]) -> Problem | None:
    """A problem when one of ``paths`` is an input file of the corpus (the
    output folder is the corpus folder and a human ``.TextGrid`` lies beside
    the audio): inputs are never overwritten."""
    for target in paths.values():
        try:
            info = os.stat(target)
        except OSError:
            continue
        source = inputs.get((info.st_dev, info.st_ino))
        if source is not None:
            return Problem(
                item.key,
                "output",
                f"{item.audio}: output file {target} is the input file {source}; refusing to "
                "overwrite an input (choose an output folder other than the corpus folder)",
            )
    return None


def _check_options(formats: Sequence[str], batch_seconds: float, workers: int) -> tuple[str, ...]:
    from ..writers import FORMATS

    chosen = tuple(dict.fromkeys(f.lower() for f in formats))
    if not chosen:
        raise CorpusError("no output format given")
    unknown = [f for f in chosen if f not in FORMATS]
    if unknown:
        raise CorpusError(f"unknown output format {unknown[0]!r}; choose from {', '.join(FORMATS)}")
    if not batch_seconds > 0:
        raise CorpusError(f"batch_seconds must be > 0, got {batch_seconds}")
    if int(workers) < 1:
        raise CorpusError(f"workers must be >= 1, got {workers}")
    return chosen


def _align_isolating_failures(aligner: Aligner, entries: list[_Prepared]) -> list[Alignment | Problem]:
    """Align a batch; if it fails, align its files one by one so that only
    the files that fail alone are reported."""
    if not entries:
        return []
    try:
        return list(aligner.align_prepared([e.prepared for e in entries]))
    except (AlignerError, RuntimeError, ValueError) as error:
        if len(entries) == 1:
            return [Problem(entries[0].item.key, "align", f"{entries[0].item.audio}: {error}")]
    return [outcome for entry in entries for outcome in _align_isolating_failures(aligner, [entry])]
