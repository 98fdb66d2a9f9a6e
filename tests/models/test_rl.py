"""RL templates: the environment as data, the replay buffer, the drawing, the DQN and A2C loops."""
import threading

import numpy as np
import pytest

from models import gallery
from models.data import DataError, load_dataset
from models.loops import rl
from models.runner import RunState, run_in_thread
from models.training import TrainingError, train
from models.validate import validate

# A few hundred steps: enough to exercise every part of a loop, seconds on a CPU.
TINY = {"env_steps_per_epoch": 128, "learning_starts": 64, "eval_episodes": 2,
        "final_episodes": 2, "batch_size": 16}


def test_the_environment_loads_as_data_without_held_out_rows():
    ds = load_dataset({"source": "builtin", "name": "gymnasium", "env": "CartPole-v1"})
    assert ds.x_train.shape == (1000, 4) and set(np.unique(ds.y_train)) == {0, 1}
    assert ds.n_val == 0 and ds.n_test == 0
    assert ds.feature_names[2] == "pole angle" and ds.class_names == ["push left", "push right"]
    with pytest.raises(DataError, match="NoSuchEnv"):
        load_dataset({"source": "builtin", "name": "gymnasium", "env": "NoSuchEnv-v0"})


def test_replay_buffer_keeps_the_latest_transitions():
    buf = rl.ReplayBuffer(5, 2)
    for k in range(3):  # 9 transitions into 5 places: the oldest four are overwritten
        n = 3
        obs = np.full((n, 2), k, np.float32)
        buf.add(obs, np.arange(n), np.ones(n), obs + 1, np.zeros(n))
    assert buf.size == 5
    assert sorted(buf.obs[:, 0].tolist()) == [1, 1, 2, 2, 2]
    s, _, r, s2, _ = buf.sample(np.random.default_rng(0), 64)
    assert s.shape == (64, 2) and np.all(s2 == s + 1) and set(r.tolist()) == {1.0}


def test_the_drawing_follows_the_cart_and_the_pole():
    upright = rl.draw_cartpole([0.0, 0, 0.0, 0])
    moved = rl.draw_cartpole([1.5, 0, 0.0, 0])
    tilted = rl.draw_cartpole([0.0, 0, 0.2, 0])
    assert upright.shape == (rl.FRAME_H, rl.FRAME_W, 3) and upright.min() >= 0 and upright.max() <= 1
    cart = (np.abs(upright - rl._CART).sum(-1) < 1e-6)
    cart_moved = (np.abs(moved - rl._CART).sum(-1) < 1e-6)
    assert np.nonzero(cart_moved)[1].mean() > np.nonzero(cart)[1].mean() + 20
    pole = np.abs(upright - rl._POLE).sum(-1) < 1e-6
    pole_tilted = np.abs(tilted - rl._POLE).sum(-1) < 1e-6
    top_row = np.nonzero(pole.any(1))[0].min()
    assert np.nonzero(pole_tilted[top_row + 2])[0].mean() > np.nonzero(pole[top_row + 2])[0].mean()
    fallen = rl.draw_cartpole([0.0, 0, 0.2, 0], fallen=True)
    assert (np.abs(fallen - rl._FALLEN).sum(-1) < 1e-6).any()


def test_episodes_run_side_by_side_and_keep_the_first_ones_states():
    returns, states = rl.run_episodes(lambda obs: np.zeros(len(obs), int), "CartPole-v1",
                                      [1, 2, 3], keep_states=True)
    assert returns.shape == (3,) and (returns > 5).all() and (returns < 100).all()
    assert len(states) == int(returns[0]) + 1  # the start and one state per step
    frames, labels = rl.film_strip(states, frames=4)
    assert frames.shape[0] == len(labels) <= 4 and labels[-1].endswith("(fell)")


@pytest.mark.parametrize("slug", ["dqn", "actor-critic"])
def test_rl_template_builds_checks_and_takes_a_step(slug):
    project = gallery.open_template(slug)
    for graph in project.graphs.values():
        assert validate(graph).valid
    project.recipe.update(TINY)
    state = RunState()
    result = train(project, state=state, epochs=1)
    kinds = [e.kind for e in state.drain()]
    assert kinds.count("batch") >= 1 and "view" in kinds
    assert result.quality["metric"] == "mean_return" and result.quality["value"] >= 8
    assert set(result.models) == set(project.graphs)


