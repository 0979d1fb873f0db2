"""The guide's posterior parameters for images of any size, tile by tile.

Large images do not fit through the networks at once; they go through
`virnet.tiling.tiled_apply` in overlapping tiles whose side follows a memory budget.
Denoising tiles the whole posterior: SNet is local. For SR, SNet averages log β over the
image and KNet pools globally, so tiles would each get their own estimate; instead β and Λ
are estimated once, on the whole low-resolution image (or its centre crop when that exceeds
the budget), and only RNet runs tile by tile with those fixed estimates.
"""

from __future__ import annotations

import math

import torch

from guides.guide import Degradation, Posterior, VIRNetGuide
from virnet.errors import VirnetError
from virnet.tiling import tile_size_for_budget, tiled_apply

DEFAULT_MEMORY_BUDGET = 2 * 2**30  # bytes of activations per tile
DEFAULT_OVERLAP = 32  # output pixels shared by neighbouring tiles
# Peak activation memory per input pixel ≈ this × the widest full-resolution feature map × s²:
# the paper denoiser (width 96) peaks at ≈ 1.8 KB per pixel on CPU (benchmarks/inference.py).
RNET_BYTES_PER_FEATURE = 20
SNET_BYTES_PER_FEATURE = 20


def tiled_posterior(
    guide: VIRNetGuide,
    y: torch.Tensor,
    tile: int | None = None,
    overlap: int = DEFAULT_OVERLAP,
    memory_budget: int = DEFAULT_MEMORY_BUDGET,
) -> Posterior:
    """`guide.posterior(y)` computed tile by tile when y (B×C×h×w) exceeds the tile side.

    An image within one tile gives exactly `guide.posterior(y)`. See the module docstring for
    how SR keeps one β and Λ per image.
    """
    cfg = guide.model_config
    s = cfg.scale
    multiple = guide.padding_multiple
    side = tile_side(guide, tile, memory_budget)
    overlap_in = min(math.ceil(overlap / s), 3 * side // 4)  # a small forced tile still advances
    if not cfg.has_kernel:
        out = tiled_apply(lambda t: _posterior_maps(guide, t), y, side, overlap_in, multiple)
        return Posterior(mu=out["mu"], beta=out["beta"])
    estimate = _degradation_estimate(guide, y, memory_budget)
    constant_beta = estimate.beta[..., :1, :1]

    def restore_tile(t: torch.Tensor) -> torch.Tensor:
        tile_estimate = Degradation(constant_beta.expand(-1, -1, *t.shape[-2:]), estimate.eta, estimate.m)
        return guide.restoration_mean(t, tile_estimate)

    mu = tiled_apply(restore_tile, y, side, overlap_in, multiple)
    return Posterior(mu=mu, beta=estimate.beta, eta=estimate.eta, m=estimate.m)


def tile_side(guide: VIRNetGuide, tile: int | None = None, memory_budget: int = DEFAULT_MEMORY_BUDGET) -> int:
    """The tile side (input pixels) `tiled_posterior` uses: `tile` rounded up to a size RNet
    accepts (s·side a multiple of 2^(levels − 1)), or, for None, the largest such side whose
    estimated activation memory fits `memory_budget` bytes (at least 64)."""
    multiple = guide.padding_multiple
    if tile is None:
        cfg = guide.guide_config
        widest = max(cfg.rnet_widths[0], cfg.snet_features)
        per_pixel = RNET_BYTES_PER_FEATURE * widest * guide.model_config.scale**2
        return tile_size_for_budget(memory_budget, per_pixel, multiple=multiple)
    if isinstance(tile, bool) or not isinstance(tile, int) or tile < 1:
        raise VirnetError(f"the tile side must be a positive integer, got {tile!r}")
    return math.ceil(tile / multiple) * multiple


def _posterior_maps(guide: VIRNetGuide, y: torch.Tensor) -> dict[str, torch.Tensor]:
    post = guide.posterior(y)
    return {"mu": post.mu, "beta": post.beta}


def _degradation_estimate(guide: VIRNetGuide, y: torch.Tensor, memory_budget: int) -> Degradation:
    """(β: B×Cσ×h×w constant per image, η: B×2, m: B) from SNet and KNet (Eqs. 13-14) on the
    whole LR image, or on its centre crop when that exceeds the memory budget."""
    per_pixel = SNET_BYTES_PER_FEATURE * max(guide.guide_config.snet_features, guide.guide_config.knet_features)
    side = tile_size_for_budget(memory_budget, per_pixel, multiple=1)
    height, width = y.shape[-2:]
    region = y
    if height * width > side * side:
        crop_h, crop_w = min(height, side), min(width, side)
        top, left = (height - crop_h) // 2, (width - crop_w) // 2
        region = y[..., top : top + crop_h, left : left + crop_w]
    estimate = guide.degradation(region)
    return Degradation(estimate.beta[..., :1, :1].expand(-1, -1, height, width), estimate.eta, estimate.m)
