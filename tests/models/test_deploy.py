"""Compression, export, hardware targets, benchmarks and XLA on the gallery's digits CNN."""
from __future__ import annotations

import json
import shutil
import subprocess
import zipfile
from pathlib import Path

import numpy as np
import pytest

from models import backend
from models.project import Project
from models.runner import RunState, run
from tests.models.deploy_helpers import trained

keras = backend.keras()

from models import bench, compress, deploy, export  # noqa: E402
from models.cli import main  # noqa: E402
from models.training import load_project_data  # noqa: E402

# TFMOT 0.8 still imports distutils' version classes.
pytestmark = pytest.mark.filterwarnings("ignore::DeprecationWarning:tensorflow_model_optimization")

CONV_DENSE = ("conv_1", "conv_2", "conv_3", "dense", "digit")


@pytest.fixture(scope="module")
def cnn_path():
    return trained("cnn", epochs=6)


@pytest.fixture
def cnn(cnn_path):
    return Project.load(cnn_path)


@pytest.fixture(scope="module")
def digits(cnn_path):
    return load_project_data(Project.load(cnn_path))


def _keras_kernels(path: Path) -> dict[str, np.ndarray]:
    """Every kernel stored in a .keras file, read back through Keras."""
    model = keras.saving.load_model(str(path), compile=False)
    return {layer.name: np.asarray(layer.kernel) for layer in model.layers
            if hasattr(layer, "kernel")}


# --------------------------------------------------------------------------- compression


def test_pruning_to_half_writes_kernels_that_are_half_zeros(cnn, digits, tmp_path):
    result = compress.compress(cnn, compress.CompressOptions(prune=0.5, epochs=1),
                               dataset=digits)
    assert result.steps == ["prune"] and result.skipped == []
    assert set(result.sparsity) == set(CONV_DENSE)
    assert result.project.path is None and cnn.path is not None  # the original is untouched
    saved = result.project.save(tmp_path / "pruned.lforge",
                                models={result.project.main_name: result.model})
    export.export_project(Project.load(saved), "keras", tmp_path / "pruned.keras")
    for name, kernel in _keras_kernels(tmp_path / "pruned.keras").items():
        assert np.mean(kernel == 0) >= 0.49, name
    assert result.size_bytes_after < result.size_bytes_before  # zeros gzip away
    assert abs(result.after - result.before) < 0.1


def test_polynomial_schedule_reaches_its_target(cnn, digits):
    result = compress.compress(
        cnn, compress.CompressOptions(prune=0.6, schedule="polynomial", epochs=1), dataset=digits)
    for name in CONV_DENSE:
        assert result.sparsity[name] == pytest.approx(0.6, abs=0.01), name


def test_structured_2_4_zeroes_two_of_every_four_input_weights(cnn, digits):
    result = compress.compress(cnn, compress.CompressOptions(structured="2:4", epochs=1),
                               dataset=digits)
    # conv_1 sees one input channel: 2:4 cannot apply there, and the user is told.
    assert [(s[0], s[2]) for s in result.skipped] == [("conv_1", "prune")]
    assert "4 input channels" in result.skipped[0][3]
    for layer in result.model.layers:
        if layer.name in ("conv_2", "conv_3", "dense", "digit"):
            kernel = np.asarray(layer.kernel)
            # TFLite's layout puts input channels last: blocks of 4 along that axis.
            rows = np.moveaxis(kernel, -2, -1).reshape(-1, kernel.shape[-2])
            blocks = rows.reshape(rows.shape[0], -1, 4)
            assert np.all(np.sum(blocks == 0, axis=-1) >= 2), layer.name
    assert result.sparsity["conv_1"] == 0.0


def test_clustering_to_16_leaves_16_values_per_kernel(cnn, digits, tmp_path):
    result = compress.compress(cnn, compress.CompressOptions(cluster=16, epochs=1,
                                                             centroid_init="linear"),
                               dataset=digits)
    saved = result.project.save(tmp_path / "clustered.lforge",
                                models={result.project.main_name: result.model})
    reloaded = Project.load(saved).build()
    for layer in reloaded.layers:
        if hasattr(layer, "kernel"):
            assert len(np.unique(np.asarray(layer.kernel))) <= 16, layer.name
    assert all(result.distinct[name] <= 16 for name in CONV_DENSE)
    assert result.size_bytes_after < result.size_bytes_before / 2


