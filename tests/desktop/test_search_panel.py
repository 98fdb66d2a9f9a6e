"""Search from the editor: marks made in the inspector, the search panel, and transfer from a trained model."""
import numpy as np
import pytest
from PySide6.QtCore import Qt

from models import search
from tests.desktop.test_main_window import window  # noqa: F401  (the main window fixture)
from tests.desktop.test_panels import _settle, _type_into
from tests.models.test_search import tiny_project

FINISH_MS = 180_000


@pytest.fixture
def inspector(qtbot):
    from desktop.panels.inspector import InspectorPanel

    panel = InspectorPanel()
    qtbot.addWidget(panel)
    panel.resize(340, 760)
    panel.show()
    return panel


@pytest.fixture
def search_panel(qtbot):
    from desktop.panels.search import SearchPanel

    panel = SearchPanel()
    qtbot.addWidget(panel)
    panel.resize(1200, 420)
    panel.show()
    yield panel
    panel.shutdown()


def _mark(qtbot, inspector, key, recipe=False):
    button = inspector.mark_button(key, recipe=recipe)
    assert button is not None and button.isEnabled(), f"{key} has no range button"
    qtbot.mouseClick(button, Qt.LeftButton)
    return inspector.range_editor(key, recipe=recipe)


# --------------------------------------------------------------------------- inspector marks


def test_marking_a_parameter_is_an_undoable_recipe_edit_that_leaves_the_config_exact(
        qtbot, inspector, make_doc):
    doc = make_doc(tiny_project())
    inspector.set_document(doc)
    inspector.show_node("hidden")
    config_before = dict(doc.graph.node("hidden").config)
    editor = _mark(qtbot, inspector, "units")
    mark = search.find_mark(doc.project.recipe, "hidden", "units")
    assert mark == {"type": "int", "min": 4, "max": 16, "step": 2, "log": False,
                    "node": "hidden", "param": "units"}
    assert editor is not None and editor.edits["min"].text() == "4"
    assert doc.graph.node("hidden").config == config_before  # the value stays exact
    assert inspector.labels["units"].styleSheet()  # a marked parameter is highlighted
    # The range's ends are edited under the value, one undo step each.
    _type_into(qtbot, editor.edits["max"], "32")
    assert search.find_mark(doc.project.recipe, "hidden", "units")["max"] == 32
    _type_into(qtbot, editor.edits["min"], "64")  # above the top: refused with the reason
    assert "below the highest" in inspector.rows["units"].error_text
    assert search.find_mark(doc.project.recipe, "hidden", "units")["min"] == 4
    assert editor.edits["min"].text() == "4"
    doc.undo_stack.undo()
    assert search.find_mark(doc.project.recipe, "hidden", "units")["max"] == 16
    doc.undo_stack.undo()
    assert search.find_mark(doc.project.recipe, "hidden", "units") is None
    assert not inspector.mark_button("units").isChecked() and inspector.range_editor("units") is None
    doc.undo_stack.redo()
    assert inspector.mark_button("units").isChecked()
    # Unmarking is a click too.
    qtbot.mouseClick(inspector.mark_button("units"), Qt.LeftButton)
    assert search.space(doc.project.recipe) == []


def test_choices_rates_recipe_settings_and_repeats_can_be_marked(qtbot, inspector, make_doc):
    doc = make_doc(tiny_project(block=True))
    inspector.set_document(doc)
    inspector.show_node("hidden")
    assert inspector.mark_button("name") is None and inspector.mark_button("kernel_initializer") is None
    choice = _mark(qtbot, inspector, "activation")
    _type_into(qtbot, choice.values_edit, "relu, tanh, gelu")
    assert search.find_mark(doc.project.recipe, "hidden", "activation")["values"] == [
        "relu", "tanh", "gelu"]
    _type_into(qtbot, choice.values_edit, "relu, squiggle")
    assert "'squiggle' is not one of the choices" in inspector.rows["activation"].error_text
    inspector.show_node("dropout")
    rate = _mark(qtbot, inspector, "rate")
    assert 0.0 < float(rate.edits["min"].text()) < 0.2 < float(rate.edits["max"].text()) < 1.0
    inspector.show_node("block")  # a nested block: how many times to chain it
    assert inspector.mark_button("trainable") is None
    _mark(qtbot, inspector, search.REPEATS)
    assert search.find_mark(doc.project.recipe, "block", "repeats")["max"] == 3
    inspector.show_node(None)  # no layer: the training settings
    lr = _mark(qtbot, inspector, "learning_rate", recipe=True)
    assert lr.log_check.isChecked()
    assert inspector.recipe_rows["learning_rate"].editor.text() == "0.01"
    assert [search.mark_name(m) for m in search.space(doc.project.recipe)] == [
        "hidden.activation", "dropout.rate", "block.repeats", "recipe.learning_rate"]
    assert search.problems(doc.project) == []


