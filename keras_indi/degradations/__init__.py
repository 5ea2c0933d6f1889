"""Degradations: seeded, serializable maps from clean to degraded images.

NumPy forms (``degradation(images)``) serve data pipelines; `Degradation.as_layer` gives a
Keras layer for those expressible with ``keras.ops``. See `get_task_degradation` for the
default degradation of each InDI task.
"""

from keras_indi.degradations.base import Degradation
from keras_indi.degradations.blur import DefocusBlur
from keras_indi.degradations.blur import GaussianBlur
from keras_indi.degradations.blur import convolve
from keras_indi.degradations.blur import disk_kernel
from keras_indi.degradations.blur import gaussian_kernel
from keras_indi.degradations.compose import Compose
from keras_indi.degradations.jpeg import JPEGCompression
from keras_indi.degradations.jpeg import jpeg_compress
from keras_indi.degradations.layer import DegradationLayer
from keras_indi.degradations.motion import MotionBlur
from keras_indi.degradations.motion import motion_blur_kernels
from keras_indi.degradations.noise import AdditiveGaussianNoise
from keras_indi.degradations.noise import PureNoise
from keras_indi.degradations.resize import BicubicDownsample
from keras_indi.degradations.resize import SuperResolution
from keras_indi.degradations.resize import imresize
from keras_indi.degradations.resize import imresize_matrix
from keras_indi.degradations.tasks import TASKS
from keras_indi.degradations.tasks import get_task_degradation

__all__ = [
    "AdditiveGaussianNoise",
    "BicubicDownsample",
    "Compose",
    "DefocusBlur",
    "Degradation",
    "DegradationLayer",
    "GaussianBlur",
    "JPEGCompression",
    "MotionBlur",
    "PureNoise",
    "SuperResolution",
    "TASKS",
    "convolve",
    "disk_kernel",
    "gaussian_kernel",
    "get_task_degradation",
    "imresize",
    "imresize_matrix",
    "jpeg_compress",
    "motion_blur_kernels",
]
