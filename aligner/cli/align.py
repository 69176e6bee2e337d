"""``aligner align``: one recording and its transcript."""

from __future__ import annotations

import sys
from pathlib import Path

import click

from ..environment import require
from ..errors import AlignerError, OutputError
from ..writers import FORMATS
from .common import (
    command,
    device_option,
    dtype_option,
    model_option,
    partial_option,
    refine_option,
    subtitles_option,
    vtl_warps_option,
    vtln_option,
    write_stdout,
)


@command()
@click.argument("audio", type=click.Path(path_type=Path))
@click.argument("transcript_file", required=False, type=click.Path(path_type=Path))
@click.option("--text", "-t", help="The transcript itself, instead of a file.")
@click.option(
    "--output",
    "-o",
    type=click.Path(path_type=Path),
    help="Output file; its extension picks the format. Default: JSON on standard output.",
)
@click.option(
    "--format",
    "-f",
    "fmt",
    type=click.Choice(FORMATS, case_sensitive=False),
    help="Output format (default: from OUTPUT's extension).",
)
@model_option()
@device_option()
@dtype_option()
@subtitles_option()
@partial_option()
@refine_option()
@vtl_warps_option()
@vtln_option()
def align(
    audio: Path,
    transcript_file: Path | None,
    text: str | None,
    output: Path | None,
    fmt: str | None,
    model_spec: str | None,
    device: str | None,
    dtype: str | None,
    subtitles: str,
    partial: bool,
    refine: bool,
    vtl_warps: tuple[float, ...],
    vtln: bool,
) -> None:
    """Align AUDIO to its transcript.

    The transcript comes from TRANSCRIPT_FILE, from --text, or from a file
    beside AUDIO with the same name and a .txt or .lab extension.
    """
    # Every check of the arguments and files comes first, before torch and the model are imported:
    # bad input is answered at once.
    from ..corpus.files import find_transcript
    from ..writers import format_from_path
    from .inputs import check_audio, check_text, transcript_text

    if transcript_file is not None and text is not None:
        raise click.UsageError("give either TRANSCRIPT_FILE or --text, not both")
    if output is None and fmt not in (None, "json"):
        raise click.UsageError("--format other than json needs --output")
    check_audio(audio)
    if text is None:
        transcript_file = transcript_file or find_transcript(audio)
        if transcript_file is None:
            raise AlignerError(
                f"{audio}: no transcript given (TRANSCRIPT_FILE or --text) and no .txt or .lab file beside it"
            )
        transcript: str | Path = transcript_file
        spoken = transcript_text(transcript_file)  # fail early, before loading a model
        source = str(transcript_file)
    else:
        check_text(text)
        transcript = spoken = text
        source = f"transcript of {audio}"
    if output is not None and fmt is None and format_from_path(output) is None:
        raise AlignerError(
            f"{output}: unknown output extension; use .TextGrid, .json, .ctm, .srt or .vtt or give --format"
        )
    if output is not None:
        from ..atomic import check_not_input

        check_not_input(output, [audio, transcript_file if text is None else None])
    elif sys.stdout is None:
        raise OutputError("standard output is closed; give an output file with -o")
    from ..audio import prepare_waveform, read_mono

    data, rate = read_mono(audio)  # decoded once; bad audio fails here, before loading a model
    from ..fits import check_text_size

    check_text_size(spoken, len(data) / rate if rate > 0 else 0.0, source, str(audio))  # a huge transcript: at once
    del spoken
    require("torch", "torchaudio")  # a broken install: one line saying how to fix it
    from ..pipeline import Aligner
    from ..writers import json_text, write_alignment

    prepare_waveform(data, rate, rate, source=str(audio))
    aligner = Aligner(
        model_spec, device=device, dtype=dtype, partial=partial, refine=refine, vtl_warps=vtl_warps, vtln=vtln
    )
    item = aligner.prepare((data, rate), transcript, audio_name=str(audio))
    del data  # an hour of audio: keep only the resampled copy while aligning
    alignment = aligner.align_prepared([item])[0]
    if output is None:
        write_stdout(json_text(alignment))
        return
    effective = fmt or format_from_path(output)
    options = {"mode": subtitles} if effective in ("srt", "vtt") else {}
    path = write_alignment(alignment, output, effective, **options)
    flags = ""
    if partial:
        confidence = alignment.confidence(0.0)
        flags = f", {confidence.unaligned} not placed, {confidence.skipped_seconds:.1f} s of audio skipped"
    click.echo(f"wrote {path} ({len(alignment.words)} words, mean score {alignment.score:.2f}{flags})", err=True)
    for reason in alignment.suspect:
        click.echo(f"SUSPECT: {reason} -- check this alignment", err=True)
    if vtln:
        notes = [w for w in alignment.warnings if w.startswith("vtln: ")]
        click.echo(notes[0] if notes else f"vtln: warp {alignment.warp:.3f}", err=True)
