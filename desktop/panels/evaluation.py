"""The evaluation page: how the trained model does on the test split.

Shows what :func:`models.evaluation.evaluate` measured: the test metrics and,
for classifiers, the confusion matrix (counts written in the cells, colour by
the share of each true class), one-vs-rest ROC and precision-recall curves
and a precision/recall/F1 table per class; for regression and forecasting,
predicted against actual values and the residuals.
"""
from __future__ import annotations

import numpy as np
import pyqtgraph as pg
from PySide6.QtCore import QPointF, QRectF, Qt
from PySide6.QtGui import QColor, QFont, QIcon, QPen, QPixmap
from PySide6.QtWidgets import (
    QHeaderView,
    QLabel,
    QSplitter,
    QStackedWidget,
    QTableWidget,
    QTableWidgetItem,
    QVBoxLayout,
    QWidget,
)

# Tableau's ten colours: distinct, and readable on white.
PALETTE = ["#1f77b4", "#ff7f0e", "#2ca02c", "#d62728", "#9467bd", "#8c564b", "#e377c2",
           "#7f7f7f", "#bcbd22", "#17becf"]
MAX_CURVES = 10          # ROC/PR curves drawn (the table lists every class)
MAX_LEGEND = 4           # more curves than this: the table's colour swatches name them
MAX_CELL_TEXT = 30       # above this many classes the confusion matrix has no numbers

METRIC_LABELS = {
    "accuracy": "accuracy", "balanced_accuracy": "balanced accuracy", "macro_f1": "macro F1",
    "weighted_f1": "weighted F1", "auc": "AUC (mean, one-vs-rest)", "log_loss": "log loss",
    "mae": "MAE", "rmse": "RMSE", "mse": "MSE", "r2": "R²",
}


def style_plot(plot: pg.PlotItem, title: str, x: str = "", y: str = "",
               grid: bool = False) -> pg.PlotItem:
    """Dark text on white, a title and axis labels (a grid only if asked: its many
    lines cost several times the rest of a repaint)."""
    plot.setTitle(title, color="#222", size="10pt")
    for side in ("left", "bottom"):
        axis = plot.getAxis(side)
        axis.setPen(pg.mkPen("#888"))
        axis.setTextPen(pg.mkPen("#333"))
    if x:
        plot.setLabel("bottom", x, color="#333")
    if y:
        plot.setLabel("left", y, color="#333")
    if grid:
        plot.showGrid(x=True, y=True, alpha=0.15)
    return plot


class Legend(pg.LegendItem):
    """A legend shown only while it names something (an empty one is a stray white box)."""

    def __init__(self, **kw):
        super().__init__(**kw)
        self.setVisible(False)

    def addItem(self, item, name):
        super().addItem(item, name)
        self.setVisible(True)

    def removeItem(self, item):
        super().removeItem(item)
        self.setVisible(bool(self.items))

    def clear(self):
        super().clear()
        self.setVisible(False)


def add_legend(plot: pg.PlotItem, **kw) -> pg.LegendItem:
    """A legend in ``plot``'s corner (top right unless ``offset`` says otherwise), named
    curves join it as they are plotted."""
    legend = Legend(offset=kw.pop("offset", (-5, 5)), labelTextColor="#222",
                    brush=pg.mkBrush(255, 255, 255, 200), pen=pg.mkPen("#ccc"),
                    labelTextSize="8pt", verSpacing=-6, **kw)
    legend.setParentItem(plot.vb)
    plot.legend = legend
    return legend


class CellLabels(pg.GraphicsObject):
    """Numbers written in the cells of a k x k grid, in one item (cell (i, j) at x=j, y=i).

    One item painting every label is far cheaper than a TextItem per cell; the
    text keeps its size and stays upright however the plot is zoomed or flipped.
    """

    def __init__(self):
        super().__init__()
        self.texts: list[list[str]] = []
        self.dark: np.ndarray = np.zeros((0, 0), dtype=bool)  # cells that need light text
        self.font = QFont()

    def set_cells(self, texts: list[list[str]], dark: np.ndarray, point_size: int = 9) -> None:
        self.prepareGeometryChange()
        self.texts, self.dark = texts, np.asarray(dark, dtype=bool)
        self.font.setPointSize(point_size)
        self.update()

    def boundingRect(self) -> QRectF:
        k = len(self.texts)
        return QRectF(-0.5, -0.5, k, k)

    def paint(self, painter, *_args):
        k = len(self.texts)
        if not k:
            return
        transform = painter.transform()
        corner = transform.map(QPointF(0.5, 0.5)) - transform.map(QPointF(-0.5, -0.5))
        w, h = abs(corner.x()), abs(corner.y())
        painter.save()
        painter.resetTransform()
        painter.setFont(self.font)
        pens = {True: QPen(QColor("#ffffff")), False: QPen(QColor("#222222"))}
        for i, row in enumerate(self.texts):
            for j, text in enumerate(row):
                c = transform.map(QPointF(j, i))
                painter.setPen(pens[bool(self.dark[i, j])])
                painter.drawText(QRectF(c.x() - w / 2, c.y() - h / 2, w, h), Qt.AlignCenter, text)
        painter.restore()


