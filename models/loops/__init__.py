"""Custom training, driven by the same runner as ``fit``.

A template whose model needs its own step names it in its recipe
(``"loop": "gan"`` or ``"loop": "package.module:Class"``), with options in
``"loop_options"``. Two kinds of step exist, and the panel cannot tell them
apart:

* a :class:`~models.loops.trainer.Trainer`, a ``keras.Model`` subclass that
  holds the project's graphs and overrides ``train_step`` (the idiomatic
  Keras 3 way: autoencoders, VAEs, GANs, diffusion, contrastive learning).
  It trains with ``fit``, through :func:`models.training.train`;
* a :class:`Loop`, a small object for training that is not gradient descent
  on one loss (greedy RBM pre-training, a self-organizing map, an RL agent).
  :func:`run_loop` gives it what ``fit`` gets from
  :class:`models.training.LiveCallback`: progress, per-step and per-epoch
  partial results, pause and resume, stop keeping the best weights,
  checkpoints, and a guard that stops on a NaN loss and restores the last
  good weights.
"""
from __future__ import annotations

import importlib
import math
import time
from typing import Any

from models.runner import Cancelled, RunState

GRAD_NORM_READS = 8  # gradient-norm readings an epoch where a loop's optimizer runs eagerly

# Short names for the loops and trainers that ship with LayerForge.
LOOPS: dict[str, str] = {
    "autoencoder": "models.loops.generative:AutoencoderTrainer",
    "vae": "models.loops.generative:VAETrainer",
    "gan": "models.loops.generative:GANTrainer",
    "diffusion": "models.loops.generative:DiffusionTrainer",
    "simclr": "models.loops.contrastive:SimCLRTrainer",
    "dbn": "models.loops.unsupervised:DBNLoop",
    "som": "models.loops.unsupervised:SOMLoop",
}


class Loop:
    """Base class: subclasses implement :meth:`train_epoch` (and usually :meth:`evaluate`).

    Attributes:
        project: the project (its graphs are the loop's models).
        recipe: the effective recipe.
        dataset: the loaded data (or None for loops that make their own, e.g. RL).
        monitor: the log key that marks the best weights (an epoch without
            it is never the best).
        monitor_mode: ``"min"`` (the lowest value is best) or ``"max"``.
        evaluable: True when the first model maps the data's inputs to its
            targets, so the app's evaluation page applies to it.
    """

    monitor = "loss"
    monitor_mode = "min"
    evaluable = False

    def __init__(self, project, recipe: dict, dataset=None):
        self.project, self.recipe, self.dataset = project, recipe, dataset
        self.models: dict[str, Any] = {}

    def build(self) -> None:
        """Build the models (default: one per project graph, with saved weights)."""
        for name in self.project.graphs:
            self.models[name] = self.project.build(name, with_weights=self.project.has_weights(name))

    def steps_per_epoch(self) -> int:
        return 1

    def train_epoch(self, epoch: int, step: "StepReporter") -> dict[str, float]:
        """Train one epoch; call ``step(loss)`` after each step. Returns the epoch's logs."""
        raise NotImplementedError

    def evaluate(self) -> dict[str, float]:
        """Metrics on held-out data, named ``test_*`` (and the template's quality metric)."""
        return {}

    def live_view(self) -> dict | None:
        """The template's live view (a :mod:`models.views` dict: samples, a map...), or None."""
        return None

    def get_weights(self) -> dict[str, list]:
        return {k: m.get_weights() for k, m in self.models.items()}

    def set_weights(self, weights: dict[str, list]) -> None:
        for k, w in weights.items():
            self.models[k].set_weights(w)


