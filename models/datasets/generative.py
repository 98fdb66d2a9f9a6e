"""Data for the generative and unsupervised templates: a ring of Gaussians, clean moons, binary digits."""
from __future__ import annotations

import numpy as np

from models.data import RawData, register_builtin

RING_MODES = 8
RING_RADIUS = 2.0
RING_STD = 0.1


def ring_centers(modes: int = RING_MODES, radius: float = RING_RADIUS) -> np.ndarray:
    """The centres of the ring's Gaussians, ``(modes, 2)``, the first on the positive x axis."""
    angles = 2.0 * np.pi * np.arange(modes) / modes
    return np.stack([radius * np.cos(angles), radius * np.sin(angles)], axis=1)


def _ring(seed: int = 0, n: int = 4000, **options) -> RawData:
    rng = np.random.default_rng(0)  # the data is fixed; the seed only moves the split
    mode = rng.integers(0, RING_MODES, n)
    x = ring_centers()[mode] + rng.normal(0.0, RING_STD, (n, 2))
    return RawData(x=x.astype(np.float32), y=mode.astype(np.int32), task="classification",
                   class_names=[f"mode {i}" for i in range(RING_MODES)], feature_names=["x1", "x2"],
                   target_name="mode",
                   notes=[f"{n} points from {RING_MODES} Gaussians (sd {RING_STD}) evenly spaced on a "
                          f"circle of radius {RING_RADIUS}; the target is the Gaussian a point came from"])


def _moons_clean(seed: int = 0, n: int = 6000, **options) -> RawData:
    from sklearn.datasets import make_moons

    x, y = make_moons(n_samples=n, noise=0.05, random_state=0)
    x = (x - x.mean(axis=0)) / x.std(axis=0)
    return RawData(x=x.astype(np.float32), y=y.astype(np.int32), task="binary",
                   class_names=["upper", "lower"], feature_names=["x1", "x2"], target_name="moon",
                   notes=[f"{n} points on two interleaving half circles (scikit-learn's make_moons, "
                          "noise 0.05, generator seed 0), standardized to mean 0 and sd 1 per axis"])


def _digits_binary(seed: int = 0, **options) -> RawData:
    from sklearn.datasets import load_digits

    bunch = load_digits()
    x = (bunch.data >= 6).astype(np.float32)  # pixel values are 0..16; faint strokes count
    return RawData(x=x, y=bunch.target.astype(np.int32), task="classification",
                   class_names=[str(i) for i in range(10)], target_name="digit",
                   notes=["8x8 digit images as 64 binary pixels (on where the value is at least 6 of 16)"])


register_builtin("ring", task="classification", shape=(2,), classes=RING_MODES, load=_ring,
                 description="4,000 2-D points from 8 Gaussians on a ring (for GANs: does it find every mode?)")
register_builtin("moons-clean", task="binary", shape=(2,), classes=2, load=_moons_clean,
                 description="6,000 standardized points on two half circles with little noise (for diffusion)")
register_builtin("digits-binary", task="classification", shape=(64,), classes=10, load=_digits_binary,
                 description="the digits as 64 binary pixels, for restricted Boltzmann machines")
