"""The ``aligner`` command line.

Exit codes: 0 success, 2 bad input (one line naming the file and the
problem), 1 internal error, 3 some files of a corpus failed (``align-corpus``,
``validate``: the others were processed), 130 interrupted.
"""

from __future__ import annotations

import sys
import traceback
import warnings
from pathlib import Path

import click

from .corpus import find_transcript
from .errors import AlignerError, OutputError
from .writers import FORMATS

EXIT_BAD_INPUT = 2
EXIT_INTERNAL = 1
EXIT_SOME_FAILED = 3


def _fail(message: str, code: int) -> None:
    click.echo(message, err=True)
    sys.exit(code)


def _write_stdout(text: str) -> None:
    """Write ``text`` to standard output and flush it; a closed or failing
    standard output is an :class:`OutputError`, not a silent success."""
    stream = sys.stdout
    if stream is None:
        raise OutputError("standard output is closed; give an output file with -o")
    try:
        stream.write(text)
        stream.flush()
    except (OSError, ValueError) as error:
        reason = getattr(error, "strerror", None) or str(error)
        raise OutputError(f"cannot write to standard output: {reason}") from error


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


@main.command(cls=_Command)
@click.argument("audio", type=click.Path(path_type=Path))
@click.argument("transcript_file", required=False, type=click.Path(path_type=Path))
@click.option("--text", "-t", help="The transcript itself, instead of a file.")
@click.option("--output", "-o", type=click.Path(path_type=Path),
              help="Output file; its extension picks the format. Default: JSON on standard output.")
@click.option("--format", "-f", "fmt", type=click.Choice(FORMATS,
              case_sensitive=False), help="Output format (default: from OUTPUT's extension).")
@click.option("--model", "-m", "model_spec", default=None,
              help="Model: TRELLIS_EN_PHONES (default), a torchaudio bundle name (see `aligner models`) "
                   "or a model folder.")
@click.option("--device", default=None, help="cpu, cuda, cuda:N (default: CUDA when available).")
@click.option("--dtype", default=None, type=click.Choice(["float32", "bfloat16", "float16", "bf16", "fp16"]),
              help="Inference precision (default: bfloat16 on GPU, float32 on CPU).")
@click.option("--subtitles", type=click.Choice(["words", "lines"]), default="lines", show_default=True,
              help="SRT/VTT cues: one per word, or lines of words.")
@click.option("--partial", is_flag=True,
              help="Tolerate audio without text and text without audio (star/wildcard); "
                   "words that cannot be placed are flagged.")
def align(audio: Path, transcript_file: Path | None, text: str | None, output: Path | None,
          fmt: str | None, model_spec: str | None, device: str | None, dtype: str | None,
          subtitles: str, partial: bool) -> None:
    """Align AUDIO to its transcript.

    The transcript comes from TRANSCRIPT_FILE, from --text, or from a file
    beside AUDIO with the same name and a .txt or .lab extension.
    """
    from .audio import prepare_waveform, read_mono
    from .pipeline import Aligner
    from .text import read_transcript
    from .writers import format_from_path, to_json, write_alignment

    if transcript_file is not None and text is not None:
        raise click.UsageError("give either TRANSCRIPT_FILE or --text, not both")
    if text is None:
        transcript_file = transcript_file or find_transcript(audio)
        if transcript_file is None:
            raise AlignerError(f"{audio}: no transcript given (TRANSCRIPT_FILE or --text) "
                               "and no .txt or .lab file beside it")
        transcript: str | Path = transcript_file
        read_transcript(transcript_file)  # fail early, before loading a model
    else:
        transcript = text
    if output is None and fmt not in (None, "json"):
        raise click.UsageError("--format other than json needs --output")
    if output is not None and fmt is None and format_from_path(output) is None:
        raise AlignerError(f"{output}: unknown output extension; use .TextGrid, .json, .ctm, .srt or .vtt "
                           "or give --format")
    if output is not None:
        from .atomic import check_not_input

        check_not_input(output, [audio, transcript_file if text is None else None])
    elif sys.stdout is None:
        raise OutputError("standard output is closed; give an output file with -o")
    data, rate = read_mono(audio)  # decoded once; bad audio fails here, before loading a model
    prepare_waveform(data, rate, rate, source=str(audio))
    aligner = Aligner(model_spec, device=device, dtype=dtype, partial=partial)
    item = aligner.prepare((data, rate), transcript, audio_name=str(audio))
    del data  # an hour of audio: keep only the resampled copy while aligning
    alignment = aligner.align_prepared([item])[0]
    if output is None:
        import json

        _write_stdout(json.dumps(to_json(alignment), ensure_ascii=False, indent=2) + "\n")
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


