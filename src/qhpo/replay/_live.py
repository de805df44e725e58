"""The live replay: recorded curves in place of training, driven through the real Optuna pruner.

Where :func:`qhpo.replay.simulate` plays a rule in one process on a simulated clock, the live
replay runs it as ``qhpo run`` does: a real Optuna study in a real storage file (SQLite or
an Optuna journal), ``K`` worker processes sharing it, each with its own pruner
(:class:`qhpo.optuna.PredictivePruner` for qhpo's policies, with its background fits;
Optuna's own pruner for ``median``, ``sha``, ``hyperband``, ``conformal``), and
freeze-thaw through :func:`qhpo.optuna.resumable_trials` and
:meth:`qhpo.optuna.ResumableTrial.enqueue`. Only the training is replaced: trial ``j`` of
the drawn rows reports ``c_j1 .. c_jE`` with ``trial.report(value, epoch)``, one epoch
every ``epoch_seconds`` (times ``d_j / mean(d)`` when the table records seconds per epoch
``d``), so background fits land while trials run, as in a real search.

Each worker loops, holding the study's claim lock (:meth:`qhpo.runner.StorageLocation.claim`)
to choose its next trial, as ``qhpo run`` does:

    a paused trial the policy resumes now (resumable_trials, limit 1): enqueue its resumption
    else the next drawn row, in the seed's order: enqueue it with its hyperparameters
    else, when nothing runs and nothing resumes (after waiting for the predictor's pending
        fits, as ``qhpo run`` does before it ends): stop; otherwise wait and ask again
    study.ask(), then report the row's epochs, asking should_prune() after each

A resumption reports the epochs of the paused trial again (its checkpoint) and trains on.
A value that is not finite ends the trial as FAIL at that epoch (which counts as trained),
and the last epoch is never judged, both as in :func:`qhpo.replay.simulate`. Each trial
carries the row's position in the draw as its ``qhpo.checkpoint`` key; the outcome
(epochs trained per row, completed rows, pauses, resumptions) is read back from the storage
once every worker has ended.

With ``settle`` each decision waits for the predictor's fit: the pruner's policy fits
inline (``background=False``), so the fit a decision asks for is the one it reads. One
worker with ``settle`` is then deterministic, and makes the decisions of the in-process
replay (:func:`qhpo.replay.replay_rule`) on the same seed.
"""

from __future__ import annotations

import math
import multiprocessing
import os
import shutil
import sys
import tempfile
import time
import traceback
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from qhpo._optuna_schema import storage_of
from qhpo._rules import RuleKind, rule_names
from qhpo.curves import CurveTable
from qhpo.replay._benchmark import (
    BenchmarkSettings,
    SeedJob,
    SeedOutcome,
    SeedResult,
    leave_out_of_prior,
    replay_rule,
    seed_jobs,
    seed_outcome,
    summarise,
)

#: Where the live replay runs: a live Optuna study, or real Ray Tune trials (:mod:`qhpo.ray`).
LIVE_BACKENDS = ("optuna", "ray")
#: Storage kinds of the live Optuna replay.
LIVE_STORAGES = ("sqlite", "journal")
#: Rules the live replay runs in a live study (swift-hyperband makes its own configurations
#: and is replayed in-process).
LIVE_RULES = rule_names(RuleKind.POLICY, RuleKind.OPTUNA)
_SECONDS_ATTR = "qhpo.replay.predictor_seconds."  # + worker index: its predictor's fit and predict seconds
#: Trial user attribute ``{"epochs", "worker"}``: the epochs trained when it ended (a NaN epoch
#: counts) and the index of the worker process that replayed it.
FINISHED_ATTR = "qhpo.replay.finished"


