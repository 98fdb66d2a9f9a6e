"""The graph a user edits: Keras layers as nodes, tensors as edges. No TensorFlow here.

A :class:`Node` is one Keras layer, stored as its registered class name plus
exactly its ``get_config()``. Each time the layer is called in the model is a
:class:`Call`; a layer shared between several calls has several. A call keeps
the structure of its Keras arguments (``args`` and ``kwargs``) with every input
tensor replaced by a numbered slot, ``{"__slot__": i}``; an :class:`Edge` fills
slot ``i`` of a call with output ``index`` of another node's call. That is the
same information as Keras's functional config (``inbound_nodes`` and
``keras_history``), so converting between the two is exact by construction
(see :func:`Graph.from_keras_config` and :meth:`Graph.to_keras_config`).

Nested ``Functional``/``Sequential`` models are nodes with a :attr:`Node.subgraph`.
View state (positions, collapsed groups) never lives here; see ``models.project``.

The graph emits plain-Python events to its listeners after each change, so a
desktop adapter can re-emit them as Qt signals without the core knowing.
"""
from __future__ import annotations

import copy
import json
import re
from dataclasses import dataclass, field
from typing import Any, Callable, Iterable, Iterator

SLOT = "__slot__"
KERAS_TENSOR = "__keras_tensor__"
MODEL_CLASSES = {"Functional", "Sequential", "Model"}


class GraphError(ValueError):
    """An edit that the graph refuses, with a message for the user."""


# --------------------------------------------------------------------------- data


@dataclass
class Slot:
    """One input port of a call."""

    name: str
    optional: bool = False


@dataclass
class Call:
    """One call of a layer: the Keras argument structure with slots for tensors.

    Attributes:
        args: positional arguments; tensors appear as ``{"__slot__": i}``.
        kwargs: keyword arguments, the same way.
        slots: the input ports, indexed by slot number.
        variadic: when true the first positional argument is a list of tensors
            that grows as connections are added (``Add``, ``Concatenate``...).
    """

    args: list = field(default_factory=list)
    kwargs: dict = field(default_factory=dict)
    slots: list[Slot] = field(default_factory=list)
    variadic: bool = False

    def to_dict(self) -> dict:
        out = {"args": self.args, "kwargs": self.kwargs, "slots": [s.name for s in self.slots]}
        optional = [i for i, s in enumerate(self.slots) if s.optional]
        if optional:
            out["optional"] = optional
        if self.variadic:
            out["variadic"] = True
        return out

    @classmethod
    def from_dict(cls, data: dict) -> "Call":
        optional = set(data.get("optional", []))
        slots = [Slot(n, i in optional) for i, n in enumerate(data.get("slots", []))]
        return cls(
            args=list(data.get("args", [])),
            kwargs=dict(data.get("kwargs", {})),
            slots=slots,
            variadic=bool(data.get("variadic", False)),
        )


@dataclass
class Node:
    """One Keras layer.

    Attributes:
        name: unique within its graph; always equal to ``config["name"]``.
        class_name: the layer's registered class name (``"Dense"``,
            ``"layerforge>Squash"`` is written as class ``Squash`` with
            ``registered_name`` ``"layerforge>Squash"``).
        config: exactly the layer's ``get_config()``. For nested models only
            the keys that are not structure (name, trainable...); the structure
            is :attr:`subgraph`.
        module: the Keras serialization ``module`` field.
        registered_name: the Keras serialization ``registered_name`` field.
        calls: the layer's calls, in Keras node order.
        subgraph: for a nested model, its own graph.
    """

    name: str
    class_name: str
    config: dict
    module: str | None = "keras.layers"
    registered_name: str | None = None
    calls: list[Call] = field(default_factory=list)
    subgraph: "Graph | None" = None

    @property
    def is_input(self) -> bool:
        return self.class_name == "InputLayer"

    @property
    def is_model(self) -> bool:
        return self.subgraph is not None

    @property
    def type_label(self) -> str:
        return self.class_name

    def to_dict(self) -> dict:
        out: dict[str, Any] = {
            "name": self.name,
            "class_name": self.class_name,
            "module": self.module,
            "registered_name": self.registered_name,
            "config": self.config,
            "calls": [c.to_dict() for c in self.calls],
        }
        if self.subgraph is not None:
            out["subgraph"] = self.subgraph.to_dict()
        return out

    @classmethod
    def from_dict(cls, data: dict) -> "Node":
        sub = data.get("subgraph")
        return cls(
            name=data["name"],
            class_name=data["class_name"],
            config=dict(data.get("config", {})),
            module=data.get("module"),
            registered_name=data.get("registered_name"),
            calls=[Call.from_dict(c) for c in data.get("calls", [])],
            subgraph=Graph.from_dict(sub) if sub is not None else None,
        )


@dataclass(frozen=True)
class Port:
    """An output port: output ``index`` of call ``call`` of node ``node``."""

    node: str
    call: int = 0
    index: int = 0

    def to_list(self) -> list:
        return [self.node, self.call, self.index]


@dataclass(frozen=True)
class Edge:
    """A tensor from an output port into slot ``dst_slot`` of call ``dst_call`` of ``dst``."""

    src: str
    src_call: int
    src_index: int
    dst: str
    dst_call: int
    dst_slot: int

    @property
    def source(self) -> Port:
        return Port(self.src, self.src_call, self.src_index)

    def to_list(self) -> list:
        return [self.src, self.src_call, self.src_index, self.dst, self.dst_call, self.dst_slot]

    @classmethod
    def from_list(cls, data: list) -> "Edge":
        if len(data) != 6:
            raise GraphError(f"an edge needs 6 fields, got {data!r}")
        s, sc, si, d, dc, ds = data
        return cls(str(s), int(sc), int(si), str(d), int(dc), int(ds))


