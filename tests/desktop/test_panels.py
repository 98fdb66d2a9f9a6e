"""The layer palette and the inspector, driven the way a user drives them."""
import json
import os
import subprocess
import sys
from collections import Counter
from pathlib import Path
from types import SimpleNamespace

import pytest
from PySide6.QtCore import Qt

from desktop.panels.inspector import PLACEHOLDER, InspectorPanel, friendly_reason
from desktop.panels.palette import CATEGORY_ROLE, CLASS_ROLE, LAYER_MIME, PalettePanel
from desktop.panels.param_editors import (
    KERAS_MODULES,
    KERAS_OBJECTS,
    BoolEditor,
    ChoiceEditor,
    DtypeEditor,
    IntEditor,
    JsonEditor,
    KerasObjectEditor,
    LayerEditor,
    NumberEditor,
    StrEditor,
    TupleEditor,
    format_number,
    keras_object,
    parse_number,
    parse_tuple,
    resolve_object_name,
    to_float32,
)
from models.catalog import CATEGORIES, load_catalog
from models.graph import Node

ROOT = Path(__file__).resolve().parents[2]


def _settle(qtbot, doc):
    """Wait for the validation of the latest edit (loads Keras the first time)."""
    if doc.validation_pending:
        with qtbot.waitSignal(doc.sig_validated, timeout=30000):
            pass
    return doc.report


def _type_into(qtbot, widget, text):
    """Replace a line edit's (or spin box's) text as a user would, then press Enter."""
    line = widget.lineEdit() if hasattr(widget, "lineEdit") else widget
    line.selectAll()
    qtbot.keyClicks(widget, text)
    qtbot.keyClick(widget, Qt.Key_Return)


def _pick(combo, text):
    """Choose an item of a combo box the way its popup does (current index, then activated)."""
    index = combo.findText(text)
    assert index >= 0, f"{text!r} is not offered: {[combo.itemText(i) for i in range(combo.count())]}"
    combo.setCurrentIndex(index)
    combo.activated.emit(index)


# --------------------------------------------------------------------------- palette


@pytest.fixture
def palette(qtbot):
    panel = PalettePanel()
    qtbot.addWidget(panel)
    panel.resize(280, 640)
    return panel


def test_palette_lists_every_catalog_layer_once_under_its_category(palette):
    catalog = load_catalog()
    shown = palette.visible_layers()
    names = [n for group in shown.values() for n in group]
    assert Counter(names) == Counter(e.class_name for e in catalog)
    for category, group in shown.items():
        assert all(catalog[n].category == category for n in group)
        assert group == sorted(group, key=str.lower)
    # Categories in the catalog's palette order, each with its count.
    assert list(shown) == [c for c in CATEGORIES if c in shown]
    heads = {palette.model.item(r).data(CATEGORY_ROLE): palette.model.item(r).text()
             for r in range(palette.model.rowCount())}
    assert heads["convolution"] == f"Convolution  ({len(shown['convolution'])})"


def test_typing_conv_filters_to_convolution_layers_and_escape_restores(palette, qtbot):
    everything = palette.visible_layers()
    qtbot.keyClicks(palette.search, "conv")
    shown = palette.visible_layers()
    names = [n for group in shown.values() for n in group]
    assert {"Conv1D", "Conv2D", "Conv3D", "SeparableConv2D", "ConvLSTM2D"} <= set(names)
    assert "Dense" not in names and "MaxPooling2D" not in names
    assert "core" not in shown and "merging" not in shown
    catalog = load_catalog()
    for name in names:  # each shown layer matches by name, alias, category or description
        e = catalog[name]
        haystack = " ".join([*e.names, e.category, e.description]).lower()
        assert "conv" in haystack
    for row in range(palette.model.rowCount()):
        head = palette.model.item(row)
        if head.data(CATEGORY_ROLE) in shown:
            assert palette.tree.isExpanded(head.index())
    assert "of" in palette.model.item(
        [palette.model.item(r).data(CATEGORY_ROLE) for r in range(palette.model.rowCount())]
        .index("pooling")).text()
    # The best match is current, so the description line shows it.
    assert palette.tree.currentIndex().data(CLASS_ROLE) == "Conv1D"
    assert "Conv1D" in palette.description.text()

    qtbot.keyClick(palette.search, Qt.Key_Escape)
    assert palette.search.text() == ""
    assert palette.visible_layers() == everything