@main.command(cls=_Command)
def models() -> None:
    """List known model specs and whether each is available locally."""
    from .registry import list_models  # no torch import: the listing is instant

    rows = [(m.name, "yes" if m.available else "no", m.kind, m.location) for m in list_models()]
    header = ("NAME", "LOCAL", "KIND", "LOCATION")
    widths = [max(len(str(r[i])) for r in rows + [header]) for i in range(3)]
    _write_stdout("".join("  ".join(str(v).ljust(w) for v, w in zip(row[:3], widths)) + "  " + str(row[3]) + "\n"
                          for row in [header] + rows))


@main.command(cls=_Command)
@click.argument("corpus_dir", type=click.Path(path_type=Path))
@click.option("--output", "-o", "model_dir", required=True, type=click.Path(path_type=Path),
              help="Model folder: receives the best model, training_state.pt and training_log.jsonl.")
@click.option("--config", "-c", "config_name", default=None,
              help="Training config: tiny, small or finetune (default: small; finetune with --init).")
@click.option("--init", "init_spec", default=None,
              help="Start from this model (bundle name or model folder); its labels are kept.")
@click.option("--epochs", type=int, default=None, help="Passes over the training utterances.")
@click.option("--max-steps", type=int, default=None, help="Stop after this many optimizer steps.")
@click.option("--batch-seconds", type=float, default=None, help="Padded audio per batch, in seconds.")
@click.option("--lr", type=float, default=None, help="Peak learning rate (default: the config's).")
@click.option("--device", default=None, help="cpu, cuda, cuda:N (default: CUDA when available).")
@click.option("--resume", is_flag=True, help="Continue the run saved in the model folder.")
@click.option("--overwrite", is_flag=True, help="Start afresh even if the model folder holds a run.")
@click.option("--seed", type=int, default=None, help="Random seed (default 0).")
@click.option("--dev-fraction", type=float, default=None, help="Share of utterances held out (default 0.1).")
@click.option("--timing-weight", type=float, default=None,
              help="Weight of the TextGrid word-timing loss (default 0: off).")
@click.option("--threads", type=int, default=None, help="CPU threads for torch.")
@click.option("--workers", type=int, default=None, help="Audio decoding worker processes.")
@click.option("--eval-every", type=int, default=None, help="Also evaluate every N steps.")
@click.option("--save-every", type=int, default=None, help="Also save the training state every N steps.")
@click.option("--quiet", "-q", is_flag=True, help="No progress bar or per-epoch lines.")
def train(corpus_dir: Path, model_dir: Path, config_name: str | None, init_spec: str | None,
          epochs: int | None, max_steps: int | None, batch_seconds: float | None, lr: float | None,
          device: str | None, resume: bool, overwrite: bool, seed: int | None, dev_fraction: float | None,
          timing_weight: float | None, threads: int | None, workers: int | None, eval_every: int | None,
          save_every: int | None, quiet: bool) -> None:
    """Train a CTC model on CORPUS_DIR (audio + same-name .txt/.lab transcripts,
    optionally in speaker folders) and save it into the --output folder,
    which `aligner align --model` then accepts."""
    import shlex

    from .train import train as run_training

    if resume and overwrite:
        raise click.UsageError("give either --resume or --overwrite, not both")
    result = run_training(
        corpus_dir, model_dir, config=config_name, init=init_spec, epochs=epochs, max_steps=max_steps,
        batch_seconds=batch_seconds, lr=lr, device=device, resume=resume, overwrite=overwrite, seed=seed,
        dev_fraction=dev_fraction, timing_weight=timing_weight, threads=threads, workers=workers,
        eval_every=eval_every, save_every=save_every, progress=not quiet, command=shlex.join(sys.argv))
    best = ""
    if result.best_dev_loss is not None:
        best = (f", best dev loss {result.best_dev_loss:.3f}, dev CER {result.best_dev_cer:.3f} "
                f"at step {result.best_step}")
    click.echo(f"trained {result.steps} steps ({result.num_train} training / {result.num_dev} dev utterances)"
               f"{best}; model in {result.model_dir}", err=True)


