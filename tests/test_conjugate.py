"""The exact posterior of σ² given the clean image is the model's own prior × likelihood, normalised."""

import pyro.distributions as dist
import pyro.poutine as poutine
import pytest
import torch

from generative.config import denoising_config, sr_config
from generative.conjugate import sigma2_posterior
from generative.kernels import gaussian_kernel
from generative.model import VIRNetModel
from generative.operators import degrade
from tests.helpers import synthetic_batch

CONFIGS = {
    "denoise": denoising_config(),
    "denoise-3-sigma-channels": denoising_config(sigma_channels=3),
    "sr-x2": sr_config(2),
}


def site_log_probs(trace, name):
    node = trace.nodes[name]
    return node["fn"].log_prob(node["value"])


@pytest.mark.parametrize("name", list(CONFIGS))
def test_prior_times_likelihood_over_the_posterior_is_constant_in_sigma2(name):
    """log p(σ²) + log p(y | z = x, σ², Λ) − log p(σ² | y, x) does not depend on σ² (Bayes' rule)."""
    config = CONFIGS[name]
    y, x, xi, kernel_params_hat = (t if t is None else t[:1].double() for t in synthetic_batch(config, batch=1, size=24))
    levels = torch.tensor([2e-4, 1e-3, 3e-3, 1e-2, 4e-2], dtype=torch.float64)
    n = len(levels)
    batch = [t if t is None else t.expand(n, *t.shape[1:]) for t in (y, x, xi, kernel_params_hat)]
    sigma2 = levels.view(n, 1, 1, 1).expand_as(batch[2]).contiguous()
    fixed = {"z": batch[1], "sigma2": sigma2}
    if config.has_kernel:
        fixed |= {"lambda2": batch[3][:, :2], "rho": batch[3][:, 2]}
    trace = poutine.trace(poutine.condition(VIRNetModel(config), fixed)).get_trace(*batch)
    prior = trace.nodes["sigma2"]["fn"].base_dist
    kernel = gaussian_kernel(kernel_params_hat[:, :2], kernel_params_hat[:, 2], config.kernel_size) if config.has_kernel else None
    hx = degrade(x, kernel, config.scale, config.downsampler)
    shape, rate = sigma2_posterior(prior.concentration, prior.rate, batch[0], hx.expand_as(batch[0]))
    posterior = dist.InverseGamma(shape, rate).to_event(3).log_prob(sigma2)
    difference = site_log_probs(trace, "sigma2") + site_log_probs(trace, "y") - posterior
    assert difference.std() < 1e-6 * difference.abs().mean()
    # The same difference with a wrong update (one observation per σ² instead of C) is not constant.
    if config.sigma_channels == 1:
        wrong = dist.InverseGamma(shape - 1, rate).to_event(3).log_prob(sigma2)
        assert (site_log_probs(trace, "sigma2") + site_log_probs(trace, "y") - wrong).std() > 1.0


def test_posterior_of_variances_drawn_from_the_prior_is_calibrated():
    """σ² ~ IG(a, b), y ~ N(x, σ²) on 3 channels: the true σ² falls in the central 90 % interval of
    IG(a + 3/2, b + ½ Σ r²) 90 % of the time (and its PIT is uniform)."""
    config = denoising_config(eps0_sq=1e-14)  # z = x up to 1e-7
    generator = torch.Generator().manual_seed(0)
    x = torch.rand(4, 3, 64, 64, generator=generator, dtype=torch.float64)
    xi = torch.full((4, 1, 64, 64), 4e-3, dtype=torch.float64)
    trace = poutine.trace(VIRNetModel(config)).get_trace(None, x, xi)
    truth, y = trace.nodes["sigma2"]["value"], trace.nodes["y"]["value"]
    prior = trace.nodes["sigma2"]["fn"].base_dist
    shape, rate = sigma2_posterior(prior.concentration, prior.rate, y, x)
    pit = dist.InverseGamma(shape, rate).cdf(truth).flatten()
    inside = ((pit > 0.05) & (pit < 0.95)).double().mean()
    assert inside == pytest.approx(0.90, abs=0.01)  # 16384 pixels: 3 standard errors ≈ 0.007
    deciles = torch.histc(pit, bins=10, min=0, max=1) / pit.numel()
    assert torch.allclose(deciles, torch.full_like(deciles, 0.1), atol=0.012)
    # The prior alone is wider than the posterior, and the posterior moved towards the truth.
    assert (rate / (shape - 1) - truth).abs().mean() < (prior.rate / (prior.concentration - 1) - truth).abs().mean()


def test_mismatched_shapes_are_refused():
    with pytest.raises(ValueError, match="equal shape"):
        sigma2_posterior(torch.ones(1), torch.ones(1, 1, 4, 4), torch.zeros(1, 3, 4, 4), torch.zeros(1, 3, 4, 5))
    with pytest.raises(ValueError, match="σ² channels"):
        sigma2_posterior(torch.ones(1), torch.ones(1, 2, 4, 4), torch.zeros(1, 3, 4, 4), torch.zeros(1, 3, 4, 4))
