"""Default degradation of each InDI task of the paper."""

from keras_indi.api_export import keras_indi_export
from keras_indi.degradations.blur import DefocusBlur
from keras_indi.degradations.jpeg import JPEGCompression
from keras_indi.degradations.motion import MotionBlur
from keras_indi.degradations.noise import AdditiveGaussianNoise
from keras_indi.degradations.noise import PureNoise
from keras_indi.degradations.resize import BicubicDownsample

#: Task names understood by `get_task_degradation`.
TASKS = (
    "motion_deblurring",
    "defocus_deblurring",
    "super_resolution",
    "jpeg",
    "denoising",
    "generation",
)

_FACTORIES = {
    "motion_deblurring": lambda seed, kw: MotionBlur(**{"kernel_size": 31, **kw}, seed=seed),
    "defocus_deblurring": lambda seed, kw: DefocusBlur(**{"radius_range": (2.0, 6.0), **kw}, seed=seed),
    "super_resolution": lambda seed, kw: BicubicDownsample(**{"factor": 4, **kw}, seed=seed),
    "jpeg": lambda seed, kw: JPEGCompression(**{"quality_range": (10, 30), **kw}, seed=seed),
    "denoising": lambda seed, kw: AdditiveGaussianNoise(**{"sigma_range": (0.04, 0.4), **kw}, seed=seed),
    "generation": lambda seed, kw: PureNoise(seed=seed, **kw),
}


@keras_indi_export("keras_indi.degradations.get_task_degradation")
def get_task_degradation(task, seed=None, **overrides):
    """The default degradation for an InDI task.

    ================== =========================================================
    task               degradation
    ================== =========================================================
    motion_deblurring  ``MotionBlur(kernel_size=31)`` (camera-shake trajectories)
    defocus_deblurring ``DefocusBlur(radius_range=(2, 6))``
    super_resolution   ``BicubicDownsample(factor=4)`` (MATLAB bicubic, 4x)
    jpeg               ``JPEGCompression(quality_range=(10, 30))``
    denoising          ``AdditiveGaussianNoise(sigma_range=(0.04, 0.4))`` (about 5 to 51 in [0, 255])
    generation         ``PureNoise()``
    ================== =========================================================

    Example:

    >>> get_task_degradation("super_resolution")
    BicubicDownsample(factor=4, clip=True, seed=None)
    >>> get_task_degradation("jpeg", quality=10, seed=0)
    JPEGCompression(quality=10, quality_range=(10, 30), seed=0)

    Args:
        task: one of `TASKS` (case and "-"/" " vs "_" are ignored).
        seed: int or None, passed to the degradation.
        **overrides: constructor arguments replacing the defaults.
    """
    if not isinstance(task, str):
        raise ValueError(f"`task` must be a string, one of {list(TASKS)}. Received task={task!r}.")
    key = task.strip().lower().replace("-", "_").replace(" ", "_")
    if key not in _FACTORIES:
        raise ValueError(f"Unknown task {task!r}. Valid tasks: {', '.join(TASKS)}.")
    return _FACTORIES[key](seed, overrides)
