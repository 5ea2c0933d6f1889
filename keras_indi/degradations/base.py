"""The degradation contract shared by data pipelines and models.

Conventions used everywhere in keras-indi:

* images are ``float32`` arrays in ``[-1, 1]``, channels last: ``(batch, height, width, channels)``
  or a single ``(height, width, channels)`` image;
* a degradation maps a clean image ``x`` to a degraded image ``y`` of the **same shape**
  (super-resolution inputs are upsampled back to the clean size, as InDI needs);
* randomness comes from an explicit seed: the same seed gives the same output.

Two forms exist for each degradation:

* the NumPy form, ``degradation(images)``, for data pipelines: NumPy parameters, pixels by the
  layer form's keras.ops code on the CPU, any backend (Pillow for JPEG, which has none);
* the Keras-layer form, ``degradation.as_layer()``, for degradations whose maths is
  expressible with ``keras.ops`` (noise, Gaussian/defocus blur, bicubic resampling). It runs on
  backend tensors inside a compiled train step on JAX, TensorFlow and torch.
"""

import numbers

import numpy as np

from keras_indi.api_export import keras_indi_export
from keras_indi.degradations.common import check_static_image_batch  # noqa: F401 (re-exported)
from keras_indi.degradations.common import serialize_degradation  # noqa: F401 (re-exported)
from keras_indi.utils.config import ConfigObject
from keras_indi.utils.validation import check_finite_and_range


@keras_indi_export("keras_indi.degradations.Degradation")
class Degradation(ConfigObject):
    """Base class of every degradation: a seeded, serializable map clean -> degraded.

    Subclasses implement two methods:

    * ``sample_parameters(batch_size, rng)`` returns a dict of per-sample NumPy parameters
      (e.g. one JPEG quality or one blur kernel per image), drawn from ``rng``
      (a ``numpy.random.Generator``);
    * ``apply(clean, parameters)`` degrades a ``(batch, height, width, channels)`` float32
      batch in ``[-1, 1]`` with those parameters and returns the same shape and dtype.

    and, when they add constructor arguments, ``get_config``. Subclasses that can run as a
    Keras layer also set ``supports_layer = True`` and implement
    ``backend_call(clean, seed_generator)`` with ``keras.ops`` / ``keras.random``.

    Calling the object validates the input, draws the parameters and applies them:

    >>> class Darken(Degradation):
    ...     def sample_parameters(self, batch_size, rng):
    ...         return {"gain": rng.uniform(0.5, 0.9, size=batch_size)}
    ...     def apply(self, clean, parameters):
    ...         gain = parameters["gain"].reshape(-1, 1, 1, 1)
    ...         return (gain * (clean + 1.0) - 1.0).astype("float32")
    >>> degraded = Darken(seed=0)(np.zeros((2, 8, 8, 3), "float32"))
    >>> degraded.shape
    (2, 8, 8, 3)

    Args:
        seed: int or None. Seeds the parameter generator used when ``__call__`` gets no
            ``seed`` of its own. Two objects with the same seed produce the same sequence.
    """

    #: True when `backend_call` is implemented, i.e. `as_layer()` works.
    supports_layer = False
    #: Why the layer form is unavailable (used in the NotImplementedError message).
    layer_unsupported_reason = "its maths is not expressible with keras.ops"

    def __init__(self, seed=None):
        if seed is not None and (isinstance(seed, bool) or not isinstance(seed, (int, np.integer))):
            raise ValueError(f"`seed` must be an int or None. Received: seed={seed!r}")
        self.seed = None if seed is None else int(seed)
        self._rng = np.random.default_rng(self.seed)

    # -- to implement ------------------------------------------------------------------
    def sample_parameters(self, batch_size, rng):
        """Return a dict of per-sample parameters (NumPy arrays of leading size `batch_size`)."""
        return {}

    def apply(self, clean, parameters):
        """Degrade a float32 batch ``(batch, height, width, channels)`` in [-1, 1]."""
        raise NotImplementedError(f"{type(self).__name__} must implement `apply(clean, parameters)`.")

    def backend_call(self, clean, seed_generator):
        """Degrade a backend tensor batch with ``keras.ops``; randomness from `seed_generator`.

        Only available when ``supports_layer`` is True. Use it through `as_layer()`.
        """
        self._check_layer_support()
        raise NotImplementedError(f"{type(self).__name__} must implement `backend_call`.")

    # -- public API ----------------------------------------------------------------------
    def __call__(self, clean, seed=None):
        """Degrade `clean` (one image or a batch); `seed` overrides the object's generator."""
        batch, single = self._prepare(clean)
        rng = self._rng if seed is None else np.random.default_rng(seed)
        parameters = self.sample_parameters(batch.shape[0], rng)
        degraded = np.asarray(self.apply(batch, parameters), dtype="float32")
        return degraded[0] if single else degraded

    def as_layer(self, seed=None, **kwargs):
        """Return a `DegradationLayer`: this degradation on backend tensors, as a Keras layer.

        Args:
            seed: int seed of the layer's `keras.random.SeedGenerator`; defaults to this
                degradation's seed.
            **kwargs: passed to `keras.layers.Layer` (e.g. ``name``).

        Raises:
            NotImplementedError: for degradations that only exist in the data pipeline
                (JPEG, motion blur).
        """
        from keras_indi.degradations.layer import DegradationLayer

        return DegradationLayer(self, seed=self.seed if seed is None else seed, **kwargs)

    def get_config(self):
        return {"seed": self.seed}

    # -- helpers for subclasses ------------------------------------------------------------
    def _prepare(self, clean):
        """Validate a NumPy image or batch; return a float32 batch and whether it was single."""
        clean = np.asarray(clean)
        if clean.ndim not in (3, 4):
            raise ValueError(
                f"{type(self).__name__} expects an image (height, width, channels) or a batch "
                f"(batch, height, width, channels). Received an array of shape {clean.shape}. "
                "Add a channel axis to grayscale images with `images[..., None]`."
            )
        if not np.issubdtype(clean.dtype, np.floating):
            raise ValueError(
                f"{type(self).__name__} expects float images in [-1, 1]; received dtype "
                f"{clean.dtype}. Convert with `images.astype('float32') / 127.5 - 1`."
            )
        single = clean.ndim == 3
        batch = clean[None] if single else clean
        if 0 in batch.shape[1:]:
            raise ValueError(f"{type(self).__name__} received an empty image of shape {clean.shape}.")
        check_finite_and_range(
            batch, f"{type(self).__name__} input `clean`", (-1.0, 1.0),
            disable_hint="Degradations take images in [-1, 1].",
        )
        return batch.astype("float32", copy=False), single

    def _check_layer_support(self):
        if not self.supports_layer:
            raise NotImplementedError(
                f"{type(self).__name__} has no Keras-layer form: {self.layer_unsupported_reason}. "
                "Apply it in the data pipeline instead (call it on NumPy batches, e.g. in a "
                "`keras.utils.PyDataset` or with `tf.numpy_function` in tf.data) and train on "
                "(degraded, clean) pairs."
            )