def test_layers_tfmot_cannot_wrap_are_left_and_listed(tmp_path):
    from models.build import graph_from_model
    from models.project import new_project

    L = keras.layers
    x = keras.Input((4,), name="x")
    h = L.Dense(8, activation="relu", name="hidden")(x)
    h = L.BatchNormalization(name="norm")(h)
    h = L.PReLU(name="prelu")(h)
    model = keras.Model(x, L.Dense(3, activation="softmax", name="out")(h))
    project = new_project(graph_from_model(model))
    project.dataset = {"source": "builtin", "name": "iris"}
    project.weights[project.main_name] = model.get_weights()
    result = compress.compress(project, compress.CompressOptions(prune=0.5, qat=True, epochs=1))
    listed = {(layer, step) for layer, _, step, _ in result.skipped}
    assert ("prelu", "prune") in listed and ("prelu", "qat") in listed
    assert ("norm", "prune") not in listed  # nothing to prune there: nothing to report
    assert result.sparsity["hidden"] == pytest.approx(0.5, abs=0.02)
    assert result.sparsity.get("prelu") is None  # PReLU's alpha is not a kernel
    structured = compress.compress(project, compress.CompressOptions(structured="2:4", epochs=1))
    assert [(layer, step) for layer, _, step, _ in structured.skipped] == [("prelu", "prune")]
    assert structured.sparsity["hidden"] == pytest.approx(0.5, abs=0.02)


def test_a_layer_without_a_tf_keras_twin_is_named(tmp_path):
    from models.build import graph_from_model
    from models.layers import Squash
    from models.project import new_project

    L = keras.layers
    x = keras.Input((4,))
    model = keras.Model(x, L.Dense(3, activation="softmax")(Squash(name="caps")(L.Dense(4)(x))))
    project = new_project(graph_from_model(model))
    project.dataset = {"source": "builtin", "name": "iris"}
    project.weights[project.main_name] = model.get_weights()
    with pytest.raises(compress.CompressError, match="caps"):
        compress.compress(project, compress.CompressOptions(prune=0.5, epochs=1))


@pytest.mark.parametrize("options, words", [
    (compress.CompressOptions(), "choose what to do"),
    (compress.CompressOptions(prune=1.5), "between 0 and 1"),
    (compress.CompressOptions(prune=0.5, schedule="cubic"), "schedule"),
    (compress.CompressOptions(cluster=1), "2..256"),
    (compress.CompressOptions(cluster=8, centroid_init="magic"), "centroid"),
    (compress.CompressOptions(qat=True, epochs=0), "at least one"),
])
def test_bad_options_say_what_is_wrong(options, words):
    with pytest.raises(compress.CompressError, match=words):
        options.check()


def test_untrained_project_is_refused(cnn):
    from models import gallery

    with pytest.raises(compress.CompressError, match="train it first"):
        compress.compress(gallery.open_template("cnn"), compress.CompressOptions(prune=0.5))


def test_compression_can_be_cancelled_while_fine_tuning(cnn, digits):
    class CancelOnTraining(RunState):
        def progress(self, fraction, message=None):
            super().progress(fraction, message)
            if message and "epoch" in message:
                self.cancel()

    state = run(lambda st: compress.compress(cnn, compress.CompressOptions(prune=0.5, epochs=3),
                                             state=st, dataset=digits), CancelOnTraining())
    assert state.status == "cancelled" and state.result is None


