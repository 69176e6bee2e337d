"""Vocal-tract-length normalization chosen by likelihood (:mod:`aligner.vtln`,
``Aligner(vtln=True)``, ``--vtln``)."""

from __future__ import annotations

import json
import math
from dataclasses import replace
from pathlib import Path

import numpy as np
import pytest
import torch
from click.testing import CliRunner

from aligner import Aligner
from aligner.cli import main
from aligner.corpus.align import align_corpus
from aligner.errors import AlignerError
from aligner.testing import tiny_model
from aligner.vtln import FIRST_ROUND, MAX_VTLN_WARP, MIN_VTLN_SECONDS, MIN_VTLN_WARP, search_warps

espeak = pytest.importorskip("aligner.training.synth.espeak")
if not espeak.espeak_available():  # pragma: no cover
    pytest.skip("espeak-ng is not installed", allow_module_level=True)

TEXTS = (
    "The quick brown fox jumps over the lazy dog, and then it runs away into the forest.",
    "She sells sea shells by the sea shore every summer morning.",
    "Nobody knew where the old man had hidden the golden key.",
    "We will meet again at the station tomorrow before noon.",
    "Reading books in the quiet library helps me think clearly.",
)


@pytest.fixture(scope="module")
def packaged() -> Aligner:
    return Aligner(device="cpu")


@pytest.fixture(scope="module")
def sentences() -> list:
    return [espeak.synthesize(text, "en-us") for text in TEXTS]


def _scaled(synthesis, alpha: float) -> tuple[torch.Tensor, int]:
    """The synthesis with every frequency multiplied by ``alpha`` (its
    samples read at ``alpha`` times their rate): a known warp of its spectrum."""
    return torch.from_numpy(synthesis.samples.astype(np.float32) / 32768), round(synthesis.sample_rate * alpha)


def _speaker_warp(aligner: Aligner, sentences, alpha: float) -> float:
    items = [aligner.prepare(_scaled(s, alpha), text) for s, text in zip(sentences, TEXTS)]
    seconds = [item.waveform.shape[-1] / aligner.model.sample_rate for item in items]

    def score(rows, warps):
        return aligner.path_log_likelihoods([items[row] for row in rows], warps)[0]

    (choice,) = search_warps(score, seconds, [list(range(len(items)))])
    assert choice.searched and choice.log_likelihood >= choice.identity
    return choice.warp


def test_the_search_finds_the_peak_of_a_known_score():
    calls = []

    def score(rows, warps):  # a smooth score peaking at warp 1.12, summed over 50 frames per row
        calls.append(list(warps))
        return [(-50.0 * (math.log(w) - math.log(1.12)) ** 2, 50) for w in warps]

    choices = search_warps(score, [3.0, 3.0, 1.0], [[0, 1], [2]])
    assert choices[0].warp == pytest.approx(1.12) and choices[0].searched
    assert [w for w, _ in choices[0].tried][: len(FIRST_ROUND)] == list(FIRST_ROUND)
    assert all(MIN_VTLN_WARP <= w <= MAX_VTLN_WARP for w, _ in choices[0].tried)
    # the group with too little audio is never scored, keeps warp 1 and says why
    assert choices[1].warp == 1.0 and not choices[1].searched and math.isnan(choices[1].log_likelihood)
    assert "too little" in choices[1].describe() and f"{MIN_VTLN_SECONDS:g} s" in choices[1].note
    assert len(calls) == len(FIRST_ROUND) + 2 and all(len(c) == 2 for c in calls)  # rows 0 and 1 only


def test_the_likeliest_warp_undoes_a_known_warp_of_the_audio(packaged, sentences):
    """The same speaker's spectrum scaled by 0.8 and by 0.9: the warp chosen
    for the lower formants is larger, and each roughly undoes its scale
    (warp x scale is about the same speaker both times; the packaged model,
    trained with warp augmentation and on real speakers, has a flat
    likelihood over warps, so "roughly" is 0.15)."""
    lower, higher = _speaker_warp(packaged, sentences, 0.8), _speaker_warp(packaged, sentences, 0.9)
    assert lower > higher  # formants 10 % lower: a larger warp
    assert lower * 0.8 == pytest.approx(higher * 0.9, abs=0.15)


def test_aligner_vtln_aligns_with_the_chosen_warp(packaged, sentences):
    aligner = packaged.with_vtln(True)
    item = aligner.prepare(_scaled(sentences[0], 0.85), TEXTS[0])
    searched = aligner.align_prepared([item])[0]
    assert searched.warp is not None and searched.warp != 1.0 and searched.warnings == ()
    # the emissions kept from the search are those of the chosen warp: as aligning with it given
    given = aligner.align_prepared([replace(item, warp=searched.warp)])[0]
    assert given.words == searched.words and given.warp == searched.warp
    # and a batch aligns each item as alone
    other = aligner.prepare(_scaled(sentences[1], 1.1), TEXTS[1])
    batch = aligner.align_prepared([item, other])
    assert batch[0].words == searched.words and batch[1].warp == aligner.align_prepared([other])[0].warp
    # the warped alignment differs from the plain one: the warp reaches the network
    assert packaged.align_prepared([item])[0].words != searched.words and packaged.vtln is False


