"""The layer catalog: complete, fresh, exact configs, sound metadata, TF-free reading."""
from __future__ import annotations

import copy
import inspect
import json
import subprocess
import sys
from pathlib import Path

import pytest

from models import catalog as cat_mod
from models.catalog import (
    CATALOG_PATH,
    CATEGORIES,
    DRAWN_SEEDS,
    EXCLUSIONS,
    PLAIN_TYPES,
    load_catalog,
    make_node,
)
from models.graph import SLOT, Graph, map_slots

REPO = Path(__file__).resolve().parents[2]
CATALOG = load_catalog()
ENTRIES = {e.class_name: e for e in CATALOG.entries}
PARAM_TYPES = {"int", "float", "bool", "str", "choice", "tuple", "activation", "initializer",
               "regularizer", "constraint", "layer", "dtype", "any"}


@pytest.fixture(scope="module")
def keras():
    from models import backend

    return backend.keras()


@pytest.fixture(scope="module")
def fresh(keras):
    return cat_mod.build_catalog()


def _public_layers(keras) -> dict[str, type]:
    return {
        name: obj for name in dir(keras.layers)
        if not name.startswith("_")
        and inspect.isclass(obj := getattr(keras.layers, name))
        and issubclass(obj, keras.layers.Layer)
    }


def _deserialize(keras, entry):
    # Keras's from_config pops keys (RNN "cell", wrappers' "layer") from the
    # dict it is given, so it only ever sees a copy.
    return keras.saving.deserialize_keras_object({
        "module": entry.module,
        "class_name": entry.class_name,
        "config": copy.deepcopy(entry.default_config),
        "registered_name": entry.registered_name,
    })


# --------------------------------------------------------------------------- completeness


def test_every_public_layer_is_cataloged_or_excluded(keras):
    public = _public_layers(keras)
    missing = [n for n in public if n not in CATALOG and n not in EXCLUSIONS]
    assert not missing, (
        f"keras.layers has layers the catalog neither offers nor excludes: {missing}; "
        "add them (or an exclusion with its reason) in models/catalog.py and run `make catalog`"
    )
    for name, cls in public.items():
        if name in CATALOG:
            entry = CATALOG.get(name)
            if entry.module == "keras.layers":
                assert getattr(keras.layers, entry.class_name) is cls, f"{name} maps to the wrong entry"


def test_exclusions_name_real_layers_and_are_justified(keras):
    public = _public_layers(keras)
    stale = [n for n in EXCLUSIONS if n not in public]
    assert not stale, f"EXCLUSIONS names classes keras.layers no longer has: {stale}"
    both = [n for n in EXCLUSIONS if n in CATALOG]
    assert not both, f"excluded yet in the catalog: {both}"
    for name, why in EXCLUSIONS.items():
        assert why.strip() and "\n" not in why, name


def test_aliases_are_one_entry_per_class(keras):
    conv = CATALOG.get("Convolution2D")
    assert conv is CATALOG.get("Conv2D") and conv.class_name == "Conv2D"
    assert "Convolution2D" in conv.aliases
    classes = {}
    for entry in CATALOG.entries:
        if entry.module == "keras.layers":
            cls = getattr(keras.layers, entry.class_name)
            assert cls not in classes, f"{entry.class_name} and {classes.get(cls)} are the same class"
            classes[cls] = entry.class_name


def test_layerforge_layers_are_cataloged(keras):
    import models.layers as lf

    ours = [n for n in dir(lf) if inspect.isclass(getattr(lf, n))
            and issubclass(getattr(lf, n), keras.layers.Layer)]
    assert "Squash" in ours
    for name in ours:
        entry = CATALOG.get(name)
        assert entry is not None, f"models.layers.{name} is not in the catalog; run `make catalog`"
        assert entry.category == "layerforge"
        assert entry.registered_name == f"layerforge>{name}"


def test_cached_catalog_is_fresh(fresh):
    cached = json.loads(CATALOG_PATH.read_text(encoding="utf-8"))
    if cached != fresh:
        old = {e["class_name"]: e for e in cached["entries"]}
        new = {e["class_name"]: e for e in fresh["entries"]}
        changed = sorted(n for n in old.keys() & new.keys() if old[n] != new[n])
        pytest.fail(
            "models/catalog.json is stale; run `make catalog`. "
            f"keras {cached.get('keras_version')} -> {fresh.get('keras_version')}; "
            f"added {sorted(new.keys() - old.keys())}, removed {sorted(old.keys() - new.keys())}, "
            f"changed {changed}"
        )
    # Byte for byte too: the file is what --write produces.
    assert CATALOG_PATH.read_text(encoding="utf-8") == cat_mod.dumps(fresh)


