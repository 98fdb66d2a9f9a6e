"""Digit images paired with short captions, each telling only part of the answer.

The task is the digit (10 classes). The **image** is the 8x8 digit with only
its top rows visible (the rest blanked), so similar tops stay ambiguous. The
**caption** is three tokens: the digit's parity ("even" / "odd") and size
("small" for 0-4, "large" for 5-9) in random order, then "digit"; it narrows
the answer to two or three digits but never to one. Together they decide it.
"""
from __future__ import annotations

import numpy as np

from models.data import DataError, RawData, register_builtin

WORDS = [".", "even", "odd", "small", "large", "digit"]  # id 0 is padding


def captions(labels: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    """Three token ids per label: parity and size words in random order, then "digit"."""
    labels = np.asarray(labels)
    parity = np.where(labels % 2 == 0, WORDS.index("even"), WORDS.index("odd"))
    size = np.where(labels < 5, WORDS.index("small"), WORDS.index("large"))
    swap = rng.random(len(labels)) < 0.5
    first, second = np.where(swap, size, parity), np.where(swap, parity, size)
    return np.stack([first, second, np.full(len(labels), WORDS.index("digit"))], axis=1).astype(np.int32)


def load_digits_captions(seed: int = 0, visible_rows: int = 3, **_) -> RawData:
    """The digits, each as a partly blanked image plus a caption (see the module docstring)."""
    from sklearn.datasets import load_digits

    if not 1 <= int(visible_rows) <= 8:
        raise DataError(f"visible_rows must be from 1 to 8; got {visible_rows}")
    bunch = load_digits()
    images = (bunch.images / 16.0).astype(np.float32)[..., None]
    images[:, int(visible_rows):] = 0.0
    labels = bunch.target.astype(np.int32)
    x = {"caption": captions(labels, np.random.default_rng([seed, 21])), "image": images}
    return RawData(
        x=x, y=labels, task="classification", class_names=[str(i) for i in range(10)],
        modality="image", target_name="digit",
        notes=[f"8x8 digit images with only the top {visible_rows} rows visible (the rest set to 0)",
               "captions of 3 tokens: parity and size words in random order, then 'digit' "
               f"(ids: {', '.join(f'{i} {w}' for i, w in enumerate(WORDS) if i)})"])


register_builtin("digits-captions", task="classification",
                 shape={"caption": (3,), "image": (8, 8, 1)}, classes=10,
                 description="digits as a partly hidden image plus a 3-word caption (parity, "
                             "size); neither alone tells the digit",
                 load=load_digits_captions)
