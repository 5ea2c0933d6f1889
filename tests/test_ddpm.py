"""The conditional DDPM baseline: schedules, objective, DDIM / DDPM sampling, saving."""

import os

import keras
import numpy as np
import pytest
from keras import ops

from keras_indi import ConditionalDDPM, DDPMSampler, DDPMSchedule
from keras_indi.models.ddpm import ddim_step, get_ddpm_schedule
from keras_indi.networks import TimeConditionalUNet

from conftest import BACKEND

RNG = np.random.default_rng(0)
CLEAN = RNG.uniform(-0.9, 0.9, (8, 9, 7, 1)).astype("float32")  # odd image size
DEGRADED = np.clip(0.5 * CLEAN + 0.1 * RNG.normal(size=CLEAN.shape), -1, 1).astype("float32")
VECTORS = RNG.uniform(-0.9, 0.9, (6, 2)).astype("float32")


class Oracle(keras.layers.Layer):
    """Reads the clean image from the conditioning channels (so use degraded = clean) and
    returns the exact epsilon of ``x_n`` (``mode="epsilon"``), the clean image (``"x0"``) or
    the time it was given (``"time"``). Counts its Python calls (NFE on eager torch)."""

    def __init__(self, schedule, mode="epsilon", **kwargs):
        super().__init__(**kwargs)
        self.table = schedule.alphas_cumprod.astype("float32")
        self.mode = mode
        self.calls = 0

    def call(self, inputs):
        self.calls += 1
        x_input, t = inputs
        channels = x_input.shape[-1] // 2
        sample, clean = x_input[..., :channels], x_input[..., channels:]
        t = ops.reshape(ops.cast(t, "float32"), (-1,) + (1,) * (len(sample.shape) - 1))
        if self.mode == "time":
            return ops.zeros_like(sample) + t
        if self.mode == "x0":
            return clean
        steps = ops.cast(ops.round(t * float(len(self.table))), "int32") - 1
        alpha_bar = ops.take(ops.convert_to_tensor(self.table), steps)
        return (sample - ops.sqrt(alpha_bar) * clean) / ops.sqrt(1.0 - alpha_bar)


