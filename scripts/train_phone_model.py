#!/usr/bin/env python3
"""Train the packaged phone model (see MODEL.md for the exact commands).

Two steps, so that the synthesis can run where the text sources are not
installed (a GPU machine):

    # 1. decide the utterances (needs Debian's fortunes and wamerican)
    python scripts/train_phone_model.py plan specs/ --train 40000 --dev 200 --seed 11
    # 2. synthesize while training (needs espeak-ng: pip install espeakng-loader)
    python scripts/train_phone_model.py train specs/ runs/phone --budget 300 --jobs 14 --device cuda

The training run writes ``log.jsonl`` and model folders ``ckpt-40``,
``ckpt-70``, ``final`` (float16 weights) into its output folder. A third
step averages checkpoints of one run into one model (float16 weights):

    python scripts/train_phone_model.py average runs/phone/ckpt-40 runs/phone/ckpt-70 runs/phone/final -o averaged/

Real speech (embedded re-estimation, see MODEL.md): the current model labels
the real recordings of the training speakers, and ``train --real`` mixes them
in; label again with the new model for another round:

    python scripts/train_phone_model.py label-real REAL_TRAIN_DIR real.npz --texts TRANSCRIPTS --model MODEL
    python scripts/train_phone_model.py train specs/ runs/real1 --init MODEL --real real.npz --real-copies 3 ...
"""

from __future__ import annotations

import argparse
import gzip
import json
import sys
import threading
import time
from dataclasses import asdict
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))


def _specs_of(plans):
    from aligner.training.phone import SpeechSpec

    return [
        SpeechSpec(
            text=p.texts[0],
            voice=p.voice,
            rate=p.rate,
            pitch=p.pitch,
            pitch_range=p.pitch_range,
            word_gap=p.word_gap,
            lead=p.lead,
            trail=p.trail,
        )
        for p in plans
    ]


def _spoken(text: str) -> str:
    """The text as the project's normalizer spells it out, in plain lowercase
    words (what flite and MBROLA are given)."""
    from aligner.text import ENGLISH_LABELS, normalize_transcript

    words = normalize_transcript(text, ENGLISH_LABELS).words
    return " ".join(part.lower() for w in words for part in w.normalized.split("|") if part)


def _mbrola_specs(specs, seed: int):
    """MBROLA (us1, us2, us3) versions of espeak specs: spelled-out text, random voice, tempo and pitch."""
    import numpy as np

    from aligner.training.phone import MbrolaSpec

    rng = np.random.default_rng(seed)
    out = []
    for spec in specs:
        spoken = _spoken(spec.text)
        if spoken:
            out.append(
                MbrolaSpec(
                    text=spoken,
                    voice=str(rng.choice(["us1", "us2", "us3"])),
                    time_ratio=float(rng.uniform(0.8, 1.3)),
                    pitch_ratio=float(rng.uniform(0.8, 1.25)),
                    lead=spec.lead,
                    trail=spec.trail,
                )
            )
    return out


def _flite_specs(specs, seed: int):
    """flite versions of espeak specs: the text spelled out by the project's
    normalizer (flite gets plain lowercase words), random voice and prosody."""
    import numpy as np

    from aligner.training.phone import FliteSpec

    rng = np.random.default_rng(seed)
    out = []
    for spec in specs:
        spoken = _spoken(spec.text)
        if not spoken:
            continue
        voice = "awb" if rng.random() < 0.5 else "rms"
        f0 = (float(rng.uniform(85, 210)), float(rng.uniform(8, 35))) if voice == "awb" else (None, None)
        out.append(
            FliteSpec(
                text=spoken,
                voice=voice,
                duration_stretch=float(rng.uniform(0.8, 1.35)),
                f0_mean=f0[0],
                f0_stddev=f0[1],
                lead=spec.lead,
                trail=spec.trail,
            )
        )
    return out


