"""Time-conditional networks ``F([x_t, t]) -> x_hat``."""

from keras_indi.networks.mlp import TimeConditionalMLP
from keras_indi.networks.unet import TimeConditionalUNet
