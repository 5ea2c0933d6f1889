"""Input checks shared by the public entry points.

Every check raises ``ValueError`` naming the argument, what was received and how to fix it.
Checks on concrete values (NaN, value range) only run on eager arrays, never inside a traced
function, so they cost nothing in compiled training steps.
"""

import numbers

import keras
import numpy as np

from keras_indi.backend.tensors import is_eager_tensor


def is_concrete(value):
    """True for NumPy arrays and eager backend tensors (values can be read)."""
    if isinstance(value, np.ndarray):
        return True
    if keras.ops.is_tensor(value):
        return is_eager_tensor(value)  # not a tf.function graph tensor nor a JAX tracer
    return False


def check_float_array(value, name, min_rank=None, max_rank=None, rank=None):
    """Check that `value` is a floating array of the allowed rank; return its shape."""
    if value is None:
        raise ValueError(f"`{name}` is required but received None.")
    if isinstance(value, (list, tuple)):
        value = np.asarray(value)
    if not hasattr(value, "shape") or not hasattr(value, "dtype"):
        raise ValueError(
            f"`{name}` must be an array or tensor. Received an object of type {type(value).__name__}."
        )
    shape = tuple(value.shape)
    if rank is not None and len(shape) != rank:
        raise ValueError(f"`{name}` must have rank {rank}. Received shape {shape} (rank {len(shape)}).")
    if min_rank is not None and len(shape) < min_rank:
        raise ValueError(f"`{name}` must have rank >= {min_rank}. Received shape {shape}.")
    if max_rank is not None and len(shape) > max_rank:
        raise ValueError(f"`{name}` must have rank <= {max_rank}. Received shape {shape}.")
    try:
        dtype = keras.backend.standardize_dtype(value.dtype)
    except (ValueError, TypeError):  # object, string, structured dtypes
        dtype = str(value.dtype)
    if "float" not in dtype:
        hint = ""
        if dtype in ("uint8", "int32", "int64", "uint16"):
            hint = (
                " Images stored as integers in [0, 255]: scale them to [-1, 1] with "
                "`x.astype('float32') / 127.5 - 1`."
            )
        raise ValueError(f"`{name}` must be a floating-point array. Received dtype {dtype}.{hint}")
    return shape


#: Degraded inputs (noisy images, pure noise for generation) may leave the model's
#: `value_range`: they are accepted up to this many half-widths of the range from its centre
#: (|x| <= 8 for (-1, 1): Gaussian noise of std 1 on [-1, 1] images stays far inside). Data
#: on the [0, 255] scale is far outside it and refused.
DEGRADED_MARGIN = 8.0


def allowed_range(value_range, degraded=False, tolerance=0.05):
    """The values accepted for data of a model with `value_range`: clean images may exceed it
    by `tolerance` of its width; degraded inputs (``degraded=True``) may reach
    `DEGRADED_MARGIN` half-widths from its centre.

    >>> allowed_range((-1.0, 1.0))
    (-1.1, 1.1)
    >>> allowed_range((-1.0, 1.0), degraded=True)
    (-8.0, 8.0)
    """
    low, high = value_range
    span = high - low
    if degraded:
        centre, half = (low + high) / 2.0, span / 2.0
        return (centre - DEGRADED_MARGIN * half, centre + DEGRADED_MARGIN * half)
    return (low - tolerance * span, high + tolerance * span)


def _scale_hint(minimum, maximum, low, high):
    """How to convert data that looks like [0, 255] or [0, 1] images to [low, high]."""
    # (Noisy [0, 255] images reach beyond [0, 255]: noise of std 64 does.)
    if 2.0 < maximum <= 3.0 * 255.0 and minimum >= -2.0 * 255.0 and high <= 2.0:
        if (low, high) == (-1.0, 1.0):
            conversion = "`x / 127.5 - 1`"
        else:
            conversion = f"`x / 255 * {high - low:g} + {low:g}`"
        return f" The values look like [0, 255] images: scale them to [{low:g}, {high:g}] with {conversion}."
    if minimum >= 0.0 and maximum <= 1.0 and low < 0.0:
        return " The values look like [0, 1] images: convert with `2 * x - 1` for [-1, 1]."
    return ""


