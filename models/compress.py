"""Compression: pruning, weight clustering and quantization-aware training, and Keras 3 quantization.

The TensorFlow Model Optimization Toolkit (TFMOT) works on ``tf_keras`` models
only, so :func:`compress` goes through the model's ``tf_keras`` twin
(:mod:`models.twin`): the trained Keras 3 model is rebuilt in ``tf_keras``
with its weights, wrapped by TFMOT layer by layer, fine-tuned on the
project's own data (:func:`models.training.load_project_data`), stripped of
its wrappers and copied back into a fresh Keras 3 model of the same graph.
The steps run in the order TFMOT's collaborative optimization prescribes,
each keeping what the one before made:

1. **prune** (magnitude pruning): a constant or polynomial-decay sparsity
   schedule, or structured 2:4 sparsity (two zeros in every four weights
   along the input channels, which some accelerators skip);
2. **cluster** (weight sharing): ``number_of_clusters`` centroids per kernel,
   initialised ``kmeans++``, ``linear``, ``density`` or ``random``; after
   pruning, sparsity-preserving clustering keeps the zeros;
3. **qat** (quantization-aware training): fake-quantized int8 training; after
   pruning and/or clustering, TFMOT's PQAT / CQAT / PCQAT schemes keep the
   zeros and the clusters. A QAT model is not a Keras model that Keras 3 can
   keep, so the project gets its float weights (the fine-tuned inner
   weights) and the int8 TFLite file comes from the QAT model itself.

Layers that TFMOT cannot wrap in a step are left as they are and listed in
:attr:`CompressResult.skipped`. A model with layers that have no ``tf_keras``
twin cannot be compressed this way; the error lists them.

Sizes (``size_bytes_before`` / ``size_bytes_after``) are those of the model's
weights file (``.weights.h5``) compressed with gzip at level 9: zeros and
repeated cluster values cost nothing on disk only once compressed, which is
how a pruned or clustered model is shipped.

:func:`keras_quantize` is the second path: Keras 3's own ``model.quantize``
(int8, int4, float8), which in Keras 3.15 applies to ``Dense``,
``EinsumDense`` and ``Embedding`` (no float8 for ``Embedding``) and leaves
every other layer in float; its result is a ``.keras`` file.
"""
from __future__ import annotations

import gzip
import math
import os
import tempfile
import time
import warnings
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from models.data import _count
from models.runner import RunState

SCHEDULES = ("constant", "polynomial")
STRUCTURES = ("2:4",)
CENTROID_INITS = ("kmeans++", "linear", "density", "random")
KERAS_QUANTIZE_MODES = ("int8", "int4", "float8")
# Keras 3.15: the layer classes with a `quantize` method, and the modes each takes.
KERAS_QUANTIZE_LAYERS = {
    "Dense": ("int8", "int4", "float8"),
    "EinsumDense": ("int8", "int4", "float8"),
    "Embedding": ("int8", "int4"),
}
DEFAULT_EPOCHS = 2
FINE_TUNE_LR_FACTOR = 0.1  # fine-tuning steps are smaller than the recipe's training steps


class CompressError(ValueError):
    """A compression that cannot be done; the message says why and what to change."""


