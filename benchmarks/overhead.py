"""Library overhead benchmark (issue 2): keras-indi vs hand-written JAX, same network.

Times, on the current JAX device (CPU or GPU):

1. Training. ``InDIModel.fit()`` (``jit_compile=True``) from NumPy arrays and from a
   ``keras.utils.PyDataset`` against a hand-written ``jax.jit`` train step for the SAME
   `keras_indi.networks.TimeConditionalUNet` configuration and batch: L1 InDI objective,
   ``t ~ U[0, 1]``, ``x_t = (1 - t) x + t y + eps t eta``, Adam through
   ``optimizer.stateless_apply`` and ``network.stateless_call``. To explain the
   comparison, it also times

   * the hand-written step fed NumPy batches every step (the data path ``fit`` has) and fed
     batches already on the device (compute only);
   * the library's own ``InDIModel.train_step`` jitted by hand on device-resident batches
     (the step graph without ``fit``'s Python loop, data adapter and callbacks);
   * ``train_on_batch`` in a loop (one call per step; syncs the state every step);
   * the host-to-device transfer alone, and ``fit``'s fixed set-up cost per call.

2. Sampling. ``model.restore(..., progress_bar=False)`` (the fused, jitted ``fori_loop``
   path) against a hand-written fused ``jax.jit`` + ``lax.fori_loop`` sampler with the same
   network through ``stateless_call`` (same steps, batch and image size), plus the
   library's compiled loop called directly on a device array (no validation / transfers).

Everything is timed after warm-up (compilation excluded), with ``block_until_ready``, over
``--repeats`` interleaved repeats: each repeat runs every variant once, each library variant
next to its reference, in an order that alternates forward / backward, so background load
hits both sides of a comparison alike. Each run records wall time and the process's CPU time
(all threads). The table reports medians (img/s from the median wall time); a ratio is the
median of the per-repeat (paired) library / reference ratios, with a 90% bootstrap interval.
The 5% verdict uses CPU time on a CPU device (on shared cores, wall time mostly measures the
other processes; CPU time counts the work this process does, host overhead included, but not
idle stalls) and wall time on an accelerator (where the host mostly waits).

Needs only keras, jax and numpy (no TensorFlow). Sets ``KERAS_BACKEND=jax`` when unset and
refuses to run on another backend (the reference code is JAX).

Example (CPU-sized defaults)::

    python benchmarks/overhead.py --output overhead.json
    python benchmarks/overhead.py --widths 64 128 256 --blocks-per-level 2 --image-size 128 \\
        --batch-size 32 --steps 50 --sampler-steps 100 --repeats 5 --mixed-precision \\
        --output overhead_gpu.json
"""

import argparse
import json
import os
import platform
import statistics
import sys
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from machine import cpu_model  # noqa: E402

os.environ.setdefault("KERAS_BACKEND", "jax")
os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")

TARGET = 1.05  # library time / reference time must stay under this


# ------------------------------------------------------------------------------------------
# Command line
# ------------------------------------------------------------------------------------------
def parse_args(argv=None):
    parser = argparse.ArgumentParser(
        description="Time keras-indi (InDIModel.fit, model.restore) against hand-written JAX.",
        formatter_class=argparse.ArgumentDefaultsHelpFormatter,
    )
    parser.add_argument("--widths", type=int, nargs="+", default=[32, 64, 128], help="U-Net widths per level")
    parser.add_argument("--blocks-per-level", type=int, default=1, help="U-Net residual blocks per level")
    parser.add_argument("--image-size", type=int, default=32, help="square crop size (pixels)")
    parser.add_argument("--channels", type=int, default=3, help="image channels")
    parser.add_argument("--batch-size", type=int, default=8, help="training and sampling batch")
    parser.add_argument("--steps", type=int, default=16, help="training steps per timed repeat")
    parser.add_argument(
        "--sampler-steps", type=int, default=20, help="InDI sampler steps (network evaluations)"
    )
    parser.add_argument("--repeats", type=int, default=7, help="timed repeats (median reported)")
    parser.add_argument(
        "--mixed-precision", action="store_true", help="use the mixed_bfloat16 policy (network in bfloat16)"
    )
    parser.add_argument("--learning-rate", type=float, default=1e-3, help="Adam learning rate (both sides)")
    parser.add_argument("--epsilon", type=float, default=0.01, help="constant InDI noise level eps")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--skip-train", action="store_true", help="only time the sampler")
    parser.add_argument("--skip-sampler", action="store_true", help="only time training")
    parser.add_argument("--output", default=None, help="write the results as JSON to this path")
    args = parser.parse_args(argv)
    for name in (
        "blocks_per_level",
        "image_size",
        "channels",
        "batch_size",
        "steps",
        "sampler_steps",
        "repeats",
    ):
        if getattr(args, name) < 1:
            parser.error(f"--{name.replace('_', '-')} must be >= 1")
    if any(w < 1 for w in args.widths):
        parser.error("--widths must be positive")
    return args