_FIGURE_FORMATS = {".png": "png", ".pdf": "pdf", ".svg": "svg", ".jpg": "jpeg", ".jpeg": "jpeg"}


@main.command(cls=_Command)
@click.argument("audio", type=click.Path(path_type=Path))
@click.argument("alignment_file", metavar="ALIGNMENT.TextGrid", type=click.Path(path_type=Path))
@click.option("--output", "-o", required=True, type=click.Path(path_type=Path),
              help="Figure file: .png, .pdf, .svg or .jpg.")
@click.option("--start", type=float, default=None, help="Window start in seconds (default: 0).")
@click.option("--end", type=float, default=None, help="Window end in seconds (default: the end).")
@click.option("--no-spectrogram", is_flag=True, help="Leave out the spectrogram panel.")
@click.option("--words-tier", default="words", show_default=True, help="Name of the word tier.")
@click.option("--chars-tier", default=None,
              help="Name of the character/phone tier (default: 'chars' or 'phones' if present).")
@click.option("--width", type=float, default=12.0, show_default=True, help="Figure width in inches.")
@click.option("--height", type=float, default=6.0, show_default=True, help="Figure height in inches.")
@click.option("--dpi", type=int, default=100, show_default=True, help="Pixels per inch (PNG/JPEG).")
def plot(audio: Path, alignment_file: Path, output: Path, start: float | None, end: float | None,
         no_spectrogram: bool, words_tier: str, chars_tier: str | None, width: float, height: float,
         dpi: int) -> None:
    """Draw AUDIO with the tiers of ALIGNMENT.TextGrid the way Praat shows
    them: waveform, spectrogram, word and character/phone tiers."""
    import numpy as np
    from matplotlib.figure import Figure

    from .atomic import atomic_path
    from .readers import read_textgrid

    fmt = _FIGURE_FORMATS.get(output.suffix.lower())
    if fmt is None:
        raise AlignerError(f"{output}: unknown figure extension; use .png, .pdf, .svg or .jpg")
    if not (width > 0 and height > 0 and dpi > 0) or width * dpi > 20000 or height * dpi > 20000:
        raise AlignerError(f"figure size {width} x {height} inches at {dpi} dpi is not usable "
                           "(positive, at most 20000 pixels a side)")
    if start is not None and end is not None and start >= end:
        raise AlignerError(f"--start ({start:g} s) must be before --end ({end:g} s)")
    from .atomic import check_not_input

    check_not_input(output, [audio, alignment_file])
    alignment = read_textgrid(alignment_file, words_tier=words_tier, chars_tier=chars_tier)
    if alignment.duration > 0:  # a bad window is reported before any audio is decoded
        from viz.alignment import time_window

        time_window(start, end, alignment.duration)
    data, rate, offset = _plot_audio(audio, start, end)
    if data.size == 0:
        raise AlignerError(f"{audio}: audio contains no samples (zero length)")
    if not np.isfinite(data).all():
        raise AlignerError(f"{audio}: audio contains NaN or infinite samples")
    from viz import plot_alignment

    figure = Figure(figsize=(width, height), layout="constrained")
    plot_alignment(data, rate, alignment, start=start, end=end, spectrogram=not no_spectrogram, fig=figure,
                   title=f"{audio.name} — {alignment_file.name}", offset=offset)
    with atomic_path(output) as temporary:
        figure.savefig(temporary, format=fmt, dpi=dpi)
    click.echo(f"wrote {output}", err=True)


