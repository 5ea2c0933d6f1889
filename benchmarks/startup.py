"""Start-up, latency and memory of the command line, each in a fresh process (issue 14).

    python benchmarks/startup.py                 # the table of BENCHMARKS.md (a few minutes)
    python benchmarks/startup.py --quick         # smoke test: every row at tiny sizes

Rows (median of --repeats fresh processes; the command of each row is printed in the table):

* ``keras-indi --help``;
* ``python -c "import keras_indi"`` (JAX backend), and ``from keras_indi import InDIModel``
  (the same plus Keras and JAX);
* ``keras-indi restore`` of one 256x256 noisy photograph with 10 steps and the ``denoising``
  preset: *cold* (an empty compilation cache: ``KERAS_INDI_COMPILATION_CACHE`` points to a new
  folder for each run), *warm* (the folder the cold run filled, with the restoration program it
  saved: `keras_indi.backend.restore_programs`), warm with those programs off
  (``KERAS_INDI_RESTORE_PROGRAMS=0``: Keras imported, the model loaded) and with the cache off;
* ``keras-indi restore`` of a 2048x2048 image: its peak resident memory (``wait4`` rusage of
  the process), wall time and whether it was tiled automatically (``--big-steps`` steps).

Wall time is measured around the process (interpreter start-up included). The operating
system's file cache is warm for every run (the same files were read before), Python's bytecode
caches exist: "cold" means only that nothing was compiled by XLA yet. The load average before
and after is recorded: timings on a loaded machine are not comparable.

Writes ``startup.json`` and ``startup.md`` (``startup_quick.*`` with --quick) to --output
(default ``benchmarks/results/startup``).
"""

import argparse
import importlib.metadata
import json
import os
import platform
import shlex
import shutil
import statistics
import subprocess
import sys
import tempfile
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from machine import cpu_model, load_average  # noqa: E402

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.dirname(HERE)
PRESET = os.path.join(ROOT, "keras_indi", "presets", "weights", "denoising.keras")
NOISE_SIGMA = 0.5  # the denoising preset's noise, in [-1, 1] units


def parse_args(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0], formatter_class=argparse.ArgumentDefaultsHelpFormatter)
    parser.add_argument("--quick", action="store_true", help="smoke test: 1 repeat, small images")
    parser.add_argument("--output", default=os.path.join(HERE, "results", "startup"))
    parser.add_argument("--backend", default="jax", help="KERAS_BACKEND of the restore and import rows")
    parser.add_argument("--repeats", type=int, default=None, help="fresh processes per row (default 5; cold restore 3)")
    parser.add_argument("--size", type=int, default=None, help="restore image size (default 256)")
    parser.add_argument("--steps", type=int, default=10, help="restore steps")
    parser.add_argument("--big-size", type=int, default=None, help="large image size (default 2048)")
    parser.add_argument("--big-steps", type=int, default=None, help="steps on the large image (default 10)")
    parser.add_argument("--big-memory-limit", default=None,
                        help="KERAS_INDI_MEMORY_LIMIT of the large restore (default: none, the automatic budget; quick: 64M)")
    parser.add_argument("--skip-big", action="store_true", help="no large-image row")
    return parser.parse_args(argv)


def keras_indi_command():
    """The installed console script, else ``python -m keras_indi``."""
    script = shutil.which("keras-indi") or os.path.join(os.path.dirname(sys.executable), "keras-indi")
    return [script] if os.path.exists(script) else [sys.executable, "-m", "keras_indi"]




def versions():
    found = {"python": platform.python_version()}
    for name in ("keras-indi", "keras", "jax", "jaxlib", "tensorflow", "torch", "numpy"):
        try:
            found[name] = importlib.metadata.version(name)
        except importlib.metadata.PackageNotFoundError:
            found[name] = None
    return found




def run(command, env=None, cwd=None):
    """Run `command`; (wall seconds, peak RSS bytes, stdout+stderr, return code)."""
    # keras-indi's defaults unless a row sets otherwise (the test suite switches the saved
    # restoration programs off in its own environment).
    inherited = {k: v for k, v in os.environ.items() if k != "KERAS_INDI_RESTORE_PROGRAMS"}
    environment = dict(inherited, TF_CPP_MIN_LOG_LEVEL="3", **(env or {}))
    start = time.perf_counter()
    process = subprocess.Popen(command, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, env=environment, cwd=cwd)
    output = process.stdout.read()
    _, status, usage = os.wait4(process.pid, 0)
    wall = time.perf_counter() - start
    process.returncode = os.waitstatus_to_exitcode(status)
    return wall, usage.ru_maxrss * 1024, output.decode(errors="replace"), process.returncode


