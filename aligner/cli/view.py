"""``aligner view``: a self-contained HTML page to listen to and correct an alignment."""

from __future__ import annotations

from pathlib import Path

import click

from ..errors import AlignerError
from .common import command, within


@command()
@click.argument("audio", type=click.Path(path_type=Path))
@click.argument("alignment_file", metavar="ALIGNMENT", type=click.Path(path_type=Path))
@click.option(
    "--output",
    "-o",
    type=click.Path(path_type=Path),
    default=None,
    help="HTML page to write (default: ALIGNMENT's name with .html, beside it).",
)
@click.option(
    "--reference",
    type=click.Path(path_type=Path),
    default=None,
    help="Another TextGrid or JSON of the same recording, shown below with the boundary differences.",
)
@click.option(
    "--tiers",
    default=None,
    help="Tiers to show, in order, separated by commas (default: all interval tiers), e.g. words,phones.",
)
@click.option(
    "--audio-format",
    type=click.Choice(["vorbis", "opus", "flac"]),
    default="vorbis",
    show_default=True,
    help="Embedded audio: Ogg Vorbis (small, quick), Ogg Opus (smaller, slow to encode) or FLAC "
    "(lossless, larger; plays in every browser).",
)
@click.option(
    "--threshold",
    type=within(0, 1),
    default=0.2,
    show_default=True,
    help="Words scoring below this are highlighted.",
)
def view(
    audio: Path,
    alignment_file: Path,
    output: Path | None,
    reference: Path | None,
    tiers: str | None,
    audio_format: str,
    threshold: float,
) -> None:
    """Write one self-contained HTML page to listen to and correct ALIGNMENT
    (a TextGrid, or the JSON of `aligner align`) of AUDIO: waveform,
    spectrogram and tiers; click a word to hear it, drag a boundary to move
    it, then "Download TextGrid". Works offline, from file://."""
    from ..atomic import check_not_input
    from .inputs import check_audio

    check_audio(audio)  # missing, a folder, text given as audio: answered before anything heavy
    if output is None:
        output = alignment_file.with_suffix(".html")
    if output.suffix.lower() not in (".html", ".htm"):
        raise AlignerError(f"{output}: the page must end in .html or .htm")
    check_not_input(output, [audio, alignment_file, reference])
    from viz.view import write_view

    info = write_view(
        audio, alignment_file, output, reference=reference, tiers=tiers, threshold=threshold, audio_format=audio_format
    )
    for warning in info.warnings:
        click.echo(f"warning: {warning}", err=True)
    compared = f"; vs reference: {info.comparison}" if info.comparison else ""
    click.echo(
        f"wrote {info.path} ({info.bytes / 1e6:.1f} MB, tiers {', '.join(info.tiers)}, "
        f"{info.intervals} intervals{compared})",
        err=True,
    )
