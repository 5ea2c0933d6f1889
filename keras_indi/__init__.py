"""keras-indi: InDI (Inversion by Direct Iteration) image restoration for Keras 3.

Works on the TensorFlow, JAX and torch backends; TensorFlow is optional at import.

>>> import keras_indi
>>> network = keras_indi.networks.TimeConditionalUNet(widths=(32, 64), blocks_per_level=1)
>>> model = keras_indi.InDIModel(network, seed=0)

`import keras_indi` is lazy (`keras_indi._lazy`): it imports neither Keras nor TensorFlow;
each public name below is imported from its module on first use.
"""

import importlib as _importlib

from keras_indi._lazy import attach as _attach
from keras_indi._lazy import run_after_import as _run_after_import
from keras_indi.version import __version__

_SUBMODULES = ("backend", "callbacks", "datasets", "degradations", "evaluation", "layers", "metrics",
               "models", "networks", "presets", "samplers", "schedules")
_NAMES = {
    "TradeoffResult": "evaluation",
    "evaluate_tradeoff": "evaluation",
    "ConditionalDDPM": "models.ddpm",
    "DDPMSchedule": "ddpm_schedule",
    "InDIModel": "models.indi_model",
    "list_presets": "presets",
    "load_preset": "presets",
    "DDPMSampler": "samplers",
    "InDISampler": "samplers",
    "SamplerOutput": "samplers",
    "SamplerStep": "samplers",
    "indi_step": "samplers",
    "make_time_grid": "samplers",
    "register_serializables": "api_export",
    "fit_side_by_side": "utils.side_by_side",
    "set_random_seed": "backend.seeding",
}
__all__ = sorted(_NAMES) + list(_SUBMODULES)
__getattr__, __dir__ = _attach(__name__, _NAMES, _SUBMODULES)


def _hook_keras_saving():
    """Let `keras.saving.load_model` find keras-indi's classes (see `keras_indi._lazy`); on
    JAX, take convolutions out of YNNPACK on the CPU (`keras_indi.backend.xla_flags`)."""
    _importlib.import_module("keras_indi.backend.xla_flags").configure_for_keras_backend()
    _importlib.import_module("keras_indi.api_export").install_placeholders()


_run_after_import("keras", _hook_keras_saving)