def _plot_audio(audio: Path, start: float | None, end: float | None):
    """``(samples, rate, offset)`` for ``aligner plot``: with a window, only
    that window (and 0.5 s around it) is decoded when libsndfile can seek
    the file, so a short window of an hour-long recording stays cheap;
    otherwise the whole file, offset 0."""
    from .audio import read_audio

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


@main.command(cls=_Command)
@click.argument("audio", type=click.Path(path_type=Path))
@click.argument("alignment_file", metavar="ALIGNMENT", type=click.Path(path_type=Path))
@click.option("--output", "-o", type=click.Path(path_type=Path), default=None,
              help="HTML page to write (default: ALIGNMENT's name with .html, beside it).")
@click.option("--reference", type=click.Path(path_type=Path), default=None,
              help="Another TextGrid or JSON of the same recording, shown below with the boundary differences.")
@click.option("--tiers", default=None, help="Tiers to show, in order, separated by commas (default: all "
              "interval tiers), e.g. words,phones.")
@click.option("--audio-format", type=click.Choice(["vorbis", "opus", "flac"]), default="vorbis", show_default=True,
              help="Embedded audio: Ogg Vorbis (small, quick), Ogg Opus (smaller, slow to encode) or FLAC "
                   "(lossless, larger; plays in every browser).")
@click.option("--threshold", type=click.FloatRange(0, 1), default=0.2, show_default=True,
              help="Words scoring below this are highlighted.")
def view(audio: Path, alignment_file: Path, output: Path | None, reference: Path | None, tiers: str | None,
         audio_format: str, threshold: float) -> None:
    """Write one self-contained HTML page to listen to and correct ALIGNMENT
    (a TextGrid, or the JSON of `aligner align`) of AUDIO: waveform,
    spectrogram and tiers; click a word to hear it, drag a boundary to move
    it, then "Download TextGrid". Works offline, from file://."""
    from .atomic import check_not_input

    if output is None:
        output = alignment_file.with_suffix(".html")
    if output.suffix.lower() not in (".html", ".htm"):
        raise AlignerError(f"{output}: the page must end in .html or .htm")
    check_not_input(output, [audio, alignment_file, reference])
    from viz.view import write_view

    info = write_view(audio, alignment_file, output, reference=reference, tiers=tiers, threshold=threshold,
                      audio_format=audio_format)
    for warning in info.warnings:
        click.echo(f"warning: {warning}", err=True)
    compared = f"; vs reference: {info.comparison}" if info.comparison else ""
    click.echo(f"wrote {info.path} ({info.bytes / 1e6:.1f} MB, tiers {', '.join(info.tiers)}, "
               f"{info.intervals} intervals{compared})", err=True)


def _layer_inputs(source: Path, transcript: Path | None) -> tuple[list[tuple[Path, Path]], list[str], bool]:
    """``(pairs, problems, is_corpus)``: the (audio, transcript) pairs to
    analyse and one message per audio file of a corpus that has no transcript."""
    if not source.exists():
        raise AlignerError(f"{source}: no such audio file or corpus folder")
    if source.is_dir():
        if transcript is not None:
            raise click.UsageError("TRANSCRIPT is only for a single audio file, not a corpus folder")
        from .corpus import find_corpus_files

        pairs, problems = [], []
        for item in find_corpus_files(source):
            if item.transcript is None:
                problems.append(f"{item.audio}: no .txt or .lab transcript beside it")
            else:
                pairs.append((item.audio, item.transcript))
        return pairs, problems, True
    transcript = transcript or find_transcript(source)
    if transcript is None:
        raise AlignerError(f"{source}: no transcript given (TRANSCRIPT) and no .txt or .lab file beside it")
    return [(source, transcript)], [], False