def test_too_little_audio_keeps_warp_one_and_says_so(packaged):
    aligner = packaged.with_vtln(True)
    short = espeak.synthesize("Hello there.", "en-us")
    item = aligner.prepare(_scaled(short, 1.0), "Hello there.")
    assert item.waveform.shape[-1] / 16000 < MIN_VTLN_SECONDS
    result = aligner.align_prepared([item])[0]
    assert result.warp == 1.0 and any("too little" in w and w.startswith("vtln: ") for w in result.warnings)
    assert [w.text for w in result.words] == [w.text for w in packaged.align_prepared([item])[0].words]


def test_vtln_needs_a_log_mel_front_end_and_a_bool():
    with pytest.raises(AlignerError, match="log-mel front end"):
        Aligner(tiny_model(), device="cpu", vtln=True)
    with pytest.raises(AlignerError, match="vtln must be True or False"):
        Aligner(tiny_model(), device="cpu", vtln="yes")  # type: ignore[arg-type]


def _write(path: Path, synthesis, alpha: float, text: str) -> None:
    import soundfile

    audio, rate = _scaled(synthesis, alpha)
    path.parent.mkdir(parents=True, exist_ok=True)
    soundfile.write(path, audio.numpy(), rate)
    path.with_suffix(".txt").write_text(text, encoding="utf-8")


def test_align_corpus_vtln_chooses_one_warp_per_speaker(packaged, sentences, tmp_path):
    corpus = tmp_path / "corpus"
    for k, (synthesis, text) in enumerate(zip(sentences, TEXTS)):
        _write(corpus / "low" / f"low-{k}.wav", synthesis, 0.85, text)
        _write(corpus / "high" / f"high-{k}.wav", synthesis, 1.1, text)
    short = espeak.synthesize("Hello there.", "en-us")
    _write(corpus / "tiny" / "tiny-0.wav", short, 1.0, "Hello there.")
    out = tmp_path / "out"
    summary = align_corpus(corpus, out, packaged.with_vtln(True), formats=("json",))
    assert summary.aligned == 11 and summary.warps is not None
    choices = summary.warps.choices
    assert set(choices) == {"high", "low", "tiny"} and choices["low"].warp > choices["high"].warp
    assert not choices["tiny"].searched and choices["tiny"].warp == 1.0
    line = summary.warps.describe()
    assert "vtln: 3 speaker(s)" in line and "1 not warped, too little audio to search (tiny)" in line
    assert "vtln:" in summary.describe()
    for speaker in ("low", "high", "tiny"):
        for output in (out / speaker).glob("*.json"):
            written = json.loads(output.read_text())
            assert written["warp"] == choices[speaker].warp
            assert any("too little" in w for w in written["warnings"]) == (speaker == "tiny")
    # a file of a speaker is aligned as `Aligner` aligns it with the speaker's warp
    item = packaged.prepare(str(corpus / "low" / "low-3.wav"), corpus / "low" / "low-3.txt")
    expected = packaged.align_prepared([replace(item, warp=choices["low"].warp)])[0]
    written = json.loads((out / "low" / "low-3.json").read_text())
    assert [round(w["start"], 3) for w in written["words"]] == [round(w.start, 3) for w in expected.words]
    # a resumed run chooses each speaker's warp from the same excerpt: the files left get the same warp
    (out / "low" / "low-3.json").unlink()
    again = align_corpus(corpus, out, packaged.with_vtln(True), formats=("json",))
    assert (again.aligned, again.skipped) == (1, 10) and again.warps is not None
    resumed = json.loads((out / "low" / "low-3.json").read_text())
    assert resumed["warp"] == written["warp"]
    assert [(w["start"], w["end"]) for w in resumed["words"]] == [(w["start"], w["end"]) for w in written["words"]]


def test_cli_vtln(sentences, tmp_path, tiny_model_dir):
    wav = tmp_path / "one.wav"
    _write(wav, sentences[0], 0.9, TEXTS[0])
    result = CliRunner().invoke(main, ["align", str(wav), "-o", str(tmp_path / "one.json"), "--vtln"])
    assert result.exit_code == 0, result.output
    warp = json.loads((tmp_path / "one.json").read_text())["warp"]
    assert f"vtln: warp {warp:.3f}" in result.output
    result = CliRunner().invoke(main, ["align", str(wav), "--vtln", "--model", str(tiny_model_dir)])
    assert result.exit_code == 2 and "log-mel front end" in result.output
    assert len(result.output.strip().splitlines()) == 1
