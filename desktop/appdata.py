"""Where the app keeps its own files (recovery copies, training runs of unsaved projects)."""
from __future__ import annotations

import os
from pathlib import Path

from PySide6.QtCore import QStandardPaths


def app_data_dir() -> Path:
    """``LAYERFORGE_DATA_DIR`` if set (tests, portable installs), else the platform's app-data folder."""
    base = os.environ.get("LAYERFORGE_DATA_DIR") or QStandardPaths.writableLocation(
        QStandardPaths.AppDataLocation)
    if not base:  # no writable location known on this system
        import tempfile

        base = os.path.join(tempfile.gettempdir(), "layerforge")
    return Path(base)
