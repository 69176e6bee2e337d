"""Phone models end to end: the log-mel front end, saving and loading,
transcripts phonemized to ARPAbet, spans, outputs, partial mode, corpus
commands and the CLI, with a tiny random phone model.

Tests that phonemize need espeak-ng and skip without it.
"""

from __future__ import annotations

import json
import sys
from dataclasses import replace
from pathlib import Path

import numpy as np
import pytest
import soundfile
import torch
from click.testing import CliRunner

from aligner import Aligner, AlignerError, ModelError, TranscriptError, load_model, save_model
from aligner.cli import main
from aligner.corpus.align import align_corpus
from aligner.corpus.files import find_corpus_files, validate_corpus
from aligner.models.emissions import EmissionModel, num_frames
from aligner.models.frontend import LogMelFrontEnd, frame_geometry, frames_for_samples
from aligner.phones import PhonemizerError
from aligner.readers import read_textgrid
from aligner.testing import tiny_model, tiny_phone_model
from aligner.text import ENGLISH_LABELS, phonemize_transcript, transcript_for_model
from aligner.training.phone import LABELS
from aligner.training.synth.espeak import espeak_available
from aligner.writers import to_ctm, to_json, to_textgrid, write_alignment

needs_espeak = pytest.mark.skipif(
    not espeak_available(),
    reason="espeak-ng is not available (pip install espeakng-loader): phone models phonemize transcripts with it",
)

TEXT = "I paid $5 for 2 apples."


def _noise(seconds: float, rate: int = 16000, seed: int = 0) -> np.ndarray:
    rng = np.random.default_rng(seed)
    n = int(seconds * rate)
    envelope = (np.sin(np.linspace(0, 9 * np.pi, n)) > 0).astype(np.float32)
    return 0.2 * rng.standard_normal(n).astype(np.float32) * envelope


@pytest.fixture(scope="module")
def model():
    return tiny_phone_model()


@pytest.fixture(scope="module")
def model_dir(model, tmp_path_factory) -> Path:
    return save_model(model, tmp_path_factory.mktemp("models") / "phones")


@pytest.fixture(scope="module")
def aligner(model) -> Aligner:
    return Aligner(model, device="cpu")


@pytest.fixture(scope="module")
def alignment(aligner):
    return aligner.align((torch.from_numpy(_noise(3.0)), 16000), TEXT + " —")


# --------------------------------------------------------------------------- front end and model


def test_log_mel_frames_match_frames_for_samples():
    front = LogMelFrontEnd()
    assert (front.kernel, front.stride) == (560, 320)
    lengths = list(range(0, 1300, 7)) + [559, 560, 879, 880, 881, 1199, 1200, 16000, 16001, 48319, 48320]
    for n in lengths:
        expected = frames_for_samples([(560, 320)], n)
        features, frames = front(torch.zeros(1, max(n, 1)), torch.tensor([n]))
        assert int(frames[0]) == expected, n
        if n >= 560:
            assert features.shape[1] == expected, n


def test_dynamic_range_floor_hides_how_quiet_silence_is():
    """With a floor, digital silence and a -70 dB noise floor around the
    same speech-like sound give the same features; padding never changes them."""
    rng = np.random.default_rng(5)
    tone = 0.3 * np.sin(2 * np.pi * 220 * np.arange(8000) / 16000) * (1 + 0.5 * rng.standard_normal(8000))
    quiet = np.concatenate([np.zeros(8000), tone, np.zeros(8000)])
    hiss = quiet + 1e-4 * rng.standard_normal(quiet.size)
    floored, plain = LogMelFrontEnd(dynamic_range_db=45.0), LogMelFrontEnd()
    features = {
        name: front(torch.tensor(np.stack([quiet, hiss]), dtype=torch.float32))[0]
        for name, front in (("floored", floored), ("plain", plain))
    }
    assert (features["plain"][0] - features["plain"][1]).abs().max() > 0.3
    torch.testing.assert_close(features["floored"][0], features["floored"][1], rtol=0, atol=0.05)
    # a batch with a padded item equals the items alone (the peak is over valid frames only)
    short = torch.tensor(hiss[:13000], dtype=torch.float32)
    padded = torch.nn.functional.pad(short, (0, hiss.size - 13000))
    batch, frames = floored(
        torch.stack([padded, torch.tensor(hiss, dtype=torch.float32)]), torch.tensor([13000, hiss.size])
    )
    alone, alone_frames = floored(short[None], torch.tensor([13000]))
    assert int(frames[0]) == int(alone_frames[0])
    torch.testing.assert_close(batch[0, : int(frames[0])], alone[0], rtol=0, atol=1e-5)
    assert floored.config()["dynamic_range_db"] == 45.0 and "dynamic_range_db" not in plain.config()
    with pytest.raises(ValueError, match="dynamic_range_db must be a positive"):
        LogMelFrontEnd(dynamic_range_db=0)


