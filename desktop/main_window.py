"""The main window: menus, toolbar, palette, canvas, inspector, and the bottom tabs."""
from __future__ import annotations

import json
import os
import time
import uuid
from pathlib import Path

from PySide6.QtCore import QSettings, Qt, QTimer, Slot
from PySide6.QtGui import QAction, QFontDatabase, QKeySequence
from PySide6.QtWidgets import (
    QApplication,
    QDockWidget,
    QFileDialog,
    QLabel,
    QMainWindow,
    QMenu,
    QMessageBox,
    QPlainTextEdit,
    QPushButton,
    QTabWidget,
    QVBoxLayout,
    QWidget,
)

from desktop.appdata import app_data_dir
from desktop.document import Document, engine
from models.project import Project, ProjectError

OPEN_FILTER = "LayerForge projects (*.lforge);;Keras models (*.keras *.h5 *.json);;All files (*)"
AUTOSAVE_MS = 60_000
MAX_RECENT = 10


def recovery_dir() -> Path:
    base = os.environ.get("LAYERFORGE_RECOVERY_DIR")
    path = Path(base) / "recovery" if base else app_data_dir() / "recovery"
    path.mkdir(parents=True, exist_ok=True)
    return path


class CodePanel(QWidget):
    """The generated Python code, read-only, with copy and save."""

    def __init__(self, parent=None):
        super().__init__(parent)
        self.text = QPlainTextEdit(readOnly=True)
        self.text.setFont(QFontDatabase.systemFont(QFontDatabase.FixedFont))
        self.text.setLineWrapMode(QPlainTextEdit.NoWrap)
        copy_btn = QPushButton("Copy")
        save_btn = QPushButton("Save as .py…")
        copy_btn.clicked.connect(lambda: QApplication.clipboard().setText(self.text.toPlainText()))
        save_btn.clicked.connect(self._save)
        from PySide6.QtWidgets import QHBoxLayout

        row = QHBoxLayout()
        row.addStretch(1)
        row.addWidget(copy_btn)
        row.addWidget(save_btn)
        lay = QVBoxLayout(self)
        lay.setContentsMargins(4, 4, 4, 4)
        lay.addLayout(row)
        lay.addWidget(self.text)

    def _save(self):
        path, _ = QFileDialog.getSaveFileName(self, "Save Python code", "model.py", "Python (*.py)")
        if path:
            from models.project import _atomic_write_text

            _atomic_write_text(Path(path), self.text.toPlainText())


