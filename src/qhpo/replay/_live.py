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

import dataclasses
import math
import shutil
import tempfile
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from qhpo._checks import check_int
from qhpo._rules import RuleKind, rule_names
from qhpo.curves import CurveTable
from qhpo.optuna import first_rung
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
from qhpo.replay._live_study import (
    FINISHED_ATTR as FINISHED_ATTR,  # public: the trial attribute each live trial ends with
)
from qhpo.replay._live_study import (
    LiveStudy,
    create_study,
    distributions_of,
    run_workers,
    seed_result_of,
)
from qhpo.replay._rule_replay import _optuna_logs_quiet

#: Where the live replay runs: a live Optuna study, or real Ray Tune trials (:mod:`qhpo.ray`).
LIVE_BACKENDS = ("optuna", "ray")
#: Storage kinds of the live Optuna replay.
LIVE_STORAGES = ("sqlite", "journal")
#: Rules the live replay runs in a live study (swift-hyperband makes its own configurations
#: and is replayed in-process).
LIVE_RULES = rule_names(RuleKind.POLICY, RuleKind.OPTUNA)


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
    return check_int("workers", workers, least=1)


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
    budget: int | None = None,
) -> SeedResult:
    """Replay rule ``name`` on ``table`` (already drawn and ordered) in a live Optuna study.

    Args:
        name: A rule of :data:`LIVE_RULES` (a qhpo policy or an Optuna pruner).
        table: The drawn rows, in the order trials start.
        seed: The seed (the policy's ``random_state``, the study's name).
        live: Storage, epoch time, settling.
        workers: Worker processes sharing the study.
        predictor, sampler, options: As for :func:`qhpo.replay.replay_rule`.
        budget: Epochs the whole study may train, as the in-process replay's ``budget``
            (:func:`qhpo.replay.simulate`): a new row starts only while what is left holds
            the rule's first rung, the policy is told the epochs left when it is asked what
            to resume, and the trial training when the last epoch is spent is cut after it;
            the result's ``completed_at`` holds the epochs spent when each row completed.

    Returns:
        The :class:`SeedResult` of the replay; ``wallclock`` is the real time from the first
        worker's start to the last one's end, in the table's time units (epochs, or
        seconds when it records seconds per epoch) when ``epoch_seconds > 0``, else in
        seconds.
    """
    from qhpo.runner import resolve_storage

    if name not in LIVE_RULES:
        raise ValueError(f"name must be one of {', '.join(LIVE_RULES)}, got {name!r}")
    workers = check_workers(workers)
    folder = Path(tempfile.mkdtemp(prefix="qhpo-live-")) if live.folder is None else Path(live.folder)
    with _optuna_logs_quiet():  # Optuna's INFO lines at WARNING while it runs, then as the caller had them
        try:
            folder.mkdir(parents=True, exist_ok=True)
            stem = live_stem(table, name, seed, workers)
            path = folder / (f"{stem}.db" if live.storage == "sqlite" else f"{stem}.log")
            for old in (path, path.with_name(path.name + "-wal"), path.with_name(path.name + "-shm")):
                old.unlink(missing_ok=True)  # a rerun into the same folder starts afresh
            location = resolve_storage(str(path) if live.storage == "sqlite" else f"journal:{path}")
            clock = EpochClock.of(table, live.epoch_seconds)
            spec = _study_spec(name, table, seed, location, clock, live, predictor, sampler, options)
            if budget is not None:
                rung = first_rung(name, table.epochs, spec.options)
                spec = dataclasses.replace(spec, budget=check_int("budget", budget, least=1), first_rung=rung)
            create_study(spec)
            started = time.perf_counter()
            run_workers(spec, workers)
            return seed_result_of(spec, clock.units(time.perf_counter() - started))
        finally:
            if live.folder is None:
                shutil.rmtree(folder, ignore_errors=True)


def _study_spec(name, table, seed, location, clock, live, predictor, sampler, options) -> LiveStudy:
    """What every worker of the live study of rule ``name`` on ``table`` needs."""
    return LiveStudy(
        rule=name,
        location=location,
        name=f"qhpo-replay-{seed}",  # as the in-process replay: HyperbandPruner hashes the name
        curves=np.asarray(table.curves, dtype=float),
        rows=table.param_rows(),
        distributions=distributions_of(table),
        sleep=clock.sleep,
        mode=table.mode,
        seed=int(seed),
        predictor=predictor,
        sampler=sampler,
        options=leave_out_of_prior(options, table),
        settle=bool(live.settle),
        poll_seconds=float(live.poll_seconds),
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
    settings = BenchmarkSettings.of(**_settings_fields(kwargs))
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
    settings = BenchmarkSettings.of(**_settings_fields(kwargs))
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
    return fields
