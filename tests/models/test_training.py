"""models.training.train and the ``layerforge train`` command, on tiny models and built-in data."""
import csv
import json
import math
import os
import socket
import subprocess
import sys
import threading
import time
from pathlib import Path

import numpy as np
import pytest

from models.runner import RunState, run_in_thread

ROOT = Path(__file__).resolve().parents[2]


# --------------------------------------------------------------------------- helpers


def _keras():
    from models import backend

    return backend.keras()


def _nan_after_loss_class():
    """A registered MSE-like crossentropy that turns NaN (gradients too) after ``steps`` steps.

    Deterministic: the step counter is a variable of the loss, so the first NaN
    always comes at step ``steps + 1`` whatever the data order.
    """
    keras = _keras()
    name = "layerforge_tests>NanAfter"
    existing = keras.saving.get_registered_object(name)
    if existing is not None:
        return existing

    @keras.saving.register_keras_serializable(package="layerforge_tests")
    class NanAfter(keras.losses.Loss):
        def __init__(self, steps=50, **kwargs):
            kwargs.setdefault("name", "nan_after")
            super().__init__(**kwargs)
            self.steps = int(steps)
            self.counter = keras.Variable(0, dtype="int32", trainable=False, name="nan_after_steps")

        def call(self, y_true, y_pred):
            ops = keras.ops
            self.counter.assign_add(1)
            base = keras.losses.sparse_categorical_crossentropy(y_true, y_pred)
            factor = ops.where(self.counter > self.steps, float("nan"), 1.0)
            return base * factor  # NaN in the loss and in every gradient

        def get_config(self):
            return {**super().get_config(), "steps": self.steps}

    return NanAfter


def mlp_project(dataset="digits-flat", *, hidden=32, classes=10, inputs=64, epochs=3,
                batch_size=32, **recipe):
    """A small Dense network as a project, with a recipe for built-in data."""
    from models.build import graph_from_model
    from models.project import default_recipe, new_project

    keras = _keras()
    x = keras.Input((inputs,), name="pixels")
    h = keras.layers.Dense(hidden, activation="relu", name="hidden")(x)
    y = keras.layers.Dense(classes, activation="softmax", name="digit")(h)
    graph = graph_from_model(keras.Model(x, y, name="mlp"))
    r = default_recipe()
    r.update({"optimizer": {"class_name": "Adam", "config": {"learning_rate": 0.005}},
              "epochs": epochs, "batch_size": batch_size})
    r.update(recipe)
    return new_project(graph, dataset={"source": "builtin", "name": dataset}, recipe=r)


@pytest.fixture(scope="module")
def digits():
    from models.data import load_dataset

    return load_dataset("builtin:digits-flat", seed=0)


def kinds(events):
    return [e.kind for e in events if e.kind != "status"]


class Recorder:
    """A RunState listener that keeps every event (called on the worker thread)."""

    def __init__(self, state):
        self.events = []
        self.batches = 0
        self.lock = threading.Lock()
        state.subscribe(self)

    def __call__(self, event):
        with self.lock:
            self.events.append(event)
            if event.kind == "batch":
                self.batches += 1


def wait_for(predicate, timeout=60.0, every=0.01):
    end = time.monotonic() + timeout
    while time.monotonic() < end:
        if predicate():
            return True
        time.sleep(every)
    return False


# --------------------------------------------------------------------------- train()


