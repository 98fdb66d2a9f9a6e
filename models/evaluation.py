"""How well a trained model does on held-out data, as a small JSON-ready dict.

:func:`evaluate` runs the model on a dataset's test split (or another split)
and measures it the way the task asks:

* classification (several classes, or binary with one sigmoid unit): accuracy
  and the other test metrics, the confusion matrix, precision, recall, F1 and
  support per class (scikit-learn), one-vs-rest ROC curves with their AUC and
  precision-recall curves with their average precision, per class;
* regression and forecasting: MAE, RMSE and R², and predicted-against-actual
  pairs with their residuals.

Curves and point clouds are subsampled (at most ``max_points`` points each),
so the result stays small enough to store in a project, send between threads
or print as JSON. Every number is a plain ``float`` (``None`` where it is not
finite) and every array a list. Nothing here knows about Qt.
"""
from __future__ import annotations

import math
from typing import Any

import numpy as np

CLASS_TASKS = ("classification", "binary")
VALUE_TASKS = ("regression", "forecast")


class EvaluationError(ValueError):
    """The model and the data cannot be evaluated together; the message says why."""


def evaluate(model, dataset, *, batch_size: int = 256, split: str = "test",
             max_points: int = 200, predictions: np.ndarray | None = None) -> dict:
    """Measure ``model`` on one split of ``dataset``.

    Args:
        model: a built ``keras.Model`` (anything with ``predict``).
        dataset: a :class:`models.data.Dataset`.
        batch_size: the prediction batch size.
        split: ``"test"`` (default), ``"val"`` or ``"train"``.
        max_points: the most points kept per curve and per point cloud.
        predictions: the model's outputs on that split, when already at hand
            (then ``model`` is not run).

    Returns:
        A dict with ``task``, ``split``, ``n`` and ``metrics`` (name -> float),
        plus for classification ``class_names``, ``confusion_matrix`` (rows:
        true class, columns: predicted), ``per_class`` (a list of
        ``{"class", "precision", "recall", "f1", "support"}``), ``averages``
        (macro and weighted), ``roc`` and ``pr`` (a list per class of
        ``{"class", "fpr", "tpr", "auc"}`` and ``{"class", "recall",
        "precision", "ap"}``); for regression ``scatter`` (``{"actual",
        "predicted", "residual"}``, subsampled) and ``residual_histogram``
        (``{"counts", "edges"}``). ``notes`` says what was left out and why.

    Raises:
        EvaluationError: when the split is empty or the outputs do not fit the
            targets.
    """
    x, y = _split(dataset, split)
    n = _count(x)
    if n == 0:
        raise EvaluationError(f"the {split} split is empty; there is nothing to evaluate on")
    if predictions is None:
        predictions = model.predict(x, batch_size=batch_size, verbose=0)
    notes: list[str] = []
    if isinstance(predictions, dict):
        key = next(iter(predictions))
        notes.append(f"the model has {len(predictions)} outputs; only '{key}' is evaluated")
        predictions = predictions[key]
    elif isinstance(predictions, (list, tuple)):
        notes.append(f"the model has {len(predictions)} outputs; only the first is evaluated")
        predictions = predictions[0]
    pred = np.asarray(predictions, dtype=np.float64)
    y = np.asarray(y)
    task = getattr(dataset, "task", None) or _guess_task(pred, y)
    out: dict[str, Any] = {"task": task, "split": split, "n": int(n)}
    if task in CLASS_TASKS or (task == "sequence" and getattr(dataset, "class_names", None)):
        out.update(_classification(pred, y, dataset, max_points, notes))
    else:
        out.update(_regression(pred, y, max_points, notes))
    out["notes"] = notes
    return _clean(out)


# --------------------------------------------------------------------------- classification


