"""Replaying recorded learning curves through stopping rules: the benchmark behind ``qhpo bench``."""

from qhpo.optuna import first_rung
from qhpo.replay._agents import OptunaPrunerAgent, PolicyAgent
from qhpo.replay._benchmark import (
    BENCH_POLICIES,
    OPTUNA_PRUNERS,
    SWEEPS,
    BenchmarkSettings,
    default_jobs,
    draw_order,
    optuna_pruner,
    replay_rule,
    run_benchmark,
    score,
    table_spread,
    verdict,
)
from qhpo.replay._budget import (
    BUDGET_POLICIES,
    BudgetSettings,
    budget_order,
    found_over_time,
    normalised_regret,
    run_budget,
)
from qhpo.replay._live import LIVE_RULES, LIVE_STORAGES, LiveSettings, replay_live, run_live_benchmark, run_live_suite
from qhpo.replay._oracle import OracleService
from qhpo.replay._plot import plot_benchmark, plot_budget, plot_suite
from qhpo.replay._simulator import ReplayAgent, ReplayOutcome, simulate
from qhpo.replay._suite import run_suite, suite_tables
from qhpo.replay._swift_hyperband import SwiftHyperbandOutcome, replay_swift_hyperband

__all__ = [
    "BENCH_POLICIES",
    "BUDGET_POLICIES",
    "BenchmarkSettings",
    "BudgetSettings",
    "LIVE_RULES",
    "LIVE_STORAGES",
    "LiveSettings",
    "OPTUNA_PRUNERS",
    "OptunaPrunerAgent",
    "OracleService",
    "PolicyAgent",
    "ReplayAgent",
    "ReplayOutcome",
    "SWEEPS",
    "SwiftHyperbandOutcome",
    "budget_order",
    "default_jobs",
    "draw_order",
    "first_rung",
    "found_over_time",
    "normalised_regret",
    "optuna_pruner",
    "plot_benchmark",
    "plot_budget",
    "plot_suite",
    "replay_live",
    "replay_rule",
    "replay_swift_hyperband",
    "run_benchmark",
    "run_budget",
    "run_live_benchmark",
    "run_live_suite",
    "run_suite",
    "score",
    "simulate",
    "suite_tables",
    "table_spread",
    "verdict",
]
