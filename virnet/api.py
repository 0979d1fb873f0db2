"""The Python API: restore an image with a trained guide, or sample its posterior.

    from virnet.api import load_model, restore, sample_posterior
    result = restore(image)                       # C×H×W or B×C×H×W in [0, 1], or an ImageData
    result.image, result.sigma2_mode, result.checks[0].summary()
    draws = sample_posterior(image, n=16, model="my.safetensors")
    replicates = posterior_predictive(image, n=8)  # y_rep ~ p(y | z, σ², Λ), (z, σ², Λ) ~ q(·|y)

At test time y → SNet, KNet, RNet → (µ, β, Λ) (Sec. 4.3): µ is the restored image, β the
noise variance map (the mode of q(σ²|y), Eq. 13), (η, m) the blur kernel (Eq. 14, SR only).

What posterior draws carry: σ² and Λ have real spread (shapes α0 − 1 and κ0 − 1 fixed by the
model, ρ's std r0), so their draws are error bars, whose calibration `virnet bench calibration`
measures. Draws of z do not: q(z|y, σ², Λ) = N(µ, ε0²) has the fixed std ε0 (1e-3 for
denoising, ≈ 0.26 grey levels), set by the model (Eqs. 3, 15), not by the image.

Channels: the networks see `model_config.image_channels` channels (3 for every shipped
model). A 1-channel (grayscale) input is replicated to 3 channels for the network, and every
image-like output (µ, draws of z, 3-channel σ² maps) is averaged back to 1 channel; any
other mismatch is refused rather than silently mixed.

Large images are processed in overlapping tiles (`virnet.tiled_posterior`); for SR the noise
level and kernel are still estimated once per image. The networks run in channels_last memory
format under torch.inference_mode, in float32 or bfloat16 (`precision`, `virnet.precision`).
"""

from __future__ import annotations

import contextlib
from dataclasses import dataclass
from pathlib import Path

import pyro
import torch
from pyro import poutine

from generative.kernels import gaussian_kernel
from guides.guide import PosteriorParams, VIRNetGuide
from virnet.errors import VirnetError
from virnet.inputs import Image, load_for_task, network_input
from virnet.model_check import ModelCheck, check_residuals, standardized_residuals
from virnet.models import load_model
from virnet.predictive import predictive_draws, replicated_residuals, too_small_to_blur
from virnet.tiled_posterior import DEFAULT_OVERLAP, default_memory_budget, tile_side, tiled_posterior

__all__ = [
    "PosteriorSamples",
    "PredictiveSamples",
    "Restoration",
    "load_for_task",
    "load_model",
    "memory_estimate",
    "posterior_predictive",
    "restore",
    "sample_posterior",
]

SAMPLE_SITES = ("z", "sigma2", "lambda2", "rho")
# Peak memory of `virnet restore` on CPU, fitted to measured peaks (README, "Large images"):
# the process with torch and a model loaded; bytes per output pixel for the images held
# around the network (decoded input, y, µ, β, E[σ²], residuals, the encoded output); and the
# activations of one full tile, as a multiple of the memory budget the tile side follows.
PROCESS_BYTES = 400 * 2**20
IMAGE_BYTES_PER_PIXEL = 60
ACTIVATIONS_PER_BUDGET = 1.35
CHECK_SEED = 0  # the model check's replicates come from this private RNG stream: restore is deterministic


@dataclass
class Restoration:
    """What `restore` returns; every tensor has a batch dimension (B = 1 for a C×H×W input).

    image: B×C×H×W posterior mean µ (C as the input; H×W = s·(input size)), not clipped.
    sigma2_mode: B×Cσ×h×w β, the mode of q(σ²|y); sigma2_mean: α0β/(α0 − 2), its mean.
    kernel_params: B×3 (η1, η2, m), the estimated Λ = (λ1², λ2², ρ) (SR; None for denoising).
    kernel: B×K×K kernel image g(Λ) of Eq. 8, summing to 1 (SR; None for denoising).
    checks: per image, the standardized-residual check of the noise model.
    """

    image: torch.Tensor
    sigma2_mode: torch.Tensor
    sigma2_mean: torch.Tensor
    kernel_params: torch.Tensor | None
    kernel: torch.Tensor | None
    checks: tuple[ModelCheck, ...]


