"""packaging/: the icon files, the Linux tarball and its per-user install.sh (on a stand-in bundle).

The real bundle (PyInstaller over TensorFlow) takes many minutes to build:
``packaging/build.py`` builds it and tries it; these tests check the pieces
around it quickly.
"""
import importlib.util
import os
import shutil
import subprocess
import sys
import tarfile
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]


def _build_module():
    spec = importlib.util.spec_from_file_location("layerforge_build", ROOT / "packaging" / "build.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_the_icon_is_drawn_at_every_size_with_clear_corners(qapp):
    from desktop.icon import SIZES, app_icon, icon_pixmap

    for size in (16, 256):
        image = icon_pixmap(size).toImage()
        assert (image.width(), image.height()) == (size, size)
        assert image.pixelColor(0, 0).alpha() == 0  # the tile's rounded corner
        assert image.pixelColor(size // 2, size // 2).alpha() == 255
    assert sorted(s.width() for s in app_icon().availableSizes()) == sorted(SIZES)


def test_icon_files_for_windows_and_macos_hold_the_sizes_they_need(qapp, tmp_path):
    from PIL import Image

    files = _build_module().write_icons(tmp_path)
    assert all(f.is_file() and f.stat().st_size > 0 for f in files)
    with Image.open(tmp_path / "layerforge.ico") as ico:
        assert {(16, 16), (32, 32), (48, 48), (256, 256)} <= set(ico.info["sizes"])
    with Image.open(tmp_path / "layerforge.icns") as icns:
        assert icns.size[0] >= 256


def _stand_in_bundle(folder: Path) -> Path:
    bundle = folder / "dist" / "LayerForge"
    bundle.mkdir(parents=True)
    for name in ("LayerForge", "layerforge-cli"):
        program = bundle / name
        program.write_text(f"#!/bin/sh\necho {name} \"$@\"\n")
        program.chmod(0o755)
    return bundle


@pytest.mark.skipif(not sys.platform.startswith("linux") or shutil.which("sh") is None,
                    reason="the Linux installer is a shell script")
def test_the_linux_tarball_installs_for_one_user_and_uninstalls(qapp, tmp_path):
    build = _build_module()
    icons = tmp_path / "icons"
    build.write_icons(icons)
    tarball = build.linux_installer(_stand_in_bundle(tmp_path), icons, tmp_path, "9.9.9")
    assert tarball.name == f"LayerForge-9.9.9-linux-{os.uname().machine}.tar.gz"
    with tarfile.open(tarball) as tar:
        names = set(tar.getnames())
        assert {"LayerForge-9.9.9/install.sh", "LayerForge-9.9.9/layerforge.desktop",
                "LayerForge-9.9.9/layerforge.png", "LayerForge-9.9.9/LayerForge"} <= names
        assert tar.getmember("LayerForge-9.9.9/install.sh").mode & 0o111
        tar.extractall(tmp_path / "unpacked", filter="tar")

    home = tmp_path / "my home"  # a space in the path, as on many desktops
    home.mkdir()
    env = {"HOME": str(home), "PATH": os.environ["PATH"]}
    script = tmp_path / "unpacked" / "LayerForge-9.9.9" / "install.sh"
    done = subprocess.run([str(script)], env=env, capture_output=True, text=True)
    assert done.returncode == 0, done.stderr
    installed = home / ".local" / "opt" / "LayerForge"
    cli = home / ".local" / "bin" / "layerforge"
    assert subprocess.run([str(cli), "train"], capture_output=True, text=True).stdout.strip() \
        == "layerforge-cli train"
    entry = (home / ".local" / "share" / "applications" / "layerforge.desktop").read_text()
    assert f"Exec=\"{installed}/LayerForge\" %f" in entry and "LAYERFORGE_HOME" not in entry
    assert (home / ".local" / "share" / "icons" / "hicolor" / "256x256" / "apps" / "layerforge.png").is_file()

    projects = home / "my.lforge"  # the user's work is not the program's
    projects.write_text("{}")
    done = subprocess.run([str(installed / "install.sh"), "--uninstall"], env=env,
                          capture_output=True, text=True)
    assert done.returncode == 0, done.stderr
    assert not installed.exists() and not cli.exists() and not cli.is_symlink()
    assert projects.is_file()


def test_the_recipe_names_both_programs_and_ships_the_resources():
    spec = (ROOT / "packaging" / "layerforge.spec").read_text()
    compile(spec, "layerforge.spec", "exec")  # it is Python
    for needed in ('name="LayerForge"', 'name="layerforge-cli"', '"resources"', "catalog.json",
                   'collect_data_files("sklearn")'):
        assert needed in spec
    for script in ("studio_main.py", "cli_main.py"):
        assert script in spec and (ROOT / "packaging" / script).is_file()