@dataclass
class GraphEvent:
    """What changed. ``kind`` is one of: ``node_added``, ``node_removed``,
    ``edge_added``, ``edge_removed``, ``config_changed``, ``node_renamed``,
    ``outputs_changed``, ``reset``."""

    kind: str
    node: str | None = None
    edge: Edge | None = None
    old_name: str | None = None
    keys: tuple = ()


# --------------------------------------------------------------------------- helpers


def iter_slots(structure: Any) -> Iterator[int]:
    """Yield the slot numbers in a call argument structure, in order."""
    if isinstance(structure, dict):
        if set(structure) == {SLOT}:
            yield structure[SLOT]
            return
        for v in structure.values():
            yield from iter_slots(v)
    elif isinstance(structure, (list, tuple)):
        for v in structure:
            yield from iter_slots(v)


def map_slots(structure: Any, fn: Callable[[int], Any]) -> Any:
    """Replace each slot marker with ``fn(slot)``; a ``None`` result drops a list item or kwarg."""
    drop = object()

    def walk(x):
        if isinstance(x, dict):
            if set(x) == {SLOT}:
                r = fn(x[SLOT])
                return drop if r is None else r
            out = {}
            for k, v in x.items():
                r = walk(v)
                if r is not drop:
                    out[k] = r
            return out
        if isinstance(x, (list, tuple)):
            return [r for r in (walk(v) for v in x) if r is not drop]
        return x

    result = walk(structure)
    return None if result is drop else result


_NAME_TAIL = re.compile(r"^(.*?)(?:_(\d+))?$")


def snake_case(class_name: str) -> str:
    """``Conv2DTranspose`` -> ``conv2d_transpose``, as Keras names layers."""
    s = re.sub(r"(.)([A-Z][a-z]+)", r"\1_\2", class_name)
    s = re.sub(r"([a-z])([A-Z])", r"\1_\2", s)
    return s.lower()


# --------------------------------------------------------------------------- graph


