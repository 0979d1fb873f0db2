"""The `virnet` command: ``restore``, ``sample``, ``demo``, ``train``, ``plot-log``, ``bench``
and ``import-official``.

Subcommands are listed in COMMANDS with their one-line help and the ``add_parser(subparsers)``
function (``"module:function"``) that registers them; a registrar's parser sets ``run``
(parsed arguments -> exit status), and one registrar may add several commands. Only the
module of the command being run is imported, so `virnet --help` and usage errors do not
wait for torch. Bad input never shows a traceback: usage errors, `VirnetError`, ValueError
and OSError become one line ``virnet: error: <message>`` on stderr and exit status 2.
"""

from __future__ import annotations

import argparse
import importlib
import sys
import warnings
from collections.abc import Sequence

from virnet.errors import EXIT_FAILED, VirnetError, error_line

EXIT_INTERRUPTED = 130

# The one place where subcommands are registered: name -> (help, "module:registrar").
COMMANDS = {
    "restore": ("denoise or super-resolve image files", "cli.commands:add_restore_parser"),
    "sample": ("draw restorations from the posterior", "cli.commands:add_sample_parser"),
    "demo": ("denoise a sample photo with synthetic non-i.i.d. noise and draw a figure", "cli.demo:add_parser"),
    "train": ("train VIRNet with SVI", "cli.train:add_parsers"),
    "plot-log": ("draw the curves of a training run's metrics.csv", "cli.train:add_parsers"),
    "bench": ("run one of the paper's benchmark protocols", "cli.bench:add_parsers"),
    "import-official": (
        "convert a released VIRNet checkpoint (.pth) into a model file",
        "cli.import_official:add_parser",
    ),
}


class _UsageError(VirnetError):
    """A command line argparse rejects."""


class _Parser(argparse.ArgumentParser):
    """An ArgumentParser that raises instead of printing the usage and exiting."""

    def error(self, message: str):
        raise _UsageError(f"{message} (see '{self.prog} --help')")


def build_parser(command: str | None = None) -> argparse.ArgumentParser:
    """The parser with every command listed and `command`'s own arguments (its registrar's
    module is imported); the other commands are placeholders that only carry their help."""
    parser = _Parser(prog="virnet", description="VIRNet: blind image restoration by variational inference (Pyro).")
    subparsers = parser.add_subparsers(dest="command", metavar="COMMAND", required=True)
    wanted = COMMANDS[command][1] if command in COMMANDS else None
    for name, (summary, registrar) in COMMANDS.items():
        if name in subparsers.choices:
            continue
        if registrar == wanted:
            module, function = registrar.split(":")
            getattr(importlib.import_module(module), function)(subparsers)
        else:
            subparsers.add_parser(name, help=summary)
    return parser


def parse(parser: argparse.ArgumentParser, argv: Sequence[str] | None) -> argparse.Namespace:
    """``parser.parse_args(argv)`` (``None``: ``sys.argv[1:]``), except that a command taking
    ``SECTION.KEY=VALUE`` overrides takes them anywhere on its line (argparse alone takes only
    the first run of them: in ``a=1 --init X b=2``, ``b=2`` would be an unrecognized argument)."""
    args, extras = parser.parse_known_args(argv)
    if extras and hasattr(args, "overrides") and not any(extra.startswith("-") for extra in extras):
        args.overrides = [*args.overrides, *extras]
    elif extras:
        parser.error(f"unrecognized arguments: {' '.join(extras)}")
    return args


def main(argv: Sequence[str] | None = None) -> int:
    """Run the `virnet` command line; returns the exit status (0 success, 2 error)."""
    with warnings.catch_warnings():
        warnings.showwarning = _warn_in_one_line
        return _run(argv)


def _run(argv: Sequence[str] | None) -> int:
    argv = sys.argv[1:] if argv is None else list(argv)
    command = next((arg for arg in argv if not arg.startswith("-")), None)
    try:
        args = parse(build_parser(command), argv)
        return args.run(args)
    except SystemExit as exit_request:  # --help
        return exit_request.code if isinstance(exit_request.code, int) else EXIT_FAILED
    except _reported_errors() as error:
        print(error_line(error), file=sys.stderr)
    except _out_of_memory_errors():
        print(error_line("out of memory: pass a smaller --tile"), file=sys.stderr)
    except KeyboardInterrupt as interrupt:  # a command may say how far it got
        print(error_line(interrupt if str(interrupt) else "interrupted"), file=sys.stderr)
        # Objects the interrupt left half-built (e.g. an image plugin) may fail in their
        # finalizers on the way out; that report would bury the one line above.
        sys.unraisablehook = lambda unraisable: None
        return EXIT_INTERRUPTED
    return EXIT_FAILED


def _warn_in_one_line(message, category, filename, lineno, file=None, line=None) -> None:
    print(f"virnet: warning: {' '.join(str(message).split())}", file=sys.stderr)


def _reported_errors() -> tuple[type[BaseException], ...]:
    """The errors shown as one line; a training divergence only once training was imported."""
    loop = sys.modules.get("training.loop")
    return (VirnetError, ValueError, OSError) + ((loop.TrainingDiverged,) if loop else ())


def _out_of_memory_errors() -> tuple[type[BaseException], ...]:
    torch = sys.modules.get("torch")
    return (MemoryError,) + ((torch.cuda.OutOfMemoryError,) if torch else ())


if __name__ == "__main__":
    sys.exit(main())
