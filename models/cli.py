"""The ``layerforge`` command: everything the app does, headless.

Only the standard library is imported at module level, so ``layerforge
--version`` and ``--help`` answer at once; each command imports what it needs.
Every ``--json`` prints one JSON object on the last line of stdout. Errors
print one clear line to stderr and exit 1 (2 for a usage error), never a
traceback; ``LAYERFORGE_DEBUG=1`` shows the traceback for bug reports.
"""
from __future__ import annotations

import argparse
import json
import os
import sys
from pathlib import Path

from models import __version__


class CommandError(Exception):
    """A failure to report to the user in one line (exit code 1)."""


def _print_json(obj) -> None:
    print(json.dumps(obj, default=_json_default))


def _json_default(obj):
    import numpy as np

    if isinstance(obj, np.ndarray):
        return obj.tolist()
    if isinstance(obj, np.generic):
        return obj.item()
    if isinstance(obj, (set, tuple)):
        return list(obj)
    if isinstance(obj, Path):
        return str(obj)
    raise TypeError(type(obj).__name__)


# ----------------------------------------------------------------------- loading


def load_any(path: str):
    """Load a project from ``.lforge``, ``.keras``, ``.h5`` or Keras JSON, or ``gallery:SLUG``.

    Returns:
        A :class:`models.project.Project`; imported Keras files carry their
        weights in memory.
    """
    from models.project import Project, ProjectError

    if path.startswith("gallery:"):
        from models import gallery

        return gallery.open_template(path.split(":", 1)[1])
    p = Path(path)
    suffix = p.suffix.lower()
    if suffix == ".lforge":
        try:
            return Project.load(p)
        except ProjectError as exc:
            raise CommandError(str(exc)) from None
    from models.build import (MODEL_SUFFIXES, ImportModelError, load_model_file,
                              read_keras_archive, recipe_from_compile_config)

    if suffix in MODEL_SUFFIXES:
        from models.layout import layered_layout
        from models.project import new_project

        try:
            if suffix == ".keras":
                # Straight from the archive: no TensorFlow needed to see the graph;
                # the weights load from the same file when a model is built.
                graph, compile_config = read_keras_archive(p)
                weights = p.resolve()
            else:
                graph, model = load_model_file(p)
                compile_config = None
                weights = model.get_weights() if suffix != ".json" else None
        except ImportModelError as exc:
            raise CommandError(str(exc)) from None
        project = new_project(graph)
        project.recipe.update(recipe_from_compile_config(compile_config))
        project.meta["imported_from"] = str(p)
        project.positions().update({k: list(v) for k, v in layered_layout(graph).items()})
        if weights is not None:
            project.weights[project.main_name] = weights
        return project
    if not p.exists():
        raise CommandError(f"{path}: no such file")
    raise CommandError(
        f"{path}: unknown file type {suffix or '(none)'}; use .lforge, .keras, .h5 or .json"
    )


# ----------------------------------------------------------------------- commands


def cmd_check(args) -> int:
    from models.validate import describe_errors, validate

    project = load_any(args.file)
    report = validate(project.graph)
    if args.json:
        _print_json(report.to_json())
    else:
        width = max([len(n) for n in report.nodes] + [4])
        print(f"{'name':<{width}}  {'type':<22} {'output shape':<24} {'params':>10}")
        for info in report.nodes.values():
            shape = info.output_shape
            shape_text = "?" if shape is None else str(shape).replace("None", "None")
            params = "" if info.params is None else f"{info.params:,}"
            print(f"{info.name:<{width}}  {info.class_name:<22} {shape_text:<24} {params:>10}")
        print(f"total parameters: {report.params:,}")
        if report.valid:
            print("the model is valid")
        else:
            print("problems:\n" + describe_errors(report))
    return 0 if report.valid else 1


def cmd_convert(args) -> int:
    src, dst = args.input, Path(args.output)
    project = load_any(src)
    suffix = dst.suffix.lower()
    if suffix == ".lforge":
        from models.layout import layered_layout

        if not project.positions():
            project.positions().update({k: list(v) for k, v in layered_layout(project.graph).items()})
        models = {}
        if project.has_weights():
            models[project.main_name] = _built(project)
        project.save(dst, models=models)
    elif suffix == ".py":
        from models.codegen import generate_code

        _write_text_atomic(dst, generate_code(project.graph))
    elif suffix in (".keras", ".h5", ".hdf5", ".json"):
        from models.build import save_model_file

        save_model_file(_built(project), dst)
    else:
        raise CommandError(
            f"{dst}: unknown output type {suffix or '(none)'}; use .lforge, .keras, .h5, .json or .py"
        )
    if args.json:
        _print_json({"input": src, "output": str(dst)})
    else:
        print(f"wrote {dst}")
    return 0


