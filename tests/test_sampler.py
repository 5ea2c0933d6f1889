import keras
import numpy as np
import pytest

from keras_indi import InDIModel, InDISampler, make_time_grid
from keras_indi.backend import step_noise
from keras_indi.networks import TimeConditionalMLP, TimeConditionalUNet
from keras_indi.samplers import indi_step, validate_time_grid
from keras_indi.schedules import BrownianNoise, ConstantNoise

from conftest import BACKEND
from probes import Identity, TimeEcho

RNG = np.random.default_rng(0)
VECTORS = RNG.uniform(-0.9, 0.9, (6, 2)).astype("float32")
IMAGES = RNG.uniform(-0.9, 0.9, (2, 37, 31, 3)).astype("float32")


def mlp():
    keras.utils.set_random_seed(0)
    network = TimeConditionalMLP(features=2, hidden_units=(16, 16))
    network([VECTORS, np.ones(6, "float32")])
    return network


NETWORK = mlp()


def numpy(x):
    return keras.ops.convert_to_numpy(x)


def test_one_step_equals_regression_without_noise():
    sampler = InDISampler(NETWORK, noise_schedule=0.0)
    restored = sampler(VECTORS, num_steps=1, seed=0, progress_bar=False)
    expected = numpy(NETWORK([VECTORS, np.ones(6, "float32")]))
    # Equal up to float rounding: the sampler runs compiled (XLA may fuse differently).
    np.testing.assert_allclose(restored, expected, atol=1e-6)


def test_one_step_equals_regression_on_noisy_input():
    sampler = InDISampler(NETWORK, noise_schedule=ConstantNoise(0.05))
    restored = sampler(VECTORS, num_steps=1, seed=11, progress_bar=False)
    noisy = VECTORS + 0.05 * numpy(step_noise(VECTORS.shape, 11, 0))
    expected = numpy(NETWORK([noisy, np.ones(6, "float32")]))
    np.testing.assert_allclose(restored, expected, atol=1e-6)


@pytest.mark.parametrize("num_steps, spacing", [(1, "uniform"), (4, "uniform"), (7, "quadratic"), (5, "cosine")])
def test_network_sees_the_grid_and_never_t_zero(num_steps, spacing):
    sampler = InDISampler(TimeEcho(), noise_schedule=0.0)
    output = sampler(np.zeros((2, 3), "float32"), num_steps=num_steps, spacing=spacing, seed=0,
                     return_trajectory=True, progress_bar=False)
    seen = output.clean_estimates[:, 0, 0]
    grid = make_time_grid(num_steps, spacing=spacing)
    np.testing.assert_allclose(seen, grid[:-1], rtol=1e-6)
    assert seen.min() > 0.0
    assert output.trajectory.shape == (num_steps + 1, 2, 3)
    assert output.clean_estimates.shape == (num_steps, 2, 3)
    np.testing.assert_array_equal(output.trajectory[-1], output.restored)
    np.testing.assert_array_equal(output.restored, output.clean_estimates[-1])  # x_0 = F(x_d, d)


def test_t_start_partial_restoration():
    sampler = InDISampler(TimeEcho(), noise_schedule=0.0)
    output = sampler(np.zeros((1, 2), "float32"), num_steps=4, t_start=0.5, seed=0,
                     return_trajectory=True, progress_bar=False)
    np.testing.assert_allclose(output.time_grid, [0.5, 0.375, 0.25, 0.125, 0.0])
    assert output.clean_estimates[0, 0, 0] == pytest.approx(0.5)


def test_stochastic_term_vanishes_for_constant_noise():
    sampler = InDISampler(NETWORK, noise_schedule=ConstantNoise(0.1))
    stochastic = sampler(VECTORS, num_steps=8, seed=3, stochastic=True, progress_bar=False)
    deterministic = sampler(VECTORS, num_steps=8, seed=3, stochastic=False, progress_bar=False)
    np.testing.assert_array_equal(stochastic, deterministic)
    assert float(numpy(ConstantNoise(0.1).transition_std(0.5, 0.25))) == 0.0


