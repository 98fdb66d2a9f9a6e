"""The main window as a user drives it: files, recovery, start-up and the screenshot command."""
import json
import os
import subprocess
import sys
import time
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]


@pytest.fixture
def window(qtbot, tmp_path, monkeypatch):
    monkeypatch.setenv("LAYERFORGE_RECOVERY_DIR", str(tmp_path / "appdata"))
    from PySide6.QtCore import QCoreApplication

    QCoreApplication.setOrganizationName("LayerForgeTests")
    from desktop.main_window import MainWindow

    w = MainWindow(offer_recovery=False)
    w.show()
    yield w
    # Closing asks about unsaved changes; nobody is there to answer in a test.
    w.doc.undo_stack.setClean()
    w.close()
    w.deleteLater()


def _wait_valid(qtbot, doc):
    if doc.validation_pending:
        with qtbot.waitSignal(doc.sig_validated, timeout=60000):
            pass
    return doc.report


def test_gallery_project_opens_with_shapes_and_params(window, qtbot):
    window.open_path("gallery:seed-cnn", ask=False)
    report = _wait_valid(qtbot, window.doc)
    assert report.valid
    assert report.nodes["max_pool"].output_shape == [None, 2, 2, 1]
    assert "15 parameters" in window._params_label.text()  # 5 conv + 10 dense
    assert "valid" in window._valid_label.text()
    assert "max_pool (MaxPooling2D)" in window.summary_text.toPlainText()


def test_save_and_reopen_gives_an_identical_graph(window, qtbot, tmp_path):
    window.open_path("gallery:seed-mlp", ask=False)
    _wait_valid(qtbot, window.doc)
    window.doc.add_layer("Dense", (500.0, 100.0))
    path = tmp_path / "saved.lforge"
    assert window._save_to(path)
    assert not window.doc.dirty and window.windowTitle().startswith("saved.lforge")
    from models.project import Project

    reopened = Project.load(path)
    assert reopened.graph.to_dict() == json.loads(json.dumps(window.doc.graph.to_dict()))
    assert reopened.positions() == window.doc.positions


def test_autosave_and_recovery_restore_unsaved_work(window, qtbot, tmp_path):
    window.open_path("gallery:seed-mlp", ask=False)
    _wait_valid(qtbot, window.doc)
    added = window.doc.add_layer("Dropout", (400.0, 300.0))
    recovery = window.autosave()
    assert recovery is not None and recovery.exists()
    expected = json.loads(json.dumps(window.doc.graph.to_dict()))
    # A crash: the window goes away without saving. A new window restores the work.
    window.doc.undo_stack.setClean()
    from desktop.main_window import MainWindow

    second = MainWindow(offer_recovery=False)
    assert second.restore_recovery(recovery)
    assert added in second.doc.graph
    assert second.doc.graph.to_dict() == expected
    assert second.doc.dirty  # restored work still needs saving
    assert not recovery.exists()
    second.doc.undo_stack.setClean()
    second.close()


def test_autosave_skips_a_clean_document(window):
    assert window.autosave() is None


def test_opening_a_damaged_file_shows_a_message_and_keeps_the_project(window, qtbot, tmp_path):
    window.open_path("gallery:seed-mlp", ask=False)
    _wait_valid(qtbot, window.doc)
    before = window.doc.graph.to_dict()
    bad = tmp_path / "bad.lforge"
    bad.write_text('{"format": "layerforge-project", "version": 1, "graphs": {')
    assert window.open_path(str(bad), ask=False) is False
    assert "truncated" in window.statusBar().currentMessage()
    assert window.doc.graph.to_dict() == before


def test_import_keras_file_runs_in_background(window, qtbot, tmp_path):
    from tests.models import archs

    model = archs.multi_io_shared()
    model.save(tmp_path / "m.keras")
    window.open_path(str(tmp_path / "m.keras"), ask=False)
    qtbot.waitUntil(lambda: "shared" in window.doc.graph, timeout=60000)
    report = _wait_valid(qtbot, window.doc)
    assert report.params == model.count_params()
    assert window.doc.project.has_weights()


