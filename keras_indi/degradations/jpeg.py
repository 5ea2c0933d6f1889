"""JPEG compression artifacts: Pillow in the NumPy path, TensorFlow in tf.data."""

import io

import numpy as np
from PIL import Image

from keras_indi.api_export import keras_indi_export
from keras_indi.degradations.base import Degradation
from keras_indi.degradations.base import check_value_or_range
from keras_indi.degradations.base import sample_value

#: Largest difference (in [-1, 1] units) allowed between `apply_tf` and the Pillow path:
#: one 8-bit level. With TensorFlow 2.21 and Pillow 12 (both libjpeg-turbo, baseline, 4:2:0
#: chroma subsampling, accurate integer DCT) they agree exactly.
TF_TOLERANCE = 2.0 / 255.0


def to_uint8(images):
    """``[-1, 1]`` floats -> ``uint8`` with rounding to nearest and clipping."""
    return np.clip(np.rint((np.asarray(images, "float32") + 1.0) * 127.5), 0, 255).astype("uint8")


def from_uint8(images):
    """``uint8`` -> ``[-1, 1]`` float32."""
    return np.asarray(images, "float32") / 127.5 - 1.0


def _check_channels(channels, name):
    if channels not in (1, 3):
        raise ValueError(
            f"{name} encodes grayscale (1 channel) or RGB (3 channels) images. Received {channels} channels."
        )


@keras_indi_export("keras_indi.degradations.jpeg_compress")
def jpeg_compress(images, quality):
    """Encode and decode ``[-1, 1]`` images as JPEG with Pillow, one quality per image.

    Pixels are rounded to 8 bits, encoded as baseline JPEG at `quality` (Pillow defaults:
    4:2:0 chroma subsampling for RGB), decoded, and mapped back to ``[-1, 1]``.

    Example:

    >>> compressed = jpeg_compress(np.zeros((2, 37, 31, 3), "float32"), quality=10)
    >>> compressed.shape, compressed.dtype
    ((2, 37, 31, 3), dtype('float32'))

    Args:
        images: ``(height, width, channels)`` or ``(batch, height, width, channels)`` floats,
            1 or 3 channels.
        quality: int in [1, 100], or one int per image.
    """
    images = np.asarray(images)
    single = images.ndim == 3
    batch = images[None] if single else images
    if batch.ndim != 4:
        raise ValueError(
            f"`images` must be (height, width, channels) or a batch. Received shape {images.shape}."
        )
    _check_channels(batch.shape[-1], "jpeg_compress")
    quality = np.broadcast_to(np.asarray(quality), (batch.shape[0],))
    pixels = to_uint8(batch)
    out = np.empty_like(pixels)
    for index, (image, q) in enumerate(zip(pixels, quality, strict=True)):
        q = int(q)
        if not 1 <= q <= 100:
            raise ValueError(f"JPEG `quality` must be in [1, 100]. Received {q}.")
        pil = Image.fromarray(image[..., 0] if image.shape[-1] == 1 else image)
        buffer = io.BytesIO()
        pil.save(buffer, format="JPEG", quality=q)
        buffer.seek(0)
        with Image.open(buffer) as decoded:
            out[index] = np.asarray(decoded).reshape(image.shape)
    result = from_uint8(out)
    return result[0] if single else result


