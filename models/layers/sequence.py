"""Layers for token sequences (the attention and transformer templates)."""
from __future__ import annotations

import keras
from keras import ops


@keras.saving.register_keras_serializable(package="layerforge")
class PositionEmbedding(keras.layers.Layer):
    """A learned vector for each position of a sequence, to add to the token embeddings.

    Attention itself ignores order; adding a position's vector to each token's
    embedding (with an ``Add`` node) tells the model where each token stands.

    Args:
        sequence_length: the longest sequence the table covers.
        embeddings_initializer: for the table.

    Input shape ``(batch, steps, features)``; the output has the same shape
    (the first ``steps`` rows of the table, repeated for every sample).
    """

    def __init__(self, sequence_length: int = 64, embeddings_initializer="glorot_uniform",
                 **kwargs):
        super().__init__(**kwargs)
        if int(sequence_length) < 1:
            raise ValueError(f"sequence_length must be at least 1; got {sequence_length}")
        self.sequence_length = int(sequence_length)
        self.embeddings_initializer = keras.initializers.get(embeddings_initializer)

    def build(self, input_shape):
        if len(input_shape) != 3 or input_shape[-1] is None:
            raise ValueError("PositionEmbedding takes embedded sequences (batch, steps, features); "
                             f"got shape {tuple(input_shape)}")
        steps = input_shape[1]
        if steps is not None and steps > self.sequence_length:
            raise ValueError(f"the sequences have {steps} steps but sequence_length is "
                             f"{self.sequence_length}; raise sequence_length")
        self.table = self.add_weight(name="table", shape=(self.sequence_length, input_shape[-1]),
                                     initializer=self.embeddings_initializer)

    def call(self, inputs):
        steps = ops.shape(inputs)[1]
        table = ops.cast(self.table[:steps], inputs.dtype)
        return ops.broadcast_to(table[None], ops.shape(inputs))

    def compute_output_shape(self, input_shape):
        return tuple(input_shape)

    def get_config(self):
        config = super().get_config()
        config.update({"sequence_length": self.sequence_length,
                       "embeddings_initializer": keras.initializers.serialize(
                           self.embeddings_initializer)})
        return config


__all__ = ["PositionEmbedding"]
