import os

import keras
import numpy as np
import pytest

import keras_indi
from keras_indi import InDIModel
from keras_indi.networks import TimeConditionalMLP, TimeConditionalUNet
from keras_indi.schedules import FixedTime, MassAtOneTime, PowerTime, UniformTime

from conftest import BACKEND, HAS_TENSORFLOW
from probes import TimeEcho

RNG = np.random.default_rng(0)
CLEAN = RNG.uniform(-0.8, 0.8, (16, 12, 10, 3)).astype("float32")
DEGRADED = np.clip(CLEAN + 0.2 * RNG.normal(size=CLEAN.shape), -1, 1).astype("float32")


def small_unet(**kwargs):
    # One level keeps XLA / tf.function compile times low; multi-level U-Nets are covered in
    # test_layers.py and test_sampler.py.
    return TimeConditionalUNet(widths=(8,), blocks_per_level=1, **kwargs)


def time_probe_model(seed=0, **kwargs):
    model = InDIModel(TimeEcho(), noise_schedule=0.0, loss="l2", seed=seed, **kwargs)
    model.compile(optimizer="sgd")
    return model


def probe_losses(seed, steps=4):
    # With TimeEcho, zero clean targets and the L2 loss, each step's loss is mean(t^2): it
    # reveals the times the step drew.
    model = time_probe_model(seed)
    zeros = np.zeros((8, 4, 4, 1), "float32")
    return [float(model.train_on_batch(zeros, zeros)) for _ in range(steps)]


def test_train_step_draws_new_time_each_step_and_is_reproducible():
    first = probe_losses(seed=1)
    assert len(set(np.round(first, 7))) == len(first), f"same t drawn twice: {first}"
    assert first == probe_losses(seed=1)
    assert first != probe_losses(seed=2)


def test_fit_twice_continues_training():
    """A second fit() on a fitted model (as notebooks do, cell after cell) trains on."""
    model = InDIModel(TimeConditionalUNet(widths=(8, 16), blocks_per_level=1, groups=4), seed=0)
    model.compile(optimizer=keras.optimizers.Adam(use_ema=True))
    clean = np.random.default_rng(0).uniform(-1, 1, (8, 16, 16, 3)).astype("float32")
    model.fit(0.5 * clean, clean, epochs=1, batch_size=4, verbose=0)
    history = model.fit(0.5 * clean, clean, epochs=1, batch_size=4, verbose=0)
    assert np.isfinite(history.history["loss"][0])
    assert int(model.optimizer.iterations) == 4


def test_fit_from_numpy_with_validation_metrics_and_callbacks():
    keras.utils.set_random_seed(0)
    model = InDIModel(small_unet(), seed=0)
    model.compile(optimizer=keras.optimizers.Adam(1e-3), metrics=["mae"])
    batches = []

    class CountBatches(keras.callbacks.Callback):
        def on_train_batch_end(self, batch, logs=None):
            batches.append(logs["loss"])

    history = model.fit(
        DEGRADED, CLEAN, batch_size=8, epochs=2, validation_data=(DEGRADED, CLEAN),
        callbacks=[CountBatches()], verbose=0,
    )
    assert len(batches) == 4
    assert set(history.history) >= {"loss", "mae", "val_loss", "val_mae"}
    assert all(np.isfinite(history.history["loss"]))
    evaluated = model.evaluate(DEGRADED, CLEAN, verbose=0, return_dict=True)
    assert np.isfinite(evaluated["loss"])


def test_fit_from_pydataset_and_generator():
    class Pairs(keras.utils.PyDataset):
        def __len__(self):
            return 2

        def __getitem__(self, index):
            return DEGRADED[index * 8 : (index + 1) * 8], CLEAN[index * 8 : (index + 1) * 8]

    model = InDIModel(small_unet(), seed=0)
    model.compile()
    model.fit(Pairs(), epochs=1, verbose=0)

    def generator():
        while True:
            yield DEGRADED[:8], CLEAN[:8]

    model.fit(generator(), steps_per_epoch=2, epochs=1, verbose=0)


