"""The variance prior estimate ξ = G((y − Hx)²; p) of Eq. 5."""

import torch
import torch.nn.functional as F

MIN_XI = 1e-10


def gaussian_window(p: int, dtype: torch.dtype = torch.float32, device=None) -> torch.Tensor:
    """p×p Gaussian window summing to 1, std = 0.3·((p − 1)/2 − 1) + 0.8 (p odd)."""
    if not isinstance(p, int) or p < 1 or p % 2 == 0:
        raise ValueError(f"window size p must be a positive odd integer, got {p!r}")
    std = 0.3 * ((p - 1) / 2 - 1) + 0.8
    offsets = torch.arange(p, dtype=dtype, device=device) - (p - 1) / 2
    line = torch.exp(-(offsets**2) / (2 * std**2))
    window = torch.outer(line, line)
    return window / window.sum()


def variance_prior_estimate(
    y: torch.Tensor, hx: torch.Tensor, p: int, channels: int = 1
) -> torch.Tensor:
    """ξ = G((y − Hx)²; p) (Eq. 5): the squared residual smoothed by a p×p Gaussian window.

    y, hx: B×C×h×w. channels = 1 averages the squared residual over C first (one σ² map for
    all channels); channels = C keeps one map per channel. Reflect padding; ξ >= 1e-10.
    Returns B×channels×h×w.
    """
    if y.dim() != 4 or y.shape != hx.shape:
        raise ValueError(
            f"y and hx must be B×C×h×w of equal shape, got {tuple(y.shape)} and {tuple(hx.shape)}"
        )
    b, c, h, w = y.shape
    if channels not in (1, c):
        raise ValueError(f"channels must be 1 or the image's {c} channels, got {channels!r}")
    window = gaussian_window(p, dtype=y.dtype, device=y.device)
    r = p // 2
    if r >= h or r >= w:
        raise ValueError(f"image {h}×{w} is too small for reflect padding of a {p}×{p} window")
    squared = (y - hx) ** 2
    if channels == 1:
        squared = squared.mean(dim=1, keepdim=True)
    padded = F.pad(squared.reshape(b * channels, 1, h, w), (r, r, r, r), mode="reflect")
    smoothed = F.conv2d(padded, window.view(1, 1, p, p))
    return smoothed.view(b, channels, h, w).clamp_min(MIN_XI)
