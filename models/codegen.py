"""Python code for a graph: a module that rebuilds the model with the Keras API.

:func:`generate_code` writes a self-contained module whose ``build_model()``
returns the model, written the way a person would: one statement per layer
call, each layer constructed with only the parameters that differ from that
layer's defaults, nested models as their own builder functions.

Exactness comes first. Defaults are found by asking Keras (a fresh instance of
the layer's class), and every constructor expression is evaluated once while
generating and its ``get_config()`` compared with the node's; when the readable
form would not rebuild the same layer, the code falls back to
``Layer.from_config({...})``, which always does.
"""
from __future__ import annotations

import builtins
import inspect
import json
import keyword
import math
import re
from dataclasses import dataclass, field
from typing import Any, Callable

from models import backend
from models.graph import SLOT, Graph, GraphError, Node, snake_case

WIDTH = 88
_PAD = "    "

# Keras's call machinery fills these in by itself, so writing them adds nothing.
_AUTO_TRAINING = "training"
# Layers whose output carries a Keras mask that later layers receive implicitly.
_MASK_SOURCES = {"Embedding": "mask_zero", "Masking": None}
_OBJECT_MODULES = ("keras.initializers", "keras.regularizers", "keras.constraints")
_MISSING = object()
_SERIAL_KEYS = {"module", "class_name", "config", "registered_name", "build_config",
                "compile_config", "shared_object_id"}


def generate_code(graph: Graph, *, model_name: str | None = None) -> str:
    """Write a runnable Python module that builds ``graph`` as a Keras model.

    Args:
        graph: the graph to write out. It must form a model (connected inputs,
            no cycle); otherwise :class:`~models.graph.GraphError` is raised.
        model_name: the name the generated code gives the model; defaults to
            ``graph.name``.

    Returns:
        The module's source text. It defines ``build_model()`` and prints the
        model's summary when run as a script.
    """
    name = model_name or graph.name
    source = _Generator().module(graph, name)
    compile(source, f"{name}.py", "exec")  # a bug here must not reach the user's file
    return source


# --------------------------------------------------------------------------- expressions
#
# A tiny expression tree, so long calls can be wrapped the way Black wraps them.


@dataclass
class _Atom:
    text: str


@dataclass
class _Bracket:
    """``open item, item close``; each item is ``(prefix, expr)`` (``"name="``, ``'"k": '``)."""

    open: str
    close: str
    items: list
    one_tuple: bool = False  # ``(x,)``
    explode: bool = False  # always one item per line (layer lists)


@dataclass
class _Call:
    func: Any
    args: _Bracket = field(default_factory=lambda: _Bracket("(", ")", []))


def _call(func: str | Any, args=(), kwargs=()) -> _Call:
    func = _Atom(func) if isinstance(func, str) else func
    items = [("", a) for a in args] + [(f"{k}=", v) for k, v in kwargs]
    return _Call(func, _Bracket("(", ")", items))


def _flat(e) -> str:
    if isinstance(e, _Atom):
        return e.text
    if isinstance(e, _Call):
        return _flat(e.func) + _flat(e.args)
    inner = ", ".join(p + _flat(x) for p, x in e.items)
    if e.one_tuple and len(e.items) == 1:
        inner += ","
    return e.open + inner + e.close


def _must_break(e) -> bool:
    if isinstance(e, _Atom):
        return False
    if isinstance(e, _Call):
        return _must_break(e.func) or _must_break(e.args)
    return (e.explode and len(e.items) > 1) or any(_must_break(x) for _, x in e.items)


def _render(e, indent: int, col: int) -> str:
    """Lay ``e`` out from column ``col``; wrapped lines are indented from ``indent``."""
    flat = _flat(e)
    if isinstance(e, _Atom) or (col + len(flat) <= WIDTH and not _must_break(e)):
        return flat
    if isinstance(e, _Bracket):
        return _render_bracket(e, indent)
    head = _flat(e.func)
    if isinstance(e.func, _Call) and (col + len(head) + 1 > WIDTH or _must_break(e.func)):
        # ``Layer(...)(x)`` with a long constructor: wrap the constructor and
        # keep the layer's inputs after its closing bracket.
        head = _render(e.func, indent, col + 1)  # + 1: the "(" that follows it
        col = len(head.rsplit("\n", 1)[-1]) if "\n" in head else col + len(head)
    else:
        col += len(head)
    if _fits_after(e.args, col):
        return head + _flat(e.args)
    return head + _render_bracket(e.args, indent)


def _fits_after(b: _Bracket, col: int) -> bool:
    return col + len(_flat(b)) <= WIDTH and not _must_break(b)


