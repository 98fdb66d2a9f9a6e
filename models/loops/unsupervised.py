"""Loops for training that is not gradient descent on one loss: a deep belief network and a SOM.

* :class:`DBNLoop` pre-trains a stack of RBM graphs greedily by contrastive
  divergence, each on the hidden probabilities of the one below, then copies
  their weights into the classifier graph and fine-tunes it with labels.
* :class:`SOMLoop` trains a self-organizing map by competitive updates with
  a shrinking neighbourhood and learning rate.

Both are :class:`~models.loops.Loop` objects, driven by
:func:`~models.loops.run_loop` (progress, pause, stop keeping the best
weights, checkpoints, NaN guard). The functions after each loop are their
templates' view and quality hooks.
"""
from __future__ import annotations

import math

import numpy as np

from models import backend, views
from models.loops import Loop

keras = backend.keras()
tf = backend.tf()


def _batches(n: int, batch_size: int, rng: np.random.Generator):
    order = rng.permutation(n)
    for start in range(0, n, batch_size):
        yield order[start:start + batch_size]


def _flat(x) -> np.ndarray:
    x = np.asarray(x, dtype=np.float32)
    return x.reshape(len(x), -1)


def _problem(message: str):
    from models.training import TrainingError

    return TrainingError(message)


# --------------------------------------------------------------------------- DBN


class DBNLoop(Loop):
    """Greedy layer-wise pre-training of an RBM stack, then supervised fine-tuning.

    Recipe options (``loop_options``):
        stack: the RBM graphs from the bottom up (default ``["rbm_1", "rbm_2"]``).
        classifier: the graph fine-tuned with labels (default: the first graph).
        unroll: RBM graph -> the classifier's Dense layer that starts from its
            weights (default: ``rbm_1 -> hidden_1`` and so on).

    The recipe's ``pretrain_epochs`` (default 10) is the number of
    contrastive-divergence epochs per RBM.

    The first ``len(stack) * pretrain_epochs`` epochs pre-train (their logs:
    ``RBM_reconstruction_error``), the rest of the recipe's epochs fine-tune
    the classifier with its loss and metrics (logs: ``loss``, ``accuracy``,
    ``val_loss``, ``val_accuracy``). The best weights are those with the
    lowest validation loss while fine-tuning.
    """

    monitor = "val_loss"
    evaluable = True

    def build(self):
        super().build()
        options = dict(self.recipe.get("loop_options") or {})
        names = list(self.project.graphs)
        self.stack = list(options.get("stack") or [n for n in names if n.startswith("rbm")])
        self.classifier_name = options.get("classifier") or names[0]
        self.unroll = dict(options.get("unroll") or
                           {rbm: f"hidden_{i + 1}" for i, rbm in enumerate(self.stack)})
        self.pretrain_epochs = int(self.recipe.get("pretrain_epochs", 10))
        self.batch_size = int(self.recipe.get("batch_size", 32))
        self.rng = np.random.default_rng(int(self.recipe.get("seed", 0)))
        self._check()
        from models.training import compile_model

        self.classifier = self.models[self.classifier_name]
        compile_model(self.classifier, self.recipe)
        self._cd = {}
        self._inputs: dict[str, np.ndarray] = {}

    def _rbm(self, name: str):
        from models.layers import RBM

        found = [l for l in self.models[name].layers if isinstance(l, RBM)]
        if len(found) != 1:
            raise _problem(f"the graph {name!r} of the RBM stack needs exactly one RBM layer; "
                           f"it has {len(found)}")
        return found[0]

    def _check(self):
        if not self.stack:
            raise _problem("a deep belief network needs at least one RBM graph (loop_options.stack)")
        missing = [n for n in [*self.stack, self.classifier_name] if n not in self.models]
        if missing:
            raise _problem(f"the DBN recipe names graphs this project does not have: {', '.join(missing)}")
        classifier = self.models[self.classifier_name]
        width = int(np.prod(classifier.inputs[0].shape[1:]))
        for name in self.stack:
            rbm = self._rbm(name)
            dense_name = self.unroll.get(name)
            try:
                dense = classifier.get_layer(dense_name)
            except ValueError:
                raise _problem(f"the classifier has no layer {dense_name!r} to start from {name}'s "
                               "weights; set loop_options.unroll") from None
            visible = int(rbm.kernel.shape[0])
            if visible != width:
                raise _problem(f"{name} has {visible} visible units but gets {width} values from "
                               "below: make them match")
            if [tuple(w.shape) for w in dense.get_weights()] != [tuple(rbm.kernel.shape),
                                                                 tuple(rbm.hidden_bias.shape)]:
                raise _problem(f"{dense_name} must be a Dense layer of {rbm.units} units (as {name} "
                               f"has hidden units) to start from its weights")
            width = rbm.units

    def steps_per_epoch(self) -> int:
        return max(1, math.ceil(self.dataset.n_train / self.batch_size))

    def phase(self, epoch: int) -> str | None:
        """The RBM pre-trained at ``epoch`` (None: fine-tuning)."""
        i = epoch // self.pretrain_epochs if self.pretrain_epochs > 0 else len(self.stack)
        return self.stack[i] if i < len(self.stack) else None

    def _visible_data(self, name: str) -> np.ndarray:
        """The data an RBM learns from: the pixels, or the hidden probabilities of the RBM below."""
        if name not in self._inputs:
            x = _flat(self.dataset.x_train)
            for below in self.stack[: self.stack.index(name)]:
                x = np.asarray(self._rbm(below).hidden_probabilities(x))
            self._inputs[name] = x
        return self._inputs[name]

    def train_epoch(self, epoch, step):
        name = self.phase(epoch)
        if name is None:
            return self._finetune_epoch(step)
        rbm = self._rbm(name)
        if name not in self._cd:
            self._cd[name] = tf.function(rbm.contrastive_divergence)
        x = self._visible_data(name)
        errors = []
        for idx in _batches(len(x), self.batch_size, self.rng):
            error = float(self._cd[name](x[idx]))
            errors.append(error)
            step(error)
        if self.phase(epoch + 1) != name:  # this RBM is done: the classifier starts from it
            self._unroll(name)
        return {f"{name}_reconstruction_error": float(np.mean(errors))}

    def _unroll(self, name: str) -> None:
        """Start the classifier's layer from the RBM's weights and hidden biases."""
        rbm = self._rbm(name)
        self.classifier.get_layer(self.unroll[name]).set_weights(
            [np.asarray(rbm.kernel), np.asarray(rbm.hidden_bias)])

    def _finetune_epoch(self, step):
        ds = self.dataset
        x, y = np.asarray(ds.x_train), np.asarray(ds.y_train)
        for metric in self.classifier.metrics:
            metric.reset_state()
        logs = {}
        for idx in _batches(len(x), self.batch_size, self.rng):
            logs = self.classifier.train_on_batch(x[idx], y[idx], return_dict=True)
            step(logs["loss"])
        logs = {k: float(v) for k, v in logs.items()}
        if ds.n_val:
            scores = self.classifier.evaluate(ds.x_val, ds.y_val, batch_size=256, verbose=0,
                                              return_dict=True)
            logs.update({f"val_{k}": float(v) for k, v in scores.items()})
        return logs

    def evaluate(self):
        ds = self.dataset
        if not ds.n_test:
            return {}
        scores = self.classifier.evaluate(ds.x_test, ds.y_test, batch_size=256, verbose=0,
                                          return_dict=True)
        return {f"test_{k}": float(v) for k, v in scores.items()}

    def live_view(self):
        rbm = self._rbm(self.stack[0])
        side = int(round(math.sqrt(rbm.kernel.shape[0])))
        if side * side != rbm.kernel.shape[0]:
            return None  # the first RBM does not see square images
        n = 32
        return views.view("Receptive fields", views.images_panel(
            receptive_fields(np.asarray(rbm.kernel), side)[:n],
            f"What the first {min(n, rbm.units)} hidden units of {self.stack[0]} respond to",
            columns=8))


