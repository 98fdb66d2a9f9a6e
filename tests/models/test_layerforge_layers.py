"""LayerForge's graph, ODE and mixture-of-experts layers: their maths, configs and .keras round trips."""
import json

import numpy as np
import pytest

from models import backend


@pytest.fixture(scope="module")
def keras():
    return backend.keras()


def _graph_batch(seed=0, batch=2, nodes=5, channels=3):
    rng = np.random.default_rng(seed)
    a = (rng.random((batch, nodes, nodes)) < 0.5).astype("float32")
    a = np.maximum(a, np.transpose(a, (0, 2, 1)))
    a[:, np.arange(nodes), np.arange(nodes)] = 0.0
    a[:, -1, :] = a[:, :, -1] = 0.0  # an isolated node
    x = rng.normal(size=(batch, nodes, channels)).astype("float32")
    return x, a


def _graph_model(keras, layer, nodes=5, channels=3):
    f = keras.Input((nodes, channels), name="features")
    a = keras.Input((nodes, nodes), name="adjacency")
    return keras.Model([f, a], layer(features=f, adjacency=a))


def _models(keras):
    """One small model per layer, with an input that fits it."""
    from models.layers import GraphAttention, GraphConv, MessagePassing, MixtureOfExperts, ODEBlock

    x, a = _graph_batch()
    graph_in = {"features": x, "adjacency": a}
    dense_in = np.random.default_rng(1).normal(size=(4, 6)).astype("float32")

    def dense_model(layer):
        inp = keras.Input((6,), name="x")
        return keras.Model(inp, layer(inp))

    return {
        "MessagePassing": (_graph_model(keras, MessagePassing(4, aggregation="max",
                                                              activation="relu")), graph_in),
        "GraphConv": (_graph_model(keras, GraphConv(4, normalization="mean")), graph_in),
        "GraphAttention": (_graph_model(keras, GraphAttention(3, heads=2, concat_heads=False,
                                                              dropout=0.1, seed=3)), graph_in),
        "ODEBlock": (dense_model(ODEBlock(units=[5, 4], steps=3, t1=0.5, kinetic_weight=0.1)),
                     dense_in),
        "MixtureOfExperts": (dense_model(MixtureOfExperts(num_experts=3, units=5, top_k=2,
                                                          seed=2)), dense_in),
    }


LAYERS = ["MessagePassing", "GraphConv", "GraphAttention", "ODEBlock", "MixtureOfExperts"]


@pytest.mark.parametrize("name", LAYERS)
def test_config_round_trips_and_is_json(name, keras):
    model, _ = _models(keras)[name]
    layer = model.layers[-1]
    config = layer.get_config()
    assert json.loads(json.dumps(config)) == config
    again = type(layer).from_config(config)
    assert again.get_config() == config
    # The registered name is what a saved graph refers to.
    assert keras.saving.get_registered_object(f"layerforge>{name}") is type(layer)


@pytest.mark.parametrize("name", LAYERS)
def test_keras_file_round_trip_gives_the_same_outputs(name, keras, tmp_path):
    model, x = _models(keras)[name]
    before = np.asarray(model(x, training=False))
    path = tmp_path / f"{name}.keras"
    model.save(path)
    loaded = keras.saving.load_model(path)
    assert type(loaded.layers[-1]) is type(model.layers[-1])
    np.testing.assert_allclose(np.asarray(loaded(x, training=False)), before, rtol=1e-6, atol=1e-6)


@pytest.mark.parametrize("name", LAYERS)
def test_lforge_project_round_trip(name, keras, tmp_path):
    """Graph -> .lforge -> built model: the same layer, config and outputs."""
    from models.build import graph_from_model
    from models.project import Project, new_project

    model, x = _models(keras)[name]
    project = new_project(graph_from_model(model))
    saved = project.save(tmp_path / "p.lforge", models={project.main_name: model})
    rebuilt = Project.load(saved).build()
    assert rebuilt.layers[-1].get_config() == model.layers[-1].get_config()
    np.testing.assert_allclose(np.asarray(rebuilt(x, training=False)),
                               np.asarray(model(x, training=False)), rtol=1e-6, atol=1e-6)


@pytest.mark.parametrize("bad, match", [
    (dict(cls="MessagePassing", aggregation="median"), "aggregation"),
    (dict(cls="GraphConv", normalization="row"), "normalization"),
    (dict(cls="GraphAttention", heads=0), "head"),
    (dict(cls="ODEBlock", steps=0), "step"),
    (dict(cls="ODEBlock", units=[]), "units"),
    (dict(cls="ODEBlock", kinetic_weight=-1.0), "kinetic_weight"),
    (dict(cls="MixtureOfExperts", top_k=5), "top_k"),
])
def test_bad_parameters_say_which(bad, match, keras):
    import models.layers as lf

    cls = getattr(lf, bad.pop("cls"))
    with pytest.raises(ValueError, match=match):
        cls(**bad)


