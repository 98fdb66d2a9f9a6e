"""The canvas widget: zoom, pan, grid, selection, clipboard, drops and keyboard actions."""
from __future__ import annotations

import atexit
import json
import math

from PySide6.QtCore import QByteArray, QLineF, QMimeData, QPoint, QPointF, QRect, QRectF, QSize, Qt, Signal
from PySide6.QtGui import QAction, QCursor, QKeySequence, QPainter
from PySide6.QtWidgets import QApplication, QGraphicsView, QMenu, QTabBar, QToolTip

from desktop.editor.items import GRID, NODE_H, NODE_W, ORIENTATIONS, EdgeItem, NodeItem, theme
from desktop.editor.scene import GraphScene, OrientationCommand, snap

GRAPH_MIME = "application/x-layerforge-graph"
LAYER_MIME = "application/x-layerforge-layer"

MIN_ZOOM = 0.05
MAX_ZOOM = 4.0
ZOOM_STEP = 1.25
FIT_MARGIN = 40.0
# Below this zoom a card's 11 px text is under 7 px tall: a first look at a
# model never starts smaller (see initial_fit).
READABLE_ZOOM = 0.6


class GraphView(QGraphicsView):
    """The model canvas for one :class:`desktop.document.Document`.

    Args:
        doc: the document to show (None for an empty canvas; see :meth:`set_document`).
        parent: the parent widget.

    Signals:
        sig_message(str): something the user should read (a refused connection...).
        sig_selection_changed(list): the selected layer names, in graph order.
        sig_zoom_changed(float): the zoom factor.
        sig_node_activated(str): a card was double-clicked.

    Attributes:
        actions_by_name: the canvas's QActions (``delete``, ``copy``, ``cut``,
            ``paste``, ``duplicate``, ``select_all``, ``zoom_in``, ``zoom_out``,
            ``fit``, ``reset_zoom``, ``layout``, ``orientation``, ``snap``) with
            their shortcuts, active while the canvas has focus; a main window can
            add them to menus. ``orientation`` ("Top to Bottom") is checked while
            the graph flows downwards; toggling it re-lays the graph out.
    """

    sig_message = Signal(str)
    sig_selection_changed = Signal(list)
    sig_zoom_changed = Signal(float)
    sig_node_activated = Signal(str)

    def __init__(self, doc=None, parent=None):
        super().__init__(parent)
        self._scene = GraphScene(self)
        self.setScene(self._scene)
        self.setRenderHints(QPainter.RenderHint.Antialiasing | QPainter.RenderHint.TextAntialiasing)
        self.setViewportUpdateMode(QGraphicsView.ViewportUpdateMode.SmartViewportUpdate)
        self.setOptimizationFlag(QGraphicsView.OptimizationFlag.DontAdjustForAntialiasing, True)
        self.setTransformationAnchor(QGraphicsView.ViewportAnchor.NoAnchor)
        self.setResizeAnchor(QGraphicsView.ViewportAnchor.AnchorViewCenter)
        self.setDragMode(QGraphicsView.DragMode.RubberBandDrag)
        self.setRubberBandSelectionMode(Qt.ItemSelectionMode.IntersectsItemShape)
        self.setHorizontalScrollBarPolicy(Qt.ScrollBarPolicy.ScrollBarAlwaysOff)
        self.setVerticalScrollBarPolicy(Qt.ScrollBarPolicy.ScrollBarAlwaysOff)
        self.setFocusPolicy(Qt.FocusPolicy.StrongFocus)
        self.setAcceptDrops(True)
        self.viewport().setAcceptDrops(True)
        self.setFrameShape(QGraphicsView.Shape.NoFrame)
        self._pan_from: QPointF | None = None
        self._space = False
        self._rubber_band = False
        self._last_paste: tuple[str, int] = ("", 0)
        self._scene.selectionChanged.connect(self._on_selection_changed)
        self._scene.sig_note.connect(self._on_note)
        self._scene.sig_node_activated.connect(self.sig_node_activated)
        self._scene.sig_orientation_changed.connect(self._sync_orientation_action)
        self.actions_by_name: dict[str, QAction] = {}
        self._make_actions()
        self.doc = None
        self.set_document(doc)

    # ------------------------------------------------------------------ document

    @property
    def graph_scene(self) -> GraphScene:
        return self._scene

    def set_document(self, doc) -> None:
        """Show another document (or None)."""
        self.doc = doc
        self._scene.set_document(doc)
        self._sync_orientation_action()
        self._update_actions()
        if doc is not None and self._scene.nodes:
            self.centerOn(self._scene.nodes_rect().center())
        self.viewport().update()

    def rebuild(self) -> None:
        """Build every item again from the document (after a reset)."""
        self._scene.rebuild()
        self.viewport().update()

    @property
    def orientation(self) -> str:
        """``"TB"`` (inputs at the top, the default) or ``"LR"`` (inputs on the left).

        Kept in the project's view state; see :meth:`set_orientation`.
        """
        return self._scene.orientation

    def set_orientation(self, orientation: str) -> None:
        """Flow the graph the other way: re-lay it out for ``orientation``, as one undo step."""
        self.auto_layout(direction=orientation)

    @property
    def snap_to_grid(self) -> bool:
        return self._scene.snap_to_grid

    @snap_to_grid.setter
    def snap_to_grid(self, value: bool) -> None:
        self._scene.snap_to_grid = bool(value)
        act = self.actions_by_name.get("snap")
        if act is not None and act.isChecked() != bool(value):
            act.setChecked(bool(value))

    @property
    def node_items(self) -> dict[str, NodeItem]:
        return self._scene.nodes

    @property
    def edge_items(self) -> dict:
        return self._scene.edges

    # ------------------------------------------------------------------ actions

    def _make_actions(self) -> None:
        def add(key, text, slot, keys=(), tip="", checkable=False):
            act = QAction(text, self)
            act.setObjectName(f"canvas_{key}")
            act.setShortcuts([QKeySequence(k) for k in keys])
            act.setShortcutContext(Qt.ShortcutContext.WidgetWithChildrenShortcut)
            act.setStatusTip(tip or text.replace("&", ""))
            act.setCheckable(checkable)
            if checkable:
                act.toggled.connect(slot)
            else:
                act.triggered.connect(lambda _checked=False, f=slot: f())
            self.addAction(act)
            self.actions_by_name[key] = act
            return act

        S = QKeySequence.StandardKey
        add("delete", "&Delete", self.delete_selection,
            (QKeySequence(S.Delete), QKeySequence(Qt.Key.Key_Backspace)),
            "Delete the selected layers and connections")
        add("cut", "Cu&t", self.cut_selection, (QKeySequence(S.Cut),))
        add("copy", "&Copy", self.copy_selection, (QKeySequence(S.Copy),))
        add("paste", "&Paste", self.paste, (QKeySequence(S.Paste),))
        add("duplicate", "D&uplicate", self.duplicate_selection, ("Ctrl+D",))
        add("select_all", "Select &All", self.select_all, (QKeySequence(S.SelectAll),))
        add("zoom_in", "Zoom &In", self.zoom_in, (QKeySequence(S.ZoomIn), "+", "="))
        add("zoom_out", "Zoom &Out", self.zoom_out, (QKeySequence(S.ZoomOut), "-"))
        add("fit", "&Fit to Window", self.fit_to_view, ("F",))
        add("reset_zoom", "&Actual Size", self.reset_zoom, ("Ctrl+0",))
        add("layout", "Arrange &Layers", self.auto_layout, ("Ctrl+L",),
            "Arrange the layers automatically, inputs first")
        orient = add("orientation", "&Top to Bottom", self._on_orientation_toggled, (),
                     "Draw the model top to bottom (checked) or left to right, and "
                     "arrange the layers that way", checkable=True)
        orient.setChecked(True)
        snap_act = add("snap", "&Snap to Grid", self._set_snap, ("Ctrl+Shift+G",), checkable=True)
        snap_act.setChecked(True)

    def _set_snap(self, on: bool) -> None:
        self.snap_to_grid = on

    def _on_orientation_toggled(self, top_to_bottom: bool) -> None:
        wanted = "TB" if top_to_bottom else "LR"
        if wanted != self.orientation:
            self.set_orientation(wanted)
        self._sync_orientation_action()  # refused (read-only, no document): show what is

    def _sync_orientation_action(self, *_args) -> None:
        act = self.actions_by_name.get("orientation")
        if act is not None and act.isChecked() != (self.orientation == "TB"):
            act.blockSignals(True)
            act.setChecked(self.orientation == "TB")
            act.blockSignals(False)

    def _update_actions(self) -> None:
        has_doc = self.doc is not None
        selected = bool(self._scene.selectedItems()) if has_doc else False
        nodes = bool(self.selected_nodes()) if has_doc else False
        a = self.actions_by_name
        a["delete"].setEnabled(selected)
        for key in ("copy", "cut", "duplicate"):
            a[key].setEnabled(nodes)
        for key in ("paste", "select_all", "layout", "orientation"):
            a[key].setEnabled(has_doc)

    # ------------------------------------------------------------------ selection

    def selected_nodes(self) -> list[str]:
        return self._scene.selected_nodes()

    def select_all(self) -> None:
        self._scene.select(self._scene.nodes)

    def select(self, names) -> None:
        self._scene.select(names)

    def _on_selection_changed(self) -> None:
        self._update_actions()
        self.sig_selection_changed.emit(self.selected_nodes())

    # ------------------------------------------------------------------ editing

    def delete_selection(self) -> None:
        """Remove the selected connections and layers (one undo step)."""
        if self.doc is None:
            return
        names = self.selected_nodes()
        gone = set(names)
        edges = [e for e in self._scene.selected_edges() if e.src not in gone and e.dst not in gone]
        if not names and not edges:
            return
        stack = self.doc.undo_stack
        macro = bool(names) and bool(edges) or len(edges) > 1
        if macro:
            stack.beginMacro("Delete")
        try:
            for e in edges:
                self.doc.disconnect(e)
            if names:
                self.doc.remove_nodes(names)
        finally:
            if macro:
                stack.endMacro()

    def copy_selection(self) -> bool:
        """Put the selected layers (and the connections among them) on the clipboard."""
        names = self.selected_nodes()
        if self.doc is None or not names:
            return False
        payload = {
            "graph": self.doc.graph.subset(names).to_dict(),
            "positions": {n: list(self.doc.position(n)) for n in names},
        }
        text = json.dumps(payload)
        mime = QMimeData()
        mime.setData(GRAPH_MIME, QByteArray(text.encode("utf-8")))
        mime.setText(text)
        QApplication.clipboard().setMimeData(mime)
        _release_clipboard_at_exit()
        return True

    def cut_selection(self) -> None:
        if self.doc is None or not self.copy_selection():
            return
        self.doc.remove_nodes(self.selected_nodes())

    def paste(self, offset: tuple[float, float] | None = None) -> list[str]:
        """Paste layers from the clipboard (also from another window); they become the selection.

        Args:
            offset: how far from their copied positions; by default at the
                mouse when it is over the canvas, else cascaded beside the originals.
        """
        if self.doc is None:
            return []
        text = self._clipboard_text()
        if text is None:
            self.sig_message.emit("The clipboard holds no layers to paste")
            return []
        from models.graph import Graph, GraphError

        try:
            data = json.loads(text)
            part = Graph.from_dict(data["graph"])
            positions = {k: (float(v[0]), float(v[1])) for k, v in data.get("positions", {}).items()}
        except (ValueError, KeyError, TypeError, IndexError, GraphError) as exc:
            self.sig_message.emit(f"Cannot paste: the clipboard's layers are damaged ({exc})")
            return []
        if not part.nodes:
            return []
        if offset is None:
            offset = self._paste_offset(text, part, positions)
        new = self.doc.paste(part, positions, offset)
        self._scene.select(new)
        self._ensure_visible(new)
        return new

    def _clipboard_text(self) -> str | None:
        mime = QApplication.clipboard().mimeData()
        if mime is None:
            return None
        if mime.hasFormat(GRAPH_MIME):
            return bytes(mime.data(GRAPH_MIME).data()).decode("utf-8")
        if mime.hasText():
            text = mime.text().strip()
            if text.startswith("{") and '"graph"' in text:
                return text
        return None

    def _paste_offset(self, text: str, part, positions) -> tuple[float, float]:
        xs = [positions.get(n, (0.0, 0.0))[0] for n in part.nodes]
        ys = [positions.get(n, (0.0, 0.0))[1] for n in part.nodes]
        cx, cy = (min(xs) + max(xs)) / 2, (min(ys) + max(ys)) / 2
        if self.underMouse():
            at = self.mapToScene(self.mapFromGlobal(QCursor.pos()))
            return snap(at.x() - cx), snap(at.y() - cy)
        last, count = self._last_paste
        count = count + 1 if last == text else 1
        self._last_paste = (text, count)
        # Beside the originals when they are here; else where they were copied from.
        here = any(n in self.doc.graph for n in part.nodes)
        step = 2 * GRID * (count if here else count - 1)
        group = QRectF(min(xs) - NODE_W / 2, min(ys) - NODE_H / 2,
                       max(xs) - min(xs) + NODE_W, max(ys) - min(ys) + NODE_H).translated(step, step)
        visible = self.mapToScene(self.viewport().rect()).boundingRect()
        if not visible.intersects(group):
            c = visible.center()
            return snap(c.x() - cx), snap(c.y() - cy)
        return float(step), float(step)

    def duplicate_selection(self) -> list[str]:
        names = self.selected_nodes()
        if self.doc is None or not names:
            return []
        new = self.doc.duplicate(names)
        self._scene.select(new)
        return new

    def add_layer_at_center(self, class_name: str) -> str | None:
        """Add a layer in the middle of the visible canvas (the palette's double-click)."""
        return self._add_layer(class_name, self.mapToScene(self.viewport().rect().center()), avoid=True)

    def _add_layer(self, class_name: str, center: QPointF, avoid: bool = False) -> str | None:
        if self.doc is None:
            return None
        x, y = center.x(), center.y()
        if self.snap_to_grid:
            x, y = snap(x), snap(y)
        if avoid:
            # Step down until the new card does not cover another.
            for _ in range(100):
                probe = QRectF(x - NODE_W / 2, y - NODE_H / 2, NODE_W, NODE_H).adjusted(
                    -GRID / 2, -GRID / 2, GRID / 2, GRID / 2)
                if not any(it.sceneBoundingRect().intersects(probe) for it in self._scene.nodes.values()):
                    break
                y += NODE_H + GRID
        from models.catalog import CatalogError

        try:
            name = self.doc.add_layer(class_name, (x, y))
        except CatalogError as exc:
            self.sig_message.emit(str(exc))
            return None
        self._scene.select([name])
        return name

    def auto_layout(self, direction: str | None = None) -> None:
        """Arrange the layers automatically (one undo step), then show them all.

        Args:
            direction: ``"TB"`` or ``"LR"``; by default the canvas's
                orientation. Another one switches the orientation too, in the
                same undo step.
        """
        doc = self.doc
        if doc is None:
            return
        direction = direction or self.orientation  # a QAction passes checked=False
        if direction not in ORIENTATIONS:
            raise ValueError(f"direction must be one of {ORIENTATIONS}, not {direction!r}")
        if getattr(doc, "read_only", False):
            from desktop.document import READ_ONLY_REASON

            doc.sig_edit_refused.emit(READ_ONLY_REASON)
            return
        try:
            from desktop.commands import LayoutCommand
            from models.layout import layered_layout
        except ImportError:
            self.sig_message.emit("Automatic layout is not available in this build")
            return
        stack = doc.undo_stack
        if direction == self.orientation:
            stack.push(LayoutCommand(doc, layered_layout(doc.graph, direction=direction)))
        else:
            stack.beginMacro("Top to bottom layout" if direction == "TB" else "Left to right layout")
            try:
                stack.push(OrientationCommand(doc, self._scene, direction))
                stack.push(LayoutCommand(doc, layered_layout(doc.graph, direction=direction)))
            finally:
                stack.endMacro()
        self.fit_to_view()

    # ------------------------------------------------------------------ zoom

    def zoom(self) -> float:
        return self.transform().m11()

    def set_zoom(self, factor: float, anchor: QPointF | None = None) -> None:
        """Zoom to ``factor``, keeping the scene point under ``anchor`` (viewport pixels) in place."""
        factor = min(MAX_ZOOM, max(MIN_ZOOM, factor))
        current = self.zoom()
        if math.isclose(factor, current):
            return
        anchor = QPointF(self.viewport().rect().center()) if anchor is None else anchor
        before = self.mapToScene(anchor.toPoint())
        self.scale(factor / current, factor / current)
        after = self.mapFromScene(before)
        delta = after - anchor.toPoint()
        self.horizontalScrollBar().setValue(self.horizontalScrollBar().value() + delta.x())
        self.verticalScrollBar().setValue(self.verticalScrollBar().value() + delta.y())
        self.sig_zoom_changed.emit(self.zoom())

    def zoom_in(self) -> None:
        self.set_zoom(self.zoom() * ZOOM_STEP)

    def zoom_out(self) -> None:
        self.set_zoom(self.zoom() / ZOOM_STEP)

    def reset_zoom(self) -> None:
        self.set_zoom(1.0)

    def fit_to_view(self, min_scale: float | None = None) -> None:
        """Show every layer, with a margin; never zooms in past actual size.

        Args:
            min_scale: zoom out no further than this. When everything does not
                fit at this zoom, the view shows where the graph starts: its
                inputs at the top (top to bottom) or on the left (left to right).
        """
        rect = self._scene.nodes_rect()
        if rect.isNull():
            self.set_zoom(1.0)
            self.centerOn(0, 0)
            return
        vp = self.viewport().rect()
        # The margin is in pixels, whatever the zoom.
        sx = (vp.width() - 2 * FIT_MARGIN) / max(rect.width(), 1.0)
        sy = (vp.height() - 2 * FIT_MARGIN) / max(rect.height(), 1.0)
        factor = min(sx, sy, 1.0)
        if min_scale is not None:
            factor = max(factor, min(min_scale, 1.0))
        factor = max(factor, 1e-3)
        self.resetTransform()
        self.scale(factor, factor)
        center = rect.center()
        # Where the graph does not fit, its start shows: the first row (column)
        # after the margin, and across the flow the inputs, as near the middle
        # as the graph's extent allows.
        half_w = (vp.width() / 2 - FIT_MARGIN) / factor
        half_h = (vp.height() / 2 - FIT_MARGIN) / factor
        inputs = self._input_center()
        if self.orientation == "TB":
            if rect.height() / 2 > half_h:
                center.setY(rect.top() + half_h)
            if rect.width() / 2 > half_w and inputs is not None:
                center.setX(min(max(inputs.x(), rect.left() + half_w), rect.right() - half_w))
        else:
            if rect.width() / 2 > half_w:
                center.setX(rect.left() + half_w)
            if rect.height() / 2 > half_h and inputs is not None:
                center.setY(min(max(inputs.y(), rect.top() + half_h), rect.bottom() - half_h))
        self.centerOn(center)
        self.sig_zoom_changed.emit(self.zoom())

    def initial_fit(self) -> None:
        """The first look at a model just opened: readable cards, the inputs in view.

        Everything when it fits at a readable zoom (``READABLE_ZOOM``),
        else that zoom with the graph's start in view; F (``fit``) still shows
        everything.
        """
        self.fit_to_view(min_scale=READABLE_ZOOM)

    def _input_center(self) -> QPointF | None:
        """The middle of the Input layers' cards (or of the first card), in the scene."""
        graph = self.doc.graph if self.doc is not None else None
        items = self._scene.nodes
        rect = QRectF()
        if graph is not None:
            for name, node in graph.nodes.items():
                if node.is_input and name in items:
                    rect = rect.united(items[name].sceneBoundingRect())
        if rect.isNull() and items:
            rect = next(iter(items.values())).sceneBoundingRect()
        return None if rect.isNull() else rect.center()

    def _ensure_visible(self, names) -> None:
        rect = QRectF()
        for n in names:
            item = self._scene.nodes.get(n)
            if item is not None:
                rect = rect.united(item.sceneBoundingRect())
        if not rect.isNull():
            self.ensureVisible(rect, 40, 40)

    # ------------------------------------------------------------------ input

    def wheelEvent(self, event):
        mods = event.modifiers()
        pixel, angle = event.pixelDelta(), event.angleDelta()
        # A mouse wheel zooms (node-editor convention); a touchpad's two-finger
        # scroll pans unless Ctrl is held (pinch-to-zoom arrives as Ctrl+wheel).
        if mods & Qt.KeyboardModifier.ControlModifier or (pixel.isNull() and not mods & Qt.KeyboardModifier.ShiftModifier):
            steps = angle.y() / 120.0 if angle.y() else pixel.y() / 60.0
            if steps:
                self.set_zoom(self.zoom() * (1.2 ** steps), event.position())
            event.accept()
            return
        dx, dy = (pixel.x(), pixel.y()) if not pixel.isNull() else (angle.x() / 2, angle.y() / 2)
        if mods & Qt.KeyboardModifier.ShiftModifier and not dx:
            dx, dy = dy, 0
        self.horizontalScrollBar().setValue(self.horizontalScrollBar().value() - int(dx))
        self.verticalScrollBar().setValue(self.verticalScrollBar().value() - int(dy))
        event.accept()

    def mousePressEvent(self, event):
        if event.button() == Qt.MouseButton.MiddleButton or (
                event.button() == Qt.MouseButton.LeftButton and self._space):
            self._pan_from = event.position()
            self.viewport().setCursor(Qt.CursorShape.ClosedHandCursor)
            event.accept()
            return
        if event.button() == Qt.MouseButton.LeftButton and self.dragMode() == self.DragMode.RubberBandDrag \
                and self.itemAt(event.position().toPoint()) is None:
            self._rubber_band = True
            self._scene.set_edges_selectable(False)
        super().mousePressEvent(event)

    def mouseMoveEvent(self, event):
        if self._pan_from is not None:
            d = event.position() - self._pan_from
            self._pan_from = event.position()
            self.horizontalScrollBar().setValue(self.horizontalScrollBar().value() - round(d.x()))
            self.verticalScrollBar().setValue(self.verticalScrollBar().value() - round(d.y()))
            event.accept()
            return
        super().mouseMoveEvent(event)

    def mouseReleaseEvent(self, event):
        if self._pan_from is not None and event.button() in (Qt.MouseButton.MiddleButton, Qt.MouseButton.LeftButton):
            self._pan_from = None
            self.viewport().setCursor(Qt.CursorShape.OpenHandCursor if self._space else Qt.CursorShape.ArrowCursor)
            event.accept()
            return
        super().mouseReleaseEvent(event)
        if self._rubber_band:
            self._rubber_band = False
            self._scene.set_edges_selectable(True)
            event.accept()

    def keyPressEvent(self, event):
        if event.key() == Qt.Key.Key_Space and not event.isAutoRepeat():
            self._space = True
            self.setDragMode(QGraphicsView.DragMode.NoDrag)
            self.viewport().setCursor(Qt.CursorShape.OpenHandCursor)
            event.accept()
            return
        if event.key() == Qt.Key.Key_Escape:
            if self._scene._drag is not None:
                self._scene.cancel_connection()
            else:
                self._scene.clearSelection()
            event.accept()
            return
        super().keyPressEvent(event)

    def keyReleaseEvent(self, event):
        if event.key() == Qt.Key.Key_Space and not event.isAutoRepeat():
            self._space = False
            self.setDragMode(QGraphicsView.DragMode.RubberBandDrag)
            self.viewport().unsetCursor()
            event.accept()
            return
        super().keyReleaseEvent(event)

    def focusOutEvent(self, event):
        if self._space:
            self._space = False
            self.setDragMode(QGraphicsView.DragMode.RubberBandDrag)
            self.viewport().unsetCursor()
        super().focusOutEvent(event)

    def contextMenuEvent(self, event):
        if self.doc is None:
            return
        item = self._scene.node_at(self.mapToScene(event.pos()))
        hit = self.itemAt(event.pos())
        if item is not None:
            if not item.isSelected():
                self._scene.select([item.name])
        elif isinstance(hit, EdgeItem):
            if not hit.isSelected():
                self._scene.clearSelection()
                hit.setSelected(True)
        else:
            self._scene.clearSelection()
        menu = QMenu(self)
        a = self.actions_by_name
        if self._scene.selectedItems():
            for key in ("cut", "copy", "duplicate", "delete"):
                menu.addAction(a[key])
            menu.addSeparator()
        menu.addAction(a["paste"])
        menu.addAction(a["select_all"])
        menu.addSeparator()
        for key in ("fit", "layout", "orientation", "snap"):
            menu.addAction(a[key])
        menu.exec(event.globalPos())

    # ------------------------------------------------------------------ drops from the palette

    def dragEnterEvent(self, event):
        if event.mimeData().hasFormat(LAYER_MIME) and self.doc is not None:
            event.acceptProposedAction()
        else:
            event.ignore()

    def dragMoveEvent(self, event):
        if event.mimeData().hasFormat(LAYER_MIME) and self.doc is not None:
            event.acceptProposedAction()
        else:
            event.ignore()

    def dragLeaveEvent(self, event):
        event.accept()

    def dropEvent(self, event):
        mime = event.mimeData()
        if not mime.hasFormat(LAYER_MIME) or self.doc is None:
            event.ignore()
            return
        class_name = bytes(mime.data(LAYER_MIME).data()).decode("utf-8").strip()
        if self._add_layer(class_name, self.mapToScene(event.position().toPoint())):
            event.acceptProposedAction()
            self.setFocus()
        else:
            event.ignore()

    # ------------------------------------------------------------------ messages

    def _on_note(self, text: str, scene_pos: QPointF) -> None:
        self.sig_message.emit(text)
        where = self.viewport().mapToGlobal(self.mapFromScene(scene_pos))
        QToolTip.showText(where + QPoint(12, 12), _wrap(text), self.viewport(), QRect(), 4000)

    # ------------------------------------------------------------------ drawing

    def drawBackground(self, painter: QPainter, rect: QRectF) -> None:
        th = theme()
        painter.fillRect(rect, th.canvas)
        zoom = self.zoom()
        step = GRID
        while step * zoom < 9:  # keep lines at least 9 px apart
            step *= 5
        major = step * 5
        lines_minor, lines_major = [], []
        left = math.floor(rect.left() / step) * step
        top = math.floor(rect.top() / step) * step
        x = left
        while x <= rect.right():
            line = QLineF(x, rect.top(), x, rect.bottom())
            (lines_major if abs(math.remainder(x, major)) < 1e-6 else lines_minor).append(line)
            x += step
        y = top
        while y <= rect.bottom():
            line = QLineF(rect.left(), y, rect.right(), y)
            (lines_major if abs(math.remainder(y, major)) < 1e-6 else lines_minor).append(line)
            y += step
        painter.save()
        painter.setRenderHint(QPainter.RenderHint.Antialiasing, False)
        pen = painter.pen()
        pen.setCosmetic(True)
        pen.setWidth(1)
        pen.setColor(th.grid_minor)
        painter.setPen(pen)
        painter.drawLines(lines_minor)
        pen.setColor(th.grid_major)
        painter.setPen(pen)
        painter.drawLines(lines_major)
        painter.restore()

    def drawForeground(self, painter: QPainter, rect: QRectF) -> None:
        if self.doc is not None and self._scene.nodes:
            return
        th = theme()
        painter.save()
        painter.resetTransform()
        painter.setPen(th.muted)
        font = painter.font()
        font.setPointSizeF(max(10.0, font.pointSizeF() * 1.15))
        painter.setFont(font)
        painter.drawText(self.viewport().rect(), Qt.AlignmentFlag.AlignCenter,
                         "Drag layers here from the palette\n(or double-click one) to start a model")
        painter.restore()