def test_a_long_recording_is_floored_at_its_local_peak_a_short_one_at_its_own():
    """With floor_span_seconds, a soft passage 40 dB under a loud one keeps
    its features in a long recording (the loud passage no longer floors it
    away); a recording up to the span is floored exactly as without it, and
    in a batch every item is floored as alone."""
    rng = np.random.default_rng(6)

    def sound(seconds: float, level: float) -> np.ndarray:  # white noise, shaped by a slow syllable rhythm
        samples = int(seconds * 16000)
        rhythm = 1 + 0.9 * np.sin(2 * np.pi * 4 * np.arange(samples) / 16000)
        return level * rhythm * rng.standard_normal(samples)

    recording = torch.tensor(np.concatenate([sound(6.0, 0.3), sound(6.0, 0.003)]), dtype=torch.float32)[None]
    local = LogMelFrontEnd(dynamic_range_db=43.0, floor_span_seconds=5.0)
    whole = LogMelFrontEnd(dynamic_range_db=43.0)
    energies = whole.log_mel(whole.power_spectrum(recording))
    lengths = torch.tensor([recording.shape[1]])
    tail = slice(-300, None)  # the soft passage's last 3 s: more than half a span from the loud one
    floored_local = (local.floor(energies, lengths) > energies)[0, tail].float().mean()
    floored_whole = (whole.floor(energies, lengths) > energies)[0, tail].float().mean()
    # 40 dB down, the whole recording's peak floors much of the soft passage; its local peak hardly any
    assert floored_whole > 0.3 and floored_local < 0.02
    # up to the span (5 s): the same features as without it, alone and in a batch with a long item
    short = recording[:, -4 * 16000 :]
    torch.testing.assert_close(local(short)[0], whole(short)[0], rtol=0, atol=0)
    padded = torch.nn.functional.pad(short, (0, recording.shape[1] - short.shape[1]))
    batch, frames = local(torch.cat([padded, recording]), torch.tensor([short.shape[1], recording.shape[1]]))
    torch.testing.assert_close(batch[0, : int(frames[0])], whole(short)[0][0], rtol=0, atol=1e-5)
    torch.testing.assert_close(batch[1, : int(frames[1])], local(recording)[0][0], rtol=0, atol=1e-5)
    assert local.config()["floor_span_seconds"] == 5.0 and "floor_span_seconds" not in whole.config()
    with pytest.raises(ValueError, match="floor_span_seconds must be a positive"):
        LogMelFrontEnd(floor_span_seconds=5.0)  # a span without a floor
    with pytest.raises(ValueError, match="floor_span_seconds must be a positive"):
        LogMelFrontEnd(dynamic_range_db=43.0, floor_span_seconds=float("nan"))


def test_model_geometry(model):
    assert frame_geometry(model.model) == [(560, 320)]
    assert (model.frame_samples, model.receptive_field, model.frame_seconds) == (320, 560, 0.02)
    assert not model.group_norm
    for n in (0, 559, 560, 880, 16000, 32123):
        assert num_frames(model, n) == frames_for_samples([(560, 320)], n)


def test_batched_emissions_equal_single(model):
    rng = np.random.default_rng(1)
    waves = [
        torch.from_numpy(rng.standard_normal(n).astype(np.float32) * scale)
        for n, scale in ((16000, 0.1), (5321, 1.0), (23999, 0.01), (900, 0.5))
    ]
    emitter = EmissionModel(model, device="cpu", dtype="float32")
    batch = emitter(waves)
    for index, wave in enumerate(waves):
        alone = emitter([wave])
        frames = int(alone.lengths[0])
        assert int(batch.lengths[index]) == frames == num_frames(model, len(wave))
        torch.testing.assert_close(batch.log_probs[index, :frames], alone.log_probs[0], rtol=0, atol=1e-4)


def _log_probs(model, wave: torch.Tensor) -> torch.Tensor:
    return EmissionModel(model, device="cpu", dtype="float32")([wave]).log_probs


