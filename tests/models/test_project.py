"""The .lforge file: exact round trip, atomic saves, clear errors on damaged files."""
import json
import os

import numpy as np
import pytest

from models.build import graph_from_model
from models.project import FORMAT, VERSION, Project, ProjectError, new_project
from tests.models import archs


def _project():
    model = archs.multi_io_shared()
    p = new_project(graph_from_model(model))
    p.dataset = {"source": "builtin", "name": "digits"}
    p.positions().update({"a": [0.0, 0.0], "shared": [220.0, 55.0]})
    p.view["model"]["collapsed"] = []
    return p, model


def test_save_and_load_is_exact_with_weights(tmp_path):
    p, model = _project()
    path = p.save(tmp_path / "net.lforge", models={"model": model})
    assert path.name == "net.lforge" and (tmp_path / "net.weights.h5").exists()
    data = json.loads(path.read_text())
    assert data["format"] == FORMAT and data["version"] == VERSION
    assert "positions" not in json.dumps(data["graphs"])  # view state lives apart
    q = Project.load(path)
    assert q.to_dict() == json.loads(json.dumps(p.to_dict()))
    x = archs.sample_inputs(model)
    for a, b in zip(model(x), q.build()(x)):
        np.testing.assert_array_equal(np.asarray(a), np.asarray(b))


def test_save_as_carries_weights_to_the_new_name(tmp_path):
    p, model = _project()
    p.save(tmp_path / "one.lforge", models={"model": model})
    q = Project.load(tmp_path / "one.lforge")
    q.save(tmp_path / "two.lforge")
    assert (tmp_path / "two.weights.h5").exists()
    assert Project.load(tmp_path / "two.lforge").has_weights()


def test_failed_save_leaves_the_old_file_intact(tmp_path, monkeypatch):
    p, _ = _project()
    path = p.save(tmp_path / "keep.lforge")
    before = path.read_bytes()
    p.graph.set_config("shared", {"units": 99})

    def boom(*a, **k):
        raise OSError("disk full")

    monkeypatch.setattr(os, "replace", boom)
    with pytest.raises(OSError):
        p.save(path)
    monkeypatch.undo()
    assert path.read_bytes() == before
    assert [f.name for f in tmp_path.iterdir() if f.name.endswith(".tmp")] == []


@pytest.mark.parametrize("content,message", [
    (b"", "empty"),
    (b'{"format": "layerforge-project", "version": 1, "graphs": {"m', "truncated"),
    (b'{"format": "layerforge-project", "version": 1,, }', "corrupt at line 1"),
    (b'{"format": "something-else", "version": 1}', "not a LayerForge project"),
    (b'{"format": "layerforge-project", "version": 99, "graphs": {}}', "newer LayerForge"),
    (b'{"format": "layerforge-project", "version": 1}', "no model graph"),
    (b'{"format": "layerforge-project", "version": 1, "graphs": {"m": {"nodes": [],'
     b' "edges": [["a", 0, 0, "b", 0, 0]]}}}', "missing layer"),
    (b"\xff\xfe\x00garbage", "not UTF-8"),
])
def test_damaged_files_give_clear_errors_and_are_not_touched(tmp_path, content, message):
    path = tmp_path / "bad.lforge"
    path.write_bytes(content)
    with pytest.raises(ProjectError, match=message) as info:
        Project.load(path)
    assert str(path) in str(info.value)
    assert path.read_bytes() == content


def test_truncated_real_project_is_reported_as_truncated(tmp_path):
    p, _ = _project()
    path = p.save(tmp_path / "t.lforge")
    data = path.read_bytes()
    path.write_bytes(data[: len(data) // 2])
    with pytest.raises(ProjectError, match="truncated"):
        Project.load(path)


def test_weights_that_do_not_fit_give_a_clear_error(tmp_path):
    p, model = _project()
    path = p.save(tmp_path / "w.lforge", models={"model": model})
    q = Project.load(path)
    q.graph.set_config("shared", {"units": 3})
    with pytest.raises(ProjectError, match="do not fit"):
        q.build()


def test_missing_file():
    with pytest.raises(ProjectError, match="no such file"):
        Project.load("/nonexistent/x.lforge")


def test_saved_files_get_normal_permissions(tmp_path):
    old = os.umask(0o022)
    try:
        p, _ = _project()
        path = p.save(tmp_path / "perm.lforge")
    finally:
        os.umask(old)
    assert path.stat().st_mode & 0o777 == 0o644