def test_keras_quantize_int8_quantizes_the_dense_layers_and_lists_the_rest(cnn, digits, tmp_path):
    out = tmp_path / "q.keras"
    done = compress.keras_quantize(cnn, "int8", out, dataset=digits)
    assert done["quantized"] == ["dense", "digit"]
    assert {item["layer"] for item in done["left_float"]} == {"conv_1", "conv_2", "conv_3"}
    assert out.exists() and abs(done["after"] - done["before"]) <= 0.02
    reloaded = keras.saving.load_model(str(out), compile=False)
    assert reloaded.get_layer("dense").kernel.dtype == "int8"


def test_keras_float8_does_not_apply_to_an_embedding_only_model():
    L = keras.layers
    x = keras.Input((5,), dtype="int32")
    model = keras.Model(x, L.GlobalAveragePooling1D()(L.Embedding(10, 4, name="emb")(x)))
    quantized, left = compress.keras_quantize_support(model, "float8")
    assert quantized == [] and left[0][0] == "emb" and "int8 and int4" in left[0][1]


# --------------------------------------------------------------------------- export


def test_every_tflite_variant_and_their_sizes(cnn, digits, tmp_path):
    model = cnn.build()
    sizes = {}
    for fmt in ("tflite", "tflite-dynamic", "tflite-fp16", "tflite-int8", "tflite-int16x8"):
        result = export.export_model(model, fmt, tmp_path, dataset=digits)
        assert result.path.exists() and result.path.suffix == ".tflite"
        sizes[fmt] = result.size_bytes
    assert sizes["tflite-int8"] <= 0.35 * sizes["tflite"]
    assert sizes["tflite-fp16"] < 0.6 * sizes["tflite"]
    assert sizes["tflite-dynamic"] <= 0.35 * sizes["tflite"]
    runner = bench.TFLiteRunner(tmp_path / "model.tflite-int8.tflite")
    assert next(iter(runner.inputs.values()))["dtype"] == np.int8
    ref = bench.keras_predict(model, digits.x_test)
    assert bench.agreement(runner.predict(digits.x_test), ref, "classification") >= 0.9


def test_c_array_compiles_with_a_cpp_compiler(cnn, tmp_path):
    if shutil.which("g++") is None:
        pytest.skip("no g++ on this machine")
    result = export.export_project(cnn, None, tmp_path / "digits_model.cc", target="mcu")
    header = tmp_path / "digits_model.h"
    assert result.path == tmp_path / "digits_model.cc" and header.exists()
    assert "g_digits_model_len" in header.read_text()
    obj = tmp_path / "digits_model.o"
    subprocess.run(["g++", "-std=c++11", "-Wall", "-Werror", "-c", str(result.path), "-o",
                    str(obj)], check=True, cwd=tmp_path, timeout=120)
    assert obj.stat().st_size > result.model_bytes  # the array is in the object
    mcu = result.checks["mcu"]
    assert mcu["flash_bytes"] == result.model_bytes
    # conv_1 and conv_2 outputs (8x8x32 int8 each) are alive at once: at least 4 KB.
    assert mcu["activations_bytes"] >= 2 * 8 * 8 * 32
    assert mcu["arena_bytes"] >= mcu["activations_bytes"]


def test_onnx_runs_in_onnxruntime_like_keras(cnn, digits, tmp_path):
    import onnxruntime as ort

    model = cnn.build()
    result = export.export_model(model, "onnx", tmp_path / "m.onnx")
    session = ort.InferenceSession(str(result.path), providers=["CPUExecutionProvider"])
    name = session.get_inputs()[0].name
    x = digits.x_test[:32].astype("float32")
    np.testing.assert_allclose(session.run(None, {name: x})[0], model.predict(x, verbose=0),
                               atol=1e-5)


def test_keras_and_saved_model_exports(cnn, tmp_path):
    result = export.export_project(cnn, "keras", tmp_path / "m.keras")
    with zipfile.ZipFile(result.path) as z:
        assert "model.weights.h5" in z.namelist()
    folder = tmp_path / "other"
    folder.mkdir()
    (folder / "keep.txt").write_text("mine")
    saved = export.export_project(cnn, "saved-model", folder)
    assert (folder / "keep.txt").read_text() == "mine"  # never deletes a user's folder
    assert (saved.path / "saved_model.pb").exists()
    again = export.export_project(cnn, "saved-model", saved.path)  # replaces its own export
    assert again.path == saved.path