def _render_bracket(b: _Bracket, indent: int) -> str:
    if not b.items:
        return b.open + b.close
    inner_indent = indent + len(_PAD)
    pad, inner_pad = " " * indent, " " * inner_indent
    inner = _flat(b)[len(b.open):len(_flat(b)) - len(b.close)]
    if not b.explode and not _must_break(b) and inner_indent + len(inner) <= WIDTH:
        return f"{b.open}\n{inner_pad}{inner}\n{pad}{b.close}"
    lines = [b.open]
    for prefix, x in b.items:
        text = _render(x, inner_indent, inner_indent + len(prefix) + 1)
        lines.append(f"{inner_pad}{prefix}{text},")
    lines.append(f"{pad}{b.close}")
    return "\n".join(lines)


def _statement(target: str, e, indent: int) -> str:
    """``target = e`` (or ``return e`` when ``target`` is ``"return"``), wrapped."""
    lead = "return " if target == "return" else f"{target} = "
    return " " * indent + lead + _render(e, indent, indent + len(lead))


# --------------------------------------------------------------------------- values


def _literal(v: Any) -> str:
    if isinstance(v, bool) or v is None:
        return repr(v)
    if isinstance(v, int):
        return repr(v)
    if isinstance(v, float):
        if math.isnan(v):
            return 'float("nan")'
        if math.isinf(v):
            return 'float("inf")' if v > 0 else '-float("inf")'
        return repr(v)
    if isinstance(v, str):
        return json.dumps(v, ensure_ascii=False)
    if hasattr(v, "item") and callable(v.item):  # a NumPy scalar
        return _literal(v.item())
    return repr(v)


def _norm(v: Any) -> Any:
    """A config value in one canonical form for comparing: lists for tuples, and
    scalars tagged with their type (``2`` and ``2.0`` rebuild different configs)."""
    if isinstance(v, dict):
        # A nested layer's build state is not configuration: it comes back
        # when the rebuilt model is called.
        state = ("build_config", "compile_config") if _is_serialized(v) else ()
        return {str(k): _norm(x) for k, x in v.items() if k not in state}
    if isinstance(v, (list, tuple)):
        return [_norm(x) for x in v]
    if hasattr(v, "item") and callable(v.item) and not isinstance(v, (str, bytes)):
        try:
            v = v.item()
        except (TypeError, ValueError):
            return v
    if isinstance(v, (bool, int, float)):
        return (type(v).__name__, repr(v))
    return v


def _is_serialized(v: Any) -> bool:
    return (isinstance(v, dict) and "class_name" in v and "config" in v
            and set(v) <= _SERIAL_KEYS)


def _plain_value(v: Any):
    """``v`` as a literal expression, serialised objects left as dicts."""
    if isinstance(v, dict):
        return _Bracket("{", "}", [(_literal(k) + ": ", _plain_value(x)) for k, x in v.items()])
    if isinstance(v, tuple):
        return _Bracket("(", ")", [("", _plain_value(x)) for x in v], one_tuple=True)
    if isinstance(v, list):
        return _Bracket("[", "]", [("", _plain_value(x)) for x in v])
    return _Atom(_literal(v))


# --------------------------------------------------------------------------- names


def _identifier(name: str) -> str:
    ident = re.sub(r"\W", "_", name, flags=re.ASCII).lower() or "layer"
    if ident[0].isdigit():
        ident = "layer_" + ident
    if keyword.iskeyword(ident) or hasattr(builtins, ident):
        ident += "_"
    return ident


class _Names:
    """Unique identifiers within one scope."""

    def __init__(self, taken: set[str]):
        self.taken = set(taken)

    def claim(self, base: str) -> str:
        ident = _identifier(base)
        name, i = ident, 2
        while name in self.taken:
            name = f"{ident}_{i}"
            i += 1
        self.taken.add(name)
        return name


def _is_port(x: Any) -> bool:
    return (isinstance(x, (list, tuple)) and len(x) == 3 and isinstance(x[0], str)
            and isinstance(x[1], int) and isinstance(x[2], int))


def _structure_expr(structure: Any, leaf: Callable[[list], Any]):
    if _is_port(structure):
        return leaf(list(structure))
    if isinstance(structure, dict):
        return _Bracket("{", "}", [(_literal(k) + ": ", _structure_expr(v, leaf))
                                   for k, v in structure.items()])
    return _Bracket("[", "]", [("", _structure_expr(v, leaf)) for v in structure])


def _flat_paths(structure: Any, path: str = "") -> list[str]:
    """Access paths of a structure's leaves in Keras's flattening order (dict keys sorted)."""
    if _is_port(structure):
        return [path]
    if isinstance(structure, dict):
        return [p for k in sorted(structure)
                for p in _flat_paths(structure[k], f"{path}[{_literal(k)}]")]
    return [p for i, v in enumerate(structure) for p in _flat_paths(v, f"{path}[{i}]")]


