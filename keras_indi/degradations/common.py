"""Helpers shared by the NumPy and the Keras-layer forms of the degradations (a module of
its own so that `base` and `layer` do not import each other)."""

import numpy as np


def serialize_degradation(degradation):
    """Keras-format config of a degradation (what ``keras.saving.serialize_keras_object``
    returns), built without importing TensorFlow; read it back with
    ``keras.saving.deserialize_keras_object``."""
    import keras

    cls = type(degradation)
    return {
        "module": cls.__module__,
        "class_name": cls.__name__,
        "config": degradation.get_config(),
        "registered_name": keras.saving.get_registered_name(cls),
    }


def check_static_image_batch(inputs, name):
    """Static checks of a backend tensor batch for the layer form; returns its shape."""
    import keras

    shape = tuple(inputs.shape)
    if len(shape) != 4:
        raise ValueError(
            f"{name} expects a batch (batch, height, width, channels). Received a tensor of "
            f"shape {shape}. Add a batch axis with `images[None]`."
        )
    dtype = keras.backend.standardize_dtype(inputs.dtype)
    if "float" not in dtype:
        raise ValueError(
            f"{name} expects float images in [-1, 1]; received dtype {dtype}. Convert with "
            "`keras.ops.cast(images, 'float32') / 127.5 - 1`."
        )
    return shape


def numpy_call(function, images, *args, dtype="float32"):
    """The NumPy form of a keras.ops `function(images, *args)`: NumPy in (cast to `dtype`;
    None keeps it), NumPy out, computed on the CPU with any Keras backend (also inside
    ``tf.numpy_function`` while another backend trains); compiled whole on JAX."""
    import keras

    from keras_indi.backend.compile import jit_concrete

    images = np.asarray(images) if dtype is None else np.asarray(images, dtype)
    with keras.device("cpu:0"):
        out = jit_concrete(function)(keras.ops.convert_to_tensor(images), *args)
        return keras.ops.convert_to_numpy(out).astype(images.dtype, copy=False)