@pytest.mark.skipif(not HAS_TENSORFLOW, reason="tf.data needs TensorFlow")
def test_fit_from_tf_data():
    import tensorflow as tf

    dataset = tf.data.Dataset.from_tensor_slices((DEGRADED, CLEAN)).batch(8)
    model = InDIModel(small_unet(), seed=0)
    model.compile()
    history = model.fit(dataset, epochs=1, verbose=0)
    assert np.isfinite(history.history["loss"][0])


def test_clean_only_data_with_degradation_callable_and_subclass():
    def darken(clean):
        return clean * 0.5

    model = InDIModel(small_unet(), degradation=darken, seed=0)
    model.compile()
    model.fit(CLEAN, epochs=1, batch_size=8, verbose=0)

    class NoisyInDI(InDIModel):
        def degrade(self, clean, training=False):
            noise = keras.random.normal(keras.ops.shape(clean), seed=self.seed_generator)
            return clean + 0.1 * noise

    subclassed = NoisyInDI(small_unet(), seed=0)
    subclassed.compile()
    history = subclassed.fit(CLEAN, epochs=1, batch_size=8, verbose=0)
    assert np.isfinite(history.history["loss"][0])


def test_clean_only_without_degradation_is_a_clear_error():
    model = InDIModel(small_unet(), seed=0)
    model.compile()
    with pytest.raises(ValueError, match="clean images only"):
        model.fit(CLEAN, epochs=1, batch_size=8, verbose=0)


@pytest.mark.parametrize("policy", ["mixed_bfloat16", "mixed_float16"])
def test_mixed_precision_training(policy):
    if policy == "mixed_float16" and BACKEND == "jax":
        pass  # runs on CPU under XLA too
    previous = keras.config.dtype_policy()
    keras.config.set_dtype_policy(policy)
    try:
        model = InDIModel(small_unet(), seed=0)
        model.compile(optimizer="adam")
        if policy == "mixed_float16":
            assert isinstance(model.optimizer, keras.optimizers.LossScaleOptimizer)
        history = model.fit(DEGRADED, CLEAN, batch_size=8, epochs=1, verbose=0)
        assert np.isfinite(history.history["loss"][0])
        restored = model.restore(DEGRADED[:2], num_steps=3, seed=0, progress_bar=False)
        assert restored.dtype == np.float32 and np.all(np.isfinite(restored))
    finally:
        keras.config.set_dtype_policy(previous)


@pytest.mark.parametrize(
    "distribution",
    ["uniform", "mass_at_one", "power", "regression", MassAtOneTime(3.0), PowerTime(2.0)],
)
def test_time_distributions_train(distribution):
    model = InDIModel(TimeConditionalMLP(features=2, hidden_units=(8,)), time_distribution=distribution,
                      noise_schedule="brownian", loss="l2", value_range=None, seed=0)
    model.compile()
    vectors = RNG.normal(size=(32, 2)).astype("float32")
    history = model.fit(vectors, vectors * 0.5, batch_size=16, epochs=1, verbose=0)
    assert np.isfinite(history.history["loss"][0])


def test_keras_file_round_trip_gives_identical_outputs(tmp_path):
    model = InDIModel(small_unet(), time_distribution=MassAtOneTime(2.0), noise_schedule="brownian",
                      loss="l2", seed=3)
    model.compile(optimizer=keras.optimizers.Adam(1e-3), metrics=["mae"])
    model.fit(DEGRADED, CLEAN, batch_size=8, epochs=1, verbose=0)
    expected = model.restore(DEGRADED[:3], num_steps=4, seed=7, progress_bar=False)
    path = os.path.join(tmp_path, "indi.keras")
    model.save(path)
    loaded = keras.saving.load_model(path)
    assert isinstance(loaded, InDIModel)
    assert loaded.time_distribution == MassAtOneTime(2.0)
    assert loaded.loss_norm == "l2" and loaded.seed == 3
    np.testing.assert_array_equal(loaded.restore(DEGRADED[:3], num_steps=4, seed=7, progress_bar=False), expected)
    np.testing.assert_array_equal(
        keras.ops.convert_to_numpy(loaded(DEGRADED[:3])), keras.ops.convert_to_numpy(model(DEGRADED[:3]))
    )
    # The loaded model is compiled and keeps training.
    loaded.fit(DEGRADED, CLEAN, batch_size=8, epochs=1, verbose=0)


