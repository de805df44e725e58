"""Syne Tune's schedulers on qhpo's replay: the same drawn rows, and qhpo's epochs as their budget.

Replays curve tables through Syne Tune 0.14.2 (the last release with MOBSTER and DyHPO;
``pip install -e '.[peers]'``), with its tabular simulator (``BlackboxTabular`` +
``UserBlackboxBackend``, one worker, time = epochs), beside qhpo's default rule:

    asha-stop-3, asha-stop-2   ASHA, stopping type, reduction factor 3 and 2
    asha-promote               ASHA, promotion type (pause and resume), reduction factor 3
    hyperband                  synchronous Hyperband (all brackets), reduction factor 3
    bohb                       ASHA promotion with BOHB's kernel density searcher
    mobster                    MOBSTER (ASHA promotion with a multi-task GP searcher)
    dyhpo                      DyHPO (Syne Tune's GP variant, linear rungs)

Every method starts at qhpo's first rung ``r_min = max(1, round(E/20))``; DyHPO's rungs are
``r_min, 2 r_min, ...``. For seed ``s`` the configurations are the ``trials`` rows that
``qhpo bench`` draws (:func:`qhpo.replay.draw_order`): the searcher is restricted to them.
The random-search methods (both ASHAs, Hyperband) take them in the drawn order; the
model-based ones (BOHB, MOBSTER, DyHPO) start with the first drawn row and then choose
among the rows not yet started. Two measurements come from the same run:

* **same trials**: the run goes on until the drawn rows are used up (and nothing is left
  running); cost and regret as ``qhpo bench`` scores them (:func:`qhpo.replay.score`).
* **equal compute**: with ``B_s`` the epochs qhpo's default rule (``qhpo``) spent on seed
  ``s`` (read from ``--qhpo-json``, else replayed here), the regret of the best trial that
  completed within ``B_s`` epochs; and the same at every epoch (``regret_at``: at a quarter,
  half, three quarters and all of ``B_s``; ``trajectory``: each seed's steps).
  A method that uses up the rows before ``B_s`` stops there.
* **budget mode** (``--budget K``, a run of its own): as ``qhpo bench --budget K``, each
  seed may spend ``K E`` epochs, on rows in the seed's order of that mode
  (:func:`qhpo.replay.budget_order`, as many as the budget reaches); normalised regret
  (:func:`qhpo.replay.normalised_regret` of the best trial completed by then,
  :func:`qhpo.replay.found_over_time`) read at 5, 10 and 20 full trainings from one run.

Two workarounds (see docs/peers.md): the simulator adds the real time spent outside it (the
scheduler's decisions, the GP fits) to its clock, which here is zeroed, so time is epochs
alone; and no searcher may propose a configuration outside the drawn rows (the tabular
blackbox has no value for it): MOBSTER and DyHPO take ``restrict_configurations``, the
kernel density searcher of BOHB (which does not) is snapped to the nearest row not yet
started, and a searcher with no row left ends the search cleanly (Syne Tune's
``StopIteration`` path) instead of failing. Run:

    python benchmarks/peers.py (--curves TABLE | --suite builtin|FOLDER)
        [--methods asha-stop-3,asha-stop-2,asha-promote,hyperband,bohb] [--seeds 10]
        [--first-seed 0] [--trials 100] [--qhpo-json bench.json] [--predictor svr]
        [--mode both|equal] [--json OUT.json]
    python benchmarks/peers.py (--curves TABLE | --suite builtin|FOLDER) --budget K [--methods ...]
        [--seeds 10] [--first-seed 0] [--json OUT.json]
    python benchmarks/peers.py --report OUT.json [MORE.json ...] [QHPO-BUDGET.json]   (markdown tables)

``--mode equal`` stops each run once it has spent ``B_s`` (cheaper for MOBSTER and DyHPO;
no same-trials numbers then).
"""

from __future__ import annotations

import argparse
import contextlib
import io
import json
import logging
import math
import os
import sys
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from qhpo.curves import CurveTable, builtin_table_paths, read_curve_table, resolve_curve_table
from qhpo.policies import TrialStatus
from qhpo.replay import (
    BudgetSettings,
    PolicyAgent,
    ReplayOutcome,
    budget_order,
    draw_order,
    found_over_time,
    normalised_regret,
    replay_rule,
    score,
    simulate,
    suite_tables,
    table_spread,
)
from qhpo.replay._budget import REGRET_DEFINITION

METHODS = ("asha-stop-3", "asha-stop-2", "asha-promote", "hyperband", "bohb", "mobster", "dyhpo")
CHEAP_METHODS = ("asha-stop-3", "asha-stop-2", "asha-promote", "hyperband", "bohb")
MODEL_BASED = ("bohb", "mobster", "dyhpo")
#: Shares of the budget at which the equal-compute regret is reported.
BUDGET_SHARES = (0.25, 0.5, 0.75, 1.0)
METRIC, RESOURCE, ELAPSED = "value", "epoch", "elapsed_time"
SYNE_TUNE_VERSION = "0.14.2"


def syne_tune():
    """Import Syne Tune, or end with one sentence when the extra is missing or another version."""
    try:
        import syne_tune as st
    except ImportError:
        sys.exit("benchmarks/peers.py needs Syne Tune: pip install -e '.[peers]'")
    if st.__version__ != SYNE_TUNE_VERSION:
        sys.exit(f"benchmarks/peers.py needs Syne Tune {SYNE_TUNE_VERSION} (MOBSTER and DyHPO), found {st.__version__}")
    for name in ("syne_tune", "root"):
        logging.getLogger(None if name == "root" else name).setLevel(logging.ERROR)
    _empty_pool_gives_no_candidates()
    return st


def _empty_pool_gives_no_candidates() -> None:
    """Workaround 3: once every row of ``restrict_configurations`` is taken, Syne Tune's
    ``RandomFromSetCandidateGenerator.generate_candidates_en_bulk`` unpacks an empty ``zip``
    and raises ``ValueError`` (MOBSTER, DyHPO); it returns no candidates instead, so that the
    searcher has no new configuration (DyHPO can still resume a paused trial)."""
    from syne_tune.optimizer.schedulers.searchers.bayesopt.tuning_algorithms import bo_algorithm_components as c

    generator = c.RandomFromSetCandidateGenerator
    if getattr(generator, "_qhpo_patched", False):
        return
    original = generator.generate_candidates_en_bulk

    def generate_candidates_en_bulk(self, num_cands, exclusion_list=None):
        if exclusion_list is not None and all(exclusion_list.contains(config) for config in self.base_set):
            return []
        return original(self, num_cands, exclusion_list=exclusion_list)

    generator.generate_candidates_en_bulk = generate_candidates_en_bulk
    generator._qhpo_patched = True