def test_screenshot_of_an_empty_project_is_quick_and_needs_no_tensorflow(tmp_path):
    out = tmp_path / "empty.png"
    env = dict(os.environ, QT_QPA_PLATFORM="offscreen",
               LAYERFORGE_RECOVERY_DIR=str(tmp_path / "appdata"))
    t0 = time.perf_counter()
    r = subprocess.run([sys.executable, "-m", "models.cli", "open", "--screenshot", str(out)],
                       capture_output=True, text=True, cwd=ROOT, env=env, timeout=120)
    elapsed = time.perf_counter() - t0
    assert r.returncode == 0, r.stderr
    assert out.exists() and out.stat().st_size > 10_000
    from PySide6.QtGui import QImage

    img = QImage(str(out))
    assert img.width() >= 1000 and img.height() >= 600
    print(f"empty-project screenshot in {elapsed:.2f} s")
    assert r.stderr.strip() == ""


def test_group_selection_into_a_sub_model_and_undo(window, qtbot):
    window.open_path("gallery:cnn", ask=False)
    report = _wait_valid(qtbot, window.doc)
    params = report.params
    before = window.doc.graph.to_dict()
    window.view.select(["conv_1", "conv_2", "pool_1"])
    window.actions["group"].trigger()
    assert "block" in window.doc.graph and "conv_1" not in window.doc.graph
    report = _wait_valid(qtbot, window.doc)
    assert report.valid and report.params == params
    assert report.nodes["block"].output_shape == [None, 4, 4, 32]
    window.doc.undo_stack.undo()
    assert window.doc.graph.to_dict() == before
    # An Input cannot go into a group: refused with the reason.
    window.view.select(["image", "conv_1"])
    window.actions["group"].trigger()
    assert "Input layer" in window.statusBar().currentMessage()


def test_drag_from_palette_drops_a_layer_on_the_canvas(window, qtbot):
    """The palette's own drag data, dropped on the canvas, adds that layer there."""
    from PySide6.QtCore import QPoint, QPointF, Qt
    from PySide6.QtGui import QDragEnterEvent, QDropEvent
    from PySide6.QtWidgets import QApplication

    palette = window.palette
    index = palette.index_of("Conv2D")
    mime = index.model().mimeData([index])
    vp = window.view.viewport()
    at = QPoint(vp.width() // 2, vp.height() // 2)
    QApplication.sendEvent(vp, QDragEnterEvent(at, Qt.CopyAction, mime, Qt.LeftButton, Qt.NoModifier))
    drop = QDropEvent(QPointF(at), Qt.CopyAction, mime, Qt.LeftButton, Qt.NoModifier)
    QApplication.sendEvent(vp, drop)
    assert [n.class_name for n in window.doc.graph.nodes.values()] == ["Conv2D"]
    assert window.doc.undo_stack.count() == 1


def test_data_dock_previews_the_project_data_and_adapts_the_model(window, qtbot):
    window.open_path("gallery:mlp", ask=False)
    _wait_valid(qtbot, window.doc)
    panel = window.data_panel
    qtbot.waitUntil(lambda: panel.dataset is not None, timeout=60000)
    assert panel.dataset.name == "digits" and panel.stack.currentIndex() == 1  # image grid
    panel.load({"source": "builtin", "name": "iris"})
    qtbot.waitUntil(lambda: panel.dataset is not None and panel.dataset.name == "iris", timeout=60000)
    assert window.doc.project.dataset["name"] == "iris"
    assert panel.stack.currentIndex() == 0 and panel.table.rowCount() > 0  # a table
    notes = panel.adapt_model()
    assert any("3 units" in n for n in notes)
    assert window.doc.graph.node("digit").config["units"] == 3
    window.doc.undo_stack.undo()  # adapting is one undo step
    assert window.doc.graph.node("digit").config["units"] == 10


def test_closing_the_window_stops_every_run_and_waits_for_it(window, qtbot):
    """Closing mid-training stops the run at its next batch and leaves no thread behind."""
    from PySide6.QtCore import Qt

    from tests.models.test_training import mlp_project

    window.doc.replace_project(mlp_project(epochs=500, batch_size=8))
    panel = window.training
    with qtbot.waitSignal(panel.sig_training_started, timeout=20_000):
        qtbot.mouseClick(panel.start_button, Qt.LeftButton)
    state = panel.worker.state
    qtbot.waitUntil(lambda: state.fraction > 0, timeout=60_000)
    thread = panel.worker._thread
    assert thread is not None and thread.is_alive()
    window.doc.undo_stack.setClean()
    started = time.monotonic()
    window.close()
    assert not thread.is_alive()
    assert state.cancelled and state.result.stopped == "stopped"  # stopped, best weights kept
    assert time.monotonic() - started < 20  # one batch, not 500 epochs
    for worker in (window.search_panel.worker, window.explain_panel.worker, window.deploy.worker):
        assert worker._thread is None or not worker._thread.is_alive()
