"""Measure deployable variants: size, accuracy, agreement and latency; and what XLA buys.

A *variant* is one way to ship the model: the Keras 3 model itself, a
SavedModel, a TFLite file (float, dynamic range, float16, int8, int16x8,
quantization-aware), an ONNX file. :func:`benchmark` runs each on the test
split of the project's data and times it on single samples:

* Keras models run as a ``tf.function`` (as ``predict`` runs them);
* TFLite files run in the LiteRT interpreter from ``ai-edge-litert``
  (``ai_edge_litert.interpreter.Interpreter``), threads configurable, with the
  XNNPACK delegate on by default;
* ONNX files run in ONNX Runtime on the CPU;
* SavedModels run through ``tf.saved_model.load``.

The score is top-1 accuracy for tasks with classes and mean squared error
otherwise, computed here from the predictions (not from the recipe's
metrics), so every runtime is scored the same way. ``agreement`` is the share
of test samples on which a variant's top-1 class equals the float Keras
model's.

:func:`measure_xla` trains and predicts with ``jit_compile`` off and on and
reports the speed-up; :func:`hlo_text` returns the XLA HLO of the model's
forward pass.

Latencies are wall-clock medians on this machine, and so depend on its load.
"""
from __future__ import annotations

import math
import statistics
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable

import numpy as np

from models.data import _count, _take
from models.runner import RunState

CLASS_TASKS = ("classification", "binary", "sequence")
PREDICT_BATCH = 256
LATENCY_BUDGET_S = 0.4   # time spent timing one variant, at most (plus warm-up)
LATENCY_RUNS = (10, 300)  # fewest and most timed calls


class BenchError(ValueError):
    """A measurement that cannot be made; the message says why."""


@dataclass
class Variant:
    """One deployable form of the model.

    Attributes:
        name: what the table shows (``"keras"``, ``"tflite-int8"``, ``"pruned keras"``...).
        format: the export format (:data:`models.export.FORMATS`) or ``"keras"``.
        path: the file or folder on disk (``None`` for an in-memory Keras model).
        size_bytes: size on disk.
        model: the Keras model, for Keras variants.
        input_names: the model's input names, to feed list-shaped data.
        notes: what the user should know about this variant.
    """

    name: str
    format: str
    path: Path | None = None
    size_bytes: int | None = None
    model: Any = None
    input_names: list[str] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)

    @property
    def runtime(self) -> str:
        if self.model is not None or self.format == "keras":
            return "keras"
        if self.format == "saved-model":
            return "tensorflow"
        if self.format == "onnx":
            return "onnxruntime"
        if self.format.startswith("tflite"):
            return "litert"
        return ""


@dataclass
class BenchRow:
    """What one variant measured."""

    name: str
    format: str
    path: str | None
    size_bytes: int | None
    runtime: str
    metric: str | None = None
    value: float | None = None
    agreement: float | None = None
    max_abs_diff: float | None = None
    latency_ms: float | None = None
    latency_p90_ms: float | None = None
    threads: int = 1
    notes: list[str] = field(default_factory=list)

    def to_json(self) -> dict:
        def num(v, digits=6):
            return None if v is None or not math.isfinite(v) else round(float(v), digits)

        return {
            "name": self.name, "format": self.format, "path": self.path,
            "size_bytes": self.size_bytes, "runtime": self.runtime, "metric": self.metric,
            "value": num(self.value), "agreement": num(self.agreement),
            "max_abs_diff": num(self.max_abs_diff), "latency_ms": num(self.latency_ms, 4),
            "latency_p90_ms": num(self.latency_p90_ms, 4), "threads": self.threads,
            "notes": self.notes,
        }


# --------------------------------------------------------------------------- scoring


def first_output(outputs):
    """The first output of a model that may return a list or a dict."""
    if isinstance(outputs, dict):
        return np.asarray(outputs[sorted(outputs)[0]])
    if isinstance(outputs, (list, tuple)):
        return np.asarray(outputs[0])
    return np.asarray(outputs)


def keras_predict(model, x, batch_size: int = PREDICT_BATCH) -> np.ndarray:
    """The Keras model's first output on ``x``."""
    return first_output(model.predict(x, batch_size=batch_size, verbose=0))