# ---------------------------------------------------------------- the search space and the pool


@dataclass(frozen=True)
class Space:
    """Syne Tune's view of a table's hyperparameters: domains, and each drawn row as a config."""

    domains: dict
    configs: list  # one config per drawn row, in the drawn order
    encoded: np.ndarray  # (rows, dims) in [0, 1], for snapping a free proposal to a row

    def row_of(self, config: dict, exclude: set[int] = frozenset()) -> int:
        """The drawn row a config stands for: the nearest one (in ``encoded``), ``exclude`` left out."""
        x = self.encode(config)
        distance = np.abs(self.encoded - x).sum(axis=1)
        if exclude:
            distance[list(exclude)] = np.inf
        return int(np.argmin(distance))

    def encode(self, config: dict) -> np.ndarray:
        return np.array([_unit(self.domains[name], config[name]) for name in self.domains])


def _unit(domain, value) -> float:
    """``value`` in [0, 1] of ``domain`` (log scale where the domain is), a categorical level's index."""
    from syne_tune.config_space import Categorical

    if isinstance(domain, Categorical):
        return domain.categories.index(value) / max(1, len(domain.categories) - 1)
    lower, upper = float(domain.lower), float(domain.upper)
    value = float(value)
    if getattr(domain.sampler, "base", None) is not None or type(domain.sampler).__name__ == "LogUniform":
        lower, upper, value = math.log(lower), math.log(upper), math.log(value)
    return (value - lower) / (upper - lower) if upper > lower else 0.0


def build_space(table: CurveTable, drawn: CurveTable, rounds: np.ndarray | None = None) -> Space:
    """Domains from the whole table, configs from the drawn rows.

    Numeric hyperparameters become ``randint``/``lograndint`` (whole numbers) or
    ``uniform``/``loguniform`` (log scale when positive and spanning a factor of 100 or
    more); a categorical one becomes ``choice`` when it has at most 50 levels (an identifier
    such as baker_metaqnn_svhn's architecture string, one level per row, is left out, as
    qhpo's encoder leaves it out); a constant one is left out. In budget mode a row may come
    back in a later round of the seed's order (``rounds``: each drawn row's round); a
    ``copy`` index (the round) then tells the copies apart. If two drawn rows still look
    alike, a ``row`` index (``randint``) tells them apart.
    """
    from syne_tune.config_space import choice, lograndint, loguniform, randint, uniform

    domains, columns = {}, {}
    for name in table.hyperparameter_names:
        values = table.params[name]
        if name in table.categorical_names:
            levels = sorted({str(v) for v in values})
            if 1 < len(levels) <= 50:
                domains[name] = choice(levels)
                columns[name] = [str(v) for v in drawn.params[name]]
            continue
        values = np.asarray(values, dtype=float)
        lower, upper = float(values.min()), float(values.max())
        if upper <= lower:
            continue
        whole = bool(np.all(values == np.round(values)))
        log = lower > 0 and upper / lower >= 100
        if whole:
            domains[name] = (lograndint if log else randint)(int(lower), int(upper))
            columns[name] = [int(v) for v in drawn.params[name]]
        else:
            domains[name] = (loguniform if log else uniform)(lower, upper)
            columns[name] = [float(v) for v in drawn.params[name]]
    configs = [{name: columns[name][i] for name in domains} for i in range(drawn.n_trials)]
    if rounds is not None and int(np.max(rounds)) > 0 and _alike(configs):
        domains["copy"] = randint(0, int(np.max(rounds)))
        for config, copy in zip(configs, rounds, strict=True):
            config["copy"] = int(copy)
    if _alike(configs):
        domains["row"] = randint(0, drawn.n_trials - 1)
        for i, config in enumerate(configs):
            config["row"] = i
    encoded = np.array([[_unit(domains[name], c[name]) for name in domains] for c in configs])
    return Space(domains, configs, encoded)


def _alike(configs: list[dict]) -> bool:
    """Whether two of ``configs`` are the same point."""
    return len({tuple(c.values()) for c in configs}) < len(configs)


def blackbox(space: Space, drawn: CurveTable):
    """The drawn rows as a ``BlackboxTabular`` (one seed, fidelities 1..E)."""
    import pandas as pd
    from syne_tune.blackbox_repository.blackbox_tabular import BlackboxTabular
    from syne_tune.config_space import randint

    E = drawn.epochs
    evaluations = np.empty((drawn.n_trials, 1, E, 2))
    evaluations[:, 0, :, 0] = drawn.curves
    evaluations[:, 0, :, 1] = np.arange(1, E + 1)  # elapsed time: one unit per epoch
    return BlackboxTabular(
        hyperparameters=pd.DataFrame(space.configs),
        configuration_space=space.domains,
        fidelity_space={RESOURCE: randint(1, E)},
        objectives_evaluations=evaluations,
        objectives_names=[METRIC, ELAPSED],
    )


# ---------------------------------------------------------------- the simulator, with the two workarounds


def table_backend(space: Space, drawn: CurveTable):
    """A ``UserBlackboxBackend`` whose clock counts epochs only, over the drawn rows."""
    from syne_tune.backend.simulator_backend.simulator_backend import SimulatorConfig
    from syne_tune.backend.trial_status import Status
    from syne_tune.blackbox_repository import UserBlackboxBackend

    class TableBackend(UserBlackboxBackend):
        """Reads a trial's epochs from its drawn row; ends a diverged row as failed at its NaN."""

        def __init__(self):
            super().__init__(
                blackbox=blackbox(space, drawn),
                elapsed_time_attr=ELAPSED,
                simulator_config=SimulatorConfig(0.0, 0.0, 0.0, 0.0, 0.0),
                # a loop of the tuner takes in up to one full training's results; the tuner hands
                # them to the scheduler in order and drops those after a stop or pause decision
                tuner_sleep_time=float(drawn.epochs),
            )
            self.row_of_trial: dict[int, int] = {}
            self.diverges_at: dict[int, int] = {}

        def _advance_by_outside_time(self):
            """Workaround 1: the scheduler's own compute is not charged to the simulated clock."""

        def _run_job_and_collect_results(self, trial_id, config=None):
            if config is None:
                config = self._trial_dict[trial_id].config
            row = self.row_of_trial.setdefault(trial_id, space.row_of(config))
            start = self._resource_paused_for_trial.get(trial_id, 0) if self._support_checkpointing else 0
            curve = drawn.curves[row]
            results, status = [], Status.completed
            for epoch in range(start + 1, drawn.epochs + 1):
                value = float(curve[epoch - 1])
                if not math.isfinite(value):  # qhpo's replay: the NaN epoch is trained, the trial failed
                    status = Status.failed
                    self.diverges_at[trial_id] = epoch
                    break
                results.append({METRIC: value, RESOURCE: epoch, ELAPSED: float(epoch - start)})
            return status, results

    return TableBackend()


