"""Compile a sampler function once per backend.

`function(network_fn, *arrays)` is backend-agnostic code (keras.ops) that calls
``network_fn(x, t)`` for network evaluations. `compile_sampler_function(network, function)`
returns ``run(*arrays)``:

* JAX: ``jax.jit`` over the network's weights passed explicitly (``stateless_call``), so
  updating the weights after training never forces a recompile and nothing is baked in as a
  constant; a new compile happens only for a new input shape (batch, image size). The
  samplers pass the step count as a traced loop bound over padded per-step tables
  (`keras_indi.samplers.base`), so step counts do not change the shapes;
* TensorFlow: ``tf.function(reduce_retracing=True)``: with the same traced step count and
  padded tables, one trace serves every step count;
* torch: eager under ``torch.no_grad()``; with ``torch_compile=True`` the network evaluation
  goes through ``torch.compile`` (one compile per input shape, tens of seconds on a CPU; then
  up to 20% faster per evaluation on a 2-core CPU, BENCHMARKS.md). The samplers ask for it
  when the model was compiled with ``jit_compile=True`` (`torch_compile_requested`);
* other backends: eager.

Eager helpers for one-off computations (metrics) live here too: `jit_concrete` and
`jit_stateless` compile a function as one XLA program on JAX (eager JAX compiles every
operation on its own, several times slower for a new input shape) and leave it unchanged
elsewhere; `predict_batch` runs a model the fastest way for a single batch.
"""

import contextlib
import functools
import inspect
import numbers

import keras
import numpy as np

from keras_indi.backend.tensors import is_eager_tensor


def channel_statistics_are_faster():
    """Whether `keras_indi.layers.GroupNormalization` should take per-channel statistics first.

    Measured on a 2-core CPU (`benchmarks/unet_eval.py`, BENCHMARKS.md): one evaluation of the
    preset U-Net is 10-22% faster that way on JAX and torch, and 9-13% slower on TensorFlow,
    whose XLA compiles Keras' own grouped reduction better. Both give the same result.
    """
    return keras.backend.backend() != "tensorflow"


def _takes_training(network):
    """Whether ``network.call`` has a `training` argument (or takes ``**kwargs``)."""
    try:
        parameters = inspect.signature(network.call).parameters.values()
    except (TypeError, ValueError):
        return True
    return any(p.name == "training" or p.kind is p.VAR_KEYWORD for p in parameters)


def torch_compile_requested(model):
    """Whether restoring with `model` should ``torch.compile`` the network: on torch, when the
    model was compiled with ``jit_compile=True`` (Keras' "auto" is eager there). False on the
    other backends, whose sampler loops are always compiled, and for bare networks.

    >>> torch_compile_requested(keras.layers.Dense(2))  # a bare network: never
    False
    """
    if keras.backend.backend() != "torch":
        return False
    return getattr(model, "jit_compile", False) is True


def compile_sampler_function(network, function, torch_compile=False):
    backend = keras.backend.backend()
    # Pass `training=False` only to networks whose `call` takes it.
    call_kwargs = {"training": False} if _takes_training(network) else {}
    if backend == "jax":
        import jax

        def stateless(trainable, non_trainable, *arrays):
            def network_fn(x, t):
                output, _ = network.stateless_call(trainable, non_trainable, [x, t], **call_kwargs)
                return output

            return function(network_fn, *arrays)

        jitted = jax.jit(stateless)

        def weights():
            trainable = [v.value for v in network.trainable_variables]
            non_trainable = [v.value for v in network.non_trainable_variables]
            return trainable, non_trainable

        def run(*arrays):
            return jitted(*weights(), *arrays)

        # What `keras_indi.backend.restore_programs` compiles and saves for the command line.
        run.stateless, run.weights = stateless, weights
        return run

    def network_fn(x, t):
        return network([x, t], **call_kwargs)

    if backend == "tensorflow":
        import tensorflow as tf

        traced = tf.function(lambda *arrays: function(network_fn, *arrays), reduce_retracing=True)
        return traced

    if backend == "torch":
        import torch

        # Only the network evaluation is compiled: the step loop stays in Python, and the
        # weights are read at every call (never baked in), so new weights need no recompile.
        evaluate = torch.compile(network_fn, dynamic=False) if torch_compile else network_fn

        def run(*arrays):
            with torch.no_grad():
                return function(evaluate, *arrays)

        return run

    return lambda *arrays: function(network_fn, *arrays)


