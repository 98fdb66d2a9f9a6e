"""LayerForge's capsule, memory and position layers: what they compute, their configs, .keras files."""
import numpy as np
import pytest


def _keras():
    from models import backend

    return backend.keras()


def _layers():
    _keras()
    import models.layers as lf

    return lf


def _same_config(layer):
    """from_config(get_config()) gives the same config (and survives JSON, as a graph keeps it)."""
    import json

    config = json.loads(json.dumps(layer.get_config()))
    again = type(layer).from_config(config)
    assert json.loads(json.dumps(again.get_config())) == config
    return again


def _keras_file_round_trip(model, x, tmp_path):
    keras = _keras()
    path = tmp_path / "m.keras"
    model.save(path)
    loaded = keras.saving.load_model(path, compile=False)
    for a, b in zip(keras.tree.flatten(model(x)), keras.tree.flatten(loaded(x))):
        np.testing.assert_allclose(np.asarray(a), np.asarray(b), rtol=1e-6, atol=1e-6)
    return loaded


# --------------------------------------------------------------------------- capsules


def _routing_reference(u, kernel, routings):
    """Dynamic routing written out in numpy (the paper's procedure)."""
    def squash(s):
        n2 = (s ** 2).sum(-1, keepdims=True)
        return n2 / (1 + n2) / np.sqrt(n2 + 1e-7) * s

    u_hat = np.einsum("bik,ijdk->bijd", u, kernel)
    b = np.zeros(u_hat.shape[:3])
    for r in range(routings):
        c = np.exp(b) / np.exp(b).sum(-1, keepdims=True)
        v = squash(np.einsum("bij,bijd->bjd", c, u_hat))
        b = b + np.einsum("bijd,bjd->bij", u_hat, v)
    return v


@pytest.mark.parametrize("routings", [1, 3])
def test_capsules_route_by_agreement_as_the_paper_says(routings):
    lf = _layers()
    rng = np.random.default_rng(0)
    u = rng.normal(size=(2, 6, 4)).astype("float32")
    layer = lf.Capsules(3, 5, routings=routings)
    v = np.asarray(layer(u))
    assert v.shape == (2, 3, 5)
    kernel = np.asarray(layer.kernel)
    np.testing.assert_allclose(v, _routing_reference(u, kernel, routings), rtol=1e-4, atol=1e-6)
    assert np.all(np.linalg.norm(v, axis=-1) < 1.0)


def test_more_routings_change_the_result_and_bad_counts_are_refused():
    lf = _layers()
    u = np.random.default_rng(1).normal(size=(1, 6, 4)).astype("float32")
    one = lf.Capsules(3, 5, routings=1)
    one(u)
    three = lf.Capsules(3, 5, routings=3)
    three(u)
    three.set_weights(one.get_weights())
    assert not np.allclose(np.asarray(one(u)), np.asarray(three(u)))
    with pytest.raises(ValueError, match="routings must be at least 1"):
        lf.Capsules(routings=0)


def test_primary_capsules_group_channels_into_squashed_vectors():
    lf = _layers()
    x = np.random.default_rng(2).normal(size=(2, 9, 9, 3)).astype("float32")
    layer = lf.PrimaryCapsules(capsules=4, capsule_dim=6, kernel_size=3, strides=2)
    out = np.asarray(layer(x))
    assert out.shape == (2, 4 * 4 * 4, 6) == layer.compute_output_shape(x.shape)
    maps = np.asarray(layer.conv(x)).reshape(2, -1, 6)
    n2 = (maps ** 2).sum(-1, keepdims=True)
    np.testing.assert_allclose(out, n2 / (1 + n2) / np.sqrt(n2 + 1e-7) * maps, rtol=1e-5, atol=1e-6)
    with pytest.raises(ValueError, match="feature maps"):
        lf.PrimaryCapsules()(np.zeros((2, 8, 3), "float32"))


def test_length_and_mask_read_the_longest_capsule():
    lf = _layers()
    caps = np.zeros((2, 3, 2), "float32")
    caps[0, 1] = [0.3, 0.4]          # length 0.5, the longest
    caps[0, 2] = [0.1, 0.0]
    caps[1, 0] = [0.0, 0.9]
    np.testing.assert_allclose(np.asarray(lf.CapsuleLength()(caps)), [[0, 0.5, 0.1], [0.9, 0, 0]],
                               atol=1e-3)
    masked = np.asarray(lf.CapsuleMask()(caps))
    expected = np.zeros_like(caps)
    expected[0, 1], expected[1, 0] = caps[0, 1], caps[1, 0]
    np.testing.assert_array_equal(masked, expected)


def test_margin_loss_follows_its_formula_for_indices_and_one_hot_rows():
    lf = _layers()
    keras = _keras()
    lengths = np.array([[0.95, 0.2, 0.05], [0.5, 0.3, 0.0]], "float32")
    loss = lf.MarginLoss(m_plus=0.9, m_minus=0.1, down_weight=0.5)
    # sample 1: right class 0 is long enough; class 1 is 0.1 too long -> 0.5 * 0.01
    # sample 2: right class 2 is 0.9 short -> 0.81; class 0 (0.4) and 1 (0.2) too long
    expected = np.mean([0.5 * 0.01, 0.81 + 0.5 * (0.16 + 0.04)])
    assert float(loss(np.array([0, 2]), lengths)) == pytest.approx(expected, rel=1e-5)
    one_hot = np.eye(3, dtype="float32")[[0, 2]]
    assert float(loss(one_hot, lengths)) == pytest.approx(expected, rel=1e-5)
    again = keras.losses.deserialize(keras.losses.serialize(loss))
    assert isinstance(again, lf.MarginLoss) and again.get_config() == loss.get_config()


