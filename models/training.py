"""Training: a project's recipe run on its data, observable and stoppable.

:func:`train` is the one entry point for the app, the command line and the
tests. It builds the model from the graph, compiles it from the recipe, and
trains it either with Keras's ``fit`` or with a custom loop named by the
recipe (GANs, diffusion, RL: see :mod:`models.loops`). Either way the same
:class:`~models.runner.RunState` carries progress, partial results (per-batch
loss, per-epoch metrics, learning rate, throughput, gradient norms and weight
histograms per layer), pause, resume and stop, so a panel cannot tell them
apart.

Guarantees: stop keeps the best weights seen so far; a NaN or infinite loss
stops training with a clear message and restores the last good weights.
"""
from __future__ import annotations

import copy
import inspect
import math
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from models.runner import Cancelled, RunState


class TrainingError(ValueError):
    """A training problem the user can act on; the message says what to change."""


@dataclass
class TrainResult:
    model: Any
    history: dict[str, list[float]] = field(default_factory=dict)
    metrics: dict[str, float] = field(default_factory=dict)
    seconds: float = 0.0
    samples_per_second: float = 0.0
    stopped: str = "completed"  # completed, stopped, early_stopping, nan
    message: str = ""
    best_epoch: int | None = None
    epochs_run: int = 0
    quality: dict | None = None
    notes: list[str] = field(default_factory=list)
    evaluation: dict | None = None
    models: dict[str, Any] = field(default_factory=dict)  # every model a custom loop trained
    # A search run as training (models.search.train_by_search) picks another graph than the
    # one it was given: the best trial's project (with its weights) and the trials table.
    project: Any = None
    search: dict | None = None
    evaluable: bool = True  # the app's evaluation page applies to ``model`` (inputs -> targets)

    def to_json(self) -> dict:
        return {
            "metrics": {k: _num(v) for k, v in self.metrics.items()},
            "history": {k: [_num(x) for x in v] for k, v in self.history.items()},
            "seconds": round(self.seconds, 3),
            "samples_per_second": round(self.samples_per_second, 1),
            "stopped": self.stopped,
            "message": self.message,
            "best_epoch": self.best_epoch,
            "epochs": self.epochs_run,
            "quality": self.quality,
            "notes": self.notes,
            **({"search": self.search} if self.search is not None else {}),
        }


def _num(v):
    try:
        f = float(v)
    except (TypeError, ValueError):
        return v
    return f if math.isfinite(f) else None


# --------------------------------------------------------------------------- recipe


def effective_recipe(recipe: dict, *, quick: bool = False, epochs: int | None = None,
                     batch_size: int | None = None, xla: bool | None = None) -> dict:
    """The recipe with the quick preset and command-line overrides applied."""
    r = copy.deepcopy(recipe)
    if quick and isinstance(r.get("quick"), dict):
        r.update(copy.deepcopy(r["quick"]))
    r.pop("quick", None)
    if epochs is not None:
        r["epochs"] = int(epochs)
    if batch_size is not None:
        r["batch_size"] = int(batch_size)
    if xla is not None:
        r["jit_compile"] = bool(xla)
    return r


def make_optimizer(recipe: dict):
    from models import backend

    keras = backend.keras()
    spec = copy.deepcopy(recipe.get("optimizer") or {"class_name": "Adam", "config": {}})
    if isinstance(spec, str):
        spec = {"class_name": spec, "config": {}}
    config = dict(spec.get("config") or {})
    if "learning_rate" in recipe:
        config["learning_rate"] = recipe["learning_rate"]
    schedule = recipe.get("schedule")
    if schedule:
        sched_cfg = dict(schedule.get("config") or {})
        sched_cfg.setdefault("initial_learning_rate", config.get("learning_rate", 1e-3))
        try:
            config["learning_rate"] = keras.optimizers.schedules.deserialize(
                {"class_name": schedule["class_name"], "config": sched_cfg})
        except Exception as exc:
            raise TrainingError(f"learning-rate schedule {schedule.get('class_name')!r}: {exc}") from None
    try:
        return keras.optimizers.get({"class_name": spec["class_name"], "config": config})
    except Exception as exc:
        raise TrainingError(f"optimizer {spec.get('class_name')!r} cannot be made: {exc}") from None


def compile_model(model, recipe: dict) -> None:
    from models import backend

    keras = backend.keras()
    loss = _recipe_loss(recipe.get("loss", "sparse_categorical_crossentropy"), keras)
    metrics = recipe.get("metrics", ["accuracy"])
    if isinstance(metrics, list):
        # compile() reads a dict in the list as a per-output mapping, so a serialised
        # metric ({"class_name", "config"}, e.g. a layerforge one) is made here.
        metrics = [keras.metrics.get(m) if isinstance(m, dict) and "class_name" in m else m
                   for m in metrics]
    try:
        model.compile(optimizer=make_optimizer(recipe), loss=loss, metrics=metrics,
                      loss_weights=recipe.get("loss_weights"),  # per head, for several outputs
                      jit_compile=bool(recipe.get("jit_compile", False)))
    except TrainingError:
        raise
    except Exception as exc:
        raise TrainingError(f"the model cannot be compiled with this recipe: {exc}") from None


