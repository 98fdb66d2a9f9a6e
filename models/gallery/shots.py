"""Few-shot and zero-shot templates (cheatsheet 8.1): naming digits a model was never trained on.

* ``few-shot``: a prototypical network (:mod:`models.loops.episodic`)
  learns an embedding on digits 0-4 and is tested on 5-way 5-shot episodes
  of digits 5-9.
* ``zero-shot``: a network learns to read attributes (display segments,
  loops) off digits without ever seeing 3, 7 or 9; it then names those by
  matching the attributes it reads to their descriptions.
"""
from __future__ import annotations

import numpy as np

from models.gallery import register
from models.gallery._projects import conv_trunk, project_of


@register("few-shot", "Few-shot: prototypical network", "8.1",
          "Learns an embedding on digits 0-4, then tells 5-9 apart from 5 examples of each.")
def few_shot():
    from models import backend

    keras = backend.keras()
    x = keras.Input((8, 8, 1), name="image")
    # The embedding is the trunk's 256 flattened features: a dense layer on top, trained on
    # five classes only, squeezed out what told the new ones apart (0.84 instead of 0.91).
    model = keras.Model(x, conv_trunk(keras, x), name="embedder")
    return project_of(
        {"embedder": model}, {"source": "builtin", "name": "digits-novel"},
        {"loop": "models.loops.episodic:PrototypicalLoop", "loss": None, "metrics": None,
         "validation_split": None,
         "optimizer": {"class_name": "Adam", "config": {"learning_rate": 0.001}},
         "epochs": 12, "steps_per_epoch": 100, "batch_size": 150, "n_way": 5, "train_way": 10,
         "rotations": True, "k_shot": 5, "queries": 10, "test_episodes": 300, "test_shot": 5,
         "test_queries": 15,
         "quality": {"metric": "episode_accuracy"}, "quick": {"epochs": 5}},
        {"explanation": (
            "Cheatsheet 8.1, few-shot. Instead of a class head, the network maps each image to "
            "256 numbers (the flattened features of its two convolution blocks), and a class is "
            "summed up by its prototype, the mean of the vectors of its few labelled examples. "
            "An image belongs to the class of the nearest prototype. Training plays many small "
            "tasks (episodes) with digits 0-4: pick 10 classes, 5 examples of each to build "
            "prototypes and 10 more to classify, and move the embedding so that right answers "
            "get closer. Five digits are few classes to learn from, so each digit turned a "
            "quarter, a half and three quarters counts as a class of its own (20 in all). "
            "Nothing in the network is tied to a particular class, so it carries over: the test "
            "plays 300 episodes of digits 5-9, never seen in training, with 5 examples each "
            "(5-way 5-shot), and episode_accuracy is the mean share of queries named right. "
            "pixel_episode_accuracy does the same on raw pixels, for comparison.")},
    )


@register("zero-shot", "Zero-shot: classes from their attributes", "8.1",
          "Reads segments and loops off digits and names 3, 7 and 9 without a single example.")
def zero_shot():
    from models import backend
    from models.datasets.digit_classes import ATTRIBUTES

    keras = backend.keras()
    x = keras.Input((8, 8, 1), name="image")
    h = conv_trunk(keras, x, width=32)
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
            "Cheatsheet 8.1, zero-shot. Every digit is described by eight yes/no attributes, "
            "four for each half of the image: which bars a seven-segment display lights for it "
            "(top bar, upper left, lower right...) and whether it has a closed loop at the top "
            "or the bottom. The network never sees a 3, a 7 or a 9: it learns from the other "
            "seven digits to read each attribute off an image (eight sigmoid outputs). With "
            "only seven digits it would learn to recognise them and recite their descriptions, "
            "which says nothing about new ones; so it also trains on made-up digits glued from "
            "the top half of one digit and the bottom half of another, and must read each half "
            "on its own. To name an image of an unseen digit, it compares what it reads with "
            "the descriptions of 3, 7 and 9 and picks the most likely. unseen_accuracy is the "
            "share of those test images named right (a guess gets a third). It fails where a "
            "digit is written unlike its display form (a 1 down the middle, a slanted 7).")},
    )


def _log_likelihood(probs, table):
    """log P(class attributes | image) for every (image, class), attributes taken as independent."""
    p = np.clip(np.asarray(probs, np.float64), 1e-4, 1 - 1e-4)
    return np.log(p) @ table.T + np.log(1 - p) @ (1 - table).T


def _descriptions(attributes):
    """The distinct class descriptions among ``attributes`` rows, and each row's index among them."""
    table, index = np.unique(np.asarray(attributes, np.float32), axis=0, return_inverse=True)
    return table, index.ravel()


def zero_shot_metrics(model, dataset, recipe) -> dict[str, float]:
    """``unseen_accuracy``: test images named by the nearest description among the test classes'."""
    table, truth = _descriptions(dataset.y_test)
    scores = _log_likelihood(model.predict(dataset.x_test, verbose=0), table)
    return {"unseen_accuracy": float(np.mean(scores.argmax(1) == truth))}


def zero_shot_view(model, dataset, options) -> dict:
    """The attributes read off unseen digits, beside their descriptions."""
    from models import views
    from models.datasets.digit_classes import digit_of_attributes

    table, truth = _descriptions(dataset.y_test)
    digits = digit_of_attributes(table)
    order = np.argsort(digits, kind="stable")  # rows in digit order
    pick = np.concatenate([np.flatnonzero(truth == k)[:40] for k in order])
    probs = model.predict(dataset.x_test[pick], verbose=0)
    read = np.stack([probs[truth[pick] == k].mean(0) for k in order])
    right = _log_likelihood(probs, table).argmax(1) == truth[pick]
    table, names = table[order], [str(d) for d in digits[order]]
    short = ["top bar", "up-left", "up-right", "top loop", "low-left", "low-right", "bottom bar",
             "low loop"]  # ATTRIBUTES, short enough for eight columns
    return views.view(
        "Attributes",
        views.heatmap_panel(read, f"Read off unseen digits (mean; {right.mean():.0%} named right)",
                            x_labels=short,
                            y_labels=names, levels=[0, 1]),
        views.heatmap_panel(table, "Their descriptions", x_labels=short, y_labels=names,
                            levels=[0, 1]))
