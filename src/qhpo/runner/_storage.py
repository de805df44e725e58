"""Where a study lives: storage URLs, the run folder, creating the study once, and recovery.

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

A trial's owner is alive while its process exists on this host (``/proc``), or, for a trial
of another host, while its heartbeat (:data:`ALIVE_ATTR`, written every
``--heartbeat-interval`` seconds) is younger than the owner's grace period.
"""

from __future__ import annotations

import contextlib
import errno
import hashlib
import os
import signal
import socket
import threading
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import optuna
from optuna.trial import TrialState

from qhpo._errors import QhpoError
from qhpo.optuna import CHECKPOINT_ATTR, RESUME_ATTR, RESUME_OF_ATTR, RETRY_OF_ATTR, UNRANKED_ATTR, checkpoint_key

#: Default storage when none is given: one SQLite file for every study of this folder.
DEFAULT_STORAGE = "qhpo-runs/qhpo.db"
#: Trial user attributes written by the runner.
OWNER_ATTR = "qhpo.owner"  # {"host", "pid"} of the process training the trial
HEARTBEAT_ATTR = "qhpo.heartbeat"  # UNIX time of the trial's last finished epoch
ALIVE_ATTR = "qhpo.alive"  # UNIX time of the owner's last heartbeat (see qhpo.runner._heartbeat)
# RETRY_OF_ATTR ("qhpo.retry_of"): number of the interrupted trial this one continues
# CHECKPOINT_ATTR ("qhpo.checkpoint"): the checkpoint key, shared by a trial, its retries and resumptions
FAILURE_ATTR = "qhpo.failure"  # why a trial failed
KILLS_ATTR = "qhpo.kills"  # times in a row this configuration's process died without finishing an epoch
#: Study user attributes ``qhpo.predictor.HOST:PID``: each process's predictor fit counts.
PREDICTOR_ATTR_PREFIX = "qhpo.predictor."
#: A configuration whose process dies this many times in a row without finishing an epoch
#: (for example killed for lack of memory) fails for good instead of being retried.
MAX_KILLS = 3
#: A RUNNING trial of another host whose owner names no grace period (qhpo before heartbeats)
#: is taken as dead after this long without a finished epoch.
STALE_SECONDS = 3600.0
#: Default seconds between a running trial's heartbeats, and without one before another host
#: takes the trial's process as dead (``--heartbeat-interval``, ``--grace-period``).
HEARTBEAT_INTERVAL = 60.0
GRACE_PERIOD = 600.0

_SQLITE_TIMEOUT_S = 60  # several processes on one SQLite file wait for the lock instead of failing
_THREAD_LOCKS: dict[str, threading.Lock] = {}  # one per claim-lock file: threads of one process
_THREAD_LOCKS_GUARD = threading.Lock()
_HELD = threading.local()  # the advisory locks this thread holds: (url, name)
_LOCK_ENGINES: dict[str, Any] = {}  # one SQLAlchemy engine per database URL for the advisory locks
#: Drivers of ``postgresql+DRIVER://`` URLs and the package that brings each.
_DRIVER_PACKAGES = {
    "psycopg": "psycopg[binary]",
    "psycopg2": "psycopg2-binary",
    "pg8000": "pg8000",
    "asyncpg": "asyncpg",
}
# A dead client's connection (and the advisory lock it holds) ends within about two minutes,
# not the operating system's default two hours; ignored on Unix-domain sockets.
_KEEPALIVES = "-c tcp_keepalives_idle=60 -c tcp_keepalives_interval=10 -c tcp_keepalives_count=6"


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
        text = _first_line(error)
        if "readonly" in text.replace("-", "").replace(" ", "").lower():
            return QhpoError(
                f"the storage {self.describe()!r} is read-only; make it writable or pass another --storage."
            )
        missing = _missing_module(error)
        if missing is not None:
            driver = self.driver or missing
            package = _DRIVER_PACKAGES.get(driver, driver)
            return QhpoError(
                f"the storage {self.describe()!r} needs the database driver {driver!r}, which is not installed; "
                f"install it (pip install {package}) or use a postgresql:// URL (psycopg 3, installed with qhpo)."
            )
        return QhpoError(
            f"cannot open the storage {self.describe()!r} ({type(error).__name__}: {text}); check --storage "
            "and that its database server runs and is reachable."
        )

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
            with _file_lock(Path(self.url.split(":///", 1)[1]).with_name(f".{Path(self.url).name}.create.lock")):
                yield
            return
        if not self.database_locks:
            yield
            return
        with _advisory_lock(self.url, "qhpo.create"):
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
            with _thread_lock(f"{self.url}#{study}"), _advisory_lock(self.url, f"qhpo.claim.{study}"):
                yield
            return
        with _file_lock(self.lock_path(study)):
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


