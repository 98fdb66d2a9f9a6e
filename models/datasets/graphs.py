"""Graph data: Zachary's karate club (it ships with networkx), for node classification.

The club split in two after a quarrel between its instructor ("Mr. Hi",
node 0) and its administrator ("Officer", node 33); each of the 34 members
joined one of them. The task is to tell every member's faction from the
friendship graph, knowing only the two leaders' factions.

The whole graph is one sample with two inputs, ``features`` (one-hot node
identities, ``[1, 34, 34]``: a node has no features but who it is, so all
the information is in the edges) and ``adjacency`` (``[1, 34, 34]``, 1 for
each friendship). The target holds a faction per node (``[1, 34]``), with
``-1`` where a node counts as unlabelled: the training split labels only
nodes 0 and 33, the test split labels every other node and hides those two.
There is no validation split: two labels are all the task gives.
"""
from __future__ import annotations

import numpy as np

from models.data import Dataset, DataError, register_builtin

FACTIONS = ["Mr. Hi", "Officer"]
LABELLED = (0, 33)  # the instructor and the administrator
UNLABELLED = -1


def karate_club_arrays() -> tuple[np.ndarray, np.ndarray]:
    """The club's adjacency (float32 ``[34, 34]``, no self loops) and each member's faction (int32 ``[34]``)."""
    import networkx as nx

    graph = nx.karate_club_graph()
    nodes = sorted(graph.nodes)
    adjacency = nx.to_numpy_array(graph, nodelist=nodes, weight=None).astype(np.float32)
    factions = np.array([FACTIONS.index(graph.nodes[n]["club"]) for n in nodes], dtype=np.int32)
    return adjacency, factions


def _load_karate_club(seed: int = 0, **options) -> Dataset:
    if options:
        raise DataError(f"builtin:karate-club takes no options; got {', '.join(sorted(options))}")
    adjacency, factions = karate_club_arrays()
    n = len(factions)
    graph = {"features": np.eye(n, dtype=np.float32)[None], "adjacency": adjacency[None]}
    train = np.full(n, UNLABELLED, dtype=np.int32)
    train[list(LABELLED)] = factions[list(LABELLED)]
    test = factions.copy()
    test[list(LABELLED)] = UNLABELLED
    empty = {k: v[:0] for k, v in graph.items()}
    return Dataset(
        x_train=graph, y_train=train[None], x_val=empty, y_val=train[None][:0],
        x_test=graph, y_test=test[None], task="sequence", class_names=list(FACTIONS),
        name="karate-club", target_name="faction",
        notes=[f"Zachary's karate club from networkx: {n} members, "
               f"{int(adjacency.sum() // 2)} friendships, the whole graph as one sample",
               "node features: a one-hot identity per node; adjacency: 1 per friendship",
               "targets: one faction per node, -1 where unlabelled; training labels nodes 0 and 33 "
               f"only, the test split the other {n - len(LABELLED)}; no validation split"])


register_builtin(
    "karate-club", task="sequence", shape={"features": (34, 34), "adjacency": (34, 34)},
    classes=2, load=_load_karate_club,
    description="Zachary's karate club (networkx): 34 members, tell each one's faction from the "
                "friendships, knowing only the two leaders'")
