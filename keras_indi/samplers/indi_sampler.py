"""The InDI sampler: restore a degraded image in N small steps."""

from typing import NamedTuple

import keras
import numpy as np
from keras import ops

from keras_indi.api_export import keras_indi_export
from keras_indi.backend import match_static_shape, step_noise
from keras_indi.samplers.base import (  # noqa: F401 (SamplerOutput, SamplerStep, chunk_seed: public here too)
    BaseSampler,
    SamplerOutput,
    SamplerStep,
    check_sampler_seed,
    chunk_seed,
)
from keras_indi.samplers.time_grid import spaced_times
from keras_indi.schedules import get_noise_schedule
from keras_indi.utils.validation import (
    check_finite_and_range,
    check_float_array,
    check_network_input,
    check_number,
    check_positive_int,
)

MAX_STEPS = 100_000


def make_time_grid(num_steps, t_start=1.0, spacing="uniform"):
    """The decreasing times ``t_start = t_0 > t_1 > ... > t_N = 0`` of an N-step run.

    Args:
        num_steps: N >= 1.
        t_start: first time in (0, 1]; below 1 restores only part of the way (for mildly
            degraded inputs).
        spacing: ``"uniform"`` (constant step t_start / N, the paper's scheme),
            ``"quadratic"`` (smaller steps near t = 0, where details form) or
            ``"cosine"``.

    Example:

    >>> make_time_grid(4).tolist()
    [1.0, 0.75, 0.5, 0.25, 0.0]
    """
    num_steps = check_positive_int(num_steps, "num_steps")
    if num_steps > MAX_STEPS:
        raise ValueError(f"`num_steps` must be <= {MAX_STEPS}. Received num_steps={num_steps}.")
    t_start = check_number(t_start, "t_start", minimum=0.0, maximum=1.0, exclusive_minimum=True)
    return spaced_times(num_steps, t_start, spacing)


def validate_time_grid(time_grid):
    """Check an explicit grid: strictly decreasing, first in (0, 1], last exactly 0."""
    grid = np.asarray(time_grid, dtype="float64")
    if grid.ndim != 1 or grid.shape[0] < 2:
        raise ValueError(
            f"`time_grid` must be a 1D sequence of at least 2 times (t_start, ..., 0). "
            f"Received shape {grid.shape}."
        )
    if not np.all(np.isfinite(grid)):
        raise ValueError("`time_grid` contains NaN or Inf.")
    if not (0.0 < grid[0] <= 1.0):
        raise ValueError(f"`time_grid` must start in (0, 1]. Received t_start={grid[0]}.")
    if grid[-1] != 0.0:
        raise ValueError(
            f"`time_grid` must end at exactly 0 (the clean image). Received last time {grid[-1]}."
        )
    if np.any(np.diff(grid) >= 0):
        raise ValueError("`time_grid` must be strictly decreasing (from t_start down to 0).")
    if grid.shape[0] - 1 > MAX_STEPS:
        raise ValueError(f"`time_grid` has more than {MAX_STEPS} steps.")
    return grid.astype("float32")


def indi_step(clean_estimate, sample, t, t_next, noise=None, noise_std=0.0):
    """One InDI update from time `t` to `t_next < t` (Algorithm 1 of the paper).

        x_s = (1 - s / t) F(x_t, t) + (s / t) x_t + noise_std * noise

    which is ``(d / t) F + (1 - d / t) x_t`` with ``d = t - s``. With ``s = 0`` the result is
    exactly the clean estimate, so the network is never evaluated at t = 0.

    Args:
        clean_estimate: F(x_t, t).
        sample: x_t.
        t, t_next: scalars with ``0 <= t_next < t``.
        noise, noise_std: fresh standard normal noise and its scale
            (``NoiseSchedule.transition_std(t, t_next)``) for noise-consistent sampling.

    Returns:
        x_{t_next}.

    Example:

    >>> float(indi_step(keras.ops.array(0.0), keras.ops.array(1.0), 1.0, 0.5))
    0.5
    """
    ratio = ops.cast(t_next, "float32") / ops.cast(t, "float32")
    updated = (1.0 - ratio) * ops.cast(clean_estimate, "float32") + ratio * ops.cast(sample, "float32")
    if noise is not None:
        updated = updated + noise_std * noise
    return updated



class InDITables(NamedTuple):
    """The per-step table of an InDI restoration: the time grid ``t_0 = t_start > ... > t_N = 0``."""

    times: object


class InDIOptions(NamedTuple):
    """The static options of an InDI restoration (one compiled loop per combination)."""

    stochastic: bool
    add_input_noise: bool