def _built(project):
    from models.build import BuildError
    from models.project import ProjectError

    try:
        return project.build()
    except (BuildError, ProjectError) as exc:
        raise CommandError(str(exc)) from None


def _write_text_atomic(path: Path, text: str) -> None:
    from models.project import _atomic_write_text

    path.parent.mkdir(parents=True, exist_ok=True)
    _atomic_write_text(path, text)


def _read_input(spec: str):
    import numpy as np

    p = Path(spec)
    if spec.endswith(".npy") and p.exists():
        return np.load(p, allow_pickle=False)
    if spec.endswith(".npz") and p.exists():
        with np.load(p, allow_pickle=False) as data:
            return {k: data[k] for k in data.files}
    if spec.endswith(".csv") and p.exists():
        return _read_csv_numbers(p)
    if p.suffix in (".npy", ".npz", ".csv"):
        raise CommandError(f"{spec}: no such file")
    try:
        return json.loads(spec)
    except json.JSONDecodeError as exc:
        raise CommandError(
            f"--input is neither a file (.npy, .npz, .csv) nor valid JSON: {exc.msg} at "
            f"column {exc.colno}"
        ) from None


def _read_csv_numbers(path: Path):
    import csv

    import numpy as np

    rows = []
    with open(path, newline="", encoding="utf-8") as f:
        for line_no, row in enumerate(csv.reader(f), start=1):
            if not row or all(not c.strip() for c in row):
                continue
            try:
                rows.append([float(c) for c in row])
            except ValueError:
                if line_no == 1 and not rows:
                    continue  # a header row
                bad = next(c for c in row if not _is_float(c))
                raise CommandError(f"{path}: row {line_no} has a non-numeric value {bad!r}") from None
    if not rows:
        raise CommandError(f"{path}: no numeric rows")
    return np.asarray(rows, dtype="float32")


def _is_float(text: str) -> bool:
    try:
        float(text)
        return True
    except ValueError:
        return False


def cmd_predict(args) -> int:
    import numpy as np

    from models.build import numpy_inputs

    project = load_any(args.file)
    model = _built(project)
    raw = _read_input(args.input)
    try:
        x = numpy_inputs(model, raw)
        outputs = model(x, training=False)
    except CommandError:
        raise
    except Exception as exc:
        shapes = [tuple(t.shape) for t in model.inputs]
        raise CommandError(f"the input does not fit the model (it expects {shapes}): "
                           f"{' '.join(str(exc).split())[:300]}") from None
    result = {"outputs": _to_lists(outputs)}
    if args.trace:
        result["trace"] = trace_model(model, x)
    if args.json:
        _print_json(result)
    else:
        if args.trace:
            for step in result["trace"]:
                print(f"{step['layer']} ({step['type']}) -> shape {step['shape']}")
                print("  " + np.array2string(np.asarray(step["output"]), precision=4,
                                             suppress_small=True).replace("\n", "\n  "))
        print("outputs:")
        print(np.array2string(np.asarray(result["outputs"], dtype=object)
                              if isinstance(result["outputs"], dict) else
                              np.asarray(result["outputs"]), precision=6))
    return 0


def _to_lists(outputs):
    import numpy as np

    if isinstance(outputs, dict):
        return {k: np.asarray(v).tolist() for k, v in outputs.items()}
    if isinstance(outputs, (list, tuple)):
        return [np.asarray(v).tolist() for v in outputs]
    return np.asarray(outputs).tolist()


def trace_model(model, x) -> list[dict]:
    """Every layer call's output for input ``x``, in the order the model computes them."""
    from models import backend

    keras = backend.keras()
    steps, tensors = [], []
    for layer in model.layers:
        for node_index, node in enumerate(getattr(layer, "_inbound_nodes", [])):
            outs = keras.tree.flatten(node.output_tensors)
            for i, t in enumerate(outs):
                label = layer.name if len(layer._inbound_nodes) == 1 else f"{layer.name}[{node_index}]"
                if len(outs) > 1:
                    label += f":{i}"
                steps.append({"layer": label, "type": type(layer).__name__})
                tensors.append(t)
    probe = keras.Model(model.input, tensors)  # keeps the inputs' structure (single, list, dict)
    values = probe(x, training=False)
    for step, v in zip(steps, values):
        arr = keras.ops.convert_to_numpy(v)
        step["shape"] = list(arr.shape)
        step["output"] = arr.tolist()
    return steps


def _parse_data_spec(text: str, target: str | None):
    if text.startswith("builtin:") or text.startswith("keras:"):
        kind, name = text.split(":", 1)
        return {"source": "builtin" if kind == "builtin" else "keras", "name": name}
    p = Path(text)
    if not p.exists():
        raise CommandError(f"--data {text}: no such file or folder (or use builtin:NAME)")
    if p.is_dir():
        return {"source": "images", "path": str(p.resolve())}
    suffix = p.suffix.lower()
    if suffix == ".csv":
        spec = {"source": "csv", "path": str(p.resolve())}
        if target:
            spec["target"] = target
        return spec
    if suffix == ".npz":
        return {"source": "npz", "path": str(p.resolve())}
    raise CommandError(f"--data {text}: use a .csv, a .npz, an image folder or builtin:NAME")


