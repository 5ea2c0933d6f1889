"""Time-conditional networks ``F([x_t, t]) -> x_hat``."""

from keras_indi.networks.mlp import TimeConditionalMLP
from keras_indi.networks.parameterization import (
    PARAMETERIZATIONS,
    estimate_degradation_std,
    output_scalings,
)
from keras_indi.networks.unet import TimeConditionalUNet
