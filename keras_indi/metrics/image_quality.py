"""Full-reference distortion metrics: PSNR and SSIM, as functions and as Keras metrics.

Everything is computed in float32 with ``keras.ops``, so the same code runs on the
TensorFlow, JAX and PyTorch backends, inside compiled train/test steps and eagerly on NumPy
arrays. Images are channels-last, ``(batch, height, width, channels)`` or one
``(height, width, channels)`` image, in ``[-1, 1]`` by default (``data_range=2``).
"""

import numbers

import keras
import numpy as np
from keras import ops

from keras_indi.api_export import keras_indi_export
from keras_indi.backend.compile import jit_concrete
from keras_indi.utils.validation import check_finite_and_range, check_float_array, is_concrete

# Wang et al. 2004 constants, as in `skimage.metrics.structural_similarity(gaussian_weights=True)`.
SSIM_WINDOW_SIZE = 11
SSIM_SIGMA = 1.5
SSIM_K1 = 0.01
SSIM_K2 = 0.03

# ITU-R BT.601 luma, MATLAB `rgb2ycbcr` convention (RGB in [0, 1] -> Y in [16, 235] / 255).
_Y_OFFSET = 16.0 / 255.0
_Y_WEIGHTS = (65.481 / 255.0, 128.553 / 255.0, 24.966 / 255.0)


def _check_data_range(data_range):
    if (
        isinstance(data_range, bool)
        or not isinstance(data_range, numbers.Real)
        or not np.isfinite(data_range)
        or data_range <= 0
    ):
        raise ValueError(
            "`data_range` must be a positive number: the width of the value range of the "
            "images (2.0 for [-1, 1] images, 1.0 for [0, 1], 255.0 for [0, 255]). "
            f"Received data_range={data_range!r}."
        )
    return float(data_range)


def _check_crop_border(crop_border):
    if (
        isinstance(crop_border, bool)
        or not isinstance(crop_border, numbers.Integral)
        or crop_border < 0
    ):
        raise ValueError(
            "`crop_border` must be an integer >= 0 (the number of pixels removed from each side, "
            f"e.g. the scale factor for super-resolution). Received crop_border={crop_border!r}."
        )
    return int(crop_border)


def _resolve_value_range(value_range, data_range):
    """The (low, high) of the input values, used only by the Y-channel conversion."""
    if value_range is None:
        if data_range == 2.0:
            return (-1.0, 1.0)
        return (0.0, data_range)
    if (
        not isinstance(value_range, (tuple, list))
        or len(value_range) != 2
        or not all(isinstance(v, numbers.Real) and np.isfinite(v) for v in value_range)
        or not value_range[1] > value_range[0]
    ):
        raise ValueError(
            "`value_range` must be a pair (low, high) with low < high, e.g. (-1.0, 1.0) or "
            f"(0.0, 255.0). Received value_range={value_range!r}."
        )
    low, high = float(value_range[0]), float(value_range[1])
    if abs((high - low) - data_range) > 1e-6 * data_range:
        raise ValueError(
            f"`value_range`={value_range!r} spans {high - low} but `data_range`={data_range}. "
            "Pass a data_range equal to high - low."
        )
    return (low, high)


def _check_span(images, name, data_range):
    """Refuse concrete values spread over far more than `data_range` (e.g. [0, 255] images
    with the default data_range=2): the metric would be silently wrong."""
    if not is_concrete(images):
        return
    array = ops.convert_to_numpy(images) if not isinstance(images, np.ndarray) else images
    minimum, maximum = float(array.min()), float(array.max())
    if maximum - minimum > 10.0 * data_range:
        hint = " They look like [0, 255] images: pass data_range=255.0 (or convert them with x / 127.5 - 1)." if (
            minimum >= 0.0 and maximum <= 255.0 + 1e-3
        ) else ""
        raise ValueError(
            f"`{name}` has values in [{minimum:.4g}, {maximum:.4g}], far wider than "
            f"data_range={data_range}.{hint} `data_range` must be the width of the images' value range."
        )