class _Progress:
    """A one-line progress bar on a terminal; plain epoch lines otherwise."""

    def __init__(self, state, stream, quiet: bool):
        self.state, self.stream, self.quiet = state, stream, quiet
        self.tty = hasattr(stream, "isatty") and stream.isatty()
        self.last_epoch_line = None

    def update(self):
        for ev in self.state.drain():
            if ev.kind == "epoch" and not self.quiet:
                logs = ev.payload["logs"]
                shown = "  ".join(f"{k} {v:.4f}" for k, v in logs.items()
                                  if k in ("loss", "accuracy", "val_loss", "val_accuracy"))
                line = f"epoch {ev.payload['epoch']}: {shown}"
                if self.tty:
                    self.stream.write("\r\033[K")
                self.stream.write(line + "\n")
        if self.tty and not self.quiet:
            width = 30
            filled = int(self.state.fraction * width)
            eta = self.state.eta()
            eta_text = f" {eta:4.0f}s left" if eta is not None else ""
            self.stream.write(f"\r[{'#' * filled}{'.' * (width - filled)}] "
                              f"{self.state.fraction * 100:5.1f}% {self.state.message}{eta_text}\033[K")
        self.stream.flush()

    def close(self):
        self.update()
        if self.tty and not self.quiet:
            self.stream.write("\r\033[K")
            self.stream.flush()


def cmd_train(args) -> int:

    from models.training import train

    project = load_any(args.file)
    if args.resume and not Path(args.resume).is_file():
        raise CommandError(f"--resume {args.resume}: no such checkpoint file")
    notes = []
    if args.data:
        from models.adapt import adapt_to_data
        from models.data import DataError
        from models.training import effective_recipe, load_project_data

        project.dataset = _parse_data_spec(args.data, args.target)
        try:
            # The recipe's split fractions and sample limit apply to other data too.
            dataset = load_project_data(project, effective_recipe(project.recipe, quick=args.quick))
        except DataError as exc:
            raise CommandError(str(exc)) from None
        notes = adapt_to_data(project, dataset)
        for n in notes:
            print(f"adapted: {n}", file=sys.stderr)
    else:
        dataset = None
        if project.dataset is None:
            raise CommandError("the project has no data; give --data builtin:NAME or a file")
    job = lambda st: train(project, state=st, dataset=dataset, quick=args.quick,  # noqa: E731
                           epochs=args.epochs, batch_size=args.batch_size,
                           xla=True if args.xla else None, out_dir=args.out,
                           distribute=args.distribute, initial_weights=args.resume)
    state = _watch(job, stream=sys.stderr if args.json else sys.stdout,
                   stopping="stopping: keeping the best weights so far...")
    if state.error:
        raise CommandError(state.error)
    result = state.result
    if result is None:
        raise CommandError("training was cancelled before it started")
    result.notes = notes + [n for n in result.notes if n not in notes]
    if args.out:
        out = Path(args.out)
        out.mkdir(parents=True, exist_ok=True)
        if result.project is not None:  # a search: the best trial's project, with its weights
            result.project.save(out / "project.lforge")
        else:
            models = {project.main_name: result.model}
            for name, model in (result.models or {}).items():
                models.setdefault(name, model)
            project.save(out / "project.lforge", models=models)
    payload = result.to_json()
    if args.json:
        _print_json(payload)
    else:
        if result.message:
            print(result.message)
        for k in sorted(result.metrics):
            print(f"{k}: {result.metrics[k]:.4f}")
        if result.quality:
            print(f"quality ({result.quality['metric']}): {result.quality['value']:.4f}")
        print(f"{result.epochs_run} epochs in {result.seconds:.1f} s "
              f"({result.samples_per_second:.0f} samples/s)")
        if args.out:
            print(f"wrote {Path(args.out) / 'project.lforge'}")
    return 0 if result.stopped != "nan" else 1


def _watch(job, *, stream, quiet: bool = False, stopping: str | None = None):
    """Run ``job(state)`` on a thread with a progress bar on ``stream``; returns its RunState.

    Ctrl+C cancels the job. With ``stopping``, that message is shown and the job's
    own ending is awaited (training keeps its best weights); without, the
    interrupt goes on up once the job has stopped.
    """
    from models.runner import RunState, run_in_thread

    state = RunState()
    _, thread = run_in_thread(job, state)
    bar = _Progress(state, stream, quiet=quiet)
    try:
        while thread.is_alive():
            thread.join(0.25)
            bar.update()
    except KeyboardInterrupt:
        state.cancel()
        if stopping is None:
            thread.join()
            raise
        print("\n" + stopping, file=sys.stderr)
        thread.join()
    bar.close()
    return state


