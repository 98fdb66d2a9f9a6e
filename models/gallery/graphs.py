"""Graph templates of the cheatsheet's section 7.6: who sides with whom in Zachary's karate club.

All three classify the 34 members of the club (``builtin:karate-club``) from
the friendship graph, with one labelled member per faction. The whole graph
is one training sample: the loss (``SparseCategoricalCrossentropy`` with
``ignore_class=-1``) and :class:`models.layers.MaskedAccuracy` skip the
unlabelled nodes, so ``fit`` trains on nodes 0 and 33 and the test split's
``test_accuracy`` counts the 32 others. The live view draws the club with
each member coloured by the predicted faction.
"""
from __future__ import annotations

import functools

import numpy as np

from models.gallery import register
from models.gallery.supervised import _project

_RECIPE = {
    "optimizer": {"class_name": "Adam", "config": {"learning_rate": 0.01}},
    "loss": {"class_name": "SparseCategoricalCrossentropy", "config": {"ignore_class": -1}},
    "metrics": [{"module": "models.layers.graphs", "class_name": "MaskedAccuracy",
                 "registered_name": "layerforge>MaskedAccuracy",
                 "config": {"name": "accuracy", "ignore_class": -1}}],
    "batch_size": 1,
    "quality": {"metric": "test_accuracy"},
    "live_view": {"fn": "models.gallery.graphs:faction_view"},
}

_DATA_NOTE = (
    " The data is Zachary's karate club: 34 members and their friendships; each member's only "
    "feature is a one-hot identity, so everything the model learns comes through the edges. "
    "Only the two leaders (nodes 0 and 33) are labelled; the test accuracy is over the other "
    "32 members.")


def _graph_project(model, recipe: dict, explanation: str):
    return _project(model, {"source": "builtin", "name": "karate-club"}, {**_RECIPE, **recipe},
                    {"explanation": explanation + _DATA_NOTE})


def _two_layers(name: str, first, second):
    """features, adjacency -> first -> dropout -> second: the shape of all three templates."""
    from models import backend

    keras = backend.keras()
    features = keras.Input((34, 34), name="features")
    adjacency = keras.Input((34, 34), name="adjacency")
    # Keyword calls, so the graph layers' ports read "features" and "adjacency" in the editor.
    h = first(features=features, adjacency=adjacency)
    h = keras.layers.Dropout(0.5, name="dropout")(h)
    y = second(features=h, adjacency=adjacency)
    return keras.Model([features, adjacency], y, name=name)


@register("gnn", "Graph neural network (message passing)", "7.6.1",
          "Two message-passing layers: each club member averages its friends' messages, then picks a side.")
def gnn():
    from models.layers import MessagePassing

    model = _two_layers(
        "gnn", MessagePassing(16, aggregation="mean", activation="relu", name="message_passing_1"),
        MessagePassing(2, aggregation="mean", activation="softmax", name="faction"))
    return _graph_project(model, {"epochs": 100, "quick": {"epochs": 60}}, (
        "Cheatsheet 7.6.1, graph neural networks: a layer works on a graph by message passing. "
        "Every node sends a learned projection of its features along its edges, each node "
        "aggregates what arrives (here the mean over its friends) and combines it with its own "
        "features through a separate weight. Stacking two layers lets information travel two "
        "hops, so a leader's label reaches the friends of its friends."))


@register("gcn", "Graph convolutional network", "7.6.2",
          "Two graph convolutions (Kipf & Welling) spread the two leaders' labels through the club.")
def gcn():
    from models.layers import GraphConv

    model = _two_layers("gcn", GraphConv(16, activation="relu", name="graph_conv_1"),
                        GraphConv(2, activation="softmax", name="faction"))
    return _graph_project(model, {"epochs": 100, "quick": {"epochs": 60}}, (
        "Cheatsheet 7.6.2, graph convolutional networks: the convolution of a graph averages each "
        "node with its neighbours through the normalised adjacency, H' = relu(D^-1/2 (A + I) "
        "D^-1/2 H W). One weight matrix W is shared by all nodes, as a CNN filter is shared by "
        "all pixels; the self loop I keeps a node's own features, and the degree scaling keeps "
        "popular members from drowning out the rest."))


