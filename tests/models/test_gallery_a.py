"""The capsule, attention, transformer, memory and multi-modal templates and their generated data.

Every template builds, checks and trains a step here (fast); the ``slow``
tests train each quick preset and hold it to the issue's target.
"""
import time

import numpy as np
import pytest

from models import gallery
from models.data import load_dataset
from models.runner import RunState
from models.validate import validate

# slug: (quality metric, quick target, the live view's panel kinds)
TEMPLATES = {
    "capsnet": ("test_accuracy", 0.93, ["images", "bars"]),
    "attention": ("test_token_accuracy", 0.95, ["heatmap"]),
    "transformer": ("test_token_accuracy", 0.90, ["heatmap", "heatmap"]),
    "mann": ("test_token_accuracy", 0.90, ["heatmap", "heatmap"]),
    "multimodal": ("fusion_gain", 0.05, ["bars", "text"]),
}


def _train(project, **kwargs):
    from models.training import train

    state = RunState()
    result = train(project, state=state, **kwargs)
    shown = [e.payload for e in state.drain() if e.kind == "view"]  # {"epoch", "view"}
    return result, shown


# --------------------------------------------------------------------------- data


def test_reverse_and_sort_targets_are_the_inputs_reversed_and_sorted():
    rev = load_dataset({"source": "builtin", "name": "reverse", "n": 200})
    np.testing.assert_array_equal(rev.y_train, rev.x_train[:, ::-1])
    srt = load_dataset({"source": "builtin", "name": "sort", "n": 200})
    np.testing.assert_array_equal(srt.y_test, np.sort(srt.x_test, axis=1))
    for ds in (rev, srt):
        assert ds.task == "sequence" and ds.num_classes == 11 and ds.modality == "text"
        assert ds.x_train.min() >= 1 and ds.x_train.max() <= 10 and ds.x_train.shape[1] == 8


def test_recall_answers_each_question_with_the_value_stored_under_its_key():
    ds = load_dataset({"source": "builtin", "name": "recall", "n": 100})
    keys, values, y = ds.x_train["keys"], ds.x_train["values"], ds.y_train
    for k, v, t in zip(keys, values, y):
        stored = dict(zip(k[:4], v[:4]))
        assert len(stored) == 4  # distinct keys
        assert sorted(k[4:]) == sorted(k[:4]) and np.all(v[4:] == 0) and np.all(t[:4] == 0)
        assert [stored[q] for q in k[4:]] == list(t[4:])
    assert ds.preview(2)["rows"][0][-1].startswith(". . . . ")  # the whole target shows


def test_captions_and_images_each_leave_the_digit_open():
    from models.datasets.multimodal import WORDS

    ds = load_dataset({"source": "builtin", "name": "digits-captions"})
    images, captions, y = ds.x_train["image"], ds.x_train["caption"], ds.y_train
    assert np.all(images[:, 3:] == 0) and images[:, :3].max() > 0.5
    words = [{WORDS[t] for t in c} for c in captions]
    for w, digit in zip(words, y):
        assert w == {"even" if digit % 2 == 0 else "odd", "small" if digit < 5 else "large",
                     "digit"}
    digits_per_caption = {}
    for w, digit in zip(words, y):
        digits_per_caption.setdefault(frozenset(w), set()).add(int(digit))
    assert sorted(len(d) for d in digits_per_caption.values()) == [2, 2, 3, 3]


def test_the_generated_sets_are_listed_with_their_shapes():
    from models.data import list_builtin

    listed = {b["name"]: (b["task"], b["shape"], b["classes"]) for b in list_builtin()}
    assert listed["reverse"] == listed["sort"] == ("sequence", (8,), 11)
    assert listed["recall"] == ("sequence", {"keys": (8,), "values": (8,)}, 11)
    assert listed["digits-captions"] == ("classification", {"caption": (3,), "image": (8, 8, 1)}, 10)


def test_bad_options_of_the_generated_sets_are_clear_errors():
    from models.data import DataError

    with pytest.raises(DataError, match="pairs must be from 1 to 10"):
        load_dataset({"source": "builtin", "name": "recall", "pairs": 11})
    with pytest.raises(DataError, match="visible_rows must be from 1 to 8"):
        load_dataset({"source": "builtin", "name": "digits-captions", "visible_rows": 0})


