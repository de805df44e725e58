"""The live Optuna study of one seed: its worker processes, each trial's training replayed from
the recorded curve, and the seed's result read back from the storage."""

from __future__ import annotations

import math
import multiprocessing
import os
import sys
import time
import traceback
from dataclasses import dataclass
from typing import Any

import numpy as np

from qhpo._optuna_schema import storage_of
from qhpo.curves import CurveTable
from qhpo.replay._benchmark import SeedResult

_SECONDS_ATTR = "qhpo.replay.predictor_seconds."  # + worker index: its predictor's fit and predict seconds
#: Trial user attribute ``{"epochs", "worker"}``: the epochs trained when it ended (a NaN epoch
#: counts) and the index of the worker process that replayed it; under a budget also
#: ``"spent"`` (the study's epochs spent when it ended) and ``"cut"`` (the budget ended it).
FINISHED_ATTR = "qhpo.replay.finished"


@dataclass(frozen=True)
class LiveStudy:
    """What every worker of one live study needs (inherited by the forked processes)."""

    rule: str
    location: Any  # qhpo.runner.StorageLocation
    name: str
    curves: np.ndarray
    rows: list[dict[str, Any]]
    distributions: dict[str, tuple]
    sleep: np.ndarray  # real seconds per epoch of each row
    mode: str
    seed: int
    predictor: Any
    sampler: Any
    options: dict[str, Any]
    settle: bool
    poll_seconds: float
    budget: int | None = None  # epochs the whole study may train, as the in-process replay's budget
    first_rung: int = 1  # epochs a new configuration must be able to train within the budget


def distributions_of(table: CurveTable) -> dict[str, Any]:
    """Per hyperparameter, what the objective suggests: ``(low, high)`` of a number, the
    choices of a category; each holds every drawn value."""
    out: dict[str, Any] = {}
    for name, values in table.params.items():
        if values.dtype.kind in "iuf":
            out[name] = (float(np.min(values)), float(np.max(values)))
        else:
            out[name] = tuple(sorted({str(v) for v in values}))
    return out


def create_study(spec: LiveStudy) -> None:
    """Create the study once, before the workers start (processes creating one study race)."""
    import optuna

    storage = spec.location.open()
    optuna.create_study(
        study_name=spec.name,
        storage=storage,
        direction="maximize" if spec.mode == "max" else "minimize",
    )
    engine = getattr(storage, "engine", None)
    if engine is not None:
        engine.dispose()  # the forked workers open their own connections


def run_workers(spec: LiveStudy, workers: int) -> None:
    """Run ``workers`` worker processes on the study and wait for all of them."""
    context = multiprocessing.get_context("fork")  # the workers inherit the curves; no re-import
    processes = [context.Process(target=_worker_main, args=(spec, k), daemon=False) for k in range(workers)]
    for process in processes:
        process.start()
    failed = []
    for k, process in enumerate(processes):
        process.join()
        if process.exitcode != 0:
            failed.append(f"worker {k} exited with status {process.exitcode}")
    if failed:
        raise RuntimeError(f"the live replay of {spec.rule} on seed {spec.seed} failed: " + "; ".join(failed))


def _worker_main(spec: LiveStudy, index: int) -> None:
    try:
        _work(spec, index)
    except BaseException:
        traceback.print_exc(file=sys.stderr)
        sys.stderr.flush()
        os._exit(1)
    sys.stderr.flush()
    os._exit(0)  # no atexit handlers of the parent in a forked child


def _pruner(spec: LiveStudy):
    """The rule's pruner, built afresh in each worker."""
    from qhpo.optuna import OPTUNA_PRUNERS, PredictivePruner, can_freeze_thaw, optuna_pruner

    epochs = spec.curves.shape[1]
    if spec.rule in OPTUNA_PRUNERS:
        return optuna_pruner(spec.rule, epochs, **spec.options)
    options = dict(spec.options)
    if spec.settle:
        options["background"] = False  # the decision that asks for a fit waits for it
    return PredictivePruner(
        spec.rule,
        spec.predictor,
        sampler=spec.sampler,
        max_epochs=epochs,
        random_state=spec.seed,
        policy_options=options,
        freeze_thaw=can_freeze_thaw(spec.rule),  # qhpo pauses and resumes, as in the local replay
    )


