"""Group normalization computed from per-channel statistics (faster on CPUs, same result)."""

import math

import keras
from keras import ops

from keras_indi.api_export import keras_indi_export
from keras_indi.backend.channels_last import (
    fuse_normalization_and_modulation,
    group_norm,
    native_channels_last_kernels,
)
from keras_indi.backend.compile import channel_statistics_are_faster


@keras_indi_export("keras_indi.layers.GroupNormalization")
class GroupNormalization(keras.layers.GroupNormalization):
    """`keras.layers.GroupNormalization` for channels-last inputs, computed the fast way.

    Same arguments, weights, configuration and result as Keras' layer. Keras reshapes the
    input to ``(..., groups, channels // groups)`` and reduces over every axis but the group
    axis, which sits in the middle of the tensor: XLA compiles that for the CPU as a strided,
    unvectorized reduction. Here the mean and mean square of each *channel* are taken first
    (a reduction over the spatial axes that keeps channels contiguous), then averaged within
    each group (a tiny ``(batch, channels)`` array), and the input is normalized with one scale
    and shift per channel. The variance is ``E[x^2] - E[x]^2`` as in `keras.ops.moments`.
    Measured on a 2-core CPU, one evaluation of the (32, 64) preset U-Net takes 10-22% less
    time on JAX and torch (BENCHMARKS.md). On torch, PyTorch's own group normalization now runs
    on the channels-last tensor directly (`keras_indi.backend.channels_last`), faster still. On
    TensorFlow, whose XLA compiles Keras' grouped reduction better, and for an ``axis`` other
    than the last, Keras' own computation runs.
    Statistics are computed in float32 under mixed precision.

    Example:

    >>> layer = GroupNormalization(groups=2)
    >>> outputs = keras.ops.convert_to_numpy(layer(keras.ops.reshape(keras.ops.arange(48.0), (1, 4, 3, 4))))
    >>> bool(abs(outputs.mean()) < 1e-6), outputs.shape
    (True, (1, 4, 3, 4))
    """

    def _native(self, inputs):
        """Whether torch's own group norm runs on the channels-last `inputs` (a view, no copies;
        it refuses one value per group)."""
        rank = len(inputs.shape)
        return (
            self.axis in (-1, rank - 1)
            and rank >= 3
            and native_channels_last_kernels()
            and (inputs.shape[-1] // self.groups) * math.prod(inputs.shape[1:-1]) > 1
        )

    def _native_group_norm(self, inputs, scale=None, shift=None, silu=False):
        gamma = keras.ops.convert_to_tensor(self.gamma) if self.scale else None
        beta = keras.ops.convert_to_tensor(self.beta) if self.center else None
        return group_norm(inputs, self.groups, gamma, beta, self.epsilon, self.compute_dtype, scale, shift, silu)

    def normalize(self, inputs, scale=None, shift=None, silu=False):
        """``silu(layer(inputs) * (1 + scale) + shift)``, each part optional.

        `scale` and `shift` broadcast against `inputs` and have its rank (e.g. a per-image,
        per-channel ``(batch, 1, 1, channels)`` time modulation). On torch the whole computation
        runs on one channels-first view (`keras_indi.backend.channels_last.group_norm`) when no
        gradients are recorded (restoration), which ``torch.compile`` fuses into one kernel, as
        it does for a plain PyTorch network (the statistics and the channels-last SiLU otherwise
        take two passes: BENCHMARKS.md); otherwise it is the layer followed by the same
        operations.

        Example:

        >>> layer = GroupNormalization(groups=2)
        >>> images = keras.ops.reshape(keras.ops.arange(48.0), (1, 4, 3, 4))
        >>> fused = layer.normalize(images, silu=True)
        >>> bool(keras.ops.max(keras.ops.abs(fused - keras.ops.silu(layer(images)))) < 1e-6)
        True
        """
        if self.built and self._native(inputs) and channel_statistics_are_faster() and fuse_normalization_and_modulation():
            return self._native_group_norm(inputs, scale, shift, silu)
        outputs = self(inputs)  # builds the layer on first use
        if scale is not None:
            outputs = outputs * (1.0 + ops.cast(scale, outputs.dtype))
        if shift is not None:
            outputs = outputs + ops.cast(shift, outputs.dtype)
        return ops.silu(outputs) if silu else outputs

    def call(self, inputs):
        rank = len(inputs.shape)
        if self.axis not in (-1, rank - 1) or rank < 3 or not channel_statistics_are_faster():
            return super().call(inputs)
        if self._native(inputs):
            return self._native_group_norm(inputs)
        channels = inputs.shape[-1]
        per_group = channels // self.groups
        values = ops.cast(inputs, "float32")
        spatial_axes = tuple(range(1, rank - 1))
        channel_mean = ops.mean(values, axis=spatial_axes)  # (batch, channels)
        channel_mean_square = ops.mean(ops.square(values), axis=spatial_axes)
        mean = ops.mean(ops.reshape(channel_mean, (-1, self.groups, per_group)), axis=-1, keepdims=True)
        mean_square = ops.mean(
            ops.reshape(channel_mean_square, (-1, self.groups, per_group)), axis=-1, keepdims=True
        )
        inverse_std = ops.rsqrt(ops.maximum(mean_square - ops.square(mean), 0.0) + self.epsilon)
        scale = ops.broadcast_to(inverse_std, (ops.shape(mean)[0], self.groups, per_group))
        shift = -mean * scale
        if self.scale:
            gamma = ops.reshape(ops.cast(self.gamma, "float32"), (1, self.groups, per_group))
            scale, shift = scale * gamma, shift * gamma
        if self.center:
            shift = shift + ops.reshape(ops.cast(self.beta, "float32"), (1, self.groups, per_group))
        broadcast_shape = (-1,) + (1,) * len(spatial_axes) + (channels,)
        outputs = values * ops.reshape(scale, broadcast_shape) + ops.reshape(shift, broadcast_shape)
        return ops.cast(outputs, self.compute_dtype)
