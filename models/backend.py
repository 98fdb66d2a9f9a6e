"""Loads TensorFlow and Keras once, without their start-up log noise.

TensorFlow 2.21 writes a few absl lines to the C-level stderr while it imports
and initialises its devices, before ``TF_CPP_MIN_LOG_LEVEL`` takes effect. We
point file descriptor 2 at the null device for exactly that window. Set
``LAYERFORGE_TF_LOGS=1`` to see them.
"""
from __future__ import annotations

import os
import sys
import threading
from contextlib import contextmanager

_lock = threading.Lock()
_loaded = False

#: Held while building symbolic Keras graphs (validation, probes). Keras's
#: symbolic tracing keeps global state, so two threads must not trace at once;
#: a UI thread should take it with a short timeout and skip its check if busy.
keras_lock = threading.RLock()


@contextmanager
def _silenced_fd2():
    if os.environ.get("LAYERFORGE_TF_LOGS") == "1":
        yield
        return
    try:
        sys.stderr.flush()
        saved = os.dup(2)
        null = os.open(os.devnull, os.O_WRONLY)
    except OSError:  # no real fd 2 (e.g. some GUI launchers): nothing to hide
        yield
        return
    os.dup2(null, 2)
    try:
        yield
    finally:
        os.dup2(saved, 2)
        os.close(saved)
        os.close(null)


def load() -> None:
    """Import TensorFlow and Keras (thread-safe, idempotent)."""
    global _loaded
    if _loaded:
        return
    with _lock:
        if _loaded:
            return
        import models  # noqa: F401  (sets the environment defaults)

        with _silenced_fd2():
            import tensorflow as tf
            import keras  # noqa: F401

            tf.get_logger().setLevel("ERROR")
            tf.config.list_physical_devices()
            # ``tf.keras`` picks Keras 2 or 3 the first time it is touched, by the
            # TF_USE_LEGACY_KERAS variable, which TFMOT sets when imported. Touch it now so it
            # stays Keras 3 for libraries that check ``isinstance(m, tf.keras.Model)`` (shap).
            tf.keras.Model  # noqa: B018
        # Our registered custom layers must exist before any config is deserialised.
        import models.layers  # noqa: F401

        _loaded = True


def keras():
    """Return the ``keras`` module, loading TensorFlow first if needed."""
    load()
    import keras as _keras

    return _keras


def tf():
    """Return the ``tensorflow`` module, loading it first if needed."""
    load()
    import tensorflow as _tf

    return _tf


def is_loaded() -> bool:
    return _loaded
