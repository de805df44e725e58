"""Budget mode of the replay: every rule spends the same epochs, and regret is read over time.

For seed ``s`` and a budget of ``K`` full trainings of a table of ``E`` epochs, every rule
may train ``B = K E`` epochs in all, a resumed trial's epochs included
(:func:`qhpo.replay.simulate` with ``budget=B``). Configurations come in the seed's order:
the permutation of all ``n`` rows that :func:`qhpo.replay.draw_order` draws (its first
``trials`` rows are those ``qhpo bench`` replays without a budget), followed, when a rule
starts more than ``n`` configurations, by further permutations from the same generator (a
row then comes back as a new trial with the same curve). A new configuration starts only
while the rule's first rung (:func:`qhpo.optuna.first_rung`) fits in what is left; the
trials running when the ``B``-th epoch ends are cut there. ``qhpo`` and ``qhpo-stop`` take
their budget defaults (:func:`qhpo._policy_options.budget_defaults`: first rung ``E/40``)
unless the options say otherwise.

Regret over time, normalised by the whole table, with ``y`` the final values in "higher is
better" units (``sign * value``), ``best`` and ``worst`` the largest and smallest finite
``y`` of the table, and ``found(X)`` the largest ``y_j`` of the trials that completed
(trained all ``E`` epochs; a diverged trial never does) by the time ``X`` epochs had been
spent in all:

    regret(X) = (best - found(X)) / (best - worst)          in [0, 1], non-increasing in X

with ``regret(X) = 1`` before any trial completes (nothing found yet is as bad as the worst
configuration) and 0 for a table whose finite finals are all equal. For a rule that does not
read its budget, one replay at the largest budget is read at every budget below it: a
replay under a smaller budget makes the same decisions up to the moment it ends (the budget
only ends a replay; it changes no decision before that), so it would find the same trials by
then. A rule that reads its budget (``qhpo``, which finishes its best paused trial at the end
of a budget: :attr:`qhpo.policies.StoppingPolicy.reads_budget`) makes other decisions under
a smaller budget, so each budget it is reported at is a replay of its own; its regret curve
over time is the replay at the largest budget.
"""

from __future__ import annotations

import math
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from qhpo._policy_options import budget_defaults
from qhpo._rules import RuleKind, rule_names
from qhpo.curves import CurveTable
from qhpo.optuna import first_rung
from qhpo.replay._benchmark import BENCH_POLICIES, replay_jobs, replay_rule

#: The rules budget mode replays by default: every rule but the bracket searches, which
#: choose their own configurations in brackets and have no budget mode.
BUDGET_POLICIES: tuple[str, ...] = tuple(p for p in BENCH_POLICIES if p not in rule_names(RuleKind.BRACKETS))
#: The budgets (in full trainings) at which regret is reported, those up to the budget given.
READINGS: tuple[int, ...] = (5, 10, 20)
#: Points per full training on the regret curve of the JSON and the figure.
CURVE_STEPS = 4
REGRET_DEFINITION = (
    "(best - best final found so far) / (best - worst), best and worst the table's finite final values; "
    "1 before a trial completes"
)


def budget_order(n_rows: int, length: int, seed: int) -> np.ndarray:
    """``length`` rows in the seed's order: permutations of all rows, one after the other.

    The first permutation is :func:`qhpo.replay.draw_order`'s for ``trials <= n_rows``.

    Example:
        >>> from qhpo.replay import draw_order
        >>> order = budget_order(5, 12, seed=3)
        >>> bool((order[:4] == draw_order(5, 4, seed=3)).all()), sorted(order[5:10].tolist())
        (True, [0, 1, 2, 3, 4])
    """
    rng = np.random.default_rng(seed)
    rounds = max(1, math.ceil(int(length) / int(n_rows)))
    return np.concatenate([rng.permutation(n_rows) for _ in range(rounds)])[: int(length)]


