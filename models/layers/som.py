"""The self-organizing map (Kohonen): a grid of prototypes that learns the shape of the data."""
from __future__ import annotations

import keras
import numpy as np
from keras import ops


@keras.saving.register_keras_serializable(package="layerforge")
class SOM(keras.layers.Layer):
    """A self-organizing map; called, it gives each sample's squared distance to every unit.

    The map is a ``rows`` x ``columns`` grid of prototype vectors in the input
    space. Training is competitive, not by gradients: each sample's best
    matching unit (the nearest prototype) and the units near it on the grid
    move towards the sample, weighted by a Gaussian neighbourhood. Both the
    neighbourhood radius and the learning rate shrink as training goes on
    (geometrically, from the start values to the end values), so the map
    first unfolds over the data as a whole, then settles into the details.
    Neighbouring units end up with similar prototypes: the map is a 2-D
    picture of the data that keeps its topology.

    Args:
        rows, columns: the grid's size.
        sigma: the starting neighbourhood radius in grid steps (None: half
            the longer side of the grid).
        sigma_end: the radius at the end of training.
        learning_rate, learning_rate_end: the step size at the start and the end.
        seed: seeds the prototypes' first values (None: a fresh seed each build).
    """

    def __init__(self, rows: int = 8, columns: int = 8, sigma: float | None = None,
                 sigma_end: float = 0.5, learning_rate: float = 0.5,
                 learning_rate_end: float = 0.01, seed: int | None = None, **kwargs):
        super().__init__(**kwargs)
        if int(rows) < 1 or int(columns) < 1:
            raise ValueError(f"a SOM grid needs at least 1 x 1 units; got {rows} x {columns}")
        if (sigma is not None and float(sigma) <= 0) or float(sigma_end) <= 0:
            raise ValueError("the neighbourhood radii sigma and sigma_end must be positive")
        if float(learning_rate) <= 0 or float(learning_rate_end) <= 0:
            raise ValueError("the learning rates must be positive")
        self.rows, self.columns = int(rows), int(columns)
        self.sigma = None if sigma is None else float(sigma)
        self.sigma_end = float(sigma_end)
        self.learning_rate = float(learning_rate)
        self.learning_rate_end = float(learning_rate_end)
        self.seed = seed
        grid = np.stack(np.meshgrid(np.arange(self.rows), np.arange(self.columns), indexing="ij"),
                        axis=-1).reshape(-1, 2).astype("float32")
        self._grid = grid  # (units, 2): each unit's (row, column)
        self._grid_d2 = ((grid[:, None, :] - grid[None, :, :]) ** 2).sum(-1)  # units x units

    @property
    def units(self) -> int:
        return self.rows * self.columns

    @property
    def start_sigma(self) -> float:
        return self.sigma if self.sigma is not None else max(self.rows, self.columns) / 2.0

    def build(self, input_shape):
        self.prototypes = self.add_weight(
            shape=(self.units, int(input_shape[-1])), name="prototypes", trainable=False,
            initializer=keras.initializers.RandomUniform(-0.1, 0.1, seed=self.seed))

    def call(self, inputs):
        return self._squared_distances(inputs)

    def _squared_distances(self, x):
        w = self.prototypes
        return (ops.sum(ops.square(x), axis=-1, keepdims=True) - 2.0 * ops.matmul(x, ops.transpose(w))
                + ops.sum(ops.square(w), axis=-1)[None, :])

    def best_matching_units(self, x):
        """The index of each sample's nearest prototype, ``(n,)`` int."""
        return ops.argmin(self._squared_distances(x), axis=-1)

    def schedule(self, progress: float) -> tuple[float, float]:
        """The (radius, learning rate) at ``progress`` in [0, 1] of training."""
        t = min(1.0, max(0.0, float(progress)))
        sigma = self.start_sigma * (self.sigma_end / self.start_sigma) ** t
        rate = self.learning_rate * (self.learning_rate_end / self.learning_rate) ** t
        return sigma, rate

    def update(self, x, sigma, learning_rate):
        """One batch step: every unit moves towards the samples it or its neighbours win.

        Each unit moves by ``learning_rate`` times the neighbourhood-weighted
        mean offset of the batch from it, so the step does not depend on the
        batch size. Returns the batch's quantization error (the mean distance
        from a sample to its best matching unit).
        """
        x = ops.convert_to_tensor(x, dtype=self.prototypes.dtype)
        d2 = self._squared_distances(x)
        bmu = ops.argmin(d2, axis=-1)
        grid_d2 = ops.convert_to_tensor(self._grid_d2)
        h = ops.exp(-ops.take(grid_d2, bmu, axis=0) / (2.0 * ops.square(sigma)))  # (n, units)
        weight = ops.sum(h, axis=0)[:, None]
        pulled = ops.matmul(ops.transpose(h), x)  # (units, dim)
        step = learning_rate * (pulled - weight * self.prototypes) / ops.maximum(weight, 1e-6)
        self.prototypes.assign_add(step * ops.cast(weight > 1e-6, step.dtype))
        return ops.mean(ops.sqrt(ops.maximum(ops.min(d2, axis=-1), 0.0)))

    def u_matrix(self) -> np.ndarray:
        """Each unit's mean distance to its grid neighbours, ``(rows, columns)``: ridges are cluster borders."""
        w = np.asarray(self.prototypes).reshape(self.rows, self.columns, -1)
        out = np.zeros((self.rows, self.columns))
        for r in range(self.rows):
            for c in range(self.columns):
                near = [w[rr, cc] for rr, cc in ((r - 1, c), (r + 1, c), (r, c - 1), (r, c + 1))
                        if 0 <= rr < self.rows and 0 <= cc < self.columns]
                out[r, c] = np.mean([np.linalg.norm(w[r, c] - v) for v in near]) if near else 0.0
        return out

    def component_planes(self) -> np.ndarray:
        """Each input feature's value across the map, ``(features, rows, columns)``."""
        w = np.asarray(self.prototypes)
        return w.T.reshape(-1, self.rows, self.columns)

    def compute_output_shape(self, input_shape):
        return (*tuple(input_shape)[:-1], self.units)

    def get_config(self):
        config = super().get_config()
        config.update({"rows": self.rows, "columns": self.columns, "sigma": self.sigma,
                       "sigma_end": self.sigma_end, "learning_rate": self.learning_rate,
                       "learning_rate_end": self.learning_rate_end, "seed": self.seed})
        return config
