"""Export a Keras 3 model for deployment: files, TFLite variants, hardware targets.

Formats (:data:`FORMATS`):

* ``keras``: the Keras 3 archive (``model.save``).
* ``saved-model``: a TensorFlow SavedModel folder (``model.export``).
* ``tflite``: TFLite, float32.
* ``tflite-dynamic``: post-training dynamic-range quantization: int8 weights,
  float activations (computed in int8 where a kernel allows it).
* ``tflite-fp16``: float16 weights, float32 compute on CPU (a GPU delegate
  computes in float16).
* ``tflite-int8``: full integer quantization: int8 weights, activations,
  input and output, calibrated on a representative set drawn from the
  project's training split.
* ``tflite-int16x8``: int16 activations with int8 weights (the converter's
  experimental ops set), also calibrated on the project's data.
* ``c-array``: the full-int8 TFLite model as a C/C++ source array (``.cc`` and
  ``.h``) for TensorFlow Lite Micro.
* ``onnx``: ONNX through Keras 3's ``model.export(format="onnx")``, which runs
  tf2onnx (1.17, the first release that accepts protobuf >= 4 and numpy 2).

Every TFLite variant is converted from a SavedModel that Keras writes
(``TFLiteConverter.from_saved_model``), so one path serves Functional and
Sequential models with one input, several inputs or a dict of inputs.

Hardware targets (:data:`TARGETS`) pick a format and check the result: the
Edge TPU wants every operation in int8 on static shapes; a microcontroller
wants an int8 C array and a tensor arena that fits its RAM, which
:func:`mcu_estimate` estimates from the model's own tensors and operations.
"""
from __future__ import annotations

import math
import os
import shutil
import tempfile
import time
import warnings
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable

import numpy as np

from models.data import _count, _take
from models.runner import RunState


class ExportError(ValueError):
    """An export that cannot be made; the message says why and what to change."""


FORMATS: dict[str, str] = {
    "keras": "Keras 3 archive (.keras)",
    "saved-model": "TensorFlow SavedModel folder",
    "tflite": "TFLite, float32",
    "tflite-dynamic": "TFLite, dynamic-range quantization (int8 weights)",
    "tflite-fp16": "TFLite, float16 weights",
    "tflite-int8": "TFLite, full int8 (weights, activations, input and output)",
    "tflite-int16x8": "TFLite, int16 activations and int8 weights",
    "c-array": "C/C++ array of the full-int8 TFLite model, for TensorFlow Lite Micro",
    "onnx": "ONNX (opset chosen by tf2onnx)",
}

TFLITE_KINDS = {
    "tflite": "float",
    "tflite-dynamic": "dynamic",
    "tflite-fp16": "fp16",
    "tflite-int8": "int8",
    "tflite-int16x8": "int16x8",
    "c-array": "int8",
}

SUFFIXES = {
    "keras": ".keras",
    "saved-model": "",
    "c-array": ".cc",
    "onnx": ".onnx",
    **{f: ".tflite" for f in TFLITE_KINDS if f.startswith("tflite")},
}

REPRESENTATIVE_SAMPLES = 200  # calibration samples for the integer variants


@dataclass(frozen=True)
class Target:
    """A hardware target preset.

    Attributes:
        name: ``cpu``, ``gpu``, ``edgetpu`` or ``mcu``.
        title: what the user sees.
        formats: the formats this target can run; the first is the default.
        static_batch: convert with a batch size of 1 fixed in the graph
            (the Edge TPU compiler and TFLite Micro need static shapes).
        about: one line on what the preset does.
    """

    name: str
    title: str
    formats: tuple[str, ...]
    static_batch: bool = False
    about: str = ""

    @property
    def default_format(self) -> str:
        return self.formats[0]


