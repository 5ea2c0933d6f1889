"""Sampling a `ConditionalDDPM`: DDIM (any eta, any number of steps) and ancestral DDPM."""

import numbers

import keras
import numpy as np
from keras import ops

from keras_indi.api_export import keras_indi_export
from keras_indi.backend import compile_sampler_function, match_static_shape, step_noise
from keras_indi.models.ddpm import (
    _PREDICTIONS,
    check_prediction_channels,
    ddim_step,
    get_ddpm_schedule,
    split_prediction,
)
from keras_indi.samplers.indi_sampler import SamplerOutput, SamplerStep, check_sampler_seed, chunk_seed
from keras_indi.utils.validation import (
    check_choice,
    check_finite_and_range,
    check_float_array,
    check_network_input,
    check_number,
    check_positive_int,
)

_METHODS = {"ddim": "deterministic by default (eta=0)", "ddpm": "ancestral (eta=1)"}


@keras_indi_export(("keras_indi.DDPMSampler", "keras_indi.samplers.DDPMSampler"))
class DDPMSampler:
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
        network = getattr(model, "network", model)
        if not callable(network):
            raise ValueError(f"`model` must be a ConditionalDDPM or a callable network. Received {model!r}.")
        self.model = model
        self.network = network
        schedule = getattr(model, "schedule", "linear") if schedule is None else schedule
        self.schedule = get_ddpm_schedule(schedule)
        prediction = getattr(model, "prediction", "epsilon") if prediction is None else prediction
        self.prediction = check_choice(prediction, "prediction", _PREDICTIONS)
        self.value_range = getattr(model, "value_range", None)
        self.progress_bar = bool(progress_bar)
        self._compiled = {}

    # -- the maths, backend-agnostic ------------------------------------------------------
    def _step(self, network_fn, sample, degraded, t, alpha_bar, alpha_bar_next, eta, seed, step, clip):
        batch = ops.shape(sample)[0]
        t_vector = ops.broadcast_to(ops.reshape(ops.cast(t, "float32"), (1,)), (batch,))
        network_input = ops.concatenate([sample, degraded], axis=-1)
        output = check_prediction_channels(ops.cast(network_fn(network_input, t_vector), "float32"), sample)
        output = match_static_shape(output, sample)
        eps, clean_estimate = split_prediction(output, sample, alpha_bar, self.prediction, clip)
        noise = step_noise(ops.shape(sample), seed, step) if eta is not None else None
        return ddim_step(eps, clean_estimate, alpha_bar, alpha_bar_next, 0.0 if eta is None else eta, noise), clean_estimate

    def _function(self, kind, stochastic, clip):
        def single(network_fn, sample, degraded, t, alpha_bar, alpha_bar_next, eta, seed, step):
            return self._step(
                network_fn, sample, degraded, t, alpha_bar, alpha_bar_next, eta if stochastic else None, seed, step, clip
            )

        def fused(network_fn, degraded, times, alpha_bars, eta, seed):
            def body(index, sample):
                next_sample, _ = single(
                    network_fn, sample, degraded, times[index], alpha_bars[index], alpha_bars[index + 1], eta, seed, index + 1
                )
                return next_sample

            start = step_noise(ops.shape(degraded), seed, 0)
            return ops.fori_loop(0, ops.shape(times)[0], body, start)

        return fused if kind == "fused" else single

    def _compiled_function(self, kind, stochastic, clip):
        key = (keras.backend.backend(), kind, stochastic, clip)
        if key not in self._compiled:
            self._compiled[key] = compile_sampler_function(self.network, self._function(kind, stochastic, clip))
        return self._compiled[key]

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
        if clip_denoised and self.value_range is not None:
            return tuple(float(v) for v in self.value_range)
        return None

    def _tensor(self, value, dtype="float32"):
        # Traced arguments on JAX / TensorFlow (one compile for every value); ints on torch.
        if dtype == "int32" and keras.backend.backend() not in ("jax", "tensorflow"):
            return int(value)
        return ops.convert_to_tensor(np.asarray(value, dtype), dtype)

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
            clip_denoised: True clips clean estimates to the model's `value_range` (if any);
                a ``(low, high)`` pair clips to that range instead (e.g. ``(-1, 1)`` for a
                model with ``value_range=None`` because its noisy inputs leave [-1, 1]);
                False never clips.
            return_trajectory: also return every iterate and clean estimate.
            callback: ``callback(SamplerStep)`` after each step.
            progress_bar: show a progress bar (default: the sampler's setting).
            batch_size: restore in chunks of this many inputs; each chunk gets its own seed
                derived from `seed`.

        Returns:
            A NumPy float32 array, or a `SamplerOutput` when `return_trajectory` is True.
        """
        shape = check_float_array(degraded, "degraded", min_rank=2)
        check_finite_and_range(degraded, "degraded", self.value_range)
        check_network_input(self.network, shape, "degraded", inputs_per_call=2)
        method = check_choice(method, "method", _METHODS)
        if eta is None:
            eta = 1.0 if method == "ddpm" else 0.0
        eta = check_number(eta, "eta", minimum=0.0, maximum=1.0)
        if method == "ddpm" and eta != 1.0:
            raise ValueError(f"`eta` applies to method='ddim' (method='ddpm' is eta=1). Received eta={eta}.")
        timesteps = self.schedule.timesteps(num_steps)
        seed = check_sampler_seed(seed)
        if callback is not None and not callable(callback):
            raise ValueError(f"`callback` must be callable. Received {callback!r}.")
        batch_size = check_positive_int(shape[0] if batch_size is None else batch_size, "batch_size")
        show_progress = self.progress_bar if progress_bar is None else bool(progress_bar)

        degraded = degraded if ops.is_tensor(degraded) else np.asarray(degraded, "float32")
        if not self.network.built:
            # Compiled loops pass the weights explicitly: create them first, eagerly.
            self.network([ops.concatenate([degraded[:1]] * 2, axis=-1), ops.ones((1,), "float32")])
        num_steps = len(timesteps)
        # Per-step tables: the network time of each visited step, then 0, and alpha_bar, then 1.
        times = np.append(self.schedule.times[timesteps], np.float32(0.0)).astype("float32")
        alpha_bars = np.append(self.schedule.alphas_cumprod[timesteps], 1.0).astype("float32")
        options = (eta > 0.0, self._clip_range(clip_denoised))
        chunks = list(range(0, shape[0], batch_size))
        progress = keras.utils.Progbar(num_steps * len(chunks), unit_name="step") if show_progress else None
        results = []
        for chunk_index, begin in enumerate(chunks):
            chunk = ops.convert_to_tensor(degraded[begin : begin + batch_size], "float32")
            seed_of_chunk = chunk_seed(seed, chunk_index)
            arguments = (times, alpha_bars, eta, seed_of_chunk, options)
            if return_trajectory or callback is not None or progress is not None:
                run = self._run_stepwise(chunk, arguments, return_trajectory, callback, progress, chunk_index * num_steps)
            else:
                run = self._compiled_function("fused", *options)(
                    chunk, self._tensor(times[:-1]), self._tensor(alpha_bars), self._tensor(eta), self._tensor(seed_of_chunk, "int32")
                )
                run = (ops.convert_to_numpy(run), None, None)
            results.append(run)

        restored = np.concatenate([r[0] for r in results], axis=0)
        if not return_trajectory:
            return restored
        trajectory = np.concatenate([r[1] for r in results], axis=1)
        estimates = np.concatenate([r[2] for r in results], axis=1)
        return SamplerOutput(restored, trajectory, estimates, times)

    def _run_stepwise(self, degraded, arguments, keep, callback, progress, offset):
        times, alpha_bars, eta, seed, options = arguments
        single = self._compiled_function("single", *options)
        seed_argument, eta_argument = self._tensor(seed, "int32"), self._tensor(eta)
        sample = step_noise(ops.shape(degraded), seed, 0)
        trajectory = [ops.convert_to_numpy(sample)] if keep else None
        estimates = [] if keep else None
        num_steps = len(times) - 1
        for index in range(num_steps):
            sample, estimate = single(
                sample, degraded, self._tensor(times[index]), self._tensor(alpha_bars[index]),
                self._tensor(alpha_bars[index + 1]), eta_argument, seed_argument, self._tensor(index + 1, "int32"),
            )
            if keep:
                trajectory.append(ops.convert_to_numpy(sample))
                estimates.append(ops.convert_to_numpy(estimate))
            if callback is not None:
                callback(SamplerStep(index, num_steps, float(times[index]), float(times[index + 1]), sample, estimate))
            if progress is not None:
                progress.update(offset + index + 1)
        restored = ops.convert_to_numpy(sample)
        if not keep:
            return restored, None, None
        return restored, np.stack(trajectory), np.stack(estimates)
