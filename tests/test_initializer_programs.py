"""`keras_indi.backend.compilation_cache.shared_initializer_programs`: the same initial weights
from fewer compiled random-number programs (JAX), and nothing changed elsewhere."""

import contextlib
import logging

import keras
import numpy as np
import pytest

from keras_indi.backend import compilation_cache
from keras_indi.backend.compilation_cache import shared_initializer_programs
from keras_indi.networks import TimeConditionalMLP, TimeConditionalUNet

jax_only = pytest.mark.skipif(keras.backend.backend() != "jax", reason="JAX's random-number programs")

# Small shapes (cut from one draw of the smallest shared size), that size itself, and beyond it.
SHAPES = [(3, 3, 16, 32), (7,), (5, 1), (1,), (37, 31, 3), (64,), (0, 4), (1 << 17,), (3, 3, 128, 129)]
DRAWS = [
    ("normal", {}),
    ("uniform", {"minval": -0.3, "maxval": 0.7}),
    ("truncated_normal", {"lower": -2.0, "upper": 2.0}),
]


@jax_only
@pytest.mark.parametrize("dtype", ["float32", "bfloat16"])
@pytest.mark.parametrize("name, extra", DRAWS)
def test_draws_are_bit_for_bit_those_of_jax(name, extra, dtype):
    import jax

    key = jax.random.PRNGKey(11)
    direct = [np.asarray(getattr(jax.random, name)(key, shape=shape, dtype=dtype, **extra)) for shape in SHAPES]
    with shared_initializer_programs():
        assert getattr(jax.random, name) is not compilation_cache._unshared_draws[name]
        shared = [np.asarray(getattr(jax.random, name)(key, shape=shape, dtype=dtype, **extra)) for shape in SHAPES]
    for shape, a, b in zip(SHAPES, direct, shared):
        assert a.shape == b.shape == shape and a.dtype == b.dtype
        np.testing.assert_array_equal(a.view(np.uint8), b.view(np.uint8))


@jax_only
def test_small_draws_share_one_program():
    import jax

    key = jax.random.PRNGKey(3)
    shapes = [(3, 3, 3, 16), (3, 3, 16, 16), (3, 3, 16, 32), (3, 3, 64, 32), (1, 1, 48, 16), (5,)]
    # float16: no earlier test compiled these draws in this process.
    with shared_initializer_programs(), jax.log_compiles(True):
        records = []
        handler = logging.Handler()
        handler.emit = records.append
        logger = logging.getLogger("jax")
        logger.addHandler(handler)
        try:
            for shape in shapes:
                jax.random.normal(key, shape=shape, dtype="float16")
        finally:
            logger.removeHandler(handler)
    compiled = [r.getMessage() for r in records if "Finished XLA compilation" in r.getMessage() and "_normal" in r.getMessage()]
    assert len(compiled) <= 1, compiled


@jax_only
def test_traced_draws_and_nesting_are_left_alone():
    import jax

    original = jax.random.normal
    traced = jax.jit(lambda key: jax.random.normal(key, shape=(3, 5)))
    key = jax.random.PRNGKey(0)
    expected = np.asarray(traced(key))
    with shared_initializer_programs():
        with shared_initializer_programs():
            np.testing.assert_array_equal(np.asarray(jax.jit(lambda k: jax.random.normal(k, shape=(3, 5)))(key)), expected)
        assert jax.random.normal is not original  # still inside the outer context
    assert jax.random.normal is original


def _weights(network_class, patched, monkeypatch, **kwargs):
    module = __import__(network_class.__module__, fromlist=["shared_initializer_programs"])
    if not patched:
        monkeypatch.setattr(module, "shared_initializer_programs", contextlib.nullcontext)
    keras.utils.set_random_seed(5)
    network = network_class(**kwargs)
    network.build((None, 8, 8, 3) if network_class is TimeConditionalUNet else (None, 2))
    monkeypatch.undo()
    return [keras.ops.convert_to_numpy(weight) for weight in network.weights]


@pytest.mark.parametrize(
    "network_class, kwargs",
    [
        (TimeConditionalUNet, {"widths": (8, 16), "blocks_per_level": 1, "parameterization": "x"}),
        (TimeConditionalMLP, {"features": 2, "hidden_units": (16, 16), "parameterization": "x"}),
    ],
)
def test_networks_get_the_same_initial_weights(network_class, kwargs, monkeypatch):
    shared = _weights(network_class, True, monkeypatch, **kwargs)
    direct = _weights(network_class, False, monkeypatch, **kwargs)
    assert len(shared) == len(direct) > 4
    for a, b in zip(shared, direct):
        np.testing.assert_array_equal(a, b)