TARGETS: dict[str, Target] = {
    "cpu": Target("cpu", "CPU (float, XNNPACK)",
                  ("tflite", "tflite-dynamic", "tflite-fp16", "tflite-int8", "tflite-int16x8"),
                  about="float32 TFLite; the interpreter runs it through the XNNPACK delegate"),
    "gpu": Target("gpu", "Mobile GPU (float16)", ("tflite-fp16", "tflite"),
                  about="float16 weights, which a mobile GPU delegate computes in half precision"),
    "edgetpu": Target("edgetpu", "Edge TPU (full int8)", ("tflite-int8",), static_batch=True,
                      about="full int8 with static shapes, every operation checked for the "
                            "Edge TPU; compile the file with edgetpu_compiler"),
    "mcu": Target("mcu", "Microcontroller (int8, C array)", ("c-array", "tflite-int8"),
                  static_batch=True,
                  about="full int8 as a C array for TensorFlow Lite Micro, with an estimate of "
                        "tensor arena, RAM and flash"),
}

# Operations the Edge TPU compiler maps to the accelerator (Coral's "supported
# operations" table). Anything else runs on the host CPU, and the compiler cuts
# the graph there: every operation after the first unsupported one leaves the TPU.
EDGETPU_OPS = frozenset({
    "ADD", "AVERAGE_POOL_2D", "CONCATENATION", "CONV_2D", "DEPTHWISE_CONV_2D", "DEQUANTIZE",
    "EXPAND_DIMS", "FULLY_CONNECTED", "HARD_SWISH", "L2_NORMALIZATION", "LOGISTIC", "MAXIMUM",
    "MAX_POOL_2D", "MEAN", "MINIMUM", "MUL", "PACK", "PAD", "PRELU", "QUANTIZE", "REDUCE_MAX",
    "REDUCE_MIN", "RELU", "RELU6", "RELU_N1_TO_1", "RESHAPE", "RESIZE_BILINEAR",
    "RESIZE_NEAREST_NEIGHBOR", "RSQRT", "SLICE", "SOFTMAX", "SPACE_TO_DEPTH", "SPLIT",
    "SQUARED_DIFFERENCE", "SQUEEZE", "STRIDED_SLICE", "SUB", "SUM", "TANH", "TRANSPOSE",
    "TRANSPOSE_CONV", "UNIDIRECTIONAL_SEQUENCE_LSTM",
})
_QUANTIZED_TYPES = ("int8", "uint8")
# TFLite Micro keeps its bookkeeping in the arena too: a rough allowance, stated as such.
_MCU_FIXED_OVERHEAD = 1024
_MCU_PER_ITEM_OVERHEAD = 32
_ARENA_ALIGNMENT = 16


@dataclass
class ExportResult:
    """One exported file (or folder).

    Attributes:
        format: one of :data:`FORMATS`.
        path: the file or folder written.
        size_bytes: its size on disk (a folder: the sum of its files).
        target: the hardware target preset, if one was chosen.
        seconds: how long the export took.
        model_bytes: for ``c-array``, the size of the TFLite model it holds
            (what goes into flash); else the same as ``size_bytes``.
        checks: what the target checked: ``edgetpu`` (operations and types),
            ``mcu`` (arena, RAM and flash estimate).
        notes: anything the user should know, in words.
    """

    format: str
    path: Path
    size_bytes: int
    target: str | None = None
    seconds: float = 0.0
    model_bytes: int | None = None
    checks: dict = field(default_factory=dict)
    notes: list[str] = field(default_factory=list)

    def to_json(self) -> dict:
        return {
            "format": self.format,
            "path": str(self.path),
            "size_bytes": self.size_bytes,
            "model_bytes": self.model_bytes if self.model_bytes is not None else self.size_bytes,
            "target": self.target,
            "seconds": round(self.seconds, 3),
            "checks": self.checks,
            "notes": self.notes,
        }


# --------------------------------------------------------------------------- helpers


def disk_size(path: str | Path) -> int:
    """Bytes on disk of a file, or of every file below a folder."""
    p = Path(path)
    if p.is_dir():
        return sum(f.stat().st_size for f in p.rglob("*") if f.is_file())
    return p.stat().st_size