@pytest.mark.parametrize("half", [False, True])
def test_save_load_round_trip(model, tmp_path, half):
    folder = save_model(model, tmp_path / "m", half=half)
    loaded = load_model(folder)
    assert loaded.labels == LABELS and (loaded.blank, loaded.separator, loaded.star) == (0, None, None)
    assert loaded.phonetic and loaded.phonemizer == "espeak-arpabet" and loaded.end_extension == 0.0
    assert not loaded.normalize_waveform and isinstance(loaded.model.feature_extractor, LogMelFrontEnd)
    reference = model
    if half:  # the same network with its weights rounded to float16
        reference = tiny_phone_model()
        state = {k: v.half().float() if v.is_floating_point() else v for k, v in reference.model.state_dict().items()}
        reference.model.load_state_dict(state)
    wave = torch.from_numpy(_noise(1.3, seed=3))
    torch.testing.assert_close(_log_probs(loaded, wave), _log_probs(reference, wave), rtol=0, atol=0)


def test_end_extension_comes_from_the_model_unless_given(model):
    assert Aligner(model, device="cpu").end_extension_frames == 0
    assert Aligner(model, device="cpu", end_extension=0.1).end_extension_frames == 5
    assert Aligner(tiny_model(), device="cpu").end_extension == pytest.approx(0.1)
    assert Aligner(tiny_model(), device="cpu", end_extension=0.0).end_extension_frames == 0
    with_own = replace(tiny_model(), end_extension=0.04)
    assert Aligner(with_own, device="cpu").end_extension_frames == 2
    for bad in (-0.1, float("nan"), "1", True):
        with pytest.raises(AlignerError, match="end_extension"):
            Aligner(model, device="cpu", end_extension=bad)


def test_blank_penalty_from_the_model_config_and_overridable(model, tmp_path):
    penalized = replace(model, blank_penalty=2.5)
    folder = save_model(penalized, tmp_path / "p")
    assert json.loads((folder / "aligner_model.json").read_text())["blank_penalty"] == 2.5
    assert load_model(folder).blank_penalty == 2.5
    assert Aligner(folder, device="cpu").blank_penalty == 2.5
    assert Aligner(folder, device="cpu", blank_penalty=0).blank_penalty == 0
    for bad in (-1, float("inf"), "2", True):
        with pytest.raises(AlignerError, match="blank_penalty"):
            Aligner(model, device="cpu", blank_penalty=bad)
    config = json.loads((folder / "aligner_model.json").read_text())
    config["blank_penalty"] = -3
    (folder / "aligner_model.json").write_text(json.dumps(config))
    with pytest.raises(ModelError, match="blank_penalty"):
        load_model(folder)


def test_blank_penalty_moves_frames_from_silence_to_phones(model):
    """With a large penalty the Viterbi prefers phones over silence, so the
    words cover more of the recording; the emissions themselves are unchanged."""
    wave = (torch.from_numpy(_noise(3.0)), 16000)
    plain = Aligner(model, device="cpu", blank_penalty=0).align(wave, TEXT)
    pushed = Aligner(model, device="cpu", blank_penalty=30).align(wave, TEXT)

    def covered(result):
        return sum(w.end - w.start for w in result.words)

    assert covered(pushed) > covered(plain)
    assert covered(pushed) == pytest.approx(3.0, abs=0.1)  # 30 nats: no silence frame is worth it


def test_phone_model_needs_english(model):
    with pytest.raises(AlignerError, match="English transcripts only"):
        Aligner(model, device="cpu", language="fr")


def test_missing_espeak_is_a_clear_error(model, monkeypatch):
    import aligner.training.synth.espeak as espeak

    monkeypatch.setattr(espeak, "espeak_available", lambda: False)
    with pytest.raises(PhonemizerError, match="espeak-ng"):
        Aligner(model, device="cpu").prepare((torch.from_numpy(_noise(1.0)), 16000), "hello")


# --------------------------------------------------------------------------- text


def test_english_labels_live_in_text():
    import aligner.testing

    assert aligner.testing.ENGLISH_LABELS is ENGLISH_LABELS and len(ENGLISH_LABELS) == 29


@needs_espeak
def test_phonemize_transcript_spells_out_and_keeps_words():
    transcript = phonemize_transcript("I paid $5 for 2 apples. Don't 'stop' rock'n'roll", LABELS)
    words = {w.text: w.normalized for w in transcript.words}
    assert [w.text for w in transcript.words] == [
        "I",
        "paid",
        "$5",
        "for",
        "2",
        "apples.",
        "Don't",
        "'stop'",
        "rock'n'roll",
    ]
    assert words["I"] == "AY" and words["paid"] == "P EY D"
    assert words["$5"] == "F AY V D AA L ER Z"
    assert words["2"] == "T UW"
    assert words["Don't"] == "D OW N T"
    assert words["'stop'"] == "S T AA P"
    assert words["rock'n'roll"].startswith("R AA K")
    for word in transcript.words:
        assert word.tokens and all(LABELS[t] != "-" for t in word.tokens)
        assert word.normalized == " ".join(LABELS[t] for t in word.tokens)
    targets, word_index = transcript.targets(None)
    assert len(targets) == sum(len(w.tokens) for w in transcript.words) and -1 not in word_index


