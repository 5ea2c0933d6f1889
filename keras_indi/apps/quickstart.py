"""The main demonstration job: one-step regression versus InDI, trained and evaluated end to end.

`run_quickstart` (``keras-indi quickstart``) trains the same small time-conditional U-Net
twice on the offline built-in images for one restoration task: once as a one-step regressor
(``time_distribution="regression"``, the "regression to the mean" baseline) and once with
InDI. It then restores held-out crops with InDI at several step counts, scores them with
`keras_indi.evaluation.evaluate_tradeoff` (PSNR, SSIM and perceptual proxies) against the
regression baseline and writes a report folder:

==========================  ===========================================================
``report.md``               summary: settings, metrics table, figures, next commands
``tradeoff.md/.csv/.json``  the metrics table (one row per step count, plus regression)
``tradeoff_plot.png``       the distortion-perception trade-off (PSNR vs SWD)
``tradeoff_grid.png``       example images: degraded, InDI at each step count, regression, clean
``indi.keras``              the InDI model (``keras-indi restore indi.keras photo.png ...``)
``regression.keras``        the regression baseline
``history.json``            training losses of both models
``settings.json``           every setting used, for reproduction
==========================  ===========================================================

``task="toy"`` runs the paper's 2D toy instead (four modes plus Gaussian noise, a small MLP):
``results.md/.csv/.json``, ``points.png`` and both ``.keras`` models.

Presets: ``"cpu"`` (default) takes minutes on a laptop CPU; ``"gpu"`` is a larger network on
larger crops for a GPU; ``tiny=True`` runs in seconds (for tests). ``precision="auto"`` (default)
trains in mixed bfloat16 on GPUs with bfloat16 tensor cores and TPUs, float32 elsewhere
(`keras_indi.utils.precision`); ``settings.json`` records the policy used.
"""

import csv
import json
import math
import os
import time

import numpy as np

STEP_COUNTS = (1, 2, 5, 10, 20, 50, 100)
TOY_TASK = "toy"

#: Settings of each preset (``tiny`` is used by ``--tiny``). Any of them can be overridden.
PRESETS = {
    "cpu": {
        # Under a minute per model on a 2-core CPU: the equal-budget recipe of RESULTS.md
        # (residual U-Net output, p(t) with mass at t = 1, Adam 2e-3 with cosine decay and EMA).
        # 240 steps keep the whole quickstart under 3 minutes on the slower 2-core AMD EPYC
        # (156 s; 300 steps: 172-193 s), and InDI at 20 steps still beats its regression twin
        # on PSNR, SWD and power spectrum (BENCHMARKS.md, "The quickstart under 3 minutes").
        "image_size": 32,
        "batch_size": 16,
        "widths": (16, 32),
        "blocks_per_level": 1,
        "attention_levels": (),
        "epochs": 1,
        "steps_per_epoch": 240,
        "learning_rate": 2e-3,
        "validation_samples": 32,
        "step_counts": (1, 2, 5, 10, 20),
        "photo_probability": 1.0,
    },
    "gpu": {
        "image_size": 128,
        "batch_size": 32,
        "widths": (64, 128, 256),
        "blocks_per_level": 2,
        "attention_levels": (2,),
        "epochs": 20,
        "steps_per_epoch": 500,
        "learning_rate": 2e-4,
        "validation_samples": 256,
        "step_counts": (1, 2, 5, 10, 20, 50, 100),
        "photo_probability": 0.5,
    },
    "tiny": {
        "image_size": 16,
        "batch_size": 4,
        "widths": (8, 16),
        "blocks_per_level": 1,
        "attention_levels": (),
        "epochs": 1,
        "steps_per_epoch": 2,
        "learning_rate": 1e-3,
        "validation_samples": 8,
        "step_counts": (1, 2),
        "photo_probability": 1.0,
    },
}
# Toy settings per preset: (epochs, training pairs).
_TOY_PRESETS = {"cpu": (15, 4096), "gpu": (30, 16384), "tiny": (1, 512)}

