"""Blur degradations (Gaussian, defocus) and the convolution helpers they share.

All blurs are true 2-D convolutions ``y = k * x`` per channel with a kernel of odd size that
sums to 1, and "reflect" boundary handling (``numpy.pad(mode="reflect")``: the edge pixel is not
repeated), so the output keeps the input size.
"""

import math

import keras
import numpy as np

from keras_indi.api_export import keras_indi_export
from keras_indi.degradations.base import Degradation
from keras_indi.degradations.base import check_value_or_range
from keras_indi.degradations.base import sample_value
from keras_indi.degradations.common import numpy_call
from keras_indi.utils.validation import check_number

#: Sub-samples per pixel side used to measure the disk's coverage of each pixel.
DISK_SUPERSAMPLING = 16


# -- kernels ---------------------------------------------------------------------------------
def _gaussian_radius(sigma, truncate):
    return int(math.ceil(truncate * sigma))


@keras_indi_export("keras_indi.degradations.gaussian_kernel")
def gaussian_kernel(sigma, truncate=3.0, radius=None):
    """2-D Gaussian kernel of standard deviation `sigma` pixels, normalized to sum 1.

    The kernel is separable: ``outer(g, g)`` with ``g[k] ~ exp(-k^2 / (2 sigma^2))`` for
    ``|k| <= ceil(truncate * sigma)`` and 0 beyond. ``sigma = 0`` gives the identity (a delta).

    Example:

    >>> kernel = gaussian_kernel(1.5)
    >>> kernel.shape, round(float(kernel.sum()), 6)
    ((11, 11), 1.0)

    Args:
        sigma: float >= 0, standard deviation in pixels.
        truncate: the kernel is cut at ``ceil(truncate * sigma)`` pixels from its centre.
        radius: optional int half-size of the returned array (zero-padded), at least the
            support; lets kernels of different sigmas share a shape.

    Returns:
        float64 array of shape ``(2 * radius + 1, 2 * radius + 1)``.
    """
    g = gaussian_kernel_1d(sigma, truncate=truncate, radius=radius)
    return np.outer(g, g)


def gaussian_kernel_1d(sigma, truncate=3.0, radius=None):
    """1-D Gaussian taps (see `gaussian_kernel`), float64, sum 1."""
    sigma = float(sigma)
    if not np.isfinite(sigma) or sigma < 0:
        raise ValueError(f"`sigma` must be a finite number >= 0. Received sigma={sigma!r}.")
    support = _gaussian_radius(sigma, truncate)
    radius = support if radius is None else int(radius)
    if radius < support:
        raise ValueError(f"`radius`={radius} is smaller than the kernel support {support}.")
    k = np.arange(-radius, radius + 1, dtype="float64")
    taps = np.exp(-(k**2) / (2.0 * max(sigma, 1e-6) ** 2)) * (np.abs(k) <= support)
    return taps / taps.sum()


def _disk_half_width(radius):
    """Half-size of the smallest square holding every pixel the disk touches."""
    return max(int(math.ceil(radius + 0.5)) - 1, 0)


def _disk_subsample_offsets(half_width, supersampling):
    """Sub-sample coordinates along one axis: ``supersampling`` per pixel, pixel centres at ints.

    With a power-of-two `supersampling` the coordinates and their squares are exact in float32.
    """
    pixels = np.arange(-half_width, half_width + 1, dtype="float64")
    within = (np.arange(supersampling, dtype="float64") + 0.5) / supersampling - 0.5
    return (pixels[:, None] + within[None, :]).reshape(-1)


