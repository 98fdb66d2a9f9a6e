"""Automatic placement of a graph's nodes, left to right, in layered columns.

A simplified Sugiyama layout: each node's column is its longest path from the
inputs, taken over the graph's calls in topological order; the nodes of each
column are then ordered by a few barycenter sweeps to reduce edge crossings,
and each column is centred vertically. It never raises on a graph the user is
still editing: unconnected nodes start a column of their own, and the nodes of
a cycle are placed after the predecessors already placed.
"""
from __future__ import annotations

import heapq

from models.graph import Graph

_SWEEPS = 4


def layered_layout(graph: Graph, *, dx: float = 220.0,
                   dy: float = 110.0) -> dict[str, tuple[float, float]]:
    """Positions for every node of ``graph``, flowing left to right.

    Args:
        graph: the graph to lay out (nested models are laid out on their own).
        dx: the distance between columns.
        dy: the distance between nodes in a column.

    Returns:
        ``{node name: (x, y)}``, the point each node is centred on; column 0
        is at ``x = 0`` and every column is centred on ``y = 0``.
    """
    names = list(graph.nodes)
    if not names:
        return {}
    preds, succs, column = _columns(graph, names)
    columns: list[list[int]] = [[] for _ in range(max(column) + 1)]
    for n in _first_seen_order(graph, names):
        columns[column[n]].append(n)
    columns = _reduce_crossings(columns, preds, succs, column)
    positions: dict[str, tuple[float, float]] = {}
    for c, members in enumerate(columns):
        middle = (len(members) - 1) / 2
        for i, n in enumerate(members):
            positions[names[n]] = (c * dx, (i - middle) * dy)
    return positions


# --------------------------------------------------------------------------- columns


def _columns(graph: Graph, names: list[str]):
    """Node adjacency (by index, self-loops left out) and each node's column."""
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
    preds: list[set[int]] = [set() for _ in names]
    succs: list[set[int]] = [set() for _ in names]
    for e in graph.edges:
        s, d = index.get(e.src), index.get(e.dst)
        if s is None or d is None:
            continue
        a, b = vertex(s, e.src_call), vertex(d, e.dst_call)
        vertex_succs[a].append(b)
        vertex_preds[b].append(a)
        indegree[b] += 1
        if s != d:
            preds[d].add(s)
            succs[s].add(d)

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
    return preds, succs, column


def _first_seen_order(graph: Graph, names: list[str]) -> list[int]:
    """Nodes in a depth-first order from each source, so connected nodes start together."""
    index = {name: i for i, name in enumerate(names)}
    out: list[list[int]] = [[] for _ in names]
    has_pred = [False] * len(names)
    for e in graph.edges:
        s, d = index.get(e.src), index.get(e.dst)
        if s is not None and d is not None and s != d:
            out[s].append(d)
            has_pred[d] = True
    seen = [False] * len(names)
    order: list[int] = []
    starts = [n for n in range(len(names)) if not has_pred[n]] + list(range(len(names)))
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
