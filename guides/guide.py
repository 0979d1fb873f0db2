"""The amortized guide q(z, σ², Λ | y) = q(z | y, σ², Λ) q(σ² | y) q(Λ | y) (Eq. 12).

Two stages, as in the public implementation's forward pass. Degradation estimation
(`VIRNetGuide.degradation`): SNet gives β, the mode of q(σ²|y) (Eq. 13); KNet gives
(m, η), the parameters of q(Λ|y) (Eq. 14). Restoration (`VIRNetGuide.restoration_mean`):
RNet gives µ, the mean of q(z|y, σ², Λ) (Eq. 15), reading y (nearest-upsampled for SR)
together with the degradation estimate as constant or per-pixel maps: (λ1², λ2², ρ) = (η1,
η2, m) for SR, then √β. The guide samples its sites in the model's order under the same
plate and per-pixel scale.
"""

from __future__ import annotations

import math
from dataclasses import asdict, dataclass

import pyro
import pyro.distributions as dist
import torch
from torch import nn

from generative.config import ModelConfig
from generative.model import pixel_plate
from generative.operators import check_image, check_scale
from guides.kernel_input import KNET_INPUTS, kernel_input
from guides.knet import KNet
from guides.rnet import RNet
from guides.snet import SNet

# Table 11: what q(z|·) is conditioned on besides y.
FACTORIZATIONS = {
    "full": (True, True),  # q(z | y, σ², Λ), Eq. 12
    "no-sigma": (False, True),  # q(z | y, Λ)
    "no-kernel": (True, False),  # q(z | y, σ²)
    "none": (False, False),  # q(z | y)
}
KERNEL_FEATURES = 3  # (η1, η2, m) = (λ1², λ2², ρ) as constant maps


@dataclass(frozen=True)
class GuideConfig:
    """Architecture of SNet, KNet and RNet. The defaults are the paper's denoiser (DESIGN.md)."""

    snet_features: int = 64
    snet_depth: int = 5
    knet_features: int = 64
    knet_blocks: int = 8
    rnet_widths: tuple[int, ...] = (96, 192, 288)
    rnet_blocks: int = 3
    conditioning: str = "input"  # how RNet reads β and Λ: "input", "down" or "both"
    factorization: str = "full"  # Table 11 ablations
    detach_degradation: bool = True  # RNet's input does not back-propagate into SNet/KNet
    knet_input: str = "raw"  # what KNet reads: y ("raw", as published) or "highpass" (guides/kernel_input.py)

    def __post_init__(self) -> None:
        if self.factorization not in FACTORIZATIONS:
            raise ValueError(f"unknown factorization {self.factorization!r}; expected one of {tuple(FACTORIZATIONS)}")
        if self.knet_input not in KNET_INPUTS:
            raise ValueError(f"unknown knet_input {self.knet_input!r}; expected one of {KNET_INPUTS}")
        object.__setattr__(self, "rnet_widths", tuple(self.rnet_widths))

    def to_dict(self) -> dict:
        return asdict(self)


@dataclass
class Degradation:
    """The degradation estimate of the first stage (Eqs. 13-14).

    beta: B×Cσ×h×w mode of q(σ²|y); eta: B×2 scales of q(λ²|y) and m: B mean of q(ρ|y)
    (SR only, else None).
    """

    beta: torch.Tensor
    eta: torch.Tensor | None = None
    m: torch.Tensor | None = None


@dataclass
class PosteriorParams:
    """The guide's parameters for one batch.

    mu: B×C×H×W mean of q(z|·) (the restored image); beta: B×Cσ×h×w mode of q(σ²|y);
    eta: B×2 scales of q(λ²|y) and m: B mean of q(ρ|y) (SR only, else None).
    """

    mu: torch.Tensor
    beta: torch.Tensor
    eta: torch.Tensor | None = None
    m: torch.Tensor | None = None

    def sigma2_mean(self, alpha0: float) -> torch.Tensor:
        """E[σ²] = α0 β / (α0 − 2) for q(σ²|y) = IG(α0 − 1, α0 β); B×Cσ×h×w."""
        return alpha0 * self.beta / (alpha0 - 2)


