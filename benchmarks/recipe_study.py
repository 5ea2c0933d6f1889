"""Equal-budget studies that chose the presets' defaults (RESULTS.md, "How the defaults were chosen").

Every variant trains the same U-Net for the same number of Adam steps on the same batches of
built-in training crops, then restores the same held-out crops (photographs the presets never
train on) at several step counts:

    KERAS_BACKEND=jax python benchmarks/recipe_study.py --study parameterization
    KERAS_BACKEND=jax python benchmarks/recipe_study.py --study recipe --tasks denoising,super_resolution_4x

Rows are appended to ``benchmarks/results/recipe/<study>.jsonl`` as they finish (a run that is
stopped keeps what it measured); ``--table`` prints the Markdown table of a results file.
"""

import argparse
import json
import os
import sys
import time

import numpy as np

STUDIES = {
    # The network's output: predicts x, x_t + G, or the EDM-style preconditioning for InDI.
    "parameterization": [
        {"name": "x", "parameterization": "x"},
        {"name": "residual", "parameterization": "residual"},
        {"name": "preconditioned", "parameterization": "preconditioned"},
    ],
    # The training recipe, around the chosen parameterization.
    "recipe": [
        {"name": "base (lr 2e-3 cosine, EMA, uniform p(t))"},
        {"name": "no EMA", "ema": False},
        {"name": "lr 1e-3", "learning_rate": 1e-3},
        {"name": "lr 4e-3", "learning_rate": 4e-3},
        {"name": "p(t) mass_at_one", "time_distribution": "mass_at_one"},
        {"name": "crops 48, batch 8", "crop_size": 48, "batch_size": 8},
    ],
}
STEP_COUNTS = (1, 5, 20, 50)


def high_frequency_power_ratio(images, reference):
    """Power above half the Nyquist frequency of `images` over that of `reference` (1 = like clean)."""
    def power(batch):
        spectrum = np.abs(np.fft.fft2(batch - batch.mean(axis=(1, 2), keepdims=True), axes=(1, 2))) ** 2
        fy = np.fft.fftfreq(batch.shape[1])[:, None]
        fx = np.fft.fftfreq(batch.shape[2])[None, :]
        mask = np.sqrt(fy**2 + fx**2) > 0.25
        return spectrum[:, mask].mean()

    return float(power(images) / power(reference))


def evaluate(model, degraded, clean, step_counts=STEP_COUNTS, seed=0):
    from keras_indi.metrics import power_spectrum_distance, psnr, sliced_wasserstein_distance

    rows = []
    for num_steps in step_counts:
        restored = np.asarray(model.restore(degraded, num_steps=num_steps, seed=seed, progress_bar=False))
        finite = bool(np.all(np.isfinite(restored)))
        restored = np.clip(np.nan_to_num(restored), -1, 1)
        rows.append(
            {
                "num_steps": num_steps,
                "psnr": float(np.mean(psnr(clean, restored))),
                "swd": float(sliced_wasserstein_distance(clean, restored)),
                "power_spectrum": float(power_spectrum_distance(clean, restored)),
                "hf_power": high_frequency_power_ratio(restored, clean),
                "finite": finite,
            }
        )
    return rows


def input_row(degraded, clean):
    from keras_indi.metrics import power_spectrum_distance, psnr, sliced_wasserstein_distance

    degraded = np.clip(degraded, -1, 1)
    return {
        "num_steps": 0,
        "psnr": float(np.mean(psnr(clean, degraded))),
        "swd": float(sliced_wasserstein_distance(clean, degraded)),
        "power_spectrum": float(power_spectrum_distance(clean, degraded)),
        "hf_power": high_frequency_power_ratio(degraded, clean),
    }


def run(study, tasks, steps, widths, seed, output, test_crops, test_size, regression):
    import keras

    from keras_indi.presets.recipes import make_pairs
    from keras_indi.presets.training import resolve_recipe, train

    os.makedirs(os.path.dirname(output) or ".", exist_ok=True)
    for task in tasks:
        test = make_pairs(task, test_crops, test_size, seed=seed + 100, held_out=True)
        with open(output, "a") as file:
            file.write(json.dumps({"study": study, "task": task, "variant": "input", "rows": [input_row(*test)]}) + "\n")
        variants = STUDIES[study]
        if regression:
            variants = variants + [{**variant, "name": variant["name"] + " [regression twin]", "time_distribution": "regression"} for variant in variants]
        for variant in variants:
            settings = {key: value for key, value in variant.items() if key != "name"}
            recipe = resolve_recipe(steps=steps, widths=widths, **settings)
            pairs = make_pairs(task, steps * recipe["batch_size"], recipe["crop_size"], seed=seed)
            model, seconds, loss = train(task, recipe, seed=seed, pairs=pairs)
            step_counts = (1,) if recipe["time_distribution"] == "regression" else STEP_COUNTS
            rows = evaluate(model, *test, step_counts=step_counts, seed=seed)
            record = {
                "study": study,
                "task": task,
                "variant": variant["name"],
                "recipe": {k: (list(v) if isinstance(v, tuple) else v) for k, v in recipe.items()},
                "train_seconds": round(seconds, 1),
                "final_loss": loss,
                "backend": keras.backend.backend(),
                "seed": seed,
                "rows": rows,
            }
            with open(output, "a") as file:
                file.write(json.dumps(record) + "\n")
            print(task, variant["name"], f"{seconds:.0f}s", " | ".join(
                f"{r['num_steps']}: {r['psnr']:.2f} dB swd {r['swd']:.4f} psd {r['power_spectrum']:.3f} hf {r['hf_power']:.2f}" for r in rows
            ), flush=True)


def table(path):
    records = [json.loads(line) for line in open(path)]
    lines = [
        "| task | variant | steps | PSNR (dB) | SWD | power-spectrum dist. | HF power | train s |",
        "|---|---|---:|---:|---:|---:|---:|---:|",
    ]
    for record in records:
        for row in record["rows"]:
            steps = "input" if row["num_steps"] == 0 else row["num_steps"]
            lines.append(
                f"| {record['task']} | {record['variant']} | {steps} | {row['psnr']:.2f} | {row['swd']:.4f} | "
                f"{row['power_spectrum']:.3f} | {row['hf_power']:.2f} | {record.get('train_seconds', '')} |"
            )
    return "\n".join(lines)


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--study", choices=sorted(STUDIES), default="parameterization")
    parser.add_argument("--tasks", default="denoising,super_resolution_4x,jpeg,motion_deblurring,generation")
    parser.add_argument("--steps", type=int, default=400, help="Adam steps per variant (equal budget)")
    parser.add_argument("--widths", default="16,32")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--test-crops", type=int, default=48)
    parser.add_argument("--test-size", type=int, default=64)
    parser.add_argument("--regression", action="store_true", help="also train each variant's regression twin")
    parser.add_argument("--output", default=None)
    parser.add_argument("--table", default=None, help="print the Markdown table of a results file and exit")
    arguments = parser.parse_args(argv)
    if arguments.table:
        print(table(arguments.table))
        return 0
    output = arguments.output or os.path.join("benchmarks", "results", "recipe", f"{arguments.study}.jsonl")
    run(
        arguments.study,
        [task for task in arguments.tasks.split(",") if task],
        arguments.steps,
        tuple(int(w) for w in arguments.widths.split(",")),
        arguments.seed,
        output,
        arguments.test_crops,
        arguments.test_size,
        arguments.regression,
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
