"""Where a study lives: storage URLs, the run folder, opening the storage, and the claim lock.

``--storage`` accepts a path to a SQLite file (``runs/qhpo.db``), any SQLAlchemy URL
(``sqlite:///runs/qhpo.db``, ``postgresql://...``) or ``journal:PATH`` for an Optuna journal
file (the storage Optuna recommends for many processes on a shared file system). The run
folder, which holds checkpoints and plots, is the folder of the storage file.

Every process on one study takes the study's claim lock (:meth:`StorageLocation.claim`)
to start a trial and to recover the trials of dead processes, so a study never holds more
finished trials than asked for and an interrupted trial is retried exactly once. On
PostgreSQL the database holds that lock (a transaction-level advisory lock), so processes on
any number of hosts share nothing but the URL; on SQLite, a journal file and other database
servers it is an ``flock`` on a file beside the storage (or in the run folder).

Which trials died with their process, and their retries: :mod:`qhpo.runner._recovery`.
"""

from __future__ import annotations

import contextlib
import errno
import os
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import optuna

from qhpo._errors import QhpoError
from qhpo._optuna_schema import (
    ALIVE_ATTR,
    CHECKPOINT_ATTR,
    FAILURE_ATTR,
    HEARTBEAT_ATTR,
    KILLS_ATTR,
    OWNER_ATTR,
    PREDICTOR_ATTR_PREFIX,
    RETRY_OF_ATTR,
)
from qhpo.runner._locks import advisory_lock, file_lock, thread_lock
from qhpo.runner._recovery import (
    GRACE_PERIOD,
    HEARTBEAT_INTERVAL,
    MAX_KILLS,
    enqueue_retry,
    owner_record,
    recover_interrupted_trials,
)
from qhpo.runner._signals import signals_deferred
from qhpo.runner._storage_errors import connection_errors, connection_lost, open_error

__all__ = [
    # where a study lives
    "DEFAULT_STORAGE",
    "StorageLocation",
    "checkpoint_folder",
    "connection_errors",
    "connection_lost",
    "load_study",
    "resolve_storage",
    # importable from here too: the schema's keys, recovery and its settings
    "ALIVE_ATTR",
    "CHECKPOINT_ATTR",
    "FAILURE_ATTR",
    "GRACE_PERIOD",
    "HEARTBEAT_ATTR",
    "HEARTBEAT_INTERVAL",
    "KILLS_ATTR",
    "MAX_KILLS",
    "OWNER_ATTR",
    "PREDICTOR_ATTR_PREFIX",
    "RETRY_OF_ATTR",
    "enqueue_retry",
    "owner_record",
    "recover_interrupted_trials",
    "signals_deferred",
]

#: Default storage when none is given: one SQLite file for every study of this folder.
DEFAULT_STORAGE = "qhpo-runs/qhpo.db"

_SQLITE_TIMEOUT_S = 60  # several processes on one SQLite file wait for the lock instead of failing