def _validate_pair(reference, estimate, crop_border, y_channel, data_range, value_range, name):
    """Check the inputs (shapes, dtype, NaN on concrete values) and the options.

    Returns ``(reference, estimate, options, single_image)`` with ``options`` the hashable
    ``(data_range, crop_border, y_channel, low)`` used by `_compute`.
    """
    if isinstance(reference, (list, tuple)):
        reference = np.asarray(reference, dtype="float32")
    if isinstance(estimate, (list, tuple)):
        estimate = np.asarray(estimate, dtype="float32")
    shape_ref = check_float_array(reference, "reference", min_rank=3, max_rank=4)
    shape_est = check_float_array(estimate, "estimate", min_rank=3, max_rank=4)
    if len(shape_ref) != len(shape_est) or any(
        a is not None and b is not None and a != b for a, b in zip(shape_ref, shape_est)
    ):
        raise ValueError(
            f"{name}: `reference` and `estimate` must have the same shape. Received "
            f"{shape_ref} and {shape_est}. Resize or crop one of them first."
        )
    data_range = _check_data_range(data_range)
    crop_border = _check_crop_border(crop_border)
    check_finite_and_range(reference, "reference")
    check_finite_and_range(estimate, "estimate")
    _check_span(reference, "reference", data_range)
    _check_span(estimate, "estimate", data_range)
    height, width, channels = shape_ref[-3:]
    if crop_border:
        for size, axis_name in ((height, "height"), (width, "width")):
            if size is not None and size <= 2 * crop_border:
                raise ValueError(
                    f"{name}: crop_border={crop_border} removes the whole image ({axis_name} "
                    f"{size}). Use crop_border < {axis_name} / 2."
                )
    low = 0.0
    if y_channel:
        if channels != 3:
            raise ValueError(
                f"{name}: y_channel=True needs RGB images with 3 channels. Received {channels} "
                "channels. Pass y_channel=False for grayscale or other images."
            )
        low, _ = _resolve_value_range(value_range, data_range)
    if name == "ssim":
        for size, axis_name in ((height, "height"), (width, "width")):
            if size is not None and size - 2 * crop_border < SSIM_WINDOW_SIZE:
                raise ValueError(
                    f"ssim: the {axis_name} ({size - 2 * crop_border}, after crop_border) is smaller "
                    "than the 11x11 Gaussian window. Use images of at least 11x11 pixels or a "
                    "smaller crop_border."
                )
    return reference, estimate, (data_range, crop_border, bool(y_channel), low), len(shape_ref) == 3


def _prepare(reference, estimate, options):
    """float32, batch axis, crop and Y conversion; returns the data range to use."""
    data_range, crop_border, y_channel, low = options
    reference = ops.cast(ops.convert_to_tensor(reference), "float32")
    estimate = ops.cast(ops.convert_to_tensor(estimate), "float32")
    if len(reference.shape) == 3:
        reference = ops.expand_dims(reference, 0)
        estimate = ops.expand_dims(estimate, 0)
    if crop_border:
        reference = reference[:, crop_border:-crop_border, crop_border:-crop_border, :]
        estimate = estimate[:, crop_border:-crop_border, crop_border:-crop_border, :]
    if y_channel:
        reference = rgb_to_y((reference - low) / data_range)
        estimate = rgb_to_y((estimate - low) / data_range)
        data_range = 1.0
    return reference, estimate, data_range


def _psnr_values(reference, estimate, options):
    reference, estimate, data_range = _prepare(reference, estimate, options)
    mse = ops.mean(ops.square(reference - estimate), axis=(1, 2, 3))
    return 10.0 * ops.log10(data_range**2 / mse)


def _gaussian_kernel1d(size=SSIM_WINDOW_SIZE, sigma=SSIM_SIGMA):
    radius = size // 2
    x = np.arange(-radius, radius + 1, dtype="float64")
    kernel = np.exp(-0.5 * x**2 / sigma**2)
    return (kernel / kernel.sum()).astype("float32")


