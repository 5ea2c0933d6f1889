"""`keras_indi.backend.seeding`: Keras' weights, and saved models, without importing TensorFlow."""

import textwrap

import numpy as np
import pytest
from fresh_process import run_fresh_process

from keras_indi.backend.seeding import set_random_seed, tensorflow_left_unimported

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
    assert run_fresh_process(SCRIPT, backend) == "OK"


# In a fresh process: an InDI model and a DDPM save without importing TensorFlow, load back with
# the same weights, and Keras' own answer on TensorFlow is asked again afterwards.
SAVE_SCRIPT = textwrap.dedent(
    """
    import sys
    import keras
    import numpy as np
    import keras_indi
    from keras_indi.backend.seeding import _keras_tensorflow_probe
    from keras_indi.networks import TimeConditionalUNet

    clean = np.random.default_rng(0).uniform(-1, 1, (4, 12, 10, 3)).astype("float32")
    for model in (keras_indi.InDIModel(TimeConditionalUNet(widths=(8,), blocks_per_level=1), seed=0),
                  keras_indi.ConditionalDDPM(TimeConditionalUNet(widths=(8,), blocks_per_level=1, in_channels=6, out_channels=3), seed=0)):
        model.compile()
        model.fit(0.5 * clean, clean, batch_size=4, epochs=1, verbose=0)
        model.save(SAVE_PATH)
        assert "tensorflow" not in sys.modules, "saving imported TensorFlow"
        assert _keras_tensorflow_probe() is not None and _keras_tensorflow_probe()._available is None
        loaded = keras.saving.load_model(SAVE_PATH)
        for a, b in zip(model.weights, loaded.weights):
            np.testing.assert_array_equal(keras.ops.convert_to_numpy(a), keras.ops.convert_to_numpy(b))
    print("OK")
    """
)


@pytest.mark.backend_agnostic
@pytest.mark.parametrize("backend", ["jax", "torch"])
def test_models_save_without_importing_tensorflow(backend, tmp_path):
    code = f"SAVE_PATH = {str(tmp_path / 'model.keras')!r}\n" + SAVE_SCRIPT
    assert run_fresh_process(code, backend) == "OK"


def test_saving_where_tensorflow_is_imported_changes_nothing(monkeypatch):
    import sys

    from keras_indi.backend import seeding

    probe = seeding._keras_tensorflow_probe()
    if probe is None:
        pytest.skip("this Keras lays out its TensorFlow check otherwise")
    monkeypatch.setitem(sys.modules, "tensorflow", sys.modules.get("tensorflow") or object())
    before = probe._available
    with tensorflow_left_unimported():
        assert probe._available is before
    assert probe._available is before


@pytest.mark.parametrize("seed", [1.5, "3", None, True])
def test_a_seed_that_is_not_an_integer_is_refused(seed):
    with pytest.raises(ValueError, match="must be an integer"):
        set_random_seed(seed)


def test_numpy_integers_are_accepted():
    set_random_seed(np.int64(5))
    first = np.random.random()
    set_random_seed(5)
    assert np.random.random() == first
