"""Benchmark inputs: bundled sample images for ``--quick`` runs, and image folders.

Images come back as float32 tensors 3×H×W in [0, 1] scale, paired with a name.
"""

from __future__ import annotations

from pathlib import Path

import imageio.v3 as iio
import numpy as np
import skimage.data
import torch
from skimage.transform import resize

from imagefiles.formats import IMAGE_SUFFIXES

# RGB photographs shipped inside scikit-image (no download needed).
_SAMPLE_NAMES = ("astronaut", "chelsea", "coffee", "rocket")


def _positive_int(value, what: str) -> int:
    if isinstance(value, bool) or not isinstance(value, int) or value < 1:
        raise ValueError(f"{what} must be a positive int, got {value!r}")
    return value


def _centre_square(image: np.ndarray) -> np.ndarray:
    height, width = image.shape[:2]
    side = min(height, width)
    top, left = (height - side) // 2, (width - side) // 2
    return image[top : top + side, left : left + side]


def _to_chw(image: np.ndarray) -> torch.Tensor:
    return torch.from_numpy(np.ascontiguousarray(image.transpose(2, 0, 1))).float()


def quick_images(n: int = 2, size: int = 64) -> list[tuple[str, torch.Tensor]]:
    """The first ``n`` of skimage's RGB samples (astronaut, chelsea, coffee, rocket).

    Each is centre-cropped to a square and resized (antialiased) to size×size. Returns
    [(name, 3×size×size float32 tensor in [0, 1])], in that fixed order.
    """
    _positive_int(n, "n")
    _positive_int(size, "size")
    if n > len(_SAMPLE_NAMES):
        raise ValueError(f"only {len(_SAMPLE_NAMES)} quick images exist, asked for {n}")
    images = []
    for name in _SAMPLE_NAMES[:n]:
        square = _centre_square(getattr(skimage.data, name)()).astype(np.float64) / 255.0
        small = resize(square, (size, size), order=3, anti_aliasing=True)
        images.append((name, _to_chw(np.clip(small, 0.0, 1.0))))
    return images


def _as_unit_rgb(image: np.ndarray, path: Path) -> np.ndarray:
    """H×W[×C] integer or float pixels -> H×W×3 floats in [0, 1] (no alpha, gray replicated)."""
    if np.issubdtype(image.dtype, np.integer):
        image = image.astype(np.float64) / np.iinfo(image.dtype).max
    elif np.issubdtype(image.dtype, np.floating):
        image = image.astype(np.float64)
    else:
        raise ValueError(f"{path}: unsupported pixel type {image.dtype}")
    if image.ndim == 2:
        image = image[..., None]
    if image.ndim != 3 or image.shape[-1] not in (1, 2, 3, 4):
        raise ValueError(f"{path}: expected a gray or RGB image, got shape {image.shape}")
    if image.shape[-1] in (2, 4):
        image = image[..., :-1]
    return np.repeat(image, 3, axis=-1) if image.shape[-1] == 1 else image


def load_image_folder(folder, limit: int | None = None) -> list[tuple[str, torch.Tensor]]:
    """Images of a dataset folder, sorted by file name: [(file stem, 3×H×W float32 tensor)].

    Reads .png/.jpg/.jpeg/.bmp/.tif/.tiff (not recursive) with imageio; integer pixels are
    divided by their type's maximum (8- or 16-bit); an alpha channel is dropped and gray
    images are replicated to 3 channels (benchmark datasets are RGB). ``limit`` keeps the
    first ``limit`` files. Raises ValueError for a missing folder or one without images.
    """
    folder = Path(folder)
    if not folder.is_dir():
        raise ValueError(f"image folder not found: {folder}")
    if limit is not None:
        _positive_int(limit, "limit")
    paths = sorted(p for p in folder.iterdir() if p.suffix.lower() in IMAGE_SUFFIXES)
    if not paths:
        suffixes = ", ".join(sorted(IMAGE_SUFFIXES))
        raise ValueError(f"no images ({suffixes}) in {folder}")
    return [(p.stem, _to_chw(_as_unit_rgb(iio.imread(p), p))) for p in paths[:limit]]
