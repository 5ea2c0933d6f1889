"""Tiled restoration: restore images larger than memory allows, without seams.

`restore_tiled` cuts an image into overlapping tiles of one fixed size, runs the network on
batches of tiles and blends the tiles back with smooth weights (a raised-cosine ramp across
each overlap, so the weights of two neighbouring tiles sum to one and no seam shows).

Two modes:

* ``mode="per_step"`` (default): the InDI iteration runs on the *whole* image and only the
  network evaluations are tiled: at every step the tiles' clean estimates are blended into
  one full-size estimate before the update ``x_{t-d} = (d/t) F + (1 - d/t) x_t``. The start
  noise and the sampler's fresh noise are drawn for the whole image exactly as
  `InDISampler` draws them, so with a network that acts pixel by pixel the result equals
  whole-image restoration, whatever the noise schedule; neighbouring tiles can never drift
  apart over many steps (each step starts from the same blended image). Split, network and
  blend are traced into the sampler's compiled loop (`TiledInDISampler`): no host round trip
  per step, and one compile per image size and tiling serves every step count.
* ``mode="per_tile"``: each tile is restored on its own with ``model.restore`` and only the
  final tiles are blended. The start
  noise is still drawn once for the whole image; with a non-constant noise schedule
  (``"brownian"``) and ``stochastic=True`` the per-step noise then differs from tile to tile.

Network memory is bounded by `tile_batch_size` tiles of `tile_size` per call (plus a few
full-size images). Networks with global statistics (the U-Net's GroupNorm) see slightly
different statistics on a tile than on the whole image, so tiled and whole-image results differ
a little everywhere (more so for small tiles); use large tiles (256 or more) and an overlap of
at least the network's effective receptive field (32 is a good default).

`choose_tiling` decides when an image needs tiles at all: it estimates the memory of
whole-image restoration (`estimate_restore_memory`) and compares it with a budget (half the
available memory, or ``KERAS_INDI_MEMORY_LIMIT``); ``keras-indi restore`` uses it when no
``--tile-size`` is given.
"""

import math
import weakref
from typing import NamedTuple

import keras
import numpy as np
from keras import ops

from keras_indi.api_export import keras_indi_export
from keras_indi.backend import step_noise
from keras_indi.samplers.indi_sampler import (
    InDISampler,
    InDITables,
    check_sampler_seed,
    make_time_grid,
    validate_time_grid,
)
from keras_indi.schedules import get_noise_schedule
from keras_indi.utils.memory import (  # noqa: F401 (public here too)
    DEFAULT_MEMORY_FRACTION,
    MEMORY_LIMIT_VARIABLE,
    available_memory,
    memory_budget,
    parse_memory_size,
)
from keras_indi.utils.validation import (
    check_finite_and_range,
    check_network_input,
    check_positive_int,
)

MODES = ("per_step", "per_tile")
# Whole-image restoration keeps about this many float32 values per pixel and per channel of the
# network's first level alive at once (measured peak resident memory at 512x512 with the
# (32, 64) U-Net of the presets: 10 on JAX, 13 on TensorFlow, 21 on torch; rounded up).
ACTIVATIONS_PER_CHANNEL = 24
# Self-attention keeps about this many (heads, tokens, tokens) float32 score arrays alive.
ATTENTION_SCORE_ARRAYS = 3
MIN_AUTO_TILE = 128
MAX_AUTO_TILE_BATCH = 8
_RESTORE_KWARGS = ("num_steps", "time_grid", "spacing", "t_start", "seed", "stochastic", "add_input_noise", "progress_bar")
_NETWORK_FUNCTIONS = weakref.WeakKeyDictionary()


def _pair(value, name):
    if isinstance(value, (tuple, list)):
        if len(value) != 2:
            raise ValueError(f"`{name}` must be an int or (height, width). Received {value!r}.")
        return tuple(check_positive_int(v, name) for v in value)
    value = check_positive_int(value, name)
    return value, value


def tile_starts(length, tile, overlap):
    """Start offsets of tiles of size `tile` covering ``[0, length)`` with `overlap` pixels.

    Tiles are ``tile`` long (or ``length`` when the image is smaller), step ``tile - overlap``
    apart; the last one is moved back to end exactly at the border, so every tile has the same
    size and lies inside the image.

    >>> tile_starts(10, 4, 1)
    [0, 3, 6]
    >>> tile_starts(37, 16, 4)
    [0, 12, 21]
    >>> tile_starts(5, 16, 4)
    [0]
    """
    tile = min(tile, length)
    if tile == length:
        return [0]
    stride = tile - overlap
    starts = list(range(0, length - tile, stride))
    starts.append(length - tile)
    return starts


