"""Fault test of `keras-indi train`: kills, signals, a full disk and two runs into one folder.

Each run is a subprocess (`fault_injection.py`) that trains a tiny model for 3 epochs with one
fault injected at a chosen write (see that module): SIGKILL (at once or a random few
milliseconds later, while the write goes on), SIGINT, SIGTERM, a full disk (Python's writes
refused with ENOSPC) and a file-size limit (the operating system refuses HDF5's own writes).
After every fault each output file is loadable or absent, never truncated; the run resumed with
``--resume`` ends bitwise identical to an uninterrupted one (every weight and optimizer variable
of model.keras, and the history).

The subprocesses use the torch backend when it is installed (no compilation: each run takes
seconds); the test runs once, in the backend-agnostic pass. With ``KERAS_INDI_FAST=1`` (CI) it runs
five training processes: the uninterrupted reference, held in the middle of a write while a
second run into its folder is refused, then a chain of SIGKILL, a file-size limit and SIGTERM,
resumed to the end. The full test also sends SIGINT, fills the disk at a history write, and
kills runs at every kind of write the reference made and at random moments.
``KERAS_INDI_FAULT_SEED`` changes the random delays.
"""

import contextlib
import csv
import errno
import importlib.util
import io
import json
import os
import random
import re
import subprocess
import sys
import time
import zipfile

import numpy as np
import pytest

from keras_indi.apps import cli
from keras_indi.callbacks import read_checkpoint_state

from conftest import FAST

pytestmark = [
    pytest.mark.backend_agnostic,
    pytest.mark.skipif(os.name != "posix", reason="the faults are POSIX signals and resource limits"),
]

TESTS = os.path.dirname(os.path.abspath(__file__))
HARNESS = os.path.join(TESTS, "fault_injection.py")
TINY = [
    "--image-size", "16", "--batch-size", "4", "--widths", "8,16", "--blocks-per-level", "1",
    "--steps-per-epoch", "2", "--validation-samples", "4", "--epochs", "3", "--quiet",
]
BACKEND = next((name for name in ("torch", "jax") if importlib.util.find_spec(name)), "tensorflow")
RANDOM = random.Random(int(os.environ.get("KERAS_INDI_FAULT_SEED", "0")))
# Temporary files of interrupted atomic writes: hidden files, and TrainingCheckpoint's pointer.
TEMPORARY = re.compile(r"^\.|^latest\.json\.tmp-[0-9a-f]{8}$")


