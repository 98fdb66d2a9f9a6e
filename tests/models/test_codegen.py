"""Generated Python code rebuilds the same model: layers, configs, weights, outputs."""
from __future__ import annotations

import json

import numpy as np
import pytest

from models import backend
from models.codegen import generate_code
from models.graph import Edge, Graph, GraphError, Node

keras = backend.keras()
layers = keras.layers


# --------------------------------------------------------------------------- helpers


def graph_of(model) -> Graph:
    kind = "Sequential" if isinstance(model, keras.Sequential) else "Functional"
    return Graph.from_keras_config(model.get_config(), kind)


def run_code(source: str):
    code = compile(source, "gen.py", "exec")
    namespace = {"__name__": "generated_model"}
    exec(code, namespace)  # noqa: S102 - the code under test
    return namespace["build_model"]()


def comparable(config) -> str:
    return json.dumps(config, sort_keys=True, default=str)


def random_inputs(model, rng):
    def one(tensor):
        shape = [1 if d is None else d for d in tensor.shape]
        shape[0] = 2
        if "int" in str(tensor.dtype):
            return rng.integers(1, 20, size=shape).astype(str(tensor.dtype))
        return rng.standard_normal(shape).astype("float32")

    if isinstance(model, keras.Sequential):
        return one(model.inputs[0])
    return keras.tree.map_structure(one, model.input)


def assert_rebuilds(model) -> str:
    """Generate code for ``model``, run it, and check the result is the same model."""
    source = generate_code(graph_of(model))
    rebuilt = run_code(source)

    assert type(rebuilt) is type(model)
    assert [layer.name for layer in rebuilt.layers] == [layer.name for layer in model.layers]
    for old, new in zip(model.layers, rebuilt.layers, strict=True):
        assert type(new) is type(old), old.name
        assert comparable(new.get_config()) == comparable(old.get_config()), old.name
    assert rebuilt.count_params() == model.count_params()

    for layer in model.layers:
        rebuilt.get_layer(layer.name).set_weights(layer.get_weights())
    x = random_inputs(model, np.random.default_rng(0))
    expected = keras.tree.flatten(model(x, training=False))
    actual = keras.tree.flatten(rebuilt(x, training=False))
    assert len(actual) == len(expected)
    for a, b in zip(actual, expected, strict=True):
        np.testing.assert_allclose(np.asarray(a), np.asarray(b), rtol=1e-5, atol=1e-5)
    return source


def cnn():
    inp = keras.Input((28, 28, 1), name="image")
    x = layers.Conv2D(16, 3, padding="same", activation="relu", name="conv")(inp)
    x = layers.BatchNormalization(momentum=0.9, name="bn")(x)
    x = layers.MaxPooling2D(name="pool")(x)
    x = layers.Dropout(0.25, name="drop")(x)
    x = layers.Flatten(name="flat")(x)
    x = layers.Dense(
        32,
        activation="relu",
        kernel_regularizer=keras.regularizers.L2(1e-4),
        kernel_initializer=keras.initializers.HeNormal(seed=3),
        name="hidden",
    )(x)
    out = layers.Dense(10, activation="softmax", name="probs")(x)
    return keras.Model(inp, out, name="cnn")


# --------------------------------------------------------------------------- models


def test_sequential_mlp():
    model = keras.Sequential(
        [
            keras.Input((20,), name="features"),
            layers.Dense(32, activation="relu", name="hidden"),
            layers.Dropout(0.2, name="drop"),
            layers.Dense(3, activation="softmax", name="probs"),
        ],
        name="mlp",
    )
    source = assert_rebuilds(model)
    assert "keras.Sequential(" in source
    assert 'layers.Dense(32, activation="relu", name="hidden")' in source


def test_cnn():
    source = assert_rebuilds(cnn())
    assert "momentum=0.9" in source


def test_cnn_code_reads_like_hand_written_code():
    source = generate_code(graph_of(cnn()))
    compile(source, "gen.py", "exec")
    assert source.startswith('"""The "cnn" model')
    assert "LayerForge" in source.split('"""')[1]
    # Only what differs from the defaults is written.
    for default in ("use_bias=True", "bias_initializer", "epsilon=", "trainable=", "dtype="):
        assert default not in source
    assert "keras.initializers.HeNormal(seed=3)" in source
    assert "keras.regularizers.L2(l2=0.0001)" in source
    assert "from_config" not in source and "deserialize_keras_object" not in source
    assert "from models import layers" not in source  # no custom layer in this model
    assert max(len(line) for line in source.splitlines()) <= 88
    assert 'if __name__ == "__main__":\n    build_model().summary()' in source


