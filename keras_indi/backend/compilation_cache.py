"""A persistent compilation cache, so that a new process reuses what an earlier one compiled.

On JAX every program is compiled by XLA the first time it runs in a process: when a ``.keras``
file is loaded, the random initializers of every weight shape and the operations of a network
built by an eager forward pass (over 150 small programs, most of the load time on a CPU), then
the sampler's fused loop. JAX can keep the compiled
programs on disk (``jax_compilation_cache_dir``) and read them back in the next process.
`enable_compilation_cache` turns that on; the ``keras-indi`` command line calls it before it
loads a model, so a second ``keras-indi restore`` skips those compiles.

* Location: ``$KERAS_INDI_COMPILATION_CACHE`` when it is a path, else
  ``$XDG_CACHE_HOME/keras-indi/jax`` (``~/.cache/keras-indi/jax``); at most
  `MAX_CACHE_BYTES` (least recently used programs are evicted). Delete the folder to clear it.
* ``KERAS_INDI_COMPILATION_CACHE=0`` (or ``off``) turns it off.
* A cache directory configured in JAX already (``JAX_COMPILATION_CACHE_DIR``) is kept.
* TensorFlow (``tf.function`` traces) and torch (eager) have no persistent equivalent on the
  paths keras-indi uses: nothing is done there.

`loading_weights` makes loading cheaper: building a network draws random initial weights that
the file overwrites right away, and on JAX each weight shape compiles (or, with the cache, at
least lowers and looks up) its own random-number program. Inside it the usual initializers give
NumPy zeros instead, and any other draw uses JAX's non-partitionable threefry, whose programs
compile about 3x faster on a CPU (outside the context nothing changes).
"""

import contextlib
import os
import threading

ENVIRONMENT_VARIABLE = "KERAS_INDI_COMPILATION_CACHE"
OFF = ("0", "off", "false", "no", "none")
ON = ("", "1", "on", "true", "yes")
MAX_CACHE_BYTES = 1 << 30


def default_cache_dir():
    """``$XDG_CACHE_HOME/keras-indi/jax``, or ``~/.cache/keras-indi/jax``."""
    base = os.environ.get("XDG_CACHE_HOME") or os.path.join(os.path.expanduser("~"), ".cache")
    return os.path.join(base, "keras-indi", "jax")


def compilation_cache_dir(environ=None):
    """The folder `enable_compilation_cache` uses, or None when the cache is switched off
    (``KERAS_INDI_COMPILATION_CACHE=0``). `environ`: the environment to read (default
    ``os.environ``).

    >>> import os
    >>> os.environ["KERAS_INDI_COMPILATION_CACHE"] = "0"
    >>> compilation_cache_dir() is None
    True
    >>> del os.environ["KERAS_INDI_COMPILATION_CACHE"]
    """
    environ = os.environ if environ is None else environ
    setting = environ.get(ENVIRONMENT_VARIABLE, "").strip()
    if setting.lower() in OFF:
        return None
    if setting.lower() in ON:
        return default_cache_dir()
    return os.path.abspath(os.path.expanduser(setting))


def enable_compilation_cache(directory=None):
    """Keep compiled programs on disk for later processes (JAX backend only).

    Call it before the first compile of the process (before a model is built or loaded).

    Args:
        directory: the cache folder (default: `compilation_cache_dir`).

    Returns:
        The folder in use, or None (another backend, the cache switched off with
        ``KERAS_INDI_COMPILATION_CACHE=0``, or a folder that cannot be created).
    """
    import keras

    if keras.backend.backend() != "jax":
        return None
    directory = directory or compilation_cache_dir()
    if directory is None:
        return None
    import jax

    configured = jax.config.jax_compilation_cache_dir
    if configured:  # the user's own JAX setting wins
        return configured
    try:
        os.makedirs(directory, exist_ok=True)
    except OSError:
        return None
    if not os.access(directory, os.W_OK):
        return None
    jax.config.update("jax_compilation_cache_dir", directory)
    # Keep every program: the many small ones that loading a model compiles add up to seconds.
    jax.config.update("jax_persistent_cache_min_compile_time_secs", 0.0)
    jax.config.update("jax_persistent_cache_min_entry_size_bytes", 0)
    jax.config.update("jax_compilation_cache_max_size", MAX_CACHE_BYTES)
    return directory


#: The Keras initializers whose values `loading_weights` replaces by NumPy zeros.
_PLACEHOLDER_INITIALIZERS = ("VarianceScaling", "RandomNormal", "RandomUniform", "TruncatedNormal", "Zeros", "Ones")


def _numpy_placeholder(original):
    import keras
    import numpy as np

    def call(self, shape, dtype=None):
        dtype = keras.backend.standardize_dtype(dtype or keras.config.floatx())
        if dtype not in ("float16", "float32", "float64"):  # bfloat16 etc.: not in NumPy
            return original(self, shape, dtype=dtype)
        return np.zeros(tuple(shape), dtype)

    return call


