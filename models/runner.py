"""A small state object shared by long work and whoever watches it.

Long work (training, explaining, compressing, exporting, searching) is a plain
function that takes a :class:`RunState`. It reports progress and partial
results through it, and calls :meth:`RunState.checkpoint` between units of
work: that is where a pause waits and a cancel is noticed. The watcher (the
desktop's worker, the command line's progress bar, a test) reads the state
from its own thread: :meth:`drain` hands over the partial results gathered
since the last call, so a UI can redraw on a timer however fast they come.
Nothing here knows about Qt.
"""
from __future__ import annotations

import threading
import time
from collections import deque
from dataclasses import dataclass, field
from typing import Any, Callable


class Cancelled(Exception):
    """Raised by :meth:`RunState.checkpoint` once the run was asked to stop."""


@dataclass
class Event:
    kind: str
    payload: Any
    time: float = field(default_factory=time.perf_counter)


class RunState:
    """Progress, partial results, pause/resume and cancellation for one run.

    Thread-safe: the worker calls ``progress``/``emit``/``checkpoint``; any
    other thread may call ``pause``/``resume``/``cancel``/``drain``.
    """

    def __init__(self, max_events: int = 100_000):
        self._lock = threading.Lock()
        self._cancel = threading.Event()
        self._running = threading.Event()
        self._running.set()
        self._events: deque[Event] = deque(maxlen=max_events)
        self._listeners: list[Callable[[Event], None]] = []
        self.fraction = 0.0
        self.message = ""
        self.status = "idle"  # idle, running, paused, stopping, done, failed, cancelled
        self.error: str | None = None
        self.result: Any = None
        self.started_at: float | None = None
        self.finished_at: float | None = None

    # ------------------------------------------------------------- worker side

    def progress(self, fraction: float, message: str | None = None) -> None:
        with self._lock:
            self.fraction = max(0.0, min(1.0, float(fraction)))
            if message is not None:
                self.message = message

    def emit(self, kind: str, payload: Any = None) -> None:
        """Hand over a partial result (a batch's loss, an epoch's metrics, a picture...)."""
        event = Event(kind, payload)
        with self._lock:
            self._events.append(event)
            listeners = list(self._listeners)
        for listener in listeners:
            listener(event)

    def checkpoint(self) -> None:
        """Wait while paused; raise :class:`Cancelled` once cancelled."""
        if self._cancel.is_set():
            raise Cancelled()
        if not self._running.is_set():
            self._set_status("paused")
            while not self._running.wait(0.1):
                if self._cancel.is_set():
                    raise Cancelled()
            self._set_status("running")
        if self._cancel.is_set():
            raise Cancelled()

    @property
    def cancelled(self) -> bool:
        return self._cancel.is_set()

    # ------------------------------------------------------------- watcher side

    def cancel(self) -> None:
        self._cancel.set()
        self._running.set()  # a paused run must wake up to stop
        if self.status in ("running", "paused"):
            self._set_status("stopping")

    def pause(self) -> None:
        if self.status in ("running", "idle"):
            self._running.clear()
            self._set_status("paused")

    def resume(self) -> None:
        self._running.set()
        if self.status == "paused":
            self._set_status("running")

    @property
    def paused(self) -> bool:
        return not self._running.is_set()

    def drain(self) -> list[Event]:
        """Every event since the last drain, oldest first."""
        with self._lock:
            events = list(self._events)
            self._events.clear()
        return events

    def subscribe(self, listener: Callable[[Event], None]) -> None:
        """Call ``listener(event)`` from the worker thread for each event (keep it cheap)."""
        with self._lock:
            self._listeners.append(listener)

    def _set_status(self, status: str) -> None:
        with self._lock:
            self.status = status
        self.emit("status", status)

    @property
    def elapsed(self) -> float:
        if self.started_at is None:
            return 0.0
        return (self.finished_at or time.perf_counter()) - self.started_at

    def eta(self) -> float | None:
        """Seconds left, from the progress so far (None until it can be estimated)."""
        if self.started_at is None or self.fraction <= 0.0 or self.fraction >= 1.0:
            return None
        return self.elapsed * (1.0 - self.fraction) / self.fraction


def run(fn: Callable[[RunState], Any], state: RunState | None = None) -> RunState:
    """Run ``fn(state)`` here, recording its result, cancellation or error on the state."""
    state = state or RunState()
    state.started_at = time.perf_counter()
    state._set_status("running")
    try:
        state.result = fn(state)
    except Cancelled:
        state._set_status("cancelled")
    except Exception as exc:
        state.error = " ".join(str(exc).split()) or type(exc).__name__
        state._set_status("failed")
    else:
        state.fraction = 1.0
        state._set_status("done")
    finally:
        state.finished_at = time.perf_counter()
    return state


def run_in_thread(fn: Callable[[RunState], Any], state: RunState | None = None) -> tuple[RunState, threading.Thread]:
    """Start ``run(fn, state)`` on a daemon thread; returns the state to watch and the thread."""
    state = state or RunState()
    thread = threading.Thread(target=run, args=(fn, state), name="layerforge-run", daemon=True)
    thread.start()
    return state, thread
