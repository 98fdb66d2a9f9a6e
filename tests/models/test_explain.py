"""Explanations that must find what the data hides: one feature, a bright square, a mirror."""
import json

import numpy as np
import pytest

from models.explain import (METHODS, ExplainError, Subject, available, cache_size, clear_cache,
                            explain, explain_job)
from models.runner import RunState, run
from tests.models import explain_cases as cases


@pytest.fixture(scope="module")
def table():
    return cases.one_feature()


@pytest.fixture(scope="module")
def square():
    return cases.square()


@pytest.fixture(scope="module")
def reversal():
    return cases.reversal()


@pytest.fixture(scope="module")
def lstm():
    return cases.lstm_rows()


@pytest.fixture(scope="module")
def two():
    return cases.two_inputs()


# --------------------------------------------------------------------------- tables


@pytest.mark.parametrize("method", ["shap", "deep-shap", "kernel-shap", "lime", "saliency",
                                    "integrated-gradients"])
def test_the_one_feature_the_label_depends_on_ranks_first(table, method):
    model, ds = table
    e = explain(model, ds, method, list(range(12)))
    importance = e.feature_importance()
    ranking = [name for name, _ in importance]
    assert ranking[0] == "key", importance
    # Not a near tie: the key column carries most of the attribution.
    assert importance[0][1] > 3 * importance[1][1], importance
    out = e.to_json()
    assert out["method"] == method and out["feature_ranking"] == ranking
    assert len(out["attributions"]) == 12 and len(out["attributions"][0]) == 5
    json.dumps(out)  # plain JSON all the way down


def test_deep_shap_values_add_up_to_the_output_change(table):
    model, ds = table
    e = explain(model, ds, "deep-shap", [0, 1, 2])
    for s in e.samples:
        assert abs(s.extras["additivity_gap"]) < 1e-4
        assert sum(float(np.sum(a)) for a in s.attributions) == pytest.approx(
            s.extras["f_sample"] - s.extras["base_value"], abs=1e-4)


def test_integrated_gradients_complete_to_the_output_change(table):
    model, ds = table
    e = explain(model, ds, "integrated-gradients", [0, 1], {"steps": 128})
    for s in e.samples:
        total = float(np.sum(s.attributions[0]))
        assert total == pytest.approx(s.extras["f_sample"] - s.extras["f_baseline"], abs=5e-3)


def test_every_method_either_applies_or_says_why(table, reversal):
    model, ds = table
    reasons = available(model, ds)
    assert set(reasons) == set(METHODS)
    assert reasons["gradcam"] == "Grad-CAM needs a convolution layer (Conv1D or Conv2D); this model has none"
    assert "attention layer" in reasons["attention"]
    assert "image input" in reasons["partition-shap"]
    assert all(reasons[m] is None for m in ("shap", "deep-shap", "kernel-shap", "lime", "saliency",
                                            "integrated-gradients"))
    with pytest.raises(ExplainError, match="Grad-CAM does not apply: Grad-CAM needs a convolution"):
        explain(model, ds, "gradcam", 0)
    model, ds = reversal
    reasons = available(model, ds)
    for m in ("shap", "deep-shap", "saliency", "integrated-gradients"):
        assert "token ids" in reasons[m]
    assert reasons["attention"] is None and reasons["kernel-shap"] is None and reasons["lime"] is None


def test_results_are_cached_per_weights_sample_method_and_options(table):
    model, ds = table
    clear_cache()
    first = explain(model, ds, "kernel-shap", [0, 1])
    assert first.cached == 0 and cache_size() == 2
    again = explain(model, ds, "kernel-shap", [1, 0, 2])
    assert again.cached == 2 and cache_size() == 3
    np.testing.assert_array_equal(again.samples[1].attributions[0], first.samples[0].attributions[0])
    other = explain(model, ds, "kernel-shap", [0], {"nsamples": 300})
    assert other.cached == 0
    changed = cases.one_feature()[0]
    weights = changed.get_weights()
    try:
        changed.set_weights([w * 0.5 for w in weights])
        assert explain(changed, ds, "kernel-shap", [0]).cached == 0
    finally:
        changed.set_weights(weights)


def test_a_cancelled_run_stops_at_a_checkpoint(table):
    model, ds = table
    clear_cache()
    state = RunState()
    seen = []

    def listen(event):
        if event.kind == "sample":
            seen.append(event.payload.index)
            state.cancel()

    state.subscribe(listen)
    run(explain_job(model, ds, "lime", list(range(20))), state)
    assert state.status == "cancelled" and state.result is None
    assert seen == [0]  # the second sample never started