def test_a_graph_layer_without_adjacency_says_so(keras):
    from models.layers import GraphConv

    with pytest.raises((TypeError, ValueError), match="adjacency"):
        GraphConv(2)(keras.Input((5, 3)))
    with pytest.raises(ValueError, match="3 nodes but the adjacency is 5 x 5"):
        GraphConv(2)(keras.Input((3, 3)), keras.Input((5, 5)))


# --------------------------------------------------------------------------- graph maths


def test_graph_conv_is_the_normalised_adjacency_times_features_times_weights(keras):
    from models.layers import GraphConv

    x, a = _graph_batch()
    layer = GraphConv(4, use_bias=False)
    out = np.asarray(layer(x, a))
    a_hat = a + np.eye(a.shape[-1])
    d = 1.0 / np.sqrt(a_hat.sum(-1))
    expected = (d[:, :, None] * a_hat * d[:, None, :]) @ x @ np.asarray(layer.kernel)
    np.testing.assert_allclose(out, expected, rtol=1e-5, atol=1e-5)


@pytest.mark.parametrize("aggregation", ["mean", "sum", "max"])
def test_message_passing_aggregates_the_neighbours(aggregation, keras):
    from models.layers import MessagePassing

    x, a = _graph_batch()
    layer = MessagePassing(4, aggregation=aggregation, use_bias=False)
    out = np.asarray(layer(x, a))
    w_self, w_msg = np.asarray(layer.self_kernel), np.asarray(layer.message_kernel)
    msgs = x @ w_msg
    expected = x @ w_self
    for b in range(len(x)):
        for i in range(x.shape[1]):
            nb = np.flatnonzero(a[b, i])
            if len(nb):
                agg = {"mean": msgs[b, nb].mean(0), "sum": msgs[b, nb].sum(0),
                       "max": msgs[b, nb].max(0)}[aggregation]
                expected[b, i] += agg
    np.testing.assert_allclose(out, expected, rtol=1e-5, atol=1e-5)


def test_graph_attention_weights_sum_to_one_over_the_neighbourhood_only(keras):
    from models.attention import attention_maps
    from models.layers import GraphAttention

    x, a = _graph_batch()
    model = _graph_model(keras, GraphAttention(3, heads=2, name="gat"))
    _, alpha = model.layers[-1](x, a, return_attention_scores=True)
    alpha = np.asarray(alpha)
    assert alpha.shape == (2, 2, 5, 5)
    allowed = (a + np.eye(5)) > 0
    for b in range(2):
        assert np.all(alpha[b][:, ~allowed[b]] == 0.0)
    np.testing.assert_allclose(alpha.sum(-1), 1.0, rtol=1e-5)
    # models.attention finds the layer and reads the same weights.
    maps = attention_maps(model, {"features": x, "adjacency": a})
    assert [m["layer"] for m in maps] == ["gat"]
    np.testing.assert_allclose(maps[0]["scores"], alpha, rtol=1e-5, atol=1e-6)


def test_masked_accuracy_counts_only_labelled_targets(keras):
    from models.layers import MaskedAccuracy

    metric = MaskedAccuracy()
    y_true = np.array([[0, -1, 1, -1, 1]])
    y_pred = np.eye(2)[[[0, 1, 0, 0, 1]]].astype("float32")  # right, -, wrong, -, right
    metric.update_state(y_true, y_pred)
    assert float(metric.result()) == pytest.approx(2 / 3)
    assert metric.name == "accuracy"
    again = keras.metrics.get(keras.saving.serialize_keras_object(metric))
    assert isinstance(again, MaskedAccuracy) and again.ignore_class == -1


# --------------------------------------------------------------------------- ODE