class Ledger:
    """Tuner callback: epochs each row trained, in the order the scheduler saw them.

    ``completions`` lists ``(epochs spent so far, row)`` whenever a row reaches its last
    epoch; ``spent`` is the running total (a resumed trial's epochs count once).
    """

    def __init__(self, backend, n_rows: int, epochs: int):
        from syne_tune.tuner_callback import TunerCallback

        ledger = self

        class _Callback(TunerCallback):
            def on_trial_result(self, trial, status, result, decision):
                ledger.reached(trial.trial_id, int(result[RESOURCE]))

            def on_fetch_status_results(self, trial_status_dict, new_results):
                for trial_id, (_, status) in trial_status_dict.items():
                    if status == "Failed" and trial_id in backend.diverges_at:
                        ledger.reached(trial_id, backend.diverges_at[trial_id])

        self.backend = backend
        self.callback = _Callback()
        self.epochs_trained = np.zeros(n_rows, dtype=int)
        self.complete = np.zeros(n_rows, dtype=bool)
        self.completions: list[tuple[int, int]] = []
        self.resumed = 0
        self.spent = 0
        self.E = epochs

    def reached(self, trial_id: int, epoch: int) -> None:
        row = self.backend.row_of_trial[trial_id]
        if epoch <= self.epochs_trained[row]:
            return
        self.spent += epoch - self.epochs_trained[row]
        self.epochs_trained[row] = epoch
        if epoch == self.E and trial_id not in self.backend.diverges_at:
            self.complete[row] = True
            self.completions.append((self.spent, row))


# ---------------------------------------------------------------- the methods


def _rung(E: int) -> int:
    return max(1, int(round(E / 20)))


def make_scheduler(method: str, space: Space, drawn: CurveTable, seed: int):
    """Syne Tune's scheduler for ``method``, restricted to the drawn rows."""
    from syne_tune.optimizer.legacy_baselines import ASHA, MOBSTER, DyHPO, SyncHyperband
    from syne_tune.optimizer.schedulers.legacy_hyperband import LegacyHyperbandScheduler

    E, r_min = drawn.epochs, _rung(drawn.epochs)
    common = dict(metric=METRIC, mode=drawn.mode, resource_attr=RESOURCE, random_seed=seed)
    if method not in MODEL_BASED:  # random search, in the drawn order
        search = dict(restrict_configurations=space.configs, allow_duplicates=False, debug_log=False)
        first = dict(points_to_evaluate=list(space.configs), search_options=search)
    else:  # the model picks among the drawn rows; the first one starts
        search = dict(restrict_configurations=space.configs, allow_duplicates=False, debug_log=False)
        first = dict(points_to_evaluate=[space.configs[0]], search_options=search)
    if method in ("asha-stop-3", "asha-stop-2", "asha-promote"):
        eta = 2 if method == "asha-stop-2" else 3
        kind = "promotion" if method == "asha-promote" else "stopping"
        return ASHA(space.domains, max_t=E, grace_period=r_min, reduction_factor=eta, type=kind, **common, **first)
    if method == "hyperband":
        return SyncHyperband(
            space.domains, max_resource_level=E, grace_period=r_min, reduction_factor=3, **common, **first
        )
    if method == "mobster":
        return MOBSTER(
            space.domains, max_t=E, grace_period=r_min, reduction_factor=3, type="promotion", **common, **first
        )
    if method == "dyhpo":
        return DyHPO(space.domains, max_t=E, grace_period=r_min, rung_increment=r_min, **common, **first)
    if method == "bohb":
        searcher = pool_kde_searcher(space, common["metric"], common["mode"], seed)
        return LegacyHyperbandScheduler(
            space.domains,
            searcher=searcher,
            max_t=E,
            grace_period=r_min,
            reduction_factor=3,
            type="promotion",
            metric=METRIC,
            mode=drawn.mode,
            resource_attr=RESOURCE,
            random_seed=seed,
        )
    raise ValueError(f"method must be one of {', '.join(METHODS)}, got {method!r}")


def pool_kde_searcher(space: Space, metric: str, mode: str, seed: int):
    """BOHB's multi-fidelity kernel density searcher, its proposals snapped to rows not yet started.

    Workaround 2 for BOHB: Syne Tune's KDE searcher ignores ``restrict_configurations``
    and proposes any point of the space, which the tabular blackbox cannot evaluate.
    """
    from syne_tune.optimizer.schedulers.searchers.kde.legacy_multi_fidelity_searcher import (
        LegacyMultiFidelityKernelDensityEstimator,
    )

    class PoolKDE(LegacyMultiFidelityKernelDensityEstimator):
        def __init__(self):
            super().__init__(
                space.domains,
                metric=metric,
                mode=mode,
                points_to_evaluate=[space.configs[0]],
                allow_duplicates=True,  # the pool itself keeps rows unique
                random_seed=seed,
            )
            self.started: set[int] = set()

        def _get_config(self, **kwargs):
            if len(self.started) == len(space.configs):
                return None
            proposal = super()._get_config(**kwargs)
            if proposal is None:
                return None
            row = space.row_of(proposal, exclude=self.started)
            self.started.add(row)
            return dict(space.configs[row])

    return PoolKDE()


@dataclass
class PeerRun:
    """One method on one seed: what ``qhpo.replay.score`` reads, and the run's trace."""

    epochs_trained: np.ndarray
    complete: np.ndarray
    completions: list
    spent: int
    seconds: float
    wallclock: float = 0.0
    predictor_seconds: float = 0.0
    pauses: tuple = ()
    resumptions: tuple = ()
    exhausted: bool = field(default=False)
    started: list = field(default_factory=list)  # rows in the order their trials started


