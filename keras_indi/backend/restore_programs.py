"""Saved restoration programs: a repeated ``keras-indi restore`` that needs no Keras (JAX).

A warm ``keras-indi restore`` of one 256x256 image with 10 steps spent, on a 2-core AMD EPYC,
3.4-3.9 s importing Keras and JAX, ~1.4 s loading the ``.keras`` file and ~3.5-4.4 s in the 10
network evaluations (BENCHMARKS.md, "Start-up, latency and memory"). Only the last part is
the restoration. So, on JAX, the first restoration of an image size with a given model file
compiles the sampler's fused loop (the program `InDISampler` runs) for that size, and keeps the
compiled executable (``jax.experimental.serialize_executable``) with the network's weights next
to the compilation cache; the next ``keras-indi restore`` of that model file and image size
loads them and runs them with JAX alone. Keras is not imported, the model file is not
deserialized, nothing is traced or compiled. The restored images are the same bit for bit
(tested).

* Folder: the compilation cache's (`keras_indi.backend.compilation_cache`), so
  ``KERAS_INDI_COMPILATION_CACHE=0`` turns both off; ``KERAS_INDI_RESTORE_PROGRAMS=0`` turns
  off only these.
* Files: ``restore-model-<digest>.npz`` (the weights and what the command line needs to know
  of the model: channels, whether it is a regression model) per model file content, and
  ``restore-program-<key>.npz`` per image shape; the key covers the model file's SHA-256, the
  image shape, the step-table bucket, the versions of keras-indi, Keras, JAX and jaxlib, and
  the machine (`machine_identity`: a compiled program runs only where it was compiled).
  A changed model file gets new entries; at most `MAX_PROGRAMS` programs and `MAX_MODELS`
  models are kept (the least recently used go).
* Used only when Keras would run on JAX (``KERAS_BACKEND``, or ``keras.json``), for whole
  images whose estimated memory fits the budget the tiled path uses (`memory_budget`); a
  damaged or unreadable entry is removed and the image is restored the usual way.

The reading side (`saved_restorer`) imports NumPy, JAX and nothing of Keras; the writing side
(`restore_and_save`) runs where the model is loaded already.
"""

import hashlib
import json
import os
import sys
import time

import numpy as np

from keras_indi.backend.compilation_cache import compilation_cache_dir
from keras_indi.samplers.time_grid import pad_table, padded_table_length, spaced_times
from keras_indi.utils.files import file_digest, replace_atomically
from keras_indi.utils.memory import memory_budget

ENVIRONMENT_VARIABLE = "KERAS_INDI_RESTORE_PROGRAMS"
#: Bumped when the files' layout or the saved function's arguments change.
FORMAT = 1
MAX_PROGRAMS = 64
MAX_MODELS = 8
_MODEL_PREFIX = "restore-model-"
_PROGRAM_PREFIX = "restore-program-"


def configured_keras_backend(environ=None):
    """The backend Keras would use, found without importing Keras: ``KERAS_BACKEND``, else the
    ``backend`` of Keras' ``keras.json``, else ``"tensorflow"`` (Keras' default).

    >>> configured_keras_backend({"KERAS_BACKEND": "jax"})
    'jax'
    """
    if environ is None:
        if "keras" in sys.modules:  # imported already: ask it
            return sys.modules["keras"].backend.backend()
        environ = os.environ
    name = environ.get("KERAS_BACKEND")
    if name:
        return name
    if "KERAS_HOME" in environ:
        folder = environ["KERAS_HOME"]
    else:
        base = os.path.expanduser("~")
        folder = os.path.join(base if os.access(base, os.W_OK) else "/tmp", ".keras")
    try:
        with open(os.path.join(folder, "keras.json")) as file:
            return json.load(file).get("backend") or "tensorflow"
    except (OSError, ValueError, AttributeError):
        return "tensorflow"


def programs_folder(environ=None):
    """The folder of the saved programs, or None when they are off (another backend than JAX,
    ``KERAS_INDI_RESTORE_PROGRAMS=0`` or ``KERAS_INDI_COMPILATION_CACHE=0``).

    >>> programs_folder({"KERAS_BACKEND": "torch"}) is None
    True
    """
    environ = os.environ if environ is None else environ
    if environ.get(ENVIRONMENT_VARIABLE, "1").strip().lower() in ("0", "off", "false", "no"):
        return None
    if configured_keras_backend(None if environ is os.environ else environ) != "jax":
        return None
    return compilation_cache_dir(environ)


def _versions():
    from importlib import metadata

    found = []
    for name in ("keras-indi", "keras", "jax", "jaxlib"):
        try:
            found.append(f"{name}={metadata.version(name)}")
        except metadata.PackageNotFoundError:
            found.append(f"{name}=?")
    return found


