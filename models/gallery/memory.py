"""A memory-augmented network (cheatsheet section 7.7.2) on associative recall."""
from __future__ import annotations

import numpy as np

from models.gallery import register
from models.gallery.attention import VOCABULARY
from models.gallery.supervised import _project


def memory_view(model, dataset, options) -> dict:
    """The memory's write and read weightings over one validation sequence, step by step."""
    from models import backend, views
    from models.layers import Memory

    keras = backend.keras()
    i = int(options.get("sample", 0))
    x = {k: v[i:i + 1] for k, v in dataset.x_val.items()}
    layer = next(l for l in model.layers if isinstance(l, Memory))
    controller = keras.Model(model.inputs, layer.input)(x, training=False)
    _, write, read = layer(controller, return_weightings=True)
    names = dataset.class_names
    answer = np.argmax(np.asarray(model(x, training=False))[0], axis=-1)
    steps = []
    for key, value, out in zip(x["keys"][0], x["values"][0], answer):
        steps.append(f"store {names[key]}={names[value]}" if value else
                     f"ask {names[key]} -> {names[out]}")
    slots = [str(s + 1) for s in range(layer.slots)]
    common = {"x_labels": slots, "y_labels": steps, "x_title": "memory slot",
              "levels": (0.0, 1.0)}
    return views.view(
        "Memory",
        views.heatmap_panel(np.asarray(write)[0], "Write weighting (how much each step writes "
                                                  "where)", y_title="step", **common),
        views.heatmap_panel(np.asarray(read)[0], "Read weighting (where each step reads, by "
                                                 "content)", y_title="step", **common),
    )


@register("mann", "Memory-augmented network", "7.7.2",
          "A controller writes key-value pairs into an external memory and answers questions "
          "by reading it back by content (associative recall).")
def mann():
    from models import backend
    from models.layers import Memory

    keras = backend.keras()
    L = keras.layers
    keys = keras.Input((8,), dtype="int32", name="keys")
    values = keras.Input((8,), dtype="int32", name="values")
    k = L.Embedding(VOCABULARY, 16, name="key_embedding")(keys)
    v = L.Embedding(VOCABULARY, 16, name="value_embedding")(values)
    step = L.Concatenate(name="step")([k, v])
    read = Memory(slots=8, slot_size=32, name="memory")(step)
    both = L.Concatenate(name="step_and_read")([step, read])
    out = L.Dense(VOCABULARY, activation="softmax", name="answer")(both)
    model = keras.Model([keys, values], out, name="mann")
    return _project(
        model, {"source": "builtin", "name": "recall"},
        {"optimizer": {"class_name": "Adam", "config": {"learning_rate": 0.01}},
         "loss": "sparse_categorical_crossentropy", "metrics": ["accuracy"],
         "epochs": 15, "batch_size": 32, "quick": {"epochs": 6},
         "quality": {"metric": "test_token_accuracy"},
         # Only the answers count: the steps that show the pairs have nothing to answer.
         "extra_metrics": "models.gallery.attention:token_accuracy",
         "live_view": {"fn": "models.gallery.memory:memory_view"}},
        {"explanation": (
            "Cheatsheet 7.7.2, memory-augmented neural networks. A controller reads each "
            "step (a key and a value, or a key alone as a question) and drives an external "
            "memory of 8 slots through two heads; here the controller is as small as it gets: "
            "the heads' own learned projections of the step, and the Dense layer that turns "
            "the step and what was read into an answer. The write head puts each step into "
            "the next slot, a key to find it by and a content, with a learned gate that "
            "decides how much to write (and erase and add vectors, as in a Neural Turing "
            "Machine). The read head addresses the memory by content: it makes a key, "
            "compares it with every slot's key by cosine similarity, sharpens the scores "
            "with a learned strength and reads the softmax-weighted mix of the contents. "
            "Associative recall needs exactly that: the controller sees one step and cannot "
            "remember the pairs itself, so a question is answered only by finding the slot "
            "that holds its key (a larger controller with a ReLU layer learned this more "
            "slowly and less reliably in our tests). The live view shows the write weighting "
            "(each step into its own slot, as strongly as its gate lets it) and the read "
            "weighting (each question lighting up the slot of its pair). Only "
            "the question steps count in test_token_accuracy.")},
    )
