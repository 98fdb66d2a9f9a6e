"""Search over a project's marked parameters with keras-tuner.

A user marks parameters as search ranges: a node's numeric or choice
parameter (``units``, ``filters``, ``kernel_size``, ``rate``,
``activation``...), how many times a nested block is repeated, or a recipe
setting (learning rate, batch size, epochs). The marks live in the recipe,
never in the node configs (those stay exact Keras configs)::

    recipe["search"] = {
        "space": [
            {"node": "conv_1", "param": "filters", "type": "int",
             "min": 16, "max": 64, "step": 16},
            {"node": "dropout", "param": "rate", "type": "float", "min": 0.1, "max": 0.5},
            {"node": "dense", "param": "activation", "type": "choice",
             "values": ["relu", "tanh"]},
            {"node": "block", "param": "repeats", "type": "int", "min": 1, "max": 3},
            {"recipe": "learning_rate", "type": "float", "min": 1e-4, "max": 1e-2,
             "log": true},
        ],
        "algorithm": "random",     # random | hyperband | bayesian
        "trials": 10,              # the trial budget
        "objective": null,         # default: val_accuracy (max), else val_loss (min)
    }

Repeated blocks: a nested-model node (a group made with Edit > Group) marked
``repeats`` is chained ``n`` times, each copy with its own weights (``block``,
``block_2``, ...), the copies' inputs taking the previous copy's output shape.

A search (:func:`run_search`) trains every trial with :func:`models.training.train`
on the project's data and recipe (so early stopping, the NaN guard and the
quick preset apply as they do to any training), scores it on the validation
split, and reports through a :class:`~models.runner.RunState`: progress, an
event per finished trial (its parameters and score), pause and stop between
and inside trials. Stop keeps the finished trials and the best model so far.
The best trial becomes a new project: the chosen values substituted, its
trained weights in memory.
"""
from __future__ import annotations

import copy
import json
import math
import shutil
import tempfile
import time
import warnings
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from models.graph import Edge, Graph, GraphError, Node, _rename_in_structure
from models.recipe import settings_without_effect
from models.runner import Cancelled, RunState

ALGORITHMS = {"random": "Random search", "hyperband": "Hyperband",
              "bayesian": "Bayesian optimization"}
TYPES = ("int", "float", "choice")
REPEATS = "repeats"
# Recipe settings that can be searched, with the kind of value they take.
RECIPE_PARAMS = {"learning_rate": "float", "batch_size": "int", "epochs": "int"}
DEFAULT_TRIALS = 10
# Common alternatives offered first when an activation is marked.
_ACTIVATIONS = ("relu", "tanh", "gelu", "elu", "selu", "swish", "sigmoid")


class SearchError(ValueError):
    """A search that cannot run as set up; the message says what to change."""


# --------------------------------------------------------------------------- the space


def settings(recipe: dict) -> dict:
    """The recipe's search settings with defaults filled in (a copy)."""
    cfg = copy.deepcopy(recipe.get("search") or {})
    cfg.setdefault("space", [])
    cfg.setdefault("algorithm", "random")
    cfg.setdefault("trials", DEFAULT_TRIALS)
    cfg.setdefault("objective", None)
    return cfg


def space(recipe: dict) -> list[dict]:
    """The marked ranges (an empty list when nothing is marked)."""
    return list((recipe.get("search") or {}).get("space") or [])


def mark_name(entry: dict) -> str:
    """The hyperparameter's name: ``conv_1.filters`` or ``recipe.learning_rate``."""
    if "recipe" in entry:
        return f"recipe.{entry['recipe']}"
    return f"{entry.get('node')}.{entry.get('param')}"


def _same_target(entry: dict, node: str | None, param: str) -> bool:
    if node is None:
        return entry.get("recipe") == param
    return entry.get("node") == node and entry.get("param") == param


def find_mark(recipe: dict, node: str | None, param: str) -> dict | None:
    """The mark on ``node``'s ``param`` (``node=None``: the recipe setting), or None."""
    return next((e for e in space(recipe) if _same_target(e, node, param)), None)


def with_mark(recipe: dict, node: str | None, param: str, entry: dict | None) -> dict:
    """A copy of ``recipe`` with the mark on ``node``/``param`` set to ``entry`` (None removes it).

    The mark keeps its place in the space, so the table columns stay in order.
    """
    out = copy.deepcopy(recipe)
    cfg = out.setdefault("search", {})
    marks = list(cfg.get("space") or [])
    index = next((i for i, e in enumerate(marks) if _same_target(e, node, param)), None)
    if entry is not None:
        entry = copy.deepcopy(entry)
        if node is None:
            entry.pop("node", None)
            entry.pop("param", None)
            entry["recipe"] = param
        else:
            entry.pop("recipe", None)
            entry["node"], entry["param"] = node, param
        if index is None:
            marks.append(entry)
        else:
            marks[index] = entry
    elif index is not None:
        del marks[index]
    cfg["space"] = marks
    if not marks and set(cfg) <= {"space"}:
        del out["search"]
    return out


