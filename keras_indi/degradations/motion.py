"""Camera-shake motion blur with random trajectories (Boracchi & Foi, 2012).

The trajectory model follows G. Boracchi and A. Foi, "Modeling the Performance of Image
Restoration From Motion Blur", IEEE TIP 2012 (their ``createTrajectory``, also used by
DeblurGAN): a particle moves at constant speed for `num_steps` steps; at each step its velocity
gets a Gaussian random change, a centripetal pull towards the start and, rarely, an impulsive
shake that roughly reverses it; all scaled by the "anxiety" of the hand. The first ``exposure``
fraction of the trajectory is rasterized into the kernel by bilinear ("sub-pixel") splatting.

Two choices differ from the original, for paired restoration: the trajectory is centred on its
centre of mass, so blurring does not shift the image, and it is shrunk (shape preserved) when it
would not fit in the kernel.
"""

import numpy as np

from keras_indi.api_export import keras_indi_export
from keras_indi.degradations.base import Degradation
from keras_indi.degradations.base import check_value_or_range
from keras_indi.degradations.base import sample_value
from keras_indi.degradations.blur import convolve
from keras_indi.utils.validation import check_number
from keras_indi.utils.validation import check_positive_int


def _trajectories(rng, anxiety, num_steps, max_length):
    """Complex positions ``(batch, num_steps)`` of camera-shake trajectories."""
    batch = anxiety.shape[0]
    centripetal = 0.7 * rng.uniform(size=batch)
    prob_big_shake = 0.2 * rng.uniform(size=batch)
    gaussian_shake = 10.0 * rng.uniform(size=batch)
    init_angle = 2.0 * np.pi * rng.uniform(size=batch)
    shake_draw = rng.uniform(size=(batch, num_steps - 1))
    shake_angle = rng.uniform(size=(batch, num_steps - 1)) - 0.5
    normal = rng.standard_normal(size=(batch, num_steps - 1, 2))
    step = max_length / (num_steps - 1)

    big_shake = shake_draw < (prob_big_shake * anxiety)[:, None]
    rotation = np.exp(1j * (np.pi + shake_angle))
    kick = anxiety[:, None] * gaussian_shake[:, None] * (normal[..., 0] + 1j * normal[..., 1]) * step
    pull = (anxiety * centripetal * step)[:, None]

    positions = np.zeros((batch, num_steps), dtype="complex128")
    velocity = np.exp(1j * init_angle) * step
    for t in range(num_steps - 1):
        change = kick[:, t] - pull[:, 0] * positions[:, t]
        change = change + np.where(big_shake[:, t], 2.0 * velocity * rotation[:, t], 0.0)
        velocity = velocity + change
        speed = np.maximum(np.abs(velocity), 1e-12)
        velocity = velocity / speed * step
        positions[:, t + 1] = positions[:, t] + velocity
    return positions


def _rasterize(positions, weights, kernel_size):
    """Bilinear splatting of weighted points (complex x + iy) centred in the kernel, sum 1."""
    batch = positions.shape[0]
    centroid = (positions * weights).sum(axis=1, keepdims=True) / weights.sum(axis=1, keepdims=True)
    positions = positions - centroid
    limit = (kernel_size - 1) / 2.0 - 0.5
    used = weights > 0
    extent = np.where(used, np.maximum(np.abs(positions.real), np.abs(positions.imag)), 0.0).max(axis=1)
    shrink = np.where(extent > limit, limit / np.maximum(extent, 1e-12), 1.0)
    positions = positions * shrink[:, None] + (kernel_size - 1) / 2.0 * (1 + 1j)
    x, y = positions.real, positions.imag
    x0, y0 = np.floor(x), np.floor(y)
    fx, fy = x - x0, y - y0
    x0, y0 = x0.astype("int64"), y0.astype("int64")
    kernels = np.zeros((batch, kernel_size, kernel_size), dtype="float64")
    sample = np.broadcast_to(np.arange(batch)[:, None], x.shape)
    for dy, dx, w in (
        (0, 0, (1 - fy) * (1 - fx)),
        (0, 1, (1 - fy) * fx),
        (1, 0, fy * (1 - fx)),
        (1, 1, fy * fx),
    ):
        rows = np.clip(y0 + dy, 0, kernel_size - 1)
        cols = np.clip(x0 + dx, 0, kernel_size - 1)
        np.add.at(kernels, (sample, rows, cols), w * weights)
    return kernels / kernels.sum(axis=(1, 2), keepdims=True)


