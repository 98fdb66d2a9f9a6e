"""Few-shot (prototypical networks) and zero-shot (attributes) templates and their data."""
import numpy as np
import pytest

from models import gallery
from models.data import DataError, load_dataset
from models.datasets import digit_classes as dc
from models.gallery.shots import zero_shot_metrics
from models.loops import episodic
from models.runner import RunState
from models.training import TrainingError, train
from models.validate import validate


def test_novel_classes_only_in_the_test_split():
    ds = load_dataset("builtin:digits-novel")
    assert set(np.unique(ds.y_train)) == set(np.unique(ds.y_val)) == {0, 1, 2, 3, 4}
    assert set(np.unique(ds.y_test)) == {5, 6, 7, 8, 9}
    other = load_dataset({"source": "builtin", "name": "digits-novel", "base_classes": [0, 9]})
    assert set(np.unique(other.y_test)) == {1, 2, 3, 4, 5, 6, 7, 8}
    with pytest.raises(DataError, match="base_classes"):
        load_dataset({"source": "builtin", "name": "digits-novel", "base_classes": [11]})


def test_episodes_are_class_major_and_prototypes_classify():
    pools = {c: np.full((30, 2), c, np.float32) for c in range(6)}
    support, query, classes = episodic.sample_episode(pools, np.random.default_rng(0), 3, 2, 4)
    assert support.shape == (6, 2) and query.shape == (12, 2) and len(set(classes)) == 3
    assert np.all(support[:2] == classes[0]) and np.all(query[4:8] == classes[1])
    pred = episodic.nearest_prototype(support, query, 3)
    assert pred.tolist() == [0] * 4 + [1] * 4 + [2] * 4
    turned = episodic.with_rotations({0: np.arange(8, dtype=np.float32).reshape(1, 2, 2, 2)})
    assert len(turned) == 4 and not np.array_equal(turned[0], turned[1])


def test_few_shot_builds_checks_and_takes_a_step():
    project = gallery.open_template("few-shot")
    assert validate(project.graph).valid
    project.recipe.update(steps_per_epoch=3, test_episodes=5)
    state = RunState()
    result = train(project, state=state, epochs=1)
    assert [e.kind for e in state.drain()].count("batch") == 3
    assert 0.2 <= result.metrics["episode_accuracy"] <= 1.0
    assert 0.5 <= result.metrics["pixel_episode_accuracy"] <= 1.0


def test_few_shot_says_when_a_split_is_too_small():
    project = gallery.open_template("few-shot")
    project.recipe.update(n_way=6)
    with pytest.raises(TrainingError, match="6-way episodes need at least 6"):
        train(project, epochs=1)


def test_each_class_has_its_own_description_and_composites_mix_halves():
    assert len({tuple(r) for r in dc.CLASS_ATTRIBUTES if r.any()}) >= 9  # 0 and 8 read alike
    x = np.stack([np.zeros((8, 8, 1)), np.ones((8, 8, 1))]).astype(np.float32)
    images, attributes = dc.composites(x, np.array([1, 8]), 50, np.random.default_rng(0))
    for img, a in zip(images, attributes):
        top, bottom = int(img[0, 0, 0]), int(img[7, 0, 0])
        assert np.array_equal(a[:dc.TOP], dc.CLASS_ATTRIBUTES[[1, 8][top], :dc.TOP])
        assert np.array_equal(a[dc.TOP:], dc.CLASS_ATTRIBUTES[[1, 8][bottom], dc.TOP:])


def test_unseen_classes_never_reach_training():
    ds = load_dataset("builtin:digits-attributes")
    unseen = {tuple(dc.CLASS_ATTRIBUTES[c]) for c in dc.UNSEEN}
    assert {tuple(r) for r in ds.y_test} == unseen
    originals = ds.y_train[:len(ds.y_train) - 4000]
    assert not unseen & {tuple(r) for r in originals} and not unseen & {tuple(r) for r in ds.y_val}
    with pytest.raises(DataError, match="same description"):
        load_dataset({"source": "builtin", "name": "digits-attributes", "unseen": [0, 8]})


def test_zero_shot_metric_counts_the_nearest_description():
    ds = load_dataset("builtin:digits-attributes")

    class Oracle:  # reads every attribute right, slightly unsure
        def predict(self, x, verbose=0):
            return np.clip(ds.y_test[:len(x)], 0.1, 0.9)

    assert zero_shot_metrics(Oracle(), ds, {})["unseen_accuracy"] == 1.0


def test_zero_shot_builds_checks_and_takes_a_step():
    project = gallery.open_template("zero-shot")
    assert validate(project.graph).valid
    state = RunState()
    result = train(project, state=state, epochs=1)
    assert 0.0 <= result.quality["value"] <= 1.0
    view = [e.payload["view"] for e in state.drain() if e.kind == "view"][-1]
    assert [p["kind"] for p in view["panels"]] == ["heatmap", "heatmap"]
    assert view["panels"][1]["y_labels"] == [str(c) for c in dc.UNSEEN]
