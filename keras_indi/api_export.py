"""One decorator that exports a public symbol and registers it for Keras serialization.

`import keras_indi` is lazy, so a class is registered with Keras only once its module is
imported. So that ``keras.saving.load_model`` still finds every keras-indi class a ``.keras``
file names, whatever was imported, this module puts a placeholder under each registered name
(`SERIALIZABLE_CLASSES`) in Keras' public registry (``keras.saving.get_custom_objects()``): its
``from_config`` imports the real class's module, which registers the real class in its place,
and builds the object with it. Only public Keras API is used. The placeholders are installed
when this module is imported with Keras loaded already (by every module that defines a Keras
class, by ``import keras_indi``), and otherwise right after Keras is imported
(`keras_indi._lazy.run_after_import`, hooked by ``import keras_indi``).

This module does not import Keras itself, so that modules which only export functions (e.g.
`keras_indi.datasets.image_io`) stay importable without it: the command line's fast restore
path (`keras_indi.backend.restore_programs`) reads images without importing Keras.
"""

import importlib
import pkgutil
import sys

PACKAGE = "keras_indi"

# Every Keras-serializable class of keras-indi and its module (tests/test_startup.py checks the
# table against the classes registered once every module is imported).
SERIALIZABLE_CLASSES = {
    "AdditiveGaussianNoise": "keras_indi.degradations.noise",
    "BicubicDownsample": "keras_indi.degradations.resize",
    "BrownianNoise": "keras_indi.schedules",
    "CallableTime": "keras_indi.schedules",
    "Compose": "keras_indi.degradations.compose",
    "ConditionalDDPM": "keras_indi.models.ddpm",
    "ConstantNoise": "keras_indi.schedules",
    "Conv2D": "keras_indi.layers.convolution",
    "DDPMSchedule": "keras_indi.ddpm_schedule",
    "DeadLeaves": "keras_indi.datasets.sources",
    "DefocusBlur": "keras_indi.degradations.blur",
    "Degradation": "keras_indi.degradations.base",
    "DegradationLayer": "keras_indi.degradations.layer",
    "Downsample": "keras_indi.layers.sampling",
    "FID": "keras_indi.metrics.fid",
    "FixedTime": "keras_indi.schedules",
    "FourierTimeEmbedding": "keras_indi.layers.time_embedding",
    "GaussianBlur": "keras_indi.degradations.blur",
    "GroupNormalization": "keras_indi.layers.normalization",
    "InDIForwardProcess": "keras_indi.layers.forward_process",
    "InDIModel": "keras_indi.models.indi_model",
    "JPEGCompression": "keras_indi.degradations.jpeg",
    "KID": "keras_indi.metrics.fid",
    "LPIPS": "keras_indi.metrics.lpips",
    "MassAtOneTime": "keras_indi.schedules",
    "MotionBlur": "keras_indi.degradations.motion",
    "NoiseSchedule": "keras_indi.schedules",
    "PSNR": "keras_indi.metrics.image_quality",
    "PowerTime": "keras_indi.schedules",
    "PureNoise": "keras_indi.degradations.noise",
    "SSIM": "keras_indi.metrics.image_quality",
    "SinusoidalTimeEmbedding": "keras_indi.layers.time_embedding",
    "SpatialSelfAttention": "keras_indi.layers.attention",
    "TimeConditionalMLP": "keras_indi.networks.mlp",
    "TimeConditionalUNet": "keras_indi.networks.unet",
    "TimeDistribution": "keras_indi.schedules",
    "TimeResidualBlock": "keras_indi.layers.residual_block",
    "UniformTime": "keras_indi.schedules",
    "Upsample": "keras_indi.layers.sampling",
}
# Modules that are applications or entry points, not library code: never imported by
# `register_serializables`.
_NOT_LIBRARY = ("keras_indi.__main__", "keras_indi.apps")


def keras_indi_export(path):
    """Mark `symbol` as public API under `path` and register it with Keras.

    Classes are registered as ``keras_indi>ClassName`` so that ``.keras`` files
    written by this library load with ``keras.saving.load_model`` without
    ``custom_objects``.

    Example:

    >>> import keras
    >>> @keras_indi_export("keras_indi.layers.MyLayer")
    ... class MyLayer(keras.layers.Layer):
    ...     pass
    """
    if isinstance(path, str):
        path = (path,)

    def decorator(symbol):
        symbol._keras_indi_export_paths = tuple(path)
        if isinstance(symbol, type) and hasattr(symbol, "get_config"):
            import keras

            keras.saving.register_keras_serializable(package=PACKAGE)(symbol)
        return symbol

    return decorator


def register_serializables():
    """Import every library module of keras-indi, which registers all its Keras classes.

    Rarely needed: ``keras.saving.load_model`` imports what a ``.keras`` file needs by itself
    (see the module docstring). Useful before ``keras.saving.get_registered_object`` or
    before pickling registered names by hand.
    """
    package = importlib.import_module(PACKAGE)
    for info in pkgutil.walk_packages(package.__path__, PACKAGE + "."):
        if not info.name.startswith(_NOT_LIBRARY):
            try:
                importlib.import_module(info.name)
            except ImportError:  # an optional dependency of that module is missing
                pass


class _Placeholder:
    """Stands for a keras-indi class in Keras' registry until the class's module is imported."""

    _registered_name = _module = None

    @classmethod
    def from_config(cls, config):
        import keras

        registry = keras.saving.get_custom_objects()
        importlib.import_module(cls._module)  # registers the real class in place of this one
        real = registry.get(cls._registered_name)
        if real is None or issubclass(real, _Placeholder):
            register_serializables()  # the class moved: import everything
            real = registry.get(cls._registered_name)
        if real is None or issubclass(real, _Placeholder):
            raise TypeError(f"keras-indi defines no class registered as {cls._registered_name!r}.")
        return real.from_config(config)

    def get_config(self):  # pragma: no cover - never instantiated
        raise TypeError(f"{type(self).__name__} is a placeholder")


def install_placeholders():
    """Put a `_Placeholder` under every name of `SERIALIZABLE_CLASSES` Keras does not know yet."""
    import keras

    registry = keras.saving.get_custom_objects()
    for name, module in SERIALIZABLE_CLASSES.items():
        registered_name = f"{PACKAGE}>{name}"
        if registered_name not in registry:
            registry[registered_name] = type(
                name, (_Placeholder,), {"_registered_name": registered_name, "_module": module, "__module__": module}
            )


if "keras" in sys.modules:  # else `keras_indi._hook_keras_saving` installs them after Keras' import
    install_placeholders()
