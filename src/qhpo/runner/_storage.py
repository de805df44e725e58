"""Where a study lives: storage URLs, the run folder, creating the study once, and recovery.

``--storage`` accepts a path to a SQLite file (``runs/qhpo.db``), any SQLAlchemy URL
(``sqlite:///runs/qhpo.db``, ``postgresql://...``) or ``journal:PATH`` for an Optuna journal
file (the storage Optuna recommends for many processes on a shared file system). The run
folder, which holds checkpoints and plots, is the folder of the storage file.

Every process on one study takes the study's claim lock (:meth:`StorageLocation.claim`)
to start a trial and to recover the trials of dead processes, so a study never holds more
finished trials than asked for and an interrupted trial is retried exactly once.
"""

from __future__ import annotations

import contextlib
import errno
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
from qhpo.optuna import CHECKPOINT_ATTR, RESUME_ATTR, RESUME_OF_ATTR, UNRANKED_ATTR, checkpoint_key

#: Default storage when none is given: one SQLite file for every study of this folder.
DEFAULT_STORAGE = "qhpo-runs/qhpo.db"
#: Trial user attributes written by the runner.
OWNER_ATTR = "qhpo.owner"  # {"host", "pid"} of the process training the trial
HEARTBEAT_ATTR = "qhpo.heartbeat"  # UNIX time of the trial's last finished epoch
RETRY_OF_ATTR = "qhpo.retry_of"  # number of the interrupted trial this one continues
# CHECKPOINT_ATTR ("qhpo.checkpoint"): the checkpoint key, shared by a trial, its retries and resumptions
FAILURE_ATTR = "qhpo.failure"  # why a trial failed
KILLS_ATTR = "qhpo.kills"  # times in a row this configuration's process died without finishing an epoch
#: Study user attributes ``qhpo.predictor.HOST:PID``: each process's predictor fit counts.
PREDICTOR_ATTR_PREFIX = "qhpo.predictor."
#: A configuration whose process dies this many times in a row without finishing an epoch
#: (for example killed for lack of memory) fails for good instead of being retried.
MAX_KILLS = 3
#: A RUNNING trial of another host without a finished epoch for this long is taken as dead.
STALE_SECONDS = 3600.0

_SQLITE_TIMEOUT_S = 60  # several processes on one SQLite file wait for the lock instead of failing
_THREAD_LOCKS: dict[str, threading.Lock] = {}  # one per claim-lock file: threads of one process
_THREAD_LOCKS_GUARD = threading.Lock()


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
            storage = optuna.storages.RDBStorage(self.url, **kwargs)
            if self.kind == "sqlite":
                _write_ahead_log(storage)
            return storage
        except Exception as error:  # SQLAlchemy raises many types for a bad URL or server
            if "readonly" in str(error).replace("-", "").replace(" ", "").lower():
                raise QhpoError(
                    f"the storage {self.url!r} is read-only; make it writable or pass another --storage."
                ) from None
            raise QhpoError(
                f"cannot open the storage {self.url!r} ({type(error).__name__}: {error}); check --storage."
            ) from None

    def lock_path(self, study: str) -> Path:
        """The file whose lock serialises starting trials of ``study`` (see :meth:`claim`)."""
        if self.kind in ("sqlite", "journal"):
            path = self.url.split(":///", 1)[1] if self.kind == "sqlite" else self.url[len("journal:") :]
            return Path(path).with_name(f".{Path(path).name}.{study}.lock")
        return self.run_dir / f".{study}.lock"

    @contextlib.contextmanager
    def claim(self, study: str):
        """Hold the study's claim lock: one thread of one process at a time, on this host or any
        host that shares the storage's folder (``flock``, released by the kernel when a holder dies)."""
        import fcntl

        path = self.lock_path(study)
        with _THREAD_LOCKS_GUARD:
            local = _THREAD_LOCKS.setdefault(str(path), threading.Lock())
        with local:
            fd = os.open(path, os.O_RDWR | os.O_CREAT, 0o644)
            try:
                fcntl.flock(fd, fcntl.LOCK_EX)
                yield
            finally:
                os.close(fd)  # closing releases the lock

    def describe(self) -> str:
        return self.url


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


def owner_record() -> dict[str, Any]:
    """Who trains a trial: host, process id and the process's start time."""
    return {"host": socket.gethostname(), "pid": os.getpid(), "start": _start_time(os.getpid())}


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
    if owner.get("host") == socket.gethostname():
        return owner.get("pid") != os.getpid() and not _process_alive(int(owner.get("pid", -1)), owner.get("start"))
    last = float(trial.user_attrs.get(HEARTBEAT_ATTR, 0.0)) or (
        trial.datetime_start.timestamp() if trial.datetime_start else now
    )
    return now - last > STALE_SECONDS


def recover_interrupted_trials(study: optuna.Study, location: StorageLocation | None = None) -> list[int]:
    """Mark trials left RUNNING by a dead process as FAIL and enqueue their configurations.

    A trial is dead when its owner process on this host no longer exists, or when a trial
    of another host has not finished an epoch for :data:`STALE_SECONDS`. The retry carries
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
