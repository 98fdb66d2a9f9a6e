"""Keras models of every structural kind, used by several round-trip tests."""
from __future__ import annotations

import numpy as np


def _k():
    from models import backend

    return backend.keras()


def mlp_sequential():
    keras = _k()
    L = keras.layers
    return keras.Sequential(
        [keras.Input((10,)), L.Dense(16, activation="relu"), L.Dropout(0.2), L.Dense(3, activation="softmax")],
        name="mlp_seq",
    )


def cnn():
    keras = _k()
    L = keras.layers
    x = keras.Input((16, 16, 3), name="img")
    y = L.Conv2D(8, 3, padding="same", kernel_initializer=keras.initializers.HeNormal(seed=3))(x)
    y = L.BatchNormalization(momentum=0.9)(y)
    y = L.Activation("relu")(y)
    y = L.MaxPooling2D()(y)
    y = L.SeparableConv2D(8, 3)(y)
    y = L.GlobalAveragePooling2D()(y)
    y = L.Dense(4, kernel_regularizer=keras.regularizers.L2(1e-3))(y)
    return keras.Model(x, y, name="cnn")


def multi_io_shared():
    """Two named inputs, a Dense shared by two calls, merges, two outputs."""
    keras = _k()
    L = keras.layers
    a = keras.Input((8,), name="a")
    b = keras.Input((8,), name="b")
    shared = L.Dense(6, activation="tanh", name="shared")
    sa, sb = shared(a), shared(b)
    added = L.Add(name="add")([sa, sb])
    cat = L.Concatenate(name="cat")([sa, sb, added])
    out1 = L.Dense(2, name="out1")(cat)
    out2 = L.Dense(1, activation="sigmoid", name="out2")(added)
    return keras.Model({"a": a, "b": b}, [out1, out2], name="multi_io")


def attention_block():
    keras = _k()
    L = keras.layers
    x = keras.Input((6, 8), name="tokens")
    att = L.MultiHeadAttention(num_heads=2, key_dim=4, name="mha")(x, x, key=x)
    y = L.Add()([x, att])
    y = L.LayerNormalization()(y)
    a2 = L.Attention(name="dot_att")([y, y])
    y = L.Concatenate()([y, a2])
    y = L.GlobalAveragePooling1D()(y)
    return keras.Model(x, L.Dense(3)(y), name="attn")


def recurrent():
    keras = _k()
    L = keras.layers
    x = keras.Input((7,), dtype="int32", name="ids")
    e = L.Embedding(20, 8)(x)
    y = L.Bidirectional(L.LSTM(6, return_sequences=True))(e)
    seq, h, c = L.LSTM(5, return_sequences=True, return_state=True, name="lstm_state")(y)
    g = L.GRU(4)(seq)
    out = L.Concatenate()([g, h, c])
    return keras.Model(x, L.Dense(2)(out), name="recurrent")


def nested():
    """A Functional sub-model and a Sequential sub-model inside a Functional model."""
    keras = _k()
    L = keras.layers
    si = keras.Input((5,))
    inner = keras.Model(si, L.Dense(4, activation="relu")(si), name="inner_block")
    seq = keras.Sequential([keras.Input((4,)), L.Dense(3), L.Dense(3)], name="inner_seq")
    x = keras.Input((5,), name="x")
    y = inner(x)
    y2 = inner(L.Dense(5)(x))  # the nested model is shared too
    z = seq(L.Add()([y, y2]))
    return keras.Model(x, z, name="nested")


def sample_inputs(model, seed: int = 0):
    rng = np.random.default_rng(seed)
    keras = _k()

    def one(t):
        shape = [2 if d is None else d for d in t.shape]
        if "int" in str(t.dtype):
            return rng.integers(0, 10, size=shape).astype(str(t.dtype))
        return rng.standard_normal(shape).astype("float32")

    if len(model.inputs) == 1:
        return one(model.inputs[0])
    struct = getattr(model, "_inputs_struct", model.inputs)
    return keras.tree.map_structure(one, struct)


def nested_outputs():
    """The model's outputs come straight out of a nested model called twice."""
    keras = _k()
    L = keras.layers
    si = keras.Input((5,))
    inner = keras.Model(si, L.Dense(5)(si), name="inner")
    x = keras.Input((5,), name="x")
    y = inner(x)
    z = inner(L.Dense(5)(y))
    return keras.Model(x, [y, z], name="nested_outputs")


ALL = [mlp_sequential, cnn, multi_io_shared, attention_block, recurrent, nested, nested_outputs]
