"""One deployment run: compress, export, measure; what the deploy panel and ``bench`` run.

:func:`run_deploy` takes a :class:`DeployPlan` (which compression steps,
which export formats, which hardware target, how many threads, whether to
measure XLA) and does it all through one :class:`~models.runner.RunState`:

1. the float Keras model is the reference row (saved as ``model.keras``);
2. TFMOT compression (:func:`models.compress.compress`) gives a compressed
   Keras model (``compressed.keras``) and, after QAT, an int8 TFLite file;
3. Keras 3's own quantization (:func:`models.compress.keras_quantize`) gives a
   ``.keras`` file;
4. every export format is written from the compressed model when there is
   one, else from the float model; a target adds its checks;
5. every variant is scored and timed (:func:`models.bench.benchmark`), each
   row handed over as a ``"row"`` event as soon as it is measured;
6. optionally, XLA off and on (:func:`models.bench.measure_xla`).

All files go into one folder, so the user finds them side by side.
"""
from __future__ import annotations

import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from models.runner import RunState

BENCH_FORMATS = ("keras", "saved-model", "tflite", "tflite-dynamic", "tflite-fp16",
                 "tflite-int8", "tflite-int16x8", "onnx")


@dataclass
class DeployPlan:
    """What a deployment run does.

    Attributes:
        compress: TFMOT compression options, or ``None``.
        keras_quantize: ``int8``, ``int4`` or ``float8`` for Keras 3's own
            quantization, or ``None``.
        formats: export formats (:data:`models.export.FORMATS`).
        target: a hardware target preset (:data:`models.export.TARGETS`).
        threads: interpreter threads for the latency measures.
        xnnpack: run TFLite through the XNNPACK delegate.
        xla: also measure training and inference with XLA off and on.
        xla_epochs: epochs per XLA training measure (the first compiles).
    """

    compress: Any = None
    keras_quantize: str | None = None
    formats: tuple[str, ...] = ("tflite", "tflite-int8")
    target: str | None = None
    threads: int = 1
    xnnpack: bool = True
    xla: bool = False
    xla_epochs: int = 3

    def check(self) -> None:
        from models.compress import KERAS_QUANTIZE_MODES, CompressError
        from models.export import FORMATS, ExportError, resolve_target

        if self.compress is not None:
            self.compress.check()
        if self.keras_quantize is not None and self.keras_quantize not in KERAS_QUANTIZE_MODES:
            raise CompressError(f"unknown Keras quantization mode {self.keras_quantize!r}; use "
                                f"{', '.join(KERAS_QUANTIZE_MODES)}")
        unknown = [f for f in self.formats if f not in FORMATS]
        if unknown:
            raise ExportError(f"unknown format(s) {', '.join(unknown)}; use {', '.join(FORMATS)}")
        resolve_target(self.target)
        if self.threads < 1:
            raise ExportError("threads must be 1 or more")


@dataclass
class DeployReport:
    """What a run made and measured.

    Attributes:
        rows: one :class:`models.bench.BenchRow` per variant, float Keras first.
        exports: the :class:`models.export.ExportResult` of each format.
        compression: the :class:`models.compress.CompressResult`, if any.
        keras_quantize: what :func:`models.compress.keras_quantize` returned (no model).
        xla: what :func:`models.bench.measure_xla` returned, if measured.
        out_dir: the folder holding every file.
        notes: what the user should know.
    """

    rows: list = field(default_factory=list)
    exports: list = field(default_factory=list)
    compression: Any = None
    keras_quantize: dict | None = None
    xla: dict | None = None
    out_dir: Path | None = None
    notes: list[str] = field(default_factory=list)
    seconds: float = 0.0

    def to_json(self) -> dict:
        return {
            "rows": [r.to_json() for r in self.rows],
            "exports": [e.to_json() for e in self.exports],
            "compression": self.compression.to_json() if self.compression else None,
            "keras_quantize": self.keras_quantize,
            "xla": self.xla,
            "out_dir": str(self.out_dir) if self.out_dir else None,
            "notes": self.notes,
            "seconds": round(self.seconds, 3),
        }


def _stage(state: RunState, lo: float, hi: float) -> RunState:
    """A view of ``state`` whose progress 0..1 maps to ``lo..hi`` of the whole run."""

    class _Scaled:
        def progress(self, fraction, message=None):
            state.progress(lo + (hi - lo) * max(0.0, min(1.0, fraction)), message)

        def __getattr__(self, name):
            return getattr(state, name)

    return _Scaled()  # type: ignore[return-value]