def test_digits_mlp_learns_and_reports_every_event_in_order(digits):
    from models.training import train

    state = RunState()
    rec = Recorder(state)
    result = train(mlp_project(epochs=4), state=state, dataset=digits)
    assert result.stopped == "completed" and result.epochs_run == 4
    assert result.metrics["test_accuracy"] >= 0.85
    assert set(result.history) >= {"loss", "accuracy", "val_loss", "val_accuracy"}
    assert result.samples_per_second > 0 and result.seconds > 0

    order = kinds(rec.events)
    assert order[0] == "begin" and order[-1] == "done"
    assert order.count("epoch") == 4
    assert order.index("batch") < order.index("epoch")
    begin = rec.events[[e.kind for e in rec.events].index("begin")].payload
    assert begin["epochs"] == 4 and begin["layers"] == ["hidden", "digit"]
    steps = math.ceil(digits.n_train / 32)
    assert begin["steps"] == steps and order.count("batch") == 4 * steps
    batches = [e.payload for e in rec.events if e.kind == "batch"]
    assert [s for s, _ in batches] == list(range(1, 4 * steps + 1))
    assert all(math.isfinite(loss) for _, loss in batches)
    epochs = [e.payload for e in rec.events if e.kind == "epoch"]
    assert [p["epoch"] for p in epochs] == [1, 2, 3, 4]
    for p in epochs:
        logs = p["logs"]
        assert {"loss", "accuracy", "val_loss", "val_accuracy", "learning_rate",
                "samples_per_second"} <= set(logs)
        assert logs["learning_rate"] == pytest.approx(0.005)
        assert set(p["grad_norms"]) == {"hidden", "digit"}
        assert all(v > 0 and math.isfinite(v) for v in p["grad_norms"].values())
        for layer in ("hidden", "digit"):
            h = p["histograms"][layer]
            assert len(h["edges"]) == len(h["counts"]) + 1
            assert sum(h["counts"]) == sum(int(np.prod(w.shape)) for w in
                                           result.model.get_layer(layer).trainable_weights)
    done = rec.events[-1].payload if rec.events[-1].kind == "done" else \
        [e for e in rec.events if e.kind == "done"][0].payload
    json.dumps(done)
    assert done["metrics"]["test_accuracy"] == pytest.approx(result.metrics["test_accuracy"])


def _epochs_of(data, steps, epochs):
    it = iter(data)
    return [[next(it) for _ in range(steps)] for _ in range(epochs)]


def test_fit_inputs_shuffle_every_epoch_and_batch_as_fit_does():
    from models import backend
    from models.training import fit_inputs

    tf = backend.tf()
    x = (np.arange(10, dtype="float32") * 10).reshape(10, 1)
    y = np.arange(10, dtype="int32")
    epochs = _epochs_of(fit_inputs(x, y, 4, 7, tf), 3, 4)  # 10 samples: batches of 4, 4, 2
    orders = []
    for batches in epochs:
        assert [len(b[1]) for b in batches] == [4, 4, 2]
        for bx, by in batches:  # each input row stays with its target
            assert np.array_equal(bx.numpy()[:, 0], by.numpy() * 10)
        order = np.concatenate([b[1].numpy() for b in batches]).tolist()
        assert sorted(order) == list(range(10))  # every sample once an epoch
        orders.append(order)
    assert len({tuple(o) for o in orders}) == 4  # a new order each epoch
    again = _epochs_of(fit_inputs(x, y, 4, 7, tf), 3, 4)
    assert [np.concatenate([b[1].numpy() for b in e]).tolist() for e in again] == orders  # seeded


def test_eval_inputs_keep_the_order_and_batch_as_evaluate_does():
    from models import backend
    from models.training import eval_inputs

    tf = backend.tf()
    x = (np.arange(10, dtype="float32") * 10).reshape(10, 1)
    y = np.arange(10, dtype="int32")
    data = eval_inputs(x, y, 4, tf)
    for _ in range(2):  # each epoch's validation reads the same batches
        batches = [(bx.numpy()[:, 0].tolist(), by.numpy().tolist()) for bx, by in data]
        assert [b[1] for b in batches] == [[0, 1, 2, 3], [4, 5, 6, 7], [8, 9]]
        assert all(bx == [v * 10 for v in by] for bx, by in batches)
    assert eval_inputs(x, y[:9], 4, tf) is None


def test_fit_inputs_keep_several_inputs_apart_and_refuse_what_fit_should_judge():
    from models import backend
    from models.training import fit_inputs

    tf = backend.tf()
    a, b, y = np.zeros((6, 2), "float32"), np.ones((6, 3), "float32"), np.arange(6)
    listed = fit_inputs([a, b], y, 4, 0, tf).element_spec
    assert [tuple(s.shape) for s in listed[0]] == [(None, 2), (None, 3)]  # not stacked
    named = fit_inputs({"left": a, "right": b}, y, 4, 0, tf).element_spec
    assert set(named[0]) == {"left", "right"}
    assert tuple(fit_inputs(a, None, 4, 0, tf).element_spec.shape) == (None, 2)  # x alone
    # Arrays of other lengths and object arrays are left to fit, whose checks name them.
    assert fit_inputs(a, y[:5], 4, 0, tf) is None
    assert fit_inputs(np.array([[1], [2, 3]], dtype=object), None, 4, 0, tf) is None