class Mix(keras.layers.Layer):
    """A cheap random network ``[x_input, t] -> x_input @ W + t b`` (quick to compile)."""

    def build(self, input_shape):
        channels = input_shape[0][-1]
        self.kernel = self.add_weight(shape=(channels, channels // 2), initializer="glorot_normal", name="kernel")
        self.bias = self.add_weight(shape=(channels // 2,), initializer="ones", name="bias")

    def call(self, inputs):
        x_input, t = inputs
        t = ops.reshape(ops.cast(t, x_input.dtype), (-1,) + (1,) * (len(x_input.shape) - 1))
        return ops.matmul(x_input, self.kernel) + t * self.bias


def tiny_unet():
    keras.utils.set_random_seed(0)
    return TimeConditionalUNet(widths=(8,), blocks_per_level=1, in_channels=2, out_channels=1)


def oracle_model(mode="epsilon", schedule=None, **kwargs):
    schedule = schedule or DDPMSchedule("linear", 50)
    return ConditionalDDPM(Oracle(schedule, mode), schedule=schedule,
                           prediction="x0" if mode in ("x0", "time") else "epsilon", **kwargs)


# -- schedules ------------------------------------------------------------------------------
@pytest.mark.backend_agnostic
@pytest.mark.parametrize("kind", ["linear", "cosine"])
@pytest.mark.parametrize("steps", [1, 10, 1000])
def test_schedule_invariants(kind, steps):
    schedule = DDPMSchedule(kind, steps)
    alpha_bar = schedule.alphas_cumprod
    assert alpha_bar.shape == (steps,) and np.all(alpha_bar > 0.0) and np.all(alpha_bar < 1.0)
    assert np.all(np.diff(alpha_bar) < 0.0)
    assert np.all((schedule.betas > 0.0) & (schedule.betas <= 0.999))
    np.testing.assert_allclose(schedule.times, np.arange(1, steps + 1) / steps, rtol=1e-6)
    if steps == 1000:
        if kind == "linear":
            assert schedule.betas[0] == pytest.approx(1e-4) and schedule.betas[-1] == pytest.approx(0.02)
            assert alpha_bar[-1] < 1e-4
        else:
            assert alpha_bar[0] > 0.9999 and alpha_bar[-1] < 1e-6
    assert DDPMSchedule.from_config(schedule.get_config()) == schedule
    assert keras.saving.deserialize_keras_object(keras.saving.serialize_keras_object(schedule)) == schedule


@pytest.mark.backend_agnostic
def test_timesteps_are_distinct_and_span_the_schedule():
    schedule = DDPMSchedule("cosine", 37)
    for num_steps in range(1, 38):
        steps = schedule.timesteps(num_steps)
        assert len(steps) == num_steps and steps[0] == 36 and np.all(np.diff(steps) < 0)
        assert num_steps == 1 or steps[-1] == 0
    assert get_ddpm_schedule("cosine", 37) == schedule
    assert get_ddpm_schedule(schedule.get_config()) == schedule


def test_forward_process_mean_and_variance():
    model = oracle_model()
    clean = np.full((20000, 1), 0.6, "float32")
    noise = RNG.normal(size=clean.shape).astype("float32")
    for step in (0, 25, 49):
        x = ops.convert_to_numpy(model.forward_process(clean, np.full((20000,), step, "int32"), noise))
        alpha_bar = model.schedule.alphas_cumprod[step]
        np.testing.assert_allclose(x, np.sqrt(alpha_bar) * clean + np.sqrt(1 - alpha_bar) * noise, atol=1e-5)
        assert x.mean() == pytest.approx(0.6 * np.sqrt(alpha_bar), abs=0.02)
        assert x.var() == pytest.approx(1.0 - alpha_bar, rel=0.03, abs=1e-4)


def test_ddim_step_last_step_returns_clean_estimate():
    assert float(ops.convert_to_numpy(ddim_step(0.3, 0.7, 0.2, 1.0, eta=1.0, noise=5.0))) == pytest.approx(0.7)


# -- sampling -------------------------------------------------------------------------------
@pytest.mark.parametrize("method, eta", [("ddim", 0.0), ("ddim", 0.5), ("ddpm", None)])
def test_oracle_epsilon_reconstructs_exactly(method, eta):
    model = oracle_model()
    for num_steps in (1, 3, 50):
        output = model.restore(VECTORS, num_steps=num_steps, method=method, eta=eta, seed=1,
                               return_trajectory=True, progress_bar=False)
        np.testing.assert_allclose(output.restored, VECTORS, atol=2e-4)
        estimates = output.clean_estimates
        np.testing.assert_allclose(estimates, np.broadcast_to(VECTORS, estimates.shape), atol=2e-4)
        assert output.trajectory.shape == (num_steps + 1,) + VECTORS.shape
        np.testing.assert_array_equal(output.trajectory[-1], output.restored)
        fused = model.restore(VECTORS, num_steps=num_steps, method=method, eta=eta, seed=1, progress_bar=False)
        np.testing.assert_allclose(fused, VECTORS, atol=2e-4)


@pytest.mark.parametrize("kind", ["linear", "cosine"])
def test_trajectory_keeps_the_forward_marginals(kind):
    # With exact x0 predictions, every DDPM iterate x_n is distributed as the forward process.
    schedule = DDPMSchedule(kind, 20)
    model = oracle_model("x0", schedule=schedule)
    clean = np.full((4000, 1), 0.5, "float32")
    output = model.restore(clean, num_steps=5, method="ddpm", seed=0, return_trajectory=True, progress_bar=False)
    for iterate, step in zip(output.trajectory[:-1], schedule.timesteps(5), strict=True):
        alpha_bar = schedule.alphas_cumprod[step]
        assert iterate.mean() == pytest.approx(0.5 * np.sqrt(alpha_bar), abs=0.05)
        assert iterate.std() == pytest.approx(np.sqrt(1.0 - alpha_bar), rel=0.05)


def test_network_evaluations_equal_num_steps_at_the_scheduled_times():
    model = oracle_model("time", value_range=None)
    schedule = model.schedule
    for num_steps in (1, 4, 50):
        calls = []
        output = model.restore(VECTORS, num_steps=num_steps, seed=0, return_trajectory=True,
                               callback=calls.append, progress_bar=False)
        seen = output.clean_estimates[:, 0, 0]  # the x0 "prediction" is the time the network saw
        np.testing.assert_allclose(seen, schedule.times[schedule.timesteps(num_steps)], rtol=1e-6)
        np.testing.assert_allclose(output.time_grid, np.append(seen, 0.0), rtol=1e-6)
        assert seen.min() > 0.0 and len(calls) == num_steps
        assert [c.step for c in calls] == list(range(num_steps)) and calls[-1].t_next == 0.0
        if BACKEND == "torch":  # eager: each Python call is one network evaluation
            model.network.calls = 0
            model.restore(VECTORS, num_steps=num_steps, seed=0, progress_bar=False)
            assert model.network.calls == num_steps


@pytest.mark.parametrize("kind, method", [("linear", "ddim"), ("cosine", "ddpm")])
def test_no_nan_for_1_to_1000_steps(kind, method):
    model = oracle_model(schedule=DDPMSchedule(kind, 1000))
    for num_steps in (1, 2, 10, 1000):
        restored = model.restore(VECTORS, num_steps=num_steps, method=method, seed=2, progress_bar=False)
        assert np.all(np.isfinite(restored))
        np.testing.assert_allclose(restored, VECTORS, atol=2e-3)


def test_seeded_reproducibility_fused_stepwise_and_chunks():
    keras.utils.set_random_seed(0)
    model = ConditionalDDPM(Mix(), schedule="cosine", num_timesteps=20, seed=0)
    fused = model.restore(DEGRADED[:3], num_steps=4, method="ddpm", seed=5, progress_bar=False)
    assert fused.shape == (3, 9, 7, 1) and np.all(np.isfinite(fused)) and fused.dtype == np.float32
    np.testing.assert_array_equal(fused, model.restore(DEGRADED[:3], num_steps=4, method="ddpm", seed=5, progress_bar=False))
    assert not np.allclose(fused, model.restore(DEGRADED[:3], num_steps=4, method="ddpm", seed=6, progress_bar=False))
    stepwise = model.restore(DEGRADED[:3], num_steps=4, method="ddpm", seed=5, progress_bar=True)
    np.testing.assert_allclose(fused, stepwise, atol=1e-5)
    # eta and the seed are arguments of the compiled loop: no new compile.
    model.restore(DEGRADED[:3], num_steps=4, method="ddim", eta=0.3, seed=9, progress_bar=False)
    assert len(model.sampler._compiled) == 2  # one fused loop, one single step
    # Chunks get their own seeds; with the oracle the result does not depend on the noise.
    oracle = oracle_model()
    chunked = oracle.restore(VECTORS, num_steps=5, method="ddpm", seed=0, batch_size=4, progress_bar=False)
    np.testing.assert_allclose(chunked, VECTORS, atol=2e-4)


def test_fit_save_load_round_trip(tmp_path):
    model = ConditionalDDPM(tiny_unet(), schedule=DDPMSchedule("cosine", 30), prediction="x0", loss="l1", seed=3)
    model.compile(optimizer=keras.optimizers.Adam(1e-3), metrics=["mae"])
    weights = np.linspace(0.5, 1.5, len(CLEAN)).astype("float32")
    history = model.fit(DEGRADED, CLEAN, sample_weight=weights, batch_size=4, epochs=1,
                        validation_data=(DEGRADED, CLEAN), verbose=0)
    assert set(history.history) >= {"loss", "mae", "val_loss", "val_mae"}
    assert all(np.isfinite(v[0]) for v in history.history.values())
    expected = model.restore(DEGRADED[:2], num_steps=3, method="ddim", seed=7, progress_bar=False)
    path = os.path.join(tmp_path, "ddpm.keras")
    model.save(path)
    loaded = keras.saving.load_model(path)
    assert isinstance(loaded, ConditionalDDPM)
    assert loaded.schedule == DDPMSchedule("cosine", 30)
    assert (loaded.prediction, loaded.loss_norm, loaded.seed) == ("x0", "l1", 3)
    np.testing.assert_allclose(
        loaded.restore(DEGRADED[:2], num_steps=3, method="ddim", seed=7, progress_bar=False), expected, atol=1e-6
    )
    predicted = ops.convert_to_numpy(loaded(DEGRADED[:2]))
    assert predicted.shape == (2, 9, 7, 1) and predicted.min() >= -1.0 and predicted.max() <= 1.0
    # Re-compiled with the saved optimizer state, ready to keep training.
    assert loaded.compiled and loaded.loss.name == "ddpm_l1"
    assert len(loaded.optimizer.variables) == len(model.optimizer.variables)


def test_mixed_precision_epsilon_training():
    previous = keras.config.dtype_policy()
    keras.config.set_dtype_policy("mixed_bfloat16")
    try:
        model = ConditionalDDPM(Mix(), num_timesteps=20, seed=0)  # the network runs in bfloat16
        model.compile(optimizer="adam")
        history = model.fit(DEGRADED, CLEAN, batch_size=8, epochs=1, verbose=0)
        assert np.isfinite(history.history["loss"][0])
        assert model.network.compute_dtype == "bfloat16"
        restored = model.restore(DEGRADED[:2], num_steps=3, seed=0, progress_bar=False)
        assert restored.dtype == np.float32 and np.all(np.isfinite(restored))
    finally:
        keras.config.set_dtype_policy(previous)


# -- errors ---------------------------------------------------------------------------------
def test_bad_options_are_clear_errors():
    network = Oracle(DDPMSchedule("linear", 10))
    for kwargs, message in [
        ({"schedule": "sigmoid"}, "schedule"),
        ({"schedule": DDPMSchedule("linear", 10), "num_timesteps": 20}, "disagrees"),
        ({"num_timesteps": 0}, "num_timesteps"),
        ({"prediction": "v"}, "prediction"),
        ({"loss": "l3"}, "loss"),
        ({"seed": 1.5}, "seed"),
        ({"value_range": (1.0, -1.0)}, "value_range"),
        ({"clip_range": (1.0, -1.0)}, "clip_range"),
        ({"clip_range": "yes"}, "clip_range"),
    ]:
        with pytest.raises(ValueError, match=message):
            ConditionalDDPM(network, **kwargs)
    with pytest.raises(ValueError, match="network"):
        ConditionalDDPM(lambda inputs: inputs)
    for kwargs, message in [({"kind": "quadratic"}, "kind"), ({"num_timesteps": 0}, "num_timesteps"),
                            ({"max_beta": 1.0}, "max_beta"), ({"beta_start": 0.1, "beta_end": 0.01}, "beta_end")]:
        with pytest.raises(ValueError, match=message):
            DDPMSchedule(**kwargs)


@pytest.mark.parametrize(
    "kwargs, message",
    [
        ({"num_steps": 0}, "num_steps"),
        ({"num_steps": 51}, "training timesteps"),
        ({"num_steps": 2.5}, "num_steps"),
        ({"method": "euler"}, "method"),
        ({"eta": 1.5}, "eta"),
        ({"method": "ddpm", "eta": 0.5}, "eta"),
        ({"seed": -1}, "seed"),
        ({"batch_size": 0}, "batch_size"),
        ({"callback": 3}, "callback"),
        ({"clip_denoised": (1.0, -1.0)}, "clip_denoised"),
        ({"clip_denoised": "yes"}, "clip_denoised"),
    ],
)
def test_bad_sampler_options(kwargs, message):
    model = oracle_model()
    with pytest.raises(ValueError, match=message):
        model.restore(VECTORS, progress_bar=False, **kwargs)


@pytest.mark.parametrize(
    "degraded, message",
    [
        ((VECTORS * 127).astype("int32"), "floating-point"),
        (VECTORS * 127.5 + 127.5, r"\[0, 255\]"),
        (np.full_like(VECTORS, np.nan), "NaN"),
        (np.zeros((4,), "float32"), "rank"),
    ],
)
def test_bad_restore_inputs(degraded, message):
    with pytest.raises(ValueError, match=message):
        oracle_model().restore(degraded, progress_bar=False)


def test_bad_training_data_and_networks_are_clear_errors():
    with pytest.raises(ValueError, match="prediction"):
        DDPMSampler(oracle_model().network, prediction="score")
    model = ConditionalDDPM(tiny_unet(), num_timesteps=10, seed=0)
    model.compile()
    with pytest.raises(ValueError, match="same shape"):
        model.fit(DEGRADED, CLEAN[:, :8], epochs=1, verbose=0)
    with pytest.raises(ValueError, match="pairs"):
        model.fit(CLEAN, epochs=1, verbose=0)
    with pytest.raises(ValueError, match="channels"):
        model.restore(np.zeros((1, 8, 8, 3), "float32"), num_steps=2, progress_bar=False)
    no_out_channels = ConditionalDDPM(TimeConditionalUNet(widths=(8,), blocks_per_level=1, in_channels=2))
    with pytest.raises(ValueError, match="out_channels=1"):
        no_out_channels.restore(DEGRADED[:1], num_steps=1, progress_bar=False)
    with pytest.raises(ValueError, match="out_channels=1"):
        no_out_channels(DEGRADED[:1])


def test_explicit_clip_range_for_a_model_without_value_range():
    """Noisy inputs may leave [-1, 1] (value_range=None) while estimates are still clipped."""
    model = oracle_model(value_range=None)
    loud = VECTORS * 3.0
    unclipped = model.restore(loud, num_steps=3, seed=0, progress_bar=False, return_trajectory=True)
    clipped = model.restore(loud, num_steps=3, seed=0, progress_bar=False, clip_denoised=(-1.0, 1.0), return_trajectory=True)
    assert np.abs(clipped.clean_estimates).max() <= 1.0 + 1e-6
    assert np.abs(unclipped.clean_estimates).max() > 1.0


def test_clipping_is_its_own_option():
    """`clip_range` clips the clean estimates; `value_range` only checks the inputs."""
    loud = VECTORS * 3.0  # noisy inputs leave [-1, 1]: accepted by the default value_range
    clipped = oracle_model(value_range=None, clip_range=(-1.0, 1.0))
    assert clipped.clip_range == (-1.0, 1.0) and clipped.value_range is None
    output = clipped.restore(loud, num_steps=3, seed=0, progress_bar=False, return_trajectory=True)
    assert np.abs(output.clean_estimates).max() <= 1.0 + 1e-6
    unclipped = oracle_model(clip_range=None)
    assert unclipped.value_range == (-1.0, 1.0)
    output = unclipped.restore(loud, num_steps=3, seed=0, progress_bar=False, return_trajectory=True)
    assert np.abs(output.clean_estimates).max() > 1.0
    # The default follows value_range, as before the option existed (older saved models too).
    assert oracle_model().clip_range == (-1.0, 1.0)
    assert oracle_model(value_range=(-2.0, 2.0)).clip_range == (-2.0, 2.0)
    config = ConditionalDDPM(tiny_unet(), num_timesteps=10, clip_range=(-2.0, 2.0)).get_config()
    assert config["clip_range"] == [-2.0, 2.0]
    assert ConditionalDDPM.from_config(config).clip_range == (-2.0, 2.0)
    del config["clip_range"]  # a model saved before the option existed
    assert ConditionalDDPM.from_config(config).clip_range == (-1.0, 1.0)