@register("gat", "Graph attention network", "7.6.3",
          "Graph attention: each member learns how much to listen to each friend (4 heads, then 1).")
def gat():
    from models.layers import GraphAttention

    # Dropping half the attention weights while training keeps a node from leaning on one
    # friend: with two labels the model otherwise fits them through a few edges only.
    model = _two_layers(
        "gat", GraphAttention(8, heads=4, dropout=0.5, activation="elu", name="graph_attention_1"),
        GraphAttention(2, heads=1, dropout=0.5, activation="softmax", name="faction"))
    return _graph_project(
        model, {"epochs": 100, "quick": {"epochs": 30},
                "live_view": {"fn": "models.gallery.graphs:faction_view", "attention": True}}, (
            "Cheatsheet 7.6.3, graph attention networks: instead of fixed weights from the degrees "
            "(7.6.2), each node scores each neighbour from both their features, e_ij = "
            "LeakyReLU(a . [W h_i, W h_j]), and a softmax over its neighbours turns the scores into "
            "weights. Several heads attend independently and are concatenated, as in a "
            "transformer. The live view shows the first layer's attention, averaged over its heads."))


# --------------------------------------------------------------------------- live view


@functools.lru_cache(maxsize=8)
def _layout(edges: tuple, n: int) -> np.ndarray:
    """Spring-layout positions (fixed seed, so every epoch draws the club the same way)."""
    import networkx as nx

    graph = nx.Graph()
    graph.add_nodes_from(range(n))
    graph.add_edges_from(edges)
    pos = nx.spring_layout(graph, seed=7)
    return np.array([pos[i] for i in range(n)])


def faction_view(model, dataset, options):
    """The club coloured by predicted and by true faction (labelled nodes marked).

    Options: ``attention`` (bool): add the first attention layer's weights
    (mean over heads) as a heat map.
    """
    from models import views

    graph = dataset.x_train
    adjacency = np.asarray(graph["adjacency"][0])
    n = len(adjacency)
    edges = tuple((int(i), int(j)) for i, j in zip(*np.nonzero(np.triu(adjacency, 1))))
    pos = _layout(edges, n)
    pred = np.asarray(model(graph, training=False))[0].argmax(-1)
    train, test = np.asarray(dataset.y_train[0]), np.asarray(dataset.y_test[0])
    truth = np.where(test >= 0, test, train)
    labelled = np.flatnonzero(train >= 0)
    scored = test >= 0
    wrong = scored & (pred != test)
    right = int(scored.sum() - wrong.sum())
    names = dataset.class_names or ["0", "1"]
    legend = ", ".join(f"{c} {name}" for c, name in zip(("blue", "orange"), names))
    # Numbers only where they tell something: the labelled leaders and the mistakes.
    leaders = [str(i) if i in labelled else "" for i in range(n)]
    mistakes = [str(i) if i in labelled or wrong[i] else "" for i in range(n)]
    panels = [
        views.graph_panel(f"Predicted faction: {right}/{int(scored.sum())} unlabelled right"
                          + (" (mistakes numbered)" if wrong.any() else ""),
                          pos, edges, pred, labels=mistakes, marked=labelled),
        views.graph_panel(f"True faction ({legend}; ringed: the labelled leaders)", pos, edges,
                          truth, labels=leaders, marked=labelled),
    ]
    if options.get("attention"):
        from models.attention import attention_maps

        maps = attention_maps(model, graph)
        if maps:
            first = maps[0]
            panels.append(views.heatmap_panel(
                first["scores"][0].mean(axis=0), f"Attention of {first['layer']} (mean of heads)",
                x_labels=range(n), y_labels=range(n), x_title="neighbour j",
                y_title="node i", levels=(0.0, float(first["scores"][0].mean(axis=0).max()))))
    return views.view("Karate club factions", *panels)