def receptive_fields(kernel: np.ndarray, side: int) -> np.ndarray:
    """Each hidden unit's weights as an image, scaled to [0, 1] per unit (grey is zero)."""
    w = kernel.T.reshape(-1, side, side)
    scale = np.abs(w).max(axis=(1, 2), keepdims=True)
    return 0.5 + 0.5 * w / np.maximum(scale, 1e-12)


# --------------------------------------------------------------------------- SOM


class SOMLoop(Loop):
    """Trains the SOM layer of the first graph by competitive updates.

    The neighbourhood radius and the learning rate shrink from the layer's
    start values to its end values over the whole run (every batch step),
    so a stopped run keeps a map that is already ordered. Logs: ``loss``
    (the training quantization error: the mean distance from a sample to its
    best matching unit), ``val_loss`` (the same on the validation split),
    ``sigma`` and ``learning_rate``.
    """

    monitor = "val_loss"

    def build(self):
        super().build()
        from models.layers import SOM

        self.model = next(iter(self.models.values()))
        found = [l for l in self.model.layers if isinstance(l, SOM)]
        if len(found) != 1:
            raise _problem(f"the SOM loop trains one SOM layer; the graph has {len(found)}")
        self.som = found[0]
        self.features = int(self.som.prototypes.shape[-1])
        self.batch_size = int(self.recipe.get("batch_size", 16))
        self.epochs = int(self.recipe.get("epochs", 10))
        self.rng = np.random.default_rng(int(self.recipe.get("seed", 0)))
        inputs = self.model.inputs[0]
        # The layers before the SOM (if any) turn samples into what the map sees.
        self._feed = None if self.som.input is inputs else keras.Model(inputs, self.som.input)
        x = self._below(self.dataset.x_train)
        if not self.project.has_weights(self.project.main_name):
            # Prototypes start on training samples: the map unfolds faster than from noise.
            pick = self.rng.choice(len(x), size=self.som.units, replace=len(x) < self.som.units)
            self.som.prototypes.assign(x[pick] + self.rng.normal(0, 0.01, (self.som.units, x.shape[1])))
        self._update = tf.function(self.som.update)
        self._step = 0

    def _below(self, x) -> np.ndarray:
        """What the SOM layer sees: the input through any layers before it."""
        x = np.asarray(x, dtype=np.float32)
        return _flat(x) if self._feed is None else _flat(self._feed(x))

    def steps_per_epoch(self) -> int:
        return max(1, math.ceil(self.dataset.n_train / self.batch_size))

    def train_epoch(self, epoch, step):
        x = self._below(self.dataset.x_train)
        total = max(1, self.epochs * self.steps_per_epoch() - 1)
        errors = []
        sigma = rate = 0.0
        for idx in _batches(len(x), self.batch_size, self.rng):
            sigma, rate = self.som.schedule(self._step / total)
            error = float(self._update(x[idx], tf.constant(sigma, tf.float32), tf.constant(rate, tf.float32)))
            self._step += 1
            errors.append(error)
            step(error)
        logs = {"loss": float(np.mean(errors)), "sigma": sigma, "learning_rate": rate}
        if self.dataset.n_val:
            logs["val_loss"] = quantization_error(self.som, self._below(self.dataset.x_val))
        return logs

    def evaluate(self):
        ds = self.dataset
        x_train, x_test = self._below(ds.x_train), self._below(ds.x_test)
        out = {"test_quantization_error": quantization_error(self.som, x_test)}
        if ds.has_classes and ds.n_test:
            out["cluster_purity"] = cluster_purity(self.som, x_train, np.asarray(ds.y_train),
                                                   x_test, np.asarray(ds.y_test))
        return out

    def live_view(self):
        rows, cols = self.som.rows, self.som.columns
        x = self._below(self.dataset.x_train)
        names = self.dataset.feature_names or [f"feature {i + 1}" for i in range(self.features)]
        grid = {"x_title": "column", "y_title": "row", "x_labels": [str(c + 1) for c in range(cols)],
                "y_labels": [str(r + 1) for r in range(rows)]}
        panels = [views.heatmap_panel(self.som.u_matrix(), "U-matrix (bright: a border between clusters)",
                                      **grid)]
        if self.dataset.has_classes:
            panels.append(_class_map(self.som, x, np.asarray(self.dataset.y_train),
                                     self.dataset.class_names))
        panels += [views.heatmap_panel(plane, f"Component plane: {name}", **grid)
                   for name, plane in zip(names, self.som.component_planes()[:4])]
        return views.view("Self-organizing map", *panels)


