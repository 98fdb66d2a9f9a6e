"""Self-supervised contrastive learning (SimCLR): two augmented views of each image should agree.

:class:`SimCLRTrainer` holds three graphs: ``augment`` (random
transformations, active only while training), ``encoder`` (the
representation that is kept) and ``projection`` (a small head the loss is
computed on, thrown away afterwards, as SimCLR does). The loss is the
recipe's, by default :class:`~models.layers.NTXent`. No label is used for
training; :func:`probe_metrics` measures the representation with a linear
classifier trained on a few labels.
"""
from __future__ import annotations

import numpy as np

from models import views
from models.loops.trainer import Trainer, keras, sample_rows

ops = keras.ops


@keras.saving.register_keras_serializable(package="layerforge")
class SimCLRTrainer(Trainer):
    """Two random views of every image in a batch; the NT-Xent loss pulls each pair together.

    The recipe's ``loss`` must compare the two views' projections stacked
    along the batch (first view first), as :class:`~models.layers.NTXent`
    does; its ``temperature`` is set there.
    """

    roles = ("encoder", "projection", "augment")

    def check(self) -> str:
        made = tuple(self.graph("encoder").outputs[0].shape[1:])
        taken = tuple(self.graph("projection").inputs[0].shape[1:])
        if made != taken:
            return (f"the encoder makes {made} but the projection head takes {taken}: "
                    "make the head's Input match")
        aug_in = tuple(self.graph("augment").inputs[0].shape[1:])
        aug_out = tuple(self.graph("augment").outputs[0].shape[1:])
        enc_in = tuple(self.graph("encoder").inputs[0].shape[1:])
        if aug_out != enc_in or aug_in != enc_in:
            return (f"the augment graph must keep the image's shape {enc_in}; it takes {aug_in} "
                    f"and makes {aug_out}")
        return ""

    def compile_from(self, recipe):
        super().compile_from(recipe)
        from models.training import TrainingError

        spec = recipe.get("loss") or {"class_name": "layerforge>NTXent", "config": {}}
        try:
            self.contrastive = keras.losses.get(spec)
        except (ValueError, TypeError) as exc:
            raise TrainingError(f"the recipe's contrastive loss {spec!r} cannot be made: {exc}") from None

    def compute(self, x, training):
        augment, encoder, head = self.graph("augment"), self.graph("encoder"), self.graph("projection")
        first = augment(x, training=True)  # the views differ in validation too
        second = augment(x, training=True)
        both = ops.concatenate([first, second], axis=0)
        projected = head(encoder(both, training=training), training=training)
        return {"loss": self.contrastive(ops.zeros((ops.shape(projected)[0],)), projected)}

    def trained_weights(self):
        return self.graph("encoder").trainable_weights + self.graph("projection").trainable_weights

    def call(self, inputs, training=False):
        return self.graph("encoder")(inputs, training=training)

    def embed(self, x) -> np.ndarray:
        return np.asarray(ops.convert_to_numpy(self.graph("encoder")(
            np.asarray(x, dtype=np.float32), training=False)))


def _probe(train_features, y_train, test_features, y_test, labelled: np.ndarray) -> float:
    from sklearn.linear_model import LogisticRegression
    from sklearn.pipeline import make_pipeline
    from sklearn.preprocessing import StandardScaler

    probe = make_pipeline(StandardScaler(), LogisticRegression(max_iter=3000))
    probe.fit(train_features[labelled], y_train[labelled])
    return float(probe.score(test_features, y_test))


def probe_metrics(model, dataset, recipe) -> dict:
    """``linear_probe_accuracy``: a logistic regression on the embeddings of 10% of the training labels.

    The labelled tenth is drawn with the recipe's seed, stratified by class.
    ``raw_probe_accuracy`` is the same probe on the raw pixels, the number
    to beat.
    """
    from sklearn.model_selection import train_test_split

    share = float((recipe.get("loop_options") or {}).get("probe_labels", 0.1))
    y_train, y_test = np.asarray(dataset.y_train), np.asarray(dataset.y_test)
    labelled, _ = train_test_split(np.arange(len(y_train)), train_size=share, stratify=y_train,
                                   random_state=int(recipe.get("seed", 0)))
    x_train, x_test = np.asarray(dataset.x_train), np.asarray(dataset.x_test)
    flat = lambda a: a.reshape(len(a), -1)  # noqa: E731
    return {"linear_probe_accuracy": _probe(model.embed(x_train), y_train, model.embed(x_test),
                                            y_test, labelled),
            "raw_probe_accuracy": _probe(flat(x_train), y_train, flat(x_test), y_test, labelled)}


def embedding_view(model, dataset, options) -> dict:
    """The test images' embeddings projected on their first two principal components, by class.

    Embeddings are scaled to unit length first: the loss compares directions only.
    """
    x = sample_rows(np.asarray(dataset.x_test), int(options.get("n", 500)))
    y = sample_rows(np.asarray(dataset.y_test), int(options.get("n", 500)))
    z = model.embed(x)
    z = z / np.maximum(np.linalg.norm(z, axis=1, keepdims=True), 1e-12)
    z = z - z.mean(axis=0)
    _, _, vt = np.linalg.svd(z, full_matrices=False)
    pc = z @ vt[:2].T
    pc = pc / np.maximum(pc.std(axis=0), 1e-12)  # in standard deviations: readable numbers
    series = views.series_by_class(pc[:, 0], pc[:, 1], y, getattr(dataset, "class_names", None))
    return views.view("Embeddings", views.scatter_panel(
        "Test embeddings, first two principal components (colour: the label, never seen in training)",
        *series, x_title="PC 1 (sd)", y_title="PC 2 (sd)"))


__all__ = ["SimCLRTrainer", "probe_metrics", "embedding_view"]
