"""The training-recipe dialog: optimizer, learning rate and schedule, loss, metrics, splits, callbacks.

It edits a copy of the project's recipe and hands the result back; the
document applies it as one undoable step. Keys it does not show (a template's
``loop``, ``quality``, ``quick``, ``live_view``...) are kept as they are.
"""
from __future__ import annotations

import copy

from PySide6.QtCore import Qt
from PySide6.QtWidgets import (
    QCheckBox,
    QComboBox,
    QDialog,
    QDialogButtonBox,
    QDoubleSpinBox,
    QFormLayout,
    QGroupBox,
    QHBoxLayout,
    QLabel,
    QLineEdit,
    QSpinBox,
    QVBoxLayout,
    QWidget,
)

from models import recipe as R


def _float_field(value: float, tip: str) -> QLineEdit:
    field = QLineEdit(f"{value:g}")
    field.setToolTip(tip)
    return field


class RecipeDialog(QDialog):
    """Edit a recipe; :meth:`recipe` gives the edited copy (after ``exec`` returned Accepted)."""

    def __init__(self, recipe: dict, parent=None):
        super().__init__(parent)
        self.setWindowTitle("Training recipe")
        self._original = copy.deepcopy(recipe)
        self._result: dict | None = None
        custom_loop = recipe.get("loop", "fit") != "fit"

        self.optimizer = QComboBox()
        self.optimizer.addItems(R.OPTIMIZERS)
        name = R.optimizer_name(recipe)
        if name not in R.OPTIMIZERS:
            self.optimizer.addItem(name)
        self.optimizer.setCurrentText(name)
        self.lr = _float_field(R.learning_rate(recipe), "the step size, e.g. 0.001 or 1e-3")
        self.schedule = QComboBox()
        self.schedule.addItems(["constant", *R.SCHEDULES])
        self.decay_steps = QSpinBox()
        self.decay_steps.setRange(1, 10_000_000)
        self.decay_param_label = QLabel("")
        self.decay_param = _float_field(0.0, "")
        sched = recipe.get("schedule") or {}
        if sched.get("class_name") in R.SCHEDULES:
            self.schedule.setCurrentText(sched["class_name"])
        self._load_schedule_fields(sched.get("config") or {})
        self.schedule.currentTextChanged.connect(lambda _t: self._load_schedule_fields({}))

        self.loss = QComboBox()
        self.loss.setEditable(True)
        self.loss.addItems(R.LOSSES)
        loss = recipe.get("loss", "sparse_categorical_crossentropy")
        self.loss.setCurrentText(R.loss_name(loss))
        self.loss.setEnabled(isinstance(loss, str) and not custom_loop)
        metrics = recipe.get("metrics", ["accuracy"])
        self.metrics = QLineEdit(", ".join(str(m) for m in metrics))
        self.metrics.setToolTip("comma-separated Keras metric names: " + ", ".join(R.METRICS))
        # Per-output metrics (a list per output) are the template's own: shown, not edited.
        self.metrics.setEnabled(not custom_loop and all(isinstance(m, str) for m in metrics))

        self.epochs = QSpinBox()
        self.epochs.setRange(1, 100_000)
        self.epochs.setValue(int(recipe.get("epochs", 10)))
        self.batch = QSpinBox()
        self.batch.setRange(1, 65_536)
        self.batch.setValue(int(recipe.get("batch_size", 32)))
        self.val_fraction = self._fraction(recipe.get("val_fraction", 0.1))
        self.test_fraction = self._fraction(recipe.get("test_fraction", 0.2))
        self.seed = QSpinBox()
        self.seed.setRange(0, 2**31 - 1)
        self.seed.setValue(int(recipe.get("seed", 0)))

        cbs = recipe.get("callbacks") or {}
        es = cbs.get("early_stopping")
        self.early = QCheckBox("Early stopping, patience")
        self.early.setChecked(bool(es))
        self.early_patience = QSpinBox()
        self.early_patience.setRange(1, 10_000)
        self.early_patience.setValue(int((es if isinstance(es, dict) else {}).get("patience", 5)))
        rl = cbs.get("reduce_lr")
        self.reduce = QCheckBox("Reduce LR on plateau, patience")
        self.reduce.setChecked(bool(rl))
        self.reduce_patience = QSpinBox()
        self.reduce_patience.setRange(1, 10_000)
        self.reduce_patience.setValue(int((rl if isinstance(rl, dict) else {}).get("patience", 3)))
        self.reduce_factor = QDoubleSpinBox()
        self.reduce_factor.setRange(0.01, 0.99)
        self.reduce_factor.setSingleStep(0.05)
        self.reduce_factor.setValue(float((rl if isinstance(rl, dict) else {}).get("factor", 0.5)))
        self.mixed = QCheckBox("Mixed precision (float16 compute, for GPUs)")
        self.mixed.setChecked(bool(recipe.get("mixed_precision")))
        self.tensorboard = QCheckBox("TensorBoard logs")
        self.tensorboard.setChecked(cbs.get("tensorboard", True) is not False)

        opt_box = QGroupBox("Optimizer")
        f = self._opt_form = QFormLayout(opt_box)
        f.addRow("Optimizer", self.optimizer)
        f.addRow("Learning rate", self.lr)
        f.addRow("Schedule", self.schedule)
        f.addRow("Decay steps", self.decay_steps)
        f.addRow(self.decay_param_label, self.decay_param)
        self._load_schedule_fields((recipe.get("schedule") or {}).get("config") or {})
        fit_box = QGroupBox("Objective and data")
        g = QFormLayout(fit_box)
        g.addRow("Loss", self.loss)
        g.addRow("Metrics", self.metrics)
        g.addRow("Epochs", self.epochs)
        g.addRow("Batch size", self.batch)
        g.addRow("Validation share", self.val_fraction)
        g.addRow("Test share", self.test_fraction)
        g.addRow("Seed", self.seed)
        cb_box = QGroupBox("Callbacks and switches")
        c = QVBoxLayout(cb_box)
        c.addLayout(_row(self.early, self.early_patience))
        c.addLayout(_row(self.reduce, self.reduce_patience, QLabel("factor"), self.reduce_factor))
        c.addWidget(self.mixed)
        c.addWidget(self.tensorboard)
        self.problem = QLabel("")
        self.problem.setWordWrap(True)
        self.problem.setStyleSheet("color: #c62828;")
        buttons = QDialogButtonBox(QDialogButtonBox.Ok | QDialogButtonBox.Cancel)
        buttons.accepted.connect(self.accept)
        buttons.rejected.connect(self.reject)
        self.ok_button = buttons.button(QDialogButtonBox.Ok)
        lay = QVBoxLayout(self)
        top = QHBoxLayout()
        top.addWidget(opt_box)
        top.addWidget(fit_box)
        lay.addLayout(top)
        lay.addWidget(cb_box)
        if custom_loop:
            note = QLabel("This template trains with its own loop: its loss and metrics are "
                          "part of the loop.")
            note.setWordWrap(True)
            lay.addWidget(note)
        lay.addWidget(self.problem)
        lay.addWidget(buttons)

    @staticmethod
    def _fraction(value) -> QDoubleSpinBox:
        box = QDoubleSpinBox()
        box.setRange(0.0, 0.9)
        box.setSingleStep(0.05)
        box.setDecimals(2)
        box.setValue(float(value))
        return box

    def _load_schedule_fields(self, config: dict) -> None:
        name = self.schedule.currentText()
        defaults = R.SCHEDULES.get(name, {})
        on = bool(defaults)
        form = getattr(self, "_opt_form", None)
        if form is not None:  # a constant rate has no decay settings to show
            form.setRowVisible(self.decay_steps, on)
            form.setRowVisible(self.decay_param, on)
        extra = [k for k in defaults if k != "decay_steps"]
        key = extra[0] if extra else ""
        self.decay_param_label.setText(key.replace("_", " ") or "—")
        self.decay_steps.setValue(int(config.get("decay_steps", defaults.get("decay_steps", 1000))))
        self.decay_param.setText(f"{float(config.get(key, defaults.get(key, 0.0))):g}")
        self._schedule_key = key

    def _edited(self) -> tuple[dict | None, str]:
        r = copy.deepcopy(self._original)
        try:
            lr = float(self.lr.text())
        except ValueError:
            return None, f"the learning rate {self.lr.text()!r} is not a number"
        r = R.with_optimizer(r, self.optimizer.currentText(), lr)
        name = self.schedule.currentText()
        if name in R.SCHEDULES:
            try:
                value = float(self.decay_param.text())
            except ValueError:
                return None, f"{self._schedule_key.replace('_', ' ')} {self.decay_param.text()!r} is not a number"
            r["schedule"] = {"class_name": name,
                             "config": {"decay_steps": self.decay_steps.value(),
                                        self._schedule_key: value}}
        else:
            r.pop("schedule", None)
        if self.loss.isEnabled():
            r["loss"] = self.loss.currentText().strip()
        if self.metrics.isEnabled():
            r["metrics"] = [m.strip() for m in self.metrics.text().split(",") if m.strip()]
        r["epochs"], r["batch_size"], r["seed"] = (self.epochs.value(), self.batch.value(),
                                                   self.seed.value())
        r["val_fraction"] = round(self.val_fraction.value(), 4)
        r["test_fraction"] = round(self.test_fraction.value(), 4)
        if r["val_fraction"] + r["test_fraction"] >= 0.9:
            return None, "validation and test shares leave too little to train on (keep them under 0.9 together)"
        cbs = dict(r.get("callbacks") or {})
        if self.early.isChecked():
            old = cbs.get("early_stopping")
            cbs["early_stopping"] = {**(old if isinstance(old, dict) else {}),
                                     "patience": self.early_patience.value()}
        else:
            cbs.pop("early_stopping", None)
        if self.reduce.isChecked():
            old = cbs.get("reduce_lr")
            cbs["reduce_lr"] = {**(old if isinstance(old, dict) else {}),
                                "patience": self.reduce_patience.value(),
                                "factor": round(self.reduce_factor.value(), 4)}
        else:
            cbs.pop("reduce_lr", None)
        if self.tensorboard.isChecked():
            if cbs.get("tensorboard") is False:
                cbs.pop("tensorboard")
        else:
            cbs["tensorboard"] = False
        r["callbacks"] = cbs
        if self.mixed.isChecked():
            r["mixed_precision"] = True
        else:
            r.pop("mixed_precision", None)
        problems = R.check_recipe(r)
        if problems:
            return None, "; ".join(problems)
        return r, ""

    def accept(self):
        result, problem = self._edited()
        if result is None:
            self.problem.setText(problem)  # the dialog stays open with what was typed
            return
        self._result = result
        super().accept()

    def recipe(self) -> dict | None:
        """The edited recipe (None when cancelled or not accepted yet)."""
        return self._result


def _row(*widgets: QWidget) -> QHBoxLayout:
    row = QHBoxLayout()
    for w in widgets:
        row.addWidget(w)
    row.addStretch(1)
    row.setAlignment(Qt.AlignLeft)
    return row


__all__ = ["RecipeDialog"]