def test_identity_network_keeps_the_input_for_constant_noise_free_sampling():
    sampler = InDISampler(Identity(), noise_schedule=0.0)
    np.testing.assert_allclose(sampler(VECTORS, num_steps=10, seed=0, progress_bar=False), VECTORS, atol=1e-6)


@pytest.mark.parametrize("num_steps", [1, 2, 10, 1000])
def test_brownian_schedule_never_produces_nan(num_steps):
    sampler = InDISampler(NETWORK, noise_schedule=BrownianNoise(0.1))
    restored = sampler(VECTORS, num_steps=num_steps, seed=1, progress_bar=False)
    assert np.all(np.isfinite(restored))
    std = numpy(BrownianNoise(0.1).transition_std(np.float32(0.001), np.float32(0.0)))
    assert std == 0.0


def test_brownian_noise_is_noise_consistent():
    # With F = 0 and y = 0, x_s must have standard deviation sigma(s) = eps sqrt(s) at every step.
    class Zero(keras.layers.Layer):
        def call(self, inputs):
            return keras.ops.zeros_like(inputs[0])

    schedule = BrownianNoise(0.5)
    sampler = InDISampler(Zero(), noise_schedule=schedule)
    output = sampler(np.zeros((4000, 1), "float32"), num_steps=4, seed=0, return_trajectory=True, progress_bar=False)
    for iterate, t in zip(output.trajectory[:-1], output.time_grid[:-1]):
        assert iterate.std() == pytest.approx(0.5 * np.sqrt(t), rel=0.05)


def test_fused_and_stepwise_loops_agree_and_seed_reproduces():
    sampler = InDISampler(NETWORK, noise_schedule=BrownianNoise(0.05))
    fused = sampler(VECTORS, num_steps=6, seed=5, progress_bar=False)
    calls = []
    stepwise = sampler(VECTORS, num_steps=6, seed=5, progress_bar=False, callback=calls.append)
    np.testing.assert_allclose(fused, stepwise, atol=1e-5)
    assert [step.step for step in calls] == list(range(6))
    assert calls[-1].t_next == 0.0
    np.testing.assert_array_equal(fused, sampler(VECTORS, num_steps=6, seed=5, progress_bar=False))
    assert not np.allclose(fused, sampler(VECTORS, num_steps=6, seed=6, progress_bar=False))
    with_progress = sampler(VECTORS, num_steps=6, seed=5, progress_bar=True)
    np.testing.assert_allclose(with_progress, fused, atol=1e-5)


def test_batch_chunks():
    sampler = InDISampler(NETWORK, noise_schedule=0.0)
    whole = sampler(VECTORS, num_steps=3, seed=0, progress_bar=False)
    chunked = sampler(VECTORS, num_steps=3, seed=0, batch_size=4, progress_bar=False)
    np.testing.assert_allclose(whole, chunked, atol=1e-6)  # deterministic: chunking is invisible


@pytest.mark.skipif(BACKEND != "jax", reason="JAX compile cache check")
def test_jax_compiles_once_for_every_step_count():
    sampler = InDISampler(NETWORK, noise_schedule=BrownianNoise(0.05))
    sampler(VECTORS, num_steps=4, seed=0, progress_bar=False)
    fused = sampler._compiled[("jax", "fused", True, True)]
    sampler(VECTORS, num_steps=4, seed=9, spacing="quadratic", progress_bar=False)
    sampler(VECTORS, num_steps=4, seed=9, t_start=0.5, progress_bar=False)
    assert len(sampler._compiled) == 1
    # Weights are arguments, not constants: new weights do not recompile either.
    NETWORK.set_weights([w * 1.0 for w in NETWORK.get_weights()])
    for num_steps in (1, 7, 50, 127):  # the step count is a traced bound over a padded grid
        sampler(VECTORS, num_steps=num_steps, seed=1, progress_bar=False)
    import jax

    jitted = [cell.cell_contents for cell in fused.__closure__ if isinstance(cell.cell_contents, type(jax.jit(lambda x: x)))]
    assert jitted and jitted[0]._cache_size() == 1
    sampler(VECTORS, num_steps=128, seed=1, progress_bar=False)  # next bucket: 256 entries
    assert jitted[0]._cache_size() == 2