def _gaussian_filter_valid(planes):
    """Separable 11-tap Gaussian filter of ``(n, h, w)`` planes, 'valid' region only.

    Written as weighted sums of shifted slices rather than a convolution: GPUs run float32
    convolutions in TF32 by default (TensorFlow, JAX and PyTorch/cuDNN), whose 10-bit mantissa
    spoils the ``E[x^2] - E[x]^2`` variances of SSIM; element-wise float32 arithmetic does not.
    """
    kernel = [float(v) for v in _gaussian_kernel1d()]
    size = len(kernel)
    height = ops.shape(planes)[1] - (size - 1)
    rows = kernel[0] * planes[:, 0:height, :]
    for k in range(1, size):
        rows = rows + kernel[k] * planes[:, k : k + height, :]
    width = ops.shape(rows)[2] - (size - 1)
    out = kernel[0] * rows[:, :, 0:width]
    for k in range(1, size):
        out = out + kernel[k] * rows[:, :, k : k + width]
    return out


def _ssim_values(reference, estimate, options):
    reference, estimate, data_range = _prepare(reference, estimate, options)
    batch = ops.shape(reference)[0]

    # (batch, h, w, c) -> (batch * c, h, w): every channel is filtered on its own.
    def to_planes(x):
        x = ops.transpose(x, (0, 3, 1, 2))
        return ops.reshape(x, (-1, ops.shape(x)[2], ops.shape(x)[3]))

    x = to_planes(reference)
    y = to_planes(estimate)
    stacked = _gaussian_filter_valid(ops.concatenate([x, y, x * x, y * y, x * y], axis=0))
    mu_x, mu_y, e_xx, e_yy, e_xy = ops.split(stacked, 5, axis=0)
    var_x = e_xx - mu_x * mu_x
    var_y = e_yy - mu_y * mu_y
    cov_xy = e_xy - mu_x * mu_y
    c1 = (SSIM_K1 * data_range) ** 2
    c2 = (SSIM_K2 * data_range) ** 2
    ssim_map = ((2.0 * mu_x * mu_y + c1) * (2.0 * cov_xy + c2)) / (
        (mu_x * mu_x + mu_y * mu_y + c1) * (var_x + var_y + c2)
    )
    per_plane = ops.mean(ssim_map, axis=(1, 2))
    return ops.mean(ops.reshape(per_plane, (batch, -1)), axis=1)


def _compute(fn, reference, estimate, options):
    """Run `fn`; on JAX with concrete inputs, as one compiled function (eager JAX compiles
    every op separately, which is several times slower for a new image shape)."""
    return jit_concrete(fn, static_argnums=2)(reference, estimate, options)


@keras_indi_export("keras_indi.metrics.rgb_to_y")
def rgb_to_y(images):
    """ITU-R BT.601 luma of RGB images in [0, 1], as MATLAB's ``rgb2ycbcr`` (divided by 255).

    ``Y = (16 + 65.481 R + 128.553 G + 24.966 B) / 255``, so Y lies in ``[16/255, 235/255]``:
    the Y channel used to report super-resolution PSNR/SSIM. Keeps a channel axis of size 1.

    >>> y = rgb_to_y(np.ones((1, 2, 2, 3), "float32"))
    >>> round(float(y[0, 0, 0, 0]) * 255, 3)
    235.0
    """
    images = ops.cast(ops.convert_to_tensor(images), "float32")
    if images.shape[-1] != 3:
        raise ValueError(
            f"`images` must have 3 (RGB) channels. Received shape {tuple(images.shape)}."
        )
    weights = ops.convert_to_tensor(np.asarray(_Y_WEIGHTS, "float32"))
    return ops.sum(images * weights, axis=-1, keepdims=True) + _Y_OFFSET


