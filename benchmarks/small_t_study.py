"""Why the SWD of the presets gets worse with more InDI steps: the measurements in RESULTS.md
("Why the SWD does not follow the steps").

    KERAS_BACKEND=jax python benchmarks/small_t_study.py network denoising    # F(x_t, t) vs x_t per t
    KERAS_BACKEND=jax python benchmarks/small_t_study.py levels super_resolution_4x   # SWD per level
    KERAS_BACKEND=jax python benchmarks/small_t_study.py grids denoising      # sampler time grids
    KERAS_BACKEND=jax python benchmarks/small_t_study.py weighting denoising  # training variants (slow)
    KERAS_BACKEND=jax python benchmarks/small_t_study.py prior denoising      # held-out vs training photos
    KERAS_BACKEND=jax python benchmarks/small_t_study.py mix denoising        # other training images (slow)
    KERAS_BACKEND=jax python benchmarks/small_t_study.py leftover denoising   # is the grain the input's noise?
    KERAS_BACKEND=torch python benchmarks/small_t_study.py length denoising   # longer runs (slow)
    KERAS_BACKEND=jax python benchmarks/small_t_study.py colour denoising     # is the grain colour or brightness?

`network`, `levels`, `grids`, `prior`, `leftover` and `colour` use the shipped presets; `weighting` trains the preset recipe at (16, 32) for
600 Adam steps per variant (about 2-3 minutes each on 2 idle cores); so does `mix`.
"""

import argparse
import os
import sys

import numpy as np

os.environ.setdefault("KERAS_BACKEND", "jax")  # torch trains fastest on a CPU (BENCHMARKS.md)


def _metrics(clean, restored, reference=None):
    import keras

    from keras_indi.metrics import power_spectrum_distance, psnr, sliced_wasserstein_distance

    restored = np.clip(np.asarray(restored), -1, 1)
    reference = clean if reference is None else reference
    swd, levels = sliced_wasserstein_distance(reference, restored, return_per_level=True)
    return {
        "psnr": round(float(np.mean(keras.ops.convert_to_numpy(psnr(clean, restored)))), 2),
        "swd": round(float(swd), 4),
        "swd_levels": [round(float(level), 4) for level in levels],
        "power_spectrum": round(float(power_spectrum_distance(reference, restored)), 3),
    }


def network_precision(task):
    """PSNR of x_t and of F(x_t, t) on held-out crops, for t from 0.02 to 1."""
    from keras_indi import InDIModel
    from keras_indi.metrics import psnr
    from keras_indi.presets.recipes import make_pairs

    model = InDIModel.from_preset(task)
    degraded, clean = make_pairs(task, 48, 64, seed=100, held_out=True)
    print("| t | PSNR of x_t (dB) | PSNR of F(x_t, t) (dB) |\n|---:|---:|---:|")
    for t in (0.02, 0.05, 0.1, 0.2, 0.3, 0.5, 0.75, 1.0):
        x_t = (1 - t) * clean + t * degraded
        estimate = np.asarray(model.network([x_t, np.full((len(clean),), t, "float32")]))
        print(f"| {t} | {np.mean(psnr(clean, np.clip(x_t, -1, 1))):.2f} | {np.mean(psnr(clean, np.clip(estimate, -1, 1))):.2f} |")


def swd_levels(task):
    """SWD per pyramid level against an unpaired set of held-out clean crops."""
    from keras_indi import InDIModel
    from keras_indi.presets.recipes import make_pairs

    model, twin = InDIModel.from_preset(task), InDIModel.from_preset(f"{task}_regression")
    degraded, clean = make_pairs(task, 96, 64, seed=100, held_out=True)
    _, reference = make_pairs(task, 96, 64, seed=300, held_out=True)
    rows = [("the same images' clean crops", clean), ("input", degraded)]
    rows.append(("regression twin", twin.restore(degraded, num_steps=1, seed=0, progress_bar=False)))
    rows += [(f"InDI, {n} steps", model.restore(degraded, num_steps=n, seed=0, progress_bar=False)) for n in (1, 5, 20)]
    print("| method | SWD | finest | middle | coarsest | power-spectrum dist. |\n|---|---:|---:|---:|---:|---:|")
    for name, images in rows:
        m = _metrics(clean, images, reference)
        print(f"| {name} | {m['swd']:.4f} | " + " | ".join(f"{v:.4f}" for v in m["swd_levels"]) + f" | {m['power_spectrum']:.3f} |")


