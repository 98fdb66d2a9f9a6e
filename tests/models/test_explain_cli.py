"""``layerforge explain``: the project's own data and weights, JSON on the last line, pictures."""
import json
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from models.cli import EXPLAIN_METHODS, main
from tests.models import explain_cases as cases


@pytest.fixture(scope="module", autouse=True)
def _datasets():
    with cases.registered_datasets():
        yield

ROOT = Path(__file__).resolve().parents[2]


def last_json(text):
    return json.loads(text.strip().splitlines()[-1])


def _saved(tmp_path, model, dataset_name, name):
    project = cases.project_of(model, dataset_name)
    return str(project.save(tmp_path / f"{name}.lforge", models={"model": model}))


@pytest.fixture(scope="module")
def files(tmp_path_factory):
    tmp = tmp_path_factory.mktemp("explain_cli")
    return {
        "table": _saved(tmp, cases.one_feature()[0], "explain-one-feature", "table"),
        "reversal": _saved(tmp, cases.reversal()[0], "explain-reversal", "reversal"),
        "two": _saved(tmp, cases.two_inputs()[0], "explain-two-inputs", "two"),
        "square": _saved(tmp, cases.square()[0], "explain-square", "square"),
    }


def test_the_command_knows_every_method():
    from models.explain import METHODS

    assert list(EXPLAIN_METHODS) == list(METHODS)


def test_json_ranks_the_features_of_a_table(files, capsys):
    assert main(["explain", files["table"], "--method", "lime", "--samples", "8", "--json"]) == 0
    out = last_json(capsys.readouterr().out)
    assert out["method"] == "lime" and out["samples"] == list(range(8))
    assert out["feature_ranking"][0] == "key" and len(out["feature_ranking"]) == 5
    assert len(out["attributions"]) == 8 and len(out["attributions"][0]) == 5


def test_attention_json_holds_each_heads_weights(files, capsys):
    assert main(["explain", files["reversal"], "--method", "attention", "--sample", "3", "--json"]) == 0
    out = last_json(capsys.readouterr().out)
    (layer,) = out["attention"][0]
    heads = np.asarray(layer["heads"])
    assert layer["layer"] == "attention" and heads.shape == (2, 8, 8)
    assert list(heads.mean(0).argmax(-1)) == [7 - i for i in range(8)]
    assert out["samples"] == [3]


def test_two_inputs_text_summary_picture_and_csv(files, tmp_path, capsys):
    png, csv = tmp_path / "two.png", tmp_path / "two.csv"
    assert main(["explain", files["two"], "--method", "integrated-gradients", "--samples", "4",
                 "--out", str(png), "--csv", str(csv)]) == 0
    text = capsys.readouterr().out
    assert "Integrated gradients of 4 test sample(s)" in text
    assert "feature ranking (mean |attribution|): cols[0]" in text
    assert f"wrote {png}" in text
    assert png.read_bytes()[:4] == b"\x89PNG" and png.stat().st_size > 10_000
    rows = csv.read_text().splitlines()
    assert len(rows) == 1 + 4 * (3 + 64) and any(",image," in r for r in rows)


def test_an_lstm_over_digit_rows_from_a_keras_file_with_data(tmp_path, capsys):
    model = cases.lstm_rows()[0]
    model.save(tmp_path / "lstm.keras")
    assert main(["explain", str(tmp_path / "lstm.keras"), "--method", "deep-shap"]) == 1
    assert "has no data to explain; give --data" in capsys.readouterr().err
    assert main(["explain", str(tmp_path / "lstm.keras"), "--data", "builtin:digits-rows",
                 "--method", "shap", "--samples", "2", "--json"]) == 0
    out = last_json(capsys.readouterr().out)
    assert np.asarray(out["attributions"]).shape == (2, 8, 8)
    assert "feature_ranking" not in out  # digit rows are an image, not a table
    assert main(["explain", str(tmp_path / "lstm.keras"), "--data", "builtin:digits-rows",
                 "--method", "deep-shap"]) == 1
    assert "DeepExplainer of shap 0.51 has no rule for the TensorFlow op" in capsys.readouterr().err


def test_options_and_targets_reach_the_method(files, capsys):
    assert main(["explain", files["square"], "--method", "gradcam", "--option", "layer=conv_1",
                 "--class", "square", "--json"]) == 0
    out = last_json(capsys.readouterr().out)
    assert out["options"]["layer"] == "conv_1" and out["target_names"] == ["square"]


