"""Run a plain function off the UI thread and get its result back on the UI thread."""
from __future__ import annotations

from typing import Any, Callable

from PySide6.QtCore import QObject, QThread, Signal, Slot


class _FunctionWorker(QObject):
    sig_done = Signal(object)
    sig_failed = Signal(str)

    def __init__(self, fn: Callable[[], Any]):
        super().__init__()
        self._fn = fn

    @Slot()
    def run(self):
        try:
            result = self._fn()
        except Exception as exc:  # reported to the UI, never raised into Qt
            self.sig_failed.emit(" ".join(str(exc).split()) or type(exc).__name__)
        else:
            self.sig_done.emit(result)


class _Relay(QObject):
    """Lives on the UI thread, so queued signals deliver the callbacks there."""

    def __init__(self, on_done, on_failed, parent):
        super().__init__(parent)
        self._on_done, self._on_failed = on_done, on_failed

    @Slot(object)
    def done(self, result):
        self._on_done(result)
        self.deleteLater()

    @Slot(str)
    def failed(self, message):
        self._on_failed(message)
        self.deleteLater()


def run_in_thread(owner: QObject, fn: Callable[[], Any], on_done: Callable[[Any], None],
                  on_failed: Callable[[str], None]) -> QThread:
    """Call ``fn()`` in a new QThread; ``on_done(result)`` or ``on_failed(message)`` run on the UI thread."""
    thread = QThread(owner)
    worker = _FunctionWorker(fn)
    worker.moveToThread(thread)
    relay = _Relay(on_done, on_failed, owner)
    thread.started.connect(worker.run)
    worker.sig_done.connect(relay.done)
    worker.sig_failed.connect(relay.failed)
    worker.sig_done.connect(thread.quit)
    worker.sig_failed.connect(thread.quit)
    thread.finished.connect(worker.deleteLater)
    thread.finished.connect(thread.deleteLater)
    thread._worker = worker  # keep the worker alive as long as its thread runs
    thread.start()
    return thread
