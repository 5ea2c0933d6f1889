"""Tests of keras_indi.metrics: PSNR/SSIM (every backend), SWD, power spectrum, FID/KID (NumPy)."""

import keras
import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from scipy import ndimage
from skimage import color, data
from skimage.metrics import peak_signal_noise_ratio, structural_similarity

from keras_indi import metrics
from keras_indi.metrics import perceptual

agnostic = pytest.mark.backend_agnostic

CROP = (slice(96, 256), slice(128, 320))  # 160 x 192: real content, non-square, one shape for all


def _to_unit(image):
    return image.astype("float64") / 127.5 - 1.0


def _degrade(image, kind, seed=0):
    if kind == "noise":
        noisy = image + np.random.default_rng(seed).normal(0.0, 0.1, image.shape)
        return np.clip(noisy, -1.0, 1.0)
    return ndimage.gaussian_filter(image, sigma=(1.5, 1.5, 0)[: image.ndim])


@pytest.fixture(scope="module")
def rgb_pairs():
    """astronaut and chelsea crops, each degraded by noise and by blur: (4, 160, 192, 3) x 2."""
    clean, degraded = [], []
    for image in (data.astronaut(), data.chelsea()):
        image = _to_unit(image[CROP])
        for kind in ("noise", "blur"):
            clean.append(image)
            degraded.append(_degrade(image, kind))
    return np.stack(clean), np.stack(degraded)


@pytest.fixture(scope="module")
def gray_pairs():
    image = _to_unit(data.camera()[CROP])[..., None]
    return np.stack([image, image]), np.stack([_degrade(image, "noise"), _degrade(image, "blur")])


def _skimage_ssim(a, b, data_range):
    return structural_similarity(
        a,
        b,
        gaussian_weights=True,
        sigma=1.5,
        use_sample_covariance=False,
        data_range=data_range,
        channel_axis=-1,
    )


def _np(x):
    return keras.ops.convert_to_numpy(x)


# -- PSNR / SSIM against scikit-image on real images ------------------------------------------
def test_psnr_ssim_match_skimage_rgb(rgb_pairs):
    clean, degraded = rgb_pairs
    ours_psnr = _np(metrics.psnr(clean.astype("float32"), degraded.astype("float32")))
    ours_ssim = _np(metrics.ssim(clean.astype("float32"), degraded.astype("float32")))
    assert ours_psnr.shape == (4,) and ours_ssim.shape == (4,)
    expected_psnr = [peak_signal_noise_ratio(c, d, data_range=2.0) for c, d in zip(clean, degraded)]
    expected_ssim = [_skimage_ssim(c, d, 2.0) for c, d in zip(clean, degraded)]
    np.testing.assert_allclose(ours_psnr, expected_psnr, atol=1e-3)
    np.testing.assert_allclose(ours_ssim, expected_ssim, atol=1e-4)
    # Sanity: real differences between the images and degradations.
    assert np.ptp(expected_ssim) > 0.05


def test_psnr_ssim_match_skimage_grayscale_and_255_range(gray_pairs):
    clean, degraded = gray_pairs
    clean255, degraded255 = (clean + 1) * 127.5, (degraded + 1) * 127.5
    ours_psnr = _np(
        metrics.psnr(clean255.astype("float32"), degraded255.astype("float32"), data_range=255.0)
    )
    ours_ssim = _np(
        metrics.ssim(clean255.astype("float32"), degraded255.astype("float32"), data_range=255.0)
    )
    expected_psnr = [
        peak_signal_noise_ratio(c, d, data_range=255.0) for c, d in zip(clean255, degraded255)
    ]
    expected_ssim = [_skimage_ssim(c, d, 255.0) for c, d in zip(clean255, degraded255)]
    np.testing.assert_allclose(ours_psnr, expected_psnr, atol=1e-3)
    np.testing.assert_allclose(ours_ssim, expected_ssim, atol=1e-4)


