"""Sampling a `ConditionalDDPM`: DDIM (any eta, any number of steps) and ancestral DDPM."""

import numbers
from typing import NamedTuple

import numpy as np
from keras import ops

from keras_indi.api_export import keras_indi_export
from keras_indi.backend import match_static_shape, step_noise
from keras_indi.ddpm_schedule import (
    _PREDICTIONS,
    check_prediction_channels,
    ddim_step,
    get_ddpm_schedule,
    split_prediction,
)
from keras_indi.samplers.base import BaseSampler
from keras_indi.utils.validation import (
    check_choice,
    check_finite_and_range,
    check_float_array,
    check_network_input,
    check_number,
)

_METHODS = {"ddim": "deterministic by default (eta=0)", "ddpm": "ancestral (eta=1)"}



class DDPMTables(NamedTuple):
    """The per-step tables of a DDPM/DDIM restoration: the network time of each visited step
    then 0, ``alpha_bar`` of each step then 1, and the DDIM ``eta``."""

    times: object
    alpha_bars: object
    eta: object


class DDPMOptions(NamedTuple):
    """The static options of a DDPM/DDIM restoration (one compiled loop per combination)."""

    stochastic: bool
    clip_range: object  # (low, high) or None

@keras_indi_export(("keras_indi.DDPMSampler", "keras_indi.samplers.DDPMSampler"))
class DDPMSampler(BaseSampler):
    """Restore degraded inputs with a conditional DDPM, one network evaluation per step.

    An N-step run visits the training steps ``DDPMSchedule.timesteps(N)`` (evenly spaced from
    the noisiest, ``T - 1``, down to 0), starting from ``x = eta_0 ~ N(0, I)``; each step
    evaluates ``network([concat(x, y), t_n])`` once and applies `ddim_step`. The last step
    returns the clean estimate. ``method="ddim"`` uses ``eta`` (default 0: deterministic DDIM);
    ``method="ddpm"`` is ancestral sampling (``eta = 1``, posterior variance), which with
    ``num_steps = T`` is the original DDPM sampler.

    Conventions are those of `keras_indi.InDISampler`: a `seed` makes a run reproducible (the
    noise of step k is ``step_noise(shape, seed, k)``, the start noise is step 0), the output
    is a NumPy array or a `SamplerOutput` with ``return_trajectory=True`` (its `time_grid` holds
    the network times ``t_n = (n + 1) / T`` visited, then 0), `callback` receives a
    `SamplerStep` (sample and clean estimate) after every step, and with no callback, progress
    bar or trajectory the whole loop is one compiled call.

    Args:
        model: a `ConditionalDDPM`, or a bare network called as ``network([concat(x, y), t])``
            (then give `schedule` and `prediction`).
        schedule: overrides the model's `DDPMSchedule` (``"linear"``, ``"cosine"``, or a schedule).
        prediction: overrides the model's prediction type, ``"epsilon"`` or ``"x0"``.
        progress_bar: default for showing a progress bar.

    Example:

    >>> from keras_indi import DDPMSchedule
    >>> from keras_indi.networks import TimeConditionalUNet
    >>> network = TimeConditionalUNet(widths=(8,), blocks_per_level=1, in_channels=2, out_channels=1)
    >>> sampler = DDPMSampler(network, schedule=DDPMSchedule("linear", 100), prediction="epsilon")
    >>> sampler(np.zeros((3, 8, 8, 1), "float32"), num_steps=10, seed=0, progress_bar=False).shape
    (3, 8, 8, 1)
    """

    def __init__(self, model, schedule=None, prediction=None, progress_bar=True):
        super().__init__(model, progress_bar, "a ConditionalDDPM")
        schedule = getattr(model, "schedule", "linear") if schedule is None else schedule
        self.schedule = get_ddpm_schedule(schedule)
        prediction = getattr(model, "prediction", "epsilon") if prediction is None else prediction
        self.prediction = check_choice(prediction, "prediction", _PREDICTIONS)
        # What ``clip_denoised=True`` clips to: the model's `clip_range` (older models: value_range).
        self.clip_range = getattr(model, "clip_range", self.value_range)

    # -- the maths, backend-agnostic ------------------------------------------------------
    def _start(self, degraded, tables, seed, options):
        return step_noise(ops.shape(degraded), seed, 0)

    def _step(self, network_fn, sample, degraded, tables, index, seed, options):
        times, alpha_bars, eta = tables
        stochastic, clip = options.stochastic, options.clip_range
        alpha_bar, alpha_bar_next = alpha_bars[index], alpha_bars[index + 1]
        batch = ops.shape(sample)[0]
        t_vector = ops.broadcast_to(ops.reshape(ops.cast(times[index], "float32"), (1,)), (batch,))
        network_input = ops.concatenate([sample, degraded], axis=-1)
        output = check_prediction_channels(ops.cast(network_fn(network_input, t_vector), "float32"), sample)
        output = match_static_shape(output, sample)
        eps, clean_estimate = split_prediction(output, sample, alpha_bar, self.prediction, clip)
        noise = step_noise(ops.shape(sample), seed, index + 1) if stochastic else None
        next_sample = ddim_step(eps, clean_estimate, alpha_bar, alpha_bar_next, eta if stochastic else 0.0, noise)
        return next_sample, clean_estimate

    def _clip_range(self, clip_denoised):
        """`clip_denoised` as a hashable ``(low, high)`` or None (no clipping)."""
        if isinstance(clip_denoised, (tuple, list)):
            if len(clip_denoised) != 2 or not all(isinstance(v, numbers.Real) and np.isfinite(v) for v in clip_denoised):
                raise ValueError(f"`clip_denoised` must be True, False or (low, high). Received {clip_denoised!r}.")
            low, high = (float(v) for v in clip_denoised)
            if not low < high:
                raise ValueError(f"`clip_denoised` range must have low < high. Received {clip_denoised!r}.")
            return (low, high)
        if not isinstance(clip_denoised, (bool, np.bool_)):
            raise ValueError(f"`clip_denoised` must be True, False or (low, high). Received {clip_denoised!r}.")
        if clip_denoised and self.clip_range is not None:
            return tuple(float(v) for v in self.clip_range)
        return None

    # -- public API ---------------------------------------------------------------------------
    def __call__(
        self,
        degraded,
        num_steps=50,
        *,
        method="ddim",
        eta=None,
        seed=None,
        clip_denoised=True,
        return_trajectory=False,
        callback=None,
        progress_bar=None,
        batch_size=None,
    ):
        """Restore `degraded` in `num_steps` steps (= network evaluations).

        Args:
            degraded: array (batch, ...) of degraded inputs in the model's value range.
            num_steps: N, any integer in ``[1, T]``.
            method: ``"ddim"`` or ``"ddpm"`` (ancestral: DDIM with eta = 1).
            eta: DDIM stochasticity in [0, 1] (``method="ddim"`` only; default 0).
            seed: int in [0, 2**31) for reproducible noise; None draws a fresh one.
            clip_denoised: True clips clean estimates to the model's `clip_range` (if any);
                a ``(low, high)`` pair clips to that range instead; False never clips.
            return_trajectory: also return every iterate and clean estimate.
            callback: ``callback(SamplerStep)`` after each step.
            progress_bar: show a progress bar (default: the sampler's setting).
            batch_size: restore in chunks of this many inputs; each chunk gets its own seed
                derived from `seed`.

        Returns:
            A NumPy float32 array, or a `SamplerOutput` when `return_trajectory` is True.
        """
        shape = check_float_array(degraded, "degraded", min_rank=2)
        check_finite_and_range(degraded, "degraded", self.value_range, degraded=True)
        check_network_input(self.network, shape, "degraded", inputs_per_call=2)
        method = check_choice(method, "method", _METHODS)
        if eta is None:
            eta = 1.0 if method == "ddpm" else 0.0
        eta = check_number(eta, "eta", minimum=0.0, maximum=1.0)
        if method == "ddpm" and eta != 1.0:
            raise ValueError(f"`eta` applies to method='ddim' (method='ddpm' is eta=1). Received eta={eta}.")
        timesteps = self.schedule.timesteps(num_steps)

        degraded = degraded if ops.is_tensor(degraded) else np.asarray(degraded, "float32")
        if not self.network.built:
            # Compiled loops pass the weights explicitly: create them first, eagerly.
            self.network([ops.concatenate([degraded[:1]] * 2, axis=-1), ops.ones((1,), "float32")])
        # Per-step tables: the network time of each visited step, then 0, and alpha_bar, then 1.
        times = np.append(self.schedule.times[timesteps], np.float32(0.0)).astype("float32")
        alpha_bars = np.append(self.schedule.alphas_cumprod[timesteps], 1.0).astype("float32")
        return self.run(
            degraded,
            DDPMTables(times=times, alpha_bars=alpha_bars, eta=np.float32(eta)),
            len(timesteps),
            seed,
            DDPMOptions(stochastic=eta > 0.0, clip_range=self._clip_range(clip_denoised)),
            batch_size=batch_size,
            return_trajectory=return_trajectory,
            callback=callback,
            progress_bar=progress_bar,
        )
