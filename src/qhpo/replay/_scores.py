"""Scores of replayed seeds and the JSON document of one table: regret, cost, their statistics."""

from __future__ import annotations

import math
from collections.abc import Mapping
from typing import TYPE_CHECKING

import numpy as np

from qhpo.curves import CurveTable
from qhpo.replay._rule_replay import SeedResult, draw_order

if TYPE_CHECKING:
    from qhpo.replay._benchmark import BenchmarkSettings, SeedOutcome

SPREAD_DEFINITION = "best minus median of the table's finite final values (metric units)"


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
