"""The Pyro model is the generative story of Eqs. 3, 4, 7, 10, 11."""

import numpy as np
import pyro.poutine as poutine
import pytest
import torch
from scipy import ndimage

from generative.config import denoising_config, sr_config
from generative.kernels import gaussian_kernel, lambda_from_axes
from generative.model import VIRNetModel
from generative.operators import degrade
from tests.helpers import synthetic_batch

# Clearly anisotropic and rotated kernels (λ1² ≠ λ2², ρ ≠ 0), so that a transposed or
# missing blur gives another mean: (l1, l2, θ) per batch element, in HR pixels.
SKEWED_AXES = ((2.0, 0.6, 0.3), (1.6, 0.5, 2.2))


def trace(model, *args):
    return poutine.trace(model).get_trace(*args)


def test_denoising_model_has_no_kernel_sites_and_the_paper_site_names():
    config = denoising_config()
    y, x, xi, _ = synthetic_batch(config)
    tr = trace(VIRNetModel(config), y, x, xi)
    sites = [n for n, s in tr.nodes.items() if s["type"] == "sample" and n != "batch"]
    assert sites == ["sigma2", "z", "y"]
    assert tr.nodes["y"]["is_observed"]
    assert tr.nodes["z"]["value"].shape == x.shape
    assert tr.nodes["sigma2"]["value"].shape == xi.shape


@pytest.mark.parametrize("scale", [2, 3, 4])
def test_sr_model_samples_the_kernel_and_observes_the_low_resolution_image(scale):
    config = sr_config(scale)
    y, x, xi, kernel_params_hat = synthetic_batch(config, size=12 * scale)
    tr = trace(VIRNetModel(config), y, x, xi, kernel_params_hat)
    sites = [n for n, s in tr.nodes.items() if s["type"] == "sample" and n != "batch"]
    assert sites == ["sigma2", "rho", "lambda2", "z", "y"]
    assert tr.nodes["rho"]["value"].shape == (2,)
    assert tr.nodes["lambda2"]["value"].shape == (2, 2)
    assert tr.nodes["y"]["value"].shape == (2, 3, 12, 12)


def test_log_joint_is_scaled_per_observed_pixel():
    config = denoising_config()
    y, x, xi, _ = synthetic_batch(config)
    tr = trace(VIRNetModel(config), y, x, xi)
    tr.compute_log_prob()
    site = tr.nodes["y"]
    unscaled = site["fn"].log_prob(y).sum()
    assert site["log_prob_sum"].item() == pytest.approx(unscaled.item() / y.numel(), rel=1e-5)