@keras_indi_export("keras_indi.degradations.disk_kernel")
def disk_kernel(radius, supersampling=DISK_SUPERSAMPLING, half_width=None):
    """Disk ("pillbox") defocus kernel with anti-aliased, area-weighted edges, sum 1.

    Each pixel's weight is the fraction of its unit square covered by the disk of `radius`
    pixels centred on the middle pixel, measured with ``supersampling x supersampling``
    sub-samples per pixel. The result is normalized to sum 1.

    Example:

    >>> kernel = disk_kernel(3.5)
    >>> kernel.shape, round(float(kernel.sum()), 6)
    ((7, 7), 1.0)

    Args:
        radius: float > 0, disk radius in pixels.
        supersampling: sub-samples per pixel side (a power of two keeps the computation exact
            in float32, which makes the Keras-layer form match).
        half_width: optional int half-size of the returned array (zero-padded).

    Returns:
        float64 array of shape ``(2 * half_width + 1, 2 * half_width + 1)``.
    """
    radius = float(radius)
    if not np.isfinite(radius) or radius <= 0:
        raise ValueError(f"`radius` must be a finite number > 0. Received radius={radius!r}.")
    needed = _disk_half_width(radius)
    half_width = needed if half_width is None else int(half_width)
    if half_width < needed:
        raise ValueError(f"`half_width`={half_width} is smaller than the disk support {needed}.")
    offsets = _disk_subsample_offsets(half_width, supersampling)
    inside = (offsets[:, None] ** 2 + offsets[None, :] ** 2) <= radius**2
    size = 2 * half_width + 1
    coverage = inside.reshape(size, supersampling, size, supersampling).mean(axis=(1, 3))
    return coverage / coverage.sum()


# -- convolution -------------------------------------------------------------------------------
@keras_indi_export("keras_indi.degradations.convolve")
def convolve(images, kernels):
    """Convolve each image of a batch with its own kernel, per channel, "reflect" boundary.

    The NumPy form of `backend_convolve` (float32, see `numpy_call`).

    Example:

    >>> blurred = convolve(np.ones((2, 9, 7, 3), "float32"), disk_kernel(2.0))
    >>> bool(np.allclose(blurred, 1.0))
    True

    Args:
        images: ``(batch, height, width, channels)`` float array.
        kernels: one ``(kh, kw)`` kernel for the whole batch, or ``(batch, kh, kw)``; odd sizes.

    Returns:
        float32 array with the shape of `images`.
    """
    images = np.asarray(images)
    kernels = np.asarray(kernels, dtype="float32")
    if images.ndim != 4:
        raise ValueError(f"`images` must be (batch, height, width, channels). Received shape {images.shape}.")
    if kernels.ndim == 2:
        kernels = kernels[None]
    if kernels.ndim != 3 or kernels.shape[0] not in (1, images.shape[0]):
        raise ValueError(
            f"`kernels` must be (kh, kw) or (batch, kh, kw) with batch={images.shape[0]}. "
            f"Received shape {kernels.shape}."
        )
    kh, kw = kernels.shape[1:]
    if kh % 2 == 0 or kw % 2 == 0:
        raise ValueError(f"Kernel sizes must be odd so that the kernel has a centre. Received {kh}x{kw}.")
    return numpy_call(backend_convolve, images, kernels)


def _check_reflect_size(shape, radius_h, radius_w, name):
    height, width = shape[1], shape[2]
    if (height is not None and height <= radius_h) or (width is not None and width <= radius_w):
        raise ValueError(
            f"{name} in layer form needs images larger than the kernel radius ({radius_h}x{radius_w} "
            f"pixels). Received images of shape {shape}; use smaller blurs or larger images, or the "
            "NumPy form, which has no such limit."
        )


def _reflect_pad(x, radius_h, radius_w):
    """``numpy.pad(mode="reflect")`` of the height and width axes (any radius), as a gather."""
    for axis, radius in ((1, radius_h), (2, radius_w)):
        if radius:
            x = keras.ops.take(x, np.pad(np.arange(x.shape[axis]), radius, mode="reflect"), axis=axis)
    return x