def run_peer(method: str, drawn: CurveTable, space: Space, seed: int, budget: float | None = None) -> PeerRun:
    """Replay ``method`` on the drawn rows with Syne Tune's simulator, until the rows are used up
    (and nothing runs) or, with ``budget``, until it has spent that many epochs."""
    from syne_tune import Tuner
    from syne_tune.backend.simulator_backend.simulator_callback import SimulatorCallback

    started = time.perf_counter()
    backend = table_backend(space, drawn)
    ledger = Ledger(backend, drawn.n_trials, drawn.epochs)
    scheduler = make_scheduler(method, space, drawn, seed)

    def stop(status) -> bool:
        return budget is not None and ledger.spent >= budget

    with tempfile.TemporaryDirectory() as folder, contextlib.redirect_stdout(io.StringIO()) as printed:
        os.environ["SYNETUNE_FOLDER"] = folder
        tuner = Tuner(
            trial_backend=backend,
            scheduler=scheduler,
            stop_criterion=stop,
            n_workers=1,
            sleep_time=0,
            results_update_interval=1e9,
            print_update_interval=1e9,
            max_failures=10**9,  # a diverged row fails; the search goes on
            callbacks=[SimulatorCallback(), ledger.callback],
            save_tuner=False,
            tuner_name=f"peers-{method}",
        )
        tuner.run()
    return PeerRun(
        ledger.epochs_trained,
        ledger.complete,
        ledger.completions,
        ledger.spent,
        time.perf_counter() - started,
        exhausted="exhausted" in printed.getvalue(),
        started=[row for _, row in sorted(backend.row_of_trial.items())],
    )


# ---------------------------------------------------------------- qhpo's default rule, with its trace


class TracingAgent:
    """A ``PolicyAgent`` that also records ``(epochs spent so far, row)`` at each completion."""

    def __init__(self, agent: PolicyAgent):
        self.agent, self.spent, self.completions = agent, 0, []

    def start(self, index):
        self.agent.start(index)

    def report(self, index, epoch, value):
        self.spent += 1
        return self.agent.report(index, epoch, value)

    def finish(self, index, status):
        if status == TrialStatus.FAILED:
            self.spent += 1  # the NaN epoch, trained but never reported
        if status == TrialStatus.COMPLETE:
            self.completions.append((self.spent, index))
        self.agent.finish(index, status)

    def promote(self, limit, more_trials=False):
        return self.agent.promote(limit, more_trials)

    def resume(self, index):
        self.agent.resume(index)


def run_qhpo(drawn: CurveTable, seed: int, predictor: str) -> PeerRun:
    """``qhpo bench``'s replay of the default rule (:func:`qhpo.replay.replay_rule`), traced."""
    traces = []

    def runner(curves, policy, *, params, workers, seconds_per_epoch) -> ReplayOutcome:
        agent = TracingAgent(PolicyAgent(policy, curves, params))
        traces.append(agent)
        return simulate(curves, agent, workers=workers, seconds_per_epoch=seconds_per_epoch)

    started = time.perf_counter()
    result = replay_rule("qhpo", drawn, seed=seed, predictor=predictor, policy_runner=runner)
    seconds = time.perf_counter() - started
    trace = traces[0]
    assert trace.spent == int(result.epochs_trained.sum()), (trace.spent, int(result.epochs_trained.sum()))
    return PeerRun(
        result.epochs_trained,
        result.complete,
        trace.completions,
        trace.spent,
        seconds,
        pauses=result.pauses,
        resumptions=result.resumptions,
    )


# ---------------------------------------------------------------- scores


def regret_within(drawn: CurveTable, completions: list, epochs: float) -> float:
    """Regret, as ``qhpo bench`` defines it, of the best row completed within ``epochs`` epochs."""
    finals = drawn.sign * drawn.final_values
    finite = np.isfinite(finals)
    if not finite.any():
        return 0.0
    best = float(finals[finite].max())
    done = [finals[row] for spent, row in completions if spent <= epochs and np.isfinite(finals[row])]
    return best - float(max(done)) if done else best - float(finals[finite].min())


def trajectory(drawn: CurveTable, completions: list) -> list[list[float]]:
    """``[epochs spent, regret]`` at each completion that lowered the regret."""
    steps, last = [], None
    for spent, _ in completions:
        r = regret_within(drawn, completions, spent)
        if last is None or r < last:
            steps.append([int(spent), round(r, 10)])
            last = r
    return steps


def seed_record(drawn: CurveTable, run: PeerRun, budget: float | None, same: bool) -> dict:
    record = {"seconds": round(run.seconds, 3), "epochs": int(run.spent)}
    if same:
        scores = score(drawn, run)
        record.update(cost_fraction=scores["cost_fraction"], regret=scores["regret"], top1_kept=scores["top1_kept"])
    if budget is not None:
        record["budget"] = int(budget)
        record["regret_at"] = [regret_within(drawn, run.completions, share * budget) for share in BUDGET_SHARES]
        record["epochs_within_budget"] = int(min(run.spent, budget))
        record["trajectory"] = trajectory(drawn, run.completions)
    return record


def summarise(records: list[dict], spread: float, same: bool, equal: bool) -> dict:
    """Means over seeds, and the per-seed values in seed order (as ``qhpo bench --json``)."""
    out: dict = {"seconds_mean": round(float(np.mean([r["seconds"] for r in records])), 4)}
    per_seed: dict = {"seconds": [r["seconds"] for r in records], "epochs": [r["epochs"] for r in records]}
    if same:
        for key in ("cost_fraction", "regret", "top1_kept"):
            values = np.array([r[key] for r in records], dtype=float)
            out[f"{key}_mean" if key != "top1_kept" else "top1_kept_rate"] = round(float(values.mean()), 8)
        out["regret_sd"] = round(float(np.std([r["regret"] for r in records], ddof=1)), 8) if len(records) > 1 else 0.0
        out["regret_normalised_mean"] = round(out["regret_mean"] / spread, 8) if spread > 0 else None
        per_seed["cost_fraction"] = [round(r["cost_fraction"], 8) for r in records]
        per_seed["regret"] = [round(r["regret"], 10) for r in records]
    if equal:
        at = np.array([r["regret_at"] for r in records], dtype=float)
        out["equal_compute"] = {
            "regret_mean": round(float(at[:, -1].mean()), 8),
            "regret_sd": round(float(at[:, -1].std(ddof=1)), 8) if len(records) > 1 else 0.0,
            "regret_normalised_mean": round(float(at[:, -1].mean()) / spread, 8) if spread > 0 else None,
            "regret_at_budget_share": {str(s): round(float(at[:, k].mean()), 8) for k, s in enumerate(BUDGET_SHARES)},
            "budget_used_mean": round(
                float(np.mean([r["epochs_within_budget"] / r["budget"] for r in records if r["budget"]])), 6
            ),
        }
        per_seed["equal_compute_regret"] = [round(r["regret_at"][-1], 10) for r in records]
        per_seed["budget"] = [r["budget"] for r in records]
        per_seed["trajectory"] = [r["trajectory"] for r in records]
    out["per_seed"] = per_seed
    return out


# ---------------------------------------------------------------- budget mode: qhpo bench --budget K


def diverges_at(table: CurveTable) -> np.ndarray:
    """Per row, the epoch (1-based) whose value is NaN first; ``E + 1`` for a row that never diverges."""
    bad = ~np.isfinite(table.curves)
    return np.where(bad.any(axis=1), bad.argmax(axis=1) + 1, table.epochs + 1)


