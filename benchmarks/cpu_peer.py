"""CPU comparison with the peer (issue 14): keras-indi on JAX, TensorFlow and torch against a
plain-PyTorch twin, measured side by side in one run.

    python benchmarks/cpu_peer.py                # the BENCHMARKS.md table (long: tens of minutes on 2 cores)
    python benchmarks/cpu_peer.py --quick        # smoke test: every code path at tiny sizes

What is measured, with the same U-Net (by default the presets' network: ``widths=(32, 64)``,
one block per level, GroupNorm with 8 groups, about 0.7 M parameters) and the same InDI
objective (L1, t ~ U[0, 1], ``x_t = (1 - t) x + t y + eps t eta``, Adam), float32:

* training throughput (images/s) at 64x64 and 128x128 crops: ``InDIModel.fit()`` on each Keras
  backend (`gpu_suite.measure_fit`: steady state from an N-step and a k-step ``fit`` call on an
  in-memory pool of batches, compilation excluded) and the twin (``benchmarks/torch_twin.py``)
  in eager mode and under ``torch.compile`` (same step as `gpu_suite.measure_twin_train`);
* restoration latency (s per call, NumPy in and out): ``model.restore`` with 1, 10 and 100
  steps on a batch of 64x64 crops and on one 512x512 image, against the twin's loop (eager
  and ``torch.compile``d network, ``no_grad``); compilation is excluded (a 1-step warm-up call
  first: on JAX and TensorFlow every step count shares that compiled loop);
* peak resident memory of each measurement (the process's ``VmHWM``, reset before each
  measurement through ``/proc/self/clear_refs``; the process total, libraries included).

Each worker runs in its own process (the Keras backend is fixed per process), one after the
other. The parent prints and writes ``cpu_peer.json`` and ``cpu_peer.md`` (``cpu_peer_quick.*``
with --quick) under --output (default ``benchmarks/results/cpu_peer``), with the ratios
keras-indi / twin: training throughput of the fastest Keras backend over the twin's best
(target >= 1), restoration time of each backend over the twin's best (target <= 1.05).
The load average before and after is recorded: a loaded machine gives meaningless ratios.
"""

import argparse
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

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from machine import cpu_model, load_average  # noqa: E402

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.dirname(HERE)
if HERE not in sys.path:
    sys.path.insert(0, HERE)

WORKERS = ("keras-jax", "keras-tensorflow", "keras-torch", "torch-twin")
BACKENDS = {"keras-jax": "jax", "keras-tensorflow": "tensorflow", "keras-torch": "torch"}
# The presets' U-Net (keras_indi/presets/weights/presets.json): what a CPU user restores with.
PRESET_CONFIG = {"widths": (32, 64), "blocks_per_level": 1, "groups": 8}
QUICK_CONFIG = {"widths": (8, 16), "blocks_per_level": 1, "groups": 8}


def parse_args(argv=None):
    parser = argparse.ArgumentParser(
        description="keras-indi vs a PyTorch twin on the CPU: fit() throughput, restoration latency, memory.",
        formatter_class=argparse.ArgumentDefaultsHelpFormatter,
    )
    parser.add_argument("--quick", action="store_true", help="smoke test: tiny network and sizes")
    parser.add_argument("--output", default=os.path.join(HERE, "results", "cpu_peer"))
    parser.add_argument("--workers", nargs="+", default=list(WORKERS), choices=WORKERS)
    parser.add_argument("--widths", default=None, help="U-Net widths, e.g. 32,64 (default: the presets' network)")
    parser.add_argument("--blocks-per-level", type=int, default=None)
    parser.add_argument("--sizes", type=int, nargs="+", default=None, help="training crop sizes (default 64 128)")
    parser.add_argument("--batch-size", type=int, default=None, help="training batch (default 16)")
    parser.add_argument("--fit-steps", type=int, default=None, help="training steps per timed call (default 8)")
    parser.add_argument("--repeats", type=int, default=None, help="timed repeats, median reported (default 3)")
    parser.add_argument("--steps", type=int, nargs="+", default=None, help="restoration step counts (default 1 10 100)")
    parser.add_argument("--crop-batch", type=int, default=None, help="64x64 crops per restoration call (default 16)")
    parser.add_argument("--crop-size", type=int, default=None, help="crop size (default 64)")
    parser.add_argument("--big-size", type=int, default=None, help="the large image (default 512)")
    parser.add_argument("--big-steps", type=int, nargs="+", default=None, help="steps on the large image (default: --steps)")
    parser.add_argument("--measure-budget", type=float, default=None,
                        help="seconds of timed repeats per measurement (at least one call; default 120)")
    parser.add_argument("--twin-modes", nargs="+", default=["eager", "compile"], choices=["eager", "compile"])
    parser.add_argument("--twin-channels-last", action="store_true", help="twin in channels_last memory format")
    parser.add_argument("--torch-compile-backend", default=None, help="torch.compile backend (default inductor)")
    parser.add_argument("--timeout", type=float, default=None, help="seconds per worker before it is killed (default 3 h)")
    # internal: worker mode
    parser.add_argument("--worker", choices=WORKERS, help=argparse.SUPPRESS)
    parser.add_argument("--settings", help=argparse.SUPPRESS)
    parser.add_argument("--result", help=argparse.SUPPRESS)
    return parser.parse_args(argv)


