"""Corpus throughput: ``align_corpus`` against a per-file pipeline written the
way torchaudio's forced-alignment tutorial does it, same model, same files,
same run.

    python benchmarks/bench_corpus.py                       # packaged model
    python benchmarks/bench_corpus.py --model base-random   # base-size architecture (random weights)
    python benchmarks/bench_corpus.py --synthetic 400 --repeats 2

The corpus (built once under ``benchmarks/out/corpus_bench``): the real
recordings of ``../shared/data/speech`` (8-48 kHz wav/flac/mp3, mono and
stereo; linked, not copied) plus ``--synthetic`` held-out synthetic
utterances from ``scripts/make_synthetic_corpus.py``.

Baseline, one file at a time (torchaudio tutorial, "CTC forced alignment API"):
decode (``soundfile``; ``torchaudio.load`` needs torchcodec, which torchaudio
2.11 no longer bundles), down-mix, ``torchaudio.functional.resample``, the
model on the whole file, ``log_softmax``, ``torchaudio.functional.forced_align``,
``merge_tokens``, group tokens into words, write JSON.

Ours: ``aligner.align_corpus`` (length-bucketed batches, background
decoding, batched emissions and Viterbi), JSON output, in float32 (the
same arithmetic as the baseline) and in bfloat16 autocast (``--dtype
bfloat16``), which halves the network's cost on CPUs with native bf16.
The network dominates both pipelines on a CPU (~90 % of our time), so in
float32 batching alone cannot make it much faster.

Both get the same targets (our transcript normalization) and the same
network object; both are warmed up first. Reported: wall time, x real time,
the ratio, and how many word starts agree (the emissions of files longer
than the emission window are computed in windows by ours, so a few frames
may differ there).
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import shutil
import sys
import time
import warnings
from pathlib import Path

import numpy as np
import torch

ROOT = Path(__file__).resolve().parents[1]
SPEECH = ROOT.parent / "shared" / "data" / "speech"
OUT = ROOT / "benchmarks" / "out"
sys.path.insert(0, str(ROOT))


def build_corpus(root: Path, synthetic: int, seed: int) -> Path:
    """Real recordings (symlinked) + ``synthetic`` generated utterances."""
    from aligner.corpus.files import AUDIO_EXTENSIONS

    real = root / "real"
    if SPEECH.is_dir() and not real.exists():
        real.mkdir(parents=True)
        for path in sorted(SPEECH.iterdir()):
            if path.suffix.lower() in AUDIO_EXTENSIONS and path.with_suffix(".txt").is_file():
                (real / path.name).symlink_to(path)
                (real / path.with_suffix(".txt").name).symlink_to(path.with_suffix(".txt"))
    synth = root / f"synthetic-{synthetic}-{seed}"
    if synthetic and not synth.exists():
        from aligner.training.synth import make_corpus

        make_corpus(synth, num_utterances=synthetic, seed=seed, split="heldout", jobs=2, progress=False)
    return root


def load_bench_model(spec: str | None):
    from aligner.models.loading import load_model
    from aligner.testing import random_model

    return random_model("wav2vec2_base") if spec == "base-random" else load_model(spec)


def per_file_baseline(files, model, out_dir: Path) -> dict[str, list[float]]:
    """The tutorial's pipeline, one file at a time. Returns word starts per file."""
    import soundfile
    import torchaudio.functional as F

    from aligner.text import normalize_transcript, read_transcript

    out_dir.mkdir(parents=True, exist_ok=True)
    starts = {}
    for item in files:
        data, rate = soundfile.read(str(item.audio), dtype="float32", always_2d=True)
        waveform = torch.from_numpy(data.mean(axis=1))[None]
        if rate != model.sample_rate:
            waveform = F.resample(waveform, rate, model.sample_rate)
        if model.normalize_waveform:
            waveform = torch.nn.functional.layer_norm(waveform, waveform.shape)
        with torch.inference_mode():
            emission, _ = model.model(waveform)
            emission = torch.log_softmax(emission, dim=-1)
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            transcript = normalize_transcript(
                read_transcript(item.transcript), model.labels, blank=model.blank, separator=model.separator
            )
        tokens, word_index = transcript.targets(model.separator_id)
        targets = torch.tensor([tokens], dtype=torch.int32)
        aligned, scores = F.forced_align(emission, targets, blank=model.blank)
        spans = F.merge_tokens(aligned[0], scores[0].exp())
        words: dict[int, list] = {}
        for span, index in zip(spans, word_index):
            if index >= 0 and span.token != model.separator_id:
                words.setdefault(index, []).append(span)
        frame = model.frame_seconds
        result = [
            {
                "word": transcript.words[i].text,
                "start": s[0].start * frame,
                "end": s[-1].end * frame,
                "score": float(np.mean([x.score for x in s])),
            }
            for i, s in sorted(words.items())
        ]
        (out_dir / (item.key.replace("/", "__") + ".json")).write_text(json.dumps(result))
        starts[item.key] = [w["start"] for w in result]
    return starts