def _labels(pred: np.ndarray) -> np.ndarray:
    pred = np.asarray(pred)
    if pred.ndim >= 2 and pred.shape[-1] > 1:
        return pred.argmax(-1)
    if pred.ndim >= 2:
        pred = pred[..., 0]  # one sigmoid unit
    return (pred > 0.5).astype(int)


def score(pred: np.ndarray, dataset) -> dict:
    """Score predictions on the test split.

    Returns:
        ``{"metric": "accuracy", "value": ...}`` for tasks with classes (top-1),
        ``{"metric": "mse", "value": ...}`` otherwise.
    """
    y = np.asarray(dataset.y_test)
    if dataset.task in CLASS_TASKS:
        labels = _labels(pred)
        return {"metric": "accuracy", "value": float(np.mean(labels.reshape(y.shape) == y))}
    pred = np.asarray(pred, dtype="float64").reshape(y.shape)
    return {"metric": "mse", "value": float(np.mean((pred - y) ** 2))}


def agreement(pred: np.ndarray, reference: np.ndarray, task: str) -> float | None:
    """The share of samples whose top-1 class matches the reference's (tasks with classes)."""
    if task not in CLASS_TASKS:
        return None
    return float(np.mean(_labels(pred) == _labels(reference)))


# --------------------------------------------------------------------------- runners


def _as_feed(x, names: list[str]) -> dict:
    """Inputs keyed by input name, whatever structure the data has."""
    if isinstance(x, dict):
        return dict(x)
    if isinstance(x, (list, tuple)):
        if len(names) != len(x):
            raise BenchError(f"the data has {len(x)} inputs but the model takes {len(names)}")
        return dict(zip(names, x))
    if len(names) != 1:
        raise BenchError(f"the data has one input but the model takes {len(names)}: {names}")
    return {names[0]: x}


class TFLiteRunner:
    """Runs a TFLite model in the LiteRT interpreter on data of any structure.

    Quantized inputs and outputs (int8, int16) are converted from and to
    float with the tensors' own scale and zero point. A model with a free
    batch size takes whole batches; one with a fixed batch of 1 (the Edge TPU
    and microcontroller exports) takes one sample at a time.
    """

    def __init__(self, model: bytes | str | Path, *, threads: int = 1, xnnpack: bool = True,
                 input_names: list[str] | None = None):
        from models.export import interpreter

        self.interpreter = interpreter(model, threads=threads, xnnpack=xnnpack)
        self.runner = self.interpreter.get_signature_runner()
        self.inputs = self.runner.get_input_details()
        self.outputs = self.runner.get_output_details()
        self.names = list(input_names or []) or list(self.inputs)
        if sorted(self.names) != sorted(self.inputs):
            self.names = list(self.inputs)
        self.static = any(int(d["shape_signature"][0]) == 1 for d in self.inputs.values())

    def _quantize(self, name: str, value) -> np.ndarray:
        detail = self.inputs[name]
        dtype = np.dtype(detail["dtype"])
        value = np.asarray(value)
        if dtype.kind == "i" and np.issubdtype(value.dtype, np.floating):
            scale, zero = detail["quantization"]
            info = np.iinfo(dtype)
            return np.clip(np.round(value / scale + zero), info.min, info.max).astype(dtype)
        return value.astype(dtype, copy=False)

    def _output(self, result: dict) -> np.ndarray:
        name = sorted(self.outputs)[0]
        detail = self.outputs[name]
        out = np.asarray(result[name])
        if np.dtype(detail["dtype"]).kind == "i" and detail["quantization"][0]:
            scale, zero = detail["quantization"]
            out = (out.astype("float32") - zero) * scale
        return out

    def __call__(self, x) -> np.ndarray:
        feed = {k: self._quantize(k, v) for k, v in _as_feed(x, self.names).items()}
        return self._output(self.runner(**feed))

    def predict(self, x, batch_size: int = PREDICT_BATCH) -> np.ndarray:
        n = _count(x)
        step = 1 if self.static else batch_size
        parts = [self(_take(x, np.arange(i, min(n, i + step)))) for i in range(0, n, step)]
        return np.concatenate(parts, axis=0)


