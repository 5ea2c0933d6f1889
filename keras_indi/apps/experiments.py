"""The paper's experiments as code: small, reproducible runs of the InDI claims.

Each experiment is a function ``run_<name>(output_dir, mode="fast", seed=0, ...)`` that
trains what it needs on the offline built-in data, evaluates it, writes

=======================  =============================================================
``<name>.md``            title, what was run, the metrics table and a metadata block
``<name>.csv``           the metrics table (one row per method and step count)
``<name>.json``          rows, metrics, timings and the metadata block
``<name>.png``           the plot (distortion-perception trade-off or metric vs steps)
``<name>_grid.png``      example images (restorations or generated samples)
=======================  =============================================================

and returns the `keras_indi.evaluation.TradeoffResult` (its ``metadata`` holds the
metadata block: backend, devices, training steps, data, seed, wall time).

==============================  ================================================================
``steps_tradeoff``              InDI at several step counts vs one-step regression, on JPEG and
                                4x super-resolution (claim 2: steps move along the
                                distortion-perception trade-off)
``indi_vs_ddpm``                InDI vs `ConditionalDDPM` sampled with DDIM at equal network
                                evaluations, same U-Net size, same training budget (claim 5)
``time_distribution_ablation``  p(t): uniform vs mass at t = 1 (a few weights) vs power family
                                (claim 4)
``input_noise_ablation``        eps = 0 vs small eps on a deterministic degradation, JPEG
                                (claim 3)
``generation``                  generation from pure noise on dead-leaves crops, with a sample
                                grid and the sliced Wasserstein distance to held-out crops
==============================  ================================================================

Modes (`MODES`):

* ``"smoke"``: a few training steps on 16x16 crops with a one-level U-Net, to check the plumbing (tests; seconds).
* ``"fast"``: a tiny CPU budget (16x16 crops, ~100 training steps, tens of seconds per
  experiment on a 2-core CPU). Far from the paper's setting: expect noisy, partial trends.
* ``"gpu"``: sized for the short device calls a session gets (64x64 crops, a (32, 64, 128)
  U-Net, 2000 training steps per model cycling 250 distinct batches, 128 evaluation crops,
  step counts up to 100). An estimate, not measured: well under a minute of training per
  model on an H100 plus compilation, so about two experiments fit in one 9-minute call; run
  them with ``--only`` and ``--time-limit``.
* ``"full"``: sized for one GPU (64x64 crops, a (64, 128, 256) U-Net with attention, 20k
  training steps per model cycling 2000 distinct batches, 256 evaluation crops, step counts up
  to 100). About 15 models are trained over the five experiments; the expected budget is
  roughly 4-8 GPU hours on one H100 (an estimate, not measured).

Every mode trains its networks with ``precision="auto"``: mixed bfloat16 on GPUs with bfloat16
tensor cores and TPUs, float32 elsewhere (override it like any setting, e.g.
``run_steps_tradeoff(output, precision="float32")``); the metadata block records the policy used.

The command line runner is ``benchmarks/run_experiments.py``::

    python benchmarks/run_experiments.py --mode fast --output results/fast
    python benchmarks/run_experiments.py --mode full --only indi_vs_ddpm --output results/ddpm

>>> from keras_indi.apps import experiments
>>> sorted(experiments.EXPERIMENTS)  # doctest: +NORMALIZE_WHITESPACE
['generation', 'indi_vs_ddpm', 'input_noise_ablation', 'steps_tradeoff',
 'time_distribution_ablation']
"""

import json
import os
import platform
import sys
import time

import numpy as np

