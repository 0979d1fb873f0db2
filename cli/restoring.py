"""The work of `virnet restore` and `virnet sample` (their command lines: `cli.commands`).

Everything that can be checked before computing is checked first: the inputs, the options,
the model, every output path and folder; then, per image, its size from the header (against
--max-pixels, with the memory a restore would need) and whether the output format can hold
the result. A full disk or a read-only file system stops a folder restore at once; an
interrupted one continues with --skip-existing.
"""

from __future__ import annotations

import argparse
import errno
import sys
from pathlib import Path

from tqdm import tqdm

from cli.outputs import (
    check_writable,
    created_folders,
    folder_written_at_once,
    plan_restore_outputs,
    sidecar,
    written_together,
)
from imagefiles.formats import IMAGE_SUFFIXES
from virnet.api import PosteriorSamples, Restoration, load_for_task, memory_estimate, restore, sample_posterior
from virnet.devices import resolve_device
from virnet.errors import EXIT_FAILED, VirnetError, error_line, one_line
from virnet.heap import reuse_freed_memory
from virnet.image_io import ImageData, ImageTooLarge, check_encodable, list_images, read_image, write_image
from virnet.tiled_posterior import tile_side

# OS errors after which no later output can be written either: they stop a batch.
_FATAL_ERRNOS = frozenset({errno.ENOSPC, errno.EDQUOT, errno.EROFS})


def run_restore(args: argparse.Namespace) -> int:
    if args.skip_existing and args.overwrite:
        raise VirnetError("choose one of --skip-existing (keep existing outputs) and --overwrite (replace them)")
    pairs = plan_restore_outputs(args.inputs, args.output)
    guide = _load_guide(args)
    if args.save_kernel and not guide.model_config.has_kernel:
        raise VirnetError("--save-kernel needs a super-resolution model (--task sr)")
    if args.skip_existing:
        pending = [(s, t) for s, t in pairs if not all(p.is_file() for p in _restore_targets(t, args))]
    else:
        pending = pairs
    check_writable([path for _, out in pending for path in _restore_targets(out, args)], args.overwrite)
    failures = written = 0
    try:
        with created_folders() as make_folder, reuse_freed_memory():  # one image's pages serve the next
            for source, target in tqdm(pending, desc="restoring", unit="image", disable=None, file=sys.stderr):
                try:
                    data = _read(source, guide, args)
                    check_encodable(target, data, args.bit_depth)
                    result = _restore_one(source, data, guide, args)
                    make_folder(target.parent)
                    _write_restoration(target, data, result, args)
                except (VirnetError, ValueError, OSError) as error:
                    if _is_fatal(error):
                        raise VirnetError(
                            f"{one_line(error)}; stopped after {written} of {len(pending)} images: make room, "
                            "then rerun with --skip-existing"
                        ) from None
                    failures += 1
                    tqdm.write(error_line(error), file=sys.stderr)
                    continue
                written += 1
                tqdm.write(_report(source, target, result))
    except KeyboardInterrupt:
        raise KeyboardInterrupt(
            f"interrupted after {written} of {len(pending)} images; rerun with --skip-existing to continue"
        ) from None
    if len(pending) < len(pairs):
        print(f"skipped {len(pairs) - len(pending)} of {len(pairs)} images whose outputs exist (--skip-existing)")
    return EXIT_FAILED if failures else 0


def run_sample(args: argparse.Namespace) -> int:
    if args.input.is_dir():
        raise VirnetError(f"virnet sample takes one image file, got a folder: {args.input}")
    (source,) = list_images([args.input])
    if args.samples < 1:
        raise VirnetError(f"-n must be a positive number of draws, got {args.samples}")
    if args.output.is_file():
        raise VirnetError(f"output {args.output} is a file; give a folder")
    if args.output.suffix.lower() in IMAGE_SUFFIXES and not args.output.is_dir():
        raise VirnetError(f"virnet sample writes a folder of draws, but -o {args.output} names an image file")
    suffix = source.suffix
    draws = [f"{source.stem}_z{i:03d}{suffix}" for i in range(args.samples)]
    sigmas = [f"{source.stem}_sigma{i:03d}.tif" for i in range(args.samples)]
    mean, std = f"{source.stem}_mean{suffix}", f"{source.stem}_std.tif"
    guide = _load_guide(args)
    check_writable([args.output / name for name in (*draws, *sigmas, mean, std)], args.overwrite)
    data = _read(source, guide, args, draws=args.samples)
    check_encodable(args.output / mean, data, args.bit_depth)
    try:
        samples = sample_posterior(
            data, args.samples, guide, tile=args.tile, seed=args.seed, precision=args.precision, progress=True
        )
    except VirnetError as error:
        raise VirnetError(f"cannot sample {source}: {error}") from None
    with folder_written_at_once(args.output) as folder:
        for i in tqdm(range(args.samples), desc="writing draws", unit="draw", disable=None, file=sys.stderr):
            write_image(folder / draws[i], samples.z[i, 0], like=data, bit_depth=args.bit_depth)
            write_image(folder / sigmas[i], samples.sigma2[i, 0].sqrt(), bit_depth=32)
        write_image(folder / mean, samples.z_mean[0], like=data, bit_depth=args.bit_depth)
        write_image(folder / std, samples.z_std[0], bit_depth=32)
    print(f"{source}: {args.samples} draws written to {args.output}")
    print(_spread_report(samples, guide.model_config.eps0_sq))
    return 0



