"""Keras callbacks for reliable training: resumable checkpoints and a non-finite loss guard.

`InDIModel` adds no callback by default; pass these to ``fit(callbacks=[...])``:

* `TrainingCheckpoint` writes the full training state at the end of every epoch (weights,
  optimizer slots and EMA, the seed generators that draw t and the noise, counters and logs),
  atomically, and resumes a killed run where it stopped.
* `NonFiniteLossGuard` stops training at the first NaN/Inf loss and says where it happened
  and what usually causes it.
* `AtomicModelCheckpoint` and `AtomicHistoryLogger` write a ``.keras`` file and the
  history files (CSV, JSON) every epoch, through a temporary file and a rename, so a kill or a
  full disk never leaves them half-written.

>>> import keras_indi
>>> callbacks = [
...     keras_indi.callbacks.TrainingCheckpoint("runs/denoise/checkpoints"),
...     keras_indi.callbacks.NonFiniteLossGuard(),
... ]
>>> model.fit(degraded, clean, epochs=100, callbacks=callbacks)  # doctest: +SKIP

Rerunning the same script after a crash or a kill resumes at the epoch after the last
checkpoint.

Only public Keras API is used. `TrainingCheckpoint` and `NonFiniteLossGuard` extend
``keras.callbacks.BackupAndRestore`` and ``keras.callbacks.TerminateOnNaN``. Keras has no
public way for a callback to make ``fit`` start at a later epoch: only
``BackupAndRestore.on_train_begin`` does it, from the ``training_metadata.json`` file of its
``backup_dir`` (``{"epoch": N}``). `TrainingCheckpoint` writes that file for the moment of
that call (and once more with ``null`` at the end of ``fit``, which Keras' own callback never
does, so that a later ``fit`` of the model starts at epoch 0 again), and checks at the first
epoch that ``fit`` started where it should, raising ``RuntimeError`` if a Keras version does
it otherwise.
"""

import contextlib
import csv
import gc
import io
import json
import math
import os
import re
import shutil
import signal
import sys
import threading
import time
import uuid
import warnings

import keras
import numpy as np

from keras_indi.api_export import keras_indi_export
from keras_indi.utils.files import file_digest as _sha256
from keras_indi.utils.files import fsync_path as _fsync
from keras_indi.utils.files import replace_atomically as _replace_atomically
from keras_indi.utils.validation import check_choice, check_positive_int

# Format 1 (earlier keras-indi): model.save_weights' file and seed_generators.npz apart.
_FORMAT = 2
_VARIABLES = "variables.h5"
_STATE = "state.json"
_LATEST = "latest.json"
_KERAS_METADATA = "training_metadata.json"  # keras.callbacks.BackupAndRestore's, see above
_CHECKPOINT_NAME = re.compile(r"^epoch-(\d{4,})(?:-batch-(\d+))?$")
# Unfinished writes of this callback: checkpoint folders being written or being replaced,
# temporary JSON files and the file only ever there while fit starts and ends (a kill can
# leave them). Nothing else in the directory is ever deleted.
_LEFTOVER_NAME = re.compile(
    r"^(?:\.(?:tmp|old)-epoch-\d{4,}(?:-batch-\d+)?-[0-9a-f]{8}|\.(?:latest|training_metadata)\.tmp-[0-9a-f]{8}\.json"
    r"|latest\.json\.tmp-[0-9a-f]{8}|training_metadata\.json)$"
)


@keras_indi_export("keras_indi.callbacks.CheckpointWarning")
class CheckpointWarning(UserWarning):
    """The warnings of `TrainingCheckpoint`: a damaged checkpoint skipped (and the one it falls
    back to), an interrupted save removed, a checkpoint not written. A subclass of
    ``UserWarning``, so that a program (``keras-indi train``) can show them its own way."""


def _checkpoint_name(epoch, batch=0):
    return f"epoch-{epoch:04d}" if not batch else f"epoch-{epoch:04d}-batch-{batch:06d}"


def _list_checkpoints(directory):
    """``[((epoch, batch), name)]`` of the checkpoint folders in `directory`, oldest first."""
    if not os.path.isdir(directory):
        return []
    found = []
    for name in os.listdir(directory):
        match = _CHECKPOINT_NAME.match(name)
        if match and os.path.isdir(os.path.join(directory, name)):
            found.append(((int(match.group(1)), int(match.group(2) or 0)), name))
    return sorted(found)


def _read_json(path):
    with open(path) as file:
        return json.load(file)


def _scalar_logs(logs):
    """The scalar entries of Keras `logs` as Python floats (JSON-ready)."""
    scalars = {}
    for key, value in (logs or {}).items():
        try:
            array = np.asarray(keras.ops.convert_to_numpy(value))
        except Exception:  # not a number: leave it out of the checkpoint
            continue
        if array.size == 1 and np.issubdtype(array.dtype, np.number):
            scalars[key] = float(array.reshape(()))
    return scalars


def _build_config(model):
    """``model.get_build_config()`` if it is JSON-ready, else None."""
    try:
        config = model.get_build_config()
        json.dumps(config)
    except Exception:  # no build config for this model: restoring then needs a built model
        return None
    return config