#: Degradations the quickstart uses instead of the task's default (a fixed, strong noise
#: level: one difficulty for every image, and a wide posterior where the steps matter).
QUICKSTART_DEGRADATIONS = {"denoising": ("AdditiveGaussianNoise", {"sigma": 0.5})}

# Tasks whose degradation is random noise already: their models need no extra InDI input noise.
NOISY_TASKS = ("denoising", "generation")


def prepare_output(output_dir, overwrite, option="--output"):
    """Create `output_dir`; refuse a non-empty one unless `overwrite`."""
    output_dir = os.fspath(output_dir)
    if os.path.exists(output_dir) and not os.path.isdir(output_dir):
        raise ValueError(f"{option} {output_dir!r} is a file, not a folder. Choose a folder path.")
    if os.path.isdir(output_dir) and os.listdir(output_dir) and not overwrite:
        raise ValueError(
            f"The output folder {output_dir!r} already exists and is not empty. Choose another "
            f"{option} or pass --overwrite to replace its report files."
        )
    os.makedirs(output_dir, exist_ok=True)
    return output_dir


def resolve_settings(task="denoising", preset="cpu", tiny=False, **overrides):
    """The quickstart settings: the preset (or ``tiny``) updated with non-None `overrides`."""
    if preset not in ("cpu", "gpu"):
        raise ValueError(f"`preset` must be 'cpu' or 'gpu'. Received preset={preset!r}.")
    settings = dict(PRESETS["tiny" if tiny else preset])
    unknown = sorted(set(overrides) - set(settings))
    if unknown:
        raise ValueError(f"Unknown quickstart setting(s) {unknown}. Valid settings: {sorted(settings)}.")
    settings.update({key: value for key, value in overrides.items() if value is not None})
    settings["task"] = task
    settings["preset"] = "tiny" if tiny else preset
    for key in ("widths", "attention_levels", "step_counts"):
        settings[key] = tuple(int(v) for v in settings[key])
    return settings