@dataclass(frozen=True)
class StorageLocation:
    """A resolved ``--storage`` value.

    Attributes:
        url: What Optuna opens (``sqlite:///...``, another RDB URL, or ``journal:PATH``).
        run_dir: Folder of checkpoints and plots.
        kind: ``"sqlite"``, ``"journal"`` or ``"rdb"``.
    """

    url: str
    run_dir: Path
    kind: str

    def open(self) -> optuna.storages.BaseStorage:
        """The Optuna storage object (one per process)."""
        if self.kind == "journal":
            path = self.url[len("journal:") :]
            from optuna.storages.journal import JournalFileBackend, JournalFileOpenLock

            return optuna.storages.JournalStorage(JournalFileBackend(path, lock_obj=JournalFileOpenLock(path)))
        kwargs: dict[str, Any] = {}
        if self.kind == "sqlite":
            kwargs["engine_kwargs"] = {"connect_args": {"timeout": _SQLITE_TIMEOUT_S}}
        try:
            # Processes that open one fresh database at once would race to create Optuna's tables.
            with self.creation_lock():
                storage = self._rdb_storage(kwargs)
            if self.kind == "sqlite":
                _write_ahead_log(storage)
            return storage
        except QhpoError:
            raise
        except Exception as error:  # SQLAlchemy raises many types for a bad URL or server
            raise self.open_error(error) from None

    def _rdb_storage(self, kwargs: dict[str, Any]) -> optuna.storages.RDBStorage:
        """Optuna's RDB storage; on a SQLite file that another program (a second run, ``qhpo
        report``, optuna-dashboard) is creating the tables of at this moment, tried again
        once those exist (SQLite has no lock that every opener takes)."""
        for attempt in range(5):
            try:
                return optuna.storages.RDBStorage(self.url, **kwargs)
            except Exception as error:
                text = str(error)
                racing = "already exists" in text or "UNIQUE constraint failed: alembic_version" in text
                if self.kind != "sqlite" or not racing or attempt == 4:
                    raise
                time.sleep(0.2 * (attempt + 1))
        raise AssertionError("unreachable")

    def open_error(self, error: BaseException) -> QhpoError:
        """The one sentence for a storage that cannot be opened (or reached) because of ``error``."""
        return open_error(self, error)

    @property
    def driver(self) -> str | None:
        """The SQLAlchemy driver of an RDB URL (``psycopg``, ``psycopg2``, ...), None for files."""
        if self.kind != "rdb":
            return None
        head = self.url.split("://", 1)[0]
        return head.split("+", 1)[1] if "+" in head else None

    @property
    def database_locks(self) -> bool:
        """Whether the database itself holds the claim lock (PostgreSQL's advisory locks)."""
        return self.kind == "rdb" and self.url.split("://", 1)[0].split("+", 1)[0] == "postgresql"

    @contextlib.contextmanager
    def creation_lock(self):
        """Serialise creating Optuna's tables and studies in one database (PostgreSQL); nothing elsewhere.

        A SQLite file's tables are created under an ``flock`` beside it, and tried again
        while a program that takes no such lock creates them (:meth:`_rdb_storage`); a
        journal file is created under its own file lock.
        """
        if self.kind == "sqlite":
            with file_lock(Path(self.url.split(":///", 1)[1]).with_name(f".{Path(self.url).name}.create.lock")):
                yield
            return
        if not self.database_locks:
            yield
            return
        with advisory_lock(self.url, "qhpo.create"):
            yield

    def lock_path(self, study: str) -> Path:
        """The file whose lock serialises starting trials of ``study`` (see :meth:`claim`) where the
        database holds no lock."""
        if self.kind in ("sqlite", "journal"):
            path = self.url.split(":///", 1)[1] if self.kind == "sqlite" else self.url[len("journal:") :]
            return Path(path).with_name(f".{Path(path).name}.{study}.lock")
        return self.run_dir / f".{study}.lock"

    @contextlib.contextmanager
    def claim(self, study: str):
        """Hold the study's claim lock: one thread of one process at a time on any host.

        On PostgreSQL a transaction-level advisory lock keyed on the study's name, released
        when the block ends or the holder's connection does. Elsewhere an ``flock`` on
        :meth:`lock_path` (released by the kernel when a holder dies): one host, or hosts
        that share the storage's folder with a working ``flock``.
        """
        if self.database_locks:
            with thread_lock(f"{self.url}#{study}"), advisory_lock(self.url, f"qhpo.claim.{study}"):
                yield
            return
        with file_lock(self.lock_path(study)):
            yield

    def describe(self) -> str:
        """The URL as it may be shown: a password in it is masked."""
        if self.kind != "rdb":
            return self.url
        try:
            import sqlalchemy

            return sqlalchemy.engine.make_url(self.url).render_as_string(hide_password=True)
        except Exception:
            return self.url.split("://", 1)[0] + "://..."


def _write_ahead_log(storage: optuna.storages.RDBStorage) -> None:
    """SQLite in write-ahead-log mode: readers (every pruner decision) no longer wait for writers,
    and a commit syncs the log, not the database (``synchronous=NORMAL``: a power cut may undo the
    last commits but never corrupts the file). The mode is stored in the file; all processes on
    one SQLite file must run on one host (use ``journal:PATH`` across nodes)."""
    import sqlalchemy

    def configure(connection, record) -> None:
        cursor = connection.cursor()
        cursor.execute("PRAGMA synchronous=NORMAL")
        cursor.close()

    sqlalchemy.event.listen(storage.engine, "connect", configure)
    storage.engine.dispose()  # connections made before the listener: closed, reopened configured
    with storage.engine.connect() as connection:
        connection.exec_driver_sql("PRAGMA journal_mode=WAL")