def test_check_flag_reports_a_stale_file(fresh, tmp_path, monkeypatch, capsys):
    monkeypatch.setattr(cat_mod, "build_catalog", lambda: fresh)
    path = tmp_path / "catalog.json"
    monkeypatch.setattr(cat_mod, "CATALOG_PATH", path)
    path.write_text(cat_mod.dumps(fresh), encoding="utf-8")
    assert cat_mod.main(["--check"]) == 0
    stale = copy.deepcopy(fresh)
    stale["entries"].pop()
    path.write_text(cat_mod.dumps(stale), encoding="utf-8")
    assert cat_mod.main(["--check"]) == 1
    assert "make catalog" in capsys.readouterr().err


def test_no_process_specific_values():
    text = CATALOG_PATH.read_text(encoding="utf-8")
    assert " at 0x" not in text  # object reprs
    for entry in CATALOG.entries:
        for key, value in entry.default_config.items():
            if key == "seed":
                assert value is None, f"{entry.class_name} stores a drawn seed {value}"


# --------------------------------------------------------------------------- entries


@pytest.mark.parametrize("name", sorted(n for n, e in ENTRIES.items() if e.category != "input"))
def test_default_config_round_trips(keras, name):
    entry = ENTRIES[name]
    layer = _deserialize(keras, entry)
    assert isinstance(layer, keras.layers.Layer)
    got = json.loads(json.dumps(layer.get_config()))
    for key in DRAWN_SEEDS.get(name, ()):
        assert isinstance(got[key], int)  # Keras drew one; the catalog keeps None
        got[key] = None
    assert got == entry.default_config
    serialized = keras.saving.serialize_keras_object(layer)
    assert (serialized["module"], serialized["registered_name"]) == (entry.module, entry.registered_name)


def test_input_layer_entry(keras):
    entry = CATALOG.get("InputLayer")
    assert entry.category == "input" and entry.inputs == {"kind": "none"}
    layer = keras.layers.InputLayer(**copy.deepcopy(entry.default_config))
    assert json.loads(json.dumps(layer.get_config())) == entry.default_config
    assert entry.default_config["batch_shape"] == [None, 32]


def test_entries_are_well_formed():
    assert len(CATALOG) == len(ENTRIES) > 100
    for entry in CATALOG.entries:
        assert entry.category in CATEGORIES, entry.class_name
        assert entry.default_config["name"], entry.class_name
        kind = entry.inputs["kind"]
        assert kind in {"none", "single", "list", "positional"}, entry.class_name
        assert (kind == "none") == (entry.category == "input"), entry.class_name


def test_descriptions_are_one_unique_line_of_our_own(keras):
    seen = {}
    for entry in CATALOG.entries:
        text = entry.description
        assert text.strip() and "\n" not in text and len(text) < 130, entry.class_name
        assert text not in seen, f"{entry.class_name} and {seen.get(text)} share a description"
        seen[text] = entry.class_name
        if entry.module == "keras.layers":
            doc = inspect.getdoc(getattr(keras.layers, entry.class_name)) or ""
            assert text != doc.strip().split("\n")[0].strip(), f"{entry.class_name} copies its docstring"
    assert "adapt()" in CATALOG.get("Normalization").description


@pytest.mark.parametrize("name", sorted(ENTRIES))
def test_params_describe_the_config(name):
    entry = ENTRIES[name]
    config = entry.default_config
    names = [p["name"] for p in entry.params]
    assert len(names) == len(set(names))
    assert set(names) == set(config) - {"name"}, "params must cover exactly the config keys"
    for p in entry.params:
        where = f"{name}.{p['name']}"
        assert p["type"] in PARAM_TYPES, where
        json.dumps(p["default"])
        if p["type"] in PLAIN_TYPES:
            assert p["default"] == config[p["name"]], f"{where}: default {p['default']!r} vs config {config[p['name']]!r}"
        if "choices" in p and p["default"] is not None:
            assert p["default"] in p["choices"], where
        if p["type"] == "choice":
            assert p.get("choices"), where
        if isinstance(p["default"], (int, float)) and not isinstance(p["default"], bool):
            assert p.get("min", -float("inf")) <= p["default"] <= p.get("max", float("inf")), where