def run_quickstart(
    output_dir="indi-quickstart",
    task="denoising",
    preset="cpu",
    tiny=False,
    seed=0,
    overwrite=False,
    verbose=1,
    precision="auto",
    **overrides,
):
    """Train regression and InDI on one task, evaluate the trade-off and write a report folder.

    Args:
        output_dir: the report folder; must be empty or absent unless `overwrite`.
        task: one of ``keras_indi.degradations.TASKS`` (default ``"denoising"``) or ``"toy"``
            (the paper's 2D toy with an MLP).
        preset: ``"cpu"`` (minutes on a laptop CPU) or ``"gpu"`` (bigger network and crops).
        tiny: seconds-long settings for tests (overrides `preset`).
        seed: seeds the data, the initial weights (the same for both models), the training
            noise and the restorations.
        overwrite: allow writing into a non-empty `output_dir` (report files are replaced).
        verbose: 0 silent, 1 progress bars, 2 one line per epoch.
        precision: dtype policy of the networks: ``"auto"`` (mixed_bfloat16 on GPUs with
            bfloat16 tensor cores and TPUs, else float32), ``"float32"``, ``"mixed_bfloat16"``
            or ``"mixed_float16"`` (trained with loss scaling).
        **overrides: any preset setting: ``epochs``, ``steps_per_epoch``, ``image_size``,
            ``batch_size``, ``widths``, ``blocks_per_level``, ``attention_levels``,
            ``learning_rate``, ``validation_samples``, ``step_counts``; for the toy also
            ``num_samples``.

    Returns:
        A `keras_indi.evaluation.TradeoffResult` (image tasks) or the toy's list of rows.

    Example:

    >>> result = run_quickstart("/tmp/indi-demo", tiny=True, overwrite=True, verbose=0)  # doctest: +SKIP
    >>> print(result.to_markdown())  # doctest: +SKIP
    """
    if task == TOY_TASK:
        epochs, num_samples = _TOY_PRESETS["tiny" if tiny else preset]
        return run_toy(
            output_dir,
            epochs=overrides.get("epochs") or epochs,
            num_samples=overrides.get("num_samples") or num_samples,
            seed=seed,
            overwrite=overwrite,
            verbose=verbose,
            precision=precision,
        )
    from keras_indi.degradations import TASKS
    from keras_indi.utils.precision import resolve_precision

    if task not in TASKS:
        raise ValueError(f"Unknown task {task!r}. Choose one of: {', '.join(TASKS + (TOY_TASK,))}.")
    if overrides.pop("num_samples", None) is not None:
        raise ValueError("`num_samples` only applies to task='toy'; image tasks use `steps_per_epoch` and `batch_size`.")
    settings = resolve_settings(task, preset, tiny, **overrides)
    settings["seed"] = seed
    settings["precision"] = resolve_precision(precision)  # the policy used, in settings.json
    prepare_output(output_dir, overwrite)

    import keras

    from keras_indi.datasets import build_task_datasets, take_arrays
    from keras_indi.evaluation import evaluate_tradeoff

    from keras_indi import degradations

    degradation = None
    if task in QUICKSTART_DEGRADATIONS:
        name, arguments = QUICKSTART_DEGRADATIONS[task]
        degradation = getattr(degradations, name)(**arguments, seed=seed)

    from keras_indi.datasets.sources import builtin_images
    from keras_indi.presets.recipes import HELD_OUT_IMAGES, TRAINING_IMAGES

    preset_section = _preset_comparison(output_dir, task, seed, verbose, tiny)

    # Train on the presets' training photographs; evaluate on the held-out ones, never seen.
    training_images = builtin_images(TRAINING_IMAGES)

    def datasets(images=training_images, steps=settings["steps_per_epoch"], data_seed=seed):
        return build_task_datasets(
            task,
            source=images,
            degradation=degradation,
            image_size=settings["image_size"],
            batch_size=settings["batch_size"],
            seed=data_seed,
            steps_per_epoch=steps,
            validation_fraction=0,
            output="numpy",
        )

    num_batches = math.ceil(settings["validation_samples"] / settings["batch_size"])
    held_out, _ = datasets(builtin_images(HELD_OUT_IMAGES), num_batches, seed + 100)
    degraded, clean = take_arrays(held_out, num_batches=num_batches)
    degraded = degraded[: settings["validation_samples"]]
    clean = clean[: settings["validation_samples"]]

    # Both models train at once (`fit_side_by_side`, one thread each): their compilations and
    # steps overlap on a multi-core CPU, and each trains exactly as it would alone.
    from keras_indi.utils.side_by_side import fit_side_by_side

    methods = {"indi": ("mass_at_one", "InDI"), "regression": ("regression", "one-step regression (baseline)")}
    if verbose:
        print(
            f"Training {' and '.join(label for _, label in methods.values())} side by side: {task}, "
            f"{settings['epochs']} epoch(s) x {settings['steps_per_epoch']} steps of {settings['batch_size']} crops of "
            f"{settings['image_size']}x{settings['image_size']} px each, U-Net widths {settings['widths']}, "
            f"{settings['precision']}",
            flush=True,
        )
    models = {method: build_model(settings, distribution, task, seed) for method, (distribution, _) in methods.items()}
    # The same batches for both models: one pipeline each, from the same seed.
    fitted = fit_side_by_side({method: (model, datasets()[0]) for method, model in models.items()},
                              epochs=settings["epochs"], verbose=verbose)
    histories, seconds = {}, {}
    for method, (history, wall_seconds) in fitted.items():
        seconds[method] = wall_seconds
        histories[method] = {key: [float(v) for v in values] for key, values in history.history.items()}
        models[method].save(os.path.join(output_dir, f"{method}.keras"))

    if verbose:
        print(f"Evaluating InDI at {list(settings['step_counts'])} steps and the regression baseline "
              f"on {degraded.shape[0]} held-out crops", flush=True)
    result = evaluate_tradeoff(
        models["indi"],
        degraded,
        clean,
        step_counts=settings["step_counts"],
        seed=seed,
        batch_size=64,
        progress_bar=bool(verbose),
        baselines={"regression": models["regression"]},
        method_name="InDI",
    )
    paths = result.save(output_dir, overwrite=True, prefix="tradeoff")
    input_psnr = mean_psnr(degraded, clean)
    with open(os.path.join(output_dir, "history.json"), "w") as file:
        json.dump({"training_seconds": seconds, **histories}, file, indent=2)
    with open(os.path.join(output_dir, "settings.json"), "w") as file:
        json.dump(
            {**settings, "backend": keras.backend.backend(), "keras_version": keras.__version__},
            file,
            indent=2,
        )
    _write_report(output_dir, settings, result, paths, seconds, input_psnr, preset_section)
    if verbose:
        print(result.to_markdown())
        print(f"(degraded inputs: PSNR {input_psnr:.2f} dB)")
    # Even with --quiet: say where the report is.
    print(f"Report written to {output_dir} (open {os.path.join(output_dir, 'report.md')})", flush=True)
    return result


