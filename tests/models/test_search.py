"""models.search: marks in the recipe, substitution, repeated blocks, and real (tiny) searches."""
import json
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from models import search
from models.project import Project, new_project
from models.runner import RunState

ROOT = Path(__file__).resolve().parents[2]


def _keras():
    from models import backend

    return backend.keras()


def tiny_project(block: bool = False) -> Project:
    """Iris with a small dense model (a nested block in the middle when ``block``)."""
    from models.build import graph_from_model

    keras = _keras()
    L = keras.layers
    x = keras.Input((4,), name="features")
    h = L.Dense(8, activation="relu", name="hidden")(x)
    if block:
        i = keras.Input((8,), name="block_input")
        b = keras.Model(i, L.Dense(8, activation="relu", name="inner")(i), name="block")
        h = b(h)
    h = L.Dropout(0.2, name="dropout")(h)
    y = L.Dense(3, activation="softmax", name="out")(h)
    project = new_project(graph_from_model(keras.Model(x, y, name="tiny")))
    project.dataset = {"source": "builtin", "name": "iris"}
    project.recipe.update({"epochs": 2, "batch_size": 16, "histograms": False,
                           "optimizer": {"class_name": "Adam", "config": {"learning_rate": 0.01}},
                           "quality": {"metric": "test_accuracy"}})
    return project


def marked(project: Project, *marks) -> Project:
    recipe = project.recipe
    for node, param, entry in marks:
        recipe = search.with_mark(recipe, node, param, entry)
    project.recipe = recipe
    return project


UNITS = ("hidden", "units", {"type": "int", "min": 4, "max": 16, "step": 4})
RATE = ("dropout", "rate", {"type": "float", "min": 0.1, "max": 0.4})
ACT = ("hidden", "activation", {"type": "choice", "values": ["relu", "tanh"]})
LR = (None, "learning_rate", {"type": "float", "min": 1e-3, "max": 3e-2, "log": True})


# --------------------------------------------------------------------------- marks


def test_marks_are_set_replaced_and_removed_in_place_without_touching_the_recipe():
    recipe = {"epochs": 3}
    r1 = search.with_mark(recipe, "hidden", "units", UNITS[2])
    r2 = search.with_mark(r1, None, "learning_rate", LR[2])
    r3 = search.with_mark(r2, "hidden", "units", {"type": "int", "min": 2, "max": 6})
    assert recipe == {"epochs": 3}  # copies, never edits
    assert [search.mark_name(e) for e in search.space(r3)] == ["hidden.units", "recipe.learning_rate"]
    assert search.find_mark(r3, "hidden", "units")["max"] == 6
    assert search.find_mark(r3, None, "learning_rate")["log"] is True
    assert search.find_mark(r3, "hidden", "rate") is None
    r4 = search.with_mark(search.with_mark(r3, "hidden", "units", None), None, "learning_rate", None)
    assert "search" not in r4 and r4 == recipe
    kept = search.with_mark(search.with_settings(r1, trials=4), "hidden", "units", None)
    assert kept["search"] == {"space": [], "trials": 4}  # settings survive the last mark


def test_marks_follow_a_renamed_layer():
    recipe = search.with_mark({}, "hidden", "units", UNITS[2])
    search.follow_rename(recipe, "hidden", "wide")
    assert search.find_mark(recipe, "wide", "units") is not None
    assert search.find_mark(recipe, "hidden", "units") is None


@pytest.mark.parametrize("key, meta, value, kind", [
    ("units", {"type": "int", "min": 1}, 32, "int"),
    ("rate", {"type": "float", "min": 0.0, "max": 1.0}, 0.3, "float"),
    ("activation", {"type": "activation", "choices": ["relu", "tanh", "gelu"]}, "relu", "choice"),
    ("padding", {"type": "choice", "choices": ["valid", "same"]}, "same", "choice"),
    ("use_bias", {"type": "bool"}, True, "choice"),
    ("kernel_size", {"type": "tuple"}, [3, 3], "int"),
    ("strides", {"type": "tuple"}, [1, 2], None),
    ("name", {"type": "str"}, "dense", None),
    ("kernel_initializer", {"type": "initializer"}, {"class_name": "GlorotUniform"}, None),
    ("trainable", {"type": "bool"}, True, None),
])
def test_what_can_be_searched(key, meta, value, kind):
    assert search.searchable(key, meta, value) == kind


