"""The paper's claims 3, 4 and 5 at the presets' recipe and budget (RESULTS.md, "The paper's
claims with the new defaults"): every model here is trained exactly like a preset (a (32, 64)
U-Net, L1, Adam 2e-3 with cosine decay and EMA, 1,500 steps of 16 crops of 32x32 from the
built-in training photographs) and scored on the held-out photographs.

    KERAS_BACKEND=torch python benchmarks/claims_study.py input_noise jpeg
        # claim 3: InDI trained and run with input noise epsilon 0, 0.01 (the preset's), 0.05
    KERAS_BACKEND=torch python benchmarks/claims_study.py time_distribution super_resolution_4x
        # claim 4: p(t) uniform against "mass_at_one" (the presets' default)
    KERAS_BACKEND=torch python benchmarks/claims_study.py ddpm super_resolution_4x
        # claim 5: InDI against a conditional DDPM with the same U-Net and budget, at equal NFE

torch is the fastest backend on a 2-core CPU (BENCHMARKS.md): with the three studies side by
side, one thread each (``OMP_NUM_THREADS=1``), each model trained in 20-25 minutes on the 2-core
AMD EPYC (2026-12-07). ``STEPS=300`` shortens every run; ``VARIANTS=0,0.05`` (input noise),
``VARIANTS=uniform`` (p(t)) or ``VARIANTS=epsilon`` (DDPM) runs a subset; ``SEED=1`` trains the
InDI variants of claims 3 and 4 from another seed; ``--quick`` is a
smoke test (10 Adam steps, tiny test sets, a few seconds per model). Rows are printed as a Markdown table and appended to
``benchmarks/results/claims/<study>_<task>.jsonl`` (``--output DIR``: elsewhere);

    python benchmarks/claims_study.py plot ddpm super_resolution_4x

draws that file's held-out-crop rows (PSNR and SWD against the step count; of rows repeated by
a rerun, the latest) to a PNG beside it.
"""

import argparse
import json
import os
import sys
import time

import numpy as np

os.environ.setdefault("KERAS_BACKEND", "torch")

#: Where the rows go, and the sizes of a run (`--quick` and `--output` change them).
SETTINGS = {"output": os.path.join(os.path.dirname(os.path.abspath(__file__)), "results", "claims"),
            "crops": 48, "photo_size": 256, "steps": None, "step_counts": None}
QUICK = {"crops": 4, "photo_size": 64, "steps": 10, "step_counts": ((1, 2), (2,))}


def _test_sets(task):
    """48 held-out 64x64 crops and the three held-out photographs' 256x256 centres, degraded
    as in the presets table (`scripts/train_presets.py`)."""
    from keras_indi.presets.recipes import held_out_photographs, make_pairs, task_degradation

    clean = held_out_photographs(SETTINGS["photo_size"])
    return {
        "crops 64x64": make_pairs(task, SETTINGS["crops"], 64, seed=100, held_out=True),
        f"photos {clean.shape[1]}x{clean.shape[2]}": (np.asarray(task_degradation(task, seed=100)(clean), "float32"), clean),
    }


def _score(clean, restored):
    from keras_indi.metrics import power_spectrum_distance, psnr, sliced_wasserstein_distance, ssim

    restored = np.clip(np.asarray(restored), -1, 1)
    return {
        "psnr": round(float(np.mean(np.asarray(psnr(clean, restored)))), 2),
        "ssim": round(float(np.mean(np.asarray(ssim(clean, restored)))), 3),
        "swd": round(float(sliced_wasserstein_distance(clean, restored)), 4),
        "power_spectrum": round(float(power_spectrum_distance(clean, restored)), 3),
    }


class _Table:
    def __init__(self, study, task, columns):
        os.makedirs(SETTINGS["output"], exist_ok=True)
        self.path = os.path.join(SETTINGS["output"], f"{study}_{task}.jsonl")
        self.base = {"study": study, "task": task, "backend": os.environ["KERAS_BACKEND"],
                     "date": time.strftime("%Y-%m-%d %H:%M", time.gmtime()), "num_crops": SETTINGS["crops"]}
        self.columns = columns
        print("| " + " | ".join(columns + ["PSNR (dB)", "SSIM", "SWD", "power-spectrum dist."]) + " |")
        print("|" + "---|" * len(columns) + "---:|---:|---:|---:|", flush=True)

    def row(self, values, metrics, **extra):
        print("| " + " | ".join(str(v) for v in values) + f" | {metrics['psnr']:.2f} | {metrics['ssim']:.3f} | "
              f"{metrics['swd']:.4f} | {metrics['power_spectrum']:.3f} |", flush=True)
        with open(self.path, "a") as handle:
            handle.write(json.dumps({**self.base, **dict(zip(self.columns, values)), **metrics, **extra}) + "\n")


