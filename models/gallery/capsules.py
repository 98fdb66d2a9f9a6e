"""Capsule networks (cheatsheet section 7.3.2): a small one for 8x8 digits and the sheet's full size."""
from __future__ import annotations

import numpy as np

from models.gallery import register
from models.gallery.supervised import _project

EXPLANATION = (
    "Cheatsheet 7.3.2, capsule networks. A convolution finds strokes; the primary capsules "
    "regroup its channels into small vectors, one per part and place, whose direction "
    "describes the part's pose and whose length (squashed below 1) says how sure the "
    "capsule is. Each digit capsule is built by routing by agreement: every primary capsule "
    "predicts every digit capsule, and predictions that agree with the emerging result get "
    "a larger share in the next round (routings sets how many rounds). The length of each "
    "digit capsule is the score for its digit, trained with the margin loss (the right "
    "capsule above 0.9, the others below 0.1). The decoder keeps only the longest capsule "
    "(the mask), and Dense layers redraw the input from its 16 numbers; their reconstruction "
    "error is added to the loss, so the capsule must describe how the digit is drawn. The "
    "live view puts test images beside their reconstructions.")


def build_capsnet(*, image: tuple[int, int], conv_filters: int, conv_kernel: int,
                  primary_capsules: int, primary_kernel: int, primary_strides: int,
                  decoder: tuple[int, int], reconstruction_weight: float, name: str):
    """A capsule network with its decoder; outputs ``[digit lengths, reconstruction]``."""
    from models import backend
    from models.layers import (CapsuleLength, CapsuleMask, Capsules, PrimaryCapsules,
                               ReconstructionLoss)

    keras = backend.keras()
    L = keras.layers
    x = keras.Input((*image, 1), name="image")
    h = L.Conv2D(conv_filters, conv_kernel, activation="relu", name="conv")(x)
    h = PrimaryCapsules(primary_capsules, 8, primary_kernel, strides=primary_strides,
                        name="primary_caps")(h)
    caps = Capsules(10, 16, routings=3, name="digit_caps")(h)
    lengths = CapsuleLength(name="digit")(caps)
    d = CapsuleMask(name="mask")(caps)
    d = L.Flatten(name="flatten")(d)
    d = L.Dense(decoder[0], activation="relu", name="decoder_1")(d)
    d = L.Dense(decoder[1], activation="relu", name="decoder_2")(d)
    d = L.Dense(image[0] * image[1], activation="sigmoid", name="decoder_3")(d)
    d = L.Reshape(image, name="decoder_image")(d)
    reconstruction = ReconstructionLoss(reconstruction_weight, name="reconstruction")([x, d])
    return keras.Model(x, [lengths, reconstruction], name=name)


def _recipe(**extra) -> dict:
    from models import backend
    from models.layers import MarginLoss

    keras = backend.keras()
    return {
        # The reconstruction output has no loss of its own: ReconstructionLoss adds it.
        "loss": [keras.losses.serialize(MarginLoss()), None],
        "metrics": [["accuracy"], []],
        "quality": {"metric": "test_accuracy"},
        "extra_metrics": "models.gallery.capsules:class_accuracy",
        "live_view": {"fn": "models.gallery.capsules:reconstruction_view", "n": 8},
        **extra,
    }


def class_accuracy(model, dataset, recipe) -> dict:
    """``test_accuracy``: how often the longest digit capsule is the right digit.

    With two outputs Keras names its accuracy after the output
    (``test_digit_accuracy``); this reports it under the usual name.
    """
    lengths = model.predict(dataset.x_test, verbose=0, batch_size=256)[0]
    return {"test_accuracy": float(np.mean(np.argmax(lengths, -1) == np.asarray(dataset.y_test)))}


def reconstruction_view(model, dataset, options) -> dict:
    """Validation images beside the decoder's reconstructions, and one image's capsule lengths."""
    from models import views

    n = int(options.get("n", 8))
    x, y = dataset.x_val[:n], np.asarray(dataset.y_val[:n])
    lengths, rebuilt = (np.asarray(o) for o in model(x, training=False))
    shape = x.shape[1:3]
    names = dataset.class_names or [str(i) for i in range(lengths.shape[-1])]
    images = np.concatenate([x.reshape(-1, *shape), rebuilt.reshape(-1, *shape)])
    labels = ([f"digit {names[t]}" for t in y]
              + [f"seen as {names[g]}" for g in np.argmax(lengths, -1)])
    return views.view(
        "Capsules",
        views.images_panel(images, "Inputs (top) and their reconstructions from the longest "
                                   "capsule (bottom)", labels=labels, columns=n),
        views.bars_panel(f"Digit capsule lengths for the first image (a {names[y[0]]}); the "
                         "right one aims above 0.9", names, lengths[0], y_title="length",
                         reference=0.9),
    )


@register("capsnet", "Capsule network", "7.3.2",
          "Primary capsules, digit capsules with dynamic routing, margin loss and a "
          "reconstruction decoder, on 8x8 digits.")
def capsnet():
    model = build_capsnet(image=(8, 8), conv_filters=64, conv_kernel=3, primary_capsules=8,
                          primary_kernel=3, primary_strides=1, decoder=(128, 256),
                          reconstruction_weight=0.005, name="capsnet")
    return _project(
        model, {"source": "builtin", "name": "digits"},
        _recipe(optimizer={"class_name": "Adam", "config": {"learning_rate": 0.003}},
                epochs=25, batch_size=32, quick={"epochs": 12}),
        {"explanation": EXPLANATION + (
            " Scaled to 8x8 digits: a 3x3 convolution with 64 filters, 8 primary capsule types "
            "of 8 numbers on a 4x4 grid (128 capsules), a decoder of 128 and 256 units, and a "
            "reconstruction weight of 0.005 (the paper's 0.0005 is for 784 pixels).")},
    )


@register("seed-capsnet", "Cheatsheet capsule network, full size", "7.3.2",
          "The sheet's CapsNet for 28x28 MNIST: 9x9 conv with 256 filters, 1152 primary "
          "capsules of 8D, 10 digit capsules of 16D, decoder 512-1024-784.")
def seed_capsnet():
    model = build_capsnet(image=(28, 28), conv_filters=256, conv_kernel=9, primary_capsules=32,
                          primary_kernel=9, primary_strides=2, decoder=(512, 1024),
                          reconstruction_weight=0.0005, name="seed_capsnet")
    return _project(
        model, {"source": "keras", "name": "mnist"},
        _recipe(optimizer={"class_name": "Adam", "config": {"learning_rate": 0.001}},
                epochs=10, batch_size=100, quick={"epochs": 1, "limit": 6000}),
        {"explanation": EXPLANATION + (
            " This is the sheet's table at full size: 28x28x1 input, a 9x9 convolution with 256 "
            "filters (20x20x256), 32 primary capsule types of 8D with a 9x9 kernel and stride 2 "
            "(6x6x32 = 1152 capsules), 10 digit capsules of 16D with 3 routings, and a decoder "
            "of 512 and 1024 units and 784 outputs reshaped to 28x28. No 28x28 digits ship with "
            "LayerForge: it trains on keras.datasets MNIST (downloaded once, about 11 MB) or on "
            "your own 28x28 images.")},
    )