# The offscreen platform warns on every shown top-level window; that says nothing about us.
OFFSCREEN_NOISE = pytest.mark.qt_log_ignore("does not support propagateSizeHints")


def _show_active(qtbot, widget):
    widget.show()
    widget.activateWindow()
    qtbot.waitUntil(widget.isActiveWindow, timeout=2000)  # keys and focus need an active window


@OFFSCREEN_NOISE
def test_search_box_keys_move_into_the_list_and_add(palette, qtbot):
    _show_active(qtbot, palette)
    palette.focus_search()
    qtbot.keyClicks(palette.search, "dropout")
    assert set(n for g in palette.visible_layers().values() for n in g) >= {"Dropout", "SpatialDropout2D"}
    with qtbot.waitSignal(palette.sig_add_requested, timeout=1000) as blocker:
        qtbot.keyClick(palette.search, Qt.Key_Return)  # Enter adds the best match
    assert blocker.args == ["Dropout"]
    qtbot.keyClick(palette.search, Qt.Key_Down)
    assert palette.tree.hasFocus()
    qtbot.keyClick(palette.tree, Qt.Key_Down)
    following = palette.tree.currentIndex().data(CLASS_ROLE)
    assert following and following != "Dropout"
    with qtbot.waitSignal(palette.sig_add_requested, timeout=1000) as blocker:
        qtbot.keyClick(palette.tree, Qt.Key_Return)
    assert blocker.args == [following]
    qtbot.keyClicks(palette.search, "zzzz-no-such-layer")
    assert palette.visible_layers() == {}
    assert "No layer matches" in palette.description.text()


def test_dragged_layer_carries_its_class_name(palette):
    index = palette.index_of("Conv2D")
    assert index.isValid()
    data = palette.model.mimeData([index])
    assert data.hasFormat(LAYER_MIME)
    assert bytes(data.data(LAYER_MIME)).decode("utf-8") == "Conv2D"
    assert palette.model.mimeTypes() == [LAYER_MIME]
    assert palette.model.flags(index) & Qt.ItemIsDragEnabled
    head = index.parent()
    assert head.data(CATEGORY_ROLE) == "convolution"
    assert not palette.model.flags(head) & Qt.ItemIsDragEnabled
    assert palette.model.mimeData([head]) is None
    assert palette.tree.dragEnabled()
    # Aliases find the same row.
    assert palette.index_of("Convolution2D") == index


@OFFSCREEN_NOISE
def test_double_click_asks_to_add_the_layer(palette, qtbot):
    _show_active(qtbot, palette)
    index = palette.index_of("Dense")
    palette.tree.scrollTo(index)
    pos = palette.tree.visualRect(index).center()
    with qtbot.waitSignal(palette.sig_add_requested, timeout=1000) as blocker:
        # A real double-click starts with a click; the view needs both.
        qtbot.mouseClick(palette.tree.viewport(), Qt.LeftButton, pos=pos)
        qtbot.mouseDClick(palette.tree.viewport(), Qt.LeftButton, pos=pos)
    assert blocker.args == ["Dense"]
    tip = index.data(Qt.ToolTipRole)
    assert "Fully connected" in tip and "Core" in tip and "one tensor" in tip


def test_panels_build_fast_without_tensorflow():
    code = (
        "import json, sys, time\n"
        "from PySide6.QtWidgets import QApplication\n"
        "app = QApplication([])\n"
        "from desktop.panels.palette import PalettePanel\n"
        "from desktop.panels.inspector import InspectorPanel\n"
        "t = time.perf_counter(); p = PalettePanel(); ms = (time.perf_counter() - t) * 1000\n"
        "i = InspectorPanel()\n"
        "print(json.dumps({'ms': ms, 'tf': 'tensorflow' in sys.modules, 'keras': 'keras' in sys.modules}))\n"
    )
    out = subprocess.run([sys.executable, "-c", code], cwd=ROOT, capture_output=True, text=True,
                         timeout=60, env={**os.environ, "QT_QPA_PLATFORM": "offscreen"})
    assert out.returncode == 0, out.stderr
    result = json.loads(out.stdout.strip().splitlines()[-1])
    assert not result["tf"] and not result["keras"]
    assert result["ms"] < 200, f"the palette took {result['ms']:.0f} ms to build"


# --------------------------------------------------------------------------- inspector


