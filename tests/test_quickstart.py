"""`keras-indi quickstart`: regression vs InDI end to end, on images and on the 2D toy."""

import importlib.util
import json
import os
import subprocess
import sys

import pytest

from keras_indi.apps.cli import main
from keras_indi.apps.quickstart import PRESETS, resolve_settings

REPORT_FILES = (
    "report.md", "tradeoff.md", "tradeoff.csv", "tradeoff.json", "tradeoff_plot.png",
    "tradeoff_grid.png", "indi.keras", "regression.keras", "history.json", "settings.json",
)


@pytest.mark.backend_agnostic
def test_tiny_quickstart_writes_the_whole_report_and_never_overwrites(tmp_path, capsys):
    output = tmp_path / "report"
    assert main(["quickstart", "--tiny", "--quiet", "--output", str(output)]) == 0
    for name in REPORT_FILES:
        assert (output / name).is_file(), name
    table = json.loads((output / "tradeoff.json").read_text())
    assert [(row["method"], row["num_steps"]) for row in table["rows"]] == [
        ("InDI", 1), ("InDI", 2), ("regression", 1),
    ]
    assert {"psnr", "ssim", "swd", "power_spectrum"} <= set(table["metrics"])
    history = json.loads((output / "history.json").read_text())
    assert set(history) >= {"indi", "regression", "training_seconds"}
    settings = json.loads((output / "settings.json").read_text())
    assert settings["task"] == "denoising" and settings["preset"] == "tiny"
    report = (output / "report.md").read_text()
    assert "| regression | 1 |" in report and "keras-indi restore" in report
    assert f"keras-indi restore {output / 'indi.keras'}" in report  # this run's own model
    # --quiet hides the progress, never where the report is.
    assert f"Report written to {output}" in capsys.readouterr().out

    before = {name: os.path.getmtime(output / name) for name in REPORT_FILES}
    with pytest.raises(SystemExit) as raised:
        main(["quickstart", "--tiny", "--quiet", "--output", str(output)])
    assert raised.value.code == 2
    assert "--overwrite" in capsys.readouterr().err
    assert {name: os.path.getmtime(output / name) for name in REPORT_FILES} == before


@pytest.mark.backend_agnostic
def test_toy_quickstart(tmp_path, capsys):
    output = tmp_path / "toy"
    assert main(["quickstart", "--task", "toy", "--tiny", "--quiet", "--output", str(output)]) == 0
    for name in ("results.md", "results.csv", "results.json", "points.png", "indi.keras", "regression.keras"):
        assert (output / name).is_file(), name
    rows = json.loads((output / "results.json").read_text())["rows"]
    assert {row["method"] for row in rows} == {"regression", "indi"}
    # L2, whose optimum is the posterior mean: with L1 (a median) the toy's regression lands on a
    # mode and hides the paper's "regression to the mean".
    import keras

    for name in ("regression", "indi"):
        assert keras.saving.load_model(str(output / f"{name}.keras"), compile=False).loss_norm == "l2"
    # The toy model restores 2D points, not images: `restore` says so instead of failing deep inside.
    import numpy as np
    from PIL import Image

    Image.fromarray(np.zeros((8, 8, 3), np.uint8)).save(tmp_path / "photo.png")
    with pytest.raises(SystemExit) as raised:
        main(["restore", str(output / "indi.keras"), str(tmp_path / "photo.png"), "--output-dir", str(tmp_path / "out")])
    assert raised.value.code == 2
    assert "not images" in capsys.readouterr().err


@pytest.mark.backend_agnostic
def test_toy_plot_titles_and_tick_labels(tmp_path):
    """Singular "1 step", and tick labels that do not overlap between the panels."""
    import matplotlib

    matplotlib.use("Agg")
    import numpy as np
    from matplotlib.backends.backend_agg import FigureCanvasAgg

    from keras_indi.apps.quickstart import _plot

    points = np.random.default_rng(0).uniform(-1.4, 1.4, (64, 2)).astype("float32")
    restorations = {("regression", 1): points, **{("indi", n): points for n in (1, 5, 100)}}
    figure = _plot(points, restorations, tmp_path / "points.png")
    assert [axis.get_title() for axis in figure.axes] == [
        "degraded input", "regression (1 step)", "InDI, 1 step", "InDI, 5 steps", "InDI, 100 steps",
    ]
    FigureCanvasAgg(figure).draw()
    renderer = figure.canvas.get_renderer()
    boxes = [
        label.get_window_extent(renderer)
        for axis in figure.axes
        for label in axis.get_xticklabels()
        if label.get_visible() and label.get_text()
    ]
    assert len(boxes) >= 3 * len(figure.axes)
    for index, box in enumerate(boxes):
        for other in boxes[index + 1 :]:
            assert not box.overlaps(other), (box, other)


@pytest.mark.backend_agnostic
def test_repository_report_points_at_no_uncommitted_file():
    """docs/quickstart/report.md (whose .keras files git ignores) tells the reader to write the
    models first; the report of anyone else's run uses its own model."""
    from keras_indi.apps.quickstart import REPOSITORY_REPORT, _next_steps

    report_path = os.path.join(REPOSITORY_REPORT, "report.md")
    if not os.path.isfile(report_path):
        pytest.skip("not a source checkout (no docs/quickstart/report.md)")
    with open(report_path) as file:
        report = file.read()
    assert "docs/quickstart/indi.keras" not in report and "docs/quickstart/regression.keras" not in report
    assert "\n".join(_next_steps(REPOSITORY_REPORT, "denoising")) in report
    assert "keras-indi quickstart --task denoising --output indi-quickstart" in report
    for image in ("presets_zoom.png", "presets_grid.png", "tradeoff_plot.png", "tradeoff_grid.png"):
        if f"({image})" in report:
            assert os.path.isfile(os.path.join(REPOSITORY_REPORT, image)), image
    own = "\n".join(_next_steps("my-report", "jpeg"))
    assert "keras-indi restore my-report/indi.keras" in own and "keras-indi quickstart" not in own


@pytest.mark.backend_agnostic
def test_presets_and_overrides():
    cpu = resolve_settings("jpeg", "cpu")
    assert cpu["widths"] == (16, 32) and 32 <= cpu["image_size"] <= 48
    assert 200 <= cpu["epochs"] * cpu["steps_per_epoch"] <= 600  # "a few hundred steps"
    gpu = resolve_settings("jpeg", "gpu")
    assert gpu["image_size"] > cpu["image_size"] and len(gpu["widths"]) > len(cpu["widths"])
    tiny = resolve_settings("jpeg", "gpu", tiny=True, epochs=2, step_counts=[1, 3])
    assert tiny["widths"] == PRESETS["tiny"]["widths"] and tiny["epochs"] == 2 and tiny["step_counts"] == (1, 3)
    with pytest.raises(ValueError, match="preset"):
        resolve_settings("jpeg", "tpu")


@pytest.mark.backend_agnostic
def test_python_dash_m_runs_the_cli():
    # JAX, when installed, imports faster than TensorFlow; the CLI does not depend on the backend.
    backend = "jax" if importlib.util.find_spec("jax") else os.environ.get("KERAS_BACKEND", "tensorflow")
    result = subprocess.run(
        [sys.executable, "-m", "keras_indi", "quickstart", "--help"],
        capture_output=True,
        text=True,
        timeout=300,
        check=False,
        env=dict(os.environ, KERAS_BACKEND=backend),
    )
    assert result.returncode == 0, result.stderr[-2000:]
    assert "keras-indi quickstart" in result.stdout
