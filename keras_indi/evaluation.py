"""The distortion-perception trade-off of InDI: metrics against the number of steps.

InDI with one step is plain regression (best PSNR, blurry); more steps give sharper, more
realistic images at a lower PSNR (Delbracio & Milanfar 2023, claim 2). `evaluate_tradeoff`
restores a validation set at several step counts, scores each restoration with distortion
metrics (PSNR, SSIM) and weight-free perceptual proxies (sliced Wasserstein distance, power
spectrum distance), and returns a `TradeoffResult` with a table, a trade-off plot and an image
grid.

>>> class Blend:  # a stand-in for `keras_indi.InDIModel`: anything with `restore`
...     def restore(self, degraded, num_steps, seed=None, progress_bar=False):
...         return (degraded / (1 + num_steps)).astype("float32")
>>> clean = np.zeros((4, 32, 32, 3), "float32")
>>> degraded = np.random.default_rng(0).uniform(-1, 1, clean.shape).astype("float32")
>>> result = evaluate_tradeoff(Blend(), degraded, clean, step_counts=(1, 4), progress_bar=False)
>>> [(row["method"], row["num_steps"]) for row in result.rows]
[('InDI', 1), ('InDI', 4)]
"""

import csv
import io
import json
import math
import numbers
import os
import time
import warnings

import keras
import numpy as np

from keras_indi.api_export import keras_indi_export
from keras_indi.metrics.image_quality import psnr as _psnr
from keras_indi.metrics.image_quality import ssim as _ssim
from keras_indi.metrics.perceptual import power_spectrum_distance, sliced_wasserstein_distance
from keras_indi.plotting import new_figure
from keras_indi.utils.validation import check_positive_int

BUILTIN_METRICS = ("psnr", "ssim", "swd", "power_spectrum")
# True when larger values are better; used for axis labels.
_HIGHER_IS_BETTER = {
    "psnr": True,
    "ssim": True,
    "swd": False,
    "power_spectrum": False,
    "lpips": False,
    "fid": False,
    "kid": False,
}
_AXIS_LABELS = {
    "psnr": "PSNR (dB)",
    "ssim": "SSIM",
    "swd": "sliced Wasserstein distance",
    "power_spectrum": "power spectrum distance",
    "num_steps": "number of steps",
}


# -- inputs ----------------------------------------------------------------------------------
def _to_numpy(value):
    if keras.ops.is_tensor(value):
        return keras.ops.convert_to_numpy(value)
    if hasattr(value, "numpy") and not isinstance(value, np.ndarray):
        try:
            return np.asarray(value.numpy())
        except Exception:  # a torch tensor that requires grad, for example
            pass
    if hasattr(value, "detach"):
        return value.detach().cpu().numpy()
    return np.asarray(value)


def _check_images(array, name):
    if array.dtype == object or not np.issubdtype(array.dtype, np.floating):
        raise ValueError(
            f"`{name}` must hold floating-point images. Received dtype {array.dtype}. Convert "
            "[0, 255] integers with `x.astype('float32') / 127.5 - 1`."
        )
    if array.ndim != 4:
        raise ValueError(
            f"`{name}` must have shape (num_images, height, width, channels). Received shape "
            f"{array.shape}. Add a batch axis with `x[None]` or a channel axis with `x[..., None]`."
        )
    if array.shape[0] == 0:
        raise ValueError(f"`{name}` is empty (shape {array.shape}).")
    finite = np.isfinite(array)
    if not finite.all():
        raise ValueError(f"`{name}` contains {int(array.size - finite.sum())} NaN or Inf values.")
    return array.astype("float32", copy=False)


def _batches(dataset):
    """Yield the batches of a PyDataset, tf.data dataset, DataLoader or any finite iterable."""
    if isinstance(dataset, keras.utils.PyDataset):
        count = dataset.num_batches
        if count is None:
            raise ValueError(
                "`degraded` is an infinite PyDataset (num_batches is None). Pass a finite one."
            )
        for index in range(count):
            yield dataset[index]
        return
    yield from dataset


