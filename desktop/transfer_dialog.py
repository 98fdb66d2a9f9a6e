"""File > New from Trained Model…: a trained project's layers as the base of a new model.

The user picks a saved project with trained weights, the last layer to keep
and the last layer to freeze; the new head is sized from the current
project's data (or the base's own, when the current project has none). The
work (loading the data, building both models, carrying the weights) is
:func:`models.transfer.transfer_project`, run off the UI thread; the result
opens as a new, unsaved project.
"""
from __future__ import annotations

from pathlib import Path

from PySide6.QtCore import Signal
from PySide6.QtWidgets import (
    QComboBox,
    QDialog,
    QDialogButtonBox,
    QFileDialog,
    QFormLayout,
    QHBoxLayout,
    QLabel,
    QLineEdit,
    QPushButton,
    QVBoxLayout,
)

from desktop.panels.param_editors import error_color, muted_color
from models.project import Project, ProjectError

NOTHING = "nothing: fine-tune every layer"


class TransferDialog(QDialog):
    """Choose a base, where to cut and what to freeze; builds the new project in the background.

    Signals:
        sig_created(object): the new project is ready (also in :attr:`project`).
    """

    sig_created = Signal(object)

    def __init__(self, current: Project | None = None, parent=None, start_dir: str = ""):
        super().__init__(parent)
        self.setWindowTitle("New from Trained Model")
        self.current = current
        self.start_dir = start_dir
        self.base: Project | None = None
        self.project: Project | None = None
        self.working = False
        self.path_edit = QLineEdit(self)
        self.path_edit.setReadOnly(True)
        self.path_edit.setPlaceholderText("a saved .lforge project with trained weights")
        browse = QPushButton("Browse…", self)
        browse.clicked.connect(self._browse)
        path_row = QHBoxLayout()
        path_row.addWidget(self.path_edit, 1)
        path_row.addWidget(browse)
        self.info = QLabel(self)
        self.info.setWordWrap(True)
        self.info.setStyleSheet(f"color: {muted_color(self)}")
        self.keep_combo = QComboBox(self)
        self.keep_combo.setToolTip("this layer and everything before it is kept; what comes "
                                   "after it (the old head) is dropped")
        self.keep_combo.currentIndexChanged.connect(lambda _i: self._fill_freeze())
        self.freeze_combo = QComboBox(self)
        self.freeze_combo.setToolTip("this layer and the kept layers before it do not train "
                                     "(trainable off); the rest and the new head do")
        self.head_label = QLabel(self)
        self.head_label.setWordWrap(True)
        self.error = QLabel(self)
        self.error.setWordWrap(True)
        self.error.setStyleSheet(f"color: {error_color(self)}")
        self.error.hide()
        form = QFormLayout()
        form.addRow("Base model", path_row)
        form.addRow("", self.info)
        form.addRow("Keep layers up to", self.keep_combo)
        form.addRow("Freeze layers up to", self.freeze_combo)
        form.addRow("New head", self.head_label)
        self.buttons = QDialogButtonBox(QDialogButtonBox.Cancel, self)
        self.create_button = self.buttons.addButton("Create", QDialogButtonBox.AcceptRole)
        self.buttons.accepted.connect(self.create)
        self.buttons.rejected.connect(self.reject)
        layout = QVBoxLayout(self)
        layout.addLayout(form)
        layout.addWidget(self.error)
        layout.addStretch(1)
        layout.addWidget(self.buttons)
        self._describe_head()
        self._update()
        self.resize(560, 250)

    # ------------------------------------------------------------------ choosing

    def _browse(self):
        path, _ = QFileDialog.getOpenFileName(self, "Trained model to start from", self.start_dir,
                                              "LayerForge projects (*.lforge)")
        if path:
            self.set_base_path(path)

    def set_base_path(self, path: str | Path) -> bool:
        """Read the base project (no TensorFlow needed) and offer its layers."""
        from models.transfer import cut_points

        self.error.hide()
        self.base = None
        self.keep_combo.clear()
        try:
            base = Project.load(path)
        except ProjectError as exc:
            return self._fail(str(exc))
        self.path_edit.setText(str(path))
        if not base.has_weights():
            return self._fail(f"{Path(path).name} has no trained weights: train it and save "
                              "it first")
        points = cut_points(base.graph)
        if not points:
            return self._fail(f"{Path(path).name}: its model has no inner layer to put a new head on")
        self.base = base
        title = base.meta.get("title") or base.name
        self.info.setText(f"{title}: {len(base.graph.nodes)} layers, trained weights saved beside it")
        for name in points:
            self.keep_combo.addItem(f"{name} ({base.graph.nodes[name].class_name})", name)
        # By default keep everything up to the old head: the last layer that can carry one.
        self.keep_combo.setCurrentIndex(len(points) - 1)
        self._fill_freeze()
        self._describe_head()
        self._update()
        return True

    def _fill_freeze(self):
        from models.transfer import kept_layers

        self.freeze_combo.clear()
        self.freeze_combo.addItem(NOTHING, None)
        keep = self.keep_combo.currentData()
        if self.base is None or keep is None:
            return
        kept = [n for n in kept_layers(self.base.graph, keep) if not self.base.graph.nodes[n].is_input]
        for i, name in enumerate(kept):
            text = name if i == 0 else f"{name} and the {i} layer{'s' if i > 1 else ''} before it"
            if i == len(kept) - 1:
                text = f"{name}: every kept layer (feature extraction)"
            self.freeze_combo.addItem(text, name)

    def select(self, keep: str, freeze: str | None) -> None:
        """Choose the cut and the frozen part by layer name (as picking them in the combos)."""
        self.keep_combo.setCurrentIndex(self.keep_combo.findData(keep))
        self.freeze_combo.setCurrentIndex(self.freeze_combo.findData(freeze) if freeze else 0)

    def _data_spec(self) -> dict | None:
        if self.current is not None and self.current.dataset is not None:
            return self.current.dataset
        return self.base.dataset if self.base is not None else None

    def _describe_head(self):
        spec = self._data_spec()
        if spec is None:
            self.head_label.setText("no data chosen: pick data in the Data panel first, or a "
                                    "base that has its own")
            return
        name = spec.get("name") or Path(str(spec.get("path", "data"))).name
        whose = "the current project's" if self.current is not None and \
            self.current.dataset is not None else "the base's"
        self.head_label.setText(f"{_head_text(spec)}, for {whose} data ({name})")

    def _update(self):
        ready = self.base is not None and self._data_spec() is not None and not self.working
        self.create_button.setEnabled(ready)

    def _fail(self, message: str) -> bool:
        self.error.setText(message)
        self.error.show()
        self.info.clear()
        self._update()
        return False

    # ------------------------------------------------------------------ building

    def create(self) -> None:
        """Build the new project in the background; ``sig_created`` and accept when done."""
        from desktop.workers import run_in_thread

        if self.base is None or self.working:
            return
        base, spec = self.base, self._data_spec()
        keep, freeze = self.keep_combo.currentData(), self.freeze_combo.currentData()
        self.working = True
        self.error.hide()
        self.create_button.setText("Building…")
        self._update()

        def work():
            from models.data import load_dataset
            from models.transfer import transfer_project

            dataset = load_dataset(spec, seed=int(base.recipe.get("seed", 0)))
            return transfer_project(base, keep, freeze_until=freeze, dataset=dataset,
                                    dataset_spec=spec)

        run_in_thread(self, work, self._on_created, self._on_failed)

    def _on_created(self, project):
        self.working = False
        self.project = project
        self.sig_created.emit(project)
        self.accept()

    def _on_failed(self, message: str):
        self.working = False
        self.create_button.setText("Create")
        self._fail(message)


def _head_text(spec: dict) -> str:
    """The new head in words; exact for built-in data (its classes are known without loading it)."""
    from models.data import list_builtin

    if spec.get("source") == "builtin":
        entry = next((b for b in list_builtin() if b["name"] == spec.get("name")), None)
        if entry is not None and entry["classes"]:
            k = int(entry["classes"])
            if entry["task"] == "binary":
                return "Dense(1, sigmoid): two classes"
            return f"Dense({k}, softmax): {k} classes"
    return "a Dense layer sized from the data's classes or targets when it is built"


__all__ = ["TransferDialog"]
