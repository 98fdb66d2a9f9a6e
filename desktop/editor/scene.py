"""The canvas scene: one item per node and edge of the document's graph.

The scene never edits the graph itself. User gestures become Document calls
(``connect``, ``move_nodes``...), which push undo commands, which change the
core graph, whose events come back here and update only the items they name.
"""
from __future__ import annotations

from PySide6.QtCore import QPointF, QRectF, Qt, QTimer, Signal
from PySide6.QtGui import QTransform
from PySide6.QtWidgets import QGraphicsItem, QGraphicsScene

from desktop.commands import GraphCommand
from desktop.editor.items import (
    GRID,
    ORIENTATIONS,
    EdgeItem,
    NodeItem,
    PortItem,
    RubberEdge,
    discard,
    reset_theme,
    structure_of,
)

SNAP_RADIUS = 22.0
SCENE_MARGIN = 4000.0


def _category_of(class_name: str) -> str | None:
    from models.catalog import CatalogError, load_catalog

    try:
        entry = load_catalog().get(class_name)
    except CatalogError:
        return None
    return entry.category if entry is not None else None


def _description_of(class_name: str) -> str:
    from models.catalog import CatalogError, load_catalog

    try:
        entry = load_catalog().get(class_name)
    except CatalogError:
        return ""
    return entry.description if entry is not None else ""


class _ConnectionDrag:
    """A connection being dragged: where it started and what it would connect."""

    def __init__(self, port: PortItem, detached=None):
        self.port = port
        self.detached = detached  # an Edge picked up from its input port
        self.rubber = RubberEdge()
        self.target: PortItem | NodeItem | None = None
        self.shown: PortItem | None = None  # the highlighted port


