"""Tiled inference: run an image-to-image function over overlapping tiles and blend them.

Large images do not fit through a network at once; `tiled_apply` feeds it one tile at a time
and blends the tile outputs with a raised-cosine window in the overlaps, so no seam shows.
`tile_size_for_budget` turns a memory budget into a tile size, and `peak_bytes_per_pixel`
measures what a function needs per pixel, on the meta device (no arithmetic is done).
"""

from __future__ import annotations

import math
import weakref
from collections.abc import Callable, Iterable
from dataclasses import dataclass

import torch
import torch.nn.functional as F
from torch.utils._python_dispatch import TorchDispatchMode
from torch.utils._pytree import tree_leaves

from virnet.heap import reuse_freed_memory

Outputs = torch.Tensor | dict[str, torch.Tensor]
Progress = Callable[[Iterable], Iterable]  # wraps the iterable of tiles, e.g. functools.partial(tqdm, ...)


@dataclass
class _Accumulator:
    """One output being assembled: B×C'×(H·s)×(W·s) sum, its scale s, per-tile 1-D windows."""

    output: torch.Tensor
    scale: int
    row_windows: list[torch.Tensor]
    col_windows: list[torch.Tensor]


def tiled_apply(
    fn: Callable[[torch.Tensor], Outputs],
    image: torch.Tensor,
    tile: int = 256,
    overlap: int = 32,
    multiple: int = 1,
    memory_format: torch.memory_format = torch.contiguous_format,
    progress: Progress | None = None,
) -> Outputs:
    """Apply `fn` to `image` (B×C×H×W) tile by tile and blend the results.

    `fn` maps a B×C×h×w tile to a B×C'×(h·s)×(w·s) tensor, or to a dict of such tensors,
    each with its own channel count C' and integer scale s ≥ 1 (e.g. a restored image at
    s = 4 and a 1-channel σ map at s = 1); s is read from the shapes of the first tile's
    outputs. The result has the same form as `fn`'s: B×C'×(H·s)×(W·s) per output.

    Tiles are at most `tile`×`tile` input pixels and overlap their neighbours by at least
    `overlap` pixels; along each axis they are as few as that allows and no larger than needed
    to cover it (`axis_tiles`). Each tile is padded on its bottom/right edges (reflect, or replicate
    when too small) so its height and width are multiples of `multiple`, and the padding is
    cropped from the outputs. In an overlap, each output pixel is a weighted mean of the
    tiles covering it, weighted by a separable raised-cosine ramp of length overlap·s that
    falls towards a tile's inner edges; the weights at every output pixel sum to one. Local
    operations whose receptive field is smaller than `overlap` therefore match the untiled
    result up to the small weight given to tile borders. An image that fits in one tile and
    needs no padding goes to `fn` whole and a copy of `fn`'s result is returned.

    `fn` runs under torch.inference_mode() on tiles in `memory_format`, copied into one
    reused buffer; its outputs are blended in place into outputs allocated once (ordinary
    tensors, on the device and with the dtype of `fn`'s outputs), and on the CPU freed memory
    is kept for the next tile (`virnet.heap`). `progress`, if given, wraps the list of tiles
    (e.g. a tqdm bar). Raises ValueError for tile ≤ overlap, a tile that is not a multiple of
    `multiple`, or outputs whose shapes are not integer multiples of the tile's.
    """
    _check_tiling(tile, overlap, multiple)
    if image.ndim != 4:
        raise ValueError(f"image must be B×C×H×W, got shape {tuple(image.shape)}")
    batch, _, height, width = image.shape
    if height <= tile and width <= tile and height % multiple == 0 and width % multiple == 0:
        with torch.inference_mode():
            returned = fn(image.contiguous(memory_format=memory_format))
        with torch.inference_mode(False):  # ordinary tensors, which callers may change in place
            if isinstance(returned, dict):
                return {key: value.clone(memory_format=torch.contiguous_format) for key, value in returned.items()}
            return returned.clone(memory_format=torch.contiguous_format)
    tile_h, rows = axis_tiles(height, tile, overlap, multiple)
    tile_w, cols = axis_tiles(width, tile, overlap, multiple)
    padded = _padded_size(tile_h, tile_w, multiple)
    source = torch.empty_like(image[..., :tile_h, :tile_w], memory_format=memory_format)
    accumulators: dict[str | None, _Accumulator] = {}

    def add_tile(i: int, j: int) -> None:
        top, left = rows[i], cols[j]
        source.copy_(image[..., top : top + tile_h, left : left + tile_w])
        with torch.inference_mode():
            returned = fn(_pad_to_multiple(source, multiple).contiguous(memory_format=memory_format))
        results = returned if isinstance(returned, dict) else {None: returned}
        if not accumulators:
            for key, value in results.items():
                accumulators[key] = _new_accumulator(key, value, padded, (tile_h, tile_w), (height, width), rows, cols, overlap)
        if results.keys() != accumulators.keys():
            raise ValueError(f"fn returned keys {list(results)} for one tile, {list(accumulators)} for another")
        for key, value in results.items():
            acc = accumulators[key]
            s = acc.scale
            _check_output(key, value, (batch, acc.output.shape[1], padded[0] * s, padded[1] * s))
            region = acc.output[..., top * s : (top + tile_h) * s, left * s : (left + tile_w) * s]
            window = acc.row_windows[i][:, None] * acc.col_windows[j][None, :]
            region.addcmul_(value[..., : tile_h * s, : tile_w * s], window)

    tiles = [(i, j) for i in range(len(rows)) for j in range(len(cols))]
    with torch.no_grad(), reuse_freed_memory():
        for i, j in progress(tiles) if progress is not None else tiles:
            add_tile(i, j)  # the tile's activations and outputs are freed when it returns
    if None in accumulators:
        return accumulators[None].output
    return {key: acc.output for key, acc in accumulators.items()}


