"""The built-in demonstration: regression to the mean versus InDI on the paper's 2D toy.

Trains the same `TimeConditionalMLP` twice, as a one-step regressor and with InDI, restores
held-out noisy points with several step counts and writes a report folder:
``results.md``, ``results.csv``, ``results.json``, ``points.png`` and the two ``.keras`` models.
"""

import csv
import json
import os
import time

import keras
import numpy as np

from keras_indi.datasets.toy import DEFAULT_MODES, distance_to_nearest_mode, toy_modes_dataset
from keras_indi.models.indi_model import InDIModel
from keras_indi.networks.mlp import TimeConditionalMLP

STEP_COUNTS = (1, 2, 5, 10, 20, 50, 100)


def _prepare_output(output_dir, overwrite):
    if os.path.exists(output_dir) and os.listdir(output_dir) and not overwrite:
        raise ValueError(
            f"The output folder {output_dir!r} already exists and is not empty. Choose another "
            "`--output` or pass `--overwrite`."
        )
    os.makedirs(output_dir, exist_ok=True)


def run_quickstart(output_dir="indi-quickstart", epochs=15, num_samples=4096, seed=0, overwrite=False, verbose=1):
    """Train regression and InDI on the 2D toy, evaluate, and write a report.

    Returns the list of result rows (dicts). Takes about a minute on a laptop CPU.

    Example:

    >>> rows = run_quickstart("/tmp/indi-demo", epochs=1, num_samples=512, overwrite=True, verbose=0)  # doctest: +SKIP
    """
    _prepare_output(output_dir, overwrite)
    keras.utils.set_random_seed(seed)
    degraded, clean = toy_modes_dataset(num_samples, seed=seed)
    test_degraded, test_clean = toy_modes_dataset(1024, seed=seed + 1)
    rows, restorations, models = [], {}, {}
    for method, distribution in (("regression", "regression"), ("indi", "uniform")):
        network = TimeConditionalMLP(features=2, hidden_units=(128, 128, 128))
        model = InDIModel(network, time_distribution=distribution, noise_schedule=0.0, value_range=None, seed=seed)
        model.compile(optimizer=keras.optimizers.Adam(2e-3))
        if verbose:
            print(f"Training {method} for {epochs} epochs on {num_samples} pairs")
        start = time.time()
        model.fit(degraded, clean, batch_size=256, epochs=epochs, verbose=verbose)
        training_seconds = time.time() - start
        models[method] = model
        for num_steps in (1,) if method == "regression" else STEP_COUNTS:
            restored = model.restore(test_degraded, num_steps=num_steps, seed=seed, progress_bar=False)
            restorations[(method, num_steps)] = restored
            rows.append(
                {
                    "method": method,
                    "num_steps": num_steps,
                    "distance_to_nearest_mode": float(distance_to_nearest_mode(restored).mean()),
                    "mean_squared_error": float(np.mean(np.sum((restored - test_clean) ** 2, axis=1))),
                    "training_seconds": round(training_seconds, 2),
                }
            )
        model.save(os.path.join(output_dir, f"{method}.keras"))
    _write_tables(rows, output_dir)
    _plot(test_degraded, restorations, os.path.join(output_dir, "points.png"))
    if verbose:
        print(to_markdown(rows))
        print(f"Report written to {output_dir}")
    return rows


def to_markdown(rows):
    header = "| method | steps | distance to nearest mode | mean squared error |\n|---|---:|---:|---:|\n"
    lines = [
        f"| {r['method']} | {r['num_steps']} | {r['distance_to_nearest_mode']:.4f} | {r['mean_squared_error']:.4f} |"
        for r in rows
    ]
    return header + "\n".join(lines) + "\n"


def _write_tables(rows, output_dir):
    with open(os.path.join(output_dir, "results.md"), "w") as file:
        file.write(to_markdown(rows))
    with open(os.path.join(output_dir, "results.json"), "w") as file:
        json.dump({"backend": keras.backend.backend(), "rows": rows}, file, indent=2)
    with open(os.path.join(output_dir, "results.csv"), "w", newline="") as file:
        writer = csv.DictWriter(file, fieldnames=list(rows[0]))
        writer.writeheader()
        writer.writerows(rows)


def _plot(degraded, restorations, path):
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    panels = [("degraded input", degraded), ("regression (1 step)", restorations[("regression", 1)])]
    panels += [(f"InDI, {n} steps", restorations[("indi", n)]) for n in (1, 5, 100)]
    figure, axes = plt.subplots(1, len(panels), figsize=(3.2 * len(panels), 3.4), sharex=True, sharey=True)
    for axis, (title, points) in zip(axes, panels):
        axis.scatter(points[:, 0], points[:, 1], s=3, alpha=0.4)
        axis.scatter(DEFAULT_MODES[:, 0], DEFAULT_MODES[:, 1], marker="x", color="red", s=60, label="modes")
        axis.set_title(title)
        axis.set_xlim(-1.5, 1.5)
        axis.set_ylim(-1.5, 1.5)
        axis.set_aspect("equal")
    axes[0].legend(loc="lower left")
    figure.tight_layout()
    figure.savefig(path, dpi=100)
    plt.close(figure)