def _thread_lock(name: str) -> threading.Lock:
    with _THREAD_LOCKS_GUARD:
        return _THREAD_LOCKS.setdefault(name, threading.Lock())


@contextlib.contextmanager
def _file_lock(path: Path):
    """Hold an exclusive ``flock`` on ``path`` (created if missing), one thread of this process
    at a time; the kernel releases it when the holder dies."""
    import fcntl

    with _thread_lock(str(path)):
        fd = os.open(path, os.O_RDWR | os.O_CREAT, 0o644)
        try:
            fcntl.flock(fd, fcntl.LOCK_EX)
            yield
        finally:
            os.close(fd)  # closing releases the lock


@contextlib.contextmanager
def _advisory_lock(url: str, name: str):
    """Hold PostgreSQL's transaction-level advisory lock ``name`` (hashed to 64 bits) on its own connection.

    The server releases it when the transaction ends, and when the holder's connection
    ends (a killed process, a lost node), so no holder can leave it taken. A thread that
    holds it already passes through.
    """
    import sqlalchemy

    held = _HELD.__dict__.setdefault("names", set())
    if (url, name) in held:  # this thread holds it already (a second session would wait for the first forever)
        yield
        return
    key = int.from_bytes(hashlib.blake2b(name.encode(), digest_size=8).digest(), "big", signed=True)
    with _THREAD_LOCKS_GUARD:
        engine = _LOCK_ENGINES.get(url)
        if engine is None:
            engine = sqlalchemy.create_engine(
                url, pool_pre_ping=True, pool_size=2, connect_args={"options": _KEEPALIVES}
            )
            _LOCK_ENGINES[url] = engine
    with engine.connect() as connection, connection.begin():
        connection.execute(sqlalchemy.text("SELECT pg_advisory_xact_lock(:key)"), {"key": key})
        held.add((url, name))
        try:
            yield
        finally:
            held.discard((url, name))


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


# -- interrupted trials ---------------------------------------------------------------------
def _start_time(pid: int) -> int | None:
    """Start time of process ``pid`` in clock ticks since boot (Linux), to tell a reused pid apart."""
    fields = _stat_fields(pid)
    try:
        return int(fields[19]) if fields else None
    except (ValueError, IndexError):
        return None


def _stat_fields(pid: int) -> list[str] | None:
    """The fields of ``/proc/PID/stat`` after the command name (state first); None off Linux or when gone."""
    try:
        with open(f"/proc/{pid}/stat") as handle:
            return handle.read().rsplit(")", 1)[1].split()
    except (OSError, IndexError):
        return None


def _boot_id() -> str | None:
    """This boot of this machine (Linux): two hosts that share a name never share it."""
    try:
        with open("/proc/sys/kernel/random/boot_id") as handle:
            return handle.read().strip() or None
    except OSError:
        return None


def owner_record(grace_period: float = GRACE_PERIOD) -> dict[str, Any]:
    """Who trains a trial: host (and its boot), process id, the process's start time, and the
    seconds without a heartbeat after which another host takes the process as dead."""
    return {
        "host": socket.gethostname(),
        "boot": _boot_id(),
        "pid": os.getpid(),
        "start": _start_time(os.getpid()),
        "grace": float(grace_period),
    }


def _on_this_host(owner: dict[str, Any]) -> bool:
    """Whether ``owner`` ran on this machine since it booted (then ``/proc`` tells whether it lives)."""
    if owner.get("host") != socket.gethostname():
        return False
    boot = owner.get("boot")
    return boot is None or boot == _boot_id()


def _process_alive(pid: int, start: int | None) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        pass
    fields = _stat_fields(pid)
    if fields and fields[0] in ("Z", "X"):  # killed, not yet reaped by its parent: its trial is over
        return False
    return start is None or _start_time(pid) in (None, start)


def _is_interrupted(trial: optuna.trial.FrozenTrial, now: float, *, claimed: bool = False) -> bool:
    owner = trial.user_attrs.get(OWNER_ATTR)
    if not owner:
        if claimed:  # qhpo names the owner while holding the claim lock: this process died in between
            return True
        started = trial.datetime_start.timestamp() if trial.datetime_start else now
        return now - started > STALE_SECONDS
    if _on_this_host(owner):
        return owner.get("pid") != os.getpid() and not _process_alive(int(owner.get("pid", -1)), owner.get("start"))
    # Another host's process: dead once its last sign of life is older than its grace period.
    last = max(
        float(trial.user_attrs.get(ALIVE_ATTR, 0.0)),
        float(trial.user_attrs.get(HEARTBEAT_ATTR, 0.0)),
        trial.datetime_start.timestamp() if trial.datetime_start else now,
    )
    return now - last > float(owner.get("grace") or STALE_SECONDS)