def _short_value(v) -> str:
    return f"{v:.4g}" if isinstance(v, float) else json.dumps(v) if isinstance(v, list) else str(v)


def _trial_line(t: dict) -> str:
    params = ", ".join(f"{k}={_short_value(v)}" for k, v in t["params"].items())
    if t["status"] != "ok":
        return f"trial {t['number']}: {params} -> failed: {t['message']}"
    return f"trial {t['number']}: {params} -> {t['score']:.4f} ({t['seconds']:.1f} s)"


def cmd_search(args) -> int:
    from models import search

    project = load_any(args.file)
    problems = search.problems(project)
    if problems:
        raise CommandError(f"{args.file}: " + "; ".join(problems))
    if project.dataset is None:
        raise CommandError(f"{args.file}: the project has no data to search on")
    if args.trials is not None and args.trials < 1:
        raise CommandError("--trials must be at least 1")
    stream = sys.stderr if args.json else sys.stdout
    tty = hasattr(stream, "isatty") and stream.isatty()

    def show_trial(ev):  # from the search's thread, as each trial ends
        if ev.kind == "trial":
            stream.write(("\r\033[K" if tty else "") + _trial_line(ev.payload) + "\n")

    def job(st):
        st.subscribe(show_trial)
        return search.run_search(project, state=st, algorithm=args.algorithm, trials=args.trials,
                                 quick=args.quick, out_dir=args.out)

    state = _watch(job, stream=stream, stopping="stopping: keeping the trials finished so far...")
    if state.error:
        raise CommandError(state.error)
    found = state.result
    if found is None:
        raise CommandError("the search was cancelled before it started")
    payload = found.to_json()
    if args.out and found.best_project is not None:
        path = found.best_project.save(Path(args.out) / "best.lforge")
        payload["best_project"] = str(path)
    if args.json:
        _print_json(payload)
    else:
        print(found.message)
        best = found.best_trial
        if best is not None:
            for k, v in best.params.items():
                print(f"  {k} = {_short_value(v)}")
        if payload.get("best_project"):
            print(f"wrote {payload['best_project']}")
        print(f"{len(found.trials)} trials in {found.seconds:.1f} s")
    return 0 if found.best is not None else 1


def cmd_gallery(args) -> int:
    from models import gallery

    if args.gallery_cmd == "list":
        items = gallery.list_templates()
        if args.json:
            _print_json({"templates": items})
        else:
            for t in items:
                print(f"{t['slug']:<20} {t['section']:<8} {t['title']}")
        return 0
    if args.gallery_cmd == "new":
        try:
            out = gallery.new_from_template(args.slug, args.output)
        except gallery.GalleryError as exc:
            raise CommandError(str(exc)) from None
        if args.json:
            _print_json({"slug": args.slug, "path": str(out)})
        else:
            print(f"created {out} from template {args.slug}")
        return 0
    raise CommandError("use: layerforge gallery list | new SLUG OUT.lforge")


#: The explanation methods (models.explain.METHODS; a test keeps the two the same), named
#: here so that building the parser imports nothing.
EXPLAIN_METHODS = ("shap", "deep-shap", "kernel-shap", "partition-shap", "lime", "gradcam",
                   "saliency", "integrated-gradients", "attention")


def cmd_explain(args) -> int:
    from models.data import DataError
    from models.training import TrainingError, load_project_data

    project = load_any(args.file)
    if args.data:
        project.dataset = _parse_data_spec(args.data, None)
    if project.dataset is None:
        raise CommandError("the project has no data to explain; give --data builtin:NAME or a "
                           "file, or choose it in the app's Data dock")
    if args.sample < 0 or args.samples < 1:
        raise CommandError("--sample is 0 or more and --samples 1 or more")
    options = {}
    for item in args.option or []:
        key, sep, value = item.partition("=")
        if not sep or not key:
            raise CommandError(f"--option {item!r}: write it as KEY=VALUE (e.g. steps=64)")
        options[key.strip()] = value.strip()
    if args.target_class is not None:
        options["target"] = args.target_class
    stream = sys.stderr if args.json else sys.stdout
    try:
        dataset = load_project_data(project)
    except (DataError, TrainingError) as exc:
        raise CommandError(str(exc)) from None
    if project.has_weights():
        model = _built(project)
    elif args.train_quick:
        model = _train_quick(project, dataset, stream)
    else:
        raise CommandError(
            "the project has no trained weights, and an untrained model's explanation is noise; "
            f"train it first (layerforge train {args.file} --out DIR, then explain "
            "DIR/project.lforge), or add --train-quick to train it now with its quick preset "
            "(the weights are not saved)")
    from models.explain import explain

    samples = list(range(args.sample, args.sample + args.samples))
    state = _watch(lambda st: explain(model, dataset, args.method, samples, options, st),
                   stream=stream)
    if state.error:
        raise CommandError(state.error)
    result = state.result
    if args.out:
        from models.explain.render import save_png

        save_png(result, args.out)
    if args.csv:
        result.to_csv(args.csv)
    if args.json:
        _print_json(result.to_json())
        return 0
    _print_explanation(result)
    for path in (args.out, args.csv):
        if path:
            print(f"wrote {path}")
    return 0


