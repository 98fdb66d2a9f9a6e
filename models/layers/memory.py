"""An external memory for memory-augmented networks (cheatsheet section 7.7.2).

A memory-augmented network keeps a controller (any layers that look at one
step) separate from a memory matrix it writes to and reads from. The
:class:`Memory` layer is that matrix with one write head and one read head,
stepped through the sequence inside the layer.

Addressing, as chosen here: the **write head** writes step ``t`` into slot
``t mod slots`` (the least recently written one): a key to find it by and a
content, with a learned gate that decides how much to write and NTM-style
erase and add vectors. The **read head** finds slots by content: cosine
similarity between a learned key and every slot's key, sharpened by a learned
strength and normalised by a softmax; it reads the weighted mix of the
contents. Content-based reading is what lets the network look a value up by
its key.
"""
from __future__ import annotations

import math

import keras
from keras import ops


@keras.saving.register_keras_serializable(package="layerforge")
class Memory(keras.layers.Layer):
    """A memory matrix with a write head and a content-addressed read head.

    For each step's controller output ``h_t`` the layer computes, with one
    learned projection each:

    * write: gate ``g = sigmoid(.)``, key ``k_w``, erase ``e = sigmoid(.)``,
      add ``a = tanh(.)``; with ``w`` the one-hot of slot ``t mod slots``
      scaled by ``g``, the slot's address becomes ``k_w`` and its content
      ``C = C * (1 - w e^T) + w a^T`` (in the proportion ``g``);
    * read (after the write): key ``k_r``, strength ``beta``;
      ``w_read = softmax(beta * cos(k_r, A_i))`` over the slots' addresses,
      and the read vector ``r = sum_i w_read[i] C_i``.

    Each slot thus holds an address (what it is looked up by) and a content
    (what is read), as in key-value memory networks. The memory starts empty
    (zeros) for every sequence.

    Args:
        slots: the number of memory slots.
        slot_size: the length of each slot's key and content (and of the
            read vectors).
        sharpness: the read strength ``beta`` the head starts from (above 1);
            it is learned from there. A soft start (about 1.5) spreads the
            first reads over all slots, which is what lets the keys learn;
            starting sharp (10) fixes early reads on random slots.
        kernel_initializer: for the heads' projections.
        epsilon: keeps cosine similarity finite for empty slots.

    Input shape:
        ``(batch, steps, features)`` with a fixed number of steps.

    Output shape:
        ``(batch, steps, slot_size)``: what the read head read at each step.

    Call arguments:
        return_weightings: also return the write and read weightings, each
            ``(batch, steps, slots)``.
        return_attention_scores: also return the read weightings as
            ``(batch, 1, steps, slots)``, the shape :mod:`models.attention` shows.
    """

    returns_attention_scores = True

    def __init__(self, slots: int = 8, slot_size: int = 32, sharpness: float = 1.5,
                 kernel_initializer="glorot_uniform", epsilon: float = 1e-6, **kwargs):
        super().__init__(**kwargs)
        if int(slots) < 1 or int(slot_size) < 1:
            raise ValueError(f"slots and slot_size must be at least 1; got {slots} and {slot_size}")
        if not float(sharpness) > 1:
            raise ValueError(f"sharpness must be above 1; got {sharpness}")
        self.slots = int(slots)
        self.slot_size = int(slot_size)
        self.sharpness = float(sharpness)
        self.kernel_initializer = keras.initializers.get(kernel_initializer)
        self.epsilon = float(epsilon)

    def build(self, input_shape):
        if len(input_shape) != 3 or input_shape[1] is None:
            raise ValueError("Memory steps through a sequence of known length, shaped (batch, "
                             f"steps, features); got shape {tuple(input_shape)}. Give the Input a "
                             "fixed number of steps")
        size = self.slot_size
        # One projection for all head outputs: gate 1, erase S, add S, write key S, read key S,
        # strength 1.
        self.heads = self.add_weight(name="heads", shape=(input_shape[-1], 4 * size + 2),
                                     initializer=self.kernel_initializer)
        self.heads_bias = self.add_weight(name="heads_bias", shape=(4 * size + 2,),
                                          initializer="zeros")

    def _address(self, key, memory, strength):
        key = key / ops.sqrt(ops.sum(ops.square(key), axis=-1, keepdims=True) + self.epsilon)
        rows = memory / ops.sqrt(ops.sum(ops.square(memory), axis=-1, keepdims=True) + self.epsilon)
        similarity = ops.einsum("bs,bns->bn", key, rows)
        return ops.softmax(strength * similarity, axis=-1)

    def call(self, inputs, return_weightings: bool = False, return_attention_scores: bool = False):
        size, steps = self.slot_size, inputs.shape[1]
        heads = ops.einsum("btc,cp->btp", inputs, self.heads) + self.heads_bias
        batch = ops.shape(inputs)[0]
        addresses = ops.zeros((batch, self.slots, size), dtype=inputs.dtype)
        contents = ops.zeros((batch, self.slots, size), dtype=inputs.dtype)
        # beta = 1 + softplus(z + offset) starts at `sharpness` and moves one for one with z.
        offset = math.log(math.expm1(self.sharpness - 1.0))
        reads, writes, looks = [], [], []
        for t in range(steps):
            h = heads[:, t]
            gate = ops.sigmoid(h[:, :1])
            erase = ops.sigmoid(h[:, 1:1 + size])
            add = ops.tanh(h[:, 1 + size:1 + 2 * size])
            write_key = h[:, 1 + 2 * size:1 + 3 * size]
            read_key = h[:, 1 + 3 * size:1 + 4 * size]
            strength = 1.0 + ops.softplus(h[:, 1 + 4 * size:] + offset)
            slot = ops.one_hot(ops.full((batch,), t % self.slots, "int32"), self.slots,
                               dtype=inputs.dtype)
            write = (gate * slot)[:, :, None]
            addresses = addresses * (1.0 - write) + write * write_key[:, None, :]
            contents = contents * (1.0 - write * erase[:, None, :]) + write * add[:, None, :]
            look = self._address(read_key, addresses, strength)
            reads.append(ops.einsum("bn,bns->bs", look, contents))
            writes.append(write[:, :, 0])
            looks.append(look)
        read = ops.stack(reads, axis=1)
        if return_weightings:
            return read, ops.stack(writes, axis=1), ops.stack(looks, axis=1)
        if return_attention_scores:
            return read, ops.stack(looks, axis=1)[:, None]
        return read

    def compute_output_shape(self, input_shape):
        return (input_shape[0], input_shape[1], self.slot_size)

    def get_config(self):
        config = super().get_config()
        config.update({
            "slots": self.slots, "slot_size": self.slot_size, "sharpness": self.sharpness,
            "kernel_initializer": keras.initializers.serialize(self.kernel_initializer),
            "epsilon": self.epsilon,
        })
        return config


__all__ = ["Memory"]
