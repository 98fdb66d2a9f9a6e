"""models.evaluation: the numbers and curves the evaluation page shows, checked against sklearn."""
import json

import numpy as np
import pytest
from sklearn import metrics as skm

from models.data import dataset_from_arrays
from models.evaluation import EvaluationError, evaluate


class _Fixed:
    """A stand-in model that returns given outputs (no Keras needed)."""

    def __init__(self, outputs):
        self.outputs = outputs

    def predict(self, x, batch_size=None, verbose=0):
        return self.outputs


def _classification_data(n=600, k=4, seed=0):
    rng = np.random.default_rng(seed)
    y = rng.integers(0, k, n).astype(np.int32)
    # Scores that are right most of the time, so the curves are informative.
    logits = rng.normal(size=(n, k))
    logits[np.arange(n), y] += 2.0
    probs = np.exp(logits) / np.exp(logits).sum(axis=1, keepdims=True)
    x = rng.normal(size=(n, 3)).astype(np.float32)
    return x, y, probs


def _dataset(x, y, task, class_names=None):
    ds = dataset_from_arrays(x, y, x_test=x, y_test=y, task=task, class_names=class_names)
    assert ds.n_test == len(x)
    return ds


def test_multiclass_matches_sklearn_and_is_json():
    x, y, probs = _classification_data()
    ds = _dataset(x, y, "classification", ["a", "b", "c", "d"])
    out = evaluate(_Fixed(probs), ds)
    json.dumps(out, allow_nan=False)  # plain JSON, no NaN
    pred = probs.argmax(1)
    assert out["task"] == "classification" and out["n"] == len(y)
    assert out["class_names"] == ["a", "b", "c", "d"]
    assert out["metrics"]["accuracy"] == pytest.approx(skm.accuracy_score(y, pred))
    assert np.array_equal(out["confusion_matrix"], skm.confusion_matrix(y, pred))
    p, r, f, s = skm.precision_recall_fscore_support(y, pred)
    for i, row in enumerate(out["per_class"]):
        assert row["class"] == "abcd"[i]
        assert row["precision"] == pytest.approx(p[i]) and row["recall"] == pytest.approx(r[i])
        assert row["f1"] == pytest.approx(f[i]) and row["support"] == s[i]
    assert len(out["roc"]) == 4 and len(out["pr"]) == 4
    for i, curve in enumerate(out["roc"]):
        assert curve["auc"] == pytest.approx(skm.roc_auc_score(y == i, probs[:, i]))
        assert len(curve["fpr"]) == len(curve["tpr"]) <= 200
        assert curve["fpr"][0] == 0.0 and curve["fpr"][-1] == 1.0
    for curve in out["pr"]:
        assert len(curve["recall"]) == len(curve["precision"]) <= 200
        assert 0.0 <= curve["ap"] <= 1.0
    assert out["metrics"]["auc"] > 0.8
    assert out["metrics"]["balanced_accuracy"] == pytest.approx(skm.balanced_accuracy_score(y, pred))


def test_binary_sigmoid_output_gives_one_curve():
    rng = np.random.default_rng(1)
    y = rng.integers(0, 2, 400).astype(np.int32)
    p = np.clip(y * 0.6 + rng.uniform(0, 0.4, 400), 0, 1)[:, None]
    ds = _dataset(rng.normal(size=(400, 2)).astype(np.float32), y, "binary", ["no", "yes"])
    out = evaluate(_Fixed(p), ds)
    assert out["task"] == "binary"
    assert np.asarray(out["confusion_matrix"]).shape == (2, 2)
    assert [c["class"] for c in out["roc"]] == ["yes"]
    assert out["roc"][0]["auc"] == pytest.approx(skm.roc_auc_score(y, p[:, 0]))
    assert out["metrics"]["accuracy"] == pytest.approx(skm.accuracy_score(y, p[:, 0] > 0.5))


def test_logits_are_turned_into_probabilities():
    x, y, probs = _classification_data(k=3)
    logits = np.log(probs) + 5.0
    out = evaluate(_Fixed(logits), _dataset(x, y, "classification"))
    assert any("logits" in n for n in out["notes"])
    assert out["metrics"]["accuracy"] == pytest.approx(skm.accuracy_score(y, probs.argmax(1)))


def test_class_missing_from_test_split_has_no_curve_but_a_row():
    x, y, probs = _classification_data(k=3)
    keep = y != 2
    ds = _dataset(x[keep], y[keep], "classification", ["a", "b", "c"])
    out = evaluate(_Fixed(probs[keep]), ds)
    assert len(out["per_class"]) == 3 and out["per_class"][2]["support"] == 0
    assert [c["class"] for c in out["roc"]] == ["a", "b"]
    assert any("no ROC curve" in n for n in out["notes"])


def test_regression_metrics_and_subsampled_scatter():
    rng = np.random.default_rng(2)
    x = rng.normal(size=(1000, 3)).astype(np.float32)
    y = (x @ np.array([1.0, -2.0, 0.5]))[:, None].astype(np.float32)
    pred = y + rng.normal(scale=0.3, size=y.shape)
    out = evaluate(_Fixed(pred), _dataset(x, y, "regression"))
    json.dumps(out, allow_nan=False)
    assert out["metrics"]["mae"] == pytest.approx(skm.mean_absolute_error(y, pred))
    assert out["metrics"]["rmse"] == pytest.approx(np.sqrt(skm.mean_squared_error(y, pred)))
    assert out["metrics"]["r2"] == pytest.approx(skm.r2_score(y, pred))
    sc = out["scatter"]
    assert len(sc["actual"]) == len(sc["predicted"]) == len(sc["residual"]) <= 200
    assert np.allclose(np.asarray(sc["predicted"]) - sc["actual"], sc["residual"])
    assert sum(out["residual_histogram"]["counts"]) == 1000


def test_nan_predictions_do_not_break_it():
    x, y, probs = _classification_data(k=3)
    probs[:5] = np.nan
    out = evaluate(_Fixed(probs), _dataset(x, y, "classification"))
    json.dumps(out, allow_nan=False)
    assert any("not finite" in n for n in out["notes"])
    reg = evaluate(_Fixed(np.full((50, 1), np.nan)),
                   _dataset(x[:50], y[:50, None].astype(np.float32), "regression"))
    assert reg["metrics"]["mae"] is None


def test_wrong_output_width_is_a_clear_error():
    rng = np.random.default_rng(3)
    x = rng.normal(size=(40, 2)).astype(np.float32)
    y = rng.normal(size=(40, 1)).astype(np.float32)
    with pytest.raises(EvaluationError, match="does not fit"):
        evaluate(_Fixed(np.zeros((40, 3))), _dataset(x, y, "regression"))


def test_real_keras_model_on_iris():
    from models import backend
    from models.data import load_dataset

    keras = backend.keras()
    keras.utils.set_random_seed(0)
    ds = load_dataset("builtin:iris")
    model = keras.Sequential([keras.Input((4,)), keras.layers.Dense(16, activation="relu"),
                              keras.layers.Dense(3, activation="softmax")])
    model.compile("adam", "sparse_categorical_crossentropy", metrics=["accuracy"])
    model.fit(ds.x_train, ds.y_train, epochs=30, verbose=0)
    out = evaluate(model, ds)
    assert out["class_names"] == ds.class_names
    assert np.asarray(out["confusion_matrix"]).sum() == ds.n_test
    keras_acc = model.evaluate(ds.x_test, ds.y_test, verbose=0, return_dict=True)["accuracy"]
    assert out["metrics"]["accuracy"] == pytest.approx(keras_acc, abs=1e-6)
