"""Posterior predictive draws: the guide's draws replayed into the model, y sampled from Eq. 7."""

import math

import pytest
import torch

from generative.kernels import gaussian_kernel
from generative.operators import degrade
from tests.checkpoints import tiny_guide
from virnet.api import posterior_predictive, restore
from virnet.errors import VirnetError
from virnet.predictive import CHECK_SIDE, predictive_draws, replicated_residuals


def image(batch=1, channels=3, height=32, width=32, seed=0):
    return torch.rand(batch, channels, height, width, generator=torch.Generator().manual_seed(seed))


@pytest.mark.parametrize("task, scale", [("denoise", 1), ("sr", 2), ("sr", 4)])
def test_replicates_are_the_degraded_draw_of_z_plus_noise_of_the_drawn_variance(task, scale):
    """y_rep = [(z ∗ k)↓s] + σ·N(0, 1) for the joint draw (z, σ², Λ) returned with it."""
    guide = tiny_guide(task, scale)
    cfg = guide.model_config
    y = image(batch=2, height=32 // scale * 2, width=32 // scale * 2)
    with torch.no_grad():
        post = guide.posterior(y)
    draws = predictive_draws(guide, post, y, 6)
    assert draws["y"].shape == (6, *y.shape) and draws["z"].shape == (6, *post.mu.shape)
    assert draws["sigma2"].shape == (6, *post.beta.shape)
    standardized = []
    for i in range(6):
        kernel = gaussian_kernel(draws["lambda2"][i], draws["rho"][i], cfg.kernel_size) if cfg.has_kernel else None
        hz = degrade(draws["z"][i], kernel, cfg.scale, cfg.downsampler)
        standardized.append((draws["y"][i] - hz) / draws["sigma2"][i].sqrt())
    noise = torch.stack(standardized)
    assert noise.mean().abs() < 4 / math.sqrt(noise.numel())
    assert noise.std().item() == pytest.approx(1.0, abs=0.03)
    # The guide's laws: σ²/β ~ IG(α0 − 1, α0) has mean α0/(α0 − 2); z scatters by ε0 around µ.
    ratio = (draws["sigma2"] / post.beta).mean().item()
    assert ratio == pytest.approx(cfg.alpha0 / (cfg.alpha0 - 2), rel=0.03)
    assert (draws["z"] - post.mu).std().item() == pytest.approx(cfg.eps0_sq**0.5, rel=0.05)
    if cfg.has_kernel:
        assert draws["lambda2"].shape == (6, 2, 2) and draws["rho"].shape == (6, 2)


def test_the_check_reference_is_the_predictive_spread_of_the_standardized_residuals():
    """Var[(y_rep − µ)/√β] = (ε0² + E σ²)/β = ε0²/β + α0/(α0 − 2) for denoising."""
    guide = tiny_guide()
    cfg = guide.model_config
    y = image(height=64, width=64)
    with torch.no_grad():
        post = guide.posterior(y)
    replicated = replicated_residuals(guide, post, y, n=4)
    assert replicated.shape == (4, *y.shape)
    expected = (cfg.eps0_sq / post.beta + cfg.alpha0 / (cfg.alpha0 - 2)).mean().sqrt().item()
    assert replicated.std().item() == pytest.approx(expected, rel=0.02)


def test_the_check_replicates_a_centre_crop_of_large_images_and_skips_too_small_sr():
    guide = tiny_guide()
    y = image(height=CHECK_SIDE + 40, width=CHECK_SIDE // 2)
    with torch.no_grad():
        post = guide.posterior(y)
    assert replicated_residuals(guide, post, y, n=1).shape == (1, 1, 3, CHECK_SIDE, CHECK_SIDE // 2)
    upscaler = tiny_guide("sr", 4)  # the crop counts restored pixels: CHECK_SIDE / 4 observed ones
    y = image(height=CHECK_SIDE // 2, width=CHECK_SIDE // 8)
    with torch.no_grad():
        post = upscaler.posterior(y)
    assert replicated_residuals(upscaler, post, y, n=1).shape == (1, 1, 3, CHECK_SIDE // 4, CHECK_SIDE // 8)
    sr = tiny_guide("sr", 2)
    small = image(height=5, width=7)
    with torch.no_grad():
        assert replicated_residuals(sr, sr.posterior(small), small) is None


def test_restore_checks_against_the_models_predictive_and_stays_deterministic():
    guide = tiny_guide()
    y = image(height=48, width=48)
    torch.manual_seed(5)
    expected_next = torch.rand(1)
    torch.manual_seed(5)
    first = restore(y, guide)
    assert torch.equal(torch.rand(1), expected_next), "the check's replicates use a private RNG"
    check = first.checks[0]
    cfg = guide.model_config
    predicted = (cfg.eps0_sq / first.sigma2_mode + cfg.alpha0 / (cfg.alpha0 - 2)).mean().sqrt().item()
    assert check.expected_std == pytest.approx(predicted, rel=0.03)
    assert 0 < check.expected_outliers < 0.05
    assert f"(model: {check.expected_std:.3f})" in check.summary()
    assert restore(y, guide).checks == first.checks


def test_posterior_predictive_api_draws_replicates_reproducibly():
    guide = tiny_guide("sr", 2)
    y = image(height=12, width=12)
    first = posterior_predictive(y, 3, guide, seed=1)
    assert first.y.shape == (3, 1, 3, 12, 12) and first.z.shape == (3, 1, 3, 24, 24)
    assert first.lambda2.shape == (3, 1, 2) and first.rho.shape == (3, 1)
    assert torch.equal(first.y, posterior_predictive(y, 3, guide, seed=1).y)
    assert not torch.equal(first.y, posterior_predictive(y, 3, guide, seed=2).y)
    gray = posterior_predictive(image(channels=1, height=12, width=12), 2, guide, seed=0)
    assert gray.y.shape == (2, 1, 1, 12, 12) and gray.z.shape == (2, 1, 1, 24, 24)
    denoised = posterior_predictive(image(height=8, width=8), 2, tiny_guide())
    assert denoised.lambda2 is None and denoised.rho is None


def test_posterior_predictive_refuses_bad_requests_with_one_line():
    with pytest.raises(VirnetError, match="positive integer"):
        posterior_predictive(image(height=8, width=8), 0, tiny_guide())
    with pytest.raises(VirnetError, match="too small"):
        posterior_predictive(image(height=4, width=4), 2, tiny_guide("sr", 2))


@pytest.mark.gpu
def test_replicates_on_cuda_stay_on_the_device():
    guide = tiny_guide("sr", 2).cuda()
    draws = posterior_predictive(image(height=12, width=12).cuda(), 2, guide, seed=0)
    assert draws.y.device.type == "cuda" and draws.lambda2.device.type == "cuda"
    assert restore(image(height=12, width=12).cuda(), guide).checks[0].expected_std is not None