def recover_interrupted_trials(study: optuna.Study, location: StorageLocation | None = None) -> list[int]:
    """Mark trials left RUNNING by a dead process as FAIL and enqueue their configurations.

    A trial is dead when its owner process on this host no longer exists, or when the owner
    of a trial of another host has sent no heartbeat (:data:`ALIVE_ATTR`) and finished no
    epoch for its grace period (``owner["grace"]``, :data:`STALE_SECONDS` for an owner that
    names none). Hosts compare their own clocks, so they must agree to well within the
    grace period (NTP). The retry carries
    the checkpoint key and the number of the trial it continues, so it resumes from the
    last checkpoint and copies the earlier epochs' values. With ``location`` the recovery
    holds the study's claim lock, so two processes recovering at once retry a trial once;
    a trial with a retry already enqueued gets none again. A configuration whose process died
    :data:`MAX_KILLS` times in a row without finishing an epoch is failed for good.

    Returns:
        Numbers of the trials that were failed and re-enqueued.
    """
    lock = location.claim(study.study_name) if location is not None else contextlib.nullcontext()
    with lock:
        return _recover(study, claimed=location is not None)


def _recover(study: optuna.Study, *, claimed: bool) -> list[int]:
    storage = study._storage
    now = time.time()
    recovered = []
    for trial in study.get_trials(deepcopy=False, states=(TrialState.RUNNING,)):
        if not _is_interrupted(trial, now, claimed=claimed):
            continue
        current = storage.get_trial(trial._trial_id)
        if current.state != TrialState.RUNNING:
            continue  # finished a moment ago
        retry = enqueue_retry(study, current, killed=True)
        reason = (
            "interrupted: its process ended before the trial finished; retried"
            if retry
            else f"killed: its process ended {MAX_KILLS} times in a row without finishing an epoch (out of memory?); "
            "not retried"
        )
        try:
            storage.set_trial_user_attr(trial._trial_id, FAILURE_ATTR, reason)
            storage.set_trial_state_values(trial._trial_id, state=TrialState.FAIL)
        except optuna.exceptions.UpdateFinishedTrialError:
            continue
        recovered.append(trial.number)
    return recovered


def enqueue_retry(study: optuna.Study, trial: optuna.trial.FrozenTrial, *, killed: bool = False) -> bool:
    """Enqueue ``trial``'s configuration as a new trial that continues it, once.

    Args:
        killed: The trial's process died (rather than being stopped): counts towards
            :data:`MAX_KILLS` unless the trial finished an epoch since it (re)started.

    Returns:
        Whether a retry is (now or already) enqueued; False when the configuration has
        been killed too often.
    """
    if any(t.user_attrs.get(RETRY_OF_ATTR) == trial.number for t in study.get_trials(deepcopy=False)):
        return True
    kills = int(trial.user_attrs.get(KILLS_ATTR, 0))
    if killed:
        from qhpo.runner._trial import RESUMED_AT_ATTR

        progressed = len(trial.intermediate_values) > int(trial.user_attrs.get(RESUMED_AT_ATTR, 0))
        kills = 0 if progressed else kills + 1
        if kills >= MAX_KILLS:
            return False
    attrs = {
        RETRY_OF_ATTR: trial.number,
        CHECKPOINT_ATTR: checkpoint_key(trial),
        KILLS_ATTR: kills,
    }
    # the retry of a resumption resumes the same paused trial; the retry of a trial that went on
    # unranked does not decide again on the epochs it reports again
    for continued in (RESUME_OF_ATTR, RESUME_ATTR, UNRANKED_ATTR):
        if continued in trial.user_attrs:
            attrs[continued] = trial.user_attrs[continued]
    # A trial killed before its objective suggested every parameter holds only some of them;
    # the parameters it was enqueued with (a resumption's, a retry's) fill in the rest, so that
    # a retry never continues a checkpoint with other hyperparameters.
    params = {**dict(trial.system_attrs.get("fixed_params") or {}), **trial.params}
    study.enqueue_trial(params, user_attrs=attrs, skip_if_exists=False)
    return True


@contextlib.contextmanager
def signals_deferred():
    """SIGINT and SIGTERM wait until the block ends (a second Ctrl-C cannot cut a bookkeeping step).

    The handlers are swapped for ones that only note the signal, and the noted signal is
    handled as usual once the block is done. Python runs signal handlers in the main
    thread only, so elsewhere the block defers nothing.
    """
    if threading.current_thread() is not threading.main_thread():
        yield
        return
    received: list[int] = []
    deferred = (signal.SIGINT, signal.SIGTERM)
    previous = {number: signal.signal(number, lambda signum, frame: received.append(signum)) for number in deferred}
    try:
        yield
    finally:
        for number, handler in previous.items():
            signal.signal(number, handler)
        if received:
            handler = previous[received[0]]
            if callable(handler):
                handler(received[0], None)
            elif handler == signal.SIG_DFL:
                os.kill(os.getpid(), received[0])