def budget_pool(table: CurveTable, budget: int, seed: int) -> tuple[CurveTable, np.ndarray]:
    """The rows a peer may start under ``budget`` epochs, in the seed's order, and each row's round.

    The order is qhpo's budget mode's (:func:`qhpo.replay.budget_order`: permutations of all
    rows, one after the other). It is cut where the budget ends for every peer: each trial
    trains at least ``min(r_min, d)`` epochs before a peer can stop or pause it (``r_min``
    the first rung, ``d`` the epoch it diverges at), so once the first ``l`` trials' minimums
    add up to ``budget`` no further trial starts within the budget; one more is kept.
    """
    order = budget_order(table.n_trials, budget, seed)
    least = np.minimum(_rung(table.epochs), diverges_at(table))[order]
    length = min(len(order), int(np.searchsorted(np.cumsum(least), budget)) + 2)
    return table.take(order[:length]), np.arange(length) // table.n_trials


@dataclass(frozen=True)
class BudgetSeed:
    """One method on one seed under the budget: regret on the grid, and what it spent."""

    curve: list
    configurations: int
    completed: int
    spent: int
    pool: int
    seconds: float


def completion_epochs(run: PeerRun, rows: int) -> np.ndarray:
    """Per row, the epochs spent in all when it completed (-1: never), as the budget replay's ``completed_at``."""
    completed_at = np.full(rows, -1, dtype=int)
    for spent, row in run.completions:
        completed_at[row] = spent
    return completed_at


def run_budget_seed(method: str, table: CurveTable, settings: BudgetSettings, seed: int) -> BudgetSeed:
    """``method`` on seed ``seed`` under ``settings.epochs(table)`` epochs, read as ``qhpo bench --budget``
    reads its rules: normalised regret of the best trial completed by each point of the grid."""
    budget = settings.epochs(table)
    pool, rounds = budget_pool(table, budget, seed)
    run = run_peer(method, pool, build_space(table, pool, rounds), seed, budget=budget)
    completed_at = completion_epochs(run, pool.n_trials)
    finals = pool.sign * pool.final_values
    points = [x * table.epochs for x in settings.grid()]
    regret = normalised_regret(table, found_over_time(finals, completed_at, points))
    within = (completed_at >= 0) & (completed_at <= budget)
    if run.spent < budget:
        print(f"note: {table.name} seed {seed} {method}: ended after {run.spent} of {budget} epochs", flush=True)
    return BudgetSeed(
        [round(float(r), 8) for r in regret],
        int((run.epochs_trained > 0).sum()),
        int(within.sum()),
        int(min(run.spent, budget)),
        pool.n_trials,
        run.seconds,
    )


def _key(x: float) -> str:
    return f"{x:g}"  # as qhpo bench --budget names its readings


def summarise_budget_seeds(settings: BudgetSettings, runs: list[BudgetSeed]) -> dict:
    """One method's document on one table, in the shape of a rule's in ``qhpo bench --budget --json``."""
    grid = settings.grid()
    curves = np.array([r.curve for r in runs])  # (seeds, grid)
    sd = curves.std(axis=0, ddof=1) if len(runs) > 1 else np.zeros(len(grid))
    mean = curves.mean(axis=0)
    return {
        "regret": {_key(x): round(float(mean[grid.index(x)]), 8) for x in settings.readings},
        "regret_sd": {_key(x): round(float(sd[grid.index(x)]), 8) for x in settings.readings},
        "configurations_mean": round(float(np.mean([r.configurations for r in runs])), 4),
        "completed_mean": round(float(np.mean([r.completed for r in runs])), 4),
        "epochs_spent_mean": round(float(np.mean([r.spent for r in runs])), 4),
        "seconds_mean": round(float(np.mean([r.seconds for r in runs])), 4),
        "curve": [round(float(v), 8) for v in mean],
        "per_seed": {_key(x): [r.curve[grid.index(x)] for r in runs] for x in settings.readings},
        "seconds": [round(r.seconds, 3) for r in runs],
        "pool_rows": [r.pool for r in runs],
    }


def run_budget_mode(tables: list[CurveTable], methods: list[str], settings: BudgetSettings, name: str) -> dict:
    """Every method on every table and seed under the budget; the JSON document of ``--budget``."""
    started = time.perf_counter()
    results = {}
    for table in tables:
        runs: dict[str, list[BudgetSeed]] = {m: [] for m in methods}
        for seed in settings.seed_list:
            for method in methods:
                run = run_budget_seed(method, table, settings, seed)
                runs[method].append(run)
                readings = " / ".join(f"{run.curve[settings.grid().index(x)]:.4g}" for x in settings.readings)
                print(
                    f"{table.name} seed {seed} {method}: {run.seconds:.1f} s, {run.configurations} configurations, "
                    f"{run.completed} completed, regret at {' / '.join(_key(x) for x in settings.readings)}: {readings}",
                    flush=True,
                )
        y = table.sign * table.final_values
        y = y[np.isfinite(y)]
        results[table.name] = {
            "table": table.name,
            "budget_trainings": settings.trainings,
            "budget_epochs": settings.epochs(table),
            "metric": table.metric,
            "mode": table.mode,
            "epochs": table.epochs,
            "first_rung": _rung(table.epochs),
            "best": round(float(table.sign * y.max()), 10) if y.size else None,
            "worst": round(float(table.sign * y.min()), 10) if y.size else None,
            "readings": [_key(x) for x in settings.readings],
            "grid": settings.grid(),
            "policies": {m: summarise_budget_seeds(settings, rs) for m, rs in runs.items()},
        }
    return {
        "suite": name,
        "budget_trainings": settings.trainings,
        "seeds": int(settings.seeds),
        "first_seed": int(settings.first_seed),
        "workers": 1,
        "syne_tune": SYNE_TUNE_VERSION,
        "time": "epochs",
        "seconds": round(time.perf_counter() - started, 3),
        "regret_definition": REGRET_DEFINITION,
        "readings": [_key(x) for x in settings.readings],
        "grid": settings.grid(),
        "tables": results,
    }


def report_budget_runs(document: dict) -> str:
    """Per table, each method's mean normalised regret at the readings (what ``--budget`` prints)."""
    seeds = _span(list(range(document["first_seed"], document["first_seed"] + document["seeds"])))
    lines = []
    for name, result in document["tables"].items():
        lines.append(
            f"\n{name} (mean normalised regret at {' / '.join(result['readings'])} full trainings, seeds {seeds})"
        )
        for method, r in result["policies"].items():
            regret = " / ".join(f"{r['regret'][k]:.4f}" for k in result["readings"])
            lines.append(
                f"  {method:13s} {regret}   {r['configurations_mean']:.0f} configurations, "
                f"{r['completed_mean']:.1f} completed, {r['seconds_mean']:.1f} s/seed"
            )
    return "\n".join(lines)


