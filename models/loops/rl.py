"""Reinforcement learning on gymnasium environments: a DQN loop and an advantage actor-critic loop.

The networks are the project's graphs (a Q-network, or an actor and a
critic), so they can be edited like any model; the environment is the
project's data spec ``{"source": "builtin", "name": "gymnasium", "env":
"CartPole-v1"}`` (see :mod:`models.datasets.gym_envs`). Both loops run
several copies of the environment side by side (gymnasium's
``SyncVectorEnv``), report one step per gradient update to the driver (so
pause, resume and stop work as for any loop), and after each epoch play a
few greedy evaluation episodes on fixed seeds. The policy with the best
evaluation is kept; the final ``mean_return`` is measured on other seeds.

The live view shows the episode returns and a strip of frames of the
current policy balancing the pole, drawn here from the observed state
(cart position and pole angle) without pygame.
"""
from __future__ import annotations

import math

import numpy as np

from models.loops import Loop

# Frames of the cart and pole are drawn on this grid (pixels). The track ends at
# +-2.4 (where an episode stops); the frame shows a little beyond, so a cart
# that runs off stays in view.
FRAME_H, FRAME_W = 60, 120
_TRACK_HALF = 2.4
_VIEW_HALF = 3.0
_SKY = np.array([1.0, 1.0, 1.0])
_CART = np.array([0.20, 0.25, 0.35])
_POLE = np.array([0.80, 0.60, 0.40])
_FALLEN = np.array([0.84, 0.15, 0.16])
_AXLE = np.array([0.50, 0.50, 0.80])


def _training_error(message: str):
    from models.training import TrainingError

    return TrainingError(message)


def env_id_of(project) -> str:
    """The gymnasium environment a project trains in (its data spec's ``env``)."""
    spec = project.dataset or {}
    if spec.get("name") != "gymnasium":
        raise _training_error(
            "a reinforcement-learning template learns in a gymnasium environment: set its data "
            'to {"source": "builtin", "name": "gymnasium", "env": "CartPole-v1"}')
    return str(spec.get("env", "CartPole-v1"))


def make_envs(env_id: str, n: int):
    """``n`` copies of ``env_id`` stepped together; a finished copy restarts in the same step."""
    import gymnasium as gym
    from gymnasium.vector import AutoresetMode, SyncVectorEnv

    try:
        envs = SyncVectorEnv([lambda: gym.make(env_id) for _ in range(n)],
                             autoreset_mode=AutoresetMode.SAME_STEP)
    except gym.error.Error as exc:
        raise _training_error(f"gymnasium cannot make the environment {env_id!r}: {exc}") from None
    if not isinstance(envs.single_action_space, gym.spaces.Discrete):
        envs.close()
        raise _training_error(f"{env_id} has continuous actions; these loops pick one of a few "
                              "discrete actions (try CartPole-v1 or Acrobot-v1)")
    return envs


def check_network(model, what: str, obs_dim: int, out_dim: int, env_id: str) -> None:
    """A clear message when a graph does not fit the environment (after an edit, say)."""
    got_in = tuple(model.inputs[0].shape[1:])
    got_out = tuple(model.outputs[0].shape[1:])
    if got_in != (obs_dim,):
        raise _training_error(f"the {what} takes inputs of shape {got_in}, but {env_id} "
                              f"observations have shape ({obs_dim},): adapt its Input layer")
    if got_out != (out_dim,):
        raise _training_error(f"the {what} gives outputs of shape {got_out}; it should give "
                              f"{out_dim} values per state for {env_id}: adapt its last layer")


