"""Where `virnet restore` and `virnet sample` write: output paths planned before any work,
and files that appear all together or not at all.

Every output path is decided, and checked against existing files and folder permissions,
before the first image is processed, so a refused run writes nothing. The files of one
restored image (image, σ map, kernel) are encoded to temporary files and renamed into place
together; a set of posterior draws is written to a temporary folder that is renamed (or
emptied) into the output folder at the end. An error or an interrupt leaves neither partial
nor temporary files, nor folders that the run created.
"""

from __future__ import annotations

import contextlib
import os
import shutil
import tempfile
from collections.abc import Iterator, Sequence
from pathlib import Path

from virnet.errors import VirnetError
from virnet.image_io import IMAGE_SUFFIXES, commit_staged, list_images, stage_image


def plan_restore_outputs(inputs: Sequence[str | Path], out: str | Path) -> list[tuple[Path, Path]]:
    """(input image, output image) pairs for `virnet restore IN... -o OUT`.

    One input file: OUT is the output file if it has an image suffix, the folder to write
    OUT/<input name> into if it is an existing folder or has no suffix; any other suffix
    (e.g. .webp) is refused. Otherwise OUT is a folder: a file given directly goes to
    OUT/<its name>, a file found in a given folder to OUT/<its path relative to that folder>.
    Raises VirnetError for missing inputs, a folder without images, OUT being an existing
    file or having an image suffix for several outputs, two inputs mapping to the same
    output, or an output that is one of the inputs.
    """
    out = Path(out)
    sources = [Path(item) for item in inputs]
    files = list_images(sources)
    one_file = len(sources) == 1 and sources[0].is_file()
    suffix = out.suffix.lower()
    if one_file and not out.is_dir() and suffix:
        if suffix not in IMAGE_SUFFIXES:
            raise VirnetError(
                f"cannot write {out}: unsupported file type {suffix} (supported: {', '.join(sorted(IMAGE_SUFFIXES))}); "
                "to write into a folder, give an existing folder or a name without a suffix"
            )
        pairs = [(files[0], out)]
    else:
        if out.is_file():
            raise VirnetError(f"output {out} is a file, but several images are written: give a folder")
        if not out.is_dir() and suffix in IMAGE_SUFFIXES:
            raise VirnetError(f"output {out} names an image file, but {len(files)} images are written: give a folder")
        pairs = [(file, out / _relative_name(file, sources)) for file in files]
    _check_distinct(pairs)
    return pairs


def sidecar(output: Path, label: str, suffix: str = ".tif") -> Path:
    """A file beside `output` named <stem>_<label><suffix>, e.g. photo_sigma.tif."""
    return output.with_name(f"{output.stem}_{label}{suffix}")


def check_writable(paths: Sequence[Path], overwrite: bool) -> None:
    """Raise VirnetError unless every path can be written now: it is not a folder, does not
    exist (unless `overwrite`), and its nearest existing ancestor is a folder we may write in
    (tried by creating an unnamed temporary file there, so it also holds for root and for
    read-only file systems)."""
    probed: set[Path] = set()
    for path in paths:
        if path.is_dir():
            raise VirnetError(f"cannot write {path}: it is a folder")
        if path.exists() and not overwrite:
            raise VirnetError(f"refusing to overwrite existing file {path} (pass --overwrite)")
        folder = _nearest_existing(path.parent)
        if folder not in probed:
            check_folder_writable(folder, path)
            probed.add(folder)


def check_folder_writable(folder: Path, target: Path | None = None) -> None:
    """Raise VirnetError (naming `target`, default `folder`) unless files can be created in
    `folder`, or, while it does not exist, in its nearest existing ancestor."""
    what = target or folder
    folder = _nearest_existing(Path(folder))
    if not folder.is_dir():
        raise VirnetError(f"cannot write {what}: {folder} is a file, not a folder")
    try:
        with tempfile.TemporaryFile(dir=folder):
            pass
    except OSError as error:
        raise VirnetError(f"cannot write {what}: folder {folder} is not writable ({error.strerror or error})") from None


@contextlib.contextmanager
def created_folders() -> Iterator:
    """`make(folder)` creates a folder with its missing parents; when the block ends, every
    folder it created that is still empty is removed again (deepest first)."""
    created: list[Path] = []

    def make(folder: Path) -> None:
        missing = []
        for candidate in (folder, *folder.parents):
            if candidate.exists():
                break
            missing.append(candidate)
        folder.mkdir(parents=True, exist_ok=True)
        created.extend(reversed(missing))  # parents first

    try:
        yield make
    finally:
        for folder in reversed(created):
            with contextlib.suppress(OSError):
                folder.rmdir()  # only succeeds when empty


@contextlib.contextmanager
def written_together() -> Iterator:
    """`stage(path, pixels, **write_image options)` encodes a file to a temporary name; when
    the block ends without error all staged files are renamed into place, otherwise none is
    and the temporary files are deleted."""
    staged: list[tuple[Path, Path]] = []

    def stage(path: Path, pixels, **options) -> None:
        staged.append((stage_image(path, pixels, **options), Path(path)))

    try:
        yield stage
    except BaseException:
        for temporary, _ in staged:
            temporary.unlink(missing_ok=True)
        raise
    commit_staged(staged)


@contextlib.contextmanager
def folder_written_at_once(output: Path) -> Iterator[Path]:
    """A temporary folder to write a set of files into, put in place when the block succeeds.

    If `output` does not exist, the temporary folder (beside it) is renamed to `output`;
    otherwise it is made inside `output` and its files are renamed into `output`, replacing
    files of the same names (which `check_writable` allowed). On any error or interrupt the
    temporary folder is deleted, so `output` gains nothing.
    """
    exists = output.is_dir()
    home = output if exists else output.parent
    with created_folders() as make:
        make(home)
        temporary = Path(tempfile.mkdtemp(prefix=f".{output.name}.", suffix=".part", dir=home))
        try:
            os.chmod(temporary, 0o777 & ~_umask())  # mkdtemp makes it owner-only; use the usual mode
            yield temporary
            if exists:
                for file in sorted(temporary.iterdir()):
                    os.replace(file, output / file.name)
                temporary.rmdir()
            else:
                os.replace(temporary, output)
        except OSError as error:
            raise VirnetError(f"cannot write {output}: {' '.join(str(error).split())}") from error
        finally:
            shutil.rmtree(temporary, ignore_errors=True)


def _nearest_existing(folder: Path) -> Path:
    for candidate in (folder, *folder.parents):
        if candidate.exists():
            return candidate
    return Path.cwd()


def _umask() -> int:
    mask = os.umask(0)
    os.umask(mask)
    return mask


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
