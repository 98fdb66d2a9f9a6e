"""LayerForge's layers and loss for generative and unsupervised models: configs, saving, and what they compute."""
import numpy as np
import pytest


@pytest.fixture(scope="module")
def keras():
    from models import backend

    return backend.keras()


def _layers():
    from models.layers import RBM, SOM, NoiseSchedule, Sampling, TimestepEmbedding

    return [
        (Sampling(kl_weight=0.5, seed=3, name="sampling"), [(5, 3), (5, 3)]),
        (RBM(7, cd_steps=2, learning_rate=0.1, seed=1, name="rbm"), [(5, 6)]),
        (SOM(3, 4, sigma=1.5, sigma_end=0.3, learning_rate=0.4, learning_rate_end=0.05, seed=2,
             name="som"), [(5, 4)]),
        (NoiseSchedule(20, schedule="linear", beta_start=1e-4, beta_end=0.01, name="schedule"),
         [(5, 2), (5, 2), (5, 1)]),
        (TimestepEmbedding(12, max_period=500.0, name="embed"), [(5, 1)]),
    ]


def _model(keras, layer, shapes):
    dtypes = ["int32" if isinstance(layer, _schedule_cls()) and i == 2 else "float32"
              for i in range(len(shapes))]
    inputs = [keras.Input(s[1:], dtype=d) for s, d in zip(shapes, dtypes)]
    inputs = inputs if len(inputs) > 1 else inputs[0]
    return keras.Model(inputs, layer(inputs)), inputs


def _schedule_cls():
    from models.layers import NoiseSchedule

    return NoiseSchedule


def _feed(shapes, layer):
    rng = np.random.default_rng(0)
    arrays = [rng.random(s).astype("float32") for s in shapes]
    if isinstance(layer, _schedule_cls()):
        arrays[2] = rng.integers(0, layer.steps, shapes[2]).astype("int32")
    return arrays if len(arrays) > 1 else arrays[0]


@pytest.mark.parametrize("index", range(5), ids=["Sampling", "RBM", "SOM", "NoiseSchedule",
                                                 "TimestepEmbedding"])
def test_each_layer_round_trips_its_config_and_a_keras_file(keras, index, tmp_path):
    layer, shapes = _layers()[index]
    config = layer.get_config()
    again = type(layer).from_config(config)
    assert again.get_config() == config
    registered = keras.saving.get_registered_name(type(layer))
    assert registered == f"layerforge>{type(layer).__name__}"
    model, _ = _model(keras, layer, shapes)
    x = _feed(shapes, layer)
    before = np.asarray(model(x, training=False))
    assert before.shape[1:] == tuple(model.output_shape[1:])
    path = tmp_path / "m.keras"
    model.save(path)
    loaded = keras.saving.load_model(path)
    inner = [l for l in loaded.layers if type(l) is type(layer)][0]
    assert inner.get_config() == config
    np.testing.assert_allclose(np.asarray(loaded(x, training=False)), before, rtol=1e-5, atol=1e-6)


def test_sampling_draws_around_the_mean_and_adds_the_kl_term_only_while_training(keras):
    from models.layers import Sampling, gaussian_kl

    mean = keras.Input((2,))
    log_var = keras.Input((2,))
    model = keras.Model([mean, log_var], Sampling(kl_weight=2.0, seed=0)([mean, log_var]))
    m = np.tile([[1.0, -2.0]], (4000, 1)).astype("float32")
    lv = np.full((4000, 2), np.log(0.25), dtype="float32")
    np.testing.assert_allclose(np.asarray(model([m, lv], training=False)), m)
    assert not model.losses
    z = np.asarray(model([m, lv], training=True))
    np.testing.assert_allclose(z.mean(axis=0), [1.0, -2.0], atol=0.03)
    np.testing.assert_allclose(z.std(axis=0), [0.5, 0.5], atol=0.03)
    expected = float(gaussian_kl(m, lv))
    assert float(model.losses[0]) == pytest.approx(2.0 * expected, rel=1e-5)
    # KL(N(0, 1) || N(0, 1)) is zero; a wider or shifted Gaussian costs more.
    zeros = np.zeros((3, 2), "float32")
    assert float(gaussian_kl(zeros, zeros)) == pytest.approx(0.0, abs=1e-7)
    assert float(gaussian_kl(zeros + 1.0, zeros)) == pytest.approx(1.0)  # 0.5 * 2 dims * 1^2


def test_contrastive_divergence_learns_the_patterns_it_sees(keras):
    from models.layers import RBM

    rng = np.random.default_rng(0)
    patterns = np.array([[1, 1, 1, 0, 0, 0], [0, 0, 0, 1, 1, 1]], dtype="float32")
    data = patterns[rng.integers(0, 2, 256)]
    rbm = RBM(4, learning_rate=0.2, seed=0)
    rbm.build((None, 6))
    first = float(rbm.contrastive_divergence(data))
    for _ in range(200):
        last = float(rbm.contrastive_divergence(data))
    assert last < 0.5 * first
    recon = np.asarray(rbm.visible_probabilities(rbm.hidden_probabilities(patterns)))
    assert ((recon > 0.5) == (patterns > 0.5)).all()
    # The data is likelier (lower free energy) than a mixed-up vector.
    mixed = np.array([[1, 0, 1, 0, 1, 0]], dtype="float32")
    assert float(np.asarray(rbm.free_energy(patterns)).max()) < float(np.asarray(rbm.free_energy(mixed))[0])
    with pytest.raises(ValueError, match="at least one Gibbs step"):
        RBM(4, cd_steps=0)


