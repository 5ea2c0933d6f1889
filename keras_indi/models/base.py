"""`RestorationModel`: how keras-indi's models plug their training objective into Keras.

A model (`InDIModel`, `ConditionalDDPM`, or your own subclass) writes its training objective
in one method, ``objective(clean, degraded, training)``: draw what the step needs, build the
network's input, and return ``{"prediction": ..., "target": ...}``. Everything else is
Keras' own trainer, through public hooks only:

1. `train_step` / `test_step` turn a batch, whatever its form (``(degraded, clean)`` pairs,
   clean images only, an ``{"degraded", "clean"}`` dict), into ``({"degraded", "clean"},
   clean)`` (`objective_inputs`) and hand it to the backend's ``train_step``;
2. the trainer calls the model on that dict: `call` runs `objective`;
3. `compute_loss` / `compute_metrics` compare ``prediction`` with ``target`` using the
   compiled loss (by default the model's L1 or L2) and metrics;
4. the trainer computes gradients (with loss scaling under ``mixed_float16``) and updates.

So the same code trains on JAX, TensorFlow and torch, with mixed precision, EMA and
distribution, and a new degradation or objective means overriding one method.

Called directly, a model has two more meanings, both cheap: ``model(degraded)`` is the
one-evaluation estimate (`regress`, what ``predict`` returns) and ``model([x_t, t])`` the
network itself.
"""

import keras
import numpy as np
from keras import ops

from keras_indi.backend.compile import static_shapes
from keras_indi.backend.seeding import tensorflow_left_unimported
from keras_indi.backend.tensors import separate_variable_buffers
from keras_indi.utils.validation import (
    check_choice,
    check_finite_and_range,
    check_float_array,
    check_model_arguments,
    check_network_input,
)
from keras_indi.utils.layer_inputs import keep_input_dtypes

LOSSES = {"l1": keras.losses.MeanAbsoluteError, "l2": keras.losses.MeanSquaredError}


