"""Weight-free perceptual proxies that compare two *sets* of images (NumPy).

* :func:`sliced_wasserstein_distance`: the multi-scale sliced Wasserstein distance of
  Karras et al. (Progressive GAN, ICLR 2018) between the distributions of 7x7 patches of the
  Laplacian pyramids of two image sets.
* :func:`power_spectrum_distance`: distance between the radially averaged log power spectra
  of two image sets (over-smoothed restorations lose high-frequency power, noisy ones gain it).

Neither needs network weights. Both are distribution-level: they compare a set of
restorations with a set of clean images, not image pairs, and are meaningful for sets of at
least a few images. Inputs are channels-last ``(batch, height, width, channels)`` arrays (or
one ``(height, width, channels)`` image) of any value range; both sets must use the same one.
"""

import numbers

import keras
import numpy as np
from scipy import ndimage

from keras_indi.api_export import keras_indi_export
from keras_indi.utils.validation import check_positive_int

# 5-tap binomial filter of cv2.pyrDown / pyrUp, as in the Progressive GAN code.
_PYRAMID_TAPS = np.array([1.0, 4.0, 6.0, 4.0, 1.0]) / 16.0


def _to_numpy_images(images, name, min_size=1):
    if images is None:
        raise ValueError(f"`{name}` is required but received None.")
    if keras.ops.is_tensor(images) or (
        hasattr(images, "numpy") and not isinstance(images, np.ndarray)
    ):
        images = keras.ops.convert_to_numpy(images)
    images = np.asarray(images)
    if images.dtype == object or not (
        np.issubdtype(images.dtype, np.floating) or np.issubdtype(images.dtype, np.integer)
    ):
        raise ValueError(f"`{name}` must be a numeric image array. Received dtype {images.dtype}.")
    if images.ndim == 3:
        images = images[None]
    if images.ndim != 4:
        raise ValueError(
            f"`{name}` must have shape (batch, height, width, channels) or (height, width, "
            f"channels). Received shape {images.shape}. Add a channel axis to grayscale images "
            "with `x[..., None]`."
        )
    if images.size == 0:
        raise ValueError(f"`{name}` is empty (shape {images.shape}).")
    if not np.isfinite(images).all():
        bad = int(images.size - np.isfinite(images).sum())
        raise ValueError(f"`{name}` contains {bad} NaN or Inf values.")
    if min(images.shape[1:3]) < min_size:
        raise ValueError(
            f"`{name}` images are {images.shape[1]}x{images.shape[2]} but this metric needs at "
            f"least {min_size}x{min_size} pixels."
        )
    return images.astype("float64")


def _check_same_image_shape(a, b):
    if a.shape[1:] != b.shape[1:]:
        raise ValueError(
            "`a` and `b` must hold images of the same (height, width, channels). Received "
            f"{a.shape[1:]} and {b.shape[1:]} (the batch sizes may differ)."
        )


def _pyr_down(images):
    """Blur with the binomial filter (mirror borders) and keep every second pixel (cv2.pyrDown)."""
    blurred = ndimage.convolve1d(images, _PYRAMID_TAPS, axis=1, mode="mirror")
    blurred = ndimage.convolve1d(blurred, _PYRAMID_TAPS, axis=2, mode="mirror")
    return blurred[:, ::2, ::2, :]


def _pyr_up(images, shape):
    """Insert zeros, blur with 4x the binomial filter, crop to `shape` (cv2.pyrUp)."""
    batch, height, width, channels = images.shape
    up = np.zeros((batch, 2 * height, 2 * width, channels), images.dtype)
    up[:, ::2, ::2, :] = images
    up = ndimage.convolve1d(up, 2.0 * _PYRAMID_TAPS, axis=1, mode="mirror")
    up = ndimage.convolve1d(up, 2.0 * _PYRAMID_TAPS, axis=2, mode="mirror")
    return up[:, : shape[1], : shape[2], :]


@keras_indi_export("keras_indi.metrics.laplacian_pyramid")
def laplacian_pyramid(images, num_levels):
    """Laplacian pyramid of ``(batch, height, width, channels)`` images, finest level first.

    Levels ``0 .. num_levels - 2`` are band-pass (image minus the upsampled next level); the
    last level is the low-pass residual. Same filters as OpenCV's pyrDown/pyrUp.

    >>> levels = laplacian_pyramid(np.zeros((1, 32, 32, 3)), num_levels=2)
    >>> [level.shape[1] for level in levels]
    [32, 16]
    """
    images = _to_numpy_images(images, "images")
    num_levels = check_positive_int(num_levels, "num_levels")
    pyramid = [images]
    for _ in range(1, num_levels):
        pyramid.append(_pyr_down(pyramid[-1]))
        pyramid[-2] = pyramid[-2] - _pyr_up(pyramid[-1], pyramid[-2].shape)
    return pyramid


