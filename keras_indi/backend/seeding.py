"""Seeding and saving without importing TensorFlow when nothing uses it.

`keras.utils.set_random_seed` imports TensorFlow whenever it is installed, to seed ``tf.data``,
even on the JAX or torch backend: 4-7 s on a 2-core CPU, a sizeable part of the quickstart and
of a tutorial on JAX. `set_random_seed` here seeds Python, NumPy (and torch on the torch
backend) and calls Keras' own only where TensorFlow is the backend or already imported. Keras'
initializers take their default seeds from Python's generator, so a network built after
either gets the same weights.

Saving a model (``model.save``) imports TensorFlow the same way: Keras' serializer asks whether
TensorFlow is available before checking whether an object is a ``tf.TensorShape``. No object
can be one while TensorFlow is not imported, so `tensorflow_left_unimported` answers "not
available" for the duration of a save; keras-indi's models save inside it.
"""

import contextlib
import random
import sys

import numpy as np

from keras_indi.api_export import keras_indi_export


@keras_indi_export("keras_indi.set_random_seed")
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


def _keras_tensorflow_probe():
    """Keras' lazy TensorFlow module that its serializer asks ``available`` (None where this
    Keras lays it out otherwise: then nothing is changed)."""
    import keras

    probe = getattr(keras.saving.serialize_keras_object, "__globals__", {}).get("tf")
    if probe is None or not hasattr(probe, "_available") or not hasattr(type(probe), "available"):
        return None
    return probe


@contextlib.contextmanager
def tensorflow_left_unimported():
    """Context in which Keras' serializer does not import TensorFlow just to look for its types.

    Where TensorFlow is not imported yet (the JAX or torch backend, no ``tf.data`` used),
    ``model.save`` would import it (3-7 s on a 2-core CPU) only to ask whether a value of the
    model's configuration is a ``tf.TensorShape``, which it cannot be. Inside this context
    Keras treats TensorFlow as unavailable for those checks; on leaving, Keras asks again the
    next time. Where TensorFlow is the backend or already imported, nothing changes.
    `keras_indi.models` save inside it.

    Example:

    >>> with tensorflow_left_unimported():
    ...     pass
    """
    probe = None
    if "tensorflow" not in sys.modules:
        probe = _keras_tensorflow_probe()
        if probe is not None and probe._available is not None:
            probe = None  # Keras has already looked: leave its answer alone
    if probe is None:
        yield
        return
    probe._available = False
    try:
        yield
    finally:
        if probe._available is False:
            probe._available = None  # ask again next time
