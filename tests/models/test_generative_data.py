"""The generated datasets of the generative templates hold what their descriptions say."""
import numpy as np

from models.data import load_dataset


def _all(ds, part="x"):
    return np.concatenate([getattr(ds, f"{part}_{s}") for s in ("train", "val", "test")])


def test_the_ring_is_eight_tight_gaussians_labelled_by_their_mode():
    from models.datasets.generative import RING_STD, ring_centers

    ds = load_dataset("builtin:ring")
    x, y = _all(ds), _all(ds, "y")
    offsets = x - ring_centers()[y]
    assert np.allclose(offsets.std(axis=0), RING_STD, atol=0.01)
    assert np.abs(offsets.mean(axis=0)).max() < 0.01
    assert np.allclose(np.linalg.norm(ring_centers(), axis=1), 2.0)
    assert np.bincount(y).min() > 400  # every mode is well represented


def test_clean_moons_are_standardized_and_binary_digits_are_binary():
    moons = _all(load_dataset("builtin:moons-clean"))
    assert np.allclose(moons.mean(axis=0), 0.0, atol=1e-5) and np.allclose(moons.std(axis=0), 1.0, atol=1e-5)
    digits = load_dataset("builtin:digits-binary")
    x = _all(digits)
    assert set(np.unique(x)) == {0.0, 1.0} and x.shape[1] == 64
    assert 0.2 < x.mean() < 0.6  # strokes, not an empty or a full page
