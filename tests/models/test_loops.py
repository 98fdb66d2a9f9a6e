"""The custom-loop driver gives a hand-written loop what fit gets: events, pause, stop, NaN guard."""
import time

import numpy as np
import pytest

from models.graph import Graph
from models.loops import Loop, run_loop
from models.project import new_project
from models.runner import RunState, run_in_thread


class ToyLoop(Loop):
    """Fits y = 3x with one Dense unit by hand-written gradient steps."""

    monitor = "loss"
    nan_at_epoch = None
    step_sleep = 0.0

    def build(self):
        from models import backend

        keras = backend.keras()
        x = keras.Input((1,))
        self.models = {"model": keras.Model(x, keras.layers.Dense(1)(x))}
        self.x = np.linspace(-1, 1, 64, dtype="float32").reshape(-1, 1)
        self.y = 3 * self.x

    def steps_per_epoch(self):
        return 8

    def train_epoch(self, epoch, step):
        model = self.models["model"]
        w, b = model.get_weights()
        for i in range(8):
            pred = self.x * w[0, 0] + b[0]
            err = pred - self.y
            loss = float(np.mean(err ** 2))
            if self.nan_at_epoch is not None and epoch == self.nan_at_epoch and i == 3:
                loss = float("nan")
            w = w - 0.2 * np.array([[np.mean(2 * err * self.x)]], dtype="float32")
            b = b - 0.2 * np.array([np.mean(2 * err)], dtype="float32")
            model.set_weights([w, b])
            time.sleep(self.step_sleep)
            step(loss)
        return {"loss": loss}

    def evaluate(self):
        w, _ = self.models["model"].get_weights()
        return {"test_slope_error": abs(float(w[0, 0]) - 3.0)}


def _project():
    p = new_project(Graph("toy"))
    return p


def test_custom_loop_trains_and_reports_like_fit():
    state = RunState()
    recipe = {"loop": "tests.models.test_loops:ToyLoop", "epochs": 15,
              "quality": {"metric": "test_slope_error"}}
    result = run_loop(_project(), recipe, state=state)
    kinds = [e.kind for e in state.drain()]
    assert kinds[0] == "begin" and kinds[-1] == "done"
    assert kinds.count("epoch") == 15 and kinds.count("batch") == 15 * 8
    assert result.metrics["test_slope_error"] < 0.05
    assert result.quality["metric"] == "test_slope_error"
    assert result.history["loss"][-1] < result.history["loss"][0]


def test_custom_loop_nan_restores_last_good_weights():
    ToyLoop.nan_at_epoch = 2
    try:
        result = run_loop(_project(), {"loop": "tests.models.test_loops:ToyLoop", "epochs": 5},
                          state=RunState())
    finally:
        ToyLoop.nan_at_epoch = None
    assert result.stopped == "nan" and "NaN" in result.message
    assert result.epochs_run == 2
    assert all(np.isfinite(w).all() for w in result.model.get_weights())


def _started(recipe: dict, fraction: float = 0.05):
    """A loop run in a thread, once it got ``fraction`` of the way."""
    state, thread = run_in_thread(lambda s: run_loop(_project(), recipe, state=s))
    deadline = time.time() + 30
    while state.fraction < fraction and time.time() < deadline:
        time.sleep(0.01)
    return state, thread


def test_custom_loop_pause_resume_and_stop_keep_best_weights():
    ToyLoop.step_sleep = 0.01
    try:
        state, thread = _started({"loop": "tests.models.test_loops:ToyLoop", "epochs": 50})
        state.pause()
        time.sleep(0.1)
        frozen = state.fraction
        time.sleep(0.2)
        assert state.fraction == frozen and state.status == "paused"
        state.resume()
        time.sleep(0.1)
        assert state.fraction > frozen
        state.cancel()
        thread.join(10)
    finally:
        ToyLoop.step_sleep = 0.0
    result = state.result
    assert result.stopped == "stopped" and "best weights" in result.message
    assert result.epochs_run < 50


def test_unknown_loop_name_is_a_clear_error():
    from models.training import TrainingError

    with pytest.raises(TrainingError, match="unknown training loop 'nope'"):
        run_loop(_project(), {"loop": "nope"}, state=RunState())


_SCORES = iter(())


def scripted_score(model, dataset, recipe):
    """An epoch metric that reads its values from a script (one per epoch)."""
    return {"score": next(_SCORES)}


def test_an_epoch_metric_joins_the_logs_and_a_max_monitor_keeps_the_later_of_tied_epochs(tmp_path):
    import csv

    from models.training import train
    from tests.models.test_training import mlp_project

    global _SCORES
    _SCORES = iter([1.0, 3.0, 3.0, 2.0])
    project = mlp_project(epochs=4, epoch_metrics="tests.models.test_loops:scripted_score",
                          monitor={"metric": "score", "mode": "max"})
    state = RunState()
    result = train(project, state=state, out_dir=tmp_path)
    assert result.history["score"] == [1.0, 3.0, 3.0, 2.0]
    assert result.best_epoch == 3  # 3.0 twice: the later epoch has trained longer
    logged = [e.payload["logs"]["score"] for e in state.drain() if e.kind == "epoch"]
    assert logged == [1.0, 3.0, 3.0, 2.0]
    with open(tmp_path / "history.csv", newline="") as f:
        assert [float(r["score"]) for r in csv.DictReader(f)] == logged


def test_monitor_helpers():
    from models.loops import better, monitor_of
    from models.training import TrainingError

    assert better(1.0, None, "min") and better(0.5, 1.0, "min") and not better(1.0, 1.0, "min")
    assert better(2.0, 2.0, "max") and not better(1.0, 2.0, "max")
    assert monitor_of({}, "val_loss") == ("val_loss", "min")
    assert monitor_of({"monitor": "val_mae"}, "val_loss") == ("val_mae", "min")
    assert monitor_of({"monitor": {"metric": "modes", "mode": "max"}}, "loss") == ("modes", "max")
    with pytest.raises(TrainingError, match="'min' or 'max'"):
        monitor_of({"monitor": {"metric": "x", "mode": "up"}}, "loss")


class UnmeasuredLoop(ToyLoop):
    """Its monitor never appears in the logs (like a DBN still pre-training)."""

    monitor = "val_loss"


def test_a_stop_before_any_measured_epoch_keeps_the_last_complete_epoch():
    import tests.models.test_loops as mod

    mod._Unmeasured = UnmeasuredLoop
    ToyLoop.step_sleep = 0.01
    try:
        state, thread = _started({"loop": "tests.models.test_loops:_Unmeasured", "epochs": 50})
        state.cancel()
        thread.join(10)
    finally:
        ToyLoop.step_sleep = 0.0
    result = state.result
    assert result.stopped == "stopped" and result.best_epoch is None
    assert f"kept the weights of epoch {result.epochs_run}" in result.message
    assert "no epoch had measured val_loss" in result.message