# --------------------------------------------------------------------------- smoke


def test_gallery_list_names_each_template_with_its_section(capsys):
    from models.cli import main

    assert main(["gallery", "list"]) == 0
    lines = capsys.readouterr().out.splitlines()
    expected = {"capsnet": "7.3.2", "seed-capsnet": "7.3.2", "attention": "7.5.1",
                "transformer": "7.5.2", "mann": "7.7.2", "multimodal": "7.7.4"}
    for slug, section in expected.items():
        assert any(line.split()[:2] == [slug, section] for line in lines), slug


@pytest.mark.parametrize("slug", sorted(TEMPLATES))
def test_template_checks_and_trains_a_step_with_its_live_view(slug):
    metric, _, kinds = TEMPLATES[slug]
    project = gallery.open_template(slug)
    report = validate(project.graph)
    assert report.valid, report.errors()
    assert project.meta["section"] in project.meta["explanation"]  # names the sheet's section
    project.recipe.update(limit=150, histograms=False, grad_norms=False)  # tested elsewhere
    result, shown = _train(project, epochs=1)
    assert result.stopped == "completed" and result.epochs_run == 1
    assert result.quality["metric"] == metric and np.isfinite(result.quality["value"])
    assert [v["epoch"] for v in shown] == [0, 1], result.notes
    assert [p["kind"] for p in shown[-1]["view"]["panels"]] == kinds


def test_seed_capsnet_has_the_sheets_shapes_and_trains_on_28x28_images():
    from models.data import dataset_from_arrays

    project = gallery.open_template("seed-capsnet")
    assert project.dataset == {"source": "keras", "name": "mnist"}
    report = validate(project.graph)
    shapes = {name: info.output_shape for name, info in report.nodes.items()}
    assert shapes["conv"] == [None, 20, 20, 256]
    assert shapes["primary_caps"] == [None, 1152, 8]
    assert shapes["digit_caps"] == [None, 10, 16]
    assert shapes["decoder_1"] == [None, 512] and shapes["decoder_2"] == [None, 1024]
    assert shapes["reconstruction"] == [None, 28, 28]
    rng = np.random.default_rng(0)
    data = dataset_from_arrays(rng.random((12, 28, 28, 1)).astype("float32"),
                               np.arange(12) % 10, task="classification", test_fraction=0.2)
    result, shown = _train(project, dataset=data, epochs=1, batch_size=8)
    assert result.epochs_run == 1 and np.isfinite(result.history["loss"][0])
    assert np.asarray(shown[-1]["view"]["panels"][0]["images"]).shape[1:] == (28, 28)


def test_check_shows_the_seed_capsnets_shapes(capsys):
    from models.cli import main

    assert main(["check", "gallery:seed-capsnet"]) == 0
    out = capsys.readouterr().out
    for shape in ("[None, 20, 20, 256]", "[None, 1152, 8]", "[None, 10, 16]", "[None, 28, 28]"):
        assert shape in out
    assert "the model is valid" in out


def test_seed_capsnet_offline_says_in_one_line_that_mnist_needs_a_download(tmp_path, monkeypatch,
                                                                          capsys):
    import urllib.error

    from models import backend
    from models.cli import main

    backend.keras()
    import keras.src.backend.config as keras_config
    import keras.src.utils.file_utils as file_utils

    def no_network(url, *args, **kwargs):
        raise urllib.error.URLError("[Errno -3] Temporary failure in name resolution")

    monkeypatch.setattr(keras_config, "_KERAS_DIR", str(tmp_path))  # an empty cache
    monkeypatch.setattr(file_utils, "urlretrieve", no_network)
    assert main(["train", "gallery:seed-capsnet", "--quick"]) == 1
    err = capsys.readouterr().err.strip().splitlines()
    assert "needs an internet connection" in err[-1] and "Traceback" not in "\n".join(err)