def test_marks_made_in_the_inspector_are_searched_by_layerforge_search(
        qtbot, inspector, make_doc, tmp_path):
    import json
    import os
    import subprocess
    import sys
    from pathlib import Path

    doc = make_doc(tiny_project())
    inspector.set_document(doc)
    inspector.show_node("dropout")
    _mark(qtbot, inspector, "rate")
    inspector.show_node(None)
    _mark(qtbot, inspector, "batch_size", recipe=True)
    path = doc.save(tmp_path / "marked.lforge")
    root = Path(__file__).resolve().parents[2]
    out = subprocess.run([sys.executable, "-m", "models.cli", "search", str(path), "--trials", "2",
                          "--json"], capture_output=True, text=True, cwd=root, timeout=600,
                         env=dict(os.environ))
    assert out.returncode == 0, out.stderr[-1500:]
    payload = json.loads(out.stdout.strip().splitlines()[-1])
    marks = {m["param"] if "param" in m else m["recipe"]: m
             for m in search.space(doc.project.recipe)}
    for trial in payload["trials"]:
        rate, batch = trial["params"]["dropout.rate"], trial["params"]["recipe.batch_size"]
        assert marks["rate"]["min"] <= rate <= marks["rate"]["max"]
        assert batch in marks["batch_size"]["values"]


def test_marks_follow_a_rename_and_lock_while_training(qtbot, inspector, make_doc):
    doc = make_doc(tiny_project())
    inspector.set_document(doc)
    inspector.show_node("hidden")
    _mark(qtbot, inspector, "units")
    ok, _ = doc.set_params("hidden", {"name": "wide"})
    assert ok and search.find_mark(doc.project.recipe, "wide", "units") is not None
    doc.undo_stack.undo()
    assert search.find_mark(doc.project.recipe, "hidden", "units") is not None
    doc.set_read_only(True)
    inspector.show_node("hidden")
    assert not inspector.mark_button("units").isEnabled()
    refused = []
    doc.sig_edit_refused.connect(refused.append)
    doc.set_search_mark("hidden", "units", None)
    assert refused and search.find_mark(doc.project.recipe, "hidden", "units") is not None
    doc.set_read_only(False)


# --------------------------------------------------------------------------- the search panel


