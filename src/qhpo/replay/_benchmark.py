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

import contextlib
import math
import os
import time
from collections.abc import Callable, Iterable, Mapping
from concurrent.futures import ProcessPoolExecutor, as_completed
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from qhpo._rules import RuleKind, rule_names
from qhpo.curves import CurveTable
from qhpo.optuna import OPTUNA_PRUNERS, first_rung, optuna_pruner
from qhpo.policies import make_policy
from qhpo.predictors import ORACLE, ORACLE_FINAL
from qhpo.replay._agents import OptunaPrunerAgent, PolicyAgent
from qhpo.replay._oracle import OracleService
from qhpo.replay._simulator import simulate
from qhpo.replay._swift_hyperband import replay_swift_hyperband

#: Every rule ``qhpo bench --policies`` accepts, in the order results are listed (the default).
BENCH_POLICIES: tuple[str, ...] = rule_names()
#: The baselines among which the target's ``best`` is chosen, and the rule judged against them.
TARGET_BASELINES = ("median", "sha", "hyperband")
TARGET_RULE = "qhpo"
#: The target's cost ratio: the judged rule may spend at most this share of ``best``'s epochs.
TARGET_COST_RATIO = 0.75
#: The policies whose predictions ``--predictor oracle`` (or ``oracle-final``) replaces by
#: the recorded values; Swift-Hyperband reads them too (:func:`replay_swift_hyperband`), and
#: ``baker`` keeps its own ν-SVR (the model is part of that published rule).
ORACLE_POLICIES = ("poster", "qhpo", "qhpo-stop")
SPREAD_DEFINITION = "best minus median of the table's finite final values (metric units)"

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


def _rounded(x: float) -> int:
    return max(1, int(round(x)))


def draw_order(n_rows: int, trials: int, seed: int) -> np.ndarray:
    """The rows a seed replays, in order: a permutation prefix, or draws with replacement."""
    rng = np.random.default_rng(seed)
    if trials <= n_rows:
        return rng.permutation(n_rows)[:trials]
    return rng.choice(n_rows, size=trials, replace=True)


@dataclass(frozen=True)
class SeedResult:
    """One rule on one seed."""

    epochs_trained: np.ndarray
    complete: np.ndarray
    wallclock: float
    predictor_seconds: float
    pauses: tuple[tuple[int, int], ...] = ()
    resumptions: tuple[tuple[int, int], ...] = ()
    completed_at: np.ndarray | None = None


def replay_rule(
    name: str,
    table: CurveTable,
    *,
    seed: int,
    predictor: Any = "svr",
    sampler: Any = None,
    workers: int = 1,
    options: dict | None = None,
    policy_runner: Callable | None = None,
    budget: int | None = None,
) -> SeedResult:
    """Replay rule ``name`` on ``table`` (already drawn and ordered) for one seed.

    ``policy_runner(curves, policy, params=, workers=, seconds_per_epoch=) -> ReplayOutcome``
    replaces the in-process simulation for qhpo's own policies (for example
    :func:`qhpo.ray.replay_on_ray`); Optuna's pruners and Swift-Hyperband always replay
    in-process. ``budget`` (epochs) replays under a budget (:func:`qhpo.replay.simulate`),
    in-process only, where a new trial starts only when the rule's first rung
    (:func:`first_rung`) fits in what is left; Swift-Hyperband has no budget mode.
    """
    options = leave_out_of_prior(options, table)
    if budget is not None and (name in rule_names(RuleKind.BRACKETS) or policy_runner is not None):
        raise ValueError(f"a budget is replayed in-process for rules other than swift-hyperband, got {name!r}")
    if name in OPTUNA_PRUNERS:
        return _replay_optuna(name, table, seed=seed, workers=workers, options=options, budget=budget)
    if name in rule_names(RuleKind.BRACKETS):
        return _replay_brackets(
            table, seed=seed, predictor=predictor, sampler=sampler, workers=workers, options=options
        )
    if name not in rule_names(RuleKind.POLICY):
        raise ValueError(f"name must be one of {', '.join(BENCH_POLICIES)}, got {name!r}")
    if isinstance(predictor, str) and predictor in (ORACLE, ORACLE_FINAL):
        final = predictor == ORACLE_FINAL
        predictor, sampler = "svr", None  # stands for nothing: the oracle service replaces the predictor
        if name in ORACLE_POLICIES:
            options["service"] = OracleService(table.curves, mode=table.mode, final=final)
    policy = make_policy(
        name,
        max_epochs=table.epochs,
        mode=table.mode,
        predictor=predictor,
        sampler=sampler,
        random_state=seed,
        **options,
    )
    return _replay_policy(policy, table, workers=workers, policy_runner=policy_runner, budget=budget)


