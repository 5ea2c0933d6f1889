"""Reliability: `.keras` files move between backends, samplers stay finite at every step count
and precision, and a NaN batch from a pipeline NumPy checks cannot see stops training cleanly.

The cross-backend check saves under TensorFlow (the pass it runs in) and loads in one
subprocess per other backend; those subprocesses run `main` of this module.
"""

import contextlib
import importlib.util
import json
import os
import subprocess
import sys

import keras
import numpy as np
import pytest
from keras import ops

from keras_indi import ConditionalDDPM, InDIModel
from keras_indi.callbacks import NonFiniteLossGuard
from keras_indi.networks import TimeConditionalMLP, TimeConditionalUNet
from keras_indi.samplers import ddpm_sampler, indi_sampler
from keras_indi.schedules import BrownianNoise, ConstantNoise

from conftest import BACKEND, FAST, requires_tensorflow

TESTS = os.path.dirname(os.path.abspath(__file__))
RNG = np.random.default_rng(0)
VECTORS = RNG.uniform(-0.8, 0.8, (16, 2)).astype("float32")
IMAGES = RNG.uniform(-0.8, 0.8, (8, 8, 8, 1)).astype("float32")


def degrade(clean):
    return np.clip(clean + 0.2 * np.random.default_rng(1).normal(size=clean.shape), -1, 1).astype("float32")


# -- cross-backend `.keras` files ----------------------------------------------------------------
def fixed_noise(shape, seed, step, dtype="float32"):
    """Stand-in for `keras_indi.backend.step_noise`: the same numbers on every backend.

    Sampler noise is backend-specific by design (JAX, TensorFlow and torch generators), so a
    run's noise is fixed here to compare what the loaded weights, schedules and samplers compute.
    """
    ones = ops.ones(shape, dtype)
    angle = sum(ops.cumsum(ones, axis=axis) * (0.7 + 0.3 * axis) for axis in range(len(shape)))
    return ops.sin(angle)


@contextlib.contextmanager
def backend_independent_noise():
    saved = indi_sampler.step_noise, ddpm_sampler.step_noise
    indi_sampler.step_noise = ddpm_sampler.step_noise = fixed_noise
    try:
        yield
    finally:
        indi_sampler.step_noise, ddpm_sampler.step_noise = saved