def test_samples_that_do_not_match_their_targets_fail_with_a_message(digits):
    from models.training import TrainingError, train

    import copy

    data = copy.copy(digits)  # the module's data stays whole
    data.y_train = digits.y_train[:-3]
    with pytest.raises(TrainingError, match="cardinality|size|samples") as caught:
        train(mlp_project(epochs=1), dataset=data)
    assert "Traceback" not in str(caught.value)


def test_pause_blocks_progress_and_resume_finishes(digits):
    from models.training import train

    state = RunState()
    rec = Recorder(state)
    project = mlp_project(epochs=6, batch_size=8)
    _, thread = run_in_thread(lambda st: train(project, state=st, dataset=digits), state)
    assert wait_for(lambda: rec.batches >= 5)
    state.pause()
    time.sleep(0.2)  # the batch in flight finishes, then the checkpoint waits
    assert state.status == "paused"
    frozen = rec.batches
    time.sleep(0.5)
    assert rec.batches == frozen, "batches kept coming while paused"
    assert thread.is_alive()
    state.resume()
    thread.join(120)
    assert not thread.is_alive()
    assert state.status == "done" and state.error is None
    result = state.result
    assert result.stopped == "completed" and result.epochs_run == 6
    assert rec.batches == 6 * math.ceil(digits.n_train / 8) > frozen


def test_stop_keeps_the_best_weights(digits, monkeypatch):
    import models.training as training

    lives = []

    class Spy(training.LiveCallback):
        def __init__(self, *a, **k):
            super().__init__(*a, **k)
            lives.append(self)

    monkeypatch.setattr(training, "LiveCallback", Spy)
    state = RunState()
    steps = math.ceil(digits.n_train / 16)

    def stop_in_third_epoch(event):
        if event.kind == "batch" and event.payload[0] == 2 * steps + 3:
            state.cancel()

    state.subscribe(stop_in_third_epoch)
    result = training.train(mlp_project(epochs=50, batch_size=16), state=state, dataset=digits)
    assert result.stopped == "stopped"
    assert "kept the best weights" in result.message
    assert result.epochs_run <= 3 < 50
    live = lives[-1]
    assert live.best_weights is not None and result.best_epoch == live.best_epoch
    for got, best in zip(result.model.get_weights(), live.best_weights):
        np.testing.assert_array_equal(got, best)


def test_nan_loss_stops_with_a_message_and_finite_weights(digits):
    from models.training import train

    _nan_after_loss_class()
    # The loss also runs on the validation batches at the end of epoch 1.
    calls_in_epoch_1 = math.ceil(digits.n_train / 32) + math.ceil(digits.n_val / 32)
    project = mlp_project(epochs=5, loss={"class_name": "layerforge_tests>NanAfter",
                                          "config": {"steps": calls_in_epoch_1 + 5}})
    state = RunState()
    rec = Recorder(state)
    result = train(project, state=state, dataset=digits)
    assert result.stopped == "nan"
    assert "NaN" in result.message and "at epoch 2, batch " in result.message
    assert all(np.isfinite(w).all() for w in result.model.get_weights())
    epochs = [e.payload for e in rec.events if e.kind == "epoch"]
    assert [p["epoch"] for p in epochs] == [1]  # the NaN epoch is never reported as done
    assert kinds(rec.events)[-1] == "done"


