"""Replaying Swift-Hyperband (and plain Hyperband) on recorded curves.

Swift-Hyperband chooses which configurations train how far, so the replay drives it
directly instead of through :func:`qhpo.replay.simulate`: configurations are taken from
the replayed rows in order, Hyperband iterations (see :class:`qhpo.policies.SwiftHyperband`)
repeat until the rows run out (or run once), and every rung follows the authors' phases:
partial training to ``t_d`` with the first ``max(k n_next, d - |curves|)`` continuing at
once, a barrier, the prediction for the parked ones, the finish phase, a barrier.

Differences from the reference implementation, each fixing a flaw of it:

* the predictor for a key ``(t_d, r_i)`` is refitted as curves accumulate
  (:class:`qhpo.policies.PredictionService`), not trained once and frozen;
* its training curves are every curve that has reached ``r_i`` epochs in any bracket
  (their first ``r_i`` epochs), not only those trained in rungs whose budget is ``r_i``;
* subsamples and annealer are seeded (``random_state``), so a replay is reproducible;
* the target is the value at the rung end ``r_i``, and the threshold is computed on the
  same quantity, in "higher is better" units whatever the table's ``mode``.

With W workers each phase is list-scheduled on the workers (a trial's mandatory full
training follows its partial training on the same worker) and phases are separated by
the rung barriers, as in the MPI implementation.

A configuration whose curve turns NaN at epoch ``d`` (a divergence) trains at most ``d``
epochs, ranks below every finite value from then on, and its curve trains no predictor.
"""

from __future__ import annotations

import heapq
import math
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from qhpo.policies import PredictionService, SwiftHyperband


@dataclass(frozen=True)
class SwiftHyperbandOutcome:
    """What a Swift-Hyperband replay produced.

    Attributes:
        epochs_trained: Epochs each row trained (0 for rows never used), shape (n,).
        complete: Whether each row was trained to ``max_resource``, shape (n,).
        used: Whether each row was started as a configuration, shape (n,).
        wallclock: Simulated duration, with a barrier after every phase of every rung.
        predictor_seconds: Time spent fitting and querying predictors.
        predictions: Number of parked configurations whose fate a prediction decided.
        rungs: ``(s, i, n_i, r_i, started, reached r_i)`` of every rung run, in order.
    """

    epochs_trained: np.ndarray
    complete: np.ndarray
    used: np.ndarray
    wallclock: float
    predictor_seconds: float = 0.0
    predictions: int = 0
    rungs: list = field(default_factory=list)

    @property
    def cost(self) -> int:
        return int(self.epochs_trained.sum())


#: Rank of a NaN (diverged) value: below every finite value, yet finite so that quantiles stay defined.
_WORST = -1e300


def _makespan(durations: list[float], workers: int) -> float:
    """Greedy list scheduling of jobs (in order) on ``workers`` identical workers."""
    if not durations:
        return 0.0
    free = [0.0] * min(workers, len(durations))
    heapq.heapify(free)
    end = 0.0
    for duration in durations:
        start = heapq.heappop(free)
        end = max(end, start + duration)
        heapq.heappush(free, start + duration)
    return end


