"""The trained presets on a photograph that keras-indi neither ships nor uses anywhere else.

    KERAS_BACKEND=jax python benchmarks/unseen_photograph.py            # every InDI preset with a twin (~9 min, 2 cores)
    KERAS_BACKEND=jax python benchmarks/unseen_photograph.py --quick    # smoke test: tiny sizes

The presets are trained on nine scikit-image photographs and evaluated, throughout the
project, on three others (`keras_indi.presets.recipes.HELD_OUT_IMAGES`). This script asks the
same question of a photograph from another package: matplotlib's sample portrait
(``grace_hopper.jpg``, 600x512, installed with matplotlib, a keras-indi dependency), so that the
answer does not hinge on the three images the project has looked at while choosing its
defaults. For each preset with a regression twin, the photograph is degraded with the preset's
own degradation (a fixed seed) and restored by the twin (1 step) and by InDI at 1, 2, 5 and 20
steps:

* ``crops``: 48 random 64x64 crops (no flips), scored as a set, as in RESULTS.md's presets
  table (PSNR and SSIM per crop; SWD and power-spectrum distance between the set of
  restorations and the set of clean crops);
* ``whole``: the centre 512x512 of the photograph, in one piece.

Writes ``unseen_photograph.json`` and ``.md`` (``unseen_photograph_quick.*`` with --quick) to
--output (default ``benchmarks/results/unseen_photograph``).
"""

import argparse
import datetime
import os
import sys
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from machine import cpu_model, write_report  # noqa: E402

HERE = os.path.dirname(os.path.abspath(__file__))
PHOTOGRAPH = "grace_hopper.jpg"
STEP_COUNTS = (1, 2, 5, 20)


def parse_args(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--quick", action="store_true", help="smoke test: one task, tiny sizes")
    parser.add_argument("--output", default=os.path.join(HERE, "results", "unseen_photograph"))
    parser.add_argument("--presets", nargs="*", default=None, help="InDI preset names (default: every one with a regression twin)")
    parser.add_argument("--seed", type=int, default=0)
    return parser.parse_args(argv)


def unseen_photograph():
    """matplotlib's sample portrait as float32 in [-1, 1], (600, 512, 3)."""
    import matplotlib.cbook
    import numpy as np
    from PIL import Image

    with matplotlib.cbook.get_sample_data(PHOTOGRAPH) as file:
        image = np.asarray(Image.open(file).convert("RGB"), "float32")
    return image / 127.5 - 1.0


def save_figure(folder, name, result, degraded, clean, quick):
    """The whole photograph and a zoomed detail: input, twin, InDI at 1 and most steps, clean."""
    from keras_indi.plotting import comparison_figure, detailed_region

    restorations = {(label, steps): images for label, steps, images in result.examples["restorations"]}
    most = max(steps for label, steps in restorations if label == "InDI")
    panels = [
        ("degraded input", degraded),
        ("regression twin (1 step)", restorations[("regression twin", 1)][0]),
        ("InDI, 1 step", restorations[("InDI", 1)][0]),
        (f"InDI, {most} steps", restorations[("InDI", most)][0]),
        ("clean", clean),
    ]
    path = os.path.join(folder, f"{name}{'_quick' if quick else ''}.png")
    comparison_figure(panels, zoom=detailed_region(clean, clean.shape[0] // 4), path=path, panel_size=2.6,
                      title=f"{name}: {PHOTOGRAPH} (never used by keras-indi), whole and zoomed")
    return path


def main(argv=None):
    arguments = parse_args(argv)
    import keras
    import numpy as np

    from keras_indi.evaluation import evaluate_tradeoff
    from keras_indi.presets import list_presets, load_preset
    from keras_indi.presets.recipes import random_crops, task_degradation

    presets = list_presets()
    names = arguments.presets or [
        name for name, meta in presets.items() if meta.get("method") == "InDI" and meta.get("twin") in presets
    ]
    if arguments.quick:
        names = names[:1]
    crop_size, num_crops, whole_size = (32, 4, 64) if arguments.quick else (64, 48, 512)
    step_counts = (1, 2) if arguments.quick else STEP_COUNTS

    photograph = unseen_photograph()
    top = (photograph.shape[0] - whole_size) // 2
    left = (photograph.shape[1] - whole_size) // 2
    sets = {
        f"crops {crop_size}x{crop_size}": random_crops([photograph], num_crops, crop_size, seed=arguments.seed, flips=False),
        f"whole {whole_size}x{whole_size}": photograph[None, top : top + whole_size, left : left + whole_size],
    }
    os.makedirs(arguments.output, exist_ok=True)
    rows, figures, started = [], [], time.time()
    for name in names:
        twin = presets[name]["twin"]
        model, twin_model = load_preset(name), load_preset(twin)
        degradation = task_degradation(presets[name]["task"], seed=arguments.seed + 100)
        for images, clean in sets.items():
            degraded = np.asarray(degradation(clean), "float32")
            whole = images.startswith("whole")
            result = evaluate_tradeoff(
                model, degraded, clean, step_counts=step_counts, seed=arguments.seed, batch_size=16,
                progress_bar=False, baselines={"input": degraded, "regression twin": twin_model},
                method_name="InDI", num_examples=1 if whole else 0,
            )
            if whole:
                figures.append(save_figure(arguments.output, name, result, degraded[0], clean[0], arguments.quick))
            for row in result.rows:
                metrics = {key: float(row[key]) for key in ("psnr", "ssim", "swd", "power_spectrum")}
                rows.append({"preset": name, "images": images, "method": row["method"], "num_steps": row["num_steps"], **metrics})
            print(f"{name}, {images}: done at {time.time() - started:.0f} s", flush=True)

    report = {
        "photograph": f"matplotlib sample data: {PHOTOGRAPH}",
        "machine": cpu_model(),
        "backend": keras.backend.backend(),
        "date": datetime.datetime.now().isoformat(timespec="minutes"),
        "seconds": round(time.time() - started, 1),
        "quick": arguments.quick,
        "rows": rows,
        "figures": [os.path.basename(path) for path in figures],
    }
    lines = [
        f"The presets on {report['photograph']} ({report['machine']}, {report['backend']}, {report['date']}).",
        "",
        "| preset | images | method | steps | PSNR (dB) | SSIM | SWD | power-spectrum dist. |",
        "|---|---|---|---:|---:|---:|---:|---:|",
    ]
    for row in rows:
        steps = "-" if row["num_steps"] is None else row["num_steps"]
        lines.append(
            f"| {row['preset']} | {row['images']} | {row['method']} | {steps} | {row['psnr']:.2f} | "
            f"{row['ssim']:.3f} | {row['swd']:.4f} | {row['power_spectrum']:.3f} |"
        )
    write_report(arguments.output, "unseen_photograph" + ("_quick" if arguments.quick else ""), report, lines)


if __name__ == "__main__":
    main()
