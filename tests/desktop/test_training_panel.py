"""The training panel as a user drives it: start, pause, resume, stop, a NaN loss, and the results."""
import math

import numpy as np
import pytest
from PySide6.QtCore import Qt

from tests.models.test_training import _nan_after_loss_class, mlp_project

FINISH_MS = 90_000


@pytest.fixture
def panel(qtbot):
    from desktop.panels.training import TrainingPanel

    p = TrainingPanel()
    qtbot.addWidget(p)
    p.resize(1200, 560)
    p.show()
    yield p
    p.shutdown()


def _click(qtbot, button):
    assert button.isEnabled(), f"{button.text()} is disabled"
    qtbot.mouseClick(button, Qt.LeftButton)


def _start(qtbot, panel, doc):
    panel.set_document(doc)
    with qtbot.waitSignal(panel.sig_training_started, timeout=10_000):
        _click(qtbot, panel.start_button)


def test_series_grows_by_doubling_and_hands_out_views():
    from desktop.panels.training import Series

    s = Series(4)
    for i in range(5):
        s.append(i, i * i)
    assert s.capacity == 8 and s.n == 5
    s.extend(range(5, 20), range(5, 20))
    assert s.capacity == 32 and list(s.x[:3]) == [0, 1, 2] and s.y[19] == 19
    assert s.x.base is not None  # a view, not a copy


def test_prefills_from_the_recipe_and_refuses_to_start_without_data(qtbot, panel, make_doc):
    project = mlp_project(epochs=7, batch_size=16, quick={"epochs": 2})
    project.dataset = None
    doc = make_doc(project)
    panel.set_document(doc)
    assert panel.epochs_spin.value() == 7 and panel.batch_spin.value() == 16
    assert panel.quick_check.isVisibleTo(panel)
    panel.quick_check.setChecked(True)
    assert panel.epochs_spin.value() == 2
    _click(qtbot, panel.start_button)
    assert not panel.worker.running
    assert "choose the data" in panel.message_label.text()
    assert not doc.read_only


def test_start_pause_resume_then_results_plots_and_evaluation(qtbot, panel, make_doc):
    import sys

    switch_interval = sys.getswitchinterval()
    doc = make_doc(mlp_project(epochs=5, batch_size=8))
    undo = doc.undo_stack.createUndoAction(panel)
    doc.move_nodes({"hidden": (0.0, 0.0)}, {"hidden": (40.0, 0.0)})  # an undoable edit
    assert undo.isEnabled()
    doc.undo_stack.setClean()

    _start(qtbot, panel, doc)
    # The graph is read-only while training runs.
    assert doc.read_only and not undo.isEnabled()
    nodes_before = set(doc.graph.nodes)
    assert doc.add_layer("Dense") is None
    ok, reason = doc.set_params("hidden", {"units": 7})
    assert not ok and reason == "training is running; stop it to edit"
    assert doc.graph.node("hidden").config["units"] == 32 and set(doc.graph.nodes) == nodes_before
    assert not panel.start_button.isEnabled() and panel.stop_button.isEnabled()
    assert sys.getswitchinterval() <= 0.001 < switch_interval  # the loop waits less for the lock

    qtbot.waitUntil(lambda: panel.batch.n >= 20, timeout=60_000)
    _click(qtbot, panel.pause_button)
    qtbot.waitUntil(lambda: panel.pause_button.text() == "Resume", timeout=5_000)
    assert panel.worker.state.status == "paused"
    _assert_paused(qtbot, panel)

    with qtbot.waitSignal(panel.sig_training_finished, timeout=FINISH_MS) as finished:
        _click(qtbot, panel.pause_button)  # now "Resume"
    payload, ok = finished.args
    assert ok and payload["stopped"] == "completed" and payload["epochs"] == 5
    assert sys.getswitchinterval() == switch_interval  # given back
    assert payload["metrics"]["test_accuracy"] >= 0.85

    # Editable again, and the trained weights are in the (now unsaved) project.
    assert not doc.read_only and undo.isEnabled()
    assert doc.dirty
    weights = doc.project.weights[doc.project.main_name]
    assert [w.shape for w in weights] == [(64, 32), (32,), (32, 10), (10,)]
    assert doc.add_layer("Dense")

    # Every plot has data.
    steps = math.ceil(1258 / 8) * 5
    x, y = panel.batch_curve.getData()
    assert panel.batch.n == steps and len(x) > 0
    for key in ("loss", "val_loss", "accuracy", "val_accuracy"):
        ex, ey = panel.epoch_curves[key].getData()
        assert list(ex) == [1, 2, 3, 4, 5], key
    assert len(panel.lr_curve.getData()[0]) == 5 and len(panel.speed_curve.getData()[0]) == 5
    assert set(panel.grad_curves) == {"hidden", "digit"}
    assert panel.heat_image.image is not None and panel.heat_image.image.shape[0] == 5
    assert panel.layer_combo.count() == 2
    assert panel.progress.value() == panel.progress.maximum()
    legend = panel.plot_items["loss"].legend
    assert legend.isVisible() and [label.text for _, label in legend.items] == [
        "training loss", "validation loss"]
    panel._reset_data()  # as a new run starts: no curves, and no empty legend box either
    assert not legend.items and not legend.isVisible()
    assert not panel.plot_items["metrics"].legend.isVisible()

    # The evaluation page: a 10 x 10 confusion matrix with its counts, curves and a table.
    ev = panel.evaluation
    assert ev.pages.currentWidget() is ev.class_page
    assert ev.cm_image.image.shape == (10, 10)
    texts = ev.cm_cells.texts
    assert len(texts) == 10 and all(len(row) == 10 for row in texts)
    assert sum(int(t) for row in texts for t in row) == payload["evaluation"]["n"]
    assert ev.table.rowCount() == 10 + 2
    assert len(ev.roc_plot.listDataItems()) == 1 + 10  # the diagonal and one curve per class
    assert "accuracy" in ev.summary.text()


