"""Process environment that CPU training wants.

glibc's default malloc hands large tensors' memory back to the OS after every batch and
faults it in again for the next; these thresholds keep it, which makes CPU training 30-40 %
faster. glibc reads ``GLIBC_TUNABLES`` only when a process starts, so it is set for new
processes (``qhpo run`` re-executes itself once; Ray workers inherit it).

``python -m`` puts the current folder first on ``sys.path``, so a ``torch.py`` or
``optuna.py`` lying there would be imported instead of the package. qhpo starts its own
processes (the re-execution, the workers of ``--workers N``) with :func:`module_command`,
which drops that entry before the module is found.
"""

from __future__ import annotations

import sys

MALLOC_TUNABLES = "glibc.malloc.mmap_threshold=1073741824:glibc.malloc.trim_threshold=4294967296"


#: Runs a module like ``python -m`` without the current folder on ``sys.path`` (``python -P``
#: does the same from Python 3.11 on).
_RUN_MODULE = (
    "import runpy, sys\n"
    "if not getattr(sys.flags, 'safe_path', False): sys.path.pop(0)\n"
    "module = sys.argv.pop(1); "
    "runpy.run_module(module, run_name='__main__', alter_sys=True)"
)


def module_command(module: str, *args: str) -> list[str]:
    """The command line that runs ``python -m module args`` without the current folder on the path."""
    return [sys.executable, "-c", _RUN_MODULE, module, *args]
