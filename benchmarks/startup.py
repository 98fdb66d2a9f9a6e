"""Start-up: time to the first painted window, and to Keras being ready behind it.

Runs the app in a fresh process (offscreen unless DISPLAY is set), as a user
starting LayerForge would. Prints a line per measurement and a last line of JSON.

    .venv/bin/python benchmarks/startup.py [--runs 3]
"""
from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]

CHILD = r"""
import time, sys, os
t0 = time.perf_counter()
from PySide6.QtCore import QEvent, QObject, QTimer
from PySide6.QtWidgets import QApplication
app = QApplication(sys.argv[:1])
from desktop.main_window import MainWindow
from desktop.document import engine
marks = {}

class PaintWatch(QObject):
    def eventFilter(self, obj, ev):
        if ev.type() == QEvent.Paint and "painted" not in marks:
            marks["painted"] = time.perf_counter() - t0
            QTimer.singleShot(0, engine().sig_load.emit)
        return False

w = MainWindow(offer_recovery=False)
watch = PaintWatch()
w.view.viewport().installEventFilter(watch)
w.show()
marks["shown"] = time.perf_counter() - t0
def ready(_s):
    marks["keras_ready"] = time.perf_counter() - t0
    app.quit()
engine().worker.sig_keras_ready.connect(ready)
QTimer.singleShot(60000, app.quit)
app.exec()
import json; print(json.dumps(marks))
from desktop.document import _Engine; _Engine.shutdown()
"""


def main() -> int:
    ap = argparse.ArgumentParser()
    ap.add_argument("--runs", type=int, default=3)
    args = ap.parse_args()
    env = dict(os.environ)
    if not env.get("DISPLAY"):
        env["QT_QPA_PLATFORM"] = "offscreen"
    env["LAYERFORGE_RECOVERY_DIR"] = "/tmp/layerforge-bench-recovery"
    painted, keras_ready, screenshot = [], [], []
    for i in range(args.runs):
        out = subprocess.run([sys.executable, "-c", CHILD], capture_output=True, text=True,
                             cwd=ROOT, env=env, timeout=180)
        marks = json.loads(out.stdout.strip().splitlines()[-1])
        painted.append(marks["painted"])
        keras_ready.append(marks["keras_ready"])
        t0 = time.perf_counter()
        subprocess.run([sys.executable, "-m", "models.cli", "open", "--screenshot",
                        "/tmp/layerforge-bench.png"], cwd=ROOT, env=env, check=True,
                       capture_output=True, timeout=180)
        screenshot.append(time.perf_counter() - t0)
        print(f"run {i + 1}: first paint {marks['painted']:.2f} s, Keras ready "
              f"{marks['keras_ready']:.2f} s, `open --screenshot` (empty) {screenshot[-1]:.2f} s")
    result = {
        "first_paint_s": round(statistics.median(painted), 3),
        "keras_ready_s": round(statistics.median(keras_ready), 3),
        "screenshot_empty_s": round(statistics.median(screenshot), 3),
        "runs": args.runs,
    }
    print(json.dumps(result))
    return 0


if __name__ == "__main__":
    sys.exit(main())