def backend_convolve(x, kernels):
    """Convolution with keras.ops, "reflect" boundary, output of the input size.

    `kernels` is either a NumPy ``(kh, kw)`` kernel shared by the batch (depthwise
    convolution) or a ``(batch, kh, kw)`` (or ``(1, kh, kw)``) array or tensor of per-sample
    kernels (FFT convolution of the padded images: a handful of ops whatever the kernel size,
    any batch size). The height and width of `x` must be static.
    """
    ops = keras.ops
    if isinstance(kernels, np.ndarray) and kernels.ndim == 2:
        kh, kw = kernels.shape
        channels = x.shape[-1]
        if channels is None:
            raise ValueError("The channel dimension of the images must be known (static) in layer form.")
        padded = _reflect_pad(x, kh // 2, kw // 2)
        # Deep-learning convolutions are correlations: flip the kernel for a true convolution.
        flipped = np.ascontiguousarray(kernels[::-1, ::-1])
        depthwise = np.tile(flipped[:, :, None, None], (1, 1, channels, 1))
        depthwise = depthwise.astype(keras.backend.standardize_dtype(x.dtype))
        return ops.depthwise_conv(padded, ops.convert_to_tensor(depthwise), strides=1, padding="valid")
    height, width = x.shape[1], x.shape[2]
    if height is None or width is None:
        raise ValueError("The height and width of the images must be known (static) in layer form.")
    kh, kw = int(kernels.shape[1]), int(kernels.shape[2])
    padded = ops.transpose(_reflect_pad(x, kh // 2, kw // 2), (0, 3, 1, 2))  # (batch, C, H', W')
    padded_h, padded_w = height + kh - 1, width + kw - 1
    kernels = ops.pad(kernels, [[0, 0], [0, padded_h - kh], [0, padded_w - kw]])[:, None]
    image_real, image_imag = ops.fft2((padded, ops.zeros_like(padded)))
    kernel_real, kernel_imag = ops.fft2((kernels, ops.zeros_like(kernels)))
    product = (
        image_real * kernel_real - image_imag * kernel_imag,
        image_real * kernel_imag + image_imag * kernel_real,
    )
    full, _ = ops.ifft2(product)
    # Circular convolution of the padded image: outputs from index k - 1 on have no wrap-around.
    out = full[:, :, kh - 1 : kh - 1 + height, kw - 1 : kw - 1 + width]
    return ops.transpose(out, (0, 2, 3, 1))


# -- degradations -----------------------------------------------------------------------------
@keras_indi_export("keras_indi.degradations.GaussianBlur")
class GaussianBlur(Degradation):
    """Gaussian blur with a per-image standard deviation.

    Example:

    >>> blurred = GaussianBlur(sigma=1.5)(np.zeros((2, 37, 31, 3), "float32"))
    >>> blurred.shape
    (2, 37, 31, 3)

    Args:
        sigma: fixed standard deviation in pixels, or None to draw one per image uniformly in
            `sigma_range`.
        sigma_range: ``(low, high)`` in pixels, used when `sigma` is None.
        truncate: kernels are cut at ``ceil(truncate * sigma)`` pixels (see `gaussian_kernel`).
        seed: int or None, see `Degradation`.
    """

    supports_layer = True

    def __init__(self, sigma=None, sigma_range=(0.5, 3.0), truncate=3.0, seed=None):
        super().__init__(seed=seed)
        self.sigma, self.sigma_range = check_value_or_range(sigma, sigma_range, "sigma", minimum=0.0)
        self.truncate = check_number(truncate, "truncate", minimum=0.0, exclusive_minimum=True)

    @property
    def kernel_radius(self):
        """Half-size shared by all kernels this degradation draws."""
        sigma_max = self.sigma if self.sigma is not None else self.sigma_range[1]
        return _gaussian_radius(sigma_max, self.truncate)

    def sample_parameters(self, batch_size, rng):
        return {"sigma": sample_value(self.sigma, self.sigma_range, batch_size, rng)}

    def kernels(self, sigma):
        """The (batch, k, k) kernels for per-image standard deviations `sigma`."""
        radius = self.kernel_radius
        return np.stack([gaussian_kernel(s, self.truncate, radius=radius) for s in np.atleast_1d(sigma)])

    def apply(self, clean, parameters):
        return convolve(clean, self.kernels(parameters["sigma"]))

    def backend_call(self, clean, seed_generator):
        ops = keras.ops
        radius = self.kernel_radius
        _check_reflect_size(tuple(clean.shape), radius, radius, type(self).__name__)
        if self.sigma is not None:
            taps = gaussian_kernel_1d(self.sigma, self.truncate, radius=radius).astype("float32")
            return backend_convolve(backend_convolve(clean, taps[:, None]), taps[None, :])
        sigma = keras.random.uniform(
            (ops.shape(clean)[0],),
            self.sigma_range[0],
            self.sigma_range[1],
            dtype="float32",
            seed=seed_generator,
        )
        taps = self.backend_taps(sigma)
        kernels = taps[:, :, None] * taps[:, None, :]
        return ops.cast(backend_convolve(ops.cast(clean, "float32"), kernels), clean.dtype)

    def backend_taps(self, sigma):
        """1-D taps ``(batch, 2 * kernel_radius + 1)`` for a ``(batch,)`` sigma tensor (keras.ops)."""
        ops = keras.ops
        radius = self.kernel_radius
        sigma = ops.reshape(ops.cast(sigma, "float32"), (-1, 1))
        k = ops.convert_to_tensor(np.arange(-radius, radius + 1, dtype="float32")[None])
        support = ops.ceil(self.truncate * sigma)
        taps = ops.exp(-(k**2) / (2.0 * ops.maximum(sigma, 1e-6) ** 2)) * ops.cast(
            ops.abs(k) <= support, "float32"
        )
        return taps / ops.sum(taps, axis=1, keepdims=True)

    def get_config(self):
        return {
            "sigma": self.sigma,
            "sigma_range": self.sigma_range,
            "truncate": self.truncate,
            "seed": self.seed,
        }


@keras_indi_export("keras_indi.degradations.DefocusBlur")
class DefocusBlur(Degradation):
    """Defocus blur: convolution with an anti-aliased disk (see `disk_kernel`) per image.

    Example:

    >>> blurred = DefocusBlur(radius_range=(2, 6), seed=0)(np.zeros((2, 37, 31, 3), "float32"))
    >>> blurred.shape
    (2, 37, 31, 3)

    Args:
        radius: fixed disk radius in pixels, or None to draw one per image uniformly in
            `radius_range`.
        radius_range: ``(low, high)`` in pixels, used when `radius` is None.
        seed: int or None, see `Degradation`.
    """

    supports_layer = True

    def __init__(self, radius=None, radius_range=(2.0, 6.0), seed=None):
        super().__init__(seed=seed)
        self.radius, self.radius_range = check_value_or_range(
            radius, radius_range, "radius", minimum=0.0, exclusive_minimum=True
        )

    @property
    def kernel_half_width(self):
        """Half-size shared by all kernels this degradation draws."""
        return _disk_half_width(self.radius if self.radius is not None else self.radius_range[1])

    def sample_parameters(self, batch_size, rng):
        return {"radius": sample_value(self.radius, self.radius_range, batch_size, rng)}

    def kernels(self, radius):
        """The (batch, k, k) kernels for per-image radii `radius`."""
        half_width = self.kernel_half_width
        return np.stack([disk_kernel(r, half_width=half_width) for r in np.atleast_1d(radius)])

    def apply(self, clean, parameters):
        return convolve(clean, self.kernels(parameters["radius"]))

    def backend_call(self, clean, seed_generator):
        ops = keras.ops
        half_width = self.kernel_half_width
        _check_reflect_size(tuple(clean.shape), half_width, half_width, type(self).__name__)
        if self.radius is not None:
            return backend_convolve(clean, disk_kernel(self.radius, half_width=half_width).astype("float32"))
        radius = keras.random.uniform(
            (ops.shape(clean)[0],),
            self.radius_range[0],
            self.radius_range[1],
            dtype="float32",
            seed=seed_generator,
        )
        kernels = self.backend_kernels(radius)
        return ops.cast(backend_convolve(ops.cast(clean, "float32"), kernels), clean.dtype)

    def backend_kernels(self, radius):
        """Kernels ``(batch, k, k)`` for a ``(batch,)`` radius tensor, with keras.ops."""
        ops = keras.ops
        half_width = self.kernel_half_width
        size, s = 2 * half_width + 1, DISK_SUPERSAMPLING
        radius = ops.reshape(ops.cast(radius, "float32"), (-1, 1, 1))
        offsets = _disk_subsample_offsets(half_width, s).astype("float32")
        distance2 = ops.convert_to_tensor((offsets[:, None] ** 2 + offsets[None, :] ** 2)[None])
        inside = ops.cast(distance2 <= radius**2, "float32")
        coverage = ops.mean(ops.reshape(inside, (-1, size, s, size, s)), axis=(2, 4))
        return coverage / ops.sum(coverage, axis=(1, 2), keepdims=True)

    def get_config(self):
        return {"radius": self.radius, "radius_range": self.radius_range, "seed": self.seed}