def require_jax_backend():
    import keras

    backend = keras.backend.backend()
    if backend != "jax":
        sys.exit(
            "benchmarks/overhead.py compares keras-indi against hand-written JAX code "
            f"(jax.jit, stateless_call), so it needs the JAX backend; KERAS_BACKEND={backend!r} "
            "is set. Run it with KERAS_BACKEND=jax (or unset KERAS_BACKEND)."
        )


# ------------------------------------------------------------------------------------------
# Helpers
# ------------------------------------------------------------------------------------------


def block(tree):
    import jax

    return jax.block_until_ready(tree)


def copy_tree(tree):
    """Fresh device buffers (donation would otherwise invalidate the originals)."""
    import jax
    import jax.numpy as jnp

    return jax.tree_util.tree_map(lambda a: jnp.array(a, copy=True), tree)


def summarize(timings, images):
    """`timings`: [(wall seconds, process CPU seconds), ...] of one variant."""
    times = [wall for wall, _ in timings]
    cpu = [cpu for _, cpu in timings]
    median = statistics.median(times)
    return {
        "times_s": [round(t, 6) for t in times],
        "cpu_times_s": [round(t, 6) for t in cpu],
        "median_s": median,
        "min_s": min(times),
        "max_s": max(times),
        "cpu_median_s": statistics.median(cpu),
        "spread": (max(times) - min(times)) / median if median > 0 else 0.0,
        "img_per_s": images / median if median > 0 else float("inf"),
        "images_per_repeat": images,
    }


def run_interleaved(variants, repeats):
    """Time every variant once per repeat; the order alternates forward / backward (ABBA), so
    slow drifts of background load hit all variants alike. Records wall time and the process's
    CPU time (all threads: less sensitive than wall time to other processes on a shared CPU).
    Returns {name: [(wall, cpu), ...]}."""
    timings = {name: [] for name in variants}
    names = list(variants)
    for repeat in range(repeats):
        for name in names if repeat % 2 == 0 else reversed(names):
            cpu_start = time.process_time()
            start = time.perf_counter()
            variants[name]()
            wall = time.perf_counter() - start
            timings[name].append((wall, time.process_time() - cpu_start))
    return timings


def bootstrap_median_ci(values, level=0.90, resamples=2000, seed=0):
    """Percentile bootstrap interval of the median of `values`."""
    import numpy as np

    values = np.asarray(values, dtype="float64")
    if values.size < 3:
        return float(values.min()), float(values.max())
    rng = np.random.default_rng(seed)
    medians = np.median(rng.choice(values, size=(resamples, values.size), replace=True), axis=1)
    tail = (1.0 - level) / 2.0
    return float(np.quantile(medians, tail)), float(np.quantile(medians, 1.0 - tail))


def cost_flops(jitted, *arguments):
    try:
        analysis = jitted.lower(*arguments).compile().cost_analysis()
        if isinstance(analysis, (list, tuple)):
            analysis = analysis[0]
        return float(analysis.get("flops", 0.0)) or None
    except Exception as error:  # noqa: BLE001 - cost analysis is best-effort (backend dependent)
        print(f"(cost analysis unavailable: {type(error).__name__})", file=sys.stderr)
        return None