def _patch_descriptors(level, patch_size, patches_per_image, rng):
    """`patches_per_image` random patches per image, normalized per channel -> (n, p*p*c)."""
    batch, height, width, channels = level.shape
    half = patch_size // 2
    count = batch * patches_per_image
    image_index = np.repeat(np.arange(batch), patches_per_image)
    rows = rng.integers(half, height - half, size=count)
    cols = rng.integers(half, width - half, size=count)
    offsets = np.arange(-half, half + 1)
    patches = level[
        image_index[:, None, None],
        rows[:, None, None] + offsets[None, :, None],
        cols[:, None, None] + offsets[None, None, :],
        :,
    ]  # (count, patch, patch, channels)
    patches = patches - patches.mean(axis=(0, 1, 2), keepdims=True)
    patches = patches / np.maximum(patches.std(axis=(0, 1, 2), keepdims=True), 1e-8)
    return patches.reshape(count, -1).astype("float32")


def _sliced_wasserstein(desc_a, desc_b, num_projections, rng, projections_per_repeat=128):
    """Mean over random unit directions of the 1-D Wasserstein-1 distance of the projections."""
    size = max(desc_a.shape[0], desc_b.shape[0])
    # Quantile grid: exact W1 of the empirical distributions when both sets have `size` points.
    quantiles_a = np.minimum(
        ((np.arange(size) + 0.5) * desc_a.shape[0] / size).astype(int), desc_a.shape[0] - 1
    )
    quantiles_b = np.minimum(
        ((np.arange(size) + 0.5) * desc_b.shape[0] / size).astype(int), desc_b.shape[0] - 1
    )
    total, done = 0.0, 0
    while done < num_projections:
        count = min(projections_per_repeat, num_projections - done)
        directions = rng.standard_normal((desc_a.shape[1], count))
        directions /= np.sqrt(np.sum(np.square(directions), axis=0, keepdims=True))
        directions = directions.astype("float32")
        proj_a = np.sort(desc_a @ directions, axis=0)[quantiles_a]
        proj_b = np.sort(desc_b @ directions, axis=0)[quantiles_b]
        total += float(np.abs(proj_a - proj_b).mean(axis=0, dtype="float64").sum())
        done += count
    return total / num_projections


@keras_indi_export("keras_indi.metrics.sliced_wasserstein_distance")
def sliced_wasserstein_distance(
    a,
    b,
    patch_size=7,
    patches_per_image=128,
    num_projections=512,
    min_resolution=16,
    seed=0,
    return_per_level=False,
):
    """Multi-scale sliced Wasserstein distance between two image sets (Karras et al. 2018).

    As in the Progressive GAN evaluation code: each set is decomposed into a Laplacian
    pyramid (levels down to `min_resolution` pixels); at every level `patches_per_image`
    random ``patch_size x patch_size`` patches are taken per image, each channel of the patch
    descriptors is normalized to zero mean and unit variance over the set, and the sliced
    Wasserstein distance between the two descriptor sets is the mean over
    `num_projections` random unit directions of the 1-D Wasserstein-1 distance of the
    projections. The result is the mean over levels (the paper reports it multiplied by
    1e3; this function does not scale it).

    Lower is better; identical sets give exactly 0 (the same seed draws the same patch
    locations and directions for both sets). Finer levels respond to noise and lost detail,
    coarser ones to colour and shape statistics. Because of the per-set normalization, a
    global brightness/contrast change is not measured.

    Args:
        a, b: image sets ``(batch, height, width, channels)`` (NumPy arrays or tensors) with
            the same image shape; the batch sizes may differ.
        patch_size: odd patch side (7 in the paper).
        patches_per_image: patches drawn per image and level (128 in the paper).
        num_projections: random directions (4 x 128 = 512 in the paper).
        min_resolution: the coarsest pyramid level is the smallest one with at least this many
            pixels on the shorter side (16 in the paper). Images smaller than it use a single
            level.
        seed: seeds patch locations and directions, so results are reproducible.
        return_per_level: also return the per-level distances.

    Returns:
        float (and a list of per-level floats, finest first, when `return_per_level`).

    Example:

    >>> rng = np.random.default_rng(0)
    >>> clean = rng.uniform(-1, 1, (4, 32, 32, 3))
    >>> sliced_wasserstein_distance(clean, clean)
    0.0
    >>> noisy = clean + rng.normal(0, 0.5, clean.shape)
    >>> sliced_wasserstein_distance(clean, noisy) > 0
    True
    """
    patch_size = check_positive_int(patch_size, "patch_size")
    if patch_size % 2 == 0:
        raise ValueError(f"`patch_size` must be odd. Received patch_size={patch_size}.")
    patches_per_image = check_positive_int(patches_per_image, "patches_per_image")
    num_projections = check_positive_int(num_projections, "num_projections")
    min_resolution = check_positive_int(min_resolution, "min_resolution")
    if seed is not None:
        seed = check_positive_int(seed, "seed", minimum=0)
    a = _to_numpy_images(a, "a", min_size=patch_size)
    b = _to_numpy_images(b, "b", min_size=patch_size)
    _check_same_image_shape(a, b)

    num_levels = 1
    size = min(a.shape[1:3]) // 2
    while size >= max(min_resolution, patch_size):
        num_levels += 1
        size //= 2

    seeds = np.random.SeedSequence(seed).spawn(2)
    location_seed, direction_seed = seeds
    rng_a = np.random.default_rng(location_seed)
    rng_b = np.random.default_rng(location_seed)
    rng_dirs = np.random.default_rng(direction_seed)
    per_level = []
    for level_a, level_b in zip(laplacian_pyramid(a, num_levels), laplacian_pyramid(b, num_levels)):
        desc_a = _patch_descriptors(level_a, patch_size, patches_per_image, rng_a)
        desc_b = _patch_descriptors(level_b, patch_size, patches_per_image, rng_b)
        per_level.append(_sliced_wasserstein(desc_a, desc_b, num_projections, rng_dirs))
    distance = float(np.mean(per_level))
    if return_per_level:
        return distance, per_level
    return distance