class Graph:
    """An editable Keras functional graph.

    Args:
        name: the model's name.
        kind: ``"functional"`` or ``"sequential"``; a sequential graph exports
            as ``keras.Sequential`` while it is still a single chain.
    """

    def __init__(self, name: str = "model", kind: str = "functional"):
        self.name = name
        self.kind = kind
        self.trainable = True
        self.nodes: dict[str, Node] = {}
        self.edges: list[Edge] = []
        # The model's inputs and outputs. ``outputs`` empty means "every output
        # port that feeds nothing"; the structures keep Keras's nesting
        # (a dict of named inputs, a list, or a single tensor).
        self.input_structure: Any = None
        self.output_structure: Any = None
        self.extra_config: dict = {}
        self._listeners: list[Callable[[GraphEvent], None]] = []

    # ----------------------------------------------------------------- events

    def subscribe(self, listener: Callable[[GraphEvent], None]) -> None:
        self._listeners.append(listener)

    def unsubscribe(self, listener: Callable[[GraphEvent], None]) -> None:
        if listener in self._listeners:
            self._listeners.remove(listener)

    def _emit(self, event: GraphEvent) -> None:
        for listener in list(self._listeners):
            listener(event)

    # ----------------------------------------------------------------- queries

    def node(self, name: str) -> Node:
        try:
            return self.nodes[name]
        except KeyError:
            raise GraphError(f"there is no layer named {name!r}") from None

    def __contains__(self, name: str) -> bool:
        return name in self.nodes

    def __len__(self) -> int:
        return len(self.nodes)

    def input_nodes(self) -> list[str]:
        """Input layers in model order."""
        declared = [p[0] for p in _leaves(self.input_structure)] if self.input_structure else []
        rest = [n.name for n in self.nodes.values() if n.is_input and n.name not in declared]
        return [n for n in declared if n in self.nodes] + rest

    def output_ports(self) -> list[Port]:
        """The model's outputs: the declared ones, else every output port that feeds nothing."""
        if self.output_structure is not None:
            return [Port(*p) for p in _leaves(self.output_structure) if p[0] in self.nodes]
        feeding = {(e.src, e.src_call) for e in self.edges}
        ports = []
        for node in self.nodes.values():
            for c in range(max(1, len(node.calls))):
                if (node.name, c) not in feeding:
                    ports.append(Port(node.name, c, 0))
        return ports

    def edges_into(self, name: str, call: int | None = None) -> list[Edge]:
        return [e for e in self.edges if e.dst == name and (call is None or e.dst_call == call)]

    def edges_from(self, name: str) -> list[Edge]:
        return [e for e in self.edges if e.src == name]

    def edge_into_slot(self, name: str, call: int, slot: int) -> Edge | None:
        for e in self.edges:
            if e.dst == name and e.dst_call == call and e.dst_slot == slot:
                return e
        return None

    def predecessors(self, name: str) -> list[str]:
        seen: list[str] = []
        for e in self.edges_into(name):
            if e.src not in seen:
                seen.append(e.src)
        return seen

    def successors(self, name: str) -> list[str]:
        seen: list[str] = []
        for e in self.edges_from(name):
            if e.dst not in seen:
                seen.append(e.dst)
        return seen

    def call_order(self) -> list[tuple[str, int]]:
        """Every (node, call) in a topological order; raises GraphError on a cycle.

        The order is over calls, not layers, so a shared layer whose later call
        depends on its own earlier call is not a cycle.
        """
        order, cycle = self._topo_calls()
        if cycle:
            raise GraphError("the graph has a cycle through: " + " -> ".join(cycle))
        return order

    def _vertices(self) -> list[tuple[str, int]]:
        verts = []
        for node in self.nodes.values():
            for c in range(max(1, len(node.calls))):
                verts.append((node.name, c))
        return verts

    def _topo_calls(self) -> tuple[list[tuple[str, int]], list[str]]:
        verts = self._vertices()
        index = {v: i for i, v in enumerate(verts)}
        indeg = {v: 0 for v in verts}
        succ: dict[tuple[str, int], list[tuple[str, int]]] = {v: [] for v in verts}
        for e in self.edges:
            a, b = (e.src, e.src_call), (e.dst, e.dst_call)
            if a in indeg and b in indeg:
                succ[a].append(b)
                indeg[b] += 1
        # Kahn's algorithm; ready vertices are taken in graph order so the
        # result is stable and follows the order the user built things in.
        import heapq

        ready = [index[v] for v in verts if indeg[v] == 0]
        heapq.heapify(ready)
        order = []
        while ready:
            v = verts[heapq.heappop(ready)]
            order.append(v)
            for w in succ[v]:
                indeg[w] -= 1
                if indeg[w] == 0:
                    heapq.heappush(ready, index[w])
        if len(order) == len(verts):
            return order, []
        stuck = [v for v in verts if indeg[v] > 0]
        return order, self._find_cycle(stuck, succ)

    @staticmethod
    def _find_cycle(stuck, succ) -> list[str]:
        stuck_set = set(stuck)
        start = stuck[0]
        path, seen = [start], {start: 0}
        v = start
        while True:
            nxt = next((w for w in succ[v] if w in stuck_set), None)
            if nxt is None:
                return [n for n, _ in path]
            if nxt in seen:
                cyc = path[seen[nxt]:] + [nxt]
                return [n for n, _ in cyc]
            seen[nxt] = len(path)
            path.append(nxt)
            v = nxt

    def cycle_nodes(self) -> set[str]:
        """Names of nodes that sit on a cycle (empty for a valid DAG)."""
        _, cycle = self._topo_calls()
        return set(cycle)

    def node_order(self) -> list[str]:
        """Nodes in topological order of their first call (cycles broken by graph order)."""
        order, _ = self._topo_calls()
        out: list[str] = []
        for n, _c in order:
            if n not in out:
                out.append(n)
        out += [n for n in self.nodes if n not in out]
        return out

    # ----------------------------------------------------------------- naming

    def unique_name(self, base: str) -> str:
        """A name not used in this graph, in Keras's style (``dense``, ``dense_1``...)."""
        base = re.sub(r"[^0-9A-Za-z_]", "_", base) or "layer"
        if base not in self.nodes:
            return base
        stem = _NAME_TAIL.match(base).group(1) or base
        i = 1
        while f"{stem}_{i}" in self.nodes:
            i += 1
        return f"{stem}_{i}"

    # ----------------------------------------------------------------- edits

    def add_node(self, node: Node) -> Node:
        """Add a node (its name made unique if needed) and return it."""
        if node.name in self.nodes:
            node.name = self.unique_name(node.name)
        node.config["name"] = node.name
        if not node.calls and not node.is_input:
            node.calls.append(Call(args=[{SLOT: 0}], kwargs={}, slots=[Slot("input")]))
        self.nodes[node.name] = node
        self._emit(GraphEvent("node_added", node=node.name))
        return node

    def remove_node(self, name: str) -> tuple[Node, list[Edge]]:
        """Remove a node and every edge that touches it; returns both, for undo."""
        node = self.node(name)
        touching = [e for e in self.edges if e.src == name or e.dst == name]
        for e in touching:
            self.edges.remove(e)
        for e in touching:
            self._emit(GraphEvent("edge_removed", edge=e))
        del self.nodes[name]
        self._drop_from_structures(name)
        self._emit(GraphEvent("node_removed", node=name))
        return node, touching

    def restore_node(self, node: Node, edges: Iterable[Edge] = ()) -> None:
        """Undo of :meth:`remove_node`: put a node and its edges back as they were."""
        if node.name in self.nodes:
            raise GraphError(f"a layer named {node.name!r} already exists")
        self.nodes[node.name] = node
        self._emit(GraphEvent("node_added", node=node.name))
        for e in edges:
            if e.src in self.nodes and e.dst in self.nodes and e not in self.edges:
                self.edges.append(e)
                self._emit(GraphEvent("edge_added", edge=e))

    def rename_node(self, old: str, new: str) -> None:
        node = self.node(old)
        if new == old:
            return
        if not re.fullmatch(r"[A-Za-z_][0-9A-Za-z_.-]*", new or ""):
            raise GraphError(
                f"{new!r} is not a valid layer name: use letters, digits and underscores, "
                "starting with a letter"
            )
        if new in self.nodes:
            raise GraphError(f"a layer named {new!r} already exists; pick another name")
        self.nodes = {(new if k == old else k): v for k, v in self.nodes.items()}
        node.name = new
        node.config["name"] = new
        self.edges = [
            Edge(
                new if e.src == old else e.src, e.src_call, e.src_index,
                new if e.dst == old else e.dst, e.dst_call, e.dst_slot,
            )
            for e in self.edges
        ]
        self.input_structure = _rename_in_structure(self.input_structure, old, new)
        self.output_structure = _rename_in_structure(self.output_structure, old, new)
        self._emit(GraphEvent("node_renamed", node=new, old_name=old))

    def set_config(self, name: str, updates: dict) -> dict:
        """Change config keys of a node; returns the previous values (for undo).

        ``name`` in ``updates`` renames the node. Keys that the layer's config
        does not have are refused: a node's config stays exactly a ``get_config()``.
        """
        node = self.node(name)
        updates = dict(updates)
        previous: dict = {}
        if "name" in updates:
            new_name = updates.pop("name")
            if new_name != name:
                self.rename_node(name, new_name)
                previous["name"] = name
                name = new_name
        unknown = [k for k in updates if k not in node.config]
        if unknown:
            raise GraphError(
                f"{node.class_name} has no parameter {unknown[0]!r}; "
                f"its parameters are: {', '.join(sorted(node.config))}"
            )
        for k, v in updates.items():
            previous[k] = copy.deepcopy(node.config[k])
            node.config[k] = copy.deepcopy(v)
        if updates:
            self._emit(GraphEvent("config_changed", node=name, keys=tuple(updates)))
        return previous

    def connect(
        self,
        src: str,
        dst: str,
        dst_slot: int | None = None,
        *,
        src_call: int = 0,
        src_index: int = 0,
        dst_call: int = 0,
    ) -> Edge:
        """Connect an output port to an input slot.

        ``dst_slot=None`` takes the first free slot (growing a variadic input such
        as ``Add`` or ``Concatenate``). Refuses, with the reason, a connection that
        would make a cycle, fill an occupied slot or reach a missing port.
        """
        s = self.node(src)
        d = self.node(dst)
        if d.is_input:
            raise GraphError(f"{dst!r} is an Input layer: it takes no incoming connection")
        if src_call >= max(1, len(s.calls)):
            raise GraphError(f"{src!r} has no call {src_call}")
        if dst_call >= len(d.calls):
            raise GraphError(f"{dst!r} has no call {dst_call}")
        call = d.calls[dst_call]
        if dst_slot is None:
            dst_slot = self._free_slot(d, dst_call)
        if dst_slot == len(call.slots) and call.variadic:
            self._grow_variadic(call)
        if not 0 <= dst_slot < len(call.slots):
            raise GraphError(
                f"{dst!r} has no input number {dst_slot + 1}; it takes {len(call.slots)}"
            )
        if self.edge_into_slot(dst, dst_call, dst_slot) is not None:
            raise GraphError(
                f"input {call.slots[dst_slot].name!r} of {dst!r} is already connected; "
                "remove that connection first"
            )
        edge = Edge(src, src_call, src_index, dst, dst_call, dst_slot)
        self.edges.append(edge)
        _, cycle = self._topo_calls()
        if cycle:
            self.edges.remove(edge)
            raise GraphError(
                f"connecting {src!r} to {dst!r} would make a cycle ({' -> '.join(cycle)}); "
                "a layer's output cannot flow back into itself"
            )
        self._emit(GraphEvent("edge_added", edge=edge))
        return edge

    def disconnect(self, edge: Edge) -> None:
        if edge not in self.edges:
            raise GraphError("that connection does not exist")
        self.edges.remove(edge)
        self._emit(GraphEvent("edge_removed", edge=edge))

    def add_edge(self, edge: Edge) -> None:
        """Re-add an exact edge (undo of :meth:`disconnect`)."""
        self.connect(
            edge.src, edge.dst, edge.dst_slot,
            src_call=edge.src_call, src_index=edge.src_index, dst_call=edge.dst_call,
        )

    def set_outputs(self, ports: list[Port] | None) -> Any:
        """Declare the model outputs (``None``: every port that feeds nothing). Returns the old value."""
        old = self.output_structure
        if ports is None:
            self.output_structure = None
        else:
            for p in ports:
                self.node(p.node)
            self.output_structure = [p.to_list() for p in ports]
        self._emit(GraphEvent("outputs_changed"))
        return old

    def restore_outputs(self, structure: Any) -> None:
        self.output_structure = copy.deepcopy(structure)
        self._emit(GraphEvent("outputs_changed"))

    def replace_with(self, other: "Graph") -> None:
        """Take over another graph's content in place (keeping listeners)."""
        self.name, self.kind, self.trainable = other.name, other.kind, other.trainable
        self.nodes, self.edges = other.nodes, other.edges
        self.input_structure, self.output_structure = other.input_structure, other.output_structure
        self.extra_config = other.extra_config
        self._emit(GraphEvent("reset"))

    # ----------------------------------------------------------------- slot plumbing

    def _free_slot(self, node: Node, call_index: int) -> int:
        call = node.calls[call_index]
        used = {e.dst_slot for e in self.edges_into(node.name, call_index)}
        for i, slot in enumerate(call.slots):
            if i not in used:
                return i
        if call.variadic:
            return len(call.slots)
        raise GraphError(
            f"every input of {node.name!r} is already connected; remove a connection first"
        )

    @staticmethod
    def _grow_variadic(call: Call) -> None:
        new = len(call.slots)
        call.slots.append(Slot(f"input_{new}"))
        # The variadic list is the first positional argument.
        if call.args and isinstance(call.args[0], list):
            call.args[0].append({SLOT: new})
        else:
            call.args.insert(0, [{SLOT: new}])

    def _drop_from_structures(self, name: str) -> None:
        self.input_structure = _drop_in_structure(self.input_structure, name)
        self.output_structure = _drop_in_structure(self.output_structure, name)

    # ----------------------------------------------------------------- copies

    def copy(self) -> "Graph":
        return Graph.from_dict(self.to_dict())

    def subset(self, names: Iterable[str]) -> "Graph":
        """A new graph with the given nodes and the edges among them (for copy and paste)."""
        names = [n for n in self.nodes if n in set(names)]
        g = Graph(self.name)
        for n in names:
            g.nodes[n] = Node.from_dict(copy.deepcopy(self.nodes[n].to_dict()))
        g.edges = [e for e in self.edges if e.src in g.nodes and e.dst in g.nodes]
        return g

    def merge(self, other: "Graph") -> dict[str, str]:
        """Paste another graph's nodes and edges in, renaming clashes; returns old->new names."""
        mapping: dict[str, str] = {}
        for name, node in other.nodes.items():
            fresh = Node.from_dict(copy.deepcopy(node.to_dict()))
            fresh.name = self.unique_name(name)
            fresh.config["name"] = fresh.name
            mapping[name] = fresh.name
            self.nodes[fresh.name] = fresh
            self._emit(GraphEvent("node_added", node=fresh.name))
        for e in other.edges:
            edge = Edge(mapping[e.src], e.src_call, e.src_index, mapping[e.dst], e.dst_call, e.dst_slot)
            self.edges.append(edge)
            self._emit(GraphEvent("edge_added", edge=edge))
        return mapping

    def grouped(self, names: Iterable[str], group_name: str,
                input_specs: dict[tuple[str, int, int], tuple[list, str]]) -> "Graph":
        """A copy of this graph with ``names`` folded into one nested Functional model.

        Args:
            names: the layers to group.
            group_name: the new nested model's name.
            input_specs: ``(src, call, index) -> (shape, dtype)`` for every tensor
                that enters the group from outside (batch axis included), e.g.
                from a validation report.

        Raises:
            GraphError: when the selection cannot form a sub-model (an Input
                layer in it, a shared layer called from both sides, nothing
                flowing out, an unknown input shape).
        """
        chosen = [n for n in self.nodes if n in set(names)]
        if not chosen:
            raise GraphError("select the layers to group first")
        for n in chosen:
            node = self.nodes[n]
            if node.is_input:
                raise GraphError(f"{n!r} is an Input layer; group the layers after it")
            if len(node.calls) != 1:
                raise GraphError(f"{n!r} is shared by several calls; it cannot move into a group")
        inside = set(chosen)
        g = self.copy()
        group_name = g.unique_name(group_name)
        entering = [e for e in g.edges if e.dst in inside and e.src not in inside]
        leaving = [e for e in g.edges if e.src in inside and e.dst not in inside]
        outputs_decl = [Port(*p) for p in _leaves(g.output_structure)] if g.output_structure else []
        out_ports: list[tuple[str, int, int]] = []
        for e in leaving:
            key = (e.src, e.src_call, e.src_index)
            if key not in out_ports:
                out_ports.append(key)
        for p in (outputs_decl or g.output_ports()):
            key = (p.node, p.call, p.index)
            if p.node in inside and key not in out_ports:
                out_ports.append(key)
        if not out_ports:
            raise GraphError("nothing flows out of the selection; include the layer that feeds the rest")
        in_ports: list[tuple[str, int, int]] = []
        for e in entering:
            key = (e.src, e.src_call, e.src_index)
            if key not in in_ports:
                in_ports.append(key)
        if not in_ports:
            raise GraphError("nothing flows into the selection; it needs at least one input")
        sub = Graph(group_name)
        input_names = {}
        for i, key in enumerate(in_ports):
            if key not in input_specs:
                raise GraphError(f"the shape coming from {key[0]!r} is not known yet; "
                                 "fix the model's errors first")
            shape, dtype = input_specs[key]
            iname = sub.unique_name(f"{group_name}_input_{i}" if len(in_ports) > 1 else f"{group_name}_input")
            sub.nodes[iname] = Node(iname, "InputLayer", {
                "batch_shape": list(shape), "dtype": dtype, "sparse": False, "ragged": False,
                "name": iname, "optional": False}, module="keras.layers")
            input_names[key] = iname
        for n in chosen:
            sub.nodes[n] = Node.from_dict(copy.deepcopy(g.nodes[n].to_dict()))
        for e in g.edges:
            if e.dst in inside:
                if e.src in inside:
                    sub.edges.append(e)
                else:
                    sub.edges.append(Edge(input_names[(e.src, e.src_call, e.src_index)], 0, 0,
                                          e.dst, e.dst_call, e.dst_slot))
        sub.input_structure = [[input_names[k], 0, 0] for k in in_ports]
        sub.output_structure = [list(k) for k in out_ports]
        if len(in_ports) == 1:
            args: list = [{SLOT: 0}]
        else:
            args = [[{SLOT: i} for i in range(len(in_ports))]]
        group = Node(group_name, "Functional", {"name": group_name, "trainable": True},
                     module="keras.src.models.functional", registered_name="Functional",
                     calls=[Call(args=args, kwargs={},
                                 slots=[Slot(f"input_{i}" if i else "input") for i in range(len(in_ports))])],
                     subgraph=sub)
        for n in chosen:
            del g.nodes[n]
        g.edges = [e for e in g.edges if e.src not in inside and e.dst not in inside]
        g.nodes[group_name] = group
        for i, key in enumerate(in_ports):
            g.edges.append(Edge(key[0], key[1], key[2], group_name, 0, i))
        for e in leaving:
            j = out_ports.index((e.src, e.src_call, e.src_index))
            g.edges.append(Edge(group_name, 0, j, e.dst, e.dst_call, e.dst_slot))
        if g.output_structure is not None:
            def remap(leaf):
                key = tuple(leaf)
                if leaf[0] in inside:
                    return [group_name, 0, out_ports.index(key)]
                return leaf
            g.output_structure = _map_leaves(g.output_structure, remap)
        return g

    # ----------------------------------------------------------------- (de)serialisation

    def to_dict(self) -> dict:
        out = {
            "name": self.name,
            "kind": self.kind,
            "trainable": self.trainable,
            "nodes": [n.to_dict() for n in self.nodes.values()],
            "edges": [e.to_list() for e in self.edges],
            "inputs": self.input_structure,
            "outputs": self.output_structure,
        }
        if self.extra_config:
            out["extra_config"] = self.extra_config
        return out

    @classmethod
    def from_dict(cls, data: dict) -> "Graph":
        if not isinstance(data, dict) or "nodes" not in data:
            raise GraphError("the graph is missing its 'nodes' list")
        g = cls(data.get("name", "model"), data.get("kind", "functional"))
        g.trainable = data.get("trainable", True)
        for nd in data["nodes"]:
            node = Node.from_dict(nd)
            if node.name in g.nodes:
                raise GraphError(f"two layers are both named {node.name!r}")
            g.nodes[node.name] = node
        for ed in data.get("edges", []):
            e = Edge.from_list(ed)
            for end in (e.src, e.dst):
                if end not in g.nodes:
                    raise GraphError(f"a connection refers to a missing layer {end!r}")
            g.edges.append(e)
        g.input_structure = data.get("inputs")
        g.output_structure = data.get("outputs")
        g.extra_config = data.get("extra_config", {})
        return g

    # ----------------------------------------------------------------- Keras configs

    @classmethod
    def from_keras_config(cls, config: dict, class_name: str = "Functional") -> "Graph":
        """A graph from a Keras model config (``model.get_config()``).

        Args:
            config: the model's config: a functional one (``layers``,
                ``input_layers``, ``output_layers``) or a Sequential one.
            class_name: ``"Functional"``/``"Model"`` or ``"Sequential"``.
        """
        if class_name == "Sequential":
            return _graph_from_sequential(config)
        return _graph_from_functional(config)

    def to_keras_config(self) -> tuple[str, dict]:
        """The Keras model config for this graph: ``(class_name, config)``.

        Raises GraphError when the graph cannot form a model (unconnected
        required inputs, a cycle, no inputs); :mod:`models.validate` explains
        such problems per node without raising.
        """
        if self.kind == "sequential" and self.is_chain():
            return "Sequential", _sequential_config(self)
        return "Functional", _functional_config(self)

    def is_chain(self) -> bool:
        """True when the graph is one Input followed by single-input, single-call layers."""
        inputs = [n for n in self.nodes.values() if n.is_input]
        if len(inputs) != 1:
            return False
        order = self.node_order()
        if order[0] != inputs[0].name:
            return False
        for prev, cur in zip(order, order[1:]):
            node = self.nodes[cur]
            if node.is_input or len(node.calls) != 1:
                return False
            ins = self.edges_into(cur)
            if len(ins) != 1 or ins[0].src != prev or ins[0].src_index != 0:
                return False
            call = node.calls[0]
            if call.kwargs or call.args != [{SLOT: 0}]:
                return False
        for name in order[:-1]:
            if len(self.edges_from(name)) != 1:
                return False
        return True

    def fingerprint(self) -> str:
        """A stable text of the model part (for caches and change detection)."""
        d = self.to_dict()
        return json.dumps(d, sort_keys=True, default=str)


