"""The restricted Boltzmann machine, trained by contrastive divergence (the DBN's building block)."""
from __future__ import annotations

import keras
from keras import ops


@keras.saving.register_keras_serializable(package="layerforge")
class RBM(keras.layers.Layer):
    """A restricted Boltzmann machine with binary units; called, it gives P(hidden = 1 | visible).

    Visible and hidden units are joined by one weight matrix and have a bias
    each; there are no links within a layer, so every hidden unit is
    independent given the visible ones (and the other way round), and one
    Gibbs step samples a whole layer at once. :meth:`contrastive_divergence`
    trains it without labels: it raises the probability of the data and
    lowers that of the model's own reconstructions after ``cd_steps`` Gibbs
    steps. Stacked, each RBM trained on the hidden probabilities of the one
    below, RBMs make a deep belief network; the stack then starts a
    classifier that back-propagation fine-tunes.

    Args:
        units: the number of hidden units.
        cd_steps: Gibbs steps per contrastive-divergence update (CD-k).
        learning_rate: the step size of contrastive divergence.
        seed: seeds the Gibbs sampling (None: a fresh seed each build).
    """

    def __init__(self, units: int = 64, cd_steps: int = 1, learning_rate: float = 0.05,
                 seed: int | None = None, **kwargs):
        super().__init__(**kwargs)
        if int(units) < 1:
            raise ValueError(f"an RBM needs at least one hidden unit; got units={units}")
        if int(cd_steps) < 1:
            raise ValueError(f"contrastive divergence needs at least one Gibbs step; got cd_steps={cd_steps}")
        self.units = int(units)
        self.cd_steps = int(cd_steps)
        self.learning_rate = float(learning_rate)
        self.seed = seed
        self.seed_generator = keras.random.SeedGenerator(seed)

    def build(self, input_shape):
        visible = int(input_shape[-1])
        self.kernel = self.add_weight(shape=(visible, self.units), name="kernel",
                                      initializer=keras.initializers.RandomNormal(stddev=0.01,
                                                                                  seed=self.seed))
        self.hidden_bias = self.add_weight(shape=(self.units,), name="hidden_bias",
                                           initializer="zeros")
        self.visible_bias = self.add_weight(shape=(visible,), name="visible_bias",
                                            initializer="zeros")

    def call(self, inputs):
        return self.hidden_probabilities(inputs)

    def hidden_probabilities(self, visible):
        return ops.sigmoid(ops.matmul(visible, self.kernel) + self.hidden_bias)

    def visible_probabilities(self, hidden):
        return ops.sigmoid(ops.matmul(hidden, ops.transpose(self.kernel)) + self.visible_bias)

    def _sample(self, probabilities):
        draw = keras.random.uniform(ops.shape(probabilities), seed=self.seed_generator)
        return ops.cast(draw < probabilities, probabilities.dtype)

    def gibbs_step(self, visible):
        """One visible -> hidden -> visible round trip; returns (visible sample, its probabilities)."""
        hidden = self._sample(self.hidden_probabilities(visible))
        probabilities = self.visible_probabilities(hidden)
        return self._sample(probabilities), probabilities

    def contrastive_divergence(self, visible):
        """One CD-k update on a batch of visible vectors; returns the reconstruction error.

        The update is the difference between the data's correlations of
        visible and hidden units and those after ``cd_steps`` Gibbs steps
        (hidden probabilities on both sides, which lowers the variance).
        The reconstruction error is the mean squared difference between the
        batch and its first-step visible probabilities.
        """
        visible = ops.convert_to_tensor(visible, dtype=self.kernel.dtype)
        h_data = self.hidden_probabilities(visible)
        hidden = self._sample(h_data)
        first = None
        for _ in range(self.cd_steps):
            v_model = self.visible_probabilities(hidden)  # mean-field visible units, as usual for CD
            h_model = self.hidden_probabilities(v_model)
            hidden = self._sample(h_model)
            first = v_model if first is None else first
        n = ops.cast(ops.shape(visible)[0], self.kernel.dtype)
        positive = ops.matmul(ops.transpose(visible), h_data)
        negative = ops.matmul(ops.transpose(v_model), h_model)
        rate = self.learning_rate
        self.kernel.assign_add(rate * (positive - negative) / n)
        self.hidden_bias.assign_add(rate * ops.mean(h_data - h_model, axis=0))
        self.visible_bias.assign_add(rate * ops.mean(visible - v_model, axis=0))
        return ops.mean(ops.square(visible - first))

    def free_energy(self, visible):
        """F(v) = -v.b - sum log(1 + exp(v W + c)): lower for likelier vectors."""
        pre = ops.matmul(visible, self.kernel) + self.hidden_bias
        return -ops.matmul(visible, ops.expand_dims(self.visible_bias, -1))[:, 0] - ops.sum(
            ops.softplus(pre), axis=-1)

    def compute_output_shape(self, input_shape):
        return (*tuple(input_shape)[:-1], self.units)

    def get_config(self):
        config = super().get_config()
        config.update({"units": self.units, "cd_steps": self.cd_steps,
                       "learning_rate": self.learning_rate, "seed": self.seed})
        return config
