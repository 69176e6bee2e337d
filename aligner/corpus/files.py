"""Corpus folders in the Montreal Forced Aligner layout.

A corpus is a folder of audio files, each with a transcript of the same name
and a ``.txt`` or ``.lab`` extension beside it, optionally grouped in
speaker subfolders (any depth)::

    corpus/
        spk1/utt1.wav   spk1/utt1.lab
        spk2/utt2.flac  spk2/utt2.txt
        utt3.mp3        utt3.txt

:func:`find_corpus_files` lists it (training and corpus alignment read it
the same way), :func:`output_path` mirrors a file's place in an output
folder, and :func:`validate_corpus` checks a corpus against a model without
aligning it.
"""

from __future__ import annotations

import os
from collections.abc import Callable, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

from ..errors import AlignerError, CorpusError, TranscriptError, TranscriptTooLongError

if TYPE_CHECKING:  # pragma: no cover
    from ..models.alignment_model import AlignmentModel

__all__ = [
    "AUDIO_EXTENSIONS",
    "TRANSCRIPT_EXTENSIONS",
    "CorpusFile",
    "Problem",
    "audio_duration",
    "bucket_batches",
    "find_corpus_files",
    "find_transcript",
    "output_path",
    "validate_corpus",
]

#: Audio extensions looked for in a corpus (case-insensitive).
AUDIO_EXTENSIONS = (".wav", ".flac", ".mp3", ".ogg", ".opus")
#: Transcript extensions, in order of preference.
TRANSCRIPT_EXTENSIONS = (".txt", ".lab")


@dataclass(frozen=True)
class CorpusFile:
    """One audio file of a corpus and what lies beside it.

    Attributes:
        key: path of the audio relative to the corpus folder (POSIX form);
            identifies the utterance (dev split, messages, reports).
        audio: the audio file.
        transcript: its ``.txt`` / ``.lab`` transcript, or None.
        textgrid: its ``.TextGrid``, or None.
        speaker: the first folder below the corpus folder ("" at top level).
    """

    key: str
    audio: Path
    transcript: Path | None
    textgrid: Path | None
    speaker: str


def find_transcript(audio: Path) -> Path | None:
    """The ``.txt`` (preferred) or ``.lab`` file beside ``audio``, or None."""
    for suffix in TRANSCRIPT_EXTENSIONS:
        candidate = audio.with_suffix(suffix)
        if candidate.is_file():
            return candidate
    return None


def _find_textgrid(audio: Path) -> Path | None:
    for suffix in (".TextGrid", ".textgrid", ".TEXTGRID"):
        candidate = audio.with_suffix(suffix)
        if candidate.is_file():
            return candidate
    return None


def _entries(root: Path) -> list[Path]:
    """Every entry below ``root``, following symbolic links to folders (a
    symlinked speaker folder is part of the corpus) but never entering a
    folder twice (a link loop ends there)."""
    seen: set[tuple[int, int]] = set()
    entries: list[Path] = []
    for folder, folders, files in os.walk(root, followlinks=True):
        try:
            info = os.stat(folder)
        except OSError:
            folders[:] = []
            continue
        if (info.st_dev, info.st_ino) in seen:
            folders[:] = []
            continue
        seen.add((info.st_dev, info.st_ino))
        folders[:] = [name for name in folders if not name.startswith(".")]
        entries.extend(Path(folder) / name for name in folders + files)
    return entries


def find_corpus_files(corpus_dir: str | os.PathLike) -> list[CorpusFile]:
    """Every audio file below ``corpus_dir`` (hidden files and folders are
    skipped), sorted by key, with its transcript and TextGrid if present.

    Raises:
        CorpusError: the folder does not exist or holds no audio file.
    """
    root = Path(corpus_dir).expanduser()
    if not root.exists():
        raise CorpusError(f"corpus folder not found: {root}")
    if not root.is_dir():
        raise CorpusError(f"{root} is not a folder; give the corpus folder (audio + .txt/.lab transcripts)")
    found = []
    for path in sorted(_entries(root)):
        relative = path.relative_to(root)
        if any(part.startswith(".") for part in relative.parts):
            continue
        if path.suffix.lower() not in AUDIO_EXTENSIONS:
            continue
        transcript = find_transcript(path)
        if not path.is_file() and transcript is None:
            continue  # a folder or special file named like audio, with no transcript: not an item
        # with a transcript it is an item even when it is not a readable regular file (a FIFO,
        # a folder named x.wav, a dangling or looping link): it ends in failures.tsv with a reason

        speaker = relative.parts[0] if len(relative.parts) > 1 else ""
        found.append(CorpusFile(relative.as_posix(), path, transcript, _find_textgrid(path), speaker))
    if not found:
        raise CorpusError(
            f"no audio files in {root} (the corpus folder holds no audio files with "
            f"extension {', '.join(AUDIO_EXTENSIONS)})"
        )
    return found


def bucket_batches(
    durations: Sequence[float], batch_seconds: float, order: Sequence[int] | None = None
) -> list[list[int]]:
    """Length-bucketed batches: the indices of ``order`` (by default all of
    ``durations``'s, sorted by duration, ties by index) cut, in that order,
    so that each batch's padded audio (``len(batch) * longest``) stays
    within ``batch_seconds``. An item longer than ``batch_seconds`` is a
    batch of its own. Every index of ``order`` appears exactly once.

    Training (:mod:`aligner.training.ctc`) batches shortest first, corpus
    alignment (:func:`aligner.corpus.align.plan_batches`) longest first.
    """
    if order is None:
        order = sorted(range(len(durations)), key=lambda i: (durations[i], i))
    batches: list[list[int]] = []
    current: list[int] = []
    longest = 0.0
    for index in order:
        duration = durations[index]
        if current and max(longest, duration) * (len(current) + 1) > batch_seconds:
            batches.append(current)
            current, longest = [], 0.0
        current.append(index)
        longest = max(longest, duration)
    if current:
        batches.append(current)
    return batches