def test_y_channel_and_crop_border_match_matlab_convention(rgb_pairs):
    clean, degraded = rgb_pairs
    border = 4
    values_psnr = _np(
        metrics.psnr(
            clean.astype("float32"), degraded.astype("float32"), crop_border=border, y_channel=True
        )
    )
    values_ssim = _np(
        metrics.ssim(
            clean.astype("float32"), degraded.astype("float32"), crop_border=border, y_channel=True
        )
    )
    crop = (slice(border, -border), slice(border, -border))
    expected_psnr, expected_ssim = [], []
    for c, d in zip(clean, degraded):
        # skimage's rgb2ycbcr is MATLAB's: Y in [16, 235] for RGB in [0, 1].
        y_c = color.rgb2ycbcr((c + 1) / 2)[..., 0][crop]
        y_d = color.rgb2ycbcr((d + 1) / 2)[..., 0][crop]
        expected_psnr.append(peak_signal_noise_ratio(y_c, y_d, data_range=255.0))
        expected_ssim.append(
            structural_similarity(
                y_c,
                y_d,
                gaussian_weights=True,
                sigma=1.5,
                use_sample_covariance=False,
                data_range=255.0,
            )
        )
    np.testing.assert_allclose(values_psnr, expected_psnr, atol=1e-3)
    np.testing.assert_allclose(values_ssim, expected_ssim, atol=1e-4)
    # The same numbers for [0, 255] inputs (value range inferred from data_range).
    values_255 = _np(
        metrics.psnr(
            ((clean + 1) * 127.5).astype("float32"),
            ((degraded + 1) * 127.5).astype("float32"),
            data_range=255.0,
            crop_border=border,
            y_channel=True,
        )
    )
    np.testing.assert_allclose(values_255, expected_psnr, atol=1e-3)
    # Cropping alone changes the value and equals scoring the cropped arrays.
    cropped = _np(
        metrics.psnr(
            clean[:, 4:-4, 4:-4].astype("float32"), degraded[:, 4:-4, 4:-4].astype("float32")
        )
    )
    np.testing.assert_allclose(
        _np(metrics.psnr(clean.astype("float32"), degraded.astype("float32"), crop_border=4)),
        cropped,
        atol=1e-5,
    )


def test_rgb_to_y_values():
    rgb = np.array([[[[0.0, 0.0, 0.0], [1.0, 1.0, 1.0], [1.0, 0.0, 0.0]]]], "float32")
    y = _np(metrics.rgb_to_y(rgb))[0, 0, :, 0] * 255
    np.testing.assert_allclose(y, [16.0, 235.0, 16.0 + 65.481], atol=1e-3)


def test_single_image_identical_and_backend_tensor_inputs():
    image = np.random.default_rng(0).uniform(-1, 1, (16, 16, 3)).astype("float32")
    assert tuple(metrics.psnr(image, image * 0.9).shape) == ()
    assert np.isinf(float(metrics.psnr(image, image)))
    assert float(
        metrics.ssim(keras.ops.convert_to_tensor(image), keras.ops.convert_to_tensor(image))
    ) == pytest.approx(1.0, abs=1e-6)
    # Symmetric.
    other = np.clip(image + 0.2, -1, 1)
    assert float(metrics.ssim(image, other)) == pytest.approx(
        float(metrics.ssim(other, image)), abs=1e-6
    )


@pytest.mark.parametrize(
    "kwargs, match",
    [
        (
            {
                "reference": np.zeros((2, 16, 16, 3), "float32"),
                "estimate": np.zeros((2, 16, 17, 3), "float32"),
            },
            "same shape",
        ),
        (
            {"reference": np.zeros((16, 16), "float32"), "estimate": np.zeros((16, 16), "float32")},
            "rank",
        ),
        (
            {
                "reference": np.zeros((1, 2, 16, 16, 3), "float32"),
                "estimate": np.zeros((1, 2, 16, 16, 3), "float32"),
            },
            "rank",
        ),
        (
            {
                "reference": np.full((1, 16, 16, 3), np.nan, "float32"),
                "estimate": np.zeros((1, 16, 16, 3), "float32"),
            },
            "NaN",
        ),
        (
            {
                "reference": np.zeros((1, 16, 16, 3), "uint8"),
                "estimate": np.zeros((1, 16, 16, 3), "uint8"),
            },
            "floating",
        ),
        (
            {
                "reference": np.zeros((1, 16, 16, 1), "float32"),
                "estimate": np.zeros((1, 16, 16, 1), "float32"),
                "y_channel": True,
            },
            "3 channels",
        ),
        (
            {
                "reference": np.zeros((1, 16, 16, 3), "float32"),
                "estimate": np.zeros((1, 16, 16, 3), "float32"),
                "crop_border": 8,
            },
            "crop_border",
        ),
        (
            {
                "reference": np.zeros((1, 16, 16, 3), "float32"),
                "estimate": np.zeros((1, 16, 16, 3), "float32"),
                "crop_border": -1,
            },
            "crop_border",
        ),
        (
            {
                "reference": np.zeros((1, 16, 16, 3), "float32"),
                "estimate": np.zeros((1, 16, 16, 3), "float32"),
                "data_range": 0,
            },
            "data_range",
        ),
    ],
)
@pytest.mark.parametrize("fn", ["psnr", "ssim"])
def test_psnr_ssim_errors(fn, kwargs, match):
    with pytest.raises(ValueError, match=match):
        getattr(metrics, fn)(**kwargs)


