"""The ``.lforge`` project file: the graph(s), view state, data and training recipe.

A project is a JSON document::

    {"format": "layerforge-project", "version": 1,
     "graphs": {"model": {...graph...}},      # the first graph is the main model
     "view": {"model": {"positions": {...}, "collapsed": [...]}},
     "dataset": {...} | null, "recipe": {...}, "meta": {...}}

Trained weights live beside it as ``<name>.weights.h5`` (one file per graph
that has weights: ``<name>.weights.h5`` for the main model,
``<name>.<graph>.weights.h5`` for the others). Saves are atomic: a temporary
file in the same folder, flushed, then renamed over the target. Reading never
writes; a damaged or newer file gives a :class:`ProjectError` saying what is
wrong.
"""
from __future__ import annotations

import copy
import json
import os
import tempfile
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from models.graph import Graph, GraphError

FORMAT = "layerforge-project"
VERSION = 1
SUFFIX = ".lforge"


class ProjectError(ValueError):
    """A project file could not be read or written; the message says why."""


def default_recipe() -> dict:
    """The training recipe a new project starts with."""
    return {
        "optimizer": {"class_name": "Adam", "config": {"learning_rate": 0.001}},
        "loss": "sparse_categorical_crossentropy",
        "metrics": ["accuracy"],
        "epochs": 10,
        "batch_size": 32,
        "val_fraction": 0.1,
        "test_fraction": 0.2,
        "seed": 0,
    }


