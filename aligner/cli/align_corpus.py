"""``aligner align-corpus``: every file of a corpus folder, resumable, on one
machine or a Ray cluster."""

from __future__ import annotations

import signal
import sys
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import IO, TYPE_CHECKING, Any, cast

import click

from ..errors import AlignerError
from ..writers import FORMATS
from .common import (
    EXIT_INTERRUPTED,
    EXIT_SOME_FAILED,
    at_least,
    batch_seconds_option,
    command,
    device_option,
    dtype_option,
    fail,
    model_option,
    partial_option,
    positive,
    quiet_option,
    refine_option,
    subtitles_option,
    vtl_warps_option,
    vtln_option,
    workers_option,
)

if TYPE_CHECKING:
    from ..corpus.align import FileResult
    from ..corpus.files import Problem
    from ..corpus.ray_cluster import AlignerSpec
    from ..pipeline import Aligner


class _OneLineUsageError(click.UsageError):
    """A usage error shown as one line ``error: ...`` (exit code 2), like
    the package's other bad-input errors."""

    def show(self, file: IO[Any] | None = None) -> None:
        click.echo(f"error: {self.message}", file=file, err=file is None)


@contextmanager
def _sigterm_as_interrupt() -> Iterator[None]:
    """SIGTERM raises KeyboardInterrupt in the main thread while the block
    runs (where the platform has it), so a terminated run ends as an
    interrupted one: its outputs complete and its reports written."""
    if not hasattr(signal, "SIGTERM") or threading.current_thread() is not threading.main_thread():
        yield
        return

    def interrupt(signum: int, frame: object) -> None:
        raise KeyboardInterrupt

    previous = signal.signal(signal.SIGTERM, interrupt)
    try:
        yield
    finally:
        signal.signal(signal.SIGTERM, previous)


