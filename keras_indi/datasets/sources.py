"""Offline clean-image sources: scikit-image's photographs and procedural dead leaves.

Nothing here downloads anything: the photographs are the ones bundled inside the
scikit-image wheel, and dead leaves are generated from a seed.
"""

import functools
import warnings

import numpy as np

from keras_indi.api_export import keras_indi_export
from keras_indi.datasets import transforms
from keras_indi.datasets.image_io import check_channels, to_model_image

# Natural photographs bundled with scikit-image (no download needed). Checked with
# scikit-image 0.22-0.26: every name loads offline. Grayscale ones are replicated to RGB.
BUILTIN_IMAGE_NAMES = (
    "astronaut",  # 512x512 RGB portrait
    "chelsea",  # 300x451 RGB cat
    "coffee",  # 400x600 RGB cup of coffee
    "rocket",  # 427x640 RGB launch pad
    "immunohistochemistry",  # 512x512 RGB microscopy
    "motorcycle",  # 500x741 RGB (left view of `stereo_motorcycle`)
    "camera",  # 512x512 gray photograph
    "moon",  # 512x512 gray lunar surface
    "coins",  # 303x384 gray coins
    "grass",  # 512x512 gray texture
    "gravel",  # 512x512 gray texture
    "brick",  # 512x512 gray texture
)
# Also offline, but with large flat/black areas: opt in with `builtin_images(names=...)`.
EXTRA_IMAGE_NAMES = ("retina", "hubble_deep_field", "cell", "text")


def _load_skimage(name):
    import skimage.data

    if name == "motorcycle":
        return skimage.data.stereo_motorcycle()[0]
    loader = getattr(skimage.data, name, None)
    if loader is None:
        raise AttributeError(name)
    return loader()


@keras_indi_export("keras_indi.datasets.builtin_images")
def builtin_images(names=None, channels=3):
    """The natural photographs that ship with scikit-image, as float32 images in [-1, 1].

    Nothing is downloaded. Images keep their own sizes (between 300x384 and 512x741 for the
    defaults), so the result is a list. Grayscale photographs are replicated to RGB when
    ``channels=3``.

    Example:

    >>> images = builtin_images()
    >>> len(images) >= 10, images[0].shape, images[0].dtype
    (True, (512, 512, 3), dtype('float32'))

    Args:
        names: sequence of names, or None for `BUILTIN_IMAGE_NAMES`. `EXTRA_IMAGE_NAMES`
            ("retina", "hubble_deep_field", "cell", "text") are available too.
        channels: 3 (RGB, default) or 1 (luma).

    Returns:
        A list of float32 arrays ``(height, width, channels)`` in ``[-1, 1]``.
    """
    channels = check_channels(channels)
    if isinstance(names, str):
        names = (names,)
    names = None if names is None else tuple(names)
    return [image.copy() for image in _builtin_images_cached(names, channels)]


@functools.lru_cache(maxsize=4)
def _builtin_images_cached(names, channels):
    """`builtin_images` decoded once per process (callers must not modify the arrays)."""
    explicit = names is not None
    if names is None:
        names = BUILTIN_IMAGE_NAMES
    images = []
    for name in names:
        try:
            array = _load_skimage(name)
        except AttributeError:
            raise ValueError(
                f"`names` contains {name!r}, which is not a scikit-image sample. Choose from "
                f"{BUILTIN_IMAGE_NAMES + EXTRA_IMAGE_NAMES}."
            ) from None
        except Exception as error:  # needs a download (pooch) in this scikit-image version
            if explicit:
                raise ValueError(
                    f"The scikit-image sample {name!r} cannot be loaded offline here ({error})."
                ) from error
            warnings.warn(f"Skipping scikit-image sample {name!r}: {error}", stacklevel=2)
            continue
        images.append(to_model_image(array, channels=channels, what=f"skimage.data.{name}"))
    if not images:
        raise ValueError("None of the scikit-image sample photographs could be loaded offline.")
    return images


