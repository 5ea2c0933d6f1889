"""TrainingCheckpoint (atomic, resumable checkpoints) and NonFiniteLossGuard.

Tiny MLPs on the 2D toy problem keep this file fast on every backend.
"""

import json
import os
import signal
import subprocess
import sys

import keras
import numpy as np
import pytest

from keras_indi import InDIModel
from keras_indi.callbacks import (
    AtomicHistoryLogger,
    AtomicModelCheckpoint,
    NonFiniteLossGuard,
    TrainingCheckpoint,
    read_checkpoint_state,
    save_model_atomically,
    write_json_atomically,
)
from keras_indi.datasets.toy import toy_modes_dataset
from keras_indi.networks import TimeConditionalMLP

DEGRADED, CLEAN = toy_modes_dataset(64, seed=0)
FIT = dict(batch_size=16, shuffle=False, verbose=0)

TESTS = os.path.dirname(os.path.abspath(__file__))


def make_model(ema=True, seed=0):
    """The model of every test here, also imported by the subprocesses of the kill test."""
    keras.utils.set_random_seed(seed)  # the same initial weights in every process
    model = InDIModel(TimeConditionalMLP(features=2, hidden_units=(16,)), value_range=None, seed=seed)
    model.compile(optimizer=keras.optimizers.Adam(1e-2, use_ema=ema))
    return model


def numpy_values(variables):
    return [keras.ops.convert_to_numpy(v) for v in variables]


def assert_same_values(actual, expected, atol=1e-5):
    assert len(actual) == len(expected)
    for a, b in zip(actual, expected):
        np.testing.assert_allclose(a, b, atol=atol, rtol=1e-5)


def built_model(**kwargs):
    model = make_model(**kwargs)
    model(DEGRADED[:1])
    model.optimizer.build(model.trainable_variables)
    return model


def perturb(model, seed):
    """Give `model` new weights (a stand-in for a training epoch, without the compile time)."""
    rng = np.random.default_rng(seed)
    for variable in model.trainable_variables:
        variable.assign(rng.normal(size=variable.shape).astype("float32"))


def save_epochs(directory, values, monitor="val_loss", **kwargs):
    """Drive a TrainingCheckpoint by hand: one save per value of `monitor`, new weights each."""
    model = built_model(ema=False)
    checkpoint = TrainingCheckpoint(directory, monitor=monitor, **kwargs)
    checkpoint.set_model(model)
    checkpoint.on_train_begin()
    weights = []
    for epoch, value in enumerate(values):
        perturb(model, epoch)
        weights.append(numpy_values(model.trainable_variables))
        checkpoint.on_epoch_end(epoch, {"loss": 1.0, monitor: value})
    return model, checkpoint, weights


@pytest.fixture(scope="module")
def reference():
    """The uninterrupted run that the resumed ones must reproduce: 4 epochs with EMA."""
    model = make_model()
    model.fit(DEGRADED, CLEAN, epochs=4, **FIT)
    return model


def test_resume_matches_uninterrupted_training_with_ema_and_seed_state(tmp_path, reference):
    full = reference.history.history["loss"]

    first = make_model()
    directory = tmp_path / "run"
    first.fit(DEGRADED, CLEAN, epochs=2, callbacks=[TrainingCheckpoint(directory, monitor="loss")], **FIT)
    saved_seed = keras.ops.convert_to_numpy(first.seed_generator.state)
    assert saved_seed[1] > 0, "the InDI seed generator should have advanced"

    # A fresh model, as in a new process: fit() restores epoch 2 and runs epochs 3 and 4.
    resumed = make_model()
    checkpoint = TrainingCheckpoint(directory, monitor="loss")
    history = resumed.fit(DEGRADED, CLEAN, epochs=4, callbacks=[checkpoint], **FIT)
    assert checkpoint.restored_state["epoch"] == 2 and checkpoint.restored_state["step"] == 8
    assert history.epoch == [2, 3]
    assert resumed._initial_epoch is None
    np.testing.assert_allclose(
        first.history.history["loss"] + history.history["loss"], full, rtol=1e-5, atol=1e-6
    )
    assert_same_values(numpy_values(resumed.trainable_variables), numpy_values(reference.trainable_variables))
    # Optimizer slots, iteration count and the EMA averages, and the seed generator states.
    averages = [v for v in resumed.optimizer.variables if "average" in v.path]
    assert len(averages) == len(resumed.trainable_variables)
    assert_same_values(numpy_values(resumed.optimizer.variables), numpy_values(reference.optimizer.variables))
    assert_same_values(numpy_values(resumed.non_trainable_variables), numpy_values(reference.non_trainable_variables), atol=0)
    assert int(keras.ops.convert_to_numpy(resumed.optimizer.iterations)) == 16

    # Restoring explicitly brings back the state saved at epoch 2, seed generator included.
    fresh = built_model()
    state = TrainingCheckpoint(directory).restore(fresh, checkpoint=directory / "epoch-0002")
    assert state["epoch"] == 2 and state["logs"]["loss"] == pytest.approx(full[1], rel=1e-5)
    np.testing.assert_array_equal(keras.ops.convert_to_numpy(fresh.seed_generator.state), saved_seed)
    assert int(keras.ops.convert_to_numpy(fresh.optimizer.iterations)) == 8