def _recipe_loss(spec, keras):
    """The recipe's loss as compile() takes it.

    A serialised loss (``{"class_name", "config"}``, e.g. a layerforge one) is
    made here, also inside a per-output list such as ``[margin_loss, None]``
    (None: that output has no loss of its own), because compile() would read a
    dict in a list as a mapping by output name.
    """
    if isinstance(spec, dict) and "class_name" in spec:
        return keras.losses.get(spec)
    if isinstance(spec, list):
        return [_recipe_loss(s, keras) for s in spec]
    return spec


# --------------------------------------------------------------------------- live callback


class LiveCallback:
    """Feeds a RunState from inside ``fit``: cheap per batch, richer per epoch.

    Per batch it only records the loss (already a Python float by then) and
    checks for pause, stop and NaN. Per epoch it adds the learning rate,
    throughput, each layer's gradient norm and each layer's weight histogram.

    The gradient norms come from the training step itself: a :class:`GradNormTap`
    on the optimizer adds up each layer's norm inside the compiled step (one
    reduction per weight, on every step), so they cost no extra forward and
    backward pass. Where the tap cannot be fitted (a
    distributed run, an optimizer without ``apply``), they are measured on one
    probe batch.
    """

    def __init__(self, state: RunState, *, probe: tuple | None = None, epochs: int = 1,
                 steps: int | None = None, batch_size: int = 32, monitor: str = "val_loss",
                 histograms: bool = True, grad_norms: bool = True, view=None,
                 monitor_mode: str = "min", epoch_metrics=None):
        from models import backend

        keras = backend.keras()
        self._keras = keras
        self.state = state
        self.probe = probe
        self.epochs = epochs
        self.steps = steps or 1
        self.batch_size = batch_size
        self.monitor = monitor
        self.histograms = histograms
        self.grad_norms = grad_norms
        self.view = view  # f(model) -> a live view (models.views), or None
        self.monitor_mode = monitor_mode  # "min": the lowest value is best; "max": the highest
        self.epoch_metrics = epoch_metrics  # f(model) -> {name: value} joining each epoch's logs
        self.tap: GradNormTap | None = None
        self.best_value = None
        self.best_weights = None
        self.best_epoch: int | None = None
        self.good_weights = None
        self.nan_message: str | None = None
        self.cancelled = False
        self.global_step = 0
        self._epoch_start = 0.0
        self._epoch_steps = 0
        self.epoch = 0
        callback = self

        class _Cb(keras.callbacks.Callback):
            def on_train_begin(self, logs=None):
                callback.on_train_begin(self.model)

            def on_epoch_begin(self, epoch, logs=None):
                callback.on_epoch_begin(epoch, self.model)

            def on_train_batch_end(self, batch, logs=None):
                callback.on_train_batch_end(self.model, batch, logs)

            def on_epoch_end(self, epoch, logs=None):
                callback.on_epoch_end(self.model, epoch, logs)

        self.keras_callback = _Cb()

    def on_train_begin(self, model):
        # The train step is traced at its first call, after this: the tap gets into it.
        if self.grad_norms and self.tap is None:
            self.tap = GradNormTap.attach(model)
        self.good_weights = model.get_weights()
        self.state.emit("begin", {"epochs": self.epochs, "steps": self.steps,
                                  "layers": [l.name for l in model.layers if l.weights]})
        self._emit_view(model, 0)

    def _emit_view(self, model, epoch: int) -> None:
        if self.view is None:
            return
        shown = self.view(model)
        if shown is not None:
            self.state.emit("view", {"epoch": epoch, "view": shown})

    def on_epoch_begin(self, epoch, model=None):
        # A pause asked for during the last epoch's validation and views holds here,
        # before the next batch (not one batch later).
        try:
            self.state.checkpoint()
        except Cancelled:
            self.cancelled = True
            if model is not None:
                model.stop_training = True
        self.epoch = epoch
        self._epoch_start = time.perf_counter()
        self._epoch_steps = 0

    def on_train_batch_end(self, model, batch, logs):
        loss = float((logs or {}).get("loss", float("nan")))
        self.global_step += 1
        self._epoch_steps += 1
        self.state.emit("batch", (self.global_step, loss))
        done = (self.epoch + (batch + 1) / self.steps) / max(1, self.epochs)
        self.state.progress(done, f"epoch {self.epoch + 1}/{self.epochs}, batch {batch + 1}/{self.steps}")
        if not math.isfinite(loss):
            self.nan_message = (
                f"the loss became {'NaN' if math.isnan(loss) else 'infinite'} at epoch "
                f"{self.epoch + 1}, batch {batch + 1}; training stopped and the last good weights "
                "were restored. Try a lower learning rate, normalized inputs, or gradient clipping")
            model.stop_training = True
            return
        try:
            self.state.checkpoint()
        except Cancelled:
            self.cancelled = True
            model.stop_training = True

    def on_epoch_end(self, model, epoch, logs):
        if self.epoch_metrics is not None and logs is not None and not self.nan_message:
            # Into Keras's own logs, so checkpoints, early stopping and the history see them.
            logs.update(self.epoch_metrics(model))
        logs = dict(logs or {})
        if self.nan_message:
            return
        if not all(math.isfinite(float(v)) for v in logs.values() if _is_number(v)):
            self.nan_message = (f"a metric became NaN at epoch {epoch + 1}; training stopped and "
                                "the last good weights were restored")
            model.stop_training = True
            return
        seconds = max(1e-9, time.perf_counter() - self._epoch_start)
        logs["samples_per_second"] = self._epoch_steps * self.batch_size / seconds
        logs["learning_rate"] = current_lr(model.optimizer)
        self.good_weights = model.get_weights()
        value = logs.get(self.monitor, logs.get("loss"))
        from models.loops import better

        if value is not None and better(float(value), self.best_value, self.monitor_mode):
            self.best_value = float(value)
            self.best_weights = self.good_weights
            self.best_epoch = epoch + 1
        payload = {"epoch": epoch + 1, "logs": {k: float(v) for k, v in logs.items() if _is_number(v)}}
        if self.grad_norms and self.tap is not None:
            payload["grad_norms"] = self.tap.epoch_norms()
        elif self.grad_norms and self.probe is not None:
            payload["grad_norms"] = _grad_norms(model, *self.probe)
        if self.histograms:
            payload["histograms"] = _histograms(model, values=self.good_weights)
        self.state.emit("epoch", payload)
        self._emit_view(model, epoch + 1)


