"""The tf_keras twin: same outputs, same parameters, weights that travel both ways."""
from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from models import backend

keras = backend.keras()
L = keras.layers

from models import twin  # noqa: E402
from models.twin import TwinError, from_tf_keras, supported, to_tf_keras  # noqa: E402

ATOL = 1e-5

# TFMOT 0.8 still imports distutils' version classes.
pytestmark = pytest.mark.filterwarnings("ignore::DeprecationWarning:tensorflow_model_optimization")


# --------------------------------------------------------------------------- helpers


def _randomize(model, seed=0):
    """Give every weight distinct random values, so a swapped weight changes the output."""
    rng = np.random.default_rng(seed)
    for w in model.weights:
        value = rng.normal(0.0, 0.3, size=w.shape)
        if "variance" in w.path:
            value = np.abs(value) + 0.5
        w.assign(value.astype(w.dtype))
    for layer in _all_layers(model):
        if hasattr(layer, "finalize_state") and layer.weights:
            layer.finalize_state()  # an adapted Normalization caches tensors made from its weights
    return model


def _all_layers(model):
    for layer in model.layers:
        yield layer
        if isinstance(layer, keras.Model):
            yield from _all_layers(layer)


def _sample(model, seed=1):
    """Random data for every input of a Keras 3 model, in the structure it takes."""
    rng = np.random.default_rng(seed)

    def one(t):
        shape = (3,) + tuple(d or 4 for d in t.shape[1:])
        if "int" in str(t.dtype):
            return rng.integers(0, 5, size=shape).astype(str(t.dtype))
        return rng.normal(size=shape).astype("float32")

    inputs = model.inputs[0] if isinstance(model, keras.Sequential) else model.input
    return keras.tree.map_structure(one, inputs)


def _outputs(model, data):
    out = model(data, training=False)
    return [np.asarray(o) for o in keras.tree.flatten(out)]


def _assert_same(a, b, atol=ATOL):
    assert len(a) == len(b)
    for x, y in zip(a, b):
        np.testing.assert_allclose(x, y, rtol=1e-5, atol=atol)


def _perturb(tfk_model, seed=2):
    rng = np.random.default_rng(seed)
    for layer in tfk_model.layers:
        weights = layer.get_weights()
        if weights:
            noise = [rng.normal(0, 0.05, size=w.shape).astype(w.dtype) for w in weights]
            layer.set_weights([w + n for w, n in zip(weights, noise)])


def _check_round_trip(model):
    """The twin matches the model; after perturbing it, from_tf_keras matches the twin."""
    _randomize(model)
    data = _sample(model)
    result = to_tf_keras(model)
    tfk = result.model
    assert tfk is not None and result.unsupported == []
    assert tfk.count_params() == model.count_params()
    expected = _outputs(model, data)
    _assert_same(_outputs(tfk, data), expected)

    _perturb(tfk)
    moved = _outputs(tfk, data)
    if model.weights:
        assert any(np.max(np.abs(m - e)) > 1e-3 for m, e in zip(moved, expected))
    back = from_tf_keras(tfk, like=model)
    assert back is not model
    _assert_same(_outputs(back, data), moved)
    return result


# --------------------------------------------------------------------------- the named models


def mlp():
    return keras.Sequential(
        [keras.Input((8,)), L.Dense(16, activation="relu"), L.Dense(4, activation="softmax")],
        name="mlp",
    )


def cnn():
    return keras.Sequential(
        [
            keras.Input((12, 12, 3)),
            L.Conv2D(8, 3, padding="same", activation="relu"),
            L.BatchNormalization(),
            L.MaxPooling2D(2),
            L.Dropout(0.3),
            L.Conv2D(8, 3, activation="relu", kernel_regularizer="l2"),
            L.Flatten(),
            L.Dense(5),
        ],
        name="cnn",
    )


def text_rnn():
    tokens = keras.Input((7,), dtype="int32", name="tokens")
    x = L.Embedding(20, 6, mask_zero=True)(tokens)
    x = L.LSTM(5, return_sequences=True)(x)
    x = L.Bidirectional(L.GRU(4, return_sequences=True))(x)
    x = L.GRU(3, reset_after=False)(x)
    return keras.Model(tokens, L.Dense(2)(x), name="text_rnn")


