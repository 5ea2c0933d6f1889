"""The networks' output parameterization (x, residual, preconditioned): maths, serialization,
mixed precision and training, on every backend."""

import keras
import numpy as np
import pytest

from keras_indi import InDIModel
from keras_indi.networks import TimeConditionalMLP, TimeConditionalUNet, estimate_degradation_std, output_scalings
from keras_indi.testing import run_layer_test

RNG = np.random.default_rng(0)
TIMES = np.array([0.0, 0.3, 1.0], "float32")


def _numpy(values):
    return np.asarray(keras.ops.convert_to_numpy(values))


@pytest.mark.parametrize("degradation_std", [0.1, 0.5, 1.15])
def test_preconditioning_meets_its_three_requirements(degradation_std):
    """Unit-variance input and target, and c_skip minimising c_out (docs/parameterization.md)."""
    data_std = 0.5
    t = np.linspace(0.01, 1.0, 7).astype("float32")
    c_skip, c_out, c_in = (_numpy(c) for c in output_scalings(t, "preconditioned", data_std, degradation_std))
    spread = t * degradation_std
    np.testing.assert_allclose(c_in**2 * (data_std**2 + spread**2), 1.0, rtol=1e-5)
    np.testing.assert_allclose(c_out**2, (1 - c_skip) ** 2 * data_std**2 + c_skip**2 * spread**2, rtol=1e-5)
    for delta in (-0.01, 0.01):  # any other c_skip needs a larger c_out
        other = c_skip + delta
        assert np.all((1 - other) ** 2 * data_std**2 + other**2 * spread**2 > c_out**2)


def test_scalings_of_the_simple_options_and_at_t_zero():
    for name, expected in (("x", (0, 1, 1)), ("residual", (1, 1, 1))):
        for value, want in zip(output_scalings(TIMES, name), expected):
            np.testing.assert_allclose(_numpy(value), want)
    c_skip, c_out, _ = output_scalings(np.zeros((2,), "float32"), "preconditioned", 0.5, 0.5)
    np.testing.assert_allclose(_numpy(c_skip), 1.0)
    np.testing.assert_allclose(_numpy(c_out), 0.0)


@pytest.mark.parametrize("parameterization", ["residual", "preconditioned"])
def test_skip_networks_start_as_the_identity_at_small_t(parameterization):
    """Untrained, F(x_t, t) = x_t exactly for "residual" and at t = 0 for "preconditioned":
    the output convolution starts at zero."""
    network = TimeConditionalUNet(widths=(8, 16), blocks_per_level=1, parameterization=parameterization)
    images = RNG.uniform(-1, 1, (3, 37, 31, 3)).astype("float32")
    output = _numpy(network([images, TIMES]))
    np.testing.assert_allclose(output[0], images[0], atol=1e-6)
    if parameterization == "residual":
        np.testing.assert_allclose(output, images, atol=1e-6)


def test_auto_is_the_measured_default_and_x_for_mismatched_channels():
    from keras_indi.networks.parameterization import DEFAULT_PARAMETERIZATION

    assert TimeConditionalUNet(widths=(8,)).parameterization == DEFAULT_PARAMETERIZATION
    assert TimeConditionalUNet(widths=(8,), in_channels=6, out_channels=3).parameterization == "x"
    assert TimeConditionalMLP(features=2).parameterization == DEFAULT_PARAMETERIZATION


def test_bad_parameterization_arguments_are_clear_errors():
    with pytest.raises(ValueError, match="parameterization"):
        TimeConditionalUNet(widths=(8,), parameterization="epsilon")
    with pytest.raises(ValueError, match="as many input as output channels"):
        TimeConditionalUNet(widths=(8,), in_channels=6, out_channels=3, parameterization="residual")
    with pytest.raises(ValueError, match="degradation_std"):
        TimeConditionalUNet(widths=(8,), degradation_std=0.0)
    with pytest.raises(ValueError, match="same shape"):
        estimate_degradation_std(np.zeros((2, 4, 4, 3)), np.zeros((2, 4, 4, 1)))
    with pytest.raises(ValueError, match="finite"):
        estimate_degradation_std(np.full((1, 2), np.nan), np.zeros((1, 2)))


@pytest.mark.parametrize("parameterization", ["x", "residual", "preconditioned"])
def test_every_parameterization_serializes_and_runs_in_mixed_precision(parameterization):
    images = RNG.uniform(-1, 1, (3, 12, 10, 3)).astype("float32")
    kwargs = {"widths": (8,), "blocks_per_level": 1, "parameterization": parameterization, "degradation_std": 0.3}
    run_layer_test(TimeConditionalUNet, kwargs, [images, TIMES], (3, 12, 10, 3))
    run_layer_test(
        TimeConditionalMLP,
        {"features": 2, "hidden_units": (8,), "parameterization": parameterization},
        [RNG.normal(size=(3, 2)).astype("float32"), TIMES],
        (3, 2),
    )


def test_preconditioned_skip_is_exact_under_mixed_precision():
    """The skip term is added in float32: at t = 0 the output equals x_t to float32 accuracy
    even when the U-Net computes in bfloat16."""
    network = TimeConditionalUNet(widths=(8,), blocks_per_level=1, dtype="mixed_bfloat16")
    images = RNG.uniform(-1, 1, (2, 8, 8, 3)).astype("float32")
    output = _numpy(network([images, np.zeros((2,), "float32")]))
    assert output.dtype == np.float32
    np.testing.assert_allclose(output, images, atol=1e-6)


def test_keras_file_keeps_the_parameterization(tmp_path):
    network = TimeConditionalUNet(widths=(8,), blocks_per_level=1, parameterization="residual", degradation_std=0.2)
    model = InDIModel(network, seed=0)
    images = RNG.uniform(-1, 1, (2, 8, 8, 3)).astype("float32")
    expected = model.restore(images, num_steps=3, seed=0, progress_bar=False)
    path = str(tmp_path / "model.keras")
    model.save(path)
    loaded = keras.saving.load_model(path)
    assert loaded.network.parameterization == "residual"
    assert loaded.network.degradation_std == 0.2
    np.testing.assert_allclose(loaded.restore(images, num_steps=3, seed=0, progress_bar=False), expected, atol=1e-5)


def test_default_network_trains_and_restores():
    network = TimeConditionalUNet(widths=(8,), blocks_per_level=1)
    model = InDIModel(network, seed=0)
    model.compile(optimizer=keras.optimizers.Adam(1e-3))
    clean = RNG.uniform(-1, 1, (8, 8, 8, 3)).astype("float32")
    degraded = np.clip(clean + 0.1 * RNG.normal(size=clean.shape), -1, 1).astype("float32")
    history = model.fit(degraded, clean, batch_size=4, epochs=2, verbose=0)
    assert np.all(np.isfinite(history.history["loss"]))
    restored = model.restore(degraded, num_steps=5, seed=0, progress_bar=False)
    assert restored.shape == clean.shape and np.all(np.isfinite(restored))


def test_configs_saved_before_the_option_load_as_x_prediction():
    """A .keras file from before `parameterization` existed was trained to predict x: it must
    not load as a skip-connected network (a silent change of its outputs)."""
    config = TimeConditionalUNet(widths=(8,), blocks_per_level=1).get_config()
    del config["parameterization"]
    assert TimeConditionalUNet.from_config(config).parameterization == "x"
    mlp_config = TimeConditionalMLP(features=2, hidden_units=(8,)).get_config()
    del mlp_config["parameterization"]
    assert TimeConditionalMLP.from_config(mlp_config).parameterization == "x"