#: Settings of each mode. ``train_steps`` is the number of optimizer steps of every model.
MODES = {
    "smoke": {
        "image_size": 16,  # SSIM needs at least 11x11
        "batch_size": 4,
        "widths": (8,),
        "blocks_per_level": 1,
        "attention_levels": (),
        "train_steps": 3,
        "learning_rate": 1e-3,
        "eval_images": 8,
        "step_counts": (1, 2),
        "ddpm_step_counts": (1, 2),
        "ablation_step_counts": (1, 2),
        "time_distributions": (("uniform", None), ("mass_at_one", 1.0), ("power", 1.0)),
        "input_noise": (0.0, 0.01),
        "ddpm_timesteps": 1000,
        "generation_step_counts": (1, 2),
        "run_eagerly": True,  # a few steps: tracing the train step would cost more than running it
        "precision": "auto",
        "max_train_pairs": None,
    },
    "fast": {
        "image_size": 16,
        "batch_size": 8,
        "widths": (16, 32),
        "blocks_per_level": 1,
        "attention_levels": (),
        "train_steps": 120,
        "learning_rate": 3e-3,
        "eval_images": 32,
        "step_counts": (1, 2, 5, 20),
        "ddpm_step_counts": (1, 2, 5, 20),
        "ablation_step_counts": (1, 10),
        "time_distributions": (("uniform", None), ("mass_at_one", 1.0), ("mass_at_one", 3.0), ("power", 2.0)),
        "input_noise": (0.0, 0.01),
        "ddpm_timesteps": 1000,
        "generation_step_counts": (1, 5, 20),
        "run_eagerly": False,
        "precision": "auto",
        "max_train_pairs": None,
    },
    "gpu": {
        "image_size": 64,
        "batch_size": 32,
        "widths": (32, 64, 128),
        "blocks_per_level": 1,
        "attention_levels": (),
        "train_steps": 2000,
        "learning_rate": 1e-3,
        "eval_images": 128,
        "step_counts": (1, 2, 5, 10, 20, 50, 100),
        "ddpm_step_counts": (1, 2, 5, 10, 20, 50, 100),
        "ablation_step_counts": (1, 5, 20),
        "time_distributions": (("uniform", None), ("mass_at_one", 1.0), ("mass_at_one", 3.0), ("power", 2.0)),
        "input_noise": (0.0, 0.01, 0.05),
        "ddpm_timesteps": 1000,
        "generation_step_counts": (1, 5, 20, 100),
        "run_eagerly": False,
        "precision": "auto",
        # 250 distinct batches cycled 8 times: the photographs are few, and making pairs
        # (NumPy degradations on the host) would otherwise take longer than training.
        "max_train_pairs": 8000,
    },
    "full": {
        "image_size": 64,
        "batch_size": 32,
        "widths": (64, 128, 256),
        "blocks_per_level": 2,
        "attention_levels": (2,),
        "train_steps": 20000,
        "learning_rate": 2e-4,
        "eval_images": 256,
        "step_counts": (1, 2, 5, 10, 20, 50, 100),
        "ddpm_step_counts": (1, 2, 5, 10, 20, 50, 100),
        "ablation_step_counts": (1, 5, 20),
        "time_distributions": (
            ("uniform", None),
            ("mass_at_one", 0.5),
            ("mass_at_one", 1.0),
            ("mass_at_one", 3.0),
            ("power", 1.0),
            ("power", 3.0),
        ),
        "input_noise": (0.0, 0.005, 0.01, 0.05),
        "ddpm_timesteps": 1000,
        "generation_step_counts": (1, 2, 5, 10, 20, 50, 100),
        "run_eagerly": False,
        "precision": "auto",
        # 20000 steps x 32 crops of 64x64 would be 63 GB of float32 pairs: cycle 2000 batches.
        "max_train_pairs": 64000,
    },
}

RESTORATION_METRICS = ("psnr", "ssim", "swd", "power_spectrum")
GENERATION_METRICS = ("swd", "power_spectrum")


# -- settings, data, models ------------------------------------------------------------------
def experiment_settings(mode="fast", **overrides):
    """The settings of `mode` (``"smoke"``, ``"fast"``, ``"gpu"`` or ``"full"``) updated with `overrides`."""
    if mode not in MODES:
        raise ValueError(f"`mode` must be one of {sorted(MODES)}. Received mode={mode!r}.")
    settings = dict(MODES[mode])
    unknown = sorted(set(overrides) - set(settings))
    if unknown:
        raise ValueError(f"Unknown experiment setting(s) {unknown}. Valid settings: {sorted(settings)}.")
    settings.update({key: value for key, value in overrides.items() if value is not None})
    settings["mode"] = mode
    return settings


def device_info():
    """Backend, devices (from the backend's own device listing), versions and host."""
    import keras

    from keras_indi.backend.devices import list_devices

    return {
        "backend": keras.backend.backend(),
        "devices": list_devices(),  # a listing failure is reported, never raised
        "keras_version": keras.__version__,
        "python": sys.version.split()[0],
        "platform": platform.platform(),
        "cpu_count": os.cpu_count(),
    }