@dataclass
class Project:
    """An open project.

    Attributes:
        graphs: named graphs; the first is the main model. Templates with
            several models (generator and discriminator...) hold one each.
        view: per graph, view state only: ``positions`` (name -> [x, y]),
            ``collapsed`` (nested-model nodes shown closed) and the like.
        dataset: where the data comes from, e.g. ``{"source": "builtin",
            "name": "digits"}``; None when not chosen yet.
        recipe: the training recipe.
        meta: title, description, gallery slug, cheatsheet section...
        path: where it was last loaded from or saved to.
    """

    graphs: dict[str, Graph] = field(default_factory=lambda: {"model": Graph("model")})
    view: dict[str, dict] = field(default_factory=dict)
    dataset: dict | None = None
    recipe: dict = field(default_factory=default_recipe)
    meta: dict = field(default_factory=dict)
    path: Path | None = None
    # In-memory weights per graph name: a list of numpy arrays (model.get_weights()
    # order) or a path to a .weights.h5 file to load lazily.
    weights: dict[str, Any] = field(default_factory=dict)

    @property
    def graph(self) -> Graph:
        """The main model's graph."""
        return next(iter(self.graphs.values()))

    @property
    def main_name(self) -> str:
        return next(iter(self.graphs))

    @property
    def name(self) -> str:
        return self.path.stem if self.path else self.meta.get("title", "untitled")

    def positions(self, graph_name: str | None = None) -> dict[str, list[float]]:
        view = self.view.setdefault(graph_name or self.main_name, {})
        return view.setdefault("positions", {})

    # ------------------------------------------------------------------ json

    def to_dict(self) -> dict:
        return {
            "format": FORMAT,
            "version": VERSION,
            "graphs": {k: g.to_dict() for k, g in self.graphs.items()},
            "view": self.view,
            "dataset": self.dataset,
            "recipe": self.recipe,
            "meta": self.meta,
        }

    @classmethod
    def from_dict(cls, data: Any, source: str = "project") -> "Project":
        if not isinstance(data, dict):
            raise ProjectError(f"{source}: not a LayerForge project (the top level is not an object)")
        fmt = data.get("format")
        if fmt != FORMAT:
            raise ProjectError(
                f"{source}: not a LayerForge project (format is {fmt!r}, expected {FORMAT!r})"
            )
        version = data.get("version")
        if not isinstance(version, int):
            raise ProjectError(f"{source}: the project has no valid format version")
        if version > VERSION:
            raise ProjectError(
                f"{source}: this project was saved by a newer LayerForge (format version "
                f"{version}; this version reads up to {VERSION}). Update LayerForge to open it"
            )
        graphs_data = data.get("graphs")
        if not isinstance(graphs_data, dict) or not graphs_data:
            raise ProjectError(f"{source}: the project has no model graph ('graphs' is missing)")
        graphs = {}
        for key, gd in graphs_data.items():
            try:
                graphs[key] = Graph.from_dict(gd)
            except (GraphError, KeyError, TypeError, ValueError) as exc:
                raise ProjectError(f"{source}: graph {key!r} is damaged: {exc}") from None
        recipe = data.get("recipe") or default_recipe()
        if not isinstance(recipe, dict):
            raise ProjectError(f"{source}: 'recipe' must be an object")
        return cls(
            graphs=graphs,
            view=data.get("view") or {},
            dataset=data.get("dataset"),
            recipe=recipe,
            meta=data.get("meta") or {},
        )

    # ------------------------------------------------------------------ files

    def weights_path(self, graph_name: str | None = None, path: Path | None = None) -> Path:
        base = Path(path or self.path)
        graph_name = graph_name or self.main_name
        stem = base.name[: -len(SUFFIX)] if base.name.endswith(SUFFIX) else base.stem
        if graph_name == self.main_name:
            return base.with_name(f"{stem}.weights.h5")
        return base.with_name(f"{stem}.{graph_name}.weights.h5")

    def save(self, path: str | Path | None = None, models: dict[str, Any] | None = None) -> Path:
        """Write the project atomically, and the weights of any given built models beside it.

        Args:
            path: where to save (default: where it came from).
            models: graph name -> built ``keras.Model`` whose weights to save.
                Weights already on disk beside the old path are carried over.
        """
        target = Path(path or self.path or "")
        if not str(target) or target.is_dir():
            raise ProjectError("choose a file name to save the project")
        if target.suffix != SUFFIX:
            target = target.with_name(target.name + SUFFIX)
        target.parent.mkdir(parents=True, exist_ok=True)
        text = json.dumps(self.to_dict(), indent=1, sort_keys=False, default=_json_default)
        models = models or {}
        for graph_name in self.graphs:
            dest = self.weights_path(graph_name, target)
            if graph_name in models:
                _atomic_keras_weights(models[graph_name], dest)
            else:
                src = self.weights.get(graph_name)
                if src is None and self.path is not None:
                    old = self.weights_path(graph_name)
                    src = old if old.exists() else None
                if isinstance(src, (str, Path)) and Path(src).exists() and Path(src) != dest:
                    if Path(src).suffix == ".keras":
                        # Weights still inside an imported .keras archive.
                        _atomic_keras_weights(self.build(graph_name), dest)
                    else:
                        _atomic_copy(Path(src), dest)
                    self.weights[graph_name] = dest
                elif isinstance(src, list):
                    model = self.build(graph_name)
                    _atomic_keras_weights(model, dest)
                    self.weights[graph_name] = dest
        _atomic_write_text(target, text)
        self.path = target
        for graph_name in models:
            self.weights[graph_name] = self.weights_path(graph_name, target)
        return target

    @classmethod
    def load(cls, path: str | Path) -> "Project":
        """Read a project. Never modifies the file; raises ProjectError with the reason."""
        path = Path(path)
        if not path.exists():
            raise ProjectError(f"{path}: no such file")
        try:
            raw = path.read_bytes()
        except OSError as exc:
            raise ProjectError(f"{path}: cannot be read ({exc.strerror})") from None
        if not raw.strip():
            raise ProjectError(f"{path}: the file is empty")
        try:
            data = json.loads(raw.decode("utf-8"))
        except UnicodeDecodeError:
            raise ProjectError(f"{path}: not a LayerForge project (not UTF-8 text)") from None
        except json.JSONDecodeError as exc:
            where = f"line {exc.lineno}, column {exc.colno}"
            # An unterminated string runs to the end of the file, so it is truncation too.
            if exc.pos >= len(raw.rstrip()) - 1 or exc.msg.startswith("Unterminated string"):
                raise ProjectError(
                    f"{path}: the file is truncated (it ends early, at {where}); "
                    "restore it from a backup or the autosave"
                ) from None
            raise ProjectError(f"{path}: the file is corrupt at {where}: {exc.msg}") from None
        project = cls.from_dict(data, source=str(path))
        project.path = path
        for graph_name in project.graphs:
            wp = project.weights_path(graph_name)
            if wp.exists():
                project.weights[graph_name] = wp
        return project

    # ------------------------------------------------------------------ models

    def build(self, graph_name: str | None = None, *, with_weights: bool = True):
        """Build a graph's Keras model, with its saved weights when it has some."""
        from models.build import build_model

        graph_name = graph_name or self.main_name
        model = build_model(self.graphs[graph_name])
        if with_weights:
            src = self.weights.get(graph_name)
            if isinstance(src, (str, Path)):
                try:
                    model.load_weights(str(src))
                except Exception as exc:
                    raise ProjectError(
                        f"{src}: the saved weights do not fit this model ({exc}). The graph "
                        "was changed since they were trained; train again to replace them"
                    ) from None
            elif isinstance(src, list):
                model.set_weights(src)
        return model

    def has_weights(self, graph_name: str | None = None) -> bool:
        return (graph_name or self.main_name) in self.weights

    def copy(self) -> "Project":
        p = Project.from_dict(copy.deepcopy(self.to_dict()))
        p.path = self.path
        p.weights = dict(self.weights)
        return p