_exit_hook_installed = False


def _release_clipboard_at_exit() -> None:
    """Before the application goes, swap our QMimeData for a Qt-made plain-text copy.

    A QMimeData made in Python and still held by the clipboard when the
    QApplication is destroyed crashes the exit (PySide6 6.12, after the
    interpreter has finalised). The text keeps the layers pasteable elsewhere.
    """
    global _exit_hook_installed
    if _exit_hook_installed:
        return
    _exit_hook_installed = True
    atexit.register(_clipboard_to_text)
    app = QApplication.instance()
    if app is not None:
        app.aboutToQuit.connect(_clipboard_to_text)


def _clipboard_to_text() -> None:
    if QApplication.instance() is None:
        return
    clipboard = QApplication.clipboard()
    mime = clipboard.mimeData()
    if mime is not None and mime.hasFormat(GRAPH_MIME):
        clipboard.setText(mime.text())


def _wrap(text: str, width: int = 70) -> str:
    import textwrap

    return "\n".join(textwrap.wrap(text, width)) or text


class GraphTabs(QTabBar):
    """One tab per graph of the document's project (a GAN's generator and discriminator...).

    Clicking a tab asks for that graph (``sig_graph_chosen``); the tabs follow
    the document when it shows another graph itself (an undo) or opens
    another project. A project with one graph shows no tabs. A tab's tooltip
    is the graph's role from the project's ``meta["graphs"]``.

    Args:
        doc: the document, for the tabs' whole life (a window keeps one and
            opens projects into it).

    Signals:
        sig_graph_chosen(str): the user picked the graph of that name.
    """

    sig_graph_chosen = Signal(str)

    def __init__(self, doc, parent=None):
        super().__init__(parent)
        self.setDocumentMode(True)
        self.setExpanding(False)
        self.setDrawBase(False)
        self.doc = doc
        self.currentChanged.connect(self._on_current)
        doc.sig_reset.connect(self.refill)
        doc.sig_graph_shown.connect(self._follow)
        self.refill()

    @property
    def names(self) -> list[str]:
        return [self.tabText(i) for i in range(self.count())]

    def tabSizeHint(self, index: int):
        # Fusion draws an unselected tab's text a little lower and clips its descenders
        # ("rbm_1" read "rbm 1"): a few pixels more height keep them.
        hint = super().tabSizeHint(index)
        return QSize(hint.width(), hint.height() + 4)

    def refill(self) -> None:
        """One tab per graph of the project, the shown one current."""
        self.blockSignals(True)
        try:
            while self.count():
                self.removeTab(0)
            project = self.doc.project
            roles = project.meta.get("graphs") or {}
            for name in project.graphs:
                i = self.addTab(name)
                self.setTabToolTip(i, f"{name}: {roles[name]}" if name in roles else name)
            self.setCurrentIndex(self.names.index(self.doc.graph_name))
        finally:
            self.blockSignals(False)
        self.setVisible(self.count() > 1)

    def _follow(self, name: str) -> None:
        if name in self.names and self.currentIndex() != self.names.index(name):
            self.blockSignals(True)
            self.setCurrentIndex(self.names.index(name))
            self.blockSignals(False)

    def _on_current(self, index: int) -> None:
        if 0 <= index < self.count():
            self.sig_graph_chosen.emit(self.tabText(index))

    def step(self, delta: int) -> None:
        """Choose the next (``delta=1``) or previous (``-1``) graph, round the end."""
        if self.count() > 1:
            self.setCurrentIndex((self.currentIndex() + delta) % self.count())


__all__ = ["GraphView", "GraphTabs", "GRAPH_MIME", "LAYER_MIME"]