def peak_bytes_per_pixel(fn: Callable[[torch.Tensor], object], tile: torch.Tensor) -> float:
    """Peak bytes of the tensors `fn` holds at once on `tile` (B×C×h×w), per pixel of it.

    Meant for a `tile` (and `fn`'s weights) on the meta device, where the shapes propagate
    but nothing is computed: every storage an operation creates counts from its creation
    until it is freed, under torch.inference_mode(). Memory that kernels use internally
    (workspaces, reorders) is not seen; activation memory grows linearly with the pixels.
    """
    with torch.inference_mode(), _PeakTensorBytes() as tracker:
        fn(tile)
    return tracker.peak / (tile.shape[-2] * tile.shape[-1])


class _PeakTensorBytes(TorchDispatchMode):
    """Tracks the bytes of live storages created by the operations run under it, and their peak."""

    def __init__(self):
        super().__init__()
        self.live = 0
        self.peak = 0
        self._seen: set[int] = set()

    def _freed(self, key: int, nbytes: int) -> None:
        self.live -= nbytes
        self._seen.discard(key)

    def __torch_dispatch__(self, func, types, args=(), kwargs=None):
        out = func(*args, **(kwargs or {}))
        for leaf in tree_leaves(out):
            if isinstance(leaf, torch.Tensor):
                storage = leaf.untyped_storage()
                key = storage._cdata
                if key not in self._seen:
                    self._seen.add(key)
                    self.live += storage.nbytes()
                    weakref.finalize(storage, self._freed, key, storage.nbytes())
        self.peak = max(self.peak, self.live)
        return out


def tile_size_for_budget(budget_bytes: int, bytes_per_pixel: float, multiple: int = 8, minimum: int = 64) -> int:
    """Largest square tile side whose memory cost fits a budget.

    `bytes_per_pixel` is the peak memory that `fn` needs per input pixel of a tile (all
    images of the batch and all intermediate activations together), e.g. measured once on
    a trial tile as peak allocated bytes / (tile_h·tile_w). The side is
    floor(sqrt(budget_bytes / bytes_per_pixel)) rounded down to a multiple of `multiple`,
    but never below `minimum` rounded up to a multiple (so a too-small budget still gives
    a usable tile, which may then exceed the budget).
    """
    if budget_bytes <= 0 or bytes_per_pixel <= 0:
        raise ValueError(f"budget_bytes and bytes_per_pixel must be positive, got {budget_bytes} and {bytes_per_pixel}")
    if multiple < 1 or minimum < 1:
        raise ValueError(f"multiple and minimum must be at least 1, got {multiple} and {minimum}")
    side = math.isqrt(int(budget_bytes / bytes_per_pixel))
    floor = math.ceil(minimum / multiple) * multiple
    return max(side - side % multiple, floor)


def _check_tiling(tile: int, overlap: int, multiple: int) -> None:
    if overlap < 0 or multiple < 1:
        raise ValueError(f"overlap must be ≥ 0 and multiple ≥ 1, got overlap={overlap}, multiple={multiple}")
    if tile <= overlap:
        raise ValueError(f"tile ({tile}) must be larger than overlap ({overlap})")
    if tile % multiple:
        raise ValueError(f"tile ({tile}) must be a multiple of {multiple}")


