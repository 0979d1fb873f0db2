"""Posterior predictive draws: y_rep ~ p(y | z, σ², Λ) with (z, σ², Λ) ~ q(·|y).

Pyro's `Predictive` draws the guide's sites (`VIRNetGuide.draw`, Eqs. 13-15) and replays them
into the model (`VIRNetModel`), run with y unobserved so that its `y` site (Eq. 7) is sampled.
The model's other arguments only set the priors of sites that the guide fixes (x: the prior
mean of z, ξ: that of σ², Λ̂: that of the kernel), so the guide's own estimates (µ, β, (η, m))
stand in for them: they give the shapes, never the values.

The model check (virnet/model_check.py) uses the replicates as its reference: the statistics
of (y_rep − Hµ)/σ̂ are what the model predicts for (y − Hµ)/σ̂.
"""

from __future__ import annotations

import torch
from pyro.infer import Predictive

from generative.kernels import gaussian_kernel
from generative.model import VIRNetModel
from guides.guide import PosteriorParams, VIRNetGuide
from virnet.model_check import predicted_observation

SITES = ("z", "sigma2", "lambda2", "rho", "y")
CHECK_DRAWS = 2  # replicates behind the model check's reference statistics
CHECK_SIDE = 256  # the check's replicates cover at most this centre crop of the restored image


def predictive_draws(guide: VIRNetGuide, post: PosteriorParams, y: torch.Tensor, n: int) -> dict[str, torch.Tensor]:
    """n joint draws of every site for observations y (B×C×h×w) with guide parameters `post`.

    Returns z: n×B×C×H×W, sigma2: n×B×Cσ×h×w, y: n×B×C×h×w (the replicates) and, for SR,
    lambda2: n×B×2 and rho: n×B. Raises ValueError when µ is too small for the model's blur.
    """
    cfg = guide.model_config
    if too_small_to_blur(guide, post.mu):
        raise ValueError(f"a {tuple(post.mu.shape[-2:])} image is too small for the {cfg.kernel_size}² blur kernel")
    model = VIRNetModel(cfg)
    kernel_params_hat = torch.cat([post.eta, post.m[:, None]], dim=1) if cfg.has_kernel else None

    def replay_model():
        return model(None, post.mu, post.beta, kernel_params_hat)

    def guide_draws():
        guide.draw(post, y)

    with torch.no_grad():
        samples = Predictive(replay_model, guide=guide_draws, num_samples=n)()
    return {name: samples[name] for name in SITES if name in samples}


def replicated_residuals(
    guide: VIRNetGuide, post: PosteriorParams, y: torch.Tensor, n: int = CHECK_DRAWS, side: int = CHECK_SIDE
) -> torch.Tensor | None:
    """(y_rep − Hµ)/√β of n replicates on the centre crop of at most side×side restored
    (side/s × side/s observed) pixels: n×B×C×h'×w'. None when the image is too small for the
    model's blur (SR)."""
    cfg = guide.model_config
    post, y = _centre_crop(post, y, max(1, side // cfg.scale), cfg.scale)
    if too_small_to_blur(guide, post.mu):
        return None
    draws = predictive_draws(guide, post, y, n)["y"]
    kernel = gaussian_kernel(post.eta, post.m, cfg.kernel_size) if cfg.has_kernel else None
    predicted = predicted_observation(post.mu, y.shape[-2:], kernel, cfg.scale, cfg.downsampler)
    return (draws - predicted) / post.beta.sqrt()


def too_small_to_blur(guide: VIRNetGuide, mu: torch.Tensor) -> bool:
    """Whether µ (B×C×H×W) is too small for the reflect padding of the model's blur (SR)."""
    cfg = guide.model_config
    return cfg.has_kernel and min(mu.shape[-2:]) <= cfg.kernel_size // 2


def _centre_crop(post: PosteriorParams, y: torch.Tensor, side: int, scale: int) -> tuple[PosteriorParams, torch.Tensor]:
    """The posterior and observations restricted to the centre side×side observed pixels
    (µ to the matching s·side crop); the kernel estimate (η, m) is per image and kept."""
    height, width = y.shape[-2:]
    crop_h, crop_w = min(height, side), min(width, side)
    top, left = (height - crop_h) // 2, (width - crop_w) // 2
    rows, cols = slice(top, top + crop_h), slice(left, left + crop_w)
    hr_rows, hr_cols = slice(top * scale, (top + crop_h) * scale), slice(left * scale, (left + crop_w) * scale)
    cropped = PosteriorParams(mu=post.mu[..., hr_rows, hr_cols], beta=post.beta[..., rows, cols], eta=post.eta, m=post.m)
    return cropped, y[..., rows, cols]
