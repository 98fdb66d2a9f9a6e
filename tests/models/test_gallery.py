"""The gallery: its index, its templates, and that the shipped files match their builders."""
import json
import shutil

import numpy as np
import pytest

from models import gallery
from models.paths import gallery_dir
from models.project import Project
from models.validate import validate


def test_index_lists_every_registered_template():
    gallery._load_builders()
    listed = {t["slug"] for t in gallery.list_templates()}
    assert listed == set(gallery._REGISTRY)
    for t in gallery.list_templates():
        assert (gallery_dir() / f"{t['slug']}.lforge").exists()
        assert t["summary"] and t["title"] and t["section"]


@pytest.mark.parametrize("slug", sorted(t["slug"] for t in gallery.list_templates()))
def test_shipped_template_matches_its_builder(slug, tmp_path, monkeypatch):
    """Someone changed a builder without running `make gallery`? This fails."""
    shipped = Project.load(gallery_dir() / f"{slug}.lforge")
    src_cheatsheet = gallery_dir().parent / "cheatsheet"  # errata, and the RAG template's corpus
    monkeypatch.setenv("LAYERFORGE_RESOURCES", str(tmp_path))
    from models.paths import cheatsheet_dir

    shutil.copytree(src_cheatsheet, tmp_path / "cheatsheet")
    assert cheatsheet_dir() == tmp_path / "cheatsheet"
    fresh = Project.load(gallery.write_all([slug])[0])
    assert json.loads(json.dumps(fresh.to_dict()["graphs"])) == shipped.to_dict()["graphs"], (
        f"resources/gallery/{slug}.lforge is stale: run `make gallery`")
    assert fresh.meta == shipped.meta
    assert fresh.has_weights() == shipped.has_weights()
    if shipped.has_weights():  # templates without weights start from a fresh initialisation
        for a, b in zip(fresh.build().get_weights(), shipped.build().get_weights()):
            np.testing.assert_array_equal(a, b)


@pytest.mark.parametrize("slug", sorted(t["slug"] for t in gallery.list_templates()))
def test_every_template_is_valid_and_laid_out(slug):
    project = gallery.open_template(slug)
    report = validate(project.graph)
    assert report.valid, report.errors()
    assert set(project.positions()) == set(project.graph.nodes)


def test_new_from_template_adds_the_suffix_and_weights(tmp_path):
    out = gallery.new_from_template("seed-cnn", tmp_path / "mine")
    assert out.name == "mine.lforge" and (tmp_path / "mine.weights.h5").exists()
    assert Project.load(out).meta["template"] == "seed-cnn"
