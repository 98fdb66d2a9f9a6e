"""The layered layout: rows (or columns) by depth, no overlaps, few crossings, never a crash."""
from __future__ import annotations

import random
import time

import pytest

from models.graph import SLOT, Call, Edge, Graph, Node, Slot
from models import layout
from models.layout import layered_layout


def make_graph(inputs: list[str], edges: list[tuple[str, str]], extra=()) -> Graph:
    """A graph with the given Input nodes and one-call Dense-like nodes joined by ``edges``.

    Built directly (not through ``connect``) so a large graph stays quick to make.
    """
    g = Graph("layout")
    fan_in: dict[str, int] = {}
    for _, dst in edges:
        fan_in[dst] = fan_in.get(dst, 0) + 1
    names = list(inputs) + [n for e in edges for n in e] + list(extra)
    for name in dict.fromkeys(names):
        if name in inputs:
            g.nodes[name] = Node(name, "InputLayer", {"name": name, "batch_shape": [None, 4]})
            continue
        slots = max(1, fan_in.get(name, 0))
        call = Call(args=[[{SLOT: i} for i in range(slots)]] if slots > 1 else [{SLOT: 0}],
                    slots=[Slot(f"input_{i}") for i in range(slots)], variadic=slots > 1)
        g.nodes[name] = Node(name, "Dense", {"name": name, "units": 4}, calls=[call])
    used: dict[str, int] = {}
    for src, dst in edges:
        slot = used.get(dst, 0)
        used[dst] = slot + 1
        g.edges.append(Edge(src, 0, 0, dst, 0, slot))
    return g


# Card sizes the default spacing is made for (the canvas's NODE_W x NODE_H).
CARD_W, CARD_H = 170.0, 56.0


def adjacent_crossings(g: Graph, pos, direction: str = "TB") -> int:
    """Crossings between edges that join neighbouring layers, counted from positions."""
    # (depth, offset across the flow) of every node.
    flow = {n: (y, x) if direction == "TB" else (x, y) for n, (x, y) in pos.items()}
    step = 90.0 if direction == "TB" else 220.0
    segments = [(flow[e.src], flow[e.dst]) for e in g.edges
                if abs(flow[e.dst][0] - flow[e.src][0] - step) < 1e-9]
    count = 0
    for i, (a1, b1) in enumerate(segments):
        for a2, b2 in segments[i + 1:]:
            if a1[0] == a2[0] and (a1[1] - a2[1]) * (b1[1] - b2[1]) < 0:
                count += 1
    return count


def assert_no_overlap(pos, w: float = CARD_W, h: float = CARD_H) -> None:
    """No two ``w`` x ``h`` cards centred on ``pos`` overlap (a sweep along x)."""
    boxes = sorted((x - w / 2, y - h / 2, name) for name, (x, y) in pos.items())
    for i, (x1, y1, a) in enumerate(boxes):
        for x2, y2, b in boxes[i + 1:]:
            if x2 >= x1 + w:
                break
            assert abs(y2 - y1) >= h, f"{a} and {b} overlap"


def random_dag(n: int, seed: int = 7) -> Graph:
    rng = random.Random(seed)
    names = [f"n{i}" for i in range(n)]
    inputs = names[:4]
    edges = []
    for i in range(4, n):
        for src in rng.sample(names[max(0, i - 30):i], k=min(i, rng.choice([1, 1, 1, 2, 3]))):
            edges.append((src, names[i]))
    return make_graph(inputs, edges)


def test_a_chain_runs_top_to_bottom_by_default():
    g = make_graph(["x"], [("x", "a"), ("a", "b"), ("b", "c")])
    pos = layered_layout(g)
    assert pos == layered_layout(g, direction="TB")
    ys = [pos[n][1] for n in ("x", "a", "b", "c")]
    assert ys == [0.0, 90.0, 180.0, 270.0]  # going down, one row per layer
    assert {pos[n][0] for n in pos} == {0.0}  # on one vertical line


def test_a_chain_runs_left_to_right_on_one_line():
    g = make_graph(["x"], [("x", "a"), ("a", "b"), ("b", "c")])
    pos = layered_layout(g, direction="LR")
    xs = [pos[n][0] for n in ("x", "a", "b", "c")]
    assert {pos[n][1] for n in pos} == {0.0}
    assert xs == [0.0, 220.0, 440.0, 660.0]


def test_a_diamond_puts_its_branches_in_one_row():
    g = make_graph(["x"], [("x", "left"), ("x", "right"), ("left", "join"), ("right", "join")])
    pos = layered_layout(g, dx=100.0, dy=50.0)
    assert pos["left"][1] == pos["right"][1] == 50.0
    assert sorted([pos["left"][0], pos["right"][0]]) == [-50.0, 50.0]  # centred on x = 0
    assert pos["x"] == (0.0, 0.0) and pos["join"] == (0.0, 100.0)
    # The default spacing fits 170-wide cards side by side.
    pos = layered_layout(g)
    assert abs(pos["left"][0] - pos["right"][0]) == 210.0
    assert_no_overlap(pos)


def test_a_diamond_puts_its_branches_in_one_column_left_to_right():
    g = make_graph(["x"], [("x", "left"), ("x", "right"), ("left", "join"), ("right", "join")])
    pos = layered_layout(g, direction="LR", dx=100.0, dy=50.0)
    assert pos["left"][0] == pos["right"][0] == 100.0
    assert abs(pos["left"][1] - pos["right"][1]) == 50.0
    assert pos["join"][0] == 200.0 and pos["join"][1] == 0.0  # columns are centred
    assert pos["x"][0] < pos["left"][0] < pos["join"][0]