@needs_espeak
def test_transcript_for_model_picks_the_path(model):
    phones, caught = transcript_for_model("Hello, cat €", model, source="t.txt")
    assert [w.normalized for w in phones.words] == ["HH AH L OW", "K AE T", ""]
    assert phones.dropped == ("€",) and len(caught) == 1 and caught[0].startswith("t.txt: dropped characters")
    chars, _ = transcript_for_model("Hello, world", tiny_model())
    assert [w.normalized for w in chars.words] == ["HELLO", "WORLD"]


@needs_espeak
@pytest.mark.parametrize("text", ["... — !", "😀 €", "   "])
def test_nothing_pronounceable_is_a_transcript_error(aligner, text):
    with pytest.raises(TranscriptError, match="transcript"):
        aligner.prepare((torch.from_numpy(_noise(1.0)), 16000), text)


@needs_espeak
def test_transcript_too_long_counts_phones(aligner, model):
    short = torch.from_numpy(_noise(0.3))
    with pytest.raises(TranscriptError, match=r"too long for the audio: its \d+ tokens"):
        aligner.prepare((short, 16000), "extraordinarily complicated transcription")
    item = aligner.prepare((torch.from_numpy(_noise(1.0)), 16000), "cat")
    assert [model.labels[t] for t in item.targets] == ["K", "AE", "T"]


# --------------------------------------------------------------------------- alignment and outputs


@needs_espeak
def test_phones_tile_the_words(alignment):
    assert alignment.phonetic
    assert [w.text for w in alignment.words] == TEXT.split() + ["—"]
    *spoken, dash = alignment.words
    assert not dash.aligned and dash.chars == () and dash.normalized == ""
    assert spoken[2].normalized == "F AY V D AA L ER Z"
    for word in spoken:
        assert word.aligned and word.normalized == " ".join(c.label for c in word.chars)
        assert all(c.label in LABELS[1:] for c in word.chars)
        assert word.chars[0].start == word.start and word.chars[-1].end == pytest.approx(word.end)
        for a, b in zip(word.chars, word.chars[1:]):
            assert a.end == b.start
    for a, b in zip(spoken, spoken[1:]):
        assert a.end <= b.start + 1e-9


@needs_espeak
def test_outputs_carry_the_phones(alignment, tmp_path):
    grid = to_textgrid(alignment)
    assert [tier.name for tier in grid.tiers] == ["words", "phones", "unaligned"]
    data = to_json(alignment)
    word = data["words"][2]
    assert "chars" not in word and [p["label"] for p in word["phones"]] == word["normalized"].split()
    assert set(word["phones"][0]) == {"label", "start", "end", "score"}
    assert data["words"][-1]["phones"] == [] and data["words"][-1]["aligned"] is False
    ctm = to_ctm(alignment).splitlines()
    assert [line.split()[4] for line in ctm] == [w.text for w in alignment.words]

    path = write_alignment(alignment, tmp_path / "x.TextGrid")
    back = read_textgrid(path)
    assert back.phonetic
    assert [w.text for w in back.words] == [w.text for w in alignment.words]
    assert [c.label for c in back.chars] == [c.label for c in alignment.chars]
    assert [c.start for c in back.chars] == pytest.approx([c.start for c in alignment.chars], abs=1e-5)
    json_path = write_alignment(alignment, tmp_path / "x.json")
    assert json.loads(json_path.read_text())["words"] == data["words"]


def test_char_model_json_keeps_chars():
    alignment = Aligner(tiny_model(), device="cpu").align((torch.from_numpy(_noise(2.0)), 16000), "hello world")
    assert all("chars" in w and "phones" not in w for w in to_json(alignment)["words"])


