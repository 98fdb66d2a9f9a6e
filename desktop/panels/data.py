"""The data panel: choose the project's data and preview it (a table or an image grid)."""
from __future__ import annotations

from pathlib import Path

import numpy as np
from PySide6.QtCore import Qt, Signal
from PySide6.QtGui import QImage, QPixmap
from PySide6.QtWidgets import (
    QComboBox,
    QFileDialog,
    QGridLayout,
    QHBoxLayout,
    QLabel,
    QPushButton,
    QScrollArea,
    QStackedWidget,
    QTableWidget,
    QTableWidgetItem,
    QVBoxLayout,
    QWidget,
)


def spec_label(spec: dict | None) -> str:
    if not spec:
        return "no data chosen"
    if spec.get("source") in ("builtin", "keras"):
        return f"{spec['source']}:{spec['name']}"
    return f"{spec.get('source')}: {Path(spec.get('path', '')).name}"


class DataPanel(QWidget):
    """Pick built-in data or the user's own (CSV, NumPy, image folder); see what it holds.

    Signals:
        sig_dataset_loaded(object): the loaded :class:`models.data.Dataset`.
    """

    sig_dataset_loaded = Signal(object)
    PREVIEW = 24

    def __init__(self, parent=None):
        super().__init__(parent)
        self.doc = None
        self.dataset = None
        self._threads = []
        from models.data import list_builtin

        self.source = QComboBox()
        self.source.addItem("Choose data…", None)
        for item in list_builtin():
            self.source.addItem(f"{item['name']} — {item['description']}",
                                {"source": "builtin", "name": item["name"]})
        self.source.activated.connect(self._on_source)
        open_btn = QPushButton("Open file or folder…")
        open_btn.clicked.connect(self.open_file)
        self.target = QComboBox()
        self.target.setToolTip("the CSV column to predict")
        self.target.setVisible(False)
        self.target.activated.connect(self._on_target)
        self.summary = QLabel(wordWrap=True, textInteractionFlags=Qt.TextSelectableByMouse)
        self.summary.setAlignment(Qt.AlignTop | Qt.AlignLeft)
        self.adapt_btn = QPushButton("Adapt the model to this data")
        self.adapt_btn.setVisible(False)
        self.adapt_btn.clicked.connect(self.adapt_model)
        self.table = QTableWidget()
        self.table.setEditTriggers(QTableWidget.NoEditTriggers)
        self.grid_host = QWidget()
        self.grid = QGridLayout(self.grid_host)
        scroll = QScrollArea()
        scroll.setWidgetResizable(True)
        scroll.setWidget(self.grid_host)
        self.stack = QStackedWidget()
        self.stack.addWidget(self.table)
        self.stack.addWidget(scroll)

        row = QHBoxLayout()
        row.addWidget(self.source, 1)
        row.addWidget(open_btn)
        row.addWidget(self.target)
        lay = QVBoxLayout(self)
        lay.addLayout(row)
        lay.addWidget(self.summary)
        lay.addWidget(self.adapt_btn)
        lay.addWidget(self.stack, 1)

    def set_document(self, doc) -> None:
        self.doc = doc
        doc.sig_reset.connect(self._from_document)
        self._from_document()

    def _from_document(self):
        spec = self.doc.project.dataset if self.doc else None
        self.summary.setText(f"Data: {spec_label(spec)}")
        self.dataset = None
        self.adapt_btn.setVisible(False)
        if spec:
            self.load(spec, set_on_project=False)

    # ---------------------------------------------------------------- choosing

    def _on_source(self, index: int):
        spec = self.source.itemData(index)
        if spec:
            self.load(spec)

    def open_file(self):
        path, _ = QFileDialog.getOpenFileName(
            self, "Open data", "", "Data (*.csv *.npz);;All files (*)")
        if not path:
            folder = QFileDialog.getExistingDirectory(self, "Or choose an image folder")
            if not folder:
                return
            path = folder
        self.load(self.spec_for_path(path))

    @staticmethod
    def spec_for_path(path: str) -> dict:
        p = Path(path)
        if p.is_dir():
            return {"source": "images", "path": str(p)}
        if p.suffix.lower() == ".npz":
            return {"source": "npz", "path": str(p)}
        return {"source": "csv", "path": str(p)}

    def _on_target(self, _index: int):
        if self.doc and self.doc.project.dataset and self.doc.project.dataset.get("source") == "csv":
            spec = dict(self.doc.project.dataset)
            spec["target"] = self.target.currentText()
            self.load(spec)

    def load(self, spec: dict, set_on_project: bool = True):
        """Load in the background; on success show it (and record it on the project)."""
        from desktop.workers import run_in_thread
        from models.data import load_dataset

        self.summary.setText(f"Loading {spec_label(spec)}…")

        def work():
            return load_dataset(spec)

        def done(dataset):
            self.dataset = dataset
            if set_on_project and self.doc is not None:
                self.doc.set_dataset(spec)
            self._show(dataset, spec)
            self.sig_dataset_loaded.emit(dataset)

        def failed(message):
            self.summary.setText(f"<span style='color:#c62828'>Could not load the data: "
                                 f"{_escape(message)}</span>")

        self._threads.append(run_in_thread(self, work, done, failed))

    # ---------------------------------------------------------------- showing

    def _show(self, dataset, spec: dict):
        text = _escape(dataset.describe()).replace("\n", "<br>")
        self.summary.setText(f"<b>{_escape(spec_label(spec))}</b><br>{text}")
        if spec.get("source") == "csv":
            self._fill_targets(spec, dataset)
        else:
            self.target.setVisible(False)
        self.adapt_btn.setVisible(self.doc is not None and bool(self._adapt_preview(dataset)))
        preview = dataset.preview(self.PREVIEW)
        if preview["kind"] == "images":
            self._show_images(preview)
        else:
            self._show_table(preview)

    def _fill_targets(self, spec, dataset):
        columns = list(dataset.feature_names or [])
        target = getattr(dataset, "target_name", None) or spec.get("target")
        names = _csv_header(spec["path"]) or columns
        self.target.blockSignals(True)
        self.target.clear()
        self.target.addItems(names)
        if target in names:
            self.target.setCurrentText(target)
        self.target.blockSignals(False)
        self.target.setVisible(True)

    def _show_table(self, preview):
        cols = preview.get("columns", [])
        rows = preview.get("rows", [])
        self.table.clear()
        self.table.setColumnCount(len(cols))
        self.table.setRowCount(len(rows))
        self.table.setHorizontalHeaderLabels([str(c) for c in cols])
        for r, row in enumerate(rows):
            for c, value in enumerate(row):
                text = f"{value:.4g}" if isinstance(value, float) else str(value)
                self.table.setItem(r, c, QTableWidgetItem(text))
        self.table.resizeColumnsToContents()
        self.stack.setCurrentIndex(0)

    def _show_images(self, preview):
        while self.grid.count():
            item = self.grid.takeAt(0)
            if item.widget():
                item.widget().deleteLater()
        images = np.asarray(preview["images"])
        labels = preview.get("labels", [])
        cols = 6
        for i, img in enumerate(images):
            cell = QWidget()
            v = QVBoxLayout(cell)
            v.setContentsMargins(2, 2, 2, 2)
            pic = QLabel()
            pic.setPixmap(_pixmap(img, 64))
            pic.setAlignment(Qt.AlignCenter)
            cap = QLabel(str(labels[i]) if i < len(labels) else "")
            cap.setAlignment(Qt.AlignCenter)
            v.addWidget(pic)
            v.addWidget(cap)
            self.grid.addWidget(cell, i // cols, i % cols)
        self.stack.setCurrentIndex(1)

    # ---------------------------------------------------------------- adapting

    def _adapt_preview(self, dataset) -> list[str]:
        from models.adapt import adapt_to_data

        probe = self.doc.project.copy()
        try:
            return adapt_to_data(probe, dataset)
        except Exception:
            return []

    def adapt_model(self) -> list[str]:
        """Change the model's input and head to fit the data (one undo step); returns the notes."""
        if self.doc is None or self.dataset is None:
            return []
        notes = self.doc.adapt_to(self.dataset)
        self.adapt_btn.setVisible(False)
        if notes:
            self.summary.setText(self.summary.text() + "<br><b>Adapted:</b> "
                                 + "; ".join(_escape(n) for n in notes))
        return notes


def _csv_header(path: str) -> list[str]:
    import csv

    try:
        with open(path, newline="", encoding="utf-8", errors="replace") as f:
            sample = f.read(4096)
        dialect = csv.Sniffer().sniff(sample.splitlines()[0]) if sample else csv.excel
        return next(csv.reader(sample.splitlines(), dialect))
    except Exception:
        return []


def _pixmap(img: np.ndarray, size: int) -> QPixmap:
    a = np.asarray(img, dtype="float32")
    if a.ndim == 3 and a.shape[-1] == 1:
        a = a[..., 0]
    lo, hi = float(a.min()), float(a.max())
    a = (a - lo) / (hi - lo) if hi > lo else np.zeros_like(a)
    a8 = np.ascontiguousarray((a * 255).astype("uint8"))
    if a8.ndim == 2:
        h, w = a8.shape
        qimg = QImage(a8.data, w, h, w, QImage.Format_Grayscale8).copy()
    else:
        h, w, c = a8.shape
        if c == 4:
            a8 = np.ascontiguousarray(a8[..., :3])
        qimg = QImage(a8.data, w, h, 3 * w, QImage.Format_RGB888).copy()
    return QPixmap.fromImage(qimg).scaled(size, size, Qt.KeepAspectRatio, Qt.FastTransformation)


def _escape(text: str) -> str:
    return text.replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;")
