"""`virnet train` and `virnet plot-log`: the command-line face of the training package
(also `python -m training`, training/__main__.py).

`virnet train` checks the whole command (config and overrides, device, output folder, the
checkpoint to resume) before it creates or changes anything; the data is checked by
`training.loop.train` before it writes. A new run needs an absent or empty --out: an existing
run is only ever continued (--resume), never started over.
"""

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
    parser.add_argument(
        "--grow-rnet-blocks",
        type=int,
        metavar="N",
        help="with --init: append residual blocks to each RNet stage until it has N; the new ones "
        "start as the identity, so training starts from the weights' quality",
    )
    parser.add_argument("--no-progress", action="store_true", help="no progress bar")
    parser.add_argument("overrides", nargs="*", metavar="SECTION.KEY=VALUE", help="e.g. optim.lr=2e-4")


def run_train(args: argparse.Namespace) -> int:
    from training.loop import distributed_context, train
    from cli.outputs import check_folder_writable
    from virnet.devices import resolve_device

    overrides = list(args.overrides)
    if args.steps is not None:
        overrides.append(f"optim.steps={args.steps}")
    if args.elbo is not None:
        overrides.append(f"optim.elbo='{args.elbo}'")
    config = load_config(args.config, overrides)
    if args.data is None:
        raise ValueError("--data is required: a folder of training images")
    device = resolve_device(args.device)
    out = args.out or Path("runs") / config.name
    if out.exists() and not out.is_dir():
        raise ValueError(f"--out {out} is a file; give a run folder")
    if args.grow_rnet_blocks is not None and args.init is None:
        raise ValueError("--grow-rnet-blocks needs --init: the weights whose RNet it grows")
    if args.resume and not out.is_dir():
        raise ValueError(f"nothing to resume: there is no run folder {out}")
    is_writer = distributed_context()[0] == 0
    if is_writer and not args.resume and out.is_dir() and any(out.iterdir()):
        held = ", ".join(sorted(p.name for p in out.iterdir())[:5])
        raise ValueError(f"{out} already holds {held}: pass --resume to continue its run or choose another --out")
    if is_writer:
        check_folder_writable(out)
    init = None
    if args.init is not None:
        from virnet.models import resolve_weights

        init = resolve_weights(args.init)
    result = train(
        config, args.data, out, device=device, resume=args.resume, progress=not args.no_progress, init=init,
        grow_rnet_blocks=args.grow_rnet_blocks,
    )
    if is_writer:
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
