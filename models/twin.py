"""The ``tf_keras`` (Keras 2) twin of a Keras 3 model.

TensorFlow Model Optimization (pruning, quantization-aware training, weight
clustering) only accepts ``tf_keras`` models. :func:`to_tf_keras` rebuilds a
Keras 3 ``Functional`` or ``Sequential`` model as a functional ``tf_keras``
model with the same layers, the same calls and the same weights;
:func:`from_tf_keras` brings the (pruned, clustered...) weights back into a
fresh Keras 3 copy.

How the twin is made:

* The Keras 3 model's config is replayed call by call (``layers`` and their
  ``inbound_nodes``), so several inputs and outputs, dict inputs and outputs,
  shared layers and multi-input calls (``Add``, ``MultiHeadAttention(q, v,
  key=k)``...) come out the same.
* Each layer is created from its Keras 3 config, translated: dtype policies
  become dtype names, serialized initializers, regularizers and constraints take
  the ``{"class_name", "config"}`` form, renamed options are renamed
  (``LeakyReLU.negative_slope`` is ``alpha``), and options that ``tf_keras``
  lacks are dropped only while they hold their Keras 3 default; any other value
  makes the layer unsupported, because dropping it would change the model.
* Nested ``Functional``/``Sequential`` sub-models are flattened into the twin:
  TFMOT refuses nested models (``quantize_annotate_model`` raises, pruning
  clones them separately). An inner layer keeps its name unless another layer of
  the twin already has it; then it is prefixed with its sub-model's path
  (``encoder_dense``). :attr:`TwinResult.layer_map` records every name.
* Keras 3 records automatic masks (``Embedding(mask_zero=True)``, ``Masking``) as
  ``keras.ops`` nodes passed as ``mask=``; tf_keras propagates masks by itself,
  so those ops are left out. A recorded ``training=`` is left out too: Keras 3
  lets the outer call's flag override it, while tf_keras would freeze it.
* Weights are copied layer by layer after checking that their number and shapes
  agree. They are paired by their names below the layer (``query/kernel``) when
  both sides name them alike, else by ``get_weights`` order: TFMOT's strip
  functions can reorder a layer's weights.

Layers with no faithful twin (LayerForge's own layers, Keras-3-only layers, raw
``keras.ops`` calls, options ``tf_keras`` lacks) are all collected before
anything is built. With ``strict=True`` (the default) :func:`to_tf_keras` raises
one :class:`TwinError` that lists them; with ``strict=False`` it returns a
:class:`TwinResult` whose ``model`` is ``None`` and whose ``unsupported`` says
why, so a compression screen can show the list.

``tf_keras`` is imported only inside the functions that need it.
"""
from __future__ import annotations

import inspect
from dataclasses import dataclass, field
from typing import Any, Mapping

from models import backend

__all__ = [
    "TwinError",
    "TwinResult",
    "VERIFIED_LAYERS",
    "from_tf_keras",
    "supported",
    "to_tf_keras",
]

_MODEL_CLASSES = frozenset({"Functional", "Sequential", "Model"})
_KERAS_TENSOR = "__keras_tensor__"
_AUTO_MASK = object()  # a mask that tf_keras propagates by itself

# Classes whose twins the tests compare output for output (tests/models/test_twin.py
# checks that every name here is exercised there).
VERIFIED_LAYERS = frozenset(
    {
        "Activation", "ActivityRegularization", "Add", "AdditiveAttention",
        "AlphaDropout", "Attention", "Average", "AveragePooling1D", "AveragePooling2D",
        "AveragePooling3D", "BatchNormalization", "Bidirectional", "CategoryEncoding",
        "CenterCrop", "Concatenate", "Conv1D", "Conv1DTranspose", "Conv2D",
        "Conv2DTranspose", "Conv3D", "Conv3DTranspose", "ConvLSTM1D", "ConvLSTM2D",
        "Cropping1D", "Cropping2D", "Cropping3D", "Dense", "DepthwiseConv1D",
        "DepthwiseConv2D", "Discretization", "Dot", "Dropout", "ELU", "EinsumDense",
        "Embedding", "Flatten", "GRU", "GaussianDropout", "GaussianNoise",
        "GlobalAveragePooling1D", "GlobalAveragePooling2D", "GlobalAveragePooling3D",
        "GlobalMaxPooling1D", "GlobalMaxPooling2D", "GlobalMaxPooling3D",
        "GroupNormalization", "Hashing", "Identity", "InputLayer", "LSTM",
        "LayerNormalization", "LeakyReLU", "Masking", "MaxPooling1D", "MaxPooling2D",
        "MaxPooling3D", "Maximum", "Minimum", "MultiHeadAttention", "Multiply",
        "Normalization", "PReLU", "Permute", "RandomBrightness", "RandomContrast",
        "RandomFlip", "RandomRotation", "RandomTranslation", "RandomZoom", "ReLU",
        "RepeatVector", "Rescaling", "Reshape", "Resizing", "SeparableConv1D",
        "SeparableConv2D", "SimpleRNN", "Softmax", "SpatialDropout1D",
        "SpatialDropout2D", "SpatialDropout3D", "Subtract", "TimeDistributed",
        "UnitNormalization", "UpSampling1D", "UpSampling2D", "UpSampling3D",
        "ZeroPadding1D", "ZeroPadding2D", "ZeroPadding3D",
    }
)

