"""Trained presets: every shipped file loads offline on this backend and restores; metadata are
complete; the training script reproduces a preset's pipeline in fast mode."""

import json
import os
import subprocess
import sys

import numpy as np
import pytest

import keras_indi
from keras_indi.presets import PRESETS_DIRECTORY, list_presets
from keras_indi.presets.recipes import HELD_OUT_IMAGES, TRAINING_IMAGES, clean_crops, make_pairs, training_photographs
from keras_indi.presets.training import PRESETS

REQUIRED = {"task", "method", "degradation", "data", "network", "training_steps", "train_seconds", "backend", "date", "metrics"}
ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


def test_every_preset_ships_with_complete_metadata_and_within_the_size_limits():
    presets = list_presets()
    assert set(presets) <= set(PRESETS), "every shipped preset is defined in keras_indi.presets.training.PRESETS"
    assert {"denoising", "denoising_regression", "super_resolution_4x", "super_resolution_4x_regression"} <= set(presets)
    total = 0
    for name, metadata in presets.items():
        assert REQUIRED <= set(metadata), (name, REQUIRED - set(metadata))
        size = os.path.getsize(os.path.join(PRESETS_DIRECTORY, metadata["file"]))
        assert size <= 5 * 2**20, f"{name} is {size / 2**20:.1f} MB"
        total += size
        rows = metadata["metrics"]["held_out_crops"]["rows"]
        assert rows[0]["num_steps"] == 0 and all(np.isfinite(row["psnr"]) for row in rows)
        if metadata["method"] == "regression":
            assert presets[metadata["twin"]]["training_steps"] == metadata["training_steps"]
    assert total <= 40 * 2**20


@pytest.mark.parametrize("name", sorted(list_presets()))
def test_every_preset_loads_offline_and_restores_any_size(name):
    model = keras_indi.InDIModel.from_preset(name)
    assert isinstance(model, keras_indi.InDIModel)
    image = np.random.default_rng(0).uniform(-1, 1, (1, 37, 31, 3)).astype("float32")
    restored = model.restore(image, num_steps=2, seed=0, progress_bar=False)
    assert restored.shape == image.shape and np.all(np.isfinite(restored))


def test_unknown_preset_is_a_clear_error():
    with pytest.raises(ValueError, match="Available presets"):
        keras_indi.InDIModel.from_preset("denoisng")


@pytest.mark.backend_agnostic
def test_training_and_held_out_images_never_overlap():
    assert not set(TRAINING_IMAGES) & set(HELD_OUT_IMAGES)
    degraded, clean = make_pairs("super_resolution_4x", 4, 32, seed=0, held_out=True)
    assert degraded.shape == clean.shape == (4, 32, 32, 3)


@pytest.mark.backend_agnostic
def test_training_photographs_at_several_scales_feed_the_crops():
    full = training_photographs(("camera",))
    images = training_photographs(("camera",), scales=(1.0, 0.5, 0.25))
    assert [image.shape for image in images] == [(512, 512, 3), (256, 256, 3), (128, 128, 3)]
    assert np.array_equal(images[0], full[0]) and all(-1.0 <= image.min() and image.max() <= 1.0 for image in images)
    # a downscaled photograph keeps its mean colour (anti-aliased, not subsampled)
    assert abs(float(images[2].mean()) - float(full[0].mean())) < 0.02
    crops = clean_crops("denoising", 6, 32, seed=0, images=images[2:], photo_probability=1.0)
    assert crops.shape == (6, 32, 32, 3)
    for bad in ((), (0.0,), (1.5,)):
        with pytest.raises(ValueError, match="scales"):
            training_photographs(("camera",), scales=bad)


@pytest.mark.backend_agnostic
def test_training_script_fast_mode_writes_a_loadable_preset(tmp_path):
    environment = {**os.environ, "KERAS_BACKEND": os.environ.get("KERAS_BACKEND", "tensorflow")}
    command = [sys.executable, os.path.join(ROOT, "scripts", "train_presets.py"), "denoising_regression", "--fast",
               "--steps", "2", "--verbose", "0", "--output-dir", str(tmp_path)]
    result = subprocess.run(command, capture_output=True, text=True, env=environment, timeout=600)
    assert result.returncode == 0, result.stderr[-2000:]
    metadata = json.loads((tmp_path / "presets.json").read_text())
    assert metadata["denoising_regression"]["training_steps"] == 2
    model = keras_indi.load_preset("denoising_regression", directory=str(tmp_path))
    assert model.time_distribution.get_config()  # a working InDIModel
    refused = subprocess.run(command[:-2] + ["--output-dir", PRESETS_DIRECTORY], capture_output=True, text=True,
                             env=environment, timeout=300)
    assert refused.returncode == 2 and "outside the package" in refused.stderr
