"""Where `virnet restore` and `virnet sample` write: output paths planned before any work.

Every output path is decided, and checked against existing files, before the first image is
processed, so a refused run writes nothing.
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

from virnet.errors import VirnetError
from virnet.image_io import IMAGE_SUFFIXES, list_images


def plan_restore_outputs(inputs: Sequence[str | Path], out: str | Path) -> list[tuple[Path, Path]]:
    """(input image, output image) pairs for `virnet restore IN... -o OUT`.

    One input file: OUT is the output file, unless OUT is an existing folder or has no image
    suffix, in which case the output is OUT/<input name>. Otherwise OUT is a folder: a file
    given directly goes to OUT/<its name>, a file found in a given folder to OUT/<its path
    relative to that folder>. Raises VirnetError for missing inputs, a folder without
    images, OUT being an existing file for several outputs, two inputs mapping to the same
    output, or an output that is one of the inputs.
    """
    out = Path(out)
    sources = [Path(item) for item in inputs]
    files = list_images(sources)
    one_file = len(sources) == 1 and sources[0].is_file()
    if one_file and not out.is_dir() and out.suffix.lower() in IMAGE_SUFFIXES:
        pairs = [(files[0], out)]
    else:
        if out.is_file():
            raise VirnetError(f"output {out} is a file, but several images are written: give a folder")
        pairs = [(file, out / _relative_name(file, sources)) for file in files]
    _check_distinct(pairs)
    return pairs


def sidecar(output: Path, label: str, suffix: str = ".tif") -> Path:
    """A file beside `output` named <stem>_<label><suffix>, e.g. photo_sigma.tif."""
    return output.with_name(f"{output.stem}_{label}{suffix}")


def check_writable(paths: Sequence[Path], overwrite: bool) -> None:
    """Raise VirnetError if any path exists (unless `overwrite`) or is a folder."""
    for path in paths:
        if path.is_dir():
            raise VirnetError(f"cannot write {path}: it is a folder")
        if path.exists() and not overwrite:
            raise VirnetError(f"refusing to overwrite existing file {path} (pass --overwrite)")


def _relative_name(file: Path, sources: list[Path]) -> Path:
    """`file`'s path relative to the given folder it was found in, or its name."""
    for source in sources:
        if source.is_dir() and file.is_relative_to(source):
            return file.relative_to(source)
    return Path(file.name)


def _check_distinct(pairs: list[tuple[Path, Path]]) -> None:
    inputs = {source.resolve() for source, _ in pairs}
    seen: dict[Path, Path] = {}
    for source, target in pairs:
        key = target.resolve()
        if key in inputs:
            raise VirnetError(f"output {target} would overwrite an input image; choose another output")
        if key in seen:
            raise VirnetError(f"inputs {seen[key]} and {source} would both be written to {target}")
        seen[key] = source