def _classification(pred: np.ndarray, y: np.ndarray, dataset, max_points: int,
                    notes: list[str]) -> dict:
    from sklearn import metrics as skm

    probs = _class_probabilities(pred, notes)
    k = probs.shape[-1]
    probs = probs.reshape(-1, k)
    y_true = np.asarray(y).reshape(-1).astype(np.int64)
    if len(y_true) != len(probs):
        raise EvaluationError(
            f"the model gives {len(probs)} predictions for {len(y_true)} targets; its output "
            f"shape {tuple(pred.shape[1:])} does not fit the labels")
    unlabelled = y_true < 0
    if unlabelled.any():
        # -1 marks a target without a label (the unlabelled nodes of a graph, say).
        notes.append(f"{int(unlabelled.sum())} targets are -1 (no label) and were left out")
        y_true, probs = y_true[~unlabelled], probs[~unlabelled]
        if not len(y_true):
            raise EvaluationError("every target of this split is -1 (no label); there is "
                                  "nothing to evaluate on")
    names = list(getattr(dataset, "class_names", None) or [])
    k = max(k, int(y_true.max()) + 1 if y_true.size else 0)
    if len(names) < k:
        names += [str(i) for i in range(len(names), k)]
    names = names[:k]
    if probs.shape[1] < k:  # a head narrower than the labels: those classes are never predicted
        probs = np.pad(probs, ((0, 0), (0, k - probs.shape[1])))
    bad = ~np.isfinite(probs).all(axis=1)
    if bad.any():
        notes.append(f"{int(bad.sum())} predictions were not finite numbers and count as wrong")
        probs = np.where(np.isfinite(probs), probs, 0.0)
    y_pred = probs.argmax(axis=1)
    if bad.any():
        y_pred[bad] = (y_true[bad] + 1) % max(k, 2)
    labels = list(range(k))
    cm = skm.confusion_matrix(y_true, y_pred, labels=labels)
    precision, recall, f1, support = skm.precision_recall_fscore_support(
        y_true, y_pred, labels=labels, zero_division=0)
    per_class = [{"class": names[i], "precision": float(precision[i]), "recall": float(recall[i]),
                  "f1": float(f1[i]), "support": int(support[i])} for i in range(k)]
    averages = {}
    for avg in ("macro", "weighted"):
        p, r, f, _ = skm.precision_recall_fscore_support(y_true, y_pred, labels=labels,
                                                         average=avg, zero_division=0)
        averages[avg] = {"precision": float(p), "recall": float(r), "f1": float(f)}
    # Balanced accuracy is the mean recall over the classes present in the split.
    present_recall = [recall[i] for i in labels if support[i] > 0]
    metrics = {
        "accuracy": float(skm.accuracy_score(y_true, y_pred)),
        "balanced_accuracy": float(np.mean(present_recall)) if present_recall else None,
        "macro_f1": averages["macro"]["f1"],
        "weighted_f1": averages["weighted"]["f1"],
    }
    eps = 1e-7
    clipped = np.clip(probs, eps, 1.0)
    metrics["log_loss"] = float(-np.mean(np.log(clipped[np.arange(len(y_true)), y_true])))
    roc, pr = [], []
    present = set(np.unique(y_true).tolist())
    # Binary tasks get one curve (for the positive class); more classes one each.
    curve_classes = [1] if k == 2 else labels
    for c in curve_classes:
        positives = y_true == c
        if c not in present or positives.all():
            continue  # a curve needs both positives and negatives
        score = probs[:, c]
        fpr, tpr, _ = skm.roc_curve(positives, score)
        prec, rec, _ = skm.precision_recall_curve(positives, score)
        fpr, tpr = _subsample(fpr, tpr, max_points)
        rec, prec = _subsample(rec[::-1], prec[::-1], max_points)
        roc.append({"class": names[c], "fpr": fpr, "tpr": tpr,
                    "auc": float(skm.roc_auc_score(positives, score))})
        pr.append({"class": names[c], "recall": rec, "precision": prec,
                   "ap": float(skm.average_precision_score(positives, score))})
    if roc:
        metrics["auc"] = float(np.mean([c["auc"] for c in roc]))
    if len(roc) < len(curve_classes):
        missing = len(curve_classes) - len(roc)
        notes.append(f"{missing} class{'es have' if missing != 1 else ' has'} no ROC curve: "
                     "the split holds no (or only) samples of it")
    return {"class_names": names, "metrics": metrics, "confusion_matrix": cm.tolist(),
            "per_class": per_class, "averages": averages, "roc": roc, "pr": pr}