def make_data(args):
    import numpy as np

    rng = np.random.default_rng(args.seed)
    count = args.steps * args.batch_size
    shape = (count, args.image_size, args.image_size, args.channels)
    clean = rng.uniform(-0.9, 0.9, shape).astype("float32")
    degraded = np.clip(clean + 0.1 * rng.standard_normal(shape).astype("float32"), -1.0, 1.0)
    return degraded, clean


def build_network(args):
    import keras

    from keras_indi.networks import TimeConditionalUNet

    network = TimeConditionalUNet(
        widths=tuple(args.widths), blocks_per_level=args.blocks_per_level, in_channels=args.channels
    )
    size = args.image_size
    network([keras.ops.zeros((1, size, size, args.channels)), keras.ops.ones((1,))])
    return network


# ------------------------------------------------------------------------------------------
# Hand-written references
# ------------------------------------------------------------------------------------------
def reference_train_step(network, optimizer, epsilon):
    """The InDI L1 step written directly in JAX around `network.stateless_call`."""
    import jax
    import jax.numpy as jnp

    def loss_fn(trainable, non_trainable, degraded, clean, key):
        key_t, key_eta = jax.random.split(key)
        t = jax.random.uniform(key_t, (clean.shape[0],), jnp.float32)
        t_column = t[:, None, None, None]
        eta = jax.random.normal(key_eta, clean.shape, jnp.float32)
        x_t = (1.0 - t_column) * clean + t_column * degraded + (epsilon * t_column) * eta
        prediction, non_trainable = network.stateless_call(trainable, non_trainable, [x_t, t], training=True)
        loss = jnp.mean(jnp.abs(prediction.astype(jnp.float32) - clean))
        return loss, non_trainable

    grad_fn = jax.value_and_grad(loss_fn, has_aux=True)

    def step(state, degraded, clean):
        trainable, non_trainable, optimizer_variables, key = state
        key, subkey = jax.random.split(key)
        (loss, non_trainable), grads = grad_fn(trainable, non_trainable, degraded, clean, subkey)
        trainable, optimizer_variables = optimizer.stateless_apply(optimizer_variables, grads, trainable)
        return (trainable, non_trainable, optimizer_variables, key), loss

    return jax.jit(step, donate_argnums=0)


def reference_sampler(network, num_steps, epsilon):
    """Fused InDI sampler: y + sigma(1) eta, then N steps x <- (d/t) F(x, t) + (1 - d/t) x.
    The seed is a traced argument (as in the library), so the input noise is not constant-folded."""
    import jax
    import jax.numpy as jnp

    d = 1.0 / num_steps

    def sample(trainable, non_trainable, degraded, seed):
        key = jax.random.fold_in(jax.random.PRNGKey(seed.astype(jnp.uint32)), jnp.uint32(0))
        x = degraded + epsilon * jax.random.normal(key, degraded.shape, jnp.float32)
        batch = degraded.shape[0]

        def body(index, x):
            t = 1.0 - index.astype(jnp.float32) * d
            estimate, _ = network.stateless_call(
                trainable, non_trainable, [x, jnp.full((batch,), t, jnp.float32)], training=False
            )
            ratio = (t - d) / t
            return (1.0 - ratio) * estimate.astype(jnp.float32) + ratio * x

        return jax.lax.fori_loop(0, num_steps, body, x)

    return jax.jit(sample)


