"""What an explanation looks at: a built model, its data, and the one number it explains.

A :class:`Subject` wraps a Keras model and a :class:`models.data.Dataset` and
gives every method the same view of them:

* the model's inputs as a list, in ``model.inputs`` order, each with its
  modality (``table``, ``image``, ``series``, ``text``), its feature names and
  whether it is differentiable (float) or holds token ids (int);
* the samples to explain (from the test split), a background drawn from the
  training split and a baseline (the background mean; the padding id 0 for
  token inputs);
* a *head*: the model cut down to the one output a method explains, a
  ``[batch, 1]`` tensor (one class of one output, at one position of a
  sequence output). Every method, gradient or perturbation, explains a head.
* feature groups per input (table columns, image patches, time steps, token
  positions): the units that perturbation methods switch on and off.

Nothing here depends on Qt; TensorFlow is imported when a model is built.
"""
from __future__ import annotations

import hashlib
import json
import math
from dataclasses import dataclass
from typing import Any

import numpy as np

MAX_GROUPS = 64        # perturbation methods switch at most this many units per input
PREDICT_BATCH = 256    # rows per model call in perturbation methods


class ExplainError(ValueError):
    """An explanation cannot be made as asked; the message says why and what to do."""


@dataclass
class InputInfo:
    """One model input as explanations see it.

    Attributes:
        name: the Keras input's name.
        shape: the shape of one sample.
        modality: ``"table"``, ``"image"``, ``"series"`` or ``"text"``.
        tokens: True for integer inputs (token ids): no gradients flow into them.
        feature_names: names of a table input's columns (or a series' features).
    """

    name: str
    shape: tuple
    modality: str
    tokens: bool = False
    feature_names: list[str] | None = None

    def to_json(self) -> dict:
        return {"name": self.name, "shape": list(self.shape), "modality": self.modality,
                "tokens": self.tokens, "feature_names": self.feature_names}


def _digest(*parts) -> str:
    h = hashlib.blake2b(digest_size=16)
    for p in parts:
        if isinstance(p, np.ndarray):
            h.update(str((p.shape, p.dtype.str)).encode())
            h.update(np.ascontiguousarray(p).tobytes())
        else:
            h.update(json.dumps(p, sort_keys=True, default=str).encode())
    return h.hexdigest()


def as_list(x, names: list[str]) -> list[np.ndarray]:
    """Data of a dataset (an array, a list or a dict by input name) as a list in ``names`` order."""
    if isinstance(x, dict):
        missing = [n for n in names if n not in x]
        if missing:
            raise ExplainError(f"the data has no input {missing[0]!r}; the model takes "
                               f"{', '.join(names)} and the data holds {', '.join(x)}")
        return [np.asarray(x[n]) for n in names]
    if isinstance(x, (list, tuple)):
        if len(x) != len(names):
            raise ExplainError(f"the data has {len(x)} inputs; the model takes {len(names)} "
                               f"({', '.join(names)})")
        return [np.asarray(v) for v in x]
    if len(names) != 1:
        raise ExplainError(f"the data has one input; the model takes {len(names)} "
                           f"({', '.join(names)})")
    return [np.asarray(x)]


def take(xs: list[np.ndarray], idx) -> list[np.ndarray]:
    return [x[idx] for x in xs]


def _guess_modality(shape: tuple, tokens: bool) -> str:
    if tokens:
        return "text"
    if len(shape) == 3:
        return "image"
    if len(shape) == 2:
        return "series"
    return "table"