def _steps():
    return int(SETTINGS["steps"] or os.environ.get("STEPS", 1500))


def _seed():
    """The training seed (initial weights, crops, degradations, t): ``SEED=1`` for another run."""
    return int(os.environ.get("SEED", 0))


def _step_counts(images, crops, photos):
    """The step counts (NFE) to score `images` at: `crops` or `photos` (`--quick`: fewer)."""
    crops, photos = SETTINGS["step_counts"] or (crops, photos)
    return crops if images.startswith("crops") else photos


def _indi_variants(study, task, column, setting, values):
    """InDI models at the preset recipe that differ only in one recipe `setting` (one per
    value), scored against the degraded input."""
    from keras_indi.presets import training

    sets = _test_sets(task)
    table = _Table(study, task, [column, "images", "steps"])
    for images, (degraded, clean) in sets.items():
        table.row(["input", images, "-"], _score(clean, degraded))
    for value in values:
        recipe = training.resolve_recipe(steps=_steps(), **{setting: value})
        model, seconds, _ = training.train(task, recipe, seed=_seed())
        for images, (degraded, clean) in sets.items():
            for num_steps in _step_counts(images, (1, 2, 5, 20), (1, 20)):
                restored = model.restore(degraded, num_steps=num_steps, seed=0, progress_bar=False)
                table.row([value, images, num_steps], _score(clean, restored), train_seconds=round(seconds),
                          adam_steps=recipe["steps"], seed=_seed())


def input_noise(task="jpeg"):
    """Claim 3: a little input noise helps deterministic degradations. InDI models differing only
    in the constant input-noise epsilon (training and sampling), against the input."""
    variants = os.environ.get("VARIANTS")
    epsilons = tuple(float(v) for v in variants.split(",")) if variants else (0.0, 0.01, 0.05)
    _indi_variants("input_noise", task, "epsilon", "noise", epsilons)


def time_distribution(task="super_resolution_4x"):
    """Claim 4: biasing p(t) towards t = 1 helps. InDI models differing only in p(t)."""
    variants = os.environ.get("VARIANTS")
    names = tuple(variants.split(",")) if variants else ("uniform", "mass_at_one")
    _indi_variants("time_distribution", task, "p(t)", "time_distribution", names)


def _train_ddpm(task, recipe, prediction, schedule, loss, seed=0):
    """A `ConditionalDDPM` around the preset U-Net (input and noisy image on 6 channels), with the
    preset's optimizer, learning-rate schedule, EMA, crops, batches and Adam steps."""
    from keras_indi.apps.quickstart import compiled_unet_model
    from keras_indi.models.ddpm import ConditionalDDPM
    from keras_indi.presets.recipes import make_pairs

    steps, batch = int(recipe["steps"]), int(recipe["batch_size"])
    settings = {"widths": tuple(recipe["widths"]), "blocks_per_level": recipe["blocks_per_level"], "attention_levels": (),
                "learning_rate": recipe["learning_rate"], "image_size": recipe["crop_size"], "precision": "float32"}
    model = compiled_unet_model(
        settings, seed, 6,
        lambda network: ConditionalDDPM(network, schedule=schedule, num_timesteps=1000, prediction=prediction, loss=loss, seed=seed),
        steps, out_channels=3, use_ema=True, ema_momentum=0.99,
    )
    degraded, clean = make_pairs(task, steps * batch, recipe["crop_size"], seed=seed, photo_probability=recipe["photo_probability"])
    start = time.time()
    model.fit(degraded, clean, batch_size=batch, epochs=1, shuffle=False, verbose=0)
    return model, time.time() - start


#: name: (prediction, schedule, loss). "epsilon" is the paper's vanilla baseline.
DDPM_VARIANTS = {"epsilon": ("epsilon", "linear", "l2"), "x0": ("x0", "cosine", "l1")}


def ddpm(task="super_resolution_4x"):
    """Claim 5: InDI against a conditional DDPM (DDIM, eta = 0) with the same U-Net, data and
    budget, at equal numbers of network evaluations (NFE)."""
    from keras_indi.presets import training

    variants = os.environ.get("VARIANTS")
    names = tuple(variants.split(",")) if variants else ("InDI", "epsilon", "x0")
    recipe = training.resolve_recipe(steps=_steps())
    sets = _test_sets(task)
    table = _Table("ddpm", task, ["model", "images", "NFE"])
    for images, (degraded, clean) in sets.items():
        table.row(["input", images, "-"], _score(clean, degraded))
    for name in names:
        if name == "InDI":
            model, seconds, _ = training.train(task, recipe, seed=0)
            label, options = "InDI", {}
        else:
            prediction, schedule, loss = DDPM_VARIANTS[name]
            model, seconds = _train_ddpm(task, recipe, prediction, schedule, loss)
            label, options = f"DDPM ({prediction}, {schedule}, {loss.upper()}), DDIM", {"method": "ddim"}
        for images, (degraded, clean) in sets.items():
            for nfe in _step_counts(images, (1, 2, 5, 10, 20, 50), (1, 5, 20)):
                restored = model.restore(degraded, num_steps=nfe, seed=0, progress_bar=False, **options)
                table.row([label, images, nfe], _score(clean, restored), train_seconds=round(seconds), adam_steps=recipe["steps"])


