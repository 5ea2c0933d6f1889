"""Self-attention over the pixels of a low-resolution feature map."""

import keras
from keras import ops

from keras_indi.api_export import keras_indi_export
from keras_indi.layers.normalization import GroupNormalization
from keras_indi.layers.residual_block import group_count
from keras_indi.utils.validation import check_positive_int


@keras_indi_export("keras_indi.layers.SpatialSelfAttention")
class SpatialSelfAttention(keras.layers.Layer):
    """Multi-head self-attention across all positions of an NHWC feature map, with a
    pre-GroupNorm and a residual connection. Cost grows with (height * width)^2: use it at
    low resolution only.

    Example:

    >>> attention = SpatialSelfAttention(num_heads=2)
    >>> tuple(attention(keras.ops.zeros((2, 5, 3, 8))).shape)
    (2, 5, 3, 8)
    """

    def __init__(self, num_heads=4, groups=32, **kwargs):
        super().__init__(**kwargs)
        self.num_heads = check_positive_int(num_heads, "num_heads")
        self.groups = check_positive_int(groups, "groups")

    def build(self, input_shape):
        channels = input_shape[-1]
        if channels % self.num_heads:
            raise ValueError(
                f"SpatialSelfAttention: channels ({channels}) must be divisible by "
                f"num_heads ({self.num_heads})."
            )
        self.norm = GroupNormalization(
            group_count(channels, self.groups), epsilon=1e-5, dtype=self.dtype_policy, name="norm"
        )
        self.norm.build(input_shape)
        self.attention = keras.layers.MultiHeadAttention(
            self.num_heads, channels // self.num_heads, dtype=self.dtype_policy, name="attention"
        )
        sequence_shape = (input_shape[0], None, channels)
        self.attention.build(sequence_shape, sequence_shape)

    def call(self, inputs):
        shape = ops.shape(inputs)
        sequence = ops.reshape(self.norm(inputs), (shape[0], -1, shape[3]))
        attended = self.attention(sequence, sequence)
        return inputs + ops.reshape(attended, shape)

    def compute_output_shape(self, input_shape):
        return input_shape

    def get_config(self):
        config = super().get_config()
        config.update({"num_heads": self.num_heads, "groups": self.groups})
        return config