@dataclass
class PosteriorSamples:
    """n draws from the guide q(z, σ², Λ | y); the leading dimension indexes the draws.

    z: n×B×C×H×W; sigma2: n×B×Cσ×h×w; lambda2: n×B×2 and rho: n×B (SR; None for denoising).
    z_mean, z_std, sigma2_mean, sigma2_std: per-pixel mean and standard deviation over the
    draws (divisor n). Note q(z|y, σ², Λ) = N(µ, ε0²): z_std ≈ ε0 everywhere by construction,
    whatever the image, so the z draws say nothing about restoration uncertainty; sigma2 (and
    lambda2, rho) carry the model's uncertainty about the degradation.
    """

    z: torch.Tensor
    sigma2: torch.Tensor
    z_mean: torch.Tensor
    z_std: torch.Tensor
    sigma2_mean: torch.Tensor
    sigma2_std: torch.Tensor
    lambda2: torch.Tensor | None
    rho: torch.Tensor | None


@dataclass
class PredictiveSamples:
    """n posterior predictive draws; the leading dimension indexes the draws.

    y: n×B×C×h×w replicated observations y_rep ~ p(y | z, σ², Λ) (Eq. 7, the model's own
    likelihood), each from the joint draw (z, σ², Λ) ~ q(·|y) beside it: z: n×B×C×H×W,
    sigma2: n×B×Cσ×h×w, lambda2: n×B×2 and rho: n×B (SR; None for denoising).
    """

    y: torch.Tensor
    z: torch.Tensor
    sigma2: torch.Tensor
    lambda2: torch.Tensor | None
    rho: torch.Tensor | None


def restore(
    image: Image,
    model: VIRNetGuide | str | Path | None = None,
    task: str | None = None,
    scale: int | None = None,
    device: str | torch.device | None = None,
    tile: int | None = None,
    overlap: int = DEFAULT_OVERLAP,
    memory_budget: int | None = None,
    precision: str = "auto",
    progress: bool = False,
) -> Restoration:
    """Restore `image` (C×H×W or B×C×H×W in [0, 1], or an ImageData) with the guide's posterior.

    model: a loaded guide, a weights path or an embedded default's name; None takes the
    embedded default of `task` ("denoise", or "sr-x{scale}" with scale 4 when None). Pass a
    loaded guide to avoid reloading it per call. task/scale: None means the model's; when
    given they must match the model. device: where to run (default: the guide's device for a
    loaded guide, else the image's). tile: force this tile side (input pixels, rounded up to
    what RNet needs); None derives it from `memory_budget` bytes (None: the device's default).
    overlap: output pixels shared by neighbouring tiles. precision: "fp32", "bf16" or "auto"
    (bf16 where the hardware has it). progress: a progress bar over the tiles on stderr.
    Raises VirnetError (one line) for a bad image (wrong shape or type, NaN, values far from
    the [0, 1] scale), an unknown task, scale, precision or device, a model for another task,
    bad tiling options, or a model whose output is not finite.
    """
    _check_tiling_options(tile, overlap, memory_budget)
    guide = load_for_task(model, task, scale, device, like=image)
    y, channels = network_input(image, guide)
    cfg = guide.model_config
    with _inference():
        post = _finite(tiled_posterior(guide, y, tile, overlap, memory_budget, precision, progress))
        kernel, kernel_params = None, None
        if cfg.has_kernel:
            kernel = gaussian_kernel(post.eta, post.m, cfg.kernel_size)  # Eq. 8: g(Λ)
            kernel_params = torch.cat([post.eta, post.m[:, None]], dim=1)
        residuals = standardized_residuals(y, post.mu, post.beta, kernel, cfg.scale, cfg.downsampler)
        with _seeded(CHECK_SEED, y.device):
            replicated = replicated_residuals(guide, post, y)
        return Restoration(
            image=_to_channels(post.mu, channels),
            sigma2_mode=_to_channels(post.beta, channels),
            sigma2_mean=_to_channels(post.sigma2_mean(cfg.alpha0), channels),
            kernel_params=kernel_params,
            kernel=kernel,
            checks=tuple(check_residuals(residuals, replicated)),
        )