def machine_identity():
    """What a compiled CPU program depends on besides its source: the processor's model and
    instruction-set flags (``/proc/cpuinfo``), the platform and ``XLA_FLAGS``. A cache folder
    shared by several machines never hands one a program compiled for another."""
    import platform

    processor = platform.processor()
    try:
        with open("/proc/cpuinfo") as file:
            lines = [line for line in file if line.startswith(("model name", "flags"))]
        processor += "".join(sorted(set(lines)))
    except OSError:
        pass
    return "|".join([platform.machine(), processor, os.environ.get("XLA_FLAGS", "")])


def program_key(model_digest, image_shape, num_steps, platform):
    """The name of the program that restores `image_shape` ``(height, width, channels)`` with
    the model file of `model_digest` in `num_steps` steps on `platform` (e.g. ``"cpu"``) of
    this machine (`machine_identity`)."""
    table_length = padded_table_length(int(num_steps) + 1)
    parts = [f"format={FORMAT}", model_digest, "x".join(str(int(d)) for d in image_shape),
             f"table={table_length}", f"platform={platform}", machine_identity(), *_versions()]
    return hashlib.sha256("|".join(parts).encode()).hexdigest()[:32]


def _trees(weights, trainable_count, arguments):
    """The argument and result structures of a saved program (lists of weights, then arrays)."""
    import jax

    inputs = ((list(weights[:trainable_count]), list(weights[trainable_count:])) + tuple(arguments), {})
    return jax.tree_util.tree_structure(inputs), jax.tree_util.tree_structure(np.zeros(1))


def _save_npz(path, arrays):
    def write(temporary):
        with open(temporary, "wb") as file:
            np.savez(file, **arrays)

    replace_atomically(path, write)


def _keep_newest(folder, prefix, count):
    """Remove all but the `count` most recently used files of `folder` named `prefix`*.npz."""
    try:
        names = [n for n in os.listdir(folder) if n.startswith(prefix) and n.endswith(".npz")]
        paths = sorted((os.path.join(folder, n) for n in names), key=os.path.getmtime, reverse=True)
        for path in paths[count:]:
            os.remove(path)
    except OSError:
        pass


def _touch(path):
    try:
        os.utime(path)
    except OSError:
        pass


def _drop(path):
    try:
        os.remove(path)
    except OSError:
        pass


class SavedRestorer:
    """Restores images with the saved programs of one model file, with JAX alone.

    Made by `saved_restorer`. `channels` and `regression` describe the model;
    ``restore(image, num_steps, seed, t_start)`` returns the restored ``(height, width,
    channels)`` image, or None when no usable program is saved for that image (then restore
    it the usual way, with `restore_and_save`).
    """

    def __init__(self, folder, digest, card, weights):
        self.folder, self.digest = folder, digest
        self.channels = int(card["channels"])
        self.regression = bool(card["regression"])
        self._card = card
        self._weights = weights

    def restore(self, image, num_steps, seed, t_start=1.0):
        import jax

        shape = tuple(int(d) for d in image.shape)
        path = os.path.join(
            self.folder, _PROGRAM_PREFIX + program_key(self.digest, shape, num_steps, jax.default_backend()) + ".npz"
        )
        if not os.path.exists(path):
            return None
        budget = memory_budget()  # a malformed KERAS_INDI_MEMORY_LIMIT raises, as on the usual path
        try:
            with np.load(path) as saved:
                metadata = json.loads(str(saved["metadata"]))
                payload = saved["executable"].tobytes()
            if budget is not None and metadata["estimated_bytes"] > budget:
                return None  # the usual path tiles it
            from jax.experimental.serialize_executable import deserialize_and_load

            trainable_count = self._card["trainable_count"]
            arguments = (image[None].astype("float32"), pad_table(spaced_times(num_steps, t_start)),
                         np.int32(num_steps), np.int32(seed))
            compiled = deserialize_and_load(payload, *_trees(self._weights, trainable_count, arguments))
            weights = self._weights
            restored = compiled(weights[:trainable_count], weights[trainable_count:], *arguments)
            restored = np.asarray(restored)[0]
        except Exception:  # a damaged entry, another platform, ...: restore the usual way
            _drop(path)
            return None
        _touch(path)
        return restored