@keras_indi_export("keras_indi.datasets.DeadLeaves")
class DeadLeaves:
    """Procedural dead-leaves images: an infinite, seeded, random-access clean-image source.

    Each image is an occluding stack of opaque disks. Radii follow the scale-invariant
    power law ``p(r) ~ r^-3`` on ``[min_radius, max_radius]`` (fractions of the image's larger
    side), centres are uniform (also up to `max_radius` outside the frame), colours are uniform in RGB
    (or gray). Occlusion is consistent: disk ``k`` lies *behind* disks ``0..k-1`` (each new leaf
    falls under the existing ones), so generation stops as soon as every pixel is covered.
    Pixels still uncovered after `max_disks` disks get a background colour. Dead leaves share
    the edge and scale statistics of natural images and are a classic training source for
    restoration networks.

    Image ``i`` depends only on ``(seed, i)``: ``leaves[i]`` is reproducible, and iteration
    is infinite.

    Example:

    >>> leaves = DeadLeaves(image_size=32, seed=0)
    >>> image = leaves[3]
    >>> image.shape, bool((image == DeadLeaves(image_size=32, seed=0)[3]).all())
    ((32, 32, 3), True)

    Args:
        image_size: int or (height, width) of the generated images.
        min_radius, max_radius: radius range, as fractions of ``max(height, width)``.
            The smallest radius is at least half a pixel.
        channels: 3 (random RGB colours) or 1 (random gray levels).
        max_disks: safety cap on the number of disks per image.
        seed: int seed.
    """

    def __init__(self, image_size=64, min_radius=0.02, max_radius=0.4, channels=3, max_disks=20000, seed=0):
        self.image_size = _check_size(image_size, "image_size")
        if not (0 < min_radius < max_radius):
            raise ValueError(
                "`min_radius` and `max_radius` must satisfy 0 < min_radius < max_radius. "
                f"Received min_radius={min_radius!r}, max_radius={max_radius!r}."
            )
        self.min_radius = float(min_radius)
        self.max_radius = float(max_radius)
        self.channels = check_channels(channels)
        if int(max_disks) < 1:
            raise ValueError(f"`max_disks` must be >= 1. Received max_disks={max_disks!r}.")
        self.max_disks = int(max_disks)
        if not isinstance(seed, (int, np.integer)):
            raise ValueError(f"`seed` must be an int. Received seed={seed!r}.")
        self.seed = int(seed)

    def generate(self, rng, image_size=None):
        """One image drawn with `rng` (a ``numpy.random.Generator``)."""
        height, width = self.image_size if image_size is None else _check_size(image_size, "image_size")
        side = max(height, width)
        r_min = max(self.min_radius * side, 0.5)
        r_max = max(self.max_radius * side, r_min * 1.01)
        # Inverse CDF of p(r) ~ r^-3 on [r_min, r_max].
        a, b = r_min**-2, r_max**-2
        n_pixels = height * width
        label = np.full(n_pixels, -1, dtype=np.int64)
        remaining = None  # flat indices of uncovered pixels, once few are left
        uncovered = n_pixels
        tail = max(16, n_pixels // 64)
        colors = []
        drawn = 0
        chunk = 256
        while uncovered and drawn < self.max_disks:
            n = min(chunk, self.max_disks - drawn)
            radius = ((a - rng.random(n) * (a - b)) ** -0.5).astype(np.float32)
            # Centres up to r_max outside the frame: the same statistics near the borders.
            cy = rng.uniform(-r_max, height + r_max, n).astype(np.float32)
            cx = rng.uniform(-r_max, width + r_max, n).astype(np.float32)
            colors.append(rng.uniform(-1.0, 1.0, (n, self.channels)))
            if remaining is None:
                hits = self._bbox_hits(cy, cx, radius, height, width)
            else:
                hits = self._pixel_hits(cy, cx, radius, remaining, width)
            if hits is not None:
                pixel, disk = hits
                free = label[pixel] < 0
                label[pixel[free]] = drawn + disk[free]
                uncovered -= int(free.sum())
            drawn += n
            chunk = min(chunk * 2, 4096)
            if remaining is None and uncovered <= tail:
                remaining = np.flatnonzero(label < 0)
            elif remaining is not None:
                remaining = remaining[label[remaining] < 0]
        palette = np.concatenate(colors, axis=0) if colors else np.zeros((0, self.channels))
        background = rng.uniform(-1.0, 1.0, (1, self.channels))
        palette = np.concatenate([palette, background], axis=0).astype("float32")
        label[label < 0] = palette.shape[0] - 1
        return palette[label].reshape(height, width, self.channels)

    @staticmethod
    def _bbox_hits(cy, cx, radius, height, width):
        """(pixel, front-most disk) for every pixel covered by one of the disks.

        Vectorized scan conversion: (disk, row) spans first, then the pixels of each span, so
        the work is proportional to the covered area (plus the rows)."""
        y0 = np.clip(np.ceil(cy - radius - 0.5), 0, height).astype(np.int32)
        y1 = np.clip(np.floor(cy + radius - 0.5) + 1, 0, height).astype(np.int32)
        rows_per_disk = np.maximum(y1 - y0, 0)
        total_rows = int(rows_per_disk.sum())
        if total_rows == 0:
            return None
        disk = np.repeat(np.arange(cy.size, dtype=np.int32), rows_per_disk)
        row = y0[disk] + (
            np.arange(total_rows, dtype=np.int32)
            - np.repeat(np.cumsum(rows_per_disk) - rows_per_disk, rows_per_disk)
        )
        dy = row.astype(np.float32) + np.float32(0.5) - cy[disk]
        half = np.sqrt(np.maximum(radius[disk] ** 2 - dy * dy, 0.0))
        center = cx[disk]
        x0 = np.clip(np.ceil(center - half - 0.5), 0, width).astype(np.int32)
        x1 = np.clip(np.floor(center + half - 0.5) + 1, 0, width).astype(np.int32)
        span = np.maximum(x1 - x0, 0)
        total = int(span.sum())
        if total == 0:
            return None
        start = row * width + x0
        offsets = np.cumsum(span) - span
        pixel = np.repeat(start - offsets, span) + np.arange(total, dtype=np.int32)
        disk = np.repeat(disk, span)
        # Front-most (smallest index) disk per pixel.
        front = np.full(height * width, np.iinfo(np.int32).max, dtype=np.int32)
        np.minimum.at(front, pixel, disk)
        pixel = np.flatnonzero(front != np.iinfo(np.int32).max)
        return pixel, front[pixel]

    @staticmethod
    def _pixel_hits(cy, cx, radius, remaining, width):
        """Same as `_bbox_hits` for the few still uncovered pixels (tests them against all disks)."""
        py = (remaining // width).astype(np.float32) + np.float32(0.5)
        px = (remaining % width).astype(np.float32) + np.float32(0.5)
        dy = py[:, None] - cy[None, :]
        dx = px[:, None] - cx[None, :]
        inside = dy * dy + dx * dx <= (radius * radius)[None, :]
        hit = inside.any(axis=1)
        if not hit.any():
            return None
        return remaining[hit], inside[hit].argmax(axis=1)

    def __getitem__(self, index):
        index = int(index)
        if index < 0:
            raise IndexError("DeadLeaves is infinite: use a non-negative index.")
        return self.generate(np.random.default_rng([self.seed, index]))

    def __iter__(self):
        index = 0
        while True:
            yield self[index]
            index += 1

    def images(self, num_images, start=0):
        """Images ``start .. start + num_images - 1`` stacked as ``(num_images, h, w, c)``."""
        if int(num_images) < 1:
            raise ValueError(f"`num_images` must be >= 1. Received num_images={num_images!r}.")
        return np.stack([self[start + i] for i in range(int(num_images))])

    def get_config(self):
        return {
            "image_size": self.image_size,
            "min_radius": self.min_radius,
            "max_radius": self.max_radius,
            "channels": self.channels,
            "max_disks": self.max_disks,
            "seed": self.seed,
        }

    @classmethod
    def from_config(cls, config):
        return cls(**config)

    def __repr__(self):
        return "DeadLeaves(" + ", ".join(f"{k}={v!r}" for k, v in self.get_config().items()) + ")"


@keras_indi_export("keras_indi.datasets.dead_leaves_images")
def dead_leaves_images(num_images, image_size=64, seed=0, **kwargs):
    """``num_images`` dead-leaves images as a float32 array ``(n, h, w, c)`` in [-1, 1].

    Shortcut for ``DeadLeaves(image_size, seed=seed, **kwargs).images(num_images)``; image
    ``i`` is the same as ``DeadLeaves(...)[i]``.

    >>> dead_leaves_images(2, image_size=16, seed=1).shape
    (2, 16, 16, 3)
    """
    return DeadLeaves(image_size=image_size, seed=seed, **kwargs).images(num_images)


def _check_size(size, name):
    if isinstance(size, (int, np.integer)) and not isinstance(size, bool):
        size = (int(size), int(size))
    try:
        height, width = (int(s) for s in size)
    except (TypeError, ValueError):
        raise ValueError(
            f"`{name}` must be an int or a (height, width) pair. Received {name}={size!r}."
        ) from None
    if height < 1 or width < 1:
        raise ValueError(f"`{name}` must be positive. Received {name}={size!r}.")
    return height, width


def sizes_match(input_size, target_size, scale):
    """Same size (``scale=1``), or input = floor or ceil of target / scale on both axes."""
    return all(input_size[k] in (target_size[k] // scale, -(-target_size[k] // scale)) for k in (0, 1))


@keras_indi_export("keras_indi.datasets.ImageSource")
class ImageSource:
    """The one protocol of the data sources that `build_task_datasets` reads.

    A source holds either clean images (``paired = False``) or ``(degraded, clean)`` pairs
    (``paired = True``; the degraded input is ``scale`` times smaller than the clean target).
    `ImageFolder`, `ImagePairs`, the in-memory arrays given as ``source=`` and the TFDS
    sources (`TFDSImages`, `TFDSPairs`) are all sources. A subclass defines:

    * ``paired`` and ``scale`` (class or instance attributes; defaults False and 1);
    * ``__len__`` and ``__getitem__(index)``: a float32 ``(h, w, c)`` image in [-1, 1], or a
      ``(degraded, clean)`` pair of them;
    * ``clean_images()`` when paired: the clean targets alone, as a source;
    * optionally ``describe(index)`` (how error messages name item ``index``) and
      ``subset(indices)`` (default: a view of these items, in this order).

    Streaming sources (``streaming = True``: `TFDSImages`, `TFDSPairs`) are read in order,
    not by index; their ``materialize()`` decodes them into an in-memory source (the others
    return themselves). The pipeline crops item ``index`` with ``crop(index, size, rng,
    flips)``.

    Example:

    >>> import numpy as np
    >>> class Constant(ImageSource):
    ...     def __len__(self):
    ...         return 3
    ...     def __getitem__(self, index):
    ...         return np.full((8, 8, 3), index - 1.0, "float32")  # in [-1, 1]
    >>> source = Constant()
    >>> len(source.subset([2, 0])), float(source.subset([2, 0])[0][0, 0, 0])
    (2, 1.0)
    >>> source.crop(1, (4, 4), np.random.default_rng(0), flips=False)[1].shape
    (4, 4, 3)
    """

    paired = False
    scale = 1
    streaming = False

    def __len__(self):
        raise TypeError(f"{type(self).__name__} has no length: call `materialize()` first.")

    def __getitem__(self, index):
        raise TypeError(f"{type(self).__name__} is not indexable: call `materialize()` first.")

    def describe(self, index):
        """How error messages name item `index`."""
        return f"item {index}"

    def subset(self, indices):
        """The items at `indices` (e.g. a train/validation split), as a source."""
        return _Subset(self, indices)

    def clean_images(self):
        """The clean side: this source, or the clean targets of a paired one."""
        if self.paired:
            raise NotImplementedError(f"{type(self).__name__} must define `clean_images()`.")
        return self

    def materialize(self, max_examples=None, channels=3):
        """A random-access source with these items (this one: it is random-access already)."""
        return self

    def crop(self, index, size, rng, flips):
        """``(degraded or None, clean)`` float32 crops of item `index`, of ``size=(h, w)``.

        A clean image smaller than `size` is enlarged first; a pair smaller than `size`
        raises a ValueError naming the item."""
        if not self.paired:
            return None, transforms.crop_clean(self[index], size, rng=rng, flips=flips)
        degraded, clean = self[index]
        scale = self.scale
        need = (size[0] // scale, size[1] // scale)
        if (
            degraded.shape[0] < need[0]
            or degraded.shape[1] < need[1]
            or clean.shape[0] < size[0]
            or clean.shape[1] < size[1]
        ):
            raise ValueError(
                f"{self.describe(index)} is too small for `image_size` {size}: target "
                f"{clean.shape[0]}x{clean.shape[1]}, input {degraded.shape[0]}x{degraded.shape[1]}"
                f"{f' (scale {scale})' if scale > 1 else ''}. Use a smaller `image_size` or remove this pair."
            )
        return transforms.align_pair(degraded, clean, size, scale=scale, rng=rng, flips=flips)


class _Subset(ImageSource):
    """Items ``indices`` of another source (named by their index there in error messages)."""

    def __init__(self, source, indices):
        self.source = source
        self.indices = [int(i) for i in indices]
        self.paired = source.paired
        self.scale = source.scale

    def __len__(self):
        return len(self.indices)

    def __getitem__(self, index):
        return self.source[self.indices[index]]

    def describe(self, index):
        return self.source.describe(self.indices[index])

    def subset(self, indices):
        return _Subset(self.source, [self.indices[i] for i in indices])

    def clean_images(self):
        return _Subset(self.source.clean_images(), self.indices)

    def __repr__(self):
        return f"{self.source!r}.subset({len(self)} items)"


# In-memory sources (NumPy arrays, materialized TFDS splits), shared by the pipeline and the
# TFDS sources.
class _ConvertedCache:
    """Images checked and converted on first access, kept up to `LIMIT` bytes in all.

    A training pipeline crops the same few in-memory photographs thousands of times, and
    converting a whole 512x512 photograph (`to_model_image`: range checks, clipping) for every
    32x32 crop cost as much as the training step itself (measured: 9 ms per crop, 0.19 s per
    batch of 16 on a 2-core CPU; 6 ms per batch with the cache). Past `LIMIT`, the images
    not kept yet are converted on every access, as before."""

    #: Converted images kept per source, in bytes (the built-in photographs take about 30 MB).
    LIMIT = 256 * 2**20

    def __init__(self):
        self._items, self._bytes = {}, 0

    def get(self, index, convert):
        """The converted item `index` (an array or a tuple of arrays): ``convert()`` once."""
        item = self._items.get(index)
        if item is None:
            item = convert()
            arrays = item if isinstance(item, tuple) else (item,)
            size = sum(array.nbytes for array in arrays)
            if self._bytes + size <= self.LIMIT:
                for array in arrays:
                    array.flags.writeable = False  # shared by every later access
                self._items[index] = item
                self._bytes += size
        return item


class _ArrayImages(ImageSource):
    """Random access over in-memory images (an NHWC array or a list of HWC arrays), each
    converted once (`_ConvertedCache`)."""

    def __init__(self, images, channels, what="source"):
        self.images = images
        self.channels = channels
        self.what = what
        self._cache = _ConvertedCache()

    def __len__(self):
        return len(self.images)

    def __getitem__(self, index):
        return self._cache.get(
            index, lambda: to_model_image(self.images[index], channels=self.channels, what=f"{self.what}[{index}]")
        )

    def __repr__(self):
        return f"<{len(self)} in-memory images>"


class _ArrayPairs(ImageSource):
    """Random access over in-memory (degraded, clean) pairs, e.g. a materialized TFDS split."""

    paired = True

    def __init__(self, pairs, scale, channels, what="pair"):
        self.pairs = pairs
        self.scale = scale
        self.channels = channels
        self.what = what
        self._cache = _ConvertedCache()

    def __len__(self):
        return len(self.pairs)

    def __getitem__(self, index):
        return self._cache.get(index, lambda: self._convert(index))

    def _convert(self, index):
        degraded, clean = self.pairs[index]
        degraded = to_model_image(degraded, self.channels, what=f"{self.what} {index} input")
        clean = to_model_image(clean, self.channels, what=f"{self.what} {index} target")
        if not sizes_match(degraded.shape[:2], clean.shape[:2], self.scale):
            raise ValueError(
                f"{self.what} {index}: input {degraded.shape[:2]} and target {clean.shape[:2]} do not "
                f"match with scale {self.scale} (the input must be the target size / scale)."
            )
        return degraded, clean

    def describe(self, index):
        return f"{self.what} {index}"

    def clean_images(self):
        return _ArrayImages([p[1] for p in self.pairs], self.channels, self.what)

    def __repr__(self):
        return f"<{len(self)} in-memory pairs, scale={self.scale}>"


def apply_degradation(degradation, clean, seed):
    """``degradation(clean, seed=seed)`` with checks on what comes back."""
    degraded = degradation(clean, seed=seed)
    degraded = np.asarray(degraded)
    if degraded.shape != clean.shape:
        raise ValueError(
            f"The degradation {degradation!r} returned shape {degraded.shape} for a clean batch of "
            f"shape {clean.shape}; InDI needs same-size pairs (upsample low-resolution outputs back)."
        )
    return degraded.astype("float32", copy=False)
