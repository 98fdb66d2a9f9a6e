"""The inspector: the selected layer's name, shape, parameter count, errors and parameters.

The form is generated from the catalog's parameter metadata (one typed editor
per config key, see :mod:`desktop.panels.param_editors`), and every change
goes through :meth:`desktop.document.Document.set_params`, so it is one undo
step and Keras gets to refuse a value it would not accept. The panel never
keeps a copy of the config: it redraws from the document's graph events
(undo, redo, edits made elsewhere) and from each validation report.

Beside every parameter that can be searched (numbers, kernel sizes, choices)
a range button marks it as a search range (:mod:`models.search`): the range's
ends appear under the value, and the mark is an undoable edit of the recipe
(:meth:`desktop.document.Document.set_search_mark`); the layer's config keeps
its exact value. A nested block can be marked to be repeated, and with no
layer selected the training settings (learning rate, batch size, epochs) can
be marked too.
"""
from __future__ import annotations

from html import escape
from typing import Any, Sequence

from PySide6.QtCore import QObject, QSignalBlocker, Qt, Signal
from PySide6.QtGui import QTextDocumentFragment
from PySide6.QtWidgets import (
    QApplication,
    QFormLayout,
    QFrame,
    QHBoxLayout,
    QLabel,
    QLineEdit,
    QScrollArea,
    QSizePolicy,
    QStackedWidget,
    QToolButton,
    QVBoxLayout,
    QWidget,
)

from desktop.panels.palette import category_title
from desktop.panels.param_editors import (
    ParamEditor,
    RangeEditor,
    error_color,
    format_number,
    is_advanced,
    make_editor,
    muted_color,
)
from models import search
from models.catalog import Catalog, load_catalog
from models.recipe import settings_without_effect

PLACEHOLDER = "Select a layer to edit its parameters"


def friendly_reason(reason: str) -> str:
    """The useful part of a refusal: Keras wraps the real cause in "Exception encountered: ..."."""
    marker = "Exception encountered:"
    if marker in reason:
        tail = reason.rsplit(marker, 1)[1].strip()
        if tail:
            return tail
    return reason


def _recover_cause(node, updates: dict, reason: str) -> str:
    """Keras's own words for a refusal whose message lost them (cut short after the wrapper).

    Keras wraps a constructor's ValueError in "could not be deserialized properly ...
    config=... Exception encountered: <the cause>"; a refusal cut to a few hundred
    characters keeps only the wrapper. When that happens, ask Keras once more and keep
    the cause. Only runs on a refusal, and only once Keras is loaded.
    """
    if "Exception encountered:" in reason or "deserialized properly" not in reason:
        return reason
    import copy

    from models import backend

    if not backend.is_loaded():
        return reason
    config = copy.deepcopy(node.config)
    config.update(copy.deepcopy(updates))
    entry = {"module": node.module, "class_name": node.class_name, "config": config,
             "registered_name": node.registered_name}
    lock = getattr(backend, "keras_lock", None)
    if lock is not None and not lock.acquire(timeout=0.05):
        return reason  # the validation thread has Keras; the short message will do
    try:
        backend.keras().saving.deserialize_keras_object(entry)
    except Exception as exc:  # the refusal we are explaining
        return " ".join(str(exc).split())
    finally:
        if lock is not None:
            lock.release()
    return reason


def format_shape(shape: Any) -> str:
    """``[None, 32]`` -> ``(None, 32)``; a list of shapes -> ``(None, 4), (None, 8)``."""
    if shape is None:
        return "?"
    if isinstance(shape, (list, tuple)) and shape and all(isinstance(s, (list, tuple)) for s in shape):
        return ", ".join(format_shape(s) for s in shape)
    items = ["None" if d is None else str(d) for d in shape]
    return "(" + ", ".join(items) + ("," if len(items) == 1 else "") + ")"


RANGE_GLYPH = "⇆"
MARK_TIP = ("Search over a range of values for this parameter: a search (Search panel) "
            "trains one model per value it tries")