# --------------------------------------------------------------------------- structure helpers


def _is_leaf(x: Any) -> bool:
    return (
        isinstance(x, (list, tuple))
        and len(x) == 3
        and isinstance(x[0], str)
        and isinstance(x[1], int)
        and isinstance(x[2], int)
    )


def _leaves(structure: Any) -> list:
    if structure is None:
        return []
    if _is_leaf(structure):
        return [list(structure)]
    if isinstance(structure, dict):
        return [leaf for v in structure.values() for leaf in _leaves(v)]
    if isinstance(structure, (list, tuple)):
        return [leaf for v in structure for leaf in _leaves(v)]
    return []


def _map_leaves(structure: Any, fn) -> Any:
    if structure is None:
        return None
    if _is_leaf(structure):
        return fn(list(structure))
    if isinstance(structure, dict):
        return {k: _map_leaves(v, fn) for k, v in structure.items()}
    if isinstance(structure, (list, tuple)):
        return [_map_leaves(v, fn) for v in structure]
    return structure


def _rename_in_structure(structure: Any, old: str, new: str) -> Any:
    if structure is None:
        return None
    if _is_leaf(structure):
        return [new if structure[0] == old else structure[0], structure[1], structure[2]]
    if isinstance(structure, dict):
        return {k: _rename_in_structure(v, old, new) for k, v in structure.items()}
    if isinstance(structure, (list, tuple)):
        return [_rename_in_structure(v, old, new) for v in structure]
    return structure


