"""``aligner train``: a CTC model trained on a corpus folder."""

from __future__ import annotations

import sys
from pathlib import Path

import click

from .common import FINITE, batch_seconds_option, command, device_option, quiet_option, workers_option


@command()
@click.argument("corpus_dir", type=click.Path(path_type=Path))
@click.option(
    "--output",
    "-o",
    "model_dir",
    required=True,
    type=click.Path(path_type=Path),
    help="Model folder: receives the best model, training_state.pt and training_log.jsonl.",
)
@click.option(
    "--config",
    "-c",
    "config_name",
    default=None,
    help="Training config: tiny, small or finetune (default: small; finetune with --init).",
)
@click.option(
    "--init",
    "init_spec",
    default=None,
    help="Start from this model (bundle name or model folder); its labels are kept.",
)
@click.option("--epochs", type=int, default=None, help="Passes over the training utterances.")
@click.option("--max-steps", type=int, default=None, help="Stop after this many optimizer steps.")
@batch_seconds_option()
@click.option("--lr", type=FINITE, default=None, help="Peak learning rate (default: the config's).")
@device_option()
@click.option("--resume", is_flag=True, help="Continue the run saved in the model folder.")
@click.option("--overwrite", is_flag=True, help="Start afresh even if the model folder holds a run.")
@click.option("--seed", type=int, default=None, help="Random seed (default 0).")
@click.option("--dev-fraction", type=FINITE, default=None, help="Share of utterances held out (default 0.1).")
@click.option(
    "--timing-weight", type=FINITE, default=None, help="Weight of the TextGrid word-timing loss (default 0: off)."
)
@click.option("--threads", type=int, default=None, help="CPU threads for torch.")
@workers_option("Audio decoding worker processes.", default=None, minimum=None)
@click.option("--eval-every", type=int, default=None, help="Also evaluate every N steps.")
@click.option("--save-every", type=int, default=None, help="Also save the training state every N steps.")
@quiet_option("No progress bar or per-epoch lines.")
def train(
    corpus_dir: Path,
    model_dir: Path,
    config_name: str | None,
    init_spec: str | None,
    epochs: int | None,
    max_steps: int | None,
    batch_seconds: float | None,
    lr: float | None,
    device: str | None,
    resume: bool,
    overwrite: bool,
    seed: int | None,
    dev_fraction: float | None,
    timing_weight: float | None,
    threads: int | None,
    workers: int | None,
    eval_every: int | None,
    save_every: int | None,
    quiet: bool,
) -> None:
    """Train a CTC model on CORPUS_DIR (audio + same-name .txt/.lab transcripts,
    optionally in speaker folders) and save it into the --output folder,
    which `aligner align --model` then accepts."""
    import shlex

    from ..training.ctc import train as run_training

    if resume and overwrite:
        raise click.UsageError("give either --resume or --overwrite, not both")
    result = run_training(
        corpus_dir,
        model_dir,
        config=config_name,
        init=init_spec,
        epochs=epochs,
        max_steps=max_steps,
        batch_seconds=batch_seconds,
        lr=lr,
        device=device,
        resume=resume,
        overwrite=overwrite,
        seed=seed,
        dev_fraction=dev_fraction,
        timing_weight=timing_weight,
        threads=threads,
        workers=workers,
        eval_every=eval_every,
        save_every=save_every,
        progress=not quiet,
        command=shlex.join(sys.argv),
    )
    best = ""
    if result.best_dev_loss is not None:
        best = (
            f", best dev loss {result.best_dev_loss:.3f}, dev CER {result.best_dev_cer:.3f} at step {result.best_step}"
        )
    click.echo(
        f"trained {result.steps} steps ({result.num_train} training / {result.num_dev} dev utterances)"
        f"{best}; model in {result.model_dir}",
        err=True,
    )
