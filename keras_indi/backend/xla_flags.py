"""XLA CPU flags that keras-indi sets for JAX: convolutions outside YNNPACK.

jaxlib 0.10 compiles each convolution on the CPU as a YNNPACK fusion by default. For the
small-channel 3x3 convolutions of keras-indi's U-Nets that is 2 to 3 times slower than XLA's
own convolution (measured on a 2-core AMD EPYC with `benchmarks/xla_cpu_flags.py`, BENCHMARKS.md
"JAX on the CPU: convolutions outside YNNPACK"): one evaluation of the (32, 64) preset U-Net on
32 crops of 64x64 takes 1.05 s instead of 1.84 s, one training step of it at 64x64 1.71 s
instead of 4.75 s, and one of the quickstart's (16, 32) U-Net at 32x32 0.16 instead of 0.28 s.
The flag
``--xla_cpu_experimental_ynn_fusion_type=-individual_convolution`` takes the convolutions out
of YNNPACK and leaves its other fusions alone (the upstream report of such regressions:
jax-ml/jax#37465).

`configure_xla_cpu_flags` appends that flag to the ``XLA_FLAGS`` environment variable, which
XLA reads when JAX first initializes its CPU backend (the first array, not ``import jax``):

* keras-indi calls it right after Keras is imported with the JAX backend
  (``keras_indi/__init__.py``), so a program that imports ``keras_indi`` before computing
  with JAX gets it; a JAX backend that is running already keeps its flags (no effect, no
  error);
* only for the jaxlib versions it was measured with (``0.10.*``): XLA aborts the process on
  a flag it does not know, so an untested jaxlib is left alone;
* never when ``XLA_FLAGS`` already sets ``xla_cpu_experimental_ynn_fusion_type`` (the
  user's choice wins), nor when ``KERAS_INDI_XLA_CPU_FLAGS=0``;
* the flag applies to the CPU only (GPU and TPU compilation ignore it). Results differ from
  the default compilation in the last bits of float32 (another convolution algorithm); with
  the same flags, the same seed still gives the same result.
"""

import os

#: The flag keras-indi adds to ``XLA_FLAGS`` (see the module docstring for the measurements).
XLA_CPU_FLAG = "--xla_cpu_experimental_ynn_fusion_type=-individual_convolution"
#: ``KERAS_INDI_XLA_CPU_FLAGS=0`` keeps ``XLA_FLAGS`` untouched.
OPT_OUT_VARIABLE = "KERAS_INDI_XLA_CPU_FLAGS"
#: jaxlib versions (major, minor) known to accept `XLA_CPU_FLAG`.
TESTED_JAXLIB_VERSIONS = ((0, 10),)


def _jaxlib_version():
    """``(major, minor)`` of the installed jaxlib, or None (not installed, unreadable)."""
    from importlib import metadata

    try:
        parts = metadata.version("jaxlib").split(".")
        return int(parts[0]), int(parts[1])
    except (metadata.PackageNotFoundError, ValueError, IndexError):
        return None


def configure_xla_cpu_flags(environ=None, jaxlib_version=None):
    """Add keras-indi's XLA CPU flag to ``XLA_FLAGS`` where it is safe and wanted.

    Args:
        environ: the environment mapping to update (default ``os.environ``).
        jaxlib_version: ``(major, minor)`` to assume (default: the installed jaxlib's).

    Returns:
        True if the flag was added, False if ``XLA_FLAGS`` was left as it was.

    Example:

    >>> environment = {"XLA_FLAGS": "--xla_force_host_platform_device_count=2"}
    >>> configure_xla_cpu_flags(environment, jaxlib_version=(0, 10))
    True
    >>> environment["XLA_FLAGS"]
    '--xla_force_host_platform_device_count=2 --xla_cpu_experimental_ynn_fusion_type=-individual_convolution'
    >>> configure_xla_cpu_flags({"KERAS_INDI_XLA_CPU_FLAGS": "0"}, jaxlib_version=(0, 10))
    False
    """
    environ = os.environ if environ is None else environ
    if environ.get(OPT_OUT_VARIABLE, "1").strip().lower() in ("0", "false", "no", "off"):
        return False
    current = environ.get("XLA_FLAGS", "")
    if "xla_cpu_experimental_ynn_fusion_type" in current:
        return False
    version = _jaxlib_version() if jaxlib_version is None else tuple(jaxlib_version)
    if version not in TESTED_JAXLIB_VERSIONS:
        return False
    environ["XLA_FLAGS"] = f"{current} {XLA_CPU_FLAG}".strip()
    return True


def configure_for_keras_backend():
    """`configure_xla_cpu_flags` when Keras runs on JAX (called once Keras is imported)."""
    import keras

    if keras.backend.backend() == "jax":
        configure_xla_cpu_flags()
