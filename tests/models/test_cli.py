"""The layerforge command, in process (fast) and as a real subprocess (the user's view)."""
import json
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from models.cli import main
from tests.models import archs

ROOT = Path(__file__).resolve().parents[2]


def run_cli(*args, cwd=None):
    env = dict(os.environ, TF_CPP_MIN_LOG_LEVEL="0")  # prove we silence it ourselves
    env.pop("LAYERFORGE_TF_LOGS", None)
    return subprocess.run([sys.executable, "-m", "models.cli", *args], capture_output=True,
                          text=True, cwd=cwd or ROOT, env=env, timeout=300)


def last_json(text):
    return json.loads(text.strip().splitlines()[-1])


def test_version_is_fast_and_imports_no_tensorflow():
    code = ("import sys, time; t = time.perf_counter(); from models.cli import main\n"
            "try:\n    main(['--version'])\nexcept SystemExit:\n    pass\n"
            "print(time.perf_counter() - t, 'tensorflow' in sys.modules, 'keras' in sys.modules)")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, cwd=ROOT)
    line = out.stdout.strip().splitlines()
    assert line[0].startswith("layerforge ")
    seconds, tf_loaded, keras_loaded = line[-1].split()
    assert tf_loaded == "False" and keras_loaded == "False"
    assert float(seconds) < 1.0


def test_seed_mlp_pipeline_reports_0_495_and_is_quiet(tmp_path):
    """The issue's own commands: gallery new, then predict, as a user types them."""
    r = run_cli("gallery", "new", "seed-mlp", str(tmp_path / "m.lforge"))
    assert r.returncode == 0, r.stderr
    r = run_cli("predict", str(tmp_path / "m.lforge"), "--input", "[[0.5, 0.8]]", "--json")
    assert r.returncode == 0, r.stderr
    out = last_json(r.stdout)
    assert round(out["outputs"][0][0], 3) == 0.495
    # no TensorFlow log noise reaches the terminal
    assert "absl" not in r.stderr and "oneDNN" not in r.stderr and "cuda" not in r.stderr.lower()
    assert r.stderr.strip() == ""


def test_check_json_lists_every_node(tmp_path, capsys):
    model = archs.multi_io_shared()
    model.save(tmp_path / "m.keras")
    assert main(["check", str(tmp_path / "m.keras"), "--json"]) == 0
    out = last_json(capsys.readouterr().out)
    assert out["valid"] is True and out["params"] == model.count_params()
    by_name = {n["name"]: n for n in out["nodes"]}
    assert set(by_name) == {l.name for l in model.layers}
    assert by_name["shared"]["output_shape"] == [None, 6]
    assert by_name["cat"]["type"] == "Concatenate" and by_name["cat"]["output_shape"] == [None, 18]
    assert set(out["nodes"][0]) == {"name", "type", "output_shape", "params", "error"}


def test_check_invalid_graph_exits_1_with_node_errors(tmp_path, capsys):
    from models.cli import load_any

    model = archs.mlp_sequential()
    model.save(tmp_path / "m.keras")
    assert main(["convert", str(tmp_path / "m.keras"), str(tmp_path / "m.lforge")]) == 0
    project = load_any(str(tmp_path / "m.lforge"))
    dense = [n for n in project.graph.nodes.values() if n.class_name == "Dense"][1]
    project.graph.disconnect(project.graph.edges_into(dense.name)[0])
    project.save(tmp_path / "broken.lforge")
    capsys.readouterr()
    assert main(["check", str(tmp_path / "broken.lforge"), "--json"]) == 1
    out = last_json(capsys.readouterr().out)
    assert out["valid"] is False
    errs = {n["name"]: n["error"] for n in out["nodes"] if n["error"]}
    assert "not connected" in errs[dense.name]


def test_convert_round_trip_and_python(tmp_path, capsys):
    model = archs.cnn()
    x = archs.sample_inputs(model)
    model.save(tmp_path / "m.keras")
    assert main(["convert", str(tmp_path / "m.keras"), str(tmp_path / "m.lforge")]) == 0
    assert (tmp_path / "m.weights.h5").exists()
    assert main(["convert", str(tmp_path / "m.lforge"), str(tmp_path / "back.keras")]) == 0
    assert main(["convert", str(tmp_path / "m.lforge"), str(tmp_path / "m.py")]) == 0
    from models.build import load_model_file

    _, back = load_model_file(tmp_path / "back.keras")
    np.testing.assert_array_equal(np.asarray(model(x)), np.asarray(back(x)))
    ns = {"__name__": "generated"}
    exec(compile((tmp_path / "m.py").read_text(), "m.py", "exec"), ns)
    built = ns["build_model"]()
    assert built.count_params() == model.count_params()
    assert [type(l).__name__ for l in built.layers] == [type(l).__name__ for l in model.layers]


def test_predict_trace_csv_and_npy(tmp_path, capsys):
    main(["gallery", "new", "seed-cnn", str(tmp_path / "c.lforge")])
    from models.gallery.seeds import CNN_X

    np.save(tmp_path / "x.npy", np.array(CNN_X, dtype="float32").reshape(1, 4, 4, 1))
    capsys.readouterr()
    assert main(["predict", str(tmp_path / "c.lforge"), "--input", str(tmp_path / "x.npy"),
                 "--trace", "--json"]) == 0
    out = last_json(capsys.readouterr().out)
    layers = [s["layer"] for s in out["trace"]]
    assert layers == ["image", "conv", "relu", "max_pool", "flatten", "dense", "softmax"]
    np.testing.assert_allclose(out["outputs"][0], [0.2227, 0.7773], atol=1e-4)
    main(["gallery", "new", "seed-mlp", str(tmp_path / "m.lforge")])
    (tmp_path / "x.csv").write_text("a,b\n0.5,0.8\n0.1,0.2\n")
    capsys.readouterr()
    assert main(["predict", str(tmp_path / "m.lforge"), "--input", str(tmp_path / "x.csv"),
                 "--json"]) == 0
    assert len(last_json(capsys.readouterr().out)["outputs"]) == 2


@pytest.mark.parametrize("args,message", [
    (["check", "nope.lforge"], "no such file"),
    (["check", "model.txt"], "unknown file type"),
    (["predict", "gallery:seed-mlp", "--input", "[[1, 2, 3]]"], "does not fit the model"),
    (["predict", "gallery:seed-mlp", "--input", "[[0.5, "], "neither a file"),
    (["gallery", "new", "no-such-template", "x.lforge"], "no gallery template"),
])
def test_errors_are_one_clear_line_without_traceback(args, message, capsys, tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    Path("model.txt").write_text("hello")
    assert main(args) == 1
    err = capsys.readouterr().err
    assert message in err and "Traceback" not in err
    assert err.startswith("layerforge: ")


def test_csv_with_junk_cell_names_the_row(tmp_path, capsys):
    (tmp_path / "bad.csv").write_text("a,b\n0.5,0.8\n0.1,oops\n")
    assert main(["predict", "gallery:seed-mlp", "--input", str(tmp_path / "bad.csv")]) == 1
    err = capsys.readouterr().err
    assert "row 3" in err and "'oops'" in err


def test_gallery_list_json(capsys):
    assert main(["gallery", "list", "--json"]) == 0
    items = last_json(capsys.readouterr().out)["templates"]
    slugs = {t["slug"]: t for t in items}
    assert {"seed-mlp", "seed-cnn"} <= set(slugs)
    assert slugs["seed-mlp"]["section"] == "7.1" and slugs["seed-cnn"]["section"] == "7.3.1"
