"""`keras_indi.utils.precision`: ``dtype="auto"`` (mixed bfloat16 on bf16 accelerators), the
KERAS_INDI_PRECISION override and the ``--precision`` option. Runs on every backend, on CPU:
the accelerator check is monkeypatched to pretend a bfloat16 GPU."""

import json
import os
import types

import keras
import numpy as np
import pytest

from keras_indi import InDIModel
from keras_indi.apps.cli import main
from keras_indi.layers.time_embedding import SinusoidalTimeEmbedding
from keras_indi.networks import TimeConditionalMLP, TimeConditionalUNet
from keras_indi.utils import precision

RNG = np.random.default_rng(0)
CLEAN = RNG.uniform(-0.8, 0.8, (8, 8, 8, 3)).astype("float32")
DEGRADED = np.clip(CLEAN + 0.2 * RNG.normal(size=CLEAN.shape), -1, 1).astype("float32")


@pytest.fixture(autouse=True)
def no_override(monkeypatch):
    monkeypatch.delenv(precision.PRECISION_VARIABLE, raising=False)


@pytest.fixture
def bfloat16_accelerator(monkeypatch):
    """Pretend the default device has bfloat16 tensor cores (an A100 or H100)."""
    monkeypatch.setattr(precision, "accelerator_supports_bfloat16", lambda: True)


def small_unet(dtype="auto"):
    return TimeConditionalUNet(widths=(8, 16), blocks_per_level=1, dtype=dtype)


def on_accelerator():
    from keras_indi.apps.experiments import device_info

    return any(kind in device.lower() for device in device_info()["devices"] for kind in ("gpu", "cuda", "tpu"))


def test_auto_is_float32_on_a_cpu():
    if on_accelerator():
        pytest.skip("this machine has an accelerator")
    assert precision.accelerator_supports_bfloat16() is False
    assert precision.default_precision() == "float32"
    assert precision.resolve_dtype("auto") == "float32"
    assert precision.resolve_dtype(None) is None  # the Keras global policy
    assert precision.resolve_dtype("mixed_float16") == "mixed_float16"
    assert small_unet().dtype_policy.name == "float32"
    assert small_unet(dtype=None).dtype_policy.name == keras.config.dtype_policy().name


@pytest.mark.parametrize("make_network", [
    # One level, four channels: eager bfloat16 ops compile slowly on JAX's CPU backend.
    lambda: TimeConditionalUNet(widths=(4,), blocks_per_level=1, groups=1, dtype="mixed_bfloat16"),
    lambda: TimeConditionalMLP(features=3, hidden_units=(8,), dtype="mixed_bfloat16"),
], ids=["unet", "mlp"])
def test_t_reaches_the_time_embedding_in_float32(make_network, monkeypatch):
    # bfloat16 keeps 8 significant bits: t = 0.995 would become 0.99609375.
    seen = []
    original = SinusoidalTimeEmbedding.call

    def call(self, t):
        seen.append(keras.backend.standardize_dtype(t.dtype))
        return original(self, t)

    monkeypatch.setattr(SinusoidalTimeEmbedding, "call", call)
    network = make_network()
    x_t = DEGRADED[:2, :4, :4] if isinstance(network, TimeConditionalUNet) else DEGRADED[:2, 0, 0]
    network([x_t, np.array([0.995, 0.99], "float32")])
    assert seen and set(seen) == {"float32"}


def test_auto_on_a_bfloat16_accelerator_trains_in_mixed_bfloat16_and_saves_the_policy(bfloat16_accelerator, tmp_path):
    assert precision.default_precision() == "mixed_bfloat16"
    assert TimeConditionalMLP(features=2, hidden_units=(8,), dtype="auto").dtype_policy.name == "mixed_bfloat16"
    network = small_unet()
    assert network.dtype_policy.name == "mixed_bfloat16"
    assert network.get_config()["dtype"]["config"]["name"] == "mixed_bfloat16"  # saved concretely, not "auto"
    model = InDIModel(network, seed=0)
    # Two eager steps beat tracing them on TensorFlow (compiled mixed-precision fit: test_model.py).
    model.compile(optimizer="adam", run_eagerly=keras.backend.backend() == "tensorflow")
    losses = [float(model.train_on_batch(DEGRADED[:4], CLEAN[:4])) for _ in range(2)]
    assert np.all(np.isfinite(losses))
    assert network.weights and all(keras.backend.standardize_dtype(w.dtype) == "float32" for w in network.weights)
    # (The shape of the build's probe: under JAX the load below reuses these compiled ops.)
    inputs = [DEGRADED[:1, :2, :2], np.array([0.5], "float32")]
    output = network(inputs)
    assert keras.backend.standardize_dtype(output.dtype) == "float32"

    path = os.path.join(tmp_path, "indi.keras")
    model.save(path)
    loaded = keras.saving.load_model(path)
    assert loaded.network.dtype_policy.name == "mixed_bfloat16"
    np.testing.assert_allclose(
        keras.ops.convert_to_numpy(loaded.network(inputs)), keras.ops.convert_to_numpy(output), atol=1e-6
    )