def test_stop_keeps_the_best_weights_and_says_so(qtbot, panel, make_doc):
    doc = make_doc(mlp_project(epochs=200, batch_size=16))
    _start(qtbot, panel, doc)
    qtbot.waitUntil(lambda: panel.epochs_done >= 2, timeout=60_000)
    _stop_keeping_the_best(qtbot, panel, 200)
    assert not doc.read_only and doc.project.has_weights()
    assert panel.start_button.isEnabled() and not panel.stop_button.isEnabled()


def test_nan_loss_is_shown_in_red_and_keeps_finite_weights(qtbot, panel, make_doc):
    _nan_after_loss_class()
    project = mlp_project(epochs=5, loss={"class_name": "layerforge_tests>NanAfter",
                                          "config": {"steps": 30}})
    doc = make_doc(project)
    _start(qtbot, panel, doc)
    with qtbot.waitSignal(panel.sig_training_finished, timeout=FINISH_MS) as finished:
        pass
    payload, ok = finished.args
    assert not ok and payload["stopped"] == "nan"
    assert "NaN" in panel.message_label.text()
    assert "#c62828" in panel.message_label.styleSheet()  # red
    assert "NaN" in panel.progress.format()
    weights = doc.project.weights[doc.project.main_name]
    assert all(np.isfinite(w).all() for w in weights)
    assert not doc.read_only
    assert panel.evaluation.pages.currentWidget() is panel.evaluation.empty


def test_training_shortcuts_do_not_clash_in_the_main_window(qtbot, tmp_path, monkeypatch):
    monkeypatch.setenv("LAYERFORGE_RECOVERY_DIR", str(tmp_path / "appdata"))
    from PySide6.QtGui import QAction

    from desktop.main_window import MainWindow
    from desktop.panels.training import SHORTCUTS

    w = MainWindow(offer_recovery=False)
    qtbot.addWidget(w)
    owners: dict[str, set] = {}
    for act in w.findChildren(QAction):
        for seq in act.shortcuts():
            owners.setdefault(seq.toString(), set()).add(act)
    for keys in SHORTCUTS.values():
        for key in keys:
            assert len(owners.get(key, ())) == 1, f"{key} is taken by several actions"
    titles = [a.text() for a in w.menuBar().actions()]
    assert "&Train" in titles and titles.index("&Train") < titles.index("&Help")
    assert w.training.doc is w.doc
    w.training.shutdown()


