"""The core never loads Qt: importing models, building, checking and training a model."""
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]

SCRIPT = r"""
import sys
import numpy as np
import models
from models import backend
from models.build import build_model, graph_from_model
from models.validate import validate
from models.project import new_project
import models.cli, models.graph, models.project, models.validate, models.build, models.gallery
keras = backend.keras()
x = keras.Input((4,))
model = keras.Model(x, keras.layers.Dense(2, activation="softmax")(keras.layers.Dense(8)(x)))
graph = graph_from_model(model)
assert validate(graph).valid
m = build_model(graph)
m.compile("adam", "sparse_categorical_crossentropy")
m.fit(np.random.rand(16, 4), np.random.randint(0, 2, 16), epochs=1, verbose=0)
bad = [m for m in sys.modules if m.split(".")[0] in ("PySide6", "pyqtgraph", "desktop", "shiboken6")]
print("LOADED:", bad)
"""


def test_models_package_loads_no_qt():
    out = subprocess.run([sys.executable, "-c", SCRIPT], capture_output=True, text=True,
                         cwd=ROOT, timeout=300)
    assert out.returncode == 0, out.stderr
    assert out.stdout.strip().splitlines()[-1] == "LOADED: []"


def test_no_module_in_models_imports_qt_or_desktop():
    import re

    pattern = re.compile(r"^\s*(from|import)\s+(PySide6|pyqtgraph|desktop|shiboken6)\b", re.M)
    offenders = [str(p.relative_to(ROOT)) for p in (ROOT / "models").rglob("*.py")
                 if pattern.search(p.read_text(encoding="utf-8"))]
    assert offenders == []