def time_grids(task):
    """20-step restorations with other time grids, and stopping early then jumping to t = 0."""
    from keras_indi import InDIModel
    from keras_indi.presets.recipes import make_pairs

    model, twin = InDIModel.from_preset(task), InDIModel.from_preset(f"{task}_regression")
    degraded, clean = make_pairs(task, 48, 64, seed=100, held_out=True)
    fraction = np.linspace(1, 0, 21)
    grids = {"uniform": fraction, "quadratic": fraction**2, "cosine": 1 - np.cos(fraction * np.pi / 2)}
    for stop in (0.1, 0.2, 0.3, 0.5):
        grids[f"uniform to {stop}, then one jump to 0"] = np.concatenate([np.linspace(1, stop, 20), [0.0]])
    print("| sampler | PSNR (dB) | SWD | power-spectrum dist. |\n|---|---:|---:|---:|")
    for name, images in [("regression twin", twin.restore(degraded, num_steps=1, seed=0, progress_bar=False))] + [
        (f"InDI, 20 steps, {name}", model.restore(degraded, time_grid=np.asarray(grid, "float32"), seed=0, progress_bar=False))
        for name, grid in grids.items()
    ]:
        m = _metrics(clean, images)
        print(f"| {name} | {m['psnr']:.2f} | {m['swd']:.4f} | {m['power_spectrum']:.3f} |")


def loss_weighting(task, steps=600):
    """Equal-budget training variants that spend more on small t."""
    import keras
    from keras import ops

    from keras_indi import InDIModel
    from keras_indi.presets import training
    from keras_indi.presets.recipes import make_pairs

    class SmallTimeInDI(InDIModel):
        """InDI with the loss of each example weighted by t^-power, or more small-t samples."""

        weight_power, log_uniform_share, minimum_time = 0.0, 0.0, 0.05

        def sample_time(self, batch_size):
            t = super().sample_time(batch_size)
            if self.log_uniform_share:
                pick = keras.random.uniform((batch_size,), seed=self.seed_generator) < self.log_uniform_share
                log_uniform = ops.exp(ops.log(self.minimum_time) * keras.random.uniform((batch_size,), seed=self.seed_generator))
                t = ops.where((t < 1.0) & pick, log_uniform, t)
            self._last_time = t
            return t

        def objective(self, clean, degraded=None, training=False):
            output = super().objective(clean, degraded, training=training)
            if not self.weight_power:
                return output
            # |w (F - x)| = w |F - x| for the L1 loss: the prediction moved towards the target.
            prediction, target = output["prediction"], output["target"]
            weight = ops.power(ops.maximum(self._last_time, self.minimum_time), -self.weight_power)
            weight = ops.reshape(weight, (-1,) + (1,) * (len(clean.shape) - 1))
            return {"prediction": target + weight * (prediction - target), "target": target}

    variants = {
        "regression twin": dict(time_distribution="regression"),
        "InDI, mass_at_one": {},
        "+ loss weighted by 1/t": dict(weight_power=1.0),
        "+ loss weighted by 1/sqrt(t)": dict(weight_power=0.5),
        "half of the uniform t log-uniform": dict(log_uniform_share=0.5),
    }
    test = make_pairs(task, 48, 64, seed=100, held_out=True)
    print("| variant | steps | PSNR (dB) | SWD | power-spectrum dist. |\n|---|---:|---:|---:|---:|")
    for name, settings in variants.items():
        recipe = training.resolve_recipe(steps=steps, widths=(16, 32), time_distribution=settings.pop("time_distribution", None))
        model = training.build_model(task, recipe, seed=0, model_class=SmallTimeInDI)
        for key, value in settings.items():
            setattr(model, key, value)
        degraded, clean = make_pairs(task, steps * recipe["batch_size"], recipe["crop_size"], seed=0)
        model.fit(degraded, clean, batch_size=recipe["batch_size"], epochs=1, shuffle=False, verbose=0)
        for num_steps in (1,) if recipe["time_distribution"] == "regression" else (1, 20):
            m = _metrics(test[1], model.restore(test[0], num_steps=num_steps, seed=0, progress_bar=False))
            print(f"| {name} | {num_steps} | {m['psnr']:.2f} | {m['swd']:.4f} | {m['power_spectrum']:.3f} |", flush=True)