def normalised_regret(table: CurveTable, found: np.ndarray) -> np.ndarray:
    """``(best - found) / (best - worst)`` over ``table``'s finite finals; NaN ``found`` (nothing yet) is 1.

    Example:
        >>> from qhpo.curves import CurveTable
        >>> t = CurveTable("t", "loss", "min", np.arange(3), {}, np.array([[3.0, 2.0], [3.0, 1.0], [4.0, 3.0]]))
        >>> normalised_regret(t, np.array([np.nan, -3.0, -2.0, -1.0])).tolist()
        [1.0, 1.0, 0.5, 0.0]
    """
    y = table.sign * table.final_values
    y = y[np.isfinite(y)]
    found = np.asarray(found, dtype=float)
    if y.size == 0 or y.max() == y.min():
        return np.where(np.isnan(found), 1.0, 0.0)
    best, worst = float(y.max()), float(y.min())
    regret = (best - found) / (best - worst)
    return np.clip(np.where(np.isnan(found), 1.0, regret), 0.0, 1.0)


def found_over_time(finals: np.ndarray, completed_at: np.ndarray, points: Sequence[float]) -> np.ndarray:
    """The best of ``finals`` ("higher is better") among trials completed by each of ``points``
    (epochs spent); NaN where none had completed."""
    finals = np.asarray(finals, dtype=float)
    completed_at = np.asarray(completed_at)
    done = (completed_at >= 0) & np.isfinite(finals)
    out = np.full(len(points), np.nan)
    for k, x in enumerate(points):
        mask = done & (completed_at <= x)
        if mask.any():
            out[k] = float(finals[mask].max())
    return out


@dataclass(frozen=True)
class BudgetSettings:
    """What a budget replay runs, whatever the table: ``trainings`` full trainings per seed
    (``rule_defaults``: the rules take their budget defaults, False: their usual ones)."""

    trainings: float
    policies: tuple[str, ...] = BUDGET_POLICIES
    predictor: Any = "svr"
    sampler: Any = None
    seeds: int = 10
    first_seed: int = 0
    workers: int = 1
    options: Mapping[str, Mapping[str, Any]] = field(default_factory=dict)
    rule_defaults: bool = True

    def __post_init__(self):
        if not (isinstance(self.trainings, (int, float)) and math.isfinite(self.trainings) and self.trainings > 0):
            raise ValueError(f"trainings must be a positive number of full trainings, got {self.trainings!r}")
        unknown = [p for p in self.policies if p not in BUDGET_POLICIES]
        if unknown:
            raise ValueError(f"policies must be among {', '.join(BUDGET_POLICIES)} in budget mode, got {unknown[0]!r}")

    @property
    def seed_list(self) -> list[int]:
        return list(range(int(self.first_seed), int(self.first_seed) + int(self.seeds)))

    @property
    def readings(self) -> list[float]:
        """The budgets (full trainings) regret is reported at: :data:`READINGS` up to ``trainings``, and it."""
        points = [float(k) for k in READINGS if k < self.trainings]
        return points + [float(self.trainings)]

    def rule_options(self, name: str, table: CurveTable) -> dict[str, Any]:
        """Rule ``name``'s options on ``table``: its budget defaults
        (:func:`qhpo._policy_options.budget_defaults`; none when ``rule_defaults`` is False)
        updated by ``options``."""
        defaults = budget_defaults(name, table.epochs) if self.rule_defaults else {}
        return {**defaults, **dict(self.options.get(name, {}))}

    def epochs(self, table: CurveTable) -> int:
        """The budget in epochs for ``table``: ``round(trainings * E)``, at least 1."""
        return max(1, int(round(self.trainings * table.epochs)))

    def grid(self) -> list[float]:
        """Points (full trainings) of the regret curve: every 1/:data:`CURVE_STEPS` up to the budget."""
        steps = int(math.floor(self.trainings * CURVE_STEPS + 1e-9))
        points = [k / CURVE_STEPS for k in range(steps + 1)]
        return points if points[-1] == self.trainings else points + [float(self.trainings)]


@dataclass(frozen=True)
class BudgetJob:
    """Every rule of one table on one seed under the budget."""

    table: CurveTable
    seed: int
    settings: BudgetSettings


@dataclass(frozen=True)
class BudgetOutcome:
    """Per rule (in the settings' order): regret on the grid and at the readings (each its
    own replay for a rule that reads its budget), and what the replay spent."""

    table: str
    seed: int
    curves: tuple[list, ...]
    at_readings: tuple[list, ...]
    configurations: tuple[int, ...]
    completed: tuple[int, ...]
    spent: tuple[int, ...]
    resumed: tuple[int, ...]
    seconds: float
    read_budget: tuple[bool, ...]


