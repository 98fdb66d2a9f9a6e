"""Reinforcement-learning templates (cheatsheet 7.8): a DQN and an advantage actor-critic on CartPole.

The agents' networks are the projects' graphs; the loops that make them
learn by playing live in :mod:`models.loops.rl`.
"""
from __future__ import annotations

from models.gallery import register
from models.gallery._projects import project_of

CARTPOLE = {"source": "builtin", "name": "gymnasium", "env": "CartPole-v1"}
# What both agents share: how they are judged, and the defaults that do not apply to them.
AGENT_RECIPE = {"eval_episodes": 10, "final_episodes": 20, "gamma": 0.99, "metrics": None,
                "validation_split": None, "quality": {"metric": "mean_return"}}


def _mlp(name: str, inputs: int, outputs: int, activation: str, head: str, head_activation=None,
         width: int = 64):
    from models import backend

    keras = backend.keras()
    L = keras.layers
    x = keras.Input((inputs,), name="state")
    h = L.Dense(width, activation=activation, name="hidden_1")(x)
    h = L.Dense(width, activation=activation, name="hidden_2")(h)
    y = L.Dense(outputs, activation=head_activation, name=head)(h)
    return keras.Model(x, y, name=name)


@register("dqn", "Deep Q-network", "7.8.1",
          "A Q-network learns to balance CartPole from a replay buffer, with a target network.")
def dqn():
    q = _mlp("q_network", 4, 2, "relu", "q_values", width=128)
    return project_of(
        {"q_network": q}, CARTPOLE,
        {"loop": "models.loops.rl:DQNLoop", "loss": "huber",
         "optimizer": {"class_name": "Adam", "config": {"learning_rate": 0.0005, "clipnorm": 10.0}},
         "epochs": 40, "batch_size": 64, "envs": 4, "env_steps_per_epoch": 2500,
         "buffer_size": 50000, "learning_starts": 1000, "updates_per_step": 2,
         "target_tau": 0.005, "epsilon_start": 1.0, "epsilon_end": 0.05, "exploration_steps": 12000,
         **AGENT_RECIPE, "eval_episodes": 20, "quick": {"epochs": 24}},
        {"explanation": (
            "Cheatsheet 7.8.1. The Q-network reads the cart's position and speed and the pole's "
            "angle and spin, and scores both pushes (left, right) by the total reward it expects "
            "from there on; the agent pushes the best-scored way, or at random while it is still "
            "exploring (epsilon falls from 1 to 0.05). Each step it plays goes into a replay "
            "buffer, and each update fits the network on a random batch of old steps towards "
            "reward + 0.99 x the value of the next state. That value comes from a target network, "
            "a copy of the Q-network that trails it slowly (after each update it moves 0.5% of "
            "the way towards it), so the network does not chase its own moving guesses; the "
            "online network picks the next action and the copy scores it (double DQN), which "
            "tempers over-optimism. After each epoch the greedy policy plays 20 episodes; the "
            "best policy is kept and its mean_return is measured on 20 other episodes (500 is a "
            "perfect score). The live view plots the returns and draws the current policy at "
            "work.")},
    )


@register("actor-critic", "Advantage actor-critic", "7.8.2",
          "An actor picks pushes and a critic values states, on 16 CartPole copies side by side.")
def actor_critic():
    actor = _mlp("actor", 4, 2, "tanh", "action_probabilities", "softmax")
    critic = _mlp("critic", 4, 1, "tanh", "value")
    return project_of(
        {"actor": actor, "critic": critic}, CARTPOLE,
        {"loop": "models.loops.rl:ActorCriticLoop", "loss": None,
         "optimizer": {"class_name": "Adam", "config": {"learning_rate": 0.002, "clipnorm": 0.5}},
         "epochs": 30, "batch_size": 256, "envs": 16, "rollout": 16, "env_steps_per_epoch": 8192,
         "gae_lambda": 0.95, "entropy_coef": 0.01, "value_coef": 0.5,
         **AGENT_RECIPE, "quick": {"epochs": 12}},
        {"explanation": (
            "Cheatsheet 7.8.2. Two networks share the work: the actor turns a state into the "
            "probability of each push, and the critic estimates how much reward is still to "
            "come from a state. Sixteen copies of CartPole run side by side; every 16 steps the "
            "loop asks, for each action taken, whether it turned out better than the critic "
            "expected (the advantage, smoothed over several steps with GAE). The actor makes "
            "better-than-expected actions more likely and worse ones less, the critic is "
            "fitted to the returns actually seen, and an entropy bonus keeps the actor from "
            "becoming certain too early, so it keeps trying both pushes. Unlike DQN there is "
            "no replay buffer: each batch is fresh experience of the current policy. The best "
            "greedy policy is kept; mean_return is its average over 20 evaluation episodes "
            "(500 at most).")},
    )
