"""Multi-worker training on Keras 3: two fixes that ``MultiWorkerMirroredStrategy`` needs.

Keras 3 (checked up to 3.15 with TensorFlow 2.21) cannot ``fit`` under
``tf.distribute.MultiWorkerMirroredStrategy`` as shipped; two places in
``keras/src/backend/tensorflow/trainer.py`` assume a single worker:

1. ``_maybe_symbolic_build`` takes the first batch, a *structure* of
   ``PerReplica`` values, and hands the whole structure to one
   ``strategy.reduce("MEAN", ..., axis=None)``. With several workers the
   collective reduce tries to turn the tuple into a tensor and fails with
   "Attempt to convert a value (PerReplica...) with an unsupported type"
   (keras-team/keras#20585, open). The batch is only needed for its shapes,
   so the fix builds from this worker's own part of it.
2. ``reduce_per_replica`` averages every step output across workers with
   ``strategy.reduce("MEAN", v, axis=0)``, but the loss and metric values are
   scalars: "Invalid reduction dimension 0 for input with 0 dimensions"
   (tensorflow/tensorflow#72388, closed as stale; its workaround was to go
   back to Keras 2). The fix averages scalars with ``axis=None``.

:func:`prepare_model` applies both, only for a multi-worker strategy; every
other strategy and plain training run the Keras code untouched. When Keras
fixes these upstream the patches are no longer needed (they check that the
private names they wrap still exist and step aside otherwise).
"""
from __future__ import annotations

import types

_PATCHED = False


def is_multi_worker(strategy) -> bool:
    name = type(strategy).__name__
    return strategy is not None and ("MultiWorker" in name or "CollectiveAllReduce" in name)


def prepare_model(model, strategy) -> None:
    """Make ``model.fit``/``evaluate`` work under a multi-worker strategy (no-op otherwise)."""
    if strategy is None or not is_multi_worker(strategy):
        return
    _patch_reduce_per_replica()
    if hasattr(model, "_maybe_symbolic_build") and hasattr(model, "_symbolic_build"):
        model._maybe_symbolic_build = types.MethodType(_maybe_symbolic_build, model)


def _local(strategy, value):
    import tensorflow as tf

    if isinstance(value, tf.distribute.DistributedValues):
        return strategy.experimental_local_results(value)[0]
    return value


def _maybe_symbolic_build(self, iterator=None, data_batch=None):
    """Keras's own, but building from this worker's part of the first batch (fix 1)."""
    from keras.src import tree

    strategy = self.distribute_strategy
    if iterator is not None:
        for _, _, it in iterator:
            batch = next(it)
            data_batch = tree.map_structure(lambda v: _local(strategy, v), batch)
            break
    with strategy.scope():
        self._symbolic_build(data_batch=data_batch)


def _patch_reduce_per_replica() -> None:
    global _PATCHED
    if _PATCHED:
        return
    try:
        from keras.src import tree
        from keras.src.backend.tensorflow import trainer as tf_trainer
    except ImportError:
        return
    original = getattr(tf_trainer, "reduce_per_replica", None)
    multi = getattr(tf_trainer, "_collective_all_reduce_multi_worker", None)
    if original is None or multi is None:
        return

    def reduce_per_replica(values, strategy, reduction):
        if reduction in ("mean", "auto") and multi(strategy):
            def mean(v):
                rank = getattr(getattr(v, "shape", None), "rank", None)
                return strategy.reduce("MEAN", v, axis=0 if rank else None)

            return tree.map_structure(mean, values)
        return original(values, strategy, reduction)

    tf_trainer.reduce_per_replica = reduce_per_replica  # fix 2 (used by the step functions)
    _PATCHED = True


__all__ = ["prepare_model", "is_multi_worker"]