def build_settings(args):
    quick = args.quick
    config = dict(QUICK_CONFIG if quick else PRESET_CONFIG)
    if args.widths:
        config["widths"] = tuple(int(w) for w in args.widths.split(","))
    if args.blocks_per_level:
        config["blocks_per_level"] = args.blocks_per_level
    base = {
        "sizes": [16] if quick else [64, 128],
        "batch_size": 2 if quick else 16,
        "fit_steps": 2 if quick else 8,
        "fit_short_steps": 1 if quick else 2,
        "pool_batches": 2 if quick else 4,
        "repeats": 1 if quick else 3,
        "steps": [1, 2] if quick else [1, 10, 100],
        "crop_batch": 2 if quick else 16,
        "crop_size": 16 if quick else 64,
        "big_size": 32 if quick else 512,
        "measure_budget": 5.0 if quick else 120.0,
        "torch_compile_backend": "eager" if quick else "inductor",
        "timeout": 900.0 if quick else 3 * 3600.0,
    }
    given = {
        "sizes": args.sizes, "batch_size": args.batch_size, "fit_steps": args.fit_steps, "repeats": args.repeats,
        "steps": args.steps, "crop_batch": args.crop_batch, "crop_size": args.crop_size, "big_size": args.big_size,
        "measure_budget": args.measure_budget, "torch_compile_backend": args.torch_compile_backend,
        "timeout": args.timeout,
    }
    settings = dict(base, **{key: value for key, value in given.items() if value is not None})
    settings["fit_short_steps"] = min(settings["fit_short_steps"], max(settings["fit_steps"] - 1, 1))
    settings["big_steps"] = args.big_steps or settings["steps"]
    settings.update(
        quick=quick,
        configs={"unet": config},  # the gpu_suite helpers look the network up here
        twin_modes=args.twin_modes,
        twin_channels_last=args.twin_channels_last,
        epsilon=0.01,
        learning_rate=1e-3,
        seed=0,
    )
    return settings


# ------------------------------------------------------------------------------------------
# Worker side
# ------------------------------------------------------------------------------------------
def reset_peak_memory():
    """Reset the process's peak resident memory (Linux >= 4.0); False when not possible."""
    try:
        with open("/proc/self/clear_refs", "w") as handle:
            handle.write("5")
        return True
    except OSError:
        return False


def peak_memory():
    """Peak resident memory in bytes since the last reset (``VmHWM``), else since start."""
    try:
        with open("/proc/self/status") as handle:
            for line in handle:
                if line.startswith("VmHWM:"):
                    return int(line.split()[1]) * 1024
    except (OSError, ValueError, IndexError):
        pass
    import resource

    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024


class Recorder:
    """Runs measurements in order; records result or error and the peak memory; rewrites the
    worker's JSON after each one (a killed worker keeps what it measured)."""

    def __init__(self, path, meta):
        self.path, self.meta, self.results = path, meta, []
        self.save()

    def save(self):
        with open(self.path + ".tmp", "w") as handle:
            json.dump({"meta": self.meta, "results": self.results}, handle, indent=1, default=str)
        os.replace(self.path + ".tmp", self.path)

    def run(self, name, function, **labels):
        entry = {"name": name, **labels}
        entry["peak_rss_reset"] = reset_peak_memory()
        start = time.perf_counter()
        try:
            entry.update(function() or {})
            entry["status"] = "ok"
        except Exception as error:  # noqa: BLE001 - recorded, the run goes on
            entry.update(status="error", error=f"{type(error).__name__}: {error}"[:1500],
                         traceback=traceback.format_exc()[-3000:])
        entry["wall_s"] = round(time.perf_counter() - start, 2)
        entry["peak_rss_bytes"] = peak_memory()
        self.results.append(entry)
        self.save()
        print("MEASURED", json.dumps({k: v for k, v in entry.items() if k not in ("traceback", "times_s")}, default=str), flush=True)


