"""Degradations: seeded, serializable maps from clean to degraded images.

NumPy forms (``degradation(images)``) serve data pipelines; `Degradation.as_layer` gives a
Keras layer for those expressible with ``keras.ops``. See `get_task_degradation` for the
default degradation of each InDI task.
"""

from keras_indi._lazy import attach

_NAMES = {
    "Degradation": "base",
    "DefocusBlur": "blur",
    "GaussianBlur": "blur",
    "convolve": "blur",
    "disk_kernel": "blur",
    "gaussian_kernel": "blur",
    "Compose": "compose",
    "JPEGCompression": "jpeg",
    "jpeg_compress": "jpeg",
    "DegradationLayer": "layer",
    "MotionBlur": "motion",
    "motion_blur_kernels": "motion",
    "AdditiveGaussianNoise": "noise",
    "PureNoise": "noise",
    "BicubicDownsample": "resize",
    "SuperResolution": "resize",
    "imresize": "resize",
    "imresize_matrix": "resize",
    "TASKS": "tasks",
    "get_task_degradation": "tasks",
}
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
__getattr__, __dir__ = attach(__name__, _NAMES)
del attach
