"""The generative, unsupervised and self-supervised templates: every one builds, checks and trains.

The smoke tests take one short epoch on a few hundred samples; the ``slow``
tests run each quick preset and check its quality target (issue 8's table).
"""
import json
import math
import time

import numpy as np
import pytest

from models import gallery
from models.runner import RunState
from models.validate import validate

# slug -> (quality metric, quick target)
TARGETS = {
    "autoencoder": ("recon_improvement", 0.70),
    "vae": ("recon_improvement", 0.50),
    "gan": ("modes_covered", 6),
    "gan-digits": ("modes_covered", 7),
    "diffusion": ("sample_quality", 0.60),
    "dbn": ("test_accuracy", 0.93),
    "som": ("cluster_purity", 0.85),
    "self-supervised": ("linear_probe_accuracy", 0.85),
}
SECTIONS = {"autoencoder": "7.4.1", "vae": "7.4.2", "gan": "7.4.3", "gan-digits": "7.4.3",
            "diffusion": "7.4.4", "dbn": "7.4.5", "som": "7.9", "self-supervised": "7.10"}


def _smoke_recipe(slug: str) -> dict:
    """One short epoch on a few hundred samples (the DBN: one per RBM and one fine-tuning)."""
    recipe = {"epochs": 1, "limit": 300}
    if slug == "dbn":
        recipe.update(epochs=3, pretrain_epochs=1)
    return recipe


@pytest.mark.parametrize("slug", sorted(TARGETS))
def test_template_builds_checks_and_takes_a_training_step(slug):
    from models.training import train

    project = gallery.open_template(slug)
    assert project.meta["section"] == SECTIONS[slug]
    assert len(project.meta["explanation"]) > 200
    metric, _ = TARGETS[slug]
    assert project.recipe["quality"]["metric"] == metric and project.recipe["quick"]
    for name, graph in project.graphs.items():
        report = validate(graph)
        assert report.valid, (name, report.errors())
        assert set(project.positions(name)) == set(graph.nodes), f"{name} is not laid out"
    project.recipe.update(_smoke_recipe(slug))
    state = RunState()
    result = train(project, state=state)
    events = state.drain()
    kinds = [e.kind for e in events]
    assert kinds.count("batch") >= 1 and kinds.count("epoch") == project.recipe["epochs"]
    assert result.stopped == "completed", result.message
    assert result.epochs_run == project.recipe["epochs"]
    assert set(result.models) == set(project.graphs)  # every graph trained is handed back
    assert result.model is result.models[project.main_name]
    assert result.quality is not None and result.quality["metric"] == metric
    assert math.isfinite(result.quality["value"])
    shown = [e.payload for e in events if e.kind == "view"]
    assert shown and shown[-1]["view"]["panels"], "the live view is missing"
    json.dumps(shown[-1])  # JSON-ready, as the app receives it
    assert not [n for n in result.notes if "live view is off" in n]
    assert result.evaluable == (slug == "dbn")  # only the DBN maps images to classes


def test_each_template_links_its_graphs_through_the_recipe():
    names = {slug: list(gallery.open_template(slug).graphs) for slug in TARGETS}
    assert names["autoencoder"] == names["vae"] == ["encoder", "decoder"]
    assert names["gan"] == names["gan-digits"] == ["generator", "discriminator"]
    assert names["diffusion"] == ["denoiser", "noising"]
    assert names["dbn"] == ["dbn", "rbm_1", "rbm_2"]
    assert names["self-supervised"] == ["encoder", "projection", "augment"]
    for slug in TARGETS:
        project = gallery.open_template(slug)
        roles = project.meta.get("graphs") or {}
        assert set(roles) == set(project.graphs), slug  # each graph says what it is for


def test_a_trainer_names_a_missing_graph_and_mismatched_shapes(tmp_path):
    from models.training import TrainingError, train

    project = gallery.open_template("gan")
    project.graphs["critic"] = project.graphs.pop("discriminator")
    with pytest.raises(TrainingError, match="needs the graph 'discriminator'.*'generator', 'critic'"):
        train(project, epochs=1)
    project.recipe["loop_options"] = {**project.recipe["loop_options"],
                                      "graphs": {"discriminator": "critic"}}
    project.graphs["critic"].set_config("real_score", {"units": 3})
    with pytest.raises(TrainingError, match="one logit per sample"):
        train(project, epochs=1)
    vae = gallery.open_template("vae")
    vae.graphs["decoder"].set_config("image", {"target_shape": [4, 16, 1]})
    with pytest.raises(TrainingError, match="a reconstruction must have the input's shape"):
        train(vae, epochs=1)


