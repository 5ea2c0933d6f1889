"""Noise degradations: additive white Gaussian noise (denoising) and pure noise (generation)."""

import keras
import numpy as np

from keras_indi.api_export import keras_indi_export
from keras_indi.degradations.base import Degradation
from keras_indi.degradations.base import check_value_or_range
from keras_indi.degradations.base import sample_seeds
from keras_indi.degradations.base import sample_value
from keras_indi.degradations.common import numpy_call


def _per_sample_normal(shape, seeds):
    """Standard normal float32 noise of `shape` (batch first), sample i drawn from seeds[i]."""
    noise = np.empty(shape, dtype="float32")
    for index, seed in enumerate(seeds):
        noise[index] = np.random.default_rng(int(seed)).standard_normal(shape[1:], dtype="float32")
    return noise


def add_noise(clean, sigma, noise):
    """``clean + sigma * noise`` with keras.ops, one `sigma` per image (or one for all)."""
    sigma = keras.ops.reshape(keras.ops.cast(sigma, clean.dtype), (-1, 1, 1, 1))
    return clean + sigma * keras.ops.cast(noise, clean.dtype)


@keras_indi_export("keras_indi.degradations.AdditiveGaussianNoise")
class AdditiveGaussianNoise(Degradation):
    """Additive white Gaussian noise: ``y = x + sigma * n``, ``n ~ N(0, I)``.

    `sigma` is expressed in the units of ``[-1, 1]`` images: ``sigma = s / 127.5`` for a noise
    standard deviation ``s`` on the usual ``[0, 255]`` scale (``sigma = 0.2`` is ``s = 25.5``).
    The output is not clipped, so the noise stays exactly Gaussian.

    Example:

    >>> noisy = AdditiveGaussianNoise(sigma=25 / 127.5, seed=0)(np.zeros((2, 16, 16, 3), "float32"))
    >>> noisy.shape
    (2, 16, 16, 3)

    Args:
        sigma: fixed noise standard deviation (``[-1, 1]`` units), or None to draw one per
            image uniformly in `sigma_range`.
        sigma_range: ``(low, high)`` used when `sigma` is None. The default ``(0.04, 0.4)`` is
            about 5 to 51 on the ``[0, 255]`` scale (blind denoising).
        seed: int or None, see `Degradation`.
    """

    supports_layer = True

    def __init__(self, sigma=None, sigma_range=(0.04, 0.4), seed=None):
        super().__init__(seed=seed)
        self.sigma, self.sigma_range = check_value_or_range(sigma, sigma_range, "sigma", minimum=0.0)

    def sample_parameters(self, batch_size, rng):
        return {
            "sigma": sample_value(self.sigma, self.sigma_range, batch_size, rng),
            "noise_seed": sample_seeds(batch_size, rng),
        }

    def apply(self, clean, parameters):
        noise = _per_sample_normal(clean.shape, parameters["noise_seed"])
        return numpy_call(add_noise, clean, np.asarray(parameters["sigma"], "float32"), noise)

    def backend_call(self, clean, seed_generator):
        batch_size = keras.ops.shape(clean)[0]
        if self.sigma is not None:
            sigma = self.sigma
        else:
            sigma = keras.random.uniform(
                (batch_size,), self.sigma_range[0], self.sigma_range[1], dtype="float32", seed=seed_generator
            )
        noise = keras.random.normal(keras.ops.shape(clean), dtype=clean.dtype, seed=seed_generator)
        return add_noise(clean, sigma, noise)

    def get_config(self):
        return {"sigma": self.sigma, "sigma_range": self.sigma_range, "seed": self.seed}


@keras_indi_export("keras_indi.degradations.PureNoise")
class PureNoise(Degradation):
    """Generation: the "degraded" image is standard normal noise, independent of the clean one.

    ``y ~ N(0, I)`` with the shape of the clean image. InDI trained on (noise, image) pairs
    generates images (the rectified-flow path with x-prediction). Note that ``y`` is not in
    ``[-1, 1]``.

    Example:

    >>> noise = PureNoise(seed=0)(np.zeros((2, 8, 8, 3), "float32"))
    >>> noise.shape
    (2, 8, 8, 3)

    Args:
        seed: int or None, see `Degradation`.
    """

    supports_layer = True

    def sample_parameters(self, batch_size, rng):
        return {"noise_seed": sample_seeds(batch_size, rng)}

    def apply(self, clean, parameters):
        return _per_sample_normal(clean.shape, parameters["noise_seed"])

    def backend_call(self, clean, seed_generator):
        return keras.random.normal(keras.ops.shape(clean), dtype=clean.dtype, seed=seed_generator)