# ------------------------------------------------------------------------------------------
# Training benchmark
# ------------------------------------------------------------------------------------------
def bench_train(args, degraded, clean):
    import jax
    import keras

    from keras_indi import InDIModel

    B, S = args.batch_size, args.steps
    images = B * S
    network = build_network(args)
    model = InDIModel(network, noise_schedule=args.epsilon, loss="l1", seed=args.seed)
    model.compile(optimizer=keras.optimizers.Adam(args.learning_rate), jit_compile=True)

    class Batches(keras.utils.PyDataset):
        def __init__(self):
            super().__init__()  # workers=1, no multiprocessing: batches built in the fit loop

        def __len__(self):
            return S

        def __getitem__(self, index):
            return degraded[index * B : (index + 1) * B], clean[index * B : (index + 1) * B]

    dataset = Batches()

    def fit_numpy():
        model.fit(degraded, clean, batch_size=B, epochs=1, steps_per_epoch=S, shuffle=False, verbose=0)
        block([v.value for v in model.variables])

    def fit_pydataset():
        model.fit(dataset, epochs=1, steps_per_epoch=S, verbose=0)
        block([v.value for v in model.variables])

    def train_on_batch(steps=S):
        for i in range(steps):
            model.train_on_batch(degraded[i * B : (i + 1) * B], clean[i * B : (i + 1) * B])
        block([v.value for v in model.variables])

    # Warm-up: compiles the library's train function (shared by fit and train_on_batch).
    fit_numpy()
    fit_pydataset()
    train_on_batch(2)

    # The library's own step, jitted by hand, on device-resident batches.
    device_batches = [
        (jax.device_put(degraded[i * B : (i + 1) * B]), jax.device_put(clean[i * B : (i + 1) * B]))
        for i in range(S)
    ]
    block(device_batches)
    library_step = jax.jit(model.train_step, donate_argnums=0)

    def library_state():
        return copy_tree(
            (
                [v.value for v in model.trainable_variables],
                [v.value for v in model.non_trainable_variables],
                [v.value for v in model.optimizer.variables],
                [v.value for v in model.metrics_variables],
            )
        )

    step_state = {"state": library_state()}

    def library_step_device():
        state = step_state["state"]
        for x, y in device_batches:
            _, state = library_step(state, (x, y))
        step_state["state"] = block(state)

    # The hand-written reference: its own network instance with the same weights.
    reference_network = build_network(args)
    reference_network.set_weights(network.get_weights())
    reference_optimizer = keras.optimizers.Adam(args.learning_rate)
    reference_optimizer.build(reference_network.trainable_variables)
    reference_step = reference_train_step(reference_network, reference_optimizer, args.epsilon)
    reference_state = {
        "state": copy_tree(
            (
                [v.value for v in reference_network.trainable_variables],
                [v.value for v in reference_network.non_trainable_variables],
                [v.value for v in reference_optimizer.variables],
                jax.random.PRNGKey(args.seed),
            )
        )
    }

    def reference_device():
        state = reference_state["state"]
        for x, y in device_batches:
            state, _ = reference_step(state, x, y)
        reference_state["state"] = block(state)

    def reference_host():
        state = reference_state["state"]
        for i in range(S):
            # NumPy slices, moved to the device by the jitted call: what fit's data path does.
            state, _ = reference_step(state, degraded[i * B : (i + 1) * B], clean[i * B : (i + 1) * B])
        reference_state["state"] = block(state)

    def transfer_only():
        for i in range(S):
            block((jax.device_put(degraded[i * B : (i + 1) * B]), jax.device_put(clean[i * B : (i + 1) * B])))

    library_step_device()
    reference_device()
    reference_host()
    transfer_only()

    checks = {}
    reference_flops = cost_flops(reference_step, reference_state["state"], *device_batches[0])
    library_flops = cost_flops(library_step, step_state["state"], device_batches[0])
    if reference_flops and library_flops:
        checks["train_step_gflop_library"] = library_flops / 1e9
        checks["train_step_gflop_reference"] = reference_flops / 1e9
        checks["train_step_flop_ratio"] = library_flops / reference_flops
    checks["reference_loss_last"] = float(
        reference_step(copy_tree(reference_state["state"]), *device_batches[-1])[1]
    )
    checks["library_loss_last"] = float(model.train_on_batch(degraded[-B:], clean[-B:]))

    # fit's fixed (per call) cost before the first step: argument checks, adapter, callbacks.
    class FirstStep(keras.callbacks.Callback):
        def on_train_batch_begin(self, batch, logs=None):
            if batch == 0:
                self.first = time.perf_counter()

    # fit's fixed cost per call: a 2-step fit against 2 hand-written steps on the same NumPy
    # batches, run back to back (paired) so that background load cancels out.
    def reference_host_steps(steps):
        state = reference_state["state"]
        for i in range(steps):
            state, _ = reference_step(state, degraded[i * B : (i + 1) * B], clean[i * B : (i + 1) * B])
        reference_state["state"] = block(state)

    def timed(function):
        cpu_start, start = time.process_time(), time.perf_counter()
        function()
        return time.perf_counter() - start, time.process_time() - cpu_start

    def short_fit_run():
        model.fit(
            degraded,
            clean,
            batch_size=B,
            epochs=1,
            steps_per_epoch=2,
            shuffle=False,
            verbose=0,
            callbacks=[callback],
        )
        block([v.value for v in model.variables])

    setup, short_fit, short_reference, checks_cost = [], [], [], []
    for _ in range(7):
        callback = FirstStep()
        start = time.perf_counter()
        short_fit.append(timed(short_fit_run))
        setup.append(callback.first - start)
        short_reference.append(timed(lambda: reference_host_steps(2)))
        start = time.perf_counter()
        model._check_pairs(degraded, clean, "fit()")
        checks_cost.append(time.perf_counter() - start)

    # Each library variant runs next to its reference (the order alternates every repeat).
    variants = {
        "fit_numpy": fit_numpy,
        "reference_host": reference_host,
        "fit_pydataset": fit_pydataset,
        "library_step_device": library_step_device,
        "reference_device": reference_device,
        "train_on_batch": train_on_batch,
        "transfer_only": transfer_only,
    }
    times = run_interleaved(variants, args.repeats)
    results = {name: summarize(values, images) for name, values in times.items()}
    results["transfer_only"]["img_per_s"] = None
    results["fit_setup_s"] = statistics.median(setup)
    results["fit_argument_checks_s"] = statistics.median(checks_cost)
    # Differences use the process CPU time on a CPU device, wall time elsewhere (see `compare`).
    which = 1 if args.primary == "cpu" else 0
    key = "cpu_times_s" if args.primary == "cpu" else "times_s"
    results["overhead_differences_use"] = f"{args.primary} time"
    results["fit_2_steps_s"] = statistics.median([t[which] for t in short_fit])
    results["reference_2_steps_s"] = statistics.median([t[which] for t in short_reference])
    results["fit_fixed_per_call_s"] = statistics.median(
        [a[which] - b[which] for a, b in zip(short_fit, short_reference)]
    )
    paired = statistics.median(
        [a - b for a, b in zip(results["fit_numpy"][key], results["reference_host"][key])]
    )
    results["fit_minus_reference_s"] = paired
    results["fit_per_step_overhead_s"] = (paired - results["fit_fixed_per_call_s"]) / S
    results["parameters"] = int(network.count_params())
    results["checks"] = checks
    return results