def static_shapes(model):
    """A context in which ``torch.compile`` specializes `model`'s steps on every input shape.

    Keras' ``jit_compile=True`` on torch compiles the train and test steps with ``torch.compile``.
    PyTorch caches compiled code per Python function, and all models share `train_step`'s:
    once it has seen a second input size (another crop size, validation images of another
    size, a second model) it compiles a version for symbolic sizes, which Keras' torch random
    functions and the lowering of the network do not support ("cannot determine truth value
    of Relational"). Inside this context it compiles one version per size instead (PyTorch
    keeps up to 8 per function). For a model not compiled with ``jit_compile=True``, and on
    other backends, nothing changes (and nothing is imported).

    >>> with static_shapes(keras.layers.Dense(2)):  # not compiled with jit_compile=True: no-op
    ...     pass
    """
    if not torch_compile_requested(model):
        return contextlib.nullcontext()
    import torch._dynamo

    return torch._dynamo.config.patch(automatic_dynamic_shapes=False)


def match_static_shape(value, reference):
    """`value` with the static shape of `reference` (same shape at run time).

    TensorFlow only: ``tf.function(reduce_retracing=True)`` traces with partly unknown shapes
    (e.g. ``(None, 512, None, 3)`` after images of one height and several widths), and a
    network may lose a known dimension on the way (padding, cropping); ``tf.while_loop``
    then refuses a loop variable whose shape became less specific. Elsewhere: `value`.
    """
    if keras.backend.backend() != "tensorflow":
        return value
    import tensorflow as tf

    return tf.ensure_shape(value, reference.shape)


def _is_concrete(value):
    """True for NumPy values, Python numbers, None and eager backend tensors; False for traced
    or symbolic tensors (JAX tracers, TensorFlow graph tensors, `keras.KerasTensor`)."""
    if value is None or isinstance(value, (np.ndarray, np.generic, numbers.Number)):
        return True
    return keras.ops.is_tensor(value) and is_eager_tensor(value)


def _all_concrete(arrays):
    return all(_is_concrete(a) for a in arrays)


@functools.lru_cache(maxsize=128)
def _jax_jit(fn, static_argnums):
    import jax

    jitted = jax.jit(fn, static_argnums=static_argnums)

    def run(*arguments):
        arrays = [a for index, a in enumerate(arguments) if index not in static_argnums]
        return (jitted if _all_concrete(arrays) else fn)(*arguments)

    return run


def jit_concrete(fn, static_argnums=()):
    """`fn` as one compiled program on JAX when called with concrete arrays; `fn` elsewhere.

    On JAX the returned callable runs ``jax.jit(fn, static_argnums=static_argnums)`` (made
    once per `fn` and cached) when every non-static argument is concrete (a NumPy array, a
    number, None or an eager tensor), and `fn` itself on traced or symbolic arguments
    (inside a compiled step, where `fn` is compiled with the step anyway). On other backends
    `fn` is returned unchanged.

    >>> double = jit_concrete(lambda x: x * 2)
    >>> [float(v) for v in double(np.array([1.0, 3.0], "float32"))]
    [2.0, 6.0]
    """
    if isinstance(static_argnums, int):
        static_argnums = (static_argnums,)
    static_argnums = tuple(static_argnums)
    if keras.backend.backend() != "jax":
        return fn
    return _jax_jit(fn, static_argnums)


def jit_stateless(layer, fn):
    """``fn(*arrays)``, which reads `layer`'s variables, compiled once on JAX; `fn` elsewhere.

    On JAX the variables' values are passed to the compiled program explicitly
    (``keras.StatelessScope``), so they are not baked in as constants and new weights never
    force a recompile; the program is used when every array is concrete, `fn` itself on
    traced arrays. Keep the returned callable (e.g. on the layer) to compile only once.
    """
    if keras.backend.backend() != "jax":
        return fn
    import jax

    compiled = []  # (variables, jitted), made at the first concrete call: the layer is built then

    def run(*arrays):
        if not _all_concrete(arrays):
            return fn(*arrays)
        if not compiled:
            variables = list(layer.variables)

            def stateless(values, *arrays):
                with keras.StatelessScope(state_mapping=list(zip(variables, values))):
                    return fn(*arrays)

            compiled.append((variables, jax.jit(stateless)))
        variables, jitted = compiled[0]
        return jitted([v.value for v in variables], *arrays)

    return run


def predict_batch(model, inputs):
    """``model(inputs)`` for one batch in inference mode, the fastest way on each backend.

    JAX: ``model.predict_on_batch`` (one compiled function instead of op by op); elsewhere an
    eager call (no XLA compilation of the whole network on TensorFlow for a single batch).
    """
    if keras.backend.backend() == "jax":
        return model.predict_on_batch(inputs)
    return model(inputs, training=False)
