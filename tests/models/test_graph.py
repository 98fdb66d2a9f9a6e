"""The graph spec on its own: edits, events, serialisation. No TensorFlow needed."""
import json

import pytest

from models.graph import SLOT, Call, Edge, Graph, GraphError, Node, Slot, snake_case


def _input(name="x", shape=(None, 4)):
    return Node(name, "InputLayer", {"batch_shape": list(shape), "dtype": "float32",
                                     "sparse": False, "ragged": False, "name": name,
                                     "optional": False})


def _dense(name="dense", units=3):
    return Node(name, "Dense", {"name": name, "units": units, "activation": "linear"})


def _add(name="add"):
    return Node(name, "Add", {"name": name},
                calls=[Call(args=[[{SLOT: 0}, {SLOT: 1}]], slots=[Slot("a"), Slot("b")], variadic=True)])


def chain():
    g = Graph("m")
    g.add_node(_input())
    g.add_node(_dense("d1"))
    g.add_node(_dense("d2"))
    g.connect("x", "d1")
    g.connect("d1", "d2")
    return g


def test_add_node_makes_names_unique_and_keeps_config_name_in_step():
    g = Graph()
    a = g.add_node(_dense("dense"))
    b = g.add_node(_dense("dense"))
    assert (a.name, b.name) == ("dense", "dense_1")
    assert b.config["name"] == "dense_1"


def test_events_are_emitted_for_every_edit():
    g = Graph()
    seen = []
    g.subscribe(lambda e: seen.append(e.kind))
    g.add_node(_input())
    g.add_node(_dense())
    edge = g.connect("x", "dense")
    g.set_config("dense", {"units": 7})
    g.disconnect(edge)
    g.rename_node("dense", "head")
    g.remove_node("head")
    assert seen == ["node_added", "node_added", "edge_added", "config_changed",
                    "edge_removed", "node_renamed", "node_removed"]


def test_connect_refuses_cycles_with_the_path():
    g = chain()
    with pytest.raises(GraphError, match="already connected"):
        g.connect("d2", "d1")  # d1's only slot is taken: refused for that first
    g.disconnect(g.edges_into("d1")[0])
    with pytest.raises(GraphError, match="cycle.*d1.*d2|cycle.*d2.*d1"):
        g.connect("d2", "d1")
    assert len(g.edges) == 1  # the refused edge was not kept


def test_connect_refuses_occupied_slot_and_input_targets():
    g = chain()
    g.add_node(_input("y"))
    with pytest.raises(GraphError, match="already connected"):
        g.connect("y", "d1", 0)
    with pytest.raises(GraphError, match="Input layer"):
        g.connect("d1", "y")


def test_variadic_input_grows_on_connect():
    g = Graph()
    for n in ("x", "y", "z"):
        g.add_node(_input(n))
    g.add_node(_add())
    for n in ("x", "y", "z"):
        g.connect(n, "add")
    call = g.node("add").calls[0]
    assert len(call.slots) == 3
    assert call.args == [[{SLOT: 0}, {SLOT: 1}, {SLOT: 2}]]


def test_remove_and_restore_node_is_exact():
    g = chain()
    before = g.to_dict()
    node, edges = g.remove_node("d1")
    assert "d1" not in g and not g.edges_into("d2")
    g.restore_node(node, edges)
    after = g.to_dict()
    assert sorted(map(json.dumps, after["edges"])) == sorted(map(json.dumps, before["edges"]))
    assert {n["name"] for n in after["nodes"]} == {n["name"] for n in before["nodes"]}


def test_set_config_refuses_unknown_keys_and_returns_previous_values():
    g = chain()
    with pytest.raises(GraphError, match="no parameter 'unitz'"):
        g.set_config("d1", {"unitz": 3})
    prev = g.set_config("d1", {"units": 9})
    assert prev == {"units": 3}
    assert g.node("d1").config["units"] == 9


def test_rename_updates_edges_and_refuses_clashes():
    g = chain()
    g.rename_node("d1", "hidden")
    assert {e.src for e in g.edges} == {"x", "hidden"}
    with pytest.raises(GraphError, match="already exists"):
        g.rename_node("hidden", "d2")
    with pytest.raises(GraphError, match="not a valid layer name"):
        g.rename_node("hidden", "1 bad name")