_AUGMENT = "a Keras 3 data-augmentation layer; tf_keras has no such layer"
_NO_TWIN: dict[str, str] = {
    **{
        f"Adaptive{kind}Pooling{d}D": "tf_keras has no adaptive pooling layers"
        for kind in ("Average", "Max")
        for d in (1, 2, 3)
    },
    **{
        name: _AUGMENT
        for name in (
            "AugMix", "AutoContrast", "ContrastLimitedAdaptiveHistogramEqualization",
            "CutMix", "Equalization", "MaxNumBoundingBoxes", "MixUp", "RandAugment",
            "RandomColorDegeneration", "RandomColorJitter", "RandomElasticTransform",
            "RandomErasing", "RandomGaussianBlur", "RandomGrayscale", "RandomHue",
            "RandomInvert", "RandomPerspective", "RandomPosterization",
            "RandomSaturation", "RandomSharpness", "RandomShear", "Solarization",
        )
    },
    "GroupQueryAttention": "tf_keras has no grouped-query attention layer",
    "RMSNormalization": "tf_keras has no RMS normalization layer",
    "ReversibleEmbedding": "tf_keras has no reversible embedding layer",
    "MelSpectrogram": "a Keras 3 audio layer; tf_keras has no such layer",
    "STFTSpectrogram": "a Keras 3 audio layer; tf_keras has no such layer",
    "Pipeline": "a Keras 3 preprocessing pipeline; tf_keras has no such layer",
    "JaxLayer": "it wraps a JAX function, which TensorFlow cannot run",
    "FlaxLayer": "it wraps a Flax module, which TensorFlow cannot run",
    "TorchModuleWrapper": "it wraps a PyTorch module, which TensorFlow cannot run",
    "TFSMLayer": "it wraps a SavedModel endpoint, which cannot be rebuilt from a config",
    "Lambda": "it runs Python code written against Keras 3; make it a registered layer",
    "RandomCrop": "at inference Keras 3 passes images through whole; tf_keras crops them",
    "TextVectorization": "its vocabulary lives in lookup tables that are not weights",
    "StringLookup": "its vocabulary lives in lookup tables that are not weights",
    "IntegerLookup": "its vocabulary lives in lookup tables that are not weights",
}

# Option names that differ between the two (Keras 3 name -> tf_keras name).
_RENAMED = {
    "InputLayer": {"batch_shape": "batch_input_shape"},
    "LeakyReLU": {"negative_slope": "alpha"},
}

# Keys that tf_keras' from_config insists on but Keras 3 never writes.
_TFK_REQUIRED = {
    "MultiHeadAttention": {"query_shape": None, "key_shape": None, "value_shape": None},
}

# Keras 3 options that tf_keras lacks but whose value here is what tf_keras does anyway.
_NEUTRAL = {"data_format": "channels_last"}

# Activation names whose tf_keras function computes the same thing (checked by the tests;
# e.g. ``hard_sigmoid`` is not here: Keras 2 uses a slope of 0.2, Keras 3 one of 1/6).
SAME_ACTIVATIONS = frozenset(
    {
        "elu", "exponential", "gelu", "leaky_relu", "linear", "log_softmax", "mish",
        "relu", "relu6", "selu", "sigmoid", "silu", "softmax", "softplus", "softsign",
        "swish", "tanh",
    }
)

# What tf_keras' base Layer accepts besides the explicit arguments of each class.
_TFK_LAYER_KWARGS = frozenset(
    {
        "input_dim", "input_shape", "batch_input_shape", "batch_size", "weights",
        "activity_regularizer", "autocast", "implementation", "trainable", "name",
        "dtype", "dynamic",
    }
)


class TwinError(ValueError):
    """The model (or a weight set) cannot be carried between Keras 3 and tf_keras.

    Attributes:
        unsupported: ``(layer, class_name, reason)`` for each layer that has no
            faithful twin; empty when the error is about something else.
    """

    def __init__(self, message: str, unsupported: list[tuple[str, str, str]] | None = None):
        super().__init__(message)
        self.unsupported = list(unsupported or [])


@dataclass
class TwinResult:
    """What :func:`to_tf_keras` made.

    Attributes:
        model: the functional ``tf_keras.Model``, or ``None`` when some layers are
            unsupported (only with ``strict=False``).
        layer_map: Keras 3 layer path (``"encoder/dense"`` for a layer inside the
            sub-model ``encoder``) -> the name of its layer in the twin.
        unsupported: ``(layer path, class_name, reason)`` for each layer that has
            no faithful twin.
    """

    model: Any
    layer_map: dict[str, str] = field(default_factory=dict)
    unsupported: list[tuple[str, str, str]] = field(default_factory=list)


class _Unsupported(Exception):
    """Internal: why one layer cannot be twinned."""


class _NotReady(Exception):
    """Internal: a call whose input tensors do not exist yet."""


# --------------------------------------------------------------------------- support