def our_starts(out_dir: Path, files) -> dict[str, list[float]]:
    from aligner.corpus.files import output_path

    starts = {}
    for item in files:
        path = output_path(out_dir, item.key, "json")
        if path.is_file():
            starts[item.key] = [w["start"] for w in json.loads(path.read_text())["words"] if w["aligned"]]
    return starts


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--model", default=None, help="model spec, or 'base-random' (default: packaged)")
    parser.add_argument("--synthetic", type=int, default=300, help="synthetic utterances in the corpus")
    parser.add_argument("--seed", type=int, default=5)
    parser.add_argument("--batch-seconds", type=float, default=120.0)
    parser.add_argument("--workers", type=int, default=2)
    parser.add_argument("--repeats", type=int, default=2, help="alternating runs of each; best is kept")
    parser.add_argument(
        "--dtype",
        nargs="+",
        default=["float32", "bfloat16"],
        help="precisions of our pipeline to run (bfloat16 pays off on CPUs with native bf16: AVX512-BF16 or AMX)",
    )
    args = parser.parse_args()

    from aligner.corpus.align import align_corpus
    from aligner.corpus.files import find_corpus_files
    from aligner.pipeline import Aligner

    corpus = build_corpus(OUT / "corpus_bench", args.synthetic, args.seed)
    files = [f for f in find_corpus_files(corpus) if f.transcript is not None]
    model = load_bench_model(args.model)
    from aligner.corpus.files import audio_duration

    audio_seconds = sum(audio_duration(f.audio) or 0.0 for f in files)

    # Warm-up: numba kernels, torch allocators, resampler caches.
    per_file_baseline(files[:2], model, OUT / "bench_corpus_warmup")

    runs: dict[str, list[float]] = {"baseline": []}
    variants = {dtype: Aligner(model, device="cpu", dtype=dtype, window_batch=4) for dtype in args.dtype}
    for dtype, variant in variants.items():  # warm-up of each precision
        align_corpus(
            corpus / "real" if (corpus / "real").exists() else corpus,
            OUT / "bench_corpus_warmup_ours",
            variant,
            formats=("json",),
            overwrite=True,
        )
        runs[dtype] = []
    for _ in range(args.repeats):
        target = OUT / "bench_corpus_baseline"
        shutil.rmtree(target, ignore_errors=True)
        t0 = time.perf_counter()
        base = per_file_baseline(files, model, target)
        runs["baseline"].append(time.perf_counter() - t0)
        for dtype, variant in variants.items():
            target = OUT / f"bench_corpus_ours_{dtype}"
            shutil.rmtree(target, ignore_errors=True)
            t0 = time.perf_counter()
            summary = align_corpus(
                corpus, target, variant, formats=("json",), batch_seconds=args.batch_seconds, workers=args.workers
            )
            runs[dtype].append(time.perf_counter() - t0)
            if summary.failed:
                print(f"warning: {summary.failed} files failed: {summary.failures[:3]}", file=sys.stderr)

    print(
        f"machine: {platform.machine()}, {os.cpu_count()} cores, torch {torch.__version__}, "
        f"{torch.get_num_threads()} threads; model: {model.name}"
    )
    print(f"corpus: {len(files)} files, {audio_seconds / 60:.1f} min of audio")
    print()
    print("| pipeline | wall time | x real time | ratio | word starts = baseline's |")
    print("|---|---|---|---|---|")
    base_t = min(runs["baseline"])
    print(f"| per-file, torchaudio tutorial (float32) | {base_t:.1f} s | {audio_seconds / base_t:.0f} | 1.00 | |")
    for dtype in variants:
        ours = our_starts(OUT / f"bench_corpus_ours_{dtype}", files)
        same = total = 0
        for key, starts in base.items():
            mine = ours.get(key, [])
            if len(mine) == len(starts):
                same += sum(1 for a, b in zip(starts, mine) if abs(a - b) < 1e-6)
            total += len(starts)
        ours_t = min(runs[dtype])
        print(
            f"| `align_corpus`, {dtype} | {ours_t:.1f} s | {audio_seconds / ours_t:.0f} | "
            f"**{base_t / ours_t:.2f}x** | {100 * same / max(total, 1):.1f} % |"
        )
    print()
    print("runs (s): " + ", ".join(f"{k} {[round(t, 1) for t in v]}" for k, v in runs.items()))


if __name__ == "__main__":
    main()