# ---------------------------------------------------------------- the command


def qhpo_budgets(path: Path) -> dict[str, dict[int, int]]:
    """Epochs qhpo spent per table and seed, from a ``qhpo bench --json`` file (one table or a suite)."""
    try:
        document = json.loads(path.read_text(encoding="utf-8"))
        results = document["tables"] if "tables" in document else {document["table"]: document}
        budgets = {}
        for name, result in results.items():
            policy = result["policies"]["qhpo"]
            per = policy["per_seed"]["cost_fraction"]
            first = int(result["first_seed"])
            budgets[name] = {first + k: int(round(c * result["trials"] * result["epochs"])) for k, c in enumerate(per)}
        return budgets
    except (OSError, ValueError, KeyError, TypeError) as error:
        raise SystemExit(
            f"--qhpo-json: {path} is not the JSON of 'qhpo bench --policies qhpo --json' ({error})"
        ) from None


def tables_from(args) -> list[CurveTable]:
    try:
        if args.suite == "builtin":
            paths = builtin_table_paths()
        elif args.suite:
            paths = suite_tables(args.suite)
        else:
            paths = [resolve_curve_table(args.curves)]
        if not paths:
            raise SystemExit(f"--suite: {args.suite} holds no curve table (*.csv)")
        return [read_curve_table(p) for p in paths]
    except Exception as error:  # a missing or malformed table: one sentence
        if isinstance(error, SystemExit):
            raise
        raise SystemExit(str(error)) from None


def collect(paths: list[Path]) -> dict:
    """Per table, method and seed, the values of several ``--json`` files (later files win)."""
    seeds: dict = {}
    for path in paths:
        document = json.loads(path.read_text(encoding="utf-8"))
        first = int(document["first_seed"])
        for name, result in document["tables"].items():
            for method, r in result["policies"].items():
                per = r["per_seed"]
                for k in range(len(per["seconds"])):
                    record = {"seconds": per["seconds"][k], "eq": per["equal_compute_regret"][k]}
                    record.update(trajectory=per["trajectory"][k], budget=per["budget"][k], trials=document["trials"])
                    record["budget_share"] = per["epochs"][k] / per["budget"][k] if per["budget"][k] else 1.0
                    if "cost_fraction" in per:
                        record.update(cost=per["cost_fraction"][k], regret=per["regret"][k])
                    entry = seeds.setdefault(name, {}).setdefault(method, {}).setdefault(first + k, {})
                    entry.update(record)
    return seeds


def _regret_at_half(table_name: str, seed: int, record: dict) -> float | None:
    """Regret after half the seed's budget, from its trajectory (a built-in table's rows give the
    regret before any completion); ``None`` for a table that is not built in."""
    try:
        table = read_curve_table(resolve_curve_table(table_name))
    except Exception:
        return None
    drawn = table.take(draw_order(table.n_trials, record["trials"], seed))
    steps = [regret for spent, regret in record["trajectory"] if spent <= record["budget"] / 2]
    return steps[-1] if steps else regret_within(drawn, [], 0)


def _fmt(x: float) -> str:
    return "0" if x == 0 else f"{x:.2g}" if abs(x) < 0.01 else f"{x:.3g}"


def _span(seeds: list[int]) -> str:
    return f"{seeds[0]}-{seeds[-1]}" if seeds == list(range(seeds[0], seeds[-1] + 1)) else ",".join(map(str, seeds))


def collect_budget(documents: list[dict]) -> tuple[dict, list[str], float]:
    """Per (source, method), table and seed, each reading's regret (and the seconds of a Syne Tune
    method) from ``peers.py --budget`` and ``qhpo bench --budget`` files (later files win)."""
    data: dict = {}
    readings: list[str] = []
    trainings = set()
    for document in documents:
        source = "Syne Tune" if "syne_tune" in document else "qhpo bench"
        trainings.add(float(document["budget_trainings"]))
        readings += [k for k in document["readings"] if k not in readings]
        results = document["tables"] if "tables" in document else {document["table"]: document}
        for name, result in results.items():
            first = int(result.get("first_seed", document.get("first_seed", 0)))
            for method, r in result["policies"].items():
                seeds = data.setdefault((source, method), {}).setdefault(name, {})
                for key, values in r["per_seed"].items():
                    for k, value in enumerate(values):
                        seeds.setdefault(first + k, {})[key] = value
                for k, seconds in enumerate(r.get("seconds", [])):
                    seeds[first + k]["seconds"] = seconds
    if len(trainings) > 1:
        raise ValueError(f"the budget files have different budgets: {sorted(trainings)} full trainings")
    return data, readings, trainings.pop()


def seconds_table(title: str, rows: dict[str, dict], tables: list[str]) -> list[str]:
    """Markdown lines: ``title``, then per row label the mean ``seconds`` of its runs on each table."""
    lines = ["", title, "", "| method | " + " | ".join(tables) + " |", "|---" * (len(tables) + 1) + "|"]
    for label, runs in rows.items():
        cells = [f"{np.mean([r['seconds'] for r in runs[t].values()]):.1f}" if t in runs else "–" for t in tables]
        lines.append(f"| {label} | " + " | ".join(cells) + " |")
    return lines


def _label(source: str, method: str, sources: dict) -> str:
    """A method's name, with its source where the other source has a method of the same name."""
    return method if len(sources[method]) == 1 else f"{method} ({'Optuna' if source == 'qhpo bench' else source})"


def _seed_means(seeds: dict, readings: list[str], chosen: list[int]) -> list[float]:
    return [float(np.mean([seeds[s][k] for s in chosen])) for k in readings]


def _cell(values: list[float]) -> str:
    return " / ".join(f"{v:.4f}" for v in values)


MEAN = "mean over tables"


@dataclass(frozen=True)
class BudgetCell:
    """One method on one table (or the mean over tables): its mean regret at each reading, qhpo's
    on the same seeds, and whether those are fewer seeds than qhpo's."""

    theirs: list
    ours: list
    seeds: list
    partial: bool


def budget_cells(data: dict, readings: list[str]) -> dict:
    """Per (source, method), a :class:`BudgetCell` per table and, where it ran on every table, over them."""
    ours = data[("qhpo bench", "qhpo")]
    cells: dict = {}
    for key, runs in data.items():
        row = {}
        for t in sorted(ours):
            if t in runs:
                seeds = sorted(runs[t])
                theirs, mine = _seed_means(runs[t], readings, seeds), _seed_means(ours[t], readings, seeds)
                row[t] = BudgetCell(theirs, mine, seeds, seeds != sorted(ours[t]))
        if len(row) == len(ours):
            theirs, mine = (np.mean([getattr(c, a) for c in row.values()], axis=0).tolist() for a in ("theirs", "ours"))
            row[MEAN] = BudgetCell(theirs, mine, [], any(c.partial for c in row.values()))
        cells[key] = row
    return cells