def axis_tiles(length: int, tile: int, overlap: int, multiple: int = 1) -> tuple[int, list[int]]:
    """(side, start offsets) of the tiles along an axis of `length` pixels: the fewest tiles of
    at most `tile` pixels that overlap by at least `overlap`, each shrunk to the smallest
    multiple of `multiple` that still covers the axis with them (a 512-pixel axis with at most
    480-pixel tiles gets two of 272, not two of 480). A short axis is one tile of its length."""
    if length <= tile:
        return length, [0]
    count = math.ceil((length - overlap) / (tile - overlap))
    side = min(tile, math.ceil(math.ceil((length + (count - 1) * overlap) / count) / multiple) * multiple)
    return side, tile_starts(length, side, overlap)


def tile_starts(length: int, tile: int, overlap: int) -> list[int]:
    """Evenly spread start offsets of tiles of size `tile` covering [0, length), gaps ≤ tile − overlap."""
    if length <= tile:
        return [0]
    count = math.ceil((length - tile) / (tile - overlap)) + 1
    return [index * (length - tile) // (count - 1) for index in range(count)]


def _padded_size(height: int, width: int, multiple: int) -> tuple[int, int]:
    return math.ceil(height / multiple) * multiple, math.ceil(width / multiple) * multiple


def _pad_to_multiple(x: torch.Tensor, multiple: int) -> torch.Tensor:
    """Pad B×C×h×w on the bottom/right to multiples of `multiple` (reflect where possible)."""
    height, width = x.shape[-2:]
    pad_h, pad_w = -height % multiple, -width % multiple
    if not (pad_h or pad_w):
        return x
    mode = "reflect" if pad_h < height and pad_w < width else "replicate"
    return F.pad(x, (0, pad_w, 0, pad_h), mode=mode)


def _new_accumulator(
    key: str | None,
    value: torch.Tensor,
    padded: tuple[int, int],
    tile_size: tuple[int, int],
    image_size: tuple[int, int],
    rows: list[int],
    cols: list[int],
    overlap: int,
) -> _Accumulator:
    """Zeroed output shaped after the first tile's `value`, with every tile row's/column's window."""
    if value.ndim != 4 or value.shape[-2] % padded[0] or value.shape[-2] == 0:
        raise ValueError(
            f"fn output {_name(key)} has shape {tuple(value.shape)}, not B×C'×(h·s)×(w·s) for a tile of {padded}"
        )
    scale = value.shape[-2] // padded[0]
    height, width = image_size
    with torch.inference_mode(False):  # an ordinary tensor, which callers may change in place
        output = value.new_zeros(value.shape[0], value.shape[1], height * scale, width * scale)
    return _Accumulator(
        output=output,
        scale=scale,
        row_windows=_axis_windows(height, rows, tile_size[0], overlap, scale, value),
        col_windows=_axis_windows(width, cols, tile_size[1], overlap, scale, value),
    )


def _check_output(key: str | None, value: torch.Tensor, expected: tuple[int, int, int, int]) -> None:
    if tuple(value.shape) != expected:
        raise ValueError(f"fn output {_name(key)} has shape {tuple(value.shape)} for this tile, expected {expected}")


def _axis_windows(
    length: int, starts: list[int], size: int, overlap: int, scale: int, like: torch.Tensor
) -> list[torch.Tensor]:
    """Per-tile 1-D windows along one axis at output resolution, normalised to sum to one.

    Each window is 1 except for a raised-cosine ramp sin²(π(t + ½)/(2n)), t = 0..n−1,
    n = overlap·scale, on each side that borders another tile; dividing by the summed
    windows makes the blend a partition of unity (the 2-D window is the outer product).
    """
    n = overlap * scale
    steps = (torch.arange(n, device=like.device, dtype=torch.float64) + 0.5) / n
    ramp = torch.sin(0.5 * math.pi * steps) ** 2
    total = torch.zeros(length * scale, device=like.device, dtype=torch.float64)
    windows = []
    for start in starts:
        window = torch.ones(size * scale, device=like.device, dtype=torch.float64)
        if start > 0:
            window[:n] *= ramp
        if start + size < length:
            window[size * scale - n :] *= ramp.flip(0)
        total[start * scale : (start + size) * scale] += window
        windows.append(window)
    return [
        (window / total[start * scale : (start + size) * scale]).to(like.dtype)
        for start, window in zip(starts, windows)
    ]


def _name(key: str | None) -> str:
    return "tensor" if key is None else repr(key)
