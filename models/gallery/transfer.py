"""Transfer learning (cheatsheet 2.4): a CNN learns digits 0-4, then 5-9 from 20 labels per class.

Both templates hold two graphs: ``base``, the CNN template adapted to five
classes, and ``model``, made from it by :func:`models.transfer.transfer_graph`
(the same function as the editor's File > New from Trained Model…): the base's
convolutions up to ``flatten``, and a new five-way head.

The base is pre-trained inside the training run, on ``digits-0-4``, unless the
project already holds base weights (after a first run has been saved): about
ten seconds on two cores, so every run is reproducible from the template
alone, and no weights trained on one machine have to ship.

``transfer_gain`` compares the trained model with the same graph (the same
configs, frozen layers included) trained by the same recipe from fresh
weights: all that differs is where the weights start. For feature extraction
that is the random-features control (a head on an untrained frozen base).
``scratch_full_accuracy`` adds the plain baseline, every layer trainable and
trained for longer with the base's own learning rate: on these easy 8x8
digits 100 labels already take it far, so the gain there is small.
"""
from __future__ import annotations

import copy

from models.gallery import register
from models.loops import Loop

BASE_DATA = {"source": "builtin", "name": "digits-0-4"}
TARGET_DATA = {"source": "builtin", "name": "digits-5-9", "labels_per_class": 20}
KEEP_UNTIL = "flatten"


