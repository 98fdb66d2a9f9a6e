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


class RunWorker(QObject):
    """Runs one piece of long work at a time, off the UI thread, through a :class:`RunState`.

    The work is a plain function ``fn(state)`` from the Qt-free core
    (:func:`models.runner.run` records its result, cancellation or error on
    the state). It runs in a Python thread; the end comes back to the UI
    thread as ``sig_done(state)``. Panels drain :attr:`state` on a timer for
    progress and partial results; pause, resume and stop go to the state, so
    stopping never kills a thread.

    Signals:
        sig_started(): the run began (:attr:`state` is its RunState).
        sig_done(object): the run ended, done, cancelled or failed (the
            state says which; ``state.error`` is a one-line message).
    """

    sig_started = Signal()
    sig_done = Signal(object)
    _sig_thread_done = Signal(object)  # emitted in the worker thread, queued to ours

    def __init__(self, parent: QObject | None = None):
        super().__init__(parent)
        self.state = None
        self._thread: threading.Thread | None = None
        self._sig_thread_done.connect(self._on_thread_done)

    @property
    def running(self) -> bool:
        return self._thread is not None

    def start(self, fn: Callable[[Any], Any]):
        """Run ``fn(state)`` in a new thread; returns its RunState."""
        from models.runner import RunState, run

        if self.running:
            raise RuntimeError("work is already running; stop it first")
        state = self.state = RunState()

        def work():
            try:
                run(fn, state)
            finally:
                self._sig_thread_done.emit(state)

        self._thread = threading.Thread(target=work, name="layerforge-run", daemon=True)
        self._thread.start()
        self.sig_started.emit()
        return state

    def pause(self) -> None:
        if self.state is not None:
            self.state.pause()

    def resume(self) -> None:
        if self.state is not None:
            self.state.resume()

    def stop(self) -> None:
        """Ask the work to stop at its next checkpoint."""
        if self.state is not None:
            self.state.cancel()

    def wait(self, timeout_ms: int = 30_000) -> bool:
        """Stop and wait for the thread (closing the app); False if it did not end in time."""
        thread = self._thread
        if thread is None:
            return True
        self.stop()
        thread.join(timeout_ms / 1000.0)
        return not thread.is_alive()

    @Slot(object)
    def _on_thread_done(self, state):
        thread, self._thread = self._thread, None
        if thread is not None:
            thread.join(1.0)  # it has emitted its last signal; it ends now
        if state is self.state:
            self.finished(state)

    def finished(self, state) -> None:
        """Called on the UI thread when the run ended (subclasses turn it into their signals)."""
        self.sig_done.emit(state)
