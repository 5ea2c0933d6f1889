"""What the current Keras backend's default device is: a listing and its bfloat16 support.

Only the current backend's library is asked (TensorFlow is not imported under JAX or torch).
"""

import keras


def _capability_at_least_8(capability):
    """True for a compute capability (``"9.0"``, ``(8, 6)``) of 8.0 or newer.

    >>> _capability_at_least_8("9.0"), _capability_at_least_8((7, 5))
    (True, False)
    """
    if isinstance(capability, str):
        capability = tuple(int(part) for part in capability.split(".")[:2])
    return tuple(capability) >= (8, 0)


def _jax_supports_bfloat16():
    import jax

    device = jax.devices()[0]
    if device.platform == "tpu":
        return True
    if device.platform in ("gpu", "cuda"):
        capability = getattr(device, "compute_capability", None)
        return capability is not None and _capability_at_least_8(capability)
    return False


def _torch_supports_bfloat16():
    import torch

    return bool(torch.cuda.is_available()) and _capability_at_least_8(torch.cuda.get_device_capability())


def _tensorflow_supports_bfloat16():
    import tensorflow as tf

    if tf.config.list_logical_devices("TPU"):
        return True
    gpus = tf.config.list_physical_devices("GPU")
    if not gpus:
        return False
    capability = tf.config.experimental.get_device_details(gpus[0]).get("compute_capability")
    return capability is not None and _capability_at_least_8(capability)


_DETECTORS = {
    "jax": _jax_supports_bfloat16,
    "torch": _torch_supports_bfloat16,
    "tensorflow": _tensorflow_supports_bfloat16,
}


def accelerator_supports_bfloat16():
    """True when the Keras backend's default device computes bfloat16 natively.

    That is an NVIDIA GPU of compute capability 8.0 or newer, or a TPU. Only the current
    backend's library is asked (TensorFlow is not imported under JAX or torch). Any failure
    of the device query counts as no support, so the answer is never worse than float32.

    >>> accelerator_supports_bfloat16() in (True, False)  # False on a CPU or a T4
    True
    """
    detector = _DETECTORS.get(keras.backend.backend())
    if detector is None:
        return False
    try:
        return bool(detector())
    except Exception:  # a broken driver or a missing library: fall back to float32
        return False


def list_devices():
    """The devices of the current backend, from the backend's own listing, as strings
    (e.g. ``"gpu:0 NVIDIA H100"``, ``"CPU:/device:CPU:0"``). A listing failure is reported
    as one ``"unknown (...)"`` entry, never raised.

    >>> isinstance(list_devices(), list)
    True
    """
    backend = keras.backend.backend()
    try:
        if backend == "jax":
            import jax

            return [f"{d.platform}:{d.id} {getattr(d, 'device_kind', '')}".strip() for d in jax.devices()]
        if backend == "tensorflow":
            import tensorflow as tf

            return [f"{d.device_type}:{d.name}" for d in tf.config.list_logical_devices()]
        if backend == "torch":
            import torch

            return ["cpu"] + [f"cuda:{i} {torch.cuda.get_device_name(i)}" for i in range(torch.cuda.device_count())]
    except Exception as error:  # a listing failure must not stop the caller
        return [f"unknown ({type(error).__name__}: {error})"]
    return []
