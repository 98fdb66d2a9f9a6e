"""Attention and the transformer (cheatsheet sections 7.5.1 and 7.5.2) on generated token tasks.

Both templates read 8 tokens and answer with a token at every step (see
:mod:`models.datasets.tokens`); their live view is the attention weights of
one validation sequence, read from every attention layer by
:func:`models.attention.attention_maps`.
"""
from __future__ import annotations

import numpy as np

from models.gallery import register
from models.gallery.supervised import _project

VOCABULARY = 11  # the tokens 1..10 and padding (0)


def token_accuracy(model, dataset, recipe) -> dict:
    """Per-token and whole-sequence accuracy on the test split.

    Returns:
        ``test_token_accuracy``: the share of target tokens predicted right,
        not counting padding targets (id 0: steps with nothing to answer);
        ``test_sequence_accuracy``: the share of test samples with every
        counted token right.
    """
    pred = np.argmax(model.predict(dataset.x_test, verbose=0, batch_size=256), axis=-1)
    y = np.asarray(dataset.y_test)
    counted = y != 0
    right = pred == y
    return {"test_token_accuracy": float(right[counted].mean()),
            "test_sequence_accuracy": float(np.all(right | ~counted, axis=1).mean())}


def attention_view(model, dataset, options) -> dict:
    """Each attention layer's weights (averaged over heads) for one validation sequence."""
    from models import views
    from models.attention import attention_maps

    i = int(options.get("sample", 0))
    x = dataset.x_val[i:i + 1]
    names = dataset.class_names
    tokens = [names[t] for t in np.asarray(x[0])]
    answer = [names[t] for t in np.argmax(np.asarray(model(x, training=False))[0], axis=-1)]
    rows = [f"{k + 1}: {t} -> {a}" for k, (t, a) in enumerate(zip(tokens, answer))]
    columns = [f"{k + 1}: {t}" for k, t in enumerate(tokens)]
    panels = []
    for found in attention_maps(model, x):
        scores = found["scores"][0]  # [heads, queries, keys]
        heads = scores.shape[0]
        title = found["layer"] + (f", mean of {heads} heads" if heads > 1 else "")
        panels.append(views.heatmap_panel(
            scores.mean(axis=0), title, x_labels=columns, y_labels=rows,
            x_title="attended position: its token", y_title="position: token -> answer",
            levels=(0.0, 1.0)))
    if panels and options.get("goal"):
        panels[0]["title"] += f" ({options['goal']})"
    return views.view("Attention", *panels)


def _token_recipe(**extra) -> dict:
    return {
        "loss": "sparse_categorical_crossentropy",
        "metrics": ["accuracy"],
        "quality": {"metric": "test_token_accuracy"},
        "extra_metrics": "models.gallery.attention:token_accuracy",
        **extra,
    }


def _embedded_tokens(keras, length: int, width: int):
    """Token ids in; token embedding plus a learned position embedding out."""
    from models.layers import PositionEmbedding

    L = keras.layers
    tokens = keras.Input((length,), dtype="int32", name="tokens")
    embedded = L.Embedding(VOCABULARY, width, name="token_embedding")(tokens)
    position = PositionEmbedding(length, name="position_embedding")(embedded)
    return tokens, L.Add(name="embed")([embedded, position])


@register("attention", "Attention", "7.5.1",
          "Query, key and value projections and one dot-product attention layer learn to "
          "reverse a sequence of 8 tokens.")
def attention():
    from models import backend

    keras = backend.keras()
    L = keras.layers
    tokens, h = _embedded_tokens(keras, 8, 32)
    query = L.Dense(32, name="query")(h)
    key = L.Dense(32, name="key")(h)
    value = L.Dense(32, name="value")(h)
    attended = L.Attention(use_scale=True, name="attention")([query, value, key])
    out = L.Dense(VOCABULARY, activation="softmax", name="output_token")(attended)
    model = keras.Model(tokens, out, name="attention")
    return _project(
        model, {"source": "builtin", "name": "reverse"},
        _token_recipe(optimizer={"class_name": "Adam", "config": {"learning_rate": 0.003}},
                      epochs=10, batch_size=64, quick={"epochs": 4},
                      live_view={"fn": "models.gallery.attention:attention_view",
                                 "goal": "to reverse, each position should attend to its "
                                         "mirror"}),
        {"explanation": (
            "Cheatsheet 7.5.1, attention. Every position asks a question (its query), offers "
            "a label (its key) and carries content (its value), each a Dense projection of "
            "the token plus its position. The attention layer scores each query against "
            "every key (a scaled dot product), turns the scores into weights with a softmax, "
            "and hands each position the weighted sum of the values. To reverse a sequence, "
            "output position i must take its token from position 9 - i, wherever that token "
            "is: the weights learn to look across the sequence, which the live view shows as "
            "an anti-diagonal of bright cells. Without the position embedding a token would "
            "ask the same question wherever it stands, and the order would be lost.")},
    )


@register("transformer", "Transformer encoder", "7.5.2",
          "Two encoder blocks of multi-head self-attention, residual connections, layer "
          "normalisation and a feed-forward network learn to sort 8 tokens.")
def transformer():
    from models import backend

    keras = backend.keras()
    L = keras.layers
    width, heads = 64, 4
    tokens, h = _embedded_tokens(keras, 8, width)
    for b in (1, 2):
        a = L.MultiHeadAttention(heads, width // heads, name=f"self_attention_{b}")(h, h)
        h = L.Add(name=f"residual_{b}a")([h, a])
        h = L.LayerNormalization(name=f"norm_{b}a")(h)
        f = L.Dense(2 * width, activation="relu", name=f"feed_forward_{b}a")(h)
        f = L.Dense(width, name=f"feed_forward_{b}b")(f)
        h = L.Add(name=f"residual_{b}b")([h, f])
        h = L.LayerNormalization(name=f"norm_{b}b")(h)
    out = L.Dense(VOCABULARY, activation="softmax", name="output_token")(h)
    model = keras.Model(tokens, out, name="transformer")
    return _project(
        model, {"source": "builtin", "name": "sort"},
        _token_recipe(optimizer={"class_name": "Adam", "config": {"learning_rate": 0.002}},
                      epochs=10, batch_size=64, quick={"epochs": 3},
                      live_view={"fn": "models.gallery.attention:attention_view",
                                 "goal": "answer: position i holds the i-th smallest"}),
        {"explanation": (
            "Cheatsheet 7.5.2, the transformer, here its encoder. Each block lets every "
            "position attend to all others with several heads at once (multi-head "
            "self-attention: each head has its own query, key and value projections), adds "
            "the result back to its input (a residual connection, so the block only has to "
            "learn a correction) and normalises it (layer normalisation), then passes every "
            "position through the same small feed-forward network, again with a residual and "
            "a normalisation. Sorting needs each position to know every token in the "
            "sequence, which is what self-attention gives. In our runs the live view shows "
            "the first block attending almost evenly: averaging over all positions is how it "
            "takes stock of which tokens there are, and the sorted answer at each position "
            "depends on nothing else; the second block's attention is sharper, each "
            "head picking out particular tokens (the view averages the heads).")},
    )
