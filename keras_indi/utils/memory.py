"""How much memory a restoration may use (no Keras import here).

`keras_indi.samplers.choose_tiling` compares its estimate with `memory_budget`; the command
line's fast restore path (`keras_indi.backend.restore_programs`) does the same without
importing Keras.
"""

import math
import numbers
import os

MEMORY_LIMIT_VARIABLE = "KERAS_INDI_MEMORY_LIMIT"
DEFAULT_MEMORY_FRACTION = 0.5


def parse_memory_size(text):
    """Bytes from ``"8G"``, ``"512M"``, ``"2.5GiB"`` or a plain number of bytes.

    >>> parse_memory_size("512M"), parse_memory_size("1.5G"), parse_memory_size("1000")
    (536870912, 1610612736, 1000)
    """
    value = str(text).strip().upper().removesuffix("IB").removesuffix("B")
    scale = 1
    for suffix, power in (("K", 1), ("M", 2), ("G", 3), ("T", 4)):
        if value.endswith(suffix):
            value, scale = value[:-1], 1024**power
            break
    try:
        number = float(value)
    except ValueError:
        number = -1.0
    if not math.isfinite(number) or number <= 0:
        raise ValueError(f"A memory size must be a positive number of bytes such as 8G or 512M. Received {text!r}.")
    return int(number * scale)


def _read_number(path):
    try:
        with open(path) as file:
            text = file.read().strip()
    except OSError:
        return None
    return int(text) if text.isdigit() else None


def available_memory():
    """Bytes this process can still use: the smaller of the system's available memory
    (``MemAvailable``) and what is left of its cgroup's limit; None when unknown."""
    candidates = []
    try:
        with open("/proc/meminfo") as file:
            for line in file:
                if line.startswith("MemAvailable:"):
                    candidates.append(int(line.split()[1]) * 1024)
                    break
    except (OSError, ValueError, IndexError):
        pass
    for limit_file, usage_file in (
        ("/sys/fs/cgroup/memory.max", "/sys/fs/cgroup/memory.current"),  # cgroup v2
        ("/sys/fs/cgroup/memory/memory.limit_in_bytes", "/sys/fs/cgroup/memory/memory.usage_in_bytes"),  # v1
    ):
        limit, usage = _read_number(limit_file), _read_number(usage_file)
        if limit is not None and usage is not None and limit < 1 << 60:
            candidates.append(max(limit - usage, 0))
            break
    if not candidates:
        try:
            candidates.append(os.sysconf("SC_AVPHYS_PAGES") * os.sysconf("SC_PAGE_SIZE"))
        except (ValueError, OSError, AttributeError):
            return None
    return min(candidates)


def memory_budget(memory_limit=None):
    """Bytes a restoration may use: `memory_limit` (bytes or text such as ``"8G"``), else
    ``KERAS_INDI_MEMORY_LIMIT``, else half of `available_memory` (None when unknown)."""
    if memory_limit is None:
        memory_limit = os.environ.get(MEMORY_LIMIT_VARIABLE) or None
    if memory_limit is not None:
        return memory_limit if isinstance(memory_limit, numbers.Integral) else parse_memory_size(memory_limit)
    available = available_memory()
    return None if available is None else int(DEFAULT_MEMORY_FRACTION * available)