def _inputs_structure(g: Graph) -> Any:
    if g.input_structure is not None:
        return g.input_structure
    ins = [[n, 0, 0] for n in g.input_nodes()]
    return ins[0] if len(ins) == 1 else ins


def _outputs_structure(g: Graph) -> Any:
    if g.output_structure is not None:
        return g.output_structure
    outs = [p.to_list() for p in g.output_ports()]
    return outs[0] if len(outs) == 1 else outs


def _is_op(node: Node) -> bool:
    """A ``keras.ops`` operation recorded in the graph (not a layer)."""
    return (node.module or "").startswith("keras.src.ops") and node.subgraph is None


def _is_sequential(g: Graph) -> bool:
    return g.kind == "sequential" and g.is_chain()


# --------------------------------------------------------------------------- generator


class _Generator:
    def __init__(self):
        self.keras = backend.keras()
        import models.layers as lf

        self.lf = lf
        self.ns = {"keras": self.keras, "layers": self.keras.layers, "lf": lf}
        self.uses_layers = False
        self.uses_lf = False
        self.functions: list[str] = []
        self.module_names = {"keras", "layers", "lf", "build_model"}
        self._builder_names: dict[int, str] = {}
        self._frozen = False
        self._default_cache: dict[tuple, dict | None] = {}

    # ----------------------------------------------------------------- module

    def module(self, graph: Graph, name: str) -> str:
        style = "keras.Sequential" if _is_sequential(graph) else "the Keras functional API"
        main = self.builder(graph, "build_model", name, top=True)
        head = [
            '"""The ' + _doc_text(name) + " model, built with " + style + ".",
            "",
            "Generated by LayerForge from the model's graph. Run this file to print",
            "the model's summary, or import it and call ``build_model()``.",
            '"""',
            "import keras",
        ]
        if self.uses_layers:
            head.append("from keras import layers")
        if self.uses_lf:
            head += ["", "# LayerForge's own layers; importing them registers them with Keras.",
                     "from models import layers as lf"]
        parts = ["\n".join(head)] + self.functions + [main]
        parts.append('if __name__ == "__main__":\n    build_model().summary()')
        return "\n\n\n".join(parts) + "\n"

    def builder(self, graph: Graph, func: str, name: str, *, top: bool = False) -> str:
        """The source of a function that builds ``graph``."""
        kind = "model" if top else "nested model"
        lines = [f"def {func}():", f'{_PAD}"""Build the {_doc_text(name)} {kind}."""']
        names = _Names(self.module_names)
        # ``model.trainable = False`` freezes every layer, so the layers need not say it.
        frozen, self._frozen = self._frozen, not graph.trainable
        try:
            if _is_sequential(graph):
                expr = self.sequential_expr(graph, name)
            else:
                body, expr = self.functional_body(graph, name, names)
                lines += body
        finally:
            self._frozen = frozen
        if graph.trainable:
            lines.append(_statement("return", expr, 4))
        else:
            var = names.claim("model")
            lines.append(_statement(var, expr, 4))
            lines.append(f"{_PAD}{var}.trainable = False")
            lines.append(f"{_PAD}return {var}")
        return "\n".join(lines)

    def _builder_name(self, node: Node) -> str:
        if id(node) not in self._builder_names:
            func = _Names(self.module_names).claim(f"build_{node.name}")
            self.module_names.add(func)
            self._builder_names[id(node)] = func
        return self._builder_names[id(node)]

    def nested_builder(self, node: Node) -> str:
        func = self._builder_name(node)
        self.functions.append(self.builder(node.subgraph, func, node.name))
        return func

    # ----------------------------------------------------------------- functional

    def functional_body(self, g: Graph, name: str, names: _Names) -> tuple[list[str], Any]:
        order = g.call_order()
        if not any(n.is_input for n in g.nodes.values()):
            raise GraphError(f"the model {name!r} has no Input layer; add one and connect it")
        # Builder functions first, so no local variable hides one.
        for node in g.nodes.values():
            if node.is_model and not _is_sequential(node.subgraph):
                self._builder_name(node)
        names.taken |= self.module_names
        natural = {n: names.claim(n) for n in g.nodes}
        into: dict[tuple[str, int], list] = {}
        for e in g.edges:
            into.setdefault((e.dst, e.dst_call), []).append(e)
        dropped = self._implicit_masks(g, order, into)
        skipped = self._mask_only_ops(g, order, dropped)
        outputs = _outputs_structure(g)
        used_index = {(p[0], p[1]) for p in _leaves(outputs) if p[2] > 0}
        used_index |= {(e.src, e.src_call) for e in g.edges if e.src_index > 0}
        out_var: dict[tuple[str, int], str] = {}
        access: dict[tuple[str, int], list[str] | None] = {}
        made: dict[str, int] = {}
        lines: list[str] = []

        def tensor(src: str, call: int, index: int) -> _Atom:
            paths = access[(src, call)]
            if paths is None:
                return _Atom(out_var[(src, call)])
            suffix = paths[index] if index < len(paths) else f"[{index}]"
            return _Atom(out_var[(src, call)] + suffix)

        for node_name, c in order:
            node = g.nodes[node_name]
            if node.is_input:
                out_var[(node_name, 0)] = natural[node_name]
                access[(node_name, 0)] = None
                lines.append(_statement(natural[node_name], self.input_expr(node), 4))
                continue
            if node_name in skipped:
                continue
            call = node.calls[c]
            arguments = self.call_arguments(node, c, into.get((node_name, c), []), dropped, tensor)
            if node.is_model or len(node.calls) > 1:
                obj = natural[node_name]
                if node_name not in made:
                    lines += self.make_object(node, obj)
                    made[node_name] = 0
                made[node_name] += 1
                suffix = "_out" if len(node.calls) == 1 else f"_out{made[node_name]}"
                target = names.claim(obj + suffix)
                callee = _Atom(obj)
            else:
                target = natural[node_name]
                callee = None if _is_op(node) else self.layer_expr(node)
            if callee is None:
                expr = self.op_expr(node, call, arguments)
            else:
                expr = _Call(callee, arguments)
            lines.append(_statement(target, expr, 4))
            out_var[(node_name, c)] = target
            access[(node_name, c)] = self._output_access(node, call, (node_name, c) in used_index)

        model_args = [
            ("inputs", _structure_expr(_inputs_structure(g), lambda p: _Atom(out_var[(p[0], 0)]))),
            ("outputs", _structure_expr(outputs, lambda p: tensor(*p))),
            ("name", _Atom(_literal(name))),
        ]
        return lines, _call("keras.Model", kwargs=model_args)

    def make_object(self, node: Node, var: str) -> list[str]:
        """Statements that create a layer or nested model called more than once by name."""
        if node.is_model:
            sub = node.subgraph
            freeze = not node.config.get("trainable", sub.trainable)
            if _is_sequential(sub):
                freeze = freeze or not sub.trainable
                frozen, self._frozen = self._frozen, self._frozen or freeze
                try:
                    expr = self.sequential_expr(sub, node.name)
                finally:
                    self._frozen = frozen
            else:
                expr = _call(self.nested_builder(node))
                freeze = freeze and sub.trainable  # else its builder has frozen it
            lines = [_statement(var, expr, 4)]
            if freeze and not self._frozen:
                lines.append(f"{_PAD}{var}.trainable = False")
            return lines
        expr = self.op_callee(node) if _is_op(node) else self.layer_expr(node)
        return [_statement(var, expr, 4)]

    def call_arguments(self, node: Node, c: int, incoming: list, dropped: dict,
                       tensor) -> _Bracket:
        """The arguments of call ``c``: its Keras structure with tensors for slots."""
        call = node.calls[c]
        edges = {e.dst_slot: e for e in incoming}
        drop = object()

        def convert(x):
            if isinstance(x, dict) and set(x) == {SLOT}:
                e = edges.get(x[SLOT])
                if e is None:
                    slot = call.slots[x[SLOT]] if x[SLOT] < len(call.slots) else None
                    if slot is not None and slot.optional:
                        return drop
                    label = slot.name if slot is not None else x[SLOT]
                    raise GraphError(f"input {label!r} of layer {node.name!r} is not connected")
                return tensor(e.src, e.src_call, e.src_index)
            if _is_serialized(x):
                return self.value_expr(x)
            if isinstance(x, dict):
                items = [(_literal(k) + ": ", convert(v)) for k, v in x.items()]
                return _Bracket("{", "}", [(k, v) for k, v in items if v is not drop])
            if isinstance(x, (list, tuple)):
                items = [("", convert(v)) for v in x]
                return _Bracket("[", "]", [(k, v) for k, v in items if v is not drop])
            return self.value_expr(x)

        items = []
        for a in call.args:
            v = convert(a)
            if v is not drop:
                items.append(("", v))
        extra = []
        for k, v in call.kwargs.items():
            if (c, k) in dropped.get(node.name, ()):
                continue
            if _is_mask_kwarg(k) and v is None:
                continue
            if k == _AUTO_TRAINING and v is False and not node.is_model:
                continue
            value = convert(v)
            if value is drop:
                continue
            if k.isidentifier() and not keyword.iskeyword(k):
                items.append((f"{k}=", value))
            else:
                extra.append((_literal(k) + ": ", value))
        if extra:
            items.append(("**", _Bracket("{", "}", extra)))
        return _Bracket("(", ")", items)

    def _output_access(self, node: Node, call, indexed: bool) -> list[str] | None:
        """How to reach output ``i`` of a call: ``None`` for a single tensor, else suffixes."""
        if node.is_model:
            structure = _outputs_structure(node.subgraph)
            return None if _is_port(structure) else _flat_paths(structure)
        if (indexed or node.config.get("return_state") is True
                or call.kwargs.get("return_attention_scores") is True):
            return []  # ``[i]``
        return None

    # ----------------------------------------------------------------- masks

    def _implicit_masks(self, g: Graph, order, into: dict) -> dict[str, set]:
        """Mask arguments Keras passes by itself: ``{node: {(call, kwarg)}}``.

        An ``Embedding(mask_zero=True)`` or ``Masking`` output carries a mask
        that Keras computes with ``keras.ops`` and hands to the next layers as
        ``mask=``; the config records those. Rebuilding the layers recreates
        them, so the code leaves them out, as a person would.
        """
        # Nodes downstream of a mask source (the source included), in one pass.
        masked: set[str] = set()
        for name, c in order:
            node = g.nodes[name]
            key = _MASK_SOURCES.get(node.class_name, False)
            if key is None or (key and node.config.get(key)):
                masked.add(name)
            if any(e.src in masked for e in into.get((name, c), ())):
                masked.add(name)
        out: dict[str, set] = {}
        for node in g.nodes.values():
            for c, call in enumerate(node.calls):
                for k, v in call.kwargs.items():
                    # ``attention_mask`` is never filled in by Keras: it is the user's.
                    if k == "attention_mask" or not _is_mask_kwarg(k):
                        continue
                    if not (isinstance(v, dict) and set(v) == {SLOT}):
                        continue
                    edges = into.get((node.name, c), [])
                    mask = [e for e in edges if e.dst_slot == v[SLOT]]
                    if not mask or not _is_op(g.nodes[mask[0].src]):
                        continue
                    if any(e.src in masked for e in edges if e.dst_slot != v[SLOT]):
                        out.setdefault(node.name, set()).add((c, k))
        return out

    @staticmethod
    def _mask_only_ops(g: Graph, order, dropped: dict[str, set]) -> set[str]:
        """Operations that only compute implicit masks; the code does not write them."""
        outputs = {p[0] for p in _leaves(_outputs_structure(g))}
        skipped: set[str] = set()
        for name, _c in reversed(order):
            node = g.nodes[name]
            if not _is_op(node) or name in outputs or name in skipped:
                continue
            uses = g.edges_from(name)
            if uses and all(
                e.dst in skipped or _edge_is_dropped(g, e, dropped) for e in uses
            ):
                skipped.add(name)
        return skipped

    # ----------------------------------------------------------------- layers

    def input_expr(self, node: Node) -> _Call:
        cfg = node.config
        shape = cfg.get("batch_shape", cfg.get("batch_input_shape"))
        if shape is None:
            raise GraphError(f"the input {node.name!r} has no shape")
        kwargs = [("shape", _plain_value(tuple(shape[1:])))]
        if shape[0] is not None:
            kwargs.append(("batch_size", _Atom(_literal(shape[0]))))
        dtype = cfg.get("dtype")
        if _is_serialized(dtype):
            dtype = dtype["config"].get("name")
        if dtype not in (None, "float32"):
            kwargs.append(("dtype", _Atom(_literal(dtype))))
        for flag in ("sparse", "ragged", "optional"):
            if cfg.get(flag):
                kwargs.append((flag, _Atom("True")))
        kwargs.append(("name", _Atom(_literal(node.name))))
        return _call("keras.Input", kwargs=kwargs)

    def sequential_expr(self, g: Graph, name: str) -> _Call:
        items = []
        for n in g.node_order():
            node = g.nodes[n]
            if node.is_input:
                items.append(("", self.input_expr(node)))
            elif node.is_model:
                if _is_sequential(node.subgraph):
                    # No statement can freeze a model inside a list: its layers say it.
                    frozen, self._frozen = self._frozen, False
                    try:
                        items.append(("", self.sequential_expr(node.subgraph, node.name)))
                    finally:
                        self._frozen = frozen
                else:
                    items.append(("", _call(self.nested_builder(node))))
            else:
                items.append(("", self.layer_expr(node)))
        layer_list = _Bracket("[", "]", items, explode=True)
        return _call("keras.Sequential", [layer_list], [("name", _Atom(_literal(name)))])

    def op_callee(self, node: Node):
        """A ``keras.ops`` operation as an object to call (shared operations)."""
        return self.deserialize_expr(
            node.module, node.class_name, node.registered_name, node.config)

    def op_expr(self, node: Node, call, arguments: _Bracket):
        """A ``keras.ops`` call as written: ``keras.ops.sum(x, axis=1)``, ``x[:, 0]``."""
        options = {k: v for k, v in node.config.items() if k != "name"}
        positional = [x for p, x in arguments.items if not p]
        if (node.class_name == "GetItem" and not options and len(call.args) == 2
                and len(positional) == 2 and isinstance(positional[0], _Atom)):
            key = _subscript(call.args[1])
            if key is not None:
                return _Atom(f"{positional[0].text}[{key}]")
        fn = snake_case(node.class_name)
        func = getattr(self.keras.ops, fn, None)
        try:
            params = inspect.signature(func).parameters if callable(func) else None
        except (TypeError, ValueError):
            params = None
        if params is not None:
            order = list(params)
            given = {p[:-1] for p, _ in arguments.items if p.endswith("=")}
            # The operation's options become the function's keyword arguments,
            # when each one names a parameter the call does not already fill.
            if all(k in params and order.index(k) >= len(positional) and k not in given
                   for k in options):
                extra = [(f"{k}=", self.value_expr(v)) for k, v in options.items()
                         if params[k].default is inspect.Parameter.empty
                         or _norm(params[k].default) != _norm(v)]
                return _Call(_Atom(f"keras.ops.{fn}"),
                             _Bracket("(", ")", arguments.items + extra))
        return _Call(self.op_callee(node), arguments)

    def layer_expr(self, node: Node):
        config = _thawed(node.config) if self._frozen else node.config
        return self.layer_entry_expr(node.module, node.class_name, node.registered_name, config)

    def layer_entry_expr(self, module, class_name, registered_name, config):
        """A constructor expression that rebuilds exactly this layer config."""
        found = self._layer_class(module, class_name, registered_name)
        if found is None:
            if (registered_name or "").startswith("layerforge>"):
                self.uses_lf = True  # registers the class before deserialising
            return self.deserialize_expr(module, class_name, registered_name, config)
        path, cls = found
        self._note(path)
        for candidate in (_as_written(class_name, config), config):
            if candidate is None:
                continue
            expr = self._constructor(path, cls, candidate, last=("name",))
            if expr is not None and self._rebuilds(
                expr, _settled(class_name, config),
                lambda obj: _settled(class_name, obj.get_config()),
            ):
                return expr
        return _call(f"{path}.from_config", [_plain_value(config)])

    def _layer_class(self, module, class_name, registered_name):
        if (registered_name or "").startswith("layerforge>"):
            short = registered_name.split(">", 1)[1]
            cls = getattr(self.lf, short, None)
            return (f"lf.{short}", cls) if isinstance(cls, type) else None
        if registered_name not in (None, class_name) or not (module or "keras").startswith("keras"):
            return None
        cls = getattr(self.keras.layers, class_name, None)
        if isinstance(cls, type) and issubclass(cls, self.keras.layers.Layer):
            return f"layers.{class_name}", cls
        return None

    def _note(self, path: str) -> None:
        if path.startswith("layers."):
            self.uses_layers = True
        elif path.startswith("lf."):
            self.uses_lf = True

    def deserialize_expr(self, module, class_name, registered_name, config) -> _Call:
        entry = {"module": module, "class_name": class_name, "config": config,
                 "registered_name": registered_name}
        return _call("keras.saving.deserialize_keras_object", [_plain_value(entry)])

    def _constructor(self, path: str, cls: type, config: dict, *, last=(), show_all=False):
        """``path(required..., differing=..., last=...)``, or ``None`` when Keras cannot tell us."""
        try:
            params = dict(inspect.signature(cls.__init__).parameters)
        except (TypeError, ValueError):
            return None
        params.pop("self", None)
        named = (inspect.Parameter.POSITIONAL_OR_KEYWORD, inspect.Parameter.KEYWORD_ONLY)
        required = [n for n, p in params.items() if p.kind in named and p.default is p.empty]
        if any(r not in config for r in required):
            return None
        candidates = [k for k in config if k not in required and k not in last]
        if show_all:
            keys = candidates
        else:
            # Some defaults follow other arguments (``strides`` follows ``pool_size``),
            # so ask again with what we write until nothing new differs.
            keys: list[str] = []
            for _ in range(4):
                defaults = self._defaults(cls, {k: config[k] for k in [*required, *keys]})
                if defaults is None:
                    return None
                more = [k for k in candidates if k not in keys
                        and (k not in defaults or defaults[k] != _norm(config[k]))]
                if not more:
                    break
                keys += more
        position = {n: i for i, n in enumerate(params)}
        keys.sort(key=lambda k: position.get(k, len(position)))
        args, kwargs = [], []
        positional = inspect.Parameter.POSITIONAL_OR_KEYWORD
        if len(required) == 1 and params[required[0]].kind is positional:
            args.append(self.value_expr(config[required[0]]))
        else:
            kwargs += [(r, self.value_expr(config[r])) for r in required]
        kwargs += [(k, self.value_expr(config[k])) for k in keys]
        kwargs += [(k, self.value_expr(config[k])) for k in last if k in config]
        return _call(path, args, kwargs)

    def _defaults(self, cls: type, given: dict) -> dict | None:
        """The config of ``cls(**given)`` (normalised), or ``None`` if it cannot be made."""
        try:
            key = (cls, json.dumps(given, sort_keys=True, default=repr))
        except (TypeError, ValueError):
            key = None
        if key is not None and key in self._default_cache:
            return self._default_cache[key]
        try:
            live = {k: self._live(v) for k, v in given.items()}
            defaults = _norm(cls(**live).get_config())
        except Exception:  # noqa: BLE001 - any failure means "write it the exact way"
            defaults = None
        if key is not None:
            self._default_cache[key] = defaults
        return defaults

    def _live(self, value: Any) -> Any:
        if _is_serialized(value):
            return self.keras.saving.deserialize_keras_object(value)
        return value

    def _rebuilds(self, expr, expected: dict, describe: Callable[[Any], dict]) -> bool:
        """Whether evaluating ``expr`` gives an object whose config matches ``expected``.

        Keys that ``expected`` lacks (a config written by hand, not by Keras) take
        their defaults either way, as they would in ``from_config``.
        """
        try:
            obj = eval(_flat(expr), dict(self.ns))  # noqa: S307 - our own expression
            got = _norm(describe(obj))
        except Exception:  # noqa: BLE001 - a failed attempt only means "write it exactly"
            return False
        want = _norm(expected)
        return {k: got.get(k, _MISSING) for k in want} == want

    # ----------------------------------------------------------------- values

    def value_expr(self, v: Any):
        """A config value as readable Python: literals, and Keras objects as constructors."""
        if _is_serialized(v):
            return self.object_expr(v)
        if isinstance(v, dict):
            items = [(_literal(k) + ": ", self.value_expr(x)) for k, x in v.items()]
            return _Bracket("{", "}", items)
        if isinstance(v, tuple):
            return _Bracket("(", ")", [("", self.value_expr(x)) for x in v], one_tuple=True)
        if isinstance(v, list):
            return _Bracket("[", "]", [("", self.value_expr(x)) for x in v])
        return _Atom(_literal(v))

    def object_expr(self, v: dict):
        module, cname, cfg = v.get("module"), v["class_name"], v["config"]
        registered = v.get("registered_name")
        if cname == "__slice__" and isinstance(cfg, dict):
            parts = [self.value_expr(cfg.get(k)) for k in ("start", "stop", "step")]
            return _call("slice", parts)
        if cname == "__ellipsis__":
            return _Atom("...")
        if cname == "__bytes__" and isinstance(cfg, dict) and isinstance(cfg.get("value"), str):
            return _Atom(repr(cfg["value"].encode("utf-8")))
        if cname == "DTypePolicy" and isinstance(cfg, dict) and set(cfg) == {"name"}:
            return _Atom(_literal(cfg["name"]))
        if module in _OBJECT_MODULES and registered in (None, cname) and isinstance(cfg, dict):
            expr = self._keras_object_expr(module, cname, v)
            if expr is not None:
                return expr
        if self._layer_class(module, cname, registered) is not None:
            return self.layer_entry_expr(module, cname, registered, cfg)
        if cname == "Sequential" and (module or "").startswith("keras") and isinstance(cfg, dict):
            # A model inside a wrapper (``TimeDistributed(Sequential)``): written as a
            # list of layers when it is one chain; the caller checks that it rebuilds.
            try:
                sub = Graph.from_keras_config(cfg, "Sequential")
            except (GraphError, KeyError, TypeError):
                sub = None
            if sub is not None and _is_sequential(sub):
                return self.sequential_expr(sub, cfg.get("name", sub.name))
        return _call("keras.saving.deserialize_keras_object", [_plain_value(v)])

    def _keras_object_expr(self, module: str, cname: str, v: dict):
        keras = self.keras
        sub = module.split(".", 1)[1]
        namespace = getattr(keras, sub)
        cls = getattr(namespace, cname, None)
        if not isinstance(cls, type):
            return None

        def describe(obj):
            s = keras.saving.serialize_keras_object(obj)
            return {k: s.get(k) for k in ("module", "class_name", "config")}

        wanted = {k: v.get(k) for k in ("module", "class_name", "config")}
        regularizer = sub == "regularizers"
        if not regularizer:
            alias = snake_case(cname)
            try:
                if _norm(describe(namespace.get(alias))) == _norm(wanted):
                    return _Atom(_literal(alias))
            except Exception:  # noqa: BLE001 - no such alias
                pass
        # A regularizer's strength is the point of it, so always show it.
        expr = self._constructor(f"keras.{sub}.{cname}", cls, v["config"], show_all=regularizer)
        if expr is not None and self._rebuilds(expr, wanted, describe):
            return expr
        return None