def resolve_storage(
    storage: str | None, run_dir: str | os.PathLike | None = None, *, create: bool = True
) -> StorageLocation:
    """Turn a ``--storage`` value into a :class:`StorageLocation`.

    Args:
        storage: Path, URL, ``journal:PATH``, or None for :data:`DEFAULT_STORAGE`.
        run_dir: Folder for checkpoints and plots; None: the storage file's folder (or
            ``qhpo-runs`` for a database server).
        create: Create missing folders (False for commands that only read).
    """
    storage = storage or DEFAULT_STORAGE
    if storage.startswith("journal:"):
        path = Path(storage[len("journal:") :]).expanduser().resolve()
        kind, url = "journal", f"journal:{path}"
    elif "://" in storage:
        kind, url = ("sqlite", storage) if storage.startswith("sqlite:") else ("rdb", storage)
        scheme, rest = storage.split("://", 1)
        if scheme in ("postgresql", "postgres"):
            url = f"postgresql+psycopg://{rest}"  # psycopg 3 (a dependency), whichever default SQLAlchemy has
        path = (
            Path(storage.split(":///", 1)[1]).expanduser().resolve() if kind == "sqlite" and ":///" in storage else None
        )
        if path is not None:
            url = f"sqlite:///{path}"
    else:
        path = Path(storage).expanduser().resolve()
        kind, url = "sqlite", f"sqlite:///{path}"
    if path is not None and path.is_dir():
        raise QhpoError(f"--storage {storage!r} is a folder; give a file such as {Path(storage) / 'qhpo.db'}.")
    folder = (
        Path(run_dir).expanduser().resolve()
        if run_dir
        else (path.parent if path is not None else Path("qhpo-runs").resolve())
    )
    if path is not None:
        if create:
            _writable_folder(path.parent, "--storage")
            _writable_file(path, "--storage")
        elif not path.exists():
            raise QhpoError(f"the storage file {path} does not exist; pass the --storage of the run.")
    if create:
        _writable_folder(folder, "--run-dir")
    return StorageLocation(url=url, run_dir=folder, kind=kind)


def checkpoint_folder(location: StorageLocation, study: str, checkpoint_dir: str | os.PathLike | None = None) -> Path:
    """Where the checkpoints of ``study`` live: ``CHECKPOINT_DIR/STUDY`` with ``--checkpoint-dir``
    (a folder that every host of the search shares), else ``RUN_DIR/STUDY/checkpoints``."""
    if checkpoint_dir is not None:
        return Path(checkpoint_dir).expanduser().resolve() / study
    return location.run_dir / study / "checkpoints"


def _writable_folder(folder: Path, flag: str) -> None:
    """Create ``folder`` and prove that files can be made in it, or say which flag to change."""
    from qhpo._files import remove_orphans

    try:
        folder.mkdir(parents=True, exist_ok=True)
        remove_orphans(folder, r"\.qhpo-write-test-(\d+)")  # probes of processes killed right here
        probe = folder / f".qhpo-write-test-{os.getpid()}"
        probe.touch()
        probe.unlink()
    except OSError as error:
        raise QhpoError(
            f"cannot write in the folder {folder} ({_reason(error)}); pass {flag} with a writable place."
        ) from None


def _writable_file(path: Path, flag: str) -> None:
    """An existing ``path`` must open for writing (opened for appending, so nothing changes)."""
    if not path.exists():
        return
    try:
        with open(path, "ab"):
            pass
    except OSError as error:
        raise QhpoError(
            f"the storage file {path} is read-only ({_reason(error)}); make it writable or pass another {flag}."
        ) from None


def _reason(error: OSError) -> str:
    return error.strerror or errno.errorcode.get(error.errno or 0, str(error))


def load_study(location: StorageLocation, name: str, **kwargs: Any) -> optuna.Study:
    """An existing study; a :class:`QhpoError` naming the studies there when it is missing."""
    storage = location.open()
    try:
        return optuna.load_study(study_name=name, storage=storage, **kwargs)
    except KeyError:
        names = sorted(s.study_name for s in optuna.get_all_study_summaries(storage, include_best_trial=False))
        known = f"it holds {', '.join(names)}" if names else "it holds no study"
        raise QhpoError(
            f"no study named {name!r} in {location.describe()} ({known}); pass one of those with --study."
        ) from None