@contextlib.contextmanager
def loading_weights():
    """Context for building a model whose weights are loaded right after (``load_model``).

    JAX: the initial weights, which the file overwrites right away, are NumPy zeros rather than
    random draws (each weight shape would compile its own random-number program: about 0.7 s
    of a warm ``keras-indi restore`` on a 2-core CPU), and any random draw left uses the
    non-partitionable threefry (programs that compile ~3x faster on a CPU); elsewhere nothing
    changes. Never train or sample inside it, nor build a model whose weights are not loaded
    afterwards: its weights would be zeros, and random numbers drawn inside differ from those
    drawn outside. The swap of the initializers is process-wide while the context is open.

    >>> with loading_weights():
    ...     pass
    """
    import keras

    if keras.backend.backend() != "jax":
        yield
        return
    import jax

    classes = [getattr(keras.initializers, name) for name in _PLACEHOLDER_INITIALIZERS]
    originals = [cls.__dict__.get("__call__") for cls in classes]
    try:
        for cls in classes:
            cls.__call__ = _numpy_placeholder(cls.__call__)
        with jax.threefry_partitionable(False):
            yield
    finally:
        for cls, original in zip(classes, originals):
            if original is None:
                del cls.__call__
            else:
                cls.__call__ = original


#: The `jax.random` functions (as Keras' initializers call them, with ``shape=``) whose draws
#: `shared_initializer_programs` routes through power-of-two sizes.
_SHAPED_DRAWS = ("normal", "uniform", "truncated_normal")
#: The smallest shared draw: every weight of up to 2**17 values (a 3x3 convolution of up to
#: 128 -> 113 channels) is cut from one draw of this size, so a small network compiles one
#: program per function and dtype (each ~0.3 s on a 2-core CPU) instead of one per power of two;
#: the longer draw itself takes ~3 ms (while a test run shared the CPU).
_SMALLEST_SHARED_DRAW = 1 << 17
_shared_programs_lock = threading.Lock()
_shared_programs_depth = 0
_unshared_draws = {}


def _power_of_two_draw(original):
    import jax
    import numpy as np

    def draw(key, *args, **kwargs):
        shape = kwargs.get("shape")
        bounds = [kwargs[name] for name in ("minval", "maxval", "lower", "upper") if name in kwargs]
        if (
            args
            or shape is None
            or isinstance(key, jax.core.Tracer)
            or any(isinstance(bound, jax.core.Tracer) or np.ndim(bound) != 0 for bound in bounds)
            or not jax.config.jax_threefry_partitionable
        ):
            return original(key, *args, **kwargs)
        shape = tuple(int(size) for size in shape)
        count = int(np.prod(shape))
        bucket = max(_SMALLEST_SHARED_DRAW, 1 << max(count - 1, 0).bit_length())
        if bucket == count:
            return original(key, *args, **kwargs)
        # With the partitionable threefry each value depends on its flat index only, so the
        # first `count` values of a longer draw are this draw's, bit for bit.
        values = original(key, **dict(kwargs, shape=(bucket,)))
        return jax.numpy.asarray(np.asarray(values)[:count].reshape(shape))

    return draw


@contextlib.contextmanager
def shared_initializer_programs():
    """Context for building networks: the same random initial weights from fewer compiled programs.

    JAX compiles one random-number program per weight shape (about 0.7 s each on a 2-core
    CPU; 22 shapes in the quickstart's U-Net). Inside this context, draws of `jax.random.normal`,
    `~jax.random.uniform` and `~jax.random.truncated_normal` with a ``shape`` (as Keras'
    initializers make them) are drawn at the next power-of-two size, at least 2**17 values, and
    cut: with JAX's partitionable threefry (its default) each value depends only on its flat
    index, so the values are bit for bit those of the direct draw, from one shared program per
    function and dtype for every weight of up to 2**17 values (quickstart U-Net: build 5.3 ->
    1.3 s on a 2-core AMD EPYC). Anything else (traced draws, the non-partitionable threefry,
    other backends) is left unchanged.
    keras-indi's networks build inside it. Re-entrant and thread-safe: the functions are
    swapped while any thread is inside.

    >>> with shared_initializer_programs():
    ...     pass
    """
    global _shared_programs_depth
    import keras

    if keras.backend.backend() != "jax":
        yield
        return
    import jax

    with _shared_programs_lock:
        if _shared_programs_depth == 0:
            for name in _SHAPED_DRAWS:
                _unshared_draws[name] = getattr(jax.random, name)
                setattr(jax.random, name, _power_of_two_draw(_unshared_draws[name]))
        _shared_programs_depth += 1
    try:
        yield
    finally:
        with _shared_programs_lock:
            _shared_programs_depth -= 1
            if _shared_programs_depth == 0:
                for name in _SHAPED_DRAWS:
                    setattr(jax.random, name, _unshared_draws.pop(name))
