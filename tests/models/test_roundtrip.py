""".keras -> .lforge -> .keras is exact: same structure, same outputs for the same inputs."""
import numpy as np
import pytest

from models.build import build_model, graph_from_model, load_model_file, save_model_file
from models.graph import Graph
from models.project import Project, new_project
from tests.models import archs


def _outputs(model, x):
    from models import backend

    keras = backend.keras()
    return [np.asarray(v) for v in keras.tree.flatten(model(x, training=False))]


def _roundtrip(model, tmp_path):
    """Save as .keras, import to a project, save the project, reload, export to .keras."""
    src = tmp_path / "src.keras"
    model.save(src)
    graph, loaded = load_model_file(src)
    project = new_project(graph)
    project.weights[project.main_name] = loaded.get_weights()
    saved = project.save(tmp_path / "proj.lforge", models={project.main_name: loaded})
    reopened = Project.load(saved)
    rebuilt = reopened.build()
    out = tmp_path / "back.keras"
    save_model_file(rebuilt, out)
    _, final = load_model_file(out)
    return final


@pytest.mark.parametrize("factory", archs.ALL, ids=lambda f: f.__name__)
def test_keras_lforge_keras_gives_identical_outputs(factory, tmp_path):
    model = factory()
    x = archs.sample_inputs(model)
    final = _roundtrip(model, tmp_path)
    assert [l.name for l in final.layers] == [l.name for l in model.layers]
    assert final.count_params() == model.count_params()
    for a, b in zip(_outputs(model, x), _outputs(final, x)):
        np.testing.assert_array_equal(a, b)


@pytest.mark.parametrize("factory", archs.ALL, ids=lambda f: f.__name__)
def test_graph_config_round_trip_is_exact(factory):
    """Keras config -> graph -> Keras config loses nothing Keras needs."""
    model = factory()
    graph = graph_from_model(model)
    again = Graph.from_dict(graph.to_dict())
    rebuilt = build_model(again)
    assert type(rebuilt).__name__ == type(model).__name__
    for a, b in zip(model.layers, rebuilt.layers):
        assert a.name == b.name and type(a) is type(b)
        if not hasattr(a, "layers"):
            assert a.get_config() == b.get_config()
    assert rebuilt.count_params() == model.count_params()


def test_shared_and_nested_structure_is_kept():
    graph = graph_from_model(archs.nested())
    inner = graph.node("inner_block")
    assert inner.subgraph is not None and len(inner.calls) == 2
    seq = graph.node("inner_seq")
    assert seq.subgraph is not None and seq.subgraph.kind == "sequential"
    shared = graph_from_model(archs.multi_io_shared()).node("shared")
    assert len(shared.calls) == 2


def test_sequential_stays_sequential():
    model = archs.mlp_sequential()
    graph = graph_from_model(model)
    assert graph.kind == "sequential"
    rebuilt = build_model(graph)
    assert type(rebuilt).__name__ == "Sequential"


def _applications():
    from models import backend

    keras = backend.keras()
    return {
        "mobilenet_v2": lambda: keras.applications.MobileNetV2(
            weights=None, input_shape=(64, 64, 3), alpha=0.35, classes=5),
        "efficientnet_b0": lambda: keras.applications.EfficientNetB0(
            weights=None, input_shape=(64, 64, 3), classes=5),
    }


@pytest.mark.parametrize("name", ["mobilenet_v2", "efficientnet_b0"])
def test_real_deep_architectures_round_trip(name, tmp_path):
    model = _applications()[name]()
    x = archs.sample_inputs(model)
    final = _roundtrip(model, tmp_path)
    assert len(final.layers) == len(model.layers) > 100
    assert final.count_params() == model.count_params()
    for a, b in zip(_outputs(model, x), _outputs(final, x)):
        np.testing.assert_allclose(a, b, rtol=1e-6, atol=1e-6)


def test_h5_and_json_import(tmp_path):
    model = archs.multi_io_shared()
    x = archs.sample_inputs(model)
    model.save(tmp_path / "m.h5")
    graph, loaded = load_model_file(tmp_path / "m.h5")
    for a, b in zip(_outputs(model, x), _outputs(loaded, x)):
        np.testing.assert_allclose(a, b, rtol=1e-6)
    (tmp_path / "m.json").write_text(model.to_json())
    graph_j, _ = load_model_file(tmp_path / "m.json")
    assert build_model(graph_j).count_params() == model.count_params()
    assert sorted(graph_j.nodes) == sorted(graph.nodes)
