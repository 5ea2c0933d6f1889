"""Start-up: lazy imports, Keras registration in fresh processes, the command line's persistent
compilation cache and its automatic tiling of large images.

Fresh processes (subprocesses) are what these features are about: a test process has imported
everything already.
"""

import importlib
import os
import subprocess
import sys
import textwrap

import keras
import numpy as np
import pytest
from PIL import Image

from keras_indi import InDIModel
from keras_indi.networks import TimeConditionalUNet
from keras_indi.samplers.tiling import choose_tiling, estimate_restore_memory, memory_budget, restore_tiled

from conftest import BACKEND

LAZY_PACKAGES = ("keras_indi", "keras_indi.backend", "keras_indi.datasets", "keras_indi.degradations",
                 "keras_indi.layers", "keras_indi.metrics", "keras_indi.samplers")


def run_python(code, **environment):
    """Run `code` in a fresh interpreter (this backend unless given); its stdout."""
    env = dict(os.environ, KERAS_BACKEND=BACKEND, TF_CPP_MIN_LOG_LEVEL="3", **environment)
    result = subprocess.run(
        [sys.executable, "-c", textwrap.dedent(code)], capture_output=True, text=True, env=env, timeout=600
    )
    assert result.returncode == 0, result.stdout[-2000:] + result.stderr[-4000:]
    return result.stdout


def tiny_model():
    model = InDIModel(TimeConditionalUNet(widths=(8, 16), blocks_per_level=1), noise_schedule="brownian", seed=0)
    model(np.zeros((1, 16, 16, 3), "float32"))  # builds the network and the model
    return model


@pytest.fixture(scope="module")
def saved_model(tmp_path_factory):
    """A tiny saved InDIModel, and its restoration of a fixed input (path, input, output)."""
    folder = tmp_path_factory.mktemp("startup")
    model = tiny_model()
    path = str(folder / "tiny.keras")
    model.save(path)
    degraded = np.random.default_rng(0).uniform(-0.9, 0.9, (2, 24, 20, 3)).astype("float32")
    np.save(folder / "degraded.npy", degraded)
    expected = model.restore(degraded, num_steps=3, seed=5, progress_bar=False)
    return path, str(folder / "degraded.npy"), expected


# -- lazy imports -----------------------------------------------------------------------------
@pytest.mark.backend_agnostic
def test_import_and_help_import_neither_keras_nor_tensorflow():
    out = run_python(
        """
        import contextlib, io, sys
        import keras_indi
        from keras_indi.apps import cli

        with contextlib.redirect_stdout(io.StringIO()):
            for argv in (["--help"], ["restore", "--help"], ["train", "--help"], ["--version"]):
                try:
                    cli.main(argv)
                except SystemExit as exit:
                    assert exit.code in (0, None), (argv, exit.code)
        print("HEAVY", sorted(m for m in ("keras", "tensorflow", "jax", "torch", "numpy") if m in sys.modules))
        """
    )
    assert "HEAVY []" in out


@pytest.mark.backend_agnostic
@pytest.mark.parametrize("package", LAZY_PACKAGES)
def test_every_lazy_name_resolves_where_it_is_defined(package):
    module = importlib.import_module(package)
    for name, source in module._NAMES.items():
        defining = importlib.import_module(f"{package}.{source}")
        assert getattr(module, name) is getattr(defining, name), name
    assert set(module.__all__) <= set(dir(module))
    for name in module.__all__:
        getattr(module, name)
    with pytest.raises(AttributeError):
        getattr(module, "no_such_name")
    assert not hasattr(module, "__wrapped__")


@pytest.mark.backend_agnostic
def test_serializable_classes_table_lists_every_registered_class():
    from keras_indi.api_export import SERIALIZABLE_CLASSES, _Placeholder, register_serializables

    register_serializables()
    registry = keras.saving.get_custom_objects()
    registered = {
        name.split(">", 1)[1]: cls.__module__
        for name, cls in registry.items()
        if name.startswith("keras_indi>") and cls.__module__.startswith("keras_indi.")
        and cls.__module__ != "keras_indi.api_export"  # the decorator's own doctest
    }
    assert registered == SERIALIZABLE_CLASSES
    assert not any(isinstance(cls, type) and issubclass(cls, _Placeholder) for cls in registry.values())