def write_images(folder, size, big_size):
    """A noisy crop of a photograph (`size`) and a noisy large image (`big_size`), as PNGs."""
    import numpy as np
    from PIL import Image
    from skimage import data

    rng = np.random.default_rng(0)
    photo = data.astronaut()

    def noisy(image):
        clean = image.astype("float32") / 127.5 - 1.0
        degraded = np.clip(clean + NOISE_SIGMA * rng.standard_normal(clean.shape).astype("float32"), -1, 1)
        return np.round((degraded + 1.0) * 127.5).astype("uint8")

    small = os.path.join(folder, f"noisy{size}.png")
    top = (photo.shape[0] - size) // 2
    Image.fromarray(noisy(photo[top : top + size, top : top + size])).save(small)
    big = os.path.join(folder, f"noisy{big_size}.png")
    resized = np.asarray(Image.fromarray(photo).resize((big_size, big_size), Image.BICUBIC))
    Image.fromarray(noisy(resized)).save(big)
    return small, big


def measure(name, command, repeats, env=None, prepare=None, cwd=None):
    """Median wall time of `repeats` fresh processes (`prepare()` before each returns extra env)."""
    times, peaks, outputs = [], [], []
    for _ in range(repeats):
        extra = dict(env or {})
        if prepare is not None:
            extra.update(prepare())
        wall, peak, output, code = run(command, extra, cwd)
        if code != 0:
            return {"name": name, "status": "error", "returncode": code, "output_tail": output[-3000:]}
        times.append(wall)
        peaks.append(peak)
        outputs.append(output)
    return {
        "name": name,
        "status": "ok",
        "seconds": round(statistics.median(times), 3),
        "times_s": [round(t, 3) for t in times],
        "peak_rss_bytes": max(peaks),
        "output_tail": outputs[-1][-600:],
    }


def shown(command, env):
    """The command as a user would type it (environment first, paths relative to the repository)."""
    words = [f"{key}={value}" for key, value in env.items()]
    for word in command:
        if word == sys.executable:
            word = "python"
        word = os.path.relpath(word, ROOT) if os.path.isabs(word) and word.startswith(ROOT) else word
        words.append("keras-indi" if word.endswith(os.sep + "keras-indi") else word)
    return " ".join(shlex.quote(w) if not ("=" in w and w.split("=")[0].isupper()) else w for w in words)


def markdown(result):
    meta = result["meta"]
    lines = [
        f"Start-up and latency, {meta['device']}, {meta['cores']} cores; Keras backend {meta['backend']}; "
        f"load average before {meta['load_before']}, after {meta['load_after']} "
        f"({'quick smoke run: sizes are not the table' if meta['quick'] else 'median of fresh processes'}).",
        "",
        "| what | command | wall time (s) | target | peak RSS (GiB) |",
        "|---|---|---:|---|---:|",
    ]
    for row in result["rows"]:
        if row["status"] != "ok":
            lines.append(f"| {row['label']} | `{row['command']}` | error | {row.get('target', '')} | |")
            continue
        lines.append(
            f"| {row['label']} | `{row['command']}` | {row['seconds']:.2f} | {row.get('target', '')} | "
            f"{row['peak_rss_bytes'] / 2**30:.2f} |"
        )
    big = result.get("big")
    if big and big.get("status") == "ok":
        lines += ["", f"Large image: {big['detail']}."]
    lines += ["", "Cold: an empty compilation cache folder per run (KERAS_INDI_COMPILATION_CACHE); warm: the "
              "folder a cold run filled. The file cache of the operating system is warm in both."]
    return "\n".join(lines) + "\n"