class Subject:
    """A model and its data, ready to be explained.

    Args:
        model: a built Keras model (functional or sequential), with its trained weights.
        dataset: the project's :class:`models.data.Dataset`.
        split: where samples are taken from (``"test"``; an empty split falls
            back to validation, then training).
        background: how many training samples make the background.
        seed: for drawing the background.
    """

    def __init__(self, model, dataset, *, split: str = "test", background: int = 100, seed: int = 0):
        self.model = model
        self.dataset = dataset
        self.names = [t.name for t in model.inputs]
        x_by_split = {"test": dataset.x_test, "val": dataset.x_val, "train": dataset.x_train}
        y_by_split = {"test": dataset.y_test, "val": dataset.y_val, "train": dataset.y_train}
        order = [split] + [s for s in ("test", "val", "train") if s != split]
        self.split = next((s for s in order if _count(x_by_split[s])), split)
        self.x = as_list(x_by_split[self.split], self.names)
        self.y = np.asarray(y_by_split[self.split])
        train = as_list(dataset.x_train, self.names)
        self._check_shapes(train)
        self.inputs = [self._info(t, x) for t, x in zip(model.inputs, train)]
        rng = np.random.default_rng(seed)
        n_train = len(train[0])
        pick = np.sort(rng.choice(n_train, size=min(background, n_train), replace=False))
        self.background = [x[pick] for x in train]
        self.baseline = [np.zeros_like(b[:1]) if info.tokens else b.mean(0, keepdims=True).astype(b.dtype)
                         for b, info in zip(self.background, self.inputs)]
        self._heads: dict[tuple, Any] = {}
        self._memo: dict[str, Any] = {}  # per-subject results of costly checks
        self.model_digest = _model_digest(model)
        self.data_digest = _digest(*self.background)

    # ---------------------------------------------------------------- inputs

    def _check_shapes(self, train: list[np.ndarray]) -> None:
        for t, x in zip(self.model.inputs, train):
            want = tuple(t.shape[1:])
            got = tuple(x.shape[1:])
            if len(want) != len(got) or any(w is not None and w != g for w, g in zip(want, got)):
                raise ExplainError(
                    f"the data does not fit the model: input {t.name!r} takes samples of shape "
                    f"{tuple(d for d in want)}, the data's are {got}; adapt the model to the data "
                    "(Data ▸ Adapt) or choose other data")

    def _info(self, tensor, x: np.ndarray) -> InputInfo:
        shape = tuple(int(d) for d in x.shape[1:])
        tokens = "int" in str(tensor.dtype) or np.issubdtype(x.dtype, np.integer)
        ds = self.dataset
        if len(self.names) == 1:
            modality = ds.modality if ds.modality in ("table", "image", "series", "text") else \
                _guess_modality(shape, tokens)
            if tokens:
                modality = "text"
        else:
            modality = _guess_modality(shape, tokens)
        names = None
        if modality in ("table", "series") and ds.feature_names and len(ds.feature_names) == shape[-1] \
                and len(self.names) == 1:
            names = [str(f) for f in ds.feature_names]
        elif modality == "table":
            names = [f"{tensor.name}[{i}]" if len(self.names) > 1 else f"x[{i}]"
                     for i in range(int(np.prod(shape)))]
        return InputInfo(tensor.name, shape, modality, tokens, names)

    @property
    def n(self) -> int:
        return len(self.x[0])

    def sample(self, index: int) -> list[np.ndarray]:
        """One sample of the split, as a batch of one per input."""
        if not 0 <= index < self.n:
            raise ExplainError(f"sample {index} does not exist: the {self.split} split has "
                               f"{self.n} samples (0 to {self.n - 1})")
        return take(self.x, slice(index, index + 1))

    def sample_digest(self, index: int) -> str:
        return _digest(*self.sample(index))

    def model_input(self, xs: list[np.ndarray]):
        """Data in the structure the model itself takes (a dict for dict inputs)."""
        if isinstance(self.model.input, dict):
            return dict(zip(self.names, xs))
        return xs[0] if len(xs) == 1 else list(xs)

    # ---------------------------------------------------------------- outputs

    def output_shape(self, output: int = 0) -> tuple:
        outs = self.model.outputs
        if not 0 <= output < len(outs):
            raise ExplainError(f"the model has {len(outs)} output(s); output {output} does not exist")
        return tuple(outs[output].shape[1:])

    def positions(self, output: int = 0) -> int | None:
        """The length of a sequence output (one prediction per step), else None."""
        shape = self.output_shape(output)
        return int(shape[0]) if len(shape) == 2 and shape[0] else None

    def classes(self, output: int = 0) -> int:
        shape = self.output_shape(output)
        return int(np.prod([d or 1 for d in (shape[-1:] if len(shape) == 2 else shape)])) or 1

    def class_names(self, output: int = 0) -> list[str]:
        k = self.classes(output)
        names = list(self.dataset.class_names or [])
        if k == 1:
            if self.dataset.task == "binary" and len(names) == 2:
                return [f"P({names[1]})"]
            return [self.dataset.target_name or "output"]
        return names if len(names) == k else [f"output {i}" for i in range(k)]

    def head(self, column: int | None, *, output: int = 0, position: int | None = None):
        """The model cut to one number per sample (``column`` None: every class, ``[batch, K]``).

        A sequence output ``[batch, steps, K]`` is read at ``position`` (default
        the last step); larger outputs are flattened.
        """
        key = (output, position, column)
        if key not in self._heads:
            from models import backend

            keras = backend.keras()
            out = self.model.outputs[output]
            if len(out.shape) == 3:
                steps = int(out.shape[1])
                position = steps - 1 if position is None else int(position)
                if not 0 <= position < steps:
                    raise ExplainError(f"position {position} does not exist: the output has {steps} steps")
            with backend.keras_lock:
                picked = _pick_layer()(position, column, name="explained_output")(out)
                self._heads[key] = keras.Model(self.model.inputs, picked, name="explained")
        return self._heads[key]

    def predict(self, xs: list[np.ndarray], head, state=None, batch: int = PREDICT_BATCH) -> np.ndarray:
        """``head`` on many rows, in batches; ``state.checkpoint()`` between batches."""
        n = len(xs[0])
        outs = []
        for start in range(0, n, batch):
            if state is not None:
                state.checkpoint()
            part = [x[start:start + batch] for x in xs]
            outs.append(np.asarray(head(part, training=False), dtype=np.float64))
        return np.concatenate(outs) if outs else np.zeros((0, 1))

    def target(self, xs: list[np.ndarray], option, *, output: int = 0,
               position: int | None = None) -> int:
        """The class a sample is explained for: ``option`` if given, else the predicted one."""
        k = self.classes(output)
        if option not in (None, "", "predicted"):
            try:
                t = int(option)
            except (TypeError, ValueError):
                names = self.class_names(output)
                if option in names:
                    return names.index(option)
                raise ExplainError(f"target {option!r} is neither a class number nor a class name "
                                   f"({', '.join(names[:12])})") from None
            if not 0 <= t < k:
                raise ExplainError(f"target class {t} does not exist: the model has {k} outputs "
                                   f"(0 to {k - 1})")
            return t
        if k == 1:
            return 0
        return int(np.argmax(self.predict(xs, self.head(None, output=output, position=position))[0]))

    # ---------------------------------------------------------------- groups

    def groups(self, i: int) -> tuple[np.ndarray, list[str]]:
        """Feature groups of input ``i``: an int array of the sample's shape and a label per group.

        Table columns, square image patches, time steps and token positions are
        the units; when there are more than :data:`MAX_GROUPS`, neighbours are
        joined.
        """
        key = f"groups{i}"
        if key in self._memo:
            return self._memo[key]
        info = self.inputs[i]
        shape = info.shape
        if info.modality == "image" and len(shape) >= 2:
            h, w = shape[0], shape[1]
            p = max(1, math.ceil(max(h, w) / math.sqrt(MAX_GROUPS)))
            cols = math.ceil(w / p)
            ids = (np.arange(h)[:, None] // p) * cols + np.arange(w)[None, :] // p
            labels = [f"patch ({r * p}, {c * p})" if p > 1 else f"pixel ({r}, {c})"
                      for r in range(math.ceil(h / p)) for c in range(cols)]
            ids = np.broadcast_to(ids.reshape((h, w) + (1,) * (len(shape) - 2)), shape)
        elif info.modality in ("series", "text") and len(shape) >= 1:
            steps = shape[0]
            per = max(1, math.ceil(steps / MAX_GROUPS))
            base = np.arange(steps) // per
            word = "token" if info.modality == "text" else "step"
            labels = [f"{word} {g * per}" + (f"-{min(steps, (g + 1) * per) - 1}" if per > 1 else "")
                      for g in range(math.ceil(steps / per))]
            ids = np.broadcast_to(base.reshape((steps,) + (1,) * (len(shape) - 1)), shape)
        else:
            size = int(np.prod(shape))
            per = max(1, math.ceil(size / MAX_GROUPS)) if info.feature_names is None else 1
            ids = (np.arange(size) // per).reshape(shape)
            names = info.feature_names or [f"x[{j}]" for j in range(size)]
            labels = [names[g * per] if per == 1 else f"{names[g * per]}…"
                      for g in range(math.ceil(size / per))]
        self._memo[key] = (np.ascontiguousarray(ids), labels)
        return self._memo[key]

    def memo(self, key: str, make):
        """A costly per-model answer (a traced graph's ops...) computed once per subject."""
        if key not in self._memo:
            self._memo[key] = make()
        return self._memo[key]


def _count(x) -> int:
    if x is None:
        return 0
    if isinstance(x, dict):
        return len(next(iter(x.values()))) if x else 0
    if isinstance(x, (list, tuple)):
        return len(x[0]) if x else 0
    return len(x)


_PICK = None


def _pick_layer():
    """A layer that reads one step and one column of an output.

    It must be a layer, not a bare tensor op: shap finds a model's output as
    ``model.layers[-1].output``. Heads are never saved, so it is not registered.
    """
    global _PICK
    if _PICK is None:
        from models import backend

        keras = backend.keras()

        class PickOutput(keras.layers.Layer):
            def __init__(self, position, column, **kwargs):
                super().__init__(**kwargs)
                self.position, self.column = position, column

            def call(self, x):
                if len(x.shape) == 3:
                    x = x[:, self.position, :]
                elif len(x.shape) > 3:
                    x = keras.ops.reshape(x, (-1, int(np.prod(x.shape[1:]))))
                elif len(x.shape) == 1:
                    x = keras.ops.expand_dims(x, -1)
                return x if self.column is None else x[:, self.column:self.column + 1]

            def compute_output_shape(self, shape):
                width = shape[-1] if len(shape) in (2, 3) else (
                    int(np.prod(shape[1:])) if len(shape) > 3 else 1)
                return (shape[0], 1 if self.column is not None else width)

        _PICK = PickOutput
    return _PICK


def _model_digest(model) -> str:
    """Identifies a model's graph and weights: explanations are cached under it."""
    try:
        config = model.get_config()
    except Exception:  # a subclassed model without a config: its layer names stand in
        config = [layer.name for layer in model.layers]
    return _digest(config, *[np.asarray(w) for w in model.get_weights()])


__all__ = ["ExplainError", "InputInfo", "Subject", "as_list", "take"]
