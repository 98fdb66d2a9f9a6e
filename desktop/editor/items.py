"""The canvas's graphics items: layer cards, their ports and the connections.

Items only draw; they never change the graph. A :class:`NodeItem` is told what
to show (its structure of ports, its validation result) by the scene, which in
turn listens to the :class:`desktop.document.Document`. Text is laid out once
per change into :class:`QStaticText` objects and each card is cached as a
device-coordinate pixmap, so repainting a large graph costs little.
"""
from __future__ import annotations

from dataclasses import dataclass

from PySide6.QtCore import QPointF, QRectF, Qt
from PySide6.QtGui import (
    QBrush,
    QColor,
    QFont,
    QFontDatabase,
    QFontMetricsF,
    QGuiApplication,
    QPainter,
    QPainterPath,
    QPainterPathStroker,
    QPalette,
    QPen,
    QStaticText,
)
from PySide6.QtWidgets import QGraphicsItem, QGraphicsPathItem

GRID = 20
ORIENTATIONS = ("TB", "LR")  # top to bottom (inputs above), left to right (inputs on the left)
NODE_W = 170.0         # the layout puts cards 210 apart in a row (220 apart in columns, LR)
NODE_H = 58.0          # name, type and params, shape; the layout puts rows 90 apart
ROWS_TOP = NODE_H      # where the port rows of a many-port card start (LR)
COMPACT_W = 140.0      # read-only cards inside an expanded nested model
COMPACT_H = 38.0
RADIUS = 7.0
STRIP_H = 4.0
PAD = 10.0
ROW_H = 16.0
CAPTION_H = 16.0
# Text baselines from the top of a card's text (under its labels, if any):
# 15 px apart for 13 px and 11 px type.
NAME_BASE = 19.0
TYPE_BASE = 34.0
SHAPE_BASE = 48.0
COMPACT_TYPE_BASE = 33.0
LABEL_H = 16.0         # a row of port labels along a card's top or bottom edge (TB)
PORT_GAP = 24.0        # the least distance between two ports on one edge (TB)
PORT_R = 5.0
PORT_HIT = 10.0
INNER_PAD = 16.0
INNER_GAP_X = 50.0     # between columns of inner cards (LR): room for the connections
INNER_GAP_Y = 14.0
INNER_GAP_ROWS = 36.0  # between rows of inner cards (TB): room for the connections
INNER_GAP_SIDE = 14.0  # between inner cards side by side (TB)

# Card text sizes in pixels, not points: the card's geometry is in pixels, so
# text sized in points (which follow the screen's DPI and the platform's
# default font) would overflow it on one system and float in it on another.
# Whole pixel sizes also keep glyphs on the pixel grid at zoom 1 (crisp).
NAME_PX = 13           # bold, about 9.75 pt at 96 dpi
TEXT_PX = 11           # type, params, shape and port labels, about 8 pt

# Category colours: mid-saturation hues that read on white and on dark grey.
CATEGORY_COLORS = {
    "input": "#16a34a",
    "core": "#2563eb",
    "convolution": "#7c3aed",
    "pooling": "#0891b2",
    "recurrent": "#d97706",
    "attention": "#db2777",
    "normalization": "#0d9488",
    "regularization": "#64748b",
    "reshaping": "#65a30d",
    "merging": "#c026d3",
    "activation": "#ca8a04",
    "preprocessing": "#78716c",
    "layerforge": "#4f46e5",
    "model": "#9333ea",
}
UNKNOWN_COLOR = "#6b7280"
ERROR_COLOR = QColor("#dc2626")
UPSTREAM_COLOR = QColor("#ea7a16")


def category_color(category: str | None) -> QColor:
    return QColor(CATEGORY_COLORS.get(category or "", UNKNOWN_COLOR))


def _blend(a: QColor, b: QColor, t: float) -> QColor:
    """``a`` moved a fraction ``t`` towards ``b``."""
    return QColor.fromRgbF(
        a.redF() + (b.redF() - a.redF()) * t,
        a.greenF() + (b.greenF() - a.greenF()) * t,
        a.blueF() + (b.blueF() - a.blueF()) * t,
        1.0,
    )


# --------------------------------------------------------------------------- theme


@dataclass
class Theme:
    """Colours and fonts taken from the application palette (light or dark)."""

    dark: bool
    canvas: QColor
    grid_minor: QColor
    grid_major: QColor
    card: QColor
    card_border: QColor
    shadow: QColor
    text: QColor
    muted: QColor
    highlight: QColor
    edge: QColor
    name_font: QFont
    font: QFont
    small_font: QFont
    mono_font: QFont


_theme: Theme | None = None


def theme() -> Theme:
    """The current theme (computed once per palette; see :func:`reset_theme`)."""
    global _theme
    if _theme is None:
        _theme = _make_theme()
    return _theme


def reset_theme() -> None:
    """Forget the cached theme, e.g. after the application palette changed."""
    global _theme
    _theme = None
    _FontMetrics.cache.clear()


def _make_theme() -> Theme:
    pal = QGuiApplication.palette()
    window = pal.color(QPalette.ColorRole.Window)
    base = pal.color(QPalette.ColorRole.Base)
    text = pal.color(QPalette.ColorRole.Text)
    dark = window.lightness() < 128
    if dark:
        canvas = window.darker(125)
        card = _blend(window, QColor("white"), 0.07)
    else:
        canvas = _blend(window, base, 0.45)
        card = base
    font = QFont(QGuiApplication.font())  # the user's family; sizes fit the card
    font.setPixelSize(NAME_PX - 1)
    name_font = QFont(font)
    name_font.setPixelSize(NAME_PX)
    name_font.setBold(True)
    small = QFont(font)
    small.setPixelSize(TEXT_PX)
    mono = QFontDatabase.systemFont(QFontDatabase.SystemFont.FixedFont)
    mono.setPixelSize(TEXT_PX)
    for f in (font, name_font, small, mono):
        # Full hinting snaps the small card text to the pixel grid.
        f.setHintingPreference(QFont.HintingPreference.PreferFullHinting)
    edge = QColor(text)
    edge.setAlphaF(0.55)
    shadow = QColor(0, 0, 0, 90 if dark else 40)
    return Theme(
        dark=dark,
        canvas=canvas,
        grid_minor=_blend(canvas, text, 0.05 if dark else 0.045),
        grid_major=_blend(canvas, text, 0.10 if dark else 0.095),
        card=card,
        card_border=_blend(card, text, 0.28 if dark else 0.22),
        shadow=shadow,
        text=text,
        muted=_blend(text, card, 0.42),
        highlight=pal.color(QPalette.ColorRole.Highlight),
        edge=edge,
        name_font=name_font,
        font=font,
        small_font=small,
        mono_font=mono,
    )


