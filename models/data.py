"""Data sources for training: built-in sets, CSV tables, NumPy archives, image folders, keras.datasets.

Everything a user can point LayerForge at comes back as a :class:`Dataset`:
numpy arrays already split into train, validation and test, plus what the app
needs to show and to shape a model's head (task, class names, input shape and
the notes that say what was done to the data).

Only the ``keras`` source imports TensorFlow. Built-ins use scikit-learn and
numpy, CSV files the standard ``csv`` module, image folders PIL.

Decisions worth knowing:

* Splits are drawn with ``numpy.random.default_rng(seed)``. Classification
  splits are stratified when every class has at least
  ``_MIN_PER_CLASS`` samples; forecasting windows are split in time order
  (train first, test last) so the model never trains on the future.
* Standardization uses the training split's statistics only.
* CSV: the target is the last column unless named. A text target is a
  classification target with its classes in sorted order. A numeric target is
  a classification target when every value is a whole number and there are
  either exactly two values, or at most 20 values with at least 5 rows per
  value on average; otherwise it is a regression target. A spec's ``"task"``
  overrides the guess.
* CSV: a column counts as numeric when at least 80% of its filled cells are
  numbers; the other cells are then reported as errors with their line.
  Text feature columns are one-hot encoded (categories of the training split,
  sorted); a text column with more than ``_MAX_CATEGORIES`` distinct values,
  or more than half as many values as training rows (at least 10), is an id
  or free text and is dropped with a note.
"""
from __future__ import annotations

import csv
import io
import math
import os
import socket
import urllib.error
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

TASKS = ("classification", "binary", "regression", "forecast", "sequence")
SOURCES = ("builtin", "csv", "npz", "images", "keras")

_MIN_PER_CLASS = 3      # below this, a class cannot reach every split: split at random
_MIN_ROWS = 10          # fewer rows than this cannot make three meaningful splits
_MAX_CATEGORIES = 50    # text feature columns with more values are ids or free text
_NUMERIC_SHARE = 0.8    # share of filled cells that must be numbers for a numeric column
_MISSING = frozenset({"", "na", "n/a", "nan", "null", "none", "?"})
_IMAGE_SUFFIXES = frozenset({".png", ".jpg", ".jpeg", ".bmp", ".gif"})
_MAX_IMAGE_SIDE = 64
_PREVIEW_COLUMNS = 16


class DataError(ValueError):
    """Data that cannot be loaded as asked; the message says what and where."""


# --------------------------------------------------------------------------- arrays


def _is_multi(x) -> bool:
    return isinstance(x, (dict, list, tuple))


def _first(x):
    if isinstance(x, dict):
        return next(iter(x.values()))
    if isinstance(x, (list, tuple)):
        return x[0]
    return x


def _count(x) -> int:
    return 0 if x is None else int(len(_first(x)))


def _take(x, idx):
    if isinstance(x, dict):
        return {k: v[idx] for k, v in x.items()}
    if isinstance(x, (list, tuple)):
        return [v[idx] for v in x]
    return x[idx]


def _sample_shape(x):
    if isinstance(x, dict):
        return {k: tuple(int(d) for d in v.shape[1:]) for k, v in x.items()}
    if isinstance(x, (list, tuple)):
        return [tuple(int(d) for d in v.shape[1:]) for v in x]
    return tuple(int(d) for d in x.shape[1:])


def _plural(n: int, word: str) -> str:
    return f"{n} {word}" + ("" if n == 1 else "s")


# --------------------------------------------------------------------------- Dataset


