"""The one image codec: files <-> numpy arrays, nothing else; read by `training.images` (the
training data) and `virnet.image_io` (the user's images).

imageio.v3 decodes and encodes: its Pillow plugin for PNG, JPEG and BMP, its tifffile plugin
for TIFF. Image sizes come from the headers alone (Pillow's lazy open, tifffile's first
page), so they cost nothing to read however large the image. Problems a decoder does not
catch (an unsupported pixel format or colour space, a 16-bit colour PNG that Pillow would
read at 8 bits) raise UnsupportedImage; the codecs' own exceptions for broken files
propagate for the caller to word.
"""

from __future__ import annotations

import contextlib
import logging
from pathlib import Path

import imageio.v3 as iio
import numpy as np
import tifffile
from PIL import Image

TIFF_SUFFIXES = frozenset({".tif", ".tiff"})
JPEG_SUFFIXES = frozenset({".jpg", ".jpeg"})



class UnsupportedImage(ValueError):
    """A readable file whose pixel layout is not supported; the message names the file."""


_PNG_SIGNATURE = b"\x89PNG\r\n\x1a\n"
_PNG_GRAY = 0
# TIFF PhotometricInterpretation values we decode: MINISBLACK (gray) and RGB.
_TIFF_PHOTOMETRICS = {1: "grayscale", 2: "RGB"}
_TIFF_PLANAR_SEPARATE = 2
# Pillow modes and the mode we ask the Pillow plugin to decode them to (None: keep as is).
_PILLOW_MODES = {
    "1": "L",
    "L": "L",
    "LA": "LA",
    "La": "LA",
    "I;16": None,
    "I;16B": None,
    "I;16L": None,
    "I;16N": None,
    "P": "RGB",
    "PA": "RGBA",
    "RGB": "RGB",
    "RGBA": "RGBA",
    "RGBa": "RGBA",
    "CMYK": "RGB",
    "YCbCr": "RGB",
    "LAB": "RGB",
    "HSV": "RGB",
}
# Modes whose "transparency" entry (a PNG tRNS chunk or a palette index) becomes an alpha channel.
_WITH_TRANSPARENCY = {"1": "LA", "L": "LA", "P": "RGBA", "RGB": "RGBA"}


def header_size(path: Path) -> tuple[int, int]:
    """(height, width) from the header of an image file; the pixels are not decoded."""
    if path.suffix.lower() in TIFF_SUFFIXES:
        with _quiet_tifffile(), tifffile.TiffFile(path) as tiff:
            page = tiff.pages.first
            return int(page.imagelength), int(page.imagewidth)
    with _pillow_pixel_limit(None), Image.open(path) as image:
        width, height = image.size
        return height, width


def decode(path: Path, max_pixels: int | None) -> np.ndarray:
    """An image file -> H×W or H×W×C array (native sample type; first page of a TIFF).

    max_pixels: Pillow's decompression-bomb limit for this call (None: off); the caller has
    checked the size against it from the header already.
    """
    if path.suffix.lower() in TIFF_SUFFIXES:
        with _quiet_tifffile():
            return _decode_tiff(path)
    with _pillow_pixel_limit(max_pixels):
        return _decode_pillow(path)


def encode(target: Path, array: np.ndarray, suffix: str) -> None:
    """Write an H×W or H×W×C array to `target` in the format of `suffix`."""
    if suffix in TIFF_SUFFIXES:
        channels = 1 if array.ndim == 2 else array.shape[-1]
        iio.imwrite(
            target,
            array,
            plugin="tifffile",
            extension=suffix,
            photometric="minisblack" if channels <= 2 else "rgb",
            planarconfig="contig",
            extrasamples=("unassalpha",) if channels in (2, 4) else None,
        )
    elif suffix in JPEG_SUFFIXES:
        iio.imwrite(target, array, plugin="pillow", extension=suffix, quality=95, subsampling=0)
    else:
        iio.imwrite(target, array, plugin="pillow", extension=suffix)



def _decode_pillow(path: Path) -> np.ndarray:
    """PNG/JPEG/BMP -> H×W, or H×W×C uint8/uint16 array in the file's channel order."""
    if path.suffix.lower() == ".png":
        _refuse_16bit_colour_png(path)
    with iio.imopen(path, "r", plugin="pillow") as file:
        meta = file.metadata()
        source = meta["mode"]
        if source not in _PILLOW_MODES:
            raise UnsupportedImage(f"cannot read image {path}: pixel format {source!r} is not supported")
        target = _PILLOW_MODES[source]
        if "transparency" in meta and source in _WITH_TRANSPARENCY:
            target = _WITH_TRANSPARENCY[source]
        return file.read(mode=target, rotate=True)


def _refuse_16bit_colour_png(path: Path) -> None:
    """Raise if the PNG header announces 16-bit colour samples (Pillow would keep only 8)."""
    with path.open("rb") as handle:
        header = handle.read(26)
    is_png = header[:8] == _PNG_SIGNATURE and header[12:16] == b"IHDR" and len(header) == 26
    if is_png and header[24] == 16 and header[25] != _PNG_GRAY:
        raise UnsupportedImage(
            f"cannot read image {path}: 16-bit colour PNG is not supported (its decoder keeps "
            "only 8 bits); convert it to a 16-bit TIFF"
        )


def _decode_tiff(path: Path) -> np.ndarray:
    """First page of a grayscale or RGB TIFF -> H×W or H×W×C array (native sample type)."""
    with iio.imopen(path, "r", plugin="tifffile") as file:
        tags = file.metadata(page=0)
        array = file.read(index=..., page=0)
    photometric = tags.get("PhotometricInterpretation")
    if photometric is not None and int(photometric) not in _TIFF_PHOTOMETRICS:
        raise UnsupportedImage(
            f"cannot read image {path}: TIFF colour space {getattr(photometric, 'name', photometric)} "
            "is not supported (only grayscale and RGB, with optional alpha)"
        )
    if tags.get("PlanarConfiguration") == _TIFF_PLANAR_SEPARATE and array.ndim == 3:
        array = np.moveaxis(array, 0, -1)
    return array


@contextlib.contextmanager
def _pillow_pixel_limit(limit: int | None):
    """Set Pillow's own decompression-bomb limit (None: off) for the block: our limit, checked
    from the header first, is the one that applies."""
    saved = Image.MAX_IMAGE_PIXELS
    Image.MAX_IMAGE_PIXELS = limit
    try:
        yield
    finally:
        Image.MAX_IMAGE_PIXELS = saved


@contextlib.contextmanager
def _quiet_tifffile():
    """tifffile logs its complaints about malformed files as warnings on stderr; here the
    file is either read or refused with one error, so they are held back."""
    logger = logging.getLogger("tifffile")
    saved = logger.level
    logger.setLevel(logging.CRITICAL)
    try:
        yield
    finally:
        logger.setLevel(saved)
