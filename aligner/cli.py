"""The ``aligner`` command line.

Exit codes: 0 success, 2 bad input (one line naming the file and the
problem), 1 internal error.
"""

from __future__ import annotations

import sys
import traceback
import warnings
from pathlib import Path

import click

from .errors import AlignerError

EXIT_BAD_INPUT = 2
EXIT_INTERNAL = 1


def _fail(message: str, code: int) -> None:
    click.echo(message, err=True)
    sys.exit(code)


def _show_warning(message, category, filename, lineno, file=None, line=None):
    click.echo(f"warning: {message}", err=True)


class _Command(click.Command):
    """Turns package errors into exit code 2 and crashes into exit code 1."""

    def invoke(self, ctx: click.Context):
        warnings.showwarning = _show_warning
        try:
            return super().invoke(ctx)
        except AlignerError as error:
            _fail(f"error: {error}", EXIT_BAD_INPUT)
        except (click.exceptions.Exit, click.exceptions.Abort, click.ClickException, SystemExit):
            raise
        except KeyboardInterrupt:
            _fail("interrupted", 130)
        except Exception as error:  # noqa: BLE001 - the last line of defence
            if ctx.find_root().params.get("debug"):
                traceback.print_exc()
            _fail(f"internal error: {type(error).__name__}: {error} (run with --debug for a traceback)",
                  EXIT_INTERNAL)


@click.group(context_settings={"help_option_names": ["-h", "--help"]})
@click.option("--debug", is_flag=True, help="Print a traceback for internal errors.")
@click.version_option(package_name="trellis-align")
def main(debug: bool) -> None:
    """Forced alignment of speech to text with wav2vec 2.0 / HuBERT / MMS models."""


def _find_transcript(audio: Path) -> Path | None:
    for suffix in (".txt", ".lab"):
        candidate = audio.with_suffix(suffix)
        if candidate.is_file():
            return candidate
    return None


@main.command(cls=_Command)
@click.argument("audio", type=click.Path(path_type=Path))
@click.argument("transcript_file", required=False, type=click.Path(path_type=Path))
@click.option("--text", "-t", help="The transcript itself, instead of a file.")
@click.option("--output", "-o", type=click.Path(path_type=Path),
              help="Output file; its extension picks the format. Default: JSON on standard output.")
@click.option("--format", "-f", "fmt", type=click.Choice(["textgrid", "json", "ctm", "srt", "vtt"],
              case_sensitive=False), help="Output format (default: from OUTPUT's extension).")
@click.option("--model", "-m", "model_spec", default=None,
              help="Model: a torchaudio bundle name (see `aligner models`) or a model folder.")
@click.option("--device", default=None, help="cpu, cuda, cuda:N (default: CUDA when available).")
@click.option("--dtype", default=None, type=click.Choice(["float32", "bfloat16", "float16", "bf16", "fp16"]),
              help="Inference precision (default: bfloat16 on GPU, float32 on CPU).")
@click.option("--subtitles", type=click.Choice(["words", "lines"]), default="lines", show_default=True,
              help="SRT/VTT cues: one per word, or lines of words.")
def align(audio: Path, transcript_file: Path | None, text: str | None, output: Path | None,
          fmt: str | None, model_spec: str | None, device: str | None, dtype: str | None,
          subtitles: str) -> None:
    """Align AUDIO to its transcript.

    The transcript comes from TRANSCRIPT_FILE, from --text, or from a file
    beside AUDIO with the same name and a .txt or .lab extension.
    """
    from .audio import prepare_waveform, read_audio
    from .pipeline import Aligner
    from .text import read_transcript
    from .writers import format_from_path, to_json, write_alignment

    if transcript_file is not None and text is not None:
        raise click.UsageError("give either TRANSCRIPT_FILE or --text, not both")
    if text is None:
        transcript_file = transcript_file or _find_transcript(audio)
        if transcript_file is None:
            raise AlignerError(f"{audio}: no transcript given (TRANSCRIPT_FILE or --text) "
                               "and no .txt or .lab file beside it")
        transcript: str | Path = transcript_file
        read_transcript(transcript_file)  # fail early, before loading a model
    else:
        transcript = text
    if output is not None and fmt is None and format_from_path(output) is None:
        raise AlignerError(f"{output}: unknown output extension; use .TextGrid, .json, .ctm, .srt or .vtt "
                           "or give --format")
    data, rate = read_audio(audio)  # fail early on bad audio, before loading a model
    prepare_waveform(data, rate, rate, source=str(audio))
    aligner = Aligner(model_spec, device=device, dtype=dtype)
    alignment = aligner.align(audio, transcript)
    if output is None:
        import json

        if fmt not in (None, "json"):
            raise click.UsageError("--format other than json needs --output")
        click.echo(json.dumps(to_json(alignment), ensure_ascii=False, indent=2))
        return
    effective = fmt or format_from_path(output)
    options = {"mode": subtitles} if effective in ("srt", "vtt") else {}
    path = write_alignment(alignment, output, effective, **options)
    click.echo(f"wrote {path} ({len(alignment.words)} words, mean score {alignment.score:.2f})", err=True)


@main.command(cls=_Command)
def models() -> None:
    """List known model specs and whether each is available locally."""
    from .loading import list_models

    rows = [(m.name, "yes" if m.available else "no", m.kind, m.location) for m in list_models()]
    header = ("NAME", "LOCAL", "KIND", "LOCATION")
    widths = [max(len(str(r[i])) for r in rows + [header]) for i in range(3)]
    for row in [header] + rows:
        click.echo("  ".join(str(v).ljust(w) for v, w in zip(row[:3], widths)) + "  " + str(row[3]))


if __name__ == "__main__":  # pragma: no cover
    main()
