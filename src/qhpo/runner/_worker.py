"""A worker: asks the study for trials and trains them until it holds enough finished ones.

Several workers (threads of one process, or processes started by ``qhpo run --workers N``,
or jobs on several nodes) share one storage. Each loops

    holding the study's claim lock:
        recover the trials of dead processes
        finished = #COMPLETE + #PRUNED
        stop when finished >= N; wait while finished + #RUNNING >= N; else ask for a trial
    train it

Every finished trial was RUNNING first and only a lock holder adds a RUNNING one, so
``finished + running <= N`` always holds: the study never holds more than ``N`` finished
trials, however many workers and ``qhpo run`` processes share it.
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
from qhpo._files import remove_orphans
from qhpo.runner._config import RunConfig
from qhpo.runner._storage import (
    FAILURE_ATTR,
    OWNER_ATTR,
    PREDICTOR_ATTR_PREFIX,
    StorageLocation,
    _recover,
    enqueue_retry,
    owner_record,
    signals_deferred,
)
from qhpo.runner._trial import CHECKPOINT_SCRATCH, DiskFull, run_trial

FINISHED = (TrialState.COMPLETE, TrialState.PRUNED)
_MAX_CRASHES_IN_A_ROW = 3
_MAX_FAILURES_IN_A_ROW = 10  # diverged or crashed: a space where every trial fails would loop forever
_WAIT_SECONDS = 2.0
_SAMPLER_STREAM = 1  # the HPO sampler's streams among the run seed's (see qhpo._seeds)


def count_states(study: optuna.Study) -> tuple[int, int]:
    """(finished, running) trials of ``study``."""
    trials = study.get_trials(deepcopy=False, states=FINISHED + (TrialState.RUNNING,))
    running = sum(t.state == TrialState.RUNNING for t in trials)
    return len(trials) - running, running


def claim_trial(study: optuna.Study, location: StorageLocation, target: int) -> optuna.Trial | bool:
    """Start a trial of ``study`` if it holds fewer than ``target`` finished and running trials.

    Returns:
        The new trial (RUNNING, owned by this process); True when the study is done
        (``target`` finished trials); False when every free place is taken by a running
        trial (wait and ask again: one of them may fail).
    """
    with location.claim(study.study_name), signals_deferred():
        _recover(study, claimed=True)  # a worker elsewhere may have died
        finished, running = count_states(study)
        if finished >= target:
            return True
        if finished + running >= target:
            return False
        trial = study.ask()
        trial.set_user_attr(OWNER_ATTR, owner_record())
        return trial


def sampler_seed(seed: int, worker_index: int, offset: int) -> int:
    """The HPO sampler's seed of one worker: distinct per run seed, worker and trials already there."""
    from qhpo._seeds import derived_seed

    return derived_seed(seed, _SAMPLER_STREAM, worker_index, offset)


def run_worker(
    config: RunConfig,
    location: StorageLocation,
    *,
    worker_index: int = 0,
    on_change: Callable[[optuna.Study], None] | None = None,
    data=None,
) -> int:
    """Train trials of ``config.study`` until it holds ``config.trials`` finished ones.

    Returns:
        Number of trials this worker finished.
    """
    import torch

    from qhpo.runner._study import hpo_sampler, make_pruner, search_space
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
    # Seed the sampler by the trials already there, so a resumed or second worker does not
    # propose the configurations of the first one again.
    offset = len(optuna.load_study(study_name=config.study, storage=storage).trials)
    study = optuna.load_study(
        study_name=config.study,
        storage=storage,
        sampler=hpo_sampler(config.hpo_sampler, seed=sampler_seed(config.seed, worker_index, offset)),
        pruner=make_pruner(config),
    )
    checkpoint_dir = location.run_dir / config.study / "checkpoints"
    checkpoint_dir.mkdir(parents=True, exist_ok=True)
    remove_orphans(checkpoint_dir, CHECKPOINT_SCRATCH)  # checkpoints being written by killed workers

    def changed() -> None:
        if on_change is not None:
            on_change(study)

    done = 0
    crashes = failures = 0
    while True:
        trial = claim_trial(study, location, config.trials)
        if trial is True:
            return done
        if trial is False:
            changed()
            time.sleep(_WAIT_SECONDS)
            continue
        changed()
        try:
            state = run_trial(
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
            )
        except BaseException as error:
            _end_interrupted(study, trial, error)
            if not isinstance(error, Exception) or isinstance(error, DiskFull):
                raise  # KeyboardInterrupt, SystemExit, a full disk: the trial is enqueued again for the next run
            crashes += 1
            print(
                f"qhpo: trial {trial.number} crashed ({type(error).__name__}: {error}); the search goes on.",
                file=sys.stderr,
            )
            if crashes >= _MAX_CRASHES_IN_A_ROW:
                raise QhpoError(
                    f"{crashes} trials in a row crashed, the last with {type(error).__name__}: {error}; "
                    "fix that and run the same command again to resume."
                ) from None
            continue
        crashes = 0
        failures = 0 if state in FINISHED else failures + 1
        if failures >= _MAX_FAILURES_IN_A_ROW:
            reason = study._storage.get_trial(trial._trial_id).user_attrs.get(FAILURE_ATTR, "failed")
            raise QhpoError(
                f"the last {failures} trials all failed (the last one {reason}); check the search space "
                "(--space), then run the same command again to resume."
            )
        done += state in FINISHED
        publish_predictor_state(study)
        changed()


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
            frozen = study._storage.get_trial(trial._trial_id)
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