def plan(args: argparse.Namespace) -> None:
    from aligner.training.synth.corpus import plan_corpus

    out = Path(args.folder)
    out.mkdir(parents=True, exist_ok=True)
    for split, count, seed in (("train", args.train, args.seed), ("heldout", args.dev, args.seed + 1)):
        specs = _specs_of(plan_corpus(count, seed, split=split, augment=False))
        with gzip.open(out / f"{split}.json.gz", "wt", encoding="utf-8") as f:
            json.dump([asdict(s) for s in specs], f)
        print(f"{split}: {len(specs)} utterances")
        if split == "train" and args.flite:
            flite = _flite_specs(specs[: args.flite], args.seed + 7)
            with gzip.open(out / "flite.json.gz", "wt", encoding="utf-8") as f:
                json.dump([asdict(s) for s in flite], f)
            print(f"flite: {len(flite)} utterances")
        if split == "train" and args.mbrola:
            # the sentences after flite's, so that the three synthesizers say different things
            mbrola = _mbrola_specs(specs[args.flite : args.flite + args.mbrola], args.seed + 13)
            with gzip.open(out / "mbrola.json.gz", "wt", encoding="utf-8") as f:
                json.dump([asdict(s) for s in mbrola], f)
            print(f"mbrola: {len(mbrola)} utterances")


def _load(path: Path, kind=None):
    from aligner.training.phone import SpeechSpec

    kind = kind or SpeechSpec
    with gzip.open(path, "rt", encoding="utf-8") as f:
        return [kind(**d) for d in json.load(f)]


