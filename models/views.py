"""Live views: what a template shows beside the loss curves while it learns.

A view is a small JSON-ready dict made at the end of an epoch::

    {"title": "Attention", "panels": [PANEL, ...]}

Each panel is one of a few generic kinds that the app knows how to draw, so a
new template needs no new widget, only a function that fills panels:

``images``
    ``images`` (``[n][h][w]`` or ``[n][h][w][c]``, values in [0, 1]),
    ``labels`` (one caption per image, optional), ``columns``.
``heatmap``
    ``matrix`` (rows x columns), ``x_labels`` / ``y_labels`` (optional),
    ``x_title`` / ``y_title``, ``levels`` (optional ``[lo, hi]``).
``scatter``
    ``series``: a list of ``{"name", "x", "y", "classes" (optional, an int
    per point: the colour), "size", "color" (optional "#rrggbb")}``;
    ``equal_axes`` (optional, lines too): one unit is as long on both axes
    (points in a plane: a ring stays round).
``bars``
    ``labels``, ``values``, ``y_title``, ``reference`` (optional: a
    horizontal line, e.g. the 5% an expert should at least take).
``graph``
    ``x``, ``y`` (node positions), ``edges`` (pairs of node indices),
    ``classes`` (an int per node: the colour), ``labels`` (optional),
    ``marked`` (optional node indices drawn larger: e.g. the labelled ones).
``lines``
    ``series``: a list of ``{"name", "x", "y", "class" (optional, an int: the
    colour of that class elsewhere)}``; ``x_title`` / ``y_title``. Only named
    series are listed in the legend, so many paths can share a few names.
``text``
    ``text``.

Every panel has a ``kind`` and a ``title``. The helpers below build panels
from numpy arrays (subsampled, rounded, turned into lists).

Where views come from:

* ``fit`` training: the recipe names a function, ``"live_view": {"fn":
  "package.module:function", ...options}``, called as ``fn(model, dataset,
  options)`` at the end of every epoch (and once before the first);
* custom loops (:mod:`models.loops`): ``Loop.live_view()`` returns the view.

A view that fails is dropped with a note; it never stops training.
"""
from __future__ import annotations

import importlib
from typing import Any, Callable

import numpy as np

MAX_POINTS = 2000  # per scatter series; more are subsampled


def resolve(target: str) -> Callable:
    """``"package.module:function"`` -> the function."""
    if not isinstance(target, str) or ":" not in target:
        raise ValueError(f"a live view is named 'package.module:function'; got {target!r}")
    module, name = target.split(":", 1)
    return getattr(importlib.import_module(module), name)


def view_function(recipe: dict, dataset) -> Callable[[Any], dict | None] | None:
    """The recipe's live view as ``f(model) -> view`` (None when the recipe has none).

    Failures inside are caught: the first one is reported once through the
    returned function's ``error`` attribute and the view is switched off.
    """
    spec = recipe.get("live_view")
    if not spec:
        return None
    if isinstance(spec, str):
        spec = {"fn": spec}
    options = {k: v for k, v in spec.items() if k != "fn"}
    fn = resolve(spec["fn"])

    def make(model):
        if make.error is not None:
            return None
        try:
            return fn(model, dataset, options)
        except Exception as exc:  # a picture must never stop training
            make.error = f"the live view is off: {' '.join(str(exc).split())[:300]}"
            return None

    make.error = None
    return make


# --------------------------------------------------------------------------- panels


def _list(a, decimals: int = 4):
    arr = np.asarray(a, dtype=np.float64)
    arr = np.where(np.isfinite(arr), arr, 0.0)
    return np.round(arr, decimals).tolist()


def view(title: str, *panels: dict) -> dict:
    return {"title": title, "panels": [p for p in panels if p is not None]}


def images_panel(images, title: str = "", labels=None, columns: int | None = None) -> dict:
    """Images in [0, 1] (values outside are clipped), ``[n, h, w]`` or ``[n, h, w, c]``."""
    arr = np.clip(np.asarray(images, dtype=np.float64), 0.0, 1.0)
    if arr.ndim == 4 and arr.shape[-1] == 1:
        arr = arr[..., 0]
    return {"kind": "images", "title": title, "images": _list(arr, 3),
            "labels": None if labels is None else [str(x) for x in labels],
            "columns": int(columns or min(len(arr), 8) or 1)}