# ------------------------------------------------------------------------------------------
# Sampler benchmark
# ------------------------------------------------------------------------------------------
def bench_sampler(args, degraded_all):
    import jax
    import numpy as np

    from keras_indi import InDIModel
    from keras_indi.samplers.indi_sampler import InDIOptions, InDITables, make_time_grid
    from keras_indi.utils.validation import check_finite_and_range, check_float_array

    S = args.sampler_steps
    B = args.batch_size
    degraded = np.ascontiguousarray(degraded_all[:B]) if degraded_all.shape[0] >= B else None
    if degraded is None:
        rng = np.random.default_rng(args.seed + 1)
        shape = (B, args.image_size, args.image_size, args.channels)
        degraded = rng.uniform(-0.9, 0.9, shape).astype("float32")
    network = build_network(args)
    model = InDIModel(network, noise_schedule=args.epsilon, seed=args.seed)
    seed = args.seed
    degraded_device = block(jax.device_put(degraded))

    def restore():
        return model.restore(degraded, num_steps=S, seed=seed, progress_bar=False)

    fused, fused_arguments = model.sampler.fused_call(
        degraded_device, InDITables(times=make_time_grid(S)), S, seed, options=InDIOptions(True, True)
    )

    def library_fused_device():
        return block(fused(*fused_arguments))

    reference = reference_sampler(network, S, args.epsilon)
    reference_seed = block(jax.device_put(np.int32(seed)))

    def weights():
        return (
            [v.value for v in network.trainable_variables],
            [v.value for v in network.non_trainable_variables],
        )

    def reference_device():
        trainable, non_trainable = weights()
        return block(reference(trainable, non_trainable, degraded_device, reference_seed))

    def reference_host():
        trainable, non_trainable = weights()
        return np.asarray(reference(trainable, non_trainable, degraded, np.int32(seed)))

    def transfer_only():
        return np.asarray(block(jax.device_put(degraded)) + 0.0)

    library_output = restore()
    reference_output = np.asarray(reference_device())
    library_fused_device()
    reference_host()
    transfer_only()

    variants = {
        "restore": restore,
        "reference_host": reference_host,
        "library_fused_device": library_fused_device,
        "reference_device": reference_device,
        "transfer_only": transfer_only,
    }
    times = run_interleaved(variants, args.repeats)
    results = {name: summarize(values, B) for name, values in times.items()}
    results["transfer_only"]["img_per_s"] = None

    key = "cpu_times_s" if args.primary == "cpu" else "times_s"
    results["overhead_differences_use"] = f"{args.primary} time"

    def paired_difference(a, b):
        return statistics.median([x - y for x, y in zip(results[a][key], results[b][key])])

    results["restore_wrapper_s"] = paired_difference("restore", "library_fused_device")
    results["fused_minus_reference_s"] = paired_difference("library_fused_device", "reference_device")
    start = time.perf_counter()
    for _ in range(10):
        check_float_array(degraded, "degraded", min_rank=2)
        check_finite_and_range(degraded, "degraded", model.value_range)
    results["restore_input_checks_s"] = (time.perf_counter() - start) / 10
    library_jitted = next(
        (cell.cell_contents for cell in (fused.__closure__ or ()) if hasattr(cell.cell_contents, "lower")),
        None,
    )
    library_flops = (
        cost_flops(library_jitted, *weights(), *fused_arguments)
        if library_jitted
        else None
    )
    reference_flops = cost_flops(reference, *weights(), degraded_device, reference_seed)
    results["checks"] = {
        "max_abs_diff_restore_vs_reference": float(np.max(np.abs(library_output - reference_output))),
        "sampler_gflop_library": library_flops / 1e9 if library_flops else None,
        "sampler_gflop_reference": reference_flops / 1e9 if reference_flops else None,
    }
    return results


