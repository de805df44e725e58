"""The replay benchmark: every stopping rule on the same random draws of a curve table.

For seed ``s`` the benchmark draws ``trials`` rows of the table (without replacement when
the table has enough rows) in a random order, and every rule replays that same order
(a paired comparison). For each rule and seed, with ``y_j`` the final value of drawn
trial ``j`` in "higher is better" units (``sign * value``), ``F`` the drawn trials with a
finite final value (a diverged trial has none) and ``K`` the trials trained to the last
epoch (a diverged trial never is):

    cost_fraction = sum_j epochs_j / (trials * E)
    regret        = max_{j in F} y_j - max_{j in K} y_j        (metric units, >= 0)
    top1_kept     = [argmax_{j in F} y_j in K]

The *winner* of a replay is the trial the search returns as best: the completed trial
(in ``K``) with the highest final, the earliest started one among equals. Freeze-thaw
rules (``qhpo``) also report, per seed, ``resumed`` (resumptions made) and
``winner_resumed`` (1 when the winner was paused at some point, 0 otherwise or when no
trial completes); their means over seeds are ``resumed_mean`` and ``winner_resumed_rate``.

``regret`` falls back to ``max_{j in F} y_j - min_{j in F} y_j`` when no trial completes
(and is 0 when every drawn trial diverged). A diverged trial counts the epochs up to and
including the one whose value is NaN. Across tables, regret is divided by the table's
spread: the best minus the median of the finite final values of all its rows
(:func:`table_spread`). ``median``, ``sha`` and ``hyperband`` are Optuna's own pruners in
a real Optuna study, with these defaults for a table of ``E`` epochs (rounded, at least 1):

    MedianPruner(n_startup_trials=5, n_warmup_steps=E/10)
    SuccessiveHalvingPruner(min_resource=E/20, reduction_factor=3)
    HyperbandPruner(min_resource=E/20, max_resource=E, reduction_factor=3)

``conformal`` is ``surestop.ConformalPruner`` with its documented defaults
(``n_calibration=60, alpha=0.05``: the first 60 completed trials run unpruned and
calibrate the rule once).

``swift-hyperband`` draws its configurations from the same rows, repeating Hyperband
iterations (``R = E``, ``r_min = E/20``, ``eta = 3``, as the Hyperband pruner) until the
drawn rows are used up.
"""

from __future__ import annotations

import os
import time
from collections.abc import Callable, Iterable, Mapping
from concurrent.futures import ProcessPoolExecutor, as_completed
from dataclasses import dataclass, field
from typing import Any

from qhpo._checks import check_int
from qhpo.curves import CurveTable
from qhpo.optuna import OPTUNA_PRUNERS, first_rung, optuna_pruner
from qhpo.replay._rule_replay import (
    BENCH_POLICIES,
    ORACLE_POLICIES,
    SeedResult,
    draw_order,
    leave_out_of_prior,
    replay_rule,
)
from qhpo.replay._scores import SPREAD_DEFINITION, score, summarise, table_spread

#: This module's names, with those it gathers from the modules of one rule's replay and of the
#: scores.
__all__ = [
    "BENCH_POLICIES",
    "BenchmarkSettings",
    "OPTUNA_PRUNERS",
    "ORACLE_POLICIES",
    "RuleRun",
    "SPREAD_DEFINITION",
    "SWEEPS",
    "SeedJob",
    "SeedOutcome",
    "SeedResult",
    "default_jobs",
    "draw_order",
    "first_rung",
    "leave_out_of_prior",
    "optuna_pruner",
    "replay_jobs",
    "replay_rule",
    "replay_seed",
    "run_benchmark",
    "score",
    "seed_jobs",
    "seed_outcome",
    "summarise",
    "table_spread",
]


#: Settings of each rule's aggressiveness traced as a line in the plot (the middle one is
#: the rule's default point).
SWEEPS: dict[str, tuple[tuple[str, tuple], ...]] = {
    "median": (("percentile", (25.0, 50.0, 75.0)),),
    "sha": (("reduction_factor", (2, 3, 4)),),
    "hyperband": (("reduction_factor", (2, 3, 4)),),
    "conformal": (("alpha", (0.02, 0.05, 0.1)),),
    "baker": (("delta", (0.01, 0.05, 0.2)),),
    "poster": (("keep_fraction", (0.6, 0.4, 0.2)),),
    "swift-hyperband": (("quantile", (0.5, 0.25, 0.1)),),
    "qhpo": (("reduction_factor", (1.5, 2, 3)),),
}