def test_edgetpu_target_passes_static_int8_and_flags_the_rest(cnn, digits, tmp_path):
    good = export.export_project(cnn, None, tmp_path, target="edgetpu", dataset=digits)
    assert good.format == "tflite-int8" and good.checks["edgetpu"]["ok"], good.checks
    assert export.inspect_tflite(good.path)["static"]
    # Without the target: a free batch size leaves int32 shape arithmetic in the graph.
    free = export.export_model(cnn.build(), "tflite-int8", tmp_path / "free.tflite",
                               dataset=digits)
    check = export.edgetpu_check(free.path)
    assert not check["ok"] and any("SHAPE" in p for p in check["problems"])
    float_check = export.edgetpu_check(export.tflite_bytes(cnn.build(), "float"))
    assert any("float32" in p for p in float_check["problems"])


def test_targets_refuse_formats_they_cannot_run():
    with pytest.raises(export.ExportError, match="tflite-int8"):
        export.check_format("tflite", "edgetpu")
    with pytest.raises(export.ExportError, match="unknown target"):
        export.check_format(None, "fpga")
    with pytest.raises(export.ExportError, match="choose a format"):
        export.check_format(None, None)
    assert export.check_format(None, "gpu") == "tflite-fp16"
    assert export.check_format(None, "mcu") == "c-array"


def test_greedy_arena_shares_memory_between_tensors_that_do_not_overlap():
    # a -> b -> c: a and c never live together, so they share one slot.
    buffers = [(1000, 0, 1), (500, 1, 2), (1000, 2, 3)]
    assert export._greedy_arena(buffers) == 1008 + 512
    assert export._greedy_arena([(100, 0, 5), (100, 0, 5)]) == 224


def test_untrained_export_is_refused():
    from models import gallery

    with pytest.raises(export.ExportError, match="train it first"):
        export.export_project(gallery.open_template("cnn"), "tflite", "/tmp/never.tflite")


# --------------------------------------------------------------------------- bench, XLA


def test_benchmark_scores_and_times_each_runtime(cnn, digits, tmp_path):
    plan = deploy.DeployPlan(formats=("tflite", "tflite-int8", "onnx", "c-array"), threads=2,
                             keras_quantize="int8")
    rows = []
    state = RunState()
    state.subscribe(lambda ev: rows.append(ev.payload) if ev.kind == "row" else None)
    report = deploy.run_deploy(cnn, plan, tmp_path, state=state, dataset=digits)
    by_name = {r.name: r for r in report.rows}
    assert list(by_name) == ["keras (float)", "keras (int8, Keras quantize)", "tflite",
                             "tflite-int8", "onnx", "c-array"]
    assert report.keras_quantize["quantized"] == ["dense", "digit"]
    assert "stay float" in by_name["keras (int8, Keras quantize)"].notes[0]
    assert [r["name"] for r in rows] == list(by_name)  # handed over one by one
    assert by_name["tflite"].agreement == 1.0 and by_name["onnx"].agreement == 1.0
    assert by_name["tflite"].runtime == "litert" and by_name["tflite"].threads == 2
    for name in ("keras (float)", "tflite", "tflite-int8", "onnx"):
        row = by_name[name]
        assert row.latency_ms > 0 and row.metric == "accuracy" and 0 < row.value <= 1, name
        assert row.size_bytes > 0
    assert by_name["c-array"].latency_ms is None and by_name["c-array"].notes
    assert by_name["keras (float)"].value == pytest.approx(
        bench.score(bench.keras_predict(cnn.build(), digits.x_test), digits)["value"])
    assert json.dumps(report.to_json())