def _is_number(v) -> bool:
    try:
        float(v)
        return True
    except (TypeError, ValueError):
        return False


def current_lr(opt) -> float:
    """An optimizer's learning rate now (its schedule's value at this step); NaN if unreadable."""
    try:
        lr = opt.learning_rate
        if callable(lr):
            lr = lr(opt.iterations)
        return float(np.asarray(lr))
    except Exception:
        return float("nan")


def innermost_optimizer(optimizer):
    """The optimizer that applies the gradients (inside a loss-scale wrapper, say)."""
    while optimizer is not None and hasattr(optimizer, "inner_optimizer"):
        optimizer = optimizer.inner_optimizer
    return optimizer


def loop_optimizers(loop) -> list:
    """A custom loop's optimizers, innermost and each once: ``optimizer``, any
    ``*_optimizer`` attribute, then its compiled models' own."""
    candidates = [v for k, v in vars(loop).items() if k == "optimizer" or k.endswith("_optimizer")]
    candidates += [getattr(m, "optimizer", None) for m in (getattr(loop, "models", None) or {}).values()]
    found = []
    for optimizer in map(innermost_optimizer, candidates):
        if callable(getattr(optimizer, "apply", None)) and all(optimizer is not o for o in found):
            found.append(optimizer)
    return found