def leave_out_of_prior(options: dict | None, table: CurveTable) -> dict:
    """``options`` with the ``prior`` option (a name, path or prior) replaced by that prior
    fitted without any table that shares content with ``table``: a replay never ranks a
    table's runs with a prior that saw them, whatever the table's file is called."""
    options = dict(options or {})
    if options.get("prior") is not None:
        from qhpo.priors import prior_for_table

        options["prior"] = prior_for_table(options["prior"], table.curves)
    return options


def _replay_optuna(
    name: str, table: CurveTable, *, seed: int, workers: int, options: dict, budget: int | None = None
) -> SeedResult:
    with _optuna_logs_quiet():  # one INFO line per replayed trial otherwise; restored afterwards
        agent = OptunaPrunerAgent(optuna_pruner(name, table.epochs, **options), table.mode, table.epochs, seed=seed)
        out = simulate(
            table.curves,
            agent,
            workers=workers,
            seconds_per_epoch=table.seconds_per_epoch,
            budget=budget,
            first_rung=first_rung(name, table.epochs, options),
        )
    return SeedResult(out.epochs_trained, out.complete, out.wallclock, 0.0, completed_at=out.completed_at)


@contextlib.contextmanager
def _optuna_logs_quiet():
    """Optuna's logging at WARNING while the block runs, then as the caller had it."""
    import optuna

    before = optuna.logging.get_verbosity()
    optuna.logging.set_verbosity(optuna.logging.WARNING)
    try:
        yield
    finally:
        optuna.logging.set_verbosity(before)


def _replay_brackets(
    table: CurveTable, *, seed: int, predictor: Any, sampler: Any, workers: int, options: dict
) -> SeedResult:
    E = table.epochs
    kwargs = dict(max_resource=E, reduction_factor=3, min_resource=_rounded(E / 20))
    kwargs.update(options)
    out = replay_swift_hyperband(
        table.curves,
        mode=table.mode,
        seconds_per_epoch=table.seconds_per_epoch,
        predictor=predictor,
        sampler=sampler,
        random_state=seed,
        workers=workers,
        **kwargs,
    )
    return SeedResult(out.epochs_trained, out.complete, out.wallclock, out.predictor_seconds)


def _replay_policy(
    policy, table: CurveTable, *, workers: int, policy_runner: Callable | None, budget: int | None = None
) -> SeedResult:
    if policy_runner is None:
        agent = PolicyAgent(policy, table.curves, table.param_rows())
        out = simulate(
            table.curves,
            agent,
            workers=workers,
            seconds_per_epoch=table.seconds_per_epoch,
            budget=budget,
            first_rung=first_rung("", table.epochs, policy=policy),
        )
    else:
        out = policy_runner(
            table.curves, policy, params=table.param_rows(), workers=workers, seconds_per_epoch=table.seconds_per_epoch
        )
    service = getattr(policy, "service", None)
    seconds = 0.0 if service is None else service.fit_seconds + service.predict_seconds
    if service is not None:
        service.close()
    return SeedResult(
        out.epochs_trained,
        out.complete,
        out.wallclock,
        seconds,
        tuple(out.pauses),
        tuple(out.resumptions),
        out.completed_at,
    )


def table_spread(table: CurveTable) -> float:
    """The table's spread: best minus median of its finite final values ("higher is better" units)."""
    finals = table.sign * table.final_values
    finals = finals[np.isfinite(finals)]
    if finals.size == 0:
        return 0.0
    return float(finals.max() - np.median(finals))