def test_live_view_shows_returns_and_frames():
    project = gallery.open_template("dqn")
    project.recipe.update(TINY)
    state = RunState()
    train(project, state=state, epochs=1)
    views = [e.payload["view"] for e in state.drain() if e.kind == "view"]
    last = views[-1]
    kinds = [p["kind"] for p in last["panels"]]
    assert kinds == ["lines", "images"]
    lines = last["panels"][0]["series"]
    assert {s["name"] for s in lines} == {"training episodes", "greedy evaluation (mean)"}
    images = np.asarray(last["panels"][1]["images"])
    assert images.ndim == 4 and images.shape[1:] == (rl.FRAME_H, rl.FRAME_W, 3)


def test_the_returns_plot_keeps_the_whole_run_in_at_most_400_points():
    episodes = [(10 * (i + 1), float(i)) for i in range(1000)]
    steps, rets, k = rl.thinned(episodes)
    assert k == 3 and len(steps) == len(rets) == 334 <= 400
    assert steps[0] == 30 and rets[0] == pytest.approx(1.0)  # the mean of returns 0, 1, 2
    assert steps[-1] == 10_000 and rets[-1] == pytest.approx(999.0)  # the lone last episode
    assert rl.thinned(episodes[:5]) == ([10, 20, 30, 40, 50], [0.0, 1.0, 2.0, 3.0, 4.0], 1)


def test_a_network_that_does_not_fit_the_environment_is_named():
    project = gallery.open_template("dqn")
    project.graph.set_config("q_values", {"units": 3})
    with pytest.raises(TrainingError, match="Q-network gives outputs of shape \\(3,\\)"):
        train(project, epochs=1)
    project.dataset = {"source": "builtin", "name": "digits"}
    with pytest.raises(TrainingError, match="gymnasium environment"):
        train(project, epochs=1)


def test_stop_keeps_the_best_policy_and_reports():
    project = gallery.open_template("actor-critic")
    project.recipe.update(TINY, env_steps_per_epoch=512)
    state, thread = run_in_thread(lambda s: train(project, state=s, epochs=50))
    started = threading.Event()
    while thread.is_alive() and not started.is_set():
        if any(e.kind == "epoch" for e in state.drain()):
            started.set()
        thread.join(0.05)
    state.cancel()
    thread.join(60)
    result = state.result
    assert result.stopped == "stopped" and "best weights" in result.message
    assert result.epochs_run < 50 and "mean_return" in result.metrics


def test_a_film_strip_says_how_an_episode_ended():
    upright = [np.array([0.0, 0, 0, 0])] * 3
    assert rl.film_strip(upright + [np.array([2.5, 0, 0, 0])])[1][-1].endswith("(off the track)")
    assert rl.film_strip(upright, fell=False)[1][-1].endswith("(time limit)")


@pytest.mark.parametrize("tau", [0.0, 0.05])
def test_the_target_network_follows_the_q_network(tau):
    from models.loops import StepReporter
    from models.training import effective_recipe

    project = gallery.open_template("dqn")
    recipe = effective_recipe(project.recipe)
    recipe.update(TINY, env_steps_per_epoch=8, target_tau=tau, target_update_every=4)
    loop = rl.DQNLoop(project, recipe)
    loop.build()
    start = [w.copy() for w in loop.target.get_weights()]
    loop.train_epoch(0, StepReporter(RunState(), 0, 1, loop.steps_per_epoch()))
    assert loop.updates == 4  # two updates after each of the two steps of the four copies
    q, target = loop.q.get_weights(), loop.target.get_weights()
    if tau == 0:  # copied whole after the fourth update
        assert all(np.array_equal(a, b) for a, b in zip(q, target))
    else:  # moved part of the way
        moved = [np.abs(t - s).max() for t, s in zip(target, start)]
        assert max(moved) > 0 and not all(np.array_equal(a, b) for a, b in zip(q, target))
