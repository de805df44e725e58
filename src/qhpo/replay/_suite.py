"""The benchmark over a suite of curve tables: every rule on every table, one summary.

Each table is replayed exactly as :func:`qhpo.replay.run_benchmark` replays it alone (same
draws, same rules, same options); the seeds of all tables share one pool of processes, the
slowest tables first. Across tables, regrets are comparable only once divided by the
table's spread (:func:`qhpo.replay.table_spread`: best minus median of its finite final
values), so the summary averages

    regret_normalised = regret_mean / spread        (per table, then the mean over tables)

and the cost fractions (and, for freeze-thaw, the resumptions per seed and the share of
seeds whose winner had been paused). Whether a rule meets an acceptance target is left to the
benchmark layer (``benchmarks/suite_target.py`` reads this result).
"""

from __future__ import annotations

import time
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

import numpy as np

from qhpo.curves import CurveTable
from qhpo.replay._benchmark import (
    BENCH_POLICIES,
    SPREAD_DEFINITION,
    BenchmarkSettings,
    replay_jobs,
    seed_jobs,
    summarise,
)


def run_suite(
    tables: Sequence[CurveTable],
    *,
    name: str = "suite",
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
    """Replay every rule on every table and summarise across tables.

    Args:
        tables: The curve tables (distinct names).
        name: What the suite is called in the result (for example its folder).
        **others: As for :func:`qhpo.replay.run_benchmark`.

    Returns:
        ``{"suite", "trials", "seeds", "first_seed", "workers", "predictor", "seconds",
        "tables": {NAME: <run_benchmark's document>}, "summary": {...}}`` (see ``docs/replay.md``).
    """
    tables = _distinct_tables(tables)
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
    outcomes = replay_jobs(_longest_first(tables, settings), processes=jobs, progress=progress)
    seconds = time.perf_counter() - started
    results = _table_documents(tables, settings, outcomes)
    return {
        "suite": name,
        "trials": int(trials),
        "seeds": int(seeds),
        "first_seed": int(first_seed),
        "workers": int(workers),
        "predictor": settings.predictor_name,
        "seconds": round(seconds, 3),
        "tables": results,
        "summary": suite_summary(results),
    }


def _distinct_tables(tables: Sequence[CurveTable]) -> list[CurveTable]:
    """The tables as a list; ValueError when there is none or two share a name."""
    tables = list(tables)
    if not tables:
        raise ValueError("tables must hold at least one curve table")
    names = [t.name for t in tables]
    if len(set(names)) != len(names):
        raise ValueError(f"table names must be distinct, got {names}")
    return tables


def _longest_first(tables: list[CurveTable], settings: BenchmarkSettings) -> list:
    """Every table's seed jobs, the longest replays first, so that no process idles at the end."""
    return sorted(
        (job for table in tables for job in seed_jobs(table, settings)),
        key=lambda job: -job.table.epochs * len(job.runs),
    )


def _table_documents(tables: list[CurveTable], settings: BenchmarkSettings, outcomes) -> dict[str, dict]:
    """Each table's JSON document, its seconds the sum of its own seeds' replays."""
    results = {}
    for table in tables:
        replay_seconds = sum(o.seconds for (stem, _), o in outcomes.items() if stem == table.name)
        results[table.name] = summarise(table, settings, outcomes, replay_seconds)
    return results


def suite_summary(results: dict[str, dict]) -> dict:
    """Per rule, the means over tables of its cost and normalised regret."""
    rules: dict[str, dict] = {}
    for name in next(iter(results.values()))["policies"]:
        costs = [r["policies"][name]["cost_fraction_mean"] for r in results.values()]
        regrets = [r["policies"][name]["regret_normalised_mean"] for r in results.values()]
        finite = [x for x in regrets if x is not None]
        rules[name] = {
            "cost_fraction_mean": round(float(np.mean(costs)), 8),
            "regret_normalised_mean": round(float(np.mean(finite)), 8) if finite else None,
            "tables": len(finite),
        }
        for key in ("resumed_mean", "winner_resumed_rate"):
            values = [r["policies"][name].get(key) for r in results.values()]
            if all(v is not None for v in values):
                rules[name][key] = round(float(np.mean(values)), 8)
    return {"spread": SPREAD_DEFINITION, "rules": rules}


def suite_tables(folder: str | Path) -> list[Path]:
    """The curve tables of a folder: every ``*.csv`` in it, sorted by name."""
    return sorted(Path(folder).glob("*.csv"))