def saved_restorer(model_path, folder=None):
    """A `SavedRestorer` for `model_path`, or None (programs off, nothing saved for this file
    yet, or a damaged entry). Sets ``XLA_FLAGS`` as keras-indi does when Keras is imported
    (`keras_indi.backend.xla_flags`): they are part of the programs' key."""
    folder = programs_folder() if folder is None else folder
    if folder is None:
        return None
    model_path = os.fspath(model_path)
    try:
        digest = file_digest(model_path)
    except OSError:
        return None
    path = os.path.join(folder, _MODEL_PREFIX + digest + ".npz")
    if not os.path.exists(path):
        return None
    from keras_indi.backend.xla_flags import configure_xla_cpu_flags

    configure_xla_cpu_flags()  # before JAX starts: the flags Keras on JAX runs with
    try:
        with np.load(path) as saved:
            card = json.loads(str(saved["card"]))
            weights = [saved[f"weight_{i}"] for i in range(card["weight_count"])]
        if card.get("format") != FORMAT:
            return None
    except Exception:
        _drop(path)
        return None
    _touch(path)
    return SavedRestorer(folder, digest, card, weights)


def restore_and_save(model, model_digest, image, num_steps, seed, t_start=1.0, regression=False, folder=None):
    """Restore one whole image with `model` (an `InDIModel` on JAX) and save the program and
    weights that let `saved_restorer` do the same next time without Keras.

    `model_digest` is the `file_digest` of the file `model` was loaded from (taken before and
    checked after loading it: a file replaced meanwhile must not be named by these weights);
    None restores without saving anything.

    The image is restored by the saved program itself, so this run and the next ones give
    the same pixels. Returns the restored image, or None on other backends or when programs
    are off (restore with ``model.restore`` then).
    """
    import jax
    import keras

    from keras_indi.samplers.indi_sampler import InDIOptions, InDITables
    from keras_indi.samplers.tiling import estimate_restore_memory

    folder = programs_folder() if folder is None else folder
    if folder is None or keras.backend.backend() != "jax":
        return None
    sampler = model.sampler
    network = sampler.network
    shape = tuple(int(d) for d in image.shape)
    if not network.built:
        network([image[None], np.ones((1,), "float32")])
    function = sampler._compiled_function("fused", InDIOptions(stochastic=True, add_input_noise=True))
    trainable, non_trainable = function.weights()

    def restore(trainable, non_trainable, degraded, times, steps, seed):
        return function.stateless(trainable, non_trainable, degraded, InDITables(times=times), steps, seed)

    times = pad_table(spaced_times(num_steps, t_start))
    arguments = (image[None].astype("float32"), times, np.int32(num_steps), np.int32(seed))
    # One compile per image shape and table bucket in a process (a folder of same-sized images).
    programs = function.__dict__.setdefault("saved_programs", {})
    signature = (shape, times.shape[0])
    try:
        if signature not in programs:
            programs[signature] = jax.jit(restore).lower(trainable, non_trainable, *arguments).compile()
        compiled = programs[signature]
        restored = np.asarray(compiled(trainable, non_trainable, *arguments))[0]
    except Exception:  # the usual path
        return None
    if model_digest is None:
        return restored
    try:
        digest = model_digest
        key = program_key(digest, shape, num_steps, jax.default_backend())
        program_entry = os.path.join(folder, _PROGRAM_PREFIX + key + ".npz")
        model_entry = os.path.join(folder, _MODEL_PREFIX + digest + ".npz")
        if os.path.exists(program_entry) and os.path.exists(model_entry):
            return restored
        os.makedirs(folder, exist_ok=True)
        weights = [np.asarray(w) for w in list(trainable) + list(non_trainable)]
        card = {
            "format": FORMAT,
            "channels": shape[-1],
            "regression": bool(regression),
            "trainable_count": len(trainable),
            "weight_count": len(weights),
            "saved": time.strftime("%Y-%m-%d %H:%M:%S"),
        }
        if not os.path.exists(model_entry):
            _save_npz(model_entry, {"card": np.asarray(json.dumps(card)),
                                    **{f"weight_{i}": w for i, w in enumerate(weights)}})
        metadata = {"estimated_bytes": int(estimate_restore_memory(network, shape)), "shape": list(shape)}
        if not os.path.exists(program_entry):
            from jax.experimental.serialize_executable import serialize

            payload, in_tree, out_tree = serialize(compiled)
            if (in_tree, out_tree) == _trees(weights, len(trainable), arguments):  # what loading rebuilds
                _save_npz(program_entry, {"executable": np.frombuffer(payload, "uint8"),
                                          "metadata": np.asarray(json.dumps(metadata))})
        _keep_newest(folder, _PROGRAM_PREFIX, MAX_PROGRAMS)
        _keep_newest(folder, _MODEL_PREFIX, MAX_MODELS)
    except Exception:  # a read-only or full disk, ...: the restoration itself is done
        pass
    return restored