def _state_variables(model):
    """``{"model": [...], "optimizer": [...]}``: the variables a checkpoint holds, in a stable order.

    ``model.variables`` holds the weights and, unlike ``model.weights`` (and
    ``model.save_weights``), the state of every `keras.random.SeedGenerator` of the model and
    its layers (InDI's t and noise, dropout), without which a resumed run would redraw them.
    ``optimizer.variables``: slots, iteration count and EMA averages. No optimizer group for
    a model that is not compiled.
    """
    groups = {"model": model.variables}
    if getattr(model, "optimizer", None) is not None:
        groups["optimizer"] = model.optimizer.variables
    unique = {}
    for group, variables in groups.items():
        unique[group] = list({id(variable): variable for variable in variables}.values())
    return unique


@contextlib.contextmanager
def _signals_deferred():
    """Hold SIGINT and SIGTERM back while h5py objects are alive (main thread only): a signal
    handler that raises inside h5py's object clean-up prints "Exception ignored ... KeyError"
    tracebacks. A signal that arrives meanwhile is re-raised on exit, a moment later, to the
    handler that was there before.

    The Python handlers are swapped, not the thread's signal mask: a process-directed signal
    goes to any thread that does not block it (JAX, TensorFlow and timers run threads), and
    Python then runs its handler in the main thread at once, wherever that thread is."""
    if threading.current_thread() is not threading.main_thread():
        yield
        return
    received = []

    def record(number, frame):
        received.append(number)

    previous = {}
    for number in (signal.SIGINT, getattr(signal, "SIGTERM", None)):
        # None: a handler installed outside Python, which Python cannot put back.
        if number is not None and signal.getsignal(number) is not None:
            previous[number] = signal.signal(number, record)
    try:
        yield
    finally:
        if received:
            gc.collect()  # free h5py objects caught in reference cycles while still deferred
        for number, handler in previous.items():
            signal.signal(number, handler)
        for number in dict.fromkeys(received):
            signal.raise_signal(number)


def _save_variables(model, path):
    """Write `_state_variables` of `model` to the HDF5 file `path`: one dataset per variable
    (``model/000000``...; its ``path`` as an attribute), built in memory with h5py and then
    written with Python file I/O.

    HDF5 writing straight to a file that a full disk (or a file-size limit) stops midway keeps
    the file open inside the HDF5 library, which then crashes the interpreter at exit
    (segmentation fault, "Can't decrement id ref count"); written from memory, the same failure
    is an ordinary ``OSError``. (``model.save_weights`` can only write to a path; its layout
    is Keras' own.) Read back by `_load_variables`.
    """
    import h5py

    if not model.built:
        raise ValueError(f"Cannot save the unbuilt model {model.name!r}: build it first.")
    buffer = io.BytesIO()
    with _signals_deferred(), h5py.File(buffer, "w") as file:
        for group, variables in _state_variables(model).items():
            folder = file.create_group(group)
            for index, variable in enumerate(variables):
                array = np.asarray(keras.ops.convert_to_numpy(variable))
                if array.dtype.kind not in "biuf":  # bfloat16 or float8 (ml_dtypes): no HDF5 type
                    array = array.astype("float32")
                folder.create_dataset(f"{index:06d}", data=array).attrs["path"] = variable.path
    with open(path, "wb") as file:
        file.write(buffer.getbuffer())
        file.flush()
        os.fsync(file.fileno())


def _load_variables(model, path):
    """Assign the values of the `_save_variables` file `path` to the variables of `model`; all
    of them are checked (how many, their shapes) before any is assigned."""
    import h5py

    with _signals_deferred(), h5py.File(path, "r") as file:
        groups = {group: [file[group][name][()] for name in sorted(file[group])] for group in file}
    pairs = []
    for group, variables in _state_variables(model).items():
        arrays = groups.get(group, [])
        if [array.shape for array in arrays] != [tuple(variable.shape) for variable in variables]:
            raise ValueError(
                f"Could not load {path} into model {model.name!r}: it holds {len(arrays)} {group} "
                f"variables where the model has {len(variables)}, or their shapes differ. The "
                "checkpoint was written by a model or optimizer with a different configuration."
            )
        pairs += zip(variables, arrays)
    for variable, array in pairs:
        variable.assign(array.astype(keras.backend.standardize_dtype(variable.dtype)))


