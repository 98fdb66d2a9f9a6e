"""Where LayerForge's bundled resources live (gallery projects, cheatsheet, icons)."""
from __future__ import annotations

import os
import sys
from pathlib import Path


def resources_dir() -> Path:
    """The ``resources`` folder: from the environment, a frozen bundle, or the source tree."""
    env = os.environ.get("LAYERFORGE_RESOURCES")
    if env:
        return Path(env)
    bundle = getattr(sys, "_MEIPASS", None)  # a PyInstaller bundle
    if bundle:
        return Path(bundle) / "resources"
    return Path(__file__).resolve().parent.parent / "resources"


def gallery_dir() -> Path:
    return resources_dir() / "gallery"


def cheatsheet_dir() -> Path:
    return resources_dir() / "cheatsheet"