# --------------------------------------------------------------------------- small helpers


def _as_written(class_name: str, config: dict) -> dict | None:
    """The config a person would have written, where Keras rewrites it.

    ``Bidirectional`` renames its layer ``forward_<name>``, derives the backward
    layer from it and forces ``zero_output_for_mask``; written from the
    original layer, the backward layer is a default and can be left out.
    ``LayerNormalization`` turns ``axis=-1`` into ``[-1]`` when it is built.
    The caller checks that the result rebuilds the same config.
    """
    if class_name == "Bidirectional" and _is_serialized(config.get("layer")):
        layer = dict(config["layer"])
        inner = dict(layer["config"])
        name = inner.get("name", "")
        if name.startswith("forward_"):
            inner["name"] = name[len("forward_"):]
        if "zero_output_for_mask" in inner:  # the RNN default; Bidirectional sets its own
            inner["zero_output_for_mask"] = False
        layer["config"] = inner
        return {**config, "layer": layer}
    settled = _settled(class_name, config)
    if settled is not config:
        return {**config, "axis": settled["axis"][0]}
    return None


def _settled(class_name: str, config: dict) -> dict:
    """``config`` as it reads once the layer is built (where that differs)."""
    axis = config.get("axis")
    if class_name == "LayerNormalization" and isinstance(axis, int):
        return {**config, "axis": [axis]}
    if class_name == "LayerNormalization" and isinstance(axis, (list, tuple)) and len(axis) == 1:
        return {**config, "axis": list(axis)}
    return config