def test_ssim_needs_11_pixels():
    with pytest.raises(ValueError, match="11x11"):
        metrics.ssim(np.zeros((1, 10, 32, 3), "float32"), np.zeros((1, 10, 32, 3), "float32"))


# -- Keras metric classes ------------------------------------------------------------------
def test_metric_classes_accumulate_across_batches(rgb_pairs):
    clean, degraded = (x[..., :32, :32, :].astype("float32") for x in rgb_pairs)
    per_image_psnr = _np(metrics.psnr(clean, degraded))
    per_image_ssim = _np(metrics.ssim(clean, degraded))
    for metric, per_image in ((metrics.PSNR(), per_image_psnr), (metrics.SSIM(), per_image_ssim)):
        metric.update_state(clean[:2], degraded[:2])
        metric.update_state(clean[2:], degraded[2:])
        assert float(metric.result()) == pytest.approx(per_image.mean(), abs=1e-4)
        metric.reset_state()
        weights = np.array([1.0, 0.0, 3.0, 0.0], "float32")
        metric.update_state(clean, degraded, sample_weight=weights)
        assert float(metric.result()) == pytest.approx(
            np.average(per_image, weights=weights), abs=1e-4
        )


def test_metric_classes_config_and_serialization():
    metric = metrics.SSIM(data_range=255.0, crop_border=2, y_channel=True, name="ssim_y")
    config = metric.get_config()
    assert (
        config["data_range"] == 255.0 and config["crop_border"] == 2 and config["y_channel"] is True
    )
    clone = metrics.SSIM.from_config(config)
    assert clone.get_config() == config
    assert keras.saving.get_registered_object("keras_indi>PSNR") is metrics.PSNR
    assert keras.saving.get_registered_object("keras_indi>SSIM") is metrics.SSIM
    if keras.backend.backend() == "tensorflow":  # serialize_keras_object imports TensorFlow
        serialized = keras.saving.serialize_keras_object(metrics.PSNR(crop_border=3))
        restored = keras.saving.deserialize_keras_object(serialized)
        assert type(restored) is metrics.PSNR and restored.crop_border == 3


def test_metric_classes_in_compiled_evaluate():
    images = np.random.default_rng(0).uniform(-1, 1, (8, 16, 16, 3)).astype("float32")
    targets = np.clip(images + 0.1, -1, 1).astype("float32")
    inputs = keras.Input((16, 16, 3))
    model = keras.Model(inputs, keras.layers.Identity()(inputs))
    model.compile(loss="mse", metrics=[metrics.PSNR(), metrics.SSIM()])
    results = model.evaluate(images, targets, batch_size=4, verbose=0, return_dict=True)
    assert results["psnr"] == pytest.approx(
        float(np.mean(_np(metrics.psnr(targets, images)))), abs=1e-3
    )
    assert results["ssim"] == pytest.approx(
        float(np.mean(_np(metrics.ssim(targets, images)))), abs=1e-4
    )


# -- sliced Wasserstein distance -------------------------------------------------------------
@pytest.fixture(scope="module")
def astronaut_tiles():
    image = _to_unit(data.astronaut())
    return np.stack(
        [
            image[100:164, 200:264],
            image[300:364, 150:214],
            image[20:84, 400:464],
            image[400:464, 50:114],
        ]
    )


@agnostic
def test_swd_zero_for_identical_and_grows_with_degradation(astronaut_tiles):
    clean = astronaut_tiles
    assert metrics.sliced_wasserstein_distance(clean, clean.copy()) == 0.0
    rng = np.random.default_rng(1)
    noise = [
        metrics.sliced_wasserstein_distance(clean, clean + rng.normal(0, s, clean.shape))
        for s in (0.02, 0.1, 0.3)
    ]
    blur = [
        metrics.sliced_wasserstein_distance(clean, ndimage.gaussian_filter(clean, (0, s, s, 0)))
        for s in (0.7, 1.5, 3.0)
    ]
    assert 0 < noise[0] < noise[1] < noise[2]
    assert 0 < blur[0] < blur[1] < blur[2]