def test_multimodal_gain_compares_with_models_trained_on_one_input(monkeypatch):
    """fusion_gain trains the same architecture twice more, each time with one input blanked."""
    import models.training as training
    from models.gallery import multimodal

    seen = []
    real = training.train

    def spy(project, **kwargs):
        data = kwargs["dataset"]
        seen.append({k: bool(np.any(v)) for k, v in data.x_train.items()})
        assert "extra_metrics" not in project.recipe and "live_view" not in project.recipe
        return real(project, **kwargs)

    monkeypatch.setattr(training, "train", spy)
    project = gallery.open_template("multimodal")
    project.recipe.update(limit=200, epochs=1)
    ds = training.load_project_data(project, project.recipe)
    model = project.build()
    out = multimodal.fusion_gain(model, ds, dict(project.recipe))
    assert seen == [{"image": True, "caption": False}, {"image": False, "caption": True}]
    fused = multimodal._accuracy(model, ds.x_test, ds.y_test)
    best = max(out["test_image_only_accuracy"], out["test_caption_only_accuracy"])
    assert out["fusion_gain"] == pytest.approx(fused - best)


def test_stopping_while_the_gain_is_measured_reports_progress_and_no_gain():
    from models import training
    from models.gallery import multimodal

    class Watched(RunState):
        def __init__(self):
            super().__init__()
            self.messages = []

        def progress(self, fraction, message=None):
            super().progress(fraction, message)
            self.messages.append(self.message)
            if "fusion_gain" in self.message and "batch 2/" in self.message:
                self.cancel()

    project = gallery.open_template("multimodal")
    project.recipe.update(limit=300, epochs=2)
    ds = training.load_project_data(project, project.recipe)
    outer = Watched()
    assert multimodal.fusion_gain(project.build(), ds, dict(project.recipe), state=outer) == {}
    assert any(m.startswith("fusion_gain: training the image-only model, epoch 1/2")
               for m in outer.messages)
    assert not any("caption-only" in m for m in outer.messages)  # stopped before the second


def state_metric(model, dataset, recipe, state):
    state.emit("measured", dataset.n_test)
    return {"test_seen_state": 1.0}


def test_a_metric_that_takes_the_state_gets_the_runs_state():
    from tests.models.test_training import mlp_project

    from models.training import train

    project = mlp_project(epochs=1, extra_metrics="tests.models.test_gallery_a:state_metric")
    state = RunState()
    result = train(project, state=state)
    assert result.metrics["test_seen_state"] == 1.0
    measured = [e.payload for e in state.drain() if e.kind == "measured"]
    assert len(measured) == 1 and measured[0] > 0  # it ran with the run's own state


# --------------------------------------------------------------------------- targets


@pytest.mark.slow
@pytest.mark.parametrize("slug", sorted(TEMPLATES))
def test_quick_preset_reaches_the_target_within_two_minutes(slug):
    metric, target, _ = TEMPLATES[slug]
    t0 = time.perf_counter()
    result, shown = _train(gallery.open_template(slug), quick=True)
    seconds = time.perf_counter() - t0
    assert result.quality["metric"] == metric
    assert result.quality["value"] >= target, result.metrics
    assert seconds < 120, f"{slug} took {seconds:.0f} s"
    _check_the_view_teaches(slug, shown[-1]["view"])


def _check_the_view_teaches(slug, view):
    """After training, each live view shows what the template is about."""
    panels = view["panels"]
    if slug == "attention":  # reversing: output position i attends to input position 7 - i
        m = np.asarray(panels[0]["matrix"])
        assert list(m.argmax(axis=1)) == list(range(7, -1, -1))
    elif slug == "mann":  # each question reads the slot its key was stored in
        read = np.asarray(panels[1]["matrix"])
        steps = panels[1]["y_labels"]
        stored = {label.split()[1].split("=")[0]: i for i, label in enumerate(steps[:4])}
        for i, label in enumerate(steps[4:], start=4):
            assert read[i].argmax() == stored[label.split()[1]], label
    elif slug == "capsnet":  # reconstructions resemble their inputs
        images = np.asarray(panels[0]["images"])
        n = len(images) // 2
        inputs, rebuilt = images[:n], images[n:]
        mean_image = inputs.mean(axis=0)
        assert np.mean((rebuilt - inputs) ** 2) < np.mean((mean_image - inputs) ** 2)
    elif slug == "multimodal":  # the fused model needs both inputs
        fused, image_only, caption_only = panels[0]["values"]
        assert fused > image_only and fused > caption_only