@dataclass
class CompressOptions:
    """What to do to the model.

    Attributes:
        prune: target sparsity (0..1), or ``None`` for no pruning.
        schedule: ``"constant"`` (the target from the first step) or
            ``"polynomial"`` (from 0 up to the target along a cubic curve).
        structured: ``"2:4"`` for structured sparsity (the target is then
            50% by construction), or ``None``.
        cluster: number of clusters per kernel, or ``None``.
        centroid_init: ``kmeans++``, ``linear``, ``density`` or ``random``.
        qat: quantization-aware training.
        epochs: fine-tuning epochs for each step.
        batch_size: fine-tuning batch size (default: the recipe's).
        learning_rate: fine-tuning learning rate (default: a tenth of the
            recipe's).
    """

    prune: float | None = None
    schedule: str = "constant"
    structured: str | None = None
    cluster: int | None = None
    centroid_init: str = "kmeans++"
    qat: bool = False
    epochs: int = DEFAULT_EPOCHS
    batch_size: int | None = None
    learning_rate: float | None = None

    @property
    def steps(self) -> list[str]:
        steps = []
        if self.prune is not None or self.structured:
            steps.append("prune")
        if self.cluster is not None:
            steps.append("cluster")
        if self.qat:
            steps.append("qat")
        return steps

    def check(self) -> None:
        """Raise :class:`CompressError` for a setting that cannot work."""
        if not self.steps:
            raise CompressError("choose what to do: prune, cluster and/or qat")
        if self.prune is not None and not (0.0 < self.prune < 1.0):
            raise CompressError(f"the pruning sparsity must be between 0 and 1 (exclusive), "
                                f"not {self.prune}; 0.5 prunes half of the weights")
        if self.schedule not in SCHEDULES:
            raise CompressError(f"unknown pruning schedule {self.schedule!r}; use "
                                f"{' or '.join(SCHEDULES)}")
        if self.structured is not None and self.structured not in STRUCTURES:
            raise CompressError(f"unknown structured sparsity {self.structured!r}; use 2:4")
        if self.cluster is not None and not (2 <= int(self.cluster) <= 256):
            raise CompressError(f"the number of clusters must be 2..256, not {self.cluster}")
        if self.centroid_init not in CENTROID_INITS:
            raise CompressError(f"unknown centroid initialization {self.centroid_init!r}; use "
                                f"one of {', '.join(CENTROID_INITS)}")
        if self.epochs < 0:
            raise CompressError("fine-tuning epochs cannot be negative")
        if self.epochs == 0 and ("prune" in self.steps or self.qat):
            raise CompressError("pruning and quantization-aware training need at least one "
                                "fine-tuning epoch (the masks and the ranges are set in training)")
        if self.learning_rate is not None and not self.learning_rate > 0:
            raise CompressError("the fine-tuning learning rate must be positive")


@dataclass
class CompressResult:
    """What :func:`compress` made.

    Attributes:
        project: a copy of the project holding the compressed weights (in
            memory; save it to keep them) and ``meta["compression"]``.
        model: the compressed Keras 3 model (wrappers stripped).
        steps: the steps done, in order.
        metric: ``"accuracy"`` or ``"mse"``.
        before, after: the test score of the original and compressed model.
        sparsity: per layer, the share of zeros in its kernels.
        distinct: per layer, the most distinct values any of its kernels holds.
        distinct_per_channel: per layer, the most distinct values in one output
            channel of a kernel (cluster-preserving QAT trains a Conv2D's
            centroids channel by channel).
        size_bytes_before, size_bytes_after: gzipped weights files.
        skipped: ``(layer, class, step, why)`` for layers a step left as they are.
        qat_tflite: the int8 TFLite flatbuffer made from the QAT model.
        qat_score: that TFLite model's test score.
        notes: what the user should know.
        seconds: how long it took.
    """

    project: Any
    model: Any
    steps: list[str]
    metric: str
    before: float
    after: float
    sparsity: dict[str, float] = field(default_factory=dict)
    distinct: dict[str, int] = field(default_factory=dict)
    distinct_per_channel: dict[str, int] = field(default_factory=dict)
    size_bytes_before: int = 0
    size_bytes_after: int = 0
    skipped: list[tuple[str, str, str, str]] = field(default_factory=list)
    qat_tflite: bytes | None = None
    qat_score: float | None = None
    notes: list[str] = field(default_factory=list)
    seconds: float = 0.0

    def to_json(self) -> dict:
        accuracy = self.metric == "accuracy"
        return {
            "steps": self.steps,
            "metric": self.metric,
            "accuracy_before": self.before if accuracy else None,
            "accuracy_after": self.after if accuracy else None,
            "mse_before": None if accuracy else self.before,
            "mse_after": None if accuracy else self.after,
            "sparsity": {k: round(v, 6) for k, v in self.sparsity.items()},
            "distinct_values": self.distinct,
            "distinct_values_per_channel": self.distinct_per_channel,
            "size_bytes_before": self.size_bytes_before,
            "size_bytes_after": self.size_bytes_after,
            "size_definition": "bytes of the model's .weights.h5 file compressed with gzip -9",
            "skipped": [{"layer": a, "class": b, "step": c, "reason": d}
                        for a, b, c, d in self.skipped],
            "qat_tflite_bytes": len(self.qat_tflite) if self.qat_tflite else None,
            "qat_tflite_score": self.qat_score,
            "notes": self.notes,
            "seconds": round(self.seconds, 3),
        }


# --------------------------------------------------------------------------- measures


