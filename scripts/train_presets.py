"""Train the presets that ship with keras-indi (keras_indi.list_presets()), from their seed.

    KERAS_BACKEND=jax python scripts/train_presets.py denoising denoising_regression
    KERAS_BACKEND=jax python scripts/train_presets.py --all
    KERAS_BACKEND=jax python scripts/train_presets.py denoising --fast --output-dir /tmp/presets

Each preset trains on the built-in data only (scikit-image photographs in
`keras_indi.presets.recipes.TRAINING_IMAGES` plus dead leaves), is evaluated on the held-out
photographs, and is written as ``<name>.keras`` with its metadata merged into ``presets.json``
(both written atomically) in `--output-dir` (default: the package's preset folder).
`--fast` trains a few steps (for tests): never into the package folder.
"""

import argparse
import datetime
import json
import os
import platform
import sys
import time

import numpy as np

os.environ.setdefault("KERAS_BACKEND", "jax")

STEP_COUNTS = (1, 2, 5, 10, 20, 50)
TEST_CROPS, TEST_SIZE, TEST_SEED = 48, 64, 100
PHOTO_SIZE = 256


def _atomic_write(path, write):
    """Write through a temporary file beside `path` (same extension) and rename it into place."""
    root, extension = os.path.splitext(path)
    temporary = f"{root}.tmp-{os.getpid()}{extension}"
    try:
        write(temporary)
        os.replace(temporary, path)
    finally:
        if os.path.exists(temporary):
            os.remove(temporary)


def _metrics(model, degraded, clean, step_counts, seed):
    from keras_indi.metrics import power_spectrum_distance, psnr, ssim, sliced_wasserstein_distance

    rows = []
    for num_steps in step_counts:
        if num_steps == 0:
            restored = np.clip(degraded, -1, 1)
        else:
            restored = np.clip(np.asarray(model.restore(degraded, num_steps=num_steps, seed=seed, progress_bar=False)), -1, 1)
        rows.append(
            {
                "num_steps": num_steps,
                "psnr": round(float(np.mean(np.asarray(psnr(clean, restored)))), 3),
                "ssim": round(float(np.mean(np.asarray(ssim(clean, restored)))), 4),
                "swd": round(float(sliced_wasserstein_distance(clean, restored)), 5),
                "power_spectrum": round(float(power_spectrum_distance(clean, restored)), 4),
            }
        )
    return rows


def train_one(name, output_dir, steps=None, seed=0, verbose=1):
    import keras

    from keras_indi.presets.recipes import HELD_OUT_IMAGES, TRAINING_IMAGES, TASKS, held_out_photographs, make_pairs
    from keras_indi.presets.training import PRESETS, preset_recipe, train

    task, method, recipe = preset_recipe(name, steps=steps)
    spec = TASKS[task]
    print(f"[{name}] {method} for {task}: {recipe['steps']} Adam steps of {recipe['batch_size']} crops of "
          f"{recipe['crop_size']} px, U-Net {tuple(recipe['widths'])}, {recipe['parameterization']}", flush=True)
    start = time.time()
    model, seconds, loss = train(task, recipe, seed=seed, verbose=verbose)
    test_degraded, test_clean = make_pairs(task, TEST_CROPS, TEST_SIZE, seed=TEST_SEED, held_out=True)
    step_counts = (0, 1) if method == "regression" else (0,) + STEP_COUNTS
    crops = _metrics(model, test_degraded, test_clean, step_counts, seed)
    metrics = {
        "held_out_crops": {"images": list(HELD_OUT_IMAGES), "num_crops": TEST_CROPS, "size": TEST_SIZE, "rows": crops}
    }
    if spec["data"] == "photographs":
        from keras_indi.presets.recipes import task_degradation

        clean = held_out_photographs(PHOTO_SIZE)
        degraded = np.asarray(task_degradation(task, seed=TEST_SEED)(clean), "float32")
        photo_steps = (0, 1) if method == "regression" else (0, 1, 20)
        metrics["held_out_photographs"] = {
            "images": list(HELD_OUT_IMAGES),
            "size": PHOTO_SIZE,
            "rows": _metrics(model, degraded, clean, photo_steps, seed),
        }
    os.makedirs(output_dir, exist_ok=True)
    path = os.path.join(output_dir, f"{name}.keras")
    # An uncompiled copy: the preset file holds the model and weights, not the optimizer state.
    export = type(model).from_config(model.get_config())
    export.build_from_config(model.get_build_config())
    export.set_weights(model.get_weights())
    _atomic_write(path, export.save)
    network = model.network
    entry = {
        "file": f"{name}.keras",
        "task": task,
        "method": method,
        "twin": PRESETS[name].get("twin"),
        "degradation": {
            "class": spec["degradation"][0],
            "arguments": {k: list(v) if isinstance(v, tuple) else v for k, v in spec["degradation"][1].items()},
            "description": spec["description"],
        },
        "input_noise": spec["noise"],
        "data": (
            f"random {recipe['crop_size']}x{recipe['crop_size']} crops of the scikit-image photographs "
            f"{list(TRAINING_IMAGES)} (and dead leaves with probability {1 - recipe['photo_probability']:.1f})"
            if spec["data"] == "photographs"
            else f"procedural dead leaves, {recipe['crop_size']}x{recipe['crop_size']}"
        ),
        "network": {
            "class": type(network).__name__,
            "widths": list(network.widths),
            "blocks_per_level": network.blocks_per_level,
            "parameterization": network.parameterization,
            "degradation_std": network.degradation_std,
            "parameters": int(network.count_params()),
        },
        "recipe": {k: list(v) if isinstance(v, tuple) else v for k, v in recipe.items()},
        "training_steps": int(recipe["steps"]),
        "final_loss": round(loss, 5),
        "train_seconds": round(seconds, 1),
        "wall_seconds": round(time.time() - start, 1),
        "backend": keras.backend.backend(),
        "keras_version": keras.__version__,
        "device": f"CPU ({os.cpu_count()} cores, {platform.machine()})",
        "date": datetime.date.today().isoformat(),
        "seed": seed,
        "metrics": metrics,
    }
    metadata_path = os.path.join(output_dir, "presets.json")
    metadata = {}
    if os.path.exists(metadata_path):
        with open(metadata_path) as file:
            metadata = json.load(file)
    metadata[name] = entry

    def write_metadata(temporary):
        with open(temporary, "w") as file:
            json.dump(dict(sorted(metadata.items())), file, indent=1)
            file.write("\n")

    _atomic_write(metadata_path, write_metadata)
    summary = " | ".join(f"{r['num_steps']}: {r['psnr']:.2f} dB, SWD {r['swd']:.4f}" for r in crops)
    print(f"[{name}] done in {entry['wall_seconds']:.0f} s; held-out crops: {summary}", flush=True)
    return entry


