import pytest
import torch

from aligner.errors import AlignerError
from aligner.models.emissions import EmissionModel, num_frames, resolve_device, resolve_dtype
from aligner.testing import MMS_LABELS, tiny_model


def _waves(*sizes, seed=0):
    generator = torch.Generator().manual_seed(seed)
    return [0.1 * torch.randn(n, generator=generator) for n in sizes]


@pytest.mark.parametrize("mode", ["layer_norm", "group_norm"])
@pytest.mark.parametrize("normalize", [False, True])
def test_batched_equals_alone(mode, normalize):
    model = tiny_model(extractor_mode=mode, normalize_waveform=normalize)
    emitter = EmissionModel(model, device="cpu")
    waves = _waves(16000, 5000, 23456, 800)
    batch = emitter(waves)
    assert batch.lengths.tolist() == [num_frames(model, w.numel()) for w in waves]
    for i, wave in enumerate(waves):
        alone = emitter([wave])
        n = int(batch.lengths[i])
        assert alone.log_probs.shape[1] == n
        assert (alone.log_probs[0] - batch.log_probs[i, :n]).abs().max() <= 1e-3
        assert torch.all(batch.log_probs[i, n:] == 0)  # padding frames are zero


def test_naive_padding_would_break_group_norm():
    """Why group_norm models get per-item feature extraction: the plain
    padded forward pass changes a short item's output."""
    model = tiny_model(extractor_mode="group_norm")
    waves = _waves(16000, 6000)
    padded = torch.nn.utils.rnn.pad_sequence(waves, batch_first=True)
    naive, lengths = model.model(padded, torch.tensor([16000, 6000]))
    ours = EmissionModel(model)(waves)
    n = int(lengths[1])
    assert (naive[1, :n].log_softmax(-1) - ours.log_probs[1, :n]).abs().max() > 1e-2


def test_output_is_log_probabilities_with_model_frame_count():
    model = tiny_model()
    out = EmissionModel(model)(_waves(32000))
    assert out.log_probs.shape == (1, 99, len(model.labels))
    assert out.frame_seconds == pytest.approx(0.02)
    assert torch.allclose(out.log_probs[0].exp().sum(-1), torch.ones(99), atol=1e-5)


def test_star_column_appended_like_torchaudio_mms_fa():
    model = tiny_model(MMS_LABELS, star="*", append_star=True)
    # the network itself has no star output: rebuild it with one class fewer
    smaller = tiny_model(MMS_LABELS[:-1])
    model = type(model)(smaller.model, MMS_LABELS, 16000, star="*", append_star=True, separator=None)
    out = EmissionModel(model)(_waves(16000))
    assert out.log_probs.shape[-1] == len(MMS_LABELS)
    assert torch.all(out.log_probs[0, :, -1] == 0)


def _local_model(mode):
    """Attention switched off: every frame then depends on a bounded
    neighbourhood, so chunked inference must equal one-shot inference."""
    model = tiny_model(extractor_mode=mode)
    for layer in model.model.encoder.transformer.layers:
        torch.nn.init.zeros_(layer.attention.out_proj.weight)
        torch.nn.init.zeros_(layer.attention.out_proj.bias)
    return model


def test_chunked_equals_one_shot_away_from_edges():
    model = _local_model("layer_norm")
    wave = _waves(16000 * 7 + 123)[0]
    one_shot = EmissionModel(model, chunk_seconds=100)([wave])
    chunked = EmissionModel(model, chunk_seconds=1.0, context_seconds=0.3)([wave])
    assert chunked.lengths.tolist() == one_shot.lengths.tolist()
    assert (chunked.log_probs - one_shot.log_probs).abs().max() <= 1e-4


def test_chunked_without_context_differs_at_window_edges():
    model = _local_model("layer_norm")
    wave = _waves(16000 * 4)[0]
    one_shot = EmissionModel(model, chunk_seconds=100)([wave])
    no_context = EmissionModel(model, chunk_seconds=1.0, context_seconds=0.0)([wave])
    assert (no_context.log_probs - one_shot.log_probs).abs().max() > 1e-3


