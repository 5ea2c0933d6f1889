"""The command line: train (checkpoints, interruption and resume), restore, evaluate, help and errors.

Everything here runs once, in the backend-agnostic pass (tests/conftest.py) (the CLI is backend-agnostic code over the
library, whose backend behaviour has its own tests). One tiny training run, shared by the
restore and evaluate tests, keeps the module fast.
"""

import hashlib
import json
import os

import keras
import numpy as np
import pytest
from PIL import Image

from keras_indi.apps import cli
from keras_indi.apps.cli import main

pytestmark = pytest.mark.backend_agnostic

TINY = [
    "--image-size", "16", "--batch-size", "4", "--widths", "8,16", "--blocks-per-level", "1",
    "--steps-per-epoch", "2", "--validation-samples", "4", "--quiet",
]


def fails(argv, capsys, code=2):
    """Run the CLI expecting a clean failure; return its stderr."""
    with pytest.raises(SystemExit) as raised:
        main(argv)
    assert raised.value.code == code
    error = capsys.readouterr().err
    assert "Traceback" not in error
    return error


class InterruptAfterFirstEpoch(keras.callbacks.Callback):
    """Simulates Ctrl-C once the first epoch (and its backup) is written."""

    def on_epoch_end(self, epoch, logs=None):
        raise KeyboardInterrupt


class RecordEpochs(keras.callbacks.Callback):
    def __init__(self):
        super().__init__()
        self.epochs = []

    def on_epoch_begin(self, epoch, logs=None):
        self.epochs.append(epoch)


@pytest.fixture(scope="module")
def run(tmp_path_factory):
    """A 2-epoch tiny run interrupted after epoch 1, then resumed: (folder, epochs run on resume, stderr)."""
    folder = tmp_path_factory.mktemp("train") / "run"
    argv = ["train", *TINY, "--epochs", "2", "--output", str(folder)]
    cli.TRAIN_CALLBACKS[:] = [InterruptAfterFirstEpoch()]
    try:
        with pytest.raises(SystemExit) as raised:
            main(argv)
        interrupted = {
            "code": raised.value.code,
            "files": sorted(os.listdir(folder)),
            "checkpoints": sorted(os.listdir(folder / "checkpoints")),
        }
        recorder = RecordEpochs()
        cli.TRAIN_CALLBACKS[:] = [recorder]
        # The same command without --resume is refused, with --resume it continues.
        with pytest.raises(SystemExit) as refused:
            main(argv)
        assert refused.value.code == 2
        assert main(argv + ["--resume"]) == 0
    finally:
        cli.TRAIN_CALLBACKS[:] = []
    return folder, interrupted, recorder.epochs


def test_train_interrupted_then_resumed(run):
    folder, interrupted, resumed_epochs = run
    assert interrupted["code"] == 130
    assert "model.keras" not in interrupted["files"]  # the interrupted run did not finish
    assert {"config.json", "history.csv", "backup", "checkpoints"} <= set(interrupted["files"])
    assert interrupted["checkpoints"] == ["best.keras", "last.keras"]
    assert resumed_epochs == [1]  # continued with the second epoch (0-based 1) only
    for name in ("model.keras", "history.json", "config.json", "checkpoints/last.keras", "checkpoints/best.keras"):
        assert (folder / name).is_file(), name
    history = json.loads((folder / "history.json").read_text())
    assert history["epoch"] == [0, 1]
    assert len(history["loss"]) == len(history["val_loss"]) == 2
    config = json.loads((folder / "config.json").read_text())
    assert config["widths"] == [8, 16] and config["epochs"] == 2 and config["task"] == "denoising"
    assert config["noise_level"] == [0.04, 0.4] and config["jpeg_quality"] is None  # the degradation in use
    model = cli.load_indi_model(folder / "model.keras")
    assert model.network.widths == (8, 16)
    assert model.value_range == (-1.0, 1.0)  # checks the scale; noisy inputs may exceed it


