"""Time-conditioned residual block, the workhorse of the U-Net."""

import math

import keras
from keras import ops

from keras_indi.api_export import keras_indi_export
from keras_indi.layers.convolution import Conv2D
from keras_indi.layers.normalization import GroupNormalization
from keras_indi.utils.validation import check_number, check_positive_int


def group_count(channels, max_groups=32):
    """The largest divisor of `channels` that is <= `max_groups` (GroupNorm needs one)."""
    for groups in range(min(max_groups, channels), 0, -1):
        if channels % groups == 0:
            return groups
    return 1


@keras_indi_export("keras_indi.layers.TimeResidualBlock")
class TimeResidualBlock(keras.layers.Layer):
    """Residual block conditioned on a time embedding (DDPM / "improved DDPM" style).

    ``h = conv(swish(norm(x)))``, then the time embedding modulates ``h``: with
    ``scale_shift=True`` (FiLM) ``h = norm(h) * (1 + scale) + shift``, otherwise
    ``h = norm(h + shift)``; then ``h = conv(dropout(swish(h)))`` and the output is
    ``skip(x) + h`` where `skip` is a 1x1 convolution when the channel count changes.

    Call it on ``[features, time_embedding]`` with features ``(batch, height, width, c)`` and
    embedding ``(batch, embedding_dim)``.

    Args:
        filters: output channels.
        dropout: dropout rate before the second convolution.
        groups: maximum number of GroupNorm groups.
        scale_shift: FiLM conditioning (True) or additive shift (False).

    Example:

    >>> block = TimeResidualBlock(16)
    >>> features = keras.ops.zeros((2, 9, 7, 8))
    >>> embedding = keras.ops.zeros((2, 32))
    >>> tuple(block([features, embedding]).shape)
    (2, 9, 7, 16)
    """

    def __init__(self, filters, dropout=0.0, groups=32, scale_shift=True, **kwargs):
        super().__init__(**kwargs)
        self.filters = check_positive_int(filters, "filters")
        self.dropout = check_number(dropout, "dropout", minimum=0.0, maximum=1.0)
        self.groups = check_positive_int(groups, "groups")
        self.scale_shift = bool(scale_shift)

    def build(self, input_shape):
        feature_shape, embedding_shape = input_shape
        in_channels = feature_shape[-1]
        if in_channels is None:
            raise ValueError("TimeResidualBlock needs a known channel dimension.")
        self.norm_in = GroupNormalization(
            group_count(in_channels, self.groups), epsilon=1e-5, dtype=self.dtype_policy, name="norm_in"
        )
        self.norm_in.build(feature_shape)
        self.conv_in = Conv2D(
            self.filters, 3, padding="same", dtype=self.dtype_policy, name="conv_in"
        )
        self.conv_in.build(feature_shape)
        hidden_shape = tuple(feature_shape[:-1]) + (self.filters,)
        self.time_projection = keras.layers.Dense(
            self.filters * (2 if self.scale_shift else 1), dtype=self.dtype_policy, name="time_projection"
        )
        self.time_projection.build(embedding_shape)
        self.norm_out = GroupNormalization(
            group_count(self.filters, self.groups), epsilon=1e-5, dtype=self.dtype_policy, name="norm_out"
        )
        self.norm_out.build(hidden_shape)
        self.dropout_layer = keras.layers.Dropout(self.dropout, dtype=self.dtype_policy)
        # Zero-initialized last convolution: each block starts as the identity.
        self.conv_out = Conv2D(
            self.filters, 3, padding="same", kernel_initializer="zeros",
            dtype=self.dtype_policy, name="conv_out",
        )
        self.conv_out.build(hidden_shape)
        if in_channels != self.filters:
            self.skip = Conv2D(self.filters, 1, dtype=self.dtype_policy, name="skip")
            self.skip.build(feature_shape)
        else:
            self.skip = None

    def call(self, inputs, training=None):
        features, embedding = inputs
        # `normalize`: the layer, modulation and SiLU in one computation (fused under torch.compile)
        hidden = self.conv_in(self.norm_in.normalize(features, silu=True))
        modulation = self.time_projection(ops.silu(embedding))
        modulation = ops.expand_dims(ops.expand_dims(modulation, 1), 1)
        if self.scale_shift:
            scale, shift = ops.split(modulation, 2, axis=-1)
            hidden = self.norm_out.normalize(hidden, scale, shift, silu=True)
        else:
            hidden = self.norm_out.normalize(hidden + modulation, silu=True)
        hidden = self.conv_out(self.dropout_layer(hidden, training=training))
        residual = features if self.skip is None else self.skip(features)
        return residual + hidden

    def compute_output_shape(self, input_shape):
        return tuple(input_shape[0][:-1]) + (self.filters,)

    def get_config(self):
        config = super().get_config()
        config.update(
            {
                "filters": self.filters,
                "dropout": self.dropout,
                "groups": self.groups,
                "scale_shift": self.scale_shift,
            }
        )
        return config
