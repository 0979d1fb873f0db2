"""`virnet train` and `virnet plot-log`: the command-line face of the training package."""

from __future__ import annotations

import argparse
from pathlib import Path

from training.config import load_config, preset_names


def add_parsers(subparsers) -> None:
    """Register ``train`` and ``plot-log`` on an argparse sub-parser collection."""
    train = subparsers.add_parser(
        "train",
        help="train VIRNet with SVI",
        description="Train VIRNet with stochastic variational inference (Pyro). "
        f"Presets: {', '.join(preset_names())}.",
    )
    add_train_arguments(train)
    train.set_defaults(run=run_train)
    plot = subparsers.add_parser("plot-log", help="draw the curves of a training run's metrics.csv")
    plot.add_argument("log", type=Path, help="metrics.csv of a run (or the run's folder)")
    plot.add_argument("-o", "--output", type=Path, help="PNG to write (default: next to the log)")
    plot.add_argument("--overwrite", action="store_true", help="replace an existing PNG")
    plot.set_defaults(run=run_plot_log)


def add_train_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--config", required=True, help="preset name or TOML file")
    parser.add_argument("--data", type=Path, help="folder of training images (or noisy/ and clean/ for real noise)")
    parser.add_argument("--device", default="cpu", help="cpu, cuda or cuda:N")
    parser.add_argument("--out", type=Path, help="run folder (default: runs/<preset>)")
    parser.add_argument("--steps", type=int, help="shortcut for optim.steps=N")
    parser.add_argument("--elbo", choices=("mc", "analytic"), help="shortcut for optim.elbo=...")
    parser.add_argument("--resume", action="store_true", help="continue from the latest checkpoint in --out")
    parser.add_argument(
        "--init",
        metavar="NAME|PATH",
        help="fine-tune: start from these weights (a .safetensors model or an embedded name) and their "
        "guide architecture; the optimizer starts fresh",
    )
    parser.add_argument("--no-progress", action="store_true", help="no progress bar")
    parser.add_argument("overrides", nargs="*", metavar="SECTION.KEY=VALUE", help="e.g. optim.lr=2e-4")


def run_train(args: argparse.Namespace) -> int:
    from training.checkpoint import latest_checkpoint
    from training.loop import distributed_context, train

    overrides = list(args.overrides)
    if args.steps is not None:
        overrides.append(f"optim.steps={args.steps}")
    if args.elbo is not None:
        overrides.append(f"optim.elbo='{args.elbo}'")
    config = load_config(args.config, overrides)
    if args.data is None:
        raise ValueError("--data is required: a folder of training images")
    out = args.out or Path("runs") / config.name
    if not args.resume and latest_checkpoint(out / "checkpoints") is not None:
        raise ValueError(f"{out} already holds a run: pass --resume to continue it or choose another --out")
    init = None
    if args.init is not None:
        from virnet.models import resolve_weights

        init = resolve_weights(args.init)
    result = train(
        config, args.data, out, device=args.device, resume=args.resume, progress=not args.no_progress, init=init
    )
    if distributed_context()[0] == 0:
        print(f"trained {result.step} steps; weights: {result.weights}")
    return 0


def run_plot_log(args: argparse.Namespace) -> int:
    from training.plot_log import plot_log

    log = args.log / "metrics.csv" if args.log.is_dir() else args.log
    output = args.output or log.with_suffix(".png")
    if output.exists() and not args.overwrite:
        raise ValueError(f"{output} exists; pass --overwrite to replace it")
    plot_log(log, output)
    print(f"wrote {output}")
    return 0
