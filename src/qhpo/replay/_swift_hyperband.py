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

from qhpo._seeds import derived_seed
from qhpo.policies import PredictionService, SwiftHyperband
from qhpo.predictors import ORACLE, ORACLE_FINAL
from qhpo.replay._oracle import OracleService


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
        predictor: ``"svr"``, ``"qsvr"``, ``"qsvr-ensemble"``, an estimator object, or
            ``"oracle"`` (the recorded value at the rung end: :class:`OracleService`), or
            ``"oracle-final"`` (the recorded final value).
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
    curves, rule = _rule_for(curves, max_resource, reduction_factor, min_resource, d, k, known_curve, quantile)
    return _Replay(
        rule,
        curves,
        mode=mode,
        params=params,
        seconds_per_epoch=seconds_per_epoch,
        predictive=predictive,
        predictor=predictor,
        sampler=sampler,
        random_state=random_state,
        workers=workers,
        background=background,
    ).outcome_of_run(repeat)


def _rule_for(curves, max_resource, reduction_factor, min_resource, d, k, known_curve, quantile):
    """The curves as an array and the rule replayed over them (``max_resource``: their epochs by default)."""
    curves = np.asarray(curves, dtype=float)
    epochs = curves.shape[1]
    R = epochs if max_resource is None else int(max_resource)
    if not 1 <= R <= epochs:
        raise ValueError(f"max_resource must be in [1, {epochs}] for these curves, got {max_resource}")
    rule = SwiftHyperband(
        max_resource=R,
        reduction_factor=reduction_factor,
        min_resource=min_resource,
        d=d,
        k=k,
        known_curve=known_curve,
        quantile=quantile,
    )
    return curves, rule