def _work(spec: LiveStudy, index: int) -> None:
    """One worker: claim a trial, replay its epochs, until the study is done."""
    import optuna

    from qhpo.optuna import PredictivePruner

    optuna.logging.set_verbosity(optuna.logging.WARNING)
    pruner = _pruner(spec)
    study = optuna.load_study(
        study_name=spec.name,
        storage=spec.location.open(),
        pruner=pruner,
        sampler=optuna.samplers.RandomSampler(seed=spec.seed),
    )
    try:
        while True:
            trial = _claim(study, spec, pruner)
            if trial is True:
                return
            if trial is False:
                time.sleep(spec.poll_seconds)
                continue
            _train(study, trial, spec, pruner, index)
    finally:
        if isinstance(pruner, PredictivePruner):
            service = getattr(pruner.policy_, "prediction_service", None)
            if service is not None:
                service.close()
                seconds = float(service.fit_seconds + service.predict_seconds)
                study.set_user_attr(f"{_SECONDS_ATTR}{index}", seconds)


def _claim(study, spec: LiveStudy, pruner):
    """Under the claim lock: a resumption, else the next drawn row; True when done, False to wait."""
    from optuna.trial import TrialState

    from qhpo.optuna import CHECKPOINT_ATTR, RESUME_OF_ATTR, PredictivePruner, resumable_trials
    from qhpo.runner import Budget, fits_new_configuration

    resumes = isinstance(pruner, PredictivePruner)
    with spec.location.claim(study.study_name):
        trials = study.get_trials(deepcopy=False)
        running = sum(t.state == TrialState.RUNNING for t in trials)
        started = sum(RESUME_OF_ATTR not in t.user_attrs for t in trials)
        more, left = started < len(spec.rows), None
        if spec.budget is not None:
            # as the in-process replay: a new row only while the budget holds its first rung once
            # the running trials have reached theirs; a resumption while any epoch is left
            left = spec.budget - epochs_spent(trials)
            if left <= 0:
                return running == 0  # spent: the running trials are cut after their epoch
            running_epochs = [len(t.intermediate_values) for t in trials if t.state == TrialState.RUNNING]
            budget = Budget(spec.budget, "epochs")
            more = more and fits_new_configuration(budget, left, spec.first_rung, running_epochs, lambda: 0.0)
        told = {} if left is None else {"budget_left": int(left)}
        resumable = resumable_trials(study, pruner, limit=1, more_trials=more, **told) if resumes else []
        if not resumable and not more and running == 0 and _settle(pruner):
            # the last promote before the replay ends reads the predictor fitted on every curve
            resumable = resumable_trials(study, pruner, limit=1, **told)
        if resumable:
            resumable[0].enqueue(study)
        elif more:
            study.enqueue_trial(spec.rows[started], user_attrs={CHECKPOINT_ATTR: started}, skip_if_exists=False)
        else:
            policy = getattr(pruner, "policy_", None)
            return running == 0 or policy is None or not policy.resumes
        return study.ask()


def epochs_spent(trials) -> int:
    """Epochs the live study trained, as the in-process replay counts them: each trial's own
    (not those it reported again from a checkpoint), a diverged trial's NaN epoch included."""
    from qhpo.optuna import resumed_after

    total = 0
    for trial in trials:
        finished = trial.user_attrs.get(FINISHED_ATTR)
        epochs = int(finished["epochs"]) if finished is not None else len(trial.intermediate_values)
        total += max(0, epochs - int(resumed_after(trial) or 0))
    return total


def _settle(pruner) -> bool:
    """Wait for the policy's pending background fits; True when a fit landed meanwhile."""
    service = getattr(getattr(pruner, "policy_", None), "prediction_service", None)
    if service is None or not getattr(service, "background", False):
        return False
    fits = service.n_fits
    service.wait(120.0)
    return service.n_fits != fits