@keras_indi_export("keras_indi.callbacks.read_checkpoint_state")
def read_checkpoint_state(path):
    """Check checkpoint folder `path` and return its ``state.json`` contents.

    Every file the state lists must exist with the recorded size and SHA-256, so a truncated,
    garbled or missing file raises ``ValueError`` naming that file.

    >>> state = read_checkpoint_state("runs/checkpoints/epoch-0003")  # doctest: +SKIP
    >>> state["epoch"], state["step"], state["logs"]["loss"]  # doctest: +SKIP
    (3, 96, 0.0412)
    """
    path = os.fspath(path)
    state_path = os.path.join(path, _STATE)
    if not os.path.isfile(state_path):
        raise ValueError(f"Checkpoint {path} is incomplete: {state_path} is missing.")
    try:
        state = _read_json(state_path)
    except (OSError, ValueError) as error:
        raise ValueError(f"Checkpoint file {state_path} is unreadable or corrupted ({error}).") from error
    state = state if isinstance(state, dict) else {}
    files = state.get("files")
    if isinstance(state.get("format"), int) and state["format"] < _FORMAT:
        raise ValueError(
            f"Checkpoint {path} was written by an earlier keras-indi (checkpoint format {state['format']}; "
            f"this version reads format {_FORMAT}). Resume it with the keras-indi version that wrote it, "
            "or start a new run in another directory."
        )
    if state.get("format") != _FORMAT or not isinstance(files, dict) or _VARIABLES not in files:
        raise ValueError(f"{state_path} is not a keras-indi TrainingCheckpoint state (format {_FORMAT}).")
    for name, expected in sorted(files.items()):
        file_path = os.path.join(path, name)
        if not os.path.isfile(file_path):
            raise ValueError(f"Checkpoint file {file_path} is missing.")
        size = os.path.getsize(file_path)
        if size != expected.get("size"):
            raise ValueError(
                f"Checkpoint file {file_path} is truncated or corrupted: {size} bytes where "
                f"{expected.get('size')} were written."
            )
        if _sha256(file_path) != expected.get("sha256"):
            raise ValueError(
                f"Checkpoint file {file_path} is corrupted: its SHA-256 differs from the one "
                f"recorded in {_STATE} when it was written."
            )
    return state


@keras_indi_export("keras_indi.callbacks.load_checkpoint")
def load_checkpoint(model, path):
    """Load checkpoint folder `path` into `model` (built, ideally compiled); return its state.

    Restores the weights, the optimizer variables (slots, EMA averages, iteration count) and
    every seed generator state. Raises ``ValueError`` if the checkpoint is invalid or was
    written by a different model.

    >>> state = load_checkpoint(model, "runs/checkpoints/epoch-0003")  # doctest: +SKIP
    """
    path = os.fspath(path)
    return _load(model, path, read_checkpoint_state(path))


def _load(model, path, state):
    if not model.built and state.get("build_config"):
        # On TensorFlow, fit() builds the model only when it traces the first step, after
        # on_train_begin: build it as `keras.saving.load_model` would, from the saved config.
        try:
            model.build_from_config(state["build_config"])
        except Exception as error:
            raise ValueError(
                f"Could not build model {model.name!r} from the build config of {path} ({error}): "
                "the checkpoint was written by a different model. Build the model before restoring."
            ) from error
    if not model.built:
        raise ValueError(
            f"Cannot restore {path} into the unbuilt model {model.name!r}: build it first by "
            "calling it on one batch (e.g. `model(degraded[:1])`)."
        )
    optimizer = getattr(model, "optimizer", None)
    if optimizer is None:
        warnings.warn(
            f"Model {model.name!r} is not compiled: restoring the weights of {path} without its "
            "optimizer state. Compile the model first to resume training exactly.",
            stacklevel=3,
        )
    elif not optimizer.built:
        optimizer.build(model.trainable_variables)
    _load_variables(model, os.path.join(path, _VARIABLES))
    return state