@pytest.mark.skipif(BACKEND != "jax", reason="JAX compile cache check")
def test_short_last_chunk_reuses_the_compiled_loop():
    sampler = InDISampler(NETWORK, noise_schedule=BrownianNoise(0.05))
    ragged = sampler(VECTORS, num_steps=3, seed=2, batch_size=4, progress_bar=False)  # chunks of 4 and 2
    assert ragged.shape == VECTORS.shape
    fused = sampler._compiled[("jax", "fused", True, True)]
    import jax

    jitted = [cell.cell_contents for cell in fused.__closure__ if isinstance(cell.cell_contents, type(jax.jit(lambda x: x)))]
    assert jitted[0]._cache_size() == 1
    again = sampler(VECTORS, num_steps=3, seed=2, batch_size=4, progress_bar=False)
    np.testing.assert_array_equal(ragged, again)
    stepwise = sampler(VECTORS, num_steps=3, seed=2, batch_size=4, return_trajectory=True, progress_bar=False)
    np.testing.assert_allclose(stepwise.restored, ragged, atol=1e-5)
    assert stepwise.trajectory.shape == (4,) + VECTORS.shape
    seen = []
    sampler(VECTORS, num_steps=2, seed=2, batch_size=4, callback=lambda step: seen.append(tuple(step.sample.shape)), progress_bar=False)
    assert seen == [(4, 2), (4, 2), (2, 2), (2, 2)]  # the padded last chunk shows its real inputs


def test_unet_restore_odd_image_size():
    model = InDIModel(TimeConditionalUNet(widths=(8, 16), blocks_per_level=1), seed=0)
    restored = model.restore(IMAGES, num_steps=3, seed=0, progress_bar=False)
    assert restored.shape == IMAGES.shape and np.all(np.isfinite(restored))


def test_indi_step_formula():
    # (d / t) F + (1 - d / t) x_t with t = 0.8, d = 0.2.
    value = numpy(indi_step(np.float32(2.0), np.float32(1.0), 0.8, 0.6))
    assert value == pytest.approx(0.25 * 2.0 + 0.75 * 1.0)


@pytest.mark.parametrize(
    "kwargs, message",
    [
        ({"num_steps": 0}, "num_steps"),
        ({"num_steps": 2.5}, "num_steps"),
        ({"t_start": 0.0}, "t_start"),
        ({"t_start": 1.5}, "t_start"),
        ({"time_grid": [1.0, 0.5]}, "end at exactly 0"),
        ({"time_grid": [1.0, 0.7, 0.8, 0.0]}, "decreasing"),
        ({"time_grid": [1.2, 0.0]}, "start in"),
        ({"spacing": "log"}, "spacing"),
        ({"seed": -1}, "seed"),
        ({"batch_size": 0}, "batch_size"),
        ({"callback": 3}, "callback"),
    ],
)
def test_bad_sampler_options(kwargs, message):
    sampler = InDISampler(NETWORK, noise_schedule=0.0)
    with pytest.raises(ValueError, match=message):
        sampler(VECTORS, progress_bar=False, **kwargs)


def test_bad_sampler_inputs():
    model = InDIModel(TimeConditionalUNet(widths=(8,), blocks_per_level=1), seed=0)
    with pytest.raises(ValueError, match="floating-point"):
        model.restore((IMAGES * 127).astype("int32"), progress_bar=False)
    with pytest.raises(ValueError, match=r"\[0, 255\]"):
        model.restore(IMAGES * 127.5 + 127.5, progress_bar=False)
    with pytest.raises(ValueError, match="NaN"):
        model.restore(np.full_like(IMAGES, np.nan), progress_bar=False)
    with pytest.raises(ValueError, match="rank"):
        model.restore(np.zeros((4,), "float32"), progress_bar=False)
    with pytest.raises(ValueError, match="rank 4"):
        model.restore(np.zeros((2, 8, 8), "float32"), progress_bar=False)
    with pytest.raises(ValueError, match="channels"):
        model.restore(np.zeros((2, 8, 8, 1), "float32"), progress_bar=False)


