"""Reading, writing and listing image files for `virnet restore` and the Python API.

Decoding and encoding go through imageio.v3: the Pillow plugin for PNG, JPEG and BMP and the
tifffile plugin for TIFF. Pixels travel as float32 C×H×W tensors in [0, 1] scale (C = 1 for
grayscale, 3 for RGB); an alpha channel travels beside them, untouched, and is re-attached on
write. Every problem with a user's file raises `VirnetError` with a one-line message that names
the file.

Limitation: Pillow decodes a 16-bit colour PNG (RGB, RGBA or gray+alpha) to 8 bits, and cannot
encode one, so such files are refused rather than silently truncated; 16-bit grayscale PNG and
16-bit TIFF of every layout are fully supported.
"""

from __future__ import annotations

import os
import uuid
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import imageio.v3 as iio
import numpy as np
import torch
import torch.nn.functional as F

from virnet.errors import VirnetError

IMAGE_SUFFIXES = frozenset({".png", ".jpg", ".jpeg", ".bmp", ".tif", ".tiff"})
"""Lower-case suffixes of the image files we read and write (matched case-insensitively)."""

_TIFF_SUFFIXES = frozenset({".tif", ".tiff"})
_JPEG_SUFFIXES = frozenset({".jpg", ".jpeg"})
_ALPHA_SUFFIXES = frozenset({".png", ".tif", ".tiff"})
_MODES = {1: "L", 2: "LA", 3: "RGB", 4: "RGBA"}
_FLOAT_DEPTH = 32
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


@dataclass(frozen=True)
class ImageData:
    """A decoded image and what is needed to write a result back in the same format.

    pixels: C×H×W float32 tensor in [0, 1] scale, C = 1 (grayscale) or 3 (RGB). Float TIFF
        values are kept as stored (not clipped), so they may lie outside [0, 1].
    alpha: 1×H×W float32 tensor in [0, 1] scale, or None; never processed, only re-attached.
    bit_depth: 8 or 16 for integer samples, 32 for float samples (any float TIFF).
    is_float: True for float TIFF input (then bit_depth is 32).
    """

    pixels: torch.Tensor
    alpha: torch.Tensor | None
    bit_depth: int
    is_float: bool

    def __post_init__(self) -> None:
        if self.pixels.ndim != 3 or self.pixels.shape[0] not in (1, 3):
            raise ValueError(f"pixels must be C×H×W with C = 1 or 3, got {tuple(self.pixels.shape)}")
        if self.alpha is not None and self.alpha.shape != (1, *self.pixels.shape[1:]):
            raise ValueError(
                f"alpha must be 1×H×W matching pixels {tuple(self.pixels.shape)}, "
                f"got {tuple(self.alpha.shape)}"
            )
        if self.bit_depth not in (8, 16, _FLOAT_DEPTH) or self.is_float != (self.bit_depth == _FLOAT_DEPTH):
            raise ValueError(f"bit_depth {self.bit_depth} does not match is_float={self.is_float}")

    @property
    def mode(self) -> str:
        """Channel layout of the file: "L", "LA", "RGB" or "RGBA"."""
        return _MODES[self.pixels.shape[0] + (self.alpha is not None)]


def read_image(path: str | Path) -> ImageData:
    """Decode one image file (PNG, JPEG, BMP or TIFF; 8- or 16-bit integer, or float TIFF).

    Palette images decode to RGB (RGBA when they have a transparent entry), bilevel and
    gray+alpha images to 1 channel plus alpha, CMYK JPEGs to RGB. JPEG EXIF orientation is
    applied. Only the first page of a multi-page TIFF is read.

    Raises VirnetError (one line, naming the file) for a missing path, a folder, an unknown
    suffix, a file that is not a valid image or is truncated, an empty image, a float TIFF with
    NaN or infinite values, or an unsupported layout (channel count, TIFF colour space,
    sample type, 16-bit colour PNG).
    """
    path = Path(path)
    if not path.exists():
        raise VirnetError(f"no such file: {path}")
    if path.is_dir():
        raise VirnetError(f"expected an image file, got a folder: {path}")
    _check_suffix(path, "read")
    try:
        array = _decode_tiff(path) if path.suffix.lower() in _TIFF_SUFFIXES else _decode_pillow(path)
    except VirnetError:
        raise
    except Exception as exc:  # decoders raise many types (OSError, SyntaxError, zlib.error, ...)
        raise VirnetError(
            f"cannot read image {path}: not a valid image, or the file is truncated or corrupt "
            f"({_one_line(exc)})"
        ) from exc
    return _image_data(array, path)


