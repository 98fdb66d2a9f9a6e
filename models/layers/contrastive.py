"""Contrastive learning: the NT-Xent loss of SimCLR."""
from __future__ import annotations

import keras
from keras import ops


def nt_xent(z1, z2, temperature: float = 0.1):
    """The normalized temperature-scaled cross-entropy between two views of one batch.

    Each sample's two views are a positive pair; the other ``2n - 2`` views
    in the batch are its negatives. Embeddings are compared by cosine
    similarity divided by ``temperature``.

    Args:
        z1, z2: the projections of the first and the second view, ``(n, d)``.
        temperature: lower values weigh the hardest negatives more.

    Returns:
        A scalar tensor: the mean over the ``2n`` views.
    """
    z = ops.concatenate([z1, z2], axis=0)
    z = z / ops.maximum(ops.norm(z, axis=-1, keepdims=True), 1e-12)
    n = ops.shape(z1)[0]
    logits = ops.matmul(z, ops.transpose(z)) / temperature
    logits = logits - 1e9 * ops.eye(2 * n, dtype=logits.dtype)  # a view is not its own pair
    targets = ops.concatenate([ops.arange(n, 2 * n), ops.arange(0, n)], axis=0)
    return ops.mean(keras.losses.sparse_categorical_crossentropy(targets, logits, from_logits=True))


@keras.saving.register_keras_serializable(package="layerforge")
class NTXent(keras.losses.Loss):
    """The NT-Xent (SimCLR) loss on the projections of two views stacked along the batch.

    ``y_pred`` holds the first view's projections in its first half and the
    second view's in the second half; ``y_true`` is not used (the pairs are
    the labels).

    Args:
        temperature: divides the cosine similarities (SimCLR uses 0.1 to 0.5).
    """

    def __init__(self, temperature: float = 0.1, name: str = "nt_xent", **kwargs):
        super().__init__(name=name, **kwargs)
        self.temperature = float(temperature)

    def call(self, y_true, y_pred):
        half = ops.shape(y_pred)[0] // 2
        return nt_xent(y_pred[:half], y_pred[half:], self.temperature)

    def get_config(self):
        return {**super().get_config(), "temperature": self.temperature}
