"""Word-boundary accuracy of our aligner against human / synthesizer truth,
side by side with pocketsphinx 5.1.1's forced alignment in the same run.

    python benchmarks/bench_accuracy.py                      # shipped model, all sets
    python benchmarks/bench_accuracy.py --model MODEL_DIR --model OTHER --synthetic CORPUS_DIR
    python benchmarks/bench_accuracy.py --refine             # our systems with boundary refinement on

Sets:
  * real: the recordings in ../shared/data/speech that have a human
    ``NAME.TextGrid`` (tier ``words``);
  * real-ps: the other recordings of ../shared/data/speech, with
    pocketsphinx's own alignment as the (rougher, ~20 ms) reference; only
    the files pocketsphinx can align;
  * hostile: every real and real-ps recording three more times: with 1 s
    of near-digital silence (-80 dB noise) pasted into the pause at its
    middle word boundary, with 1 s of -50 dB white noise pasted there, and
    with 2 s of -70 dB noise before and after it (the reference times
    shifted to match): long pauses and silent edges of real recordings;
  * heldout-speakers: real read speech by the real-train speakers that
    training never uses (``aligner.training.real_speech.heldout_speakers``:
    LibriSpeech test-other's 10 speakers and 30 of train-clean-100's, 15
    women and 15 men), transcribed by ``scripts/transcribe_real_speech.py``
    (``--real-train-texts``), with pocketsphinx's alignment as the reference
    (cached in ``benchmarks/out``). Reported over all boundaries and per
    speaker: the mean of the speakers' MAEs and the worst speaker's;
  * real-lj: the shared recording read by the LJ Speech reader
    (LJ050-0131, pocketsphinx's alignment as the reference), reported apart
    from ``real-ps`` since LJ Speech is part of the training data (not
    reported where pocketsphinx cannot align it);
  * synthetic: a held-out corpus made by ``scripts/make_synthetic_corpus.py
    --split heldout`` (voices/variants and sentences never used in training),
    with the synthesizer's exact word timings. Generated on the fly into
    ``benchmarks/out/heldout`` when missing.

Every word contributes two boundaries (start and end); words are matched in
transcript order. Reported: mean absolute error (MAE), median, % within 20
and 50 ms, and speed as x real time (audio seconds / wall seconds).
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from dataclasses import dataclass
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
SPEECH = ROOT.parent / "shared" / "data" / "speech"
OUT = ROOT / "benchmarks" / "out"


@dataclass
class Result:
    errors_ms: list
    audio_seconds: float = 0.0
    wall_seconds: float = 0.0
    failures: int = 0
    gross_files: int = 0

    def summary(self) -> dict:
        e = np.asarray(self.errors_ms, dtype=float)
        if e.size == 0:
            return {"boundaries": 0, "failures": self.failures}
        return {
            "boundaries": int(e.size),
            "mae_ms": round(float(e.mean()), 1),
            "median_ms": round(float(np.median(e)), 1),
            "within_20ms_pct": round(100 * float((e <= 20).mean()), 1),
            "within_50ms_pct": round(100 * float((e <= 50).mean()), 1),
            "x_real_time": round(self.audio_seconds / max(self.wall_seconds, 1e-9), 1),
            "failures": self.failures,
            "files_over_500ms": self.gross_files,
        }


def reference_words(textgrid_path: Path) -> list[tuple[str, float, float]]:
    from praatio import textgrid

    grid = textgrid.openTextgrid(str(textgrid_path), includeEmptyIntervals=False)
    return [(e.label, float(e.start), float(e.end)) for e in grid.getTier("words").entries if e.label.strip()]


def boundary_errors(hyp: list[tuple[float, float]], ref: list[tuple[str, float, float]]) -> list[float]:
    if len(hyp) != len(ref):
        raise ValueError(f"{len(hyp)} hypothesis words for {len(ref)} reference words")
    errors = []
    for (start, end), (_, ref_start, ref_end) in zip(hyp, ref):
        errors += [abs(start - ref_start) * 1000, abs(end - ref_end) * 1000]
    return errors


def _audio_16k(path: Path) -> np.ndarray:
    from aligner.audio import load_audio

    return load_audio(path, 16000).numpy()


class Pocketsphinx:
    """pocketsphinx 5.1.1 forced alignment with its own en-us model."""

    name = "pocketsphinx 5.1.1"

    def __init__(self):
        from pocketsphinx import Decoder

        self.decoder = Decoder(samprate=16000, bestpath=False, loglevel="FATAL")

    def align(self, audio: np.ndarray, text: str) -> list[tuple[float, float]]:
        """Numbers etc. are spelled out by our text stage; each written word
        gets the span from its first to its last spoken word."""
        from aligner.text import ENGLISH_LABELS, normalize_transcript

        spoken = [
            [part.lower() for part in word.normalized.split("|") if part]
            for word in normalize_transcript(text, ENGLISH_LABELS).words
        ]
        pcm = (np.clip(audio, -1, 1) * 32767).astype(np.int16).tobytes()
        self.decoder.set_align_text(" ".join(w for parts in spoken for w in parts))
        self.decoder.start_utt()
        self.decoder.process_raw(pcm, full_utt=True)
        self.decoder.end_utt()
        segments = [s for s in (self.decoder.seg() or []) if not s.word.startswith(("<", "[")) and s.word != "(NULL)"]
        if len(segments) != sum(len(parts) for parts in spoken):
            raise ValueError("pocketsphinx could not align the transcript (out-of-vocabulary word?)")
        result, position = [], 0
        for parts in spoken:
            if not parts:
                raise ValueError("a word with nothing pocketsphinx can say")
            first, last = segments[position], segments[position + len(parts) - 1]
            result.append((first.start_frame / 100, (last.end_frame + 1) / 100))
            position += len(parts)
        return result


class Ours:
    def __init__(self, model, blank_penalty=None, refine=False, vtl_warps=(1.0,), vtln=False):
        from aligner import Aligner

        self.aligner = Aligner(
            model, device="cpu", blank_penalty=blank_penalty, refine=refine, vtl_warps=vtl_warps, vtln=vtln
        )
        note = "" if blank_penalty is None else f", blank penalty {blank_penalty:g}"
        note += ", refined" if refine else ""
        note += "" if vtl_warps == (1.0,) else f", warps {','.join(f'{w:g}' for w in vtl_warps)}"
        note += ", vtln" if vtln else ""
        self.name = f"trellis-align ({self.aligner.model.name}{'' if model is None else ' ' + str(model)}{note})"

    def align(self, audio: np.ndarray, text: str) -> list[tuple[float, float]]:
        result = self.aligner.align((audio, 16000), text)
        return [(w.start, w.end) for w in result.words]


def evaluate(system, items) -> Result:
    result = Result([])
    for audio_path, text, ref, *modified in items:
        audio = modified[0] if modified else _audio_16k(audio_path)
        ref = modified[1] if modified else ref
        start = time.perf_counter()
        try:
            hyp = system.align(audio, text)
            errors = boundary_errors(hyp, ref)
        except Exception as error:  # a failure is reported, not fatal
            print(f"  {system.name}: {audio_path.name}: {error}", file=sys.stderr)
            result.failures += 1
            continue
        result.wall_seconds += time.perf_counter() - start
        result.audio_seconds += len(audio) / 16000
        result.errors_ms += errors
        if max(errors) > 500:  # named, so that a gross error can be looked at
            result.gross_files += 1
            print(f"  {system.name}: {audio_path.name}: a boundary {max(errors):.0f} ms off", file=sys.stderr)
    return result


#: The shared recording whose reader is in the training data (LJ Speech).
TRAINED_READER = "LJ050-0131"


def real_items():
    for grid in sorted(SPEECH.glob("*.TextGrid")):
        if ".source" in grid.name:
            continue
        audio = next(p for p in grid.parent.glob(grid.stem + ".*") if p.suffix in {".wav", ".flac", ".mp3"})
        yield audio, grid.with_suffix(".txt").read_text(encoding="utf-8").strip(), reference_words(grid)


def pocketsphinx_items(pocketsphinx: Pocketsphinx, trained_reader: bool = False):
    """The shared recordings without a human alignment, pocketsphinx's
    alignment as the reference (files it cannot align are left out); the LJ
    Speech reader's alone with ``trained_reader``, else all but it."""
    for text_path in sorted(SPEECH.glob("*.txt")):
        if text_path.with_suffix(".TextGrid").exists() or (text_path.stem == TRAINED_READER) != trained_reader:
            continue
        audio = next(
            (p for p in text_path.parent.glob(text_path.stem + ".*") if p.suffix in {".wav", ".flac", ".mp3"}), None
        )
        if audio is None:
            continue
        text = text_path.read_text(encoding="utf-8").strip()
        try:
            words = pocketsphinx.align(_audio_16k(audio), text)
        except Exception:  # pocketsphinx cannot align it: not part of the set
            continue
        yield audio, text, [(w, a, b) for w, (a, b) in zip(text.split(), words)]