def _collect_pairs(degraded, clean):
    if clean is not None:
        return _check_images(_to_numpy(degraded), "degraded"), _check_images(
            _to_numpy(clean), "clean"
        )
    if isinstance(degraded, np.ndarray) or keras.ops.is_tensor(degraded):
        raise ValueError(
            "`clean` is None but `degraded` is an array. Pass `clean` images, or pass a dataset "
            "(PyDataset / iterable) of (degraded, clean) batches as `degraded`."
        )
    try:
        iterator = iter(_batches(degraded))
    except TypeError as error:
        raise ValueError(
            "`degraded` must be an array (with `clean`) or a PyDataset / iterable of "
            f"(degraded, clean) batches. Received {type(degraded).__name__}."
        ) from error
    degraded_parts, clean_parts = [], []
    for index, batch in enumerate(iterator):
        if not isinstance(batch, (tuple, list)) or len(batch) < 2:
            raise ValueError(
                f"Batch {index} of the dataset is not a (degraded, clean) pair: each batch must be a "
                f"tuple (degraded, clean[, sample_weight]). Received {type(batch).__name__}."
            )
        degraded_parts.append(_to_numpy(batch[0]))
        clean_parts.append(_to_numpy(batch[1]))
    if not degraded_parts:
        raise ValueError("The dataset passed as `degraded` yielded no batches.")
    degraded = _check_images(np.concatenate(degraded_parts, axis=0), "degraded")
    clean = _check_images(np.concatenate(clean_parts, axis=0), "clean")
    return degraded, clean


def _check_step_counts(step_counts):
    if isinstance(step_counts, numbers.Integral) and not isinstance(step_counts, bool):
        step_counts = (step_counts,)
    try:
        step_counts = list(step_counts)
    except TypeError as error:
        raise ValueError(
            f"`step_counts` must be a sequence of integers >= 1. Received {step_counts!r}."
        ) from error
    if not step_counts:
        raise ValueError("`step_counts` is empty: pass at least one step count, e.g. (1, 10).")
    for value in step_counts:
        if isinstance(value, bool) or not isinstance(value, numbers.Integral) or value < 1:
            raise ValueError(f"`step_counts` must hold integers >= 1. Received {step_counts!r}.")
    if len(set(step_counts)) != len(step_counts):
        raise ValueError(f"`step_counts` has duplicates: {step_counts!r}.")
    return [int(v) for v in step_counts]


def _resolve_metrics(metrics, data_range, crop_border, y_channel, chunk, seed):
    """Return an ordered dict name -> fn(clean, restored) -> float."""
    if isinstance(metrics, str):
        metrics = (metrics,)
    items = list(metrics.items()) if isinstance(metrics, dict) else list(metrics)
    if not items:
        raise ValueError(
            f"`metrics` is empty: use some of {list(BUILTIN_METRICS)} or name -> callable pairs."
        )
    seed = 0 if seed is None else seed
    options = {"data_range": data_range, "crop_border": crop_border, "y_channel": y_channel}
    builtin = {
        "psnr": _per_image(_psnr, chunk, options),
        "ssim": _per_image(_ssim, chunk, options),
        "swd": lambda clean, restored: sliced_wasserstein_distance(clean, restored, seed=seed),
        "power_spectrum": lambda clean, restored: power_spectrum_distance(clean, restored),
    }
    resolved = {}
    for item in items:
        if isinstance(item, str):
            if item not in builtin:
                raise ValueError(
                    f"Unknown metric {item!r}. Built-in metrics: {list(BUILTIN_METRICS)}; pass others "
                    "as a dict {name: fn(clean, restored)}, e.g. {'lpips': LPIPS(weights_path=...)}."
                )
            name, fn = item, builtin[item]
        elif isinstance(item, (tuple, list)) and len(item) == 2 and isinstance(item[0], str):
            name, fn = item
            if isinstance(fn, str):
                raise ValueError(f"Metric {name!r}: pass a callable, not the string {fn!r}.")
            if not callable(fn):
                raise ValueError(
                    f"Metric {name!r} must be callable as fn(clean, restored). Received {fn!r}."
                )
            if isinstance(fn, keras.layers.Layer):
                fn = _per_image(fn, chunk)
        else:
            raise ValueError(
                f"Each metric must be a built-in name ({list(BUILTIN_METRICS)}) or a (name, callable) "
                f"pair. Received {item!r}."
            )
        if name in ("method", "num_steps"):
            raise ValueError(f"A metric cannot be called {name!r}: that name is a table column.")
        if name in resolved:
            raise ValueError(f"Metric {name!r} is listed twice.")
        resolved[name] = fn
    return resolved


