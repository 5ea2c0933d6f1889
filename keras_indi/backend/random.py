"""Stateless per-step Gaussian noise for samplers, on each Keras backend.

``step_noise(shape, seed, step)`` depends only on ``(seed, step)``, so a compiled loop and a
step-by-step Python loop draw exactly the same numbers, and the same seed reproduces a run on
the same backend and device. `seed` and `step` may be traced integers on JAX and TensorFlow;
on torch (eager loops) they are Python ints.
"""

import keras
import numpy as np


def step_noise(shape, seed, step, dtype="float32"):
    """Standard normal noise of `shape` for sampler step `step` of a run seeded by `seed`.

    Example:

    >>> a = step_noise((2, 3), seed=7, step=1)
    >>> b = step_noise((2, 3), seed=7, step=1)
    >>> bool(keras.ops.all(a == b))
    True
    """
    backend = keras.backend.backend()
    if backend == "jax":
        import jax
        import jax.numpy as jnp

        key = jax.random.PRNGKey(jnp.asarray(seed, "uint32"))
        key = jax.random.fold_in(key, jnp.asarray(step, "uint32"))
        return jax.random.normal(key, shape, dtype=dtype)
    if backend == "tensorflow":
        import tensorflow as tf

        pair = tf.stack([tf.cast(seed, "int32"), tf.cast(step, "int32")])
        return tf.random.stateless_normal(shape, seed=pair, dtype=dtype)
    if backend == "torch":
        import torch

        # Keras' torch device (CPU, CUDA or MPS), read from a tensor Keras creates: public API only.
        device = keras.ops.zeros(()).device
        generator = torch.Generator(device=device)
        generator.manual_seed((int(seed) * 1_000_003 + int(step)) & 0xFFFFFFFFFFFF)
        torch_dtype = getattr(torch, keras.backend.standardize_dtype(dtype))
        return torch.randn(tuple(int(d) for d in shape), generator=generator, device=device, dtype=torch_dtype)
    rng = np.random.default_rng([int(seed) & 0xFFFFFFFF, int(step)])
    return rng.standard_normal(tuple(shape)).astype(dtype)