@pytest.mark.parametrize("direction, axis, step", [("TB", 1, 90.0), ("LR", 0, 220.0)])
def test_longest_path_decides_the_layer(direction, axis, step):
    # ``x`` feeds ``join`` directly, but ``join`` also waits for the long branch.
    g = make_graph(["x"], [("x", "a"), ("a", "b"), ("b", "join"), ("x", "join")])
    pos = layered_layout(g, direction=direction)
    assert pos["join"][axis] == 3 * step


@pytest.mark.parametrize("direction", ["TB", "LR"])
def test_a_skip_connection_keeps_a_lane_beside_the_path_it_skips(direction):
    # x -> a -> b -> join, and x -> join directly: a residual connection.
    g = make_graph(["x"], [("x", "a"), ("a", "b"), ("b", "join"), ("x", "join")])
    pos = layered_layout(g, direction=direction)
    across, half_card = (0, CARD_W / 2) if direction == "TB" else (1, CARD_H / 2)
    straight = pos["x"][across]
    assert pos["join"][across] == straight
    # The skipped cards stand aside, on one side, clear of the line from x to join.
    assert pos["a"][across] == pos["b"][across]
    assert abs(pos["a"][across] - straight) >= half_card + 10
    assert set(pos) == set(g.nodes)  # the lanes are not nodes


@pytest.mark.parametrize("direction, axis", [("TB", 1), ("LR", 0)])
def test_nodes_never_overlap(direction, axis):
    g = random_dag(120)
    pos = layered_layout(g, direction=direction)
    assert set(pos) == set(g.nodes)
    assert_no_overlap(pos)
    for e in g.edges:  # every edge flows down (or right) in a DAG
        assert pos[e.dst][axis] > pos[e.src][axis]


def test_an_unknown_direction_is_refused():
    with pytest.raises(ValueError, match="direction"):
        layered_layout(make_graph(["x"], []), direction="BT")


def test_disconnected_nodes_still_get_positions():
    g = make_graph(["x"], [("x", "a")], extra=("alone", "also_alone"))
    g.nodes["lonely_input"] = Node("lonely_input", "InputLayer", {"name": "lonely_input"})
    pos = layered_layout(g)
    assert set(pos) == {"x", "a", "alone", "also_alone", "lonely_input"}
    assert len(set(pos.values())) == len(pos)


def test_a_cycle_does_not_raise():
    g = make_graph(["x"], [("x", "a"), ("a", "b"), ("b", "c")])
    g.edges.append(Edge("c", 0, 0, "a", 0, 1))  # not through connect(), which refuses it
    g.edges.append(Edge("b", 0, 0, "b", 0, 1))  # and a self-loop
    g.edges.append(Edge("a", 5, 0, "c", 3, 0))  # call numbers that do not exist
    pos = layered_layout(g)
    assert set(pos) == set(g.nodes)
    assert len(set(pos.values())) == len(pos)
    assert pos["x"][1] < pos["a"][1] < pos["b"][1]  # placed after their predecessors


def test_shared_layer_calls_count_as_one_node():
    g = make_graph(["left", "right"], [])
    call = lambda: Call(args=[{SLOT: 0}], slots=[Slot("input")])  # noqa: E731
    g.nodes["shared"] = Node("shared", "Dense", {"name": "shared"}, calls=[call(), call()])
    g.nodes["head"] = Node("head", "Add", {"name": "head"}, calls=[Call(
        args=[[{SLOT: 0}, {SLOT: 1}]], slots=[Slot("input"), Slot("input_1")], variadic=True)])
    g.edges += [Edge("left", 0, 0, "shared", 0, 0), Edge("right", 0, 0, "shared", 1, 0),
                Edge("shared", 0, 0, "head", 0, 0), Edge("shared", 1, 0, "head", 0, 1)]
    pos = layered_layout(g)
    assert pos["left"][1] == pos["right"][1] < pos["shared"][1] < pos["head"][1]
    pos = layered_layout(g, direction="LR")
    assert pos["left"][0] == pos["right"][0] < pos["shared"][0] < pos["head"][0]


def test_barycenter_sweeps_untangle_what_can_be_untangled(monkeypatch):
    # In first-seen order ``p`` (fed by ``a`` and ``b``) comes before ``q`` and
    # ``r`` (fed by ``a`` alone), which crosses ``b -> p`` twice; no crossing is needed.
    g = make_graph(["a", "b", "c"], [("a", "p"), ("b", "p"), ("a", "q"), ("a", "r")])
    assert adjacent_crossings(g, layered_layout(g)) == 0
    assert adjacent_crossings(g, layered_layout(g, direction="LR"), "LR") == 0
    monkeypatch.setattr(layout, "_SWEEPS", 0)
    assert adjacent_crossings(g, layered_layout(g)) == 2  # so the sweeps did it
    assert adjacent_crossings(g, layered_layout(g, direction="LR"), "LR") == 2
    monkeypatch.undo()
    tree = [(f"v{i}", f"v{2 * i + k}") for i in range(1, 16) for k in (0, 1)]
    g = make_graph(["v1"], tree)
    assert adjacent_crossings(g, layered_layout(g)) == 0


def test_empty_graph():
    assert layered_layout(Graph()) == {}


@pytest.mark.parametrize("direction", ["TB", "LR"])
def test_800_nodes_quickly(direction):
    g = random_dag(820)
    start = time.perf_counter()
    pos = layered_layout(g, direction=direction)
    elapsed = time.perf_counter() - start
    print(f"\nlayered_layout {direction}: {len(g.nodes)} nodes, {len(g.edges)} edges, "
          f"{elapsed * 1000:.1f} ms")
    assert len(pos) == len(g.nodes)
    assert len(set(pos.values())) == len(pos)
    assert elapsed < 2.0  # loose, so a busy machine does not fail it; the target is 0.2 s
