"""Build LayerForge's installer for this machine's system, then try what was built.

    .venv/bin/python packaging/build.py [--out build/package] [--skip-bundle] [--no-try]

1. Icons: ``desktop.icon`` drawn as PNGs, a Windows ``.ico`` and a macOS ``.icns``.
2. The bundle: PyInstaller on ``packaging/layerforge.spec`` (one folder holding the
   studio, ``LayerForge``, and the command line, ``layerforge-cli``).
3. The installer: Linux, a ``.tar.gz`` with a desktop entry and ``install.sh``;
   Windows, an Inno Setup ``setup.exe`` (``iscc`` on PATH) or else a ``.zip``;
   macOS, a ``.dmg`` of ``LayerForge.app``.
4. A try-out of the bundle, offline and without a display: the command line lists
   the gallery and trains the MLP template's quick preset, and the studio opens the
   CNN template and saves a screenshot of itself.

Each step prints a line; the last line is JSON (sizes, seconds, what the try-out
found). PyInstaller builds for the system it runs on: build each installer on its
own system (see packaging/README.md). Exit status 1 when a step fails.
"""
from __future__ import annotations

import argparse
import json
import os
import platform
import shutil
import subprocess
import sys
import tarfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))


class BuildError(RuntimeError):
    pass


def write_icons(folder: Path) -> list[Path]:
    """The icon at every size as PNG, plus ``layerforge.ico`` and ``layerforge.icns``."""
    os.environ.setdefault("QT_QPA_PLATFORM", "offscreen")
    from PIL import Image
    from PySide6.QtWidgets import QApplication

    from desktop.icon import SIZES, icon_pixmap

    app = QApplication.instance() or QApplication([])  # noqa: F841 (pixmaps need one)
    folder.mkdir(parents=True, exist_ok=True)
    pngs = []
    for size in SIZES:
        path = folder / f"layerforge-{size}.png"
        if not icon_pixmap(size).save(str(path)):
            raise BuildError(f"could not write {path}")
        pngs.append(path)
    biggest = Image.open(pngs[-1])
    biggest.save(folder / "layerforge.ico", sizes=[(s, s) for s in SIZES if s <= 256])
    biggest.save(folder / "layerforge.icns")
    return pngs + [folder / "layerforge.ico", folder / "layerforge.icns"]


def build_bundle(out: Path) -> Path:
    """Run PyInstaller on the spec; returns the bundle folder (``.app`` on macOS)."""
    cmd = [sys.executable, "-m", "PyInstaller", str(ROOT / "packaging" / "layerforge.spec"),
           "--noconfirm", "--clean", "--log-level", "WARN",
           "--distpath", str(out / "dist"), "--workpath", str(out / "work")]
    try:
        import PyInstaller  # noqa: F401
    except ImportError:
        raise BuildError("PyInstaller is not installed: .venv/bin/pip install -e "
                         "'.[package]' (see packaging/README.md)") from None
    done = subprocess.run(cmd, cwd=ROOT)
    if done.returncode != 0:
        raise BuildError(f"PyInstaller failed (exit {done.returncode}); its messages are above")
    return out / "dist" / ("LayerForge.app" if sys.platform == "darwin" else "LayerForge")


def programs(bundle: Path) -> tuple[Path, Path]:
    """The studio and the command line inside a bundle."""
    folder = bundle / "Contents" / "MacOS" if bundle.suffix == ".app" else bundle
    ext = ".exe" if sys.platform == "win32" else ""
    return folder / f"LayerForge{ext}", folder / f"layerforge-cli{ext}"


def try_bundle(bundle: Path, scratch: Path) -> dict:
    """Run the built programs the way a user would first run them, offline and headless."""
    studio, cli = programs(bundle)
    scratch.mkdir(parents=True, exist_ok=True)
    env = dict(os.environ, QT_QPA_PLATFORM="offscreen", LAYERFORGE_DATA_DIR=str(scratch / "data"))
    for name in ("PYTHONPATH", "PYTHONHOME", "LAYERFORGE_RESOURCES"):  # only what it ships
        env.pop(name, None)
    found: dict = {}

    def run(args, seconds):
        t0 = time.perf_counter()
        done = subprocess.run(args, env=env, cwd=scratch, capture_output=True, text=True,
                              timeout=seconds)
        if done.returncode != 0:
            tail = (done.stderr or done.stdout).strip().splitlines()[-5:]
            raise BuildError(f"{Path(args[0]).name} {' '.join(args[1:3])} failed (exit "
                             f"{done.returncode}): {' | '.join(tail)}")
        return done.stdout, round(time.perf_counter() - t0, 2)

    out, found["gallery_seconds"] = run([str(cli), "gallery", "list", "--json"], 300)
    found["gallery_templates"] = len(json.loads(out.strip().splitlines()[-1])["templates"])
    out, found["train_seconds"] = run([str(cli), "train", "gallery:mlp", "--quick", "--json"], 900)
    found["mlp_test_accuracy"] = json.loads(out.strip().splitlines()[-1])["metrics"]["test_accuracy"]
    shot = scratch / "studio.png"
    _, found["studio_seconds"] = run([str(studio), "gallery:cnn", "--screenshot", str(shot)], 300)
    if not shot.is_file() or shot.stat().st_size < 10_000:
        raise BuildError(f"the studio did not save its screenshot ({shot})")
    found["studio_screenshot"] = str(shot)
    return found


