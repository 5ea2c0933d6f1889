"""`ConditionalDDPM`: the paper's "vanilla conditional DDPM" baseline, with its beta schedules.

InDI (Delbracio & Milanfar, TMLR 2023) compares against a conditional DDPM that uses the same
U-Net: the noisy image is concatenated on channels with the degraded input and the noise level
is the network's extra input. This module gives that baseline with the same Keras conventions
as `keras_indi.InDIModel` (``fit`` on every backend, mixed precision, ``.keras`` files,
``restore``), so the two can be compared at an equal number of network evaluations.
"""

import math

import keras
import numpy as np
from keras import ops

from keras_indi.api_export import keras_indi_export
from keras_indi.ddpm_schedule import (  # noqa: F401 (re-exported: the step maths' former home)
    _SCHEDULE_KINDS,
    _PREDICTIONS,
    _check_clip_range,
    _as_column,
    DDPMSchedule,
    get_ddpm_schedule,
    check_prediction_channels,
    split_prediction,
    ddim_step,
)
from keras_indi.models.base import RestorationModel
from keras_indi.backend.distribution import replica_batch
from keras_indi.utils.validation import (
    check_choice,
    check_number,
    check_positive_int,
)

_PAIRS_ONLY = (
    "ConditionalDDPM trains on (degraded, clean) pairs: pass `fit(degraded, clean)` "
    "or a dataset of (degraded, clean) tuples."
)


