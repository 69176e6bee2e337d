"""Make the example figures in docs/images/ (one of each kind of viz figure).

    python docs/make_figures.py [--model SPEC] [--out docs/images]

Without ``--model`` a tiny *random* model is used (so the alignment itself
is meaningless; re-run with a real model for the published images). The
recording is ``../shared/data/speech/mary.wav`` with its human TextGrid as
the reference when that folder exists, else a synthetic signal and a
hand-made reference.
"""

from __future__ import annotations

import argparse
from pathlib import Path

import matplotlib

matplotlib.use("Agg")

import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402
import torch  # noqa: E402

import viz  # noqa: E402
from aligner import Aligner, forced_align  # noqa: E402
from aligner.audio import prepare_waveform, read_audio  # noqa: E402
from aligner.readers import read_textgrid  # noqa: E402
from aligner.records import Alignment, WordSpan  # noqa: E402
from aligner.testing import tiny_model  # noqa: E402
from aligner.text import transcript_for_model  # noqa: E402

ROOT = Path(__file__).resolve().parents[1]
SPEECH = ROOT.parent / "shared" / "data" / "speech"
DPI = 90


def _synthetic() -> tuple[np.ndarray, int, str, Alignment]:
    """Three vowel-like tones separated by pauses, and a reference for them."""
    rate = 16000
    t = np.arange(int(2.0 * rate)) / rate
    signal = np.zeros_like(t)
    words = []
    for (start, end), text, f0 in zip(
        [(0.2, 0.55), (0.75, 1.1), (1.35, 1.8)], ["one", "two", "three"], [120, 140, 110]
    ):
        inside = (t >= start) & (t < end)
        envelope = np.sin(np.pi * (t[inside] - start) / (end - start))
        signal[inside] = envelope * sum(np.sin(2 * np.pi * f0 * k * t[inside]) / k for k in range(1, 12))
        words.append(WordSpan(text, text.upper(), start, end, float("nan")))
    signal = 0.2 * signal + 0.0002 * np.random.default_rng(0).standard_normal(t.size)
    return signal.astype(np.float32), rate, "one two three", Alignment(tuple(words), 2.0)


def _save(fig, path: Path) -> None:
    fig.savefig(path, dpi=DPI)
    plt.close(fig)
    print(f"wrote {path} ({path.stat().st_size / 1024:.0f} KB)")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--model", default=None, help="model spec (default: a tiny random model)")
    parser.add_argument("--out", type=Path, default=ROOT / "docs" / "images")
    args = parser.parse_args()
    args.out.mkdir(parents=True, exist_ok=True)

    model = tiny_model(name="tiny random model") if args.model is None else args.model
    aligner = Aligner(model, device="cpu")
    model = aligner.model
    wav = SPEECH / "mary.wav"
    if wav.exists() and (SPEECH / "mary.TextGrid").exists():
        data, rate = read_audio(wav)
        text = (SPEECH / "mary.txt").read_text(encoding="utf-8").strip()
        reference = read_textgrid(SPEECH / "mary.TextGrid")
        name = wav.name
    else:
        data, rate, text, reference = _synthetic()
        name = "synthetic signal"
    alignment = aligner.align((data, rate), text)
    waveform = prepare_waveform(data, rate, model.sample_rate)
    title = f"{name}, {model.name}"

    figure = plt.figure(figsize=(11, 5.5), layout="constrained")
    viz.plot_alignment(data, rate, alignment, fig=figure, title=title)
    _save(figure, args.out / "alignment.png")

    log_probs = aligner.emitter([waveform]).log_probs[0].cpu()
    targets, _ = transcript_for_model(text, model)[0].targets(model.separator_id)
    paths, _ = forced_align(log_probs[None], torch.tensor([targets]), blank=model.blank)

    figure, ax = plt.subplots(figsize=(10, 4.5), layout="constrained")
    viz.plot_emissions(log_probs, model.labels, path=paths[0], frame_seconds=model.frame_seconds, ax=ax)
    ax.set_title(f"emissions and Viterbi path: {title}")
    _save(figure, args.out / "emissions.png")

    figure, ax = plt.subplots(figsize=(10, 4.5), layout="constrained")
    viz.plot_trellis(
        log_probs,
        targets,
        model.labels,
        path=paths[0],
        blank=model.blank,
        frame_seconds=model.frame_seconds,
        kind="relative",
        vmin=-50,
        ax=ax,
    )
    ax.set_title(f"CTC trellis (best complete path through each cell vs the best path): {title}")
    _save(figure, args.out / "trellis.png")

    figure, ax = plt.subplots(figsize=(7, 3.5), layout="constrained")
    viz.plot_confidence(alignment, ax=ax, threshold=0.5)
    _save(figure, args.out / "confidence.png")

    figure = plt.figure(figsize=(11, 4.2), layout="constrained")
    viz.plot_comparison(alignment, reference, fig=figure, names=(model.name, "human"))
    _save(figure, args.out / "comparison.png")


if __name__ == "__main__":
    main()
