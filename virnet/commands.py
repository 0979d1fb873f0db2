"""`virnet restore` and `virnet sample`: the command-line face of `virnet.api`.

Each command registers through an ``add_parser(subparsers)`` function whose parser sets
``run`` to a function of the parsed arguments returning the exit status. Only the standard
library is imported at the top, so that `virnet --help` and usage errors need no torch; the
commands import what they use when they run.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path
from typing import TYPE_CHECKING

from virnet.errors import VirnetError
from virnet.precision import PRECISIONS

if TYPE_CHECKING:
    import torch

    from virnet.api import Restoration
    from virnet.image_io import ImageData

EXIT_FAILED = 2


def add_restore_parser(subparsers) -> None:
    parser = subparsers.add_parser(
        "restore",
        help="denoise or super-resolve image files",
        description="Restore images with VIRNet's posterior mean. Outputs keep the input's format, bit "
        "depth and alpha channel; grayscale images go through the RGB network as three equal "
        "channels and come back as grayscale.",
    )
    parser.add_argument("inputs", nargs="+", metavar="IN", help="image files and/or folders (searched recursively)")
    parser.add_argument(
        "-o", "--output", required=True, type=Path, metavar="OUT", help="output file (one input file) or folder"
    )
    parser.add_argument("--task", choices=("denoise", "sr"), help="default: the model's task, else denoise")
    parser.add_argument("--scale", type=int, choices=(2, 3, 4), help="super-resolution factor (implies --task sr)")
    add_model_arguments(parser)
    parser.add_argument(
        "--save-sigma", action="store_true", help="also write <out>_sigma.tif: the estimated noise std σ̂ = √β"
    )
    parser.add_argument(
        "--save-kernel", action="store_true", help="also write <out>_kernel.tif: the estimated blur kernel (SR)"
    )
    parser.set_defaults(run=run_restore)


def add_sample_parser(subparsers) -> None:
    parser = subparsers.add_parser(
        "sample",
        help="draw restorations from the posterior",
        description="Draw N samples of the clean image z and the noise variance σ² from the guide "
        "q(z, σ² | y). Writes <stem>_z000.<ext>..., <stem>_sigma000.tif... (σ = √σ², float32), "
        "<stem>_mean.<ext> and <stem>_std.tif (per-pixel mean and std of z) into DIR.",
    )
    parser.add_argument("input", metavar="IN", type=Path, help="one image file")
    parser.add_argument("-n", "--samples", type=int, required=True, metavar="N", help="number of draws")
    parser.add_argument("-o", "--output", required=True, type=Path, metavar="DIR", help="output folder")
    parser.add_argument("--task", choices=("denoise", "sr"), help="default: the model's task, else denoise")
    parser.add_argument("--scale", type=int, choices=(2, 3, 4), help="super-resolution factor (implies --task sr)")
    parser.add_argument("--seed", type=int, help="seed of the draws")
    add_model_arguments(parser)
    parser.set_defaults(run=run_sample)


def add_model_arguments(parser: argparse.ArgumentParser) -> None:
    """--model, --device, --tile, --precision and --overwrite, shared by the commands that restore."""
    parser.add_argument(
        "--model", metavar="NAME|PATH", help="embedded model name or .safetensors file (default: the task's default)"
    )
    parser.add_argument("--device", default="auto", help="cpu, cuda, cuda:N or auto (default: cuda when available)")
    parser.add_argument(
        "--tile", type=int, metavar="N", help="tile side in input pixels (default: from a memory budget, 1 GiB on CPU)"
    )
    parser.add_argument(
        "--precision", choices=PRECISIONS, default="auto",
        help="arithmetic of the networks; auto: bf16 where the hardware computes it natively, else fp32",
    )
    parser.add_argument("--overwrite", action="store_true", help="replace existing output files")


def run_restore(args: argparse.Namespace) -> int:
    from tqdm import tqdm

    from virnet.api import load_for_task, restore
    from virnet.image_io import read_image
    from virnet.outputs import check_writable, plan_restore_outputs
    from virnet.tiled_posterior import tile_side

    pairs = plan_restore_outputs(args.inputs, args.output)
    task = args.task or ("sr" if args.scale else None)
    guide = load_for_task(args.model, task, args.scale, resolve_device(args.device))
    tile_side(guide, args.tile)  # validates --tile before any work
    if args.save_kernel and not guide.model_config.has_kernel:
        raise VirnetError("--save-kernel needs a super-resolution model (--task sr)")
    check_writable([path for _, out in pairs for path in _restore_targets(out, args)], args.overwrite)
    failures = 0
    for source, target in tqdm(pairs, desc="restoring", unit="image", disable=None, file=sys.stderr):
        try:
            data = read_image(source)
            result = restore(data, guide, tile=args.tile, precision=args.precision, progress=True)
            target.parent.mkdir(parents=True, exist_ok=True)
            _write_restoration(target, data, result, args)
        except (VirnetError, ValueError, OSError) as error:
            failures += 1
            tqdm.write(error_line(error), file=sys.stderr)
            continue
        tqdm.write(_report(source, target, result))
    return EXIT_FAILED if failures else 0


def run_sample(args: argparse.Namespace) -> int:
    from tqdm import tqdm

    from virnet.api import load_for_task, sample_posterior
    from virnet.image_io import list_images, read_image, write_image
    from virnet.outputs import check_writable
    from virnet.tiled_posterior import tile_side

    if args.input.is_dir():
        raise VirnetError(f"virnet sample takes one image file, got a folder: {args.input}")
    (source,) = list_images([args.input])
    if args.samples < 1:
        raise VirnetError(f"-n must be a positive number of draws, got {args.samples}")
    if args.output.is_file():
        raise VirnetError(f"output {args.output} is a file; give a folder")
    suffix = source.suffix
    draws = [args.output / f"{source.stem}_z{i:03d}{suffix}" for i in range(args.samples)]
    sigmas = [args.output / f"{source.stem}_sigma{i:03d}.tif" for i in range(args.samples)]
    mean, std = args.output / f"{source.stem}_mean{suffix}", args.output / f"{source.stem}_std.tif"
    check_writable([*draws, *sigmas, mean, std], args.overwrite)
    task = args.task or ("sr" if args.scale else None)
    guide = load_for_task(args.model, task, args.scale, resolve_device(args.device))
    tile_side(guide, args.tile)  # validates --tile before any work
    data = read_image(source)
    samples = sample_posterior(
        data, args.samples, guide, tile=args.tile, seed=args.seed, precision=args.precision, progress=True
    )
    args.output.mkdir(parents=True, exist_ok=True)
    for i in tqdm(range(args.samples), desc="writing draws", unit="draw", disable=None, file=sys.stderr):
        write_image(draws[i], samples.z[i, 0], like=data, overwrite=args.overwrite)
        write_image(sigmas[i], samples.sigma2[i, 0].sqrt(), bit_depth=32, overwrite=args.overwrite)
    write_image(mean, samples.z_mean[0], like=data, overwrite=args.overwrite)
    write_image(std, samples.z_std[0], bit_depth=32, overwrite=args.overwrite)
    print(f"{source}: {args.samples} draws written to {args.output}")
    return 0


def resolve_device(name: str) -> torch.device:
    """"auto" -> cuda when available, else cpu; otherwise the named device, which must exist."""
    import torch

    if name == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    try:
        device = torch.device(name)
    except RuntimeError:
        raise VirnetError(f"unknown device {name!r}; expected cpu, cuda, cuda:N or auto") from None
    if device.type == "cuda" and not torch.cuda.is_available():
        raise VirnetError(f"device {name} was asked for, but CUDA is not available")
    if device.type not in ("cpu", "cuda"):
        raise VirnetError(f"unsupported device {name!r}; expected cpu, cuda, cuda:N or auto")
    return device


def error_line(error: BaseException | str) -> str:
    """`virnet: error: <message>` on one line."""
    message = " ".join(str(error).split()) or type(error).__name__
    return f"virnet: error: {message}"


def _restore_targets(output: Path, args: argparse.Namespace) -> list[Path]:
    from virnet.outputs import sidecar

    targets = [output]
    if args.save_sigma:
        targets.append(sidecar(output, "sigma"))
    if args.save_kernel:
        targets.append(sidecar(output, "kernel"))
    return targets


def _write_restoration(target: Path, data: ImageData, result: Restoration, args: argparse.Namespace) -> None:
    from virnet.image_io import write_image
    from virnet.outputs import sidecar

    write_image(target, result.image[0], like=data, overwrite=args.overwrite)
    if args.save_sigma:
        sigma = result.sigma2_mode[0].sqrt()
        write_image(sidecar(target, "sigma"), sigma, bit_depth=32, overwrite=args.overwrite)
    if args.save_kernel:
        write_image(sidecar(target, "kernel"), result.kernel[0][None], bit_depth=32, overwrite=args.overwrite)


def _report(source: Path, target: Path, result: Restoration) -> str:
    """Two lines: what was written with the noise (and kernel) estimate, then the model check."""
    sigma = result.sigma2_mode[0].sqrt().median().item() * 255
    line = f"{source} -> {target}: noise std σ̂ median {sigma:.2f}/255"
    if result.kernel_params is not None:
        lambda1, lambda2, rho = result.kernel_params[0].tolist()
        line += f", kernel λ1² {lambda1:.3f}, λ2² {lambda2:.3f}, ρ {rho:+.3f}"
    return f"{line}\n  model check: {result.checks[0].summary()}"
