"""The search panel: run a search over the marked ranges and watch its trials.

A thin face over :func:`models.search.run_search`: it runs in a
:class:`~desktop.workers.RunWorker` thread, a timer drains the run's state
(each trial's start, epochs and result), the table gets a row per trial (its
values and score, the best in bold on green) and the plot a point per trial
with the best score so far. Stop ends the trial that is training and keeps
what finished; the best trial opens as a new project with its trained weights.
The algorithm and the trial budget are saved in the project (undoable).
"""
from __future__ import annotations

import math

import numpy as np
import pyqtgraph as pg
from PySide6.QtCore import Qt, QTimer, Signal
from PySide6.QtGui import QAction, QBrush, QColor, QFont, QKeySequence
from PySide6.QtWidgets import (
    QAbstractItemView,
    QCheckBox,
    QComboBox,
    QHBoxLayout,
    QHeaderView,
    QLabel,
    QPushButton,
    QSpinBox,
    QSplitter,
    QStyle,
    QTableWidget,
    QTableWidgetItem,
    QVBoxLayout,
    QWidget,
)

from desktop.panels.evaluation import add_legend, style_plot
from desktop.panels.run_controls import (
    not_ready,
    progress_row,
    reconnect,
    run_button,
    show_message,
)
from desktop.workers import RunWorker
from models import search

REDRAW_MS = 200
BEST_BRUSH = QColor("#d7f0d2")
FAILED_COLOR = QColor("#9e9e9e")
# The score comes first after the status, so it is in view however many ranges are marked.
FIXED_COLUMNS = ("#", "status", "score")
TAIL_COLUMNS = ("epochs", "seconds")
SCORE_COLUMN = 2
MAX_TICKED_TRIALS = 25   # up to this many trials, every trial number gets a tick


