"""The ``qhpo`` command line: one module per sub-command, registered in ``_main``."""

from qhpo.cli._main import build_parser, main

__all__ = ["build_parser", "main"]