def _thawed(config: dict) -> dict:
    """``config`` with every ``trainable: False`` in it (nested layers too) made true."""
    out = {}
    for k, v in config.items():
        if k == "trainable" and v is False:
            v = True
        elif _is_serialized(v) and isinstance(v["config"], dict):
            v = {**v, "config": _thawed(v["config"])}
        out[k] = v
    return out


def _subscript(key: Any) -> str | None:
    """``key`` as subscript text (``:, 0``), or ``None`` when it is not a plain index."""

    def part(k):
        if k is None or (isinstance(k, int) and not isinstance(k, bool)):
            return repr(k)
        if _is_serialized(k) and k["class_name"] == "__ellipsis__":
            return "..."
        if _is_serialized(k) and k["class_name"] == "__slice__":
            bounds = [k["config"].get(b) for b in ("start", "stop", "step")]
            if any(b is not None and (not isinstance(b, int) or isinstance(b, bool))
                   for b in bounds):
                return None
            text = ":".join("" if b is None else str(b) for b in bounds[:2])
            return text + (f":{bounds[2]}" if bounds[2] is not None else "")
        return None

    if isinstance(key, (list, tuple)):
        parts = [part(k) for k in key]
        if not parts or None in parts:
            return None
        return ", ".join(parts) + ("," if len(parts) == 1 else "")
    return part(key)


def _is_mask_kwarg(k: str) -> bool:
    return k == "mask" or k.endswith("_mask")


def _edge_is_dropped(g: Graph, e, dropped: dict[str, set]) -> bool:
    node = g.nodes[e.dst]
    call = node.calls[e.dst_call]
    for k, v in call.kwargs.items():
        if isinstance(v, dict) and v.get(SLOT) == e.dst_slot and set(v) == {SLOT}:
            return (e.dst_call, k) in dropped.get(e.dst, set())
    return False


def _leaves(structure: Any) -> list:
    if structure is None:
        return []
    if _is_port(structure):
        return [list(structure)]
    values = structure.values() if isinstance(structure, dict) else structure
    return [leaf for v in values for leaf in _leaves(v)]


def _doc_text(name: str) -> str:
    text = name.replace("\\", "\\\\").replace('"""', '\\"\\"\\"')
    return f'"{text}"'
