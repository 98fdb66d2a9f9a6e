"""Python's cyclic garbage collector, run on the UI thread only.

Qt objects must be destroyed on the thread that owns them, but Python's own
collector runs in whichever thread happens to cross an allocation threshold.
In a training or validation thread it can free a cycle holding a Qt wrapper:
the object's C++ destructor takes Qt's lock and then waits for the
interpreter's, while the UI thread holds the interpreter's lock and waits for
Qt's. Both stop for good (seen on a test run). So while the app runs, the
automatic collector is off and a timer on the UI thread collects instead,
generation by generation, when Python's own thresholds say so. A full
collection (a quarter of a second on the app's heap with TensorFlow
loaded) runs at most every :data:`FULL_EVERY_S` seconds.
"""
from __future__ import annotations

import gc
import time

from PySide6.QtCore import QObject, QTimer

INTERVAL_MS = 250   # how often the counts are looked at
FULL_EVERY_S = 30.0  # the oldest generation is collected at most this often


class UIThreadCollector(QObject):
    """Turns the automatic collector off and collects on the UI thread's timer."""

    def __init__(self, parent: QObject | None = None):
        super().__init__(parent)
        self.collections = [0, 0, 0]  # how many of each generation this collector ran
        self._was_enabled = gc.isenabled()
        self._last_full = time.monotonic()
        self._timer = QTimer(self)
        self._timer.setInterval(INTERVAL_MS)
        self._timer.timeout.connect(self.collect)
        gc.disable()
        self._timer.start()

    def collect(self) -> int | None:
        """Collect the generation Python would collect now (None when none is due)."""
        (c0, c1, c2), (t0, t1, t2) = gc.get_count(), gc.get_threshold()
        if t0 <= 0 or c0 < t0:
            return None
        generation = 1 if c1 >= t1 else 0
        if generation == 1 and c2 >= t2 and time.monotonic() - self._last_full >= FULL_EVERY_S:
            generation = 2
            self._last_full = time.monotonic()
        gc.collect(generation)
        self.collections[generation] += 1
        return generation

    def stop(self) -> None:
        """Give collecting back to Python (as it was before)."""
        self._timer.stop()
        if self._was_enabled:
            gc.enable()


_installed: UIThreadCollector | None = None


def install(app: QObject) -> UIThreadCollector:
    """The app's collector (made once, owned by ``app``)."""
    global _installed
    if _installed is None:
        _installed = UIThreadCollector(app)
    return _installed


def uninstall() -> None:
    global _installed
    if _installed is not None:
        _installed.stop()
        _installed.setParent(None)  # freed here, on the UI thread
        _installed = None