def replay_swift_hyperband(
    curves,
    *,
    mode: str = "max",
    params=None,
    seconds_per_epoch=None,
    max_resource: int | None = None,
    reduction_factor: float = 2.0,
    min_resource: int = 1,
    predictive: bool = True,
    predictor: Any = "svr",
    sampler: Any = None,
    random_state: int | None = None,
    d: int = 15,
    k: float = 0.5,
    known_curve: float = 0.5,
    quantile: float = 0.25,
    workers: int = 1,
    repeat: bool = True,
    background: bool = False,
) -> SwiftHyperbandOutcome:
    """Run Swift-Hyperband (``predictive=True``) or plain Hyperband over recorded curves.

    Args:
        curves: Learning curves (n, E), in the order configurations are drawn.
        mode: ``"max"`` or ``"min"``.
        params: Numeric hyperparameters (n, H) for predictors that read them.
        seconds_per_epoch: Per-row epoch duration for the wall clock (None: epochs).
        max_resource: ``R`` (default E, at most E).
        reduction_factor: ``eta``.
        min_resource: ``r_min`` (1 in the reference runs).
        predictive: Add the in-rung decision point (False: plain Hyperband).
        predictor: ``"svr"``, ``"qsvr"``, ``"qsvr-ensemble"`` or an estimator object.
        sampler: Sampler (object or name) of the annealer predictors.
        random_state: Seed of the predictors.
        d: Minimum curves before a predictor is used.
        k: Share of ``n_next`` always trained to the rung end.
        known_curve: Position of the decision point inside a rung.
        quantile: Share of this rung's full trainings whose value a parked configuration
            must be predicted to beat (0.25: the 25 % best).
        workers: Simulated workers for the wall clock.
        repeat: Repeat Hyperband iterations until the rows run out (False: one iteration).
        background: Fit predictors in threads (only for timing studies; not deterministic).
    """
    curves = np.asarray(curves, dtype=float)
    n_rows, epochs = curves.shape
    R = epochs if max_resource is None else int(max_resource)
    if not 1 <= R <= epochs:
        raise ValueError(f"max_resource must be in [1, {epochs}] for these curves, got {max_resource}")
    rule = SwiftHyperband(max_resource=R, reduction_factor=reduction_factor, min_resource=min_resource, d=d, k=k,
                          known_curve=known_curve, quantile=quantile)
    eta = rule.reduction_factor
    sign = 1.0 if mode == "max" else -1.0
    values = sign * curves  # higher is better from here on
    # a diverged row ends at its first NaN epoch and ranks below every finite value
    nan = np.isnan(values)
    limit = np.where(nan.any(axis=1), np.argmax(nan, axis=1) + 1, epochs)
    ranked = np.where(nan, _WORST, values)
    duration = np.ones(n_rows) if seconds_per_epoch is None else np.asarray(seconds_per_epoch, dtype=float)
    trained = np.zeros(n_rows, dtype=int)
    used = np.zeros(n_rows, dtype=bool)
    services: dict[int, PredictionService] = {}
    predictions = 0
    wallclock = 0.0
    next_row = 0
    rung_log = []

    def service_for(rung: int) -> PredictionService:
        if rung not in services:
            services[rung] = PredictionService(
                predictor, sampler=sampler, background=background, min_curves=int(d),
                random_state=None if random_state is None else int(random_state) * 7919 + rung,
                hyperparameters=params is not None)
        return services[rung]

    while next_row < n_rows:
        for bracket in rule.brackets():
            if next_row >= n_rows:
                break
            n = min(bracket.n, n_rows - next_row)
            configs = list(range(next_row, next_row + n))
            next_row += n
            used[configs] = True
            rungs = bracket.rungs if n == bracket.n else rule.bracket_rungs(n, bracket.s)
            previous = 0
            for i, (n_i, r_i) in enumerate(rungs):
                last = i == len(rungs) - 1
                n_next = 1 if last else int(math.floor(n_i / eta))
                t_d = rule.decision_epoch(previous, r_i)
                if not predictive or t_d >= r_i:
                    full, parked = configs, []
                else:
                    known = int(np.sum(trained >= r_i))
                    m = rule.mandatory_full(n_next, known)
                    full, parked = configs[:m], configs[m:]
                phase = ([(min(r_i, limit[j]) - previous) * duration[j] for j in full]
                         + [(min(t_d, limit[j]) - previous) * duration[j] for j in parked])
                wallclock += _makespan(phase, workers)
                for j in full:
                    trained[j] = max(trained[j], min(r_i, limit[j]))
                for j in parked:
                    trained[j] = max(trained[j], min(t_d, limit[j]))
                finished = list(full)
                parked = [j for j in parked if limit[j] > t_d]  # a row that diverged by t_d has ended
                if parked:
                    pool = np.flatnonzero((trained >= r_i) & ~nan[:, r_i - 1])
                    service = service_for(r_i)
                    service.update(values[pool, :r_i], None if params is None else np.asarray(params)[pool])
                    prediction = service.predict(t_d, values[parked, :t_d],
                                                 None if params is None else np.asarray(params)[parked], target=r_i)
                    if prediction is None:  # fewer than d curves: nothing to predict with
                        chosen = list(parked)
                    else:
                        predictions += len(parked)
                        picks = rule.select_parked(prediction[0], ranked[full, r_i - 1], n_next)
                        chosen = [parked[j] for j in picks]
                    wallclock += _makespan([(min(r_i, limit[j]) - t_d) * duration[j] for j in chosen], workers)
                    for j in chosen:
                        trained[j] = max(trained[j], min(r_i, limit[j]))
                    finished += chosen
                rung_log.append((bracket.s, i, n_i, r_i, len(configs), len(finished)))
                if last:
                    break
                keep = max(int(math.floor(n_i / eta)), 1)
                finished = [j for j in finished if limit[j] > r_i]  # a row that diverged by r_i has ended
                finished.sort(key=lambda j: -ranked[j, r_i - 1])
                configs = sorted(finished[:keep])
                previous = r_i
        if not repeat:
            break
    seconds = sum(s.fit_seconds + s.predict_seconds for s in services.values())
    for service in services.values():
        service.close()
    complete = (trained >= R) & ~nan[:, R - 1]
    return SwiftHyperbandOutcome(trained, complete, used, wallclock, seconds, predictions, rung_log)

