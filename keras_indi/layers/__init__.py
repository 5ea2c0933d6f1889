"""Reusable Keras layers for time-conditional restoration networks."""

from keras_indi._lazy import attach

_NAMES = {
    "SpatialSelfAttention": "attention",
    "Conv2D": "convolution",
    "InDIForwardProcess": "forward_process",
    "GroupNormalization": "normalization",
    "TimeResidualBlock": "residual_block",
    "Downsample": "sampling",
    "Upsample": "sampling",
    "FourierTimeEmbedding": "time_embedding",
    "SinusoidalTimeEmbedding": "time_embedding",
}
__all__ = list(_NAMES)
__getattr__, __dir__ = attach(__name__, _NAMES)
del attach
