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

from keras_indi._lazy import attach

_NAMES = {
    "FID": "fid",
    "KID": "fid",
    "InceptionFeatureExtractor": "fid",
    "frechet_distance": "fid",
    "gaussian_frechet_distance": "fid",
    "kernel_inception_distance": "fid",
    "PSNR": "image_quality",
    "SSIM": "image_quality",
    "psnr": "image_quality",
    "rgb_to_y": "image_quality",
    "ssim": "image_quality",
    "LPIPS": "lpips",
    "convert_lpips_torch_weights": "lpips",
    "lpips_weight_shapes": "lpips",
    "laplacian_pyramid": "perceptual",
    "power_spectrum_distance": "perceptual",
    "radial_power_spectrum": "perceptual",
    "sliced_wasserstein_distance": "perceptual",
}
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
__getattr__, __dir__ = attach(__name__, _NAMES)
del attach