@pytest.fixture
def setup(make_doc, qtbot):
    """A document with Input -> Dense -> Dropout and Input(28x28x1) -> Conv2D, validated."""
    doc = make_doc()
    inp = doc.add_layer("InputLayer")
    dense = doc.add_layer("Dense")
    drop = doc.add_layer("Dropout")
    img = doc.add_layer("InputLayer")
    conv = doc.add_layer("Conv2D")
    assert doc.set_params(img, {"batch_shape": [None, 28, 28, 1]})[0]
    assert doc.connect(inp, dense)[0] and doc.connect(dense, drop)[0] and doc.connect(img, conv)[0]
    report = _settle(qtbot, doc)
    assert report.valid, report.errors()
    ins = InspectorPanel()
    qtbot.addWidget(ins)
    ins.resize(340, 720)
    ins.set_document(doc)
    return SimpleNamespace(doc=doc, ins=ins, inp=inp, dense=dense, drop=drop, conv=conv, img=img)


def test_show_node_none_shows_a_placeholder_and_several_their_count(setup):
    ins = setup.ins
    assert ins.placeholder_text == PLACEHOLDER
    ins.show_node(setup.dense)
    assert ins.placeholder_text is None and ins.node == setup.dense
    ins.show_node(None)
    assert ins.placeholder_text == PLACEHOLDER and ins.node is None and not ins.rows
    ins.show_node([setup.dense, setup.conv])
    assert ins.placeholder_text.startswith("2 layers selected")
    ins.show_node([setup.conv])
    assert ins.node == setup.conv


def test_inspector_builds_an_editor_for_every_dense_parameter(setup):
    ins, doc = setup.ins, setup.doc
    ins.show_node(setup.dense)
    config = doc.graph.node(setup.dense).config
    assert set(ins.rows) == set(config) - {"name"}
    expected = {
        "units": IntEditor, "activation": ChoiceEditor, "use_bias": BoolEditor,
        "kernel_initializer": KerasObjectEditor, "bias_initializer": KerasObjectEditor,
        "kernel_regularizer": KerasObjectEditor, "bias_regularizer": KerasObjectEditor,
        "kernel_constraint": KerasObjectEditor, "bias_constraint": KerasObjectEditor,
        "dtype": DtypeEditor, "trainable": BoolEditor, "quantization_config": JsonEditor,
    }
    assert {k: type(ins.editor(k)) for k in expected} == expected
    units = ins.editor("units").spin
    assert units.value() == 32 and units.minimum() == 1
    assert ins.editor("activation").combo.currentText() == "linear"
    assert ins.editor("kernel_initializer").combo.currentText() == "GlorotUniform"
    assert ins.editor("kernel_regularizer").combo.currentText() == "None"
    assert ins.editor("dtype").combo.currentText() == "float32"
    # Header: name, class, shape and parameter count from the validation report.
    assert ins.name_edit.text() == setup.dense
    assert "Dense" in ins.class_label.text()
    assert "(None, 32)" in ins.info.text() and "1,056" in ins.info.text()
    # Main parameters are shown; the advanced ones wait in a collapsed section.
    assert ins.rows["units"].isVisibleTo(ins)
    assert not ins.rows["kernel_initializer"].isVisibleTo(ins)
    ins.advanced.toggle.click()
    assert ins.rows["kernel_initializer"].isVisibleTo(ins)
    ins.advanced.toggle.click()
    assert not ins.rows["dtype"].isVisibleTo(ins)


def test_units_spin_box_commits_one_undo_step_and_undo_restores_it(setup, qtbot):
    ins, doc = setup.ins, setup.doc
    ins.show_node(setup.dense)
    steps = doc.undo_stack.count()
    _type_into(qtbot, ins.editor("units").spin, "64")
    assert doc.graph.node(setup.dense).config["units"] == 64
    assert doc.undo_stack.count() == steps + 1
    _settle(qtbot, doc)
    assert "(None, 64)" in ins.info.text() and "2,112" in ins.info.text()
    doc.undo_stack.undo()
    assert doc.graph.node(setup.dense).config["units"] == 32
    assert ins.editor("units").spin.value() == 32
    assert ins.editor("units").value() == 32


