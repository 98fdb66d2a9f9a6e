"""Digits split by class, for learning that must carry over to classes never trained on.

* ``digits-novel``: the training and validation splits hold the base
  classes (0-4 by default), the test split only the others (5-9), for
  few-shot learning: a model trained on the base classes is tested on
  episodes of the novel ones.
* ``digits-attributes``: each class is described by eight yes/no
  attributes, four for each half of the image: the segments a
  seven-segment display lights for it (top bar, upper left...) and where it
  has a closed loop; the targets are those attribute vectors. Three classes
  (3, 7 and 9 by default) never appear in training or validation, only in
  the test split, for zero-shot learning: a model that reads the attributes
  off an image can name a class it has only seen described. The training
  split also holds made-up digits glued from the top half of one seen digit
  and the bottom half of another (``composites``, with each half's
  attributes), so that each half's attributes are learned from that half.
"""
from __future__ import annotations

import numpy as np

from models.data import DataError, Dataset, register_builtin

# Where a seven-segment display lights a digit (everyone knows which segments make which
# digit) and where the digit has a closed loop, told apart for its top and bottom halves.
ATTRIBUTES = ["top bar", "upper left", "upper right", "loop at the top",
              "lower left", "lower right", "bottom bar", "loop at the bottom"]
TOP = 4  # the first four describe the top half of the image, the others the bottom half
_SEGMENTS = {0: "abcdef", 1: "bc", 2: "abdeg", 3: "abcdg", 4: "bcfg", 5: "acdfg", 6: "acdefg",
             7: "abc", 8: "abcdefg", 9: "abcdfg"}  # a top, b upper right, c lower right...
_LOOPS = {0: (1, 1), 6: (0, 1), 8: (1, 1), 9: (1, 0)}  # (top, bottom)


def _describe(digit: int) -> list[int]:
    seg, (top, bottom) = _SEGMENTS[digit], _LOOPS.get(digit, (0, 0))
    return [*(int(c in seg) for c in "afb"), top, *(int(c in seg) for c in "ecd"), bottom]


# One row per digit, one column per attribute.
CLASS_ATTRIBUTES = np.array([_describe(d) for d in range(10)], dtype=np.float32)

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


def composites(x, y, n: int, rng) -> tuple[np.ndarray, np.ndarray]:
    """``n`` images made of the top half of one image and the bottom half of another, and
    their attributes (the top's from the first digit's description, the bottom's from the
    second's)."""
    i, j = rng.integers(0, len(x), n), rng.integers(0, len(x), n)
    half = x.shape[1] // 2
    images = np.concatenate([x[i, :half], x[j, half:]], axis=1)
    attributes = np.concatenate([CLASS_ATTRIBUTES[y[i], :TOP], CLASS_ATTRIBUTES[y[j], TOP:]], 1)
    return images, attributes


def load_attributes(seed: int = 0, unseen=UNSEEN, composites_n: int = 4000, **_) -> Dataset:
    """Targets are each image's class attributes; the unseen classes are only in test."""
    held = _classes(unseen, "unseen")
    rows = {tuple(CLASS_ATTRIBUTES[c]) for c in held}
    if len(rows) < len(held):
        raise DataError(f"unseen digits {held} include two with the same description; "
                        "they cannot be told apart by their attributes")
    x, y = _digits()
    tr, va, te = _split(x, y, held, seed)
    cx, ca = composites(x[tr], y[tr], int(composites_n), np.random.default_rng(seed + 1))
    a = CLASS_ATTRIBUTES[y]
    return Dataset(x_train=np.concatenate([x[tr], cx]), y_train=np.concatenate([a[tr], ca]),
                   x_val=x[va], y_val=a[va], x_test=x[te], y_test=a[te], task="regression",
                   name="digits-attributes", modality="image", target_name="attributes",
                   notes=["8x8 digit images, pixel values scaled from 0..16 to [0, 1]",
                          "targets: the 8 attributes of the image's class (" + ", ".join(ATTRIBUTES) + ")",
                          f"digits {', '.join(map(str, held))} are only in the test split: "
                          "a model meets them by their attributes alone",
                          f"the training split adds {len(cx)} made-up digits, the top half of one "
                          "seen digit on the bottom half of another"])


def digit_of_attributes(a) -> np.ndarray:
    """The digit whose attribute row each row of ``a`` is (rows are unique per class)."""
    a = np.asarray(a, np.float32)
    return np.argmin(np.abs(a[:, None, :] - CLASS_ATTRIBUTES[None]).sum(-1), axis=1)


register_builtin("digits-novel", task="classification", shape=(8, 8, 1), classes=10,
                 description="digits 0-4 to train on, 5-9 only in test (few-shot episodes)",
                 load=load_novel)
register_builtin("digits-attributes", task="regression", shape=(8, 8, 1), classes=None,
                 description="digits with 8 attributes per class (display segments, loops); 3, 7 and 9 only in test "
                             "(zero-shot)", load=load_attributes)