def two_in_two_out():
    a = keras.Input((6,), name="a")
    b = keras.Input((4,), name="b")
    shared = L.Dense(5, name="shared")
    sa = shared(a)
    sb = shared(L.Dense(6)(b))
    joined = L.Concatenate()([sa, sb])
    summed = L.Add()([sa, sb])
    return keras.Model(
        {"a": a, "b": b},
        {"joined": L.Dense(3, name="out_joined")(joined), "summed": summed},
        name="two_in_two_out",
    )


def attention():
    x = keras.Input((5, 8))
    kv = keras.Input((6, 8))
    mha = L.MultiHeadAttention(num_heads=2, key_dim=4, value_dim=3, name="mha")
    h = mha(x, kv, key=L.Dense(8)(kv))
    h = L.LayerNormalization()(L.Add()([x, h]))
    h = L.Attention()([h, kv])
    return keras.Model([x, kv], L.GlobalAveragePooling1D()(h), name="attention")


def nested():
    block = keras.Sequential(
        [L.Dense(6, activation="tanh"), L.Dense(6, name="dense_out")], name="block"
    )
    inner = keras.Input((6,))
    inner_model = keras.Model(inner, L.Dense(4, name="dense_out")(inner), name="head")
    x = keras.Input((5,))
    h = block(L.Dense(6)(x))
    h = block(h)  # the same sub-model called twice: shared layers
    return keras.Model(x, inner_model(h), name="nested")


def conv1d():
    return keras.Sequential(
        [
            keras.Input((20, 4)),
            L.Conv1D(6, 3, dilation_rate=2),
            L.GlobalAveragePooling1D(),
            L.Dense(2),
        ],
        name="conv1d",
    )


def depthwise_separable():
    return keras.Sequential(
        [
            keras.Input((10, 10, 3)),
            L.DepthwiseConv2D(3, depth_multiplier=2),
            L.SeparableConv2D(5, 3, padding="same", depth_multiplier=2),
        ],
        name="depthwise_separable",
    )


def transpose_upsample():
    return keras.Sequential(
        [
            keras.Input((5, 5, 3)),
            L.Conv2DTranspose(4, 3, strides=2),
            L.UpSampling2D(interpolation="bilinear"),
            L.UpSampling2D(),
        ],
        name="transpose_upsample",
    )


def nested_functional():
    """A nested Functional with dict inputs and two outputs, called twice."""
    a, b = keras.Input((4,), name="x"), keras.Input((3,), name="y")
    h = L.Concatenate()([a, b])
    inner = keras.Model({"x": a, "y": b}, [L.Dense(2)(h), L.Dense(3)(h)], name="inner")
    p, q = keras.Input((4,)), keras.Input((3,))
    r1, r2 = inner({"x": p, "y": q})
    s1, s2 = inner({"x": L.Dense(4)(p), "y": q})
    outputs = [L.Add()([r1, s1]), L.Concatenate()([r2, s2])]
    return keras.Model([p, q], outputs, name="nested_functional")


def masked_merge():
    """Masks that Keras 3 records as keras.ops nodes, merged before an LSTM."""
    tokens = keras.Input((6,), dtype="int32")
    e1 = L.Embedding(10, 4, mask_zero=True)(tokens)
    e2 = L.Embedding(10, 4, mask_zero=True)(tokens)
    h = L.Concatenate()([L.Add()([e1, e2]), e1])
    return keras.Model(tokens, L.LSTM(3)(h), name="masked_merge")


def shared_across_levels():
    """One Dense used inside a sub-model and again in the outer graph."""
    shared = L.Dense(4, name="shared_across")
    inner = keras.Sequential([keras.Input((4,)), shared], name="inner_seq")
    x = keras.Input((4,))
    return keras.Model(x, shared(inner(x)), name="shared_across_levels")


NAMED = [
    mlp, cnn, text_rnn, two_in_two_out, attention, nested, conv1d, depthwise_separable,
    transpose_upsample, nested_functional, masked_merge, shared_across_levels,
]


