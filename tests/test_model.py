"""The Pyro model is the generative story of Eqs. 3, 4, 7, 10, 11."""

import pyro.poutine as poutine
import pytest
import torch

from generative.config import denoising_config, sr_config
from generative.model import VIRNetModel
from tests.helpers import synthetic_batch


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
    y, x, xi, lambda_hat = synthetic_batch(config, size=12 * scale)
    tr = trace(VIRNetModel(config), y, x, xi, lambda_hat)
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
    lambda_hat = torch.tensor([[1.0, 1.0, 0.0]]).repeat(4, 1) if config.has_kernel else None
    model = poutine.condition(VIRNetModel(config), data={"sigma2": sigma2})
    tr = trace(model, None, x, xi, lambda_hat)
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
