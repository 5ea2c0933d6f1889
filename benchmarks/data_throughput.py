"""Data pipeline throughput of `keras_indi.datasets.build_task_datasets`, in crops per second.

Two measurements:

* default: the training pipeline on the offline built-in source (scikit-image photographs
  mixed with procedural dead leaves, probability 1/2 each) for the ``tf.data`` output
  (parallel map over batches, prefetch) and the ``keras.utils.PyDataset`` output
  (``dataset[i]`` in a loop, what ``fit`` does with ``workers=1``), at 64x64 and 128x128. The
  synthetic degradation is the task's default (``--task``, default "denoising") or none
  (``--task none``: the degradation step is skipped by using an identity degradation).
* ``--compare``: the PyDataset output with the degradation in the pipeline
  (``degrade_on="pipeline"``, NumPy on the host) against clean crops only
  (``degrade_on="model"``: the model degrades them on the device, which this script does not
  time), for several tasks and two sources: photographs only (``"builtin"`` with
  ``photo_probability=1``) and the default ``"builtin"`` mix (half procedural dead leaves,
  which cost more to generate than a photo crop). Each is read in one process (``dataset[i]``
  in a loop) and with ``workers=2, use_multiprocessing=True`` through Keras' own
  ``PyDatasetAdapter`` (the iterator ``fit`` uses; a new pool of worker processes each epoch).
  Tasks whose degradation has no layer form (JPEG, motion blur) get the pipeline rows only.

Each measurement runs one warm-up epoch, then times ``--epochs`` epochs of ``--steps``
batches and reports the median epoch. Prints Markdown tables (wall-clock rate, and crops per
CPU-second of this process, which is less sensitive to other load on the machine; worker
processes are not counted, so that column is left empty for them). With workers, the rate is
the steady rate from the first batch to the last, and the time to the first batch (a new
process pool each epoch, plus one batch) is reported separately. Examples::

    python benchmarks/data_throughput.py
    python benchmarks/data_throughput.py --task motion_deblurring --sizes 64 128 256 --batch-size 32
    python benchmarks/data_throughput.py --compare --sizes 128 --batch-size 32 --steps 4 --epochs 2
"""

import argparse
import os
import platform
import statistics
import time

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")
# The pipelines need no Keras backend: the NumPy backend keeps TensorFlow and JAX (and their
# thread pools) out of this process, which the forked workers of `use_multiprocessing` prefer.
os.environ.setdefault("KERAS_BACKEND", "numpy")

from keras_indi.datasets import build_task_datasets, tensorflow_available  # noqa: E402
from keras_indi.degradations.base import Degradation  # noqa: E402

COMPARE_TASKS = ("denoising", "super_resolution", "defocus_deblurring", "motion_deblurring", "jpeg")


class _Identity(Degradation):
    def apply(self, clean, parameters):
        return clean


def _clean_of(batch):
    return batch[1] if isinstance(batch, tuple) else batch


def _time_epochs(dataset, output, epochs):
    """Median crops per wall-clock second and per process CPU second over `epochs` epochs."""
    wall, cpu = [], []
    for epoch in range(epochs + 1):  # first epoch: warm-up
        start, start_cpu = time.perf_counter(), time.process_time()
        count = 0
        if output == "numpy":
            for index in range(len(dataset)):
                count += len(_clean_of(dataset[index]))
            dataset.on_epoch_end()
        else:
            for batch in dataset.as_numpy_iterator():
                count += len(_clean_of(batch))
        if epoch:
            wall.append(count / (time.perf_counter() - start))
            cpu.append(count / max(time.process_time() - start_cpu, 1e-9))
    return statistics.median(wall), statistics.median(cpu)


def _time_epochs_like_fit(dataset, epochs):
    """Through Keras' PyDatasetAdapter (as in ``fit``): median over `epochs` epochs of the
    steady rate (crops per wall-clock second from the first batch to the last) and of the
    start latency (seconds to the first batch: starting the worker pool, one batch)."""
    # Private Keras module (keras>=3.0): the adapter fit wraps a PyDataset in, with its
    # OrderedEnqueuer (thread or process pool, a new one each epoch) when workers > 1 or
    # use_multiprocessing.
    from keras.src.trainers.data_adapters.py_dataset_adapter import PyDatasetAdapter

    adapter = PyDatasetAdapter(dataset, shuffle=False)
    rates, starts = [], []
    for epoch in range(epochs + 1):  # first epoch: warm-up
        start = time.perf_counter()
        adapter.on_epoch_begin()
        count, first = 0, None
        for batch in adapter.get_numpy_iterator():
            if first is None:
                first = time.perf_counter()
            else:
                count += len(batch[0])
        last = time.perf_counter()
        adapter.on_epoch_end()
        if epoch:
            rates.append(count / (last - first))
            starts.append(first - start)
    return statistics.median(rates), statistics.median(starts)


