"""Start the desktop app: the window first, TensorFlow behind it.

``main(argv)`` is what ``layerforge open [FILE] [--screenshot PNG]`` calls.
Nothing here imports TensorFlow; the window is painted before Keras loads in
the worker thread (see :mod:`desktop.document`).
"""
from __future__ import annotations

import argparse
import os
import sys
import time

_T0 = time.perf_counter()


def _parse(argv):
    p = argparse.ArgumentParser(prog="layerforge open")
    p.add_argument("file", nargs="?")
    p.add_argument("--screenshot", metavar="PNG")
    p.add_argument("--no-restore", action="store_true", help="do not offer autosave recovery")
    return p.parse_args(argv)


def main(argv: list[str] | None = None) -> int:
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")
    args = _parse(argv if argv is not None else sys.argv[1:])
    if args.screenshot and "QT_QPA_PLATFORM" not in os.environ and not os.environ.get("DISPLAY") \
            and sys.platform.startswith("linux"):
        os.environ["QT_QPA_PLATFORM"] = "offscreen"

    from PySide6.QtCore import QTimer
    from PySide6.QtWidgets import QApplication

    _quiet_offscreen_notes()
    app = QApplication.instance() or QApplication(sys.argv[:1])
    app.setApplicationName("LayerForge")
    app.setOrganizationName("LayerForge")
    app.setApplicationDisplayName("LayerForge")
    from desktop.icon import app_icon

    app.setWindowIcon(app_icon())  # every window's, and the taskbar's where the system asks Qt
    from desktop.collector import install

    install(app)  # Python's garbage collector runs on this thread only (see desktop.collector)

    from desktop.main_window import MainWindow

    window = MainWindow(offer_recovery=not (args.no_restore or args.screenshot))
    window.show()
    from desktop.document import engine

    # Keras loads behind the painted window (a screenshot of an empty project never needs it).
    if not (args.screenshot and not args.file):
        QTimer.singleShot(0, engine().sig_load.emit)
    if args.file:
        QTimer.singleShot(0, lambda: window.open_path(args.file, ask=False))
    if args.screenshot:
        return _screenshot_and_exit(app, window, args.screenshot, bool(args.file))
    code = app.exec()
    _shutdown(code)
    return code


def _quiet_offscreen_notes() -> None:
    """Drop Qt's notes about what the offscreen platform cannot do (native size hints...).

    They are not problems of the app; everything else Qt says still reaches stderr.
    """
    from PySide6.QtCore import qInstallMessageHandler

    def handler(_mode, _context, message):
        if "This plugin does not support" in message:
            return
        sys.stderr.write(message + "\n")

    qInstallMessageHandler(handler)


def _screenshot_and_exit(app, window, path: str, has_file: bool) -> int:
    """Wait until the graph is drawn with its shapes, save the window, quit."""
    from PySide6.QtCore import QTimer

    deadline = time.perf_counter() + 120
    state = {"code": 0}

    def ready() -> bool:
        doc = window.doc
        if has_file and not window.loaded_once:
            return False
        return window.isVisible() and not doc.validation_pending and doc.report is not None

    def poll():
        if ready():
            app.processEvents()
            window.view.initial_fit()
            app.processEvents()
            ok = window.grab().save(path)
            elapsed = time.perf_counter() - _T0
            print(f"screenshot saved to {path} after {elapsed:.2f} s" if ok
                  else f"could not write {path}")
            state["code"] = 0 if ok else 1
            app.quit()
        elif time.perf_counter() > deadline:
            print("timed out waiting for the model to be shown", file=sys.stderr)
            state["code"] = 1
            app.quit()
        else:
            QTimer.singleShot(30, poll)

    QTimer.singleShot(0, poll)
    app.exec()
    window.discard_recovery()
    _shutdown(state["code"])
    return state["code"]


def _shutdown(code: int = 0):
    from desktop.document import _Engine

    if not _Engine.shutdown(timeout_ms=3000):
        # The worker is still inside TensorFlow's import, which cannot be interrupted;
        # everything the user has is saved by now, so leave without waiting for it.
        sys.stdout.flush()
        sys.stderr.flush()
        os._exit(code)


if __name__ == "__main__":
    sys.exit(main())
