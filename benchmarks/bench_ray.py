"""Ray throughput: ``align-corpus --ray`` on a local Ray cluster of one and
of two single-CPU nodes, against the local ``align_corpus`` on the same
corpus, same model, in one run.

    python benchmarks/bench_ray.py                          # packaged model, 40 files
    python benchmarks/bench_ray.py --model base-random      # base-size architecture (random weights)
    python benchmarks/bench_ray.py --files 4                # a smoke test

The corpus (built under ``benchmarks/out/corpus_ray``): the real recordings
of ``../shared/data/speech`` with a transcript (8-48 kHz wav/flac/mp3,
linked, not copied) and renamed links to ``examples/example.wav``, cut or
filled to ``--files`` files.

Pipelines, each writing JSON into its own folder:

* local, 1 torch thread: ``align_corpus`` in this process with what one
  single-CPU node has (the per-node reference);
* local, all threads: ``align_corpus`` as a user runs it on this machine;
* Ray, 1 node and 2 nodes: a ``ray.cluster_utils.Cluster`` of single-CPU
  nodes on this machine (cluster start not timed) and ``align_corpus(...,
  ray_address=...)``: one actor per node, each loading the model (timed:
  it is part of every run), decoding and aligning its batches, the driver
  writing the outputs.

Reported: wall time, seconds to the first finished file (actor start and
model load for Ray), x real time, throughput relative to the local run on
one thread (so ``1 node`` shows Ray's per-node overhead and ``2 nodes`` the
scaling), and how many output files are byte-identical to the one-thread
local run's (they all should be). On a machine with fewer free cores than
nodes the nodes share them: run it on a quiet machine with at least 3 cores
(two nodes and the driver).
"""

from __future__ import annotations

import argparse
import filecmp
import os
import platform
import shutil
import sys
import time
from pathlib import Path

import torch

ROOT = Path(__file__).resolve().parents[1]
SPEECH = ROOT.parent / "shared" / "data" / "speech"
OUT = ROOT / "benchmarks" / "out"
sys.path.insert(0, str(ROOT))

NODE_MEMORY = 200 * 1024 * 1024


def build_corpus(root: Path, files: int) -> Path:
    """``files`` files: the real recordings (linked), then renamed links to the example."""
    from aligner.corpus.files import AUDIO_EXTENSIONS

    shutil.rmtree(root, ignore_errors=True)
    pairs = []
    if SPEECH.is_dir():
        pairs = [
            (p, p.with_suffix(".txt"))
            for p in sorted(SPEECH.iterdir())
            if p.suffix.lower() in AUDIO_EXTENSIONS and p.with_suffix(".txt").is_file()
        ]
    example = (ROOT / "examples" / "example.wav", ROOT / "examples" / "example.txt")
    pairs = pairs[:files] + [example] * max(0, files - len(pairs))
    for index, (audio, text) in enumerate(pairs):
        folder = root / f"spk{index % 4}"
        folder.mkdir(parents=True, exist_ok=True)
        name = audio.stem if audio != example[0] else f"example_{index:04d}"
        (folder / f"{name}{audio.suffix}").symlink_to(audio.resolve())
        (folder / f"{name}.txt").symlink_to(text.resolve())
    return root


def model_spec(spec: str | None) -> str | None:
    """A spec the actors can load: ``base-random`` is saved to a folder once."""
    if spec != "base-random":
        return spec
    from aligner.models.loading import save_model
    from aligner.testing import random_model

    folder = OUT / "bench_ray_base_random"
    if not (folder / "aligner_model.json").is_file():
        save_model(random_model("wav2vec2_base"), folder)
    return str(folder)


def start_cluster(nodes: int):
    from ray.cluster_utils import Cluster

    os.environ.setdefault("RAY_USAGE_STATS_ENABLED", "0")
    os.environ.setdefault("RAY_DEDUP_LOGS", "0")
    cluster = Cluster(
        initialize_head=True,
        head_node_args={"num_cpus": 1, "object_store_memory": NODE_MEMORY, "include_dashboard": False},
    )
    for _ in range(nodes - 1):
        cluster.add_node(num_cpus=1, object_store_memory=NODE_MEMORY)
    cluster.wait_for_nodes()
    return cluster


