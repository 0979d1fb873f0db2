"""The degradations that make training examples: random kernels, σ maps, and `synthesize`.

How a clean HR patch becomes a training triplet (y, x, Λ̂) with ξ, following DESIGN.md
"Synthetic training data": a random kernel Λ̂ (Eq. 27) for SR, a random σ map (Gaussian
bumps or i.i.d. levels), the model's own operator H = ↓s ∘ (∗k) (`generative.operators`)
and noise (Eq. 25, `generative.noise`), and ξ = G((y − Hx)²; p) (Eq. 5) from that same H.

σ maps are B×1×H×W (one σ shared by all channels). Random draws take an optional
torch.Generator; they are made on the generator's device (CPU without one) and then moved
to the target device, so a CPU generator gives the same numbers for CPU and CUDA images.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import torch

from generative.config import DOWNSAMPLERS, ModelConfig
from generative.kernels import gaussian_kernel, lambda_from_axes
from generative.noise import add_gaussian_noise
from generative.operators import check_scale, degrade
from generative.variance_prior import variance_prior_estimate

TRAIN_SIGMA_MAX = 75 / 255
TRAIN_SIGMA_GAP = 5 / 255
# Each task's synthetic training noise: the kind of σ map and the range of its i.i.d. σ.
# SR starts at SR_MIN_SIGMA rather than 0: at σ = 0 the variance estimate ξ of Eq. 5 sits
# on its 1e-10 floor, which no network can match from y (README, "Choices").
SR_MIN_SIGMA = 0.5 / 255
TRAINING_NOISE = {
    "denoise": {"noise": "niid", "min_sigma": 0.0, "max_sigma": TRAIN_SIGMA_MAX},
    "sr": {"noise": "iid", "min_sigma": SR_MIN_SIGMA, "max_sigma": 15 / 255},
}
NOISE_KINDS = ("niid", "iid", "bump")
MIN_TRAINING_WIDTH = 0.1


@dataclass(frozen=True)
class DegradationSpec:
    """How clean HR patches become training examples.

    task: "denoise" (scale 1, no blur) or "sr" (blur with a random kernel, downsample by
    `scale`, add i.i.d. noise). patch_size: side of the HR patch (a multiple of scale).
    noise: "niid" (half Gaussian bumps, half i.i.d.), "iid" or "bump" (denoising; SR noise
    is always "iid"). min_sigma, max_sigma: the range of the i.i.d. σ (denoising [0, 75/255],
    SR [0.5/255, 15/255]; the bumps have their own range, DESIGN.md). downsampler: "bicubic"
    (SR default) or "direct"; None for denoising. window: p of ξ (Eq. 5; 7 denoising, 11 SR).
    sigma_channels: channels of ξ (1, or 3 for per-channel real noise). kernel_size: side of
    the blur kernel (SR). kernel_patch_size: SR only, the side of a larger HR patch whose
    degradation KNet reads ("y_kernel"); the patch y is its centre (None: KNet reads y).
    Fields left as None take the task's default (`ModelConfig.for_task` and TRAINING_NOISE).
    """

    task: str = "denoise"
    scale: int = 1
    patch_size: int = 128
    noise: str | None = None
    min_sigma: float | None = None
    max_sigma: float | None = None
    downsampler: str | None = None
    window: int | None = None
    sigma_channels: int = 1
    kernel_size: int = 21
    kernel_patch_size: int | None = None

    def __post_init__(self) -> None:
        sr = self.task == "sr"
        model = ModelConfig.for_task(self.task, self.scale if sr else None)  # checks task and SR scale
        defaults = {
            **TRAINING_NOISE[self.task],
            "downsampler": model.downsampler if sr else None,
            "window": model.window,
        }
        for name, value in defaults.items():
            if getattr(self, name) is None:
                object.__setattr__(self, name, value)
        if not sr and self.scale != 1:
            raise ValueError(f"denoising has scale 1, got {self.scale!r}")
        if self.noise not in NOISE_KINDS or (sr and self.noise != "iid"):
            allowed = ("iid",) if sr else NOISE_KINDS
            raise ValueError(f"noise {self.noise!r} is not one of {allowed} for task {self.task!r}")
        if sr and self.downsampler not in DOWNSAMPLERS:
            raise ValueError(f"unknown downsampler {self.downsampler!r}; expected one of {DOWNSAMPLERS}")
        if not sr and self.downsampler is not None:
            raise ValueError("denoising has no downsampler; leave downsampler as None")
        if not 0 <= self.min_sigma <= self.max_sigma:
            raise ValueError(f"need 0 <= min_sigma <= max_sigma, got {self.min_sigma!r} and {self.max_sigma!r}")
        if not isinstance(self.window, int) or self.window < 3 or self.window % 2 == 0:
            raise ValueError(f"window p must be an odd integer >= 3, got {self.window!r}")
        if self.sigma_channels not in (1, 3):
            raise ValueError(f"sigma_channels must be 1 or 3, got {self.sigma_channels!r}")
        if not isinstance(self.kernel_size, int) or self.kernel_size < 1 or self.kernel_size % 2 == 0:
            raise ValueError(f"kernel_size must be a positive odd integer, got {self.kernel_size!r}")
        if not isinstance(self.patch_size, int) or self.patch_size % self.scale != 0:
            raise ValueError(f"patch_size must be an integer multiple of scale {self.scale}, got {self.patch_size!r}")
        if self.patch_size // self.scale < self.window or (sr and self.patch_size <= self.kernel_size // 2):
            raise ValueError(
                f"patch_size {self.patch_size} is too small for window {self.window} at scale {self.scale}"
                + (f" and kernel size {self.kernel_size}" if sr else "")
            )

        if self.kernel_patch_size is not None and (
            not sr
            or not isinstance(self.kernel_patch_size, int)
            or self.kernel_patch_size % self.scale != 0
            or self.kernel_patch_size < self.patch_size
        ):
            raise ValueError(
                f"kernel_patch_size (SR only) must be a multiple of scale {self.scale} and at least "
                f"patch_size {self.patch_size}, got {self.kernel_patch_size!r}"
            )

    @property
    def crop_size(self) -> int:
        """Side of the HR crop taken from an image: the kernel patch when there is one."""
        return self.kernel_patch_size or self.patch_size

    @property
    def lr_patch_size(self) -> int:
        """Side of the degraded patch y: patch_size // scale."""
        return self.patch_size // self.scale

    @classmethod
    def from_model_config(cls, config: ModelConfig, patch_size: int, **overrides) -> DegradationSpec:
        """The spec matching a model's task, scale, window, kernel size, downsampler and
        σ channels, so that ξ and H are those of the model's likelihood."""
        settings = {
            "task": config.task,
            "scale": config.scale,
            "patch_size": patch_size,
            "window": config.window,
            "sigma_channels": config.sigma_channels,
            "kernel_size": config.kernel_size,
            "downsampler": config.downsampler if config.task == "sr" else None,
        }
        return cls(**{**settings, **overrides})


