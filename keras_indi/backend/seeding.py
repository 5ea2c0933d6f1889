"""Seeding without importing TensorFlow when nothing uses it.

`keras.utils.set_random_seed` imports TensorFlow whenever it is installed, to seed ``tf.data``,
even on the JAX or torch backend: 4-7 s on a 2-core CPU, a sizeable part of the quickstart and
of a tutorial on JAX. `set_random_seed` here seeds Python, NumPy (and torch on the torch
backend) and calls Keras' own only where TensorFlow is the backend or already imported. Keras'
initializers take their default seeds from Python's generator, so a network built after
either gets the same weights.
"""

import random
import sys

import numpy as np


def set_random_seed(seed):
    """Seed Python, NumPy and the backend before building a network, without importing TensorFlow.

    Where TensorFlow is the Keras backend or already imported, this is
    `keras.utils.set_random_seed(seed)`. Elsewhere it seeds Python's and NumPy's generators
    (and torch's on the torch backend) and leaves TensorFlow unimported (4-7 s on a 2-core
    CPU): Keras' initializers draw their default seeds from Python's generator, so the weights
    are those `keras.utils.set_random_seed` gives. Unlike it, Keras' global `SeedGenerator`
    (``keras.random`` calls with ``seed=None``) is not reset; keras-indi's models and layers
    never use it (each holds its own seeded generator).

    Args:
        seed: a Python integer.

    Example:

    >>> import keras, numpy as np
    >>> def initial_kernel():
    ...     set_random_seed(3)
    ...     layer = keras.layers.Dense(2)
    ...     layer.build((None, 4))
    ...     return keras.ops.convert_to_numpy(layer.kernel)
    >>> bool(np.array_equal(initial_kernel(), initial_kernel()))
    True
    """
    if isinstance(seed, bool) or not isinstance(seed, (int, np.integer)):
        raise ValueError(f"`seed` must be an integer. Received seed={seed!r} of type {type(seed).__name__}.")
    seed = int(seed)
    import keras

    if keras.backend.backend() == "tensorflow" or "tensorflow" in sys.modules:
        keras.utils.set_random_seed(seed)  # Keras' own: it seeds TensorFlow too
        return
    random.seed(seed)  # also seeds the default seeds of Keras' initializers
    np.random.seed(seed)
    if keras.backend.backend() == "torch":
        import torch

        torch.manual_seed(seed)
