"""Digits split by class for transfer learning: 0-4 to learn from, 5-9 with few labels.

``digits-0-4`` holds every 8x8 digit image of classes 0 to 4 (split as usual);
``digits-5-9`` relabels classes 5 to 9 as 0 to 4 (named "5" to "9") and keeps
only ``labels_per_class`` labelled training images per class (20 by default),
every other image of those classes being the test split. There is no
validation split: with 100 labels, holding some back would leave fewer to
learn from, so models on it train for a fixed number of epochs.
"""
from __future__ import annotations

import numpy as np

from models.data import Dataset, RawData, _digits, register_builtin

FIRST = (0, 1, 2, 3, 4)
SECOND = (5, 6, 7, 8, 9)


def _classes(classes) -> tuple[np.ndarray, np.ndarray]:
    raw = _digits("image")
    keep = np.isin(raw.y, classes)
    lookup = {c: i for i, c in enumerate(classes)}
    return raw.x[keep], np.array([lookup[int(v)] for v in raw.y[keep]], dtype=np.int32)


def load_first_half(seed: int = 0, **_options) -> RawData:
    x, y = _classes(FIRST)
    return RawData(x=x, y=y, task="classification", class_names=[str(c) for c in FIRST],
                   notes=["8x8 digit images of classes 0 to 4, pixel values in [0, 1]"],
                   modality="image", target_name="digit")


def load_second_half(seed: int = 0, labels_per_class: int = 20, **_options) -> Dataset:
    from models.data import DataError

    x, y = _classes(SECOND)
    per_class = int(labels_per_class)
    smallest = int(np.bincount(y).min())
    if not 1 <= per_class < smallest:
        raise DataError(f"labels_per_class must be between 1 and {smallest - 1}; got {labels_per_class}")
    rng = np.random.default_rng(seed)
    train = np.sort(np.concatenate([rng.permutation(np.flatnonzero(y == c))[:per_class]
                                    for c in range(len(SECOND))]))
    test = np.setdiff1d(np.arange(len(y)), train)
    empty = x[:0]
    return Dataset(x_train=x[train], y_train=y[train], x_val=empty, y_val=y[:0],
                   x_test=x[test], y_test=y[test], task="classification",
                   class_names=[str(c) for c in SECOND], name="digits-5-9", modality="image",
                   target_name="digit",
                   notes=["8x8 digit images of classes 5 to 9, labelled 0 to 4 in that order",
                          f"{per_class} labelled training images per class ({len(train)} in all, "
                          f"seed {seed}); the other {len(test)} are the test split; no "
                          "validation split"])


register_builtin("digits-0-4", task="classification", shape=(8, 8, 1), classes=5,
                 description="digit images of classes 0 to 4 (a base model learns from them)",
                 load=load_first_half)
register_builtin("digits-5-9", task="classification", shape=(8, 8, 1), classes=5,
                 description="digit images of classes 5 to 9 with only 20 labels per class "
                             "(set \"labels_per_class\")",
                 load=load_second_half)