@keras_indi_export("keras_indi.callbacks.TrainingCheckpoint")
class TrainingCheckpoint(keras.callbacks.BackupAndRestore):
    """Save the full training state every epoch, atomically, and resume a killed run.

    ``keras.callbacks.BackupAndRestore`` with what it lacks: the seed generator states, several
    checkpoints kept (the newest and the best), atomic writes and damaged checkpoints detected
    and skipped. Each save writes ``directory/epoch-XXXX/`` (XXXX: epochs completed) holding

    * ``variables.h5``: an HDF5 file of ``model.variables`` (the weights and the state of
      every `keras.random.SeedGenerator` of the model: the one that draws InDI's t and noise,
      dropout's; ``model.save_weights`` leaves those out) and ``optimizer.variables`` (slots,
      iteration count and the EMA averages of ``use_ema=True`` optimizers); `load_checkpoint`
      reads it (``model.load_weights`` does not);
    * ``state.json``: epoch, global step (``optimizer.iterations``), the epoch's logs and the
      size and SHA-256 of the file above.

    A checkpoint is written into a hidden temporary sibling folder and moved into place with
    ``os.replace``; ``latest.json`` (a pointer for people and tools: newest and best
    checkpoints) is then replaced atomically. A crash or a kill while saving leaves the earlier
    checkpoints intact; the unfinished temporary folder is ignored and removed at the next
    ``fit``. Old checkpoints are deleted to keep the `keep_last` newest and the `keep_best` best
    by `monitor`. Only this callback's own ``epoch-XXXX`` folders and temporary files are
    ever deleted. A checkpoint whose loss is NaN/Inf is not written.

    Resuming: with ``resume=True``, ``fit`` starts by loading the newest *valid* checkpoint
    (sizes and SHA-256 checked; newer damaged ones are skipped with a warning; ``ValueError``
    if there are checkpoints and none is valid) and continues at the next epoch, so
    rerunning the same ``model.fit(..., epochs=N, callbacks=[TrainingCheckpoint(d)])`` after a
    crash trains only the missing epochs. With the same data order (``shuffle=False`` or a
    seeded pipeline: the data order is not part of the checkpoint) the resumed run matches an
    uninterrupted one. The model's compile arguments must be the same as in the saved run.

    Args:
        directory: folder of the checkpoints; created if needed. Use one folder per run.
        keep_last: how many of the newest checkpoints to keep (int >= 1), or None for all.
        keep_best: how many of the best checkpoints by `monitor` to keep as well (int >= 0).
        monitor: the log entry ranking checkpoints for `keep_best`, e.g. ``"val_loss"``
            (needs ``validation_data``) or ``"loss"``.
        mode: ``"min"`` or ``"max"``: whether a lower or a higher `monitor` is better.
        save_freq: ``"epoch"`` (default) or an int N: save every N batches instead, into
            ``epoch-XXXX-batch-YYYYYY`` (XXXX complete epochs plus YYYYYY batches). Resuming
            from such a checkpoint replays its epoch from the first batch with the saved
            weights, so it is not identical to an uninterrupted run.
        resume: whether ``fit`` restores the newest checkpoint found in `directory`. With
            ``resume=False`` the directory must hold no checkpoint (``ValueError`` otherwise:
            a fresh run mixed with stale checkpoints would resume from the wrong one).
        verbose: 1 prints a line for each restore and save.

    Example:

    >>> import numpy as np, keras
    >>> from keras_indi import InDIModel
    >>> from keras_indi.networks import TimeConditionalMLP
    >>> from keras_indi.datasets.toy import toy_modes_dataset
    >>> degraded, clean = toy_modes_dataset(64, seed=0)
    >>> model = InDIModel(TimeConditionalMLP(features=2, hidden_units=(16,)), value_range=None, seed=0)
    >>> model.compile(optimizer=keras.optimizers.Adam(1e-3, use_ema=True))
    >>> import tempfile; directory = tempfile.mkdtemp()
    >>> checkpoint = TrainingCheckpoint(directory, keep_last=2, keep_best=0)
    >>> history = model.fit(degraded, clean, epochs=3, shuffle=False, callbacks=[checkpoint], verbose=0)
    >>> sorted(os.listdir(directory))
    ['epoch-0002', 'epoch-0003', 'latest.json']
    >>> os.path.basename(TrainingCheckpoint.latest(directory))
    'epoch-0003'
    >>> history = model.fit(degraded, clean, epochs=5, shuffle=False, callbacks=[checkpoint], verbose=0)
    >>> history.epoch  # resumed after epoch 3
    [3, 4]
    """

    def __init__(
        self,
        directory,
        keep_last=3,
        keep_best=1,
        monitor="val_loss",
        mode="min",
        save_freq="epoch",
        resume=True,
        verbose=0,
    ):
        if not isinstance(directory, (str, os.PathLike)) or not os.fspath(directory):
            raise ValueError(f"`directory` must be a non-empty path. Received directory={directory!r}.")
        self.directory = os.fspath(directory)
        self.keep_last = None if keep_last is None else check_positive_int(keep_last, "keep_last")
        self.keep_best = check_positive_int(keep_best, "keep_best", minimum=0)
        if not isinstance(monitor, str) or not monitor:
            raise ValueError(f"`monitor` must be the name of a log entry. Received monitor={monitor!r}.")
        self.monitor = monitor
        self.mode = check_choice(mode, "mode", ("min", "max"))
        if save_freq != "epoch":
            save_freq = check_positive_int(save_freq, "save_freq")
        # Its own checkpoints, never deleted at the end of fit (its backup_dir is `directory`).
        super().__init__(self.directory, save_freq=save_freq, delete_checkpoint=False)
        if not isinstance(resume, bool):
            raise ValueError(f"`resume` must be True or False. Received resume={resume!r}.")
        self.resume = resume
        self.verbose = verbose
        #: The state of the checkpoint the last ``fit`` resumed from (None if it started fresh).
        self.restored_state = None
        self._epoch = 0
        self._saved_batch = 0
        self._resumed_at = None  # the epoch fit() must start at, until it has
        self._warned_monitor = False

    # -- finding and loading checkpoints ---------------------------------------------------
    @classmethod
    def latest(cls, directory):
        """Path of the newest valid checkpoint in `directory`, or None if it holds none.

        Newer checkpoints that fail validation (truncated, garbled or missing files) are
        skipped with a warning naming the bad file; unfinished temporary folders are ignored.
        Raises ``ValueError`` when there are checkpoints but none is valid.

        >>> TrainingCheckpoint.latest("runs/checkpoints")  # doctest: +SKIP
        'runs/checkpoints/epoch-0012'
        """
        found = cls._newest_valid(os.fspath(directory))
        return None if found is None else found[0]

    @staticmethod
    def _newest_valid(directory):
        problems = []
        for _, name in reversed(_list_checkpoints(directory)):
            path = os.path.join(directory, name)
            try:
                state = read_checkpoint_state(path)
            except ValueError as error:
                problems.append(str(error))
                continue
            for problem in problems:
                warnings.warn(
                    f"Skipping an invalid checkpoint: {problem} Falling back to {path}.", CheckpointWarning, stacklevel=3
                )
            return path, state
        if problems:
            raise ValueError(f"No valid checkpoint in {directory}: " + " ".join(problems))
        return None

    def restore(self, model=None, checkpoint=None):
        """Load `checkpoint` (a folder; default the newest valid one) into `model`.

        `model` (default: the model being trained) must be built; compile it first to restore
        the optimizer state. Returns the checkpoint's state (``epoch``, ``step``, ``logs``...).

        >>> model = make_model()  # doctest: +SKIP
        >>> model(degraded[:1])  # build it  # doctest: +SKIP
        >>> TrainingCheckpoint("runs/checkpoints").restore(model)["epoch"]  # doctest: +SKIP
        12
        """
        model = self.model if model is None else model
        if model is None:
            raise ValueError("Pass the `model` to restore into (this callback is not attached to one).")
        if checkpoint is None:
            found = self._newest_valid(self.directory)
            if found is None:
                raise ValueError(f"There is no checkpoint to restore in {self.directory}.")
            return _load(model, *found)
        return load_checkpoint(model, checkpoint)

    # -- callback hooks --------------------------------------------------------------------
    def on_train_begin(self, logs=None):
        os.makedirs(self.directory, exist_ok=True)
        self._remove_leftovers()
        self.restored_state = None
        if not _list_checkpoints(self.directory):
            return
        if not self.resume:
            raise ValueError(
                f"{self.directory} already holds checkpoints but resume=False. Use resume=True to "
                "continue that run, or a new directory for a new run."
            )
        state = self.restore(self.model)
        self.restored_state = state
        self._start_fit_at(state["epoch"])
        self._resumed_at = state["epoch"]
        if self.verbose:
            print(f"TrainingCheckpoint: resumed from {state['name']} (epoch {state['epoch']}, step {state['step']}).")

    def _start_fit_at(self, epoch):
        """Make the model's ``fit`` start at `epoch` (None: at its ``initial_epoch``), as
        ``BackupAndRestore.on_train_begin`` does from its ``training_metadata.json`` (see the
        module docstring). No weights file of BackupAndRestore is there for it to load."""
        path = os.path.join(self.directory, _KERAS_METADATA)
        write_json_atomically(path, {"epoch": epoch})
        try:
            super().on_train_begin()
        finally:
            os.remove(path)

    def on_train_end(self, logs=None):
        self._resumed_at = None
        if self.restored_state is None:
            return
        try:  # Keras never does it: a later fit() of this model without us must start at epoch 0.
            self._start_fit_at(None)
        except OSError as error:  # a full disk: the training and its checkpoints are done anyway
            warnings.warn(
                f"TrainingCheckpoint: {error}. A later fit() of this model without a TrainingCheckpoint "
                f"may skip its first {self.restored_state['epoch']} epochs.",
                CheckpointWarning,
                stacklevel=2,
            )

    def on_epoch_begin(self, epoch, logs=None):
        if self._resumed_at not in (None, epoch):
            raise RuntimeError(
                f"TrainingCheckpoint restored {self.restored_state['name']} but fit() started at epoch "
                f"{epoch} instead of {self._resumed_at}: this Keras version's BackupAndRestore does not "
                "set the initial epoch the way TrainingCheckpoint expects."
            )
        self._resumed_at = None
        self._epoch = epoch
        self._saved_batch = 0

    def on_train_batch_end(self, batch, logs=None):
        if self.save_freq != "epoch" and batch + 1 - self._saved_batch >= self.save_freq:
            self._saved_batch = batch + 1
            self.save(self._epoch, batch + 1, logs)

    def on_epoch_end(self, epoch, logs=None):
        if self.save_freq == "epoch":
            self.save(epoch + 1, 0, logs)

    # -- saving ----------------------------------------------------------------------------
    def save(self, epoch, batch=0, logs=None):
        """Write the checkpoint of `epoch` complete epochs (plus `batch` batches) atomically,
        update ``latest.json`` and delete the checkpoints no longer kept. Returns its path,
        or None when the loss is NaN/Inf (nothing is written then)."""
        model = self.model  # on JAX, this brings the training state back into the variables
        logs = _scalar_logs(logs)
        if not all(math.isfinite(logs[key]) for key in ("loss", self.monitor) if key in logs):
            warnings.warn(
                f"TrainingCheckpoint: not saving {_checkpoint_name(epoch, batch)}: the loss is not "
                f"finite ({logs}). The previous checkpoints are kept.",
                CheckpointWarning,
                stacklevel=2,
            )
            return None
        name = _checkpoint_name(epoch, batch)
        optimizer = getattr(model, "optimizer", None)
        monitor_value = logs.get(self.monitor)
        if monitor_value is None and self.keep_best and not self._warned_monitor:
            self._warned_monitor = True
            warnings.warn(
                f"TrainingCheckpoint: `{self.monitor}` is not in the logs (available: "
                f"{sorted(logs)}), so keep_best={self.keep_best} keeps nothing extra. Pass "
                "validation_data to fit() or another `monitor`, e.g. monitor='loss'.",
                CheckpointWarning,
                stacklevel=2,
            )
        state = {
            "format": _FORMAT,
            "name": name,
            "epoch": int(epoch),
            "batch": int(batch),
            "step": None if optimizer is None else int(keras.ops.convert_to_numpy(optimizer.iterations)),
            "logs": logs,
            "monitor": self.monitor,
            "monitor_value": monitor_value,
            "backend": keras.backend.backend(),
            "keras_version": keras.__version__,
            "time": time.time(),
        }
        os.makedirs(self.directory, exist_ok=True)
        final = os.path.join(self.directory, name)
        temporary = os.path.join(self.directory, f".tmp-{name}-{uuid.uuid4().hex[:8]}")
        os.makedirs(temporary)
        try:
            self._write(model, temporary, state)
            if os.path.exists(final):  # e.g. a damaged one that a resume skipped
                self._delete(name)
            os.replace(temporary, final)
        except BaseException:
            shutil.rmtree(temporary, ignore_errors=True)
            raise
        _fsync(self.directory)
        self._rotate(name)
        if self.verbose:
            print(f"TrainingCheckpoint: saved {final}.")
        return final

    @staticmethod
    def _write(model, folder, state):
        variables_path = os.path.join(folder, _VARIABLES)
        _save_variables(model, variables_path)
        files = {_VARIABLES: {"size": os.path.getsize(variables_path), "sha256": _sha256(variables_path)}}
        write_json_atomically(os.path.join(folder, _STATE), dict(state, files=files, build_config=_build_config(model)))
        _fsync(folder)

    def _rotate(self, newest):
        checkpoints = [name for _, name in _list_checkpoints(self.directory)]
        kept = set(checkpoints if self.keep_last is None else checkpoints[-self.keep_last :])
        kept.add(newest)
        scored = []
        for name in checkpoints:
            try:
                value = _read_json(os.path.join(self.directory, name, _STATE)).get("monitor_value")
            except (OSError, ValueError, AttributeError):
                continue
            if isinstance(value, (int, float)) and math.isfinite(value):
                scored.append((value if self.mode == "min" else -value, name))
        best = [name for _, name in sorted(scored, key=lambda item: item[0])[: self.keep_best]]
        kept.update(best)
        pointer = {
            "latest": newest,
            "best": best,
            "monitor": self.monitor,
            "mode": self.mode,
            "checkpoints": [name for name in checkpoints if name in kept],
        }
        write_json_atomically(os.path.join(self.directory, _LATEST), pointer)
        for name in checkpoints:
            if name not in kept:
                try:
                    self._delete(name)
                except OSError:
                    pass

    def _delete(self, name):
        """Delete checkpoint folder `name`: renamed out of the way first (atomic), then deleted,
        so that a kill while deleting leaves a hidden leftover (removed at the next fit), never
        a half-deleted checkpoint folder."""
        stale = os.path.join(self.directory, f".old-{name}-{uuid.uuid4().hex[:8]}")
        os.replace(os.path.join(self.directory, name), stale)
        shutil.rmtree(stale, ignore_errors=True)

    def _remove_leftovers(self):
        for name in os.listdir(self.directory):
            if not _LEFTOVER_NAME.match(name):
                continue
            path = os.path.join(self.directory, name)
            if name.startswith(".tmp-"):
                warnings.warn(
                    f"TrainingCheckpoint: removing {path}, a checkpoint whose save was interrupted.",
                    CheckpointWarning,
                    stacklevel=3,
                )
            if os.path.isdir(path):
                shutil.rmtree(path, ignore_errors=True)
            else:
                os.remove(path)