def test_bad_requests_say_what_is_wrong(table):
    model, ds = table
    with pytest.raises(ExplainError, match="no explanation method 'magic'"):
        explain(model, ds, "magic", 0)
    with pytest.raises(ExplainError, match="sample 999 does not exist: the test split has"):
        explain(model, ds, "saliency", 999)
    with pytest.raises(ExplainError, match="integrated-gradients has no option 'stepz'"):
        explain(model, ds, "integrated-gradients", 0, {"stepz": 3})
    with pytest.raises(ExplainError, match="must lie between 2 and 1024"):
        explain(model, ds, "integrated-gradients", 0, {"steps": 1})
    with pytest.raises(ExplainError, match="target class 7 does not exist"):
        explain(model, ds, "saliency", 0, {"target": 7})
    e = explain(model, ds, "saliency", [0], {"target": "low"})
    assert e.samples[0].target == 0 and e.to_json()["target_names"] == ["low"]


def test_data_that_does_not_fit_the_model_is_refused(table, square):
    model, _ = table
    _, images = square
    with pytest.raises(ExplainError, match="the data does not fit the model: input 'features'"):
        available(model, images)


# --------------------------------------------------------------------------- images


def _inside_over_outside(e, ds):
    ratios = []
    for s in e.samples:
        heat = np.abs(s.attributions[0][..., 0])
        mask = cases.square_mask(ds.x_test[s.index])
        ratios.append(heat[mask].mean() / max(heat[~mask].mean(), 1e-9))
    return np.array(ratios)


def _with_square(ds, n=4):
    return [i for i in range(len(ds.y_test)) if ds.y_test[i] == 1][:n]


def test_gradcam_lights_up_the_bright_square(square):
    model, ds = square
    assert model.evaluate(ds.x_test, ds.y_test, verbose=0)[1] > 0.95
    e = explain(model, ds, "gradcam", _with_square(ds))
    assert e.options["layer"] == "conv_2"  # the last convolution, found by itself
    ratios = _inside_over_outside(e, ds)
    assert ratios.min() > 5.0, ratios
    for s in e.samples:
        heat = s.attributions[0][..., 0]
        assert heat.shape == (cases.SIDE, cases.SIDE) and heat.max() == pytest.approx(1.0)
        # The hottest pixel lies on the square (or touches it).
        r, c = np.unravel_index(np.argmax(heat), heat.shape)
        mask = cases.square_mask(ds.x_test[s.index])
        assert mask[max(0, r - 1):r + 2, max(0, c - 1):c + 2].any()
    chosen = explain(model, ds, "gradcam", _with_square(ds, 1), {"layer": "conv_1"})
    assert chosen.options["layer"] == "conv_1"
    with pytest.raises(ExplainError, match="one of conv_1, conv_2"):
        explain(model, ds, "gradcam", 0, {"layer": "pool"})


@pytest.mark.parametrize("method", ["saliency", "integrated-gradients", "shap", "kernel-shap", "lime"])
def test_pixel_methods_find_the_square_too(square, method):
    model, ds = square
    ratios = _inside_over_outside(explain(model, ds, method, _with_square(ds, 3)), ds)
    assert ratios.min() > 5.0, ratios


def test_deep_shap_names_the_op_it_has_no_rule_for(square):
    model, ds = square
    reason = available(model, ds)["deep-shap"]
    assert "no rule for the TensorFlow op Max" in reason and "GradientExplainer" in reason


@pytest.mark.slow
def test_partition_shap_with_an_image_masker_finds_the_square(square):
    """Slow: shap compiles its numba code on the first Partition call (about 15 s)."""
    model, ds = square
    e = explain(model, ds, "partition-shap", _with_square(ds, 2), {"masker": "zeros", "max_evals": 800})
    assert _inside_over_outside(e, ds).min() > 3.0


# --------------------------------------------------------------------------- attention


def test_attention_on_the_reversal_task_looks_at_the_mirrored_position(reversal):
    model, ds = reversal
    assert model.evaluate(ds.x_test, ds.y_test, verbose=0)[1] > 0.95
    e = explain(model, ds, "attention", [0, 1, 2])
    for s in e.samples:
        (att,) = s.attention
        assert att["layer"] == "attention" and att["scores"].shape == (2, 8, 8)
        weights = att["scores"].mean(0)  # over heads
        assert list(weights.argmax(-1)) == [7 - i for i in range(8)]
        assert np.mean([weights[i, 7 - i] for i in range(8)]) > 0.5
        assert att["key_labels"] == [str(int(t)) for t in ds.x_test[s.index]]
    out = e.to_json()
    assert out["attributions"] == [None, None, None]
    heads = np.asarray(out["attention"][0][0]["heads"])
    assert heads.shape == (2, 8, 8)
    np.testing.assert_allclose(heads.sum(-1), 1.0, atol=1e-4)


def test_token_methods_point_at_the_mirrored_input_of_an_output_step(reversal):
    model, ds = reversal
    for method in ("kernel-shap", "lime"):
        for position in (0, 5):
            e = explain(model, ds, method, [0], {"position": position})
            a = np.abs(e.samples[0].attributions[0])
            assert int(np.argmax(a)) == 7 - position, (method, position, a)
            assert e.to_json()["position"] == position


