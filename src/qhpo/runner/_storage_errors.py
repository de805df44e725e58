"""The one sentence for a storage that cannot be opened, or whose database server went away."""

from __future__ import annotations

import contextlib
from typing import TYPE_CHECKING

from qhpo._errors import QhpoError

if TYPE_CHECKING:
    from qhpo.runner._storage import StorageLocation

#: Drivers of ``postgresql+DRIVER://`` URLs and the package that brings each.
_DRIVER_PACKAGES = {
    "psycopg": "psycopg[binary]",
    "psycopg2": "psycopg2-binary",
    "pg8000": "pg8000",
    "asyncpg": "asyncpg",
}


def open_error(location: StorageLocation, error: BaseException) -> QhpoError:
    """The one sentence for a storage that cannot be opened (or reached) because of ``error``."""
    text = _first_line(error)
    if "readonly" in text.replace("-", "").replace(" ", "").lower():
        return QhpoError(
            f"the storage {location.describe()!r} is read-only; make it writable or pass another --storage."
        )
    missing = _missing_module(error)
    if missing is not None:
        driver = location.driver or missing
        package = _DRIVER_PACKAGES.get(driver, driver)
        return QhpoError(
            f"the storage {location.describe()!r} needs the database driver {driver!r}, which is not installed; "
            f"install it (pip install {package}) or use a postgresql:// URL (psycopg 3, installed with qhpo)."
        )
    return QhpoError(
        f"cannot open the storage {location.describe()!r} ({type(error).__name__}: {text}); check --storage "
        "and that its database server runs and is reachable."
    )


def connection_lost(location: StorageLocation, error: BaseException) -> QhpoError | None:
    """The one sentence for ``error`` when it says that a database server went away, else None.

    Only for database servers: on a SQLite file an ``OperationalError`` (a lock waited for
    too long) stays what it was.
    """
    if location.kind != "rdb":
        return None
    try:
        import sqlalchemy.exc
    except ImportError:
        return None
    cause: BaseException | None = error  # Optuna wraps a failed commit in its StorageInternalError
    while cause is not None and not isinstance(cause, (sqlalchemy.exc.OperationalError, sqlalchemy.exc.InterfaceError)):
        if isinstance(cause, QhpoError):
            return None  # said already
        cause = cause.__cause__ or (None if cause.__suppress_context__ else cause.__context__)
    if cause is None:
        return None
    return QhpoError(
        f"lost the connection to the storage {location.describe()!r} ({_first_line(cause)}); the trials of this "
        "process stay in the study and are retried: run the same command again once the server is reachable."
    )


@contextlib.contextmanager
def connection_errors(location: StorageLocation):
    """Turn a database server that went away into :func:`connection_lost`'s sentence."""
    try:
        yield
    except Exception as error:
        lost = connection_lost(location, error)
        if lost is None:
            raise
        raise lost from None


def _first_line(error: BaseException) -> str:
    lines = [line.strip() for line in str(error).splitlines() if line.strip()]
    return lines[0] if lines else type(error).__name__


def _missing_module(error: BaseException) -> str | None:
    """The module a failed import named, when opening the storage failed for a missing driver."""
    seen = error
    while seen is not None:
        if isinstance(seen, ModuleNotFoundError) and seen.name:
            return seen.name.split(".")[0]
        seen = seen.__cause__ or seen.__context__
    if isinstance(error, ImportError) and "DB access module" in str(error):
        return ""  # Optuna's message names no module; the URL names the driver
    return None