@keras_indi_export("keras_indi.callbacks.save_model_atomically")
def save_model_atomically(model, path):
    """``model.save(path)`` into a temporary file of the same folder, renamed onto `path`.

    A crash, a kill or a full disk while saving leaves the previous `path` (if any) intact
    instead of a truncated file.

    >>> save_model_atomically(model, "runs/denoising/model.keras")  # doctest: +SKIP
    """
    def write(temporary):
        with _signals_deferred():  # Keras writes the file with h5py
            model.save(temporary)

    _replace_atomically(path, write)


@keras_indi_export("keras_indi.callbacks.write_json_atomically")
def write_json_atomically(path, data):
    """Write `data` as indented JSON to `path` through a temporary file and a rename."""

    def write(temporary):
        with open(temporary, "w") as file:
            json.dump(data, file, indent=2)

    _replace_atomically(path, write)


@keras_indi_export("keras_indi.callbacks.AtomicModelCheckpoint")
class AtomicModelCheckpoint(keras.callbacks.Callback):
    """Save the model to one ``.keras`` file at the end of each epoch, atomically.

    Like ``keras.callbacks.ModelCheckpoint(filepath)`` (whole model, one fixed file), but the
    file is written to a temporary file in the same folder and renamed into place
    (`save_model_atomically`): a kill or a full disk while saving leaves the previous file
    intact, never a truncated one.

    Args:
        filepath: the ``.keras`` file.
        monitor: the log entry for `save_best_only`, e.g. ``"val_loss"``.
        save_best_only: save only when `monitor` improves on the best value seen (and on
            `initial_value_threshold`); else every epoch.
        mode: ``"min"`` or ``"max"``: whether a lower or a higher `monitor` is better.
        initial_value_threshold: the value `monitor` must beat first (e.g. the best of an
            earlier, resumed run).
    """

    def __init__(self, filepath, monitor="val_loss", save_best_only=False, mode="min", initial_value_threshold=None):
        super().__init__()
        self.filepath = os.fspath(filepath)
        if not self.filepath.endswith(".keras"):
            raise ValueError(f"`filepath` must end with .keras. Received filepath={self.filepath!r}.")
        self.monitor = monitor
        self.save_best_only = bool(save_best_only)
        self.mode = check_choice(mode, "mode", ("min", "max"))
        self.best = None if initial_value_threshold is None else float(initial_value_threshold)

    def _improves(self, value):
        if not math.isfinite(value):
            return False
        if self.best is None:
            return True
        return value < self.best if self.mode == "min" else value > self.best

    def on_train_begin(self, logs=None):
        # Temporary files of saves a kill interrupted (never the file itself).
        folder, name = os.path.split(os.path.abspath(self.filepath))
        stem, extension = os.path.splitext(name)
        leftover = re.compile(rf"^\.{re.escape(stem)}\.tmp-[0-9a-f]{{8}}{re.escape(extension)}$")
        for entry in os.listdir(folder) if os.path.isdir(folder) else ():
            if leftover.match(entry):
                try:
                    os.remove(os.path.join(folder, entry))
                except OSError:
                    pass

    def on_epoch_end(self, epoch, logs=None):
        if self.save_best_only:
            value = _scalar_logs(logs).get(self.monitor)
            if value is None or not self._improves(value):
                return
            self.best = value
        os.makedirs(os.path.dirname(os.path.abspath(self.filepath)), exist_ok=True)
        save_model_atomically(self.model, self.filepath)