def run_deploy(project, plan: DeployPlan, out_dir: str | Path, *,
               state: RunState | None = None, dataset=None) -> DeployReport:
    """Compress, export and measure a project's trained model (see the module docstring).

    Args:
        project: a project with trained weights.
        plan: what to do.
        out_dir: the folder for every file (created).
        state: progress (0..1 over the whole run), ``"row"`` events,
            cancellation.
        dataset: the project's data (loaded if not given).

    Returns:
        A :class:`DeployReport`.

    Raises:
        models.compress.CompressError, models.export.ExportError: a step
            that cannot be done, with the reason.
    """
    from models.bench import Variant, benchmark, keras_predict, measure_xla
    from models.build import save_model_file
    from models.compress import compress, keras_quantize
    from models.export import (
        TARGETS,
        ExportError,
        build_locked,
        default_path,
        disk_size,
        export_model,
    )
    from models.training import load_project_data

    plan.check()
    state = state or RunState()
    t0 = time.perf_counter()
    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    if not project.has_weights():
        raise ExportError("the model has no trained weights yet: train it first")
    state.progress(0.0, "loading the model and its data")
    base = build_locked(project)
    if dataset is None:
        dataset = load_project_data(project)
    input_names = [t.name for t in base.inputs]
    report = DeployReport(out_dir=out_dir)
    save_model_file(base, out_dir / "model.keras")
    variants = [Variant("keras (float)", "keras", out_dir / "model.keras",
                        disk_size(out_dir / "model.keras"), model=base, input_names=input_names)]
    reference = keras_predict(base, dataset.x_test)
    source, stem = base, "model"
    if plan.compress is not None:
        result = compress(project, plan.compress, state=_stage(state, 0.02, 0.5), dataset=dataset)
        report.compression = result
        label = "+".join(result.steps)
        path = out_dir / "compressed.keras"
        save_model_file(result.model, path)
        notes = [f"weights gzipped: {result.size_bytes_after:,} bytes against "
                 f"{result.size_bytes_before:,} for the float model (zeros and shared values "
                 "take room on disk until the file is compressed)"]
        if result.skipped:
            notes.append(f"{len(result.skipped)} layer(s) left as they were")
        variants.append(Variant(f"keras ({label})", "keras", path, disk_size(path),
                                model=result.model, input_names=input_names, notes=notes))
        if result.qat_tflite is not None:
            qat_path = out_dir / "compressed.qat-int8.tflite"
            qat_path.write_bytes(result.qat_tflite)
            variants.append(Variant("tflite (QAT int8)", "tflite-int8", qat_path,
                                    len(result.qat_tflite), input_names=input_names,
                                    notes=["converted from the quantization-aware model"]))
        source, stem = result.model, "compressed"
    if plan.keras_quantize is not None:
        state.checkpoint()
        mode = plan.keras_quantize
        done = keras_quantize(project, mode, out_dir / f"model.keras-{mode}.keras",
                              state=_stage(state, 0.5, 0.55), dataset=dataset)
        model = done.pop("model")
        report.keras_quantize = done
        variants.append(Variant(f"keras ({mode}, Keras quantize)", "keras", Path(done["path"]),
                                done["size_bytes"], model=model, input_names=input_names,
                                notes=[f"{len(done['left_float'])} weighted layer(s) stay float"]))
    preset = TARGETS.get(plan.target) if plan.target else None
    # The float and the compressed Keras models are rows already (model.keras, compressed.keras).
    formats = [f for f in plan.formats if f != "keras"]
    for i, fmt in enumerate(formats):
        state.checkpoint()
        state.progress(0.55 + 0.2 * i / max(1, len(formats)), f"exporting {fmt}")
        target = plan.target if preset is not None and fmt in preset.formats else None
        path = default_path(out_dir, fmt, stem)
        try:
            exported = export_model(source, fmt, path, dataset=dataset, target=target, state=state)
        except ExportError as exc:
            report.notes.append(f"{fmt}: {exc}")
            continue
        report.exports.append(exported)
        notes = list(exported.notes)
        size = exported.size_bytes
        if fmt == "c-array":
            # What the device stores is the array, not the source text that spells it out.
            size = exported.model_bytes
            notes.append(f"size is the array (flash); the source file is "
                         f"{exported.size_bytes:,} bytes of text")
        variants.append(Variant(fmt if stem == "model" else f"{fmt} ({stem})", fmt,
                                exported.path, size, input_names=input_names, notes=notes))
    bench_state = _stage(state, 0.75, 0.9 if plan.xla else 1.0)
    report.rows = benchmark(variants, dataset, threads=plan.threads, xnnpack=plan.xnnpack,
                            reference=reference, state=bench_state)
    if plan.xla:
        report.xla = measure_xla(project, dataset, epochs=plan.xla_epochs,
                                 state=_stage(state, 0.9, 1.0))
    report.seconds = time.perf_counter() - t0
    state.progress(1.0, "done")
    return report


__all__ = ["BENCH_FORMATS", "DeployPlan", "DeployReport", "run_deploy"]