def fake_accelerator(monkeypatch, platform, capability):
    """Make the current backend's device query report `platform` ("gpu", "tpu", "cpu") with
    compute capability `capability` ((major, minor) or None), or raise when platform is None."""
    backend = keras.backend.backend()

    def broken(*args):
        raise RuntimeError("driver error")

    if backend == "jax":
        import jax

        device = types.SimpleNamespace(platform=platform)
        if capability is not None:
            device.compute_capability = f"{capability[0]}.{capability[1]}"
        monkeypatch.setattr(jax, "devices", broken if platform is None else lambda: [device])
    elif backend == "torch":
        import torch

        monkeypatch.setattr(torch.cuda, "is_available", broken if platform is None else lambda: platform == "gpu")
        monkeypatch.setattr(torch.cuda, "get_device_capability", lambda *args: capability)
    else:
        import tensorflow as tf

        gpus = ["GPU:0"] if platform == "gpu" else []
        monkeypatch.setattr(tf.config, "list_logical_devices", lambda kind: ["TPU:0"] if platform == "tpu" else [])
        monkeypatch.setattr(tf.config, "list_physical_devices", broken if platform is None else lambda kind: gpus)
        monkeypatch.setattr(tf.config.experimental, "get_device_details", lambda gpu: {"compute_capability": capability})


@pytest.mark.parametrize("platform, capability, expected", [
    ("gpu", (9, 0), True),  # H100
    ("gpu", (8, 0), True),  # A100
    ("gpu", (7, 5), False),  # T4: bfloat16 is emulated
    ("gpu", None, False),
    ("cpu", None, False),
    (None, None, False),  # the query fails
])
def test_accelerator_detection_reads_the_compute_capability(monkeypatch, platform, capability, expected):
    fake_accelerator(monkeypatch, platform, capability)
    assert precision.accelerator_supports_bfloat16() is expected
    assert precision.default_precision() == ("mixed_bfloat16" if expected else "float32")


def test_tpu_counts_as_a_bfloat16_accelerator(monkeypatch):
    if keras.backend.backend() == "torch":
        pytest.skip("torch/XLA TPUs are not detected (the torch backend runs on CUDA or the CPU)")
    fake_accelerator(monkeypatch, "tpu", None)
    assert precision.accelerator_supports_bfloat16() is True


def test_environment_override(monkeypatch, bfloat16_accelerator):
    monkeypatch.setenv(precision.PRECISION_VARIABLE, "float32")
    assert precision.resolve_dtype("auto") == "float32"
    monkeypatch.setenv(precision.PRECISION_VARIABLE, " Mixed_Float16 ")
    assert precision.default_precision() == "mixed_float16"
    monkeypatch.setenv(precision.PRECISION_VARIABLE, "auto")
    assert precision.default_precision() == "mixed_bfloat16"
    monkeypatch.setenv(precision.PRECISION_VARIABLE, "half")
    with pytest.raises(ValueError, match=r"KERAS_INDI_PRECISION='half'.*mixed_bfloat16"):
        precision.default_precision()
    with pytest.raises(ValueError, match="KERAS_INDI_PRECISION"):
        small_unet()


def test_precision_setting_and_loss_scaling():
    assert precision.resolve_precision("auto") == "float32"
    with pytest.raises(ValueError, match=r"`precision` must be 'auto' or one of"):
        precision.resolve_precision("fp16")
    adam = keras.optimizers.Adam()
    assert precision.loss_scaled_optimizer(adam, "mixed_bfloat16") is adam
    assert isinstance(precision.loss_scaled_optimizer(adam, "mixed_float16"), keras.optimizers.LossScaleOptimizer)


@pytest.mark.parametrize("command", ["train", "quickstart"])
def test_cli_precision_option(command, capsys):
    with pytest.raises(SystemExit) as raised:
        main([command, "--help"])
    assert raised.value.code == 0
    assert "--precision" in capsys.readouterr().out
    with pytest.raises(SystemExit) as raised:
        main([command, "--output", "unused", "--precision", "float8"])
    assert raised.value.code == 2
    assert "--precision" in capsys.readouterr().err


@pytest.mark.backend_agnostic  # the CLI is backend-agnostic code (see test_cli.py)
def test_cli_train_records_the_resolved_precision_and_refuses_to_resume_with_another(tmp_path, capsys):
    output = tmp_path / "run"
    argv = [
        "train", "--image-size", "8", "--batch-size", "2", "--widths", "4", "--blocks-per-level", "1",
        "--steps-per-epoch", "1", "--validation-samples", "2", "--epochs", "1", "--quiet", "--output", str(output),
    ]
    assert main(argv) == 0
    config = json.loads((output / "config.json").read_text())
    assert config["precision"] == "float32"  # auto, on this CPU
    with pytest.raises(SystemExit) as raised:
        main(argv + ["--resume", "--precision", "mixed_bfloat16"])
    assert raised.value.code == 2
    assert "--precision float32 -> mixed_bfloat16" in capsys.readouterr().err