def markdown_table(directory):
    """The presets' held-out metrics as Markdown (for RESULTS.md): InDI at each step count next
    to its regression twin and the degraded input."""
    from keras_indi.presets import list_presets

    presets = list_presets(directory)
    lines = [
        "| preset | images | method | steps | PSNR (dB) | SSIM | SWD | power-spectrum dist. |",
        "|---|---|---|---:|---:|---:|---:|---:|",
    ]
    for name, entry in presets.items():
        if entry["method"] == "regression":
            continue
        for key, label in (("held_out_crops", "crops 64x64"), ("held_out_photographs", "photos 256x256")):
            if key not in entry["metrics"]:
                continue
            rows = [("InDI" if row["num_steps"] else "input", row) for row in entry["metrics"][key]["rows"]]
            twin = presets.get(entry.get("twin") or "")
            if twin and key in twin["metrics"]:
                rows += [("regression twin", row) for row in twin["metrics"][key]["rows"] if row["num_steps"]]
            for method, row in rows:
                steps = "-" if method == "input" else row["num_steps"]
                lines.append(
                    f"| {name} | {label} | {method} | {steps} | {row['psnr']:.2f} | {row['ssim']:.3f} | "
                    f"{row['swd']:.4f} | {row['power_spectrum']:.3f} |"
                )
    return "\n".join(lines)


def main(argv=None):
    from keras_indi.presets import PRESETS_DIRECTORY
    from keras_indi.presets.training import PRESETS

    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("names", nargs="*", help=f"presets to train: {', '.join(PRESETS)}")
    parser.add_argument("--all", action="store_true", help="train every preset")
    parser.add_argument("--output-dir", default=PRESETS_DIRECTORY)
    parser.add_argument("--steps", type=int, default=None, help="override the number of Adam steps")
    parser.add_argument("--fast", action="store_true", help="a few steps, for tests (needs --output-dir)")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--verbose", type=int, default=2)
    parser.add_argument("--table", action="store_true", help="print the presets' metrics as Markdown and exit")
    arguments = parser.parse_args(argv)
    if arguments.table:
        print(markdown_table(arguments.output_dir))
        return 0
    names = list(PRESETS) if arguments.all else arguments.names
    if not names:
        parser.error("name the presets to train, or pass --all")
    unknown = [name for name in names if name not in PRESETS]
    if unknown:
        parser.error(f"unknown preset(s) {unknown}; choose from {', '.join(PRESETS)}")
    steps = arguments.steps
    if arguments.fast:
        if os.path.abspath(arguments.output_dir) == os.path.abspath(PRESETS_DIRECTORY):
            parser.error("--fast writes throw-away presets: give an --output-dir outside the package")
        steps = steps or 4
    for name in names:
        train_one(name, arguments.output_dir, steps=steps, seed=arguments.seed, verbose=arguments.verbose)
    return 0


if __name__ == "__main__":
    sys.exit(main())
