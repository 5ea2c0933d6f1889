"""Tiled restoration: tiles cover the image, blend without seams, and match whole-image restoration."""

import itertools

import keras
import numpy as np
import pytest
from keras import ops

from keras_indi import InDIModel
from keras_indi.networks import TimeConditionalUNet
from keras_indi.samplers.tiling import Tiling, blend_ramp, restore_tiled, tile_starts
from keras_indi.schedules import BrownianNoise, ConstantNoise

from conftest import BACKEND

RNG = np.random.default_rng(0)
IMAGES = RNG.uniform(-0.9, 0.9, (2, 37, 31, 3)).astype("float32")


def assert_same_as_whole(tiled, whole):
    # The blend runs in float32 inside the compiled loop (sum of weight * tile, times the inverse
    # total weight): for a pointwise network it returns F up to a couple of float32 ulps.
    np.testing.assert_allclose(tiled, whole, rtol=0, atol=3e-7)


@keras.saving.register_keras_serializable(package="keras_indi_tests")
class Pointwise(keras.layers.Layer):
    """A time-dependent network acting on each pixel alone: F = tanh(w x) (1 - t/2) + t/10."""

    def build(self, input_shape):
        self.w = self.add_weight(shape=(), initializer=keras.initializers.Constant(0.7), name="w")

    def call(self, inputs, training=None):
        x, t = inputs
        t = ops.reshape(ops.cast(t, "float32"), (-1, 1, 1, 1))
        return ops.tanh(self.w * ops.cast(x, "float32")) * (1.0 - 0.5 * t) + 0.1 * t


@pytest.mark.backend_agnostic
@pytest.mark.parametrize("length, tile, overlap", [(37, 16, 4), (31, 16, 4), (10, 4, 1), (5, 16, 4), (64, 32, 0), (33, 32, 8)])
def test_tiles_cover_the_axis_inside_the_image(length, tile, overlap):
    starts = tile_starts(length, tile, overlap)
    size = min(tile, length)
    covered = np.zeros(length, int)
    for start in starts:
        assert 0 <= start and start + size <= length
        covered[start : start + size] += 1
    assert covered.min() >= 1
    assert starts == sorted(set(starts))
    for previous, current in itertools.pairwise(starts):
        assert current - previous <= size - overlap  # neighbours share at least `overlap` pixels


@pytest.mark.backend_agnostic
def test_facing_ramps_sum_to_one_and_borders_keep_full_weight():
    left = blend_ramp(16, 0, 28, 4)  # tiles [0, 16) and [12, 28): overlap exactly 4
    right = blend_ramp(16, 12, 28, 4)
    assert left[0] == 1.0 and right[-1] == 1.0  # image borders
    np.testing.assert_allclose(left[12:] + right[:4], 1.0, atol=1e-12)
    assert (left > 0).all() and (right > 0).all()
    assert np.all(np.diff(right[:4]) > 0)  # a smooth rise, no jump


@pytest.mark.backend_agnostic
@pytest.mark.parametrize("tile, overlap", [(16, 4), ((8, 20), 3), (64, 8), (31, 0)])
def test_split_then_merge_is_the_identity(tile, overlap):
    tiling = Tiling(IMAGES.shape[1:3], tile, overlap)
    tiles = tiling.split(IMAGES)
    assert tiles.shape[0] == tiling.num_tiles * 2
    np.testing.assert_array_equal(tiling.merge(tiles, batch=2), IMAGES)


# Every mode with every noise schedule, on odd image sizes (37x31), square and non-square tiles
# and a tile larger than the image (six cases: each compiles its own loops on JAX).
CASES = [
    ("per_step", ConstantNoise(0.01), 16, 4),
    ("per_step", BrownianNoise(0.05), (8, 20), 3),
    ("per_step", 0.0, 64, 8),
    ("per_tile", ConstantNoise(0.01), (8, 20), 3),
    ("per_tile", BrownianNoise(0.05), 16, 4),
    ("per_tile", 0.0, 64, 8),
]