def test_curated_param_metadata():
    conv1d = CATALOG.get("Conv1D")
    assert conv1d.param("padding")["choices"] == ["valid", "same", "causal"]
    assert "causal" not in CATALOG.get("Conv2D").param("padding")["choices"]
    assert CATALOG.get("Conv2D").param("data_format")["choices"] == ["channels_last", "channels_first"]
    rate = CATALOG.get("Dropout").param("rate")
    assert (rate["type"], rate["min"], rate["max"], rate["required"]) == ("float", 0.0, 1.0, True)
    dense_units = CATALOG.get("Dense").param("units")
    assert dense_units["min"] == 1 and dense_units["required"] and dense_units["default"] == 32
    act = CATALOG.get("Dense").param("activation")
    assert act["type"] == "activation" and {"relu", "softmax", "linear"} <= set(act["choices"])
    assert "bicubic" in CATALOG.get("Resizing").param("interpolation")["choices"]
    assert CATALOG.get("RandomRotation").param("interpolation")["choices"] == ["nearest", "bilinear"]
    assert CATALOG.get("Bidirectional").param("layer")["type"] == "layer"


def test_port_specs():
    assert CATALOG.get("Dense").inputs == {"kind": "single", "names": ["input"]}
    for name in ("Add", "Multiply", "Average", "Maximum", "Minimum", "Concatenate"):
        assert CATALOG.get(name).inputs == {"kind": "list", "min": 2, "max": None}, name
    for name in ("Subtract", "Dot", "HashedCrossing"):
        assert CATALOG.get(name).inputs == {"kind": "list", "min": 2, "max": 2}, name
    for name in ("Attention", "AdditiveAttention"):
        assert CATALOG.get(name).inputs == {
            "kind": "list", "names": ["query", "value", "key"], "min": 2, "max": 3}
    for name in ("MultiHeadAttention", "GroupQueryAttention"):
        assert CATALOG.get(name).inputs == {
            "kind": "positional", "names": ["query", "value"], "kwargs": ["key"]}


def test_multi_input_specs_match_keras_calls(keras):
    """Call each multi-input layer the way its port spec says, with every slot filled."""
    def tensors(n, shape=(4, 8), dtype="float32"):
        return [keras.Input(shape, dtype=dtype) for _ in range(n)]

    checked = set()
    for entry in CATALOG.entries:
        spec = entry.inputs
        if spec["kind"] in ("none", "single"):
            continue
        layer = _deserialize(keras, entry)
        if entry.class_name == "HashedCrossing":
            ins = tensors(spec["max"], (1,), "int64")
        elif entry.class_name == "CategoryEncoding":
            layer = keras.layers.CategoryEncoding(num_tokens=10, output_mode="count")
            ins = [keras.Input((3,), dtype="int32"), keras.Input((3,))]
        elif entry.registered_name in ("layerforge>MessagePassing", "layerforge>GraphConv",
                                       "layerforge>GraphAttention"):
            ins = tensors(2, (4, 4))  # features and adjacency of 4 nodes
        else:
            ins = tensors(spec.get("max") or 3)
        if spec["kind"] == "list":
            out = layer(ins)
        else:
            n = len(spec["names"])
            out = layer(*ins[:n], **dict(zip(spec["kwargs"], ins[n:])))
        assert out is not None
        checked.add(entry.class_name)
    assert {"Add", "Dot", "Attention", "MultiHeadAttention", "GroupQueryAttention",
            "GraphConv"} <= checked


# --------------------------------------------------------------------------- nodes


def test_make_node_dense_is_a_copy():
    g = Graph()
    node = make_node("Dense", g)
    assert (node.name, node.class_name, node.module, node.registered_name) == (
        "dense", "Dense", "keras.layers", None)
    assert node.config["name"] == "dense" and node.config["units"] == 32
    assert [c.to_dict() for c in node.calls] == [{"args": [{SLOT: 0}], "kwargs": {}, "slots": ["input"]}]
    node.config["units"] = 7
    assert CATALOG.get("Dense").default_config["units"] == 32
    g.add_node(node)
    assert make_node("Dense", g).name == "dense_1"


def test_make_node_add_grows_on_connect():
    g = Graph()
    a, b, c = (g.add_node(make_node("InputLayer", g)) for _ in range(3))
    add = g.add_node(make_node("Add", g))
    call = add.calls[0]
    assert call.args == [[{SLOT: 0}, {SLOT: 1}]] and call.variadic
    assert [s.name for s in call.slots] == ["input", "input_1"]
    for src in (a, b, c):
        g.connect(src.name, add.name)
    assert call.args == [[{SLOT: 0}, {SLOT: 1}, {SLOT: 2}]]
    assert not make_node("Subtract").calls[0].variadic


