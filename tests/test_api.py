"""The Python API: loading weights, restoring (tiled or not) and sampling the guide's posterior."""

import json
import math

import pytest
import torch

from generative.kernels import gaussian_kernel
from guides.guide import GuideConfig, VIRNetGuide
from tests.checkpoints import tiny_guide, write_tiny_checkpoint
from virnet import models
from virnet.api import load_for_task, load_model, restore, sample_posterior
from virnet.errors import VirnetError
from virnet.image_io import ImageData
from virnet.tiled_posterior import tile_side


def image(batch=1, channels=3, height=32, width=32, seed=0):
    return torch.rand(batch, channels, height, width, generator=torch.Generator().manual_seed(seed))


def record_rnet_inputs(guide):
    """Shapes of every input RNet receives, appended to the returned list."""
    shapes = []
    guide.rnet.register_forward_hook(lambda module, args, out: shapes.append(tuple(args[0].shape)))
    return shapes


@pytest.fixture
def embedded(tmp_path, monkeypatch):
    """An embedded-weights folder holding tiny "denoise" and "sr-x2" models."""
    folder = tmp_path / "weights"
    folder.mkdir()
    write_tiny_checkpoint(folder, "denoise")
    write_tiny_checkpoint(folder, "sr", 2)
    monkeypatch.setattr(models, "EMBEDDED_DIR", folder)
    return folder


# Loading


def test_load_model_rebuilds_the_saved_guide_exactly(tmp_path):
    path = write_tiny_checkpoint(tmp_path, "sr", 3)
    loaded = load_model(path)
    reference = tiny_guide("sr", 3)
    assert isinstance(loaded, VIRNetGuide)
    assert loaded.model_config == reference.model_config
    assert loaded.guide_config == reference.guide_config
    assert not loaded.training
    assert not any(p.requires_grad for p in loaded.parameters())
    for name, tensor in reference.state_dict().items():
        assert torch.equal(loaded.state_dict()[name], tensor)


def test_load_model_accepts_the_json_path_and_embedded_names(tmp_path, embedded):
    path = write_tiny_checkpoint(tmp_path, "denoise", name="mine")
    assert load_model(path.with_suffix(".json")).model_config.task == "denoise"
    assert models.embedded_models() == ["denoise", "sr-x2"]
    assert load_model("sr-x2").model_config.scale == 2


def test_a_missing_default_names_the_available_ones(embedded):
    with pytest.raises(VirnetError, match=r"no embedded model named 'sr-x4', available: denoise, sr-x2"):
        load_model("sr-x4")
    with pytest.raises(VirnetError, match="no embedded model named 'sr-x4'"):
        restore(image(height=8, width=8), task="sr")


def test_no_shipped_defaults_is_said_clearly(tmp_path, monkeypatch):
    monkeypatch.setattr(models, "EMBEDDED_DIR", tmp_path / "absent")
    with pytest.raises(VirnetError, match="no embedded model named 'denoise', available: none"):
        restore(image(height=8, width=8))


def test_weights_that_do_not_match_their_config_are_refused(tmp_path):
    path = write_tiny_checkpoint(tmp_path)
    metadata = json.loads(path.with_suffix(".json").read_text())
    metadata["guide_config"]["rnet_widths"] = [8, 16, 32]
    path.with_suffix(".json").write_text(json.dumps(metadata))
    with pytest.raises(VirnetError, match="do not match the configuration"):
        load_model(path)


@pytest.mark.parametrize(
    "edit, message",
    [
        (lambda md: md.update(format="something-else/9"), "format"),
        (lambda md: md["model_config"].update(task="deblur"), "invalid configuration"),
        (lambda md: md["guide_config"].update(unknown=1), "invalid configuration"),
        (lambda md: md.pop("model_config"), "invalid configuration"),
    ],
)
def test_bad_metadata_is_refused_with_one_line(tmp_path, edit, message):
    path = write_tiny_checkpoint(tmp_path)
    metadata = json.loads(path.with_suffix(".json").read_text())
    edit(metadata)
    path.with_suffix(".json").write_text(json.dumps(metadata))
    with pytest.raises(VirnetError, match=message) as error:
        load_model(path)
    assert "\n" not in str(error.value)


def test_pickled_and_corrupted_weights_are_refused_without_unpickling(tmp_path, monkeypatch):
    path = write_tiny_checkpoint(tmp_path)
    torch.save(tiny_guide().state_dict(), path)

    def no_unpickling(*args, **kwargs):
        raise AssertionError("the file was unpickled")

    monkeypatch.setattr("pickle.load", no_unpickling)
    monkeypatch.setattr("pickle.loads", no_unpickling)
    with pytest.raises(VirnetError, match="pickled"):
        load_model(path)
    path.write_bytes(b"\x10\x00\x00\x00\x00\x00\x00\x00{garbage")
    with pytest.raises(VirnetError, match="not a valid safetensors"):
        load_model(path)