def supported(class_name: str) -> tuple[bool, str]:
    """Whether a Keras 3 layer class has a ``tf_keras`` twin.

    Known classes are answered from tables, without importing TensorFlow; any
    other name is looked up in ``tf_keras`` (which loads TensorFlow). A ``True``
    for a class is not a promise for every config: an option that ``tf_keras``
    lacks, set away from its default, still makes that one layer unsupported.

    Args:
        class_name: a Keras class name (``"Conv2D"``) or a registered name
            (``"layerforge>Squash"``).

    Returns:
        ``(ok, reason)``: the reason is empty for verified classes, says why not
        when ``ok`` is false, and carries a caution for classes that ``tf_keras``
        has but the tests do not cover.
    """
    if ">" in class_name:
        package = class_name.split(">", 1)[0]
        return False, (
            f"a custom layer registered under package '{package}'; tf_keras cannot rebuild it"
        )
    if class_name in _NO_TWIN:
        return False, _NO_TWIN[class_name]
    if class_name in VERIFIED_LAYERS or class_name in _MODEL_CLASSES:
        return True, ""
    tfk = _tf_keras()
    keras = backend.keras()
    if not isinstance(getattr(keras.layers, class_name, None), type):
        return False, "not a built-in Keras layer; tf_keras cannot rebuild a custom layer"
    if not isinstance(getattr(tfk.layers, class_name, None), type):
        return False, "tf_keras has no such layer"
    return True, "tf_keras has this layer but LayerForge has not verified its twin"


def _tf_keras():
    backend.load()
    import tf_keras

    return tf_keras


def _layer_reason(entry: dict) -> str | None:
    """Why a serialized layer cannot be twinned, judged from its class alone."""
    module = entry.get("module") or ""
    class_name = entry["class_name"]
    registered = entry.get("registered_name")
    if module.startswith("keras.src.ops") or module.startswith("keras.ops"):
        return (
            f"a raw keras.ops call ({class_name}); tf_keras cannot replay Keras 3 "
            "operations, so wrap it in a layer"
        )
    if registered and registered != class_name and ">" in registered:
        return supported(registered)[1]
    if not module.startswith("keras"):
        return f"a custom layer (module '{module}'); tf_keras cannot rebuild it"
    if class_name in _NO_TWIN:
        return _NO_TWIN[class_name]
    return None


# --------------------------------------------------------------------------- config translation


def _init_params(cls, stop) -> dict[str, inspect.Parameter]:
    """The named ``__init__`` arguments of ``cls`` and its bases, up to ``stop``."""
    params: dict[str, inspect.Parameter] = {}
    for klass in cls.__mro__:
        init = klass.__dict__.get("__init__")
        if init is not None:
            try:
                signature = inspect.signature(init)
            except (TypeError, ValueError):
                signature = None
            if signature is not None:
                for p in signature.parameters.values():
                    if p.name != "self" and p.kind not in (p.VAR_POSITIONAL, p.VAR_KEYWORD):
                        params.setdefault(p.name, p)
        if klass is stop:
            break
    return params