def build_locked(project, graph_name: str | None = None):
    """``project.build()`` holding :data:`models.backend.keras_lock`.

    Building replays the graph symbolically, and Keras's symbolic tracing keeps
    global state; the editor checks edits on its own thread under that lock.
    """
    from models import backend
    from models.build import BuildError
    from models.project import ProjectError

    backend.load()
    try:
        with backend.keras_lock:
            return project.build(graph_name)
    except (BuildError, ProjectError) as exc:
        raise ExportError(str(exc)) from None


def resolve_target(target: str | None) -> Target | None:
    if target is None:
        return None
    try:
        return TARGETS[target]
    except KeyError:
        raise ExportError(f"unknown target {target!r}; use one of {', '.join(TARGETS)}") from None


def check_format(fmt: str | None, target: str | None) -> str:
    """The format to export, given an optional format and an optional target.

    Raises:
        ExportError: an unknown format or target, neither given, or a format
            that the target cannot run (the message names the ones it can).
    """
    preset = resolve_target(target)
    if fmt is None:
        if preset is None:
            raise ExportError(f"choose a format ({', '.join(FORMATS)}) or a target "
                              f"({', '.join(TARGETS)})")
        return preset.default_format
    if fmt not in FORMATS:
        raise ExportError(f"unknown format {fmt!r}; use one of {', '.join(FORMATS)}")
    if preset is not None and fmt not in preset.formats:
        raise ExportError(f"the {preset.title} target runs {' or '.join(preset.formats)}, "
                          f"not {fmt}")
    return fmt


def _silenced():
    """TensorFlow's converter and the LiteRT interpreter log to the C-level stderr."""
    from models.backend import _silenced_fd2

    return _silenced_fd2()


def _one_line(exc: BaseException, limit: int = 400) -> str:
    text = " ".join(str(exc).split()) or type(exc).__name__
    return text[:limit] + ("..." if len(text) > limit else "")


def input_signature(model, batch: int | None = None):
    """The model's input structure as ``tf.TensorSpec`` s, with the batch size fixed or free."""
    from models import backend

    keras, tf = backend.keras(), backend.tf()
    return keras.tree.map_structure(
        lambda t: tf.TensorSpec((batch,) + tuple(t.shape[1:]), t.dtype, name=t.name), model.input)


def _ensure_called(model) -> None:
    """Keras's exporters refuse a model that was never called; one call on zeros fixes that."""
    if getattr(model, "_called", True):
        return
    from models import backend

    keras = backend.keras()
    zeros = keras.tree.map_structure(
        lambda t: np.zeros((1,) + tuple(d or 1 for d in t.shape[1:]), dtype=t.dtype), model.input)
    model(zeros, training=False)


def save_saved_model(model, path: str | Path, *, batch: int | None = None) -> Path:
    """Write a SavedModel folder (``model.export``) with a serving signature.

    Args:
        model: the Keras 3 model.
        path: the folder to create (replaced if it exists).
        batch: fix the batch size in the signature (``1`` for static-shape
            targets), or leave it free.
    """
    path = Path(path)
    if path.exists() and not _is_saved_model(path) and any(path.iterdir()):
        raise ExportError(f"{path} is a folder with other files in it; choose a new folder "
                          "for the SavedModel")
    _ensure_called(model)
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(prefix=f".{path.name}.", dir=path.parent))
    try:
        with _silenced():
            model.export(str(tmp / "m"), format="tf_saved_model", verbose=False,
                         input_signature=[input_signature(model, batch)])
        if path.exists():
            shutil.rmtree(path)  # an earlier SavedModel (checked above), or an empty folder
        os.replace(tmp / "m", path)
    except Exception as exc:
        raise ExportError(f"the model cannot be saved as a SavedModel: {_one_line(exc)}") from exc
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
    return path


def _is_saved_model(path: Path) -> bool:
    return path.is_dir() and (path / "saved_model.pb").exists()