#: The trained preset (keras_indi.list_presets()) that shows each task on whole photographs.
PRESET_FOR_TASK = {
    "denoising": "denoising",
    "super_resolution": "super_resolution_4x",
    "jpeg": "jpeg",
    "motion_deblurring": "motion_deblurring",
}


def _preset_comparison(output_dir, task, seed, verbose, tiny):
    """Restore the held-out photographs with the task's trained preset and its regression twin;
    writes ``presets.*`` and ``presets_zoom.png``. None when the task has no shipped preset."""
    from keras_indi.evaluation import evaluate_tradeoff
    from keras_indi.plotting import comparison_figure, detailed_region
    from keras_indi.presets import list_presets, load_preset
    from keras_indi.presets.recipes import HELD_OUT_IMAGES, held_out_photographs, task_degradation

    presets = list_presets()
    name = PRESET_FOR_TASK.get(task)
    if name not in presets or presets[name].get("twin") not in presets:
        return None
    twin_name = presets[name]["twin"]
    model, twin = load_preset(name), load_preset(twin_name)
    clean = held_out_photographs(64 if tiny else 256)
    degraded = np.asarray(task_degradation(presets[name]["task"], seed=seed + 100)(clean), "float32")
    step_counts = (1, 2) if tiny else (1, 2, 5, 20)
    if verbose:
        print(f"[presets] Restoring {len(clean)} held-out photographs ({', '.join(HELD_OUT_IMAGES)}, "
              f"{clean.shape[1]}x{clean.shape[2]}) with the trained presets {name!r} (InDI) and "
              f"{twin_name!r} (its regression twin)", flush=True)
    result = evaluate_tradeoff(
        model, degraded, clean, step_counts=step_counts, seed=seed, batch_size=4, progress_bar=bool(verbose),
        baselines={"regression twin": twin}, method_name="InDI preset", num_examples=len(clean),
    )
    paths = result.save(output_dir, overwrite=True, prefix="presets")
    restorations = {(label, n): images for label, n, images in result.examples["restorations"]}
    most = max(step_counts)
    zoom = detailed_region(clean[0], clean.shape[1] // 4)
    panels = [
        ("degraded input", degraded[0]),
        ("regression twin (1 step)", restorations[("regression twin", 1)][0]),
        ("InDI, 1 step", restorations[("InDI preset", 1)][0]),
        (f"InDI, {most} steps", restorations[("InDI preset", most)][0]),
        ("clean", clean[0]),
    ]
    paths["zoom"] = os.path.join(output_dir, "presets_zoom.png")
    comparison_figure(panels, zoom=zoom, path=paths["zoom"], panel_size=2.6,
                      title=f"{task}: a held-out photograph ({HELD_OUT_IMAGES[0]}), whole and zoomed")
    return {"name": name, "twin": twin_name, "result": result, "paths": paths,
            "input_psnr": mean_psnr(degraded, clean), "metadata": presets[name]}


def _preset_lines(section):
    if section is None:
        return []
    result, paths, metadata = section["result"], section["paths"], section["metadata"]
    rows = {(row["method"], row["num_steps"]): row for row in result.rows}
    indi_rows = sorted((row for row in result.rows if row["method"] == "InDI preset"), key=lambda row: row["num_steps"])
    first, last, twin = indi_rows[0], indi_rows[-1], rows[("regression twin", 1)]
    better, worse = [], []
    for key, label in (("swd", "SWD"), ("power_spectrum", "power-spectrum distance")):
        (better if last[key] < twin[key] else worse).append(f"{label} {last[key]:.4f} vs {twin[key]:.4f}")
    cost = f"at a PSNR cost of {twin['psnr'] - last['psnr']:.2f} dB"
    if not worse:
        verdict = (
            f"At {last['num_steps']} steps InDI is more realistic than its regression twin on both measures "
            f"({'; '.join(better)}) {cost}: the distortion-perception trade-off of the paper."
        )
    elif not better:
        verdict = (
            f"At {last['num_steps']} steps InDI is NOT more realistic than its regression twin here "
            f"({'; '.join(worse)}), {cost}. See RESULTS.md for why at this budget."
        )
    else:
        verdict = (
            f"At {last['num_steps']} steps InDI is closer to clean images on one measure ({'; '.join(better)}) and "
            f"further on the other ({'; '.join(worse)}), {cost}: the steps restore high-frequency power, part of "
            "it as grain rather than detail at this budget (look at the zoomed row). See RESULTS.md."
        )
    return [
        "## 1. Trained presets on held-out photographs",
        "",
        (
            f"The presets `{section['name']}` (InDI) and `{section['twin']}` (the same network, data and budget "
            f"trained as a one-step regressor) ship with keras-indi: {metadata['training_steps']} Adam steps on "
            f"the built-in training photographs, {metadata['train_seconds']:.0f} s on a CPU. Here they restore "
            f"whole photographs they never saw (degraded inputs: PSNR {section['input_psnr']:.2f} dB). InDI at 1 "
            f"step is {first['psnr']:.2f} dB against the twin's {twin['psnr']:.2f} dB."
        ),
        "",
        result.to_markdown(),
        "",
        f"![whole images and a zoomed detail]({os.path.basename(paths['zoom'])})",
        "",
        f"**What this shows.** {verdict}",
        "",
        f"![every held-out photograph]({os.path.basename(paths['grid'])})",
        "",
        "## 2. Train your own (a short run)",
        "",
    ]


def build_model(settings, time_distribution, task, seed, noise_schedule=None, loss="l1", channels=3):
    """An `InDIModel` around a fresh `TimeConditionalUNet` (same initial weights for a seed).

    `noise_schedule` defaults to 0 for tasks whose degradation is already random noise
    (``denoising``, ``generation``) and to a small 0.01 otherwise. The learning rate decays
    with a cosine over the whole run. ``settings["precision"]`` (default ``"auto"``) is the
    network's dtype policy; under ``"mixed_float16"`` the optimizer scales the loss.
    """
    from keras_indi.models.indi_model import InDIModel

    if noise_schedule is None:
        noise_schedule = 0.0 if task in NOISY_TASKS else 0.01

    def make_model(network):
        return InDIModel(
            network, time_distribution=time_distribution, noise_schedule=noise_schedule, loss=loss, seed=seed
        )

    # EMA of the weights (used at the end of fit): measured better at 20 steps (RESULTS.md).
    total_steps = settings["epochs"] * settings["steps_per_epoch"]
    return compiled_unet_model(settings, seed, channels, make_model, total_steps, use_ema=True, ema_momentum=0.99)


def compiled_unet_model(settings, seed, channels, make_model, total_steps, out_channels=None, **adam):
    """``make_model(network)`` around a fresh `TimeConditionalUNet` of `settings` (its initial
    weights set by `seed`) taking `channels` input channels, compiled with Adam (`adam`: its
    options) on a learning rate decaying with a cosine over `total_steps`, loss scaled under
    ``settings["precision"] == "mixed_float16"``; the weights and optimizer variables exist."""
    import keras

    from keras_indi.networks.unet import TimeConditionalUNet
    from keras_indi.utils.precision import loss_scaled_optimizer, resolve_precision
    from keras_indi.backend.seeding import set_random_seed

    precision = resolve_precision(settings.get("precision", "auto"), 'settings["precision"]')
    set_random_seed(seed)  # keras.utils.set_random_seed would import TensorFlow (4-7 s)
    network = TimeConditionalUNet(
        widths=settings["widths"],
        blocks_per_level=settings["blocks_per_level"],
        attention_levels=settings["attention_levels"],
        in_channels=channels,
        out_channels=out_channels,
        groups=max(1, settings["widths"][0] // 4),  # four channels per GroupNorm group
        dtype=precision,
    )
    model = make_model(network)
    learning_rate = keras.optimizers.schedules.CosineDecay(settings["learning_rate"], total_steps, alpha=0.05)
    model.compile(optimizer=loss_scaled_optimizer(keras.optimizers.Adam(learning_rate, **adam), precision))
    size = settings["image_size"]
    network.build((None, size, size, channels))  # create the weights now
    # Optimizer variables created now, not inside the first traced train step: TensorFlow
    # would otherwise trace the step twice (twice the compile time).
    model.optimizer.build(model.trainable_variables)
    return model


def mean_psnr(images, clean):
    """Mean PSNR in dB of `images` against `clean`, both in [-1, 1] (`images` clipped to it)."""
    mse = np.mean((np.clip(images, -1, 1) - clean) ** 2, axis=(1, 2, 3))
    return float(np.mean(10.0 * np.log10(4.0 / np.maximum(mse, 1e-12))))


#: The copy of the quickstart report kept in the keras-indi repository (its .keras files are not
#: committed: see .gitignore), whose "Next steps" must not point at them.
REPOSITORY_REPORT = os.path.join(
    os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__)))), "docs", "quickstart"
)