def train(folder, fault="none@-", resume=False, trace=None, pause=None, wait=True):
    """Run `keras-indi train` TINY into `folder` with `fault` in a subprocess."""
    environment = {key: value for key, value in os.environ.items() if key != "KERAS_INDI_DEBUG"}
    environment.update(KERAS_BACKEND=BACKEND, TF_CPP_MIN_LOG_LEVEL="3", PYTHONUNBUFFERED="1")
    if trace:
        environment["TRACE_FILE"] = str(trace)
    if pause:
        environment["PAUSE_FILE"] = str(pause)
    command = [sys.executable, HARNESS, fault, *TINY, "--output", str(folder)] + (["--resume"] if resume else [])
    process = subprocess.Popen(command, env=environment, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    if not wait:
        return process
    stdout, stderr = process.communicate(timeout=600)
    return subprocess.CompletedProcess(command, process.returncode, stdout, stderr)


def keras_variables(path):
    """Every array of the .keras file `path` (weights and optimizer variables), by HDF5 path."""
    import h5py

    with zipfile.ZipFile(path) as archive:
        data = archive.read("model.weights.h5")
    arrays = {}
    with h5py.File(io.BytesIO(data), "r") as file:
        file.visititems(lambda name, item: arrays.__setitem__(name, item[()]) if isinstance(item, h5py.Dataset) else None)
    return arrays


def history_rows(folder):
    with open(folder / "history.csv", newline="") as file:
        return list(csv.reader(file))


def assert_outputs_intact(folder):
    """Every file of the run is complete and loads; the history is never behind the checkpoint."""
    for path in sorted(folder.rglob("*")):
        parts = path.relative_to(folder).parts
        if path.is_dir() or any(TEMPORARY.match(part) for part in parts):
            continue
        if path.suffix == ".json":
            json.loads(path.read_text())
        elif path.suffix == ".csv":
            rows = history_rows(folder)
            assert all(len(row) == len(rows[0]) for row in rows), rows
            assert all(float(value) == float(value) or value == "nan" for row in rows[1:] for value in row)
        elif path.suffix == ".keras":
            assert cli.keras_file_problem(path) is None, path
    saved = 0
    for checkpoint in sorted((folder / "backup").glob("epoch-*")):
        saved = max(saved, read_checkpoint_state(checkpoint)["epoch"])  # sizes and SHA-256 checked
    if (folder / "history.csv").is_file():
        epochs = [int(row[0]) for row in history_rows(folder)[1:]]
        assert epochs == list(range(len(epochs))) and len(epochs) >= saved, (epochs, saved)
    elif saved:
        raise AssertionError(f"{folder} has a checkpoint of epoch {saved} but no history.csv")


def assert_identical(folder, reference):
    """The finished run in `folder` ends exactly where the uninterrupted `reference` ended."""
    expected = keras_variables(reference / "model.keras")
    actual = keras_variables(folder / "model.keras")
    assert sorted(actual) == sorted(expected)
    different = [name for name in expected if not np.array_equal(actual[name], expected[name])]
    assert not different, f"not bitwise identical: {different[:5]}"
    assert history_rows(folder) == history_rows(reference)
    assert json.loads((folder / "history.json").read_text()) == json.loads((reference / "history.json").read_text())
    leftovers = [str(path.relative_to(folder)) for path in folder.rglob("*") if TEMPORARY.match(path.name)]
    assert not leftovers, leftovers  # temporary files of interrupted writes are cleaned up


@pytest.fixture(scope="module")
def reference(tmp_path_factory):
    """An uninterrupted run, the trace of every write it made, and what second runs into its
    folder did while it was running.

    The run is held (paused) in the middle of its first best.keras write, the temporary file
    written but not yet renamed, while second runs into its folder are started in this
    process: with --resume, without options and with --overwrite. ``second_runs`` maps each
    to ``(exit status, stderr, whether any file of the folder changed)``."""
    root = tmp_path_factory.mktemp("faults")
    folder, trace, pause = root / "reference", root / "trace.txt", root / "paused"
    first = train(folder, "pause@rename:checkpoints/best\\.keras#1", trace=trace, pause=pause, wait=False)
    second_runs = {}
    try:
        deadline = time.time() + 300
        while not pause.exists() and first.poll() is None and time.time() < deadline:
            time.sleep(0.1)
        assert pause.exists(), first.communicate()[1][-3000:]
        in_progress = sorted(path.name for path in (folder / "checkpoints").iterdir())
        assert any(name.startswith(".best.tmp-") for name in in_progress), in_progress
        for extra in ("--resume", "", "--overwrite"):
            before = {path: path.stat().st_mtime_ns for path in folder.rglob("*")}
            stderr = io.StringIO()
            with contextlib.redirect_stderr(stderr), pytest.raises(SystemExit) as raised:
                cli.main(["train", *TINY, "--output", str(folder), *extra.split()])
            changed = {path: path.stat().st_mtime_ns for path in folder.rglob("*")} != before
            second_runs[extra] = (raised.value.code, stderr.getvalue(), changed)
    finally:
        pause.unlink(missing_ok=True)
    stdout, stderr = first.communicate(timeout=600)
    assert first.returncode == 0, stderr[-3000:]
    assert "Validation PSNR (1 step): model" in stdout
    assert_outputs_intact(folder)
    return {"folder": folder, "trace": trace.read_text().splitlines(), "second_runs": second_runs, "pid": first.pid}


def test_a_second_run_into_a_folder_in_use_is_refused(reference):
    """Two runs (a fresh one, a second --resume, an --overwrite) never write one folder: the
    second is refused before its start-up clean-up, which would delete the files the first one
    is writing (here its temporary best.keras), and nothing of the first run changes."""
    assert set(reference["second_runs"]) == {"--resume", "", "--overwrite"}
    for extra, (status, error, changed) in reference["second_runs"].items():
        assert status == 2, (extra, error)
        assert f"is in use by keras-indi train (process {reference['pid']}" in error, error
        assert "wait until that run ends" in error and "--resume" in error and "Traceback" not in error
        assert not changed, extra
    # The first run then went on to the end undisturbed: its result is the reference here.
    assert (reference["folder"] / "model.keras").is_file()


def test_kills_signals_and_a_full_disk_then_resume_ends_bitwise_identical(reference, tmp_path):
    folder = tmp_path / "run"
    delay = lambda: f"{RANDOM.uniform(0.0, 0.05):.3f}"  # noqa: E731
    steps = [
        # (fault, resumed, exit status, message, slow): one process each, resuming the one
        # before; KERAS_INDI_FAST=1 leaves out the slow ones.
        # SIGKILL during the second backup write (the weights' HDF5 file, or just after).
        (f"kill+{delay()}@backup/\\.tmp-epoch-#2", False, -9, None, False),
        # A file-size limit during HDF5's own writes of the backup: exit 2, no segmentation fault.
        ("fsize@backup/\\.tmp-epoch-#1", True, 2, "The disk is full", False),
        # A full disk when the history is written: exit 2, the history is not lost.
        ("enospc@\\.history\\.tmp#1", True, 2, "No space left on device", True),
        # SIGTERM while last.keras is written: exit 143 with the resume hint.
        (f"term+{delay()}@checkpoints/\\.last\\.tmp#1", True, 143, "terminated (SIGTERM)", False),
        # Ctrl-C while the backup is written.
        (f"int+{delay()}@backup/\\.tmp-epoch-#1", True, 130, "interrupted", True),
        # SIGKILL while the model.keras of the end is written.
        (f"kill+{delay()}@\\.model\\.tmp#1", True, -9, None, True),
    ]
    for fault, resumed, status, message, slow in steps:
        if slow and FAST:
            continue
        result = train(folder, fault, resume=resumed)
        assert result.returncode == status, (fault, result.returncode, result.stderr[-3000:])
        if message:
            assert message in result.stderr and "Traceback" not in result.stderr, (fault, result.stderr[-3000:])
        if status in (2, 130, 143):
            assert "--resume" in result.stderr, result.stderr[-2000:]
        if status == -9:  # a stale lock of a dead process: taken over by the next run
            assert (folder / ".keras-indi.lock").exists()
        assert_outputs_intact(folder)
    result = train(folder, resume=True)
    assert result.returncode == 0, result.stderr[-3000:]
    assert not (folder / ".keras-indi.lock").exists()
    assert_outputs_intact(folder)
    assert_identical(folder, reference["folder"])


def test_folder_lock_takes_over_a_stale_lock_and_refuses_a_live_one(tmp_path, monkeypatch, capsys):
    from keras_indi.utils.folder_lock import LOCK_NAME, FolderInUseError, FolderLock

    folder = tmp_path / "run"
    folder.mkdir()
    # A lock file left by a process that died (SIGKILL): no process holds its lock any more.
    (folder / LOCK_NAME).write_text(json.dumps({"pid": 999999999, "purpose": "keras-indi train"}))
    with FolderLock(folder, purpose="keras-indi train") as held:
        assert json.loads((folder / LOCK_NAME).read_text())["pid"] == os.getpid()
        with pytest.raises(FolderInUseError, match=rf"in use by keras-indi train \(process {os.getpid()}"):
            FolderLock(folder).acquire()
        assert held.descriptor is not None
    assert not (folder / LOCK_NAME).exists()
    # A folder the lock created is removed again when nothing was written into it.
    with FolderLock(tmp_path / "new"):
        assert (tmp_path / "new").is_dir()
    assert not (tmp_path / "new").exists()
    # A file system without locks (some network ones): a warning, and the run goes on.
    fcntl = pytest.importorskip("fcntl")

    def no_locks(descriptor, operation):
        raise OSError(errno.ENOLCK, "No locks available")

    monkeypatch.setattr(fcntl, "flock", no_locks)
    with FolderLock(tmp_path / "network"):
        pass
    assert "does not support locks" in capsys.readouterr().err


# -- the full test: every kind of write, and random moments --------------------------------------
def fault_selectors(trace):
    """``KIND:PATTERN`` for each kind of write of the reference run's `trace` (its lines are
    ``kind path``), in the order the run first makes them: the random parts of the names (the
    8 hexadecimal digits of temporary files, the epoch numbers) match any value."""
    selectors = []
    for line in trace:
        kind, path = line.split(" ", 1)
        pattern = re.escape(path)
        pattern = re.sub(r"[0-9a-f]{8}", "[0-9a-f]{8}", pattern)
        pattern = re.sub(r"epoch\\-\d{4}|epoch-\d{4}", r"epoch-\\d{4}", pattern)
        selector = f"{kind}:^{pattern}$"
        if kind != "remove" and selector not in selectors:
            selectors.append(selector)
    return selectors


@pytest.mark.slow
def test_a_kill_at_every_kind_of_write_and_at_random_moments_then_resume(reference, tmp_path):
    """SIGKILL at the first write of each kind (at its start, and for files a few milliseconds
    into it) and at random moments of the whole run. One folder takes the faults in turn, each
    run resuming the one before; when a run ends before its fault, its result is checked and
    the next faults go to a fresh folder."""
    folder_reference, trace = reference["folder"], reference["trace"]
    faults = []
    for selector in fault_selectors(trace):
        faults.append(f"kill@{selector}#1")
        if selector.startswith("write:"):
            faults.append(f"kill+{RANDOM.uniform(0.001, 0.1):.3f}@{selector}#1")
    faults += [f"kill+{RANDOM.uniform(0.0, 8.0):.2f}@\\.keras-indi\\.lock#1" for _ in range(3)]
    assert len(faults) >= 30, faults
    folders = iter(tmp_path / f"run{index}" for index in range(len(faults) + 1))
    folder = next(folders)
    for fault in faults:
        result = train(folder, fault, resume=True)  # --resume on an empty folder starts the run
        assert result.returncode in (-9, 0), (fault, result.stderr[-3000:])
        assert_outputs_intact(folder)
        if result.returncode == 0:
            assert_identical(folder, folder_reference)
            folder = next(folders)
    result = train(folder, resume=True)
    assert result.returncode == 0, result.stderr[-3000:]
    assert_identical(folder, folder_reference)