@keras_indi_export(("keras_indi.ConditionalDDPM", "keras_indi.models.ConditionalDDPM"))
class ConditionalDDPM(RestorationModel):
    """A conditional DDPM (Ho et al. 2020; Saharia et al. 2021): the InDI paper's baseline.

    `network` is called as ``network([x_input, t])`` where ``x_input`` is the noisy image
    ``x_n`` concatenated on the last (channel) axis with the degraded image ``y``, so a U-Net
    takes ``in_channels = 2 * C`` and predicts ``out_channels = C``; ``t = (n + 1) / T`` is the
    noise level as a float in (0, 1] (see `DDPMSchedule`), the same time input InDI's networks
    take. Each training step draws ``n ~ U{0, ..., T - 1}`` and ``eps ~ N(0, I)``, builds
    ``x_n = sqrt(alpha_bar_n) x + sqrt(1 - alpha_bar_n) eps`` and regresses the network onto
    ``eps`` (``prediction="epsilon"``, the DDPM objective) or onto ``x`` (``"x0"``) with an L2
    (default) or L1 loss. `restore` samples with DDIM or ancestral DDPM (`DDPMSampler`), one
    network evaluation per step, so it compares with InDI at equal NFE, e.g. as a baseline of
    ``keras_indi.evaluate_tradeoff(indi_model, ..., baselines={"ddpm@20": (ddpm, 20)})``.

    Training data: ``fit(degraded, clean)`` or a dataset of ``(degraded, clean)`` pairs (NumPy,
    `keras.utils.PyDataset`, generators, ``tf.data``), on every backend. Compiled metrics
    compare the network's prediction with its target (the noise for ``"epsilon"``).

    Calling the model: ``model(degraded)`` (what ``predict`` returns) is a cheap,
    deterministic one-evaluation estimate: the clean estimate at the noisiest step from
    ``x_{T-1} = 0``, clipped to `clip_range`. Use `restore` for real sampling.
    ``model([x_input, t])`` is the network itself.

    Mixed precision applies to the network; the schedule, noise and mixing stay in float32.

    Args:
        network: e.g. ``TimeConditionalUNet(in_channels=2 * C, out_channels=C)``.
        schedule: ``"linear"`` (default), ``"cosine"`` or a `DDPMSchedule`.
        num_timesteps: T for a string `schedule` (default 1000).
        prediction: ``"epsilon"`` (default) or ``"x0"``.
        loss: ``"l2"`` (default, the DDPM objective) or ``"l1"``.
        value_range: the range of the clean images, default (-1, 1), checked on NumPy
            inputs to catch scale mistakes (uint8 or [0, 255] data): clean targets must lie in
            it, degraded inputs may exceed it (noisy inputs; up to 8 half-widths from its
            centre). None disables the checks.
        clip_range: ``(low, high)`` the clean estimates are clipped to when sampling (and in
            ``model(degraded)``); None never clips. The default, ``"value_range"``, clips to
            `value_range` (None when it is None), as earlier versions did.
        seed: int seed of the generator that draws the steps and the noise in training.

    Example:

    >>> from keras_indi.networks import TimeConditionalUNet
    >>> network = TimeConditionalUNet(widths=(8,), blocks_per_level=1, in_channels=2, out_channels=1)
    >>> model = ConditionalDDPM(network, schedule="cosine", num_timesteps=50, seed=0)
    >>> model.compile(optimizer="adam")
    >>> clean = np.random.default_rng(0).uniform(-1, 1, (8, 8, 8, 1)).astype("float32")
    >>> degraded = 0.5 * clean
    >>> history = model.fit(degraded, clean, epochs=1, batch_size=4, verbose=0)
    >>> model.restore(degraded[:2], num_steps=5, method="ddim", seed=0, progress_bar=False).shape
    (2, 8, 8, 1)
    """

    loss_prefix = "ddpm"
    network_inputs = "[x_input, t]"
    inputs_per_call = 2
    same_shape_hint = (
        "(the network sees them concatenated on channels). Received {} and {}. For super-resolution, "
        "upsample the input to the target size first."
    )

    def __init__(
        self,
        network,
        schedule="linear",
        num_timesteps=None,
        prediction="epsilon",
        loss="l2",
        value_range=(-1.0, 1.0),
        seed=None,
        clip_range="value_range",
        **kwargs,
    ):
        super().__init__(network, loss, value_range, seed, seed_name="ddpm_seed_generator", **kwargs)
        if isinstance(clip_range, str) and clip_range == "value_range":
            clip_range = self.value_range
        elif clip_range is not None:
            clip_range = _check_clip_range(clip_range)
        if num_timesteps is not None:
            num_timesteps = check_positive_int(num_timesteps, "num_timesteps")
        self.schedule = get_ddpm_schedule(schedule, num_timesteps)
        self.prediction = check_choice(prediction, "prediction", _PREDICTIONS)
        self.clip_range = clip_range

    @property
    def num_timesteps(self):
        return self.schedule.num_timesteps

    # -- the DDPM objective ---------------------------------------------------------------
    def alpha_bar(self, steps):
        """``alpha_bar_n`` for integer steps `steps` (any shape), float32."""
        table = ops.convert_to_tensor(self.schedule.alphas_cumprod.astype("float32"))
        return ops.take(table, ops.cast(steps, "int32"), axis=0)

    def step_time(self, steps):
        """The network's time input ``t = (n + 1) / T`` for integer steps, float32."""
        return (ops.cast(steps, "float32") + 1.0) / float(self.num_timesteps)

    def forward_process(self, clean, steps, noise):
        """``x_n = sqrt(alpha_bar_n) x_0 + sqrt(1 - alpha_bar_n) eps`` (float32), steps (batch,)."""
        clean = ops.cast(clean, "float32")
        alpha_bar = _as_column(self.alpha_bar(steps), clean)
        return ops.sqrt(alpha_bar) * clean + ops.sqrt(1.0 - alpha_bar) * ops.cast(noise, "float32")

    def network_input(self, sample, degraded):
        """The network's image input: ``concatenate([x_n, y], axis=-1)``."""
        return ops.concatenate([ops.cast(sample, "float32"), ops.cast(degraded, "float32")], axis=-1)

    def objective(self, clean, degraded=None, training=False):
        """The DDPM training objective (Ho et al. 2020), conditioned on the degraded image::

            n   ~ U{0, ..., T - 1},  eps ~ N(0, I)
            x_n = sqrt(alpha_bar_n) x + sqrt(1 - alpha_bar_n) eps      (forward_process)
            loss = || F([x_n, y], (n + 1) / T) - eps ||                  (or - x for "x0")

        Returns ``{"prediction", "target"}`` (float32); Keras' trainer does the rest
        (see `keras_indi.models.base`).
        """
        if degraded is None:
            raise ValueError(_PAIRS_ONLY)
        clean = ops.cast(clean, "float32")
        draw_size, take = replica_batch(ops.shape(clean)[0])  # multi-replica TF: see replica_batch
        steps = take(keras.random.randint((draw_size,), 0, self.num_timesteps, dtype="int32", seed=self.seed_generator))
        shape = (draw_size,) + tuple(ops.shape(clean)[1:])
        noise = take(keras.random.normal(shape, dtype="float32", seed=self.seed_generator))
        sample = self.forward_process(clean, steps, noise)
        inputs = [self.network_input(sample, degraded), self.step_time(steps)]
        prediction = check_prediction_channels(ops.cast(self.network(inputs, training=training), "float32"), clean)
        return {"prediction": prediction, "target": noise if self.prediction == "epsilon" else clean}

    def regress(self, degraded, training=False):
        """A cheap, deterministic estimate: the clean estimate at the noisiest step from
        ``x_{T-1} = 0``, clipped to `clip_range` (``model(degraded)``, ``predict``)."""
        last = self.num_timesteps - 1
        steps = ops.full((ops.shape(degraded)[0],), last, dtype="int32")
        sample = ops.zeros_like(degraded)
        output = self.network([self.network_input(sample, degraded), self.step_time(steps)], training=training)
        output = check_prediction_channels(ops.cast(output, "float32"), sample)
        alpha_bar = float(self.schedule.alphas_cumprod[last])
        return split_prediction(output, sample, alpha_bar, self.prediction, self.clip_range)[1]

    def fit(self, x=None, y=None, *args, validation_data=None, **kwargs):
        """`keras.Model.fit` after checking NumPy data (float, finite, in `value_range`,
        same shapes). ``x`` holds degraded inputs and ``y`` the clean targets."""
        if isinstance(x, np.ndarray) and y is None:
            raise ValueError(_PAIRS_ONLY)
        self._check_fit_data(x, y, validation_data)
        return super().fit(x, y, *args, validation_data=validation_data, **kwargs)

    # -- restoration ------------------------------------------------------------------------
    def make_sampler(self):
        """The `DDPMSampler` of this model (`sampler`; compiled loops cached)."""
        from keras_indi.samplers.ddpm_sampler import DDPMSampler

        return DDPMSampler(self)

    def restore(self, degraded, num_steps=50, method="ddim", seed=None, **kwargs):
        """Restore `degraded` in `num_steps` network evaluations; see `DDPMSampler.__call__`.

        ``method="ddim"`` (deterministic with the default ``eta=0``) or ``"ddpm"`` (ancestral);
        any ``num_steps <= num_timesteps``.
        """
        return self.sampler(degraded, num_steps=num_steps, method=method, seed=seed, **kwargs)

    # -- serialization ----------------------------------------------------------------------
    def get_config(self):
        # `keras.Model.from_config` calls ``cls(**config)``; `__init__` deserializes the
        # network and the schedule.
        return {
            **self.base_config(),
            "schedule": keras.saving.serialize_keras_object(self.schedule),
            "prediction": self.prediction,
            "clip_range": None if self.clip_range is None else list(self.clip_range),
        }
