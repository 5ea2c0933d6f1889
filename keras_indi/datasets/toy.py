"""The paper's 2D toy problem: discrete modes degraded by Gaussian noise.

Regression onto the clean point learns the posterior mean E[x | y], which for a noisy
observation between modes is an average of modes: a point that never occurs in the data
("regression to the mean"). InDI's small steps land on the modes instead.
"""

import numpy as np

DEFAULT_MODES = np.array([[-0.5, -0.5], [-0.5, 0.5], [0.5, -0.5], [0.5, 0.5]], dtype="float32")


def toy_modes_dataset(num_samples=4096, modes=None, noise_std=0.5, seed=0):
    """Pairs ``(degraded, clean)``: clean points drawn uniformly from `modes`, degraded by
    additive Gaussian noise of standard deviation `noise_std`.

    Args:
        num_samples: number of pairs.
        modes: array (num_modes, dimensions); default the four corners (+-0.5, +-0.5).
        noise_std: noise standard deviation.
        seed: int seed.

    Returns:
        ``(degraded, clean)`` float32 arrays of shape (num_samples, dimensions).

    Example:

    >>> degraded, clean = toy_modes_dataset(8, seed=0)
    >>> degraded.shape, clean.shape
    ((8, 2), (8, 2))
    """
    modes = DEFAULT_MODES if modes is None else np.asarray(modes, dtype="float32")
    if modes.ndim != 2 or modes.shape[0] < 1:
        raise ValueError(f"`modes` must have shape (num_modes, dimensions). Received {modes.shape}.")
    if not isinstance(num_samples, (int, np.integer)) or num_samples < 1:
        raise ValueError(f"`num_samples` must be a positive int. Received {num_samples!r}.")
    if not noise_std >= 0:
        raise ValueError(f"`noise_std` must be >= 0. Received {noise_std!r}.")
    rng = np.random.default_rng(seed)
    clean = modes[rng.integers(0, modes.shape[0], size=num_samples)]
    degraded = clean + noise_std * rng.standard_normal(clean.shape)
    return degraded.astype("float32"), clean.astype("float32")


def distance_to_nearest_mode(points, modes=None):
    """Euclidean distance from each point to its nearest mode, shape (num_points,).

    >>> float(distance_to_nearest_mode(np.array([[0.0, 0.5]]))[0])
    0.5
    """
    modes = DEFAULT_MODES if modes is None else np.asarray(modes, dtype="float32")
    points = np.asarray(points, dtype="float32")
    if points.ndim != 2 or points.shape[1] != modes.shape[1]:
        raise ValueError(f"`points` must have shape (num_points, {modes.shape[1]}). Received {points.shape}.")
    distances = np.linalg.norm(points[:, None, :] - modes[None, :, :], axis=-1)
    return distances.min(axis=1)