def test_default_ranges_surround_the_current_value_and_are_valid():
    units = search.default_mark("units", {"type": "int", "min": 1}, 32)
    assert units["min"] <= 32 <= units["max"] and units["step"] >= 1
    rate = search.default_mark("rate", {"type": "float", "min": 0.0, "max": 1.0}, 0.3)
    assert rate["min"] < 0.3 < rate["max"] < 1.0
    lr = search.default_mark("learning_rate", {}, 0.002)
    assert lr["log"] and lr["min"] == pytest.approx(0.0002) and lr["max"] == pytest.approx(0.02)
    act = search.default_mark("activation", {"type": "activation",
                                             "choices": ["gelu", "relu", "softmax", "tanh"]}, "relu")
    assert act["values"][0] == "relu" and len(act["values"]) == 3
    assert search.default_mark("batch_size", {}, 32)["values"] == [16, 32, 64]
    assert search.default_mark(search.REPEATS, {}, 1) == {"type": "int", "min": 1, "max": 3, "step": 1}
    for entry in (units, rate, lr, act):
        assert search.check_mark(entry) == ""


@pytest.mark.parametrize("entry, meta, words", [
    ({"type": "int", "min": 8, "max": 4}, None, "below the highest"),
    ({"type": "int", "min": 1.5, "max": 4}, None, "whole-number"),
    ({"type": "float", "min": 0.0, "max": 1.0, "log": True}, None, "log scale"),
    ({"type": "float", "min": 0.1, "max": 2.0}, {"max": 1.0}, "at most 1.0"),
    ({"type": "int", "min": 1, "max": 4, "step": 9}, None, "step is larger"),
    ({"type": "choice", "values": ["relu"]}, None, "at least two"),
    ({"type": "choice", "values": ["relu", "relu"]}, None, "twice"),
    ({"type": "choice", "values": ["relu", "nope"]}, {"choices": ["relu", "tanh"]}, "'nope'"),
    ({"type": "grid"}, None, "unknown range type"),
])
def test_bad_ranges_are_explained(entry, meta, words):
    assert words in search.check_mark(entry, meta)


def test_problems_name_the_mark_and_what_to_do():
    project = tiny_project()
    assert "no parameter is marked" in search.problems(project)[0]
    marked(project, ("gone", "units", UNITS[2]), ("hidden", "filters", UNITS[2]),
           ("hidden", search.REPEATS, {"type": "int", "min": 1, "max": 2}))
    text = " | ".join(search.problems(project))
    assert "gone.units: there is no layer 'gone'" in text
    assert "hidden.filters: Dense has no parameter 'filters'" in text
    assert "hidden.repeats: only a nested block" in text


def test_a_learning_rate_mark_on_a_loop_without_an_optimizer_is_a_problem():
    from models import gallery

    som = marked(gallery.open_template("som"), LR, (None, "epochs", {"type": "int", "min": 5, "max": 9}))
    assert search.problems(som) == [
        "recipe.learning_rate: this training does not use it (its own loop sets its steps), "
        "so searching it changes nothing; remove its mark"]  # the epochs are fine
    assert search.problems(marked(tiny_project(), LR)) == []  # with an optimizer it is


# --------------------------------------------------------------------------- substitution


def test_apply_values_substitutes_exact_configs_and_recipe_settings():
    project = marked(tiny_project(), UNITS, ACT, RATE, LR,
                     (None, "batch_size", {"type": "choice", "values": [8, 32]}))
    project.recipe["quick"] = {"batch_size": 4}
    values = {"hidden.units": 12, "hidden.activation": "tanh", "dropout.rate": 0.25,
              "recipe.learning_rate": 0.005, "recipe.batch_size": 8}
    trial = search.apply_values(project, values)
    hidden = trial.graph.node("hidden").config
    assert (hidden["units"], hidden["activation"]) == (12, "tanh")
    assert trial.graph.node("dropout").config["rate"] == 0.25
    assert trial.recipe["optimizer"]["config"]["learning_rate"] == 0.005
    assert trial.recipe["batch_size"] == 8 and trial.recipe["quick"]["batch_size"] == 8
    assert "search" not in trial.recipe and not trial.weights
    # The original is untouched, and the substituted graph is a buildable Keras model.
    assert project.graph.node("hidden").config["units"] == 8
    assert trial.build(with_weights=False).get_layer("hidden").units == 12
    assert set(trial.graph.node("hidden").config) == set(project.graph.node("hidden").config)


