"""The InDI forward process as a layer."""

import keras
from keras import ops

from keras_indi.api_export import keras_indi_export
from keras_indi.schedules import get_noise_schedule
from keras_indi.utils.layer_inputs import keep_input_dtypes


def broadcast_time(t, reference):
    """Reshape a (batch,) time to broadcast against `reference` (batch, ...)."""
    t = ops.cast(t, "float32")
    return ops.reshape(t, (-1,) + (1,) * (len(reference.shape) - 1))


def interpolate(clean, degraded, t, noise, noise_schedule):
    """x_t = (1 - t) x + t y + sigma(t) eta, in float32."""
    clean = ops.cast(clean, "float32")
    degraded = ops.cast(degraded, "float32")
    t_column = broadcast_time(t, clean)
    mixed = (1.0 - t_column) * clean + t_column * degraded
    if noise is None:
        return mixed
    return mixed + noise_schedule.sigma(t_column) * ops.cast(noise, "float32")


@keras_indi_export("keras_indi.layers.InDIForwardProcess")
class InDIForwardProcess(keras.layers.Layer):
    """Build ``x_t = (1 - t) x + t y + sigma(t) eta`` from ``[x, y, t, eta]``.

    ``x`` is the clean image, ``y`` the degraded one (same shape), ``t`` a (batch,) time in
    [0, 1] (t = 0 clean, t = 1 degraded), ``eta`` standard normal noise of the image shape and
    ``sigma(t) = t * eps_t`` from `noise_schedule` (see `keras_indi.schedules`). The arithmetic
    runs in float32 even under a mixed-precision policy. Pass three inputs ``[x, y, t]`` for
    the noise-free interpolation.

    Example:

    >>> layer = InDIForwardProcess(noise_schedule=0.0)
    >>> clean = keras.ops.zeros((2, 4, 4, 3))
    >>> degraded = keras.ops.ones((2, 4, 4, 3))
    >>> x_t = layer([clean, degraded, keras.ops.array([0.25, 1.0])])
    >>> [float(x_t[0, 0, 0, 0]), float(x_t[1, 0, 0, 0])]
    [0.25, 1.0]
    """

    def __init__(self, noise_schedule=None, **kwargs):
        super().__init__(**kwargs)
        self.noise_schedule = get_noise_schedule(noise_schedule)
        keep_input_dtypes(self)  # t stays float32 under mixed precision

    def call(self, inputs):
        if not isinstance(inputs, (list, tuple)) or len(inputs) not in (3, 4):
            raise ValueError(
                "InDIForwardProcess expects [clean, degraded, t] or [clean, degraded, t, noise]."
            )
        clean, degraded, t = inputs[:3]
        noise = inputs[3] if len(inputs) == 4 else None
        if tuple(clean.shape) != tuple(degraded.shape):
            raise ValueError(
                f"clean and degraded images must have the same shape. Received {clean.shape} "
                f"and {degraded.shape}."
            )
        return interpolate(clean, degraded, t, noise, self.noise_schedule)

    def compute_output_shape(self, input_shape):
        return input_shape[0]

    def get_config(self):
        config = super().get_config()
        config.update({"noise_schedule": keras.saving.serialize_keras_object(self.noise_schedule)})
        return config
