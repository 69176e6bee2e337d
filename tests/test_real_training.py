"""Real recordings as training data (:mod:`aligner.training.real_speech`): the
speaker split, the transcripts found, trusted frame labels from an alignment,
the file format, and the trainer leaving untrusted frames out of the loss."""

from __future__ import annotations

import shutil
from pathlib import Path

import numpy as np
import pytest
import torch

from aligner.records import Alignment, CharSpan, WordSpan
from aligner.training.phone import IGNORE, LABELS, LabeledUtterance, _tensors
from aligner.training.real_speech import (
    RealClip,
    _trusted_labels,
    find_clips,
    heldout_speakers,
    label_clips,
    load_utterances,
    save_utterances,
    speaker_sexes,
    split_clips,
)

ROOT = Path(__file__).resolve().parents[1]
ID = {label: i for i, label in enumerate(LABELS)}


def _fake_real_train(tmp_path: Path) -> Path:
    """A real-train layout: 2 LJ clips, 8 train-clean-100 speakers (4 F, 4 M), 2 test-other speakers."""
    root = tmp_path / "real-train"
    lj = root / "ljspeech" / "lj"
    lj.mkdir(parents=True)
    for name in ("LJ001-0001", "LJ001-0002"):
        (lj / f"{name}.flac").write_bytes(b"")
        (lj / f"{name}.txt").write_text(f"text of {name}\n")
    (lj / "LJ001-0003.flac").write_bytes(b"")  # no transcript: not a clip
    libri = root / "librispeech-untranscribed"
    rows = {"train-clean-100": [], "test-other": []}
    for k in range(8):
        rows["train-clean-100"].append((str(100 + k), "F" if k % 2 else "M"))
    rows["test-other"] = [("900", "F"), ("901", "M")]
    for subset, speakers in rows.items():
        lines = ["; header", "; ID | SEX | SUBSET | MINUTES | NAME"]
        lines += [f"{s:<4} | {sex} | {subset:<16} | 25.00 | Reader {s}" for s, sex in speakers]
        lines.append("999  | F | train-clean-100  | 25.00 | Absent Reader")  # not in the folder
        (libri).mkdir(parents=True, exist_ok=True)
        (libri / f"SPEAKERS-{subset}.TXT").write_text("\n".join(lines) + "\n")
        for s, _ in speakers:
            (libri / s).mkdir()
            (libri / s / f"{s}-1-0000.flac").write_bytes(b"")
    return root


def test_heldout_speakers_are_test_other_and_balanced_by_sex(tmp_path):
    root = _fake_real_train(tmp_path)
    sexes = speaker_sexes(root)
    assert "999" not in sexes and sexes["900"] == ("F", "test-other") and sexes["101"] == ("F", "train-clean-100")
    held = heldout_speakers(root, per_sex=2)
    assert {"900", "901"} <= held and len(held) == 6
    chosen = held - {"900", "901"}
    assert sorted(sexes[s][0] for s in chosen) == ["F", "F", "M", "M"]
    assert heldout_speakers(root, per_sex=2) == held  # deterministic


def test_find_clips_reads_lj_and_kept_libri_transcripts(tmp_path):
    root = _fake_real_train(tmp_path)
    texts = tmp_path / "texts"
    (texts / "100").mkdir(parents=True)
    (texts / "100" / "100-1-0000.txt").write_text("Hello there.\n")
    (texts / "900").mkdir()
    (texts / "900" / "900-1-0000.txt").write_text("Held out.\n")
    (texts / "555").mkdir()
    (texts / "555" / "555-1-0000.txt").write_text("No audio for this one.\n")
    clips = find_clips(root, texts)
    assert [(c.audio.name, c.speaker, c.corpus, c.text) for c in clips] == [
        ("LJ001-0001.flac", "LJ", "ljspeech", "text of LJ001-0001"),
        ("LJ001-0002.flac", "LJ", "ljspeech", "text of LJ001-0002"),
        ("100-1-0000.flac", "100", "librispeech", "Hello there."),
        ("900-1-0000.flac", "900", "librispeech", "Held out."),
    ]
    train, held = split_clips(clips, heldout_speakers(root, per_sex=2))
    assert [c.speaker for c in held][-1] == "900" and all(c.speaker != "900" for c in train)
    assert len(find_clips(root, None)) == 2


