"""The training panel: start, pause, resume and stop training, and watch it learn.

Live plots, all redrawn by one timer (:data:`REDRAW_MS`) that drains the
run's :class:`~models.runner.RunState`, so a burst of batches costs one
``setData`` per curve however many arrive:

* the loss of every batch (and its moving average),
* training and validation loss per epoch (with the parts of the loss a custom
  step logs, such as a GAN's ``g_loss`` and ``d_loss``), and every other
  metric per epoch,
* the learning rate and the throughput (samples per second),
* each layer's gradient norm: one curve per layer across epochs (log scale,
  early layers dark, late layers light, so vanishing or exploding gradients
  show as curves drifting apart) and a bar chart of the latest epoch,
* the weight distribution of one layer across epochs, as a heat map (epochs
  along x, weight values along y).

The data behind every curve lives in preallocated numpy arrays that double
when full (:class:`Series`); curves get views of them. While training runs the
document is read-only; when it ends the kept weights go into the project
(the document becomes unsaved) and the evaluation page is filled.
"""
from __future__ import annotations

import math
import sys
import time
from pathlib import Path

import numpy as np
import pyqtgraph as pg
from PySide6.QtCore import QRectF, Qt, QTimer, Signal
from PySide6.QtGui import QAction, QKeySequence
from PySide6.QtWidgets import (
    QCheckBox,
    QComboBox,
    QHBoxLayout,
    QLabel,
    QSizePolicy,
    QSpinBox,
    QStyle,
    QTabWidget,
    QToolButton,
    QVBoxLayout,
    QWidget,
)

from desktop.appdata import app_data_dir
from desktop.panels.evaluation import PALETTE, EvaluationPanel, add_legend, style_plot
from desktop.panels.live_view import LiveViewPanel
from desktop.panels.run_controls import (
    not_ready,
    progress_row,
    reconnect,
    run_button,
    show_message,
)
from desktop.training_worker import TrainingWorker
from models.recipe import summary as recipe_summary

REDRAW_MS = 100          # how often the run is drained (and the plots redrawn when due)
PROGRESS_MS = 250        # how often the progress bar and its time left are updated
SWITCH_INTERVAL = 0.001  # seconds a thread may keep the interpreter lock while a run goes
PAINT_BUDGET = 0.02      # share of the time the live plots may spend drawing and painting
MAX_REDRAW_MS = 1000     # however slow painting is, the plots move at least once a second
EPOCH_PLOTS = ("loss", "metrics", "lr", "speed", "grad", "grad_bar", "heat")
X_BY_EPOCH = ("loss", "metrics", "lr", "speed", "grad", "heat")  # plots whose x is the epoch
FIRST_PLOTS = ("loss", "metrics")  # redrawn about twice as often as the other epoch plots
PLOTS_PER_TICK = 2       # an epoch's plots are redrawn a few per tick: no long repaint
EMA = 0.9                # smoothing of the moving-average batch loss
HEAT_BINS = 48           # rows of the weight heat map

SHORTCUTS = {            # none of these is used by the editor or the main window
    "start": ("Ctrl+R", "F5"),
    "pause": ("F6",),
    "stop": ("Shift+F5",),
}


class Series:
    """A growing (x, y) record: preallocated arrays that double when full.

    ``x``/``y`` are views of the filled part, ready for ``setData`` (no copy).
    """

    def __init__(self, capacity: int = 256):
        self._x = np.empty(capacity, dtype=np.float64)
        self._y = np.empty(capacity, dtype=np.float64)
        self.n = 0

    def append(self, x: float, y: float) -> None:
        if self.n == len(self._x):
            self._grow(self.n + 1)
        self._x[self.n] = x
        self._y[self.n] = y
        self.n += 1

    def extend(self, xs, ys) -> None:
        xs = np.asarray(xs, dtype=np.float64)
        ys = np.asarray(ys, dtype=np.float64)
        need = self.n + len(xs)
        if need > len(self._x):
            self._grow(need)
        self._x[self.n:need] = xs
        self._y[self.n:need] = ys
        self.n = need

    def _grow(self, need: int) -> None:
        size = len(self._x)
        while size < need:
            size *= 2
        for name in ("_x", "_y"):
            old = getattr(self, name)
            new = np.empty(size, dtype=np.float64)
            new[: self.n] = old[: self.n]
            setattr(self, name, new)

    def clear(self) -> None:
        self.n = 0

    @property
    def x(self) -> np.ndarray:
        return self._x[: self.n]

    @property
    def y(self) -> np.ndarray:
        return self._y[: self.n]

    @property
    def capacity(self) -> int:
        return len(self._x)


class LogAxis(pg.AxisItem):
    """A log axis labelled at 1, 2 and 5 times each power of ten (not at every 1..9)."""

    MIN_LABEL_PX = 16  # labels closer than this overlap

    def logTickValues(self, minVal, maxVal, size, stdTicks):
        ticks = [(spacing, t) for spacing, t in stdTicks if spacing >= 1.0]
        if len(ticks) < 3:
            lo, hi = int(np.floor(minVal)), int(np.ceil(maxVal))
            for multiples in (((1,) if maxVal - minVal > 3 else (1, 2, 5)), range(1, 10)):
                minor = [v + math.log10(m) for v in range(lo, hi) for m in multiples]
                minor = [t for t in minor if minVal < t < maxVal
                         and not any(abs(t - m) < 1e-9 for _, major in ticks for m in major)]
                if len(minor) >= 3:  # two labels, one of them at an edge, read badly
                    break
            # However many candidates, only as many labels as the axis has room for.
            room = max(2, int(size / self.MIN_LABEL_PX)) - sum(len(t) for _, t in ticks)
            if len(minor) > room > 0:
                minor = [minor[int(round(i))] for i in np.linspace(0, len(minor) - 1, room)]
            ticks.append((None, minor))
        return ticks