def test_out_of_range_rate_is_refused_and_the_old_value_stays(setup, qtbot):
    ins, doc = setup.ins, setup.doc
    ins.show_node(setup.drop)
    steps = doc.undo_stack.count()
    rate = ins.editor("rate")
    assert isinstance(rate, NumberEditor)
    _type_into(qtbot, rate.edit, "1.5")
    assert doc.graph.node(setup.drop).config["rate"] == 0.5
    assert rate.edit.text() == "0.5"
    assert "between 0.0 and 1.0" in ins.error_text("rate")
    assert doc.undo_stack.count() == steps
    _type_into(qtbot, rate.edit, "abc")
    assert "not a number" in ins.error_text("rate") and rate.edit.text() == "0.5"
    # The message stays until a valid edit of the field, which clears it.
    _type_into(qtbot, rate.edit, "2.5e-1")
    assert doc.graph.node(setup.drop).config["rate"] == 0.25
    assert ins.error_text("rate") == ""


def test_value_keras_refuses_is_refused_with_its_reason(setup, qtbot):
    ins, doc = setup.ins, setup.doc
    ins.show_node(setup.conv)
    steps = doc.undo_stack.count()
    kernel = ins.editor("kernel_size")
    _type_into(qtbot, kernel.edit, "3, 3, 3")  # a Conv2D kernel needs two sizes
    assert doc.graph.node(setup.conv).config["kernel_size"] == [3, 3]
    assert kernel.edit.text() == "3, 3"
    assert "tuple of 2 integers" in ins.error_text("kernel_size")  # Keras's own words
    assert ins.rows["kernel_size"].error.isVisibleTo(ins)
    assert doc.undo_stack.count() == steps
    # Another field's valid edit leaves that message alone.
    _type_into(qtbot, ins.editor("filters").spin, "16")
    assert ins.error_text("kernel_size")


def test_friendly_reason_keeps_what_keras_says_is_wrong():
    import keras

    entry = {"module": "keras.layers", "class_name": "Dropout",
             "config": {**load_catalog()["Dropout"].default_config, "rate": 1.5}, "registered_name": None}
    with pytest.raises(Exception) as info:
        keras.saving.deserialize_keras_object(entry)
    text = friendly_reason(" ".join(str(info.value).split()))
    assert text.startswith("Invalid value received for argument `rate`")
    assert friendly_reason("a layer named 'x' already exists") == "a layer named 'x' already exists"


def test_kernel_initializer_picker_writes_the_keras_serialized_form(setup, qtbot):
    import keras

    ins, doc = setup.ins, setup.doc
    ins.show_node(setup.dense)
    picker = ins.editor("kernel_initializer")
    _pick(picker.combo, "HeNormal")
    stored = doc.graph.node(setup.dense).config["kernel_initializer"]
    assert stored == keras.saving.serialize_keras_object(keras.initializers.get("he_normal"))
    assert stored == {"module": "keras.initializers", "class_name": "HeNormal",
                      "config": {"seed": None, "input_axes": None, "output_axes": None},
                      "registered_name": None}
    _type_into(qtbot, picker.arg_edits["seed"], "42")
    stored = doc.graph.node(setup.dense).config["kernel_initializer"]
    assert stored == keras.saving.serialize_keras_object(keras.initializers.HeNormal(seed=42))
    # A tiny L2 factor, written in scientific notation, is kept exactly.
    reg = ins.editor("kernel_regularizer")
    _pick(reg.combo, "L2")
    _type_into(qtbot, reg.arg_edits["l2"], "1e-5")
    stored = doc.graph.node(setup.dense).config["kernel_regularizer"]
    assert stored == keras.saving.serialize_keras_object(keras.regularizers.L2(1e-5))
    assert reg.arg_edits["l2"].text() == "1e-05"
    report = _settle(qtbot, doc)
    assert report.valid and report.nodes[setup.dense].error is None
    _pick(reg.combo, "None")
    assert doc.graph.node(setup.dense).config["kernel_regularizer"] is None