def representative_samples(dataset, n: int = REPRESENTATIVE_SAMPLES, seed: int = 0):
    """Up to ``n`` training samples, one at a time, in the structure the converter wants."""
    total = _count(dataset.x_train)
    if total == 0:
        raise ExportError("the training split is empty: full-integer quantization needs "
                          "samples to calibrate on")
    order = np.random.default_rng(seed).permutation(total)[:n]

    def gen():
        for i in order:
            sample = _take(dataset.x_train, [int(i)])
            if isinstance(sample, dict):
                yield {k: _float32(v) for k, v in sample.items()}
            elif isinstance(sample, (list, tuple)):
                yield [_float32(v) for v in sample]
            else:
                yield [_float32(sample)]

    return gen


def _float32(value) -> np.ndarray:
    """Floating inputs as float32 (what the SavedModel signature takes); token ids as they are."""
    value = np.asarray(value)
    return value.astype("float32") if np.issubdtype(value.dtype, np.floating) else value


def run_converter(converter, what: str) -> bytes:
    """``converter.convert()`` quietly; a failure becomes one :class:`ExportError` line."""
    try:
        with _silenced(), warnings.catch_warnings():
            warnings.simplefilter("ignore")
            return converter.convert()
    except Exception as exc:
        raise ExportError(f"the TFLite converter could not make the {what} model: "
                          f"{_one_line(exc)}") from exc


def tflite_bytes(model, kind: str, dataset=None, *, static_batch: bool = False,
                 representative: int = REPRESENTATIVE_SAMPLES) -> bytes:
    """Convert a Keras 3 model to TFLite.

    Args:
        model: the Keras 3 model.
        kind: ``float``, ``dynamic``, ``fp16``, ``int8`` or ``int16x8``.
        dataset: the project's data; the integer kinds calibrate on its
            training split (``representative`` samples).
        static_batch: fix the batch size to 1.
        representative: how many calibration samples to draw.

    Returns:
        The ``.tflite`` flatbuffer.
    """
    from models import backend

    tf = backend.tf()
    if kind in ("int8", "int16x8") and dataset is None:
        raise ExportError(f"{kind} quantization calibrates on data: the project has none")
    with tempfile.TemporaryDirectory(prefix="layerforge-tflite-") as tmp:
        folder = save_saved_model(model, Path(tmp) / "saved_model", batch=1 if static_batch else None)
        converter = tf.lite.TFLiteConverter.from_saved_model(str(folder))
        if kind != "float":
            converter.optimizations = [tf.lite.Optimize.DEFAULT]
        if kind == "fp16":
            converter.target_spec.supported_types = [tf.float16]
        elif kind == "int8":
            converter.representative_dataset = representative_samples(dataset, representative)
            converter.target_spec.supported_ops = [tf.lite.OpsSet.TFLITE_BUILTINS_INT8]
            converter.inference_input_type = tf.int8
            converter.inference_output_type = tf.int8
        elif kind == "int16x8":
            converter.representative_dataset = representative_samples(dataset, representative)
            converter.target_spec.supported_ops = [
                tf.lite.OpsSet.EXPERIMENTAL_TFLITE_BUILTINS_ACTIVATIONS_INT16_WEIGHTS_INT8]
        elif kind not in ("float", "dynamic"):
            raise ExportError(f"unknown TFLite kind {kind!r}")
        return run_converter(converter, kind)


# --------------------------------------------------------------------------- TFLite inspection