@dataclass(frozen=True)
class LiveSettings:
    """How the live replay runs, whatever the rule.

    Attributes:
        storage: ``"sqlite"`` or ``"journal"`` (backend ``"optuna"``).
        folder: Where each study's storage file (backend ``"optuna"``) or each Ray Tune
            experiment (backend ``"ray"``) is written and kept; None: a temporary folder,
            removed when the replay ends.
        epoch_seconds: Real seconds each epoch takes (0: no wait).
        settle: Each decision waits for the predictor's fit (inline fits).
        poll_seconds: How long a worker with nothing to start waits before asking again
            (backend ``"optuna"``).
        backend: ``"optuna"`` (:func:`replay_live`) or ``"ray"``
            (:func:`qhpo.ray.replay_live_on_ray`).
    """

    storage: str = "sqlite"
    folder: Path | None = None
    epoch_seconds: float = 0.005
    settle: bool = False
    poll_seconds: float = 0.005
    backend: str = "optuna"

    def __post_init__(self):
        if self.backend not in LIVE_BACKENDS:
            raise ValueError(f"backend must be one of {', '.join(LIVE_BACKENDS)}, got {self.backend!r}")
        if self.storage not in LIVE_STORAGES:
            raise ValueError(f"storage must be one of {', '.join(LIVE_STORAGES)}, got {self.storage!r}")
        for name in ("epoch_seconds", "poll_seconds"):
            value = getattr(self, name)
            if not (isinstance(value, (int, float)) and math.isfinite(value) and value >= 0):
                raise ValueError(f"{name} must be a finite number of seconds, 0 or more, got {value!r}")


@dataclass(frozen=True)
class EpochClock:
    """Real time of the replayed epochs: row ``j`` sleeps ``epoch_seconds * d_j / mean(d)`` per epoch.

    ``d`` is the table's seconds per epoch (1 for every row when it records none), so the
    mean epoch takes ``epoch_seconds`` and ``scale = epoch_seconds / mean(d)`` real seconds
    stand for one of the table's time units.

    Example:
        >>> import numpy as np
        >>> from qhpo.curves import CurveTable
        >>> table = CurveTable("t", "accuracy", "max", np.arange(2), {}, np.ones((2, 3)), np.array([1.0, 3.0]))
        >>> clock = EpochClock.of(table, 0.01)
        >>> clock.sleep.tolist(), clock.units(0.5)
        ([0.005, 0.015], 100.0)
    """

    duration: np.ndarray  # d_j, in the table's units
    scale: float  # real seconds per table unit

    @classmethod
    def of(cls, table: CurveTable, epoch_seconds: float) -> EpochClock:
        duration = np.ones(table.n_trials) if table.seconds_per_epoch is None else table.seconds_per_epoch
        duration = np.asarray(duration, dtype=float)
        return cls(duration, float(epoch_seconds) / float(np.mean(duration)))

    @property
    def sleep(self) -> np.ndarray:
        """Real seconds per epoch of each row."""
        return self.duration * self.scale

    def units(self, elapsed: float) -> float:
        """``elapsed`` real seconds in the table's units (seconds when epochs take no time)."""
        return elapsed / self.scale if self.scale > 0 else elapsed


def live_stem(table: CurveTable, name: str, seed: int, workers: int) -> str:
    """The name of one live run's files: ``TABLE-RULE-seedS-Kw``."""
    return f"{table.name}-{name}-seed{seed}-{workers}w"


def check_workers(workers) -> int:
    """``workers`` as an int of at least 1 (ValueError otherwise)."""
    if isinstance(workers, bool) or int(workers) != workers or workers < 1:
        raise ValueError(f"workers must be an integer of at least 1, got {workers!r}")
    return int(workers)


@dataclass(frozen=True)
class _Study:
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


