"""`virnet bench NAME ...`: the paper's experiments as one-command protocols.

Registered in virnet/cli.py through ``add_parsers(subparsers)``. Each NAME is also runnable as
``python -m benchmarks.<module>`` with the same arguments (module = NAME with "_" for "-").
"""

from __future__ import annotations

from benchmarks import (
    ablation,
    calibration,
    denoise_iid,
    denoise_niid,
    denoise_real,
    kernel_estimation,
    noise_estimation,
    profile,
    sr,
)

PROTOCOLS = (
    denoise_niid,
    denoise_iid,
    denoise_real,
    sr,
    noise_estimation,
    kernel_estimation,
    calibration,
    profile,
    ablation,
)
BENCHMARKS = {module.NAME: module for module in PROTOCOLS}


def add_parsers(subparsers) -> None:
    """Register ``bench`` with one sub-command per protocol (see BENCHMARKS)."""
    bench = subparsers.add_parser(
        "bench",
        help="run one of the paper's benchmark protocols",
        description="The paper's experiments: " + "; ".join(f"{m.NAME}: {m.TITLE}" for m in PROTOCOLS) + ".",
    )
    names = bench.add_subparsers(dest="benchmark", metavar="NAME", required=True)
    for name, module in BENCHMARKS.items():
        parser = names.add_parser(name, help=module.TITLE, description=module.__doc__.split("\n\n")[0])
        module.add_arguments(parser)
        parser.set_defaults(run=module.run)