def run_episodes(act, env_id: str, seeds, keep_states: bool = False):
    """Play one episode per seed with ``act(observations) -> actions``, all side by side.

    Returns:
        ``(returns, states)``: each episode's total reward, and (when
        ``keep_states``) the states of the first episode, in order.
    """
    import gymnasium as gym

    envs = [gym.make(env_id) for _ in seeds]
    obs = np.stack([e.reset(seed=int(s))[0] for e, s in zip(envs, seeds)]).astype(np.float32)
    alive = np.ones(len(envs), bool)
    returns = np.zeros(len(envs))
    states = [obs[0].copy()] if keep_states else []
    while alive.any():
        idx = np.flatnonzero(alive)
        actions = act(obs[idx])
        for i, a in zip(idx, actions):
            o, r, terminated, truncated, _ = envs[i].step(int(a))
            obs[i] = o
            returns[i] += r
            if terminated or truncated:
                alive[i] = False
            if keep_states and i == 0:
                states.append(np.asarray(o, np.float32))
    for e in envs:
        e.close()
    return returns, states


def draw_cartpole(state, fallen: bool = False) -> np.ndarray:
    """An RGB frame ``[FRAME_H, FRAME_W, 3]`` of CartPole from its state (x, x', theta, theta')."""
    x, theta = float(state[0]), float(state[2])
    img = np.ones((FRAME_H, FRAME_W, 3)) * _SKY
    scale = FRAME_W / (2 * _VIEW_HALF)
    track_y = int(FRAME_H * 0.78)
    ends = [int(round(FRAME_W / 2 + side * _TRACK_HALF * scale)) for side in (-1, 1)]
    img[track_y, ends[0]:ends[1] + 1] = 0.0
    for e in ends:  # posts where the track ends
        img[track_y - 4:track_y + 1, min(e, FRAME_W - 1)] = 0.0
    cx = FRAME_W / 2 + x * scale
    cart_w, cart_h = 0.4 * scale, 0.24 * scale  # gymnasium draws the cart 50x30 on 600 px
    x0, x1 = int(round(cx - cart_w / 2)), int(round(cx + cart_w / 2))
    y0, y1 = int(round(track_y - cart_h)), track_y
    img[max(0, y0):y1, max(0, x0):max(0, min(FRAME_W, x1))] = _CART
    # The pole (length 1 world unit, as drawn by gymnasium) leaves the cart's top.
    length = 1.0 * scale
    ys, xs = np.mgrid[0:FRAME_H, 0:FRAME_W]
    px, py = cx, float(y0)
    tx, ty = px + math.sin(theta) * length, py - math.cos(theta) * length
    dx, dy = tx - px, ty - py
    t = np.clip(((xs - px) * dx + (ys - py) * dy) / (dx * dx + dy * dy), 0.0, 1.0)
    dist = np.hypot(xs - (px + t * dx), ys - (py + t * dy))
    img[dist <= 1.3] = _FALLEN if fallen else _POLE
    img[np.hypot(xs - px, ys - py) <= 1.5] = _AXLE
    return img


