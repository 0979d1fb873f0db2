"""Closed forms of the ELBO's terms (Eqs. 18, 21-23), in nats, summed over pixels.

Every KL here is exact for the guide of Eqs. 13-15 and the priors of Eqs. 3, 4 and 11.
Where the paper prints something else, the printed form is kept beside the exact one
(``*_as_printed``) so that tests and notebooks can show the difference:

- Eqs. 22-23 multiply by α0 (resp. κ0); two inverse-gamma laws that share the shape
  a = α0 − 1 (resp. κ0 − 1) have KL = a (b_p/b_q + log(b_q/b_p) − 1), so the printed
  terms are too large by the factor α0/(α0 − 1) (≈ 1.043 for p = 7) and κ0/(κ0 − 1).
- Eq. 23 writes λ̂_l / η_l where λ̂²_l / η_l is meant (η_l is a variance, like λ̂²_l).
- Eq. 20 writes log σ̃_i inside the −½ {…}; the Gaussian log-density has −½ log σ̃²_i.
"""

from __future__ import annotations

import math

import torch

from generative.config import ModelConfig


def _sum_per_image(t: torch.Tensor) -> torch.Tensor:
    """B×... -> B."""
    return t.reshape(t.shape[0], -1).sum(dim=1)


def kl_inverse_gamma_same_shape(shape: float, rate_q: torch.Tensor, rate_p: torch.Tensor) -> torch.Tensor:
    """KL(IG(a, b_q) ‖ IG(a, b_p)) = a (b_p/b_q + log(b_q/b_p) − 1), elementwise."""
    ratio = rate_p / rate_q
    return shape * (ratio - torch.log(ratio) - 1)


def kl_z(mu: torch.Tensor, x: torch.Tensor, eps0_sq: float) -> torch.Tensor:
    """Eq. 21: Σ_i (µ_i − x_i)² / (2ε0²), a sum of squared errors weighted by 1/(2ε0²).

    µ, x: B×C×H×W -> B. Exact: both Gaussians have variance ε0².
    """
    return _sum_per_image((mu - x) ** 2) / (2 * eps0_sq)


def kl_sigma2(beta: torch.Tensor, xi: torch.Tensor, alpha0: float) -> torch.Tensor:
    """Exact KL(q(σ²|y) ‖ p(σ²)) of Eq. 22: Σ (α0 − 1)(ξ/β + log(β/ξ) − 1). β, ξ: B×C×h×w -> B."""
    return _sum_per_image(kl_inverse_gamma_same_shape(alpha0 - 1, alpha0 * beta, alpha0 * xi))


def kl_sigma2_as_printed(beta: torch.Tensor, xi: torch.Tensor, alpha0: float) -> torch.Tensor:
    """Eq. 22 as printed, with the multiplier α0 instead of α0 − 1. β, ξ: B×C×h×w -> B."""
    return _sum_per_image(alpha0 * (xi / beta + torch.log(beta / xi) - 1))


def kl_kernel(
    m: torch.Tensor, eta: torch.Tensor, kernel_params_hat: torch.Tensor, kappa0: float, r0_sq: float
) -> torch.Tensor:
    """Exact KL(q(Λ|y) ‖ p(Λ)) of Eq. 23.

    (m − ρ̂)² / (2 r0²) + Σ_l (κ0 − 1)(λ̂²_l/η_l + log(η_l/λ̂²_l) − 1).
    m: B, eta: B×2, kernel_params_hat: B×3 holding (λ̂²_1, λ̂²_2, ρ̂) -> B.
    """
    rho_term = (m - kernel_params_hat[:, 2]) ** 2 / (2 * r0_sq)
    width_terms = kl_inverse_gamma_same_shape(kappa0 - 1, kappa0 * eta, kappa0 * kernel_params_hat[:, :2])
    return rho_term + width_terms.sum(dim=1)


def kl_kernel_as_printed(
    m: torch.Tensor, eta: torch.Tensor, kernel_params_hat: torch.Tensor, kappa0: float, r0_sq: float
) -> torch.Tensor:
    """Eq. 23 as printed (multiplier κ0), reading its λ̂_l as the variance λ̂²_l."""
    rho_term = (m - kernel_params_hat[:, 2]) ** 2 / (2 * r0_sq)
    ratio = kernel_params_hat[:, :2] / eta
    return rho_term + (kappa0 * (ratio - torch.log(ratio) - 1)).sum(dim=1)


def inverse_gamma_log_mean(shape: float, rate: torch.Tensor) -> torch.Tensor:
    """E[log σ²] for σ² ~ IG(a, b): log b − ψ(a)."""
    return torch.log(rate) - torch.special.digamma(torch.tensor(shape, dtype=rate.dtype, device=rate.device))


def expected_log_likelihood_denoising(
    y: torch.Tensor, mu: torch.Tensor, beta: torch.Tensor, config: ModelConfig
) -> torch.Tensor:
    """E_q[log p(y | z, σ²)] in closed form for denoising (Eq. 2 with Eqs. 13 and 15).

    With z ~ N(µ, ε0²) and σ² ~ IG(a, b), a = α0 − 1, b = α0 β:
    −½ log 2π − ½ (log b − ψ(a)) − ½ (a/b) ((y − µ)² + ε0²), summed per image.
    y, mu: B×C×H×W; beta: B×1×H×W or B×C×H×W -> B.
    """
    shape = config.alpha0 - 1
    rate = config.alpha0 * beta
    log_density = (
        -0.5 * math.log(2 * math.pi)
        - 0.5 * inverse_gamma_log_mean(shape, rate)
        - 0.5 * (shape / rate) * ((y - mu) ** 2 + config.eps0_sq)
    )
    return _sum_per_image(log_density.expand_as(y))


def analytic_elbo_denoising(
    y: torch.Tensor, x: torch.Tensor, xi: torch.Tensor, mu: torch.Tensor, beta: torch.Tensor, config: ModelConfig
) -> torch.Tensor:
    """The whole ELBO of Eq. 18 for denoising, exact, per observed pixel of the batch (scalar)."""
    elbo = (
        expected_log_likelihood_denoising(y, mu, beta, config)
        - kl_z(mu, x, config.eps0_sq)
        - kl_sigma2(beta, xi, config.alpha0)
    )
    return elbo.sum() / y.numel()