def test_make_node_multi_head_attention():
    call = make_node("MultiHeadAttention").calls[0]
    assert call.args == [{SLOT: 0}, {SLOT: 1}]
    assert call.kwargs == {"key": {SLOT: 2}}
    assert [(s.name, s.optional) for s in call.slots] == [
        ("query", False), ("value", False), ("key", True)]
    # An unconnected key is left out of the call.
    assert map_slots(call.kwargs, lambda i: None) == {}


def test_make_node_attention():
    call = make_node("Attention").calls[0]
    assert call.args == [[{SLOT: 0}, {SLOT: 1}, {SLOT: 2}]] and not call.variadic
    assert [(s.name, s.optional) for s in call.slots] == [
        ("query", False), ("value", False), ("key", True)]
    assert map_slots(call.args, lambda i: f"t{i}" if i < 2 else None) == [["t0", "t1"]]


def test_make_node_input_and_aliases():
    node = make_node("InputLayer")
    assert node.is_input and node.calls == [] and node.name == "input_layer"
    assert node.config["batch_shape"] == [None, 32]
    assert make_node("Convolution2D").class_name == "Conv2D"
    gqa = make_node("GroupedQueryAttention")
    assert gqa.class_name == "GroupQueryAttention" and gqa.name == "grouped_query_attention"
    with pytest.raises(cat_mod.CatalogError):
        make_node("NoSuchLayer")


def test_nodes_build_a_keras_model(keras):
    g = Graph("m")
    for _ in range(3):
        g.add_node(make_node("InputLayer", g))
    for name in ("input_layer", "input_layer_1", "input_layer_2"):
        g.set_config(name, {"batch_shape": [None, 4, 8]})
    for cls in ("MultiHeadAttention", "Attention", "Add", "Dense"):
        g.add_node(make_node(cls, g))
    g.connect("input_layer", "multi_head_attention")
    g.connect("input_layer_1", "multi_head_attention")
    g.connect("input_layer", "attention")
    g.connect("input_layer_2", "attention")
    for src in ("multi_head_attention", "attention", "input_layer_1"):
        g.connect(src, "add")
    g.connect("add", "dense")
    _, config = g.to_keras_config()
    model = keras.Model.from_config(config)
    assert tuple(model.output.shape) == (None, 4, 32)


# --------------------------------------------------------------------------- reading


def test_reading_loads_no_tensorflow():
    code = (
        "import sys, models.catalog as c\n"
        "cat = c.load_catalog()\n"
        "for n in ('Dense', 'Add', 'MultiHeadAttention', 'Attention', 'InputLayer'): c.make_node(n)\n"
        "cat.search('conv'); cat.categories()\n"
        "bad = sorted(m for m in sys.modules if m.split('.')[0] in ('tensorflow', 'keras', 'tf_keras'))\n"
        "print(len(cat), bad)\n"
        "sys.exit(1 if bad else 0)\n"
    )
    proc = subprocess.run([sys.executable, "-c", code], cwd=REPO, capture_output=True, text=True, timeout=60)
    assert proc.returncode == 0, proc.stdout + proc.stderr
    assert proc.stdout.split()[0] == str(len(CATALOG))


def test_catalog_api():
    assert load_catalog() is CATALOG  # cached in-process
    assert CATALOG.get("nope") is None and "Dense" in CATALOG
    assert CATALOG.get("layerforge>Squash") is CATALOG.get("Squash")
    groups = CATALOG.categories()
    assert list(groups) == [c for c in CATEGORIES if c in groups]
    assert list(groups)[:2] == ["input", "core"]
    assert [e.class_name for e in groups["input"]] == ["InputLayer"]
    assert sum(map(len, groups.values())) == len(CATALOG)
    assert CATALOG.search("conv2d")[0].class_name == "Conv2D"
    assert CATALOG.search("CONVOLUTION2D")[0].class_name == "Conv2D"  # alias, any case
    assert "MaxPooling2D" in [e.class_name for e in CATALOG.search("pooling")]  # category
    assert "Dropout" in [e.class_name for e in CATALOG.search("random fraction")]  # description
    assert CATALOG.search("zzzz-no-such-thing") == []
