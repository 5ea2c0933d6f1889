"""What every keras-indi sampler shares: chunking, the compiled loops, trajectories, callbacks.

A sampler subclass supplies the maths as backend-agnostic `keras.ops` code:

* ``_start(degraded, tables, seed, options)``: the first iterate;
* ``_step(network_fn, sample, degraded, tables, index, seed, options)``: step `index`, returning
  ``(next_sample, clean_estimate)``;

where `tables` is a NamedTuple of per-step arrays and scalars (its ``times`` field: the times
shown to callbacks) and `options` a hashable NamedTuple of Python switches (e.g.
`keras_indi.samplers.indi_sampler.InDITables` and ``InDIOptions``). `BaseSampler.run` does the rest,
the same way for every sampler:

* **One compile for every step count.** Per-step tables are padded to a bucket length
  (`padded_table_length`) and the step count is a traced loop bound, so 1, 10 and 100 steps
  share one compiled loop (per input shape) on JAX and one trace on TensorFlow.
* **One compile for every chunk.** With ``batch_size``, a short last chunk is padded to the
  chunk size (repeating its last input) and the padding dropped from the output.
* **Fused or stepwise.** With no callback, progress bar or trajectory, the whole loop is one
  compiled call on the device (no host round trip between steps). Otherwise a compiled single
  step runs in a Python loop. Both draw the same noise (``step_noise(shape, seed, step)``), so
  they give the same result.
"""

import numbers
import typing

import keras
import numpy as np
from keras import ops

from keras_indi.backend import compile_sampler_function, torch_compile_requested
from keras_indi.backend.tensors import is_traced_backend
from keras_indi.samplers.time_grid import pad_table, padded_table_length  # noqa: F401 (public here too)
from keras_indi.utils.validation import check_positive_int

class SamplerOutput(typing.NamedTuple):
    """What a sampler called with ``return_trajectory=True`` returns.

    Fields:
        restored: the final iterate x_0, shape of the input.
        trajectory: the iterates ``[x_{t_0}, x_{t_1}, ..., x_0]``, shape ``(N + 1,) + input shape``.
        clean_estimates: the network's clean-image estimates ``F(x_{t_i}, t_i)`` for each step,
            shape ``(N,) + input shape``.
        time_grid: the N + 1 times ``t_0 = t_start > ... > t_N = 0``.
    """

    restored: typing.Any
    trajectory: typing.Any
    clean_estimates: typing.Any
    time_grid: typing.Any


class SamplerStep(typing.NamedTuple):
    """What a sampler callback receives after each step (k-diffusion style).

    Fields: ``step`` (0-based index), ``num_steps``, ``t`` and ``t_next`` (floats), ``sample``
    (the new iterate x_{t_next}) and ``clean_estimate`` (F(x_t, t)), as backend tensors.
    """

    step: typing.Any
    num_steps: typing.Any
    t: typing.Any
    t_next: typing.Any
    sample: typing.Any
    clean_estimate: typing.Any


def check_sampler_seed(seed):
    """A sampler's `seed` as an int in [0, 2**31); None draws a fresh one.

    >>> check_sampler_seed(7)
    7
    """
    if seed is None:
        return int(np.random.SeedSequence().entropy % (2**31 - 1))
    if isinstance(seed, bool) or not isinstance(seed, numbers.Integral) or not 0 <= seed < 2**31:
        raise ValueError(f"`seed` must be an int in [0, 2**31). Received seed={seed!r}.")
    return int(seed)


def chunk_seed(seed, chunk_index):
    """The seed of chunk `chunk_index` of a batch restored in chunks (chunk 0 keeps `seed`)."""
    return (int(seed) + 104_729 * chunk_index) % (2**31 - 1)


def scalar_argument(value, dtype="float32"):
    """A per-call scalar as a compiled function's argument (one compile for every value)."""
    if dtype == "int32" and not is_traced_backend():
        return int(value)
    return ops.convert_to_tensor(np.asarray(value, dtype), dtype)