def _per_image(fn, chunk, options=None):
    """A per-image metric (PSNR, SSIM, Keras layers/models such as `LPIPS`), called on chunks
    of `chunk` images with the keyword `options`; the mean of its values."""

    def compute(clean, restored):
        values = [
            np.reshape(_to_numpy(fn(clean[i : i + chunk], restored[i : i + chunk], **(options or {}))), (-1,))
            for i in range(0, clean.shape[0], chunk)
        ]
        return float(np.mean(np.concatenate(values)))

    return compute


def _scalar(value, name):
    value = _to_numpy(value)
    if value.size == 0:
        raise ValueError(f"Metric {name!r} returned an empty value.")
    return float(np.mean(value))


# -- restoration -----------------------------------------------------------------------------
def _check_output(restored, expected_shape, label):
    restored = _to_numpy(restored)
    if hasattr(restored, "dtype") and restored.dtype != np.float32:
        restored = restored.astype("float32")
    if restored.shape != expected_shape:
        raise ValueError(
            f"{label} returned shape {restored.shape} for inputs of shape {expected_shape}: a "
            "restoration must have the shape of the degraded images."
        )
    return restored


def _restore_with(model, degraded, num_steps, seed, batch_size, label):
    size = degraded.shape[0] if batch_size is None else batch_size
    outputs = []
    for index, start in enumerate(range(0, degraded.shape[0], size)):
        chunk = degraded[start : start + size]
        chunk_seed = None if seed is None else seed + index
        restored = model.restore(chunk, num_steps=num_steps, seed=chunk_seed, progress_bar=False)
        outputs.append(
            _check_output(restored, chunk.shape, f"{label}.restore(num_steps={num_steps})")
        )
    return np.concatenate(outputs, axis=0)


def _run_baseline(label, baseline, degraded, seed, batch_size):
    """Return (num_steps or None, restored images) for one entry of `baselines`."""
    if isinstance(baseline, np.ndarray) or keras.ops.is_tensor(baseline):
        return None, _check_output(baseline, degraded.shape, f"baseline {label!r}")
    if isinstance(baseline, tuple) and len(baseline) == 2 and hasattr(baseline[0], "restore"):
        model, steps = baseline
        steps = _check_step_counts((steps,))[0]
        return steps, _restore_with(model, degraded, steps, seed, batch_size, f"baseline {label!r}")
    if isinstance(baseline, tuple) and len(baseline) == 2 and callable(baseline[0]):
        function, steps = baseline
        steps = _check_step_counts((steps,))[0]  # what the table shows: the function takes them
        return steps, _run_baseline(label, function, degraded, seed, batch_size)[1]
    if hasattr(baseline, "restore"):
        return 1, _restore_with(baseline, degraded, 1, seed, batch_size, f"baseline {label!r}")
    if isinstance(baseline, keras.Model):
        restored = baseline.predict(degraded, batch_size=batch_size or 32, verbose=0)
        return 1, _check_output(restored, degraded.shape, f"baseline {label!r}")
    if callable(baseline):
        size = degraded.shape[0] if batch_size is None else batch_size
        outputs = [
            _check_output(
                baseline(degraded[start : start + size]),
                degraded[start : start + size].shape,
                f"baseline {label!r}",
            )
            for start in range(0, degraded.shape[0], size)
        ]
        return None, np.concatenate(outputs, axis=0)
    raise ValueError(
        f"baseline {label!r} must be an array of restorations, a model with `restore` (evaluated at "
        "1 step), a (model, num_steps) pair, a Keras model (its `predict`), a callable "
        f"degraded -> restored or a (callable, num_steps) pair. Received {type(baseline).__name__}."
    )


