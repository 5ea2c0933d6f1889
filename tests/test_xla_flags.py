"""keras_indi.backend.xla_flags: the XLA CPU flag keras-indi sets for JAX (convolutions outside
YNNPACK), only where it is safe and wanted, and accepted by the installed XLA."""

import pytest
from fresh_process import run_fresh_process

from keras_indi.backend import xla_flags

agnostic = pytest.mark.backend_agnostic
FLAG = xla_flags.XLA_CPU_FLAG


@agnostic
@pytest.mark.parametrize(
    "environment, version, expected, added",
    [
        ({}, (0, 10), FLAG, True),
        ({"XLA_FLAGS": "--xla_dump_to=/tmp/x"}, (0, 10), "--xla_dump_to=/tmp/x " + FLAG, True),
        # The user's own choice of YNN fusions wins.
        ({"XLA_FLAGS": "--xla_cpu_experimental_ynn_fusion_type="}, (0, 10), "--xla_cpu_experimental_ynn_fusion_type=", False),
        ({"KERAS_INDI_XLA_CPU_FLAGS": "0"}, (0, 10), None, False),
        ({"KERAS_INDI_XLA_CPU_FLAGS": "off", "XLA_FLAGS": "--a"}, (0, 10), "--a", False),
        # XLA aborts on a flag it does not know: untested jaxlib versions are left alone.
        ({}, (0, 4), None, False),
        ({}, (0, 11), None, False),
        ({}, None, None, False),
    ],
)
def test_flag_added_only_where_safe_and_wanted(monkeypatch, environment, version, expected, added):
    monkeypatch.setattr(xla_flags, "_jaxlib_version", lambda: version)
    environment = dict(environment)
    assert xla_flags.configure_xla_cpu_flags(environment) is added
    assert environment.get("XLA_FLAGS") == expected
    assert xla_flags.configure_xla_cpu_flags(environment) is False  # never twice


def _child(backend, code, **extra):
    return run_fresh_process(code, backend, remove=("XLA_FLAGS", "KERAS_INDI_XLA_CPU_FLAGS"), timeout=300, **extra)


@pytest.mark.skipif(xla_flags._jaxlib_version() not in xla_flags.TESTED_JAXLIB_VERSIONS, reason="needs a tested jaxlib")
@agnostic
def test_jax_processes_get_the_flag_and_xla_accepts_it():
    # keras_indi first, then Keras; the first JAX computation (a convolution) runs with the flag.
    code = (
        "import os, keras_indi, keras\n"
        "import numpy as np\n"
        "x = keras.ops.conv(np.ones((1, 9, 7, 3), 'float32'), np.ones((3, 3, 3, 4), 'float32'), padding='same')\n"
        "print(os.environ.get('XLA_FLAGS'), float(keras.ops.sum(x)))"
    )
    flags, total = _child("jax", code).rsplit(" ", 1)
    assert flags == FLAG and float(total) == _expected_sum()
    # Keras first, then keras_indi: the same.
    assert _child("jax", "import os, keras, keras_indi; print(os.environ.get('XLA_FLAGS'))") == FLAG
    # Opted out, and other backends: XLA_FLAGS untouched.
    assert _child("jax", "import os, keras_indi, keras; print(os.environ.get('XLA_FLAGS'))", KERAS_INDI_XLA_CPU_FLAGS="0") == "None"
    assert _child("torch", "import os, keras_indi, keras; print(os.environ.get('XLA_FLAGS'))") == "None"


def _expected_sum():
    import numpy as np

    ones = np.ones((9, 7))
    padded = np.pad(ones, 1)
    windows = sum(padded[i : i + 9, j : j + 7] for i in range(3) for j in range(3))  # 3x3 neighbours inside
    return float(windows.sum() * 3 * 4)