# ------------------------------------------------------------------------------------------
# Report
# ------------------------------------------------------------------------------------------
def compare(results, library, reference, primary="wall"):
    """Library time / reference time, from the per-repeat (paired) ratios: their median and a
    90% bootstrap interval, for wall time and for process CPU time; also the ratio of the
    medians and of the minima of wall time. `primary` ("wall" or "cpu") is the one the
    verdict uses: CPU time on a CPU device (wall time there mostly measures the other processes
    sharing the cores), wall time on an accelerator (the host mostly waits)."""
    lib, ref = results[library], results[reference]
    paired = [a / b for a, b in zip(lib["times_s"], ref["times_s"])]
    paired_cpu = [a / b for a, b in zip(lib["cpu_times_s"], ref["cpu_times_s"]) if b > 0]
    return {
        "library": library,
        "reference": reference,
        "primary": primary,
        "paired_ratio": statistics.median(paired),
        "paired_ratio_ci90": list(bootstrap_median_ci(paired)),
        "paired_ratios": [round(r, 4) for r in paired],
        "cpu_paired_ratio": statistics.median(paired_cpu) if paired_cpu else None,
        "cpu_paired_ratio_ci90": list(bootstrap_median_ci(paired_cpu)) if paired_cpu else None,
        "median_ratio": lib["median_s"] / ref["median_s"],
        "min_ratio": lib["min_s"] / ref["min_s"],
    }


def verdict(ratio):
    if ratio["primary"] == "cpu" and ratio["cpu_paired_ratio"] is not None:
        value, (low, high), what = ratio["cpu_paired_ratio"], ratio["cpu_paired_ratio_ci90"], "CPU time"
    else:
        value, (low, high), what = ratio["paired_ratio"], ratio["paired_ratio_ci90"], "wall time"
    if high <= TARGET:
        return f"met ({what})"
    if low > TARGET:
        return f"NOT met ({what})"
    if value <= TARGET:
        return f"met ({what} median; interval above 1.05)"
    return f"not met ({what} median; interval below 1.05)"