def history_columns(rows):
    """The columns of history `rows` (dicts): ``epoch`` first, then the log names, sorted."""
    names = sorted({key for row in rows for key in row} - {"epoch"})
    return ["epoch"] + names


def _history_value(value):
    return None if value is None or (isinstance(value, float) and not math.isfinite(value)) else value


@keras_indi_export("keras_indi.callbacks.AtomicHistoryLogger")
class AtomicHistoryLogger(keras.callbacks.Callback):
    """Write the logs of every epoch to a CSV file and a JSON file, each rewritten atomically.

    Like ``keras.callbacks.CSVLogger(path, append=True)``, but at the end of each epoch the
    whole file is written to a temporary file and renamed into place, so a kill or a full disk
    leaves the previous version complete, never a half-written row. The CSV file has one row per
    epoch (``epoch`` is 0-based, as in ``CSVLogger``); the JSON file holds ``{column: [values]}``
    (NaN and Inf as null).

    Put it *before* a `TrainingCheckpoint` in the callbacks: the rows of an epoch are then on
    disk before the checkpoint of that epoch, and a run killed between the two writes loses no
    row. A resumed run passes the rows of the epochs its checkpoint holds (``rows``; the rows
    of later epochs, which it trains again, are left out) and the re-run epochs are written again.

    Args:
        csv_path: the CSV file, e.g. ``"run/history.csv"``.
        json_path: the JSON file, or None for none.
        rows: the rows of the earlier epochs: dicts ``{"epoch": int, name: float, ...}``.

    Example:

    >>> logger = AtomicHistoryLogger("run/history.csv", "run/history.json")  # doctest: +SKIP
    >>> model.fit(x, y, epochs=5, callbacks=[logger, TrainingCheckpoint("run/backup")])  # doctest: +SKIP
    """

    def __init__(self, csv_path, json_path=None, rows=()):
        super().__init__()
        self.csv_path = os.fspath(csv_path)
        self.json_path = None if json_path is None else os.fspath(json_path)
        self.rows = {}
        for row in rows:
            if "epoch" not in row:
                raise ValueError(f"Every row of `rows` needs an 'epoch' entry. Received {row!r}.")
            self.rows[int(row["epoch"])] = dict(row, epoch=int(row["epoch"]))

    def on_epoch_end(self, epoch, logs=None):
        self.rows[int(epoch)] = {"epoch": int(epoch), **_scalar_logs(logs)}
        self.write()

    def write(self):
        """Write both files now (the CSV file first)."""
        rows = [self.rows[epoch] for epoch in sorted(self.rows)]
        columns = history_columns(rows)

        def write_csv(temporary):
            with open(temporary, "w", newline="") as file:
                writer = csv.writer(file)
                writer.writerow(columns)
                for row in rows:
                    writer.writerow(["" if row.get(column) is None else repr(row[column]) for column in columns])

        os.makedirs(os.path.dirname(os.path.abspath(self.csv_path)), exist_ok=True)
        _replace_atomically(self.csv_path, write_csv)
        if self.json_path is not None:
            history = {column: [_history_value(row.get(column)) for row in rows] for column in columns}
            write_json_atomically(self.json_path, history)