def timed_calls(call, steps, budget_s, repeats):
    """Median seconds of `call(steps)` over up to `repeats` calls within `budget_s` (>= 1 call)."""
    times, start = [], time.perf_counter()
    while len(times) < repeats and (not times or time.perf_counter() - start + times[-1] <= budget_s):
        begin = time.perf_counter()
        call(steps)
        times.append(time.perf_counter() - begin)
    return {"seconds_per_call": statistics.median(times), "times_s": [round(t, 4) for t in times]}


def restore_inputs(settings):
    import numpy as np

    rng = np.random.default_rng(settings["seed"] + 1)
    size = settings["crop_size"]
    crops = rng.uniform(-0.9, 0.9, (settings["crop_batch"], size, size, 3)).astype("float32")
    big = rng.uniform(-0.9, 0.9, (1, settings["big_size"], settings["big_size"], 3)).astype("float32")
    return {"crops": crops, "big": big}


def restoration_plan(settings):
    return [("crops", settings["steps"]), ("big", settings["big_steps"])]


def describe(images):
    return f"{images.shape[0]}x{images.shape[1]}x{images.shape[2]}"


def keras_worker(args, settings):
    import gpu_suite

    backend = gpu_suite.KerasBackend()
    meta = {"worker": args.worker, "backend": backend.name, "device": backend.device, "versions": gpu_suite.versions()}
    recorder = Recorder(args.result, meta)
    suite_settings = dict(settings, configs=settings["configs"])
    for size in settings["sizes"]:
        recorder.run(
            "fit",
            lambda size=size: gpu_suite.measure_fit(
                suite_settings, backend, "unet", size, "float32", gpu_suite.Budget(settings["measure_budget"])
            ),
            size=size,
        )
    inputs = restore_inputs(settings)
    holder = {}

    def model():
        if "model" not in holder:
            holder["model"] = gpu_suite.build_model(suite_settings, "unet", (settings["crop_size"],) * 2, "float32")
        return holder["model"]

    for kind, step_counts in restoration_plan(settings):
        images = inputs[kind]

        def warm_up(images=images):
            start = time.perf_counter()
            model().restore(images, num_steps=1, seed=0, progress_bar=False)
            return {"compile_s": round(time.perf_counter() - start, 2), "parameters": int(model().network.count_params())}

        recorder.run("restore_warmup", warm_up, input=kind, shape=describe(images))
        for steps in step_counts:

            def measure(images=images, steps=steps):
                def call(count):
                    model().restore(images, num_steps=count, seed=0, progress_bar=False)

                return timed_calls(call, steps, settings["measure_budget"], settings["repeats"])

            recorder.run("restore", measure, input=kind, shape=describe(images), steps=steps)


def twin_network(settings):
    import torch
    from torch_twin import TorchTimeConditionalUNet

    config = settings["configs"]["unet"]
    torch.manual_seed(settings["seed"])
    model = TorchTimeConditionalUNet(config["widths"], config["blocks_per_level"], groups=config.get("groups", 32))
    return model.to(memory_format=torch.channels_last) if settings["twin_channels_last"] else model


def to_torch(array, settings):
    import torch

    tensor = torch.from_numpy(array).permute(0, 3, 1, 2)
    return tensor.contiguous(memory_format=torch.channels_last if settings["twin_channels_last"] else torch.contiguous_format)


def twin_training_step(settings, size, compiled):
    """``(step, pool, model)``: the plain-PyTorch InDI L1 step (as `gpu_suite.measure_twin_train`,
    float32 on the CPU), ``torch.compile``d when `compiled`, and its pool of torch batches."""
    import gpu_suite
    import torch

    model = twin_network(settings)
    optimizer = torch.optim.Adam(model.parameters(), lr=settings["learning_rate"], eps=1e-7)
    batch, epsilon = settings["batch_size"], settings["epsilon"]
    pool = [(to_torch(d, settings), to_torch(c, settings))
            for d, c in gpu_suite.image_pool(settings, (size, size), batch, settings["pool_batches"], settings["seed"])]

    def step(degraded, clean):
        t = torch.rand(clean.shape[0])
        column = t[:, None, None, None]
        x_t = (1.0 - column) * clean + column * degraded + (epsilon * column) * torch.randn_like(clean)
        loss = (model(x_t, t) - clean).abs().mean()
        optimizer.zero_grad(set_to_none=True)
        loss.backward()
        optimizer.step()
        return loss

    if compiled:
        step = torch.compile(step, dynamic=False, backend=settings["torch_compile_backend"])
    return step, pool, model