def test_explicit_time_grid():
    assert validate_time_grid([1.0, 0.3, 0.0]).dtype == np.float32
    sampler = InDISampler(TimeEcho(), noise_schedule=0.0)
    output = sampler(np.zeros((1, 2), "float32"), time_grid=[0.9, 0.3, 0.0], seed=0,
                     return_trajectory=True, progress_bar=False)
    np.testing.assert_allclose(output.clean_estimates[:, 0, 0], [0.9, 0.3], rtol=1e-6)


@pytest.mark.skipif(BACKEND != "tensorflow", reason="tf.function trace count")
def test_tensorflow_traces_once_for_every_step_count_and_chunk():
    sampler = InDISampler(NETWORK, noise_schedule=BrownianNoise(0.05))
    for num_steps in (1, 4, 10, 100):
        sampler(VECTORS, num_steps=num_steps, seed=3, batch_size=4, progress_bar=False)
    fused = sampler._compiled[("tensorflow", "fused", True, True)]
    assert fused.experimental_get_tracing_count() == 1


def test_torch_compile_only_when_the_model_asks_for_it():
    model = InDIModel(mlp(), noise_schedule=0.0, seed=0)
    assert model.sampler._torch_compile() is False  # Keras' "auto" is eager on torch
    model.compile(optimizer="adam", jit_compile=True)
    # Only torch compiles the network evaluation on request (JAX and TensorFlow always compile).
    assert model.sampler._torch_compile() is (BACKEND == "torch")
    assert InDISampler(mlp(), noise_schedule=0.0)._torch_compile() is False  # a bare network


@pytest.mark.skipif(BACKEND != "torch", reason="torch.compile of the network evaluation: torch only")
def test_torch_compiled_restoration_matches_eager_and_follows_new_weights():
    eager = InDIModel(mlp(), noise_schedule=0.01, seed=0)
    compiled = InDIModel(mlp(), noise_schedule=0.01, seed=0)
    compiled.compile(optimizer="adam", jit_compile=True)
    for _ in range(2):
        np.testing.assert_allclose(
            compiled.restore(VECTORS, num_steps=4, seed=3, progress_bar=False),
            eager.restore(VECTORS, num_steps=4, seed=3, progress_bar=False),
            atol=1e-5,
        )
        # New weights (as after more training) are read at the next call, not baked in.
        new_weights = [w * 0.5 for w in eager.get_weights()]
        eager.set_weights(new_weights)
        compiled.set_weights(new_weights)


@pytest.mark.slow
@pytest.mark.skipif(BACKEND != "torch", reason="Keras' jit_compile=True on torch (torch.compile of the train step)")
def test_torch_jit_compiled_fit_matches_eager_fit():
    losses = []
    for jit_compile in (False, True):
        keras.utils.set_random_seed(0)
        network = TimeConditionalUNet(widths=(8, 16), blocks_per_level=1, groups=4)
        model = InDIModel(network, seed=0)
        model.compile(optimizer=keras.optimizers.Adam(1e-3, use_ema=True, ema_momentum=0.9), jit_compile=jit_compile)
        clean = IMAGES[:, :16, :16]
        history = model.fit(np.clip(clean + 0.1, -1, 1), clean, batch_size=2, epochs=2, verbose=0)
        losses.append(history.history["loss"])
    np.testing.assert_allclose(losses[1], losses[0], rtol=1e-4)
    # A second input size (here validation images of another size) compiles another version
    # instead of a symbolic-size one, which Keras' torch random functions cannot run.
    other = IMAGES[:, :24, :24]
    model.fit(clean, clean, batch_size=2, epochs=1, verbose=0, validation_data=(other, other))
    assert np.isfinite(model.evaluate(other[:, :20, :20], other[:, :20, :20], verbose=0))
