"""The deploy panel: compress, export for a target, and compare every variant.

The user picks the steps (TFMOT pruning, clustering and quantization-aware
training; Keras 3's own quantization; the export formats), a hardware target
and the measuring options, and presses Run. :func:`models.deploy.run_deploy`
does the work on a Python thread (:class:`desktop.workers.RunWorker`); a
timer drains its :class:`~models.runner.RunState`, so each variant's row
appears in the table and the bar charts (size, accuracy, latency) as soon as
it is measured, and Stop cancels at the next batch or step.

When a run compressed the model, the result can be opened as a new project
in the editor or saved as one; the folder of files is a click away.
"""
from __future__ import annotations

import math
import tempfile
from pathlib import Path

import numpy as np
import pyqtgraph as pg
from PySide6.QtCore import Qt, QTimer, QUrl, Signal
from PySide6.QtGui import QAction, QDesktopServices, QFontDatabase
from PySide6.QtWidgets import (
    QAbstractItemView,
    QCheckBox,
    QComboBox,
    QDialog,
    QFileDialog,
    QFormLayout,
    QGridLayout,
    QGroupBox,
    QHBoxLayout,
    QHeaderView,
    QLabel,
    QPlainTextEdit,
    QProgressBar,
    QPushButton,
    QScrollArea,
    QSizePolicy,
    QSpinBox,
    QSplitter,
    QTableWidget,
    QTableWidgetItem,
    QVBoxLayout,
    QWidget,
)

from desktop.panels.evaluation import PALETTE, style_plot
from desktop.panels.run_controls import not_ready
from desktop.workers import RunWorker, run_in_thread

REDRAW_MS = 150
# The choices shown; the core checks them again (models.export / models.compress).
FORMAT_CHOICES = ("keras", "saved-model", "tflite", "tflite-dynamic", "tflite-fp16",
                  "tflite-int8", "tflite-int16x8", "c-array", "onnx")
TARGET_CHOICES = (("", "No target"), ("cpu", "CPU (float, XNNPACK)"),
                  ("gpu", "Mobile GPU (float16)"), ("edgetpu", "Edge TPU (full int8)"),
                  ("mcu", "Microcontroller (int8, C array)"))
# What a target ticks: its own formats plus the float TFLite to compare with.
TARGET_FORMATS = {
    "cpu": ("tflite", "tflite-dynamic", "tflite-int8"),
    "gpu": ("tflite", "tflite-fp16"),
    "edgetpu": ("tflite", "tflite-int8"),
    "mcu": ("tflite", "tflite-int8", "c-array"),
}
DEFAULT_FORMATS = ("tflite", "tflite-dynamic", "tflite-fp16", "tflite-int8", "onnx")
COLUMNS = ("Variant", "Size", "vs float", "Accuracy", "Agreement", "Latency", "Runtime", "File")
RUNTIME_COLORS = {"keras": PALETTE[0], "tensorflow": PALETTE[7], "litert": PALETTE[1],
                  "onnxruntime": PALETTE[4], "": PALETTE[7]}


def _kb(n) -> str:
    return "" if n is None else f"{n / 1024:,.1f} KB"


