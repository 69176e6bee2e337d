"""Cost of the decoding parts beyond the plain Viterbi (duration decoder,
quiet prior, guard), against the plain CTC Viterbi on the same inputs (the cases of ``bench_viterbi.py``):

1. batch: 32 utterances of 10-20 s (T in [500, 1000], L in [150, 300],
   C = 32), words of 4 tokens;
2. long: one 10-minute utterance (T = 30000, L = 9000).

For each: ``forced_align`` (batched CTC Viterbi, the reference), the
duration-aware decoder (``duration_align``, min 2 frames per token,
silence only between words), and the audio-side work of the guard and the
quiet prior (``frame_levels`` + ``quiet_masks`` on audio of the same
length, ``suspect_reasons_batch`` on the words with the phone-duration check,
as ``Aligner.align_prepared`` runs them for the packaged model). Best of
a few repeats after a warm-up (numba compile time excluded).

    python benchmarks/bench_decoder.py [--repeats 3]
"""

from __future__ import annotations

import argparse
import time

import torch

from aligner.activity import frame_levels, quiet_masks, recording_speech_level
from aligner.duration_viterbi import duration_align
from aligner.guard import suspect_reasons_batch
from aligner.records import CharSpan, WordSpan
from aligner.viterbi import forced_align


def best(fn, repeats: int) -> float:
    fn()
    times = []
    for _ in range(repeats):
        start = time.perf_counter()
        fn()
        times.append(time.perf_counter() - start)
    return min(times)


def case(frames: torch.Tensor, tokens: torch.Tensor, repeats: int, seed: int = 0) -> dict:
    gen = torch.Generator().manual_seed(seed)
    batch = frames.numel()
    log_probs = torch.randn(batch, int(frames.max()), 32, generator=gen).log_softmax(-1)
    targets = torch.randint(1, 32, (batch, int(tokens.max())), generator=gen)
    words = [
        [targets[b, k : min(k + 4, int(tokens[b]))].tolist() for k in range(0, int(tokens[b]), 4)] for b in range(batch)
    ]
    audio = [torch.randn(int(n) * 320 + 240, generator=gen) * 0.1 for n in frames]
    spans = [
        [
            WordSpan("w", "w", 0.08 * k, 0.08 * k + 0.07, 0.5, (CharSpan("a", 0.08 * k, 0.08 * k + 0.07, 0.5),))
            for k in range(len(w))
        ]
        for w in words
    ]

    def guard():  # as Aligner.align_prepared does it for the packaged model (quiet_db 40 = the guard's)
        levels = [frame_levels(wave, 320, int(n)) for wave, n in zip(audio, frames)]
        speech = [recording_speech_level(level, 1500) for level in levels]  # once per recording, as the pipeline does
        quiet = quiet_masks(levels, speech, 40.0)  # the guard's; the quiet prior reuses them (same 40 dB)
        suspect_reasons_batch(spans, 0.02, quiet, phone_durations=True)

    return {
        "ctc": best(lambda: forced_align(log_probs, targets, frames, tokens), repeats),
        "duration": best(lambda: duration_align(log_probs, words, frames, min_frames=2), repeats),
        "guard": best(guard, repeats),
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--repeats", type=int, default=3)
    args = parser.parse_args()
    gen = torch.Generator().manual_seed(0)
    cases = {
        "batch of 32 x 10-20 s": (
            torch.randint(500, 1001, (32,), generator=gen),
            torch.randint(150, 301, (32,), generator=gen),
        ),
        "1 x 10 min": (torch.tensor([30000]), torch.tensor([9000])),
    }
    print("| case | CTC Viterbi | duration decoder | + levels, quiet prior mask, guard | decoder / CTC | all / CTC |")
    print("|---|---|---|---|---|---|")
    for name, (frames, tokens) in cases.items():
        r = case(frames, tokens, args.repeats)
        total = r["duration"] + r["guard"]
        print(
            f"| {name} | {r['ctc'] * 1e3:.0f} ms | {r['duration'] * 1e3:.0f} ms | {r['guard'] * 1e3:.0f} ms | "
            f"{r['duration'] / r['ctc']:.2f}x | {total / r['ctc']:.2f}x |",
            flush=True,
        )


if __name__ == "__main__":
    main()