class StepReporter:
    """Handed to :meth:`Loop.train_epoch`: reports a step, honours pause and stop."""

    def __init__(self, state: RunState, epoch: int, epochs: int, steps: int):
        self.state, self.epoch, self.epochs, self.steps = state, epoch, epochs, max(1, steps)
        self.count = 0
        self.global_step = 0
        self.nan: str | None = None

    def __call__(self, loss: float, **extra) -> None:
        self.count += 1
        self.global_step += 1
        loss = float(loss)
        self.state.emit("batch", (self.global_step, loss))
        self.state.progress((self.epoch + min(1.0, self.count / self.steps)) / self.epochs,
                            f"epoch {self.epoch + 1}/{self.epochs}, step {self.count}/{self.steps}")
        if not math.isfinite(loss):
            self.nan = (f"the loss became {'NaN' if math.isnan(loss) else 'infinite'} at epoch "
                        f"{self.epoch + 1}, step {self.count}; training stopped and the last good "
                        "weights were restored. Try a lower learning rate")
            raise _NanLoss()
        self.state.checkpoint()


class _NanLoss(Exception):
    pass


def monitor_of(recipe: dict, default: str, default_mode: str = "min") -> tuple[str, str]:
    """The recipe's ``"monitor"`` (a log key, or ``{"metric", "mode"}``), else the default."""
    spec = recipe.get("monitor")
    if not spec:
        return default, default_mode
    if isinstance(spec, str):
        return spec, "min"
    mode = spec.get("mode", "min")
    if mode not in ("min", "max"):
        from models.training import TrainingError

        raise TrainingError(f"the recipe's monitor mode must be 'min' or 'max'; got {mode!r}")
    return spec["metric"], mode


def _weight_histograms(models: dict) -> dict:
    """Every layer's weights (trained by the loop, whatever Keras calls trainable), as fit reports them."""
    from models.training import _histograms

    several = len(models) > 1
    out = {}
    for name, model in models.items():
        out.update(_histograms(model, trainable_only=False, prefix=f"{name}/" if several else ""))
    return out


def _emit_view(state: RunState, loop: Loop, epoch: int) -> None:
    """The loop's live view (see :mod:`models.views`); a failing view is switched off, once."""
    if getattr(loop, "_view_error", None):
        return
    try:
        shown = loop.live_view()
    except Exception as exc:  # a picture must never stop training
        loop._view_error = f"the live view is off: {' '.join(str(exc).split())[:300]}"
        return
    if shown is not None:
        state.emit("view", {"epoch": epoch, "view": shown})


def resolve(name: str) -> type:
    """The :class:`Loop` or :class:`~models.loops.trainer.Trainer` class a recipe names.

    Raises:
        TrainingError: the name is unknown or does not lead to a class.
    """
    from models.training import TrainingError

    target = LOOPS.get(name, name)
    if not isinstance(target, str) or ":" not in target:
        raise TrainingError(f"unknown training loop {name!r}; known: fit, {', '.join(sorted(LOOPS))}")
    module, cls = target.split(":", 1)
    try:
        found = getattr(importlib.import_module(module), cls)
    except (ImportError, AttributeError) as exc:
        raise TrainingError(f"the training loop {name!r} cannot be found: {exc}") from None
    if not isinstance(found, type):
        raise TrainingError(f"the training loop {name!r} is not a class")
    return found


def is_loop(cls: type) -> bool:
    """True for a :class:`Loop` (run by :func:`run_loop`), False for a Keras trainer (run by ``fit``)."""
    return issubclass(cls, Loop)


def better(value: float, best: float | None, mode: str) -> bool:
    """Whether ``value`` beats ``best``; in ``"max"`` mode a tie counts (a later epoch wins it).

    Ties are common for counted measures (modes covered, clusters found),
    and a later epoch with the same count has trained longer.
    """
    if best is None:
        return True
    return value >= best if mode == "max" else value < best