def linux_installer(bundle: Path, icons: Path, out: Path, version: str) -> Path:
    """A tarball: the bundle, its icon, a desktop entry and ``install.sh`` (per user, no root)."""
    shutil.copy(icons / "layerforge-256.png", bundle / "layerforge.png")
    shutil.copy(ROOT / "packaging" / "linux" / "layerforge.desktop", bundle / "layerforge.desktop")
    shutil.copy(ROOT / "packaging" / "linux" / "install.sh", bundle / "install.sh")
    (bundle / "install.sh").chmod(0o755)
    target = out / f"LayerForge-{version}-linux-{platform.machine()}.tar.gz"
    with tarfile.open(target, "w:gz", compresslevel=6) as tar:  # the default, 9, is slow on 2 GiB
        tar.add(bundle, arcname=f"LayerForge-{version}")
    return target


def windows_installer(bundle: Path, out: Path, version: str) -> Path:
    """Inno Setup's ``setup.exe`` when ``iscc`` is on PATH, else a zip of the bundle."""
    iscc = shutil.which("iscc") or shutil.which("ISCC")
    if iscc:
        done = subprocess.run([iscc, f"/DAppVersion={version}", f"/DBundle={bundle}",
                               f"/O{out}", str(ROOT / "packaging" / "windows" / "layerforge.iss")])
        if done.returncode != 0:
            raise BuildError(f"Inno Setup failed (exit {done.returncode})")
        return out / f"LayerForge-{version}-setup.exe"
    archive = shutil.make_archive(str(out / f"LayerForge-{version}-windows"), "zip",
                                  bundle.parent, bundle.name)
    return Path(archive)


def macos_installer(bundle: Path, out: Path, version: str) -> Path:
    """A compressed disk image holding ``LayerForge.app`` and a link to /Applications."""
    staging = out / "dmg"
    shutil.rmtree(staging, ignore_errors=True)
    staging.mkdir(parents=True)
    shutil.copytree(bundle, staging / bundle.name, symlinks=True)
    (staging / "Applications").symlink_to("/Applications")
    target = out / f"LayerForge-{version}-macos-{platform.machine()}.dmg"
    target.unlink(missing_ok=True)
    done = subprocess.run(["hdiutil", "create", "-volname", "LayerForge", "-srcfolder",
                           str(staging), "-format", "UDZO", str(target)])
    if done.returncode != 0:
        raise BuildError(f"hdiutil failed (exit {done.returncode})")
    return target


def folder_size(path: Path) -> int:
    return sum(f.stat().st_size for f in path.rglob("*") if f.is_file() and not f.is_symlink())


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--out", default=str(ROOT / "build" / "package"))
    ap.add_argument("--skip-bundle", action="store_true",
                    help="keep the bundle already in OUT/dist (remake the installer and try it)")
    ap.add_argument("--no-try", action="store_true", help="do not run the built programs")
    args = ap.parse_args(argv)
    from models import __version__

    out = Path(args.out).resolve()
    out.mkdir(parents=True, exist_ok=True)
    result: dict = {"platform": sys.platform, "machine": platform.machine(), "version": __version__}
    try:
        t0 = time.perf_counter()
        write_icons(out / "icons")
        print(f"icons: {out / 'icons'}", flush=True)
        bundle = out / "dist" / ("LayerForge.app" if sys.platform == "darwin" else "LayerForge")
        if not args.skip_bundle or not bundle.exists():
            bundle = build_bundle(out)
        result["bundle_seconds"] = round(time.perf_counter() - t0, 1)
        result["bundle"] = str(bundle)
        result["bundle_mb"] = round(folder_size(bundle) / 2**20, 1)
        print(f"bundle: {bundle} ({result['bundle_mb']} MiB, {result['bundle_seconds']} s)", flush=True)
        if not args.no_try:
            result["try"] = try_bundle(bundle, out / "try")
            print(f"tried: {result['try']}", flush=True)
        if sys.platform == "win32":
            installer = windows_installer(bundle, out, __version__)
        elif sys.platform == "darwin":
            installer = macos_installer(bundle, out, __version__)
        else:
            installer = linux_installer(bundle, out / "icons", out, __version__)
        result["installer"] = str(installer)
        result["installer_mb"] = round(installer.stat().st_size / 2**20, 1)
        print(f"installer: {installer} ({result['installer_mb']} MiB)", flush=True)
    except (BuildError, subprocess.TimeoutExpired, OSError) as exc:
        result["error"] = " ".join(str(exc).split())
        print(f"build failed: {result['error']}", file=sys.stderr)
        print(json.dumps(result))
        return 1
    print(json.dumps(result))
    return 0


if __name__ == "__main__":
    sys.exit(main())