class SearchMark(QObject):
    """The range button of one searchable value and, while it is marked, its :class:`RangeEditor`.

    Signals:
        sig_mark(object): the user marked (a new range), changed or unmarked (None) it.
        sig_invalid(str): a range edit was refused, with the reason.
    """

    sig_mark = Signal(object)
    sig_invalid = Signal(str)

    def __init__(self, key: str, meta: dict | None, value_of, parent: QWidget):
        super().__init__(parent)
        self.key, self.meta, self._value_of = key, dict(meta or {}), value_of
        self.entry: dict | None = None
        self.button = QToolButton(parent)
        self.button.setText(RANGE_GLYPH)
        self.button.setCheckable(True)
        self.button.setAutoRaise(True)
        self.button.setToolTip(MARK_TIP)
        self.button.setObjectName(f"search_mark_{key}")
        self.button.toggled.connect(self._on_toggled)
        self.holder = QWidget(parent)
        self._holder_layout = QVBoxLayout(self.holder)
        self._holder_layout.setContentsMargins(0, 0, 0, 0)
        self.holder.hide()
        self.range: RangeEditor | None = None
        self._read_only = False

    def set_entry(self, entry: dict | None) -> None:
        """Show the stored mark (None: unmarked); emits nothing."""
        with QSignalBlocker(self.button):
            self.button.setChecked(entry is not None)
        self.entry = entry
        if entry is None:
            self.holder.hide()
            return
        if self.range is None or self.range.kind != entry.get("type"):
            if self.range is not None:
                self.range.deleteLater()
            self.range = RangeEditor(entry, self.meta, self.holder)
            self.range.sig_changed.connect(self.sig_mark.emit)
            self.range.sig_invalid.connect(self.sig_invalid.emit)
            self._holder_layout.addWidget(self.range)
            self.range.set_read_only(self._read_only)
        else:
            self.range.set_mark(entry)
        self.holder.show()

    def set_read_only(self, read_only: bool) -> None:
        self._read_only = read_only
        self.button.setEnabled(not read_only)
        if self.range is not None:
            self.range.set_read_only(read_only)

    def _on_toggled(self, checked: bool) -> None:
        if not checked:
            self.sig_mark.emit(None)
            return
        try:
            entry = search.default_mark(self.key, self.meta, self._value_of())
        except search.SearchError as exc:
            self.sig_invalid.emit(str(exc))
            self.set_entry(None)
            return
        self.sig_mark.emit(entry)


class ParamRow(QWidget):
    """One parameter: its editor (with a range button when it can be searched) and, under it,
    its search range when marked and the reason of a refused edit (in red)."""

    def __init__(self, editor: QWidget, parent=None, mark: SearchMark | None = None):
        super().__init__(parent)
        self.editor = editor
        self.mark = mark
        self.error = QLabel(self)
        self.error.setWordWrap(True)
        self.error.setTextInteractionFlags(Qt.TextSelectableByMouse)
        self.error.setStyleSheet(f"color: {error_color(self)}")
        # Wrap within the field's width instead of widening (and wrapping) the form row.
        self.error.setSizePolicy(QSizePolicy.Ignored, QSizePolicy.Preferred)
        self.error.setMinimumWidth(80)
        self.error.hide()
        layout = QVBoxLayout(self)
        layout.setContentsMargins(0, 0, 0, 0)
        layout.setSpacing(2)
        if mark is None:
            layout.addWidget(editor)
        else:
            top = QHBoxLayout()
            top.setContentsMargins(0, 0, 0, 0)
            top.setSpacing(2)
            top.addWidget(editor, 1)
            top.addWidget(mark.button)
            layout.addLayout(top)
            layout.addWidget(mark.holder)
        layout.addWidget(self.error)

    def show_error(self, text: str) -> None:
        self.error.setText(text)
        self.error.setToolTip(text)
        self.error.show()

    def clear_error(self) -> None:
        self.error.clear()
        self.error.hide()

    @property
    def error_text(self) -> str:
        return self.error.text() if not self.error.isHidden() else ""