def test_prune_cluster_qat_run_keeps_zeros_and_clusters_and_exports_for_the_edge_tpu(
        cnn, digits, tmp_path):
    options = compress.CompressOptions(prune=0.5, cluster=8, qat=True, epochs=1)
    plan = deploy.DeployPlan(compress=options, formats=("tflite-int8",), target="edgetpu")
    report = deploy.run_deploy(cnn, plan, tmp_path, dataset=digits)
    result = report.compression
    assert result.steps == ["prune", "cluster", "qat"]
    for name in CONV_DENSE:
        assert result.sparsity[name] >= 0.45, name  # sparsity-preserving clustering and PCQAT
        # Cluster-preserving QAT keeps the clusters of each Conv2D output channel.
        assert result.distinct_per_channel[name] <= 8, name
    assert result.distinct["dense"] <= 8 and result.distinct["digit"] <= 8
    info = export.inspect_tflite(result.qat_tflite)
    kernels = [t for t in info["tensors"].values() if t["constant"] and len(t["shape"]) >= 2]
    assert kernels and all(t["dtype"] == "int8" for t in kernels)
    assert result.qat_score is not None and result.qat_score > 0.5
    assert "float" in " ".join(result.notes)
    names = [r.name for r in report.rows]
    assert names == ["keras (float)", "keras (prune+cluster+qat)", "tflite (QAT int8)",
                     "tflite-int8 (compressed)"]
    assert "gzipped" in report.rows[1].notes[0]
    assert report.exports[0].checks["edgetpu"]["ok"]
    assert (tmp_path / "compressed.keras").exists()
    assert (tmp_path / "compressed.qat-int8.tflite").exists()


def test_xla_on_and_off_both_train_and_the_speedup_is_reported():
    project = Project.load(trained("mlp", epochs=2))
    result = bench.measure_xla(project, epochs=2, repeats=2)
    assert result["device"] in ("CPU",) or result["device"].startswith("GPU")
    for part in ("train", "inference"):
        assert result[part]["speedup"] > 0
        assert result[part]["on"] and result[part]["off"]
    assert result["train"]["on"]["compile_overhead_s"] >= 0


def test_optimized_hlo_text(cnn):
    text = bench.hlo_text(cnn.build(), "optimized_hlo")
    assert text.startswith("HloModule") and "f32[1,8,8,1]" in text
    with pytest.raises(bench.BenchError, match="stage"):
        bench.hlo_text(cnn.build(), "assembly")


# --------------------------------------------------------------------------- command line


def _last_json(text: str) -> dict:
    return json.loads(text.strip().splitlines()[-1])


def test_cli_compress_json(cnn_path, tmp_path, capsys):
    out = tmp_path / "p.lforge"
    assert main(["compress", str(cnn_path), "--prune", "0.5", "--epochs", "1", "--out", str(out),
                 "--json"]) == 0
    data = _last_json(capsys.readouterr().out)
    for key in ("accuracy_before", "accuracy_after", "sparsity", "size_bytes_before",
                "size_bytes_after"):
        assert key in data
    assert set(data["sparsity"]) == set(CONV_DENSE) and "gzip" in data["size_definition"]
    assert out.exists() and Path(data["out"]) == out


def test_cli_export_and_bench_json(cnn_path, tmp_path, capsys):
    assert main(["export", str(cnn_path), "--target", "edgetpu", "--out", str(tmp_path),
                 "--json"]) == 0
    data = _last_json(capsys.readouterr().out)
    assert data["format"] == "tflite-int8" and data["checks"]["edgetpu"]["ok"]
    assert main(["bench", str(cnn_path), "--formats", "tflite,tflite-fp16", "--out",
                 str(tmp_path / "b"), "--json"]) == 0
    data = _last_json(capsys.readouterr().out)
    assert [r["name"] for r in data["rows"]] == ["keras (float)", "tflite", "tflite-fp16"]


@pytest.mark.parametrize("argv, words", [
    (["export", "CNN", "--format", "tflite", "--target", "edgetpu", "--out", "x"], "tflite-int8"),
    (["compress", "CNN", "--out", "x.lforge"], "choose what to do"),
    (["compress", "CNN", "--prune", "0.5", "--out", "x.keras"], ".lforge"),
    (["compress", "CNN", "--keras-quantize", "int8", "--prune", "0.5", "--out", "x.keras"],
     "path of its own"),
    (["bench", "CNN", "--formats", "tflite,pdf"], "unknown format"),
])
def test_cli_errors_are_one_line(cnn_path, argv, words, capsys):
    argv = [str(cnn_path) if a == "CNN" else a for a in argv]
    assert main(argv) == 1
    err = capsys.readouterr().err.strip()
    assert words in err and len(err.splitlines()) == 1