def test_reconstruction_loss_joins_the_model_loss_and_checks_sizes():
    lf = _layers()
    keras = _keras()
    x = keras.Input((2, 2, 1))
    rec = keras.Input((4,))
    out = lf.ReconstructionLoss(0.5)([x, rec])
    model = keras.Model([x, rec], out)
    target = np.ones((2, 2, 2, 1), "float32")
    guess = np.zeros((2, 4), "float32")
    np.testing.assert_array_equal(np.asarray(model([target, guess])), guess)
    assert float(sum(model.losses)) == pytest.approx(0.5 * 4.0)  # 4 squared errors of 1 each
    with pytest.raises(ValueError, match="make the decoder's last Dense layer 4 units"):
        lf.ReconstructionLoss()([keras.Input((2, 2, 1)), keras.Input((5,))])


def test_capsule_layers_round_trip_their_configs_and_a_keras_file(tmp_path):
    lf = _layers()
    keras = _keras()
    L = keras.layers
    for layer in (lf.PrimaryCapsules(5, 4, (3, 2), strides=2, padding="same"),
                  lf.Capsules(4, 6, routings=2), lf.CapsuleLength(epsilon=1e-6),
                  lf.CapsuleMask(), lf.ReconstructionLoss(0.01)):
        _same_config(layer)
    x = keras.Input((6, 6, 1))
    caps = lf.Capsules(3, 4, routings=2, name="caps")(lf.PrimaryCapsules(2, 4, 3, name="prim")(
        L.Conv2D(4, 1, name="conv")(x)))
    d = L.Dense(36, name="dec")(L.Flatten()(lf.CapsuleMask()(caps)))
    model = keras.Model(x, [lf.CapsuleLength(name="len")(caps),
                            lf.ReconstructionLoss(name="rec")([x, d])])
    sample = np.random.default_rng(3).random((2, 6, 6, 1)).astype("float32")
    loaded = _keras_file_round_trip(model, sample, tmp_path)
    assert loaded.get_layer("caps").routings == 2


# --------------------------------------------------------------------------- memory


def test_memory_writes_in_turn_and_reads_by_content():
    lf = _layers()
    rng = np.random.default_rng(4)
    steps = rng.normal(size=(1, 6, 5)).astype("float32")
    steps[0, 3] = steps[0, 1]  # step 4 (into the fresh slot 4) repeats step 2 (slot 2)
    layer = lf.Memory(slots=4, slot_size=3)
    read, write, look = (np.asarray(a) for a in layer(steps, return_weightings=True))
    assert read.shape == (1, 6, 3) and write.shape == look.shape == (1, 6, 4)
    # Step t writes only slot t mod 4, by its gate (between 0 and 1).
    for t in range(6):
        others = np.delete(write[0, t], t % 4)
        assert np.all(others == 0) and 0 < write[0, t, t % 4] < 1
    np.testing.assert_allclose(look.sum(-1), 1.0, rtol=1e-5)
    # Before any write reaches them, slots hold nothing to match: equal weights.
    assert look[0, 0, 1] == pytest.approx(look[0, 0, 2]) == pytest.approx(look[0, 0, 3])
    # Reading is by content: two slots written from the same step features weigh the same.
    assert look[0, 3, 1] == pytest.approx(look[0, 3, 3], rel=1e-4)
    assert look[0, 3, 1] != pytest.approx(look[0, 3, 0], rel=1e-3)
    _, scores = layer(steps, return_attention_scores=True)
    np.testing.assert_allclose(np.asarray(scores)[:, 0], look, rtol=1e-6)


def test_memory_needs_a_fixed_length_and_a_soft_enough_start():
    lf = _layers()
    keras = _keras()
    with pytest.raises(ValueError, match="fixed number of steps"):
        lf.Memory()(keras.Input((None, 4)))
    with pytest.raises(ValueError, match="sharpness must be above 1"):
        lf.Memory(sharpness=1.0)


def test_memory_is_found_by_the_attention_reader_and_survives_a_keras_file(tmp_path):
    lf = _layers()
    keras = _keras()
    from models.attention import attention_maps

    _same_config(lf.Memory(slots=5, slot_size=7, sharpness=3.0))
    x = keras.Input((4, 3))
    model = keras.Model(x, keras.layers.Dense(2)(lf.Memory(3, 4, name="memory")(x)))
    sample = np.random.default_rng(5).normal(size=(2, 4, 3)).astype("float32")
    loaded = _keras_file_round_trip(model, sample, tmp_path)
    maps = attention_maps(loaded, sample)
    assert [m["layer"] for m in maps] == ["memory"] and maps[0]["scores"].shape == (2, 1, 4, 3)


# --------------------------------------------------------------------------- positions


def test_position_embedding_gives_each_position_its_own_vector(tmp_path):
    lf = _layers()
    keras = _keras()
    layer = lf.PositionEmbedding(sequence_length=6)
    x = np.random.default_rng(6).normal(size=(2, 4, 3)).astype("float32")
    out = np.asarray(layer(x))
    np.testing.assert_array_equal(out[0], out[1])  # the same for every sample
    np.testing.assert_array_equal(out[0], np.asarray(layer.table)[:4])
    _same_config(layer)
    with pytest.raises(ValueError, match="raise sequence_length"):
        lf.PositionEmbedding(sequence_length=3)(keras.Input((4, 2)))
    tokens = keras.Input((4,), dtype="int32")
    e = keras.layers.Embedding(5, 3)(tokens)
    model = keras.Model(tokens, keras.layers.Add()([e, lf.PositionEmbedding(4)(e)]))
    _keras_file_round_trip(model, np.array([[1, 2, 3, 4]], "int32"), tmp_path)