@agnostic
def test_swd_options_seed_and_symmetry(astronaut_tiles):
    clean = astronaut_tiles
    noisy = clean + np.random.default_rng(2).normal(0, 0.1, clean.shape)
    value, levels = metrics.sliced_wasserstein_distance(clean, noisy, return_per_level=True)
    assert len(levels) == 3  # 64, 32, 16
    assert value == pytest.approx(np.mean(levels))
    assert levels[0] > levels[-1]  # noise lives in the fine levels
    assert metrics.sliced_wasserstein_distance(
        clean, noisy, seed=3
    ) == metrics.sliced_wasserstein_distance(clean, noisy, seed=3)
    assert metrics.sliced_wasserstein_distance(clean, noisy) == pytest.approx(
        metrics.sliced_wasserstein_distance(noisy, clean)
    )
    # Sets of different sizes.
    assert metrics.sliced_wasserstein_distance(clean, noisy[:2]) > 0
    # Tiny images use one level.
    _, levels = metrics.sliced_wasserstein_distance(
        clean[:, :12, :12], noisy[:, :12, :12], return_per_level=True
    )
    assert len(levels) == 1


@agnostic
def test_laplacian_pyramid_reconstructs(astronaut_tiles):
    images = astronaut_tiles[:, :50, :37]  # odd sizes
    levels = metrics.laplacian_pyramid(images, num_levels=3)
    assert [level.shape[1:3] for level in levels] == [(50, 37), (25, 19), (13, 10)]
    reconstruction = levels[-1]
    for level in reversed(levels[:-1]):
        reconstruction = level + perceptual._pyr_up(reconstruction, level.shape)
    np.testing.assert_allclose(reconstruction, images, atol=1e-10)


@agnostic
@pytest.mark.parametrize(
    "fn", [metrics.sliced_wasserstein_distance, metrics.power_spectrum_distance]
)
def test_set_metric_errors(fn):
    images = np.zeros((2, 16, 16, 3))
    with pytest.raises(ValueError, match="same"):
        fn(images, np.zeros((2, 16, 16, 1)))
    with pytest.raises(ValueError, match="shape"):
        fn(np.zeros((16, 16)), np.zeros((16, 16)))
    with pytest.raises(ValueError, match="NaN"):
        fn(images, np.full(images.shape, np.nan))
    with pytest.raises(ValueError, match="empty"):
        fn(np.zeros((0, 16, 16, 3)), images)


@agnostic
def test_swd_argument_errors():
    images = np.zeros((2, 16, 16, 3))
    with pytest.raises(ValueError, match="odd"):
        metrics.sliced_wasserstein_distance(images, images, patch_size=6)
    with pytest.raises(ValueError, match="at least 7x7"):
        metrics.sliced_wasserstein_distance(np.zeros((2, 5, 5, 3)), np.zeros((2, 5, 5, 3)))
    with pytest.raises(ValueError, match="num_projections"):
        metrics.sliced_wasserstein_distance(images, images, num_projections=0)


# -- power spectrum ------------------------------------------------------------------------
@agnostic
def test_power_spectrum_distance(astronaut_tiles):
    clean = astronaut_tiles
    assert metrics.power_spectrum_distance(clean, clean.copy()) == 0.0
    # Scaling by 1/2 divides the power by 4 at every frequency: log10(4).
    assert metrics.power_spectrum_distance(clean, 0.5 * clean) == pytest.approx(
        np.log10(4.0), abs=1e-6
    )
    blur = [
        metrics.power_spectrum_distance(clean, ndimage.gaussian_filter(clean, (0, s, s, 0)))
        for s in (0.5, 1.0, 2.0)
    ]
    rng = np.random.default_rng(0)
    noise = [
        metrics.power_spectrum_distance(clean, clean + rng.normal(0, s, clean.shape))
        for s in (0.02, 0.1, 0.3)
    ]
    assert 0 < blur[0] < blur[1] < blur[2]
    assert 0 < noise[0] < noise[1] < noise[2]
    freqs, power = metrics.radial_power_spectrum(clean)
    assert freqs.shape == power.shape == (32,)
    assert power[0] > 100 * power[-1]  # natural images: power falls with frequency


