"""A configurable time-conditional U-Net ``F([x_t, t]) -> x_hat``."""

import keras
from keras import ops

from keras_indi.api_export import keras_indi_export
from keras_indi.backend.compilation_cache import shared_initializer_programs
from keras_indi.layers.attention import SpatialSelfAttention
from keras_indi.layers.convolution import Conv2D
from keras_indi.layers.normalization import GroupNormalization
from keras_indi.layers.residual_block import TimeResidualBlock, group_count
from keras_indi.layers.sampling import Downsample, Upsample, crop_to, pad_to_multiple
from keras_indi.layers.time_embedding import SinusoidalTimeEmbedding
from keras_indi.networks.parameterization import (
    DEFAULT_PARAMETERIZATION,
    ParameterizedNetwork,
    check_parameterization,
)
from keras_indi.utils.precision import resolve_dtype
from keras_indi.utils.validation import check_number, check_positive_int
from keras_indi.utils.layer_inputs import keep_input_dtypes


@keras_indi_export("keras_indi.networks.TimeConditionalUNet")
class TimeConditionalUNet(ParameterizedNetwork):
    """U-Net conditioned on the InDI time, estimating the clean image from ``[x_t, t]``.

    ``len(widths)`` resolution levels; each level has `blocks_per_level` time-conditioned
    residual blocks (plus self-attention at the levels listed in `attention_levels`) and all
    but the last end with a stride-2 downsampling. The decoder mirrors it with skip
    connections. The time ``t`` (shape ``(batch,)``, float in [0, 1]) is embedded with
    sinusoids and an MLP and modulates every block (FiLM).

    Any image size works: the input is reflection-padded to a multiple of
    ``2 ** (len(widths) - 1)`` and the output cropped back, so a 37x31 image gives a 37x31
    output. Under a mixed-precision policy the convolutions compute in float16/bfloat16 while
    t is embedded in float32 and the outputs are float32.

    The output is ``c_skip(t) x_t + c_out(t) G(c_in(t) x_t, t)`` with ``G`` the U-Net proper
    (`parameterization`; see `keras_indi.networks.parameterization`): with a skip connection
    from ``x_t`` the estimate is close to ``x_t`` at small t from the first training step,
    which is where the last steps of every InDI restoration evaluate it.

    Args:
        widths: channels per level, e.g. ``(64, 128, 256)``.
        blocks_per_level: residual blocks per level in the encoder (decoder gets one more,
            as in DDPM).
        attention_levels: indices of the levels that get self-attention.
        in_channels: channels of ``x_t`` (plus any conditioning concatenated to it).
        out_channels: channels of the prediction; defaults to `in_channels`.
        dropout: dropout rate inside the residual blocks.
        time_embedding_dim: size of the time embedding; defaults to ``4 * widths[0]``.
        num_heads: heads of the self-attention layers.
        groups: maximum GroupNorm groups.
        dtype: the dtype policy, e.g. ``"mixed_bfloat16"``; ``"auto"`` picks
            ``"mixed_bfloat16"`` on GPUs with bfloat16 tensor cores and TPUs and ``"float32"``
            elsewhere (see `keras_indi.utils.precision.default_precision`; the saved config
            holds the policy chosen). None (default) uses the Keras global policy.
        parameterization: ``"residual"``, ``"preconditioned"`` or ``"x"`` (the network
            predicts the clean image directly). ``"auto"`` (default) is ``"residual"`` when
            ``in_channels == out_channels`` and ``"x"`` otherwise (e.g. a conditional DDPM's
            concatenated input); the saved config holds the choice. The default was chosen
            by equal-budget measurements on five tasks (RESULTS.md).
        data_std: standard deviation of clean images (0.5 suits images in [-1, 1]); used by
            ``"preconditioned"``.
        degradation_std: per-pixel standard deviation of ``y - x`` (plus the InDI noise) for
            the task, e.g. 0.5 for Gaussian noise of sigma 0.5, about 0.2 for 4x
            super-resolution, JPEG or motion blur, 1.15 for generation from pure noise; used by
            ``"preconditioned"`` (docs/parameterization.md).
            `keras_indi.networks.estimate_degradation_std` measures it on pairs; being off by
            a factor of 2 costs little.

    Example:

    >>> network = TimeConditionalUNet(widths=(8, 16), blocks_per_level=1, in_channels=3)
    >>> x_t = keras.ops.zeros((2, 37, 31, 3))
    >>> t = keras.ops.ones((2,))
    >>> tuple(network([x_t, t]).shape)
    (2, 37, 31, 3)
    """

    def __init__(
        self,
        widths=(64, 128, 256),
        blocks_per_level=2,
        attention_levels=(),
        in_channels=3,
        out_channels=None,
        dropout=0.0,
        time_embedding_dim=None,
        num_heads=4,
        groups=32,
        dtype=None,
        parameterization="auto",
        data_std=0.5,
        degradation_std=0.5,
        **kwargs,
    ):
        # "auto" becomes a concrete policy here, so get_config() saves what was used.
        super().__init__(dtype=resolve_dtype(dtype), **kwargs)
        # Inputs keep their dtype so that t is embedded in float32: a bfloat16 t near 1 is
        # rounded by up to 0.002 (2 radians in the sinusoids of 1000 t). Layers cast the images.
        keep_input_dtypes(self)  # t stays float32 under mixed precision
        if isinstance(widths, int) or not widths:
            raise ValueError(f"`widths` must be a non-empty list of ints. Received {widths!r}.")
        self.widths = tuple(check_positive_int(w, "widths") for w in widths)
        self.blocks_per_level = check_positive_int(blocks_per_level, "blocks_per_level")
        self.attention_levels = tuple(int(level) for level in attention_levels)
        for level in self.attention_levels:
            if not 0 <= level < len(self.widths):
                raise ValueError(
                    f"`attention_levels` must index `widths` (0..{len(self.widths) - 1}). "
                    f"Received {attention_levels!r}."
                )
        self.in_channels = check_positive_int(in_channels, "in_channels")
        self.out_channels = check_positive_int(
            in_channels if out_channels is None else out_channels, "out_channels"
        )
        self.dropout = check_number(dropout, "dropout", minimum=0.0, maximum=1.0)
        self.time_embedding_dim = check_positive_int(
            time_embedding_dim or 4 * self.widths[0], "time_embedding_dim", minimum=2
        )
        self.num_heads = check_positive_int(num_heads, "num_heads")
        self.groups = check_positive_int(groups, "groups")
        self.multiple = 2 ** (len(self.widths) - 1)
        if parameterization == "auto":
            parameterization = DEFAULT_PARAMETERIZATION if self.in_channels == self.out_channels else "x"
        self.parameterization, self.data_std, self.degradation_std = check_parameterization(
            parameterization, data_std, degradation_std, self.in_channels, self.out_channels, "TimeConditionalUNet"
        )

        policy = self.dtype_policy
        self.time_embedding = SinusoidalTimeEmbedding(self.widths[0], dtype=policy, name="time_embedding")
        self.time_dense_1 = keras.layers.Dense(self.time_embedding_dim, activation="silu", dtype=policy, name="time_dense_1")
        self.time_dense_2 = keras.layers.Dense(self.time_embedding_dim, dtype=policy, name="time_dense_2")
        self.stem = Conv2D(self.widths[0], 3, padding="same", dtype=policy, name="stem")

        def block(filters, name):
            return TimeResidualBlock(filters, dropout=self.dropout, groups=self.groups, dtype=policy, name=name)

        def attention(name):
            return SpatialSelfAttention(self.num_heads, groups=self.groups, dtype=policy, name=name)

        self.encoder = []  # list of (block, attention or None)
        self.downsamplers = []
        for level, width in enumerate(self.widths):
            for index in range(self.blocks_per_level):
                self.encoder.append(
                    (
                        block(width, f"down_{level}_block_{index}"),
                        attention(f"down_{level}_attention_{index}") if level in self.attention_levels else None,
                    )
                )
            if level < len(self.widths) - 1:
                self.downsamplers.append(Downsample(width, dtype=policy, name=f"down_{level}_sample"))
        deepest = self.widths[-1]
        self.middle_block_1 = block(deepest, "middle_block_1")
        self.middle_attention = attention("middle_attention") if self.attention_levels else None
        self.middle_block_2 = block(deepest, "middle_block_2")
        self.decoder = []
        self.upsamplers = []
        for level in reversed(range(len(self.widths))):
            width = self.widths[level]
            for index in range(self.blocks_per_level + 1):
                self.decoder.append(
                    (
                        block(width, f"up_{level}_block_{index}"),
                        attention(f"up_{level}_attention_{index}") if level in self.attention_levels else None,
                    )
                )
            if level > 0:
                self.upsamplers.append(Upsample(width, dtype=policy, name=f"up_{level}_sample"))
        self.head_norm = GroupNormalization(
            group_count(self.widths[0], self.groups), epsilon=1e-5, dtype=policy, name="head_norm"
        )
        # With a skip connection the head starts at zero, so F(x_t, t) = c_skip x_t at first.
        self.head = Conv2D(
            self.out_channels,
            3,
            padding="same",
            kernel_initializer="zeros" if self.parameterization != "x" else "glorot_uniform",
            dtype=policy,
            name="head",
        )

    def build(self, input_shape=None):
        # On JAX the random initial weights come from a few shared programs, not one compiled
        # program per weight shape (the same values; `shared_initializer_programs`).
        with shared_initializer_programs():
            self._build_layers()
        self.built = True

    def _build_layers(self):
        # Every weight depends on channel counts only, so each layer is built from shapes, in
        # the order `call` runs them: no forward pass, nothing traced or compiled (on JAX an
        # eager pass compiled ~150 small programs, seconds of every model load). The network
        # is complete before any data (and before a .keras file's weights) arrive.
        def image(channels):
            return (None, None, None, channels)

        embedding = (None, self.time_embedding_dim)
        self.time_dense_1.build((None, self.widths[0]))
        self.time_dense_2.build(embedding)
        self.stem.build(image(self.in_channels))
        channels = self.widths[0]
        skip_channels = [channels]
        blocks = iter(self.encoder)
        for level, width in enumerate(self.widths):
            for _ in range(self.blocks_per_level):
                residual_block, attention_layer = next(blocks)
                residual_block.build([image(channels), embedding])
                channels = width
                if attention_layer is not None:
                    attention_layer.build(image(channels))
                skip_channels.append(channels)
            if level < len(self.widths) - 1:
                self.downsamplers[level].build(image(channels))
                skip_channels.append(channels)
        self.middle_block_1.build([image(channels), embedding])
        if self.middle_attention is not None:
            self.middle_attention.build(image(channels))
        self.middle_block_2.build([image(channels), embedding])
        blocks = iter(self.decoder)
        for position, level in enumerate(reversed(range(len(self.widths)))):
            for _ in range(self.blocks_per_level + 1):
                residual_block, attention_layer = next(blocks)
                residual_block.build([image(channels + skip_channels.pop()), embedding])
                channels = self.widths[level]
                if attention_layer is not None:
                    attention_layer.build(image(channels))
            if level > 0:
                self.upsamplers[position].build(image(channels))
        self.head_norm.build(image(channels))
        self.head.build(image(channels))

    def _split_inputs(self, inputs):
        if not isinstance(inputs, (list, tuple)) or len(inputs) != 2:
            raise ValueError(
                "TimeConditionalUNet is called on `[x_t, t]`: images (batch, height, width, "
                f"channels) and times (batch,). Received {type(inputs).__name__}."
            )
        images, t = inputs
        if len(images.shape) != 4:
            raise ValueError(
                f"`x_t` must have rank 4 (batch, height, width, channels). Received shape {tuple(images.shape)}."
            )
        if images.shape[-1] is not None and images.shape[-1] != self.in_channels:
            raise ValueError(
                f"`x_t` has {images.shape[-1]} channels but the network was built with "
                f"in_channels={self.in_channels}."
            )
        if len(t.shape) not in (1, 2):
            raise ValueError(f"`t` must have shape (batch,). Received shape {tuple(t.shape)}.")
        return images, t

    def call(self, inputs, training=None):
        x_t, t = self._split_inputs(inputs)
        images, finish = self._parameterize(x_t, t)
        images, size = pad_to_multiple(images, self.multiple)
        embedding = self.time_dense_2(self.time_dense_1(self.time_embedding(t)))

        hidden = self.stem(images)
        skips = [hidden]
        block_index = 0
        for level in range(len(self.widths)):
            for _ in range(self.blocks_per_level):
                residual_block, attention_layer = self.encoder[block_index]
                block_index += 1
                hidden = residual_block([hidden, embedding], training=training)
                if attention_layer is not None:
                    hidden = attention_layer(hidden)
                skips.append(hidden)
            if level < len(self.widths) - 1:
                hidden = self.downsamplers[level](hidden)
                skips.append(hidden)

        hidden = self.middle_block_1([hidden, embedding], training=training)
        if self.middle_attention is not None:
            hidden = self.middle_attention(hidden)
        hidden = self.middle_block_2([hidden, embedding], training=training)

        block_index = 0
        for position, level in enumerate(reversed(range(len(self.widths)))):
            for _ in range(self.blocks_per_level + 1):
                residual_block, attention_layer = self.decoder[block_index]
                block_index += 1
                hidden = ops.concatenate([hidden, skips.pop()], axis=-1)
                hidden = residual_block([hidden, embedding], training=training)
                if attention_layer is not None:
                    hidden = attention_layer(hidden)
            if level > 0:
                hidden = self.upsamplers[position](hidden)

        return finish(crop_to(self.head(self.head_norm.normalize(hidden, silu=True)), size))

    @property
    def input_layout(self):
        """``(rank, channels, description)`` of the images this network takes (for input checks)."""
        return 4, self.in_channels, "(batch, height, width, channels)"

    def compute_output_shape(self, input_shape):
        image_shape = input_shape[0]
        return tuple(image_shape[:-1]) + (self.out_channels,)

    def _architecture_config(self):
        return {
            "widths": list(self.widths),
            "blocks_per_level": self.blocks_per_level,
            "attention_levels": list(self.attention_levels),
            "in_channels": self.in_channels,
            "out_channels": self.out_channels,
            "dropout": self.dropout,
            "time_embedding_dim": self.time_embedding_dim,
            "num_heads": self.num_heads,
            "groups": self.groups,
        }
