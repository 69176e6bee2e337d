import math
from functools import partial

import numpy as np
import pytest
import torch
from torchaudio.models import hubert_pretrain_model

from aligner.errors import AlignerError
from aligner.models.emissions import num_frames
from aligner.models.features import LayerFeatures, conv_frames
from aligner.models.features import extract_layer_features as _extract
from aligner.models.features import hubert_prediction_accuracy as _accuracy
from aligner.testing import tiny_architecture, tiny_model

# on the CPU even where CUDA exists: the tests compare with direct calls of CPU networks
extract_layer_features = partial(_extract, device="cpu")
hubert_prediction_accuracy = partial(_accuracy, device="cpu")


def _waves(*sizes, seed=0):
    generator = torch.Generator().manual_seed(seed)
    return [0.1 * torch.randn(n, generator=generator) for n in sizes]


def _tiny_hubert(mode="layer_norm", num_classes=5, mask_length=5, seed=0):
    arch = tiny_architecture(0, mode)
    arch.pop("aux_num_out")
    with torch.random.fork_rng():
        torch.manual_seed(seed)
        return hubert_pretrain_model(
            **arch,
            mask_prob=0.5,
            mask_selection="static",
            mask_other=0.0,
            mask_length=mask_length,
            no_mask_overlap=False,
            mask_min_space=1,
            mask_channel_prob=0.0,
            mask_channel_selection="static",
            mask_channel_other=0.0,
            mask_channel_length=10,
            no_mask_channel_overlap=False,
            mask_channel_min_space=1,
            skip_masked=False,
            skip_nomask=False,
            num_classes=num_classes,
            final_dim=16,
            feature_grad_mult=None,
        )


@pytest.mark.parametrize("mode", ["layer_norm", "group_norm"])
@pytest.mark.parametrize("normalize", [False, True])
def test_batched_equals_each_item_alone_through_torchaudio(mode, normalize):
    model = tiny_model(extractor_mode=mode, normalize_waveform=normalize)
    waves = _waves(16000, 5000, 23456, 800)
    batch = extract_layer_features(model, waves, device="cpu")
    assert batch.layer_ids == (0, 1, 2)
    for index, wave in enumerate(waves):
        alone = extract_layer_features(model, [wave], device="cpu").features[0]
        assert batch.features[index].shape == alone.shape
        assert (batch.features[index] - alone).abs().max() <= 1e-4
        # and the transformer layers are what torchaudio's extract_features gives on the item alone
        x = torch.nn.functional.layer_norm(wave, wave.shape) if normalize else wave
        with torch.inference_mode():
            reference, _ = model.model.extract_features(x[None])
        for layer, expected in enumerate(reference, start=1):
            assert (batch.features[index][layer] - expected[0]).abs().max() <= 1e-4


def test_naive_padding_would_change_group_norm_features():
    """Why group_norm extractors run item by item: torchaudio's own padded
    extract_features gives a different short item."""
    model = tiny_model(extractor_mode="group_norm")
    waves = _waves(16000, 6000)
    padded = torch.nn.utils.rnn.pad_sequence(waves, batch_first=True)
    with torch.inference_mode():
        naive, lengths = model.model.extract_features(padded, torch.tensor([16000, 6000]))
    ours = extract_layer_features(model, waves)
    n = int(lengths[1])
    assert (naive[-1][1, :n] - ours.features[1][-1]).abs().max() > 1e-2


def test_frames_match_emission_stage_and_layer_zero_is_the_projection():
    model = tiny_model()
    waves = _waves(32000, 400, 12345)
    out = extract_layer_features(model, waves)
    assert out.lengths == [num_frames(model, w.numel()) for w in waves] == [99, 1, 38]
    assert out.frame_seconds == pytest.approx(0.02)
    assert out.dim == 32 and len(out) == 3
    with torch.inference_mode():
        conv, _ = model.model.feature_extractor(waves[0][None], None)
        projected = model.model.encoder.feature_projection(conv)[0]
    assert torch.allclose(out.features[0][0], projected, atol=1e-5)
    # concatenation of one layer over all items, in order
    stacked = out.layer(2)
    assert stacked.shape == (99 + 1 + 38, 32)
    assert np.allclose(stacked[99:100], out.features[1][2].numpy())
    with pytest.raises(AlignerError, match=r"layer 7 was not extracted"):
        out.layer(7)


def test_layer_count_and_selection():
    model = tiny_model()
    waves = _waves(8000)
    assert extract_layer_features(model, waves, num_layers=1).layer_ids == (0, 1)
    only = extract_layer_features(model, waves, num_layers=1, include_projection=False)
    assert only.layer_ids == (1,) and only.features[0].shape[0] == 1
    full = extract_layer_features(model, waves, include_projection=False)
    assert full.layer_ids == (1, 2)
    assert torch.equal(only.features[0][0], full.features[0][0])
    with pytest.raises(AlignerError, match=r"num_layers must be between 1 and 2, got 3"):
        extract_layer_features(model, waves, num_layers=3)


def test_bare_network_and_hubert_pretrain_model_are_accepted():
    model = tiny_model()
    waves = _waves(16000, 9000)
    wrapped = extract_layer_features(model, waves)
    bare = extract_layer_features(model.model, waves)
    for a, b in zip(wrapped.features, bare.features):
        assert torch.equal(a, b)

    hubert = _tiny_hubert("group_norm")
    hubert.train()
    out = extract_layer_features(hubert, waves)
    assert out.layer_ids == (0, 1, 2) and out.lengths == [49, 27]
    assert hubert.training  # the caller's mode is restored
    with torch.inference_mode():
        reference, _ = hubert.eval().wav2vec2.extract_features(waves[1][None])
    assert (out.features[1][2] - reference[1][0]).abs().max() <= 1e-4