class _Translator:
    """Turns Keras 3 layer configs into configs that ``tf_keras`` accepts."""

    def __init__(self):
        self.keras = backend.keras()
        self.tfk = _tf_keras()

    def layer_class(self, class_name: str):
        cls = getattr(self.tfk.layers, class_name, None)
        if not isinstance(cls, type):
            raise _Unsupported("tf_keras has no such layer")
        return cls

    def layer_config(self, class_name: str, config: dict) -> dict:
        tfk_cls = self.layer_class(class_name)
        k3_cls = getattr(self.keras.layers, class_name, None)
        accepted = set(_init_params(tfk_cls, self.tfk.layers.Layer)) | _TFK_LAYER_KWARGS
        if issubclass(tfk_cls, self.tfk.layers.RNN):
            accepted.add("zero_output_for_mask")  # tf_keras' RNN takes it through **kwargs
        k3_params = (
            _init_params(k3_cls, self.keras.layers.Layer) if isinstance(k3_cls, type) else {}
        )
        renamed = _RENAMED.get(class_name, {})
        out = {}
        for key, value in config.items():
            target = renamed.get(key, key)
            if target in accepted:
                out[target] = self.value(value, key)
            elif not _is_default(key, value, k3_params):
                raise _Unsupported(f"option {key}={value!r} has no tf_keras equivalent")
        for key, value in _TFK_REQUIRED.get(class_name, {}).items():
            out.setdefault(key, value)
        if class_name == "Bidirectional":
            # Both put "forward_"/"backward_" before the wrapped layer's name, and
            # Keras 3 saves the result; tf_keras would add it a second time.
            for key, prefix in (("layer", "forward_"), ("backward_layer", "backward_")):
                inner = out.get(key)
                if isinstance(inner, dict) and inner["config"].get("name", "").startswith(prefix):
                    inner["config"]["name"] = inner["config"]["name"][len(prefix):]
        return out

    def value(self, value, key: str | None = None):
        if isinstance(value, dict):
            if "class_name" in value and "config" in value:
                return self.serialized(value)
            return {k: self.value(v, k) for k, v in value.items()}
        if isinstance(value, list):
            return [self.value(v) for v in value]
        if key in ("activation", "recurrent_activation") and isinstance(value, str):
            if value not in SAME_ACTIVATIONS:
                raise _Unsupported(
                    f"activation '{value}' is missing from tf_keras "
                    "or computes something else there"
                )
        return value

    def serialized(self, obj: dict):
        module = obj.get("module") or ""
        class_name = obj["class_name"]
        config = obj["config"]
        registered = obj.get("registered_name")
        if class_name in ("DTypePolicy", "FloatDTypePolicy"):
            return config["name"]
        if "DTypePolicy" in class_name:
            mode = config.get("mode") or config.get("name") or class_name
            raise _Unsupported(f"it is quantized by Keras 3 ({mode}), which tf_keras cannot replay")
        if class_name in ("__numpy__", "__tensor__"):
            import numpy as np

            return np.asarray(config["value"], dtype=config.get("dtype"))
        if module == "keras.activations" or class_name == "function":
            name = config if isinstance(config, str) else None
            if module == "keras.activations" and name in SAME_ACTIVATIONS:
                return name
            raise _Unsupported(f"its activation function {name or config!r} is custom")
        if registered and ">" in str(registered) or not module.startswith("keras"):
            raise _Unsupported(f"it uses the custom object {registered or class_name!r}")
        if module == "keras.layers":
            reason = _layer_reason(obj)
            if reason:
                raise _Unsupported(f"its inner layer {class_name}: {reason}")
            return {"class_name": class_name, "config": self.layer_config(class_name, config)}
        kind = module.rsplit(".", 1)[-1]
        if kind in ("initializers", "regularizers", "constraints"):
            tfk_cls = getattr(getattr(self.tfk, kind), class_name, None)
            k3_cls = getattr(getattr(self.keras, kind), class_name, None)
            if not isinstance(tfk_cls, type):
                raise _Unsupported(f"tf_keras has no {kind[:-1]} {class_name}")
            accepted = _init_params(tfk_cls, object)
            k3_params = _init_params(k3_cls, object) if isinstance(k3_cls, type) else {}
            out = {}
            for key, value in config.items():
                if key in accepted:
                    out[key] = self.value(value, key)
                elif not _is_default(key, value, k3_params):
                    raise _Unsupported(
                        f"{class_name} option {key}={value!r} has no tf_keras equivalent"
                    )
            return {"class_name": class_name, "config": out}
        raise _Unsupported(f"cannot translate the {module}.{class_name} object in its config")


def _is_default(key: str, value, k3_params: Mapping[str, inspect.Parameter]) -> bool:
    """Whether dropping ``key`` leaves the layer as it is."""
    if value is None or _NEUTRAL.get(key, object()) == value:
        return True
    param = k3_params.get(key)
    if param is None or param.default is inspect.Parameter.empty:
        return value is False
    default = _as_lists(param.default)
    return _as_lists(value) == default or (value is False and default is None)


def _as_lists(value):
    if isinstance(value, (list, tuple)):
        return [_as_lists(v) for v in value]
    return value


# --------------------------------------------------------------------------- the plan


@dataclass
class _Leaf:
    path: str
    name: str  # the name in the twin
    entry: dict  # the serialized layer: module, class_name, config, registered_name
    layer: Any  # the live Keras 3 layer, or None for a raw op
    twin: Any = None


def _entry_name(entry: dict) -> str:
    return entry.get("name") or entry["config"]["name"]


def _model_config(model) -> dict:
    cls = type(model).__name__
    if not getattr(model, "built", False):
        raise TwinError(
            f"Model '{model.name}' is not built; call it on data or give it an Input first."
        )
    if cls not in ("Functional", "Sequential"):
        raise TwinError(
            f"Model '{model.name}' is a {cls}; only Functional and Sequential models have twins."
        )
    try:
        return model.get_config()
    except Exception as exc:  # a layer without get_config: nothing can be replayed
        raise TwinError(f"Model '{model.name}' cannot be serialized: {exc}") from exc