def train_batches_per_epoch(settings):
    """Distinct training batches: all `train_steps` of them, or as many as `max_train_pairs`
    allows (the models then cycle over them for ``ceil(train_steps / batches)`` epochs).

    >>> train_batches_per_epoch({"train_steps": 2000, "batch_size": 32, "max_train_pairs": 8000})
    250
    """
    steps, cap = settings["train_steps"], settings.get("max_train_pairs")
    if not cap:
        return steps
    return max(1, min(steps, int(cap) // settings["batch_size"]))


_ARRAY_CACHE = {}


def _arrays(task, settings, seed, source="builtin"):
    """Training pairs (`train_batches_per_epoch` batches) and held-out evaluation pairs, as
    NumPy arrays.

    Every model of an experiment trains on exactly these batches, in this order. The last
    arrays made are kept in memory, so experiments of one run on the same task, data and seed
    (e.g. the three on 4x super-resolution) make them once.
    """
    from keras_indi.datasets import build_task_datasets, take_arrays

    batch_size, batches = settings["batch_size"], train_batches_per_epoch(settings)
    key = (task, source, settings["image_size"], batch_size, batches, settings["eval_images"], seed)
    if key in _ARRAY_CACHE:
        return _ARRAY_CACHE[key]
    train, validation = build_task_datasets(
        task,
        source=source,
        photo_probability=1.0,
        image_size=settings["image_size"],
        batch_size=batch_size,
        seed=seed,
        steps_per_epoch=batches,
        validation_samples=settings["eval_images"],
        output="numpy",
    )
    train_degraded, train_clean = take_arrays(train, num_batches=batches)
    eval_degraded, eval_clean = take_arrays(validation, num_batches=-(-settings["eval_images"] // batch_size))
    count = settings["eval_images"]
    data = {
        "task": task,
        "source": source if source != "builtin" else "builtin (scikit-image photographs, photo_probability=1.0)",
        "image_size": settings["image_size"],
        "train_pairs": int(train_degraded.shape[0]),
        "train_epochs": -(-settings["train_steps"] // batches),
        "eval_images": int(min(count, eval_degraded.shape[0])),
    }
    result = (train_degraded, train_clean), (eval_degraded[:count], eval_clean[:count]), data
    _ARRAY_CACHE.clear()  # keep one data set: the full mode's arrays are gigabytes
    _ARRAY_CACHE[key] = result
    return result


def _model_settings(settings):
    # `keras_indi.apps.quickstart.build_model` takes epochs x steps_per_epoch (one epoch here).
    return {**settings, "epochs": 1, "steps_per_epoch": settings["train_steps"]}


def _fit(model, train, settings, log, label):
    start = time.time()
    model.run_eagerly = bool(settings["run_eagerly"])
    # Cycle the distinct batches (same order every epoch) for `train_steps` steps in all.
    history = model.fit(
        train[0], train[1], batch_size=settings["batch_size"],
        epochs=-(-settings["train_steps"] // train_batches_per_epoch(settings)), shuffle=False, verbose=0,
    )
    losses = history.history.get("loss", [float("nan")])
    log[label] = {"training_seconds": round(time.time() - start, 2), "final_loss": float(losses[-1])}
    return model


def train_indi(train, settings, task, seed, log, label, time_distribution="uniform", noise_schedule=None):
    """Train an `InDIModel` (or the regression baseline) on the arrays `train`; log its time and loss."""
    from keras_indi.apps.quickstart import build_model

    model = build_model(_model_settings(settings), time_distribution, task, seed, noise_schedule=noise_schedule)
    return _fit(model, train, settings, log, label)


def train_ddpm(train, settings, seed, log, label="DDPM"):
    """Train a vanilla `ConditionalDDPM` (epsilon prediction, L2, linear schedule) with the InDI
    U-Net's widths and the same optimizer, learning-rate schedule and batches."""
    from keras_indi.apps.quickstart import compiled_unet_model
    from keras_indi.models.ddpm import ConditionalDDPM

    channels = train[0].shape[-1]
    model = compiled_unet_model(
        settings,
        seed,
        2 * channels,
        lambda network: ConditionalDDPM(network, num_timesteps=settings["ddpm_timesteps"], seed=seed),
        settings["train_steps"],
        out_channels=channels,
    )
    return _fit(model, train, settings, log, label)


def _evaluate(model, evaluation, step_counts, seed, method_name, metrics=RESTORATION_METRICS, baselines=None):
    from keras_indi.evaluation import evaluate_tradeoff

    return evaluate_tradeoff(
        model,
        evaluation[0],
        evaluation[1],
        step_counts=tuple(step_counts),
        metrics=metrics,
        seed=seed,
        batch_size=64,
        progress_bar=False,
        baselines=baselines,
        method_name=method_name,
    )


def merge_results(results, metadata=None):
    """One `TradeoffResult` from several with the same metrics (rows, timings and example
    images concatenated; the first result's method is the main one of the image grid)."""
    from keras_indi.evaluation import TradeoffResult

    first = results[0]
    examples = None
    if all(result.examples for result in results):
        examples = dict(first.examples)
        examples["restorations"] = [entry for result in results for entry in result.examples["restorations"]]
    merged_metadata = dict(first.metadata)
    merged_metadata["baselines"] = sorted({label for r in results for label in r.metadata.get("baselines", [])})
    merged_metadata.update(metadata or {})
    return TradeoffResult(
        [row for result in results for row in result.rows],
        first.metrics,
        metadata=merged_metadata,
        examples=examples,
        timings=[timing for result in results for timing in result.timings],
    )


def _relabel(result, suffix):
    """Append `suffix` to every method label of `result` (in place) and return it."""
    rename = lambda label: f"{label} {suffix}"  # noqa: E731
    result.rows = [{**row, "method": rename(row["method"])} for row in result.rows]
    result.timings = [{**row, "method": rename(row["method"])} for row in result.timings]
    if result.examples:
        result.examples["restorations"] = [(rename(l), n, images) for l, n, images in result.examples["restorations"]]
    result.metadata["method_name"] = rename(result.metadata["method_name"])
    return result


# -- writing ---------------------------------------------------------------------------------
def _output_paths(output_dir, name, overwrite):
    paths = {
        "markdown": os.path.join(output_dir, f"{name}.md"),
        "csv": os.path.join(output_dir, f"{name}.csv"),
        "json": os.path.join(output_dir, f"{name}.json"),
        "plot": os.path.join(output_dir, f"{name}.png"),
        "grid": os.path.join(output_dir, f"{name}_grid.png"),
    }
    existing = [path for path in paths.values() if os.path.exists(path)]
    if existing and not overwrite:
        raise ValueError(f"These files already exist: {existing}. Pass overwrite=True or choose another folder.")
    os.makedirs(output_dir, exist_ok=True)
    return paths


def _begin(output_dir, name, mode, overwrite, overrides):
    """Validate the settings and refuse existing outputs before any training."""
    from keras_indi.utils.precision import resolve_precision

    start = time.time()
    settings = experiment_settings(mode, **overrides)
    settings["precision"] = resolve_precision(settings["precision"])  # "auto" -> the policy used
    _output_paths(output_dir, name, overwrite)
    return start, settings


def _metadata(name, settings, seed, data, training, start, extra=None):
    return {
        "experiment": name,
        "mode": settings["mode"],
        **device_info(),
        "seed": seed,
        "data": data,
        "training_steps_per_model": settings["train_steps"],
        "batch_size": settings["batch_size"],
        "learning_rate": f"{settings['learning_rate']} (cosine decay to 5%), Adam",
        "precision": settings["precision"],
        "unet": {
            "widths": list(settings["widths"]),
            "blocks_per_level": settings["blocks_per_level"],
            "attention_levels": list(settings["attention_levels"]),
        },
        "models": training,
        **(extra or {}),
        "wall_seconds": round(time.time() - start, 2),
    }


def _write(paths, title, description, result, panels, grid_kwargs=None):
    """Write the tables (md/csv/json), the plot (one panel per `panels` entry) and the grid."""
    from matplotlib.figure import Figure

    metadata = result.metadata
    lines = [f"# {title}", "", description, "", result.to_markdown(), "", "## Metadata", ""]
    lines += [f"- **{key}**: {json.dumps(value) if not isinstance(value, str) else value}" for key, value in metadata.items()]
    with open(paths["markdown"], "w", encoding="utf-8") as file:
        file.write("\n".join(lines) + "\n")
    result.to_csv(paths["csv"], overwrite=True)
    result.to_json(paths["json"], overwrite=True)

    figure = Figure(figsize=(6 * len(panels), 4.5), dpi=100)
    axes = np.atleast_1d(figure.subplots(1, len(panels)))
    for axis, (panel, x, y, panel_title) in zip(axes, panels):
        panel.plot(x=x, y=y, ax=axis)
        axis.set_title(panel_title, fontsize=10)
    figure.tight_layout()
    figure.savefig(paths["plot"])
    if result.examples and result.examples["degraded"].shape[0] > 0:
        result.image_grid(path=paths["grid"], overwrite=True, **(grid_kwargs or {}))
    return paths


def _finish(name, output_dir, overwrite, title, description, results, settings, seed, data, training, start, panels, extra=None, grid_kwargs=None):
    paths = _output_paths(output_dir, name, overwrite)
    result = merge_results(results)
    result.metadata.update(_metadata(name, settings, seed, data, training, start, extra))
    _write(paths, title, description, result, panels, grid_kwargs)
    return result


def _mode_note(settings):
    if settings["mode"] == "full":
        return ""
    budget = "a short GPU budget" if settings["mode"] == "gpu" else "a tiny CPU budget"
    return (
        f" **{settings['mode']} mode**: {budget} ({settings['train_steps']} training steps, "
        f"{settings['image_size']}x{settings['image_size']} crops, U-Net widths {tuple(settings['widths'])}), "
        "NOT the paper's setting."
    )


# -- the experiments -------------------------------------------------------------------------
def run_steps_tradeoff(output_dir, mode="fast", seed=0, overwrite=False, tasks=("jpeg", "super_resolution"), **overrides):
    """Claim 2: InDI at several step counts vs the one-step regression baseline (same U-Net,
    same batches) on JPEG artifact removal and 4x super-resolution. The degraded input itself
    is a third reference row. Returns the merged `TradeoffResult` (methods ``"InDI [task]"``,
    ``"regression [task]"``, ``"input [task]"``)."""
    start, settings = _begin(output_dir, "steps_tradeoff", mode, overwrite, overrides)
    results, training, data, panels = [], {}, {}, []
    for task in tasks:
        train, evaluation, data[task] = _arrays(task, settings, seed)
        indi = train_indi(train, settings, task, seed, training, f"InDI [{task}]")
        regression = train_indi(train, settings, task, seed, training, f"regression [{task}]", time_distribution="regression")
        result = _evaluate(
            indi, evaluation, settings["step_counts"], seed, "InDI",
            baselines={"regression": regression, "input": evaluation[0]},
        )
        results.append(_relabel(result, f"[{task}]"))
        panels.append((result, "psnr", "swd", f"{task}: PSNR vs SWD (labels: steps)"))
    description = (
        "InDI (uniform p(t), eps = 0.01, L1) at several step counts against the same U-Net trained as a "
        "one-step regressor (`time_distribution='regression'`), and the degraded input. Claim 2: more steps "
        "should lower PSNR and improve realism (lower SWD / power-spectrum distance)." + _mode_note(settings)
    )
    return _finish(
        "steps_tradeoff", output_dir, overwrite, "Steps vs distortion-perception trade-off", description,
        results, settings, seed, data, training, start, panels,
        grid_kwargs={"include_baselines": False},
    )


def run_indi_vs_ddpm(output_dir, mode="fast", seed=0, overwrite=False, task="super_resolution", **overrides):
    """Claim 5: InDI vs a vanilla conditional DDPM (noisy image concatenated with the degraded
    input, epsilon prediction, L2, linear schedule, T = 1000) sampled with DDIM (eta = 0), at
    equal network evaluations (NFE = number of steps for both). Same U-Net widths (the DDPM's
    first convolution takes 2C channels), same optimizer, learning rate schedule and batches."""
    start, settings = _begin(output_dir, "indi_vs_ddpm", mode, overwrite, overrides)
    training = {}
    train, evaluation, data = _arrays(task, settings, seed)
    indi = train_indi(train, settings, task, seed, training, "InDI")
    ddpm = train_ddpm(train, settings, seed, training)
    step_counts = sorted(set(settings["step_counts"]) | set(settings["ddpm_step_counts"]))
    indi_result = _evaluate(indi, evaluation, step_counts, seed, "InDI")
    ddpm_result = _evaluate(ddpm, evaluation, settings["ddpm_step_counts"], seed, "DDPM (DDIM)")
    results = [indi_result, ddpm_result]
    merged_panels = merge_results(results)
    description = (
        f"Task `{task}`. InDI (uniform p(t), eps = 0.01, L1) against a vanilla conditional DDPM sampled with "
        "DDIM (eta = 0) at equal network evaluations (num_steps = NFE for both), same U-Net widths and "
        "training budget. Claim 5: InDI reaches comparable quality with fewer steps." + _mode_note(settings)
    )
    return _finish(
        "indi_vs_ddpm", output_dir, overwrite, "InDI vs conditional DDPM (DDIM) at equal NFE", description,
        results, settings, seed, data, training, start,
        [(merged_panels, "num_steps", "psnr", "PSNR vs NFE"), (merged_panels, "num_steps", "swd", "SWD vs NFE")],
        extra={"ddpm": {"prediction": "epsilon", "loss": "l2", "schedule": "linear", "num_timesteps": settings["ddpm_timesteps"], "sampler": "DDIM eta=0"}, "nfe": "num_steps (one network evaluation per step for both methods)"},
    )


def _time_distribution(kind, parameter):
    from keras_indi import schedules

    if kind == "uniform":
        return "uniform", "uniform"
    if kind == "mass_at_one":
        return schedules.MassAtOneTime(weight=parameter), f"mass_at_one(w={parameter:g})"
    if kind == "power":
        return schedules.PowerTime(power=parameter), f"power(k={parameter:g})"
    raise ValueError(f"Unknown time distribution {kind!r}.")


def _ablation(output_dir, name, title, mode, seed, overwrite, task, overrides, variants, description):
    """Train one InDI model per ``(label, train_indi keyword arguments)`` returned by
    ``variants(settings)`` on the same batches, evaluate each at the ablation step counts."""
    start, settings = _begin(output_dir, name, mode, overwrite, overrides)
    training, results = {}, []
    train, evaluation, data = _arrays(task, settings, seed)
    for label, arguments in variants(settings):
        model = train_indi(train, settings, task, seed, training, label, **arguments)
        results.append(_evaluate(model, evaluation, settings["ablation_step_counts"], seed, label))
    return _finish(
        name, output_dir, overwrite, title, f"Task `{task}`. {description}{_mode_note(settings)}",
        results, settings, seed, data, training, start,
        [(merge_results(results), "psnr", "swd", "PSNR vs SWD (labels: steps)")],
    )


def run_time_distribution_ablation(output_dir, mode="fast", seed=0, overwrite=False, task="super_resolution", **overrides):
    """Claim 4: p(t) uniform vs mass at t = 1 (probability w / (1 + w) of t = 1) for a few
    weights vs the power family (density t^k). One InDI model per p(t), same everything else."""

    def variants(settings):
        for kind, parameter in settings["time_distributions"]:
            distribution, label = _time_distribution(kind, parameter)
            yield label, {"time_distribution": distribution}

    return _ablation(
        output_dir, "time_distribution_ablation", "p(t) ablation", mode, seed, overwrite, task, overrides, variants,
        "InDI (eps = 0.01, L1) trained with different time distributions p(t). Claim 4: biasing p(t) "
        "towards t = 1 improves results (the best choice depends on capacity and task).",
    )


def run_input_noise_ablation(output_dir, mode="fast", seed=0, overwrite=False, task="jpeg", **overrides):
    """Claim 3: eps = 0 (no noise in x_t) vs small constant eps on a deterministic degradation
    (JPEG). One InDI model per eps (uniform p(t)), same everything else; each is sampled with
    its own eps (the start x_1 = y + eps * eta)."""

    def variants(settings):
        for eps in settings["input_noise"]:
            yield f"eps={eps:g}", {"noise_schedule": float(eps)}

    return _ablation(
        output_dir, "input_noise_ablation", "Input noise ablation", mode, seed, overwrite, task, overrides, variants,
        "A deterministic degradation. InDI (uniform p(t), L1) with constant input noise eps in training "
        "and sampling. Claim 3: a small eps > 0 improves deterministic degradations.",
    )


def run_generation(output_dir, mode="fast", seed=0, overwrite=False, source="dead_leaves", **overrides):
    """Generation from pure noise: InDI with y ~ N(0, I) independent of x (task
    ``"generation"``), on procedural dead-leaves crops. Scored by the sliced Wasserstein
    distance (and power-spectrum distance) between generated samples and held-out real crops;
    references: the input noise, and a second set of real crops (the metric's floor)."""
    start, settings = _begin(output_dir, "generation", mode, overwrite, overrides)
    training = {}
    train, evaluation, data = _arrays("generation", settings, seed, source=source)
    # A second, independent set of real crops: what the distance reads between two real sets.
    _, other, _ = _arrays("generation", settings, seed + 1, source=source)
    model = train_indi(train, settings, "generation", seed, training, "InDI")
    result = _evaluate(
        model, evaluation, settings["generation_step_counts"], seed, "InDI", metrics=GENERATION_METRICS,
        baselines={"input noise": evaluation[0], "real crops (other set)": other[1]},
    )
    description = (
        f"InDI trained to map pure Gaussian noise to `{source}` crops (the flow-matching path with "
        "x-prediction), sampled at several step counts. Lower SWD = closer to the held-out real crops. "
        "One step gives the mean image; more steps should give sharper, more varied samples."
        + _mode_note(settings)
    )
    return _finish(
        "generation", output_dir, overwrite, "Generation from pure noise", description,
        [result], settings, seed, data, training, start,
        [(result, "num_steps", "swd", "SWD vs steps"), (result, "num_steps", "power_spectrum", "power spectrum vs steps")],
        grid_kwargs={"include_baselines": False},
    )


#: Name -> experiment function, in the order the runner runs them.
EXPERIMENTS = {
    "steps_tradeoff": run_steps_tradeoff,
    "indi_vs_ddpm": run_indi_vs_ddpm,
    "time_distribution_ablation": run_time_distribution_ablation,
    "input_noise_ablation": run_input_noise_ablation,
    "generation": run_generation,
}


def aggregate_seeds(results):
    """One table from the same experiment run with several seeds: for each (method, steps) row
    the mean over seeds of every metric and its sample standard deviation (``<metric>_std``).

    The spread says how much of a difference between two rows is just the seed.

    >>> from keras_indi.evaluation import TradeoffResult
    >>> runs = [TradeoffResult([{"method": "InDI", "num_steps": 1, "psnr": value}], ["psnr"]) for value in (30.0, 32.0)]
    >>> aggregate_seeds(runs).rows
    [{'method': 'InDI', 'num_steps': 1, 'psnr': 31.0, 'psnr_std': 1.4142135623730951, 'seeds': 2}]
    """
    from keras_indi.evaluation import TradeoffResult

    if not results:
        raise ValueError("`results` is empty: pass the TradeoffResult of each seed.")
    metrics = results[0].metrics
    groups = {}
    for result in results:
        if result.metrics != metrics:
            raise ValueError(f"Results to aggregate must have the same metrics. Received {metrics} and {result.metrics}.")
        for row in result.rows:
            groups.setdefault((row["method"], row["num_steps"]), []).append(row)
    rows = []
    for (method, num_steps), group in groups.items():
        row = {"method": method, "num_steps": num_steps}
        for metric in metrics:
            values = np.array([r[metric] for r in group if r.get(metric) is not None], "float64")
            row[metric] = float(values.mean()) if values.size else None
            row[f"{metric}_std"] = float(values.std(ddof=1)) if values.size > 1 else None
        row["seeds"] = len(group)
        rows.append(row)
    columns = [name for metric in metrics for name in (metric, f"{metric}_std")]
    metadata = {"seeds": [r.metadata.get("seed") for r in results], "aggregated": "mean and sample std over seeds"}
    return TradeoffResult(rows, columns + ["seeds"], metadata=metadata)


def run_experiments(
    output_dir, mode="fast", only=None, seed=0, overwrite=False, verbose=1, precision="auto", time_limit=None, seeds=None
):
    """Run the experiments named in `only` (default: all) into `output_dir`; write
    ``summary.json`` with each experiment's wall time. Returns ``{name: TradeoffResult}``.

    `precision` is the networks' dtype policy (``"auto"``: see `keras_indi.utils.precision`).
    `time_limit` (seconds): start no experiment once this much time has passed, and none whose
    expected duration (the longest experiment so far) would overrun it; those are listed as
    ``"skipped"`` in ``summary.json``, with the reason, so a time-boxed device call still
    ends with complete results for the experiments that ran.

    `seeds` (a list of ints) repeats every experiment once per seed, each in its own folder
    ``seed-<n>/``, then writes ``<name>_seeds.md/.csv/.json`` (mean and standard deviation over
    seeds, `aggregate_seeds`) in `output_dir`; it returns ``{name: aggregated result}``.
    """
    if seeds is not None:
        return _run_seeds(output_dir, mode, only, seeds, overwrite, verbose, precision, time_limit)
    from keras_indi.utils.precision import resolve_precision

    precision = resolve_precision(precision)
    names = list(EXPERIMENTS) if not only else list(only)
    unknown = [name for name in names if name not in EXPERIMENTS]
    if unknown:
        raise ValueError(f"Unknown experiment(s) {unknown}. Choose from {list(EXPERIMENTS)}.")
    if time_limit is not None and (isinstance(time_limit, bool) or not time_limit > 0):
        raise ValueError(f"`time_limit` must be a positive number of seconds or None. Received {time_limit!r}.")
    results, summary = {}, {"mode": mode, "seed": seed, "precision": precision, **device_info(), "experiments": {}}
    run_start, longest = time.time(), 0.0
    for name in names:
        elapsed = time.time() - run_start
        if time_limit is not None and elapsed + longest > time_limit:
            reason = f"time limit {time_limit:g} s: {elapsed:.0f} s used, the longest experiment so far took {longest:.0f} s"
            summary["experiments"][name] = {"skipped": reason}
            if verbose:
                print(f"[{name}] skipped ({reason})", flush=True)
        else:
            if verbose:
                print(f"[{name}] running ({mode} mode)", flush=True)
            start = time.time()
            results[name] = EXPERIMENTS[name](output_dir, mode=mode, seed=seed, overwrite=overwrite, precision=precision)
            seconds = round(time.time() - start, 2)
            longest = max(longest, seconds)
            summary["experiments"][name] = {"wall_seconds": seconds, "rows": len(results[name].rows)}
            if verbose:
                print(results[name].to_markdown(), f"\n[{name}] done in {seconds} s", flush=True)
        with open(os.path.join(output_dir, "summary.json"), "w", encoding="utf-8") as file:
            json.dump(summary, file, indent=2)
    return results


def _run_seeds(output_dir, mode, only, seeds, overwrite, verbose, precision, time_limit):
    seeds = [int(seed) for seed in seeds]
    if len(seeds) < 2 or len(set(seeds)) != len(seeds):
        raise ValueError(f"`seeds` must list at least two different ints. Received {seeds!r}.")
    start, per_seed = time.time(), {}
    for seed in seeds:
        left = None if time_limit is None else time_limit - (time.time() - start)
        if left is not None and left <= 0:
            break
        folder = os.path.join(output_dir, f"seed-{seed}")
        os.makedirs(folder, exist_ok=True)
        per_seed[seed] = run_experiments(
            folder, mode=mode, only=only, seed=seed, overwrite=overwrite, verbose=verbose, precision=precision, time_limit=left
        )
    aggregated = {}
    for name in (list(EXPERIMENTS) if not only else list(only)):
        runs = [results[name] for results in per_seed.values() if name in results]
        if len(runs) < 2:
            continue
        aggregated[name] = aggregate_seeds(runs)
        aggregated[name].metadata.update({"experiment": name, "mode": mode, "precision": precision})
        lines = [f"# {name}: mean and standard deviation over seeds {aggregated[name].metadata['seeds']}", "",
                 f"{mode} mode; the per-seed tables, plots and metadata are in `seed-<n>/`.", "",
                 aggregated[name].to_markdown()]
        with open(os.path.join(output_dir, f"{name}_seeds.md"), "w", encoding="utf-8") as file:
            file.write("\n".join(lines) + "\n")
        aggregated[name].to_csv(os.path.join(output_dir, f"{name}_seeds.csv"), overwrite=True)
        aggregated[name].to_json(os.path.join(output_dir, f"{name}_seeds.json"), overwrite=True)
        if verbose:
            print(lines[0], "\n", aggregated[name].to_markdown(), flush=True)
    return aggregated
