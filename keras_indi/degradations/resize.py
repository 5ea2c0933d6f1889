"""MATLAB-compatible bicubic resizing (``imresize``) and the 4x super-resolution degradation.

MATLAB's ``imresize(I, scale)`` with the default ``'bicubic'`` method and antialiasing is the
standard way super-resolution benchmarks (DIV2K, Set5, ...) make low-resolution images. It is
separable and linear: along each axis the output is ``A @ input`` with an ``(out, in)``
resampling matrix ``A`` built here exactly as MATLAB's ``contributions`` function does:

* Keys cubic kernel with ``a = -0.5`` (support ``[-2, 2]``);
* when shrinking (``scale < 1``) the kernel is stretched by ``1 / scale`` and scaled by
  ``scale`` (antialiasing);
* output pixel ``x`` (1-based) maps to input coordinate ``u = x / scale + 0.5 * (1 - 1 / scale)``;
* each row's weights are normalized to sum 1, then out-of-range input indices are mirrored
  symmetrically (``1, ..., n, n, ..., 1``, i.e. the edge pixel is repeated) and their weights
  added.

One keras.ops function, `resample`, applies the matrices in the NumPy and the layer forms.
"""

import functools
import math
import numbers

import keras
import numpy as np

from keras_indi.api_export import keras_indi_export
from keras_indi.degradations.base import Degradation
from keras_indi.degradations.common import numpy_call
from keras_indi.utils.validation import check_positive_int


def _cubic(x):
    """Keys cubic convolution kernel, a = -0.5 (MATLAB's ``cubic``)."""
    absx = np.abs(x)
    absx2 = absx**2
    absx3 = absx**3
    return (1.5 * absx3 - 2.5 * absx2 + 1.0) * (absx <= 1) + (
        -0.5 * absx3 + 2.5 * absx2 - 4.0 * absx + 2.0
    ) * ((absx > 1) & (absx <= 2))


@functools.lru_cache(maxsize=64)
def _cached_matrix(input_length, output_length, scale, antialiasing):
    kernel_width = 4.0
    if scale < 1 and antialiasing:

        def kernel(x):
            return scale * _cubic(scale * x)

        kernel_width = kernel_width / scale
    else:
        kernel = _cubic
    x = np.arange(1, output_length + 1, dtype="float64")
    u = x / scale + 0.5 * (1.0 - 1.0 / scale)
    left = np.floor(u - kernel_width / 2.0)
    taps = int(math.ceil(kernel_width)) + 2
    indices = left[:, None] + np.arange(taps)[None, :]
    weights = kernel(u[:, None] - indices)
    weights = weights / weights.sum(axis=1, keepdims=True)
    mirror = np.concatenate([np.arange(input_length), np.arange(input_length)[::-1]])
    columns = mirror[np.mod(indices.astype("int64") - 1, 2 * input_length)]
    matrix = np.zeros((output_length, input_length), dtype="float64")
    rows = np.broadcast_to(np.arange(output_length)[:, None], columns.shape)
    np.add.at(matrix, (rows, columns), weights)
    matrix.setflags(write=False)
    return matrix


@keras_indi_export("keras_indi.degradations.imresize_matrix")
def imresize_matrix(input_length, output_length=None, scale=None, antialiasing=True):
    """The ``(output_length, input_length)`` matrix of MATLAB's bicubic ``imresize`` on one axis.

    Give `scale` (then ``output_length = ceil(scale * input_length)``, as in MATLAB) or
    `output_length` (then ``scale = output_length / input_length``), or both.

    Example:

    >>> matrix = imresize_matrix(8, scale=0.5)
    >>> matrix.shape, bool(np.allclose(matrix.sum(axis=1), 1.0))
    ((4, 8), True)

    Returns:
        float64 read-only array; ``resized = matrix @ signal`` along that axis.
    """
    input_length = check_positive_int(input_length, "input_length")
    if scale is None and output_length is None:
        raise ValueError("Give `scale` or `output_length` to `imresize_matrix`.")
    if scale is not None:
        if (
            isinstance(scale, bool)
            or not isinstance(scale, numbers.Real)
            or not np.isfinite(scale)
            or scale <= 0
        ):
            raise ValueError(f"`scale` must be a finite number > 0. Received scale={scale!r}.")
        scale = float(scale)
    if output_length is None:
        output_length = int(math.ceil(scale * input_length))
    output_length = check_positive_int(output_length, "output_length")
    if scale is None:
        scale = output_length / input_length
    return _cached_matrix(input_length, output_length, scale, bool(antialiasing))


def _pair(value, name):
    if isinstance(value, (list, tuple, np.ndarray)):
        if len(value) != 2:
            raise ValueError(
                f"`{name}` must be a number or a pair (height, width). Received {name}={value!r}."
            )
        return tuple(value)
    return (value, value)