KILLED_RUN = """
import os, signal, sys
import keras
import numpy as np
from keras_indi.callbacks import TrainingCheckpoint
from test_callbacks import CLEAN, DEGRADED, FIT, make_model

directory, kill = sys.argv[1], sys.argv[2] == "kill"
model = make_model()
if kill:
    import keras_indi.callbacks

    save_variables = keras_indi.callbacks._save_variables

    def save_then_die(model, path):
        save_variables(model, path)
        if "epoch-0003" in str(path):  # killed in the middle of writing epoch 3's checkpoint
            os.kill(os.getpid(), signal.SIGKILL)

    keras_indi.callbacks._save_variables = save_then_die
history = model.fit(DEGRADED, CLEAN, epochs=4, callbacks=[TrainingCheckpoint(directory)], **FIT)
weights = [keras.ops.convert_to_numpy(v) for v in model.trainable_variables]
np.savez(os.path.join(directory, "..", "final.npz"), *weights, epochs=np.array(history.epoch))
"""


def test_killed_subprocess_resumes_in_another_process(tmp_path, reference):
    script = tmp_path / "train.py"
    script.write_text(KILLED_RUN)
    directory = tmp_path / "run"
    env = dict(os.environ, PYTHONPATH=TESTS + os.pathsep + os.environ.get("PYTHONPATH", ""))

    def run(mode):
        return subprocess.run(
            [sys.executable, str(script), str(directory), mode], env=env, capture_output=True, text=True, timeout=300
        )

    killed = run("kill")
    assert killed.returncode == -signal.SIGKILL, killed.stderr[-3000:]
    leftovers = [name for name in os.listdir(directory) if name.startswith(".tmp-epoch-0003")]
    assert leftovers, "the kill should have left the unfinished epoch-0003 write behind"
    assert json.loads((directory / "latest.json").read_text())["latest"] == "epoch-0002"

    resumed = run("resume")
    assert resumed.returncode == 0, resumed.stderr[-3000:]
    assert "interrupted" in resumed.stderr  # the leftover was reported and removed
    assert not any(name.startswith(".tmp-") for name in os.listdir(directory))
    final = np.load(tmp_path / "final.npz")
    assert final["epochs"].tolist() == [2, 3]

    expected = numpy_values(reference.trainable_variables)
    assert_same_values([final[f"arr_{i}"] for i in range(len(expected))], expected)