def train(args: argparse.Namespace) -> None:
    import torch

    from aligner.models.alignment_model import AlignmentModel
    from aligner.models.frontend import build_network
    from aligner.models.loading import save_model
    from aligner.training.phone import (
        LABELS,
        GrowingDataset,
        phone_architecture,
        render_labeled,
        render_many,
        render_pool,
        train_phone_model,
    )

    specs = Path(args.specs)
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    torch.set_num_threads(args.threads)
    log_path = out / "log.jsonl"

    def log(record):
        line = json.dumps(record)
        print(line, flush=True)
        with open(log_path, "a", encoding="utf-8") as f:
            f.write(line + "\n")

    t0 = time.monotonic()
    train_specs = _load(specs / "train.json.gz")[: args.limit or None]
    from aligner.training.phone import FliteSpec, MbrolaSpec

    extra = []
    if args.flite and (specs / "flite.json.gz").is_file():
        extra += _load(specs / "flite.json.gz", FliteSpec)[: args.flite]
    if args.mbrola and (specs / "mbrola.json.gz").is_file():
        mbrola = _load(specs / "mbrola.json.gz", MbrolaSpec)[: args.mbrola]
        step = max(1, len(extra) // max(len(mbrola), 1)) if extra else 1
        for k, spec in enumerate(mbrola):  # spread among the flite ones
            extra.insert(min(len(extra), k * (step + 1) + 1), spec)
    if extra:
        # interleaved, the other synthesizers first in each group: flite is the slowest
        mixed, ratio = [], max(1, len(train_specs) // len(extra))
        for k, spec in enumerate(extra):
            mixed.append(spec)
            mixed.extend(train_specs[k * ratio : (k + 1) * ratio])
        mixed.extend(train_specs[len(extra) * ratio :])
        train_specs = mixed
    dev_specs = _load(specs / "heldout.json.gz")[: args.dev]
    dev = [u for u in (render_labeled(s) for s in dev_specs) if u is not None]
    log({"event": "dev rendered", "utterances": len(dev), "seconds": round(time.monotonic() - t0, 1)})
    data = GrowingDataset()
    pool = render_pool(args.jobs) if args.jobs > 1 else None  # forked before CUDA starts

    def produce():
        try:
            copies = {"flite": args.flite_copies, "mbrola": args.mbrola_copies}
            render_many(train_specs, lambda u: data.add(u, copies=copies.get(u.source, 1)), pool)
        finally:
            data.done.set()
            log(
                {
                    "event": "synthesis done",
                    "utterances": len(data.items),
                    "hours": round(sum(len(u.audio) for u in data.items) / 16000 / 3600, 2),
                    "seconds": round(time.monotonic() - t0, 1),
                }
            )

    if args.real:
        from aligner.training.real_speech import load_utterances

        real = load_utterances(Path(args.real))
        for item in real:
            data.add(item, copies=args.real_copies)
        log(
            {
                "event": "real speech",
                "utterances": len(real),
                "hours": round(sum(len(u.audio) for u in real) / 16000 / 3600, 2),
            }
        )
    threading.Thread(target=produce, daemon=True).start()
    device = torch.device(args.device)
    architecture = phone_architecture(
        embed_dim=args.dim,
        num_layers=args.layers,
        ff_dim=4 * args.dim,
        num_heads=args.heads,
        dynamic_range_db=args.dynamic_range_db or None,
    )
    net, init_model = None, None
    if args.init:  # fine-tuning keeps the init model's front end and decoding settings
        from aligner.models.loading import load_model

        init_model = load_model(args.init)
        net = init_model.model

    def checkpoint(model, fraction):
        from dataclasses import replace

        from aligner.models.loading import architecture_of

        copy = build_network(architecture_of(model))  # dropouts 0, front end as trained
        copy.load_state_dict(model.state_dict())
        name = "final" if fraction >= 1.0 else f"ckpt-{round(fraction * 100)}"
        if init_model is not None:
            am = replace(init_model, model=copy.eval(), name=args.name)
        else:
            am = AlignmentModel(
                model=copy.eval(),
                labels=LABELS,
                sample_rate=16000,
                name=args.name,
                blank=0,
                separator=None,
                star=None,
                normalize_waveform=False,
                phonetic=True,
                phonemizer="espeak-arpabet",
                end_extension=0.0,
            )
        save_model(am, out / name, half=True)
        log({"event": "checkpoint", "name": name, "seconds": round(time.monotonic() - t0, 1)})

    dtype = None if args.dtype == "float32" else getattr(torch, args.dtype)
    train_phone_model(
        data,
        dev,
        budget_seconds=args.budget,
        device=device,
        architecture=architecture,
        batch_seconds=args.batch_seconds,
        lr=args.lr,
        warmup_steps=args.warmup,
        min_items=args.min_items,
        seed=args.seed,
        autocast_dtype=dtype,
        checkpoints=[float(x) for x in args.checkpoints.split(",") if x],
        on_checkpoint=checkpoint,
        log=log,
        eval_every=args.eval_every,
        net=net,
        max_steps=args.max_steps or None,
    )


def label_real(args: argparse.Namespace) -> None:
    import torch

    from aligner.training.real_speech import find_clips, heldout_speakers, label_clips, save_utterances, split_clips

    torch.set_num_threads(args.threads)
    root = Path(args.root)
    held = heldout_speakers(root)
    train_clips, held_clips = split_clips(find_clips(root, Path(args.texts) if args.texts else None), held)
    if args.limit:
        train_clips = train_clips[: args.limit]
    t0 = time.monotonic()
    items, dropped = label_clips(
        args.model, train_clips, margin=args.margin, edge_margin=args.edge_margin, min_word_score=args.min_word_score
    )
    out = Path(args.out)
    out.parent.mkdir(parents=True, exist_ok=True)
    save_utterances(out, items)
    with open(out.with_suffix(".dropped.tsv"), "w", encoding="utf-8") as f:
        for clip, reason in dropped:
            f.write(f"{clip.audio.name}\t{reason}\n")
    hours = sum(len(x.audio) for x in items) / 16000 / 3600
    ignored = sum(int((x.labels == 255).sum()) for x in items) / max(sum(len(x.labels) for x in items), 1)
    print(
        f"labelled {len(items)} of {len(train_clips)} training clips ({hours:.2f} h, {100 * ignored:.1f} % of frames "
        f"not trusted) in {time.monotonic() - t0:.0f} s; {len(dropped)} left out; {len(held)} held-out speakers "
        f"({len(held_clips)} clips) not used"
    )


def average(args: argparse.Namespace) -> None:
    from aligner.models.loading import save_model
    from aligner.training.average import average_models

    folder = save_model(average_models(args.models), args.out, half=True)
    print(f"wrote the average of {len(args.models)} models to {folder}")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    sub = parser.add_subparsers(dest="command", required=True)
    p = sub.add_parser("plan")
    p.add_argument("folder")
    p.add_argument("--train", type=int, default=40000)
    p.add_argument("--dev", type=int, default=200)
    p.add_argument("--seed", type=int, default=11)
    p.add_argument("--flite", type=int, default=0, help="also plan flite (awb, rms) versions of this many")
    p.add_argument(
        "--mbrola",
        type=int,
        default=0,
        help="also plan MBROLA (us1, us2, us3) versions of this many (the sentences after flite's)",
    )
    p.set_defaults(func=plan)
    t = sub.add_parser("train")
    t.add_argument("specs")
    t.add_argument("out")
    t.add_argument("--budget", type=float, default=300.0, help="training wall seconds")
    t.add_argument("--max-steps", type=int, default=0, help="stop after this many steps (0: the budget decides)")
    t.add_argument("--jobs", type=int, default=2)
    t.add_argument("--threads", type=int, default=2)
    t.add_argument("--device", default="cpu")
    t.add_argument("--dtype", default="bfloat16")
    t.add_argument("--limit", type=int, default=0)
    t.add_argument("--dev", type=int, default=100)
    t.add_argument("--dim", type=int, default=256)
    t.add_argument("--layers", type=int, default=6)
    t.add_argument("--heads", type=int, default=4)
    t.add_argument("--batch-seconds", type=float, default=400.0)
    t.add_argument("--lr", type=float, default=1.5e-3)
    t.add_argument("--warmup", type=int, default=400)
    t.add_argument("--min-items", type=int, default=500)
    t.add_argument("--seed", type=int, default=0)
    t.add_argument("--eval-every", type=float, default=30.0)
    t.add_argument("--checkpoints", default="0.4,0.7")
    t.add_argument("--name", default="TRELLIS_EN_PHONES")
    t.add_argument("--init", default=None)
    t.add_argument(
        "--dynamic-range-db", type=float, default=43.0, help="front-end floor of a model trained from scratch (0: none)"
    )
    t.add_argument("--flite", type=int, default=0, help="synthesize up to this many flite utterances")
    t.add_argument("--flite-copies", type=int, default=3, help="sampling weight of a flite utterance")
    t.add_argument("--mbrola", type=int, default=0, help="synthesize up to this many MBROLA utterances")
    t.add_argument("--mbrola-copies", type=int, default=2, help="sampling weight of an MBROLA utterance")
    t.add_argument("--real", default=None, help="labelled real speech (.npz of label-real) to train on as well")
    t.add_argument("--real-copies", type=int, default=3, help="sampling weight of a real utterance")
    t.set_defaults(func=train)
    r = sub.add_parser("label-real", help="label the training speakers' real recordings with a model")
    r.add_argument("root", help="the real-train folder (ljspeech/, librispeech-untranscribed/)")
    r.add_argument("out", help="output .npz")
    r.add_argument("--texts", default=None, help="transcripts of the LibriSpeech clips (transcribe_real_speech.py)")
    r.add_argument("--model", default=None, help="the labelling model (default: the packaged one)")
    r.add_argument("--margin", type=int, default=1, help="frames left out of the loss on each side of a boundary")
    r.add_argument(
        "--edge-margin", type=int, default=None, help="the same at a speech/silence boundary (default: --margin)"
    )
    r.add_argument("--min-word-score", type=float, default=0.0, help="words scored below: left out of the loss")
    r.add_argument("--threads", type=int, default=1)
    r.add_argument("--limit", type=int, default=0)
    r.set_defaults(func=label_real)
    a = sub.add_parser("average", help="average the weights of checkpoints of one run")
    a.add_argument("models", nargs="+")
    a.add_argument("-o", "--out", required=True)
    a.set_defaults(func=average)
    args = parser.parse_args()
    args.func(args)


if __name__ == "__main__":
    main()
