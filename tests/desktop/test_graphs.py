"""Projects with several graphs (encoder and decoder, generator and discriminator) in the editor."""
import json

import pytest

from tests.desktop.test_main_window import _wait_valid, window  # noqa: F401  (the fixture)


def _two_graph_project():
    from models import gallery

    return gallery.open_template("autoencoder")


def test_the_document_shows_one_graph_at_a_time_and_validates_it(qtbot, make_doc):
    doc = make_doc(_two_graph_project())
    assert doc.graph_name == "encoder" and "code" in doc.graph.nodes
    report = _wait_valid(qtbot, doc)
    assert report.nodes["code"].output_shape == [None, 16]
    with qtbot.waitSignal(doc.sig_graph_shown) as shown:
        doc.show_graph("decoder")
    assert shown.args == ["decoder"]
    assert doc.graph is doc.project.graphs["decoder"] and doc.positions is doc.project.positions("decoder")
    report = _wait_valid(qtbot, doc)
    assert report.nodes["image"].output_shape == [None, 8, 8, 1]  # the decoder's output
    with pytest.raises(KeyError, match="no graph 'nope'"):
        doc.show_graph("nope")


def test_undo_shows_the_graph_it_changes_and_leaves_the_others_alone(qtbot, make_doc):
    doc = make_doc(_two_graph_project())
    encoder_before = json.dumps(doc.project.graphs["encoder"].to_dict())
    doc.show_graph("decoder")
    ok, reason = doc.set_params("dense_1", {"units": 48})
    assert ok, reason
    added = doc.add_layer("Dropout", (0.0, 400.0))
    assert added in doc.project.graphs["decoder"].nodes
    doc.show_graph("encoder")
    doc.undo_stack.undo()  # the Dropout, in the decoder: it is shown again
    assert doc.graph_name == "decoder" and added not in doc.graph.nodes
    doc.show_graph("encoder")
    doc.undo_stack.undo()
    assert doc.graph_name == "decoder"
    assert doc.project.graphs["decoder"].node("dense_1").config["units"] == 64
    doc.undo_stack.redo()
    assert doc.project.graphs["decoder"].node("dense_1").config["units"] == 48
    # The encoder has its own dense_1; it never changed.
    assert json.dumps(doc.project.graphs["encoder"].to_dict()) == encoder_before


def test_the_window_switches_graphs_with_tabs(window, qtbot, tmp_path):  # noqa: F811
    window.open_path("gallery:gan", ask=False)
    tabs = window.graph_tabs
    assert tabs.isVisible() and tabs.names == ["generator", "discriminator"]
    assert "a 2-D point" in tabs.tabToolTip(0)
    _wait_valid(qtbot, window.doc)
    assert set(window.view.node_items) == set(window.doc.project.graphs["generator"].nodes)
    tabs.setCurrentIndex(1)  # what a click on the tab does
    assert window.doc.graph_name == "discriminator"
    assert set(window.view.node_items) == set(window.doc.project.graphs["discriminator"].nodes)
    report = _wait_valid(qtbot, window.doc)
    assert report.valid and "real_score (Dense)" in window.summary_text.toPlainText()
    # The inspector edits the graph shown.
    window.view.select(["dense_1"])
    assert window.inspector.node == "dense_1"
    ok, _ = window.doc.set_params("dense_1", {"units": 96})
    assert ok and window.doc.project.graphs["discriminator"].node("dense_1").config["units"] == 96
    assert window.doc.project.graphs["generator"].node("dense_1").config["units"] == 128
    # Keyboard: the next graph, round the end.
    window.actions["next_graph"].trigger()
    assert window.doc.graph_name == "generator" and tabs.currentIndex() == 0
    # Saved and opened again: both graphs with their own positions.
    path = tmp_path / "gan.lforge"
    assert window._save_to(path)
    window.open_path(str(path), ask=False)
    assert window.doc.graph_name == "generator" and tabs.names == ["generator", "discriminator"]
    assert window.doc.project.graphs["discriminator"].node("dense_1").config["units"] == 96
    assert set(window.doc.project.positions("discriminator")) == set(
        window.doc.project.graphs["discriminator"].nodes)
    # One graph: no tabs.
    window.open_path("gallery:mlp", ask=False)
    assert not tabs.isVisible() and tabs.names == ["model"]
