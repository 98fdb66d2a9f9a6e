"""The mixture-of-experts template of the cheatsheet's section 8.2: a gate shares the digits among experts."""
from __future__ import annotations

import numpy as np

from models.gallery import register
from models.gallery.supervised import _project, fit_recipe

MIN_SHARE = 0.05  # every expert should take at least this share of the samples


@register("moe", "Mixture of experts", "8.2",
          "A gate sends each digit to 2 of 4 dense experts; a balancing loss keeps every expert in use.")
def moe():
    from models import backend
    from models.layers import MixtureOfExperts

    keras = backend.keras()
    L = keras.layers
    x = keras.Input((8, 8, 1), name="image")
    h = L.Flatten(name="flatten")(x)
    h = MixtureOfExperts(num_experts=4, units=64, top_k=2, activation="relu",
                         balance_weight=0.1, noise_stddev=1.0, name="experts")(h)
    h = L.Dropout(0.2, name="dropout")(h)
    y = L.Dense(10, activation="softmax", name="digit")(h)
    model = keras.Model(x, y, name="moe")
    return _project(
        model,
        {"source": "builtin", "name": "digits"},
        fit_recipe(0.002, 20, extra_metrics="models.gallery.experts:expert_metrics",
                   live_view={"fn": "models.gallery.experts:usage_view", "samples": 180}),
        {"explanation": (
            "Cheatsheet 8.2, mixture of experts: several expert networks share one job and a small "
            "gating network decides, for each input, which experts handle it. Here a gate scores "
            "4 dense experts for each digit, keeps the best 2 (top-k routing) and mixes their "
            "outputs by the softmax of their scores, so each digit uses only half of the "
            "layer's weights. Left alone the gate tends to favour a few experts and starve the "
            "rest; a load-balancing loss (the share of samples an expert takes times its mean "
            "gate probability, summed) and a little gate noise while training keep all four "
            "busy. The live view shows each expert's share against the 5% line and which "
            "digits go to which expert.")},
    )


def _usage(model, x) -> dict:
    from models.layers.experts import expert_usage

    found = expert_usage(model, x)
    if not found:
        raise ValueError("the model has no MixtureOfExperts layer")
    return next(iter(found.items()))


def expert_metrics(model, dataset, recipe) -> dict[str, float]:
    """Each expert's share of the test samples' routing slots, and the smallest share."""
    _, usage = _usage(model, dataset.x_test)
    share = usage["share"]
    out = {f"test_expert_{i + 1}_share": float(s) for i, s in enumerate(share)}
    out["test_min_expert_share"] = float(share.min())
    return out


def usage_view(model, dataset, options):
    """Bars of each expert's share in % (with the 5% line) and a digit-by-expert routing map.

    Options: ``samples`` (validation samples routed, default 180).
    """
    from models import views

    n = min(int(options.get("samples", 180)), dataset.n_val)
    x, y = dataset.x_val[:n], np.asarray(dataset.y_val[:n]).ravel()
    name, usage = _usage(model, x)
    share, chosen = usage["share"], usage["chosen"]
    experts = [f"expert {i + 1}" for i in range(len(share))]
    classes = dataset.class_names or [str(c) for c in range(int(y.max()) + 1)]
    routing = np.array([chosen[y == c].mean(axis=0) if (y == c).any() else np.zeros(len(share))
                        for c in range(len(classes))])
    return views.view(
        f"Expert usage ({name})",
        views.bars_panel(f"Each expert's share of the routing on {n} validation digits "
                         f"(dashed: {MIN_SHARE:.0%})", experts, 100.0 * share,
                         y_title="% of the routing", reference=100.0 * MIN_SHARE),
        views.heatmap_panel(routing, "Share of each digit's samples sent to each expert "
                            "(bright: all, dark: none)", x_labels=experts, y_labels=classes,
                            x_title="expert", y_title="digit", levels=(0.0, 1.0)),
    )