def twin_train(settings, size, mode):
    """The twin's training throughput (`twin_training_step`, eager or ``torch.compile``)."""
    step, pool, model = twin_training_step(settings, size, mode == "compile")
    batch = settings["batch_size"]

    def run(steps):
        for index in range(steps):
            loss = step(*pool[index % len(pool)])
        return float(loss)

    start = time.perf_counter()
    run(2)
    compile_s = time.perf_counter() - start
    timing = timed_calls(run, settings["fit_steps"], settings["measure_budget"], settings["repeats"])
    seconds = timing["seconds_per_call"] / settings["fit_steps"]
    return {
        "img_per_s": round(batch / seconds, 2),
        "seconds_per_step": seconds,
        "compile_s": round(compile_s, 2),
        "steps": settings["fit_steps"],
        "batch": batch,
        "times_s": timing["times_s"],
        "parameters": sum(p.numel() for p in model.parameters()),
    }


def twin_sampler(settings, network, images_np):
    """``sample(steps)``: the twin's InDI loop (as `gpu_suite.measure_twin_sample`) with
    `network`, on the NumPy images `images_np`, NumPy in and out."""
    import torch

    epsilon = settings["epsilon"]

    @torch.no_grad()
    def sample(steps):
        images = to_torch(images_np, settings)
        x = images + epsilon * torch.randn_like(images)
        times = torch.ones(images.shape[0])
        for index in range(steps):
            t = 1.0 - index / steps
            estimate = network(x, times * t)
            ratio = (t - 1.0 / steps) / t
            x = (1.0 - ratio) * estimate + ratio * x
        return x.permute(0, 2, 3, 1).numpy()

    return sample


def twin_worker(args, settings):
    import gpu_suite
    import torch

    meta = {"worker": args.worker, "backend": "pytorch", "device": f"cpu: {cpu_model()}",
            "torch_threads": torch.get_num_threads(), "versions": gpu_suite.versions()}
    recorder = Recorder(args.result, meta)
    for size in settings["sizes"]:
        for mode in settings["twin_modes"]:
            recorder.run("twin_train", lambda size=size, mode=mode: twin_train(settings, size, mode), size=size, mode=mode)
    inputs = restore_inputs(settings)
    for mode in settings["twin_modes"]:
        model = twin_network(settings).eval()
        network = torch.compile(model, dynamic=False, backend=settings["torch_compile_backend"]) if mode == "compile" else model
        for kind, step_counts in restoration_plan(settings):
            images_np = inputs[kind]

            sample = twin_sampler(settings, network, images_np)

            def warm_up(sample=sample):
                start = time.perf_counter()
                sample(1)
                return {"compile_s": round(time.perf_counter() - start, 2),
                        "parameters": sum(p.numel() for p in model.parameters())}

            recorder.run("twin_restore_warmup", warm_up, input=kind, mode=mode, shape=describe(images_np))
            for steps in step_counts:
                recorder.run(
                    "twin_restore",
                    lambda sample=sample, steps=steps: timed_calls(sample, steps, settings["measure_budget"], settings["repeats"]),
                    input=kind, mode=mode, shape=describe(images_np), steps=steps,
                )


def worker_main(args):
    with open(args.settings) as handle:
        settings = json.load(handle)
    settings["configs"] = {name: dict(config, widths=tuple(config["widths"])) for name, config in settings["configs"].items()}
    if args.worker == "torch-twin":
        twin_worker(args, settings)
    else:
        keras_worker(args, settings)
    return 0


# ------------------------------------------------------------------------------------------
# Parent: run the workers one after the other, merge, report
# ------------------------------------------------------------------------------------------




def available(worker):
    module = "torch" if worker == "torch-twin" else BACKENDS[worker]
    if worker != "torch-twin" and importlib.util.find_spec("keras") is None:
        return False
    return importlib.util.find_spec(module) is not None


