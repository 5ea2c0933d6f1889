"""Backend-specific multi-device helpers for training steps."""

import keras


def replica_batch(batch_size):
    """``(draw_size, take)`` for the random draws of a training step of `batch_size` rows.

    Under a ``tf.distribute`` strategy with several replicas (e.g. ``MirroredStrategy``), each
    replica runs the step on its own slice of the global batch with a mirrored copy of the
    seed generator, so per-replica draws would repeat the same t and noise on every replica.
    There, every replica draws for the whole global batch (``draw_size``) and ``take`` keeps
    its own rows: training then matches single-device training on the same global batch.
    Elsewhere (one device, JAX ``DataParallel`` whose steps see the global batch, torch) it
    is ``(batch_size, identity)``.
    """
    if keras.backend.backend() == "tensorflow":
        import tensorflow as tf

        context = tf.distribute.get_replica_context()
        if context is not None and context.num_replicas_in_sync > 1:
            sizes = context.all_gather(tf.reshape(tf.cast(batch_size, "int32"), (1,)), axis=0)
            before = tf.range(context.num_replicas_in_sync) < context.replica_id_in_sync_group
            offset = tf.reduce_sum(tf.where(before, sizes, 0))
            return tf.reduce_sum(sizes), lambda draw: draw[offset : offset + batch_size]
    return batch_size, lambda draw: draw