def test_rk4_integrates_linear_dynamics_to_the_exact_solution(keras):
    """With f(h) = -h (one linear hidden unit), h(t1) = exp(-t1) h(0), up to RK4's known error."""
    from models.layers import ODEBlock

    block = ODEBlock(units=[1], activation="linear", steps=10, t1=2.0, time_dependent=False,
                     kinetic_weight=0.5)
    h0 = np.array([[1.0], [-3.0]], dtype="float32")
    block(h0)
    block.hidden[0].set_weights([np.ones((1, 1), "float32"), np.zeros(1, "float32")])
    block.velocity.set_weights([-np.ones((1, 1), "float32"), np.zeros(1, "float32")])
    out, states = block(h0, return_trajectory=True)
    # One RK4 step multiplies by the 4th-order Taylor polynomial of exp(-dt).
    z = -0.2
    per_step = 1 + z + z ** 2 / 2 + z ** 3 / 6 + z ** 4 / 24
    np.testing.assert_allclose(np.asarray(out), per_step ** 10 * h0, rtol=1e-5)
    np.testing.assert_allclose(np.asarray(out), np.exp(-2.0) * h0, rtol=1e-4)
    states = np.asarray(states)
    assert states.shape == (2, 11, 1)
    np.testing.assert_allclose(states[:, 0], h0)
    np.testing.assert_allclose(states[:, 5], per_step ** 5 * h0, rtol=1e-5)
    # The kinetic loss: the squared velocity of each step, averaged over points, times dt.
    velocity = np.diff(states, axis=1) / 0.2
    expected = 0.5 * 0.2 * np.sum(np.mean(np.sum(velocity ** 2, axis=-1), axis=0))
    assert float(block.losses[0]) == pytest.approx(expected, rel=1e-4)


def test_ode_block_keeps_the_state_shape_and_more_steps_change_nothing_structural(keras):
    from models.layers import ODEBlock

    x = np.random.default_rng(0).normal(size=(3, 7, 4)).astype("float32")
    few, many = ODEBlock(units=[8], steps=2), ODEBlock(units=[8], steps=20)
    assert few(x).shape == many(x).shape == x.shape
    assert len(few.weights) == len(many.weights) == 4


# --------------------------------------------------------------------------- experts


def test_each_sample_goes_to_exactly_top_k_experts(keras):
    from models.layers import MixtureOfExperts

    layer = MixtureOfExperts(num_experts=5, units=3, top_k=2)
    x = np.random.default_rng(0).normal(size=(50, 6)).astype("float32")
    out, gates = layer(x, return_gates=True)
    gates = np.asarray(gates)
    assert out.shape == (50, 3)
    assert np.all((gates > 0).sum(-1) == 2)
    np.testing.assert_allclose(gates.sum(-1), 1.0, rtol=1e-5)
    # The output is the gate-weighted sum of the chosen experts' outputs.
    w, b = np.asarray(layer.expert_kernel), np.asarray(layer.expert_bias)
    experts = np.maximum(np.einsum("nd,edu->neu", x, w) + b, 0.0)
    np.testing.assert_allclose(np.asarray(out), np.einsum("ne,neu->nu", gates, experts),
                               rtol=1e-5, atol=1e-5)


def test_the_balancing_loss_is_added_and_largest_when_one_expert_takes_all(keras):
    from models.layers import MixtureOfExperts

    rng = np.random.default_rng(0)
    x = rng.normal(size=(64, 6)).astype("float32")
    x[:, 0] = 1.0
    layer = MixtureOfExperts(num_experts=4, units=3, top_k=1, balance_weight=0.5,
                             noise_stddev=0.0)
    layer(x)
    # The Switch Transformer's loss, computed by hand from the gate's scores.
    logits = x @ np.asarray(layer.gate_kernel)
    chosen = np.eye(4)[logits.argmax(-1)]
    probs = np.exp(logits) / np.exp(logits).sum(-1, keepdims=True)
    expected = 0.5 * 4 * np.sum(chosen.mean(0) * probs.mean(0))
    assert float(layer.losses[0]) == pytest.approx(expected, rel=1e-4)
    # Everything to expert 0 with certainty: share 1 and probability 1, the largest loss.
    kernel = np.zeros((6, 4), "float32")
    kernel[0, 0] = 50.0
    layer.gate_kernel.assign(kernel)
    layer(x)
    assert float(layer.losses[0]) == pytest.approx(0.5 * 4, rel=1e-4)
    assert expected < 0.5 * 4
    off = MixtureOfExperts(num_experts=4, units=3, balance_weight=0.0)
    off(x)
    assert not off.losses


def test_expert_usage_reports_each_experts_share(keras):
    from models.layers import MixtureOfExperts
    from models.layers.experts import expert_usage

    inp = keras.Input((6,))
    h = keras.layers.Dense(6, name="pre")(inp)
    model = keras.Model(inp, MixtureOfExperts(num_experts=3, units=2, top_k=1, name="moe")(h))
    x = np.random.default_rng(0).normal(size=(40, 6)).astype("float32")
    usage = expert_usage(model, x)
    assert list(usage) == ["moe"]
    share, chosen = usage["moe"]["share"], usage["moe"]["chosen"]
    assert chosen.shape == (40, 3) and np.all(chosen.sum(-1) == 1)
    np.testing.assert_allclose(share, chosen.mean(0))
    assert share.sum() == pytest.approx(1.0)