def _train(study, trial, spec: LiveStudy, pruner, worker: int) -> None:
    """Replay row ``qhpo.checkpoint`` in ``trial``: its epochs reported one by one, as an objective would."""
    from optuna.trial import TrialState

    from qhpo.optuna import CHECKPOINT_ATTR, RESUME_OF_ATTR, PredictivePruner, resumed_after

    row = int(trial.user_attrs[CHECKPOINT_ATTR])
    for name, space in spec.distributions.items():  # each returns the enqueued value: the row's
        if isinstance(space[0], float):
            trial.suggest_float(name, space[0], space[1])
        else:
            trial.suggest_categorical(name, space)
    curve = spec.curves[row]
    epochs = len(curve)
    start = 0
    if trial.user_attrs.get(RESUME_OF_ATTR) is not None:
        start = int(resumed_after(trial))
        for epoch in range(1, start + 1):  # the checkpoint's epochs, as they were
            trial.report(float(curve[epoch - 1]), epoch)
    state, value, epoch, cut = TrialState.COMPLETE, None, start, False
    for epoch in range(start + 1, epochs + 1):
        if spec.sleep[row] > 0:
            time.sleep(spec.sleep[row])
        value = float(curve[epoch - 1])
        if not math.isfinite(value):  # diverged: the loop that checks its loss ends the trial
            state = TrialState.FAIL
            break
        trial.report(value, epoch)
        if epoch < epochs and trial.should_prune():  # the last epoch is paid for: never judged
            state = TrialState.PRUNED
            break
        if epoch < epochs and spec.budget is not None and epochs_spent(study.get_trials(deepcopy=False)) >= spec.budget:
            state, cut = TrialState.PRUNED, True  # the budget is spent: cut after this epoch
            break
    finished = {"epochs": epoch, "worker": worker}
    if spec.budget is not None:
        others = [t for t in study.get_trials(deepcopy=False) if t.number != trial.number]
        finished.update(spent=epochs_spent(others) + epoch - start, cut=cut)
    trial.set_user_attr(FINISHED_ATTR, finished)
    if isinstance(pruner, PredictivePruner):
        pruner.flush()  # decision records are written in the background; Optuna refuses them after tell
    if state == TrialState.COMPLETE:
        study.tell(trial, value)
    else:
        study.tell(trial, state=state)


def seed_result_of(spec: LiveStudy, wallclock: float) -> SeedResult:
    """The replay's outcome, read back from the storage."""
    import optuna
    from optuna.trial import TrialState

    from qhpo.optuna import CHECKPOINT_ATTR, PAUSED_ATTR, RESUME_OF_ATTR, resumed_after

    study = optuna.load_study(study_name=spec.name, storage=spec.location.open())
    trials = study.get_trials(deepcopy=False)
    n = len(spec.rows)
    trained = np.zeros(n, dtype=int)
    complete = np.zeros(n, dtype=bool)
    completed_at = np.full(n, -1, dtype=int)
    pauses, resumptions = [], []
    for trial in trials:
        row = int(trial.user_attrs[CHECKPOINT_ATTR])
        finished = trial.user_attrs[FINISHED_ATTR]
        trained[row] = max(trained[row], int(finished["epochs"]))
        complete[row] |= trial.state == TrialState.COMPLETE
        if trial.state == TrialState.COMPLETE and "spent" in finished:
            completed_at[row] = int(finished["spent"])
        if trial.user_attrs.get(PAUSED_ATTR) is not None:
            pauses.append(((trial.datetime_complete, trial.number), row, len(trial.intermediate_values)))
        if trial.user_attrs.get(RESUME_OF_ATTR) is not None:
            resumptions.append(((trial.datetime_start, trial.number), row, int(resumed_after(trial))))
    unfinished = [t.number for t in trials if not t.state.is_finished()]
    replayed = len({int(t.user_attrs[CHECKPOINT_ATTR]) for t in trials})
    if unfinished or (spec.budget is None and replayed != n):
        raise RuntimeError(f"the live study of {spec.rule} on seed {spec.seed} ended with rows left unreplayed")
    seconds = sum(float(v) for k, v in study.user_attrs.items() if k.startswith(_SECONDS_ATTR))
    engine = getattr(storage_of(study), "engine", None)
    if engine is not None:
        engine.dispose()
    return SeedResult(
        trained,
        complete,
        float(wallclock),
        seconds,
        tuple((row, epoch) for _, row, epoch in sorted(pauses, key=lambda p: p[0])),
        tuple((row, epoch) for _, row, epoch in sorted(resumptions, key=lambda p: p[0])),
        completed_at if spec.budget is not None else None,
    )
