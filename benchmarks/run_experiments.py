"""Run the paper's experiments (`keras_indi.apps.experiments`) and write their tables and plots.

    KERAS_BACKEND=jax python benchmarks/run_experiments.py --mode fast \\
        --output benchmarks/results/experiments-cpu-fast
    python benchmarks/run_experiments.py --mode full --only indi_vs_ddpm --output results/ddpm

Modes: ``smoke`` (plumbing check, seconds), ``fast`` (tiny CPU budget, about a minute per
experiment on 2 cores), ``gpu`` (a short GPU budget: about two experiments per 9-minute device
call, an estimate; use ``--only`` and ``--time-limit``), ``full`` (sized for one GPU: roughly 4-8 H100 hours for all five,
an estimate). Each experiment writes ``<name>.md/.csv/.json``, ``<name>.png`` and
``<name>_grid.png``; the runner adds ``summary.json`` (wall time per experiment). A non-empty
output folder is refused unless ``--overwrite``.
"""

import argparse
import sys


def parse_args(argv=None):
    from keras_indi.apps.experiments import EXPERIMENTS, MODES

    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0], formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--mode", choices=sorted(MODES), default="fast", help="experiment size (default: fast)")
    parser.add_argument(
        "--only",
        action="append",
        choices=list(EXPERIMENTS),
        metavar="NAME",
        help=f"run only this experiment (repeatable); one of: {', '.join(EXPERIMENTS)}",
    )
    parser.add_argument("--output", required=True, help="output folder (must be empty or absent)")
    parser.add_argument("--overwrite", action="store_true", help="write into a non-empty output folder")
    parser.add_argument("--seed", type=int, default=0, help="seed of data, weights, training noise, sampling")
    parser.add_argument(
        "--seeds",
        type=int,
        nargs="+",
        help="run every experiment once per seed (in seed-N/ folders) and write mean and std tables (<name>_seeds.md)",
    )
    parser.add_argument("--quiet", action="store_true", help="do not print the tables")
    parser.add_argument(
        "--time-limit",
        type=float,
        default=None,
        help="seconds: start no experiment that would (by the longest so far) end after this; "
        "skipped ones are listed in summary.json",
    )
    return parser.parse_args(argv)


def main(argv=None):
    args = parse_args(argv)
    from keras_indi.apps.experiments import run_experiments
    from keras_indi.apps.quickstart import prepare_output

    try:
        prepare_output(args.output, args.overwrite)
    except ValueError as error:
        print(f"error: {error}", file=sys.stderr)
        return 2
    run_experiments(
        args.output, mode=args.mode, only=args.only, seed=args.seed, overwrite=args.overwrite,
        verbose=0 if args.quiet else 1, time_limit=args.time_limit, seeds=args.seeds,
    )
    print(f"Results written to {args.output}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
