"""models.transfer: a trained model's layers as the base of a new one."""
import numpy as np
import pytest

from models import transfer
from models.data import load_dataset
from models.project import new_project
from models.validate import validate


def _keras():
    from models import backend

    return backend.keras()


def small_cnn(classes: int = 10):
    keras = _keras()
    L = keras.layers
    x = keras.Input((8, 8, 1), name="image")
    h = L.Conv2D(4, 3, padding="same", activation="relu", name="conv")(x)
    h = L.MaxPooling2D(2, name="pool")(h)
    h = L.Flatten(name="flatten")(h)
    h = L.Dense(8, activation="relu", name="features")(h)
    y = L.Dense(classes, activation="softmax", name="digit")(h)
    return keras.Model(x, y, name="small_cnn")


@pytest.fixture(scope="module")
def trained_base():
    """A tiny CNN trained one epoch on digits, as a project with weights in memory."""
    from models.build import graph_from_model

    keras = _keras()
    keras.utils.set_random_seed(0)
    model = small_cnn()
    ds = load_dataset({"source": "builtin", "name": "digits"}, limit=300)
    model.compile(optimizer="adam", loss="sparse_categorical_crossentropy", metrics=["accuracy"])
    model.fit(ds.x_train, ds.y_train, epochs=1, verbose=0)
    project = new_project(graph_from_model(model))
    project.dataset = {"source": "builtin", "name": "digits"}
    project.weights = {project.main_name: model.get_weights()}
    project.meta["title"] = "digits base"
    return project, model


def test_cut_points_are_the_inner_layers_used_once(trained_base):
    project, _ = trained_base
    assert transfer.cut_points(project.graph) == ["conv", "pool", "flatten", "features"]
    assert transfer.kept_layers(project.graph, "pool") == ["image", "conv", "pool"]


def test_the_new_graph_keeps_freezes_and_heads_with_exact_configs(trained_base):
    project, _ = trained_base
    graph = transfer.transfer_graph(project.graph, "pool", freeze_until="conv", units=5)
    assert list(graph.nodes) == ["image", "conv", "pool", "head_flatten", "head"]
    assert graph.nodes["conv"].config["trainable"] is False
    assert graph.nodes["pool"].config.get("trainable", True) is True
    head = graph.nodes["head"].config
    assert (head["units"], head["activation"]) == (5, "softmax")
    assert set(head) == set(project.graph.nodes["features"].config)  # a full Dense config
    report = validate(graph)
    assert report.valid, report.errors()
    assert report.nodes["head"].output_shape == [None, 5]
    # A flat cut gets no Flatten; the base graph is never changed.
    flat = transfer.transfer_graph(project.graph, "features", units=3)
    assert "head_flatten" not in flat.nodes and flat.predecessors("head") == ["features"]
    assert "head" not in project.graph.nodes


@pytest.mark.parametrize("keep, freeze, words", [
    ("digit", None, "cannot carry a new head"),
    ("image", None, "cannot carry a new head"),
    ("pool", "features", "not among the kept layers"),
])
def test_bad_choices_are_explained(trained_base, keep, freeze, words):
    project, _ = trained_base
    with pytest.raises(transfer.TransferError, match=words):
        transfer.transfer_graph(project.graph, keep, freeze_until=freeze)


def test_transfer_project_carries_weights_and_sizes_the_head_from_the_data(trained_base):
    project, model = trained_base
    target = load_dataset({"source": "builtin", "name": "digits-5-9"})
    spec = {"source": "builtin", "name": "digits-5-9"}
    new = transfer.transfer_project(project, "features", freeze_until="flatten", dataset=target,
                                    dataset_spec=spec)
    assert new.dataset == spec and new.meta["transfer"]["kept_until"] == "features"
    assert new.recipe["loss"] == "sparse_categorical_crossentropy"
    built = new.build()
    assert built.output_shape == (None, 5)
    for name in ("conv", "features"):
        for a, b in zip(built.get_layer(name).get_weights(), model.get_layer(name).get_weights()):
            np.testing.assert_array_equal(a, b)
    assert not built.get_layer("conv").trainable and built.get_layer("features").trainable
    # One training step moves the head and the unfrozen layer, never the frozen one.
    before = {n: [w.copy() for w in built.get_layer(n).get_weights()] for n in ("conv", "features", "head")}
    built.compile(optimizer="adam", loss="sparse_categorical_crossentropy")
    built.train_on_batch(target.x_train[:16], target.y_train[:16])
    after = {n: built.get_layer(n).get_weights() for n in before}
    np.testing.assert_array_equal(before["conv"][0], after["conv"][0])
    assert not np.array_equal(before["features"][0], after["features"][0])
    assert not np.array_equal(before["head"][0], after["head"][0])


def test_transfer_refuses_what_cannot_work(trained_base):
    project, _ = trained_base
    untrained = project.copy()
    untrained.weights = {}
    with pytest.raises(transfer.TransferError, match="no trained weights"):
        transfer.transfer_project(untrained, "features")
    iris = load_dataset({"source": "builtin", "name": "iris"})
    with pytest.raises(transfer.TransferError, match=r"inputs of shape \(8, 8, 1\), the data has \(4,\)"):
        transfer.transfer_project(project, "features", dataset=iris)
    with pytest.raises(transfer.TransferError, match="cannot carry a new head"):
        transfer.transfer_project(project, "digit")