class PlotGrid(pg.GraphicsLayoutWidget):
    """The live plots in one view; it remembers what painting them costs."""

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        self.paint_total = 0.0  # seconds spent painting, ever

    def paintEvent(self, event):
        t0 = time.perf_counter()
        super().paintEvent(event)
        self.paint_total += time.perf_counter() - t0


def _new_plot(layout: pg.GraphicsLayoutWidget, row: int, col: int, title: str, x: str = "",
              y: str = "", log_y: bool = False) -> pg.PlotItem:
    axes = {"left": LogAxis("left")} if log_y else None
    plot = style_plot(layout.addPlot(row=row, col=col, axisItems=axes), title, x, y)
    plot.setClipToView(True)
    plot.setDownsampling(auto=True, mode="peak")
    plot.setLogMode(y=log_y)
    plot.getViewBox().setMouseMode(pg.ViewBox.RectMode)
    # A fixed axis width: tick labels of another length must not re-lay out (and so
    # repaint) the whole grid at every redraw.
    plot.getAxis("left").setWidth(46)
    return plot


class TrainingPanel(QWidget):
    """Train the document's model and watch it learn.

    Signals:
        sig_training_started(): the worker started.
        sig_training_finished(dict, bool): the run ended (its JSON, ok); the
            project already holds the kept weights and the evaluation page is
            filled.
        sig_message(str): a line for the status bar and the log.
    """

    sig_training_started = Signal()
    sig_training_finished = Signal(object, bool)
    sig_message = Signal(str)

    def __init__(self, parent=None):
        super().__init__(parent)
        self.doc = None
        self._run_project = None
        self.last_result: dict | None = None
        self.worker = TrainingWorker(self)
        self.worker.sig_started.connect(self._on_started)
        self.worker.sig_finished.connect(self._on_finished)
        self.worker.sig_failed.connect(self._on_failed)
        self._switch_interval: float | None = None  # the interpreter's, while a run has set ours
        self._timer = QTimer(self)
        self._timer.setInterval(REDRAW_MS)
        self._timer.timeout.connect(self.refresh)
        self.redraws = 0  # timer ticks that changed a plot (benchmarks read it)
        self.run_dir: Path | None = None  # the last run's checkpoints and logs
        self._build_controls()
        self._build_plots()
        self.evaluation = EvaluationPanel()
        self.live_view = LiveViewPanel()
        self.pages = QTabWidget()
        self.pages.setDocumentMode(True)
        self.pages.addTab(self.plots, "Live")
        self.pages.addTab(self.evaluation, "Evaluation")
        self._view_tab = -1  # the model's own view gets a tab once a run shows one
        self.pages.currentChanged.connect(lambda _i: self._redraw_now())
        lay = QVBoxLayout(self)
        lay.setContentsMargins(4, 4, 4, 4)
        lay.setSpacing(4)
        lay.addLayout(self._controls_row)
        lay.addLayout(self._status_row)
        lay.addWidget(self.pages, 1)
        self._reset_data()
        self._update_controls()

    # ------------------------------------------------------------------ building

    def _build_controls(self):
        def action(key, text, slot, tip):
            act = QAction(text, self)
            act.setObjectName(f"training_{key}")
            act.setShortcuts([QKeySequence(k) for k in SHORTCUTS[key]])
            act.setStatusTip(tip)
            act.setToolTip(f"{tip} ({', '.join(SHORTCUTS[key])})")
            act.triggered.connect(slot)
            self.addAction(act)
            return act

        self.start_action = action("start", "Start", lambda: self.start(),
                                   "Train the model on its data")
        self.resume_ckpt_action = QAction("Resume from Checkpoint…", self)
        self.resume_ckpt_action.setStatusTip("Train on from saved weights (a run's checkpoint)")
        self.resume_ckpt_action.triggered.connect(self.resume_from_checkpoint)
        self.recipe_action = QAction("Recipe…", self)
        self.recipe_action.setStatusTip("Optimizer, learning rate, loss, metrics, splits, callbacks")
        self.recipe_action.triggered.connect(self.edit_recipe)
        self.pause_action = action("pause", "Pause", self.toggle_pause,
                                   "Pause or resume training")
        self.stop_action = action("stop", "Stop", self.stop,
                                  "Stop training and keep the best weights so far")
        style = self.style()
        self._icons = {"start": style.standardIcon(QStyle.SP_MediaPlay),
                       "pause": style.standardIcon(QStyle.SP_MediaPause),
                       "stop": style.standardIcon(QStyle.SP_MediaStop)}
        self.start_action.setIcon(self._icons["start"])
        self.pause_action.setIcon(self._icons["pause"])
        self.stop_action.setIcon(self._icons["stop"])
        self.actions_by_name = {"start": self.start_action, "pause": self.pause_action,
                                "stop": self.stop_action}

        self.start_button = run_button(self.start_action)
        self.pause_button = run_button(self.pause_action)
        self.stop_button = run_button(self.stop_action)
        self.epochs_spin = QSpinBox()
        self.epochs_spin.setRange(1, 100_000)
        self.epochs_spin.setToolTip("passes over the training data")
        self.batch_spin = QSpinBox()
        self.batch_spin.setRange(1, 65_536)
        self.batch_spin.setToolTip("samples per gradient step")
        self.quick_check = QCheckBox("Quick preset")
        self.quick_check.setToolTip("the template's short recipe: fewer epochs, for a first look")
        self.quick_check.toggled.connect(self._on_quick_toggled)
        self.recipe_button = QToolButton()
        self.recipe_button.setDefaultAction(self.recipe_action)
        self.recipe_label = QLabel("")
        self.recipe_label.setStyleSheet("color: #555;")
        self.recipe_label.setSizePolicy(QSizePolicy.Ignored, QSizePolicy.Preferred)
        self.open_run_button = QToolButton()
        self.open_run_button.setText("Open Run Folder")
        self.open_run_button.setToolTip("checkpoints (best and last), history.csv and TensorBoard logs")
        self.open_run_button.clicked.connect(self._open_run_dir)
        self.open_run_button.hide()
        self.xla_check = QCheckBox("XLA")
        self.xla_check.setToolTip("compile the training step with XLA (jit_compile): "
                                  "often faster after a slower first epoch")
        self.layer_combo = QComboBox()
        self.layer_combo.setToolTip("the layer whose weight distribution the heat map shows")
        self.layer_combo.setMinimumContentsLength(12)
        self.layer_combo.currentIndexChanged.connect(lambda _i: self._draw_heatmap())

        row = QHBoxLayout()
        row.setSpacing(6)
        for w in (self.start_button, self.pause_button, self.stop_button):
            row.addWidget(w)
        row.addSpacing(12)
        row.addWidget(QLabel("Epochs"))
        row.addWidget(self.epochs_spin)
        row.addWidget(QLabel("Batch size"))
        row.addWidget(self.batch_spin)
        row.addWidget(self.quick_check)
        row.addWidget(self.xla_check)
        row.addWidget(self.recipe_button)
        row.addWidget(self.recipe_label, 1)
        row.addWidget(QLabel("Weights of"))
        row.addWidget(self.layer_combo)
        self._controls_row = row

        self._status_row, self.progress, self.message_label = progress_row()
        self._status_row.addWidget(self.open_run_button)

    def _build_plots(self):
        """The plot grid's widget; its plots are made the first time they are shown."""
        self.plots = PlotGrid()
        self.plots.setBackground("w")
        self.plots.ci.layout.setSpacing(2)
        self.plot_items: dict[str, pg.PlotItem] = {}

    def _ensure_plots(self) -> None:
        """Make the eight plots (a third of a second): not at start-up, only once needed."""
        if self.plot_items:
            return
        P = self.plot_items
        P["batch"] = _new_plot(self.plots, 0, 0, "Loss per batch", "step", log_y=True)
        P["loss"] = _new_plot(self.plots, 0, 1, "Loss per epoch", "epoch", log_y=True)
        P["metrics"] = _new_plot(self.plots, 0, 2, "Metrics per epoch", "epoch")
        P["lr"] = _new_plot(self.plots, 0, 3, "Learning rate", "epoch", log_y=True)
        P["speed"] = _new_plot(self.plots, 1, 0, "Throughput (samples/s)", "epoch")
        P["grad"] = _new_plot(self.plots, 1, 1, "Gradient norm per layer (colours: bars)", "epoch",
                              log_y=True)
        P["grad_bar"] = _new_plot(self.plots, 1, 2, "Gradient norm, last epoch (log10)")
        P["heat"] = _new_plot(self.plots, 1, 3, "Weights across epochs", "epoch", "value")
        self._titles = {k: p.titleLabel.text for k, p in P.items()}
        P["batch"].getAxis("bottom").enableAutoSIPrefix(False)
        P["heat"].getAxis("left").enableAutoSIPrefix(False)
        add_legend(P["loss"])  # losses fall: the top right stays free
        add_legend(P["metrics"], offset=(-5, -5))  # accuracies rise: the bottom right does
        self.batch_curve = P["batch"].plot(pen=pg.mkPen((31, 119, 180, 90), width=1))
        self.batch_avg_curve = P["batch"].plot(pen=pg.mkPen("#d62728", width=2))
        self.lr_curve = P["lr"].plot(pen=pg.mkPen("#9467bd", width=2), symbol="o", symbolSize=4,
                                     symbolBrush="#9467bd", symbolPen=None)
        self.speed_curve = P["speed"].plot(pen=pg.mkPen("#2ca02c", width=2), symbol="o",
                                           symbolSize=4, symbolBrush="#2ca02c", symbolPen=None)
        self.grad_bars = pg.BarGraphItem(x=[], height=[], width=0.7, brush="#1f77b4")
        P["grad_bar"].addItem(self.grad_bars)
        P["grad_bar"].setMouseEnabled(x=False, y=False)
        self.heat_image = pg.ImageItem()
        self.heat_image.setColorMap(pg.colormap.get("inferno"))
        P["heat"].addItem(self.heat_image)
        P["heat"].setDownsampling(auto=False)
        self._dirty.update(EPOCH_PLOTS)  # whatever a run gathered before the plots existed
        self._batch_pending = self.batch.n > 0

    # ------------------------------------------------------------------ document

    def set_document(self, doc) -> None:
        reconnect(self.doc, doc, (("sig_reset", self._on_doc_reset),
                                  ("sig_project_changed", self._load_recipe),
                                  ("sig_validated", self._on_validated)))
        self.doc = doc
        self._load_recipe()
        self._update_controls()

    def _load_recipe(self):
        if self.worker.running:
            return
        recipe = self.doc.project.recipe if self.doc is not None else {}
        quick = recipe.get("quick") if isinstance(recipe.get("quick"), dict) else None
        self.quick_check.blockSignals(True)
        self.quick_check.setVisible(quick is not None)
        self.quick_check.setChecked(False)
        self.quick_check.blockSignals(False)
        self.epochs_spin.setValue(int(recipe.get("epochs", 10)))
        self.batch_spin.setValue(int(recipe.get("batch_size", 32)))
        self.xla_check.setChecked(bool(recipe.get("jit_compile", False)))
        text = recipe_summary(recipe) if self.doc is not None else ""
        self.recipe_label.setText(text)
        self.recipe_label.setToolTip(text)

    def _on_quick_toggled(self, on: bool):
        recipe = self.doc.project.recipe if self.doc is not None else {}
        source = dict(recipe)
        if on and isinstance(recipe.get("quick"), dict):
            source.update(recipe["quick"])
        self.epochs_spin.setValue(int(source.get("epochs", 10)))
        self.batch_spin.setValue(int(source.get("batch_size", 32)))

    def _on_validated(self, _report):
        self._update_controls()

    def _on_doc_reset(self):
        if self.worker.running:
            # Another project was opened: this run's weights belong to nothing now.
            self.worker.stop()
            self._show_message("another project was opened; the training run was stopped "
                               "and its weights discarded", "warn")
        self._load_recipe()
        self._update_controls()

    # ------------------------------------------------------------------ control

    def start(self, dataset=None, initial_weights: str | None = None) -> bool:
        """Start training the document's project with the panel's settings.

        Args:
            dataset: data already loaded for this project (by default the
                worker loads the project's data in its thread).
            initial_weights: a checkpoint (``.weights.h5``) to resume from.
        """
        if self.doc is None or self.worker.running:
            return False
        project = self.doc.project
        problem = self._cannot_start(project)
        if problem:
            self._show_message(problem, "error")
            return False
        overrides = {"epochs": self.epochs_spin.value(), "batch_size": self.batch_spin.value(),
                     "quick": not self.quick_check.isHidden() and self.quick_check.isChecked(),
                     "xla": self.xla_check.isChecked()}
        if initial_weights:
            overrides["initial_weights"] = str(initial_weights)
        self.run_dir = None
        if project.recipe.get("save_runs", True):
            try:
                self.run_dir = new_run_dir(project)
            except OSError as exc:
                self._show_message(f"no checkpoints this time: the run folder cannot be made "
                                   f"({exc.strerror})", "warn")
            else:
                overrides["out_dir"] = str(self.run_dir)
        self._reset_data()
        self.evaluation.clear("Training…")
        self._run_project = project
        self.doc.set_read_only(True)
        try:
            self.worker.start(project, dataset, **overrides)
        except Exception as exc:  # a snapshot that cannot be taken, a thread that cannot start
            self.doc.set_read_only(False)
            self._run_project = None
            self._show_message(f"training could not start: {exc}", "error")
            return False
        return True

    def edit_recipe(self) -> None:
        """Open the recipe dialog; OK applies the edit as one undo step."""
        if self.doc is None or self.worker.running:
            return
        from desktop.panels.recipe import RecipeDialog

        dialog = RecipeDialog(self.doc.project.recipe, self)
        if dialog.exec() and dialog.recipe() is not None:
            self.doc.set_recipe(dialog.recipe())

    def resume_from_checkpoint(self, path: str | None = None) -> bool:
        """Train on from a checkpoint (asks for the file when none is given)."""
        if self.doc is None or self.worker.running:
            return False
        if not path:
            from PySide6.QtWidgets import QFileDialog

            start = self.run_dir / "checkpoints" if self.run_dir else runs_root(self.doc.project)
            path, _ = QFileDialog.getOpenFileName(self, "Resume from checkpoint", str(start),
                                                  "Keras weights (*.weights.h5)")
            if not path:
                return False
        return self.start(initial_weights=path)

    def _open_run_dir(self):
        if self.run_dir is not None:
            from PySide6.QtCore import QUrl
            from PySide6.QtGui import QDesktopServices

            QDesktopServices.openUrl(QUrl.fromLocalFile(str(self.run_dir)))

    def _cannot_start(self, project) -> str:
        return not_ready(self.doc, "train")

    def toggle_pause(self) -> None:
        state = self.worker.state
        if not self.worker.running or state is None:
            return
        if state.paused:
            self.worker.resume()
        else:
            self.worker.pause()
        self._update_controls()

    def pause(self) -> None:
        if self.worker.running and self.worker.state is not None and not self.worker.state.paused:
            self.toggle_pause()

    def resume(self) -> None:
        if self.worker.running and self.worker.state is not None and self.worker.state.paused:
            self.toggle_pause()

    def stop(self) -> None:
        if self.worker.running:
            self.worker.stop()
            self._update_controls()
            self._show_message("stopping after this batch; the best weights are kept", "info")

    def shutdown(self, timeout_ms: int = 30_000) -> bool:
        """Stop a run and wait for its thread (closing the window)."""
        self._timer.stop()
        self._restore_switch_interval()
        return self.worker.wait(timeout_ms)

    def _update_controls(self):
        running = self.worker.running
        state = self.worker.state
        paused = bool(running and state is not None and state.paused)
        stopping = bool(running and state is not None and state.cancelled)
        self.start_action.setEnabled(not running and self.doc is not None)
        self.resume_ckpt_action.setEnabled(not running and self.doc is not None)
        self.recipe_action.setEnabled(not running and self.doc is not None)
        self.pause_action.setEnabled(running and not stopping)
        self.pause_action.setText("Resume" if paused else "Pause")
        self.pause_action.setIcon(self._icons["start" if paused else "pause"])
        self.stop_action.setEnabled(running and not stopping)
        for w in (self.epochs_spin, self.batch_spin, self.quick_check, self.xla_check):
            w.setEnabled(not running)

    # ------------------------------------------------------------------ worker events

    def _on_started(self):
        self._timer.start()
        # While a run goes, a thread waiting for the interpreter lock gets it within a
        # millisecond instead of five: the training loop is not held up by a redraw's
        # Python, nor the UI by the loop's.
        if self._switch_interval is None:
            self._switch_interval = sys.getswitchinterval()
            sys.setswitchinterval(min(self._switch_interval, SWITCH_INTERVAL))
        self._update_controls()
        self.progress.setFormat("starting…")
        self._show_message("training started; the model cannot be edited until it ends", "info")
        self.sig_training_started.emit()

    def _restore_switch_interval(self) -> None:
        if self._switch_interval is not None:
            sys.setswitchinterval(self._switch_interval)
            self._switch_interval = None

    def _on_finished(self, payload: dict, ok: bool):
        self._timer.stop()
        self._restore_switch_interval()
        self.refresh(force=True)  # whatever the last tick did not draw
        self._fit_x()  # a run stopped early: its plots fit what it did
        if self.doc is not None:
            self.doc.set_read_only(False)
        kept = self._keep_weights()
        self.last_result = payload
        stopped = payload.get("stopped", "completed")
        message = payload.get("message") or ""
        if stopped == "nan":
            self._show_message(f"Training stopped: {message}", "error")
        elif stopped == "stopped":
            self._show_message(f"Stopped by you: {message}" if message else "Stopped by you.",
                               "warn")
        else:
            self._show_message(_summary(payload), "ok")
        if kept and payload.get("epochs"):
            self.sig_message.emit("the trained weights are in the project (save to keep them)")
        if self.run_dir is not None and self.run_dir.exists():
            self.sig_message.emit(f"checkpoints, history.csv and TensorBoard logs: {self.run_dir}")
        self.open_run_button.setVisible(self.run_dir is not None and self.run_dir.exists())
        if stopped != "nan":
            self.progress.setValue(self.progress.maximum())
        self.progress.setFormat({"nan": "stopped: NaN loss", "stopped": "stopped"}.get(stopped,
                                                                                       "done"))
        empty = None if payload.get("evaluable", True) else (
            "This model makes samples, codes or maps, not predictions of the data's targets, so "
            "there is no confusion matrix or fit to show; its own measures are below.")
        self.evaluation.set_evaluation(payload.get("evaluation"), payload.get("metrics"), empty)
        self._update_controls()
        self.sig_training_finished.emit(payload, ok)

    def _on_failed(self, message: str):
        self._timer.stop()
        self._restore_switch_interval()
        self.refresh(force=True)
        self._fit_x()
        if self.doc is not None:
            self.doc.set_read_only(False)
        self._run_project = None
        self.progress.setFormat("failed")
        self._show_message(f"Training failed: {message}", "error")
        self.evaluation.clear("Training failed.")
        self._update_controls()
        self.last_result = {"stopped": "failed", "message": message}
        self.sig_training_finished.emit(self.last_result, False)

    def _keep_weights(self) -> bool:
        """Put the trained weights into the project and mark the document unsaved."""
        doc, project, self._run_project = self.doc, self._run_project, None
        if doc is None or project is None or doc.project is not project or not self.worker.weights:
            return False
        project.weights.update(self.worker.weights)
        # Trained weights are not an undoable edit: the stack is marked "never clean"
        # (as a restored autosave is), so the document stays unsaved until saved, and
        # undo cannot make it look saved while the weights differ from the file.
        doc.undo_stack.resetClean()
        return True

    def _show_message(self, text: str, kind: str = "info") -> None:
        show_message(self.message_label, text, kind)
        self.sig_message.emit(text)

    def showEvent(self, event):
        super().showEvent(event)
        self._ensure_plots()
        if self.worker.state is not None:
            QTimer.singleShot(0, self, self._redraw_now)  # what was not drawn while hidden

    def _redraw_now(self):
        if self.worker.state is not None:
            self.refresh(force=True)

    # ------------------------------------------------------------------ live data

    def _reset_data(self):
        self.batch = Series(1024)
        self.batch_avg = Series(1024)
        self._ema = None
        self.epoch_series: dict[str, Series] = {}
        self.epoch_curves: dict[str, pg.PlotDataItem] = {}
        self._colors: dict[str, str] = {}
        self.grad_series: dict[str, Series] = {}
        self.grad_curves: dict[str, pg.PlotDataItem] = {}
        self.histograms: dict[str, list[tuple[np.ndarray, np.ndarray]]] = {}
        self.layers: list[str] = []
        self.steps_per_epoch = 1
        self.epochs_total = 0
        self.epochs_done = 0
        self._last_grad: dict[str, float] = {}
        self._batch_pending = False  # batch losses not drawn yet
        self._pending_view = None  # the latest live view not drawn yet
        if self._view_tab >= 0:  # a new run shows its own view, or none
            self.pages.removeTab(self._view_tab)
            self._view_tab = -1
        self.live_view.clear()
        self._dirty: set[str] = set()  # plots whose data changed since they were drawn
        self._plot_queue = list(EPOCH_PLOTS)  # the least recently drawn first
        self._last_draw = 0.0
        self._draw_spent = 0.0  # seconds spent in setData while drawing (painting is apart)
        self._draw_start = time.perf_counter()
        self._last_progress = 0.0
        self._batch_span = 0  # the batch plot's planned x span while a run goes (0: none)
        self._x_due = False  # the x axes are to span the planned run
        self._paint_base = self.plots.paint_total
        self.layer_combo.blockSignals(True)
        self.layer_combo.clear()
        self.layer_combo.blockSignals(False)
        self.progress.setValue(0)
        self._fit_x()
        P = self.plot_items
        if not P:
            return
        for key in ("loss", "metrics", "grad"):
            plot = P[key]
            for item in list(plot.listDataItems()):
                plot.removeItem(item)
            if plot.legend is not None:
                plot.legend.clear()
        for curve in (self.batch_curve, self.batch_avg_curve, self.lr_curve, self.speed_curve):
            curve.setData([], [])
        self.grad_bars.setOpts(x=[], height=[])
        self.heat_image.clear()
        for key in ("lr", "grad", "grad_bar"):
            self._say_missing(key, False)

    def refresh(self, force: bool = False) -> None:
        """One timer tick: take the events gathered since the last one and redraw once.

        Args:
            force: redraw now, however recently the plots were drawn.
        """
        state = self.worker.state
        if state is None:
            return
        events = state.drain()
        batch_changed = self._batch_pending
        for ev in events:
            kind, payload = ev.kind, ev.payload
            if kind == "batch":
                step, loss = payload
                self.batch.append(step, loss)
                if self._batch_span and step > self._batch_span:
                    self._fit_x()  # a loop ran more steps than it estimated
                if math.isfinite(loss) and loss > 0:
                    self._ema = loss if self._ema is None else EMA * self._ema + (1 - EMA) * loss
                    self.batch_avg.append(step, self._ema)
                batch_changed = True
            elif kind == "epoch":
                self._add_epoch(payload)
                self._dirty.update(EPOCH_PLOTS)
            elif kind == "view":
                self._pending_view = payload
            elif kind == "begin":
                self._on_begin(payload)
            elif kind == "status":
                self._update_controls()
        if self.worker.running and (force or time.perf_counter() - self._last_progress
                                    >= PROGRESS_MS / 1000):
            self._show_progress(state)
        if self.worker.running and not force and self.batch.n == 0 and self.epochs_done == 0:
            # Before the first step ends, TensorFlow is tracing it: Python work under the
            # lock the UI's Python shares. Views, axes and plots wait until it is done.
            return
        if self._x_due:
            self._plan_x()
        if self._pending_view is not None and (force or self.live_view.isVisible()
                                               or self._view_tab < 0):
            self._show_view(self._pending_view)  # the latest only: older ones are stale
            self._pending_view = None
        if not force and not self.plots.isVisible():
            self._batch_pending = batch_changed  # a dock behind another tab: draw when shown
            return
        self._ensure_plots()
        # The plots are redrawn only while drawing them (setData and painting) has cost
        # at most PAINT_BUDGET of the time so far: a fast machine redraws at every tick,
        # a slow one less often (but at least once a second), and training keeps the
        # processor (the UI thread's Python runs under the same lock as the training
        # loop's). Whatever a tick skips stays pending for the next one.
        now = time.perf_counter()
        spent = self.plots.paint_total - self._paint_base + self._draw_spent
        due = force or spent <= PAINT_BUDGET * (now - self._draw_start) \
            or now - self._last_draw >= MAX_REDRAW_MS / 1000
        # The longest-waiting plots first: epochs can come faster than redraws, and the
        # last plots of the grid must not wait for ever behind the first.
        todo = [k for k in self._plot_queue if k in self._dirty]
        if not due or not (todo or batch_changed):
            self._batch_pending = batch_changed
            return
        # An epoch's plots: a few per tick, so no single repaint is long (a late event
        # loop is what a user feels).
        todo = todo if force else todo[:PLOTS_PER_TICK]
        for key in todo:
            self._dirty.discard(key)
            self._draw_plot(key)
        # Losses and metrics come round again after two others, the rest after all.
        rest = [k for k in self._plot_queue if k not in todo]
        self._plot_queue = rest[:2] + [k for k in todo if k in FIRST_PLOTS] + rest[2:] + \
            [k for k in todo if k not in FIRST_PLOTS]
        if batch_changed:
            self.batch_curve.setData(self.batch.x, _positive(self.batch.y))
            self.batch_avg_curve.setData(self.batch_avg.x, self.batch_avg.y)
        # The new data's ranges and axes now, not in the paint: changed there, they ask
        # for a second paint of the whole grid straight after the first.
        self.plots.scene().prepareForPaint()
        self._batch_pending = False
        self._last_draw = time.perf_counter()
        self._draw_spent += self._last_draw - now
        self.redraws += 1

    def _show_view(self, payload: dict) -> None:
        view = payload.get("view") or {}
        if self._view_tab < 0:
            self._view_tab = self.pages.insertTab(1, self.live_view, view.get("title") or "Model")
        else:
            self.pages.setTabText(self._view_tab, view.get("title") or "Model")
        self.live_view.set_view(view, payload.get("epoch"))

    def _on_begin(self, payload: dict):
        self.epochs_total = int(payload.get("epochs") or 0)
        self.steps_per_epoch = int(payload.get("steps") or 1)
        self.layers = list(payload.get("layers") or [])
        self._x_due = True  # once the first step is done (see refresh)

    def _plan_x(self) -> None:
        """While a run goes, the x axes span the whole planned run (epochs; the batch plot
        its steps): the curves grow into the plots as the run progresses, and the axes
        are not laid out again at every redraw (most of what a redraw costs)."""
        if not self.plot_items or not self.epochs_total:
            return
        self._x_due = False
        P = self.plot_items
        for key in X_BY_EPOCH:
            P[key].setXRange(0.5, self.epochs_total + 0.5, padding=0.02)
        self._batch_span = self.epochs_total * self.steps_per_epoch
        P["batch"].setXRange(0, self._batch_span, padding=0.02)

    def _fit_x(self) -> None:
        """The x axes follow the data again (after a run, or past a loop's estimated steps)."""
        self._batch_span = 0
        self._x_due = False
        for key in X_BY_EPOCH + ("batch",):
            if key in self.plot_items:
                self.plot_items[key].enableAutoRange(x=True)

    def _add_epoch(self, payload: dict):
        epoch = int(payload.get("epoch", self.epochs_done + 1))
        self.epochs_done = epoch
        for key, value in (payload.get("logs") or {}).items():
            series = self.epoch_series.get(key)
            if series is None:
                series = self.epoch_series[key] = Series(64)
            series.append(epoch, value)
        for layer, norm in (payload.get("grad_norms") or {}).items():
            series = self.grad_series.get(layer)
            if series is None:
                series = self.grad_series[layer] = Series(64)
            series.append(epoch, norm)
        self._last_grad = dict(payload.get("grad_norms") or {})
        hist = payload.get("histograms") or {}
        for layer, h in hist.items():
            self.histograms.setdefault(layer, []).append(
                (np.asarray(h["counts"], dtype=np.float64),
                 np.asarray(h["edges"], dtype=np.float64)))
        if hist and self.layer_combo.count() != len(self.histograms):
            current = self.layer_combo.currentText()
            self.layer_combo.blockSignals(True)
            self.layer_combo.clear()
            self.layer_combo.addItems(list(self.histograms))
            if current in self.histograms:
                self.layer_combo.setCurrentText(current)
            self.layer_combo.blockSignals(False)

    def _say_missing(self, key: str, missing: bool) -> None:
        """A plot whose numbers this run does not report says so in its title."""
        base = self._titles[key]
        title = base.split(" (")[0] + ": not reported by this training" if missing else base
        if self.plot_items[key].titleLabel.text != title:
            self.plot_items[key].setTitle(title, color="#888" if missing else "#222", size="10pt")

    def _draw_plot(self, key: str):
        """Give one plot its new data (one ``setData`` per curve)."""
        if key in ("lr", "grad", "grad_bar"):
            have = self.epoch_series.get("learning_rate") if key == "lr" else self.grad_series
            self._say_missing(key, self.epochs_done > 0 and not have)
        if key == "lr":
            s = self.epoch_series.get("learning_rate")
            if s is not None:
                self.lr_curve.setData(s.x, _positive(s.y))
        elif key == "speed":
            s = self.epoch_series.get("samples_per_second")
            if s is not None:
                self.speed_curve.setData(s.x, s.y)
        elif key in ("loss", "metrics"):
            for name, series in self.epoch_series.items():
                if name in ("learning_rate", "samples_per_second") or _is_loss(name) != (key == "loss"):
                    continue
                curve = self.epoch_curves.get(name) or self._make_epoch_curve(name)
                curve.setData(series.x, _positive(series.y) if key == "loss" else series.y)
        elif key == "grad":
            self._draw_grad_curves()
        elif key == "grad_bar":
            self._draw_grad_bars()
        elif key == "heat":
            self._draw_heatmap()

    def _grad_layers(self) -> list[str]:
        return [name for name in self.layers if name in self.grad_series] + \
            [name for name in self.grad_series if name not in self.layers]

    def _draw_grad_curves(self):
        P = self.plot_items
        layers = self._grad_layers()
        for i, layer in enumerate(layers):
            curve = self.grad_curves.get(layer)
            if curve is None:
                # No legend: it would cover the curves; the bar chart beside names the
                # layers in the same colours.
                curve = P["grad"].plot(pen=pg.mkPen(_depth_color(i, len(layers)), width=2))
                self.grad_curves[layer] = curve
            s = self.grad_series[layer]
            curve.setData(s.x, _positive(s.y))

    def _draw_grad_bars(self):
        P = self.plot_items
        layers = self._grad_layers()
        if self._last_grad:
            heights = [math.log10(max(self._last_grad.get(n, 0.0), 1e-12)) for n in layers]
            brushes = [_depth_color(i, len(layers)) for i in range(len(layers))]
            self.grad_bars.setOpts(x=np.arange(len(layers)), height=heights, brushes=brushes,
                                   width=0.7)
            ticks = [(i, n if len(n) <= 10 else n[:9] + "…") for i, n in enumerate(layers)]
            step = max(1, len(layers) // 8)
            P["grad_bar"].getAxis("bottom").setTicks([ticks[::step]])

    def _make_epoch_curve(self, key: str) -> pg.PlotDataItem:
        base = key.removeprefix("val_")
        plot = self.plot_items["loss" if _is_loss(key) else "metrics"]
        color = self._colors.get(base)
        if color is None:  # training and validation of one metric share a colour
            color = self._colors[base] = "#1f77b4" if base == "loss" else \
                PALETTE[(1 + sum(k != "loss" for k in self._colors)) % len(PALETTE)]
        validation = key.startswith("val_")
        pen = pg.mkPen(color, width=2, style=Qt.DashLine if validation else Qt.SolidLine)
        label = f"{'validation' if validation else 'training'} {base}"
        curve = plot.plot(pen=pen, name=label, symbol="o" if validation else None, symbolSize=4,
                          symbolBrush=color, symbolPen=None)
        self.epoch_curves[key] = curve
        return curve

    def _draw_heatmap(self):
        if not self.plot_items:
            return
        layer = self.layer_combo.currentText()
        hists = self.histograms.get(layer)
        if not hists:
            self.heat_image.clear()
            return
        lo = min(float(e[0]) for _, e in hists)
        hi = max(float(e[-1]) for _, e in hists)
        if not hi > lo:
            hi = lo + 1e-6
        grid = np.linspace(lo, hi, HEAT_BINS + 1)
        image = np.zeros((len(hists), HEAT_BINS), dtype=np.float64)
        for i, (counts, edges) in enumerate(hists):
            # Re-bin each epoch's histogram onto one grid (counts spread evenly within a
            # bin), so the columns line up and no grid row is left empty.
            cumulative = np.concatenate([[0.0], np.cumsum(counts)])
            image[i] = np.diff(np.interp(grid, edges, cumulative))
        image /= np.maximum(image.max(axis=1, keepdims=True), 1.0)
        self.heat_image.setImage(np.sqrt(image), levels=(0.0, 1.0))  # [x=epoch, y=value]
        self.heat_image.setRect(QRectF(0.5, lo, len(hists), hi - lo))

    def _show_progress(self, state):
        self._last_progress = time.perf_counter()
        fraction = float(state.fraction)
        text = f"{fraction * 100:.0f}%"
        if self.epochs_total:
            text += f"  ·  epoch {min(self.epochs_done + 1, self.epochs_total)}/{self.epochs_total}"
        if state.paused:
            text += "  ·  paused"
        else:
            eta = state.eta()
            if eta is not None and fraction > 0.02:
                text += f"  ·  {_duration(eta)} left"
        if state.message and not self.epochs_total:
            text = f"{state.message}…"
        elif state.message and fraction >= 1.0:  # after the last epoch: evaluating, measuring...
            text = f"{fraction * 100:.0f}%  ·  {state.message}"
        # The text first: setValue repaints the bar at once, and with the new text that
        # is the only paint (the other way round the bar is painted twice a tick).
        if text != self.progress.format():
            self.progress.setFormat(text)
        self.progress.setValue(int(round(fraction * self.progress.maximum())))


def runs_root(project) -> Path:
    """Where a project's runs go: beside a saved project, else in the app's data folder."""
    if project.path is not None:
        stem = project.path.name.removesuffix(".lforge")
        return project.path.with_name(f"{stem}.runs")
    title = "".join(c if c.isalnum() or c in "-_" else "-" for c in project.name)[:40] or "untitled"
    return app_data_dir() / "runs" / title


def new_run_dir(project) -> Path:
    """A fresh folder for one run's checkpoints and logs (named by the time it started)."""
    root = runs_root(project)
    stamp = time.strftime("%Y%m%d-%H%M%S")
    path, n = root / stamp, 1
    while path.exists():
        n += 1
        path = root / f"{stamp}-{n}"
    path.mkdir(parents=True)
    return path


def _is_loss(key: str) -> bool:
    """Losses share the loss plot: ``loss`` and the parts a custom step logs (``g_loss``, ``kl_loss``)."""
    base = key.removeprefix("val_")
    return base == "loss" or base.endswith("_loss")


def _positive(y: np.ndarray) -> np.ndarray:
    """Log axes cannot show zero or negative values: those become NaN (a gap), not an error."""
    if y.size and (y <= 0).any():
        y = np.where(y > 0, y, np.nan)
    return y


def _depth_color(i: int, n: int):
    """Early layers dark, late layers light (viridis), so depth reads at a glance."""
    cmap = pg.colormap.get("viridis")
    return cmap.map(0.05 + 0.85 * (i / max(1, n - 1)), mode="qcolor")


def _duration(seconds: float) -> str:
    seconds = max(0, int(round(seconds)))
    if seconds < 60:
        return f"{seconds} s"
    minutes, s = divmod(seconds, 60)
    if minutes < 60:
        return f"{minutes} min {s:02d} s"
    hours, m = divmod(minutes, 60)
    return f"{hours} h {m:02d} min"


def _number(value: float) -> str:
    """Four decimals, or none for a count (modes covered, clusters found)."""
    return str(int(value)) if float(value).is_integer() else f"{value:.4f}"


def _summary(payload: dict) -> str:
    metrics = payload.get("metrics") or {}
    quality = payload.get("quality") or {}
    epochs, took = payload.get("epochs", 0), _duration(payload.get("seconds") or 0)
    parts = [f"Trained {epochs} epochs in {took}"]
    if payload.get("stopped") == "early_stopping":
        parts[0] = f"Early stopping after {epochs} epochs ({took})"
    shown = quality.get("metric")
    if shown and quality.get("value") is not None:
        parts.append(f"{shown.replace('_', ' ')} {_number(quality['value'])}")
    for key in ("test_accuracy", "test_loss", "test_mae"):
        if key != shown and metrics.get(key) is not None:
            parts.append(f"{key.replace('_', ' ')} {_number(metrics[key])}")
    return " — ".join(parts[:1]) + (": " + ", ".join(parts[1:]) if len(parts) > 1 else "")


__all__ = ["TrainingPanel", "Series", "SHORTCUTS"]
