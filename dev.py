#!/usr/bin/env python3
"""One entry point for set-up: create .venv, install LayerForge, then run the app or the tests.

    python3 dev.py run [ARGS...]     # make run   / py dev.py run   on Windows
    python3 dev.py test [PYTEST...]  # make test  / py dev.py test  on Windows

The virtual environment is created on first use and re-installed whenever
pyproject.toml changes, so the two commands are all a newcomer needs.
Only the standard library is used here: this runs before anything is installed.
"""
from __future__ import annotations

import hashlib
import os
import subprocess
import sys
import venv
from pathlib import Path

ROOT = Path(__file__).resolve().parent
VENV = ROOT / ".venv"
STAMP = VENV / ".layerforge-installed"


def _venv_python() -> Path:
    if os.name == "nt":
        return VENV / "Scripts" / "python.exe"
    return VENV / "bin" / "python"


def _wanted_stamp() -> str:
    digest = hashlib.sha256((ROOT / "pyproject.toml").read_bytes()).hexdigest()
    return f"{digest} {sys.version_info[:2]}"


def ensure_env() -> Path:
    """Create the virtual environment and install the project (with test extras) if needed."""
    py = _venv_python()
    if not py.exists():
        print("LayerForge: creating the virtual environment in .venv ...", flush=True)
        venv.EnvBuilder(with_pip=True, upgrade_deps=False).create(VENV)
    if not STAMP.exists() or STAMP.read_text().strip() != _wanted_stamp():
        print("LayerForge: installing dependencies (first run takes a few minutes) ...", flush=True)
        subprocess.check_call([str(py), "-m", "pip", "install", "--quiet", "--upgrade", "pip"])
        subprocess.check_call(
            [str(py), "-m", "pip", "install", "--quiet", "-e", f"{ROOT}[test]"]
        )
        STAMP.write_text(_wanted_stamp())
    return py


def main(argv: list[str]) -> int:
    if not argv or argv[0] not in {"run", "test", "setup"}:
        print(__doc__)
        return 2
    py = ensure_env()
    env = dict(os.environ)
    env.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")
    if argv[0] == "setup":
        return 0
    if argv[0] == "run":
        return subprocess.call([str(py), "-m", "models.cli", "open", *argv[1:]], cwd=ROOT, env=env)
    env.setdefault("QT_QPA_PLATFORM", "offscreen")
    code = subprocess.call([str(py), "-m", "pytest", *argv[1:]], cwd=ROOT, env=env)
    if code == 5:
        # pytest's "no tests were collected" is a failure for us, never a pass.
        print("LayerForge: pytest collected no tests; treating that as a failure.", file=sys.stderr)
        return 1
    return code


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
