"""Ask the cheatsheet: a question box over a RAG project's trained retriever and reader.

The search runs off the UI thread (:func:`desktop.workers.run_in_thread`);
the dialog lists the passages used, with their sections and scores, under
the reader's answer. The retriever is built once per set of trained
weights and kept for the next questions.
"""
from __future__ import annotations

from PySide6.QtCore import Qt, Signal
from PySide6.QtWidgets import (
    QDialog,
    QHBoxLayout,
    QHeaderView,
    QLabel,
    QLineEdit,
    QPushButton,
    QTableWidget,
    QTableWidgetItem,
    QVBoxLayout,
)

from desktop.workers import run_in_thread

RETRIEVER_LOOP = "models.loops.retrieval:RetrieverLoop"


def is_rag_project(project) -> bool:
    """A project trained by the retriever loop (the RAG template or a copy of it)."""
    return project is not None and project.recipe.get("loop") == RETRIEVER_LOOP


class AskDialog(QDialog):
    """Type a question, get the passages the retriever finds and the sentence the reader picks.

    Signals:
        sig_answered(dict): the result of :meth:`models.rag.Retriever.ask`.
    """

    sig_answered = Signal(dict)
    COLUMNS = ("#", "Section", "Score", "Passage")

    def __init__(self, doc, parent=None):
        super().__init__(parent)
        self.setWindowTitle("Ask the cheatsheet")
        self.doc = doc
        self._retriever = None
        self._weights_key = None
        self._busy = False
        self.question = QLineEdit(placeholderText="e.g. What does the stride of a convolution control?")
        self.question.returnPressed.connect(self.ask)
        self.ask_btn = QPushButton("Ask")
        self.ask_btn.clicked.connect(self.ask)
        self.status = QLabel("", wordWrap=True)
        self.status.setStyleSheet("color: #555;")
        self.answer = QLabel("", wordWrap=True, textInteractionFlags=Qt.TextSelectableByMouse)
        self.answer.setStyleSheet("font-size: 11pt; padding: 6px; background: #f4f7fb;"
                                  "border: 1px solid #d5dde8; border-radius: 4px;")
        self.answer.hide()
        self.table = QTableWidget(0, len(self.COLUMNS))
        self.table.setHorizontalHeaderLabels(self.COLUMNS)
        self.table.setEditTriggers(QTableWidget.NoEditTriggers)
        self.table.setWordWrap(True)
        self.table.verticalHeader().hide()
        header = self.table.horizontalHeader()
        for col in range(3):
            header.setSectionResizeMode(col, QHeaderView.ResizeToContents)
        header.setSectionResizeMode(3, QHeaderView.Stretch)
        row = QHBoxLayout()
        row.addWidget(self.question, 1)
        row.addWidget(self.ask_btn)
        lay = QVBoxLayout(self)
        lay.addLayout(row)
        lay.addWidget(self.status)
        lay.addWidget(QLabel("<b>Answer</b> (a sentence copied from the passages below)"))
        lay.addWidget(self.answer)
        lay.addWidget(QLabel("<b>Passages used</b>"))
        lay.addWidget(self.table, 1)
        self.resize(820, 440)

    def ask(self) -> bool:
        """Start answering the question in the box; False when there is nothing to do."""
        text = self.question.text().strip()
        if self._busy:
            return False
        if not text:
            self._show_status("type a question first", error=True)
            return False
        project = self.doc.project
        if not project.has_weights():
            self._show_status("the retriever is not trained yet: train it first (Train > Start); "
                              "untrained, it ranks passages at random", error=True)
            return False
        self._busy = True
        self.ask_btn.setEnabled(False)
        self._show_status("searching the cheatsheet…")
        key = id(project.weights.get(project.main_name))
        retriever = self._retriever if key == self._weights_key else None
        snapshot = project.copy()

        def work():
            from models.rag import retriever_for

            r = retriever or retriever_for(snapshot)
            return r, r.ask(text)

        run_in_thread(self, work, lambda out: self._on_done(key, *out), self._on_failed)
        return True

    def _on_done(self, key, retriever, result: dict) -> None:
        self._retriever, self._weights_key = retriever, key
        self._busy = False
        self.ask_btn.setEnabled(True)
        note = result.get("note")
        known = result.get("known_words", 1.0)
        if note:
            self._show_status(note, error=True)
        elif known < 1.0:
            self._show_status(f"{known:.0%} of the question's words occur in the cheatsheet; "
                              "the others were left out of the search")
        else:
            self._show_status("")
        self.answer.setText(result["answer"] + (f"<br><span style='color:#666'>— from "
                                                f"{result['answer_section']}</span>"
                                                if result.get("answer_section") else ""))
        self.answer.setVisible(bool(result["answer"]))
        passages = result["passages"]
        self.table.setRowCount(len(passages))
        for i, p in enumerate(passages):
            cells = [str(i + 1), f"{p['section']} {p['title']}", f"{p['score']:.3f}",
                     p["text"] or "(this section has a title and no text yet)"]
            for col, text in enumerate(cells):
                item = QTableWidgetItem(text)
                item.setToolTip(text if col == 3 else "")
                self.table.setItem(i, col, item)
        self.table.resizeRowsToContents()
        self.sig_answered.emit(result)

    def _on_failed(self, message: str) -> None:
        self._busy = False
        self.ask_btn.setEnabled(True)
        self._show_status(f"the question could not be answered: {message}", error=True)

    def _show_status(self, text: str, error: bool = False) -> None:
        self.status.setStyleSheet(f"color: {'#b00020' if error else '#555'};")
        self.status.setText(text)


__all__ = ["AskDialog", "is_rag_project"]
