"""The guide's posterior parameters for images of any size, tile by tile, at speed.

Large images do not fit through the networks at once; they go through
`virnet.tiling.tiled_apply` in overlapping tiles whose side follows a memory budget and the
guide's activation memory per pixel, traced once per architecture on the meta device.
Denoising tiles the whole posterior: SNet is local. For SR, SNet averages log β over the
image and KNet pools globally, so tiles would each get their own estimate; instead the
degradation (β, η, m) is estimated once, on the whole low-resolution image (or its centre
crop when that exceeds the budget), and only the restoration runs tile by tile with it.

Speed: the networks run under torch.inference_mode, with weights and tiles in channels_last
memory format (on a 2-core AVX2 CPU the shipped denoiser ran 1.9× faster than in NCHW), and
in bfloat16 autocast when the precision says so (`virnet.precision`).
"""

from __future__ import annotations

import contextlib
import functools
import math
import sys
from collections.abc import Iterator

import torch
from tqdm import tqdm

from generative.config import ModelConfig
from guides.guide import Degradation, GuideConfig, PosteriorParams, VIRNetGuide
from virnet.errors import VirnetError
from virnet.precision import autocast, resolve_precision
from virnet.tiling import axis_tiles, peak_bytes_per_pixel, tile_size_for_budget, tiled_apply

DEFAULT_OVERLAP = 32  # output pixels shared by neighbouring tiles
CPU_MEMORY_BUDGET = 2**30  # bytes of activations per tile on the CPU
CUDA_MEMORY_FRACTION = 0.25  # of the GPU's free memory, per tile
# What the kernels need beyond the traced tensors (workspaces, reorders, allocator slack):
# measured on CPU as 1.2× (paper-size denoiser) to 1.9× (shipped denoiser) of the traced
# peak (benchmarks/inference.py prints both).
KERNEL_MEMORY_FACTOR = 2.0
TRACE_SIDE = 64  # input side of the meta-device trace, rounded up to the padding multiple


def tiled_posterior(
    guide: VIRNetGuide,
    y: torch.Tensor,
    tile: int | None = None,
    overlap: int = DEFAULT_OVERLAP,
    memory_budget: int | None = None,
    precision: str = "fp32",
    progress: bool = False,
    channels_last: bool = True,
) -> PosteriorParams:
    """`guide.posterior(y)` computed tile by tile when y (B×C×h×w) exceeds the tile side.

    tile, memory_budget: see `tile_side`. precision: "fp32", "bf16" or "auto"
    (`virnet.precision`). progress: a tqdm bar over the tiles (on a terminal, for more than
    one tile). channels_last: run the networks in that memory format (False: NCHW). An image
    within one tile gives `guide.posterior(y)`. See the module docstring for how SR keeps one
    degradation estimate per image. The returned tensors are ordinary (not inference) tensors.
    """
    cfg = guide.model_config
    s = cfg.scale
    side = tile_side(guide, tile, memory_budget)
    layout = torch.channels_last if channels_last else torch.contiguous_format
    bar = functools.partial(tqdm, desc="tiles", unit="tile", leave=False, file=sys.stderr, disable=None)
    tiling = dict(
        tile=side, overlap=_input_overlap(overlap, s, side), multiple=guide.padding_multiple, memory_format=layout,
        progress=bar if progress else None,
    )
    with _memory_format(guide, layout), autocast(resolve_precision(precision, y.device), y.device):
        if not cfg.has_kernel:
            out = tiled_apply(lambda t: _posterior_maps(guide, t), y, **tiling)
            return PosteriorParams(mu=out["mu"], beta=out["beta"])
        # SNet and KNet need less per LR pixel than the whole posterior: a budget-sized tile fits.
        estimate = _degradation_estimate(guide, y, tile_side(guide, None, memory_budget) ** 2)
        constant_beta = estimate.beta[..., :1, :1]

        def restore_tile(t: torch.Tensor) -> torch.Tensor:
            tile_estimate = Degradation(constant_beta.expand(-1, -1, *t.shape[-2:]), estimate.eta, estimate.m)
            return guide.restoration_mean(t, tile_estimate)

        mu = tiled_apply(restore_tile, y, **tiling)
    beta = constant_beta.expand(-1, -1, *y.shape[-2:])
    return PosteriorParams(mu=mu, beta=beta, eta=estimate.eta, m=estimate.m)


def tile_side(guide: VIRNetGuide, tile: int | None = None, memory_budget: int | None = None) -> int:
    """The tile side (input pixels) `tiled_posterior` uses: `tile` rounded up to a multiple of
    `guide.padding_multiple`, or, for None, the largest such side whose activation memory
    (`bytes_per_pixel`) fits `memory_budget` bytes (None: `default_memory_budget` of the
    guide's device), at least 64."""
    multiple = guide.padding_multiple
    if tile is None:
        if memory_budget is None:
            memory_budget = default_memory_budget(next(guide.parameters()).device)
        return tile_size_for_budget(memory_budget, bytes_per_pixel(guide), multiple=multiple)
    if isinstance(tile, bool) or not isinstance(tile, int) or tile < 1:
        raise VirnetError(f"the tile side must be a positive integer, got {tile!r}")
    return math.ceil(tile / multiple) * multiple