def _class_probabilities(pred: np.ndarray, notes: list[str]) -> np.ndarray:
    """Class probabilities from the model's outputs (softmax/sigmoid applied if they are logits)."""
    if pred.ndim == 1 or pred.shape[-1] == 1:
        p = pred.reshape(pred.shape[0], -1)[:, :1] if pred.ndim > 1 else pred[:, None]
        if np.nanmin(p, initial=0.0) < 0.0 or np.nanmax(p, initial=0.0) > 1.0:
            p = 1.0 / (1.0 + np.exp(-np.clip(p, -60, 60)))
            notes.append("the outputs looked like logits; a sigmoid was applied")
        return np.concatenate([1.0 - p, p], axis=-1)
    finite = pred[np.isfinite(pred).all(axis=-1)]
    looks_like_probs = finite.size == 0 or (
        finite.min() >= -1e-6 and np.allclose(finite.sum(axis=-1), 1.0, atol=1e-3))
    if looks_like_probs:
        return pred
    notes.append("the outputs looked like logits; a softmax was applied")
    shifted = pred - np.nanmax(pred, axis=-1, keepdims=True)
    e = np.exp(shifted)
    return e / e.sum(axis=-1, keepdims=True)


# --------------------------------------------------------------------------- regression


def _regression(pred: np.ndarray, y: np.ndarray, max_points: int, notes: list[str]) -> dict:
    from sklearn import metrics as skm

    actual = np.asarray(y, dtype=np.float64).reshape(len(y), -1)
    predicted = pred.reshape(len(pred), -1)
    if predicted.shape != actual.shape:
        raise EvaluationError(
            f"the model predicts {predicted.shape[1]} value(s) per sample but the target has "
            f"{actual.shape[1]}; the output layer does not fit the data")
    ok = np.isfinite(predicted).all(axis=1)
    if not ok.all():
        notes.append(f"{int((~ok).sum())} predictions were not finite and were left out")
        actual, predicted = actual[ok], predicted[ok]
    if len(actual) == 0:
        return {"metrics": {"mae": None, "rmse": None, "r2": None},
                "scatter": {"actual": [], "predicted": [], "residual": []},
                "residual_histogram": {"counts": [], "edges": []}}
    mse = float(skm.mean_squared_error(actual, predicted))
    metrics = {"mae": float(skm.mean_absolute_error(actual, predicted)),
               "mse": mse, "rmse": math.sqrt(mse)}
    metrics["r2"] = float(skm.r2_score(actual, predicted)) if len(actual) > 1 else None
    a, p = actual.ravel(), predicted.ravel()
    residual = p - a
    counts, edges = np.histogram(residual, bins=30)
    idx = _even_indices(len(a), max_points)
    if len(idx) < len(a):
        notes.append(f"the scatter shows {len(idx)} of {len(a)} points, evenly spaced")
    return {"metrics": metrics,
            "scatter": {"actual": a[idx].tolist(), "predicted": p[idx].tolist(),
                        "residual": residual[idx].tolist()},
            "residual_histogram": {"counts": counts.tolist(), "edges": edges.tolist()}}


# --------------------------------------------------------------------------- helpers


def _split(dataset, split: str):
    if split not in ("test", "val", "train"):
        raise EvaluationError(f"unknown split {split!r}; use 'test', 'val' or 'train'")
    return getattr(dataset, f"x_{split}"), getattr(dataset, f"y_{split}")


def _count(x) -> int:
    if x is None:
        return 0
    if isinstance(x, dict):
        x = next(iter(x.values()), [])
    elif isinstance(x, (list, tuple)):
        x = x[0] if x else []
    return int(len(x))


def _guess_task(pred: np.ndarray, y: np.ndarray) -> str:
    if np.issubdtype(y.dtype, np.integer):
        return "binary" if pred.ndim == 1 or pred.shape[-1] == 1 else "classification"
    return "regression"


def _even_indices(n: int, k: int) -> np.ndarray:
    if n <= k:
        return np.arange(n)
    return np.unique(np.linspace(0, n - 1, max(2, k)).round().astype(np.int64))


def _subsample(x: np.ndarray, y: np.ndarray, k: int) -> tuple[list, list]:
    """At most ``k`` points of a curve, the first and last always among them."""
    idx = _even_indices(len(x), k)
    return np.asarray(x)[idx].tolist(), np.asarray(y)[idx].tolist()


def _clean(obj):
    """Plain Python types only; non-finite floats become None."""
    if isinstance(obj, dict):
        return {str(k): _clean(v) for k, v in obj.items()}
    if isinstance(obj, (list, tuple)):
        return [_clean(v) for v in obj]
    if isinstance(obj, np.ndarray):
        return _clean(obj.tolist())
    if isinstance(obj, (bool, np.bool_)):
        return bool(obj)
    if isinstance(obj, (int, np.integer)):
        return int(obj)
    if isinstance(obj, (float, np.floating)):
        f = float(obj)
        return f if math.isfinite(f) else None
    return obj


__all__ = ["evaluate", "EvaluationError"]
