"""JAX on the CPU with and without keras-indi's XLA flag (`keras_indi.backend.xla_flags`).

    python benchmarks/xla_cpu_flags.py                  # the BENCHMARKS.md table (~6 min on 2 cores)
    python benchmarks/xla_cpu_flags.py --quick          # smoke test: tiny sizes, one round

jaxlib 0.10 runs every convolution on the CPU as a YNNPACK fusion; keras-indi adds
``--xla_cpu_experimental_ynn_fusion_type=-individual_convolution`` to ``XLA_FLAGS`` (convolutions
through XLA's own emitter, other YNNPACK fusions unchanged). Each configuration runs in its own
process (XLA reads its flags once per process), alternating over `--rounds` rounds so that the
machine's drift hits every configuration alike; the table gives the median over rounds of:

* one evaluation of the presets' (32, 64) U-Net on a batch of 64x64 crops (jitted
  ``stateless_call``, compilation excluded);
* one ``InDIModel.fit()`` step of that network at 64x64 (batch 16), and of the quickstart's
  (16, 32) U-Net at 32x32, the steady state of a long minus a short call.

Configurations: ``default`` (``KERAS_INDI_XLA_CPU_FLAGS=0``: XLA's defaults), ``keras-indi``
(the flag keras-indi sets), ``no YNN`` (every YNNPACK fusion off). Writes ``xla_cpu_flags.json``
and ``.md`` under --output (default ``benchmarks/results/xla_cpu_flags``).
"""

import argparse
import json
import os
import statistics
import sys
import time

HERE = os.path.dirname(os.path.abspath(__file__))
REPO = os.path.dirname(HERE)
CONFIGURATIONS = {
    "default": {"KERAS_INDI_XLA_CPU_FLAGS": "0"},
    "keras-indi": {},
    "no YNN": {"XLA_FLAGS": "--xla_cpu_experimental_ynn_fusion_type="},
}

WORKER = r"""
import json, os, sys, time
sys.path.insert(0, {here!r})
sys.path.insert(0, {repo!r})
import keras_indi, keras, jax, numpy as np
import cpu_peer, gpu_suite

settings = json.loads({settings!r})
result = {{"xla_flags": os.environ.get("XLA_FLAGS")}}

def median_seconds(function, repeats):
    times = []
    for _ in range(repeats):
        start = time.perf_counter(); function(); times.append(time.perf_counter() - start)
    return sorted(times)[len(times) // 2]

# Network evaluation: the presets' U-Net on a batch of crops.
peer = cpu_peer.build_settings(cpu_peer.parse_args(["--widths", settings["eval_widths"]]))
model = gpu_suite.build_model(peer, "unet", (settings["eval_size"],) * 2, "float32")
network = model.network
x = jax.numpy.asarray(np.random.default_rng(0).uniform(-1, 1, (settings["eval_batch"], settings["eval_size"], settings["eval_size"], 3)).astype("float32"))
t = jax.numpy.full((settings["eval_batch"],), 0.5, "float32")
trainable = [v.value for v in network.trainable_variables]
other = [v.value for v in network.non_trainable_variables]
evaluate = jax.jit(lambda a, b, x, t: network.stateless_call(a, b, [x, t])[0])
evaluate(trainable, other, x, t).block_until_ready()
result["evaluation_s"] = median_seconds(lambda: evaluate(trainable, other, x, t).block_until_ready(), settings["repeats"])

# Training steps at each size.
for name, widths, size in settings["fits"]:
    peer = cpu_peer.build_settings(cpu_peer.parse_args(["--widths", widths]))
    pool = gpu_suite.image_pool(peer, (size, size), 16, 4, 0)
    model = gpu_suite.build_model(peer, "unet", (size, size), "float32")
    model.compile(optimizer=keras.optimizers.Adam(1e-3))
    fit = lambda n: model.fit(gpu_suite.pool_dataset(pool, n), epochs=1, steps_per_epoch=n, verbose=0)
    fit(2)
    short = median_seconds(lambda: fit(2), 1)
    long = median_seconds(lambda: fit(2 + settings["fit_steps"]), 1)
    result[name] = (long - short) / settings["fit_steps"]
print("RESULT " + json.dumps(result))
"""


def parse_args(argv=None):
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--quick", action="store_true", help="smoke test: tiny sizes, one round")
    parser.add_argument("--rounds", type=int, default=None, help="alternating rounds (default 2)")
    parser.add_argument("--output", default=os.path.join(HERE, "results", "xla_cpu_flags"))
    return parser.parse_args(argv)


def run_worker(environment_update, settings):
    environment = {key: value for key, value in os.environ.items() if key not in ("XLA_FLAGS", "KERAS_INDI_XLA_CPU_FLAGS")}
    environment.update(KERAS_BACKEND="jax", **environment_update)
    code = WORKER.format(here=HERE, repo=REPO, settings=json.dumps(settings))
    from machine import run_python_worker

    return run_python_worker(code, environment)


def main(argv=None):
    args = parse_args(argv)
    if args.quick:
        settings = {"eval_widths": "8,16", "eval_size": 16, "eval_batch": 2, "repeats": 1, "fit_steps": 1,
                    "fits": [["fit_small_s", "8,16", 16]]}
    else:
        settings = {"eval_widths": "32,64", "eval_size": 64, "eval_batch": 32, "repeats": 3, "fit_steps": 8,
                    "fits": [["fit_64_s", "32,64", 64], ["fit_32_s", "16,32", 32]]}
    rounds = args.rounds or (1 if args.quick else 2)
    sys.path.insert(0, HERE)
    from machine import alternate, cpu_model, load_average, write_report

    load_before = load_average()
    results = alternate(CONFIGURATIONS, rounds, lambda name: run_worker(CONFIGURATIONS[name], settings))
    keys = ["evaluation_s"] + [fit[0] for fit in settings["fits"]]
    medians = {name: {key: statistics.median(run[key] for run in runs) for key in keys} for name, runs in results.items()}
    report = {
        "cpu": cpu_model(), "date": time.strftime("%Y-%m-%d %H:%M"), "load_average_before": load_before,
        "load_average_after": load_average(), "settings": settings, "rounds": rounds, "runs": results, "medians": medians,
    }
    labels = {"evaluation_s": f"evaluation, {settings['eval_batch']} crops of {settings['eval_size']}x{settings['eval_size']} (s)"}
    labels.update({fit[0]: f"fit step, U-Net {fit[1]} at {fit[2]}x{fit[2]} (s)" for fit in settings["fits"]})
    lines = [f"JAX on the CPU, {report['cpu']}, {report['date']}; median of {rounds} alternating rounds, one process per "
             f"configuration; load average before {load_before}, after {report['load_average_after']}.", "",
             "| measurement | " + " | ".join(CONFIGURATIONS) + " | default / keras-indi |",
             "|---|" + "---:|" * (len(CONFIGURATIONS) + 1)]
    for key in keys:
        values = [medians[name][key] for name in CONFIGURATIONS]
        lines.append(f"| {labels[key]} | " + " | ".join(f"{value:.3f}" for value in values)
                     + f" | {medians['default'][key] / medians['keras-indi'][key]:.2f}x |")
    write_report(args.output, "xla_cpu_flags" + ("_quick" if args.quick else ""), report, lines)
    return report


if __name__ == "__main__":
    main()
