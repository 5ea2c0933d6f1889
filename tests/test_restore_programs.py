"""Saved restoration programs (`keras_indi.backend.restore_programs`): a repeated
``keras-indi restore`` on JAX runs the saved, compiled sampler loop without importing Keras.

The fresh-process check (no Keras import, same PNG as the first run) is
``tests/test_startup.py::test_cli_restore_fills_and_reuses_the_compilation_cache``.
"""

import json
import os

import numpy as np
import pytest

from keras_indi import InDIModel
from keras_indi.backend import restore_programs
from keras_indi.backend.restore_programs import (
    configured_keras_backend,
    file_digest,
    programs_folder,
    restore_and_save,
    saved_restorer,
)
from keras_indi.networks import TimeConditionalUNet

from conftest import BACKEND

jax_only = pytest.mark.skipif(BACKEND != "jax", reason="saved programs are JAX executables")


def tiny_model(seed=0):
    model = InDIModel(TimeConditionalUNet(widths=(8, 16), blocks_per_level=1), noise_schedule="brownian", seed=seed)
    model(np.zeros((1, 16, 16, 3), "float32"))
    return model


@pytest.fixture
def saved(tmp_path):
    """A tiny saved model, an odd-sized image and an empty programs folder."""
    model = tiny_model()
    path = str(tmp_path / "tiny.keras")
    model.save(path)
    image = np.random.default_rng(0).uniform(-0.9, 0.9, (31, 37, 3)).astype("float32")
    return model, path, image, str(tmp_path / "programs")


@jax_only
def test_saved_program_gives_the_pixels_of_the_keras_path(saved):
    model, path, image, folder = saved
    first = restore_and_save(model, file_digest(path), image, num_steps=3, seed=5, folder=folder)
    expected = model.restore(image[None], num_steps=3, seed=5, progress_bar=False)[0]
    np.testing.assert_allclose(first, expected, atol=1e-6)
    restorer = saved_restorer(path, folder=folder)
    assert restorer is not None
    assert (restorer.channels, restorer.regression) == (3, False)
    np.testing.assert_array_equal(restorer.restore(image, 3, 5), first)
    # Step count, seed and start time are arguments of the one saved program.
    again = restorer.restore(image, 5, 1, t_start=0.6)
    expected = model.restore(image[None], num_steps=5, seed=1, t_start=0.6, progress_bar=False)[0]
    np.testing.assert_allclose(again, expected, atol=1e-6)
    # Another image size has no program yet: the caller restores it the usual way.
    assert restorer.restore(image[:16], 3, 5) is None


@jax_only
def test_a_changed_model_file_is_not_reused(saved):
    model, path, image, folder = saved
    restore_and_save(model, file_digest(path), image, num_steps=2, seed=0, folder=folder)
    assert saved_restorer(path, folder=folder) is not None
    tiny_model(seed=1).save(path)  # new weights under the same name
    assert saved_restorer(path, folder=folder) is None


@jax_only
def test_damaged_entries_are_removed_and_skipped(saved):
    model, path, image, folder = saved
    restore_and_save(model, file_digest(path), image, num_steps=2, seed=0, folder=folder)
    programs = [n for n in os.listdir(folder) if n.startswith("restore-program-")]
    assert len(programs) == 1
    with open(os.path.join(folder, programs[0]), "wb") as file:
        file.write(b"not a program")
    assert saved_restorer(path, folder=folder).restore(image, 2, 0) is None
    assert not os.path.exists(os.path.join(folder, programs[0]))
    (model_entry,) = [n for n in os.listdir(folder) if n.startswith("restore-model-")]
    with open(os.path.join(folder, model_entry), "wb") as file:
        file.write(b"\x00" * 10)
    assert saved_restorer(path, folder=folder) is None
    assert not os.path.exists(os.path.join(folder, model_entry))


@jax_only
def test_an_image_over_the_memory_budget_is_left_to_the_tiled_path(saved, monkeypatch):
    model, path, image, folder = saved
    restore_and_save(model, file_digest(path), image, num_steps=2, seed=0, folder=folder)
    monkeypatch.setenv("KERAS_INDI_MEMORY_LIMIT", "1K")
    assert saved_restorer(path, folder=folder).restore(image, 2, 0) is None
    assert len([n for n in os.listdir(folder) if n.startswith("restore-program-")]) == 1  # kept