class GraphScene(QGraphicsScene):
    """Items for a :class:`desktop.document.Document`'s graph.

    The cards follow the orientation kept in the project's view state
    (``project.view[graph shown]["orientation"]``, ``"TB"`` or ``"LR"``). A
    project that has none yet takes the one its stored positions already
    follow (see :func:`infer_orientation`), so a project laid out left to right
    before orientations existed still reads left to right; that choice is then
    kept in the view state.

    Signals:
        sig_note(str, QPointF): a gesture was refused; the reason and where (scene).
        sig_node_activated(str): a card was double-clicked.
        sig_orientation_changed(str): the cards were laid out for another orientation.
    """

    sig_note = Signal(str, QPointF)
    sig_node_activated = Signal(str)
    sig_orientation_changed = Signal(str)

    def __init__(self, parent=None):
        super().__init__(parent)
        self.doc = None
        self.orientation = "TB"
        self.nodes: dict[str, NodeItem] = {}
        self.edges: dict = {}  # Edge -> EdgeItem
        self.snap_to_grid = True
        self.snapping_drag = False
        self._move_start: dict[str, tuple[float, float]] | None = None
        self._drag: _ConnectionDrag | None = None
        self._report = None
        self._dirty: set[str] = set()
        self._sync_timer = QTimer(self)
        self._sync_timer.setSingleShot(True)
        self._sync_timer.setInterval(0)
        self._sync_timer.timeout.connect(self._sync_dirty)
        self.setSceneRect(-SCENE_MARGIN, -SCENE_MARGIN, 2 * SCENE_MARGIN, 2 * SCENE_MARGIN)

    # ------------------------------------------------------------------ document

    def set_document(self, doc) -> None:
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
        self.rebuild()

    def _connections(self):
        d = self.doc
        return [
            (d.sig_graph_event, self._on_graph_event),
            (d.sig_position_changed, self._on_position_changed),
            (d.sig_validated, self._on_validated),
            (d.sig_reset, self.rebuild),
            (d.sig_graph_shown, self.rebuild),
        ]

    @property
    def graph(self):
        return self.doc.graph if self.doc is not None else None

    def _view_state(self) -> dict:
        return self.doc.project.view.setdefault(self.doc.graph_name, {})

    def collapsed(self) -> list:
        """The nested-model cards shown closed (the project's view state)."""
        state = self._view_state()
        if "collapsed" not in state:
            # A project shown for the first time: nested models start closed,
            # since the layout gave them the room of one card.
            state["collapsed"] = [n.name for n in self.graph.nodes.values() if n.subgraph is not None]
        return state["collapsed"]

    def _read_orientation(self) -> str:
        """The project's orientation; one that has none takes its positions' (and keeps it)."""
        state = self._view_state()
        orientation = state.get("orientation")
        if orientation not in ORIENTATIONS:
            orientation = state["orientation"] = infer_orientation(self.graph, self.doc.positions)
        return orientation

    def set_orientation(self, orientation: str) -> None:
        """Lay the cards out for ``orientation`` (``"TB"`` or ``"LR"``) and keep it in the view state.

        Only ports and connections change; the positions stay (an undoable
        re-layout is the view's business). The selection is kept.
        """
        if orientation not in ORIENTATIONS:
            raise ValueError(f"orientation must be one of {ORIENTATIONS}, not {orientation!r}")
        if self.doc is None:
            self.orientation = orientation
            return
        self._view_state()["orientation"] = orientation
        if orientation == self.orientation:
            return
        selected = self.selected_nodes()
        self.rebuild()
        if selected:
            self.select(selected)

    # ------------------------------------------------------------------ building

    def rebuild(self) -> None:
        """Drop every item and build them again from the document (after a reset)."""
        self.cancel_connection()
        self.blockSignals(True)
        try:
            self.clear()
            self.nodes.clear()
            self.edges.clear()
            self._dirty.clear()
            self._report = None
            if self.doc is None:
                return
            graph = self.graph
            old_orientation, self.orientation = self.orientation, self._read_orientation()
            self._place_unpositioned()
            self._report = self.doc.report
            outs = self._output_counts()
            collapsed = set(self.collapsed())
            for name, node in graph.nodes.items():
                self._create_node(name, node, outs.get(name, {}), name not in collapsed)
            for edge in graph.edges:
                self._create_edge(edge)
            self._mark_connected(graph.nodes)
            self._fit_scene_rect()
        finally:
            self.blockSignals(False)
        self.selectionChanged.emit()
        if self.doc is not None and self.orientation != old_orientation:
            self.sig_orientation_changed.emit(self.orientation)

    def _place_unpositioned(self) -> None:
        """Nodes without a stored position get one from the automatic layout."""
        positions = self.doc.positions
        missing = [n for n in self.graph.nodes if n not in positions]
        if not missing:
            return
        try:
            from models.layout import layered_layout

            layout = layered_layout(self.graph, direction=self.orientation)
        except Exception:  # the layout module is optional for the canvas
            layout = _fallback_layout(self.graph, self.orientation)
        for name in missing:
            x, y = layout.get(name, (0.0, 0.0))
            positions[name] = [float(x), float(y)]

    def _output_counts(self, names=None) -> dict[str, dict[int, int]]:
        """Outputs per (node, call): from validation, and at least what edges use."""
        counts: dict[str, dict[int, int]] = {}
        report = self._report
        if report is not None:
            for name, info in report.nodes.items():
                if names is not None and name not in names:
                    continue
                for c, shapes in enumerate(info.output_shapes):
                    if shapes:
                        counts.setdefault(name, {})[c] = len(shapes)
        for e in self.graph.edges:
            if names is not None and e.src not in names:
                continue
            per = counts.setdefault(e.src, {})
            per[e.src_call] = max(per.get(e.src_call, 1), e.src_index + 1)
        return counts

    def _create_node(self, name: str, node, out_counts, expanded: bool) -> NodeItem:
        if node.subgraph is not None:
            label = "Sequential" if node.subgraph.kind == "sequential" else node.class_name
            category = "model"
            tip = f"A nested {label} model of {len(node.subgraph.nodes)} layers"
        else:
            label, category = node.class_name, _category_of(node.class_name)
            tip = _description_of(node.class_name)
        item = NodeItem(name, label, category, structure_of(node, out_counts),
                        is_group=node.subgraph is not None, tooltip=tip,
                        orientation=self.orientation)
        self.addItem(item)
        item.setPos(QPointF(*self.doc.position(name)))
        if self._report is not None:
            item.set_info(self._report.nodes.get(name))
        if node.subgraph is not None and expanded:
            item.set_expanded(True, node.subgraph, _category_of)
        self.nodes[name] = item
        return item

    def _create_edge(self, edge) -> EdgeItem | None:
        src, dst = self.nodes.get(edge.src), self.nodes.get(edge.dst)
        if src is None or dst is None:
            return None
        if ("in", edge.dst_call, edge.dst_slot) not in dst.ports or \
                ("out", edge.src_call, edge.src_index) not in src.ports:
            self._sync_structure(edge.src)
            self._sync_structure(edge.dst)
        item = EdgeItem(edge, src, dst, ("out", edge.src_call, edge.src_index),
                        ("in", edge.dst_call, edge.dst_slot))
        self.addItem(item)
        src.edges.add(item)
        dst.edges.add(item)
        self.edges[edge] = item
        return item

    def _remove_edge(self, edge) -> None:
        item = self.edges.pop(edge, None)
        if item is None:
            return
        item.src.edges.discard(item)
        item.dst.edges.discard(item)
        discard(item)

    def _mark_connected(self, names) -> None:
        used: dict[str, set] = {n: set() for n in names if n in self.nodes}
        for e in self.graph.edges:
            if e.src in used:
                used[e.src].add(("out", e.src_call, e.src_index))
            if e.dst in used:
                used[e.dst].add(("in", e.dst_call, e.dst_slot))
        for name, keys in used.items():
            self.nodes[name].set_connected_ports(keys)

    def _sync_structure(self, name: str) -> None:
        """Re-lay a card's ports if its calls, slots or outputs changed."""
        item, node = self.nodes.get(name), self.graph.nodes.get(name)
        if item is None or node is None:
            return
        counts = self._output_counts({name}).get(name, {})
        item.set_structure(structure_of(node, counts))

    def _schedule_sync(self, *names) -> None:
        self._dirty.update(names)
        self._sync_timer.start()

    def _sync_dirty(self) -> None:
        names, self._dirty = set(self._dirty), set()
        if self.doc is None:
            return
        for name in names:
            self._sync_structure(name)
        self._mark_connected(names)

    def _fit_scene_rect(self) -> None:
        rect = QRectF(-SCENE_MARGIN, -SCENE_MARGIN, 2 * SCENE_MARGIN, 2 * SCENE_MARGIN)
        for item in self.nodes.values():
            rect = rect.united(item.sceneBoundingRect())
        self.setSceneRect(rect.adjusted(-SCENE_MARGIN, -SCENE_MARGIN, SCENE_MARGIN, SCENE_MARGIN)
                          if rect.width() > 2 * SCENE_MARGIN or rect.height() > 2 * SCENE_MARGIN
                          else rect)

    def _on_item_moved(self, item: NodeItem) -> None:
        r = item.sceneBoundingRect()
        if not self.sceneRect().contains(r):
            self.setSceneRect(self.sceneRect().united(
                r.adjusted(-SCENE_MARGIN, -SCENE_MARGIN, SCENE_MARGIN, SCENE_MARGIN)))

    # ------------------------------------------------------------------ document events

    def _on_graph_event(self, event) -> None:
        graph = self.graph
        kind = event.kind
        if kind == "node_added":
            node = graph.nodes.get(event.node)
            if node is None or event.node in self.nodes:
                return
            outs = self._output_counts({event.node}).get(event.node, {})
            collapsed = self.collapsed()
            if node.subgraph is not None and event.node not in collapsed:
                collapsed.append(event.node)  # a new nested model arrives closed
            self._create_node(event.node, node, outs, False)
        elif kind == "node_removed":
            item = self.nodes.pop(event.node, None)
            if item is not None:
                for edge_item in list(item.edges):
                    if edge_item.edge is not None:
                        self._remove_edge(edge_item.edge)
                discard(item)
            collapsed = self._view_state().get("collapsed")
            if collapsed and event.node in collapsed:
                collapsed.remove(event.node)
        elif kind == "edge_added":
            edge = event.edge
            # A variadic layer may have grown a slot: lay its ports out now.
            self._sync_structure(edge.dst)
            self._sync_structure(edge.src)
            if edge not in self.edges:
                self._create_edge(edge)
            self._mark_connected({edge.src, edge.dst})
        elif kind == "edge_removed":
            edge = event.edge
            self._remove_edge(edge)
            # Undo of a connection restores the slot list after this event.
            self._schedule_sync(edge.src, edge.dst)
        elif kind == "node_renamed":
            self._on_renamed(event.old_name, event.node)
        elif kind == "config_changed":
            node = graph.nodes.get(event.node)
            item = self.nodes.get(event.node)
            if node is not None and item is not None:
                self._schedule_sync(event.node)
        elif kind == "reset":
            self.rebuild()
        # outputs_changed: nothing is drawn differently.

    def _on_renamed(self, old: str, new: str) -> None:
        item = self.nodes.pop(old, None)
        if item is None:
            return
        self.nodes[new] = item
        item.rename(new)
        for edge, edge_item in list(self.edges.items()):
            if old in (edge.src, edge.dst):
                del self.edges[edge]
                renamed = type(edge)(
                    new if edge.src == old else edge.src, edge.src_call, edge.src_index,
                    new if edge.dst == old else edge.dst, edge.dst_call, edge.dst_slot,
                )
                edge_item.edge = renamed
                self.edges[renamed] = edge_item
        collapsed = self._view_state().get("collapsed")
        if collapsed and old in collapsed:
            collapsed[collapsed.index(old)] = new

    def _on_position_changed(self, name: str, x: float, y: float) -> None:
        item = self.nodes.get(name)
        if item is not None and (item.x(), item.y()) != (x, y):
            item.setPos(x, y)

    def _on_validated(self, report) -> None:
        self._report = report
        outs = self._output_counts()
        graph = self.graph
        for name, item in self.nodes.items():
            item.set_info(report.nodes.get(name))
            node = graph.nodes.get(name)
            if node is not None:
                item.set_structure(structure_of(node, outs.get(name, {})))
        if self._dirty:
            self._sync_dirty()

    # ------------------------------------------------------------------ nested models

    def toggle_collapsed(self, name: str) -> None:
        """Expand a collapsed nested-model card, or collapse an expanded one."""
        item, node = self.nodes.get(name), self.graph.nodes.get(name)
        if item is None or node is None or node.subgraph is None:
            return
        collapsed = self.collapsed()
        if name in collapsed:
            collapsed.remove(name)
            item.set_expanded(True, node.subgraph, _category_of)
        else:
            collapsed.append(name)
            item.set_expanded(False)
        self._on_item_moved(item)

    # ------------------------------------------------------------------ moving

    def mousePressEvent(self, event):
        super().mousePressEvent(event)
        grabber = self.mouseGrabberItem()
        if event.button() == Qt.MouseButton.LeftButton and isinstance(grabber, NodeItem) \
                and not grabber.read_only:
            self._move_start = {n: (it.x(), it.y()) for n, it in self.nodes.items() if it.isSelected()}
            self._move_start.setdefault(grabber.name, (grabber.x(), grabber.y()))
            self.snapping_drag = self.snap_to_grid

    def mouseReleaseEvent(self, event):
        super().mouseReleaseEvent(event)
        start, self._move_start = self._move_start, None
        self.snapping_drag = False
        if start and self.doc is not None:
            old, new = {}, {}
            for name, pos in start.items():
                item = self.nodes.get(name)
                if item is not None and (item.x(), item.y()) != pos:
                    old[name], new[name] = pos, (item.x(), item.y())
            if new:
                self.doc.move_nodes(old, new)

    # ------------------------------------------------------------------ connecting

    def begin_connection(self, port: PortItem, scene_pos: QPointF) -> None:
        """Start dragging a connection from a port."""
        self.cancel_connection()
        detached = None
        if port.kind == "in":
            detached = self.graph.edge_into_slot(port.node_item.name, port.call, port.index) \
                if not port.ghost else None
        drag = _ConnectionDrag(port, detached)
        if detached is not None and detached in self.edges:
            self.edges[detached].dimmed = True
            self.edges[detached].update()
        self.addItem(drag.rubber)
        self._drag = drag
        self.update_connection(scene_pos)

    def _fixed_end(self, drag: _ConnectionDrag) -> tuple[str, QPointF]:
        """Which end the drag holds ("out" or "in") and its scene position."""
        if drag.detached is not None:
            e = drag.detached
            src = self.nodes.get(e.src)
            if src is not None:
                return "out", src.anchor("out", e.src_call, e.src_index)
        return drag.port.kind, drag.port.scene_center()

    def _wanted_kind(self, drag: _ConnectionDrag) -> str:
        fixed, _ = self._fixed_end(drag)
        return "in" if fixed == "out" else "out"

    def _target_at(self, scene_pos: QPointF, drag: _ConnectionDrag):
        """The nearest fitting port within reach, else the card under the cursor."""
        want = self._wanted_kind(drag)
        fixed_node = drag.port.node_item if drag.detached is None else self.nodes.get(drag.detached.src)
        # Near a port, the port; but over a card's body, only the port right under
        # the cursor: a top-to-bottom card is short, and its middle is within
        # reach of the ports on its top edge, while dropping there means "its
        # first free input".
        over_card = any(isinstance(it, NodeItem) and not it.read_only and it is not fixed_node
                        for it in self.items(scene_pos))
        r = 0.0 if over_card else SNAP_RADIUS
        best, best_d = None, None
        area = QRectF(scene_pos.x() - r, scene_pos.y() - r, 2 * r, 2 * r)
        for item in (self.items(scene_pos) if over_card else self.items(area)):
            if isinstance(item, PortItem) and item.kind == want and not item.node_item.read_only \
                    and item.node_item is not fixed_node:
                d = (item.scene_center() - scene_pos).manhattanLength()
                if best_d is None or d < best_d:
                    best, best_d = item, d
        if best is not None:
            return best
        for item in self.items(scene_pos):
            node = item if isinstance(item, NodeItem) else None
            if isinstance(item, PortItem):
                node = item.node_item
            while node is not None and node.read_only:
                parent = node.parentItem()
                node = parent if isinstance(parent, NodeItem) else None
            if node is not None and node is not fixed_node:
                return node  # an Input layer here is refused on release, with the reason
        return None

    def update_connection(self, scene_pos: QPointF) -> None:
        drag = self._drag
        if drag is None:
            return
        drag.target = self._target_at(scene_pos, drag)
        # Over a card, show the port the connection would take.
        shown = drag.target if isinstance(drag.target, PortItem) else self._body_port(drag.target, drag)
        if shown is not drag.shown:
            if drag.shown is not None:
                drag.shown.set_highlighted(False)
            if shown is not None:
                shown.set_highlighted(True)
            drag.shown = shown
        end = shown.scene_center() if shown is not None else scene_pos
        fixed_kind, fixed = self._fixed_end(drag)
        if fixed_kind == "out":
            drag.rubber.set_ends(fixed, end, self.orientation)
        else:
            drag.rubber.set_ends(end, fixed, self.orientation)
        drag.rubber.set_snapped(drag.target is not None)

    def _body_port(self, card: NodeItem | None, drag: _ConnectionDrag) -> PortItem | None:
        if card is None:
            return None
        if self._wanted_kind(drag) == "out":
            return card.output_port(0, 0)
        name, call, _slot = self._input_of(card)
        node = self.graph.nodes[name]
        if node.is_input or call >= len(node.calls):
            return None
        used = {e.dst_slot for e in self.graph.edges_into(name, call)}
        free = next((i for i in range(len(node.calls[call].slots)) if i not in used),
                    len(node.calls[call].slots))
        return card.input_port(call, free)

    def cancel_connection(self) -> None:
        drag, self._drag = self._drag, None
        if drag is None:
            return
        if drag.shown is not None:
            drag.shown.set_highlighted(False)
        if drag.detached is not None and drag.detached in self.edges:
            self.edges[drag.detached].dimmed = False
            self.edges[drag.detached].update()
        if drag.rubber.scene() is self:
            self.removeItem(drag.rubber)

    def finish_connection(self, scene_pos: QPointF) -> tuple[bool, str] | None:
        """Drop a dragged connection; returns ``(ok, reason)`` or None when nothing was tried."""
        drag = self._drag
        if drag is None:
            return None
        self.update_connection(scene_pos)
        target = drag.target
        self.cancel_connection()
        doc = self.doc
        if drag.detached is not None:
            return self._finish_detached(drag, target, scene_pos)
        if target is None:
            return None
        port = drag.port
        if port.kind == "out":
            src = (port.node_item.name, port.call, port.index)
            dst = self._input_of(target)
        else:
            dst = (port.node_item.name, port.call, port.index)
            src = self._output_of(target)
        ok, reason = doc.connect(src[0], dst[0], dst[2], src_call=src[1], src_index=src[2],
                                 dst_call=dst[1])
        if not ok:
            self.sig_note.emit(reason, scene_pos)
        return ok, reason

    def _finish_detached(self, drag, target, scene_pos) -> tuple[bool, str] | None:
        doc, old = self.doc, drag.detached
        if target is None:
            doc.disconnect(old)
            return True, ""
        dst = self._input_of(target)
        if dst[0] == old.dst and dst[1] == old.dst_call and dst[2] in (old.dst_slot, None):
            return None  # dropped back where it was
        edge, reason = doc.can_connect(old.src, dst[0], dst[2], old.src_index, old.src_call, dst[1])
        if edge is None:
            self.sig_note.emit(reason, scene_pos)
            return False, reason
        doc.undo_stack.beginMacro(f"Reconnect {old.src}")
        try:
            doc.disconnect(old)
            ok, reason = doc.connect(old.src, dst[0], dst[2], src_index=old.src_index,
                                     src_call=old.src_call, dst_call=dst[1])
        finally:
            doc.undo_stack.endMacro()
        if not ok:
            doc.undo_stack.undo()
            self.sig_note.emit(reason, scene_pos)
        return ok, reason

    def _input_of(self, target) -> tuple[str, int, int | None]:
        """(node, call, slot) for a drop target; a card means its first free input."""
        if isinstance(target, PortItem):
            return target.node_item.name, target.call, target.index
        node = self.graph.nodes[target.name]
        used = {(e.dst_call, e.dst_slot) for e in self.graph.edges_into(node.name)}
        for c, call in enumerate(node.calls):
            if any((c, i) not in used for i in range(len(call.slots))) or call.variadic:
                return node.name, c, None
        return node.name, 0, None

    @staticmethod
    def _output_of(target) -> tuple[str, int, int]:
        if isinstance(target, PortItem):
            return target.node_item.name, target.call, target.index
        return target.name, 0, 0

    def set_edges_selectable(self, on: bool) -> None:
        """Edges are picked by click only; a rubber band selects cards."""
        for item in self.edges.values():
            item.setFlag(QGraphicsItem.GraphicsItemFlag.ItemIsSelectable, on)

    # ------------------------------------------------------------------ queries

    def selected_nodes(self) -> list[str]:
        """Selected cards, in graph order."""
        if self.graph is None:
            return []
        return [n for n in self.graph.nodes if n in self.nodes and self.nodes[n].isSelected()]

    def selected_edges(self) -> list:
        return [it.edge for it in self.selectedItems() if isinstance(it, EdgeItem) and it.edge is not None]

    def select(self, names) -> None:
        names = set(names)
        self.blockSignals(True)
        try:
            self.clearSelection()
            for n in names:
                if n in self.nodes:
                    self.nodes[n].setSelected(True)
        finally:
            self.blockSignals(False)
        self.selectionChanged.emit()

    def nodes_rect(self) -> QRectF:
        rect = QRectF()
        for item in self.nodes.values():
            rect = rect.united(item.sceneBoundingRect())
        for item in self.edges.values():
            rect = rect.united(item.sceneBoundingRect())
        return rect

    def node_at(self, scene_pos: QPointF) -> NodeItem | None:
        for item in self.items(scene_pos, Qt.ItemSelectionMode.IntersectsItemShape,
                               Qt.SortOrder.DescendingOrder, QTransform()):
            while item is not None and not (isinstance(item, NodeItem) and not item.read_only):
                item = item.parentItem()
            if item is not None:
                return item
        return None

    # ------------------------------------------------------------------ look

    def event(self, event):
        if event.type() in (event.Type.PaletteChange, event.Type.FontChange):
            reset_theme()
            for item in self.nodes.values():
                item.refresh_look()
            self.update()
        return super().event(event)