class _Plan:
    """Every leaf layer of a model, with the name it gets in the (flat) twin."""

    def __init__(self, model):
        self.model = model
        self.config = _model_config(model)
        self.class_name = type(model).__name__
        self.leaves: dict[int, _Leaf] = {}  # by id() of the live layer (or entry)
        self.by_path: dict[str, _Leaf] = {}
        self.inputs: list[str] = []
        self.mask_only: dict[str, set[str]] = {}  # sub-model path -> ops that only compute masks
        self._used: set[str] = set()
        self._nested: list[tuple[Any, dict, str]] = []
        for entry in self.config["layers"]:
            self._used.add(_entry_name(entry))
        self._walk(model, self.config, "")
        while self._nested:
            sub, sub_config, prefix = self._nested.pop(0)
            self._walk(sub, sub_config, prefix)

    def _walk(self, model, config: dict, prefix: str) -> None:
        mask_only = self.mask_only[prefix] = _mask_only_ops(config)
        for entry in config["layers"]:
            name = _entry_name(entry)
            path = prefix + name
            if name in mask_only:
                continue
            if entry["class_name"] == "InputLayer":
                if not prefix:
                    self.inputs.append(name)
                continue
            if entry["class_name"] in _MODEL_CLASSES:
                sub = model.get_layer(name)
                self._nested.append((sub, entry["config"], path + "/"))
                continue
            try:
                layer = model.get_layer(name)
            except ValueError:  # a raw keras.ops call is not a layer
                layer = None
            key = id(layer) if layer is not None else id(entry)
            leaf = self.leaves.get(key)
            if leaf is None:
                leaf = _Leaf(path, self._twin_name(name, prefix), entry, layer)
                self.leaves[key] = leaf
            self.by_path[path] = leaf

    def _twin_name(self, name: str, prefix: str) -> str:
        if prefix:
            if name in self._used:
                base = prefix.replace("/", "_") + name
                name, n = base, 1
                while name in self._used:
                    name, n = f"{base}_{n}", n + 1
            self._used.add(name)
        return name

    def leaf_for(self, model_path: str, name: str) -> _Leaf:
        return self.by_path[model_path + name]

    @property
    def layer_map(self) -> dict[str, str]:
        out = {name: name for name in self.inputs}
        out.update({path: leaf.name for path, leaf in self.by_path.items()})
        return out


# --------------------------------------------------------------------------- structures


def _is_history(x) -> bool:
    return (
        isinstance(x, (list, tuple))
        and len(x) == 3
        and isinstance(x[0], str)
        and isinstance(x[1], int)
        and isinstance(x[2], int)
    )


def _map_histories(fn, struct):
    """Map ``fn`` over the ``[layer, node, tensor]`` triples of an input/output spec."""
    if _is_history(struct):
        return fn(struct)
    if isinstance(struct, dict):
        return {k: _map_histories(fn, v) for k, v in struct.items()}
    return [_map_histories(fn, v) for v in struct]


def _flatten(struct) -> list:
    """Leaves in Keras' own order (dict keys sorted), as ``keras.tree.flatten``."""
    if isinstance(struct, dict):
        return [x for k in sorted(struct) for x in _flatten(struct[k])]
    if isinstance(struct, (list, tuple)):
        return [x for v in struct for x in _flatten(v)]
    return [struct]


def _tensor_histories(struct) -> list:
    """The ``keras_history`` of every serialized tensor in a call's arguments."""
    if isinstance(struct, dict):
        if struct.get("class_name") == _KERAS_TENSOR:
            return [struct["config"]["keras_history"]]
        return [h for v in struct.values() for h in _tensor_histories(v)]
    if isinstance(struct, (list, tuple)):
        return [h for v in struct for h in _tensor_histories(v)]
    return []


def _is_op(entry: dict) -> bool:
    module = entry.get("module") or ""
    return module.startswith("keras.src.ops") or module.startswith("keras.ops")


def _mask_only_ops(config: dict) -> set[str]:
    """Raw ops whose results only ever reach ``mask=`` arguments.

    A Keras 3 functional graph records the masks that layers such as
    ``Embedding(mask_zero=True)`` compute: the ``keras.ops`` calls in
    ``compute_mask`` become nodes, and their result is passed as ``mask=`` to the
    next layer. tf_keras carries such masks along by itself, so these ops are
    left out of the twin instead of being reported as unsupported.
    """
    ops = {_entry_name(e) for e in config.get("layers", []) if _is_op(e)}
    if not ops:
        return set()
    users: dict[str, set] = {op: set() for op in ops}
    for entry in config["layers"]:
        for node in entry.get("inbound_nodes", []):
            kwargs = dict(node.get("kwargs", {}))
            for h in _tensor_histories(kwargs.pop("mask", None)):
                users.get(h[0], set()).add(None)
            for h in _tensor_histories([node.get("args", []), kwargs]):
                users.get(h[0], set()).add(_entry_name(entry))
    for h in _histories(config.get("output_layers", [])):
        users.get(h[0], set()).add("")
    only = set(ops)
    changed = True
    while changed:
        changed = False
        for op in sorted(only):
            if not users[op] or any(u is not None and u not in only for u in users[op]):
                only.discard(op)
                changed = True
    return only


def _node_kwargs(kwargs: dict, mask_only: set[str]) -> dict:
    """A call's recorded keyword arguments, as its twin should get them."""
    out = {}
    for key, value in kwargs.items():
        if key == "training":
            # Keras 3 lets the outer call's training flag override a recorded one;
            # tf_keras would freeze it, so leave it to the outer call there too.
            continue
        if key == "mask":
            found = _tensor_histories(value)
            if not found:
                continue  # no mask, or one None per input
            if all(h[0] in mask_only for h in found):
                out[key] = _AUTO_MASK
                continue
        out[key] = value
    return out


def _histories(struct) -> list:
    """The ``[layer, node, tensor]`` triples of a spec, in flattening order."""
    if _is_history(struct):
        return [struct]
    if isinstance(struct, dict):
        return [h for k in sorted(struct) for h in _histories(struct[k])]
    return [h for v in struct for h in _histories(v)]


# --------------------------------------------------------------------------- building