def _most_informative(report) -> int:
    """Row index of the layer with the best probe accuracy (else PNMI, else the last)."""
    import numpy as np

    for metric in ("probe_accuracy", "pnmi"):
        if report.rows and metric in report.rows[0]:
            values = np.array(report.column(metric), dtype=float)
            if np.isfinite(values).any():
                return int(np.nanargmax(values))
    return len(report.rows) - 1


def _save_figure(figure, path: Path) -> None:
    from .atomic import atomic_path

    with atomic_path(path) as temporary:
        figure.savefig(temporary, format="png", dpi=100)


@main.command(cls=_Command)
@click.argument("source", metavar="AUDIO_OR_CORPUS", type=click.Path(path_type=Path))
@click.argument("transcript_file", metavar="[TRANSCRIPT]", required=False, type=click.Path(path_type=Path))
@click.option("--output", "-o", "report_dir", required=True, type=click.Path(path_type=Path),
              help="Report folder: receives layers.csv, layer_metrics.png, cka.png and projection.png.")
@click.option("--model", "-m", "model_spec", default=None,
              help="Model: a torchaudio bundle name (see `aligner models`) or a model folder.")
@click.option("--kind", type=click.Choice(["char", "phone", "word_position", "speech"]), default=None,
              help="Frame labels: the aligned character or phone (default: whichever the model "
              "outputs), the position in the word (B/I/E/S), or speech vs silence.")
@click.option("--layers", "num_layers", type=int, default=None,
              help="Analyse only the first N transformer layers (default: all).")
@click.option("--clusters", type=int, default=50, show_default=True, help="k of the k-means metrics.")
@click.option("--max-frames", type=int, default=5000, show_default=True,
              help="Frames analysed, drawn at random over the corpus.")
@click.option("--max-seconds", type=float, default=60.0, show_default=True,
              help="Skip longer recordings (each one goes through the transformer whole).")