def report_budget(documents: list[dict]) -> str:
    """Markdown tables of budget-mode results beside ``qhpo bench --budget``'s, and where qhpo is not lowest."""
    data, readings, trainings = collect_budget(documents)
    if ("qhpo bench", "qhpo") not in data:
        raise ValueError("the budget report needs the JSON of 'qhpo bench --budget' with the rule qhpo")
    tables = sorted(data[("qhpo bench", "qhpo")])
    keys = sorted(data, key=lambda k: (k[0] == "Syne Tune", METHODS.index(k[1]) if k[0] == "Syne Tune" else 0))
    sources: dict = {}
    for source, method in keys:
        sources.setdefault(method, set()).add(source)
    cells = budget_cells(data, readings)
    lines = [
        f"**Budget mode, {trainings:g} full trainings** (mean normalised regret at {' / '.join(readings)} full "
        "trainings; [seeds; qhpo on them] where not all)",
        "",
        "| method | " + " | ".join([*tables, MEAN]) + " |",
        "|---" * (len(tables) + 2) + "|",
    ]
    for key in keys:
        row = []
        for t in [*tables, MEAN]:
            c = cells[key].get(t)
            text = "–" if c is None else f"**{_cell(c.theirs)}**" if t == MEAN else _cell(c.theirs)
            if c is not None and c.partial:
                text += f" [{_span(c.seeds) + '; ' if c.seeds else ''}qhpo {_cell(c.ours)}]"
            row.append(text)
        lines.append(f"| {_label(*key, sources)} | " + " | ".join(row) + " |")
    timed = [k for k in keys if k[0] == "Syne Tune"]
    if timed:
        rows = {_label(*key, sources): data[key] for key in timed}
        lines += seconds_table("**Seconds per seed** (mean, Syne Tune methods)", rows, tables)

    def tally(rivals) -> str:
        counts = [
            sum(all(c.theirs[k] >= c.ours[k] - 1e-12 for key in rivals if (c := cells[key].get(t))) for t in tables)
            for k in range(len(readings))
        ]
        return f"{' / '.join(map(str, counts))} of {len(tables)} tables"

    lines += [
        "",
        f"qhpo's mean at most every Syne Tune method's on {tally(timed)}, and every rule's and method's on "
        f"{tally(keys)} (at {' / '.join(readings)} full trainings).",
    ]
    lines += ["", "Below qhpo's mean normalised regret (on the same seeds; qhpo's on them in brackets where fewer):"]
    for t in [MEAN, *tables]:
        parts = []
        for k, reading in enumerate(readings):
            lower = sorted(
                (c.theirs[k], _label(*key, sources), c)
                for key, row in cells.items()
                if key != ("qhpo bench", "qhpo") and (c := row.get(t)) is not None and c.theirs[k] < c.ours[k] - 1e-12
            )
            if lower:
                items = [
                    f"{label} {v:.3g}" + (f" (qhpo {c.ours[k]:.3g})" if c.partial else "") for v, label, c in lower
                ]
                qhpo = cells[("qhpo bench", "qhpo")][t].theirs[k]
                parts.append(f"at {reading}: " + ", ".join(items) + f" < qhpo {qhpo:.3g}")
        lines.append(f"- {t}: " + ("; ".join(parts) if parts else "none"))
    return "\n".join(lines)


def report(paths: list[Path]) -> str:
    """Markdown tables of the results in ``paths``: same trials and equal compute, and budget mode
    (``peers.py --budget`` beside ``qhpo bench --budget``)."""
    documents = [json.loads(path.read_text(encoding="utf-8")) for path in paths]
    budget = [d for d in documents if "budget_trainings" in d]
    others = [path for path, d in zip(paths, documents, strict=True) if "budget_trainings" not in d]
    parts = [report_equal_compute(others)] if others else []
    return "\n\n".join(parts + ([report_budget(budget)] if budget else []))


def report_equal_compute(paths: list[Path]) -> str:
    """Markdown tables of the same-trials and equal-compute results in ``paths``, and the tally."""
    data = collect(paths)
    tables = sorted(data)
    methods = ["qhpo", *[m for m in METHODS if any(m in data[t] for t in tables)]]
    lines = ["**Same trials** (cost = share of the epochs of full training / mean regret, metric units)", ""]
    lines += ["| method | " + " | ".join(tables) + " |", "|---" * (len(tables) + 1) + "|"]
    for method in methods:
        cells = []
        for t in tables:
            runs = {s: r for s, r in data[t].get(method, {}).items() if "cost" in r}
            if not runs:
                cells.append("–")
                continue
            cost = np.mean([r["cost"] for r in runs.values()])
            cells.append(f"{cost:.1%} / {_fmt(np.mean([r['regret'] for r in runs.values()]))}")
        lines.append(f"| {method} | " + " | ".join(cells) + " |")
    lines += ["", "**Equal compute** (mean regret with qhpo's epochs per seed; [seeds] where not all)", ""]
    lines += ["| method | " + " | ".join(tables) + " |", "|---" * (len(tables) + 1) + "|"]
    below = {t: [] for t in tables}
    for method in methods:
        cells = []
        for t in tables:
            runs = data[t].get(method, {})
            if not runs:
                cells.append("–")
                continue
            seeds = sorted(runs)
            ours = np.mean([data[t]["qhpo"][s]["eq"] for s in seeds])
            theirs = np.mean([runs[s]["eq"] for s in seeds])
            cell = _fmt(theirs)
            if seeds != sorted(data[t]["qhpo"]):
                cell += f" [{_span(seeds)}; qhpo {_fmt(ours)}]"
            cells.append(cell)
            if method != "qhpo" and ours > theirs + 1e-12:
                below[t].append(f"{method} {_fmt(theirs)} < qhpo {_fmt(ours)} (seeds {_span(seeds)})")
        lines.append(f"| {method} | " + " | ".join(cells) + " |")
    lines += ["", "**Half the budget** (mean regret after `B_s / 2` epochs; [seeds] where not all)", ""]
    lines += ["| method | " + " | ".join(tables) + " |", "|---" * (len(tables) + 1) + "|"]
    for method in methods:
        cells = []
        for t in tables:
            runs = data[t].get(method, {})
            if not runs:
                cells.append("–")
                continue
            seeds = sorted(runs)
            half = [_regret_at_half(t, s, runs[s]) for s in seeds]
            cell = "–" if None in half else _fmt(np.mean(half))
            cells.append(cell + ("" if seeds == sorted(data[t]["qhpo"]) else f" [{_span(seeds)}]"))
        lines.append(f"| {method} | " + " | ".join(cells) + " |")
    rows = {method: {t: data[t][method] for t in tables if method in data[t]} for method in methods}
    lines += seconds_table("**Seconds per seed** (mean)", rows, tables)
    met = [t for t in tables if not below[t]]
    lines += ["", f"qhpo's equal-compute mean regret at most every peer's on {len(met)} of {len(tables)} tables."]
    lines += [f"- {t}: " + "; ".join(below[t]) for t in tables if below[t]]
    return "\n".join(lines)


