"""Tests of keras_indi.degradations.

Tests of NumPy-only code (kernels, JPEG, validation, configs) are marked ``backend_agnostic``
(they run in the backend-agnostic pass only). The NumPy form of the degradations runs their keras.ops
implementation with the active backend, so its tests run on every backend, like the layer form.
"""

import importlib.util
import io
import json
import math
import os
import subprocess
import sys

import keras
import numpy as np
import pytest
from PIL import Image

from keras_indi import degradations as deg
from keras_indi.degradations.base import serialize_degradation
from keras_indi.degradations.blur import backend_convolve
from keras_indi.degradations.noise import add_noise
from keras_indi.degradations.jpeg import TF_TOLERANCE

requires_tensorflow = pytest.mark.skipif(
    importlib.util.find_spec("tensorflow") is None, reason="TensorFlow is not installed"
)

agnostic = pytest.mark.backend_agnostic

#: Whether the backend computes float64 (not JAX by default); the NumPy form then keeps
#: float64 inputs in float64.
BACKEND_FLOAT64 = keras.backend.standardize_dtype(keras.ops.convert_to_tensor(np.zeros(1)).dtype) == "float64"


def images(shape, seed=0):
    """Uniform random test images in [-1, 1] (every pixel independent: a hard case)."""
    return np.random.default_rng(seed).uniform(-1, 1, size=shape).astype("float32")


def all_degradations(seed=None):
    """One instance of every degradation (random parameters where they exist)."""
    return [
        deg.AdditiveGaussianNoise(seed=seed),
        deg.PureNoise(seed=seed),
        deg.GaussianBlur(seed=seed),
        deg.DefocusBlur(seed=seed),
        deg.MotionBlur(kernel_size=15, num_steps=300, seed=seed),
        deg.JPEGCompression(seed=seed),
        deg.BicubicDownsample(factor=4, seed=seed),
        deg.Compose(
            [deg.GaussianBlur(sigma_range=(0.5, 1.5)), deg.AdditiveGaussianNoise(sigma=0.05)], seed=seed
        ),
    ]


# -- independent reference implementations (do not reuse library code) -------------------------
def _keys_cubic(x):
    x = abs(x)
    if x <= 1:
        return 1.5 * x**3 - 2.5 * x**2 + 1
    if x <= 2:
        return -0.5 * x**3 + 2.5 * x**2 - 4 * x + 2
    return 0.0


def _mirror(index, length):
    """MATLAB's symmetric index mirroring, 1-based: 0 -> 1, -1 -> 2, n + 1 -> n, ..."""
    while index < 1 or index > length:
        index = 1 - index if index < 1 else 2 * length + 1 - index
    return index


def _resize_axis_loop(array, out_length, scale):
    """Straightforward loop over output pixels of MATLAB imresize along axis 0."""
    in_length = array.shape[0]
    width = 4.0 / scale if scale < 1 else 4.0
    out = np.zeros((out_length,) + array.shape[1:], dtype="float64")
    for x in range(1, out_length + 1):
        u = x / scale + 0.5 * (1 - 1 / scale)
        left = math.floor(u - width / 2)
        weights, sources = [], []
        for j in range(left, left + math.ceil(width) + 2):
            w = scale * _keys_cubic(scale * (u - j)) if scale < 1 else _keys_cubic(u - j)
            weights.append(w)
            sources.append(_mirror(j, in_length) - 1)
        total = sum(weights)
        for w, source in zip(weights, sources, strict=True):
            out[x - 1] += (w / total) * array[source]
    return out


def matlab_imresize_loop(image, out_h, out_w, scale_h, scale_w):
    """Reference (H, W, C) resize: rows then columns, each with the loop above."""
    rows = _resize_axis_loop(image.astype("float64"), out_h, scale_h)
    cols = _resize_axis_loop(np.swapaxes(rows, 0, 1), out_w, scale_w)
    return np.swapaxes(cols, 0, 1)


