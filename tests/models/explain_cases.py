"""Small trained models whose right explanation is known, for the explain tests.

Each case generates its data (registered as a built-in dataset, so a project
can name it and the command line and the app can load it) and trains a tiny
model for a few seconds:

* ``one-feature``: five standardized columns; the label is ``key > 0``.
* ``square``: 16x16 noise; class 1 holds a bright 4x4 square somewhere.
* ``reversal``: 8 tokens from 10; the target is the sequence reversed, so
  output step i must look at input step 7 - i.
* ``two-inputs``: an 8x8 image and 3 columns; the label is ``cols[0] > 0``.
* ``digits-rows`` (built in): an LSTM reads the digits row by row.
"""
from __future__ import annotations

import contextlib
import functools

import numpy as np

from models.data import Dataset, dataset_from_arrays, register_builtin

SQUARE = 4
SIDE = 16
STEPS = 8
VOCAB = 10


def _k():
    from models import backend

    return backend.keras()


# --------------------------------------------------------------------------- data


def one_feature_data(seed: int = 0, n: int = 600) -> Dataset:
    rng = np.random.default_rng(seed)
    x = rng.normal(size=(n, 5)).astype("float32")
    y = (x[:, 2] > 0).astype("int32")
    return dataset_from_arrays(x, y, feature_names=["a", "b", "key", "d", "e"],
                               class_names=["low", "high"], task="classification",
                               name="one-feature", seed=seed)


def square_data(seed: int = 0, n: int = 400) -> Dataset:
    rng = np.random.default_rng(seed)
    x = rng.uniform(0.0, 0.5, size=(n, SIDE, SIDE, 1)).astype("float32")
    y = (np.arange(n) % 2).astype("int32")
    corners = rng.integers(0, SIDE - SQUARE + 1, size=(n, 2))
    for i in np.flatnonzero(y):
        r, c = corners[i]
        x[i, r:r + SQUARE, c:c + SQUARE, 0] = 1.0
    ds = dataset_from_arrays(x, y, class_names=["noise", "square"], task="classification",
                             name="square", modality="image", seed=seed)
    return ds


def square_mask(image: np.ndarray) -> np.ndarray:
    """Where the square is (pixels at full brightness; the noise stays below 0.5)."""
    return np.asarray(image)[..., 0] >= 0.999


def reversal_data(seed: int = 0, n: int = 1000) -> Dataset:
    rng = np.random.default_rng(seed)
    x = rng.integers(1, VOCAB, size=(n, STEPS)).astype("int32")
    return dataset_from_arrays(x, x[:, ::-1].copy(), task="sequence", name="reversal",
                               class_names=[str(i) for i in range(VOCAB)], modality="text", seed=seed)


def two_inputs_data(seed: int = 0, n: int = 600) -> Dataset:
    rng = np.random.default_rng(seed)
    image = rng.uniform(size=(n, 8, 8, 1)).astype("float32")
    cols = rng.normal(size=(n, 3)).astype("float32")
    y = (cols[:, 0] > 0).astype("int32")
    return dataset_from_arrays({"image": image, "cols": cols}, y, class_names=["no", "yes"],
                               task="classification", name="two-inputs", seed=seed)


_DATASETS = (
    ("explain-one-feature", one_feature_data, "classification", (5,), 2),
    ("explain-square", square_data, "classification", (SIDE, SIDE, 1), 2),
    ("explain-reversal", reversal_data, "sequence", (STEPS,), VOCAB),
    ("explain-two-inputs", two_inputs_data, "classification", {"image": (8, 8, 1), "cols": (3,)}, 2),
)


@contextlib.contextmanager
def registered_datasets():
    """The cases' data as built-in datasets while the block runs, so projects can name them.

    The registry is global and other tests list it, so the names leave it afterwards
    (there is no public way to unregister: the private table is edited here).
    """
    from models import data

    for name, fn, task, shape, classes in _DATASETS:
        register_builtin(name, task=task, shape=shape, classes=classes,
                         description=f"test data: {name}", load=lambda seed=0, _f=fn, **o: _f(seed))
    try:
        yield
    finally:
        for name, *_ in _DATASETS:
            data._BUILTINS.pop(name, None)


