"""A worker: asks the study for trials and trains them until it holds enough finished ones.

Several workers (threads of one process, or processes started by ``qhpo run --workers N``,
or jobs on several nodes) share one storage. Each loops

    holding the study's claim lock:
        recover the trials of dead processes
        finished = finished configurations (COMPLETE or PRUNED trials that no trial continues)
        running = RUNNING trials
        if a retry waits and finished + running < N: start it
        elif the policy resumes a paused trial now (promote): start its resumption
        elif finished + running < N: start a new configuration
        else stop when nothing runs (or the policy never resumes and finished >= N); wait otherwise
    train it

Under a budget (``--budget``, :mod:`qhpo.runner._budget`) a retry or a resumption starts
only while something is left, a new configuration only while what is left holds its first
rung, and a search whose budget stops new configurations ends as one that holds N.

Every finished configuration was RUNNING first and only a lock holder adds a RUNNING trial;
a resumption turns a finished (paused) configuration into a running one. So
``finished + running <= N`` always holds: the study never holds more than ``N`` finished
configurations, however many workers and ``qhpo run`` processes share it, and a paused and
resumed configuration counts once.
"""

from __future__ import annotations

import json
import os
import signal
import sys
import time
from collections.abc import Callable
from pathlib import Path

import optuna
from optuna.trial import TrialState

from qhpo._errors import QhpoError
from qhpo._optuna_schema import (
    FAILURE_ATTR,
    JOINED_ATTR,
    PREDICTOR_ATTR_PREFIX,
    storage_of,
    stored_trial,
    trial_id,
)
from qhpo.optuna import checkpoint_key, configuration_counts
from qhpo.runner._budget import Budget, BudgetTracker
from qhpo.runner._claim import Claim as Claim  # public: what claim_trial returns
from qhpo.runner._claim import claim_trial
from qhpo.runner._config import RunConfig
from qhpo.runner._heartbeat import TrialHeartbeat
from qhpo.runner._recovery import enqueue_retry, owner_record
from qhpo.runner._signals import signals_deferred
from qhpo.runner._storage import StorageLocation, checkpoint_folder, connection_errors, connection_lost
from qhpo.runner._trial import DiskFull, checkpoint_path, remove_scratch_checkpoints, run_trial

FINISHED = (TrialState.COMPLETE, TrialState.PRUNED)
_MAX_CRASHES_IN_A_ROW = 3
_MAX_FAILURES_IN_A_ROW = 10  # diverged or crashed: a space where every trial fails would loop forever
_WAIT_SECONDS = 2.0
_SAMPLER_STREAM = 1  # the HPO sampler's streams among the run seed's (see qhpo._seeds)


def count_states(study: optuna.Study) -> tuple[int, int]:
    """(finished, running) configurations of ``study`` (a paused and resumed one counts once)."""
    return configuration_counts(study.get_trials(deepcopy=False))


def sampler_seed(seed: int, worker_index: int, offset: int, joined: int | None = None) -> int:
    """The HPO sampler's seed of one worker: distinct per run seed, worker and trials already there,
    and on a database server per process (``joined``: the order in which it joined the study)."""
    from qhpo._seeds import derived_seed

    if joined is None:
        return derived_seed(seed, _SAMPLER_STREAM, worker_index, offset)
    return derived_seed(seed, _SAMPLER_STREAM, worker_index, offset, joined)


def _join_order(study: optuna.Study, location: StorageLocation) -> int | None:
    """On PostgreSQL: how many worker processes joined ``study`` before this one (None elsewhere).

    Processes on several nodes that start at once see the same trials and may share a
    ``--seed``; the order, counted under the database's creation lock in the study user
    attribute :data:`JOINED_ATTR`, gives each its own sampler stream, so that they do not
    propose the same configurations.
    """
    if not location.database_locks:
        return None
    with location.creation_lock():
        joined = int(study.user_attrs.get(JOINED_ATTR, 0))  # read from the storage, under the lock
        study.set_user_attr(JOINED_ATTR, joined + 1)
    return joined


