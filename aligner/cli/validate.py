"""``aligner validate``: check a corpus without aligning it."""

from __future__ import annotations

import sys
from pathlib import Path

import click

from .common import EXIT_SOME_FAILED, command, model_option, quiet_option, workers_option


@command()
@click.argument("in_dir", type=click.Path(path_type=Path))
@model_option("Model whose labels and frame rate the corpus is checked against (default: the default model).")
@workers_option("Threads decoding audio.")
@quiet_option()
def validate(in_dir: Path, model_spec: str | None, workers: int, quiet: bool) -> None:
    """Check the corpus IN_DIR without aligning it: missing transcripts,
    unreadable/empty/silent audio, characters the model cannot represent
    (warnings) and transcripts too long for their audio.

    Prints one line per problem; exit code 3 when any file cannot be aligned.
    """
    from tqdm import tqdm

    from ..corpus.files import find_corpus_files, validate_corpus

    files = find_corpus_files(in_dir)  # a missing or empty folder: answered before torch is imported
    from ..models.loading import load_model

    model = load_model(model_spec)
    with tqdm(total=len(files), unit="file", disable=quiet, desc="checking") as bar:
        problems = validate_corpus(files, model, workers=workers, on_file=lambda item, found: bar.update(1))
    for problem in problems:
        click.echo(
            f"{'error' if problem.fatal else 'warning'}\t{problem.key}\t{problem.stage}\t"
            f"{' '.join(problem.message.split())}"
        )
    bad = {p.key for p in problems if p.fatal}
    warned = {p.key for p in problems if not p.fatal} - bad
    click.echo(
        f"{len(files)} files: {len(files) - len(bad)} can be aligned ({len(warned)} with warnings), {len(bad)} cannot",
        err=True,
    )
    if bad:
        sys.exit(EXIT_SOME_FAILED)
