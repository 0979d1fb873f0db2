"""Validation during training: restoration PSNR, noise-level error and kernel tracking.

- PSNR of the posterior mean µ and the error of the noise level √β, on the fixed batch of
  held-out crops (`training.data.validation_batch`);
- for SR, whether KNet tracks the kernel: Pearson's r between its estimate (η1, η2, m) and
  the true Λ = (λ1², λ2², ρ), on whole held-out LR images, each degraded with its own kernel
  drawn from the training distribution (`kernel_validation_set`). A KNet whose output does
  not depend on y scores r ≈ 0 however close its constant is to the average kernel.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import torch

from generative.kernels import gaussian_kernel
from generative.noise import add_gaussian_noise
from generative.operators import degrade
from guides.guide import VIRNetGuide
from training.degradations import DegradationSpec, iid_sigma_map, sample_kernel_lambdas
from training.images import read_image

KERNEL_PARAMETERS = ("lambda1", "lambda2", "rho")  # the columns of Λ: λ1², λ2², ρ
CONSTANT_TOLERANCE = 1e-5  # relative spread below which an estimate counts as constant
MIN_KERNEL_SIDE = 16  # LR pixels: smaller held-out images are left out of the kernel check


@dataclass(frozen=True)
class KernelCase:
    """One held-out LR image y (1×C×h×w) degraded with the kernel Λ (3,) and noise std sigma."""

    y: torch.Tensor
    kernel_params_hat: torch.Tensor
    sigma: float


def pearson(estimate: torch.Tensor, truth: torch.Tensor) -> float:
    """Pearson's correlation of two length-n vectors; 0 when either is constant (up to
    float32 round-off, CONSTANT_TOLERANCE of its magnitude)."""
    a, b = estimate.double(), truth.double()
    u, v = a - a.mean(), b - b.mean()
    if any(d.abs().max() <= CONSTANT_TOLERANCE * x.abs().max() for d, x in ((u, a), (v, b))):
        return 0.0
    return float((u * v).sum() / (u.norm() * v.norm()))


def kernel_correlations(estimates: torch.Tensor, truths: torch.Tensor) -> dict[str, float]:
    """{"r_lambda1", "r_lambda2", "r_rho"}: Pearson's r per column of n×3 Λ estimates and truths."""
    return {f"r_{name}": pearson(estimates[:, j], truths[:, j]) for j, name in enumerate(KERNEL_PARAMETERS)}


def kernel_validation_set(paths, spec: DegradationSpec, count: int, seed: int) -> list[KernelCase]:
    """`count` whole held-out images (cycled through `paths`), each cropped to a multiple of
    s, blurred with its own training-distribution kernel, downsampled and given i.i.d. noise
    from the training range (spec.min_sigma..max_sigma), unclipped like the training data.
    Seeded by `seed` only. Images whose LR side would be under MIN_KERNEL_SIDE are skipped."""
    if spec.task != "sr":
        raise ValueError("the kernel validation set is for super-resolution")
    s = spec.scale
    images = [read_image(p) for p in paths]
    images = [im for im in images if min(im.shape[-2:]) // s >= MIN_KERNEL_SIDE]
    if not images or count < 1:
        return []
    generator = torch.Generator().manual_seed(seed)
    cases = []
    for index in range(count):
        image = images[index % len(images)]
        h, w = image.shape[-2] // s * s, image.shape[-1] // s * s
        x = image[None, :, :h, :w].float() / (255 if image.dtype == torch.uint8 else 65535)
        kernel_params_hat = sample_kernel_lambdas(1, s, generator)
        hx = degrade(x, gaussian_kernel(kernel_params_hat[:, :2], kernel_params_hat[:, 2], spec.kernel_size), s, spec.downsampler)
        sigma = iid_sigma_map(1, 1, 1, spec.max_sigma, generator, min_sigma=spec.min_sigma)
        cases.append(KernelCase(add_gaussian_noise(hx, sigma, generator), kernel_params_hat[0], float(sigma)))
    return cases


@torch.no_grad()
def kernel_tracking(guide: VIRNetGuide, cases: list[KernelCase], device: torch.device) -> dict[str, float]:
    """Pearson's r of KNet's estimate against the truth on `cases` (see `kernel_correlations`)."""
    guide.eval()
    estimates = []
    for case in cases:
        eta, m = guide.kernel_posterior(case.y.to(device))
        estimates.append(torch.cat([eta[0], m]).cpu())
    guide.train()
    return kernel_correlations(torch.stack(estimates), torch.stack([c.kernel_params_hat for c in cases]))


@torch.no_grad()
def restoration_scores(guide: VIRNetGuide, batch: dict, device: torch.device) -> dict[str, float]:
    """{"val_psnr": mean PSNR (dB) of µ against x, "val_sigma_error": mean |√β − σ| in /255
    units (when the batch knows the true σ)} on a fixed validation batch."""
    guide.eval()
    psnrs, sigma_errors = [], []
    for i in range(batch["y"].shape[0]):
        post = guide.posterior(batch["y"][i : i + 1].to(device))
        mse = (post.mu.clamp(0, 1) - batch["x"][i : i + 1].to(device)).pow(2).mean().item()
        psnrs.append(10 * math.log10(1 / max(mse, 1e-12)))
        if "sigma" in batch:
            sigma_hat = post.beta.mean(dim=1, keepdim=True).sqrt()
            sigma_errors.append((sigma_hat - batch["sigma"][i : i + 1].to(device)).abs().mean().item() * 255)
    guide.train()
    scores = {"val_psnr": sum(psnrs) / len(psnrs)}
    if sigma_errors:
        scores["val_sigma_error"] = sum(sigma_errors) / len(sigma_errors)
    return scores
