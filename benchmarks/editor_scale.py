"""Editor at scale: opening an 800-layer model, and re-validating a 200-node graph after one edit.

Goals (issue 3): opening, laying out and rendering an imported 800-layer .keras
takes at most twice what plain ``keras.saving.load_model`` takes for the same
file; re-validating after one edit on a 200-node graph takes under 100 ms.
Prints a line per measurement and a last line of JSON.

    .venv/bin/python benchmarks/editor_scale.py
"""
from __future__ import annotations

import json
import os
import statistics
import sys
import tempfile
import time
from pathlib import Path

os.environ.setdefault("QT_QPA_PLATFORM", "offscreen")
sys.path.insert(0, str(Path(__file__).resolve().parents[1]))


def deep_model(n_layers: int, width: int = 16):
    """A residual stack: Dense -> LayerNormalization -> Add, repeated (3 layers a block)."""
    from models import backend

    keras = backend.keras()
    L = keras.layers
    x = keras.Input((width,), name="x")
    h = x
    blocks = max(1, (n_layers - 2) // 3)
    for i in range(blocks):
        y = L.Dense(width, activation="relu", name=f"dense_{i}")(h)
        y = L.LayerNormalization(name=f"norm_{i}")(y)
        h = L.Add(name=f"add_{i}")([h, y])
    out = L.Dense(4, name="head")(h)
    return keras.Model(x, out, name=f"deep_{n_layers}")


def time_open(path: Path) -> float:
    from PySide6.QtWidgets import QApplication

    from desktop.document import Document
    from desktop.editor.view import GraphView
    from models.cli import load_any

    app = QApplication.instance() or QApplication([])
    t0 = time.perf_counter()
    project = load_any(str(path))
    doc = Document(project)
    view = GraphView(doc)
    view.resize(1200, 800)
    view.show()
    view.fit_to_view()
    app.processEvents()
    view.viewport().repaint()
    elapsed = time.perf_counter() - t0
    view.close()
    doc.graph.unsubscribe(doc._on_graph_event)
    return elapsed


def revalidate_ms(n_nodes: int = 200, repeats: int = 15) -> float:
    from models.build import graph_from_model
    from models.validate import Validator

    graph = graph_from_model(deep_model(n_nodes))
    v = Validator()
    v.validate(graph)
    times = []
    name = f"dense_{(n_nodes // 3) // 2}"
    for i in range(repeats):
        graph.set_config(name, {"activation": "tanh" if i % 2 else "relu"})
        t0 = time.perf_counter()
        report = v.validate(graph)
        times.append((time.perf_counter() - t0) * 1000)
        assert report.valid
    return statistics.median(times)


def main() -> int:
    from models import backend

    keras = backend.keras()
    tmp = Path(tempfile.mkdtemp())
    model = deep_model(800)
    path = tmp / "deep800.keras"
    model.save(path)
    n = len(model.layers)
    keras.saving.load_model(path, compile=False)  # warm-up
    loads = []
    for _ in range(3):
        t0 = time.perf_counter()
        keras.saving.load_model(path, compile=False)
        loads.append(time.perf_counter() - t0)
    load_s = statistics.median(loads)
    time_open(path)  # warm-up (Qt, fonts)
    opens = [time_open(path) for _ in range(3)]
    open_s = statistics.median(opens)
    print(f"{n} layers: keras.saving.load_model {load_s:.2f} s; LayerForge open + layout + render "
          f"{open_s:.2f} s (ratio {open_s / load_s:.2f}, goal <= 2)")
    reval = revalidate_ms(200)
    print(f"200 nodes: re-validation after one edit {reval:.1f} ms (goal < 100 ms)")
    print(json.dumps({"layers": n, "load_model_s": round(load_s, 3), "open_render_s": round(open_s, 3),
                      "ratio": round(open_s / load_s, 3), "revalidate_200_ms": round(reval, 1)}))
    return 0


if __name__ == "__main__":
    sys.exit(main())