def thinned(episodes: list, most: int = 400) -> tuple[list, list, int]:
    """The whole run's (step, return) pairs in at most ``most`` points.

    Each point is the mean return of ``k`` episodes in a row, at the step the
    last of them ended; returns the steps, the returns and ``k``.
    """
    k = max(1, -(-len(episodes) // most))
    steps = [episodes[min(i + k, len(episodes)) - 1][0] for i in range(0, len(episodes), k)]
    rets = [float(np.mean([r for _, r in episodes[i:i + k]])) for i in range(0, len(episodes), k)]
    return steps, rets, k


def film_strip(states, frames: int = 6, fell: bool = True) -> tuple[np.ndarray, list[str]]:
    """Frames evenly spread over an episode (the last one included) and their captions."""
    n = len(states)
    picks = sorted(set(np.linspace(0, n - 1, min(frames, n)).round().astype(int).tolist()))
    images = [draw_cartpole(states[i], fallen=fell and i == n - 1) for i in picks]
    labels = [f"step {i}" for i in picks]
    if not fell:
        labels[-1] += " (time limit)"
    else:
        labels[-1] += " (off the track)" if abs(float(states[-1][0])) > _TRACK_HALF else " (fell)"
    return np.stack(images), labels


class ReplayBuffer:
    """A ring of the last ``capacity`` transitions, sampled uniformly."""

    def __init__(self, capacity: int, obs_dim: int):
        self.obs = np.zeros((capacity, obs_dim), np.float32)
        self.next_obs = np.zeros((capacity, obs_dim), np.float32)
        self.actions = np.zeros(capacity, np.int32)
        self.rewards = np.zeros(capacity, np.float32)
        self.ends = np.zeros(capacity, np.float32)  # 1 where the episode truly ended (not cut off)
        self.capacity, self.size, self._next = capacity, 0, 0

    def add(self, obs, actions, rewards, next_obs, ends) -> None:
        for k in range(len(actions)):
            i = self._next
            self.obs[i], self.next_obs[i] = obs[k], next_obs[k]
            self.actions[i], self.rewards[i], self.ends[i] = actions[k], rewards[k], ends[k]
            self._next = (i + 1) % self.capacity
            self.size = min(self.size + 1, self.capacity)

    def sample(self, rng: np.random.Generator, n: int):
        idx = rng.integers(0, self.size, n)
        return self.obs[idx], self.actions[idx], self.rewards[idx], self.next_obs[idx], self.ends[idx]


class _RLLoop(Loop):
    """What both agents share: environments, episode bookkeeping, evaluation and the live view.

    Recipe keys: ``envs`` (copies side by side), ``env_steps_per_epoch``,
    ``gamma``, ``eval_episodes`` (per epoch, for keeping the best policy),
    ``final_episodes`` (for ``mean_return``), ``seed``.
    """

    monitor, monitor_mode = "eval_return", "max"  # stop keeps the best greedy policy

    def build(self) -> None:
        from models import backend

        super().build()
        r = self.recipe
        self.seed = int(r.get("seed", 0))
        backend.keras().utils.set_random_seed(self.seed)
        self.rng = np.random.default_rng(self.seed)
        self.env_id = env_id_of(self.project)
        self.n_envs = int(r.get("envs", 4))
        self.envs = make_envs(self.env_id, self.n_envs)
        self.obs_dim = int(np.prod(self.envs.single_observation_space.shape))
        self.n_actions = int(self.envs.single_action_space.n)
        spec = self.envs.envs[0].spec
        self.max_return = float(spec.max_episode_steps or 500) if spec else 500.0
        self.obs, _ = self.envs.reset(seed=[self.seed * 1000 + i for i in range(self.n_envs)])
        self.obs = self.obs.astype(np.float32)
        self.ep_return = np.zeros(self.n_envs)
        self.env_steps = 0
        self.episodes: list[tuple[int, float]] = []  # (env step at its end, return)
        self.evals: list[tuple[int, float]] = []     # (env step, mean greedy return)
        self.best_return, self.best_weights = -math.inf, None
        self.eval_episodes = int(r.get("eval_episodes", 10))
        self.final_episodes = int(r.get("final_episodes", 20))
        self.gamma = float(r.get("gamma", 0.99))

    def _env_step(self, actions):
        """Step every copy; returns (rewards, next states for learning, terminated, truncated)."""
        obs, rewards, terminated, truncated, info = self.envs.step(actions)
        next_obs = obs.astype(np.float32).copy()
        done = terminated | truncated
        for i in np.flatnonzero(done):
            next_obs[i] = info["final_obs"][i]  # the state the step led to, before the restart
            self.episodes.append((self.env_steps + i + 1, float(self.ep_return[i] + rewards[i])))
        self.ep_return = np.where(done, 0.0, self.ep_return + rewards)
        self.env_steps += self.n_envs
        self.obs = obs.astype(np.float32)
        return rewards.astype(np.float32), next_obs, terminated, truncated

    def greedy_actions(self, obs) -> np.ndarray:
        raise NotImplementedError

    def _epoch_logs(self, losses: list[float], first_episode: int, extra: dict) -> dict:
        """Evaluate the greedy policy on fixed seeds; keep the best one seen."""
        returns, _ = run_episodes(self.greedy_actions, self.env_id,
                                  [10_000 + k for k in range(self.eval_episodes)])
        mean = float(returns.mean())
        self.evals.append((self.env_steps, mean))
        if mean > self.best_return:
            self.best_return, self.best_weights = mean, self.get_weights()
        recent = [ret for _, ret in self.episodes[first_episode:]]
        return {"loss": float(np.mean(losses)) if losses else 0.0,
                "train_return": float(np.mean(recent)) if recent else 0.0,
                "eval_return": mean, **extra}

    def evaluate(self) -> dict[str, float]:
        """``mean_return`` of the kept policy over ``final_episodes`` fresh seeds."""
        if self.best_weights is not None:
            self.set_weights(self.best_weights)
        returns, _ = run_episodes(self.greedy_actions, self.env_id,
                                  [20_000 + k for k in range(self.final_episodes)])
        self.envs.close()
        return {"mean_return": float(returns.mean()), "min_return": float(returns.min()),
                "best_eval_return": float(self.best_return)}

    def live_view(self) -> dict:
        from models import views

        returns, states = run_episodes(self.greedy_actions, self.env_id, [30_000], keep_states=True)
        fell = returns[0] < self.max_return
        frames, labels = film_strip(states, fell=fell)
        lines = []
        if self.episodes:
            steps, rets, k = thinned(self.episodes)
            name = "training episodes" if k == 1 else f"training episodes (mean of {k})"
            lines.append(views.line(name, steps, rets))
        if self.evals:
            steps, rets = zip(*self.evals)
            lines.append(views.line("greedy evaluation (mean)", steps, rets))
        return views.view(
            "Agent",
            views.lines_panel(f"Episode returns ({len(self.episodes)} episodes so far)", *lines,
                              x_title=f"{self.env_id} steps", y_title="return"),
            views.images_panel(frames, f"Current policy: {int(returns[0])} steps balanced",
                               labels=labels, columns=3))


class DQNLoop(_RLLoop):
    """Deep Q-learning: replay buffer, target network, epsilon-greedy exploration, double-DQN targets.

    Recipe keys (besides :class:`_RLLoop`'s): ``buffer_size``, ``learning_starts``
    (random transitions gathered before learning), ``batch_size``,
    ``updates_per_step`` (gradient updates after each step of the copies),
    ``target_update_every`` (gradient steps between copies to the target
    network) or ``target_tau`` (instead: the share of the online weights
    blended into the target after every update), ``epsilon_start``,
    ``epsilon_end``, ``exploration_steps``.
    """

    def build(self) -> None:
        from models import backend
        from models.training import make_optimizer

        super().build()
        tf, keras = backend.tf(), backend.keras()
        r = self.recipe
        self.q = next(iter(self.models.values()))
        check_network(self.q, "Q-network", self.obs_dim, self.n_actions, self.env_id)
        # The target network is a frozen copy of the same graph, refreshed every few steps.
        self.target = self.project.build(self.project.main_name, with_weights=False)
        self.target.set_weights(self.q.get_weights())
        self.optimizer = make_optimizer(r)
        self.batch = int(r.get("batch_size", 64))
        self.target_every = int(r.get("target_update_every", 250))
        self.tau = float(r.get("target_tau", 0.0))
        self.updates_per_step = max(1, int(r.get("updates_per_step", 1)))
        self.eps = (float(r.get("epsilon_start", 1.0)), float(r.get("epsilon_end", 0.05)),
                    float(r.get("exploration_steps", 10_000)))
        self.buffer = ReplayBuffer(int(r.get("buffer_size", 50_000)), self.obs_dim)
        self.updates = 0
        huber = keras.losses.Huber()
        spec = tf.TensorSpec([None, self.obs_dim], tf.float32)
        self._q_values = tf.function(lambda s: self.q(s, training=False), input_signature=[spec])
        q, target, gamma, optimizer, n_actions = self.q, self.target, self.gamma, self.optimizer, self.n_actions
        tau = self.tau

        @tf.function
        def train_step(s, a, rew, s2, end):
            # Double DQN: the online network picks the next action, the target network values it.
            best_next = tf.argmax(q(s2, training=False), axis=1)
            next_q = tf.reduce_sum(target(s2, training=False) * tf.one_hot(best_next, n_actions), 1)
            y = rew + gamma * (1.0 - end) * next_q
            with tf.GradientTape() as tape:
                taken = tf.reduce_sum(q(s, training=True) * tf.one_hot(a, n_actions), 1)
                loss = huber(tf.stop_gradient(y), taken)
            grads = tape.gradient(loss, q.trainable_variables)
            optimizer.apply(grads, q.trainable_variables)
            if tau > 0:  # the target drifts a little towards the online network every update
                for t_var, q_var in zip(target.trainable_variables, q.trainable_variables):
                    t_var.assign((1.0 - tau) * t_var + tau * q_var)
            return loss

        self._train_step = train_step
        for _ in range(max(1, int(r.get("learning_starts", 1000)) // self.n_envs)):
            self._collect(epsilon=1.0)

    def steps_per_epoch(self) -> int:
        """Gradient updates per epoch (``updates_per_step`` after each step of every copy)."""
        steps = max(1, int(self.recipe.get("env_steps_per_epoch", 2500)) // self.n_envs)
        return steps * self.updates_per_step

    def epsilon(self) -> float:
        start, end, span = self.eps
        return end + (start - end) * max(0.0, 1.0 - self.env_steps / max(1.0, span))

    def greedy_actions(self, obs) -> np.ndarray:
        return np.argmax(self._q_values(np.asarray(obs, np.float32)).numpy(), axis=1)

    def _collect(self, epsilon: float) -> None:
        obs = self.obs
        actions = self.greedy_actions(obs) if epsilon < 1.0 else np.zeros(self.n_envs, int)
        explore = self.rng.random(self.n_envs) < epsilon
        actions = np.where(explore, self.rng.integers(0, self.n_actions, self.n_envs), actions)
        rewards, next_obs, terminated, _ = self._env_step(actions)
        # A cut-off episode (time limit) did not end: its next state is still worth something.
        self.buffer.add(obs, actions, rewards, next_obs, terminated.astype(np.float32))

    def train_epoch(self, epoch: int, step) -> dict[str, float]:
        first, losses = len(self.episodes), []
        for _ in range(self.steps_per_epoch()):
            if self.updates % self.updates_per_step == 0:
                self._collect(self.epsilon())
            loss = float(self._train_step(*self.buffer.sample(self.rng, self.batch)))
            self.updates += 1
            if self.tau <= 0 and self.updates % self.target_every == 0:
                self.target.set_weights(self.q.get_weights())
            losses.append(loss)
            step(loss)
        return self._epoch_logs(losses, first, {"epsilon": self.epsilon()})


class ActorCriticLoop(_RLLoop):
    """Advantage actor-critic (A2C): short rollouts from parallel copies, GAE advantages, entropy bonus.

    Recipe keys (besides :class:`_RLLoop`'s): ``rollout`` (steps per copy
    between updates), ``gae_lambda``, ``entropy_coef``, ``value_coef``.
    The project's first graph is the actor (action probabilities), the
    second the critic (one value per state). The policy-gradient term has no
    meaningful level (it is a surrogate, often negative), so the loss the
    loop reports is the critic's squared error.
    """

    def build(self) -> None:
        from models import backend
        from models.training import make_optimizer

        super().build()
        tf = backend.tf()
        r = self.recipe
        if len(self.models) != 2:
            raise _training_error("an actor-critic project holds two graphs, the actor and the "
                                  f"critic; this one holds {len(self.models)}")
        self.actor, self.critic = self.models.values()
        check_network(self.actor, "actor", self.obs_dim, self.n_actions, self.env_id)
        check_network(self.critic, "critic", self.obs_dim, 1, self.env_id)
        self.rollout = int(r.get("rollout", 16))
        self.lam = float(r.get("gae_lambda", 0.95))
        ent_coef, val_coef = float(r.get("entropy_coef", 0.01)), float(r.get("value_coef", 0.5))
        self.optimizer = make_optimizer(r)
        spec = tf.TensorSpec([None, self.obs_dim], tf.float32)
        actor, critic, optimizer = self.actor, self.critic, self.optimizer
        self._probs = tf.function(lambda s: actor(s, training=False), input_signature=[spec])
        self._values = tf.function(lambda s: critic(s, training=False)[:, 0], input_signature=[spec])
        variables = actor.trainable_variables + critic.trainable_variables
        self.entropy = 0.0

        @tf.function
        def train_step(s, a, adv, ret):
            with tf.GradientTape() as tape:
                probs = tf.clip_by_value(actor(s, training=True), 1e-7, 1.0)
                logp = tf.math.log(probs)
                taken = tf.reduce_sum(logp * tf.one_hot(a, tf.shape(probs)[1]), 1)
                entropy = -tf.reduce_mean(tf.reduce_sum(probs * logp, 1))
                policy_loss = -tf.reduce_mean(taken * adv)
                value_loss = tf.reduce_mean(tf.square(ret - critic(s, training=True)[:, 0]))
                loss = policy_loss + val_coef * value_loss - ent_coef * entropy
            grads = tape.gradient(loss, variables)
            optimizer.apply(grads, variables)
            return value_loss, entropy

        self._train_step = train_step

    def steps_per_epoch(self) -> int:
        per_update = self.rollout * self.n_envs
        return max(1, int(self.recipe.get("env_steps_per_epoch", 4096)) // per_update)

    def greedy_actions(self, obs) -> np.ndarray:
        return np.argmax(self._probs(np.asarray(obs, np.float32)).numpy(), axis=1)

    def _sample_actions(self, obs) -> np.ndarray:
        probs = self._probs(obs).numpy().astype(np.float64)
        cum = np.cumsum(probs / probs.sum(1, keepdims=True), axis=1)
        return (self.rng.random((len(obs), 1)) > cum[:, :-1]).sum(1)

    def _update(self):
        T, N = self.rollout, self.n_envs
        obs = np.zeros((T, N, self.obs_dim), np.float32)
        actions = np.zeros((T, N), np.int32)
        rewards = np.zeros((T, N), np.float32)
        ends = np.zeros((T, N), np.float32)        # the episode ended here: no future
        cut_value = np.zeros((T, N), np.float32)   # cut off by the time limit: its state's value
        for t in range(T):
            obs[t] = self.obs
            actions[t] = self._sample_actions(self.obs)
            rewards[t], next_obs, terminated, truncated = self._env_step(actions[t])
            ends[t] = terminated | truncated
            cut = np.flatnonzero(truncated & ~terminated)
            if cut.size:
                cut_value[t, cut] = self._values(next_obs[cut]).numpy()
        values = self._values(obs.reshape(T * N, -1)).numpy().reshape(T, N)
        last = self._values(self.obs).numpy()
        # Generalized advantage estimation, backwards through the rollout.
        adv = np.zeros((T, N), np.float32)
        running = np.zeros(N, np.float32)
        for t in reversed(range(T)):
            next_value = last if t == T - 1 else values[t + 1]
            target = rewards[t] + self.gamma * np.where(ends[t] > 0, cut_value[t], next_value)
            delta = target - values[t]
            running = delta + self.gamma * self.lam * (1.0 - ends[t]) * running
            adv[t] = running
        returns = adv + values
        adv = (adv - adv.mean()) / (adv.std() + 1e-8)
        loss, entropy = self._train_step(obs.reshape(T * N, -1), actions.ravel(), adv.ravel(),
                                         returns.ravel())
        self.entropy = float(entropy)
        return float(loss)

    def train_epoch(self, epoch: int, step) -> dict[str, float]:
        first, losses = len(self.episodes), []
        for _ in range(self.steps_per_epoch()):
            loss = self._update()
            losses.append(loss)
            step(loss)
        return self._epoch_logs(losses, first, {"entropy": self.entropy})


__all__ = ["DQNLoop", "ActorCriticLoop", "ReplayBuffer", "run_episodes", "draw_cartpole",
           "film_strip", "make_envs", "env_id_of"]
