"""Resolution changes inside the U-Net, and the pad / crop pair that lets it take any size."""

import keras
from keras import ops

from keras_indi.api_export import keras_indi_export
from keras_indi.backend.channels_last import native_channels_last_kernels, upsample_nearest
from keras_indi.layers.convolution import Conv2D
from keras_indi.utils.validation import check_positive_int


@keras_indi_export("keras_indi.layers.Downsample")
class Downsample(keras.layers.Layer):
    """Halve the resolution with a 3x3 convolution of stride 2.

    Example:

    >>> tuple(Downsample(8)(keras.ops.zeros((1, 16, 12, 4))).shape)
    (1, 8, 6, 8)
    """

    def __init__(self, filters, **kwargs):
        super().__init__(**kwargs)
        self.filters = check_positive_int(filters, "filters")
        self.conv = Conv2D(
            self.filters, 3, strides=2, padding="same", dtype=self.dtype_policy, name="conv"
        )

    def build(self, input_shape):
        self.conv.build(input_shape)

    def call(self, inputs):
        return self.conv(inputs)

    def compute_output_shape(self, input_shape):
        return self.conv.compute_output_shape(input_shape)

    def get_config(self):
        config = super().get_config()
        config.update({"filters": self.filters})
        return config


@keras_indi_export("keras_indi.layers.Upsample")
class Upsample(keras.layers.Layer):
    """Double the resolution: nearest-neighbour upsampling then a 3x3 convolution
    (avoids the checkerboard artifacts of transposed convolutions). On torch the upsampling
    is one channels-last ``interpolate`` (`keras_indi.backend.channels_last`), not Keras' two
    ``repeat`` copies.

    Example:

    >>> tuple(Upsample(8)(keras.ops.zeros((1, 8, 6, 4))).shape)
    (1, 16, 12, 8)
    """

    def __init__(self, filters, **kwargs):
        super().__init__(**kwargs)
        self.filters = check_positive_int(filters, "filters")
        self.upsampling = keras.layers.UpSampling2D(2, interpolation="nearest", dtype=self.dtype_policy)
        self.conv = Conv2D(self.filters, 3, padding="same", dtype=self.dtype_policy, name="conv")

    def build(self, input_shape):
        upsampled = self.upsampling.compute_output_shape(input_shape)
        self.conv.build(upsampled)

    def call(self, inputs):
        if native_channels_last_kernels():
            return self.conv(upsample_nearest(inputs, 2))
        return self.conv(self.upsampling(inputs))

    def compute_output_shape(self, input_shape):
        return self.conv.compute_output_shape(self.upsampling.compute_output_shape(input_shape))

    def get_config(self):
        config = super().get_config()
        config.update({"filters": self.filters})
        return config


def pad_to_multiple(images, multiple, mode="reflect"):
    """Pad the spatial size of NHWC `images` up to a multiple of `multiple`.

    Returns the padded images and the original (height, width), to crop back with
    `crop_to`. Reflection padding avoids a dark frame that the network would have to learn.
    Works with static and dynamic (traced) shapes.
    """
    shape = ops.shape(images)
    height, width = shape[1], shape[2]
    if isinstance(height, int) and isinstance(width, int):
        pad_height, pad_width = (-height) % multiple, (-width) % multiple
        if pad_height == 0 and pad_width == 0:
            return images, (height, width)
        if mode == "reflect" and (pad_height >= height or pad_width >= width):
            mode = "symmetric" if pad_height <= height and pad_width <= width else "edge"
    else:  # dynamic shapes under tf.function
        pad_height = (multiple - height % multiple) % multiple
        pad_width = (multiple - width % multiple) % multiple
        mode = "symmetric"  # valid for any padding up to the image size
    padded = ops.pad(images, [[0, 0], [0, pad_height], [0, pad_width], [0, 0]], mode=mode)
    return padded, (height, width)


def crop_to(images, size):
    """Crop NHWC `images` back to ``size = (height, width)`` (the top-left corner)."""
    height, width = size
    return images[:, :height, :width, :]