def _alignment() -> Alignment:
    # two words: "a" = AH [0.10, 0.20); "bee" = B [0.20, 0.26) + IY [0.26, 0.40); audio 0.5 s
    a = WordSpan("a", "AH", 0.10, 0.20, 0.9, (CharSpan("AH", 0.10, 0.20, 0.9),))
    bee = WordSpan("bee", "B IY", 0.20, 0.40, 0.2, (CharSpan("B", 0.20, 0.26, 0.3), CharSpan("IY", 0.26, 0.40, 0.1)))
    return Alignment((a, bee), duration=0.5, phonetic=True)


def test_trusted_labels_follow_the_alignment_and_leave_out_boundaries_and_weak_words():
    samples = 8000  # 0.5 s: frames_for_samples gives 24 frames
    labels = _trusted_labels(samples, _alignment(), margin=0, min_word_score=0.0)
    expected = [0] * 5 + [ID["AH"]] * 5 + [ID["B"]] * 3 + [ID["IY"]] * 7 + [0] * 4
    assert labels.tolist() == expected
    margin = _trusted_labels(samples, _alignment(), margin=1, min_word_score=0.0)
    for edge in (5, 10, 13, 20):  # the first frame of each phone and the last frame before it
        assert margin[edge - 1] == IGNORE and margin[edge] == IGNORE
    assert margin[7] == ID["AH"] and margin[16] == ID["IY"] and margin[0] == 0
    inner = _trusted_labels(samples, _alignment(), margin=1, min_word_score=0.0, edge_margin=0)
    assert inner[4] == 0 and inner[5] == ID["AH"] and inner[19] == ID["IY"] and inner[20] == 0  # speech/silence kept
    assert inner[9] == inner[10] == inner[12] == inner[13] == IGNORE  # between two phones: left out
    weak = _trusted_labels(samples, _alignment(), margin=0, min_word_score=0.5)
    assert (weak[10:20] == IGNORE).all() and weak[5:10].tolist() == [ID["AH"]] * 5


def test_untrusted_frames_are_left_out_of_the_loss():
    item = LabeledUtterance(
        np.zeros(8000, np.int16), np.array([0, IGNORE, 5, IGNORE], np.uint8), ((0.0, 0.1),), (("AH", 0.0, 0.1),), "x"
    )
    _, _, labels = _tensors([item], torch.device("cpu"))
    assert labels.tolist() == [[0, -100, 5, -100]]


def test_save_and_load_utterances_round_trip(tmp_path):
    items = [
        LabeledUtterance(
            np.arange(n, dtype=np.int16),
            np.arange(n // 320, dtype=np.uint8),
            ((0.1, 0.2),),
            (("AH", 0.1, 0.2),),
            f"text {n}",
            "real",
        )
        for n in (1600, 3200)
    ]
    path = tmp_path / "real.npz"
    save_utterances(path, items)
    back = load_utterances(path)
    assert len(back) == 2 and not list(tmp_path.glob("*.tmp*"))
    for a, b in zip(items, back):
        assert np.array_equal(a.audio, b.audio) and np.array_equal(a.labels, b.labels)
        assert (a.words, a.phones, a.text, a.source) == (b.words, b.phones, b.text, b.source)


@pytest.mark.slow
def test_label_clips_labels_a_recording_with_the_packaged_model(tmp_path):
    audio = tmp_path / "example.wav"
    shutil.copy(ROOT / "examples" / "example.wav", audio)
    text = (ROOT / "examples" / "example.txt").read_text()
    clips = [RealClip(audio, text, "S1", "librispeech"), RealClip(audio, "", "S1", "librispeech")]
    kept, dropped = label_clips(None, clips, margin=0)
    assert len(kept) == 1 and len(dropped) == 1 and dropped[0][0].text == ""
    item = kept[0]
    assert item.source == "real" and item.text == text
    speech = item.labels[item.labels != IGNORE]
    assert (speech > 0).mean() > 0.5  # mostly phones: the example is read speech
    for label, start, end in item.phones:  # every aligned phone labels the frames it covers
        frames = range(round(start / 0.02), round(end / 0.02))
        assert all(item.labels[t] == ID[label] for t in frames)
