"""The explain panel: why the trained model answers as it does, sample by sample.

Left: the method (the ones that do not apply are greyed, their reason in the
tooltip), its options, and the samples of the project's test split (an image
grid or table rows; several can be picked). Right: the result for one
explained sample and one input:

* images: the image under its heat map, with an opacity slider;
* tables: bar charts of this sample's attributions and of the mean absolute
  attribution over all explained samples, with the feature names;
* token inputs: the tokens, each highlighted by its weight;
* series: a steps x features heat map;
* attention: one queries x keys heat map per head of the chosen layer,
  labelled with the tokens.

Export writes the picture (drawn by :mod:`models.explain.render`, as the
command line draws it) or the numbers (CSV).

The work is the Qt-free :func:`models.explain.explain`: the data is loaded
and the model built in a background thread, the explanation runs in a
:class:`~desktop.workers.RunWorker` drained by a timer (progress, cancel).
"""
from __future__ import annotations

import html
from pathlib import Path

import numpy as np
import pyqtgraph as pg
from PySide6.QtCore import QEvent, QSize, Qt, QTimer, Signal
from PySide6.QtGui import QIcon, QStandardItem, QStandardItemModel
from PySide6.QtWidgets import (
    QAbstractItemView,
    QComboBox,
    QDoubleSpinBox,
    QFileDialog,
    QFormLayout,
    QHBoxLayout,
    QLabel,
    QListWidget,
    QListWidgetItem,
    QProgressBar,
    QPushButton,
    QSlider,
    QSpinBox,
    QSplitter,
    QStackedWidget,
    QTableWidget,
    QTableWidgetItem,
    QTextBrowser,
    QVBoxLayout,
    QWidget,
)

from desktop.panels.data import _pixmap
from desktop.panels.evaluation import style_plot
from desktop.panels.live_view import RENDERERS
from desktop.workers import RunWorker, run_in_thread

DRAIN_MS = 100       # how often the run's progress is read
PREPARE_MS = 300     # edits coalesce before the model is rebuilt
MAX_SAMPLES = 60     # samples offered in the picker
MAX_COLUMNS = 12     # table columns shown in the picker
MAX_BARS = 20        # features per bar chart
MAX_HEADS = 8        # attention heads drawn
PREFERRED = ("attention", "gradcam", "shap", "kernel-shap")  # the first that applies is chosen


def _color(value: float, lo: float, hi: float, signed: bool) -> str:
    """A background colour for a token: blue (lowers) - white - red (raises), or white - orange."""
    if signed:
        m = max(abs(lo), abs(hi)) or 1.0
        t = max(-1.0, min(1.0, value / m))
        if t >= 0:
            r, g, b = 255, int(255 * (1 - t * 0.75)), int(255 * (1 - t * 0.8))
        else:
            r, g, b = int(255 * (1 + t * 0.8)), int(255 * (1 + t * 0.6)), 255
    else:
        t = 0.0 if hi <= 0 else max(0.0, min(1.0, value / hi))
        r, g, b = 255, int(255 * (1 - t * 0.55)), int(255 * (1 - t * 0.95))
    return f"#{r:02x}{g:02x}{b:02x}"