class _Checkpoints:
    """Best and last weights of every model, and ``history.csv``, under ``out_dir`` (as fit writes them).

    Files: ``checkpoints/best.weights.h5`` and ``checkpoints/last.weights.h5``
    for the first model, ``checkpoints/best.NAME.weights.h5`` and
    ``checkpoints/last.NAME.weights.h5`` for the others (the names a project
    gives its graphs' weights).
    """

    def __init__(self, out_dir):
        from pathlib import Path

        self.dir = Path(out_dir) / "checkpoints"
        self.dir.mkdir(parents=True, exist_ok=True)
        self.history = Path(out_dir) / "history.csv"

    def _path(self, kind: str, name: str, first: str):
        return self.dir / (f"{kind}.weights.h5" if name == first else f"{kind}.{name}.weights.h5")

    @staticmethod
    def load(models: dict, path) -> None:
        """Load a checkpoint of the first model, and its siblings into the others.

        Raises:
            TrainingError: a file is missing or does not fit its model.
        """
        from pathlib import Path

        from models.training import TrainingError

        path = Path(path)
        kind = path.name[: -len(".weights.h5")] if path.name.endswith(".weights.h5") else path.stem
        first = next(iter(models), None)
        for name, model in models.items():
            source = path if name == first else path.with_name(f"{kind}.{name}.weights.h5")
            if not source.is_file():
                raise TrainingError(f"{source}: no such checkpoint; a loop's checkpoint is one file "
                                    "per model, side by side in one folder")
            optimizer = getattr(model, "optimizer", None)
            if optimizer is not None and not optimizer.built:
                optimizer.build(model.trainable_variables)  # its saved moments load too
            try:
                model.load_weights(str(source))
            except Exception as exc:
                raise TrainingError(f"{source}: these weights cannot be loaded into {name} "
                                    f"({' '.join(str(exc).split())[:200]})") from None

    def save(self, models: dict, best: bool) -> None:
        first = next(iter(models), None)
        for name, model in models.items():
            model.save_weights(str(self._path("last", name, first)))
            if best:
                model.save_weights(str(self._path("best", name, first)))

    def write_history(self, rows: list[dict]) -> None:
        """One line per epoch; a column an epoch did not log (another phase's) stays empty."""
        import csv

        keys = list(dict.fromkeys(k for row in rows for k in row))
        with open(self.history, "w", newline="", encoding="utf-8") as f:
            writer = csv.writer(f)
            writer.writerow(["epoch", *keys])
            for i, row in enumerate(rows):
                writer.writerow([i, *(row.get(k, "") for k in keys)])


def _loop_learning_rate(loop) -> float | None:
    """The learning rate of a loop's first optimizer now; None without one."""
    from models.training import current_lr, loop_optimizers

    optimizers = loop_optimizers(loop)
    rate = current_lr(optimizers[0]) if optimizers else float("nan")
    return rate if math.isfinite(rate) else None


