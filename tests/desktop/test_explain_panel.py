"""The explain panel as a user drives it: pick samples, a method, run, cancel, export."""
import numpy as np
import pytest
from PySide6.QtCore import Qt

from tests.models import explain_cases as cases


@pytest.fixture(scope="module", autouse=True)
def _datasets():
    with cases.registered_datasets():
        yield

PREPARE_MS = 120_000
RUN_MS = 120_000


@pytest.fixture
def panel(qtbot):
    from desktop.panels.explain import ExplainPanel

    p = ExplainPanel()
    qtbot.addWidget(p)
    p.resize(1300, 560)
    p.show()
    yield p
    p.shutdown()


def _open(qtbot, panel, make_doc, model, dataset_name):
    doc = make_doc(cases.project_of(model, dataset_name))
    with qtbot.waitSignal(panel.sig_prepared, timeout=PREPARE_MS):
        panel.set_document(doc)
    return doc


def _run(qtbot, panel, method, samples, **options):
    assert panel.set_method(method), panel.method_tooltip(method)
    for name, value in options.items():
        w = panel.option_widget(name)
        if hasattr(w, "setValue"):
            w.setValue(value)
        else:
            w.setCurrentIndex(w.findData(value))
    panel.select_samples(samples)
    assert panel.selected_samples() == samples
    with qtbot.waitSignal(panel.sig_explained, timeout=RUN_MS) as blocker:
        qtbot.mouseClick(panel.explain_button, Qt.LeftButton)
    return blocker.args[0]


def test_an_image_model_shows_heat_over_the_image_and_exports(qtbot, panel, make_doc, tmp_path):
    model, ds = cases.square()
    _open(qtbot, panel, make_doc, model, "explain-square")
    assert panel.samples_stack.currentWidget() is panel.sample_grid
    assert panel.sample_grid.count() == min(ds.n_test, 60)
    assert panel.method_name() == "gradcam"  # the natural first choice for a CNN
    assert not panel.set_method("deep-shap")
    assert "Unavailable: the DeepExplainer of shap 0.51 has no rule for the TensorFlow op Max" \
        in panel.method_tooltip("deep-shap")
    assert "attention layer" in panel.method_tooltip("attention")
    squares = [i for i in range(20) if ds.y_test[i] == 1][:2]
    e = _run(qtbot, panel, "gradcam", squares)
    assert [s.index for s in e.samples] == squares
    assert panel.pages.currentWidget() is panel.image_view
    assert panel.sample_combo.count() == 2 and panel.opacity.isVisibleTo(panel)
    heat = panel.heat_item.image
    assert heat.shape == (cases.SIDE, cases.SIDE) and float(heat.max()) == pytest.approx(1.0)
    panel.opacity.setValue(25)
    assert panel.heat_item.opacity() == pytest.approx(0.25)
    panel.sample_combo.setCurrentIndex(1)
    np.testing.assert_allclose(panel.heat_item.image, e.samples[1].attributions[0][..., 0].T)
    png, csv = panel.export_png(str(tmp_path / "cam.png")), panel.export_csv(str(tmp_path / "cam.csv"))
    assert png.read_bytes()[:4] == b"\x89PNG" and png.stat().st_size > 5000
    assert csv.read_text().count("\n") == 1 + 2 * cases.SIDE * cases.SIDE


def test_a_table_model_shows_local_and_global_bars_with_feature_names(qtbot, panel, make_doc):
    model, _ = cases.one_feature()
    _open(qtbot, panel, make_doc, model, "explain-one-feature")
    assert panel.samples_stack.currentWidget() is panel.sample_table
    assert [panel.sample_table.horizontalHeaderItem(c).text() for c in range(6)] == \
        ["a", "b", "key", "d", "e", "target"]
    assert not panel.set_method("gradcam")
    assert panel.method_tooltip("gradcam") == \
        "Unavailable: Grad-CAM needs a convolution layer (Conv1D or Conv2D); this model has none"
    e = _run(qtbot, panel, "shap", list(range(6)))
    assert e.feature_ranking()[0] == "key"
    assert panel.pages.currentWidget() is panel.bars_view
    top = max(panel.global_plot.getAxis("left")._tickLevels[0], key=lambda t: t[0])
    assert top[1] == "key"  # the top bar of the global importance
    assert [type(i).__name__ for i in panel.local_plot.items].count("BarGraphItem") == 1