class _SectionHeader(QWidget):
    """The title row of a collapsible group of form rows ("Advanced")."""

    def __init__(self, title: str, expanded: bool, on_toggle, parent=None):
        super().__init__(parent)
        self.expanded = expanded
        self._on_toggle = on_toggle
        self.toggle = QToolButton(self)
        self.toggle.setText(title)
        self.toggle.setToolButtonStyle(Qt.ToolButtonTextBesideIcon)
        self.toggle.setAutoRaise(True)
        self.toggle.setToolTip("Initializers, regularizers, constraints, dtype and trainable")
        font = self.toggle.font()
        font.setBold(True)
        self.toggle.setFont(font)
        self.toggle.clicked.connect(lambda: self.set_expanded(not self.expanded))
        line = QFrame(self)
        line.setFrameShape(QFrame.HLine)
        line.setFrameShadow(QFrame.Sunken)
        layout = QVBoxLayout(self)
        layout.setContentsMargins(0, 6, 0, 0)
        layout.setSpacing(2)
        layout.addWidget(line)
        layout.addWidget(self.toggle)
        self.toggle.setArrowType(Qt.DownArrow if expanded else Qt.RightArrow)

    def set_expanded(self, expanded: bool) -> None:
        self.expanded = bool(expanded)
        self.toggle.setArrowType(Qt.DownArrow if self.expanded else Qt.RightArrow)
        self._on_toggle(self.expanded)


def _form(parent: QWidget) -> QFormLayout:
    form = QFormLayout(parent)
    form.setContentsMargins(0, 0, 0, 0)
    form.setHorizontalSpacing(8)
    form.setVerticalSpacing(6)
    form.setRowWrapPolicy(QFormLayout.WrapLongRows)
    form.setFieldGrowthPolicy(QFormLayout.AllNonFixedFieldsGrow)
    form.setLabelAlignment(Qt.AlignLeft | Qt.AlignVCenter)
    return form


