"""keras_indi.callbacks on public Keras API only: built on Keras' own callbacks, no private
attribute, and what that way of resuming must still do (tiny models, every backend)."""

import json
import os
import re

import keras
import numpy as np
import pytest

import keras_indi.callbacks
from keras_indi.callbacks import NonFiniteLossGuard, TrainingCheckpoint, read_checkpoint_state
from test_callbacks import CLEAN, DEGRADED, FIT, built_model, make_model, numpy_values


def test_no_private_keras_api_and_keras_own_callbacks_as_bases():
    with open(keras_indi.callbacks.__file__) as file:
        source = file.read()
    private = re.findall(r"keras\.src|_seed_generators\b|_initial_epoch|_save_state|_flatten_layers|\bmodel\._", source)
    assert not private, private
    assert issubclass(TrainingCheckpoint, keras.callbacks.BackupAndRestore)
    assert issubclass(NonFiniteLossGuard, keras.callbacks.TerminateOnNaN)


def test_a_later_fit_without_the_checkpoint_starts_at_epoch_zero(tmp_path):
    """Keras' BackupAndRestore leaves its start epoch on the model; TrainingCheckpoint resets it,
    and leaves no file of BackupAndRestore in its directory."""
    model = make_model(ema=False)
    model.fit(DEGRADED, CLEAN, epochs=1, callbacks=[TrainingCheckpoint(tmp_path, monitor="loss")], **FIT)
    resumed = make_model(ema=False)
    history = resumed.fit(DEGRADED, CLEAN, epochs=2, callbacks=[TrainingCheckpoint(tmp_path, monitor="loss")], **FIT)
    assert history.epoch == [1]
    assert resumed.fit(DEGRADED, CLEAN, epochs=1, **FIT).epoch == [0]
    assert sorted(os.listdir(tmp_path)) == ["epoch-0001", "epoch-0002", "latest.json"]


def test_leftover_of_a_kill_while_fit_starts_is_removed(tmp_path):
    model = built_model(ema=False)
    checkpoint = TrainingCheckpoint(tmp_path, monitor="loss")
    checkpoint.set_model(model)
    checkpoint.on_train_begin()
    checkpoint.on_epoch_end(0, {"loss": 1.0})
    (tmp_path / "training_metadata.json").write_text('{"epoch": 5}')  # killed before its removal
    (tmp_path / ".training_metadata.tmp-0123abcd.json").write_text('{"ep')
    checkpoint.on_train_begin()
    assert checkpoint.restored_state["epoch"] == 1
    assert sorted(os.listdir(tmp_path)) == ["epoch-0001", "latest.json"]
    # fit() must start at the restored epoch: a Keras that started elsewhere is reported.
    with pytest.raises(RuntimeError, match="started at epoch 0 instead of 1"):
        checkpoint.on_epoch_begin(0)
    checkpoint.on_train_end()


def test_checkpoint_of_an_earlier_format_is_reported_clearly(tmp_path):
    model = built_model(ema=False)
    checkpoint = TrainingCheckpoint(tmp_path, monitor="loss")
    checkpoint.set_model(model)
    checkpoint.on_train_begin()
    checkpoint.on_epoch_end(0, {"loss": 1.0})
    state_path = tmp_path / "epoch-0001" / "state.json"
    state_path.write_text(json.dumps(dict(json.loads(state_path.read_text()), format=1)))
    with pytest.raises(ValueError, match="earlier keras-indi .checkpoint format 1"):
        read_checkpoint_state(tmp_path / "epoch-0001")
    with pytest.raises(ValueError, match="No valid checkpoint.*format 1"):
        TrainingCheckpoint.latest(tmp_path)


def test_variables_of_any_dtype_round_trip_bitwise(tmp_path):
    """bfloat16 has no HDF5 type: stored as float32, restored exactly."""
    from keras_indi.callbacks import _load_variables, _save_variables

    def model():
        layers = [keras.Input((3,)), keras.layers.Dense(4, dtype="bfloat16"), keras.layers.Dense(2, dtype="float16")]
        built = keras.Sequential(layers + [keras.layers.Dropout(0.5, seed=1)])
        built.compile(optimizer="sgd", loss="mse")
        built.optimizer.build(built.trainable_variables)
        return built

    source = model()
    rng = np.random.default_rng(0)
    for variable in source.variables:
        variable.assign(rng.uniform(0, 9, size=variable.shape).astype("float32").astype(variable.dtype))
    _save_variables(source, tmp_path / "model.weights.h5")
    target = model()
    _load_variables(target, tmp_path / "model.weights.h5")
    assert len(target.variables) > len(target.weights)  # the dropout's seed generator too
    for expected, actual in zip(numpy_values(source.variables), numpy_values(target.variables)):
        assert actual.dtype == expected.dtype and actual.tobytes() == expected.tobytes()

    mismatched = keras.Sequential([keras.Input((3,)), keras.layers.Dense(5)])
    with pytest.raises(ValueError, match="different configuration"):
        _load_variables(mismatched, tmp_path / "model.weights.h5")