def _unseen_crops(task, names):
    """``(degraded, clean)``: 48 new 64x64 crops (seed 777, not flipped) of the named built-in
    photographs, degraded with a new seed (778): pixels seen in training, crops and noise not."""
    from keras_indi.datasets.sources import builtin_images
    from keras_indi.presets.recipes import random_crops, task_degradation

    clean = random_crops(builtin_images(names), 48, 64, seed=777, flips=False)
    return np.asarray(task_degradation(task, seed=778)(clean), "float32"), clean


def image_sets(task):
    """The same presets on held-out photographs and on new crops of the training photographs:
    do the steps add the fine-scale statistics of the images the network learned from?"""
    from keras_indi import InDIModel
    from keras_indi.presets.recipes import TRAINING_IMAGES, make_pairs

    model, twin = InDIModel.from_preset(task), InDIModel.from_preset(f"{task}_regression")
    textures = ("grass", "gravel", "brick")
    sets = {
        "held-out photographs": make_pairs(task, 48, 64, seed=100, held_out=True),
        "training photographs, new crops": _unseen_crops(task, TRAINING_IMAGES),
        "training textures (grass, gravel, brick), new crops": _unseen_crops(task, textures),
    }
    print("| images | method | PSNR (dB) | SWD | finest level | power-spectrum dist. |\n|---|---|---:|---:|---:|---:|")
    for name, (degraded, clean) in sets.items():
        rows = [("regression twin", twin.restore(degraded, num_steps=1, seed=0, progress_bar=False))]
        rows += [(f"InDI, {n} step{'s' if n > 1 else ''}", model.restore(degraded, num_steps=n, seed=0, progress_bar=False)) for n in (1, 2, 5, 20)]
        for method, restored in rows:
            m = _metrics(clean, restored)
            print(f"| {name} | {method} | {m['psnr']:.2f} | {m['swd']:.4f} | {m['swd_levels'][0]:.4f} | {m['power_spectrum']:.3f} |", flush=True)


