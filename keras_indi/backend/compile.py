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
* torch: eager under ``torch.no_grad()``;
* other backends: eager.
"""

import keras


def compile_sampler_function(network, function):
    backend = keras.backend.backend()
    # Pass `training=False` only to networks whose `call` takes it.
    call_kwargs = {"training": False} if getattr(network, "_call_has_training_arg", True) else {}
    if backend == "jax":
        import jax

        def stateless(trainable, non_trainable, *arrays):
            def network_fn(x, t):
                output, _ = network.stateless_call(trainable, non_trainable, [x, t], **call_kwargs)
                return output

            return function(network_fn, *arrays)

        jitted = jax.jit(stateless)

        def run(*arrays):
            trainable = [v.value for v in network.trainable_variables]
            non_trainable = [v.value for v in network.non_trainable_variables]
            return jitted(trainable, non_trainable, *arrays)

        return run

    def network_fn(x, t):
        return network([x, t], **call_kwargs)

    if backend == "tensorflow":
        import tensorflow as tf

        traced = tf.function(lambda *arrays: function(network_fn, *arrays), reduce_retracing=True)
        return traced

    if backend == "torch":
        import torch

        def run(*arrays):
            with torch.no_grad():
                return function(network_fn, *arrays)

        return run

    return lambda *arrays: function(network_fn, *arrays)


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