@pytest.mark.parametrize("mode, schedule, tile, overlap", CASES, ids=[f"{c[0]}-{i}" for i, c in enumerate(CASES)])
def test_pointwise_network_tiled_equals_whole_image(mode, schedule, tile, overlap):
    model = InDIModel(Pointwise(), noise_schedule=schedule, seed=0)
    kwargs = {}
    if mode == "per_tile" and isinstance(schedule, BrownianNoise):
        kwargs["stochastic"] = False  # per-tile runs draw their own per-step noise (documented)
    whole = model.restore(IMAGES, num_steps=3, seed=5, progress_bar=False, **kwargs)
    tiled = restore_tiled(model, IMAGES, tile, overlap, mode=mode, num_steps=3, seed=5, tile_batch_size=5, **kwargs)
    assert tiled.shape == IMAGES.shape and tiled.dtype == np.float32
    assert_same_as_whole(tiled, whole)


def test_single_image_t_start_and_time_grid():
    model = InDIModel(Pointwise(), noise_schedule=0.02, seed=0)
    image = IMAGES[0]
    whole = model.restore(image[None], num_steps=4, t_start=0.5, seed=1, progress_bar=False)[0]
    tiled = restore_tiled(model, image, 16, 4, num_steps=4, t_start=0.5, seed=1)
    assert tiled.shape == image.shape
    assert_same_as_whole(tiled, whole)
    grid = [1.0, 0.6, 0.2, 0.0]
    whole = model.restore(image[None], time_grid=grid, seed=1, progress_bar=False)[0]
    assert_same_as_whole(restore_tiled(model, image, 16, 4, time_grid=grid, seed=1), whole)


def test_unet_tiled_matches_whole_image():
    keras.utils.set_random_seed(0)
    model = InDIModel(TimeConditionalUNet(widths=(8, 16), blocks_per_level=1), noise_schedule=0.0, seed=0)
    image = np.random.default_rng(1).uniform(-0.8, 0.8, (1, 72, 72, 3)).astype("float32")
    whole = model.restore(image, num_steps=2, seed=0, progress_bar=False)

    # Two tiles per axis, [0, 56) and [16, 72). Not exact: zero padding at the tile borders and
    # GroupNorm statistics over a tile instead of the image change the output a little
    # everywhere. A misplaced or unblended tile would differ by about the output's magnitude.
    tiled = restore_tiled(model, image, tile_size=56, overlap=24, num_steps=2, seed=0)
    difference = np.abs(tiled - whole)
    scale = np.abs(whole).mean()
    assert difference.mean() < 0.06 * scale, (difference.mean(), scale)
    assert difference.max() < 0.6 * scale, (difference.max(), scale)


def test_per_step_tiling_runs_inside_one_compiled_loop():
    """The split, the network on groups of tiles and the blend are traced into the sampler's
    loop: the progress-bar (stepwise) run equals the fused one, and on JAX one compile serves
    every step count."""
    model = InDIModel(Pointwise(), noise_schedule=BrownianNoise(0.05), seed=0)
    fused = restore_tiled(model, IMAGES, 16, 4, num_steps=6, seed=2, tile_batch_size=4)
    stepwise = restore_tiled(model, IMAGES, 16, 4, num_steps=6, seed=2, tile_batch_size=4, progress_bar=True)
    np.testing.assert_allclose(stepwise, fused, rtol=0, atol=1e-6)
    for num_steps in (1, 20, 100):
        restore_tiled(model, IMAGES, 16, 4, num_steps=num_steps, seed=2, tile_batch_size=4)
    from keras_indi.samplers.tiling import _tiled_sampler

    sampler = _tiled_sampler(model.network, model.noise_schedule)
    fused_keys = [key for key in sampler._compiled if key[1] == "fused"]
    assert len(fused_keys) == 1
    if BACKEND == "jax":
        import jax

        run = sampler._compiled[fused_keys[0]]
        jitted = [c.cell_contents for c in run.__closure__ if isinstance(c.cell_contents, type(jax.jit(lambda x: x)))]
        assert jitted[0]._cache_size() == 1


@pytest.mark.backend_agnostic
def test_clear_errors():
    model = InDIModel(Pointwise(), seed=0)
    with pytest.raises(ValueError, match="overlap"):
        restore_tiled(model, IMAGES, tile_size=16, overlap=16)
    with pytest.raises(ValueError, match="mode"):
        restore_tiled(model, IMAGES, mode="magic")
    with pytest.raises(ValueError, match="return_trajectory"):
        restore_tiled(model, IMAGES, return_trajectory=True)
    with pytest.raises(ValueError, match="float"):
        restore_tiled(model, (IMAGES * 100).astype("int32"))
    with pytest.raises(ValueError, match="height, width"):
        restore_tiled(model, IMAGES[0, 0])
    with pytest.raises(ValueError, match="value"):
        restore_tiled(model, IMAGES * 300.0)
