"""NumPy crops, flips and resizing that keep (degraded, clean) pairs aligned."""

import numpy as np

from keras_indi.api_export import keras_indi_export
from keras_indi.degradations.resize import imresize


@keras_indi_export("keras_indi.datasets.bicubic_resize")
def bicubic_resize(image, size):
    """Resize a float ``(h, w, c)`` image to ``size=(height, width)`` with MATLAB's bicubic
    (`keras_indi.degradations.imresize`: Keys kernel, a = -0.5, symmetric borders, antialiased
    when shrinking; the bicubic of super-resolution benchmarks). Returns float32, not clipped."""
    size = (int(size[0]), int(size[1]))
    image = np.asarray(image, "float32")
    return image if image.shape[:2] == size else imresize(image, output_shape=size)


def upscale_to_cover(image, size):
    """Bicubically enlarge `image` (keeping its aspect ratio) until it covers ``size``.

    Used for *clean* images smaller than the crop (e.g. 28x28 TFDS digits with
    ``image_size=64``); images already large enough are returned unchanged."""
    height, width = image.shape[:2]
    factor = max(size[0] / height, size[1] / width)
    if factor <= 1.0:
        return image
    new = (max(size[0], int(np.ceil(height * factor))), max(size[1], int(np.ceil(width * factor))))
    return np.clip(bicubic_resize(image, new), -1.0, 1.0)


def crop_offsets(shape, size, scale=1, rng=None):
    """Top-left corner, in *input* (low-resolution) pixels, of a crop of ``size`` target pixels.

    ``shape`` is the (height, width) of the low-resolution input. With ``rng=None`` the crop
    is centred; otherwise it is uniform over all valid positions."""
    crop_h, crop_w = size[0] // scale, size[1] // scale
    max_y, max_x = shape[0] - crop_h, shape[1] - crop_w
    if max_y < 0 or max_x < 0:
        raise ValueError(f"Crop {crop_h}x{crop_w} does not fit in an image of {shape[0]}x{shape[1]}.")
    if rng is None:
        return max_y // 2, max_x // 2
    return int(rng.integers(0, max_y + 1)), int(rng.integers(0, max_x + 1))


@keras_indi_export("keras_indi.datasets.paired_crop")
def paired_crop(degraded, clean, size, scale=1, rng=None, offset=None):
    """Crop matching regions of a (degraded, clean) pair.

    ``clean`` is cropped to ``size=(height, width)``; ``degraded`` is either the same size as
    ``clean`` (``scale=1``) or ``scale`` times smaller (e.g. DIV2K ``x4`` inputs), in which case
    its crop is ``size / scale`` and starts at the clean crop's corner divided by ``scale``:
    pixel ``(i, j)`` of the input crop covers pixels ``scale*i .. scale*i + scale - 1`` of the
    clean crop. ``size`` must be divisible by ``scale``.

    Returns ``(degraded_crop, clean_crop)`` (the degraded crop is *not* upsampled here; see
    `align_pair`).
    """
    size = (int(size[0]), int(size[1]))
    if size[0] % scale or size[1] % scale:
        raise ValueError(
            f"`image_size` {size} must be divisible by the input scale {scale} so that the input "
            f"crop is exactly image_size / scale. Use a multiple of {scale}."
        )
    if offset is None:
        # Valid input-crop positions: the clean crop [s*y, s*y + H) must fit in `clean` too.
        limit = (
            min(degraded.shape[0], clean.shape[0] // scale),
            min(degraded.shape[1], clean.shape[1] // scale),
        )
        offset = crop_offsets(limit, size, scale, rng)
    y, x = offset
    h, w = size[0] // scale, size[1] // scale
    degraded_crop = degraded[y : y + h, x : x + w]
    clean_crop = clean[y * scale : y * scale + size[0], x * scale : x * scale + size[1]]
    return degraded_crop, clean_crop


def random_flips(degraded, clean, rng):
    """Flip both images together: left-right and up-down, each with probability 1/2."""
    if rng.random() < 0.5:
        degraded, clean = degraded[:, ::-1], clean[:, ::-1]
    if rng.random() < 0.5:
        degraded, clean = degraded[::-1], clean[::-1]
    return degraded, clean


def align_pair(degraded, clean, size, scale=1, rng=None, flips=False):
    """Crop a pair (scale-aware), upsample a low-resolution input crop back to ``size`` with
    bicubic interpolation (clipped to [-1, 1]) and optionally flip: same-size float32 crops."""
    degraded, clean = paired_crop(degraded, clean, size, scale=scale, rng=rng)
    if scale != 1:
        degraded = np.clip(bicubic_resize(degraded, size), -1.0, 1.0)
    if flips:
        degraded, clean = random_flips(degraded, clean, rng)
    return (
        np.ascontiguousarray(degraded, dtype="float32"),
        np.ascontiguousarray(clean, dtype="float32"),
    )


def crop_clean(clean, size, rng=None, flips=False):
    """Random (or centred, ``rng=None``) crop of a clean image, enlarged first if too small."""
    clean = upscale_to_cover(clean, size)
    y, x = crop_offsets(clean.shape[:2], size, 1, rng)
    crop = clean[y : y + size[0], x : x + size[1]]
    if flips:
        if rng.random() < 0.5:
            crop = crop[:, ::-1]
        if rng.random() < 0.5:
            crop = crop[::-1]
    return np.ascontiguousarray(crop, dtype="float32")