def _drop_in_structure(structure: Any, name: str) -> Any:
    if structure is None:
        return None
    if _is_leaf(structure):
        return None if structure[0] == name else structure
    if isinstance(structure, dict):
        out = {k: _drop_in_structure(v, name) for k, v in structure.items()}
        return {k: v for k, v in out.items() if v is not None}
    if isinstance(structure, (list, tuple)):
        out = [_drop_in_structure(v, name) for v in structure]
        return [v for v in out if v is not None]
    return structure


# --------------------------------------------------------------------------- from Keras


def _node_from_layer_entry(entry: dict) -> Node:
    class_name = entry["class_name"]
    config = copy.deepcopy(entry.get("config", {}))
    sub = None
    if class_name in MODEL_CLASSES or "layers" in config and isinstance(config.get("layers"), list):
        if class_name in MODEL_CLASSES:
            sub = Graph.from_keras_config(config, class_name)
            config = {k: v for k, v in config.items() if k in ("name", "trainable")}
    name = entry.get("name") or config.get("name")
    config["name"] = name
    return Node(
        name=name,
        class_name=class_name,
        config=config,
        module=entry.get("module"),
        registered_name=entry.get("registered_name"),
        subgraph=sub,
    )


def _graph_from_functional(config: dict) -> Graph:
    g = Graph(config.get("name", "model"), "functional")
    g.trainable = config.get("trainable", True)
    g.extra_config = {
        k: v for k, v in config.items()
        if k not in ("name", "trainable", "layers", "input_layers", "output_layers")
    }
    for entry in config.get("layers", []):
        node = _node_from_layer_entry(entry)
        g.nodes[node.name] = node
        for call_index, inbound in enumerate(entry.get("inbound_nodes", [])):
            call, edges = _call_from_inbound(inbound, node.name, call_index)
            node.calls.append(call)
            g.edges.extend(edges)
    # Keras counts a nested Functional's calls from 1 in input_layers and
    # output_layers (its own construction node is number 0) but from 0 inside
    # call arguments. The graph numbers calls from 0 everywhere.
    shift = {n.name: -1 for n in g.nodes.values() if _counts_own_node(n)}
    g.input_structure = _shift_calls(copy.deepcopy(config.get("input_layers")), shift)
    g.output_structure = _shift_calls(copy.deepcopy(config.get("output_layers")), shift)
    return g


