"""Cheap checks of the files a command is given, made before anything heavy
(torch, the model) is imported, so that bad input is answered at once: a
missing audio file, a transcript or alignment given where the audio belongs,
an empty or missing transcript. Each failure is one line naming the file.
"""

from __future__ import annotations

from pathlib import Path

from ..errors import AudioError, OutputError, TranscriptError

#: Extensions of the text files this package reads or writes: never audio.
TEXT_EXTENSIONS = (".txt", ".lab", ".textgrid", ".json", ".ctm", ".srt", ".vtt", ".html", ".htm")
#: Extensions of audio files, never transcripts.
AUDIO_EXTENSIONS = (".wav", ".flac", ".mp3", ".ogg", ".opus", ".m4a", ".aac", ".aiff", ".aif", ".au", ".wma")


def check_audio(path: Path) -> None:
    """``path`` must be an existing regular file that is not a text file of
    ours (a transcript or an alignment given in the audio's place).

    Raises:
        AudioError: missing, a folder, not a regular file, a text file or empty.
    """
    from ..audio import check_audio_file

    check_audio_file(path)
    suffix = path.suffix.lower()
    if suffix in TEXT_EXTENSIONS:
        raise AudioError(f"{path}: a {path.suffix} file is text, not audio; give the audio file first")
    if path.stat().st_size == 0:
        raise AudioError(f"{path}: audio file is empty (0 bytes)")


def transcript_text(path: Path) -> str:
    """The text of the transcript file ``path`` (UTF-8, one line).

    Raises:
        TranscriptError: missing, unreadable, audio rather than text, not
            UTF-8, or empty.
    """
    from ..text import read_transcript

    if path.suffix.lower() in AUDIO_EXTENSIONS and path.is_file():
        raise TranscriptError(f"{path}: a {path.suffix} file is audio, not a transcript")
    text = read_transcript(path)
    if not text.strip():
        raise TranscriptError(f"{path}: transcript is empty")
    return text


def check_output_folder(path: Path) -> None:
    """An output folder must be a folder or not exist yet (it is created).

    Raises:
        OutputError: it is a file (or another non-folder).
    """
    if path.exists() and not path.is_dir():
        raise OutputError(f"{path}: cannot create the output folder (it is a file, not a folder)")


def check_text(text: str) -> None:
    """A transcript given on the command line must not be empty.

    Raises:
        TranscriptError: nothing but whitespace.
    """
    if not text.strip():
        raise TranscriptError("--text: transcript is empty")