def convolve_loop(image, kernel):
    """Direct per-channel true convolution with numpy 'reflect' padding, (H, W, C)."""
    kh, kw = kernel.shape
    padded = np.pad(image.astype("float64"), ((kh // 2, kh // 2), (kw // 2, kw // 2), (0, 0)), mode="reflect")
    out = np.zeros(image.shape, dtype="float64")
    height, width = image.shape[:2]
    for a in range(kh):
        for b in range(kw):
            # y[i] = sum_k K[k] x[i - (k - r)]: flipped kernel over the padded window.
            out += kernel[kh - 1 - a, kw - 1 - b] * padded[a : a + height, b : b + width]
    return out


def pillow_round_trip(uint8_image, quality):
    pil = Image.fromarray(uint8_image[..., 0] if uint8_image.shape[-1] == 1 else uint8_image)
    buffer = io.BytesIO()
    pil.save(buffer, format="JPEG", quality=quality)
    return np.asarray(Image.open(io.BytesIO(buffer.getvalue()))).reshape(uint8_image.shape)


# -- kernels -----------------------------------------------------------------------------------
@agnostic
def test_kernels_sum_to_one_and_are_valid():
    for sigma in (0.0, 0.5, 1.7, 3.0):
        kernel = deg.gaussian_kernel(sigma)
        assert kernel.shape[0] % 2 == 1 and kernel.shape[0] == kernel.shape[1]
        np.testing.assert_allclose(kernel.sum(), 1.0, atol=1e-12)
        np.testing.assert_allclose(kernel, kernel.T, atol=1e-15)
        assert (kernel >= 0).all()
    np.testing.assert_array_equal(deg.gaussian_kernel(0.0), [[1.0]])
    for radius in (0.3, 2.0, 3.5, 6.0):
        kernel = deg.disk_kernel(radius)
        np.testing.assert_allclose(kernel.sum(), 1.0, atol=1e-12)
        np.testing.assert_allclose(kernel, kernel[::-1, ::-1], atol=1e-15)
        assert (kernel >= 0).all()
    kernels = deg.motion_blur_kernels(6, kernel_size=21, rng=np.random.default_rng(0), num_steps=400)
    assert kernels.shape == (6, 21, 21)
    np.testing.assert_allclose(kernels.sum(axis=(1, 2)), 1.0, atol=1e-12)
    assert (kernels >= 0).all()


@agnostic
def test_disk_kernel_is_area_weighted():
    # Fully covered pixels weigh the most; coverage = kernel / max sums to the disk area.
    for radius in (2.0, 3.3, 6.0):
        kernel = deg.disk_kernel(radius)
        coverage = kernel / kernel.max()
        np.testing.assert_allclose(coverage.sum(), math.pi * radius**2, rtol=5e-3)
        centre = kernel.shape[0] // 2
        assert coverage[centre, centre] == 1.0
        # Edge pixels are partially covered (anti-aliased), not 0/1.
        assert ((coverage > 0.05) & (coverage < 0.95)).any()
    # Gaussian taps follow exp(-k^2 / 2 sigma^2).
    kernel = deg.gaussian_kernel(1.5)
    centre = kernel.shape[0] // 2
    np.testing.assert_allclose(
        kernel[centre, centre + 2] / kernel[centre, centre], math.exp(-4 / 4.5), rtol=1e-12
    )


@agnostic
def test_motion_kernels_are_centred_and_per_sample():
    kernels = deg.motion_blur_kernels(5, kernel_size=31, rng=np.random.default_rng(1), num_steps=500)
    grid = np.arange(31)
    for kernel in kernels:
        np.testing.assert_allclose((kernel.sum(axis=1) * grid).sum(), 15.0, atol=1e-9)  # row centroid
        np.testing.assert_allclose((kernel.sum(axis=0) * grid).sum(), 15.0, atol=1e-9)  # column centroid
    assert not np.allclose(kernels[0], kernels[1])
    # No anxiety: a straight segment whose length follows exposure * max_length.
    line = deg.motion_blur_kernels(
        1, 31, rng=np.random.default_rng(2), anxiety=0.0, exposure=0.5, num_steps=500
    )[0]
    rows, cols = np.nonzero(line > 1e-3)
    extent = math.hypot(rows.max() - rows.min(), cols.max() - cols.min())
    assert 12 <= extent <= 18, extent  # 0.5 * 30 pixels long


def test_convolve_matches_direct_loop_and_orientation():
    x = images((2, 37, 31, 2))
    kernels = deg.motion_blur_kernels(2, kernel_size=9, rng=np.random.default_rng(3), num_steps=300)
    out = deg.convolve(x, kernels)
    for index in range(2):
        np.testing.assert_allclose(out[index], convolve_loop(x[index], kernels[index]), atol=1e-5)
    # A true convolution of a centred delta reproduces the (asymmetric) kernel.
    delta = np.zeros((1, 21, 21, 1), "float32")
    delta[0, 10, 10, 0] = 1.0
    np.testing.assert_allclose(deg.convolve(delta, kernels[0])[0, 6:15, 6:15, 0], kernels[0], atol=1e-6)
    # Images smaller than the kernel: "reflect" repeats its reflections, as numpy.pad does.
    tiny = images((1, 4, 3, 2))
    np.testing.assert_allclose(deg.convolve(tiny, kernels[0])[0], convolve_loop(tiny[0], kernels[0]), atol=1e-5)


# -- bicubic (MATLAB imresize) -------------------------------------------------------------------
@pytest.mark.parametrize(
    "shape, scale, output_shape",
    [
        ((37, 31, 2), 0.25, None),
        ((37, 31, 2), 0.5, None),
        ((37, 31, 1), 4, None),
        ((10, 9, 3), 1 / 3, None),
        ((37, 31, 2), None, (20, 45)),
        ((5, 6, 1), 0.25, None),
    ],
)
def test_imresize_matches_matlab_loop(shape, scale, output_shape):
    x = images(shape, seed=4).astype("float64")
    if scale is not None:
        out_h, out_w = math.ceil(scale * shape[0]), math.ceil(scale * shape[1])
        scale_h = scale_w = scale
        result = deg.imresize(x, scale=scale)
    else:
        out_h, out_w = output_shape
        scale_h, scale_w = out_h / shape[0], out_w / shape[1]
        result = deg.imresize(x, output_shape=output_shape)
    expected = matlab_imresize_loop(x, out_h, out_w, scale_h, scale_w)
    assert result.shape == expected.shape and result.dtype == np.float64
    # Computed in float64 where the backend has it; JAX (without x64) computes in float32.
    np.testing.assert_allclose(result, expected, atol=1e-12 if BACKEND_FLOAT64 else 1e-6)


def test_imresize_shapes_and_dtypes():
    x = images((2, 37, 31, 3))
    assert deg.imresize(x, scale=0.5).shape == (2, 19, 16, 3)
    assert deg.imresize(x[0, :, :, 0], scale=2).shape == (74, 62)
    assert deg.imresize(x, scale=0.5).dtype == np.float32
    even = x[:, :36, :30]
    np.testing.assert_allclose(
        deg.imresize(even, scale=(0.5, 1.0))[0], deg.imresize(even[0], output_shape=(18, 30)), atol=1e-6
    )
    matrix = deg.imresize_matrix(16, scale=0.25)
    assert matrix.shape == (4, 16)
    np.testing.assert_allclose(matrix.sum(axis=1), 1.0, atol=1e-12)


def test_bicubic_downsample_constants_and_ramps():
    factor, size = 4, 64
    sr = deg.BicubicDownsample(factor=factor, clip=False)
    constant = np.full((1, size, 48, 3), 0.3, "float32")
    np.testing.assert_allclose(sr(constant), constant, atol=1e-6)
    # Linear ramps: reproduced exactly wherever neither the 16-tap antialiased downsampling
    # kernel nor the 4-tap upsampling kernel reaches MATLAB's mirrored border samples. That
    # holds at least 4 * factor pixels from every border (the measured border band is 3.5 * factor).
    i, j = np.meshgrid(np.arange(size), np.arange(48), indexing="ij")
    ramp = (0.9 * (i - size / 2) / size + 0.6 * (j - 24) / 48).astype("float32")[None, :, :, None]
    out = sr(ramp)
    margin = 4 * factor
    np.testing.assert_allclose(
        out[:, margin:-margin, margin:-margin], ramp[:, margin:-margin, margin:-margin], atol=2e-6
    )
    assert np.abs(out - ramp).max() > 1e-3  # the border band does differ (symmetric mirroring)
    # Equals imresize down then up.
    x = images((2, 32, 24, 3))
    expected = deg.imresize(deg.imresize(x, scale=1 / factor), scale=factor)
    np.testing.assert_allclose(sr(x), expected, atol=1e-6)
    # Clipping (default) keeps [-1, 1].
    clipped = deg.BicubicDownsample(factor=4)(x)
    assert clipped.min() >= -1.0 and clipped.max() <= 1.0
    assert deg.SuperResolution is deg.BicubicDownsample


@agnostic
def test_bicubic_non_divisible_size_raises():
    with pytest.raises(ValueError, match="divisible by 4"):
        deg.BicubicDownsample(factor=4)(images((37, 32, 3)))
    with pytest.raises(ValueError, match="divisible by 4"):
        deg.BicubicDownsample(factor=4)(images((1, 32, 31, 3)))
    with pytest.raises(ValueError, match="factor"):
        deg.BicubicDownsample(factor=0)


# -- JPEG ----------------------------------------------------------------------------------------
@agnostic
@pytest.mark.parametrize("channels", [1, 3])
def test_jpeg_equals_pillow(channels):
    x = images((3, 37, 31, channels), seed=5)
    jpeg = deg.JPEGCompression(quality_range=(5, 60), seed=0)
    parameters = jpeg.sample_parameters(3, np.random.default_rng(0))
    out = jpeg.apply(x, parameters)
    assert len(set(parameters["quality"].tolist())) > 1  # per-sample qualities
    pixels = np.clip(np.rint((x + 1.0) * 127.5), 0, 255).astype("uint8")
    for index in range(3):
        decoded = pillow_round_trip(pixels[index], int(parameters["quality"][index]))
        np.testing.assert_array_equal(np.rint((out[index] + 1.0) * 127.5).astype("uint8"), decoded)
        np.testing.assert_array_equal(
            out[index], decoded.astype("float32") / np.float32(127.5) - np.float32(1)
        )
    fixed = deg.JPEGCompression(quality=20)(x[0])
    decoded = pillow_round_trip(pixels[0], 20)
    np.testing.assert_array_equal(fixed, decoded.astype("float32") / np.float32(127.5) - np.float32(1))


@agnostic
@requires_tensorflow
def test_jpeg_tensorflow_path_matches_pillow():
    import tensorflow as tf

    x = images((3, 37, 31, 3), seed=6)
    jpeg = deg.JPEGCompression(quality_range=(5, 60))
    quality = np.array([5, 20, 60])
    expected = jpeg.apply(x, {"quality": quality})
    out = jpeg.apply_tf(tf.constant(x), quality=tf.constant(quality)).numpy()
    # Stated tolerance: one 8-bit level (TF_TOLERANCE); observed exactly equal.
    np.testing.assert_allclose(out, expected, atol=TF_TOLERANCE + 1e-6)
    # Inside tf.data, with stateless per-element seeds, on single images.
    dataset = (
        tf.data.Dataset.from_tensor_slices(x)
        .enumerate()
        .map(lambda i, image: jpeg.apply_tf(image, seed=tf.stack([tf.cast(i, tf.int32), 0])))
    )
    first = np.stack([e.numpy() for e in dataset])
    second = np.stack([e.numpy() for e in dataset])
    assert first.shape == x.shape
    np.testing.assert_array_equal(first, second)
    with pytest.raises(ValueError, match="seed"):
        jpeg.apply_tf(tf.constant(x))


@agnostic
def test_jpeg_bad_channels():
    with pytest.raises(ValueError, match="channels"):
        deg.JPEGCompression(quality=10)(images((1, 16, 16, 2)))
    with pytest.raises(ValueError, match="quality"):
        deg.JPEGCompression(quality=0)


# -- noise ---------------------------------------------------------------------------------------
def test_noise_statistics_and_units():
    x = images((2, 64, 64, 3))
    noisy = deg.AdditiveGaussianNoise(sigma=0.2, seed=0)(x)
    np.testing.assert_allclose(np.std(noisy - x), 0.2, rtol=0.03)
    noise = deg.PureNoise(seed=0)(x)
    assert noise.shape == x.shape and noise.dtype == np.float32
    np.testing.assert_allclose(np.std(noise), 1.0, rtol=0.03)
    np.testing.assert_array_equal(deg.PureNoise(seed=0)(np.zeros_like(x)), noise)  # independent of x


# -- seeds, per-sample parameters ---------------------------------------------------------------
@pytest.mark.parametrize("index", range(len(all_degradations())))
def test_seeded_reproducibility(index):
    x = images((2, 32, 32, 3), seed=7)
    first = all_degradations(seed=1)[index](x)
    again = all_degradations(seed=1)[index](x)
    other = all_degradations(seed=2)[index](x)
    assert first.shape == x.shape and first.dtype == np.float32
    np.testing.assert_array_equal(first, again)
    degradation = all_degradations(seed=1)[index]
    np.testing.assert_array_equal(degradation(x, seed=5), degradation(x, seed=5))
    if isinstance(degradation, deg.BicubicDownsample):
        np.testing.assert_array_equal(first, other)  # deterministic
    else:
        assert not np.array_equal(first, other)
        # The object's own generator advances between calls.
        assert not np.array_equal(degradation(x), degradation(x))


@pytest.mark.parametrize("index", [0, 2, 3, 4, 5])
def test_per_sample_parameters_differ_across_batch(index):
    single = images((1, 37, 31, 3), seed=8)
    batch = np.repeat(single, 4, axis=0)
    out = all_degradations(seed=0)[index](batch)
    assert out.shape == batch.shape
    for i in range(1, 4):
        assert not np.allclose(out[0], out[i])


def test_single_image_and_odd_sizes():
    x = images((37, 31, 3))
    for degradation in all_degradations(seed=0):
        if isinstance(degradation, deg.BicubicDownsample):
            continue
        assert degradation(x).shape == x.shape
    assert deg.BicubicDownsample(factor=3)(images((39, 33, 1))).shape == (39, 33, 1)


# -- Compose, tasks ------------------------------------------------------------------------------
def test_compose_applies_in_order():
    x = images((2, 24, 24, 3))
    blur, noise = deg.GaussianBlur(sigma=1.0), deg.AdditiveGaussianNoise(sigma=0.1)
    compose = deg.Compose([blur, noise], seed=0)
    parameters = compose.sample_parameters(2, np.random.default_rng(0))
    expected = noise.apply(blur.apply(x, parameters["0"]), parameters["1"])
    np.testing.assert_array_equal(compose.apply(x, parameters), expected)
    with pytest.raises(ValueError, match="list"):
        deg.Compose(blur)
    with pytest.raises(ValueError, match="Degradation"):
        deg.Compose([blur, "noise"])


@agnostic
def test_get_task_degradation():
    assert deg.TASKS == (
        "motion_deblurring",
        "defocus_deblurring",
        "super_resolution",
        "jpeg",
        "denoising",
        "generation",
    )
    expected = [
        deg.MotionBlur,
        deg.DefocusBlur,
        deg.BicubicDownsample,
        deg.JPEGCompression,
        deg.AdditiveGaussianNoise,
        deg.PureNoise,
    ]
    for task, cls in zip(deg.TASKS, expected, strict=True):
        degradation = deg.get_task_degradation(task, seed=3)
        assert type(degradation) is cls and degradation.seed == 3
    assert deg.get_task_degradation("super_resolution").factor == 4
    assert deg.get_task_degradation("Super-Resolution", factor=2).factor == 2
    with pytest.raises(ValueError, match="motion_deblurring, defocus_deblurring, super_resolution"):
        deg.get_task_degradation("inpainting")


# -- serialization ----------------------------------------------------------------------------
@agnostic
@pytest.mark.parametrize("index", range(len(all_degradations())))
def test_serialization_round_trip(index):
    degradation = all_degradations(seed=11)[index]
    config = degradation.get_config()
    json.dumps(config)
    clone = type(degradation).from_config(config)
    assert clone.get_config() == config
    serialized = keras.saving.serialize_keras_object(degradation)
    assert serialize_degradation(degradation) == serialized  # the TensorFlow-free serializer
    restored = keras.saving.deserialize_keras_object(json.loads(json.dumps(serialized)))
    assert type(restored) is type(degradation)
    assert json.dumps(restored.get_config()) == json.dumps(config)
    x = images((2, 32, 32, 3))
    np.testing.assert_array_equal(restored(x), degradation(x))


# -- validation -----------------------------------------------------------------------------
@agnostic
def test_bad_inputs_raise_value_errors():
    blur = deg.GaussianBlur(sigma=1.0)
    with pytest.raises(ValueError, match="batch"):
        blur(np.zeros((16, 16), "float32"))
    with pytest.raises(ValueError, match="batch"):
        blur(np.zeros((1, 1, 16, 16, 3), "float32"))
    with pytest.raises(ValueError, match="uint8.*127.5"):
        blur(np.zeros((16, 16, 3), "uint8"))
    with pytest.raises(ValueError, match="sigma"):
        deg.GaussianBlur(sigma=-1.0)
    with pytest.raises(ValueError, match="sigma_range"):
        deg.AdditiveGaussianNoise(sigma_range=(0.3, 0.1))
    with pytest.raises(ValueError, match="radius"):
        deg.DefocusBlur(radius=0)
    with pytest.raises(ValueError, match="odd"):
        deg.MotionBlur(kernel_size=30)
    with pytest.raises(ValueError, match="seed"):
        deg.PureNoise(seed="zero")
    with pytest.raises(ValueError, match="scale"):
        deg.imresize(np.zeros((8, 8), "float32"))
    with pytest.raises(ValueError, match="float"):
        deg.imresize(np.zeros((8, 8), "uint8"), scale=0.5)


@agnostic
@pytest.mark.skipif(importlib.util.find_spec("jax") is None, reason="needs the JAX backend")
def test_numpy_path_does_not_import_tensorflow():
    code = (
        "import sys, numpy as np; import keras_indi.degradations as d; "
        "x = np.zeros((1, 16, 16, 3), 'float32'); "
        "[d.get_task_degradation(t, seed=0)(x) for t in d.TASKS]; "
        "c = d.Compose([d.GaussianBlur(), d.JPEGCompression()]); "
        "assert d.Compose.from_config(c.get_config()).get_config() == c.get_config(); "
        "assert 'tensorflow' not in sys.modules, 'tensorflow was imported'"
    )
    root = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
    env = dict(os.environ, KERAS_BACKEND="jax", PYTHONPATH=root)
    result = subprocess.run(
        [sys.executable, "-c", code], check=False, env=env, capture_output=True, text=True, timeout=120
    )
    assert result.returncode == 0, result.stderr[-2000:]


# -- layer form (every backend) -------------------------------------------------------------------
def _on_gpu():
    backend = keras.backend.backend()
    if backend == "jax":
        import jax

        return jax.devices()[0].platform != "cpu"
    if backend == "torch":
        import torch

        return torch.cuda.is_available()
    import tensorflow as tf

    return bool(tf.config.list_physical_devices("GPU"))


# Layer form vs NumPy form. On CPU the float32 backend ops agree to ~1e-6. On Ampere+ GPUs,
# TensorFlow and JAX run float32 matmul/convolution in TF32 by default (10-bit mantissa), so
# the bicubic matrices and depthwise convolutions agree only to ~1e-3 there.
LAYER_ATOL = 1e-5


def _layer_atol():
    return 2e-3 if _on_gpu() else LAYER_ATOL


def _layer_output(degradation, x, seed=0):
    return keras.ops.convert_to_numpy(degradation.as_layer(seed=seed)(x))


@pytest.mark.parametrize(
    "degradation, shape",
    [
        (deg.GaussianBlur(sigma=1.3), (2, 37, 31, 3)),
        (deg.GaussianBlur(sigma=0.0), (1, 9, 8, 1)),
        (deg.DefocusBlur(radius=3.5), (2, 37, 31, 3)),
        (deg.BicubicDownsample(factor=4, clip=False), (2, 32, 24, 3)),
        (deg.BicubicDownsample(factor=4), (2, 32, 24, 3)),
        (deg.Compose([deg.DefocusBlur(radius=2.0), deg.BicubicDownsample(factor=2)]), (1, 20, 18, 2)),
    ],
)
def test_layer_matches_numpy_for_deterministic_parameters(degradation, shape):
    x = images(shape, seed=9)
    expected = degradation(x)
    np.testing.assert_allclose(_layer_output(degradation, x), expected, atol=_layer_atol())


def test_layer_per_sample_kernels_match_numpy():
    x = images((3, 23, 19, 2), seed=10)
    defocus = deg.DefocusBlur(radius_range=(2.0, 6.0))
    radius = np.array([2.5, 3.25, 5.75], "float32")  # exact in float32
    kernels = keras.ops.convert_to_numpy(defocus.backend_kernels(radius))
    np.testing.assert_allclose(kernels, defocus.kernels(radius), atol=1e-7)
    out = keras.ops.convert_to_numpy(
        backend_convolve(keras.ops.convert_to_tensor(x), keras.ops.convert_to_tensor(kernels))
    )
    np.testing.assert_allclose(out, defocus.apply(x, {"radius": radius}), atol=_layer_atol())
    gaussian = deg.GaussianBlur(sigma_range=(0.5, 2.0))
    sigma = np.array([0.5, 1.25, 2.0], "float32")
    taps = keras.ops.convert_to_numpy(gaussian.backend_taps(sigma))
    kernels = keras.ops.convert_to_tensor(taps[:, :, None] * taps[:, None, :])
    out = keras.ops.convert_to_numpy(backend_convolve(keras.ops.convert_to_tensor(x), kernels))
    np.testing.assert_allclose(out, gaussian.apply(x, {"sigma": sigma}), atol=_layer_atol())


def _backend_form(degradation, x, parameters):
    """`degradation.apply(x, parameters)` recomputed with keras.ops on backend tensors, on the
    default device: the functions its layer form runs."""
    x = keras.ops.convert_to_tensor(x)
    if isinstance(degradation, deg.Compose):
        for index, stage in enumerate(degradation.degradations):
            x = _backend_form(stage, x, parameters[str(index)])
        return x
    if isinstance(degradation, deg.GaussianBlur):
        taps = degradation.backend_taps(parameters["sigma"])
        return backend_convolve(x, taps[:, :, None] * taps[:, None, :])
    if isinstance(degradation, deg.DefocusBlur):
        return backend_convolve(x, degradation.backend_kernels(parameters["radius"]))
    if isinstance(degradation, deg.MotionBlur):  # no layer form, but a keras.ops convolution
        return backend_convolve(x, keras.ops.convert_to_tensor(parameters["kernel"], "float32"))
    if isinstance(degradation, deg.AdditiveGaussianNoise):
        noise = deg.PureNoise().apply(keras.ops.convert_to_numpy(x), {"noise_seed": parameters["noise_seed"]})
        return add_noise(x, keras.ops.convert_to_tensor(parameters["sigma"], "float32"), noise)
    assert isinstance(degradation, deg.BicubicDownsample)
    return degradation.as_layer()(x)


@pytest.mark.parametrize(
    "degradation",
    [
        deg.GaussianBlur(sigma_range=(0.5, 2.0)),
        deg.DefocusBlur(radius_range=(2.0, 6.0)),
        deg.MotionBlur(kernel_size=15, num_steps=300),
        deg.AdditiveGaussianNoise(),
        deg.BicubicDownsample(factor=4),
        deg.Compose([deg.DefocusBlur(radius_range=(1.0, 3.0)), deg.AdditiveGaussianNoise(sigma=0.05)]),
    ],
    ids=lambda degradation: type(degradation).__name__,
)
@pytest.mark.parametrize("shape", [(3, 37, 31, 3), (3, 36, 32, 3)])
def test_numpy_form_equals_backend_form(degradation, shape):
    """The NumPy form (NumPy in, NumPy out, on the CPU) runs the same keras.ops code as the
    layer form: with the same parameters both agree."""
    if isinstance(degradation, deg.BicubicDownsample) and shape[1] % 4:
        pytest.skip("BicubicDownsample needs sizes divisible by its factor")
    x = images(shape, seed=14)
    parameters = degradation.sample_parameters(shape[0], np.random.default_rng(0))
    if "sigma" in parameters or "radius" in parameters:  # exact in float32: same kernels in both forms
        key = "sigma" if "sigma" in parameters else "radius"
        parameters[key] = parameters[key].astype("float32").astype("float64")
    expected = degradation.apply(x, parameters)
    assert isinstance(expected, np.ndarray) and expected.dtype == np.float32 and expected.shape == x.shape
    out = keras.ops.convert_to_numpy(_backend_form(degradation, x, parameters))
    np.testing.assert_allclose(out, expected, atol=_layer_atol())


@requires_tensorflow
def test_numpy_form_inside_tf_data():
    """Data pipelines call the NumPy form through ``tf.numpy_function``, whatever the backend."""
    import tensorflow as tf

    x = images((2, 24, 20, 3), seed=15)
    degradation = deg.Compose(
        [deg.MotionBlur(kernel_size=9, num_steps=200), deg.BicubicDownsample(factor=2), deg.AdditiveGaussianNoise()]
    )
    dataset = tf.data.Dataset.from_tensors(x).map(
        lambda batch: tf.numpy_function(lambda b: degradation(b, seed=0), [batch], tf.float32)
    )
    np.testing.assert_allclose(next(iter(dataset)).numpy(), degradation(x, seed=0), atol=1e-6)


def test_layer_random_parameters_per_sample_and_seeded():
    x = np.repeat(images((1, 24, 24, 3), seed=11), 4, axis=0)
    for degradation in (
        deg.GaussianBlur(sigma_range=(0.5, 3.0)),
        deg.DefocusBlur(radius_range=(2.0, 6.0)),
        deg.AdditiveGaussianNoise(sigma_range=(0.05, 0.3)),
    ):
        layer = degradation.as_layer(seed=3)
        first = keras.ops.convert_to_numpy(layer(x))
        for i in range(1, 4):
            assert not np.allclose(first[0], first[i])
        np.testing.assert_allclose(_layer_output(degradation, x, seed=3), first, atol=1e-6)
        assert not np.allclose(keras.ops.convert_to_numpy(layer(x)), first)  # generator advances


def test_noise_layers_statistics():
    x = images((4, 24, 24, 3), seed=12)
    noisy = _layer_output(deg.AdditiveGaussianNoise(sigma=0.1), x)
    np.testing.assert_allclose(np.std(noisy - x), 0.1, rtol=0.05)
    noise = _layer_output(deg.PureNoise(), x)
    assert noise.shape == x.shape
    np.testing.assert_allclose(np.std(noise), 1.0, rtol=0.05)
    assert abs(float(np.corrcoef(noise.ravel(), x.ravel())[0, 1])) < 0.05


def test_layer_in_compiled_model_and_saving(tmp_path):
    degradation = deg.Compose(
        [
            deg.GaussianBlur(sigma_range=(0.5, 2.0)),
            deg.DefocusBlur(radius_range=(1.0, 3.0)),
            deg.BicubicDownsample(factor=2),
            deg.AdditiveGaussianNoise(sigma_range=(0.01, 0.1)),
        ]
    )
    inputs = keras.Input((16, 16, 3))
    model = keras.Model(inputs, degradation.as_layer(seed=0)(inputs))
    # Compiled (tf.function / jax.jit); on TensorFlow a partial last batch also exercises a
    # dynamic batch size (on JAX it would only cost a second compilation).
    x = images((6 if keras.backend.backend() == "tensorflow" else 8, 16, 16, 3), seed=13)
    first = model.predict(x, batch_size=4, verbose=0)
    second = model.predict(x, batch_size=4, verbose=0)
    assert first.shape == x.shape and np.isfinite(first).all()
    assert not np.allclose(first, second)  # the seed generator advances inside the compiled step
    if keras.backend.backend() == "tensorflow":
        # Serializing a functional model imports TensorFlow (slow on the other backends); the
        # layer itself round-trips on every backend in `test_layer_serialization_round_trip`.
        path = str(tmp_path / "degrade.keras")
        model.save(path)
        layer = keras.saving.load_model(path).layers[-1]
        assert isinstance(layer, deg.DegradationLayer)
        assert layer.get_config()["degradation"] == model.layers[-1].get_config()["degradation"]


def test_layer_serialization_round_trip():
    layer = deg.DefocusBlur(radius=2.5, seed=4).as_layer(name="defocus")
    serialized = keras.saving.serialize_keras_object(layer)
    restored = keras.saving.deserialize_keras_object(json.loads(json.dumps(serialized)))
    assert isinstance(restored, deg.DegradationLayer)
    assert restored.name == "defocus" and restored.seed == 4
    assert isinstance(restored.degradation, deg.DefocusBlur)
    assert restored.get_config() == layer.get_config()
    x = images((1, 16, 16, 3))
    np.testing.assert_allclose(
        keras.ops.convert_to_numpy(restored(x)), keras.ops.convert_to_numpy(layer(x)), atol=1e-6
    )
    clone = deg.DegradationLayer.from_config(layer.get_config())
    assert clone.degradation.get_config() == layer.degradation.get_config()


def test_layer_unsupported_and_bad_inputs():
    for degradation in (
        deg.JPEGCompression(),
        deg.MotionBlur(),
        deg.Compose([deg.PureNoise(), deg.JPEGCompression()]),
    ):
        with pytest.raises(NotImplementedError, match="data pipeline"):
            degradation.as_layer()
    with pytest.raises(ValueError, match="Degradation"):
        deg.DegradationLayer("blur")
    layer = deg.GaussianBlur(sigma=1.0).as_layer()
    with pytest.raises(ValueError, match="batch"):
        layer(np.zeros((16, 16, 3), "float32"))
    with pytest.raises(ValueError, match="float"):
        layer(keras.ops.zeros((1, 16, 16, 3), dtype="int32"))
    with pytest.raises(ValueError, match="divisible by 4"):
        deg.BicubicDownsample(factor=4).as_layer()(np.zeros((1, 18, 16, 3), "float32"))
    with pytest.raises(ValueError, match="larger than the kernel radius"):
        deg.DefocusBlur(radius=6.0).as_layer()(np.zeros((1, 5, 16, 3), "float32"))