def test_trained_models_accept_noise_and_refuse_0_255_data(run):
    """CLI-trained denoising models keep the default checks: noisy inputs and pure noise
    pass, [0, 255] and uint8 data are refused with the conversion to [-1, 1]."""
    model = cli.load_indi_model(run[0] / "model.keras")
    rng = np.random.default_rng(0)
    clean = rng.uniform(-1, 1, (4, 16, 16, 3)).astype("float32")
    noisy = (clean + 0.5 * rng.normal(size=clean.shape)).astype("float32")
    for degraded in (noisy, rng.normal(size=clean.shape).astype("float32")):
        assert np.all(np.isfinite(model.restore(degraded, num_steps=2, seed=0, progress_bar=False)))
    model.fit(noisy, clean, batch_size=4, epochs=1, verbose=0)
    with pytest.raises(ValueError, match=r"\[0, 255\] images: scale them to \[-1, 1\] with `x / 127.5 - 1`"):
        model.restore(noisy * 127.5 + 127.5, num_steps=1, progress_bar=False)
    with pytest.raises(ValueError, match=r"clean targets.*\[0, 255\] images"):
        model.fit(noisy, clean * 127.5 + 127.5, batch_size=4, epochs=1, verbose=0)
    with pytest.raises(ValueError, match=r"uint8.*scale them to \[-1, 1\]"):
        model.fit((noisy * 127.5 + 127.5).clip(0, 255).astype("uint8"), clean, batch_size=4, epochs=1, verbose=0)


def test_resumed_run_ends_at_the_weights_of_an_uninterrupted_run(run, tmp_path, capsys):
    """Seed-generator, optimizer and data state all resume: the same final weights."""
    folder, _, _ = run
    straight = tmp_path / "straight"
    assert main(["train", *TINY, "--epochs", "2", "--output", str(straight)]) == 0
    # The end of a run says whether the model restores better than its degraded inputs.
    verdict = [line for line in capsys.readouterr().out.splitlines() if line.startswith("Validation PSNR")]
    assert len(verdict) == 1 and "dB vs degraded input" in verdict[0], verdict
    resumed = cli.load_indi_model(folder / "model.keras")
    uninterrupted = cli.load_indi_model(straight / "model.keras")
    for a, b in zip(resumed.get_weights(), uninterrupted.get_weights()):
        np.testing.assert_allclose(a, b, rtol=1e-5, atol=1e-6)
    assert json.loads((folder / "history.json").read_text())["loss"] == pytest.approx(
        json.loads((straight / "history.json").read_text())["loss"], rel=1e-5
    )


def test_train_refuses_other_settings_and_non_run_folders(run, tmp_path, capsys):
    folder, _, _ = run
    error = fails(["train", *TINY, "--epochs", "3", "--loss", "l2", "--output", str(folder), "--resume"], capsys)
    assert "--loss l1 -> l2" in error and "--overwrite" in error
    error = fails(["train", *TINY, "--output", str(folder)], capsys)
    assert "--resume" in error and "2 epoch" in error
    other = tmp_path / "notes"
    other.mkdir()
    (other / "notes.txt").write_text("mine")
    assert "config.json" in fails(["train", *TINY, "--output", str(other), "--resume"], capsys)
    assert "--data-dir" in fails(["train", *TINY, "--source", "gopro", "--output", str(tmp_path / "g")], capsys)
    assert "existing folder" in fails(["train", *TINY, "--source", "no/such/folder", "--output", str(tmp_path / "x")], capsys)
    assert "--attention-levels" in fails(["train", *TINY, "--attention-levels", "2", "--output", str(tmp_path / "y")], capsys)
    assert "--time-parameter" in fails(
        ["train", *TINY, "--time-distribution", "uniform", "--time-parameter", "2", "--output", str(tmp_path / "z")], capsys
    )
    assert (notes := other / "notes.txt").read_text() == "mine" and sorted(os.listdir(other)) == [notes.name]