class OnnxRunner:
    """Runs an ONNX file in ONNX Runtime (CPU)."""

    def __init__(self, path: str | Path, *, threads: int = 1, input_names: list[str] | None = None):
        import onnxruntime as ort

        options = ort.SessionOptions()
        options.intra_op_num_threads = max(1, int(threads))
        options.inter_op_num_threads = 1
        options.log_severity_level = 3
        self.session = ort.InferenceSession(str(path), options, providers=["CPUExecutionProvider"])
        self.inputs = {i.name: i for i in self.session.get_inputs()}
        names = list(input_names or [])
        self.names = names if sorted(names) == sorted(self.inputs) else list(self.inputs)

    def __call__(self, x) -> np.ndarray:
        feed = {}
        for k, v in _as_feed(x, self.names).items():
            kind = self.inputs[k].type
            v = np.asarray(v)
            feed[k] = v.astype("float32") if kind == "tensor(float)" else v
        return np.asarray(self.session.run(None, feed)[0])

    def predict(self, x, batch_size: int = PREDICT_BATCH) -> np.ndarray:
        n = _count(x)
        return np.concatenate([self(_take(x, np.arange(i, min(n, i + batch_size))))
                               for i in range(0, n, batch_size)], axis=0)


class KerasRunner:
    """Runs a Keras model as a compiled (not XLA) ``tf.function``, as ``predict`` does."""

    def __init__(self, model):
        from models import backend

        tf = backend.tf()
        self.model = model
        self._fn = tf.function(lambda x: model(x, training=False), reduce_retracing=True)

    def __call__(self, x) -> np.ndarray:
        return first_output(self._fn(x))

    def predict(self, x, batch_size: int = PREDICT_BATCH) -> np.ndarray:
        return keras_predict(self.model, x, batch_size)


class SavedModelRunner:
    """Runs a SavedModel's serving signature."""

    def __init__(self, path: str | Path, *, input_names: list[str] | None = None):
        from models import backend

        tf = backend.tf()
        self._tf = tf
        self.loaded = tf.saved_model.load(str(path))
        self.fn = self.loaded.signatures["serving_default"]
        specs = self.fn.structured_input_signature[1]
        names = list(input_names or [])
        self.names = names if sorted(names) == sorted(specs) else list(specs)
        self.dtypes = {k: s.dtype for k, s in specs.items()}

    def __call__(self, x) -> np.ndarray:
        feed = {k: self._tf.constant(np.asarray(v), dtype=self.dtypes[k])
                for k, v in _as_feed(x, self.names).items()}
        return first_output({k: v.numpy() for k, v in self.fn(**feed).items()})

    def predict(self, x, batch_size: int = PREDICT_BATCH) -> np.ndarray:
        n = _count(x)
        return np.concatenate([self(_take(x, np.arange(i, min(n, i + batch_size))))
                               for i in range(0, n, batch_size)], axis=0)


def runner_for(variant: Variant, threads: int = 1, xnnpack: bool = True):
    """The runner for a variant, or ``None`` where this machine cannot run it."""
    if variant.model is not None:
        return KerasRunner(variant.model)
    if variant.path is None:
        return None
    if variant.format.startswith("tflite"):
        return TFLiteRunner(variant.path, threads=threads, xnnpack=xnnpack,
                            input_names=variant.input_names)
    if variant.format == "onnx":
        return OnnxRunner(variant.path, threads=threads, input_names=variant.input_names)
    if variant.format == "saved-model":
        return SavedModelRunner(variant.path, input_names=variant.input_names)
    return None


def time_calls(fn: Callable[[], Any], budget_s: float = LATENCY_BUDGET_S,
               runs: tuple[int, int] = LATENCY_RUNS) -> tuple[float, float]:
    """Median and 90th-percentile wall time of ``fn()`` in milliseconds (after two warm-ups)."""
    fn()
    fn()
    times: list[float] = []
    start = time.perf_counter()
    while len(times) < runs[1] and (len(times) < runs[0] or time.perf_counter() - start < budget_s):
        t0 = time.perf_counter()
        fn()
        times.append((time.perf_counter() - t0) * 1000.0)
    times.sort()
    return statistics.median(times), times[min(len(times) - 1, int(0.9 * len(times)))]


