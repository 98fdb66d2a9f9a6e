"""Few-shot and zero-shot templates (cheatsheet 8.1): naming digits a model was never trained on.

* ``few-shot``: a prototypical network (:mod:`models.loops.episodic`)
  learns an embedding on digits 0-4 and is tested on 5-way 5-shot episodes
  of digits 5-9.
* ``zero-shot``: a network learns to read stroke attributes off digits,
  without ever seeing 3, 7 or 9; it then names those by matching the
  attributes it reads to their descriptions.
"""
from __future__ import annotations

import numpy as np

from models.gallery import register
from models.gallery.reinforcement import project_of


def _conv_trunk(keras, x, width: int = 64):
    L = keras.layers
    h = L.Conv2D(width, 3, padding="same", activation="relu", name="conv_1")(x)
    h = L.MaxPooling2D(2, name="pool_1")(h)
    h = L.Conv2D(width, 3, padding="same", activation="relu", name="conv_2")(h)
    h = L.MaxPooling2D(2, name="pool_2")(h)
    return L.Flatten(name="flatten")(h)


@register("few-shot", "Few-shot: prototypical network", "8.1",
          "Learns an embedding on digits 0-4, then tells 5-9 apart from 5 examples of each.")
def few_shot():
    from models import backend

    keras = backend.keras()
    x = keras.Input((8, 8, 1), name="image")
    h = _conv_trunk(keras, x)
    y = keras.layers.Dense(64, name="embedding")(h)
    model = keras.Model(x, y, name="embedder")
    return project_of(
        {"embedder": model}, {"source": "builtin", "name": "digits-novel"},
        {"loop": "models.loops.episodic:PrototypicalLoop", "loss": None, "metrics": None,
         "validation_split": None,
         "optimizer": {"class_name": "Adam", "config": {"learning_rate": 0.001}},
         "epochs": 12, "steps_per_epoch": 100, "batch_size": 150, "n_way": 5, "train_way": 10,
         "rotations": True, "k_shot": 5, "queries": 10, "test_episodes": 300, "test_shot": 5, "test_queries": 15,
         "quality": {"metric": "episode_accuracy"}, "quick": {"epochs": 5}},
        {"explanation": (
            "Cheatsheet 8.1, few-shot. Instead of a class head, the network maps each image to "
            "64 numbers, and a class is summed up by its prototype, the mean of the vectors of "
            "its few labelled examples. An image belongs to the class of the nearest prototype. "
            "Training plays many small tasks (episodes) with digits 0-4: pick 5 examples per "
            "class, build prototypes, classify 10 more per class, and move the embedding so "
            "that right answers get closer. Because nothing in the network is tied to a "
            "particular class, it carries over: the test plays 300 episodes of digits 5-9, "
            "never seen in training, with 5 examples each (5-way 5-shot), and "
            "episode_accuracy is the mean share of queries named right. "
            "pixel_episode_accuracy does the same on raw pixels, for comparison.")},
    )


@register("zero-shot", "Zero-shot: classes from their attributes", "8.1",
          "Reads stroke attributes off digits and names 3, 7 and 9 without a single example.")
def zero_shot():
    from models import backend
    from models.datasets.digit_classes import ATTRIBUTES

    keras = backend.keras()
    x = keras.Input((8, 8, 1), name="image")
    h = _conv_trunk(keras, x, width=32)
    h = keras.layers.Dropout(0.3, name="dropout")(h)
    h = keras.layers.Dense(64, activation="relu", name="dense")(h)
    y = keras.layers.Dense(len(ATTRIBUTES), activation="sigmoid", name="attributes")(h)
    model = keras.Model(x, y, name="attribute_reader")
    return project_of(
        {"attribute_reader": model}, {"source": "builtin", "name": "digits-attributes"},
        {"loss": "binary_crossentropy", "metrics": ["binary_accuracy"],
         "optimizer": {"class_name": "Adam", "config": {"learning_rate": 0.002}},
         "epochs": 30, "batch_size": 32, "quality": {"metric": "unseen_accuracy"},
         "quick": {"epochs": 15}, "extra_metrics": "models.gallery.shots:zero_shot_metrics",
         "live_view": {"fn": "models.gallery.shots:zero_shot_view"}},
        {"explanation": (
            "Cheatsheet 8.1, zero-shot. Every digit is described by nine yes/no attributes (a "
            "loop at the top, a bar across the top, a diagonal stroke, strokes crossing...). "
            "The network never sees a 3, a 7 or a 9: it learns from the other seven digits to "
            "read each attribute off an image (nine sigmoid outputs). To name an image of an "
            "unseen digit, it compares the attributes it reads with the descriptions of 3, 7 "
            "and 9 and picks the most likely one. unseen_accuracy is the share of those test "
            "images named right (a guess would get a third). It works only as far as the "
            "attributes seen on other digits look the same on the new ones.")},
    )


def _log_likelihood(probs, table):
    """log P(class attributes | image) for every (image, class), attributes taken as independent."""
    p = np.clip(np.asarray(probs, np.float64), 1e-4, 1 - 1e-4)
    return np.log(p) @ table.T + np.log(1 - p) @ (1 - table).T


def zero_shot_metrics(model, dataset, recipe) -> dict[str, float]:
    """``unseen_accuracy`` among the test split's classes; ``seen_accuracy`` on validation."""
    from models.datasets.digit_classes import CLASS_ATTRIBUTES, digit_of_attributes

    out = {}
    for key, x, a in (("unseen_accuracy", dataset.x_test, dataset.y_test),
                      ("seen_accuracy", dataset.x_val, dataset.y_val)):
        digits = digit_of_attributes(a)
        classes = np.unique(digits)
        scores = _log_likelihood(model.predict(x, verbose=0), CLASS_ATTRIBUTES[classes])
        out[key] = float(np.mean(classes[scores.argmax(1)] == digits))
    return out


def zero_shot_view(model, dataset, options) -> dict:
    """The attributes read off unseen digits, beside their descriptions."""
    from models import views
    from models.datasets.digit_classes import ATTRIBUTES, CLASS_ATTRIBUTES, digit_of_attributes

    digits = digit_of_attributes(dataset.y_test)
    classes = np.unique(digits)
    pick = np.concatenate([np.flatnonzero(digits == c)[:40] for c in classes])
    probs = model.predict(dataset.x_test[pick], verbose=0)
    read = np.stack([probs[digits[pick] == c].mean(0) for c in classes])
    right = classes[_log_likelihood(probs, CLASS_ATTRIBUTES[classes]).argmax(1)] == digits[pick]
    short = [a.replace("strokes ", "").replace(" the ", " ") for a in ATTRIBUTES]
    return views.view(
        f"Unseen digits named by their attributes: {right.mean():.0%} right",
        views.heatmap_panel(read, "Attributes read off unseen digits (mean)", x_labels=short,
                            y_labels=[str(c) for c in classes], levels=[0, 1]),
        views.heatmap_panel(CLASS_ATTRIBUTES[classes], "Their descriptions", x_labels=short,
                            y_labels=[str(c) for c in classes], levels=[0, 1]))