@pytest.mark.parametrize("build", NAMED, ids=lambda f: f.__name__)
def test_named_models_round_trip(build):
    _check_round_trip(build())


# --------------------------------------------------------------------------- one layer at a time


def _single(input_shape, layer, dtype="float32"):
    x = keras.Input(input_shape, dtype=dtype)
    return keras.Model(x, layer(x))


def _two(shape, layer):
    a, b = keras.Input(shape), keras.Input(shape)
    return keras.Model([a, b], layer([a, b]))


def _lstm_state():
    x = keras.Input((5, 3))
    out, h, c = L.LSTM(4, return_state=True)(x)
    return keras.Model(x, [out, L.Add()([h, c])])


def _gru_initial_state():
    x, state = keras.Input((5, 3)), keras.Input((4,))
    return keras.Model([x, state], L.GRU(4)(x, initial_state=[state]))


def _adapted(layer):
    layer.adapt(np.random.default_rng(4).normal(2.0, 3.0, size=(50, 3)).astype("float32"))
    return layer


ZOO = {
    "LSTM(return_state)": _lstm_state,
    "GRU(initial_state)": _gru_initial_state,
    "Activation": lambda: _single((8,), L.Activation("gelu")),
    "ActivityRegularization": lambda: _single((8,), L.ActivityRegularization(l1=0.1)),
    "AlphaDropout": lambda: _single((8,), L.AlphaDropout(0.2)),
    "GaussianDropout": lambda: _single((8,), L.GaussianDropout(0.2)),
    "GaussianNoise": lambda: _single((8,), L.GaussianNoise(0.2)),
    "LeakyReLU": lambda: _single((8,), L.LeakyReLU(negative_slope=0.1)),
    "PReLU": lambda: _single((8,), L.PReLU()),
    "ReLU": lambda: _single((8,), L.ReLU(max_value=1.0, negative_slope=0.1, threshold=0.2)),
    "ELU": lambda: _single((8,), L.ELU(alpha=0.5)),
    "Softmax": lambda: _single((8,), L.Softmax()),
    "Identity": lambda: _single((8,), L.Identity()),
    "UnitNormalization": lambda: _single((8,), L.UnitNormalization()),
    "Normalization": lambda: _single((3,), L.Normalization(mean=[1, 2, 3], variance=[1, 4, 9])),
    "Normalization(adapted)": lambda: _single((3,), _adapted(L.Normalization())),
    "Discretization": lambda: _single((3,), L.Discretization(bin_boundaries=[-1.0, 0.0, 1.0])),
    "Hashing": lambda: _single((3,), L.Hashing(num_bins=4), "int32"),
    "Resizing": lambda: _single((8, 8, 3), L.Resizing(4, 5)),
    "CenterCrop": lambda: _single((8, 8, 3), L.CenterCrop(4, 5)),
    "RandomContrast": lambda: _single((8, 8, 3), L.RandomContrast(0.2)),
    "RandomBrightness": lambda: _single((8, 8, 3), L.RandomBrightness(0.2)),
    "RandomTranslation": lambda: _single((8, 8, 3), L.RandomTranslation(0.2, 0.2)),
    "GroupNormalization": lambda: _single((4, 8), L.GroupNormalization(groups=2)),
    "EinsumDense": lambda: _single((8,), L.EinsumDense("ab,bc->ac", output_shape=4, bias_axes="c")),
    "RepeatVector": lambda: _single((8,), L.RepeatVector(3)),
    "CategoryEncoding": lambda: _single(
        (4,), L.CategoryEncoding(num_tokens=5, output_mode="multi_hot"), "int32"
    ),
    "Conv1DTranspose": lambda: _single((10, 3), L.Conv1DTranspose(4, 3, strides=2)),
    "SeparableConv1D": lambda: _single((10, 3), L.SeparableConv1D(4, 3)),
    "DepthwiseConv1D": lambda: _single((10, 3), L.DepthwiseConv1D(3, depth_multiplier=2)),
    "AveragePooling1D": lambda: _single((10, 3), L.AveragePooling1D(2)),
    "MaxPooling1D": lambda: _single((10, 3), L.MaxPooling1D(3, strides=2, padding="same")),
    "GlobalMaxPooling1D": lambda: _single((10, 3), L.GlobalMaxPooling1D()),
    "UpSampling1D": lambda: _single((10, 3), L.UpSampling1D(2)),
    "ZeroPadding1D": lambda: _single((10, 3), L.ZeroPadding1D((1, 2))),
    "Cropping1D": lambda: _single((10, 3), L.Cropping1D((1, 2))),
    "SpatialDropout1D": lambda: _single((10, 3), L.SpatialDropout1D(0.2)),
    "Masking": lambda: _single((10, 3), L.Masking()),
    "Permute": lambda: _single((10, 3), L.Permute((2, 1))),
    "Reshape": lambda: _single((10, 3), L.Reshape((5, 6))),
    "SimpleRNN": lambda: _single((6, 3), L.SimpleRNN(4, go_backwards=True)),
    "TimeDistributed": lambda: _single((6, 3), L.TimeDistributed(L.Dense(2))),
    "ConvLSTM1D": lambda: _single((3, 6, 2), L.ConvLSTM1D(3, 3, return_sequences=True)),
    "ConvLSTM2D": lambda: _single((3, 6, 6, 2), L.ConvLSTM2D(2, 3)),
    "AveragePooling2D": lambda: _single((8, 8, 3), L.AveragePooling2D(2)),
    "GlobalAveragePooling2D": lambda: _single((8, 8, 3), L.GlobalAveragePooling2D()),
    "GlobalMaxPooling2D": lambda: _single((8, 8, 3), L.GlobalMaxPooling2D()),
    "ZeroPadding2D": lambda: _single((8, 8, 3), L.ZeroPadding2D()),
    "Cropping2D": lambda: _single((8, 8, 3), L.Cropping2D(1)),
    "SpatialDropout2D": lambda: _single((8, 8, 3), L.SpatialDropout2D(0.2)),
    "RandomFlip": lambda: _single((8, 8, 3), L.RandomFlip()),
    "RandomRotation": lambda: _single((8, 8, 3), L.RandomRotation(0.1)),
    "RandomZoom": lambda: _single((8, 8, 3), L.RandomZoom(0.1)),
    "Rescaling": lambda: _single((8, 8, 3), L.Rescaling(1 / 255.0, offset=-1.0)),
    "Conv3D": lambda: _single((5, 5, 5, 2), L.Conv3D(3, 2)),
    "Conv3DTranspose": lambda: _single((3, 3, 3, 2), L.Conv3DTranspose(3, 2, strides=2)),
    "AveragePooling3D": lambda: _single((4, 4, 4, 2), L.AveragePooling3D(2)),
    "MaxPooling3D": lambda: _single((4, 4, 4, 2), L.MaxPooling3D(2)),
    "GlobalAveragePooling3D": lambda: _single((4, 4, 4, 2), L.GlobalAveragePooling3D()),
    "GlobalMaxPooling3D": lambda: _single((4, 4, 4, 2), L.GlobalMaxPooling3D()),
    "UpSampling3D": lambda: _single((2, 2, 2, 2), L.UpSampling3D()),
    "ZeroPadding3D": lambda: _single((2, 2, 2, 2), L.ZeroPadding3D()),
    "Cropping3D": lambda: _single((4, 4, 4, 2), L.Cropping3D(1)),
    "SpatialDropout3D": lambda: _single((4, 4, 4, 2), L.SpatialDropout3D(0.2)),
    "Subtract": lambda: _two((4,), L.Subtract()),
    "Multiply": lambda: _two((4,), L.Multiply()),
    "Average": lambda: _two((4,), L.Average()),
    "Maximum": lambda: _two((4,), L.Maximum()),
    "Minimum": lambda: _two((4,), L.Minimum()),
    "Dot": lambda: _two((4,), L.Dot(axes=1, normalize=True)),
    "AdditiveAttention": lambda: _two((5, 4), L.AdditiveAttention()),
}


