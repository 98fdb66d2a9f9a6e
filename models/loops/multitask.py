"""Multi-task learning: one network, several heads, one weighted sum of their losses.

The data has one label per sample; the recipe's ``targets`` function makes
each head's target from it (the digit, and whether it is above 4, say).
The recipe's ``loss``, ``loss_weights`` and ``metrics`` are dicts keyed by
the output layers' names, as Keras takes them. Training is Keras's own
``fit``, one epoch at a time, with every batch reported to the driver so
pause, resume and stop work as for any loop.
"""
from __future__ import annotations

import math

from models.loops import Loop


def _error(message: str):
    from models.training import TrainingError

    return TrainingError(message)


class MultiTaskLoop(Loop):
    """Recipe keys: ``targets`` (``"package.module:function"``, ``fn(labels) -> {head: target}``),
    ``loss``, ``loss_weights``, ``metrics`` (dicts keyed by head), ``epochs``, ``batch_size``."""

    monitor = "val_loss"
    evaluable = True  # the first head maps the inputs to the data's own labels

    def build(self) -> None:
        from models import backend
        from models.training import compile_model
        from models.views import resolve

        super().build()
        keras = backend.keras()
        keras.utils.set_random_seed(int(self.recipe.get("seed", 0)))
        if self.dataset is None:
            raise _error("a multi-task template trains on labelled data: choose a dataset first")
        self.model = next(iter(self.models.values()))
        heads = list(self.model.output_names)
        try:
            self.targets = resolve(self.recipe["targets"])
        except (KeyError, ValueError, ImportError, AttributeError) as exc:
            raise _error(f"the recipe's targets function cannot be found: {exc}") from None
        self.train_y = self.targets(self.dataset.y_train)
        missing = [h for h in heads if h not in self.train_y]
        if missing:
            raise _error(f"the model's head {missing[0]!r} has no target: the targets function "
                         f"makes {', '.join(self.train_y)}; rename the head or the target")
        self.val_y = self.targets(self.dataset.y_val)
        recipe = dict(self.recipe)
        weights = recipe.get("loss_weights") or {}
        unknown = [h for h in weights if h not in heads]
        if unknown:
            raise _error(f"loss_weights names {unknown[0]!r}, which is not one of the model's "
                         f"heads ({', '.join(heads)})")
        compile_model(self.model, recipe)
        self.batch_size = int(recipe.get("batch_size", 32))

    def steps_per_epoch(self) -> int:
        return max(1, math.ceil(self.dataset.n_train / self.batch_size))

    def train_epoch(self, epoch: int, step) -> dict[str, float]:
        from models import backend

        keras = backend.keras()

        class _Report(keras.callbacks.Callback):
            def on_train_batch_end(self, batch, logs=None):
                step(float((logs or {}).get("loss", float("nan"))))

        history = self.model.fit(self.dataset.x_train, self.train_y, batch_size=self.batch_size,
                                 epochs=1, shuffle=True, verbose=0, callbacks=[_Report()],
                                 validation_data=(self.dataset.x_val, self.val_y))
        return {k: float(v[-1]) for k, v in history.history.items()}

    def evaluate(self) -> dict[str, float]:
        """Each head's test metrics (``test_HEAD_METRIC``) and ``min_task_accuracy``."""
        ds = self.dataset
        scores = self.model.evaluate(ds.x_test, self.targets(ds.y_test), batch_size=256,
                                     verbose=0, return_dict=True)
        out = {f"test_{k}": float(v) for k, v in scores.items()}
        accuracies = [v for k, v in out.items() if k.endswith("_accuracy")]
        if accuracies:
            out["min_task_accuracy"] = float(min(accuracies))
        return out


__all__ = ["MultiTaskLoop"]
