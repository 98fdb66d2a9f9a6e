"""Supervised templates of the cheatsheet's section 7 that train with ``fit``."""
from __future__ import annotations

from models.gallery import register


def fit_recipe(learning_rate: float, quick_epochs: int, **extra) -> dict:
    """The recipe most ``fit`` templates share, with ``extra`` keys added or replaced.

    Adam at ``learning_rate``, up to 40 epochs of 32 samples with early stopping
    (patience 8), ``quick_epochs`` in the quick preset, judged by the test accuracy.
    """
    return {"optimizer": {"class_name": "Adam", "config": {"learning_rate": learning_rate}},
            "epochs": 40, "batch_size": 32, "quality": {"metric": "test_accuracy"},
            "quick": {"epochs": quick_epochs},
            "callbacks": {"early_stopping": {"patience": 8}}, **extra}


def _project(model, dataset: dict, recipe: dict, meta: dict):
    from models.build import graph_from_model
    from models.project import default_recipe, new_project

    project = new_project(graph_from_model(model))
    project.dataset = dataset
    project.recipe = {**default_recipe(), **recipe}
    project.meta.update(meta)
    return project, {}


@register("mlp", "Multi-layer perceptron", "7.1",
          "Dense layers with ReLU and a softmax head, classifying 8x8 digit images.")
def mlp():
    from models import backend

    keras = backend.keras()
    L = keras.layers
    x = keras.Input((8, 8, 1), name="image")
    h = L.Flatten(name="flatten")(x)
    h = L.Dense(128, activation="relu", name="hidden_1")(h)
    h = L.Dropout(0.2, name="dropout")(h)
    h = L.Dense(64, activation="relu", name="hidden_2")(h)
    y = L.Dense(10, activation="softmax", name="digit")(h)
    model = keras.Model(x, y, name="mlp")
    return _project(
        model,
        {"source": "builtin", "name": "digits"},
        fit_recipe(0.002, 25),
        {"explanation": (
            "Cheatsheet 7.1, the feed-forward network (MLP): each Dense layer computes a "
            "weighted sum of all its inputs plus a bias and passes it through ReLU; stacking two "
            "of them lets the network bend its decision boundaries. The softmax head turns ten "
            "scores into probabilities. Dropout switches off a fifth of the hidden units at "
            "random while training, so no unit can rely on another.")},
    )


@register("cnn", "Convolutional network", "7.3.1",
          "Two convolution blocks with max pooling and a dense head, on 8x8 digit images.")
def cnn():
    from models import backend

    keras = backend.keras()
    L = keras.layers
    x = keras.Input((8, 8, 1), name="image")
    h = L.Conv2D(32, 3, padding="same", activation="relu", name="conv_1")(x)
    h = L.Conv2D(32, 3, padding="same", activation="relu", name="conv_2")(h)
    h = L.MaxPooling2D(2, name="pool_1")(h)
    h = L.Conv2D(64, 3, padding="same", activation="relu", name="conv_3")(h)
    h = L.MaxPooling2D(2, name="pool_2")(h)
    h = L.Flatten(name="flatten")(h)
    h = L.Dropout(0.3, name="dropout")(h)
    h = L.Dense(64, activation="relu", name="dense")(h)
    y = L.Dense(10, activation="softmax", name="digit")(h)
    model = keras.Model(x, y, name="cnn")
    return _project(
        model,
        {"source": "builtin", "name": "digits"},
        fit_recipe(0.002, 20),
        {"explanation": (
            "Cheatsheet 7.3.1, the convolutional network: convolutions slide small learned "
            "filters over the image, so the same edge or stroke detector works everywhere; max "
            "pooling keeps the strongest response in each 2x2 patch and halves the size. The "
            "dense head then classifies the features.")},
    )