def training_mix(task, steps=600):
    """Equal-budget InDI/twin pairs trained on different sets of clean images, scored on the
    held-out photographs: which training prior transfers to photographs it has not seen?"""
    from keras_indi.presets import training
    from keras_indi.presets.recipes import TRAINING_IMAGES, make_pairs, training_photographs

    textures = ("grass", "gravel", "brick")
    # name: (training images, share of photographs; the rest are dead leaves)
    mixes = {"all 9 training photographs": (training_photographs(), None),
             "without grass, gravel, brick": (training_photographs(tuple(n for n in TRAINING_IMAGES if n not in textures)), None),
             "all 9, half dead leaves": (training_photographs(), 0.5),
             "all 9 at scales 1, 1/2, 1/4": (training_photographs(scales=(1.0, 0.5, 0.25)), None)}
    only = os.environ.get("MIX")  # run one mix: its name
    mixes = {name: value for name, value in mixes.items() if not only or name == only}
    test = make_pairs(task, 48, 64, seed=100, held_out=True)
    print("| training photographs | model | steps | PSNR (dB) | SWD | finest level | power-spectrum dist. |\n|---|---|---:|---:|---:|---:|---:|")
    for mix, (images, photo_probability) in mixes.items():
        for time_distribution in ("regression", None):
            recipe = training.resolve_recipe(steps=steps, widths=(16, 32), time_distribution=time_distribution)
            pairs = make_pairs(task, steps * recipe["batch_size"], recipe["crop_size"], seed=0,
                               photo_probability=photo_probability or recipe["photo_probability"], images=images)
            model, _, _ = training.train(task, recipe, seed=0, pairs=pairs)
            name = "regression twin" if time_distribution == "regression" else "InDI"
            for num_steps in (1,) if time_distribution == "regression" else (1, 2, 20):
                m = _metrics(test[1], model.restore(test[0], num_steps=num_steps, seed=0, progress_bar=False))
                print(f"| {mix} | {name} | {num_steps} | {m['psnr']:.2f} | {m['swd']:.4f} | {m['swd_levels'][0]:.4f} | {m['power_spectrum']:.3f} |", flush=True)


def training_length(task, lengths=(600, 1800)):
    """InDI/twin pairs of the (16, 32) recipe trained for more Adam steps (the cosine schedule
    stretched to each length), scored on the held-out photographs: does the gap between InDI's
    20-step SWD and the twin's close with a longer run? (`LENGTHS=600,3600` picks the lengths;
    `BROWNIAN=0.1` trains InDI alone with Brownian input noise of that epsilon instead;
    `LOSS=l2` trains both with the squared error instead of the recipe's L1.)"""
    from keras_indi.presets import training
    from keras_indi.presets.recipes import make_pairs
    from keras_indi.schedules import BrownianNoise

    if os.environ.get("LENGTHS"):
        lengths = tuple(int(n) for n in os.environ["LENGTHS"].split(","))
    brownian = float(os.environ["BROWNIAN"]) if os.environ.get("BROWNIAN") else None
    loss = os.environ.get("LOSS")  # None: the recipe's
    test = make_pairs(task, 48, 64, seed=100, held_out=True)
    print("| Adam steps | model | steps | PSNR (dB) | SWD | finest level | power-spectrum dist. | train s |\n|---:|---|---:|---:|---:|---:|---:|---:|")
    for length in lengths:
        for time_distribution in ("regression", None) if brownian is None else (None,):
            noise = None if brownian is None else BrownianNoise(brownian)
            recipe = training.resolve_recipe(steps=length, widths=(16, 32), time_distribution=time_distribution,
                                             noise=noise, loss=loss)
            model, seconds, _ = training.train(task, recipe, seed=0)
            name = "regression twin" if time_distribution == "regression" else "InDI"
            name += "" if brownian is None else f", Brownian noise {brownian}"
            name += "" if loss is None else f", loss {loss}"
            for num_steps in (1,) if time_distribution == "regression" else (1, 2, 20):
                m = _metrics(test[1], model.restore(test[0], num_steps=num_steps, seed=0, progress_bar=False))
                print(f"| {length} | {name} | {num_steps} | {m['psnr']:.2f} | {m['swd']:.4f} | {m['swd_levels'][0]:.4f} | {m['power_spectrum']:.3f} | {seconds:.0f} |", flush=True)


