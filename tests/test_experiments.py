"""The experiments-as-code module (`keras_indi.apps.experiments`) and its runner, in smoke mode.

Every experiment runs once (a few eager training steps on 16x16 crops) through the runner
`benchmarks/run_experiments.py`; the tests check the written files, the table rows and
columns, finite metrics, the metadata block and that the runner refuses a non-empty folder.
Backend-agnostic: the experiments call only public Keras APIs, so one pass (TensorFlow) is
enough; the fast-mode results in RESULTS.md were produced under JAX.
"""

import csv
import importlib.util
import json
import math
import os
import pathlib

import keras
import pytest

from keras_indi.apps import experiments

pytestmark = pytest.mark.backend_agnostic

RUNNER = pathlib.Path(__file__).resolve().parents[1] / "benchmarks" / "run_experiments.py"
SMOKE = experiments.MODES["smoke"]


def _runner():
    spec = importlib.util.spec_from_file_location("run_experiments", RUNNER)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def _expected_rows():
    """(method, num_steps) pairs each experiment's table must hold in smoke mode."""
    steps = SMOKE["step_counts"]
    tradeoff = []
    for task in ("jpeg", "super_resolution"):
        tradeoff += [(f"InDI [{task}]", n) for n in steps]
        tradeoff += [(f"regression [{task}]", 1), (f"input [{task}]", None)]
    ablation = SMOKE["ablation_step_counts"]
    distributions = ["uniform", "mass_at_one(w=1)", "power(k=1)"]
    return {
        "steps_tradeoff": tradeoff,
        "indi_vs_ddpm": [("InDI", n) for n in sorted(set(steps) | set(SMOKE["ddpm_step_counts"]))]
        + [("DDPM (DDIM)", n) for n in SMOKE["ddpm_step_counts"]],
        "time_distribution_ablation": [(label, n) for label in distributions for n in ablation],
        "input_noise_ablation": [(f"eps={eps:g}", n) for eps in SMOKE["input_noise"] for n in ablation],
        "generation": [("InDI", n) for n in SMOKE["generation_step_counts"]]
        + [("input noise", None), ("real crops (other set)", None)],
    }


@pytest.fixture(scope="module")
def smoke_run(tmp_path_factory):
    output = tmp_path_factory.mktemp("experiments")
    assert _runner().main(["--mode", "smoke", "--output", str(output), "--quiet"]) == 0
    return output


@pytest.mark.parametrize("name", list(experiments.EXPERIMENTS))
def test_experiment_writes_tables_and_figures(smoke_run, name):
    for suffix in (".md", ".csv", ".json", ".png", "_grid.png"):
        path = smoke_run / f"{name}{suffix}"
        assert path.is_file() and path.stat().st_size > 0, path
    data = json.loads((smoke_run / f"{name}.json").read_text())
    metrics = list(experiments.GENERATION_METRICS if name == "generation" else experiments.RESTORATION_METRICS)
    assert data["metrics"] == metrics
    assert data["columns"] == ["method", "num_steps"] + metrics
    rows = [(row["method"], row["num_steps"]) for row in data["rows"]]
    assert rows == _expected_rows()[name]
    for row in data["rows"]:
        for metric in metrics:
            assert row[metric] is not None and math.isfinite(row[metric]), (name, row)
    with open(smoke_run / f"{name}.csv", newline="") as file:
        table = list(csv.DictReader(file))
    assert len(table) == len(rows)
    assert list(table[0]) == data["columns"]
    assert "| method | num_steps |" in (smoke_run / f"{name}.md").read_text()

    metadata = data["metadata"]
    assert metadata["experiment"] == name and metadata["mode"] == "smoke" and metadata["seed"] == 0
    assert metadata["training_steps_per_model"] == SMOKE["train_steps"]
    assert metadata["backend"] and metadata["devices"] and metadata["wall_seconds"] > 0
    assert metadata["data"] and metadata["models"]
    for model in metadata["models"].values():
        assert math.isfinite(model["final_loss"])