def test_task_and_scale_must_match_the_model():
    denoiser, upscaler = tiny_guide("denoise"), tiny_guide("sr", 2)
    with pytest.raises(VirnetError, match="denoising model, it cannot do task 'sr'"):
        load_for_task(denoiser, "sr")
    with pytest.raises(VirnetError, match="cannot do scale 4"):
        load_for_task(upscaler, "sr", 4)
    with pytest.raises(VirnetError, match="unknown task 'deblur'"):
        load_for_task(denoiser, "deblur")
    with pytest.raises(VirnetError, match="unsupported scale 5"):
        load_for_task(upscaler, "sr", 5)
    with pytest.raises(VirnetError, match="denoising has no scale"):
        load_for_task(denoiser, "denoise", 2)
    assert load_for_task(upscaler) is upscaler


# Restoring


def test_denoising_returns_the_guides_posterior_mean_and_variance():
    guide = tiny_guide()
    y = image(batch=2)
    result = restore(y, guide, precision="fp32")  # "auto" is bf16 on CPUs with native bf16
    post = guide.posterior(y)
    alpha0 = guide.model_config.alpha0
    # restore runs the networks in channels_last, which sums in another order than NCHW.
    assert torch.allclose(result.image, post.mu, atol=1e-5)
    assert torch.allclose(result.sigma2_mode, post.beta, rtol=1e-4)
    assert torch.allclose(result.sigma2_mean, alpha0 * post.beta / (alpha0 - 2), rtol=1e-4)
    assert result.kernel is None and result.kernel_params is None
    assert len(result.checks) == 2
    assert not result.image.requires_grad


def test_super_resolution_returns_the_kernel_parameters_and_image():
    guide = tiny_guide("sr", 2)
    y = image(batch=2, height=16, width=24)
    result = restore(y, guide, precision="fp32")
    post = guide.posterior(y)
    assert result.image.shape == (2, 3, 32, 48)
    assert torch.allclose(result.image, post.mu, atol=1e-5)
    assert result.sigma2_mode.shape == (2, 1, 16, 24)
    assert torch.allclose(result.kernel_params, torch.cat([post.eta, post.m[:, None]], dim=1), atol=1e-5)
    assert torch.allclose(result.kernel, gaussian_kernel(post.eta, post.m, 21), atol=1e-5)
    assert torch.allclose(result.kernel.sum(dim=(-2, -1)), torch.ones(2))


def test_an_unbatched_image_and_image_data_give_a_batch_of_one():
    guide = tiny_guide()
    pixels = image()[0]
    from_tensor = restore(pixels, guide)
    from_data = restore(ImageData(pixels=pixels, alpha=None, bit_depth=8, is_float=False), guide)
    assert from_tensor.image.shape == (1, 3, 32, 32)
    assert torch.equal(from_tensor.image, from_data.image)


def test_a_grayscale_image_goes_through_the_rgb_network_and_comes_back_gray():
    guide = tiny_guide()
    gray = image(channels=1)
    result = restore(gray, guide)
    replicated = restore(gray.expand(-1, 3, -1, -1), guide)
    assert result.image.shape == (1, 1, 32, 32)
    assert torch.allclose(result.image, replicated.image.mean(dim=1, keepdim=True))
    assert torch.allclose(result.sigma2_mode, replicated.sigma2_mode)


@pytest.mark.parametrize(
    "bad, message",
    [
        (torch.rand(1, 2, 8, 8), "reads 3-channel images, got 2"),
        (torch.rand(8, 8), "C×H×W or B×C×H×W"),
        (torch.zeros(1, 3, 0, 8), "empty"),
        (torch.full((3, 8, 8), float("nan")), "NaN"),
        (torch.randint(0, 255, (3, 8, 8), dtype=torch.uint8), "floating-point"),
    ],
)
def test_bad_images_are_refused_with_one_line(bad, message):
    with pytest.raises(VirnetError, match=message):
        restore(bad, tiny_guide())


@pytest.mark.parametrize("task, scale", [("denoise", None), ("sr", 2), ("sr", 4)])
def test_an_image_smaller_than_the_network_needs_is_padded_not_refused(task, scale):
    guide = tiny_guide(task, scale or 4)
    result = restore(torch.rand(3, 5, 7), guide)
    s = guide.model_config.scale
    assert result.image.shape == (1, 3, 5 * s, 7 * s)
    assert torch.isfinite(result.image).all()
    assert math.isfinite(result.checks[0].std)


def test_tiled_denoising_matches_untiled_within_one_grey_level():
    guide = tiny_guide()
    y = image(height=64, width=64)
    whole = restore(y, guide)
    shapes = record_rnet_inputs(guide)
    tiled = restore(y, guide, tile=32, overlap=24)
    assert len(shapes) > 1 and max(max(shape[-2:]) for shape in shapes) <= 32
    assert (tiled.image - whole.image).abs().max() < 1 / 255
    assert torch.allclose(tiled.sigma2_mode, whole.sigma2_mode, rtol=1e-3)


