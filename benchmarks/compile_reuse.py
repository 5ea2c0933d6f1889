"""Compile reuse of the samplers: a step-count sweep and tiled restoration, timed on this device.

Prints one JSON line. Run it in two checkouts (before / after a change) to compare:

    KERAS_BACKEND=jax python benchmarks/compile_reuse.py
    KERAS_BACKEND=tensorflow python benchmarks/compile_reuse.py --skip-tiled

* ``sweep``: `model.restore` on 8 images of 32x32 with a (16, 32) U-Net for 1, 2, 5, 10, 20,
  50 and 100 steps; the first sweep includes every compile (one per step count before the
  tables were padded, one in all after), the second is warm.
* ``tiled``: `restore_tiled` on one 192x256 image (tiles 64, overlap 16): the first calls
  (10 then 20 steps, compiles included) and the median of 3 warm 20-step calls.
"""

import argparse
import json
import time

import keras
import numpy as np

from keras_indi import InDIModel
from keras_indi.networks import TimeConditionalUNet

STEP_COUNTS = (1, 2, 5, 10, 20, 50, 100)


def timed(function):
    start = time.perf_counter()
    function()
    return round(time.perf_counter() - start, 3)


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--skip-tiled", action="store_true", help="only the step-count sweep")
    args = parser.parse_args(argv)
    keras.utils.set_random_seed(0)
    model = InDIModel(TimeConditionalUNet(widths=(16, 32), blocks_per_level=1), seed=0)
    images = np.random.default_rng(0).uniform(-0.9, 0.9, (8, 32, 32, 3)).astype("float32")
    model.restore(images[:1], num_steps=1, seed=0, progress_bar=False)  # build the weights

    def sweep():
        return {n: timed(lambda n=n: model.restore(images, num_steps=n, seed=0, progress_bar=False)) for n in STEP_COUNTS}

    report = {"backend": keras.backend.backend()}
    first = sweep()
    report["sweep"] = {"first_sweep_s": round(sum(first.values()), 2), "per_step_count_s": first}
    report["sweep"]["second_sweep_s"] = round(sum(sweep().values()), 2)
    if not args.skip_tiled:
        from keras_indi.samplers.tiling import restore_tiled

        image = np.random.default_rng(0).uniform(-0.9, 0.9, (192, 256, 3)).astype("float32")

        def tiled(num_steps):
            return timed(lambda: restore_tiled(model, image, tile_size=64, overlap=16, num_steps=num_steps, seed=0))

        report["tiled"] = {
            "first_calls_s": {10: tiled(10), 20: tiled(20)},
            "warm_20_steps_median_s": sorted(tiled(20) for _ in range(3))[1],
        }
    print(json.dumps(report))


if __name__ == "__main__":
    main()
