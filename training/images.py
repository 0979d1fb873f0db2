"""Training images on disk: finding, decoding, the held-out split and the decoded-image store.

Images decode through the one image codec (`imagefiles.codecs`, also behind
`virnet.image_io`) to 3×H×W uint8 or uint16 tensors (kept in that type in the store, so a
cached training set costs 1 or 2 bytes per sample) and become float32 in [0, 1] with
`to_unit`.
"""

from __future__ import annotations

import hashlib
import warnings
from collections.abc import Iterable, Sequence
from pathlib import Path

import numpy as np
import torch

from imagefiles.codecs import UnsupportedImage, decode, header_size
from imagefiles.formats import IMAGE_SUFFIXES

_INTEGER_TYPES = (np.dtype(np.uint8), np.dtype(np.uint16))


def find_images(folder) -> list[Path]:
    """All images (png/jpg/jpeg/bmp/tif/tiff, any case) under `folder`, recursively, sorted."""
    folder = Path(folder)
    if not folder.is_dir():
        raise ValueError(f"image folder not found: {folder}")
    paths = sorted(p for p in folder.rglob("*") if p.suffix.lower() in IMAGE_SUFFIXES and p.is_file())
    if not paths:
        raise ValueError(f"no images ({', '.join(sorted(IMAGE_SUFFIXES))}) found under {folder}")
    return paths


def read_image(path) -> torch.Tensor:
    """Decode an image file as a 3×H×W uint8 or uint16 tensor (grayscale repeated to 3
    channels, alpha dropped). Unreadable files, float samples and 16-bit colour PNGs (which
    Pillow would read at 8 bits) raise ValueError; 16-bit TIFFs keep 16 bits."""
    array = _unreadable_as_value_error(Path(path), decode, None)
    if array.dtype not in _INTEGER_TYPES:
        raise ValueError(f"image {path} has unsupported sample type {array.dtype} (need uint8 or uint16)")
    if array.ndim == 2:
        array = array[:, :, None]
    if array.ndim != 3 or array.shape[2] not in (1, 2, 3, 4):
        raise ValueError(f"image {path} has unsupported shape {array.shape}")
    rgb = np.repeat(array[:, :, :1], 3, axis=2) if array.shape[2] <= 2 else array[:, :, :3]
    return torch.from_numpy(np.ascontiguousarray(rgb.transpose(2, 0, 1)))


def to_unit(image: torch.Tensor) -> torch.Tensor:
    """uint8/uint16 -> float32 in [0, 1]."""
    top = 255 if image.dtype == torch.uint8 else 65535
    return image.to(torch.float32) / top


def holdout_split(paths: Iterable, fraction: float = 0.1, seed: int = 0) -> tuple[list[Path], list[Path]]:
    """Split image paths into (train, val), both sorted, val holding round(fraction·n) of
    them (at least 1, at most n − 1): those whose file names rank first by a seeded hash.
    The split depends only on the file names and seed, not on their order or folder.
    """
    paths = [Path(p) for p in paths]
    if not 0 < fraction < 1:
        raise ValueError(f"fraction must be in (0, 1), got {fraction!r}")
    if len(paths) < 2:
        raise ValueError(f"need at least 2 images to split, got {len(paths)}")
    ranked = sorted(paths, key=lambda p: (hashlib.sha256(f"{seed}/{p.name}".encode()).hexdigest(), p.as_posix()))
    n_val = min(len(paths) - 1, max(1, round(fraction * len(paths))))
    return sorted(ranked[n_val:]), sorted(ranked[:n_val])


def image_paths(folder_or_paths) -> list[Path]:
    """A folder (searched with `find_images`) or a non-empty list of image files -> the paths."""
    if isinstance(folder_or_paths, (str, Path)):
        return find_images(folder_or_paths)
    paths = [Path(p) for p in folder_or_paths]
    if not paths:
        raise ValueError("the list of image paths is empty")
    return paths


def folder_pairs(noisy_dir: Path, clean_dir: Path) -> list[list[Path]]:
    """[noisy, clean] pairs: every image under noisy_dir with the file of the same relative name under clean_dir."""
    if not clean_dir.is_dir():
        raise ValueError(f"clean image folder not found: {clean_dir}")
    pairs = [[p, clean_dir / p.relative_to(noisy_dir)] for p in find_images(noisy_dir)]
    missing = [clean for _, clean in pairs if not clean.is_file()]
    if missing:
        raise ValueError(f"{len(missing)} noisy images have no clean counterpart, e.g. {missing[0]}")
    return pairs


class ImageStore:
    """Groups of images (one file, or a noisy/clean pair) that are readable, of equal size
    within a group and at least `min_size` on each side; optionally decoded once and kept."""

    def __init__(self, groups: Sequence[Sequence[Path]], min_size: int, cache: bool) -> None:
        self.groups: list[list[Path]] = []
        self.skipped: list[Path] = []
        self._cached: list[list[torch.Tensor]] | None = [] if cache else None
        reasons: dict[str, int] = {}
        for group in groups:
            try:
                images = [read_image(p) for p in group] if cache else None
                sizes = [tuple(img.shape[-2:]) for img in images] if cache else [_header_size(p) for p in group]
            except ValueError:
                self._skip(group, "unreadable", reasons)
                continue
            if len(set(sizes)) != 1:
                raise ValueError(f"paired images differ in size: {', '.join(f'{p} {s}' for p, s in zip(group, sizes))}")
            if min(sizes[0]) < min_size:
                self._skip(group, f"smaller than {min_size}×{min_size}", reasons)
                continue
            self.groups.append(list(group))
            if self._cached is not None:
                self._cached.append(images)
        if reasons:
            detail = ", ".join(f"{count} {reason}" for reason, count in reasons.items())
            warnings.warn(
                f"skipped {len(self.skipped)} of {len(groups)} images ({detail}); see .skipped",
                stacklevel=3,
            )
        if not self.groups:
            raise ValueError(f"none of the {len(groups)} images is usable (unreadable or smaller than {min_size})")

    def _skip(self, group: Sequence[Path], reason: str, reasons: dict[str, int]) -> None:
        self.skipped.append(group[0])
        reasons[reason] = reasons.get(reason, 0) + 1

    def images(self, index: int) -> list[torch.Tensor]:
        if self._cached is not None:
            return self._cached[index]
        return [read_image(p) for p in self.groups[index]]


def _header_size(path: Path) -> tuple[int, int]:
    """(H, W) from the file header, without decoding the pixels."""
    return _unreadable_as_value_error(path, header_size)


def _unreadable_as_value_error(path: Path, read, *args):
    """read(path, *args), any decoder failure raised as one ValueError naming the file."""
    try:
        return read(path, *args)
    except UnsupportedImage:
        raise
    except Exception as error:  # decoders raise many types (OSError, SyntaxError, zlib.error, ...)
        raise ValueError(f"cannot read image {path}: {error}") from None