class _Replay:
    """The state of one replay: which rows trained how far, the clock, the predictors.

    ``run`` takes Hyperband iterations until the rows run out; each bracket starts its
    configurations from the next rows, and each rung trains its configurations (the
    first ones to the rung end, the parked ones to the decision point), lets the rule
    choose the parked ones that finish, and promotes the best to the next rung.
    """

    def __init__(
        self,
        rule: SwiftHyperband,
        curves: np.ndarray,
        *,
        mode: str,
        params,
        seconds_per_epoch,
        predictive: bool,
        predictor: Any,
        sampler: Any,
        random_state: int | None,
        workers: int,
        background: bool,
    ):
        self.rule = rule
        n_rows, epochs = curves.shape
        self.values = (1.0 if mode == "max" else -1.0) * curves  # higher is better from here on
        # a diverged row ends at its first NaN epoch and ranks below every finite value
        self.nan = np.isnan(self.values)
        self.limit = np.where(self.nan.any(axis=1), np.argmax(self.nan, axis=1) + 1, epochs)
        self.ranked = np.where(self.nan, _WORST, self.values)
        self.params = None if params is None else np.asarray(params)
        self.duration = np.ones(n_rows) if seconds_per_epoch is None else np.asarray(seconds_per_epoch, dtype=float)
        self.predictive = predictive
        self.predictor, self.sampler, self.random_state = predictor, sampler, random_state
        self.workers = workers
        self.background = background
        self.trained = np.zeros(n_rows, dtype=int)
        self.used = np.zeros(n_rows, dtype=bool)
        self.services: dict[int, PredictionService] = {}
        self.predictions = 0
        self.wallclock = 0.0
        self.next_row = 0
        self.rung_log: list[tuple[int, int, int, int, int, int]] = []

    def outcome_of_run(self, repeat: bool) -> SwiftHyperbandOutcome:
        """Run the schedule, close the predictors, and say what happened."""
        try:
            self.run(repeat=repeat)
        finally:
            self.close()
        return self.outcome()

    # -- the schedule --------------------------------------------------------------------
    def run(self, *, repeat: bool) -> None:
        n_rows = len(self.values)
        while self.next_row < n_rows:
            for bracket in self.rule.brackets():
                if self.next_row >= n_rows:
                    break
                self.run_bracket(bracket)
            if not repeat:
                break

    def run_bracket(self, bracket) -> None:
        """Start the bracket's configurations from the next rows and run its rungs."""
        n = min(bracket.n, len(self.values) - self.next_row)
        configs = list(range(self.next_row, self.next_row + n))
        self.next_row += n
        self.used[configs] = True
        rungs = bracket.rungs if n == bracket.n else self.rule.bracket_rungs(n, bracket.s)
        previous = 0
        for i, (n_i, r_i) in enumerate(rungs):
            last = i == len(rungs) - 1
            finished = self.run_rung(configs, previous, n_i, r_i, last)
            self.rung_log.append((bracket.s, i, n_i, r_i, len(configs), len(finished)))
            if last:
                break
            configs = self.promote(finished, n_i, r_i)
            previous = r_i

    def run_rung(self, configs: list[int], previous: int, n_i: int, r_i: int, last: bool) -> list[int]:
        """Train the rung's configurations from ``previous``; the rows that reached ``r_i``."""
        n_next = 1 if last else int(math.floor(n_i / self.rule.reduction_factor))
        t_d = self.rule.decision_epoch(previous, r_i)
        if not self.predictive or t_d >= r_i:
            full, parked = configs, []
        else:
            m = self.rule.mandatory_full(n_next, int(np.sum(self.trained >= r_i)))
            full, parked = configs[:m], configs[m:]
        self.train([(j, previous, r_i) for j in full] + [(j, previous, t_d) for j in parked])
        finished = list(full)
        parked = [j for j in parked if self.limit[j] > t_d]  # a row that diverged by t_d has ended
        if parked:
            chosen = self.choose_parked(parked, full, t_d, r_i, n_next)
            self.train([(j, t_d, r_i) for j in chosen])
            finished += chosen
        return finished

    def choose_parked(self, parked: list[int], full: list[int], t_d: int, r_i: int, n_next: int) -> list[int]:
        """The parked rows that continue to ``r_i``: all of them while no predictor exists."""
        pool = np.flatnonzero((self.trained >= r_i) & ~self.nan[:, r_i - 1])
        service = self.service_for(r_i)
        service.update(self.values[pool, :r_i], None if self.params is None else self.params[pool])
        prediction = service.predict(
            t_d,
            self.values[parked, :t_d],
            None if self.params is None else self.params[parked],
            target=r_i,
            keys=parked,
        )
        if prediction is None:  # fewer than d curves: nothing to predict with
            return list(parked)
        self.predictions += len(parked)
        picks = self.rule.select_parked(prediction[0], self.ranked[full, r_i - 1], n_next)
        return [parked[j] for j in picks]

    def promote(self, finished: list[int], n_i: int, r_i: int) -> list[int]:
        """The best ``max(floor(n_i / eta), 1)`` rows at ``r_i`` that have not diverged."""
        keep = max(int(math.floor(n_i / self.rule.reduction_factor)), 1)
        finished = [j for j in finished if self.limit[j] > r_i]  # a row that diverged by r_i has ended
        finished.sort(key=lambda j: -self.ranked[j, r_i - 1])
        return sorted(finished[:keep])

    def train(self, jobs: list[tuple[int, int, int]]) -> None:
        """One phase: each ``(row, from, to)`` trains (no further than its divergence), then a barrier."""
        self.wallclock += _makespan(
            [(min(to, self.limit[j]) - start) * self.duration[j] for j, start, to in jobs], self.workers
        )
        for j, _, to in jobs:
            self.trained[j] = max(self.trained[j], min(to, self.limit[j]))

    # -- predictors and result -----------------------------------------------------------
    def service_for(self, rung: int) -> PredictionService:
        if rung not in self.services and isinstance(self.predictor, str) and self.predictor in (ORACLE, ORACLE_FINAL):
            # the values are "higher is better"
            self.services[rung] = OracleService(self.values, mode="max", final=self.predictor == ORACLE_FINAL)
        if rung not in self.services:
            self.services[rung] = PredictionService(
                self.predictor,
                sampler=self.sampler,
                background=self.background,
                min_curves=self.rule.d,
                random_state=None if self.random_state is None else derived_seed(self.random_state, rung),
                hyperparameters=self.params is not None,
            )
        return self.services[rung]

    def close(self) -> None:
        for service in self.services.values():
            service.close()

    def outcome(self) -> SwiftHyperbandOutcome:
        R = self.rule.max_resource
        seconds = sum(s.fit_seconds + s.predict_seconds for s in self.services.values())
        complete = (self.trained >= R) & ~self.nan[:, R - 1]
        return SwiftHyperbandOutcome(
            self.trained, complete, self.used, self.wallclock, seconds, self.predictions, self.rung_log
        )
