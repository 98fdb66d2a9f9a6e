"""New from Gallery: pick a template of the cheatsheet's architectures."""
from __future__ import annotations

from PySide6.QtCore import Qt
from PySide6.QtWidgets import (
    QDialog,
    QDialogButtonBox,
    QLabel,
    QListWidget,
    QListWidgetItem,
    QVBoxLayout,
)


class GalleryDialog(QDialog):
    def __init__(self, parent=None):
        super().__init__(parent)
        from models import gallery

        self.setWindowTitle("New from Gallery")
        self.resize(560, 420)
        self.selected_slug: str | None = None
        self.list = QListWidget()
        for t in gallery.list_templates():
            item = QListWidgetItem(f"{t['title']}   §{t['section']}")
            item.setData(Qt.UserRole, t["slug"])
            item.setToolTip(t["summary"])
            self.list.addItem(item)
        self.detail = QLabel(wordWrap=True)
        self.list.currentItemChanged.connect(
            lambda cur, _prev: self.detail.setText(cur.toolTip() if cur else ""))
        self.list.itemDoubleClicked.connect(lambda _i: self.accept())
        buttons = QDialogButtonBox(QDialogButtonBox.Ok | QDialogButtonBox.Cancel)
        buttons.accepted.connect(self.accept)
        buttons.rejected.connect(self.reject)
        lay = QVBoxLayout(self)
        lay.addWidget(QLabel("Start from one of the cheatsheet's architectures:"))
        lay.addWidget(self.list, 1)
        lay.addWidget(self.detail)
        lay.addWidget(buttons)
        if self.list.count():
            self.list.setCurrentRow(0)

    def accept(self):
        item = self.list.currentItem()
        self.selected_slug = item.data(Qt.UserRole) if item else None
        super().accept()