@keras_indi_export("keras_indi.degradations.motion_blur_kernels")
def motion_blur_kernels(
    batch_size,
    kernel_size=31,
    rng=None,
    anxiety=None,
    exposure=None,
    max_length=None,
    num_steps=2000,
):
    """Random camera-shake kernels, ``(batch_size, kernel_size, kernel_size)``, each sum 1.

    Example:

    >>> kernels = motion_blur_kernels(4, kernel_size=31, rng=np.random.default_rng(0))
    >>> kernels.shape, bool(np.allclose(kernels.sum(axis=(1, 2)), 1.0))
    ((4, 31, 31), True)

    Args:
        batch_size: number of kernels.
        kernel_size: odd kernel size in pixels.
        rng: ``numpy.random.Generator`` (or an int seed); None draws a fresh one.
        anxiety: per-kernel (or scalar) hand anxiety; larger values give more erratic paths.
            Default: uniform in [0, 0.005].
        exposure: per-kernel (or scalar) fraction of the trajectory recorded, in (0, 1].
            Default: uniform in [0.25, 1].
        max_length: full trajectory length in pixels (default ``kernel_size - 1``).
        num_steps: trajectory samples (2000 as in Boracchi & Foi; anxiety is relative to it).
    """
    batch_size = check_positive_int(batch_size, "batch_size")
    kernel_size = check_positive_int(kernel_size, "kernel_size", minimum=3)
    if kernel_size % 2 == 0:
        raise ValueError(f"`kernel_size` must be odd. Received kernel_size={kernel_size}.")
    num_steps = check_positive_int(num_steps, "num_steps", minimum=2)
    max_length = (
        float(kernel_size - 1)
        if max_length is None
        else check_number(max_length, "max_length", minimum=0.0, exclusive_minimum=True)
    )
    if not isinstance(rng, np.random.Generator):
        rng = np.random.default_rng(rng)
    if anxiety is None:
        anxiety = rng.uniform(0.0, 0.005, size=batch_size)
    if exposure is None:
        exposure = rng.uniform(0.25, 1.0, size=batch_size)
    anxiety = np.broadcast_to(np.asarray(anxiety, "float64"), (batch_size,))
    exposure = np.broadcast_to(np.asarray(exposure, "float64"), (batch_size,))
    if np.any(anxiety < 0) or np.any((exposure <= 0) | (exposure > 1)):
        raise ValueError("`anxiety` must be >= 0 and `exposure` in (0, 1].")
    positions = _trajectories(rng, anxiety, num_steps, max_length)
    # Exposure: steps recorded up to exposure * (num_steps - 1), the last one partially.
    end = exposure * (num_steps - 1)
    steps = np.arange(num_steps, dtype="float64")[None, :]
    weights = np.clip(end[:, None] - steps + 1.0, 0.0, 1.0)
    return _rasterize(positions, weights, kernel_size)


@keras_indi_export("keras_indi.degradations.MotionBlur")
class MotionBlur(Degradation):
    """Camera-shake motion blur: one random trajectory kernel per image (see module docs).

    Convolution uses "reflect" boundaries and keeps the image size. There is no Keras-layer
    form: trajectories are generated by a sequential random walk; blur in the data pipeline.

    Example:

    >>> blurred = MotionBlur(kernel_size=31, seed=0)(np.zeros((2, 37, 31, 3), "float32"))
    >>> blurred.shape
    (2, 37, 31, 3)

    Args:
        kernel_size: odd kernel size in pixels (bounds the blur extent).
        max_length: trajectory length in pixels before the exposure cut (default
            ``kernel_size - 1``).
        anxiety: fixed hand anxiety, or None to draw it per image in `anxiety_range`.
        anxiety_range: ``(low, high)``; 0 gives straight lines, ~0.005 curved paths, larger
            values erratic, compact ones.
        exposure_range: ``(low, high)`` fraction of the trajectory recorded per image, in (0, 1].
        num_steps: samples per trajectory.
        seed: int or None, see `Degradation`.
    """

    layer_unsupported_reason = (
        "its random trajectories come from a sequential random walk that keras.ops does not "
        "express efficiently"
    )

    def __init__(
        self,
        kernel_size=31,
        max_length=None,
        anxiety=None,
        anxiety_range=(0.0, 0.005),
        exposure_range=(0.25, 1.0),
        num_steps=2000,
        seed=None,
    ):
        super().__init__(seed=seed)
        self.kernel_size = check_positive_int(kernel_size, "kernel_size", minimum=3)
        if self.kernel_size % 2 == 0:
            raise ValueError(f"`kernel_size` must be odd. Received kernel_size={kernel_size}.")
        self.max_length = (
            None
            if max_length is None
            else check_number(max_length, "max_length", minimum=0.0, exclusive_minimum=True)
        )
        self.anxiety, self.anxiety_range = check_value_or_range(
            anxiety, anxiety_range, "anxiety", minimum=0.0
        )
        _, self.exposure_range = check_value_or_range(
            None, exposure_range, "exposure", minimum=0.0, maximum=1.0, exclusive_minimum=True
        )
        self.num_steps = check_positive_int(num_steps, "num_steps", minimum=2)

    def sample_parameters(self, batch_size, rng):
        anxiety = sample_value(self.anxiety, self.anxiety_range, batch_size, rng)
        exposure = rng.uniform(self.exposure_range[0], self.exposure_range[1], size=batch_size)
        kernels = motion_blur_kernels(
            batch_size,
            kernel_size=self.kernel_size,
            rng=rng,
            anxiety=anxiety,
            exposure=exposure,
            max_length=self.max_length,
            num_steps=self.num_steps,
        )
        return {"kernel": kernels}

    def apply(self, clean, parameters):
        return convolve(clean, parameters["kernel"])

    def get_config(self):
        return {
            "kernel_size": self.kernel_size,
            "max_length": self.max_length,
            "anxiety": self.anxiety,
            "anxiety_range": self.anxiety_range,
            "exposure_range": self.exposure_range,
            "num_steps": self.num_steps,
            "seed": self.seed,
        }
