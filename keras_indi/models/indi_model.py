"""`InDIModel`: a Keras model whose training step is the InDI objective."""

import warnings

import keras
import numpy as np
from keras import ops

from keras_indi.api_export import keras_indi_export
from keras_indi.backend.distribution import replica_batch
from keras_indi.layers.forward_process import interpolate
from keras_indi.models.base import RestorationModel
from keras_indi.schedules import get_noise_schedule, get_time_distribution


@keras_indi_export("keras_indi.InDIModel")
class InDIModel(RestorationModel):
    """Inversion by Direct Iteration (Delbracio & Milanfar, TMLR 2023) around any network.

    `network` is any Keras model called as ``network([x_t, t])`` with ``x_t`` a batch of
    inputs and ``t`` a ``(batch,)`` float time in [0, 1] (t = 0 clean, t = 1 degraded); it
    predicts the clean input. Each training step samples ``t ~ p(t)`` and
    ``eta ~ N(0, I)``, builds ``x_t = (1 - t) x + t y + t eps_t eta`` from the clean ``x``
    and degraded ``y`` and regresses ``network([x_t, t])`` onto ``x`` with an L1 or L2 loss:
    all of it in one method, `objective`, that Keras' own trainer runs (`RestorationModel`).
    Restoration then walks from ``y`` to a clean image in small steps: `restore`.

    Training data, under ``fit()`` on every backend (NumPy arrays, `keras.utils.PyDataset`,
    generators or ``tf.data``):

    * pairs: ``fit(degraded, clean)`` or a dataset of ``(degraded, clean)`` tuples;
    * clean images only: ``fit(clean)`` with a `degradation` (a Keras layer or a callable
      on backend tensors) applied inside the step. To support a new degradation, subclass and
      override `degrade`.

    Calling the model: ``model(degraded)`` is the one-shot regression ``F(y, 1)`` (what
    ``predict`` returns); ``model([x_t, t])`` is the network itself.

    Mixed precision (``mixed_bfloat16``, and ``mixed_float16`` with automatic loss scaling)
    applies to the network; times, noise and the interpolation stay in float32.

    Args:
        network: the time-conditional network, e.g. `keras_indi.networks.TimeConditionalUNet`.
        time_distribution: p(t): ``"mass_at_one"`` (default: t = 1 with probability 1/2,
            else uniform; measured better than uniform at equal budget, RESULTS.md, as the
            paper reports), ``"uniform"``, ``"power"``,
            ``"regression"`` (t = 1 only: the one-step regression baseline), a
            `keras_indi.schedules.TimeDistribution` or a callable ``(batch_size, seed) -> t``.
        noise_schedule: eps_t: a float (constant epsilon; default 0.01 for [-1, 1] images,
            0 disables noise), ``"constant"``, ``"brownian"`` or a
            `keras_indi.schedules.NoiseSchedule`.
        loss: ``"l1"`` (default, as in the paper's re-implementations) or ``"l2"``; used when
            ``compile`` gets no `loss`.
        degradation: optional Keras layer or callable applied to clean batches inside the step
            when the data has no degraded images.
        value_range: the range of the clean images, default (-1, 1). NumPy data and
            eager tensors are checked against it, to catch scale mistakes (uint8 or [0, 255]
            data) with a clear error: clean targets must lie in it (5% tolerance); degraded
            inputs (noisy images, pure noise for generation) may exceed it, up to 8
            half-widths from its centre (|x| <= 8 for (-1, 1)). None disables the checks.
            Nothing is clipped to it.
        seed: int seed of the generator that draws t, the noise and the degradation's
            randomness. Two models with the same seed, weights and data train identically.

    Example:

    >>> import numpy as np
    >>> from keras_indi.networks import TimeConditionalMLP
    >>> model = InDIModel(TimeConditionalMLP(features=2, hidden_units=(32,)), seed=0)
    >>> model.compile(optimizer="adam")
    >>> clean = np.random.default_rng(0).choice([-1.0, 1.0], size=(64, 2)).astype("float32")
    >>> degraded = clean + np.random.default_rng(1).normal(size=(64, 2)).astype("float32")
    >>> history = model.fit(degraded, clean, epochs=1, verbose=0)
    >>> model.restore(degraded[:4], num_steps=10, seed=0, progress_bar=False).shape
    (4, 2)
    """

    loss_prefix = "indi"
    network_inputs = "[x_t, t]"
    same_shape_hint = (
        "(InDI interpolates between them). Received {} and {}. For super-resolution, upsample the "
        "low-resolution input to the target size first."
    )

    def __init__(
        self,
        network,
        time_distribution="mass_at_one",
        noise_schedule=0.01,
        loss="l1",
        degradation=None,
        value_range=(-1.0, 1.0),
        seed=None,
        **kwargs,
    ):
        super().__init__(network, loss, value_range, seed, seed_name="indi_seed_generator", **kwargs)
        if isinstance(degradation, dict):
            degradation = keras.saving.deserialize_keras_object(degradation)
        from keras_indi.degradations.base import Degradation

        if isinstance(degradation, Degradation):
            if not degradation.supports_layer:
                raise ValueError(
                    f"{type(degradation).__name__} runs on NumPy only and cannot be applied inside "
                    "the training step. Apply it in the data pipeline instead "
                    "(`keras_indi.datasets.build_task_datasets`), or use a degradation with a "
                    "layer form."
                )
            degradation = degradation.as_layer()
        if degradation is not None and not callable(degradation):
            raise ValueError(f"`degradation` must be a Keras layer or a callable. Received {degradation!r}.")
        self.time_distribution = get_time_distribution(time_distribution)
        self.noise_schedule = get_noise_schedule(noise_schedule)
        self.degradation = degradation

    # -- the InDI objective ---------------------------------------------------------------
    def objective(self, clean, degraded=None, training=False):
        """The InDI training objective (the paper's eq. 7, with the noise of its section 3.3).

        For a batch of clean images ``x`` and their degraded versions ``y``::

            t   ~ p(t)                                   (sample_time)
            eta ~ N(0, I)
            x_t = (1 - t) x + t y + eps_t t eta          (forward_process)
            loss = || F(x_t, t) - x ||                   (compute_loss: L1 or L2)

        Returns ``{"prediction": F(x_t, t), "target": x}``; Keras' trainer takes the loss
        between them, its gradients and the update (see `keras_indi.models.base`). Without
        `degraded` (clean-only data), ``y = degrade(x)``.
        """
        clean = ops.cast(clean, "float32")
        if degraded is None:
            degraded = self.degrade(clean, training=training)
        degraded = ops.cast(degraded, "float32")
        # Several tf.distribute replicas draw for the global batch and keep their rows.
        draw_size, take = replica_batch(ops.shape(clean)[0])
        t = take(self.sample_time(draw_size))
        noise = None
        if not self.noise_schedule.is_zero:
            shape = (draw_size,) + tuple(ops.shape(clean)[1:])
            noise = take(keras.random.normal(shape, dtype="float32", seed=self.seed_generator))
        x_t = self.forward_process(clean, degraded, t, noise)
        prediction = ops.cast(self.network([x_t, t], training=training), "float32")
        return {"prediction": prediction, "target": clean}

    def degrade(self, clean, training=False):
        """Produce degraded inputs from a batch of clean ones, inside the training step.

        Called when the training data has clean images only. The default applies the
        `degradation` given to the constructor. Override it to train on a new degradation:

        >>> class InpaintingInDI(InDIModel):  # doctest: +SKIP
        ...     def degrade(self, clean, training=False):
        ...         mask = keras.random.uniform(keras.ops.shape(clean), seed=self.seed_generator) > 0.5
        ...         return keras.ops.where(mask, clean, -1.0)

        Use ``seed=self.seed_generator`` for randomness so that it is seeded and differs at
        every step on every backend.
        """
        if self.degradation is None:
            raise ValueError(
                "The training data has clean images only (no degraded inputs) and the model has "
                "no `degradation`. Pass `(degraded, clean)` pairs to fit(), give "
                "`InDIModel(..., degradation=...)`, or subclass InDIModel and override `degrade`."
            )
        if isinstance(self.degradation, keras.layers.Layer):
            return self.degradation(clean, training=training)
        return self.degradation(clean)

    def sample_time(self, batch_size):
        """Draw training times t ~ p(t), shape (batch_size,), float32."""
        return ops.cast(self.time_distribution.sample(batch_size, self.seed_generator), "float32")

    def forward_process(self, clean, degraded, t, noise):
        """x_t = (1 - t) x + t y + sigma(t) eta (float32)."""
        return interpolate(clean, degraded, t, noise, self.noise_schedule)

    def regress(self, degraded, training=False):
        """One-shot regression ``F(y, 1)``: `model(degraded)` and `predict`."""
        t = ops.ones((ops.shape(degraded)[0],), dtype="float32")
        return ops.cast(self.network([degraded, t], training=training), "float32")

    def fit(self, x=None, y=None, *args, validation_data=None, **kwargs):
        """`keras.Model.fit`, after checking NumPy data: same shapes, float dtype, no NaN,
        clean targets in `value_range` (degraded inputs may exceed it: see `value_range`).
        ``x`` holds degraded inputs and ``y`` clean targets, or ``x``
        holds clean images only when the model has a `degradation`."""
        self._check_fit_data(x, y, validation_data)
        self._warn_ragged_last_batch(x, args, kwargs)
        return super().fit(x, y, *args, validation_data=validation_data, **kwargs)

    def _warn_ragged_last_batch(self, x, args, kwargs):
        """A short last batch of array data compiles the train step a second time (a new input
        shape under XLA / tf.function): seconds on a CPU, tens of seconds for a large U-Net on
        a GPU. Say so once, with the fix; the data are used as given."""
        if args or not isinstance(x, np.ndarray) or self.run_eagerly or kwargs.get("steps_per_epoch"):
            return
        batch_size = kwargs.get("batch_size") or 32
        count = x.shape[0]
        if count > batch_size and count % batch_size:
            warnings.warn(
                f"fit() got {count} examples with batch_size={batch_size}: the last batch has "
                f"{count % batch_size}, a new input shape that compiles the training step again. Use a "
                f"number of examples divisible by batch_size (e.g. x[:{count - count % batch_size}]) "
                "or a pipeline with full batches (keras_indi.datasets.build_task_datasets).",
                stacklevel=3,
            )

    # -- restoration ------------------------------------------------------------------------
    def make_sampler(self):
        """The `InDISampler` of this model (`sampler`; compiled loops cached)."""
        from keras_indi.samplers.indi_sampler import InDISampler

        return InDISampler(self)

    def restore(self, degraded, num_steps=10, seed=None, **kwargs):
        """Restore `degraded` in `num_steps` InDI steps; see `InDISampler.__call__`.

        ``num_steps=1`` is one-shot regression; more steps trade PSNR for sharpness.
        """
        return self.sampler(degraded, num_steps=num_steps, seed=seed, **kwargs)

    # -- presets ----------------------------------------------------------------------------
    @classmethod
    def from_preset(cls, name):
        """A trained model that ships with keras-indi, loaded offline.

        ``keras_indi.list_presets()`` lists the names with their task, degradation, training
        budget and held-out metrics; every restoration preset has a ``<name>_regression`` twin
        trained at the same cost as a one-step regressor.

        >>> model = InDIModel.from_preset("denoising")  # doctest: +SKIP
        >>> restored = model.restore(noisy_images, num_steps=20, seed=0)  # doctest: +SKIP
        """
        from keras_indi.presets import load_preset

        model = load_preset(name)
        if not isinstance(model, cls):
            raise ValueError(f"Preset {name!r} is a {type(model).__name__}, not a {cls.__name__}.")
        return model

    # -- serialization ----------------------------------------------------------------------
    def get_config(self):
        config = {
            **self.base_config(),
            "time_distribution": keras.saving.serialize_keras_object(self.time_distribution),
            "noise_schedule": keras.saving.serialize_keras_object(self.noise_schedule),
            "degradation": None,
        }
        if self.degradation is not None:
            try:
                config["degradation"] = keras.saving.serialize_keras_object(self.degradation)
            except Exception as error:  # a plain lambda, for example
                raise ValueError(
                    f"The model's degradation {self.degradation!r} cannot be serialized ({error}). "
                    "Use a Keras layer or a function registered with "
                    "`keras.saving.register_keras_serializable()`."
                ) from error
        return config

    @classmethod
    def from_config(cls, config):
        config = dict(config)
        for key in ("network", "time_distribution", "noise_schedule", "degradation"):
            if isinstance(config.get(key), dict):
                config[key] = keras.saving.deserialize_keras_object(config[key])
        return cls(**config)
