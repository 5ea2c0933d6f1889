"""Tests of keras_indi.evaluation: evaluate_tradeoff and TradeoffResult."""

import json
import os
import warnings

import matplotlib

matplotlib.use("Agg")

import keras  # noqa: E402
import numpy as np  # noqa: E402
import pytest  # noqa: E402
from scipy import ndimage  # noqa: E402
from skimage import data  # noqa: E402

from keras_indi import metrics  # noqa: E402
from keras_indi.evaluation import TradeoffResult, evaluate_tradeoff  # noqa: E402

SHAPE = (4, 32, 32, 3)


@pytest.fixture(scope="module")
def pair():
    """Crops of a real image and a blurred + noisy version."""
    image = data.astronaut().astype("float32") / 127.5 - 1.0
    clean = np.stack(
        [
            image[100:132, 200:232],
            image[300:332, 150:182],
            image[20:52, 400:432],
            image[400:432, 50:82],
        ]
    )
    blurred = ndimage.gaussian_filter(clean, (0, 1.5, 1.5, 0))
    degraded = np.clip(blurred + np.random.default_rng(0).normal(0, 0.05, clean.shape), -1, 1)
    return degraded.astype("float32"), clean.astype("float32")


class StandIn:
    """Mimics `InDIModel.restore`: more steps add more (seeded) high-frequency detail."""

    def __init__(self, fail_at=None):
        self.calls = []
        self.fail_at = fail_at

    def restore(self, degraded, num_steps=10, seed=None, progress_bar=None):
        self.calls.append(
            {
                "num_steps": num_steps,
                "seed": seed,
                "progress_bar": progress_bar,
                "size": len(degraded),
            }
        )
        rng = np.random.default_rng(seed)
        detail = rng.normal(0.0, 0.1, degraded.shape) * (1.0 - 1.0 / num_steps)
        restored = (degraded + detail).astype("float32")
        if num_steps == self.fail_at:
            restored[0, 0, 0, 0] = np.nan
        return restored


def _expected_row(clean, restored, seed):
    return {
        "psnr": float(np.mean(keras.ops.convert_to_numpy(metrics.psnr(clean, restored)))),
        "ssim": float(np.mean(keras.ops.convert_to_numpy(metrics.ssim(clean, restored)))),
        "swd": metrics.sliced_wasserstein_distance(clean, restored, seed=seed),
        "power_spectrum": metrics.power_spectrum_distance(clean, restored),
    }


def test_rows_match_direct_metric_calls(pair):
    degraded, clean = pair
    model = StandIn()
    result = evaluate_tradeoff(
        model, degraded, clean, step_counts=(1, 4), seed=3, progress_bar=False
    )
    assert [(row["method"], row["num_steps"]) for row in result.rows] == [("InDI", 1), ("InDI", 4)]
    assert result.metrics == ["psnr", "ssim", "swd", "power_spectrum"]
    for row, steps in zip(result.rows, (1, 4)):
        expected = _expected_row(
            clean, StandIn().restore(degraded, num_steps=steps, seed=3), seed=3
        )
        for name, value in expected.items():
            assert row[name] == pytest.approx(value, rel=1e-5, abs=1e-6), name
    # The library's restore contract: whole set, the seed, no inner progress bar.
    assert model.calls == [
        {"num_steps": 1, "seed": 3, "progress_bar": False, "size": 4},
        {"num_steps": 4, "seed": 3, "progress_bar": False, "size": 4},
    ]
    # More detail: lower PSNR, and the row for 1 step is the smooth regression-like output.
    assert result.rows[0]["psnr"] > result.rows[1]["psnr"]


def test_batch_size_chunks_and_seeds(pair):
    degraded, clean = pair
    model = StandIn()
    result = evaluate_tradeoff(
        model,
        degraded,
        clean,
        step_counts=(2,),
        seed=10,
        batch_size=3,
        metrics=("psnr",),
        progress_bar=False,
    )
    assert [(c["seed"], c["size"]) for c in model.calls] == [(10, 3), (11, 1)]
    restored = np.concatenate(
        [StandIn().restore(degraded[:3], 2, seed=10), StandIn().restore(degraded[3:], 2, seed=11)]
    )
    assert result.rows[0]["psnr"] == pytest.approx(
        float(np.mean(keras.ops.convert_to_numpy(metrics.psnr(clean, restored)))), rel=1e-6
    )


