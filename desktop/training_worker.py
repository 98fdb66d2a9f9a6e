"""Train a project off the UI thread: ``models.training.train`` in a Python thread, watched through a RunState.

The worker is the thin Qt shell around the Qt-free runner (see
:mod:`models.runner`): it starts the run in its own thread, forwards pause,
resume and stop to the :class:`~models.runner.RunState`, and reports the end
with signals. It draws nothing: the panel drains :attr:`TrainingWorker.state`
on a timer, so however fast batches come the UI redraws at its own pace.

Stop never kills the thread; it asks the run to stop at its next checkpoint
(``model.stop_training``), which keeps the best weights.
"""
from __future__ import annotations

from typing import Any

from PySide6.QtCore import QObject, Signal

from desktop.workers import RunWorker
from models.runner import RunState


class TrainingWorker(RunWorker):
    """Runs one training at a time in a Python thread (see :class:`~desktop.workers.RunWorker`).

    Signals:
        sig_started(): the run began (its RunState is :attr:`state`).
        sig_finished(dict, bool): the run ended with a result: its JSON
            (``TrainResult.to_json()`` plus ``"evaluation"``) and ``ok``, which
            is False only when the loss became NaN. A stopped run is ``ok``:
            it keeps the best weights.
        sig_failed(str): the run could not train (bad data, a model that does
            not fit it...); the message says why.

    After ``sig_finished``, :attr:`result` is the :class:`TrainResult`,
    :attr:`weights` the kept weights per graph name (numpy arrays, taken in
    the training thread) and :attr:`dataset` the data it trained on.
    """

    sig_finished = Signal(object, bool)
    sig_failed = Signal(str)

    def __init__(self, parent: QObject | None = None):
        super().__init__(parent)
        self.result = None
        self.weights: dict[str, list] = {}
        self.dataset = None
        self.evaluation: dict | None = None

    # ------------------------------------------------------------------ control

    def start(self, project, dataset=None, *, evaluate: bool = True, **overrides) -> RunState:
        """Train ``project`` (a copy is made; the caller's project is never touched).

        Args:
            project: a :class:`models.project.Project`.
            dataset: loaded data; by default the project's (loaded in the thread).
            evaluate: also fill :attr:`evaluation` (confusion matrix, curves...)
                from the test split.
            **overrides: passed to :func:`models.training.train` (``quick``,
                ``epochs``, ``batch_size``, ``xla``, ``out_dir``...).

        Returns:
            The run's :class:`RunState`, to drain and to show progress from.
        """
        if self.running:
            raise RuntimeError("a training run is already going; stop it first")
        snapshot = project.copy()
        self.result, self.weights, self.dataset, self.evaluation = None, {}, dataset, None
        return super().start(lambda st: self._train(snapshot, dataset, st, evaluate, overrides))

    # ------------------------------------------------------------------ thread side

    def _train(self, project, dataset, state: RunState, evaluate: bool, overrides: dict):
        from models.training import effective_recipe, load_project_data, train

        if dataset is None:
            state.progress(0.0, "loading data")
            recipe = effective_recipe(project.recipe, quick=bool(overrides.get("quick")))
            dataset = load_project_data(project, recipe)
            self.dataset = dataset
        state.checkpoint()
        notes = self._drop_stale_weights(project)
        result = train(project, state=state, dataset=dataset, **overrides)
        result.notes = notes + list(result.notes)
        models = dict(result.models) or {project.main_name: result.model}
        # Copies taken here, off the UI thread, while nothing else uses the model.
        self.weights = {name: m.get_weights() for name, m in models.items() if m is not None}
        if evaluate and result.stopped != "nan" and result.model is not None \
                and getattr(dataset, "n_test", 0):
            state.progress(1.0, "evaluating on the test split")
            from models.evaluation import EvaluationError
            from models.evaluation import evaluate as evaluate_model

            try:
                result.evaluation = evaluate_model(result.model, dataset)
            except (EvaluationError, ValueError) as exc:
                result.notes.append(f"no evaluation: {exc}")
        self.evaluation = result.evaluation
        return result

    @staticmethod
    def _drop_stale_weights(project) -> list[str]:
        """Weights kept from before the graph was edited no longer fit it: start fresh instead."""
        notes = []
        for name in list(project.weights):
            if name not in project.graphs:
                continue
            try:
                project.build(name, with_weights=True)
            except Exception:
                del project.weights[name]
                notes.append(f"the saved weights of '{name}' no longer fit the edited model; "
                             "training started from fresh weights")
        return notes

    # ------------------------------------------------------------------ UI side

    def finished(self, state) -> None:
        super().finished(state)
        if state.error:
            self.sig_failed.emit(state.error)
            return
        result = state.result
        if result is None:  # stopped before training began
            payload: dict[str, Any] = {"stopped": "stopped", "epochs": 0, "metrics": {},
                                       "history": {}, "notes": [],
                                       "message": "stopped before training began"}
            self.sig_finished.emit(payload, True)
            return
        self.result = result
        payload = result.to_json()
        payload["evaluation"] = result.evaluation
        self.sig_finished.emit(payload, result.stopped != "nan")


__all__ = ["TrainingWorker"]
