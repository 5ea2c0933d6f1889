"""What a backend tensor is: readable now (eager) or a placeholder inside a traced function."""

import keras


def is_eager_tensor(value):
    """True when `value`, a backend tensor (``keras.ops.is_tensor``), holds readable values.

    False for TensorFlow graph tensors (inside ``tf.function``) and JAX tracers (inside
    ``jax.jit``); torch tensors are always eager.
    """
    backend = keras.backend.backend()
    if backend == "tensorflow":
        # Eager tensors have `.numpy()`; graph tensors inside tf.function do not work with it.
        import tensorflow as tf

        return tf.executing_eagerly() and hasattr(value, "numpy")
    if backend == "jax":
        import jax

        return not isinstance(value, jax.core.Tracer)
    return True


def is_traced_backend():
    """JAX and TensorFlow take scalars as traced tensors; torch runs eagerly on Python ints."""
    return keras.backend.backend() in ("jax", "tensorflow")