@pytest.mark.parametrize("name", sorted(ZOO))
def test_layer_zoo_round_trip(name):
    _check_round_trip(ZOO[name]())


def test_verified_layers_are_all_exercised():
    seen = set()

    def collect(config):
        for entry in config["layers"]:
            seen.add(entry["class_name"])
            if "layers" in entry["config"]:
                collect(entry["config"])
            for key in ("layer", "backward_layer"):
                if isinstance(entry["config"].get(key), dict):
                    seen.add(entry["config"][key]["class_name"])

    for build in NAMED + list(ZOO.values()):
        collect(build().get_config())
    assert twin.VERIFIED_LAYERS - seen == set()


def test_same_activations_compute_the_same():
    import tf_keras

    x = np.linspace(-6, 6, 61, dtype="float32").reshape(1, 61)
    for name in sorted(twin.SAME_ACTIVATIONS):
        a = np.asarray(keras.activations.get(name)(x))
        b = np.asarray(tf_keras.activations.get(name)(backend.tf().constant(x)))
        np.testing.assert_allclose(a, b, atol=1e-6, err_msg=name)


# --------------------------------------------------------------------------- names and structure


def test_nested_model_is_flattened_with_a_clear_layer_map():
    model = nested()
    result = to_tf_keras(model)
    import tf_keras

    layers = result.model.layers
    names = [layer.name for layer in layers]
    assert len(names) == len(set(names))
    assert not any(isinstance(layer, tf_keras.Model) for layer in layers)
    # "dense_out" is in both sub-models: the first keeps it, the second is prefixed.
    assert result.layer_map["block/dense_out"] == "dense_out"
    assert result.layer_map["head/dense_out"] == "head_dense_out"
    assert set(result.layer_map.values()) <= set(names)
    # The block is called twice, yet its two Dense layers exist once: 1 + 2 + 1 in all.
    assert sum(isinstance(layer, tf_keras.layers.Dense) for layer in layers) == 4