# -- argument validation shared by the degradations -----------------------------------------
def check_value_or_range(
    value, value_range, name, minimum=None, maximum=None, integer=False, exclusive_minimum=False
):
    """Validate ``value`` (fixed parameter, may be None) and ``value_range`` ((low, high)).

    Returns ``(value, value_range)`` normalized to Python numbers / a tuple.
    """
    kind = int if integer else float

    def check_number(number, label):
        valid_type = numbers.Integral if integer else numbers.Real
        if isinstance(number, bool) or not isinstance(number, valid_type) or not np.isfinite(number):
            what = "an integer" if integer else "a finite number"
            raise ValueError(f"`{label}` must be {what}. Received {label}={number!r}.")
        if minimum is not None and (number <= minimum if exclusive_minimum else number < minimum):
            relation = ">" if exclusive_minimum else ">="
            raise ValueError(f"`{label}` must be {relation} {minimum}. Received {label}={number!r}.")
        if maximum is not None and number > maximum:
            raise ValueError(f"`{label}` must be <= {maximum}. Received {label}={number!r}.")
        return kind(number)

    if value is not None:
        value = check_number(value, name)
    if isinstance(value_range, np.ndarray):
        value_range = value_range.tolist()
    if not isinstance(value_range, (list, tuple)) or len(value_range) != 2:
        raise ValueError(f"`{name}_range` must be a pair (low, high). Received {name}_range={value_range!r}.")
    low = check_number(value_range[0], f"{name}_range[0]")
    high = check_number(value_range[1], f"{name}_range[1]")
    if low > high:
        raise ValueError(f"`{name}_range` must satisfy low <= high. Received {name}_range={value_range!r}.")
    return value, (low, high)


def sample_value(value, value_range, batch_size, rng, integer=False):
    """Per-sample parameter: the fixed `value`, else uniform in `value_range` (inclusive ints)."""
    if value is not None:
        return np.full((batch_size,), value, dtype="int64" if integer else "float64")
    low, high = value_range
    if integer:
        return rng.integers(low, high + 1, size=batch_size)
    return rng.uniform(low, high, size=batch_size)


def sample_seeds(batch_size, rng):
    """One independent 63-bit seed per sample (noise of sample i depends only on its seed)."""
    return rng.integers(0, 2**63 - 1, size=batch_size, dtype="int64")
