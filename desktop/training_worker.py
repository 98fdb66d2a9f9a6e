"""Train a project off the UI thread: ``models.training.train`` in a QThread, watched through a RunState.

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

from PySide6.QtCore import QObject, QThread, Signal, Slot

from models.runner import RunState, run


class _Job(QObject):
    """Lives in the training thread; ``go`` runs one training to its end."""

    sig_finished = Signal()

    def __init__(self, fn, state: RunState):
        super().__init__()
        self._fn, self._state = fn, state

    @Slot()
    def go(self):
        run(self._fn, self._state)  # records result, cancellation or error on the state
        self.sig_finished.emit()


class TrainingWorker(QObject):
    """Runs one training at a time in a QThread.

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

    sig_started = Signal()
    sig_finished = Signal(object, bool)
    sig_failed = Signal(str)

    def __init__(self, parent: QObject | None = None):
        super().__init__(parent)
        self.state: RunState | None = None
        self.result = None
        self.weights: dict[str, list] = {}
        self.dataset = None
        self.evaluation: dict | None = None
        self._thread: QThread | None = None
        self._job: _Job | None = None

    # ------------------------------------------------------------------ control

    @property
    def running(self) -> bool:
        return self._thread is not None

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
        state = self.state = RunState()

        def job(st: RunState):
            return self._train(snapshot, dataset, st, evaluate, overrides)

        thread = QThread(self)
        thread.setObjectName("layerforge-training")
        worker = _Job(job, state)
        worker.moveToThread(thread)
        thread.started.connect(worker.go)
        worker.sig_finished.connect(self._on_job_finished)  # queued: arrives on our thread
        self._thread, self._job = thread, worker
        thread.start()
        self.sig_started.emit()
        return state

    def pause(self) -> None:
        if self.state is not None:
            self.state.pause()

    def resume(self) -> None:
        if self.state is not None:
            self.state.resume()

    def stop(self) -> None:
        """Ask the run to stop at its next batch; it keeps the best weights so far."""
        if self.state is not None:
            self.state.cancel()

    def wait(self, timeout_ms: int = 30_000) -> bool:
        """Stop and wait for the thread (for closing the app); False if it did not end in time."""
        if self._thread is None:
            return True
        self.stop()
        return self._thread.wait(timeout_ms)

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

    @Slot()
    def _on_job_finished(self):
        thread, self._thread, self._job = self._thread, None, None
        if thread is not None:
            thread.quit()  # the job is done; its event loop may still be running
            thread.wait()
            thread.deleteLater()
        state = self.state
        if state is None:
            return
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