class _FontMetrics:
    """Font metrics per theme font, computed once (measuring text is not free)."""

    cache: dict[int, tuple[QFontMetricsF, float]] = {}

    @classmethod
    def of(cls, font: QFont) -> QFontMetricsF:
        return cls._get(font)[0]

    @classmethod
    def _get(cls, font: QFont) -> tuple[QFontMetricsF, float]:
        # Theme fonts live as long as the theme, so their id is a stable key.
        hit = cls.cache.get(id(font))
        if hit is None:
            fm = QFontMetricsF(font)
            hit = cls.cache[id(font)] = (fm, fm.maxWidth())
        return hit

    @classmethod
    def elide(cls, font: QFont, text: str, width: float,
              mode: Qt.TextElideMode = Qt.TextElideMode.ElideRight) -> str:
        fm, widest = cls._get(font)
        if len(text) * widest <= width:
            return text  # surely fits: skip measuring
        return fm.elidedText(text, mode, width)

    @classmethod
    def width(cls, font: QFont, text: str) -> float:
        return cls._get(font)[0].horizontalAdvance(text)


def _static(text: str) -> QStaticText:
    st = QStaticText(text)
    st.setTextFormat(Qt.TextFormat.PlainText)
    return st


def format_shape(shape) -> str:
    """``(None, 8, 8, 16)``, as Keras prints shapes."""
    dims = ["None" if d is None else str(d) for d in shape]
    return "(" + ", ".join(dims) + ("," if len(dims) == 1 else "") + ")"


def format_params(n: int | None) -> str:
    if n is None:
        return "? params"
    return f"{n:,} param" + ("" if n == 1 else "s")


# --------------------------------------------------------------------------- structure


@dataclass(frozen=True)
class CallPorts:
    """The ports of one call: its input slot names and how many outputs it has."""

    slots: tuple[str, ...]
    variadic: bool
    outputs: int


@dataclass(frozen=True)
class Structure:
    """Everything that decides where a card's ports are."""

    calls: tuple[CallPorts, ...]
    is_input: bool

    @property
    def compact(self) -> bool:
        """One call, at most one input and one output: ports sit mid-card, unlabelled."""
        if len(self.calls) != 1:
            return False
        c = self.calls[0]
        return len(c.slots) <= 1 and not c.variadic and c.outputs <= 1


# --------------------------------------------------------------------------- ports


class PortItem(QGraphicsItem):
    """A connection point on a card's edge.

    Args:
        node: the card it belongs to.
        kind: ``"in"`` or ``"out"``.
        call: the call index.
        index: the slot (inputs) or output index (outputs).
        ghost: an extra, dashed input of a variadic layer (Add, Concatenate):
            connecting to it grows the layer's input list.
    """

    def __init__(self, node: "NodeItem", kind: str, call: int, index: int, ghost: bool = False):
        super().__init__(node)
        self.node_item = node
        self.kind = kind
        self.call = call
        self.index = index
        self.ghost = ghost
        self.connected = False
        self._hover = False
        self.highlighted = False
        interactive = not node.read_only
        self.setAcceptHoverEvents(interactive)
        self.setAcceptedMouseButtons(Qt.MouseButton.LeftButton if interactive else Qt.MouseButton.NoButton)
        if interactive:
            self.setCursor(Qt.CursorShape.CrossCursor)
            if ghost:
                self.setToolTip("Connect here to add another input")
        self.setZValue(2)

    @property
    def key(self) -> tuple[str, int, int]:
        return (self.kind, self.call, self.index)

    _RECT = QRectF(-PORT_HIT, -PORT_HIT, 2 * PORT_HIT, 2 * PORT_HIT)
    _SHAPE = QPainterPath()
    _SHAPE.addEllipse(QPointF(0, 0), PORT_HIT, PORT_HIT)

    def boundingRect(self) -> QRectF:
        return self._RECT

    def shape(self) -> QPainterPath:
        return self._SHAPE

    def scene_center(self) -> QPointF:
        return self.mapToScene(QPointF(0, 0))

    def set_connected(self, value: bool) -> None:
        if value != self.connected:
            self.connected = value
            self.update()

    def set_highlighted(self, value: bool) -> None:
        if value != self.highlighted:
            self.highlighted = value
            self.update()

    def paint(self, painter: QPainter, option, widget=None) -> None:
        th = theme()
        color = self.node_item.color
        r = PORT_R
        if self._hover or self.highlighted:
            r = PORT_R + 2
            color = th.highlight
        painter.setRenderHint(QPainter.RenderHint.Antialiasing)
        if self.ghost:
            pen = QPen(th.muted, 1.2, Qt.PenStyle.DashLine if not self.highlighted else Qt.PenStyle.SolidLine)
            if self.highlighted:
                pen.setColor(th.highlight)
            painter.setPen(pen)
            painter.setBrush(th.card)
            painter.drawEllipse(QPointF(0, 0), r, r)
            painter.drawLine(QPointF(-2.5, 0), QPointF(2.5, 0))
            painter.drawLine(QPointF(0, -2.5), QPointF(0, 2.5))
            return
        painter.setPen(QPen(color, 1.6))
        painter.setBrush(color if (self.connected or self._hover or self.highlighted) else th.card)
        painter.drawEllipse(QPointF(0, 0), r, r)

    # Dragging from a port starts a connection; the scene runs the drag.
    def hoverEnterEvent(self, event):
        self._hover = True
        self.update()

    def hoverLeaveEvent(self, event):
        self._hover = False
        self.update()

    def mousePressEvent(self, event):
        scene = self.scene()
        if event.button() == Qt.MouseButton.LeftButton and hasattr(scene, "begin_connection"):
            scene.begin_connection(self, event.scenePos())
            event.accept()
        else:
            event.ignore()

    def mouseMoveEvent(self, event):
        scene = self.scene()
        if scene is not None and hasattr(scene, "update_connection"):
            scene.update_connection(event.scenePos())

    def mouseReleaseEvent(self, event):
        scene = self.scene()
        if scene is not None and hasattr(scene, "finish_connection"):
            scene.finish_connection(event.scenePos())