def sample_posterior(
    image: Image,
    n: int,
    model: VIRNetGuide | str | Path | None = None,
    task: str | None = None,
    scale: int | None = None,
    device: str | torch.device | None = None,
    tile: int | None = None,
    overlap: int = DEFAULT_OVERLAP,
    memory_budget: int | None = None,
    seed: int | None = None,
    precision: str = "auto",
    progress: bool = False,
) -> PosteriorSamples:
    """n draws of z and σ² (and Λ for SR) from the guide q(·|y), with per-pixel mean and std.

    The draws come from the very distributions that `VIRNetGuide.draw` builds (Eqs. 13-15),
    read from a Pyro trace of it, so the laws are never restated here. Arguments as in
    `restore`; seed: draw with a private torch RNG seeded so (the global RNG is untouched).
    The σ² (and Λ) draws are the model's uncertainty about the degradation; the z draws only
    scatter by the fixed ε0 around µ (see `PosteriorSamples`).
    """
    _check_draw_options(n, seed, tile, overlap, memory_budget)
    guide = load_for_task(model, task, scale, device, like=image)
    y, channels = network_input(image, guide)
    with _inference():
        post = _finite(tiled_posterior(guide, y, tile, overlap, memory_budget, precision, progress))
        with _seeded(seed, y.device):
            trace = poutine.trace(guide.draw).get_trace(post, y)
            draws = {name: trace.nodes[name]["fn"].sample((n,)) for name in SAMPLE_SITES if name in trace.nodes}
    z = _to_channels(draws["z"], channels, dim=2)
    sigma2 = _to_channels(draws["sigma2"], channels, dim=2)
    return PosteriorSamples(
        z=z,
        sigma2=sigma2,
        z_mean=z.mean(dim=0),
        z_std=z.std(dim=0, correction=0),
        sigma2_mean=sigma2.mean(dim=0),
        sigma2_std=sigma2.std(dim=0, correction=0),
        lambda2=draws.get("lambda2"),
        rho=draws.get("rho"),
    )


def memory_estimate(
    guide: VIRNetGuide,
    height: int,
    width: int,
    tile: int | None = None,
    memory_budget: int | None = None,
    draws: int = 0,
) -> int:
    """Rough peak bytes of restoring a height×width image with `guide` (or of drawing `draws`
    posterior samples of it): the process, the full-size images, the activations of one tile
    (the budget scaled by the share of the tile the image fills) and the draws of z and σ²."""
    cfg = guide.model_config
    output_pixels = height * width * cfg.scale**2
    budget = memory_budget or default_memory_budget(next(guide.parameters()).device)
    budget_side = tile_side(guide, None, budget)
    side = tile_side(guide, tile, budget)
    activations = ACTIVATIONS_PER_BUDGET * budget * min(height, side) * min(width, side) / budget_side**2
    samples = 4 * draws * (cfg.image_channels * output_pixels + cfg.sigma_channels * height * width)
    return int(PROCESS_BYTES + IMAGE_BYTES_PER_PIXEL * output_pixels + activations + samples)