def _next_steps(output_dir, task):
    """The "Next steps" lines of report.md: commands on the InDI model of this run, or, for the
    repository's copy of the report (`REPOSITORY_REPORT`, whose models are not committed), on
    the model a quickstart run of the reader's own writes first."""
    model_path = os.path.join(output_dir, "indi.keras")
    lines = ["Next steps, with the InDI model this run saved next to this report (`indi.keras`):", "", "```"]
    if os.path.abspath(output_dir) == REPOSITORY_REPORT:
        model_path = os.path.join("indi-quickstart", "indi.keras")
        lines = [
            "Next steps. The models of this run (`indi.keras`, `regression.keras`) are not committed to the "
            "repository: the first command writes your own (under 3 minutes on a 2-core CPU), which the others use.",
            "",
            "```",
            f"keras-indi quickstart --task {task} --output indi-quickstart",
        ]
    return lines + [
        f"keras-indi restore {model_path} my_photo.png --output-dir restored --steps 10",
        f"keras-indi evaluate {model_path} --task {task} --steps 1,5,20 --output evaluation",
        f"keras-indi train --task {task} --output my-run --epochs 20",
        "```",
        "",
    ]


def _write_report(output_dir, settings, result, paths, seconds, input_psnr, preset_section=None):
    lines = [
        f"# keras-indi quickstart: {settings['task']}",
        "",
        *_preset_lines(preset_section),
        (
            f"Same U-Net (widths {list(settings['widths'])}, {settings['blocks_per_level']} block(s) per "
            "level, a skip connection from x_t) trained twice on the built-in training photographs: as "
            "a one-step regressor (`regression`) and with InDI (p(t) with mass at t = 1). InDI at 1 step is "
            "itself a regressor; in theory more steps trade PSNR for sharper, more realistic images (lower "
            "SWD / power-spectrum distance). Evaluated on crops of the held-out photographs."
        ),
        "",
        (
            f"Settings: preset `{settings['preset']}`, {settings['epochs']} epoch(s) x "
            f"{settings['steps_per_epoch']} steps, batch {settings['batch_size']}, crops "
            f"{settings['image_size']} px, learning rate {settings['learning_rate']}, precision "
            f"{settings['precision']}, seed {settings['seed']}. Training time (the two side by side): InDI "
            f"{seconds['indi']} s, regression {seconds['regression']} s."
        ),
        "",
        (
            f"Evaluated on {result.metadata.get('num_images')} held-out crops "
            f"(degraded inputs: PSNR {input_psnr:.2f} dB):"
        ),
        "",
        result.to_markdown(),
        "",
        f"![trade-off]({os.path.basename(paths['plot'])})",
        "",
    ]
    if "grid" in paths:
        lines += [f"![examples]({os.path.basename(paths['grid'])})", ""]
    lines += [_what_this_run_shows(result), ""]
    lines += _next_steps(output_dir, settings["task"])
    with open(os.path.join(output_dir, "report.md"), "w") as file:
        file.write("\n".join(lines))


