"""The ``train_step`` route of custom training: a Keras model that holds a project's graphs.

Models that need their own step (an autoencoder's encoder and decoder, a
GAN's two players, a diffusion model's noise) keep each part as an editable
functional graph in the project. A :class:`Trainer` is a registered
``keras.Model`` subclass that holds the built graphs by name and overrides
``train_step`` and ``test_step``, the idiomatic Keras 3 way. It trains with
``fit``, so :class:`models.training.LiveCallback` gives it what every fit
run gets: per-batch loss, pause, resume, stop keeping the best weights, the
NaN guard, checkpoints, live views and per-layer (here: per-graph) gradient
norms and weight histograms.

A recipe picks a trainer by name like a loop (``"loop": "vae"``; see
:data:`models.loops.LOOPS`) and gives it options in ``"loop_options"``;
``loop_options["graphs"]`` maps the trainer's roles to other graph names.
"""
from __future__ import annotations

from models import backend

keras = backend.keras()
tf = backend.tf()


@keras.saving.register_keras_serializable(package="layerforge")
class Trainer(keras.Model):
    """Base class: the project's built graphs and a step that trains them.

    Subclasses name the graphs they need in :attr:`roles`, the values their
    step reports in :attr:`metric_names` (``"loss"`` first: the batch-loss
    curve and the NaN guard read it) and implement :meth:`compute` (the
    losses of one batch); the default steps minimise ``"loss"`` over every
    trainable weight. A step that needs more (a GAN's two optimizers)
    overrides ``train_step``.

    Attributes:
        graphs: graph name -> built functional ``keras.Model``.
        options: the recipe's ``loop_options``.
        roles: the graphs the step needs, by role.
        metric_names: what each step reports (averaged over the epoch).
        monitor: ``(log key, "min" | "max")`` that marks the best weights, or
            None for fit's default (the validation loss).
        evaluable: True when the main graph maps the data's inputs to its
            targets, so the app's evaluation page (confusion matrix...) applies.
    """

    roles: tuple[str, ...] = ()
    metric_names: tuple[str, ...] = ("loss",)
    monitor: tuple[str, str] | None = None
    evaluable = False

    def __init__(self, graphs: dict, options: dict | None = None, **kwargs):
        super().__init__(**kwargs)
        self.graphs = dict(graphs)
        # Plain data, kept out of Keras's attribute tracking (a tracked dict cannot be deep-copied).
        object.__setattr__(self, "_options", dict(options or {}))
        self.trackers = {name: keras.metrics.Mean(name=name) for name in self.metric_names}
        self.built = True  # every graph is a built model already

    @property
    def options(self) -> dict:
        """The recipe's ``loop_options``."""
        return self._options

    @classmethod
    def from_project(cls, project, recipe: dict) -> "Trainer":
        """Build every graph of ``project`` (with its saved weights) and hold them.

        Raises:
            TrainingError: a graph the trainer needs is missing, or the graphs
                do not fit together (the message names them).
        """
        from models.training import TrainingError

        options = dict(recipe.get("loop_options") or {})
        names = dict(options.get("graphs") or {})
        missing = [names.get(r, r) for r in cls.roles if names.get(r, r) not in project.graphs]
        if missing:
            raise TrainingError(
                f"the {cls.__name__} step needs the graph{'s' if len(missing) > 1 else ''} "
                f"{', '.join(repr(m) for m in missing)}; this project has "
                f"{', '.join(repr(g) for g in project.graphs)}. Rename a graph or set "
                "loop_options.graphs in the recipe")
        graphs = {name: project.build(name, with_weights=project.has_weights(name))
                  for name in project.graphs}
        trainer = cls(graphs, options, name=f"{project.main_name}_trainer")
        problem = trainer.check()
        if problem:
            raise TrainingError(problem)
        return trainer

    def graph(self, role: str):
        """The built graph that plays ``role``."""
        return self.graphs[dict(self.options.get("graphs") or {}).get(role, role)]

    def check(self) -> str:
        """Why the graphs do not fit together ("" when they do); subclasses check shapes."""
        return ""

    def compile_from(self, recipe: dict) -> None:
        """Compile with the recipe's optimizer (subclasses add what else they need)."""
        from models.training import make_optimizer

        self.compile(optimizer=make_optimizer(recipe), jit_compile=bool(recipe.get("jit_compile", False)),
                     steps_per_execution=int(recipe.get("steps_per_execution", 1)))

    def build_optimizers(self) -> None:
        """Build the optimizer(s) for the weights they train (before loading a checkpoint into them)."""
        self.optimizer.build(self.trained_weights())

    # ------------------------------------------------------------------ steps

    @property
    def metrics(self):
        return list(self.trackers.values())

    def record(self, values: dict) -> dict:
        """Add one batch's values to the epoch means; returns the means so far."""
        for name, tracker in self.trackers.items():
            if name in values:
                tracker.update_state(values[name])
        return {name: tracker.result() for name, tracker in self.trackers.items()}

    def compute(self, x, training: bool) -> dict:
        """The losses of one batch (``"loss"`` is minimised); subclasses implement it."""
        raise NotImplementedError

    def trained_weights(self) -> list:
        """The weights the default step updates."""
        return self.trainable_weights

    def train_step(self, data):
        x = features(data)
        weights = self.trained_weights()
        with tf.GradientTape() as tape:
            values = self.compute(x, training=True)
        grads = tape.gradient(values["loss"], weights)
        self.optimizer.apply(grads, weights)
        return self.record(values)

    def test_step(self, data):
        return self.record(self.compute(features(data), training=False))

    # ------------------------------------------------------------------ saving

    def get_config(self):
        return {"graphs": {k: keras.saving.serialize_keras_object(m) for k, m in self.graphs.items()},
                "options": self.options, "name": self.name}

    @classmethod
    def from_config(cls, config):
        graphs = {k: keras.saving.deserialize_keras_object(v) for k, v in config["graphs"].items()}
        return cls(graphs, config.get("options"), name=config.get("name"))


def features(data):
    """The inputs of a batch that fit hands over as ``(x, y)`` or ``(x, y, weights)``."""
    return data[0] if isinstance(data, (tuple, list)) else data


def sample_rows(x, n: int, seed: int = 0):
    """``n`` rows of ``x`` picked evenly at random (a fixed seed: a live view shows the same ones)."""
    import numpy as np

    rng = np.random.default_rng(seed)
    return x[np.sort(rng.choice(len(x), size=min(n, len(x)), replace=False))]


__all__ = ["Trainer", "features", "sample_rows"]
