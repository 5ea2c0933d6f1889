"""Time grids and per-step tables as NumPy arrays (no Keras import here).

`keras_indi.samplers.indi_sampler.make_time_grid` (which also checks its arguments) and the
samplers' padded tables are built from these; the command line's fast restore path
(`keras_indi.backend.restore_programs`) uses them without importing Keras.
"""

import math

import numpy as np

MINIMUM_TABLE_LENGTH = 128


def padded_table_length(length):
    """The bucket a per-step table of `length` entries is padded to.

    At least 128 (so every run of up to 127 steps shares one compiled loop), else the next
    power of two: a handful of compiles covers any step count.

    >>> [padded_table_length(n) for n in (2, 101, 128, 129, 1001)]
    [128, 128, 128, 256, 1024]
    """
    return max(MINIMUM_TABLE_LENGTH, 1 << (int(length) - 1).bit_length())


def pad_table(table):
    """A 1D float32 table padded with its last value to `padded_table_length`.

    >>> pad_table([1.0, 0.5, 0.0]).shape
    (128,)
    """
    table = np.asarray(table, "float32")
    return np.pad(table, (0, padded_table_length(table.shape[0]) - table.shape[0]), mode="edge")


def spaced_times(num_steps, t_start=1.0, spacing="uniform"):
    """The float32 times ``t_start = t_0 > ... > t_N = 0`` for checked arguments (see
    `keras_indi.samplers.make_time_grid`, which checks them and documents the spacings).

    >>> spaced_times(4, 0.5).tolist()
    [0.5, 0.375, 0.25, 0.125, 0.0]
    """
    fraction = np.linspace(1.0, 0.0, int(num_steps) + 1, dtype="float64")
    if spacing == "uniform":
        grid = fraction
    elif spacing == "quadratic":
        grid = fraction**2
    elif spacing == "cosine":
        grid = 1.0 - np.cos(fraction * math.pi / 2.0)
    else:
        raise ValueError(
            f"`spacing` must be 'uniform', 'quadratic' or 'cosine', or pass an explicit "
            f"`time_grid`. Received spacing={spacing!r}."
        )
    grid = (float(t_start) * grid).astype("float32")
    grid[0], grid[-1] = t_start, 0.0
    return grid