@keras_indi_export("keras_indi.degradations.JPEGCompression")
class JPEGCompression(Degradation):
    """JPEG compression artifacts, with a quality drawn per image.

    The NumPy path (``__call__``) uses Pillow (`jpeg_compress`). `apply_tf` does the same with
    TensorFlow ops for ``tf.data`` pipelines; it matches Pillow within `TF_TOLERANCE` (one
    8-bit level; exactly equal with the tested versions). There is no Keras-layer form.

    Example:

    >>> jpeg = JPEGCompression(quality_range=(10, 30), seed=0)
    >>> jpeg(np.zeros((2, 32, 32, 3), "float32")).shape
    (2, 32, 32, 3)

    In ``tf.data`` (``seed`` is a stateless-random seed pair, e.g. from the element index):

    >>> dataset = dataset.map(lambda x: (jpeg.apply_tf(x, seed=(0, 1)), x))  # doctest: +SKIP

    Args:
        quality: fixed JPEG quality in [1, 100], or None to draw one per image uniformly (both
            ends included) in `quality_range`.
        quality_range: ``(low, high)`` integers in [1, 100].
        seed: int or None, see `Degradation`.
    """

    layer_unsupported_reason = "JPEG encoding is not expressible with keras.ops"

    def __init__(self, quality=None, quality_range=(10, 30), seed=None):
        super().__init__(seed=seed)
        self.quality, self.quality_range = check_value_or_range(
            quality, quality_range, "quality", minimum=1, maximum=100, integer=True
        )

    def sample_parameters(self, batch_size, rng):
        return {"quality": sample_value(self.quality, self.quality_range, batch_size, rng, integer=True)}

    def apply(self, clean, parameters):
        _check_channels(clean.shape[-1], type(self).__name__)
        return jpeg_compress(clean, parameters["quality"])

    def apply_tf(self, clean, quality=None, seed=None):
        """TensorFlow version for ``tf.data``: same rounding, encoder and decoder settings.

        Args:
            clean: float tensor ``(height, width, channels)`` or ``(batch, height, width,
                channels)`` in ``[-1, 1]``, 1 or 3 channels.
            quality: int scalar or per-image ``(batch,)`` tensor; defaults to the fixed
                `quality`, else is drawn in `quality_range` with
                ``tf.random.stateless_uniform`` from `seed`.
            seed: shape ``(2,)`` int seed, required when the quality is drawn.

        Returns:
            float32 tensor of the shape of `clean`.
        """
        import tensorflow as tf

        clean = tf.convert_to_tensor(clean)
        if not clean.dtype.is_floating:
            raise ValueError(
                f"JPEGCompression.apply_tf expects float images in [-1, 1]; received dtype "
                f"{clean.dtype.name}. Convert with `tf.cast(images, 'float32') / 127.5 - 1`."
            )
        rank = clean.shape.rank
        if rank not in (3, 4):
            raise ValueError(
                "JPEGCompression.apply_tf expects (height, width, channels) or (batch, height, "
                f"width, channels). Received shape {clean.shape}."
            )
        if clean.shape[-1] is not None:
            _check_channels(clean.shape[-1], "JPEGCompression.apply_tf")
        single = rank == 3
        batch = clean[None] if single else clean
        batch_size = tf.shape(batch)[0]
        if quality is None:
            if self.quality is not None:
                quality = self.quality
            else:
                if seed is None:
                    raise ValueError(
                        "JPEGCompression.apply_tf draws the quality from `quality_range` and needs "
                        "a stateless `seed` (a pair of ints), or pass `quality`."
                    )
                low, high = self.quality_range
                quality = tf.random.stateless_uniform(
                    [batch_size], seed=seed, minval=low, maxval=high + 1, dtype=tf.int32
                )
        quality = tf.broadcast_to(tf.cast(quality, tf.int32), [batch_size])
        pixels = tf.cast(
            tf.clip_by_value(tf.round((tf.cast(batch, tf.float32) + 1.0) * 127.5), 0.0, 255.0), tf.uint8
        )

        def compress(element):
            image, q = element
            return tf.image.adjust_jpeg_quality(image, q, dct_method="INTEGER_ACCURATE")

        decoded = tf.map_fn(compress, (pixels, quality), fn_output_signature=tf.uint8)
        decoded = tf.ensure_shape(decoded, batch.shape)
        result = tf.cast(decoded, tf.float32) / 127.5 - 1.0
        return result[0] if single else result

    def get_config(self):
        return {"quality": self.quality, "quality_range": self.quality_range, "seed": self.seed}
