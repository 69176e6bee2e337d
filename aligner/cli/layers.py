"""``aligner layers``: what each layer of a model encodes, measured on an
aligned file or corpus."""

from __future__ import annotations

import sys
from pathlib import Path

import click

from ..errors import AlignerError
from .common import at_least, command, device_option, model_option, positive


@command()
@click.argument("source", metavar="AUDIO_OR_CORPUS", type=click.Path(path_type=Path))
@click.argument("transcript_file", metavar="[TRANSCRIPT]", required=False, type=click.Path(path_type=Path))
@click.option(
    "--output",
    "-o",
    "report_dir",
    required=True,
    type=click.Path(path_type=Path),
    help="Report folder: receives layers.csv, layer_metrics.png, cka.png and projection.png.",
)
@model_option("Model: a torchaudio bundle name (see `aligner models`) or a model folder.")
@click.option(
    "--kind",
    type=click.Choice(["char", "phone", "word_position", "speech"]),
    default=None,
    help="Frame labels: the aligned character or phone (default: whichever the model "
    "outputs), the position in the word (B/I/E/S), or speech vs silence.",
)
@click.option(
    "--layers",
    "num_layers",
    type=at_least(1),
    default=None,
    help="Analyse only the first N transformer layers (default: all).",
)
@click.option("--clusters", type=at_least(1), default=50, show_default=True, help="k of the k-means metrics.")
@click.option(
    "--max-frames",
    type=at_least(2),
    default=5000,
    show_default=True,
    help="Frames analysed, drawn at random over the corpus.",
)
@click.option(
    "--max-seconds",
    type=positive(),
    default=60.0,
    show_default=True,
    help="Skip longer recordings (each one goes through the transformer whole).",
)
@device_option()
def layers(
    source: Path,
    transcript_file: Path | None,
    report_dir: Path,
    model_spec: str | None,
    kind: str,
    num_layers: int | None,
    clusters: int,
    max_frames: int,
    max_seconds: float,
    device: str | None,
) -> None:
    """What does each layer encode? Align AUDIO_OR_CORPUS, then measure every
    layer's features against the aligned frame labels (linear probe, k-means
    purity and PNMI, CKA between layers, PCA).

    AUDIO_OR_CORPUS is one audio file (transcript: TRANSCRIPT or a .txt/.lab
    file beside it) or a corpus folder (audio + same-name .txt/.lab files,
    speaker subfolders allowed). Files that cannot be used are reported and
    skipped.
    """
    if report_dir.exists() and not report_dir.is_dir():
        raise AlignerError(f"{report_dir}: the report folder exists and is not a folder")
    pairs, problems, is_corpus = layer_inputs(source, transcript_file)
    for problem in problems:
        click.echo(f"skipped {problem}", err=True)
    if not pairs:
        raise AlignerError(f"{source}: no audio file has a transcript; nothing to analyse")

    from tqdm import tqdm

    from viz.layers import layer_report_figures

    from ..analysis import analyze_layers
    from ..atomic import atomic_path
    from ..audio import load_audio
    from ..pipeline import Aligner

    aligner = Aligner(model_spec, device=device)
    rate = aligner.model.sample_rate
    waves, alignments = [], []
    for audio, transcript in tqdm(pairs, desc="aligning", unit="file", disable=not is_corpus, leave=False):
        try:
            wave = load_audio(audio, rate)
            if wave.shape[0] > max_seconds * rate:
                raise AlignerError(
                    f"{audio}: {wave.shape[0] / rate:.1f} s is longer than --max-seconds "
                    f"{max_seconds:g}; cut it into utterances first"
                )
            # Align the waveform just decoded: each file is decoded and resampled once.
            item = aligner.prepare((wave, rate), transcript, audio_name=str(audio))
            alignment = aligner.align_prepared([item])[0]
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
    report = analyze_layers(
        aligner.model,
        waves,
        alignments,
        kind=kind,
        num_layers=num_layers,
        n_clusters=clusters,
        max_frames=max_frames,
        device=aligner.device,
    )
    csv_path = report.to_csv(report_dir / "layers.csv")
    figures = layer_report_figures(report)
    for name, figure in figures.items():
        with atomic_path(report_dir / f"{name}.png") as temporary:
            figure.savefig(temporary, format="png", dpi=100)
    best = report.most_informative()
    click.echo(
        f"analysed {len(waves)} file(s), {report.rows[0]['frames']} frames, {len(report)} layers; "
        f"most informative: layer {report.layers[best]}; wrote {csv_path} and {len(figures)} figures in "
        f"{report_dir}",
        err=True,
    )


def layer_inputs(source: Path, transcript: Path | None) -> tuple[list[tuple[Path, Path]], list[str], bool]:
    """``(pairs, problems, is_corpus)``: the (audio, transcript) pairs to
    analyse and one message per audio file of a corpus that has no transcript."""
    if not source.exists():
        raise AlignerError(f"{source}: no such audio file or corpus folder")
    if source.is_dir():
        if transcript is not None:
            raise click.UsageError("TRANSCRIPT is only for a single audio file, not a corpus folder")
        from ..corpus.files import find_corpus_files

        pairs, problems = [], []
        for item in find_corpus_files(source):
            if item.transcript is None:
                problems.append(f"{item.audio}: no .txt or .lab transcript beside it")
            else:
                pairs.append((item.audio, item.transcript))
        return pairs, problems, True
    from ..corpus.files import find_transcript

    transcript = transcript or find_transcript(source)
    if transcript is None:
        raise AlignerError(f"{source}: no transcript given (TRANSCRIPT) and no .txt or .lab file beside it")
    return [(source, transcript)], [], False
