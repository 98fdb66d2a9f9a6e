"""From a graph to a real Keras 3 model, and from Keras models and files to graphs.

Building goes through Keras's own functional config (``Model.from_config``),
so what the user edits is exactly what Keras builds.
"""
from __future__ import annotations

import json
import zipfile
from pathlib import Path
from typing import Any

from models.graph import Graph, GraphError


class BuildError(ValueError):
    """The graph cannot become a model; the message says why and where."""


class ImportModelError(ValueError):
    """A model file could not be read; the message names the file and the problem."""


def build_model(graph: Graph):
    """Build the ``keras.Model`` for a graph (fresh weights).

    Raises:
        BuildError: with the validation problems, node by node, when the graph
            is not a valid model.
    """
    from models import backend

    keras = backend.keras()
    try:
        class_name, config = graph.to_keras_config()
    except GraphError as exc:
        raise BuildError(str(exc)) from None
    try:
        if class_name == "Sequential":
            return keras.Sequential.from_config(config)
        return keras.Model.from_config(config)
    except Exception as exc:
        from models.validate import describe_errors, validate

        report = validate(graph)
        if not report.valid:
            raise BuildError("the model is not valid:\n" + describe_errors(report)) from None
        raise BuildError(f"Keras could not build the model: {exc}") from exc


def graph_from_model(model) -> Graph:
    """The editable graph of a Functional or Sequential Keras model.

    Raises:
        ImportModelError: for a subclassed model, whose structure lives in
            Python code rather than in a config.
    """
    from models import backend

    keras = backend.keras()
    if isinstance(model, keras.Sequential):
        return Graph.from_keras_config(model.get_config(), "Sequential")
    if _is_functional(model):
        return Graph.from_keras_config(model.get_config(), "Functional")
    raise ImportModelError(
        f"{type(model).__name__} is a subclassed model: its layers are wired in Python "
        "code, not in a config, so it cannot be shown as a graph. Rebuild it with the "
        "functional API or keras.Sequential"
    )


def _is_functional(model) -> bool:
    from keras.src.models.functional import Functional

    return isinstance(model, Functional)


def copy_weights(src, dst) -> None:
    """Copy weights layer by layer, matched by name (nested models included)."""
    for layer in src.layers:
        try:
            target = dst.get_layer(layer.name)
        except ValueError:
            raise BuildError(f"the model has no layer {layer.name!r} to take weights") from None
        weights = layer.get_weights()
        if weights:
            try:
                target.set_weights(weights)
            except ValueError as exc:
                raise BuildError(f"weights of layer {layer.name!r} do not fit: {exc}") from None


# ----------------------------------------------------------------------- files


MODEL_SUFFIXES = (".keras", ".h5", ".hdf5", ".json")


def load_model_file(path: str | Path):
    """Load a ``.keras``, ``.h5`` or Keras JSON file.

    Returns:
        ``(graph, model)``: the editable graph and the loaded Keras model
        (with its weights; for JSON, fresh weights).

    Raises:
        ImportModelError: with the file name and what is wrong with it.
    """
    from models import backend

    path = Path(path)
    if not path.exists():
        raise ImportModelError(f"{path}: no such file")
    suffix = path.suffix.lower()
    if suffix not in MODEL_SUFFIXES:
        raise ImportModelError(
            f"{path}: unknown model format {suffix!r}; LayerForge reads "
            + ", ".join(MODEL_SUFFIXES)
        )
    keras = backend.keras()
    try:
        if suffix == ".json":
            text = path.read_text(encoding="utf-8")
            model = keras.models.model_from_json(_model_json(text, path))
        else:
            if suffix == ".keras" and not zipfile.is_zipfile(path):
                raise ImportModelError(
                    f"{path}: not a valid .keras file (it should be a zip archive; the file "
                    "is truncated or not a Keras model)"
                )
            model = keras.saving.load_model(path, compile=False)
    except ImportModelError:
        raise
    except Exception as exc:
        raise ImportModelError(f"{path}: could not load the model: {_short(exc)}") from None
    return graph_from_model(model), model


