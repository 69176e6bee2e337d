"""Checkpoint averaging (:mod:`aligner.training.average`) and the script
step that writes the packaged model's average."""

from __future__ import annotations

import subprocess
import sys
from dataclasses import replace
from pathlib import Path

import pytest
import torch

from aligner import load_model
from aligner.errors import ModelError
from aligner.models.loading import save_model
from aligner.testing import tiny_model, tiny_phone_model
from aligner.training.average import average_models

SCRIPT = Path(__file__).resolve().parents[1] / "scripts" / "train_phone_model.py"


def test_the_average_is_the_mean_of_every_weight_and_keeps_the_first_models_settings():
    models = [tiny_phone_model(seed=seed) for seed in (1, 2, 3)]
    models[0] = replace(models[0], blank_penalty=2.0, min_frames=2)
    states = [{key: value.clone() for key, value in model.model.state_dict().items()} for model in models]
    average = average_models(models, name="mean")
    for key, value in average.model.state_dict().items():
        expected = (states[0][key] + states[1][key] + states[2][key]) / 3
        assert torch.allclose(value, expected, atol=1e-6), key
    settings = (average.name, average.blank_penalty, average.min_frames, average.labels)
    assert settings == ("mean", 2.0, 2, models[0].labels)
    assert not average.model.training
    for model, state in zip(models, states):  # the sources are untouched
        assert all(torch.equal(value, state[key]) for key, value in model.model.state_dict().items())


def test_averaging_one_model_gives_its_weights_and_saved_folders_load(tmp_path):
    model = tiny_phone_model(seed=4)
    save_model(model, tmp_path / "one", half=True)
    average = average_models([tmp_path / "one"])
    loaded = load_model(tmp_path / "one")
    for key, value in average.model.state_dict().items():
        assert torch.equal(value, loaded.model.state_dict()[key])


def test_models_of_different_labels_or_shapes_are_refused():
    with pytest.raises(ModelError, match="architecture or labels differ"):
        average_models([tiny_phone_model(), tiny_model()])
    with pytest.raises(ModelError, match="at least one model"):
        average_models([])


def test_the_script_writes_the_average_as_float16(tmp_path):
    for seed in (5, 6):
        save_model(tiny_phone_model(seed=seed), tmp_path / f"ckpt-{seed}", half=True)
    out = tmp_path / "avg"
    done = subprocess.run(
        [sys.executable, str(SCRIPT), "average", str(tmp_path / "ckpt-5"), str(tmp_path / "ckpt-6"), "-o", str(out)],
        capture_output=True,
        text=True,
        check=True,
    )
    assert "average of 2 models" in done.stdout
    expected = average_models([tmp_path / "ckpt-5", tmp_path / "ckpt-6"])
    written = load_model(out)
    for key, value in written.model.state_dict().items():
        assert torch.equal(value, expected.model.state_dict()[key].half().float()), key