def _default(args):
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
    print(
        f"Data throughput: source={args.source!r}, task={args.task!r}, batch {args.batch_size}, "
        f"{args.steps} batches/epoch, median of {args.epochs} epochs; {_machine()}"
    )
    print()
    print("| output | image size | crops/s (wall) | crops per CPU-second |")
    print("| --- | --- | ---: | ---: |")
    names = {"tf": "tf.data.Dataset", "numpy": "PyDataset (NumPy)"}
    for output, size, rate, cpu_rate in rows:
        print(f"| {names[output]} | {size}x{size} | {rate:,.0f} | {cpu_rate:,.0f} |")
    return rows


def _compare(args):
    sources = {"photos": 1.0, "builtin": 0.5}
    readers = {
        "1 process": (None, False),
        f"workers={args.workers}, threads": (args.workers, False),
        f"workers={args.workers}, processes": (args.workers, True),
    }
    readers = {name: readers[name] for name in readers if name.split(",")[-1].strip() in args.readers}
    rows = []
    for size in args.sizes:
        for source, photo_probability in sources.items():
            for task in args.tasks:
                for degrade_on in ("pipeline", "model"):
                    for reader, (workers, processes) in readers.items():
                        try:
                            train, _ = build_task_datasets(
                                task,
                                source="builtin",
                                photo_probability=photo_probability,
                                image_size=size,
                                batch_size=args.batch_size,
                                steps_per_epoch=args.steps,
                                output="numpy",
                                validation_fraction=0,
                                seed=0,
                                degrade_on=degrade_on,
                                workers=workers or 1,
                                use_multiprocessing=processes,
                            )
                        except ValueError:  # no layer form: pipeline only
                            continue
                        if workers:
                            rate, start = _time_epochs_like_fit(train, args.epochs)
                            cpu_rate = None
                        else:
                            (rate, cpu_rate), start = _time_epochs(train, "numpy", args.epochs), None
                        rows.append((size, source, task, degrade_on, reader, rate, cpu_rate, start))
                        print(f"  {rows[-1][:5]}: {rate:,.0f} crops/s", flush=True)
    print()
    print(
        f"PyDataset throughput, degrade_on='pipeline' vs 'model': batch {args.batch_size}, "
        f"{args.steps} batches/epoch, median of {args.epochs} epochs after one warm-up; {_machine()}"
    )
    print()
    print(
        "| crop | source | task | degrade_on | reader | crops/s (wall) | crops per CPU-second "
        "| epoch start (s) |"
    )
    print("| --- | --- | --- | --- | --- | ---: | ---: | ---: |")
    for size, source, task, degrade_on, reader, rate, cpu_rate, start in rows:
        cpu_text = "—" if cpu_rate is None else f"{cpu_rate:,.0f}"
        start_text = "—" if start is None else f"{start:.2f}"
        print(
            f"| {size}x{size} | {source} | {task} | {degrade_on} | {reader} | {rate:,.0f} | {cpu_text} "
            f"| {start_text} |"
        )
    return rows


def _machine():
    cpu = platform.processor() or platform.machine()
    return f"{cpu}, {os.cpu_count()} CPUs"


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
    parser.add_argument(
        "--compare",
        action="store_true",
        help="PyDataset: degrade_on='pipeline' vs 'model', in 1 process vs with workers",
    )
    parser.add_argument("--tasks", nargs="+", default=list(COMPARE_TASKS), help="tasks of --compare")
    parser.add_argument("--workers", type=int, default=2, help="PyDataset workers of --compare")
    parser.add_argument(
        "--readers",
        nargs="+",
        default=["1 process", "processes"],
        choices=["1 process", "threads", "processes"],
        help="--compare: read in this process, and/or with `--workers` threads or processes",
    )
    args = parser.parse_args()
    load_before = os.getloadavg()[0]
    rows = _compare(args) if args.compare else _default(args)
    print()
    print(
        f"Load average (1 min) before / after the run: {load_before:.1f} / {os.getloadavg()[0]:.1f} "
        "(wall-clock rates drop on a busy machine)."
    )
    return rows


if __name__ == "__main__":
    main()
