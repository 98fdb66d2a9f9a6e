"""Where the cheatsheet's worked examples disagree with Keras (shown in the app)."""
from __future__ import annotations

import json

from models.paths import cheatsheet_dir


def load_errata() -> dict:
    return json.loads((cheatsheet_dir() / "errata.json").read_text(encoding="utf-8"))


def errata_for(section: str) -> list[dict]:
    return load_errata()["sections"].get(section, [])