class _PairDataset(keras.utils.PyDataset):
    def __init__(self, degraded, clean, batch_size):
        super().__init__()
        self.degraded, self.clean, self.batch_size = degraded, clean, batch_size

    def __len__(self):
        return int(np.ceil(len(self.degraded) / self.batch_size))

    def __getitem__(self, index):
        part = slice(index * self.batch_size, (index + 1) * self.batch_size)
        return self.degraded[part], self.clean[part]


def test_dataset_inputs_give_the_same_rows(pair):
    degraded, clean = pair
    kwargs = dict(step_counts=(1, 3), metrics=("psnr", "power_spectrum"), progress_bar=False)
    reference = evaluate_tradeoff(StandIn(), degraded, clean, **kwargs).rows
    from_pydataset = evaluate_tradeoff(StandIn(), _PairDataset(degraded, clean, 3), **kwargs).rows
    from_list = evaluate_tradeoff(
        StandIn(), [(degraded[:2], clean[:2]), (degraded[2:], clean[2:])], **kwargs
    ).rows
    from_generator = evaluate_tradeoff(
        StandIn(), ((degraded[i : i + 1], clean[i : i + 1]) for i in range(4)), **kwargs
    ).rows
    for rows in (from_pydataset, from_list, from_generator):
        for row, expected in zip(rows, reference):
            assert (row["method"], row["num_steps"]) == (expected["method"], expected["num_steps"])
            for key in ("psnr", "power_spectrum"):
                assert row[key] == pytest.approx(expected[key], rel=1e-6)


def test_baselines_and_custom_metrics(pair):
    degraded, clean = pair

    class Regression:
        def restore(self, degraded, num_steps=10, seed=None, progress_bar=None):
            assert num_steps == 1
            return ndimage.gaussian_filter(degraded, (0, 0.5, 0.5, 0)).astype("float32")

    result = evaluate_tradeoff(
        StandIn(),
        degraded,
        clean,
        step_counts=(1, 2),
        metrics=["psnr", ("mae", lambda c, r: np.abs(c - r).mean(axis=(1, 2, 3)))],
        baselines={
            "input": degraded,
            "regression": Regression(),
            "InDI-10": (StandIn(), 10),
            "identity": lambda x: x,
            # A function that restores in 5 steps its own way (e.g. an explicit time grid).
            "cosine grid": (lambda x: StandIn().restore(x, num_steps=5, seed=0), 5),
        },
        progress_bar=False,
    )
    labels = [(row["method"], row["num_steps"]) for row in result.rows]
    assert labels == [
        ("InDI", 1),
        ("InDI", 2),
        ("input", None),
        ("regression", 1),
        ("InDI-10", 10),
        ("identity", None),
        ("cosine grid", 5),
    ]
    assert "| cosine grid | 5 |" in result.to_markdown()
    assert result.rows[2]["mae"] == pytest.approx(float(np.abs(clean - degraded).mean()), rel=1e-6)
    assert result.rows[2]["psnr"] == pytest.approx(result.rows[5]["psnr"])
    assert result.methods == ["InDI", "input", "regression", "InDI-10", "identity", "cosine grid"]
    assert [t["method"] for t in result.timings] == [row["method"] for row in result.rows]


class _PerImageMAE(keras.layers.Layer):
    """A Keras layer metric (like LPIPS): per-image values, called on chunks."""

    def __init__(self):
        super().__init__()
        self.sizes = []

    def call(self, reference, estimate):
        self.sizes.append(int(reference.shape[0]))
        return keras.ops.mean(keras.ops.abs(reference - estimate), axis=(1, 2, 3))


def test_keras_layer_metric_is_chunked(pair):
    degraded, clean = pair
    layer = _PerImageMAE()
    result = evaluate_tradeoff(
        StandIn(),
        degraded,
        clean,
        step_counts=(1,),
        metrics={"mae": layer},
        batch_size=3,
        progress_bar=False,
    )
    assert layer.sizes == [3, 1]
    assert result.rows[0]["mae"] == pytest.approx(
        float(np.abs(clean - StandIn().restore(degraded, 1, seed=0)).mean()), rel=1e-5
    )


def test_non_finite_restoration_gives_nan_and_warning(pair):
    degraded, clean = pair
    with pytest.warns(UserWarning, match="NaN"):
        result = evaluate_tradeoff(
            StandIn(fail_at=5),
            degraded,
            clean,
            step_counts=(1, 5),
            metrics=("psnr",),
            progress_bar=False,
        )
    assert np.isfinite(result.rows[0]["psnr"]) and np.isnan(result.rows[1]["psnr"])


