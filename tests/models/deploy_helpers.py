"""Trained projects for the deploy tests, made once per test session and shared by the files."""
from __future__ import annotations

import atexit
import functools
import shutil
import tempfile
from pathlib import Path


@functools.lru_cache(maxsize=None)
def trained(slug: str = "cnn", epochs: int | None = 6) -> Path:
    """A gallery template trained for ``epochs`` (``None``: its quick preset), saved with weights.

    Returns:
        The path of the saved ``.lforge`` (its weights file beside it).
    """
    from models import gallery
    from models.training import train

    project = gallery.open_template(slug)
    result = train(project, quick=epochs is None, epochs=epochs, evaluate=False)
    folder = Path(tempfile.mkdtemp(prefix=f"layerforge-test-{slug}-"))
    atexit.register(shutil.rmtree, folder, True)
    return project.save(folder / f"{slug}.lforge", models={project.main_name: result.model})
