"""Small element-wise layers of LayerForge's own."""
from __future__ import annotations

import keras
from keras import ops


def squash(vectors, axis: int = -1, epsilon: float = 1e-7):
    """``|s|^2 / (1 + |s|^2) * s / |s|`` along ``axis`` (capsule layers use it too)."""
    sq_norm = ops.sum(ops.square(vectors), axis=axis, keepdims=True)
    return sq_norm / (1.0 + sq_norm) / ops.sqrt(sq_norm + epsilon) * vectors


@keras.saving.register_keras_serializable(package="layerforge")
class Squash(keras.layers.Layer):
    """The capsule non-linearity: keeps a vector's direction, maps its length into [0, 1).

    ``v = |s|^2 / (1 + |s|^2) * s / |s|`` along ``axis``.

    Args:
        axis: the axis that holds each capsule's vector.
        epsilon: added under the square root so a zero vector stays finite.
    """

    def __init__(self, axis: int = -1, epsilon: float = 1e-7, **kwargs):
        super().__init__(**kwargs)
        self.axis = axis
        self.epsilon = epsilon

    def call(self, inputs):
        return squash(inputs, self.axis, self.epsilon)

    def compute_output_shape(self, input_shape):
        return input_shape

    def get_config(self):
        config = super().get_config()
        config.update({"axis": self.axis, "epsilon": self.epsilon})
        return config
