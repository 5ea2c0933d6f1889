import keras
import numpy as np
import pytest

from keras_indi.layers import (
    Downsample,
    FourierTimeEmbedding,
    InDIForwardProcess,
    SinusoidalTimeEmbedding,
    SpatialSelfAttention,
    TimeResidualBlock,
    Upsample,
)
from keras_indi.networks import TimeConditionalMLP, TimeConditionalUNet
from keras_indi.testing import run_layer_test

RNG = np.random.default_rng(0)
IMAGES = RNG.uniform(-1, 1, (2, 37, 31, 8)).astype("float32")
TIMES = np.array([0.25, 1.0], "float32")


def test_sinusoidal_time_embedding():
    run_layer_test(SinusoidalTimeEmbedding, {"dim": 16}, TIMES, (2, 16))


def test_sinusoidal_embedding_separates_close_times():
    embedding = SinusoidalTimeEmbedding(64)
    values = keras.ops.convert_to_numpy(embedding(np.array([0.50, 0.51], "float32")))
    assert np.linalg.norm(values[0] - values[1]) > 0.5  # 100-step samplers need this resolution


def test_fourier_time_embedding():
    run_layer_test(FourierTimeEmbedding, {"dim": 16, "seed": 3}, TIMES, (2, 16))


def test_time_residual_block():
    embedding = RNG.normal(size=(2, 32)).astype("float32")
    run_layer_test(TimeResidualBlock, {"filters": 16}, [IMAGES, embedding], (2, 37, 31, 16))
    run_layer_test(
        TimeResidualBlock, {"filters": 8, "scale_shift": False, "dropout": 0.1},
        [IMAGES, embedding], (2, 37, 31, 8),
    )


def test_down_and_upsample():
    run_layer_test(Downsample, {"filters": 4}, IMAGES[:, :36, :30], (2, 18, 15, 4))
    run_layer_test(Upsample, {"filters": 4}, IMAGES[:, :9, :7], (2, 18, 14, 4))


def test_spatial_self_attention():
    run_layer_test(SpatialSelfAttention, {"num_heads": 2}, IMAGES[:, :5, :3], (2, 5, 3, 8))


def test_spatial_self_attention_rejects_bad_heads():
    with pytest.raises(ValueError, match="divisible by num_heads"):
        SpatialSelfAttention(num_heads=3)(IMAGES[:, :4, :4])


def test_forward_process_layer_interpolates():
    clean = np.zeros((2, 4, 5, 3), "float32")
    degraded = np.ones((2, 4, 5, 3), "float32")
    noise = np.ones((2, 4, 5, 3), "float32")
    run_layer_test(
        InDIForwardProcess, {"noise_schedule": 0.1}, [clean, degraded, TIMES, noise], (2, 4, 5, 3),
        run_fit=False,
    )
    layer = InDIForwardProcess(noise_schedule=0.1)
    x_t = keras.ops.convert_to_numpy(layer([clean, degraded, TIMES, noise]))
    # x_t = (1 - t) * 0 + t * 1 + t * 0.1 * 1
    np.testing.assert_allclose(x_t[0], 0.25 * 1.1, rtol=1e-6)
    np.testing.assert_allclose(x_t[1], 1.1, rtol=1e-6)


def test_forward_process_brownian_is_finite_at_zero():
    layer = InDIForwardProcess(noise_schedule="brownian")
    x_t = layer([np.zeros((1, 2, 2, 1), "float32"), np.ones((1, 2, 2, 1), "float32"),
                 np.zeros((1,), "float32"), np.ones((1, 2, 2, 1), "float32")])
    np.testing.assert_array_equal(keras.ops.convert_to_numpy(x_t), 0.0)


def test_forward_process_rejects_mismatched_shapes():
    with pytest.raises(ValueError, match="same shape"):
        InDIForwardProcess()([np.zeros((1, 4, 4, 3), "float32"), np.zeros((1, 4, 5, 3), "float32"), TIMES[:1]])


@pytest.mark.parametrize("size", [(37, 31), (5, 3)])
def test_unet_any_image_size(size):
    network = TimeConditionalUNet(widths=(8, 16, 16), blocks_per_level=1, attention_levels=(2,), in_channels=3)
    images = RNG.uniform(-1, 1, (2,) + size + (3,)).astype("float32")
    output = network([images, TIMES])
    assert tuple(output.shape) == (2,) + size + (3,)
    assert keras.backend.standardize_dtype(output.dtype) == "float32"


def test_unet_serialization_and_mixed_precision():
    images = RNG.uniform(-1, 1, (2, 12, 10, 3)).astype("float32")
    kwargs = {"widths": (8,), "blocks_per_level": 1, "attention_levels": (0,), "dropout": 0.1,
              "in_channels": 3, "out_channels": 3}
    run_layer_test(TimeConditionalUNet, kwargs, [images, TIMES], (2, 12, 10, 3))


def test_unet_rejects_bad_inputs():
    network = TimeConditionalUNet(widths=(8,), blocks_per_level=1, in_channels=3)
    with pytest.raises(ValueError, match="rank 4"):
        network([np.zeros((2, 8, 3), "float32"), TIMES])
    with pytest.raises(ValueError, match="channels"):
        network([np.zeros((2, 8, 8, 4), "float32"), TIMES])
    with pytest.raises(ValueError, match=r"\[x_t, t\]"):
        network(np.zeros((2, 8, 8, 3), "float32"))
    with pytest.raises(ValueError, match="attention_levels"):
        TimeConditionalUNet(widths=(8, 16), attention_levels=(2,))
    with pytest.raises(ValueError, match="widths"):
        TimeConditionalUNet(widths=())


def test_mlp():
    vectors = RNG.normal(size=(4, 2)).astype("float32")
    run_layer_test(
        TimeConditionalMLP, {"features": 2, "hidden_units": (16, 16)},
        [vectors, np.linspace(0, 1, 4).astype("float32")], (4, 2),
    )
    with pytest.raises(ValueError, match="features"):
        TimeConditionalMLP(features=2)([np.zeros((4, 3), "float32"), np.ones((4,), "float32")])