def score(table: CurveTable, result: SeedResult) -> dict[str, float]:
    """cost_fraction, regret, top1_kept, resumed and winner_resumed of one replay (see module docstring)."""
    finals = table.sign * table.final_values
    finite = np.isfinite(finals)
    kept = result.complete & finite
    paused = {int(i) for i, _ in result.pauses}
    winner_resumed = False
    if kept.any():
        winner = int(np.flatnonzero(kept & (finals == finals[kept].max()))[0])
        winner_resumed = winner in paused
    if finite.any():
        best = float(finals[finite].max())
        regret = best - float(finals[kept].max()) if kept.any() else best - float(finals[finite].min())
        top1 = bool(np.any(kept & (finals == best)))
    else:  # every drawn trial diverged: there was nothing to find
        regret, top1 = 0.0, True
    return {
        "cost_fraction": float(result.epochs_trained.sum()) / (table.n_trials * table.epochs),
        "regret": regret,
        "top1_kept": float(top1),
        "wallclock": float(result.wallclock),
        "predictor_seconds": float(result.predictor_seconds),
        "paused": float(len(result.pauses)),
        "resumed": float(len(result.resumptions)),
        "winner_resumed": float(winner_resumed),
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

    def __post_init__(self):
        unknown = [p for p in self.policies if p not in BENCH_POLICIES]
        if unknown:
            raise ValueError(f"policies must be among {', '.join(BENCH_POLICIES)}, got {unknown[0]!r}")
        for name, value, least in (
            ("trials", self.trials, 2),
            ("seeds", self.seeds, 1),
            ("workers", self.workers, 1),
            ("first_seed", self.first_seed, 0),
            ("sweep_seeds", self.sweep_seeds, 0),
        ):
            if isinstance(value, bool) or int(value) != value or value < least:
                raise ValueError(f"{name} must be an integer of at least {least}, got {value!r}")

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
    jobs: Iterable[SeedJob], *, processes: int = 1, progress: Callable[[str], None] | None = None
) -> dict[tuple[str, int], SeedOutcome]:
    """Replay ``jobs`` in ``processes`` processes; outcomes keyed by ``(table name, seed)``."""
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
            for future in as_completed([pool.submit(replay_seed, job) for job in jobs]):
                done(future.result())
    else:
        for job in jobs:
            done(replay_seed(job))
    return outcomes


def _statistics(scores: list[dict], spread: float) -> dict:
    """Means, spreads and extremes over seeds of one run's scores."""
    col = {k: np.array([sc[k] for sc in scores]) for k in scores[0]}
    sd = (lambda x: float(x.std(ddof=1))) if len(scores) > 1 else (lambda x: 0.0)
    values = {
        "cost_fraction_mean": col["cost_fraction"].mean(),
        "regret_mean": col["regret"].mean(),
        "regret_median": np.median(col["regret"]),
        "regret_max": col["regret"].max(),
        "top1_kept_rate": col["top1_kept"].mean(),
        "wallclock_mean": col["wallclock"].mean(),
        "predictor_seconds_mean": col["predictor_seconds"].mean(),
        "cost_fraction_sd": sd(col["cost_fraction"]),
        "regret_sd": sd(col["regret"]),
        "regret_normalised_mean": col["regret"].mean() / spread if spread > 0 else math.nan,
        "paused_mean": col["paused"].mean(),
        "resumed_mean": col["resumed"].mean(),
        "winner_resumed_rate": col["winner_resumed"].mean(),
    }
    return {k: _finite_or_none(round(float(v), 8)) for k, v in values.items()}


def _finite_or_none(value: float) -> float | None:
    """A float for JSON: NaN and infinities become ``None`` (JSON null)."""
    return value if math.isfinite(value) else None


