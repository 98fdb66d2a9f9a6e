"""The cheatsheet's worked examples, with the exact weights it gives.

``seed-mlp`` (section 7.1) and ``seed-cnn`` (section 7.3.1) reproduce the
hand calculations: open them, run ``layerforge predict --trace`` and compare
each intermediate value with the sheet.
"""
from __future__ import annotations

import numpy as np

from models.gallery import register

# Section 7.1: 2 inputs -> 2 ReLU units -> 1 sigmoid unit.
MLP_X = [0.5, 0.8]
MLP_W1 = [[0.4, -0.6], [0.7, 0.1]]  # rows: hidden units; z1 = W1 . x + b1
MLP_B1 = [0.1, -0.2]
MLP_W2 = [[0.9, -0.3]]
MLP_B2 = [0.05]

# Section 7.3.1: a 4x4 grey image, one 2x2 filter, ReLU, 2x2 max pooling
# (stride 1, so 3x3 becomes 2x2), flatten, dense 2, softmax.
CNN_X = [[1, 2, 3, 0], [4, 5, 6, 1], [7, 8, 9, 2], [0, 1, 2, 3]]
CNN_K = [[1, 0], [-1, 2]]
CNN_B = 0.0
CNN_W = [[0.1, 0.2, -0.1, 0.05], [-0.3, 0.2, 0.4, 0.1]]  # rows: output units
CNN_BD = [0.5, -0.5]


def build_seed_mlp():
    from models import backend

    keras = backend.keras()
    from keras import layers

    # Activations are layers of their own so that a trace shows z1, h, z2 and y
    # exactly as the sheet writes them.
    x = keras.Input(shape=(2,), name="x")
    z1 = layers.Dense(2, name="hidden")(x)
    h = layers.Activation("relu", name="relu")(z1)
    z2 = layers.Dense(1, name="output")(h)
    y = layers.Activation("sigmoid", name="sigmoid")(z2)
    model = keras.Model(x, y, name="seed_mlp")
    # Keras computes x @ kernel, so the kernel is the sheet's W transposed.
    model.get_layer("hidden").set_weights([np.array(MLP_W1).T, np.array(MLP_B1)])
    model.get_layer("output").set_weights([np.array(MLP_W2).T, np.array(MLP_B2)])
    return model


def build_seed_cnn():
    from models import backend

    keras = backend.keras()
    from keras import layers

    x = keras.Input(shape=(4, 4, 1), name="image")
    y = layers.Conv2D(1, 2, name="conv")(x)
    z = layers.ReLU(name="relu")(y)
    v = layers.MaxPooling2D(pool_size=2, strides=1, name="max_pool")(z)
    f = layers.Flatten(name="flatten")(v)
    logits = layers.Dense(2, name="dense")(f)
    p = layers.Softmax(name="softmax")(logits)
    model = keras.Model(x, p, name="seed_cnn")
    kernel = np.array(CNN_K, dtype="float32").reshape(2, 2, 1, 1)
    model.get_layer("conv").set_weights([kernel, np.array([CNN_B])])
    model.get_layer("dense").set_weights([np.array(CNN_W).T, np.array(CNN_BD)])
    return model


def _project_for(model, meta: dict):
    from models.build import graph_from_model
    from models.project import new_project

    graph = graph_from_model(model)
    project = new_project(graph)
    project.meta.update(meta)
    project.dataset = None
    return project, {project.main_name: model}


@register("seed-mlp", "Cheatsheet MLP, worked example", "7.1",
          "The 2-2-1 perceptron from the sheet with its weights: predict (0.5, 0.8) gives 0.495.")
def seed_mlp():
    return _project_for(build_seed_mlp(), {
        "example_input": [MLP_X],
        "explanation": (
            "Two inputs feed two ReLU units and one sigmoid unit. With the sheet's weights, "
            "the hidden pre-activations are (-0.18, 0.23), ReLU zeroes the first, and the "
            "output is sigmoid(-0.019) = 0.495. Step through it with predict --trace."
        ),
    })


@register("seed-cnn", "Cheatsheet CNN, worked example", "7.3.1",
          "The sheet's 4x4 image, 2x2 filter, ReLU, max pooling, dense and softmax, with its weights.")
def seed_cnn():
    from models.gallery.errata import errata_for

    return _project_for(build_seed_cnn(), {
        "example_input": [np.array(CNN_X, dtype="float32").reshape(4, 4, 1).tolist()],
        "explanation": (
            "One 2x2 filter slides over a 4x4 grey image (a 3x3 feature map), ReLU keeps the "
            "positives, 2x2 max pooling with stride 1 gives 2x2, and a dense layer with "
            "softmax turns the four values into two class probabilities."
        ),
        "errata": errata_for("7.3.1"),
    })
