"""Phone set mapping, closure attribution, frame labels and the frame-level
phone-model trainer (:mod:`aligner.phones`, :mod:`aligner.training.phone`)."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from aligner.models.frontend import LogMelFrontEnd, build_network, frames_for_samples, warp_spectrum
from aligner.phones import ARPABET, STOPS, arpabet, attach_closures, map_segments
from aligner.training.phone import (
    LABELS,
    GrowingDataset,
    LabeledUtterance,
    SpeechSpec,
    augment_batch,
    frame_accuracy,
    frame_labels,
    phone_architecture,
    render_labeled,
    train_phone_model,
)
from aligner.training.synth.espeak import espeak_available

needs_espeak = pytest.mark.skipif(
    not espeak_available(),
    reason="espeak-ng is not installed (pip install espeakng-loader or apt-get install libespeak-ng1)",
)


# ------------------------------------------------------------------ phones


@pytest.mark.parametrize(
    "phoneme, expected",
    [
        ("'aI", ("AY",)),
        (",eI", ("EY",)),
        ("t#", ("T",)),
        ("@L", ("L",)),
        ("N", ("NG",)),
        ("tS", ("CH",)),
        ("dZ", ("JH",)),
        ("T", ("TH",)),
        ("D", ("DH",)),
        ("'A@", ("AA", "R")),
        ("3:", ("ER",)),
        ("_:", ()),
        (";", ()),
        ("", ()),
    ],
)
def test_arpabet_mapping(phoneme, expected):
    assert arpabet(phoneme) == expected


def test_arpabet_non_rhotic_drops_r():
    assert arpabet("A@", rhotic=False) == ("AA",)
    assert arpabet("e@", rhotic=True) == ("EH", "R")


def test_every_mapped_phone_is_arpabet():
    from aligner.phones import _NON_RHOTIC, _RHOTIC, _SINGLE

    produced = set(_SINGLE.values()) | {p for t in (_RHOTIC, _NON_RHOTIC) for v in t.values() for p in v}
    assert produced <= set(ARPABET)
    assert len(ARPABET) == 39 and len(set(ARPABET)) == 39


def test_map_segments_splits_two_phone_vowels_and_absorbs_markers():
    out = map_segments([("k", 0, 10), ("'A@", 10, 30), (";", 30, 32), ("z", 32, 40)])
    assert out == [("K", 0, 10), ("AA", 10, 20), ("R", 20, 32), ("Z", 32, 40)]
    # a marker first goes to the phone after it
    assert map_segments([(";", 0, 5), ("s", 5, 10)]) == [("S", 0, 10)]


def test_rhotic_vowel_before_espeak_r_has_one_r():
    out = map_segments([("m", 0, 5), ("'e@", 5, 15), ("r", 15, 20), ("i", 20, 30)])
    assert [label for label, _, _ in out] == ["M", "EH", "R", "IY"]
    assert out[1] == ("EH", 5, 15)
    assert [label for label, _, _ in map_segments([("k", 0, 5), ("'A@", 5, 15)])] == ["K", "AA", "R"]


def test_attach_closures_gives_short_gaps_to_stops_only():
    words = [[("AH", 0, 100)], [("K", 130, 150), ("AE", 150, 200)], [("S", 260, 300)], [("T", 1000, 1020)]]
    out = attach_closures(words, limit=50)
    assert out[1][0] == ("K", 100, 150)  # closure after speech belongs to the stop
    assert out[2][0] == ("S", 260, 300)  # not a stop: the gap stays silence
    assert out[3][0] == ("T", 1000, 1020)  # after a long pause: starts at the burst
    assert words[1][0] == ("K", 130, 150)  # input untouched
    assert {"P", "T", "K", "B", "D", "G", "CH", "JH"} == set(STOPS)


# ------------------------------------------------------------------ labels


def test_frame_labels_use_each_frame_middle():
    index = {label: i for i, label in enumerate(LABELS)}
    samples = 560 + 320 * 9  # 10 frames
    labels = frame_labels(samples, [("AA", 320, 960), ("B", 960, 1000)])
    assert len(labels) == frames_for_samples([(560, 320)], samples) == 10
    assert labels[0] == 0  # middle sample 160: silence
    assert list(labels[1:3]) == [index["AA"]] * 2  # middles 480, 800
    assert labels[3] == 0  # middle 1120: after B ended
    assert (frame_labels(samples, []) == 0).all()


@needs_espeak
def test_render_labeled_labels_match_word_times():
    item = render_labeled(SpeechSpec("the cat sat on a mat", "en-us", lead=0.3, trail=0.2))
    assert item is not None and item.source == "espeak"
    assert len(item.words) == 6
    frames = np.arange(len(item.labels)) * 0.02 + 0.01
    speech = item.labels > 0
    # every frame inside a word is a phone, frames before the first word are silence
    first_start = item.words[0][0]
    assert not speech[frames < first_start - 0.01].any()
    assert item.words[0][0] >= 0.3
    for label, start, end in item.phones:
        assert label in ARPABET and end > start
    inside = [(frames >= a + 0.02) & (frames < b - 0.02) for a, b in item.words]
    assert speech[np.any(inside, axis=0)].all()
    # "cat" after "the": its closure is part of it, so it starts where "the" ends
    assert item.words[1][0] == pytest.approx(item.words[0][1], abs=1e-3)


# ------------------------------------------------------------------ augmentation


def test_warp_spectrum_identity_and_shift():
    power = torch.rand(2, 5, 257)
    assert torch.allclose(warp_spectrum(power, torch.ones(2)), power)
    peak = torch.zeros(1, 1, 257)
    peak[..., 100] = 1.0
    warped = warp_spectrum(peak, torch.tensor([1.2]))
    assert int(warped.argmax()) == 120


def test_augment_batch_keeps_padding_silent_and_is_seeded():
    waves = torch.randn(3, 16000)
    lengths = torch.tensor([16000, 12000, 8000])
    g1, g2 = torch.Generator().manual_seed(3), torch.Generator().manual_seed(3)
    a, b = augment_batch(waves, lengths, g1), augment_batch(waves, lengths, g2)
    assert torch.equal(a, b)
    assert (a[1, 12000:] == 0).all() and (a[2, 8000:] == 0).all()
    assert torch.isfinite(a).all()
    assert not torch.equal(waves, a)


# ------------------------------------------------------------------ training


def _toy_items(count: int, rng: np.random.Generator) -> list[LabeledUtterance]:
    """Tones: phone 'AA' is a 300 Hz tone, 'S' a 3 kHz tone, silence is quiet."""
    items = []
    for _ in range(count):
        segments, audio, t = [], [], 0
        for _ in range(4):
            kind = rng.choice(["AA", "S", "-"])
            n = int(rng.integers(3, 8)) * 1600
            x = np.arange(n) / 16000
            sound = {
                "AA": 0.5 * np.sin(2 * np.pi * 300 * x),
                "S": 0.3 * np.sin(2 * np.pi * 3000 * x),
                "-": 0.001 * rng.standard_normal(n),
            }[kind]
            if kind != "-":
                segments.append((kind, t, t + n))
            audio.append(sound)
            t += n
        audio = np.concatenate(audio)
        items.append(
            LabeledUtterance(
                (audio * 32767).astype(np.int16), frame_labels(len(audio), segments), (), tuple(segments), "toy"
            )
        )
    return items


def test_training_learns_a_toy_task_and_checkpoints():
    rng = np.random.default_rng(0)
    data = GrowingDataset()
    for item in _toy_items(40, rng):
        data.add(item)
    data.done.set()
    dev = _toy_items(8, rng)
    architecture = phone_architecture(embed_dim=32, num_layers=1, num_heads=2, ff_dim=64, num_bins=20)
    net = build_network(architecture)
    before = frame_accuracy(net, dev, torch.device("cpu"))
    seen = []
    logs = []
    trained = train_phone_model(
        data,
        dev,
        budget_seconds=600,
        max_steps=60,
        device=torch.device("cpu"),
        net=net,
        batch_seconds=10,
        lr=3e-3,
        warmup_steps=5,
        min_items=1,
        autocast_dtype=None,
        strength=0.0,
        checkpoints=[0.5],
        on_checkpoint=lambda m, f: seen.append(f),
        log=logs.append,
        eval_every=5,
    )
    after = frame_accuracy(trained, dev, torch.device("cpu"))
    assert seen == [0.5, 1.0]
    assert logs[-1]["final"] is True
    assert after > before + 0.2 and after > 0.7
    assert isinstance(trained.feature_extractor, LogMelFrontEnd)