def hostile_items(items):
    """Each item three times, with silence or noise pasted in (see the module docstring)."""
    rng = np.random.default_rng(0)
    rate = 16000
    for audio_path, text, ref in items:
        audio = _audio_16k(audio_path)
        middle = len(ref) // 2
        cut = (ref[middle - 1][2] + ref[middle][1]) / 2 if middle else ref[0][1]
        at = int(cut * rate)
        shifted = [(w, a + (a >= cut), b + (b > cut)) for w, a, b in ref]
        for level in (1e-4, 3e-3):
            fill = rng.normal(0, level, rate).astype(np.float32)
            yield audio_path, text, ref, np.concatenate([audio[:at], fill, audio[at:]]), shifted
        edge = rng.normal(0, 3e-4, 2 * rate).astype(np.float32)
        yield audio_path, text, ref, np.concatenate([edge, audio, edge]), [(w, a + 2, b + 2) for w, a, b in ref]


def heldout_speaker_items(root: Path, texts: Path, pocketsphinx: Pocketsphinx, cache: Path):
    """``(speaker, items)`` of the held-out real-train speakers, pocketsphinx's
    alignment as the reference (computed once, cached in ``cache``)."""
    from aligner.training.real_speech import find_clips, heldout_speakers, split_clips

    _, clips = split_clips(find_clips(root, texts), heldout_speakers(root))
    refs = json.loads(cache.read_text()) if cache.is_file() else {}
    changed = False
    groups: dict[str, list] = {}
    for clip in clips:
        key = f"{clip.speaker}/{clip.audio.stem}"
        if key not in refs:
            try:
                refs[key] = pocketsphinx.align(_audio_16k(clip.audio), clip.text)
            except Exception:  # pocketsphinx cannot align it: not part of the set
                refs[key] = None
            changed = True
        if refs[key] is not None:
            groups.setdefault(clip.speaker, []).append((clip.audio, clip.text, [("", a, b) for a, b in refs[key]]))
    if changed:
        cache.parent.mkdir(parents=True, exist_ok=True)
        cache.write_text(json.dumps(refs))
    return sorted(groups.items())