@keras_indi_export("keras_indi.evaluation.evaluate_tradeoff")
def evaluate_tradeoff(
    model,
    degraded,
    clean=None,
    step_counts=(1, 2, 5, 10, 20, 50, 100),
    metrics=("psnr", "ssim", "swd", "power_spectrum"),
    seed=0,
    batch_size=None,
    progress_bar=True,
    baselines=None,
    *,
    method_name="InDI",
    data_range=2.0,
    crop_border=0,
    y_channel=False,
    num_examples=4,
):
    """Restore a validation set at several step counts and measure the distortion-perception trade-off.

    For each step count ``n`` the set is restored with ``model.restore(degraded, num_steps=n,
    seed=seed, progress_bar=False)`` (a `keras_indi.InDIModel` or anything with that method
    returning a NumPy array of the input shape) and scored against `clean`. PSNR and SSIM
    are means over images; ``swd`` (:func:`keras_indi.metrics.sliced_wasserstein_distance`) and
    ``power_spectrum`` (:func:`keras_indi.metrics.power_spectrum_distance`) compare the set of
    restorations with the set of clean images, so use at least a few images (dozens for stable
    numbers). A restoration with NaN/Inf values (too many steps can be unstable) gets NaN
    metrics and a warning instead of stopping the evaluation.

    Args:
        model: object with ``restore(degraded, num_steps, seed, progress_bar)``.
        degraded: ``(num_images, height, width, channels)`` float images, or a
            `keras.utils.PyDataset` / finite iterable (tf.data, generator, list) of
            ``(degraded, clean)`` batches, read once into memory (leave `clean` None then).
        clean: the ground truth for array inputs.
        step_counts: the step counts to evaluate.
        metrics: built-in names (``"psnr"``, ``"ssim"``, ``"swd"``, ``"power_spectrum"``) and/or
            ``(name, fn)`` pairs, or a dict ``{name: fn}``; ``fn(clean, restored)`` returns a
            number or per-image values (averaged) and is called once with the whole sets, e.g.
            a `keras_indi.metrics.FID` object; Keras layers/models such as
            ``{"lpips": LPIPS(weights_path=...)}`` are called on chunks of `batch_size` (16 by
            default) images and their per-image values averaged.
        seed: seed passed to `restore` (chunk ``i`` of `batch_size` images gets ``seed + i``)
            and to the SWD; None for fresh randomness.
        batch_size: restore this many images per `restore` call (None: all at once).
        progress_bar: show a `keras.utils.Progbar` over the restorations.
        baselines: dict ``{label: baseline}`` evaluated once each and shown as separate points:
            an array of restorations (e.g. ``{"input": degraded}``), a model with `restore`
            (evaluated at 1 step: one-shot regression), a ``(model, num_steps)`` pair, a Keras
            model (``predict``), a callable ``degraded -> restored`` (its row has no number of
            steps) or a ``(callable, num_steps)`` pair: a function that restores in that many
            steps its own way, e.g. with an explicit time grid
            (``(lambda y: model.restore(y, num_steps=5, spacing="cosine"), 5)``), shown with its
            number of steps.
        method_name: label of `model` in the table and plot.
        data_range, crop_border, y_channel: options of the PSNR / SSIM metrics.
        num_examples: how many of the first images are kept for `TradeoffResult.image_grid`.

    Returns:
        A `TradeoffResult`.

    Example (see the module docstring for a runnable one):

    >>> result = evaluate_tradeoff(model, val_degraded, val_clean, step_counts=(1, 5, 20),
    ...                            baselines={"regression": regression_model})  # doctest: +SKIP
    >>> print(result.to_markdown())  # doctest: +SKIP
    >>> result.save("reports/tradeoff")  # doctest: +SKIP
    """
    if model is None or not callable(getattr(model, "restore", None)):
        raise ValueError(
            "`model` must have a `restore(degraded, num_steps, seed, progress_bar)` method, e.g. a "
            f"`keras_indi.InDIModel`. Received {type(model).__name__}."
        )
    degraded, clean = _collect_pairs(degraded, clean)
    if degraded.shape != clean.shape:
        raise ValueError(
            f"`degraded` and `clean` must have the same shape. Received {degraded.shape} and {clean.shape}."
        )
    step_counts = _check_step_counts(step_counts)
    for name, value, minimum in (("seed", seed, 0), ("batch_size", batch_size, 1)):
        if value is not None and (isinstance(value, bool) or not isinstance(value, numbers.Integral) or value < minimum):
            raise ValueError(f"`{name}` must be an integer >= {minimum} or None. Received {name}={value!r}.")
    num_examples = check_positive_int(num_examples, "num_examples", minimum=0)
    if baselines is None:
        baselines = {}
    if not isinstance(baselines, dict):
        raise ValueError(
            "`baselines` must be a dict {label: baseline}, e.g. {'regression': regression_model}. "
            f"Received {type(baselines).__name__}."
        )
    if method_name in baselines:
        raise ValueError(
            f"Baseline label {method_name!r} is also `method_name`; use another label."
        )
    metric_fns = _resolve_metrics(
        metrics, data_range, crop_border, y_channel, batch_size or 16, seed
    )

    num_examples = min(int(num_examples), degraded.shape[0])
    examples = {
        "degraded": degraded[:num_examples],
        "clean": clean[:num_examples],
        "restorations": [],
    }
    rows, timings = [], []
    jobs = [(method_name, n, None) for n in step_counts] + [
        (label, None, b) for label, b in baselines.items()
    ]
    progbar = keras.utils.Progbar(len(jobs), unit_name="restoration") if progress_bar else None

    for index, (label, num_steps, baseline) in enumerate(jobs):
        start = time.perf_counter()
        if baseline is None:
            restored = _restore_with(model, degraded, num_steps, seed, batch_size, "model")
        else:
            num_steps, restored = _run_baseline(label, baseline, degraded, seed, batch_size)
        seconds = time.perf_counter() - start
        row = {"method": label, "num_steps": num_steps}
        if not np.isfinite(restored).all():
            warnings.warn(
                f"{label} with num_steps={num_steps} produced NaN/Inf values; its metrics are NaN.",
                stacklevel=2,
            )
            row.update({name: math.nan for name in metric_fns})
        else:
            for name, fn in metric_fns.items():
                row[name] = _scalar(fn(clean, restored), name)
        rows.append(row)
        timings.append({"method": label, "num_steps": num_steps, "seconds": seconds})
        examples["restorations"].append((label, num_steps, restored[:num_examples].copy()))
        if progbar is not None:
            progbar.update(index + 1)

    metadata = {
        "method_name": method_name,
        "step_counts": step_counts,
        "seed": seed,
        "num_images": int(degraded.shape[0]),
        "image_shape": list(degraded.shape[1:]),
        "data_range": data_range,
        "crop_border": crop_border,
        "y_channel": y_channel,
        "baselines": list(baselines),
    }
    return TradeoffResult(
        rows, list(metric_fns), metadata=metadata, examples=examples, timings=timings
    )