@agnostic
@settings(max_examples=10, deadline=None)
@given(seed=st.integers(0, 2**16), scale=st.floats(0.1, 10.0))
def test_set_metrics_properties(seed, scale):
    rng = np.random.default_rng(seed)
    a = rng.normal(size=(2, 16, 16, 2))
    b = a + rng.normal(0, 0.5, a.shape)
    # SWD normalizes descriptors per channel: invariant to a global scale of both sets.
    assert metrics.sliced_wasserstein_distance(a, b, num_projections=64) == pytest.approx(
        metrics.sliced_wasserstein_distance(scale * a, scale * b, num_projections=64),
        rel=1e-4,
        abs=1e-6,
    )
    # Log spectra: a common scale cancels.
    assert metrics.power_spectrum_distance(a, b) == pytest.approx(
        metrics.power_spectrum_distance(scale * a, scale * b), rel=1e-6, abs=1e-9
    )
    assert metrics.power_spectrum_distance(a, b) == pytest.approx(
        metrics.power_spectrum_distance(b, a)
    )


# -- FID / KID -----------------------------------------------------------------------------
@agnostic
def test_frechet_distance_closed_forms():
    rng = np.random.default_rng(0)
    features = rng.normal(size=(300, 6))
    assert metrics.frechet_distance(features, features) == pytest.approx(0.0, abs=1e-9)
    # Diagonal Gaussians: |mu_a - mu_b|^2 + sum (s_a - s_b)^2 with standard deviations s.
    mean_a, mean_b = np.array([0.0, 1.0, 2.0]), np.array([1.0, 1.0, 0.0])
    std_a, std_b = np.array([1.0, 2.0, 0.5]), np.array([3.0, 2.0, 1.0])
    expected = np.sum((mean_a - mean_b) ** 2) + np.sum((std_a - std_b) ** 2)
    assert metrics.gaussian_frechet_distance(
        mean_a, np.diag(std_a**2), mean_b, np.diag(std_b**2)
    ) == pytest.approx(expected)
    # The same from samples (sampling error only).
    samples_a = mean_a + std_a * rng.normal(size=(40000, 3))
    samples_b = mean_b + std_b * rng.normal(size=(40000, 3))
    assert metrics.frechet_distance(samples_a, samples_b) == pytest.approx(expected, rel=0.02)
    # Full, non-commuting covariances: against scipy's matrix square root.
    from scipy import linalg

    a, b = rng.normal(size=(5, 5)), rng.normal(size=(5, 5))
    cov_a, cov_b = a @ a.T + 0.1 * np.eye(5), b @ b.T
    reference = np.trace(cov_a + cov_b - 2 * np.real(linalg.sqrtm(cov_a @ cov_b)))
    assert metrics.gaussian_frechet_distance(
        np.zeros(5), cov_a, np.zeros(5), cov_b
    ) == pytest.approx(reference, rel=1e-6)
    # Fewer samples than dimensions (the nuclear-norm route) = the covariance route. The
    # covariance route takes the square root of a singular product (rank 6 of 20), which is
    # accurate to about sqrt(float64 eps) = 1.5e-8 only: 1.1e-8 apart on a 2-core AMD EPYC
    # (OpenBLAS' AVX2 kernels), below 1e-8 on the Intel Xeon. The tolerance is that accuracy's scale.
    few_a, few_b = rng.normal(size=(7, 20)), rng.normal(size=(9, 20)) + 0.3
    by_covariance = metrics.gaussian_frechet_distance(
        few_a.mean(0), np.cov(few_a, rowvar=False), few_b.mean(0), np.cov(few_b, rowvar=False)
    )
    assert metrics.frechet_distance(few_a, few_b) == pytest.approx(by_covariance, rel=1e-7)


