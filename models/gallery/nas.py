"""Neural architecture search (cheatsheet 7.7.1): the CNN template with its choices left open."""
from __future__ import annotations

from models.gallery import register

# The ranges marked on the CNN template's layers and recipe (see models.search).
NAS_SPACE = [
    {"node": "conv_1", "param": "filters", "type": "int", "min": 16, "max": 48, "step": 16},
    {"node": "conv_2", "param": "kernel_size", "type": "int", "min": 2, "max": 3, "step": 1},
    {"node": "conv_3", "param": "filters", "type": "int", "min": 32, "max": 64, "step": 16},
    {"node": "dropout", "param": "rate", "type": "float", "min": 0.1, "max": 0.4},
    {"node": "dense", "param": "units", "type": "int", "min": 64, "max": 128, "step": 32},
    {"node": "dense", "param": "activation", "type": "choice", "values": ["relu", "tanh", "gelu"]},
    {"recipe": "learning_rate", "type": "float", "min": 2e-3, "max": 1e-2, "log": True},
]


@register("nas", "Neural architecture search", "7.7.1",
          "Bayesian optimization over the CNN's filters, kernel size, dropout, head and "
          "learning rate, on 8x8 digits.")
def nas():
    from models.gallery.supervised import cnn

    project, models = cnn()
    project.recipe.update({
        "epochs": 30,
        "batch_size": 64,
        "quick": {"epochs": 10},
        "search": {"space": [dict(e) for e in NAS_SPACE], "algorithm": "bayesian",
                   "trials": 8, "objective": "val_loss", "as_training": True},
    })
    project.meta["explanation"] = (
        "Instead of fixing every width and rate by hand, the network's open choices are "
        "marked as ranges: the filters of two convolutions, one kernel size, the dropout "
        "rate, the dense head's size and activation, and the learning rate. Training this "
        "project runs a search: each trial builds the CNN with one set of values, trains it "
        "briefly and is scored on the validation split; Bayesian optimization fits a "
        "Gaussian process to the scores so far and proposes the next values where a better "
        "score is likely. The best trial becomes the model, and its test accuracy is the "
        "template's quality. In the editor, any parameter can be marked the same way "
        "(the range button in the inspector) and searched from the Search panel.")
    return project, models
