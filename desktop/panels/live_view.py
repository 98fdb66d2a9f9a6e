"""The template's live view: the panels of a :mod:`models.views` dict, drawn with pyqtgraph.

A view is made by the core at the end of an epoch (attention maps,
reconstructions, generated points over the real data, a graph coloured by
predicted class...). This widget knows the few generic panel kinds and draws
any view from them; a view with the same panels as the last one updates the
items in place, so a new epoch costs a few ``setData`` calls, not a rebuild.
"""
from __future__ import annotations

import math

import numpy as np
import pyqtgraph as pg
from PySide6.QtCore import QRectF, Qt
from PySide6.QtWidgets import QLabel, QVBoxLayout, QWidget

from desktop.panels.evaluation import PALETTE, add_legend, style_plot

MAX_CAPTIONS = 40     # more images than this are drawn without captions
MAX_NODE_LABELS = 60  # more nodes than this are drawn without labels
MAX_TICK_LABELS = 24  # heat-map axes with more labels show every n-th


def class_color(i: int) -> str:
    return PALETTE[int(i) % len(PALETTE)]


def _ticks(labels, limit: int = MAX_TICK_LABELS):
    if not labels:
        return None
    step = max(1, math.ceil(len(labels) / limit))
    return [[(i + 0.5, str(t)) for i, t in enumerate(labels)][::step]]


class _PanelRenderer:
    """Draws one panel kind into a PlotItem; ``update`` takes a new panel of the same kind."""

    def __init__(self, plot: pg.PlotItem):
        self.plot = plot
        self._items: list = []
        for side in ("left", "bottom"):
            # Values like capsule lengths (0..1) read as "x0.001" and 0..800 otherwise.
            plot.getAxis(side).enableAutoSIPrefix(False)

    def _clear(self):
        for item in self._items:
            self.plot.removeItem(item)
        self._items = []
        if self.plot.legend is not None:
            self.plot.legend.clear()

    def _add(self, item):
        self.plot.addItem(item)
        self._items.append(item)
        return item

    def update(self, panel: dict) -> None:
        style_plot(self.plot, panel.get("title", ""), panel.get("x_title", ""),
                   panel.get("y_title", ""))
        self.draw(panel)
        if panel.get("equal_axes"):  # points in a plane: one unit as long on both axes
            self.plot.setAspectLocked(True)
            self.plot.autoRange()

    def draw(self, panel: dict) -> None:
        raise NotImplementedError