def synthesize(x: torch.Tensor, spec: DegradationSpec, generator: torch.Generator | None = None) -> dict:
    """Degrade clean patches x (B×C×P×P in [0, 1], P = spec.crop_size) as `spec` says;
    draws on x's device.

    Returns batched "y" (B×C×h×w, unclipped), "x", "xi" (B×c×h×w, Eq. 5 with the same H
    that made y), "kernel_params_hat" (B×3 for SR, B×0 for denoising) and "sigma" (B×1×h×w). With
    a kernel patch, x is first degraded whole into "y_kernel"; the returned x is its centre
    patch (offset a multiple of s) and y = Hx plus the same noise as that part of y_kernel.
    """
    if x.dim() != 4 or x.shape[-2:] != (spec.crop_size, spec.crop_size):
        raise ValueError(f"x must be B×C×{spec.crop_size}×{spec.crop_size}, got {tuple(x.shape)}")
    batch, _, size, _ = x.shape
    if spec.task == "denoise":
        hx = x
        sigma = _denoising_sigma(batch, size, spec, generator, x)
        kernel_params_hat = x.new_zeros(batch, 0)
    else:
        kernel_params_hat = sample_kernel_lambdas(batch, spec.scale, generator, device=x.device).to(x.dtype)
        kernel = gaussian_kernel(kernel_params_hat[:, :2], kernel_params_hat[:, 2], size=spec.kernel_size)
        hx = degrade(x, kernel, spec.scale, mode=spec.downsampler)  # Eq. 26
        side = size // spec.scale
        sigma = iid_sigma_map(batch, side, side, spec.max_sigma, generator, device=x.device, min_sigma=spec.min_sigma)
    y = add_gaussian_noise(hx, sigma, generator)
    extra = {}
    if spec.crop_size != spec.patch_size:
        offset = (spec.crop_size - spec.patch_size) // 2 // spec.scale  # LR pixels
        lr, hr = slice(offset, offset + spec.lr_patch_size), slice(offset * spec.scale, offset * spec.scale + spec.patch_size)
        extra["y_kernel"] = y
        x = x[..., hr, hr]
        noise, sigma = (y - hx)[..., lr, lr], sigma[..., lr, lr]
        hx = degrade(x, kernel, spec.scale, mode=spec.downsampler)
        y = hx + noise
    xi = variance_prior_estimate(y, hx, spec.window, spec.sigma_channels)  # Eq. 5
    return {"y": y, "x": x, "xi": xi, "kernel_params_hat": kernel_params_hat, "sigma": sigma.to(x.dtype), **extra}