def test_two_inputs_two_outputs_with_a_shared_layer():
    left = keras.Input((8,), name="left")
    right = keras.Input((8,), name="right")
    shared = layers.Dense(16, activation="relu", name="shared")
    a, b = shared(left), shared(right)
    cat = layers.Concatenate(name="cat")([a, b])
    total = layers.Add(name="total")([a, b])
    score = layers.Dense(1, name="score")(cat)
    label = layers.Dense(4, activation="softmax", name="label")(total)
    model = keras.Model({"left": left, "right": right}, [score, label], name="pair")
    source = assert_rebuilds(model)
    # Built once, called once per call.
    assert source.count("layers.Dense(16") == 1
    assert "shared(left)" in source and "shared(right)" in source
    assert 'inputs={"left": left, "right": right}' in source


def test_self_attention_block():
    inp = keras.Input((6, 16), name="tokens")
    attention, scores = layers.MultiHeadAttention(num_heads=2, key_dim=8, name="attention")(
        inp, inp, return_attention_scores=True
    )
    x = layers.Add(name="residual")([inp, attention])
    x = layers.LayerNormalization(epsilon=1e-6, name="norm")(x)
    model = keras.Model(inp, [x, scores], name="block")
    source = assert_rebuilds(model)
    assert "return_attention_scores=True" in source
    assert "attention[1]" in source


def test_embedding_bidirectional_lstm_gru():
    inp = keras.Input((12,), dtype="int32", name="tokens")
    x = layers.Embedding(50, 8, mask_zero=True, name="embed")(inp)
    x = layers.Bidirectional(layers.LSTM(6, return_sequences=True), name="bilstm")(x)
    x = layers.GRU(5, name="gru")(x)
    out = layers.Dense(2, activation="softmax", name="out")(x)
    source = assert_rebuilds(keras.Model(inp, out, name="text"))
    assert 'layers.Bidirectional(\n        layers.LSTM(6, return_sequences=True' in source
    assert "backward_layer" not in source
    # Keras passes the padding mask itself; the code does not spell it out.
    assert "mask=" not in source and "not_equal" not in source


def test_nested_functional_and_sequential():
    enc_in = keras.Input((8,), name="enc_in")
    encoder = keras.Model(enc_in, layers.Dense(4, name="enc_dense")(enc_in), name="encoder")
    head = keras.Sequential(
        [keras.Input((4,)), layers.Dense(3, activation="relu", name="head_hidden"),
         layers.Dense(2, name="head_out")],
        name="head",
    )
    x = keras.Input((8,), name="x")
    model = keras.Model(x, head(encoder(x)), name="stacked")
    source = assert_rebuilds(model)
    assert "def build_encoder():" in source
    assert "encoder = build_encoder()" in source
    assert "head = keras.Sequential(" in source


def test_lstm_with_return_state_feeds_three_layers():
    inp = keras.Input((7, 3), name="series")
    seq, h, c = layers.LSTM(8, return_sequences=True, return_state=True, name="lstm")(inp)
    pooled = layers.GlobalAveragePooling1D(name="pool")(seq)
    from_h = layers.Dense(4, name="from_h")(h)
    from_c = layers.Dense(4, name="from_c")(c)
    out = layers.Concatenate(name="joined")([pooled, from_h, from_c])
    source = assert_rebuilds(keras.Model(inp, out, name="states"))
    for index in range(3):
        assert f"lstm[{index}]" in source


def test_layerforge_custom_layer():
    from models.layers import Squash

    inp = keras.Input((12,), name="inp")
    x = layers.Dense(12, name="dense")(inp)
    x = layers.Reshape((3, 4), name="capsules")(x)
    out = Squash(epsilon=1e-5, name="squash")(x)
    source = assert_rebuilds(keras.Model(inp, out, name="caps"))
    assert "from models import layers as lf" in source
    assert 'lf.Squash(epsilon=1e-05, name="squash")' in source


def test_mobilenet_v2():
    model = keras.applications.MobileNetV2(weights=None, input_shape=(96, 96, 3))
    source = assert_rebuilds(model)
    assert "from_config" not in source and "deserialize_keras_object" not in source


def test_frozen_nested_model_shared_with_dict_outputs():
    sub_in = keras.Input((4,), name="sub_in")
    hidden = layers.Dense(3, name="sub_hidden")(sub_in)
    sub = keras.Model(
        sub_in,
        {"z": layers.Dense(2, name="sub_z")(hidden), "a": layers.Dense(5, name="sub_a")(hidden)},
        name="backbone",
    )
    sub.trainable = False
    a, b = keras.Input((4,), name="a"), keras.Input((4,), name="b")
    out_a, out_b = sub(a, training=False), sub(b)
    joined = layers.Concatenate(name="joined")([out_a["z"], out_a["a"], out_b["z"]])
    source = assert_rebuilds(keras.Model([a, b], joined, name="siamese"))
    assert source.count("= build_backbone()") == 1
    assert "backbone(a, training=False)" in source
    assert 'backbone_out1["a"]' in source  # dict outputs, reached by key
    # ``model.trainable = False`` in the builder freezes its layers; they do not repeat it.
    assert "trainable=False" not in source and "model.trainable = False" in source