def image_folder(folder, count=4, size=24):
    folder.mkdir()
    rng = np.random.default_rng(0)
    for index in range(count):
        Image.fromarray(rng.integers(0, 256, (size, size, 3), dtype=np.uint8)).save(folder / f"{index}.png")
    return folder


class ModelSetupReached(Exception):
    pass


def test_train_checks_the_data_before_the_model_and_reruns_after_a_failed_start(tmp_path, monkeypatch, capsys):
    """A corrupt image is named before the model is built; after fixing the data, the same
    command runs in the folder a failed start left behind (config.json, empty checkpoints/)."""
    import keras_indi.networks.unet as unet

    source = image_folder(tmp_path / "images")
    (source / "corrupt.png").write_bytes(b"\x89PNG\r\n\x1a\n this is not a png")
    output = tmp_path / "run"
    argv = ["train", *TINY, "--source", str(source), "--epochs", "1", "--output", str(output)]

    def no_model_setup(*args, **kwargs):
        raise ModelSetupReached("the model was built before the data were checked")

    with monkeypatch.context() as patch:
        patch.setattr(unet, "TimeConditionalUNet", no_model_setup)
        error = fails(argv, capsys)
        assert "corrupt.png" in error and "Remove or replace" in error
        # Data on the wrong scale is refused the same way, with the conversion to [-1, 1].
        clean = np.random.default_rng(0).uniform(-1, 1, (4, 16, 16, 3)).astype("float32")
        patch.setattr(cli, "_build_datasets", lambda *args, **kwargs: ([(clean * 127.5 + 127.5, clean * 127.5 + 127.5)], None))
        error = fails(["train", *TINY, "--epochs", "1", "--output", str(tmp_path / "scale")], capsys)
        assert "[0, 255] images: scale them to [-1, 1]" in error
    (source / "corrupt.png").unlink()
    # What a run that failed before its first epoch leaves (e.g. an earlier version of this
    # command failing on the corrupt file above): config.json and an empty checkpoints/.
    (output / "checkpoints").mkdir(parents=True, exist_ok=True)
    (output / "config.json").write_text(json.dumps({"task": "denoising", "epochs": 1}))
    assert main(argv) == 0
    assert "starting it again" in capsys.readouterr().out
    assert (output / "model.keras").is_file()
    assert json.loads((output / "config.json").read_text())["source"] == str(source)


def test_damaged_config_and_keras_files_on_resume(run, tmp_path, capsys):
    import shutil

    folder = tmp_path / "run"
    shutil.copytree(run[0], folder)
    argv = ["train", *TINY, "--epochs", "2", "--output", str(folder), "--resume"]
    (folder / "config.json").write_text('{"task": "denoising", "epo')
    error = fails(argv, capsys)
    assert "config.json" in error and "damaged" in error and "Delete that file" in error
    # The way out the message offers: delete it and resume (a kill mid-write left
    # last.keras truncated as well: warned about, not fatal).
    (folder / "config.json").unlink()
    last = folder / "checkpoints" / "last.keras"
    last.write_bytes(last.read_bytes()[:100])
    assert main(argv) == 0
    captured = capsys.readouterr()
    assert "nothing to train" in captured.out and "config.json is missing" in captured.out
    assert f"{last} is damaged" in captured.err and "rewritten when this run ends" in captured.err
    assert json.loads((folder / "config.json").read_text())["epochs"] == 2
    # Rewritten from the training state in backup/ (the last epoch's model), even with nothing to train.
    assert cli.keras_file_problem(last) is None
    np.testing.assert_array_equal(
        cli.load_indi_model(last).get_weights()[0], cli.load_indi_model(folder / "model.keras").get_weights()[0]
    )
    # A damaged file given to restore/evaluate is named, with the run's other files as the way out.
    last.write_bytes(last.read_bytes()[:100])
    with pytest.raises(cli.UsageError, match="last.keras.*is damaged.*--resume"):
        cli.load_indi_model(last)