class SearchPanel(QWidget):
    """Search the document's marked ranges with keras-tuner.

    Signals:
        sig_message(str): a line for the status bar and the log.
        sig_open_project(object): the user asked to open the best trial (a Project).
        sig_search_finished(object): the run ended (its SearchResult, or None when it failed).
    """

    sig_message = Signal(str)
    sig_open_project = Signal(object)
    sig_search_finished = Signal(object)

    def __init__(self, parent=None):
        super().__init__(parent)
        self.doc = None
        self.worker = RunWorker(self)
        self.worker.sig_done.connect(self._on_done)
        self.worker.sig_started.connect(self._on_started)
        self.best_project = None
        self.result = None  # the last search's SearchResult
        self.trials: dict[int, dict] = {}  # number -> its record (json), running ones too
        self._columns: list[str] = []
        self._timer = QTimer(self)
        self._timer.setInterval(REDRAW_MS)
        self._timer.timeout.connect(self.refresh)
        self._build_controls()
        self._build_views()
        lay = QVBoxLayout(self)
        lay.setContentsMargins(4, 4, 4, 4)
        lay.setSpacing(4)
        lay.addLayout(self._controls_row)
        lay.addLayout(self._status_row)
        lay.addWidget(self.space_label)
        lay.addWidget(self.splitter, 1)
        self._update_controls()

    # ------------------------------------------------------------------ building

    def _build_controls(self):
        style = self.style()
        self.start_action = QAction(style.standardIcon(QStyle.SP_MediaPlay), "Search", self)
        self.start_action.setObjectName("search_start")
        self.start_action.setShortcut(QKeySequence("Ctrl+Shift+R"))
        self.start_action.setToolTip("Search the marked ranges (Ctrl+Shift+R)")
        self.start_action.triggered.connect(lambda: self.start())
        self.stop_action = QAction(style.standardIcon(QStyle.SP_MediaStop), "Stop", self)
        self.stop_action.setObjectName("search_stop")
        self.stop_action.setToolTip("Stop the search; the trials that finished are kept")
        self.stop_action.triggered.connect(self.stop)
        self.actions_by_name = {"start": self.start_action, "stop": self.stop_action}
        for act in self.actions_by_name.values():
            self.addAction(act)

        self.start_button = run_button(self.start_action)
        self.stop_button = run_button(self.stop_action)
        self.algorithm_combo = QComboBox()
        for key, title in search.ALGORITHMS.items():
            self.algorithm_combo.addItem(title, key)
        self.algorithm_combo.setToolTip(
            "Random search draws values at random; Hyperband trains many trials briefly and "
            "continues the best; Bayesian optimization proposes values where a better score "
            "is likely, from the scores so far")
        self.algorithm_combo.activated.connect(self._on_algorithm_chosen)
        self.trials_spin = QSpinBox()
        self.trials_spin.setRange(1, 10_000)
        self.trials_spin.setToolTip("the trial budget: how many models to train")
        self.trials_spin.setKeyboardTracking(False)
        self.trials_spin.valueChanged.connect(self._on_trials_changed)
        self.quick_check = QCheckBox("Quick preset")
        self.quick_check.setToolTip("train each trial with the template's quick recipe")
        self.objective_label = QLabel("")
        self.objective_label.setToolTip("what the trials are compared on (the validation split)")
        self.open_button = QPushButton("Open Best as New Project")
        self.open_button.setToolTip("the best trial's model and recipe, with its trained weights")
        self.open_button.clicked.connect(self.open_best)
        row = QHBoxLayout()
        row.setSpacing(6)
        row.addWidget(self.start_button)
        row.addWidget(self.stop_button)
        row.addSpacing(12)
        row.addWidget(QLabel("Algorithm"))
        row.addWidget(self.algorithm_combo)
        row.addWidget(QLabel("Trials"))
        row.addWidget(self.trials_spin)
        row.addWidget(self.quick_check)
        row.addSpacing(8)
        row.addWidget(self.objective_label)
        row.addStretch(1)
        row.addWidget(self.open_button)
        self._controls_row = row

        self._status_row, self.progress, self.message_label = progress_row()
        self.space_label = QLabel("")
        self.space_label.setWordWrap(True)
        self.space_label.setTextFormat(Qt.RichText)
        self.space_label.setTextInteractionFlags(Qt.TextSelectableByMouse)

    def _build_views(self):
        self.table = QTableWidget(0, 0)
        self.table.setEditTriggers(QAbstractItemView.NoEditTriggers)
        self.table.setSelectionBehavior(QAbstractItemView.SelectRows)
        self.table.verticalHeader().setVisible(False)
        self.table.setAlternatingRowColors(False)
        self.table.horizontalHeader().setSectionResizeMode(QHeaderView.ResizeToContents)
        self.table.horizontalHeader().setStretchLastSection(True)
        self.plot_widget = pg.PlotWidget(background="w")
        self.plot = style_plot(self.plot_widget.getPlotItem(), "Score per trial", "trial", "score")
        for side in ("bottom", "left"):  # trial numbers and scores read as they are
            self.plot.getAxis(side).enableAutoSIPrefix(False)
        self.plot.showGrid(x=False, y=True, alpha=0.15)
        self.legend = add_legend(self.plot)
        self.best_line = self.plot.plot(pen=pg.mkPen("#2e7d32", width=2), name="best so far")
        self.points = pg.ScatterPlotItem(size=8, pen=None, brush=pg.mkBrush("#1f77b4"),
                                         name="trial")
        self.best_point = pg.ScatterPlotItem(size=16, symbol="star", pen=pg.mkPen("#1b5e20"),
                                             brush=pg.mkBrush("#ffd54f"), name="best trial")
        self.plot.addItem(self.points)
        self.plot.addItem(self.best_point)
        self.splitter = QSplitter(Qt.Horizontal)
        self.splitter.addWidget(self.table)
        self.splitter.addWidget(self.plot_widget)
        self.splitter.setStretchFactor(0, 3)
        self.splitter.setStretchFactor(1, 2)
        self.splitter.setSizes([600, 400])  # the table is what the panel is for

    # ------------------------------------------------------------------ document

    def set_document(self, doc) -> None:
        reconnect(self.doc, doc, (("sig_project_changed", self._load_settings),
                                  ("sig_reset", self._on_doc_reset),
                                  ("sig_graph_event", self._on_graph_event)))
        self.doc = doc
        self._load_settings()

    def _load_settings(self):
        """Show the project's algorithm, budget, objective and marks (unless a search runs)."""
        recipe = self.doc.project.recipe if self.doc is not None else {}
        cfg = search.settings(recipe)
        if not self.worker.running:
            self.algorithm_combo.setCurrentIndex(max(0, self.algorithm_combo.findData(cfg["algorithm"])))
            self.trials_spin.blockSignals(True)
            self.trials_spin.setValue(int(cfg["trials"]))
            self.trials_spin.blockSignals(False)
            self.quick_check.setVisible(isinstance(recipe.get("quick"), dict))
            objective, direction = search.objective_of(cfg, recipe)
            better = "higher" if direction == "max" else "lower"
            self.objective_label.setText(f"objective: {objective} ({better} is better)")
        self._show_space()
        self._update_controls()

    def _show_space(self):
        if self.doc is None:
            self.space_label.setText("")
            return
        marks = search.space(self.doc.project.recipe)
        if not marks:
            self.space_label.setText(
                "<span style='color:#5f6368'>Nothing is marked yet: select a layer and press "
                "⇆ beside a parameter in the Inspector (or, with no layer selected, beside a "
                "training setting).</span>")
            return
        problems = search.problems(self.doc.project)
        items = [f"<b>{search.mark_name(m)}</b> {search.describe_mark(m)}" for m in marks]
        text = "Search space: " + " &nbsp;·&nbsp; ".join(items)
        if problems:
            text += "<br><span style='color:#c62828'>" + "; ".join(problems) + "</span>"
        self.space_label.setText(text)

    def _on_graph_event(self, event):
        if event.kind in ("node_removed", "node_added", "node_renamed", "reset"):
            self._show_space()

    def _on_doc_reset(self):
        if self.worker.running:
            # The trials belong to the project that was closed; stop, keep nothing to open.
            self.worker.stop()
            self._show_message("another project was opened; the search was stopped", "warn")
        self._load_settings()

    def _on_algorithm_chosen(self, index: int):
        if self.doc is not None:
            self.doc.set_search_settings(algorithm=self.algorithm_combo.itemData(index))

    def _on_trials_changed(self, value: int):
        if self.doc is not None and not self.worker.running:
            self.doc.set_search_settings(trials=int(value))

    # ------------------------------------------------------------------ control

    def start(self, dataset=None) -> bool:
        """Start a search of the document's marks with the panel's algorithm and budget."""
        if self.doc is None or self.worker.running:
            return False
        project = self.doc.project
        problem = self._cannot_start(project)
        if problem:
            self._show_message(problem, "error")
            return False
        snapshot = project.copy()
        algorithm = self.algorithm_combo.currentData()
        trials = self.trials_spin.value()
        quick = self.quick_check.isVisible() and self.quick_check.isChecked()
        self._reset_views()
        self.worker.start(lambda st: search.run_search(snapshot, state=st, algorithm=algorithm,
                                                       trials=trials, quick=quick,
                                                       dataset=dataset))
        return True

    def _cannot_start(self, project) -> str:
        found = search.problems(project)
        return found[0] if found else not_ready(self.doc, "search")

    def stop(self) -> None:
        if self.worker.running:
            self.worker.stop()
            self._update_controls()
            self._show_message("stopping: the trial that is training ends now; finished trials "
                               "are kept", "info")

    def shutdown(self, timeout_ms: int = 30_000) -> bool:
        """Stop a search and wait for its thread (closing the window)."""
        self._timer.stop()
        return self.worker.wait(timeout_ms)

    def open_best(self) -> None:
        if self.best_project is not None:
            self.sig_open_project.emit(self.best_project.copy())

    def _update_controls(self):
        running = self.worker.running
        stopping = bool(running and self.worker.state is not None and self.worker.state.cancelled)
        self.start_action.setEnabled(not running and self.doc is not None)
        self.stop_action.setEnabled(running and not stopping)
        for w in (self.algorithm_combo, self.trials_spin, self.quick_check):
            w.setEnabled(not running)
        self.open_button.setEnabled(self.best_project is not None and not running)

    # ------------------------------------------------------------------ worker

    def _on_started(self):
        self._timer.start()
        self.progress.setFormat("starting…")
        self._show_message("searching: each trial trains one model; the table fills as they end",
                           "info")
        self._update_controls()

    def _on_done(self, state):
        self._timer.stop()
        self.refresh()
        result = state.result
        if state.error:
            self.progress.setFormat("failed")
            self._show_message(f"The search failed: {state.error}", "error")
        elif result is not None:
            self.show_result(result)
            self.progress.setValue(self.progress.maximum())
            self.progress.setFormat("stopped" if result.stopped == "stopped" else "done")
        self._update_controls()
        self.sig_search_finished.emit(result if not state.error else None)

    def show_result(self, result) -> None:
        """Show a finished :class:`~models.search.SearchResult`."""
        self.show_search(result.to_json(), result.best_project)

    def show_search(self, payload: dict, best_project) -> None:
        """Show a finished search from its JSON (``SearchResult.to_json()``) and its best project.

        Also used for a template whose training is a search (the NAS template
        trained from the Training panel).
        """
        numbers = {t["number"] for t in payload["trials"]}
        if set(self.trials) != numbers:
            self._reset_views()
            for t in payload["trials"]:
                self._on_trial(t)
        self.result, self.best_project = payload, best_project
        best = payload.get("best")
        if best is not None and best["metrics"].get("test_accuracy") is not None:
            self._set_row_tip(best["number"], f"test accuracy of the best model: "
                                              f"{best['metrics']['test_accuracy']:.4f}")
        self._mark_best()
        self._draw()
        message = payload.get("message") or ""
        kind = "warn" if payload.get("stopped") == "stopped" or best is None else "ok"
        self._show_message(message[:1].upper() + message[1:], kind)
        self._update_controls()

    def refresh(self) -> None:
        """One timer tick: take the trial events since the last one, update the table and plot."""
        state = self.worker.state
        if state is None:
            return
        changed = False
        for ev in state.drain():
            if ev.kind == "trial_begin":
                self._on_trial({**ev.payload, "status": "running", "score": None, "epochs": 0,
                                "seconds": None})
                changed = True
            elif ev.kind == "trial_epoch":
                number = ev.payload["trial"]
                if number in self.trials:
                    self.trials[number]["epochs"] = ev.payload["epoch"]
                    self._fill_row(number)
            elif ev.kind == "trial":
                self._on_trial(ev.payload)
                changed = True
            elif ev.kind == "status":
                self._update_controls()
        if self.worker.running:
            fraction = float(state.fraction)
            self.progress.setValue(int(round(fraction * self.progress.maximum())))
            self.progress.setFormat(f"{fraction * 100:.0f}%  ·  {state.message}" if state.message
                                    else f"{fraction * 100:.0f}%")
        if changed:
            self._draw()

    # ------------------------------------------------------------------ table and plot

    def _objective(self) -> tuple[str, str]:
        """What the trials shown are compared on, and which way is better."""
        if self.result is not None:
            return self.result["objective"], self.result["direction"]
        if self.doc is None:
            return "score", "max"
        recipe = self.doc.project.recipe
        return search.objective_of(search.settings(recipe), recipe)

    def _reset_views(self):
        self.trials = {}
        self.best_project = None
        self.result = None
        marks = search.space(self.doc.project.recipe) if self.doc is not None else []
        self._columns = [search.mark_name(m) for m in marks]
        headers = list(FIXED_COLUMNS) + self._columns + list(TAIL_COLUMNS)
        objective, direction = self._objective()
        headers[headers.index("score")] = objective
        # Scores fall when lower is better: the legend takes the corner they leave free.
        corner = (1, 0) if direction == "min" else (1, 1)
        self.legend.anchor(itemPos=corner, parentPos=corner,
                           offset=(-5, 5) if direction == "min" else (-5, -5))
        self.table.setRowCount(0)
        self.table.setColumnCount(len(headers))
        self.table.setHorizontalHeaderLabels(headers)
        self.points.setData([], [])
        self.best_line.setData([], [])
        self.best_point.setData([], [])
        self.progress.setValue(0)

    def _on_trial(self, record: dict) -> None:
        if self.table.columnCount() == 0:
            self._reset_views()
        number = int(record["number"])
        new = number not in self.trials
        for name in record.get("params") or {}:
            if name not in self._columns:  # a search shown from elsewhere (a trained template)
                self._columns.append(name)
                self.table.insertColumn(len(FIXED_COLUMNS) + len(self._columns) - 1)
                self.table.setHorizontalHeaderItem(len(FIXED_COLUMNS) + len(self._columns) - 1,
                                                   QTableWidgetItem(name))
        self.trials[number] = dict(record)
        if new:
            self.table.insertRow(self.table.rowCount())
        self._fill_row(number)
        if new:
            self.table.scrollToBottom()

    def _row_of(self, number: int) -> int:
        return sorted(self.trials).index(number)

    def _fill_row(self, number: int) -> None:
        t = self.trials[number]
        row = self._row_of(number)
        status = {"ok": "done", "failed": "failed"}.get(t["status"], t["status"])
        if t["status"] == "running" and t.get("epochs"):
            status = f"epoch {t['epochs']}"
        score = t.get("score")
        cells = [str(number), status, "" if score is None else f"{score:.4f}"]
        params = t.get("params") or {}
        cells += [_cell(params.get(name)) for name in self._columns]
        cells += [str(t.get("epochs") or ""),
                  "" if t.get("seconds") is None else f"{t['seconds']:.1f}"]
        for col, text in enumerate(cells):
            item = self.table.item(row, col)
            if item is None:
                item = QTableWidgetItem()
                self.table.setItem(row, col, item)
            item.setText(text)
            item.setTextAlignment(Qt.AlignRight | Qt.AlignVCenter if col != 1 else
                                  Qt.AlignLeft | Qt.AlignVCenter)
            if t["status"] == "failed":
                item.setForeground(QBrush(FAILED_COLOR))
                item.setToolTip(t.get("message") or "failed")
        self._mark_best()

    def _set_row_tip(self, number: int, tip: str) -> None:
        row = self._row_of(number)
        for col in range(self.table.columnCount()):
            item = self.table.item(row, col)
            if item is not None:
                item.setToolTip(tip)

    def best_number(self) -> int | None:
        """The best finished trial shown (by the objective's direction)."""
        direction = self._objective()[1]
        done = [(t["score"], n) for n, t in self.trials.items()
                if t["status"] == "ok" and t.get("score") is not None and math.isfinite(t["score"])]
        if not done:
            return None
        pick = max if direction == "max" else min
        # Ties go to the earlier trial, as the search keeps the first best it saw.
        return pick(done, key=lambda sn: (sn[0], -sn[1]) if direction == "max" else (sn[0], sn[1]))[1]

    def _mark_best(self) -> None:
        best = self.best_number()
        bold = QFont(self.table.font())
        bold.setBold(True)
        plain = QFont(self.table.font())
        for number in self.trials:
            row = self._row_of(number)
            for col in range(self.table.columnCount()):
                item = self.table.item(row, col)
                if item is None:
                    continue
                is_best = number == best
                item.setBackground(QBrush(BEST_BRUSH) if is_best else QBrush())
                item.setFont(bold if is_best else plain)

    def _draw(self) -> None:
        done = sorted((n, t["score"]) for n, t in self.trials.items()
                      if t["status"] == "ok" and t.get("score") is not None)
        if not done:
            self.points.setData([], [])
            self.best_line.setData([], [])
            self.best_point.setData([], [])
            return
        xs = np.array([n for n, _ in done], dtype=float)
        ys = np.array([s for _, s in done], dtype=float)
        self.points.setData(xs, ys)
        direction = self._objective()[1]
        running = np.maximum.accumulate(ys) if direction == "max" else np.minimum.accumulate(ys)
        # A step: the best so far holds until a trial beats it.
        step_x = np.repeat(xs, 2)[1:]
        step_y = np.repeat(running, 2)[:-1]
        self.best_line.setData(step_x, step_y)
        ticks = [(n, str(int(n))) for n in xs] if len(xs) <= MAX_TICKED_TRIALS else None
        self.plot.getAxis("bottom").setTicks([ticks] if ticks else None)
        self.plot.setXRange(xs.min() - 0.5, xs.max() + 0.5, padding=0)
        best = self.best_number()
        score = self.trials[best]["score"]
        self.best_point.setData([best], [score])
        self.plot.setTitle(f"Score per trial (best: trial {best}, {score:.4f})", color="#222",
                           size="10pt")

    def _show_message(self, text: str, kind: str = "info") -> None:
        show_message(self.message_label, text, kind)
        self.sig_message.emit(text)


def _cell(value) -> str:
    if value is None:
        return ""
    if isinstance(value, float):
        return f"{value:.4g}"
    if isinstance(value, list):
        return "×".join(str(v) for v in value)
    return str(value)


__all__ = ["SearchPanel"]