def with_settings(recipe: dict, **changes) -> dict:
    """A copy of ``recipe`` with search settings changed (``algorithm``, ``trials``, ``objective``)."""
    out = copy.deepcopy(recipe)
    cfg = out.setdefault("search", {})
    cfg.setdefault("space", [])
    cfg.update(changes)
    return out


def follow_rename(recipe: dict, old: str, new: str) -> None:
    """Marks follow a renamed layer (in place; undoing the rename renames them back)."""
    for entry in space(recipe):
        if entry.get("node") == old:
            entry["node"] = new


def searchable(key: str, meta: dict | None, value: Any) -> str | None:
    """The kind of range a parameter can be searched over (``int``/``float``/``choice``), or None.

    Numbers, tuples of whole numbers (a kernel size: one number for every
    axis), booleans and parameters with a list of choices can be searched;
    names, initializers and the like cannot.
    """
    meta = meta or {}
    kind = meta.get("type")
    if key in ("name", "trainable", "dtype", "seed", "data_format") or isinstance(value, dict):
        return None
    if isinstance(value, bool):
        return "choice"
    if kind in ("choice", "activation") and meta.get("choices"):
        return "choice"
    if isinstance(value, int) and kind in (None, "int"):
        return "int"
    if isinstance(value, float) and kind in (None, "float", "int"):
        return "float"
    if isinstance(value, (list, tuple)) and value and all(
            isinstance(v, int) and not isinstance(v, bool) for v in value) and len(set(value)) == 1:
        return "int"  # kernel_size [3, 3]: one size for every axis
    return None