@pytest.mark.parametrize("args, message", [
    (["--method", "gradcam"], "Grad-CAM does not apply: Grad-CAM needs a convolution layer"),
    (["--method", "saliency", "--sample", "500"], "sample 500 does not exist: the test split has"),
    (["--method", "saliency", "--option", "steps"], "--option 'steps': write it as KEY=VALUE"),
    (["--method", "kernel-shap", "--option", "nsamples=many"], "option nsamples of kernel-shap takes a number"),
])
def test_bad_requests_are_one_line(files, capsys, args, message):
    assert main(["explain", files["table"], *args]) == 1
    err = capsys.readouterr().err
    assert message in err and "Traceback" not in err and err.count("\n") == 1


def test_a_project_without_weights_or_data_says_what_to_do(tmp_path, capsys):
    model = cases.one_feature()[0]
    project = cases.project_of(model, "explain-one-feature")
    project.weights.clear()
    path = project.save(tmp_path / "untrained.lforge")
    assert main(["explain", str(path), "--method", "shap"]) == 1
    err = capsys.readouterr().err
    assert "has no trained weights" in err and "--train-quick" in err
    project.dataset = None
    path = project.save(tmp_path / "nodata.lforge")
    assert main(["explain", str(path), "--method", "shap"]) == 1
    assert "has no data to explain" in capsys.readouterr().err


def test_train_quick_trains_an_untrained_project_first(tmp_path, capsys):
    model = cases.one_feature()[0]
    project = cases.project_of(model, "explain-one-feature")
    project.weights.clear()
    project.recipe.update({"epochs": 40, "quick": {"epochs": 25}, "learning_rate": 0.01})
    path = project.save(tmp_path / "untrained.lforge")
    assert main(["explain", str(path), "--method", "kernel-shap", "--samples", "6",
                 "--train-quick", "--json"]) == 0
    captured = capsys.readouterr()
    assert "training it with its quick preset first" in captured.err
    assert last_json(captured.out)["feature_ranking"][0] == "key"
    assert not Path(str(path).replace(".lforge", ".weights.h5")).exists()  # nothing saved


@pytest.mark.slow
def test_a_real_subprocess_explains_a_built_in_dataset(tmp_path):
    """The user's view: a fresh process, the project's own data (iris), quiet stderr.

    Slow: a fresh process imports TensorFlow and shap (about 20 s on a busy machine).
    """
    from models import backend

    keras = backend.keras()
    from models.data import load_dataset

    keras.utils.set_random_seed(0)
    ds = load_dataset({"source": "builtin", "name": "iris"})
    x = keras.Input((4,), name="flower")
    h = keras.layers.Dense(16, activation="relu")(x)
    model = keras.Model(x, keras.layers.Dense(3, activation="softmax")(h))
    model.compile("adam", "sparse_categorical_crossentropy")
    model.fit(ds.x_train, ds.y_train, epochs=40, verbose=0)
    project = cases.project_of(model, "iris")
    path = project.save(tmp_path / "iris.lforge", models={"model": model})
    r = subprocess.run([sys.executable, "-m", "models.cli", "explain", str(path), "--method",
                        "kernel-shap", "--samples", "5", "--json"],
                       capture_output=True, text=True, cwd=ROOT, timeout=300)
    assert r.returncode == 0, r.stderr
    out = last_json(r.stdout)
    assert sorted(out["feature_ranking"]) == sorted(ds.feature_names)
    assert r.stderr.strip() == ""


def test_attention_on_the_gallerys_reversal_template_looks_at_the_mirrored_position(tmp_path,
                                                                                    capsys):
    """The `attention` template, trained with its quick preset, then explained from the command."""
    out = tmp_path / "att"
    assert main(["train", "gallery:attention", "--quick", "--out", str(out), "--json"]) == 0
    assert last_json(capsys.readouterr().out)["quality"]["value"] >= 0.95
    code = main(["explain", str(out / "project.lforge"), "--method", "attention", "--sample", "0",
                 "--samples", "4", "--json"])
    result = last_json(capsys.readouterr().out)
    assert code == 0 and result["method"] == "attention"
    for per_sample in result["attention"]:
        heads = np.asarray(per_sample[0]["heads"])  # the template's one attention layer
        n = heads.shape[-1]
        mirrored = heads[:, np.arange(n), n - 1 - np.arange(n)]
        assert (heads.argmax(-1) == n - 1 - np.arange(n)).all()
        assert mirrored.mean() > 0.5
