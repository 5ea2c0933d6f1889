"""The only backend-specific code of keras-indi: stateless noise and compiled loops.

Everything else is written with `keras.ops` and `keras.random`.
"""

from keras_indi.backend.compile import compile_sampler_function, match_static_shape
from keras_indi.backend.random import step_noise
