"""Dock panels around the canvas: the layer palette and the parameter inspector.

Both read the cached layer catalog (:func:`models.catalog.load_catalog`), so
they build without TensorFlow; the inspector commits every edit through
:meth:`desktop.document.Document.set_params`, which asks Keras whether it
accepts the value once Keras has loaded.
"""
from desktop.panels.inspector import InspectorPanel
from desktop.panels.palette import LAYER_MIME, PalettePanel

__all__ = ["InspectorPanel", "LAYER_MIME", "PalettePanel"]
