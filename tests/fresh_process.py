"""Run a test script in a fresh Python process of a given Keras backend.

What happens at import time (which modules get imported, which flags are set, the seeds of a
new process) can only be seen in a process that has not imported anything yet, which the test
process has.
"""

import importlib.util
import os
import subprocess
import sys

import pytest


def run_fresh_process(code, backend, remove=(), timeout=600, **environment):
    """Run `code` with ``python -c`` under ``KERAS_BACKEND=backend`` and return its last line.

    Skips the test where `backend` is not installed; fails it (with the end of the child's
    stderr) where the child exits with an error. `remove` names environment variables to
    leave out of the child's; `environment` adds others.
    """
    if importlib.util.find_spec(backend) is None:
        pytest.skip(f"{backend} is not installed")
    child = {key: value for key, value in os.environ.items() if key not in remove}
    child.update(KERAS_BACKEND=backend, **environment)
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, env=child, timeout=timeout)
    assert result.returncode == 0, result.stderr[-3000:]
    lines = result.stdout.strip().splitlines()
    return lines[-1] if lines else ""
