"""``aligner plot``: a Praat-like figure of a recording and a TextGrid."""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING

import click

from ..errors import AlignerError
from .common import FINITE, command

if TYPE_CHECKING:  # pragma: no cover
    import numpy as np

FIGURE_FORMATS = {".png": "png", ".pdf": "pdf", ".svg": "svg", ".jpg": "jpeg", ".jpeg": "jpeg"}


@command()
@click.argument("audio", type=click.Path(path_type=Path))
@click.argument("alignment_file", metavar="ALIGNMENT.TextGrid", type=click.Path(path_type=Path))
@click.option(
    "--output", "-o", required=True, type=click.Path(path_type=Path), help="Figure file: .png, .pdf, .svg or .jpg."
)
@click.option("--start", type=FINITE, default=None, help="Window start in seconds (default: 0).")
@click.option("--end", type=FINITE, default=None, help="Window end in seconds (default: the end).")
@click.option("--no-spectrogram", is_flag=True, help="Leave out the spectrogram panel.")
@click.option("--words-tier", default="words", show_default=True, help="Name of the word tier.")
@click.option(
    "--chars-tier", default=None, help="Name of the character/phone tier (default: 'chars' or 'phones' if present)."
)
@click.option("--width", type=FINITE, default=12.0, show_default=True, help="Figure width in inches.")
@click.option("--height", type=FINITE, default=6.0, show_default=True, help="Figure height in inches.")
@click.option("--dpi", type=int, default=100, show_default=True, help="Pixels per inch (PNG/JPEG).")
def plot(
    audio: Path,
    alignment_file: Path,
    output: Path,
    start: float | None,
    end: float | None,
    no_spectrogram: bool,
    words_tier: str,
    chars_tier: str | None,
    width: float,
    height: float,
    dpi: int,
) -> None:
    """Draw AUDIO with the tiers of ALIGNMENT.TextGrid the way Praat shows
    them: waveform, spectrogram, word and character/phone tiers."""
    # Arguments first; then only what the figure needs (numpy, matplotlib's Figure: no torch, no librosa).
    from ..atomic import atomic_path, check_not_input
    from ..readers import read_textgrid

    fmt = FIGURE_FORMATS.get(output.suffix.lower())
    if fmt is None:
        raise AlignerError(f"{output}: unknown figure extension; use .png, .pdf, .svg or .jpg")
    # One check of the three numbers together (the pixel limit is on their products).
    if not (width > 0 and height > 0 and dpi > 0) or width * dpi > 20000 or height * dpi > 20000:
        raise AlignerError(
            f"figure size {width} x {height} inches at {dpi} dpi is not usable (positive, at most 20000 pixels a side)"
        )
    if start is not None and end is not None and start >= end:
        raise AlignerError(f"--start ({start:g} s) must be before --end ({end:g} s)")
    check_not_input(output, [audio, alignment_file])
    alignment = read_textgrid(alignment_file, words_tier=words_tier, chars_tier=chars_tier)
    if alignment.duration > 0:  # a bad window is reported before any audio is decoded
        from viz.alignment import time_window

        time_window(start, end, alignment.duration)
    import numpy as np

    data, rate, offset = read_window(audio, start, end)
    if data.size == 0:
        raise AlignerError(f"{audio}: audio contains no samples (zero length)")
    if not np.isfinite(data).all():
        raise AlignerError(f"{audio}: audio contains NaN or infinite samples")
    from matplotlib.figure import Figure

    from viz.alignment import plot_alignment

    figure = Figure(figsize=(width, height), layout="constrained")
    plot_alignment(
        data,
        rate,
        alignment,
        start=start,
        end=end,
        spectrogram=not no_spectrogram,
        fig=figure,
        title=f"{audio.name} — {alignment_file.name}",
        offset=offset,
    )
    with atomic_path(output) as temporary:
        figure.savefig(temporary, format=fmt, dpi=dpi)
    click.echo(f"wrote {output}", err=True)


def read_window(audio: Path, start: float | None, end: float | None) -> tuple[np.ndarray, int, float]:
    """``(samples, rate, offset)`` for ``aligner plot``: with a window, only
    that window (and 0.5 s around it) is decoded when libsndfile can seek
    the file, so a short window of an hour-long recording stays cheap;
    otherwise the whole file, offset 0."""
    from ..audio import read_audio

    if start is None and end is None:
        data, rate = read_audio(audio)
        return data, rate, 0.0
    import soundfile

    try:
        info = soundfile.info(str(audio)) if audio.is_file() else None
    except Exception:  # noqa: BLE001 - not a libsndfile format: decode it all below
        info = None
    if info is None or info.samplerate <= 0 or info.frames <= 0:
        data, rate = read_audio(audio)
        return data, rate, 0.0
    rate = info.samplerate
    first = max(0, int(((start or 0.0) - 0.5) * rate))
    last = info.frames if end is None else min(info.frames, int((end + 0.5) * rate))
    data, _ = soundfile.read(str(audio), start=first, stop=max(first, last), dtype="float32", always_2d=True)
    return data, rate, first / rate
