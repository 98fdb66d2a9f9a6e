"""Attention maps as an explanation: every attention call's weights for one sample, per head.

The weights come from :func:`models.attention.attention_maps`. Queries and
keys are labelled with the tokens of a token input of the same length (the
sequence they attend over), else with their positions.
"""
from __future__ import annotations

import numpy as np

from models.explain.subject import Subject


def layer_names(subject: Subject) -> list[str]:
    from models.attention import attention_layers

    return subject.memo("attention-layers", lambda: attention_layers(subject.model))


def attention_unavailable(subject: Subject) -> str | None:
    if not layer_names(subject):
        return ("attention maps need an attention layer (Attention, MultiHeadAttention or "
                "LayerForge's own); this model has none")
    return None


def _labels(length: int, xs, subject: Subject) -> list[str]:
    for x, info in zip(xs, subject.inputs):
        if info.tokens and len(info.shape) == 1 and info.shape[0] == length:
            return [str(int(t)) for t in x[0]]
    return [str(i) for i in range(length)]


def attention(subject: Subject, xs, head, options: dict, state) -> dict:
    from models.attention import attention_maps

    chosen = options.get("layers") or "all"
    wanted = None if chosen == "all" else [chosen]
    maps = attention_maps(subject.model, subject.model_input(xs), layers=wanted)
    found = []
    for m in maps:
        scores = np.asarray(m["scores"][0], dtype=np.float32)  # [heads, queries, keys]
        found.append({"layer": m["layer"], "class_name": m["class_name"], "scores": scores,
                      "query_labels": _labels(scores.shape[1], xs, subject),
                      "key_labels": _labels(scores.shape[2], xs, subject)})
    return {"attributions": [None] * len(xs), "attention": found}


__all__ = ["attention", "attention_unavailable"]