def test_runner_writes_summary(smoke_run):
    summary = json.loads((smoke_run / "summary.json").read_text())
    assert list(summary["experiments"]) == list(experiments.EXPERIMENTS)
    assert summary["mode"] == "smoke"


def test_runner_refuses_non_empty_output(tmp_path, capsys):
    (tmp_path / "keep.txt").write_text("mine")
    assert _runner().main(["--mode", "smoke", "--output", str(tmp_path), "--only", "generation"]) == 2
    assert "--overwrite" in capsys.readouterr().err
    assert sorted(os.listdir(tmp_path)) == ["keep.txt"]


def test_experiment_refuses_to_replace_files(smoke_run):
    with pytest.raises(ValueError, match="already exist"):
        experiments.run_generation(smoke_run, mode="smoke")


def test_settings_validation():
    with pytest.raises(ValueError, match="mode"):
        experiments.experiment_settings("huge")
    with pytest.raises(ValueError, match="Unknown experiment setting"):
        experiments.experiment_settings("smoke", epochs=3)
    assert experiments.experiment_settings("fast", train_steps=7)["train_steps"] == 7
    with pytest.raises(ValueError, match="Unknown experiment"):
        experiments.run_experiments("unused", only=["nope"])


def test_capped_training_pairs_are_cycled_for_every_step(tmp_path):
    """With `max_train_pairs`, models train `train_steps` steps over fewer distinct batches."""
    settings = experiments.experiment_settings("smoke", train_steps=4, max_train_pairs=2 * SMOKE["batch_size"])
    assert experiments.train_batches_per_epoch(settings) == 2
    train, _, data = experiments._arrays("denoising", settings, seed=0)
    assert train[0].shape[0] == 2 * SMOKE["batch_size"] and data["train_epochs"] == 2
    assert experiments._arrays("denoising", settings, seed=0)[0] is train  # made once per run
    log = {}
    model = experiments.train_indi(train, settings, "denoising", 0, log, "capped")
    assert int(keras.ops.convert_to_numpy(model.optimizer.iterations)) == 4
    assert math.isfinite(log["capped"]["final_loss"])


def test_time_limit_skips_what_would_not_fit(tmp_path, monkeypatch):
    class Rows:
        rows = []

        def to_markdown(self):
            return ""

    calls = []

    def slow(output_dir, **kwargs):
        calls.append(output_dir)
        import time

        time.sleep(0.3)
        return Rows()

    monkeypatch.setattr(experiments, "EXPERIMENTS", {"a": slow, "b": slow, "c": slow})
    results = experiments.run_experiments(str(tmp_path), only=["a", "b", "c"], verbose=0, time_limit=0.5)
    assert list(results) == ["a"]  # b would end after 0.3 + 0.3 > 0.5 s
    summary = json.loads((tmp_path / "summary.json").read_text())
    assert "skipped" in summary["experiments"]["b"] and "skipped" in summary["experiments"]["c"]
    with pytest.raises(ValueError, match="time_limit"):
        experiments.run_experiments(str(tmp_path), only=["a"], verbose=0, time_limit=0)
    assert len(calls) == 1


def test_several_seeds_give_mean_and_spread(tmp_path):
    results = experiments.run_experiments(
        str(tmp_path), mode="smoke", only=["input_noise_ablation"], seeds=[0, 1], verbose=0
    )
    aggregated = results["input_noise_ablation"]
    assert aggregated.metadata["seeds"] == [0, 1]
    for row in aggregated.rows:
        assert row["seeds"] == 2 and math.isfinite(row["psnr"]) and row["psnr_std"] >= 0
    for name in ("input_noise_ablation_seeds.md", "input_noise_ablation_seeds.csv", "seed-0/summary.json", "seed-1/summary.json"):
        assert (tmp_path / name).is_file(), name
    with pytest.raises(ValueError, match="seeds"):
        experiments.run_experiments(str(tmp_path / "x"), mode="smoke", seeds=[3])
