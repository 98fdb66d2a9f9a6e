"""Custom training loops, driven by the same runner as ``fit``.

A template whose model needs its own step (a GAN's two players, a diffusion
model's noise schedule, an RL agent's environment) names a :class:`Loop` in
its recipe (``"loop": "gan"`` or ``"loop": "package.module:Class"``). The
driver here gives every loop what ``fit`` gets from
:class:`models.training.LiveCallback`: progress, per-step and per-epoch
partial results, pause and resume, stop keeping the best weights, and a guard
that stops on a NaN loss and restores the last good weights.
"""
from __future__ import annotations

import importlib
import math
import time
from typing import Any

from models.runner import Cancelled, RunState

# Short names for the loops that ship with LayerForge.
LOOPS: dict[str, str] = {}


class Loop:
    """Base class: subclasses implement :meth:`train_epoch` (and usually :meth:`evaluate`).

    Attributes:
        project: the project (its graphs are the loop's models).
        recipe: the effective recipe.
        dataset: the loaded data (or None for loops that make their own, e.g. RL).
        monitor: the log key whose lowest value marks the best weights.
    """

    monitor = "loss"

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


def resolve(name: str) -> type[Loop]:
    target = LOOPS.get(name, name)
    if ":" not in target:
        from models.training import TrainingError

        raise TrainingError(f"unknown training loop {name!r}; known: {', '.join(sorted(LOOPS))}")
    module, cls = target.split(":", 1)
    return getattr(importlib.import_module(module), cls)


def run_loop(project, recipe: dict, *, state: RunState, dataset=None, out_dir=None):
    """Drive a custom loop with the same guarantees as ``fit``."""
    from models.training import TrainResult, load_project_data, quality_of

    cls = resolve(recipe["loop"])
    if dataset is None and project.dataset is not None:
        dataset = load_project_data(project, recipe)
    loop = cls(project, recipe, dataset)
    loop.build()
    epochs = int(recipe.get("epochs", 10))
    steps = loop.steps_per_epoch()
    state.emit("begin", {"epochs": epochs, "steps": steps, "layers": list(loop.models)})
    _emit_view(state, loop, 0)
    history: dict[str, list[float]] = {}
    good = loop.get_weights()
    best, best_value, best_epoch = good, math.inf, None
    stopped, message = "completed", ""
    t0 = time.perf_counter()
    total_steps = 0
    for epoch in range(epochs):
        reporter = StepReporter(state, epoch, epochs, steps)
        reporter.global_step = total_steps
        t_epoch = time.perf_counter()
        try:
            logs = dict(loop.train_epoch(epoch, reporter) or {})
        except _NanLoss:
            loop.set_weights(good)
            stopped, message = "nan", reporter.nan or "the loss became NaN"
            break
        except Cancelled:
            loop.set_weights(best)
            stopped = "stopped"
            message = (f"stopped; kept the best weights (epoch {best_epoch})" if best_epoch
                       else "stopped before the first epoch ended")
            break
        total_steps = reporter.global_step
        if not all(math.isfinite(v) for v in logs.values() if isinstance(v, (int, float))):
            loop.set_weights(good)
            stopped, message = "nan", f"a metric became NaN at epoch {epoch + 1}; the last good weights were restored"
            break
        good = loop.get_weights()
        logs.setdefault("samples_per_second",
                        reporter.count * int(recipe.get("batch_size", 1)) / max(1e-9, time.perf_counter() - t_epoch))
        value = logs.get(loop.monitor)
        if value is not None and value < best_value:
            best, best_value, best_epoch = good, float(value), epoch + 1
        for k, v in logs.items():
            history.setdefault(k, []).append(float(v))
        state.emit("epoch", {"epoch": epoch + 1, "logs": logs})
        _emit_view(state, loop, epoch + 1)
    seconds = time.perf_counter() - t0
    result = TrainResult(model=next(iter(loop.models.values()), None), history=history,
                         seconds=seconds, stopped=stopped, message=message, best_epoch=best_epoch)
    result.epochs_run = len(next(iter(history.values()), []))
    result.samples_per_second = total_steps * int(recipe.get("batch_size", 1)) / seconds if seconds else 0.0
    result.metrics.update(loop.evaluate())
    if getattr(loop, "_view_error", None):
        result.notes.append(loop._view_error)
    result.models = loop.models
    result.quality = quality_of(recipe, result.metrics)
    state.emit("done", result.to_json())
    return result