class GradNormTap:
    """Each layer's gradient norm, averaged over an epoch's steps, read from the optimizer.

    Wraps the (innermost) optimizer's ``apply`` so the compiled training step
    also adds every layer's gradient norm (the square root of the sum of its
    weights' squared gradients) into a small variable. Loss-scaled (mixed
    precision) runs see the unscaled gradients, as the inner optimizer does.
    A model trained by several optimizers (a GAN's two players) lists the
    others in ``extra_optimizers``; each layer's mean is over the steps that
    gave it a gradient. A custom loop's models (``{name: model}``) share one
    tap; with several, a layer is named ``model/layer``.
    """

    def __init__(self, model, optimizers, tf):
        self._tf = tf
        models = model if isinstance(model, dict) else {"": model}
        owner = {}
        weights = []
        for model_name, m in models.items():
            prefix = f"{model_name}/" if len(models) > 1 else ""
            for layer in m.layers:
                for w in layer.trainable_weights:
                    owner.setdefault(id(w), prefix + layer.name)
            weights += [w for w in m.trainable_weights if all(w is not x for x in weights)]
        self.layers: list[str] = []
        segment = []
        for w in weights:
            name = owner.get(id(w), w.path.split("/")[0])
            if name not in self.layers:
                self.layers.append(name)
            segment.append(self.layers.index(name))
        self._index = {id(w): i for i, w in enumerate(weights)}
        self._segment = segment
        # Row 0: each layer's norms added up; row 1: how many steps gave it a gradient.
        # One variable: one update per reading and one read per epoch.
        self.totals = tf.Variable(tf.zeros([2, len(self.layers)], tf.float32), trainable=False,
                                  name="layerforge_grad_norm_totals")
        # Inside a compiled step every step is read (a branch to skip some would cost
        # more to trace than the reductions cost to run); an eager loop, where each op
        # is a Python call, reads every n-th of its steps (see sample_every).
        self.eager_every = 1
        for optimizer in optimizers:
            self._wrap(optimizer)

    def sample_every(self, n: int) -> None:
        """Where the optimizer runs eagerly, read the norms on every ``n``-th step only."""
        self.eager_every = max(1, int(n))

    def _wrap(self, optimizer) -> None:
        original = optimizer.apply
        tap = self
        eager_steps = [0]  # this optimizer's own: two players taking turns are each read

        def apply(grads, trainable_variables=None):
            # After the update: its reductions then run beside the next ops, and the
            # weights' updates never wait for them.
            grads = list(grads)
            applied = original(grads, trainable_variables)
            if tap._tf.executing_eagerly():
                eager_steps[0] += 1
                if (eager_steps[0] - 1) % tap.eager_every:
                    return applied
            tap._add(grads, trainable_variables or optimizer._trainable_variables)
            return applied

        optimizer.apply = apply

    @classmethod
    def for_loop(cls, loop) -> "GradNormTap | None":
        """A tap on a custom loop's optimizers (:func:`loop_optimizers`) over its models."""
        models = {k: m for k, m in (getattr(loop, "models", None) or {}).items()
                  if getattr(m, "trainable_weights", None)}
        return cls._fitted(models, loop_optimizers(loop)) if models else None

    @classmethod
    def attach(cls, model) -> "GradNormTap | None":
        """A tap on ``model``'s optimizers, or None where one cannot be fitted."""
        optimizers = [innermost_optimizer(o) for o in
                      [getattr(model, "optimizer", None), *getattr(model, "extra_optimizers", ())]]
        if not model.trainable_weights or not all(callable(getattr(o, "apply", None))
                                                  for o in optimizers):
            return None
        return cls._fitted(model, optimizers)

    @classmethod
    def _fitted(cls, model, optimizers) -> "GradNormTap | None":
        from models import backend

        tf = backend.tf()
        if not optimizers or tf.distribute.has_strategy():
            return None
        try:
            return cls(model, optimizers, tf)
        except Exception:
            return None

    def _add(self, grads, variables):
        # As few ops as can be: one fused reduction per weight (l2_loss is sum(g**2) / 2),
        # one sum per layer of several weights, one update of the totals.
        tf = self._tf
        halves: list[list] = [[] for _ in self.layers]
        for g, v in zip(grads, variables):
            i = self._index.get(id(v))
            if g is None or i is None:
                continue
            if isinstance(g, tf.IndexedSlices):
                g = g.values
            if g.dtype != tf.float32:
                g = tf.cast(g, tf.float32)
            halves[self._segment[i]].append(tf.nn.l2_loss(g))
        seen = [1.0 if h else 0.0 for h in halves]
        zero = tf.zeros([], tf.float32)
        per_layer = tf.stack([(h[0] if len(h) == 1 else tf.add_n(h)) if h else zero
                              for h in halves])
        self.totals.assign_add(tf.stack([tf.sqrt(2.0 * per_layer), tf.constant(seen, tf.float32)]))

    def epoch_norms(self) -> dict[str, float]:
        """The mean norm per layer since the last call (then starts a new epoch)."""
        sums, steps = self.totals.numpy()
        self.totals.assign(np.zeros((2, len(self.layers)), np.float32))
        return {name: float(v) / float(n) for name, v, n in zip(self.layers, sums, steps)
                if n > 0 and math.isfinite(float(v))}


def _grad_norms(model, x, y) -> dict[str, float]:
    """Each layer's gradient norm on one batch (skipped quietly where it cannot be had)."""
    from models import backend

    tf = backend.tf()
    try:
        with tf.GradientTape() as tape:
            pred = model(x, training=True)
            loss = model.compute_loss(x=x, y=y, y_pred=pred, training=True)
        weights = model.trainable_weights
        grads = tape.gradient(loss, weights)
    except Exception:
        return {}
    owner = {}
    for layer in model.layers:
        for w in layer.trainable_weights:
            owner[id(w)] = layer.name
    sums: dict[str, float] = {}
    for w, g in zip(weights, grads):
        if g is None:
            continue
        name = owner.get(id(w), w.path.split("/")[0])
        sums[name] = sums.get(name, 0.0) + float(tf.reduce_sum(tf.square(tf.cast(g, "float32"))))
    return {k: math.sqrt(v) for k, v in sums.items()}