def test_a_search_started_from_inspector_marks_fills_the_table_and_opens_the_best(
        qtbot, inspector, search_panel, make_doc):
    doc = make_doc(tiny_project())
    _settle(qtbot, doc)
    inspector.set_document(doc)
    search_panel.set_document(doc)
    assert "Nothing is marked" in search_panel.space_label.text()
    inspector.show_node("hidden")
    _mark(qtbot, inspector, "units")
    _type_into(qtbot, _mark(qtbot, inspector, "activation").values_edit, "relu, tanh")
    assert "hidden.units" in search_panel.space_label.text()
    search_panel.algorithm_combo.setCurrentIndex(search_panel.algorithm_combo.findData("random"))
    search_panel.algorithm_combo.activated.emit(search_panel.algorithm_combo.currentIndex())
    search_panel.trials_spin.setValue(3)
    assert search.settings(doc.project.recipe)["trials"] == 3  # saved in the project, undoable
    with qtbot.waitSignal(search_panel.sig_search_finished, timeout=FINISH_MS) as finished:
        qtbot.mouseClick(search_panel.start_button, Qt.LeftButton)
        assert not search_panel.start_action.isEnabled()
    result = finished.args[0]
    assert result is not None and len(result.trials) == 3
    table = search_panel.table
    headers = [table.horizontalHeaderItem(c).text() for c in range(table.columnCount())]
    assert headers == ["#", "status", "val_accuracy", "hidden.units", "hidden.activation",
                       "epochs", "seconds"]
    assert table.rowCount() == 3
    best_row = [t.number for t in result.trials].index(result.best)
    for row, trial in enumerate(result.trials):
        assert table.item(row, 1).text() == "done"
        assert table.item(row, 2).text() == f"{trial.score:.4f}"
        assert table.item(row, 3).text() == str(trial.params["hidden.units"])
        assert table.item(row, 0).font().bold() == (row == best_row)
    assert table.item(best_row, 2).background().color().name() == "#d7f0d2"
    assert len(search_panel.points.data) == 3 and search_panel.best_point.data["x"][0] == result.best
    assert search_panel.open_button.isEnabled()
    with qtbot.waitSignal(search_panel.sig_open_project, timeout=5_000) as opened:
        qtbot.mouseClick(search_panel.open_button, Qt.LeftButton)
    best = opened.args[0]
    params = result.best_trial.params
    node = best.graph.node("hidden").config
    assert (node["units"], node["activation"]) == (params["hidden.units"], params["hidden.activation"])
    assert best.has_weights() and "search" not in best.recipe
    np.testing.assert_allclose(best.build().get_layer("hidden").get_weights()[0],
                               result.best_model.get_layer("hidden").get_weights()[0])


def test_stop_ends_the_search_and_keeps_the_finished_trials(qtbot, search_panel, make_doc):
    project = tiny_project()
    project.recipe = search.with_mark(project.recipe, "hidden", "units",
                                      {"type": "int", "min": 4, "max": 64, "step": 4})
    project.recipe["epochs"] = 30
    doc = make_doc(project)
    _settle(qtbot, doc)
    search_panel.set_document(doc)
    search_panel.trials_spin.setValue(20)
    assert search_panel.start()
    qtbot.waitUntil(lambda: any(t["status"] == "ok" for t in search_panel.trials.values()),
                    timeout=FINISH_MS)
    with qtbot.waitSignal(search_panel.sig_search_finished, timeout=FINISH_MS) as finished:
        qtbot.mouseClick(search_panel.stop_button, Qt.LeftButton)
    result = finished.args[0]
    assert result.stopped == "stopped" and 1 <= len(result.trials) < 20
    assert search_panel.progress.format() == "stopped"
    assert "Stopped" in search_panel.message_label.text()
    assert search_panel.open_button.isEnabled()


def test_a_search_that_cannot_start_says_why(qtbot, search_panel, make_doc):
    doc = make_doc(tiny_project())
    search_panel.set_document(doc)
    assert not search_panel.start()
    assert "no parameter is marked" in search_panel.message_label.text()
    doc.set_search_mark("gone", "units", {"type": "int", "min": 1, "max": 4})
    assert "there is no layer 'gone'" in search_panel.space_label.text()
    assert not search_panel.start() and not search_panel.worker.running


# --------------------------------------------------------------------------- main window


def test_the_search_dock_sits_with_training_and_the_best_opens_unsaved(qtbot, window):  # noqa: F811
    assert window.tabifiedDockWidgets(window.search_dock)
    assert window.search_dock in window.tabifiedDockWidgets(window.training_dock)
    train_menu = next(a.menu() for a in window.menuBar().actions() if a.text() == "&Train")
    assert window.search_panel.start_action in train_menu.actions()
    file_menu = next(a.menu() for a in window.menuBar().actions() if a.text() == "&File")
    assert window.actions["transfer"] in file_menu.actions()
    best = tiny_project()
    best.meta["title"] = "best"
    window.search_panel.sig_open_project.emit(best)
    assert window.doc.project is best and window.doc.dirty  # a trained model exists nowhere yet


@pytest.fixture
def trained_base(tmp_path):
    from models import backend
    from tests.models.test_transfer import small_cnn

    keras = backend.keras()
    keras.utils.set_random_seed(0)
    model = small_cnn()
    from models.build import graph_from_model
    from models.data import load_dataset
    from models.project import new_project

    ds = load_dataset({"source": "builtin", "name": "digits"}, limit=200)
    model.compile(optimizer="adam", loss="sparse_categorical_crossentropy")
    model.fit(ds.x_train, ds.y_train, epochs=1, verbose=0)
    project = new_project(graph_from_model(model))
    project.dataset = {"source": "builtin", "name": "digits"}
    return project.save(tmp_path / "base.lforge", models={"model": model}), model