def replay_budget_seed(job: BudgetJob) -> BudgetOutcome:
    """Replay every rule of ``job`` under its budget and trace its normalised regret."""
    started = time.perf_counter()
    settings, table = job.settings, job.table
    budget = settings.epochs(table)
    drawn = table.take(budget_order(table.n_trials, budget, job.seed))  # a trial spends at least one epoch
    finals = drawn.sign * drawn.final_values
    grid = settings.grid()
    points = [x * table.epochs for x in grid]
    curves, at_readings, configurations, completed, spent, resumed, read = [], [], [], [], [], [], []
    for name in settings.policies:

        def replay(epochs: int, name: str = name):
            return replay_rule(
                name,
                drawn,
                seed=job.seed,
                predictor=settings.predictor,
                sampler=settings.sampler,
                workers=settings.workers,
                options=settings.rule_options(name, table),
                budget=epochs,
            )

        result = replay(budget)
        read.append(bool(result.read_budget))
        regret = normalised_regret(table, found_over_time(finals, result.completed_at, points))
        curves.append([round(float(r), 8) for r in regret])
        readings = []
        for x in settings.readings:
            if result.read_budget and x < settings.trainings:
                # the rule reads its budget: a smaller budget is a search of its own
                epochs = BudgetSettings(x).epochs(table)
                own = replay(epochs).completed_at
                readings.append(float(normalised_regret(table, found_over_time(finals, own, [epochs]))[0]))
            else:
                readings.append(float(regret[grid.index(x)]))
        at_readings.append([round(r, 8) for r in readings])
        configurations.append(int((result.epochs_trained > 0).sum()))
        completed.append(int(result.complete.sum()))
        spent.append(int(result.epochs_trained.sum()))
        resumed.append(len(result.resumptions))
    return BudgetOutcome(
        table.name,
        job.seed,
        tuple(curves),
        tuple(at_readings),
        tuple(configurations),
        tuple(completed),
        tuple(spent),
        tuple(resumed),
        time.perf_counter() - started,
        tuple(read),
    )


def _key(x: float) -> str:
    return f"{x:g}"


def summarise_budget(table: CurveTable, settings: BudgetSettings, outcomes: Mapping, seconds: float) -> dict:
    """The JSON document of one table in budget mode (see ``docs/replay.md``)."""
    seeds = [outcomes[(table.name, s)] for s in settings.seed_list]
    grid = settings.grid()
    y = table.sign * table.final_values
    y = y[np.isfinite(y)]
    policies = {}
    readings = settings.readings
    for k, name in enumerate(settings.policies):
        curves = np.array([o.curves[k] for o in seeds])  # (seeds, grid)
        at = np.array([o.at_readings[k] for o in seeds])  # (seeds, readings)
        sd = at.std(axis=0, ddof=1) if len(seeds) > 1 else np.zeros(len(readings))
        policies[name] = {
            "first_rung": first_rung(name, table.epochs, settings.rule_options(name, table)),
            "regret": {_key(x): round(float(at[:, j].mean()), 8) for j, x in enumerate(readings)},
            "regret_sd": {_key(x): round(float(sd[j]), 8) for j, x in enumerate(readings)},
            "configurations_mean": round(float(np.mean([o.configurations[k] for o in seeds])), 4),
            "completed_mean": round(float(np.mean([o.completed[k] for o in seeds])), 4),
            "epochs_spent_mean": round(float(np.mean([o.spent[k] for o in seeds])), 4),
            "resumed_mean": round(float(np.mean([o.resumed[k] for o in seeds])), 4),
            "reads_budget": any(o.read_budget[k] for o in seeds),
            "curve": [round(float(v), 8) for v in curves.mean(axis=0)],
            "per_seed": {_key(x): [round(float(v), 8) for v in at[:, j]] for j, x in enumerate(readings)},
        }
    result = {
        "table": table.name,
        "budget_trainings": settings.trainings,
        "budget_epochs": settings.epochs(table),
        "seeds": int(settings.seeds),
        "first_seed": int(settings.first_seed),
        "workers": int(settings.workers),
        "predictor": settings.predictor if isinstance(settings.predictor, str) else type(settings.predictor).__name__,
        "metric": table.metric,
        "mode": table.mode,
        "epochs": table.epochs,
        "seconds": round(seconds, 3),
        "best": round(float(table.sign * y.max()), 10) if y.size else None,
        "worst": round(float(table.sign * y.min()), 10) if y.size else None,
        "regret_definition": REGRET_DEFINITION,
        "readings": [_key(x) for x in settings.readings],
        "grid": grid,
        "policies": policies,
    }
    options = {name: settings.rule_options(name, table) for name in settings.policies}
    if any(options.values()):
        result["options"] = {name: opts for name, opts in options.items() if opts}
    result["lowest"] = _lowest(policies, result["readings"])
    return result


