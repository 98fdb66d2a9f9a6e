"""Multi-task learning (cheatsheet 2.5): one digit network with two heads and weighted losses."""
from __future__ import annotations

import numpy as np

from models.gallery import register
from models.gallery._projects import conv_trunk, project_of


def digit_tasks(labels) -> dict:
    """The two heads' targets from a digit label: the digit itself, and 1 where it is above 4."""
    labels = np.asarray(labels).astype(np.int32).ravel()
    return {"digit": labels, "above_4": (labels > 4).astype(np.float32)}


@register("multi-task", "Multi-task: two heads, one trunk", "2.5",
          "One convolutional trunk, two heads: which digit it is, and whether it is above 4.")
def multi_task():
    from models import backend

    keras = backend.keras()
    L = keras.layers
    x = keras.Input((8, 8, 1), name="image")
    h = L.Dropout(0.3, name="dropout")(conv_trunk(keras, x))
    shared = L.Dense(64, activation="relu", name="shared")(h)
    digit = L.Dense(10, activation="softmax", name="digit")(shared)
    above = L.Dense(1, activation="sigmoid", name="above_4")(shared)
    model = keras.Model(x, [digit, above], name="multi_task")
    return project_of(
        {"multi_task": model}, {"source": "builtin", "name": "digits"},
        {"loop": "models.loops.multitask:MultiTaskLoop",
         "targets": "models.gallery.multitask:digit_tasks",
         "loss": {"digit": "sparse_categorical_crossentropy", "above_4": "binary_crossentropy"},
         "loss_weights": {"digit": 1.0, "above_4": 0.5},
         "metrics": {"digit": ["accuracy"], "above_4": ["accuracy"]},
         "optimizer": {"class_name": "Adam", "config": {"learning_rate": 0.002}},
         "epochs": 30, "batch_size": 32, "validation_split": None,
         "quality": {"metric": "min_task_accuracy"}, "quick": {"epochs": 15}},
        {"explanation": (
            "Cheatsheet 2.5. Two tasks share one network: the convolution layers and the "
            "'shared' dense layer learn features of the image once, and two small heads read "
            "them, one naming the digit (ten-way softmax), one saying whether it is above 4 "
            "(one sigmoid unit). Training minimises one number, the weighted sum of the two "
            "losses (1.0 x digit + 0.5 x above-4; the weights are in the recipe), so each "
            "task's gradient shapes the shared layers and the easier task steadies the harder "
            "one. min_task_accuracy is the test accuracy of the weaker head.")},
    )