@click.option("--device", default=None, help="cpu, cuda, cuda:N (default: CUDA when available).")
def layers(source: Path, transcript_file: Path | None, report_dir: Path, model_spec: str | None, kind: str,
           num_layers: int | None, clusters: int, max_frames: int, max_seconds: float,
           device: str | None) -> None:
    """What does each layer encode? Align AUDIO_OR_CORPUS, then measure every
    layer's features against the aligned frame labels (linear probe, k-means
    purity and PNMI, CKA between layers, PCA).

    AUDIO_OR_CORPUS is one audio file (transcript: TRANSCRIPT or a .txt/.lab
    file beside it) or a corpus folder (audio + same-name .txt/.lab files,
    speaker subfolders allowed). Files that cannot be used are reported and
    skipped.
    """
    for name, value, low in (("--layers", num_layers, 1), ("--clusters", clusters, 1),
                             ("--max-frames", max_frames, 2)):
        if value is not None and value < low:
            raise AlignerError(f"{name} must be at least {low}, got {value}")
    if not max_seconds > 0:
        raise AlignerError(f"--max-seconds must be positive, got {max_seconds}")
    if report_dir.exists() and not report_dir.is_dir():
        raise AlignerError(f"{report_dir}: the report folder exists and is not a folder")
    pairs, problems, is_corpus = _layer_inputs(source, transcript_file)
    for problem in problems:
        click.echo(f"skipped {problem}", err=True)
    if not pairs:
        raise AlignerError(f"{source}: no audio file has a transcript; nothing to analyse")

    from matplotlib.figure import Figure
    from tqdm import tqdm

    import viz

    from .analysis import analyze_layers
    from .audio import load_audio
    from .pipeline import Aligner

    aligner = Aligner(model_spec, device=device)
    rate = aligner.model.sample_rate
    waves, alignments = [], []
    for audio, transcript in tqdm(pairs, desc="aligning", unit="file", disable=not is_corpus, leave=False):
        try:
            wave = load_audio(audio, rate)
            if wave.shape[0] > max_seconds * rate:
                raise AlignerError(f"{audio}: {wave.shape[0] / rate:.1f} s is longer than --max-seconds "
                                   f"{max_seconds:g}; cut it into utterances first")
            alignment = aligner.align(audio, transcript)
        except AlignerError as error:
            if not is_corpus:
                raise
            tqdm.write(f"skipped {error}", file=sys.stderr)
            continue
        waves.append(wave)
        alignments.append(alignment)
    if not waves:
        raise AlignerError(f"{source}: none of the {len(pairs)} files could be aligned; nothing to analyse")

    kind = kind or ("phone" if aligner.model.phonetic else "char")
    report = analyze_layers(aligner.model, waves, alignments, kind=kind, num_layers=num_layers,
                            n_clusters=clusters, max_frames=max_frames, device=aligner.device)
    csv_path = report.to_csv(report_dir / "layers.csv")

    figure = Figure(figsize=(7, 4.5), layout="constrained")
    ax = figure.subplots()
    viz.plot_layer_metrics(report, ax=ax)
    ax.set_title(f"{report.model or 'model'}: {kind} labels, {report.rows[0]['frames']} frames")
    _save_figure(figure, report_dir / "layer_metrics.png")

    figure = Figure(figsize=(6, 5), layout="constrained")
    ax = figure.subplots()
    viz.plot_cka(report, ax=ax)
    ax.set_title("linear CKA between layers")
    _save_figure(figure, report_dir / "cka.png")

    best = _most_informative(report)
    figure = Figure(figsize=(7, 6), layout="constrained")
    ax = figure.subplots()
    viz.plot_projection(report.projections[best], report.labels, ax=ax)
    ax.set_title(f"PCA of layer {report.layers[best]} (the most informative), coloured by {kind}")
    ax.set_xlabel("PC 1")
    ax.set_ylabel("PC 2")
    _save_figure(figure, report_dir / "projection.png")

    click.echo(f"analysed {len(waves)} file(s), {report.rows[0]['frames']} frames, {len(report)} layers; "
               f"most informative: layer {report.layers[best]}; wrote {csv_path} and 3 figures in {report_dir}",
               err=True)


@main.command("align-corpus", cls=_Command)
@click.argument("in_dir", type=click.Path(path_type=Path))
@click.argument("out_dir", type=click.Path(path_type=Path))
@click.option("--format", "-f", "formats", multiple=True, type=click.Choice(FORMATS, case_sensitive=False),
              help="Output format; repeat for several (default: textgrid).")
@click.option("--model", "-m", "model_spec", default=None,
              help="Model: TRELLIS_EN_PHONES (default), a torchaudio bundle name (see `aligner models`) "
                   "or a model folder.")
@click.option("--device", default=None, help="cpu, cuda, cuda:N (default: CUDA when available).")
@click.option("--dtype", default=None, type=click.Choice(["float32", "bfloat16", "float16", "bf16", "fp16"]),
              help="Inference precision (default: bfloat16 on GPU, float32 on CPU; bfloat16 also pays off "
                   "on CPUs with native bf16, AVX512-BF16 or AMX).")
@click.option("--batch-seconds", type=float, default=120.0, show_default=True,
              help="Padded audio per batch, in seconds.")
@click.option("--workers", type=int, default=2, show_default=True,
              help="Threads decoding and resampling audio ahead of the network.")
@click.option("--overwrite", is_flag=True, help="Realign files whose outputs already exist.")
@click.option("--partial", is_flag=True,
              help="Tolerate audio without text and text without audio (star/wildcard); "
                   "words that cannot be placed are flagged.")
@click.option("--subtitles", type=click.Choice(["words", "lines"]), default="lines", show_default=True,
              help="SRT/VTT cues: one per word, or lines of words.")
@click.option("--worst", type=int, default=10, show_default=True,
              help="List this many files with the lowest confidence in the summary.")
