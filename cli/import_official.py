"""`virnet import-official`: a checkpoint released with the public implementation -> our model."""

from __future__ import annotations

import argparse
from pathlib import Path

from virnet import official


def add_parser(subparsers) -> None:
    parser = subparsers.add_parser(
        "import-official",
        help="convert a released VIRNet checkpoint (.pth) into a model file",
        description="Convert a checkpoint released with the public VIRNet implementation "
        f"({official.RELEASE_URL}: virnet_denoising_syn.pth, virnet_denoising_real.pth, "
        "virnet_sisr_x2/x3/x4.pth) into safetensors + JSON, usable wherever --model takes a path. "
        "The file is read with torch.load(weights_only=True): no code in it runs.",
    )
    parser.add_argument("checkpoint", type=Path, metavar="CKPT.pth", help="the released checkpoint")
    parser.add_argument(
        "--task", required=True, choices=official.OFFICIAL_TASKS, help="what the checkpoint was trained for"
    )
    parser.add_argument("--scale", type=int, choices=official.SR_SCALES, help="super-resolution factor (--task sr)")
    parser.add_argument(
        "-o", "--output", required=True, type=Path, metavar="OUT.safetensors", help="model file to write"
    )
    parser.add_argument("--overwrite", action="store_true", help="replace an existing model file")
    parser.set_defaults(run=run_import)


def run_import(args: argparse.Namespace) -> int:
    from virnet.models import import_official, load_model

    output = import_official(args.checkpoint, args.output, args.task, args.scale, args.overwrite)
    guide = load_model(output)
    parameters = sum(p.numel() for p in guide.parameters())
    scale = f" x{args.scale}" if args.scale else ""
    print(f"imported {args.checkpoint} ({args.task}{scale}, {parameters / 1e6:.2f}M parameters) -> {output}")
    return 0