class InspectorPanel(QWidget):
    """Edits the parameters of the selected layer.

    Args:
        catalog: the catalog that describes the parameters; the cached one by default.
    """

    def __init__(self, catalog: Catalog | None = None, parent=None):
        super().__init__(parent)
        self.catalog = catalog or load_catalog()
        self.doc = None
        self.node: str | None = None
        self.rows: dict[str, ParamRow] = {}
        self._read_only = False       # what the editors show: either of the two below
        self._own_read_only = False   # set_read_only()
        self._doc_read_only = False   # the document's own lock (training)
        self._advanced_expanded = False
        self._vocab = _vocabularies(self.catalog)

        self.marks: dict[str, SearchMark] = {}  # parameter -> its range button (layer shown)
        self.labels: dict[str, QLabel] = {}
        self._repeats_row: ParamRow | None = None
        self.stack = QStackedWidget(self)
        first = QWidget(self)
        self.placeholder = QLabel(PLACEHOLDER, first)
        self.placeholder.setAlignment(Qt.AlignCenter)
        self.placeholder.setWordWrap(True)
        self.placeholder.setTextFormat(Qt.RichText)
        self.placeholder.setMargin(16)
        self.placeholder.setStyleSheet(f"color: {muted_color(self)}")
        self._build_recipe_box(first)
        first_layout = QVBoxLayout(first)
        first_layout.setContentsMargins(6, 6, 6, 6)
        first_layout.addWidget(self.placeholder, 1)
        first_layout.addWidget(self.recipe_box)
        self.stack.addWidget(first)

        page = QWidget(self)
        self.stack.addWidget(page)
        self._build_header(page)
        self.scroll = QScrollArea(page)
        self.scroll.setWidgetResizable(True)
        self.scroll.setFrameShape(QFrame.NoFrame)
        self.scroll.setHorizontalScrollBarPolicy(Qt.ScrollBarAlwaysOff)
        self.form_widget: QWidget | None = None
        self.advanced: _SectionHeader | None = None
        self._advanced_rows: list[int] = []
        self._form: QFormLayout | None = None
        page_layout = QVBoxLayout(page)
        page_layout.setContentsMargins(6, 6, 2, 6)
        page_layout.setSpacing(6)
        page_layout.addWidget(self.header)
        line = QFrame(page)
        line.setFrameShape(QFrame.HLine)
        line.setFrameShadow(QFrame.Sunken)
        page_layout.addWidget(line)
        page_layout.addWidget(self.scroll, 1)

        layout = QVBoxLayout(self)
        layout.setContentsMargins(0, 0, 0, 0)
        layout.addWidget(self.stack)

    def _build_header(self, page: QWidget) -> None:
        self.header = QWidget(page)
        self.name_edit = QLineEdit(self.header)
        font = self.name_edit.font()
        font.setBold(True)
        font.setPointSizeF(font.pointSizeF() * 1.15)
        self.name_edit.setFont(font)
        self.name_edit.setToolTip("The layer's name (unique in the model); Enter renames it")
        self.name_edit.editingFinished.connect(self._on_name_edited)
        self.name_error = QLabel(self.header)
        self.name_error.setWordWrap(True)
        self.name_error.setStyleSheet(f"color: {error_color(self)}")
        self.name_error.hide()
        self.class_label = QLabel(self.header)
        self.class_label.setTextFormat(Qt.RichText)
        self.description = QLabel(self.header)
        self.description.setWordWrap(True)
        self.description.setStyleSheet(f"color: {muted_color(self)}")
        self.info = QLabel(self.header)
        self.info.setWordWrap(True)
        self.info.setTextFormat(Qt.RichText)
        self.info.setTextInteractionFlags(Qt.TextSelectableByMouse)
        self.error = QLabel(self.header)
        self.error.setWordWrap(True)
        self.error.setTextInteractionFlags(Qt.TextSelectableByMouse)
        self.error.setStyleSheet(f"color: {error_color(self)}")
        self.error.hide()
        self.lock_note = QLabel("Read-only while a training run uses the model", self.header)
        self.lock_note.setWordWrap(True)
        self.lock_note.setStyleSheet(f"color: {muted_color(self)}; font-style: italic")
        self.lock_note.hide()
        for label in (self.description, self.info, self.error, self.name_error, self.lock_note):
            label.setSizePolicy(QSizePolicy.Ignored, QSizePolicy.Preferred)
        layout = QVBoxLayout(self.header)
        layout.setContentsMargins(0, 0, 0, 0)
        layout.setSpacing(3)
        layout.addWidget(self.name_edit)
        layout.addWidget(self.name_error)
        layout.addWidget(self.class_label)
        layout.addWidget(self.description)
        layout.addWidget(self.info)
        layout.addWidget(self.error)
        layout.addWidget(self.lock_note)

    def _build_recipe_box(self, parent: QWidget) -> None:
        """Range buttons for the training settings, shown while no single layer is selected."""
        self.recipe_box = QFrame(parent)
        self.recipe_box.setFrameShape(QFrame.StyledPanel)
        title = QLabel("<b>Search over training settings</b>", self.recipe_box)
        note = QLabel(f"Mark a setting with {RANGE_GLYPH} to try several values; layer "
                      "parameters have the same button.", self.recipe_box)
        note.setWordWrap(True)
        note.setStyleSheet(f"color: {muted_color(self)}")
        note.setSizePolicy(QSizePolicy.Ignored, QSizePolicy.Preferred)
        box = QVBoxLayout(self.recipe_box)
        box.setContentsMargins(8, 6, 8, 6)
        box.addWidget(title)
        box.addWidget(note)
        form = _form(None)
        box.addLayout(form)
        self.recipe_rows: dict[str, ParamRow] = {}
        self.recipe_labels: dict[str, QLabel] = {}
        for key, meta in RECIPE_METAS.items():
            value = QLabel(self.recipe_box)
            mark = SearchMark(key, meta, lambda k=key: self._recipe_value(k), self.recipe_box)
            mark.sig_mark.connect(lambda entry, k=key: self._commit_mark(None, k, entry))
            mark.sig_invalid.connect(lambda msg, k=key: self.recipe_rows[k].show_error(msg))
            row = ParamRow(value, self.recipe_box, mark=mark)
            label = QLabel(key.replace("_", " "), self.recipe_box)
            form.addRow(label, row)
            self.recipe_rows[key] = row
            self.recipe_labels[key] = label

    def _recipe_value(self, key: str):
        return search.recipe_value(self.doc.project.recipe, key) if self.doc is not None else None

    # ------------------------------------------------------------------ public

    def set_document(self, doc) -> None:
        """Show the layers of ``doc`` (a :class:`desktop.document.Document`, or None)."""
        if self.doc is not None:
            for signal, slot in self._connections():
                try:
                    signal.disconnect(slot)
                except (RuntimeError, TypeError):
                    pass
        self.doc = doc
        if doc is not None:
            for signal, slot in self._connections():
                signal.connect(slot)
        self._doc_read_only = bool(getattr(doc, "read_only", False))
        self._apply_read_only()
        self.show_node(None)

    def _connections(self):
        pairs = [(self.doc.sig_graph_event, self._on_graph_event),
                 (self.doc.sig_validated, self._on_validated),
                 (self.doc.sig_reset, self._on_reset)]
        if hasattr(self.doc, "sig_read_only_changed"):  # the document locks itself while training
            pairs.append((self.doc.sig_read_only_changed, self._on_doc_read_only))
        if hasattr(self.doc, "sig_project_changed"):  # search marks live in the recipe
            pairs.append((self.doc.sig_project_changed, self._refresh_marks))
        return pairs

    def show_node(self, name: str | Sequence[str] | None) -> None:
        """Edit layer ``name``; ``None`` shows a hint, a list of several names their count."""
        if isinstance(name, (list, tuple, set)):
            names = list(name)
            if len(names) == 1:
                name = names[0]
            elif names:
                self._finish_pending_edit()
                self._show_placeholder(f"<b>{len(names)} layers selected</b><br><br>"
                                       "Select a single layer to edit its parameters")
                return
            else:
                name = None
        if name != self.node:
            self._finish_pending_edit()
        if name is None or self.doc is None or name not in self.doc.graph:
            self._show_placeholder(PLACEHOLDER)
            return
        if name == self.node and self.stack.currentIndex() == 1:
            self._refresh_values()
            self._refresh_header()
            return
        self.node = name
        self.name_error.hide()
        self._build_form()
        self._refresh_header()
        self.stack.setCurrentIndex(1)

    def _finish_pending_edit(self) -> None:
        """Commit what the user is typing to the layer it was typed for, before switching."""
        focus = QApplication.focusWidget()
        if focus is not None and self.node is not None and self.isAncestorOf(focus):
            focus.clearFocus()  # editingFinished commits while self.node is still that layer

    def set_read_only(self, read_only: bool) -> None:
        """Lock every editor (while a training run uses the model), or unlock them.

        The panel is also read-only while its document is (``Document.read_only``).
        """
        self._own_read_only = bool(read_only)
        self._apply_read_only()

    def _on_doc_read_only(self, read_only: bool) -> None:
        self._doc_read_only = bool(read_only)
        self._apply_read_only()

    def _apply_read_only(self) -> None:
        self._read_only = self._own_read_only or self._doc_read_only
        self.name_edit.setReadOnly(self._read_only)
        self.lock_note.setVisible(self._read_only)
        for row in self.rows.values():
            row.editor.set_read_only(self._read_only)
        for mark in list(self.marks.values()) + [r.mark for r in self.recipe_rows.values()]:
            mark.set_read_only(self._read_only)

    @property
    def read_only(self) -> bool:
        return self._read_only

    def editor(self, key: str) -> ParamEditor | None:
        """The editor of parameter ``key`` of the layer shown (None when there is none)."""
        row = self.rows.get(key)
        return row.editor if row is not None else None

    def error_text(self, key: str) -> str:
        """The refusal shown under parameter ``key`` ('' when none)."""
        row = self.rows.get(key)
        return row.error_text if row is not None else ""

    @property
    def placeholder_text(self) -> str | None:
        """The hint shown instead of a form, or None while a layer is shown."""
        if self.stack.currentIndex() != 0:
            return None
        return QTextDocumentFragment.fromHtml(self.placeholder.text()).toPlainText()

    # ------------------------------------------------------------------ building

    def _show_placeholder(self, text: str) -> None:
        self.node = None
        self.placeholder.setText(text)
        self.stack.setCurrentIndex(0)
        self._clear_form()
        self.recipe_box.setVisible(self.doc is not None)
        self._refresh_marks()

    def _clear_form(self) -> None:
        self.rows = {}
        self.marks = {}
        self.labels = {}
        self._repeats_row = None
        self.advanced = None
        self._advanced_rows = []
        self._form = None
        old = self.scroll.takeWidget()
        if old is not None:
            old.hide()
            old.deleteLater()
        self.form_widget = None

    def _build_form(self) -> None:
        self._clear_form()
        node = self.doc.graph.node(self.node)
        entry = self.catalog.get(node.class_name) or (
            self.catalog.get(node.registered_name) if node.registered_name else None)
        metas = {p["name"]: p for p in entry.params} if entry else {}
        order = [k for k in metas if k in node.config]
        order += [k for k in node.config if k not in metas and k != "name"]
        if node.is_model:
            order = [k for k in order if k in ("trainable",)]

        container = QWidget()
        form = _form(container)
        form.setContentsMargins(0, 0, 6, 0)
        advanced_keys = [k for k in order if is_advanced(k, metas.get(k), node.config[k])]
        main_keys = [k for k in order if k not in advanced_keys]
        if not main_keys:
            note = QLabel("This layer has no main parameters.")
            note.setStyleSheet(f"color: {muted_color(self)}")
            form.addRow(note)
        for key in main_keys:
            self._add_row(form, key, node.config[key], metas.get(key))
        if node.is_model:
            self._add_repeats_row(form)
        self._form = form
        self.advanced = None
        self._advanced_rows = []
        if advanced_keys:
            self.advanced = _SectionHeader(f"Advanced ({len(advanced_keys)})", self._advanced_expanded,
                                           self._on_advanced_toggled, container)
            form.addRow(self.advanced)
            for key in advanced_keys:
                self._advanced_rows.append(form.rowCount())
                self._add_row(form, key, node.config[key], metas.get(key))
            self._on_advanced_toggled(self._advanced_expanded)
        self.form_widget = container
        self.scroll.setWidget(container)
        self.scroll.verticalScrollBar().setValue(0)
        self._refresh_marks()

    def _add_row(self, form: QFormLayout, key: str, value: Any, meta: dict | None) -> None:
        editor = make_editor(key, meta, value, self._vocab)
        editor.sig_commit.connect(lambda v, k=key: self._commit(k, v))
        editor.sig_invalid.connect(lambda msg, k=key: self._on_invalid(k, msg))
        editor.set_read_only(self._read_only)
        node = self.doc.graph.node(self.node)
        mark = None
        if not node.is_model and search.searchable(key, meta, value):
            mark = self._new_mark(form.parentWidget(), key, meta, editor.value)
        row = ParamRow(editor, mark=mark)
        label = QLabel(key)
        label.setToolTip(_param_tip(key, meta))
        label.setBuddy(_focus_target(editor))
        form.addRow(label, row)
        self.rows[key] = row
        self.labels[key] = label

    def _add_repeats_row(self, form: QFormLayout) -> None:
        """A nested block can be repeated: how many times is a search range of its own."""
        key = search.REPEATS
        shown = QLabel("1 (as drawn)")
        shown.setToolTip("A search can chain this block several times, each copy with its own "
                         "weights; mark the range of repeats to try")
        mark = self._new_mark(form.parentWidget(), key, {"type": "int", "min": 1}, lambda: 1)
        row = ParamRow(shown, mark=mark)
        label = QLabel(key)
        label.setToolTip("how many times the block is chained (searched only)")
        form.addRow(label, row)
        self.labels[key] = label
        self._repeats_row = row

    def _new_mark(self, container: QWidget, key: str, meta: dict | None, value_of) -> SearchMark:
        mark = SearchMark(key, meta, value_of, container)
        mark.sig_mark.connect(lambda entry, k=key: self._commit_mark(self.node, k, entry))
        mark.sig_invalid.connect(lambda msg, k=key: self._on_mark_invalid(k, msg))
        mark.set_read_only(self._read_only)
        self.marks[key] = mark
        return mark

    # ------------------------------------------------------------------ search marks

    def _refresh_marks(self) -> None:
        """Show the document's search marks on the range buttons (after any recipe change)."""
        recipe = self.doc.project.recipe if self.doc is not None else {}
        accent = "#1565c0"
        for key, mark in self.marks.items():
            entry = search.find_mark(recipe, self.node, key) if self.node else None
            mark.set_entry(entry)
            label = self.labels.get(key)
            if label is not None:
                label.setStyleSheet(f"color: {accent}; font-weight: bold" if entry else "")
        ignored = settings_without_effect(recipe)  # a SOM's steps are not the optimizer's
        for key, row in self.recipe_rows.items():
            value = search.recipe_value(recipe, key) if self.doc is not None else None
            row.editor.setText("" if value is None else format_number(value))
            entry = search.find_mark(recipe, None, key) if self.doc is not None else None
            row.mark.set_entry(entry)
            shown = key not in ignored or entry is not None  # a mark set stays, to be taken off
            row.setVisible(shown)
            self.recipe_labels[key].setVisible(shown)

    def _commit_mark(self, node: str | None, key: str, entry: dict | None) -> None:
        if self.doc is None or self._read_only:
            self._refresh_marks()
            return
        row = self._mark_row(key) if node is not None else self.recipe_rows.get(key)
        self.doc.set_search_mark(node, key, entry)
        if row is not None:
            row.clear_error()
        self._refresh_marks()  # also when the document refused (read-only)

    def _mark_row(self, key: str) -> ParamRow | None:
        return self._repeats_row if key == search.REPEATS else self.rows.get(key)

    def _on_mark_invalid(self, key: str, message: str) -> None:
        row = self._mark_row(key)
        if row is not None:
            row.show_error(message)

    def mark_button(self, key: str, recipe: bool = False) -> QToolButton | None:
        """The range button of parameter ``key`` of the layer shown (or of a training setting)."""
        mark = (self.recipe_rows[key].mark if key in self.recipe_rows else None) if recipe \
            else self.marks.get(key)
        return mark.button if mark is not None else None

    def range_editor(self, key: str, recipe: bool = False) -> RangeEditor | None:
        """The range editor shown under ``key`` while it is marked (None when unmarked)."""
        mark = self.recipe_rows[key].mark if recipe else self.marks.get(key)
        return mark.range if mark is not None and mark.entry is not None else None

    def _on_advanced_toggled(self, expanded: bool) -> None:
        self._advanced_expanded = expanded
        for r in self._advanced_rows:
            self._form.setRowVisible(r, expanded)

    def _refresh_values(self) -> None:
        node = self.doc.graph.node(self.node)
        for key, row in self.rows.items():
            if key in node.config:
                row.editor.set_value(node.config[key])

    def _refresh_header(self) -> None:
        if self.node is None or self.doc is None or self.node not in self.doc.graph:
            return
        node = self.doc.graph.node(self.node)
        entry = self.catalog.get(node.class_name)
        if self.name_edit.text() != node.name:
            self.name_edit.setText(node.name)
        kind = category_title(entry.category) if entry else ("Model" if node.is_model else "Custom layer")
        self.class_label.setText(f"<b>{escape(node.class_name)}</b> · {escape(kind)}")
        self.description.setText(entry.description if entry else
                                 "A layer that is not in the catalog; its parameters are edited as-is.")
        self._refresh_validation()

    def _refresh_validation(self) -> None:
        report = getattr(self.doc, "report", None)
        info = report.nodes.get(self.node) if report is not None and self.node else None
        pending = bool(getattr(self.doc, "validation_pending", False))
        if info is None:
            self.info.setText("<i>Checking shapes…</i>" if pending or report is None else "")
            self.info.setVisible(bool(self.info.text()))
            self.error.hide()
            return
        parts = []
        if info.output_shape is not None:
            parts.append(f"<b>Output</b> {escape(format_shape(info.output_shape))}")
        if info.params is not None:
            text = f"<b>Parameters</b> {info.params:,}"
            if info.trainable_params is not None and info.trainable_params != info.params:
                text += f" ({info.trainable_params:,} trainable)"
            parts.append(text)
        self.info.setText(" &nbsp;·&nbsp; ".join(parts))
        self.info.setVisible(bool(parts))
        if info.error:
            self.error.setText(info.error)
            self.error.show()
        else:
            self.error.clear()
            self.error.hide()

    # ------------------------------------------------------------------ edits

    def _commit(self, key: str, value: Any) -> None:
        row = self.rows.get(key)
        if row is None or self.doc is None or self.node is None or self._read_only:
            return
        if self.node not in self.doc.graph:
            return
        ok, reason = self.doc.set_params(self.node, {key: value})
        if ok:
            row.clear_error()
            return
        node = self.doc.graph.node(self.node)
        reason = friendly_reason(_recover_cause(node, {key: value}, reason))
        row.show_error(reason or "Keras does not accept this value")
        row.editor.set_value(node.config.get(key))

    def _on_invalid(self, key: str, message: str) -> None:
        row = self.rows.get(key)
        if row is not None:
            row.show_error(message)

    def _on_name_edited(self) -> None:
        if self.doc is None or self.node is None or self._read_only:
            return
        new = self.name_edit.text().strip()
        if new == self.node:
            self.name_edit.setText(new)
            return
        ok, reason = self.doc.set_params(self.node, {"name": new})
        if ok:
            self.name_error.hide()
        else:
            self.name_error.setText(friendly_reason(reason))
            self.name_error.show()
            self.name_edit.setText(self.node)

    # ------------------------------------------------------------------ document events

    def _on_graph_event(self, event) -> None:
        if self.node is None:
            return
        kind = event.kind
        if kind == "config_changed" and event.node == self.node:
            config = self.doc.graph.node(self.node).config
            for key in event.keys:
                row = self.rows.get(key)
                if row is not None and key in config:
                    row.editor.set_value(config[key])
        elif kind == "node_renamed" and event.old_name == self.node:
            self.node = event.node
            self.name_edit.setText(event.node)
            self._refresh_validation()
        elif kind == "node_removed" and event.node == self.node:
            self.show_node(None)
        elif kind == "reset":
            self._on_reset()

    def _on_validated(self, _report) -> None:
        if self.node is not None:
            self._refresh_validation()

    def _on_reset(self) -> None:
        if self.node is not None and self.doc is not None and self.node in self.doc.graph:
            name, self.node = self.node, None
            self.show_node(name)
        else:
            self.show_node(None)