def run_loop(project, recipe: dict, *, state: RunState, dataset=None, out_dir=None,
             initial_weights=None):
    """Drive a custom loop with the same guarantees as ``fit``.

    Args:
        project: the project whose graphs the loop trains.
        recipe: the effective recipe (``"loop"`` names the loop).
        state: where progress, partial results, pause and stop go.
        dataset: loaded data (default: the project's).
        out_dir: write best and last checkpoints of every model and
            ``history.csv`` there.
        initial_weights: a checkpoint of this loop's first model
            (``.../best.weights.h5``); the other models load the files beside
            it (``best.NAME.weights.h5``). The loop then runs from its start
            with these weights.

    Returns:
        A :class:`models.training.TrainResult` whose ``models`` holds every
        trained model and ``model`` the first.
    """
    from models.training import (
        GradNormTap,
        TrainingError,
        TrainResult,
        _seed,
        epoch_metrics_function,
        load_project_data,
        quality_of,
    )

    cls = resolve(recipe["loop"])
    if not is_loop(cls):
        raise TrainingError(f"{recipe['loop']!r} is a Keras trainer; it trains with fit (models.training.train)")
    _seed(recipe.get("seed", 0))  # the same run twice gives the same weights, as with fit
    if dataset is None and project.dataset is not None:
        dataset = load_project_data(project, recipe)
    loop = cls(project, recipe, dataset)
    loop.build()
    if initial_weights:
        _Checkpoints.load(loop.models, initial_weights)
    epochs = int(recipe.get("epochs", 10))
    steps = loop.steps_per_epoch()
    # Gradient norms and the learning rate, as fit shows them, for loops with optimizers.
    tap = GradNormTap.for_loop(loop) if recipe.get("grad_norms", True) else None
    if tap is not None:
        tap.sample_every(steps // GRAD_NORM_READS)  # only where its steps run eagerly
    monitor, mode = monitor_of(recipe, loop.monitor, loop.monitor_mode)
    extra = epoch_metrics_function(recipe, dataset)
    checkpoints = _Checkpoints(out_dir) if out_dir is not None else None
    state.emit("begin", {"epochs": epochs, "steps": steps, "layers": list(loop.models)})
    _emit_view(state, loop, 0)
    history: dict[str, list[float]] = {}
    rows: list[dict] = []  # each epoch's logs (a loop's phases log different keys)
    good = loop.get_weights()
    best, best_value, best_epoch = good, None, None
    stopped, message = "completed", ""
    t0 = time.perf_counter()
    total_steps = 0
    for epoch in range(epochs):
        reporter = StepReporter(state, epoch, epochs, steps)
        reporter.global_step = total_steps
        t_epoch = time.perf_counter()
        try:
            state.checkpoint()  # a pause asked for during the last epoch's views holds here
            logs = dict(loop.train_epoch(epoch, reporter) or {})
        except _NanLoss:
            loop.set_weights(good)
            stopped, message = "nan", reporter.nan or "the loss became NaN"
            break
        except Cancelled:
            stopped = "stopped"
            if best_epoch:
                loop.set_weights(best)
                message = f"stopped; kept the best weights (epoch {best_epoch}, {monitor} {best_value:.4g})"
            elif epoch:
                loop.set_weights(good)
                message = (f"stopped; kept the weights of epoch {epoch} (no epoch had measured "
                           f"{monitor} yet)")
            else:
                loop.set_weights(good)
                message = "stopped before the first epoch ended; the weights are as they started"
            break
        total_steps = reporter.global_step
        if extra is not None:
            logs.update(extra(loop))
        if not all(math.isfinite(v) for v in logs.values() if isinstance(v, (int, float))):
            loop.set_weights(good)
            stopped, message = "nan", f"a metric became NaN at epoch {epoch + 1}; the last good weights were restored"
            break
        good = loop.get_weights()
        logs.setdefault("samples_per_second",
                        reporter.count * int(recipe.get("batch_size", 1)) / max(1e-9, time.perf_counter() - t_epoch))
        value = logs.get(monitor)
        improved = value is not None and better(float(value), best_value, mode)
        if improved:
            best, best_value, best_epoch = good, float(value), epoch + 1
        for k, v in logs.items():
            history.setdefault(k, []).append(float(v))
        rows.append({k: float(v) for k, v in logs.items()})
        if checkpoints is not None:
            checkpoints.save(loop.models, best=improved)
            checkpoints.write_history(rows)
        payload = {"epoch": epoch + 1, "logs": dict(logs)}
        rate = _loop_learning_rate(loop)
        if rate is not None:
            payload["logs"].setdefault("learning_rate", rate)
        if tap is not None:
            payload["grad_norms"] = tap.epoch_norms()
        if recipe.get("histograms", True):
            payload["histograms"] = _weight_histograms(loop.models)
        state.emit("epoch", payload)
        _emit_view(state, loop, epoch + 1)
    seconds = time.perf_counter() - t0
    result = TrainResult(model=next(iter(loop.models.values()), None), history=history,
                         seconds=seconds, stopped=stopped, message=message, best_epoch=best_epoch)
    result.epochs_run = len(rows)
    result.samples_per_second = total_steps * int(recipe.get("batch_size", 1)) / seconds if seconds else 0.0
    result.metrics.update(loop.evaluate())
    result.notes = list(getattr(dataset, "notes", None) or [])  # what was done to the data, as fit says
    if getattr(loop, "_view_error", None):
        result.notes.append(loop._view_error)
    result.models = loop.models
    result.evaluable = loop.evaluable
    result.quality = quality_of(recipe, result.metrics)
    state.emit("done", result.to_json())
    return result
