"""Shared fixtures: where the real data lives.

The real CIFAR-10 batches and recorded learning curves sit outside the repository, in
``../shared/data`` from the repository root, or wherever ``QHPO_TEST_DATA`` points.
"""

from __future__ import annotations

import os
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parent.parent


def _data_root() -> Path:
    env = os.environ.get("QHPO_TEST_DATA")
    return Path(env) if env else REPO.parent / "shared" / "data"


@pytest.fixture(scope="session")
def data_root() -> Path:
    root = _data_root()
    if not root.is_dir():
        pytest.fail(f"test data folder {root} is missing; set QHPO_TEST_DATA to the folder holding curves/ and cifar-10-batches-py/")
    return root


@pytest.fixture(scope="session")
def curve_table_path(data_root) -> Path:
    return data_root / "curves" / "cifar10_cnn.csv"


@pytest.fixture(scope="session")
def cifar_dir(data_root) -> Path:
    """The folder that contains ``cifar-10-batches-py/``."""
    return data_root