def test_gradient_norm_tap_reads_the_true_norm_of_each_layers_gradient():
    """The tap agrees with a GradientTape: on every compiled step, on every n-th eager one."""
    from models import backend
    from models.training import GradNormTap

    keras, tf = _keras(), backend.tf()
    keras.utils.set_random_seed(3)
    x_in = keras.Input((5,))
    h = keras.layers.Dense(7, activation="tanh", name="hidden")(x_in)
    y_out = keras.layers.Dense(3, name="head")(h)
    model = keras.Model(x_in, y_out)
    model.compile(optimizer=keras.optimizers.SGD(learning_rate=0.0), loss="mse")  # weights fixed
    x = np.random.default_rng(0).normal(size=(16, 5)).astype("float32")
    y = np.random.default_rng(1).normal(size=(16, 3)).astype("float32")

    def norms(xb, yb):
        with tf.GradientTape() as tape:
            loss = keras.losses.MeanSquaredError()(yb, model(xb))
        grads = tape.gradient(loss, model.trainable_weights)
        out = {}
        for layer in ("hidden", "head"):
            mine = [g for g, w in zip(grads, model.trainable_weights)
                    if any(w is lw for lw in model.get_layer(layer).trainable_weights)]
            out[layer] = math.sqrt(sum(float(np.sum(np.square(g))) for g in mine))
        return out

    tap = GradNormTap.attach(model)
    model.fit(x, y, batch_size=16, epochs=2, shuffle=False, verbose=0)  # the same batch twice
    assert tap.epoch_norms() == pytest.approx(norms(x, y), rel=1e-4)
    assert tap.epoch_norms() == {}  # a new epoch starts empty

    # Four batches of four: the epoch's norm is the mean of the four steps' norms.
    model.fit(x, y, batch_size=4, epochs=1, shuffle=False, verbose=0)
    read = [norms(x[i:i + 4], y[i:i + 4]) for i in (0, 4, 8, 12)]
    expected = {k: sum(r[k] for r in read) / 4 for k in read[0]}
    assert tap.epoch_norms() == pytest.approx(expected, rel=1e-4)

    # An eager loop's optimizer, read on every second step: the 1st and 3rd of four.
    tap.sample_every(2)
    for i in (0, 4, 8, 12):
        with tf.GradientTape() as tape:
            loss = keras.losses.MeanSquaredError()(y[i:i + 4], model(x[i:i + 4]))
        model.optimizer.apply(tape.gradient(loss, model.trainable_weights), model.trainable_weights)
    expected = {k: (read[0][k] + read[2][k]) / 2 for k in read[0]}
    assert tap.epoch_norms() == pytest.approx(expected, rel=1e-4)


def test_out_dir_writes_checkpoints_history_and_logs(tmp_path, digits):
    from models.training import train

    out = tmp_path / "run"
    result = train(mlp_project(epochs=3), dataset=digits, out_dir=out)
    assert (out / "checkpoints" / "best.weights.h5").is_file()
    assert (out / "checkpoints" / "last.weights.h5").is_file()
    with open(out / "history.csv", newline="") as f:
        rows = list(csv.DictReader(f))
    assert [int(r["epoch"]) for r in rows] == [0, 1, 2]
    assert float(rows[-1]["loss"]) == pytest.approx(result.history["loss"][-1], rel=1e-5)
    assert any((out / "logs").rglob("events.out.tfevents.*"))


@pytest.mark.filterwarnings("error:Skipping variable loading")
def test_resume_from_a_checkpoint(tmp_path, digits):
    from models.training import train

    out = tmp_path / "first"
    first = train(mlp_project(epochs=3), dataset=digits, out_dir=out, evaluate=False)

    def first_loss(**kw):
        state = RunState()
        rec = Recorder(state)
        train(mlp_project(epochs=1), state=state, dataset=digits, evaluate=False, **kw)
        return next(e.payload[1] for e in rec.events if e.kind == "batch")

    fresh = first_loss()
    resumed = first_loss(initial_weights=out / "checkpoints" / "last.weights.h5")
    assert resumed < 0.5 * fresh
    assert resumed < 2.0 * first.history["loss"][-1] + 0.1


def test_effective_recipe_quick_preset_and_overrides():
    from models.training import effective_recipe

    recipe = {"epochs": 40, "batch_size": 32, "quick": {"epochs": 5, "limit": 300}}
    assert effective_recipe(recipe) == {"epochs": 40, "batch_size": 32}
    assert effective_recipe(recipe, quick=True) == {"epochs": 5, "batch_size": 32, "limit": 300}
    eff = effective_recipe(recipe, quick=True, epochs=7, batch_size=8, xla=True)
    assert eff == {"epochs": 7, "batch_size": 8, "limit": 300, "jit_compile": True}
    assert "quick" in recipe and recipe["epochs"] == 40  # the project's recipe is untouched