def timed(run, address: str | None = None) -> tuple[float, float, object]:
    """Wall time, seconds to the first finished file, and the summary of
    ``run(on_progress, address)``."""
    first = []
    t0 = time.perf_counter()

    def on_progress(result) -> None:
        if not first and result.status != "skipped":
            first.append(time.perf_counter() - t0)

    summary = run(on_progress, address)
    return time.perf_counter() - t0, (first or [float("nan")])[0], summary


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--model", default=None, help="model spec, or 'base-random' (default: packaged)")
    parser.add_argument("--files", type=int, default=40, help="files in the corpus")
    parser.add_argument("--batch-seconds", type=float, default=120.0)
    parser.add_argument("--workers", type=int, default=2, help="decoding threads (per actor on Ray)")
    parser.add_argument("--repeats", type=int, default=1, help="runs of each pipeline; the best is kept")
    args = parser.parse_args()

    try:
        import ray
    except ImportError:
        sys.exit('bench_ray.py needs Ray: pip install -e ".[ray]"')
    from aligner.corpus.align import align_corpus
    from aligner.corpus.files import audio_duration, find_corpus_files
    from aligner.pipeline import Aligner

    corpus = build_corpus(OUT / "corpus_ray", args.files)
    files = find_corpus_files(corpus)
    audio_seconds = sum(audio_duration(f.audio) or 0.0 for f in files)
    spec = model_spec(args.model)
    options = dict(formats=("json",), batch_seconds=args.batch_seconds, workers=args.workers, overwrite=True)
    threads = torch.get_num_threads()

    def local(num_threads: int):
        aligner = Aligner(spec, device="cpu", window_batch=4)

        def run(on_progress, address):
            torch.set_num_threads(num_threads)
            try:
                return align_corpus(
                    corpus, OUT / f"bench_ray_local_{num_threads}", aligner, on_progress=on_progress, **options
                )
            finally:
                torch.set_num_threads(threads)

        return run

    def on_ray(nodes: int):
        def run(on_progress, address):
            return align_corpus(
                corpus, OUT / f"bench_ray_ray_{nodes}", spec, ray_address=address, on_progress=on_progress, **options
            )

        return run

    # Warm-up: numba kernels (cached on disk for the actors too), torch, resampler caches.
    warm = Aligner(spec, device="cpu", window_batch=4)
    align_corpus(corpus, OUT / "bench_ray_warmup", warm, formats=("json",), overwrite=True)

    # name: (CPUs, run, nodes of the Ray cluster or 0)
    pipelines = {
        "local, 1 torch thread": (1, local(1), 0),
        f"local, {threads} torch threads": (threads, local(threads), 0),
        "Ray, 1 node x 1 CPU": (1, on_ray(1), 1),
        "Ray, 2 nodes x 1 CPU": (2, on_ray(2), 2),
    }
    best: dict[str, tuple[float, float, object]] = {}
    for _ in range(args.repeats):
        for name, (_, run, nodes) in pipelines.items():
            if nodes:  # the cluster's start is not timed; the actors' start is
                cluster = start_cluster(nodes)
                try:
                    wall, first, summary = timed(run, cluster.address)
                finally:
                    if ray.is_initialized():
                        ray.shutdown()
                    cluster.shutdown()
            else:
                wall, first, summary = timed(run)
            if summary.failed:
                print(f"warning: {name}: {summary.failed} files failed: {summary.failures[:3]}", file=sys.stderr)
            if name not in best or wall < best[name][0]:
                best[name] = (wall, first, summary)

    reference = OUT / "bench_ray_local_1"

    def identical(folder: Path) -> str:
        names = sorted(p.relative_to(reference) for p in reference.rglob("*.json"))
        same = sum(1 for n in names if (folder / n).is_file() and filecmp.cmp(reference / n, folder / n, False))
        return f"{same}/{len(names)}"

    folders = {
        "local, 1 torch thread": reference,
        f"local, {threads} torch threads": OUT / f"bench_ray_local_{threads}",
        "Ray, 1 node x 1 CPU": OUT / "bench_ray_ray_1",
        "Ray, 2 nodes x 1 CPU": OUT / "bench_ray_ray_2",
    }
    print(
        f"machine: {platform.machine()}, {os.cpu_count()} cores, torch {torch.__version__}, ray {ray.__version__}; "
        f"model: {warm.model.name}"
    )
    print(f"corpus: {len(files)} files, {audio_seconds / 60:.1f} min of audio; batch {args.batch_seconds:g} s")
    print()
    print(
        "| pipeline | CPUs | wall time | first file after | x real time | throughput vs local 1 thread "
        "| outputs = local 1 thread's |"
    )
    print("|---|---|---|---|---|---|---|")
    base = best["local, 1 torch thread"][0]
    for name, (cpus, _, _) in pipelines.items():
        wall, first, _ = best[name]
        print(
            f"| {name} | {cpus} | {wall:.1f} s | {first:.1f} s | {audio_seconds / wall:.0f} | "
            f"**{base / wall:.2f}x** | {identical(folders[name])} |"
        )
    one, two = best["Ray, 1 node x 1 CPU"][0], best["Ray, 2 nodes x 1 CPU"][0]
    print()
    print(
        f"Ray per-node overhead vs the local run on one thread: {100 * (one / base - 1):+.0f} % wall time "
        f"({one - base:+.1f} s, of which {best['Ray, 1 node x 1 CPU'][1] - best['local, 1 torch thread'][1]:+.1f} s "
        f"more to the first file: actor start and model load); 2 nodes vs 1: {one / two:.2f}x"
    )


if __name__ == "__main__":
    main()
