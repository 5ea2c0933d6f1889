"""A small time-conditional MLP for vector data (the 2D toy example)."""

import keras
from keras import ops

from keras_indi.api_export import keras_indi_export
from keras_indi.backend.compilation_cache import shared_initializer_programs
from keras_indi.layers.time_embedding import SinusoidalTimeEmbedding
from keras_indi.networks.parameterization import (
    DEFAULT_PARAMETERIZATION,
    ParameterizedNetwork,
    check_parameterization,
)
from keras_indi.utils.precision import resolve_dtype
from keras_indi.utils.validation import check_number, check_positive_int
from keras_indi.utils.layer_inputs import keep_input_dtypes


@keras_indi_export("keras_indi.networks.TimeConditionalMLP")
class TimeConditionalMLP(ParameterizedNetwork):
    """``F([x_t, t]) -> x_hat`` for vectors: ``x_t`` of shape (batch, features), t (batch,).

    Each hidden layer receives the previous activations plus a projection of the time
    embedding (additive conditioning), with SiLU activations. Under a mixed-precision policy t
    is embedded in float32 and the outputs are float32.

    Args:
        features: size of the input and output vectors.
        hidden_units: width of each hidden layer.
        time_embedding_dim: size of the sinusoidal time embedding.
        dropout: dropout rate after each hidden layer.
        time_scale: multiplier of t inside the sinusoidal embedding.
        dtype: the dtype policy, e.g. ``"mixed_bfloat16"``; ``"auto"`` picks
            ``"mixed_bfloat16"`` on GPUs with bfloat16 tensor cores and TPUs and ``"float32"``
            elsewhere (see `keras_indi.utils.precision.default_precision`; the saved config
            holds the policy chosen). None (default) uses the Keras global policy.
        parameterization: ``"residual"`` (``"auto"``, the default), ``"preconditioned"`` or
            ``"x"``: how the output becomes the clean estimate (see
            `keras_indi.networks.parameterization` and `TimeConditionalUNet`).
        data_std: standard deviation of clean vectors (``"preconditioned"`` only).
        degradation_std: standard deviation of ``y - x`` (``"preconditioned"`` only).

    Example:

    >>> network = TimeConditionalMLP(features=2, hidden_units=(32, 32))
    >>> tuple(network([keras.ops.zeros((5, 2)), keras.ops.ones((5,))]).shape)
    (5, 2)
    """

    def __init__(
        self,
        features=2,
        hidden_units=(128, 128, 128),
        time_embedding_dim=32,
        dropout=0.0,
        time_scale=100.0,
        dtype=None,
        parameterization="auto",
        data_std=0.5,
        degradation_std=0.5,
        **kwargs,
    ):
        # "auto" becomes a concrete policy here, so get_config() saves what was used.
        super().__init__(dtype=resolve_dtype(dtype), **kwargs)
        keep_input_dtypes(self)  # t stays float32 under mixed precision
        self.features = check_positive_int(features, "features")
        if isinstance(hidden_units, int) or not hidden_units:
            raise ValueError(f"`hidden_units` must be a non-empty list of ints. Received {hidden_units!r}.")
        self.hidden_units = tuple(check_positive_int(u, "hidden_units") for u in hidden_units)
        self.time_embedding_dim = check_positive_int(time_embedding_dim, "time_embedding_dim", minimum=2)
        self.dropout = check_number(dropout, "dropout", minimum=0.0, maximum=1.0)
        self.time_scale = check_number(time_scale, "time_scale", minimum=0.0, exclusive_minimum=True)
        if parameterization == "auto":
            parameterization = DEFAULT_PARAMETERIZATION
        self.parameterization, self.data_std, self.degradation_std = check_parameterization(
            parameterization, data_std, degradation_std, self.features, self.features, "TimeConditionalMLP"
        )
        policy = self.dtype_policy
        self.time_embedding = SinusoidalTimeEmbedding(
            self.time_embedding_dim, scale=self.time_scale, dtype=policy, name="time_embedding"
        )
        self.input_layer = keras.layers.Dense(self.hidden_units[0], dtype=policy, name="input_dense")
        self.hidden_layers = []
        self.time_layers = []
        for index, units in enumerate(self.hidden_units):
            self.time_layers.append(keras.layers.Dense(units, dtype=policy, name=f"time_dense_{index}"))
            self.hidden_layers.append(keras.layers.Dense(units, dtype=policy, name=f"dense_{index}"))
        self.dropout_layer = keras.layers.Dropout(self.dropout, dtype=policy)
        # With a skip connection the output layer starts at zero: F(x_t, t) = c_skip x_t at first.
        self.output_layer = keras.layers.Dense(
            self.features,
            kernel_initializer="zeros" if self.parameterization != "x" else "glorot_uniform",
            dtype=policy,
            name="output_dense",
        )

    def build(self, input_shape):
        # A forward pass on a zero vector creates every weight with its real shape (on JAX
        # from shared random-number programs: `shared_initializer_programs`).
        with shared_initializer_programs():
            self.call([ops.zeros((1, self.features)), ops.zeros((1,))])
        self.built = True

    def call(self, inputs, training=None):
        if not isinstance(inputs, (list, tuple)) or len(inputs) != 2:
            raise ValueError("TimeConditionalMLP is called on `[x_t, t]`.")
        vectors, t = inputs
        if len(vectors.shape) != 2:
            raise ValueError(
                f"`x_t` must have shape (batch, features). Received shape {tuple(vectors.shape)}."
            )
        if vectors.shape[-1] is not None and vectors.shape[-1] != self.features:
            raise ValueError(
                f"`x_t` has {vectors.shape[-1]} features but the network was built with "
                f"features={self.features}."
            )
        scaled, finish = self._parameterize(vectors, t)
        embedding = self.time_embedding(t)
        hidden = self.input_layer(scaled)
        for dense, time_dense in zip(self.hidden_layers, self.time_layers):
            hidden = ops.silu(dense(hidden) + time_dense(embedding))
            hidden = self.dropout_layer(hidden, training=training)
        return finish(self.output_layer(hidden))

    @property
    def input_layout(self):
        """``(rank, channels, description)`` of the vectors this network takes (for input checks)."""
        return 2, self.features, "(batch, features)"

    def compute_output_shape(self, input_shape):
        return (input_shape[0][0], self.features)

    def _architecture_config(self):
        return {
            "features": self.features,
            "hidden_units": list(self.hidden_units),
            "time_embedding_dim": self.time_embedding_dim,
            "dropout": self.dropout,
            "time_scale": self.time_scale,
        }