def replay_live(
    name: str,
    table: CurveTable,
    *,
    seed: int,
    live: LiveSettings,
    workers: int = 1,
    predictor: Any = "svr",
    sampler: Any = None,
    options: dict | None = None,
) -> SeedResult:
    """Replay rule ``name`` on ``table`` (already drawn and ordered) in a live Optuna study.

    Args:
        name: A rule of :data:`LIVE_RULES` (a qhpo policy or an Optuna pruner).
        table: The drawn rows, in the order trials start.
        seed: The seed (the policy's ``random_state``, the study's name).
        live: Storage, epoch time, settling.
        workers: Worker processes sharing the study.
        predictor, sampler, options: As for :func:`qhpo.replay.replay_rule`.

    Returns:
        The :class:`SeedResult` of the replay; ``wallclock`` is the real time from the first
        worker's start to the last one's end, in the table's time units (epochs, or
        seconds when it records seconds per epoch) when ``epoch_seconds > 0``, else in
        seconds.
    """
    import optuna

    from qhpo.runner import resolve_storage

    if name not in LIVE_RULES:
        raise ValueError(f"name must be one of {', '.join(LIVE_RULES)}, got {name!r}")
    workers = check_workers(workers)
    optuna.logging.set_verbosity(optuna.logging.WARNING)
    folder = Path(tempfile.mkdtemp(prefix="qhpo-live-")) if live.folder is None else Path(live.folder)
    try:
        folder.mkdir(parents=True, exist_ok=True)
        stem = live_stem(table, name, seed, workers)
        path = folder / (f"{stem}.db" if live.storage == "sqlite" else f"{stem}.log")
        for old in (path, path.with_name(path.name + "-wal"), path.with_name(path.name + "-shm")):
            old.unlink(missing_ok=True)  # a rerun into the same folder starts afresh
        location = resolve_storage(str(path) if live.storage == "sqlite" else f"journal:{path}")
        clock = EpochClock.of(table, live.epoch_seconds)
        spec = _Study(
            rule=name,
            location=location,
            name=f"qhpo-replay-{seed}",  # as the in-process replay: HyperbandPruner hashes the name
            curves=np.asarray(table.curves, dtype=float),
            rows=table.param_rows(),
            distributions=_distributions(table),
            sleep=clock.sleep,
            mode=table.mode,
            seed=int(seed),
            predictor=predictor,
            sampler=sampler,
            options=leave_out_of_prior(options, table),
            settle=bool(live.settle),
            poll_seconds=float(live.poll_seconds),
        )
        _create_study(spec)
        started = time.perf_counter()
        _run_workers(spec, workers)
        return _outcome(spec, clock.units(time.perf_counter() - started))
    finally:
        if live.folder is None:
            shutil.rmtree(folder, ignore_errors=True)


def _distributions(table: CurveTable) -> dict[str, Any]:
    """Per hyperparameter, what the objective suggests: ``(low, high)`` of a number, the
    choices of a category; each holds every drawn value."""
    out: dict[str, Any] = {}
    for name, values in table.params.items():
        if values.dtype.kind in "iuf":
            out[name] = (float(np.min(values)), float(np.max(values)))
        else:
            out[name] = tuple(sorted({str(v) for v in values}))
    return out


def _create_study(spec: _Study) -> None:
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


def _run_workers(spec: _Study, workers: int) -> None:
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


def _worker_main(spec: _Study, index: int) -> None:
    try:
        _work(spec, index)
    except BaseException:
        traceback.print_exc(file=sys.stderr)
        sys.stderr.flush()
        os._exit(1)
    sys.stderr.flush()
    os._exit(0)  # no atexit handlers of the parent in a forked child


def _pruner(spec: _Study):
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


def _work(spec: _Study, index: int) -> None:
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


def _claim(study, spec: _Study, pruner):
    """Under the claim lock: a resumption, else the next drawn row; True when done, False to wait."""
    from optuna.trial import TrialState

    from qhpo.optuna import CHECKPOINT_ATTR, RESUME_OF_ATTR, PredictivePruner, resumable_trials

    resumes = isinstance(pruner, PredictivePruner)
    with spec.location.claim(study.study_name):
        trials = study.get_trials(deepcopy=False)
        running = sum(t.state == TrialState.RUNNING for t in trials)
        started = sum(RESUME_OF_ATTR not in t.user_attrs for t in trials)
        resumable = resumable_trials(study, pruner, limit=1) if resumes else []
        if not resumable and started >= len(spec.rows) and running == 0 and _settle(pruner):
            # the last promote before the replay ends reads the predictor fitted on every curve
            resumable = resumable_trials(study, pruner, limit=1)
        if resumable:
            resumable[0].enqueue(study)
        elif started < len(spec.rows):
            study.enqueue_trial(spec.rows[started], user_attrs={CHECKPOINT_ATTR: started}, skip_if_exists=False)
        else:
            policy = getattr(pruner, "policy_", None)
            return running == 0 or policy is None or not policy.resumes
        return study.ask()