@needs_espeak
@pytest.mark.parametrize("star_at", ["clauses", "words"])
def test_partial_mode(model, star_at):
    partial = Aligner(model, device="cpu", partial=True, star_at=star_at)
    wave = torch.from_numpy(_noise(4.0, seed=5))
    text = "Hello there. " + TEXT + " And an unspoken ending, maybe."
    result = partial.align((wave, 16000), text)
    assert [w.text for w in result.words] == text.split() and result.phonetic
    for word in result.words:
        if word.aligned:
            assert word.chars and word.normalized == " ".join(c.label for c in word.chars)
        else:
            assert word.chars == () and word.normalized  # still shows its phones
    no_detection = Aligner(model, device="cpu", partial=True, min_word_score=0.0)
    assert all(w.aligned for w in no_detection.align((wave, 16000), TEXT).words)
    strict = Aligner(model, device="cpu", partial=True, min_word_score=1.0)  # nothing is good enough
    unplaced = strict.align((wave, 16000), TEXT).words
    assert not any(w.aligned for w in unplaced) and unplaced[2].normalized == "F AY V D AA L ER Z"
    assert all(0 < w.score < 1 and w.chars == () for w in unplaced)


# --------------------------------------------------------------------------- corpus and CLI


def _corpus(root: Path) -> Path:
    texts = {"a": "the cat sat on the mat", "spk/b": "I paid $5 for 2 apples.", "c": "hello cat"}
    for index, (key, text) in enumerate(texts.items()):
        path = root / f"{key}.wav"
        path.parent.mkdir(parents=True, exist_ok=True)
        soundfile.write(path, _noise(1.5 + index, 22050, index), 22050)
        path.with_suffix(".txt").write_text(text + "\n")
    soundfile.write(root / "short.wav", _noise(0.2, 16000, 9), 16000)
    (root / "short.txt").write_text("this transcript is far too long for a fifth of a second\n")
    return root


def run(*args):
    return CliRunner().invoke(main, [str(a) for a in args])


@needs_espeak
def test_validate_and_align_corpus(model_dir, tmp_path):
    corpus = _corpus(tmp_path / "corpus")
    loaded = load_model(model_dir)
    problems = validate_corpus(find_corpus_files(corpus), loaded)
    assert [(p.key, p.stage) for p in problems] == [("short.wav", "length")]
    assert "transcript too long for the audio" in problems[0].message

    phones = Aligner(model_dir, device="cpu")
    out = tmp_path / "out"
    summary = align_corpus(corpus, out, phones, formats=("textgrid", "json", "ctm"), batch_seconds=8.0)
    assert (summary.aligned, summary.failed) == (3, 1)
    written = json.loads((out / "spk" / "b.json").read_text())
    alone = to_json(phones.align(corpus / "spk" / "b.wav", Path(corpus / "spk" / "b.txt")))
    assert [w["phones"] for w in written["words"]] == [
        [{**p, "score": pytest.approx(p["score"], rel=1e-4)} for p in w["phones"]] for w in alone["words"]
    ]
    assert read_textgrid(out / "a.TextGrid").phonetic


@needs_espeak
def test_cli_with_a_phone_model_folder(model_dir, tmp_path):
    corpus = _corpus(tmp_path / "corpus")
    out = tmp_path / "b.TextGrid"
    result = run("align", corpus / "spk" / "b.wav", "-o", out, "--model", model_dir)
    assert result.exit_code == 0, result.output
    back = read_textgrid(out)
    assert back.phonetic and [w.text for w in back.words] == TEXT.split()
    assert [c.label for c in back.words[2].chars] == ["F", "AY", "V", "D", "AA", "L", "ER", "Z"]

    result = run("align", corpus / "c.wav", "--model", model_dir, "--partial")
    assert result.exit_code == 0, result.output
    assert [w["normalized"] for w in json.loads(result.output)["words"]] == ["HH AH L OW", "K AE T"]

    result = run("validate", corpus, "--model", model_dir, "-q")
    assert result.exit_code == 3 and "short.wav\tlength" in result.output, result.output
    result = run("align-corpus", corpus, tmp_path / "out", "--model", model_dir, "-f", "json", "-q")
    assert result.exit_code == 3 and "aligned 3, failed 1" in result.output, result.output


@needs_espeak
def test_train_from_a_phone_model_keeps_its_phonemizer(model_dir, tmp_path):
    sys.path.insert(0, str(Path(__file__).parent))
    from test_train import FAST, make_corpus

    from aligner.training.ctc import train

    corpus = make_corpus(tmp_path / "corpus", ["CAB DOT", "BIRD NOTE", "RAT SHIN"])
    train(corpus, tmp_path / "tuned", init=model_dir, max_steps=1, seed=0, **FAST)
    tuned = load_model(tmp_path / "tuned")
    assert tuned.labels == LABELS and tuned.phonemizer == "espeak-arpabet" and tuned.phonetic
    assert tuned.end_extension is None  # CTC training makes it peaky: the aligner's default applies
    assert isinstance(tuned.model.feature_extractor, LogMelFrontEnd)
