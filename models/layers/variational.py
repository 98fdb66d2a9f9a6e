"""The variational auto-encoder's pieces: the reparameterization trick and its KL term."""
from __future__ import annotations

import keras
from keras import ops


def gaussian_kl(z_mean, z_log_var):
    """KL(N(mean, exp(log_var)) || N(0, I)), summed over the latent axis, averaged over the batch.

    Args:
        z_mean: the encoder's means, ``(batch, latent)``.
        z_log_var: the encoder's log-variances, same shape.

    Returns:
        A scalar tensor (nats per sample).
    """
    per_sample = -0.5 * ops.sum(1.0 + z_log_var - ops.square(z_mean) - ops.exp(z_log_var), axis=-1)
    return ops.mean(per_sample)


@keras.saving.register_keras_serializable(package="layerforge")
class Sampling(keras.layers.Layer):
    """Draws a latent code z = mean + exp(log_var / 2) * noise, the reparameterization trick.

    The noise is the only random part, so gradients flow through the mean and
    the log-variance. While training, the layer adds ``kl_weight`` times the
    KL divergence of N(mean, var) from N(0, I) to its losses (the term that
    keeps the latent space a smooth, sampleable ball); outside training it
    returns the mean, so reconstructions are deterministic.

    Args:
        kl_weight: the weight of the KL term in the model's loss (0 adds none;
            below 1 trades a tidier latent space for sharper reconstructions).
        seed: seeds the noise (None: a fresh seed each build).

    Call arguments:
        inputs: ``[z_mean, z_log_var]``, two tensors of shape ``(batch, latent)``.
        training: sample (True) or return the mean (False).
    """

    def __init__(self, kl_weight: float = 1.0, seed: int | None = None, **kwargs):
        super().__init__(**kwargs)
        self.kl_weight = float(kl_weight)
        self.seed = seed
        self.seed_generator = keras.random.SeedGenerator(seed)

    def call(self, inputs, training=None):
        z_mean, z_log_var = inputs
        if not training:
            return z_mean
        if self.kl_weight:
            self.add_loss(self.kl_weight * gaussian_kl(z_mean, z_log_var))
        noise = keras.random.normal(ops.shape(z_mean), seed=self.seed_generator)
        return z_mean + ops.exp(0.5 * z_log_var) * noise

    def compute_output_shape(self, input_shape):
        return tuple(input_shape[0])

    def get_config(self):
        config = super().get_config()
        config.update({"kl_weight": self.kl_weight, "seed": self.seed})
        return config
