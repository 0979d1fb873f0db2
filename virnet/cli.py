"""The `virnet` command: ``restore``, ``sample``, ``demo``, ``train``, ``plot-log``, ``bench``
and ``import-official``.

Subcommands register through ``add_parser(subparsers)`` functions listed in REGISTRARS; each
sets ``run`` (parsed arguments -> exit status). Bad input never shows a traceback: usage
errors, `VirnetError`, ValueError and OSError become one line ``virnet: error: <message>`` on
stderr and exit status 2.
"""

from __future__ import annotations

import argparse
import sys
from collections.abc import Sequence

import torch

from benchmarks import command as bench_command
from training import command as train_command
from training.loop import TrainingDiverged
from virnet import commands, demo, import_command
from virnet.commands import EXIT_FAILED, error_line
from virnet.errors import VirnetError

EXIT_INTERRUPTED = 130

# The one place where subcommands are registered (each: subparsers -> None).
REGISTRARS = (
    commands.add_restore_parser,
    commands.add_sample_parser,
    demo.add_parser,
    train_command.add_parsers,
    bench_command.add_parsers,
    import_command.add_parser,
)


class _UsageError(VirnetError):
    """A command line argparse rejects."""


class _Parser(argparse.ArgumentParser):
    """An ArgumentParser that raises instead of printing the usage and exiting."""

    def error(self, message: str):
        raise _UsageError(f"{message} (see '{self.prog} --help')")


def build_parser() -> argparse.ArgumentParser:
    parser = _Parser(prog="virnet", description="VIRNet: blind image restoration by variational inference (Pyro).")
    subparsers = parser.add_subparsers(dest="command", metavar="COMMAND", required=True)
    for register in REGISTRARS:
        register(subparsers)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    """Run the `virnet` command line; returns the exit status (0 success, 2 error)."""
    try:
        args = build_parser().parse_args(argv)
        return args.run(args)
    except SystemExit as exit_request:  # --help
        return exit_request.code if isinstance(exit_request.code, int) else EXIT_FAILED
    except (VirnetError, ValueError, OSError, TrainingDiverged) as error:
        print(error_line(error), file=sys.stderr)
    except (torch.cuda.OutOfMemoryError, MemoryError):
        print(error_line("out of memory: pass a smaller --tile"), file=sys.stderr)
    except KeyboardInterrupt:
        print(error_line("interrupted"), file=sys.stderr)
        return EXIT_INTERRUPTED
    return EXIT_FAILED


if __name__ == "__main__":
    sys.exit(main())
