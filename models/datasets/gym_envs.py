"""Gymnasium environments as the data of the reinforcement-learning templates.

An agent gathers its own experience while it learns, so the data spec
(``{"source": "builtin", "name": "gymnasium", "env": "CartPole-v1"}``) names
the environment the loop plays in (:mod:`models.loops.rl`). Loading it gives
what the Data panel can show: states met under a random policy, with the
random action taken. Its validation and test splits are empty: an agent is
measured by the return it earns, not on held-out rows.
"""
from __future__ import annotations

import numpy as np

from models.data import DataError, Dataset, register_builtin

# Names of the observation's components, for the environments that document them.
FEATURES = {
    "CartPole-v1": ["cart position", "cart velocity", "pole angle", "pole angular velocity"],
    "Acrobot-v1": ["cos θ1", "sin θ1", "cos θ2", "sin θ2", "θ1 velocity", "θ2 velocity"],
    "MountainCar-v0": ["position", "velocity"],
}
ACTIONS = {"CartPole-v1": ["push left", "push right"]}


def load_env_states(seed: int = 0, env: str = "CartPole-v1", n: int = 1000) -> Dataset:
    """``n`` states of ``env`` under a random policy (x) and the action taken in each (y)."""
    import gymnasium as gym

    try:
        e = gym.make(env)
    except gym.error.Error as exc:
        raise DataError(f"gymnasium has no environment {env!r}: {exc}") from None
    if not isinstance(e.action_space, gym.spaces.Discrete) or len(e.observation_space.shape) != 1:
        e.close()
        raise DataError(f"{env}: the RL templates need flat observations and discrete actions")
    e.action_space.seed(seed)
    obs, _ = e.reset(seed=seed)
    xs, ys = [], []
    for _ in range(int(n)):
        a = int(e.action_space.sample())
        xs.append(np.asarray(obs, np.float32))
        ys.append(a)
        obs, _, terminated, truncated, _ = e.step(a)
        if terminated or truncated:
            obs, _ = e.reset()
    k = int(e.action_space.n)
    e.close()
    x = np.stack(xs)
    empty = np.zeros((0,) + x.shape[1:], np.float32)
    return Dataset(x_train=x, y_train=np.asarray(ys, np.int32), x_val=empty,
                   y_val=np.zeros(0, np.int32), x_test=empty, y_test=np.zeros(0, np.int32),
                   task="classification", class_names=ACTIONS.get(env, [f"action {i}" for i in range(k)]),
                   feature_names=FEATURES.get(env), name=f"gymnasium:{env}", target_name="action",
                   notes=[f"{env} from gymnasium: the agent gathers its own experience while it "
                          f"trains; shown are {len(xs)} states met under a random policy, with "
                          "the random action taken",
                          "no validation or test rows: the agent is measured by the return of "
                          "its greedy policy over evaluation episodes"])


register_builtin("gymnasium", task="classification", shape=(4,), classes=2,
                 description='a gymnasium environment for the RL templates ("env": '
                             '"CartPole-v1" by default): states met under a random policy',
                 load=load_env_states)