def test_the_som_orders_itself_over_the_data_as_its_radius_and_rate_shrink():
    from models.layers import SOM

    som = SOM(1, 10, sigma=4.0, sigma_end=0.5, learning_rate=0.5, learning_rate_end=0.01, seed=0)
    som.build((None, 1))
    assert som.schedule(0.0) == (4.0, 0.5)
    sigma, rate = som.schedule(1.0)
    assert sigma == pytest.approx(0.5) and rate == pytest.approx(0.01)
    assert som.schedule(0.5)[0] == pytest.approx(np.sqrt(4.0 * 0.5))  # geometric
    x = np.random.default_rng(0).random((400, 1)).astype("float32")
    errors = []
    for i in range(300):
        sigma, rate = som.schedule(i / 299)
        errors.append(float(som.update(x[np.random.default_rng(i).integers(0, 400, 32)], sigma, rate)))
    assert np.mean(errors[-20:]) < 0.5 * np.mean(errors[:20])
    w = np.asarray(som.prototypes)[:, 0]
    steps = np.diff(w)
    assert (steps > 0).all() or (steps < 0).all(), "a 1-D map over 1-D data ends up sorted"
    u = som.u_matrix()
    assert u.shape == (1, 10) and (u > 0).all()
    assert som.component_planes().shape == (1, 1, 10)
    with pytest.raises(ValueError, match="positive"):
        SOM(2, 2, sigma_end=0.0)


def test_the_noise_schedule_destroys_the_data_and_its_reverse_step_restores_it():
    from models.layers import NoiseSchedule

    for kind in ("cosine", "linear"):
        schedule = NoiseSchedule(50, schedule=kind)
        abar = schedule.alpha_bars
        assert abar[0] > 0.99 and abar[-1] < 0.05 and (np.diff(abar) < 0).all(), kind
    schedule = NoiseSchedule(50)
    x0 = np.array([[1.0, -1.0]], "float32")
    noise = np.array([[0.3, 0.2]], "float32")
    t = 20
    x_t = np.asarray(schedule([x0, noise, np.array([t], "int32")]))
    np.testing.assert_allclose(x_t, np.sqrt(abar_t := schedule.alpha_bars[t]) * x0
                               + np.sqrt(1 - abar_t) * noise, rtol=1e-5)
    # Knowing the noise exactly, the reverse step's mean moves x_t towards x0 (as q(x_{t-1}|x_t, x0)).
    back = np.asarray(schedule.reverse_step(x_t, noise, t, np.zeros_like(x0)))
    assert np.linalg.norm(back - x0) < np.linalg.norm(x_t - x0)
    at_zero = np.asarray(schedule.reverse_step(x_t, noise, 0, np.ones_like(x0)))  # no noise at t = 0
    np.testing.assert_allclose(at_zero, np.asarray(schedule.reverse_step(x_t, noise, 0, np.zeros_like(x0))))
    with pytest.raises(ValueError, match="schedule must be one of"):
        NoiseSchedule(10, schedule="square")


def test_timestep_embeddings_tell_steps_apart_smoothly():
    from models.layers import TimestepEmbedding

    emb = np.asarray(TimestepEmbedding(16, max_period=1000.0)(np.array([[0.0], [1.0], [2.0], [60.0]])))
    assert emb.shape == (4, 16)
    np.testing.assert_allclose(emb[0, :8], 0.0, atol=1e-7)  # sin(0)
    np.testing.assert_allclose(emb[0, 8:], 1.0, atol=1e-7)  # cos(0)
    near, far = np.linalg.norm(emb[1] - emb[2]), np.linalg.norm(emb[1] - emb[3])
    assert 0 < near < far
    with pytest.raises(ValueError, match="even"):
        TimestepEmbedding(7)


def test_nt_xent_rewards_agreeing_views_and_saves_with_a_compiled_model(keras, tmp_path):
    from models.layers import NTXent, nt_xent

    rng = np.random.default_rng(0)
    z = rng.normal(size=(16, 8)).astype("float32")
    agree = float(nt_xent(z, z + 0.01 * rng.normal(size=z.shape).astype("float32"), 0.1))
    shuffled = float(nt_xent(z, z[rng.permutation(16)], 0.1))
    assert agree < 0.5 and shuffled > 4 * agree
    loss = NTXent(temperature=0.2)
    assert NTXent.from_config(loss.get_config()).temperature == 0.2
    assert float(loss(np.zeros(32), np.concatenate([z, z]))) == pytest.approx(float(nt_xent(z, z, 0.2)),
                                                                              rel=1e-5)
    x = keras.Input((8,))
    model = keras.Model(x, keras.layers.Dense(4)(x))
    model.compile(optimizer="adam", loss=loss)
    model.optimizer.build(model.trainable_variables)  # saved and loaded alike, no warning
    model.save(tmp_path / "c.keras")
    loaded = keras.saving.load_model(tmp_path / "c.keras")
    assert isinstance(loaded.loss, NTXent) and loaded.loss.temperature == 0.2
    assert keras.losses.get({"class_name": "layerforge>NTXent", "config": {"temperature": 0.3}}).temperature == 0.3