def test_degradation_flags_reach_the_data_and_config(tmp_path, monkeypatch):
    built = {}
    original = cli._build_datasets

    def recording(*args, **kwargs):
        built["datasets"] = original(*args, **kwargs)
        return built["datasets"]

    monkeypatch.setattr(cli, "_build_datasets", recording)
    folder = tmp_path / "sigma"
    assert main(["train", *TINY, "--noise-level", "0.2", "--epochs", "1", "--output", str(folder)]) == 0
    config = json.loads((folder / "config.json").read_text())
    assert config["noise_level"] == 0.2 and config["scale"] is None and config["blur_size"] is None
    degraded, clean = built["datasets"][1][0]
    assert np.std(degraded - clean) == pytest.approx(0.2, rel=0.1)


@pytest.mark.parametrize(
    "flags, expected",
    [
        (["--task", "jpeg", "--jpeg-quality", "50,60"], ("jpeg", {"quality_range": (50, 60)}, "JPEGCompression")),
        (["--task", "jpeg", "--jpeg-quality", "10,30"], ("jpeg", {}, None)),  # the default: unchanged runs
        (["--noise-level", "0.1"], ("denoising", {"sigma": 0.1}, "AdditiveGaussianNoise")),
        (["--task", "super_resolution", "--scale", "2"], ("super_resolution", {"factor": 2}, "BicubicDownsample")),
        (["--task", "defocus_deblurring", "--blur-size", "1,3"], ("defocus_deblurring", {"radius_range": (1.0, 3.0)}, "DefocusBlur")),
        (["--task", "motion_deblurring", "--blur-size", "15"], ("motion_deblurring", {"kernel_size": 15}, "MotionBlur")),
    ],
)
def test_degradation_flags_configure_the_task_degradation(flags, expected):
    from keras_indi.degradations import get_task_degradation

    arguments = cli.build_parser().parse_args(["train", *TINY, *flags, "--output", "x"])
    task, overrides, name = expected
    assert cli._degradation_overrides(task, cli.degradation_settings(arguments)) == overrides
    if name:
        assert type(get_task_degradation(task, **overrides)).__name__ == name


def test_degradation_flag_errors(run, tmp_path, capsys):
    out = str(tmp_path / "x")
    assert "--task jpeg, not denoising" in fails(["train", *TINY, "--jpeg-quality", "20", "--output", out], capsys)
    assert "multiple of --scale 3" in fails(["train", *TINY, "--task", "super_resolution", "--scale", "3", "--output", out], capsys)
    assert "odd integer" in fails(["train", *TINY, "--task", "motion_deblurring", "--blur-size", "10", "--output", out], capsys)
    assert "real motion_deblurring pairs" in fails(
        ["train", *TINY, "--source", "gopro", "--data-dir", str(tmp_path), "--blur-size", "15", "--output", out], capsys
    )
    assert "LOW <= HIGH" in fails(["train", *TINY, "--noise-level", "0.4,0.1", "--output", out], capsys)
    assert "1..100" in fails(["train", *TINY, "--jpeg-quality", "0", "--output", out], capsys)
    assert not os.path.exists(out)
    # Resuming with another degradation is refused like any other changed setting.
    error = fails(["train", *TINY, "--epochs", "2", "--noise-level", "0.1", "--output", str(run[0]), "--resume"], capsys)
    assert "--noise-level 0.04,0.4 -> 0.1" in error


def test_help_shows_the_degradation_flags_and_defaults(capsys):
    with pytest.raises(SystemExit):
        main(["train", "--help"])
    text = " ".join(capsys.readouterr().out.split())
    for expected in ("--noise-level SIGMA", "(default: 0.04,0.4)", "--jpeg-quality Q", "(default: 10,30)",
                     "--scale N", "(default: 4)", "--blur-size SIZE", "(default: 2,6)", "(default: 31)"):
        assert expected in text, expected


