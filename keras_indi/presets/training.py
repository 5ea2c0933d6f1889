"""Build and train the networks of the presets (and of the equal-budget studies that chose
their recipe): one function, so that a preset, its regression twin and every study variant
differ only in the settings they pass."""

import time

import numpy as np

from keras_indi.presets.recipes import check_task, make_pairs

#: The recipe every preset starts from (the defaults chosen by the studies in RESULTS.md).
DEFAULT_RECIPE = {
    "widths": (32, 64),
    "blocks_per_level": 1,
    "parameterization": "residual",
    "time_distribution": "mass_at_one",
    "loss": "l1",
    "learning_rate": 2e-3,
    "schedule": "cosine",
    "ema": True,
    "crop_size": 32,
    "batch_size": 16,
    "steps": 400,
    "photo_probability": 0.8,
    # InDI's input-noise schedule: None = the task's (`recipes.TASKS[task]["noise"]`), else
    # anything `keras_indi.schedules.get_noise_schedule` takes (studies only).
    "noise": None,
}


def resolve_recipe(**overrides):
    unknown = sorted(set(overrides) - set(DEFAULT_RECIPE))
    if unknown:
        raise ValueError(f"Unknown recipe setting(s) {unknown}. Valid settings: {sorted(DEFAULT_RECIPE)}.")
    recipe = dict(DEFAULT_RECIPE)
    recipe.update({key: value for key, value in overrides.items() if value is not None})
    return recipe


def build_model(task, recipe, seed=0, model_class=None):
    """A compiled `InDIModel` (or `model_class`, a subclass) around a fresh `TimeConditionalUNet`
    for a preset task."""
    import keras

    from keras_indi.models.indi_model import InDIModel
    from keras_indi.networks.unet import TimeConditionalUNet
    from keras_indi.backend.seeding import set_random_seed

    spec = check_task(task)
    set_random_seed(seed)  # keras.utils.set_random_seed would import TensorFlow (4-7 s)
    network = TimeConditionalUNet(
        widths=tuple(recipe["widths"]),
        blocks_per_level=recipe["blocks_per_level"],
        in_channels=3,
        groups=max(1, recipe["widths"][0] // 4),
        parameterization=recipe["parameterization"],
        degradation_std=spec["degradation_std"],
        dtype="float32",
    )
    model = (model_class or InDIModel)(
        network,
        time_distribution=recipe["time_distribution"],
        noise_schedule=spec["noise"] if recipe.get("noise") is None else recipe["noise"],
        loss=recipe["loss"],
        seed=seed,
    )
    steps = int(recipe["steps"])
    learning_rate = recipe["learning_rate"]
    if recipe["schedule"] == "cosine":
        learning_rate = keras.optimizers.schedules.CosineDecay(
            learning_rate, steps, alpha=0.05, warmup_target=None
        )
    optimizer = keras.optimizers.Adam(learning_rate, use_ema=bool(recipe["ema"]), ema_momentum=0.99)
    model.compile(optimizer=optimizer)
    size = recipe["crop_size"]
    network.build((None, size, size, 3))
    model.optimizer.build(model.trainable_variables)
    return model


def train(task, recipe, seed=0, verbose=0, pairs=None):
    """Train a preset-style model on freshly made pairs; returns ``(model, seconds, final_loss)``.

    With ``ema`` the weights are replaced by their exponential moving average at the end
    (`keras.optimizers.Optimizer.finalize_variable_values`), as `fit` does."""
    model = build_model(task, recipe, seed=seed)
    steps, batch = int(recipe["steps"]), int(recipe["batch_size"])
    if pairs is None:
        pairs = make_pairs(task, steps * batch, recipe["crop_size"], seed=seed, photo_probability=recipe["photo_probability"])
    degraded, clean = pairs
    start = time.time()
    history = model.fit(degraded, clean, batch_size=batch, epochs=1, shuffle=False, verbose=verbose)
    seconds = time.time() - start
    return model, seconds, float(np.mean(history.history["loss"][-1:]))


#: The presets: task, method and the recipe settings that differ from `DEFAULT_RECIPE`.
#: Each restoration preset has a regression twin: same network, data and budget, p(t) = t = 1.
PRESETS = {}
for _task, _settings in {
    "denoising": {"steps": 1500},
    "super_resolution_4x": {"steps": 1500},
    "jpeg": {"steps": 1500},
    "motion_deblurring": {"steps": 1500, "crop_size": 48, "batch_size": 8},
    # The preconditioned output: better than residual on every row of the defocus study (RESULTS.md).
    "defocus_deblurring": {"steps": 1500, "crop_size": 48, "batch_size": 8, "parameterization": "preconditioned"},
}.items():
    PRESETS[_task] = {"task": _task, "method": "InDI", "settings": _settings, "twin": f"{_task}_regression"}
    PRESETS[f"{_task}_regression"] = {
        "task": _task,
        "method": "regression",
        "settings": {**_settings, "time_distribution": "regression"},
        "twin": _task,
    }
PRESETS["generation"] = {
    "task": "generation",
    "method": "InDI",
    # Pure-noise inputs: the skip of "residual" carries noise into the estimate (RESULTS.md).
    "settings": {"steps": 1500, "parameterization": "x"},
    "twin": None,
}


def preset_recipe(name, steps=None):
    """``(task, method, recipe)`` of a preset (`steps` overrides its training steps)."""
    if name not in PRESETS:
        raise ValueError(f"Unknown preset {name!r}. Choose one of: {', '.join(PRESETS)}.")
    spec = PRESETS[name]
    return spec["task"], spec["method"], resolve_recipe(**{**spec["settings"], "steps": steps or spec["settings"].get("steps")})
