"""Helpers of the agents, shots, retrieval and multi-task templates: projects and a digit trunk."""
from __future__ import annotations


def project_of(models: dict, dataset: dict | None, recipe: dict, meta: dict):
    """A project holding one graph per model (the first is the main one), no weights shipped."""
    from models.build import graph_from_model
    from models.project import Project, default_recipe

    project = Project(graphs={name: graph_from_model(m) for name, m in models.items()})
    project.dataset = dataset
    # None drops a default that does not apply (a loop with its own loss has no "loss").
    project.recipe = {k: v for k, v in {**default_recipe(), **recipe}.items() if v is not None}
    project.meta.update(meta)
    return project, {}


def conv_trunk(keras, x, width: int = 64):
    """Two 3x3 convolutions, each halving the 8x8 digit by max pooling, then flatten."""
    L = keras.layers
    h = L.Conv2D(width, 3, padding="same", activation="relu", name="conv_1")(x)
    h = L.MaxPooling2D(2, name="pool_1")(h)
    h = L.Conv2D(width, 3, padding="same", activation="relu", name="conv_2")(h)
    h = L.MaxPooling2D(2, name="pool_2")(h)
    return L.Flatten(name="flatten")(h)
