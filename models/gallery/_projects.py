"""How the templates with custom loops (agents, shots, retrieval, multi-task) make their projects."""
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
