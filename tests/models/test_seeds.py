"""The cheatsheet's worked examples, value by value, against what Keras computes.

Where the sheet's arithmetic is wrong, the test pins Keras's value and the
disagreement is recorded in resources/cheatsheet/errata.json (shown in the app).
"""
import numpy as np
import pytest

from models.cli import trace_model
from models.gallery import seeds
from models.gallery.errata import errata_for


def _trace(model, x):
    return {s["layer"]: np.asarray(s["output"]) for s in trace_model(model, x)}


def test_mlp_every_step_matches_the_sheet():
    t = _trace(seeds.build_seed_mlp(), np.array([seeds.MLP_X], dtype="float32"))
    np.testing.assert_allclose(t["hidden"][0], [-0.18, 0.23], atol=1e-6)   # z1
    np.testing.assert_allclose(t["relu"][0], [0.0, 0.23], atol=1e-6)       # h
    np.testing.assert_allclose(t["output"][0], [-0.019], atol=1e-6)        # z2
    np.testing.assert_allclose(t["sigmoid"][0], [0.495], atol=5e-4)        # y
    assert round(float(t["sigmoid"][0][0]), 3) == 0.495


def test_cnn_steps_pin_keras_values_where_the_sheet_slips():
    x = np.array(seeds.CNN_X, dtype="float32").reshape(1, 4, 4, 1)
    t = _trace(seeds.build_seed_cnn(), x)
    conv = t["conv"][0, :, :, 0]
    # The sheet's first two entries agree; the rest of its matrix does not
    # (its own expansion of entry (1, 0) gives 13, not the 10 it prints).
    assert conv[0, 0] == 7 and conv[0, 1] == 9
    np.testing.assert_array_equal(conv, [[7, 9, -1], [13, 15, 1], [9, 11, 13]])
    np.testing.assert_array_equal(t["relu"][0, :, :, 0], [[7, 9, 0], [13, 15, 1], [9, 11, 13]])
    # 2x2 max pooling with stride 1 turns 3x3 into 2x2, as the sheet says.
    np.testing.assert_array_equal(t["max_pool"][0, :, :, 0], [[15, 15], [15, 15]])
    np.testing.assert_array_equal(t["flatten"][0], [15, 15, 15, 15])
    np.testing.assert_allclose(t["dense"][0], [4.25, 5.5], atol=1e-5)
    np.testing.assert_allclose(t["softmax"][0], [0.2227, 0.7773], atol=1e-4)
    # The sheet's verdict survives: class 2 is the more likely one.
    assert int(np.argmax(t["softmax"][0])) == 1


def test_cnn_dense_and_softmax_formulas_agree_with_the_sheet_on_its_own_inputs():
    """Fed the sheet's (wrong) pooled values, Keras reproduces its z and P exactly."""
    from models import backend

    keras = backend.keras()
    model = seeds.build_seed_cnn()
    dense, softmax = model.get_layer("dense"), model.get_layer("softmax")
    z = np.asarray(dense(np.full((1, 4), 12.0, dtype="float32")))
    np.testing.assert_allclose(z[0], [3.5, 4.3], atol=1e-5)
    p = np.asarray(softmax(keras.ops.convert_to_tensor(z)))
    np.testing.assert_allclose(p[0], [0.31, 0.69], atol=5e-3)


def test_errata_record_every_disagreement_with_keras_values():
    notes = errata_for("7.3.1")
    steps = {n["step"] for n in notes}
    assert {"convolution feature map", "ReLU", "2x2 max pooling, stride 1", "softmax"} <= steps
    conv = next(n for n in notes if n["step"] == "convolution feature map")
    assert "[[7, 9, -1], [13, 15, 1], [9, 11, 13]]" == conv["keras"]
    assert errata_for("7.1")[0]["note"].startswith("The MLP example checks out")


@pytest.mark.parametrize("slug", ["seed-mlp", "seed-cnn"])
def test_seed_templates_ship_their_weights(slug):
    from models import gallery

    project = gallery.open_template(slug)
    assert project.has_weights()
    model = project.build()
    reference = seeds.build_seed_mlp() if slug == "seed-mlp" else seeds.build_seed_cnn()
    for a, b in zip(model.get_weights(), reference.get_weights()):
        np.testing.assert_array_equal(a, b)
