"""Shared fixtures: where the real data lives.

Recorded curve tables come from the package (``qhpo.curves.builtin_tables_folder``). CIFAR-10
is looked for in ``QHPO_TEST_DATA``, ``QHPO_DATA_DIR``, ``../shared/data`` beside the
repository and qhpo's download cache, and downloaded into that cache once when none holds it
(see ``cifar_location.py``). Tests that need no CIFAR-10 never look for it.
"""

from __future__ import annotations

from pathlib import Path

import pytest

from cifar_location import locate_cifar10
from qhpo.curves import builtin_tables_folder


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
