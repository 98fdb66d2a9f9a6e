"""Generated datasets for the gallery's tasks (sequences to reverse, graphs, rings of Gaussians...).

Each module here calls :func:`models.data.register_builtin` for its datasets
when imported; :mod:`models.data` imports this package the first time a
built-in name is not one of its own. Every module is found and imported
automatically, so adding a dataset means adding a module. All data is made
here from a fixed seed or ships with a package: nothing is downloaded.
"""
from __future__ import annotations

import importlib
import pkgutil


def _import_all() -> None:
    for info in pkgutil.iter_modules(__path__):
        if not info.name.startswith("_"):
            importlib.import_module(f"{__name__}.{info.name}")


_import_all()