def summarise(
    table: CurveTable, settings: BenchmarkSettings, outcomes: Mapping[tuple[str, int], SeedOutcome], seconds: float
) -> dict:
    """The JSON document of one table (see ``docs/replay.md``) from its seeds' outcomes."""
    seeds = [outcomes[(table.name, s)] for s in settings.seed_list]
    spread = table_spread(table)
    base = settings.rule_runs()
    result = {
        "table": table.name,
        "trials": int(settings.trials),
        "seeds": int(settings.seeds),
        "workers": int(settings.workers),
        "predictor": settings.predictor_name,
        "metric": table.metric,
        "mode": table.mode,
        "epochs": table.epochs,
        "first_seed": int(settings.first_seed),
        "seconds": round(seconds, 3),
        "spread": round(spread, 10),
        "spread_definition": SPREAD_DEFINITION,
        "policies": {run.name: _statistics([o.scores[k] for o in seeds], spread) for k, run in enumerate(base)},
    }
    for k, run in enumerate(base):  # the raw values, in seed order, for paired comparisons between rules
        result["policies"][run.name]["per_seed"] = {
            key: [_finite_or_none(round(float(o.scores[k][key]), 8)) for o in seeds]
            for key in ("cost_fraction", "regret")
        }
    if settings.options:  # the keyword arguments given to rules beyond their defaults
        result["options"] = {name: dict(opts) for name, opts in settings.options.items() if opts}
    result["verdict"] = verdict(result)
    sweep_seeds = seeds[: settings.sweep_seeds]
    if sweep_seeds:
        lines: dict[str, list] = {}
        for k, run in enumerate(settings.sweep_runs(), start=len(base)):
            point = _statistics([o.scores[k] for o in sweep_seeds], spread)
            lines.setdefault(run.name, []).append(
                {
                    "parameter": run.sweep[0],
                    "value": run.sweep[1],
                    "cost_fraction_mean": point["cost_fraction_mean"],
                    "regret_mean": point["regret_mean"],
                }
            )
        result["sweeps"] = {"seeds": len(sweep_seeds), "lines": lines}
    example = seeds[0]
    result["example"] = {
        "seed": example.seed,
        "rows": draw_order(table.n_trials, int(settings.trials), example.seed).tolist(),
        "epochs_trained": {run.name: example.epochs_trained[k] for k, run in enumerate(base)},
        "complete": {run.name: example.complete[k] for k, run in enumerate(base)},
        "pauses": {run.name: example.pauses[k] for k, run in enumerate(base) if example.pauses[k]},
        "resumptions": {run.name: example.resumptions[k] for k, run in enumerate(base) if example.resumptions[k]},
    }
    return result


def verdict(result: dict, rule: str = TARGET_RULE) -> dict | None:
    """Whether ``rule`` meets the target on one table's result (None without the rules it needs).

    With ``best`` the one of :data:`TARGET_BASELINES` with the lowest mean regret (ties:
    lower cost), the rule passes when its mean regret is at most ``best``'s mean regret plus
    ``best``'s standard error (``regret_sd / sqrt(seeds)``), its cost is at most
    :data:`TARGET_COST_RATIO` times ``best``'s, and no other rule has both a lower mean
    regret and a lower cost.
    """
    policies = result["policies"]
    if rule not in policies or not all(b in policies for b in TARGET_BASELINES):
        return None
    best = min(TARGET_BASELINES, key=lambda b: (policies[b]["regret_mean"], policies[b]["cost_fraction_mean"]))
    ours, theirs = policies[rule], policies[best]
    bar = theirs["regret_mean"] + theirs["regret_sd"] / math.sqrt(result["seeds"])
    reasons = []
    if ours["regret_mean"] > bar:
        reasons.append(
            f"regret {ours['regret_mean']:.4g} above {best}'s {theirs['regret_mean']:.4g} + "
            f"{bar - theirs['regret_mean']:.2g} (its standard error)"
        )
    if ours["cost_fraction_mean"] > TARGET_COST_RATIO * theirs["cost_fraction_mean"]:
        reasons.append(
            f"cost {ours['cost_fraction_mean']:.1%} above {TARGET_COST_RATIO:g} x {best}'s "
            f"{theirs['cost_fraction_mean']:.1%}"
        )
    for name, other in policies.items():
        if (
            name != rule
            and other["regret_mean"] < ours["regret_mean"]
            and other["cost_fraction_mean"] < ours["cost_fraction_mean"]
        ):
            reasons.append(f"{name} has both lower regret and lower cost")
    why = (
        "; ".join(reasons)
        if reasons
        else (
            f"regret {ours['regret_mean']:.4g} within {best}'s {theirs['regret_mean']:.4g} + standard error at "
            f"{ours['cost_fraction_mean'] / max(theirs['cost_fraction_mean'], 1e-12):.2f} x its cost"
        )
    )
    return {"rule": rule, "best": best, "pass": not reasons, "why": why}


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
    settings = BenchmarkSettings(
        tuple(policies),
        predictor,
        sampler,
        int(trials),
        int(seeds),
        int(first_seed),
        int(workers),
        int(sweep_seeds),
        dict(options or {}),
        policy_runner,
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
