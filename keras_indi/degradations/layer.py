"""Keras-layer form of the degradations that keras.ops can express."""

import keras

from keras_indi.api_export import keras_indi_export
from keras_indi.degradations.common import check_static_image_batch
from keras_indi.degradations.common import serialize_degradation


@keras_indi_export("keras_indi.degradations.DegradationLayer")
class DegradationLayer(keras.layers.Layer):
    """Apply a `Degradation` to a backend tensor batch, inside a model or a compiled step.

    Works on JAX, TensorFlow and torch, under ``jit``/``tf.function``: parameters (noise level,
    blur width, ...) are drawn per image with ``keras.random`` from the layer's
    `keras.random.SeedGenerator`, so each call draws new ones and the same seed reproduces a
    run. Available for `AdditiveGaussianNoise`, `PureNoise`, `GaussianBlur`, `DefocusBlur`,
    `BicubicDownsample` and `Compose` of those; `JPEGCompression` and `MotionBlur` raise
    ``NotImplementedError`` (use them in the data pipeline). The layer has no weights and
    degrades whether or not ``training`` is set.

    For deterministic parameters (fixed blur width, bicubic) it matches the NumPy form to about
    1e-6 on CPU; on GPUs where float32 matmuls/convolutions run in TF32 (TensorFlow and JAX
    defaults on Ampere and newer) expect about 1e-3.

    Example:

    >>> import numpy as np
    >>> from keras_indi.degradations import GaussianBlur
    >>> layer = DegradationLayer(GaussianBlur(sigma=1.0), seed=0)  # or GaussianBlur(sigma=1.0).as_layer()
    >>> tuple(layer(np.zeros((2, 16, 16, 3), "float32")).shape)
    (2, 16, 16, 3)

    Args:
        degradation: a `Degradation` (or its serialized config).
        seed: int seed of the layer's generator (default: the degradation's seed).
        **kwargs: standard `keras.layers.Layer` arguments (``name``, ``dtype``...).
    """

    def __init__(self, degradation, seed=None, **kwargs):
        super().__init__(**kwargs)
        if isinstance(degradation, dict):
            degradation = keras.saving.deserialize_keras_object(degradation)
        # Any keras_indi Degradation (duck-typed: `base` imports this module for `as_layer`).
        if not callable(getattr(degradation, "backend_call", None)):
            raise ValueError(
                "`degradation` must be a keras_indi Degradation, e.g. "
                f"`keras_indi.degradations.GaussianBlur(sigma=1.0)`. Received {type(degradation).__name__}."
            )
        degradation._check_layer_support()
        if seed is None:
            seed = degradation.seed
        if seed is not None and (isinstance(seed, bool) or not isinstance(seed, int)):
            raise ValueError(f"`seed` must be an int or None. Received seed={seed!r}.")
        self.degradation = degradation
        self.seed = seed
        self.seed_generator = keras.random.SeedGenerator(seed)
        self.trainable = False
        # No weights to create (the seed state exists already): built from the start, so a model
        # holding this layer but not calling it (e.g. on (degraded, clean) pairs) is fully built.
        self.built = True

    def call(self, inputs, training=None):
        check_static_image_batch(inputs, f"DegradationLayer({type(self.degradation).__name__})")
        return self.degradation.backend_call(inputs, self.seed_generator)

    def compute_output_shape(self, input_shape):
        return input_shape

    def get_config(self):
        config = super().get_config()
        config.update({"degradation": serialize_degradation(self.degradation), "seed": self.seed})
        return config