def _settle(pruner) -> bool:
    """Wait for the policy's pending background fits; True when a fit landed meanwhile."""
    service = getattr(getattr(pruner, "policy_", None), "prediction_service", None)
    if service is None or not getattr(service, "background", False):
        return False
    fits = service.n_fits
    service.wait(120.0)
    return service.n_fits != fits


def _train(study, trial, spec: _Study, pruner, worker: int) -> None:
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
    state, value, epoch = TrialState.COMPLETE, None, start
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
    trial.set_user_attr(FINISHED_ATTR, {"epochs": epoch, "worker": worker})
    if isinstance(pruner, PredictivePruner):
        pruner.flush()  # decision records are written in the background; Optuna refuses them after tell
    if state == TrialState.COMPLETE:
        study.tell(trial, value)
    else:
        study.tell(trial, state=state)


def _outcome(spec: _Study, wallclock: float) -> SeedResult:
    """The replay's outcome, read back from the storage."""
    import optuna
    from optuna.trial import TrialState

    from qhpo.optuna import CHECKPOINT_ATTR, PAUSED_ATTR, RESUME_OF_ATTR, resumed_after

    study = optuna.load_study(study_name=spec.name, storage=spec.location.open())
    trials = study.get_trials(deepcopy=False)
    n = len(spec.rows)
    trained = np.zeros(n, dtype=int)
    complete = np.zeros(n, dtype=bool)
    pauses, resumptions = [], []
    for trial in trials:
        row = int(trial.user_attrs[CHECKPOINT_ATTR])
        trained[row] = max(trained[row], int(trial.user_attrs[FINISHED_ATTR]["epochs"]))
        complete[row] |= trial.state == TrialState.COMPLETE
        if trial.user_attrs.get(PAUSED_ATTR) is not None:
            pauses.append(((trial.datetime_complete, trial.number), row, len(trial.intermediate_values)))
        if trial.user_attrs.get(RESUME_OF_ATTR) is not None:
            resumptions.append(((trial.datetime_start, trial.number), row, int(resumed_after(trial))))
    unfinished = [t.number for t in trials if not t.state.is_finished()]
    if unfinished or len({int(t.user_attrs[CHECKPOINT_ATTR]) for t in trials}) != n:
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
    )


def live_rules(live: LiveSettings) -> tuple[tuple[str, ...], Callable[..., SeedResult]]:
    """The rules ``live.backend`` replays live, and its replay of one rule on one seed."""
    if live.backend == "ray":
        from qhpo.ray import RAY_LIVE_RULES, replay_live_on_ray  # needs the ray extra

        return RAY_LIVE_RULES, replay_live_on_ray
    return LIVE_RULES, replay_live


def live_seed(job: SeedJob, live: LiveSettings) -> SeedOutcome:
    """The live counterpart of the in-process replay of one seed: every run of the job on
    the seed's drawn rows (the rules the backend cannot run live, in-process)."""
    settings = job.settings
    rules, replay_one = live_rules(live)

    def replay(run, drawn):
        common = dict(seed=job.seed, predictor=settings.predictor, sampler=settings.sampler, options=dict(run.options))
        if run.name in rules:
            return replay_one(run.name, drawn, live=live, workers=settings.workers, **common)
        return replay_rule(run.name, drawn, workers=settings.workers, **common)

    return seed_outcome(job, replay)