def interpreter(model: bytes | str | Path, *, threads: int = 1, xnnpack: bool = True):
    """A LiteRT interpreter (``ai_edge_litert``), tensors allocated.

    Args:
        model: the flatbuffer or a path to a ``.tflite`` file.
        threads: CPU threads for the kernels.
        xnnpack: use the default XNNPACK delegate; off, every operation runs
            on the built-in kernels (and shows up by name).
    """
    from ai_edge_litert.interpreter import Interpreter, OpResolverType

    kind = OpResolverType.AUTO if xnnpack else OpResolverType.BUILTIN_WITHOUT_DEFAULT_DELEGATES
    source = {"model_content": bytes(model)} if isinstance(model, (bytes, bytearray)) else \
        {"model_path": str(model)}
    with _silenced():
        it = Interpreter(num_threads=max(1, int(threads)), experimental_op_resolver_type=kind,
                         **source)
        it.allocate_tensors()
    return it


def inspect_tflite(model: bytes | str | Path) -> dict:
    """The operations and tensors of a TFLite model, as plain data.

    Returns:
        ``{"ops": [{"name", "inputs", "outputs", "input_types", "output_types"}],
        "tensors": {index: {"name", "shape", "dtype", "bytes", "constant"}},
        "inputs": [...], "outputs": [...], "static": bool}``; ``static`` is
        false when an input has a free dimension (``shape_signature`` -1).
    """
    it = interpreter(model, xnnpack=False)
    produced, consumed = set(), set()
    ops = []
    for op in it._get_ops_details():
        ins = [int(i) for i in op["inputs"] if i >= 0]
        outs = [int(i) for i in op["outputs"] if i >= 0]
        produced.update(outs)
        consumed.update(ins)
        ops.append({"name": op["op_name"], "inputs": ins, "outputs": outs})
    inputs = [int(d["index"]) for d in it.get_input_details()]
    outputs = [int(d["index"]) for d in it.get_output_details()]
    tensors = {}
    for t in it.get_tensor_details():
        index = int(t["index"])
        dtype = np.dtype(t["dtype"])
        shape = [int(s) for s in t["shape"]]
        tensors[index] = {
            "name": t["name"],
            "shape": shape,
            "dtype": dtype.name,
            "bytes": int(np.prod(shape, dtype=np.int64)) * dtype.itemsize if shape else dtype.itemsize,
            # A constant is read by some operation but neither computed nor fed in.
            "constant": index not in produced and index not in inputs,
        }
    for op in ops:
        op["input_types"] = [tensors[i]["dtype"] for i in op["inputs"] if i in tensors]
        op["output_types"] = [tensors[i]["dtype"] for i in op["outputs"] if i in tensors]
    static = all(-1 not in [int(s) for s in d["shape_signature"]] for d in it.get_input_details())
    return {"ops": ops, "tensors": tensors, "inputs": inputs, "outputs": outputs, "static": static}


def edgetpu_check(model: bytes | str | Path) -> dict:
    """Whether every operation of a TFLite model can run on the Edge TPU.

    Checks what can be checked without Coral's compiler: each operation is in
    :data:`EDGETPU_OPS`; every tensor it computes is int8/uint8 (int32 only
    for biases, which are constants); the input shapes are static. The
    compiler still decides the final mapping (it also limits tensor ranks
    and sizes); run ``edgetpu_compiler`` on the file.

    Returns:
        ``{"ok": bool, "ops": {name: count}, "problems": [text, ...]}``.
    """
    info = inspect_tflite(model)
    counts: dict[str, int] = {}
    problems: list[str] = []
    for i, op in enumerate(info["ops"]):
        name = op["name"]
        counts[name] = counts.get(name, 0) + 1
        if name not in EDGETPU_OPS:
            problems.append(f"operation {i} ({name}) is not supported by the Edge TPU; it and "
                            "every later operation would run on the CPU")
        computed = [t for t in op["outputs"] if t in info["tensors"]]
        fed = [t for t in op["inputs"] if t in info["tensors"] and not info["tensors"][t]["constant"]]
        for t in computed + fed:
            dtype = info["tensors"][t]["dtype"]
            if dtype not in _QUANTIZED_TYPES:
                problems.append(f"operation {i} ({name}) works on {dtype} tensor "
                                f"'{info['tensors'][t]['name']}', not int8")
                break
    if not info["static"]:
        problems.append("the input shapes are not static (the batch size is free); the Edge TPU "
                        "needs fixed shapes: export with the edgetpu target")
    return {"ok": not problems, "ops": counts, "problems": problems}


