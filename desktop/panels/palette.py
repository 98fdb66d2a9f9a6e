"""The layer palette: every catalog layer by category, searchable, draggable onto the canvas.

The palette reads the cached catalog only (no TensorFlow), so it is ready as
soon as the window shows. A drag carries the layer's class name under
:data:`LAYER_MIME`; double-click or Enter asks for the layer to be added
(:attr:`PalettePanel.sig_add_requested`), and the window decides where.
"""
from __future__ import annotations

from html import escape

from PySide6.QtCore import QMimeData, QModelIndex, Qt, Signal
from PySide6.QtGui import QFont, QKeyEvent, QStandardItem, QStandardItemModel
from PySide6.QtWidgets import (
    QAbstractItemView,
    QLabel,
    QLineEdit,
    QSizePolicy,
    QTreeView,
    QVBoxLayout,
    QWidget,
)

from models.catalog import Catalog, CatalogEntry, load_catalog

LAYER_MIME = "application/x-layerforge-layer"

CLASS_ROLE = Qt.UserRole + 1      # class name of a layer row; None on a category row
CATEGORY_ROLE = Qt.UserRole + 2   # the category key on both kinds of row

CATEGORY_TITLES = {
    "input": "Input",
    "core": "Core",
    "convolution": "Convolution",
    "pooling": "Pooling",
    "recurrent": "Recurrent",
    "attention": "Attention",
    "normalization": "Normalization",
    "regularization": "Regularization",
    "reshaping": "Reshaping",
    "merging": "Merging",
    "activation": "Activation",
    "preprocessing": "Preprocessing",
    "layerforge": "LayerForge",
}


def category_title(category: str) -> str:
    return CATEGORY_TITLES.get(category, category.replace("_", " ").capitalize())


def describe_inputs(spec: dict) -> str:
    """The port spec of a catalog entry in words ("one tensor", "a list of 2 or more tensors")."""
    kind = spec.get("kind")
    if kind == "none":
        return "none (this layer is a model input)"
    if kind == "single":
        return "one tensor"
    if kind == "list":
        lo, hi = spec.get("min", 1), spec.get("max")
        names = spec.get("names")
        if names:
            required, optional = names[:lo], names[lo:]
            text = ", ".join(required)
            if optional:
                text += " (optional: " + ", ".join(optional) + ")"
            return f"a list: {text}"
        if hi is None:
            return f"a list of {lo} or more tensors"
        if hi == lo:
            return f"a list of {lo} tensors"
        return f"a list of {lo} to {hi} tensors"
    if kind == "positional":
        text = ", ".join(spec.get("names", []))
        extra = spec.get("kwargs", [])
        if extra:
            text += " (optional: " + ", ".join(extra) + ")"
        return text
    return "see the layer's documentation"


def layer_tooltip(entry: CatalogEntry) -> str:
    aliases = [a for a in entry.aliases if a != entry.class_name]
    lines = [
        f"<b>{escape(entry.class_name)}</b> &nbsp;<i>{escape(category_title(entry.category))}</i>",
        escape(entry.description),
        f"<b>Inputs:</b> {escape(describe_inputs(entry.inputs))}",
    ]
    if aliases:
        lines.append(f"<b>Also known as:</b> {escape(', '.join(aliases))}")
    # A <p> with a width keeps long descriptions wrapped instead of one wide line.
    return "<p style='white-space:normal; width:320px'>" + "<br>".join(lines) + "</p>"


class PaletteModel(QStandardItemModel):
    """Category rows holding layer rows; layer rows drag as :data:`LAYER_MIME`."""

    def __init__(self, catalog: Catalog, parent=None):
        super().__init__(parent)
        self.catalog = catalog
        self.totals: dict[str, int] = {}
        bold = QFont()
        bold.setBold(True)
        root = self.invisibleRootItem()
        for category, entries in catalog.categories().items():
            head = QStandardItem()
            head.setData(None, CLASS_ROLE)
            head.setData(category, CATEGORY_ROLE)
            head.setFont(bold)
            head.setFlags(Qt.ItemIsEnabled)  # a header: neither selectable nor draggable
            head.setToolTip(f"{category_title(category)} layers")
            self.totals[category] = len(entries)
            children = []
            for entry in entries:
                item = QStandardItem(entry.class_name)
                item.setData(entry.class_name, CLASS_ROLE)
                item.setData(category, CATEGORY_ROLE)
                item.setToolTip(layer_tooltip(entry))
                item.setFlags(Qt.ItemIsEnabled | Qt.ItemIsSelectable | Qt.ItemIsDragEnabled)
                children.append(item)
            head.appendRows(children)
            root.appendRow(head)
            self.set_category_count(head.row(), len(entries))

    def set_category_count(self, row: int, shown: int) -> None:
        head = self.item(row)
        category = head.data(CATEGORY_ROLE)
        total = self.totals[category]
        count = f"{total}" if shown == total else f"{shown} of {total}"
        head.setText(f"{category_title(category)}  ({count})")

    # drag and drop -------------------------------------------------------

    def mimeTypes(self):
        return [LAYER_MIME]

    def supportedDragActions(self):
        return Qt.CopyAction

    def mimeData(self, indexes):
        for index in indexes:
            class_name = index.data(CLASS_ROLE)
            if class_name:
                data = QMimeData()
                data.setData(LAYER_MIME, class_name.encode("utf-8"))
                data.setText(class_name)
                return data
        return None