@click.option("--adapt", is_flag=True,
              help="First fine-tune a copy of the model on the corpus itself (its audio and transcripts), "
                   "keep it only if it scores better on held-out files, then align with it.")
@click.option("--adapt-minutes", type=click.FloatRange(min=0, min_open=True), default=None,
              help="Wall-time budget of --adapt in minutes (default: 5x the first pass, at least 1).")
@click.option("--save-adapted", type=click.Path(file_okay=False, path_type=Path), default=None,
              help="Save the adapted model in this folder (use it later with --model).")
@click.option("--ray", "ray_address", default=None, metavar="ADDRESS",
              help="Run on a Ray cluster: 'auto' (this machine's cluster, `ray start`) or HOST:PORT of its head. "
                   "IN_DIR, OUT_DIR and a model folder must be on storage every node sees.")
@click.option("--actors", type=click.IntRange(min=1), default=None,
              help="With --ray: number of actors, each loading the model once (default: one per GPU, or as "
                   "many as the nodes' CPUs hold).")
@click.option("--cpus-per-actor", type=click.FloatRange(min=0, min_open=True), default=None,
              help="With --ray: CPUs (torch threads) per actor (default: 1 with GPUs, else the CPUs of the "
                   "smallest node).")
@click.option("--quiet", "-q", is_flag=True, help="No progress bar.")
def align_corpus(in_dir: Path, out_dir: Path, formats: tuple[str, ...], model_spec: str | None,
                 device: str | None, dtype: str | None, batch_seconds: float, workers: int, overwrite: bool,
                 partial: bool, subtitles: str, worst: int, adapt: bool, adapt_minutes: float | None,
                 save_adapted: Path | None, ray_address: str | None, actors: int | None,
                 cpus_per_actor: float | None, quiet: bool) -> None:
    """Align every audio file of IN_DIR (audio + same-name .txt/.lab
    transcripts, optionally in speaker subfolders: the Montreal Forced
    Aligner layout) and write the outputs into OUT_DIR with the same tree.

    Files whose outputs exist are skipped (resume) unless --overwrite. A file
    that fails does not stop the run: it is listed in OUT_DIR/failures.tsv
    and the exit code is 3 at the end. OUT_DIR/confidence.tsv lists every
    file's mean word score, worst first.

    With --ray ADDRESS the same run goes to the actors of a Ray cluster
    (pip install "trellis-align[ray]"); outputs and reports are the same.
    """
    from tqdm import tqdm

    from .corpus_align import align_corpus as run
    from .corpus import find_corpus_files
    from .pipeline import Aligner

    if worst < 0:
        raise AlignerError(f"--worst must be >= 0, got {worst}")
    find_corpus_files(in_dir)  # fail early, before loading a model
    if ray_address is not None:
        if adapt or adapt_minutes is not None or save_adapted is not None:
            raise AlignerError("--adapt does not run on a Ray cluster: adapt on one machine with --save-adapted, "
                               "then align the corpus with --ray and --model the saved folder")
        if device is not None and device not in ("cpu", "cuda"):
            raise AlignerError(f"with --ray, --device is cpu or cuda (each actor gets its own GPU), not {device}")
        from .corpus_ray import AlignerSpec

        aligner = AlignerSpec(model_spec, device=device, dtype=dtype, partial=partial)
    else:
        if actors is not None or cpus_per_actor is not None:
            raise AlignerError("--actors and --cpus-per-actor need --ray ADDRESS")
        from .emissions import resolve_device

        # Batches are bounded by --batch-seconds; on a GPU pass them whole, on a CPU
        # (compute-bound, no gain from large batches) keep the default groups of 4.
        window_batch = 64 if resolve_device(device).type == "cuda" else 4
        aligner = Aligner(model_spec, device=device, dtype=dtype, partial=partial, window_batch=window_batch)
    bar = tqdm(total=0, unit="file", disable=quiet, dynamic_ncols=True, desc="aligning")
    audio = {"seconds": 0.0, "start": None}

    def on_start(count: int, seconds: float) -> None:
        import time

        bar.reset(total=count)
        audio["start"] = time.perf_counter()

    def on_progress(result) -> None:
        import time

        if result.status == "skipped":
            return
        audio["seconds"] += result.seconds
        elapsed = time.perf_counter() - (audio["start"] or time.perf_counter())
        speed = f"{audio['seconds'] / elapsed if elapsed > 0 else 0:.1f} audio h/h"
        if ray_address is not None:
            speed = f"{audio['seconds'] / 3600:.2f} h audio, {speed}"
        bar.set_postfix_str(speed, refresh=False)
        if result.status == "failed":
            tqdm.write(f"failed: {result.problem.message}", file=sys.stderr)
        bar.update(1)

    options, adapt_bar = None, None
    if adapt or adapt_minutes is not None or save_adapted is not None:
        from .adapt import AdaptOptions

        options = AdaptOptions(minutes=adapt_minutes, save_to=None if save_adapted is None else str(save_adapted))
        adapt_bar = tqdm(unit="step", disable=quiet, dynamic_ncols=True, desc="adapting")

    def on_adapt_step(step: int, score: float | None) -> None:
        if adapt_bar is not None:
            if score is not None:
                adapt_bar.set_postfix_str(f"held-out score {score:.3f}", refresh=False)
            adapt_bar.update(1)

    summary = run(in_dir, out_dir, aligner, formats=formats or ("textgrid",), batch_seconds=batch_seconds,
                  workers=workers, overwrite=overwrite, subtitles=subtitles, on_progress=on_progress,
                  on_start=on_start, adapt=options, on_adapt_step=on_adapt_step, ray_address=ray_address,
                  actors=actors, cpus_per_actor=cpus_per_actor)
    if adapt_bar is not None:
        adapt_bar.close()
    bar.close()
    click.echo(summary.describe(worst), err=True)
    if summary.interrupted:
        _fail("interrupted: run the same command again to resume", 130)
    if summary.failed:
        sys.exit(EXIT_SOME_FAILED)