def _load_guide(args: argparse.Namespace):
    """The guide for --model/--task/--scale on --device, with --tile checked against it."""
    task = args.task or ("sr" if args.scale else None)
    guide = load_for_task(args.model, task, args.scale, resolve_device(args.device))
    tile_side(guide, args.tile)  # validates --tile before any work
    return guide


def _read(source: Path, guide, args: argparse.Namespace, draws: int = 0) -> ImageData:
    """read_image under --max-pixels; a refusal says how much memory the work would need."""
    try:
        return read_image(source, max_pixels=args.max_pixels)
    except ImageTooLarge as error:
        need = memory_estimate(guide, error.height, error.width, args.tile, draws=draws)
        raise VirnetError(f"{error}; restoring it would need about {need / 2**30:.1f} GiB of memory") from None


def _restore_one(source: Path, data: ImageData, guide, args: argparse.Namespace) -> Restoration:
    try:
        return restore(data, guide, tile=args.tile, precision=args.precision)
    except VirnetError as error:
        raise VirnetError(f"cannot restore {source}: {error}") from None


def _is_fatal(error: BaseException) -> bool:
    """Whether `error` (or an error it was raised from) is an OS error that stops a batch."""
    while error is not None:
        if isinstance(error, OSError) and error.errno in _FATAL_ERRNOS:
            return True
        error = error.__cause__
    return False


def _restore_targets(output: Path, args: argparse.Namespace) -> list[Path]:
    targets = [output]
    if args.save_sigma:
        targets.append(sidecar(output, "sigma"))
    if args.save_kernel:
        targets.append(sidecar(output, "kernel"))
    return targets


def _write_restoration(target: Path, data: ImageData, result: Restoration, args: argparse.Namespace) -> None:
    """The restored image and its requested sidecars, all appearing together or not at all."""
    with written_together() as stage:
        stage(target, result.image[0], like=data, bit_depth=args.bit_depth, overwrite=args.overwrite)
        if args.save_sigma:
            sigma = result.sigma2_mode[0].sqrt()
            stage(sidecar(target, "sigma"), sigma, bit_depth=32, overwrite=args.overwrite)
        if args.save_kernel:
            stage(sidecar(target, "kernel"), result.kernel[0][None], bit_depth=32, overwrite=args.overwrite)


def _spread_report(samples: PosteriorSamples, eps0_sq: float) -> str:
    """Two lines: the spread of the z draws with why it is what it is, and that of the σ² draws."""
    z_std = samples.z_std.mean().item() * 255
    sigma2_spread = (samples.sigma2_std / samples.sigma2_mean).mean().item()
    return (
        f"  z draws: per-pixel std {z_std:.3f}/255 on average (ε0 = {eps0_sq**0.5 * 255:.3f}/255): q(z|y) = N(µ, ε0²) "
        "has a spread fixed by the model (Eqs. 3, 15), so z draws are not error bars of the restoration\n"
        f"  σ² draws: per-pixel std/mean {sigma2_spread:.3f} on average: the model's uncertainty about the noise level"
    )


def _report(source: Path, target: Path, result: Restoration) -> str:
    """Two lines: what was written with the noise (and kernel) estimate, then the model check."""
    sigma = result.sigma2_mode[0].sqrt().median().item() * 255
    line = f"{source} -> {target}: noise std σ̂ median {sigma:.2f}/255"
    if result.kernel_params is not None:
        lambda1, lambda2, rho = result.kernel_params[0].tolist()
        line += f", kernel λ1² {lambda1:.3f}, λ2² {lambda2:.3f}, ρ {rho:+.3f}"
    return f"{line}\n  model check: {result.checks[0].summary()}"