def _train_quick(project, dataset, stream):
    from models.training import train

    print("the project has no trained weights: training it with its quick preset first "
          "(not saved)", file=sys.stderr)
    state = _watch(lambda st: train(project, state=st, dataset=dataset, quick=True),
                   stream=stream, quiet=True)
    if state.error or state.result is None:
        raise CommandError(f"quick training failed: {state.error or 'cancelled'}")
    return state.result.model


def _print_explanation(e) -> None:
    import numpy as np

    print(f"{e.title} of {len(e.samples)} {e.split} sample(s) in {e.seconds:.1f} s "
          f"({e.cached} from the cache)")
    print(f"  route: {e.route}")
    for s in e.samples:
        head = f"sample {s.index}"
        if e.method != "attention":
            head += f": explains {e.target_names[s.target]} (output {s.prediction[s.target]:.3f})"
        print(head)
        for att in s.attention or []:
            for h, m in enumerate(np.asarray(att["scores"])):
                looks = " ".join(att["key_labels"][k] for k in m.argmax(-1))
                print(f"  {att['layer']} head {h}: each query's strongest key: {looks}")
        for info, a in zip(e.inputs, s.attributions):
            if a is None:
                continue
            flat = np.asarray(a, dtype=np.float64).reshape(-1)
            names = info.feature_names if info.feature_names and len(info.feature_names) == flat.size \
                else None
            top = np.argsort(-np.abs(flat))[:5]
            where = [names[j] if names else
                     "(" + ",".join(str(int(v)) for v in np.unravel_index(j, np.asarray(a).shape)) + ")"
                     for j in top]
            print(f"  {info.name}: strongest " + ", ".join(f"{w} {flat[j]:+.3g}" for w, j in zip(where, top)))
    ranking = e.feature_importance()
    if ranking and len(e.samples) > 1:
        print("feature ranking (mean |attribution|): "
              + ", ".join(f"{k} {v:.3g}" for k, v in ranking[:10]))
    for note in e.notes:
        print(f"note: {note}")


# ----------------------------------------------------------------------- deploy


def _run_job(job, *, json_mode: bool):
    """Run ``job(state)`` on a thread with a progress bar; Ctrl-C cancels. Returns the result."""
    from models.runner import Cancelled

    expected = _deploy_errors()

    def guarded(state):
        try:
            return job(state)
        except (Cancelled, CommandError):
            raise
        except expected as exc:
            raise CommandError(str(exc)) from None
        except Exception as exc:
            if os.environ.get("LAYERFORGE_DEBUG") == "1":
                import traceback

                traceback.print_exc()
            raise CommandError(f"unexpected error: {type(exc).__name__}: {exc} "
                               "(set LAYERFORGE_DEBUG=1 for details)") from None

    state = _watch(guarded, stream=sys.stderr if json_mode else sys.stdout, stopping="stopping...")
    if state.error:
        raise CommandError(state.error)
    if state.status == "cancelled":
        raise CommandError("cancelled; nothing was written")
    return state.result


def _deploy_errors():
    from models.bench import BenchError
    from models.compress import CompressError
    from models.data import DataError
    from models.export import ExportError
    from models.training import TrainingError

    return (BenchError, CompressError, DataError, ExportError, TrainingError)


def _kb(n) -> str:
    return "?" if n is None else f"{n / 1024:,.1f} KB"