class _Builder:
    """Replays a Keras 3 model's config with ``tf_keras`` layers."""

    def __init__(self, plan: _Plan, translator: _Translator):
        self.plan = plan
        self.tr = translator
        self.tfk = translator.tfk

    def run_model(self, class_name: str, config: dict, path: str, inputs: list | None):
        """Replay one (sub-)model; ``inputs`` is None at the top, where Inputs are made."""
        if class_name == "Sequential":
            return self._run_sequential(config, path, inputs)
        produced: dict[tuple[str, int], list] = {}
        spec = config["input_layers"]
        names = [h[0] for h in _histories(spec)]
        if inputs is None:
            by_name = {_entry_name(e): e for e in config["layers"]}
            inputs = [self._make_input(by_name[n]["config"]) for n in names]
        elif len(inputs) != len(names):
            raise TwinError(
                f"Sub-model '{path.rstrip('/')}' takes {len(names)} inputs, got {len(inputs)}."
            )
        for name, tensor in zip(names, inputs):
            produced[(name, 0)] = [tensor]
        mask_only = self.plan.mask_only[path]
        pending = [
            (entry, i, node)
            for entry in config["layers"]
            if entry["class_name"] != "InputLayer" and _entry_name(entry) not in mask_only
            for i, node in enumerate(entry.get("inbound_nodes", []))
        ]
        while pending:
            waiting = []
            for entry, index, node in pending:
                try:
                    args = self._resolve(node.get("args", []), produced)
                    kwargs = _node_kwargs(node.get("kwargs", {}), mask_only)
                    kwargs = self._resolve(kwargs, produced)
                except _NotReady:
                    waiting.append((entry, index, node))
                    continue
                out = self._call(entry, path, args, kwargs)
                produced[(_entry_name(entry), index)] = _flatten(out)
            if len(waiting) == len(pending):
                stuck = ", ".join(sorted({_entry_name(e) for e, _, _ in waiting}))
                raise TwinError(
                    f"Cannot order the calls of layers {stuck}: their inputs never appear."
                )
            pending = waiting
        # In input_layers/output_layers (not in call arguments) a nested Functional's
        # calls are numbered from 1: its node 0 links its own inputs to its outputs.
        functional = {_entry_name(e) for e in config["layers"] if e["class_name"] == "Functional"}

        def tensor(h):
            return produced[(h[0], h[1] - (h[0] in functional))][h[2]]

        in_struct = _map_histories(tensor, spec)
        out_struct = _map_histories(tensor, config["output_layers"])
        return in_struct, out_struct

    def _run_sequential(self, config: dict, path: str, inputs: list | None):
        entries = config["layers"]
        if inputs is None:
            if not entries or entries[0]["class_name"] != "InputLayer":
                raise TwinError(f"Sequential model at '{path or '/'}' has no input shape.")
            x = self._make_input(entries[0]["config"])
        elif len(inputs) != 1:
            raise TwinError(f"Sequential sub-model '{path.rstrip('/')}' got {len(inputs)} inputs.")
        else:
            x = inputs[0]
        first = x
        for entry in entries:
            if entry["class_name"] != "InputLayer":
                x = self._call(entry, path, [x], {})
        return first, x

    def _make_input(self, config: dict):
        cfg = self.tr.layer_config("InputLayer", config)
        shape = cfg.pop("batch_input_shape", None)
        if shape is None:
            raise TwinError(f"Input '{config.get('name')}' has no shape.")
        return self.tfk.Input(
            batch_shape=tuple(shape),
            name=cfg.get("name"),
            dtype=cfg.get("dtype"),
            sparse=cfg.get("sparse") or None,
            ragged=cfg.get("ragged") or None,
        )

    def _resolve(self, struct, produced):
        if isinstance(struct, dict):
            if struct.get("class_name") == _KERAS_TENSOR:
                name, node, index = struct["config"]["keras_history"]
                try:
                    return produced[(name, node)][index]
                except KeyError:
                    raise _NotReady from None
            return {k: self._resolve(v, produced) for k, v in struct.items()}
        if isinstance(struct, (list, tuple)):
            return [self._resolve(v, produced) for v in struct]
        return struct

    def _call(self, entry: dict, path: str, args: list, kwargs: dict):
        name = _entry_name(entry)
        if kwargs.get("mask") is _AUTO_MASK:
            del kwargs["mask"]
            if not any(getattr(t, "_keras_mask", None) is not None for t in _flatten(args)):
                raise TwinError(
                    f"Layer '{path + name}' takes a mask made by keras.ops calls, which tf_keras "
                    "cannot replay; compute it with a layer."
                )
        if entry["class_name"] in _MODEL_CLASSES:
            extra = sorted(k for k, v in kwargs.items() if v is not None)
            if extra:
                raise TwinError(
                    f"Sub-model '{path + name}' is called with {extra}; cannot replay that."
                )
            inputs = _flatten(args[0] if len(args) == 1 else args)
            _, out = self.run_model(entry["class_name"], entry["config"], path + name + "/", inputs)
            return out
        leaf = self.plan.leaf_for(path, name)
        kwargs = _call_kwargs(leaf.twin, kwargs)
        try:
            return leaf.twin(*args, **kwargs)
        except Exception as exc:
            raise TwinError(
                f"The tf_keras twin of layer '{leaf.path}' ({entry['class_name']}) "
                f"failed on its inputs: {exc}"
            ) from exc