@keras_indi_export("keras_indi.metrics.psnr")
def psnr(reference, estimate, data_range=2.0, crop_border=0, y_channel=False, value_range=None):
    """Peak signal-to-noise ratio in dB, one value per image.

    ``PSNR = 10 log10(data_range^2 / MSE)`` with the MSE over all pixels and channels of each
    image (as ``skimage.metrics.peak_signal_noise_ratio``). Identical images give ``inf``.

    Args:
        reference: the ground-truth images, ``(batch, height, width, channels)`` or one
            ``(height, width, channels)`` image; NumPy array or backend tensor, floating point.
        estimate: the images to score, same shape as `reference`.
        data_range: width of the value range (2.0 for the library's [-1, 1] images, 1.0 for
            [0, 1], 255.0 for [0, 255]).
        crop_border: pixels removed from each side before scoring (super-resolution
            convention: the scale factor).
        y_channel: score the BT.601 luma only (RGB inputs). The images are first mapped to
            [0, 1] with `value_range`, converted with MATLAB's ``rgb2ycbcr`` formula to
            ``Y in [16, 235] / 255`` and then scored with a data range of 1, which gives the
            same numbers as the usual super-resolution code working on [0, 255] with a data
            range of 255.
        value_range: ``(low, high)`` of the inputs, only used by `y_channel`. Default:
            ``(-1, 1)`` when ``data_range == 2``, else ``(0, data_range)``.

    Returns:
        float32 tensor of shape ``(batch,)`` (a scalar tensor for one image).

    Example:

    >>> clean = np.zeros((2, 16, 16, 3), "float32")
    >>> noisy = clean + 0.1
    >>> [round(float(v), 2) for v in psnr(clean, noisy)]  # 10 log10(4 / 0.01)
    [26.02, 26.02]
    """
    reference, estimate, options, single = _validate_pair(
        reference, estimate, crop_border, y_channel, data_range, value_range, "psnr"
    )
    values = _compute(_psnr_values, reference, estimate, options)
    return values[0] if single else values


@keras_indi_export("keras_indi.metrics.ssim")
def ssim(reference, estimate, data_range=2.0, crop_border=0, y_channel=False, value_range=None):
    """Structural similarity (Wang et al. 2004), one value per image.

    Gaussian window of 11 taps with sigma 1.5, ``K1 = 0.01``, ``K2 = 0.03``, population
    (co)variances; the SSIM map is averaged over the pixels whose window lies inside the image
    and over channels. This matches ``skimage.metrics.structural_similarity(reference,
    estimate, gaussian_weights=True, sigma=1.5, use_sample_covariance=False,
    data_range=data_range, channel_axis=-1)``. Images must be at least 11x11 (after cropping).

    Args:
        reference: the ground-truth images, ``(batch, height, width, channels)`` or one
            ``(height, width, channels)`` image; NumPy array or backend tensor, floating point.
        estimate: the images to score, same shape as `reference`.
        data_range: width of the value range (2.0 for the library's [-1, 1] images, 1.0 for
            [0, 1], 255.0 for [0, 255]).
        crop_border: pixels removed from each side before scoring (super-resolution
            convention: the scale factor).
        y_channel: score the BT.601 luma only (RGB inputs). The images are first mapped to
            [0, 1] with `value_range`, converted with MATLAB's ``rgb2ycbcr`` formula to
            ``Y in [16, 235] / 255`` and then scored with a data range of 1, which gives the
            same numbers as the usual super-resolution code working on [0, 255] with a data
            range of 255.
        value_range: ``(low, high)`` of the inputs, only used by `y_channel`. Default:
            ``(-1, 1)`` when ``data_range == 2``, else ``(0, data_range)``.

    Returns:
        float32 tensor of shape ``(batch,)`` (a scalar tensor for one image).

    Example:

    >>> images = np.random.default_rng(0).uniform(-1, 1, (2, 32, 32, 3)).astype("float32")
    >>> [round(float(v), 4) for v in ssim(images, images)]
    [1.0, 1.0]
    """
    reference, estimate, options, single = _validate_pair(
        reference, estimate, crop_border, y_channel, data_range, value_range, "ssim"
    )
    values = _compute(_ssim_values, reference, estimate, options)
    return values[0] if single else values