def _with_sublayers(layer):
    """`layer` and its sub-layers, through the ``layers`` of the models in it (the networks)."""
    yield layer
    for sublayer in getattr(layer, "layers", ()):
        yield from _with_sublayers(sublayer)


@keras_indi_export("keras_indi.callbacks.NonFiniteLossGuard")
class NonFiniteLossGuard(keras.callbacks.TerminateOnNaN):
    """Stop training at the first NaN/Inf loss, saying where and what usually causes it.

    ``keras.callbacks.TerminateOnNaN`` with a clearer message. Checks the `monitor` log entry
    after every batch. On a non-finite value it sets
    ``model.stop_training``, keeps the explanation in `message` and where it happened in
    `stopped_at` (``epoch``, ``batch``, ``step``, ``loss``), and prints the message to stderr
    or, with ``raise_error=True``, raises ``FloatingPointError`` with it. With a
    `TrainingCheckpoint` in the same ``fit``, no checkpoint of the broken epoch is written, so
    the last good state stays the one a rerun resumes from.

    Args:
        monitor: the log entry to check (default ``"loss"``).
        raise_error: raise ``FloatingPointError`` instead of stopping quietly after printing.

    Example:

    >>> guard = NonFiniteLossGuard()  # doctest: +SKIP
    >>> model.fit(degraded, clean, epochs=10, callbacks=[guard])  # doctest: +SKIP
    >>> guard.stopped_at  # doctest: +SKIP
    {'epoch': 3, 'batch': 17, 'step': 65, 'loss': nan}
    """

    def __init__(self, monitor="loss", raise_error=False):
        if not isinstance(monitor, str) or not monitor:
            raise ValueError(f"`monitor` must be the name of a log entry. Received monitor={monitor!r}.")
        if not isinstance(raise_error, bool):
            raise ValueError(f"`raise_error` must be True or False. Received raise_error={raise_error!r}.")
        super().__init__(raise_error=raise_error)
        self.monitor = monitor
        self.message = None
        self.stopped_at = None
        self._epoch = 0

    def on_train_begin(self, logs=None):
        self.message = None
        self.stopped_at = None

    def on_epoch_begin(self, epoch, logs=None):
        self._epoch = epoch

    def on_batch_end(self, batch, logs=None):  # TerminateOnNaN's check, with `monitor` and the causes
        value = _scalar_logs({self.monitor: (logs or {}).get(self.monitor)}).get(self.monitor)
        if value is None or math.isfinite(value):
            return
        model = self.model
        optimizer = getattr(model, "optimizer", None)
        step = None if optimizer is None else int(keras.ops.convert_to_numpy(optimizer.iterations))
        self.stopped_at = {"epoch": self._epoch + 1, "batch": batch, "step": step, "loss": value}
        self.message = self._explain(model, optimizer, value, batch, step)
        model.stop_training = True
        if self.raise_error:
            raise FloatingPointError(self.message)
        print(self.message, file=sys.stderr, flush=True)

    def _explain(self, model, optimizer, value, batch, step):
        learning_rate = "unknown"
        if optimizer is not None:
            try:
                learning_rate = f"{float(keras.ops.convert_to_numpy(optimizer.learning_rate)):.3g}"
            except Exception:  # a schedule object or a LossScaleOptimizer without it
                learning_rate = type(optimizer.learning_rate).__name__
        policies = sorted({layer.dtype_policy.name for layer in _with_sublayers(model)})
        float16 = any("float16" in p and "bfloat16" not in p for p in policies)
        loss_scaled = isinstance(optimizer, keras.optimizers.LossScaleOptimizer)
        float16_note = (
            " This model computes in float16 WITHOUT loss scaling: the most likely cause."
            if float16 and not loss_scaled
            else f" (dtype policies here: {', '.join(policies)}; loss scaling: {'on' if loss_scaled else 'off'}.)"
        )
        return (
            f"NonFiniteLossGuard: `{self.monitor}` became {value} at epoch {self._epoch + 1}, batch "
            f"{batch} (optimizer step {step}); training stopped. Likely causes:\n"
            f"  1. Learning rate too high (currently {learning_rate}): lower it (e.g. 10x), add "
            "warmup, or clip gradients (`clipnorm=1.0` on the optimizer).\n"
            "  2. Data outside [-1, 1] or containing NaN/Inf: check a batch of inputs and targets "
            "with `keras_indi.utils.validation.check_finite_and_range(batch, 'batch', (-1.0, 1.0))`. "
            "InDIModel.fit checks NumPy arrays only, not tf.data, generators or PyDatasets.\n"
            "  3. float16 without loss scaling: under 'mixed_float16' compile with a "
            "`keras.optimizers.LossScaleOptimizer` or use 'mixed_bfloat16'." + float16_note + "\n"
            "Resume from the last good state with `keras_indi.callbacks.TrainingCheckpoint`."
        )