def test_a_templates_live_view_gets_its_own_tab_and_follows_the_epochs(qtbot, panel, make_doc):
    doc = make_doc(mlp_project(epochs=3, batch_size=64,
                               live_view={"fn": "tests.models.test_views:first_digits_view"}))
    assert panel.pages.count() == 2  # no view before a run shows one
    _start(qtbot, panel, doc)
    with qtbot.waitSignal(panel.sig_training_finished, timeout=FINISH_MS):
        pass
    assert panel.pages.tabText(1) == "Predictions"
    panel.pages.setCurrentIndex(1)
    view = panel.live_view
    assert view.epoch == 3 and "epoch 3" in view.title.text()
    kinds = [type(r).__name__ for r in view._renderers]
    assert kinds == ["_Images", "_Bars"]
    mosaic = view._renderers[0]._items[0].image
    assert mosaic.shape[0] >= 4 * 8 and mosaic.max() <= 1.0  # 4 digits side by side

    # A run of a project without a view takes the tab away again.
    doc2 = make_doc(mlp_project(epochs=1, batch_size=64))
    _start(qtbot, panel, doc2)
    with qtbot.waitSignal(panel.sig_training_finished, timeout=FINISH_MS):
        pass
    assert panel.pages.count() == 2 and view.view is None


def test_the_live_view_draws_every_panel_kind(qtbot):
    from desktop.panels.live_view import RENDERERS, LiveViewPanel
    from models import views

    rng = np.random.default_rng(0)
    every = views.view(
        "All kinds",
        views.images_panel(rng.uniform(size=(6, 5, 5)), "images", labels=list("abcdef")),
        views.heatmap_panel(rng.uniform(size=(4, 6)), "heat", x_labels="uvwxyz", y_labels="abcd"),
        views.scatter_panel("scatter", views.series("pts", rng.normal(size=50), rng.normal(size=50),
                                                    classes=rng.integers(0, 3, 50))),
        views.bars_panel("bars", ["e0", "e1"], [0.3, 0.7], reference=0.05),
        views.graph_panel("graph", rng.normal(size=(4, 2)), [(0, 1), (2, 3)], [0, 0, 1, 1],
                          labels="ABCD", marked=[0, 3]),
        views.lines_panel("lines", views.line("r", [0, 1, 2], [1, 3, 2])),
        views.text_panel("text", "hello"),
    )
    w = LiveViewPanel()
    qtbot.addWidget(w)
    w.resize(900, 600)
    w.show()
    w.set_view(every, epoch=2)
    assert [type(r) for r in w._renderers] == list(RENDERERS.values())
    heat = w._renderers[1]._items[0]
    assert heat.image.shape == (6, 4)  # [x = columns, y = rows]
    graph_items = w._renderers[4]._items
    assert sum(isinstance(i, __import__("pyqtgraph").TextItem) for i in graph_items) == 4
    pix = w.grab()
    assert pix.width() > 0
    # The same panels again update in place (no new plots).
    plots = [r.plot for r in w._renderers]
    w.set_view(every, epoch=3)
    assert [r.plot for r in w._renderers] == plots


def test_recipe_dialog_edits_the_recipe_as_one_undo_step(qtbot, panel, make_doc):
    from desktop.panels.recipe import RecipeDialog

    doc = make_doc(mlp_project(epochs=3))
    panel.set_document(doc)
    dialog = RecipeDialog(doc.project.recipe, panel)
    qtbot.addWidget(dialog)
    dialog.optimizer.setCurrentText("SGD")
    dialog.lr.setText("5e-2")
    dialog.schedule.setCurrentText("ExponentialDecay")
    dialog.decay_steps.setValue(200)
    dialog.decay_param.setText("0.5")
    dialog.early.setChecked(True)
    dialog.early_patience.setValue(4)
    dialog.epochs.setValue(9)
    dialog.lr.setText("fast")  # refused with the reason; the dialog stays open
    dialog.accept()
    assert dialog.recipe() is None and "not a number" in dialog.problem.text()
    dialog.lr.setText("5e-2")
    dialog.accept()
    edited = dialog.recipe()
    assert edited["optimizer"] == {"class_name": "SGD", "config": {"learning_rate": 0.05}}
    assert edited["schedule"] == {"class_name": "ExponentialDecay",
                                  "config": {"decay_steps": 200, "decay_rate": 0.5}}
    assert edited["callbacks"]["early_stopping"]["patience"] == 4
    before = dict(doc.project.recipe)
    doc.set_recipe(edited)
    assert doc.project.recipe["epochs"] == 9 and panel.epochs_spin.value() == 9
    assert "SGD lr 0.05 (ExponentialDecay)" in panel.recipe_label.text()
    doc.undo_stack.undo()
    assert doc.project.recipe == before and panel.epochs_spin.value() == 3


