"""Posterior predictive check of the noise model on one restored image.

If the restoration µ, the noise variance estimate σ̂² = β and the kernel k explain the
observation, the standardized residuals r = (y − Hµ)/σ̂ (H = ↓s ∘ (∗k), Eq. 7) behave like
N(0, 1) draws: mean ≈ 0, std ≈ 1 and about 0.27 % of them beyond ±3. A std well above 1
means the noise is stronger (or structured) beyond what the model estimated, well below 1
that the estimate overshoots or that µ absorbed part of the noise.

The model's own reference is sharper than N(0, 1): replicated observations y_rep drawn from
the posterior predictive (virnet/predictive.py) give residuals (y_rep − Hµ)/σ̂ whose std is
√(E[σ²]/β) ≈ √(α0/(α0 − 2)) (1.04 for p = 7) and whose tails are those of a scale mixture
(heavier than N(0, 1)). When such replicates are given, the check compares with their
statistics instead of N(0, 1)'s.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
import torch.nn.functional as F

from generative.operators import degrade

FIT_RANGE = (0.8, 1.25)  # residual std / expected std inside this range: the noise model fits
OUTLIER_LEVEL = 3.0


@dataclass(frozen=True)
class ModelCheck:
    """Summary of the standardized residuals of one image.

    mean, std: of r over all pixels and channels; outliers: fraction of |r| > 3.
    expected_std, expected_outliers: the same statistics that the model predicts, from
    posterior predictive replicates (None: the N(0, 1) values 1 and 0.27 % are the reference).
    """

    mean: float
    std: float
    outliers: float
    expected_std: float | None = None
    expected_outliers: float | None = None

    @property
    def ratio(self) -> float:
        """std over the expected std (1 for N(0, 1) without replicates)."""
        return self.std / (1.0 if self.expected_std is None else self.expected_std)

    @property
    def fits(self) -> bool:
        """Whether the residual std over the expected std lies in FIT_RANGE."""
        return FIT_RANGE[0] <= self.ratio <= FIT_RANGE[1]

    def summary(self) -> str:
        """One line: the statistics (beside what the model predicts, if known) and the verdict."""
        std, outliers = f"std {self.std:.3f}", f"|r| > 3: {100 * self.outliers:.2f}%"
        if self.expected_std is not None:
            std += f" (model: {self.expected_std:.3f})"
            outliers += f" (model: {100 * self.expected_outliers:.2f}%)"
        stats = f"residuals (y - Hµ)/σ̂: mean {self.mean:+.3f}, {std}, {outliers}"
        if self.fits:
            verdict = "the noise model fits this image"
        else:
            direction = "under" if self.ratio > FIT_RANGE[1] else "over"
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
    variance estimate; kernel: B×K×K blur kernel (None: no blur). Hµ as `predicted_observation`.
    """
    return (y - predicted_observation(mu, y.shape[-2:], kernel, scale, downsampler)) / beta.sqrt()


def predicted_observation(
    mu: torch.Tensor,
    size: tuple[int, int],
    kernel: torch.Tensor | None = None,
    scale: int = 1,
    downsampler: str = "direct",
) -> torch.Tensor:
    """Hµ = [(µ ∗ k)↓s] cropped to size = (h, w): B×C×h×w.

    When µ is too small for the reflect padding of the kernel it is replicate-padded on its
    bottom/right edges first.
    """
    if kernel is not None:
        least = kernel.shape[-1] // 2 + 1
        pad_h, pad_w = max(0, least - mu.shape[-2]), max(0, least - mu.shape[-1])
        if pad_h or pad_w:
            mu = F.pad(mu, (0, pad_w, 0, pad_h), mode="replicate")
    return degrade(mu, kernel, scale, downsampler)[..., : size[0], : size[1]]


def check_residuals(residuals: torch.Tensor, replicated: torch.Tensor | None = None) -> list[ModelCheck]:
    """One ModelCheck per image of B×C×h×w standardized residuals.

    replicated: n×B×C'×h'×w' standardized residuals (y_rep − Hµ)/σ̂ of n posterior predictive
    replicates (of the image or of a crop of it); their std and outlier fraction, averaged
    over the n draws, become each check's expected values.
    """
    means, stds, outliers = _statistics(residuals)
    expected = [(None, None)] * len(means)
    if replicated is not None:
        _, rep_stds, rep_outliers = _statistics(replicated.flatten(0, 1))
        draws = replicated.shape[0]
        rep_stds, rep_outliers = rep_stds.view(draws, -1).mean(0), rep_outliers.view(draws, -1).mean(0)
        expected = [(float(s), float(o)) for s, o in zip(rep_stds, rep_outliers)]
    return [
        ModelCheck(float(m), float(s), float(o), *reference)
        for m, s, o, reference in zip(means, stds, outliers, expected)
    ]


def _statistics(residuals: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """Per image of B×... residuals: (mean, std, fraction beyond OUTLIER_LEVEL), each B."""
    flat = residuals.detach().flatten(1).double()
    outliers = (flat.abs() > OUTLIER_LEVEL).double().mean(dim=1)
    return flat.mean(dim=1), flat.std(dim=1, correction=0), outliers