def default_mark(key: str, meta: dict | None, value: Any) -> dict:
    """A first range around the current value, for the user to adjust.

    Whole numbers span half to twice the value; fractions (a dropout rate)
    likewise within their bounds; a learning rate spans a tenth to ten times,
    on a log scale; choices start with the current one and two common others.
    """
    meta = meta or {}
    kind = REPEATS if key == REPEATS else searchable(key, meta, value)
    if key == REPEATS:
        return {"type": "int", "min": 1, "max": 3, "step": 1}
    if key == "batch_size":
        v = int(value or 32)
        return {"type": "choice", "values": sorted({max(1, v // 2), v, v * 2})}
    if kind == "choice":
        if isinstance(value, bool):
            return {"type": "choice", "values": [value, not value]}
        choices = list(meta.get("choices") or [])
        others = [c for c in _ACTIVATIONS if c in choices] if meta.get("type") == "activation" else []
        others += [c for c in choices if c not in others]
        values = [value] + [c for c in others if c != value][:2]
        return {"type": "choice", "values": values}
    if kind == "int":
        v = int(value[0] if isinstance(value, (list, tuple)) else value)
        lo = max(int(meta.get("min", 1) if meta.get("min") is not None else 1), v // 2)
        hi = max(lo + 1, v * 2)
        if meta.get("max") is not None:
            hi = min(hi, int(meta["max"]))
        step = max(1, v // 4) if v >= 8 else 1
        return {"type": "int", "min": lo, "max": hi, "step": step, "log": False}
    if kind == "float":
        v = float(value)
        if key == "learning_rate" or "learning_rate" in key or (0 < v < 0.01):
            return {"type": "float", "min": _round(v / 10), "max": _round(v * 10), "log": True}
        lo, hi = v / 2, v * 2 if v else 1.0
        if meta.get("min") is not None:
            lo = max(lo, float(meta["min"]))
        if meta.get("max") is not None:
            hi = min(hi, float(meta["max"]) * (0.9 if float(meta["max"]) == 1.0 else 1.0))
        return {"type": "float", "min": _round(lo), "max": _round(max(hi, lo)), "log": False}
    raise SearchError(f"{key} cannot be searched: it is neither a number nor a choice")


def _round(x: float) -> float:
    return float(f"{x:.3g}")


def check_mark(entry: dict, meta: dict | None = None) -> str:
    """What is wrong with a mark ('' when it is a usable range).

    Args:
        entry: the mark.
        meta: the catalog's metadata of the parameter (for its bounds), if known.
    """
    meta = meta or {}
    kind = entry.get("type")
    if kind not in TYPES:
        return f"unknown range type {kind!r}; use int, float or choice"
    if kind == "choice":
        values = entry.get("values")
        if not isinstance(values, list) or len(values) < 2:
            return "give at least two values to choose from"
        texts = [json.dumps(v, sort_keys=True) for v in values]
        if len(set(texts)) != len(texts):
            return "a value is listed twice"
        choices = meta.get("choices")
        if choices:
            unknown = [v for v in values if not isinstance(v, bool) and v not in choices]
            if unknown:
                return f"{unknown[0]!r} is not one of the choices Keras offers here"
        return ""
    lo, hi = entry.get("min"), entry.get("max")
    if not all(isinstance(v, (int, float)) and not isinstance(v, bool) for v in (lo, hi)):
        return "give the range's lowest and highest value"
    if kind == "int" and not (float(lo).is_integer() and float(hi).is_integer()):
        return "a whole-number range needs whole-number ends"
    if not lo < hi:
        return f"the lowest value ({lo}) must be below the highest ({hi})"
    if meta.get("min") is not None and lo < meta["min"]:
        return f"the lowest value must be at least {meta['min']}"
    if meta.get("max") is not None and hi > meta["max"]:
        return f"the highest value must be at most {meta['max']}"
    step = entry.get("step")
    if step is not None:
        if not isinstance(step, (int, float)) or isinstance(step, bool) or step <= 0:
            return "the step must be a positive number"
        if kind == "int" and not float(step).is_integer():
            return "a whole-number range needs a whole-number step"
        if not entry.get("log") and step > hi - lo:
            return "the step is larger than the range"
    if entry.get("log"):
        if lo <= 0:
            return "a log scale needs a lowest value above 0"
        if kind == "float" and step is not None:
            return "a log-scale range of fractions takes no step"
    return ""


def problems(project) -> list[str]:
    """Why the project's marks cannot be searched (empty when they can)."""
    marks = space(project.recipe)
    if not marks:
        return ["no parameter is marked for search: mark a range in the inspector "
                "(the range button beside a parameter)"]
    out = []
    graph = project.graph
    seen = set()
    for entry in marks:
        name = mark_name(entry)
        if name in seen:
            out.append(f"{name} is marked twice")
        seen.add(name)
        if "recipe" in entry:
            if entry["recipe"] not in RECIPE_PARAMS:
                out.append(f"{name}: only {', '.join(RECIPE_PARAMS)} of the recipe can be searched")
            elif entry["recipe"] in settings_without_effect(project.recipe):
                out.append(f"{name}: this training does not use it (its own loop sets its "
                           "steps), so searching it changes nothing; remove its mark")
        elif entry.get("node") not in graph:
            out.append(f"{name}: there is no layer {entry.get('node')!r} any more "
                       "(deleted?); remove its mark")
            continue
        else:
            node = graph.node(entry["node"])
            param = entry.get("param")
            if param == REPEATS:
                if not node.is_model:
                    out.append(f"{name}: only a nested block (Edit > Group) can be repeated")
            elif param not in node.config:
                out.append(f"{name}: {node.class_name} has no parameter {param!r}")
        problem = check_mark(entry)
        if problem:
            out.append(f"{name}: {problem}")
    return out


def current_value(project, entry: dict) -> Any:
    """The value the project uses now for a marked parameter (what it trains with unsearched)."""
    if "recipe" in entry:
        return recipe_value(project.recipe, entry["recipe"])
    if entry.get("param") == REPEATS:
        return 1
    node = project.graph.nodes.get(entry.get("node"))
    return None if node is None else node.config.get(entry.get("param"))


def recipe_value(recipe: dict, key: str) -> Any:
    """A searchable recipe setting's value (the learning rate sits in the optimizer's config)."""
    if key == "learning_rate" and "learning_rate" not in recipe:
        opt = recipe.get("optimizer")
        if isinstance(opt, dict):
            return (opt.get("config") or {}).get("learning_rate", 0.001)
        return 0.001
    return recipe.get(key, {"batch_size": 32, "epochs": 10}.get(key))


def describe_mark(entry: dict) -> str:
    """``16 … 64, step 16`` / ``1e-4 … 0.01, log`` / ``relu | tanh`` for people."""
    if entry.get("type") == "choice":
        return " | ".join(_text(v) for v in entry.get("values") or [])
    text = f"{_text(entry.get('min'))} … {_text(entry.get('max'))}"
    if entry.get("step") and not entry.get("log"):
        text += f", step {_text(entry['step'])}"
    if entry.get("log"):
        text += ", log scale"
    return text


def _text(v: Any) -> str:
    if isinstance(v, float):
        return f"{v:.4g}"
    if isinstance(v, list):
        return "×".join(str(x) for x in v)
    return str(v)


# --------------------------------------------------------------------------- substitution


def apply_values(project, values: dict[str, Any]):
    """A copy of ``project`` with the chosen values in place of its marked ranges.

    Args:
        project: the project whose recipe holds the marks.
        values: mark name (:func:`mark_name`) -> value.

    Returns:
        A new :class:`~models.project.Project` without weights and without
        search settings: the exact model and recipe of one trial.

    Raises:
        SearchError: a value that does not fit (a repeated block whose output
            cannot feed its own input...).
    """
    out = project.copy()
    out.weights = {}
    out.path = None
    graph = out.graph
    repeats: list[tuple[str, int]] = []
    recipe = out.recipe
    for entry in space(project.recipe):
        name = mark_name(entry)
        if name not in values:
            continue
        value = values[name]
        if "recipe" in entry:
            _set_recipe_value(recipe, entry["recipe"], value)
            if isinstance(recipe.get("quick"), dict) and entry["recipe"] in recipe["quick"]:
                recipe["quick"][entry["recipe"]] = value
        elif entry.get("param") == REPEATS:
            repeats.append((entry["node"], int(value)))
        else:
            node = graph.node(entry["node"])
            old = node.config.get(entry["param"])
            if isinstance(old, (list, tuple)) and not isinstance(value, (list, tuple)):
                value = [int(value)] * len(old)  # one kernel size for every axis
            try:
                graph.set_config(node.name, {entry["param"]: value})
            except GraphError as exc:
                raise SearchError(f"{name}: {exc}") from None
    for node_name, n in repeats:
        repeat_block(graph, node_name, n)
    recipe.pop("search", None)
    return out


def _set_recipe_value(recipe: dict, key: str, value: Any) -> None:
    if key == "learning_rate" and "learning_rate" not in recipe and isinstance(recipe.get("optimizer"), dict):
        recipe["optimizer"].setdefault("config", {})["learning_rate"] = float(value)
    else:
        recipe[key] = value


def repeat_block(graph: Graph, name: str, n: int) -> list[str]:
    """Chain nested block ``name`` ``n`` times in place; returns the copies' names (first is ``name``).

    Each copy is a fresh nested model with the block's layers (its own
    weights); its input takes the shape the previous copy puts out, so a block
    that keeps the shape (or settles to one) repeats cleanly.

    Raises:
        SearchError: the node is not a nested block with one input and one
            output, or a copy's output cannot feed the next copy.
    """
    node = graph.node(name)
    if not node.is_model:
        raise SearchError(f"{name}: only a nested block (Edit > Group) can be repeated")
    if n < 1:
        raise SearchError(f"{name}: a block is repeated at least once (got {n})")
    sub = node.subgraph
    if len(node.calls) != 1 or len(node.calls[0].slots) != 1 or len(sub.input_nodes()) != 1 \
            or len(sub.output_ports()) != 1:
        raise SearchError(f"{name}: a repeated block needs exactly one input and one output")
    if n == 1:
        return [name]
    leaving = graph.edges_from(name)
    for e in leaving:
        graph.edges.remove(e)
    names = [name]
    shape = _output_shape(sub, name)
    prev = name
    for i in range(2, n + 1):
        fresh = Node.from_dict(copy.deepcopy(node.to_dict()))
        fresh.name = graph.unique_name(f"{name}_{i}")
        fresh.config["name"] = fresh.name
        fresh.subgraph.name = fresh.name
        input_node = fresh.subgraph.nodes[fresh.subgraph.input_nodes()[0]]
        input_node.config["batch_shape"] = [None, *shape]
        graph.nodes[fresh.name] = fresh
        graph.edges.append(Edge(prev, 0, 0, fresh.name, 0, 0))
        shape = _output_shape(fresh.subgraph, fresh.name)
        names.append(fresh.name)
        prev = fresh.name
    for e in leaving:
        graph.edges.append(Edge(prev, e.src_call, e.src_index, e.dst, e.dst_call, e.dst_slot))
    if graph.output_structure is not None:
        graph.output_structure = _rename_in_structure(graph.output_structure, name, prev)
    return names


def _output_shape(sub: Graph, name: str) -> list:
    """The shape (batch axis dropped) a nested block puts out, from Keras."""
    from models.build import BuildError, build_model

    try:
        model = build_model(sub)
    except BuildError as exc:
        raise SearchError(f"{name}: the repeated block cannot be built: {exc}") from None
    return [d for d in model.outputs[0].shape[1:]]


# --------------------------------------------------------------------------- results


@dataclass
class TrialRecord:
    """One finished trial."""

    number: int
    params: dict[str, Any]
    score: float | None
    status: str = "ok"  # ok, failed
    seconds: float = 0.0
    epochs: int = 0
    metrics: dict[str, float] = field(default_factory=dict)
    message: str = ""

    def to_json(self) -> dict:
        return {"number": self.number, "params": self.params, "score": _num(self.score),
                "status": self.status, "seconds": round(self.seconds, 2), "epochs": self.epochs,
                "metrics": {k: _num(v) for k, v in self.metrics.items()},
                "message": self.message}


def _num(v):
    if v is None:
        return None
    f = float(v)
    return f if math.isfinite(f) else None


@dataclass
class SearchResult:
    """What a search found.

    Attributes:
        trials: every finished trial, in order.
        best: the best trial's number, or None when no trial finished.
        objective, direction: what was compared (``val_accuracy``, ``max``).
        best_project: the best trial as a new project (its values substituted,
            its trained weights in ``project.weights``), or None.
        best_model: the best trial's trained Keras model.
        stopped: ``completed``, ``stopped`` (by the user) or ``exhausted``
            (the space held no untried configuration).
    """

    trials: list[TrialRecord] = field(default_factory=list)
    best: int | None = None
    objective: str = "val_loss"
    direction: str = "min"
    algorithm: str = "random"
    budget: int = 0
    best_project: Any = None
    best_model: Any = None
    seconds: float = 0.0
    stopped: str = "completed"
    message: str = ""

    @property
    def best_trial(self) -> TrialRecord | None:
        return next((t for t in self.trials if t.number == self.best), None)

    def to_json(self) -> dict:
        best = self.best_trial
        return {"algorithm": self.algorithm, "objective": self.objective,
                "direction": self.direction, "budget": self.budget,
                "trials": [t.to_json() for t in self.trials],
                "best": best.to_json() if best else None, "seconds": round(self.seconds, 2),
                "stopped": self.stopped, "message": self.message}


def objective_of(cfg: dict, recipe: dict) -> tuple[str, str]:
    """The objective and its direction: the recipe's, else validation accuracy, else validation loss."""
    name = cfg.get("objective")
    if not name:
        metrics = [m for m in recipe.get("metrics") or [] if isinstance(m, str)]
        name = "val_accuracy" if "accuracy" in metrics else "val_loss"
    if not name.startswith("val_"):
        name = f"val_{name}"
    base = name[4:]
    direction = "min" if base == "loss" or base.endswith("error") or base in ("mae", "mse") else "max"
    return name, direction


def _better(a: float, b: float | None, direction: str) -> bool:
    if b is None:
        return True
    return a > b if direction == "max" else a < b


# --------------------------------------------------------------------------- the search


class _TrialState:
    """The search's RunState as one trial's training sees it.

    Progress becomes a share of the whole search, each epoch's metrics become
    a ``trial_epoch`` event, per-batch events are dropped (a table of trials
    has no use for them), and pause and stop reach into the trial's ``fit``
    through :class:`models.training.LiveCallback`'s checkpoints.
    """

    def __init__(self, state: RunState, number: int, budget: int):
        self.state, self.number, self.budget = state, number, max(1, budget)

    def progress(self, fraction: float, message: str | None = None) -> None:
        text = f"trial {self.number}/{self.budget}" + (f": {message}" if message else "")
        self.state.progress((self.number - 1 + fraction) / self.budget, text)

    def emit(self, kind: str, payload: Any = None) -> None:
        if kind == "epoch":
            self.state.emit("trial_epoch", {"trial": self.number, "epoch": payload["epoch"],
                                            "logs": payload["logs"]})

    def checkpoint(self) -> None:
        self.state.checkpoint()

    @property
    def cancelled(self) -> bool:
        return self.state.cancelled


class _Searcher:
    """Runs one trial at a time for the tuner and keeps the results and the best model."""

    def __init__(self, project, recipe: dict, dataset, state: RunState, result: SearchResult,
                 marks: list[dict]):
        self.project, self.recipe, self.dataset, self.state = project, recipe, dataset, state
        self.result, self.marks = result, marks
        self.codecs = {mark_name(m): _codec(m) for m in marks}
        self.best_score: float | None = None
        self.best_params: dict[str, Any] = {}
        self.weights_files: dict[str, Path] = {}

    def declare(self, hp) -> None:
        for entry in self.marks:
            name = mark_name(entry)
            if entry["type"] == "choice":
                hp.Choice(name, [self.codecs[name][0](v) for v in entry["values"]])
            elif entry["type"] == "int":
                hp.Int(name, int(entry["min"]), int(entry["max"]), step=entry.get("step") or None,
                       sampling="log" if entry.get("log") else "linear")
            else:
                hp.Float(name, float(entry["min"]), float(entry["max"]),
                         step=entry.get("step") or None,
                         sampling="log" if entry.get("log") else "linear")

    def run(self, trial_id: str, hp_values: dict, trial_dir: Path) -> float:
        """Train one trial; returns its score. Raises Cancelled, or FailedTrial with the reason."""
        from models.training import TrainingError, train

        number = len(self.result.trials) + 1
        params = {name: self.codecs[name][1](hp_values[name]) for name in self.codecs
                  if name in hp_values}
        self.state.emit("trial_begin", {"number": number, "params": params})
        t0 = time.perf_counter()
        epochs = None
        initial = None
        if "tuner/epochs" in hp_values:  # Hyperband: continue a promising trial for longer
            epochs = max(1, int(hp_values["tuner/epochs"]) - int(hp_values.get("tuner/initial_epoch", 0)))
            initial = self.weights_files.get(str(hp_values.get("tuner/trial_id")))
        try:
            trial_project = apply_values(self.project, params)
            trial_project.recipe = _trial_recipe(self.recipe, params, self.marks)
            # No test evaluation per trial: trials are compared on validation only, and the
            # test split is measured once, on the best model (see _search).
            outcome = train(trial_project, state=_TrialState(self.state, number, self.result.budget),
                            dataset=self.dataset, epochs=epochs, initial_weights=initial,
                            evaluate=False)
            if self.state.cancelled:
                raise Cancelled()
            if outcome.stopped == "nan":
                raise _FailedTrial(outcome.message)
            scores = outcome.model.evaluate(self.dataset.x_val, self.dataset.y_val,
                                            batch_size=int(trial_project.recipe.get("batch_size", 32)),
                                            verbose=0, return_dict=True)
        except Cancelled:
            raise
        except _FailedTrial as exc:
            return self._failed(number, params, t0, str(exc))
        except (SearchError, TrainingError, ValueError) as exc:
            reason = _refused_value(self.project, params) or " ".join(str(exc).split())
            return self._failed(number, params, t0, reason)
        metrics = dict(outcome.metrics)
        metrics.update({f"val_{k}": float(v) for k, v in scores.items()})
        score = metrics.get(self.result.objective)
        if score is None:
            return self._failed(number, params, t0, f"the trial has no {self.result.objective}; "
                                f"it measured {', '.join(sorted(metrics))}")
        weights_file = trial_dir / "model.weights.h5"
        outcome.model.save_weights(str(weights_file))
        self.weights_files[trial_id] = weights_file
        record = TrialRecord(number, params, float(score), "ok", time.perf_counter() - t0,
                             outcome.epochs_run, metrics)
        self.result.trials.append(record)
        if _better(float(score), self.best_score, self.result.direction):
            self.best_score = float(score)
            self.result.best = number
            self.result.best_model = outcome.model
            self.best_params = params
        self.state.emit("trial", record.to_json())
        return float(score)

    def _failed(self, number: int, params: dict, t0: float, message: str) -> float:
        record = TrialRecord(number, params, None, "failed", time.perf_counter() - t0,
                             message=message)
        self.result.trials.append(record)
        self.state.emit("trial", record.to_json())
        raise _FailedTrial(message)


class _FailedTrial(Exception):
    pass


def _refused_value(project, params: dict) -> str:
    """Keras's own words for a chosen value it refuses (``hidden.activation = 'x': ...``), or ''.

    A model that cannot be built reports every layer after the bad one too; the
    trial's record names the value that caused it.
    """
    from models import backend
    from models.graph import _layer_entry

    keras = backend.keras()
    for entry in space(project.recipe):
        name = mark_name(entry)
        if "node" not in entry or entry.get("param") == REPEATS or name not in params:
            continue
        node = project.graph.nodes.get(entry["node"])
        if node is None or node.is_model:
            continue
        layer = _layer_entry(node)
        layer.pop("name", None)
        layer["config"][entry["param"]] = params[name]
        try:
            keras.saving.deserialize_keras_object(layer)
        except Exception as exc:  # the refusal we are explaining
            cause = " ".join(str(exc).split())
            cause = cause.rsplit("Exception encountered:", 1)[-1].strip()
            return f"{name} = {params[name]!r} is refused: {cause[:300]}"
    return ""


def _codec(entry: dict):
    """(encode, decode) between a mark's values and what keras-tuner can hold.

    keras-tuner's choices are all ints, all floats, all strings or all
    booleans; other values (a kernel size [3, 3], a mix) travel as JSON text.
    """
    if entry.get("type") != "choice":
        if entry.get("type") == "int":
            return int, int
        return float, float
    values = entry.get("values") or []
    for kind in (bool, str):
        if all(isinstance(v, kind) for v in values):
            return (lambda v: v), (lambda v: v)
    if all(isinstance(v, int) and not isinstance(v, bool) for v in values):
        return int, int
    if all(isinstance(v, (int, float)) and not isinstance(v, bool) for v in values):
        return float, float
    return (lambda v: json.dumps(v, sort_keys=True)), (lambda v: json.loads(v))


def _trial_recipe(recipe: dict, params: dict, marks: list[dict]) -> dict:
    """The effective recipe with the trial's recipe values, quiet (no weight histograms)."""
    out = copy.deepcopy(recipe)
    out.pop("search", None)
    for entry in marks:
        name = mark_name(entry)
        if "recipe" in entry and name in params:
            _set_recipe_value(out, entry["recipe"], params[name])
    # A table of trials shows no histograms or gradient norms: they would only cost time.
    out["histograms"] = False
    out["grad_norms"] = False
    out.pop("live_view", None)
    return out


def _bayesian_oracle(kt):
    """keras-tuner's Bayesian oracle with its Gaussian-process step on one BLAS thread.

    Fitting the process and optimizing the acquisition run scipy's L-BFGS on
    matrices of a few rows; beside TensorFlow's threads, OpenBLAS's own threads
    only fight for the cores (12 CPU-seconds instead of 0.5 per proposal, seen
    on two cores).
    """
    from threadpoolctl import threadpool_limits

    class OneThreadBayesian(kt.oracles.BayesianOptimizationOracle):
        def populate_space(self, trial_id):
            with threadpool_limits(limits=1, user_api="blas"):
                return super().populate_space(trial_id)

    return OneThreadBayesian


def _tuner(kt, searcher: _Searcher, cfg: dict, recipe: dict, directory: Path):
    """A keras-tuner Tuner whose trials are trained by ``searcher`` (one class per algorithm's oracle)."""
    result = searcher.result
    objective = kt.Objective(result.objective, result.direction)
    hp = kt.HyperParameters()
    searcher.declare(hp)
    budget = result.budget
    # keras-tuner takes a seed of 0 for "no seed" (it draws one at random): shift by one.
    seed = int(cfg.get("seed", recipe.get("seed", 0))) + 1
    common = {"objective": objective, "hyperparameters": hp, "seed": seed,
              "max_consecutive_failed_trials": budget + 1}
    algorithm = result.algorithm
    if algorithm == "random":
        oracle = kt.oracles.RandomSearchOracle(max_trials=budget, **common)
    elif algorithm == "bayesian":
        oracle = _bayesian_oracle(kt)(
            max_trials=budget, num_initial_points=max(2, min(budget // 2, 3 * len(searcher.marks))),
            **common)
    elif algorithm == "hyperband":
        oracle = kt.oracles.HyperbandOracle(max_epochs=max(2, int(recipe.get("epochs", 10))),
                                            factor=3, **common)
        oracle.max_trials = budget  # Hyperband has no budget of its own: stop after ours
    else:
        raise SearchError(f"unknown search algorithm {algorithm!r}; use {', '.join(ALGORITHMS)}")
    state = searcher.state

    class ProjectTuner(kt.Tuner):
        def run_trial(self, trial, *args, **kwargs):
            trial_dir = Path(self.get_trial_dir(trial.trial_id))
            trial_dir.mkdir(parents=True, exist_ok=True)
            try:
                score = searcher.run(trial.trial_id, dict(trial.hyperparameters.values), trial_dir)
            except _FailedTrial as exc:
                raise kt.errors.FailedTrialError(str(exc)) from None
            return {result.objective: score}

        def pre_create_trial(self):
            state.checkpoint()  # pause waits here, between trials

        def on_trial_end(self, trial):
            super().on_trial_end(trial)
            state.checkpoint()  # a stop inside the trial ends the search here

    return ProjectTuner(oracle=oracle, directory=str(directory), project_name="search",
                        overwrite=True)


def run_search(project, *, state: RunState | None = None, algorithm: str | None = None,
               trials: int | None = None, quick: bool = False, out_dir: str | Path | None = None,
               dataset=None) -> SearchResult:
    """Search the project's marked ranges; returns the trials and the best project.

    Args:
        project: a :class:`~models.project.Project` with marks in its recipe.
        state: where progress and per-trial results go.
        algorithm: ``random``, ``hyperband`` or ``bayesian`` (default: the recipe's).
        trials: the trial budget (default: the recipe's).
        quick: train each trial with the recipe's quick preset.
        out_dir: keep the tuner's trial folders there; by default they go to a
            temporary folder that is removed afterwards.
        dataset: the loaded data (default: the project's).

    Raises:
        SearchError: marks that cannot be searched, an unknown algorithm.
        TrainingError: data that cannot be loaded.
    """
    from models.training import effective_recipe

    recipe = effective_recipe(project.recipe, quick=quick)
    return _search(project, recipe, state=state or RunState(), algorithm=algorithm,
                   trials=trials, out_dir=out_dir, dataset=dataset)


def _search(project, recipe: dict, *, state: RunState, algorithm=None, trials=None,
            out_dir=None, dataset=None) -> SearchResult:
    from models.training import load_project_data

    found = problems(project)
    if found:
        raise SearchError("; ".join(found))
    cfg = settings(project.recipe)
    algorithm = algorithm or cfg["algorithm"]
    if algorithm not in ALGORITHMS:
        raise SearchError(f"unknown search algorithm {algorithm!r}; use {', '.join(ALGORITHMS)}")
    budget = int(trials if trials is not None else cfg["trials"])
    if budget < 1:
        raise SearchError(f"the trial budget must be at least 1 (got {budget})")
    objective, direction = objective_of(cfg, recipe)
    result = SearchResult(objective=objective, direction=direction, algorithm=algorithm,
                          budget=budget)
    state.progress(0.0, "loading data")
    if dataset is None:
        dataset = load_project_data(project, recipe)
    if dataset.x_val is None or dataset.n_val == 0:
        raise SearchError("a search compares trials on the validation split, and the data has "
                          "none; give the recipe a val_fraction above 0")
    state.checkpoint()
    state.progress(0.0, "starting the search")
    import keras_tuner as kt
    from keras_tuner.src import config as kt_config

    # With its DEBUG flag on (the default) keras-tuner prints each failed trial's traceback;
    # the trial's record carries the reason instead.
    kt_config.DEBUG = False
    marks = space(project.recipe)
    searcher = _Searcher(project, recipe, dataset, state, result, marks)
    own_dir = out_dir is None
    directory = Path(tempfile.mkdtemp(prefix="layerforge-search-")) if own_dir \
        else Path(out_dir) / "trials"
    directory.mkdir(parents=True, exist_ok=True)
    t0 = time.perf_counter()
    try:
        tuner = _tuner(kt, searcher, cfg, recipe, directory)
        try:
            with warnings.catch_warnings():
                # Bayesian optimization fits a Gaussian process on a handful of points;
                # scikit-learn warns that its length scale sits at a bound. Expected, not a fault.
                warnings.filterwarnings("ignore", message=".*close to the specified (upper|lower) bound")
                # keras-tuner 1.4 still calls threading.currentThread(); not ours to fix.
                warnings.filterwarnings("ignore", category=DeprecationWarning, module="keras_tuner")
                tuner.search(verbose=0)
        except Cancelled:
            result.stopped = "stopped"
        if result.stopped != "stopped" and len(result.trials) < budget:
            result.stopped = "exhausted"
            result.message = (f"the Hyperband schedule ended after {len(result.trials)} trials"
                              if algorithm == "hyperband" else
                              f"the search space holds no untried configuration after "
                              f"{len(result.trials)} trials")
    finally:
        result.seconds = time.perf_counter() - t0
        if own_dir:
            shutil.rmtree(directory, ignore_errors=True)
    if result.best is not None:
        best = result.best_trial
        if dataset.n_test:
            state.progress(1.0, "evaluating the best model on the test split")
            scores = result.best_model.evaluate(dataset.x_test, dataset.y_test, verbose=0,
                                                return_dict=True)
            best.metrics.update({f"test_{k}": float(v) for k, v in scores.items()})
        result.best_project = best_project(project, result, searcher.best_params)
        result.message = result.message or (
            f"best of {len(result.trials)} trials: trial {best.number}, "
            f"{objective} {best.score:.4f}")
    elif not result.message:
        result.message = "no trial finished" if result.trials == [] else "every trial failed"
    if result.stopped == "stopped":
        result.message = "stopped; " + result.message
    return result


def best_project(project, result: SearchResult, params: dict):
    """The best trial as a new project: its values substituted, its trained weights kept."""
    best = apply_values(project, params)
    best.weights = {best.main_name: result.best_model.get_weights()}
    trial = result.best_trial
    best.meta = dict(best.meta)
    title = project.meta.get("title") or project.name
    best.meta["title"] = f"{title} (best of search)"
    best.meta["search_result"] = {"from": str(project.path or title), "trial": trial.number,
                                  "objective": result.objective, "score": trial.score,
                                  "params": params, "algorithm": result.algorithm}
    return best


def train_by_search(project, recipe: dict, *, state: RunState, dataset=None, out_dir=None):
    """Training that is a search (``recipe["search"]["as_training"]``, the NAS template).

    Returns:
        A :class:`~models.training.TrainResult` of the best trial: its metrics
        (``test_accuracy``... of the best model, picked on validation), its
        quality, and ``project``: the best trial as a new project (its graph
        is not the one that was trained, so the weights go there, not into
        ``project``). ``model`` is None for that reason.
    """
    from models.training import TrainResult, quality_of

    found = _search(project, recipe, state=state, dataset=dataset, out_dir=out_dir)
    best = found.best_trial
    result = TrainResult(model=None, seconds=found.seconds, message=found.message,
                         stopped="stopped" if found.stopped == "stopped" else "completed")
    if best is not None:
        result.metrics = dict(best.metrics)
        result.epochs_run = best.epochs
    result.metrics["trials"] = float(len(found.trials))
    result.quality = quality_of(recipe, result.metrics)
    result.project = found.best_project
    result.search = found.to_json()
    result.notes.append(found.message)
    state.emit("done", result.to_json())
    return result


__all__ = ["ALGORITHMS", "RECIPE_PARAMS", "REPEATS", "SearchError", "SearchResult",
           "TrialRecord", "apply_values", "check_mark", "current_value", "default_mark",
           "describe_mark", "find_mark", "follow_rename", "mark_name", "objective_of",
           "problems", "recipe_value", "repeat_block", "run_search", "searchable", "settings",
           "space", "train_by_search", "with_mark", "with_settings"]
