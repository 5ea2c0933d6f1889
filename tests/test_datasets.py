"""Tests of keras_indi.datasets: sources, folders, TFDS sources and task pipelines.

Everything runs offline on small data the tests create. NumPy and tf.data tests are
``backend_agnostic`` (one pass only, see tests/conftest.py); `test_pydataset_feeds_model_fit` runs on every
backend.
"""

import os
import subprocess
import sys
import textwrap

import keras
import numpy as np
import pytest
from PIL import Image

from keras_indi.datasets import (
    BUILTIN_IMAGE_NAMES,
    EXTRA_IMAGE_NAMES,
    DatasetConfig,
    DeadLeaves,
    ImageFolder,
    ImagePairs,
    ImageSource,
    PairedPyDataset,
    build_task_datasets,
    builtin_images,
    dead_leaves_images,
    div2k_pairs,
    div2k_tfds,
    dpdd_pairs,
    gopro_pairs,
    gopro_tfds,
    load_image,
    paired_crop,
    paired_image_folder,
    take_arrays,
    tfds_clean_source,
)
from keras_indi.datasets.transforms import bicubic_resize
from keras_indi.degradations.base import Degradation
from conftest import HAS_TENSORFLOW, requires_tensorflow

agnostic = pytest.mark.backend_agnostic
REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


# ---------------------------------------------------------------------------------------------
# Helpers.
# ---------------------------------------------------------------------------------------------
class Darken(Degradation):
    """Seeded per-sample gain: degraded = gain * (clean + 1) - 1."""

    def sample_parameters(self, batch_size, rng):
        return {"gain": rng.uniform(0.3, 0.9, size=batch_size).astype("float32")}

    def apply(self, clean, parameters):
        return (parameters["gain"].reshape(-1, 1, 1, 1) * (clean + 1.0) - 1.0).astype("float32")


class Identity(Degradation):
    def apply(self, clean, parameters):
        return clean.copy()


def save(path, array):
    os.makedirs(os.path.dirname(path), exist_ok=True)
    Image.fromarray(array).save(path)


def random_uint8(rng, shape):
    return rng.integers(0, 256, size=shape, dtype=np.uint8)


def block_image(rng, height_blocks, width_blocks, scale):
    """A target made of constant scale x scale blocks and its exact x`scale` downsample."""
    low = random_uint8(rng, (height_blocks, width_blocks, 3))
    high = np.repeat(np.repeat(low, scale, axis=0), scale, axis=1)
    return low, high


