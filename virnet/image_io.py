"""Reading, writing and listing image files for `virnet restore` and the Python API.

Decoding and encoding go through imageio.v3 (`imagefiles.codecs`): the Pillow plugin for
PNG, JPEG and BMP and the tifffile plugin for TIFF. Pixels travel as float32 C×H×W tensors in
[0, 1] scale (C = 1 for grayscale, 3 for RGB); an alpha channel travels beside them,
untouched, and is re-attached on write. Every problem with a user's file raises `VirnetError`
with a one-line message that names the file.

The size of an image is read from its header before anything is decoded, and images above
`max_pixels` (DEFAULT_MAX_PIXELS unless raised) are refused with `ImageTooLarge`, so a small
file that decodes to gigabytes (a "decompression bomb") is stopped before it costs memory.

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

import numpy as np
import torch
import torch.nn.functional as F

from imagefiles.codecs import TIFF_SUFFIXES, UnsupportedImage, decode, encode, header_size
from imagefiles.formats import DEFAULT_MAX_PIXELS, IMAGE_SUFFIXES
from virnet.errors import VirnetError, one_line


_ALPHA_SUFFIXES = frozenset({".png", ".tif", ".tiff"})
_MODES = {1: "L", 2: "LA", 3: "RGB", 4: "RGBA"}
_FLOAT_DEPTH = 32
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


class ImageTooLarge(VirnetError):
    """An image whose header announces more pixels than the limit; nothing was decoded."""

    def __init__(self, path: Path, height: int, width: int, limit: int):
        self.path, self.height, self.width, self.limit = path, height, width, limit
        super().__init__(
            f"image {path} is {width}×{height} = {_pixel_count(height * width)}, above the limit of "
            f"{_pixel_count(limit)} (raise it with --max-pixels N, or max_pixels=N in Python)"
        )


def image_size(path: str | Path) -> tuple[int, int]:
    """(height, width) of an image file, read from its header without decoding the pixels.

    Raises VirnetError as `read_image` does for a missing path, a folder, an unknown suffix
    or a file that is not a valid image.
    """
    path = _image_file(path)
    try:
        return header_size(path)
    except Exception as exc:  # decoders raise many types (OSError, SyntaxError, struct.error, ...)
        raise _unreadable(path, exc) from exc


def read_image(path: str | Path, max_pixels: int | None = DEFAULT_MAX_PIXELS) -> ImageData:
    """Decode one image file (PNG, JPEG, BMP or TIFF; 8- or 16-bit integer, or float TIFF).

    Palette images decode to RGB (RGBA when they have a transparent entry), bilevel and
    gray+alpha images to 1 channel plus alpha, CMYK JPEGs to RGB. JPEG EXIF orientation is
    applied. Only the first page of a multi-page TIFF is read.

    max_pixels: the size is read from the header first and an image with more pixels is
    refused (`ImageTooLarge`) before any decoding; None disables the limit.

    Raises VirnetError (one line, naming the file) for a missing path, a folder, an unknown
    suffix, a file that is not a valid image or is truncated, an image above `max_pixels`, an
    empty image, a float TIFF with NaN or infinite values, or an unsupported layout (channel
    count, TIFF colour space, sample type, 16-bit colour PNG).
    """
    if max_pixels is not None and (isinstance(max_pixels, bool) or not isinstance(max_pixels, int) or max_pixels < 1):
        raise VirnetError(f"the pixel limit must be a positive integer or None, got {max_pixels!r}")
    path = _image_file(path)
    height, width = image_size(path)
    if max_pixels is not None and height * width > max_pixels:
        raise ImageTooLarge(path, height, width, max_pixels)
    try:
        array = decode(path, max_pixels)
    except UnsupportedImage as exc:
        raise VirnetError(str(exc)) from exc
    except Exception as exc:  # decoders raise many types (OSError, SyntaxError, zlib.error, ...)
        raise _unreadable(path, exc) from exc
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
    commit_staged([(stage_image(path, pixels, like, bit_depth, overwrite), Path(path))])


def stage_image(
    path: str | Path,
    pixels: torch.Tensor,
    like: ImageData | None = None,
    bit_depth: int | None = None,
    overwrite: bool = False,
) -> Path:
    """Everything `write_image` does but the final rename: validates, encodes into a hidden
    temporary file beside `path` and returns that file, for `commit_staged` to rename (several
    files can then appear together). Nothing is left behind when it raises."""
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
    array = _encode_array(values, depth)
    temporary = path.with_name(f".{path.name}.{uuid.uuid4().hex[:12]}.part")
    try:
        encode(temporary, array, suffix)
    except BaseException as exc:
        temporary.unlink(missing_ok=True)
        if isinstance(exc, OSError):
            raise VirnetError(f"cannot write {path}: {one_line(exc)}") from exc
        raise
    return temporary


def commit_staged(staged: Sequence[tuple[Path, Path]]) -> None:
    """Rename each (temporary file, target) of `stage_image` into place; the temporary files
    are gone afterwards, whether it succeeds or raises (VirnetError for an OS error)."""
    try:
        for temporary, path in staged:
            try:
                os.replace(temporary, path)
            except OSError as exc:
                raise VirnetError(f"cannot write {path}: {one_line(exc)}") from exc
    finally:
        for temporary, _ in staged:
            temporary.unlink(missing_ok=True)


def check_encodable(path: str | Path, like: ImageData, bit_depth: int | None = None) -> None:
    """Raise VirnetError now if an image shaped like `like` could not be written to `path` at
    `bit_depth` (unknown suffix, or a depth the format cannot hold): checked before any work."""
    path = Path(path)
    suffix = _check_suffix(path, "write")
    keeps_alpha = like.alpha is not None and suffix in _ALPHA_SUFFIXES
    _output_depth(path, suffix, like.pixels.shape[0] + keeps_alpha, like, bit_depth)


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
    if suffix in TIFF_SUFFIXES:
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
            "choose 8 bits (--bit-depth 8)"
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


def _image_file(path: str | Path) -> Path:
    """`path` as a Path after checking it is an existing file with an image suffix."""
    path = Path(path)
    if not path.exists():
        raise VirnetError(f"no such file: {path}")
    if path.is_dir():
        raise VirnetError(f"expected an image file, got a folder: {path}")
    _check_suffix(path, "read")
    return path


def _unreadable(path: Path, exc: BaseException) -> VirnetError:
    return VirnetError(
        f"cannot read image {path}: not a valid image, or the file is truncated or corrupt ({one_line(exc)})"
    )


def _check_suffix(path: Path, action: str) -> str:
    suffix = path.suffix.lower()
    if suffix not in IMAGE_SUFFIXES:
        raise VirnetError(
            f"cannot {action} {path}: unsupported file type {suffix or '(no suffix)'} "
            f"(supported: {_suffix_list()})"
        )
    return suffix


def _pixel_count(pixels: int) -> str:
    return f"{pixels / 1e6:.1f} MP" if pixels >= 10**6 else f"{pixels} pixels"


def _suffix_list() -> str:
    return ", ".join(sorted(IMAGE_SUFFIXES))
