"""One decorator that exports a public symbol and registers it for Keras serialization."""

import keras

PACKAGE = "keras_indi"


def keras_indi_export(path):
    """Mark `symbol` as public API under `path` and register it with Keras.

    Classes are registered as ``keras_indi>ClassName`` so that ``.keras`` files
    written by this library load with ``keras.saving.load_model`` without
    ``custom_objects``.

    Example:

    >>> @keras_indi_export("keras_indi.layers.MyLayer")
    ... class MyLayer(keras.layers.Layer):
    ...     pass
    """
    if isinstance(path, str):
        path = (path,)

    def decorator(symbol):
        symbol._keras_indi_export_paths = tuple(path)
        if isinstance(symbol, type) and hasattr(symbol, "get_config"):
            keras.saving.register_keras_serializable(package=PACKAGE)(symbol)
        return symbol

    return decorator
