"""Command-line interface: ``keras-indi quickstart`` (also ``python -m keras_indi``)."""

import argparse
import sys


def build_parser():
    parser = argparse.ArgumentParser(
        prog="keras-indi",
        description="InDI (Inversion by Direct Iteration) restoration with Keras 3.",
    )
    commands = parser.add_subparsers(dest="command")
    quickstart = commands.add_parser(
        "quickstart",
        help="Train regression and InDI on the built-in 2D toy and write a report folder.",
        description=(
            "Trains the same small network as a one-step regressor and with InDI on the paper's "
            "2D toy (four modes plus Gaussian noise), restores held-out points with 1 to 100 "
            "steps and writes results.md/.csv/.json, points.png and both .keras models."
        ),
    )
    quickstart.add_argument("--output", default="indi-quickstart", help="report folder (default: %(default)s)")
    quickstart.add_argument("--epochs", type=int, default=15, help="training epochs (default: %(default)s)")
    quickstart.add_argument("--samples", type=int, default=4096, help="training pairs (default: %(default)s)")
    quickstart.add_argument("--seed", type=int, default=0, help="random seed (default: %(default)s)")
    quickstart.add_argument("--overwrite", action="store_true", help="write into a non-empty output folder")
    return parser


def main(argv=None):
    parser = build_parser()
    arguments = parser.parse_args(argv)
    if arguments.command in (None, "quickstart"):
        if arguments.command is None:
            arguments = parser.parse_args(["quickstart"] + list(argv or sys.argv[1:]))
        if arguments.epochs < 1 or arguments.samples < 1:
            parser.error("--epochs and --samples must be positive integers")
        from keras_indi.quickstart import run_quickstart

        try:
            run_quickstart(arguments.output, epochs=arguments.epochs, num_samples=arguments.samples,
                           seed=arguments.seed, overwrite=arguments.overwrite)
        except ValueError as error:
            parser.exit(2, f"keras-indi: error: {error}\n")
        return 0
    parser.print_help()
    return 0


if __name__ == "__main__":
    sys.exit(main())
