"""keras-indi: InDI (Inversion by Direct Iteration) image restoration for Keras 3.

Works on the TensorFlow, JAX and torch backends; TensorFlow is optional at import.

>>> import keras_indi
>>> network = keras_indi.networks.TimeConditionalUNet(widths=(32, 64), blocks_per_level=1)
>>> model = keras_indi.InDIModel(network, seed=0)
"""

from keras_indi import backend, callbacks, layers, networks, schedules
from keras_indi import datasets, degradations, evaluation, metrics
from keras_indi.evaluation import TradeoffResult, evaluate_tradeoff
from keras_indi.models.ddpm import ConditionalDDPM, DDPMSchedule
from keras_indi.models.indi_model import InDIModel
from keras_indi.presets import list_presets, load_preset
from keras_indi.samplers import DDPMSampler, InDISampler, SamplerOutput, SamplerStep, indi_step, make_time_grid
from keras_indi.version import __version__
