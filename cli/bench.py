"""`virnet bench NAME ...`: the paper's experiments (benchmarks/catalogue.py) as one-command protocols."""

from __future__ import annotations

from benchmarks.catalogue import BENCHMARKS, PROTOCOLS


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