def test_resume_a_run_written_before_the_degradation_flags(run, tmp_path, capsys):
    import shutil

    folder = tmp_path / "old"
    shutil.copytree(run[0], folder)
    config = json.loads((folder / "config.json").read_text())
    for key in ("noise_level", "jpeg_quality", "scale", "blur_size"):
        del config[key]
    (folder / "config.json").write_text(json.dumps(config))
    assert main(["train", *TINY, "--epochs", "2", "--output", str(folder), "--resume"]) == 0
    assert "nothing to train" in capsys.readouterr().out


def test_one_image_folder_trains_without_validation_and_gray_models_say_so(tmp_path, capsys):
    """A folder of one image trains (no image is left for validation); --validation-samples 0
    is accepted and documented; RGB data into a 1-channel model is converted with a note, in
    train, restore and evaluate."""
    with pytest.raises(SystemExit):
        main(["train", "--help"])
    assert "0: no validation" in " ".join(capsys.readouterr().out.split())
    source = image_folder(tmp_path / "one", count=1)
    folder = tmp_path / "gray"
    argv = ["train", *TINY, "--source", str(source), "--channels", "1", "--epochs", "1", "--output", str(folder)]
    # TINY asks for 4 validation crops: none can be held out of one image.
    assert "--validation-samples 0 to train on it without validation" in fails(argv, capsys)
    position = argv.index("--validation-samples")
    del argv[position : position + 2]
    assert main(argv) == 0
    printed = capsys.readouterr().out
    assert "holds a single image" in printed and "training on it without validation" in printed
    assert "in color: converted to grayscale (luma) for a 1-channel model" in printed
    assert "No validation PSNR" in printed
    assert json.loads((folder / "config.json").read_text())["validation_samples"] == 0
    assert sorted(os.listdir(folder / "checkpoints")) == ["last.keras"]  # no validation: no best.keras
    # Resumed with --validation-samples 0 said explicitly: the same settings as the note's.
    assert main(argv + ["--validation-samples", "0", "--resume", "--epochs", "2"]) == 0
    assert json.loads((folder / "history.json").read_text())["epoch"] == [0, 1]
    capsys.readouterr()
    several = image_folder(tmp_path / "several", count=3)
    model = str(folder / "model.keras")
    out = tmp_path / "restored"
    assert main(["restore", model, str(source), "--output-dir", str(out), "--steps", "1"]) == 0
    assert "0.png) is in color: converted to grayscale" in capsys.readouterr().out
    assert Image.open(out / "0.png").mode == "L"
    argv = ["evaluate", model, "--source", str(several), "--channels", "1", "--image-size", "16", "--batch-size", "4",
            "--num-images", "4", "--steps", "1", "--output", str(tmp_path / "evaluation"), "--quiet"]
    assert main(argv) == 0
    assert "are in color: converted to grayscale" in capsys.readouterr().out


def test_validation_verdict_says_when_the_model_is_worse_than_its_input():
    rng = np.random.default_rng(0)
    clean = rng.uniform(-1, 1, (4, 8, 8, 3)).astype("float32")
    noisy = (clean + 0.1 * rng.normal(size=clean.shape)).astype("float32")

    class Restorer:
        def __init__(self, output):
            self.output = output

        def restore(self, degraded, num_steps, seed=None, progress_bar=False):
            assert num_steps == 1
            return self.output

    better = cli.validation_verdict(Restorer(clean + 0.01), [(noisy, clean)])
    assert better.startswith("Validation PSNR (1 step): model") and "(+" in better and "worse" not in better
    worse = cli.validation_verdict(Restorer(clean + 0.5), [(noisy, clean)])
    assert "(-" in worse and "still worse than the input" in worse and "--resume" in worse