def test_config_round_trip():
    model = InDIModel(small_unet(), time_distribution="power", noise_schedule=0.05, loss="l1",
                      value_range=(0.0, 1.0), seed=5)
    clone = InDIModel.from_config(model.get_config())
    assert clone.get_config()["network"]["config"] == model.get_config()["network"]["config"]
    assert clone.noise_schedule == model.noise_schedule
    assert clone.time_distribution == PowerTime(1.0)
    assert clone.value_range == (0.0, 1.0)


def test_model_call_is_one_shot_regression():
    model = InDIModel(TimeEcho(), noise_schedule=0.0)
    out = keras.ops.convert_to_numpy(model(np.zeros((2, 3, 3, 1), "float32")))
    np.testing.assert_array_equal(out, 1.0)  # F(y, t=1)


@pytest.mark.parametrize(
    "x, y, message",
    [
        (DEGRADED, CLEAN[:, :10, :8], "same shape"),
        ((CLEAN * 127.5 + 127.5).astype("uint8"), CLEAN, "floating-point"),
        (DEGRADED * 127.5 + 127.5, CLEAN, r"\[0, 255\]"),
        (np.where(RNG.uniform(size=CLEAN.shape) < 0.01, np.nan, CLEAN).astype("float32"), CLEAN, "NaN"),
        (DEGRADED[0], CLEAN[0, :, :, 0], "rank|same shape"),
    ],
)
def test_bad_fit_data_is_a_clear_error(x, y, message):
    model = InDIModel(small_unet(), seed=0)
    model.compile()
    with pytest.raises(ValueError, match=message):
        model.fit(x, y, epochs=1, verbose=0)


def test_defaults_accept_noisy_inputs_and_pure_noise():
    """The paper's own tasks with the default value_range (-1, 1): denoising (noise of std
    0.5 takes inputs to about +-2.5) and generation (restoring pure N(0, 1) noise)."""
    noisy = (CLEAN + 0.5 * RNG.normal(size=CLEAN.shape)).astype("float32")
    assert np.abs(noisy).max() > 2.0
    model = InDIModel(small_unet(), seed=0)
    model.compile()
    history = model.fit(noisy[:8], CLEAN[:8], batch_size=8, epochs=1, validation_data=(noisy[8:], CLEAN[8:]), verbose=0)
    assert np.isfinite(history.history["loss"][0])
    noise = RNG.normal(size=(2, 12, 10, 3)).astype("float32")
    restored = model.restore(noise, num_steps=2, seed=0, progress_bar=False)
    assert restored.shape == noise.shape and np.all(np.isfinite(restored))
    # Restoring [0, 255] data is still refused, with the conversion.
    with pytest.raises(ValueError, match=r"\[0, 255\] images: scale them to \[-1, 1\] with `x / 127.5 - 1`"):
        model.restore(DEGRADED[:2] * 127.5 + 127.5, num_steps=1, progress_bar=False)
    with pytest.raises(ValueError, match=r"uint8.*scale them to \[-1, 1\]"):
        model.restore((DEGRADED[:2] * 127.5 + 127.5).astype("uint8"), num_steps=1, progress_bar=False)


@pytest.mark.parametrize(
    "x, y, message",
    [
        # [0, 255] floats: as degraded inputs, as clean targets, or both.
        (DEGRADED * 127.5 + 127.5, CLEAN * 127.5 + 127.5, r"look like \[0, 255\] images: scale them to \[-1, 1\]"),
        (DEGRADED, CLEAN * 127.5 + 127.5, r"clean targets.*\[0, 255\].*x / 127.5 - 1"),
        (DEGRADED * 127.5 + 127.5, CLEAN, r"degraded inputs.*\[0, 255\].*x / 127.5 - 1"),
        # uint8 images.
        ((DEGRADED * 127.5 + 127.5).astype("uint8"), CLEAN, r"uint8.*scale them to \[-1, 1\]"),
        # Clean targets far outside [-1, 1] (e.g. noise added to the wrong array).
        (DEGRADED, 3.0 * CLEAN, r"clean targets.*expects \[-1, 1\]"),
    ],
)
def test_default_value_range_refuses_scale_mistakes(x, y, message):
    model = InDIModel(small_unet(), seed=0)
    model.compile()
    with pytest.raises(ValueError, match=message):
        model.fit(x, y, epochs=1, verbose=0)


