"""Fit a template to other data: its input shape and its classifier head.

When a user points a gallery template (or any project) at data of another
shape or with another number of classes, the Input layer and the last Dense
layer are changed to match, the recipe's loss and metrics follow, and every
change is described so the app and the command line can tell the user.
"""
from __future__ import annotations

from models.graph import Graph


def adapt_to_data(project, dataset) -> list[str]:
    """Change ``project`` in place to fit ``dataset``; returns what changed, in words.

    A project trained by a custom step (``recipe["loop"]``: a GAN, an
    autoencoder...) is left alone: its graphs fit each other, not a
    classifier's head, and only the user knows how they should change.
    """
    if project.recipe.get("loop", "fit") != "fit":
        return []
    notes: list[str] = []
    graph = project.graph
    notes += _adapt_input(graph, dataset)
    notes += _adapt_head(project, graph, dataset)
    return notes


def _adapt_input(graph: Graph, dataset) -> list[str]:
    inputs = [n for n in graph.nodes.values() if n.is_input]
    if len(inputs) != 1 or isinstance(dataset.x_train, (dict, list, tuple)):
        return []
    node = inputs[0]
    shape = node.config.get("batch_shape") or []
    want = [None, *[int(d) for d in dataset.input_shape]]
    if list(shape) == want:
        return []
    before = tuple(shape[1:])
    graph.set_config(node.name, {"batch_shape": want})
    return [f"input '{node.name}' now takes shape {tuple(want[1:])} (was {before})"]


def _head_dense(graph: Graph):
    """The Dense layer that produces the model's only output, and the softmax/sigmoid after it."""
    ports = graph.output_ports()
    if len(ports) != 1:
        return None, None
    name = ports[0].node
    node = graph.nodes[name]
    activation_node = None
    while node.class_name in ("Activation", "Softmax", "Dropout"):
        if node.class_name in ("Activation", "Softmax") and activation_node is None:
            activation_node = node
        preds = graph.predecessors(node.name)
        if len(preds) != 1:
            return None, None
        node = graph.nodes[preds[0]]
    if node.class_name != "Dense":
        return None, None
    return node, activation_node


def _adapt_head(project, graph: Graph, dataset) -> list[str]:
    spec = dataset.output_spec()
    notes: list[str] = []
    dense, act_node = _head_dense(graph)
    if dense is not None:
        if dense.config.get("units") != spec["units"]:
            notes.append(f"output layer '{dense.name}' now has {spec['units']} units "
                         f"(was {dense.config.get('units')}) for {dataset.name}")
            graph.set_config(dense.name, {"units": spec["units"]})
        target_act = spec["activation"]
        if act_node is not None:
            if act_node.class_name == "Activation" and act_node.config.get("activation") != target_act:
                notes.append(f"'{act_node.name}' now applies {target_act} "
                             f"(was {act_node.config.get('activation')})")
                graph.set_config(act_node.name, {"activation": target_act})
        elif dense.config.get("activation") != target_act:
            notes.append(f"output layer '{dense.name}' now uses {target_act} "
                         f"(was {dense.config.get('activation')})")
            graph.set_config(dense.name, {"activation": target_act})
    recipe = project.recipe
    if recipe.get("loss") != spec["loss"]:
        notes.append(f"loss is now {spec['loss']} (was {recipe.get('loss')})")
        recipe["loss"] = spec["loss"]
    if list(recipe.get("metrics") or []) != list(spec["metrics"]):
        recipe["metrics"] = list(spec["metrics"])
    q = recipe.get("quality")
    metric = q["metric"] if isinstance(q, dict) else q
    if metric and metric.startswith("test_") and spec["metrics"]:
        wanted = f"test_{spec['metrics'][0]}" if isinstance(spec["metrics"][0], str) else metric
        if wanted != metric:
            recipe["quality"] = {"metric": wanted}
    return notes