# --------------------------------------------------------------------------- cards


class _ToggleItem(QGraphicsItem):
    """The +/- box of a nested-model card."""

    SIZE = 14.0

    def __init__(self, node: "NodeItem"):
        super().__init__(node)
        self.node_item = node
        self.setAcceptedMouseButtons(Qt.MouseButton.LeftButton)
        self.setCursor(Qt.CursorShape.PointingHandCursor)
        self.setToolTip("Expand or collapse this nested model")
        self.setZValue(3)

    def boundingRect(self) -> QRectF:
        return QRectF(0, 0, self.SIZE, self.SIZE)

    def paint(self, painter, option, widget=None):
        th = theme()
        painter.setRenderHint(QPainter.RenderHint.Antialiasing)
        painter.setPen(QPen(th.muted, 1.0))
        painter.setBrush(th.card)
        painter.drawRoundedRect(self.boundingRect().adjusted(0.5, 0.5, -0.5, -0.5), 3, 3)
        painter.setPen(QPen(th.text, 1.4))
        c = self.SIZE / 2
        painter.drawLine(QPointF(3.5, c), QPointF(self.SIZE - 3.5, c))
        if not self.node_item.expanded:
            painter.drawLine(QPointF(c, 3.5), QPointF(c, self.SIZE - 3.5))

    def mousePressEvent(self, event):
        event.accept()

    def mouseReleaseEvent(self, event):
        scene = self.scene()
        if scene is not None and hasattr(scene, "toggle_collapsed") and self.boundingRect().contains(event.pos()):
            scene.toggle_collapsed(self.node_item.name)


