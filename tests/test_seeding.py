"""`keras_indi.backend.seeding.set_random_seed`: Keras' weights, without importing TensorFlow."""

import importlib.util
import os
import subprocess
import sys
import textwrap

import numpy as np
import pytest

from keras_indi.backend.seeding import set_random_seed

# In a fresh process (TensorFlow not imported yet): the quickstart's network built after
# keras-indi's seeding and after Keras' own has the same weights, and keras-indi's left
# TensorFlow unimported.
SCRIPT = textwrap.dedent(
    """
    import sys
    import keras
    import numpy as np
    from keras_indi.apps.quickstart import build_model, resolve_settings
    from keras_indi.backend import seeding

    settings = resolve_settings(tiny=True)
    weights = lambda model: [keras.ops.convert_to_numpy(v) for v in model.network.weights]
    ours = weights(build_model(settings, "mass_at_one", "denoising", seed=7))
    assert "tensorflow" not in sys.modules, "keras-indi's seeding imported TensorFlow"
    original, seeding.set_random_seed = seeding.set_random_seed, keras.utils.set_random_seed
    theirs = weights(build_model(settings, "mass_at_one", "denoising", seed=7))
    assert len(ours) == len(theirs) > 10
    assert all(np.array_equal(a, b) for a, b in zip(ours, theirs)), "different initial weights"
    seeding.set_random_seed = original
    other = weights(build_model(settings, "mass_at_one", "denoising", seed=8))
    assert not all(np.array_equal(a, b) for a, b in zip(ours, other)), "the seed has no effect"
    print("OK")
    """
)


@pytest.mark.backend_agnostic
@pytest.mark.parametrize("backend", ["jax", "torch"])
def test_same_weights_as_keras_seeding_without_importing_tensorflow(backend):
    if importlib.util.find_spec(backend) is None:
        pytest.skip(f"{backend} is not installed")
    environment = dict(os.environ, KERAS_BACKEND=backend)
    result = subprocess.run([sys.executable, "-c", SCRIPT], capture_output=True, text=True, env=environment, timeout=600)
    assert result.returncode == 0 and "OK" in result.stdout, result.stderr[-3000:]


@pytest.mark.parametrize("seed", [1.5, "3", None, True])
def test_a_seed_that_is_not_an_integer_is_refused(seed):
    with pytest.raises(ValueError, match="must be an integer"):
        set_random_seed(seed)


def test_numpy_integers_are_accepted():
    set_random_seed(np.int64(5))
    first = np.random.random()
    set_random_seed(5)
    assert np.random.random() == first