def test_dict_inputs_and_outputs_keep_their_keys():
    result = to_tf_keras(two_in_two_out())
    tfk = result.model
    assert isinstance(tfk.input, dict) and set(tfk.input) == {"a", "b"}
    out = tfk({"a": np.zeros((2, 6), "float32"), "b": np.zeros((2, 4), "float32")})
    assert set(out) == {"joined", "summed"}
    assert result.layer_map["shared"] == "shared"


# --------------------------------------------------------------------------- what cannot be twinned


def test_custom_layer_is_named_in_the_error():
    from models.layers import Squash

    x = keras.Input((4,))
    model = keras.Model(x, L.Dense(3)(Squash(name="caps")(L.Dense(4)(x))))
    with pytest.raises(TwinError) as info:
        to_tf_keras(model)
    assert "caps" in str(info.value) and "layerforge" in str(info.value)
    assert [u[:2] for u in info.value.unsupported] == [("caps", "Squash")]


def test_all_unsupported_layers_are_listed_and_strict_false_returns_them():
    from models.layers import Squash

    x = keras.Input((6, 4))
    h = Squash(name="caps")(x)
    h = L.RMSNormalization(name="rms")(h)
    h = keras.ops.add(h, 1.0)
    h = L.Dense(3, activation="hard_sigmoid", name="hard")(h)
    h = L.Dense(3, lora_rank=2, name="lora")(h)
    model = keras.Model(x, h)
    with pytest.raises(TwinError) as info:
        to_tf_keras(model)
    listed = {path for path, _, _ in info.value.unsupported}
    assert {"caps", "rms", "hard", "lora"} <= listed
    assert len(listed) == 5  # and the raw keras.ops call
    result = to_tf_keras(model, strict=False)
    assert result.model is None
    assert {path for path, _, _ in result.unsupported} == listed
    reasons = dict((p, why) for p, _, why in result.unsupported)
    assert "hard_sigmoid" in reasons["hard"] and "lora_rank" in reasons["lora"]