def live_outcomes(
    jobs: Sequence[SeedJob], live: LiveSettings, progress: Callable[[str], None] | None = None
) -> dict[tuple[str, int], SeedOutcome]:
    """Replay ``jobs`` live, one after the other (each already runs its workers as processes)."""
    outcomes: dict[tuple[str, int], SeedOutcome] = {}
    started = time.perf_counter()
    for job in jobs:
        outcome = live_seed(job, live)
        outcomes[(outcome.table, outcome.seed)] = outcome
        if progress:
            progress(
                f"{outcome.table} seed {outcome.seed} done live ({len(outcomes)}/{len(jobs)}, "
                f"{time.perf_counter() - started:.0f} s)"
            )
    return outcomes


def live_document(table: CurveTable, settings: BenchmarkSettings, live: LiveSettings, outcomes, seconds) -> dict:
    """``summarise``'s document of one table, with how the live replay ran."""
    result = summarise(table, settings, outcomes, seconds)
    result["backend"] = live_record(live, settings)
    return result


def live_record(live: LiveSettings, settings: BenchmarkSettings) -> dict:
    """What the JSON says about the live replay."""
    rules, _ = live_rules(live)
    in_process = [p for p in settings.policies if p not in rules]
    if live.backend == "ray":
        return {
            "name": "ray",
            "mode": "live",
            "epoch_seconds": float(live.epoch_seconds),
            "settle": bool(live.settle),
            "workers": int(settings.workers),
            "in_process": in_process,
        }
    return {
        "name": "optuna",
        "storage": live.storage,
        "epoch_seconds": float(live.epoch_seconds),
        "settle": bool(live.settle),
        "worker_processes": int(settings.workers),
        "in_process": in_process,
    }


def run_live_benchmark(
    table: CurveTable,
    *,
    live: LiveSettings,
    progress: Callable[[str], None] | None = None,
    **kwargs: Any,
) -> dict:
    """:func:`qhpo.replay.run_benchmark` with every rule replayed live (see the module docstring).

    ``kwargs`` are :class:`qhpo.replay.BenchmarkSettings`'s fields by name (``policies``,
    ``predictor``, ``sampler``, ``trials``, ``seeds``, ``first_seed``, ``workers``,
    ``sweep_seeds``, ``options``); ``workers`` is the number of worker processes.
    """
    settings = BenchmarkSettings(**_settings_fields(kwargs))
    started = time.perf_counter()
    outcomes = live_outcomes(seed_jobs(table, settings), live, progress)
    return live_document(table, settings, live, outcomes, time.perf_counter() - started)


def run_live_suite(
    tables: Sequence[CurveTable],
    *,
    live: LiveSettings,
    name: str = "suite",
    progress: Callable[[str], None] | None = None,
    **kwargs: Any,
) -> dict:
    """:func:`qhpo.replay.run_suite` with every rule replayed live."""
    from qhpo.replay._suite import suite_summary

    tables = list(tables)
    if not tables:
        raise ValueError("tables must hold at least one curve table")
    settings = BenchmarkSettings(**_settings_fields(kwargs))
    started = time.perf_counter()
    results = {}
    for table in tables:
        began = time.perf_counter()
        outcomes = live_outcomes(seed_jobs(table, settings), live, progress)
        results[table.name] = live_document(table, settings, live, outcomes, time.perf_counter() - began)
    return {
        "suite": name,
        "trials": settings.trials,
        "seeds": settings.seeds,
        "first_seed": settings.first_seed,
        "workers": settings.workers,
        "predictor": settings.predictor_name,
        "seconds": round(time.perf_counter() - started, 3),
        "tables": results,
        "summary": suite_summary(results),
        "backend": live_record(live, settings),
    }


def _settings_fields(kwargs: dict[str, Any]) -> dict[str, Any]:
    fields = dict(kwargs)
    fields.pop("jobs", None)  # seeds run one after the other: each runs its own worker processes
    fields.pop("policy_runner", None)
    if "policies" in fields:
        fields["policies"] = tuple(fields["policies"])
    return fields
