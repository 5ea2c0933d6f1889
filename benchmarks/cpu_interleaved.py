"""keras-indi on torch against the PyTorch twin, in ONE process, in interleaved rounds (issue 14).

    python benchmarks/cpu_interleaved.py                 # the BENCHMARKS.md table (about 15 min on 2 cores)
    python benchmarks/cpu_interleaved.py --quick         # smoke test: tiny sizes, no torch.compile

Why a second CPU benchmark beside `cpu_peer.py`: on a shared 2-core VM the speed drifts by
10-30% within minutes, and `cpu_peer.py` runs each contender in its own process, one after the
other, so a ratio between two of them mixes their speed with the machine's drift. Here every
contender lives in the same process and the rounds alternate (contender A, B, C, D, then A, B,
C, D again...): drift hits all of them alike, and the reported figure is the median over rounds.
Only torch contenders can share a process (Keras fixes its backend per process); torch is
keras-indi's fastest CPU backend (`cpu_peer.py`), so this is the comparison that decides the
issue's targets.

Contenders, the same U-Net (the presets' network by default) and the same InDI L1 objective:

* training, images/s at each crop size: ``InDIModel.fit()`` eager (Keras' default on torch) and
  with ``compile(jit_compile=True)`` (Keras compiles the train step with ``torch.compile``),
  against the twin's step eager and under ``torch.compile`` (`cpu_peer.twin_train`'s step);
  a keras-indi figure is the steady state of a long and a short ``fit`` call (the per-call
  set-up excluded), a twin figure the mean of its steps;
* restoration, seconds per call: ``model.restore`` (NumPy in and out) eager and with the model
  compiled with ``jit_compile=True`` (the sampler then ``torch.compile``s the network
  evaluation), against the twin's loop eager and with a ``torch.compile``d network.

Compilation is excluded (warm-up calls first) and reported. Writes ``cpu_interleaved.json`` and
``.md`` (``_quick`` with --quick) under --output (default ``benchmarks/results/cpu_interleaved``).
"""

import argparse
import json
import os
import statistics
import sys
import time

os.environ["KERAS_BACKEND"] = "torch"

HERE = os.path.dirname(os.path.abspath(__file__))
if HERE not in sys.path:
    sys.path.insert(0, HERE)

import cpu_peer  # noqa: E402
import gpu_suite  # noqa: E402
from machine import cpu_model, load_average  # noqa: E402


def parse_args(argv=None):
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--quick", action="store_true", help="smoke test: tiny network and sizes, no torch.compile")
    parser.add_argument("--output", default=os.path.join(HERE, "results", "cpu_interleaved"))
    parser.add_argument("--sizes", type=int, nargs="+", default=None, help="training crop sizes (default 64 128)")
    parser.add_argument("--rounds", type=int, default=None, help="interleaved rounds (default 4)")
    parser.add_argument("--fit-steps", type=int, default=None, help="training steps per timed call (default 6)")
    parser.add_argument("--big-size", type=int, default=None, help="the large image (default 512)")
    parser.add_argument("--restore-steps", type=int, default=None, help="restoration steps (default 10)")
    return parser.parse_args(argv)


def build_settings(args):
    peer_args = ["--twin-channels-last"] + (["--quick"] if args.quick else [])
    settings = cpu_peer.build_settings(cpu_peer.parse_args(peer_args))
    settings.update(
        sizes=args.sizes or settings["sizes"],
        rounds=args.rounds or (1 if args.quick else 4),
        fit_steps=args.fit_steps or (2 if args.quick else 6),
        big_size=args.big_size or settings["big_size"],
        restore_steps=args.restore_steps or (2 if args.quick else 10),
        compile=not args.quick,
    )
    return settings


def keras_trainer(settings, size, jit_compile):
    import keras

    batch = settings["batch_size"]
    pool = gpu_suite.image_pool(settings, (size, size), batch, settings["pool_batches"], settings["seed"])
    model = gpu_suite.build_model(settings, "unet", (size, size), "float32")
    model.compile(optimizer=keras.optimizers.Adam(settings["learning_rate"]), jit_compile=jit_compile)

    def fit(steps):
        model.fit(gpu_suite.pool_dataset(pool, steps), epochs=1, steps_per_epoch=steps, verbose=0)

    def measure(steps):
        """Seconds per training step: a long call minus a short one (the per-call set-up cancels)."""
        start = time.perf_counter()
        fit(1)
        short = time.perf_counter() - start
        start = time.perf_counter()
        fit(steps + 1)
        return (time.perf_counter() - start - short) / steps

    return fit, measure


def twin_trainer(settings, size, compiled):
    step, pool, _ = cpu_peer.twin_training_step(settings, size, compiled)

    def fit(steps):
        for index in range(steps):
            step(*pool[index % len(pool)])

    def measure(steps):
        start = time.perf_counter()
        fit(steps)
        return (time.perf_counter() - start) / steps

    return fit, measure


def keras_restorer(settings, images, jit_compile):
    model = gpu_suite.build_model(settings, "unet", (settings["crop_size"],) * 2, "float32")
    if jit_compile:
        model.compile(optimizer="adam", jit_compile=True)

    def restore(steps):
        model.restore(images, num_steps=steps, seed=0, progress_bar=False)

    return restore