def test_damaged_backup_falls_back_once_with_a_plain_warning(run, tmp_path, capsys):
    """A damaged newest backup: one warning naming the file, without Python source lines; the
    run resumes from the epoch before, whose history rows it keeps (the later ones are redone)."""
    import shutil

    folder = tmp_path / "run"
    shutil.copytree(run[0], folder)
    weights = folder / "backup" / "epoch-0002" / "variables.h5"
    weights.write_bytes(weights.read_bytes()[:1000])
    assert main(["train", *TINY, "--epochs", "2", "--output", str(folder), "--resume"]) == 0
    captured = capsys.readouterr()
    warnings = [line for line in captured.err.splitlines() if "Skipping an invalid checkpoint" in line]
    assert len(warnings) == 1 and warnings[0].startswith("keras-indi train: warning: Skipping"), captured.err
    assert "epoch-0002" in warnings[0] and "truncated" in warnings[0] and "Falling back" in warnings[0]
    assert "warnings.warn" not in captured.err and "UserWarning" not in captured.err
    assert "Resuming" in captured.out and "after epoch 1 of 2" in captured.out
    history = json.loads((folder / "history.json").read_text())
    assert history["epoch"] == [0, 1] and history == json.loads((run[0] / "history.json").read_text())


# -- restore ----------------------------------------------------------------------------------
def digest(folder):
    return {name: hashlib.sha256((folder / name).read_bytes()).hexdigest() for name in sorted(os.listdir(folder))}


@pytest.fixture
def photos(tmp_path):
    folder = tmp_path / "photos"
    folder.mkdir()
    rng = np.random.default_rng(0)
    Image.fromarray(rng.integers(0, 256, (20, 18, 3), dtype=np.uint8)).save(folder / "a.png")
    Image.fromarray(rng.integers(0, 256, (17, 23), dtype=np.uint8)).save(folder / "b.jpg")
    Image.fromarray(rng.integers(0, 256, (9, 11, 4), dtype=np.uint8)).save(folder / "c.png")  # RGBA
    (folder / "notes.txt").write_text("not an image")
    return folder


def test_restore_folder_and_file_never_touching_inputs(run, photos, tmp_path, capsys):
    model = str(run[0] / "model.keras")
    before = digest(photos)
    out = tmp_path / "restored"
    assert main(["restore", model, str(photos), "--output-dir", str(out), "--steps", "2", "--seed", "1"]) == 0
    printed = capsys.readouterr().out
    # No silent channel conversions: a grayscale input into an RGB model, an alpha channel dropped.
    assert "b.jpg) is grayscale: converted to RGB" in printed
    assert "c.png) has an alpha channel (transparency): it is dropped" in printed
    assert sorted(os.listdir(out)) == ["a.png", "b.png", "c.png"]
    sizes = {name: Image.open(out / name).size for name in os.listdir(out)}
    assert sizes == {"a.png": (18, 20), "b.png": (23, 17), "c.png": (11, 9)}
    assert Image.open(out / "b.png").mode == "RGB"
    assert digest(photos) == before

    # Existing outputs are kept unless --overwrite.
    first = digest(out)
    assert "--overwrite" in fails(["restore", model, str(photos / "a.png"), "--output-dir", str(out)], capsys)
    assert digest(out) == first

    # Tiled (a 20x18 image in 12-pixel tiles, 4 pixels of overlap), replacing the earlier a.png.
    argv = ["restore", model, str(photos / "a.png"), "--output-dir", str(out), "--overwrite",
            "--tile-size", "12", "--overlap", "4", "--steps", "2"]
    assert main(argv) == 0
    assert "tiled" in capsys.readouterr().out
    second = digest(out)
    assert second["a.png"] != first["a.png"] and second["b.png"] == first["b.png"]
    assert Image.open(out / "a.png").size == (18, 20)
    assert digest(photos) == before


def test_restore_refuses_to_write_into_an_input_folder(run, photos, capsys):
    model = str(run[0] / "model.keras")
    before = digest(photos)
    error = fails(["restore", model, str(photos), "--output-dir", str(photos)], capsys)
    assert "--allow-input-folder" in error
    error = fails(["restore", model, str(photos / "a.png"), "--output-dir", str(photos)], capsys)
    assert "--allow-input-folder" in error
    assert digest(photos) == before
    # Even when allowed, an output never replaces an input (a.png -> a.png).
    error = fails(["restore", model, str(photos), "--output-dir", str(photos), "--allow-input-folder", "--suffix", ""], capsys)
    assert "overwrite an input" in error
    assert digest(photos) == before
    # Allowed: outputs get a suffix, inputs stay as they were.
    assert main(["restore", model, str(photos), "--output-dir", str(photos), "--allow-input-folder", "--steps", "1"]) == 0
    after = digest(photos)
    assert {name: after[name] for name in before} == before
    assert sorted(set(after) - set(before)) == ["a_restored.png", "b_restored.png", "c_restored.png"]


