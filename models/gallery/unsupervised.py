"""Unsupervised and self-supervised templates: a deep belief network, a SOM and SimCLR."""
from __future__ import annotations

from models.gallery import register
from models.gallery.generative import _adam, _keras, project_of


@register("dbn", "Deep belief network", "7.4.5",
          "Two RBMs pre-trained without labels by contrastive divergence, then fine-tuned to read digits.")
def dbn():
    from models.layers import RBM

    keras = _keras()
    L = keras.layers
    x = keras.Input((64,), name="pixels")
    h = L.Dense(128, activation="sigmoid", name="hidden_1")(x)
    h = L.Dense(64, activation="sigmoid", name="hidden_2")(h)
    classifier = keras.Model(x, L.Dense(10, activation="softmax", name="digit")(h), name="dbn")
    rbms = {}
    for i, (visible, hidden) in enumerate(((64, 128), (128, 64)), start=1):
        v = keras.Input((visible,), name="visible")
        rbms[f"rbm_{i}"] = keras.Model(v, RBM(hidden, cd_steps=1, learning_rate=0.2, name="rbm")(v),
                                       name=f"rbm_{i}")
    return project_of(
        {"dbn": classifier, **rbms},
        {"source": "builtin", "name": "digits-binary"},
        {"loop": "dbn", "optimizer": _adam(0.005), "loss": "sparse_categorical_crossentropy",
         "metrics": ["accuracy"], "epochs": 70, "batch_size": 32, "seed": 0,
         "pretrain_epochs": 10,
         "loop_options": {"stack": ["rbm_1", "rbm_2"], "classifier": "dbn",
                          "unroll": {"rbm_1": "hidden_1", "rbm_2": "hidden_2"}},
         "quick": {"epochs": 50, "pretrain_epochs": 8},
         "quality": {"metric": "test_accuracy"}},
        {"explanation": (
            "A restricted Boltzmann machine is a layer of hidden units joined to the pixels by "
            "one weight matrix; it learns without labels by contrastive divergence: make the "
            "data more likely, and the model's own reconstructions (after a round trip pixels "
            "-> hidden -> pixels) less likely. A deep belief network stacks RBMs greedily: "
            "rbm_1 learns the pixels, rbm_2 learns rbm_1's hidden activity. Their weights then "
            "start the hidden layers of the classifier (dbn), which back-propagation fine-tunes "
            "with the labels. The live view shows what rbm_1's hidden units respond to."),
         "graphs": {"dbn": "the classifier fine-tuned from the stack",
                    "rbm_1": "64 pixels <-> 128 hidden units", "rbm_2": "128 <-> 64 hidden units"}},
    )


@register("som", "Self-organizing map", "7.9",
          "A 6x6 grid of prototypes spreads over the iris measurements and sorts the flowers.")
def som():
    from models.layers import SOM

    keras = _keras()
    x = keras.Input((4,), name="measurements")
    model = keras.Model(x, SOM(6, 6, sigma=3.0, sigma_end=0.5, learning_rate=0.5,
                               learning_rate_end=0.02, name="map")(x), name="som")
    return project_of(
        {"som": model},
        {"source": "builtin", "name": "iris"},
        {"loop": "som", "epochs": 40, "batch_size": 8, "seed": 0, "quick": {"epochs": 25},
         "quality": {"metric": "cluster_purity"}},
        {"explanation": (
            "Each of the 36 units of the grid holds a prototype: a point in the space of the 4 "
            "measurements. For every flower the nearest prototype wins, and it and its "
            "neighbours on the grid move towards the flower; the neighbourhood and the step "
            "shrink as training goes on. The grid unfolds over the data so that neighbouring "
            "units hold similar flowers. No label is used: the U-matrix (distance between "
            "neighbouring prototypes) shows the borders between clusters, and each component "
            "plane one measurement across the map. Quality: label each unit with the species "
            "of the training flowers it wins; cluster_purity is the share of test flowers "
            "whose unit has their species."),
         "graphs": {"som": "4 measurements -> squared distance to each of 36 units"}},
    )


@register("self-supervised", "Self-supervised contrastive learning", "7.10",
          "SimCLR on digits: two random views of each image must agree; labels only for the probe.")
def self_supervised():
    keras = _keras()
    L = keras.layers
    x = keras.Input((8, 8, 1), name="image")
    h = L.Conv2D(16, 3, padding="same", activation="relu", name="conv_1")(x)
    h = L.Conv2D(32, 3, padding="same", activation="relu", name="conv_2")(h)
    h = L.MaxPooling2D(2, name="pool")(h)
    h = L.Flatten(name="flatten")(h)
    encoder = keras.Model(x, L.Dense(64, activation="relu", name="embedding")(h), name="encoder")
    e = keras.Input((64,), name="embedding")
    p = L.Dense(64, activation="relu", name="dense")(e)
    projection = keras.Model(e, L.Dense(32, name="projection")(p), name="projection")
    a = keras.Input((8, 8, 1), name="image")
    v = L.RandomTranslation(0.125, 0.125, fill_mode="constant", name="shift")(a)
    v = L.RandomRotation(0.04, fill_mode="constant", name="rotate")(v)
    v = L.RandomZoom(0.15, fill_mode="constant", name="zoom")(v)
    v = L.GaussianNoise(0.1, name="noise")(v)
    augment = keras.Model(a, v, name="augment")
    return project_of(
        {"encoder": encoder, "projection": projection, "augment": augment},
        {"source": "builtin", "name": "digits"},
        {"loop": "simclr", "optimizer": _adam(0.001), "epochs": 60, "batch_size": 128, "seed": 0,
         "loss": {"class_name": "layerforge>NTXent", "config": {"temperature": 0.1}},
         "quick": {"epochs": 30},
         "loop_options": {"probe_labels": 0.1},
         "quality": {"metric": "linear_probe_accuracy"},
         "extra_metrics": "models.loops.contrastive:probe_metrics",
         "live_view": {"fn": "models.loops.contrastive:embedding_view", "n": 500}},
        {"explanation": (
            "No labels are used to learn the representation. Each image goes through the "
            "augment graph twice (a random shift, rotation, zoom and noise), giving two views. "
            "The encoder and a small projection head map every view to a vector; the NT-Xent "
            "loss makes the two views of one image point the same way and apart from the views "
            "of every other image in the batch. What survives is what the augmentations do "
            "not change: the digit. Quality: a linear classifier trained on the embeddings of "
            "only 10% of the training labels, tested on unseen digits (raw_probe_accuracy is "
            "the same probe on raw pixels, for comparison). The live view shows the embeddings "
            "of test digits, coloured by the label the model never saw."),
         "graphs": {"encoder": "image -> 64-number embedding (kept)",
                    "projection": "embedding -> the vector the loss compares (thrown away after)",
                    "augment": "image -> a random view of it"}},
    )