LOAD_AND_RESTORE = """
    import numpy as np
    model = keras.saving.load_model({path!r})
    restored = model.restore(np.load({degraded!r}), num_steps=3, seed=5, progress_bar=False)
    np.save({output!r}, restored)
    print(type(model).__name__)
"""


@pytest.mark.parametrize(
    "imports",
    [
        # keras_indi before Keras, nothing of it used (a find_spec that does not import in between)
        "import importlib.util, keras_indi\nimportlib.util.find_spec('keras')\nimport keras",
        "import keras\nfrom keras_indi.models.indi_model import InDIModel",  # one module, not the package
    ],
    ids=["package-then-keras", "one-module"],
)
def test_saved_model_loads_in_a_fresh_process(saved_model, imports, tmp_path):
    path, degraded, expected = saved_model
    output = str(tmp_path / "restored.npy")
    code = imports + "\n" + textwrap.dedent(LOAD_AND_RESTORE).format(path=path, degraded=degraded, output=output)
    assert "InDIModel" in run_python(code)
    np.testing.assert_array_equal(np.load(output), expected)


# -- the persistent compilation cache of the command line -------------------------------------
@pytest.mark.skipif(BACKEND != "jax", reason="a JAX cache")
def test_cli_restore_fills_and_reuses_the_compilation_cache(saved_model, tmp_path):
    path = saved_model[0]
    image = tmp_path / "noisy.png"
    Image.fromarray(np.random.default_rng(1).integers(0, 256, (24, 20, 3), dtype=np.uint8)).save(image)
    cache = tmp_path / "cache"
    # As the console script runs it (`run`: a restore ends with `exit_quickly`, which still
    # runs the atexit functions and flushes what they print).
    command = """
        import atexit, sys
        from keras_indi.apps.cli import run
        atexit.register(lambda: print("keras imported:", "keras" in sys.modules))
        sys.exit(run(["restore", {path!r}, {image!r}, "--output-dir", {out!r}, "--steps", "2"]))
    """
    outputs, printed = [], []
    for run in ("cold", "warm"):
        out = str(tmp_path / run)
        printed.append(run_python(command.format(path=path, image=str(image), out=out),
                                  KERAS_INDI_COMPILATION_CACHE=str(cache), KERAS_INDI_RESTORE_PROGRAMS="1"))
        assert cache.is_dir() and os.listdir(cache), "nothing was cached"
        outputs.append(np.asarray(Image.open(os.path.join(out, "noisy.png"))))
    np.testing.assert_array_equal(outputs[0], outputs[1])
    # The warm run used the program the cold one saved (keras_indi.backend.restore_programs).
    assert "keras imported: True" in printed[0] and "keras imported: False" in printed[1]
    assert any(name.startswith("restore-program-") for name in os.listdir(cache))
    # The same image as the library gives (the CLI's faster weight initialization is overwritten).
    from keras_indi.datasets import load_image

    restored = keras.saving.load_model(path).restore(load_image(image, channels=3)[None], num_steps=2, seed=0,
                                                     progress_bar=False)[0]
    expected = np.round(np.clip((restored + 1.0) / 2.0, 0.0, 1.0) * 255.0)
    assert np.max(np.abs(outputs[0].astype("float32") - expected)) <= 1.0
    # Switched off: nothing is written (the default folder is under XDG_CACHE_HOME).
    home = tmp_path / "xdg"
    run_python(command.format(path=path, image=str(image), out=str(tmp_path / "off")),
               KERAS_INDI_COMPILATION_CACHE="0", XDG_CACHE_HOME=str(home))
    assert not (home / "keras-indi").exists()


