"""Denoising diffusion: the noise schedule of the forward process and the timestep embedding."""
from __future__ import annotations

import math

import keras
import numpy as np
from keras import ops

SCHEDULES = ("cosine", "linear")


@keras.saving.register_keras_serializable(package="layerforge")
class NoiseSchedule(keras.layers.Layer):
    """The forward process of a diffusion model: noise added to clean data, step by step.

    After ``t`` of ``steps`` steps, a clean sample ``x0`` has become
    ``x_t = sqrt(abar_t) * x0 + sqrt(1 - abar_t) * noise``, where ``abar_t``
    (the product of ``1 - beta_s`` up to ``t``) falls from almost 1 to almost
    0: at the last step nothing of the data is left. A network trained to
    tell the noise from ``x_t`` runs the process backwards with
    :meth:`reverse_step`, from pure noise to a sample.

    Args:
        steps: the number of noising steps ``T``.
        schedule: ``"cosine"`` (Nichol and Dhariwal: ``abar`` follows a
            squared cosine, gentle at both ends) or ``"linear"`` (``beta`` rises
            linearly, as in DDPM).
        beta_start, beta_end: the linear schedule's first and last ``beta``
            for 1000 steps (DDPM's values); fewer steps scale them up by
            ``1000 / steps``, so the data is just as destroyed at the end.

    Call arguments:
        inputs: ``[x0, noise, t]``: clean samples, Gaussian noise of the same
            shape and integer steps in ``[0, steps)``, shape ``(n,)`` or ``(n, 1)``.
    """

    def __init__(self, steps: int = 100, schedule: str = "cosine", beta_start: float = 1e-4,
                 beta_end: float = 0.02, **kwargs):
        super().__init__(**kwargs)
        if int(steps) < 2:
            raise ValueError(f"a diffusion needs at least 2 steps; got steps={steps}")
        if schedule not in SCHEDULES:
            raise ValueError(f"schedule must be one of {', '.join(SCHEDULES)}; got {schedule!r}")
        if not 0 < float(beta_start) < float(beta_end) < 1:
            raise ValueError("the linear schedule needs 0 < beta_start < beta_end < 1")
        self.steps, self.schedule = int(steps), schedule
        self.beta_start, self.beta_end = float(beta_start), float(beta_end)
        self.betas = _betas(self.steps, schedule, self.beta_start, self.beta_end)
        self.alphas = 1.0 - self.betas
        self.alpha_bars = np.cumprod(self.alphas).astype("float32")
        previous = np.concatenate([[1.0], self.alpha_bars[:-1]]).astype("float32")
        # The variance of x_{t-1} given x_t and x0: the smaller of DDPM's two choices,
        # which gives the crisper samples.
        self.posterior_variance = (self.betas * (1.0 - previous) / (1.0 - self.alpha_bars)).astype("float32")

    def call(self, inputs):
        x0, noise, t = inputs
        abar = self._at(self.alpha_bars, t, x0)
        return ops.sqrt(abar) * x0 + ops.sqrt(1.0 - abar) * noise

    def _at(self, table: np.ndarray, t, like):
        """``table[t]`` shaped to broadcast over samples like ``like``."""
        t = ops.reshape(ops.cast(t, "int32"), (-1,))
        values = ops.take(ops.convert_to_tensor(table), t)
        return ops.reshape(values, (-1,) + (1,) * (len(like.shape) - 1))

    def reverse_step(self, x_t, predicted_noise, t, noise):
        """One step back, from ``x_t`` to ``x_{t-1}`` (DDPM's ancestral sampling).

        Works eagerly and inside a compiled loop alike (``t`` may be a tensor).

        Args:
            x_t: the current samples.
            predicted_noise: the network's estimate of the noise in ``x_t``.
            t: the current step, an integer scalar.
            noise: fresh Gaussian noise of ``x_t``'s shape (at ``t == 0`` the
                posterior variance is 0, so none is added).
        """
        t = ops.cast(t, "int32")
        alpha = ops.take(ops.convert_to_tensor(self.alphas), t)
        abar = ops.take(ops.convert_to_tensor(self.alpha_bars), t)
        variance = ops.take(ops.convert_to_tensor(self.posterior_variance), t)
        mean = (x_t - (1.0 - alpha) / ops.sqrt(1.0 - abar) * predicted_noise) / ops.sqrt(alpha)
        return mean + ops.sqrt(variance) * noise

    def compute_output_shape(self, input_shape):
        return tuple(input_shape[0])

    def get_config(self):
        config = super().get_config()
        config.update({"steps": self.steps, "schedule": self.schedule,
                       "beta_start": self.beta_start, "beta_end": self.beta_end})
        return config


def _betas(steps: int, schedule: str, beta_start: float, beta_end: float) -> np.ndarray:
    if schedule == "linear":
        scale = 1000.0 / steps
        return np.clip(np.linspace(beta_start * scale, beta_end * scale, steps, dtype="float64"),
                       1e-5, 0.999).astype("float32")
    s = 0.008  # keeps beta from being tiny near t = 0
    t = np.arange(steps + 1, dtype="float64") / steps
    f = np.cos((t + s) / (1 + s) * np.pi / 2) ** 2
    abar = f / f[0]
    return np.clip(1.0 - abar[1:] / abar[:-1], 1e-5, 0.999).astype("float32")


@keras.saving.register_keras_serializable(package="layerforge")
class TimestepEmbedding(keras.layers.Layer):
    """A diffusion step as a vector: sines and cosines of it at geometrically spaced frequencies.

    The network that removes noise must know how much noise there is; a raw
    step number is a poor input, its sinusoidal embedding (as the
    transformer's position encoding) a good one: nearby steps get similar
    vectors and every scale of step differences shows in some frequency.

    Args:
        dim: the embedding's size (even: half sines, half cosines).
        max_period: the longest wavelength, in steps; keep it above the
            number of diffusion steps.

    Call arguments:
        inputs: the steps, shape ``(n,)`` or ``(n, 1)``, integer or float.
    """

    def __init__(self, dim: int = 32, max_period: float = 10000.0, **kwargs):
        super().__init__(**kwargs)
        if int(dim) < 2 or int(dim) % 2:
            raise ValueError(f"the embedding size must be even and at least 2; got dim={dim}")
        if float(max_period) <= 1:
            raise ValueError(f"max_period must be above 1; got {max_period}")
        self.dim, self.max_period = int(dim), float(max_period)
        half = self.dim // 2
        self._frequencies = np.exp(-math.log(self.max_period) * np.arange(half) / half).astype("float32")

    def call(self, inputs):
        t = ops.reshape(ops.cast(inputs, "float32"), (-1, 1))
        angles = t * ops.convert_to_tensor(self._frequencies)[None, :]
        return ops.concatenate([ops.sin(angles), ops.cos(angles)], axis=-1)

    def compute_output_shape(self, input_shape):
        return (input_shape[0], self.dim)

    def get_config(self):
        config = super().get_config()
        config.update({"dim": self.dim, "max_period": self.max_period})
        return config
