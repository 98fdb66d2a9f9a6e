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


def test_custom_loop_pause_resume_and_stop_keep_best_weights():
    ToyLoop.step_sleep = 0.01
    try:
        recipe = {"loop": "tests.models.test_loops:ToyLoop", "epochs": 50}
        state, thread = run_in_thread(lambda s: run_loop(_project(), recipe, state=s))
        deadline = time.time() + 30
        while state.fraction < 0.05 and time.time() < deadline:
            time.sleep(0.01)
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