def args_steps(report):
    return report["config"]["steps"]


def markdown(report):
    lines = []
    config = report["config"]
    lines.append(
        f"Device: {report['meta']['device']} | backend {report['meta']['backend']} | "
        f"keras {report['meta']['keras']}, jax {report['meta']['jax']} | "
        f"widths {tuple(config['widths'])}, blocks/level {config['blocks_per_level']}, "
        f"{config['image_size']}x{config['image_size']}x{config['channels']}, batch {config['batch_size']}, "
        f"{config['steps']} train steps, {config['sampler_steps']} sampler steps, "
        f"policy {config['policy']}, {config['repeats']} repeats"
    )
    lines.append("")
    lines.append(
        "| part | variant | median (s) | min (s) | spread | CPU (s, median) | img/s (median) | time vs reference |"
    )
    lines.append("|---|---|---|---|---|---|---|---|")

    def add_rows(part, results, reference, names):
        ref = results[reference]["median_s"]
        for name in names:
            entry = results[name]
            img = "-" if entry["img_per_s"] is None else f"{entry['img_per_s']:.1f}"
            rel = "-" if name == "transfer_only" else f"{entry['median_s'] / ref:.3f}"
            lines.append(
                f"| {part} | {name} | {entry['median_s']:.4f} | {entry['min_s']:.4f} | "
                f"{100 * entry['spread']:.1f}% | {entry['cpu_median_s']:.4f} | {img} | {rel} |"
            )

    if "train" in report:
        add_rows(
            "train",
            report["train"],
            "reference_device",
            [
                "fit_numpy",
                "fit_pydataset",
                "train_on_batch",
                "library_step_device",
                "reference_host",
                "reference_device",
                "transfer_only",
            ],
        )
    if "sampler" in report:
        add_rows(
            "sampler",
            report["sampler"],
            "reference_device",
            ["restore", "library_fused_device", "reference_host", "reference_device", "transfer_only"],
        )
    lines.append("")
    lines.append(
        f"Verdicts use {report['meta']['verdict_uses']} (paired per repeat; see the module docstring)."
    )
    lines.append("")
    lines.append(
        "| comparison (library time / reference time) | wall: paired median [90% interval] "
        "| CPU time: paired median [90% interval] | wall: ratio of medians | wall: ratio of minima "
        "| target <= 1.05 |"
    )
    lines.append("|---|---|---|---|---|---|")
    for name, ratio in report["ratios"].items():
        low, high = ratio["paired_ratio_ci90"]
        cpu = "-"
        if ratio["cpu_paired_ratio"] is not None:
            cpu_low, cpu_high = ratio["cpu_paired_ratio_ci90"]
            cpu = f"{ratio['cpu_paired_ratio']:.3f} [{cpu_low:.3f}, {cpu_high:.3f}]"
        lines.append(
            f"| {name}: {ratio['library']} / {ratio['reference']} | {ratio['paired_ratio']:.3f} "
            f"[{low:.3f}, {high:.3f}] | {cpu} | {ratio['median_ratio']:.3f} | {ratio['min_ratio']:.3f} | "
            f"{verdict(ratio)} |"
        )
    if "train" in report:
        train = report["train"]
        lines.append("")
        text = (
            f"fit(): {1e3 * train['fit_setup_s']:.1f} ms from the call to the first step (of which NumPy "
            f"argument checks {1e3 * train['fit_argument_checks_s']:.1f} ms)"
        )
        text += (
            f"; in {train['overhead_differences_use']}, a 2-step fit takes {1e3 * train['fit_2_steps_s']:.1f} ms against "
            f"{1e3 * train['reference_2_steps_s']:.1f} ms for 2 hand-written steps: fixed cost of a fit() "
            f"call {1e3 * train['fit_fixed_per_call_s']:.1f} ms (median of paired differences). "
            f"{args_steps(report)}-step fit minus {args_steps(report)} hand-written steps: "
            f"{1e3 * train['fit_minus_reference_s']:.1f} ms, i.e. "
            f"{1e3 * train['fit_per_step_overhead_s']:.2f} ms per step after the fixed cost"
        )
        lines.append(text + f". Network parameters: {train['parameters']:,}.")
    if "sampler" in report:
        sampler = report["sampler"]
        lines.append("")
        lines.append(
            f"restore(): {1e3 * sampler['restore_wrapper_s']:.1f} ms ({sampler['overhead_differences_use']}) "
            "per call on top of the compiled loop "
            f"(median paired difference; input checks {1e3 * sampler['restore_input_checks_s']:.2f} ms, "
            f"host/device transfers, time grid); compiled loop minus hand-written loop: "
            f"{1e3 * sampler['fused_minus_reference_s']:.1f} ms per call."
        )
    return "\n".join(lines)


