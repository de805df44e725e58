"""Loading a script of the repository (a benchmark or an example) as a module, by path."""

from __future__ import annotations

import importlib.util
import sys
from pathlib import Path
from types import ModuleType

REPO = Path(__file__).resolve().parent.parent


def load_script(relative: str, name: str) -> ModuleType:
    """The module of ``REPO / relative``, executed under ``name``, with the script's folder first
    on ``sys.path`` as when Python runs the script (a benchmark imports its neighbours)."""
    folder = str((REPO / relative).parent)
    if folder not in sys.path:
        sys.path.insert(0, folder)
    spec = importlib.util.spec_from_file_location(name, REPO / relative)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module
