"""Replaying recorded learning curves through stopping rules: the benchmark behind ``qhpo bench``."""

from qhpo.replay._agents import OptunaPrunerAgent, PolicyAgent
from qhpo.replay._benchmark import (
    BENCH_POLICIES,
    OPTUNA_PRUNERS,
    SWEEPS,
    BenchmarkSettings,
    SeedResult,
    default_jobs,
    draw_order,
    optuna_pruner,
    replay_rule,
    run_benchmark,
    score,
    table_spread,
    verdict,
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
from qhpo.replay._plot import plot_benchmark, plot_suite
from qhpo.replay._simulator import ReplayAgent, ReplayOutcome, simulate
from qhpo.replay._suite import run_suite, suite_tables
from qhpo.replay._swift_hyperband import SwiftHyperbandOutcome, replay_swift_hyperband

__all__ = [
    "BENCH_POLICIES",
    "BenchmarkSettings",
    "EpochClock",
    "LIVE_BACKENDS",
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
    "SeedResult",
    "SwiftHyperbandOutcome",
    "check_workers",
    "default_jobs",
    "draw_order",
    "live_rules",
    "live_stem",
    "optuna_pruner",
    "plot_benchmark",
    "plot_suite",
    "replay_live",
    "replay_rule",
    "replay_swift_hyperband",
    "run_benchmark",
    "run_live_benchmark",
    "run_live_suite",
    "run_suite",
    "score",
    "simulate",
    "suite_tables",
    "table_spread",
    "verdict",
]
