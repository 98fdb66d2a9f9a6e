"""The architecture gallery: the cheatsheet's models as ready projects.

Each template is built by a Python function (see ``seeds.py`` and the
architecture modules) and written once to ``resources/gallery/SLUG.lforge``
(with ``SLUG.weights.h5`` when it ships weights) by ``python -m models.gallery
--write``. Users get a copy with ``layerforge gallery new SLUG OUT.lforge``;
listing needs neither TensorFlow nor the builders.
"""
from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path
from typing import Callable

from models.paths import gallery_dir


class GalleryError(ValueError):
    """An unknown template, or a template that cannot be written."""


@dataclass(frozen=True)
class Template:
    slug: str
    title: str
    section: str  # the cheatsheet section it illustrates, e.g. "7.1"
    summary: str  # one line, our own words
    builder: Callable  # () -> models.project.Project (with built models for weights)


_REGISTRY: dict[str, Template] = {}


def register(slug: str, title: str, section: str, summary: str):
    """Decorator: register a template builder under ``slug``."""

    def wrap(fn):
        _REGISTRY[slug] = Template(slug, title, section, summary, fn)
        return fn

    return wrap


def _load_builders() -> None:
    """Import every module of this package: each registers its templates."""
    import importlib
    import pkgutil

    import models.gallery as package

    for info in pkgutil.iter_modules(package.__path__):
        if not info.name.startswith("_"):
            importlib.import_module(f"{package.__name__}.{info.name}")


def index_path() -> Path:
    return gallery_dir() / "index.json"


def list_templates() -> list[dict]:
    """Every template's slug, title, section and summary (reads the index; no TensorFlow)."""
    try:
        return json.loads(index_path().read_text(encoding="utf-8"))["templates"]
    except FileNotFoundError:
        raise GalleryError(f"the gallery index {index_path()} is missing; run `make gallery`") from None


def template_path(slug: str) -> Path:
    known = {t["slug"] for t in list_templates()}
    if slug not in known:
        raise GalleryError(
            f"there is no gallery template {slug!r}; `layerforge gallery list` shows them: "
            + ", ".join(sorted(known))
        )
    return gallery_dir() / f"{slug}.lforge"


def open_template(slug: str):
    """The template as an unsaved project (weights included, path cleared)."""
    from models.project import Project

    project = Project.load(template_path(slug))
    project.path = None
    return project


def new_from_template(slug: str, out: str | Path) -> Path:
    """Copy a template to ``out`` (a ``.lforge`` path), weights included."""
    from models.project import SUFFIX, Project

    src = template_path(slug)
    out = Path(out)
    if out.suffix != SUFFIX:
        out = out.with_name(out.name + SUFFIX)
    project = Project.load(src)
    project.meta.setdefault("template", slug)
    return project.save(out)


def write_all(slugs: list[str] | None = None) -> list[Path]:
    """(Re)build template projects into resources/gallery and rewrite the index."""
    from models.layout import layered_layout

    _load_builders()
    out_dir = gallery_dir()
    out_dir.mkdir(parents=True, exist_ok=True)
    written = []
    for slug, t in _REGISTRY.items():
        if slugs and slug not in slugs:
            continue
        project, models = t.builder()
        project.meta.update({"template": slug, "title": t.title, "section": t.section,
                             "summary": t.summary})
        for name, graph in project.graphs.items():
            pos = project.positions(name)
            if not pos:
                pos.update({k: list(v) for k, v in layered_layout(graph).items()})
        project.meta["node_summary"] = node_summary(project.graph)
        written.append(project.save(out_dir / f"{slug}.lforge", models=models))
    ordered = sorted(_REGISTRY.values(), key=lambda t: _section_key(t.section))
    index = [{"slug": t.slug, "title": t.title, "section": t.section, "summary": t.summary}
             for t in ordered]
    index_path().write_text(json.dumps({"templates": index}, indent=1) + "\n", encoding="utf-8")
    return written


def node_summary(graph) -> dict:
    """Each layer's output shapes and parameter count, so a picture of the graph needs no Keras.

    Stored in a template's ``meta["node_summary"]`` (name -> ``{"output_shapes",
    "params"}``, as :class:`models.validate.NodeInfo` holds them).
    """
    from models.validate import validate

    report = validate(graph)
    return {name: {"output_shapes": info.output_shapes, "params": info.params}
            for name, info in report.nodes.items()}


def _section_key(section: str) -> tuple:
    """Sections compare as numbers part by part, so 7.10 comes after 7.9 (ties keep their order)."""
    return tuple(int(p) if p.isdigit() else 0 for p in section.split("."))


def main(argv: list[str] | None = None) -> int:
    import argparse

    parser = argparse.ArgumentParser(prog="python -m models.gallery")
    parser.add_argument("--write", action="store_true", help="rebuild resources/gallery")
    parser.add_argument("slugs", nargs="*")
    args = parser.parse_args(argv)
    if args.write:
        for p in write_all(args.slugs or None):
            print(f"wrote {p}")
    return 0


__all__ = ["GalleryError", "Template", "register", "list_templates", "open_template",
           "new_from_template", "write_all", "node_summary"]