class RestorationModel(keras.Model):
    """Base class of the models: a network, a training `objective` and Keras' own trainer.

    Subclasses implement `objective`, `regress` and `make_sampler`, and set `loss_prefix`
    (the name of the default loss), `network_inputs` (what the network is called on, for
    messages), `inputs_per_call` (how many images the network sees concatenated on channels)
    and `same_shape_hint` (why `fit`'s inputs and targets share a shape, for messages).

    Args:
        network: the network, a Keras layer or model (or its serialized config).
        loss: ``"l1"`` or ``"l2"``: the default loss of `compile`.
        value_range: ``(low, high)`` of clean images, or None.
        seed: int seed of the model's `seed_generator`, or None.
        seed_name: name of the seed generator.
    """

    loss_prefix = "restoration"
    network_inputs = "[x_t, t]"
    inputs_per_call = 1
    same_shape_hint = "(the network takes them alike). Received {} and {}."

    def __init__(self, network, loss, value_range, seed, seed_name, **kwargs):
        super().__init__(**kwargs)
        network, value_range, seed = check_model_arguments(network, value_range, seed, f"network({self.network_inputs})")
        self.network = network
        self.loss_norm = check_choice(loss, "loss", LOSSES)
        self.value_range = value_range
        self.seed = seed
        self.seed_generator = keras.random.SeedGenerator(seed, name=seed_name)
        # Inputs keep their float32 dtype; the network casts to its own compute dtype.
        keep_input_dtypes(self)
        self._sampler = None

    # -- what a subclass defines --------------------------------------------------------------
    def objective(self, clean, degraded=None, training=False):
        """One draw of the training objective: ``{"prediction": ..., "target": ...}``."""
        raise NotImplementedError(f"{type(self).__name__} must implement `objective`.")

    def regress(self, degraded, training=False):
        """The one-evaluation estimate of the clean image (``model(degraded)``, ``predict``)."""
        raise NotImplementedError(f"{type(self).__name__} must implement `regress`.")

    def make_sampler(self):
        """The sampler behind `restore`."""
        raise NotImplementedError(f"{type(self).__name__} must implement `make_sampler`.")

    # -- input checks ---------------------------------------------------------------------------
    def _check_fit_data(self, x, y, validation_data):
        """Check the NumPy arrays of ``fit(x, y, validation_data=...)``: floating point, of the
        network's rank and channels, finite, in `value_range` (degraded inputs may exceed it:
        see `value_range`) and of one shape. ``x`` without ``y`` holds clean images."""
        pairs = [(x, y, "fit()")]
        if isinstance(validation_data, (tuple, list)) and len(validation_data) >= 2:
            pairs.append((validation_data[0], validation_data[1], "validation_data"))
        for degraded, clean, where in pairs:
            inputs = "clean images (x)" if clean is None else "degraded inputs (x)"
            for array, label, is_degraded in ((degraded, inputs, clean is not None), (clean, "clean targets (y)", False)):
                if isinstance(array, np.ndarray):
                    label = f"{where} {label}"
                    check_float_array(array, label, min_rank=2)
                    check_finite_and_range(array, label, self.value_range, degraded=is_degraded)
                    check_network_input(self.network, array.shape, label, inputs_per_call=self.inputs_per_call)
            if isinstance(degraded, np.ndarray) and isinstance(clean, np.ndarray) and degraded.shape != clean.shape:
                raise ValueError(
                    f"{where} degraded inputs and clean targets must have the same shape "
                    + self.same_shape_hint.format(degraded.shape, clean.shape)
                )

    def fit(self, *args, **kwargs):
        """`keras.Model.fit`; a model trained with an EMA optimizer can be fitted again; on
        torch with ``jit_compile=True``, compiled once per input size (`static_shapes`)."""
        with static_shapes(self):
            history = super().fit(*args, **kwargs)
        if getattr(getattr(self, "optimizer", None), "use_ema", False):
            separate_variable_buffers(self.trainable_variables)
        return history

    def evaluate(self, *args, **kwargs):
        """`keras.Model.evaluate` (on torch with ``jit_compile=True``: see `fit`)."""
        with static_shapes(self):
            return super().evaluate(*args, **kwargs)

    def save(self, *args, **kwargs):
        """`keras.Model.save`, without importing TensorFlow where nothing else has (Keras'
        serializer would, to look for TensorFlow types: seconds on a CPU; see
        `keras_indi.backend.seeding.tensorflow_left_unimported`)."""
        with tensorflow_left_unimported():
            return super().save(*args, **kwargs)

    # -- the objective through Keras' trainer -------------------------------------------------
    def call(self, inputs, training=False):
        if isinstance(inputs, dict):  # what train_step / test_step feed: the objective
            if "clean" not in inputs:
                raise ValueError(f"{type(self).__name__} objective inputs need a 'clean' entry.")
            return self.objective(inputs["clean"], inputs.get("degraded"), training=training)
        if isinstance(inputs, (list, tuple)):
            if len(inputs) != 2:
                raise ValueError(f"Call {type(self).__name__} on `degraded` or on `{self.network_inputs}`.")
            return ops.cast(self.network(list(inputs), training=training), "float32")
        return self.regress(ops.cast(inputs, "float32"), training=training)

    @staticmethod
    def objective_inputs(data):
        """A batch as the objective takes it: ``({"degraded", "clean"}, clean, sample_weight)``.

        ``(degraded, clean)`` pairs become ``{"degraded", "clean"}``; clean images alone (no
        targets) become ``{"clean"}`` (the model degrades them); a dict is kept.
        """
        x, y, sample_weight = keras.utils.unpack_x_y_sample_weight(data)
        if isinstance(x, dict):
            inputs = x
        elif y is None:
            inputs = {"clean": x}
        else:
            inputs = {"degraded": x, "clean": y}
        return keras.utils.pack_x_y_sample_weight(inputs, inputs["clean"], sample_weight)

    def train_step(self, *args):
        """Keras' training step on `objective_inputs`. ``args`` is ``(data,)`` on TensorFlow
        and torch, ``(state, data)`` on JAX."""
        *state, data = args
        return super().train_step(*state, self.objective_inputs(data))

    def test_step(self, *args):
        """Like `train_step` without the update: the objective's loss on held-out data."""
        *state, data = args
        return super().test_step(*state, self.objective_inputs(data))

    @staticmethod
    def _prediction_and_target(x, y, y_pred, sample_weight):
        if isinstance(y_pred, dict):
            y, y_pred = y_pred["target"], y_pred["prediction"]
        elif y is None:  # a plain prediction of data given without targets: clean images
            y = x["clean"] if isinstance(x, dict) else x
        if sample_weight is not None and len(sample_weight.shape) == 1 and len(y.shape) > 2:
            # Per-sample weights (batch,) against per-pixel losses (batch, height, width).
            sample_weight = ops.reshape(sample_weight, (-1,) + (1,) * (len(y.shape) - 2))
        return y, y_pred, sample_weight

    def compute_loss(self, x=None, y=None, y_pred=None, sample_weight=None, training=True):
        """The compiled loss between the objective's prediction and its target."""
        y, y_pred, sample_weight = self._prediction_and_target(x, y, y_pred, sample_weight)
        return super().compute_loss(x=x, y=y, y_pred=y_pred, sample_weight=sample_weight, training=training)

    def compute_metrics(self, x, y, y_pred, sample_weight=None):
        """Compiled metrics between the objective's prediction and its target."""
        y, y_pred, sample_weight = self._prediction_and_target(x, y, y_pred, sample_weight)
        return super().compute_metrics(x, y, y_pred, sample_weight=sample_weight)

    def compile(self, optimizer="adam", loss=None, **kwargs):
        """``compile`` with the model's own loss (its `loss` norm) unless `loss` is given."""
        if loss is None:
            loss = LOSSES[self.loss_norm](name=f"{self.loss_prefix}_{self.loss_norm}")
        super().compile(optimizer=optimizer, loss=loss, **kwargs)

    # -- restoration ----------------------------------------------------------------------------
    @property
    def sampler(self):
        """The sampler of this model (created on first use, compiled loops cached)."""
        if self._sampler is None:
            self._sampler = self.make_sampler()
        return self._sampler

    # -- serialization --------------------------------------------------------------------------
    def base_config(self):
        """The config entries every model shares (for `get_config`)."""
        return {
            "name": self.name,
            "trainable": self.trainable,
            "network": keras.saving.serialize_keras_object(self.network),
            "loss": self.loss_norm,
            "value_range": None if self.value_range is None else list(self.value_range),
            "seed": self.seed,
        }

    def get_build_config(self):
        return {"network": self.network.get_build_config()}

    def build_from_config(self, config):
        network_config = (config or {}).get("network")
        if network_config and not self.network.built:
            self.network.build_from_config(network_config)
        self.built = True

    def compile_from_config(self, config):
        """Re-compile a loaded `.keras` model with its saved optimizer, loss and metrics."""
        config = keras.saving.deserialize_keras_object(config)
        self.compile(**config)
        if getattr(self, "optimizer", None) is not None and self.built:
            self.optimizer.build(self.trainable_variables)