def _leaf_layers(model, prefix: str = ""):
    """``(path, layer)`` for every layer, descending into nested models."""
    for layer in model.layers:
        if hasattr(layer, "layers") and hasattr(layer, "inputs"):
            yield from _leaf_layers(layer, f"{prefix}{layer.name}/")
        else:
            yield prefix + layer.name, layer


def _is_kernel(variable) -> bool:
    """Kernels are what pruning and clustering act on (not biases, not norm statistics)."""
    name = (getattr(variable, "path", None) or variable.name).split("/")[-1].split(":")[0]
    return "kernel" in name or name in ("embeddings", "depthwise_kernel", "pointwise_kernel")


def kernel_stats(model) -> tuple[dict[str, float], dict[str, int], dict[str, int]]:
    """Per layer: the share of zeros in its kernels, the most distinct values in one kernel,
    and the most distinct values in one output channel (the last axis) of a kernel."""
    sparsity, distinct, per_channel = {}, {}, {}
    for path, layer in _leaf_layers(model):
        kernels = [np.asarray(w) for w in layer.weights if _is_kernel(w)]
        if not kernels:
            continue
        total = sum(k.size for k in kernels)
        sparsity[path] = float(sum(int(np.sum(k == 0)) for k in kernels) / total)
        distinct[path] = max(len(np.unique(k)) for k in kernels)
        per_channel[path] = max(len(np.unique(k[..., c])) for k in kernels
                                for c in range(k.shape[-1]))
    return sparsity, distinct, per_channel


def weights_size(model) -> int:
    """Bytes of the model's ``.weights.h5`` compressed with gzip at level 9."""
    fd, tmp = tempfile.mkstemp(prefix="layerforge-size-", suffix=".weights.h5")
    os.close(fd)
    os.unlink(tmp)  # Keras writes the file itself
    try:
        model.save_weights(tmp)
        with open(tmp, "rb") as f:
            return len(gzip.compress(f.read(), compresslevel=9))
    finally:
        if os.path.exists(tmp):
            os.unlink(tmp)


def score_on_test(model, dataset) -> dict:
    """The test score (:func:`models.bench.score`) of a Keras model."""
    from models.bench import keras_predict, score

    return score(keras_predict(model, dataset.x_test), dataset)


# --------------------------------------------------------------------------- TFMOT


def _tfmot():
    from models import backend

    backend.load()  # binds tf.keras to Keras 3 before TFMOT asks for Keras 2
    legacy = os.environ.get("TF_USE_LEGACY_KERAS")
    # TFMOT 0.8 imports distutils' version classes, which warn on Python 3.11.
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", DeprecationWarning)
        import tensorflow_model_optimization as tfmot
    # It sets TF_USE_LEGACY_KERAS=1 for the whole process; TFMOT itself uses tf_keras
    # directly, and nothing else here should be switched to Keras 2.
    if legacy is None:
        os.environ.pop("TF_USE_LEGACY_KERAS", None)
    else:
        os.environ["TF_USE_LEGACY_KERAS"] = legacy
    return tfmot


class _FineTuner:
    """Compiles and fits ``tf_keras`` models on the project's training split, observably."""

    def __init__(self, recipe: dict, dataset, options: CompressOptions, state: RunState,
                 n_steps: int):
        import tf_keras

        self.tfk = tf_keras
        self.recipe = recipe
        self.dataset = dataset
        self.state = state
        self.epochs = options.epochs
        self.batch_size = int(options.batch_size or recipe.get("batch_size", 32))
        base_lr = _recipe_lr(recipe)
        self.learning_rate = options.learning_rate or base_lr * FINE_TUNE_LR_FACTOR
        self.steps_per_epoch = max(1, math.ceil(_count(dataset.x_train) / self.batch_size))
        self.n_steps = n_steps
        self.done_steps = 0

    def _loss(self):
        loss = self.recipe.get("loss", "sparse_categorical_crossentropy")
        if isinstance(loss, dict):
            try:
                return self.tfk.losses.deserialize(loss)
            except Exception:
                raise CompressError(f"the recipe's loss {loss.get('class_name')!r} has no tf_keras "
                                    "equivalent; TFMOT fine-tuning needs one") from None
        return loss

    def fit(self, model, label: str, callbacks=()) -> None:
        """Fine-tune ``model`` for the set number of epochs; progress and cancel per batch."""
        if self.epochs == 0:
            self.done_steps += 1
            return
        model.compile(optimizer=self.tfk.optimizers.Adam(self.learning_rate), loss=self._loss(),
                      metrics=["accuracy"] if self.dataset.task in ("classification", "binary")
                      else [])
        tuner = self

        class _Progress(self.tfk.callbacks.Callback):
            def on_epoch_begin(self, epoch, logs=None):
                self.epoch = epoch

            def on_train_batch_end(self, batch, logs=None):
                within = (self.epoch + (batch + 1) / tuner.steps_per_epoch) / tuner.epochs
                tuner.state.progress(0.05 + 0.85 * (tuner.done_steps + within) / tuner.n_steps,
                                     f"{label}: epoch {self.epoch + 1}/{tuner.epochs}")
                tuner.state.checkpoint()

        try:
            model.fit(self.dataset.x_train, self.dataset.y_train, epochs=self.epochs,
                      batch_size=self.batch_size, verbose=0, shuffle=True,
                      callbacks=[_Progress(), *callbacks])
        except (ValueError, TypeError) as exc:
            raise CompressError(f"fine-tuning ({label}) failed: "
                                f"{' '.join(str(exc).split())[:300]}") from None
        self.done_steps += 1


