"""What watching costs: the same training by plain ``model.fit`` and by the app's training panel.

Both train the gallery's digits CNN (the ``cnn`` template) on the built-in
digits, with the same recipe, seed, epochs, batch size and validation data.
The app side is the real path: an (offscreen unless DISPLAY is set)
QApplication, a :class:`~desktop.panels.training.TrainingPanel` shown with
its live plots, the :class:`~desktop.training_worker.TrainingWorker` thread,
the RunState and the redraw timer. A third side is plain ``fit`` fed the app's
input pipelines (:func:`models.training.fit_inputs`, one shuffled ``tf.data``
iterator for the whole run where Keras makes two an epoch from arrays, and
:func:`models.training.eval_inputs` for validation). Each
side is warmed up once, then the three take turns for ``--repeats`` rounds
(each goes first, second and last in turn: on a small machine a run straight
after another is slower); the medians are compared.

``ratio`` is the app's median ``fit`` time over plain ``fit``'s median (the
goal is at most 1.05); ``pair_ratio_median`` the median of each round's app
run over its plain run. ``watch_ratio`` is the app over plain ``fit`` on the
app's pipeline: what the live plots, the worker thread and the callbacks
cost, without the pipeline's gain. These exclude loading data and building the
model, which are the same work either way. ``end_to_end`` adds those and, for the app, the
evaluation page (confusion matrix, curves) that plain ``fit`` does not make. ``cpu_ratio``
compares the processor time the whole process spends while ``fit`` runs (the UI thread's
drawing included): on a machine busy with other work, wall times scatter and this does not.

    .venv/bin/python benchmarks/training_overhead.py [--epochs 20] [--repeats 9]

Prints a line per run and a last line of JSON. It measures; it does not assert.
"""
from __future__ import annotations

import argparse
import gc
import json
import os
import statistics
import sys
import threading
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")
if not os.environ.get("DISPLAY"):
    os.environ.setdefault("QT_QPA_PLATFORM", "offscreen")


def _project(epochs: int, batch_size: int):
    from models import gallery

    project = gallery.open_template("cnn")
    project.weights.clear()  # train from fresh weights each time
    recipe = project.recipe
    recipe.pop("callbacks", None)  # no early stopping: both sides run every epoch
    recipe.pop("quick", None)
    recipe.update(epochs=epochs, batch_size=batch_size)
    # Plain fit writes no checkpoints or logs: the app's run folder is off too, so both
    # sides do the same work and the difference is what watching costs.
    recipe["save_runs"] = False
    return project


