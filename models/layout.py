"""Automatic placement of a graph's nodes in layers: top to bottom, or left to right.

A simplified Sugiyama layout: each node's layer is its longest path from the
inputs, taken over the graph's calls in topological order; the nodes of each
layer are then ordered by a few barycenter sweeps to reduce edge crossings,
and each layer is centred across the flow. A connection that skips layers (a
residual connection) keeps a free slot, a lane, in each layer it passes, so
the cards of the path it skips stand aside instead of hiding it. Top to bottom (the default, as
Netron and MATLAB's Deep Network Designer draw networks) keeps a long chain
narrow and tall, which a window shows at a readable size; left to right is
kept for wide, shallow graphs. It never raises on a graph the user is still
editing: unconnected nodes start a layer of their own, and the nodes of a
cycle are placed after the predecessors already placed.
"""
from __future__ import annotations

import heapq

from models.graph import Graph

_SWEEPS = 4

DIRECTIONS = ("TB", "LR")
# Spacing per direction, as (dx, dy), for the canvas's 170 x 56 cards: rows 90
# apart leave room for the connections between them; siblings 210 apart leave
# a gap of 40 between cards.
SPACING = {"TB": (210.0, 90.0), "LR": (220.0, 110.0)}


def layered_layout(graph: Graph, *, direction: str = "TB", dx: float | None = None,
                   dy: float | None = None) -> dict[str, tuple[float, float]]:
    """Positions for every node of ``graph``, in layers along ``direction``.

    Args:
        graph: the graph to lay out (nested models are laid out on their own).
        direction: ``"TB"`` (top to bottom: the inputs in the top row, each
            layer a row further down, siblings side by side) or ``"LR"`` (left
            to right: the inputs in the left column, siblings one above another).
        dx: the horizontal distance: between siblings in a row (``"TB"``) or
            between columns (``"LR"``); 210 and 220 by default.
        dy: the vertical distance: between rows (``"TB"``) or between siblings
            in a column (``"LR"``); 90 and 110 by default.

    Returns:
        ``{node name: (x, y)}``, the point each node is centred on. Top to
        bottom, row 0 is at ``y = 0`` and every row is centred on ``x = 0``;
        left to right, column 0 is at ``x = 0`` and every column is centred on
        ``y = 0``.

    Raises:
        ValueError: ``direction`` is neither ``"TB"`` nor ``"LR"``.
    """
    if direction not in SPACING:
        raise ValueError(f"direction must be one of {DIRECTIONS}, not {direction!r}")
    default_dx, default_dy = SPACING[direction]
    dx = default_dx if dx is None else float(dx)
    dy = default_dy if dy is None else float(dy)
    names = list(graph.nodes)
    if not names:
        return {}
    pairs, column = _columns(graph, names)
    out, preds, succs, column = _add_lanes(len(names), pairs, column)
    columns: list[list[int]] = [[] for _ in range(max(column) + 1)]
    for n in _first_seen_order(out, preds, len(names)):
        columns[column[n]].append(n)
    columns = _reduce_crossings(columns, preds, succs, column)
    # The ordering is computed once, as columns; top to bottom reads it transposed.
    along, across = (dy, dx) if direction == "TB" else (dx, dy)
    positions: dict[str, tuple[float, float]] = {}
    for c, members in enumerate(columns):
        middle = (len(members) - 1) / 2
        for i, n in enumerate(members):
            if n >= len(names):
                continue  # a lane: its slot stays free
            depth, offset = c * along, (i - middle) * across
            positions[names[n]] = (offset, depth) if direction == "TB" else (depth, offset)
    return positions


# --------------------------------------------------------------------------- columns


def _columns(graph: Graph, names: list[str]):
    """The connections between nodes (by index, in graph order, self-loops left out)
    and each node's column."""
    index = {name: i for i, name in enumerate(names)}
    calls = [max(1, len(graph.nodes[name].calls)) for name in names]
    first_vertex = []
    total = 0
    for count in calls:
        first_vertex.append(total)
        total += count
    owner = [n for n, count in enumerate(calls) for _ in range(count)]

    def vertex(n: int, call: int) -> int:
        # A dangling call number (an edit in progress) counts as the first call.
        return first_vertex[n] + (call if 0 <= call < calls[n] else 0)

    vertex_succs: list[list[int]] = [[] for _ in range(total)]
    vertex_preds: list[list[int]] = [[] for _ in range(total)]
    indegree = [0] * total
    pairs: list[tuple[int, int]] = []
    for e in graph.edges:
        s, d = index.get(e.src), index.get(e.dst)
        if s is None or d is None:
            continue
        a, b = vertex(s, e.src_call), vertex(d, e.dst_call)
        vertex_succs[a].append(b)
        vertex_preds[b].append(a)
        indegree[b] += 1
        if s != d:
            pairs.append((s, d))

    # Kahn's algorithm over calls, ready calls taken in graph order.
    ready = [v for v in range(total) if indegree[v] == 0]
    heapq.heapify(ready)
    order: list[int] = []
    while ready:
        v = heapq.heappop(ready)
        order.append(v)
        for w in vertex_succs[v]:
            indegree[w] -= 1
            if indegree[w] == 0:
                heapq.heappush(ready, w)
    if len(order) < total:  # a cycle: its calls follow, in graph order
        order += [v for v in range(total) if indegree[v] > 0]

    column = [-1] * len(names)
    for v in order:
        n = owner[v]
        after = [column[owner[p]] + 1 for p in vertex_preds[v]
                 if owner[p] != n and column[owner[p]] >= 0]
        column[n] = max(column[n], max(after, default=0))
    return pairs, column


