"""The gallery templates that train with ``fit``: each builds, checks, takes a step, and (slow) reaches its target.

The smoke tests run one short epoch on a slice of the data and check the live
view and the template's own metrics come out; the slow tests train the quick
preset, as ``layerforge train gallery:SLUG --quick`` does, and assert the
issue's target.
"""
import numpy as np
import pytest

from models import gallery
from models.runner import RunState
from models.validate import validate

# slug -> (quality target of the quick preset, the panel kinds its live view shows)
TEMPLATES = {
    "mlp": (0.95, None),
    "cnn": (0.97, None),
    "rnn": (0.85, None),
    "gru": (0.90, None),
    "lstm": (0.90, None),
    "gnn": (0.80, ["graph", "graph"]),
    "gcn": (0.85, ["graph", "graph"]),
    "gat": (0.85, ["graph", "graph", "heatmap"]),
    "neural-ode": (0.95, ["lines", "scatter"]),
    "moe": (0.93, ["bars", "heatmap"]),
}


def _train(project, **kwargs):
    from models.training import train

    state = RunState()
    result = train(project, state=state, **kwargs)
    return result, state.drain()


@pytest.mark.parametrize("slug", sorted(TEMPLATES))
def test_template_builds_checks_and_takes_a_training_step(slug):
    from models.training import effective_recipe, load_project_data

    project = gallery.open_template(slug)
    report = validate(project.graph)
    assert report.valid, report.errors()
    meta = project.meta
    assert meta["section"] in meta["explanation"], "the explanation names its cheatsheet section"
    dataset = load_project_data(project, {**effective_recipe(project.recipe, quick=True),
                                          "limit": 120})
    result, events = _train(project, dataset=dataset, epochs=1)
    assert result.epochs_run == 1 and np.isfinite(result.history["loss"][0])
    assert result.quality is not None and result.quality["metric"] == "test_accuracy"
    kinds = TEMPLATES[slug][1]
    shown = [e.payload["view"] for e in events if e.kind == "view"]
    if kinds is None:
        assert not shown
    else:
        assert len(shown) == 2, result.notes  # before the first epoch and after it
        assert [p["kind"] for p in shown[-1]["panels"]] == kinds


def test_graph_view_marks_the_labelled_members_and_counts_the_others():
    from models.training import load_project_data

    project = gallery.open_template("gcn")
    result, events = _train(project, epochs=2)
    view = [e.payload["view"] for e in events if e.kind == "view"][-1]
    predicted, truth = view["panels"]
    assert predicted["marked"] == truth["marked"] == [0, 33]
    assert len(predicted["x"]) == len(predicted["classes"]) == 34 and len(predicted["edges"]) == 78
    dataset = load_project_data(project)
    truth_expected = np.where(dataset.y_test[0] >= 0, dataset.y_test[0], dataset.y_train[0])
    assert truth["classes"] == truth_expected.tolist()
    pred = np.asarray(result.model(dataset.x_train, training=False))[0].argmax(-1)
    test = dataset.y_test[0]
    wrong = [i for i in range(34) if test[i] >= 0 and pred[i] != test[i]]
    right = 32 - len(wrong)
    assert predicted["title"].startswith(f"Predicted faction: {right}/32")
    # The leaders and the mistakes are numbered, nobody else.
    assert [t for t in predicted["labels"] if t] == [str(i) for i in sorted([0, 33, *wrong])]
    assert [t for t in truth["labels"] if t] == ["0", "33"]
    assert result.metrics["test_accuracy"] == pytest.approx(right / 32)


def test_ode_view_draws_every_rk4_state_of_each_path():
    project = gallery.open_template("neural-ode")
    _, events = _train(project, epochs=1)
    paths, ends = [e.payload["view"] for e in events if e.kind == "view"][-1]["panels"]
    steps = project.graph.node("ode").config["steps"]
    assert len(paths["series"]) == 60
    assert all(len(p["x"]) == steps + 1 for p in paths["series"])
    start, end = ends["series"]
    # Each path runs from its point's start (t = 0) to its end (t = t1).
    assert [p["x"][0] for p in paths["series"]] == start["x"]
    assert [p["y"][-1] for p in paths["series"]] == end["y"]
    assert [p["name"] for p in paths["series"] if p["name"]] == ["moon 0", "moon 1"]


def test_moe_reports_every_experts_share():
    project = gallery.open_template("moe")
    result, events = _train(project, epochs=1)
    shares = [result.metrics[f"test_expert_{i}_share"] for i in range(1, 5)]
    assert sum(shares) == pytest.approx(1.0)
    assert result.metrics["test_min_expert_share"] == pytest.approx(min(shares))
    bars = [e.payload["view"] for e in events if e.kind == "view"][-1]["panels"][0]
    assert bars["reference"] == 5.0 and len(bars["values"]) == 4  # per cent
    assert sum(bars["values"]) == pytest.approx(100.0, abs=0.1)


@pytest.mark.slow
@pytest.mark.parametrize("slug", sorted(TEMPLATES))
def test_quick_preset_reaches_its_target(slug):
    project = gallery.open_template(slug)
    result, _ = _train(project, quick=True)
    target = TEMPLATES[slug][0]
    assert result.quality["value"] >= target, result.quality
    if slug == "cnn":
        assert result.model.count_params() > 10_000
    if slug == "moe":
        assert result.metrics["test_min_expert_share"] >= 0.05