# -- the 2D toy ------------------------------------------------------------------------------
def run_toy(
    output_dir="indi-quickstart", epochs=15, num_samples=4096, seed=0, overwrite=False, verbose=1, precision="auto"
):
    """Train regression and InDI on the paper's 2D toy, evaluate, and write a report.

    Returns the list of result rows (dicts). Takes about a minute on a laptop CPU.
    `precision` is the MLP's dtype policy, as in `run_quickstart` (recorded in results.json).

    Example:

    >>> rows = run_toy("/tmp/indi-toy", epochs=1, num_samples=512, overwrite=True, verbose=0)  # doctest: +SKIP
    """
    from keras_indi.utils.precision import loss_scaled_optimizer, resolve_precision
    from keras_indi.backend.seeding import set_random_seed

    precision = resolve_precision(precision)
    prepare_output(output_dir, overwrite)
    import keras

    from keras_indi.datasets.toy import distance_to_nearest_mode, toy_modes_dataset
    from keras_indi.models.indi_model import InDIModel
    from keras_indi.networks.mlp import TimeConditionalMLP

    set_random_seed(seed)  # keras.utils.set_random_seed would import TensorFlow (4-7 s)
    degraded, clean = toy_modes_dataset(num_samples, seed=seed)
    test_degraded, test_clean = toy_modes_dataset(1024, seed=seed + 1)
    rows, restorations = [], {}
    for method, distribution in (("regression", "regression"), ("indi", "uniform")):
        network = TimeConditionalMLP(features=2, hidden_units=(128, 128, 128), dtype=precision)
        # L2: its optimum is the posterior mean, the "regression to the mean" of the paper (the L1
        # optimum, a per-coordinate median, sits on a mode of this symmetric toy and hides it).
        model = InDIModel(
            network, time_distribution=distribution, noise_schedule=0.0, loss="l2", value_range=None, seed=seed
        )
        model.compile(optimizer=loss_scaled_optimizer(keras.optimizers.Adam(2e-3), precision))
        if verbose:
            print(f"Training {method} for {epochs} epochs on {num_samples} pairs", flush=True)
        start = time.time()
        model.fit(degraded, clean, batch_size=256, epochs=epochs, verbose=verbose)
        training_seconds = time.time() - start
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
    _write_tables(rows, output_dir, keras.backend.backend(), precision)
    _plot(test_degraded, restorations, os.path.join(output_dir, "points.png"))
    if verbose:
        print(to_markdown(rows))
    print(f"Report written to {output_dir} (open {os.path.join(output_dir, 'results.md')})", flush=True)
    return rows


