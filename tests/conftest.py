"""Shared fixtures: where the real data lives.

Recorded curve tables come from the package (``qhpo.curves.builtin_tables_folder``). CIFAR-10
is looked for in ``QHPO_TEST_DATA``, ``QHPO_DATA_DIR``, ``../shared/data`` beside the
repository and qhpo's download cache, and downloaded into that cache once when none holds it
(see ``cifar_location.py``). Tests that need no CIFAR-10 never look for it.
"""

from __future__ import annotations

import signal
from pathlib import Path

import pytest

from cifar_location import locate_cifar10
from qhpo.curves import builtin_tables_folder


@pytest.fixture(autouse=True)
def _signal_handlers_restored():
    """Each test starts with the SIGINT and SIGTERM handlers the previous one found.

    A Ray Tune run replaces the SIGINT handler of the process that drives it and keeps it
    replaced; a later test that counts on Ctrl-C raising KeyboardInterrupt would then fail.
    """
    saved = {number: signal.getsignal(number) for number in (signal.SIGINT, signal.SIGTERM)}
    yield
    for number, handler in saved.items():
        if handler is not None and signal.getsignal(number) is not handler:
            signal.signal(number, handler)


@pytest.fixture(scope="session")
def curves_dir() -> Path:
    """The folder of the recorded curve tables shipped with qhpo."""
    return builtin_tables_folder()


@pytest.fixture(scope="session")
def curve_table_path(curves_dir) -> Path:
    return curves_dir / "cifar10_cnn.csv"


@pytest.fixture(scope="session")
def cifar_dir() -> Path:
    """The folder that contains ``cifar-10-batches-py/`` (looked for, or downloaded, once per session)."""
    try:
        return locate_cifar10()
    except LookupError as error:
        message = str(error)
    pytest.fail(message, pytrace=False)  # outside the except: one sentence, no chained traceback