# --------------------------------------------------------------------------- benchmark


def benchmark(variants: list[Variant], dataset, *, threads: int = 1, xnnpack: bool = True,
              reference: np.ndarray | None = None, state: RunState | None = None,
              on_row: Callable[[BenchRow], None] | None = None) -> list[BenchRow]:
    """Score and time every variant on the test split.

    Args:
        variants: what to measure; the first Keras variant is the reference
            for ``agreement`` unless ``reference`` is given.
        dataset: the project's data (its test split is used).
        threads: interpreter and ONNX Runtime threads.
        xnnpack: run TFLite through the XNNPACK delegate.
        reference: the float model's test predictions.
        state: progress, partial rows (``"row"`` events) and cancellation.
        on_row: called with each row as it is measured.

    Returns:
        One :class:`BenchRow` per variant; a variant that cannot run here
        gets a row whose notes say why.
    """
    state = state or RunState()
    if _count(dataset.x_test) == 0:
        raise BenchError("the test split is empty: nothing to measure accuracy on")
    x_test = dataset.x_test
    one = _take(x_test, np.arange(1))
    rows = []
    for i, variant in enumerate(variants):
        state.checkpoint()
        state.progress(i / max(1, len(variants)), f"measuring {variant.name}")
        row = BenchRow(name=variant.name, format=variant.format,
                       path=str(variant.path) if variant.path else None,
                       size_bytes=variant.size_bytes, runtime=variant.runtime,
                       threads=threads, notes=list(variant.notes))
        try:
            runner = runner_for(variant, threads=threads, xnnpack=xnnpack)
            if runner is None:
                row.notes.append("not run here: C source code for a device" if
                                 variant.format == "c-array" else
                                 f"not run here: no runtime for {variant.format}")
            else:
                pred = runner.predict(x_test)
                scored = score(pred, dataset)
                row.metric, row.value = scored["metric"], scored["value"]
                if reference is None and variant.runtime == "keras":
                    reference = pred
                if reference is not None:
                    row.agreement = agreement(pred, reference, dataset.task)
                    row.max_abs_diff = float(np.max(np.abs(
                        np.asarray(pred, "float64").reshape(reference.shape) - reference)))
                row.latency_ms, row.latency_p90_ms = time_calls(lambda: runner(one))
        except Exception as exc:  # one variant failing must not lose the others
            row.notes.append(f"could not run: {' '.join(str(exc).split())[:300]}")
        rows.append(row)
        state.emit("row", row.to_json())
        if on_row is not None:
            on_row(row)
    return rows


# --------------------------------------------------------------------------- XLA


def device_name() -> str:
    """``"GPU"`` when TensorFlow sees one, else ``"CPU"``."""
    from models import backend

    tf = backend.tf()
    gpus = tf.config.list_physical_devices("GPU")
    return f"GPU ({len(gpus)})" if gpus else "CPU"