class VIRNetGuide(nn.Module):
    """q(z, σ², Λ | y) of Eqs. 12-15 with its three networks."""

    def __init__(self, model_config: ModelConfig, guide_config: GuideConfig = GuideConfig()):
        super().__init__()
        self.model_config = model_config
        self.guide_config = guide_config
        channels = model_config.image_channels
        self.on_sigma, self.on_kernel = FACTORIZATIONS[guide_config.factorization]
        self.on_kernel = self.on_kernel and model_config.has_kernel
        self.snet = SNet(
            channels,
            model_config.sigma_channels,
            guide_config.snet_features,
            guide_config.snet_depth,
            global_average=model_config.has_kernel,  # SR assumes i.i.d. noise
        )
        self.knet = (
            KNet(channels, guide_config.knet_features, guide_config.knet_blocks) if model_config.has_kernel else None
        )
        cond_channels = model_config.sigma_channels * self.on_sigma + KERNEL_FEATURES * self.on_kernel
        self.rnet = RNet(
            channels,
            cond_channels,
            channels,
            guide_config.rnet_widths,
            guide_config.rnet_blocks,
            guide_config.conditioning if cond_channels else "none",
        )

    @property
    def padding_multiple(self) -> int:
        """Tiles of y whose sides are multiples of this many pixels reach RNet (after the ×s
        upsampling) at sides that are multiples of 2^(scales − 1), so RNet pads nothing and
        a tile's µ does not depend on padding: 2^(len(rnet_widths) − 1) / gcd(that, s)."""
        return self.rnet.multiple // math.gcd(self.rnet.multiple, self.model_config.scale)

    def degradation(self, y: torch.Tensor, y_kernel: torch.Tensor | None = None) -> Degradation:
        """y: B×C×h×w -> the degradation estimate: β (SNet, Eq. 13) and, for SR, (η, m) (KNet,
        Eq. 14); float32 even under mixed-precision autocast.

        y_kernel: optionally a larger LR patch around y with the same degradation
        (B×C×h'×w'); KNet reads it instead of y (SR only).
        """
        beta = self.snet(y).float()
        if self.knet is None:
            return Degradation(beta=beta)
        eta, m = self.kernel_posterior(y if y_kernel is None else y_kernel)
        return Degradation(beta=beta, eta=eta, m=m)

    def kernel_posterior(self, y: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """(η: B×2, m: B) of q(Λ|y) (Eq. 14): KNet on y as ``guide_config.knet_input`` says."""
        eta, m = self.knet(kernel_input(y, self.guide_config.knet_input))
        return eta.float(), m.float()

    def restoration_mean(self, y: torch.Tensor, degradation: Degradation) -> torch.Tensor:
        """µ of q(z | y, σ², Λ) (Eq. 15): RNet on y given a degradation estimate.

        y: B×C×h×w; degradation: β at B×Cσ×h×w (and η, m for SR) -> µ: B×C×(h·s)×(w·s).
        """
        upsampled = upsample_nearest(y, self.model_config.scale)
        return self.rnet(upsampled, self._conditioning_maps(degradation)).float()

    def posterior(self, y: torch.Tensor, y_kernel: torch.Tensor | None = None) -> PosteriorParams:
        """y: B×C×h×w -> the guide's parameters (µ at B×C×(h·s)×(w·s)); y_kernel as in
        `degradation`."""
        estimate = self.degradation(y, y_kernel)
        mu = self.restoration_mean(y, estimate)
        return PosteriorParams(mu=mu, beta=estimate.beta, eta=estimate.eta, m=estimate.m)

    def _conditioning_maps(self, degradation: Degradation) -> torch.Tensor | None:
        """The degradation estimate as RNet's conditioning maps: the kernel (η1, η2, m), then
        √β, as the public forward pass orders them. For SR every map is constant over the
        image (one kernel, and i.i.d. noise: SNet's β is its image average), so they are
        B×cond×1×1 and RNet broadcasts them; for denoising √β is the B×Cσ×H×W map."""
        maps = []
        if self.on_kernel:
            maps.append(torch.cat([degradation.eta, degradation.m[:, None]], dim=1)[:, :, None, None])  # B×3×1×1
        if self.on_sigma:
            beta = degradation.beta[..., :1, :1] if self.model_config.has_kernel else degradation.beta
            maps.append(beta.sqrt())
        if not maps:
            return None
        cond = torch.cat(maps, dim=1)
        return cond.detach() if self.guide_config.detach_degradation else cond

    def draw(self, post: PosteriorParams, y: torch.Tensor) -> None:
        """The guide's sample sites for parameters ``post`` of a batch y (B×C×h×w).

        Eqs. 13-15, in the model's order, under the model's plate and per-pixel scale.
        """
        cfg = self.model_config
        alpha0, kappa0 = cfg.alpha0, cfg.kappa0
        with pixel_plate(y.shape):
            # Eq. 13: q(σ²_i|y) = IG(α0 − 1, α0 β_i(y)).
            pyro.sample("sigma2", dist.InverseGamma(torch.full_like(post.beta, alpha0 - 1), alpha0 * post.beta).to_event(3))
            if cfg.has_kernel:
                # Eq. 14: q(ρ|y) = N(m(y), r0²), q(λ²_l|y) = IG(κ0 − 1, κ0 η_l(y)).
                pyro.sample("rho", dist.Normal(post.m, cfg.r0_sq**0.5))
                pyro.sample(
                    "lambda2", dist.InverseGamma(torch.full_like(post.eta, kappa0 - 1), kappa0 * post.eta).to_event(1)
                )
            # Eq. 15: q(z_i|y, σ², Λ) = N(µ_i, ε0²).
            pyro.sample("z", dist.Normal(post.mu, cfg.eps0_sq**0.5).to_event(3))

    def forward(
        self,
        y: torch.Tensor,
        x: torch.Tensor | None = None,
        xi: torch.Tensor | None = None,
        kernel_params_hat: torch.Tensor | None = None,
        y_kernel: torch.Tensor | None = None,
    ) -> PosteriorParams:
        """Sample z, σ² (and ρ, λ²) given y; takes the model's arguments and uses only y
        (and y_kernel, KNet's larger patch, when given)."""
        post = self.posterior(y, y_kernel)
        self.draw(post, y)
        return post


def upsample_nearest(y: torch.Tensor, scale: int) -> torch.Tensor:
    """Nearest-neighbour upsampling, how RNet reads y and √β for SR: B×C×h×w -> B×C×(h·s)×(w·s),
    each pixel an s×s block."""
    check_image(y)
    check_scale(scale)
    return y.repeat_interleave(scale, dim=-2).repeat_interleave(scale, dim=-1)


PAPER_GUIDES = {
    # The public configs: denoising_syn.json, denoising_real.json and sisr_x*.json.
    "denoise": GuideConfig(),
    "denoise-real": GuideConfig(snet_depth=8, rnet_widths=(96, 160, 224, 288), rnet_blocks=3),
    "sr": GuideConfig(rnet_widths=(96, 160, 224), rnet_blocks=2, conditioning="both"),
}


def paper_guide_config(task: str) -> GuideConfig:
    """The paper-size networks of the public configurations (DESIGN.md) for "denoise"
    (synthetic noise: RNet widths (96, 192, 288) × 3 blocks, SNet depth 5), "denoise-real"
    (widths (96, 160, 224, 288) × 3 blocks, SNet depth 8) or "sr" (widths (96, 160, 224) ×
    2 blocks, β and Λ at the input and in the down path; KNet 64 features × 8 blocks)."""
    if task not in PAPER_GUIDES:
        raise ValueError(f"unknown task {task!r} for the paper-size guide; expected one of {tuple(PAPER_GUIDES)}")
    return PAPER_GUIDES[task]