class DeployPanel(QWidget):
    """Choose deployment steps and a target, run them off the UI thread, compare the variants.

    Signals:
        sig_open_project(object): the user asked to open the compressed
            project (a :class:`models.project.Project`) in the editor.
        sig_message(str): a line for the status bar and the log.
        sig_finished(object): the run ended (its DeployReport, or ``None`` when
            it failed or was stopped).
    """

    sig_open_project = Signal(object)
    sig_message = Signal(str)
    sig_finished = Signal(object)

    def __init__(self, parent=None):
        super().__init__(parent)
        self.doc = None
        self.report = None
        self.rows: list[dict] = []
        self.out_dir: Path | None = None
        self.hlo_dialog: QDialog | None = None
        self.worker = RunWorker(self)
        self.worker.sig_done.connect(self._on_done)
        self._timer = QTimer(self)
        self._timer.setInterval(REDRAW_MS)
        self._timer.timeout.connect(self.refresh)
        self._build_controls()
        self._build_results()
        splitter = QSplitter(Qt.Horizontal)
        splitter.addWidget(self._controls_scroll)
        splitter.addWidget(self._results)
        splitter.setStretchFactor(1, 1)
        splitter.setSizes([360, 900])
        lay = QVBoxLayout(self)
        lay.setContentsMargins(4, 4, 4, 4)
        lay.addWidget(splitter)
        self._build_actions()
        self._update_controls()

    # ------------------------------------------------------------------ building

    def _build_controls(self):
        box = QWidget()
        col = QVBoxLayout(box)
        col.setContentsMargins(2, 2, 2, 2)

        tfmot = QGroupBox("Compress (TFMOT)")
        tfmot.setToolTip("TensorFlow Model Optimization through the model's tf_keras twin, "
                         "fine-tuned on the project's own data")
        form = QGridLayout(tfmot)
        self.prune_check = QCheckBox("Prune to")
        self.prune_check.setToolTip("magnitude pruning: the smallest weights become zeros")
        self.sparsity_spin = QSpinBox()
        self.sparsity_spin.setRange(5, 95)
        self.sparsity_spin.setValue(50)
        self.sparsity_spin.setSuffix(" % zeros")
        self.schedule_combo = QComboBox()
        self.schedule_combo.addItem("constant", "constant")
        self.schedule_combo.addItem("polynomial decay", "polynomial")
        self.schedule_combo.setToolTip("constant: the target from the start; polynomial: "
                                       "from 0 up to the target while fine-tuning")
        self.structured_check = QCheckBox("2:4 structured")
        self.structured_check.setToolTip("two zeros in every four weights along the input "
                                         "channels (50%), which sparse accelerators skip")
        self.cluster_check = QCheckBox("Cluster into")
        self.cluster_check.setToolTip("weight sharing: each kernel keeps only K distinct values")
        self.clusters_spin = QSpinBox()
        self.clusters_spin.setRange(2, 256)
        self.clusters_spin.setValue(16)
        self.clusters_spin.setSuffix(" values")
        self.init_combo = QComboBox()
        for name in ("kmeans++", "linear", "density", "random"):
            self.init_combo.addItem(f"{name} centroids", name)
        self.qat_check = QCheckBox("Quantization-aware training (int8)")
        self.qat_check.setToolTip("fine-tune with fake int8 quantization; after pruning or "
                                  "clustering it keeps their zeros and clusters")
        self.epochs_spin = QSpinBox()
        self.epochs_spin.setRange(0, 1000)
        self.epochs_spin.setValue(2)
        self.epochs_spin.setToolTip("fine-tuning epochs for each step")
        for check, parts in ((self.prune_check, (self.sparsity_spin, self.schedule_combo,
                                                  self.structured_check)),
                             (self.cluster_check, (self.clusters_spin, self.init_combo))):
            for w in parts:
                w.setEnabled(False)
                check.toggled.connect(w.setEnabled)
        form.addWidget(self.prune_check, 0, 0)
        form.addWidget(self.sparsity_spin, 0, 1)
        form.addWidget(self.schedule_combo, 1, 0)
        form.addWidget(self.structured_check, 1, 1)
        form.addWidget(self.cluster_check, 2, 0)
        form.addWidget(self.clusters_spin, 2, 1)
        form.addWidget(self.init_combo, 3, 0, 1, 2)
        form.addWidget(self.qat_check, 4, 0, 1, 2)
        form.addWidget(QLabel("Fine-tuning epochs"), 5, 0)
        form.addWidget(self.epochs_spin, 5, 1)
        col.addWidget(tfmot)

        kq = QGroupBox("Keras 3 quantize")
        kq_row = QHBoxLayout(kq)
        self.keras_quant_combo = QComboBox()
        self.keras_quant_combo.addItem("none", None)
        for mode in ("int8", "int4", "float8"):
            self.keras_quant_combo.addItem(mode, mode)
        self.keras_quant_combo.setToolTip("model.quantize: Dense, EinsumDense and Embedding "
                                          "layers only; the rest stays float")
        kq_row.addWidget(QLabel("Mode"))
        kq_row.addWidget(self.keras_quant_combo, 1)
        col.addWidget(kq)

        ex = QGroupBox("Export")
        ex_lay = QVBoxLayout(ex)
        self.target_combo = QComboBox()
        for key, title in TARGET_CHOICES:
            self.target_combo.addItem(title, key or None)
        self.target_combo.setToolTip("a hardware preset: picks its formats and checks them")
        self.target_combo.currentIndexChanged.connect(self._on_target_changed)
        ex_lay.addWidget(self.target_combo)
        grid = QGridLayout()
        self.format_checks: dict[str, QCheckBox] = {}
        for i, fmt in enumerate(FORMAT_CHOICES):
            check = QCheckBox(fmt)
            check.setChecked(fmt in DEFAULT_FORMATS)
            self.format_checks[fmt] = check
            grid.addWidget(check, i // 2, i % 2)
        ex_lay.addLayout(grid)
        self.target_note = QLabel("")
        self.target_note.setWordWrap(True)
        self.target_note.setStyleSheet("color: #555;")
        ex_lay.addWidget(self.target_note)
        col.addWidget(ex)

        ms = QGroupBox("Measure")
        ms_form = QFormLayout(ms)
        self.threads_spin = QSpinBox()
        self.threads_spin.setRange(1, 64)
        self.threads_spin.setValue(1)
        self.threads_spin.setToolTip("threads of the TFLite interpreter and ONNX Runtime")
        self.xnnpack_check = QCheckBox("XNNPACK delegate")
        self.xnnpack_check.setChecked(True)
        self.xla_check = QCheckBox("XLA speed-up (trains twice)")
        self.xla_check.setToolTip("train and predict with jit_compile off and on")
        ms_form.addRow("Threads", self.threads_spin)
        ms_form.addRow(self.xnnpack_check)
        ms_form.addRow(self.xla_check)
        col.addWidget(ms)

        col.addStretch(1)
        scroll = QScrollArea()
        scroll.setWidgetResizable(True)
        scroll.setHorizontalScrollBarPolicy(Qt.ScrollBarAlwaysOff)
        scroll.setWidget(box)
        # Wide enough for the controls and the vertical scroll bar: never a horizontal one.
        scroll.setMinimumWidth(box.sizeHint().width() + 24)

        # Run, Stop and the progress stay in view below the scrolled settings.
        self.run_button = QPushButton("Run")
        self.run_button.setToolTip("compress, export and measure (Ctrl+Shift+R)")
        self.run_button.clicked.connect(self.start)
        self.stop_button = QPushButton("Stop")
        self.stop_button.clicked.connect(self.stop)
        buttons = QHBoxLayout()
        buttons.addWidget(self.run_button)
        buttons.addWidget(self.stop_button)
        self.progress = QProgressBar()
        self.progress.setRange(0, 1000)
        self.progress.setFormat("ready")
        self.progress.setTextVisible(True)
        self.message_label = QLabel("")
        self.message_label.setWordWrap(True)
        self.message_label.setTextInteractionFlags(Qt.TextSelectableByMouse)
        left = QWidget()
        left_lay = QVBoxLayout(left)
        left_lay.setContentsMargins(0, 0, 0, 0)
        left_lay.addWidget(scroll, 1)
        left_lay.addLayout(buttons)
        left_lay.addWidget(self.progress)
        left_lay.addWidget(self.message_label)
        self._controls_scroll = left

    def _build_results(self):
        self._results = QWidget()
        lay = QVBoxLayout(self._results)
        lay.setContentsMargins(0, 0, 0, 0)
        top = QHBoxLayout()
        self.folder_label = QLabel("No run yet.")
        self.folder_label.setTextInteractionFlags(Qt.TextSelectableByMouse)
        self.folder_label.setSizePolicy(QSizePolicy.Expanding, QSizePolicy.Preferred)
        self.open_folder_button = QPushButton("Open folder")
        self.open_folder_button.clicked.connect(self.open_folder)
        self.open_project_button = QPushButton("Open as new project")
        self.open_project_button.setToolTip("open the compressed model in the editor")
        self.open_project_button.clicked.connect(self.open_compressed)
        self.save_project_button = QPushButton("Save as project…")
        self.save_project_button.clicked.connect(self.save_compressed)
        self.hlo_button = QPushButton("XLA HLO…")
        self.hlo_button.setToolTip("the optimized HLO XLA compiles the model's forward pass to")
        self.hlo_button.clicked.connect(self.show_hlo)
        top.addWidget(self.folder_label, 1)
        for b in (self.open_folder_button, self.open_project_button, self.save_project_button,
                  self.hlo_button):
            top.addWidget(b)
        lay.addLayout(top)

        split = QSplitter(Qt.Vertical)
        self.table = QTableWidget(0, len(COLUMNS))
        self.table.setHorizontalHeaderLabels(COLUMNS)
        self.table.setEditTriggers(QAbstractItemView.NoEditTriggers)
        self.table.setSelectionBehavior(QAbstractItemView.SelectRows)
        self.table.verticalHeader().setVisible(False)
        header = self.table.horizontalHeader()
        header.setSectionResizeMode(QHeaderView.ResizeToContents)
        header.setStretchLastSection(True)
        self.table.horizontalHeaderItem(2).setToolTip("size on disk relative to the float TFLite "
                                                      "file (the float Keras file without one)")
        self.table.horizontalHeaderItem(4).setToolTip("share of test samples whose top-1 class "
                                                      "equals the float Keras model's")
        self.table.horizontalHeaderItem(5).setToolTip("median time of one single-sample call")
        self.table.cellDoubleClicked.connect(self._on_cell_double_clicked)
        split.addWidget(self.table)

        self.charts = pg.GraphicsLayoutWidget()
        self.charts.setBackground("w")
        self.chart_plots = {}
        for i, (key, title) in enumerate((("size", "Size on disk (KB)"),
                                          ("accuracy", "Test accuracy (%)"),
                                          ("latency", "Latency, one sample (ms)"))):
            plot = style_plot(self.charts.addPlot(row=0, col=i), title)
            plot.setMouseEnabled(x=False, y=False)
            plot.hideButtons()
            axis = plot.getAxis("left")
            axis.setWidth(175 if i == 0 else 6)
            # Small labels: with a dozen variants, larger ones would overlap and be dropped.
            axis.setStyle(tickFont=_small_font(), autoExpandTextSpace=False)
            if i:
                plot.getAxis("left").setStyle(showValues=False)
                plot.setYLink(self.chart_plots["size"])
            self.chart_plots[key] = plot
        self.charts.setMinimumHeight(200)
        chart_box = QWidget()
        chart_lay = QVBoxLayout(chart_box)
        chart_lay.setContentsMargins(0, 0, 0, 0)
        chart_lay.setSpacing(0)
        legend = QLabel("   ".join(
            f'<span style="color:{RUNTIME_COLORS[key]}">&#9632;</span> {title}'
            for key, title in (("keras", "Keras"), ("litert", "TFLite (LiteRT)"),
                               ("onnxruntime", "ONNX Runtime"), ("tensorflow", "SavedModel"))))
        legend.setStyleSheet("color: #333; background: white; padding: 2px 6px;")
        chart_lay.addWidget(legend)
        chart_lay.addWidget(self.charts, 1)
        split.addWidget(chart_box)
        self.details = QPlainTextEdit(readOnly=True)
        self.details.setFont(QFontDatabase.systemFont(QFontDatabase.FixedFont))
        self.details.setPlaceholderText("Checks for the target, the compression per layer and "
                                        "the XLA speed-up appear here after a run.")
        split.addWidget(self.details)
        split.setSizes([220, 240, 130])
        lay.addWidget(split, 1)

    def _build_actions(self):
        self.run_action = QAction("&Run Deploy Steps", self)
        self.run_action.setShortcut("Ctrl+Shift+R")
        self.run_action.setStatusTip("Compress, export and measure the model")
        self.run_action.triggered.connect(self.start)
        self.stop_action = QAction("S&top Deploy Run", self)
        self.stop_action.triggered.connect(self.stop)
        self.open_folder_action = QAction("Open Deploy &Folder", self)
        self.open_folder_action.triggered.connect(self.open_folder)
        self.open_project_action = QAction("Open Compressed Model as &New Project", self)
        self.open_project_action.triggered.connect(self.open_compressed)
        self.save_project_action = QAction("&Save Compressed Model as Project…", self)
        self.save_project_action.triggered.connect(self.save_compressed)
        self.hlo_action = QAction("Show XLA &HLO…", self)
        self.hlo_action.triggered.connect(self.show_hlo)
        self.actions_by_name = {"run": self.run_action, "stop": self.stop_action,
                                "open_folder": self.open_folder_action,
                                "open_project": self.open_project_action,
                                "save_project": self.save_project_action,
                                "hlo": self.hlo_action}
        for act in self.actions_by_name.values():
            self.addAction(act)

    # ------------------------------------------------------------------ document

    def set_document(self, doc) -> None:
        if self.doc is not None:
            try:
                self.doc.sig_reset.disconnect(self._update_controls)
            except (RuntimeError, TypeError):
                pass
        self.doc = doc
        if doc is not None:
            doc.sig_reset.connect(self._update_controls)
        self._update_controls()

    def _on_target_changed(self, _index: int) -> None:
        target = self.target_combo.currentData()
        if target is None:
            self.target_note.setText("")
            return
        from models.export import TARGETS  # a table only: no TensorFlow

        for fmt, check in self.format_checks.items():
            check.setChecked(fmt in TARGET_FORMATS[target])
        self.target_note.setText(TARGETS[target].about)

    # ------------------------------------------------------------------ plan

    def plan(self):
        """The :class:`models.deploy.DeployPlan` the controls describe."""
        from models.compress import CompressOptions
        from models.deploy import DeployPlan

        options = None
        if self.prune_check.isChecked() or self.cluster_check.isChecked() \
                or self.qat_check.isChecked():
            structured = self.prune_check.isChecked() and self.structured_check.isChecked()
            options = CompressOptions(
                prune=self.sparsity_spin.value() / 100.0 if self.prune_check.isChecked() else None,
                schedule=self.schedule_combo.currentData(),
                structured="2:4" if structured else None,
                cluster=self.clusters_spin.value() if self.cluster_check.isChecked() else None,
                centroid_init=self.init_combo.currentData(),
                qat=self.qat_check.isChecked(), epochs=self.epochs_spin.value())
        formats = tuple(f for f, c in self.format_checks.items() if c.isChecked())
        return DeployPlan(compress=options, keras_quantize=self.keras_quant_combo.currentData(),
                          formats=formats, target=self.target_combo.currentData(),
                          threads=self.threads_spin.value(),
                          xnnpack=self.xnnpack_check.isChecked(), xla=self.xla_check.isChecked())

    def _cannot_start(self) -> str:
        if self.doc is None:
            return "no document"
        problem = not_ready(self.doc, "compress and measure")
        if not problem and not self.doc.project.has_weights():
            problem = "the model has no trained weights: train it first (Train menu)"
        return problem

    def _run_folder(self) -> Path:
        path = self.doc.project.path
        if path is not None:
            stem = path.name[: -len(".lforge")] if path.name.endswith(".lforge") else path.stem
            return path.with_name(f"{stem}_deploy")
        return Path(tempfile.mkdtemp(prefix="layerforge-deploy-"))

    # ------------------------------------------------------------------ run

    def start(self) -> bool:
        """Start a run with the chosen steps; False (and a message) when it cannot start."""
        if self.worker.running:
            return False
        why = self._cannot_start()
        if why:
            self._show_message(f"Cannot run: {why}", "error")
            return False
        plan = self.plan()
        from models.compress import CompressError
        from models.export import ExportError

        try:
            plan.check()
        except (CompressError, ExportError) as exc:
            self._show_message(f"Cannot run: {exc}", "error")
            return False
        if not plan.formats and plan.compress is None and plan.keras_quantize is None:
            self._show_message("Choose at least one step or export format.", "error")
            return False
        project = self.doc.project.copy()
        self.out_dir = self._run_folder()
        self.report = None
        self.rows = []
        self._clear_results()
        self.folder_label.setText(str(self.out_dir))
        out_dir = self.out_dir

        def job(state):
            from models.deploy import run_deploy

            return run_deploy(project, plan, out_dir, state=state)

        self.worker.start(job)
        self._timer.start()
        self.progress.setValue(0)
        self.progress.setFormat("starting…")
        self._show_message("running: the rows appear as each variant is measured", "info")
        self._update_controls()
        return True

    def stop(self) -> None:
        if self.worker.running:
            self.worker.stop()
            self.progress.setFormat("stopping…")

    def shutdown(self, timeout_ms: int = 30_000) -> bool:
        """Stop a run and wait for its thread (closing the app)."""
        self._timer.stop()
        return self.worker.wait(timeout_ms)

    def refresh(self) -> None:
        """Drain the run: new rows go into the table and the charts; progress into the bar."""
        state = self.worker.state
        if state is None:
            return
        new_rows = False
        for event in state.drain():
            if event.kind == "row":
                self.rows.append(event.payload)
                new_rows = True
        if new_rows:
            self._fill_table()
            self._draw_charts()
        if self.worker.running:
            self.progress.setValue(int(state.fraction * 1000))
            self.progress.setFormat(f"{state.fraction * 100:.0f}%  {state.message}")

    def _on_done(self, state) -> None:
        self._timer.stop()
        self.refresh()
        if state.status == "done":
            self.report = state.result
            self.progress.setValue(1000)
            self.progress.setFormat("done")
            self.details.setPlainText(_details_text(self.report))
            best = _smallest_good(self.rows)
            text = f"{len(self.rows)} variants measured in {self.report.seconds:.0f} s"
            if best:
                text += f"; smallest within a point of float accuracy: {best}"
            self._show_message(text, "ok")
            self.sig_finished.emit(self.report)
        elif state.status == "cancelled":
            self.progress.setFormat("stopped")
            self._show_message("Stopped by you; the rows measured so far are kept.", "warn")
            self.sig_finished.emit(None)
        else:
            self.progress.setFormat("failed")
            self._show_message(f"Deploy run failed: {state.error}", "error")
            self.sig_finished.emit(None)
        self._update_controls()

    def _update_controls(self) -> None:
        running = self.worker.running
        compressed = self.report is not None and self.report.compression is not None
        for w in (self.run_button, self.run_action):
            w.setEnabled(not running and self.doc is not None)
        for w in (self.stop_button, self.stop_action):
            w.setEnabled(running)
        has_folder = self.out_dir is not None
        for w in (self.open_folder_button, self.open_folder_action):
            w.setEnabled(has_folder)
        for w in (self.open_project_button, self.open_project_action, self.save_project_button,
                  self.save_project_action):
            w.setEnabled(compressed and not running)
        for w in (self.hlo_button, self.hlo_action):
            w.setEnabled(self.doc is not None and self.doc.project.has_weights())

    def _show_message(self, text: str, kind: str = "info") -> None:
        color = {"error": "#c62828", "warn": "#b26a00", "ok": "#2e7d32"}.get(kind, "#333")
        self.message_label.setStyleSheet(f"color: {color};")
        self.message_label.setText(text)
        self.sig_message.emit(text)

    # ------------------------------------------------------------------ results

    def _clear_results(self) -> None:
        self.table.setRowCount(0)
        self.details.clear()
        for plot in self.chart_plots.values():
            plot.clear()

    def _fill_table(self) -> None:
        rows = self.rows
        base = _float_size(rows)
        self.table.setRowCount(len(rows))
        for i, row in enumerate(rows):
            size = row.get("size_bytes")
            cells = [
                row["name"],
                _kb(size),
                f"{size / base:.0%}" if size and base else "",
                _percent(row.get("value")) if row.get("metric") == "accuracy"
                else _number(row.get("value"), row.get("metric")),
                _percent(row.get("agreement")),
                "" if row.get("latency_ms") is None else f"{row['latency_ms']:.3f} ms",
                row.get("runtime") or "",
                Path(row["path"]).name if row.get("path") else "",
            ]
            for j, text in enumerate(cells):
                item = QTableWidgetItem(text)
                if j in (1, 2, 3, 4, 5):
                    item.setTextAlignment(Qt.AlignRight | Qt.AlignVCenter)
                if j == 0 and row.get("notes"):
                    item.setToolTip("\n".join(row["notes"]))
                if j == 7 and row.get("path"):
                    item.setToolTip(row["path"])
                self.table.setItem(i, j, item)

    def _draw_charts(self) -> None:
        rows = self.rows
        names = [r["name"] for r in rows]
        y = np.arange(len(rows))[::-1].astype(float)  # the first row at the top
        colors = [RUNTIME_COLORS.get(r.get("runtime") or "", PALETTE[7]) for r in rows]
        series = {
            "size": [(r.get("size_bytes") or 0) / 1024 for r in rows],
            "accuracy": [100 * r["value"] if r.get("metric") == "accuracy"
                         and r.get("value") is not None else math.nan for r in rows],
            "latency": [r["latency_ms"] if r.get("latency_ms") is not None else math.nan
                        for r in rows],
        }
        ticks = [[(float(yi), n) for yi, n in zip(y, names)]]
        accuracies = [v for v in series["accuracy"] if math.isfinite(v)]
        # Accuracies differ by fractions of a point: that axis starts just below them.
        low = max(0.0, math.floor(min(accuracies) - 3)) if accuracies else 0.0
        self.chart_plots["accuracy"].setTitle(
            f"Test accuracy (%, axis from {low:g})" if low else "Test accuracy (%)",
            color="#222", size="10pt")
        for key, plot in self.chart_plots.items():
            plot.clear()
            values = np.asarray(series[key], dtype=float)
            shown = np.isfinite(values)
            start = low if key == "accuracy" else 0.0
            if shown.any():
                plot.addItem(pg.BarGraphItem(x0=start, y=y[shown], height=0.7,
                                             width=values[shown] - start,
                                             brushes=[c for c, s in zip(colors, shown) if s],
                                             pen=pg.mkPen(None)))
            for yi, v in zip(y[shown], values[shown]):
                label = pg.TextItem(_bar_label(key, v), color="#222", anchor=(0, 0.5))
                label.setPos(float(v), float(yi))
                plot.addItem(label)
            top = float(np.max(values[shown])) if shown.any() else 1.0
            # Room on the right for the value written after each bar.
            plot.setXRange(start, start + (top - start) * 1.3 if top > start else start + 1,
                           padding=0)
            plot.setYRange(-0.6, len(rows) - 0.4, padding=0)
            plot.getAxis("left").setTicks(ticks)

    def _on_cell_double_clicked(self, row: int, _col: int) -> None:
        if 0 <= row < len(self.rows) and self.rows[row].get("path"):
            path = Path(self.rows[row]["path"])
            QDesktopServices.openUrl(QUrl.fromLocalFile(str(path.parent if path.is_file()
                                                            else path)))

    # ------------------------------------------------------------------ files

    def open_folder(self) -> None:
        if self.out_dir is not None and self.out_dir.exists():
            QDesktopServices.openUrl(QUrl.fromLocalFile(str(self.out_dir)))

    def compressed_project(self):
        """The compressed project of the last run, or None."""
        if self.report is None or self.report.compression is None:
            return None
        return self.report.compression.project

    def open_compressed(self) -> None:
        project = self.compressed_project()
        if project is not None:
            self.sig_open_project.emit(project.copy())

    def save_compressed(self, path: str | None = None) -> Path | None:
        """Save the compressed model as a new project (asks where when ``path`` is None)."""
        result = self.report.compression if self.report is not None else None
        if result is None:
            return None
        if path is None:
            start = str((self.out_dir or Path.home()) / "compressed.lforge")
            path, _ = QFileDialog.getSaveFileName(self, "Save compressed project", start,
                                                  "LayerForge projects (*.lforge)")
            if not path:
                return None
        project = result.project.copy()
        try:
            saved = project.save(path, models={project.main_name: result.model})
        except (OSError, ValueError) as exc:
            self._show_message(f"Could not save: {exc}", "error")
            return None
        self._show_message(f"saved the compressed model as {saved}", "ok")
        return saved

    def show_hlo(self) -> None:
        """Compute the optimized XLA HLO off the UI thread, then show it in a dialog."""
        if self.doc is None or not self.doc.project.has_weights():
            return
        project = self.doc.project.copy()
        self._show_message("compiling the forward pass with XLA…", "info")

        def work():
            from models.bench import hlo_text
            from models.export import build_locked

            return hlo_text(build_locked(project), "optimized_hlo")

        def done(text):
            self._show_message(f"optimized HLO: {len(text.splitlines()):,} lines", "ok")
            self.hlo_dialog = _text_dialog(self, "Optimized XLA HLO", text)
            self.hlo_dialog.show()

        run_in_thread(self, work, done,
                      lambda message: self._show_message(f"No HLO: {message}", "error"))


# --------------------------------------------------------------------------- text


def _small_font():
    from PySide6.QtGui import QFont

    font = QFont()
    font.setPointSize(8)
    return font


def _percent(v) -> str:
    return "" if v is None else f"{100 * v:.2f} %"


def _number(v, metric) -> str:
    return "" if v is None else f"{metric} {v:.4g}"


def _bar_label(key: str, v: float) -> str:
    if key == "size":
        return f" {v:,.1f}"
    if key == "accuracy":
        return f" {v:.1f}"
    return f" {v:.3f}" if v < 10 else f" {v:.1f}"


def _float_size(rows: list[dict]) -> int | None:
    """The float TFLite file's size (of the compressed model, when there is one), else the
    float Keras file's."""
    for fmt in ("tflite", "keras"):
        for r in rows:
            if r["format"] == fmt and r.get("size_bytes"):
                return r["size_bytes"]
    return None


def _smallest_good(rows: list[dict]) -> str:
    """The smallest variant whose accuracy is within a point of the float model's."""
    ref = next((r.get("value") for r in rows if r["name"] == "keras (float)"), None)
    if ref is None or not rows or rows[0].get("metric") != "accuracy":
        return ""
    good = [r for r in rows if r.get("value") is not None and r.get("size_bytes")
            and r["value"] >= ref - 0.01]
    if not good:
        return ""
    best = min(good, key=lambda r: r["size_bytes"])
    return f"{best['name']} ({_kb(best['size_bytes'])})"


def _details_text(report) -> str:
    lines = []
    for e in report.exports:
        tpu = e.checks.get("edgetpu")
        if tpu is not None:
            ops = ", ".join(f"{k} x{v}" for k, v in tpu["ops"].items())
            lines.append(f"Edge TPU ({e.path.name}): "
                         + ("every operation is int8 and supported" if tpu["ok"] else
                            "problems:") + f"  [{ops}]")
            lines += [f"  {p}" for p in tpu["problems"]]
        mcu = e.checks.get("mcu")
        if mcu is not None:
            lines.append(f"Microcontroller ({e.path.name}): tensor arena ~{_kb(mcu['arena_bytes'])}"
                         f" (activations {_kb(mcu['activations_bytes'])}), RAM "
                         f"~{_kb(mcu['ram_bytes'])}, flash {_kb(mcu['flash_bytes'])} + TFLite Micro"
                         f" code; ops: {', '.join(mcu['ops'])}")
    c = report.compression
    if c is not None:
        lines.append(f"Compression: {' + '.join(c.steps)}, {c.metric} {c.before:.4f} -> "
                     f"{c.after:.4f}; weights (gzipped .weights.h5) {_kb(c.size_bytes_before)} "
                     f"-> {_kb(c.size_bytes_after)}")
        for layer, share in c.sparsity.items():
            lines.append(f"  {layer:<24} zeros {share:6.1%}   distinct values "
                         f"{c.distinct.get(layer, 0):,}")
        for layer, cls, step, why in c.skipped:
            lines.append(f"  left as it was ({step}): {layer} ({cls}): {why}")
        lines += [f"  {n}" for n in c.notes]
    kq = report.keras_quantize
    if kq:
        lines.append(f"Keras {kq['mode']} quantize: {', '.join(kq['quantized'])} quantized; "
                     f"{kq['metric']} {kq['before']:.4f} -> {kq['after']:.4f}")
        lines += [f"  float: {item['layer']}: {item['reason']}" for item in kq["left_float"]]
        lines += [f"  {n}" for n in kq["notes"]]
    x = report.xla
    if x:
        t, i = x["train"], x["inference"]
        lines.append(f"XLA on {x['device']}: training {t['off']['step_ms']:.2f} -> "
                     f"{t['on']['step_ms']:.2f} ms/step (x{t['speedup']:.2f}; compiling took "
                     f"{t['on']['compile_overhead_s']:.1f} s), inference x{i['speedup']:.2f}")
    lines += [f"Note: {n}" for n in report.notes]
    for r in report.rows:
        for n in r.notes:
            lines.append(f"{r.name}: {n}")
    return "\n".join(lines)


def _text_dialog(parent, title: str, text: str) -> QDialog:
    dialog = QDialog(parent)
    dialog.setWindowTitle(title)
    dialog.resize(900, 600)
    view = QPlainTextEdit(readOnly=True)
    view.setFont(QFontDatabase.systemFont(QFontDatabase.FixedFont))
    view.setLineWrapMode(QPlainTextEdit.NoWrap)
    view.setPlainText(text)
    lay = QVBoxLayout(dialog)
    lay.addWidget(view)
    return dialog


__all__ = ["DeployPanel"]