def read_keras_archive(path: str | Path) -> tuple[Graph, dict | None]:
    """The graph (and compile config) of a ``.keras`` file, read without TensorFlow.

    A ``.keras`` file is a zip holding ``config.json`` (the model's Keras config)
    and ``model.weights.h5``. Reading the config directly opens even an
    800-layer model in a blink; the weights are loaded later, when a model is
    built (``model.load_weights`` reads ``.keras`` files).

    Raises:
        ImportModelError: naming the file and what is wrong with it.
    """
    path = Path(path)
    if not path.exists():
        raise ImportModelError(f"{path}: no such file")
    if not zipfile.is_zipfile(path):
        raise ImportModelError(
            f"{path}: not a valid .keras file (it should be a zip archive; the file is "
            "truncated or not a Keras model)")
    try:
        with zipfile.ZipFile(path) as archive:
            names = archive.namelist()
            if "config.json" not in names:
                raise ImportModelError(f"{path}: the archive has no config.json, so it is not "
                                       "a Keras model file")
            data = json.loads(archive.read("config.json").decode("utf-8"))
    except ImportModelError:
        raise
    except (zipfile.BadZipFile, OSError) as exc:
        raise ImportModelError(f"{path}: the archive is damaged ({exc})") from None
    except (UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise ImportModelError(f"{path}: its config.json is damaged ({exc})") from None
    class_name = data.get("class_name")
    if class_name not in ("Functional", "Sequential", "Model") or "config" not in data:
        raise ImportModelError(
            f"{path}: holds a {class_name or 'non-standard'} model; only Functional and "
            "Sequential models can be shown as a graph (a subclassed model's wiring lives in "
            "Python code)")
    try:
        graph = Graph.from_keras_config(data["config"], class_name)
    except (GraphError, KeyError, TypeError, ValueError) as exc:
        raise ImportModelError(f"{path}: the model config is not understood ({exc})") from None
    return graph, data.get("compile_config")


def recipe_from_compile_config(compile_config: dict | None) -> dict:
    """The recipe keys a saved model's compile config gives (optimizer, loss, metrics)."""
    out: dict = {}
    if not isinstance(compile_config, dict):
        return out
    opt = compile_config.get("optimizer")
    if isinstance(opt, (str, dict)):
        out["optimizer"] = opt if isinstance(opt, dict) else {"class_name": opt, "config": {}}
    loss = compile_config.get("loss")
    if isinstance(loss, (str, dict)):
        out["loss"] = loss
    metrics = compile_config.get("metrics")
    if isinstance(metrics, list) and all(isinstance(m, str) for m in metrics):
        out["metrics"] = metrics
    return out


def _model_json(text: str, path: Path) -> str:
    try:
        data = json.loads(text)
    except json.JSONDecodeError as exc:
        raise ImportModelError(
            f"{path}: not valid JSON (line {exc.lineno}, column {exc.colno}: {exc.msg})"
        ) from None
    if isinstance(data, dict) and "class_name" not in data and "layers" in data:
        # A bare functional config (model.get_config()) rather than model.to_json().
        data = {"class_name": "Functional", "config": data,
                "module": "keras.src.models.functional", "registered_name": "Functional"}
    return json.dumps(data)


def save_model_file(model, path: str | Path) -> None:
    """Save a Keras model as ``.keras`` / ``.h5`` (legacy) / ``.json`` (architecture only), atomically."""
    import os
    import tempfile

    path = Path(path)
    suffix = path.suffix.lower()
    if suffix not in MODEL_SUFFIXES:
        raise ImportModelError(f"{path}: cannot write format {suffix!r}")
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{path.stem}.", suffix=suffix, dir=path.parent)
    os.close(fd)
    try:
        if suffix == ".json":
            Path(tmp).write_text(model.to_json(indent=1), encoding="utf-8")
        else:
            os.unlink(tmp)  # Keras refuses to overwrite some formats; let it create the file
            model.save(tmp)
        os.replace(tmp, path)
    finally:
        if os.path.exists(tmp):
            os.unlink(tmp)


def _short(exc: Exception) -> str:
    msg = " ".join(str(exc).split())
    return msg[:500] + ("..." if len(msg) > 500 else "")


def model_summary(model) -> str:
    """Keras's text summary as a string."""
    lines: list[str] = []
    model.summary(print_fn=lambda line, *a, **k: lines.append(line), line_length=100)
    return "\n".join(lines)


def numpy_inputs(model, data: Any):
    """Arrange user-given input data to fit a model's inputs (list, dict or single)."""
    import numpy as np

    names = [t.name for t in model.inputs]
    if isinstance(data, dict):
        missing = [n for n in names if n not in data]
        if missing:
            raise ValueError(f"input {missing[0]!r} is missing; the model takes {names}")
        return {n: np.asarray(data[n], dtype="float32") for n in names}
    if len(names) > 1:
        if not isinstance(data, (list, tuple)) or len(data) != len(names):
            raise ValueError(
                f"the model takes {len(names)} inputs ({', '.join(names)}); give a JSON "
                "object keyed by input name or a list with one array per input"
            )
        return [np.asarray(d, dtype="float32") for d in data]
    return np.asarray(data, dtype="float32")
