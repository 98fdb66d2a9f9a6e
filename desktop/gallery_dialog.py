"""New from Gallery: pick a template of the cheatsheet's architectures, seeing its graph and what it teaches.

The templates are listed from the gallery index at once; each one's picture
(its graph drawn by the canvas's scene, see :mod:`desktop.editor.thumbnail`)
is drawn afterwards, one per event-loop turn, so the dialog opens at once and
stays responsive. Pictures are kept for the session, keyed by the template
file and its modification time. Nothing here loads TensorFlow.
"""
from __future__ import annotations

from pathlib import Path

from PySide6.QtCore import QSize, Qt, QTimer
from PySide6.QtGui import QIcon, QImage, QPixmap
from PySide6.QtWidgets import (
    QDialog,
    QDialogButtonBox,
    QHBoxLayout,
    QLabel,
    QListView,
    QListWidget,
    QListWidgetItem,
    QVBoxLayout,
    QWidget,
)

# Most graphs run top to bottom, taller than wide: portrait pictures fit them best.
PICTURE = QSize(300, 540)   # the chosen template's picture
ICON = QSize(120, 150)      # each template's picture in the grid

# (template path, modification time, width, height) -> picture; kept while the app runs.
_PICTURES: dict[tuple, QImage] = {}


def _pictures(path: Path) -> tuple[QImage, QImage, dict]:
    """The template's icon and large picture (both cached), and what the detail pane says.

    The last item is the project's meta (explanation, section...) plus ``data``
    (the dataset's name) and ``quality`` (the metric it is judged by), where set.
    """
    from desktop.editor.thumbnail import render_thumbnail
    from models.project import Project

    stamp = (str(path), path.stat().st_mtime_ns)
    project = Project.load(path)
    images = []
    for size in (ICON, PICTURE):
        key = (*stamp, size.width(), size.height())
        if key not in _PICTURES:
            _PICTURES[key] = render_thumbnail(project, size)
        images.append(_PICTURES[key])
    about = dict(project.meta)
    if isinstance(project.dataset, dict):
        about["data"] = project.dataset.get("name") or project.dataset.get("path")
    quality = project.recipe.get("quality")
    about["quality"] = quality.get("metric") if isinstance(quality, dict) else quality
    return images[0], images[1], about


