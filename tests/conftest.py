"""Shared pytest configuration.

The suite runs once per Keras backend (``KERAS_BACKEND=tensorflow|jax|torch``, see
``scripts/run_tests.sh``). Tests marked ``backend_agnostic`` do not depend on the backend
(NumPy-only code, the command line, data pipelines) and run in one pass only, the one of
``KERAS_INDI_AGNOSTIC_BACKEND`` (default tensorflow; scripts/run_tests.sh picks torch when it is
installed). ``KERAS_INDI_FAST=1`` (set in CI) skips tests marked ``slow``.
"""

import importlib.util
import os

import keras
import numpy as np
import pytest

BACKEND = keras.backend.backend()
HAS_TENSORFLOW = importlib.util.find_spec("tensorflow") is not None
FAST = os.environ.get("KERAS_INDI_FAST", "0") == "1"
# The one pass that runs the backend-agnostic tests (default: TensorFlow, the default backend).
AGNOSTIC_BACKEND = os.environ.get("KERAS_INDI_AGNOSTIC_BACKEND", "tensorflow")

# JAX: programs compiled by one test are read back from disk by later tests that build the same
# program (a U-Net train step, a sampler loop) instead of compiling again. scripts/run_tests.sh
# names a fresh folder for each run; unset, nothing changes.
if BACKEND == "jax" and os.environ.get("KERAS_INDI_TEST_COMPILATION_CACHE"):
    import jax

    jax.config.update("jax_compilation_cache_dir", os.environ["KERAS_INDI_TEST_COMPILATION_CACHE"])
    jax.config.update("jax_persistent_cache_min_compile_time_secs", 0.0)
    jax.config.update("jax_persistent_cache_min_entry_size_bytes", 0)

# The command line's saved restoration programs (keras_indi.backend.restore_programs) would go to
# the user's cache folder: off in tests, except where a test turns them on for its own folder.
os.environ.setdefault("KERAS_INDI_RESTORE_PROGRAMS", "0")

requires_tensorflow = pytest.mark.skipif(not HAS_TENSORFLOW, reason="TensorFlow is not installed")


def pytest_collection_modifyitems(config, items):
    skip_agnostic = pytest.mark.skip(reason=f"backend-agnostic test: runs in the {AGNOSTIC_BACKEND} pass only")
    skip_slow = pytest.mark.skip(reason="slow test skipped with KERAS_INDI_FAST=1")
    for item in items:
        if "backend_agnostic" in item.keywords and BACKEND != AGNOSTIC_BACKEND:
            item.add_marker(skip_agnostic)
        if "slow" in item.keywords and FAST:
            item.add_marker(skip_slow)


@pytest.fixture
def rng():
    return np.random.default_rng(0)