def snap(value: float) -> float:
    return round(value / GRID) * GRID


def infer_orientation(graph, positions) -> str:
    """``"LR"`` when the connections, placed at ``positions``, run more rightwards than downwards.

    Each axis counts its connections going forward along it less those going
    back: a layered layout moves every connection forward along its flow,
    while across the flow siblings spread both ways and cancel out. Without
    placed connections, or on a tie, top to bottom (the default).
    """
    right = down = 0
    for e in graph.edges:
        a, b = positions.get(e.src), positions.get(e.dst)
        if not a or not b:
            continue
        dx, dy = b[0] - a[0], b[1] - a[1]
        right += (dx > 0) - (dx < 0)
        down += (dy > 0) - (dy < 0)
    return "LR" if right > down else "TB"


class OrientationCommand(GraphCommand):
    """Switch a document's canvas orientation (view state, kept with the project).

    Pushed with the re-layout in one macro, so one undo brings back both the
    orientation and the positions.

    Args:
        doc: the document.
        scene: the scene showing it, told to lay its cards out again.
        orientation: ``"TB"`` or ``"LR"``.
    """

    def __init__(self, doc, scene: "GraphScene", orientation: str):
        label = "Top to bottom" if orientation == "TB" else "Left to right"
        super().__init__(doc, f"Orientation: {label}")
        self.scene, self.new = scene, orientation
        self.old = doc.project.view.get(self.graph_name, {}).get("orientation", scene.orientation)

    def _set(self, orientation: str) -> None:
        self.doc.project.view.setdefault(self.graph_name, {})["orientation"] = orientation
        try:
            if self.scene.doc is self.doc:
                self.scene.set_orientation(orientation)
        except RuntimeError:  # the canvas is gone; the view state is what lasts
            pass

    def apply(self):
        self._set(self.new)

    def revert(self):
        self._set(self.old)


def _fallback_layout(graph, orientation: str = "TB") -> dict[str, tuple[float, float]]:
    """Rows (or columns) by depth from the inputs (used when models.layout is not available)."""
    depth: dict[str, int] = {}
    for name in graph.node_order():
        preds = [p for p in graph.predecessors(name) if p in depth]
        depth[name] = 1 + max((depth[p] for p in preds), default=-1)
    rows: dict[int, int] = {}
    out = {}
    for name in graph.node_order():
        d = depth[name]
        r = rows.get(d, 0)
        rows[d] = r + 1
        out[name] = (r * 210.0, d * 90.0) if orientation == "TB" else (d * 260.0, r * 120.0)
    return out


__all__ = ["GraphScene", "OrientationCommand", "infer_orientation", "snap"]
