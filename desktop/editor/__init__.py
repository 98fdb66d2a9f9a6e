"""The model canvas: a Qt Graphics View over a :class:`desktop.document.Document`.

``GraphView`` is the widget; ``GraphScene`` holds one item per node and edge
and turns gestures into Document calls; ``items`` draws cards, ports and edges.
"""
from desktop.editor.items import EdgeItem, NodeItem, PortItem
from desktop.editor.scene import GraphScene
from desktop.editor.view import GRAPH_MIME, LAYER_MIME, GraphView

__all__ = ["GraphView", "GraphScene", "NodeItem", "PortItem", "EdgeItem", "GRAPH_MIME", "LAYER_MIME"]
