"""RunState: progress, partial results, pause/resume and cancel across threads."""
import threading
import time

from models.runner import Cancelled, RunState, run, run_in_thread


def test_run_records_result_and_progress():
    def job(state):
        for i in range(5):
            state.progress((i + 1) / 5, f"step {i}")
            state.emit("partial", i)
        return "answer"

    state = run(job)
    assert state.status == "done" and state.result == "answer" and state.fraction == 1.0
    partials = [e.payload for e in state.drain() if e.kind == "partial"]
    assert partials == [0, 1, 2, 3, 4]
    assert state.drain() == []  # drained once


def test_errors_become_a_message_not_an_exception():
    state = run(lambda s: 1 / 0)
    assert state.status == "failed" and "division by zero" in state.error


def test_pause_blocks_at_checkpoint_and_resume_continues():
    counter = {"n": 0}

    def job(state):
        while counter["n"] < 200:
            state.checkpoint()
            counter["n"] += 1
            time.sleep(0.002)
        return counter["n"]

    state, thread = run_in_thread(job)
    time.sleep(0.05)
    state.pause()
    time.sleep(0.15)  # let a step in flight finish
    frozen = counter["n"]
    time.sleep(0.2)
    assert counter["n"] == frozen and state.status == "paused"
    state.resume()
    thread.join(5)
    assert state.status == "done" and state.result == 200


def test_cancel_wakes_a_paused_run_and_stops_it():
    def job(state):
        while True:
            state.checkpoint()
            time.sleep(0.001)

    state, thread = run_in_thread(job)
    time.sleep(0.02)
    state.pause()
    time.sleep(0.05)
    state.cancel()
    thread.join(5)
    assert not thread.is_alive() and state.status == "cancelled"


def test_listeners_are_called_from_the_worker_and_eta_is_estimated():
    seen = []
    state = RunState()
    state.subscribe(lambda e: seen.append((e.kind, threading.current_thread().name)))

    def job(s):
        s.progress(0.5)
        time.sleep(0.05)
        assert s.eta() is not None and s.eta() > 0
        s.emit("x", 1)

    state, thread = run_in_thread(job, state)
    thread.join(5)
    assert ("x", "layerforge-run") in seen


def test_checkpoint_raises_after_cancel():
    state = RunState()
    state.cancel()
    try:
        state.checkpoint()
    except Cancelled:
        pass
    else:
        raise AssertionError("checkpoint did not raise")