def cmd_compress(args) -> int:
    from models.compress import CompressOptions, compress, keras_quantize

    out = Path(args.out)
    project = load_any(args.file)
    if args.keras_quantize:
        if args.prune is not None or args.cluster is not None or args.qat or args.structured:
            raise CommandError("--keras-quantize is a path of its own: leave out --prune, "
                               "--cluster and --qat")
        if out.suffix.lower() != ".keras":
            raise CommandError(f"--out {out}: Keras quantization writes a .keras file")

        def job(state):
            return keras_quantize(project, args.keras_quantize, out, state=state)

        result = _run_job(job, json_mode=args.json)
        result.pop("model", None)
        if args.json:
            _print_json(result)
        else:
            print(f"{result['metric']}: {result['before']:.4f} -> {result['after']:.4f}")
            print(f"quantized to {args.keras_quantize}: {', '.join(result['quantized'])}")
            for item in result["left_float"]:
                print(f"left float: {item['layer']}: {item['reason']}")
            for note in result["notes"]:
                print(note)
            print(f"wrote {out} ({_kb(result['size_bytes'])})")
        return 0
    if out.suffix.lower() != ".lforge":
        raise CommandError(f"--out {out}: the compressed model is saved as a project (.lforge)")
    options = CompressOptions(
        prune=args.prune if args.prune is not None else (0.5 if args.structured else None),
        schedule=args.schedule, structured=args.structured, cluster=args.cluster,
        centroid_init=args.centroids, qat=args.qat, epochs=args.epochs,
        batch_size=args.batch_size, learning_rate=args.learning_rate)

    def job(state):
        return compress(project, options, state=state)

    result = _run_job(job, json_mode=args.json)
    saved = result.project.save(out, models={result.project.main_name: result.model})
    payload = result.to_json()
    payload["out"] = str(saved)
    if result.qat_tflite is not None:
        qat_path = saved.with_name(saved.name[: -len(".lforge")] + ".qat-int8.tflite")
        qat_path.write_bytes(result.qat_tflite)
        payload["qat_tflite"] = str(qat_path)
    if args.json:
        _print_json(payload)
        return 0
    metric = result.metric
    print(f"{' + '.join(result.steps)}: {metric} {result.before:.4f} -> {result.after:.4f}")
    print(f"weights (gzipped .weights.h5): {_kb(result.size_bytes_before)} -> "
          f"{_kb(result.size_bytes_after)}")
    for layer, share in result.sparsity.items():
        print(f"  {layer:<24} zeros {share:6.1%}   distinct values {result.distinct[layer]:,}")
    for layer, cls, step, why in result.skipped:
        print(f"left as it was ({step}): {layer} ({cls}): {why}")
    for note in result.notes:
        print(note)
    print(f"wrote {saved}" + (f" and {payload['qat_tflite']}" if "qat_tflite" in payload else ""))
    return 0


def cmd_export(args) -> int:
    from models.export import ExportError, check_format, export_project

    try:
        fmt = check_format(args.format, args.target)
    except ExportError as exc:
        raise CommandError(str(exc)) from None
    project = load_any(args.file)

    def job(state):
        return export_project(project, fmt, args.out, target=args.target, state=state)

    result = _run_job(job, json_mode=args.json)
    if args.json:
        _print_json(result.to_json())
        return 0
    print(f"wrote {result.path} ({_kb(result.size_bytes)}, {fmt})")
    for note in result.notes:
        print(note)
    check = result.checks.get("edgetpu")
    if check is not None:
        print("Edge TPU: every operation is int8-capable" if check["ok"] else
              "Edge TPU problems:\n  " + "\n  ".join(check["problems"]))
    mcu = result.checks.get("mcu")
    if mcu is not None:
        print(f"microcontroller estimate: tensor arena {_kb(mcu['arena_bytes'])}, "
              f"RAM {_kb(mcu['ram_bytes'])}, flash {_kb(mcu['flash_bytes'])} (model only)")
    return 0


def cmd_bench(args) -> int:
    import tempfile

    from models.deploy import BENCH_FORMATS, DeployPlan, run_deploy

    formats = tuple(f.strip() for f in (args.formats or ",".join(BENCH_FORMATS)).split(",")
                    if f.strip())
    plan = DeployPlan(formats=formats, target=args.target, threads=args.threads,
                      xnnpack=not args.no_xnnpack, xla=args.xla)
    try:
        plan.check()
    except _deploy_errors() as exc:
        raise CommandError(str(exc)) from None
    project = load_any(args.file)
    out_dir = Path(args.out) if args.out else Path(tempfile.mkdtemp(prefix="layerforge-bench-"))

    def job(state):
        report = run_deploy(project, plan, out_dir, state=state)
        if args.hlo:
            from models.bench import hlo_text

            _write_text_atomic(Path(args.hlo), hlo_text(_built(project)))
        return report

    report = _run_job(job, json_mode=args.json)
    payload = report.to_json()
    if args.hlo:
        payload["hlo"] = str(args.hlo)
    if args.json:
        _print_json(payload)
        return 0
    print(f"{'variant':<28} {'size':>11} {'score':>8} {'agree':>7} {'latency':>10}")
    for row in report.rows:
        score = "" if row.value is None else f"{row.value:.4f}"
        agree = "" if row.agreement is None else f"{row.agreement:.1%}"
        latency = "" if row.latency_ms is None else f"{row.latency_ms:.3f} ms"
        print(f"{row.name:<28} {_kb(row.size_bytes):>11} {score:>8} {agree:>7} {latency:>10}"
              + (f"   {'; '.join(row.notes)}" if row.notes else ""))
    for note in report.notes:
        print(note)
    if report.xla:
        x = report.xla
        print(f"XLA on {x['device']}: training x{x['train']['speedup']:.2f} "
              f"({x['train']['off']['step_ms']:.1f} -> {x['train']['on']['step_ms']:.1f} ms/step, "
              f"compiling {x['train']['on']['compile_overhead_s']:.1f} s), inference "
              f"x{x['inference']['speedup']:.2f}")
    print(f"files in {out_dir}")
    return 0


