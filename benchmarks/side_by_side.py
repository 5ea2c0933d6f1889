"""Two trainings one after the other, or side by side (`keras_indi.fit_side_by_side`).

    python benchmarks/side_by_side.py              # the BENCHMARKS.md table (~4 min on 2 cores, JAX)
    python benchmarks/side_by_side.py --quick      # smoke test: 3 steps

The quickstart's pair: its (16, 32) U-Net trained with InDI and as a one-step regressor on the
same batches of 16 denoising crops of 32x32 (`--steps` each), one `fit` after the other, then
both at once in threads. Each way runs in a fresh process of the current backend
(``KERAS_BACKEND``), alternating over `--rounds`; the table gives the medians of the wall time
of building and training both models, and checks that both ways end with the same losses.
Writes ``side_by_side.json`` and ``.md`` under --output (default
``benchmarks/results/side_by_side``).
"""

import argparse
import os
import statistics
import sys
import time

HERE = os.path.dirname(os.path.abspath(__file__))
REPO = os.path.dirname(HERE)

WORKER = r"""
import json, sys, time
sys.path.insert(0, {repo!r})
import keras
from keras_indi.apps.quickstart import build_model, resolve_settings
from keras_indi.datasets import build_task_datasets
from keras_indi.datasets.sources import builtin_images
from keras_indi.degradations import AdditiveGaussianNoise
from keras_indi.presets.recipes import TRAINING_IMAGES
from keras_indi.utils.side_by_side import fit_side_by_side

mode, steps = {mode!r}, {steps}
settings = dict(resolve_settings(steps_per_epoch=steps), precision="float32")
images = builtin_images(TRAINING_IMAGES)
def pairs():
    return build_task_datasets("denoising", source=images, degradation=AdditiveGaussianNoise(sigma=0.5, seed=0),
                               image_size=32, batch_size=16, seed=0, steps_per_epoch=steps,
                               validation_fraction=0, output="numpy")[0]
start = time.perf_counter()
models = {{name: build_model(settings, distribution, "denoising", 0)
          for name, distribution in (("indi", "mass_at_one"), ("regression", "regression"))}}
built = time.perf_counter()
if mode == "side by side":
    losses = {{name: history.history["loss"][-1]
              for name, (history, _) in fit_side_by_side({{n: (m, pairs()) for n, m in models.items()}}, verbose=0).items()}}
else:
    losses = {{name: model.fit(pairs(), epochs=1, verbose=0, shuffle=False).history["loss"][-1] for name, model in models.items()}}
end = time.perf_counter()
print("RESULT " + json.dumps({{"build_s": built - start, "train_s": end - built, "losses": losses,
                              "backend": keras.backend.backend()}}))
"""

MODES = ("one after the other", "side by side")


def parse_args(argv=None):
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--quick", action="store_true", help="smoke test: 3 steps, one round")
    parser.add_argument("--steps", type=int, default=None, help="training steps per model (default 100)")
    parser.add_argument("--rounds", type=int, default=None, help="alternating rounds (default 2)")
    parser.add_argument("--output", default=os.path.join(HERE, "results", "side_by_side"))
    return parser.parse_args(argv)


def run_worker(mode, steps):
    code = WORKER.format(repo=REPO, mode=mode, steps=steps)
    from machine import run_python_worker

    return run_python_worker(code)


def main(argv=None):
    args = parse_args(argv)
    steps = args.steps or (3 if args.quick else 100)
    rounds = args.rounds or (1 if args.quick else 2)
    sys.path.insert(0, HERE)
    from machine import alternate, cpu_model, load_average, write_report

    load_before = load_average()
    runs = alternate(MODES, rounds, lambda mode: run_worker(mode, steps))
    medians = {mode: {key: statistics.median(run[key] for run in results) for key in ("build_s", "train_s")}
               for mode, results in runs.items()}
    same_losses = all(run["losses"] == runs[MODES[0]][0]["losses"] for results in runs.values() for run in results)
    backend = runs[MODES[0]][0]["backend"]
    report = {"cpu": cpu_model(), "date": time.strftime("%Y-%m-%d %H:%M"), "backend": backend, "steps": steps,
              "rounds": rounds, "load_average_before": load_before, "load_average_after": load_average(),
              "runs": runs, "medians": medians, "same_losses": same_losses}
    sequential, together = medians[MODES[0]]["train_s"], medians[MODES[1]]["train_s"]
    lines = [
        f"Two trainings of the quickstart's (16, 32) U-Net ({steps} steps of 16 crops of 32x32 each), {backend}, "
        f"{report['cpu']}, {report['date']}; median of {rounds} alternating rounds, a fresh process each; "
        f"load average before {load_before}, after {report['load_average_after']}.",
        "",
        "| | build both (s) | train both (s) |",
        "|---|---:|---:|",
        *[f"| {mode} | {medians[mode]['build_s']:.1f} | {medians[mode]['train_s']:.1f} |" for mode in MODES],
        "",
        f"Side by side: {sequential / together:.2f}x faster training; the same final losses both ways: {same_losses}.",
    ]
    write_report(args.output, "side_by_side" + ("_quick" if args.quick else ""), report, lines)
    return report


if __name__ == "__main__":
    main()