@keras_indi_export("keras_indi.metrics.radial_power_spectrum")
def radial_power_spectrum(images, num_bins=None):
    """Radially averaged power spectrum of an image set: ``(frequencies, power)``.

    Each image channel has its mean removed, is Fourier transformed and its power
    ``|FFT|^2 / (height * width)`` is averaged over channels, images and rings of equal radial
    frequency (cycles per pixel, ``0 < f <= 0.5``; the corners beyond 0.5 are left out).

    Args:
        images: ``(batch, height, width, channels)`` array or tensor.
        num_bins: rings; default ``min(height, width) // 2``.

    Returns:
        ``(frequencies, power)``: two float64 arrays of length `num_bins` (ring centres and
        mean power; rings containing no frequency have power NaN).

    >>> freqs, power = radial_power_spectrum(np.random.default_rng(0).normal(size=(2, 32, 32, 1)))
    >>> freqs.shape, bool(abs(power.mean() - 1.0) < 0.2)  # white noise: flat spectrum ~ 1
    ((16,), True)
    """
    images = _to_numpy_images(images, "images", min_size=2)
    height, width = images.shape[1:3]
    if num_bins is None:
        num_bins = max(min(height, width) // 2, 1)
    num_bins = check_positive_int(num_bins, "num_bins")
    centred = images - images.mean(axis=(1, 2), keepdims=True)
    spectrum = np.abs(np.fft.fft2(centred, axes=(1, 2))) ** 2 / (height * width)
    spectrum = spectrum.mean(axis=(0, 3))  # (height, width)
    fy = np.fft.fftfreq(height)[:, None]
    fx = np.fft.fftfreq(width)[None, :]
    radius = np.sqrt(fy**2 + fx**2)
    edges = np.linspace(0.0, 0.5, num_bins + 1)
    inside = (radius > 0) & (radius <= 0.5)
    bins = np.clip(np.searchsorted(edges, radius[inside], side="left") - 1, 0, num_bins - 1)
    sums = np.bincount(bins, weights=spectrum[inside], minlength=num_bins)
    counts = np.bincount(bins, minlength=num_bins)
    with np.errstate(invalid="ignore", divide="ignore"):
        power = sums / counts
    power[counts == 0] = np.nan
    return 0.5 * (edges[1:] + edges[:-1]), power


@keras_indi_export("keras_indi.metrics.power_spectrum_distance")
def power_spectrum_distance(a, b, num_bins=None, eps=1e-10):
    """Root-mean-square difference of the radially averaged log10 power spectra of two sets.

    ``sqrt(mean_f (log10(P_a(f) + eps) - log10(P_b(f) + eps))^2)`` over the rings of
    :func:`radial_power_spectrum` (DC excluded). A value of 0.1 means the spectra differ by
    about 26% in power on average; 1.0 by a factor of 10. Blurry restorations lack power at
    high frequencies, noisy or over-sharpened ones have too much. Lower is better; identical
    sets give 0. Deterministic (no randomness).

    Args:
        a, b: image sets ``(batch, height, width, channels)`` with the same image shape (the
            batch sizes may differ) and the same value range.
        num_bins: rings; default ``min(height, width) // 2``.
        eps: added to the power before the logarithm.

    Example:

    >>> rng = np.random.default_rng(0)
    >>> clean = rng.uniform(-1, 1, (2, 32, 32, 3))
    >>> power_spectrum_distance(clean, clean)
    0.0
    >>> power_spectrum_distance(clean, 0.5 * clean) > 0.5  # a quarter of the power: log10(4)
    True
    """
    if isinstance(eps, bool) or not isinstance(eps, numbers.Real) or not eps > 0:
        raise ValueError(f"`eps` must be a positive number. Received eps={eps!r}.")
    a = _to_numpy_images(a, "a", min_size=2)
    b = _to_numpy_images(b, "b", min_size=2)
    _check_same_image_shape(a, b)
    _, power_a = radial_power_spectrum(a, num_bins)
    _, power_b = radial_power_spectrum(b, num_bins)
    valid = np.isfinite(power_a) & np.isfinite(power_b)
    diff = np.log10(power_a[valid] + eps) - np.log10(power_b[valid] + eps)
    return float(np.sqrt(np.mean(diff**2)))
