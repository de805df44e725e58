"""Where the tests find CIFAR-10, and fetching it once when no folder holds it.

Order: ``QHPO_TEST_DATA``, ``QHPO_DATA_DIR``, ``../shared/data`` beside the repository, then
qhpo's download cache (:func:`qhpo.workload.resolve_data_dir`). When none of them holds
``cifar-10-batches-py/``, qhpo's own downloader fetches it into that cache once.
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from pathlib import Path

from qhpo import QhpoError
from qhpo.workload import CIFAR10_MD5, CIFAR10_URL, download_cifar10, resolve_data_dir

TEST_DATA_ENV = "QHPO_TEST_DATA"
DATA_DIR_ENV = "QHPO_DATA_DIR"
SHARED_DATA = Path(__file__).resolve().parent.parent.parent / "shared" / "data"
_BATCHES = ("data_batch_1", "data_batch_2", "data_batch_3", "data_batch_4", "data_batch_5", "test_batch")


def download_cache(environ: Mapping[str, str]) -> Path:
    """The folder qhpo's downloader fills when no data folder is given (``QHPO_DATA_DIR`` or its default)."""
    return resolve_data_dir(environ.get(DATA_DIR_ENV) or None)


def cifar10_candidates(environ: Mapping[str, str], shared: Path = SHARED_DATA) -> list[Path]:
    """The folders that may contain ``cifar-10-batches-py/``, in the order they are tried."""
    folders = [Path(environ[name]).expanduser() for name in (TEST_DATA_ENV, DATA_DIR_ENV) if environ.get(name)]
    folders += [shared, download_cache(environ)]
    unique: list[Path] = []
    for folder in folders:
        if folder not in unique:
            unique.append(folder)
    return unique


def holds_cifar10(folder: Path) -> bool:
    batches = folder / "cifar-10-batches-py"
    return all((batches / name).is_file() for name in _BATCHES)


def find_cifar10(environ: Mapping[str, str], shared: Path = SHARED_DATA) -> Path | None:
    """The first candidate folder that holds CIFAR-10, or ``None``."""
    return next((folder for folder in cifar10_candidates(environ, shared) if holds_cifar10(folder)), None)


def locate_cifar10(
    environ: Mapping[str, str] = os.environ,
    shared: Path = SHARED_DATA,
    *,
    url: str = CIFAR10_URL,
    md5: str = CIFAR10_MD5,
) -> Path:
    """The folder that contains ``cifar-10-batches-py/``, downloading it into the cache if need be.

    Raises:
        LookupError: No folder holds it and the download failed; the message is one sentence
            that names the variable to set.
    """
    found = find_cifar10(environ, shared)
    if found is not None:
        return found
    cache = download_cache(environ)
    try:
        download_cifar10(cache, progress=True, url=url, md5=md5)
    except QhpoError as error:
        raise LookupError(
            f"the tests need CIFAR-10 and found it neither in {TEST_DATA_ENV}, {DATA_DIR_ENV}, {shared} nor the "
            f"download cache {cache}, and {str(error).split(';')[0].rstrip('.')}; set {TEST_DATA_ENV} "
            "to the folder that contains cifar-10-batches-py/."
        ) from None
    return cache
