"""One evaluation of the preset U-Net, per backend: Keras' GroupNormalization against
keras-indi's (`keras_indi.layers.GroupNormalization`, per-channel statistics first), A/B in
one run (issue 14: the restoration speed of the CPU table).

    python benchmarks/unet_eval.py                       # JAX, TensorFlow, torch; 256x256 and 16 x 64x64
    python benchmarks/unet_eval.py --backends jax --repeats 5
    python benchmarks/unet_eval.py --quick                # smoke test: tiny inputs, one round

Each (backend, layer) pair runs in a fresh process: the `denoising` preset's network, compiled as
the sampler compiles it (JAX: `jax.jit` of `stateless_call`; TensorFlow: `tf.function` with XLA;
torch: eager under `no_grad`), one warm-up, then the median of --repeats timed evaluations;
--rounds alternate the two layers (A, B, A, B...) and keep each one's fastest median.
"Keras" swaps `keras_indi.layers.GroupNormalization.call` back to Keras' own before the model is
built, so the weights and everything else are identical. Prints a Markdown table and writes
``unet_eval.json`` (``unet_eval_quick.json`` with --quick) to --output (default ``benchmarks/results/unet_eval``).
"""

import argparse
import json
import os
import subprocess
import sys

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from machine import cpu_model, load_average  # noqa: E402

SHAPES = {"256x256, batch 1": (1, 256, 256, 3), "64x64, batch 16": (16, 64, 64, 3)}
QUICK_SHAPES = {"32x32, batch 1": (1, 32, 32, 3), "16x16, batch 2": (2, 16, 16, 3)}

WORKER = r"""
import json, os, sys, time
import numpy as np
import keras
import keras_indi
from keras_indi.layers.normalization import GroupNormalization

layer, shapes, repeats = sys.argv[1], json.loads(sys.argv[2]), int(sys.argv[3])
if layer == "keras":
    GroupNormalization.call = keras.layers.GroupNormalization.call
network = keras_indi.InDIModel.from_preset("denoising").network
backend = keras.backend.backend()
if backend == "jax":
    import jax
    trainable = [v.value for v in network.trainable_variables]
    fixed = [v.value for v in network.non_trainable_variables]
    compiled = jax.jit(lambda x, t: network.stateless_call(trainable, fixed, [x, t])[0])
    run = lambda x, t: compiled(x, t).block_until_ready()
elif backend == "tensorflow":
    import tensorflow as tf
    compiled = tf.function(lambda x, t: network([x, t]), jit_compile=True)
    run = lambda x, t: compiled(x, t).numpy()
else:
    import torch
    def run(x, t):
        with torch.no_grad():
            return network([x, t]).cpu()
results = {}
for name, shape in shapes.items():
    x = np.random.default_rng(0).uniform(-1, 1, shape).astype("float32")
    t = np.full((shape[0],), 0.5, "float32")
    x, t = keras.ops.convert_to_tensor(x), keras.ops.convert_to_tensor(t)
    run(x, t)
    times = []
    for _ in range(repeats):
        start = time.perf_counter()
        run(x, t)
        times.append(time.perf_counter() - start)
    results[name] = float(np.median(times))
print("RESULT " + json.dumps(results))
"""


def measure(backend, layer, repeats, shapes):
    environment = {**os.environ, "KERAS_BACKEND": backend}
    command = [sys.executable, "-c", WORKER, layer, json.dumps(shapes), str(repeats)]
    output = subprocess.run(command, env=environment, capture_output=True, text=True, check=True).stdout
    line = next(line for line in output.splitlines() if line.startswith("RESULT "))
    return json.loads(line[len("RESULT "):])


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--backends", nargs="+", default=["jax", "tensorflow", "torch"])
    parser.add_argument("--repeats", type=int, default=7)
    parser.add_argument("--rounds", type=int, default=3, help="alternating A/B rounds (the fastest of each is kept)")
    parser.add_argument("--quick", action="store_true", help="smoke test: tiny inputs, 1 repeat, 1 round")
    parser.add_argument("--output", default=os.path.join(os.path.dirname(os.path.abspath(__file__)), "results", "unet_eval"))
    arguments = parser.parse_args(argv)
    shapes, name = SHAPES, "unet_eval"
    if arguments.quick:
        shapes, name, arguments.repeats, arguments.rounds = QUICK_SHAPES, "unet_eval_quick", 1, 1
    rows, load_before = [], load_average()
    for backend in arguments.backends:
        # Rounds alternate the two layers and keep each one's fastest median: on a shared
        # (virtual) machine the speed drifts over minutes, which biases a plain A-then-B.
        timings = {"keras": {}, "keras_indi": {}}
        for _ in range(arguments.rounds):
            for layer in ("keras", "keras_indi"):
                for shape, seconds in measure(backend, layer, arguments.repeats, shapes).items():
                    timings[layer][shape] = min(seconds, timings[layer].get(shape, float("inf")))
        for shape in shapes:
            before, after = timings["keras"][shape], timings["keras_indi"][shape]
            rows.append({"backend": backend, "shape": shape, "keras_seconds": before, "keras_indi_seconds": after})
            print(f"{backend} {shape}: Keras {before * 1000:.0f} ms, keras-indi {after * 1000:.0f} ms", flush=True)
    record = {"cpu": cpu_model(), "load_before": load_before, "load_after": load_average(), "rows": rows}
    os.makedirs(arguments.output, exist_ok=True)
    with open(os.path.join(arguments.output, f"{name}.json"), "w") as file:
        json.dump(record, file, indent=1)
    print(f"\n{record['cpu']}; load average {load_before} before, {record['load_after']} after\n")
    print("| backend | input | Keras GroupNormalization | keras-indi GroupNormalization | speed-up |\n|---|---|---:|---:|---:|")
    for row in rows:
        speedup = row["keras_seconds"] / row["keras_indi_seconds"]
        print(f"| {row['backend']} | {row['shape']} | {row['keras_seconds'] * 1000:.0f} ms | "
              f"{row['keras_indi_seconds'] * 1000:.0f} ms | {speedup:.2f}x |")
    return 0


if __name__ == "__main__":
    sys.exit(main())