def test_keras_object_table_matches_what_keras_serializes():
    import keras

    catalog = load_catalog()
    for kind, table in KERAS_OBJECTS.items():
        module = getattr(keras, KERAS_MODULES[kind].split(".")[1])
        offered = {c for e in catalog for p in e.params if p["type"] == kind for c in p.get("choices", [])}
        unknown = {c for c in offered if resolve_object_name(kind, c) is None}
        assert not unknown, f"{kind}s the picker does not know: {unknown}"
        for c in offered:  # each spelling means the object Keras makes of it
            if c not in ("constant", "l1_l2", "l1l2"):
                assert keras.saving.serialize_keras_object(module.get(c)) == keras_object(kind, c), c
        for name, (class_name, config, args, f32) in table.items():
            ours = keras_object(kind, name)
            cls = getattr(module, class_name)
            assert keras.saving.serialize_keras_object(cls.from_config(ours["config"])) == ours, name
            if name not in ("constant", "l1_l2"):  # Keras cannot build these two by name
                assert keras.saving.serialize_keras_object(module.get(name)) == ours, name
            for arg in args:
                if arg == "seed":
                    continue
                config = {**ours["config"], arg: 1e-5}
                stored = keras.saving.serialize_keras_object(cls.from_config(config))["config"][arg]
                assert stored == (to_float32(1e-5) if arg in f32 else 1e-5), (name, arg)


def test_tuple_editor_writes_a_list_and_the_shape_updates(setup, qtbot):
    ins, doc = setup.ins, setup.doc
    ins.show_node(setup.conv)
    assert isinstance(ins.editor("kernel_size"), TupleEditor)
    assert "(None, 26, 26, 32)" in ins.info.text()
    _type_into(qtbot, ins.editor("kernel_size").edit, "5, 5")
    assert doc.graph.node(setup.conv).config["kernel_size"] == [5, 5]
    _settle(qtbot, doc)
    assert "(None, 24, 24, 32)" in ins.info.text()
    _type_into(qtbot, ins.editor("kernel_size").edit, "(7, 7)")
    assert doc.graph.node(setup.conv).config["kernel_size"] == [7, 7]
    _type_into(qtbot, ins.editor("strides").edit, "2")  # one number means every axis
    assert doc.graph.node(setup.conv).config["strides"] == [2, 2]
    _settle(qtbot, doc)
    assert "(None, 11, 11, 32)" in ins.info.text()


def test_rename_in_the_header_and_a_clash_is_refused(setup, qtbot):
    ins, doc = setup.ins, setup.doc
    ins.show_node(setup.dense)
    _type_into(qtbot, ins.name_edit, "hidden")
    assert "hidden" in doc.graph and setup.dense not in doc.graph
    assert ins.node == "hidden" and ins.name_edit.text() == "hidden"
    _type_into(qtbot, ins.name_edit, setup.inp)
    assert "hidden" in doc.graph
    assert ins.name_edit.text() == "hidden"
    assert "already exists" in ins.name_error.text() and ins.name_error.isVisibleTo(ins)
    doc.undo_stack.undo()  # the rename
    assert ins.node == setup.dense and ins.name_edit.text() == setup.dense


@OFFSCREEN_NOISE
def test_text_being_typed_goes_to_its_layer_when_the_selection_changes(setup, qtbot):
    ins, doc = setup.ins, setup.doc
    _show_active(qtbot, ins)
    ins.show_node(setup.dense)
    spin = ins.editor("units").spin
    spin.setFocus()
    spin.lineEdit().selectAll()
    qtbot.keyClicks(spin, "48")  # no Enter: the user clicks another layer instead
    ins.show_node(setup.conv)
    assert doc.graph.node(setup.dense).config["units"] == 48
    assert doc.graph.node(setup.conv).config["filters"] == 32
    assert ins.node == setup.conv


def test_inspector_follows_edits_made_elsewhere(setup, qtbot):
    ins, doc = setup.ins, setup.doc
    ins.show_node(setup.dense)
    assert doc.set_params(setup.dense, {"units": 7, "activation": "relu"})[0]
    assert ins.editor("units").spin.value() == 7
    assert ins.editor("activation").combo.currentText() == "relu"
    _settle(qtbot, doc)
    assert "(None, 7)" in ins.info.text()
    doc.remove_nodes([setup.dense])
    assert ins.placeholder_text == PLACEHOLDER


def test_read_only_locks_every_editor(setup, qtbot):
    ins, doc = setup.ins, setup.doc
    ins.show_node(setup.dense)
    ins.set_read_only(True)
    assert ins.editor("units").spin.isReadOnly()
    assert not ins.editor("activation").combo.isEnabled()
    assert not ins.editor("use_bias").check.isEnabled()
    assert ins.name_edit.isReadOnly()
    _type_into(qtbot, ins.editor("units").spin, "64")
    _type_into(qtbot, ins.name_edit, "renamed")
    assert doc.graph.node(setup.dense).config["units"] == 32 and "renamed" not in doc.graph
    ins.show_node(setup.conv)  # a form built while read-only is read-only too
    assert ins.editor("kernel_size").edit.isReadOnly()
    ins.set_read_only(False)
    assert not ins.editor("kernel_size").edit.isReadOnly()
    if hasattr(doc, "set_read_only"):  # the document's own lock (a training run) is followed too
        doc.set_read_only(True)
        assert ins.read_only and ins.editor("kernel_size").edit.isReadOnly()
        assert ins.lock_note.isVisibleTo(ins)
        doc.set_read_only(False)
        assert not ins.read_only and not ins.editor("kernel_size").edit.isReadOnly()