def main(argv=None):
    args = parse_args(argv)
    require_jax_backend()
    import warnings

    import jax
    import keras
    import numpy as np

    warnings.filterwarnings("ignore", message=".*donated buffers.*")
    policy = "mixed_bfloat16" if args.mixed_precision else "float32"
    keras.mixed_precision.set_global_policy(policy)
    keras.utils.set_random_seed(args.seed)

    device = jax.devices()[0]
    meta = {
        "device": f"{device.platform}: {getattr(device, 'device_kind', str(device))}",
        "cpu_model": cpu_model(),
        "cpu_count": os.cpu_count(),
        "backend": keras.backend.backend(),
        "python": platform.python_version(),
        "keras": keras.__version__,
        "jax": jax.__version__,
        "numpy": np.__version__,
        "platform": platform.platform(),
        "xla_flags": os.environ.get("XLA_FLAGS"),
        "date": time.strftime("%Y-%m-%d %H:%M:%S"),
    }
    try:
        import jaxlib

        meta["jaxlib"] = jaxlib.__version__
    except ImportError:
        meta["jaxlib"] = None
    try:
        meta["loadavg_start"] = os.getloadavg()
    except OSError:
        pass
    config = dict(vars(args))
    config["policy"] = policy
    report = {"meta": meta, "config": config, "ratios": {}}

    degraded, clean = make_data(args)
    primary = "cpu" if device.platform == "cpu" else "wall"
    meta["verdict_uses"] = f"{primary} time"
    args.primary = primary

    def ratio_of(results, library, reference):
        return compare(results, library, reference, primary)

    if not args.skip_train:
        report["train"] = bench_train(args, degraded, clean)
        report["ratios"]["train_fit_vs_ref_same_data_path"] = ratio_of(
            report["train"], "fit_numpy", "reference_host"
        )
        report["ratios"]["train_fit_vs_ref_device"] = ratio_of(
            report["train"], "fit_numpy", "reference_device"
        )
        report["ratios"]["train_fit_pydataset_vs_ref_same_data_path"] = ratio_of(
            report["train"], "fit_pydataset", "reference_host"
        )
        report["ratios"]["train_step_graph"] = ratio_of(
            report["train"], "library_step_device", "reference_device"
        )
    if not args.skip_sampler:
        report["sampler"] = bench_sampler(args, degraded)
        report["ratios"]["sampler_restore_vs_ref_same_transfers"] = ratio_of(
            report["sampler"], "restore", "reference_host"
        )
        report["ratios"]["sampler_restore_vs_ref_device"] = ratio_of(
            report["sampler"], "restore", "reference_device"
        )
        report["ratios"]["sampler_fused_loop"] = ratio_of(
            report["sampler"], "library_fused_device", "reference_device"
        )
    try:
        meta["loadavg_end"] = os.getloadavg()
    except OSError:
        pass
    meta["tensorflow_imported"] = "tensorflow" in sys.modules

    text = markdown(report)
    print(text)
    checks = {}
    for part in ("train", "sampler"):
        checks.update(report.get(part, {}).get("checks", {}))
    print("\nChecks:", json.dumps(checks))
    if args.output:
        directory = os.path.dirname(os.path.abspath(args.output))
        os.makedirs(directory, exist_ok=True)
        report["markdown"] = text
        with open(args.output, "w") as handle:
            json.dump(report, handle, indent=2, default=float)
        print(f"Wrote {args.output}")
    return report


if __name__ == "__main__":
    main()