def test_bad_inputs_raise_clear_errors():
    model = tiny_model()
    with pytest.raises(AlignerError, match=r"waveforms\[1\] must be a 1-D mono waveform, got shape \(2, 800\)"):
        extract_layer_features(model, [torch.zeros(800), torch.zeros(2, 800)])
    with pytest.raises(AlignerError, match=r"waveform 0 is too short: 300 samples, the model needs at least 400"):
        extract_layer_features(model, [torch.zeros(300)])
    with pytest.raises(AlignerError, match=r"must be an AlignmentModel, a torchaudio Wav2Vec2Model"):
        extract_layer_features(torch.nn.Linear(2, 2), _waves(800))
    with pytest.raises(AlignerError, match=r"no waveforms given"):
        extract_layer_features(model, [])
    with pytest.raises(AlignerError, match=r"must hold float samples"):
        extract_layer_features(model, [torch.zeros(800, dtype=torch.int16)])


def test_single_waveform_is_one_item():
    out = extract_layer_features(tiny_model(), _waves(3200)[0])
    assert isinstance(out, LayerFeatures) and len(out) == 1 and out.lengths == [9]


# ------------------------------------------------------------------ HuBERT prediction accuracy


def _frame_counts(hubert, waves):
    return [conv_frames(hubert.wav2vec2, w.numel()) for w in waves]


def test_hubert_accuracy_counts_every_valid_frame_once():
    hubert = _tiny_hubert()
    waves = _waves(32000, 16000, 24000)
    counts = _frame_counts(hubert, waves)
    generator = torch.Generator().manual_seed(1)
    labels = [torch.randint(0, 5, (n,), generator=generator) for n in counts]
    masked = hubert_prediction_accuracy(hubert, waves, labels, mask=True, seed=3)
    assert masked["masked_frames"] > 0 and masked["unmasked_frames"] > 0
    assert masked["masked_frames"] + masked["unmasked_frames"] == sum(counts)
    assert 0.0 <= masked["masked"] <= 1.0 and 0.0 <= masked["unmasked"] <= 1.0
    assert hubert_prediction_accuracy(hubert, waves, labels, mask=True, seed=3) == masked  # seeded masks

    plain = hubert_prediction_accuracy(hubert, waves, labels, mask=False)
    assert math.isnan(plain["masked"]) and plain["masked_frames"] == 0
    assert plain["unmasked_frames"] == sum(counts)
    # random labels over 5 classes: about chance (1/5) for a model that knows nothing
    assert abs(plain["unmasked"] - 1 / 5) < 0.12


@pytest.mark.parametrize("mode", ["layer_norm", "group_norm"])
def test_hubert_accuracy_column_zero_is_the_positive(mode):
    """Each frame is predicted as exactly one class: labelling every frame
    with class c scores the share of frames predicted as c, so the scores
    over all classes add up to 1 -- which holds only if column 0 of the
    logits is the frame's own label."""
    hubert = _tiny_hubert(mode, num_classes=4)
    waves = _waves(16000, 11000)
    counts = _frame_counts(hubert, waves)
    shares = [
        hubert_prediction_accuracy(hubert, waves, [torch.full((n,), c) for n in counts], mask=False)["unmasked"]
        for c in range(4)
    ]
    assert sum(shares) == pytest.approx(1.0)
    assert max(shares) < 1.0  # the random model does not predict one class everywhere


def test_hubert_accuracy_batching_is_exact():
    hubert = _tiny_hubert("layer_norm")
    waves = _waves(16000, 5000, 21000)
    counts = _frame_counts(hubert, waves)
    generator = torch.Generator().manual_seed(2)
    labels = [torch.randint(0, 5, (n,), generator=generator).numpy() for n in counts]
    batched = hubert_prediction_accuracy(hubert, waves, labels, mask=False, batch_size=8)
    alone = hubert_prediction_accuracy(hubert, waves, labels, mask=False, batch_size=1)
    assert math.isnan(batched["masked"]) and math.isnan(alone["masked"])
    assert batched["unmasked"] == alone["unmasked"] and batched["unmasked_frames"] == sum(counts)


def test_hubert_accuracy_rejects_mismatched_labels():
    hubert = _tiny_hubert()
    waves = _waves(16000, 8000)
    counts = _frame_counts(hubert, waves)
    assert counts == [49, 24]
    with pytest.raises(AlignerError, match=r"frame_labels\[1\] has 25 labels but waveform 1 gives 24 frames"):
        hubert_prediction_accuracy(
            hubert, waves, [torch.zeros(49, dtype=torch.long), torch.zeros(25, dtype=torch.long)]
        )
    with pytest.raises(AlignerError, match=r"got 2 waveforms but 1 frame label sequences"):
        hubert_prediction_accuracy(hubert, waves, [torch.zeros(49, dtype=torch.long)])
    with pytest.raises(AlignerError, match=r"frame_labels\[0\] holds ids outside \[0, 5\)"):
        hubert_prediction_accuracy(hubert, waves, [torch.full((49,), 5), torch.zeros(24, dtype=torch.long)])
    with pytest.raises(AlignerError, match=r"frame_labels\[0\] must hold integer cluster ids"):
        hubert_prediction_accuracy(hubert, waves, [torch.zeros(49), torch.zeros(24)])
    with pytest.raises(AlignerError, match=r"must be a torchaudio HuBERTPretrainModel, not AlignmentModel"):
        hubert_prediction_accuracy(tiny_model(), waves, [torch.zeros(49), torch.zeros(24)])