class NodeItem(QGraphicsItem):
    """A layer card: name, type, output shape, parameter count and ports.

    The item's position is the centre of its card, as the document and the
    automatic layout store positions; a card that grows (more ports, an
    expanded nested model) grows around that centre.

    Top to bottom (``"TB"``), the inputs sit along the card's top edge and the
    outputs along its bottom edge, side by side; left to right (``"LR"``), the
    inputs sit on the left edge and the outputs on the right, one row each.

    Args:
        name: the node's name in its graph.
        class_name: the layer type shown under the name.
        category: the catalog category (for the colour strip).
        structure: the ports to show (see :class:`Structure`).
        read_only: a card inside an expanded nested model; it cannot be
            selected, moved or connected, and shows only name and type.
        is_group: a nested model's card, with a +/- toggle.
        tooltip: the text shown when nothing is wrong.
        parent: the parent item (the group card, for read-only cards).
        orientation: ``"TB"`` or ``"LR"``, the direction the graph flows in.
    """

    def __init__(
        self,
        name: str,
        class_name: str,
        category: str | None,
        structure: Structure,
        *,
        read_only: bool = False,
        is_group: bool = False,
        tooltip: str = "",
        parent: QGraphicsItem | None = None,
        orientation: str = "TB",
    ):
        super().__init__(parent)
        if orientation not in ORIENTATIONS:
            raise ValueError(f"orientation must be one of {ORIENTATIONS}, not {orientation!r}")
        self.orientation = orientation
        self.name = name
        self.class_name = class_name
        self.category = category
        self.color = category_color(category)
        self.read_only = read_only
        self.is_group = is_group
        self.expanded = False
        self.state = "unknown"  # unknown | ok | error | upstream
        self.error: str | None = None
        self.shape_text = "?"
        self.params_text = "" if structure.is_input else format_params(None)
        self.output_shapes: list[list[tuple]] = []
        self.edges: set[EdgeItem] = set()
        self.ports: dict[tuple[str, int, int], PortItem] = {}
        self.structure: Structure | None = None
        self.inner_nodes: dict[str, NodeItem] = {}
        self.inner_edges: list[EdgeItem] = []
        self._base_tooltip = tooltip
        # key -> where on its edge: y from the card's top (LR), x from its left (TB).
        self._port_at: dict[tuple[str, int, int], float] = {}
        # (side, where on that side, text or (call, output) for a shape, width or None)
        self._row_labels: list[tuple[str, float, object, float | None]] = []
        self._text_top = 0.0  # the text starts lower when port labels run along the top
        self._params_line = "type"  # the line the params are right-aligned on
        self._labels: list[tuple[QPointF, QStaticText]] = []
        self._inner_at: dict[str, QPointF] = {}
        self._base_w = COMPACT_W if read_only else NODE_W
        self._ports_h = COMPACT_H if read_only else NODE_H
        self._set_size(self._base_w, self._ports_h)
        self._toggle: _ToggleItem | None = None
        if read_only:
            self.setAcceptedMouseButtons(Qt.MouseButton.NoButton)
        else:
            self.setFlags(
                QGraphicsItem.GraphicsItemFlag.ItemIsSelectable
                | QGraphicsItem.GraphicsItemFlag.ItemIsMovable
                | QGraphicsItem.GraphicsItemFlag.ItemSendsGeometryChanges
            )
            self.setCacheMode(QGraphicsItem.CacheMode.DeviceCoordinateCache)
        if is_group and not read_only:
            self._toggle = _ToggleItem(self)
        self._base_z = 1.0
        self.setZValue(1)
        self.set_structure(structure)
        self._update_tooltip()

    # ------------------------------------------------------------ geometry

    @property
    def width(self) -> float:
        return self._w

    @property
    def height(self) -> float:
        return self._h

    def rect(self) -> QRectF:
        """The card, in item coordinates (centred on the item's position)."""
        return QRectF(self._rect)

    def boundingRect(self) -> QRectF:
        return self._brect

    def shape(self) -> QPainterPath:
        return self._shape

    def _set_size(self, w: float, h: float) -> None:
        self.prepareGeometryChange()
        self._w, self._h = w, h
        # Centred on the closed card; an open nested model grows right and down.
        self._rect = QRectF(-self._base_w / 2, -self._ports_h / 2, w, h)
        # Room for the drop shadow and the selection ring.
        self._brect = self._rect.adjusted(-3, -3, 3, 4)
        self._shape = QPainterPath()
        self._shape.addRoundedRect(self._rect, RADIUS, RADIUS)

    def anchor(self, kind: str, call: int, index: int) -> QPointF:
        """Scene position where an edge attaches to a port (or the card's side)."""
        port = self.ports.get((kind, call, index))
        if port is not None:
            return port.scene_center()
        r = self.rect()
        if self.orientation == "TB":
            return self.mapToScene(QPointF(r.left() + self._base_w / 2,
                                           r.top() if kind == "in" else r.bottom()))
        return self.mapToScene(QPointF(r.left() if kind == "in" else r.right(), r.top() + NODE_H / 2))

    def input_port(self, call: int = 0, slot: int = 0) -> PortItem | None:
        return self.ports.get(("in", call, slot))

    def output_port(self, call: int = 0, index: int = 0) -> PortItem | None:
        return self.ports.get(("out", call, index))

    # ------------------------------------------------------------ content

    def _make_texts(self) -> None:
        th = theme()
        text_w = self._base_w - 2 * PAD
        name_w = text_w - (_ToggleItem.SIZE + 4 if self.is_group else 0)
        if self.state in ("error", "upstream"):
            name_w -= 16  # the warning badge
        params = "" if self.read_only else self.params_text
        self._params_w = _FontMetrics.width(th.small_font, params) if params else 0.0
        self._params_st = _static(params)
        beside = self._params_w + 5 if params else 0.0  # room the params take on a line
        # The params go right of the type. When both do not fit (BatchNormalization,
        # 128 params), right of the shape, or of a short name, if either leaves room;
        # else the type gives way.
        room = {
            "type": text_w - _FontMetrics.width(th.small_font, self.class_name),
            "shape": text_w - _FontMetrics.width(th.mono_font, self.shape_text),
            "name": name_w - _FontMetrics.width(th.name_font, self.name)
            if not (self.is_group or self.state in ("error", "upstream")) else -1.0,
        }
        self._params_line = next((line for line in ("type", "shape", "name")
                                  if beside <= room[line]), "type")

        def width(line: str, full: float) -> float:
            return full - (beside if line == self._params_line else 0.0)

        self._name_st = _static(_FontMetrics.elide(th.name_font, self.name, width("name", name_w)))
        self._type_st = _static(_FontMetrics.elide(th.small_font, self.class_name,
                                                   width("type", text_w)))
        # A long shape loses its middle dimensions, never its ends (the tooltip has it all).
        self._shape_st = _static(_FontMetrics.elide(th.mono_font, self.shape_text,
                                                    width("shape", text_w),
                                                    Qt.TextElideMode.ElideMiddle))

    def rename(self, name: str) -> None:
        self.name = name
        self._make_texts()
        self._update_tooltip()
        self.update()

    def refresh_look(self) -> None:
        """Lay the text out again (after a palette or font change)."""
        self._make_texts()
        self._layout_labels()
        self.update()

    def set_info(self, info) -> None:
        """Show a validation result (:class:`models.validate.NodeInfo` or None)."""
        if info is None:
            state, error, shapes, params = "unknown", None, [], None
        else:
            error = info.error
            state = ("upstream" if info.upstream_error else "error") if error else "ok"
            shapes, params = info.output_shapes, info.params
        shape_text = "?"
        if shapes and shapes[0]:
            shape_text = ", ".join(format_shape(s) for s in shapes[0])
        params_text = "" if self.structure is not None and self.structure.is_input else format_params(params)
        shapes = [list(c) for c in shapes]
        if (state, error, shape_text, params_text, shapes) == (
                self.state, self.error, self.shape_text, self.params_text, self.output_shapes):
            return
        self.state, self.error = state, error
        self.shape_text, self.params_text = shape_text, params_text
        self.output_shapes = shapes
        self._make_texts()
        self._layout_labels()
        self._update_tooltip()
        self.update()

    def _update_tooltip(self) -> None:
        head = f"<b>{_esc(self.name)}</b> &nbsp;{_esc(self.class_name)}"
        if self.error and self.state == "error":
            body = f"<p style='color:{ERROR_COLOR.name()}'><b>Error:</b> {_esc(self.error)}</p>"
        elif self.error:
            body = (f"<p style='color:{UPSTREAM_COLOR.name()}'><b>Waiting on an input:</b> "
                    f"{_esc(self.error)}</p>")
        else:
            body = f"<p>{_esc(self._base_tooltip)}</p>" if self._base_tooltip else ""
        if self.shape_text != "?":
            body += f"<p>Output <tt>{_esc(self.shape_text)}</tt><br>{_esc(self.params_text)}</p>"
        if self.is_group:
            body += "<p>A nested model: click +/- (or double-click) to show or hide its layers.</p>"
        self.setToolTip(f"<qt>{head}{body}</qt>")

    # ------------------------------------------------------------ ports

    def set_structure(self, structure: Structure) -> bool:
        """Lay the ports out for ``structure``; returns False when nothing changed."""
        if structure == self.structure:
            return False
        self.structure = structure
        self._port_at = {}
        self._row_labels = []
        ghosts: set = set()
        self._text_top = 0.0
        if self.read_only:
            self._layout_compact(structure)
        elif self.orientation == "TB":
            ghosts = self._layout_edges(structure)
        elif structure.compact:
            if structure.calls[0].slots and not structure.is_input:
                self._port_at[("in", 0, 0)] = NODE_H / 2
            self._port_at[("out", 0, 0)] = NODE_H / 2
            self._ports_h = NODE_H
        else:
            ghosts = self._layout_rows(structure)
        for key in [k for k in self.ports if k not in self._port_at]:
            discard(self.ports.pop(key))
        for key in self._port_at:
            port = self.ports.get(key)
            ghost = key in ghosts
            if port is None or port.ghost != ghost:
                if port is not None:
                    discard(port)
                self.ports[key] = PortItem(self, key[0], key[1], key[2], ghost=ghost)
        self._relayout()
        return True

    def _layout_compact(self, structure: Structure) -> None:
        h = COMPACT_H
        side = COMPACT_W if self.orientation == "TB" else h
        ins = [] if structure.is_input else [
            (c, i) for c, cp in enumerate(structure.calls) for i in range(len(cp.slots))]
        outs = [(c, i) for c, cp in enumerate(structure.calls) for i in range(max(1, cp.outputs))]
        for k, (c, i) in enumerate(ins):
            self._port_at[("in", c, i)] = side * (k + 1) / (len(ins) + 1)
        for k, (c, i) in enumerate(outs):
            self._port_at[("out", c, i)] = side * (k + 1) / (len(outs) + 1)
        self._ports_h = h

    def _layout_edges(self, structure: Structure) -> set:
        """Inputs along the top edge, outputs along the bottom, call after call (TB).

        Each side is cut into equal parts, one per port, and each port sits in
        the middle of its part: one port is centred, and a shared layer's calls
        line up, each call's inputs above its outputs. A row of labels runs
        under the top edge when inputs have names worth reading (MultiHeadAttention's
        query, value and key; a shared layer's calls), and above the bottom edge
        for the shapes of several outputs. A variadic layer's generic slots and
        its extra dashed input stay unlabelled.
        """
        ghosts = set()
        shared = len(structure.calls) > 1
        ins: list[tuple[tuple, object]] = []  # (key, label or None)
        outs: list[tuple[tuple, object]] = []
        for c, cp in enumerate(structure.calls):
            if not structure.is_input:
                named = len(cp.slots) > 1 and not cp.variadic
                for i, slot in enumerate(cp.slots):
                    label = slot if named else (f"call {c + 1}" if shared and i == 0 else None)
                    ins.append((("in", c, i), label))
                if cp.variadic:
                    ghosts.add(("in", c, len(cp.slots)))
                    ins.append((("in", c, len(cp.slots)), None))
            for i in range(max(1, cp.outputs)):
                outs.append((("out", c, i), (c, i) if cp.outputs > 1 else None))
        # Many ports widen the card rather than crowd it.
        self._base_w = max(NODE_W, max(len(ins), len(outs)) * PORT_GAP)
        for side, ports in (("top", ins), ("bottom", outs)):
            part = self._base_w / max(1, len(ports))
            for k, (key, label) in enumerate(ports):
                x = part * (k + 0.5)
                self._port_at[key] = x
                if label is not None:
                    self._row_labels.append((side, x, label, part - 6))
        top = any(label is not None for _, label in ins)
        bottom = any(label is not None for _, label in outs)
        self._text_top = LABEL_H if top else 0.0
        self._ports_h = NODE_H + self._text_top + (LABEL_H if bottom else 0.0)
        return ghosts

    def _layout_rows(self, structure: Structure) -> set:
        """Rows under the text, one per port, grouped by call for a shared layer."""
        ghosts = set()
        y = ROWS_TOP
        shared = len(structure.calls) > 1
        for c, cp in enumerate(structure.calls):
            n_in = 0 if structure.is_input else len(cp.slots) + (1 if cp.variadic else 0)
            if shared and n_in <= 1 and cp.outputs <= 1:
                cy = y + ROW_H / 2
                if n_in:
                    self._port_at[("in", c, 0)] = cy
                self._port_at[("out", c, 0)] = cy
                self._row_labels.append(("left", cy, f"call {c + 1}", None))
                y += ROW_H
                continue
            if shared:
                self._row_labels.append(("left", y + CAPTION_H / 2, f"call {c + 1}", None))
                y += CAPTION_H
            rows = max(n_in, cp.outputs, 1)
            for i in range(n_in):
                cy = y + ROW_H * i + ROW_H / 2
                self._port_at[("in", c, i)] = cy
                if i >= len(cp.slots):
                    ghosts.add(("in", c, i))
                    self._row_labels.append(("left", cy, "+ input", None))
                elif len(cp.slots) > 1:
                    self._row_labels.append(("left", cy, cp.slots[i], None))
            for i in range(max(1, cp.outputs)):
                cy = y + ROW_H * i + ROW_H / 2
                self._port_at[("out", c, i)] = cy
                if cp.outputs > 1:
                    self._row_labels.append(("right", cy, (c, i), None))
            y += rows * ROW_H
        self._ports_h = y + 6  # even: the card's edges fall on whole pixels, centred
        return ghosts

    def _layout_labels(self) -> None:
        th = theme()
        fm = _FontMetrics.of(th.small_font)
        x0, y0 = self._rect.left(), self._rect.top()
        labels = []
        for side, at, text, width in self._row_labels:
            mode = Qt.TextElideMode.ElideRight
            if isinstance(text, tuple):  # an output's shape
                c, i = text
                shapes = self.output_shapes[c] if c < len(self.output_shapes) else []
                text = format_shape(shapes[i]) if i < len(shapes) else f"output {i + 1}"
                mode = Qt.TextElideMode.ElideMiddle
            if width is None:
                width = self._base_w - 2 * PAD - 36 if side == "right" else self._base_w / 2 - PAD
            text = _FontMetrics.elide(th.small_font, text, width, mode)
            advance = fm.horizontalAdvance(text)
            if side == "left":
                x, y = PAD, at - fm.height() / 2
            elif side == "right":
                x, y = self._w - PAD - advance, at - fm.height() / 2
            else:  # centred under (or over) its port, in the label row
                x = at - advance / 2
                row = STRIP_H if side == "top" else self._ports_h - LABEL_H
                y = row + (LABEL_H - fm.height()) / 2
            # Whole pixels: text drawn between pixels is blurred at zoom 1.
            labels.append((QPointF(x0 + round(x), y0 + round(y)), _static(text)))
        self._labels = labels

    def _relayout(self) -> None:
        """Size the card to its ports (and inner content when expanded); centre it."""
        w, h = self._base_w, self._ports_h
        if self.expanded and self._inner_at:
            right = max(p.x() + it.width / 2 for it, p in self._inner_iter())
            bottom = max(p.y() + it.height / 2 for it, p in self._inner_iter())
            w, h = max(w, right + INNER_PAD), max(h, bottom + INNER_PAD)
        if (w, h) != (self._w, self._h) or self._rect.top() != -self._ports_h / 2 \
                or self._rect.left() != -self._base_w / 2:
            self._set_size(w, h)
        x0, y0 = self._rect.left(), self._rect.top()
        for key, at in self._port_at.items():
            if self.orientation == "TB":
                self.ports[key].setPos(x0 + at, y0 if key[0] == "in" else y0 + h)
            else:
                self.ports[key].setPos(x0 if key[0] == "in" else x0 + w, y0 + at)
        for it, p in self._inner_iter():
            it.setPos(x0 + p.x(), y0 + p.y())
        if self._toggle is not None:
            self._toggle.setPos(x0 + w - PAD - _ToggleItem.SIZE + 2, y0 + STRIP_H + 5 + self._text_top)
        self._make_texts()
        self._layout_labels()
        for edge in self.inner_edges:
            edge.update_path()
        self.update_edges()
        self.update()

    def _inner_iter(self):
        return ((self.inner_nodes[n], p) for n, p in self._inner_at.items() if n in self.inner_nodes)

    def set_connected_ports(self, keys: set) -> None:
        for key, port in self.ports.items():
            port.set_connected(key in keys)

    # ------------------------------------------------------------ nested models

    def set_expanded(self, expanded: bool, subgraph=None, category_of=None) -> None:
        """Show (or hide) a nested model's layers inside the card, read-only."""
        for item in list(self.inner_nodes.values()) + self.inner_edges:
            discard(item)
        self.inner_nodes, self.inner_edges, self._inner_at = {}, [], {}
        self.expanded = expanded
        if expanded and subgraph is not None:
            top = self._ports_h + INNER_PAD
            for name, (item, x, y) in _inner_cards(self, subgraph, category_of).items():
                self.inner_nodes[name] = item
                self._inner_at[name] = QPointF(INNER_PAD + x + COMPACT_W / 2, top + y + COMPACT_H / 2)
        if self._toggle is not None:
            self._toggle.update()
        # An open nested model is drawn over its neighbours, which it may cover.
        self._base_z = 1.2 if expanded else 1.0
        self.setZValue(self._base_z + (0.5 if self.isSelected() else 0.0))
        self._relayout()

    # ------------------------------------------------------------ behaviour

    def update_edges(self) -> None:
        for edge in self.edges:
            edge.update_path()

    def itemChange(self, change, value):
        if change == QGraphicsItem.GraphicsItemChange.ItemPositionChange:
            scene = self.scene()
            if scene is not None and getattr(scene, "snapping_drag", False):
                return QPointF(round(value.x() / GRID) * GRID, round(value.y() / GRID) * GRID)
        elif change == QGraphicsItem.GraphicsItemChange.ItemPositionHasChanged:
            for edge in self.edges:
                edge.update_path()
            scene = self.scene()
            if scene is not None and hasattr(scene, "_on_item_moved"):
                scene._on_item_moved(self)
        elif change == QGraphicsItem.GraphicsItemChange.ItemSelectedHasChanged:
            self.setZValue(self._base_z + (0.5 if value else 0.0))
        return super().itemChange(change, value)

    def mousePressEvent(self, event):
        # Shift adds to the selection, as Ctrl does (Qt only knows Ctrl).
        if event.modifiers() & Qt.KeyboardModifier.ShiftModifier:
            event.setModifiers(event.modifiers() | Qt.KeyboardModifier.ControlModifier)
        super().mousePressEvent(event)

    def mouseReleaseEvent(self, event):
        if event.modifiers() & Qt.KeyboardModifier.ShiftModifier:
            event.setModifiers(event.modifiers() | Qt.KeyboardModifier.ControlModifier)
        super().mouseReleaseEvent(event)

    def mouseDoubleClickEvent(self, event):
        scene = self.scene()
        if self.is_group and scene is not None and hasattr(scene, "toggle_collapsed"):
            scene.toggle_collapsed(self.name)
        elif scene is not None and hasattr(scene, "sig_node_activated"):
            scene.sig_node_activated.emit(self.name)
        event.accept()

    # ------------------------------------------------------------ painting

    def paint(self, painter: QPainter, option, widget=None) -> None:
        th = theme()
        lod = option.levelOfDetailFromTransform(painter.worldTransform())
        rect = self.rect()
        x0, y0 = rect.left(), rect.top()
        painter.setRenderHint(QPainter.RenderHint.Antialiasing)

        if self.state == "error":
            border, bw = ERROR_COLOR, 2.0
            fill = _blend(th.card, ERROR_COLOR, 0.18 if th.dark else 0.10)
        elif self.state == "upstream":
            border, bw = UPSTREAM_COLOR, 1.5
            fill = _blend(th.card, UPSTREAM_COLOR, 0.12 if th.dark else 0.07)
        else:
            border, bw, fill = th.card_border, 1.0, th.card
        if self.read_only:
            fill = _blend(fill, th.canvas, 0.35)

        if not self.read_only:
            painter.setPen(Qt.PenStyle.NoPen)
            painter.setBrush(th.shadow)
            painter.drawRoundedRect(rect.translated(0, 2.0), RADIUS, RADIUS)
        painter.setPen(QPen(border, bw))
        painter.setBrush(fill)
        painter.drawRoundedRect(rect.adjusted(0.5, 0.5, -0.5, -0.5), RADIUS, RADIUS)

        # The category strip along the top, inside the rounded corners.
        inner = QPainterPath()
        inner.addRoundedRect(rect.adjusted(1, 1, -1, -1), RADIUS - 1, RADIUS - 1)
        band = QPainterPath()
        band.addRect(QRectF(x0, y0, rect.width(), STRIP_H + 1))
        painter.setPen(Qt.PenStyle.NoPen)
        painter.setBrush(self.color)
        painter.drawPath(inner.intersected(band))

        if self.isSelected():
            painter.setPen(QPen(th.highlight, 2.2))
            painter.setBrush(Qt.BrushStyle.NoBrush)
            painter.drawRoundedRect(rect.adjusted(-2, -2, 2, 2), RADIUS + 2, RADIUS + 2)

        if lod < 0.3:
            return  # too small to read: shapes and colours only

        # Text goes on whole pixels (cards are, at zoom 1) so it stays crisp.
        x = x0 + PAD
        top = y0 + self._text_top

        def at(font: QFont, baseline: float) -> float:
            return top + round(baseline - _FontMetrics.of(font).ascent())

        painter.setPen(th.text)
        painter.setFont(th.name_font)
        painter.drawStaticText(QPointF(x, at(th.name_font, NAME_BASE)), self._name_st)
        painter.setFont(th.small_font)
        painter.setPen(th.muted)
        if self.read_only:
            painter.drawStaticText(QPointF(x, at(th.small_font, COMPACT_TYPE_BASE)), self._type_st)
            return
        painter.drawStaticText(QPointF(x, at(th.small_font, TYPE_BASE)), self._type_st)
        if self.state == "error":
            painter.setPen(ERROR_COLOR)
        params_base = {"type": TYPE_BASE, "shape": SHAPE_BASE, "name": NAME_BASE}[self._params_line]
        painter.drawStaticText(QPointF(x0 + self._base_w - PAD - self._params_w,
                                       at(th.small_font, params_base)), self._params_st)
        painter.setFont(th.mono_font)
        painter.setPen(th.text if self.shape_text != "?" else th.muted)
        painter.drawStaticText(QPointF(x, at(th.mono_font, SHAPE_BASE)), self._shape_st)

        if self.state in ("error", "upstream"):
            c = ERROR_COLOR if self.state == "error" else UPSTREAM_COLOR
            right = x0 + self._w - PAD - 5 - (_ToggleItem.SIZE + 6 if self.is_group else 0)
            badge = QPointF(right, top + STRIP_H + 11)
            painter.setPen(Qt.PenStyle.NoPen)
            painter.setBrush(c)
            painter.drawEllipse(badge, 6.5, 6.5)
            painter.setPen(QPen(QColor("white"), 1.8, Qt.PenStyle.SolidLine, Qt.PenCapStyle.RoundCap))
            painter.drawLine(badge + QPointF(0, -3.4), badge + QPointF(0, 0.8))
            painter.drawPoint(badge + QPointF(0, 3.4))

        rule = QPen(_blend(th.card_border, fill, 0.45), 1.0)
        if self._labels:
            painter.setPen(rule)
            if self.orientation == "TB":
                for side in {side for side, *_ in self._row_labels}:
                    y = y0 + (STRIP_H + LABEL_H if side == "top" else self._ports_h - LABEL_H) + 0.5
                    painter.drawLine(QPointF(x0 + 1, y), QPointF(x0 + self._w - 1, y))
            else:
                y = y0 + ROWS_TOP - 1
                painter.drawLine(QPointF(x0 + 1, y), QPointF(x0 + self._w - 1, y))
            painter.setFont(th.small_font)
            painter.setPen(th.muted)
            for pos, st in self._labels:
                painter.drawStaticText(pos, st)
        if self.expanded and self.inner_nodes:
            rule.setStyle(Qt.PenStyle.DashLine)
            painter.setPen(rule)
            y = y0 + self._ports_h + INNER_PAD / 2
            painter.drawLine(QPointF(x0 + 1, y), QPointF(x0 + self._w - 1, y))