def output_path(out_dir: str | os.PathLike, key: str, fmt: str) -> Path:
    """Where the ``fmt`` output of the corpus file ``key`` goes: the same
    relative place in ``out_dir``, with the format's extension
    (``spk1/utt1.wav`` → ``OUT/spk1/utt1.TextGrid``)."""
    from ..writers import SUFFIXES

    return Path(out_dir) / Path(key).with_suffix(SUFFIXES[fmt])


def audio_duration(path: Path) -> float | None:
    """Duration in seconds from the file header (no decoding), or None when
    the header cannot be read by libsndfile."""
    import soundfile

    if not path.is_file():  # a FIFO or device would block here; decoding reports it
        return None
    try:
        info = soundfile.info(str(path))
    except Exception:  # noqa: BLE001 - unknown here; decoding will tell
        return None
    if info.samplerate <= 0 or info.frames < 0:
        return None
    return info.frames / info.samplerate


@dataclass(frozen=True)
class Problem:
    """One thing wrong with a corpus file.

    Attributes:
        key: the file (relative to the corpus folder).
        stage: what failed: ``"transcript"``, ``"audio"``, ``"text"``
            (characters the model cannot represent), ``"length"``
            (transcript too long for the audio), or, during alignment,
            ``"align"`` / ``"write"``.
        message: one line saying what is wrong.
        fatal: False for a warning (the file can still be aligned).
    """

    key: str
    stage: str
    message: str
    fatal: bool = True


def _check_file(item: CorpusFile, model: AlignmentModel, language: str) -> list[Problem]:
    """Every problem of one corpus file (decodes its audio)."""
    from ..audio import load_audio
    from ..fits import check_text_size, check_word_count
    from ..models.emissions import num_frames
    from ..pipeline import check_fits
    from ..text import read_transcript, transcript_for_model

    problems: list[Problem] = []
    if item.transcript is None:
        problems.append(
            Problem(
                item.key,
                "transcript",
                f"{item.key}: no transcript (no .txt or .lab file with the same name beside the audio)",
            )
        )
    waveform = None
    try:
        waveform = load_audio(item.audio, model.sample_rate)
    except AlignerError as error:
        problems.append(Problem(item.key, "audio", str(error)))
    if item.transcript is None:
        return problems
    source = str(item.transcript)
    try:
        text = read_transcript(item.transcript)
        if waveform is None:  # no audio to bound the text's work by: its reading is all that is checked
            if not text.strip():
                raise TranscriptError(f"{source}: transcript is empty")
            return problems
        frames = num_frames(model, int(waveform.shape[-1]))
        seconds, audio = waveform.shape[-1] / model.sample_rate, str(item.audio)
        # the cheap bounds first: a huge transcript costs no more than the audio can hold
        check_text_size(text, seconds, source, audio)
        transcript, caught = transcript_for_model(
            text,
            model,
            language=language,
            source=source,
            spoken_words=lambda words: check_word_count(words, frames, model.frame_seconds, seconds, source, audio),
        )
    except AlignerError as error:
        stage = "length" if isinstance(error, TranscriptTooLongError) else "transcript"
        problems.append(Problem(item.key, stage, str(error)))
        return problems
    problems.extend(Problem(item.key, "text", message, fatal=False) for message in caught)
    if waveform is not None:
        try:
            check_fits(
                transcript.targets(model.separator_id)[0],
                waveform,
                model,
                str(item.transcript),
                str(item.audio),
                min_frames=None if model.min_frames is None else 1,  # fast speech: the decoder lowers its minimum
            )
        except AlignerError as error:
            problems.append(Problem(item.key, "length", str(error)))
    return problems


def validate_corpus(
    files: Sequence[CorpusFile],
    model: AlignmentModel,
    *,
    language: str = "en",
    workers: int = 2,
    on_file: Callable[[CorpusFile, list[Problem]], None] | None = None,
) -> list[Problem]:
    """Check corpus files against a model without aligning them.

    Finds missing transcripts, unreadable (or empty, silent, non-finite)
    audio, empty transcripts, characters the model cannot represent (a
    warning: they are dropped when aligning) and transcripts too long for
    their audio (fewer frames than tokens plus repeats).

    Args:
        files: from :func:`find_corpus_files`.
        model: an :class:`~aligner.models.alignment_model.AlignmentModel` (labels, rate).
        language: language of the transcripts (number expansion).
        workers: threads decoding audio in parallel.
        on_file: called with each file and its problems as it is checked
            (progress).

    Returns:
        All problems, in the order of ``files``.
    """
    results: dict[str, list[Problem]] = {}
    with ThreadPoolExecutor(max_workers=max(1, workers)) as pool:
        for item, problems in zip(files, pool.map(lambda f: _check_file(f, model, language), files)):
            results[item.key] = problems
            if on_file is not None:
                on_file(item, problems)
    return [problem for item in files for problem in results[item.key]]
