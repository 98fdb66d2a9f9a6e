"""builtin:karate-club: the whole club as one sample, two labelled members, the rest to predict."""
import numpy as np
import pytest

from models.data import DataError, list_builtin, load_dataset


@pytest.fixture(scope="module")
def club():
    return load_dataset("builtin:karate-club")


def test_the_club_is_one_graph_with_identity_features(club):
    x = club.x_train
    assert set(x) == {"features", "adjacency"} and club.n_train == club.n_test == 1
    a = x["adjacency"][0]
    assert a.shape == (34, 34) and np.array_equal(a, a.T) and not np.diag(a).any()
    assert int(a.sum()) == 2 * 78  # Zachary's 78 friendships
    np.testing.assert_array_equal(x["features"][0], np.eye(34))
    assert club.n_val == 0 and club.task == "sequence" and club.class_names == ["Mr. Hi", "Officer"]


def test_only_the_two_leaders_are_labelled_for_training(club):
    train, test = club.y_train[0], club.y_test[0]
    assert np.flatnonzero(train >= 0).tolist() == [0, 33]
    assert train[0] == 0 and train[33] == 1  # the instructor and the administrator
    assert (test[[0, 33]] == -1).all() and (test >= 0).sum() == 32
    both = np.where(test >= 0, test, train)
    assert np.bincount(both).tolist() == [17, 17]


def test_the_club_is_listed_and_takes_no_options():
    entry = next(b for b in list_builtin() if b["name"] == "karate-club")
    assert entry["task"] == "sequence" and entry["classes"] == 2
    with pytest.raises(DataError, match="no options"):
        load_dataset({"source": "builtin", "name": "karate-club", "nodes": 10})


def test_evaluation_leaves_the_unlabelled_nodes_out(club):
    from models.evaluation import evaluate
    from tests.models.test_evaluation import _Fixed

    probs = np.zeros((1, 34, 2), "float32")
    probs[0, :, 1] = 1.0  # everybody predicted "Officer"
    result = evaluate(_Fixed(probs), club)
    assert result["metrics"]["accuracy"] == pytest.approx(16 / 32)
    assert sum(c["support"] for c in result["per_class"]) == 32
    assert any("-1" in n and "left out" in n for n in result["notes"])
