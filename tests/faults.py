"""The fault battery's world: a folder of inputs, models and a finished training run, the
snapshot that proves nothing changed, and makers of faults (bombs, full and read-only disks)."""

from __future__ import annotations

import contextlib
import os
import struct
import subprocess
import zlib
from pathlib import Path

import imageio.v3 as iio
import numpy as np
import pytest
import tifffile

from tests.checkpoints import write_tiny_checkpoint
import cli

# A tiny denoiser for `virnet train`, fast enough for a test (a step takes milliseconds).
TINY_TRAIN = [
    "guide.snet_features=8",
    "guide.snet_depth=3",
    "guide.rnet_widths=[8,16]",
    "guide.rnet_blocks=1",
    "data.patch_size=32",
    "data.batch_size=2",
    "data.workers=0",
    "data.val_images=1",
    "run.log_every=1",
    "run.val_every=1000",
]
RUN_STEPS, RUN_EVERY = 4, 2  # the prepared run: 4 steps, a checkpoint every 2


def rgb(height: int = 24, width: int = 20, seed: int = 0) -> np.ndarray:
    return np.random.default_rng(seed).integers(0, 256, (height, width, 3), dtype=np.uint8)


def build_world(root: Path) -> None:
    """photo.png, photos/ (3 images), models/ (tiny denoise and sr-x2), data/ (4 training
    images) and run/ (a finished 4-step training run with checkpoints at steps 2 and 4)."""
    iio.imwrite(root / "photo.png", rgb())
    (root / "photos").mkdir()
    for i in range(3):
        iio.imwrite(root / "photos" / f"p{i}.png", rgb(seed=i + 1))
    (root / "models").mkdir()
    write_tiny_checkpoint(root / "models", "denoise")
    write_tiny_checkpoint(root / "models", "sr", 2)
    (root / "data").mkdir()
    for i in range(4):
        iio.imwrite(root / "data" / f"d{i}.png", rgb(40, 40, seed=10 + i))
    argv = ["train", "--config", "denoise-niid-cpu", "--data", str(root / "data"), "--out", str(root / "run")]
    argv += ["--no-progress", "--steps", str(RUN_STEPS), *TINY_TRAIN, f"run.checkpoint_every={RUN_EVERY}"]
    assert cli.main(argv) == 0


def snapshot(root: Path) -> dict[str, bytes | None]:
    """Every file (its bytes) and folder (None) under `root`, by relative path."""
    return {
        path.relative_to(root).as_posix(): None if path.is_dir() else path.read_bytes()
        for path in sorted(root.rglob("*"))
    }


def assert_unchanged(before: dict, root: Path) -> None:
    after = snapshot(root)
    added = sorted(set(after) - set(before))
    removed = sorted(set(before) - set(after))
    changed = sorted(name for name in set(before) & set(after) if before[name] != after[name])
    assert (added, removed, changed) == ([], [], []), "the run left the folder changed"


def leftovers(root: Path) -> list[str]:
    """Temporary files or folders (hidden names) anywhere under `root`."""
    return sorted(p.relative_to(root).as_posix() for p in root.rglob(".*"))


def png_chunk(kind: bytes, data: bytes) -> bytes:
    return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data))


def png_header_bomb(path: Path, width: int, height: int) -> None:
    """A PNG whose header announces width×height 8-bit RGB pixels, with almost no data."""
    header = struct.pack(">IIBBBBB", width, height, 8, 2, 0, 0, 0)
    idat = zlib.compress(b"\0" * 64)
    _write_png(path, header, idat)


def png_bomb(path: Path, width: int, height: int) -> None:
    """A valid bilevel PNG of width×height black pixels: kilobytes on disk, width·height
    bytes once decoded."""
    row = b"\0" * (1 + (width + 7) // 8)
    packer = zlib.compressobj(9)
    idat = b"".join(packer.compress(row) for _ in range(height)) + packer.flush()
    header = struct.pack(">IIBBBBB", width, height, 1, 0, 0, 0, 0)
    _write_png(path, header, idat)


def tiff_header_bomb(path: Path, width: int, height: int) -> None:
    """A 512-byte TIFF whose tags announce width×height pixels."""
    tifffile.imwrite(path, np.zeros((16, 16), np.uint8))
    with tifffile.TiffFile(path, mode="r+") as tiff:
        tiff.pages.first.tags["ImageWidth"].overwrite(width)
        tiff.pages.first.tags["ImageLength"].overwrite(height)


def _write_png(path: Path, header: bytes, idat: bytes) -> None:
    chunks = png_chunk(b"IHDR", header) + png_chunk(b"IDAT", idat) + png_chunk(b"IEND", b"")
    path.write_bytes(b"\x89PNG\r\n\x1a\n" + chunks)


def _mount(folder: Path, options: str) -> None:
    folder.mkdir(parents=True, exist_ok=True)
    command = ["mount", "-t", "tmpfs", "-o", options, "tmpfs", str(folder)]
    result = subprocess.run(command, capture_output=True, text=True)
    if result.returncode != 0:
        pytest.skip(f"cannot mount a tmpfs here ({result.stderr.strip() or 'mount failed'})")


def _unmount(folder: Path) -> None:
    subprocess.run(["umount", str(folder)], check=True)


@contextlib.contextmanager
def small_disk(folder: Path, kilobytes: int):
    """`folder` as a tmpfs of `kilobytes` KiB (skips the test where mounting is refused)."""
    _mount(folder, f"size={kilobytes}k")
    try:
        yield folder
    finally:
        _unmount(folder)


@contextlib.contextmanager
def read_only_folder(folder: Path):
    """An empty folder nobody may write in: chmod 0555 for a normal user; root ignores
    permissions, so for root a read-only tmpfs (skips the test where mounting is refused)."""
    if os.geteuid() != 0:
        folder.mkdir(parents=True, exist_ok=True)
        folder.chmod(0o555)
        try:
            yield folder
        finally:
            folder.chmod(0o755)
        return
    _mount(folder, "ro,size=64k")
    try:
        yield folder
    finally:
        _unmount(folder)
