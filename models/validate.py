"""Shape inference and validation of a graph, node by node, never raising.

Each layer is deserialised from its config and called on symbolic Keras
tensors, in topological order of calls. A problem is attached to the node that
has it, in words that say what to change; nodes downstream of a problem say
where their input went wrong. Results are cached per node (its config and the
shapes coming in), so re-validating after one edit recomputes only what the
edit touched.
"""
from __future__ import annotations

import json
import re
from dataclasses import dataclass, field
from typing import Any

from models.graph import SLOT, Graph, GraphError, Node, _layer_entry, map_slots

Shape = tuple


@dataclass
class NodeInfo:
    """What validation learned about one node.

    Attributes:
        output_shapes: per call, the shape of each output tensor (batch as None).
        output_dtypes: the same for dtypes.
        params: the layer's parameter count (None when it could not be built).
        trainable_params: the trainable part of ``params``.
        error: what is wrong with this node and what to change, or None.
        upstream_error: True when the error is only "an input has an error".
    """

    name: str
    class_name: str
    output_shapes: list[list[Shape]] = field(default_factory=list)
    output_dtypes: list[list[str]] = field(default_factory=list)
    params: int | None = None
    trainable_params: int | None = None
    error: str | None = None
    upstream_error: bool = False

    @property
    def output_shape(self) -> Any:
        """The first call's output: a shape, or a list of shapes for several outputs."""
        if not self.output_shapes or not self.output_shapes[0]:
            return None
        first = self.output_shapes[0]
        return list(first[0]) if len(first) == 1 else [list(s) for s in first]

    def to_json(self) -> dict:
        return {
            "name": self.name,
            "type": self.class_name,
            "output_shape": self.output_shape,
            "params": self.params,
            "error": self.error,
        }


@dataclass
class ValidationReport:
    nodes: dict[str, NodeInfo]
    graph_errors: list[str] = field(default_factory=list)

    @property
    def valid(self) -> bool:
        return not self.graph_errors and all(n.error is None for n in self.nodes.values())

    @property
    def params(self) -> int:
        return sum(n.params or 0 for n in self.nodes.values())

    @property
    def trainable_params(self) -> int:
        return sum(n.trainable_params or 0 for n in self.nodes.values())

    def errors(self) -> list[tuple[str | None, str]]:
        """Every problem: ``(node name or None, message)``; root causes first."""
        out: list[tuple[str | None, str]] = [(None, m) for m in self.graph_errors]
        roots = [(n.name, n.error) for n in self.nodes.values() if n.error and not n.upstream_error]
        rest = [(n.name, n.error) for n in self.nodes.values() if n.error and n.upstream_error]
        return out + roots + rest

    def to_json(self) -> dict:
        return {
            "valid": self.valid,
            "params": self.params,
            "errors": [m for m in self.graph_errors],
            "nodes": [n.to_json() for n in self.nodes.values()],
        }


class _Result:
    __slots__ = ("layer", "outputs", "params", "trainable")

    def __init__(self, layer, outputs, params, trainable):
        self.layer, self.outputs, self.params, self.trainable = layer, outputs, params, trainable


