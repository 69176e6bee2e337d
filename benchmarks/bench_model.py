"""Size, load time and CPU speed of a model (default: the packaged one).

python benchmarks/bench_model.py [--model SPEC] [--seconds 60] [--threads 2]
"""

from __future__ import annotations

import argparse
import time
from pathlib import Path

import torch


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--model", default=None)
    parser.add_argument("--seconds", type=float, default=60.0)
    parser.add_argument("--threads", type=int, default=2)
    args = parser.parse_args()
    torch.set_num_threads(args.threads)

    from aligner.models.emissions import EmissionModel
    from aligner.models.loading import DEFAULT_MODEL, PACKAGED_MODEL, load_model

    start = time.perf_counter()
    model = load_model(args.model)
    load_seconds = time.perf_counter() - start
    folder = PACKAGED_MODEL if (args.model or DEFAULT_MODEL).upper() == "TRELLIS_EN_PHONES" else Path(args.model)
    size = sum(p.stat().st_size for p in folder.glob("*")) if folder.is_dir() else float("nan")
    params = sum(p.numel() for p in model.model.parameters())

    emitter = EmissionModel(model, device="cpu")
    audio = 0.1 * torch.randn(int(args.seconds * model.sample_rate), generator=torch.Generator().manual_seed(0))
    emitter([audio[: model.sample_rate]])  # warm-up
    start = time.perf_counter()
    emitter([audio])
    wall = time.perf_counter() - start
    print(
        f"model {model.name}: {params / 1e6:.2f} M parameters, {size / 2**20:.1f} MiB on disk, "
        f"loads in {load_seconds:.2f} s; emissions for {args.seconds:.0f} s of audio in {wall:.2f} s "
        f"on {args.threads} threads = {args.seconds / wall:.0f}x real time"
    )

    # end to end on the example: decoding, transcript normalization (and
    # phonemization for a phone model), emissions, Viterbi, spans
    from aligner import Aligner

    examples = Path(__file__).resolve().parents[1] / "examples"
    text = (examples / "example.txt").read_text(encoding="utf-8")
    engine = Aligner(model, device="cpu")
    for _ in range(2):  # warm-up: espeak on the first call, the compiled decoder loaded on the second
        engine.align(examples / "example.wav", text)
    runs = 5
    start = time.perf_counter()
    for _ in range(runs):
        result = engine.align(examples / "example.wav", text)
    wall = (time.perf_counter() - start) / runs
    print(
        f"end to end: the {result.duration:.1f} s example aligned in {wall:.3f} s = "
        f"{result.duration / wall:.0f}x real time on {args.threads} threads"
    )


if __name__ == "__main__":
    main()
