"""An open project in the app: the core project, its undo stack and live validation.

The :class:`Document` is the one adapter between the Qt-free core and the
widgets: it re-emits the graph's plain-Python events as Qt signals, runs the
undo commands, and validates the graph off the UI thread after every edit
(coalescing bursts of edits into one run).
"""
from __future__ import annotations

import functools
from pathlib import Path

from PySide6.QtCore import QObject, QTimer, Signal
from PySide6.QtGui import QUndoStack

from desktop import commands as C
from models.graph import Edge, Graph, GraphError, GraphEvent
from models.project import Project, new_project


class _Call:
    """``emit(*args)`` queues a job for the engine thread (the old signal's spelling)."""

    def __init__(self, engine, kind):
        self._engine, self._kind = engine, kind

    def emit(self, *args):
        self._engine._queue.put((self._kind, args))


class _Engine(QObject):
    """One background thread for all Keras work of the editor (TensorFlow loads once).

    It is a plain Python thread fed by a queue, not a QThread: TensorFlow
    imported and run inside a QThread crashed now and then (seen in
    ``stateless_truncated_normal``), never in a Python thread. Results come
    back as Qt signals, which Qt queues to the receivers' (UI) thread.

    Signals:
        sig_keras_ready(float): Keras is loaded (seconds it took).
        sig_done(int, object): (token, ValidationReport) for a validation request.
    """

    sig_keras_ready = Signal(float)
    sig_done = Signal(int, object)
    _instance = None
    STACK_BYTES = 64 * 1024 * 1024  # deep symbolic traces of big graphs recurse a lot

    def __init__(self):
        super().__init__()
        import queue
        import threading

        self._queue: "queue.Queue" = queue.Queue()
        self._validator = None
        self.ready = False
        self.worker = self  # callers connect to engine().worker.sig_*
        self.sig_request = _Call(self, "validate")
        self.sig_load = _Call(self, "load")
        self.sig_keras_ready.connect(self._on_ready)
        old = threading.stack_size()
        try:
            threading.stack_size(self.STACK_BYTES)
        except (ValueError, RuntimeError):
            pass
        try:
            self.thread = threading.Thread(target=self._loop, name="layerforge-keras", daemon=True)
            self.thread.start()
        finally:
            threading.stack_size(old)

    def _on_ready(self, _seconds):
        self.ready = True

    def _load(self):
        import time

        if self._validator is not None:
            return
        t0 = time.perf_counter()
        from models import backend
        from models.validate import Validator

        backend.load()
        self._validator = Validator()
        self.sig_keras_ready.emit(time.perf_counter() - t0)

    def _loop(self):
        while True:
            kind, args = self._queue.get()
            if kind == "stop":
                return
            try:
                if kind == "load":
                    self._load()
                elif kind == "validate":
                    token, graph = args
                    self._load()
                    self.sig_done.emit(token, self._validator.validate(graph))
            except Exception as exc:  # never let the engine die; say what happened
                import sys

                print(f"layerforge: background check failed: {exc}", file=sys.stderr)

    @classmethod
    def get(cls) -> "_Engine":
        if cls._instance is None:
            cls._instance = _Engine()
        return cls._instance

    @classmethod
    def shutdown(cls, timeout_ms: int = 5000) -> bool:
        """Stop the engine thread; False if it is still busy (e.g. importing TensorFlow)."""
        if cls._instance is None:
            return True
        inst = cls._instance
        inst._queue.put(("stop", ()))
        inst.thread.join(timeout_ms / 1000.0)
        if inst.thread.is_alive():
            return False
        cls._instance = None
        return True


def engine() -> _Engine:
    return _Engine.get()


# --- read-only while training (the training panel's one addition) ------------------------
READ_ONLY_REASON = "training is running; stop it to edit"


def _unless_read_only(refusal):
    """Make an edit method refuse while the document is read-only.

    The method then changes nothing, emits ``sig_edit_refused`` with the reason
    and returns ``refusal(reason)`` (the same kind of value its callers get
    for any other refusal).
    """
    def wrap(method):
        @functools.wraps(method)
        def guarded(self, *args, **kwargs):
            if self._read_only:
                self.sig_edit_refused.emit(READ_ONLY_REASON)
                return refusal(READ_ONLY_REASON)
            return method(self, *args, **kwargs)
        return guarded
    return wrap


