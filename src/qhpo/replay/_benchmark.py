"""The replay benchmark: every stopping rule on the same random draws of a curve table.

For seed ``s`` the benchmark draws ``trials`` rows of the table (without replacement when
the table has enough rows) in a random order, and every policy replays that same order
(a paired comparison). For each policy and seed, with ``y_j`` the final value of drawn
trial ``j`` in "higher is better" units (``sign * value``) and ``K`` the trials trained to
the last epoch:

    cost_fraction = sum_j epochs_j / (trials * E)
    regret        = max_j y_j - max_{j in K} y_j        (metric units, >= 0)
    top1_kept     = [argmax_j y_j in K]

``regret`` falls back to ``max_j y_j - min_j y_j`` when no trial completes. ``median``,
``sha`` and ``hyperband`` are Optuna's own pruners in a real Optuna study, with these
defaults for a table of ``E`` epochs (rounded, at least 1):

    MedianPruner(n_startup_trials=5, n_warmup_steps=E/10)
    SuccessiveHalvingPruner(min_resource=E/20, reduction_factor=3)
    HyperbandPruner(min_resource=E/20, max_resource=E, reduction_factor=3)

``swift-hyperband`` draws its configurations from the same rows, repeating Hyperband
iterations (``R = E``, ``r_min = E/20``, ``eta = 3``, as the Hyperband pruner) until the
drawn rows are used up.
"""

from __future__ import annotations

import os
import time
from concurrent.futures import ProcessPoolExecutor
from dataclasses import dataclass
from typing import Any, Callable

import numpy as np

from qhpo.curves import CurveTable
from qhpo.optuna import OPTUNA_PRUNERS, optuna_pruner
from qhpo.policies import POLICY_NAMES, make_policy
from qhpo.replay._agents import OptunaPrunerAgent, PolicyAgent
from qhpo.replay._simulator import simulate
from qhpo.replay._swift_hyperband import replay_swift_hyperband

#: Every rule ``qhpo bench --policies`` accepts, in the order results are listed.
BENCH_POLICIES: tuple[str, ...] = ("none", "median", "sha", "hyperband", "poster", "swift-hyperband", "qhpo")
DEFAULT_POLICIES = BENCH_POLICIES

