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
    import time

    from models.runner import RunState, run_in_thread
    from models.training import TrainingError, train

    project = load_any(args.file)
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
    state = RunState()
    job = lambda st: train(project, state=st, dataset=dataset, quick=args.quick,  # noqa: E731
                           epochs=args.epochs, batch_size=args.batch_size,
                           xla=True if args.xla else None, out_dir=args.out,
                           distribute=args.distribute)
    _, thread = run_in_thread(job, state)
    bar = _Progress(state, sys.stderr if args.json else sys.stdout, quiet=False)
    try:
        while thread.is_alive():
            thread.join(0.25)
            bar.update()
    except KeyboardInterrupt:
        state.cancel()
        print("\nstopping: keeping the best weights so far...", file=sys.stderr)
        thread.join()
    bar.close()
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
