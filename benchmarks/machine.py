"""What machine a benchmark ran on, shared by the benchmark scripts (run them from the
repository root, e.g. ``python benchmarks/startup.py``: this folder is then on ``sys.path``)."""

import os
import platform


def cpu_model():
    """The CPU's model name (from /proc/cpuinfo on Linux)."""
    try:
        with open("/proc/cpuinfo") as handle:
            for line in handle:
                if line.lower().startswith("model name"):
                    return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or platform.machine() or "unknown"


def load_average():
    """The 1, 5 and 15 minute load averages (None where the OS has none)."""
    try:
        return [round(value, 2) for value in os.getloadavg()]
    except OSError:
        return None


def write_report(output_dir, stem, report, lines):
    """Write `report` to ``<stem>.json`` and the table `lines` to ``<stem>.md`` in `output_dir`
    (created), and print the table."""
    import json

    os.makedirs(output_dir, exist_ok=True)
    with open(os.path.join(output_dir, f"{stem}.json"), "w") as file:
        json.dump(report, file, indent=2)
    with open(os.path.join(output_dir, f"{stem}.md"), "w") as file:
        file.write("\n".join(lines) + "\n")
    print("\n".join(lines))


def run_python_worker(code, environment=None, timeout=1800):
    """Run `code` in a fresh Python process and return the JSON it prints after ``RESULT ``."""
    import json
    import subprocess
    import sys

    completed = subprocess.run([sys.executable, "-c", code], env=environment, capture_output=True, text=True,
                               timeout=timeout)
    for line in completed.stdout.splitlines():
        if line.startswith("RESULT "):
            return json.loads(line[len("RESULT "):])
    raise RuntimeError(f"worker failed (exit {completed.returncode}):\n{completed.stderr[-3000:]}")


def alternate(modes, rounds, run_mode):
    """``{mode: [result of each round]}``: ``run_mode(mode)`` (a fresh worker process, say) for
    every mode once per round, in the same order, so that the machine's drift hits all alike;
    prints each result as it comes."""
    import time

    results = {mode: [] for mode in modes}
    for round_index in range(rounds):
        for mode in modes:
            start = time.perf_counter()
            results[mode].append(run_mode(mode))
            print(f"round {round_index + 1}/{rounds} {mode}: {results[mode][-1]} "
                  f"({time.perf_counter() - start:.0f} s)", flush=True)
    return results