# The training settings a search can vary, described as the catalog describes parameters.
RECIPE_METAS = {"learning_rate": {"type": "float", "min": 0.0},
                "batch_size": {"type": "int", "min": 1},
                "epochs": {"type": "int", "min": 1}}


def _focus_target(editor: ParamEditor) -> QWidget:
    for attr in ("spin", "edit", "combo", "check", "button"):
        w = getattr(editor, attr, None)
        if w is not None:
            return w
    return editor


def _param_tip(key: str, meta: dict | None) -> str:
    if not meta:
        return f"{key} (not described by the catalog; edited as its stored value)"
    parts = [f"<b>{escape(key)}</b> · {escape(meta.get('type', 'any'))}"]
    if meta.get("required"):
        parts.append("required")
    if "default" in meta:
        parts.append(f"default: {escape(repr(meta['default']))}")
    lo, hi = meta.get("min"), meta.get("max")
    if lo is not None or hi is not None:
        parts.append(f"range: {'' if lo is None else lo} … {'' if hi is None else hi}")
    return "<br>".join(parts)


def _vocabularies(catalog: Catalog) -> dict[str, list]:
    """Choices per parameter type, for config keys the catalog does not describe."""
    vocab: dict[str, list] = {}
    for entry in catalog:
        for p in entry.params:
            if p.get("type") in ("activation", "initializer", "regularizer", "constraint", "dtype") \
                    and p.get("choices") and p["type"] not in vocab:
                vocab[p["type"]] = list(p["choices"])
    return vocab


__all__ = ["InspectorPanel", "PLACEHOLDER", "ParamRow", "SearchMark", "format_shape",
           "friendly_reason"]