def check_finite_and_range(
    value, name, value_range=None, tolerance=0.05,
    disable_hint="Pass `value_range=None` to the model to disable this check.",
    degraded=False,
):
    """Raise if a concrete array has NaN/Inf or values clearly outside `value_range`.

    Clean images must lie in `value_range` (up to `tolerance` of its width). With
    ``degraded=True`` (degraded inputs: noisy images, pure noise) values may exceed it, up to
    `DEGRADED_MARGIN` half-widths from its centre (see `allowed_range`): that still refuses
    data on the [0, 255] scale.
    """
    if not is_concrete(value):
        return
    array = keras.ops.convert_to_numpy(value) if not isinstance(value, np.ndarray) else value
    if array.size == 0:
        raise ValueError(f"`{name}` is empty (shape {array.shape}).")
    # min and max see NaN and Inf too: one pass each, no temporary array on the happy path.
    minimum, maximum = float(array.min()), float(array.max())
    if not (np.isfinite(minimum) and np.isfinite(maximum)):
        bad = int(array.size - np.isfinite(array).sum())
        raise ValueError(
            f"`{name}` contains {bad} NaN or Inf values. Clean the data (e.g. `np.nan_to_num`) "
            "or find the step that produced them."
        )
    if value_range is not None:
        low, high = value_range
        allowed_low, allowed_high = allowed_range(value_range, degraded, tolerance)
        if minimum < allowed_low or maximum > allowed_high:
            hint = _scale_hint(minimum, maximum, low, high)
            if degraded:
                expected = (
                    f"degraded inputs of a model with value_range [{low:g}, {high:g}] may hold values in "
                    f"[{allowed_low:g}, {allowed_high:g}] (noisy inputs and pure noise fit)"
                )
            else:
                expected = f"the model expects [{low:g}, {high:g}]"
            raise ValueError(
                f"`{name}` has values in [{minimum:.4g}, {maximum:.4g}] but {expected}.{hint} "
                f"{disable_hint}".rstrip()
            )


def check_positive_int(value, name, minimum=1):
    if isinstance(value, bool) or not isinstance(value, numbers.Integral) or value < minimum:
        raise ValueError(f"`{name}` must be an integer >= {minimum}. Received {name}={value!r}.")
    return int(value)


def check_number(value, name, minimum=None, maximum=None, exclusive_minimum=False):
    if isinstance(value, bool) or not isinstance(value, numbers.Real) or not np.isfinite(value):
        raise ValueError(f"`{name}` must be a finite number. Received {name}={value!r}.")
    if minimum is not None:
        if (value <= minimum) if exclusive_minimum else (value < minimum):
            relation = ">" if exclusive_minimum else ">="
            raise ValueError(f"`{name}` must be {relation} {minimum}. Received {name}={value!r}.")
    if maximum is not None and value > maximum:
        raise ValueError(f"`{name}` must be <= {maximum}. Received {name}={value!r}.")
    return float(value)


def check_choice(value, name, choices):
    if value not in choices:
        raise ValueError(f"`{name}` must be one of {sorted(choices)}. Received {name}={value!r}.")
    return value


def check_network_input(network, shape, name, inputs_per_call=1):
    """Check the rank and channels of `shape` against a network's declared input.

    A network declares its input with an ``input_layout`` property, ``(rank, channels,
    description)``: `TimeConditionalUNet` takes ``(batch, height, width, in_channels)`` images
    and `TimeConditionalMLP` ``(batch, features)`` vectors. Networks without it are not checked
    (they raise their own errors). `inputs_per_call` > 1 when the network sees that many inputs
    concatenated on channels (`ConditionalDDPM`: sample and degraded input).
    """
    layout = getattr(network, "input_layout", None)
    if layout is None:
        return
    rank, channels, layout = layout
    channels //= inputs_per_call
    if len(shape) != rank:
        raise ValueError(
            f"`{name}` must have rank {rank}, {layout}, for the model's {type(network).__name__}. "
            f"Received shape {shape}."
        )
    if shape[-1] is not None and shape[-1] != channels:
        raise ValueError(
            f"`{name}` has {shape[-1]} channels but the model's network takes {channels} (shape "
            f"{shape}). Convert the data (e.g. grayscale <-> RGB) or use a model trained on "
            f"{shape[-1]}-channel data."
        )


def check_model_arguments(network, value_range, seed, call="network([x_t, t])"):
    """The constructor checks shared by the models: ``(network, value_range, seed)``, normalized.

    `network` may be a serialized config (a dict, as in ``from_config``); `value_range` is
    ``(low, high)`` with ``low < high`` or None; `seed` an int or None.

    >>> import keras
    >>> check_model_arguments(keras.layers.Identity(), [-1, 1], 3)[1:]
    ((-1.0, 1.0), 3)
    """
    if isinstance(network, dict):
        network = keras.saving.deserialize_keras_object(network)
    if not isinstance(network, keras.layers.Layer):
        raise ValueError(
            f"`network` must be a Keras model or layer called as `{call}`. Received {type(network).__name__}."
        )
    if value_range is not None:
        if len(value_range) != 2 or not value_range[0] < value_range[1]:
            raise ValueError(f"`value_range` must be (low, high) with low < high, or None. Received {value_range!r}.")
        value_range = (float(value_range[0]), float(value_range[1]))
    if seed is not None and (isinstance(seed, bool) or not isinstance(seed, (int, np.integer))):
        raise ValueError(f"`seed` must be an int or None. Received seed={seed!r}.")
    return network, value_range, None if seed is None else int(seed)
