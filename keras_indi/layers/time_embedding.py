"""Embeddings of the continuous InDI time t in [0, 1]."""

import math

import keras
from keras import ops

from keras_indi.api_export import keras_indi_export
from keras_indi.utils.validation import check_number, check_positive_int
from keras_indi.utils.layer_inputs import keep_input_dtypes


def _as_time_column(t):
    """(batch,) or (batch, 1) time -> float32 (batch, 1)."""
    t = ops.cast(t, "float32")
    if len(t.shape) == 1:
        t = ops.expand_dims(t, -1)
    elif len(t.shape) != 2 or (t.shape[-1] is not None and t.shape[-1] != 1):
        raise ValueError(
            f"The time input must have shape (batch,) or (batch, 1). Received shape {t.shape}."
        )
    return t


@keras_indi_export("keras_indi.layers.SinusoidalTimeEmbedding")
class SinusoidalTimeEmbedding(keras.layers.Layer):
    """Transformer-style sinusoidal embedding of a continuous time ``t`` in [0, 1].

    ``t`` is multiplied by `scale` (1000 by default, so the frequencies resolve the small time
    steps of a 100-step sampler) and embedded as ``[sin(scale t w_k), cos(scale t w_k)]`` with
    geometrically spaced frequencies ``w_k = max_period ** (-k / (dim / 2))``. The arithmetic
    runs in float32 even under mixed precision; the output is cast to the compute dtype.

    Args:
        dim: even embedding size.
        max_period: the longest period of the sinusoids.
        scale: multiplier applied to t before embedding.

    Example:

    >>> embedding = SinusoidalTimeEmbedding(8)
    >>> tuple(embedding(keras.ops.array([0.0, 0.5, 1.0])).shape)
    (3, 8)
    """

    def __init__(self, dim, max_period=10000.0, scale=1000.0, **kwargs):
        super().__init__(**kwargs)
        self.dim = check_positive_int(dim, "dim", minimum=2)
        if self.dim % 2:
            raise ValueError(f"`dim` must be even. Received dim={dim}.")
        self.max_period = check_number(max_period, "max_period", minimum=1.0)
        self.scale = check_number(scale, "scale", minimum=0.0, exclusive_minimum=True)
        keep_input_dtypes(self)  # t stays float32 under mixed precision

    def call(self, t):
        t = _as_time_column(t) * self.scale
        half = self.dim // 2
        exponents = ops.arange(half, dtype="float32") / float(half)
        frequencies = ops.exp(-math.log(self.max_period) * exponents)
        angles = t * ops.expand_dims(frequencies, 0)
        embedding = ops.concatenate([ops.sin(angles), ops.cos(angles)], axis=-1)
        return ops.cast(embedding, self.compute_dtype)

    def compute_output_shape(self, input_shape):
        return (input_shape[0], self.dim)

    def get_config(self):
        config = super().get_config()
        config.update({"dim": self.dim, "max_period": self.max_period, "scale": self.scale})
        return config


@keras_indi_export("keras_indi.layers.FourierTimeEmbedding")
class FourierTimeEmbedding(keras.layers.Layer):
    """Gaussian random Fourier features of t: ``[sin(2 pi t B), cos(2 pi t B)]``.

    The frequencies ``B ~ N(0, std^2)`` are drawn once from `seed` and stored as a
    non-trainable weight, so saved models keep them.

    Args:
        dim: even embedding size.
        std: standard deviation of the frequencies.
        seed: int seed for the frequencies.

    Example:

    >>> embedding = FourierTimeEmbedding(16, seed=0)
    >>> tuple(embedding(keras.ops.array([0.25, 0.75])).shape)
    (2, 16)
    """

    def __init__(self, dim, std=16.0, seed=0, **kwargs):
        super().__init__(**kwargs)
        self.dim = check_positive_int(dim, "dim", minimum=2)
        if self.dim % 2:
            raise ValueError(f"`dim` must be even. Received dim={dim}.")
        self.std = check_number(std, "std", minimum=0.0, exclusive_minimum=True)
        self.seed = seed
        keep_input_dtypes(self)  # t stays float32 under mixed precision

    def build(self, input_shape):
        self.frequencies = self.add_weight(
            name="frequencies",
            shape=(1, self.dim // 2),
            initializer=keras.initializers.RandomNormal(stddev=self.std, seed=self.seed),
            trainable=False,
            dtype="float32",
        )

    def call(self, t):
        t = _as_time_column(t)
        angles = 2.0 * math.pi * t * ops.cast(self.frequencies, "float32")
        embedding = ops.concatenate([ops.sin(angles), ops.cos(angles)], axis=-1)
        return ops.cast(embedding, self.compute_dtype)

    def compute_output_shape(self, input_shape):
        return (input_shape[0], self.dim)

    def get_config(self):
        config = super().get_config()
        config.update({"dim": self.dim, "std": self.std, "seed": self.seed})
        return config