def test_a_kernel_size_range_sets_every_axis():
    from models.build import graph_from_model

    keras = _keras()
    x = keras.Input((8, 8, 1))
    y = keras.layers.Conv2D(4, 3, name="conv")(x)
    project = new_project(graph_from_model(keras.Model(x, y)))
    marked(project, ("conv", "kernel_size", {"type": "int", "min": 2, "max": 5}))
    trial = search.apply_values(project, {"conv.kernel_size": 5})
    assert list(trial.graph.node("conv").config["kernel_size"]) == [5, 5]
    assert trial.build(with_weights=False).get_layer("conv").kernel.shape[:2] == (5, 5)


def test_a_repeated_block_is_chained_with_its_own_weights():
    project = marked(tiny_project(block=True), ("block", search.REPEATS, {"type": "int", "min": 1, "max": 3}))
    assert search.problems(project) == []
    trial = search.apply_values(project, {"block.repeats": 3})
    graph = trial.graph
    assert [n for n in graph.nodes if n.startswith("block")] == ["block", "block_2", "block_3"]
    assert graph.predecessors("block_2") == ["block"] and graph.predecessors("block_3") == ["block_2"]
    assert graph.predecessors("dropout") == ["block_3"]
    model = trial.build(with_weights=False)
    kernels = [model.get_layer(n).get_layer("inner").kernel for n in ("block", "block_2", "block_3")]
    assert len({id(k) for k in kernels}) == 3  # three blocks, three sets of weights
    assert model.count_params() == project.build(with_weights=False).count_params() + 2 * (8 * 8 + 8)
    once = search.apply_values(project, {"block.repeats": 1})
    assert set(once.graph.nodes) == set(project.graph.nodes)


def test_a_block_that_cannot_feed_itself_is_refused_with_the_reason():
    from models.build import graph_from_model

    keras = _keras()
    L = keras.layers
    x = keras.Input((4,))
    i = keras.Input((4,), name="block_input")
    folded = L.Flatten()(L.Reshape((2, 2), name="fold")(i))
    b = keras.Model(i, L.Dense(6, name="widen")(folded), name="block")  # 4 in, 6 out
    y = b(x)
    project = new_project(graph_from_model(keras.Model(x, y)))
    marked(project, ("block", search.REPEATS, {"type": "int", "min": 1, "max": 2}))
    with pytest.raises(search.SearchError, match="block_2"):
        search.apply_values(project, {"block.repeats": 2})


def test_objective_defaults_to_validation_accuracy_else_loss():
    assert search.objective_of({}, {"metrics": ["accuracy"]}) == ("val_accuracy", "max")
    assert search.objective_of({}, {"metrics": ["mae"]}) == ("val_loss", "min")
    assert search.objective_of({"objective": "mae"}, {}) == ("val_mae", "min")


# --------------------------------------------------------------------------- searching


def _scores_in_range(result, project):
    for t in result.trials:
        assert t.status == "ok", t.message
        assert 4 <= t.params["hidden.units"] <= 16 and t.params["hidden.units"] % 4 == 0
        assert 0.1 <= t.params["dropout.rate"] <= 0.4
        assert 0.0 <= t.score <= 1.0


@pytest.mark.parametrize("algorithm", ["random", "bayesian", "hyperband"])
def test_a_search_reports_each_trial_and_opens_the_best_as_a_project(algorithm, tmp_path):
    project = marked(tiny_project(), UNITS, RATE)
    state = RunState()
    result = search.run_search(project, state=state, algorithm=algorithm, trials=2)
    events = state.drain()
    trials = [e.payload for e in events if e.kind == "trial"]
    assert [t["number"] for t in trials] == [1, 2] == [t.number for t in result.trials]
    assert {e.kind for e in events} >= {"trial_begin", "trial_epoch", "trial"}
    _scores_in_range(result, project)
    scores = [t.score for t in result.trials]
    assert result.best_trial.score == max(scores) and result.objective == "val_accuracy"
    assert "test_accuracy" in result.best_trial.metrics
    best = result.best_project
    assert best.graph.node("hidden").config["units"] == result.best_trial.params["hidden.units"]
    assert "search" not in best.recipe and best.meta["search_result"]["trial"] == result.best
    # The best project keeps the trained weights: saved and reopened it predicts as the search's model.
    path = best.save(tmp_path / "best.lforge")
    reopened = Project.load(path).build()
    x = np.random.default_rng(0).normal(size=(5, 4)).astype("float32")
    np.testing.assert_allclose(reopened.predict(x, verbose=0),
                               result.best_model.predict(x, verbose=0), rtol=1e-5, atol=1e-6)
    json.dumps(result.to_json())  # plain JSON all the way down