def _counts_own_node(node: Node) -> bool:
    return node.subgraph is not None and node.class_name != "Sequential"


def _shift_calls(structure: Any, shift: dict[str, int]) -> Any:
    if structure is None or not shift:
        return structure
    if _is_leaf(structure):
        name, call, index = structure
        return [name, call + shift.get(name, 0), index]
    if isinstance(structure, dict):
        return {k: _shift_calls(v, shift) for k, v in structure.items()}
    if isinstance(structure, (list, tuple)):
        return [_shift_calls(v, shift) for v in structure]
    return structure


def _call_from_inbound(inbound: Any, dst: str, call_index: int) -> tuple[Call, list[Edge]]:
    if isinstance(inbound, list):  # Keras 2 style: [[name, node, index, kwargs], ...]
        inbound = _legacy_inbound(inbound)
    slots: list[Slot] = []
    edges: list[Edge] = []

    def convert(x):
        if isinstance(x, dict):
            if x.get("class_name") == KERAS_TENSOR:
                hist = x["config"]["keras_history"]
                slot = len(slots)
                slots.append(Slot(f"input_{slot}" if slot else "input"))
                edges.append(Edge(hist[0], int(hist[1]), int(hist[2]), dst, call_index, slot))
                return {SLOT: slot}
            return {k: convert(v) for k, v in x.items()}
        if isinstance(x, (list, tuple)):
            return [convert(v) for v in x]
        return x

    args = convert(inbound.get("args", []))
    kwargs = convert(inbound.get("kwargs", {}))
    # Name the slots after their keyword where they have one (query, value, key...).
    for k, v in kwargs.items():
        if isinstance(v, dict) and set(v) == {SLOT}:
            slots[v[SLOT]].name = k
    variadic = bool(args) and isinstance(args[0], list) and all(
        isinstance(a, dict) and set(a) == {SLOT} for a in args[0]
    )
    return Call(args=args, kwargs=kwargs, slots=slots, variadic=variadic), edges