def _histograms(model, bins: int = 30, trainable_only: bool = True, prefix: str = "",
                values: list | None = None) -> dict[str, dict]:
    """Each layer's weight histogram (``prefix`` + layer name -> counts and edges).

    ``trainable_only=False`` includes weights no gradient trains (a SOM's
    prototypes, which a custom loop moves). ``values``: ``model.get_weights()``
    taken just now, so the weights are not read from the model a second time.
    """
    taken = {id(w): v for w, v in zip(model.weights, values)} if values is not None else {}
    out = {}
    for layer in model.layers:
        ws = [np.asarray(taken[id(w)] if id(w) in taken else w).ravel()
              for w in (layer.trainable_weights if trainable_only else layer.weights)]
        if not ws:
            continue
        flat = ws[0] if len(ws) == 1 else np.concatenate(ws)
        if flat.size == 0:
            continue
        lo, hi = flat.min(), flat.max()
        if not (np.isfinite(lo) and np.isfinite(hi)):
            flat = flat[np.isfinite(flat)]
            if flat.size == 0:
                continue
            lo, hi = flat.min(), flat.max()
        counts, edges = np.histogram(flat, bins=bins, range=(float(lo), float(hi)))
        out[prefix + layer.name] = {"counts": counts.tolist(), "edges": edges.tolist()}
    return out


# --------------------------------------------------------------------------- train


def train(project, *, state: RunState | None = None, dataset=None, quick: bool = False,
          epochs: int | None = None, batch_size: int | None = None, xla: bool | None = None,
          out_dir: str | Path | None = None, distribute: str | None = None,
          initial_weights: str | Path | None = None, evaluate: bool = True) -> TrainResult:
    """Train a project's main model on its data with its recipe.

    Args:
        project: a :class:`models.project.Project`.
        state: where progress and partial results go (a fresh one if None).
        dataset: a loaded :class:`models.data.Dataset`; default: the project's.
        quick: apply the recipe's quick preset.
        epochs, batch_size, xla: override the recipe.
        out_dir: write checkpoints (best and last), ``history.csv`` and
            TensorBoard logs there.
        distribute: ``"mirrored"`` or ``"multi-worker"`` (``tf.distribute``).
        initial_weights: resume from these weights (a checkpoint).

    Returns:
        A :class:`TrainResult`; ``result.model`` holds the kept weights.

    Raises:
        TrainingError: for problems the user can fix (data that does not fit
            the model, a bad recipe...).
    """
    state = state or RunState()
    recipe = effective_recipe(project.recipe, quick=quick, epochs=epochs,
                              batch_size=batch_size, xla=xla)
    if (recipe.get("search") or {}).get("as_training"):
        from models.search import train_by_search

        return train_by_search(project, recipe, state=state, dataset=dataset, out_dir=out_dir)
    loop = recipe.get("loop", "fit")
    trainer = None
    if loop != "fit":
        from models.loops import is_loop, resolve, run_loop

        trainer = resolve(loop)
        if is_loop(trainer):
            return run_loop(project, recipe, state=state, dataset=dataset, out_dir=out_dir,
                            initial_weights=initial_weights)
    return _train_fit(project, recipe, state, dataset, out_dir, distribute, initial_weights, evaluate,
                      trainer)


def _seed(seed: int) -> None:
    from models import backend

    keras = backend.keras()
    keras.utils.set_random_seed(int(seed))


def load_project_data(project, recipe: dict | None = None):
    from models.data import load_dataset

    spec = project.dataset
    if spec is None:
        raise TrainingError("the project has no data yet: choose a dataset (e.g. builtin:digits)")
    recipe = recipe or project.recipe
    kwargs = {}
    for key in ("val_fraction", "test_fraction", "limit"):
        if key in recipe:
            kwargs[key] = recipe[key]
    return load_dataset(spec, seed=int(recipe.get("seed", 0)), **kwargs)


def _train_fit(project, recipe, state, dataset, out_dir, distribute, initial_weights, evaluate,
               trainer=None):
    """``fit`` the main model, or a :class:`~models.loops.trainer.Trainer` class over every graph."""
    from models import backend

    keras = backend.keras()
    tf = backend.tf()
    _seed(recipe.get("seed", 0))
    if dataset is None:
        state.progress(0.0, "loading data")
        dataset = load_project_data(project, recipe)
    policy_before = keras.mixed_precision.global_policy().name
    if recipe.get("mixed_precision"):
        keras.mixed_precision.set_global_policy("mixed_float16")
    try:
        strategy = _strategy(distribute)
        scope = strategy.scope() if strategy is not None else _nullcontext()
        with scope:
            if trainer is None:
                model = project.build(with_weights=project.has_weights())
                compile_model(model, recipe)
            else:
                model = trainer.from_project(project, recipe)
                try:
                    model.compile_from(recipe)
                except TrainingError:
                    raise
                except Exception as exc:
                    raise TrainingError(f"the {trainer.__name__} step cannot be compiled with this "
                                        f"recipe: {exc}") from None
        if strategy is not None:
            from models.distributed import prepare_model

            prepare_model(model, strategy)  # Keras 3 needs two fixes for multi-worker
        if initial_weights:
            # Build the optimizer first so its saved state (moments, step count) loads too.
            with strategy.scope() if strategy is not None else _nullcontext():
                if trainer is None:
                    model.optimizer.build(model.trainable_variables)
                else:
                    model.build_optimizers()  # a GAN has two, each for its own graph
            try:
                model.load_weights(str(initial_weights))
            except Exception as exc:
                raise TrainingError(
                    f"{initial_weights}: these weights cannot be loaded into this model "
                    f"({' '.join(str(exc).split())[:200]}); pick a checkpoint of this model") from None
        return _fit(model, project, recipe, state, dataset, out_dir, strategy, evaluate, tf, keras)
    finally:
        keras.mixed_precision.set_global_policy(policy_before)