def main(argv=None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    if argv is None:
        argv = sys.argv[1:]
    if argv and argv[0] == "--report":  # python benchmarks/peers.py --report A.json [B.json ...]
        try:
            print(report([Path(p) for p in argv[1:]]))
        except (OSError, ValueError, KeyError, TypeError) as error:
            parser.exit(2, f"--report: the files are not peers.py or qhpo bench --budget --json results ({error})\n")
        return
    where = parser.add_mutually_exclusive_group(required=True)
    where.add_argument("--curves", help="a curve table (path or built-in name)")
    where.add_argument("--suite", help="a folder of curve tables, or 'builtin'")
    parser.add_argument("--methods", default=",".join(CHEAP_METHODS), help=f"comma-separated, of {','.join(METHODS)}")
    parser.add_argument("--seeds", type=int, default=10)
    parser.add_argument("--first-seed", type=int, default=0)
    parser.add_argument("--trials", type=int, help="configurations per seed (default 100; not with --budget)")
    parser.add_argument("--qhpo-json", type=Path, help="qhpo bench --json file giving qhpo's epochs per seed")
    parser.add_argument("--predictor", default="svr", help="predictor of qhpo's default rule when replayed here")
    parser.add_argument("--mode", choices=("both", "equal"), default="both")
    parser.add_argument("--json", type=Path, help="write the results here")
    parser.add_argument(
        "--budget", type=float, help="budget mode: K full trainings' epochs per seed, as qhpo bench --budget K"
    )
    args = parser.parse_args(argv)
    methods = [m.strip() for m in args.methods.split(",") if m.strip()]
    unknown = [m for m in methods if m not in METHODS]
    if unknown or not methods:
        parser.exit(2, f"--methods: unknown {', '.join(unknown) or '(none)'}; choose from {', '.join(METHODS)}\n")
    if args.budget is not None and (args.trials is not None or args.qhpo_json or args.mode != "both"):
        parser.exit(
            2, "--budget excludes --trials, --qhpo-json and --mode: it draws as many rows as the budget reaches\n"
        )
    args.trials = 100 if args.trials is None else args.trials
    if args.seeds < 1 or args.first_seed < 0 or args.trials < 2:
        parser.exit(2, "--seeds must be at least 1, --first-seed at least 0 and --trials at least 2\n")
    try:
        settings = (
            None
            if args.budget is None
            else BudgetSettings(args.budget, (), seeds=args.seeds, first_seed=args.first_seed)
        )
        syne_tune()
        tables = tables_from(args)
        budgets = qhpo_budgets(args.qhpo_json) if args.qhpo_json else {}
    except ValueError as error:
        parser.exit(2, f"--budget: {error}\n")
    except SystemExit as error:
        parser.exit(2, f"{error}\n")
    if settings is not None:
        document = run_budget_mode(tables, methods, settings, args.suite or args.curves)
        print(report_budget_runs(document))
        if args.json:
            args.json.write_text(json.dumps(document, indent=1) + "\n", encoding="utf-8")
        return
    same = args.mode == "both"
    seeds = list(range(args.first_seed, args.first_seed + args.seeds))
    document = {
        "suite": args.suite or args.curves,
        "trials": args.trials,
        "seeds": args.seeds,
        "first_seed": args.first_seed,
        "workers": 1,
        "syne_tune": SYNE_TUNE_VERSION,
        "time": "epochs",
        "budget": "qhpo-json" if args.qhpo_json else f"qhpo replayed here ({args.predictor})",
        "tables": {},
    }
    started = time.perf_counter()
    for table in tables:
        spread = table_spread(table)
        records: dict[str, list] = {name: [] for name in ["qhpo", *methods]}
        for seed in seeds:
            drawn = table.take(draw_order(table.n_trials, args.trials, seed))
            ours = run_qhpo(drawn, seed, args.predictor)
            budget = ours.spent
            if args.qhpo_json:
                if seed not in budgets.get(table.name, {}):
                    parser.exit(2, f"--qhpo-json: no qhpo epochs for {table.name} seed {seed}\n")
                budget = budgets[table.name][seed]
                if budget != ours.spent:
                    print(f"note: {table.name} seed {seed}: qhpo spent {ours.spent} here, {budget} in the JSON")
            records["qhpo"].append(seed_record(drawn, ours, budget, same))
            space = build_space(table, drawn)
            for method in methods:
                run = run_peer(method, drawn, space, seed, budget=None if same else budget)
                records[method].append(seed_record(drawn, run, budget, same))
                r = records[method][-1]
                print(
                    f"{table.name} seed {seed} {method}: {r['seconds']:.1f} s, "
                    + (f"cost {r['cost_fraction']:.3f} regret {r['regret']:.4g}, " if same else "")
                    + f"equal-compute regret {r['regret_at'][-1]:.4g} (qhpo {records['qhpo'][-1]['regret_at'][-1]:.4g})",
                    flush=True,
                )
        document["tables"][table.name] = {
            "table": table.name,
            "metric": table.metric,
            "mode": table.mode,
            "epochs": table.epochs,
            "first_rung": _rung(table.epochs),
            "spread": round(spread, 10),
            "policies": {name: summarise(rs, spread, same, True) for name, rs in records.items()},
        }
    document["seconds"] = round(time.perf_counter() - started, 3)
    for name, result in document["tables"].items():
        print(f"\n{name} (mean over seeds {seeds[0]}-{seeds[-1]})")
        for method, r in result["policies"].items():
            line = f"  {method:13s}"
            if same:
                line += f" cost {r['cost_fraction_mean']:6.1%} regret {r['regret_mean']:<10.4g}"
            line += f" equal compute: regret {r['equal_compute']['regret_mean']:<10.4g} {r['seconds_mean']:.2f} s/seed"
            print(line)
    if args.json:
        args.json.write_text(json.dumps(document, indent=1) + "\n", encoding="utf-8")


if __name__ == "__main__":
    main()
