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


def separate_variable_buffers(variables):
    """Give each variable its own buffer again (JAX; elsewhere nothing to do).

    After ``fit`` with an EMA optimizer (``use_ema=True``), Keras copies the averages into the
    model's weights by assignment; on JAX the weight and its average then share one device
    buffer, and the next ``fit``, which donates both to its compiled step, fails with "Attempt
    to donate the same buffer twice" (Keras 3.15). A copy per weight restores one buffer each.
    """
    if keras.backend.backend() != "jax":
        return
    import jax.numpy as jnp

    for variable in variables:
        variable.assign(jnp.array(variable.value, copy=True))