# -- results ---------------------------------------------------------------------------------
def _format_value(value):
    if value is None:
        return "-"
    if isinstance(value, float):
        return f"{value:.4f}"
    return str(value)


def _json_value(value):
    if isinstance(value, float) and not math.isfinite(value):
        return None
    if isinstance(value, (np.floating, np.integer)):
        return _json_value(value.item())
    return value


def _check_target(path, overwrite):
    path = os.fspath(path)
    if os.path.exists(path) and not overwrite:
        raise ValueError(f"{path!r} already exists. Pass overwrite=True to replace it.")
    directory = os.path.dirname(path)
    if directory:
        os.makedirs(directory, exist_ok=True)
    return path


@keras_indi_export("keras_indi.evaluation.TradeoffResult")
class TradeoffResult:
    """Metrics of restorations at several step counts (and baselines), from `evaluate_tradeoff`.

    Attributes:
        rows: list of dicts ``{"method", "num_steps", <metric>: float, ...}``, one per
            restoration (``num_steps`` is None for baselines given as arrays or callables).
        metrics: the metric names, in column order.
        metadata: evaluation settings (seed, step counts, image shape...).
        timings: list of dicts ``{"method", "num_steps", "seconds"}`` (restoration time).
        examples: the first images (degraded, clean, restorations) for `image_grid`; None
            for a result read with `from_json`.

    >>> result = TradeoffResult([{"method": "InDI", "num_steps": 1, "psnr": 30.0},
    ...                          {"method": "InDI", "num_steps": 10, "psnr": 28.5}], ["psnr"])
    >>> print(result.to_markdown())
    | method | num_steps | psnr |
    | --- | --- | --- |
    | InDI | 1 | 30.0000 |
    | InDI | 10 | 28.5000 |
    """

    def __init__(self, rows, metrics, metadata=None, examples=None, timings=None):
        self.rows = [dict(row) for row in rows]
        self.metrics = list(metrics)
        self.metadata = dict(metadata or {})
        self.examples = examples
        self.timings = list(timings or [])

    @property
    def columns(self):
        return ["method", "num_steps"] + self.metrics

    @property
    def methods(self):
        """Method labels in order of appearance."""
        return list(dict.fromkeys(row["method"] for row in self.rows))

    def __repr__(self):
        return (
            f"TradeoffResult({len(self.rows)} rows, metrics={self.metrics})\n{self.to_markdown()}"
        )

    # -- tables ---------------------------------------------------------------------------
    def to_markdown(self):
        """The table as GitHub-flavoured Markdown (4 decimals)."""
        lines = [
            "| " + " | ".join(self.columns) + " |",
            "| " + " | ".join("---" for _ in self.columns) + " |",
        ]
        for row in self.rows:
            lines.append(
                "| " + " | ".join(_format_value(row.get(column)) for column in self.columns) + " |"
            )
        return "\n".join(lines)

    def to_csv(self, path=None, overwrite=False):
        """Write the table as CSV to `path` (returns the path) or return the CSV text (path None)."""
        buffer = io.StringIO()
        writer = csv.DictWriter(
            buffer, fieldnames=self.columns, extrasaction="ignore", lineterminator="\n"
        )
        writer.writeheader()
        for row in self.rows:
            writer.writerow(
                {key: ("" if row.get(key) is None else row.get(key)) for key in self.columns}
            )
        return self._write_text(buffer.getvalue(), path, overwrite)

    def to_dict(self):
        return {
            "columns": self.columns,
            "metrics": self.metrics,
            "rows": [{key: _json_value(value) for key, value in row.items()} for row in self.rows],
            "metadata": {key: _json_value(value) for key, value in self.metadata.items()},
            "timings": [
                {key: _json_value(value) for key, value in row.items()} for row in self.timings
            ],
        }

    def to_json(self, path=None, overwrite=False):
        """Write rows, metrics, metadata and timings as JSON (NaN/Inf become null)."""
        return self._write_text(json.dumps(self.to_dict(), indent=2), path, overwrite)

    @classmethod
    def from_json(cls, path):
        """Read a result written by `to_json` (without the example images)."""
        with open(os.fspath(path), encoding="utf-8") as file:
            data = json.load(file)
        rows = [
            {k: (math.nan if v is None and k not in ("num_steps",) else v) for k, v in row.items()}
            for row in data["rows"]
        ]
        return cls(
            rows, data["metrics"], metadata=data.get("metadata"), timings=data.get("timings")
        )

    @staticmethod
    def _write_text(text, path, overwrite):
        if path is None:
            return text
        path = _check_target(path, overwrite)
        with open(path, "w", encoding="utf-8", newline="") as file:
            file.write(text)
        return path

    # -- figures --------------------------------------------------------------------------
    def _values(self, rows, key):
        return [math.nan if row.get(key) is None else float(row[key]) for row in rows]

    def plot(self, x="psnr", y="swd", ax=None, annotate=True):
        """Trade-off plot: one line per method through its step counts, each point annotated
        with its step count; single-row methods (baselines) are separate labelled points.

        `x` and `y` are metric names or ``"num_steps"``. Returns the matplotlib Axes (a new
        pyplot figure when `ax` is None).
        """
        valid = self.metrics + ["num_steps"]
        for name, value in (("x", x), ("y", y)):
            if value not in valid:
                raise ValueError(f"`{name}` must be one of {valid}. Received {name}={value!r}.")
        if ax is None:
            import matplotlib.pyplot as plt

            _, ax = plt.subplots(figsize=(6, 4.5))
        markers = "osD^vP*X"
        for index, method in enumerate(self.methods):
            rows = [row for row in self.rows if row["method"] == method]
            if len(rows) > 1:
                rows = sorted(
                    rows, key=lambda row: (row["num_steps"] is None, row["num_steps"] or 0)
                )
                ax.plot(self._values(rows, x), self._values(rows, y), marker="o", label=method)
                if annotate:
                    for row in rows:
                        ax.annotate(
                            str(row["num_steps"]),
                            (self._values([row], x)[0], self._values([row], y)[0]),
                            textcoords="offset points",
                            xytext=(4, 4),
                            fontsize=8,
                        )
            else:
                row = rows[0]
                label = (
                    method
                    if row["num_steps"] is None
                    else f"{method} ({row['num_steps']} step{'s' if row['num_steps'] != 1 else ''})"
                )
                ax.scatter(
                    self._values(rows, x),
                    self._values(rows, y),
                    marker=markers[(index + 1) % len(markers)],
                    s=60,
                    label=label,
                    zorder=3,
                )
                if annotate:
                    ax.annotate(
                        method,
                        (self._values(rows, x)[0], self._values(rows, y)[0]),
                        textcoords="offset points",
                        xytext=(4, -10),
                        fontsize=8,
                    )

        def label(name):
            text = _AXIS_LABELS.get(name, name)
            if name in _HIGHER_IS_BETTER:
                text += " (higher is better)" if _HIGHER_IS_BETTER[name] else " (lower is better)"
            return text

        ax.set_xlabel(label(x))
        ax.set_ylabel(label(y))
        if x == "num_steps":
            ax.set_xscale("log")
        ax.set_title("Distortion-perception trade-off")
        ax.grid(True, alpha=0.3)
        ax.legend(fontsize=8)
        return ax

    def image_grid(
        self,
        path=None,
        examples=None,
        step_counts=None,
        include_baselines=True,
        value_range=(-1.0, 1.0),
        image_size=2.0,
        overwrite=False,
        dpi=100,
    ):
        """Grid of example images: rows = examples, columns = degraded, restorations, clean.

        Args:
            path: save the figure there with ``savefig`` (then no pyplot figure is created).
            examples: number of rows or list of example indices (default: all kept examples,
                see `num_examples` of `evaluate_tradeoff`).
            step_counts: the main method's step counts to show (default: all).
            include_baselines: True: one column per baseline; False: none; or the labels of the
                baselines to show, e.g. ``["regression"]`` to leave out a baseline that only
                repeats the degraded column (``baselines={"noisy input": degraded}``).
            value_range: range of the images, mapped to [0, 1] for display.
            image_size: inches per image.
            overwrite: replace an existing `path`.

        Returns:
            The matplotlib Figure.
        """
        if not self.examples or self.examples["degraded"].shape[0] == 0:
            raise ValueError(
                "This result holds no example images (read from JSON, or num_examples=0): run "
                "evaluate_tradeoff(..., num_examples=4) to keep some."
            )
        available = self.examples["degraded"].shape[0]
        if examples is None:
            indices = list(range(available))
        elif isinstance(examples, numbers.Integral) and not isinstance(examples, bool):
            if not 1 <= examples <= available:
                raise ValueError(f"`examples` must be in [1, {available}]. Received {examples}.")
            indices = list(range(int(examples)))
        else:
            indices = [int(i) for i in examples]
            if not indices or any(not 0 <= i < available for i in indices):
                raise ValueError(
                    f"`examples` indices must be in [0, {available - 1}]. Received {examples!r}."
                )
        method_name = self.metadata.get("method_name", self.methods[0] if self.methods else None)
        restorations = self.examples["restorations"]
        main = [(label, n, images) for label, n, images in restorations if label == method_name]
        if step_counts is not None:
            wanted = set(_check_step_counts(step_counts))
            missing = wanted - {n for _, n, _ in main}
            if missing:
                raise ValueError(
                    f"Step counts {sorted(missing)} were not evaluated. Evaluated: {[n for _, n, _ in main]}."
                )
            main = [entry for entry in main if entry[1] in wanted]
        columns = [("degraded", self.examples["degraded"])]
        columns += [
            (f"{label}\n{n} step{'s' if n != 1 else ''}", images) for label, n, images in main
        ]
        baselines = [(label, images) for label, n, images in restorations if label != method_name]
        if include_baselines is None or isinstance(include_baselines, bool):
            shown = {label for label, _ in baselines} if include_baselines else set()
        else:
            shown = {include_baselines} if isinstance(include_baselines, str) else set(include_baselines)
            unknown = shown - {label for label, _ in baselines}
            if unknown:
                raise ValueError(
                    f"`include_baselines` names {sorted(unknown)}, which are not baselines of this result. "
                    f"Its baselines: {[label for label, _ in baselines]}."
                )
        columns += [(label, images) for label, images in baselines if label in shown]
        columns.append(("clean", self.examples["clean"]))

        if path is not None:
            path = _check_target(path, overwrite)
        figure = new_figure((image_size * len(columns), image_size * len(indices)), dpi, path)
        axes = np.asarray(figure.subplots(len(indices), len(columns), squeeze=False))
        low, high = value_range
        for row_index, example in enumerate(indices):
            for column_index, (title, images) in enumerate(columns):
                ax = axes[row_index, column_index]
                image = np.clip((images[example] - low) / (high - low), 0.0, 1.0)
                if image.shape[-1] == 3:
                    ax.imshow(image)
                else:  # one channel (or the first of another count) in gray
                    ax.imshow(image[..., 0], cmap="gray", vmin=0.0, vmax=1.0)
                ax.set_xticks([])
                ax.set_yticks([])
                if row_index == 0:
                    ax.set_title(title, fontsize=9)
        figure.tight_layout()
        if path is not None:
            figure.savefig(path)
        return figure

    def save(self, folder, overwrite=False, prefix="tradeoff", x=None, y=None):
        """Write ``{prefix}.md``, ``.csv``, ``.json``, ``{prefix}_plot.png`` and
        ``{prefix}_grid.png`` (when example images are kept) into `folder`.

        Existing files are never replaced unless ``overwrite=True``: the check runs before
        anything is written. `x`, `y`: plot axes (default PSNR against SWD when measured).
        Returns a dict ``{"markdown", "csv", "json", "plot", "grid"}`` of written paths.
        """
        folder = os.fspath(folder)
        paths = {
            "markdown": os.path.join(folder, f"{prefix}.md"),
            "csv": os.path.join(folder, f"{prefix}.csv"),
            "json": os.path.join(folder, f"{prefix}.json"),
            "plot": os.path.join(folder, f"{prefix}_plot.png"),
        }
        if self.examples and self.examples["degraded"].shape[0] > 0:
            paths["grid"] = os.path.join(folder, f"{prefix}_grid.png")
        existing = [p for p in paths.values() if os.path.exists(p)]
        if existing and not overwrite:
            raise ValueError(
                f"These files already exist: {existing}. Pass overwrite=True to replace them or "
                "choose another folder / prefix."
            )
        os.makedirs(folder, exist_ok=True)
        self._write_text(self.to_markdown() + "\n", paths["markdown"], True)
        self.to_csv(paths["csv"], overwrite=True)
        self.to_json(paths["json"], overwrite=True)

        if x is None:
            x = (
                "psnr"
                if "psnr" in self.metrics
                else (self.metrics[0] if self.metrics else "num_steps")
            )
        if y is None:
            others = [m for m in self.metrics if m != x]
            y = "swd" if "swd" in others else (others[0] if others else "num_steps")
        figure = new_figure((6, 4.5), 100, paths["plot"])
        self.plot(x=x, y=y, ax=figure.subplots())
        figure.tight_layout()
        figure.savefig(paths["plot"])
        if "grid" in paths:
            self.image_grid(path=paths["grid"], overwrite=True)
        return paths
