"""LIME (Ribeiro et al. 2016) with the ``lime`` package: tabular, image and text explainers.

LIME fits a weighted linear model to the model's answers on perturbed copies
of one sample; its coefficients are the attributions. Which explainer runs
depends on the explained input (the first one, or the ``input`` option for a
model with several; the other inputs keep the sample's values):

* table: ``LimeTabularExplainer`` over the training split's statistics;
* series: ``RecurrentTabularExplainer`` (every feature at every step);
* image: ``LimeImageExplainer`` with the image patches of
  :meth:`Subject.groups` as segments (quickshift finds nothing in an 8x8
  digit) and the background mean as the colour of a hidden patch;
* text (token ids): ``LimeTextExplainer`` over token positions
  (``bow=False``); a removed token becomes the padding id 0.

The model is called through :meth:`Subject.predict`, which checks for cancel
between batches.
"""
from __future__ import annotations

import numpy as np

from models.explain.subject import ExplainError, Subject

PAD = "\x00pad"  # what LimeTextExplainer puts in place of a removed token


def _image_explainer(seed: int):
    """``LimeImageExplainer`` without its tqdm bar on stderr, masking all images at once."""
    from lime import lime_image

    class QuietImageExplainer(lime_image.LimeImageExplainer):
        def data_labels(self, image, fudged_image, segments, classifier_fn, num_samples,
                        batch_size=10):
            n_features = np.unique(segments).shape[0]
            data = self.random_state.randint(0, 2, num_samples * n_features).reshape(
                (num_samples, n_features))
            data[0, :] = 1
            off = data[:, segments] == 0                        # [n, h, w]
            if image.ndim == 3:
                off = off[..., None]
            images = np.where(off, fudged_image[None], image[None])
            return data, classifier_fn(images)

    return QuietImageExplainer(random_state=seed)


def _weights(exp, label: int, size: int) -> np.ndarray:
    """LIME's coefficients by feature (a regression explanation has one unnamed label)."""
    found = exp.as_map()
    pairs = found.get(label) or next(iter(found.values()))
    weights = np.zeros(size)
    for j, w in pairs:
        weights[j] = w
    return weights


def explained_input(subject: Subject, options: dict) -> int:
    name = options.get("input")
    if name in (None, ""):
        return 0
    names = [i.name for i in subject.inputs]
    if name not in names:
        raise ExplainError(f"the model has no input {name!r}; it has {', '.join(names)}")
    return names.index(name)


def lime(subject: Subject, xs, head_full, options: dict, state, target: int) -> dict:
    src = explained_input(subject, options)
    info = subject.inputs[src]
    seed = int(options.get("seed", 0))
    num_samples = int(options.get("num_samples", 1000))
    shape = info.shape
    k = subject.classes(options.get("output", 0))
    binary = k == 1 and subject.dataset.task == "binary"
    mode = "classification" if (k > 1 or binary) else "regression"
    label = 1 if binary else target

    def predict(rows_src: np.ndarray) -> np.ndarray:
        rows_src = np.asarray(rows_src).reshape((-1,) + shape).astype(xs[src].dtype)
        rows = [rows_src if i == src else np.repeat(x, len(rows_src), axis=0) for i, x in enumerate(xs)]
        p = subject.predict(rows, head_full, state)
        if k == 1 and mode == "classification":  # one sigmoid unit: LIME wants both classes
            p = np.concatenate([1.0 - p, p], axis=1)
        return p

    x = xs[src][0]
    out: list = [None] * len(xs)
    extras: dict = {}
    if info.modality == "text":
        from lime.lime_text import LimeTextExplainer

        words = [str(int(t)) for t in x.ravel()]
        explainer = LimeTextExplainer(bow=False, split_expression=" ", mask_string=PAD,
                                      random_state=seed, class_names=None)

        def classify(texts):
            ids = np.array([[0 if w == PAD else int(w) for w in t.split(" ")] for t in texts])
            return predict(ids)

        exp = explainer.explain_instance(" ".join(words), classify, labels=(label,),
                                         num_features=len(words), num_samples=num_samples)
        weights = _weights(exp, label, len(words))
        out[src] = weights.reshape(shape)
    elif info.modality == "image" and len(shape) in (2, 3):
        ids, _ = subject.groups(src)
        ids2 = ids if ids.ndim == 2 else ids[..., 0]
        image = x if x.ndim == 3 else x[..., None]
        hide = subject.baseline[src][0]
        hide = hide if hide.ndim == 3 else hide[..., None]
        explainer = _image_explainer(seed)
        exp = explainer.explain_instance(
            image.astype(np.float64), lambda imgs: predict(np.asarray(imgs).reshape((-1,) + shape)),
            labels=(label,), top_labels=None, hide_color=hide.astype(np.float64),
            num_features=int(ids2.max()) + 1, num_samples=num_samples,
            segmentation_fn=lambda _img: ids2, batch_size=256)
        weights = np.zeros(int(ids2.max()) + 1)
        for j, w in exp.local_exp[label]:
            weights[j] = w
        out[src] = weights[ids]
        extras["score"] = float(exp.score)
    else:
        from lime import lime_tabular

        train = subject.background[src]
        if info.modality == "series" and len(shape) == 2:
            names = info.feature_names or [f"f{j}" for j in range(shape[1])]
            explainer = lime_tabular.RecurrentTabularExplainer(
                train, mode=mode, feature_names=names, random_state=seed, discretize_continuous=False)
            exp = explainer.explain_instance(x, predict, labels=(label,),
                                             num_features=x.size, num_samples=num_samples)
            steps, feats = shape
            weights = _weights(exp, label, x.size)
            # The recurrent explainer numbers features f * steps + t.
            out[src] = weights.reshape(feats, steps).T
        else:
            flat = train.reshape(len(train), -1)
            names = info.feature_names or [f"x[{j}]" for j in range(flat.shape[1])]
            explainer = lime_tabular.LimeTabularExplainer(
                flat, mode=mode, feature_names=names, random_state=seed)
            exp = explainer.explain_instance(x.reshape(-1), predict, labels=(label,),
                                             num_features=flat.shape[1], num_samples=num_samples)
            weights = _weights(exp, label, flat.shape[1])
            out[src] = weights.reshape(shape)
        extras["score"] = float(exp.score) if np.isscalar(exp.score) else None
    return {"attributions": out, "extras": extras}


__all__ = ["lime", "explained_input"]