def test_dict_round_trip_is_lossless():
    g = chain()
    g.set_outputs(None)
    data = json.loads(json.dumps(g.to_dict()))
    g2 = Graph.from_dict(data)
    assert g2.to_dict() == g.to_dict()


def test_from_dict_rejects_dangling_edges():
    data = chain().to_dict()
    data["edges"].append(["ghost", 0, 0, "d2", 0, 0])
    with pytest.raises(GraphError, match="missing layer 'ghost'"):
        Graph.from_dict(data)


def test_shared_layer_self_feed_is_not_a_cycle():
    # x -> d(call 0) -> d(call 1): a layer applied twice in a row.
    g = Graph()
    g.add_node(_input())
    d = g.add_node(_dense("d", 4))
    d.calls.append(Call(args=[{SLOT: 0}], slots=[Slot("input")]))
    g.connect("x", "d", dst_call=0)
    g.connect("d", "d", src_call=0, dst_call=1)
    assert g.call_order() == [("x", 0), ("d", 0), ("d", 1)]
    assert [p.node for p in g.output_ports()] == ["d"]


def test_auto_outputs_are_the_ports_that_feed_nothing():
    g = chain()
    g.add_node(_dense("side"))
    g.connect("d1", "side")
    assert [p.node for p in g.output_ports()] == ["d2", "side"]


def test_to_keras_config_reports_unconnected_inputs():
    g = chain()
    g.add_node(_dense("lonely"))
    with pytest.raises(GraphError, match="'lonely' is not connected"):
        g.to_keras_config()


def test_is_chain_and_subset_merge():
    g = chain()
    g.kind = "sequential"
    assert g.is_chain()
    part = g.subset(["d1", "d2"])
    assert [e.to_list() for e in part.edges] == [["d1", 0, 0, "d2", 0, 0]]
    mapping = g.merge(part)
    assert mapping == {"d1": "d1_1", "d2": "d2_1"}
    assert not g.is_chain()


@pytest.mark.parametrize("cls,name", [("Conv2DTranspose", "conv2d_transpose"),
                                       ("Dense", "dense"), ("LSTM", "lstm"),
                                       ("MultiHeadAttention", "multi_head_attention")])
def test_snake_case_matches_keras_naming(cls, name):
    assert snake_case(cls) == name


def test_edge_from_list_validates_length():
    with pytest.raises(GraphError):
        Edge.from_list(["a", 0, 0])


def test_grouping_a_selection_into_a_sub_model_keeps_the_function():
    import numpy as np

    from models import backend
    from models.build import build_model, graph_from_model
    from models.validate import validate

    keras = backend.keras()
    L = keras.layers
    x = keras.Input((8,), name="x")
    a = L.Dense(6, name="a")(x)
    s = L.Add(name="add")([L.Dense(6, name="b")(a), L.Dense(6, name="c")(a)])
    model = keras.Model(x, L.Dense(2, name="out")(s))
    graph = graph_from_model(model)
    report = validate(graph)
    specs = {(n, c, t): (list(sh), info.output_dtypes[c][t])
             for n, info in report.nodes.items()
             for c, shapes in enumerate(info.output_shapes) for t, sh in enumerate(shapes)}
    grouped = graph.grouped(["b", "c", "add"], "block", specs)
    assert set(grouped.nodes) == {"x", "a", "block", "out"}
    assert set(grouped.node("block").subgraph.nodes) == {"block_input", "b", "c", "add"}
    rebuilt = build_model(grouped)
    rebuilt.get_layer("block").set_weights(
        [w for n in ("b", "c") for w in model.get_layer(n).get_weights()])
    for n in ("a", "out"):
        rebuilt.get_layer(n).set_weights(model.get_layer(n).get_weights())
    data = np.random.default_rng(0).standard_normal((3, 8)).astype("float32")
    np.testing.assert_allclose(np.asarray(model(data)), np.asarray(rebuilt(data)), atol=1e-6)
    with pytest.raises(GraphError, match="Input layer"):
        graph.grouped(["x", "a"], "g", specs)
    assert graph.to_dict() == graph_from_model(model).to_dict()  # the original is untouched