def test_supported_needs_no_tensorflow_for_known_classes():
    import subprocess
    import sys

    code = (
        "import sys; from models.twin import supported; "
        "assert supported('Dense') == (True, ''); assert not supported('RMSNormalization')[0]; "
        "assert not supported('layerforge>Squash')[0]; assert 'tensorflow' not in sys.modules"
    )
    root = Path(__file__).resolve().parents[2]
    subprocess.run([sys.executable, "-c", code], check=True, timeout=60, cwd=root)


def test_supported_answers_without_building_anything():
    assert supported("Conv2D") == (True, "")
    ok, why = supported("RMSNormalization")
    assert not ok and "RMS" in why
    ok, why = supported("layerforge>Squash")
    assert not ok and "layerforge" in why
    ok, why = supported("Lambda")
    assert not ok and why
    ok, why = supported("NoSuchLayer")
    assert not ok


def test_from_tf_keras_names_the_mismatched_layer():
    model = mlp()
    tfk = to_tf_keras(model).model
    first, second = (layer.name for layer in model.layers)
    other = keras.Sequential([keras.Input((8,)), L.Dense(16, name=first), L.Dense(5, name=second)])
    with pytest.raises(TwinError, match=second):
        from_tf_keras(tfk, like=other)
    renamed = keras.Sequential(
        [keras.Input((8,)), L.Dense(16, name="elsewhere"), L.Dense(4, name=second)]
    )
    with pytest.raises(TwinError, match="elsewhere"):
        from_tf_keras(tfk, like=renamed)


def test_weight_shape_mismatch_while_copying_names_the_layer(monkeypatch):
    model = cnn()
    bn = next(layer for layer in model.layers if isinstance(layer, L.BatchNormalization))
    monkeypatch.setattr(type(bn), "get_weights", lambda self: [np.zeros((1,))])
    with pytest.raises(TwinError, match=bn.name):
        to_tf_keras(model)


# --------------------------------------------------------------------------- the point: TFMOT


def test_tfmot_prunes_the_twin_and_weights_come_back():
    import tensorflow_model_optimization as tfmot

    model = _randomize(cnn())
    tfk = to_tf_keras(model).model
    schedule = tfmot.sparsity.keras.ConstantSparsity(0.5, begin_step=0, frequency=1)
    pruned = tfmot.sparsity.keras.prune_low_magnitude(tfk, pruning_schedule=schedule)
    pruned.compile(optimizer="sgd", loss="mse")
    rng = np.random.default_rng(3)
    x = rng.normal(size=(8, 12, 12, 3)).astype("float32")
    y = rng.normal(size=(8, 5)).astype("float32")
    step = tfmot.sparsity.keras.UpdatePruningStep()
    pruned.fit(x, y, epochs=1, batch_size=8, verbose=0, callbacks=[step])
    stripped = tfmot.sparsity.keras.strip_pruning(pruned)

    with pytest.raises(TwinError, match="strip"):
        from_tf_keras(pruned, like=model)
    back = from_tf_keras(stripped, like=model)
    kernel = next(layer for layer in back.layers if isinstance(layer, L.Dense)).kernel
    assert np.mean(np.asarray(kernel) == 0) == pytest.approx(0.5, abs=0.02)
    _assert_same(_outputs(back, x), _outputs(stripped, x), atol=1e-4)


def test_tfmot_clustering_of_attention_comes_back_by_weight_name():
    """strip_clustering lists a MultiHeadAttention's kernels before its biases."""
    import tensorflow_model_optimization as tfmot

    model = _randomize(attention())
    tfk = to_tf_keras(model).model
    clustering = tfmot.clustering.keras
    clustered = clustering.cluster_weights(
        tfk, number_of_clusters=4, cluster_centroids_init=clustering.CentroidInitialization.LINEAR
    )
    stripped = clustering.strip_clustering(clustered)
    mha = stripped.get_layer("mha")
    assert [tuple(w.shape) for w in mha.get_weights()] != [
        tuple(w.shape) for w in model.get_layer("mha").get_weights()
    ]
    back = from_tf_keras(stripped, like=model)
    kernel = np.asarray(back.get_layer("mha").weights[0])
    assert len(np.unique(kernel)) <= 4
    data = _sample(model)
    _assert_same(_outputs(back, data), _outputs(stripped, data), atol=1e-4)
