"""Digits split by class, for learning that must carry over to classes never trained on.

* ``digits-novel``: the training and validation splits hold the base
  classes (0-4 by default), the test split only the others (5-9), for
  few-shot learning: a model trained on the base classes is tested on
  episodes of the novel ones.
* ``digits-attributes``: each class is described by nine yes/no
  attributes: the segments a seven-segment display lights for it (top bar,
  upper right...) and where it has a closed loop; the targets are those
  attribute vectors. Three classes (3, 7 and 9 by default)
  never appear in training or validation, only in the test split, for
  zero-shot learning: a model that reads the attributes off an image can
  name a class it has only seen described.
"""
from __future__ import annotations

import numpy as np

from models.data import DataError, Dataset, register_builtin

# The seven segments of a digital display (everyone knows which a digit lights) and its loops.
ATTRIBUTES = ["top bar", "upper right", "lower right", "bottom bar", "lower left", "upper left",
              "middle bar", "loop at the top", "loop at the bottom"]

# One row per digit: the segments a seven-segment display lights for it, then its closed loops.
CLASS_ATTRIBUTES = np.array([
    [1, 1, 1, 1, 1, 1, 0, 1, 1],  # 0: a ring, a loop top to bottom
    [0, 1, 1, 0, 0, 0, 0, 0, 0],  # 1
    [1, 1, 0, 1, 1, 0, 1, 0, 0],  # 2
    [1, 1, 1, 1, 0, 0, 1, 0, 0],  # 3
    [0, 1, 1, 0, 0, 1, 1, 0, 0],  # 4
    [1, 0, 1, 1, 0, 1, 1, 0, 0],  # 5
    [1, 0, 1, 1, 1, 1, 1, 0, 1],  # 6: the loop is the lower half
    [1, 1, 1, 0, 0, 0, 0, 0, 0],  # 7
    [1, 1, 1, 1, 1, 1, 1, 1, 1],  # 8: a loop above another
    [1, 1, 1, 1, 0, 1, 1, 1, 0],  # 9: the loop is the upper half
], dtype=np.float32)

UNSEEN = (3, 7, 9)
BASE = (0, 1, 2, 3, 4)


def _digits():
    from sklearn.datasets import load_digits

    bunch = load_digits()
    return (bunch.images / 16.0).astype(np.float32)[..., None], bunch.target.astype(np.int32)


def _classes(value, name: str) -> list[int]:
    try:
        classes = sorted({int(c) for c in value})
    except (TypeError, ValueError):
        raise DataError(f"{name} must be a list of digits 0-9; got {value!r}") from None
    if not classes or classes[0] < 0 or classes[-1] > 9 or len(classes) > 8:
        raise DataError(f"{name} must name between 1 and 8 of the digits 0-9; got {value!r}")
    return classes


def _split(x, y, held_out: list[int], seed: int, val_fraction: float = 0.15):
    """Train and validation from the classes kept, test from the classes held out."""
    rng = np.random.default_rng(seed)
    out = np.isin(y, held_out)
    keep = np.flatnonzero(~out)
    rng.shuffle(keep)
    n_val = int(round(len(keep) * val_fraction))
    return keep[n_val:], keep[:n_val], np.flatnonzero(out)


def load_novel(seed: int = 0, base_classes=BASE, **_) -> Dataset:
    """Base classes in train and validation, the other digits in test (labels are the digits)."""
    base = _classes(base_classes, "base_classes")
    x, y = _digits()
    novel = [c for c in range(10) if c not in base]
    tr, va, te = _split(x, y, novel, seed)
    return Dataset(x_train=x[tr], y_train=y[tr], x_val=x[va], y_val=y[va], x_test=x[te],
                   y_test=y[te], task="classification", class_names=[str(i) for i in range(10)],
                   name="digits-novel", modality="image", target_name="digit",
                   notes=["8x8 digit images, pixel values scaled from 0..16 to [0, 1]",
                          f"train and validation: digits {', '.join(map(str, base))}; test: "
                          f"digits {', '.join(map(str, novel))}, never seen in training"])


def load_attributes(seed: int = 0, unseen=UNSEEN, **_) -> Dataset:
    """Targets are each image's class attributes; the unseen classes are only in test."""
    held = _classes(unseen, "unseen")
    x, y = _digits()
    tr, va, te = _split(x, y, held, seed)
    a = CLASS_ATTRIBUTES[y]
    return Dataset(x_train=x[tr], y_train=a[tr], x_val=x[va], y_val=a[va], x_test=x[te],
                   y_test=a[te], task="regression", feature_names=None, name="digits-attributes",
                   modality="image", target_name="attributes",
                   notes=["8x8 digit images, pixel values scaled from 0..16 to [0, 1]",
                          "targets: the 9 attributes of the image's class, the display segments it lights and its loops (" + ", ".join(ATTRIBUTES) + ")",
                          f"digits {', '.join(map(str, held))} are only in the test split: "
                          "a model meets them by their attributes alone"])


def digit_of_attributes(a) -> np.ndarray:
    """The digit whose attribute row each row of ``a`` is (rows are unique per class)."""
    a = np.asarray(a, np.float32)
    return np.argmin(np.abs(a[:, None, :] - CLASS_ATTRIBUTES[None]).sum(-1), axis=1)


register_builtin("digits-novel", task="classification", shape=(8, 8, 1), classes=10,
                 description="digits 0-4 to train on, 5-9 only in test (few-shot episodes)",
                 load=load_novel)
register_builtin("digits-attributes", task="regression", shape=(8, 8, 1), classes=None,
                 description="digits with 9 attributes per class (display segments, loops); 3, 7 and 9 only in test "
                             "(zero-shot)", load=load_attributes)
