"""Shape inference and validation: per-node errors that say what to change, never a raise."""
import time


from models.build import graph_from_model
from models.graph import SLOT, Call, Graph, Node, Slot
from models.validate import Validator, validate
from tests.models import archs


def _keras():
    from models import backend

    return backend.keras()


def _node_from(layer) -> Node:
    """A node from a live layer: its class name plus exactly its get_config()."""
    keras = _keras()
    ser = keras.saving.serialize_keras_object(layer)
    return Node(layer.name, ser["class_name"], ser["config"], ser["module"], ser["registered_name"])


def _graph(*layers, input_shape=(8,)):
    keras = _keras()
    g = Graph("t")
    inp = keras.layers.InputLayer(shape=input_shape, name="x")
    g.add_node(_node_from(inp))
    prev = "x"
    for layer in layers:
        n = g.add_node(_node_from(layer))
        g.connect(prev, n.name)
        prev = n.name
    return g


def test_shapes_and_params_match_keras_for_every_arch():
    for factory in archs.ALL:
        model = factory()
        report = validate(graph_from_model(model))
        assert report.valid, report.errors()
        assert report.params == model.count_params(), factory.__name__
        for layer in model.layers:
            info = report.nodes[layer.name]
            if len(layer._inbound_nodes) == 1 and not hasattr(layer, "layers"):
                want = [list(t.shape) for t in _keras().tree.flatten(layer.output)]
                got = info.output_shapes[0]
                assert [list(s) for s in got] == want, layer.name


def test_dense_after_conv_says_to_flatten():
    L = _keras().layers
    g = _graph(L.Conv2D(4, 3, name="conv"), L.Dense(2, name="head"), input_shape=(8, 8, 1))
    g.set_config("head", {})  # no change; Dense on 4-D is legal in Keras (applies to last axis)
    g2 = _graph(L.Dense(4, name="d"), L.Conv2D(4, 3, name="conv"))
    report = validate(g2)
    assert not report.valid
    err = report.nodes["conv"].error
    assert "Conv2D expects 4-D input" in err and "(None, 4)" in err and "Reshape" in err
    assert report.nodes["d"].error is None
    assert validate(g).valid


def test_add_shape_mismatch_names_shapes_and_fix():
    keras = _keras()
    L = keras.layers
    a = keras.Input((4,), name="a")
    b = keras.Input((5,), name="b")
    g = Graph()
    for t in (a, b):
        g.add_node(_node_from(t._keras_history[0]))
    n = g.add_node(_node_from(L.Add(name="add")))
    n.calls = [Call(args=[[{SLOT: 0}, {SLOT: 1}]], slots=[Slot("a"), Slot("b")], variadic=True)]
    g.connect("a", "add", 0)
    g.connect("b", "add", 1)
    report = validate(g)
    err = report.nodes["add"].error
    assert "Add needs inputs of the same shape" in err and "(None, 4)" in err and "(None, 5)" in err


def test_unconnected_input_and_downstream_errors():
    L = _keras().layers
    g = _graph(L.Dense(3, name="d1"), L.Dense(2, name="d2"))
    g.disconnect(g.edges_into("d1")[0])
    report = validate(g)
    assert "not connected" in report.nodes["d1"].error
    assert report.nodes["d2"].upstream_error and "'d1'" in report.nodes["d2"].error
    # root causes come before their consequences; the orphaned Input is one too
    names = [n for n, _ in report.errors()]
    assert set(names[:2]) == {"x", "d1"} and names[-1] == "d2"
    assert "not connected to anything" in report.nodes["x"].error


def test_bad_parameter_value_is_reported_on_the_node():
    L = _keras().layers
    g = _graph(L.Dense(3, name="d1"))
    g.set_config("d1", {"units": -2})
    report = validate(g)
    assert not report.valid
    assert "parameter" in report.nodes["d1"].error or "units" in report.nodes["d1"].error


def test_unknown_layer_class_is_an_error_not_a_crash():
    g = _graph()
    g.add_node(Node("mystery", "NoSuchLayer", {"name": "mystery"}, module="nowhere"))
    g.connect("x", "mystery")
    report = validate(g)
    assert "NoSuchLayer" in report.nodes["mystery"].error


def test_cycle_is_reported_on_its_nodes():
    L = _keras().layers
    g = _graph(L.Dense(3, name="d1"), L.Concatenate(name="cat"))
    from models.graph import Edge

    g.node("cat").calls[0] = Call(args=[[{SLOT: 0}, {SLOT: 1}]], slots=[Slot("a"), Slot("b")])
    g.add_node(_node_from(L.Dense(3, name="loop")))
    g.edges.append(Edge("cat", 0, 0, "loop", 0, 0))
    g.edges.append(Edge("loop", 0, 0, "cat", 0, 1))
    report = validate(g)
    assert "cycle" in report.nodes["cat"].error and "cycle" in report.nodes["loop"].error


def test_empty_and_inputless_graphs():
    assert "empty" in validate(Graph()).graph_errors[0]
    g = Graph()
    g.add_node(Node("d", "Dense", {"name": "d", "units": 2}))
    report = validate(g)
    assert any("no Input layer" in m for m in report.graph_errors)


def test_validation_never_raises_even_on_garbage():
    g = _graph()
    g.add_node(Node("junk", "Dense", {"name": "junk", "units": "lots"}))
    g.connect("x", "junk")
    report = Validator().validate(g)
    assert report.nodes["junk"].error


def test_incremental_revalidation_only_recomputes_what_changed():
    L = _keras().layers
    layers = [L.Dense(16, name=f"d{i}") for i in range(60)]
    g = _graph(*layers, input_shape=(16,))
    v = Validator()
    t0 = time.perf_counter()
    v.validate(g)
    cold = time.perf_counter() - t0
    g.set_config("d30", {"units": 12})  # only d30 and d31 change shape or parameters
    t0 = time.perf_counter()
    report = v.validate(g)
    warm = time.perf_counter() - t0
    assert report.valid
    assert report.nodes["d30"].output_shape == [None, 12]
    assert report.nodes["d31"].params == 12 * 16 + 16
    print(f"cold {cold * 1000:.1f} ms, after one edit {warm * 1000:.1f} ms")
    assert warm < cold
