"""The closed forms of Eqs. 21-23 against Monte Carlo estimates from the guide's own laws."""

import math

import pyro.distributions as dist
import pytest
import torch
from torch.distributions import kl_divergence

from generative.config import denoising_config
from training.closed_forms import (
    expected_log_likelihood_denoising,
    kl_inverse_gamma_same_shape,
    kl_kernel,
    kl_kernel_as_printed,
    kl_sigma2,
    kl_sigma2_as_printed,
    kl_z,
)

DRAWS = 200_000


def mc_kl(q, p, draws=DRAWS):
    """Monte Carlo KL(q‖p) and its standard error, for scalar-event laws with batch shape ()."""
    samples = q.rsample((draws,))
    values = q.log_prob(samples) - p.log_prob(samples)
    return values.mean().item(), values.std().item() / math.sqrt(draws)


def within(value, estimate, se, k=4.0):
    return abs(value - estimate) <= k * se + 1e-9 * max(1.0, abs(value))


@pytest.mark.parametrize("window", [3, 7, 11, 21])
@pytest.mark.parametrize("ratio", [1e-3, 0.1, 0.9, 1.0, 2.0, 50.0, 1e3])
def test_kl_sigma2_matches_monte_carlo(window, ratio):
    alpha0 = window**2 / 2
    xi = torch.tensor(0.01, dtype=torch.float64)
    beta = xi * ratio
    q = dist.InverseGamma(torch.tensor(alpha0 - 1, dtype=torch.float64), alpha0 * beta)
    p = dist.InverseGamma(torch.tensor(alpha0 - 1, dtype=torch.float64), alpha0 * xi)
    estimate, se = mc_kl(q, p)
    exact = kl_sigma2(beta.reshape(1, 1, 1, 1), xi.reshape(1, 1, 1, 1), alpha0).item()
    assert within(exact, estimate, se)
    assert exact == pytest.approx(kl_divergence(q, p).item(), rel=1e-9, abs=1e-12)


@pytest.mark.parametrize("ratio", [0.1, 2.0, 50.0])
def test_printed_eq22_overstates_the_kl_by_alpha0_over_alpha0_minus_1(ratio):
    alpha0 = 7**2 / 2
    xi = torch.full((1, 1, 1, 1), 0.01, dtype=torch.float64)
    beta = xi * ratio
    exact = kl_sigma2(beta, xi, alpha0).item()
    printed = kl_sigma2_as_printed(beta, xi, alpha0).item()
    assert printed / exact == pytest.approx(alpha0 / (alpha0 - 1), rel=1e-9)
    q = dist.InverseGamma(torch.tensor(alpha0 - 1, dtype=torch.float64), alpha0 * beta.flatten()[0])
    p = dist.InverseGamma(torch.tensor(alpha0 - 1, dtype=torch.float64), alpha0 * xi.flatten()[0])
    estimate, se = mc_kl(q, p)
    assert not within(printed, estimate, se), "the printed form should be detectably off"


@pytest.mark.parametrize("eps0_sq", [1e-8, 1e-6, 1e-3])
@pytest.mark.parametrize("error", [0.0, 1e-3, 0.3])
def test_kl_z_matches_monte_carlo(eps0_sq, error):
    x = torch.tensor(0.5, dtype=torch.float64)
    mu = x + error
    scale = math.sqrt(eps0_sq)
    q, p = dist.Normal(mu, scale), dist.Normal(x, scale)
    estimate, se = mc_kl(q, p)
    exact = kl_z(mu.reshape(1, 1, 1, 1), x.reshape(1, 1, 1, 1), eps0_sq).item()
    assert within(exact, estimate, se)


@pytest.mark.parametrize(
    "m, rho_hat, eta, width",
    [
        (0.0, 0.0, 1.0, 1.0),
        (0.5, 0.49, 2.0, 2.5),
        (-0.9, -0.95, 1e-3, 16.0),
        (0.99, -0.99, 50.0, 0.05),
    ],
)
def test_kl_kernel_matches_monte_carlo(m, rho_hat, eta, width):
    kappa0, r0_sq = 50.0, 1e-4
    f64 = dict(dtype=torch.float64)
    q_rho, p_rho = dist.Normal(torch.tensor(m, **f64), r0_sq**0.5), dist.Normal(torch.tensor(rho_hat, **f64), r0_sq**0.5)
    shape = torch.tensor(kappa0 - 1, **f64)
    q_w = dist.InverseGamma(shape, kappa0 * torch.tensor(eta, **f64))
    p_w = dist.InverseGamma(shape, kappa0 * torch.tensor(width, **f64))
    rho_est, rho_se = mc_kl(q_rho, p_rho)
    w_est, w_se = mc_kl(q_w, p_w)
    estimate = rho_est + 2 * w_est  # both widths share (η, λ̂²) here
    se = math.sqrt(rho_se**2 + 4 * w_se**2)
    exact = kl_kernel(
        torch.tensor([m], **f64),
        torch.tensor([[eta, eta]], **f64),
        torch.tensor([[width, width, rho_hat]], **f64),
        kappa0,
        r0_sq,
    ).item()
    assert within(exact, estimate, se)
    printed = kl_kernel_as_printed(
        torch.tensor([m], **f64), torch.tensor([[eta, eta]], **f64), torch.tensor([[width, width, rho_hat]], **f64), kappa0, r0_sq
    ).item()
    width_exact = 2 * kl_inverse_gamma_same_shape(kappa0 - 1, kappa0 * torch.tensor(eta, **f64), kappa0 * torch.tensor(width, **f64)).item()
    assert printed - exact == pytest.approx(width_exact / (kappa0 - 1), rel=1e-6, abs=1e-12)


def test_expected_log_likelihood_matches_monte_carlo():
    config = denoising_config(eps0_sq=1e-3)
    gen = torch.Generator().manual_seed(0)
    y = torch.rand(1, 3, 4, 4, generator=gen, dtype=torch.float64)
    mu = y + 0.05 * torch.randn(y.shape, generator=gen, dtype=torch.float64)
    beta = 0.002 + 0.01 * torch.rand(1, 1, 4, 4, generator=gen, dtype=torch.float64)
    shape = config.alpha0 - 1
    draws = 100_000
    sigma2 = dist.InverseGamma(torch.full_like(beta, shape), config.alpha0 * beta).sample((draws,))
    z = mu + math.sqrt(config.eps0_sq) * torch.randn((draws, *mu.shape), generator=gen, dtype=torch.float64)
    values = dist.Normal(z, sigma2.sqrt()).log_prob(y).sum(dim=(1, 2, 3, 4))
    estimate, se = values.mean().item(), values.std().item() / math.sqrt(draws)
    exact = expected_log_likelihood_denoising(y, mu, beta, config).item()
    assert within(exact, estimate, se)
