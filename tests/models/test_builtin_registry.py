"""Built-in datasets added from outside models.data (the gallery's generated tasks do this)."""
import numpy as np
import pytest

from models import data


def _squares(seed=0, n=200, **_):
    rng = np.random.default_rng(seed)
    x = rng.normal(size=(n, 3)).astype("float32")
    return data.RawData(x=x, y=(x[:, 0] > 0).astype("int32"), task="binary",
                        class_names=["neg", "pos"], feature_names=["a", "b", "c"])


def test_a_registered_builtin_loads_splits_and_lists(monkeypatch):
    monkeypatch.setitem(data._BUILTINS, "test-squares", None)
    data.register_builtin("test-squares", task="binary", shape=(3,), classes=2,
                          description="a test set", load=_squares)
    ds = data.load_dataset({"source": "builtin", "name": "test-squares", "n": 100}, seed=1)
    assert ds.n_train + ds.n_val + ds.n_test == 100
    assert ds.feature_names == ["a", "b", "c"] and ds.task == "binary"
    assert any(d["name"] == "test-squares" for d in data.list_builtin())


def test_a_loader_may_hand_back_its_own_splits(monkeypatch):
    fixed = data.dataset_from_arrays(np.zeros((10, 2), "float32"), np.arange(10) % 2,
                                     x_test=np.ones((4, 2), "float32"), y_test=np.arange(4) % 2)
    monkeypatch.setitem(data._BUILTINS, "test-fixed", None)
    data.register_builtin("test-fixed", task="binary", shape=(2,), classes=2,
                          description="fixed", load=lambda seed=0, **o: fixed)
    assert data.load_dataset("builtin:test-fixed") is fixed


def test_unknown_names_still_list_what_exists():
    with pytest.raises(data.DataError, match="digits"):
        data.load_dataset("builtin:no-such-thing")
