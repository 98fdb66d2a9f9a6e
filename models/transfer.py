"""Transfer learning: a trained project's layers as the base of a new model.

:func:`transfer_project` keeps a trained model's layers up to a chosen one
(that layer and everything it depends on), marks those up to another chosen
layer as frozen (``trainable: False`` in their configs), puts a new head
sized for the new data on top (a ``Flatten`` first when the kept output is
not flat), and carries the trained weights of every kept layer over. The
editor's File > "New from Trained Model…" and the ``fine-tuning`` /
``feature-extraction`` templates both use it.
"""
from __future__ import annotations

import copy
from typing import Any

from models.graph import Graph, Port

HEAD = "head"
HEAD_FLATTEN = "head_flatten"


class TransferError(ValueError):
    """A base model that cannot be used as asked; the message says why."""


def cut_points(graph: Graph) -> list[str]:
    """The layers a new head can go on, in model order.

    Every layer but the inputs, the model's outputs and shared layers (called
    more than once: their output is not one tensor).
    """
    outputs = {p.node for p in graph.output_ports()}
    return [n for n in graph.node_order()
            if not graph.nodes[n].is_input and n not in outputs and len(graph.nodes[n].calls) == 1]


def kept_layers(graph: Graph, keep_until: str) -> list[str]:
    """``keep_until`` and every layer it depends on, in model order."""
    if keep_until not in graph:
        raise TransferError(f"the base model has no layer {keep_until!r}")
    keep = {keep_until}
    todo = [keep_until]
    while todo:
        for pred in graph.predecessors(todo.pop()):
            if pred not in keep:
                keep.add(pred)
                todo.append(pred)
    return [n for n in graph.node_order() if n in keep]


def transfer_graph(base: Graph, keep_until: str, *, freeze_until: str | None = None,
                   units: int = 2, activation: str = "softmax",
                   cut_shape: Any = None) -> Graph:
    """The new model's graph: the kept layers, some frozen, and a new ``head``.

    Args:
        base: the trained model's graph.
        keep_until: the last layer kept (see :func:`cut_points`).
        freeze_until: this layer and the kept layers it depends on are frozen;
            None freezes nothing (fine-tuning).
        units, activation: the new head's Dense layer.
        cut_shape: the kept layer's output shape (batch axis included); the
            head flattens it first when it is not ``(None, features)``.
            Found by validating the graph when not given.

    Raises:
        TransferError: an unknown layer, a layer that cannot carry a head.
    """
    if keep_until not in cut_points(base):
        raise TransferError(
            f"{keep_until!r} cannot carry a new head: pick a layer between the input and the "
            "output that is used once")
    keep = kept_layers(base, keep_until)
    frozen: set[str] = set()
    if freeze_until is not None:
        if freeze_until not in keep:
            raise TransferError(f"{freeze_until!r} is not among the kept layers, so it cannot be frozen")
        frozen = set(kept_layers(base, freeze_until))
    if cut_shape is None:
        from models.validate import validate

        info = validate(base).nodes.get(keep_until)
        if info is None or info.output_shape is None:
            raise TransferError(f"the output shape of {keep_until!r} is not known: the base model "
                                "has errors; fix them first")
        cut_shape = info.output_shape
    graph = base.subset(keep)
    graph.name = f"{base.name}_transfer"
    graph.kind = "functional"
    graph.input_structure = copy.deepcopy(base.input_structure)
    graph.output_structure = None
    for name in keep:
        node = graph.nodes[name]
        if name in frozen and not node.is_input:
            node.config["trainable"] = False
    from models.catalog import make_node

    src = keep_until
    if len(cut_shape) > 2:
        flat = make_node("Flatten", graph)
        flat.name = flat.config["name"] = graph.unique_name(HEAD_FLATTEN)
        graph.add_node(flat)
        graph.connect(src, flat.name)
        src = flat.name
    head = make_node("Dense", graph)
    head.name = head.config["name"] = graph.unique_name(HEAD)
    head.config.update({"units": int(units), "activation": activation})
    graph.add_node(head)
    graph.connect(src, head.name)
    graph.set_outputs([Port(head.name)])
    return graph


def carry_weights(src_model, dst_model, names: list[str]) -> None:
    """Copy the weights of layers ``names`` from one built model into another, by name."""
    for name in names:
        try:
            weights = src_model.get_layer(name).get_weights()
            if weights:
                dst_model.get_layer(name).set_weights(weights)
        except ValueError as exc:
            raise TransferError(f"the weights of {name!r} do not fit the new model: {exc}") from None


def transfer_project(base, keep_until: str, *, freeze_until: str | None = None, dataset=None,
                     dataset_spec: dict | None = None):
    """A new project: ``base``'s trained layers up to ``keep_until`` and a head for ``dataset``.

    Args:
        base: a :class:`~models.project.Project` whose main model has trained weights.
        keep_until: the last layer kept.
        freeze_until: the last layer frozen (None: nothing frozen).
        dataset: the loaded data the new model is for (its classes size the
            head); default: the base project's own data.
        dataset_spec: the new project's data spec (default: ``dataset``'s
            origin, i.e. the base's spec when ``dataset`` is None).

    Returns:
        The new :class:`~models.project.Project`, unsaved, with the carried
        weights in memory (``project.weights``).

    Raises:
        TransferError: no weights, data of another input shape, an unknown layer.
    """
    from models.adapt import adapt_to_data
    from models.project import new_project
    from models.training import load_project_data

    if not base.has_weights():
        raise TransferError(f"{base.name} has no trained weights; train it and save it first")
    if dataset is None:
        if base.dataset is None:
            raise TransferError("choose the data for the new model: the base project has none")
        dataset = load_project_data(base)
        dataset_spec = dataset_spec or base.dataset
    try:
        model = base.build()
    except Exception as exc:
        raise TransferError(f"{base.name}: {' '.join(str(exc).split())}") from None
    want = tuple(model.inputs[0].shape[1:])
    got = tuple(dataset.input_shape) if not isinstance(dataset.input_shape, (dict, list)) else None
    if len(model.inputs) != 1 or got is None or tuple(want) != tuple(got):
        raise TransferError(f"the base model takes inputs of shape {want}, the data has {got}: "
                            "pick data of the same shape")
    try:
        cut_shape = list(model.get_layer(keep_until).output.shape)
    except (ValueError, AttributeError):
        raise TransferError(f"the base model has no layer {keep_until!r}") from None
    spec = dataset.output_spec()
    graph = transfer_graph(base.graph, keep_until, freeze_until=freeze_until,
                           units=spec["units"], activation=spec["activation"],
                           cut_shape=cut_shape)
    project = new_project(graph)
    project.recipe = copy.deepcopy(base.recipe)
    project.recipe.pop("search", None)  # the marks named the base's layers, not these
    project.dataset = copy.deepcopy(dataset_spec)
    adapt_to_data(project, dataset)  # loss, metrics and quality for the new data
    from models.build import build_model

    new_model = build_model(graph)
    carry_weights(model, new_model, [n for n in kept_layers(base.graph, keep_until)
                                     if not base.graph.nodes[n].is_input])
    project.weights = {project.main_name: new_model.get_weights()}
    title = base.meta.get("title") or base.name
    project.meta = {"title": f"{title} (transfer)",
                    "transfer": {"base": str(base.path) if base.path else title,
                                 "kept_until": keep_until, "frozen_until": freeze_until}}
    return project


__all__ = ["HEAD", "TransferError", "carry_weights", "cut_points", "kept_layers",
           "transfer_graph", "transfer_project"]
