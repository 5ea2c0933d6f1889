"""Samplers: iterative restoration with a trained network."""

from keras_indi.samplers.ddpm_sampler import DDPMSampler
from keras_indi.samplers.indi_sampler import (
    InDISampler,
    SamplerOutput,
    SamplerStep,
    indi_step,
    make_time_grid,
    validate_time_grid,
)
from keras_indi.samplers.tiling import TiledInDISampler, restore_tiled