class Validator:
    """Validates graphs, keeping a cache so that a small edit revalidates quickly.

    One Validator per open document; it is not thread-safe (use one thread).
    """

    def __init__(self, max_cache: int = 20000):
        self._cache: dict[tuple, _Result] = {}
        self._max_cache = max_cache

    def validate(self, graph: Graph) -> ValidationReport:
        """Infer shapes and check the graph. Never raises."""
        from models import backend

        try:
            if not graph.nodes:
                return self._validate(graph)
            with backend.keras_lock:
                return self._validate(graph)
        except Exception as exc:  # a bug of ours must not take the editor down
            infos = {n: NodeInfo(n, graph.nodes[n].class_name) for n in graph.nodes}
            return ValidationReport(infos, [f"internal error while checking the graph: {exc}"])

    def check_node(self, graph: Graph, name: str, report: ValidationReport) -> str | None:
        """Check one node against the input shapes a previous report found.

        Cheap (one layer is traced, whatever the graph's size), so a UI can
        call it to refuse a connection before making it. Returns the node's
        problem, ``""`` when it is fine, or None when the inputs' shapes are
        not known (nothing can be said yet).
        """
        from models import backend

        node = graph.nodes.get(name)
        if node is None or node.is_input:
            return None
        keras = backend.keras()
        with backend.keras_lock:
            layers: dict = {}
            for call_index, call in enumerate(node.calls):
                edges = {e.dst_slot: e for e in graph.edges_into(name, call_index)}
                if any(i not in edges and not s.optional for i, s in enumerate(call.slots)):
                    return None  # still waiting for inputs: not an error yet
                tensors = {}
                for slot, e in edges.items():
                    info = report.nodes.get(e.src)
                    if (info is None or info.error or len(info.output_shapes) <= e.src_call
                            or len(info.output_shapes[e.src_call]) <= e.src_index):
                        return None
                    shape = info.output_shapes[e.src_call][e.src_index]
                    dtype = info.output_dtypes[e.src_call][e.src_index]
                    tensors[slot] = keras.KerasTensor(shape, dtype=dtype)
                res = self._call(node, call_index, tensors, layers, keras)
                if isinstance(res, str):
                    return res
        return ""

    # ------------------------------------------------------------------ core

    def _validate(self, graph: Graph) -> ValidationReport:
        infos: dict[str, NodeInfo] = {
            name: NodeInfo(name, node.class_name) for name, node in graph.nodes.items()
        }
        report = ValidationReport(infos)
        if not graph.nodes:  # answered without loading Keras
            report.graph_errors.append("the model is empty: add an Input layer from the palette")
            return report
        from models import backend

        keras = backend.keras()
        if not any(n.is_input for n in graph.nodes.values()):
            report.graph_errors.append(
                "the model has no Input layer: add one from the palette and connect it"
            )

        order, cycle = graph._topo_calls()
        for name in set(cycle):
            infos[name].error = (
                "this layer is on a cycle (" + " -> ".join(cycle) + "); "
                "remove one of those connections so data flows one way"
            )
        stuck = {n for n in graph.nodes if n not in {v[0] for v in order}}
        for name in stuck - set(cycle):
            infos[name].error = "this layer depends on a cycle; fix the cycle first"
            infos[name].upstream_error = True

        tensors: dict[tuple[str, int], list] = {}  # (node, call) -> output KerasTensors
        layers: dict[str, Any] = {}  # node -> layer object for multi-call nodes
        for name, call_index in order:
            node = graph.nodes[name]
            info = infos[name]
            if info.error:
                continue
            if node.is_input:
                res = self._input(node, keras)
                if isinstance(res, str):
                    info.error = res
                    continue
                tensors[(name, 0)] = res.outputs
                self._record(info, 0, res)
                continue
            edges = {e.dst_slot: e for e in graph.edges_into(name, call_index)}
            problem = self._check_inputs(graph, node, call_index, edges, tensors, infos)
            if problem:
                info.error, info.upstream_error = problem
                continue
            slot_tensors = {s: tensors[(e.src, e.src_call)][e.src_index] for s, e in edges.items()}
            res = self._call(node, call_index, slot_tensors, layers, keras)
            if isinstance(res, str):
                info.error = res
                continue
            tensors[(name, call_index)] = res.outputs
            self._record(info, call_index, res)

        self._check_outputs(graph, report, tensors)
        if len(self._cache) > self._max_cache:
            self._cache.clear()
        return report

    @staticmethod
    def _record(info: NodeInfo, call_index: int, res: _Result) -> None:
        while len(info.output_shapes) <= call_index:
            info.output_shapes.append([])
            info.output_dtypes.append([])
        info.output_shapes[call_index] = [tuple(t.shape) for t in res.outputs]
        info.output_dtypes[call_index] = [str(t.dtype) for t in res.outputs]
        if call_index == 0 or info.params is None:
            info.params = res.params
            info.trainable_params = res.trainable

    def _check_inputs(self, graph, node: Node, call_index, edges, tensors, infos):
        call = node.calls[call_index]
        for i, slot in enumerate(call.slots):
            if i not in edges and not slot.optional:
                return (
                    f"input {slot.name!r} is not connected: drag a connection from another "
                    "layer's output port to this input",
                    False,
                )
        for i, e in edges.items():
            if i >= len(call.slots):
                return (f"a connection goes to input {i + 1}, but this layer has "
                        f"only {len(call.slots)}; remove it", False)
            src_info = infos.get(e.src)
            if src_info is None:
                return (f"input {call.slots[i].name!r} comes from a missing layer {e.src!r}", False)
            if src_info.error:
                return (f"input {call.slots[i].name!r} comes from {e.src!r}, which has an error; "
                        "fix that layer first", True)
            outs = tensors.get((e.src, e.src_call))
            if outs is None:
                return (f"input {call.slots[i].name!r} comes from {e.src!r}, whose output "
                        "is not known yet", True)
            if e.src_index >= len(outs):
                return (
                    f"input {call.slots[i].name!r} takes output {e.src_index + 1} of {e.src!r}, "
                    f"which has only {len(outs)} output(s); reconnect it to an existing output",
                    False,
                )
        return None

    @staticmethod
    def _node_key(node: Node) -> str:
        entry = _layer_entry(node)
        entry.pop("name", None)
        return json.dumps(entry, sort_keys=True, default=str)

    def _input(self, node: Node, keras):
        key = ("input", self._node_key(node))
        hit = self._cache.get(key)
        if hit is not None:
            return hit
        try:
            layer = keras.saving.deserialize_keras_object(_serialized(node))
            out = layer.output
        except Exception as exc:
            return _explain_config_error(node, exc)
        res = _Result(layer, [out], 0, 0)
        self._cache[key] = res
        return res

    def _call(self, node: Node, call_index: int, slot_tensors: dict, layers: dict, keras):
        sig = tuple(
            (s, tuple(t.shape), str(t.dtype)) for s, t in sorted(slot_tensors.items())
        )
        shared = len(node.calls) > 1
        key = ("call", self._node_key(node), sig, json.dumps(
            [node.calls[call_index].args, node.calls[call_index].kwargs], default=str))
        if not shared:
            hit = self._cache.get(key)
            if hit is not None:
                return hit
        layer = layers.get(node.name) if shared else None
        if layer is None:
            try:
                layer = keras.saving.deserialize_keras_object(_serialized(node))
            except Exception as exc:
                return _explain_config_error(node, exc)
            if shared:
                layers[node.name] = layer
        call = node.calls[call_index]
        args = map_slots(call.args, lambda s: slot_tensors.get(s))
        kwargs = map_slots(call.kwargs, lambda s: slot_tensors.get(s))
        try:
            out = layer(*args, **kwargs)
        except Exception as exc:
            return _explain_call_error(node, slot_tensors, exc)
        flat = keras.tree.flatten(out)
        try:
            params = int(layer.count_params()) if layer.built else 0
            trainable = int(sum(int(_size(w)) for w in layer.trainable_weights))
        except Exception:
            params, trainable = 0, 0
        res = _Result(layer, flat, params, trainable)
        if not shared:
            self._cache[key] = res
        return res

    @staticmethod
    def _check_outputs(graph: Graph, report: ValidationReport, tensors) -> None:
        ports = graph.output_ports()
        if not ports and graph.nodes:
            report.graph_errors.append("the model has no output: every layer feeds another")
        for p in ports:
            if p.node in graph.nodes and graph.nodes[p.node].is_input and len(graph.nodes) > 1:
                # An Input that feeds nothing would silently become an output.
                info = report.nodes[p.node]
                if info.error is None and graph.output_structure is None:
                    info.error = ("this Input is not connected to anything; connect it "
                                  "or delete it")