# --------------------------------------------------------------------------- models


def _fit(model, ds: Dataset, epochs: int, lr: float = 0.01, batch_size: int = 32):
    keras = _k()
    model.compile(optimizer=keras.optimizers.Adam(lr), loss="sparse_categorical_crossentropy",
                  metrics=["accuracy"])
    model.fit(ds.x_train, ds.y_train, epochs=epochs, batch_size=batch_size, verbose=0)
    return model


def _seed():
    _k().utils.set_random_seed(0)


@functools.lru_cache(maxsize=None)
def one_feature():
    keras = _k()
    L = keras.layers
    _seed()
    ds = one_feature_data()
    x = keras.Input((5,), name="features")
    h = L.Dense(16, activation="relu", name="hidden")(x)
    model = keras.Model(x, L.Dense(2, activation="softmax", name="label")(h), name="one_feature")
    return _fit(model, ds, epochs=30), ds


@functools.lru_cache(maxsize=None)
def square():
    keras = _k()
    L = keras.layers
    _seed()
    ds = square_data()
    x = keras.Input((SIDE, SIDE, 1), name="image")
    h = L.Conv2D(8, 3, padding="same", activation="relu", name="conv_1")(x)
    h = L.Conv2D(8, 3, padding="same", activation="relu", name="conv_2")(h)
    h = L.GlobalMaxPooling2D(name="pool")(h)
    model = keras.Model(x, L.Dense(2, activation="softmax", name="label")(h), name="square")
    return _fit(model, ds, epochs=5), ds


def _register_position():
    keras = _k()

    @keras.saving.register_keras_serializable(package="layerforge_tests")
    class AddPosition(keras.layers.Layer):
        """A learned vector per position, added to each step (test-only positional encoding)."""

        def build(self, shape):
            self.table = self.add_weight(shape=tuple(shape[1:]), initializer="random_normal",
                                         name="table")

        def call(self, x):
            return x + self.table

    return AddPosition


@functools.lru_cache(maxsize=None)
def position_layer():
    return _register_position()


@functools.lru_cache(maxsize=None)
def reversal():
    keras = _k()
    L = keras.layers
    _seed()
    ds = reversal_data()
    x = keras.Input((STEPS,), dtype="int32", name="tokens")
    h = L.Embedding(VOCAB, 32, name="embed")(x)
    h = position_layer()(name="position")(h)
    h = L.MultiHeadAttention(2, 16, name="attention")(h, h)
    model = keras.Model(x, L.Dense(VOCAB, activation="softmax", name="token")(h), name="reversal")
    return _fit(model, ds, epochs=10, lr=0.01, batch_size=64), ds


@functools.lru_cache(maxsize=None)
def two_inputs():
    keras = _k()
    L = keras.layers
    _seed()
    ds = two_inputs_data()
    image = keras.Input((8, 8, 1), name="image")
    cols = keras.Input((3,), name="cols")
    a = L.Conv2D(4, 3, padding="same", activation="relu", name="conv")(image)
    a = L.GlobalAveragePooling2D(name="pool")(a)
    b = L.Dense(8, activation="relu", name="cols_dense")(cols)
    h = L.Concatenate(name="join")([a, b])
    out = L.Dense(2, activation="softmax", name="label")(h)
    model = keras.Model({"image": image, "cols": cols}, out, name="two_inputs")
    return _fit(model, ds, epochs=20), ds


@functools.lru_cache(maxsize=None)
def lstm_rows():
    from models.data import load_dataset

    keras = _k()
    L = keras.layers
    _seed()
    ds = load_dataset({"source": "builtin", "name": "digits-rows"}, limit=600)
    x = keras.Input((8, 8), name="rows")
    h = L.LSTM(24, name="lstm")(x)
    model = keras.Model(x, L.Dense(10, activation="softmax", name="digit")(h), name="lstm_rows")
    return _fit(model, ds, epochs=8), ds


def project_of(model, dataset_name: str):
    """A project holding ``model``'s graph and weights, with a registered dataset."""
    from models.build import graph_from_model
    from models.project import new_project

    project = new_project(graph_from_model(model))
    project.dataset = {"source": "builtin", "name": dataset_name}
    project.weights[project.main_name] = model.get_weights()
    return project