class _Images(_PanelRenderer):
    """A mosaic of small images (one ImageItem), captions under each tile."""

    def draw(self, panel):
        self._clear()
        imgs = np.asarray(panel.get("images") or [], dtype=np.float32)
        if imgs.size == 0:
            return
        if imgs.ndim == 3:
            imgs = imgs[..., None]
        n, h, w, c = imgs.shape
        cols = max(1, min(int(panel.get("columns") or 8), n))
        rows = math.ceil(n / cols)
        gap = max(1, h // 8)
        caption = 0 if (not panel.get("labels") or n > MAX_CAPTIONS) else max(2, h // 3)
        cell_h, cell_w = h + gap + caption, w + gap
        mosaic = np.ones((rows * cell_h, cols * cell_w, 3 if c >= 3 else 1), dtype=np.float32)
        for i in range(n):
            r, k = divmod(i, cols)
            tile = imgs[i][..., :3] if c >= 3 else imgs[i][..., :1]
            mosaic[r * cell_h:r * cell_h + h, k * cell_w:k * cell_w + w] = tile
        # pyqtgraph images are [x, y]: transpose rows and columns; y grows downwards here.
        data = np.transpose(mosaic, (1, 0, 2)) if mosaic.shape[-1] == 3 else mosaic[..., 0].T
        self._add(pg.ImageItem(data, levels=(0.0, 1.0)))  # grey levels; white gaps
        self.plot.invertY(True)
        self.plot.setAspectLocked(True)
        self.plot.hideAxis("left")
        self.plot.hideAxis("bottom")
        if caption:
            for i, text in enumerate(panel["labels"][:n]):
                r, k = divmod(i, cols)
                label = self._add(pg.TextItem(str(text), color="#222", anchor=(0.5, 0)))
                label.setPos(k * cell_w + w / 2, r * cell_h + h)
        self.plot.setRange(QRectF(0, 0, cols * cell_w, rows * cell_h), padding=0.02)


class _Heatmap(_PanelRenderer):
    def draw(self, panel):
        self._clear()
        m = np.asarray(panel.get("matrix") or [[0.0]], dtype=np.float32)
        levels = panel.get("levels") or (float(np.nanmin(m)), float(np.nanmax(m)) or 1.0)
        if not levels[1] > levels[0]:
            levels = (levels[0], levels[0] + 1e-6)
        image = self._add(pg.ImageItem(m.T, levels=tuple(levels)))  # [x=column, y=row]
        image.setColorMap(pg.colormap.get("viridis"))
        image.setRect(QRectF(0, 0, m.shape[1], m.shape[0]))
        self.plot.invertY(True)
        self.plot.setAspectLocked(False)
        for side, labels in (("bottom", panel.get("x_labels")), ("left", panel.get("y_labels"))):
            self.plot.getAxis(side).setTicks(_ticks(labels))
        self.plot.setRange(QRectF(0, 0, m.shape[1], m.shape[0]), padding=0)


class _Scatter(_PanelRenderer):
    def draw(self, panel):
        self._clear()
        shown = [s for s in panel.get("series") or [] if s.get("x")]
        if len(shown) > 1 or (shown and shown[0].get("name")):
            add_legend(self.plot)
        for j, s in enumerate(shown):
            classes = s.get("classes")
            if classes is not None:
                brushes = [pg.mkBrush(class_color(c)) for c in classes]
            else:
                brushes = pg.mkBrush(s.get("color") or PALETTE[j % len(PALETTE)])
            item = pg.ScatterPlotItem(x=s["x"], y=s["y"], size=float(s.get("size", 5)),
                                      brush=brushes, pen=None, name=s.get("name") or None)
            self._add(item)
        self.plot.setAspectLocked(False)
        self.plot.autoRange()


class _Bars(_PanelRenderer):
    def draw(self, panel):
        self._clear()
        values = panel.get("values") or []
        labels = panel.get("labels") or [str(i) for i in range(len(values))]
        self._add(pg.BarGraphItem(x=np.arange(len(values)), height=values, width=0.7,
                                  brushes=[class_color(i) for i in range(len(values))]))
        ref = panel.get("reference")
        if ref is not None:
            self._add(pg.InfiniteLine(pos=ref, angle=0, pen=pg.mkPen("#d62728", style=Qt.DashLine)))
        self.plot.getAxis("bottom").setTicks([[(i, str(t)) for i, t in enumerate(labels)]])
        self.plot.setAspectLocked(False)
        self.plot.autoRange()


class _Graph(_PanelRenderer):
    def draw(self, panel):
        self._clear()
        x = np.asarray(panel.get("x") or [], dtype=np.float64)
        y = np.asarray(panel.get("y") or [], dtype=np.float64)
        edges = panel.get("edges") or []
        if edges:
            e = np.asarray(edges, dtype=int)
            ex = np.column_stack([x[e[:, 0]], x[e[:, 1]]]).ravel()
            ey = np.column_stack([y[e[:, 0]], y[e[:, 1]]]).ravel()
            self._add(pg.PlotDataItem(ex, ey, connect="pairs", pen=pg.mkPen(150, 150, 150, 120)))
        classes = panel.get("classes") or [0] * len(x)
        marked = set(panel.get("marked") or [])
        sizes = [16 if i in marked else 11 for i in range(len(x))]
        pens = [pg.mkPen("#000", width=2) if i in marked else pg.mkPen("#fff") for i in range(len(x))]
        self._add(pg.ScatterPlotItem(x=x, y=y, size=sizes, pen=pens,
                                     brush=[pg.mkBrush(class_color(c)) for c in classes]))
        labels = panel.get("labels")
        if labels and len(labels) <= MAX_NODE_LABELS:
            for xi, yi, text in zip(x, y, labels):
                item = self._add(pg.TextItem(str(text), color="#222", anchor=(0.5, 1.3)))
                item.setPos(xi, yi)
        self.plot.hideAxis("left")
        self.plot.hideAxis("bottom")
        self.plot.setAspectLocked(True)
        self.plot.autoRange()


class _Lines(_PanelRenderer):
    def draw(self, panel):
        self._clear()
        shown = panel.get("series") or []
        if any(s.get("name") for s in shown):
            add_legend(self.plot)
        for j, s in enumerate(shown):
            cls = s.get("class")
            color = class_color(cls) if cls is not None else PALETTE[j % len(PALETTE)]
            self._add(pg.PlotDataItem(s.get("x") or [], s.get("y") or [],
                                      pen=pg.mkPen(color, width=2), name=s.get("name") or None))
        self.plot.setAspectLocked(False)
        self.plot.autoRange()


class _Text(_PanelRenderer):
    def draw(self, panel):
        self._clear()
        item = self._add(pg.TextItem(str(panel.get("text", "")), color="#222", anchor=(0, 0)))
        item.setPos(0, 0)
        self.plot.hideAxis("left")
        self.plot.hideAxis("bottom")
        self.plot.invertY(True)
        self.plot.setRange(QRectF(0, 0, 1, 1), padding=0)


RENDERERS = {"images": _Images, "heatmap": _Heatmap, "scatter": _Scatter, "bars": _Bars,
             "graph": _Graph, "lines": _Lines, "text": _Text}


class LiveViewPanel(QWidget):
    """Shows the latest live view; ``set_view`` redraws it (panels in a grid, up to 3 a row)."""

    def __init__(self, parent=None):
        super().__init__(parent)
        self.title = QLabel("")
        self.title.setStyleSheet("font-weight: bold;")
        self.grid = pg.GraphicsLayoutWidget()
        self.grid.setBackground("w")
        self.placeholder = QLabel("The model's own view appears here while it trains.")
        self.placeholder.setAlignment(Qt.AlignCenter)
        self.placeholder.setStyleSheet("color: #666;")
        lay = QVBoxLayout(self)
        lay.setContentsMargins(4, 4, 4, 4)
        lay.addWidget(self.title)
        lay.addWidget(self.grid, 1)
        lay.addWidget(self.placeholder)
        self.grid.hide()
        self._layout_key: tuple | None = None
        self._renderers: list[_PanelRenderer] = []
        self.epoch: int | None = None
        self.view: dict | None = None

    def clear(self) -> None:
        self.grid.clear()
        self._renderers, self._layout_key, self.view, self.epoch = [], None, None, None
        self.title.setText("")
        self.grid.hide()
        self.placeholder.show()

    def set_view(self, view: dict, epoch: int | None = None) -> None:
        panels = [p for p in (view or {}).get("panels") or [] if p.get("kind") in RENDERERS]
        self.view, self.epoch = view, epoch
        title = view.get("title", "")
        self.title.setText(f"{title} — epoch {epoch}" if epoch else title)
        key = tuple(p["kind"] for p in panels)
        if key != self._layout_key:
            self.grid.clear()
            self._renderers = []
            cols = min(3, max(1, len(panels)))
            for i, p in enumerate(panels):
                plot = self.grid.addPlot(row=i // cols, col=i % cols)
                plot.getViewBox().setMouseMode(pg.ViewBox.RectMode)
                self._renderers.append(RENDERERS[p["kind"]](plot))
            self._layout_key = key
        for renderer, panel in zip(self._renderers, panels):
            renderer.update(panel)
        self.placeholder.setVisible(not panels)
        self.grid.setVisible(bool(panels))


__all__ = ["LiveViewPanel", "RENDERERS", "class_color"]
