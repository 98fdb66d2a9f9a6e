"""New from Gallery: pictures of every template's graph, its explanation and section, no TensorFlow."""
import json
import subprocess
import sys
from pathlib import Path

import pytest
from PySide6.QtCore import Qt

from models import gallery

ROOT = Path(__file__).resolve().parents[2]


def _dialog(qtbot):
    from desktop.gallery_dialog import GalleryDialog

    dlg = GalleryDialog()
    qtbot.addWidget(dlg)
    dlg.show()
    qtbot.waitUntil(lambda: dlg.pictures_pending == 0, timeout=20000)
    return dlg


def _row(dlg, slug):
    for i in range(dlg.list.count()):
        if dlg.list.item(i).data(Qt.ItemDataRole.UserRole)["slug"] == slug:
            return i
    raise AssertionError(f"{slug} is not listed")


def _has_drawing(image) -> bool:
    """Whether the image holds more than its background colour."""
    background = image.pixel(0, 0)
    step = 4
    return any(image.pixel(x, y) != background
               for x in range(0, image.width(), step) for y in range(0, image.height(), step))


def test_every_template_is_shown_with_a_picture_of_its_graph(qtbot):
    dlg = _dialog(qtbot)
    slugs = [t["slug"] for t in gallery.list_templates()]
    assert [dlg.list.item(i).data(Qt.ItemDataRole.UserRole)["slug"]
            for i in range(dlg.list.count())] == slugs
    for i, slug in enumerate(slugs):
        assert _has_drawing(dlg._images[slug]), f"{slug}'s picture is blank"
        icon = dlg.list.item(i).icon().pixmap(dlg.list.iconSize()).toImage()
        assert _has_drawing(icon), f"{slug}'s icon is blank"
        section = dlg.list.item(i).data(Qt.ItemDataRole.UserRole)["section"]
        assert dlg.list.item(i).text().startswith(f"§{section}")


def test_choosing_a_template_shows_its_explanation_and_cheatsheet_section(qtbot):
    dlg = _dialog(qtbot)
    dlg.list.setCurrentRow(_row(dlg, "gcn"))
    meta = gallery.open_template("gcn").meta
    assert dlg.explanation.text() == meta["explanation"]
    assert "§7.6.2" in dlg.section.text() and "Graph Convolutional Networks (GCN)" in dlg.section.text()
    assert "Graph convolutional network" in dlg.heading.text()
    assert not dlg.picture.pixmap().isNull()
    dlg.list.itemDoubleClicked.emit(dlg.list.currentItem())
    assert dlg.result() == dlg.DialogCode.Accepted and dlg.selected_slug == "gcn"


def test_pictures_are_drawn_once_per_session(qtbot, monkeypatch):
    import desktop.editor.thumbnail as thumbnail

    _dialog(qtbot)  # fills the cache
    calls = []
    real = thumbnail.render_thumbnail
    monkeypatch.setattr(thumbnail, "render_thumbnail", lambda *a: calls.append(a) or real(*a))
    _dialog(qtbot)
    assert calls == []


def test_a_damaged_template_is_named_not_fatal(qtbot, tmp_path, monkeypatch):
    (tmp_path / "gallery").mkdir()
    index = {"templates": [{"slug": "broken", "title": "Broken", "section": "7.1",
                            "summary": "a damaged file"}]}
    (tmp_path / "gallery" / "index.json").write_text(json.dumps(index))
    (tmp_path / "gallery" / "broken.lforge").write_text('{"format": "layerforge-project",')
    monkeypatch.setenv("LAYERFORGE_RESOURCES", str(tmp_path))
    dlg = _dialog(qtbot)
    assert dlg.list.count() == 1
    assert dlg.explanation.text().startswith("This template cannot be read")
    assert dlg.picture.text() == "no picture"


def test_the_dialog_never_loads_tensorflow(tmp_path):
    script = (
        "import sys\n"
        "from PySide6.QtWidgets import QApplication\n"
        "app = QApplication([])\n"
        "from desktop.gallery_dialog import GalleryDialog\n"
        "d = GalleryDialog(); d.show()\n"
        "while d.pictures_pending: app.processEvents()\n"
        "for i in range(d.list.count()): d.list.setCurrentRow(i)\n"
        "print('tensorflow' in sys.modules, 'keras' in sys.modules, len(d._images))\n"
    )
    done = subprocess.run([sys.executable, "-c", script], cwd=ROOT, capture_output=True,
                          text=True, timeout=120, env={**_env(), "QT_QPA_PLATFORM": "offscreen"})
    assert done.returncode == 0, done.stderr
    assert done.stdout.split() == ["False", "False", str(len(gallery.list_templates()))]


def _env():
    import os

    return {k: v for k, v in os.environ.items() if k != "LAYERFORGE_RESOURCES"}


@pytest.mark.parametrize("slug", ["gat", "moe"])
def test_pictures_carry_the_stored_shapes(slug, qtbot):
    """The cards in a picture show the shapes stored with the template, not "?"."""
    from desktop.editor.thumbnail import _stored_report

    project = gallery.open_template(slug)
    report = _stored_report(project)
    assert set(report.nodes) == set(project.graph.nodes)
    assert all(info.output_shapes for info in report.nodes.values())
