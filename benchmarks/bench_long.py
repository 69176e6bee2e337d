"""One long recording (default 1 hour) aligned by one `aligner align` command:
wall time and peak resident memory (RSS) of the whole process.

    python benchmarks/bench_long.py                          # base-size model (random weights) + packaged
    python benchmarks/bench_long.py --minutes 10 --model TRELLIS_EN_PHONES

The recording is the real speech of ``../shared/data/speech`` (every file
with a transcript, resampled to 16 kHz, 0.5 s pauses between files) repeated
until it lasts ``--minutes``; its transcript is the files' transcripts in the
same order. (Without ``../shared`` the packaged example is repeated.) It is
written once to ``benchmarks/out/long/``.

``base-random`` is torchaudio's ``wav2vec2_base`` architecture (95 M
parameters, ``group_norm`` extractor) with random weights and the 29 English
labels, saved in the project's model format: it costs what a real base-size
model costs (weights cannot be downloaded here), its alignment is meaningless.
Peak RSS is ``ru_maxrss`` of the child process (everything: Python, torch,
model, audio, emissions, Viterbi, output).
"""

from __future__ import annotations

import argparse
import os
import platform
import resource
import subprocess
import sys
import time
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
SPEECH = ROOT.parent / "shared" / "data" / "speech"
OUT = ROOT / "benchmarks" / "out" / "long"
sys.path.insert(0, str(ROOT))


def make_recording(minutes: float) -> tuple[Path, Path]:
    import soundfile

    from aligner.audio import load_audio
    from aligner.text import read_transcript

    audio_path = OUT / f"long-{minutes:g}min.wav"
    text_path = audio_path.with_suffix(".txt")
    if audio_path.is_file() and text_path.is_file():
        return audio_path, text_path
    sources = (
        sorted(p for p in SPEECH.glob("*") if p.suffix in (".wav", ".flac", ".mp3") and p.with_suffix(".txt").is_file())
        if SPEECH.is_dir()
        else []
    )
    if not sources:
        sources = [ROOT / "examples" / "example.wav"]
    pieces = [(load_audio(p, 16000).numpy(), read_transcript(p.with_suffix(".txt")).strip()) for p in sources]
    rng = np.random.default_rng(0)
    pause = (0.001 * rng.standard_normal(8000)).astype(np.float32)
    target = int(minutes * 60 * 16000)
    OUT.mkdir(parents=True, exist_ok=True)
    written, words = 0, []
    with soundfile.SoundFile(str(audio_path), "w", 16000, 1, "PCM_16") as handle:
        while written < target:
            for wave, text in pieces:
                handle.write(np.concatenate([wave, pause]))
                words.append(text)
                written += len(wave) + len(pause)
                if written >= target:
                    break
    text_path.write_text(" ".join(words) + "\n")
    return audio_path, text_path


def model_spec(name: str) -> str:
    if name != "base-random":
        return name
    folder = OUT / "base-random"
    if not (folder / "aligner_model.json").is_file():
        from aligner.models.loading import save_model
        from aligner.testing import random_model

        save_model(random_model("wav2vec2_base", name="wav2vec2_base-random"), folder)
    return str(folder)


def run(audio: Path, text: Path, spec: str) -> dict:
    output = OUT / f"{audio.stem}-{Path(spec).name}.TextGrid"
    command = [
        sys.executable,
        "-m",
        "aligner",
        "align",
        str(audio),
        str(text),
        "-o",
        str(output),
        "--model",
        spec,
        "--device",
        "cpu",
    ]
    start = time.perf_counter()
    process = subprocess.run(command, capture_output=True, text=True)
    wall = time.perf_counter() - start
    if process.returncode != 0:
        raise SystemExit(f"{' '.join(command)} failed:\n{process.stderr}")
    peak_kib = resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss  # the largest child so far
    return {"model": spec, "wall_s": wall, "peak_rss_gib": peak_kib / 2**20, "stderr": process.stderr.strip()}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--minutes", type=float, default=60.0)
    parser.add_argument(
        "--model",
        action="append",
        default=None,
        help="model spec or 'base-random' (repeatable; default: base-random then the packaged "
        "model; the smaller run goes first so each RSS reading is its own)",
    )
    args = parser.parse_args()
    audio, text = make_recording(args.minutes)
    import soundfile

    seconds = soundfile.info(str(audio)).duration
    words = len(text.read_text().split())
    print(f"machine: {platform.machine()}, {os.cpu_count()} cores; recording {seconds / 60:.1f} min, {words} words")
    print()
    print("| model | wall time | x real time | peak RSS |")
    print("|---|---|---|---|")
    for name in args.model or ["TRELLIS_EN_PHONES", "base-random"]:
        result = run(audio, text, model_spec(name))
        print(
            f"| {name} | {result['wall_s']:.0f} s | {seconds / result['wall_s']:.1f} | "
            f"{result['peak_rss_gib']:.2f} GiB |",
            flush=True,
        )
        print(f"<!-- {result['stderr'].splitlines()[-1] if result['stderr'] else ''} -->")


if __name__ == "__main__":
    main()