def plain_fit(project, dataset, pipeline: bool = False) -> dict:
    """The baseline: build, compile and ``fit`` exactly as a Keras user would.

    With ``pipeline``, ``fit`` is fed the app's input pipeline
    (:func:`models.training.fit_inputs`) instead of the arrays: the app's run
    minus this one is what watching alone costs.
    """
    from models import backend
    from models.training import _seed, compile_model, eval_inputs, fit_inputs

    recipe = project.recipe
    _seed(recipe.get("seed", 0))
    gc.collect()  # the previous run's graphs go now, not in the middle of this one
    t0 = time.perf_counter()
    model = project.build(with_weights=False)
    compile_model(model, recipe)
    batch_size = recipe["batch_size"]
    if pipeline:
        steps = -(-len(dataset.x_train) // batch_size)
        tf = backend.tf()
        data = {"x": fit_inputs(dataset.x_train, dataset.y_train, batch_size,
                                recipe.get("seed", 0), tf),
                "steps_per_epoch": steps, "shuffle": False,
                "validation_data": eval_inputs(dataset.x_val, dataset.y_val, batch_size, tf)}
    else:
        data = {"x": dataset.x_train, "y": dataset.y_train, "batch_size": batch_size,
                "shuffle": True, "validation_data": (dataset.x_val, dataset.y_val)}
    t1, c1, m1 = time.perf_counter(), time.process_time(), time.thread_time()
    model.fit(epochs=recipe["epochs"], verbose=0, **data)
    t2, c2, m2 = time.perf_counter(), time.process_time(), time.thread_time()
    model.evaluate(dataset.x_test, dataset.y_test, batch_size=recipe["batch_size"], verbose=0)
    t3 = time.perf_counter()
    return {"fit": t2 - t1, "end_to_end": t3 - t0, "cpu": c2 - c1, "train_thread_cpu": m2 - m1}


def app_fit(app, panel, doc, dataset) -> dict:
    """The app: the panel's Start, its worker thread, RunState and timer-driven live plots."""
    from PySide6.QtCore import QEventLoop, QTimer

    loop = QEventLoop()
    out = {}

    def finished(payload, ok):
        out["payload"], out["ok"] = payload, ok
        out["t_end"] = time.perf_counter()
        loop.quit()

    panel.sig_training_finished.connect(finished)
    redraws_before, paint_before = panel.redraws, panel.plots.paint_total
    gc.collect()  # the previous run's graphs go now, not in the middle of this one
    # The same loaded data as the baseline (loading is not what is measured).
    t0 = time.perf_counter()
    cpu = {}
    ui_id = threading.get_ident()

    def ui_clock():  # the UI thread's processor time, read from another thread (POSIX only)
        if not hasattr(time, "pthread_getcpuclockid"):
            return float("nan")
        return time.clock_gettime(time.pthread_getcpuclockid(ui_id))

    def on_event(ev):  # in the training thread: the CPU clock at fit's start and last epoch
        if ev.kind == "begin":
            cpu["begin"], cpu["thread_begin"] = time.process_time(), time.thread_time()
            cpu["ui_begin"] = ui_clock()
        elif ev.kind == "epoch":
            cpu["end"], cpu["thread_end"] = time.process_time(), time.thread_time()
            cpu["ui_end"] = ui_clock()

    def start():
        panel.start(dataset=dataset)
        panel.worker.state.subscribe(on_event)

    QTimer.singleShot(0, start)
    QTimer.singleShot(600_000, loop.quit)
    loop.exec()
    panel.sig_training_finished.disconnect(finished)
    payload = out.get("payload") or {}
    if payload.get("stopped") not in ("completed",):
        raise RuntimeError(f"the app run did not complete: {payload.get('stopped')} "
                           f"{payload.get('message')}")
    doc.project.weights.clear()
    return {"fit": float(payload["seconds"]), "end_to_end": out["t_end"] - t0,
            "cpu": cpu["end"] - cpu["begin"],
            "train_thread_cpu": cpu["thread_end"] - cpu["thread_begin"],
            "ui_thread_cpu": cpu["ui_end"] - cpu["ui_begin"],
            "redraws": panel.redraws - redraws_before,
            "paint": panel.plots.paint_total - paint_before,
            "test_accuracy": payload["metrics"].get("test_accuracy")}


def main() -> int:
    ap = argparse.ArgumentParser()
    ap.add_argument("--epochs", type=int, default=20)
    ap.add_argument("--batch-size", type=int, default=32)
    ap.add_argument("--repeats", type=int, default=9)
    args = ap.parse_args()

    from PySide6.QtWidgets import QApplication

    from desktop.app import _quiet_offscreen_notes

    _quiet_offscreen_notes()  # as the app does: offscreen Qt's notes are not results
    app = QApplication.instance() or QApplication(sys.argv[:1])
    from desktop.collector import install

    install(app)  # as the app does: the garbage collector runs on the UI thread
    from desktop.document import Document, _Engine
    from desktop.panels.training import TrainingPanel
    from models.training import load_project_data

    project = _project(args.epochs, args.batch_size)
    dataset = load_project_data(project)
    doc = Document(_project(args.epochs, args.batch_size))
    panel = TrainingPanel()
    panel.set_document(doc)
    panel.resize(1400, 600)
    panel.show()
    app.processEvents()

    print(f"digits CNN ({project.name}), {args.epochs} epochs, batch {args.batch_size}, "
          f"{dataset.n_train} training samples; warming up both paths once")
    sides = {"plain": lambda: plain_fit(_project(args.epochs, args.batch_size), dataset),
             "app": lambda: app_fit(app, panel, doc, dataset),
             "pipeline": lambda: plain_fit(_project(args.epochs, args.batch_size), dataset,
                                           pipeline=True)}
    plain_fit(_project(1, args.batch_size), dataset)
    plain_fit(_project(1, args.batch_size), dataset, pipeline=True)
    app_fit(app, panel, doc, dataset)  # traces the train step in the worker thread too
    runs = {name: [] for name in sides}
    for i in range(args.repeats):
        # Each side goes first, second and last in turn: a run straight after another is
        # measurably slower here (the previous run's graphs and caches), which must not
        # count against one side.
        order = list(sides)[i % 3:] + list(sides)[:i % 3]
        for name in order:
            runs[name].append(sides[name]())
        p, a, q = (runs[name][-1] for name in ("plain", "app", "pipeline"))
        print(f"run {i + 1} ({' > '.join(order)}): plain fit {p['fit']:.2f} s, app fit {a['fit']:.2f} s "
              f"(ratio {a['fit'] / p['fit']:.3f}, processor {a['cpu'] / p['cpu']:.3f}), plain fit on "
              f"the app's input pipeline {q['fit']:.2f} s; end to end {p['end_to_end']:.2f} s vs "
              f"{a['end_to_end']:.2f} s; {a['redraws']} redraws painted in {a['paint']:.2f} s; "
              f"training thread {p['train_thread_cpu']:.2f} vs {a['train_thread_cpu']:.2f} s, "
              f"UI thread {a['ui_thread_cpu']:.2f} s of processor; test accuracy "
              f"{a['test_accuracy']:.3f}", flush=True)
    plain, appl, piped = runs["plain"], runs["app"], runs["pipeline"]
    plain_fit_s = statistics.median(r["fit"] for r in plain)
    app_fit_s = statistics.median(r["fit"] for r in appl)
    result = {
        "ratio": round(app_fit_s / plain_fit_s, 4),
        # Each app run against the plain run just before it: steadier on a busy machine.
        "pair_ratio_median": round(statistics.median(a["fit"] / p["fit"]
                                                     for p, a in zip(plain, appl)), 4),
        # Processor time of the whole process (every thread, the UI's painting too) while
        # fit runs: what watching costs, however busy the rest of the machine is.
        "cpu_ratio": round(statistics.median(r["cpu"] for r in appl)
                           / statistics.median(r["cpu"] for r in plain), 4),
        # The app over plain fit fed the same input pipeline: what watching alone costs
        # (the ratio above also counts the pipeline's gain).
        "watch_ratio": round(app_fit_s / statistics.median(r["fit"] for r in piped), 4),
        "plain_seconds": round(plain_fit_s, 3),
        "pipeline_seconds": round(statistics.median(r["fit"] for r in piped), 3),
        "app_seconds": round(app_fit_s, 3),
        "end_to_end_ratio": round(statistics.median(r["end_to_end"] for r in appl)
                                  / statistics.median(r["end_to_end"] for r in plain), 4),
        "plain_end_to_end_seconds": round(statistics.median(r["end_to_end"] for r in plain), 3),
        "app_end_to_end_seconds": round(statistics.median(r["end_to_end"] for r in appl), 3),
        "epochs": args.epochs, "batch_size": args.batch_size, "repeats": args.repeats,
        "cpu_count": os.cpu_count(),
    }
    panel.shutdown()
    _Engine.shutdown()
    print(json.dumps(result))
    return 0


if __name__ == "__main__":
    sys.exit(main())