def test_value_range_none_disables_the_checks():
    model = InDIModel(small_unet(), value_range=None, seed=0)
    model.compile()
    model.fit(DEGRADED * 127.5 + 127.5, CLEAN * 127.5 + 127.5, batch_size=8, epochs=1, verbose=0)


def test_bad_options_are_clear_errors():
    network = small_unet()
    with pytest.raises(ValueError, match="loss"):
        InDIModel(network, loss="l3")
    with pytest.raises(ValueError, match="time distribution"):
        InDIModel(network, time_distribution="gamma")
    with pytest.raises(ValueError, match="epsilon"):
        InDIModel(network, noise_schedule=-0.1)
    with pytest.raises(ValueError, match="noise schedule"):
        InDIModel(network, noise_schedule="pink")
    with pytest.raises(ValueError, match="network"):
        InDIModel(lambda inputs: inputs)
    with pytest.raises(ValueError, match="seed"):
        InDIModel(network, seed=1.5)
    with pytest.raises(ValueError, match="value_range"):
        InDIModel(network, value_range=(1.0, -1.0))
    with pytest.raises(ValueError, match="weight"):
        MassAtOneTime(-1.0)
    with pytest.raises(ValueError, match="value"):
        FixedTime(1.5)


def test_time_distributions_sample_in_range():
    seed = keras.random.SeedGenerator(0)
    for distribution, expected_mean in [(UniformTime(), 0.5), (PowerTime(3.0), 0.8), (MassAtOneTime(1.0), 0.75)]:
        t = keras.ops.convert_to_numpy(distribution.sample(4000, seed))
        assert t.shape == (4000,) and t.min() >= 0.0 and t.max() <= 1.0
        assert abs(t.mean() - expected_mean) < 0.03, (distribution, t.mean())
    t = keras.ops.convert_to_numpy(MassAtOneTime(1.0).sample(4000, seed))
    assert abs((t == 1.0).mean() - 0.5) < 0.04


def test_fit_warns_once_about_a_ragged_last_batch():
    import warnings

    model = InDIModel(TimeConditionalMLP(features=2, hidden_units=(8,)), value_range=None, seed=0)
    model.compile(optimizer="adam")
    clean = np.random.default_rng(0).normal(size=(10, 2)).astype("float32")
    with pytest.warns(UserWarning, match=r"last batch has 2.*x\[:8\]"):
        model.fit(clean + 0.1, clean, batch_size=4, epochs=1, verbose=0)
    with warnings.catch_warnings():
        warnings.simplefilter("error", UserWarning)
        model.fit(clean[:8] + 0.1, clean[:8], batch_size=4, epochs=1, verbose=0)  # full batches: quiet


@pytest.mark.skipif(BACKEND == "torch", reason="Keras allows steps_per_execution=1 only on torch")
def test_several_steps_per_execution_train_exactly_the_same():
    def train(steps_per_execution):
        keras.utils.set_random_seed(0)
        model = InDIModel(TimeConditionalMLP(features=2, hidden_units=(8,)), value_range=None, seed=0)
        model.compile(optimizer="adam", steps_per_execution=steps_per_execution)
        clean = np.random.default_rng(0).normal(size=(64, 2)).astype("float32")
        history = model.fit(clean + 0.1, clean, batch_size=8, epochs=2, shuffle=False, verbose=0)
        return model.get_weights(), history.history["loss"]

    (weights, losses), (weights_4, losses_4) = train(1), train(4)
    assert losses == pytest.approx(losses_4, rel=1e-6)
    for a, b in zip(weights, weights_4):
        np.testing.assert_allclose(a, b, rtol=1e-6, atol=1e-7)
