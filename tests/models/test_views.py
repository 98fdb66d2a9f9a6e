"""Live views and template metrics: the hooks a gallery template plugs into the runner."""
import numpy as np
import pytest

from models import views
from models.runner import RunState
from tests.models.test_training import mlp_project


def first_digits_view(model, dataset, options):
    """A test view: the first few validation images with the predicted digit as caption."""
    n = int(options.get("n", 4))
    x = dataset.x_val[:n]
    pred = np.argmax(model.predict(x, verbose=0), axis=-1)
    return views.view("Predictions", views.images_panel(x.reshape(n, 8, 8), "digits", labels=pred),
                      views.bars_panel("classes", [str(i) for i in range(10)],
                                       np.bincount(pred, minlength=10)))


def broken_view(model, dataset, options):
    raise RuntimeError("no pictures today")


def weight_count_metric(model, dataset, recipe):
    return {"test_weight_count": model.count_params(), "test_rows": dataset.n_test}


def test_fit_emits_the_recipes_view_before_training_and_after_each_epoch():
    from models.training import train

    project = mlp_project(epochs=2, live_view={"fn": "tests.models.test_views:first_digits_view",
                                               "n": 3})
    state = RunState()
    train(project, state=state)
    shown = [e.payload for e in state.drain() if e.kind == "view"]
    assert [v["epoch"] for v in shown] == [0, 1, 2]
    panels = shown[-1]["view"]["panels"]
    assert [p["kind"] for p in panels] == ["images", "bars"]
    assert np.asarray(panels[0]["images"]).shape == (3, 8, 8)
    assert len(panels[0]["labels"]) == 3 and sum(panels[1]["values"]) == 3


def test_a_failing_view_is_switched_off_with_a_note_and_training_goes_on():
    from models.training import train

    project = mlp_project(epochs=2, live_view="tests.models.test_views:broken_view")
    state = RunState()
    result = train(project, state=state)
    assert result.epochs_run == 2 and result.stopped == "completed"
    assert not [e for e in state.drain() if e.kind == "view"]
    assert any("no pictures today" in n and "live view is off" in n for n in result.notes)


def test_extra_metrics_join_the_metrics_and_can_be_the_quality():
    from models.training import train

    project = mlp_project(epochs=1, extra_metrics="tests.models.test_views:weight_count_metric",
                          quality={"metric": "test_weight_count"})
    result = train(project, state=RunState())
    expected = 64 * 32 + 32 + 32 * 10 + 10
    assert result.metrics["test_weight_count"] == expected
    assert result.quality == {"metric": "test_weight_count", "value": expected}
    assert result.metrics["test_rows"] > 0


def test_an_unknown_extra_metric_is_a_training_error():
    from models.training import TrainingError, train

    project = mlp_project(epochs=1, extra_metrics="tests.models.test_views:nothing_here")
    with pytest.raises(TrainingError, match="extra_metrics"):
        train(project, state=RunState())


def test_custom_loops_emit_their_view_the_same_way():
    from models.loops import run_loop
    from tests.models.test_loops import ToyLoop, _project

    class Viewed(ToyLoop):
        def live_view(self):
            w = float(self.models["model"].get_weights()[0][0, 0])
            return views.view("slope", views.text_panel("w", f"{w:.3f}"))

    import tests.models.test_loops as mod

    mod._Viewed = Viewed
    state = RunState()
    run_loop(_project(), {"loop": "tests.models.test_loops:_Viewed", "epochs": 3}, state=state)
    shown = [e.payload for e in state.drain() if e.kind == "view"]
    assert [v["epoch"] for v in shown] == [0, 1, 2, 3]
    assert shown[0]["view"]["panels"][0]["text"] != shown[-1]["view"]["panels"][0]["text"]


def test_panel_helpers_make_plain_json():
    import json

    p = views.scatter_panel("pts", views.series("a", np.arange(5000), np.arange(5000),
                                                classes=np.arange(5000) % 3))
    s = p["series"][0]
    assert len(s["x"]) == views.MAX_POINTS and set(s["classes"]) == {0, 1, 2}
    g = views.graph_panel("g", np.zeros((3, 2)), [(0, 1), (1, 2)], [0, 1, 1], marked=[0])
    h = views.heatmap_panel(np.eye(3), "att", x_labels="abc", y_labels="abc")
    im = views.images_panel(np.full((2, 4, 4, 1), 2.0))
    assert np.asarray(im["images"]).max() == 1.0 and np.asarray(im["images"]).shape == (2, 4, 4)
    json.dumps(views.view("all", p, g, h, im, views.lines_panel("l", views.line("r", [1], [np.nan]))))
    with pytest.raises(ValueError):
        views.heatmap_panel(np.zeros(3))
    with pytest.raises(ValueError):
        views.resolve("no_colon_here")