class _nullcontext:
    def __enter__(self):
        return self

    def __exit__(self, *a):
        return False


def _strategy(name: str | None):
    if not name:
        return None
    from models import backend

    tf = backend.tf()
    if name == "mirrored":
        return tf.distribute.MirroredStrategy()
    if name in ("multi-worker", "multiworker", "multi_worker"):
        return tf.distribute.MultiWorkerMirroredStrategy()
    raise TrainingError(f"unknown distribution {name!r}; use 'mirrored' or 'multi-worker'")


def _fit(model, project, recipe, state, ds, out_dir, strategy, evaluate, tf, keras):
    epochs = int(recipe.get("epochs", 10))
    batch_size = int(recipe.get("batch_size", 32))
    has_val = ds.x_val is not None and len(_first(ds.x_val)) > 0
    n_train = len(_first(ds.x_train))
    if n_train == 0:
        raise TrainingError("the training split is empty; use more data or a smaller test fraction")
    steps = max(1, math.ceil(n_train / batch_size))
    probe_n = min(batch_size, n_train)
    probe = (_take(ds.x_train, probe_n), _take(ds.y_train, probe_n))
    from models.views import view_function

    view = view_function(recipe, ds)
    from models.loops import monitor_of

    default = getattr(model, "monitor", None) or ("val_loss" if has_val else "loss", "min")
    monitor, mode = monitor_of(recipe, *default)
    live = LiveCallback(state, probe=probe if strategy is None else None, epochs=epochs,
                        steps=steps, batch_size=batch_size, monitor=monitor, monitor_mode=mode,
                        histograms=bool(recipe.get("histograms", True)),
                        grad_norms=bool(recipe.get("grad_norms", True)) and strategy is None,
                        view=view, epoch_metrics=epoch_metrics_function(recipe, ds))
    callbacks = [live.keras_callback] + _recipe_callbacks(recipe, out_dir, (monitor, mode), keras)
    x_train, y_train = ds.x_train, ds.y_train
    fit_kwargs: dict[str, Any] = {}
    if strategy is not None and "MultiWorker" in type(strategy).__name__:
        options = tf.data.Options()
        options.experimental_distribute.auto_shard_policy = tf.data.experimental.AutoShardPolicy.DATA
        train_data = tf.data.Dataset.from_tensor_slices((x_train, y_train)).batch(batch_size)
        train_data = train_data.with_options(options)
        fit_kwargs["x"] = train_data
        if has_val:
            fit_kwargs["validation_data"] = tf.data.Dataset.from_tensor_slices(
                (ds.x_val, ds.y_val)).batch(batch_size).with_options(options)
    else:
        pipeline = (fit_inputs(x_train, y_train, batch_size, int(recipe.get("seed", 0)), tf)
                    if strategy is None else None)
        validation = None
        if pipeline is not None:
            fit_kwargs.update(x=pipeline, steps_per_epoch=steps, shuffle=False)  # shuffled in it
            validation = eval_inputs(ds.x_val, ds.y_val, batch_size, tf) if has_val else None
        else:
            fit_kwargs.update(x=x_train, y=y_train, batch_size=batch_size, shuffle=True)
        if has_val:
            fit_kwargs["validation_data"] = (ds.x_val, ds.y_val) if validation is None else validation
    state.progress(0.0, "training")
    t0 = time.perf_counter()
    try:
        history = model.fit(epochs=epochs, callbacks=callbacks, verbose=0, **fit_kwargs)
        hist = {k: [float(x) for x in v] for k, v in history.history.items()}
    except Cancelled:
        hist = {}
    except (ValueError, TypeError) as exc:
        raise TrainingError(_fit_error_message(exc, model, ds)) from None
    seconds = time.perf_counter() - t0
    result = TrainResult(model=model, history=hist, seconds=seconds)
    result.epochs_run = len(next(iter(hist.values()), []))
    result.samples_per_second = live.global_step * batch_size / seconds if seconds > 0 else 0.0
    result.notes = list(getattr(ds, "notes", []))
    if live.nan_message:
        result.stopped, result.message = "nan", live.nan_message
        if live.good_weights is not None:
            model.set_weights(live.good_weights)
    elif live.cancelled:
        result.stopped = "stopped"
        if live.best_weights is not None:
            model.set_weights(live.best_weights)
            result.message = f"stopped; kept the best weights (epoch {live.best_epoch})"
        else:
            result.message = "stopped before the first epoch ended; the weights are partly trained"
    elif result.epochs_run < epochs:
        result.stopped = "early_stopping"
        result.message = f"early stopping after {result.epochs_run} epochs"
    result.best_epoch = live.best_epoch
    for k, v in hist.items():
        if k.startswith("val_") and v:
            result.metrics[k] = v[-1]
    if evaluate and ds.x_test is not None and len(_first(ds.x_test)) > 0:
        state.progress(1.0, "evaluating on the test split")
        scores = model.evaluate(ds.x_test, ds.y_test, batch_size=batch_size, verbose=0,
                                return_dict=True)
        for k, v in scores.items():
            result.metrics[f"test_{k}"] = float(v)
    if view is not None and view.error:
        result.notes.append(view.error)
    if evaluate and result.stopped != "nan":
        result.metrics.update(extra_metrics(recipe, model, ds, state))
    if hasattr(model, "build_optimizers"):  # a Trainer: the project keeps its graphs, not the wrapper
        result.models = dict(model.graphs)
        result.model = result.models[project.main_name]
        result.evaluable = bool(model.evaluable)
    result.quality = quality_of(recipe, result.metrics)
    state.emit("done", result.to_json())
    return result