def _legacy_inbound(data: list) -> dict:
    tensors = []
    kwargs: dict = {}
    for item in data:
        name, node_index, tensor_index = item[0], item[1], item[2]
        if len(item) > 3 and isinstance(item[3], dict):
            kwargs.update(item[3])
        tensors.append(
            {"class_name": KERAS_TENSOR, "config": {"keras_history": [name, node_index, tensor_index]}}
        )
    args = [tensors[0]] if len(tensors) == 1 else [tensors]
    return {"args": args, "kwargs": kwargs}


def _graph_from_sequential(config: dict) -> Graph:
    g = Graph(config.get("name", "sequential"), "sequential")
    g.trainable = config.get("trainable", True)
    g.extra_config = {
        k: v for k, v in config.items()
        if k not in ("name", "trainable", "layers", "build_input_shape")
    }
    entries = list(config.get("layers", []))
    prev: str | None = None
    if not entries or entries[0].get("class_name") != "InputLayer":
        shape = config.get("build_input_shape")
        if shape is None:
            raise GraphError(
                "this Sequential model was never built, so its input shape is unknown; "
                "build it (call it once or give it an Input) before importing"
            )
        dtype = "float32"
        entries.insert(0, {
            "module": "keras.layers", "class_name": "InputLayer", "registered_name": None,
            "config": {"batch_shape": list(shape), "dtype": dtype, "sparse": False,
                       "ragged": False, "name": "input_layer", "optional": False},
        })
    for entry in entries:
        entry = dict(entry)
        entry.setdefault("name", entry.get("config", {}).get("name"))
        node = _node_from_layer_entry(entry)
        if node.name in g.nodes:
            node.name = g.unique_name(node.name)
            node.config["name"] = node.name
        g.nodes[node.name] = node
        if not node.is_input:
            node.calls.append(Call(args=[{SLOT: 0}], kwargs={}, slots=[Slot("input")]))
            if prev is not None:
                g.edges.append(Edge(prev, 0, 0, node.name, 0, 0))
        prev = node.name
    return g


