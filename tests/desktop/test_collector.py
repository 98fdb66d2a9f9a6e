"""Python's garbage collector runs on the UI thread, never in a worker thread (see desktop.collector)."""
import gc
import threading


def test_garbage_made_in_a_worker_thread_is_collected_on_the_ui_thread(qtbot):
    from desktop import collector

    active = collector.install(None)  # the one the test set-up installed, as the app does
    assert not gc.isenabled()  # Python's own collector is off
    before = sum(active.collections)
    seen = []

    def note(phase, info):
        if phase == "start":
            seen.append(threading.current_thread().name)

    def churn():
        for _ in range(300_000):
            cycle = []
            cycle.append(cycle)  # garbage only the cyclic collector frees

    gc.callbacks.append(note)
    try:
        worker = threading.Thread(target=churn, name="churn")
        worker.start()
        qtbot.waitUntil(lambda: not worker.is_alive(), timeout=60_000)
        qtbot.waitUntil(lambda: sum(active.collections) > before, timeout=5_000)
    finally:
        gc.callbacks.remove(note)
    assert seen and set(seen) == {"MainThread"}, set(seen)


def test_uninstalling_gives_collecting_back_to_python(qapp):
    from desktop import collector

    collector.uninstall()
    assert gc.isenabled()
    again = collector.install(qapp)
    assert not gc.isenabled() and again is collector.install(qapp)