def _element_tensors(x, y, tf):
    """In-memory data as the elements Keras's own adapter makes, in tensors; or None.

    ``(x, y)``, or x alone when there is no y; lists become tuples (tf.data
    would stack a list of arrays into one tensor). None for data that cannot
    be held as tensors (object arrays) or whose arrays differ in length:
    ``fit`` then takes the arrays as usual, and Keras's own checks name the
    problem. Returns ``(tensors, number of samples)``.
    """
    from models import backend

    x, y = backend.keras().tree.lists_to_tuples((x, y))
    arrays = (x, y) if y is not None else (x,) if isinstance(x, tuple) else x
    leaves = tf.nest.flatten(arrays)
    if not leaves or not all(isinstance(a, np.ndarray) and a.dtype != object for a in leaves):
        return None
    n = len(leaves[0])
    if n == 0 or any(len(a) != n for a in leaves):
        return None
    try:
        return tf.nest.map_structure(tf.convert_to_tensor, arrays), n
    except (TypeError, ValueError):
        return None


def fit_inputs(x, y, batch_size: int, seed: int, tf):
    """In-memory training data as one endless ``tf.data`` pipeline for a whole ``fit``.

    Given numpy arrays, Keras makes a new input iterator at every epoch (and
    one more after each epoch's last batch); on this project's 2-core test
    machine each costs about 10 ms, and one in four or five stalls for about
    120 ms, so a 20-epoch run of the digits CNN spent 0.4 to 0.9 s of its
    5 s between epochs. Here the sample order is shuffled afresh each epoch
    (seeded: a run repeats) and batched exactly as ``fit(x, y, shuffle=True)``
    batches it (the last batch of an epoch may be short); ``fit`` gets it with
    ``steps_per_epoch`` and so keeps one iterator for the whole run.

    Returns None where :func:`_element_tensors` does (``fit`` takes the arrays).
    """
    held = _element_tensors(x, y, tf)
    if held is None:
        return None
    tensors, n = held

    def gather(indices):
        return tf.nest.map_structure(lambda t: tf.gather(t, indices), tensors)

    order = tf.data.Dataset.range(n).shuffle(n, seed=seed, reshuffle_each_iteration=True)
    return order.batch(batch_size).map(gather).repeat().prefetch(2)


def eval_inputs(x, y, batch_size: int, tf):
    """In-memory validation data as a plain ``tf.data`` dataset, in order, batched.

    ``fit`` evaluates after every epoch and makes a new iterator each time.
    Over arrays, Keras's pipeline (a shuffled index map, parallel batch
    gathering, prefetch threads) makes that iterator slow: validating the
    digits CNN's 142 samples took 0.78 s of a 20-epoch run, 0.35 s over this
    dataset (the same batches and metrics). None where
    :func:`_element_tensors` is.
    """
    held = _element_tensors(x, y, tf)
    return None if held is None else tf.data.Dataset.from_tensor_slices(held[0]).batch(batch_size)


