"""Samplers: iterative restoration with a trained network."""

from keras_indi._lazy import attach

_NAMES = {
    "DDPMSampler": "ddpm_sampler",
    "InDISampler": "indi_sampler",
    "SamplerOutput": "indi_sampler",
    "SamplerStep": "indi_sampler",
    "indi_step": "indi_sampler",
    "make_time_grid": "indi_sampler",
    "validate_time_grid": "indi_sampler",
    "TiledInDISampler": "tiling",
    "restore_tiled": "tiling",
    "choose_tiling": "tiling",
}
__all__ = list(_NAMES)
__getattr__, __dir__ = attach(__name__, _NAMES)
del attach
