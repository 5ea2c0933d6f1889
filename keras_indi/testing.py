"""A shared check for layers, in the spirit of keras-hub's ``run_layer_test``.

`run_layer_test` takes a layer class through construction, build, call, a short ``fit``,
``get_config`` / ``from_config``, Keras serialization, a ``.keras`` round trip and
mixed precision. Use it for your own layers too:

>>> from keras_indi.layers import Downsample
>>> run_layer_test(Downsample, {"filters": 4}, np.zeros((2, 8, 8, 3), "float32"), (2, 4, 4, 4))
"""

import os
import tempfile

import keras
import numpy as np


def _as_list(inputs):
    return list(inputs) if isinstance(inputs, (list, tuple)) else [inputs]


def _shape(tensor):
    return tuple(int(d) for d in tensor.shape)


def run_layer_test(
    layer_class,
    init_kwargs,
    input_data,
    expected_output_shape,
    run_fit=True,
    run_mixed_precision=True,
    run_saving=True,
    tolerance=1e-5,
):
    """Check a layer end to end; raises AssertionError with a message on failure."""
    multiple = isinstance(input_data, (list, tuple))

    # Build and call.
    layer = layer_class(**init_kwargs)
    output = layer(input_data)
    assert _shape(output) == tuple(expected_output_shape), (
        f"{layer_class.__name__}: output shape {_shape(output)} != {tuple(expected_output_shape)}"
    )
    assert np.all(np.isfinite(keras.ops.convert_to_numpy(output))), "non-finite output"
    reference = keras.ops.convert_to_numpy(output)

    # Config round trip: same config, and same output with the same weights.
    config = layer.get_config()
    clone = layer_class.from_config(config)
    assert clone.get_config() == config, f"{layer_class.__name__}: config changed by from_config"
    clone(input_data)
    clone.set_weights(layer.get_weights())
    np.testing.assert_allclose(keras.ops.convert_to_numpy(clone(input_data)), reference, atol=tolerance)

    # Keras serialization (registered name).
    serialized = keras.saving.serialize_keras_object(layer)
    restored = keras.saving.deserialize_keras_object(serialized)
    assert type(restored) is layer_class

    # A .keras round trip inside a functional model gives identical outputs.
    inputs = [keras.Input(shape=_shape(x)[1:], batch_size=None) for x in _as_list(input_data)]
    model_output = layer_class(**init_kwargs)(inputs if multiple else inputs[0])
    model = keras.Model(inputs, model_output)
    model_reference = keras.ops.convert_to_numpy(model(input_data))
    if run_saving:
        with tempfile.TemporaryDirectory() as directory:
            path = os.path.join(directory, "layer.keras")
            model.save(path)
            loaded = keras.saving.load_model(path)
        np.testing.assert_allclose(
            keras.ops.convert_to_numpy(loaded(input_data)), model_reference, atol=tolerance
        )

    # A short fit: trainable layers get gradients and the loss stays finite.
    if run_fit and model.trainable_weights:
        model.compile(optimizer="adam", loss="mse")
        target = np.zeros(_shape(output), "float32")
        history = model.fit(input_data, target, epochs=1, batch_size=_shape(output)[0], verbose=0)
        assert np.isfinite(history.history["loss"][-1]), "non-finite loss in fit"

    # Mixed precision: runs, finite, float outputs.
    if run_mixed_precision:
        mixed = layer_class(**init_kwargs, dtype="mixed_bfloat16")
        mixed_output = keras.ops.convert_to_numpy(keras.ops.cast(mixed(input_data), "float32"))
        assert np.all(np.isfinite(mixed_output)), "non-finite mixed-precision output"
        assert _shape(mixed_output) == tuple(expected_output_shape)