class _PaletteTree(QTreeView):
    sig_activate = Signal(QModelIndex)
    sig_leave_top = Signal()

    def keyPressEvent(self, event: QKeyEvent):
        index = self.currentIndex()
        if event.key() in (Qt.Key_Return, Qt.Key_Enter) and index.isValid():
            self.sig_activate.emit(index)
            return
        if event.key() == Qt.Key_Up and index.isValid() and self._is_first_visible(index):
            self.sig_leave_top.emit()
            return
        super().keyPressEvent(event)

    def _is_first_visible(self, index: QModelIndex) -> bool:
        return not self.indexAbove(index).isValid()


class PalettePanel(QWidget):
    """Every layer of the catalog, grouped by category, with a search box.

    Signals:
        sig_add_requested(str): the class name of a layer the user asked to add
            (double-click, or Enter in the list or in the search box).

    Args:
        catalog: the catalog to show; the cached one by default.
    """

    sig_add_requested = Signal(str)

    HINT = "Drag a layer onto the canvas, or double-click it to add it."

    def __init__(self, catalog: Catalog | None = None, parent=None):
        super().__init__(parent)
        self.catalog = catalog or load_catalog()
        self._saved_expansion: dict[str, bool] | None = None

        self.search = QLineEdit(self)
        self.search.setPlaceholderText("Search layers…")
        self.search.setClearButtonEnabled(True)
        self.search.setToolTip("Filter by name, alias, category or description.\n"
                               "Down: go to the list · Enter: add the best match · Esc: clear")
        self.search.textChanged.connect(self.set_filter)
        self.search.installEventFilter(self)

        self.model = PaletteModel(self.catalog, self)
        self.tree = _PaletteTree(self)
        self.tree.setModel(self.model)
        self.tree.setHeaderHidden(True)
        self.tree.setUniformRowHeights(True)
        self.tree.setSelectionMode(QAbstractItemView.SingleSelection)
        self.tree.setEditTriggers(QAbstractItemView.NoEditTriggers)
        self.tree.setDragEnabled(True)
        self.tree.setDragDropMode(QAbstractItemView.DragOnly)
        self.tree.setDefaultDropAction(Qt.CopyAction)
        self.tree.setAnimated(False)
        self.tree.setIndentation(14)
        self.tree.expandAll()
        self.tree.doubleClicked.connect(self._on_double_clicked)
        self.tree.sig_activate.connect(self._on_enter)
        self.tree.sig_leave_top.connect(self.focus_search)
        self.tree.selectionModel().currentChanged.connect(self._on_current_changed)

        self.description = QLabel(self.HINT, self)
        self.description.setWordWrap(True)
        self.description.setTextFormat(Qt.RichText)
        self.description.setAlignment(Qt.AlignTop | Qt.AlignLeft)
        self.description.setSizePolicy(QSizePolicy.Preferred, QSizePolicy.Minimum)
        line = self.fontMetrics().lineSpacing()
        self.description.setMinimumHeight(3 * line + 6)
        self.description.setContentsMargins(4, 2, 4, 2)

        layout = QVBoxLayout(self)
        layout.setContentsMargins(4, 4, 4, 4)
        layout.setSpacing(4)
        layout.addWidget(self.search)
        layout.addWidget(self.tree, 1)
        layout.addWidget(self.description)

    # ------------------------------------------------------------ public

    def focus_search(self) -> None:
        """Put the cursor in the search box with its text selected."""
        self.search.setFocus(Qt.ShortcutFocusReason)
        self.search.selectAll()

    def set_filter(self, text: str) -> None:
        """Show only the layers matching ``text`` (what typing in the search box does)."""
        if self.search.text() != text:
            self.search.setText(text)  # comes back here through textChanged
            return
        needle = text.strip()
        if needle and self._saved_expansion is None:
            self._saved_expansion = self._expansion()
        matches = self.catalog.search(needle)
        shown = {e.class_name for e in matches}
        for row in range(self.model.rowCount()):
            head = self.model.item(row)
            visible = 0
            for child in range(head.rowCount()):
                hide = head.child(child).data(CLASS_ROLE) not in shown
                self.tree.setRowHidden(child, head.index(), hide)
                visible += not hide
            self.tree.setRowHidden(row, QModelIndex(), visible == 0)
            self.model.set_category_count(row, visible)
            if needle and visible:
                self.tree.expand(head.index())
        if not needle and self._saved_expansion is not None:
            self._restore_expansion(self._saved_expansion)
            self._saved_expansion = None
        if needle and matches:
            self._make_current(self.index_of(matches[0].class_name))
        elif needle:
            self.tree.setCurrentIndex(QModelIndex())
            self.description.setText(f"No layer matches “{escape(needle)}”.")
        else:
            self.tree.clearSelection()
            self.tree.setCurrentIndex(QModelIndex())
            self.tree.scrollToTop()
            self.description.setText(self.HINT)

    def index_of(self, class_name: str) -> QModelIndex:
        """The model index of a layer row (invalid when the catalog has no such layer)."""
        entry = self.catalog.get(class_name)
        if entry is None:
            return QModelIndex()
        for row in range(self.model.rowCount()):
            head = self.model.item(row)
            if head.data(CATEGORY_ROLE) != entry.category:
                continue
            for child in range(head.rowCount()):
                if head.child(child).data(CLASS_ROLE) == entry.class_name:
                    return head.child(child).index()
        return QModelIndex()

    def visible_layers(self) -> dict[str, list[str]]:
        """Category -> class names of the rows not filtered out (what the user can see)."""
        out: dict[str, list[str]] = {}
        for row in range(self.model.rowCount()):
            head = self.model.item(row)
            if self.tree.isRowHidden(row, QModelIndex()):
                continue
            names = [head.child(c).data(CLASS_ROLE) for c in range(head.rowCount())
                     if not self.tree.isRowHidden(c, head.index())]
            out[head.data(CATEGORY_ROLE)] = names
        return out

    # ------------------------------------------------------------ events

    def eventFilter(self, obj, event):
        if obj is self.search and event.type() == event.Type.KeyPress:
            key = event.key()
            if key == Qt.Key_Escape and self.search.text():
                self.search.clear()
                return True
            if key == Qt.Key_Down:
                self._enter_list()
                return True
            if key in (Qt.Key_Return, Qt.Key_Enter):
                index = self.tree.currentIndex()
                if index.isValid() and index.data(CLASS_ROLE):
                    self.sig_add_requested.emit(index.data(CLASS_ROLE))
                return True
        return super().eventFilter(obj, event)

    def _enter_list(self) -> None:
        index = self.tree.currentIndex()
        if not index.isValid() or self.tree.isIndexHidden(index):
            index = self._first_visible_layer()
        if index.isValid():
            self._make_current(index)
        self.tree.setFocus(Qt.OtherFocusReason)

    def _first_visible_layer(self) -> QModelIndex:
        for row in range(self.model.rowCount()):
            head = self.model.item(row)
            if self.tree.isRowHidden(row, QModelIndex()):
                continue
            for child in range(head.rowCount()):
                if not self.tree.isRowHidden(child, head.index()):
                    self.tree.expand(head.index())
                    return head.child(child).index()
        return QModelIndex()

    def _make_current(self, index: QModelIndex) -> None:
        if not index.isValid():
            return
        self.tree.setCurrentIndex(index)
        self.tree.scrollTo(index)

    def _on_double_clicked(self, index: QModelIndex) -> None:
        # A category row toggles by itself (expandsOnDoubleClick).
        class_name = index.data(CLASS_ROLE)
        if class_name:
            self.sig_add_requested.emit(class_name)

    def _on_enter(self, index: QModelIndex) -> None:
        class_name = index.data(CLASS_ROLE)
        if class_name:
            self.sig_add_requested.emit(class_name)
        else:
            self.tree.setExpanded(index, not self.tree.isExpanded(index))

    def _on_current_changed(self, current: QModelIndex, _previous: QModelIndex) -> None:
        class_name = current.data(CLASS_ROLE) if current.isValid() else None
        if class_name:
            entry = self.catalog[class_name]
            self.description.setText(
                f"<b>{escape(entry.class_name)}</b> · {escape(category_title(entry.category))}<br>"
                f"{escape(entry.description)}"
            )
        elif current.isValid():
            category = current.data(CATEGORY_ROLE)
            self.description.setText(
                f"<b>{escape(category_title(category))}</b> · "
                f"{self.model.totals.get(category, 0)} layers"
            )

    # ------------------------------------------------------------ expansion state

    def _expansion(self) -> dict[str, bool]:
        return {self.model.item(r).data(CATEGORY_ROLE): self.tree.isExpanded(self.model.item(r).index())
                for r in range(self.model.rowCount())}

    def _restore_expansion(self, state: dict[str, bool]) -> None:
        for r in range(self.model.rowCount()):
            head = self.model.item(r)
            self.tree.setExpanded(head.index(), state.get(head.data(CATEGORY_ROLE), True))


__all__ = ["CATEGORY_TITLES", "LAYER_MIME", "PaletteModel", "PalettePanel", "describe_inputs",
           "layer_tooltip"]