def plot(study, task):
    """PSNR and SWD of the held-out crops against the step count (NFE), one line per model, the
    degraded input as a dashed line: ``results/claims/<study>_<task>.png``."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    path = os.path.join(SETTINGS["output"], f"{study}_{task}.jsonl")
    if not os.path.exists(path):
        raise ValueError(f"No results at {path}: run `claims_study.py {study} {task}` first.")
    rows = [json.loads(line) for line in open(path) if line.strip()]
    model_key, steps_key = {"ddpm": ("model", "NFE"), "input_noise": ("epsilon", "steps"), "time_distribution": ("p(t)", "steps")}[study]
    # A rerun appends: the latest row of each (model, step count) is the one drawn.
    rows = list({(row[model_key], row[steps_key]): row for row in rows if row["images"] == "crops 64x64"}.values())
    figure, axes = plt.subplots(1, 2, figsize=(10, 3.8))
    for axis, metric, label in ((axes[0], "psnr", "PSNR (dB), higher is better"), (axes[1], "swd", "SWD, lower is better")):
        for row in rows:
            if row[model_key] == "input":
                axis.axhline(row[metric], color="grey", linestyle="--", label="degraded input")
        models = dict.fromkeys(row[model_key] for row in rows if row[model_key] != "input")
        for model in models:
            points = sorted((row[steps_key], row[metric]) for row in rows if row[model_key] == model)
            name = {"input_noise": f"InDI, epsilon = {model}", "time_distribution": f"InDI, p(t) {model}"}.get(study, model)
            axis.plot(*zip(*points), marker="o", label=name)
        axis.set_xscale("log")
        values = [row[metric] for row in rows]
        counts = sorted({row[steps_key] for row in rows if row[model_key] != "input"})
        axis.set_xticks(counts, [str(count) for count in counts])
        axis.minorticks_off()
        if metric == "swd" and max(values) > 3 * min(values):  # an untrained model's far-off SWD
            axis.set_yscale("log")
            axis.minorticks_off()
            ticks = [tick for tick in (0.02, 0.03, 0.04, 0.05, 0.07, 0.1, 0.15, 0.2, 0.3, 0.5) if min(values) / 1.2 <= tick <= max(values) * 1.2]
            axis.set_yticks(ticks, [f"{tick:g}" for tick in ticks])
            label = "SWD (log scale), lower is better"
        axis.set_xlabel("network evaluations (steps)")
        axis.set_title(label)
        axis.grid(alpha=0.3)
    axes[1].legend(fontsize=8)
    title = {"ddpm": "InDI vs conditional DDPM, same U-Net and budget", "input_noise": "InDI with and without input noise",
             "time_distribution": "InDI trained with two p(t)"}[study]
    figure.suptitle(f"{title}: {task}, {rows[0].get('num_crops', 48)} held-out 64x64 crops ({rows[0]['backend']}, 2-core CPU)")
    figure.tight_layout()
    output = path[: -len(".jsonl")] + ".png"
    figure.savefig(output, dpi=110)
    print(output)


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("study", choices=("input_noise", "time_distribution", "ddpm", "plot"))
    parser.add_argument("task", nargs="*", default=None)
    parser.add_argument("--output", help="folder for the .jsonl rows and the plot (default benchmarks/results/claims)")
    parser.add_argument("--quick", action="store_true", help="a smoke test: 10 Adam steps, tiny test sets")
    arguments = parser.parse_args(argv)
    if arguments.quick:
        SETTINGS.update(QUICK)
    if arguments.output:
        SETTINGS["output"] = arguments.output
    if arguments.study == "plot":
        if len(arguments.task) != 2:
            raise ValueError("`plot` takes the study and the task, e.g. `plot ddpm super_resolution_4x`.")
        plot(*arguments.task)
        return 0
    if len(arguments.task) > 1:
        raise ValueError(f"`{arguments.study}` takes at most one task; got {arguments.task}.")
    study = {"input_noise": input_noise, "time_distribution": time_distribution, "ddpm": ddpm}[arguments.study]
    study(*arguments.task)
    return 0


if __name__ == "__main__":
    sys.exit(main())
