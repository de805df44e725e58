"""One rule replayed on one seed's drawn rows: qhpo's policies, Optuna's pruners, Swift-Hyperband."""

from __future__ import annotations

import contextlib
from collections.abc import Callable
from dataclasses import dataclass
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
#: The policies whose predictions ``--predictor oracle`` (or ``oracle-final``) replaces by
#: the recorded values; Swift-Hyperband reads them too (:func:`replay_swift_hyperband`), and
#: ``baker`` keeps its own ν-SVR (the model is part of that published rule).
ORACLE_POLICIES = ("poster", "qhpo", "qhpo-stop")


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
    #: The rule's decisions depended on the budget (:attr:`qhpo.policies.StoppingPolicy.reads_budget`).
    read_budget: bool = False


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
        budget is not None and policy.reads_budget,
    )
