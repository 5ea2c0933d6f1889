"""GPU benchmark suite (issue 6): keras-indi against hand-written JAX and a plain-PyTorch twin.

Prepared to run in ONE device call of at most 10 minutes (see BENCHMARKS.md, "GPU suite")::

    python benchmarks/gpu_suite.py --output $OUT --time-limit 540

The parent process launches one subprocess per worker, one after the other (never two on the
device at once), and merges what they measured:

* ``keras-jax`` (``KERAS_BACKEND=jax``), ``keras-tensorflow`` (skipped when TensorFlow is not
  installed) and ``keras-torch``: ``InDIModel.fit()`` throughput, ``model.restore`` latency,
  ``restore_tiled`` and whole-image restoration of a large image;
* on JAX also the references: a hand-written jitted train step (``benchmarks/overhead.py``'s
  ``reference_train_step``: same network via ``stateless_call``, same L1 InDI objective, Adam)
  and a hand-fused ``jax.jit`` + ``fori_loop`` sampler (``reference_sampler``);
* ``torch-twin``: plain PyTorch (``benchmarks/torch_twin.py``, the same U-Net and the same
  parameter count), train step eager / ``torch.compile``, fp32 / bf16 autocast, channels-last,
  and the same sampler loop.

Measurements run in priority order (the issue's targets first); each has a time budget
(``--measure-budget``: timed repeats stop when it is spent) and is skipped when its worker's
share of ``--time-limit`` is used up; a worker that overruns its share is killed and keeps
what it had recorded (each worker rewrites its results after every measurement). A failing
measurement is recorded with its error and the suite goes on. The suite always exits 0 and
writes one JSON file (device, versions, settings, every measurement, the target checks and a
Markdown table) under ``--output``.

Throughput (img/s) is measured after warm-up (compilation excluded and reported apart) over a
fixed number of steps on an in-memory pool of distinct batches (``keras.utils.PyDataset``
cycling over them: nothing is decoded or augmented). ``fit`` reports both the whole call and
the steady state ``(N - k) B / (T_N - T_k)`` from an N-step and a k-step call, which removes
the fixed per-call cost. FLOP/s use the forward convolution / matmul FLOPs counted from the
layer shapes (`unet_forward_flops`) times 3 for a training step (forward + backward), as a
fraction of the device's dense bf16 peak (`PEAK_BF16`; "unknown" for other devices); the JAX
step also reports XLA's own count (``cost_analysis``). Peak device memory: JAX
``device.memory_stats()["peak_bytes_in_use"]`` (the process's peak so far: JAX cannot reset it)
and the compiled step's ``memory_analysis``; torch ``torch.cuda.max_memory_allocated`` (reset
before each measurement).

``--smoke`` runs every code path at tiny sizes on whatever device is there (CPU here) in
about two minutes: tiny U-Nets, 16/32-pixel crops, a 40x48 "large" image.
"""

import argparse
import importlib.metadata
import importlib.util
import json
import os
import platform
import statistics
import subprocess
import sys
import tempfile
import time
import traceback

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.dirname(HERE)

WORKERS = ("keras-jax", "torch-twin", "keras-torch", "keras-tensorflow")
BACKENDS = {"keras-jax": "jax", "keras-torch": "torch", "keras-tensorflow": "tensorflow"}
# Share of the remaining time each worker gets (renormalised over the workers still to run).
SHARES = {"keras-jax": 0.5, "torch-twin": 0.3, "keras-torch": 0.15, "keras-tensorflow": 0.15}
FINAL_MARGIN_S = 8.0  # kept back from --time-limit to merge and write the results
KILL_GRACE_S = 10.0  # a worker is killed this long after its own deadline

# Dense bf16 tensor-core peak, FLOP/s, matched by substring of the device name (first match).
PEAK_BF16 = (
    ("H100 PCIe", 756e12),
    ("H100", 989e12),  # SXM (HBM3)
    ("H200", 989e12),
    ("A100", 312e12),
)

# U-Net configurations (TimeConditionalUNet keyword arguments). "twin9m" matches the 9.0 M
# parameter, 38.2 GFLOP / 128x128 image reference twin of shared/gpu/README.md in size and cost.
CONFIGS = {
    "default": {},
    "twin9m": {"widths": (48, 96, 192), "blocks_per_level": 2},
}
SMOKE_CONFIGS = {
    "default": {"widths": (8, 16), "blocks_per_level": 1},
    "twin9m": {"widths": (8, 16, 16), "blocks_per_level": 1},
}
UNET_DEFAULTS = {"widths": (64, 128, 256), "blocks_per_level": 2}


