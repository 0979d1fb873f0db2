"""`virnet restore` and `virnet sample`: their command lines.

Each command registers through an ``add_parser(subparsers)`` function whose parser sets
``run`` to a function of the parsed arguments returning the exit status. The work itself is
in `cli.restoring`, imported only when a command runs, so that `virnet --help` and usage
errors need no torch: this module imports the standard library and light modules only.
"""

from __future__ import annotations

import argparse
import importlib
from collections.abc import Callable
from pathlib import Path

from generative.config import SR_SCALES, TASKS
from imagefiles.formats import DEFAULT_MAX_PIXELS
from virnet.precision import PRECISIONS


def add_restore_parser(subparsers) -> None:
    parser = subparsers.add_parser(
        "restore",
        help="denoise or super-resolve image files",
        description="Restore images with VIRNet's posterior mean. Outputs keep the input's format, bit "
        "depth (unless --bit-depth) and alpha channel; grayscale images go through the RGB network as "
        "three equal channels and come back as grayscale.",
    )
    parser.add_argument("inputs", nargs="+", metavar="IN", help="image files and/or folders (searched recursively)")
    parser.add_argument(
        "-o", "--output", required=True, type=Path, metavar="OUT", help="output file (one input file) or folder"
    )
    parser.add_argument("--task", choices=TASKS, help="default: the model's task, else denoise")
    parser.add_argument("--scale", type=int, choices=SR_SCALES, help="super-resolution factor (implies --task sr)")
    add_model_arguments(parser)
    parser.add_argument(
        "--save-sigma",
        action="store_true",
        help="also write <out>_sigma.tif: the estimated noise std σ̂ = √β (float32, [0, 1] image scale)",
    )
    parser.add_argument(
        "--save-kernel", action="store_true", help="also write <out>_kernel.tif: the estimated blur kernel (SR)"
    )
    parser.add_argument(
        "--skip-existing",
        action="store_true",
        help="leave inputs whose outputs all exist alone (continues an interrupted folder restore)",
    )
    parser.set_defaults(run=_run("run_restore"))


def add_sample_parser(subparsers) -> None:
    parser = subparsers.add_parser(
        "sample",
        help="draw restorations from the posterior",
        description="Draw N samples of the clean image z and the noise variance σ² from the guide "
        "q(z, σ² | y). Writes <stem>_z000.<ext>..., <stem>_sigma000.tif... (σ = √σ², float32), "
        "<stem>_mean.<ext> and <stem>_std.tif (per-pixel mean and std of z) into DIR. "
        "The σ² draws are the model's uncertainty about the noise; the z draws are not an "
        "uncertainty of the restoration: q(z|y) = N(µ, ε0²) has the spread ε0 fixed by the model "
        "(1e-3 for denoising, about a quarter of a grey level), whatever the image.",
    )
    parser.add_argument("input", metavar="IN", type=Path, help="one image file")
    parser.add_argument("-n", "--samples", type=int, required=True, metavar="N", help="number of draws")
    parser.add_argument("-o", "--output", required=True, type=Path, metavar="DIR", help="output folder")
    parser.add_argument("--task", choices=TASKS, help="default: the model's task, else denoise")
    parser.add_argument("--scale", type=int, choices=SR_SCALES, help="super-resolution factor (implies --task sr)")
    parser.add_argument("--seed", type=int, help="seed of the draws")
    add_model_arguments(parser)
    parser.set_defaults(run=_run("run_sample"))


def add_model_arguments(parser: argparse.ArgumentParser) -> None:
    """--model, --device, --tile, --precision, --max-pixels, --bit-depth and --overwrite,
    shared by the commands that restore."""
    parser.add_argument(
        "--model", metavar="NAME|PATH", help="embedded model name or .safetensors file (default: the task's default)"
    )
    parser.add_argument("--device", default="auto", help="cpu, cuda, cuda:N or auto (default: cuda when available)")
    parser.add_argument(
        "--tile", type=int, metavar="N", help="tile side in input pixels (default: from a memory budget, 1 GiB on CPU)"
    )
    parser.add_argument(
        "--precision",
        choices=PRECISIONS,
        default="auto",
        help="arithmetic of the networks; auto: bf16 where the hardware computes it natively, else fp32",
    )
    parser.add_argument(
        "--max-pixels",
        type=_positive_int,
        default=DEFAULT_MAX_PIXELS,
        metavar="N",
        help=f"refuse larger images, checked from the file header (default {DEFAULT_MAX_PIXELS:_})",
    )
    parser.add_argument(
        "--bit-depth",
        type=int,
        choices=(8, 16, 32),
        help="bits per sample of the restored images (default: the input's; 32 = float TIFF)",
    )
    parser.add_argument("--overwrite", action="store_true", help="replace existing output files")



def _positive_int(text: str) -> int:
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"invalid int value: {text!r}") from None
    if value < 1:
        raise argparse.ArgumentTypeError(f"must be a positive integer, got {value}")
    return value



def _run(name: str) -> Callable[[argparse.Namespace], int]:
    """The function `name` of `cli.restoring`, imported when the command runs."""

    def run(args: argparse.Namespace) -> int:
        return getattr(importlib.import_module("cli.restoring"), name)(args)

    return run