class _MeanImageMetric(keras.metrics.Metric):
    """Mean over images of a per-image full-reference metric (`name` None: `_default_name`)."""

    _fn = None
    _default_name = None

    def __init__(
        self,
        data_range=2.0,
        crop_border=0,
        y_channel=False,
        value_range=None,
        name=None,
        dtype=None,
    ):
        super().__init__(name=name or self._default_name, dtype=dtype)
        self.data_range = _check_data_range(data_range)
        self.crop_border = _check_crop_border(crop_border)
        self.y_channel = bool(y_channel)
        self.value_range = None if value_range is None else tuple(float(v) for v in value_range)
        if self.y_channel:
            _resolve_value_range(self.value_range, self.data_range)
        self.total = self.add_variable(shape=(), initializer="zeros", dtype="float32", name="total")
        self.count = self.add_variable(shape=(), initializer="zeros", dtype="float32", name="count")

    def update_state(self, y_true, y_pred, sample_weight=None):
        """Add the per-image values of a batch. `sample_weight`: optional ``(batch,)`` weights."""
        values = type(self)._fn(
            y_true,
            y_pred,
            data_range=self.data_range,
            crop_border=self.crop_border,
            y_channel=self.y_channel,
            value_range=self.value_range,
        )
        values = ops.reshape(values, (-1,))
        if sample_weight is None:
            weights = ops.ones_like(values)
        else:
            weights = ops.cast(ops.convert_to_tensor(sample_weight), "float32")
            if len(weights.shape) > 1:
                weights = ops.reshape(weights, (ops.shape(weights)[0], -1))
                weights = ops.mean(weights, axis=1)
            weights = ops.broadcast_to(ops.reshape(weights, (-1,)), ops.shape(values))
        self.total.assign_add(ops.sum(values * weights))
        self.count.assign_add(ops.sum(weights))

    def result(self):
        return ops.divide_no_nan(self.total, self.count)

    def reset_state(self):
        self.total.assign(0.0)
        self.count.assign(0.0)

    def get_config(self):
        config = super().get_config()
        config.update(
            {
                "data_range": self.data_range,
                "crop_border": self.crop_border,
                "y_channel": self.y_channel,
                "value_range": None if self.value_range is None else list(self.value_range),
            }
        )
        return config


@keras_indi_export("keras_indi.metrics.PSNR")
class PSNR(_MeanImageMetric):
    """Mean PSNR (dB) over all images seen, for ``model.compile(metrics=[PSNR()])``.

    Accumulates :func:`psnr` per image (``y_true`` is the reference) across batches; the same
    arguments as :func:`psnr`. A batch holding an image identical to its reference makes the
    mean ``inf``.

    >>> metric = PSNR()
    >>> clean = np.zeros((2, 8, 8, 3), "float32")
    >>> metric.update_state(clean, clean + 0.1)
    >>> metric.update_state(clean, clean + 0.2)
    >>> round(float(metric.result()), 2)  # mean of 26.02 and 20.0
    23.01
    """

    _fn = staticmethod(psnr)
    _default_name = "psnr"


@keras_indi_export("keras_indi.metrics.SSIM")
class SSIM(_MeanImageMetric):
    """Mean SSIM over all images seen, for ``model.compile(metrics=[SSIM()])``.

    Accumulates :func:`ssim` per image (``y_true`` is the reference) across batches; the same
    arguments as :func:`ssim`.

    >>> metric = SSIM()
    >>> images = np.random.default_rng(0).uniform(-1, 1, (2, 16, 16, 3)).astype("float32")
    >>> metric.update_state(images, images)
    >>> round(float(metric.result()), 4)
    1.0
    """

    _fn = staticmethod(ssim)
    _default_name = "ssim"