def test_tiled_super_resolution_keeps_one_noise_and_kernel_estimate_per_image():
    guide = tiny_guide("sr", 2)
    y = image(batch=2, height=32, width=32)
    whole = restore(y, guide)
    shapes = record_rnet_inputs(guide)
    tiled = restore(y, guide, tile=24, overlap=32)
    assert len(shapes) == 4 and max(max(shape[-2:]) for shape in shapes) <= 48
    assert (tiled.image - whole.image).abs().max() < 1 / 255
    assert torch.equal(tiled.kernel_params, whole.kernel_params)
    assert torch.equal(tiled.sigma2_mode, whole.sigma2_mode)
    assert (tiled.sigma2_mode == tiled.sigma2_mode[..., :1, :1]).all()


def test_tile_side_follows_the_memory_budget_and_what_rnet_needs():
    guide = tiny_guide()  # RNet widths (8, 16): sides are multiples of 2
    assert tile_side(guide, 31) == 32
    assert tile_side(guide, memory_budget=2**30) > tile_side(guide, memory_budget=2**26)
    assert tile_side(guide, memory_budget=2**26) % 2 == 0
    wide = VIRNetGuide(tiny_guide().model_config, GuideConfig(snet_depth=2, rnet_widths=(8, 16, 32, 64), rnet_blocks=1))
    assert tile_side(wide, 30) == 32
    with pytest.raises(VirnetError, match="tile side"):
        tile_side(guide, 0)


# Sampling


def test_posterior_draws_follow_the_guides_laws():
    guide = tiny_guide()
    y = image(height=8, width=8)
    cfg = guide.model_config
    draws = sample_posterior(y, 400, guide, seed=0, precision="fp32")
    post = guide.posterior(y)
    assert draws.z.shape == (400, 1, 3, 8, 8)
    assert draws.sigma2.shape == (400, 1, 1, 8, 8)
    assert draws.lambda2 is None and draws.rho is None
    # q(z|·) = N(µ, ε0²) (Eq. 15); q(σ²|y) = IG(α0 − 1, α0 β) (Eq. 13), mean α0β/(α0 − 2).
    assert torch.allclose(draws.z_mean, post.mu, atol=4 * cfg.eps0_sq**0.5 / 20)
    assert draws.z_std.mean() == pytest.approx(cfg.eps0_sq**0.5, rel=0.05)
    assert torch.allclose(draws.sigma2_mean, post.sigma2_mean(cfg.alpha0), rtol=0.06)
    a = cfg.alpha0 - 1
    ig_std = post.sigma2_mean(cfg.alpha0) / math.sqrt(a - 2)
    assert draws.sigma2_std.mean() == pytest.approx(ig_std.mean().item(), rel=0.1)


def test_sampling_is_reproducible_with_a_seed_and_leaves_the_global_rng_alone():
    guide = tiny_guide()
    y = image(height=8, width=8)
    torch.manual_seed(123)
    expected_next = torch.rand(1)
    torch.manual_seed(123)
    first = sample_posterior(y, 3, guide, seed=7)
    assert torch.equal(torch.rand(1), expected_next)
    second = sample_posterior(y, 3, guide, seed=7)
    assert torch.equal(first.z, second.z) and torch.equal(first.sigma2, second.sigma2)
    assert not torch.equal(first.z, sample_posterior(y, 3, guide, seed=8).z)


def test_super_resolution_draws_include_the_kernel_and_gray_input_comes_back_gray():
    guide = tiny_guide("sr", 2)
    draws = sample_posterior(image(channels=1, height=8, width=8), 5, guide)
    assert draws.z.shape == (5, 1, 1, 16, 16)
    assert draws.sigma2.shape == (5, 1, 1, 8, 8)
    assert draws.lambda2.shape == (5, 1, 2) and (draws.lambda2 > 0).all()
    assert draws.rho.shape == (5, 1)


@pytest.mark.parametrize("n", [0, -1, 2.5])
def test_the_number_of_draws_must_be_positive(n):
    with pytest.raises(VirnetError, match="positive integer"):
        sample_posterior(image(height=8, width=8), n, tiny_guide())


@pytest.mark.gpu
def test_restoring_on_cuda_keeps_the_device():
    guide = tiny_guide().cuda()
    result = restore(image().cuda(), guide)
    assert result.image.device.type == "cuda"
    assert torch.allclose(result.image.cpu(), restore(image(), tiny_guide()).image, atol=1e-4)


@pytest.mark.gpu
def test_a_weights_file_loads_straight_onto_cuda_and_restores_there(tmp_path):
    path = write_tiny_checkpoint(tmp_path, "sr", 2)
    guide = load_model(path, "cuda")
    assert all(p.device.type == "cuda" for p in guide.parameters())
    y = image(height=40, width=40)
    on_gpu = restore(y.cuda(), guide, tile=16, precision="fp32")
    on_cpu = restore(y, load_model(path), tile=16)
    assert on_gpu.image.device.type == "cuda" and on_gpu.kernel.device.type == "cuda"
    assert torch.allclose(on_gpu.image.cpu(), on_cpu.image, atol=1e-4)


def test_loaded_models_keep_their_weights_in_channels_last(tmp_path):
    guide = load_model(write_tiny_checkpoint(tmp_path, "denoise"))
    weights = [p for p in guide.parameters() if p.ndim == 4]
    assert weights and all(p.is_contiguous(memory_format=torch.channels_last) for p in weights)