def _greedy_arena(buffers: list[tuple[int, int, int]]) -> int:
    """Bytes a greedy, size-first memory plan needs (TFLite Micro's GreedyMemoryPlanner).

    Args:
        buffers: ``(size, first_op, last_op)`` per tensor that lives in the arena.
    """
    placed: list[tuple[int, int, int, int]] = []  # offset, size, first, last
    high = 0
    for size, first, last in sorted(buffers, key=lambda b: -b[0]):
        size = int(math.ceil(size / _ARENA_ALIGNMENT) * _ARENA_ALIGNMENT)
        live = sorted((o, s) for o, s, f, l in placed if not (l < first or f > last))
        offset = 0
        for o, s in live:
            if offset + size <= o:
                break
            offset = max(offset, o + s)
        placed.append((offset, size, first, last))
        high = max(high, offset + size)
    return high


def mcu_estimate(model: bytes | str | Path) -> dict:
    """Tensor arena, RAM and flash a microcontroller needs for a TFLite model (an estimate).

    The arena holds every tensor that is computed or fed in (inputs,
    activations, outputs); tensors whose lifetimes do not overlap share
    memory, planned greedily largest-first as TFLite Micro does. A fixed
    allowance is added for TFLite Micro's bookkeeping (1 KB plus 32 bytes per
    tensor and operation); kernels that need scratch memory (optimized
    convolutions) can add more. Measure on the device with TFLite Micro's
    ``RecordingMicroAllocator`` to be sure.

    Returns:
        ``{"arena_bytes", "activations_bytes", "ram_bytes", "flash_bytes",
        "largest_tensor", "ops", "note"}``: flash is the model itself, to
        which the firmware adds the TFLite Micro code for the operations it
        registers.
    """
    info = inspect_tflite(model)
    n_ops = len(info["ops"])
    first: dict[int, int] = {i: 0 for i in info["inputs"]}
    last: dict[int, int] = {}
    for k, op in enumerate(info["ops"]):
        for t in op["outputs"]:
            first.setdefault(t, k)
            last[t] = max(last.get(t, k), k)
        for t in op["inputs"]:
            if t in first:
                last[t] = max(last.get(t, k), k)
    for t in info["outputs"]:
        last[t] = n_ops
    buffers = [(info["tensors"][t]["bytes"], first[t], last.get(t, first[t])) for t in first
               if t in info["tensors"]]
    activations = _greedy_arena(buffers)
    overhead = _MCU_FIXED_OVERHEAD + _MCU_PER_ITEM_OVERHEAD * (len(info["tensors"]) + n_ops)
    size = len(model) if isinstance(model, (bytes, bytearray)) else Path(model).stat().st_size
    largest = max(buffers, default=(0, 0, 0))[0]
    return {
        "arena_bytes": activations + overhead,
        "activations_bytes": activations,
        "ram_bytes": activations + overhead,
        "flash_bytes": size,
        "largest_tensor_bytes": largest,
        "ops": sorted({op["name"] for op in info["ops"]}),
        "note": ("estimate: activations planned as TFLite Micro plans them, plus an allowance "
                 "for its bookkeeping; flash is the model only (add the TFLite Micro code)"),
    }


# --------------------------------------------------------------------------- C array


def c_identifier(text: str) -> str:
    ident = "".join(c if c.isalnum() else "_" for c in text) or "model"
    return ident if not ident[0].isdigit() else "_" + ident