def test_progress_bar(pair, capsys):
    degraded, clean = pair
    evaluate_tradeoff(
        StandIn(), degraded, clean, step_counts=(1, 2), metrics=("psnr",), progress_bar=True
    )
    assert "2/2" in capsys.readouterr().out
    evaluate_tradeoff(
        StandIn(), degraded, clean, step_counts=(1, 2), metrics=("psnr",), progress_bar=False
    )
    assert capsys.readouterr().out == ""


@pytest.mark.parametrize(
    "kwargs, match",
    [
        ({"model": object()}, "restore"),
        ({"clean": np.zeros((4, 32, 16, 3), "float32")}, "same shape"),
        ({"clean": None}, "clean"),
        ({"step_counts": ()}, "empty"),
        ({"step_counts": (1, 0)}, "integers >= 1"),
        ({"step_counts": (2, 2)}, "duplicates"),
        ({"metrics": ("psnr", "fid")}, "Unknown metric"),
        ({"metrics": ()}, "empty"),
        ({"baselines": [np.zeros(SHAPE)]}, "dict"),
        ({"baselines": {"bad": np.zeros((1, 2))}}, "shape"),
        ({"baselines": {"bad": 3}}, "baseline 'bad'"),
        ({"degraded": np.zeros(SHAPE, "uint8")}, "floating"),
        ({"degraded": np.full(SHAPE, np.nan, "float32")}, "NaN"),
        (
            {
                "degraded": np.zeros((32, 32, 3), "float32"),
                "clean": np.zeros((32, 32, 3), "float32"),
            },
            "shape",
        ),
        ({"seed": -1}, "seed"),
        ({"batch_size": 0}, "batch_size"),
    ],
)
def test_argument_errors(pair, kwargs, match):
    degraded, clean = pair
    arguments = {
        "model": StandIn(),
        "degraded": degraded,
        "clean": clean,
        "step_counts": (1,),
        "progress_bar": False,
    }
    arguments.update(kwargs)
    with pytest.raises(ValueError, match=match):
        evaluate_tradeoff(**arguments)


def test_restore_with_wrong_shape_is_reported(pair):
    degraded, clean = pair

    class Broken:
        def restore(self, degraded, num_steps=10, seed=None, progress_bar=None):
            return degraded[:, :16]

    with pytest.raises(ValueError, match="shape of the degraded images"):
        evaluate_tradeoff(Broken(), degraded, clean, step_counts=(1,), progress_bar=False)


# -- TradeoffResult outputs -------------------------------------------------------------------
@pytest.fixture(scope="module")
def result(pair):
    degraded, clean = pair
    return evaluate_tradeoff(
        StandIn(),
        degraded,
        clean,
        step_counts=(1, 2, 5),
        metrics=("psnr", "ssim", "swd"),
        baselines={"input": degraded},
        progress_bar=False,
        num_examples=2,
    )


def test_tables(result, tmp_path):
    markdown = result.to_markdown().splitlines()
    assert markdown[0] == "| method | num_steps | psnr | ssim | swd |"
    assert len(markdown) == 2 + 4 and markdown[-1].startswith("| input | - |")
    text = result.to_csv()
    assert text.splitlines()[0] == "method,num_steps,psnr,ssim,swd"
    path = result.to_csv(tmp_path / "t.csv")
    with open(path) as file:
        assert file.read() == text
    with pytest.raises(ValueError, match="already exists"):
        result.to_csv(tmp_path / "t.csv")
    result.to_json(tmp_path / "t.json")
    loaded = json.loads((tmp_path / "t.json").read_text())
    assert loaded["metrics"] == ["psnr", "ssim", "swd"] and loaded["metadata"]["step_counts"] == [
        1,
        2,
        5,
    ]
    again = TradeoffResult.from_json(tmp_path / "t.json")
    assert again.to_markdown() == result.to_markdown()


def test_plot(result):
    import matplotlib.pyplot as plt

    ax = result.plot(x="psnr", y="swd")
    assert len(ax.lines) == 1  # one line: the InDI step counts
    assert [text.get_text() for text in ax.texts][:3] == ["1", "2", "5"]
    assert "input" in [text.get_text() for text in ax.texts]
    assert "lower is better" in ax.get_ylabel() and "higher is better" in ax.get_xlabel()
    labels = ax.get_legend_handles_labels()[1]
    assert labels == ["InDI", "input"]
    ax_steps = result.plot(x="num_steps", y="ssim")
    assert ax_steps.get_xscale() == "log"
    with pytest.raises(ValueError, match="`y` must be one of"):
        result.plot(y="lpips")
    plt.close("all")