def run_worker(worker, settings, scratch, log_dir):
    result_path = os.path.join(scratch, f"{worker}.json")
    settings_path = os.path.join(scratch, "settings.json")
    with open(settings_path, "w") as handle:
        json.dump(settings, handle)
    env = dict(os.environ, TF_CPP_MIN_LOG_LEVEL="3", PYTHONUNBUFFERED="1")
    env["PYTHONPATH"] = os.pathsep.join(filter(None, [ROOT, HERE, env.get("PYTHONPATH")]))
    if worker in BACKENDS:
        env["KERAS_BACKEND"] = BACKENDS[worker]
    command = [sys.executable, os.path.abspath(__file__), "--worker", worker, "--settings", settings_path, "--result", result_path]
    log_path = os.path.join(log_dir, f"cpu_peer_{worker}.log")
    status = {"worker": worker}
    start = time.time()
    print(f"--- {worker} (log: {log_path})", flush=True)
    with open(log_path, "w") as log:
        process = subprocess.Popen(command, stdout=log, stderr=subprocess.STDOUT, env=env, cwd=ROOT)
        try:
            status["returncode"] = process.wait(timeout=settings["timeout"])
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()
            status["returncode"], status["killed"] = None, f"ran past --timeout {settings['timeout']} s"
    status["wall_s"] = round(time.time() - start, 1)
    with open(log_path, errors="replace") as log:
        status["log_tail"] = log.read()[-2000:]
    try:
        with open(result_path) as handle:
            data = json.load(handle)
    except (OSError, ValueError) as error:
        data = {"meta": {}, "results": []}
        status["result_error"] = repr(error)
    status["meta"] = data.get("meta", {})
    for entry in data.get("results", []):
        entry["worker"] = worker
    return status, data.get("results", [])


def find(results, **labels):
    for entry in results:
        if entry.get("status") == "ok" and all(entry.get(key) == value for key, value in labels.items()):
            return entry
    return None


def summarize(results, settings):
    """Training and restoration rows with the ratios to the twin's best."""
    keras_workers = [w for w in WORKERS if w in BACKENDS]
    training = []
    for size in settings["sizes"]:
        row = {"size": size}
        for worker in keras_workers:
            entry = find(results, worker=worker, name="fit", size=size)
            row[worker] = entry and entry.get("img_per_s")
            row[worker + ":rss"] = entry and entry.get("peak_rss_bytes")
        for mode in settings["twin_modes"]:
            entry = find(results, worker="torch-twin", name="twin_train", size=size, mode=mode)
            row["twin-" + mode] = entry and entry.get("img_per_s")
            row["twin-" + mode + ":rss"] = entry and entry.get("peak_rss_bytes")
        keras_best = max([row[w] for w in keras_workers if row.get(w)], default=None)
        twin_best = max([row["twin-" + m] for m in settings["twin_modes"] if row.get("twin-" + m)], default=None)
        row["keras_best"], row["twin_best"] = keras_best, twin_best
        row["ratio_best"] = round(keras_best / twin_best, 3) if keras_best and twin_best else None
        training.append(row)
    restoration = []
    for kind, step_counts in restoration_plan(settings):
        for steps in step_counts:
            row = {"input": kind, "steps": steps}
            for worker in keras_workers:
                entry = find(results, worker=worker, name="restore", input=kind, steps=steps)
                row[worker] = entry and entry.get("seconds_per_call")
                row[worker + ":rss"] = entry and entry.get("peak_rss_bytes")
                row["shape"] = row.get("shape") or (entry and entry.get("shape"))
            for mode in settings["twin_modes"]:
                entry = find(results, worker="torch-twin", name="twin_restore", input=kind, mode=mode, steps=steps)
                row["twin-" + mode] = entry and entry.get("seconds_per_call")
                row["twin-" + mode + ":rss"] = entry and entry.get("peak_rss_bytes")
                row["shape"] = row.get("shape") or (entry and entry.get("shape"))
            twin_best = min([row["twin-" + m] for m in settings["twin_modes"] if row.get("twin-" + m)], default=None)
            row["twin_best"] = twin_best
            for worker in keras_workers:
                row[worker + ":ratio"] = round(row[worker] / twin_best, 3) if row.get(worker) and twin_best else None
            restoration.append(row)
    return {"training": training, "restoration": restoration}


def _number(value, digits=2):
    return "-" if value is None else f"{value:.{digits}f}"


def _gib(value):
    return "-" if not value else f"{value / 2**30:.2f}"


