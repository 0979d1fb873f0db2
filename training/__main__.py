"""`python -m training ...` (e.g. under `torchrun --nproc_per_node N -m training ...`).

An entry point, so it stands on the command line's floor (cli/train.py).

Takes the arguments of `virnet train`; with several processes it trains with
DistributedDataParallel and only rank 0 writes logs and checkpoints.
"""

import argparse
import sys

from cli import parse
from cli.train import add_train_arguments, run_train
from training.loop import TrainingDiverged


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(prog="python -m training", description="Train VIRNet with SVI.")
    add_train_arguments(parser)
    args = parse(parser, argv)
    try:
        return run_train(args)
    except (ValueError, OSError, TrainingDiverged) as error:
        print(f"training: error: {error}", file=sys.stderr)
        return 2 if not isinstance(error, TrainingDiverged) else 1


if __name__ == "__main__":
    sys.exit(main())