def to_markdown(rows):
    """The toy's result rows as a Markdown table."""
    header = "| method | steps | distance to nearest mode | mean squared error |\n|---|---:|---:|---:|\n"
    lines = [
        f"| {r['method']} | {r['num_steps']} | {r['distance_to_nearest_mode']:.4f} | {r['mean_squared_error']:.4f} |"
        for r in rows
    ]
    return header + "\n".join(lines) + "\n"


def _write_tables(rows, output_dir, backend, precision):
    with open(os.path.join(output_dir, "results.md"), "w") as file:
        file.write(to_markdown(rows))
    with open(os.path.join(output_dir, "results.json"), "w") as file:
        json.dump({"backend": backend, "precision": precision, "rows": rows}, file, indent=2)
    with open(os.path.join(output_dir, "results.csv"), "w", newline="") as file:
        writer = csv.DictWriter(file, fieldnames=list(rows[0]))
        writer.writeheader()
        writer.writerows(rows)


def _plot(degraded, restorations, path):
    from matplotlib.figure import Figure

    from keras_indi.datasets.toy import DEFAULT_MODES

    panels = [("degraded input", degraded), ("regression (1 step)", restorations[("regression", 1)])]
    panels += [(f"InDI, {n} step{'s' if n != 1 else ''}", restorations[("indi", n)]) for n in (1, 5, 100)]
    figure = Figure(figsize=(3.2 * len(panels), 3.4))
    axes = figure.subplots(1, len(panels), sharex=True, sharey=True)
    for axis, (title, points) in zip(axes, panels):
        axis.scatter(points[:, 0], points[:, 1], s=3, alpha=0.4)
        axis.scatter(DEFAULT_MODES[:, 0], DEFAULT_MODES[:, 1], marker="x", color="red", s=60, label="modes")
        axis.set_title(title)
        axis.set_xlim(-1.5, 1.5)
        axis.set_ylim(-1.5, 1.5)
        # Three ticks, none at the edges: the labels of neighbouring panels never overlap.
        axis.set_xticks([-1, 0, 1])
        axis.set_yticks([-1, 0, 1])
        axis.set_aspect("equal")
    axes[0].legend(loc="lower left")
    figure.tight_layout()
    figure.savefig(path, dpi=100)
    return figure


def _what_this_run_shows(result):
    """One honest paragraph on what the numbers of this run show (they need not follow the theory)."""
    rows = sorted((row for row in result.rows if row["method"] == "InDI"), key=lambda row: row["num_steps"])
    if len(rows) < 2:
        return ""
    first, last = rows[0], rows[-1]
    psnr_change = last["psnr"] - first["psnr"]
    swd_change = last["swd"] - first["swd"]
    verdict = (
        "as the theory predicts: fidelity is traded for realism"
        if psnr_change < 0 and swd_change < 0
        else (
            "so in this run the extra steps did not buy realism, most likely because the network is not yet "
            "accurate at small t, where the last steps rely on it (typical of short CPU budgets; train longer, "
            "e.g. `--preset gpu` or more `--epochs`)"
            if swd_change >= 0
            else "so in this run the extra steps improved both"
        )
    )
    return (
        f"**What this run shows.** From {first['num_steps']} to {last['num_steps']} InDI steps, PSNR "
        f"changed by {psnr_change:+.2f} dB and the sliced Wasserstein distance to the clean set by "
        f"{swd_change:+.4f} (lower is more realistic), {verdict}."
    )