@dataclass
class Dataset:
    """Data ready for training, split three ways.

    Attributes:
        x_train, x_val, x_test: inputs; a numpy array, or for a model with
            several inputs a dict (input name -> array) or a list of arrays.
        y_train, y_val, y_test: targets. Class labels are int32 ``(n,)`` with
            values ``0..num_classes-1``; regression and forecast targets are
            float32 ``(n, k)``.
        task: ``"classification"`` (several classes), ``"binary"`` (two
            classes, one sigmoid unit), ``"regression"``, ``"forecast"`` (the
            next value of a series from a window of past values) or
            ``"sequence"`` (a target per time step).
        feature_names: names of the last input axis (tabular columns), if known.
        class_names: the class for each label value, if the task has classes.
        input_shape: the shape of one sample (a dict or list of shapes for
            several inputs); derived from ``x_train`` when not given.
        num_classes: the number of classes; derived from ``class_names``.
        name: a short name for the data.
        notes: what was done to the data, in words, in order.
        modality: how a sample is best shown: ``"table"``, ``"image"``,
            ``"series"`` or ``"text"`` (integer token ids).
        target_name: the target column's name, for tables.
    """

    x_train: Any
    y_train: np.ndarray
    x_val: Any
    y_val: np.ndarray
    x_test: Any
    y_test: np.ndarray
    task: str = "classification"
    feature_names: list[str] | None = None
    class_names: list[str] | None = None
    input_shape: Any = None
    num_classes: int | None = None
    name: str = "data"
    notes: list[str] = field(default_factory=list)
    modality: str = "table"
    target_name: str | None = None

    def __post_init__(self):
        if self.task not in TASKS:
            raise DataError(f"unknown task '{self.task}'; use one of {', '.join(TASKS)}")
        if self.input_shape is None:
            self.input_shape = _sample_shape(self.x_train)
        if self.num_classes is None and self.class_names is not None:
            self.num_classes = len(self.class_names)

    @property
    def n_train(self) -> int:
        return _count(self.x_train)

    @property
    def n_val(self) -> int:
        return _count(self.x_val)

    @property
    def n_test(self) -> int:
        return _count(self.x_test)

    @property
    def has_classes(self) -> bool:
        return self.task in ("classification", "binary") and bool(self.num_classes)

    def class_counts(self, split: str = "train") -> np.ndarray | None:
        """Samples per class in ``split`` ("train", "val" or "test"); None without classes."""
        if not self.has_classes:
            return None
        y = {"train": self.y_train, "val": self.y_val, "test": self.y_test}[split]
        return np.bincount(np.asarray(y, dtype=np.int64).ravel(), minlength=self.num_classes)

    def output_spec(self) -> dict:
        """The natural output head for this data.

        Returns:
            ``{"units", "activation", "loss", "metrics"}``. For ``"sequence"``
            the units are per time step.
        """
        if self.task == "binary":
            return {"units": 1, "activation": "sigmoid", "loss": "binary_crossentropy",
                    "metrics": ["accuracy"]}
        if self.num_classes and self.task in ("classification", "sequence"):
            return {"units": int(self.num_classes), "activation": "softmax",
                    "loss": "sparse_categorical_crossentropy", "metrics": ["accuracy"]}
        y = np.asarray(self.y_train)
        units = int(y.shape[-1]) if y.ndim >= 2 else 1
        if self.task != "sequence" and y.ndim >= 2:
            units = int(np.prod(y.shape[1:]))
        return {"units": units, "activation": "linear", "loss": "mse", "metrics": ["mae"]}

    def describe(self) -> str:
        """A few lines for people: task, sizes, shapes, classes and notes."""
        head = f"{self.name}: {self.task}"
        if self.has_classes:
            head += f", {self.num_classes} classes"
        lines = [head,
                 f"  samples: {self.n_train} train, {self.n_val} validation, {self.n_test} test",
                 f"  input shape per sample: {self.input_shape}"]
        if self.task not in ("classification", "binary"):
            lines.append(f"  target shape per sample: {tuple(np.asarray(self.y_train).shape[1:])}")
        counts = self.class_counts("train")
        if counts is not None:
            names = self.class_names or [str(i) for i in range(len(counts))]
            shown = [f"{n} ({c})" for n, c in zip(names, counts)]
            if len(shown) > 12:
                shown = shown[:12] + [f"... {len(shown) - 12} more"]
            lines.append("  training samples per class: " + ", ".join(shown))
        if self.feature_names:
            names = self.feature_names
            text = ", ".join(names[:12]) + (f", ... {len(names) - 12} more" if len(names) > 12 else "")
            lines.append(f"  features: {text}")
        lines += [f"  - {note}" for note in self.notes]
        return "\n".join(lines)

    def _label_text(self, value) -> str:
        if self.task == "sequence" and self.class_names:  # a class per step: show them all
            ids = [int(v) for v in np.asarray(value).ravel()]
            names = [self.class_names[v] if 0 <= v < len(self.class_names) else str(v)
                     for v in ids[:20]]
            return " ".join(names) + (" ..." if len(ids) > 20 else "")
        if self.has_classes:
            v = int(np.asarray(value).ravel()[0])
            return self.class_names[v] if self.class_names and v < len(self.class_names) else str(v)
        flat = np.asarray(value, dtype=np.float64).ravel()
        return ", ".join(f"{v:.4g}" for v in flat[:4]) + (" ..." if flat.size > 4 else "")

    def preview(self, n: int = 8) -> dict:
        """The first ``n`` training samples, for a table or an image grid.

        Returns:
            ``{"kind": "images", "images": float32 [n, h, w, c], "labels": [...]}``
            for images, otherwise ``{"kind": "table", "columns": [...],
            "rows": [[...], ...]}`` with the target in the last column (long
            samples are cut to their first, or for a series last, values).
        """
        k = max(0, min(int(n), self.n_train))
        labels = [self._label_text(v) for v in self.y_train[:k]]
        x = _take(self.x_train, slice(0, k))
        if self.modality == "image" and not _is_multi(x):
            images = np.asarray(x, dtype=np.float32)
            if images.ndim == 3:
                images = images[..., None]
            return {"kind": "images", "images": images, "labels": labels}
        target = self.target_name or "target"
        if self.modality == "text" and not _is_multi(x):
            rows = []
            for sample, label in zip(np.asarray(x), labels):
                ids = [int(t) for t in sample if t != 0]
                rows.append([" ".join(map(str, ids[:20])) + (" ..." if len(ids) > 20 else ""), label])
            return {"kind": "table", "columns": ["token ids", target], "rows": rows}
        columns, values = self._flat_columns(x, k)
        if len(columns) > _PREVIEW_COLUMNS:
            more = len(columns) - (_PREVIEW_COLUMNS - 1)
            if self.modality == "series":  # the latest steps matter most
                columns = [f"... {more} earlier"] + columns[-(_PREVIEW_COLUMNS - 1):]
                values = [["..."] + row[-(_PREVIEW_COLUMNS - 1):] for row in values]
            else:
                columns = columns[:_PREVIEW_COLUMNS - 1] + [f"... {more} more"]
                values = [row[:_PREVIEW_COLUMNS - 1] + ["..."] for row in values]
        if not (self.has_classes or self.class_names) and np.asarray(self.y_train[:k]).ndim <= 2 \
                and np.asarray(self.y_train).size == self.n_train:
            labels = [round(float(np.asarray(v).ravel()[0]), 4) for v in self.y_train[:k]]
        rows = [row + [label] for row, label in zip(values, labels)]
        return {"kind": "table", "columns": columns + [target], "rows": rows}

    def _flat_columns(self, x, k):
        parts = list(x.items()) if isinstance(x, dict) else (
            [(f"input {i}", v) for i, v in enumerate(x)] if isinstance(x, (list, tuple)) else [(None, x)])
        columns, blocks = [], []
        for prefix, arr in parts:
            arr = np.asarray(arr).reshape(k, -1)
            width = arr.shape[1]
            if prefix is None and self.feature_names and len(self.feature_names) == width:
                names = list(self.feature_names)
            elif prefix is None and self.modality == "series":
                steps = int(np.asarray(x).shape[1]) if np.asarray(x).ndim > 1 else width
                per = max(1, width // max(1, steps))
                names = [f"t-{steps - i // per}" + (f"[{i % per}]" if per > 1 else "")
                         for i in range(width)]
            else:
                base = prefix or "x"
                names = [f"{base}[{i}]" for i in range(width)]
            columns += names
            blocks.append(arr)
        rows = []
        for i in range(k):
            row = []
            for arr in blocks:
                row += [round(float(v), 4) if np.issubdtype(arr.dtype, np.floating) else int(v)
                        for v in arr[i]]
            rows.append(row)
        return columns, rows


# --------------------------------------------------------------------------- splits


def _check_fractions(val_fraction: float, test_fraction: float) -> None:
    for label, value in (("val_fraction", val_fraction), ("test_fraction", test_fraction)):
        if not (isinstance(value, (int, float)) and 0 <= value < 1):
            raise DataError(f"{label} must be a number from 0 up to (not including) 1; got {value!r}")
    if val_fraction + test_fraction >= 1:
        raise DataError(f"val_fraction + test_fraction must leave some data to train on; "
                        f"got {val_fraction} + {test_fraction}")


def _balanced_order(labels: np.ndarray | None,
                    rng: np.random.Generator) -> tuple[np.ndarray | None, bool]:
    """An order of all indices whose every prefix holds each class in proportion.

    Each class's samples are shuffled and spread evenly over [0, 1) (with a
    random offset per class); sorting by that position interleaves the classes,
    so taking the first k samples is a stratified sample of size k.
    Returns the order (None without labels) and whether it is stratified.
    """
    if labels is None:
        return None, False
    n = len(labels)
    classes, counts = np.unique(labels, return_counts=True)
    if len(classes) < 2 or counts.min() < _MIN_PER_CLASS:
        return rng.permutation(n), False
    position = np.empty(n, dtype=np.float64)
    for c in classes:
        idx = np.flatnonzero(labels == c)
        shuffled = idx[rng.permutation(len(idx))]
        position[shuffled] = (np.arange(len(idx)) + rng.uniform()) / len(idx)
    return np.lexsort((rng.random(n), position)), True


def _limit_indices(n: int, limit: int | None, *, seed: int, labels=None, ordered=False) -> np.ndarray:
    if limit is None or limit >= n:
        return np.arange(n)
    if ordered:
        return np.arange(limit)
    rng = np.random.default_rng([seed, 1])
    order, _ = _balanced_order(labels, rng)
    if order is None:
        order = rng.permutation(n)
    return np.sort(order[:limit])


def _split_indices(n: int, *, seed: int, val_fraction: float, test_fraction: float,
                   labels=None, ordered=False) -> tuple[np.ndarray, np.ndarray, np.ndarray, str]:
    """Train, validation and test indices plus a note saying how they were drawn."""
    n_test = int(round(n * test_fraction))
    n_val = int(round(n * val_fraction))
    if test_fraction > 0:
        n_test = max(1, n_test)
    if val_fraction > 0:
        n_val = max(1, n_val)
    n_train = n - n_test - n_val
    if n_train < 1:
        raise DataError(f"{n} samples are too few to split into train, validation and test")
    rng = np.random.default_rng(seed)
    if ordered:
        train = np.arange(n_train)
        val = np.arange(n_train, n_train + n_val)
        test = np.arange(n_train + n_val, n)
        how = "in time order (train first, test last)"
    else:
        order, stratified = _balanced_order(labels, rng)
        if order is None:
            order = rng.permutation(n)
        test, val, train = order[:n_test], order[n_test:n_test + n_val], order[n_test + n_val:]
        train, val, test = (rng.permutation(part) for part in (train, val, test))
        if stratified:
            how = "stratified by class"
        elif labels is not None:
            how = (f"at random (not stratified: some class has fewer than {_MIN_PER_CLASS} samples)")
        else:
            how = "at random"
    note = f"split {n_train} train / {n_val} validation / {n_test} test, {how}, seed {seed}"
    return train, val, test, note


def _standardize(parts: list, columns=None) -> tuple[list, list[int]]:
    """Standardize float columns of 2-D arrays with the first part's (train) statistics.

    Returns the new parts and the indices of columns that were constant in train.
    """
    train = parts[0].astype(np.float64)
    cols = np.arange(train.shape[1]) if columns is None else np.asarray(columns, dtype=np.int64)
    if len(cols) == 0:
        return parts, []
    mean = train[:, cols].mean(axis=0) if len(train) else np.zeros(len(cols))
    std = train[:, cols].std(axis=0) if len(train) else np.ones(len(cols))
    constant = [int(c) for c, s in zip(cols, std) if not s > 1e-12]
    std = np.where(std > 1e-12, std, 1.0)
    out = []
    for part in parts:
        part = part.astype(np.float32, copy=True)
        part[:, cols] = ((part[:, cols] - mean) / std).astype(np.float32)
        out.append(part)
    return out, constant


@dataclass
class _Raw:
    """Unsplit data from a source, before :func:`_finish` splits and scales it."""

    x: Any
    y: np.ndarray
    task: str
    class_names: list[str] | None = None
    feature_names: list[str] | None = None
    notes: list[str] = field(default_factory=list)
    modality: str = "table"
    standardize: bool = False
    ordered: bool = False
    target_name: str | None = None
    x_test: Any = None   # sources with their own test split
    y_test: np.ndarray | None = None
    x_val: Any = None
    y_val: np.ndarray | None = None


def _finish(raw: _Raw, *, name: str, seed: int, val_fraction: float, test_fraction: float,
            limit: int | None) -> Dataset:
    notes = list(raw.notes)
    labels = raw.y if raw.task in ("classification", "binary") else None
    if raw.x_test is not None:
        x_train, y_train = raw.x, raw.y
        x_test, y_test = raw.x_test, raw.y_test
        if limit is not None and _count(x_train) + _count(x_test) > limit:
            share = _count(x_test) / (_count(x_train) + _count(x_test))
            n_test = max(1, int(round(limit * share)))
            keep_tr = _limit_indices(_count(x_train), max(1, limit - n_test), seed=seed, labels=labels)
            keep_te = _limit_indices(_count(x_test), n_test, seed=seed + 1,
                                     labels=y_test if labels is not None else None)
            x_train, y_train = _take(x_train, keep_tr), y_train[keep_tr]
            x_test, y_test = _take(x_test, keep_te), y_test[keep_te]
            notes.append(f"limited to {limit} samples ({len(keep_tr)} train, {len(keep_te)} test)")
        if raw.x_val is not None:
            x_val, y_val = raw.x_val, raw.y_val
            notes.append("kept the source's own train / validation / test splits")
        else:
            tr, va, _, _ = _split_indices(_count(x_train), seed=seed, val_fraction=val_fraction,
                                          test_fraction=0.0,
                                          labels=y_train if labels is not None else None,
                                          ordered=raw.ordered)
            x_val, y_val = _take(x_train, va), y_train[va]
            x_train, y_train = _take(x_train, tr), y_train[tr]
            notes.append(f"kept the source's own test split ({_count(x_test)} samples; test_fraction "
                         f"is not used); validation is {val_fraction:.0%} of the training part "
                         f"({_count(x_val)} samples), seed {seed}")
    else:
        n = _count(raw.x)
        keep = _limit_indices(n, limit, seed=seed, labels=labels, ordered=raw.ordered)
        x, y = raw.x, raw.y
        if len(keep) < n:
            x, y = _take(x, keep), y[keep]
            labels = y if labels is not None else None
            notes.append(f"limited to {len(keep)} of {n} samples"
                         + (" (the first ones, in time order)" if raw.ordered else ""))
        tr, va, te, note = _split_indices(_count(x), seed=seed, val_fraction=val_fraction,
                                          test_fraction=test_fraction, labels=labels,
                                          ordered=raw.ordered)
        x_train, y_train = _take(x, tr), y[tr]
        x_val, y_val = _take(x, va), y[va]
        x_test, y_test = _take(x, te), y[te]
        notes.append(note)
    if raw.standardize and not _is_multi(x_train) and np.asarray(x_train).ndim == 2:
        (x_train, x_val, x_test), constant = _standardize([x_train, x_val, x_test])
        notes.append(f"standardized {_plural(x_train.shape[1], 'numeric column')} with the training split's "
                     "mean and standard deviation")
        if constant:
            names = [raw.feature_names[c] if raw.feature_names else str(c) for c in constant]
            notes.append("constant in the training split (left at 0): " + ", ".join(names))
    return Dataset(x_train=x_train, y_train=y_train, x_val=x_val, y_val=y_val,
                   x_test=x_test, y_test=y_test, task=raw.task, feature_names=raw.feature_names,
                   class_names=raw.class_names, name=name, notes=notes, modality=raw.modality,
                   target_name=raw.target_name)


# --------------------------------------------------------------------------- targets


def _looks_like_classes(values: np.ndarray) -> bool:
    """Whole numbers with two values, or up to 20 values averaging 5+ rows each."""
    if values.size == 0 or not np.all(np.isfinite(values)) or not np.all(values == np.round(values)):
        return False
    k = len(np.unique(values))
    return k == 2 or (k <= 20 and values.size >= 5 * k)


def _encode_classes(values: np.ndarray) -> tuple[np.ndarray, list[str]]:
    """Map values to 0..k-1 in sorted order; class names are the values as text."""
    uniques, codes = np.unique(values, return_inverse=True)
    if np.issubdtype(uniques.dtype, np.floating):
        names = [str(int(v)) if float(v).is_integer() else str(v) for v in uniques]
    else:
        names = [str(v) for v in uniques]
    return codes.astype(np.int32).ravel(), names


def _class_task(k: int) -> str:
    return "binary" if k == 2 else "classification"


def _targets_from_array(y: np.ndarray, task: str | None, class_names, notes: list[str]):
    """Infer (or check) the task for a target array; returns (y, task, class_names)."""
    y = np.asarray(y)
    if task is not None and task not in TASKS:
        raise DataError(f"unknown task '{task}'; use one of {', '.join(TASKS)}")
    if task == "sequence":
        if np.issubdtype(y.dtype, np.integer):
            k = len(class_names) if class_names else int(y.max()) + 1
            return y.astype(np.int32), task, list(class_names) if class_names else [str(i) for i in range(k)]
        return y.astype(np.float32), task, None
    flat = y.reshape(len(y)) if (y.ndim == 2 and y.shape[1] == 1) else y
    if flat.ndim == 2 and task in (None, "classification", "binary") and flat.shape[1] > 1:
        is_onehot = (np.isin(flat, (0, 1)).all() and np.all(flat.sum(axis=1) == 1))
        if is_onehot:
            notes.append(f"targets were one-hot over {flat.shape[1]} classes; converted to class indices")
            names = list(class_names) if class_names else [str(i) for i in range(flat.shape[1])]
            return flat.argmax(axis=1).astype(np.int32), _class_task(flat.shape[1]), names
        if task is not None:
            raise DataError(f"a {task} target needs one label per sample; y has shape {y.shape}")
    if flat.ndim == 1:
        text = flat.dtype.kind in "USO"
        if text and task in ("regression", "forecast"):
            raise DataError(f"the target holds text, so it cannot be a {task} target")
        if text or task in ("classification", "binary") or (
                task is None and _looks_like_classes(flat.astype(np.float64))):
            if (class_names is not None and np.issubdtype(flat.dtype, np.integer)
                    and flat.min() >= 0 and flat.max() < len(class_names)):
                codes, names = flat.astype(np.int32), [str(c) for c in class_names]
            else:
                codes, names = _encode_classes(flat.astype(str) if text else flat)
                if class_names is not None and len(class_names) == len(names):
                    names = [str(c) for c in class_names]
                if not text and not np.array_equal(np.unique(flat), np.arange(len(names))):
                    notes.append(f"labels {', '.join(names[:10])}{' ...' if len(names) > 10 else ''} "
                                 f"mapped to 0..{len(names) - 1} in sorted order")
            if len(names) < 2:
                raise DataError(f"the target has a single value ({names[0]}); there is nothing to learn")
            if task == "binary" and len(names) != 2:
                raise DataError(f"a binary target needs exactly 2 classes; y has {len(names)}")
            return codes, task or _class_task(len(names)), names
        return flat.astype(np.float32).reshape(-1, 1), task or "regression", None
    return y.astype(np.float32), task or "regression", None


# --------------------------------------------------------------------------- arrays in


def dataset_from_arrays(x, y, *, x_test=None, y_test=None, x_val=None, y_val=None,
                        task: str | None = None, name: str = "arrays",
                        class_names: list[str] | None = None,
                        feature_names: list[str] | None = None, modality: str | None = None,
                        standardize: bool = False, seed: int = 0, val_fraction: float = 0.1,
                        test_fraction: float = 0.2, limit: int | None = None) -> Dataset:
    """Make a :class:`Dataset` from arrays already in memory.

    Args:
        x: inputs: an array, or a dict (input name -> array) or list of arrays
            for a model with several inputs.
        y: targets, one per sample.
        x_test, y_test: a test split of your own (then ``test_fraction`` is
            not used); likewise ``x_val, y_val``.
        task: one of ``TASKS``; guessed from ``y`` when None (see the module
            docstring).
        modality: ``"table"``, ``"image"``, ``"series"`` or ``"text"``;
            guessed from the shape of ``x`` when None.
        standardize: standardize a 2-D ``x`` with the training statistics.

    Returns:
        A :class:`Dataset`.
    """
    _check_fractions(val_fraction, test_fraction)
    notes: list[str] = []

    def as_x(value, label):
        if isinstance(value, dict):
            return {str(k): np.asarray(v) for k, v in value.items()}
        if isinstance(value, (list, tuple)) and value and all(isinstance(v, np.ndarray) for v in value):
            return [np.asarray(v) for v in value]
        arr = np.asarray(value)
        if arr.ndim < 1:
            raise DataError(f"{label} must hold one row per sample; got a single value")
        if arr.dtype == np.uint8:
            notes.append(f"{label}: 8-bit values scaled to [0, 1]")
            arr = arr.astype(np.float32) / 255.0
        elif np.issubdtype(arr.dtype, np.floating):
            arr = arr.astype(np.float32)
        elif np.issubdtype(arr.dtype, np.integer) or arr.dtype == bool:
            arr = arr.astype(np.int32)
        else:
            raise DataError(f"{label} must be numeric; it holds {arr.dtype} values")
        if arr.ndim == 1:
            arr = arr[:, None]
        return arr

    x = as_x(x, "x")
    parts = [("x", x, "y", y)]
    if x_test is not None or y_test is not None:
        if x_test is None or y_test is None:
            raise DataError("give both x_test and y_test, or neither")
        x_test = as_x(x_test, "x_test")
        parts.append(("x_test", x_test, "y_test", y_test))
    if x_val is not None or y_val is not None:
        if x_val is None or y_val is None:
            raise DataError("give both x_val and y_val, or neither")
        if x_test is None:
            raise DataError("a validation split of your own needs a test split too (x_test, y_test)")
        x_val = as_x(x_val, "x_val")
        parts.append(("x_val", x_val, "y_val", y_val))
    for xname, xv, yname, yv in parts:
        if _is_multi(xv):
            lengths = {len(v) for v in (xv.values() if isinstance(xv, dict) else xv)}
            if len(lengths) != 1:
                raise DataError(f"the inputs in {xname} have different numbers of samples: {sorted(lengths)}")
        if _count(xv) != len(np.asarray(yv)):
            raise DataError(f"{xname} has {_count(xv)} samples but {yname} has {len(np.asarray(yv))}")
    n_all = sum(_count(p[1]) for p in parts)
    if n_all < _MIN_ROWS:
        raise DataError(f"only {n_all} samples; LayerForge needs at least {_MIN_ROWS} to split "
                        "into train, validation and test")
    # Encode all targets together so every split shares one label mapping.
    ys = [np.asarray(p[3]) for p in parts]
    sizes = np.cumsum([len(v) for v in ys])[:-1]
    try:
        y_all = np.concatenate(ys)
    except ValueError as exc:
        raise DataError(f"the targets of the splits do not have the same shape: {exc}") from None
    y_all, task, class_names = _targets_from_array(y_all, task, class_names, notes)
    y_parts = np.split(y_all, sizes)
    if modality is None:
        first = _first(x)
        if first.ndim == 4 and first.shape[-1] in (1, 3, 4):
            modality = "image"
        elif task == "forecast" or first.ndim == 3:
            modality = "series"
        else:
            modality = "table"
    raw = _Raw(x=x, y=y_parts[0], task=task, class_names=class_names,
               feature_names=list(feature_names) if feature_names is not None else None,
               notes=notes, modality=modality, standardize=standardize,
               ordered=task == "forecast")
    if x_test is not None:
        raw.x_test, raw.y_test = x_test, y_parts[1]
    if x_val is not None:
        raw.x_val, raw.y_val = x_val, y_parts[2]
    return _finish(raw, name=name, seed=seed, val_fraction=val_fraction,
                   test_fraction=test_fraction, limit=limit)


# --------------------------------------------------------------------------- built-ins


def _sklearn_table(loader_name: str) -> _Raw:
    from sklearn import datasets as skd

    bunch = getattr(skd, loader_name)()
    names = [str(n) for n in bunch.target_names]
    return _Raw(x=bunch.data.astype(np.float32), y=bunch.target.astype(np.int32),
                task=_class_task(len(names)), class_names=names,
                feature_names=[str(f) for f in bunch.feature_names], standardize=True,
                target_name="class")


def _digits(layout: str) -> _Raw:
    from sklearn.datasets import load_digits

    bunch = load_digits()
    images = (bunch.images / 16.0).astype(np.float32)  # pixel values are 0..16
    shapes = {"image": images[..., None], "rows": images, "flat": images.reshape(len(images), 64)}
    modality = {"image": "image", "rows": "image", "flat": "table"}[layout]
    notes = ["8x8 digit images, pixel values scaled from 0..16 to [0, 1]"]
    if layout == "rows":
        notes.append("each image is a sequence of 8 rows (steps) of 8 pixels (features)")
    return _Raw(x=shapes[layout], y=bunch.target.astype(np.int32), task="classification",
                class_names=[str(i) for i in range(10)], notes=notes, modality=modality,
                target_name="digit")


def _two_class(generator: str) -> _Raw:
    from sklearn import datasets as skd

    if generator == "moons":
        x, y = skd.make_moons(n_samples=1000, noise=0.2, random_state=0)
    else:
        x, y = skd.make_circles(n_samples=1000, noise=0.08, factor=0.5, random_state=0)
    return _Raw(x=x.astype(np.float32), y=y.astype(np.int32), task="binary",
                class_names=["0", "1"], feature_names=["x1", "x2"], target_name="class",
                notes=[f"1000 points from scikit-learn's make_{generator} (fixed generator seed 0)"])


def _spirals(arms: int = 3, n: int = 1000) -> _Raw:
    if arms not in (2, 3):
        raise DataError(f"spirals has 2 or 3 arms; got {arms}")
    rng = np.random.default_rng(0)
    xs, ys = [], []
    for arm, count in enumerate(len(a) for a in np.array_split(np.arange(n), arms)):
        t = np.sort(rng.uniform(0.0, 1.0, count))  # 0 = centre, 1 = outer end
        angle = t * 3.0 * np.pi + arm * 2.0 * np.pi / arms
        radius = t + rng.normal(0.0, 0.025, count)
        xs.append(np.stack([radius * np.cos(angle), radius * np.sin(angle)], axis=1))
        ys.append(np.full(count, arm))
    return _Raw(x=np.concatenate(xs).astype(np.float32), y=np.concatenate(ys).astype(np.int32),
                task=_class_task(arms), class_names=[str(i) for i in range(arms)],
                feature_names=["x1", "x2"], target_name="arm",
                notes=[f"{n} points on {arms} interleaved spiral arms, 1.5 turns each, radius noise 0.025"])


def _sine(window: int = 32, n: int = 1000) -> _Raw:
    rng = np.random.default_rng(0)
    t = np.arange(n + window, dtype=np.float64)
    series = (np.sin(2 * np.pi * t / 50.0) + 0.5 * np.sin(2 * np.pi * t / 13.0 + 1.0)
              + 0.1 * rng.normal(size=t.shape))
    idx = np.arange(window)[None, :] + np.arange(n)[:, None]
    x = series[idx][..., None].astype(np.float32)
    y = series[window:window + n, None].astype(np.float32)
    return _Raw(x=x, y=y, task="forecast", feature_names=["value"], modality="series",
                ordered=True, target_name="next value",
                notes=[f"{n} windows of {window} steps of sin(2*pi*t/50) + 0.5*sin(2*pi*t/13 + 1) "
                       "+ noise (sd 0.1); the target is the next value"])


_BUILTINS: dict[str, dict] = {
    "digits": {"task": "classification", "shape": (8, 8, 1), "classes": 10,
               "description": "1,797 handwritten digits as 8x8 grayscale images (scikit-learn)",
               "load": lambda **o: _digits("image")},
    "digits-rows": {"task": "classification", "shape": (8, 8), "classes": 10,
                    "description": "the digits read row by row: 8 steps of 8 pixels, for recurrent models",
                    "load": lambda **o: _digits("rows")},
    "digits-flat": {"task": "classification", "shape": (64,), "classes": 10,
                    "description": "the digits as 64 pixel values in a row, for dense networks",
                    "load": lambda **o: _digits("flat")},
    "iris": {"task": "classification", "shape": (4,), "classes": 3,
             "description": "150 iris flowers, 4 measurements, 3 species",
             "load": lambda **o: _sklearn_table("load_iris")},
    "wine": {"task": "classification", "shape": (13,), "classes": 3,
             "description": "178 wines, 13 chemical measurements, 3 cultivars",
             "load": lambda **o: _sklearn_table("load_wine")},
    "breast-cancer": {"task": "binary", "shape": (30,), "classes": 2,
                      "description": "569 breast tissue samples, 30 cell-nucleus measures, malignant or benign",
                      "load": lambda **o: _sklearn_table("load_breast_cancer")},
    "moons": {"task": "binary", "shape": (2,), "classes": 2,
              "description": "1,000 noisy points on two interleaving half circles",
              "load": lambda **o: _two_class("moons")},
    "circles": {"task": "binary", "shape": (2,), "classes": 2,
                "description": "1,000 noisy points on a small circle inside a large one",
                "load": lambda **o: _two_class("circles")},
    "spirals": {"task": "classification", "shape": (2,), "classes": 3,
                "description": "1,000 points on three interleaved spiral arms (set \"arms\": 2 for two)",
                "load": lambda **o: _spirals(int(o.get("arms", 3)))},
    "sine": {"task": "forecast", "shape": (32, 1), "classes": None,
             "description": "a noisy sum of two sine waves: predict the next value from the last 32",
             "load": lambda **o: _sine()},
}


#: Raw, unsplit data as a built-in's loader returns it (split and scaled by the loader's caller).
RawData = _Raw

_EXTRA_LOADED = False


def register_builtin(name: str, *, task: str, shape, classes: int | None, description: str,
                     load) -> None:
    """Add a built-in dataset (the gallery's generated tasks register theirs this way).

    Args:
        name: the name users give (``builtin:NAME``).
        task, shape, classes, description: what :func:`list_builtin` shows.
        load: ``load(seed=..., **spec_options)`` returning :class:`RawData` (split
            and scaled here, with the recipe's fractions) or a ready
            :class:`Dataset` (for tasks with their own splits, e.g. a graph
            with labelled nodes).
    """
    _BUILTINS[name] = {"task": task, "shape": shape, "classes": classes,
                       "description": description, "load": load}


def _load_extra_builtins() -> None:
    """The generated datasets of the gallery live in :mod:`models.datasets` (imported once)."""
    global _EXTRA_LOADED
    if not _EXTRA_LOADED:
        _EXTRA_LOADED = True
        import models.datasets  # noqa: F401  (each module registers its datasets)


def list_builtin() -> list[dict]:
    """The built-in datasets (all offline): name, task, description, shape, classes."""
    _load_extra_builtins()
    return [{"name": name, "task": b["task"], "description": b["description"],
             "shape": tuple(b["shape"]) if isinstance(b["shape"], (list, tuple)) else b["shape"],
             "classes": b["classes"]} for name, b in _BUILTINS.items()]


def _load_builtin(name: str, spec: dict, **common) -> Dataset:
    entry = _BUILTINS.get(str(name).lower())
    if entry is None:
        _load_extra_builtins()
        entry = _BUILTINS.get(str(name).lower())
    if entry is None:
        raise DataError(f"no built-in dataset named '{name}'; the built-ins are: {', '.join(_BUILTINS)}")
    options = {k: v for k, v in spec.items() if k not in ("source", "name")}
    raw = entry["load"](seed=common["seed"], **options)
    label = str(name).lower()
    if label == "spirals" and int(spec.get("arms", 3)) == 2:
        label = "spirals-2"
    if isinstance(raw, Dataset):
        return raw
    return _finish(raw, name=label, **common)


# --------------------------------------------------------------------------- CSV


def _read_text(path: Path, notes: list[str]) -> str:
    data = path.read_bytes()
    try:
        return data.decode("utf-8-sig")
    except UnicodeDecodeError:
        # Spreadsheets on Windows often save CSV as cp1252; latin-1 decodes anything.
        for encoding in ("cp1252", "latin-1"):
            try:
                text = data.decode(encoding)
            except UnicodeDecodeError:
                continue
            notes.append(f"the file is not UTF-8; read it as {encoding}")
            return text
    raise DataError(f"{path.name}: could not decode the file as text")  # pragma: no cover


def _guess_delimiter(text: str) -> str:
    first = text.split("\n", 1)[0]
    counts = {d: first.count(d) for d in (",", ";", "\t", "|")}
    best = max(counts, key=counts.get)
    return best if counts[best] > 0 else ","


def _parse_csv(path: Path, notes: list[str]):
    """Header, data rows, and the line on which each row starts (1-based)."""
    text = _read_text(path, notes)
    delimiter = _guess_delimiter(text)
    reader = csv.reader(io.StringIO(text, newline=""), delimiter=delimiter)
    header, rows, starts = None, [], []
    previous_end = 0
    try:
        for record in reader:
            start, previous_end = previous_end + 1, reader.line_num
            if not record or all(not cell.strip() for cell in record):
                continue
            if header is None:
                header, header_line = [c.strip() for c in record], start
                continue
            if len(record) != len(header):
                trailing = record[len(header):]
                if len(record) > len(header) and all(not c.strip() for c in trailing):
                    record = record[:len(header)]  # a trailing delimiter
                else:
                    raise DataError(f"{path.name}, line {start}: {len(record)} cells, but the header "
                                    f"(line {header_line}) names {len(header)} columns")
            rows.append(record)
            starts.append(start)
    except csv.Error as exc:
        raise DataError(f"{path.name}, line {reader.line_num}: cannot read this CSV line ({exc})") from None
    if header is None:
        raise DataError(f"{path.name} is empty")
    if all(_parse_number(c) is not None for c in header):
        raise DataError(f"{path.name}: the first line ({', '.join(header[:6])}) looks like data; "
                        "LayerForge needs a header row that names the columns")
    seen: dict[str, int] = {}
    for j, column in enumerate(header):
        column = column or f"column {j + 1}"
        if column in seen:
            seen[column] += 1
            column = f"{column} ({seen[column]})"
        else:
            seen[column] = 1
        header[j] = column
    delim_name = {",": "comma", ";": "semicolon", "\t": "tab", "|": "bar"}[delimiter]
    notes.append(f"read {len(rows)} rows and {len(header)} columns from {path.name} ({delim_name}-separated)")
    return header, rows, starts


def _parse_number(cell: str) -> float | None:
    try:
        return float(cell)
    except ValueError:
        return None


def _cell_line(row: list[str], j: int, start: int) -> int:
    # A quoted cell may span lines: the cell starts after the line breaks of the cells before it.
    return start + sum(cell.count("\n") for cell in row[:j])


class _Column:
    """One CSV column: its cells stripped, which are missing, and its numbers if numeric."""

    def __init__(self, name: str, j: int, rows: list[list[str]]):
        self.name, self.j = name, j
        self.cells = [row[j].strip() for row in rows]
        self.missing = np.array([c.lower() in _MISSING for c in self.cells], dtype=bool)
        values = np.full(len(self.cells), np.nan)
        bad = []
        for i, cell in enumerate(self.cells):
            if self.missing[i]:
                continue
            number = _parse_number(cell)
            if number is None or not math.isfinite(number):
                bad.append(i)
            else:
                values[i] = number
        filled = int((~self.missing).sum())
        self.numeric = filled > 0 and (filled - len(bad)) >= _NUMERIC_SHARE * filled
        self.values, self.bad = values, bad

    def raise_bad(self, rows, starts, path: Path) -> None:
        i = self.bad[0]
        line = _cell_line(rows[i], self.j, starts[i])
        cell = self.cells[i]
        what = "is not a finite number" if _parse_number(cell) is not None else "is not a number"
        more = f" (and {len(self.bad) - 1} more cells like it)" if len(self.bad) > 1 else ""
        raise DataError(f"{path.name}: column '{self.name}', line {line}: '{cell}' {what}{more}")

    def raise_missing(self, i: int, rows, starts, path: Path) -> None:
        line = _cell_line(rows[i], self.j, starts[i])
        cell = self.cells[i]
        what = "is empty" if cell == "" else f"holds '{cell}', which marks a missing value"
        raise DataError(f"{path.name}: column '{self.name}', line {line}: the cell {what}. Fill it in, "
                        "or load with \"missing\": \"drop\" to skip rows with missing cells")


def _load_csv(spec: dict, *, target: str | None, seed: int, val_fraction: float,
              test_fraction: float, limit: int | None) -> Dataset:
    path = Path(spec["path"])
    missing_mode = spec.get("missing", "error")
    if missing_mode not in ("error", "drop"):
        raise DataError(f"missing must be 'error' or 'drop'; got {missing_mode!r}")
    notes: list[str] = []
    header, rows, starts = _parse_csv(path, notes)
    target = target if target is not None else spec.get("target")
    if target is None:
        target = header[-1]
    if target not in header:
        raise DataError(f"{path.name} has no column '{target}'; its columns are: "
                        + ", ".join(f"'{h}'" for h in header))
    if len(header) < 2:
        raise DataError(f"{path.name} has only the target column '{target}'; it needs feature columns too")
    columns = [_Column(name, j, rows) for j, name in enumerate(header)]
    tcol = columns[header.index(target)]
    features = [c for c in columns if c is not tcol]

    keep = ~tcol.missing
    if (~keep).any():
        notes.append(f"dropped {_plural(int((~keep).sum()), 'row')} with an empty target")
    if tcol.numeric and tcol.bad:
        tcol.raise_bad(rows, starts, path)
    for col in features:
        if col.missing.all():
            notes.append(f"dropped column '{col.name}': it is empty")
            continue
        if col.numeric and col.bad:
            col.raise_bad(rows, starts, path)
        holes = np.flatnonzero(col.missing & keep)
        if len(holes):
            if missing_mode == "error":
                col.raise_missing(int(holes[0]), rows, starts, path)
    features = [c for c in features if not c.missing.all()]
    if missing_mode == "drop":
        holes = np.zeros(len(rows), dtype=bool)
        for col in features:
            holes |= col.missing
        holes &= keep
        if holes.any():
            notes.append(f"dropped {_plural(int(holes.sum()), 'row')} with missing cells in feature columns")
        keep &= ~holes
    rows_kept = np.flatnonzero(keep)
    if len(rows_kept) < _MIN_ROWS:
        raise DataError(f"{path.name}: only {len(rows_kept)} usable data rows; LayerForge needs at "
                        f"least {_MIN_ROWS} to split into train, validation and test")

    # The target.
    task = spec.get("task")
    if task is not None and task not in ("classification", "binary", "regression"):
        raise DataError(f"a CSV target can be 'classification', 'binary' or 'regression'; got {task!r}")
    if not tcol.numeric:
        if task == "regression":
            raise DataError(f"column '{target}' holds text, so it cannot be a regression target")
        y, class_names = _encode_classes(np.array([tcol.cells[i] for i in rows_kept]))
        kind = "text"
    else:
        values = tcol.values[rows_kept]
        wants_classes = task in ("classification", "binary") or (
            task is None and _looks_like_classes(values))
        if wants_classes:
            y, class_names = _encode_classes(values)
            kind = "whole numbers"
        else:
            y, class_names = values.astype(np.float32).reshape(-1, 1), None
    if class_names is not None:
        if len(class_names) < 2:
            raise DataError(f"column '{target}' has a single value ('{class_names[0]}'); "
                            "there is nothing to learn")
        task = _class_task(len(class_names))
        mapping = ", ".join(f"{n}={i}" for i, n in enumerate(class_names[:10]))
        if len(class_names) > 10:
            mapping += ", ..."
        notes.append(f"target '{target}' ({kind}): {task} with {len(class_names)} classes, "
                     f"encoded in sorted order: {mapping}")
    else:
        task = "regression"
        notes.append(f"target '{target}': regression on its numeric values (left unscaled)")

    # Limit and split before encoding features: statistics and categories come from train only.
    labels = y if class_names is not None else None
    pick = _limit_indices(len(rows_kept), limit, seed=seed, labels=labels)
    if len(pick) < len(rows_kept):
        notes.append(f"limited to {len(pick)} of {len(rows_kept)} rows")
        rows_kept, y = rows_kept[pick], y[pick]
        labels = y if class_names is not None else None
    tr, va, te, split_note = _split_indices(len(rows_kept), seed=seed, val_fraction=val_fraction,
                                            test_fraction=test_fraction, labels=labels)

    blocks, names, numeric_cols, one_hot, dropped, unseen = [], [], [], [], [], 0
    for col in features:
        if col.numeric:
            numeric_cols.append(len(names))
            names.append(col.name)
            blocks.append(col.values[rows_kept][:, None])
            continue
        cells = np.array([col.cells[i] for i in rows_kept], dtype=object)
        categories = sorted(set(cells[tr]))
        # An id or free-text column has about as many values as rows: no category to learn.
        if len(categories) > min(_MAX_CATEGORIES, max(10, len(tr) // 2)):
            dropped.append(f"'{col.name}' ({len(categories)} distinct values in {len(tr)} training rows)")
            continue
        index = {c: k for k, c in enumerate(categories)}
        block = np.zeros((len(cells), len(categories)))
        for i, cell in enumerate(cells):
            k = index.get(cell)
            if k is None:
                unseen += 1
            else:
                block[i, k] = 1.0
        blocks.append(block)
        names += [f"{col.name}={c}" for c in categories]
        one_hot.append(f"{col.name} ({len(categories)} values)")
    if dropped:
        notes.append("dropped text columns with too many values to one-hot encode (ids or free "
                     f"text?): {', '.join(dropped)}")
    if not blocks:
        raise DataError(f"{path.name}: no usable feature columns are left besides the target '{target}'")
    x = np.concatenate(blocks, axis=1)
    parts, constant = _standardize([x[tr], x[va], x[te]], numeric_cols)
    if numeric_cols:
        notes.append(f"standardized {_plural(len(numeric_cols), 'numeric column')} with the training split's "
                     "mean and standard deviation")
    if constant:
        notes.append("constant in the training split (left at 0): "
                     + ", ".join(f"'{names[c]}'" for c in constant))
    if one_hot:
        notes.append(f"one-hot encoded {_plural(len(one_hot), 'text column')} (categories of the training "
                     f"split, sorted): {', '.join(one_hot)}")
    if unseen:
        notes.append(f"{unseen} validation/test cells held text values not seen in training "
                     "(encoded as all zeros)")
    notes.append(split_note)
    return Dataset(x_train=parts[0], y_train=y[tr], x_val=parts[1], y_val=y[va],
                   x_test=parts[2], y_test=y[te], task=task, feature_names=names,
                   class_names=class_names, name=path.stem, notes=notes, modality="table",
                   target_name=target)


# --------------------------------------------------------------------------- NPZ


def _load_npz(spec: dict, **common) -> Dataset:
    import zipfile

    path = Path(spec["path"])
    try:
        archive = np.load(path, allow_pickle=False)
    except (OSError, ValueError, zipfile.BadZipFile) as exc:
        raise DataError(f"{path.name} is not a readable NumPy .npz archive ({exc})") from None
    if not isinstance(archive, np.lib.npyio.NpzFile):
        raise DataError(f"{path.name} holds a single array; LayerForge needs an .npz archive with "
                        "arrays 'x' and 'y'")
    with archive:
        keys = sorted(archive.files)
        if "x_train" in keys or "y_train" in keys:
            wanted = ["x_train", "y_train"]
        else:
            wanted = ["x", "y"]
        absent = [k for k in wanted if k not in keys]
        if absent:
            raise DataError(f"{path.name} is missing {', '.join(repr(k) for k in absent)}: LayerForge "
                            "reads arrays 'x' and 'y' (or 'x_train' and 'y_train', with optional "
                            "'x_test', 'y_test', 'x_val', 'y_val'); the file has: "
                            + (", ".join(repr(k) for k in keys) or "no arrays"))
        try:
            arrays = {k: archive[k] for k in keys}
        except ValueError as exc:
            raise DataError(f"{path.name} holds Python objects, which LayerForge does not load "
                            f"(only plain numeric arrays): {exc}") from None
    names = {k: [str(v) for v in arrays[k].ravel()] if k in arrays else None
             for k in ("class_names", "feature_names")}
    x, y = arrays[wanted[0]], arrays[wanted[1]]
    extra = {}
    if wanted[0] == "x_train":
        for split in ("test", "val"):
            pair = [f"x_{split}", f"y_{split}"]
            present = [k for k in pair if k in arrays]
            if len(present) == 1:
                raise DataError(f"{path.name} has '{present[0]}' but not its partner "
                                f"'{(set(pair) - set(present)).pop()}'")
            if present:
                extra[pair[0]], extra[pair[1]] = arrays[pair[0]], arrays[pair[1]]
        if "x_val" in extra and "x_test" not in extra:
            raise DataError(f"{path.name} has a validation split but no test split ('x_test', 'y_test')")
    ds = dataset_from_arrays(x, y, task=spec.get("task"), name=path.stem,
                             class_names=names["class_names"], feature_names=names["feature_names"],
                             standardize=bool(spec.get("standardize", False)), **extra, **common)
    ds.notes.insert(0, f"read arrays {', '.join(keys)} from {path.name}")
    return ds


# --------------------------------------------------------------------------- image folders


def _load_images(spec: dict, *, seed: int, val_fraction: float, test_fraction: float,
                 limit: int | None) -> Dataset:
    from PIL import Image

    root = Path(spec["path"])
    mode = {"rgb": "RGB", "grayscale": "L"}.get(str(spec.get("color_mode", "rgb")).lower())
    if mode is None:
        raise DataError(f"color_mode must be 'rgb' or 'grayscale'; got {spec.get('color_mode')!r}")
    if not root.is_dir():
        raise DataError(f"no folder at {root}")
    entries = [p for p in root.iterdir() if not p.name.startswith(".")]
    if not entries:
        raise DataError(f"the folder {root.name} is empty; put one subfolder of images per class in it")
    class_dirs = sorted((p for p in entries if p.is_dir()), key=lambda p: p.name)
    if not class_dirs:
        raise DataError(f"the folder {root.name} has no subfolders; LayerForge needs one subfolder per "
                        "class (e.g. cats/ and dogs/), each holding that class's images")
    notes: list[str] = []
    files, labels, class_names, skipped_other = [], [], [], 0
    for d in class_dirs:
        found = []
        for p in sorted(d.rglob("*")):
            if p.is_file() and not p.name.startswith("."):
                if p.suffix.lower() in _IMAGE_SUFFIXES:
                    found.append(p)
                else:
                    skipped_other += 1
        if not found:
            notes.append(f"skipped subfolder '{d.name}': no images in it")
            continue
        files += found
        labels += [len(class_names)] * len(found)
        class_names.append(d.name)
    if skipped_other:
        notes.append(f"ignored {_plural(skipped_other, 'file')} not ending in .png, .jpg, .jpeg, .bmp or .gif")
    if len(class_names) < 2:
        raise DataError(f"the folder {root.name} needs images in at least two class subfolders; "
                        f"found {len(class_names)}")
    labels = np.array(labels, dtype=np.int32)
    pick = _limit_indices(len(files), limit, seed=seed, labels=labels)
    if len(pick) < len(files):
        notes.append(f"limited to {len(pick)} of {len(files)} images")
        files, labels = [files[i] for i in pick], labels[pick]

    size = spec.get("image_size")
    if size is not None:
        try:
            height, width = (int(v) for v in size)
        except (TypeError, ValueError):
            raise DataError(f"image_size must be [height, width]; got {size!r}") from None
        if height < 1 or width < 1:
            raise DataError(f"image_size must be positive; got {size!r}")
    images, kept, bad = [], [], []
    for i, p in enumerate(files):
        try:
            with Image.open(p) as img:
                img.load()
                if img.mode == "P":  # palette images may carry transparency; go through RGBA
                    img = img.convert("RGBA")
                img = img.convert(mode)
                if size is None:
                    w, h = img.size
                    scale = min(1.0, _MAX_IMAGE_SIDE / max(w, h))
                    height, width = max(1, round(h * scale)), max(1, round(w * scale))
                    size = (height, width)
                    notes.append(f"image size {height}x{width} (from the first image, {h}x{w}"
                                 + (", scaled down to at most 64 pixels a side)" if scale < 1 else ")"))
                if img.size != (width, height):
                    img = img.resize((width, height), Image.Resampling.BILINEAR)
                images.append(np.asarray(img, dtype=np.uint8))
                kept.append(i)
        except Exception as exc:  # noqa: BLE001  any file PIL cannot decode is skipped, not fatal
            bad.append(f"{p.relative_to(root).as_posix()} ({type(exc).__name__})")
    if bad:
        shown = ", ".join(bad[:5]) + (f" and {len(bad) - 5} more" if len(bad) > 5 else "")
        notes.append(f"skipped {len(bad)} unreadable image{'s' if len(bad) > 1 else ''}: {shown}")
    if not images:
        raise DataError(f"none of the images in {root.name} could be read")
    x = np.stack(images).astype(np.float32) / 255.0
    if x.ndim == 3:
        x = x[..., None]
    notes.append(f"{len(images)} images, {'RGB' if mode == 'RGB' else 'grayscale'}, "
                 "pixel values scaled to [0, 1]")
    labels = labels[kept]
    present = np.unique(labels)
    if len(present) < 2:
        raise DataError(f"the readable images in {root.name} are all of one class")
    raw = _Raw(x=x, y=labels, task=_class_task(len(class_names)), class_names=class_names,
               notes=notes, modality="image", target_name="class")
    return _finish(raw, name=root.name, seed=seed, val_fraction=val_fraction,
                   test_fraction=test_fraction, limit=None)


# --------------------------------------------------------------------------- keras.datasets


_KERAS_SIZES = {"mnist": "11 MB", "fashion_mnist": "30 MB", "cifar10": "163 MB",
                "cifar100": "161 MB", "boston_housing": "57 KB", "imdb": "17 MB", "reuters": "2 MB"}
_FASHION = ["T-shirt/top", "Trouser", "Pullover", "Dress", "Coat", "Sandal", "Shirt", "Sneaker",
            "Bag", "Ankle boot"]
_CIFAR10 = ["airplane", "automobile", "bird", "cat", "deer", "dog", "frog", "horse", "ship", "truck"]
_BOSTON = ["CRIM", "ZN", "INDUS", "CHAS", "NOX", "RM", "AGE", "DIS", "RAD", "TAX", "PTRATIO", "B",
           "LSTAT"]


def _is_offline(exc: BaseException) -> bool:
    seen = set()
    while exc is not None and id(exc) not in seen:
        seen.add(id(exc))
        if isinstance(exc, (urllib.error.URLError, ConnectionError, socket.timeout, socket.gaierror)):
            return True
        # keras.utils.get_file re-raises a URLError as a plain Exception with this text.
        if "URL fetch failure" in str(exc):
            return True
        exc = exc.__cause__ or exc.__context__
    return False


def _keras_load_data(name: str, **kwargs):
    from models import backend

    keras = backend.keras()
    return getattr(keras.datasets, name).load_data(**kwargs)


def _pad_sequences(seqs, length: int) -> np.ndarray:
    """Keep the last ``length`` tokens of each sequence; pad in front with 0."""
    out = np.zeros((len(seqs), length), dtype=np.int32)
    for i, seq in enumerate(seqs):
        tail = list(seq)[-length:]
        if tail:
            out[i, length - len(tail):] = tail
    return out


def _load_keras(name: str, spec: dict, **common) -> Dataset:
    name = str(name).lower()
    if name not in _KERAS_SIZES:
        raise DataError(f"keras.datasets has no '{name}' that LayerForge can load; choose one of: "
                        + ", ".join(_KERAS_SIZES))
    kwargs = {}
    if name in ("imdb", "reuters"):
        kwargs["num_words"] = int(spec.get("num_words", 10000))
    try:
        (x_train, y_train), (x_test, y_test) = _keras_load_data(name, **kwargs)
    except Exception as exc:  # noqa: BLE001  Keras wraps download failures in a bare Exception
        if _is_offline(exc):
            raise DataError(f"keras.datasets '{name}' needs an internet connection the first time "
                            f"(it downloads about {_KERAS_SIZES[name]}); LayerForge found none. Use a "
                            "built-in dataset such as builtin:digits, or your own data.") from None
        raise DataError(f"keras.datasets '{name}' could not be loaded: {exc}") from None
    notes = [f"keras.datasets.{name} with its own train/test split"]
    y_train, y_test = np.asarray(y_train).ravel(), np.asarray(y_test).ravel()
    if name in ("mnist", "fashion_mnist", "cifar10", "cifar100"):
        x_train, x_test = (np.asarray(a) for a in (x_train, x_test))
        if x_train.ndim == 3:
            x_train, x_test = x_train[..., None], x_test[..., None]
        x_train = x_train.astype(np.float32) / 255.0
        x_test = x_test.astype(np.float32) / 255.0
        notes.append("pixel values scaled from 0..255 to [0, 1]")
        k = 100 if name == "cifar100" else 10
        classes = {"fashion_mnist": _FASHION, "cifar10": _CIFAR10}.get(name, [str(i) for i in range(k)])
        raw = _Raw(x=x_train, y=y_train.astype(np.int32), task="classification",
                   class_names=list(classes), notes=notes, modality="image", target_name="class",
                   x_test=x_test, y_test=y_test.astype(np.int32))
    elif name == "boston_housing":
        raw = _Raw(x=np.asarray(x_train, np.float32), y=y_train.astype(np.float32).reshape(-1, 1),
                   task="regression", feature_names=list(_BOSTON), notes=notes, standardize=True,
                   target_name="MEDV", x_test=np.asarray(x_test, np.float32),
                   y_test=y_test.astype(np.float32).reshape(-1, 1))
    else:
        length = int(spec.get("maxlen", 200))
        x_train, x_test = _pad_sequences(x_train, length), _pad_sequences(x_test, length)
        notes.append(f"word ids of the {kwargs['num_words']} most frequent words; each text cut to "
                     f"its last {length} words or padded in front with 0")
        k = 2 if name == "imdb" else int(max(y_train.max(), y_test.max())) + 1
        classes = ["negative", "positive"] if name == "imdb" else [str(i) for i in range(k)]
        raw = _Raw(x=x_train, y=y_train.astype(np.int32), task=_class_task(k), class_names=classes,
                   notes=notes, modality="text", target_name="label", x_test=x_test,
                   y_test=y_test.astype(np.int32))
    return _finish(raw, name=name, **common)


# --------------------------------------------------------------------------- entry point


def _normalize_spec(spec) -> dict:
    if isinstance(spec, os.PathLike):
        spec = os.fspath(spec)
    if isinstance(spec, str):
        text = spec.strip()
        for prefix in ("builtin", "keras"):
            if text.lower().startswith(prefix + ":"):
                return {"source": prefix, "name": text.split(":", 1)[1].strip()}
        path = Path(text).expanduser()
        if path.is_dir():
            return {"source": "images", "path": str(path)}
        if not path.exists():
            raise DataError(f"no file or folder at {text} (for a built-in dataset write builtin:NAME)")
        suffix = path.suffix.lower()
        if suffix in (".csv", ".tsv", ".txt"):
            return {"source": "csv", "path": str(path)}
        if suffix == ".npz":
            return {"source": "npz", "path": str(path)}
        raise DataError(f"LayerForge cannot read '{suffix or path.name}' files; use a .csv table, "
                        "a .npz archive, a folder of images or builtin:NAME")
    if not isinstance(spec, dict):
        raise DataError(f"a data spec is a dict or a string; got {type(spec).__name__}")
    spec = dict(spec)
    source = spec.get("source")
    if source not in SOURCES:
        raise DataError(f"unknown data source {source!r}; use one of {', '.join(SOURCES)}")
    if source in ("builtin", "keras") and not spec.get("name"):
        raise DataError(f"a {source} data spec needs a \"name\"")
    if source in ("csv", "npz", "images"):
        if not spec.get("path"):
            raise DataError(f"a {source} data spec needs a \"path\"")
        spec["path"] = str(Path(os.fspath(spec["path"])).expanduser())
        if source != "images" and not Path(spec["path"]).is_file():
            raise DataError(f"no file at {spec['path']}")
    return spec


def load_dataset(spec: dict | str, *, seed: int = 0, val_fraction: float = 0.1,
                 test_fraction: float = 0.2, target: str | None = None,
                 limit: int | None = None) -> Dataset:
    """Load data for training, split into train, validation and test.

    Args:
        spec: ``"builtin:digits"``, ``"keras:mnist"``, a path to a ``.csv``,
            a ``.npz`` or a folder of images, or a dict with ``"source"``
            (``"builtin"``, ``"csv"``, ``"npz"``, ``"images"``, ``"keras"``)
            and that source's options: ``name``; ``path``, ``target``,
            ``task``, ``missing`` (``"error"`` or ``"drop"``); ``image_size``,
            ``color_mode``; ``arms`` (spirals); ``num_words``, ``maxlen``
            (imdb, reuters); ``standardize`` (npz).
        seed: seeds the split (and the subsample when ``limit`` is set).
        val_fraction: share of the samples held out for validation.
        test_fraction: share held out for the final test (sources with their
            own test split keep it instead).
        target: the CSV target column (default: the spec's, else the last).
        limit: use at most this many samples (a stratified sample for classes).

    Returns:
        A :class:`Dataset`.

    Raises:
        DataError: for anything the user can fix; the message says what and where.
    """
    _check_fractions(val_fraction, test_fraction)
    if limit is not None and (not isinstance(limit, (int, np.integer)) or limit < _MIN_ROWS):
        raise DataError(f"limit must be a whole number of at least {_MIN_ROWS}; got {limit!r}")
    spec = _normalize_spec(spec)
    common = {"seed": int(seed), "val_fraction": val_fraction, "test_fraction": test_fraction,
              "limit": None if limit is None else int(limit)}
    source = spec["source"]
    if source == "builtin":
        return _load_builtin(spec["name"], spec, **common)
    if source == "csv":
        return _load_csv(spec, target=target, **common)
    if source == "npz":
        return _load_npz(spec, **common)
    if source == "images":
        return _load_images(spec, **common)
    return _load_keras(spec["name"], spec, **common)