def test_stop_between_trials_keeps_what_finished():
    project = marked(tiny_project(), UNITS, RATE)
    state = RunState()
    state.subscribe(lambda ev: state.cancel() if ev.kind == "trial" else None)
    result = search.run_search(project, state=state, trials=4)
    assert result.stopped == "stopped" and len(result.trials) == 1
    assert result.best == 1 and result.best_project is not None
    assert result.message.startswith("stopped")


def test_stop_inside_a_trial_ends_it_without_a_score():
    project = marked(tiny_project(), UNITS, RATE)
    project.recipe["epochs"] = 50
    state = RunState()
    state.subscribe(lambda ev: state.cancel() if ev.kind == "trial_epoch" else None)
    result = search.run_search(project, state=state, trials=3)
    assert result.stopped == "stopped" and result.trials == [] and result.best_project is None


def test_a_failing_trial_is_recorded_and_the_search_goes_on():
    project = marked(tiny_project(), ("hidden", "activation",
                                      {"type": "choice", "values": ["relu", "no_such_activation"]}))
    state = RunState()
    result = search.run_search(project, state=state, trials=6)
    failed = [t for t in result.trials if t.status == "failed"]
    ok = [t for t in result.trials if t.status == "ok"]
    assert failed and ok, [t.params for t in result.trials]
    assert all(t.params["hidden.activation"] == "no_such_activation" for t in failed)
    assert "no_such_activation" in failed[0].message
    assert result.best_trial.params["hidden.activation"] == "relu"
    # Two distinct configurations only: the random search says so instead of repeating them.
    assert result.stopped == "exhausted" and "no untried configuration" in result.message


def test_search_errors_are_one_line_for_the_user():
    with pytest.raises(search.SearchError, match="no parameter is marked"):
        search.run_search(tiny_project())
    with pytest.raises(search.SearchError, match="unknown search algorithm"):
        search.run_search(marked(tiny_project(), UNITS), algorithm="grid")
    project = marked(tiny_project(), UNITS)
    project.recipe["val_fraction"] = 0.0
    with pytest.raises(search.SearchError, match="validation split"):
        search.run_search(project)


def test_training_a_project_that_searches_returns_the_best_project(tmp_path):
    from models.training import train

    project = marked(tiny_project(), UNITS)
    project.recipe = search.with_settings(project.recipe, trials=2, as_training=True)
    result = train(project)
    assert result.model is None and result.project is not None
    assert result.quality["metric"] == "test_accuracy" and 0 <= result.quality["value"] <= 1
    assert len(result.search["trials"]) == 2 and result.metrics["trials"] == 2
    assert "search" in result.to_json()


# --------------------------------------------------------------------------- command line


def run_cli(*args):
    env = dict(os.environ, TF_CPP_MIN_LOG_LEVEL="0")
    return subprocess.run([sys.executable, "-m", "models.cli", *args], capture_output=True,
                          text=True, cwd=ROOT, env=env, timeout=600)


def test_layerforge_search_prints_trials_and_writes_the_best(tmp_path):
    project = marked(tiny_project(), UNITS, RATE, ACT, LR)
    src = project.save(tmp_path / "tiny.lforge")
    out = run_cli("search", str(src), "--trials", "3", "--algorithm", "random", "--out",
                  str(tmp_path / "out"), "--json")
    assert out.returncode == 0, out.stderr[-2000:]
    payload = json.loads(out.stdout.strip().splitlines()[-1])
    assert len(payload["trials"]) == 3 and payload["algorithm"] == "random"
    for t in payload["trials"]:
        assert set(t["params"]) == {"hidden.units", "dropout.rate", "hidden.activation",
                                    "recipe.learning_rate"}
    assert payload["best"]["score"] == max(t["score"] for t in payload["trials"])
    best = Project.load(payload["best_project"])
    assert best.has_weights() and best.build() is not None
    assert (tmp_path / "out" / "trials" / "search").is_dir()  # the tuner's trial folders
    assert "trial 1:" in out.stderr and "Traceback" not in out.stderr


def test_layerforge_search_without_marks_says_what_to_do(tmp_path):
    src = tiny_project().save(tmp_path / "plain.lforge")
    out = run_cli("search", str(src), "--trials", "2")
    assert out.returncode == 1
    assert "no parameter is marked for search" in out.stderr and "Traceback" not in out.stderr
    assert len(out.stderr.strip().splitlines()) == 1
