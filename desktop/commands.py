"""Every edit as a QUndoCommand that calls the core graph API.

The commands change the core (:class:`models.graph.Graph` and the project's
view state) and nothing else; the canvas redraws from the graph's events. One
source of truth, nothing to keep in sync.

A project may hold several graphs; each command belongs to the graph shown
when it was made (:class:`GraphCommand`), and its undo and redo show that
graph first, so undo never changes a graph out of sight.
"""
from __future__ import annotations

import copy

from PySide6.QtGui import QUndoCommand

from models.graph import Edge, Graph, GraphError, Node


class GraphCommand(QUndoCommand):
    """An edit of one of the project's graphs: undo and redo show that graph, then call
    :meth:`apply` / :meth:`revert`."""

    def __init__(self, doc, text: str, graph_name: str | None = None):
        super().__init__(text)
        self.doc = doc
        self.graph_name = graph_name or doc.graph_name

    def redo(self):
        self.doc.show_graph(self.graph_name)
        self.apply()

    def undo(self):
        self.doc.show_graph(self.graph_name)
        self.revert()

    def apply(self):
        raise NotImplementedError

    def revert(self):
        raise NotImplementedError


class AddNodeCommand(GraphCommand):
    def __init__(self, doc, node: Node, pos: tuple[float, float]):
        super().__init__(doc, f"Add {node.class_name}")
        self.node, self.pos = node, pos

    def apply(self):
        self.doc.graph.add_node(self.node)
        self.doc.set_position(self.node.name, self.pos)

    def revert(self):
        self.doc.graph.remove_node(self.node.name)
        self.doc.positions.pop(self.node.name, None)


class RemoveNodesCommand(GraphCommand):
    def __init__(self, doc, names: list[str]):
        super().__init__(doc, "Delete " + (names[0] if len(names) == 1 else f"{len(names)} layers"))
        self.names = list(names)
        self.removed: list[tuple[Node, list[Edge], list | None]] = []
        self.outputs = None

    def apply(self):
        self.removed = []
        self.outputs = copy.deepcopy(self.doc.graph.output_structure)
        for name in self.names:
            if name in self.doc.graph:
                pos = self.doc.positions.pop(name, None)
                node, edges = self.doc.graph.remove_node(name)
                self.removed.append((node, edges, pos))

    def revert(self):
        # Nodes first, then every edge (an edge may join two removed nodes).
        for node, _edges, pos in reversed(self.removed):
            self.doc.graph.restore_node(node)
            if pos is not None:
                self.doc.set_position(node.name, pos)
        for _node, edges, _pos in self.removed:
            for e in edges:
                if e not in self.doc.graph.edges:
                    self.doc.graph.add_edge(e)
        self.doc.graph.restore_outputs(self.outputs)


class ConnectCommand(GraphCommand):
    def __init__(self, doc, edge: Edge):
        super().__init__(doc, f"Connect {edge.src} to {edge.dst}")
        self.edge = edge
        self.slots_before = None

    def apply(self):
        call = self.doc.graph.node(self.edge.dst).calls[self.edge.dst_call]
        self.slots_before = (copy.deepcopy(call.args), copy.deepcopy(call.slots))
        self.doc.graph.add_edge(self.edge)

    def revert(self):
        self.doc.graph.disconnect(self.edge)
        call = self.doc.graph.node(self.edge.dst).calls[self.edge.dst_call]
        call.args, call.slots = self.slots_before


class DisconnectCommand(GraphCommand):
    def __init__(self, doc, edge: Edge):
        super().__init__(doc, f"Disconnect {edge.src} from {edge.dst}")
        self.edge = edge

    def apply(self):
        self.doc.graph.disconnect(self.edge)

    def revert(self):
        self.doc.graph.add_edge(self.edge)


class MoveNodesCommand(GraphCommand):
    """Moves are view state; consecutive drags of the same nodes merge into one step."""

    ID = 1001

    def __init__(self, doc, old: dict, new: dict):
        super().__init__(doc, "Move " + (next(iter(new)) if len(new) == 1 else f"{len(new)} layers"))
        self.old, self.new = dict(old), dict(new)

    def id(self):
        return self.ID

    def mergeWith(self, other):
        if not isinstance(other, MoveNodesCommand) or set(other.new) != set(self.new) \
                or other.graph_name != self.graph_name:
            return False
        self.new = dict(other.new)
        return True

    def apply(self):
        for name, pos in self.new.items():
            self.doc.set_position(name, pos)

    def revert(self):
        for name, pos in self.old.items():
            self.doc.set_position(name, pos)