class ExplainPanel(QWidget):
    """Pick samples, a method and its options; see and export the explanation.

    Signals:
        sig_message(str): a line for the status bar and the log.
        sig_explained(object): the finished :class:`models.explain.Explanation`.
        sig_prepared(): the model and data are ready (methods and samples shown).
    """

    sig_message = Signal(str)
    sig_explained = Signal(object)
    sig_prepared = Signal()

    def __init__(self, parent=None):
        super().__init__(parent)
        self.doc = None
        self.subject = None
        self.dataset = None
        self.reasons: dict[str, str | None] = {}
        self.explanation = None
        self.has_weights = False
        self._stale = True
        self._preparing = False
        self._explain_after_prepare = False
        self._threads = []
        self.worker = RunWorker(self)
        self.worker.sig_done.connect(self._on_done)
        self._timer = QTimer(self)
        self._timer.setInterval(DRAIN_MS)
        self._timer.timeout.connect(self._drain)
        self._prepare_timer = QTimer(self)
        self._prepare_timer.setSingleShot(True)
        self._prepare_timer.setInterval(PREPARE_MS)
        self._prepare_timer.timeout.connect(self.prepare)
        self._option_widgets: dict[str, QWidget] = {}
        self._window = None  # the top window, watched so a run stops when it closes
        self._build()
        self._update_controls()

    # ------------------------------------------------------------------ building

    def _build(self):
        self.status_label = QLabel("", wordWrap=True)
        self.method_combo = QComboBox()
        self.method_model = QStandardItemModel(self.method_combo)
        self.method_combo.setModel(self.method_model)
        self.method_combo.currentIndexChanged.connect(self._on_method)
        self.reason_label = QLabel("", wordWrap=True)
        self.reason_label.setStyleSheet("color: #666;")
        self.options_form = QFormLayout()
        self.options_form.setContentsMargins(0, 0, 0, 0)
        options_host = QWidget()
        options_host.setLayout(self.options_form)

        self.sample_grid = QListWidget()
        self.sample_grid.setViewMode(QListWidget.IconMode)
        self.sample_grid.setIconSize(QSize(56, 56))
        self.sample_grid.setResizeMode(QListWidget.Adjust)
        self.sample_grid.setMovement(QListWidget.Static)
        self.sample_grid.setSelectionMode(QAbstractItemView.ExtendedSelection)
        self.sample_table = QTableWidget()
        self.sample_table.setEditTriggers(QTableWidget.NoEditTriggers)
        self.sample_table.setSelectionBehavior(QAbstractItemView.SelectRows)
        self.sample_table.setSelectionMode(QAbstractItemView.ExtendedSelection)
        self.samples_stack = QStackedWidget()
        self.samples_stack.addWidget(self.sample_table)
        self.samples_stack.addWidget(self.sample_grid)
        self.samples_label = QLabel("Samples (test split; Ctrl/Shift-click for several):")

        self.explain_button = QPushButton("Explain")
        self.explain_button.setDefault(True)
        self.explain_button.clicked.connect(self.explain)
        self.cancel_button = QPushButton("Cancel")
        self.cancel_button.clicked.connect(self.cancel)
        self.progress = QProgressBar()
        self.progress.setRange(0, 1000)
        self.progress.setTextVisible(True)
        self.progress.setFormat("")
        self.png_button = QPushButton("Export PNG…")
        self.png_button.clicked.connect(lambda: self.export_png())
        self.csv_button = QPushButton("Export CSV…")
        self.csv_button.clicked.connect(lambda: self.export_csv())

        left = QWidget()
        lv = QVBoxLayout(left)
        lv.setContentsMargins(4, 4, 4, 4)
        lv.addWidget(self.status_label)
        form = QFormLayout()
        form.addRow("Method", self.method_combo)
        lv.addLayout(form)
        lv.addWidget(self.reason_label)
        lv.addWidget(options_host)
        lv.addWidget(self.samples_label)
        lv.addWidget(self.samples_stack, 1)
        run_row = QHBoxLayout()
        run_row.addWidget(self.explain_button)
        run_row.addWidget(self.cancel_button)
        run_row.addWidget(self.progress, 1)
        lv.addLayout(run_row)
        export_row = QHBoxLayout()
        export_row.addWidget(self.png_button)
        export_row.addWidget(self.csv_button)
        export_row.addStretch(1)
        lv.addLayout(export_row)

        # Result side.
        self.title_label = QLabel("", wordWrap=True)
        self.title_label.setStyleSheet("font-weight: bold;")
        self.sample_combo = QComboBox()
        self.sample_combo.setSizeAdjustPolicy(QComboBox.AdjustToContents)
        self.sample_combo.currentIndexChanged.connect(lambda _i: self._show())
        self.input_combo = QComboBox()
        self.input_combo.setSizeAdjustPolicy(QComboBox.AdjustToContents)
        self.input_combo.currentIndexChanged.connect(lambda _i: self._show())
        self.layer_combo = QComboBox()
        self.layer_combo.setSizeAdjustPolicy(QComboBox.AdjustToContents)
        self.layer_combo.currentIndexChanged.connect(lambda _i: self._show())
        self.opacity = QSlider(Qt.Horizontal)
        self.opacity.setRange(0, 100)
        self.opacity.setValue(60)
        self.opacity.setFixedWidth(140)
        self.opacity.valueChanged.connect(self._on_opacity)
        self._top_widgets = {"input": (QLabel("Input"), self.input_combo),
                             "layer": (QLabel("Layer"), self.layer_combo),
                             "opacity": (QLabel("Heat-map opacity"), self.opacity)}
        top = QHBoxLayout()
        top.addWidget(QLabel("Sample"))
        top.addWidget(self.sample_combo)
        for pair in self._top_widgets.values():
            for w in pair:
                top.addWidget(w)
        top.addStretch(1)
        self.pages = QStackedWidget()
        self.placeholder = QLabel("Pick samples and a method, then press Explain.")
        self.placeholder.setAlignment(Qt.AlignCenter)
        self.placeholder.setStyleSheet("color: #666;")
        self.image_view = pg.GraphicsLayoutWidget()
        self.image_view.setBackground("w")
        self.sample_plot = self.image_view.addPlot(row=0, col=0)
        self.image_plot = self.image_view.addPlot(row=0, col=1)
        self.base_item, self.under_item, self.heat_item = pg.ImageItem(), pg.ImageItem(), pg.ImageItem()
        self.sample_plot.addItem(self.base_item)
        self.image_plot.addItem(self.under_item)
        self.image_plot.addItem(self.heat_item)
        for plot, title in ((self.sample_plot, "the sample"), (self.image_plot, "its heat map")):
            style_plot(plot, title)
            plot.invertY(True)
            plot.setAspectLocked(True)
            plot.hideAxis("left")
            plot.hideAxis("bottom")
        self.image_plot.setXLink(self.sample_plot)  # zoom and pan one, the other follows
        self.image_plot.setYLink(self.sample_plot)
        self.colorbar = pg.ColorBarItem(values=(0, 1), colorMap=pg.colormap.get("inferno"),
                                        interactive=False, width=14)
        self.colorbar.setImageItem(self.heat_item, insert_in=self.image_plot)
        self.bars_view = pg.GraphicsLayoutWidget()
        self.bars_view.setBackground("w")
        self.local_plot = style_plot(self.bars_view.addPlot(row=0, col=0), "this sample")
        self.global_plot = style_plot(self.bars_view.addPlot(row=0, col=1), "")
        self.tokens_view = QTextBrowser()
        self.grid_view = pg.GraphicsLayoutWidget()  # heat maps: series, attention heads
        self.grid_view.setBackground("w")
        for w in (self.placeholder, self.image_view, self.bars_view, self.tokens_view, self.grid_view):
            self.pages.addWidget(w)
        self.notes_label = QLabel("", wordWrap=True)
        self.notes_label.setStyleSheet("color: #555;")
        self.notes_label.setTextInteractionFlags(Qt.TextSelectableByMouse)

        right = QWidget()
        rv = QVBoxLayout(right)
        rv.setContentsMargins(4, 4, 4, 4)
        rv.addWidget(self.title_label)
        rv.addLayout(top)
        rv.addWidget(self.pages, 1)
        rv.addWidget(self.notes_label)

        split = QSplitter(Qt.Horizontal)
        split.addWidget(left)
        split.addWidget(right)
        split.setStretchFactor(1, 1)
        split.setSizes([360, 840])
        lay = QVBoxLayout(self)
        lay.setContentsMargins(0, 0, 0, 0)
        lay.addWidget(split)

    # ------------------------------------------------------------------ document

    def set_document(self, doc) -> None:
        if self.doc is not None:
            for sig in (self.doc.sig_reset, self.doc.sig_project_changed, self.doc.sig_graph_event,
                        self.doc.sig_read_only_changed):
                try:
                    sig.disconnect(self._on_doc_changed)
                except (RuntimeError, TypeError):
                    pass
        self.doc = doc
        if doc is not None:
            for sig in (doc.sig_reset, doc.sig_project_changed, doc.sig_graph_event,
                        doc.sig_read_only_changed):
                sig.connect(self._on_doc_changed)
        self._on_doc_changed()

    def _on_doc_changed(self, *_args):
        """The model, its weights or its data may have changed: rebuild before the next run."""
        self._stale = True
        if self.isVisible():
            self._prepare_timer.start()
        self._update_controls()

    def showEvent(self, event):
        super().showEvent(event)
        window = self.window()
        if window is not self and window is not self._window:
            window.installEventFilter(self)
            self._window = window
        if self._stale:
            self._prepare_timer.start()

    def eventFilter(self, obj, event):
        if obj is self._window and event.type() == QEvent.Close:
            self.shutdown(10_000)  # no thread may outlive the window it reports to
        return False

    # ------------------------------------------------------------------ preparing

    def prepare(self) -> None:
        """Load the project's data and build its model with its weights, in the background."""
        if self.doc is None or self._preparing or self.worker.running:
            return
        project = self.doc.project
        if project.dataset is None:
            self._set_status("The project has no data yet: choose it in the Data dock.", "warn")
            self._stale = True
            self._update_controls()
            return
        if self.doc.read_only:
            self._set_status("Training is running; explanations wait for its weights.", "warn")
            return
        snapshot = project.copy()
        self._preparing = True
        self._stale = False
        self._set_status("Loading the data and building the model…")
        self._update_controls()

        def work():
            from models import backend
            from models.explain import Subject, available
            from models.project import ProjectError
            from models.training import load_project_data

            dataset = load_project_data(snapshot)
            note = ""
            with backend.keras_lock:
                try:
                    model = snapshot.build(with_weights=snapshot.has_weights())
                    has_weights = snapshot.has_weights()
                except ProjectError as exc:
                    model, has_weights, note = snapshot.build(with_weights=False), False, str(exc)
            subject = Subject(model, dataset)
            return dataset, subject, available(model, dataset, subject=subject), has_weights, note

        self._threads = [t for t in self._threads if t.is_alive()]
        self._threads.append(run_in_thread(self, work, self._on_prepared, self._on_prepare_failed))

    def _on_prepared(self, result):
        self._preparing = False
        if self._stale:  # edited meanwhile: again
            self._prepare_timer.start()
        self.dataset, self.subject, self.reasons, self.has_weights, note = result
        if not self.has_weights:
            self._set_status(
                (note + ". " if note else "") + "This model has no trained weights yet: its "
                "explanations show an untrained network. Train it first (Train ▸ Start).", "warn")
        else:
            self._set_status(f"{self.dataset.name}: {self.subject.n} {self.subject.split} samples; "
                             f"{sum(r is None for r in self.reasons.values())} of "
                             f"{len(self.reasons)} methods apply.", "ok")
        self._fill_methods()
        self._fill_samples()
        self._update_controls()
        self.sig_prepared.emit()
        if self._explain_after_prepare:
            self._explain_after_prepare = False
            self.explain()

    def _on_prepare_failed(self, message: str):
        self._preparing = False
        self._explain_after_prepare = False
        self.subject = None
        self._set_status(f"Cannot explain this project: {message}", "error")
        self._update_controls()

    # ------------------------------------------------------------------ methods, options

    def _fill_methods(self):
        from models.explain import METHODS

        current = self.method_name()
        self.method_combo.blockSignals(True)
        self.method_model.clear()
        for name, method in METHODS.items():
            reason = self.reasons.get(name)
            item = QStandardItem(method.title if reason is None else f"{method.title} — unavailable")
            item.setData(name, Qt.UserRole)
            item.setToolTip(method.route if reason is None else f"Unavailable: {reason}")
            item.setEnabled(reason is None)
            self.method_model.appendRow(item)
        names = list(METHODS)
        usable = [n for n in names if self.reasons.get(n) is None]
        pick = current if current in usable else next((n for n in PREFERRED if n in usable),
                                                      usable[0] if usable else names[0])
        self.method_combo.setCurrentIndex(names.index(pick))
        self.method_combo.blockSignals(False)
        self._on_method()

    def method_name(self) -> str | None:
        data = self.method_combo.currentData(Qt.UserRole)
        return str(data) if data is not None else None

    def set_method(self, name: str) -> bool:
        """Choose a method by name (False when it does not apply)."""
        for row in range(self.method_model.rowCount()):
            item = self.method_model.item(row)
            if item.data(Qt.UserRole) == name:
                if not item.isEnabled():
                    return False
                self.method_combo.setCurrentIndex(row)
                return True
        return False

    def method_tooltip(self, name: str) -> str:
        for row in range(self.method_model.rowCount()):
            item = self.method_model.item(row)
            if item.data(Qt.UserRole) == name:
                return item.toolTip()
        return ""

    def _on_method(self, *_args):
        from models.explain import METHODS

        while self.options_form.rowCount():
            self.options_form.removeRow(0)
        self._option_widgets = {}
        name = self.method_name()
        if name is None or self.subject is None:
            return
        method = METHODS[name]
        reason = self.reasons.get(name)
        self.reason_label.setText(method.route if reason is None else f"Unavailable: {reason}")
        if method.needs_target:
            target = QComboBox()
            target.addItem("the predicted class", None)
            for i, cname in enumerate(self.subject.class_names()):
                target.addItem(f"{i}: {cname}", i)
            self._add_option("target", "Explain", target)
            steps = self.subject.positions()
            if steps:
                spin = QSpinBox()
                spin.setRange(0, steps - 1)
                spin.setValue(steps - 1)
                spin.setToolTip("the output is a sequence: the step whose prediction is explained")
                self._add_option("position", "Output step", spin)
        defaults = method.defaults(self.subject)
        for opt in method.options:
            if opt.kind == "choice":
                w = QComboBox()
                for c in opt.choices_for(self.subject):
                    w.addItem(str(c), c)
                if defaults.get(opt.name) is not None:
                    w.setCurrentText(str(defaults[opt.name]))
            elif opt.kind == "int":
                w = QSpinBox()
                w.setRange(int(opt.low if opt.low is not None else 0),
                           int(min(opt.high if opt.high is not None else 10**6, 2**31 - 1)))
                w.setValue(int(opt.default))
                if opt.zero:
                    w.setSpecialValueText(opt.zero)  # 0 stands for a choice made for you
            else:
                w = QDoubleSpinBox()
                w.setDecimals(3)
                w.setSingleStep(0.05)
                w.setRange(float(opt.low or 0.0), float(opt.high if opt.high is not None else 1e6))
                w.setValue(float(opt.default))
            if opt.help:
                w.setToolTip(opt.help)
            self._add_option(opt.name, opt.label, w)
        self._update_controls()

    def _add_option(self, name: str, label: str, widget: QWidget):
        self._option_widgets[name] = widget
        self.options_form.addRow(label, widget)

    def options(self) -> dict:
        """The options as set in the form."""
        out = {}
        for name, w in self._option_widgets.items():
            if isinstance(w, QComboBox):
                out[name] = w.currentData()
            else:
                out[name] = w.value()
        return {k: v for k, v in out.items() if v is not None}

    def option_widget(self, name: str) -> QWidget | None:
        return self._option_widgets.get(name)

    # ------------------------------------------------------------------ samples

    def _image_input(self) -> int | None:
        if self.subject is None or len(self.subject.inputs) != 1:
            return None
        info = self.subject.inputs[0]
        return 0 if info.modality == "image" and not info.tokens and len(info.shape) in (2, 3) else None

    def _fill_samples(self):
        s = self.subject
        n = min(s.n, MAX_SAMPLES)
        names = s.class_names()
        y = s.y

        def label(i):
            if self.dataset.has_classes and y.ndim == 1:
                v = int(y[i])
                return names[v] if v < len(names) else str(v)
            flat = np.asarray(y[i]).ravel()
            return " ".join(str(int(v)) if np.issubdtype(flat.dtype, np.integer) else f"{v:.3g}"
                            for v in flat[:8])

        image = self._image_input()
        if image is not None:
            self.sample_grid.clear()
            for i in range(n):
                item = QListWidgetItem(QIcon(_pixmap(s.x[image][i], 56)), f"{i}: {label(i)}")
                item.setData(Qt.UserRole, i)
                self.sample_grid.addItem(item)
            if n:
                self.sample_grid.item(0).setSelected(True)
            self.samples_stack.setCurrentWidget(self.sample_grid)
            return
        columns, rows = [], [[] for _ in range(n)]
        for info, x in zip(s.inputs, s.x):
            flat = x[:n].reshape(n, -1)
            names_i = info.feature_names if info.feature_names and len(info.feature_names) == \
                flat.shape[1] else [f"{info.name}[{j}]" for j in range(flat.shape[1])]
            room = MAX_COLUMNS - len(columns)
            if room <= 0:
                break
            if info.tokens:
                columns.append(f"{info.name} (tokens)")
                for i in range(n):
                    rows[i].append(" ".join(str(int(t)) for t in flat[i][:24]))
                continue
            take = min(room, flat.shape[1])
            columns += names_i[:take] + ([f"… {flat.shape[1] - take} more"] if take < flat.shape[1] else [])
            for i in range(n):
                rows[i] += [f"{v:.3g}" for v in flat[i][:take]] + (["…"] if take < flat.shape[1] else [])
        columns.append(self.dataset.target_name or "target")
        for i in range(n):
            rows[i].append(label(i))
        t = self.sample_table
        t.clear()
        t.setColumnCount(len(columns))
        t.setRowCount(n)
        t.setHorizontalHeaderLabels(columns)
        t.setVerticalHeaderLabels([str(i) for i in range(n)])
        for r, row in enumerate(rows):
            for c, text in enumerate(row):
                t.setItem(r, c, QTableWidgetItem(text))
        t.resizeColumnsToContents()
        if n:
            t.selectRow(0)
        self.samples_stack.setCurrentWidget(t)

    def selected_samples(self) -> list[int]:
        if self.samples_stack.currentWidget() is self.sample_grid:
            return sorted(int(it.data(Qt.UserRole)) for it in self.sample_grid.selectedItems())
        return sorted({ix.row() for ix in self.sample_table.selectionModel().selectedRows()})

    def select_samples(self, indices: list[int]) -> None:
        wanted = set(indices)
        if self.samples_stack.currentWidget() is self.sample_grid:
            for row in range(self.sample_grid.count()):
                item = self.sample_grid.item(row)
                item.setSelected(int(item.data(Qt.UserRole)) in wanted)
            return
        self.sample_table.clearSelection()
        mode = self.sample_table.selectionMode()
        self.sample_table.setSelectionMode(QAbstractItemView.MultiSelection)
        for i in sorted(wanted):
            if i < self.sample_table.rowCount():
                self.sample_table.selectRow(i)
        self.sample_table.setSelectionMode(mode)

    # ------------------------------------------------------------------ running

    def explain(self) -> bool:
        """Explain the selected samples with the chosen method (False if it cannot start)."""
        from models.explain import explain_job

        if self.worker.running:
            return False
        if self.doc is not None and self.doc.read_only:
            self._set_status("Training is running; explain once it has finished.", "warn")
            return False
        if self._stale or self.subject is None:
            self._explain_after_prepare = True
            self.prepare()
            return False
        name = self.method_name()
        if name is None or self.reasons.get(name):
            self._set_status(f"This method does not apply: {self.reasons.get(name)}", "warn")
            return False
        samples = self.selected_samples()
        if not samples:
            self._set_status("Pick at least one sample to explain.", "warn")
            return False
        job = explain_job(self.subject.model, self.dataset, name, samples, self.options(),
                          subject=self.subject)
        self.worker.start(job)
        self.progress.setValue(0)
        self.progress.setFormat("starting…")
        self._timer.start()
        self._update_controls()
        return True

    def cancel(self) -> None:
        if self.worker.running:
            self.worker.stop()
            self.progress.setFormat("stopping…")
            self._update_controls()

    def _drain(self):
        state = self.worker.state
        if state is None:
            return
        state.drain()
        self.progress.setValue(int(state.fraction * 1000))
        self.progress.setFormat(state.message or "")

    def _on_done(self, state):
        self._timer.stop()
        self._drain()
        if state.status == "done":
            self.progress.setValue(1000)
            self.progress.setFormat(f"done in {state.result.seconds:.1f} s"
                                    + (f" ({state.result.cached} cached)" if state.result.cached else ""))
            self.set_explanation(state.result)
            self.sig_explained.emit(state.result)
        elif state.status == "cancelled":
            self.progress.setFormat("cancelled")
            self._set_status("Cancelled. The samples explained before the cancel are cached.", "warn")
        else:
            self.progress.setFormat("failed")
            self._set_status(f"The explanation failed: {state.error}", "error")
            self.sig_message.emit(f"explain: {state.error}")
        self._update_controls()

    def shutdown(self, timeout_ms: int = 30_000) -> bool:
        """Stop a run and wait for its thread (closing the window)."""
        self._timer.stop()
        self._prepare_timer.stop()
        ok = self.worker.wait(timeout_ms)
        for t in self._threads:
            t.join(timeout_ms / 1000.0)
        return ok

    def _update_controls(self):
        running = self.worker.running
        name = self.method_name()
        usable = name is not None and self.reasons.get(name) is None
        self.explain_button.setEnabled(not running and not self._preparing and self.doc is not None
                                       and self.doc.project.dataset is not None
                                       and (self._stale or (self.subject is not None and usable)))
        self.cancel_button.setEnabled(running and not (self.worker.state and self.worker.state.cancelled))
        has = self.explanation is not None
        self.png_button.setEnabled(has)
        self.csv_button.setEnabled(has)

    def _set_status(self, text: str, kind: str = "info"):
        color = {"error": "#c62828", "warn": "#b26a00", "ok": "#2e7d32"}.get(kind, "#333")
        self.status_label.setStyleSheet(f"color: {color};")
        self.status_label.setText(text)

    # ------------------------------------------------------------------ showing

    def set_explanation(self, e) -> None:
        """Show an explanation (the sample, input and layer choosers are refilled)."""
        self.explanation = e
        for combo in (self.sample_combo, self.input_combo, self.layer_combo):
            combo.blockSignals(True)
            combo.clear()
        for k, s in enumerate(e.samples):
            text = f"{s.index}"
            if e.method != "attention":
                target = e.target_names[s.target] if s.target < len(e.target_names) else s.target
                text += f": {target} ({s.prediction[s.target]:.2f})"
            self.sample_combo.addItem(text, k)
        first = e.samples[0]
        for i, info in enumerate(e.inputs):
            if first.attributions[i] is not None:
                self.input_combo.addItem(info.name, i)
        for j, att in enumerate(first.attention or []):
            self.layer_combo.addItem(att["layer"], j)
        for combo in (self.sample_combo, self.input_combo, self.layer_combo):
            combo.blockSignals(False)
        where = f" — output step {e.position}" if e.position is not None else ""
        self.title_label.setText(f"{e.title}{where}: {len(e.samples)} sample(s) of the {e.split} split")
        self.notes_label.setText(" · ".join(e.notes))
        self._update_controls()
        self._show()

    def _visible(self, key: str, on: bool):
        for w in self._top_widgets[key]:
            w.setVisible(on)

    def _show(self):
        e = self.explanation
        if e is None:
            self.pages.setCurrentWidget(self.placeholder)
            return
        k = max(0, self.sample_combo.currentIndex())
        s = e.samples[k]
        self._visible("input", self.input_combo.count() > 1)
        self._visible("layer", s.attention is not None and self.layer_combo.count() > 1)
        self._visible("opacity", False)
        if s.attention is not None:
            self._show_attention(s.attention[max(0, self.layer_combo.currentIndex())]
                                 if s.attention else None)
            return
        i = self.input_combo.currentData()
        if i is None:
            self.pages.setCurrentWidget(self.placeholder)
            return
        info, a, x = e.inputs[i], s.attributions[i], s.values[i]
        signed = e.method not in ("saliency", "gradcam")
        if info.modality == "image" and a.ndim in (2, 3):
            self._visible("opacity", True)
            self._show_image(x, a, signed)
        elif info.modality == "text":
            self._show_tokens(info, x, a, signed)
        elif info.modality == "series" and a.ndim == 2:
            self._show_grid([("heatmap", a.T, f"{info.name}: attribution per step and feature",
                              None, info.feature_names, "step", "feature")],
                            levels=None if signed else (0.0, float(np.max(a)) or 1.0),
                            cmap="CET-D1A" if signed else "inferno")
        else:
            self._show_bars(e, i, a)

    def _show_image(self, x, a, signed: bool):
        from models.explain.render import heat_of

        img = np.asarray(x, dtype=np.float32)
        if img.ndim == 3 and img.shape[-1] == 1:
            img = img[..., 0]
        lo, hi = float(img.min()), float(img.max())
        img = (img - lo) / (hi - lo) if hi > lo else np.zeros_like(img)
        for item in (self.base_item, self.under_item):
            item.setImage(np.swapaxes(img, 0, 1), levels=(0.0, 1.0))
        heat = heat_of(a, signed).astype(np.float32)
        if signed:
            m = float(np.max(np.abs(heat))) or 1.0
            levels, cmap = (-m, m), pg.colormap.get("CET-D1A")
        else:
            levels, cmap = (0.0, float(heat.max()) or 1.0), pg.colormap.get("inferno")
        self.heat_item.setImage(heat.T, levels=levels)
        style_plot(self.image_plot, f"its heat map (largest |value| {max(map(abs, levels)):.3g})")
        self.colorbar.setColorMap(cmap)
        self.colorbar.setLevels(levels)
        self.heat_item.setOpacity(self.opacity.value() / 100.0)
        self.sample_plot.autoRange(padding=0.02)
        self.pages.setCurrentWidget(self.image_view)

    def _on_opacity(self, value: int):
        self.heat_item.setOpacity(value / 100.0)

    def _bars(self, plot, names, values, title, x_title, signed=True):
        plot.clear()
        style_plot(plot, title, x_title)
        plot.getAxis("bottom").enableAutoSIPrefix(False)  # no "x0.001" on attribution axes
        n = len(values)
        pos = np.arange(n)[::-1]  # the largest at the top
        values = np.asarray(values, dtype=np.float64)
        brushes = ["#d62728" if v > 0 else "#1f77b4" for v in values] if signed else ["#7f7f7f"] * n
        plot.addItem(pg.BarGraphItem(x0=np.minimum(values, 0), y=pos, height=0.7,
                                     width=np.abs(values), brushes=brushes, pens=[None] * n))
        plot.getAxis("left").setTicks([[(int(p), str(nm)) for p, nm in zip(pos, names)]])
        plot.addItem(pg.InfiniteLine(pos=0, angle=90, pen=pg.mkPen("#888")))
        plot.setYRange(-0.6, n - 0.4, padding=0)
        plot.enableAutoRange(axis="x")

    def _show_bars(self, e, i, a):
        info = e.inputs[i]
        flat = np.asarray(a, dtype=np.float64).reshape(-1)
        names = info.feature_names if info.feature_names and len(info.feature_names) == flat.size \
            else [str(j) for j in range(flat.size)]
        order = np.argsort(-np.abs(flat))[:MAX_BARS]
        s = e.samples[max(0, self.sample_combo.currentIndex())]
        target = e.target_names[s.target] if s.target < len(e.target_names) else str(s.target)
        signed = e.method not in ("saliency", "gradcam")
        self._bars(self.local_plot, [names[j] for j in order], flat[order],
                   f"sample {s.index}: {info.name}",
                   f"pushes '{target}' up (red) or down (blue)" if signed else "weight", signed)
        imp = [(n, v) for n, v in (e.feature_importance() or []) if n in set(names)]
        if imp:
            imp = imp[:MAX_BARS]
            self._bars(self.global_plot, [n for n, _ in imp], [v for _, v in imp],
                       f"all {len(e.samples)} explained sample(s)", "mean |attribution|", False)
        else:
            self.global_plot.clear()
        self.pages.setCurrentWidget(self.bars_view)

    def _show_tokens(self, info, x, a, signed: bool):
        values = np.asarray(a, dtype=np.float64).reshape(-1)
        tokens = [str(int(t)) for t in np.asarray(x).reshape(-1)]
        lo, hi = float(values.min()), float(values.max())
        spans = []
        for j, (tok, v) in enumerate(zip(tokens, values)):
            spans.append(f"<span style='background:{_color(v, lo, hi, signed)}; padding:3px; "
                         f"border:1px solid #bbb;'>&nbsp;{html.escape(tok)}&nbsp;</span>"
                         f"<sub style='color:#777'>{v:+.2g}</sub>")
        legend = ("red raises the explained output, blue lowers it" if signed
                  else "deeper colour: more weight")
        self.tokens_view.setHtml(
            f"<p style='color:#555'>{html.escape(info.name)}: each token (position order) "
            f"coloured by its weight; {legend}.</p><p style='font-size:15pt; line-height:180%'>"
            + " ".join(spans) + "</p>")
        self.pages.setCurrentWidget(self.tokens_view)

    def _show_attention(self, att):
        if att is None:
            self.pages.setCurrentWidget(self.placeholder)
            return
        scores = np.asarray(att["scores"])
        # Position and token: a token that appears twice is still two places.
        keys = [f"{i}:{t}" for i, t in enumerate(att["key_labels"])]
        queries = [f"{i}:{t}" for i, t in enumerate(att["query_labels"])]
        cells = [("heatmap", scores[h], f"{att['layer']} — head {h}", keys, queries,
                  "key (position:token)", "query") for h in range(min(len(scores), MAX_HEADS))]
        self._show_grid(cells, levels=(0.0, 1.0), cmap="viridis")

    def _show_grid(self, cells, levels=None, cmap="viridis"):
        from models.views import heatmap_panel

        self.grid_view.clear()
        cols = min(4, len(cells)) or 1
        if levels is None:
            top = max(float(np.max(np.abs(c[1]))) for c in cells) or 1.0
            levels = (-top, top)
        for j, (_, matrix, title, x_labels, y_labels, x_title, y_title) in enumerate(cells):
            plot = self.grid_view.addPlot(row=j // cols, col=j % cols)
            renderer = RENDERERS["heatmap"](plot)
            renderer.update(heatmap_panel(matrix, title, x_labels=x_labels, y_labels=y_labels,
                                          x_title=x_title, y_title=y_title, levels=levels))
        bar = pg.ColorBarItem(values=tuple(levels), colorMap=pg.colormap.get(cmap),
                              interactive=False, width=14)
        self.grid_view.addItem(bar, row=0, col=cols)
        self.pages.setCurrentWidget(self.grid_view)

    # ------------------------------------------------------------------ export

    def export_png(self, path: str | None = None) -> Path | None:
        """Write the picture of the explanation (all samples, the chosen opacity)."""
        from models.explain.render import save_png

        return self._export("picture", "png", path, lambda p: save_png(
            self.explanation, p, opacity=self.opacity.value() / 100.0))

    def export_csv(self, path: str | None = None) -> Path | None:
        """Write the numbers of the explanation as CSV."""
        return self._export("numbers", "csv", path, self.explanation.to_csv)

    def _export(self, what: str, suffix: str, path: str | None, write) -> Path | None:
        if self.explanation is None:
            return None
        if path is None:
            path, _ = QFileDialog.getSaveFileName(self, f"Export the {what}",
                                                  f"{self.explanation.method}.{suffix}",
                                                  f"{suffix.upper()} (*.{suffix})")
            if not path:
                return None
        try:
            write(path)
        except OSError as exc:
            self._set_status(f"Could not write {path}: {exc.strerror or exc}", "error")
            return None
        self.sig_message.emit(f"wrote {path}")
        return Path(path)


__all__ = ["ExplainPanel"]