@pytest.mark.parametrize("config", [denoising_config(), sr_config(2, downsampler="direct")], ids=["denoise", "sr-x2"])
def test_prior_predictive_residual_variance_matches_a_known_sigma2_map(config):
    """Simulated y - Hz has the variance σ² the model was conditioned on, pixel group by pixel group."""
    size = 128 * config.scale
    x = torch.full((4, 3, size, size), 0.5)
    h = w = 128
    sigma2 = torch.ones(4, 1, h, w) * 0.01
    sigma2[..., : h // 2, :] = 0.0004  # two noise levels: 20/255-ish and 5/255-ish
    xi = sigma2.clone()
    kernel_params_hat = torch.tensor([[1.0, 1.0, 0.0]]).repeat(4, 1) if config.has_kernel else None
    model = poutine.condition(VIRNetModel(config), data={"sigma2": sigma2})
    tr = trace(model, None, x, xi, kernel_params_hat)
    z = tr.nodes["z"]["value"]
    kernel_mean = tr.nodes["y"]["fn"].base_dist.loc
    residual = tr.nodes["y"]["value"] - kernel_mean
    assert (z - x).abs().max() < 6 * config.eps0_sq**0.5
    for region, true_var in [(slice(0, h // 2), 0.0004), (slice(h // 2, h), 0.01)]:
        r = residual[..., region, :]
        n = r.numel()
        empirical = r.pow(2).mean().item()
        standard_error = true_var * (2 / n) ** 0.5
        assert abs(empirical - true_var) < 4 * standard_error


def test_sampled_observation_is_the_degraded_latent_image_plus_noise():
    config = denoising_config()
    x = torch.rand(1, 3, 16, 16)
    xi = torch.full((1, 1, 16, 16), 1e-10)
    tr = trace(poutine.condition(VIRNetModel(config), data={"sigma2": xi}), None, x, xi)
    assert torch.allclose(tr.nodes["y"]["value"], tr.nodes["z"]["value"], atol=1e-3)


def _likelihood_site(config, size=16, seed=0):
    """The traced model on a rough random x (so that blur and downsampling matter) with
    skewed kernels: (trace, x)."""
    gen = torch.Generator().manual_seed(seed)
    hr = size * config.scale
    x = torch.rand(2, 3, hr, hr, generator=gen)
    xi = torch.rand(2, 1, size, size, generator=gen) * 0.01 + 1e-4
    kernel_params_hat = None
    if config.has_kernel:
        axes = torch.tensor(SKEWED_AXES)
        kernel_params_hat = lambda_from_axes(axes[:, 0], axes[:, 1], axes[:, 2])
    return trace(VIRNetModel(config), None, x, xi, kernel_params_hat), x


LIKELIHOOD_CONFIGS = {
    "denoise": denoising_config(),
    **{f"sr-x{s}-{mode}": sr_config(s, downsampler=mode) for s in (2, 3, 4) for mode in ("bicubic", "direct")},
}


@pytest.mark.parametrize("name", list(LIKELIHOOD_CONFIGS))
def test_y_is_normal_around_the_degraded_latent_image_with_std_sqrt_sigma2(name):
    """Eq. 7: y ~ N([(z ∗ g(λ², ρ))↓s], σ²), with the z, λ², ρ and σ² the model drew."""
    config = LIKELIHOOD_CONFIGS[name]
    tr, _ = _likelihood_site(config)
    nodes = tr.nodes
    normal = nodes["y"]["fn"].base_dist
    kernel = None
    if config.has_kernel:
        kernel = gaussian_kernel(nodes["lambda2"]["value"], nodes["rho"]["value"], config.kernel_size)
    expected = degrade(nodes["z"]["value"], kernel, config.scale, config.downsampler)
    assert normal.loc.shape == expected.shape == nodes["y"]["value"].shape
    torch.testing.assert_close(normal.loc, expected)
    torch.testing.assert_close(normal.scale, nodes["sigma2"]["value"].sqrt().expand_as(expected))


@pytest.mark.parametrize("scale", [2, 3, 4])
def test_y_mean_is_the_reflect_padded_convolution_then_the_upper_left_pixel_of_each_block(scale):
    """The same mean, computed without the project's operators (scipy; "direct" ↓s): a
    model without the blur, without the downsampler or with the kernel transposed fails."""
    config = sr_config(scale, downsampler="direct")
    tr, _ = _likelihood_site(config)
    nodes = tr.nodes
    kernels = gaussian_kernel(nodes["lambda2"]["value"], nodes["rho"]["value"], config.kernel_size)
    z = nodes["z"]["value"].double().numpy()
    loc = nodes["y"]["fn"].base_dist.loc.double().numpy()
    for b in range(z.shape[0]):
        k = kernels[b].double().numpy()
        assert np.abs(k - k.T).max() > 1e-3, "the kernel is not symmetric, so a transposed one differs"
        for c in range(z.shape[1]):
            blurred = ndimage.convolve(z[b, c], k, mode="mirror")  # mirror = torch's "reflect"
            np.testing.assert_allclose(loc[b, c], blurred[::scale, ::scale], atol=1e-5)


def test_the_observed_y_is_scored_by_that_normal():
    config = sr_config(3)
    tr, _ = _likelihood_site(config)
    tr.compute_log_prob()
    site = tr.nodes["y"]
    normal = site["fn"].base_dist
    manual = torch.distributions.Normal(normal.loc, normal.scale).log_prob(site["value"]).sum()
    assert site["log_prob_sum"].item() == pytest.approx(manual.item() / site["value"].numel(), rel=1e-5)


def test_the_likelihood_stays_float32_under_mixed_precision_autocast():
    """Autocast is for the guide's networks: the blur (a convolution) must not run in bf16."""
    config = sr_config(4)
    with torch.autocast("cpu", dtype=torch.bfloat16):
        tr, _ = _likelihood_site(config)
    nodes = tr.nodes
    kernel = gaussian_kernel(nodes["lambda2"]["value"], nodes["rho"]["value"], config.kernel_size)
    expected = degrade(nodes["z"]["value"], kernel, config.scale, config.downsampler)
    loc = nodes["y"]["fn"].base_dist.loc
    assert loc.dtype == torch.float32
    torch.testing.assert_close(loc, expected)
