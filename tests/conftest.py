"""Shared pytest configuration.

The suite runs once per Keras backend (``KERAS_BACKEND=tensorflow|jax|torch``, see
``scripts/run_tests.sh``). Tests marked ``backend_agnostic`` do not depend on the backend
(NumPy-only code) and run only in the TensorFlow pass. ``KERAS_INDI_FAST=1`` (set in CI)
skips tests marked ``slow``.
"""

import importlib.util
import os

import keras
import numpy as np
import pytest

BACKEND = keras.backend.backend()
HAS_TENSORFLOW = importlib.util.find_spec("tensorflow") is not None
FAST = os.environ.get("KERAS_INDI_FAST", "0") == "1"

requires_tensorflow = pytest.mark.skipif(not HAS_TENSORFLOW, reason="TensorFlow is not installed")


def pytest_collection_modifyitems(config, items):
    skip_agnostic = pytest.mark.skip(reason="backend-agnostic test: runs in the TensorFlow pass only")
    skip_slow = pytest.mark.skip(reason="slow test skipped with KERAS_INDI_FAST=1")
    for item in items:
        if "backend_agnostic" in item.keywords and BACKEND != "tensorflow":
            item.add_marker(skip_agnostic)
        if "slow" in item.keywords and FAST:
            item.add_marker(skip_slow)


@pytest.fixture
def rng():
    return np.random.default_rng(0)