@keras_indi_export("keras_indi.degradations.imresize")
def imresize(image, scale=None, output_shape=None, antialiasing=True):
    """Resize images with MATLAB's ``imresize`` bicubic algorithm (antialiased when shrinking).

    Works on float images of any range: ``(height, width)``, ``(height, width, channels)`` or
    ``(batch, height, width, channels)``. Computed by `resample` in float32 (float64 for float64
    images, where the backend has float64: not JAX by default), returned in the input dtype.
    Unlike MATLAB on ``uint8`` images, nothing is rounded or clipped.

    Example:

    >>> small = imresize(np.zeros((37, 31, 3), "float32"), scale=0.5)
    >>> small.shape
    (19, 16, 3)
    >>> imresize(small, output_shape=(37, 31)).shape
    (37, 31, 3)

    Args:
        image: float array, see above.
        scale: number or ``(scale_h, scale_w)``; output size ``ceil(scale * size)``.
        output_shape: ``(height, width)`` of the result (then scale is ``out / in`` per axis).
            Give exactly one of `scale` and `output_shape`.
        antialiasing: stretch the kernel when shrinking (MATLAB's default, True).
    """
    image = np.asarray(image)
    if image.ndim not in (2, 3, 4):
        raise ValueError(
            "`image` must be (height, width), (height, width, channels) or (batch, height, width, "
            f"channels). Received shape {image.shape}."
        )
    if not np.issubdtype(image.dtype, np.floating):
        raise ValueError(
            f"`image` must be a float array; received dtype {image.dtype}. Convert with "
            "`image.astype('float32') / 127.5 - 1` (or `/ 255`)."
        )
    if (scale is None) == (output_shape is None):
        raise ValueError("Give exactly one of `scale` and `output_shape` to `imresize`.")
    axis_h = 1 if image.ndim == 4 else 0
    height, width = image.shape[axis_h], image.shape[axis_h + 1]
    if scale is not None:
        scale_h, scale_w = _pair(scale, "scale")
        matrix_h = imresize_matrix(height, scale=scale_h, antialiasing=antialiasing)
        matrix_w = imresize_matrix(width, scale=scale_w, antialiasing=antialiasing)
    else:
        out_h, out_w = _pair(output_shape, "output_shape")
        matrix_h = imresize_matrix(height, output_length=out_h, antialiasing=antialiasing)
        matrix_w = imresize_matrix(width, output_length=out_w, antialiasing=antialiasing)
    batch = image.reshape((-1, height, width, image.shape[-1] if image.ndim > 2 else 1))
    dtype = np.promote_types(image.dtype, "float32")
    resized = numpy_call(resample, batch, matrix_h, matrix_w, dtype=dtype)
    shape = image.shape[:axis_h] + resized.shape[1:3] + image.shape[axis_h + 2 :]
    return resized.reshape(shape).astype(image.dtype, copy=False)


def resample(images, matrix_h, matrix_w):
    """``matrix_h`` along the height, ``matrix_w`` along the width of a (batch, h, w, c) tensor."""
    dtype = keras.backend.standardize_dtype(images.dtype)
    matrix_h, matrix_w = (keras.ops.convert_to_tensor(m.astype(dtype)) for m in (matrix_h, matrix_w))
    return keras.ops.einsum("wv,bhvc->bhwc", matrix_w, keras.ops.einsum("ih,bhwc->biwc", matrix_h, images))


@keras_indi_export(("keras_indi.degradations.BicubicDownsample", "keras_indi.degradations.SuperResolution"))
class BicubicDownsample(Degradation):
    """Super-resolution degradation: MATLAB bicubic downsampling by `factor`, then bicubic
    upsampling back to the input size (InDI needs inputs and outputs of the same size).

    Both steps are `imresize`'s (scale ``1 / factor`` then ``factor``), run by `resample` in
    both forms. The height and width must be divisible by `factor`. Deterministic: the seed is
    accepted for a uniform interface only. Also exported as ``SuperResolution``.

    Example:

    >>> degraded = BicubicDownsample(factor=4)(np.zeros((2, 32, 48, 3), "float32"))
    >>> degraded.shape
    (2, 32, 48, 3)

    Args:
        factor: integer downsampling factor (4 for the usual 4x super-resolution).
        clip: clip the low-resolution image and the output to ``[-1, 1]``, as storing them as
            8-bit images would (bicubic overshoots at sharp edges). Default True.
        seed: unused, see `Degradation`.
    """

    supports_layer = True

    def __init__(self, factor=4, clip=True, seed=None):
        super().__init__(seed=seed)
        self.factor = check_positive_int(factor, "factor")
        self.clip = bool(clip)

    def matrices(self, height, width):
        """``(down_h, down_w, up_h, up_w)`` float64 resampling matrices for this image size."""
        for size, name in ((height, "height"), (width, "width")):
            if size is None:
                raise ValueError(
                    f"{type(self).__name__} in layer form needs a static image {name}. Build the "
                    "model with a fixed input shape, e.g. `keras.Input((64, 64, 3))`."
                )
            if size % self.factor:
                raise ValueError(
                    f"{type(self).__name__}(factor={self.factor}) needs the image height and width "
                    f"to be divisible by {self.factor}. Received {name} {size}: crop the images "
                    f"to a multiple of {self.factor} (e.g. {size - size % self.factor})."
                )
        factor = self.factor
        return (
            imresize_matrix(height, height // factor, scale=1.0 / factor),
            imresize_matrix(width, width // factor, scale=1.0 / factor),
            imresize_matrix(height // factor, height, scale=float(factor)),
            imresize_matrix(width // factor, width, scale=float(factor)),
        )

    def apply(self, clean, parameters):
        return numpy_call(self.backend_call, clean, None)

    def backend_call(self, clean, seed_generator):
        down_h, down_w, up_h, up_w = self.matrices(clean.shape[1], clean.shape[2])
        low = resample(clean, down_h, down_w)
        if self.clip:
            low = keras.ops.clip(low, -1.0, 1.0)
        degraded = resample(low, up_h, up_w)
        if self.clip:
            degraded = keras.ops.clip(degraded, -1.0, 1.0)
        return degraded

    def get_config(self):
        return {"factor": self.factor, "clip": self.clip, "seed": self.seed}


SuperResolution = BicubicDownsample