def test_restore_errors_name_what_to_fix(run, photos, tmp_path, capsys):
    model = str(run[0] / "model.keras")
    broken = tmp_path / "broken"
    broken.mkdir()
    (broken / "fine.png").write_bytes((photos / "a.png").read_bytes())
    (broken / "corrupt.png").write_bytes(b"\x89PNG\r\n\x1a\n this is not a png")
    out = tmp_path / "out"
    error = fails(["restore", model, str(broken), "--output-dir", str(out)], capsys)
    assert "corrupt.png" in error
    assert not out.exists() or not os.listdir(out)  # checked before anything is written
    assert "not found" in fails(["restore", str(tmp_path / "missing.keras"), str(photos), "--output-dir", str(out)], capsys)
    assert "does not exist" in fails(["restore", model, str(tmp_path / "nope.png"), "--output-dir", str(out)], capsys)
    empty = tmp_path / "empty"
    empty.mkdir()
    assert "no image files" in fails(["restore", model, str(empty), "--output-dir", str(out)], capsys)
    assert "--overlap" in fails(["restore", model, str(photos), "--output-dir", str(out), "--tile-size", "16", "--overlap", "16"], capsys)
    assert "positive integer" in fails(["restore", model, str(photos), "--output-dir", str(out), "--steps", "0"], capsys)
    assert "(0, 1]" in fails(["restore", model, str(photos), "--output-dir", str(out), "--t-start", "1.5"], capsys)


# -- evaluate ---------------------------------------------------------------------------------
def test_evaluate_writes_the_tradeoff_table(run, tmp_path, capsys):
    model = str(run[0] / "model.keras")
    out = tmp_path / "evaluation"
    argv = [
        "evaluate", model, "--task", "denoising", "--image-size", "16", "--batch-size", "4",
        "--num-images", "4", "--steps", "1,2", "--baseline", f"same={model}", "--output", str(out), "--quiet",
    ]
    assert main(argv) == 0
    assert "| InDI | 2 |" in capsys.readouterr().out
    for name in ("tradeoff.md", "tradeoff.csv", "tradeoff.json", "tradeoff_plot.png", "tradeoff_grid.png", "evaluation.json"):
        assert (out / name).is_file(), name
    table = json.loads((out / "tradeoff.json").read_text())
    assert [(row["method"], row["num_steps"]) for row in table["rows"]] == [("InDI", 1), ("InDI", 2), ("same", 1)]
    assert all(np.isfinite(row["psnr"]) for row in table["rows"])
    assert "--overwrite" in fails(argv, capsys)
    assert "LABEL=MODEL" in fails(argv[:-3] + ["--baseline", "oops", "--output", str(tmp_path / "e2")], capsys)
    assert "duplicate" in fails(["evaluate", model, "--steps", "1,1", "--output", str(tmp_path / "e3")], capsys)


# -- help and argument errors -----------------------------------------------------------------
@pytest.mark.parametrize("command", [None, "quickstart", "train", "restore", "evaluate"])
def test_help_explains_each_command_with_an_example(command, capsys):
    with pytest.raises(SystemExit) as raised:
        main(["--help"] if command is None else [command, "--help"])
    assert raised.value.code == 0
    text = capsys.readouterr().out
    assert "example" in text and "keras-indi" in text
    if command is not None:
        assert f"keras-indi {command}" in text