class TransferLoop(Loop):
    """Pre-train the base (when it has no weights), carry its layers over, train in phases.

    Recipe keys:
        pretrain: ``{"data", "epochs", "learning_rate", "batch_size"}`` for the base.
        transfer: ``{"base": graph name, "keep_until": layer}``: what carries over.
        phases: a list of ``{"epochs", "learning_rate", "freeze_until" (optional)}``;
            ``freeze_until`` freezes that layer and those before it for the
            phase (a head warm-up before fine-tuning); otherwise the graph's
            own ``trainable`` flags apply.
        baseline_runs: how many fresh starts the same-recipe baseline averages (3).
        baseline: ``{"epochs", "learning_rate"}`` of the all-trainable
            from-scratch baseline (``scratch_full_accuracy``).
    """

    monitor = "loss"

    def build(self) -> None:
        from models import backend
        from models.training import load_project_data

        backend.keras().utils.set_random_seed(int(self.recipe.get("seed", 0)))
        super().build()
        spec = self.recipe["transfer"]
        self.base_name, self.keep_until = spec["base"], spec["keep_until"]
        self.pre = dict(self.recipe.get("pretrain") or {})
        self.base_trained = self.project.has_weights(self.base_name)
        self.carried = self.project.has_weights(self.project.main_name)
        self.pre_epochs = int(self.pre.get("epochs", 0))
        self.base_data = None
        if not self.base_trained and self.pre_epochs:
            base_project = self.project.copy()
            base_project.dataset = self.pre["data"]
            self.base_data = load_project_data(base_project, self.recipe)
        self.schedule = _schedule(self.recipe, self.pre_epochs)
        self._phase = None

    def steps_per_epoch(self) -> int:
        batch = int(self.recipe.get("batch_size", 16))
        return max(1, -(-self.dataset.n_train // batch))

    def train_epoch(self, epoch, step):
        model = self.models[self.project.main_name]
        if epoch < self.pre_epochs:
            if self.base_data is None:  # the base came trained: nothing to do
                return {}
            base = self.models[self.base_name]
            if epoch == 0:
                _compile(base, self.recipe, self.pre.get("learning_rate"))
            batch = int(self.pre.get("batch_size", 32))
            logs = _fit_epoch(base, self.base_data.x_train, self.base_data.y_train, batch, step)
            return {f"base_{k}": v for k, v in logs.items()}
        if not self.carried:
            from models.transfer import carry_weights, kept_layers

            graph = self.project.graphs[self.base_name]
            carry_weights(self.models[self.base_name], model,
                          [n for n in kept_layers(graph, self.keep_until) if not graph.nodes[n].is_input])
            self.carried = True
        phase = self.schedule[epoch - self.pre_epochs]
        if phase is not self._phase:
            _enter_phase(model, self.project.graph, phase, self.recipe)
            self._phase = phase
        return _fit_epoch(model, self.dataset.x_train, self.dataset.y_train,
                          int(self.recipe.get("batch_size", 16)), step)

    def evaluate(self) -> dict[str, float]:
        from models import backend
        from models.build import build_model

        keras = backend.keras()
        ds = self.dataset
        model = self.models[self.project.main_name]
        out = _test(model, ds)
        # The same graph and recipe from fresh weights: only the starting point differs. A
        # fresh start varies a lot from one seed to the next, so the baseline is a mean.
        runs = max(1, int(self.recipe.get("baseline_runs", 3)))
        scores = []
        for run in range(runs):
            keras.utils.set_random_seed(int(self.recipe.get("seed", 0)) + 1 + run)
            fresh = build_model(self.project.graph)
            phase = None
            for p in self.schedule:
                if p is not phase:
                    _enter_phase(fresh, self.project.graph, p, self.recipe)
                    phase = p
                _fit_epoch(fresh, ds.x_train, ds.y_train, int(self.recipe.get("batch_size", 16)))
            scores.append(_test(fresh, ds)["test_accuracy"])
        out["scratch_accuracy"] = sum(scores) / len(scores)
        out["transfer_gain"] = out["test_accuracy"] - out["scratch_accuracy"]
        baseline = self.recipe.get("baseline")
        if baseline:
            keras.utils.set_random_seed(int(self.recipe.get("seed", 0)) + 1)
            plain = build_model(self.project.graph)
            for layer in plain.layers:
                layer.trainable = True
            _compile(plain, self.recipe, baseline.get("learning_rate"))
            plain.fit(ds.x_train, ds.y_train, epochs=int(baseline.get("epochs", 30)),
                      batch_size=int(self.recipe.get("batch_size", 16)), verbose=0)
            out["scratch_full_accuracy"] = _test(plain, ds)["test_accuracy"]
        return out


def _schedule(recipe: dict, pre_epochs: int) -> list[dict]:
    """One phase per training epoch after pre-training; the last phase takes what epochs remain."""
    phases = list(recipe.get("phases") or [{"epochs": 10}])
    total = max(len(phases), int(recipe.get("epochs", 10)) - pre_epochs)
    epochs = [max(1, int(p.get("epochs", 1))) for p in phases[:-1]]
    epochs.append(max(1, total - sum(epochs)))
    return [p for p, n in zip(phases, epochs) for _ in range(n)]


def _compile(model, recipe: dict, learning_rate) -> None:
    from models.training import compile_model

    r = dict(recipe)
    if learning_rate is not None:
        r["learning_rate"] = float(learning_rate)
    compile_model(model, r)


def _enter_phase(model, graph, phase: dict, recipe: dict) -> None:
    """Set each layer's trainable flag for the phase (the graph's, or frozen up to a layer) and recompile."""
    from models.transfer import kept_layers

    frozen = set(kept_layers(graph, phase["freeze_until"])) if phase.get("freeze_until") else set()
    for layer in model.layers:
        node = graph.nodes.get(layer.name)
        own = True if node is None else bool(node.config.get("trainable", True))
        layer.trainable = own and layer.name not in frozen
    _compile(model, recipe, phase.get("learning_rate"))


def _fit_epoch(model, x, y, batch_size: int, step=None) -> dict[str, float]:
    """One epoch of ``fit``; ``step(loss)`` after each batch (it raises to pause-stop or on NaN)."""
    from models import backend

    keras = backend.keras()
    callbacks = []
    if step is not None:
        class _Step(keras.callbacks.Callback):
            def on_train_batch_end(self, batch, logs=None):
                step(float((logs or {}).get("loss", float("nan"))))

        callbacks.append(_Step())
    history = model.fit(x, y, epochs=1, batch_size=batch_size, shuffle=True, verbose=0,
                        callbacks=callbacks)
    return {k: float(v[-1]) for k, v in history.history.items()}


def _test(model, ds) -> dict[str, float]:
    scores = model.evaluate(ds.x_test, ds.y_test, verbose=0, return_dict=True)
    return {f"test_{k}": float(v) for k, v in scores.items()}


def _transfer_template(*, freeze: bool, phases: list[dict], explanation: str):
    from models.adapt import adapt_to_data
    from models.data import load_dataset
    from models.gallery.supervised import cnn
    from models.project import Project
    from models.transfer import transfer_graph

    base, _ = cnn()
    adapt_to_data(base, load_dataset(BASE_DATA))  # the CNN template with a five-way head
    base.graph.name = "base_cnn"
    model = transfer_graph(base.graph, KEEP_UNTIL, freeze_until=KEEP_UNTIL if freeze else None,
                           units=5, activation="softmax")
    model.name = "transfer_cnn"
    pretrain = {"data": dict(BASE_DATA), "epochs": 10, "learning_rate": 0.002, "batch_size": 32}
    recipe = copy.deepcopy(base.recipe)
    recipe.pop("callbacks", None)
    recipe.update({
        "loop": "models.gallery.transfer:TransferLoop",
        "epochs": pretrain["epochs"] + sum(p["epochs"] for p in phases),
        "batch_size": 16,
        "pretrain": pretrain,
        "transfer": {"base": "base", "keep_until": KEEP_UNTIL},
        "phases": phases,
        "baseline": {"epochs": 30, "learning_rate": 0.002},
        "quality": {"metric": "transfer_gain"},
    })
    recipe.pop("quick", None)
    project = Project(graphs={"model": model, "base": base.graph}, dataset=dict(TARGET_DATA),
                      recipe=recipe, meta={"explanation": explanation})
    return project, {}


@register("fine-tuning", "Fine-tuning a pre-trained CNN", "2.4.1",
          "A CNN learns digits 0-4, then all its layers are tuned at a low learning rate "
          "on 5-9 from 20 labels per class.")
def fine_tuning():
    return _transfer_template(
        freeze=False,
        phases=[{"epochs": 5, "learning_rate": 0.01, "freeze_until": KEEP_UNTIL},
                {"epochs": 5, "learning_rate": 0.0001}],
        explanation=(
            "Training starts by teaching the base CNN digits 0 to 4, where labels are "
            "plentiful. Its convolutions, which by then detect strokes, loops and corners, "
            "are copied into a new model whose head is a fresh five-way layer for digits 5 to "
            "9, of which only 20 labelled images per class are given. Fine-tuning first "
            "trains the new head alone (the copied layers held fixed, so a random head cannot "
            "wreck them), then lets every layer move at a low learning rate. transfer_gain is "
            "the test accuracy minus that of the same model and recipe started from random "
            "weights."))


@register("feature-extraction", "Feature extraction from a pre-trained CNN", "2.4.2",
          "A CNN learns digits 0-4; its frozen convolutions feed a new head trained on 5-9 "
          "from 20 labels per class.")
def feature_extraction():
    return _transfer_template(
        freeze=True,
        phases=[{"epochs": 10, "learning_rate": 0.01}],
        explanation=(
            "Training starts by teaching the base CNN digits 0 to 4. Its convolutions are "
            "then frozen (trainable off) and used as a fixed feature extractor: only a new "
            "five-way head on top learns digits 5 to 9, from 20 labelled images per class, "
            "so very few weights have to be fitted to very few labels. transfer_gain is the "
            "test accuracy minus that of the same model (frozen layers and all) whose frozen "
            "layers keep their random initial weights: what the pre-trained features are "
            "worth."))
