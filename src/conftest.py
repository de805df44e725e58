"""Doctest collection of the package: ``pytest --doctest-modules src/qhpo``.

A subpackage whose optional extra is not installed is left out instead of failing to import.
This file sits outside the package, so it is not installed with it.
"""

import importlib.util

collect_ignore_glob = []
if importlib.util.find_spec("ray") is None:
    collect_ignore_glob.append("qhpo/ray/*")
