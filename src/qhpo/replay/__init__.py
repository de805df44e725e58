"""Replaying recorded learning curves through stopping rules: the benchmark behind ``qhpo bench``."""

from qhpo.optuna import first_rung
from qhpo.replay._agents import OptunaPrunerAgent, PolicyAgent
from qhpo.replay._benchmark import (
    BENCH_POLICIES,
    OPTUNA_PRUNERS,
    SWEEPS,
    BenchmarkSettings,
    SeedResult,
    default_jobs,
    draw_order,
    leave_out_of_prior,
    optuna_pruner,
    replay_rule,
    run_benchmark,
    score,
    table_spread,
)
from qhpo.replay._budget import (
    BUDGET_POLICIES,
    BudgetSettings,
    budget_order,
    found_over_time,
    normalised_regret,
    run_budget,
)
from qhpo.replay._live import (
    LIVE_BACKENDS,
    LIVE_RULES,
    LIVE_STORAGES,
    EpochClock,
    LiveSettings,
    check_workers,
    live_rules,
    live_stem,
    replay_live,
    run_live_benchmark,
    run_live_suite,
)
from qhpo.replay._oracle import OracleService
from qhpo.replay._plot import plot_benchmark, plot_budget, plot_suite
from qhpo.replay._simulator import ReplayAgent, ReplayOutcome, simulate
from qhpo.replay._suite import run_suite, suite_tables
from qhpo.replay._swift_hyperband import SwiftHyperbandOutcome, replay_swift_hyperband

__all__ = [
    "BENCH_POLICIES",
    "BenchmarkSettings",
    "budget_order",
    "BUDGET_POLICIES",
    "BudgetSettings",
    "check_workers",
    "default_jobs",
    "draw_order",
    "EpochClock",
    "first_rung",
    "found_over_time",
    "leave_out_of_prior",
    "LIVE_BACKENDS",
    "live_rules",
    "LIVE_RULES",
    "live_stem",
    "LIVE_STORAGES",
    "LiveSettings",
    "normalised_regret",
    "optuna_pruner",
    "OPTUNA_PRUNERS",
    "OptunaPrunerAgent",
    "OracleService",
    "plot_benchmark",
    "plot_budget",
    "plot_suite",
    "PolicyAgent",
    "replay_live",
    "replay_rule",
    "replay_swift_hyperband",
    "ReplayAgent",
    "ReplayOutcome",
    "run_benchmark",
    "run_budget",
    "run_live_benchmark",
    "run_live_suite",
    "run_suite",
    "score",
    "SeedResult",
    "simulate",
    "suite_tables",
    "SWEEPS",
    "SwiftHyperbandOutcome",
    "table_spread",
]