# -- automatic tiling -------------------------------------------------------------------------
@pytest.mark.backend_agnostic
def test_choose_tiling_tiles_only_what_does_not_fit():
    network = TimeConditionalUNet(widths=(32, 64), blocks_per_level=1)
    two_k = (2048, 2048, 3)
    whole = estimate_restore_memory(network, two_k)
    assert choose_tiling(network, two_k, memory_limit=2 * whole) is None
    # A 24 GiB machine with half of it free: 2x2 tiles of 1040 px, as many per call as fit.
    tile, per_call = choose_tiling(network, two_k, memory_limit="12G")
    assert tile == 1040 and 1 <= per_call <= 8
    assert estimate_restore_memory(network, (per_call, tile, tile, 3)) <= 12 * 2**30
    # Less memory: smaller tiles, never below the minimum, always a multiple of 16 above the overlap.
    sizes = [choose_tiling(network, two_k, memory_limit=f"{gib}G")[0] for gib in (8, 2, 1, 0.25, 0.01)]
    assert sizes == sorted(sizes, reverse=True) and sizes[-1] == 128
    assert all(size % 16 == 0 and size > 32 for size in sizes)
    # Attention at a high-resolution level is quadratic in the tokens: tiles even for 1024 px.
    attention = TimeConditionalUNet(widths=(32, 64, 128), attention_levels=(1,))
    assert choose_tiling(network, (1024, 1024, 3), memory_limit="12G") is None
    assert choose_tiling(attention, (1024, 1024, 3), memory_limit="12G") is not None


@pytest.mark.backend_agnostic
def test_memory_budget_reads_the_environment(monkeypatch):
    monkeypatch.setenv("KERAS_INDI_MEMORY_LIMIT", "3G")
    assert memory_budget() == 3 * 2**30
    assert memory_budget("100M") == 100 * 2**20 and memory_budget(12345) == 12345
    monkeypatch.delenv("KERAS_INDI_MEMORY_LIMIT")
    budget = memory_budget()
    assert budget is None or budget > 0
    with pytest.raises(ValueError, match="8G"):
        memory_budget("lots")


@pytest.mark.backend_agnostic
def test_cli_restore_tiles_automatically_when_memory_is_short(saved_model, tmp_path, monkeypatch, capsys):
    from keras_indi.apps.cli import main

    path = saved_model[0]
    pixels = np.random.default_rng(2).integers(0, 256, (300, 200, 3), dtype=np.uint8)
    Image.fromarray(pixels).save(tmp_path / "big.png")
    model = keras.saving.load_model(path)
    budget = 20 * 2**20
    plan = choose_tiling(model.network, pixels.shape, memory_limit=budget)
    assert plan is not None and plan[0] < 300
    monkeypatch.setenv("KERAS_INDI_MEMORY_LIMIT", str(budget))
    out = tmp_path / "out"
    assert main(["restore", path, str(tmp_path / "big.png"), "--output-dir", str(out), "--steps", "2"]) == 0
    assert "tiled" in capsys.readouterr().out
    expected = restore_tiled(model, pixels.astype("float32") / 127.5 - 1.0, tile_size=plan[0], overlap=32,
                             tile_batch_size=plan[1], num_steps=2, seed=0)
    written = np.asarray(Image.open(out / "big.png"), "float32") / 127.5 - 1.0
    assert np.max(np.abs(written - np.clip(expected, -1, 1))) <= 1.01 / 127.5
    # With enough memory the same command restores the whole image.
    monkeypatch.setenv("KERAS_INDI_MEMORY_LIMIT", "64G")
    assert main(["restore", path, str(tmp_path / "big.png"), "--output-dir", str(tmp_path / "whole"), "--steps", "2"]) == 0
    assert "tiled" not in capsys.readouterr().out


def test_loading_weights_gives_the_same_model_and_restores_the_initializers():
    # Inside the context the throw-away initial weights may be placeholders (zeros on JAX), but
    # a preset loaded there restores exactly as one loaded outside, and afterwards the
    # initializers draw random numbers again.
    from keras_indi.backend.compilation_cache import loading_weights
    from keras_indi.presets import PRESETS_DIRECTORY, list_presets

    path = os.path.join(PRESETS_DIRECTORY, list_presets()["denoising_regression"]["file"])
    plain = keras.saving.load_model(path)
    with loading_weights():
        inside = keras.saving.load_model(path)
    image = np.random.default_rng(0).uniform(-1, 1, (1, 20, 24, 3)).astype("float32")
    expected = plain.restore(image, num_steps=2, seed=0, progress_bar=False)
    np.testing.assert_array_equal(inside.restore(image, num_steps=2, seed=0, progress_bar=False), expected)
    weights = keras.initializers.GlorotUniform(seed=1)((8, 8))
    assert float(np.std(keras.ops.convert_to_numpy(weights))) > 0.1
    assert float(np.max(keras.ops.convert_to_numpy(keras.initializers.Ones()((3,))))) == 1.0
    assert isinstance(inside, InDIModel)
