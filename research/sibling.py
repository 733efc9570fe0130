"""Load a sibling research script as a module (the research scripts are run as files, not
installed): one loader for the trainer, the diagnosis and the tests."""

from __future__ import annotations

import importlib
import sys
from pathlib import Path
from types import ModuleType

HERE = Path(__file__).resolve().parent


def sibling(name: str) -> ModuleType:
    """``research/<name>.py`` as the module ``name`` (registered in ``sys.modules``, since
    dataclasses resolve string annotations through it)."""
    if str(HERE) not in sys.path:
        sys.path.insert(0, str(HERE))
    return importlib.import_module(name)