def heatmap_panel(matrix, title: str = "", x_labels=None, y_labels=None, x_title: str = "",
                  y_title: str = "", levels=None) -> dict:
    m = np.asarray(matrix, dtype=np.float64)
    if m.ndim != 2:
        raise ValueError(f"a heat map needs a 2-D matrix; got shape {m.shape}")
    return {"kind": "heatmap", "title": title, "matrix": _list(m),
            "x_labels": None if x_labels is None else [str(x) for x in x_labels],
            "y_labels": None if y_labels is None else [str(y) for y in y_labels],
            "x_title": x_title, "y_title": y_title,
            "levels": None if levels is None else [float(levels[0]), float(levels[1])]}


def series(name: str, x, y, classes=None, size: float = 5.0, color: str | None = None,
           max_points: int = MAX_POINTS) -> dict:
    """One scatter series (subsampled evenly to ``max_points``)."""
    x, y = np.asarray(x).ravel(), np.asarray(y).ravel()
    idx = np.arange(len(x))
    if len(idx) > max_points:
        idx = np.linspace(0, len(x) - 1, max_points).astype(int)
    out = {"name": name, "x": _list(x[idx]), "y": _list(y[idx]), "size": float(size)}
    if classes is not None:
        out["classes"] = np.asarray(classes).ravel()[idx].astype(int).tolist()
    if color:
        out["color"] = color
    return out


def series_by_class(x, y, classes, class_names=None, size: float = 5.0) -> list[dict]:
    """One scatter series per class, named after it (the app colours the n-th series as class n)."""
    x, y, classes = np.asarray(x).ravel(), np.asarray(y).ravel(), np.asarray(classes).ravel()
    names = list(class_names or [])
    top = int(classes.max()) + 1 if classes.size else 0
    return [series(names[c] if c < len(names) else str(c), x[classes == c], y[classes == c], size=size)
            for c in range(top)]


def scatter_panel(title: str, *series_list: dict, x_title: str = "", y_title: str = "",
                  equal_axes: bool = False) -> dict:
    return {"kind": "scatter", "title": title, "series": list(series_list),
            "x_title": x_title, "y_title": y_title, "equal_axes": bool(equal_axes)}


def bars_panel(title: str, labels, values, y_title: str = "", reference: float | None = None) -> dict:
    return {"kind": "bars", "title": title, "labels": [str(x) for x in labels],
            "values": _list(values), "y_title": y_title,
            "reference": None if reference is None else float(reference)}


def graph_panel(title: str, positions, edges, classes, labels=None, marked=None) -> dict:
    pos = np.asarray(positions, dtype=np.float64)
    return {"kind": "graph", "title": title, "x": _list(pos[:, 0]), "y": _list(pos[:, 1]),
            "edges": [[int(a), int(b)] for a, b in edges],
            "classes": np.asarray(classes).astype(int).ravel().tolist(),
            "labels": None if labels is None else [str(x) for x in labels],
            "marked": None if marked is None else [int(i) for i in marked]}


def lines_panel(title: str, *series_list: dict, x_title: str = "", y_title: str = "",
                equal_axes: bool = False) -> dict:
    return {"kind": "lines", "title": title, "series": list(series_list),
            "x_title": x_title, "y_title": y_title, "equal_axes": bool(equal_axes)}


def line(name: str, x, y, cls: int | None = None) -> dict:
    """One line series; ``cls`` draws it in that class's colour (else the series' own)."""
    out = {"name": name, "x": _list(np.asarray(x).ravel()), "y": _list(np.asarray(y).ravel())}
    if cls is not None:
        out["class"] = int(cls)
    return out


def text_panel(title: str, text: str) -> dict:
    return {"kind": "text", "title": title, "text": str(text)}


PANEL_KINDS = ("images", "heatmap", "scatter", "bars", "graph", "lines", "text")

__all__ = ["view", "view_function", "resolve", "images_panel", "heatmap_panel", "series",
           "series_by_class",
           "scatter_panel", "bars_panel", "graph_panel", "lines_panel", "line", "text_panel",
           "PANEL_KINDS"]
