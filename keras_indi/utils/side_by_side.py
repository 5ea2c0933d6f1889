"""Train several models at once, one thread each: equal-budget comparisons in less wall time.

A comparison such as the quickstart's (InDI and its regression twin on the same batches) trains
two small networks one after the other. Most of the first seconds of each `fit` are one
single-threaded compilation of its train step (~12 s for the quickstart's U-Net on a 2-core
CPU, JAX), and a small network's steps leave part of a multi-core CPU idle. `fit_side_by_side`
runs the `fit` calls in threads: the compilations overlap, and so do the steps. Each model
trains exactly as alone (Keras keeps its global state per thread, the backends are
thread-safe, and every model has its own data and seed generators): the same losses and
weights, bit for bit.
"""

import threading
import time

import numpy as np

from keras_indi.api_export import keras_indi_export


@keras_indi_export("keras_indi.fit_side_by_side")
def fit_side_by_side(runs, epochs=1, verbose=1):
    """``model.fit(data, epochs=epochs)`` for every ``name: (model, data)`` of `runs`, at once.

    Args:
        runs: a dict ``{name: (model, data)}``; `data` is what `fit` takes as its first
            argument (a `keras.utils.PyDataset`, a ``tf.data.Dataset``, ...; with ``len``, the
            number of batches per epoch, the shared progress bar has a target). Each model is
            compiled and built already (its network's weights exist), and has its own data object.
        epochs: epochs of every `fit`.
        verbose: 0 silent, 1 one progress bar for all runs (the last loss of each), 2 a line
            per model and epoch.

    Returns:
        ``{name: (history, seconds)}``: each `fit`'s `keras.callbacks.History` and its wall time.

    Raises:
        ValueError: for empty `runs`, a model given twice or a model not built. An exception
        raised by one `fit` is raised here once every run has stopped.

    Example:

    >>> import keras, numpy as np
    >>> class Batches(keras.utils.PyDataset):
    ...     def __len__(self):
    ...         return 3
    ...     def __getitem__(self, index):
    ...         return np.ones((4, 2), "float32"), np.zeros((4, 1), "float32")
    >>> def small_model():
    ...     model = keras.Sequential([keras.Input((2,)), keras.layers.Dense(1)])  # built: it has an Input
    ...     model.compile(optimizer="sgd", loss="mse")
    ...     return model
    >>> results = fit_side_by_side({"a": (small_model(), Batches()), "b": (small_model(), Batches())}, verbose=0)
    >>> sorted(results), len(results["a"][0].history["loss"])
    (['a', 'b'], 1)
    """
    if not runs:
        raise ValueError("`runs` is empty: give at least one {name: (model, data)}.")
    models = [model for model, _ in runs.values()]
    if len({id(model) for model in models}) != len(models):
        raise ValueError("The same model appears twice in `runs`: give each run its own model.")
    unbuilt = [name for name, (model, _) in runs.items() if not getattr(model, "network", model).built]
    if unbuilt:
        # Built inside the threads, their initializers would draw their default seeds from
        # Python's shared generator in whatever order the threads reach them.
        raise ValueError(
            f"Model(s) {unbuilt} are not built: their initial weights would depend on the order in which "
            "the threads create them. Build each model first (e.g. `model.network.build((None, height, "
            "width, channels))` for an InDIModel, `model.build(input_shape)` otherwise)."
        )
    progress = _SharedProgress(runs, epochs, verbose)
    results, errors = {}, []
    stop = threading.Event()  # set when one run fails or on Ctrl-C: the others stop at their next batch

    def fit_one(name, model, data):
        start = time.time()
        try:
            callbacks = [_stop_when_set(stop)] + ([progress.callback(name)] if verbose == 1 else [])
            history = model.fit(data, epochs=epochs, verbose=2 if verbose == 2 else 0, callbacks=callbacks,
                                shuffle=False)  # the pipelines draw their own seeded orders
            results[name] = (history, round(time.time() - start, 2))
        except BaseException as error:  # raised in the caller's thread below
            errors.append(error)
            stop.set()

    threads = [threading.Thread(target=fit_one, args=(name, model, data), name=f"fit-{name}", daemon=True)
               for name, (model, data) in runs.items()]
    for thread in threads:
        thread.start()
    try:
        for thread in threads:
            while thread.is_alive():
                thread.join(0.5)  # a short timeout keeps Ctrl-C working
    except KeyboardInterrupt:
        stop.set()
        raise
    progress.close()
    if errors:
        raise errors[0]
    return {name: results[name] for name in runs}


def _stop_when_set(event):
    """A new callback (one per `fit`: Keras gives each its model) that stops the `fit` at its next
    batch once `event` is set; `fit` resets ``stop_training`` when it starts, so a flag set on
    the model before would be lost."""
    import keras

    class _Stop(keras.callbacks.Callback):
        def on_train_batch_end(self, batch, logs=None):
            if event.is_set():
                self.model.stop_training = True

    return _Stop()


class _SharedProgress:
    """One `keras.utils.Progbar` over the batches of every run, updated under a lock."""

    def __init__(self, runs, epochs, verbose):
        self.lock = threading.Lock()
        self.losses = {}
        self.done = 0
        self.bar = None
        if verbose == 1:
            import keras

            try:
                target = sum(len(data) for _, data in runs.values()) * epochs
            except TypeError:  # data of unknown length: a bar without a target
                target = None
            self.bar = keras.utils.Progbar(target, stateful_metrics=[f"{name} loss" for name in runs])

    def callback(self, name):
        import keras

        shared = self

        class _Progress(keras.callbacks.Callback):
            def on_train_batch_end(self, batch, logs=None):
                with shared.lock:
                    shared.done += 1
                    if logs and "loss" in logs:
                        shared.losses[f"{name} loss"] = float(np.asarray(logs["loss"]))
                    shared.bar.update(shared.done, values=list(shared.losses.items()))

        return _Progress()

    def close(self):
        if self.bar is not None and self.bar.target and self.done < self.bar.target:
            self.bar.update(self.done, finalize=True)