@agnostic
def test_kernel_inception_distance():
    rng = np.random.default_rng(0)
    a, b = rng.normal(size=(100, 4)), rng.normal(size=(80, 4)) + 0.5
    # One subset with all samples = the full unbiased MMD^2 estimate, computed here directly.
    m = 80
    value = metrics.kernel_inception_distance(a, b, num_subsets=1, subset_size=m, seed=1)
    rng_check = np.random.default_rng(1)
    x = a[rng_check.choice(100, m, replace=False)]
    y = b[rng_check.choice(80, m, replace=False)]
    kernel = lambda p, q: (p @ q.T / 4 + 1) ** 3  # noqa: E731
    k_xx, k_yy, k_xy = kernel(x, x), kernel(y, y), kernel(x, y)
    expected = (
        (k_xx.sum() - np.trace(k_xx)) / (m * (m - 1))
        + (k_yy.sum() - np.trace(k_yy)) / (m * (m - 1))
        - 2 * k_xy.mean()
    )
    assert value == pytest.approx(expected, rel=1e-10)
    # Same distribution ~ 0, shifted clearly positive, reproducible with a seed.
    same = metrics.kernel_inception_distance(
        rng.normal(size=(400, 4)), rng.normal(size=(400, 4)), subset_size=100
    )
    shifted = metrics.kernel_inception_distance(a, a + 1.0, subset_size=50)
    assert abs(same) < 0.05 < shifted
    assert metrics.kernel_inception_distance(a, b, seed=5) == metrics.kernel_inception_distance(
        a, b, seed=5
    )
    mean, std = metrics.kernel_inception_distance(a, b, subset_size=20, return_std=True)
    assert std > 0


@agnostic
@pytest.mark.parametrize("fn", [metrics.frechet_distance, metrics.kernel_inception_distance])
def test_feature_distance_errors(fn):
    features = np.zeros((10, 4))
    with pytest.raises(ValueError, match="2-D"):
        fn(np.zeros((10, 4, 1)), features)
    with pytest.raises(ValueError, match="feature dimension"):
        fn(features, np.zeros((10, 5)))
    with pytest.raises(ValueError, match="at least 2"):
        fn(np.zeros((1, 4)), features)
    with pytest.raises(ValueError, match="NaN"):
        fn(np.full((10, 4), np.nan), features)


@agnostic
def test_fid_kid_classes_with_feature_extractor():
    def extractor(images):
        return images.reshape(images.shape[0], -1)[:, :8] * 3.0

    rng = np.random.default_rng(0)
    real = rng.uniform(-1, 1, (40, 4, 4, 1)).astype("float32")
    fake = np.clip(real + rng.normal(0, 0.3, real.shape), -1, 1).astype("float32")
    fid = metrics.FID(feature_extractor=extractor)
    kid = metrics.KID(feature_extractor=extractor, subset_size=20, num_subsets=10)
    for start in (0, 25):
        fid.update_state(real[start : start + 25], fake[start : start + 25])
        kid.update_state(real[start : start + 25], fake[start : start + 25])
    assert fid.result() == pytest.approx(metrics.frechet_distance(extractor(real), extractor(fake)))
    assert kid.result() == pytest.approx(
        metrics.kernel_inception_distance(
            extractor(real), extractor(fake), num_subsets=10, subset_size=20
        )
    )
    assert fid(real, real) == pytest.approx(0.0, abs=1e-9)
    fid.reset_state()
    with pytest.raises(ValueError, match="update_state"):
        fid.result()
    with pytest.raises(ValueError, match="exactly one"):
        metrics.FID()
    with pytest.raises(ValueError, match="exactly one"):
        metrics.KID(feature_extractor=extractor, inception_weights_path="x.h5")
    with pytest.raises(ValueError, match="not found"):
        metrics.FID(inception_weights_path="/nonexistent/inception.h5")
    with pytest.raises(ValueError, match="one feature vector per image"):
        metrics.FID(feature_extractor=lambda images: np.zeros((3, 2))).update_state(real[:5])


@pytest.mark.slow
@pytest.mark.skipif(
    keras.backend.backend() != "tensorflow", reason="building InceptionV3 is slow; run once"
)
def test_fid_with_local_inception_weights(tmp_path):
    # Stand-in weights: a randomly initialized InceptionV3 saved locally (nothing is downloaded).
    inception = keras.applications.InceptionV3(
        include_top=False, weights=None, pooling="avg", input_shape=(75, 75, 3)
    )
    path = str(tmp_path / "inception_notop.weights.h5")
    inception.save_weights(path)
    fid = metrics.FID(inception_weights_path=path, image_size=75)
    images = np.random.default_rng(0).uniform(-1, 1, (6, 32, 32, 3)).astype("float32")
    features = fid.feature_extractor(images)
    assert features.shape == (6, 2048)
    expected = inception(
        keras.ops.image.resize(images, (75, 75), interpolation="bilinear", antialias=True)
    )
    np.testing.assert_allclose(features, keras.ops.convert_to_numpy(expected), rtol=1e-4, atol=1e-5)
    fid.update_state(images[:3], images[3:])
    assert np.isfinite(fid.result())
    assert fid.get_config() == {"inception_weights_path": path, "image_size": 75, "name": "fid"}
