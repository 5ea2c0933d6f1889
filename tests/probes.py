"""Tiny networks that expose what the model and the sampler feed them."""

import keras
from keras import ops


@keras.saving.register_keras_serializable(package="keras_indi_tests")
class TimeEcho(keras.layers.Layer):
    """Returns t broadcast to the input's shape (plus 0 * a weight, so fit has a variable)."""

    def build(self, input_shape):
        self.weight = self.add_weight(shape=(), initializer="zeros", name="weight")

    def call(self, inputs, training=None):
        x_t, t = inputs
        t = ops.reshape(ops.cast(t, "float32"), (-1,) + (1,) * (len(x_t.shape) - 1))
        return ops.zeros_like(ops.cast(x_t, "float32")) + t + 0.0 * self.weight


@keras.saving.register_keras_serializable(package="keras_indi_tests")
class Identity(keras.layers.Layer):
    """F(x_t, t) = x_t: the sampler then leaves its input unchanged."""

    def build(self, input_shape):
        self.weight = self.add_weight(shape=(), initializer="zeros", name="weight")

    def call(self, inputs, training=None):
        return ops.cast(inputs[0], "float32") + 0.0 * self.weight