class MainWindow(QMainWindow):
    def __init__(self, offer_recovery: bool = True):
        super().__init__()
        self.doc = Document(parent=self)
        self.loaded_once = False
        self._recovery_id = uuid.uuid4().hex[:12]
        self._code_dirty = True
        self.setWindowTitle("LayerForge")
        self.resize(1400, 860)
        self._build_ui()
        self._build_actions()
        self._connect_doc()
        self._build_training()
        self._build_explain()
        self._build_deploy()
        self._build_data()
        self._build_search()
        self._autosave_timer = QTimer(self)
        self._autosave_timer.setInterval(AUTOSAVE_MS)
        self._autosave_timer.timeout.connect(self.autosave)
        self._autosave_timer.start()
        self._build_ask()
        engine().worker.sig_keras_ready.connect(self._on_keras_ready)
        if engine().ready:
            self._keras_label.setText("Keras ready")
        self._update_title()
        if offer_recovery:
            QTimer.singleShot(200, self.offer_recovery)

    # ------------------------------------------------------------------ UI

    def _build_ui(self):
        from desktop.editor.view import GraphTabs, GraphView
        from desktop.panels.inspector import InspectorPanel
        from desktop.panels.palette import PalettePanel

        self.view = GraphView(self.doc)
        # A project with several graphs (encoder and decoder...) shows one tab per graph.
        self.graph_tabs = GraphTabs(self.doc)
        self.graph_tabs.sig_graph_chosen.connect(self.show_graph)
        canvas = QWidget()
        column = QVBoxLayout(canvas)
        column.setContentsMargins(0, 0, 0, 0)
        column.setSpacing(0)
        column.addWidget(self.graph_tabs)
        column.addWidget(self.view, 1)
        self.setCentralWidget(canvas)

        self.palette = PalettePanel()
        self.palette_dock = self._dock("Layers", self.palette, Qt.LeftDockWidgetArea)
        self.inspector = InspectorPanel()
        self.inspector.set_document(self.doc)
        self.inspector_dock = self._dock("Inspector", self.inspector, Qt.RightDockWidgetArea)

        self.tabs = QTabWidget()
        self.summary_text = QPlainTextEdit(readOnly=True)
        self.summary_text.setFont(QFontDatabase.systemFont(QFontDatabase.FixedFont))
        self.summary_text.setLineWrapMode(QPlainTextEdit.NoWrap)
        self.code_panel = CodePanel()
        self.log = QPlainTextEdit(readOnly=True)
        self.log.setMaximumBlockCount(5000)
        self.tabs.addTab(self.summary_text, "Summary")
        self.tabs.addTab(self.code_panel, "Python code")
        self.tabs.addTab(self.log, "Log")
        self.tabs.currentChanged.connect(lambda _i: self._refresh_code())
        self.bottom_dock = self._dock("Model", self.tabs, Qt.BottomDockWidgetArea)
        self.resizeDocks([self.palette_dock, self.inspector_dock], [250, 330], Qt.Horizontal)
        self.resizeDocks([self.bottom_dock], [190], Qt.Vertical)

        sb = self.statusBar()
        self._params_label = QLabel("0 parameters")
        self._valid_label = QLabel("")
        self._keras_label = QLabel("Loading Keras…")
        for w in (self._valid_label, self._params_label, self._keras_label):
            sb.addPermanentWidget(w)

        self.palette.sig_add_requested.connect(self.view.add_layer_at_center)
        self.view.sig_message.connect(self._on_message)
        self.view.sig_selection_changed.connect(self._on_selection)

    def _dock(self, title, widget, area):
        dock = QDockWidget(title, self)
        dock.setObjectName(title.replace(" ", "_"))
        dock.setWidget(widget)
        dock.setFeatures(QDockWidget.DockWidgetMovable | QDockWidget.DockWidgetClosable
                         | QDockWidget.DockWidgetFloatable)
        self.addDockWidget(area, dock)
        return dock

    def _action(self, text, slot, shortcut=None, tip=None):
        act = QAction(text, self)
        if shortcut is not None:
            act.setShortcut(QKeySequence(shortcut))
        if tip:
            act.setStatusTip(tip)
        act.triggered.connect(slot)
        return act

    def _build_actions(self):
        mb = self.menuBar()
        A = self.actions = {}
        A["new"] = self._action("&New", self.new_project, QKeySequence.New, "Start an empty model")
        A["gallery"] = self._action("New from &Gallery…", self.new_from_gallery, "Ctrl+Shift+N")
        A["transfer"] = self._action("New from &Trained Model…", self.new_from_trained_model, None,
                                     "Keep a trained model's layers (some frozen) under a new head")
        A["open"] = self._action("&Open…", self.open_dialog, QKeySequence.Open)
        A["save"] = self._action("&Save", self.save, QKeySequence.Save)
        A["save_as"] = self._action("Save &As…", self.save_as, QKeySequence.SaveAs)
        A["export_keras"] = self._action("Export as .&keras…", self.export_keras, "Ctrl+E")
        A["quit"] = self._action("&Quit", self.close, QKeySequence.Quit)
        undo = self.doc.undo_stack.createUndoAction(self, "&Undo")
        undo.setShortcut(QKeySequence.Undo)
        redo = self.doc.undo_stack.createRedoAction(self, "&Redo")
        redo.setShortcut(QKeySequence.Redo)
        A["undo"], A["redo"] = undo, redo

        fm = mb.addMenu("&File")
        for k in ("new", "gallery", "transfer", "open"):
            fm.addAction(A[k])
        self.recent_menu = fm.addMenu("Open &Recent")
        self._fill_recent()
        fm.addSeparator()
        for k in ("save", "save_as", "export_keras"):
            fm.addAction(A[k])
        fm.addSeparator()
        fm.addAction(A["quit"])

        va = self.view.actions_by_name
        em = mb.addMenu("&Edit")
        em.addAction(undo)
        em.addAction(redo)
        em.addSeparator()
        for k in ("cut", "copy", "paste", "duplicate", "delete", "select_all"):
            if k in va:
                em.addAction(va[k])
        em.addSeparator()
        A["group"] = self._action("&Group into Sub-model", self.group_selection, "Ctrl+G",
                                  "Fold the selected layers into one nested model")
        em.addAction(A["group"])
        vm = mb.addMenu("&View")
        for k in ("zoom_in", "zoom_out", "reset_zoom", "fit", "layout", "orientation", "snap"):
            if k in va:
                vm.addAction(va[k])
        vm.addSeparator()
        for dock in (self.palette_dock, self.inspector_dock, self.bottom_dock):
            vm.addAction(dock.toggleViewAction())
        self.palette_dock.toggleViewAction().setShortcut("Ctrl+1")
        self.inspector_dock.toggleViewAction().setShortcut("Ctrl+2")
        self.bottom_dock.toggleViewAction().setShortcut("Ctrl+3")
        A["find_layer"] = self._action("Find &Layer", self._focus_palette, "Ctrl+F")
        vm.addAction(A["find_layer"])
        A["next_graph"] = self._action("Next &Graph", lambda: self.graph_tabs.step(1),
                                       "Ctrl+PgDown", "Show the project's next graph")
        A["previous_graph"] = self._action("Previous Gra&ph", lambda: self.graph_tabs.step(-1),
                                           "Ctrl+PgUp", "Show the project's previous graph")
        vm.addAction(A["next_graph"])
        vm.addAction(A["previous_graph"])
        hm = mb.addMenu("&Help")
        hm.addAction(self._action("&About LayerForge", self._about))

        tb = self.addToolBar("Main")
        tb.setObjectName("main_toolbar")
        tb.setToolButtonStyle(Qt.ToolButtonTextOnly)
        for k in ("new", "open", "save"):
            tb.addAction(A[k])
        tb.addSeparator()
        tb.addAction(undo)
        tb.addAction(redo)
        tb.addSeparator()
        for k in ("fit", "layout"):
            if k in va:
                tb.addAction(va[k])
        for act in list(A.values()) + list(va.values()):
            self.addAction(act)

    def _connect_doc(self):
        self.doc.sig_validated.connect(self._on_validated)
        self.doc.sig_dirty_changed.connect(lambda _d: self._update_title())
        self.doc.sig_path_changed.connect(lambda _p: self._update_title())
        self.doc.sig_graph_event.connect(lambda _e: self._mark_code_dirty())
        self.doc.sig_graph_shown.connect(self._on_graph_shown)

    # ------------------------------------------------------------------ training

    def _build_training(self):
        """The Training dock (live plots and evaluation), tabbed with the Model dock."""
        from desktop.panels.training import TrainingPanel

        self.training = TrainingPanel()
        self.training.set_document(self.doc)
        self.training_dock = self._dock("Training", self.training, Qt.BottomDockWidgetArea)
        self.tabifyDockWidget(self.bottom_dock, self.training_dock)
        self.bottom_dock.raise_()
        self.training.sig_message.connect(self.log_message)
        self.training.sig_training_started.connect(self._show_training)
        self.doc.sig_edit_refused.connect(lambda text: self.statusBar().showMessage(text, 4000))
        bar = self.menuBar()
        help_menu = next((a for a in bar.actions() if a.text().replace("&", "") == "Help"), None)
        menu = QMenu("&Train", self)
        bar.insertMenu(help_menu, menu) if help_menu is not None else bar.addMenu(menu)
        for act in self.training.actions_by_name.values():
            menu.addAction(act)
        menu.addAction(self.training.resume_ckpt_action)
        menu.addSeparator()
        menu.addAction(self.training.recipe_action)
        menu.addAction(self.training_dock.toggleViewAction())

    def _build_explain(self):
        """The Explain dock (SHAP, LIME, Grad-CAM, attention...), tabbed with the Training dock."""
        from desktop.panels.explain import ExplainPanel

        self.explain_panel = ExplainPanel()
        self.explain_panel.set_document(self.doc)
        self.explain_dock = self._dock("Explain", self.explain_panel, Qt.BottomDockWidgetArea)
        self.tabifyDockWidget(self.training_dock, self.explain_dock)
        self.bottom_dock.raise_()
        self.explain_panel.sig_message.connect(self.log_message)
        train_menu = next(a.menu() for a in self.menuBar().actions()
                          if a.text().replace("&", "") == "Train")
        self.actions["explain"] = self._action("&Explain Predictions", self._show_explain,
                                               "Ctrl+Shift+X", "Why the trained model answers as it does")
        train_menu.addAction(self.actions["explain"])
        train_menu.addAction(self.explain_dock.toggleViewAction())
        self.addAction(self.actions["explain"])

    def _show_explain(self):
        self.explain_dock.show()
        self.explain_dock.raise_()
        if self.explain_dock.height() < 380:
            self.resizeDocks([self.explain_dock], [460], Qt.Vertical)

    def _build_deploy(self):
        """The Deploy dock (compress, export, compare), tabbed with the Training dock."""
        from desktop.panels.deploy import DeployPanel

        self.deploy = DeployPanel()
        self.deploy.set_document(self.doc)
        self.deploy_dock = self._dock("Deploy", self.deploy, Qt.BottomDockWidgetArea)
        self.tabifyDockWidget(self.training_dock, self.deploy_dock)
        self.bottom_dock.raise_()
        self.deploy.sig_message.connect(self.log_message)

        def open_compressed(project):
            if self.maybe_save():
                self._load_project(project)

        self.deploy.sig_open_project.connect(open_compressed)
        QApplication.instance().aboutToQuit.connect(self.deploy.shutdown)
        bar = self.menuBar()
        help_menu = next((a for a in bar.actions() if a.text().replace("&", "") == "Help"), None)
        menu = QMenu("&Deploy", self)
        bar.insertMenu(help_menu, menu) if help_menu is not None else bar.addMenu(menu)
        acts = self.deploy.actions_by_name
        for key in ("run", "stop"):
            menu.addAction(acts[key])
        menu.addSeparator()
        for key in ("open_folder", "open_project", "save_project", "hlo"):
            menu.addAction(acts[key])
        menu.addSeparator()
        menu.addAction(self.deploy_dock.toggleViewAction())

    def _build_data(self):
        """The Data dock: choose the project's data and preview it, tabbed with the Model dock."""
        from desktop.panels.data import DataPanel

        self.data_panel = DataPanel()
        self.data_panel.set_document(self.doc)
        self.data_dock = self._dock("Data", self.data_panel, Qt.BottomDockWidgetArea)
        self.tabifyDockWidget(self.bottom_dock, self.data_dock)
        self.bottom_dock.raise_()

    def _build_search(self):
        """The Search dock (a search over the marked ranges, its trials), tabbed with Training."""
        from desktop.panels.search import SearchPanel

        self.search_panel = SearchPanel()
        self.search_panel.set_document(self.doc)
        self.search_dock = self._dock("Search", self.search_panel, Qt.BottomDockWidgetArea)
        self.tabifyDockWidget(self.training_dock, self.search_dock)
        self.bottom_dock.raise_()
        self.search_panel.sig_message.connect(self.log_message)
        self.search_panel.sig_open_project.connect(self.open_unsaved_project)
        self.search_panel.worker.sig_started.connect(self._show_search)
        # A template whose training is a search (nas): its trials and best model go here.
        self.training.sig_training_finished.connect(self._on_training_searched)
        bar = self.menuBar()
        menu = next(a.menu() for a in bar.actions() if a.text().replace("&", "") == "Train")
        menu.addSeparator()
        for act in self.search_panel.actions_by_name.values():
            menu.addAction(act)
        menu.addAction(self.search_dock.toggleViewAction())

    def _show_search(self):
        self.search_dock.show()
        self.search_dock.raise_()
        if self.search_dock.height() < 320:
            self.resizeDocks([self.search_dock], [360], Qt.Vertical)

    def _on_training_searched(self, _payload, _ok):
        result = self.training.worker.result
        if result is not None and getattr(result, "project", None) is not None and result.search:
            self.search_panel.show_search(result.search, result.project)
            self._show_search()
            self.log_message("the search's best model is not the graph on the canvas: "
                             "Search > Open Best as New Project opens it")

    def open_unsaved_project(self, project) -> bool:
        """Open a project made here (a search's best, a transfer) as a new, unsaved document."""
        if not self.maybe_save():
            return False
        self._load_project(project)
        # It exists nowhere on disk yet: unsaved until the user saves it.
        self.doc.undo_stack.resetClean()
        self._update_title()
        return True

    def new_from_trained_model(self):
        """File > New from Trained Model…: a trained project's layers under a new head."""
        from desktop.transfer_dialog import TransferDialog

        dialog = TransferDialog(self.doc.project, self, start_dir=self._last_dir())
        if dialog.exec() and dialog.project is not None:
            if self.open_unsaved_project(dialog.project):
                self._on_message("a new model on the trained layers: train it on its data")

    def _show_training(self):
        self.training_dock.show()
        self.training_dock.raise_()
        if self.training_dock.height() < 380:
            self.resizeDocks([self.training_dock], [420], Qt.Vertical)

    # ------------------------------------------------------------------ slots

    def _on_keras_ready(self, seconds: float):
        self._keras_label.setText("Keras ready")
        self.log_message(f"Keras loaded in {seconds:.1f} s")
        self._refresh_code()

    def _on_message(self, text: str):
        self.statusBar().showMessage(text, 8000)
        self.log_message(text)

    def _on_selection(self, names):
        self.inspector.show_node(names[0] if len(names) == 1 else (None if not names else names))

    def _on_validated(self, report):
        self._params_label.setText(f"{report.params:,} parameters")
        if report.valid:
            self._valid_label.setText("✔ valid")
            self._valid_label.setStyleSheet("color: #2e7d32;")
        else:
            n = len(report.errors())
            self._valid_label.setText(f"✖ {n} problem{'s' if n != 1 else ''}")
            self._valid_label.setStyleSheet("color: #c62828;")
            for node, msg in report.errors()[:20]:
                self.log_message(f"{node}: {msg}" if node else msg)
        self.summary_text.setPlainText(_summary_text(self.doc.graph, report))
        self._mark_code_dirty()

    def _mark_code_dirty(self):
        self._code_dirty = True
        if self.tabs.currentWidget() is self.code_panel:
            QTimer.singleShot(300, self._refresh_code)

    def _refresh_code(self):
        if not self._code_dirty or self.tabs.currentWidget() is not self.code_panel:
            return
        from models import backend

        if not backend.is_loaded():
            self.code_panel.text.setPlainText("# The code appears once Keras has loaded.")
            return
        report = self.doc.report
        if report is None or not report.valid:
            self.code_panel.text.setPlainText(
                "# Fix the problems listed in the Log tab to see the model's code.")
            self._code_dirty = False
            return
        try:
            from models.codegen import generate_code

            self.code_panel.text.setPlainText(generate_code(self.doc.graph))
        except Exception as exc:  # shown, not raised: the editor stays usable
            self.code_panel.text.setPlainText(f"# Could not generate code: {exc}")
        self._code_dirty = False

    def show_graph(self, name: str):
        """Show another of the project's graphs (a pending parameter edit is kept first)."""
        self.inspector.show_node(None)
        self.doc.show_graph(name)

    def _on_graph_shown(self, name: str):
        self._mark_code_dirty()
        QTimer.singleShot(0, self.view.initial_fit)
        self.statusBar().showMessage(f"Showing the graph {name}", 3000)

    def group_selection(self):
        names = self.view.selected_nodes()
        new, reason = self.doc.group(names)
        if new is None:
            self._on_message(f"Cannot group: {reason}")
        else:
            self.view.select([new])
            self._on_message(f"Grouped {len(names)} layers into {new}")

    def log_message(self, text: str):
        self.log.appendPlainText(time.strftime("%H:%M:%S  ") + text)

    def _focus_palette(self):
        self.palette_dock.show()
        if hasattr(self.palette, "focus_search"):
            self.palette.focus_search()

    def _about(self):
        from models import __version__

        QMessageBox.about(self, "About LayerForge",
                          f"LayerForge {__version__}\nA desktop studio for deep learning on Keras 3.")

    def _update_title(self):
        # Qt shows the "[*]" placeholder as "*" while the window is modified.
        self.setWindowTitle(f"{self.doc.title}[*] — LayerForge")
        self.setWindowModified(self.doc.dirty)

    # ------------------------------------------------------------------ files

    def maybe_save(self) -> bool:
        """Ask about unsaved changes; False means the user cancelled."""
        if not self.doc.dirty:
            return True
        answer = QMessageBox.question(
            self, "Unsaved changes",
            f"Save the changes to {self.doc.title} before closing it?",
            QMessageBox.Save | QMessageBox.Discard | QMessageBox.Cancel, QMessageBox.Save)
        if answer == QMessageBox.Cancel:
            return False
        if answer == QMessageBox.Save:
            return self.save()
        return True

    def new_project(self):
        if not self.maybe_save():
            return
        from models.project import new_project

        self.doc.replace_project(new_project())
        self.view.rebuild()

    def new_from_gallery(self):
        if not self.maybe_save():
            return
        from desktop.gallery_dialog import GalleryDialog

        dlg = GalleryDialog(self)
        if dlg.exec() and dlg.selected_slug:
            from models import gallery

            self._load_project(gallery.open_template(dlg.selected_slug))

    def open_dialog(self):
        if not self.maybe_save():
            return
        path, _ = QFileDialog.getOpenFileName(self, "Open model", self._last_dir(), OPEN_FILTER)
        if path:
            self.open_path(path, ask=False)

    def open_path(self, path: str, ask: bool = True) -> bool:
        """Open a project, a Keras file or ``gallery:SLUG``; errors are shown, never raised."""
        if ask and not self.maybe_save():
            return False
        suffix = Path(path).suffix.lower()
        try:
            if path.startswith("gallery:"):
                from models import gallery

                project = gallery.open_template(path.split(":", 1)[1])
            elif suffix == ".lforge":
                project = Project.load(path)
            else:
                self._import_in_background(path)
                return True
        except Exception as exc:
            self._show_error("Could not open the file", str(exc))
            return False
        self._load_project(project)
        self._add_recent(path)
        return True

    def _import_in_background(self, path: str):
        """Import a .keras/.h5/.json off the UI thread (it needs TensorFlow)."""
        from desktop.workers import run_in_thread

        self.statusBar().showMessage(f"Importing {path}…")
        QApplication.setOverrideCursor(Qt.BusyCursor)

        def work():
            from models.cli import load_any

            return load_any(path)

        def done(project):
            QApplication.restoreOverrideCursor()
            self._load_project(project)
            self._add_recent(path)
            self.statusBar().showMessage(f"Imported {path}", 5000)

        def failed(message):
            QApplication.restoreOverrideCursor()
            self.loaded_once = True
            self._show_error("Could not import the model", message)

        run_in_thread(self, work, done, failed)

    def _load_project(self, project: Project):
        from models.layout import layered_layout

        if not project.positions():
            project.positions().update({k: list(v) for k, v in layered_layout(project.graph).items()})
        self.doc.replace_project(project)
        self.view.rebuild()
        QTimer.singleShot(0, self.view.initial_fit)
        self.loaded_once = True
        self._update_title()
        self.log_message(f"opened {project.path or project.meta.get('title', 'project')}")

    def save(self) -> bool:
        if self.doc.path is None:
            return self.save_as()
        return self._save_to(self.doc.path)

    def save_as(self) -> bool:
        start = str(self.doc.path or Path(self._last_dir()) / "untitled.lforge")
        path, _ = QFileDialog.getSaveFileName(self, "Save project", start,
                                              "LayerForge projects (*.lforge)")
        if not path:
            return False
        return self._save_to(Path(path))

    def _save_to(self, path: Path) -> bool:
        try:
            saved = self.doc.save(path)
        except (OSError, ProjectError) as exc:
            self._show_error("Could not save", f"{path}: {exc}")
            return False
        self._add_recent(str(saved))
        self.statusBar().showMessage(f"Saved {saved}", 4000)
        self.discard_recovery()
        return True

    def export_keras(self):
        path, _ = QFileDialog.getSaveFileName(self, "Export Keras model", "model.keras",
                                              "Keras (*.keras);;HDF5 (*.h5);;JSON (*.json)")
        if not path:
            return
        from desktop.workers import run_in_thread

        project = self.doc.project.copy()

        def work():
            from models.build import save_model_file

            save_model_file(project.build(), path)
            return path

        run_in_thread(self, work, lambda p: self.statusBar().showMessage(f"Exported {p}", 5000),
                      lambda m: self._show_error("Could not export", m))

    def _show_error(self, title: str, message: str):
        self.log_message(f"{title}: {message}")
        if QApplication.platformName() == "offscreen":
            self.statusBar().showMessage(message, 10000)
            return
        QMessageBox.warning(self, title, message)

    # ------------------------------------------------------------------ recent

    def _settings(self) -> QSettings:
        return QSettings()

    def _last_dir(self) -> str:
        return str(self._settings().value("last_dir", str(Path.home())))

    def _add_recent(self, path: str):
        if path.startswith("gallery:"):
            return
        path = str(Path(path).resolve())
        s = self._settings()
        items = [p for p in (s.value("recent", []) or []) if p != path]
        s.setValue("recent", [path] + items[: MAX_RECENT - 1])
        s.setValue("last_dir", str(Path(path).parent))
        self._fill_recent()

    def _fill_recent(self):
        self.recent_menu.clear()
        items = self._settings().value("recent", []) or []
        if isinstance(items, str):
            items = [items]
        for p in items:
            act = self.recent_menu.addAction(p)
            act.triggered.connect(lambda _=False, p=p: self.open_path(p))
        self.recent_menu.setEnabled(bool(items))

    # ------------------------------------------------------------------ asking (RAG)

    def _build_ask(self):
        """Train > Ask the Cheatsheet: shown for a retrieval (RAG) project, the only kind it suits."""
        train_menu = next(a.menu() for a in self.menuBar().actions()
                          if a.text().replace("&", "") == "Train")
        self.ask_action = self._action("&Ask the Cheatsheet…", self._ask_cheatsheet)
        train_menu.addAction(self.ask_action)
        train_menu.aboutToShow.connect(self._update_ask_action)
        self._ask_dialog = None

    def _update_ask_action(self):
        from desktop.panels.ask import is_rag_project

        self.ask_action.setVisible(is_rag_project(self.doc.project))

    def _ask_cheatsheet(self):
        from desktop.panels.ask import AskDialog

        if self._ask_dialog is None:
            self._ask_dialog = AskDialog(self.doc, self)
        self._ask_dialog.show()
        self._ask_dialog.raise_()
        self._ask_dialog.activateWindow()

    # ------------------------------------------------------------------ recovery

    def recovery_path(self) -> Path:
        return recovery_dir() / f"{self._recovery_id}.autosave.lforge"

    @Slot()
    def autosave(self) -> Path | None:
        """Write the current state to the recovery folder (never over the user's file)."""
        if not self.doc.dirty:
            return None
        project = self.doc.project.copy()
        project.meta["recovery_of"] = str(self.doc.path) if self.doc.path else None
        target = self.recovery_path()
        try:
            project.weights = dict(self.doc.project.weights)
            text = json.dumps(project.to_dict(), default=str)
            from models.project import _atomic_write_text

            _atomic_write_text(target, text)
        except OSError as exc:
            self.log_message(f"autosave failed: {exc}")
            return None
        return target

    def discard_recovery(self):
        try:
            self.recovery_path().unlink()
        except FileNotFoundError:
            pass

    def offer_recovery(self):
        files = sorted(recovery_dir().glob("*.autosave.lforge"), key=lambda p: p.stat().st_mtime)
        files = [f for f in files if f != self.recovery_path()]
        if not files:
            return
        latest = files[-1]
        answer = QMessageBox.question(
            self, "Restore unsaved work?",
            "LayerForge closed without saving your last changes "
            f"({time.strftime('%Y-%m-%d %H:%M', time.localtime(latest.stat().st_mtime))}). "
            "Restore them?", QMessageBox.Yes | QMessageBox.No, QMessageBox.Yes)
        # Back to the window: without a window manager nothing re-activates it, and its
        # shortcuts (Ctrl+R...) only work in the active window.
        self.activateWindow()
        if answer == QMessageBox.Yes:
            self.restore_recovery(latest)
        else:
            for f in files:
                f.unlink(missing_ok=True)

    def restore_recovery(self, path: Path) -> bool:
        try:
            project = Project.load(path)
        except ProjectError as exc:
            self._show_error("Could not restore", str(exc))
            return False
        original = project.meta.pop("recovery_of", None)
        project.path = Path(original) if original else None
        self._load_project(project)
        # The restored work is unsaved until the user saves it.
        self.doc.undo_stack.resetClean()
        from PySide6.QtGui import QUndoCommand

        marker = QUndoCommand("Restore unsaved work")
        self.doc.undo_stack.push(marker)
        path.unlink(missing_ok=True)
        self._update_title()
        return True

    # ------------------------------------------------------------------ close

    def closeEvent(self, event):
        if not self.maybe_save():
            event.ignore()
            return
        self.training.shutdown()  # stop a run (it keeps its best weights) and join its thread
        self.search_panel.shutdown()
        self.explain_panel.shutdown()
        self.deploy.shutdown()
        self.discard_recovery()
        event.accept()