def _add_lanes(count: int, pairs: list[tuple[int, int]], column: list[int]):
    """Lanes for the connections that skip columns, and the adjacency with them.

    A lane is a placeholder node (index ``count`` and up) in a column the
    connection passes through; the connections that leave one node share its
    lane in each column. The ordering treats lanes as nodes, so the nodes of a
    skipped path move aside and the crossings of the connection are counted.

    Returns:
        ``(out, preds, succs, column)``: successors in graph order (lists),
        predecessors and successors (sets), and the column of every node and lane.
    """
    column = list(column)
    out: list[dict[int, None]] = [{} for _ in range(count)]  # ordered sets
    lane: dict[tuple[int, int], int] = {}
    for s, d in pairs:
        prev = s
        for c in range(column[s] + 1, column[d]):  # none for a back edge (a cycle)
            v = lane.get((s, c))
            if v is None:
                v = lane[(s, c)] = len(column)
                column.append(c)
                out.append({})
            out[prev][v] = None
            prev = v
        out[prev][d] = None
    preds: list[set[int]] = [set() for _ in column]
    for s, ds in enumerate(out):
        for d in ds:
            preds[d].add(s)
    return [list(ds) for ds in out], preds, [set(ds) for ds in out], column


def _first_seen_order(out: list[list[int]], preds: list[set[int]], count: int) -> list[int]:
    """Nodes (and lanes) in a depth-first order from each source, so connected nodes start together."""
    total = len(out)
    seen = [False] * total
    order: list[int] = []
    starts = [n for n in range(count) if not preds[n]] + list(range(total))
    for start in starts:
        if seen[start]:
            continue
        stack = [start]
        while stack:
            n = stack.pop()
            if seen[n]:
                continue
            seen[n] = True
            order.append(n)
            stack.extend(reversed([m for m in out[n] if not seen[m]]))
    return order


# --------------------------------------------------------------------------- ordering


def _reduce_crossings(columns, preds, succs, column):
    """Barycenter sweeps, right then left, keeping the ordering with fewest crossings."""
    y = [0.0] * len(column)

    def place(members):
        middle = (len(members) - 1) / 2
        for i, n in enumerate(members):
            y[n] = i - middle

    for members in columns:
        place(members)
    best = [list(m) for m in columns]
    best_crossings = _crossings(columns, succs, column)
    for sweep in range(_SWEEPS):
        forward = sweep % 2 == 0
        span = range(1, len(columns)) if forward else range(len(columns) - 2, -1, -1)
        for c in span:
            members = columns[c]
            neighbours = preds if forward else succs
            keyed = []
            for i, n in enumerate(members):
                around = neighbours[n]
                centre = sum(y[m] for m in around) / len(around) if around else y[n]
                keyed.append((centre, i, n))
            keyed.sort()
            columns[c] = [n for _, _, n in keyed]
            place(columns[c])
        crossings = _crossings(columns, succs, column)
        if crossings < best_crossings:
            best, best_crossings = [list(m) for m in columns], crossings
        if best_crossings == 0:
            break
    return best


def _crossings(columns, succs, column) -> int:
    """Crossings between edges that join neighbouring columns."""
    rank = [0] * len(column)
    for members in columns:
        for i, n in enumerate(members):
            rank[n] = i
    total = 0
    for c in range(len(columns) - 1):
        pairs = sorted((rank[s], rank[d]) for s in columns[c] for d in succs[s]
                       if column[d] == c + 1)
        total += _inversions([d for _, d in pairs], len(columns[c + 1]))
    return total


def _inversions(values: list[int], size: int) -> int:
    """Pairs ``i < j`` with ``values[i] > values[j]`` (a Fenwick tree over ``0..size-1``)."""
    tree = [0] * (size + 1)
    count = 0
    for seen, v in enumerate(values):
        # How many earlier values are <= v; the rest of the earlier ones are greater.
        i, at_most = v + 1, 0
        while i > 0:
            at_most += tree[i]
            i -= i & -i
        count += seen - at_most
        i = v + 1
        while i <= size:
            tree[i] += 1
            i += i & -i
    return count