def test_long_item_in_batch_with_short_ones():
    model = _local_model("layer_norm")
    waves = _waves(16000 * 5, 4000)
    emitter = EmissionModel(model, chunk_seconds=1.0, context_seconds=0.5)
    batch = emitter(waves)
    alone = EmissionModel(model, chunk_seconds=100)([waves[0]])
    assert (batch.log_probs[0] - alone.log_probs[0]).abs().max() <= 1e-4


def test_bad_arguments():
    with pytest.raises(AlignerError, match="too short"):
        EmissionModel(tiny_model())(_waves(100))
    with pytest.raises(AlignerError, match="unknown dtype 'int8'"):
        resolve_dtype("int8", torch.device("cpu"))
    if not torch.cuda.is_available():
        with pytest.raises(AlignerError, match="CUDA is not available"):
            resolve_device("cuda")
    with pytest.raises(AlignerError, match="invalid device"):
        resolve_device("toaster")
    assert resolve_dtype(None, torch.device("cpu")) == torch.float32


def test_bfloat16_on_cpu_is_close():
    model = tiny_model()
    wave = _waves(16000)
    exact = EmissionModel(model)(wave)
    low = EmissionModel(model, dtype="bf16")(wave)
    assert low.log_probs.dtype == torch.float32
    assert (exact.log_probs - low.log_probs).abs().max() < 0.5


# --------------------------------------------------------------------------- vocal-tract-length warps


def test_vtl_warps_average_the_warped_passes_and_one_warp_of_1_is_the_plain_pass():
    from aligner.models.frontend import warp_spectrum
    from aligner.models.loading import load_model

    model = load_model()  # the packaged model: a log-mel front end
    waves = _waves(16000, 9000, 40000, seed=3)
    plain = EmissionModel(model)(waves)
    assert torch.equal(EmissionModel(model, vtl_warps=(1.0,))(waves).log_probs, plain.log_probs)
    warped = EmissionModel(model, vtl_warps=(1.15,))(waves)
    assert warped.lengths.tolist() == plain.lengths.tolist()
    assert (warped.log_probs - plain.log_probs).abs().max() > 0.1  # the warp changes what the network sees

    # the front end's warp is warp_spectrum on its power spectrum
    front = model.model.feature_extractor
    x = waves[0][None]
    power = warp_spectrum(front.power_spectrum(x), torch.tensor([1.15]))
    expected, _ = front.stack_and_normalize(front.log_mel(power), torch.tensor([16000]))
    assert torch.allclose(front(x, torch.tensor([16000]), warp=1.15)[0], expected)

    both = EmissionModel(model, vtl_warps=(0.85, 1.0, 1.15))(waves)
    passes = [EmissionModel(model, vtl_warps=(w,))(waves).log_probs for w in (0.85, 1.0, 1.15)]
    for i, n in enumerate(both.lengths.tolist()):
        expected = torch.stack([p[i, :n] for p in passes]).mean(0).log_softmax(-1)
        assert torch.allclose(both.log_probs[i, :n], expected, atol=1e-5)
        assert torch.allclose(both.log_probs[i, :n].exp().sum(-1), torch.ones(n), atol=1e-4)
    # a long item goes through the windows with the same averaging
    long = EmissionModel(model, vtl_warps=(0.9, 1.1), chunk_seconds=0.5, context_seconds=0.2)(waves[2:])
    assert long.log_probs.shape[1] == int(plain.lengths[2])


@pytest.mark.parametrize(
    ("warps", "match"),
    [
        ((), "non-empty sequence of numbers"),
        ("1.0", "non-empty sequence of numbers"),
        ((0.3,), r"number in \[0.5, 2.0\], not 0.3"),
        ((1.0, True), r"number in \[0.5, 2.0\], not True"),
        ((float("nan"),), "not nan"),
    ],
)
def test_vtl_warps_are_checked(warps, match):
    from aligner.models.loading import load_model

    with pytest.raises(AlignerError, match=match):
        EmissionModel(load_model(), vtl_warps=warps)


def test_vtl_warps_need_a_log_mel_front_end():
    model = tiny_model()  # a raw-waveform conv front end
    assert EmissionModel(model, vtl_warps=(1.0,)).vtl_warps == (1.0,)
    with pytest.raises(AlignerError, match="need a model with a log-mel front end; .* reads the raw waveform"):
        EmissionModel(model, vtl_warps=(0.9, 1.1))