def markdown(report):
    settings, meta, summary = report["settings"], report["meta"], report["summary"]
    config = settings["configs"]["unet"]
    modes = settings["twin_modes"]
    keras_workers = [w for w in WORKERS if w in BACKENDS]
    names = {"keras-jax": "JAX", "keras-tensorflow": "TensorFlow", "keras-torch": "torch"}
    lines = [
        f"CPU peer comparison: {meta['device']}, {meta['cores']} cores, {meta['date']}; load average before "
        f"{meta['load_before']}, after {meta['load_after']}{' (QUICK smoke run: tiny sizes)' if settings['quick'] else ''}.",
        f"U-Net widths {list(config['widths'])}, {config['blocks_per_level']} block(s) per level, "
        f"{config.get('groups', 32)} GroupNorm groups; float32; twin: benchmarks/torch_twin.py "
        f"({'channels_last' if settings['twin_channels_last'] else 'NCHW'}, torch.compile backend "
        f"{settings['torch_compile_backend']}).",
        "",
        f"Training, `InDIModel.fit()` vs the twin's step, images/s (batch {settings['batch_size']}; higher is better); "
        "peak resident memory in GiB in brackets:",
        "",
        "| crop | " + " | ".join(f"keras-indi {names[w]}" for w in keras_workers) + " | "
        + " | ".join(f"twin {m}" for m in modes) + " | best keras-indi / best twin |",
        "|---|" + "---:|" * (len(keras_workers) + len(modes) + 1),
    ]
    for row in summary["training"]:
        cells = [f"{_number(row.get(w), 1)} ({_gib(row.get(w + ':rss'))})" for w in keras_workers]
        cells += [f"{_number(row.get('twin-' + m), 1)} ({_gib(row.get('twin-' + m + ':rss'))})" for m in modes]
        lines.append(f"| {row['size']}x{row['size']} | " + " | ".join(cells) + f" | {_number(row['ratio_best'], 2)} |")
    lines += [
        "",
        "Restoration, seconds per call (NumPy in and out; lower is better); in brackets the ratio to the twin's "
        "best (target <= 1.05) for keras-indi, the peak resident memory in GiB for the twin:",
        "",
        "| input | steps | " + " | ".join(f"keras-indi {names[w]}" for w in keras_workers) + " | "
        + " | ".join(f"twin {m}" for m in modes) + " |",
        "|---|---:|" + "---:|" * (len(keras_workers) + len(modes)),
    ]
    for row in summary["restoration"]:
        what = f"{row['shape'] or row['input']}" + (" crops" if row["input"] == "crops" else " image")
        cells = [f"{_number(row.get(w), 3)} ({_number(row.get(w + ':ratio'), 2)})" for w in keras_workers]
        cells += [f"{_number(row.get('twin-' + m), 3)} ({_gib(row.get('twin-' + m + ':rss'))})" for m in modes]
        lines.append(f"| {what} | {row['steps']} | " + " | ".join(cells) + " |")
    failed = [f"{e['worker']} {e['name']} {e.get('size', e.get('input', ''))}: {e.get('error', '')[:120]}"
              for e in report["results"] if e.get("status") != "ok"]
    if failed:
        lines += ["", "Failed measurements:", ""] + [f"- {line}" for line in failed]
    lines += ["", "Command: `python benchmarks/cpu_peer.py" + (" --quick" if settings["quick"] else "") + "`"]
    return "\n".join(lines) + "\n"


def main(argv=None):
    args = parse_args(argv)
    if args.worker:
        return worker_main(args)
    settings = build_settings(args)
    os.makedirs(args.output, exist_ok=True)
    meta = {"device": cpu_model(), "cores": os.cpu_count(), "python": platform.python_version(),
            "date": time.strftime("%Y-%m-%d %H:%M:%S"), "load_before": load_average()}
    scratch = tempfile.mkdtemp(prefix="cpu-peer-")
    statuses, results = [], []
    for worker in args.workers:
        if not available(worker):
            statuses.append({"worker": worker, "skipped": "not installed"})
            continue
        status, entries = run_worker(worker, settings, scratch, scratch)
        statuses.append(status)
        results += entries
    meta["load_after"] = load_average()
    report = {"meta": meta, "settings": settings, "workers": statuses, "results": results}
    report["summary"] = summarize(results, settings)
    name = "cpu_peer_quick" if settings["quick"] else "cpu_peer"
    with open(os.path.join(args.output, name + ".json"), "w") as handle:
        json.dump(report, handle, indent=1, default=str)
    table = markdown(report)
    with open(os.path.join(args.output, name + ".md"), "w") as handle:
        handle.write(table)
    print(table)
    return 0 if all(entry.get("status") == "ok" for entry in results) and results else 1


if __name__ == "__main__":
    sys.exit(main())
