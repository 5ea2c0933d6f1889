"""A 2-D convolution that runs channels-last without layout copies on torch."""

import keras

from keras_indi.api_export import keras_indi_export
from keras_indi.backend.channels_last import conv2d, native_channels_last_kernels


@keras_indi_export("keras_indi.layers.Conv2D")
class Conv2D(keras.layers.Conv2D):
    """`keras.layers.Conv2D`, computed without layout copies on the torch backend.

    Same arguments, weights, configuration and result as Keras' layer. On torch, Keras copies
    a channels-last input twice per convolution (to channels-first, then to PyTorch's
    channels-last memory format) and adds the bias separately; this layer hands the channels-last
    tensor to oneDNN as it is, with the bias inside the convolution
    (`keras_indi.backend.channels_last`). One evaluation of the preset U-Net on a 2-core CPU:
    see BENCHMARKS.md. Other backends, grouped or dilated convolutions, ``channels_first``,
    LoRA and quantized layers run Keras' own computation.

    Example:

    >>> layer = Conv2D(4, 3, strides=2, padding="same")
    >>> tuple(layer(keras.ops.ones((1, 37, 31, 3))).shape)
    (1, 19, 16, 4)
    """

    def _native(self, inputs):
        return (
            native_channels_last_kernels()
            and len(inputs.shape) == 4
            and self.data_format == "channels_last"
            and self.groups == 1
            and tuple(self.dilation_rate) == (1, 1)
            and not self.lora_enabled
            and not getattr(self, "quantization_mode", None)
        )

    def call(self, inputs):
        if not self._native(inputs):
            return super().call(inputs)
        kernel = keras.ops.convert_to_tensor(self.kernel)
        bias = keras.ops.convert_to_tensor(self.bias) if self.use_bias else None
        outputs = conv2d(inputs, kernel, bias, self.strides, self.padding)
        if self.activation is not None:
            outputs = self.activation(outputs)
        return outputs