def _call_kwargs(twin, kwargs: dict) -> dict:
    """The call options ``twin`` understands; raises for ones that matter but it lacks."""
    params = inspect.signature(twin.call).parameters
    takes_any = any(p.kind == p.VAR_KEYWORD for p in params.values())
    out = {}
    for key, value in kwargs.items():
        if key in params or takes_any:
            out[key] = value
        elif value is not None and value is not False and value is not _AUTO_MASK:
            shown = "a tensor" if _tensor_histories(value) else repr(value)
            raise _Unsupported(f"its call option {key}={shown} has no tf_keras equivalent")
    return out


def _check_calls(plan: _Plan, config: dict, path: str, problems: dict) -> None:
    """Find call options that the twins cannot take, before anything is built."""
    mask_only = plan.mask_only.get(path, set())
    for entry in config["layers"]:
        name = _entry_name(entry)
        if entry["class_name"] in _MODEL_CLASSES:
            _check_calls(plan, entry["config"], path + name + "/", problems)
            continue
        leaf = plan.by_path.get(path + name)
        if leaf is None or leaf.twin is None:
            continue
        for node in entry.get("inbound_nodes", []):
            try:
                _call_kwargs(leaf.twin, _node_kwargs(node.get("kwargs", {}), mask_only))
            except _Unsupported as exc:
                problems.setdefault(leaf.path, (entry["class_name"], str(exc)))


def _format_unsupported(model_name: str, unsupported: list[tuple[str, str, str]]) -> str:
    lines = [f"Model '{model_name}' has layers with no tf_keras twin:"]
    lines += [f"  - {path} ({cls}): {why}" for path, cls, why in unsupported]
    return "\n".join(lines)


def to_tf_keras(model, strict: bool = True) -> TwinResult:
    """Build the ``tf_keras`` twin of a built Keras 3 Functional or Sequential model.

    Args:
        model: the Keras 3 model; it is not changed.
        strict: when true, any layer without a faithful twin raises a
            :class:`TwinError` that lists them all; when false such layers are
            returned in :attr:`TwinResult.unsupported` and ``model`` is ``None``.

    Returns:
        A :class:`TwinResult` with the functional ``tf_keras`` model (nested
        sub-models flattened, weights copied), the layer-name map and the
        unsupported layers.

    Raises:
        TwinError: the model is not a built Functional/Sequential model, some
            layer is unsupported (``strict``), or a twin's weights differ in
            number or shape from its Keras 3 layer.
    """
    plan = _Plan(model)
    translator = _Translator()
    problems: dict[str, tuple[str, str]] = {}
    for leaf in plan.leaves.values():
        cls = leaf.entry["class_name"]
        try:
            reason = _layer_reason(leaf.entry)
            if reason:
                raise _Unsupported(reason)
            config = translator.layer_config(cls, leaf.entry["config"])
            config["name"] = leaf.name
            try:
                leaf.twin = translator.layer_class(cls).from_config(config)
            except Exception as exc:
                raise _Unsupported(f"tf_keras rejected its config ({exc})") from exc
        except _Unsupported as exc:
            problems[leaf.path] = (cls, str(exc))
    _check_calls(plan, plan.config, "", problems)
    unsupported = [(path, cls, why) for path, (cls, why) in problems.items()]
    if unsupported:
        if strict:
            raise TwinError(_format_unsupported(model.name, unsupported), unsupported)
        return TwinResult(None, plan.layer_map, unsupported)

    builder = _Builder(plan, translator)
    try:
        inputs, outputs = builder.run_model(plan.class_name, plan.config, "", None)
    except _Unsupported as exc:  # a call option found only while replaying
        raise TwinError(f"Model '{model.name}': {exc}") from exc
    twin = translator.tfk.Model(inputs=inputs, outputs=outputs, name=model.name)
    for leaf in plan.leaves.values():
        _copy_weights(leaf.layer, leaf.twin, leaf.path, leaf.entry["class_name"], to_twin=True)
    return TwinResult(twin, plan.layer_map, [])


def _shapes(weights) -> list[tuple]:
    return [tuple(w.shape) for w in weights]


def _relative_names(layer, variables, suffix: str) -> list[str]:
    """Weight names below the layer's own scope: ``query/kernel``, ``lstm_cell/bias``."""
    out = []
    for v in variables:
        name = getattr(v, "path", None) or v.name
        if suffix and name.endswith(suffix):
            name = name[: -len(suffix)]
        head = layer.name + "/"
        if head in name:
            name = name[name.rindex(head) + len(head):]
        out.append(name)
    return out