def test_assorted_layers_and_options():
    inner = keras.Sequential([keras.Input((6,)), layers.Dense(4, name="inner_dense")], name="inner")
    x = keras.Input((5, 6), batch_size=4, name="x")
    y = layers.TimeDistributed(inner, name="per_step")(x)
    y = layers.Bidirectional(layers.GRU(3, return_state=True), name="bi")(y)
    z = layers.Concatenate(name="states")([y[0], y[1], y[2]])
    z = layers.Dense(
        2, trainable=False, bias_initializer="ones",
        kernel_constraint=keras.constraints.MaxNorm(2.0), name="frozen",
    )(z)
    source = assert_rebuilds(keras.Model(x, z, name="assorted"))
    assert "batch_size=4" in source
    assert "keras.constraints.MaxNorm(max_value=2.0)" in source  # 2.0, not the default 2
    assert 'bias_initializer="ones"' in source and "trainable=False" in source
    assert "layers.TimeDistributed(\n        keras.Sequential(\n" in source
    assert "from_config" not in source and "deserialize_keras_object" not in source


def test_pooling_defaults_that_follow_other_arguments():
    inp = keras.Input((9, 9, 2), name="img")
    out = layers.MaxPooling2D(3, strides=2, name="pool")(inp)
    source = assert_rebuilds(keras.Model(inp, out, name="pool"))
    assert "strides=(2, 2)" in source


def test_keras_ops_in_a_functional_model():
    x = keras.Input((5, 3), name="x")
    y = layers.Dense(4, name="d")(x)
    total = keras.ops.sum(y, axis=1)
    first = y[:, 0]
    out = keras.ops.concatenate([first, total * 2.0], axis=-1)
    source = assert_rebuilds(keras.Model(x, out, name="ops"))
    assert "keras.ops.sum(d, axis=1)" in source
    assert "d[:, 0]" in source
    assert "axis=-1" in source


# --------------------------------------------------------------------------- edges


def test_layer_names_become_valid_unique_identifiers():
    inp = keras.Input((4,), name="input")
    x = layers.Dense(4, name="class")(inp)
    x = layers.Dense(4, name="my-dense")(x)
    x = layers.Dense(4, name="my_dense")(x)
    out = layers.Dense(4, name="2nd")(x)
    source = assert_rebuilds(keras.Model(inp, out, name="names"))
    assert "input_ = keras.Input(" in source
    assert "class_ = layers.Dense(" in source
    assert "my_dense = " in source and "my_dense_2 = " in source
    assert "layer_2nd = " in source


def test_sequential_graph_that_is_no_longer_a_chain_becomes_functional():
    model = keras.Sequential([keras.Input((4,), name="features"), layers.Dense(3, name="a")])
    graph = graph_of(model)
    graph.add_node(Node(name="b", class_name="Dense", config={**graph.nodes["a"].config}))
    graph.connect("features", "b")
    source = generate_code(graph)
    assert "keras.Model(" in source
    rebuilt = run_code(source)
    assert sorted(layer.name for layer in rebuilt.layers) == ["a", "b", "features"]


def test_graph_built_in_the_editor():
    """Nodes made in the editor, with only some config keys, still give plain code."""
    graph = Graph("handmade")
    graph.add_node(Node("pixels", "InputLayer",
                        {"name": "pixels", "batch_shape": [None, 3], "dtype": "float32"}))
    graph.add_node(Node("hidden", "Dense", {"name": "hidden", "units": 8, "activation": "relu"}))
    graph.add_node(Node("out", "Dense", {"name": "out", "units": 2}))
    graph.connect("pixels", "hidden")
    graph.connect("hidden", "out")
    source = generate_code(graph, model_name="my model")
    assert 'hidden = layers.Dense(8, activation="relu", name="hidden")(pixels)' in source
    assert '"""The "my model" model' in source
    model = run_code(source)
    assert model.name == "my model"
    assert [layer.name for layer in model.layers] == ["pixels", "hidden", "out"]
    assert model.count_params() == 3 * 8 + 8 + 8 * 2 + 2


def test_unconnected_input_or_cycle_is_refused():
    model = keras.Sequential([keras.Input((4,)), layers.Dense(3, name="a"),
                              layers.Dense(2, name="b")])
    graph = graph_of(model)
    graph.disconnect(graph.edges_into("b")[0])
    with pytest.raises(GraphError):
        generate_code(graph)
    graph = graph_of(model)
    graph.edges.append(Edge("b", 0, 0, "a", 0, 0))
    with pytest.raises(GraphError):
        generate_code(graph)
