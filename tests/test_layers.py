import keras
import numpy as np
import pytest

from keras_indi.layers import (
    Conv2D,
    Downsample,
    FourierTimeEmbedding,
    GroupNormalization,
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


def test_group_normalization_layer():
    run_layer_test(GroupNormalization, {"groups": 4}, IMAGES, IMAGES.shape)


@pytest.mark.parametrize(
    "shape, groups, kwargs",
    [
        ((2, 37, 31, 8), 4, {}),  # odd image size
        ((2, 37, 31, 8), 8, {}),  # one channel per group
        ((3, 9, 12), 3, {}),  # rank 3 (sequences)
        ((1, 5, 4, 3, 6), 2, {"center": False}),  # rank 5, no beta
        ((2, 6, 5, 8), 2, {"scale": False, "epsilon": 1e-2}),
        ((2, 6, 5, 8), 2, {"axis": 1}),  # not the last axis: Keras' own computation
    ],
)
def test_group_normalization_matches_keras(shape, groups, kwargs, monkeypatch):
    # Same weights, same result as keras.layers.GroupNormalization, computed per channel first
    # (forced on every backend: TensorFlow normally runs Keras' own computation).
    monkeypatch.setattr("keras_indi.layers.normalization.channel_statistics_are_faster", lambda: True)
    inputs = (RNG.normal(size=shape) * 3 + 1.5).astype("float32")
    ours = GroupNormalization(groups=groups, **kwargs)
    theirs = keras.layers.GroupNormalization(groups=groups, **kwargs)
    ours.build(inputs.shape)
    theirs.build(inputs.shape)
    weights = [RNG.normal(size=w.shape).astype("float32") for w in theirs.get_weights()]
    ours.set_weights(weights)
    theirs.set_weights(weights)
    np.testing.assert_allclose(
        keras.ops.convert_to_numpy(ours(inputs)), keras.ops.convert_to_numpy(theirs(inputs)), atol=2e-5, rtol=1e-5
    )


def test_group_normalization_under_mixed_precision_matches_float32(monkeypatch):
    monkeypatch.setattr("keras_indi.layers.normalization.channel_statistics_are_faster", lambda: True)
    layer = GroupNormalization(groups=4, dtype="mixed_bfloat16")
    reference = GroupNormalization(groups=4)
    outputs = layer(IMAGES)
    assert keras.backend.standardize_dtype(outputs.dtype) == "bfloat16"
    reference.build(IMAGES.shape)
    np.testing.assert_allclose(
        keras.ops.convert_to_numpy(keras.ops.cast(outputs, "float32")),
        keras.ops.convert_to_numpy(reference(IMAGES)),
        atol=0.05,
    )


def test_conv2d_layer():
    run_layer_test(Conv2D, {"filters": 4, "kernel_size": 3, "padding": "same"}, IMAGES, (2, 37, 31, 4))
    run_layer_test(Conv2D, {"filters": 5, "kernel_size": 3, "strides": 2, "padding": "same"}, IMAGES, (2, 19, 16, 5))


CONVOLUTIONS = [
    ((2, 37, 31, 8), {"filters": 6, "kernel_size": 3, "padding": "same"}),  # odd size, symmetric padding
    ((2, 37, 31, 8), {"filters": 6, "kernel_size": 3, "strides": 2, "padding": "same"}),
    ((2, 36, 30, 8), {"filters": 6, "kernel_size": 3, "strides": 2, "padding": "same"}),  # pads bottom/right only
    ((2, 9, 8, 3), {"filters": 4, "kernel_size": 4, "padding": "same"}),  # even kernel: asymmetric padding
    ((2, 9, 8, 3), {"filters": 4, "kernel_size": (3, 1), "strides": (1, 2), "padding": "valid"}),
    ((1, 7, 5, 4), {"filters": 2, "kernel_size": 1, "use_bias": False}),
    ((1, 7, 5, 4), {"filters": 2, "kernel_size": 3, "activation": "silu", "padding": "same"}),
    ((1, 7, 5, 4), {"filters": 4, "kernel_size": 3, "groups": 2, "padding": "same"}),  # Keras' own computation
]


@pytest.mark.parametrize("shape, kwargs", CONVOLUTIONS)
def test_conv2d_matches_keras_forward_and_gradient(shape, kwargs):
    # Same weights, same outputs and the same weights after one SGD step as keras.layers.Conv2D.
    inputs = RNG.normal(size=shape).astype("float32")
    models = []
    for layer_class in (Conv2D, keras.layers.Conv2D):
        model = keras.Sequential([keras.Input(shape[1:]), layer_class(**kwargs)])
        model.compile(optimizer=keras.optimizers.SGD(0.1), loss="mse")
        models.append(model)
    weights = [RNG.normal(size=w.shape).astype("float32") for w in models[1].get_weights()]
    for model in models:
        model.set_weights(weights)
    ours, theirs = (keras.ops.convert_to_numpy(model(inputs)) for model in models)
    np.testing.assert_allclose(ours, theirs, atol=1e-4, rtol=1e-4)
    targets = RNG.normal(size=ours.shape).astype("float32")
    for model in models:
        model.fit(inputs, targets, batch_size=shape[0], epochs=1, shuffle=False, verbose=0)
    for mine, reference in zip(models[0].get_weights(), models[1].get_weights()):
        np.testing.assert_allclose(mine, reference, atol=1e-4, rtol=1e-4)


def test_conv2d_under_mixed_precision_matches_float32():
    layer = Conv2D(4, 3, padding="same", dtype="mixed_bfloat16")
    reference = keras.layers.Conv2D(4, 3, padding="same")
    outputs = layer(IMAGES)
    assert keras.backend.standardize_dtype(outputs.dtype) == "bfloat16"
    assert keras.backend.standardize_dtype(layer.kernel.dtype) == "float32"
    reference.build(IMAGES.shape)
    reference.set_weights(layer.get_weights())
    np.testing.assert_allclose(
        keras.ops.convert_to_numpy(keras.ops.cast(outputs, "float32")),
        keras.ops.convert_to_numpy(reference(IMAGES)),
        atol=0.1,
    )


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


def test_native_layout_kernels_only_on_torch_and_can_be_turned_off(monkeypatch):
    from keras_indi.backend import native_channels_last_kernels

    assert native_channels_last_kernels() == (keras.backend.backend() == "torch")
    monkeypatch.setenv("KERAS_INDI_TORCH_NATIVE_LAYOUT", "0")
    assert not native_channels_last_kernels()
    # Keras' own computation then, with the same result
    layer = Conv2D(3, 3, strides=2, padding="same")
    assert tuple(layer(IMAGES).shape) == (2, 19, 16, 3)


@pytest.mark.parametrize("dtype", ["float32", "bfloat16"])
def test_upsample_native_layout_equals_keras(monkeypatch, dtype):
    # On torch, Upsample interpolates in channels-last memory; the result, and on torch the
    # gradients, must equal Keras' UpSampling2D (the fallback, or any other backend).
    layer = Upsample(4, dtype=dtype)
    images = keras.ops.convert_to_tensor(IMAGES[:, :9, :7], dtype)

    def output_and_gradient():
        if keras.backend.backend() != "torch":
            return keras.ops.convert_to_numpy(keras.ops.cast(layer(images), "float32")), None
        import torch

        inputs = images.detach().clone().requires_grad_(True)
        outputs = layer(inputs)
        (outputs.float() ** 2).sum().backward()
        return outputs.detach().float().cpu().numpy(), inputs.grad.float().cpu().numpy()

    native = output_and_gradient()
    monkeypatch.setenv("KERAS_INDI_TORCH_NATIVE_LAYOUT", "0")
    fallback = output_and_gradient()
    assert native[0].shape == (2, 18, 14, 4)
    # The fallback also swaps the convolution's kernel: bfloat16 rounds differently there.
    tolerance = 2e-2 if dtype == "bfloat16" else 1e-5
    np.testing.assert_allclose(native[0], fallback[0], rtol=tolerance, atol=tolerance)
    if native[1] is not None:
        np.testing.assert_allclose(native[1], fallback[1], rtol=tolerance, atol=tolerance)


@pytest.mark.parametrize("dtype", ["float32", "mixed_bfloat16"])
def test_group_norm_normalize_fused_equals_layer_then_operations(monkeypatch, dtype):
    # `normalize` (on torch, without gradients: statistics, modulation and SiLU on one
    # channels-first view) must equal the layer followed by the same operations.
    import contextlib

    from keras_indi.backend import fuse_normalization_and_modulation
    from keras_indi.backend.channels_last import group_norm

    layer = GroupNormalization(groups=4, dtype=dtype)
    layer.build(IMAGES.shape)
    layer.set_weights([RNG.normal(size=(IMAGES.shape[-1],)).astype("float32") for _ in range(2)])
    scale = RNG.normal(size=(IMAGES.shape[0], 1, 1, IMAGES.shape[-1])).astype("float32")
    shift = RNG.normal(size=(IMAGES.shape[0], 1, 1, IMAGES.shape[-1])).astype("float32")
    torch_backend = keras.backend.backend() == "torch"
    if torch_backend:
        import torch

    def reference(images, scales, shifts):
        normalized = layer(images)
        return keras.ops.silu(normalized * (1.0 + keras.ops.cast(scales, normalized.dtype))
                              + keras.ops.cast(shifts, normalized.dtype))

    def as_numpy(tensor):
        return keras.ops.convert_to_numpy(keras.ops.cast(tensor, "float32"))

    tolerance = 5e-2 if dtype == "mixed_bfloat16" else 1e-5
    for native in ("1", "0"):
        monkeypatch.setenv("KERAS_INDI_TORCH_NATIVE_LAYOUT", native)
        with torch.no_grad() if torch_backend else contextlib.nullcontext():  # as restoration runs
            assert fuse_normalization_and_modulation() == (torch_backend and native == "1")
            fused = as_numpy(layer.normalize(IMAGES, scale, shift, silu=True))
            expected = as_numpy(reference(IMAGES, scale, shift))
        assert fused.shape == IMAGES.shape
        np.testing.assert_allclose(fused, expected, rtol=tolerance, atol=tolerance)
        # Without modulation or SiLU it is the layer itself
        np.testing.assert_allclose(as_numpy(layer.normalize(IMAGES)), as_numpy(layer(IMAGES)), rtol=1e-6, atol=1e-6)
    if torch_backend:
        # Gradients record the layer-then-operations form; the fused one differentiates too
        assert not fuse_normalization_and_modulation()
        results = []
        for fused in (True, False):
            images, scales, shifts = (torch.tensor(a, requires_grad=True) for a in (IMAGES, scale, shift))
            if fused:
                gamma, beta = (torch.as_tensor(keras.ops.convert_to_numpy(w)) for w in (layer.gamma, layer.beta))
                outputs = group_norm(images, 4, gamma, beta, layer.epsilon, layer.compute_dtype, scales, shifts, silu=True)
            else:
                outputs = reference(images, scales, shifts)
            (outputs.float() ** 2).sum().backward()
            results.append([t.grad.numpy() for t in (images, scales, shifts)])
        for ours, theirs in zip(*results):
            # bfloat16: the fused form modulates in float32, the reference in bfloat16
            np.testing.assert_allclose(ours, theirs, rtol=tolerance, atol=tolerance * np.abs(theirs).max())