def main(argv=None):
    args = parse_args(argv)
    quick = args.quick
    repeats = args.repeats or (1 if quick else 5)
    size = args.size or (64 if quick else 256)
    steps = 2 if quick and args.steps == 10 else args.steps
    big_size = args.big_size or (160 if quick else 2048)
    big_steps = args.big_steps or (1 if quick else 10)
    big_limit = args.big_memory_limit or ("16M" if quick else None)
    os.makedirs(args.output, exist_ok=True)
    scratch = tempfile.mkdtemp(prefix="keras-indi-startup-")
    cli = keras_indi_command()
    backend_env = {"KERAS_BACKEND": args.backend}
    meta = {
        "quick": quick,
        "backend": args.backend,
        "cores": os.cpu_count(),
        "load_before": load_average(),
        "date": time.strftime("%Y-%m-%d %H:%M:%S"),
    }
    meta["device"], meta["versions"] = cpu_model(), versions()
    small, big = write_images(scratch, size, big_size)
    # The commands run in `scratch`: images and outputs by their short names.
    small, big, out = os.path.basename(small), os.path.basename(big), "out"
    restore = cli + ["restore", PRESET, small, "--output-dir", out, "--steps", str(steps), "--overwrite"]
    rows = []

    def add(label, command, env, target, count, prepare=None, shown_env=None):
        print(f"measuring: {label} ...", flush=True)
        row = measure(label, command, count, env, prepare, cwd=scratch)
        row.update(label=label, command=shown(command, shown_env if shown_env is not None else env), target=target)
        rows.append(row)
        print(f"  {row.get('seconds', row['status'])}", flush=True)
        return row

    add("`keras-indi --help`", cli + ["--help"], {}, "< 1 s", repeats)
    add("`import keras_indi`", [sys.executable, "-c", "import keras_indi"], backend_env, "< 2 s", repeats)
    add("`from keras_indi import InDIModel` (imports Keras and JAX)",
        [sys.executable, "-c", "from keras_indi import InDIModel"], backend_env, "", repeats)

    cold_folders = []

    def fresh_cache():
        folder = tempfile.mkdtemp(prefix="cache-", dir=scratch)
        cold_folders.append(folder)
        return {"KERAS_INDI_COMPILATION_CACHE": folder}

    label = f"`keras-indi restore`, {size}x{size}, {steps} steps"
    add(f"{label}, cold cache", restore, backend_env, "< 12 s", max(1, min(repeats, 3)), prepare=fresh_cache,
        shown_env=dict(backend_env, KERAS_INDI_COMPILATION_CACHE="$(mktemp -d)"))
    warm_env = dict(backend_env, KERAS_INDI_COMPILATION_CACHE=cold_folders[-1] if cold_folders else os.path.join(scratch, "warm"))
    add(f"{label}, warm cache", restore, warm_env, "< 6 s", repeats, shown_env=backend_env)
    # The same without the saved restoration programs (Keras imported, the .keras file loaded).
    add(f"{label}, warm cache, saved programs off", restore, dict(warm_env, KERAS_INDI_RESTORE_PROGRAMS="0"), "",
        repeats, shown_env=dict(backend_env, KERAS_INDI_RESTORE_PROGRAMS="0"))
    add(f"{label}, cache off", restore, dict(backend_env, KERAS_INDI_COMPILATION_CACHE="0"), "", 1)

    result = {"meta": meta, "rows": rows}
    if not args.skip_big:
        env = dict(backend_env)
        if big_limit:
            env["KERAS_INDI_MEMORY_LIMIT"] = big_limit
        command = cli + ["restore", PRESET, big, "--output-dir", out, "--steps", str(big_steps), "--overwrite"]
        row = add(f"`keras-indi restore`, {big_size}x{big_size}, {big_steps} steps (peak memory)", command,
                  dict(env, KERAS_INDI_COMPILATION_CACHE=warm_env["KERAS_INDI_COMPILATION_CACHE"]), "runs in 24 GiB", 1,
                  shown_env=env)
        if row["status"] == "ok":
            tiled = ", tiled" in row["output_tail"]
            row["tiled"] = tiled
            result["big"] = {
                "status": "ok",
                "tiled": tiled,
                "peak_rss_bytes": row["peak_rss_bytes"],
                "detail": f"{big_size}x{big_size}, {big_steps} steps: peak resident memory "
                          f"{row['peak_rss_bytes'] / 2**30:.2f} GiB, {row['seconds']:.0f} s, "
                          f"{'tiled automatically' if tiled else 'whole image (it fits)'}",
            }
    meta["load_after"] = load_average()
    name = "startup_quick" if quick else "startup"
    with open(os.path.join(args.output, name + ".json"), "w") as handle:
        json.dump(result, handle, indent=1)
    table = markdown(result)
    with open(os.path.join(args.output, name + ".md"), "w") as handle:
        handle.write(table)
    print(table)
    shutil.rmtree(scratch, ignore_errors=True)
    return 0 if all(row["status"] == "ok" for row in rows) else 1


if __name__ == "__main__":
    sys.exit(main())
