"""What the panels that run long work share: run buttons, progress and message line, document wiring.

The training and search panels both start, stop and watch a run through a
:class:`~models.runner.RunState`; these helpers give them one look.
"""
from __future__ import annotations

from PySide6.QtCore import Qt
from PySide6.QtWidgets import QHBoxLayout, QLabel, QProgressBar, QSizePolicy, QToolButton

MESSAGE_COLORS = {"error": "#c62828", "warn": "#b26a00", "ok": "#2e7d32"}


def run_button(action) -> QToolButton:
    """A tool button for a run action (Start, Pause, Stop...), its icon beside its text."""
    button = QToolButton()
    button.setDefaultAction(action)
    button.setToolButtonStyle(Qt.ToolButtonTextBesideIcon)
    button.setMinimumWidth(84)
    return button


def progress_row() -> tuple[QHBoxLayout, QProgressBar, QLabel]:
    """The progress bar (0..1000, "ready") and, beside it, the run's message line."""
    progress = QProgressBar()
    progress.setRange(0, 1000)
    progress.setValue(0)
    progress.setTextVisible(True)
    progress.setFormat("ready")
    progress.setSizePolicy(QSizePolicy.Expanding, QSizePolicy.Fixed)
    message = QLabel("")
    message.setWordWrap(True)
    message.setTextInteractionFlags(Qt.TextSelectableByMouse)
    message.setSizePolicy(QSizePolicy.Expanding, QSizePolicy.Preferred)
    row = QHBoxLayout()
    row.addWidget(progress, 2)
    row.addWidget(message, 3)
    return row, progress, message


def not_ready(doc, work: str) -> str:
    """Why the document's project cannot be used to ``work`` (train, search...) now; '' if it can."""
    project = doc.project
    if not project.graph.nodes:
        return "the model is empty: add layers (or start from the gallery) first"
    if project.dataset is None:
        return f"choose the data to {work} on first (the Data panel)"
    report = doc.report
    if report is not None and not report.valid:
        n = len(report.errors())
        return (f"the model has {n} problem{'s' if n != 1 else ''}; fix "
                f"{'them' if n != 1 else 'it'} first (see the Log tab)")
    return ""


def show_message(label: QLabel, text: str, kind: str = "info") -> None:
    """Write ``text`` in the message line, coloured by ``kind`` (info, ok, warn, error)."""
    color = MESSAGE_COLORS.get(kind, "#333")
    label.setStyleSheet(f"color: {color};" + (" font-weight: bold;" if kind == "error" else ""))
    label.setText(text)


def reconnect(old_doc, new_doc, connections) -> None:
    """Move a panel's ``(signal name, slot)`` connections from one document to another.

    A document without one of the signals (a test's stand-in) just lacks that connection.
    """
    for name, slot in connections:
        if old_doc is not None and hasattr(old_doc, name):
            try:
                getattr(old_doc, name).disconnect(slot)
            except (RuntimeError, TypeError):
                pass
        if new_doc is not None and hasattr(new_doc, name):
            getattr(new_doc, name).connect(slot)


__all__ = ["MESSAGE_COLORS", "progress_row", "reconnect", "run_button", "show_message"]