def _serialized(node: Node) -> dict:
    entry = _layer_entry(node)
    entry.pop("name", None)
    return entry


def _size(weight) -> int:
    n = 1
    for d in weight.shape:
        n *= int(d)
    return n


def validate(graph: Graph) -> ValidationReport:
    """Validate a graph once, without a persistent cache."""
    return Validator().validate(graph)


# ---------------------------------------------------------------------- messages

_ANSI = re.compile(r"\x1b\[[0-9;]*m")


def _clean(exc: Exception) -> str:
    msg = _ANSI.sub("", str(exc)).strip()
    # Keras often appends a long "Arguments received by ..." block; the first
    # paragraph carries the meaning.
    msg = msg.split("\n\nArguments received")[0]
    msg = msg.split("\n\nCall arguments received")[0]
    msg = re.sub(r"\s+", " ", msg)
    if len(msg) > 400:
        msg = msg[:397] + "..."
    return msg or type(exc).__name__


def _fmt_shape(shape) -> str:
    return "(" + ", ".join("None" if d is None else str(d) for d in shape) + ")"


def _explain_config_error(node: Node, exc: Exception) -> str:
    msg = _clean(exc)
    if "Could not locate class" in msg or "Unknown layer" in msg:
        return (f"{node.class_name} is not a layer this installation knows "
                f"({msg}); install the package that defines it or replace the layer")
    return f"a parameter value is not accepted: {msg}. Change it in the inspector"