def measure_xla(project, dataset=None, *, epochs: int = 3, repeats: int = 5,
                state: RunState | None = None) -> dict:
    """Train and predict with XLA (``jit_compile``) off and on; report the speed-up.

    Each run builds a fresh copy of the model (the project is not changed),
    trains ``epochs`` epochs on the training split and predicts the test
    split ``repeats`` times. The first epoch and the first prediction
    include tracing (and, with XLA, compilation); the steady figures leave
    them out and the compile overhead is reported apart. Steady figures are
    the fastest of the later epochs and predictions (as ``timeit`` takes the
    best of its runs): on a shared machine, slower runs measure the load.

    Returns:
        ``{"device", "train": {"off": {...}, "on": {...}, "speedup"},
        "inference": {"off", "on", "speedup"}}`` with seconds per step,
        samples per second, first-epoch seconds and predict seconds.
    """
    from models import backend
    from models.training import compile_model, effective_recipe, load_project_data

    keras = backend.keras()
    state = state or RunState()
    if epochs < 2:
        raise BenchError("measuring XLA needs at least 2 epochs: the first one compiles")
    recipe = effective_recipe(project.recipe)
    if dataset is None:
        dataset = load_project_data(project, recipe)
    batch = int(recipe.get("batch_size", 32))
    n_train = _count(dataset.x_train)
    steps = max(1, math.ceil(n_train / batch))
    out: dict[str, Any] = {"device": device_name(), "epochs": epochs, "batch_size": batch}
    train: dict[str, Any] = {}
    infer: dict[str, Any] = {}
    for k, jit in enumerate((False, True)):
        key = "on" if jit else "off"
        keras.utils.set_random_seed(int(recipe.get("seed", 0)))
        with backend.keras_lock:  # building traces symbolically (see models.export.build_locked)
            model = project.build(with_weights=project.has_weights())
        compile_model(model, {**recipe, "jit_compile": jit})
        epoch_times: list[float] = []

        class _Timer(keras.callbacks.Callback):
            def on_epoch_begin(self, epoch, logs=None):
                self.t0 = time.perf_counter()

            def on_epoch_end(self, epoch, logs=None):
                epoch_times.append(time.perf_counter() - self.t0)

            def on_train_batch_end(self, b, logs=None):
                done = (k + (len(epoch_times) + (b + 1) / steps) / epochs * 0.8) / 2
                state.progress(done, f"XLA {key}: epoch {len(epoch_times) + 1}/{epochs}")
                state.checkpoint()

        model.fit(dataset.x_train, dataset.y_train, epochs=epochs, batch_size=batch,
                  verbose=0, shuffle=True, callbacks=[_Timer()])
        steady = min(epoch_times[1:])
        train[key] = {"first_epoch_s": epoch_times[0], "epoch_s": steady,
                      "step_ms": steady / steps * 1000.0,
                      "samples_per_second": n_train / steady,
                      "compile_overhead_s": max(0.0, epoch_times[0] - steady)}
        state.progress((k + 0.9) / 2, f"XLA {key}: predicting")
        t0 = time.perf_counter()
        model.predict(dataset.x_test, batch_size=PREDICT_BATCH, verbose=0)
        first = time.perf_counter() - t0
        times = []
        for _ in range(repeats):
            state.checkpoint()
            t0 = time.perf_counter()
            model.predict(dataset.x_test, batch_size=PREDICT_BATCH, verbose=0)
            times.append(time.perf_counter() - t0)
        steady_p = min(times)
        infer[key] = {"first_predict_s": first, "predict_s": steady_p,
                      "samples_per_second": _count(dataset.x_test) / steady_p}
    train["speedup"] = train["off"]["epoch_s"] / train["on"]["epoch_s"]
    infer["speedup"] = infer["off"]["predict_s"] / infer["on"]["predict_s"]
    out["train"], out["inference"] = train, infer
    state.emit("xla", out)
    return out


HLO_STAGES = ("hlo", "optimized_hlo", "hlo_serialized", "optimized_hlo_dot")


def hlo_text(model, stage: str = "optimized_hlo", batch: int = 1) -> str:
    """The XLA HLO of the model's forward pass (``experimental_get_compiler_ir``).

    Args:
        model: a Keras 3 model.
        stage: ``"hlo"`` (as traced) or ``"optimized_hlo"`` (after XLA's
            passes: fusions, layouts), or the other stages TensorFlow knows.
        batch: the batch size to compile for.
    """
    from models import backend
    from models.export import _silenced

    keras, tf = backend.keras(), backend.tf()
    if stage not in HLO_STAGES:
        raise BenchError(f"unknown HLO stage {stage!r}; use one of {', '.join(HLO_STAGES)}")
    fn = tf.function(lambda x: model(x, training=False), jit_compile=True)
    x = keras.tree.map_structure(
        lambda t: tf.zeros((batch,) + tuple(d or 1 for d in t.shape[1:]), dtype=t.dtype),
        model.input)
    with _silenced():
        text = fn.experimental_get_compiler_ir(x)(stage=stage)
    return text if isinstance(text, str) else text.decode("utf-8", "replace")


__all__ = [
    "BenchError", "BenchRow", "KerasRunner", "OnnxRunner", "SavedModelRunner", "TFLiteRunner",
    "Variant", "agreement", "benchmark", "device_name", "hlo_text", "keras_predict",
    "measure_xla", "score", "time_calls",
]