def _class_map(som, x: np.ndarray, y: np.ndarray, class_names) -> dict:
    """The grid's units as points, coloured by the class of most training samples they win."""
    bmu = np.asarray(som.best_matching_units(x))
    counts = np.zeros((som.units, int(y.max()) + 1))
    np.add.at(counts, (bmu, y), 1)
    won = counts.sum(axis=1) > 0
    cols = np.arange(som.units) % som.columns + 1
    rows = -(np.arange(som.units) // som.columns + 1)  # row 1 at the top, as in the heat maps
    series = views.series_by_class(cols[won], rows[won], counts.argmax(axis=1)[won], class_names,
                                   size=18)
    if not won.all():
        series.append(views.series("no sample", cols[~won], rows[~won], size=10, color="#d0d0d0"))
    return views.scatter_panel("Class each unit wins most", *series, x_title="column",
                               y_title="row (1 at the top)", equal_axes=True)


def quantization_error(som, x: np.ndarray) -> float:
    """The mean distance from a sample to its best matching unit."""
    d2 = np.asarray(som(np.asarray(x, dtype=np.float32)))
    return float(np.sqrt(np.maximum(d2.min(axis=1), 0.0)).mean())


def unit_labels(som, x: np.ndarray, y: np.ndarray) -> np.ndarray:
    """Each unit's class: the most common among the samples it wins, else its nearest labelled unit's."""
    bmu = np.asarray(som.best_matching_units(x))
    classes = int(y.max()) + 1
    counts = np.zeros((som.units, classes))
    np.add.at(counts, (bmu, y), 1)
    labels = counts.argmax(axis=1)
    won = counts.sum(axis=1) > 0
    if won.any() and not won.all():
        w = np.asarray(som.prototypes)
        d = ((w[~won][:, None, :] - w[won][None, :, :]) ** 2).sum(-1)
        labels[~won] = labels[won][d.argmin(axis=1)]
    return labels


def cluster_purity(som, x_train, y_train, x_test, y_test) -> float:
    """The share of test samples whose best matching unit has their class.

    Units take the majority class of the training samples they win (see
    :func:`unit_labels`), so a pure map, one whose units each hold one
    class, scores 1.
    """
    labels = unit_labels(som, x_train, y_train)
    return float((labels[np.asarray(som.best_matching_units(x_test))] == y_test).mean())


__all__ = ["DBNLoop", "SOMLoop", "receptive_fields", "quantization_error", "cluster_purity",
           "unit_labels"]