@pytest.mark.skipif(BACKEND == "jax", reason="the other backends")
def test_nothing_is_saved_on_other_backends(saved):
    model, path, image, folder = saved
    assert restore_and_save(model, file_digest(path), image, num_steps=2, seed=0, folder=folder) is None
    assert not os.path.exists(folder)


@pytest.mark.backend_agnostic
def test_the_keras_backend_is_found_without_importing_keras(tmp_path):
    assert configured_keras_backend({"KERAS_BACKEND": "jax", "KERAS_HOME": str(tmp_path)}) == "jax"
    assert configured_keras_backend({"KERAS_HOME": str(tmp_path)}) == "tensorflow"  # no keras.json
    (tmp_path / "keras.json").write_text(json.dumps({"backend": "jax", "floatx": "float32"}))
    assert configured_keras_backend({"KERAS_HOME": str(tmp_path)}) == "jax"
    (tmp_path / "keras.json").write_text("{not json")
    assert configured_keras_backend({"KERAS_HOME": str(tmp_path)}) == "tensorflow"


@pytest.mark.backend_agnostic
def test_programs_are_switched_off_with_either_variable(tmp_path):
    on = {"KERAS_BACKEND": "jax", "KERAS_INDI_COMPILATION_CACHE": str(tmp_path)}
    assert programs_folder(on) == str(tmp_path)
    assert programs_folder(dict(on, KERAS_INDI_RESTORE_PROGRAMS="0")) is None
    assert programs_folder(dict(on, KERAS_BACKEND="tensorflow")) is None


@pytest.mark.backend_agnostic
def test_program_keys_tell_shapes_tables_and_models_apart():
    key = restore_programs.program_key("a" * 64, (31, 37, 3), 10, "cpu")
    assert key == restore_programs.program_key("a" * 64, (31, 37, 3), 100, "cpu")  # one table bucket
    assert key != restore_programs.program_key("a" * 64, (31, 37, 3), 200, "cpu")
    assert key != restore_programs.program_key("a" * 64, (37, 31, 3), 10, "cpu")
    assert key != restore_programs.program_key("b" * 64, (31, 37, 3), 10, "cpu")
    assert key != restore_programs.program_key("a" * 64, (31, 37, 3), 10, "gpu")


@jax_only
def test_cli_mixes_saved_programs_and_the_keras_path(saved, tmp_path, monkeypatch, capsys):
    """A folder whose image sizes are partly saved: those run from the programs, the new size
    through Keras (saving it), and every PNG equals the one of a run with programs off."""
    from PIL import Image

    from keras_indi.apps.cli import main

    _, path, _, folder = saved
    inputs = tmp_path / "inputs"
    inputs.mkdir()
    rng = np.random.default_rng(3)
    Image.fromarray(rng.integers(0, 256, (24, 20, 3), dtype=np.uint8)).save(inputs / "a.png")
    monkeypatch.setenv("KERAS_INDI_COMPILATION_CACHE", folder)
    monkeypatch.setenv("KERAS_INDI_RESTORE_PROGRAMS", "1")

    def restore(output, **environment):
        for name, value in environment.items():
            monkeypatch.setenv(name, value)
        assert main(["restore", path, str(inputs), "--output-dir", str(tmp_path / output), "--steps", "2"]) == 0
        return capsys.readouterr().out

    restore("first")  # saves the program of a.png's size
    Image.fromarray(rng.integers(0, 256, (16, 28, 3), dtype=np.uint8)).save(inputs / "b.png")
    printed = restore("second")  # a.png from its program, b.png through Keras
    assert "[1/2]" in printed and "[2/2]" in printed and printed.count("Restored 2 image(s)") == 1
    assert len([n for n in os.listdir(folder) if n.startswith("restore-program-")]) == 2
    restore("reference", KERAS_INDI_RESTORE_PROGRAMS="0")
    for name in ("a.png", "b.png"):
        reference = np.asarray(Image.open(tmp_path / "reference" / name))
        np.testing.assert_array_equal(np.asarray(Image.open(tmp_path / "second" / name)), reference)