def test_a_run_writes_checkpoints_and_can_be_resumed_from_one(qtbot, panel, make_doc):
    doc = make_doc(mlp_project(epochs=2, batch_size=64))
    _start(qtbot, panel, doc)
    with qtbot.waitSignal(panel.sig_training_finished, timeout=FINISH_MS) as finished:
        pass
    run = panel.run_dir
    assert run is not None and (run / "checkpoints" / "last.weights.h5").is_file()
    assert (run / "checkpoints" / "best.weights.h5").is_file()
    assert len((run / "history.csv").read_text().splitlines()) == 1 + 2
    assert any((run / "logs").rglob("events.out.tfevents.*"))
    assert panel.open_run_button.isVisibleTo(panel)
    first_loss = finished.args[0]["history"]["loss"]

    # Resuming starts from the checkpoint's weights: the first epoch's loss is already low.
    with qtbot.waitSignal(panel.sig_training_finished, timeout=FINISH_MS) as again:
        assert panel.resume_from_checkpoint(str(run / "checkpoints" / "last.weights.h5"))
    resumed = again.args[0]["history"]["loss"]
    assert resumed[0] < first_loss[0] * 0.7
    assert panel.run_dir != run  # a run folder of its own


def test_a_template_with_a_loss_per_output_opens_and_its_recipe_edits(qtbot, panel, make_doc):
    from desktop.panels.recipe import RecipeDialog
    from models import gallery

    doc = make_doc(gallery.open_template("capsnet"))
    panel.set_document(doc)
    assert "MarginLoss (per output)" in panel.recipe_label.text()
    dialog = RecipeDialog(doc.project.recipe, panel)
    qtbot.addWidget(dialog)
    dialog.epochs.setValue(3)
    dialog.accept()
    edited = dialog.recipe()
    assert edited is not None and edited["epochs"] == 3
    assert edited["loss"] == doc.project.recipe["loss"]  # the per-output list is kept as it was
@pytest.mark.parametrize("slug", ["gan", "som"])  # a Keras trainer (train_step) and a loop object
def test_a_custom_loop_pauses_resumes_and_stops_exactly_like_fit(qtbot, panel, make_doc, slug):
    from models import gallery

    project = gallery.open_template(slug)
    project.recipe["epochs"] = 500
    doc = make_doc(project)
    _start(qtbot, panel, doc)
    assert doc.read_only
    qtbot.waitUntil(lambda: panel.batch.n >= 5, timeout=90_000)
    _click(qtbot, panel.pause_button)
    qtbot.waitUntil(lambda: panel.pause_button.text() == "Resume", timeout=5_000)
    frozen = _assert_paused(qtbot, panel)
    _click(qtbot, panel.pause_button)  # Resume: batches come again
    qtbot.waitUntil(lambda: panel.batch.n > frozen + 5 and panel.epochs_done >= 2, timeout=90_000)
    _stop_keeping_the_best(qtbot, panel, 500)
    # Every graph's kept weights are in the (now unsaved) project; it can be edited again.
    assert set(doc.project.weights) == set(doc.project.graphs) and doc.dirty and not doc.read_only
    # The same panel shows it: the epoch curves, the template's own view, the evaluation page.
    assert "loss" in panel.epoch_curves and panel.pages.tabText(1) == payload_title(slug)
    if slug == "gan":
        assert {"g_loss", "d_loss", "modes_covered"} <= set(panel.epoch_curves)
    assert "not predictions" in panel.evaluation.empty.text()


def _stop_keeping_the_best(qtbot, panel, epochs: int) -> dict:
    """Stop from the panel: the run ends early, keeps its best weights and says so."""
    with qtbot.waitSignal(panel.sig_training_finished, timeout=FINISH_MS) as finished:
        _click(qtbot, panel.stop_button)
    payload, ok = finished.args
    assert ok and payload["stopped"] == "stopped" and payload["epochs"] < epochs
    assert "kept the best weights (epoch" in payload["message"]
    assert panel.message_label.text().startswith("Stopped by you")
    return payload


def _assert_paused(qtbot, panel, quiet_ms: int = 400, timeout_ms: int = 20_000) -> int:
    """A paused run draws no more batches (once the one in flight has ended); returns their count."""
    waited, frozen = 0, -1
    while waited < timeout_ms:  # the batch in flight ends, slowly on a loaded machine
        panel.refresh()
        if panel.batch.n == frozen:
            break
        frozen = panel.batch.n
        qtbot.wait(quiet_ms)
        waited += quiet_ms
    else:
        raise AssertionError("batches never stopped coming after the pause")
    qtbot.wait(800)
    panel.refresh()
    assert panel.batch.n == frozen, "batches kept coming while paused"
    assert "paused" in panel.progress.format()
    return frozen