def block_reduce(image, scale):
    h, w, c = image.shape
    return image.reshape(h // scale, scale, w // scale, scale, c).mean(axis=(1, 3))


def expected_upsampled(clean_batch, scale):
    return np.stack(
        [np.clip(bicubic_resize(block_reduce(c, scale), c.shape[:2]), -1, 1) for c in clean_batch]
    )


@pytest.fixture
def pair_folders(tmp_path):
    """Five identical (input, target) pairs of odd size 37x31 (input files are .jpg-free PNGs)."""
    rng = np.random.default_rng(0)
    for i in range(5):
        image = random_uint8(rng, (37, 31, 3))
        save(str(tmp_path / "low" / f"img{i}.png"), image)
        save(str(tmp_path / "high" / f"img{i}.png"), image)
    return tmp_path / "low", tmp_path / "high"


# ---------------------------------------------------------------------------------------------
# Built-in sources.
# ---------------------------------------------------------------------------------------------
@agnostic
def test_builtin_images_offline_rgb_in_range():
    images = builtin_images()
    assert len(images) == len(BUILTIN_IMAGE_NAMES)
    for image in images:
        assert image.dtype == np.float32 and image.ndim == 3 and image.shape[-1] == 3
        assert -1.0 <= image.min() and image.max() <= 1.0
    assert len(builtin_images(names=EXTRA_IMAGE_NAMES)) == len(EXTRA_IMAGE_NAMES)
    gray = builtin_images(names=["camera", "astronaut"], channels=1)
    assert [g.shape for g in gray] == [(512, 512, 1), (512, 512, 1)]
    with pytest.raises(ValueError, match="names"):
        builtin_images(names=["not_a_sample"])


@agnostic
def test_dead_leaves_reproducible_odd_size_and_random_access():
    leaves = DeadLeaves(image_size=(37, 31), seed=3)
    image = leaves[5]
    assert image.shape == (37, 31, 3) and image.dtype == np.float32
    assert -1.0 <= image.min() and image.max() <= 1.0
    np.testing.assert_array_equal(image, DeadLeaves(image_size=(37, 31), seed=3)[5])
    assert not np.array_equal(image, leaves[6])
    assert not np.array_equal(image, DeadLeaves(image_size=(37, 31), seed=4)[5])
    stack = dead_leaves_images(3, image_size=(37, 31), seed=3)
    np.testing.assert_array_equal(stack[2], leaves[2])
    # Piecewise-constant: far fewer colours than pixels; many disks though.
    colours = len(np.unique(image.reshape(-1, 3), axis=0))
    assert 10 < colours < 37 * 31 // 2
    assert DeadLeaves(channels=1, image_size=16)[0].shape == (16, 16, 1)
    with pytest.raises(ValueError, match="min_radius"):
        DeadLeaves(min_radius=0.5, max_radius=0.1)


@agnostic
def test_dead_leaves_occlusion_matches_brute_force():
    """Scan conversion == testing every pixel against every disk (disk k behind 0..k-1)."""

    class BruteForce(DeadLeaves):
        @staticmethod
        def _bbox_hits(cy, cx, radius, height, width):
            ys, xs = np.mgrid[0:height, 0:width]
            py, px = ys.ravel() + 0.5, xs.ravel() + 0.5
            inside = (py[:, None] - cy) ** 2 + (px[:, None] - cx) ** 2 <= radius**2
            hit = inside.any(axis=1)
            return np.flatnonzero(hit), inside[hit].argmax(axis=1)

    for size in [(17, 23), (32, 32)]:
        for index in range(3):
            fast = DeadLeaves(image_size=size, seed=1)[index]
            slow = BruteForce(image_size=size, seed=1)[index]
            np.testing.assert_array_equal(fast, slow)


# ---------------------------------------------------------------------------------------------
# Reading files.
# ---------------------------------------------------------------------------------------------
@agnostic
def test_load_image_conversion_rules(tmp_path):
    rng = np.random.default_rng(0)
    gray = random_uint8(rng, (5, 7))
    Image.fromarray(gray).save(tmp_path / "gray.png")
    rgba = random_uint8(rng, (5, 7, 4))
    Image.fromarray(rgba, mode="RGBA").save(tmp_path / "rgba.png")
    gray16 = rng.integers(0, 65536, size=(5, 7), dtype=np.uint16)
    Image.fromarray(gray16).save(tmp_path / "gray16.png")

    loaded = load_image(tmp_path / "gray.png")
    assert loaded.shape == (5, 7, 3) and loaded.dtype == np.float32
    np.testing.assert_allclose(loaded[..., 1], gray / 127.5 - 1.0, atol=1e-6)
    np.testing.assert_allclose(load_image(tmp_path / "rgba.png"), rgba[..., :3] / 127.5 - 1.0, atol=1e-6)
    np.testing.assert_allclose(load_image(tmp_path / "gray16.png")[..., 0], gray16 / 32767.5 - 1.0, atol=1e-5)
    luma = load_image(tmp_path / "rgba.png", channels=1)
    assert luma.shape == (5, 7, 1)
    with pytest.raises(ValueError, match="not found"):
        load_image(tmp_path / "missing.png")


# ---------------------------------------------------------------------------------------------
# Paired folders.
# ---------------------------------------------------------------------------------------------
@agnostic
def test_paired_image_folder_matches_by_stem(tmp_path):
    rng = np.random.default_rng(1)
    os.makedirs(tmp_path / "tg")
    for name in ["b", "a", "c"]:
        save(str(tmp_path / "in" / f"{name}.png"), random_uint8(rng, (10, 12, 3)))
        Image.fromarray(random_uint8(rng, (10, 12, 3))).save(tmp_path / "tg" / f"{name}.bmp")
    pairs = paired_image_folder(tmp_path / "in", tmp_path / "tg")
    assert isinstance(pairs, ImagePairs) and len(pairs) == 3
    assert pairs.names == ["a", "b", "c"]
    degraded, clean = pairs[1]
    assert degraded.shape == clean.shape == (10, 12, 3)
    np.testing.assert_allclose(clean, load_image(tmp_path / "tg" / "b.bmp"))


@agnostic
def test_unpaired_names_are_listed(tmp_path):
    rng = np.random.default_rng(2)
    for name in ["a", "b", "only_in_input"]:
        save(str(tmp_path / "in" / f"{name}.png"), random_uint8(rng, (8, 8, 3)))
    for name in ["a", "b", "only_in_target"]:
        save(str(tmp_path / "tg" / f"{name}.png"), random_uint8(rng, (8, 8, 3)))
    with pytest.raises(ValueError, match="only_in_input.png") as error:
        paired_image_folder(tmp_path / "in", tmp_path / "tg")
    assert "only_in_target.png" in str(error.value)
    pairs = paired_image_folder(tmp_path / "in", tmp_path / "tg", allow_unpaired=True)
    assert pairs.names == ["a", "b"]


@agnostic
def test_missing_and_empty_folders(tmp_path):
    (tmp_path / "empty").mkdir()
    (tmp_path / "empty" / "notes.txt").write_text("not an image")
    save(str(tmp_path / "tg" / "a.png"), np.zeros((4, 4, 3), np.uint8))
    with pytest.raises(ValueError, match="input_dir.*does not exist"):
        paired_image_folder(tmp_path / "nope", tmp_path / "tg")
    with pytest.raises(ValueError, match="input_dir.*no image files"):
        paired_image_folder(tmp_path / "empty", tmp_path / "tg")
    with pytest.raises(ValueError, match="no image files"):
        build_task_datasets(None, source=str(tmp_path / "empty"), degradation=Darken())


@agnostic
def test_corrupt_file_is_named(tmp_path, pair_folders):
    low, high = pair_folders
    (low / "img2.png").write_bytes(b"definitely not a png")
    with pytest.raises(ValueError, match="img2.png"):
        paired_image_folder(low, high)
    # A valid header with truncated pixel data fails when decoded, naming the file.
    data = (high / "img3.png").read_bytes()
    (low / "img2.png").write_bytes((high / "img2.png").read_bytes())
    (low / "img3.png").write_bytes(data[: len(data) // 2])
    pairs = paired_image_folder(low, high)
    with pytest.raises(ValueError, match="img3.png"):
        pairs[3]


@agnostic
def test_size_mismatch_names_both_files(tmp_path):
    save(str(tmp_path / "in" / "x.png"), np.zeros((10, 12, 3), np.uint8))
    save(str(tmp_path / "tg" / "x.png"), np.zeros((10, 14, 3), np.uint8))
    with pytest.raises(ValueError, match="mismatch") as error:
        paired_image_folder(tmp_path / "in", tmp_path / "tg")
    message = str(error.value)
    assert str(tmp_path / "in" / "x.png") in message and str(tmp_path / "tg" / "x.png") in message
    # With scale=4 the input must be 4x smaller.
    save(str(tmp_path / "in4" / "x.png"), np.zeros((2, 4, 3), np.uint8))
    assert len(paired_image_folder(tmp_path / "in4", tmp_path / "tg", scale=4)) == 1  # floor / ceil
    save(str(tmp_path / "in4" / "x.png"), np.zeros((5, 5, 3), np.uint8))
    with pytest.raises(ValueError, match="4x smaller"):
        paired_image_folder(tmp_path / "in4", tmp_path / "tg", scale=4)


def make_gopro(root, rng, size=(20, 24)):
    for split, sequences in [("train", ["GOPR0001_00_00", "GOPR0002_00_00"]), ("test", ["GOPR0003_00_00"])]:
        for sequence in sequences:
            for frame in ["000001", "000002"]:
                sharp = random_uint8(rng, size + (3,))
                save(str(root / split / sequence / "sharp" / f"{frame}.png"), sharp)
                save(
                    str(root / split / sequence / "blur" / f"{frame}.png"), sharp
                )  # identical: alignment check
                save(str(root / split / sequence / "blur_gamma" / f"{frame}.png"), 255 - sharp)


@agnostic
def test_gopro_layout(tmp_path):
    root = tmp_path / "GOPRO_Large"
    make_gopro(root, np.random.default_rng(3))
    train = gopro_pairs(tmp_path, "train")  # the parent folder works too
    assert len(train) == 4 and train.names[0] == "GOPR0001_00_00/000001"
    assert len(gopro_pairs(root, "test")) == 2
    gamma = gopro_pairs(root, "train", blur="blur_gamma")
    degraded, clean = gamma[0]
    np.testing.assert_allclose(degraded, -clean, atol=1e-6)
    with pytest.raises(ValueError, match="split"):
        gopro_pairs(root, "validation")
    import shutil

    shutil.rmtree(root / "test" / "GOPR0003_00_00" / "sharp")
    with pytest.raises(ValueError, match="GOPR0003_00_00.*sharp"):
        gopro_pairs(root, "test")


@agnostic
def test_dpdd_layout_and_official_validation_split(tmp_path):
    rng = np.random.default_rng(4)
    root = tmp_path / "dd_dp_dataset_png"
    for split, count in [("train", 3), ("val", 2), ("test", 1)]:
        for i in range(count):
            target = random_uint8(rng, (24, 20, 3))
            save(str(root / f"{split}_c" / "target" / f"{split}{i}.png"), target)
            save(str(root / f"{split}_c" / "source" / f"{split}{i}.png"), target)
            save(str(root / f"{split}_l" / "source" / f"{split}{i}.png"), target)
    assert len(dpdd_pairs(tmp_path, "train")) == 3
    assert dpdd_pairs(root, "val").names == ["val0", "val1"]
    with pytest.raises(ValueError, match="val_c"):
        dpdd_pairs(tmp_path / "dd_dp_dataset_png" / "train_c", "val")
    train, val = build_task_datasets(
        "defocus_deblurring", source="dpdd", data_dir=root, image_size=16, batch_size=2, output="numpy"
    )
    assert len(train) == 2 and len(val) == 1  # val_c (2 pairs) is the validation set
    for dataset in (train, val):
        degraded, clean = take_arrays(dataset, 5)
        np.testing.assert_array_equal(degraded, clean)  # identical files: crops stay aligned
    # An explicit degradation degrades the clean targets instead of using the real inputs.
    train, val = build_task_datasets(
        None, source="dpdd", data_dir=root, degradation=Darken(), image_size=16, batch_size=2, output="numpy"
    )
    degraded, clean = take_arrays(train, 2)
    assert (degraded <= clean + 1e-6).all() and not np.allclose(degraded, clean)
    with pytest.raises(ValueError, match="validation_split"):
        build_task_datasets(None, source="dpdd", data_dir=root, validation_split="test", output="numpy")


# ---------------------------------------------------------------------------------------------
# Crops.
# ---------------------------------------------------------------------------------------------
@agnostic
def test_paired_crop_scale_aware_alignment():
    rng = np.random.default_rng(5)
    low, high = block_image(rng, 13, 11, 4)
    low, high = low / 127.5 - 1, high / 127.5 - 1
    for _ in range(20):
        lr_crop, hr_crop = paired_crop(low, high, (16, 24), scale=4, rng=rng)
        assert lr_crop.shape == (4, 6, 3) and hr_crop.shape == (16, 24, 3)
        np.testing.assert_allclose(lr_crop, block_reduce(hr_crop, 4), atol=1e-6)
    with pytest.raises(ValueError, match="divisible"):
        paired_crop(low, high, (18, 24), scale=4, rng=rng)


@agnostic
@pytest.mark.parametrize("output", ["numpy", pytest.param("tf", marks=requires_tensorflow)])
def test_folder_pairs_pipeline_keeps_pairs_aligned(pair_folders, output):
    low, high = pair_folders
    pairs = paired_image_folder(low, high)
    train, val = build_task_datasets(
        None, source=pairs, image_size=(16, 12), batch_size=2, steps_per_epoch=6, output=output, seed=7
    )
    degraded, clean = take_arrays(train, 6)
    assert degraded.shape == (12, 16, 12, 3) and degraded.dtype == np.float32
    np.testing.assert_array_equal(degraded, clean)
    assert len(np.unique(clean.reshape(len(clean), -1), axis=0)) > 6  # crops differ
    degraded, clean = take_arrays(val, 1)
    np.testing.assert_array_equal(degraded, clean)


@agnostic
@pytest.mark.parametrize("output", ["numpy", pytest.param("tf", marks=requires_tensorflow)])
def test_scale_aware_pipeline_alignment(tmp_path, output):
    rng = np.random.default_rng(6)
    for i in range(3):
        low, high = block_image(rng, 13, 11, 4)  # 52x44 target, 13x11 input
        save(str(tmp_path / "DIV2K_train_HR" / f"{i:04d}.png"), high)
        save(str(tmp_path / "DIV2K_train_LR_bicubic" / "X4" / f"{i:04d}x4.png"), low)
        save(str(tmp_path / "DIV2K_valid_HR" / f"{800 + i:04d}.png"), high)
        save(str(tmp_path / "DIV2K_valid_LR_bicubic" / "X4" / f"{800 + i:04d}x4.png"), low)
    pairs = div2k_pairs(tmp_path, "train", scale=4)
    assert pairs.scale == 4 and pairs.names == ["0000", "0001", "0002"]
    train, val = build_task_datasets(
        "super_resolution",
        source="div2k",
        data_dir=tmp_path,
        image_size=(32, 24),
        batch_size=3,
        steps_per_epoch=2,
        output=output,
    )
    for dataset in (train, val):
        degraded, clean = take_arrays(dataset, 2)
        assert degraded.shape == clean.shape and degraded.shape[1:] == (32, 24, 3)
        np.testing.assert_allclose(degraded, expected_upsampled(clean, 4), atol=1e-5)
    with pytest.raises(ValueError, match="divisible"):
        build_task_datasets(
            "super_resolution", source="div2k", data_dir=tmp_path, image_size=30, output="numpy"
        )[0][0]
    # In-memory (degraded, clean) tuples with `scale`.
    arrays = [block_image(rng, 9, 8, 4) for _ in range(3)]
    train, _ = build_task_datasets(None, source=arrays, scale=4, image_size=16, batch_size=3, output=output)
    degraded, clean = take_arrays(train, 1)
    np.testing.assert_allclose(degraded, expected_upsampled(clean, 4), atol=1e-5)


# ---------------------------------------------------------------------------------------------
# Synthetic pairs and pipelines.
# ---------------------------------------------------------------------------------------------
@agnostic
def test_synthetic_pairs_from_array_identity_and_flips():
    rng = np.random.default_rng(8)
    images = random_uint8(rng, (6, 37, 31, 3))
    train, val = build_task_datasets(
        None,
        source=images,
        degradation=Identity(),
        image_size=16,
        batch_size=4,
        steps_per_epoch=10,
        output="numpy",
        validation_fraction=0.34,
    )
    assert isinstance(train, PairedPyDataset) and len(train) == 10
    degraded, clean = take_arrays(train, 10)
    np.testing.assert_array_equal(degraded, clean)
    # Every training crop is a (possibly flipped) window of a training image, and flips occur.
    as_float = images.astype(np.float32) / 127.5 - 1
    kinds = set()
    for crop in clean[:12]:
        for image in as_float:
            for flip_lr in (False, True):
                for flip_ud in (False, True):
                    view = image[:, ::-1] if flip_lr else image
                    view = view[::-1] if flip_ud else view
                    windows = np.lib.stride_tricks.sliding_window_view(view, (16, 16, 3))
                    if (np.abs(windows - crop).max(axis=(-1, -2, -3)) < 1e-6).any():
                        kinds.add((flip_lr, flip_ud))
    assert len(kinds) >= 2
    assert len(val) == 1 and val[0][0].shape == (2, 16, 16, 3)  # 2 held-out images, one crop each


@agnostic
def test_in_memory_sources_convert_each_image_once(monkeypatch):
    """Crops of in-memory images reuse one converted copy (the conversion of a whole photograph
    per crop cost as much as a training step), read-only, with the same crops as before; past
    the cache's byte limit every access converts again; bad images still raise."""
    from keras_indi.datasets import sources

    conversions = []
    original = sources.to_model_image

    def counting(array, *args, **kwargs):
        conversions.append(np.asarray(array).shape)
        return original(array, *args, **kwargs)

    monkeypatch.setattr(sources, "to_model_image", counting)
    images = random_uint8(np.random.default_rng(3), (3, 37, 31, 3))

    def crops(limit):
        monkeypatch.setattr(sources._ConvertedCache, "LIMIT", limit)
        conversions.clear()
        train, _ = build_task_datasets(None, source=images, degradation=Identity(), image_size=16, batch_size=4,
                                       steps_per_epoch=6, seed=5, output="numpy", validation_fraction=0)
        return take_arrays(train, 6)[1], len(conversions)

    limit = sources._ConvertedCache.LIMIT
    uncached, uncached_conversions = crops(0)
    cached, cached_conversions = crops(limit)
    np.testing.assert_array_equal(cached, uncached)  # the cache changes the speed, not the crops
    assert cached_conversions == 3 and uncached_conversions == 24
    source = sources._ArrayImages(list(images), 3)
    assert source[1] is source[1] and not source[1].flags.writeable
    with pytest.raises(ValueError):
        source[0][0, 0, 0] = 0.0  # a caller cannot corrupt what later crops read
    pairs = sources._ArrayPairs([(images[0], images[0])], scale=1, channels=3)
    assert pairs[0] is pairs[0]
    bad = sources._ArrayImages([np.full((8, 8, 3), np.nan, "float32")], 3)
    for _ in range(2):  # a bad image is never cached: it raises on every access
        with pytest.raises(ValueError, match="NaN"):
            bad[0]


@agnostic
def test_seeded_reproducibility_epochs_and_validation_determinism():
    def build(seed, output="numpy"):
        return build_task_datasets(
            None,
            source="builtin",
            degradation=Darken(),
            image_size=(24, 20),
            batch_size=4,
            steps_per_epoch=2,
            seed=seed,
            output=output,
            validation_samples=6,
        )

    train_a, val_a = build(0)
    train_b, _ = build(0)
    first_a = take_arrays(train_a, 2)
    np.testing.assert_array_equal(first_a[0], take_arrays(train_b, 2)[0])
    assert not np.array_equal(first_a[1], take_arrays(build(1)[0], 2)[1])
    # A new epoch draws new crops; validation stays the same.
    val_before = take_arrays(val_a, 2)
    train_a.on_epoch_end()
    val_a.on_epoch_end()
    assert not np.array_equal(first_a[1], take_arrays(train_a, 2)[1])
    np.testing.assert_array_equal(val_before[1], take_arrays(val_a, 2)[1])
    np.testing.assert_array_equal(val_before[0], take_arrays(val_a, 2)[0])
    assert val_before[0].shape == (6, 24, 20, 3)
    # Synthetic degradation is applied (gain < 1 darkens).
    assert (first_a[0] <= first_a[1] + 1e-6).all()
    if HAS_TENSORFLOW:
        train_tf, val_tf = build(0, "tf")
        import tensorflow as tf

        assert isinstance(train_tf, tf.data.Dataset)
        np.testing.assert_array_equal(take_arrays(train_tf, 2)[1], first_a[1])  # epoch 0
        np.testing.assert_array_equal(take_arrays(train_tf, 2)[1], take_arrays(train_a, 2)[1])  # epoch 1
        np.testing.assert_array_equal(take_arrays(val_tf, 2)[0], val_before[0])
        np.testing.assert_array_equal(take_arrays(val_tf, 2)[0], val_before[0])


@agnostic
def test_dead_leaves_source_and_sizes():
    train, val = build_task_datasets(
        None,
        source="dead_leaves",
        degradation=Darken(),
        image_size=(37, 31),
        batch_size=3,
        steps_per_epoch=2,
        output="numpy",
        validation_samples=4,
    )
    degraded, clean = take_arrays(train, 2)
    assert clean.shape == (6, 37, 31, 3)
    assert [b[0].shape[0] for b in val] == [3, 1]  # last validation batch is partial
    leaves = DeadLeaves(min_radius=0.05, max_radius=0.2, seed=5)
    train, _ = build_task_datasets(
        None,
        source=leaves,
        degradation=Darken(),
        image_size=8,
        steps_per_epoch=1,
        batch_size=2,
        output="numpy",
    )
    assert train[0][0].shape == (2, 8, 8, 3)


@agnostic
def test_folder_of_clean_images_and_small_images_are_enlarged(tmp_path):
    rng = np.random.default_rng(9)
    for i in range(4):
        save(str(tmp_path / "photos" / "sub" / f"{i}.png"), random_uint8(rng, (10, 9)))  # gray, tiny
    train, val = build_task_datasets(
        None,
        source=str(tmp_path / "photos"),
        degradation=Darken(),
        image_size=16,
        batch_size=2,
        output="numpy",
        validation_fraction=0.25,
    )
    assert len(train) == 2 and len(val) == 1
    degraded, clean = train[0]
    assert clean.shape == (2, 16, 16, 3)
    np.testing.assert_array_equal(clean[..., 0], clean[..., 2])  # gray replicated to RGB


@agnostic
def test_pipeline_argument_errors(tmp_path, pair_folders):
    with pytest.raises(ValueError, match="task"):
        build_task_datasets("deraining")
    with pytest.raises(ValueError, match="output"):
        build_task_datasets(None, degradation=Darken(), output="torch")
    with pytest.raises(ValueError, match="source"):
        build_task_datasets(None, source=str(tmp_path / "no" / "such" / "dir.png"), degradation=Darken())
    with pytest.raises(ValueError, match="task.*degradation"):
        build_task_datasets(None, source=np.zeros((3, 8, 8, 3), np.float32), output="numpy")
    with pytest.raises(ValueError, match=r"`source` array has float values in \[200, 200\].*uint8"):
        build_task_datasets(None, source=np.full((3, 8, 8, 3), 200.0, np.float32), degradation=Darken())
    with pytest.raises(ValueError, match="at least 2"):
        build_task_datasets(None, source=np.zeros((8, 8, 3), np.uint8), degradation=Darken(), image_size=8)
    with pytest.raises(ValueError, match="image_size"):
        build_task_datasets(None, degradation=Darken(), image_size=0)

    class Shrink(Degradation):
        def apply(self, clean, parameters):
            return clean[:, ::2, ::2]

    with pytest.raises(ValueError, match="same-size"):
        build_task_datasets(None, degradation=Shrink(), image_size=8, output="numpy")[0][0]
    low, high = pair_folders
    with pytest.raises(ValueError, match="too small") as error:
        build_task_datasets(None, source=paired_image_folder(low, high), image_size=64, output="numpy")[0][0]
    assert "img" in str(error.value)
    with pytest.raises(ValueError, match="take_arrays|num_batches"):
        take_arrays([], 0)


# ---------------------------------------------------------------------------------------------
# The options: one DatasetConfig; the sources: one ImageSource protocol.
# ---------------------------------------------------------------------------------------------
@agnostic
def test_dataset_config_validates_normalizes_and_replaces():
    import dataclasses

    config = DatasetConfig(image_size=24, validation_fraction=None, flips=0, dead_leaves_kwargs=None)
    assert config.image_size == (24, 24) and config.validation_fraction == 0.0
    assert config.flips is False and config.dead_leaves_kwargs == {}
    assert DatasetConfig() == DatasetConfig(image_size=(64, 64))  # normalized values compare equal
    bad = {
        "image_size": 0,
        "batch_size": 0,
        "seed": -1,
        "validation_fraction": 1.0,
        "steps_per_epoch": 2.5,
        "validation_samples": True,
        "scale": 0,
        "channels": 2,
        "degradation": "jpeg",
        "output": "torch",
        "degrade_on": "device",
        "validation_split": 3,
        "photo_probability": 1.5,
        "shuffle_buffer": 0,
        "workers": -1,
    }
    for name, value in bad.items():
        with pytest.raises(ValueError, match=name):
            DatasetConfig(**{name: value})
    with pytest.raises(dataclasses.FrozenInstanceError):
        config.batch_size = 4
    # replace: a new, checked config; the original is unchanged.
    wider = dataclasses.replace(config, image_size=(16, 8), batch_size=4)
    assert wider.image_size == (16, 8) and wider.batch_size == 4 and config.batch_size == 16
    with pytest.raises(ValueError, match="batch_size"):
        dataclasses.replace(config, batch_size=0)
    # build_task_datasets: bad config, unknown keyword, keyword errors through the config.
    with pytest.raises(ValueError, match="config"):
        build_task_datasets(None, "builtin", {"image_size": 8})
    with pytest.raises(TypeError, match="imag_size.*image_size"):
        build_task_datasets(None, degradation=Darken(), imag_size=8)
    with pytest.raises(ValueError, match="batch_size"):
        build_task_datasets(None, config=DatasetConfig(degradation=Darken()), batch_size=-1)


@agnostic
@pytest.mark.parametrize("output", ["numpy", pytest.param("tf", marks=requires_tensorflow)])
@pytest.mark.parametrize("source", ["builtin", "array"])
def test_keywords_and_config_give_identical_datasets(output, source):
    import dataclasses

    if source == "array":
        source = random_uint8(np.random.default_rng(14), (5, 30, 26, 3))
    options = dict(
        image_size=(16, 12), batch_size=3, steps_per_epoch=2, validation_samples=4, validation_fraction=0.4, seed=3
    )
    by_keywords = build_task_datasets(None, source=source, degradation=Darken(), output=output, **options)
    config = DatasetConfig(degradation=Darken(), output=output, **options)
    by_config = build_task_datasets(None, source, config)
    # Keywords override the config's fields.
    keywords = {field.name: getattr(config, field.name) for field in dataclasses.fields(config)}
    overridden = build_task_datasets(None, source, DatasetConfig(batch_size=7, seed=9), **keywords)
    # (Each training pipeline is read once: reading it again starts a new epoch.)
    expected, *others = [[take_arrays(d, 2) for d in pipelines] for pipelines in (by_keywords, by_config, overridden)]
    assert expected[0][0].shape == (6, 16, 12, 3) and expected[1][0].shape == (4, 16, 12, 3)
    for arrays in others:
        for pair, expected_pair in zip(arrays, expected):
            for x, y in zip(pair, expected_pair):
                np.testing.assert_array_equal(x, y)


@agnostic
def test_one_source_protocol(pair_folders, tmp_path):
    low, high = pair_folders
    pairs = paired_image_folder(low, high)
    folder = ImageFolder(high)
    for source in (pairs, folder, pairs.clean_images()):
        assert isinstance(source, ImageSource) and not source.streaming
    assert pairs.paired and not folder.paired and pairs.scale == 1
    assert "img3.png" in pairs.describe(3) and pairs.materialize() is pairs
    view = ImageSource.subset(folder, [4, 1])  # the generic view keeps the original names
    assert len(view) == 2 and view.describe(0) == "item 4"
    np.testing.assert_array_equal(view[1], folder[1])
    assert isinstance(tfds_clean_source("mnist"), ImageSource) and tfds_clean_source("mnist").streaming
    assert div2k_tfds().paired and div2k_tfds().clean_images().streaming

    class Gray(ImageSource):
        """A user-defined clean source: flat images."""

        def __len__(self):
            return 4

        def __getitem__(self, index):
            return np.full((20, 18, 3), index / 4 - 0.5, "float32")

    train, val = build_task_datasets(
        None, source=Gray(), degradation=Identity(), image_size=8, batch_size=2, output="numpy", validation_fraction=0.5
    )
    degraded, clean = take_arrays(train, 1)
    assert clean.shape == (2, 8, 8, 3) and len(val) == 1
    np.testing.assert_array_equal(degraded, clean)

    class TinyPairs(ImageSource):
        paired = True

        def __len__(self):
            return 2

        def __getitem__(self, index):
            return np.zeros((4, 4, 3), "float32"), np.zeros((4, 4, 3), "float32")

        def clean_images(self):
            return Gray()

    with pytest.raises(ValueError, match="item [01] is too small"):
        build_task_datasets(None, source=TinyPairs(), image_size=8, output="numpy", validation_fraction=0)[0][0]
    with pytest.raises(TypeError, match="materialize"):
        len(tfds_clean_source("mnist"))


# ---------------------------------------------------------------------------------------------
# TFDS.
# ---------------------------------------------------------------------------------------------
@agnostic
@requires_tensorflow
@pytest.mark.parametrize("output", ["tf", "numpy"])
def test_tfds_clean_source_with_mock_data(output):
    import tensorflow_datasets as tfds

    with tfds.testing.mock_data(num_examples=6):
        source = tfds_clean_source("mnist", split="train")
        train, val = build_task_datasets(
            None, source=source, degradation=Darken(), image_size=32, batch_size=2, output=output
        )
        degraded, clean = take_arrays(train, 2)
        assert clean.shape == (4, 32, 32, 3)  # 28x28 gray digits enlarged, replicated to RGB
        np.testing.assert_array_equal(clean[..., 0], clean[..., 1])
        assert (degraded <= clean + 1e-6).all()
        assert take_arrays(val, 1)[0].shape[1:] == (32, 32, 3)
        # A bare TFDS name works as `source` too.
        train, _ = build_task_datasets(
            "denoising" if _has_real_degradations() else None,
            source="mnist",
            degradation=None if _has_real_degradations() else Darken(),
            image_size=16,
            batch_size=2,
            output=output,
            validation_fraction=0,
        )
        assert take_arrays(train, 1)[0].shape == (2, 16, 16, 3)
        _, val = build_task_datasets(
            None,
            source=source,
            degradation=Darken(),
            image_size=8,
            batch_size=2,
            output=output,
            validation_split="test",
        )
        assert take_arrays(val, 1)[0].shape[1:] == (8, 8, 3)
        with pytest.raises(ValueError, match="image_key|no feature"):
            take_arrays(
                build_task_datasets(
                    None,
                    source=tfds_clean_source("mnist", image_key="photo"),
                    degradation=Darken(),
                    output=output,
                )[0],
                1,
            )


@agnostic
@requires_tensorflow
@pytest.mark.parametrize("output", ["tf", "numpy"])
def test_div2k_tfds_scale_aware_with_mock_data(output):
    import tensorflow as tf
    import tensorflow_datasets as tfds

    rng = np.random.default_rng(10)
    lows, highs = zip(*[block_image(rng, 10 + i, 9, 4) for i in range(4)])

    def as_dataset(self, split, **kwargs):
        def generator():
            for low, high in zip(lows, highs):
                yield {"lr": low, "hr": high}

        spec = {
            "lr": tf.TensorSpec((None, None, 3), tf.uint8),
            "hr": tf.TensorSpec((None, None, 3), tf.uint8),
        }
        return tf.data.Dataset.from_generator(generator, output_signature=spec)

    with tfds.testing.mock_data(as_dataset_fn=as_dataset):
        # manual_dir: TFDS would prepare from the official zips found there (mocked here).
        source = div2k_tfds("bicubic_x4", data_dir="/nonexistent/tfds", manual_dir="/nonexistent/zips")
        assert source.scale == 4 and source.name == "div2k/bicubic_x4"
        train, val = build_task_datasets(
            "super_resolution",
            source=source,
            image_size=(16, 24),
            batch_size=2,
            output=output,
        )
        for dataset in (train, val):
            degraded, clean = take_arrays(dataset, 2)
            assert clean.shape[1:] == (16, 24, 3)
            np.testing.assert_allclose(degraded, expected_upsampled(clean, 4), atol=1e-5)
        # DIV2K for another task (JPEG in the paper): clean HR images + a synthetic degradation.
        train, _ = build_task_datasets(
            None, source=source, degradation=Darken(), image_size=16, batch_size=2, output=output
        )
        degraded, clean = take_arrays(train, 1)
        assert (degraded <= clean + 1e-6).all() and not np.allclose(degraded, clean)
    with pytest.raises(ValueError, match="config"):
        div2k_tfds("bicubic_x5")


@agnostic
@requires_tensorflow
def test_gopro_tfds_builder_from_manual_folder_and_zip(tmp_path):
    import shutil

    make_gopro(tmp_path / "manual" / "GOPRO_Large", np.random.default_rng(11))
    source = gopro_tfds("train", data_dir=tmp_path / "data", manual_dir=tmp_path / "manual")
    examples = list(source.load().as_numpy_iterator())
    assert len(examples) == 4 and {e["sequence"] for e in examples} == {b"GOPR0001_00_00", b"GOPR0002_00_00"}
    # Prepared once: data_dir alone is enough afterwards; "gopro" + data_dir uses TFDS.
    train, val = build_task_datasets(
        "motion_deblurring",
        source="gopro",
        data_dir=tmp_path / "data",
        image_size=16,
        batch_size=2,
        output="tf",
    )
    degraded, clean = take_arrays(train, 2)
    assert degraded.shape == (4, 16, 16, 3)
    np.testing.assert_array_equal(degraded, clean)  # blur files are copies of sharp ones here
    assert take_arrays(val, 5)[0].shape[0] == 2  # the test split
    # The zip as downloaded.
    shutil.make_archive(str(tmp_path / "zipped" / "GOPRO_Large"), "zip", tmp_path / "manual", "GOPRO_Large")
    examples = list(gopro_tfds("test", data_dir=tmp_path / "data2", manual_dir=tmp_path / "zipped").load())
    assert len(examples) == 2
    with pytest.raises(ValueError, match="manual_dir"):
        gopro_tfds("train", data_dir=tmp_path / "empty").load()


# ---------------------------------------------------------------------------------------------
# TensorFlow absent.
# ---------------------------------------------------------------------------------------------
@agnostic
def test_works_without_tensorflow(tmp_path, pair_folders):
    low, high = pair_folders
    script = textwrap.dedent(
        f"""
        import importlib.abc, os, sys
        class Block(importlib.abc.MetaPathFinder):
            def find_spec(self, name, path, target=None):
                if name.split(".")[0] in ("tensorflow", "tensorflow_datasets"):
                    raise ImportError("blocked: " + name)
        sys.meta_path.insert(0, Block())
        import numpy as np
        import keras_indi.datasets as d
        from keras_indi.degradations.base import Degradation
        class Darken(Degradation):
            def sample_parameters(self, n, rng):
                return {{"gain": rng.uniform(0.3, 0.9, size=n).astype("float32")}}
            def apply(self, clean, p):
                return (p["gain"].reshape(-1, 1, 1, 1) * (clean + 1) - 1).astype("float32")
        assert not d.tensorflow_available()
        train, val = d.build_task_datasets(
            None, degradation=Darken(), image_size=16, batch_size=2, steps_per_epoch=2
        )
        assert type(train).__name__ == "PairedPyDataset", type(train)
        x, y = d.take_arrays(train, 2)
        assert x.shape == y.shape == (4, 16, 16, 3) and x.dtype == np.float32
        pairs = d.paired_image_folder({str(low)!r}, {str(high)!r})
        train, val = d.build_task_datasets(None, source=pairs, image_size=8, batch_size=2)
        x, y = d.take_arrays(train, 2)
        assert (x == y).all()
        try:
            d.build_task_datasets(None, degradation=Darken(), output="tf")
        except ValueError as error:
            assert "TensorFlow" in str(error)
        else:
            raise AssertionError("output='tf' without TensorFlow must raise")
        assert not any(m.split(".")[0] == "tensorflow" for m in sys.modules), "tensorflow was imported"
        print("NO-TF OK")
        """
    )
    env = dict(
        os.environ, KERAS_BACKEND="jax", PYTHONPATH=REPO + os.pathsep + os.environ.get("PYTHONPATH", "")
    )
    result = subprocess.run(
        [sys.executable, "-c", script], env=env, capture_output=True, text=True, timeout=180
    )
    assert result.returncode == 0, result.stderr[-3000:]
    assert "NO-TF OK" in result.stdout


# ---------------------------------------------------------------------------------------------
# Every backend: the PyDataset output trains a model.
# ---------------------------------------------------------------------------------------------
def test_pydataset_feeds_model_fit():
    """On every backend (the tf.data output is checked with fit in the TensorFlow pass)."""
    train, val = build_task_datasets(
        None,
        source="dead_leaves",
        degradation=Darken(),
        image_size=8,
        batch_size=4,
        steps_per_epoch=3,
        validation_samples=4,
        output="numpy",
        seed=2,
    )
    inputs = keras.Input((8, 8, 3))
    model = keras.Model(inputs, keras.layers.Conv2D(3, 3, padding="same")(inputs))
    model.compile(optimizer="adam", loss="mae")
    history = model.fit(train, validation_data=val, epochs=2, verbose=0)
    assert len(history.history["loss"]) == 2 and np.isfinite(history.history["val_loss"]).all()
    assert train.sampler.epoch >= 2  # fit advanced the epochs (Keras also calls on_epoch_end on reset)


@agnostic
@requires_tensorflow
def test_tf_data_feeds_model_fit():
    train, val = build_task_datasets(
        None,
        source="dead_leaves",
        degradation=Darken(),
        image_size=8,
        batch_size=4,
        steps_per_epoch=3,
        validation_samples=4,
        output="tf",
        seed=2,
    )
    inputs = keras.Input((8, 8, 3))
    model = keras.Model(inputs, keras.layers.Conv2D(3, 3, padding="same")(inputs))
    model.compile(optimizer="adam", loss="mae")
    history = model.fit(train, validation_data=val, epochs=2, verbose=0, shuffle=False)
    assert len(history.history["loss"]) == 2 and np.isfinite(history.history["val_loss"]).all()


# ---------------------------------------------------------------------------------------------
# degrade_on="model": clean training crops, degraded on the device by InDIModel.
# ---------------------------------------------------------------------------------------------
@agnostic
@pytest.mark.parametrize("output", ["numpy", pytest.param("tf", marks=requires_tensorflow)])
@pytest.mark.parametrize("source", ["builtin", "array"])
def test_degrade_on_model_yields_the_pipeline_clean_crops(output, source):
    from keras_indi.degradations import get_task_degradation

    if source == "array":
        source = random_uint8(np.random.default_rng(12), (5, 30, 26, 3))

    def build(degrade_on):
        return build_task_datasets(
            "denoising",
            source=source,
            image_size=(16, 12),
            batch_size=3,
            steps_per_epoch=2,
            validation_samples=4,
            validation_fraction=0.4,
            output=output,
            seed=5,
            degrade_on=degrade_on,
        )

    train_model, val_model = build("model")
    train_pipe, val_pipe = build("pipeline")
    for _ in range(2):  # two epochs: new crops each epoch, the same in both modes
        clean = take_arrays(train_model, 2)
        _, clean_pipe = take_arrays(train_pipe, 2)
        assert clean.shape == (6, 16, 12, 3) and clean.dtype == np.float32
        np.testing.assert_array_equal(clean, clean_pipe)
        if output == "numpy":
            assert isinstance(train_model[0], np.ndarray)  # one array: fit sees x only
            train_model.on_epoch_end()
            train_pipe.on_epoch_end()
    # Validation stays (degraded, clean) pairs made in the pipeline, identical in both modes.
    degraded, clean = take_arrays(val_model, 2)
    np.testing.assert_array_equal(degraded, take_arrays(val_pipe, 2)[0])
    assert degraded.shape == clean.shape == (4, 16, 12, 3) and not np.allclose(degraded, clean)
    # The matching degradation's layer form accepts these batches.
    layer = get_task_degradation("denoising", seed=5).as_layer()
    assert tuple(keras.ops.shape(layer(clean))) == clean.shape


@agnostic
def test_degrade_on_model_errors(pair_folders):
    from keras_indi.degradations import get_task_degradation

    numpy_only = {"motion_deblurring": "MotionBlur", "jpeg": "JPEGCompression"}
    for task, name in numpy_only.items():
        with pytest.raises(ValueError, match=f"{name}.*NumPy only.*degrade_on='pipeline'"):
            build_task_datasets(task, image_size=8, output="numpy", degrade_on="model")
    with pytest.raises(ValueError, match="Darken.*NumPy only.*degrade_on='pipeline'"):
        build_task_datasets(None, degradation=Darken(), output="numpy", degrade_on="model")
    low, high = pair_folders
    pairs = paired_image_folder(low, high)
    for task in (None, "denoising"):  # explicit pairs are real pairs whatever the task
        with pytest.raises(ValueError, match="real .*pairs.*no synthetic degradation.*degrade_on='pipeline'"):
            build_task_datasets(task, source=pairs, output="numpy", degrade_on="model")
    with pytest.raises(ValueError, match="degrade_on"):
        build_task_datasets("denoising", output="numpy", degrade_on="device")
    # The clean targets of real pairs with a synthetic, layer-capable degradation are fine.
    train, _ = build_task_datasets(
        None,
        source=pairs,
        degradation=get_task_degradation("denoising"),
        image_size=8,
        batch_size=2,
        output="numpy",
        degrade_on="model",
    )
    assert train[0].shape == (2, 8, 8, 3)


@agnostic
def test_degrade_on_model_real_pairs_named_source(tmp_path):
    rng = np.random.default_rng(13)
    for i in range(2):
        low, high = block_image(rng, 4, 4, 4)
        save(str(tmp_path / "DIV2K_train_HR" / f"{i:04d}.png"), high)
        save(str(tmp_path / "DIV2K_train_LR_bicubic" / "X4" / f"{i:04d}x4.png"), low)
        save(str(tmp_path / "DIV2K_valid_HR" / f"{800 + i:04d}.png"), high)
        save(str(tmp_path / "DIV2K_valid_LR_bicubic" / "X4" / f"{800 + i:04d}x4.png"), low)
    kwargs = {"source": "div2k", "data_dir": tmp_path, "image_size": 8, "batch_size": 2, "output": "numpy"}
    with pytest.raises(ValueError, match="source='div2k'.*no synthetic degradation"):
        build_task_datasets("super_resolution", degrade_on="model", **kwargs)
    # Another task on DIV2K's clean targets (as in the paper): synthetic, so on the device.
    train, _ = build_task_datasets("denoising", validation_fraction=0, degrade_on="model", **kwargs)
    assert train[0].shape == (2, 8, 8, 3)


@agnostic
@requires_tensorflow
def test_degrade_on_model_tfds_stream_with_mock_data():
    import tensorflow_datasets as tfds

    with tfds.testing.mock_data(num_examples=6):
        source = tfds_clean_source("mnist", split="train")
        kwargs = {"source": source, "image_size": 16, "batch_size": 2, "steps_per_epoch": 2}
        kwargs.update(output="tf", seed=1)
        train, val = build_task_datasets("denoising", degrade_on="model", **kwargs)
        train_pipe, val_pipe = build_task_datasets("denoising", **kwargs)
        clean = take_arrays(train, 2)
        assert clean.shape == (4, 16, 16, 3)
        np.testing.assert_array_equal(clean, take_arrays(train_pipe, 2)[1])
        degraded, clean = take_arrays(val, 1)
        np.testing.assert_array_equal(degraded, take_arrays(val_pipe, 1)[0])


@pytest.mark.parametrize("output", ["numpy", pytest.param("tf", marks=requires_tensorflow)])
def test_degrade_on_model_feeds_indi_model_fit(output):
    """On every backend: clean-only batches, degraded in InDIModel's train step; validation
    on pipeline-made pairs. (A one-convolution network keeps compilation short.)"""
    from keras_indi.degradations import get_task_degradation
    from keras_indi.models import InDIModel

    train, val = build_task_datasets(
        "super_resolution",
        source="dead_leaves",
        image_size=16,
        batch_size=2,
        steps_per_epoch=2,
        validation_samples=2,
        output=output,
        seed=4,
        degrade_on="model",
    )
    x_t, t = keras.Input((16, 16, 3)), keras.Input(())
    network = keras.Model([x_t, t], keras.layers.Conv2D(3, 3, padding="same")(x_t))
    model = InDIModel(network, degradation=get_task_degradation("super_resolution", seed=4), seed=0)
    model.compile(optimizer="adam")
    history = model.fit(train, validation_data=val, epochs=1, verbose=0, shuffle=False)
    assert np.isfinite(history.history["loss"]).all() and np.isfinite(history.history["val_loss"]).all()
    clean = take_arrays(train, 1)
    degraded = keras.ops.convert_to_numpy(model.degrade(clean))
    assert degraded.shape == clean.shape and not np.allclose(degraded, clean)


# ---------------------------------------------------------------------------------------------
# With the real degradations.
# ---------------------------------------------------------------------------------------------
def _has_real_degradations():
    try:
        from keras_indi.degradations import TASKS, get_task_degradation  # noqa: F401
    except ImportError:
        return False
    return True


@agnostic
@pytest.mark.skipif(not _has_real_degradations(), reason="keras_indi.degradations tasks not available")
def test_every_task_with_real_degradations():
    from keras_indi.degradations import TASKS

    for task in TASKS:
        train, val = build_task_datasets(
            task, image_size=32, batch_size=2, steps_per_epoch=1, validation_samples=2, output="numpy", seed=3
        )
        degraded, clean = train[0]
        assert degraded.shape == clean.shape == (2, 32, 32, 3), task
        assert degraded.dtype == np.float32 and np.isfinite(degraded).all(), task
        assert not np.allclose(degraded, clean), task
        np.testing.assert_array_equal(val[0][0], val[0][0])
