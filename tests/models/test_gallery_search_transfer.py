"""The nas, fine-tuning and feature-extraction templates: a smoke test each, and their quick targets."""
import time

import numpy as np
import pytest

from models import gallery, search
from models.training import train
from models.validate import validate

TEMPLATES = {"nas": ("test_accuracy", 0.96), "fine-tuning": ("transfer_gain", 0.05),
             "feature-extraction": ("transfer_gain", 0.05)}


@pytest.mark.parametrize("slug", sorted(TEMPLATES))
def test_template_builds_checks_and_explains(slug):
    project = gallery.open_template(slug)
    for name, graph in project.graphs.items():
        report = validate(graph)
        assert report.valid, (name, report.errors())
    meta = project.meta
    assert meta["section"] in ("7.7.1", "2.4.1", "2.4.2") and len(meta["explanation"]) > 200
    assert project.recipe["quality"]["metric"] == TEMPLATES[slug][0]


def test_nas_marks_the_cnn_template_and_takes_one_tiny_search_step():
    project = gallery.open_template("nas")
    cnn = gallery.open_template("cnn")
    # The same layers as the CNN template, exactly: the choices live in the recipe.
    assert project.graph.to_dict()["nodes"] == cnn.graph.to_dict()["nodes"]
    assert search.problems(project) == []
    assert {search.mark_name(m) for m in search.space(project.recipe)} >= {
        "conv_1.filters", "conv_2.kernel_size", "dropout.rate", "dense.activation",
        "recipe.learning_rate"}
    project.recipe = search.with_settings(project.recipe, trials=1)
    project.recipe.update(epochs=1, limit=300)
    result = train(project)
    assert result.project is not None and len(result.search["trials"]) == 1
    assert result.quality["metric"] == "test_accuracy" and 0 <= result.quality["value"] <= 1
    best = result.project.build()
    params = result.search["trials"][0]["params"]
    assert best.get_layer("conv_1").filters == params["conv_1.filters"]


@pytest.mark.parametrize("slug", ["fine-tuning", "feature-extraction"])
def test_transfer_template_pretrains_carries_and_compares_in_one_tiny_run(slug):
    project = gallery.open_template(slug)
    assert set(project.graphs) == {"model", "base"} and not project.has_weights("base")
    frozen = {n for n, node in project.graph.nodes.items() if node.config.get("trainable") is False}
    assert frozen == ({"conv_1", "conv_2", "pool_1", "conv_3", "pool_2", "flatten"}
                      if slug == "feature-extraction" else set())
    r = project.recipe
    r["pretrain"]["epochs"] = 1
    r["phases"] = [dict(p, epochs=1) for p in r["phases"]]
    r.update(epochs=1 + len(r["phases"]), baseline={"epochs": 1, "learning_rate": 0.002},
             baseline_runs=1)
    result = train(project)
    m = result.metrics
    assert set(m) >= {"test_accuracy", "scratch_accuracy", "transfer_gain", "scratch_full_accuracy"}
    assert m["transfer_gain"] == pytest.approx(m["test_accuracy"] - m["scratch_accuracy"])
    assert result.quality["metric"] == "transfer_gain"
    base, model = result.models["base"], result.models["model"]
    if slug == "feature-extraction":  # frozen layers hold exactly the pre-trained weights
        for name in ("conv_1", "conv_3"):
            for a, b in zip(model.get_layer(name).get_weights(), base.get_layer(name).get_weights()):
                np.testing.assert_array_equal(a, b)
    assert "base_loss" in result.history and "loss" in result.history


# --------------------------------------------------------------------------- targets


@pytest.mark.slow
@pytest.mark.parametrize("slug", sorted(TEMPLATES))
def test_quick_preset_reaches_the_target_within_two_minutes(slug):
    metric, target = TEMPLATES[slug]
    t0 = time.perf_counter()
    result = train(gallery.open_template(slug), quick=True)
    seconds = time.perf_counter() - t0
    assert result.quality["metric"] == metric
    assert result.quality["value"] >= target, result.metrics
    assert seconds < 120, f"{slug} took {seconds:.0f} s"
    if slug == "nas":
        assert len(result.search["trials"]) >= 8
        assert all(t["status"] == "ok" for t in result.search["trials"])