@command("align-corpus")
@click.argument("in_dir", type=click.Path(path_type=Path))
@click.argument("out_dir", type=click.Path(path_type=Path))
@click.option(
    "--format",
    "-f",
    "formats",
    multiple=True,
    type=click.Choice(FORMATS, case_sensitive=False),
    help="Output format; repeat for several (default: textgrid).",
)
@model_option()
@device_option()
@dtype_option(
    "Inference precision (default: bfloat16 on GPU, float32 on CPU; bfloat16 also pays off on CPUs "
    "with native bf16, AVX512-BF16 or AMX)."
)
@batch_seconds_option(default=120.0)
@workers_option("Threads decoding and resampling audio ahead of the network.")
@click.option("--overwrite", is_flag=True, help="Realign files whose outputs already exist.")
@partial_option()
@refine_option()
@vtl_warps_option()
@vtln_option()
@subtitles_option()
@click.option(
    "--worst",
    type=at_least(0, "{option} must be >= {min}, got {value}"),
    default=10,
    show_default=True,
    help="List this many files with the lowest confidence in the summary.",
)
@click.option(
    "--adapt",
    is_flag=True,
    help="First fine-tune a copy of the model on the corpus itself (its audio and transcripts), "
    "keep it only if it scores better on held-out files, then align with it.",
)
@click.option(
    "--adapt-minutes",
    type=positive(),
    default=None,
    help="A wall-clock limit on --adapt in minutes, only if you want one (the run then depends on the machine's "
    "speed). Default: none; the budget is counted in training steps (5 passes over the files adapted on) with "
    "fixed seeds, so the same command gives the same alignments on a busy or a quiet machine.",
)
@click.option(
    "--adapt-per-speaker",
    is_flag=True,
    help="With --adapt: also adapt one model per speaker (first-level subfolder of IN_DIR) that has at least "
    "60 s of audio in 3 files to align, from the original model and on that speaker's files alone; the other "
    "files use the whole-corpus model. --adapt-minutes is the limit of all adaptations together.",
)
@click.option(
    "--save-adapted",
    type=click.Path(file_okay=False, path_type=Path),
    default=None,
    help="Save the adapted model in this folder (use it later with --model); with --adapt-per-speaker "
    "each speaker's own model goes in DIR/SPEAKER.",
)
@click.option(
    "--ray",
    "ray_address",
    default=None,
    metavar="ADDRESS",
    help="Run on a Ray cluster: 'auto' (this machine's cluster, `ray start`) or HOST:PORT of its head. "
    "IN_DIR, OUT_DIR and a model folder must be on storage every node sees.",
)
@click.option(
    "--actors",
    type=at_least(1, "{option} must be >= {min}, got {value}"),
    default=None,
    help="With --ray: number of actors, each loading the model once (default: one per GPU, or as "
    "many as the nodes' CPUs hold).",
)
@click.option(
    "--cpus-per-actor",
    type=positive(),
    default=None,
    help="With --ray: CPUs (torch threads) per actor (default: 1 with GPUs, else the CPUs of the smallest node).",
)
@quiet_option()
def align_corpus(
    in_dir: Path,
    out_dir: Path,
    formats: tuple[str, ...],
    model_spec: str | None,
    device: str | None,
    dtype: str | None,
    batch_seconds: float,
    workers: int,
    overwrite: bool,
    partial: bool,
    refine: bool,
    vtl_warps: tuple[float, ...],
    vtln: bool,
    subtitles: str,
    worst: int,
    adapt: bool,
    adapt_minutes: float | None,
    adapt_per_speaker: bool,
    save_adapted: Path | None,
    ray_address: str | None,
    actors: int | None,
    cpus_per_actor: float | None,
    quiet: bool,
) -> None:
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

    from ..corpus.align import align_corpus as run
    from ..corpus.files import find_corpus_files

    if adapt_per_speaker and not adapt:
        raise _OneLineUsageError("--adapt-per-speaker needs --adapt (it adapts per speaker on top of --adapt)")
    from .inputs import check_output_folder

    find_corpus_files(in_dir)  # fail early, before torch and the model are imported
    check_output_folder(out_dir)
    adapting = adapt or adapt_minutes is not None or save_adapted is not None
    aligner: Aligner | AlignerSpec
    if ray_address is not None:
        if adapting:
            raise AlignerError(
                "--adapt does not run on a Ray cluster: adapt on one machine with --save-adapted, "
                "then align the corpus with --ray and --model the saved folder"
            )
        if vtln:
            raise AlignerError("--vtln does not run on a Ray cluster; align on one machine without --ray")
        if device is not None and device not in ("cpu", "cuda"):
            raise AlignerError(f"with --ray, --device is cpu or cuda (each actor gets its own GPU), not {device}")
        from ..corpus.ray_cluster import AlignerSpec

        aligner = AlignerSpec(
            model_spec, device=device, dtype=dtype, partial=partial, options={"refine": refine, "vtl_warps": vtl_warps}
        )
    else:
        if actors is not None or cpus_per_actor is not None:
            raise AlignerError("--actors and --cpus-per-actor need --ray ADDRESS")
        from ..models.emissions import resolve_device
        from ..pipeline import Aligner

        # Batches are bounded by --batch-seconds; on a GPU pass them whole, on a CPU
        # (compute-bound, no gain from large batches) keep the default groups of 4.
        window_batch = 64 if resolve_device(device).type == "cuda" else 4
        aligner = Aligner(
            model_spec,
            device=device,
            dtype=dtype,
            partial=partial,
            window_batch=window_batch,
            refine=refine,
            vtl_warps=vtl_warps,
            vtln=vtln,
        )
    # The bar is made when the run knows how many files it will align: none (a resumed run with nothing
    # left to do) draws no bar at all, so no empty progress line reaches a log file.
    bar = tqdm(total=0, unit="file", disable=True)
    audio: dict[str, Any] = {"seconds": 0.0, "start": None}

    def on_start(count: int, seconds: float) -> None:
        import time

        nonlocal bar
        bar = tqdm(total=count, unit="file", disable=quiet or count == 0, dynamic_ncols=True, desc="aligning")
        audio["start"] = time.perf_counter()

    def on_progress(result: FileResult) -> None:
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
            problem = cast("Problem", result.problem)  # a failed file always has its problem
            tqdm.write(f"failed: {problem.message}", file=sys.stderr)
        bar.update(1)

    options, adapt_bar = None, None
    if adapting:
        from ..training.adapt import AdaptOptions

        options = AdaptOptions(
            minutes=adapt_minutes,
            save_to=None if save_adapted is None else str(save_adapted),
            per_speaker=adapt_per_speaker,
        )
        adapt_bar = tqdm(unit="step", disable=quiet, dynamic_ncols=True, desc="adapting")

    def on_adapt_step(step: int, score: float | None) -> None:
        if adapt_bar is not None:
            if score is not None:
                adapt_bar.set_postfix_str(f"held-out score {score:.3f}", refresh=False)
            adapt_bar.update(1)

    def on_adapt_start(name: str) -> None:
        if adapt_bar is not None:
            adapt_bar.set_description(f"adapting {name}", refresh=False)

    with _sigterm_as_interrupt():  # `kill`: the run stops like Ctrl-C, with its reports written
        summary = run(
            in_dir,
            out_dir,
            aligner,
            formats=formats or ("textgrid",),
            batch_seconds=batch_seconds,
            workers=workers,
            overwrite=overwrite,
            subtitles=subtitles,
            on_progress=on_progress,
            on_start=on_start,
            adapt=options,
            on_adapt_step=on_adapt_step,
            on_adapt_start=on_adapt_start,
            ray_address=ray_address,
            actors=actors,
            cpus_per_actor=cpus_per_actor,
        )
    if adapt_bar is not None:
        adapt_bar.close()
    bar.close()
    click.echo(summary.describe(worst), err=True)
    if summary.interrupted:
        fail("interrupted: run the same command again to resume", EXIT_INTERRUPTED)
    if summary.failed:
        sys.exit(EXIT_SOME_FAILED)
