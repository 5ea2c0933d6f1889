"""Trained presets: small InDI models that ship with the package and load offline.

Each preset is a `keras_indi.InDIModel` trained by ``scripts/train_presets.py`` on the built-in
data only (scikit-image photographs and dead leaves; `recipes.TRAINING_IMAGES`), from a seed,
on a 2-core CPU. Every restoration preset has a twin ``<name>_regression``: the same network,
data and budget trained as a one-step regressor (p(t) = "regression"), so that every comparison
between InDI and regression is at equal cost.

>>> import keras_indi
>>> sorted(keras_indi.list_presets())[:2]  # doctest: +SKIP
['denoising', 'denoising_regression']
>>> model = keras_indi.InDIModel.from_preset("denoising")  # doctest: +SKIP
>>> restored = model.restore(noisy_photo[None], num_steps=20, seed=0)  # doctest: +SKIP
"""

import json
import os

from keras_indi.api_export import keras_indi_export

PRESETS_DIRECTORY = os.path.join(os.path.dirname(os.path.abspath(__file__)), "weights")
METADATA_FILE = "presets.json"


def _read_metadata(directory=None):
    path = os.path.join(directory or PRESETS_DIRECTORY, METADATA_FILE)
    if not os.path.exists(path):
        return {}
    try:
        with open(path) as file:
            return json.load(file)
    except (OSError, ValueError) as error:
        raise ValueError(f"The preset metadata file {path} cannot be read ({error}). Reinstall keras-indi.") from error


@keras_indi_export("keras_indi.list_presets")
def list_presets(directory=None):
    """The trained presets that ship with keras-indi: ``{name: metadata}``.

    Metadata give the task, the degradation and its parameters, the training data, the
    network, the training steps, wall time, backend and date, and metrics on the project's own
    held-out photographs (`keras_indi.presets.recipes.HELD_OUT_IMAGES`).

    Example:

    >>> presets = list_presets()
    >>> all("task" in metadata and "metrics" in metadata for metadata in presets.values())
    True
    """
    metadata = _read_metadata(directory)
    directory = directory or PRESETS_DIRECTORY
    return {
        name: dict(entry)
        for name, entry in sorted(metadata.items())
        if os.path.exists(os.path.join(directory, entry["file"]))
    }


def preset_path(name, directory=None):
    """The `.keras` file of preset `name` (a clear `ValueError` for an unknown name)."""
    presets = list_presets(directory)
    if not isinstance(name, str) or name not in presets:
        available = ", ".join(presets) or "none (this installation has no preset files)"
        raise ValueError(f"Unknown preset {name!r}. Available presets: {available}. See keras_indi.list_presets().")
    return os.path.join(directory or PRESETS_DIRECTORY, presets[name]["file"])


@keras_indi_export("keras_indi.load_preset")
def load_preset(name, directory=None):
    """Load preset `name` as a ready `keras_indi.InDIModel` (nothing is downloaded).

    Same as ``keras_indi.InDIModel.from_preset(name)``.
    """
    import keras

    import keras_indi  # noqa: F401  (registers the classes a .keras file names)

    from keras_indi.backend.compilation_cache import loading_weights

    path = preset_path(name, directory)
    try:
        with loading_weights():  # JAX: the initial weights the file replaces compile ~3x faster
            return keras.saving.load_model(path, compile=False)
    except Exception as error:
        raise ValueError(f"The preset file {path} could not be loaded ({error}). Reinstall keras-indi.") from error
