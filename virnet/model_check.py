"""Posterior predictive check of the noise model on one restored image.

If the restoration µ, the noise variance estimate σ̂² = β and the kernel k explain the
observation, the standardized residuals r = (y − Hµ)/σ̂ (H = ↓s ∘ (∗k), Eq. 7) behave like
N(0, 1) draws: mean ≈ 0, std ≈ 1 and about 0.27 % of them beyond ±3. A std well above 1
means the noise is stronger (or structured) beyond what the model estimated, well below 1
that the estimate overshoots or that µ absorbed part of the noise.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
import torch.nn.functional as F

from generative.operators import degrade

FIT_RANGE = (0.8, 1.25)  # residual std inside this range: the noise model fits
OUTLIER_LEVEL = 3.0


@dataclass(frozen=True)
class ModelCheck:
    """Summary of the standardized residuals of one image.

    mean, std: of r over all pixels and channels; outliers: fraction of |r| > 3.
    """

    mean: float
    std: float
    outliers: float

    @property
    def fits(self) -> bool:
        """Whether the residual std lies in FIT_RANGE."""
        return FIT_RANGE[0] <= self.std <= FIT_RANGE[1]

    def summary(self) -> str:
        """One line: the statistics and the verdict."""
        stats = f"residuals (y - Hµ)/σ̂: mean {self.mean:+.3f}, std {self.std:.3f}, |r| > 3: {100 * self.outliers:.2f}%"
        if self.fits:
            verdict = "the noise model fits this image"
        else:
            direction = "under" if self.std > FIT_RANGE[1] else "over"
            verdict = f"the noise model does NOT fit this image (noise {direction}estimated or not Gaussian)"
        return f"{stats} -> {verdict}"


def standardized_residuals(
    y: torch.Tensor,
    mu: torch.Tensor,
    beta: torch.Tensor,
    kernel: torch.Tensor | None = None,
    scale: int = 1,
    downsampler: str = "direct",
) -> torch.Tensor:
    """r = (y − Hµ)/√β, B×C×h×w.

    y: B×C×h×w observation; mu: B×C×(h·s)×(w·s) restoration; beta: B×Cσ×h×w (Cσ = 1 or C)
    variance estimate; kernel: B×K×K blur kernel (None: no blur). When µ is too small for the
    reflect padding of the kernel it is replicate-padded on its bottom/right edges first and
    Hµ cropped back to h×w.
    """
    height, width = y.shape[-2:]
    if kernel is not None:
        least = kernel.shape[-1] // 2 + 1
        pad_h, pad_w = max(0, least - mu.shape[-2]), max(0, least - mu.shape[-1])
        if pad_h or pad_w:
            mu = F.pad(mu, (0, pad_w, 0, pad_h), mode="replicate")
    predicted = degrade(mu, kernel, scale, downsampler)[..., :height, :width]
    return (y - predicted) / beta.sqrt()


def check_residuals(residuals: torch.Tensor) -> list[ModelCheck]:
    """One ModelCheck per image of B×C×h×w standardized residuals."""
    flat = residuals.detach().flatten(1).double()
    means = flat.mean(dim=1)
    stds = flat.std(dim=1, correction=0)
    outliers = (flat.abs() > OUTLIER_LEVEL).double().mean(dim=1)
    return [ModelCheck(float(m), float(s), float(o)) for m, s, o in zip(means, stds, outliers)]