_NONE = lambda _reason: None  # noqa: E731
_EMPTY = lambda _reason: []  # noqa: E731
_NOT_OK = lambda reason: (False, reason)  # noqa: E731
_NO_EDGE = lambda reason: (None, reason)  # noqa: E731
# ------------------------------------------------------------------------------------------


class Document(QObject):
    """One open project.

    A project may hold several graphs (a GAN's generator and discriminator...);
    the document shows one at a time (:meth:`show_graph`). :attr:`graph`,
    :attr:`positions`, validation and every edit apply to the graph shown,
    and an edit's undo shows its graph again first.

    Signals:
        sig_graph_event(GraphEvent): after every change to the graph.
        sig_graph_shown(str): another of the project's graphs is shown (its name).
        sig_position_changed(str, float, float): a node moved (view state).
        sig_validated(ValidationReport): fresh shapes and errors.
        sig_dirty_changed(bool), sig_path_changed(object).
    """

    sig_graph_event = Signal(object)
    sig_position_changed = Signal(str, float, float)
    sig_validated = Signal(object)
    sig_dirty_changed = Signal(bool)
    sig_path_changed = Signal(object)
    sig_reset = Signal()
    sig_project_changed = Signal()  # data or recipe changed
    sig_read_only_changed = Signal(bool)  # True while training runs
    sig_edit_refused = Signal(str)  # an edit was refused, with the reason
    sig_graph_shown = Signal(str)  # another graph of the project is shown

    _tokens = 0

    def __init__(self, project: Project | None = None, parent=None):
        super().__init__(parent)
        self.project = project or new_project()
        self._shown = self.project.main_name
        self.undo_stack = QUndoStack(self)
        self.undo_stack.cleanChanged.connect(lambda clean: self.sig_dirty_changed.emit(not clean))
        self._read_only = False
        self.report = None
        self._pending_token = -1
        self._done_token = -1
        self._timer = QTimer(self)
        self._timer.setSingleShot(True)
        self._timer.setInterval(20)
        self._timer.timeout.connect(self._request_validation)
        eng = engine()
        eng.worker.sig_done.connect(self._on_validated)
        self.graph.subscribe(self._on_graph_event)
        self.schedule_validation()

    # ---------------------------------------------------------------- state

    @property
    def graph(self) -> Graph:
        """The graph shown (the main one unless :meth:`show_graph` chose another)."""
        return self.project.graphs[self._shown]

    @property
    def graph_name(self) -> str:
        return self._shown

    @property
    def positions(self) -> dict:
        return self.project.positions(self._shown)

    def show_graph(self, name: str) -> None:
        """Show (validate, edit) the project's graph ``name``.

        Raises:
            KeyError: the project has no graph of that name.
        """
        if name not in self.project.graphs:
            raise KeyError(f"the project has no graph {name!r}; it has {', '.join(self.project.graphs)}")
        if name == self._shown:
            return
        self.graph.unsubscribe(self._on_graph_event)
        self._shown = name
        self.graph.subscribe(self._on_graph_event)
        self.report = None
        self.sig_graph_shown.emit(name)
        self.schedule_validation()

    @property
    def path(self) -> Path | None:
        return self.project.path

    @property
    def dirty(self) -> bool:
        return not self.undo_stack.isClean()

    @property
    def title(self) -> str:
        return self.project.path.name if self.project.path else "Untitled"

    def set_position(self, name: str, pos) -> None:
        x, y = float(pos[0]), float(pos[1])
        self.positions[name] = [x, y]
        self.sig_position_changed.emit(name, x, y)

    def rename_position(self, old: str, new: str) -> None:
        if old in self.positions:
            self.positions[new] = self.positions.pop(old)

    def position(self, name: str) -> tuple[float, float]:
        p = self.positions.get(name)
        return (p[0], p[1]) if p else (0.0, 0.0)

    def replace_project(self, project: Project) -> None:
        """Load another project into this document (clears undo history)."""
        self.graph.unsubscribe(self._on_graph_event)
        self.project = project
        self._shown = project.main_name
        self.graph.subscribe(self._on_graph_event)
        self.undo_stack.clear()
        self.report = None
        self.sig_reset.emit()
        self.sig_path_changed.emit(project.path)
        self.schedule_validation()

    # ---------------------------------------------------------------- events

    def _on_graph_event(self, event: GraphEvent) -> None:
        if event.kind == "node_renamed":
            from models.search import follow_rename

            # Search marks name their layer; they follow it (and follow it back on undo).
            follow_rename(self.project.recipe, event.old_name, event.node)
        self.sig_graph_event.emit(event)
        self.schedule_validation()

    def schedule_validation(self) -> None:
        self._timer.start()

    def _request_validation(self) -> None:
        Document._tokens += 1
        self._pending_token = Document._tokens
        if not self.graph.nodes:
            # Nothing to infer: answer at once, without waiting for Keras to load.
            from models.validate import validate

            self._on_validated(self._pending_token, validate(self.graph))
            return
        engine().sig_request.emit(self._pending_token, self.graph.copy())

    def _on_validated(self, token: int, report) -> None:
        if token != self._pending_token:
            return  # a newer edit is already being checked, or another document's
        self._done_token = token
        self.report = report
        self.sig_validated.emit(report)

    @property
    def validation_pending(self) -> bool:
        """True while an edit has not been checked yet."""
        return self._timer.isActive() or self._done_token != self._pending_token

    @property
    def read_only(self) -> bool:
        """True while the graph must not change (a model is training on it)."""
        return self._read_only

    def set_read_only(self, read_only: bool) -> None:
        """Refuse (or allow again) every edit, undo and redo included."""
        read_only = bool(read_only)
        if read_only == self._read_only:
            return
        self._read_only = read_only
        # Undo/redo actions made by createUndoAction follow these signals: grey them all out.
        stack = self.undo_stack
        stack.canUndoChanged.emit(stack.canUndo() and not read_only)
        stack.canRedoChanged.emit(stack.canRedo() and not read_only)
        self.sig_read_only_changed.emit(read_only)

    # ---------------------------------------------------------------- edits

    @_unless_read_only(_NONE)
    def add_layer(self, class_name: str, pos=(0.0, 0.0)) -> str:
        from models.catalog import make_node

        node = make_node(class_name, self.graph)
        self.undo_stack.push(C.AddNodeCommand(self, node, pos))
        return node.name

    @_unless_read_only(_NONE)
    def remove_nodes(self, names) -> None:
        names = [n for n in names if n in self.graph]
        if names:
            self.undo_stack.push(C.RemoveNodesCommand(self, names))

    @_unless_read_only(_NO_EDGE)
    def can_connect(self, src: str, dst: str, dst_slot: int | None, src_index: int = 0,
                    src_call: int = 0, dst_call: int = 0) -> tuple[Edge | None, str]:
        """Check a connection without making it: ``(edge, "")`` or ``(None, reason)``."""
        probe = self.graph.copy()
        try:
            edge = probe.connect(src, dst, dst_slot, src_call=src_call, src_index=src_index,
                                 dst_call=dst_call)
        except GraphError as exc:
            return None, str(exc)
        reason = self._shape_problem(probe, edge)
        if reason:
            return None, reason
        return edge, ""

    def _shape_problem(self, probe: Graph, edge: Edge) -> str:
        """The new connection's shape error at its target, judged from the last report.

        Only the target layer is traced, so this stays instant on big graphs. If
        Keras is still loading, the worker holds it, or the input shapes are not
        known yet, the connection is accepted and the background check will
        mark any problem in red.
        """
        from models import backend

        if not backend.is_loaded() or self.report is None:
            return ""
        if not backend.keras_lock.acquire(timeout=0.05):
            return ""
        try:
            from models.validate import Validator

            if not hasattr(self, "_probe_validator"):
                self._probe_validator = Validator()
            problem = self._probe_validator.check_node(probe, edge.dst, self.report)
        finally:
            backend.keras_lock.release()
        if not problem or "not connected" in problem:
            return ""
        return f"{edge.dst}: {problem}"

    def connect(self, src: str, dst: str, dst_slot: int | None = None, *, src_index: int = 0,
                src_call: int = 0, dst_call: int = 0) -> tuple[bool, str]:
        edge, reason = self.can_connect(src, dst, dst_slot, src_index, src_call, dst_call)
        if edge is None:
            return False, reason
        self.undo_stack.push(C.ConnectCommand(self, edge))
        return True, ""

    @_unless_read_only(_NONE)
    def disconnect(self, edge: Edge) -> None:
        if edge in self.graph.edges:
            self.undo_stack.push(C.DisconnectCommand(self, edge))

    @_unless_read_only(_NONE)
    def move_nodes(self, old: dict, new: dict) -> None:
        if old != new:
            self.undo_stack.push(C.MoveNodesCommand(self, old, new))

    @_unless_read_only(_NOT_OK)
    def set_params(self, name: str, updates: dict) -> tuple[bool, str]:
        """Change parameters; refuses (with the reason) a value Keras would not accept."""
        node = self.graph.node(name)
        if "name" in updates and updates["name"] != name:
            probe = self.graph.copy()
            try:
                probe.rename_node(name, updates["name"])
            except GraphError as exc:
                return False, str(exc)
        reason = self._config_problem(node, {k: v for k, v in updates.items() if k != "name"})
        if reason:
            return False, reason
        try:
            self.undo_stack.push(C.SetConfigCommand(self, name, updates))
        except GraphError as exc:
            return False, str(exc)
        return True, ""

    @staticmethod
    def _config_problem(node, updates: dict) -> str:
        unknown = [k for k in updates if k not in node.config]
        if unknown:
            return f"{node.class_name} has no parameter {unknown[0]!r}"
        from models import backend

        if not backend.is_loaded() or not updates:
            return ""
        import copy

        from models.graph import _layer_entry

        entry = _layer_entry(node)
        entry["config"].update(copy.deepcopy(updates))
        entry.pop("name", None)
        if not backend.keras_lock.acquire(timeout=0.05):
            return ""  # the background check will report a bad value on the node
        try:
            backend.keras().saving.deserialize_keras_object(entry)
        except Exception as exc:  # Keras's own check of the value
            msg = " ".join(str(exc).split())
            # Keras wraps the real cause: "... could not be deserialized ... Exception
            # encountered: <cause>". The cause is what the user needs.
            if "Exception encountered:" in msg:
                msg = msg.rsplit("Exception encountered:", 1)[1].strip()
            return msg[:300]
        finally:
            backend.keras_lock.release()
        return ""

    @_unless_read_only(_EMPTY)
    def paste(self, part: Graph, positions: dict, offset=(40.0, 40.0), text="Paste") -> list[str]:
        cmd = C.PasteCommand(self, part, positions, offset, text)
        self.undo_stack.push(cmd)
        return list(cmd.mapping.values())

    @_unless_read_only(_EMPTY)
    def duplicate(self, names) -> list[str]:
        names = [n for n in names if n in self.graph]
        if not names:
            return []
        part = self.graph.subset(names)
        return self.paste(part, {n: self.position(n) for n in names}, text="Duplicate")

    @_unless_read_only(_NONE)
    def auto_layout(self) -> None:
        from models.layout import layered_layout

        self.undo_stack.push(C.LayoutCommand(self, layered_layout(self.graph)))

    @_unless_read_only(_NONE)
    def set_outputs(self, ports) -> None:
        self.undo_stack.push(C.SetOutputsCommand(self, ports))

    def _state(self, graph_name: str | None = None) -> dict:
        """The project state an undoable change swaps: one graph (default: the shown one), recipe, data."""
        import copy

        p = self.project
        name = graph_name or self._shown
        return {"graph_name": name, "graph": p.graphs[name].to_dict(),
                "recipe": copy.deepcopy(p.recipe), "dataset": copy.deepcopy(p.dataset)}

    @_unless_read_only(_NONE)
    def group(self, names, group_name: str = "block") -> tuple[str | None, str]:
        """Fold the selected layers into one nested model (one undo step).

        Returns ``(new node name, "")`` or ``(None, reason)``.
        """
        report = self.report
        specs = {}
        for n, info in (report.nodes.items() if report else ()):
            for ci, shapes in enumerate(info.output_shapes):
                for ti, shape in enumerate(shapes):
                    specs[(n, ci, ti)] = (list(shape), info.output_dtypes[ci][ti])
        try:
            grouped = self.graph.grouped(names, group_name, specs)
        except GraphError as exc:
            return None, str(exc)
        if report is None or self.validation_pending:
            return None, "wait a moment until the shapes are known, then group again"
        new = next(n for n in grouped.nodes if n not in self.graph.nodes)
        before = self._state()
        after = dict(before, graph=grouped.to_dict())
        members = [self.position(n) for n in names if n in self.graph]
        cmd = C.ProjectStateCommand(self, f"Group {len(members)} layers", before, after)
        self.undo_stack.push(cmd)
        if members:
            xs, ys = zip(*members)
            self.set_position(new, (sum(xs) / len(xs), sum(ys) / len(ys)))
        return new, ""

    @_unless_read_only(_NONE)
    def set_recipe(self, recipe: dict) -> None:
        """Replace the training recipe (one undo step)."""
        if recipe == self.project.recipe:
            return
        self.undo_stack.push(C.SetRecipeCommand(self, "Edit training recipe", self.project.recipe,
                                                recipe))

    @_unless_read_only(_NONE)
    def set_search_mark(self, node: str | None, param: str, entry: dict | None) -> None:
        """Mark ``node``'s ``param`` (``node=None``: a recipe setting) as a search range, or unmark it.

        One undo step; the node's config is not touched (see :mod:`models.search`).
        """
        from models import search

        recipe = self.project.recipe
        new = search.with_mark(recipe, node, param, entry)
        if new == recipe:
            return
        name = f"{node or 'recipe'}.{param}"
        had = search.find_mark(recipe, node, param) is not None
        text = (f"Search over {name}" if not had else
                f"Stop searching {name}" if entry is None else f"Change the search range of {name}")
        key = f"mark:{name}" if had and entry is not None else None
        self.undo_stack.push(C.SetRecipeCommand(self, text, recipe, new, merge_key=key))

    @_unless_read_only(_NONE)
    def set_search_settings(self, **changes) -> None:
        """Change the search's algorithm, trial budget or objective (one undo step)."""
        from models import search

        recipe = self.project.recipe
        current = search.settings(recipe)
        changes = {k: v for k, v in changes.items() if current.get(k) != v}
        if not changes:
            return
        new = search.with_settings(recipe, **changes)
        self.undo_stack.push(C.SetRecipeCommand(self, "Change the search settings", recipe, new,
                                                merge_key="search:" + ",".join(sorted(changes))))

    def set_dataset(self, spec: dict | None) -> None:
        """Choose the project's data (one undo step)."""
        if spec == self.project.dataset:
            return
        before = self._state(self.project.main_name)
        after = dict(before, dataset=spec)
        self.undo_stack.push(C.ProjectStateCommand(self, "Choose data", before, after))

    @_unless_read_only(_EMPTY)
    def adapt_to(self, dataset) -> list[str]:
        """Adapt input shape and head to ``dataset`` (one undo step); returns what changed."""
        from models.adapt import adapt_to_data

        before = self._state(self.project.main_name)  # the data feeds the main model
        probe = self.project.copy()
        notes = adapt_to_data(probe, dataset)
        if notes:
            after = {"graph_name": before["graph_name"], "graph": probe.graph.to_dict(),
                     "recipe": probe.recipe, "dataset": probe.dataset}
            self.undo_stack.push(C.ProjectStateCommand(self, "Adapt to data", before, after))
        return notes

    # ---------------------------------------------------------------- files

    def save(self, path: str | Path | None = None) -> Path:
        saved = self.project.save(path)
        self.undo_stack.setClean()
        self.sig_path_changed.emit(saved)
        return saved


__all__ = ["Document", "engine"]
