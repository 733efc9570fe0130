"""The research scripts (``research/``), imported for their tests: they are files run as
scripts, not package modules, so they are loaded through their own loader."""

from __future__ import annotations

import sys
from pathlib import Path
from types import ModuleType

RESEARCH = Path(__file__).resolve().parents[1] / "research"


def import_research(name: str) -> ModuleType:
    """``research/<name>.py`` as a module."""
    if str(RESEARCH) not in sys.path:
        sys.path.insert(0, str(RESEARCH))
    from sibling import sibling

    return sibling(name)