def save_trained_models(directory):
    """Train an InDIModel and a ConditionalDDPM for two steps (Adam with EMA) and save both."""
    keras.utils.set_random_seed(0)
    indi = InDIModel(TimeConditionalMLP(features=2, hidden_units=(16,)), noise_schedule=0.05, seed=1)
    unet = TimeConditionalUNet(widths=(8,), blocks_per_level=1, in_channels=2, out_channels=1)
    ddpm = ConditionalDDPM(unet, schedule="cosine", num_timesteps=100, seed=1)
    for model, clean in ((indi, VECTORS), (ddpm, IMAGES)):
        model.compile(optimizer=keras.optimizers.Adam(1e-3, use_ema=True, ema_momentum=0.9))
        model.fit(degrade(clean), clean, batch_size=clean.shape[0] // 2, epochs=1, verbose=0)
    indi.save(os.path.join(directory, "indi.keras"))
    ddpm.save(os.path.join(directory, "ddpm.keras"))
    return indi, ddpm


def reload_report(indi, ddpm):
    """What must survive a reload: sampler outputs for one seed and the optimizer state."""
    with backend_independent_noise():
        outputs = {
            "indi": indi.restore(degrade(VECTORS)[:4], num_steps=5, seed=0, progress_bar=False),
            "ddim": ddpm.restore(degrade(IMAGES)[:2], num_steps=5, seed=0, progress_bar=False),
            "ddpm": ddpm.restore(degrade(IMAGES)[:2], num_steps=4, method="ddpm", seed=0, progress_bar=False),
            "ddpm_call": ops.convert_to_numpy(ddpm(degrade(IMAGES)[:2])),
        }
    optimizers = {
        name: {
            "class": type(model.optimizer).__name__,
            "config": {k: v for k, v in model.optimizer.get_config().items() if k != "name"},
            # Paths hold per-process layer names: compare the slots in order.
            "variables": [float(np.sum(np.abs(ops.convert_to_numpy(v)))) for v in model.optimizer.variables],
        }
        for name, model in (("indi", indi), ("ddpm", ddpm))
    }
    return {name: value.tolist() for name, value in outputs.items()}, optimizers


def main(directory, report_path):
    """Subprocess entry point: load both files under this process's backend and report."""
    indi = keras.saving.load_model(os.path.join(directory, "indi.keras"))
    ddpm = keras.saving.load_model(os.path.join(directory, "ddpm.keras"))
    outputs, optimizers = reload_report(indi, ddpm)
    with open(report_path, "w") as file:
        json.dump({"backend": keras.backend.backend(), "outputs": outputs, "optimizers": optimizers}, file)


@pytest.mark.backend_agnostic
def test_keras_files_reload_on_every_backend(tmp_path):
    indi, ddpm = save_trained_models(tmp_path)
    outputs, optimizers = reload_report(indi, ddpm)
    assert optimizers["indi"]["config"]["use_ema"] and optimizers["ddpm"]["config"]["use_ema"]
    backends = [b for b in ("jax", "torch") if importlib.util.find_spec(b) is not None]
    if not backends:
        pytest.skip("neither JAX nor torch is installed")
    env = dict(os.environ, PYTHONPATH=TESTS + os.pathsep + os.environ.get("PYTHONPATH", ""), TF_CPP_MIN_LOG_LEVEL="3")
    processes = {}
    for backend in backends:  # the loads run concurrently
        command = f"import test_reliability; test_reliability.main({str(tmp_path)!r}, {str(tmp_path / backend)!r})"
        processes[backend] = subprocess.Popen(
            [sys.executable, "-c", command], env=dict(env, KERAS_BACKEND=backend),
            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
        )
    for backend, process in processes.items():
        _, stderr = process.communicate(timeout=300)
        assert process.returncode == 0, f"{backend}:\n{stderr[-4000:]}"
        report = json.loads((tmp_path / backend).read_text())
        assert report["backend"] == backend
        for name, expected in outputs.items():
            np.testing.assert_allclose(report["outputs"][name], expected, atol=2e-4, err_msg=f"{backend}: {name}")
        for name, optimizer in optimizers.items():
            loaded = report["optimizers"][name]
            assert loaded["class"] == optimizer["class"] == "Adam"
            assert loaded["config"] == optimizer["config"], (backend, name)
            # Every slot (moments, EMA copies, iterations) is restored with its value.
            np.testing.assert_allclose(loaded["variables"], optimizer["variables"], rtol=1e-5,
                                       err_msg=f"{backend}: {name} optimizer")


# -- numerical safety of the samplers --------------------------------------------------------
# JAX compiles the fused sampler loop once per step count (about a second each on a CI core):
# its fast pass keeps the extremes; TensorFlow and torch run every count.
STEP_COUNTS = (1, 1000) if BACKEND == "jax" and FAST else (1, 2, 3, 7, 100, 1000)


@pytest.fixture(params=["float32", "mixed_bfloat16", "mixed_float16"])
def policy(request):
    """Sets the global dtype policy for building networks; restores the previous one after."""
    previous = keras.config.dtype_policy()
    keras.config.set_dtype_policy(request.param)
    try:
        yield request.param
    finally:
        keras.config.set_dtype_policy(previous)


@keras.saving.register_keras_serializable(package="keras_indi_tests")
class ConcatDense(keras.layers.Layer):
    """A DDPM network for vectors: ``Dense([x_n, y]) + t`` in the layer's compute dtype."""

    def __init__(self, features, **kwargs):
        super().__init__(**kwargs)
        self.dense = keras.layers.Dense(features, dtype=self.dtype_policy)

    def call(self, inputs, training=None):
        x, t = inputs
        t = ops.cast(ops.reshape(t, (-1, 1)), self.compute_dtype)
        return self.dense(x) + t


@pytest.mark.parametrize(
    "schedule", [ConstantNoise(0.0), ConstantNoise(0.05), BrownianNoise(0.05)], ids=["none", "constant", "brownian"]
)
def test_indi_sampler_is_finite_for_every_step_count_and_precision(policy, schedule):
    model = InDIModel(TimeConditionalMLP(features=2, hidden_units=(8,)), noise_schedule=schedule, seed=0)
    assert model.network.compute_dtype == keras.config.dtype_policy().compute_dtype
    degraded = degrade(VECTORS)[:4]
    for num_steps in STEP_COUNTS:
        restored = model.restore(degraded, num_steps=num_steps, seed=num_steps, progress_bar=False)
        assert restored.dtype == np.float32 and restored.shape == degraded.shape
        assert np.all(np.isfinite(restored)), (policy, schedule, num_steps, restored)


@pytest.mark.parametrize("kind, prediction", [("linear", "epsilon"), ("cosine", "epsilon"), ("cosine", "x0")])
def test_ddpm_sampler_is_finite_in_bfloat16(kind, prediction):
    previous = keras.config.dtype_policy()
    keras.config.set_dtype_policy("mixed_bfloat16")
    try:
        model = ConditionalDDPM(ConcatDense(2), schedule=kind, num_timesteps=1000, prediction=prediction, seed=0)
    finally:
        keras.config.set_dtype_policy(previous)
    assert model.network.compute_dtype == "bfloat16"
    degraded = degrade(VECTORS)[:4]
    for num_steps in STEP_COUNTS:
        for method, clip in (("ddim", True), ("ddpm", False)):
            restored = model.restore(degraded, num_steps=num_steps, method=method, seed=0,
                                     clip_denoised=clip, progress_bar=False)
            assert np.all(np.isfinite(restored)), (kind, prediction, method, num_steps, restored)


# -- a NaN batch from a pipeline -------------------------------------------------------------
class PairsWithNaN(keras.utils.PyDataset):
    """Four (degraded, clean) batches of 4; the third has a NaN in its inputs."""

    def __len__(self):
        return 4

    def __getitem__(self, index):
        clean = VECTORS[4 * index : 4 * index + 4]
        degraded = degrade(clean)
        if index == 2:
            degraded[1, 0] = np.nan
        return degraded, clean


def assert_guard_stops_at_nan_batch(data):
    model = InDIModel(TimeConditionalMLP(features=2, hidden_units=(8,)), seed=0)
    model.compile(optimizer="adam")
    guard = NonFiniteLossGuard()
    history = model.fit(data, epochs=3, callbacks=[guard], shuffle=False, verbose=0)
    assert len(history.epoch) == 1, "training must stop in the epoch of the NaN batch"
    assert guard.stopped_at["epoch"] == 1 and guard.stopped_at["batch"] == 2
    assert not np.isfinite(guard.stopped_at["loss"])
    assert guard.message.startswith("NonFiniteLossGuard: `loss` became nan at epoch 1, batch 2")
    assert "checks NumPy arrays only, not tf.data" in guard.message


def test_nan_in_pydataset_batch_is_stopped_by_the_guard(capsys):
    assert_guard_stops_at_nan_batch(PairsWithNaN())
    assert "NonFiniteLossGuard" in capsys.readouterr().err


@requires_tensorflow
def test_nan_in_tf_data_batch_is_stopped_by_the_guard():
    import tensorflow as tf

    pairs = PairsWithNaN()
    batches = [pairs[index] for index in range(len(pairs))]
    dataset = tf.data.Dataset.from_tensor_slices(tuple(np.concatenate(parts) for parts in zip(*batches))).batch(4)
    assert_guard_stops_at_nan_batch(dataset)