def sample_kernel_lambdas(
    batch: int, scale: int, generator: torch.Generator | None = None, *, device=None
) -> torch.Tensor:
    """Random training kernels as Λ (B×3), following Eq. 27: l1, l2 ~ U[0.1, s], θ ~ U[0, π).

    The paper draws l1, l2 from (0, s]; the lower bound MIN_TRAINING_WIDTH = 0.1 keeps
    away from a degenerate zero-width kernel (at 0.1 the kernel is already a delta).
    Samples are drawn on the generator's device (CPU without one) and moved to `device`.
    """
    if not isinstance(batch, int) or batch < 1:
        raise ValueError(f"batch must be a positive integer, got {batch!r}")
    check_scale(scale)
    gen_device = generator.device if generator is not None else None
    u = torch.rand(batch, 3, generator=generator, device=gen_device, dtype=torch.float64)
    widths = MIN_TRAINING_WIDTH + (scale - MIN_TRAINING_WIDTH) * u[:, :2]
    lam = lambda_from_axes(widths[:, 0], widths[:, 1], math.pi * u[:, 2])
    return lam.to(dtype=torch.get_default_dtype(), device=device)


def training_sigma_map(
    batch: int, height: int, width: int, generator: torch.Generator | None = None, *, device=None
) -> torch.Tensor:
    """Non-i.i.d. training σ maps (B×1×H×W): one 2-D Gaussian bump per map.

    Centre uniform in the patch; std = u·H along rows and u·W along columns with
    u ~ U[1/4, 3/4] (an isotropic bump of std in [P/4, 3P/4] for a P×P patch). Each bump is
    min-max normalised to [lo, hi], with lo, hi ~ U[0, 75/255] sorted and hi += 5/255.
    """
    check_sizes(batch, height, width)
    u = _uniform((batch, 6), generator)
    centre_y, centre_x = u[:, 0] * height, u[:, 1] * width
    spread = 0.25 + 0.5 * u[:, 2]
    lo, hi = torch.sort(u[:, 3:5] * TRAIN_SIGMA_MAX, dim=1).values.unbind(1)
    hi = hi + TRAIN_SIGMA_GAP
    rows = torch.arange(height, dtype=u.dtype, device=u.device).view(1, height, 1)
    cols = torch.arange(width, dtype=u.dtype, device=u.device).view(1, 1, width)
    exponent = ((rows - centre_y.view(-1, 1, 1)) / (spread.view(-1, 1, 1) * height)) ** 2
    exponent = exponent + ((cols - centre_x.view(-1, 1, 1)) / (spread.view(-1, 1, 1) * width)) ** 2
    bump = torch.exp(-0.5 * exponent).flatten(1)
    low, high = bump.min(dim=1, keepdim=True).values, bump.max(dim=1, keepdim=True).values
    unit = (bump - low) / (high - low).clamp_min(torch.finfo(bump.dtype).tiny)
    sigma = lo.view(-1, 1) + (hi - lo).view(-1, 1) * unit
    return sigma.view(batch, 1, height, width).to(device)


def iid_sigma_map(
    batch: int,
    height: int,
    width: int,
    max_sigma: float = TRAIN_SIGMA_MAX,
    generator: torch.Generator | None = None,
    *,
    device=None,
    min_sigma: float = 0.0,
) -> torch.Tensor:
    """I.i.d. σ maps (B×1×H×W): one σ ~ U[min_sigma, max_sigma] per image, constant over it."""
    check_sizes(batch, height, width)
    if not 0 <= min_sigma <= max_sigma:
        raise ValueError(f"need 0 <= min_sigma <= max_sigma, got {min_sigma!r} and {max_sigma!r}")
    sigma = min_sigma + _uniform((batch, 1, 1, 1), generator) * (max_sigma - min_sigma)
    return sigma.expand(batch, 1, height, width).to(device)


def _denoising_sigma(batch, size, spec, generator, like) -> torch.Tensor:
    """B×1×P×P σ maps: Gaussian bumps, i.i.d. levels, or half and half ("niid")."""
    if spec.noise == "iid":
        return iid_sigma_map(batch, size, size, spec.max_sigma, generator, device=like.device, min_sigma=spec.min_sigma)
    bumps = training_sigma_map(batch, size, size, generator, device=like.device)
    if spec.noise == "bump":
        return bumps
    levels = iid_sigma_map(batch, size, size, spec.max_sigma, generator, device=like.device, min_sigma=spec.min_sigma)
    draw_device = generator.device if generator is not None else None
    use_bump = torch.rand(batch, generator=generator, device=draw_device) < 0.5
    return torch.where(use_bump.to(like.device).view(-1, 1, 1, 1), bumps, levels)


def _uniform(shape: tuple[int, ...], generator: torch.Generator | None) -> torch.Tensor:
    """U[0, 1) samples of the default dtype, on the generator's device (CPU without one)."""
    device = generator.device if generator is not None else None
    return torch.rand(shape, generator=generator, device=device)


def check_sizes(batch: int, height: int, width: int) -> None:
    """Batch, height and width of a σ map must be positive integers."""
    for name, value in (("batch", batch), ("height", height), ("width", width)):
        if not isinstance(value, int) or value < 1:
            raise ValueError(f"{name} must be a positive integer, got {value!r}")