@pytest.mark.parametrize(
    "argv, expected",
    [
        (["train"], "--output"),
        (["train", "--output", "x", "--task", "sharpening"], "unknown task"),
        (["train", "--output", "x", "--widths", "32,abc"], "comma-separated"),
        (["train", "--output", "x", "--resume", "--overwrite"], "not allowed with"),
        (["train", "--output", "x", "--learning-rate", "-1"], "positive number"),
        (["restore", "model.keras"], "INPUT"),
        (["evaluate", "model.keras", "--steps", "1,0", "--output", "x"], ">= 1"),
        (["quickstart", "--samples", "10"], "--task toy"),
        (["quickstart", "--preset", "tpu"], "invalid choice"),
        (["fly"], "invalid choice"),
    ],
)
def test_usage_errors_exit_2_with_a_message(argv, expected, capsys):
    assert expected in fails(argv, capsys)


def test_train_degrading_on_the_device(tmp_path, capsys):
    folder = tmp_path / "on-device"
    argv = ["train", *TINY, "--task", "super_resolution", "--degrade-on", "model", "--epochs", "1", "--output", str(folder)]
    assert main(argv) == 0
    config = json.loads((folder / "config.json").read_text())
    assert config["degrade_on"] == "model"
    model = cli.load_indi_model(folder / "model.keras")
    assert model.degradation is not None  # saved with the model: it degrades clean crops in fit
    history = json.loads((folder / "history.json").read_text())
    assert np.isfinite(history["loss"][0]) and np.isfinite(history["val_loss"][0])
    error = fails(["train", *TINY, "--task", "motion_deblurring", "--degrade-on", "model", "--output", str(tmp_path / "m")], capsys)
    assert "NumPy only" in error and "pipeline" in error


def test_jit_compile_flag_reaches_compile_and_may_change_on_resume(tmp_path, monkeypatch):
    """--jit-compile asks Keras for jit_compile=True (torch: torch.compile of the train step).
    Compiling for real takes a minute on torch, so the flag's value is recorded and then left
    to Keras' "auto"; the slow sampler/fit tests check the compiled paths themselves."""
    from keras_indi import InDIModel

    seen = []
    original = InDIModel.compile

    def spy(self, *args, jit_compile="auto", **kwargs):
        seen.append(jit_compile)
        return original(self, *args, jit_compile="auto", **kwargs)

    monkeypatch.setattr(InDIModel, "compile", spy)
    folder = tmp_path / "run"
    assert main(["train", *TINY, "--epochs", "1", "--output", str(folder)]) == 0
    assert json.loads((folder / "config.json").read_text())["jit_compile"] is False
    assert main(["train", *TINY, "--epochs", "2", "--jit-compile", "--output", str(folder), "--resume"]) == 0
    assert json.loads((folder / "config.json").read_text())["jit_compile"] is True
    assert seen[0] == "auto" and seen[-1] is True


def test_console_script_exits_quickly_only_after_a_successful_restore(monkeypatch):
    codes = {"restore": 0, "evaluate": 0, "train": 0}
    exits = []
    monkeypatch.setattr(cli, "main", lambda argv: codes[argv[0]])
    monkeypatch.setattr(cli, "exit_quickly", exits.append)
    monkeypatch.delenv("KERAS_INDI_QUICK_EXIT", raising=False)
    for command in ("restore", "evaluate", "train"):
        assert cli.run([command, "x"]) == 0
    assert exits == [0]  # the restore only
    monkeypatch.setenv("KERAS_INDI_QUICK_EXIT", "0")
    assert cli.run(["restore", "x"]) == 0 and exits == [0]


def test_exit_quickly_runs_atexit_functions_and_flushes_before_leaving():
    import subprocess
    import sys
    import textwrap

    code = textwrap.dedent("""
        import atexit, sys
        from keras_indi.apps.cli import exit_quickly
        atexit.register(lambda: print("from atexit"))
        sys.stdout.write("written, ")
        sys.stderr.write("error stream")
        exit_quickly(3)
        print("never reached")
    """)
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120)
    assert result.returncode == 3
    assert result.stdout == "written, from atexit\n" and result.stderr == "error stream"
