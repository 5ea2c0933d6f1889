"""The default dtype policy: mixed bfloat16 where the accelerator has bfloat16 tensor cores.

Mixed precision is safe for InDI because only the network computes in low precision:
`keras_indi.InDIModel` draws t and the noise and builds ``x_t = (1 - t) x + t y + sigma(t) eta``
in float32, the networks embed t in float32 and return float32, and the weights stay float32
under the ``mixed_*`` policies. ``"auto"`` picks ``"mixed_bfloat16"`` on NVIDIA GPUs of compute
capability 8.0 or newer (A100, H100, RTX 30xx and later) and on TPUs, and ``"float32"``
elsewhere (CPUs, older GPUs, where bfloat16 is emulated and slower).

The environment variable ``KERAS_INDI_PRECISION`` overrides the choice of ``"auto"``, e.g.
``KERAS_INDI_PRECISION=float32`` for bit-exact float32 runs on a GPU.

Example:

>>> default_precision() in ("float32", "mixed_bfloat16")  # float32 on a CPU, bf16 on an H100
True
>>> resolve_dtype("auto") == default_precision()
True
>>> resolve_dtype("mixed_float16"), resolve_dtype(None)
('mixed_float16', None)
"""

import os

import keras

# The device query is backend-specific: `keras_indi.backend.devices` (re-exported here).
from keras_indi.backend.devices import accelerator_supports_bfloat16  # noqa: F401

#: The environment variable that overrides what ``"auto"`` resolves to.
PRECISION_VARIABLE = "KERAS_INDI_PRECISION"

#: Dtype policies that ``"auto"`` may be overridden with (``KERAS_INDI_PRECISION``).
PRECISIONS = ("float32", "mixed_bfloat16", "mixed_float16", "bfloat16")


def default_precision():
    """The dtype policy ``"auto"`` stands for: ``KERAS_INDI_PRECISION`` when set, else
    ``"mixed_bfloat16"`` where `accelerator_supports_bfloat16`, else ``"float32"``.

    >>> default_precision() in PRECISIONS  # "float32" on a CPU, KERAS_INDI_PRECISION unset
    True
    """
    override = os.environ.get(PRECISION_VARIABLE, "").strip().lower()
    if override and override != "auto":
        if override not in PRECISIONS:
            raise ValueError(
                f"The environment variable {PRECISION_VARIABLE}={os.environ[PRECISION_VARIABLE]!r} is "
                f"not a precision. Set it to one of: auto, {', '.join(PRECISIONS)}, or unset it."
            )
        return override
    return "mixed_bfloat16" if accelerator_supports_bfloat16() else "float32"


def resolve_dtype(dtype):
    """``"auto"`` -> `default_precision()`; any other dtype (a policy name, a
    `keras.DTypePolicy`, or None for the Keras global policy) is returned unchanged.

    >>> resolve_dtype("auto") in PRECISIONS  # "float32" on a CPU
    True
    >>> resolve_dtype(None) is None
    True
    """
    if isinstance(dtype, str) and dtype.strip().lower() == "auto":
        return default_precision()
    return dtype


def resolve_precision(precision, name="precision"):
    """Check a ``precision`` setting (``"auto"`` or one of `PRECISIONS`) and resolve ``"auto"``.

    >>> resolve_precision("mixed_bfloat16")
    'mixed_bfloat16'
    """
    if not isinstance(precision, str) or precision.strip().lower() not in ("auto",) + PRECISIONS:
        raise ValueError(
            f"`{name}` must be 'auto' or one of {list(PRECISIONS)}. Received {name}={precision!r}."
        )
    return resolve_dtype(precision.strip().lower())


def loss_scaled_optimizer(optimizer, precision):
    """`optimizer` wrapped in a `keras.optimizers.LossScaleOptimizer` when `precision` is
    ``"mixed_float16"`` (float16 gradients underflow without loss scaling; bfloat16 has
    float32's range and needs none); otherwise `optimizer` itself.

    Keras wraps the optimizer only when the *compiled* model's policy is mixed_float16, and an
    `InDIModel` keeps the global policy while its network may have its own.

    >>> optimizer = loss_scaled_optimizer(keras.optimizers.Adam(), "mixed_float16")
    >>> type(optimizer).__name__
    'LossScaleOptimizer'
    """
    name = getattr(precision, "name", precision)
    if name == "mixed_float16" and not isinstance(optimizer, keras.optimizers.LossScaleOptimizer):
        return keras.optimizers.LossScaleOptimizer(optimizer)
    return optimizer