# --------------------------------------------------------------------------- the targets


@pytest.mark.slow
def test_full_accuracy_targets_on_the_trained_cnn(tmp_path):
    """Pruning to 50% costs at most 2 points; clustering to 16; int8 agrees on >= 98%."""
    project = Project.load(trained("cnn", epochs=None))
    digits = load_project_data(project)
    pruned = compress.compress(project, compress.CompressOptions(prune=0.5), dataset=digits)
    assert pruned.before - pruned.after <= 0.02
    saved = pruned.project.save(tmp_path / "p.lforge",
                                models={pruned.project.main_name: pruned.model})
    export.export_project(Project.load(saved), "keras", tmp_path / "p.keras")
    assert all(np.mean(k == 0) >= 0.49 for k in _keras_kernels(tmp_path / "p.keras").values())
    clustered = compress.compress(project, compress.CompressOptions(cluster=16), dataset=digits)
    assert max(clustered.distinct.values()) <= 16
    assert clustered.before - clustered.after <= 0.03
    model = project.build()
    float_tfl = export.export_model(model, "tflite", tmp_path, dataset=digits)
    int8 = export.export_model(model, "tflite-int8", tmp_path, dataset=digits)
    assert int8.size_bytes <= 0.35 * float_tfl.size_bytes
    agree = bench.agreement(bench.TFLiteRunner(int8.path).predict(digits.x_test),
                            bench.keras_predict(model, digits.x_test), "classification")
    assert agree >= 0.98


@pytest.mark.slow
def test_xla_on_the_cnn():
    result = bench.measure_xla(Project.load(trained("cnn", epochs=None)), epochs=3)
    assert result["train"]["speedup"] > 0 and result["inference"]["speedup"] > 0


def test_a_model_with_a_dict_of_inputs_runs_in_every_runtime(tmp_path):
    from models.data import Dataset

    L = keras.layers
    keras.utils.set_random_seed(0)
    a, b = keras.Input((3,), name="a"), keras.Input((2,), name="b")
    h = L.Concatenate()([L.Dense(8, activation="relu")(a), L.Dense(8, activation="relu")(b)])
    model = keras.Model({"a": a, "b": b}, L.Dense(3, activation="softmax")(h))
    rng = np.random.default_rng(0)

    def split(n):
        x = {"a": rng.normal(size=(n, 3)).astype("float32"),
             "b": rng.normal(size=(n, 2)).astype("float32")}
        return x, ((x["a"][:, 0] + x["b"][:, 1] > 0) + (x["a"][:, 1] > 1)).astype("int32")

    data = Dataset(*split(120), *split(10), *split(40), task="classification",
                   class_names=["0", "1", "2"])
    variants = [bench.Variant("keras", "keras", model=model, input_names=["a", "b"])]
    for fmt in ("tflite", "tflite-int8", "onnx", "saved-model"):
        result = export.export_model(model, fmt, tmp_path, dataset=data)
        variants.append(bench.Variant(fmt, fmt, result.path, result.size_bytes,
                                      input_names=["a", "b"]))
    rows = bench.benchmark(variants, data)
    assert [r.notes for r in rows] == [[]] * 5
    for row in rows[1:]:
        # int8 rounds the probabilities to steps of 1/256 and more; the float ones match.
        tolerance = 0.1 if row.format == "tflite-int8" else 1e-4
        assert row.agreement >= 0.95 and row.max_abs_diff < tolerance, row.name
    tpu = export.export_model(model, "tflite-int8", tmp_path / "tpu.tflite", dataset=data,
                              target="edgetpu")
    assert tpu.checks["edgetpu"]["ok"]