def _weight_order(k3_layer, tfk_layer) -> list[int]:
    """For each tf_keras weight, the index of the Keras 3 weight that fills it.

    Weights are paired by their names below the layer when both sides name them
    alike (TFMOT's strip functions can reorder a layer's weights: a stripped
    ``MultiHeadAttention`` lists all kernels before all biases); otherwise by order.
    """
    k3_names = _relative_names(k3_layer, k3_layer.weights, "")
    tfk_names = _relative_names(tfk_layer, tfk_layer.weights, ":0")
    if (
        len(set(k3_names)) == len(k3_names)
        and len(set(tfk_names)) == len(tfk_names)
        and set(k3_names) == set(tfk_names)
    ):
        position = {name: i for i, name in enumerate(k3_names)}
        return [position[name] for name in tfk_names]
    return list(range(len(tfk_layer.weights)))


def _copy_weights(k3_layer, tfk_layer, path: str, class_name: str, to_twin: bool) -> None:
    k3_weights = k3_layer.get_weights()
    tfk_weights = tfk_layer.get_weights()
    order = _weight_order(k3_layer, tfk_layer) if len(k3_weights) == len(tfk_weights) else []
    paired = [k3_weights[i] for i in order]
    if len(k3_weights) != len(tfk_weights) or _shapes(paired) != _shapes(tfk_weights):
        raise TwinError(
            f"Layer '{path}' ({class_name}): the Keras 3 layer has weights of shapes "
            f"{_shapes(k3_weights)} but its tf_keras twin '{tfk_layer.name}' has "
            f"{_shapes(tfk_weights)}."
        )
    if to_twin:
        tfk_layer.set_weights(paired)
        _refresh(tfk_layer)
    else:
        back = [None] * len(k3_weights)
        for tfk_index, k3_index in enumerate(order):
            back[k3_index] = tfk_weights[tfk_index]
        k3_layer.set_weights(back)
        _refresh(k3_layer)


def _refresh(layer) -> None:
    """Let a preprocessing layer rebuild what it derives from its weights.

    An adapted Keras 3 ``Normalization`` computes its mean and variance tensors
    from its variables in ``finalize_state``; ``set_weights`` alone leaves the old ones.
    """
    finalize = getattr(layer, "finalize_state", None)
    if callable(finalize) and layer.weights:
        finalize()


# --------------------------------------------------------------------------- back


def _tfk_layers_by_name(tfk_model) -> dict[str, Any]:
    out: dict[str, Any] = {}
    stack = list(tfk_model.layers)
    while stack:
        layer = stack.pop(0)
        if hasattr(layer, "layers") and hasattr(layer, "inputs"):  # a nested tf_keras model
            stack.extend(layer.layers)
        else:
            out.setdefault(layer.name, layer)
    return out


def from_tf_keras(tfk_model, like, layer_map: Mapping[str, str] | None = None):
    """Copy a twin's weights into a fresh Keras 3 copy of ``like``.

    The copy is ``keras.models.clone_model(like)``: same architecture and layer
    names, new variables, not compiled. Each Keras 3 layer takes the weights of
    the ``tf_keras`` layer with its twin name (the names :func:`to_tf_keras`
    gives; TFMOT's ``strip_pruning`` and ``strip_clustering`` keep them).

    Args:
        tfk_model: the ``tf_keras`` model, with TFMOT wrappers stripped.
        like: the Keras 3 model that the twin was made from (or one with the
            same architecture).
        layer_map: Keras 3 layer path -> twin layer name, to override the names
            that :func:`to_tf_keras` would give.

    Returns:
        The new Keras 3 model holding the twin's weights.

    Raises:
        TwinError: a layer is missing from ``tfk_model``, its weights differ in
            number or shape, or ``tfk_model`` has weighted layers with no
            counterpart in ``like``.
    """
    keras = backend.keras()
    # Names come from `like` itself: a clone may no longer share a layer between a
    # sub-model and the outer graph, and would name the two copies apart.
    names = _Plan(like).layer_map
    if layer_map:
        names.update(layer_map)
    clone = keras.models.clone_model(like)
    plan = _Plan(clone)
    available = _tfk_layers_by_name(tfk_model)
    used: set[str] = set()
    for path, leaf in plan.by_path.items():
        cls = leaf.entry["class_name"]
        if leaf.layer is None:
            raise TwinError(f"Layer '{path}' ({cls}) has no tf_keras twin.")
        twin_name = names.get(path, leaf.name)
        tfk_layer = available.get(twin_name)
        if tfk_layer is None:
            if not leaf.layer.weights:
                continue  # nothing to copy; a rebuilt twin may drop such layers
            hint = ""
            if any(n.endswith("_" + twin_name) for n in available):
                hint = (
                    " (it looks wrapped: strip TFMOT wrappers with "
                    "strip_pruning/strip_clustering first)"
                )
            raise TwinError(
                f"Layer '{path}' ({cls}) has no layer named '{twin_name}' in the tf_keras "
                f"model '{tfk_model.name}'{hint}."
            )
        used.add(twin_name)
        _copy_weights(leaf.layer, tfk_layer, path, cls, to_twin=False)
    extra = sorted(n for n, layer in available.items() if n not in used and layer.weights)
    if extra:
        raise TwinError(
            f"The tf_keras model '{tfk_model.name}' has weighted layers with no counterpart "
            f"in '{like.name}': {', '.join(extra)}."
        )
    return clone