class SetConfigCommand(GraphCommand):
    """A parameter change; quick repeats on the same parameter (spin-box arrows) merge."""

    ID = 1002
    MERGE_SECONDS = 1.5

    def __init__(self, doc, name: str, updates: dict):
        import time

        keys = ", ".join(updates)
        super().__init__(doc, f"Set {keys} of {name}")
        self.name, self.updates = name, dict(updates)
        self.previous: dict = {}
        self.new_name = updates.get("name", name)
        self.when = time.monotonic()

    def id(self):
        return self.ID

    def mergeWith(self, other):
        if (not isinstance(other, SetConfigCommand) or other.name != self.name
                or set(other.updates) != set(self.updates) or "name" in self.updates
                or other.graph_name != self.graph_name
                or other.when - self.when > self.MERGE_SECONDS):
            return False
        # Keep our "previous" (the value before the burst); take the newest value.
        self.updates = dict(other.updates)
        self.when = other.when
        return True

    def apply(self):
        self.previous = self.doc.graph.set_config(self.name, self.updates)
        if self.new_name != self.name:
            self.doc.rename_position(self.name, self.new_name)

    def revert(self):
        prev = dict(self.previous)
        if "name" in prev:
            self.doc.graph.rename_node(self.new_name, prev.pop("name"))
            self.doc.rename_position(self.new_name, self.name)
        if prev:
            self.doc.graph.set_config(self.name, prev)


class PasteCommand(GraphCommand):
    """Insert a sub-graph (paste, duplicate), offset from where it was copied."""

    def __init__(self, doc, part: Graph, positions: dict, offset=(40.0, 40.0), text="Paste"):
        super().__init__(doc, text)
        self.part, self.positions, self.offset = part, positions, offset
        self.mapping: dict[str, str] = {}

    def apply(self):
        self.mapping = self.doc.graph.merge(self.part)
        for old, new in self.mapping.items():
            x, y = self.positions.get(old, (0.0, 0.0))
            self.doc.set_position(new, (x + self.offset[0], y + self.offset[1]))

    def revert(self):
        for new in self.mapping.values():
            self.doc.graph.remove_node(new)
            self.doc.positions.pop(new, None)


class SetOutputsCommand(GraphCommand):
    def __init__(self, doc, ports):
        super().__init__(doc, "Set model outputs")
        self.ports, self.old = ports, None

    def apply(self):
        self.old = self.doc.graph.set_outputs(self.ports)

    def revert(self):
        self.doc.graph.restore_outputs(self.old)


class LayoutCommand(GraphCommand):
    def __init__(self, doc, new_positions: dict):
        super().__init__(doc, "Automatic layout")
        self.new = dict(new_positions)
        self.old = {k: tuple(v) for k, v in doc.positions.items()}

    def apply(self):
        for name, pos in self.new.items():
            self.doc.set_position(name, pos)

    def revert(self):
        for name, pos in self.old.items():
            self.doc.set_position(name, pos)


__all__ = [
    "GraphCommand", "AddNodeCommand", "RemoveNodesCommand", "ConnectCommand", "DisconnectCommand",
    "MoveNodesCommand", "SetConfigCommand", "PasteCommand", "SetOutputsCommand",
    "LayoutCommand", "ProjectStateCommand", "GraphError",
]


class ProjectStateCommand(GraphCommand):
    """A change to one graph, the recipe and the data together (set data, adapt to data, group).

    Keeps the before and after as plain dicts (``graph_name`` says which
    graph); the graph is swapped in place (``Graph.replace_with``) so
    listeners stay attached.
    """

    def __init__(self, doc, text: str, before: dict, after: dict):
        super().__init__(doc, text, before.get("graph_name"))
        self.before, self.after = before, after

    def _set(self, state: dict):
        project = self.doc.project
        project.graphs[self.graph_name].replace_with(Graph.from_dict(copy.deepcopy(state["graph"])))
        project.recipe = copy.deepcopy(state["recipe"])
        project.dataset = copy.deepcopy(state["dataset"])
        self.doc.sig_project_changed.emit()

    def apply(self):
        self._set(self.after)

    def revert(self):
        self._set(self.before)


class SetRecipeCommand(QUndoCommand):
    """A change to the recipe alone (search marks and settings); the graph is not touched.

    Quick repeats with the same ``merge_key`` (spin-box arrows on a range's
    ends) merge into one step, as parameter edits do.
    """

    ID = 1003
    MERGE_SECONDS = 1.5

    def __init__(self, doc, text: str, before: dict, after: dict, merge_key: str | None = None):
        import time

        super().__init__(text)
        self.doc, self.before, self.after = doc, copy.deepcopy(before), copy.deepcopy(after)
        self.merge_key, self.when = merge_key, time.monotonic()

    def id(self):
        return self.ID if self.merge_key else -1

    def mergeWith(self, other):
        if (not isinstance(other, SetRecipeCommand) or other.merge_key != self.merge_key
                or other.when - self.when > self.MERGE_SECONDS):
            return False
        self.after, self.when = copy.deepcopy(other.after), other.when
        return True

    def _apply(self, recipe: dict):
        self.doc.project.recipe = copy.deepcopy(recipe)
        self.doc.sig_project_changed.emit()

    def redo(self):
        self._apply(self.after)

    def undo(self):
        self._apply(self.before)