def _shape_text(shape) -> str:
    if shape and isinstance(shape[0], list):
        return ", ".join(_shape_text(s) for s in shape)
    return "(" + ", ".join("None" if d is None else str(d) for d in shape) + ")"


def _summary_text(graph, report) -> str:
    """A Keras-style summary table from the validation report (no model build needed)."""
    rows = [("Layer (type)", "Output Shape", "Param #", "Connected to")]
    for name in graph.node_order():
        info = report.nodes.get(name)
        node = graph.nodes[name]
        shape = "?" if info is None or info.output_shape is None else _shape_text(info.output_shape)
        params = "" if info is None or info.params is None else f"{info.params:,}"
        srcs = ", ".join(sorted({e.src for e in graph.edges_into(name)})) or "-"
        rows.append((f"{name} ({node.class_name})", shape, params, srcs))
    widths = [max(len(r[i]) for r in rows) + 2 for i in range(4)]
    lines = []
    for i, r in enumerate(rows):
        lines.append("".join(c.ljust(w) for c, w in zip(r, widths)).rstrip())
        if i == 0:
            lines.append("─" * sum(widths))
    lines.append("─" * sum(widths))
    lines.append(f"Total params: {report.params:,}   Trainable: {report.trainable_params:,}   "
                 f"Non-trainable: {report.params - report.trainable_params:,}")
    return "\n".join(lines)


__all__ = ["MainWindow", "recovery_dir"]