def _add_deploy_parsers(sub) -> None:
    """The compress, export and bench commands."""
    from_file = ".lforge, .keras or gallery:SLUG, with trained weights"
    p = sub.add_parser("compress", help="prune, cluster or quantization-aware-train a model",
                       description="Compress a trained model with TFMOT (through its tf_keras "
                                   "twin) and save the result as a new project. --prune, "
                                   "--cluster and --qat combine, in that order. Sizes are "
                                   "gzipped .weights.h5 files.")
    p.add_argument("file", help=from_file)
    p.add_argument("--prune", type=float, metavar="SPARSITY", help="magnitude pruning, e.g. 0.5")
    p.add_argument("--schedule", choices=["constant", "polynomial"], default="constant")
    p.add_argument("--structured", choices=["2:4"], help="structured 2:4 sparsity (50%%)")
    p.add_argument("--cluster", type=int, metavar="K", help="weight clustering into K values")
    p.add_argument("--centroids", choices=["kmeans++", "linear", "density", "random"],
                   default="kmeans++", help="centroid initialization")
    p.add_argument("--qat", action="store_true", help="quantization-aware training (int8)")
    p.add_argument("--keras-quantize", choices=["int8", "int4", "float8"],
                   help="Keras 3's own model.quantize instead (writes a .keras file)")
    p.add_argument("--epochs", type=int, default=2, help="fine-tuning epochs per step")
    p.add_argument("--batch-size", type=int)
    p.add_argument("--learning-rate", type=float, help="default: a tenth of the recipe's")
    p.add_argument("--out", required=True, help="OUT.lforge (or OUT.keras with --keras-quantize)")
    p.add_argument("--json", action="store_true")
    p.set_defaults(func=cmd_compress)

    p = sub.add_parser("export", help="export a model for deployment (TFLite, ONNX, C array...)")
    p.add_argument("file", help=from_file)
    p.add_argument("--format", choices=["keras", "saved-model", "tflite", "tflite-dynamic",
                                        "tflite-fp16", "tflite-int8", "tflite-int16x8",
                                        "c-array", "onnx"],
                   help="default: the target's own format")
    p.add_argument("--target", choices=["cpu", "gpu", "edgetpu", "mcu"],
                   help="hardware preset: checks the format and adds its checks")
    p.add_argument("--out", required=True, metavar="PATH", help="file, or folder to write into")
    p.add_argument("--json", action="store_true")
    p.set_defaults(func=cmd_export)

    p = sub.add_parser("bench", help="measure size, accuracy and latency of each variant")
    p.add_argument("file", help=from_file)
    p.add_argument("--formats", metavar="LIST",
                   help="comma-separated formats (default: keras, saved-model, every TFLite "
                        "variant, onnx)")
    p.add_argument("--target", choices=["cpu", "gpu", "edgetpu", "mcu"])
    p.add_argument("--threads", type=int, default=1, help="interpreter threads")
    p.add_argument("--no-xnnpack", action="store_true", help="TFLite without the XNNPACK delegate")
    p.add_argument("--xla", action="store_true", help="also measure XLA training and inference")
    p.add_argument("--hlo", metavar="TXT", help="write the optimized XLA HLO of the model here")
    p.add_argument("--out", metavar="DIR", help="keep the files here (default: a temporary folder)")
    p.add_argument("--json", action="store_true")
    p.set_defaults(func=cmd_bench)


def cmd_open(args) -> int:
    import importlib

    # Looked up by name: the core never depends on the Qt face, it only starts it.
    try:
        desktop_main = importlib.import_module("desktop.app").main
    except ImportError as exc:
        raise CommandError(f"the desktop app is not available: {exc}") from None
    argv = []
    if args.file:
        argv.append(args.file)
    if args.screenshot:
        argv += ["--screenshot", args.screenshot]
    return desktop_main(argv)