def test_image_grid(result, tmp_path):
    path = tmp_path / "grid.png"
    figure = result.image_grid(path=path, step_counts=(1, 5))
    assert path.exists() and path.stat().st_size > 1000
    # rows = 2 examples; columns = degraded, 1 step, 5 steps, input baseline, clean
    assert len(figure.axes) == 2 * 5
    assert [ax.get_title() for ax in figure.axes[:5]] == [
        "degraded",
        "InDI\n1 step",
        "InDI\n5 steps",
        "input",
        "clean",
    ]
    with pytest.raises(ValueError, match="already exists"):
        result.image_grid(path=path)
    # A baseline that only repeats the degraded images can be left out by naming the others.
    without_input = result.image_grid(path=tmp_path / "no_input.png", include_baselines=[])
    assert [ax.get_title() for ax in without_input.axes[:4]] == ["degraded", "InDI\n1 step", "InDI\n2 steps", "InDI\n5 steps"]
    assert "input" not in [ax.get_title() for ax in without_input.axes]
    with_input = result.image_grid(path=tmp_path / "g.png", include_baselines=["input"])
    assert [ax.get_title() for ax in with_input.axes[:6]][-2:] == ["input", "clean"]
    with pytest.raises(ValueError, match="not baselines of this result"):
        result.image_grid(path=tmp_path / "x.png", include_baselines=["regression"])
    with pytest.raises(ValueError, match="not evaluated"):
        result.image_grid(path=tmp_path / "other.png", step_counts=(3,))
    from matplotlib.image import imread

    assert imread(path).ndim == 3


def test_save_does_not_overwrite(result, tmp_path):
    folder = tmp_path / "report"
    paths = result.save(folder)
    assert set(paths) == {"markdown", "csv", "json", "plot", "grid"}
    assert sorted(os.listdir(folder)) == [
        "tradeoff.csv",
        "tradeoff.json",
        "tradeoff.md",
        "tradeoff_grid.png",
        "tradeoff_plot.png",
    ]
    before = (folder / "tradeoff.md").stat().st_mtime_ns
    with pytest.raises(ValueError, match="overwrite=True"):
        result.save(folder)
    assert (folder / "tradeoff.md").stat().st_mtime_ns == before
    result.save(folder, overwrite=True)
    result.save(folder, prefix="second")  # another prefix: no clash
    assert len(os.listdir(folder)) == 10


def test_result_without_examples(tmp_path):
    rows = [{"method": "InDI", "num_steps": n, "psnr": 30.0 - n, "swd": 1.0 / n} for n in (1, 2)]
    result = TradeoffResult(rows, ["psnr", "swd"])
    with pytest.raises(ValueError, match="no example images"):
        result.image_grid()
    paths = result.save(tmp_path)
    assert "grid" not in paths and os.path.exists(paths["plot"])


# -- with the library's model ---------------------------------------------------------------
@pytest.mark.slow  # the first JAX restore compiles the sampler (~15 s on 2 CPU cores)
def test_with_a_tiny_indi_model(pair):
    keras_indi = pytest.importorskip("keras_indi")
    if not hasattr(keras_indi, "InDIModel"):
        pytest.skip("keras_indi.InDIModel is not available")
    from keras_indi.networks import TimeConditionalUNet

    degraded, clean = pair
    network = TimeConditionalUNet(widths=(8,), blocks_per_level=1, in_channels=3)
    model = keras_indi.InDIModel(network, seed=0)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        result = evaluate_tradeoff(
            model,
            degraded,
            clean,
            step_counts=(1, 2),
            metrics=("psnr", "ssim"),
            seed=0,
            progress_bar=False,
            baselines={"regression": model},
        )
    assert [(row["method"], row["num_steps"]) for row in result.rows] == [
        ("InDI", 1),
        ("InDI", 2),
        ("regression", 1),
    ]
    assert all(np.isfinite(row["psnr"]) for row in result.rows)
    # Same model, seed and step count: the baseline reproduces the 1-step row.
    assert result.rows[2]["psnr"] == pytest.approx(result.rows[0]["psnr"], rel=1e-5)