@main.command(cls=_Command)
@click.argument("in_dir", type=click.Path(path_type=Path))
@click.option("--model", "-m", "model_spec", default=None,
              help="Model whose labels and frame rate the corpus is checked against (default: the "
                   "default model).")
@click.option("--workers", type=int, default=2, show_default=True, help="Threads decoding audio.")
@click.option("--quiet", "-q", is_flag=True, help="No progress bar.")
def validate(in_dir: Path, model_spec: str | None, workers: int, quiet: bool) -> None:
    """Check the corpus IN_DIR without aligning it: missing transcripts,
    unreadable/empty/silent audio, characters the model cannot represent
    (warnings) and transcripts too long for their audio.

    Prints one line per problem; exit code 3 when any file cannot be aligned.
    """
    from tqdm import tqdm

    from .corpus import find_corpus_files, validate_corpus
    from .loading import load_model

    if workers < 1:
        raise AlignerError(f"--workers must be >= 1, got {workers}")
    files = find_corpus_files(in_dir)
    model = load_model(model_spec)
    with tqdm(total=len(files), unit="file", disable=quiet, desc="checking") as bar:
        problems = validate_corpus(files, model, workers=workers, on_file=lambda item, found: bar.update(1))
    for problem in problems:
        click.echo(f"{'error' if problem.fatal else 'warning'}\t{problem.key}\t{problem.stage}\t"
                   f"{' '.join(problem.message.split())}")
    bad = {p.key for p in problems if p.fatal}
    warned = {p.key for p in problems if not p.fatal} - bad
    click.echo(f"{len(files)} files: {len(files) - len(bad)} can be aligned ({len(warned)} with warnings), "
               f"{len(bad)} cannot", err=True)
    if bad:
        sys.exit(EXIT_SOME_FAILED)


if __name__ == "__main__":  # pragma: no cover
    main()
