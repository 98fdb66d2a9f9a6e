"""Run a plain function off the UI thread and get its result back on the UI thread.

The work runs in a Python thread (never a QThread: TensorFlow run inside a
QThread crashed now and then); the result comes back through a Qt signal,
which Qt delivers on the UI thread.
"""
from __future__ import annotations

import threading
from typing import Any, Callable

from PySide6.QtCore import QObject, Signal, Slot


class _Relay(QObject):
    """Lives on the UI thread; the worker emits into it, Qt queues the call here."""

    sig_done = Signal(object)
    sig_failed = Signal(str)

    def __init__(self, on_done, on_failed, parent):
        super().__init__(parent)
        self._on_done, self._on_failed = on_done, on_failed
        self.sig_done.connect(self._done)
        self.sig_failed.connect(self._failed)

    @Slot(object)
    def _done(self, result):
        try:
            self._on_done(result)
        finally:
            self.deleteLater()

    @Slot(str)
    def _failed(self, message):
        try:
            self._on_failed(message)
        finally:
            self.deleteLater()


def run_in_thread(owner: QObject, fn: Callable[[], Any], on_done: Callable[[Any], None],
                  on_failed: Callable[[str], None]) -> threading.Thread:
    """Call ``fn()`` in a background thread; ``on_done(result)`` or ``on_failed(message)``
    then run on the UI thread. Errors become a one-line message, never a traceback."""
    relay = _Relay(on_done, on_failed, owner)

    def work():
        try:
            result = fn()
        except Exception as exc:
            relay.sig_failed.emit(" ".join(str(exc).split()) or type(exc).__name__)
        else:
            relay.sig_done.emit(result)

    thread = threading.Thread(target=work, name="layerforge-task", daemon=True)
    thread.start()
    return thread