def blend_ramp(size, start, length, overlap):
    """1D blending weights of a tile of `size` pixels at `start` in an axis of `length`.

    1 in the middle; on each side that borders another tile the weight rises over `overlap`
    pixels as ``sin^2(pi (i + 1/2) / (2 overlap))``, so two ramps facing each other sum to 1.
    Sides on the image border keep weight 1 (no other tile covers them). Weights are > 0.
    """
    weights = np.ones(size, "float64")
    ramp_length = min(overlap, size)
    if ramp_length <= 0:
        return weights
    ramp = np.sin(np.pi * (np.arange(ramp_length) + 0.5) / (2.0 * ramp_length)) ** 2
    if start > 0:
        weights[:ramp_length] *= ramp
    if start + size < length:
        weights[size - ramp_length :] *= ramp[::-1]
    return weights


class Tiling:
    """Overlapping tiles of an ``(batch, height, width, channels)`` array, and their blend.

    Example:

    >>> tiling = Tiling((37, 31), tile_size=16, overlap=4)
    >>> images = np.random.default_rng(0).uniform(-1, 1, (2, 37, 31, 3)).astype("float32")
    >>> tiles = tiling.split(images)
    >>> tiles.shape
    (18, 16, 16, 3)
    >>> bool(np.array_equal(tiling.merge(tiles, batch=2), images))
    True
    """

    def __init__(self, image_size, tile_size=256, overlap=32):
        self.height, self.width = (int(image_size[0]), int(image_size[1]))
        tile_height, tile_width = _pair(tile_size, "tile_size")
        overlap = check_positive_int(overlap, "overlap", minimum=0)
        if overlap >= min(tile_height, tile_width):
            raise ValueError(
                f"`overlap` ({overlap}) must be smaller than `tile_size` ({tile_height}x{tile_width}); "
                "typical values are tile_size=256, overlap=32."
            )
        self.overlap = overlap
        self.tile_height = min(tile_height, self.height)
        self.tile_width = min(tile_width, self.width)
        rows = tile_starts(self.height, tile_height, overlap)
        columns = tile_starts(self.width, tile_width, overlap)
        self.positions = [(y, x) for y in rows for x in columns]
        self.weights = [
            np.outer(
                blend_ramp(self.tile_height, y, self.height, overlap),
                blend_ramp(self.tile_width, x, self.width, overlap),
            )
            for y, x in self.positions
        ]
        total = np.zeros((self.height, self.width), "float64")
        for (y, x), weight in zip(self.positions, self.weights):
            total[y : y + self.tile_height, x : x + self.tile_width] += weight
        self.total_weight = total

    @property
    def num_tiles(self):
        return len(self.positions)

    def split(self, images):
        """``(batch, H, W, C)`` -> ``(num_tiles * batch, tile_h, tile_w, C)`` (tile-major)."""
        images = np.asarray(images)
        return np.concatenate(
            [images[:, y : y + self.tile_height, x : x + self.tile_width] for y, x in self.positions],
            axis=0,
        )

    def merge(self, tiles, batch):
        """Blend ``(num_tiles * batch, tile_h, tile_w, C)`` tiles back into ``(batch, H, W, C)``.

        A weighted mean in float64 rounded to float32: where all tiles covering a pixel
        agree, the result is exactly their value.
        """
        tiles = np.asarray(tiles)
        out = np.zeros((batch, self.height, self.width, tiles.shape[-1]), "float64")
        for index, ((y, x), weight) in enumerate(zip(self.positions, self.weights)):
            part = tiles[index * batch : (index + 1) * batch].astype("float64")
            out[:, y : y + self.tile_height, x : x + self.tile_width] += weight[None, :, :, None] * part
        out /= self.total_weight[None, :, :, None]
        return out.astype("float32")


class TiledOptions(NamedTuple):
    """`InDIOptions` plus the tiling of `TiledInDISampler` (static: one compile per tiling)."""

    stochastic: bool
    add_input_noise: bool
    tiling: tuple


