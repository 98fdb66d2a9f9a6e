"""Mixture of experts: a gate sends each sample to its top-k experts, a balancing loss keeps all of them busy."""
from __future__ import annotations

import keras
import numpy as np
from keras import ops


@keras.saving.register_keras_serializable(package="layerforge")
class MixtureOfExperts(keras.layers.Layer):
    """Top-k mixture of experts: a learned gate routes each sample to a few of several dense experts.

    It sends each sample to ``top_k`` of ``num_experts`` experts. Each expert is a dense layer ``activation(x W_e + b_e)`` with ``units``
    outputs. The gate scores the experts with ``x W_g`` (plus Gaussian noise
    of ``noise_stddev`` while training, so untried experts still get picked
    now and then), keeps the ``top_k`` best, and softmaxes their scores into
    mixing weights; the other experts get weight 0. The output is the
    weighted sum of the chosen experts' outputs.

    A gate left alone tends to collapse onto a few experts. The layer adds a
    load-balancing loss (``add_loss``, as in the Switch Transformer):
    ``balance_weight * num_experts * sum_e share_e * mean_prob_e``, where
    ``share_e`` is the share of the routing slots expert ``e`` took in the
    batch and ``mean_prob_e`` its mean gate probability; it is smallest when
    both are even.

    Every expert is computed for every sample and multiplied by its (mostly
    zero) weight: simple and fast for small layers; large models dispatch only
    the chosen samples to each expert instead.

    Called with ``return_gates=True`` it also returns the mixing weights,
    ``[..., num_experts]``; :func:`expert_usage` turns them into the share of
    samples each expert takes.

    Args:
        num_experts: how many experts.
        units: each expert's output width (and the layer's).
        top_k: how many experts each sample goes to.
        activation: the experts' activation.
        balance_weight: the weight of the load-balancing loss (0 turns it off).
        noise_stddev: the gate noise while training.
    """

    def __init__(self, num_experts: int = 4, units: int = 32, top_k: int = 2, activation="relu",
                 balance_weight: float = 0.1, noise_stddev: float = 1.0,
                 kernel_initializer="glorot_uniform", bias_initializer="zeros",
                 seed: int | None = None, **kwargs):
        super().__init__(**kwargs)
        if int(num_experts) < 1 or int(units) < 1:
            raise ValueError(f"MixtureOfExperts needs at least 1 expert and 1 unit; got "
                             f"{num_experts} experts of {units} units")
        if not 1 <= int(top_k) <= int(num_experts):
            raise ValueError(f"MixtureOfExperts top_k must be between 1 and num_experts "
                             f"({num_experts}); got {top_k}")
        if float(balance_weight) < 0 or float(noise_stddev) < 0:
            raise ValueError("MixtureOfExperts balance_weight and noise_stddev cannot be negative")
        self.num_experts = int(num_experts)
        self.units = int(units)
        self.top_k = int(top_k)
        self.activation = keras.activations.get(activation)
        self.balance_weight = float(balance_weight)
        self.noise_stddev = float(noise_stddev)
        self.kernel_initializer = keras.initializers.get(kernel_initializer)
        self.bias_initializer = keras.initializers.get(bias_initializer)
        self.seed = seed
        self.seed_generator = keras.random.SeedGenerator(seed)

    def build(self, input_shape):
        width = input_shape[-1]
        if width is None:
            raise ValueError("MixtureOfExperts: the width of the input (last axis) must be known")
        e, d = self.num_experts, int(width)
        self.gate_kernel = self.add_weight(name="gate_kernel", shape=(d, e),
                                           initializer=self.kernel_initializer)
        self.expert_kernel = self.add_weight(name="expert_kernel", shape=(e, d, self.units),
                                             initializer=self.kernel_initializer)
        self.expert_bias = self.add_weight(name="expert_bias", shape=(e, self.units),
                                           initializer=self.bias_initializer)

    def _route(self, inputs, training):
        """(mixing weights, routing mask, gate probabilities), each ``[..., num_experts]``."""
        logits = ops.matmul(inputs, self.gate_kernel)
        if training and self.noise_stddev > 0:
            logits = logits + self.noise_stddev * keras.random.normal(
                ops.shape(logits), dtype=logits.dtype, seed=self.seed_generator)
        kth = ops.top_k(logits, self.top_k, sorted=True)[0][..., -1:]
        chosen = logits >= kth  # ties at the k-th score are rare with real-valued scores
        kept = ops.where(chosen, logits, ops.full_like(logits, -1e9))
        return ops.softmax(kept, axis=-1), ops.cast(chosen, logits.dtype), ops.softmax(logits, -1)

    def call(self, inputs, training=None, return_gates: bool = False):
        gates, chosen, probs = self._route(inputs, training)
        outputs = self.activation(ops.einsum("...d,edu->...eu", inputs, self.expert_kernel)
                                  + self.expert_bias)
        mixed = ops.einsum("...e,...eu->...u", gates, outputs)
        if self.balance_weight > 0:
            flat = (-1, self.num_experts)
            share = ops.mean(ops.reshape(chosen, flat), axis=0) / self.top_k
            mean_prob = ops.mean(ops.reshape(probs, flat), axis=0)
            self.add_loss(self.balance_weight * self.num_experts * ops.sum(share * mean_prob))
        if return_gates:
            return mixed, gates
        return mixed

    def get_config(self):
        config = super().get_config()
        config.update({
            "num_experts": self.num_experts,
            "units": self.units,
            "top_k": self.top_k,
            "activation": keras.activations.serialize(self.activation),
            "balance_weight": self.balance_weight,
            "noise_stddev": self.noise_stddev,
            "kernel_initializer": keras.initializers.serialize(self.kernel_initializer),
            "bias_initializer": keras.initializers.serialize(self.bias_initializer),
            "seed": self.seed,
        })
        return config


def expert_usage(model, x, batch_size: int = 256) -> dict[str, dict]:
    """How a model's mixture-of-experts layers route the samples ``x``.

    Args:
        model: a built functional ``keras.Model``.
        x: inputs as the model takes them.
        batch_size: the batch size for computing each layer's inputs.

    Returns:
        For each :class:`MixtureOfExperts` layer (by name, in model order):
        ``share`` (a float array ``[num_experts]``, the share of the routing
        slots each expert took; it sums to 1, and with ``top_k = 1`` it is the
        share of the samples) and ``chosen`` (a bool array
        ``[samples, num_experts]``: which experts each sample went to).
    """
    found = {}
    for layer in model.layers:
        if not isinstance(layer, MixtureOfExperts):
            continue
        probe = keras.Model(model.inputs, layer.input)
        inputs = probe.predict(x, batch_size=batch_size, verbose=0)
        _, gates = layer(inputs, training=False, return_gates=True)
        chosen = np.asarray(gates).reshape(-1, layer.num_experts) > 0
        share = chosen.sum(axis=0) / max(1, chosen.sum())
        found[layer.name] = {"share": share.astype(np.float64), "chosen": chosen}
    return found


__all__ = ["MixtureOfExperts", "expert_usage"]