def new_project(graph: Graph | None = None, **kwargs) -> Project:
    g = graph or Graph("model")
    return Project(graphs={"model": g}, **kwargs)


def _json_default(obj):
    try:
        import numpy as np

        if isinstance(obj, np.generic):
            return obj.item()
        if isinstance(obj, np.ndarray):
            return obj.tolist()
    except ImportError:  # pragma: no cover
        pass
    if isinstance(obj, tuple):
        return list(obj)
    if isinstance(obj, Path):
        return str(obj)
    raise TypeError(f"cannot store {type(obj).__name__} in a project file")


def _file_mode(path: Path) -> int:
    """The mode a new file would get (mkstemp makes 0600; users expect their umask)."""
    try:
        return path.stat().st_mode & 0o777
    except FileNotFoundError:
        umask = os.umask(0)
        os.umask(umask)
        return 0o666 & ~umask


def _atomic_write_text(path: Path, text: str) -> None:
    mode = _file_mode(path)
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
    try:
        with os.fdopen(fd, "w", encoding="utf-8") as f:
            f.write(text)
            f.flush()
            os.fsync(f.fileno())
        os.chmod(tmp, mode)
        os.replace(tmp, path)
    except BaseException:
        if os.path.exists(tmp):
            os.unlink(tmp)
        raise


def _atomic_copy(src: Path, dest: Path) -> None:
    import shutil

    mode = _file_mode(dest)
    fd, tmp = tempfile.mkstemp(prefix=f".{dest.name}.", suffix=".tmp", dir=dest.parent)
    os.close(fd)
    try:
        shutil.copyfile(src, tmp)
        os.chmod(tmp, mode)
        os.replace(tmp, dest)
    except BaseException:
        if os.path.exists(tmp):
            os.unlink(tmp)
        raise


def _atomic_keras_weights(model, dest: Path) -> None:
    # Keras insists on the ".weights.h5" ending, so the temp name keeps it.
    fd, tmp = tempfile.mkstemp(prefix=f".{dest.name[:-len('.weights.h5')]}.tmp-",
                               suffix=".weights.h5", dir=dest.parent)
    os.close(fd)
    os.unlink(tmp)
    try:
        model.save_weights(tmp)
        os.replace(tmp, dest)
    except BaseException:
        if os.path.exists(tmp):
            os.unlink(tmp)
        raise
