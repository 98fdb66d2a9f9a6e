"""The training recipe as people edit it: the choices, their defaults, a summary and checks.

The recipe itself is a plain dict in the project (see
:func:`models.project.default_recipe` and :func:`models.training.train`); this
module only knows what may go in it, without TensorFlow, so the app can offer
the choices at once. :func:`check_recipe` tries the optimizer, schedule and
loss with Keras when it is loaded (or when asked to load it).
"""
from __future__ import annotations

import copy

#: ``keras.optimizers`` classes offered by name (all take ``learning_rate``).
OPTIMIZERS = ("Adam", "AdamW", "SGD", "RMSprop", "Nadam", "Adamax", "Adagrad", "Adadelta",
              "Adafactor", "Ftrl", "Lamb", "Lion")

#: ``keras.optimizers.schedules`` offered, with the settings each needs besides the
#: initial learning rate (name -> default value).
SCHEDULES: dict[str, dict[str, float]] = {
    "ExponentialDecay": {"decay_steps": 1000, "decay_rate": 0.9},
    "CosineDecay": {"decay_steps": 1000, "alpha": 0.0},
    "InverseTimeDecay": {"decay_steps": 1000, "decay_rate": 0.5},
    "PolynomialDecay": {"decay_steps": 1000, "end_learning_rate": 0.0001},
}

#: ``keras.losses`` names, most common first (any other registered name works too).
LOSSES = ("sparse_categorical_crossentropy", "categorical_crossentropy", "binary_crossentropy",
          "mean_squared_error", "mean_absolute_error", "huber", "log_cosh",
          "categorical_focal_crossentropy", "binary_focal_crossentropy", "kl_divergence",
          "poisson", "hinge", "squared_hinge", "categorical_hinge", "cosine_similarity",
          "mean_squared_logarithmic_error", "mean_absolute_percentage_error")

#: Metric names offered as suggestions.
METRICS = ("accuracy", "mae", "mse", "auc", "precision", "recall", "top_k_categorical_accuracy")


def optimizer_name(recipe: dict) -> str:
    spec = recipe.get("optimizer") or "Adam"
    return spec if isinstance(spec, str) else spec.get("class_name", "Adam")


def learning_rate(recipe: dict) -> float:
    if "learning_rate" in recipe:
        return float(recipe["learning_rate"])
    spec = recipe.get("optimizer")
    if isinstance(spec, dict):
        return float((spec.get("config") or {}).get("learning_rate", 0.001))
    return 0.001


def with_optimizer(recipe: dict, name: str, lr: float) -> dict:
    """The recipe with this optimizer and learning rate (other optimizer settings kept if same class)."""
    r = copy.deepcopy(recipe)
    old = r.get("optimizer") if isinstance(r.get("optimizer"), dict) else {}
    config = dict(old.get("config") or {}) if old.get("class_name") == name else {}
    config["learning_rate"] = float(lr)
    r["optimizer"] = {"class_name": name, "config": config}
    r.pop("learning_rate", None)  # one place for it
    return r


def loss_name(loss) -> str:
    """A recipe's loss in a few words: a name, a serialised loss's class, or one per output."""
    if isinstance(loss, str):
        return loss
    if isinstance(loss, dict):
        return loss.get("class_name", "custom loss")
    if isinstance(loss, (list, tuple)):  # per output; None: that output has no loss of its own
        return " + ".join(loss_name(one) for one in loss if one is not None) + " (per output)"
    return "custom loss"


# Loops that use no Keras optimizer: what sets their steps instead.
OWN_STEP_LOOPS = {"som": "the map layer's own learning rate"}


def settings_without_effect(recipe: dict) -> set[str]:
    """Training settings this recipe's training does not read: searching them changes nothing."""
    return {"learning_rate"} if recipe.get("loop", "fit") in OWN_STEP_LOOPS else set()


def summary(recipe: dict) -> str:
    """One line for people: optimizer, learning rate, schedule, loss, epochs, batch, callbacks."""
    own_steps = OWN_STEP_LOOPS.get(recipe.get("loop", "fit"))
    parts = [f"no optimizer ({own_steps})" if own_steps else
             f"{optimizer_name(recipe)} lr {learning_rate(recipe):g}"]
    schedule = recipe.get("schedule")
    if schedule and not own_steps:
        parts[0] += f" ({schedule.get('class_name')})"
    if recipe.get("loop", "fit") != "fit":
        parts.append(f"own training loop ({recipe['loop'].rsplit(':', 1)[-1]})")
    else:
        parts.append(loss_name(recipe.get("loss", "sparse_categorical_crossentropy")))
    parts.append(f"{recipe.get('epochs', 10)} epochs, batch {recipe.get('batch_size', 32)}")
    cbs = recipe.get("callbacks") or {}
    es = cbs.get("early_stopping")
    if es:
        parts.append(f"early stopping (patience {(es if isinstance(es, dict) else {}).get('patience', 5)})")
    if cbs.get("reduce_lr"):
        parts.append("reduce LR on plateau")
    if recipe.get("mixed_precision"):
        parts.append("mixed precision")
    if recipe.get("jit_compile"):
        parts.append("XLA")
    return " · ".join(parts)


def check_recipe(recipe: dict, *, load_keras: bool = False) -> list[str]:
    """Problems with the recipe, in words (an empty list when it is fine).

    Args:
        recipe: the recipe to check.
        load_keras: also build the optimizer, schedule and loss with Keras
            (loads TensorFlow). Without it they are tried only if Keras is
            already loaded.
    """
    problems = []
    for key, low in (("epochs", 1), ("batch_size", 1)):
        value = recipe.get(key, low)
        if not isinstance(value, int) or isinstance(value, bool) or value < low:
            problems.append(f"{key} must be a whole number of at least {low}; got {value!r}")
    for key in ("val_fraction", "test_fraction"):
        value = recipe.get(key)
        if value is not None and not (isinstance(value, (int, float)) and 0 <= value < 1):
            problems.append(f"{key} must be at least 0 and below 1; got {value!r}")
    lr = learning_rate(recipe)
    if not lr > 0:
        problems.append(f"the learning rate must be above 0; got {lr!r}")
    from models import backend

    if problems or not (load_keras or backend.is_loaded()):
        return problems
    from models.training import TrainingError, make_optimizer

    try:
        make_optimizer(recipe)
    except TrainingError as exc:
        problems.append(str(exc))
    loss = recipe.get("loss", "sparse_categorical_crossentropy")
    if recipe.get("loop", "fit") == "fit":
        keras = backend.keras()
        for one in (loss if isinstance(loss, (list, tuple)) else [loss]):  # a list: per output
            try:
                if one is not None:
                    keras.losses.get(one)
            except Exception as exc:
                problems.append(f"loss {one!r} is not a Keras loss: "
                                f"{' '.join(str(exc).split())[:200]}")
    return problems


__all__ = ["OPTIMIZERS", "SCHEDULES", "LOSSES", "METRICS", "summary", "check_recipe",
           "optimizer_name", "learning_rate", "with_optimizer", "loss_name"]
