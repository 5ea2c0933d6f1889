"""`import keras_indi` and training from NumPy work when TensorFlow cannot be imported."""

import textwrap

import pytest

from fresh_process import run_fresh_process

SCRIPT = textwrap.dedent(
    """
    import sys

    # A None entry makes `import tensorflow` raise ImportError and find_spec return None,
    # exactly as on a machine without TensorFlow.
    sys.modules["tensorflow"] = None
    sys.modules["tensorflow_datasets"] = None
    import numpy as np
    import keras_indi
    from keras_indi.networks import TimeConditionalUNet

    clean = np.random.default_rng(0).uniform(-1, 1, (8, 12, 10, 3)).astype("float32")
    model = keras_indi.InDIModel(TimeConditionalUNet(widths=(8,), blocks_per_level=1), seed=0)
    model.compile()
    model.fit(0.5 * clean, clean, batch_size=4, epochs=1, verbose=0)
    restored = model.restore(0.5 * clean[:2], num_steps=3, seed=0, progress_bar=False)
    assert restored.shape == (2, 12, 10, 3)
    assert all(sys.modules[name] is None for name in sys.modules if name.startswith("tensorflow")), "TensorFlow was imported"
    print("OK")
    """
)


@pytest.mark.backend_agnostic
@pytest.mark.parametrize("backend", ["jax", "torch"])
def test_import_and_train_without_tensorflow(backend):
    assert run_fresh_process(SCRIPT, backend) == "OK"
