"""Where a study lives: storage URLs, the run folder, creating the study once, and recovery.

``--storage`` accepts a path to a SQLite file (``runs/qhpo.db``), any SQLAlchemy URL
(``sqlite:///runs/qhpo.db``, ``postgresql://...``) or ``journal:PATH`` for an Optuna journal
file (the storage Optuna recommends for many processes on a shared file system). The run
folder, which holds checkpoints and plots, is the folder of the storage file.
"""

from __future__ import annotations

import os
import socket
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import optuna
from optuna.trial import TrialState

from qhpo._errors import QhpoError

#: Default storage when none is given: one SQLite file for every study of this folder.
DEFAULT_STORAGE = "qhpo-runs/qhpo.db"
#: Trial user attributes written by the runner.
OWNER_ATTR = "qhpo.owner"  # {"host", "pid"} of the process training the trial
HEARTBEAT_ATTR = "qhpo.heartbeat"  # UNIX time of the trial's last finished epoch
RETRY_OF_ATTR = "qhpo.retry_of"  # number of the interrupted trial this one continues
CHECKPOINT_ATTR = "qhpo.checkpoint"  # checkpoint key, shared by a trial and its retries
FAILURE_ATTR = "qhpo.failure"  # why a trial failed
#: A RUNNING trial of another host without a finished epoch for this long is taken as dead.
STALE_SECONDS = 3600.0

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
            path = self.url[len("journal:"):]
            from optuna.storages.journal import JournalFileBackend, JournalFileOpenLock

            return optuna.storages.JournalStorage(JournalFileBackend(path, lock_obj=JournalFileOpenLock(path)))
        kwargs: dict[str, Any] = {}
        if self.kind == "sqlite":
            kwargs["engine_kwargs"] = {"connect_args": {"timeout": _SQLITE_TIMEOUT_S}}
        try:
            return optuna.storages.RDBStorage(self.url, **kwargs)
        except Exception as error:  # SQLAlchemy raises many types for a bad URL or server
            raise QhpoError(f"cannot open the storage {self.url!r} ({type(error).__name__}: {error}); check --storage.") from None

    def describe(self) -> str:
        return self.url


def resolve_storage(storage: str | None, run_dir: str | os.PathLike | None = None, *, create: bool = True) -> StorageLocation:
    """Turn a ``--storage`` value into a :class:`StorageLocation`.

    Args:
        storage: Path, URL, ``journal:PATH``, or None for :data:`DEFAULT_STORAGE`.
        run_dir: Folder for checkpoints and plots; None: the storage file's folder (or
            ``qhpo-runs`` for a database server).
        create: Create missing folders (False for commands that only read).
    """
    storage = storage or DEFAULT_STORAGE
    if storage.startswith("journal:"):
        path = Path(storage[len("journal:"):]).expanduser().resolve()
        kind, url = "journal", f"journal:{path}"
    elif "://" in storage:
        kind, url = ("sqlite", storage) if storage.startswith("sqlite:") else ("rdb", storage)
        path = Path(storage.split(":///", 1)[1]).expanduser().resolve() if kind == "sqlite" and ":///" in storage else None
        if path is not None:
            url = f"sqlite:///{path}"
    else:
        path = Path(storage).expanduser().resolve()
        kind, url = "sqlite", f"sqlite:///{path}"
    if path is not None and path.is_dir():
        raise QhpoError(f"--storage {storage!r} is a folder; give a file such as {Path(storage) / 'qhpo.db'}.")
    folder = Path(run_dir).expanduser().resolve() if run_dir else (path.parent if path is not None else Path("qhpo-runs").resolve())
    if path is not None:
        if create:
            path.parent.mkdir(parents=True, exist_ok=True)
        elif not path.exists():
            raise QhpoError(f"the storage file {path} does not exist; pass the --storage of the run.")
    if create:
        folder.mkdir(parents=True, exist_ok=True)
    return StorageLocation(url=url, run_dir=folder, kind=kind)


def load_study(location: StorageLocation, name: str, **kwargs: Any) -> optuna.Study:
    """An existing study; a :class:`QhpoError` naming the studies there when it is missing."""
    storage = location.open()
    try:
        return optuna.load_study(study_name=name, storage=storage, **kwargs)
    except KeyError:
        names = sorted(s.study_name for s in optuna.get_all_study_summaries(storage, include_best_trial=False))
        known = f"it holds {', '.join(names)}" if names else "it holds no study"
        raise QhpoError(f"no study named {name!r} in {location.describe()} ({known}); pass one of those with --study.") from None


# -- interrupted trials ---------------------------------------------------------------------
def _start_time(pid: int) -> int | None:
    """Start time of process ``pid`` in clock ticks since boot (Linux), to tell a reused pid apart."""
    try:
        with open(f"/proc/{pid}/stat") as handle:
            return int(handle.read().rsplit(")", 1)[1].split()[19])
    except (OSError, ValueError, IndexError):
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
    return start is None or _start_time(pid) in (None, start)


def _is_interrupted(trial: optuna.trial.FrozenTrial, now: float) -> bool:
    owner = trial.user_attrs.get(OWNER_ATTR)
    if not owner:  # never started an epoch; its process may still be loading data
        started = trial.datetime_start.timestamp() if trial.datetime_start else now
        return now - started > STALE_SECONDS
    if owner.get("host") == socket.gethostname():
        return owner.get("pid") != os.getpid() and not _process_alive(int(owner.get("pid", -1)), owner.get("start"))
    last = float(trial.user_attrs.get(HEARTBEAT_ATTR, 0.0)) or (trial.datetime_start.timestamp() if trial.datetime_start else now)
    return now - last > STALE_SECONDS


def recover_interrupted_trials(study: optuna.Study) -> list[int]:
    """Mark trials left RUNNING by a dead process as FAIL and enqueue their configurations.

    A trial is dead when its owner process on this host no longer exists, or when a trial
    of another host has not finished an epoch for :data:`STALE_SECONDS`. The retry carries
    the checkpoint key and the number of the trial it continues, so it resumes from the
    last checkpoint and copies the earlier epochs' values. Only the process that succeeds
    in failing a trial enqueues it, so two processes recovering at once retry it once.

    Returns:
        Numbers of the trials that were failed and re-enqueued.
    """
    storage = study._storage
    now = time.time()
    recovered = []
    for trial in study.get_trials(deepcopy=False, states=(TrialState.RUNNING,)):
        if not _is_interrupted(trial, now):
            continue
        try:
            storage.set_trial_user_attr(trial._trial_id, FAILURE_ATTR, "interrupted: its process ended before the trial finished; retried")
            if not storage.set_trial_state_values(trial._trial_id, state=TrialState.FAIL):
                continue
        except optuna.exceptions.UpdateFinishedTrialError:
            continue
        enqueue_retry(study, trial)
        recovered.append(trial.number)
    return recovered


def enqueue_retry(study: optuna.Study, trial: optuna.trial.FrozenTrial) -> None:
    """Enqueue ``trial``'s configuration as a new trial that continues it."""
    study.enqueue_trial(
        dict(trial.params),
        user_attrs={
            RETRY_OF_ATTR: trial.number,
            CHECKPOINT_ATTR: trial.user_attrs.get(CHECKPOINT_ATTR, trial.number),
        },
    )