def discard(item: QGraphicsItem) -> None:
    """Take an item (and its children) out of its parent and its scene."""
    scene = item.scene()
    if item.parentItem() is not None:
        item.setParentItem(None)
    if scene is not None:
        scene.removeItem(item)


def _esc(text: str) -> str:
    return (str(text).replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;"))


# --------------------------------------------------------------------------- edges


class EdgeItem(QGraphicsItem):
    """A connection, drawn as a cubic curve from an output port to an input port.

    The curve leaves and arrives along the flow of its source card's orientation:
    down out of an output and down into an input (top to bottom), or rightwards
    (left to right).

    Args:
        edge: the core :class:`models.graph.Edge` (None for inner, read-only edges).
        src: the card it leaves.
        dst: the card it enters.
        src_key, dst_key: the port keys at both ends.
    """

    def __init__(self, edge, src: NodeItem, dst: NodeItem, src_key, dst_key,
                 parent: QGraphicsItem | None = None, read_only: bool = False):
        super().__init__(parent)
        self.edge = edge
        self.src, self.dst = src, dst
        self.src_key, self.dst_key = src_key, dst_key
        self.read_only = read_only
        self._nested = parent is not None
        self._path = QPainterPath()
        self._brect = QRectF()
        self._shape: QPainterPath | None = None
        self._hover = False
        self.dimmed = False
        if read_only:
            self.setAcceptedMouseButtons(Qt.MouseButton.NoButton)
        else:
            self.setFlag(QGraphicsItem.GraphicsItemFlag.ItemIsSelectable)
            self.setAcceptHoverEvents(True)
        self.setZValue(0)
        self.update_path()

    def endpoints(self) -> tuple[QPointF, QPointF]:
        p1 = self.src.anchor(*self.src_key)
        p2 = self.dst.anchor(*self.dst_key)
        if self._nested:
            p1, p2 = self.mapFromScene(p1), self.mapFromScene(p2)
        return p1, p2

    def update_path(self) -> None:
        p1, p2 = self.endpoints()
        path = curve(p1, p2, self.src.orientation)
        if path == self._path:
            return
        self.prepareGeometryChange()
        self._path = path
        self._brect = path.controlPointRect().adjusted(-4, -4, 4, 4)
        self._shape = None

    def path(self) -> QPainterPath:
        return self._path

    def boundingRect(self) -> QRectF:
        return self._brect

    def shape(self) -> QPainterPath:
        if self._shape is None:
            stroker = QPainterPathStroker()
            stroker.setWidth(10)
            self._shape = stroker.createStroke(self._path)
        return self._shape

    def paint(self, painter, option, widget=None):
        th = theme()
        painter.setRenderHint(QPainter.RenderHint.Antialiasing)
        if self.isSelected():
            pen = QPen(th.highlight, 3.0)
        else:
            color = QColor(th.edge)
            if self.dimmed:
                color.setAlphaF(0.18)
            pen = QPen(color, 2.4 if self._hover else 1.6)
        pen.setCapStyle(Qt.PenCapStyle.RoundCap)
        painter.setPen(pen)
        painter.setBrush(Qt.BrushStyle.NoBrush)
        painter.drawPath(self._path)

    def hoverEnterEvent(self, event):
        self._hover = True
        self.update()

    def hoverLeaveEvent(self, event):
        self._hover = False
        self.update()


def curve(p1: QPointF, p2: QPointF, orientation: str = "TB") -> QPainterPath:
    """The cubic curve from an output port ``p1`` to an input port ``p2``.

    Args:
        p1: the output end.
        p2: the input end.
        orientation: ``"TB"``: it leaves downwards and arrives from above;
            ``"LR"``: it leaves rightwards and arrives from the left.
    """
    path = QPainterPath(p1)
    if orientation == "TB":
        # Rows are closer than columns, so the tangents may be shorter.
        d = max(abs(p2.y() - p1.y()) * 0.5, 30.0)
        path.cubicTo(QPointF(p1.x(), p1.y() + d), QPointF(p2.x(), p2.y() - d), p2)
    else:
        d = max(abs(p2.x() - p1.x()) * 0.5, 40.0)
        path.cubicTo(QPointF(p1.x() + d, p1.y()), QPointF(p2.x() - d, p2.y()), p2)
    return path


class RubberEdge(QGraphicsPathItem):
    """The edge that follows the mouse while a connection is being dragged."""

    def __init__(self):
        super().__init__()
        self.setZValue(10)
        self.setAcceptedMouseButtons(Qt.MouseButton.NoButton)
        self.set_snapped(False)

    def set_snapped(self, snapped: bool) -> None:
        th = theme()
        pen = QPen(th.highlight, 2.0, Qt.PenStyle.SolidLine if snapped else Qt.PenStyle.DashLine)
        pen.setCapStyle(Qt.PenCapStyle.RoundCap)
        self.setPen(pen)
        self.setBrush(QBrush(Qt.BrushStyle.NoBrush))

    def set_ends(self, out_end: QPointF, in_end: QPointF, orientation: str = "TB") -> None:
        self.setPath(curve(out_end, in_end, orientation))


# --------------------------------------------------------------------------- nested content


def _inner_cards(group: NodeItem, subgraph, category_of) -> dict:
    """Read-only cards and edges for a nested model's layers, as children of ``group``.

    Returns ``{name: (card, x, y)}`` with the top-left corners of an inner layout.
    """
    category_of = category_of or (lambda _cls: None)
    positions = inner_layout(subgraph, group.orientation)
    cards = {}
    for name, node in subgraph.nodes.items():
        category = "model" if node.subgraph is not None else category_of(node.class_name)
        item = NodeItem(name, node.class_name, category, structure_of(node, {}),
                        read_only=True, parent=group, orientation=group.orientation)
        x, y = positions.get(name, (0.0, 0.0))
        cards[name] = (item, x, y)
    for e in subgraph.edges:
        if e.src not in cards or e.dst not in cards:
            continue
        s, d = cards[e.src][0], cards[e.dst][0]
        item = EdgeItem(None, s, d, ("out", e.src_call, e.src_index), ("in", e.dst_call, e.dst_slot),
                        parent=group, read_only=True)
        group.inner_edges.append(item)
        s.edges.add(item)
        d.edges.add(item)
        for card, key in ((s, item.src_key), (d, item.dst_key)):
            if key in card.ports:
                card.ports[key].set_connected(True)
    return cards


def structure_of(node, out_counts: dict[int, int]) -> Structure:
    """The port structure of a core :class:`models.graph.Node`.

    Args:
        node: the node.
        out_counts: call index -> number of outputs (at least 1 is shown).
    """
    if node.is_input:
        return Structure((CallPorts((), False, max(1, out_counts.get(0, 1))),), True)
    calls = node.calls or []
    if not calls:
        return Structure((CallPorts(("input",), False, max(1, out_counts.get(0, 1))),), False)
    return Structure(
        tuple(CallPorts(tuple(s.name for s in c.slots), c.variadic, max(1, out_counts.get(i, 1)))
              for i, c in enumerate(calls)),
        False,
    )


def inner_layout(graph, orientation: str = "TB") -> dict[str, tuple[float, float]]:
    """Rows (``"TB"``) or columns (``"LR"``) by longest path from the inputs.

    For the compact read-only cards of an open nested model; returns their
    top-left corners.
    """
    depth: dict[str, int] = {}
    for name in graph.node_order():
        preds = [p for p in graph.predecessors(name) if p in depth]
        depth[name] = 1 + max((depth[p] for p in preds), default=-1)
    columns: dict[int, list[str]] = {}
    for name, d in depth.items():
        columns.setdefault(d, []).append(name)
    out = {}
    for d, names in columns.items():
        for k, name in enumerate(names):
            if orientation == "TB":
                out[name] = (k * (COMPACT_W + INNER_GAP_SIDE), d * (COMPACT_H + INNER_GAP_ROWS))
            else:
                out[name] = (d * (COMPACT_W + INNER_GAP_X), k * (COMPACT_H + INNER_GAP_Y))
    return out


__all__ = [
    "NodeItem", "PortItem", "EdgeItem", "RubberEdge", "Structure", "CallPorts", "structure_of",
    "theme", "reset_theme", "format_shape", "format_params", "curve", "GRID", "NODE_W", "NODE_H",
    "ORIENTATIONS", "CATEGORY_COLORS", "category_color",
]