# ----------------------------------------------------------------------- parser


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="layerforge",
        description="LayerForge: design, train, explain, compress and export Keras models.",
    )
    parser.add_argument("--version", action="version", version=f"layerforge {__version__}")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND")

    p = sub.add_parser("check", help="infer shapes and check a model")
    p.add_argument("file", help=".lforge, .keras, .h5, .json or gallery:SLUG")
    p.add_argument("--json", action="store_true", help="print one JSON object as the last line")
    p.set_defaults(func=cmd_check)

    p = sub.add_parser("convert", help="convert between .lforge, .keras, .h5, .json and .py")
    p.add_argument("input")
    p.add_argument("output")
    p.add_argument("--json", action="store_true")
    p.set_defaults(func=cmd_convert)

    p = sub.add_parser("predict", help="run a model on an input")
    p.add_argument("file")
    p.add_argument("--input", required=True, help="JSON (e.g. '[[0.5, 0.8]]'), .npy, .npz or .csv")
    p.add_argument("--trace", action="store_true", help="also print every layer's output")
    p.add_argument("--json", action="store_true")
    p.set_defaults(func=cmd_predict)

    p = sub.add_parser("train", help="train a model on its data (or other data)")
    p.add_argument("file", help=".lforge, .keras or gallery:SLUG")
    p.add_argument("--data", help="builtin:NAME, keras:NAME, a .csv, a .npz or an image folder")
    p.add_argument("--target", help="the CSV column to predict (default: the last)")
    p.add_argument("--epochs", type=int)
    p.add_argument("--batch-size", type=int)
    p.add_argument("--quick", action="store_true", help="the template's quick preset")
    p.add_argument("--xla", action="store_true", help="compile with XLA (jit_compile)")
    p.add_argument("--out", metavar="DIR", help="write project, weights, history.csv and logs")
    p.add_argument("--distribute", choices=["mirrored", "multi-worker"])
    p.add_argument("--resume", metavar="CHECKPOINT",
                   help="train on from saved weights (e.g. DIR/checkpoints/last.weights.h5)")
    p.add_argument("--json", action="store_true")
    p.set_defaults(func=cmd_train)

    p = sub.add_parser("search", help="search the parameters marked as ranges (keras-tuner)")
    p.add_argument("file", help=".lforge or gallery:SLUG with marked ranges")
    p.add_argument("--trials", type=int, help="the trial budget (default: the project's)")
    p.add_argument("--algorithm", choices=["random", "hyperband", "bayesian"])
    p.add_argument("--quick", action="store_true", help="train each trial with the quick preset")
    p.add_argument("--out", metavar="DIR", help="write the best project (best.lforge) and trials")
    p.add_argument("--json", action="store_true")
    p.set_defaults(func=cmd_search)

    p = sub.add_parser("gallery", help="list the architecture gallery or start from a template")
    gsub = p.add_subparsers(dest="gallery_cmd", metavar="list|new")
    gl = gsub.add_parser("list", help="list the templates")
    gl.add_argument("--json", action="store_true")
    gn = gsub.add_parser("new", help="create a project from a template")
    gn.add_argument("slug")
    gn.add_argument("output")
    gn.add_argument("--json", action="store_true")
    p.set_defaults(func=cmd_gallery, json=False)

    p = sub.add_parser("explain", help="explain a trained model's predictions on its own data")
    p.add_argument("file", help=".lforge, .keras or gallery:SLUG (with trained weights)")
    p.add_argument("--method", required=True, choices=EXPLAIN_METHODS,
                   help="shap is SHAP's GradientExplainer; deep-shap its DeepExplainer")
    p.add_argument("--sample", type=int, default=0, help="the first test sample to explain (default 0)")
    p.add_argument("--samples", type=int, default=1, help="how many samples from --sample (default 1)")
    p.add_argument("--class", dest="target_class",
                   help="the class to explain, by number or name (default: the predicted one)")
    p.add_argument("--data", help="other data than the project's: builtin:NAME, a .csv, a .npz or "
                                  "an image folder (a .keras file has none of its own)")
    p.add_argument("--option", action="append", metavar="KEY=VALUE",
                   help="a method option, e.g. steps=64, layer=conv_2, position=3 (repeatable)")
    p.add_argument("--out", metavar="PNG", help="write a picture of the explanation")
    p.add_argument("--csv", metavar="CSV", help="write the numbers as CSV")
    p.add_argument("--train-quick", action="store_true",
                   help="a project without trained weights is trained with its quick preset first")
    p.add_argument("--json", action="store_true")
    p.set_defaults(func=cmd_explain)

    _add_deploy_parsers(sub)

    p = sub.add_parser("open", help="open the desktop app")
    p.add_argument("file", nargs="?")
    p.add_argument("--screenshot", metavar="PNG", help="save a screenshot of the window and exit")
    p.set_defaults(func=cmd_open)
    return parser


def main(argv: list[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    if not getattr(args, "command", None):
        parser.print_help()
        return 2
    if args.command == "gallery" and not getattr(args, "gallery_cmd", None):
        parser.parse_args(["gallery", "--help"])
    try:
        return int(args.func(args) or 0)
    except CommandError as exc:
        print(f"layerforge: {exc}", file=sys.stderr)
        return 1
    except KeyboardInterrupt:
        print("layerforge: interrupted", file=sys.stderr)
        return 130
    except Exception as exc:  # never show a traceback to a user
        if os.environ.get("LAYERFORGE_DEBUG") == "1":
            raise
        print(f"layerforge: unexpected error: {type(exc).__name__}: {exc} "
              "(set LAYERFORGE_DEBUG=1 for details)", file=sys.stderr)
        return 1


if __name__ == "__main__":
    sys.exit(main())
