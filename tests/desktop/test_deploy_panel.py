"""The deploy panel as a user drives it: choose steps and a target, run, compare, keep the result."""
from __future__ import annotations

import numpy as np
import pytest
from PySide6.QtCore import Qt

from tests.models.deploy_helpers import trained

FINISH_MS = 240_000

# TFMOT 0.8 still imports distutils' version classes.
pytestmark = pytest.mark.filterwarnings("ignore::DeprecationWarning:tensorflow_model_optimization")


@pytest.fixture
def panel(qtbot):
    from desktop.panels.deploy import DeployPanel

    p = DeployPanel()
    qtbot.addWidget(p)
    p.resize(1300, 700)
    p.show()
    yield p
    p.shutdown()


@pytest.fixture
def cnn_doc(make_doc):
    from models.project import Project

    return make_doc(Project.load(trained("cnn", epochs=6)))


def _only(panel, *formats):
    for fmt, check in panel.format_checks.items():
        check.setChecked(fmt in formats)


def _run(qtbot, panel):
    assert panel.run_button.isEnabled()
    with qtbot.waitSignal(panel.sig_finished, timeout=FINISH_MS) as blocker:
        qtbot.mouseClick(panel.run_button, Qt.LeftButton)
    return blocker.args[0]


def test_refuses_a_model_without_trained_weights(qtbot, panel, make_doc):
    from models import gallery

    panel.set_document(make_doc(gallery.open_template("cnn")))
    qtbot.mouseClick(panel.run_button, Qt.LeftButton)
    assert not panel.worker.running
    assert "train it first" in panel.message_label.text()


def test_a_target_ticks_its_formats_and_says_what_it_does(panel):
    index = panel.target_combo.findData("edgetpu")
    panel.target_combo.setCurrentIndex(index)
    ticked = {f for f, c in panel.format_checks.items() if c.isChecked()}
    assert ticked == {"tflite", "tflite-int8"}
    assert "Edge TPU" in panel.target_note.text()
    plan = panel.plan()
    assert plan.target == "edgetpu" and plan.compress is None


def test_run_fills_the_table_and_the_charts_and_the_folder_opens(qtbot, panel, cnn_doc,
                                                                  monkeypatch):
    import pyqtgraph as pg
    from PySide6.QtGui import QDesktopServices

    panel.set_document(cnn_doc)
    panel.target_combo.setCurrentIndex(panel.target_combo.findData("mcu"))
    report = _run(qtbot, panel)
    assert report is not None
    names = [panel.table.item(i, 0).text() for i in range(panel.table.rowCount())]
    assert names == ["keras (float)", "tflite", "tflite-int8", "c-array"]
    ratio = panel.table.item(names.index("tflite-int8"), 2).text()
    assert ratio.endswith("%") and int(ratio[:-1]) <= 35
    assert panel.table.item(1, 4).text() == "100.00 %"  # float TFLite agrees with Keras
    for key, plot in panel.chart_plots.items():
        bars = [i for i in plot.items if isinstance(i, pg.BarGraphItem)]
        assert bars, key
    assert "Microcontroller" in panel.details.toPlainText()
    assert "tensor arena" in panel.details.toPlainText()
    opened = []
    monkeypatch.setattr(QDesktopServices, "openUrl", lambda url: opened.append(url.toLocalFile()))
    assert panel.open_folder_button.isEnabled()
    qtbot.mouseClick(panel.open_folder_button, Qt.LeftButton)
    assert opened == [str(panel.out_dir)] and (panel.out_dir / "model.cc").exists()
    assert not panel.open_project_button.isEnabled()  # nothing was compressed


