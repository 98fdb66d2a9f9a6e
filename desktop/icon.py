"""LayerForge's icon, drawn in code: the window's icon and the installers' icon files.

A small network on a blue tile: three layers of nodes (3, 4, 2) and the
connections between neighbouring layers. Drawn at every size asked for, so
it stays sharp from a 16 px title bar to a 512 px dock icon;
``packaging/build.py`` writes the files the installers need from it.
"""
from __future__ import annotations

from PySide6.QtCore import QPointF, QRectF, Qt
from PySide6.QtGui import QColor, QIcon, QLinearGradient, QPainter, QPen, QPixmap

SIZES = (16, 24, 32, 48, 64, 128, 256, 512)
LAYERS = (3, 4, 2)  # nodes per layer, left to right


def _nodes(size: float) -> list[list[QPointF]]:
    margin = size * 0.22
    span_x, span_y = size - 2 * margin, size - 2 * margin
    layers = []
    for i, count in enumerate(LAYERS):
        x = margin + span_x * i / (len(LAYERS) - 1)
        step = span_y / max(1, max(LAYERS) - 1)
        top = size / 2 - step * (count - 1) / 2
        layers.append([QPointF(x, top + step * j) for j in range(count)])
    return layers


def icon_pixmap(size: int) -> QPixmap:
    """The icon as a ``size`` x ``size`` pixmap with a transparent corner."""
    pixmap = QPixmap(size, size)
    pixmap.fill(Qt.transparent)
    p = QPainter(pixmap)
    p.setRenderHint(QPainter.Antialiasing)
    tile = QRectF(0, 0, size, size).adjusted(size * 0.04, size * 0.04, -size * 0.04, -size * 0.04)
    gradient = QLinearGradient(tile.topLeft(), tile.bottomRight())
    gradient.setColorAt(0.0, QColor("#1e88e5"))
    gradient.setColorAt(1.0, QColor("#0d47a1"))
    p.setPen(Qt.NoPen)
    p.setBrush(gradient)
    p.drawRoundedRect(tile, size * 0.2, size * 0.2)
    layers = _nodes(size)
    p.setPen(QPen(QColor(255, 255, 255, 150), max(1.0, size / 48)))
    for left, right in zip(layers, layers[1:]):
        for a in left:
            for b in right:
                p.drawLine(a, b)
    radius = max(1.5, size * 0.065)
    p.setPen(Qt.NoPen)
    for i, layer in enumerate(layers):
        p.setBrush(QColor("#ffca28") if i == len(layers) - 1 else QColor("white"))
        for point in layer:
            p.drawEllipse(point, radius, radius)
    p.end()
    return pixmap


def app_icon() -> QIcon:
    """The icon at every size in :data:`SIZES` (call with a QApplication running)."""
    icon = QIcon()
    for size in SIZES:
        icon.addPixmap(icon_pixmap(size))
    return icon