class TiledInDISampler(InDISampler):
    """`InDISampler` whose network evaluations are tiled *inside* the compiled loop.

    Each step cuts the whole-image iterate into the tiles of a `Tiling` (static slices),
    evaluates the network on groups of tiles and blends the clean estimates back with the
    tiling's weights, all in `keras.ops`: the fused loop stays one compiled call with no host
    round trip per step, and split, network and blend compile once per image size and tiling.
    The tiling is an extra option, `TiledOptions.tiling`: ``(image_height, image_width,
    tile_height, tile_width, overlap, tiles_per_call)`` (the requested tile size, clipped to
    the image).
    """

    def _wrap_network(self, network_fn, options):
        height, width, tile_height, tile_width, overlap, tiles_per_call = options.tiling
        tiling = Tiling((height, width), (tile_height, tile_width), overlap)
        tile_height, tile_width = tiling.tile_height, tiling.tile_width  # at most the image size
        weights = [ops.convert_to_tensor(w[None, :, :, None], "float32") for w in tiling.weights]
        inverse_total = ops.convert_to_tensor(1.0 / tiling.total_weight[None, :, :, None], "float32")
        count = tiling.num_tiles

        def tiled_network_fn(images, t):
            tiles = [images[:, y : y + tile_height, x : x + tile_width, :] for y, x in tiling.positions]
            outputs = []
            for begin in range(0, count, tiles_per_call):
                group = tiles[begin : begin + tiles_per_call]
                batch = ops.concatenate(group, axis=0) if len(group) > 1 else group[0]
                times = ops.tile(t, (len(group),)) if len(group) > 1 else t
                output = ops.cast(network_fn(batch, times), "float32")
                outputs.extend(ops.split(output, len(group), axis=0) if len(group) > 1 else [output])
            blended = None
            for (y, x), weight, output in zip(tiling.positions, weights, outputs):
                # Zero-pad each weighted tile to the full image: no scatter, one fused sum.
                placed = ops.pad(
                    weight * output,
                    ((0, 0), (y, height - y - tile_height), (x, width - x - tile_width), (0, 0)),
                )
                blended = placed if blended is None else blended + placed
            return blended * inverse_total

        return tiled_network_fn


_TILED_SAMPLERS = weakref.WeakKeyDictionary()


def _tiled_sampler(network, schedule):
    """One `TiledInDISampler` per network and noise schedule, so compiled loops are reused."""
    key = repr(schedule.get_config()) if hasattr(schedule, "get_config") else id(schedule)
    try:
        samplers = _TILED_SAMPLERS.setdefault(network, {})
    except TypeError:  # not weak-referenceable
        samplers = {}
    if key not in samplers:
        samplers[key] = TiledInDISampler(network, noise_schedule=schedule, progress_bar=False)
    return samplers[key]