class GalleryDialog(QDialog):
    """The gallery as a grid of pictures, with the chosen template's explanation beside it.

    Attributes:
        selected_slug: the chosen template's slug after ``accept`` (None before, or
            when nothing was chosen).
    """

    def __init__(self, parent=None):
        super().__init__(parent)
        from models import gallery

        self.setWindowTitle("New from Gallery")
        self.resize(1160, 680)
        self.selected_slug: str | None = None
        self._meta: dict[str, dict] = {}
        self._images: dict[str, QImage] = {}
        self._errors: dict[str, str] = {}

        self.list = QListWidget()
        self.list.setViewMode(QListView.ViewMode.IconMode)
        self.list.setIconSize(ICON)
        self.list.setGridSize(QSize(ICON.width() + 34, ICON.height() + 66))  # 3 text lines
        self.list.setResizeMode(QListView.ResizeMode.Adjust)
        self.list.setMovement(QListView.Movement.Static)
        self.list.setWordWrap(True)
        self.list.setSpacing(4)
        blank = QPixmap(ICON)
        blank.fill(Qt.GlobalColor.transparent)
        for t in gallery.list_templates():
            # The section first: a long title is cut at its end, never the section.
            item = QListWidgetItem(QIcon(blank), f"§{t['section']}\n{t['title']}")
            item.setData(Qt.ItemDataRole.UserRole, t)
            item.setToolTip(t["summary"])
            item.setTextAlignment(Qt.AlignmentFlag.AlignHCenter | Qt.AlignmentFlag.AlignTop)
            self.list.addItem(item)

        self.picture = QLabel(alignment=Qt.AlignmentFlag.AlignCenter)
        self.picture.setFixedSize(PICTURE)
        self.picture.setStyleSheet("border: 1px solid palette(mid);")
        self.heading = QLabel(wordWrap=True)
        self.heading.setTextFormat(Qt.TextFormat.RichText)
        self.section = QLabel(wordWrap=True)
        self.section.setTextFormat(Qt.TextFormat.RichText)
        self.explanation = QLabel(wordWrap=True)
        self.explanation.setAlignment(Qt.AlignmentFlag.AlignTop | Qt.AlignmentFlag.AlignLeft)
        self.explanation.setTextInteractionFlags(Qt.TextInteractionFlag.TextSelectableByMouse)
        text = QWidget()
        text.setFixedWidth(320)
        column = QVBoxLayout(text)
        column.setContentsMargins(0, 0, 0, 0)
        column.addWidget(self.heading)
        column.addWidget(self.section)
        column.addSpacing(6)
        column.addWidget(self.explanation)
        self.facts = QLabel(wordWrap=True)
        self.facts.setTextFormat(Qt.TextFormat.RichText)
        column.addWidget(self.facts)
        column.addStretch(1)

        buttons = QDialogButtonBox(QDialogButtonBox.StandardButton.Ok
                                   | QDialogButtonBox.StandardButton.Cancel)
        buttons.button(QDialogButtonBox.StandardButton.Ok).setText("Create")
        buttons.accepted.connect(self.accept)
        buttons.rejected.connect(self.reject)
        body = QHBoxLayout()
        body.addWidget(self.list, 1)
        body.addWidget(self.picture, 0, Qt.AlignmentFlag.AlignTop)
        body.addWidget(text)
        lay = QVBoxLayout(self)
        lay.addWidget(QLabel("Start from one of the cheatsheet's architectures:"))
        lay.addLayout(body, 1)
        lay.addWidget(buttons)

        self.list.currentItemChanged.connect(lambda cur, _prev: self._show(cur))
        self.list.itemDoubleClicked.connect(lambda _item: self.accept())
        self._pending = list(range(self.list.count()))
        self._timer = QTimer(self)
        self._timer.setInterval(0)
        self._timer.timeout.connect(self._draw_next)
        if self.list.count():
            self.list.setCurrentRow(0)
            self._timer.start()

    # ------------------------------------------------------------------ pictures

    @property
    def pictures_pending(self) -> int:
        """How many templates still wait for their picture."""
        return len(self._pending)

    def _load(self, item: QListWidgetItem) -> None:
        """Draw (or fetch) one template's picture and read its meta, once."""
        from models import gallery

        slug = item.data(Qt.ItemDataRole.UserRole)["slug"]
        if slug in self._images or slug in self._errors:
            return
        try:
            icon, image, meta = _pictures(gallery.template_path(slug))
        except (OSError, ValueError) as exc:  # a missing or damaged template file
            self._errors[slug] = f"This template cannot be read: {exc}"
            return
        self._images[slug], self._meta[slug] = image, meta
        item.setIcon(QIcon(QPixmap.fromImage(icon)))

    def _draw_next(self) -> None:
        if not self._pending:
            self._timer.stop()
            return
        item = self.list.item(self._pending.pop(0))
        self._load(item)

    # ------------------------------------------------------------------ detail

    def _show(self, item: QListWidgetItem | None) -> None:
        from models.cheatsheet import section_title

        if item is None:
            for label in (self.heading, self.section, self.explanation, self.facts):
                label.clear()
            self.picture.clear()
            return
        t = item.data(Qt.ItemDataRole.UserRole)
        self._load(item)
        slug = t["slug"]
        image = self._images.get(slug)
        if image is not None:
            self.picture.setPixmap(QPixmap.fromImage(image))
        else:
            self.picture.setText("no picture")
        meta = self._meta.get(slug, {})
        self.heading.setText(f"<b style='font-size: 13pt'>{_escape(t['title'])}</b>")
        title = section_title(t["section"])
        self.section.setText(f"Cheatsheet §{_escape(t['section'])}"
                             + (f": <i>{_escape(title)}</i>" if title else ""))
        text = self._errors.get(slug) or meta.get("explanation") or t["summary"]
        self.explanation.setText(text)
        facts = []
        if meta.get("data"):
            facts.append(f"Trains on <b>{_escape(meta['data'])}</b>")
        if meta.get("quality"):
            facts.append(f"judged by <b>{_escape(meta['quality'])}</b>")
        self.facts.setText(", ".join(facts) + "." if facts else "")

    def accept(self):
        item = self.list.currentItem()
        self.selected_slug = item.data(Qt.ItemDataRole.UserRole)["slug"] if item else None
        super().accept()


def _escape(text: str) -> str:
    return str(text).replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;")


__all__ = ["GalleryDialog"]
