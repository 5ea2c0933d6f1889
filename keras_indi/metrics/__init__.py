"""Image-quality metrics for restoration: distortion, perceptual proxies and feature distances.

* Distortion (``keras.ops``, every backend, per image): :func:`psnr`, :func:`ssim` and the
  Keras metrics :class:`PSNR`, :class:`SSIM` (means over images, for ``compile``).
* Weight-free perceptual proxies on image sets (NumPy): :func:`sliced_wasserstein_distance`,
  :func:`power_spectrum_distance`.
* Learned perceptual distance: :class:`LPIPS` (weights from a local file, see
  :func:`convert_lpips_torch_weights`).
* Feature-distribution distances: :func:`frechet_distance`, :func:`kernel_inception_distance`
  and the accumulators :class:`FID`, :class:`KID` (your feature extractor or a local
  InceptionV3 weights file; nothing is downloaded).

>>> import numpy as np
>>> from keras_indi import metrics
>>> clean = np.zeros((2, 16, 16, 3), "float32")
>>> [round(float(v), 2) for v in metrics.psnr(clean, clean + 0.1)]
[26.02, 26.02]
"""

from keras_indi.metrics.fid import (
    FID,
    KID,
    InceptionFeatureExtractor,
    frechet_distance,
    gaussian_frechet_distance,
    kernel_inception_distance,
)
from keras_indi.metrics.image_quality import PSNR, SSIM, psnr, rgb_to_y, ssim
from keras_indi.metrics.lpips import LPIPS, convert_lpips_torch_weights, lpips_weight_shapes
from keras_indi.metrics.perceptual import (
    laplacian_pyramid,
    power_spectrum_distance,
    radial_power_spectrum,
    sliced_wasserstein_distance,
)

__all__ = [
    "FID",
    "KID",
    "LPIPS",
    "PSNR",
    "SSIM",
    "InceptionFeatureExtractor",
    "convert_lpips_torch_weights",
    "frechet_distance",
    "gaussian_frechet_distance",
    "kernel_inception_distance",
    "laplacian_pyramid",
    "lpips_weight_shapes",
    "power_spectrum_distance",
    "psnr",
    "radial_power_spectrum",
    "rgb_to_y",
    "sliced_wasserstein_distance",
    "ssim",
]