def test_xla_trains_a_small_model(digits):
    from models.training import train

    result = train(mlp_project(epochs=3), dataset=digits, xla=True)
    assert result.model.jit_compile is True
    assert result.stopped == "completed" and result.metrics["test_accuracy"] >= 0.8


# --------------------------------------------------------------------------- the command


def run_cli(*args, timeout=300, env=None, cwd=None):
    return subprocess.run([sys.executable, "-m", "models.cli", *args], capture_output=True,
                          text=True, cwd=cwd or ROOT, timeout=timeout,
                          env=dict(os.environ, **(env or {})))


def last_json(text):
    return json.loads(text.strip().splitlines()[-1])


def test_train_gallery_mlp_quick_json_reaches_095():
    """The issue's must-show: ``layerforge train gallery:mlp --quick --json``."""
    r = run_cli("train", "gallery:mlp", "--quick", "--json")
    assert r.returncode == 0, r.stderr[-2000:]
    out = last_json(r.stdout)
    assert out["metrics"]["test_accuracy"] >= 0.95
    assert out["quality"] == {"metric": "test_accuracy", "value": out["metrics"]["test_accuracy"]}
    assert out["seconds"] > 0 and out["samples_per_second"] > 0
    assert len(out["history"]["loss"]) == out["epochs"] >= 1
    assert "Traceback" not in r.stderr


def _write_iris_csv(path: Path, junk: str | None = None):
    from sklearn.datasets import load_iris

    bunch = load_iris()
    names = ["sepal_length", "sepal_width", "petal_length", "petal_width"]
    with open(path, "w", newline="") as f:
        w = csv.writer(f)
        w.writerow(names + ["species"])
        for i, (row, label) in enumerate(zip(bunch.data, bunch.target)):
            cells = [f"{v:.1f}" for v in row]
            if junk and i == 17:
                cells[names.index(junk)] = "n/a?"
            w.writerow(cells + [str(bunch.target_names[label])])


def test_train_csv_with_text_labels_and_out_dir(tmp_path, capsys):
    from models.cli import main

    data = tmp_path / "iris.csv"
    _write_iris_csv(data)
    out = tmp_path / "run"
    code = main(["train", "gallery:mlp", "--data", str(data), "--target", "species",
                 "--epochs", "60", "--out", str(out), "--json"])
    captured = capsys.readouterr()
    assert code == 0, captured.err
    result = last_json(captured.out)
    assert result["metrics"]["test_accuracy"] >= 0.85
    assert "adapted:" in captured.err  # the template was fitted to 4 columns and 3 species
    assert (out / "project.lforge").is_file() and (out / "project.weights.h5").is_file()
    assert (out / "history.csv").is_file() and (out / "logs").is_dir()
    assert (out / "checkpoints" / "best.weights.h5").is_file()
    saved = json.loads((out / "project.lforge").read_text())
    assert saved["dataset"]["source"] == "csv" and saved["dataset"]["target"] == "species"
    # the saved project predicts with its trained weights
    from models.project import Project

    model = Project.load(out / "project.lforge").build()
    assert model.output_shape[-1] == 3

    # Resume from the run's last checkpoint: training goes on from where it ended.
    code = main(["train", str(out / "project.lforge"), "--epochs", "1", "--json",
                 "--resume", str(out / "checkpoints" / "last.weights.h5")])
    captured = capsys.readouterr()
    assert code == 0, captured.err
    # It goes on from the trained weights: its first epoch is as low as the run's last few
    # (an epoch's loss wanders with the batch order), far below the run's fresh first epoch.
    resumed, losses = last_json(captured.out)["history"]["loss"][0], result["history"]["loss"]
    assert resumed <= 1.5 * max(losses[-5:]) and resumed < losses[0] / 4
    # A checkpoint of another model is refused in one line, naming the file.
    other = tmp_path / "other.weights.h5"
    mlp_project().build().save_weights(str(other))
    code = main(["train", str(out / "project.lforge"), "--epochs", "1", "--resume", str(other)])
    err = capsys.readouterr().err
    assert code == 1 and "other.weights.h5: these weights cannot be loaded" in err
    assert "Traceback" not in err and len(err.strip().splitlines()) == 1