@keras_indi_export("keras_indi.InDISampler")
class InDISampler(BaseSampler):
    """Restore degraded inputs with InDI's iterative scheme.

    Starting from ``x_{t_0} = y + sigma(t_0) eta`` (the degraded input plus the training
    noise), each step evaluates the network once and moves to a smaller time with
    `indi_step`; the last step returns the network's clean estimate at the smallest positive
    time. With ``num_steps=1`` this is exactly one-shot regression ``F(y + sigma(1) eta, 1)``.

    With ``stochastic=True`` the update adds the fresh noise that keeps x_t at the noise level
    it had in training (noise-consistent sampling); that noise is identically zero for a
    constant epsilon. ``stochastic=False`` gives the deterministic (ODE / Euler) sampler.

    Speed: with no callback, no progress bar and no trajectory, the whole loop is one compiled
    call (JAX: a jitted loop over explicit weights; TensorFlow: a ``tf.function`` with a
    dynamic loop; torch: ``no_grad``, and ``torch.compile`` of the network when the model was
    compiled with ``jit_compile=True``). Otherwise a compiled single step runs in a Python
    loop. Both draw the same noise, so they give the same result. The step count is a traced
    loop bound and the time grid is padded, so every step count up to 127 shares one compiled
    loop per input shape (see `keras_indi.samplers.base`).

    Args:
        model: an `InDIModel` (its network, noise schedule and value range are used) or any
            network called as ``network([x_t, t])``.
        noise_schedule: overrides the model's noise schedule (needed for a bare network;
            default constant 0.01).
        progress_bar: default for showing a progress bar.

    Example:

    >>> from keras_indi.networks import TimeConditionalMLP
    >>> sampler = InDISampler(TimeConditionalMLP(features=2, hidden_units=(16,)), noise_schedule=0.0)
    >>> sampler(np.zeros((4, 2), "float32"), num_steps=5, seed=0, progress_bar=False).shape
    (4, 2)
    """

    def __init__(self, model, noise_schedule=None, progress_bar=True):
        super().__init__(model, progress_bar, "an InDIModel")
        if noise_schedule is None:
            noise_schedule = getattr(model, "noise_schedule", None)
        self.noise_schedule = get_noise_schedule(noise_schedule)

    # -- the maths, backend-agnostic ------------------------------------------------------------
    def _start(self, degraded, tables, seed, options):
        sample = ops.cast(degraded, "float32")
        if options.add_input_noise and not self.noise_schedule.is_zero:
            sample = sample + self.noise_schedule.sigma(tables.times[0]) * step_noise(ops.shape(sample), seed, 0)
        return sample

    def _step(self, network_fn, sample, degraded, tables, index, seed, options):
        t, t_next = tables.times[index], tables.times[index + 1]
        batch = ops.shape(sample)[0]
        t_vector = ops.broadcast_to(ops.reshape(ops.cast(t, "float32"), (1,)), (batch,))
        clean_estimate = match_static_shape(ops.cast(network_fn(sample, t_vector), "float32"), sample)
        noise, noise_std = None, 0.0
        if options.stochastic and not self.noise_schedule.is_constant:
            noise_std = self.noise_schedule.transition_std(t, t_next)
            noise = step_noise(ops.shape(sample), seed, index + 1)
        return indi_step(clean_estimate, sample, t, t_next, noise, noise_std), clean_estimate

    # -- public API ---------------------------------------------------------------------------
    def __call__(
        self,
        degraded,
        num_steps=10,
        *,
        time_grid=None,
        spacing="uniform",
        t_start=1.0,
        seed=None,
        stochastic=True,
        add_input_noise=True,
        return_trajectory=False,
        callback=None,
        progress_bar=None,
        batch_size=None,
    ):
        """Restore `degraded` in `num_steps` InDI steps.

        Args:
            degraded: array (batch, ...) of degraded inputs in the model's value range
                (images: (batch, height, width, channels) in [-1, 1]).
            num_steps: number of steps N (network evaluations). 1 = one-shot regression.
            time_grid: explicit decreasing times ``[t_start, ..., 0]``; overrides
                `num_steps`, `spacing` and `t_start`.
            spacing: ``"uniform"``, ``"quadratic"`` or ``"cosine"`` time grid.
            t_start: first time in (0, 1]; ``< 1`` for partial restoration.
            seed: int for reproducible noise; None draws a fresh one.
            stochastic: add the noise-consistent fresh noise at each step.
            add_input_noise: add ``sigma(t_start) eta`` to the input, as in training.
            return_trajectory: also return every iterate and clean estimate.
            callback: ``callback(SamplerStep)`` after each step.
            progress_bar: show a progress bar (default: the sampler's setting).
            batch_size: restore in chunks of this many inputs (for memory); each chunk
                gets its own seed derived from `seed`.

        Returns:
            A NumPy float32 array of the restored inputs, or a `SamplerOutput` when
            `return_trajectory` is True.
        """
        shape = check_float_array(degraded, "degraded", min_rank=2)
        if shape[0] == 0:
            raise ValueError("`degraded` is empty (batch size 0).")
        check_finite_and_range(degraded, "degraded", self.value_range, degraded=True)
        check_network_input(self.network, shape, "degraded")
        if time_grid is not None:
            grid = validate_time_grid(time_grid)
        else:
            grid = make_time_grid(num_steps, t_start, spacing)

        degraded = degraded if keras.ops.is_tensor(degraded) else np.asarray(degraded, "float32")
        if not self.network.built:
            # Compiled loops pass the weights explicitly: create them first, eagerly.
            self.network([degraded[:1], np.ones((1,), "float32")])
        return self.run(
            degraded,
            InDITables(times=grid),
            grid.shape[0] - 1,
            seed,
            InDIOptions(stochastic=bool(stochastic), add_input_noise=bool(add_input_noise)),
            batch_size=batch_size,
            return_trajectory=return_trajectory,
            callback=callback,
            progress_bar=progress_bar,
        )