# --------------------------------------------------------------------------- to Keras


def _layer_entry(node: Node) -> dict:
    if node.subgraph is not None:
        cls_name, sub_config = node.subgraph.to_keras_config()
        config = {**sub_config, **{k: v for k, v in node.config.items() if k != "name"}}
        config["name"] = node.name
        module = node.module or "keras.src.models.functional"
        if cls_name == "Sequential" and node.class_name == "Sequential":
            module = node.module or "keras.src.models.sequential"
        class_name = node.class_name if node.class_name in MODEL_CLASSES else cls_name
        if class_name == "Sequential" and cls_name != "Sequential":
            class_name, module = "Functional", "keras.src.models.functional"
        return {"module": module, "class_name": class_name, "config": config,
                "registered_name": node.registered_name, "name": node.name}
    return {
        "module": node.module,
        "class_name": node.class_name,
        "config": copy.deepcopy(node.config),
        "registered_name": node.registered_name,
        "name": node.name,
    }


def _functional_config(g: Graph) -> dict:
    order = g.call_order()
    if not any(n.is_input for n in g.nodes.values()):
        raise GraphError("the model has no Input layer; add one and connect it")
    # Keras numbers a layer's calls in the order they happen; keep ours in that order.
    renumber = _call_renumbering(g, order)
    entries: dict[str, dict] = {}
    for name, call_index in order:
        node = g.nodes[name]
        if name not in entries:
            entry = _layer_entry(node)
            entry["inbound_nodes"] = []
            entries[name] = entry
        if node.is_input:
            continue
        call = node.calls[call_index]
        edges = {e.dst_slot: e for e in g.edges_into(name, call_index)}
        missing = [call.slots[i].name for i in range(len(call.slots))
                   if i not in edges and not call.slots[i].optional]
        if missing:
            raise GraphError(f"input {missing[0]!r} of layer {name!r} is not connected")

        def tensor(slot: int, edges=edges):
            e = edges.get(slot)
            if e is None:
                return None
            # Keras only uses shape and dtype for a placeholder that is
            # replaced by the real tensor its history points at.
            return {"class_name": KERAS_TENSOR, "config": {
                "shape": [None], "dtype": "float32",
                "keras_history": [e.src, renumber[(e.src, e.src_call)], e.src_index]}}

        entries[name]["inbound_nodes"].append({
            "args": map_slots(call.args, tensor),
            "kwargs": map_slots(call.kwargs, tensor),
        })
    layers = list(entries.values())
    inputs = g.input_structure
    if inputs is None:
        ins = [[n, 0, 0] for n in g.input_nodes()]
        inputs = ins[0] if len(ins) == 1 else ins
    outputs = g.output_structure
    if outputs is None:
        outs = [[p.node, renumber.get((p.node, p.call), p.call), p.index] for p in g.output_ports()]
        outputs = outs[0] if len(outs) == 1 else outs
    else:
        outputs = _renumber_structure(outputs, renumber)
    shift = {n.name: 1 for n in g.nodes.values() if _counts_own_node(n)}
    inputs = _shift_calls(copy.deepcopy(inputs), shift)
    outputs = _shift_calls(outputs, shift)
    return {
        "name": g.name,
        "trainable": g.trainable,
        **copy.deepcopy(g.extra_config),
        "layers": layers,
        "input_layers": copy.deepcopy(inputs),
        "output_layers": outputs,
    }


def _call_renumbering(g: Graph, order: list[tuple[str, int]]) -> dict[tuple[str, int], int]:
    seen: dict[str, int] = {}
    out = {}
    for name, c in order:
        out[(name, c)] = seen.get(name, 0)
        seen[name] = out[(name, c)] + 1
    return out


def _renumber_structure(structure: Any, renumber: dict) -> Any:
    if _is_leaf(structure):
        return [structure[0], renumber.get((structure[0], structure[1]), structure[1]), structure[2]]
    if isinstance(structure, dict):
        return {k: _renumber_structure(v, renumber) for k, v in structure.items()}
    if isinstance(structure, (list, tuple)):
        return [_renumber_structure(v, renumber) for v in structure]
    return structure


def _sequential_config(g: Graph) -> dict:
    layers = []
    for name in g.node_order():
        entry = _layer_entry(g.nodes[name])
        entry.pop("name", None)
        layers.append(entry)
    return {"name": g.name, "trainable": g.trainable, **copy.deepcopy(g.extra_config),
            "layers": layers}