# --------------------------------------------------------------------------- sequences, several inputs


def test_an_lstm_over_digit_rows_is_explained(lstm):
    model, ds = lstm
    reasons = available(model, ds)
    assert "TensorListStack" in reasons["deep-shap"] or "While" in reasons["deep-shap"]
    assert "convolution" in reasons["gradcam"]
    for method in ("shap", "kernel-shap", "lime", "saliency", "integrated-gradients"):
        e = explain(model, ds, method, [0])
        a = e.samples[0].attributions[0]
        assert a.shape == (8, 8) and np.isfinite(a).all() and np.abs(a).sum() > 0
        # Blank pixels (the digits' empty border) matter less than inked ones.
        x = ds.x_test[0]
        if method in ("saliency",):
            continue
        assert np.abs(a[x > 0.5]).mean() > np.abs(a[x == 0]).mean(), method


def test_a_model_with_two_inputs_is_explained_input_by_input(two):
    model, ds = two
    reasons = available(model, ds)
    assert [m for m, r in reasons.items() if r] == ["attention"]
    subject = Subject(model, ds)
    assert [i.name for i in subject.inputs] == ["cols", "image"]
    for method in ("shap", "deep-shap", "kernel-shap", "saliency", "integrated-gradients"):
        e = explain(model, ds, method, list(range(8)), subject=subject)
        assert e.feature_ranking()[0] == "cols[0]", method
        out = e.to_json()
        assert set(out["attributions"][0]) == {"cols", "image"}
        assert np.asarray(out["attributions"][0]["image"]).shape == (8, 8, 1)
        share = next(n for n in e.notes if n.startswith("share of the attribution per input"))
        assert float(share.split("cols ")[1].split("%")[0]) > 80.0, share
    lime_cols = explain(model, ds, "lime", [0, 1, 2], {"input": "cols"}, subject=subject)
    assert lime_cols.feature_ranking()[0] == "cols[0]"
    assert lime_cols.samples[0].attributions[1] is None  # the image is held fixed
    cam = explain(model, ds, "gradcam", [0], subject=subject)
    assert cam.samples[0].attributions[0] is None and cam.samples[0].attributions[1].shape == (8, 8, 1)


# --------------------------------------------------------------------------- forms


def test_csv_and_png_hold_the_numbers_and_the_picture(tmp_path, table, reversal, square):
    from models.explain.render import save_png

    model, ds = table
    e = explain(model, ds, "kernel-shap", [0, 1])
    text = e.to_csv(tmp_path / "t.csv")
    rows = [r.split(",") for r in text.strip().splitlines()]
    assert rows[0] == ["sample", "target", "input", "element", "feature", "value"]
    assert len(rows) == 1 + 2 * 5 and {r[4] for r in rows[1:]} == {"a", "b", "key", "d", "e"}
    assert (tmp_path / "t.csv").read_text() == text
    for name, (m, d), method, samples in (("table", table, "kernel-shap", [0, 1]),
                                          ("attention", reversal, "attention", [0]),
                                          ("image", square, "gradcam", [0])):
        path = save_png(explain(m, d, method, samples), tmp_path / f"{name}.png")
        data = path.read_bytes()
        assert data[:8] == b"\x89PNG\r\n\x1a\n" and len(data) > 5000
    att = explain(*reversal, "attention", [0]).to_csv()
    assert att.count("\n") == 1 + 2 * 8 * 8


def test_a_failing_deep_explainer_leaves_tensorflow_gradients_working(lstm, table):
    """shap leaves TensorFlow's gradient hook swapped when it fails; we put it back."""
    from tensorflow.python.eager import execute

    from models.explain import shap_methods

    hook = execute.record_gradient
    model, ds = lstm
    subject = Subject(model, ds)
    with pytest.raises(ExplainError, match="DeepExplainer of shap 0.51 fails on this model"):
        shap_methods.deep_shap(subject, subject.sample(0), subject.head(0), {"background": 5},
                               RunState())
    assert execute.record_gradient is hook
    e = explain(*table, "shap", [0])  # shap's GradientExplainer needs working gradients
    assert e.feature_ranking()[0] == "key"


def test_shap_still_takes_keras_3_models_after_tfmot_was_imported():
    """TFMOT sets TF_USE_LEGACY_KERAS=1 when imported; tf.keras must stay Keras 3 (shap checks it)."""
    import os

    from models import backend
    from models.compress import _tfmot

    _tfmot()
    tf = backend.tf()
    keras = backend.keras()
    assert os.environ.get("TF_USE_LEGACY_KERAS") is None
    x = keras.Input((3,))
    model = keras.Model(x, keras.layers.Dense(1)(x))
    assert isinstance(model, tf.keras.Model)