def _explain_call_error(node: Node, inputs: dict, exc: Exception) -> str:
    msg = _clean(exc)
    shapes = [_fmt_shape(t.shape) for _, t in sorted(inputs.items())]
    got = " and ".join(shapes) if shapes else "no input"
    cls = node.class_name
    m = re.search(r"expected (?:min_)?ndim=(\d+), found ndim=(\d+)", msg)
    if m:
        want, have = int(m.group(1)), int(m.group(2))
        fix = ("add a Flatten or a GlobalPooling layer before it" if have > want
               else "add a Reshape before it (or pick a layer made for this rank)")
        return (f"{cls} expects {want}-D input (batch included) but gets {got}, which is "
                f"{have}-D: {fix}")
    if cls == "Concatenate" or "Concatenate` layer requires" in msg:
        return (f"Concatenate needs inputs whose shapes match on every axis except the "
                f"concatenation axis; it gets {got}. Change the axis or reshape an input")
    if cls in {"Add", "Subtract", "Multiply", "Average", "Maximum", "Minimum"}:
        return (f"{cls} needs inputs of the same shape (or broadcastable); it gets {got}. "
                "Add a Dense or Reshape on one branch so the shapes agree")
    if "Inputs have incompatible shapes" in msg or "incompatible" in msg.lower():
        return f"{cls} cannot take input {got}: {msg}"
    if "negative" in msg.lower() and ("dimension" in msg.lower() or "size" in msg.lower()):
        return (f"{cls} would produce an empty or negative size from {got}: use smaller "
                "kernels, strides or pool sizes, or padding='same'")
    if "should be defined" in msg or "must be defined" in msg:
        return (f"{cls} needs a known size on the last axis but gets {got}: give the Input "
                "a full shape")
    return f"{cls} cannot take input {got}: {msg}"


def describe_errors(report: ValidationReport) -> str:
    """A plain-text list of problems for a terminal or a log."""
    lines = []
    for node, msg in report.errors():
        lines.append(f"{node}: {msg}" if node else msg)
    return "\n".join(lines)


__all__ = [
    "NodeInfo", "ValidationReport", "Validator", "validate", "describe_errors", "GraphError", "SLOT",
]