def extra_metrics(recipe: dict, model, dataset, state: RunState | None = None) -> dict[str, float]:
    """The template's own measures: ``recipe["extra_metrics"]`` names ``fn(model, dataset, recipe)``.

    It returns metrics named like Keras's (``test_token_accuracy``,
    ``fusion_gain``...), which join ``result.metrics`` and can be the quality.
    A function that also takes a ``state`` keyword gets the run's state, so a
    long measurement (training models to compare with) reports progress and
    honours pause and stop.
    """
    target = recipe.get("extra_metrics")
    if not target:
        return {}
    from models.views import resolve

    try:
        fn = resolve(target)
    except (ValueError, ImportError, AttributeError) as exc:
        raise TrainingError(f"the recipe's extra_metrics {target!r} cannot be found: {exc}") from None
    kwargs = {"state": state} if state is not None and "state" in inspect.signature(fn).parameters else {}
    return {k: float(v) for k, v in (fn(model, dataset, recipe, **kwargs) or {}).items()}


def epoch_metrics_function(recipe: dict, dataset):
    """The recipe's per-epoch measures as ``f(model) -> dict``, or None.

    ``recipe["epoch_metrics"]`` names ``fn(model, dataset, recipe)`` (like
    ``extra_metrics``), called at the end of every epoch; its values join the
    epoch's logs, so they are plotted and can be the ``monitor`` (a GAN's
    modes covered, say, where no loss tells the best epoch).
    """
    target = recipe.get("epoch_metrics")
    if not target:
        return None
    from models.views import resolve

    try:
        fn = resolve(target)
    except (ValueError, ImportError, AttributeError) as exc:
        raise TrainingError(f"the recipe's epoch_metrics {target!r} cannot be found: {exc}") from None
    return lambda model: {k: float(v) for k, v in (fn(model, dataset, recipe) or {}).items()}


def quality_of(recipe: dict, metrics: dict) -> dict | None:
    """The template's quality measure (``recipe["quality"]``) as ``{"metric", "value"}``."""
    quality = recipe.get("quality")
    if not quality:
        return None
    metric = quality["metric"] if isinstance(quality, dict) else quality
    if metric not in metrics:
        return None
    return {"metric": metric, "value": metrics[metric]}


def _first(x):
    if isinstance(x, dict):
        return next(iter(x.values()))
    if isinstance(x, (list, tuple)):
        return x[0]
    return x


def _take(x, n):
    if isinstance(x, dict):
        return {k: v[:n] for k, v in x.items()}
    if isinstance(x, (list, tuple)):
        return [v[:n] for v in x]
    return x[:n]


def _fit_error_message(exc: Exception, model, ds) -> str:
    msg = " ".join(str(exc).split())
    want = [tuple(t.shape[1:]) for t in getattr(model, "inputs", None) or []]
    got = tuple(np.shape(_first(ds.x_train))[1:])
    if "shape" in msg.lower() or "incompatible" in msg.lower():
        return (f"the data does not fit the model: the model takes inputs of shape {want} per "
                f"sample, the data has {got}. Adapt the Input layer (or pick other data). "
                f"Keras said: {msg[:300]}")
    return f"training failed: {msg[:500]}"


def _recipe_callbacks(recipe: dict, out_dir, monitor: tuple[str, str], keras) -> list:
    cbs = []
    spec = recipe.get("callbacks") or {}
    monitor_default, mode = monitor
    es = spec.get("early_stopping")
    if es:
        es = {} if es is True else dict(es)
        if "monitor" not in es:  # a monitor of the recipe's own keeps Keras's "auto" mode
            es.update(monitor=monitor_default, mode=es.get("mode", mode))
        es.setdefault("patience", 5)
        es.setdefault("restore_best_weights", True)
        cbs.append(keras.callbacks.EarlyStopping(**es))
    rl = spec.get("reduce_lr")
    if rl:
        rl = {} if rl is True else dict(rl)
        if "monitor" not in rl:
            rl.update(monitor=monitor_default, mode=rl.get("mode", mode))
        rl.setdefault("patience", 3)
        rl.setdefault("factor", 0.5)
        cbs.append(keras.callbacks.ReduceLROnPlateau(**rl))
    if out_dir is not None:
        out = Path(out_dir)
        (out / "checkpoints").mkdir(parents=True, exist_ok=True)
        cbs.append(keras.callbacks.ModelCheckpoint(
            str(out / "checkpoints" / "best.weights.h5"), monitor=monitor_default, mode=mode,
            save_best_only=True, save_weights_only=True))
        cbs.append(keras.callbacks.ModelCheckpoint(
            str(out / "checkpoints" / "last.weights.h5"), save_weights_only=True))
        cbs.append(keras.callbacks.CSVLogger(str(out / "history.csv")))
        tb = spec.get("tensorboard", True)
        if tb:
            tb = {} if tb is True else dict(tb)
            tb.setdefault("histogram_freq", 0)  # histograms cost ~45% of fit time
            tb.setdefault("write_graph", False)
            cbs.append(keras.callbacks.TensorBoard(log_dir=str(out / "logs"), **tb))
    return cbs


__all__ = ["train", "TrainResult", "TrainingError", "LiveCallback", "effective_recipe",
           "compile_model", "make_optimizer", "load_project_data"]
