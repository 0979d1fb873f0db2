"""The Bayesian generative model of image degradation, written as a Pyro model (Sec. 3).

The model reads as the generative story of one batch of training triplets (y, x, Λ̂):
the noise variance map σ² is drawn around its estimate ξ (Eq. 4), the blur kernel's
parameters Λ around the true Λ̂ (Eq. 11), the latent clean image z around the clean
image x (Eq. 3), and the observation y is z blurred by g(Λ), downsampled and corrupted
by pixel-wise Gaussian noise of variance σ² (Eq. 7). Denoising is the case s = 1, k = δ.

All sites sit in one plate over the batch and are scaled by 1/(number of observed
pixels), so the ELBO is reported per observed pixel whatever the image size.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager

import pyro
import pyro.distributions as dist
import torch
from torch import nn

from generative.config import ModelConfig
from generative.kernels import gaussian_kernel
from generative.operators import degrade


class VIRNetModel(nn.Module):
    """p(y, z, σ², Λ | x, ξ, Λ̂) of Eqs. 3, 4, 7, 10 and 11. It has no learnable parameters."""

    def __init__(self, config: ModelConfig):
        super().__init__()
        self.config = config

    def forward(
        self,
        y: torch.Tensor | None,
        x: torch.Tensor,
        xi: torch.Tensor,
        kernel_params_hat: torch.Tensor | None = None,
        y_kernel: torch.Tensor | None = None,
    ) -> torch.Tensor:
        """Run the generative story; returns y (observed, or simulated when ``y`` is None).

        y: B×C×h×w noisy (LR) image, or None to sample it; x: B×C×H×W clean (HR) image;
        xi: B×Cσ×h×w variance estimate ξ of Eq. 5; kernel_params_hat: B×3 true (λ̂²_1, λ̂²_2, ρ̂)
        for SR, unused for denoising. h = H/s, w = W/s. y_kernel (a larger patch around y
        that only the guide's KNet reads) is accepted so that model and guide share their
        arguments, and is not used here.

        The model runs in float32 even inside an autocast region: mixed precision is for
        the guide's networks, not for the operator H or the log-densities.
        """
        cfg = self.config
        observed_shape = (x.shape[0], x.shape[1], x.shape[2] // cfg.scale, x.shape[3] // cfg.scale)
        alpha0, kappa0 = cfg.alpha0, cfg.kappa0
        with torch.autocast(x.device.type, enabled=False), pixel_plate(observed_shape):
            # Eq. 4: σ²_i ~ IG(α0 − 1, α0 ξ_i), whose mode is ξ_i.
            sigma2 = pyro.sample("sigma2", dist.InverseGamma(torch.full_like(xi, alpha0 - 1), alpha0 * xi).to_event(3))
            kernel = None
            if cfg.has_kernel:
                # Eq. 11: ρ ~ N(ρ̂, r0²), λ²_l ~ IG(κ0 − 1, κ0 λ̂²_l).
                rho = pyro.sample("rho", dist.Normal(kernel_params_hat[:, 2], cfg.r0_sq**0.5))
                widths = kernel_params_hat[:, :2]
                lambda2 = pyro.sample(
                    "lambda2", dist.InverseGamma(torch.full_like(widths, kappa0 - 1), kappa0 * widths).to_event(1)
                )
                kernel = gaussian_kernel(lambda2, rho, cfg.kernel_size)  # Eqs. 8, 10: k = g(Λ)
            # Eq. 3: z_i ~ N(x_i, ε0²).
            z = pyro.sample("z", dist.Normal(x, cfg.eps0_sq**0.5).to_event(3))
            # Eq. 7: y_i ~ N([(z ∗ k)↓s]_i, σ²_i).
            degraded = degrade(z, kernel, cfg.scale, cfg.downsampler)
            noise_std = sigma2.sqrt().expand_as(degraded)
            return pyro.sample("y", dist.Normal(degraded, noise_std).to_event(3), obs=y)


@contextmanager
def pixel_plate(observed_shape: tuple[int, ...]) -> Iterator[None]:
    """The plate over the batch, every site scaled by 1/(number of observed pixels) so that the
    ELBO is per observed pixel; shared by the model and the guide.

    observed_shape: the shape of y, B×C×h×w.
    """
    with pyro.plate("batch", observed_shape[0]), pyro.poutine.scale(scale=1.0 / torch.Size(observed_shape).numel()):
        yield
