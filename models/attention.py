"""Attention weights of every attention layer in a model, for given inputs.

Keras's attention layers (``Attention``, ``AdditiveAttention``,
``MultiHeadAttention``, ``GroupedQueryAttention``) and LayerForge's own layers
that declare ``returns_attention_scores = True`` accept
``return_attention_scores=True`` in ``call``. :func:`attention_maps` runs the
model up to each attention call, then calls that layer again on the very
inputs (and options: masks, causal flags) it received, asking for the scores.
Nested models are searched too. The model itself is not changed, and nothing
is trained: this serves the training panel's live view and the explain panel.
"""
from __future__ import annotations

from typing import Any

import numpy as np


def is_attention_layer(layer) -> bool:
    from models import backend

    keras = backend.keras()
    kinds = (keras.layers.Attention, keras.layers.MultiHeadAttention,
             getattr(keras.layers, "GroupedQueryAttention", keras.layers.MultiHeadAttention))
    return isinstance(layer, kinds) or bool(getattr(layer, "returns_attention_scores", False))


def attention_layers(model) -> list[str]:
    """The names of the attention layers (nested ones as ``outer/inner``), in model order."""
    from models import backend

    keras = backend.keras()
    names = []
    for layer in model.layers:
        if is_attention_layer(layer):
            names.append(layer.name)
        elif isinstance(layer, keras.Model):
            names += [f"{layer.name}/{n}" for n in attention_layers(layer)]
    return names


def attention_maps(model, x, *, layers: list[str] | None = None) -> list[dict[str, Any]]:
    """The attention weights of every attention call in ``model`` on the inputs ``x``.

    Args:
        model: a built functional or sequential ``keras.Model``.
        x: inputs as ``model`` takes them (an array, a list or a dict).
        layers: only these layers (names as :func:`attention_layers` gives them).

    Returns:
        One dict per call of an attention layer, in model order: ``layer`` (its
        name, ``outer/inner`` when nested; ``name#2`` for the second call of a
        shared layer), ``class_name`` and ``scores``, a float32 array
        ``[samples, heads, queries, keys]`` (one head for single-head layers).
        Each query's weights over the keys sum to 1.
    """
    from models import backend

    backend.load()
    found: list[dict[str, Any]] = []
    _collect(model, x, "", found)
    if layers is not None:
        wanted = set(layers)
        found = [f for f in found if f["layer"].split("#")[0] in wanted]
    return found


def _collect(model, x, prefix: str, found: list) -> None:
    from models import backend

    keras = backend.keras()
    calls = []  # (kind, layer, node, label)
    for layer in model.layers:
        nested = isinstance(layer, keras.Model)
        if not (nested or is_attention_layer(layer)):
            continue
        nodes = [n for n in layer._inbound_nodes if _in_model(model, n)]
        for i, node in enumerate(nodes):
            label = prefix + layer.name + (f"#{i + 1}" if len(nodes) > 1 else "")
            calls.append(("nested" if nested else "attention", layer, node, label))
    if not calls:
        return
    wanted = []
    for _, _, node, _ in calls:
        for t in node.arguments.keras_tensors:
            if all(t is not w for w in wanted):
                wanted.append(t)
    graph = getattr(model, "_functional", None) or model
    probe = keras.Model(graph.input, wanted)
    values = probe(x, training=False)
    values = values if isinstance(values, (list, tuple)) else [values]
    tensor_dict = {id(t): v for t, v in zip(wanted, values)}
    for kind, layer, node, label in calls:
        args, kwargs = node.arguments.fill_in(tensor_dict)
        if kind == "nested":
            inner = args[0] if len(args) == 1 else list(args)  # kwargs: mask, training
            _collect(layer, inner, label + "/", found)
            continue
        kwargs = dict(kwargs, return_attention_scores=True, training=False)
        _, scores = layer(*args, **kwargs)
        scores = np.asarray(scores, dtype=np.float32)
        if scores.ndim == 3:  # single-head layers: [batch, queries, keys]
            scores = scores[:, None]
        found.append({"layer": label, "class_name": type(layer).__name__, "scores": scores})


def _in_model(model, node) -> bool:
    """Whether ``node`` (one call of a layer) is part of ``model``'s own graph.

    A layer used in several models keeps the calls of all of them; a functional
    model knows its own by key (``keras.src.ops.function.make_node_key``).
    """
    graph = getattr(model, "_functional", None) or model  # a Sequential's inner functional
    keys = getattr(graph, "_nodes", None)
    if not keys:
        return True
    layer = node.operation
    return f"{id(layer)}_ib-{layer._inbound_nodes.index(node)}" in keys


__all__ = ["attention_maps", "attention_layers", "is_attention_layer"]
