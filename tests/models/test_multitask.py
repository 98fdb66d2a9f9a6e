"""Multi-task template: two heads on one trunk, weighted losses, the weaker head as quality."""
import numpy as np
import pytest

from models import gallery
from models.gallery.multitask import digit_tasks
from models.runner import RunState
from models.training import TrainingError, train
from models.validate import validate


def test_targets_are_the_digit_and_whether_it_is_above_4():
    t = digit_tasks(np.array([0, 4, 5, 9]))
    assert t["digit"].tolist() == [0, 4, 5, 9] and t["above_4"].tolist() == [0, 0, 1, 1]


def test_multi_task_builds_checks_and_takes_a_step():
    project = gallery.open_template("multi-task")
    assert validate(project.graph).valid
    state = RunState()
    result = train(project, state=state, epochs=1)
    kinds = [e.kind for e in state.drain()]
    assert kinds.count("batch") >= 10 and kinds.count("epoch") == 1
    both = (result.metrics["test_digit_accuracy"], result.metrics["test_above_4_accuracy"])
    assert result.quality["metric"] == "min_task_accuracy" and result.quality["value"] == min(both)
    assert {"val_digit_loss", "val_above_4_loss"} <= set(result.history)


def test_loss_weights_change_the_total_loss_and_bad_heads_are_named():
    losses = {}
    for w in (0.0, 5.0):
        project = gallery.open_template("multi-task")
        project.recipe["loss_weights"] = {"digit": 1.0, "above_4": w}
        losses[w] = train(project, epochs=1).history["loss"][0]
    assert losses[5.0] > losses[0.0]
    project = gallery.open_template("multi-task")
    project.recipe["loss_weights"] = {"digits": 1.0}
    with pytest.raises(TrainingError, match="'digits', which is not one of the model's heads"):
        train(project, epochs=1)