def _recipe_lr(recipe: dict) -> float:
    if "learning_rate" in recipe:
        return float(recipe["learning_rate"])
    spec = recipe.get("optimizer") or {}
    if isinstance(spec, dict):
        lr = (spec.get("config") or {}).get("learning_rate")
        if isinstance(lr, (int, float)):
            return float(lr)
    return 1e-3


def _clone_wrapping(tfk, model, wrap, step: str, skipped: list):
    """Clone a tf_keras model, wrapping the layers ``wrap`` accepts; list the others."""

    def clone(layer):
        # The wrappers take the layer itself (with its weights), as TFMOT's own examples do,
        # and a layer left alone is reused as it is: the clone keeps every trained weight.
        try:
            return wrap(layer)
        except _Skip as why:
            if layer.weights:
                skipped.append((layer.name, type(layer).__name__, step, str(why)))
            return layer

    return tfk.models.clone_model(model, clone_function=clone)


class _Skip(Exception):
    """Internal: this layer is left as it is in this step (the message says why)."""


def _prune(tfk, tfmot, model, options: CompressOptions, tuner: _FineTuner, skipped: list):
    from tensorflow_model_optimization.python.core.sparsity.keras import prune_registry

    sparsity = tfmot.sparsity.keras
    total = tuner.epochs * tuner.steps_per_epoch
    target = 0.5 if options.structured else float(options.prune)
    if options.schedule == "polynomial":
        frequency = max(1, total // 10)
        end = max(frequency, (int(total * 0.75) // frequency) * frequency)
        schedule = sparsity.PolynomialDecay(initial_sparsity=0.0, final_sparsity=target,
                                            begin_step=0, end_step=end, frequency=frequency)
    else:
        schedule = sparsity.ConstantSparsity(target, begin_step=0,
                                             frequency=max(1, tuner.steps_per_epoch // 2))
    m_by_n = (2, 4) if options.structured == "2:4" else None

    def wrap(layer):
        if not layer.weights or not prune_registry.PruneRegistry.supports(layer):
            raise _Skip("TFMOT cannot prune this layer type")
        if m_by_n is not None:
            if not any(_is_kernel(w) for w in layer.weights):
                return layer  # nothing to prune (a normalization, say): nothing to report
            if type(layer) not in (tfk.layers.Dense, tfk.layers.Conv2D):
                raise _Skip("2:4 sparsity applies to Dense and Conv2D kernels only")
            if int(layer.kernel.shape[-2]) < 4:
                raise _Skip(f"2:4 sparsity needs at least 4 input channels (it has "
                            f"{int(layer.kernel.shape[-2])})")
        return sparsity.prune_low_magnitude(layer, pruning_schedule=schedule,
                                            sparsity_m_by_n=m_by_n)

    with sparsity.prune_scope():
        wrapped = _clone_wrapping(tfk, model, wrap, "prune", skipped)
    tuner.fit(wrapped, "pruning", callbacks=[sparsity.UpdatePruningStep()])
    return sparsity.strip_pruning(wrapped)


def _cluster(tfk, tfmot, model, options: CompressOptions, tuner: _FineTuner, skipped: list,
             preserve_sparsity: bool):
    from tensorflow_model_optimization.python.core.clustering.keras import clustering_registry

    clustering = tfmot.clustering.keras
    init = {
        "kmeans++": clustering.CentroidInitialization.KMEANS_PLUS_PLUS,
        "linear": clustering.CentroidInitialization.LINEAR,
        "density": clustering.CentroidInitialization.DENSITY_BASED,
        "random": clustering.CentroidInitialization.RANDOM,
    }[options.centroid_init]
    k = int(options.cluster)

    def wrap(layer):
        if not layer.weights or not clustering_registry.ClusteringRegistry.supports(layer):
            raise _Skip("TFMOT cannot cluster this layer type")
        kernels = [w for w in layer.trainable_weights if _is_kernel(w)]
        if not kernels:
            return layer  # nothing to cluster (a normalization, say): nothing to report
        smallest = min(int(np.prod(w.shape)) for w in kernels)
        if smallest < k:
            raise _Skip(f"its kernel has {smallest} weights, fewer than {k} clusters")
        return clustering.cluster_weights(layer, number_of_clusters=k,
                                          cluster_centroids_init=init,
                                          preserve_sparsity=preserve_sparsity)

    with clustering.cluster_scope():
        wrapped = _clone_wrapping(tfk, model, wrap, "cluster", skipped)
    tuner.fit(wrapped, "clustering")
    return clustering.strip_clustering(wrapped)


def _qat(tfk, tfmot, model, tuner: _FineTuner, skipped: list, pruned: bool, clustered: bool):
    """Quantization-aware training; returns (float twin with the trained weights, QAT model)."""
    from tensorflow_model_optimization.python.core.quantization.keras.default_8bit import (
        default_8bit_quantize_registry,
    )

    quantize = tfmot.quantization.keras
    combine = tfmot.experimental.combine
    if clustered:
        scheme = combine.Default8BitClusterPreserveQuantizeScheme(preserve_sparsity=pruned)
    elif pruned:
        scheme = combine.Default8BitPrunePreserveQuantizeScheme()
    else:
        scheme = None  # TFMOT's default 8-bit scheme
    registry = default_8bit_quantize_registry.Default8BitQuantizeRegistry()

    def wrap(layer):
        if isinstance(layer, tfk.layers.InputLayer):
            raise _Skip("an input")
        if not registry.supports(layer):
            raise _Skip("TFMOT's 8-bit scheme cannot quantize this layer type; it stays float")
        return quantize.quantize_annotate_layer(layer)

    annotated = _clone_wrapping(tfk, model, wrap, "qat", skipped)
    with quantize.quantize_scope():
        qat = quantize.quantize_apply(annotated, scheme) if scheme is not None else \
            quantize.quantize_apply(annotated)
    tuner.fit(qat, "quantization-aware training")
    # The float weights the project keeps: each wrapper's inner layer holds them, and
    # layers QAT left float were fine-tuned as they are.
    plain = tfk.models.clone_model(model)
    plain.set_weights(model.get_weights())
    by_name = {layer.name: layer for layer in plain.layers}
    for layer in qat.layers:
        inner = layer.layer if isinstance(layer, quantize.QuantizeWrapper) else layer
        target = by_name.get(inner.name)
        if target is None or not target.weights:
            continue
        # A wrapper owns its inner layer's kernel (the inner layer lists only the bias),
        # so the weights are found by their names below the inner layer's.
        trained = _named_weights(layer.weights, inner.name)
        values = []
        for w in target.weights:
            key = _below(w.name, target.name)
            if key not in trained:
                raise CompressError(f"quantization-aware training lost the weight '{w.name}' "
                                    f"of layer '{target.name}'")
            values.append(trained[key])
        target.set_weights(values)
    return plain, qat


def _below(name: str, layer_name: str) -> str:
    """``conv_1/kernel:0`` -> ``kernel``: a tf_keras variable's name below its layer."""
    name = name.split(":")[0]
    head = layer_name + "/"
    return name[name.index(head) + len(head):] if head in name else name


def _named_weights(weights, layer_name: str) -> dict[str, np.ndarray]:
    return {_below(w.name, layer_name): w.numpy() for w in weights
            if (layer_name + "/") in w.name}


def qat_tflite(qat_model) -> bytes:
    """The int8 TFLite flatbuffer of a TFMOT quantization-aware ``tf_keras`` model."""
    from models import backend
    from models.export import run_converter

    tf = backend.tf()
    converter = tf.lite.TFLiteConverter.from_keras_model(qat_model)
    converter.optimizations = [tf.lite.Optimize.DEFAULT]
    return run_converter(converter, "quantization-aware")


def compress(project, options: CompressOptions, *, state: RunState | None = None,
             dataset=None) -> CompressResult:
    """Prune, cluster and/or quantization-aware-train a project's trained model.

    Args:
        project: a :class:`models.project.Project` with trained weights.
        options: what to do (:class:`CompressOptions`).
        state: progress, cancellation (between batches) and partial results.
        dataset: the project's data (loaded if not given).

    Returns:
        A :class:`CompressResult`; the project is not changed.

    Raises:
        CompressError: the options do not apply, the model has no trained
            weights, or a layer has no ``tf_keras`` twin (all are listed).
    """
    from models import backend
    from models.export import ExportError, build_locked
    from models.training import load_project_data
    from models.twin import TwinError, from_tf_keras, to_tf_keras

    options.check()
    state = state or RunState()
    t0 = time.perf_counter()
    if not project.has_weights():
        raise CompressError("the model has no trained weights yet: train it first (compressing "
                            "random weights keeps nothing worth keeping)")
    state.progress(0.0, "loading the model and its data")
    try:
        original = build_locked(project)
    except ExportError as exc:
        raise CompressError(str(exc)) from None
    if dataset is None:
        dataset = load_project_data(project)
    if _count(dataset.x_train) == 0 or _count(dataset.x_test) == 0:
        raise CompressError("the data needs a training split (to fine-tune) and a test split "
                            "(to measure the cost)")
    state.checkpoint()
    backend.load()
    tfmot = _tfmot()
    import tf_keras as tfk

    try:
        twin = to_tf_keras(original)
    except TwinError as exc:
        raise CompressError(f"TFMOT needs a tf_keras copy of the model, and some layers have "
                            f"none. {exc}") from None
    before = score_on_test(original, dataset)
    size_before = weights_size(original)
    steps = options.steps
    tuner = _FineTuner(project.recipe, dataset, options, state, n_steps=len(steps))
    skipped: list[tuple[str, str, str, str]] = []
    notes: list[str] = []
    model = twin.model
    qat_model = None
    for step in steps:
        state.checkpoint()
        if step == "prune":
            model = _prune(tfk, tfmot, model, options, tuner, skipped)
            if options.structured and options.prune not in (None, 0.5):
                notes.append(f"2:4 sparsity zeroes 2 of every 4 weights: 50%, not "
                             f"{options.prune:.0%}")
        elif step == "cluster":
            model = _cluster(tfk, tfmot, model, options, tuner, skipped,
                             preserve_sparsity="prune" in steps)
        elif step == "qat":
            model, qat_model = _qat(tfk, tfmot, model, tuner, skipped,
                                    pruned="prune" in steps, clustered="cluster" in steps)
        state.emit("step", {"step": step, "done": tuner.done_steps, "of": len(steps)})
    state.progress(0.92, "bringing the weights back to Keras 3")
    try:
        with backend.keras_lock:  # a clone of the Keras 3 model: symbolic tracing
            result_model = from_tf_keras(model, like=original, layer_map=twin.layer_map)
    except TwinError as exc:
        raise CompressError(f"the compressed weights do not fit the Keras 3 model: {exc}") from None
    sparsity, distinct, per_channel = kernel_stats(result_model)
    if "cluster" in steps and "qat" in steps and any(
            distinct[p] > options.cluster for p in distinct):
        notes.append(f"cluster-preserving QAT trains each Conv2D output channel's centroids "
                     f"apart: every channel keeps at most {options.cluster} values, a whole "
                     "kernel can hold more")
    after = score_on_test(result_model, dataset)
    qat_bytes, qat_score = None, None
    if qat_model is not None:
        state.progress(0.95, "converting the QAT model to int8 TFLite")
        from models.bench import TFLiteRunner, score

        qat_bytes = qat_tflite(qat_model)
        runner = TFLiteRunner(qat_bytes, input_names=[t.name for t in original.inputs])
        qat_score = score(runner.predict(dataset.x_test), dataset)["value"]
        notes.append("the project keeps the float weights trained with fake quantization; "
                     "the int8 model is the QAT TFLite file")
    new = project.copy()
    new.weights[new.main_name] = result_model.get_weights()
    new.meta = dict(new.meta)
    new.meta["compression"] = {"steps": steps, "options": _options_json(options),
                               f"{before['metric']}_before": before["value"],
                               f"{before['metric']}_after": after["value"]}
    new.path = None  # a new project: saving must not overwrite the original by accident
    result = CompressResult(
        project=new, model=result_model, steps=steps, metric=before["metric"],
        before=before["value"], after=after["value"], sparsity=sparsity, distinct=distinct,
        distinct_per_channel=per_channel,
        size_bytes_before=size_before, size_bytes_after=weights_size(result_model),
        skipped=skipped, qat_tflite=qat_bytes, qat_score=qat_score, notes=notes,
        seconds=time.perf_counter() - t0)
    state.emit("compressed", result.to_json())
    return result


def _options_json(options: CompressOptions) -> dict:
    return {k: v for k, v in vars(options).items() if v is not None}


# --------------------------------------------------------------------------- Keras 3 quantize


def keras_quantize_support(model, mode: str) -> tuple[list[str], list[tuple[str, str]]]:
    """Which layers ``model.quantize(mode)`` would quantize, and why the others stay float.

    Returns:
        ``(quantized layer paths, [(layer path, reason), ...])`` for the
        layers with weights.
    """
    if mode not in KERAS_QUANTIZE_MODES:
        raise CompressError(f"unknown Keras quantization mode {mode!r}; use "
                            f"{', '.join(KERAS_QUANTIZE_MODES)}")
    quantized, left = [], []
    for path, layer in _leaf_layers(model):
        if not layer.weights:
            continue
        modes = KERAS_QUANTIZE_LAYERS.get(type(layer).__name__)
        if modes is None:
            left.append((path, f"Keras 3 has no {mode} quantization for "
                               f"{type(layer).__name__} layers"))
        elif mode not in modes:
            left.append((path, f"Keras 3 quantizes {type(layer).__name__} to "
                               f"{' and '.join(modes)} only"))
        else:
            quantized.append(path)
    return quantized, left


def keras_quantize(project, mode: str, out, *, state: RunState | None = None,
                   dataset=None) -> dict:
    """Quantize a project's model with Keras 3's ``model.quantize(mode)`` and save it as ``.keras``.

    Args:
        project: a project with trained weights.
        mode: ``int8``, ``int4`` or ``float8``.
        out: the ``.keras`` file to write.
        state: progress and cancellation.
        dataset: the project's data (loaded if not given), to score the result.

    Returns:
        ``{"mode", "path", "size_bytes", "quantized", "left_float",
        "metric", "before", "after", "notes"}``.

    Raises:
        CompressError: an unknown mode, no trained weights, or no layer that
            Keras can quantize in this mode.
    """
    from pathlib import Path

    from models.build import save_model_file
    from models.export import ExportError, build_locked
    from models.training import load_project_data

    state = state or RunState()
    if not project.has_weights():
        raise CompressError("the model has no trained weights yet: train it first")
    state.progress(0.1, f"Keras {mode} quantization")
    try:
        model = build_locked(project)
    except ExportError as exc:
        raise CompressError(str(exc)) from None
    quantized, left = keras_quantize_support(model, mode)
    if not quantized:
        raise CompressError(f"Keras 3 {mode} quantization does not apply to this model: "
                            + "; ".join(f"{p}: {why}" for p, why in left))
    if dataset is None:
        dataset = load_project_data(project)
    before = score_on_test(model, dataset)
    state.checkpoint()
    with warnings.catch_warnings():
        # One "does not have a `quantize` method" warning per float layer: listed instead.
        warnings.simplefilter("ignore")
        model.quantize(mode)
    after = score_on_test(model, dataset)
    out = Path(out)
    save_model_file(model, out)
    notes = []
    if mode in ("int8", "float8"):
        notes.append(f"the TFLite converter cannot take Keras {mode} layers; for TFLite use "
                     "post-training quantization (tflite-int8) instead")
    return {"mode": mode, "path": str(out), "size_bytes": out.stat().st_size,
            "quantized": quantized, "left_float": [{"layer": p, "reason": r} for p, r in left],
            "metric": before["metric"], "before": before["value"], "after": after["value"],
            "notes": notes, "model": model}


__all__ = [
    "CENTROID_INITS", "CompressError", "CompressOptions", "CompressResult",
    "KERAS_QUANTIZE_MODES", "SCHEDULES", "compress", "kernel_stats", "keras_quantize",
    "keras_quantize_support", "qat_tflite", "weights_size",
]
