"""Attention weights read from every attention layer, nested and shared ones too."""
import numpy as np
import pytest


def _keras():
    from models import backend

    return backend.keras()


@pytest.fixture(scope="module")
def model():
    keras = _keras()
    tokens = keras.Input((5,), name="tokens", dtype="int32")
    e = keras.layers.Embedding(10, 8, name="embed")(tokens)
    a = keras.layers.MultiHeadAttention(2, 4, name="mha")(e, e, use_causal_mask=True)
    inner_in = keras.Input((5, 8))
    inner_out = keras.layers.Attention(name="dot")([inner_in, inner_in])
    block = keras.Model(inner_in, inner_out, name="block")
    b = block(a)
    return keras.Model(tokens, keras.layers.GlobalAveragePooling1D()(b), name="att_model")


def test_every_attention_layer_is_found_with_its_heads(model):
    from models.attention import attention_layers, attention_maps

    assert attention_layers(model) == ["mha", "block/dot"]
    x = np.array([[1, 2, 3, 4, 5], [5, 4, 3, 2, 1]], dtype="int32")
    maps = attention_maps(model, x)
    assert [m["layer"] for m in maps] == ["mha", "block/dot"]
    mha, dot = maps
    assert mha["scores"].shape == (2, 2, 5, 5) and dot["scores"].shape == (2, 1, 5, 5)
    np.testing.assert_allclose(mha["scores"].sum(-1), 1.0, atol=1e-5)
    # The causal mask the layer was called with is applied again: nothing looks ahead.
    assert np.allclose(np.triu(mha["scores"][0, 0], k=1), 0.0)
    assert not np.allclose(np.triu(dot["scores"][0, 0], k=1), 0.0)


def test_the_scores_are_those_the_layer_computes_in_the_model(model):
    from models.attention import attention_maps

    keras = _keras()
    x = np.array([[1, 2, 3, 4, 5]], dtype="int32")
    emb = model.get_layer("embed")(x)
    _, expected = model.get_layer("mha")(emb, emb, use_causal_mask=True,
                                         return_attention_scores=True)
    got = attention_maps(model, x, layers=["mha"])
    assert len(got) == 1
    np.testing.assert_allclose(got[0]["scores"], keras.ops.convert_to_numpy(expected), atol=1e-6)


def test_a_shared_attention_layer_reports_each_call():
    from models.attention import attention_maps

    keras = _keras()
    a = keras.Input((3, 4))
    b = keras.Input((6, 4))
    att = keras.layers.Attention(name="shared")
    out = keras.layers.Concatenate(axis=1)([att([a, a]), att([b, b])])
    m = keras.Model([a, b], out)
    maps = attention_maps(m, [np.ones((1, 3, 4), "float32"), np.ones((1, 6, 4), "float32")])
    assert [(x["layer"], x["scores"].shape) for x in maps] == [
        ("shared#1", (1, 1, 3, 3)), ("shared#2", (1, 1, 6, 6))]


def test_a_model_without_attention_gives_nothing():
    from models.attention import attention_layers, attention_maps

    keras = _keras()
    x = keras.Input((3,))
    m = keras.Model(x, keras.layers.Dense(2)(x))
    assert attention_layers(m) == [] and attention_maps(m, np.zeros((1, 3))) == []