class BaseSampler:
    """Shared machinery of `InDISampler` and `DDPMSampler` (see the module docstring).

    Args:
        model: a model with a `network` attribute, or a callable network.
        progress_bar: default for showing a progress bar.
        model_description: how error messages name the expected model.
    """

    def __init__(self, model, progress_bar=True, model_description="a model"):
        network = getattr(model, "network", model)
        if not callable(network):
            raise ValueError(f"`model` must be {model_description} or a callable network. Received {model!r}.")
        self.model = model
        self.network = network
        self.value_range = getattr(model, "value_range", None)
        self.progress_bar = bool(progress_bar)
        self._compiled = {}

    # -- what a subclass supplies ---------------------------------------------------------------
    def _start(self, degraded, tables, seed, options):
        raise NotImplementedError

    def _step(self, network_fn, sample, degraded, tables, index, seed, options):
        raise NotImplementedError

    def _wrap_network(self, network_fn, options):
        """Hook for samplers that evaluate the network differently (e.g. tile by tile)."""
        return network_fn

    # -- the two compiled programs --------------------------------------------------------------
    def _function(self, kind, options):
        def single(network_fn, sample, degraded, tables, index, seed):
            network_fn = self._wrap_network(network_fn, options)
            return self._step(network_fn, sample, degraded, tables, index, seed, options)

        def fused(network_fn, degraded, tables, num_steps, seed):
            network_fn = self._wrap_network(network_fn, options)

            def body(index, sample):
                next_sample, _ = self._step(network_fn, sample, degraded, tables, index, seed, options)
                return next_sample

            return ops.fori_loop(0, num_steps, body, self._start(degraded, tables, seed, options))

        return fused if kind == "fused" else single

    def _torch_compile(self):
        """Whether to ``torch.compile`` the network evaluations (see `torch_compile_requested`)."""
        return torch_compile_requested(self.model)

    def _compiled_function(self, kind, options):
        torch_compile = self._torch_compile()
        key = (keras.backend.backend(), kind) + tuple(options) + (("torch.compile",) if torch_compile else ())
        if key not in self._compiled:
            self._compiled[key] = compile_sampler_function(
                self.network, self._function(kind, options), torch_compile=torch_compile
            )
        return self._compiled[key]

    def fused_call(self, degraded, tables, num_steps, seed, options):
        """The compiled fused loop and its arguments: ``function(*arguments)`` restores
        `degraded` (a device tensor) in one call. For benchmarks and advanced use."""
        function = self._compiled_function("fused", options)
        arguments = (
            degraded,
            self._table_arguments(tables),
            scalar_argument(num_steps, "int32"),
            scalar_argument(seed, "int32"),
        )
        return function, arguments

    def _table_arguments(self, tables):
        """The tables as float32 tensors, 1D ones padded (tensors already converted pass through)."""
        return type(tables)(
            *(
                table
                if ops.is_tensor(table)
                else ops.convert_to_tensor(pad_table(table) if np.ndim(table) == 1 else np.asarray(table, "float32"), "float32")
                for table in tables
            )
        )

    # -- the driver ---------------------------------------------------------------------------------
    def run(
        self,
        degraded,
        tables,
        num_steps,
        seed,
        options,
        *,
        batch_size=None,
        return_trajectory=False,
        callback=None,
        progress_bar=None,
    ):
        """Restore `degraded` (checked, float32) with the step tables; NumPy or `SamplerOutput`.

        `seed` is an int or None (see `check_sampler_seed`); chunk k of a batch restored in
        chunks of `batch_size` (default: the whole batch) uses ``chunk_seed(seed, k)``.
        `progress_bar` None uses the sampler's default.
        """
        seed = check_sampler_seed(seed)
        if callback is not None and not callable(callback):
            raise ValueError(f"`callback` must be callable. Received {callback!r}.")
        total = ops.shape(degraded)[0]
        batch_size = check_positive_int(total if batch_size is None else batch_size, "batch_size")
        progress_bar = self.progress_bar if progress_bar is None else bool(progress_bar)
        chunks = list(range(0, total, batch_size))
        progress = keras.utils.Progbar(num_steps * len(chunks), unit_name="step") if progress_bar else None
        stepwise = return_trajectory or callback is not None or progress is not None
        table_arguments = self._table_arguments(tables)
        results = []
        for chunk_index, begin in enumerate(chunks):
            chunk = ops.convert_to_tensor(degraded[begin : begin + batch_size], "float32")
            used = ops.shape(chunk)[0]
            if len(chunks) > 1 and used < batch_size:
                # Same shape as the other chunks: no second compile for the last one.
                chunk = ops.concatenate([chunk, ops.repeat(chunk[-1:], batch_size - used, axis=0)], axis=0)
            seed_of_chunk = chunk_seed(seed, chunk_index)
            if stepwise:
                result = self._run_stepwise(
                    chunk, used, tables, table_arguments, num_steps, seed_of_chunk, options,
                    return_trajectory, callback, progress, chunk_index * num_steps,
                )
            else:
                function, arguments = self.fused_call(chunk, table_arguments, num_steps, seed_of_chunk, options)
                result = (ops.convert_to_numpy(function(*arguments)), None, None)
            results.append((
                result[0][:used],
                None if result[1] is None else result[1][:, :used],
                None if result[2] is None else result[2][:, :used],
            ))

        restored = np.concatenate([r[0] for r in results], axis=0)
        if not return_trajectory:
            return restored
        trajectory = np.concatenate([r[1] for r in results], axis=1)
        estimates = np.concatenate([r[2] for r in results], axis=1)
        time_grid = np.asarray(tables.times, "float32")[: num_steps + 1]
        return SamplerOutput(restored, trajectory, estimates, time_grid)

    def _run_stepwise(
        self, degraded, used, tables, table_arguments, num_steps, seed, options, keep, callback, progress, offset
    ):
        single = self._compiled_function("single", options)
        seed_argument = scalar_argument(seed, "int32")
        sample = self._start(degraded, table_arguments, seed_argument, options)
        trajectory = [ops.convert_to_numpy(sample)] if keep else None
        estimates = [] if keep else None
        times = np.asarray(tables.times, "float32")
        for index in range(num_steps):
            sample, estimate = single(
                sample, degraded, table_arguments, scalar_argument(index, "int32"), seed_argument
            )
            if keep:
                trajectory.append(ops.convert_to_numpy(sample))
                estimates.append(ops.convert_to_numpy(estimate))
            if callback is not None:
                padded = ops.shape(sample)[0] != used  # a padded last chunk: show the real inputs only
                callback(SamplerStep(
                    index, num_steps, float(times[index]), float(times[index + 1]),
                    sample[:used] if padded else sample, estimate[:used] if padded else estimate,
                ))
            if progress is not None:
                progress.update(offset + index + 1)
        restored = ops.convert_to_numpy(sample)
        if not keep:
            return restored, None, None
        return restored, np.stack(trajectory), np.stack(estimates)