#: Settings of each rule's aggressiveness traced as a line in the plot (the middle one is
#: the rule's default point).
SWEEPS: dict[str, tuple[tuple[str, tuple], ...]] = {
    "median": (("percentile", (25.0, 50.0, 75.0)),),
    "sha": (("reduction_factor", (2, 3, 4)),),
    "hyperband": (("reduction_factor", (2, 3, 4)),),
    "poster": (("keep_fraction", (0.6, 0.4, 0.2)),),
    "swift-hyperband": (("quantile", (0.5, 0.25, 0.1)),),
    "qhpo": (("reduction_factor", (2, 3, 4)),),
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


def replay_rule(name: str, table: CurveTable, *, seed: int, predictor: Any = "svr", sampler: Any = None,
                workers: int = 1, options: dict | None = None, policy_runner: Callable | None = None) -> SeedResult:
    """Replay rule ``name`` on ``table`` (already drawn and ordered) for one seed.

    ``policy_runner(curves, policy, params=, workers=, seconds_per_epoch=) -> ReplayOutcome``
    replaces the in-process simulation for qhpo's own policies (for example
    :func:`qhpo.ray.replay_on_ray`); Optuna's pruners and Swift-Hyperband always replay
    in-process.
    """
    options = dict(options or {})
    E = table.epochs
    if name in OPTUNA_PRUNERS:
        import optuna

        optuna.logging.set_verbosity(optuna.logging.WARNING)
        agent = OptunaPrunerAgent(optuna_pruner(name, E, **options), table.mode, E, seed=seed)
        out = simulate(table.curves, agent, workers=workers, seconds_per_epoch=table.seconds_per_epoch)
        return SeedResult(out.epochs_trained, out.complete, out.wallclock, 0.0)
    if name == "swift-hyperband":
        kwargs = dict(max_resource=E, reduction_factor=3, min_resource=_rounded(E / 20))
        kwargs.update(options)
        out = replay_swift_hyperband(table.curves, mode=table.mode, seconds_per_epoch=table.seconds_per_epoch,
                                     predictor=predictor, sampler=sampler, random_state=seed, workers=workers,
                                     **kwargs)
        return SeedResult(out.epochs_trained, out.complete, out.wallclock, out.predictor_seconds)
    if name not in POLICY_NAMES:
        raise ValueError(f"name must be one of {', '.join(BENCH_POLICIES)}, got {name!r}")
    policy = make_policy(name, max_epochs=E, mode=table.mode, predictor=predictor, sampler=sampler,
                         random_state=seed, **options)
    if policy_runner is None:
        agent = PolicyAgent(policy, table.curves, table.param_rows())
        out = simulate(table.curves, agent, workers=workers, seconds_per_epoch=table.seconds_per_epoch)
    else:
        out = policy_runner(table.curves, policy, params=table.param_rows(), workers=workers,
                            seconds_per_epoch=table.seconds_per_epoch)
    service = getattr(policy, "service", None)
    seconds = 0.0 if service is None else service.fit_seconds + service.predict_seconds
    if service is not None:
        service.close()
    return SeedResult(out.epochs_trained, out.complete, out.wallclock, seconds)


def score(table: CurveTable, result: SeedResult) -> dict[str, float]:
    """cost_fraction, regret and top1_kept of one replay (see module docstring)."""
    finals = table.sign * table.final_values
    best = float(finals.max())
    kept = finals[result.complete]
    regret = best - float(kept.max()) if kept.size else best - float(finals.min())
    return {
        "cost_fraction": float(result.epochs_trained.sum()) / (table.n_trials * table.epochs),
        "regret": regret,
        "top1_kept": float(bool(np.any(result.complete & (finals == best)))),
        "wallclock": float(result.wallclock),
        "predictor_seconds": float(result.predictor_seconds),
    }


def _one_seed(job):
    table, seed, trials, rules, predictor, sampler, workers, runner = job
    drawn = table.take(draw_order(table.n_trials, trials, seed))
    out = {}
    for key, name, options in rules:
        result = replay_rule(name, drawn, seed=seed, predictor=predictor, sampler=sampler, workers=workers,
                             options=options, policy_runner=runner)
        out[key] = (score(drawn, result), result.epochs_trained.tolist(), result.complete.tolist())
    return seed, out


def run_benchmark(
    table: CurveTable,
    *,
    policies=DEFAULT_POLICIES,
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
    policies = tuple(policies)
    unknown = [p for p in policies if p not in BENCH_POLICIES]
    if unknown:
        raise ValueError(f"policies must be among {', '.join(BENCH_POLICIES)}, got {unknown[0]!r}")
    if int(trials) < 2:
        raise ValueError(f"trials must be at least 2, got {trials}")
    if int(seeds) < 1:
        raise ValueError(f"seeds must be at least 1, got {seeds}")
    if int(workers) < 1:
        raise ValueError(f"workers must be at least 1, got {workers}")
    options = options or {}
    base_rules = [(name, name, dict(options.get(name, {}))) for name in policies]
    sweep_rules = []
    for name in policies:
        for parameter, settings in SWEEPS.get(name, ()):
            for value in settings:
                sweep_rules.append((f"{name}|{parameter}={value}", name, dict(options.get(name, {}), **{parameter: value})))
    seed_list = list(range(int(first_seed), int(first_seed) + int(seeds)))
    jobs_list = []
    for i, seed in enumerate(seed_list):
        rules = base_rules + (sweep_rules if i < int(sweep_seeds) else [])
        jobs_list.append((table, seed, int(trials), rules, predictor, sampler, int(workers), policy_runner))

    per_seed: dict[int, dict] = {}
    started = time.perf_counter()
    if int(jobs) > 1 and len(jobs_list) > 1:
        with ProcessPoolExecutor(max_workers=int(jobs)) as pool:
            for seed, out in pool.map(_one_seed, jobs_list):
                per_seed[seed] = out
                if progress:
                    progress(f"seed {seed} done ({time.perf_counter() - started:.0f} s)")
    else:
        for job in jobs_list:
            seed, out = _one_seed(job)
            per_seed[seed] = out
            if progress:
                progress(f"seed {seed} done ({time.perf_counter() - started:.0f} s)")

    def summary(key: str, seeds_with: list[int]) -> dict:
        scores = [per_seed[s][key][0] for s in seeds_with]
        col = {k: np.array([sc[k] for sc in scores]) for k in scores[0]}
        values = {
            "cost_fraction_mean": col["cost_fraction"].mean(),
            "regret_mean": col["regret"].mean(),
            "regret_median": np.median(col["regret"]),
            "regret_max": col["regret"].max(),
            "top1_kept_rate": col["top1_kept"].mean(),
            "wallclock_mean": col["wallclock"].mean(),
            "predictor_seconds_mean": col["predictor_seconds"].mean(),
            "cost_fraction_sd": col["cost_fraction"].std(ddof=1) if len(scores) > 1 else 0.0,
            "regret_sd": col["regret"].std(ddof=1) if len(scores) > 1 else 0.0,
        }
        return {k: round(float(v), 8) for k, v in values.items()}

    result = {
        "table": table.name,
        "trials": int(trials),
        "seeds": int(seeds),
        "workers": int(workers),
        "predictor": predictor if isinstance(predictor, str) else type(predictor).__name__,
        "metric": table.metric,
        "mode": table.mode,
        "epochs": table.epochs,
        "first_seed": int(first_seed),
        "seconds": round(time.perf_counter() - started, 3),
        "policies": {name: summary(name, seed_list) for name in policies},
    }
    if sweep_rules and int(sweep_seeds) > 0:
        sweep_seed_list = seed_list[: int(sweep_seeds)]
        sweeps: dict[str, list] = {}
        for key, name, opts in sweep_rules:
            parameter, value = key.split("|", 1)[1].split("=", 1)
            point = summary(key, sweep_seed_list)
            sweeps.setdefault(name, []).append({"parameter": parameter, "value": opts[parameter],
                                                "cost_fraction_mean": point["cost_fraction_mean"],
                                                "regret_mean": point["regret_mean"]})
        result["sweeps"] = {"seeds": len(sweep_seed_list), "lines": sweeps}
    example_seed = seed_list[0]
    result["example"] = {
        "seed": example_seed,
        "rows": draw_order(table.n_trials, int(trials), example_seed).tolist(),
        "epochs_trained": {name: per_seed[example_seed][name][1] for name in policies},
        "complete": {name: per_seed[example_seed][name][2] for name in policies},
    }
    return result


def default_jobs() -> int:
    """Processes for the seeds: the cores this process may use, at most 2."""
    try:
        cores = len(os.sched_getaffinity(0))
    except AttributeError:  # pragma: no cover - not Linux
        cores = os.cpu_count() or 1
    return max(1, min(2, cores))
