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

Accuracy on long audio: the recordings with a human alignment (``NAME.TextGrid``)
are placed in the long one at known offsets, so their word boundaries are
compared with the human ones (MAE, % within 50 ms) as in
``bench_accuracy.py``, and every file's words are checked to stay inside
its own stretch of the recording ("pieces with a word outside", more than
0.5 s beyond its ends). The recording mixes files of very different levels
(8 kHz digits at -46 dB, whispering at -43 dB, speeches at -10 dB): a
harder test than one long session.
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
PAUSE = 8000  # samples of quiet noise after each piece (0.5 s)
sys.path.insert(0, str(ROOT))


def make_recording(minutes: float) -> tuple[Path, Path]:
    import soundfile

    from aligner.audio import load_audio
    from aligner.text import read_transcript

    audio_path = OUT / f"long-{minutes:g}min.wav"
    text_path = audio_path.with_suffix(".txt")
    if audio_path.is_file() and text_path.is_file():
        return audio_path, text_path
    pieces = [(load_audio(p, 16000).numpy(), read_transcript(p.with_suffix(".txt")).strip()) for p in sources()]
    rng = np.random.default_rng(0)
    pause = (0.001 * rng.standard_normal(PAUSE)).astype(np.float32)
    OUT.mkdir(parents=True, exist_ok=True)
    order = [index for index, _ in layout([len(wave) for wave, _ in pieces], minutes)]
    with soundfile.SoundFile(str(audio_path), "w", 16000, 1, "PCM_16") as handle:
        for index in order:
            handle.write(np.concatenate([pieces[index][0], pause]))
    text_path.write_text(" ".join(pieces[index][1] for index in order) + "\n")
    return audio_path, text_path


def sources() -> list[Path]:
    """The recordings the long one is made of, in order (the example without ``../shared``)."""
    found = (
        sorted(p for p in SPEECH.glob("*") if p.suffix in (".wav", ".flac", ".mp3") and p.with_suffix(".txt").is_file())
        if SPEECH.is_dir()
        else []
    )
    return found or [ROOT / "examples" / "example.wav"]


def layout(lengths: list[int], minutes: float) -> list[tuple[int, int]]:
    """``(source index, first sample)`` of each piece of the long recording:
    the sources in turn, each followed by a pause, until ``minutes`` are
    reached. ``lengths``: samples of each source at 16 kHz."""
    target, written, pieces = int(minutes * 60 * 16000), 0, []
    while written < target:
        for index, length in enumerate(lengths):
            pieces.append((index, written))
            written += length + PAUSE
            if written >= target:
                break
    return pieces


def long_accuracy(minutes: float, grid: Path) -> str:
    """Word boundaries of the long alignment ``grid`` against the human
    alignments of the pieces that have one, and the pieces whose words
    leave their own stretch of audio (see the module docstring)."""
    import textgrid
    from bench_accuracy import boundary_errors, reference_words

    from aligner.audio import load_audio
    from aligner.text import read_transcript

    found = sources()
    lengths = [len(load_audio(p, 16000)) for p in found]
    words = [interval for interval in textgrid.TextGrid.fromFile(str(grid)).getFirst("words") if interval.mark.strip()]
    errors, strays, position = [], 0, 0
    for index, first in layout(lengths, minutes):
        count = len(read_transcript(found[index].with_suffix(".txt")).split())
        piece, position = words[position : position + count], position + count
        start, end = first / 16000, (first + lengths[index]) / 16000
        strays += any(w.minTime < start - 0.5 or w.maxTime > end + 0.5 for w in piece)
        human = found[index].with_suffix(".TextGrid")
        if human.is_file():
            reference = [(w, a + start, b + start) for w, a, b in reference_words(human)]
            errors += boundary_errors([(w.minTime, w.maxTime) for w in piece], reference)
    if position != len(words):
        return f"words of the alignment ({len(words)}) and of the transcripts ({position}) differ"
    pieces = len(layout(lengths, minutes))
    if not errors:
        return f"{strays} of {pieces} pieces with a word outside"
    mae, within = float(np.mean(errors)), 100 * float(np.mean(np.array(errors) <= 50))
    outside = f"{strays} of {pieces} pieces with a word outside"
    return f"{len(errors)} human boundaries: MAE {mae:.1f} ms, {within:.1f} % within 50 ms; {outside}"


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
    return {
        "model": spec,
        "wall_s": wall,
        "peak_rss_gib": peak_kib / 2**20,
        "stderr": process.stderr.strip(),
        "output": output,
    }


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
    print("| model | wall time | x real time | peak RSS | accuracy |")
    print("|---|---|---|---|---|")
    for name in args.model or ["TRELLIS_EN_PHONES", "base-random"]:
        result = run(audio, text, model_spec(name))
        accuracy = "(random weights)" if name == "base-random" else long_accuracy(args.minutes, result["output"])
        print(
            f"| {name} | {result['wall_s']:.0f} s | {seconds / result['wall_s']:.1f} | "
            f"{result['peak_rss_gib']:.2f} GiB | {accuracy} |",
            flush=True,
        )
        print(f"<!-- {result['stderr'].splitlines()[-1] if result['stderr'] else ''} -->")


if __name__ == "__main__":
    main()