# ------------------------------------------------------------------------------------------
# Counting
# ------------------------------------------------------------------------------------------
def unet_forward_flops(widths, blocks_per_level, height, width, in_channels=3, out_channels=None):
    """Convolution and matmul FLOPs (2 per multiply-add) of one TimeConditionalUNet forward
    pass (no attention) on one ``height x width`` image, from the layer shapes. Normalisation,
    activations and additions are not counted (a few % more in XLA's count)."""
    out_channels = out_channels or in_channels
    multiple = 2 ** (len(widths) - 1)
    h, w = -(-height // multiple) * multiple, -(-width // multiple) * multiple
    time_dim = 4 * widths[0]

    def conv(h, w, cin, cout, k=3):
        return 2 * h * w * k * k * cin * cout

    def block(h, w, cin, cout):
        skip = conv(h, w, cin, cout, 1) if cin != cout else 0
        return conv(h, w, cin, cout) + conv(h, w, cout, cout) + skip + 2 * time_dim * 2 * cout

    total = 2 * widths[0] * time_dim + 2 * time_dim * time_dim + conv(h, w, in_channels, widths[0])
    channels, skips = widths[0], [widths[0]]
    for level, level_width in enumerate(widths):
        for _ in range(blocks_per_level):
            total += block(h, w, channels, level_width)
            channels = level_width
            skips.append(channels)
        if level < len(widths) - 1:
            h, w = -(-h // 2), -(-w // 2)
            total += conv(h, w, level_width, level_width)
            skips.append(level_width)
    total += 2 * block(h, w, channels, channels)
    for level in reversed(range(len(widths))):
        for _ in range(blocks_per_level + 1):
            total += block(h, w, channels + skips.pop(), widths[level])
            channels = widths[level]
        if level > 0:
            h, w = 2 * h, 2 * w
            total += conv(h, w, channels, channels)
    return total + conv(h, w, widths[0], out_channels)


def config_shape(config):
    merged = dict(UNET_DEFAULTS, **config)
    return tuple(merged["widths"]), merged["blocks_per_level"]


def forward_flops(settings, config, height, width):
    widths, blocks = config_shape(settings["configs"][config])
    return unet_forward_flops(widths, blocks, height, width)


def peak_bf16(device_name):
    for key, value in PEAK_BF16:
        if key.lower() in (device_name or "").lower():
            return value
    return None


def import_overhead():
    """benchmarks/overhead.py (its hand-written JAX references and helpers); importing it
    only sets default environment variables (KERAS_BACKEND=jax if unset)."""
    if HERE not in sys.path:
        sys.path.insert(0, HERE)
    import overhead

    return overhead


def versions():
    found = {"python": platform.python_version()}
    for name in ("keras", "jax", "jaxlib", "torch", "tensorflow", "numpy", "keras-indi"):
        try:
            found[name] = importlib.metadata.version(name)
        except importlib.metadata.PackageNotFoundError:
            found[name] = None
    return found


def cpu_model():
    return import_overhead().cpu_model()


# ------------------------------------------------------------------------------------------
# Settings
# ------------------------------------------------------------------------------------------
def parse_args(argv=None):
    parser = argparse.ArgumentParser(
        description="keras-indi GPU suite: fit / restore vs hand-written JAX and a PyTorch twin.",
        formatter_class=argparse.ArgumentDefaultsHelpFormatter,
    )
    parser.add_argument("--output", default=None, help="folder (or .json path); default $OUT, else benchmarks/results/")
    parser.add_argument("--time-limit", type=float, default=540.0, help="global limit (s): write what is there, exit 0")
    parser.add_argument("--measure-budget", type=float, default=60.0, help="time budget (s) of one measurement's timed repeats")
    parser.add_argument("--min-measure-s", type=float, default=None, help="skip a measurement with less time left in its worker (default 15, smoke 0)")
    parser.add_argument("--smoke", action="store_true", help="every code path at tiny sizes (CPU check, ~2 min)")
    parser.add_argument("--workers", nargs="+", default=list(WORKERS), choices=WORKERS)
    parser.add_argument("--configs", nargs="+", default=None, help="subset of: " + ", ".join(CONFIGS))
    parser.add_argument("--sizes", type=int, nargs="+", default=None, help="training crop sizes (default 128 256)")
    parser.add_argument("--batch-size", type=int, default=None, help="training batch (default 32)")
    parser.add_argument("--fit-steps", type=int, default=None, help="timed steps per repeat (default 30)")
    parser.add_argument("--repeats", type=int, default=None, help="timed repeats, median reported (default 3)")
    parser.add_argument("--sampler-batch", type=int, default=None, help="restore batch of sampler-size images (default 8)")
    parser.add_argument("--sampler-size", type=int, default=None, help="restore image size (default 256)")
    parser.add_argument("--sampler-steps", type=int, nargs="+", default=None, help="restore step counts (default 100 10 1)")
    parser.add_argument("--big-image", default=None, help="WIDTHxHEIGHT of the large image (default 1280x720)")
    parser.add_argument("--big-steps", type=int, default=None, help="steps on the large image (default 100)")
    parser.add_argument("--tile-size", type=int, default=None, help="restore_tiled tile (default 256)")
    parser.add_argument("--overlap", type=int, default=None, help="restore_tiled overlap (default 32)")
    parser.add_argument("--tile-batch-size", type=int, default=None, help="restore_tiled tiles per call (default 8)")
    parser.add_argument("--torch-compile-backend", default=None, help="torch.compile backend (default inductor; smoke aot_eager)")
    parser.add_argument("--no-float32", action="store_true", help="only mixed_bfloat16 / bf16 autocast")
    # internal: worker mode
    parser.add_argument("--worker", choices=WORKERS, help=argparse.SUPPRESS)
    parser.add_argument("--settings", help=argparse.SUPPRESS)
    parser.add_argument("--result", help=argparse.SUPPRESS)
    parser.add_argument("--deadline", type=float, help=argparse.SUPPRESS)
    return parser.parse_args(argv)


def build_settings(args):
    smoke = args.smoke
    base = {
        "sizes": [16] if smoke else [128, 256],
        "batch_size": 2 if smoke else 32,
        "fit_steps": 3 if smoke else 30,
        "fit_short_steps": 1 if smoke else 5,
        "pool_batches": 2 if smoke else 4,
        "repeats": 1 if smoke else 3,
        "sampler_batch": 2 if smoke else 8,
        "sampler_size": 32 if smoke else 256,
        "sampler_steps": [2, 1] if smoke else [100, 10, 1],
        "big_image": "48x40" if smoke else "1280x720",
        "big_steps": 2 if smoke else 100,
        "tile_size": 32 if smoke else 256,
        "overlap": 8 if smoke else 32,
        "tile_batch_size": 8,
        "torch_compile_backend": "eager" if smoke else "inductor",
        "min_measure_s": 0.0 if smoke else 15.0,
    }
    given = {
        "sizes": args.sizes,
        "batch_size": args.batch_size,
        "fit_steps": args.fit_steps,
        "repeats": args.repeats,
        "sampler_batch": args.sampler_batch,
        "sampler_size": args.sampler_size,
        "sampler_steps": args.sampler_steps,
        "big_image": args.big_image,
        "big_steps": args.big_steps,
        "tile_size": args.tile_size,
        "overlap": args.overlap,
        "tile_batch_size": args.tile_batch_size,
        "torch_compile_backend": args.torch_compile_backend,
        "min_measure_s": args.min_measure_s,
    }
    settings = dict(base, **{key: value for key, value in given.items() if value is not None})
    settings["fit_short_steps"] = min(settings["fit_short_steps"], max(settings["fit_steps"] - 1, 1))
    width, height = (int(v) for v in settings["big_image"].lower().split("x"))
    settings["big_image_hw"] = [height, width]
    table = SMOKE_CONFIGS if smoke else CONFIGS
    names = args.configs or list(table)[: 1 if smoke else None]
    unknown = [name for name in names if name not in table]
    if unknown:
        raise SystemExit(f"unknown --configs {unknown}; choose from {list(table)}")
    settings["configs"] = {name: table[name] for name in names}
    settings["policies"] = ["mixed_bfloat16"] if args.no_float32 else ["mixed_bfloat16", "float32"]
    settings.update(
        smoke=smoke,
        measure_budget=args.measure_budget,
        epsilon=0.01,
        learning_rate=1e-3,
        seed=0,
        twin_check_size=16 if smoke else 32,
    )
    return settings


def precision_of(policy):
    return "bf16" if "bfloat16" in policy else "fp32"


# ------------------------------------------------------------------------------------------
# Worker side: recording
# ------------------------------------------------------------------------------------------
class Recorder:
    """Runs measurements in order, each under a time budget; records result or error; rewrites
    the worker's JSON after every measurement (so a killed worker keeps what it measured)."""

    def __init__(self, path, deadline, settings, meta, memory):
        self.path, self.deadline, self.settings = path, deadline, settings
        self.meta, self.memory = meta, memory
        self.results = []
        self.save()

    def left(self):
        return self.deadline - time.time()

    def save(self):
        temporary = self.path + ".tmp"
        with open(temporary, "w") as handle:
            json.dump({"meta": self.meta, "results": self.results}, handle, indent=1, default=str)
        os.replace(temporary, self.path)

    def run(self, name, function, **labels):
        entry = {"name": name, **labels}
        left = self.left()
        if left < self.settings["min_measure_s"]:
            entry.update(status="skipped", error=f"time limit ({left:.0f} s left in this worker)")
        else:
            start = time.perf_counter()
            budget = Budget(min(self.settings["measure_budget"], max(left, 1.0)))
            self.memory.reset()
            try:
                entry.update(function(budget) or {})
                entry["status"] = "ok"
            except Exception as error:  # noqa: BLE001 - recorded, the suite goes on
                entry.update(status="error", error=f"{type(error).__name__}: {error}"[:1500])
                entry["traceback"] = traceback.format_exc()[-3000:]
            entry["wall_s"] = round(time.perf_counter() - start, 3)
            try:
                entry.update(self.memory.read())
            except Exception as error:  # noqa: BLE001
                entry["memory_error"] = repr(error)[:300]
        self.add_flop_rates(entry)
        self.results.append(entry)
        self.save()
        shown = {k: v for k, v in entry.items() if k not in ("traceback", "times_s")}
        print("MEASURED", json.dumps(shown, default=str), flush=True)
        return entry

    def add_flop_rates(self, entry):
        """Model FLOP/s (counted forward FLOPs, x3 for training) and fraction of bf16 peak."""
        flops = entry.get("model_flops_per_call")
        seconds = entry.get("seconds_per_call")
        if not flops or not seconds:
            return
        rate = flops / seconds
        entry["model_tflop_per_s"] = round(rate / 1e12, 3)
        peak = peak_bf16(self.meta.get("device"))
        entry["fraction_of_bf16_peak"] = round(rate / peak, 4) if peak else "unknown"
        if entry.get("xla_flops_per_call"):
            entry["xla_tflop_per_s"] = round(entry["xla_flops_per_call"] / seconds / 1e12, 3)


class Budget:
    def __init__(self, seconds):
        self.seconds, self.start = seconds, time.perf_counter()

    def left(self):
        return self.seconds - (time.perf_counter() - self.start)


def timed(function, sync):
    start = time.perf_counter()
    function()
    sync()
    return time.perf_counter() - start


def repeat_timed(function, sync, repeats, budget):
    """Up to `repeats` timings of `function` (at least one), stopping when `budget` is spent."""
    times = []
    while len(times) < repeats and (not times or budget.left() > 1.5 * times[-1]):
        times.append(timed(function, sync))
    return times


def steps_within(budget, seconds_per_step, wanted, minimum, share=0.25):
    """Steps per timed run so that the repeats fit the measurement's budget."""
    if seconds_per_step <= 0:
        return wanted
    return int(max(minimum, min(wanted, share * budget.left() / seconds_per_step)))


def image_pool(settings, size, batch, count, seed):
    """`count` distinct (degraded, clean) batches of float32 images in [-1, 1]."""
    import numpy as np

    rng = np.random.default_rng(seed)
    shape = (count * batch, size[0], size[1], 3)
    clean = rng.uniform(-0.9, 0.9, shape).astype("float32")
    degraded = np.clip(clean + 0.1 * rng.standard_normal(shape, dtype="float32"), -1.0, 1.0)
    return [(degraded[i * batch : (i + 1) * batch], clean[i * batch : (i + 1) * batch]) for i in range(count)]


# ------------------------------------------------------------------------------------------
# Worker side: Keras backends
# ------------------------------------------------------------------------------------------
class KerasBackend:
    """Backend-specific pieces of a Keras worker: device name, sync, memory."""

    def __init__(self):
        import keras

        self.name = keras.backend.backend()
        self.device = "unknown"
        self.platform = "cpu"
        if self.name == "jax":
            import jax

            device = jax.devices()[0]
            self.platform = device.platform
            self.device = getattr(device, "device_kind", str(device))
            self._jax_device = device
        elif self.name == "torch":
            import torch

            if torch.cuda.is_available():
                self.platform, self.device = "gpu", torch.cuda.get_device_name(0)
        elif self.name == "tensorflow":
            import tensorflow as tf

            gpus = tf.config.list_physical_devices("GPU")
            if gpus:
                details = tf.config.experimental.get_device_details(gpus[0])
                self.platform, self.device = "gpu", details.get("device_name", "GPU")
        if self.platform == "cpu":
            self.device = f"cpu: {cpu_model()}"

    def sync(self, model=None):
        if self.name == "jax":
            import jax

            if model is not None:
                jax.block_until_ready([v.value for v in model.variables])
        elif self.name == "torch" and self.platform == "gpu":
            import torch

            torch.cuda.synchronize()
        elif self.name == "tensorflow" and model is not None:
            model.trainable_variables[0].numpy()

    def reset(self):
        if self.platform == "cpu":
            return
        if self.name == "torch":
            import torch

            torch.cuda.reset_peak_memory_stats()
        elif self.name == "tensorflow":
            import tensorflow as tf

            tf.config.experimental.reset_memory_stats("GPU:0")

    def read(self):
        if self.platform == "cpu":
            return {"peak_memory_bytes": None}
        if self.name == "jax":
            stats = self._jax_device.memory_stats() or {}
            return {
                "peak_memory_bytes_process": stats.get("peak_bytes_in_use"),
                "memory_in_use_bytes": stats.get("bytes_in_use"),
            }
        if self.name == "torch":
            import torch

            return {"peak_memory_bytes": int(torch.cuda.max_memory_allocated())}
        import tensorflow as tf

        return {"peak_memory_bytes": int(tf.config.experimental.get_memory_info("GPU:0")["peak"])}


def build_network(settings, config, size, policy):
    import keras

    from keras_indi.networks import TimeConditionalUNet

    keras.mixed_precision.set_global_policy(policy)
    network = TimeConditionalUNet(**settings["configs"][config])
    network([keras.ops.zeros((1, size[0], size[1], 3)), keras.ops.ones((1,))])
    return network


def build_model(settings, config, size, policy):
    from keras_indi import InDIModel

    network = build_network(settings, config, size, policy)
    return InDIModel(network, noise_schedule=settings["epsilon"], loss="l1", seed=settings["seed"])


def pool_dataset(pool, steps):
    """A `keras.utils.PyDataset` of `steps` batches cycling through `pool` (in-memory batches)."""
    import keras

    class Pool(keras.utils.PyDataset):
        def __len__(self):
            return steps

        def __getitem__(self, index):
            return pool[index % len(pool)]

    return Pool()


def measure_fit(settings, backend, config, size, policy, budget, steps_per_execution=1):
    """InDIModel.fit() img/s: whole call and steady state, after two warm-up calls.

    ``steps_per_execution > 1`` (JAX, TensorFlow) runs that many training steps per compiled
    call, which hides the per-step host dispatch; step counts are then multiples of it."""
    import keras

    batch, pool_size = settings["batch_size"], settings["pool_batches"]
    pool = image_pool(settings, (size, size), batch, pool_size, settings["seed"])
    start = time.perf_counter()
    model = build_model(settings, config, (size, size), policy)
    model.compile(
        optimizer=keras.optimizers.Adam(settings["learning_rate"]), jit_compile="auto", steps_per_execution=steps_per_execution
    )
    build_s = time.perf_counter() - start

    def fit(steps):
        model.fit(pool_dataset(pool, steps), epochs=1, steps_per_epoch=steps, verbose=0)

    def sync():
        backend.sync(model)

    multiple = steps_per_execution
    short = -(-settings["fit_short_steps"] // multiple) * multiple
    compile_s = timed(lambda: fit(short), sync)
    per_step = timed(lambda: fit(short + multiple), sync) / (short + multiple)
    steps = steps_within(budget, per_step, settings["fit_steps"], short + multiple)
    steps = max(short + multiple, steps // multiple * multiple)  # whole executions only: no remainder compile
    long_times, short_times = [], []
    while len(long_times) < settings["repeats"] and (not long_times or budget.left() > 1.5 * long_times[-1]):
        long_times.append(timed(lambda: fit(steps), sync))
        short_times.append(timed(lambda: fit(short), sync))
    long_s, short_s = statistics.median(long_times), statistics.median(short_times)
    steady = (steps - short) * batch / (long_s - short_s) if long_s > short_s else None
    forward = forward_flops(settings, config, size, size)
    return {
        "img_per_s": round(steady, 2) if steady else None,
        "img_per_s_whole_call": round(steps * batch / long_s, 2),
        "seconds_per_call": batch / steady if steady else long_s / steps,
        "model_flops_per_call": 3 * forward * batch,
        "steps": steps,
        "short_steps": short,
        "batch": batch,
        "times_s": long_times,
        "short_times_s": short_times,
        "compile_s": round(compile_s, 2),
        "build_s": round(build_s, 2),
        "jit_compile": getattr(model, "jit_compile", None),
        "steps_per_execution": steps_per_execution,
        "parameters": int(model.network.count_params()),
    }


def measure_jax_step(settings, backend, config, size, policy, budget):
    """The hand-written jitted JAX InDI step (benchmarks/overhead.py) on device batches."""
    import jax
    import keras

    overhead = import_overhead()
    batch = settings["batch_size"]
    pool = image_pool(settings, (size, size), batch, settings["pool_batches"], settings["seed"])
    network = build_network(settings, config, (size, size), policy)
    optimizer = keras.optimizers.Adam(settings["learning_rate"])
    optimizer.build(network.trainable_variables)
    step = overhead.reference_train_step(network, optimizer, settings["epsilon"])
    batches = jax.block_until_ready([(jax.device_put(x), jax.device_put(y)) for x, y in pool])
    state = overhead.copy_tree(
        (
            [v.value for v in network.trainable_variables],
            [v.value for v in network.non_trainable_variables],
            [v.value for v in optimizer.variables],
            jax.random.PRNGKey(settings["seed"]),
        )
    )
    start = time.perf_counter()
    compiled = step.lower(state, *batches[0]).compile()  # one compile, used for the timings
    holder = {"state": jax.block_until_ready(compiled(state, *batches[0])[0])}
    compile_s = time.perf_counter() - start
    result = {"compile_s": round(compile_s, 2)}
    try:
        analysis = compiled.cost_analysis()
        analysis = analysis[0] if isinstance(analysis, (list, tuple)) else analysis
        result["xla_flops_per_call"] = float(analysis.get("flops", 0.0)) or None
    except Exception as error:  # noqa: BLE001 - backend dependent
        result["cost_analysis_error"] = repr(error)[:200]
    try:
        memory = compiled.memory_analysis()
        result["compiled_memory_bytes"] = int(
            memory.temp_size_in_bytes + memory.argument_size_in_bytes + memory.output_size_in_bytes
        )
    except Exception as error:  # noqa: BLE001
        result["memory_analysis_error"] = repr(error)[:200]

    def run(steps):
        state = holder["state"]
        for index in range(steps):
            state, loss = compiled(state, *batches[index % len(batches)])
        holder["state"] = state
        holder["loss"] = loss

    def sync():
        jax.block_until_ready(holder["state"])

    per_step = timed(lambda: run(2), sync) / 2
    steps = steps_within(budget, per_step, settings["fit_steps"], 2)
    times = repeat_timed(lambda: run(steps), sync, settings["repeats"], budget)
    seconds = statistics.median(times) / steps
    result.update(
        img_per_s=round(batch / seconds, 2),
        seconds_per_call=seconds,
        model_flops_per_call=3 * forward_flops(settings, config, size, size) * batch,
        steps=steps,
        batch=batch,
        times_s=times,
        parameters=int(network.count_params()),
        loss_last=float(holder["loss"]),
    )
    return result


def sampler_inputs(settings):
    import numpy as np

    size = settings["sampler_size"]
    rng = np.random.default_rng(settings["seed"] + 1)
    return rng.uniform(-0.9, 0.9, (settings["sampler_batch"], size, size, 3)).astype("float32")


def big_input(settings):
    import numpy as np

    height, width = settings["big_image_hw"]
    rng = np.random.default_rng(settings["seed"] + 2)
    return rng.uniform(-0.9, 0.9, (1, height, width, 3)).astype("float32")


def time_call(function, budget, repeats, sync=lambda: None):
    """Warm-up (compile) call, then up to `repeats` timed calls: seconds per call (median)."""
    compile_s = timed(function, sync)
    times = repeat_timed(function, sync, repeats, budget)
    return {"compile_s": round(compile_s, 2), "seconds_per_call": statistics.median(times), "times_s": times}


def sampler_result(settings, config, images, steps, timing):
    batch, height, width = images.shape[0], images.shape[1], images.shape[2]
    timing.update(
        steps=steps,
        batch=batch,
        image=f"{width}x{height}",
        ms_per_step=round(1e3 * timing["seconds_per_call"] / steps, 3),
        model_flops_per_call=forward_flops(settings, config, height, width) * batch * steps,
    )
    return timing


class KerasContext:
    """Models shared by the sampler measurements of one worker (built once per config/policy)."""

    def __init__(self, settings, backend):
        self.settings, self.backend, self.models = settings, backend, {}

    def model(self, config, policy):
        key = (config, policy)
        if key not in self.models:
            size = self.settings["sampler_size"]
            self.models[key] = build_model(self.settings, config, (size, size), policy)
        return self.models[key]


def measure_restore(context, config, policy, steps, budget):
    settings = context.settings
    model = context.model(config, policy)
    images = sampler_inputs(settings)

    def call():
        return model.restore(images, num_steps=steps, seed=0, progress_bar=False)

    return sampler_result(settings, config, images, steps, time_call(call, budget, settings["repeats"]))


def measure_hand_fused(context, config, policy, steps, budget, big=False):
    """benchmarks/overhead.py's hand-fused jax.jit + fori_loop sampler, NumPy in and out
    (the same transfers as model.restore), weights passed as arguments."""
    import jax
    import numpy as np

    settings = context.settings
    overhead = import_overhead()
    network = context.model(config, policy).network
    images = big_input(settings) if big else sampler_inputs(settings)
    sample = overhead.reference_sampler(network, steps, settings["epsilon"])
    weights = (
        [v.value for v in network.trainable_variables],
        [v.value for v in network.non_trainable_variables],
    )

    def call():
        return np.asarray(jax.block_until_ready(sample(*weights, images, np.int32(0))))

    return sampler_result(settings, config, images, steps, time_call(call, budget, settings["repeats"]))


def measure_big(context, config, policy, mode, budget):
    """The large image: restore_tiled (per_step or per_tile) or whole-image model.restore."""
    from keras_indi.samplers.tiling import restore_tiled

    settings = context.settings
    model = context.model(config, policy)
    image = big_input(settings)
    steps = settings["big_steps"]
    if mode == "whole":

        def call():
            return model.restore(image, num_steps=steps, seed=0, progress_bar=False)

        flops_images = image
    else:

        def call():
            return restore_tiled(
                model, image[0], tile_size=settings["tile_size"], overlap=settings["overlap"],
                mode=mode, tile_batch_size=settings["tile_batch_size"], num_steps=steps, seed=0,
            )

        flops_images = image  # counted on the image's pixels; tiles overlap (more work)
    result = sampler_result(settings, config, flops_images, steps, time_call(call, budget, settings["repeats"]))
    result["mode"] = mode
    return result


def dump_twin_check(settings, config, path):
    """Float32 weights, input and output of one network, for the torch twin's equivalence check."""
    import keras
    import numpy as np

    size = settings["twin_check_size"]
    network = build_network(settings, config, (size, size), "float32")
    rng = np.random.default_rng(7)
    for variable in network.weights:  # random weights everywhere (conv_out starts at zero)
        variable.assign(0.05 * rng.standard_normal(variable.shape).astype("float32"))
    x = rng.uniform(-1, 1, (2, size, size, 3)).astype("float32")
    t = np.array([0.3, 0.9], "float32")
    output = keras.ops.convert_to_numpy(network([x, t]))
    arrays = {f"w:{v.path}": keras.ops.convert_to_numpy(v) for v in network.weights}
    np.savez(path, x=x, t=t, output=output, **arrays)
    return {
        "parameters": int(network.count_params()),
        "forward_gflop_per_image_128": forward_flops(settings, config, 128, 128) / 1e9,
    }


def measure_flops_check(settings, config, size):
    """Counted forward FLOPs against XLA's cost analysis of the network's forward pass."""
    import jax
    import numpy as np

    network = build_network(settings, config, (size, size), "float32")
    trainable = [v.value for v in network.trainable_variables]
    non_trainable = [v.value for v in network.non_trainable_variables]

    def forward(trainable, non_trainable, x, t):
        return network.stateless_call(trainable, non_trainable, [x, t])[0]

    x = np.zeros((1, size, size, 3), "float32")
    analysis = jax.jit(forward).lower(trainable, non_trainable, x, np.ones((1,), "float32")).compile().cost_analysis()
    analysis = analysis[0] if isinstance(analysis, (list, tuple)) else analysis
    xla = float(analysis.get("flops", 0.0))
    counted = forward_flops(settings, config, size, size)
    return {"counted_gflop": counted / 1e9, "xla_gflop": xla / 1e9, "xla_over_counted": xla / counted if counted else None}


def keras_plan(settings, backend, recorder, scratch):
    """(name, function, labels) in priority order: the issue's targets first."""
    context = KerasContext(settings, backend)
    configs, sizes, policies = list(settings["configs"]), settings["sizes"], settings["policies"]
    first, bf16 = configs[0], policies[0]
    jax = backend.name == "jax"
    plan = []

    def train(config, size, policy):
        labels = {"config": config, "size": size, "policy": policy, "precision": precision_of(policy)}
        plan.append(("fit", lambda b: measure_fit(settings, backend, config, size, policy, b), labels))
        if jax:
            plan.append(("jax_step", lambda b: measure_jax_step(settings, backend, config, size, policy, b), labels))

    def sampler(config, policy, steps_list):
        labels = {"config": config, "policy": policy, "precision": precision_of(policy)}
        for steps in steps_list:
            plan.append(("restore", lambda b, s=steps: measure_restore(context, config, policy, s, b), labels))
            if jax:
                plan.append(("hand_fused", lambda b, s=steps: measure_hand_fused(context, config, policy, s, b), labels))

    def big(config, policy):
        labels = {"config": config, "policy": policy, "precision": precision_of(policy)}
        plan.append(("restore_tiled", lambda b: measure_big(context, config, policy, "per_step", b), labels))
        plan.append(("restore_whole", lambda b: measure_big(context, config, policy, "whole", b), labels))
        if jax:
            plan.append(("hand_fused_whole", lambda b: measure_hand_fused(context, config, policy, settings["big_steps"], b, big=True), labels))
        plan.append(("restore_tiled", lambda b: measure_big(context, config, policy, "per_tile", b), labels))

    for size in sizes:
        train(first, size, bf16)
    sampler(first, bf16, settings["sampler_steps"])
    big(first, bf16)
    for config in configs[1:]:
        train(config, sizes[0], bf16)
    for policy in policies[1:]:
        for size in sizes:
            train(first, size, policy)
    for config in configs[1:]:
        for size in sizes[1:]:
            train(config, size, bf16)
        for policy in policies[1:]:
            for size in sizes:
                train(config, size, policy)
    if backend.name in ("jax", "tensorflow"):  # the per-step dispatch hidden: 8 steps per compiled call
        for size in sizes:
            labels = {"config": first, "size": size, "policy": bf16, "precision": precision_of(bf16), "variant": "steps_per_execution=8"}
            plan.append(("fit_multi_step", lambda b, s=size: measure_fit(settings, backend, first, s, bf16, b, steps_per_execution=8), labels))
    for policy in policies[1:]:
        sampler(first, policy, settings["sampler_steps"][:1])
    if jax:  # cheap checks last: the equivalence dump for the torch twin, counted vs XLA FLOPs
        for config in configs:
            dump = os.path.join(scratch, f"twin_check_{config}.npz")
            plan.append(("twin_check_dump", lambda b, c=config, d=dump: dump_twin_check(settings, c, d), {"config": config}))
            plan.append(("flops_check", lambda b, c=config: measure_flops_check(settings, c, sizes[0]), {"config": config, "size": sizes[0]}))
    for name, function, labels in plan:
        recorder.run(name, function, **labels)


def keras_worker(args, settings):
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")
    import warnings

    warnings.filterwarnings("ignore", message=".*donated buffers.*")
    import keras

    keras.utils.set_random_seed(settings["seed"])
    backend = KerasBackend()
    meta = {"worker": args.worker, "backend": backend.name, "device": backend.device, "platform": backend.platform}
    meta["versions"] = versions()
    if backend.name == "jax":
        import jax

        meta["jax_devices"] = [str(d) for d in jax.devices()]
    recorder = Recorder(args.result, args.deadline, settings, meta, backend)
    keras_plan(settings, backend, recorder, os.path.dirname(args.result))


# ------------------------------------------------------------------------------------------
# Worker side: plain PyTorch twin
# ------------------------------------------------------------------------------------------
class TorchMemory:
    def __init__(self, device):
        self.device = device

    def reset(self):
        if self.device.type == "cuda":
            import torch

            torch.cuda.reset_peak_memory_stats()

    def read(self):
        if self.device.type != "cuda":
            return {"peak_memory_bytes": None}
        import torch

        return {"peak_memory_bytes": int(torch.cuda.max_memory_allocated())}


def twin_model(settings, config, device):
    import torch
    from torch_twin import TorchTimeConditionalUNet

    widths, blocks = config_shape(settings["configs"][config])
    torch.manual_seed(settings["seed"])
    return TorchTimeConditionalUNet(widths, blocks).to(device).to(memory_format=torch.channels_last)


def to_torch(array, device):
    import torch

    return torch.from_numpy(array).permute(0, 3, 1, 2).contiguous(memory_format=torch.channels_last).to(device)


def measure_twin_check(settings, config, device, scratch):
    """Twin parameter count; with the Keras worker's dump, the same output on the same weights."""
    import numpy as np
    import torch
    from torch_twin import count_parameters, load_keras_weights

    model = twin_model(settings, config, torch.device("cpu"))
    result = {"twin_parameters": count_parameters(model)}
    path = os.path.join(scratch, f"twin_check_{config}.npz")
    if not os.path.exists(path):
        result["equivalence"] = "not checked (no Keras dump: keras-jax worker did not run)"
        return result
    data = np.load(path)
    weights = {key[2:]: data[key] for key in data.files if key.startswith("w:")}
    result["tensors_loaded"] = load_keras_weights(model, weights)
    with torch.no_grad():
        output = model(to_torch(data["x"], "cpu"), torch.from_numpy(data["t"]))
    output = output.permute(0, 2, 3, 1).numpy()
    result["max_abs_diff_vs_keras"] = float(np.max(np.abs(output - data["output"])))
    result["keras_output_scale"] = float(np.max(np.abs(data["output"])))
    result["equivalent"] = bool(result["max_abs_diff_vs_keras"] <= 1e-3 * max(1.0, result["keras_output_scale"]))
    return result


def twin_sync(device):
    if device.type == "cuda":
        import torch

        torch.cuda.synchronize()


def measure_twin_train(settings, config, size, mode, precision, device, budget):
    """Plain PyTorch InDI L1 step: t ~ U[0,1], x_t = (1-t) x + t y + eps t eta, Adam."""
    import torch

    model = twin_model(settings, config, device)
    optimizer = torch.optim.Adam(model.parameters(), lr=settings["learning_rate"], eps=1e-7)
    batch, epsilon, bf16 = settings["batch_size"], settings["epsilon"], precision == "bf16"
    pool = [(to_torch(d, device), to_torch(c, device)) for d, c in image_pool(settings, (size, size), batch, settings["pool_batches"], settings["seed"])]

    def step(degraded, clean):
        t = torch.rand(clean.shape[0], device=clean.device)
        column = t[:, None, None, None]
        x_t = (1.0 - column) * clean + column * degraded + (epsilon * column) * torch.randn_like(clean)
        with torch.autocast(device.type, dtype=torch.bfloat16, enabled=bf16):
            prediction = model(x_t, t)
        loss = (prediction.float() - clean).abs().mean()
        optimizer.zero_grad(set_to_none=True)
        loss.backward()
        optimizer.step()
        return loss

    if mode == "compile":
        step = torch.compile(step, dynamic=False, backend=settings["torch_compile_backend"])
    holder = {}

    def run(steps):
        for index in range(steps):
            holder["loss"] = step(*pool[index % len(pool)])

    compile_s = timed(lambda: run(2), lambda: twin_sync(device))
    per_step = timed(lambda: run(2), lambda: twin_sync(device)) / 2
    steps = steps_within(budget, per_step, settings["fit_steps"], 2)
    times = repeat_timed(lambda: run(steps), lambda: twin_sync(device), settings["repeats"], budget)
    seconds = statistics.median(times) / steps
    return {
        "img_per_s": round(batch / seconds, 2),
        "seconds_per_call": seconds,
        "model_flops_per_call": 3 * forward_flops(settings, config, size, size) * batch,
        "compile_s": round(compile_s, 2),
        "steps": steps,
        "batch": batch,
        "times_s": times,
        "parameters": sum(p.numel() for p in model.parameters()),
        "loss_last": float(holder["loss"]),
        "compile_backend": settings["torch_compile_backend"] if mode == "compile" else None,
    }


def measure_twin_sample(settings, config, mode, precision, steps, device, budget, big=False):
    """The InDI sampler loop in plain PyTorch (no_grad; torch.compile'd network in compile mode)."""
    import torch

    model = twin_model(settings, config, device).eval()
    network = torch.compile(model, dynamic=False, backend=settings["torch_compile_backend"]) if mode == "compile" else model
    images_np = big_input(settings) if big else sampler_inputs(settings)
    images = to_torch(images_np, device)
    epsilon, bf16 = settings["epsilon"], precision == "bf16"

    @torch.no_grad()
    def sample():
        x = images + epsilon * torch.randn_like(images)
        times = torch.ones(images.shape[0], device=device)
        for index in range(steps):
            t = 1.0 - index / steps
            with torch.autocast(device.type, dtype=torch.bfloat16, enabled=bf16):
                estimate = network(x, times * t).float()
            ratio = (t - 1.0 / steps) / t
            x = (1.0 - ratio) * estimate + ratio * x
        return x.cpu()

    timing = time_call(sample, budget, settings["repeats"], lambda: twin_sync(device))
    return sampler_result(settings, config, images_np, steps, timing)


def twin_worker(args, settings):
    import torch

    if HERE not in sys.path:
        sys.path.insert(0, HERE)
    device = torch.device("cuda" if torch.cuda.is_available() else "cpu")
    if device.type == "cuda":
        torch.backends.cudnn.benchmark = True
        torch.backends.cuda.matmul.allow_tf32 = True
        torch.backends.cudnn.allow_tf32 = True
    name = torch.cuda.get_device_name(0) if device.type == "cuda" else f"cpu: {cpu_model()}"
    meta = {"worker": args.worker, "backend": "pytorch", "device": name, "platform": "gpu" if device.type == "cuda" else "cpu", "versions": versions()}
    scratch = os.path.dirname(args.result)
    recorder = Recorder(args.result, args.deadline, settings, meta, TorchMemory(device))
    configs, sizes = list(settings["configs"]), settings["sizes"]
    first = configs[0]
    fp32 = "float32" in settings["policies"]
    plan = [("twin_check", lambda b, c=c: measure_twin_check(settings, c, device, scratch), {"config": c}) for c in configs]

    def train(config, size, mode, precision):
        labels = {"config": config, "size": size, "mode": mode, "precision": precision}
        plan.append(("torch_train", lambda b: measure_twin_train(settings, config, size, mode, precision, device, b), labels))

    def sample(config, mode, precision, steps, big=False):
        labels = {"config": config, "mode": mode, "precision": precision}
        name = "torch_sample_whole" if big else "torch_sample"
        plan.append((name, lambda b: measure_twin_sample(settings, config, mode, precision, steps, device, b, big), labels))

    for size in sizes:
        train(first, size, "compile", "bf16")
    train(first, sizes[0], "eager", "bf16")
    if fp32:
        train(first, sizes[0], "eager", "fp32")
    sample(first, "compile", "bf16", settings["sampler_steps"][0])
    sample(first, "eager", "bf16", settings["sampler_steps"][0])
    sample(first, "compile", "bf16", settings["big_steps"], big=True)
    for config in configs[1:]:
        train(config, sizes[0], "compile", "bf16")
        train(config, sizes[0], "eager", "bf16")
    for size in sizes[1:]:
        train(first, size, "eager", "bf16")
    if fp32:
        for size in sizes:
            train(first, size, "compile", "fp32")
    for config in configs[1:]:
        for size in sizes[1:]:
            train(config, size, "compile", "bf16")
    for name, function, labels in plan:
        recorder.run(name, function, **labels)


# ------------------------------------------------------------------------------------------
# Parent: launch workers, merge, check targets, report
# ------------------------------------------------------------------------------------------
def output_path(args):
    target = args.output or os.environ.get("OUT") or os.path.join(HERE, "results")
    name = "gpu_suite_smoke.json" if args.smoke else "gpu_suite.json"
    if target.endswith(".json"):
        return target
    return os.path.join(target, name)


def available(worker):
    if worker == "torch-twin":
        return importlib.util.find_spec("torch") is not None, "torch is not installed"
    module = BACKENDS[worker]
    if importlib.util.find_spec("keras") is None:
        return False, "keras is not installed"
    return importlib.util.find_spec(module) is not None, f"{module} is not installed"


def run_worker(worker, settings_path, scratch, log_dir, seconds, smoke=False):
    """Run one worker for at most `seconds` (its deadline is KILL_GRACE_S earlier)."""
    result_path = os.path.join(scratch, f"{worker}.json")
    log_path = os.path.join(log_dir, f"gpu_suite_{worker}.log")
    env = dict(os.environ, TF_CPP_MIN_LOG_LEVEL="3", PYTHONUNBUFFERED="1")
    env["PYTHONPATH"] = os.pathsep.join(filter(None, [ROOT, env.get("PYTHONPATH")]))
    if worker in BACKENDS:
        env["KERAS_BACKEND"] = BACKENDS[worker]
    if smoke and "XLA_FLAGS" not in env:  # plumbing check only: compile fast, run slow
        env["XLA_FLAGS"] = "--xla_backend_optimization_level=0"
    deadline = time.time() + max(seconds - KILL_GRACE_S, 1.0)
    command = [sys.executable, os.path.abspath(__file__), "--worker", worker, "--settings", settings_path,
               "--result", result_path, "--deadline", repr(deadline)]
    status = {"seconds_allotted": round(seconds, 1)}
    start = time.time()
    with open(log_path, "w") as log:
        process = subprocess.Popen(command, stdout=log, stderr=subprocess.STDOUT, env=env, cwd=ROOT)
        try:
            status["returncode"] = process.wait(timeout=max(seconds, 1.0))
        except subprocess.TimeoutExpired:
            process.terminate()
            try:
                process.wait(timeout=3)
            except subprocess.TimeoutExpired:
                process.kill()
                process.wait()
            status["returncode"] = None
            status["killed"] = "ran past its time share; results up to then kept"
    status["wall_s"] = round(time.time() - start, 2)
    with open(log_path, errors="replace") as log:
        status["log_tail"] = log.read()[-2500:]
    status["log"] = log_path
    data = {"meta": {}, "results": []}
    try:
        with open(result_path) as handle:
            data = json.load(handle)
    except (OSError, ValueError) as error:
        status["result_error"] = repr(error)
    status["status"] = "ok" if status.get("returncode") == 0 else "failed" if not status.get("killed") else "killed"
    status["meta"] = data.get("meta", {})
    for entry in data.get("results", []):
        entry["worker"] = worker
    return status, data.get("results", [])


def find(results, **labels):
    for entry in results:
        if entry.get("status") == "ok" and all(entry.get(k) == v for k, v in labels.items()):
            return entry
    return None


def check_targets(results, settings):
    """The issue's targets, from the merged measurements (None where something is missing)."""
    checks = []
    first = next(iter(settings["configs"]))
    bf16 = "mixed_bfloat16"

    def add(name, value, target, passed, detail):
        if settings["smoke"]:  # tiny sizes on whatever device: the values only show the plumbing works
            passed, target = None, f"{target} (GPU target; smoke)"
        checks.append({"target": name, "value": value, "goal": target, "met": passed, "detail": detail})

    for size in settings["sizes"]:
        fit = find(results, worker="keras-jax", name="fit", config=first, size=size, policy=bf16)
        step = find(results, worker="keras-jax", name="jax_step", config=first, size=size, policy=bf16)
        twin = find(results, worker="torch-twin", name="torch_train", config=first, size=size, mode="compile", precision="bf16")
        if fit and twin:
            ratio = fit["img_per_s"] / twin["img_per_s"]
            add(f"fit JAX bf16 / torch.compile bf16 twin, {size}px", round(ratio, 3), ">= 1.5", ratio >= 1.5, f"{fit['img_per_s']} vs {twin['img_per_s']} img/s")
        else:
            add(f"fit JAX bf16 / torch.compile bf16 twin, {size}px", None, ">= 1.5", None, "missing measurement")
        if fit and step:
            ratio = fit["img_per_s"] / step["img_per_s"]
            add(f"fit JAX bf16 / hand-written JAX step, {size}px", round(ratio, 3), ">= 0.95", ratio >= 0.95, f"{fit['img_per_s']} vs {step['img_per_s']} img/s")
        else:
            add(f"fit JAX bf16 / hand-written JAX step, {size}px", None, ">= 0.95", None, "missing measurement")
        multi = find(results, worker="keras-jax", name="fit_multi_step", config=first, size=size, policy=bf16)
        if multi and step and multi.get("img_per_s"):
            ratio = multi["img_per_s"] / step["img_per_s"]
            add(f"fit JAX bf16, steps_per_execution=8 / hand-written JAX step, {size}px", round(ratio, 3), ">= 0.95", ratio >= 0.95, f"{multi['img_per_s']} vs {step['img_per_s']} img/s")
    largest = max(settings["sizes"])
    fit = find(results, worker="keras-jax", name="fit", config=first, size=largest, policy=bf16)
    fraction = fit.get("fraction_of_bf16_peak") if fit else None
    passed = fraction >= 0.30 if isinstance(fraction, float) else None
    add(f"fit JAX bf16 fraction of bf16 peak, {largest}px", fraction, ">= 0.30", passed, f"{fit.get('model_tflop_per_s')} TFLOP/s (counted)" if fit else "missing measurement")
    for steps in settings["sampler_steps"]:
        restore = find(results, worker="keras-jax", name="restore", config=first, policy=bf16, steps=steps)
        hand = find(results, worker="keras-jax", name="hand_fused", config=first, policy=bf16, steps=steps)
        if restore and hand:
            ratio = restore["seconds_per_call"] / hand["seconds_per_call"]
            add(f"restore / hand-fused loop, {steps} steps", round(ratio, 3), "<= 1.05", ratio <= 1.05, f"{restore['seconds_per_call']:.4f} vs {hand['seconds_per_call']:.4f} s")
        else:
            add(f"restore / hand-fused loop, {steps} steps", None, "<= 1.05", None, "missing measurement")
    big = settings["big_image"]
    for name, mode in (("restore_tiled", "per_step"), ("restore_whole", "whole"), ("restore_tiled", "per_tile")):
        entry = find(results, worker="keras-jax", name=name, config=first, policy=bf16, mode=mode)
        seconds = entry["seconds_per_call"] if entry else None
        limit = 3.0
        add(f"{settings['big_steps']} steps at {big}, {name} ({mode})", round(seconds, 3) if seconds else None,
            f"< {limit} s", seconds < limit if seconds else None, "" if entry else "missing measurement")
    return checks


def describe(entry):
    if entry.get("status") != "ok":
        return entry.get("status", "?") + ": " + str(entry.get("error", ""))[:90].replace("|", "/")
    name = entry["name"]
    parts = []
    if entry.get("img_per_s") is not None:
        parts.append(f"{entry['img_per_s']:.1f} img/s")
        if entry.get("img_per_s_whole_call") is not None:
            parts.append(f"(whole call {entry['img_per_s_whole_call']:.1f})")
    elif "ms_per_step" in entry:
        parts.append(f"{entry['seconds_per_call']:.4f} s ({entry['ms_per_step']:.2f} ms/step, {entry['steps']} steps, {entry['batch']}x{entry['image']})")
    if entry.get("model_tflop_per_s") is not None:
        fraction = entry.get("fraction_of_bf16_peak")
        fraction = f"{100 * fraction:.1f}% peak" if isinstance(fraction, float) else "peak unknown"
        parts.append(f"{entry['model_tflop_per_s']:.2f} TFLOP/s, {fraction}")
    if name == "twin_check":
        parts.append(f"{entry.get('twin_parameters'):,} params; max |diff| vs Keras {entry.get('max_abs_diff_vs_keras', 'n/a')}")
    if name == "twin_check_dump":
        parts.append(f"{entry.get('parameters'):,} params; {entry.get('forward_gflop_per_image_128'):.2f} GFLOP fwd/img at 128px")
    if name == "flops_check":
        parts.append(f"counted {entry['counted_gflop']:.3f} GFLOP, XLA {entry['xla_gflop']:.3f} GFLOP")
    return " ".join(parts)


def memory_text(entry):
    value = entry.get("peak_memory_bytes") or entry.get("peak_memory_bytes_process")
    return f"{value / 2**30:.2f}" if value else "-"


def markdown(report):
    meta, settings = report["meta"], report["settings"]
    lines = [
        (
            f"GPU suite{' (SMOKE: tiny sizes, not a benchmark)' if settings['smoke'] else ''}: {meta['date']}, "
            f"host {meta['platform']}, total {meta.get('wall_s', 0):.0f} s of {meta['time_limit_s']:.0f} s limit"
        ),
        "",
        "| worker | device | status | wall (s) | versions |",
        "|---|---|---|---|---|",
    ]
    for worker, status in report["workers"].items():
        worker_meta = status.get("meta", {})
        wanted = {"keras-jax": ("keras", "jax"), "torch-twin": ("torch",), "keras-torch": ("keras", "torch")}.get(worker, ("keras", "tensorflow"))
        used = {k: v for k, v in worker_meta.get("versions", {}).items() if v and k in wanted}
        lines.append(f"| {worker} | {worker_meta.get('device', '-')} | {status.get('status')} {status.get('reason', '')} | "
                     f"{status.get('wall_s', '-')} | {', '.join(f'{k} {v}' for k, v in used.items())} |")
    lines += ["", "| worker | measurement | config | size | precision / mode | result | compile (s) | peak mem (GiB) |", "|---|---|---|---|---|---|---|---|"]
    for entry in report["results"]:
        mode = entry.get("precision", "") + (f" {entry['mode']}" if entry.get("mode") else "")
        lines.append(
            f"| {entry.get('worker')} | {entry['name']} | {entry.get('config', '')} | {entry.get('size', '')} | {mode} | "
            f"{describe(entry)} | {entry.get('compile_s', '-')} | {memory_text(entry)} |"
        )
    lines += ["", "| target | value | goal | met | detail |", "|---|---|---|---|---|"]
    for check in report["targets"]:
        met = {True: "yes", False: "NO", None: "n/a"}[check["met"]]
        lines.append(f"| {check['target']} | {check['value']} | {check['goal']} | {met} | {check['detail']} |")
    return "\n".join(lines)


def write_report(report, path):
    os.makedirs(os.path.dirname(os.path.abspath(path)), exist_ok=True)
    temporary = path + ".tmp"
    with open(temporary, "w") as handle:
        json.dump(report, handle, indent=2, default=str)
    os.replace(temporary, path)


def parent_main(args):
    start = time.time()
    deadline = start + args.time_limit - FINAL_MARGIN_S
    settings = build_settings(args)
    path = output_path(args)
    log_dir = os.path.join(os.path.dirname(os.path.abspath(path)), "gpu_suite_logs")
    os.makedirs(log_dir, exist_ok=True)
    scratch = tempfile.mkdtemp(prefix="gpu_suite_")
    settings_path = os.path.join(scratch, "settings.json")
    with open(settings_path, "w") as handle:
        json.dump(settings, handle)
    report = {
        "meta": {
            "date": time.strftime("%Y-%m-%d %H:%M:%S"),
            "platform": platform.platform(),
            "cpu_model": cpu_model(),
            "cpu_count": os.cpu_count(),
            "versions": versions(),
            "time_limit_s": args.time_limit,
            "command": " ".join([os.path.basename(sys.executable)] + sys.argv),
            "parameters": {},
        },
        "settings": settings,
        "workers": {},
        "results": [],
        "targets": [],
    }
    runnable = [w for w in args.workers if available(w)[0]]
    for worker in args.workers:
        ok, reason = available(worker)
        if not ok:
            report["workers"][worker] = {"status": "skipped", "reason": reason}
    for index, worker in enumerate(runnable):
        left = deadline - time.time()
        pending = runnable[index:]
        share = left * SHARES[worker] / sum(SHARES[w] for w in pending)
        if share < KILL_GRACE_S + 5:
            report["workers"][worker] = {"status": "skipped", "reason": f"time limit ({left:.0f} s left)"}
            continue
        print(f"[gpu_suite] {worker}: up to {share:.0f} s", flush=True)
        status, results = run_worker(worker, settings_path, scratch, log_dir, share, settings["smoke"])
        report["workers"][worker] = status
        report["results"].extend(results)
        print(f"[gpu_suite] {worker}: {status['status']} in {status['wall_s']} s, {len(results)} measurements", flush=True)
        report["meta"]["wall_s"] = time.time() - start
        write_report(report, path)
    for entry in report["results"]:
        if entry.get("status") == "ok" and entry.get("config") and (entry.get("parameters") or entry.get("twin_parameters")):
            counts = report["meta"]["parameters"].setdefault(entry["config"], {})
            if entry["name"] == "twin_check":
                counts["torch_twin"] = entry["twin_parameters"]
            else:
                counts["torch_twin" if entry["worker"] == "torch-twin" else "keras"] = entry["parameters"]
    report["meta"]["forward_gflop_per_image"] = {
        config: {f"{size}x{size}": forward_flops(settings, config, size, size) / 1e9 for size in settings["sizes"]}
        for config in settings["configs"]
    }
    report["targets"] = check_targets(report["results"], settings)
    report["meta"]["wall_s"] = time.time() - start
    report["markdown"] = markdown(report)
    write_report(report, path)
    print(report["markdown"])
    print(f"[gpu_suite] wrote {path} ({time.time() - start:.1f} s)")
    return 0


def main(argv=None):
    args = parse_args(argv)
    if args.worker:
        with open(args.settings) as handle:
            settings = json.load(handle)
        if args.worker == "torch-twin":
            twin_worker(args, settings)
        else:
            keras_worker(args, settings)
        return 0
    return parent_main(args)


if __name__ == "__main__":
    sys.exit(main())