def test_new_from_trained_model_keeps_freezes_and_heads_for_the_current_data(
        qtbot, make_doc, trained_base, tmp_path):
    from desktop.transfer_dialog import TransferDialog

    path, model = trained_base
    current = make_doc(tiny_project()).project
    current.dataset = {"source": "builtin", "name": "digits-5-9"}
    dialog = TransferDialog(current)
    qtbot.addWidget(dialog)
    assert not dialog.create_button.isEnabled()
    assert dialog.set_base_path(path)
    items = [dialog.keep_combo.itemData(i) for i in range(dialog.keep_combo.count())]
    assert items == ["conv", "pool", "flatten", "features"]
    assert dialog.keep_combo.currentData() == "features"
    dialog.select("features", "pool")
    assert "current project's data (digits-5-9)" in dialog.head_label.text()
    with qtbot.waitSignal(dialog.sig_created, timeout=60_000) as created:
        qtbot.mouseClick(dialog.create_button, Qt.LeftButton)
    new = created.args[0]
    assert new.graph.nodes["conv"].config["trainable"] is False
    assert new.graph.nodes["features"].config.get("trainable", True) is True
    assert new.graph.nodes["head"].config["units"] == 5
    assert new.dataset == current.dataset
    built = new.build()
    np.testing.assert_array_equal(built.get_layer("conv").get_weights()[0],
                                  model.get_layer("conv").get_weights()[0])


def test_a_base_without_weights_is_refused_in_words(qtbot, tmp_path):
    from desktop.transfer_dialog import TransferDialog

    path = tiny_project().save(tmp_path / "untrained.lforge")
    dialog = TransferDialog(None)
    qtbot.addWidget(dialog)
    assert not dialog.set_base_path(path)
    assert "has no trained weights" in dialog.error.text() and not dialog.create_button.isEnabled()
    assert not dialog.set_base_path(tmp_path / "missing.lforge")
    assert "no such file" in dialog.error.text()


def test_training_a_project_that_searches_hands_its_trials_to_the_search_panel(
        qtbot, window):  # noqa: F811
    project = tiny_project()
    project.recipe = search.with_mark(project.recipe, "hidden", "units",
                                      {"type": "int", "min": 4, "max": 16, "step": 4})
    project.recipe = search.with_settings(project.recipe, trials=2, as_training=True)
    window._load_project(project)
    _settle(qtbot, window.doc)
    with qtbot.waitSignal(window.training.sig_training_finished, timeout=FINISH_MS) as finished:
        assert window.training.start()
    payload, ok = finished.args
    assert ok and payload["quality"]["metric"] == "test_accuracy"
    # The best trial's graph is not the one on the canvas: its weights stay out of this project.
    assert not window.doc.project.has_weights()
    assert len(window.search_panel.trials) == 2 and window.search_panel.open_button.isEnabled()
    assert window.search_panel.best_project.graph.node("hidden").config["units"] in (4, 8, 12, 16)


def test_a_soms_training_settings_offer_no_learning_rate_to_search(qtbot, inspector, make_doc):
    from models import gallery

    doc = make_doc(gallery.open_template("som"))  # its map layer sets its own steps
    inspector.set_document(doc)
    inspector.show_node(None)
    rows = inspector.recipe_rows
    assert rows["learning_rate"].isHidden() and inspector.recipe_labels["learning_rate"].isHidden()
    assert not rows["epochs"].isHidden() and not rows["batch_size"].isHidden()
    # A mark made before (by hand, in the file) stays in sight, so it can be taken off.
    doc.set_search_mark(None, "learning_rate", {"min": 0.001, "max": 0.1, "log": True})
    assert not rows["learning_rate"].isHidden()
    doc.set_search_mark(None, "learning_rate", None)
    assert rows["learning_rate"].isHidden()
    inspector.set_document(make_doc(tiny_project()))  # a Keras optimizer: the row is back
    assert not rows["learning_rate"].isHidden()
