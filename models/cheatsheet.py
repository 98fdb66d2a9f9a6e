"""The cheatsheet that ships in ``resources/cheatsheet``: its numbered sections, by number."""
from __future__ import annotations

import functools
import re

from models.paths import cheatsheet_dir

_HEADING = re.compile(r"^#+\s*(\d+(?:\.\d+)*)\.?\s+(.+?)\s*$")


@functools.lru_cache(maxsize=4)
def _sections(path: str, mtime_ns: int) -> dict[str, str]:
    out: dict[str, str] = {}
    with open(path, encoding="utf-8") as f:
        for line in f:
            match = _HEADING.match(line)
            if match:
                out.setdefault(match.group(1), match.group(2).replace("**", "").strip())
    return out


def sections() -> dict[str, str]:
    """Each numbered heading's title by its number: ``"7.6.2" -> "Graph Convolutional Networks (GCN)"``.

    Returns:
        The headings in the order of the sheet; an empty dict when the sheet
        does not ship (e.g. a trimmed bundle).
    """
    path = cheatsheet_dir() / "cheatsheet.md"
    try:
        return _sections(str(path), path.stat().st_mtime_ns)
    except OSError:
        return {}


def section_title(section: str) -> str:
    """The heading of ``section`` (``"7.2.1"``), or ``""`` when the sheet has none."""
    return sections().get(str(section).strip().rstrip("."), "")


__all__ = ["sections", "section_title"]
