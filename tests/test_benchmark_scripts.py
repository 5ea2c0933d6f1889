"""The benchmark scripts (CPU peer comparison, start-up, U-Net evaluation, XLA flags, side by
side training, initializer programs, presets on an unseen photograph, the claims study) run end to end
(`--quick`: tiny sizes).

A few minutes each on 2 cores (fresh processes per backend), so slow tests: skipped with
KERAS_INDI_FAST=1. The numbers they print are not checked, only that every row was measured.
"""

import json
import os
import subprocess
import sys

import pytest

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))

pytestmark = [pytest.mark.slow, pytest.mark.backend_agnostic]


def run_script(name, *arguments):
    result = subprocess.run(
        [sys.executable, os.path.join(ROOT, "benchmarks", name), "--quick", *arguments],
        capture_output=True, text=True, timeout=1800, env=dict(os.environ, TF_CPP_MIN_LOG_LEVEL="3"),
    )
    assert result.returncode == 0, result.stdout[-3000:] + result.stderr[-3000:]
    return result.stdout


def test_cpu_peer_quick(tmp_path):
    pytest.importorskip("torch")
    out = run_script("cpu_peer.py", "--output", str(tmp_path))
    report = json.loads((tmp_path / "cpu_peer_quick.json").read_text())
    assert all(entry["status"] == "ok" for entry in report["results"])
    training = report["summary"]["training"][0]
    assert training["twin_best"] and training["keras_best"] and training["ratio_best"]
    assert "best keras-indi / best twin" in out and (tmp_path / "cpu_peer_quick.md").exists()


def test_cpu_interleaved_quick(tmp_path):
    pytest.importorskip("torch")
    out = run_script("cpu_interleaved.py", "--output", str(tmp_path))
    report = json.loads((tmp_path / "cpu_interleaved_quick.json").read_text())
    assert set(report["training"][0]["images_per_s"]) == {"keras-indi eager", "twin eager"}
    assert [row["input"] for row in report["restoration"]] == ["2x16x16", "1x32x32"]
    assert out.count("best keras-indi / best twin") == 2 and (tmp_path / "cpu_interleaved_quick.md").exists()


def test_startup_quick(tmp_path):
    pytest.importorskip("jax")
    out = run_script("startup.py", "--output", str(tmp_path))
    report = json.loads((tmp_path / "startup_quick.json").read_text())
    assert all(row["status"] == "ok" for row in report["rows"])
    assert report["big"]["tiled"]  # the quick run's memory limit forces the automatic tiling
    assert "keras-indi --help" in out


def test_unet_eval_quick(tmp_path):
    pytest.importorskip("jax")
    out = run_script("unet_eval.py", "--backends", "jax", "--output", str(tmp_path))
    report = json.loads((tmp_path / "unet_eval_quick.json").read_text())
    assert len(report["rows"]) == 2 and all(row["keras_seconds"] > 0 and row["keras_indi_seconds"] > 0 for row in report["rows"])
    assert "speed-up" in out


def test_xla_cpu_flags_quick(tmp_path):
    pytest.importorskip("jax")
    out = run_script("xla_cpu_flags.py", "--output", str(tmp_path))
    report = json.loads((tmp_path / "xla_cpu_flags_quick.json").read_text())
    assert set(report["medians"]) == {"default", "keras-indi", "no YNN"}
    flags = {name: runs[0]["xla_flags"] for name, runs in report["runs"].items()}
    assert flags["default"] is None and flags["no YNN"] == "--xla_cpu_experimental_ynn_fusion_type="
    assert all(value > 0 for medians in report["medians"].values() for value in medians.values())
    assert "default / keras-indi" in out


def test_side_by_side_quick(tmp_path):
    out = run_script("side_by_side.py", "--output", str(tmp_path))
    report = json.loads((tmp_path / "side_by_side_quick.json").read_text())
    assert set(report["medians"]) == {"one after the other", "side by side"}
    assert report["same_losses"] is True  # threads change the wall time, never the training
    assert "faster training" in out


def test_initializer_programs_quick(tmp_path):
    pytest.importorskip("jax")
    out = run_script("initializer_programs.py", "--output", str(tmp_path))
    report = json.loads((tmp_path / "initializer_programs_quick.json").read_text())
    assert set(report["median_build_s"]) == {"one program per shape", "shared programs"}
    assert report["same_weights"] is True  # fewer programs, never other weights
    assert "faster" in out


def test_unseen_photograph_quick(tmp_path):
    out = run_script("unseen_photograph.py", "--output", str(tmp_path))
    report = json.loads((tmp_path / "unseen_photograph_quick.json").read_text())
    methods = {(row["images"], row["method"], row["num_steps"]) for row in report["rows"]}
    assert {("whole 64x64", "regression twin", 1), ("whole 64x64", "InDI", 2), ("crops 32x32", "input", None)} <= methods
    assert all(0 < row["psnr"] < 100 and row["swd"] >= 0 for row in report["rows"])
    assert "grace_hopper.jpg" in out


@pytest.mark.parametrize("study,task,key,models", [("input_noise", "jpeg", "epsilon", 3),
                                                   ("time_distribution", "super_resolution_4x", "p(t)", 2),
                                                   ("ddpm", "super_resolution_4x", "model", 3)])
def test_claims_study_quick(tmp_path, study, task, key, models):
    out = run_script("claims_study.py", study, task, "--output", str(tmp_path))
    rows = [json.loads(line) for line in (tmp_path / f"{study}_{task}.jsonl").read_text().splitlines()]
    assert len({row[key] for row in rows}) == models + 1  # the input and the trained models
    assert all(0 < row["psnr"] < 100 and row["swd"] >= 0 for row in rows)
    assert "| input | crops 64x64 |" in out
    run_script("claims_study.py", "plot", study, task, "--output", str(tmp_path))
    assert (tmp_path / f"{study}_{task}.png").stat().st_size > 10_000