class EvaluationPanel(QWidget):
    """Test metrics and the pictures that explain them.

    Call :meth:`set_evaluation` with the dict from
    :func:`models.evaluation.evaluate` (and, optionally, the metrics Keras
    reported); :meth:`clear` empties the page.
    """

    def __init__(self, parent=None):
        super().__init__(parent)
        self.evaluation: dict | None = None
        self.summary = QLabel("Train the model to see how it does on the test data.")
        self.summary.setWordWrap(True)
        self.summary.setTextFormat(Qt.RichText)
        self.summary.setTextInteractionFlags(Qt.TextSelectableByMouse)
        self.notes = QLabel("")
        self.notes.setWordWrap(True)
        self.notes.setStyleSheet("color: #666;")

        # Classification: confusion matrix, ROC, PR, and the per-class table.
        self.class_plots = pg.GraphicsLayoutWidget()
        self.class_plots.setBackground("w")
        self.cm_plot = style_plot(self.class_plots.addPlot(row=0, col=0), "Confusion matrix",
                                  "predicted class", "true class")
        self.cm_plot.invertY(True)
        self.cm_plot.setMouseEnabled(False, False)
        self.cm_plot.hideButtons()
        self.cm_image = pg.ImageItem()
        self.cm_image.setColorMap(pg.colormap.get("CET-L12") if _has_map("CET-L12")
                                  else pg.colormap.get("viridis"))
        self.cm_plot.addItem(self.cm_image)
        self.cm_cells = CellLabels()
        self.cm_plot.addItem(self.cm_cells)
        self.roc_plot = style_plot(self.class_plots.addPlot(row=0, col=1), "ROC (one-vs-rest)",
                                   "false positive rate", "true positive rate")
        self.pr_plot = style_plot(self.class_plots.addPlot(row=0, col=2), "Precision-recall",
                                  "recall", "precision")
        for p in (self.roc_plot, self.pr_plot):
            p.setRange(xRange=(0, 1), yRange=(0, 1.02), padding=0.02)
        add_legend(self.roc_plot, offset=(-5, -5))  # ROC curves hug the top left
        add_legend(self.pr_plot, offset=(5, -5))  # precision-recall curves the top right
        self.roc_plot.plot([0, 1], [0, 1], pen=pg.mkPen("#bbb", style=Qt.DashLine))
        self._roc_curves: list[pg.PlotDataItem] = []
        self._pr_curves: list[pg.PlotDataItem] = []
        self.table = QTableWidget(0, 7)
        self.table.setHorizontalHeaderLabels(["class", "precision", "recall", "F1", "AUC", "AP",
                                              "support"])
        self.table.verticalHeader().setVisible(False)
        self.table.setEditTriggers(QTableWidget.NoEditTriggers)
        self.table.horizontalHeader().setSectionResizeMode(QHeaderView.ResizeToContents)
        self.table.setMinimumWidth(300)
        class_page = QSplitter(Qt.Horizontal)
        class_page.addWidget(self.class_plots)
        class_page.addWidget(self.table)
        class_page.setStretchFactor(0, 1)
        class_page.setStretchFactor(1, 0)

        # Regression: predicted against actual, residuals, residual histogram.
        self.reg_plots = pg.GraphicsLayoutWidget()
        self.reg_plots.setBackground("w")
        self.scatter_plot = style_plot(self.reg_plots.addPlot(row=0, col=0),
                                       "Predicted against actual", "actual", "predicted")
        self.residual_plot = style_plot(self.reg_plots.addPlot(row=0, col=1),
                                        "Residuals", "actual", "predicted − actual")
        self.residual_hist_plot = style_plot(self.reg_plots.addPlot(row=0, col=2),
                                             "Residual distribution", "predicted − actual",
                                             "samples")
        # Residuals read best in the data's own units, not as "x0.001".
        self.residual_plot.getAxis("left").enableAutoSIPrefix(False)
        self.residual_hist_plot.getAxis("bottom").enableAutoSIPrefix(False)

        self.empty = QLabel("No evaluation yet.")
        self.empty.setAlignment(Qt.AlignCenter)
        self.empty.setStyleSheet("color: #888;")
        self.pages = QStackedWidget()
        for w in (self.empty, class_page, self.reg_plots):
            self.pages.addWidget(w)
        self.class_page = class_page

        lay = QVBoxLayout(self)
        lay.setContentsMargins(4, 4, 4, 4)
        lay.addWidget(self.summary)
        lay.addWidget(self.pages, 1)
        lay.addWidget(self.notes)

    # ------------------------------------------------------------------ API

    def clear(self, text: str = "No evaluation yet.") -> None:
        self.evaluation = None
        self.empty.setText(text)
        self.pages.setCurrentWidget(self.empty)
        self.summary.setText("Train the model to see how it does on the test data.")
        self.notes.setText("")

    def set_evaluation(self, evaluation: dict | None, metrics: dict | None = None,
                       empty: str | None = None) -> None:
        """Show an evaluation (``models.evaluation.evaluate``'s dict) and Keras's test metrics.

        Args:
            evaluation: the evaluation, or None (then ``empty`` says why there is none).
            metrics: the run's test metrics.
            empty: the reason shown when there is no evaluation.
        """
        if not evaluation:
            self.clear(empty or "This run has no evaluation (no test split, or it stopped on a NaN).")
            if metrics:
                self.summary.setText(_metrics_html({}, metrics))
            return
        self.evaluation = evaluation
        self.summary.setText(_metrics_html(evaluation, metrics or {}))
        self.notes.setText("  ".join(evaluation.get("notes") or []))
        if "confusion_matrix" in evaluation:
            self._show_classification(evaluation)
            self.pages.setCurrentWidget(self.class_page)
        else:
            self._show_regression(evaluation)
            self.pages.setCurrentWidget(self.reg_plots)

    # ------------------------------------------------------------------ classification

    def _show_classification(self, ev: dict) -> None:
        names = list(ev.get("class_names") or [])
        cm = np.asarray(ev["confusion_matrix"], dtype=np.float64)
        k = cm.shape[0]
        # Colour by the share of each true class, so small classes read as well as big ones.
        share = cm / np.maximum(cm.sum(axis=1, keepdims=True), 1.0)
        self.cm_image.setImage(share.T, levels=(0.0, 1.0))  # ImageItem indexes [x, y]
        self.cm_image.setRect(QRectF(-0.5, -0.5, k, k))
        texts = [[f"{int(v)}" for v in row] for row in cm] if k <= MAX_CELL_TEXT else []
        self.cm_cells.set_cells(texts, share > 0.55, 9 if k <= 12 else 7)
        ticks = [(i, _short(names[i] if i < len(names) else str(i))) for i in range(k)]
        step = max(1, k // 20)
        for side in ("bottom", "left"):
            self.cm_plot.getAxis(side).setTicks([ticks[::step]])
        self.cm_plot.setRange(xRange=(-0.5, k - 0.5), yRange=(-0.5, k - 0.5), padding=0)

        self._set_curves(self.roc_plot, self._roc_curves,
                         [(c["fpr"], c["tpr"], f"{_short(c['class'])}  AUC {_fmt(c['auc'])}")
                          for c in (ev.get("roc") or [])[:MAX_CURVES]])
        self._set_curves(self.pr_plot, self._pr_curves,
                         [(c["recall"], c["precision"], f"{_short(c['class'])}  AP {_fmt(c['ap'])}")
                          for c in (ev.get("pr") or [])[:MAX_CURVES]])

        for plot, n in ((self.roc_plot, len(self._roc_curves)), (self.pr_plot, len(self._pr_curves))):
            plot.legend.setVisible(n <= MAX_LEGEND)  # a long legend hides the curves

        rows = ev.get("per_class") or []
        averages = ev.get("averages") or {}
        auc = {c["class"]: c.get("auc") for c in ev.get("roc") or []}
        ap = {c["class"]: c.get("ap") for c in ev.get("pr") or []}
        curve_index = {c["class"]: i for i, c in enumerate((ev.get("roc") or [])[:MAX_CURVES])}
        self.table.setRowCount(len(rows) + len(averages))
        for r, row in enumerate(rows):
            name = row["class"]
            self._table_row(r, name, row["precision"], row["recall"], row["f1"],
                            auc.get(name), ap.get(name), row["support"],
                            color=PALETTE[curve_index[name] % len(PALETTE)]
                            if name in curve_index else None)
        total = sum(int(row["support"]) for row in rows)
        for r, (name, avg) in enumerate(averages.items(), start=len(rows)):
            self._table_row(r, f"{name} avg", avg["precision"], avg["recall"], avg["f1"],
                            None, None, total, bold=True)
        self.table.resizeColumnsToContents()
        header = self.table.horizontalHeader()
        width = header.length() + self.table.verticalScrollBar().sizeHint().width() + 6
        self.table.setMinimumWidth(min(max(300, width), 460))

    @staticmethod
    def _set_curves(plot: pg.PlotItem, curves: list, data: list) -> None:
        """Reuse the plot's curves (and legend rows); add or remove only what changed in number."""
        legend = plot.legend
        while len(curves) > len(data):
            curve = curves.pop()
            legend.removeItem(curve)
            plot.removeItem(curve)
        for i, (x, y, name) in enumerate(data):
            if i < len(curves):
                curves[i].setData(x, y)
                for sample, label in legend.items:
                    if sample.item is curves[i]:
                        label.setText(name)
            else:
                pen = pg.mkPen(PALETTE[i % len(PALETTE)], width=2)
                curves.append(plot.plot(x, y, pen=pen, name=name))

    def _table_row(self, r, name, precision, recall, f1, auc, ap, support, bold=False,
                   color=None):
        cells = [str(name), _fmt(precision), _fmt(recall), _fmt(f1),
                 "" if auc is None else _fmt(auc), "" if ap is None else _fmt(ap), str(support)]
        for c, text in enumerate(cells):
            item = QTableWidgetItem(text)
            if c == 0 and color is not None:  # the class's colour in the ROC and PR plots
                swatch = QPixmap(10, 10)
                swatch.fill(QColor(color))
                item.setIcon(QIcon(swatch))
            if c:
                item.setTextAlignment(Qt.AlignRight | Qt.AlignVCenter)
            if bold:
                f = item.font()
                f.setBold(True)
                item.setFont(f)
            if c == 3 and f1 is not None and not bold:
                # A pale red-to-green wash: weak classes stand out.
                v = float(f1)
                item.setBackground(QColor.fromHsvF(0.33 * v, 0.35, 1.0))
            self.table.setItem(r, c, item)

    # ------------------------------------------------------------------ regression

    def _show_regression(self, ev: dict) -> None:
        sc = ev.get("scatter") or {}
        actual = np.asarray(sc.get("actual") or [], dtype=float)
        predicted = np.asarray(sc.get("predicted") or [], dtype=float)
        residual = np.asarray(sc.get("residual") or [], dtype=float)
        for plot in (self.scatter_plot, self.residual_plot, self.residual_hist_plot):
            plot.clear()
        brush = pg.mkBrush(31, 119, 180, 150)
        if actual.size:
            lo = float(min(actual.min(), predicted.min()))
            hi = float(max(actual.max(), predicted.max()))
            self.scatter_plot.plot([lo, hi], [lo, hi], pen=pg.mkPen("#999", style=Qt.DashLine))
            self.scatter_plot.plot(actual, predicted, pen=None, symbol="o", symbolSize=5,
                                   symbolBrush=brush, symbolPen=None)
            self.residual_plot.plot([actual.min(), actual.max()], [0, 0],
                                    pen=pg.mkPen("#999", style=Qt.DashLine))
            self.residual_plot.plot(actual, residual, pen=None, symbol="o", symbolSize=5,
                                    symbolBrush=pg.mkBrush(255, 127, 14, 150), symbolPen=None)
        hist = ev.get("residual_histogram") or {}
        counts, edges = hist.get("counts") or [], hist.get("edges") or []
        if counts and len(edges) == len(counts) + 1:
            self.residual_hist_plot.plot(edges, counts, stepMode="center", fillLevel=0,
                                         brush=pg.mkBrush(44, 160, 44, 120),
                                         pen=pg.mkPen("#2ca02c"))


def _has_map(name: str) -> bool:
    try:
        return name in pg.colormap.listMaps()
    except Exception:  # pragma: no cover - listing needs the bundled map files
        return False


def _fmt(v, digits: int = 3) -> str:
    if v is None:
        return "–"
    try:
        return f"{float(v):.{digits}f}"
    except (TypeError, ValueError):
        return str(v)


def _short(text, n: int = 14) -> str:
    text = str(text)
    return text if len(text) <= n else text[: n - 1] + "…"


def _metrics_html(ev: dict, keras_metrics: dict) -> str:
    shown = []
    for key, value in (ev.get("metrics") or {}).items():
        if key == "mse" or value is None:
            continue
        shown.append((METRIC_LABELS.get(key, key), value))
    have = {label for label, _ in shown}
    for key, value in sorted((keras_metrics or {}).items()):
        if not key.startswith("test_") or value is None:
            continue
        label = key[5:].replace("_", " ")
        if label in have:
            continue
        shown.append((f"{label} (Keras)", value))
    if not shown:
        return "No test metrics."
    n = ev.get("n")
    head = f"<b>Test split</b> ({n} samples): " if n else "<b>Test split</b>: "
    return head + " &nbsp;·&nbsp; ".join(f"{label} <b>{_fmt(v)}</b>" for label, v in shown)


__all__ = ["EvaluationPanel", "PALETTE", "style_plot", "add_legend"]