def twin_restorer(settings, images_np, compiled):
    import torch

    model = cpu_peer.twin_network(settings).eval()
    network = torch.compile(model, dynamic=False, backend=settings["torch_compile_backend"]) if compiled else model
    return cpu_peer.twin_sampler(settings, network, images_np)


def warm_up_all(calls, count):
    """Call each ``calls[name](count)`` once (compilation, caches); ``{name: seconds}``."""
    seconds = {}
    for name, call in calls.items():
        start = time.perf_counter()
        call(count)
        seconds[name] = round(time.perf_counter() - start, 1)
    return seconds


def interleave(contenders, rounds, measure_one):
    """``{name: [seconds per round]}``: every contender once per round, in the same order."""
    times = {name: [] for name in contenders}
    for round_index in range(rounds):
        for name, contender in contenders.items():
            times[name].append(measure_one(contender))
        print(f"  round {round_index + 1}: " + ", ".join(f"{n} {t[-1]:.3f} s" for n, t in times.items()), flush=True)
    return times


def training_table(settings):
    rows = []
    for size in settings["sizes"]:
        contenders = {"keras-indi eager": keras_trainer(settings, size, False),
                      "twin eager": twin_trainer(settings, size, False)}
        if settings["compile"]:
            contenders["keras-indi jit_compile=True"] = keras_trainer(settings, size, True)
            contenders["twin torch.compile"] = twin_trainer(settings, size, True)
        warm_up = warm_up_all({name: fit for name, (fit, _) in contenders.items()}, 2)
        print(f"training {size}x{size}: warm-up (compilation) {warm_up}", flush=True)
        times = interleave(contenders, settings["rounds"], lambda contender: contender[1](settings["fit_steps"]))
        images_per_s = {name: settings["batch_size"] / statistics.median(t) for name, t in times.items()}
        rows.append({"size": size, "images_per_s": images_per_s, "seconds_per_step": times, "warm_up_s": warm_up})
    return rows


def restoration_table(settings):
    inputs = cpu_peer.restore_inputs(settings)
    rows = []
    for kind in ("crops", "big"):
        images = inputs[kind]
        contenders = {"keras-indi eager": keras_restorer(settings, images, False),
                      "twin eager": twin_restorer(settings, images, False)}
        if settings["compile"]:
            contenders["keras-indi jit_compile=True"] = keras_restorer(settings, images, True)
            contenders["twin torch.compile"] = twin_restorer(settings, images, True)
        warm_up = warm_up_all(contenders, 1)
        steps = settings["restore_steps"]
        print(f"restoration {cpu_peer.describe(images)}, {steps} steps: warm-up {warm_up}", flush=True)

        def measure_one(restore):
            start = time.perf_counter()
            restore(steps)
            return time.perf_counter() - start

        times = interleave(contenders, settings["rounds"], measure_one)
        rows.append({"input": cpu_peer.describe(images), "steps": steps,
                     "seconds": {name: statistics.median(t) for name, t in times.items()},
                     "seconds_per_round": times, "warm_up_s": warm_up})
    return rows


def _table(title, rows, key, first_columns, label, better):
    """A Markdown table of one measurement, a column per contender and the best-vs-best ratio."""
    names = list(rows[0][key])
    lines = [title, "", "| " + " | ".join(first_columns) + " | " + " | ".join(names) + " | best keras-indi / best twin |",
             "|---" * len(first_columns) + "|" + "---:|" * (len(names) + 1)]
    for row in rows:
        values = row[key]
        best_keras = better(v for n, v in values.items() if n.startswith("keras"))
        best_twin = better(v for n, v in values.items() if n.startswith("twin"))
        lines.append(f"| {label(row)} | " + " | ".join(f"{values[n]:.3f}" for n in names)
                     + f" | **{best_keras / best_twin:.2f}** |")
    return lines + [""]


def markdown(report):
    settings = report["settings"]
    lines = [f"keras-indi (torch backend) vs the PyTorch twin, one process, {settings['rounds']} interleaved "
             f"rounds, medians; {report['cpu']}; load average {report['load_before']} before, {report['load_after']} after.", ""]
    if report["training"]:
        lines += _table(f"Training, images/s (batch {settings['batch_size']}; higher is better):", report["training"],
                        "images_per_s", ["crop"], lambda row: f"{row['size']}x{row['size']}", max)
    if report["restoration"]:
        lines += _table("Restoration, seconds per call (lower is better):", report["restoration"], "seconds",
                        ["input", "steps"], lambda row: f"{row['input']} | {row['steps']}", min)
    return "\n".join(lines)


def main(argv=None):
    args = parse_args(argv)
    settings = build_settings(args)
    load_before = load_average()
    report = {"cpu": cpu_model(), "load_before": load_before, "settings": {k: v for k, v in settings.items() if k != "configs"}}
    report["training"] = training_table(settings)
    report["restoration"] = restoration_table(settings)
    report["load_after"] = load_average()
    os.makedirs(args.output, exist_ok=True)
    stem = os.path.join(args.output, "cpu_interleaved" + ("_quick" if args.quick else ""))
    with open(stem + ".json", "w") as handle:
        json.dump(report, handle, indent=1, default=str)
    table = markdown(report)
    with open(stem + ".md", "w") as handle:
        handle.write(table)
    print(table)
    return report


if __name__ == "__main__":
    main()