def write_image(
    path: str | Path,
    pixels: torch.Tensor,
    like: ImageData | None = None,
    bit_depth: int | None = None,
    overwrite: bool = False,
) -> None:
    """Encode a C×H×W image (C = 1 or 3, [0, 1] scale, any device) to `path`, atomically.

    The format follows the suffix. The bit depth is `bit_depth` if given (8, 16, or 32 for a
    float32 TIFF), else that of `like` (a float input written to PNG becomes 16-bit), else 8.
    Values are clipped to [0, 1] here and only here, then rounded to the integer depth.
    The alpha channel of `like` is re-attached (resized by nearest neighbour when the output
    size differs, e.g. after super-resolution). JPEG and BMP are 8-bit only and drop the alpha
    channel; JPEG is written at quality 95 without chroma subsampling.

    The data is written to a hidden temporary file in the same folder, then renamed over
    `path`, so a failure never leaves a partial or empty file at `path`.

    Raises VirnetError for an unknown suffix, an existing file (unless overwrite=True), a
    missing output folder, a bit depth the format cannot hold, NaN/inf pixels, or an OS error.
    """
    path = Path(path)
    suffix = _check_suffix(path, "write")
    if pixels.ndim != 3 or pixels.shape[0] not in (1, 3):
        raise ValueError(f"pixels must be C×H×W with C = 1 or 3, got {tuple(pixels.shape)}")
    if not torch.isfinite(pixels).all():
        raise VirnetError(f"cannot write {path}: the image contains NaN or infinite values")
    alpha = _output_alpha(suffix, like, pixels.shape[1:])
    channels = pixels.shape[0] + (alpha is not None)
    depth = _output_depth(path, suffix, channels, like, bit_depth)
    if path.is_dir():
        raise VirnetError(f"cannot write {path}: it is a folder")
    if path.exists() and not overwrite:
        raise VirnetError(f"refusing to overwrite existing file {path}")
    if not path.parent.is_dir():
        raise VirnetError(f"cannot write {path}: folder {path.parent} does not exist")
    values = pixels if alpha is None else torch.cat([pixels, alpha.to(pixels)])
    _write_atomically(path, _encode_array(values, depth), suffix)


def list_images(inputs: Sequence[str | Path]) -> list[Path]:
    """Expand files and folders into the image files to process.

    A file is kept as given (it must have an image suffix); a folder is searched recursively
    for files with an image suffix, sorted, skipping hidden files and folders (names starting
    with "."). Order follows `inputs`; a file reached twice is listed once.

    Raises VirnetError for no inputs, a missing path, a file with another suffix, or a
    folder that holds no image.
    """
    if not inputs:
        raise VirnetError("no input files or folders given")
    found: list[Path] = []
    seen: set[Path] = set()
    for item in inputs:
        path = Path(item)
        if path.is_dir():
            files = sorted(
                file
                for file in path.rglob("*")
                if file.suffix.lower() in IMAGE_SUFFIXES
                and file.is_file()
                and not any(part.startswith(".") for part in file.relative_to(path).parts)
            )
            if not files:
                raise VirnetError(f"no images ({_suffix_list()}) found in folder {path}")
        elif path.is_file():
            _check_suffix(path, "read")
            files = [path]
        else:
            raise VirnetError(f"no such file or folder: {path}")
        for file in files:
            key = file.resolve()
            if key not in seen:
                seen.add(key)
                found.append(file)
    return found


