"""A multi-modal model (cheatsheet section 7.7.4): a partly hidden digit image plus a short caption.

The quality is ``fusion_gain``: the fused model's test accuracy minus the
better of two single-modality models. Those are measured honestly, by
training: :func:`fusion_gain` trains the very same architecture twice more
with the same recipe, seed, data and epochs, once with the captions blanked
(padding tokens) and once with the images blanked (zeros), and tests each.
A model that cannot see a modality can only learn from the other, so its
accuracy is what that modality alone supports with this architecture.
"""
from __future__ import annotations

import dataclasses

import numpy as np

from models.gallery import register
from models.gallery.supervised import _project
from models.runner import RunState

MODALITIES = ("image", "caption")


def blank(x: dict, modality: str) -> dict:
    """``x`` (input name -> array) with one modality's input set to zeros (padding for tokens)."""
    return {k: np.zeros_like(v) if k == modality else v for k, v in x.items()}


def _accuracy(model, x, y) -> float:
    # One direct call: cheaper than predict() for a few hundred samples, every epoch.
    pred = np.argmax(np.asarray(model(x, training=False)), axis=-1)
    return float(np.mean(pred == np.asarray(y)))


class _Within(RunState):
    """A training run inside another: progress goes to the outer run, which also pauses and stops it."""

    def __init__(self, outer: RunState, label: str):
        super().__init__(max_events=1)  # the inner run's plots are not shown
        self.outer, self.label = outer, label

    def progress(self, fraction: float, message: str | None = None) -> None:
        super().progress(fraction, message)
        # The outer run's own training is done (its fraction stays); the message tells how far.
        self.outer.progress(self.outer.fraction,
                            f"fusion_gain: training the {self.label} model, {self.message}")

    def checkpoint(self) -> None:
        self.outer.checkpoint()


def fusion_gain(model, dataset, recipe, state: RunState | None = None) -> dict:
    """The fused accuracy against single-modality models trained the same way.

    Args:
        state: the fused run's state; the comparison runs report their
            progress there and stop with it.

    Returns:
        ``test_image_only_accuracy`` and ``test_caption_only_accuracy`` (the
        same architecture trained and tested with the other input blanked),
        and ``fusion_gain``: the fused model's test accuracy minus the better
        of the two. Nothing when the run is stopped before both are trained.
    """
    from models.build import graph_from_model
    from models.project import new_project
    from models.training import train

    # The same recipe (and seed) without the hooks that would recurse or draw.
    alone_recipe = {k: v for k, v in recipe.items()
                    if k not in ("extra_metrics", "live_view", "quality")}
    alone_recipe.update(histograms=False, grad_norms=False)
    fused = _accuracy(model, dataset.x_test, dataset.y_test)
    out = {}
    for keep in MODALITIES:
        hidden = next(m for m in MODALITIES if m != keep)
        data = dataclasses.replace(
            dataset, x_train=blank(dataset.x_train, hidden), x_val=blank(dataset.x_val, hidden),
            x_test=blank(dataset.x_test, hidden), notes=list(dataset.notes))
        project = new_project(graph_from_model(model))
        project.recipe = alone_recipe
        result = train(project, dataset=data,
                       state=_Within(state, f"{keep}-only") if state is not None else None)
        if result.stopped == "stopped":
            return {}
        out[f"test_{keep}_only_accuracy"] = _accuracy(result.model, data.x_test, data.y_test)
    out["fusion_gain"] = fused - max(out.values())
    return out


def fusion_view(model, dataset, options) -> dict:
    """Validation accuracy of the fused model as it is, and with each input hidden."""
    from models import views

    x, y = dataset.x_val, dataset.y_val
    values = [_accuracy(model, x, y), _accuracy(model, blank(x, "caption"), y),
              _accuracy(model, blank(x, "image"), y)]
    return views.view(
        "Fusion",
        views.bars_panel("Validation accuracy of the fused model",
                         ["both inputs", "caption hidden", "image hidden"], values,
                         y_title="accuracy", reference=0.4),
        views.text_panel("Reading the bars", "\n".join([
            "The fused model, fed both inputs or with one of",
            "them blanked: how much it leans on each.",
            "Dashed line: 0.4, the most a caption alone can",
            "reach (it leaves two or three digits open).",
            "fusion_gain, reported when training ends, compares",
            "the fused model with models trained on one input."])),
    )


@register("multimodal", "Multi-modal fusion", "7.7.4",
          "An image branch and a caption branch, fused by concatenation, name a digit that "
          "neither input tells alone.")
def multimodal():
    from models import backend

    keras = backend.keras()
    L = keras.layers
    caption = keras.Input((3,), dtype="int32", name="caption")
    image = keras.Input((8, 8, 1), name="image")
    a = L.Conv2D(16, 3, padding="same", activation="relu", name="image_conv")(image)
    a = L.MaxPooling2D(2, name="image_pool")(a)
    a = L.Flatten(name="image_flatten")(a)
    a = L.Dense(32, activation="relu", name="image_features")(a)
    c = L.Embedding(6, 8, name="caption_embedding")(caption)
    c = L.GlobalAveragePooling1D(name="caption_pool")(c)
    c = L.Dense(16, activation="relu", name="caption_features")(c)
    f = L.Concatenate(name="fusion")([a, c])
    f = L.Dense(64, activation="relu", name="fused")(f)
    out = L.Dense(10, activation="softmax", name="digit")(f)
    model = keras.Model([caption, image], out, name="multimodal")
    return _project(
        model, {"source": "builtin", "name": "digits-captions"},
        {"optimizer": {"class_name": "Adam", "config": {"learning_rate": 0.002}},
         "loss": "sparse_categorical_crossentropy", "metrics": ["accuracy"],
         "epochs": 30, "batch_size": 32, "quick": {"epochs": 15, "batch_size": 64},
         "quality": {"metric": "fusion_gain"},
         "extra_metrics": "models.gallery.multimodal:fusion_gain",
         "live_view": {"fn": "models.gallery.multimodal:fusion_view"}},
        {"explanation": (
            "Cheatsheet 7.7.4, multi-modal models. Each kind of input gets an encoder suited "
            "to it: a small convolution for the image, an embedding averaged over the words "
            "for the caption. Their feature vectors are joined (late fusion by "
            "concatenation) and a Dense head decides. The data is built so that fusion pays: "
            "the image shows only the top three rows of the digit, the caption only says "
            "even or odd and small (0-4) or large (5-9). fusion_gain measures it honestly: "
            "after training, the same architecture is trained twice more with the same "
            "recipe and seed, once with the captions blanked and once with the images "
            "blanked, and the gain is the fused test accuracy minus the better of those "
            "two. The live view shows the fused model's accuracy with each input hidden.")},
    )