def evaluate_speakers(system, groups) -> dict:
    """:func:`evaluate` over all speakers, plus the mean and worst of the speakers' MAEs."""
    total, per_speaker = Result([]), {}
    for speaker, items in groups:
        r = evaluate(system, items)
        total.errors_ms += r.errors_ms
        total.audio_seconds += r.audio_seconds
        total.wall_seconds += r.wall_seconds
        total.failures += r.failures
        total.gross_files += r.gross_files
        if r.errors_ms:
            per_speaker[speaker] = float(np.mean(r.errors_ms))
    summary = total.summary()
    if per_speaker:
        worst = max(per_speaker, key=per_speaker.__getitem__)
        summary["speaker_mean_mae_ms"] = round(float(np.mean(list(per_speaker.values()))), 1)
        summary["worst_speaker"] = f"{worst}: {per_speaker[worst]:.1f}"
        summary["per_speaker_mae_ms"] = {s: round(v, 1) for s, v in sorted(per_speaker.items())}
    return summary


def synthetic_items(corpus: Path, limit: int | None):
    grids = sorted(corpus.rglob("*.TextGrid"))[:limit]
    for grid in grids:
        yield (
            grid.with_suffix(".wav"),
            grid.with_suffix(".txt").read_text(encoding="utf-8").strip(),
            reference_words(grid),
        )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument(
        "--model",
        action="append",
        default=None,
        help="model spec for our aligner (default: the package default); repeat to compare",
    )
    parser.add_argument(
        "--blank-penalty",
        type=float,
        action="append",
        default=None,
        help="override the models' blank penalty (repeat for a sweep)",
    )
    parser.add_argument(
        "--refine",
        action="store_true",
        help="run each of our systems also with boundary refinement on (aligner.refine; Aligner(refine=True))",
    )
    parser.add_argument(
        "--vtl-warps",
        default=None,
        help="comma-separated warps: run each of our systems also with them (Aligner(vtl_warps=...))",
    )
    parser.add_argument(
        "--vtln",
        action="store_true",
        help="run each of our systems also with a warp chosen per file (Aligner(vtln=True))",
    )
    parser.add_argument("--synthetic", type=Path, default=OUT / "heldout", help="held-out synthetic corpus")
    parser.add_argument("--synthetic-utterances", type=int, default=200)
    parser.add_argument("--seed", type=int, default=1234)
    parser.add_argument(
        "--sets",
        default="heldout-speakers,real,real-lj,real-ps,hostile,synthetic",
        help="comma-separated sets to run (heldout-speakers, real, real-lj, real-ps, hostile, synthetic)",
    )
    parser.add_argument(
        "--real-train", type=Path, default=ROOT.parent / "shared" / "data" / "real-train", help="real-train folder"
    )
    parser.add_argument(
        "--real-train-texts",
        type=Path,
        default=OUT / "real-train-texts",
        help="transcripts of its LibriSpeech clips (scripts/transcribe_real_speech.py)",
    )
    parser.add_argument("--json", type=Path, default=OUT / "accuracy.json")
    args = parser.parse_args()

    import torch

    torch.set_num_threads(1)  # pocketsphinx is single-threaded: compare like with like
    pocketsphinx = Pocketsphinx()
    warps = [(1.0,)] + ([tuple(float(w) for w in args.vtl_warps.split(","))] if args.vtl_warps else [])
    systems = [
        Ours(spec, penalty, refine, warp, vtln)
        for spec in (args.model or [None])
        for penalty in (args.blank_penalty or [None])
        for refine in ([False, True] if args.refine else [False])
        for warp in warps
        for vtln in ([False, True] if args.vtln else [False])
    ] + [pocketsphinx]
    report = {}
    sets = set(args.sets.split(","))
    if "heldout-speakers" in sets:
        if args.real_train.is_dir() and args.real_train_texts.is_dir():
            groups = heldout_speaker_items(
                args.real_train, args.real_train_texts, pocketsphinx, OUT / "heldout-speakers-pocketsphinx.json"
            )
            report["heldout-speakers"] = {s.name: evaluate_speakers(s, groups) for s in systems[:-1]}
            report["heldout-speakers"]["files"] = sum(len(items) for _, items in groups)
            report["heldout-speakers"]["speakers"] = len(groups)
        else:
            print(f"skipping heldout-speakers: {args.real_train} or {args.real_train_texts} not found", file=sys.stderr)
    if SPEECH.is_dir():
        real, ps = list(real_items()), list(pocketsphinx_items(pocketsphinx))
        lj = list(pocketsphinx_items(pocketsphinx, trained_reader=True))
        if "real" in sets:
            report["real"] = {s.name: evaluate(s, real).summary() for s in systems}
            report["real"]["files"] = len(real)
        if "real-lj" in sets and lj:
            report["real-lj"] = {s.name: evaluate(s, lj).summary() for s in systems[:-1]}
            report["real-lj"]["files"] = len(lj)
        if "real-ps" in sets:
            report["real-ps"] = {s.name: evaluate(s, ps).summary() for s in systems[:-1]}
            report["real-ps"]["files"] = len(ps)
        if "hostile" in sets:  # pocketsphinx's own alignment is the reference of the real-ps files
            items = list(hostile_items(real + lj + ps))
            report["hostile"] = {s.name: evaluate(s, items).summary() for s in systems[:-1]}
            report["hostile"]["files"] = len(items)
    else:
        print(f"skipping the real sets: {SPEECH} not found", file=sys.stderr)
    if "synthetic" in sets and not args.synthetic.is_dir():
        from aligner.training.synth.corpus import make_corpus

        print(
            f"generating {args.synthetic_utterances} held-out synthetic utterances into {args.synthetic}",
            file=sys.stderr,
        )
        make_corpus(args.synthetic, num_utterances=args.synthetic_utterances, seed=args.seed, split="heldout")
    if "synthetic" in sets:
        items = list(synthetic_items(args.synthetic, args.synthetic_utterances))
        report["synthetic"] = {s.name: evaluate(s, items).summary() for s in systems}
        report["synthetic"]["files"] = len(items)

    args.json.parent.mkdir(parents=True, exist_ok=True)
    args.json.write_text(json.dumps(report, indent=2))
    print(
        "| set | system | boundaries | MAE ms | median ms | within 20 ms | within 50 ms | x real time | failures "
        "| files > 0.5 s off |"
    )
    print("|---|---|---|---|---|---|---|---|---|---|")
    for set_name, rows in report.items():
        for system, s in rows.items():
            if system in ("files", "speakers"):
                continue
            print(
                f"| {set_name} ({rows['files']} files) | {system} | {s.get('boundaries')} | {s.get('mae_ms')} | "
                f"{s.get('median_ms')} | {s.get('within_20ms_pct')}% | {s.get('within_50ms_pct')}% | "
                f"{s.get('x_real_time')} | {s.get('failures')} | {s.get('files_over_500ms')} |"
            )
    for set_name, rows in report.items():
        for system, s in rows.items():
            if isinstance(s, dict) and "speaker_mean_mae_ms" in s:
                print(
                    f"{set_name}: {system}: {rows['speakers']} speakers, mean of speaker MAEs "
                    f"{s['speaker_mean_mae_ms']} ms, worst speaker {s['worst_speaker']} ms"
                )


if __name__ == "__main__":
    main()