@dataclass(frozen=True)
class RuleRun:
    """One rule at one setting; ``sweep`` names the swept parameter and its value, if any."""

    name: str
    options: Mapping[str, Any] = field(default_factory=dict)
    sweep: tuple[str, Any] | None = None


@dataclass(frozen=True)
class BenchmarkSettings:
    """What a benchmark replays, whatever the table (see :func:`run_benchmark` for the fields)."""

    policies: tuple[str, ...] = BENCH_POLICIES
    predictor: Any = "svr"
    sampler: Any = None
    trials: int = 100
    seeds: int = 20
    first_seed: int = 0
    workers: int = 1
    sweep_seeds: int = 0
    options: Mapping[str, Mapping[str, Any]] = field(default_factory=dict)
    policy_runner: Callable | None = None

    #: The least value of each integer field (checked by :func:`qhpo._checks.check_int`).
    _LEAST = {"trials": 2, "seeds": 1, "workers": 1, "first_seed": 0, "sweep_seeds": 0}

    def __post_init__(self):
        unknown = [p for p in self.policies if p not in BENCH_POLICIES]
        if unknown:
            raise ValueError(f"policies must be among {', '.join(BENCH_POLICIES)}, got {unknown[0]!r}")
        for name, least in self._LEAST.items():
            object.__setattr__(self, name, check_int(name, getattr(self, name), least=least))

    @classmethod
    def of(cls, *, policies=BENCH_POLICIES, options=None, **fields) -> BenchmarkSettings:
        """The settings of :func:`run_benchmark`'s and :func:`qhpo.replay.run_suite`'s keyword
        arguments (``policies`` any iterable, ``options`` None for none)."""
        return cls(policies=tuple(policies), options=dict(options or {}), **fields)

    @property
    def seed_list(self) -> list[int]:
        return list(range(int(self.first_seed), int(self.first_seed) + int(self.seeds)))

    @property
    def predictor_name(self) -> str:
        return self.predictor if isinstance(self.predictor, str) else type(self.predictor).__name__

    def rule_runs(self) -> list[RuleRun]:
        """Every rule at its default setting, in the order of ``policies``."""
        return [RuleRun(name, dict(self.options.get(name, {}))) for name in self.policies]

    def sweep_runs(self) -> list[RuleRun]:
        """Every rule at each setting of its aggressiveness sweep (:data:`SWEEPS`)."""
        runs = []
        for name in self.policies:
            for parameter, values in SWEEPS.get(name, ()):
                for value in values:
                    runs.append(
                        RuleRun(name, dict(self.options.get(name, {}), **{parameter: value}), sweep=(parameter, value))
                    )
        return runs


@dataclass(frozen=True)
class SeedJob:
    """The runs of one table on one seed: the unit of work a process replays."""

    table: CurveTable
    seed: int
    runs: tuple[RuleRun, ...]
    settings: BenchmarkSettings


def seed_jobs(table: CurveTable, settings: BenchmarkSettings) -> list[SeedJob]:
    """One job per seed; the first ``sweep_seeds`` seeds also replay the sweep settings."""
    base, sweep = tuple(settings.rule_runs()), tuple(settings.sweep_runs())
    return [
        SeedJob(table, seed, base + (sweep if i < settings.sweep_seeds else ()), settings)
        for i, seed in enumerate(settings.seed_list)
    ]


@dataclass(frozen=True)
class SeedOutcome:
    """What a job produced: per run (same order as the job's), its score and trained epochs."""

    table: str
    seed: int
    scores: tuple[dict, ...]
    epochs_trained: tuple[list, ...]
    complete: tuple[list, ...]
    seconds: float
    pauses: tuple[list, ...] = ()
    resumptions: tuple[list, ...] = ()


def replay_seed(job: SeedJob) -> SeedOutcome:
    """Draw the seed's rows and replay every run of the job on them."""
    settings = job.settings

    def replay(run: RuleRun, drawn: CurveTable) -> SeedResult:
        return replay_rule(
            run.name,
            drawn,
            seed=job.seed,
            predictor=settings.predictor,
            sampler=settings.sampler,
            workers=settings.workers,
            options=dict(run.options),
            policy_runner=settings.policy_runner,
        )

    return seed_outcome(job, replay)


