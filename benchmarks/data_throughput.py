"""Data pipeline throughput of `keras_indi.datasets.build_task_datasets`, in crops per second.

Measures the training pipeline on the offline built-in source (scikit-image photographs mixed
with procedural dead leaves, probability 1/2 each) for the ``tf.data`` output (parallel map
over batches, prefetch) and the ``keras.utils.PyDataset`` output (``dataset[i]`` in a loop,
what ``fit`` does with ``workers=1``), at 64x64 and 128x128. Each measurement runs one warm-up
epoch, then times ``--epochs`` epochs of ``--steps`` batches and reports the median epoch.
The synthetic degradation is the task's default (``--task``, default "denoising") or none
(``--task none``: the degradation step is skipped by using an identity degradation).

Prints a Markdown table (wall-clock rate, and crops per CPU-second of this process, which is
less sensitive to other load on the machine). Example::

    python benchmarks/data_throughput.py
    python benchmarks/data_throughput.py --task motion_deblurring --sizes 64 128 256 --batch-size 32
"""

import argparse
import os
import platform
import statistics
import time

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")

from keras_indi.datasets import build_task_datasets, tensorflow_available  # noqa: E402
from keras_indi.degradations.base import Degradation  # noqa: E402


class _Identity(Degradation):
    def apply(self, clean, parameters):
        return clean


def _time_epochs(dataset, output, epochs):
    """Median crops per wall-clock second and per process CPU second over `epochs` epochs."""
    wall, cpu = [], []
    for epoch in range(epochs + 1):  # first epoch: warm-up
        start, start_cpu = time.perf_counter(), time.process_time()
        count = 0
        if output == "numpy":
            for index in range(len(dataset)):
                _, clean = dataset[index]
                count += len(clean)
            dataset.on_epoch_end()
        else:
            for _, clean in dataset.as_numpy_iterator():
                count += len(clean)
        if epoch:
            wall.append(count / (time.perf_counter() - start))
            cpu.append(count / max(time.process_time() - start_cpu, 1e-9))
    return statistics.median(wall), statistics.median(cpu)


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument(
        "--task", default="denoising", help="task whose default degradation is used, or 'none'"
    )
    parser.add_argument("--source", default="builtin")
    parser.add_argument("--sizes", type=int, nargs="+", default=[64, 128])
    parser.add_argument("--batch-size", type=int, default=16)
    parser.add_argument("--steps", type=int, default=20, help="batches per epoch")
    parser.add_argument("--epochs", type=int, default=3, help="timed epochs (after one warm-up)")
    args = parser.parse_args()

    outputs = ["tf", "numpy"] if tensorflow_available() else ["numpy"]
    task = None if args.task == "none" else args.task
    degradation = _Identity() if task is None else None
    rows = []
    for size in args.sizes:
        for output in outputs:
            train, _ = build_task_datasets(
                task,
                source=args.source,
                image_size=size,
                batch_size=args.batch_size,
                steps_per_epoch=args.steps,
                output=output,
                degradation=degradation,
                validation_fraction=0,
                seed=0,
            )
            rows.append((output, size) + _time_epochs(train, output, args.epochs))
    cpu = platform.processor() or platform.machine()
    print(
        f"Data throughput: source={args.source!r}, task={args.task!r}, batch {args.batch_size}, "
        f"{args.steps} batches/epoch, median of {args.epochs} epochs; {cpu}, {os.cpu_count()} CPUs"
    )
    print()
    print("| output | image size | crops/s (wall) | crops per CPU-second |")
    print("| --- | --- | ---: | ---: |")
    names = {"tf": "tf.data.Dataset", "numpy": "PyDataset (NumPy)"}
    for output, size, rate, cpu_rate in rows:
        print(f"| {names[output]} | {size}x{size} | {rate:,.0f} | {cpu_rate:,.0f} |")
    print()
    print(f"Load average during the run: {os.getloadavg()[0]:.1f} (wall-clock rates drop on a busy machine).")
    return rows


if __name__ == "__main__":
    main()