def run_worker(
    config: RunConfig,
    location: StorageLocation,
    *,
    worker_index: int = 0,
    on_change: Callable[[optuna.Study], None] | None = None,
    data=None,
) -> int:
    """Train trials of ``config.study`` until it holds ``config.trials`` finished ones, or
    its ``config.budget`` is spent.

    Returns:
        Number of trials this worker finished.
    """
    import torch

    from qhpo.runner._study import search_space
    from qhpo.workload import load_cifar10, resolve_device

    device = resolve_device(config.device)
    if device.type == "cpu" and config.workers > 1:
        torch.set_num_threads(max(1, (os.cpu_count() or 1) // config.workers))
    space = search_space(config.space)
    if data is None:
        data = load_cifar10(
            config.data_dir, subset=config.subset, val_size=config.val_size, split_seed=config.split_seed, device=device
        )
    storage = location.open()
    with connection_errors(location):
        return _train_trials(config, location, storage, worker_index, space, data, device, on_change)


def _train_trials(config, location, storage, worker_index, space, data, device, on_change) -> int:
    study = _worker_study(config, location, storage, worker_index)
    checkpoint_dir = checkpoint_folder(location, config.study, config.checkpoint_dir)
    checkpoint_dir.mkdir(parents=True, exist_ok=True)
    remove_scratch_checkpoints(checkpoint_dir, shared=_shared(config), grace_period=config.grace_period)

    def changed() -> None:
        if on_change is not None:
            on_change(study)

    def can_resume(paused: optuna.trial.FrozenTrial) -> bool:
        return checkpoint_path(checkpoint_dir, checkpoint_key(paused)).exists()

    def train(trial: optuna.Trial) -> TrialState:
        with TrialHeartbeat(storage_of(study), trial_id(trial), config.heartbeat_interval):
            return run_trial(
                study,
                trial,
                space=space,
                data=data,
                device=device,
                max_epochs=config.epochs,
                checkpoint_dir=checkpoint_dir,
                seed=config.seed,
                precision=config.precision,
                on_epoch=changed,
                over_budget=None if budget is None else (lambda: budget.exhausted(study)),
            )

    budget = None if config.budget is None else BudgetTracker(Budget.parse(config.budget), config.first_rung())
    done = 0
    crashes = failures = 0
    while True:
        claim = claim_trial(
            study,
            location,
            config.trials,
            can_resume=can_resume,
            grace_period=config.grace_period,
            budget=budget,
        )
        if claim.done:
            return done
        changed()
        if claim.wait:
            time.sleep(_WAIT_SECONDS)
            continue
        trial = claim.trial
        try:
            state = train(trial)
        except BaseException as error:
            crashes = _crashed(study, trial, error, location, config, crashes)
            continue
        crashes = 0
        failures = 0 if state in FINISHED else failures + 1
        _refuse_endless_failures(study, trial, failures)
        done += state in FINISHED
        publish_predictor_state(study)
        changed()


def _refuse_endless_failures(study: optuna.Study, trial: optuna.Trial, failures: int) -> None:
    """One sentence once ``failures`` trials in a row failed (a space where every trial fails)."""
    if failures >= _MAX_FAILURES_IN_A_ROW:
        reason = stored_trial(study, trial).user_attrs.get(FAILURE_ATTR, "failed")
        raise QhpoError(
            f"the last {failures} trials all failed (the last one {reason}); check the search space "
            "(--space), then run the same command again to resume."
        )


def _worker_study(config: RunConfig, location: StorageLocation, storage, worker_index: int) -> optuna.Study:
    """The study as this worker sees it: its own sampler stream, the run's pruner."""
    from qhpo.runner._study import hpo_sampler, make_pruner

    # Seed the sampler by the trials already there, so a resumed or second worker does not
    # propose the configurations of the first one again.
    joining = optuna.load_study(study_name=config.study, storage=storage)
    offset = len(joining.trials)
    joined = _join_order(joining, location)
    return optuna.load_study(
        study_name=config.study,
        storage=storage,
        sampler=hpo_sampler(config.hpo_sampler, seed=sampler_seed(config.seed, worker_index, offset, joined)),
        pruner=make_pruner(config),
    )


def _crashed(
    study: optuna.Study,
    trial: optuna.Trial,
    error: BaseException,
    location: StorageLocation,
    config: RunConfig,
    crashes: int,
) -> int:
    """Deal with a trial that ended in ``error``; return the crashes in a row counting it (not
    when another process took it over); raise when the run must stop (a lost server, Ctrl-C,
    a full disk, too many crashes in a row)."""
    lost = connection_lost(location, error)
    if lost is not None:
        raise lost from None  # the trial stays RUNNING; recovery retries it
    if isinstance(error, Exception) and _taken_over(study, trial):
        print(
            f"qhpo: trial {trial.number} was taken as dead by another process (no heartbeat within "
            f"{config.grace_period:g} s) and is retried there; this process goes on with another trial.",
            file=sys.stderr,
        )
        return crashes
    _end_interrupted(study, trial, error)
    if not isinstance(error, Exception) or isinstance(error, DiskFull):
        raise error  # KeyboardInterrupt, SystemExit, a full disk: the trial is enqueued again for the next run
    print(
        f"qhpo: trial {trial.number} crashed ({type(error).__name__}: {error}); the search goes on.",
        file=sys.stderr,
    )
    if crashes + 1 >= _MAX_CRASHES_IN_A_ROW:
        raise QhpoError(
            f"{crashes + 1} trials in a row crashed, the last with {type(error).__name__}: {error}; "
            "fix that and run the same command again to resume."
        ) from None
    return crashes + 1


def _shared(config: RunConfig) -> bool:
    """Whether processes of other hosts may write into the checkpoint folder too (``--checkpoint-dir``)."""
    return config.checkpoint_dir is not None


def _taken_over(study: optuna.Study, trial: optuna.Trial) -> bool:
    """Whether another process's recovery failed ``trial`` (and enqueued its retry) while this one trained it."""
    try:
        frozen = stored_trial(study, trial)
    except Exception:
        return False
    return frozen.state == TrialState.FAIL and str(frozen.user_attrs.get(FAILURE_ATTR, "")).startswith("interrupted")


def publish_predictor_state(study: optuna.Study) -> None:
    """Store this process's predictor fit counts in the study, for the run's summary.

    One study user attribute per process (:data:`PREDICTOR_ATTR_PREFIX` + ``host:pid``):
    ``{"fits", "failed_fits", "last_error"}`` of the pruner's prediction service.
    """
    service = getattr(getattr(study.pruner, "policy_", None), "service", None)
    if service is None:
        return
    owner = owner_record()
    state = {
        "fits": int(getattr(service, "n_fits", 0)),
        "failed_fits": int(getattr(service, "n_failed_fits", 0)),
        "last_error": getattr(service, "last_fit_error", None),
    }
    try:
        study.set_user_attr(f"{PREDICTOR_ATTR_PREFIX}{owner['host']}:{owner['pid']}", state)
    except Exception:
        pass  # the summary then knows less; the search goes on


def _end_interrupted(study: optuna.Study, trial: optuna.Trial, error: BaseException) -> None:
    """Fail a trial that did not end normally; an interrupted one is enqueued to be retried.

    The retry is enqueued before the trial is told FAIL, with SIGINT and SIGTERM held back,
    so no interruption can leave a failed trial without its retry; a process killed in
    between leaves the trial RUNNING, and recovery (which sees the retry) only fails it.
    """
    interrupted = not isinstance(error, Exception) or isinstance(error, DiskFull)
    if isinstance(error, DiskFull):
        reason = "interrupted: the disk was full; retried on resume"
    elif interrupted:
        reason = "interrupted: the run was stopped; retried on resume"
    else:
        reason = f"crashed: {type(error).__name__}: {error}"
    with signals_deferred():
        try:
            frozen = stored_trial(study, trial)
            if frozen.state != TrialState.RUNNING:
                return  # already told
            if interrupted:
                enqueue_retry(study, frozen)
            trial.set_user_attr(FAILURE_ATTR, reason)
            study.tell(trial, state=TrialState.FAIL)
        except Exception:
            return  # the storage is gone; recovery on resume handles the trial


def main(argv: list[str] | None = None) -> int:
    """Entry point of a worker process: ``python -m qhpo.runner CONFIG_JSON INDEX``."""
    argv = sys.argv[1:] if argv is None else argv
    from qhpo.runner._config import config_from_dict

    payload = json.loads(Path(argv[0]).read_text())
    config = config_from_dict(payload["config"])
    location = StorageLocation(url=payload["url"], run_dir=Path(payload["run_dir"]), kind=payload["kind"])
    optuna.logging.set_verbosity(optuna.logging.WARNING)
    signal.signal(signal.SIGTERM, _interrupt)  # the launcher stopping us: end the trial as interrupted
    try:
        run_worker(config, location, worker_index=int(argv[1]))
    except QhpoError as error:
        print(f"qhpo: error: {error}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        return 130
    return 0


def _interrupt(signum, frame) -> None:
    raise KeyboardInterrupt
