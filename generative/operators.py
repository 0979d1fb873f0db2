"""The forward degradation operator H = ↓s ∘ (∗k) (Eqs. 7, 26), stateless.

This one operator is used both by the Pyro model's likelihood and by data synthesis.
"""

import torch
import torch.nn.functional as F
from scipy.fft import next_fast_len

from generative.config import DOWNSAMPLERS


def blur(x: torch.Tensor, kernel: torch.Tensor) -> torch.Tensor:
    """2-D convolution x ∗ k with reflect padding, one kernel per batch element.

    x: B×C×H×W; kernel: B×K×K (or 1×K×K, shared by the batch), K odd and K//2 < H, W.
    Returns B×C×H×W. This is a true convolution (the kernel is flipped), so an impulse
    image gives back the kernel itself.

    Computed as a product of spectra (FFT, in float32 or float64): the same operator as a
    direct convolution up to rounding, and 2-4× faster for the 21×21 kernels of
    one-image-at-a-time data synthesis (README, "Speed").
    """
    check_image(x)
    if kernel.dim() != 3 or kernel.shape[-1] != kernel.shape[-2] or kernel.shape[-1] % 2 == 0:
        raise ValueError(f"kernel must be B×K×K with K odd, got shape {tuple(kernel.shape)}")
    b, c, h, w = x.shape
    if kernel.shape[0] not in (1, b):
        raise ValueError(f"kernel batch {kernel.shape[0]} does not match image batch {b}")
    r = kernel.shape[-1] // 2
    if r >= h or r >= w:
        raise ValueError(f"image {h}×{w} is too small for reflect padding of a {2 * r + 1}×{2 * r + 1} kernel")
    dtype = x.dtype if x.dtype in (torch.float32, torch.float64) else torch.float32
    padded = F.pad(x.to(dtype), (r, r, r, r), mode="reflect")
    # A circular convolution of at least the padded size; its samples from 2r on see no wrap-around.
    size = (next_fast_len(h + 2 * r, real=True), next_fast_len(w + 2 * r, real=True))
    spectrum = torch.fft.rfft2(padded, s=size) * torch.fft.rfft2(kernel.to(dtype), s=size)[:, None]
    blurred = torch.fft.irfft2(spectrum, s=size)[..., 2 * r : 2 * r + h, 2 * r : 2 * r + w]
    return blurred.to(x.dtype)


def downsample(x: torch.Tensor, scale: int, mode: str = "direct") -> torch.Tensor:
    """Downsample x (B×C×H×W) by an integer factor s to B×C×(H//s)×(W//s).

    The image is first cropped to a multiple of s. "direct" keeps the upper-left pixel of
    each s×s block (Eq. 26); "bicubic" is antialiased bicubic interpolation (imresize-style).
    Scale 1 is the identity.
    """
    check_image(x)
    check_scale(scale)
    if mode not in DOWNSAMPLERS:
        raise ValueError(f"unknown downsample mode {mode!r}; expected one of {DOWNSAMPLERS}")
    if scale == 1:
        return x
    h, w = x.shape[-2] // scale, x.shape[-1] // scale
    if h == 0 or w == 0:
        raise ValueError(f"image {x.shape[-2]}×{x.shape[-1]} is smaller than the scale {scale}")
    cropped = x[..., : h * scale, : w * scale]
    if mode == "direct":
        return cropped[..., ::scale, ::scale]
    return F.interpolate(cropped, size=(h, w), mode="bicubic", align_corners=False, antialias=True)


def degrade(
    x: torch.Tensor, kernel: torch.Tensor | None, scale: int, mode: str = "direct"
) -> torch.Tensor:
    """H x = (x ∗ k) ↓s (Eq. 26 without noise). x: B×C×H×W, kernel: B×K×K or None (k = δ).

    Returns B×C×(H//s)×(W//s).
    """
    blurred = x if kernel is None else blur(x, kernel)
    return downsample(blurred, scale, mode)


def check_image(x: torch.Tensor) -> None:
    """x must be a batch of images, B×C×H×W."""
    if x.dim() != 4:
        raise ValueError(f"image must be B×C×H×W, got shape {tuple(x.shape)}")


def check_scale(scale: int) -> None:
    """s must be a positive integer (1: no downsampling)."""
    if not isinstance(scale, int) or scale < 1:
        raise ValueError(f"scale must be a positive integer, got {scale!r}")