def test_an_attention_model_shows_each_head_and_tokens(qtbot, panel, make_doc):
    model, ds = cases.reversal()
    _open(qtbot, panel, make_doc, model, "explain-reversal")
    assert panel.method_name() == "attention"
    for name in ("shap", "saliency"):
        assert "token ids" in panel.method_tooltip(name)
    e = _run(qtbot, panel, "attention", [0])
    assert panel.pages.currentWidget() is panel.grid_view
    import pyqtgraph as pg

    plots = [item for item in panel.grid_view.ci.items
             if isinstance(item, pg.PlotItem) and not isinstance(item, pg.ColorBarItem)]
    assert len(plots) == 2
    labels = [t for _, t in plots[0].getAxis("bottom")._tickLevels[0]]
    assert labels == [f"{i}:{int(t)}" for i, t in enumerate(ds.x_test[0])]
    assert np.argmax(e.samples[0].attention[0]["scores"].mean(0)[0]) == 7
    lime = _run(qtbot, panel, "lime", [0], position=2)
    assert lime.position == 2 and panel.pages.currentWidget() is panel.tokens_view
    assert panel.tokens_view.toPlainText().count(str(int(ds.x_test[0][5]))) >= 1


def test_a_sequence_model_and_a_two_input_model_are_explained(qtbot, panel, make_doc):
    model, _ = cases.lstm_rows()
    doc = make_doc(cases.project_of(model, "digits-rows"))
    doc.project.recipe["limit"] = 600
    with qtbot.waitSignal(panel.sig_prepared, timeout=PREPARE_MS):
        panel.set_document(doc)
    assert "While" in panel.method_tooltip("deep-shap") or "TensorList" in panel.method_tooltip("deep-shap")
    e = _run(qtbot, panel, "integrated-gradients", [0, 1])
    assert e.samples[0].attributions[0].shape == (8, 8)
    assert panel.pages.currentWidget() is panel.image_view  # digit rows are still an image

    model, _ = cases.two_inputs()
    with qtbot.waitSignal(panel.sig_prepared, timeout=PREPARE_MS):
        panel.set_document(make_doc(cases.project_of(model, "explain-two-inputs")))
    e = _run(qtbot, panel, "kernel-shap", [0, 1, 2])
    assert panel.input_combo.count() == 2 and panel.input_combo.isVisibleTo(panel)
    panel.input_combo.setCurrentIndex(panel.input_combo.findText("cols"))
    assert panel.pages.currentWidget() is panel.bars_view
    panel.input_combo.setCurrentIndex(panel.input_combo.findText("image"))
    assert panel.pages.currentWidget() is panel.image_view
    assert e.feature_ranking()[0] == "cols[0]"


def test_cancel_stops_a_long_run(qtbot, panel, make_doc):
    model, _ = cases.one_feature()
    _open(qtbot, panel, make_doc, model, "explain-one-feature")
    assert panel.set_method("kernel-shap")
    panel.option_widget("nsamples").setValue(4000)
    panel.option_widget("references").setCurrentText("16")
    panel.select_samples(list(range(40)))
    qtbot.mouseClick(panel.explain_button, Qt.LeftButton)
    assert panel.worker.running and panel.cancel_button.isEnabled()
    assert not panel.explain_button.isEnabled()
    qtbot.waitUntil(lambda: panel.worker.state.fraction > 0, timeout=RUN_MS)
    with qtbot.waitSignal(panel.worker.sig_done, timeout=RUN_MS) as blocker:
        qtbot.mouseClick(panel.cancel_button, Qt.LeftButton)
    assert blocker.args[0].status == "cancelled"
    assert panel.progress.format() == "cancelled" and "Cancelled" in panel.status_label.text()
    assert panel.explanation is None and panel.explain_button.isEnabled()


def test_no_weights_and_no_data_are_said_plainly(qtbot, panel, make_doc):
    model, _ = cases.one_feature()
    project = cases.project_of(model, "explain-one-feature")
    project.weights.clear()
    with qtbot.waitSignal(panel.sig_prepared, timeout=PREPARE_MS):
        panel.set_document(make_doc(project))
    assert "no trained weights yet" in panel.status_label.text()
    project = cases.project_of(model, "explain-one-feature")
    project.dataset = None
    panel.set_document(make_doc(project))
    panel.prepare()
    assert "no data yet" in panel.status_label.text() and not panel.explain_button.isEnabled()


def test_the_main_window_has_an_explain_dock_beside_training(qtbot):
    from desktop.main_window import MainWindow

    win = MainWindow(offer_recovery=False)
    qtbot.addWidget(win)
    assert win.explain_dock.widget() is win.explain_panel
    assert win.explain_dock in win.tabifiedDockWidgets(win.training_dock)
    train = next(a.menu() for a in win.menuBar().actions() if a.text().replace("&", "") == "Train")
    assert win.actions["explain"] in train.actions()
    win.actions["explain"].trigger()
    assert not win.explain_dock.isHidden()
    win.doc.undo_stack.setClean()
    win.close()