def test_train_csv_with_junk_in_a_numeric_column_fails_cleanly(tmp_path):
    data = tmp_path / "iris.csv"
    _write_iris_csv(data, junk="petal_width")
    r = run_cli("train", "gallery:mlp", "--data", str(data), "--target", "species", timeout=120)
    assert r.returncode == 1
    assert "petal_width" in r.stderr
    assert "Traceback" not in r.stderr and len(r.stderr.strip().splitlines()) == 1


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _h5_arrays(path: Path) -> dict:
    import h5py

    arrays = {}
    with h5py.File(path, "r") as f:
        f.visititems(lambda name, obj: arrays.__setitem__(name, obj[()])
                     if isinstance(obj, h5py.Dataset) else None)
    return arrays


def test_multi_worker_training_ends_with_the_same_weights(tmp_path):
    """Two worker processes on this machine, synchronised by MultiWorkerMirroredStrategy."""
    ports = [_free_port(), _free_port()]
    cluster = {"worker": [f"127.0.0.1:{p}" for p in ports]}
    procs = []
    for i in range(2):
        env = dict(os.environ, TF_CONFIG=json.dumps({"cluster": cluster,
                                                      "task": {"type": "worker", "index": i}}))
        procs.append(subprocess.Popen(
            [sys.executable, "-m", "models.cli", "train", "gallery:mlp", "--data", "builtin:iris",
             "--distribute", "multi-worker", "--out", str(tmp_path / f"w{i}"), "--epochs", "2",
             "--json"], cwd=ROOT, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
            text=True))
    outs = []
    try:
        for p in procs:
            out, err = p.communicate(timeout=300)
            outs.append((p.returncode, out, err))
    finally:
        for p in procs:
            if p.poll() is None:
                p.kill()
    for code, out, err in outs:
        assert code == 0, err[-3000:]
    results = [last_json(out) for _, out, _ in outs]
    assert results[0]["history"] == results[1]["history"]  # metrics are averaged across workers
    assert results[0]["history"]["loss"][1] < results[0]["history"]["loss"][0]
    a, b = (_h5_arrays(tmp_path / f"w{i}" / "project.weights.h5") for i in range(2))
    assert a.keys() == b.keys() and len(a) >= 4
    for key in a:
        np.testing.assert_array_equal(a[key], b[key], err_msg=key)


def test_recipe_summary_names_the_optimizer_or_says_a_loop_has_none():
    from models import gallery
    from models.recipe import summary

    som = summary(gallery.open_template("som").recipe)
    assert som.startswith("no optimizer (the map layer's own learning rate)")
    assert "Adam" not in som and "own training loop (som)" in som
    assert summary(gallery.open_template("mlp").recipe).startswith("Adam lr ")


def test_an_eager_loops_two_optimizers_taking_turns_are_each_read():
    """sample_every counts each optimizer's own steps: with two players alternating, both are read."""
    from models import backend
    from models.training import GradNormTap

    keras, tf = _keras(), backend.tf()
    keras.utils.set_random_seed(4)
    models, optimizers = {}, []
    for name in ("a", "b"):
        x_in = keras.Input((3,))
        models[name] = keras.Model(x_in, keras.layers.Dense(2, name=f"dense_{name}")(x_in))
        optimizers.append(keras.optimizers.SGD(learning_rate=0.0))
    tap = GradNormTap._fitted(models, optimizers)
    tap.sample_every(2)
    x = np.ones((4, 3), "float32")
    for _ in range(3):  # a, b, a, b, a, b: each read on its 1st and 3rd step
        for (name, model), optimizer in zip(models.items(), optimizers):
            with tf.GradientTape() as tape:
                loss = tf.reduce_sum(model(x) ** 2)
            optimizer.apply(tape.gradient(loss, model.trainable_weights), model.trainable_weights)
    assert tap.totals.numpy()[1].tolist() == [2.0, 2.0]
    assert set(tap.epoch_norms()) == {"a/dense_a", "b/dense_b"}
    assert tap.totals.numpy()[1].tolist() == [0.0, 0.0]  # read and cleared
