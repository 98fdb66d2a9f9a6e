"""A template meets other data: its input and head adapt, and the user is told."""
from models import gallery
from models.adapt import adapt_to_data
from models.data import load_dataset
from models.validate import validate


def test_mlp_template_adapts_to_iris():
    project = gallery.open_template("mlp")
    iris = load_dataset("builtin:iris")
    notes = adapt_to_data(project, iris)
    text = "\n".join(notes)
    assert "input 'image' now takes shape (4,)" in text
    assert "output layer 'digit' now has 3 units" in text
    report = validate(project.graph)
    assert report.valid and report.nodes["digit"].output_shape == [None, 3]


def test_binary_data_switches_head_and_loss():
    project = gallery.open_template("mlp")
    notes = adapt_to_data(project, load_dataset("builtin:breast-cancer"))
    assert project.recipe["loss"] == "binary_crossentropy"
    head = project.graph.node("digit").config
    assert head["units"] == 1 and head["activation"] == "sigmoid"
    assert any("sigmoid" in n for n in notes) and any("loss is now" in n for n in notes)


def test_matching_data_changes_nothing():
    project = gallery.open_template("cnn")
    before = project.graph.to_dict()
    assert adapt_to_data(project, load_dataset("builtin:digits")) == []
    assert project.graph.to_dict() == before