def _lowest(policies: Mapping[str, dict], readings: Sequence[str]) -> dict[str, list[str]]:
    """Per reading, the rules with the lowest mean regret (several when they tie)."""
    lowest = {}
    for x in readings:
        least = min(p["regret"][x] for p in policies.values())
        lowest[x] = [name for name, p in policies.items() if p["regret"][x] <= least + 1e-12]
    return lowest


def _means_over_tables(results: dict[str, dict], policies: Sequence[str], readings: Sequence[str]) -> dict:
    """Per rule, its mean regret at each reading and its mean curve over the tables' documents."""
    rules = {}
    for rule in policies:
        rules[rule] = {
            "regret": {
                x: round(float(np.mean([r["policies"][rule]["regret"][x] for r in results.values()])), 8)
                for x in readings
            },
            "curve": [
                round(float(v), 8) for v in np.mean([r["policies"][rule]["curve"] for r in results.values()], axis=0)
            ],
        }
    return rules


def run_budget(
    tables: Sequence[CurveTable],
    settings: BudgetSettings,
    *,
    name: str | None = None,
    jobs: int = 1,
    progress: Callable[[str], None] | None = None,
) -> dict:
    """Replay every rule under the budget on every table; one table's document, or a suite's.

    Args:
        tables: The curve tables (distinct names).
        settings: The budget, rules, seeds and options.
        name: The suite's name; None for one table (then ``tables`` holds one table).
        jobs: Processes replaying seeds in parallel.
        progress: Called with a line of text after each seed.

    Returns:
        One table: :func:`summarise_budget`'s document. A suite: ``{"suite", "budget_trainings",
        ..., "tables": {NAME: document}, "summary": {"rules": {RULE: {"regret": {K: mean over
        tables}, "curve": [...]}}, "lowest": {K: [rules]}}}`` (see ``docs/replay.md``).
    """
    tables = list(tables)
    if not tables or (name is None and len(tables) != 1):
        raise ValueError("tables must hold one table, or at least one with a suite name")
    names = [t.name for t in tables]
    if len(set(names)) != len(names):
        raise ValueError(f"table names must be distinct, got {names}")
    job_list = sorted(
        (BudgetJob(t, s, settings) for t in tables for s in settings.seed_list),
        key=lambda job: -job.table.epochs,  # the longest replays first, so that no process idles at the end
    )
    started = time.perf_counter()
    outcomes = replay_jobs(job_list, processes=jobs, progress=progress, replay=replay_budget_seed)
    seconds = time.perf_counter() - started
    results = {}
    for table in tables:
        table_seconds = sum(o.seconds for (stem, _), o in outcomes.items() if stem == table.name)
        results[table.name] = summarise_budget(table, settings, outcomes, table_seconds)
    if name is None:
        return results[names[0]]
    first = results[names[0]]
    rules = _means_over_tables(results, settings.policies, first["readings"])
    reading = [rule for rule in settings.policies if any(r["policies"][rule]["reads_budget"] for r in results.values())]
    return {
        "suite": name,
        "budget_trainings": settings.trainings,
        "seeds": int(settings.seeds),
        "first_seed": int(settings.first_seed),
        "workers": int(settings.workers),
        "predictor": first["predictor"],
        "seconds": round(seconds, 3),
        "regret_definition": REGRET_DEFINITION,
        "readings": first["readings"],
        "grid": first["grid"],
        "tables": results,
        "summary": {"rules": rules, "lowest": _lowest(rules, first["readings"]), "read_budget": reading},
    }
