"""Pictures of a project's graph, drawn by the canvas's own scene into an image (no Keras).

The gallery shows each template as the editor would: the same cards, colours
and connections at the stored positions. :func:`render_thumbnail` builds a
:class:`~desktop.editor.scene.GraphScene` over a read-only stand-in for the
document, so nothing validates the graph and TensorFlow stays unloaded. The
cards show the shapes and parameter counts a gallery template stores in
``meta["node_summary"]`` (see :func:`models.gallery.node_summary`); other
projects' cards show none.
"""
from __future__ import annotations

from PySide6.QtCore import QObject, QRectF, QSize, Qt, Signal
from PySide6.QtGui import QImage, QPainter

from desktop.editor.items import theme
from desktop.editor.scene import GraphScene

MARGIN = 24.0    # scene units around the cards
MAX_SCALE = 1.0  # pixels per scene unit at most: the canvas's own zoom 1


class _StaticDocument(QObject):
    """What :class:`GraphScene` reads from a document, for a project that never changes."""

    sig_graph_event = Signal(object)
    sig_position_changed = Signal(str, float, float)
    sig_validated = Signal(object)
    sig_reset = Signal()
    sig_graph_shown = Signal(str)  # never emitted: a picture shows the main graph

    def __init__(self, project, parent=None):
        super().__init__(parent)
        self.project = project
        self.report = _stored_report(project)  # never validated here: that would load Keras

    @property
    def graph(self):
        return self.project.graph

    @property
    def graph_name(self) -> str:
        return self.project.main_name

    @property
    def positions(self) -> dict:
        return self.project.positions()

    def position(self, name: str) -> tuple[float, float]:
        p = self.positions.get(name)
        return (p[0], p[1]) if p else (0.0, 0.0)


def _stored_report(project):
    """A validation report made from the project's stored node summary (None without one)."""
    from models.validate import NodeInfo, ValidationReport

    summary = project.meta.get("node_summary")
    if not isinstance(summary, dict):
        return None
    nodes = {}
    for name, node in project.graph.nodes.items():
        info = summary.get(name) or {}
        nodes[name] = NodeInfo(name, node.class_name, output_shapes=info.get("output_shapes") or [],
                               params=info.get("params"))
    return ValidationReport(nodes)


def render_thumbnail(project, size: QSize) -> QImage:
    """The project's main graph drawn into an image of ``size``, centred, aspect kept.

    Args:
        project: a :class:`models.project.Project` (its view state may gain
            the defaults the canvas fills in, as when it is opened).
        size: the image size in pixels.

    Returns:
        An ARGB32 image on the canvas colour; an empty graph gives a blank one.
    """
    image = QImage(size, QImage.Format.Format_ARGB32_Premultiplied)
    image.fill(theme().canvas)
    doc = _StaticDocument(project)
    scene = GraphScene()
    scene.set_document(doc)
    try:
        if not scene.nodes:
            return image
        cards = scene.nodes_rect().adjusted(-MARGIN, -MARGIN, MARGIN, MARGIN)
        # Fit the cards, centred; a small graph is drawn at the editor's size, not blown up.
        scale = min(size.width() / cards.width(), size.height() / cards.height(), MAX_SCALE)
        source = QRectF(0, 0, size.width() / scale, size.height() / scale)
        source.moveCenter(cards.center())
        painter = QPainter(image)
        painter.setRenderHints(QPainter.RenderHint.Antialiasing
                               | QPainter.RenderHint.TextAntialiasing
                               | QPainter.RenderHint.SmoothPixmapTransform)
        scene.render(painter, QRectF(image.rect()), source, Qt.AspectRatioMode.IgnoreAspectRatio)
        painter.end()
        return image
    finally:
        scene.set_document(None)
        scene.deleteLater()
        doc.deleteLater()


__all__ = ["render_thumbnail"]