def posterior_predictive(
    image: Image,
    n: int,
    model: VIRNetGuide | str | Path | None = None,
    task: str | None = None,
    scale: int | None = None,
    device: str | torch.device | None = None,
    tile: int | None = None,
    overlap: int = DEFAULT_OVERLAP,
    memory_budget: int | None = None,
    seed: int | None = None,
    precision: str = "auto",
) -> PredictiveSamples:
    """n replicated observations y_rep ~ p(y | z, σ², Λ) with (z, σ², Λ) ~ q(·|y).

    Pyro `Predictive`: the guide's draws replayed into the model (virnet/predictive.py).
    Arguments as in `sample_posterior`. A 1-channel input gives 1-channel replicates (the
    first channel of the 3-channel replicate: a draw with the right noise level, where an
    average of channels would not be). Raises VirnetError for an SR image too small for the
    blur kernel.
    """
    _check_draw_options(n, seed, tile, overlap, memory_budget)
    guide = load_for_task(model, task, scale, device, like=image)
    y, channels = network_input(image, guide)
    with _inference():
        post = _finite(tiled_posterior(guide, y, tile, overlap, memory_budget, precision))
        if too_small_to_blur(guide, post.mu):
            side = guide.model_config.kernel_size
            raise VirnetError(f"the image is too small to replicate through the model's {side}×{side} blur")
        with _seeded(seed, y.device):
            draws = predictive_draws(guide, post, y, n)
    first = slice(0, 1) if channels == 1 else slice(None)
    return PredictiveSamples(
        y=draws["y"][:, :, first],
        z=_to_channels(draws["z"], channels, dim=2),
        sigma2=_to_channels(draws["sigma2"], channels, dim=2),
        lambda2=draws.get("lambda2"),
        rho=draws.get("rho"),
    )


def _check_draw_options(n, seed, tile, overlap, memory_budget) -> None:
    """The number of draws, the seed and the tiling options of `sample_posterior` and
    `posterior_predictive` (VirnetError when one is not what it must be)."""
    if not _is_int(n) or n < 1:
        raise VirnetError(f"the number of draws must be a positive integer, got {n!r}")
    if seed is not None and not _is_int(seed):
        raise VirnetError(f"the seed must be an integer or None, got {seed!r}")
    _check_tiling_options(tile, overlap, memory_budget)


def _check_tiling_options(tile, overlap, memory_budget) -> None:
    if tile is not None and (not _is_int(tile) or tile < 1):
        raise VirnetError(f"the tile side must be a positive integer or None, got {tile!r}")
    if not _is_int(overlap) or overlap < 0:
        raise VirnetError(f"the overlap must be a non-negative integer (output pixels), got {overlap!r}")
    if memory_budget is not None and (not _is_int(memory_budget) or memory_budget < 1):
        raise VirnetError(f"the memory budget must be a positive integer (bytes) or None, got {memory_budget!r}")


def _is_int(value) -> bool:
    return isinstance(value, int) and not isinstance(value, bool)


def _finite(post: PosteriorParams) -> PosteriorParams:
    """`post`, after checking the networks gave finite numbers (else the model is broken)."""
    for name in ("mu", "beta", "eta", "m"):
        value = getattr(post, name)
        if value is not None and not torch.isfinite(value).all():
            raise VirnetError(
                f"the model produced NaN or infinite values ({name}) for this image: its weights are broken "
                "or the image is far from what it was trained on"
            )
    return post


def _to_channels(x: torch.Tensor, channels: int, dim: int = 1) -> torch.Tensor:
    """Average a 3-channel network output back to 1 channel for a 1-channel input."""
    if channels == 1 and x.shape[dim] == 3:
        return x.mean(dim=dim, keepdim=True)
    return x


@contextlib.contextmanager
def _inference():
    """No autograd graph, no Pyro argument validation (speed)."""
    with torch.no_grad(), pyro.validation_enabled(False):
        yield


@contextlib.contextmanager
def _seeded(seed: int | None, device: torch.device):
    """Draw from a private torch RNG stream seeded with `seed` (no-op for None)."""
    if seed is None:
        yield
        return
    devices = [device] if device.type == "cuda" else []
    with torch.random.fork_rng(devices=devices):
        torch.manual_seed(seed)
        yield