@keras_indi_export("keras_indi.samplers.restore_tiled")
def restore_tiled(
    model,
    image,
    tile_size=256,
    overlap=32,
    *,
    mode="per_step",
    tile_batch_size=8,
    noise_schedule=None,
    **restore_kwargs,
):
    """Restore a large image tile by tile, blending overlapping tiles with smooth weights.

    Args:
        model: an `InDIModel` (its network, noise schedule and value range are used) or a
            network called as ``network([x_t, t])`` (then pass `noise_schedule`).
        image: ``(height, width, channels)`` or ``(batch, height, width, channels)`` float
            array in the model's value range (usually [-1, 1]). Any size: tiles never leave
            the image (the last tile of a row or column is moved back to the border), and a
            tile larger than the image is shrunk to the image.
        tile_size: int or ``(tile_height, tile_width)``.
        overlap: pixels shared by neighbouring tiles (< tile_size), blended with a
            raised-cosine ramp. 0 gives hard seams.
        mode: ``"per_step"`` (default: blend the tiles' clean estimates at every step, the
            iteration runs on the whole image) or ``"per_tile"`` (restore each tile with
            ``model.restore`` and blend the results). See the module docstring.
        tile_batch_size: tiles evaluated per network call (memory vs speed).
        noise_schedule: overrides the model's noise schedule (needed for a bare network).
        **restore_kwargs: `InDISampler` options: ``num_steps`` (default 10), ``time_grid``,
            ``spacing``, ``t_start``, ``seed``, ``stochastic``, ``add_input_noise``,
            ``progress_bar`` (default False).

    Returns:
        A float32 NumPy array of the shape of `image` (with the network's output channels).

    Example:

    >>> from keras_indi import InDIModel
    >>> from keras_indi.networks import TimeConditionalUNet
    >>> model = InDIModel(TimeConditionalUNet(widths=(8, 16), blocks_per_level=1), seed=0)
    >>> photo = np.zeros((300, 200, 3), "float32")
    >>> restored = restore_tiled(model, photo, tile_size=128, overlap=16, num_steps=2, seed=0)
    >>> restored.shape
    (300, 200, 3)

    Same seed, same result as ``model.restore(photo[None], num_steps=2, seed=0)[0]`` up to
    the tile borders' context (exactly equal for networks acting pixel by pixel).
    """
    unknown = sorted(set(restore_kwargs) - set(_RESTORE_KWARGS))
    if unknown:
        raise ValueError(
            f"restore_tiled() does not support {unknown}. Supported options: {list(_RESTORE_KWARGS)} "
            "(tiles are batched with `tile_batch_size`; trajectories and callbacks need whole-image "
            "`model.restore`)."
        )
    if mode not in MODES:
        raise ValueError(f"`mode` must be one of {list(MODES)}. Received mode={mode!r}.")
    tile_batch_size = check_positive_int(tile_batch_size, "tile_batch_size")
    if keras.ops.is_tensor(image):
        image = ops.convert_to_numpy(image)
    image = np.asarray(image)
    if image.ndim not in (3, 4):
        raise ValueError(
            "`image` must be (height, width, channels) or (batch, height, width, channels). "
            f"Received shape {image.shape}."
        )
    if not np.issubdtype(image.dtype, np.floating):
        raise ValueError(
            f"`image` must be a float array in the model's value range. Received dtype {image.dtype}; "
            "convert [0, 255] images with `x.astype('float32') / 127.5 - 1`."
        )
    single = image.ndim == 3
    images = (image[None] if single else image).astype("float32", copy=False)
    if images.shape[0] == 0 or images.shape[1] == 0 or images.shape[2] == 0:
        raise ValueError(f"`image` is empty (shape {image.shape}).")
    network = getattr(model, "network", model)
    if not callable(network):
        raise ValueError(f"`model` must be an InDIModel or a network. Received {model!r}.")
    check_finite_and_range(images, "image", getattr(model, "value_range", None), degraded=True)
    check_network_input(network, images.shape, "image")
    schedule = get_noise_schedule(
        noise_schedule if noise_schedule is not None else getattr(model, "noise_schedule", None)
    )
    tiling = Tiling(images.shape[1:3], tile_size, overlap)
    seed = check_sampler_seed(restore_kwargs.pop("seed", None))
    batch = images.shape[0]

    time_grid = restore_kwargs.get("time_grid")
    if time_grid is not None:
        grid = validate_time_grid(time_grid)
    else:
        grid = make_time_grid(
            restore_kwargs.get("num_steps", 10),
            restore_kwargs.get("t_start", 1.0),
            restore_kwargs.get("spacing", "uniform"),
        )
    add_input_noise = restore_kwargs.get("add_input_noise", True)

    if mode == "per_tile":
        if hasattr(model, "restore") and noise_schedule is None:
            restore = model.restore
        else:
            restore = InDISampler(model, noise_schedule=schedule)
        # The start noise is drawn once for the whole image, as `InDISampler` draws it.
        start = images
        if add_input_noise and not schedule.is_zero:
            start = ops.convert_to_numpy(schedule.sigma(float(grid[0])) * step_noise(images.shape, seed, 0)) + images
        tiles = tiling.split(np.asarray(start, "float32"))
        count = tiles.shape[0]
        restored = restore(
            tiles,
            time_grid=grid,
            seed=seed,
            stochastic=restore_kwargs.get("stochastic", True),
            add_input_noise=False,
            progress_bar=restore_kwargs.get("progress_bar", False),
            batch_size=min(tile_batch_size, count),  # a short last chunk is padded
        )
        result = tiling.merge(np.asarray(restored)[:count], batch)
        return result[0] if single else result

    if not getattr(network, "built", True):
        network([images[:1, : tiling.tile_height, : tiling.tile_width], np.ones((1,), "float32")])
    # Tiles per network call: `tile_batch_size` tile images, i.e. this many tile positions.
    tiles_per_call = max(1, tile_batch_size // batch)
    spec = (tiling.height, tiling.width) + _pair(tile_size, "tile_size") + (tiling.overlap, tiles_per_call)
    sample = _tiled_sampler(network, schedule).run(
        images,
        InDITables(times=grid),
        grid.shape[0] - 1,
        seed,
        TiledOptions(bool(restore_kwargs.get("stochastic", True)), bool(add_input_noise), spec),
        batch_size=batch,
        progress_bar=bool(restore_kwargs.get("progress_bar", False)),
    )
    return sample[0] if single else sample


# -- when to tile ---------------------------------------------------------------------------------
def estimate_restore_memory(network, image_shape):
    """Bytes that restoring `image_shape` (``(height, width, channels)`` or with a batch
    first) in one piece needs, roughly: activations of the network's first level (U-Net
    ``widths[0]``, else 64 channels) plus self-attention scores, plus the sampler's full-size
    arrays. Conservative: measured peaks are 0.4x (JAX) to 0.9x (torch) of it.

    >>> from keras_indi.networks import TimeConditionalUNet
    >>> estimate_restore_memory(TimeConditionalUNet(widths=(32, 64)), (2048, 2048, 3)) / 2**30
    12.375
    """
    shape = tuple(int(d) for d in image_shape)
    batch, (height, width, channels) = (1, shape) if len(shape) == 3 else (shape[0], shape[1:4])
    widths = tuple(getattr(network, "widths", None) or (64,))
    pixels = batch * height * width
    total = pixels * 4 * (ACTIVATIONS_PER_CHANNEL * widths[0] + 8 * channels)
    heads = int(getattr(network, "num_heads", 4) or 4)
    for level in getattr(network, "attention_levels", ()) or ():
        tokens = math.ceil(height / 2**level) * math.ceil(width / 2**level)
        total += batch * ATTENTION_SCORE_ARRAYS * heads * tokens**2 * 4
    return int(total)


@keras_indi_export("keras_indi.samplers.choose_tiling")
def choose_tiling(network, image_shape, overlap=32, memory_limit=None):
    """Whether to restore `image_shape` in tiles: None (whole image fits) or ``(tile_size,
    tile_batch_size)`` for `restore_tiled`.

    Whole-image restoration is used when `estimate_restore_memory` fits in the budget
    (`memory_budget`: `memory_limit`, ``KERAS_INDI_MEMORY_LIMIT`` or half the available
    memory). Otherwise the image is cut into the fewest near-equal square tiles (at least
    `MIN_AUTO_TILE` pixels, a multiple of 16) of which one fits, and as many tiles per network
    call as fit (at most `MAX_AUTO_TILE_BATCH`).

    Args:
        network: the model's network (or the model).
        image_shape: ``(height, width, channels)`` or ``(batch, height, width, channels)``.
        overlap: the overlap the tiles will use.
        memory_limit: bytes, or text such as ``"8G"``.

    >>> from keras_indi.networks import TimeConditionalUNet
    >>> network = TimeConditionalUNet(widths=(32, 64), blocks_per_level=1)
    >>> choose_tiling(network, (256, 256, 3), memory_limit="8G") is None
    True
    >>> choose_tiling(network, (2048, 2048, 3), memory_limit="8G")
    (1040, 2)
    """
    network = getattr(network, "network", network)
    shape = tuple(int(d) for d in image_shape)
    height, width = shape[-3], shape[-2]
    budget = memory_budget(memory_limit)
    if budget is None or estimate_restore_memory(network, shape) <= budget:
        return None
    batch = 1 if len(shape) == 3 else shape[0]
    longest = max(height, width)
    minimum = max(MIN_AUTO_TILE, 2 * overlap + 16)

    whole_image_arrays = batch * height * width * shape[-1] * 4 * 8  # iterate, noise, blend

    def tile_memory(tile, count=1):
        tiles = (count * batch, min(tile, height), min(tile, width), shape[-1])
        return estimate_restore_memory(network, tiles) + whole_image_arrays

    pieces = 2
    tile = max(minimum, 16 * math.ceil((longest + overlap) / 2 / 16))
    while tile > minimum and tile_memory(tile) > budget:
        pieces += 1
        tile = max(minimum, 16 * math.ceil((longest + (pieces - 1) * overlap) / pieces / 16))
    per_call = 1
    while per_call < MAX_AUTO_TILE_BATCH and tile_memory(tile, per_call + 1) <= budget:
        per_call += 1
    return tile, per_call
