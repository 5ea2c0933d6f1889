"""Building a network on JAX: one random-number program per weight shape, or a few shared ones.

    python benchmarks/initializer_programs.py           # the BENCHMARKS.md table (~2 min on 2 cores)
    python benchmarks/initializer_programs.py --quick   # smoke test: a tiny U-Net, one round

JAX compiles a random-number program for every weight shape a network's initializers draw;
keras-indi's networks build inside `keras_indi.backend.shared_initializer_programs`, which
draws at power-of-two sizes and cuts (the same values, from fewer programs). Each way builds
the quickstart's (16, 32) U-Net (``--widths``) after the quickstart's seeding, in a fresh JAX
process, alternating over ``--rounds``; the table gives the median build time and checks that
both ways give the same weights, bit for bit. Writes ``initializer_programs.json`` and ``.md``
under --output (default ``benchmarks/results/initializer_programs``).
"""

import argparse
import os
import statistics
import sys
import time

HERE = os.path.dirname(os.path.abspath(__file__))
REPO = os.path.dirname(HERE)

WORKER = r"""
import contextlib, hashlib, json, sys, time
sys.path.insert(0, {repo!r})
import keras
import numpy as np
import keras_indi.networks.unet as unet
from keras_indi.apps.quickstart import build_model, resolve_settings

if {mode!r} == "one program per shape":
    unet.shared_initializer_programs = contextlib.nullcontext
settings = dict(resolve_settings(widths={widths!r}), precision="float32")
start = time.perf_counter()
model = build_model(settings, "mass_at_one", "denoising", 0)
seconds = time.perf_counter() - start
digest = hashlib.sha256(b"".join(np.ascontiguousarray(keras.ops.convert_to_numpy(w)).tobytes()
                                 for w in model.network.weights)).hexdigest()
print("RESULT " + json.dumps({{"build_s": seconds, "weights_sha256": digest, "backend": keras.backend.backend(),
                              "weight_shapes": len({{tuple(w.shape) for w in model.network.weights}})}}))
"""

MODES = ("one program per shape", "shared programs")


def parse_args(argv=None):
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--quick", action="store_true", help="smoke test: a (4, 8) U-Net, one round")
    parser.add_argument("--widths", type=int, nargs="+", default=None, help="U-Net widths (default 16 32)")
    parser.add_argument("--rounds", type=int, default=None, help="alternating rounds (default 3)")
    parser.add_argument("--output", default=os.path.join(HERE, "results", "initializer_programs"))
    return parser.parse_args(argv)


def main(argv=None):
    args = parse_args(argv)
    widths = tuple(args.widths or ((4, 8) if args.quick else (16, 32)))
    rounds = args.rounds or (1 if args.quick else 3)
    sys.path.insert(0, HERE)
    from machine import alternate, cpu_model, load_average, run_python_worker, write_report

    environment = dict(os.environ, KERAS_BACKEND="jax")
    load_before = load_average()
    runs = alternate(MODES, rounds, lambda mode: run_python_worker(WORKER.format(repo=REPO, mode=mode, widths=widths),
                                                                   environment))
    medians = {mode: statistics.median(run["build_s"] for run in results) for mode, results in runs.items()}
    same_weights = len({run["weights_sha256"] for results in runs.values() for run in results}) == 1
    report = {"cpu": cpu_model(), "date": time.strftime("%Y-%m-%d %H:%M"), "backend": "jax", "widths": widths,
              "rounds": rounds, "load_average_before": load_before, "load_average_after": load_average(),
              "runs": runs, "median_build_s": medians, "same_weights": same_weights}
    shapes = runs[MODES[0]][0]["weight_shapes"]
    lines = [
        f"Building the quickstart's U-Net (widths {list(widths)}, {shapes} distinct weight shapes) after its "
        f"seeding, jax, {report['cpu']}, {report['date']}; median of {rounds} alternating rounds, a fresh "
        f"process each; load average before {load_before}, after {report['load_average_after']}.",
        "",
        "| initial weights drawn with | build (s) |",
        "|---|---:|",
        *[f"| {mode} | {medians[mode]:.1f} |" for mode in MODES],
        "",
        f"Shared programs: {medians[MODES[0]] / medians[MODES[1]]:.2f}x faster; the same weights bit for bit: "
        f"{same_weights}.",
    ]
    write_report(args.output, "initializer_programs" + ("_quick" if args.quick else ""), report, lines)
    return report


if __name__ == "__main__":
    main()
