"""`virnet demo`: denoise a sample photo corrupted by spatially varying noise, no data needed.

scikit-image's astronaut (cropped around the face) gets the non-i.i.d. noise of Table 1,
Case 1 (a σ map shaped like MATLAB's peaks, σ ∈ [10, 75]/255, one σ for all channels, not
clipped); the default "denoise" model restores it. One figure shows noisy | restored |
true σ | estimated σ̂ = √β | standardized residuals, and PSNR/SSIM are printed.
"""

from __future__ import annotations

import argparse
import math
import os
import uuid
from pathlib import Path

import numpy as np
import torch
from matplotlib.figure import Figure
from skimage import data as sample_images

from benchmarks.cases import table1_sigma_map
from benchmarks.metrics import psnr_rgb, ssim_rgb
from cli.outputs import check_writable
from generative.noise import add_gaussian_noise
from virnet.api import load_for_task, restore
from virnet.devices import resolve_device
from virnet.errors import VirnetError
from virnet.model_check import standardized_residuals

DEFAULT_FIGURE = Path("virnet-demo.png")
DEFAULT_SIZE = 256
FACE_CENTRE = (148, 248)  # (row, column) of the astronaut's face in the 512×512 photo
NOISE_CASE = 1
RESIDUAL_RANGE = 4.0


def add_parser(subparsers) -> None:
    parser = subparsers.add_parser(
        "demo",
        help="denoise a sample photo with synthetic non-i.i.d. noise and draw a figure",
        description="Corrupt scikit-image's astronaut with spatially varying Gaussian noise (Table 1, "
        "Case 1), restore it with the default denoising model and write one figure.",
    )
    parser.add_argument("-o", "--output", type=Path, default=DEFAULT_FIGURE, metavar="FIG.png", help="figure to write")
    parser.add_argument("--size", type=int, default=DEFAULT_SIZE, help="side of the crop, 16 to 512 (default 256)")
    parser.add_argument("--seed", type=int, default=0, help="seed of the noise")
    parser.add_argument("--model", metavar="NAME|PATH", help="denoising model (default: the embedded 'denoise')")
    parser.add_argument("--device", default="auto", help="cpu, cuda, cuda:N or auto")
    parser.add_argument("--overwrite", action="store_true", help="replace an existing figure")
    parser.set_defaults(run=run_demo)


def run_demo(args: argparse.Namespace) -> int:
    if args.output.suffix.lower() != ".png":
        raise VirnetError(f"the demo figure must be a .png file, got {args.output}")
    if not args.output.parent.is_dir():
        raise VirnetError(f"cannot write {args.output}: folder {args.output.parent} does not exist")
    check_writable([args.output], args.overwrite)
    guide = load_for_task(args.model, "denoise", None, resolve_device(args.device))
    clean = sample_photo(args.size)
    sigma = table1_sigma_map(NOISE_CASE, args.size, args.size)
    generator = torch.Generator().manual_seed(args.seed)
    noisy = add_gaussian_noise(clean[None], sigma[None, None], generator)[0]
    result = restore(noisy, guide)
    restored = result.image[0].cpu()
    sigma_hat = result.sigma2_mode[0, 0].sqrt().cpu()
    residuals = standardized_residuals(noisy[None], restored[None], result.sigma2_mode.cpu())[0]
    scores = {
        "noisy": (psnr_rgb(noisy, clean), ssim_rgb(noisy, clean)),
        "restored": (psnr_rgb(restored, clean), ssim_rgb(restored, clean)),
    }
    figure = demo_figure(noisy, restored, sigma, sigma_hat, residuals, scores)
    _save_atomically(figure, args.output)
    for label, (psnr, ssim) in scores.items():
        print(f"{label:>8}: PSNR {psnr:.2f} dB, SSIM {ssim:.4f}")
    print(f"model check: {result.checks[0].summary()}")
    print(f"wrote {args.output}")
    return 0


def sample_photo(size: int) -> torch.Tensor:
    """A size×size crop of scikit-image's astronaut around the face: 3×size×size in [0, 1]."""
    photo = sample_images.astronaut()
    height, width = photo.shape[:2]
    if not 16 <= size <= min(height, width):
        raise VirnetError(f"--size must be between 16 and {min(height, width)}, got {size}")
    top = min(max(FACE_CENTRE[0] - size // 2, 0), height - size)
    left = min(max(FACE_CENTRE[1] - size // 2, 0), width - size)
    crop = photo[top : top + size, left : left + size].astype(np.float32) / 255
    return torch.from_numpy(crop.transpose(2, 0, 1).copy())


def demo_figure(
    noisy: torch.Tensor,
    restored: torch.Tensor,
    sigma: torch.Tensor,
    sigma_hat: torch.Tensor,
    residuals: torch.Tensor,
    scores: dict[str, tuple[float, float]],
) -> Figure:
    """Five panels: noisy | restored | true σ | estimated σ̂ | standardized residuals.

    noisy, restored: 3×H×W; sigma, sigma_hat: H×W in [0, 1] scale (shown ×255 on one colour
    scale, up to the larger of max σ and the 99th percentile of σ̂); residuals: C×H×W, shown as their channel mean × √C, which is again N(0, 1) when
    the noise model holds.
    """
    figure = Figure(figsize=(20, 4.6), layout="constrained")
    axes = figure.subplots(1, 5)
    for ax, image, (label, (psnr, ssim)) in zip(axes[:2], (noisy, restored), scores.items()):
        ax.imshow(image.clamp(0, 1).permute(1, 2, 0).numpy())
        ax.set_title(f"{label}: {psnr:.2f} dB / SSIM {ssim:.3f}")
    top = 255 * max(sigma.max().item(), sigma_hat.quantile(0.99).item())  # a few outliers do not set the scale
    for ax, image, title in ((axes[2], sigma, "true σ (×255)"), (axes[3], sigma_hat, "estimated σ̂ = √β (×255)")):
        shown = ax.imshow(255 * image.numpy(), cmap="viridis", vmin=0, vmax=top)
        ax.set_title(title)
        figure.colorbar(shown, ax=ax, shrink=0.8)
    combined = residuals.mean(dim=0) * math.sqrt(residuals.shape[0])
    shown = axes[4].imshow(combined.numpy(), cmap="RdBu_r", vmin=-RESIDUAL_RANGE, vmax=RESIDUAL_RANGE)
    axes[4].set_title(f"standardized residuals (std {combined.std().item():.2f})")
    figure.colorbar(shown, ax=axes[4], shrink=0.8)
    for ax in axes:
        ax.set_axis_off()
    return figure


def _save_atomically(figure: Figure, path: Path) -> None:
    """Render to a hidden file beside `path`, then rename it over `path`."""
    temporary = path.with_name(f".{path.name}.{uuid.uuid4().hex[:12]}.part")
    try:
        figure.savefig(temporary, format="png", dpi=100)
        os.replace(temporary, path)
    finally:
        temporary.unlink(missing_ok=True)