def test_damaged_newest_checkpoint_falls_back_to_previous_one(tmp_path):
    _, _, weights = save_epochs(tmp_path, [3.0, 2.0, 1.0], keep_last=5)
    newest = tmp_path / "epoch-0003" / "variables.h5"
    newest.write_bytes(newest.read_bytes()[: newest.stat().st_size // 2])  # truncated
    middle = tmp_path / "epoch-0002" / "variables.h5"
    data = bytearray(middle.read_bytes())
    data[len(data) // 2] ^= 0xFF  # garbled, same size
    middle.write_bytes(bytes(data))
    (tmp_path / ".tmp-epoch-0004-0123abcd").mkdir()  # an unfinished save: never a candidate

    with pytest.warns(UserWarning, match="Falling back") as record:
        assert TrainingCheckpoint.latest(tmp_path) == str(tmp_path / "epoch-0001")
    messages = " ".join(str(warning.message) for warning in record)
    assert "epoch-0003/variables.h5 is truncated" in messages.replace(os.sep, "/")
    assert "epoch-0002/variables.h5 is corrupted" in messages.replace(os.sep, "/")
    fresh = built_model(ema=False)
    with pytest.warns(UserWarning, match="Falling back"):
        assert TrainingCheckpoint(tmp_path).restore(fresh)["epoch"] == 1
    assert_same_values(numpy_values(fresh.trainable_variables), weights[0], atol=0)

    (tmp_path / "epoch-0001" / "state.json").unlink()
    with pytest.raises(ValueError, match="No valid checkpoint.*epoch-0001.state.json is missing"):
        TrainingCheckpoint.latest(tmp_path)


def test_crash_mid_save_leaves_previous_checkpoint_valid(tmp_path, monkeypatch):
    import keras_indi.callbacks

    model, checkpoint, weights = save_epochs(tmp_path, [2.0, 1.0])
    original = keras_indi.callbacks._save_variables

    def crash_halfway(model, path):
        original(model, path)
        with open(path, "r+b") as file:
            file.truncate(os.path.getsize(path) // 2)
        raise OSError("disk full")

    monkeypatch.setattr(keras_indi.callbacks, "_save_variables", crash_halfway)
    with pytest.raises(OSError, match="disk full"):
        checkpoint.on_epoch_end(2, {"loss": 1.0, "val_loss": 0.5})
    assert sorted(os.listdir(tmp_path)) == ["epoch-0001", "epoch-0002", "latest.json"]
    assert json.loads((tmp_path / "latest.json").read_text())["latest"] == "epoch-0002"
    fresh = built_model(ema=False)
    assert TrainingCheckpoint(tmp_path).restore(fresh)["epoch"] == 2
    assert_same_values(numpy_values(fresh.trainable_variables), weights[1], atol=0)


def test_crash_mid_save_leaves_the_previous_keras_file_intact(tmp_path, monkeypatch):
    """A kill or a full disk while writing a .keras file must not leave it truncated: the
    file is written next to it and renamed into place."""
    model = built_model(ema=False)
    path = tmp_path / "last.keras"
    checkpoint = AtomicModelCheckpoint(path)
    checkpoint.set_model(model)
    checkpoint.on_epoch_end(0, {"loss": 1.0})
    before = path.read_bytes()
    original = model.save

    def crash_halfway(target, *args, **kwargs):
        assert os.path.dirname(os.fspath(target)) == str(tmp_path) and os.fspath(target) != str(path)
        original(target, *args, **kwargs)
        with open(target, "r+b") as file:
            file.truncate(os.path.getsize(target) // 2)
        raise OSError("disk full")

    perturb(model, 1)
    monkeypatch.setattr(model, "save", crash_halfway)
    with pytest.raises(OSError, match="disk full"):
        checkpoint.on_epoch_end(1, {"loss": 0.5})
    assert path.read_bytes() == before and sorted(os.listdir(tmp_path)) == ["last.keras"]
    with pytest.raises(OSError, match="disk full"):
        save_model_atomically(model, path)
    assert path.read_bytes() == before and sorted(os.listdir(tmp_path)) == ["last.keras"]
    assert isinstance(keras.saving.load_model(path), InDIModel)

    # A leftover of a killed save (no exception to clean up after) is removed at the next fit.
    (tmp_path / ".last.tmp-0123abcd.keras").write_bytes(b"half")
    checkpoint.on_train_begin()
    assert sorted(os.listdir(tmp_path)) == ["last.keras"]


def test_json_written_atomically(tmp_path, monkeypatch):
    path = tmp_path / "config.json"
    write_json_atomically(path, {"epochs": 1})

    def crash(data, file, **kwargs):
        file.write('{"epo')
        raise OSError("disk full")

    monkeypatch.setattr(json, "dump", crash)
    with pytest.raises(OSError, match="disk full"):
        write_json_atomically(path, {"epochs": 2})
    assert json.loads(path.read_text()) == {"epochs": 1} and os.listdir(tmp_path) == ["config.json"]


def test_atomic_model_checkpoint_saves_only_improvements(tmp_path):
    model = built_model(ema=False)
    path = tmp_path / "best.keras"
    checkpoint = AtomicModelCheckpoint(path, monitor="val_loss", save_best_only=True, initial_value_threshold=1.0)
    checkpoint.set_model(model)
    checkpoint.on_epoch_end(0, {"val_loss": 2.0})
    assert not path.exists()  # not better than the resumed run's best
    checkpoint.on_epoch_end(1, {"val_loss": 0.5})
    first = path.read_bytes()
    perturb(model, 2)
    checkpoint.on_epoch_end(2, {"val_loss": float("nan")})
    checkpoint.on_epoch_end(3, {"val_loss": 0.7})
    assert path.read_bytes() == first and checkpoint.best == 0.5
    with pytest.raises(ValueError, match=".keras"):
        AtomicModelCheckpoint(tmp_path / "model.h5")


def test_keep_last_and_keep_best_rotation(tmp_path):
    values = [5.0, 3.0, 4.0, 1.0, 2.0, 6.0]
    save_epochs(tmp_path / "min", values, keep_last=2, keep_best=1)
    assert sorted(os.listdir(tmp_path / "min")) == ["epoch-0004", "epoch-0005", "epoch-0006", "latest.json"]
    pointer = json.loads((tmp_path / "min" / "latest.json").read_text())
    assert pointer["latest"] == "epoch-0006" and pointer["best"] == ["epoch-0004"]

    save_epochs(tmp_path / "max", values, monitor="psnr", mode="max", keep_last=1, keep_best=2)
    assert sorted(os.listdir(tmp_path / "max")) == ["epoch-0001", "epoch-0006", "latest.json"]

    user_file = tmp_path / "all" / "notes.txt"
    user_file.parent.mkdir()
    user_file.write_text("mine")
    save_epochs(tmp_path / "all", values, keep_last=None, keep_best=0)
    assert len(os.listdir(tmp_path / "all")) == 8 and user_file.read_text() == "mine"
    assert read_checkpoint_state(tmp_path / "all" / "epoch-0003")["monitor_value"] == 4.0

    with pytest.raises(ValueError, match="already holds checkpoints"):
        save_epochs(tmp_path / "all", values, resume=False)


def test_save_every_n_batches_resumes_the_interrupted_epoch(tmp_path):
    model = built_model(ema=False)
    checkpoint = TrainingCheckpoint(tmp_path, save_freq=2, keep_last=2, monitor="loss")
    checkpoint.set_model(model)
    checkpoint.on_train_begin()
    for epoch in range(2):
        checkpoint.on_epoch_begin(epoch)
        for batch in range(3):
            checkpoint.on_train_batch_end(batch, {"loss": 1.0 / (1 + batch)})
        checkpoint.on_epoch_end(epoch, {"loss": 0.5})
    names = sorted(name for name in os.listdir(tmp_path) if name.startswith("epoch-"))
    assert names == ["epoch-0000-batch-000002", "epoch-0001-batch-000002"]

    resumed = built_model(ema=False)
    checkpoint = TrainingCheckpoint(tmp_path, save_freq=2)
    checkpoint.set_model(resumed)
    checkpoint.on_train_begin()
    assert checkpoint.restored_state["epoch"] == 1 and resumed._initial_epoch == 1
    checkpoint.on_train_end()
    assert resumed._initial_epoch is None


@pytest.mark.parametrize(
    "kwargs, match",
    [
        (dict(keep_last=0), "keep_last"),
        (dict(keep_best=-1), "keep_best"),
        (dict(mode="lowest"), "mode"),
        (dict(save_freq="batch"), "save_freq"),
        (dict(monitor=""), "monitor"),
        (dict(resume="yes"), "resume"),
    ],
)
def test_bad_arguments_raise_value_error(tmp_path, kwargs, match):
    with pytest.raises(ValueError, match=match):
        TrainingCheckpoint(tmp_path, **kwargs)


def test_non_finite_loss_guard_stops_training_and_names_causes(tmp_path, capsys):
    def batches():
        while True:
            yield DEGRADED[:16], CLEAN[:16]
            yield np.full((16, 2), np.nan, "float32"), CLEAN[:16]

    model = make_model(ema=False)
    guard = NonFiniteLossGuard()
    checkpoint = TrainingCheckpoint(tmp_path, monitor="loss")
    with pytest.warns(UserWarning, match="not saving epoch-0001"):
        history = model.fit(batches(), steps_per_epoch=3, epochs=3, callbacks=[guard, checkpoint], **FIT)
    assert len(history.epoch) == 1 and guard.stopped_at["epoch"] == 1 and guard.stopped_at["batch"] == 1
    message = capsys.readouterr().err
    assert "epoch 1, batch 1" in message
    for cause in ("Learning rate too high", "keras_indi.utils.validation", "[-1, 1]", "NaN", "float16", "loss scaling"):
        assert cause in message
    assert not [name for name in os.listdir(tmp_path) if name.startswith("epoch-")]

    with pytest.raises(FloatingPointError, match="Likely causes"):
        guard = NonFiniteLossGuard(raise_error=True)
        make_model(ema=False).fit(batches(), steps_per_epoch=3, epochs=1, callbacks=[guard], **FIT)


def test_history_logger_rewrites_both_files_atomically_and_resumes_from_given_rows(tmp_path, monkeypatch):
    import csv

    csv_path, json_path = tmp_path / "history.csv", tmp_path / "history.json"
    logger = AtomicHistoryLogger(csv_path, json_path)
    logger.on_epoch_end(0, {"loss": 0.5, "val_loss": 0.25})
    logger.on_epoch_end(1, {"loss": float("nan"), "val_loss": 0.125})
    with open(csv_path, newline="") as file:
        assert list(csv.reader(file)) == [["epoch", "loss", "val_loss"], ["0", "0.5", "0.25"], ["1", "nan", "0.125"]]
    assert json.loads(json_path.read_text()) == {"epoch": [0, 1], "loss": [0.5, None], "val_loss": [0.25, 0.125]}
    before = csv_path.read_bytes(), json_path.read_bytes()

    # A failing write (a full disk) leaves both files as they were, and no temporary file.
    def full_disk(data, file, **kwargs):
        file.write('{"epo')
        raise OSError(28, "No space left on device")

    with monkeypatch.context() as patch:
        patch.setattr(json, "dump", full_disk)
        with pytest.raises(OSError, match="No space"):
            logger.on_epoch_end(2, {"loss": 0.1, "val_loss": 0.1})
    assert json_path.read_bytes() == before[1] and sorted(os.listdir(tmp_path)) == ["history.csv", "history.json"]

    # A resumed run passes the rows of the epochs its checkpoint holds; re-run epochs replace theirs.
    resumed = AtomicHistoryLogger(csv_path, json_path, rows=[{"epoch": 0, "loss": 0.5, "val_loss": 0.25}])
    resumed.on_epoch_end(1, {"loss": 0.375, "val_loss": 0.125})
    assert json.loads(json_path.read_text())["loss"] == [0.5, 0.375]
    with pytest.raises(ValueError, match="epoch"):
        AtomicHistoryLogger(csv_path, rows=[{"loss": 1.0}])


def test_checkpoint_warnings_have_their_own_category(tmp_path):
    from keras_indi.callbacks import CheckpointWarning

    save_epochs(tmp_path, [2.0, 1.0], keep_last=5)
    state = tmp_path / "epoch-0002" / "state.json"
    state.write_text(state.read_text()[:20])
    with pytest.warns(CheckpointWarning, match="Falling back to .*epoch-0001"):
        assert TrainingCheckpoint.latest(tmp_path).endswith("epoch-0001")
    assert issubclass(CheckpointWarning, UserWarning)


def test_weights_are_written_through_memory_and_load(tmp_path, monkeypatch):
    """TrainingCheckpoint writes model.weights.h5 from memory (HDF5 writing straight to a full
    disk crashes the interpreter at exit): the file is written by Python, and loads back
    (weights, seed generator states and optimizer variables)."""
    import builtins

    from keras_indi.callbacks import _load_variables, _save_variables

    model = built_model()
    perturb(model, 3)
    seed = model.seed_generator.state
    seed.assign(np.array([0, 7]).astype(keras.backend.standardize_dtype(seed.dtype)))
    path = tmp_path / "model.weights.h5"
    opened, original_open = [], builtins.open

    def recording_open(file, *args, **kwargs):
        opened.append(str(file))
        return original_open(file, *args, **kwargs)

    monkeypatch.setattr(builtins, "open", recording_open)
    _save_variables(model, path)
    monkeypatch.undo()
    assert opened == [str(path)]  # the file is opened (written) once, by Python
    fresh = built_model()
    _load_variables(fresh, path)
    assert_same_values(numpy_values(fresh.variables), numpy_values(model.variables), atol=0)
    assert_same_values(numpy_values(fresh.optimizer.variables), numpy_values(model.optimizer.variables), atol=0)
    assert keras.ops.convert_to_numpy(fresh.seed_generator.state).tolist() == [0, 7]


def test_signals_deferred_holds_a_signal_from_another_thread_until_the_block_ends():
    # A process-directed signal may land on any thread (here a timer's); the handler must still
    # not run inside the block, where h5py objects live, and must run once right after it.
    import threading
    import time

    from keras_indi.callbacks import _signals_deferred

    calls = []

    def handler(number, frame):
        calls.append(number)

    previous = signal.signal(signal.SIGTERM, handler)
    try:
        with _signals_deferred():
            sender = threading.Thread(target=os.kill, args=(os.getpid(), signal.SIGTERM))
            sender.start()
            sender.join()
            for _ in range(50):  # give Python many chances to run a pending handler
                time.sleep(0.001)
            assert calls == []
            assert signal.getsignal(signal.SIGTERM) is not handler
        assert calls == [signal.SIGTERM]
        assert signal.getsignal(signal.SIGTERM) is handler
    finally:
        signal.signal(signal.SIGTERM, previous)