def seed_outcome(job: SeedJob, replay: Callable[[RuleRun, CurveTable], SeedResult]) -> SeedOutcome:
    """Draw the seed's rows, ``replay(run, drawn)`` every run of the job on them, and score each."""
    started = time.perf_counter()
    drawn = job.table.take(draw_order(job.table.n_trials, job.settings.trials, job.seed))
    scores, epochs, complete, pauses, resumptions = [], [], [], [], []
    for run in job.runs:
        result = replay(run, drawn)
        scores.append(score(drawn, result))
        epochs.append(result.epochs_trained.tolist())
        complete.append(result.complete.tolist())
        pauses.append([[int(i), int(e)] for i, e in result.pauses])
        resumptions.append([[int(i), int(e)] for i, e in result.resumptions])
    return SeedOutcome(
        job.table.name,
        job.seed,
        tuple(scores),
        tuple(epochs),
        tuple(complete),
        time.perf_counter() - started,
        tuple(pauses),
        tuple(resumptions),
    )


def replay_jobs(
    jobs: Iterable[SeedJob],
    *,
    processes: int = 1,
    progress: Callable[[str], None] | None = None,
    replay: Callable[[Any], Any] = replay_seed,
) -> dict[tuple[str, int], SeedOutcome]:
    """Replay ``jobs`` in ``processes`` processes with ``replay`` (a module-level function of
    one job returning an outcome with ``table`` and ``seed``); outcomes keyed by ``(table
    name, seed)``."""
    jobs = list(jobs)
    outcomes: dict[tuple[str, int], SeedOutcome] = {}
    started = time.perf_counter()

    def done(outcome: SeedOutcome) -> None:
        outcomes[(outcome.table, outcome.seed)] = outcome
        if progress:
            progress(
                f"{outcome.table} seed {outcome.seed} done ({len(outcomes)}/{len(jobs)}, "
                f"{time.perf_counter() - started:.0f} s)"
            )

    if int(processes) > 1 and len(jobs) > 1:
        with ProcessPoolExecutor(max_workers=int(processes)) as pool:
            for future in as_completed([pool.submit(replay, job) for job in jobs]):
                done(future.result())
    else:
        for job in jobs:
            done(replay(job))
    return outcomes


def run_benchmark(
    table: CurveTable,
    *,
    policies=BENCH_POLICIES,
    predictor: Any = "svr",
    sampler: Any = None,
    trials: int = 100,
    seeds: int = 20,
    first_seed: int = 0,
    workers: int = 1,
    sweep_seeds: int = 0,
    jobs: int = 1,
    options: dict[str, dict] | None = None,
    policy_runner: Callable | None = None,
    progress: Callable[[str], None] | None = None,
) -> dict:
    """Replay every rule in ``policies`` on ``seeds`` paired draws and summarise.

    Args:
        table: The recorded curves.
        policies: Names from :data:`BENCH_POLICIES`.
        predictor: Predictor model of the predictive rules.
        sampler: Annealer (object or name) of the annealer predictors.
        trials: Rows drawn per seed.
        seeds: Number of seeds (``first_seed .. first_seed + seeds - 1``).
        first_seed: The first seed (0 or more).
        workers: Simulated workers.
        sweep_seeds: Seeds (the first ones) on which each rule's aggressiveness is swept
            (:data:`SWEEPS`); 0 skips the sweep.
        jobs: Processes replaying seeds in parallel.
        options: Extra keyword arguments per rule name.
        policy_runner: Replaces the in-process replay of qhpo's policies (see
            :func:`replay_rule`).
        progress: Called with a line of text after each seed.

    Returns:
        The JSON document of ``qhpo bench --json`` (see ``docs/replay.md``).
    """
    settings = BenchmarkSettings.of(
        policies=policies,
        predictor=predictor,
        sampler=sampler,
        trials=trials,
        seeds=seeds,
        first_seed=first_seed,
        workers=workers,
        sweep_seeds=sweep_seeds,
        options=options,
        policy_runner=policy_runner,
    )
    started = time.perf_counter()
    outcomes = replay_jobs(seed_jobs(table, settings), processes=jobs, progress=progress)
    return summarise(table, settings, outcomes, time.perf_counter() - started)


def default_jobs() -> int:
    """Processes for the seeds: the cores this process may use, at most 2."""
    try:
        cores = len(os.sched_getaffinity(0))
    except AttributeError:  # pragma: no cover - not Linux
        cores = os.cpu_count() or 1
    return max(1, min(2, cores))