def tile_layout(
    guide: VIRNetGuide, height: int, width: int, tile: int | None = None, overlap: int = DEFAULT_OVERLAP,
    memory_budget: int | None = None,
) -> tuple[tuple[int, list[int]], tuple[int, list[int]]]:
    """((tile height, row starts), (tile width, column starts)) in which `tiled_posterior` cuts
    an input of height×width pixels (`virnet.tiling.axis_tiles`)."""
    side = tile_side(guide, tile, memory_budget)
    inner = _input_overlap(overlap, guide.model_config.scale, side)
    multiple = guide.padding_multiple
    return axis_tiles(height, side, inner, multiple), axis_tiles(width, side, inner, multiple)


def tile_count(
    guide: VIRNetGuide, height: int, width: int, tile: int | None = None, overlap: int = DEFAULT_OVERLAP,
    memory_budget: int | None = None,
) -> int:
    """How many tiles `tiled_posterior` cuts an input of height×width pixels into."""
    (_, rows), (_, cols) = tile_layout(guide, height, width, tile, overlap, memory_budget)
    return len(rows) * len(cols)


def bytes_per_pixel(guide: VIRNetGuide) -> float:
    """Estimated peak memory of `guide.posterior` per input pixel: the tensor bytes traced on
    the meta device (in channels_last) times KERNEL_MEMORY_FACTOR."""
    return KERNEL_MEMORY_FACTOR * traced_bytes_per_pixel(guide.model_config, guide.guide_config)


@functools.lru_cache(maxsize=64)
def traced_bytes_per_pixel(model_config: ModelConfig, guide_config: GuideConfig) -> float:
    """Peak bytes of the tensors alive during one posterior pass of this architecture, per
    input pixel, traced on the meta device (instant; nothing is computed)."""
    with torch.device("meta"):
        twin = VIRNetGuide(model_config, guide_config).to(memory_format=torch.channels_last)
        side = math.ceil(TRACE_SIDE / twin.padding_multiple) * twin.padding_multiple
        y = torch.empty(1, model_config.image_channels, side, side).contiguous(memory_format=torch.channels_last)
    return peak_bytes_per_pixel(twin.posterior, y)


def default_memory_budget(device: torch.device) -> int:
    """Bytes of activations per tile: CPU_MEMORY_BUDGET on the CPU, CUDA_MEMORY_FRACTION of
    the free memory (at least CPU_MEMORY_BUDGET) on a GPU."""
    if device.type == "cuda":
        free, _ = torch.cuda.mem_get_info(device)
        return max(CPU_MEMORY_BUDGET, int(CUDA_MEMORY_FRACTION * free))
    return CPU_MEMORY_BUDGET


def _input_overlap(overlap: int, scale: int, side: int) -> int:
    """Output overlap in input pixels, at most 3/4 of a tile so that a small forced tile still advances."""
    return min(math.ceil(overlap / scale), 3 * side // 4)


def _posterior_maps(guide: VIRNetGuide, y: torch.Tensor) -> dict[str, torch.Tensor]:
    post = guide.posterior(y)
    return {"mu": post.mu, "beta": post.beta}


def _degradation_estimate(guide: VIRNetGuide, y: torch.Tensor, max_pixels: int) -> Degradation:
    """`guide.degradation` of the whole LR image y (B×C×h×w), or of its centre crop of at most
    `max_pixels` pixels; ordinary tensors."""
    height, width = y.shape[-2:]
    region = y
    if height * width > max_pixels:
        side = math.isqrt(max_pixels)
        crop_h, crop_w = min(height, side), min(width, side)
        top, left = (height - crop_h) // 2, (width - crop_w) // 2
        region = y[..., top : top + crop_h, left : left + crop_w]
    with torch.inference_mode():
        estimate = guide.degradation(region.contiguous(memory_format=torch.channels_last))
    with torch.inference_mode(False):
        return Degradation(*(None if t is None else t.clone() for t in (estimate.beta, estimate.eta, estimate.m)))


@contextlib.contextmanager
def _memory_format(guide: VIRNetGuide, layout: torch.memory_format) -> Iterator[None]:
    """The guide's 4-D weights in `layout` for the duration, back in NCHW afterwards (no-op
    when they are in `layout` already)."""
    if all(p.is_contiguous(memory_format=layout) for p in guide.parameters() if p.ndim == 4):
        yield
        return
    guide.to(memory_format=layout)
    try:
        yield
    finally:
        guide.to(memory_format=torch.contiguous_format)
