"""The only backend-specific code of keras-indi: stateless noise and compiled loops.

Everything else is written with `keras.ops` and `keras.random`.
"""

from keras_indi._lazy import attach

_NAMES = {
    "compile_sampler_function": "compile",
    "match_static_shape": "compile",
    "step_noise": "random",
    "enable_compilation_cache": "compilation_cache",
    "loading_weights": "compilation_cache",
}
__all__ = list(_NAMES)
__getattr__, __dir__ = attach(__name__, _NAMES)
del attach
