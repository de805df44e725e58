"""Trials whose process died: who owns a running trial, whether it is alive, and the retry.

A trial's owner is alive while its process exists on this host (``/proc``), or, for a trial
of another host, while its heartbeat (``qhpo.alive``, written every ``--heartbeat-interval``
seconds by :class:`~qhpo.runner._heartbeat.TrialHeartbeat`) or its last finished epoch
(``qhpo.heartbeat``) is younger than the owner's grace period. Recovery runs under the
study's claim lock, so a dead trial is failed and retried once, whichever process sees it.
"""

from __future__ import annotations

import contextlib
import os
import socket
import time
from typing import TYPE_CHECKING, Any

import optuna
from optuna.trial import TrialState

from qhpo._optuna_schema import (
    ALIVE,
    CHECKPOINT_ATTR,
    FAILURE_ATTR,
    HEARTBEAT,
    KILLS,
    KILLS_ATTR,
    OWNER,
    RESUME_ATTR,
    RESUME_OF_ATTR,
    RESUMED_AT,
    RETRY_OF,
    RETRY_OF_ATTR,
    UNRANKED_ATTR,
    enqueued_params,
    storage_of,
    stored_trial,
    trial_id,
)
from qhpo.optuna import checkpoint_key

if TYPE_CHECKING:
    from qhpo.runner._storage import StorageLocation

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
    owner = OWNER.get(trial)
    if not owner:
        if claimed:  # qhpo names the owner while holding the claim lock: this process died in between
            return True
        started = trial.datetime_start.timestamp() if trial.datetime_start else now
        return now - started > STALE_SECONDS
    if _on_this_host(owner):
        return owner.get("pid") != os.getpid() and not _process_alive(int(owner.get("pid", -1)), owner.get("start"))
    # Another host's process: dead once its last sign of life is older than its grace period.
    last = max(
        float(ALIVE.get(trial, 0.0)),
        float(HEARTBEAT.get(trial, 0.0)),
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
        return recover(study, claimed=location is not None)


def recover(study: optuna.Study, *, claimed: bool) -> list[int]:
    storage = storage_of(study)
    now = time.time()
    recovered = []
    for trial in study.get_trials(deepcopy=False, states=(TrialState.RUNNING,)):
        if not _is_interrupted(trial, now, claimed=claimed):
            continue
        current = stored_trial(study, trial)
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
            storage.set_trial_user_attr(trial_id(trial), FAILURE_ATTR, reason)
            storage.set_trial_state_values(trial_id(trial), state=TrialState.FAIL)
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
    if any(RETRY_OF.get(t) == trial.number for t in study.get_trials(deepcopy=False)):
        return True
    kills = int(KILLS.get(trial, 0))
    if killed:
        progressed = len(trial.intermediate_values) > int(RESUMED_AT.get(trial, 0))
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
    params = {**enqueued_params(trial), **trial.params}
    study.enqueue_trial(params, user_attrs=attrs, skip_if_exists=False)
    return True