def test_train_out_saves_every_graph_of_a_template(tmp_path, capsys):
    from models.cli import main
    from models.project import Project

    out = tmp_path / "run"
    code = main(["train", "gallery:autoencoder", "--epochs", "2", "--out", str(out), "--json"])
    captured = capsys.readouterr()
    assert code == 0, captured.err
    result = json.loads(captured.out.strip().splitlines()[-1])
    assert result["quality"]["metric"] == "recon_improvement"
    assert (out / "project.weights.h5").is_file() and (out / "project.decoder.weights.h5").is_file()
    assert (out / "checkpoints" / "best.weights.h5").is_file() and (out / "history.csv").is_file()
    saved = Project.load(out / "project.lforge")
    assert saved.has_weights("encoder") and saved.has_weights("decoder")
    # The saved weights are the trained ones: they reconstruct better than fresh ones.
    from models.data import load_dataset

    x = load_dataset("builtin:digits").x_test
    trained = saved.build("decoder")(saved.build("encoder")(x))
    fresh = saved.build("decoder", with_weights=False)(saved.build("encoder", with_weights=False)(x))
    assert np.mean((np.asarray(trained) - x) ** 2) < np.mean((np.asarray(fresh) - x) ** 2)


def test_a_loop_run_writes_checkpoints_of_every_model(tmp_path):
    from models.project import Project
    from models.training import train

    project = gallery.open_template("dbn")
    out = tmp_path / "dbn"
    project.recipe.update(epochs=3, pretrain_epochs=1, limit=300)
    result = train(project, out_dir=out)
    files = {p.name for p in (out / "checkpoints").iterdir()}
    # Last weights of every model each epoch; best ones once an epoch measured val_loss
    # (the fine-tuning epoch: pre-training has no validation loss).
    assert files == {f"{kind}.{name}weights.h5" for kind in ("last", "best")
                     for name in ("", "rbm_1.", "rbm_2.")}
    lines = (out / "history.csv").read_text().splitlines()
    assert lines[0].split(",")[0] == "epoch" and len(lines) == 1 + 3
    # The last checkpoint holds the classifier as trained.
    model = Project.load(gallery.template_path("dbn")).build(with_weights=False)
    model.load_weights(str(out / "checkpoints" / "last.weights.h5"))
    for a, b in zip(model.get_weights(), result.model.get_weights()):
        np.testing.assert_allclose(a, b)


@pytest.mark.slow
@pytest.mark.parametrize("slug", sorted(TARGETS))
def test_quick_preset_reaches_its_target(slug):
    from models.training import train

    metric, target = TARGETS[slug]
    t0 = time.perf_counter()
    result = train(gallery.open_template(slug), state=RunState(), quick=True)
    seconds = time.perf_counter() - t0
    print(f"{slug}: {metric} = {result.quality['value']:.4f} (target {target}) in {seconds:.1f} s")
    assert result.quality["metric"] == metric
    assert result.quality["value"] >= target


def test_other_data_never_rewires_a_custom_step_template():
    from models.adapt import adapt_to_data
    from models.data import load_dataset

    project = gallery.open_template("autoencoder")
    before = json.dumps(project.to_dict(), sort_keys=True)
    assert adapt_to_data(project, load_dataset("builtin:iris")) == []
    assert json.dumps(project.to_dict(), sort_keys=True) == before


@pytest.mark.parametrize("slug", ["vae", "gan"])
def test_a_trainer_is_a_registered_keras_model_that_saves_and_loads(slug, tmp_path):
    from models import backend
    from models.loops import resolve

    keras = backend.keras()
    project = gallery.open_template(slug)
    cls = resolve(project.recipe["loop"])
    assert keras.saving.get_registered_name(cls) == f"layerforge>{cls.__name__}"
    trainer = cls.from_project(project, project.recipe)
    assert [g for g in trainer.graphs] == list(project.graphs)
    path = tmp_path / "trainer.keras"
    trainer.save(path)
    loaded = keras.saving.load_model(path)
    assert type(loaded) is cls and loaded.options == trainer.options
    for name, model in trainer.graphs.items():
        for a, b in zip(model.get_weights(), loaded.graphs[name].get_weights()):
            np.testing.assert_array_equal(a, b)


@pytest.mark.filterwarnings("error:Skipping variable loading")
def test_a_gan_run_resumes_from_its_checkpoint_with_both_optimizers(tmp_path):
    from models.training import train

    project = gallery.open_template("gan")
    project.recipe["limit"] = 300
    train(project, epochs=2, out_dir=tmp_path)
    resumed = train(project, epochs=1, initial_weights=tmp_path / "checkpoints" / "last.weights.h5")
    assert resumed.stopped == "completed" and resumed.epochs_run == 1


@pytest.mark.filterwarnings("error:Skipping variable loading")
def test_a_loop_resumes_every_model_from_the_files_beside_its_checkpoint(tmp_path):
    from models.training import TrainingError, train

    project = gallery.open_template("dbn")
    project.recipe.update(limit=300, pretrain_epochs=1)
    first = train(project, epochs=3, out_dir=tmp_path)
    last = tmp_path / "checkpoints" / "last.weights.h5"
    loaded = train(project, epochs=0, initial_weights=last)  # no epoch: just the loaded weights
    for name in project.graphs:
        for a, b in zip(loaded.models[name].get_weights(), first.models[name].get_weights()):
            np.testing.assert_array_equal(a, b)
    (tmp_path / "checkpoints" / "last.rbm_2.weights.h5").unlink()
    with pytest.raises(TrainingError, match="last.rbm_2.weights.h5: no such checkpoint"):
        train(project, epochs=1, initial_weights=last)