def test_pruned_result_opens_as_a_new_project_or_is_saved(qtbot, panel, cnn_doc, tmp_path):
    panel.set_document(cnn_doc)
    panel.prune_check.setChecked(True)
    panel.epochs_spin.setValue(1)
    _only(panel, "tflite-int8")
    report = _run(qtbot, panel)
    assert report.compression is not None
    assert panel.table.rowCount() == 3  # float, pruned Keras, pruned int8
    assert "zeros  50.0%" in panel.details.toPlainText()
    assert panel.open_project_button.isEnabled()
    with qtbot.waitSignal(panel.sig_open_project, timeout=5000) as blocker:
        qtbot.mouseClick(panel.open_project_button, Qt.LeftButton)
    project = blocker.args[0]
    assert project is not cnn_doc.project and project.path is None
    kernel = project.build().get_layer("dense").kernel
    assert np.mean(np.asarray(kernel) == 0) >= 0.49
    saved = panel.save_compressed(str(tmp_path / "pruned.lforge"))
    assert saved.exists() and saved.with_name("pruned.weights.h5").exists()
    assert cnn_doc.project.path != saved  # the open document is untouched


def test_stop_ends_a_run_and_says_so(qtbot, panel, cnn_doc):
    panel.set_document(cnn_doc)
    panel.prune_check.setChecked(True)
    panel.epochs_spin.setValue(50)
    _only(panel, "tflite")
    qtbot.mouseClick(panel.run_button, Qt.LeftButton)
    assert panel.stop_button.isEnabled() and not panel.run_button.isEnabled()
    qtbot.waitUntil(lambda: "pruning" in panel.progress.format(), timeout=120_000)
    with qtbot.waitSignal(panel.sig_finished, timeout=60_000) as blocker:
        qtbot.mouseClick(panel.stop_button, Qt.LeftButton)
    assert blocker.args[0] is None
    assert "Stopped" in panel.message_label.text() and panel.progress.format() == "stopped"
    assert panel.run_button.isEnabled()


def test_bad_settings_are_refused_with_the_reason(qtbot, panel, cnn_doc):
    panel.set_document(cnn_doc)
    panel.qat_check.setChecked(True)
    panel.epochs_spin.setValue(0)
    qtbot.mouseClick(panel.run_button, Qt.LeftButton)
    assert not panel.worker.running
    assert "at least one fine-tuning epoch" in panel.message_label.text()


def test_xla_speedup_is_shown_after_a_run(qtbot, panel, make_doc):
    from models.project import Project

    panel.set_document(make_doc(Project.load(trained("mlp", epochs=2))))
    _only(panel, "tflite")
    panel.xla_check.setChecked(True)
    report = _run(qtbot, panel)
    assert report.xla["train"]["speedup"] > 0
    text = panel.details.toPlainText()
    assert "XLA on CPU" in text or "XLA on GPU" in text
    assert "ms/step" in text


def test_hlo_opens_in_a_dialog(qtbot, panel, cnn_doc):
    panel.set_document(cnn_doc)
    qtbot.mouseClick(panel.hlo_button, Qt.LeftButton)
    qtbot.waitUntil(lambda: getattr(panel, "hlo_dialog", None) is not None, timeout=120_000)
    text = panel.hlo_dialog.findChild(type(panel.details)).toPlainText()
    assert text.startswith("HloModule")
    panel.hlo_dialog.close()


def test_the_main_window_has_a_deploy_dock_beside_training_and_a_menu(qtbot, tmp_path,
                                                                      monkeypatch):
    monkeypatch.setenv("LAYERFORGE_RECOVERY_DIR", str(tmp_path / "appdata"))
    from desktop.main_window import MainWindow

    w = MainWindow(offer_recovery=False)
    qtbot.addWidget(w)
    assert w.deploy_dock in w.tabifiedDockWidgets(w.training_dock)
    titles = [a.text() for a in w.menuBar().actions()]
    assert "&Deploy" in titles and titles.index("&Deploy") < titles.index("&Help")
    menu = next(a.menu() for a in w.menuBar().actions() if a.text() == "&Deploy")
    assert w.deploy.run_action in menu.actions()
    assert w.deploy.doc is w.doc
    w.deploy.shutdown()
    w.training.shutdown()