def leftover_noise(task="denoising"):
    """How much of what the steps add is the input's own noise? The correlation between the
    high-pass error of each restoration and the high-pass input noise ``y - x``, on held-out
    photographs and on new crops of the training photographs (shipped denoising presets)."""
    from scipy.ndimage import gaussian_filter

    from keras_indi import InDIModel
    from keras_indi.presets.recipes import TRAINING_IMAGES, make_pairs

    if task != "denoising":
        raise ValueError("`leftover` needs a task whose degradation is additive noise: denoising.")
    model, twin = InDIModel.from_preset(task), InDIModel.from_preset(f"{task}_regression")
    sets = {"held-out photographs": make_pairs(task, 48, 64, seed=100, held_out=True),
            "training photographs, new crops": _unseen_crops(task, TRAINING_IMAGES)}

    def high_pass(images):  # what a 1.5-pixel Gaussian blur removes: the finest scale
        return images - gaussian_filter(images, (0, 1.5, 1.5, 0))

    print("| images | method | high-pass error (rms) | its correlation with the input noise | high-pass power / clean |\n|---|---|---:|---:|---:|")
    for name, (degraded, clean) in sets.items():
        noise = high_pass(degraded - clean).ravel()
        rows = [("regression twin", twin.restore(degraded, num_steps=1, seed=0, progress_bar=False))]
        rows += [(f"InDI, {n} step{'s' if n > 1 else ''}", model.restore(degraded, num_steps=n, seed=0, progress_bar=False)) for n in (1, 2, 5, 20)]
        for method, restored in rows:
            error = high_pass(np.asarray(restored) - clean)
            correlation = np.corrcoef(error.ravel(), noise)[0, 1]
            power = np.mean(high_pass(np.asarray(restored)) ** 2) / np.mean(high_pass(clean) ** 2)
            print(f"| {name} | {method} | {error.std():.4f} | {correlation:.3f} | {power:.2f} |", flush=True)


def colour_or_brightness(task):
    """Is the grain of the many-step restorations in colour or in brightness? Six of the nine
    training photographs are grey, so their prior says little about colour. Each restoration
    is split into luminance (the mean of the channels) and chroma (the rest), and the SWD is
    computed with one part replaced by the clean image's (shipped presets, held-out crops)."""
    from keras_indi import InDIModel
    from keras_indi.metrics import sliced_wasserstein_distance
    from keras_indi.presets.recipes import make_pairs

    model, twin = InDIModel.from_preset(task), InDIModel.from_preset(f"{task}_regression")
    degraded, clean = make_pairs(task, 48, 64, seed=100, held_out=True)

    def luminance(images):
        return np.repeat(images.mean(-1, keepdims=True), images.shape[-1], -1)

    clean_luminance, clean_chroma = luminance(clean), clean - luminance(clean)
    rows = [("input", degraded), ("regression twin", twin.restore(degraded, num_steps=1, seed=0, progress_bar=False))]
    rows += [(f"InDI, {n} step{'s' if n > 1 else ''}", model.restore(degraded, num_steps=n, seed=0, progress_bar=False)) for n in (1, 2, 20)]
    print("| method | SWD | SWD, luminance only | restored luminance + clean chroma | clean luminance + restored chroma |\n|---|---:|---:|---:|---:|")
    for method, restored in rows:
        restored = np.clip(np.asarray(restored), -1, 1)
        chroma = restored - luminance(restored)
        distances = [sliced_wasserstein_distance(clean, restored),
                     sliced_wasserstein_distance(clean_luminance, luminance(restored)),
                     sliced_wasserstein_distance(clean, np.clip(luminance(restored) + clean_chroma, -1, 1)),
                     sliced_wasserstein_distance(clean, np.clip(clean_luminance + chroma, -1, 1))]
        print(f"| {method} | " + " | ".join(f"{float(d):.4f}" for d in distances) + " |", flush=True)


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("study", choices=("network", "levels", "grids", "weighting", "prior", "mix", "leftover", "length", "colour"))
    parser.add_argument("task", nargs="?", default="denoising")
    arguments = parser.parse_args(argv)
    {"network": network_precision, "levels": swd_levels, "grids": time_grids, "weighting": loss_weighting, "prior": image_sets, "mix": training_mix, "leftover": leftover_noise, "length": training_length, "colour": colour_or_brightness}[arguments.study](arguments.task)
    return 0


if __name__ == "__main__":
    sys.exit(main())