def payload_title(slug: str) -> str:
    return {"gan": "Generated points", "som": "Self-organizing map"}[slug]


def test_points_in_a_plane_keep_their_shape(qtbot):
    from desktop.panels.live_view import LiveViewPanel
    from models import views

    panel = LiveViewPanel()
    qtbot.addWidget(panel)
    ring = views.series("ring", np.cos(np.linspace(0, 6.3, 50)), np.sin(np.linspace(0, 6.3, 50)))
    panel.set_view(views.view("v", views.scatter_panel("round", ring, equal_axes=True),
                              views.scatter_panel("free", ring)))
    round_box, free_box = (r.plot.getViewBox() for r in panel._renderers)
    assert round_box.state["aspectLocked"] and not free_box.state["aspectLocked"]


def test_plots_a_run_does_not_feed_say_so_and_a_loop_gets_its_gradients_plotted(qtbot, panel, make_doc):
    from models import gallery

    som = gallery.open_template("som")  # learns without gradients or an optimizer
    som.recipe.update(epochs=2)
    _start(qtbot, panel, make_doc(som))
    with qtbot.waitSignal(panel.sig_training_finished, timeout=FINISH_MS):
        pass
    titles = {k: panel.plot_items[k].titleLabel.text for k in ("lr", "grad", "grad_bar", "loss")}
    assert "not reported" in titles["grad"] and "not reported" in titles["grad_bar"]
    assert "not reported" not in titles["lr"]  # the SOM logs its own learning rate
    assert "not reported" not in titles["loss"]

    few = gallery.open_template("few-shot")  # a loop object with an optimizer
    few.recipe.update(epochs=2, quick=None)
    _start(qtbot, panel, make_doc(few))
    with qtbot.waitSignal(panel.sig_training_finished, timeout=FINISH_MS):
        pass
    assert all("not reported" not in panel.plot_items[k].titleLabel.text
               for k in ("lr", "grad", "grad_bar"))
    assert set(panel.grad_series) >= {"conv_1", "conv_2"}
    assert panel.epoch_series["learning_rate"].y[-1] == pytest.approx(1e-3)


def _epoch_event(epoch: int):
    from models.runner import Event

    layers = ["conv", "dense"]
    return Event("epoch", {
        "epoch": epoch,
        "logs": {"loss": 1.0 / epoch, "val_loss": 1.1 / epoch, "accuracy": 1 - 0.5 / epoch,
                 "learning_rate": 1e-3, "samples_per_second": 900.0 + epoch},
        "grad_norms": {n: 0.1 * epoch for n in layers},
        "histograms": {n: {"counts": [1, 2, 3], "edges": [-1.0, 0.0, 0.5, 1.0]} for n in layers}})


def test_every_plot_is_redrawn_even_when_epochs_come_faster_than_redraws(qtbot, panel, monkeypatch):
    """Two plots a tick, a new epoch before every tick: the last plots still get their turn,
    and the losses and metrics come round about twice as often as the others."""
    import desktop.panels.training as training
    from models.runner import Event, RunState

    monkeypatch.setattr(training, "PAINT_BUDGET", 1.0)  # every tick may draw
    drawn = []
    original = panel._draw_plot
    monkeypatch.setattr(panel, "_draw_plot", lambda key: (drawn.append(key), original(key)))
    state = panel.worker.state = RunState()
    state._events.append(Event("begin", {"epochs": 8, "steps": 4, "layers": ["conv", "dense"]}))
    for epoch in range(1, 7):
        state._events.append(Event("batch", (epoch, 1.0 / epoch)))
        state._events.append(_epoch_event(epoch))
        panel.refresh()
    assert set(drawn) == set(training.EPOCH_PLOTS), drawn
    assert len(drawn) == 12 and all(drawn[i] != drawn[i + 1] for i in range(0, 12, 2))
    assert drawn.count("loss") == drawn.count("metrics") == 3
    assert all(drawn.count(k) <= 2 for k in training.EPOCH_PLOTS if k not in ("loss", "metrics"))
    # The x axes span the planned run while it goes: 8 epochs, 32 steps.
    assert panel.plot_items["loss"].viewRange()[0][1] >= 8
    assert panel.plot_items["batch"].viewRange()[0][1] >= 32