def _decode_pillow(path: Path) -> np.ndarray:
    """PNG/JPEG/BMP -> H×W, or H×W×C uint8/uint16 array in the file's channel order."""
    if path.suffix.lower() == ".png":
        _refuse_16bit_colour_png(path)
    with iio.imopen(path, "r", plugin="pillow") as file:
        meta = file.metadata()
        source = meta["mode"]
        if source not in _PILLOW_MODES:
            raise VirnetError(f"cannot read image {path}: pixel format {source!r} is not supported")
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
        raise VirnetError(
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
        raise VirnetError(
            f"cannot read image {path}: TIFF colour space {getattr(photometric, 'name', photometric)} "
            "is not supported (only grayscale and RGB, with optional alpha)"
        )
    if tags.get("PlanarConfiguration") == _TIFF_PLANAR_SEPARATE and array.ndim == 3:
        array = np.moveaxis(array, 0, -1)
    return array


def _image_data(array: np.ndarray, path: Path) -> ImageData:
    """H×W or H×W×C decoded array -> ImageData, validating size, layout and values."""
    if array.ndim == 2:
        array = array[..., None]
    if array.ndim != 3 or array.shape[-1] not in _MODES:
        raise VirnetError(
            f"cannot read image {path}: unsupported layout of shape {array.shape} (expected 1, 2, "
            "3 or 4 channels: gray, gray+alpha, RGB, RGBA)"
        )
    height, width, channels = array.shape
    if height == 0 or width == 0:
        raise VirnetError(f"cannot read image {path}: the image is empty ({height}x{width} pixels)")
    if array.dtype in (np.uint8, np.uint16):
        bit_depth = 8 * array.dtype.itemsize
        values = array.astype(np.float32) / np.float32(2**bit_depth - 1)
    elif array.dtype.kind == "f":
        bit_depth = _FLOAT_DEPTH
        values = array.astype(np.float32)
        if not np.isfinite(values).all():
            raise VirnetError(f"cannot read image {path}: it contains NaN or infinite values")
    else:
        raise VirnetError(
            f"cannot read image {path}: sample type {array.dtype} is not supported (expected 8- or "
            "16-bit unsigned integers, or floats)"
        )
    tensor = torch.from_numpy(np.ascontiguousarray(values.transpose(2, 0, 1)))
    has_alpha = channels in (2, 4)
    return ImageData(
        pixels=tensor[: channels - has_alpha],
        alpha=tensor[channels - 1 :] if has_alpha else None,
        bit_depth=bit_depth,
        is_float=bit_depth == _FLOAT_DEPTH,
    )


def _output_alpha(suffix: str, like: ImageData | None, size: torch.Size) -> torch.Tensor | None:
    """`like`'s 1×h×w alpha at the output's H×W (nearest neighbour), or None where not kept."""
    if like is None or like.alpha is None or suffix not in _ALPHA_SUFFIXES:
        return None
    if like.alpha.shape[1:] == size:
        return like.alpha
    return F.interpolate(like.alpha[None], size=tuple(size), mode="nearest-exact")[0]


def _output_depth(path: Path, suffix: str, channels: int, like: ImageData | None, bit_depth: int | None) -> int:
    """Sample depth to encode: 8, 16 or 32 (float32 TIFF), checked against what `suffix` holds."""
    if bit_depth is not None and bit_depth not in (8, 16, _FLOAT_DEPTH):
        raise VirnetError(f"cannot write {path}: bit depth must be 8, 16 or 32, got {bit_depth}")
    inherited = like.bit_depth if like is not None else 8
    if suffix in _TIFF_SUFFIXES:
        return bit_depth or inherited
    if suffix != ".png":
        if bit_depth not in (None, 8):
            raise VirnetError(f"cannot write {path}: {suffix} files are 8-bit only")
        return 8
    if bit_depth == _FLOAT_DEPTH:
        raise VirnetError(f"cannot write {path}: float samples need a .tif/.tiff output")
    depth = bit_depth or min(inherited, 16)
    if depth == 16 and channels > 1:
        raise VirnetError(
            f"cannot write {path}: 16-bit colour PNG is not supported; write a .tif/.tiff or "
            "choose bit depth 8"
        )
    return depth


def _encode_array(values: torch.Tensor, depth: int) -> np.ndarray:
    """C×H×W tensor -> H×W (C = 1) or H×W×C array: clipped to [0, 1], then rounded to `depth`."""
    values = values.detach().cpu().double().clamp(0.0, 1.0)
    if depth == _FLOAT_DEPTH:
        array = values.float().numpy()
    else:
        dtype = np.uint8 if depth == 8 else np.uint16
        array = torch.round(values * (2**depth - 1)).numpy().astype(dtype)
    array = array.transpose(1, 2, 0)
    return array[..., 0] if array.shape[-1] == 1 else array


def _write_atomically(path: Path, array: np.ndarray, suffix: str) -> None:
    """Encode into a hidden temporary file beside `path`, then rename it over `path`."""
    temporary = path.with_name(f".{path.name}.{uuid.uuid4().hex[:12]}.part")
    try:
        _encode(temporary, array, suffix)
        os.replace(temporary, path)
    except OSError as exc:
        raise VirnetError(f"cannot write {path}: {_one_line(exc)}") from exc
    finally:
        temporary.unlink(missing_ok=True)


def _encode(target: Path, array: np.ndarray, suffix: str) -> None:
    """Write an H×W or H×W×C array to `target` in the format of `suffix`."""
    if suffix in _TIFF_SUFFIXES:
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
    elif suffix in _JPEG_SUFFIXES:
        iio.imwrite(target, array, plugin="pillow", extension=suffix, quality=95, subsampling=0)
    else:
        iio.imwrite(target, array, plugin="pillow", extension=suffix)


def _check_suffix(path: Path, action: str) -> str:
    suffix = path.suffix.lower()
    if suffix not in IMAGE_SUFFIXES:
        raise VirnetError(
            f"cannot {action} {path}: unsupported file type {suffix or '(no suffix)'} "
            f"(supported: {_suffix_list()})"
        )
    return suffix


def _suffix_list() -> str:
    return ", ".join(sorted(IMAGE_SUFFIXES))


def _one_line(exc: BaseException) -> str:
    return " ".join(str(exc).split()) or type(exc).__name__
