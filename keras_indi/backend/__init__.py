"""The only backend-specific code of keras-indi: stateless noise, compiled loops and metrics,
eager/traced tensors, multi-replica draws, device queries and seeding.

Everything else is written with `keras.ops` and `keras.random` and never compares
``keras.backend.backend()`` nor imports jax, torch or tensorflow itself (the few documented
exceptions are listed in ``tests/test_architecture.py``).
"""

from keras_indi._lazy import attach

_NAMES = {
    "native_channels_last_kernels": "channels_last",
    "fuse_normalization_and_modulation": "channels_last",
    "channel_statistics_are_faster": "compile",
    "compile_sampler_function": "compile",
    "jit_concrete": "compile",
    "jit_stateless": "compile",
    "match_static_shape": "compile",
    "predict_batch": "compile",
    "static_shapes": "compile",
    "torch_compile_requested": "compile",
    "accelerator_supports_bfloat16": "devices",
    "list_devices": "devices",
    "replica_batch": "distribution",
    "is_eager_tensor": "tensors",
    "is_traced_backend": "tensors",
    "separate_variable_buffers": "tensors",
    "step_noise": "random",
    "enable_compilation_cache": "compilation_cache",
    "loading_weights": "compilation_cache",
    "shared_initializer_programs": "compilation_cache",
    "configure_xla_cpu_flags": "xla_flags",
    "set_random_seed": "seeding",
    "tensorflow_left_unimported": "seeding",
}
__all__ = list(_NAMES)
__getattr__, __dir__ = attach(__name__, _NAMES)
del attach