def c_array_source(model: bytes, name: str = "g_model",
                   header: str = "model.h") -> tuple[str, str]:
    """The TFLite model as C/C++ source: (``.cc`` text, ``.h`` text).

    The array is 16-byte aligned (TFLite Micro reads the flatbuffer in
    place) and ``const`` (it goes to flash).

    Args:
        model: the TFLite flatbuffer.
        name: the C name of the array (``<name>_len`` holds its length).
        header: the header's file name, which the source includes.
    """
    name = c_identifier(name)
    rows = []
    for start in range(0, len(model), 12):
        rows.append("  " + ", ".join(f"0x{b:02x}" for b in model[start:start + 12]) + ",")
    guard = name.upper() + "_H_"
    header_text = (
        "// A TensorFlow Lite model for TensorFlow Lite Micro, written by LayerForge.\n"
        f"#ifndef {guard}\n#define {guard}\n\n"
        f"extern const unsigned char {name}[];\n"
        f"extern const unsigned int {name}_len;\n\n"
        f"#endif  // {guard}\n"
    )
    source = (
        "// A TensorFlow Lite model for TensorFlow Lite Micro, written by LayerForge.\n"
        f"// {len(model)} bytes; load it with tflite::GetModel({name}).\n"
        f'#include "{header}"\n\n'
        f"alignas(16) const unsigned char {name}[] = {{\n" + "\n".join(rows) + "\n};\n"
        f"const unsigned int {name}_len = {len(model)};\n"
    )
    return source, header_text


# --------------------------------------------------------------------------- export


def _atomic_bytes(path: Path, data: bytes) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
    try:
        with os.fdopen(fd, "wb") as f:
            f.write(data)
        os.replace(tmp, path)
    except BaseException:
        if os.path.exists(tmp):
            os.unlink(tmp)
        raise


def default_path(out_dir: str | Path, fmt: str, stem: str = "model") -> Path:
    """Where a format goes in a folder: ``model.tflite-int8.tflite`` and the like."""
    suffix = SUFFIXES[fmt]
    if fmt in ("keras", "onnx", "c-array", "tflite"):
        return Path(out_dir) / f"{stem}{suffix}"
    if fmt == "saved-model":
        return Path(out_dir) / f"{stem}_saved_model"
    return Path(out_dir) / f"{stem}.{fmt}{suffix}"


def export_model(model, fmt: str, out: str | Path, *, dataset=None, target: str | None = None,
                 state: RunState | None = None) -> ExportResult:
    """Export a built Keras 3 model in one format.

    Args:
        model: the Keras 3 model, with its weights.
        fmt: one of :data:`FORMATS`.
        out: the file (or, for ``saved-model``, the folder) to write; a
            ``c-array`` also writes the header beside it (``.h``).
        dataset: the project's data, for the integer variants' calibration.
        target: a hardware target preset (:data:`TARGETS`); it must accept
            ``fmt``, fixes the batch size where it needs static shapes, and
            adds its checks to the result.
        state: where progress goes and where cancellation is noticed.

    Returns:
        An :class:`ExportResult`.

    Raises:
        ExportError: the format does not apply or the conversion failed.
    """
    fmt = check_format(fmt, target)
    preset = resolve_target(target)
    out = Path(out)
    if fmt == "saved-model" and out.exists() and not out.is_dir():
        raise ExportError(f"{out} is a file; a SavedModel is a folder")
    if fmt == "saved-model" and out.is_dir() and not _is_saved_model(out) and any(out.iterdir()):
        out = default_path(out, fmt)  # a folder of other files: the SavedModel goes inside
    if fmt != "saved-model" and (out.is_dir() or not out.suffix):
        out = default_path(out, fmt)  # a folder: the file gets the format's usual name
    state = state or RunState()
    state.checkpoint()
    state.progress(state.fraction, f"exporting {fmt}")
    t0 = time.perf_counter()
    notes: list[str] = []
    model_bytes = None
    data = None  # the TFLite flatbuffer, for the TFLite formats
    if fmt == "keras":
        from models.build import save_model_file

        save_model_file(model, out)
    elif fmt == "saved-model":
        save_saved_model(model, out)
    elif fmt == "onnx":
        export_onnx(model, out)
    else:
        data = tflite_bytes(model, TFLITE_KINDS[fmt], dataset,
                            static_batch=bool(preset and preset.static_batch))
        model_bytes = len(data)
        if fmt == "c-array":
            if out.suffix.lower() not in (".cc", ".cpp", ".c", ".cxx"):
                out = out.with_suffix(".cc")
            source, header = c_array_source(data, "g_" + c_identifier(out.stem),
                                            out.with_suffix(".h").name)
            _atomic_bytes(out.with_suffix(".h"), header.encode())
            _atomic_bytes(out, source.encode())
            notes.append(f"the header is {out.with_suffix('.h').name}; the array holds "
                         f"{len(data):,} bytes of TFLite model")
        else:
            _atomic_bytes(out, data)
    checks: dict[str, Any] = {}
    if preset is not None and preset.name == "edgetpu":
        checks["edgetpu"] = edgetpu_check(data)
    if preset is not None and preset.name == "mcu":
        checks["mcu"] = mcu_estimate(data)
    if preset is not None and preset.name == "cpu":
        notes.append("the LiteRT interpreter runs float and int8 models through XNNPACK")
    return ExportResult(format=fmt, path=out, size_bytes=disk_size(out), target=target,
                        seconds=time.perf_counter() - t0, model_bytes=model_bytes,
                        checks=checks, notes=notes)