def test_keys_the_catalog_does_not_know_get_editors_by_value_type(setup):
    ins, doc = setup.ins, setup.doc
    config = {"name": "custom", "trainable": True, "alpha": 0.5, "size": [2, 2], "depth": 3,
              "mode": "fast", "kernel_initializer": keras_object("initializer", "zeros"),
              "inner": {"module": "keras.layers", "class_name": "Dense", "config": {"units": 4},
                        "registered_name": None},
              "table": {"a": [1, "b"]}}
    doc.graph.add_node(Node("custom", "MyCustomLayer", config, module="my.layers", calls=[]))
    ins.show_node("custom")
    kinds = {k: type(ins.editor(k)) for k in config if k != "name"}
    assert kinds == {"trainable": BoolEditor, "alpha": NumberEditor, "size": TupleEditor,
                     "depth": IntEditor, "mode": StrEditor, "kernel_initializer": KerasObjectEditor,
                     "inner": LayerEditor, "table": JsonEditor}
    assert "not in the catalog" in ins.description.text()
    assert ins.editor("inner").summary.text() == "Dense · units 4"


def test_nested_layer_is_summarised_and_edited_as_json(setup, qtbot, monkeypatch):
    from desktop.panels import param_editors

    doc, ins = setup.doc, setup.ins
    bi = doc.add_layer("Bidirectional")
    ins.show_node(bi)
    editor = ins.editor("layer")
    assert isinstance(editor, LayerEditor) and editor.summary.text().startswith("LSTM · units 32")
    layer = doc.graph.node(bi).config["layer"]
    changed = json.loads(json.dumps(layer))
    changed["config"]["units"] = 8
    monkeypatch.setattr(param_editors.JsonDialog, "edit", classmethod(lambda cls, p, t, v: (True, changed)))
    editor.button.click()
    assert doc.graph.node(bi).config["layer"]["config"]["units"] == 8
    assert editor.summary.text().startswith("LSTM · units 8")


def test_number_and_tuple_text():
    assert parse_number("1e-5", "float", False) == 1e-5
    assert parse_number(" 0.5 ", "float", False) == 0.5
    assert parse_number("", "float", True) is None
    assert parse_number("1e3", "int", False) == 1000
    with pytest.raises(ValueError):
        parse_number("2.5", "int", False)
    assert format_number(1e-05) == "1e-05"
    assert format_number(to_float32(0.01)) == "0.01"
    assert format_number(0.001) == "0.001"
    assert parse_tuple("3, 3", None, False) == [3, 3]
    assert parse_tuple("(3, 3)", None, False) == [3, 3]
    assert parse_tuple("[3,3]", None, False) == [3, 3]
    assert parse_tuple("4", [1, 1, 1], False) == [4, 4, 4]
    assert parse_tuple("(1, 2), (3, 4)", None, False) == [[1, 2], [3, 4]]
    assert parse_tuple("None, 4, 8", None, False) == [None, 4, 8]
    assert parse_tuple("", None, True) is None
    with pytest.raises(ValueError):
        parse_tuple("3, x", None, False)


def test_screenshots_of_both_panels(setup, palette, qtbot, tmp_path):
    ins = setup.ins
    ins.show_node(setup.dense)
    ins.advanced.set_expanded(True)
    shots = {"inspector": ins.grab(), "palette": palette.grab()}
    palette.set_filter("norm")
    shots["palette_search"] = palette.grab()
    for name, pixmap in shots.items():
        assert not pixmap.isNull() and pixmap.width() >= 200, name
        assert pixmap.save(str(tmp_path / f"{name}.png"))
    # Not blank: the form drew text and widgets, not one flat colour.
    image = shots["inspector"].toImage()
    colours = {image.pixel(x, y) for x in range(0, image.width(), 7) for y in range(0, image.height(), 7)}
    assert len(colours) > 10