def export_onnx(model, out: str | Path) -> Path:
    """ONNX through Keras 3's exporter (tf2onnx underneath).

    Raises:
        ExportError: tf2onnx is missing or cannot convert the model; the
            message carries its words.
    """
    out = Path(out)
    out.parent.mkdir(parents=True, exist_ok=True)
    try:
        import tf2onnx  # noqa: F401
    except ImportError as exc:
        raise ExportError(f"ONNX export needs tf2onnx ({exc}); install tf2onnx>=1.17") from None
    _ensure_called(model)
    fd, tmp = tempfile.mkstemp(prefix=f".{out.stem}.", suffix=".onnx", dir=out.parent)
    os.close(fd)
    try:
        with _silenced(), warnings.catch_warnings():
            # tf2onnx and Keras's numpy-2 patch for it warn about numpy aliases.
            warnings.simplefilter("ignore")
            model.export(tmp, format="onnx", verbose=False)
        os.replace(tmp, out)
    except ExportError:
        raise
    except Exception as exc:
        raise ExportError(f"ONNX export failed: {_one_line(exc)}") from exc
    finally:
        if os.path.exists(tmp):
            os.unlink(tmp)
    return out


def export_project(project, fmt: str | None, out: str | Path, *, target: str | None = None,
                   state: RunState | None = None, dataset=None,
                   on_model: Callable[[Any], None] | None = None) -> ExportResult:
    """Export a project's main model (with its trained weights).

    Args:
        project: a :class:`models.project.Project`.
        fmt: the format, or ``None`` for the target's default.
        out: file or folder to write.
        target: a hardware target preset.
        state: progress and cancellation.
        dataset: the project's data, loaded if an integer variant needs it.
        on_model: called with the built model (tests and callers reuse it).
    """
    fmt = check_format(fmt, target)
    if not project.has_weights():
        raise ExportError("the model has no trained weights yet: train it first (an export of "
                          "random weights would predict nothing)")
    model = build_locked(project)
    if on_model is not None:
        on_model(model)
    if dataset is None and TFLITE_KINDS.get(fmt) in ("int8", "int16x8") \
            or dataset is None and target == "mcu":
        from models.training import load_project_data

        dataset = load_project_data(project)
    return export_model(model, fmt, out, dataset=dataset, target=target, state=state)


__all__ = [
    "ExportError", "ExportResult", "FORMATS", "TARGETS", "Target", "build_locked", "c_array_source",
    "check_format", "disk_size", "edgetpu_check", "export_model", "export_onnx",
    "export_project", "inspect_tflite", "interpreter", "mcu_estimate", "tflite_bytes",
]
