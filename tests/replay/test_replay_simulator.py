"""The replay simulator driven by a scripted agent: every call the agent gets, in order, and
the outcome it leads to (epochs, completions, clock, pauses, resumptions, budget); the scores
of a replayed seed and their statistics over seeds; the agents that feed a qhpo policy or an
Optuna pruner."""

from __future__ import annotations

import numpy as np
import optuna
import pytest

from qhpo.curves import CurveTable
from qhpo.policies import Decision, Resumption, StoppingPolicy, TrialStatus, Verdict
from qhpo.replay import OptunaPrunerAgent, PolicyAgent, simulate
from qhpo.replay._rule_replay import SeedResult
from qhpo.replay._scores import _statistics, score, table_spread


class Script:
    """An agent that answers from a script of ``(trial, epoch) -> answer`` (continue
    otherwise), resumes the trials in ``resume`` in that order, and logs every call."""

    def __init__(self, answers=None, resume=()):
        self.answers, self.resume_queue, self.log = dict(answers or {}), list(resume), []

    def start(self, index):
        self.log.append(("start", index))

    def report(self, index, epoch, value):
        self.log.append(("report", index, epoch, value))
        return self.answers.get((index, epoch), True)

    def finish(self, index, status):
        self.log.append(("finish", index, status))

    def promote(self, limit, more_trials=False):
        self.log.append(("promote", limit))
        chosen, self.resume_queue = self.resume_queue, []
        return chosen

    def resume(self, index):
        self.log.append(("resume", index))


def curves(n: int, epochs: int) -> np.ndarray:
    """Row ``i``, epoch ``e``: ``0.1 (i + 1) + 0.01 e`` (every value tells its trial and epoch)."""
    return np.round(0.1 * np.arange(1, n + 1)[:, None] + 0.01 * np.arange(1, epochs + 1)[None, :], 3)


def reports(log, index):
    return [(entry[2], entry[3]) for entry in log if entry[0] == "report" and entry[1] == index]


def test_one_worker_pauses_resumes_stops_and_completes_in_this_order():
    script = Script({(0, 1): Decision.PAUSE, (1, 2): False, (2, 3): Decision.STOP}, resume=[0])
    out = simulate(curves(3, 3), script)
    assert script.log == [
        ("start", 0),
        ("report", 0, 1, 0.11),
        ("finish", 0, TrialStatus.PAUSED),
        ("promote", 1),  # the free worker asks first, and resumes trial 0 from its epoch 1
        ("resume", 0),
        ("report", 0, 2, 0.12),
        ("report", 0, 3, 0.13),
        ("finish", 0, TrialStatus.COMPLETE),
        ("start", 1),
        ("report", 1, 1, 0.21),
        ("report", 1, 2, 0.22),
        ("finish", 1, TrialStatus.STOPPED),
        ("start", 2),
        ("report", 2, 1, 0.31),
        ("report", 2, 2, 0.32),
        ("report", 2, 3, 0.33),  # a stop after the last epoch: the trial has completed
        ("finish", 2, TrialStatus.COMPLETE),
    ]
    assert out.epochs_trained.tolist() == [3, 2, 3] and out.complete.tolist() == [True, False, True]
    assert out.pauses == ((0, 1),) and out.resumptions == ((0, 1),)
    assert out.completed_at.tolist() == [3, -1, 8] and out.cost == 8 and out.wallclock == 8.0


def test_two_workers_with_seconds_per_epoch_share_the_clock():
    script = Script()
    out = simulate(curves(3, 3), script, workers=2, seconds_per_epoch=np.array([2.0, 1.0, 1.0]))
    # trial 1 completes at t = 3 and its worker takes trial 2 (t = 4, 5, 6); trial 0 ends at t = 6
    assert [e for e in script.log if e[0] == "start"] == [("start", 0), ("start", 1), ("start", 2)]
    assert out.wallclock == 6.0 and out.complete.all() and out.cost == 9
    assert out.completed_at.tolist() == [8, 4, 9]  # epochs spent in all when each completed


def test_a_diverged_epoch_ends_the_trial_unseen_and_counts_as_trained():
    values = curves(2, 4)
    values[0, 1] = np.nan
    script = Script()
    out = simulate(values, script)
    assert reports(script.log, 0) == [(1, 0.11)]  # the NaN of epoch 2 is never reported
    assert ("finish", 0, TrialStatus.FAILED) in script.log
    assert out.epochs_trained.tolist() == [2, 4] and out.complete.tolist() == [False, True]
    assert out.completed_at.tolist() == [-1, 6]


def test_the_workers_that_are_free_bound_what_resumes():
    # two workers fall free together at t = 2 with two paused trials: the agent is asked once,
    # for at most two, and names three; the third (not even paused) is never resumed
    script = Script({(0, 2): Decision.PAUSE, (1, 2): Decision.PAUSE}, resume=[1, 0, 2])
    out = simulate(curves(3, 3), script, workers=2)
    assert [e for e in script.log if e[0] == "promote"] == [("promote", 2)]
    assert out.resumptions == ((1, 2), (0, 2)) and out.complete.tolist() == [True, True, True]


def test_an_agent_that_resumes_a_trial_that_is_not_paused_is_an_error():
    script = Script({(0, 1): Decision.PAUSE}, resume=[1])
    with pytest.raises(ValueError, match="the agent resumed trial 1, which is not paused"):
        simulate(curves(2, 2), script)


def test_a_new_trial_starts_only_when_its_first_rung_fits_beside_the_running_ones():
    # budget 4, first rung 2: trials 0 and 1 start (0 + 2 reserved + 2 <= 4); after trial 0
    # stops at t = 1, 2 spent + 1 still reserved by trial 1 + 2 > 4: trial 2 never starts
    script = Script({(0, 1): False})
    out = simulate(curves(3, 4), script, workers=2, budget=4, first_rung=2)
    assert ("start", 2) not in script.log
    assert out.epochs_trained.tolist() == [1, 3, 0] and out.cost == 4 and not out.complete.any()
    # the budget ends the replay the moment its last epoch ends: the running trial is cut there
    cut = simulate(curves(3, 4), Script(), workers=2, budget=5, first_rung=2)
    assert cut.epochs_trained.tolist() == [3, 2, 0] and cut.wallclock == 3.0 and cut.cost == 5


def test_without_a_budget_the_first_rung_reserves_nothing():
    script = Script({(0, 1): False})
    out = simulate(curves(3, 4), script, workers=2, first_rung=4)
    assert out.epochs_trained.tolist() == [1, 4, 4] and out.complete.tolist() == [False, True, True]


@pytest.mark.parametrize(
    ("arguments", "message"),
    [
        (dict(curves=np.zeros((0, 3))), "curves must be a non-empty 2-d array, got shape \\(0, 3\\)"),
        (dict(curves=np.zeros(3)), "curves must be a non-empty 2-d array, got shape \\(3,\\)"),
        (dict(workers=0), "workers must be at least 1, got 0"),
        (dict(budget=0), "budget must be at least 1 epoch, got 0"),
    ],
)
def test_bad_arguments_are_named(arguments, message):
    arguments = {"curves": curves(2, 2), **arguments}
    with pytest.raises(ValueError, match=message):
        simulate(arguments.pop("curves"), Script(), **arguments)


def _table(finals, mode="max"):
    """A two-epoch table whose final values are ``finals``."""
    finals = np.asarray(finals, dtype=float)
    rows = np.column_stack([np.full(len(finals), 0.5), finals])
    n = len(finals)
    return CurveTable("t", "accuracy", mode, np.arange(n), {"x": np.arange(n, dtype=float)}, rows)


def _result(complete, epochs, pauses=(), resumptions=(), wallclock=6.0, predictor_seconds=0.25):
    return SeedResult(
        np.asarray(epochs), np.asarray(complete, dtype=bool), wallclock, predictor_seconds, pauses, resumptions
    )


def test_a_replay_is_scored_on_the_best_trial_it_completed():
    table = _table([0.5, 0.9, np.nan, 0.7])
    result = _result([True, False, False, True], [2, 1, 1, 2], pauses=((3, 1),), resumptions=((3, 1),))
    scores = score(table, result)
    assert scores == {
        "cost_fraction": 0.75,
        "regret": pytest.approx(0.2),
        "top1_kept": 0.0,
        "wallclock": 6.0,
        "predictor_seconds": 0.25,
        "paused": 1.0,
        "resumed": 1.0,
        "winner_resumed": 1.0,  # trial 3, the best completed, had been paused
    }
    assert score(table, _result([False, True, False, True], [1, 2, 1, 2]))["top1_kept"] == 1.0
    # on a loss table lower is better: 0.1 is the best, 0.3 the best completed
    lossy = score(_table([0.5, 0.1, 0.3], "min"), _result([True, False, True], [2, 1, 2], pauses=((0, 1),)))
    assert lossy["regret"] == pytest.approx(0.2) and lossy["winner_resumed"] == 0.0


def test_without_a_completed_trial_the_regret_is_that_of_the_worst_and_ties_go_to_the_first():
    assert score(_table([0.5, 0.9]), _result([False, False], [1, 1]))["regret"] == pytest.approx(0.4)
    diverged = score(_table([np.nan, np.nan]), _result([False, True], [1, 2]))
    assert diverged["regret"] == 0.0 and diverged["top1_kept"] == 1.0
    # two completed trials tie for the best: the first is the winner, and it was not paused
    tie = score(_table([0.7, 0.7]), _result([True, True], [2, 2], pauses=((1, 1),)))
    assert tie["winner_resumed"] == 0.0 and tie["top1_kept"] == 1.0 and tie["regret"] == 0.0


def test_the_spread_is_best_minus_median_of_the_finite_finals():
    assert table_spread(_table([0.5, 0.9, np.nan, 0.7])) == pytest.approx(0.2)
    assert table_spread(_table([0.5, 0.1, 0.3, 0.2], "min")) == pytest.approx(0.15)
    assert table_spread(_table([np.nan])) == 0.0


def test_statistics_over_seeds():
    keys = ("cost_fraction", "regret", "top1_kept", "wallclock", "predictor_seconds", "paused", "resumed")
    rows = [
        (0.5, 0.1, 1.0, 10.0, 1.0, 2.0, 1.0),
        (0.7, 0.3, 0.0, 20.0, 3.0, 4.0, 3.0),
        (0.6, 0.8, 1.0, 30.0, 2.0, 0.0, 2.0),
    ]
    scores = [{**dict(zip(keys, row, strict=True)), "winner_resumed": float(i == 0)} for i, row in enumerate(rows)]
    stats = _statistics(scores, 0.5)
    assert stats == {
        "cost_fraction_mean": 0.6,
        "regret_mean": 0.4,
        "regret_median": 0.3,
        "regret_max": 0.8,
        "top1_kept_rate": 0.66666667,
        "wallclock_mean": 20.0,
        "predictor_seconds_mean": 2.0,
        "cost_fraction_sd": 0.1,
        "regret_sd": 0.36055513,
        "regret_normalised_mean": 0.8,
        "paused_mean": 2.0,
        "resumed_mean": 2.0,
        "winner_resumed_rate": 0.33333333,
    }
    one = _statistics(scores[:1], 0.0)
    assert one["regret_sd"] == 0.0 and one["cost_fraction_sd"] == 0.0 and one["regret_normalised_mean"] is None


class Recorder(StoppingPolicy):
    """A resuming policy that pauses trial 0 at epoch 2 (unranked at epoch 1), stops trial 1 at
    epoch 2, resumes every paused trial it is asked about, and records what it saw."""

    def __init__(self, epochs=None, resumes=True):
        super().__init__(max_epochs=4)
        self.epochs, self._resumes, self.seen, self.asked = epochs, resumes, [], []

    def decision_epochs(self):
        return self.epochs

    @property
    def resumes(self):
        return self._resumes

    def decide(self, trial, trials):
        self.seen.append((trial.key, trial.epochs, tuple((o.key, o.status, len(o.curve), o.unranked) for o in trials)))
        self.params = {o.key: o.params for o in trials}
        t = trial.epochs
        if (trial.key == 0 and t == 1) or (trial.key == 2 and t < 3):
            return Verdict(Decision.CONTINUE, t, "held", ranked=False)
        if t == 2 and trial.key in (0, 1):
            return Verdict(Decision.PAUSE if trial.key == 0 else Decision.STOP, t)
        return Verdict(Decision.CONTINUE, t)

    def promote(self, trials, *, limit=1):
        self.asked.append(limit)
        return [Resumption(o.key, o.epochs) for o in trials if o.status == TrialStatus.PAUSED] * 2


def test_the_policy_agent_shows_the_policy_every_trial_cut_at_its_epochs_and_keeps_what_it_said():
    policy = Recorder()
    values = curves(3, 4)
    agent = PolicyAgent(policy, values, [{"x": float(i)} for i in range(3)])
    out = simulate(values, agent)
    assert out.pauses == ((0, 2),) and out.resumptions == ((0, 2),)
    assert out.epochs_trained.tolist() == [4, 2, 4] and out.complete.tolist() == [True, False, True]
    # trial 0 at epoch 2: itself only, marked unranked at epoch 1; the last epoch is never asked
    assert policy.seen[1] == (0, 2, ((0, TrialStatus.RUNNING, 2, frozenset({1})),))
    assert all(epoch < 4 for _, epoch, _ in policy.seen)
    # trial 1 sees trial 0 resumed and complete
    assert policy.seen[3][2] == ((0, TrialStatus.COMPLETE, 4, frozenset({1})), (1, TrialStatus.RUNNING, 1, frozenset()))
    assert agent.stop_epoch == {0: 2, 1: 2} and [r.key for r in agent.resumptions] == [0]
    assert agent.unranked == {0: frozenset({1}), 2: frozenset({1, 2})} and policy.asked == [1]
    assert agent.status == {0: TrialStatus.COMPLETE, 1: TrialStatus.STOPPED, 2: TrialStatus.COMPLETE}
    assert policy.params == {0: {"x": 0.0}, 1: {"x": 1.0}, 2: {"x": 2.0}}
    # resumed, trial 0 is running again when it is judged at epoch 3
    assert policy.seen[2] == (0, 3, ((0, TrialStatus.RUNNING, 3, frozenset({1})),))
    agent.finish(2, TrialStatus.PAUSED)
    with pytest.raises(ValueError, match="not a paused trial"):  # the replay refuses a trial resumed twice
        agent.promote(3)
    assert policy.asked == [1, 3]


def test_the_policy_agent_asks_only_at_decision_epochs_and_a_policy_that_never_resumes_is_not_asked_to():
    policy = Recorder(epochs=(2, 3), resumes=False)
    values = curves(2, 4)
    agent = PolicyAgent(policy, values, [{}, {}])
    assert agent.policy is policy and agent.driver.policy is policy
    assert agent.driver.epochs.epochs == frozenset({2, 3})
    out = simulate(values, agent)
    assert [(key, epoch) for key, epoch, _ in policy.seen] == [(0, 2), (1, 2)]
    assert out.pauses == () and out.epochs_trained.tolist() == [2, 2]  # the PAUSE counts as STOP
    assert policy.asked == []


def test_the_optuna_agent_tells_the_study_how_each_trial_ended():
    values = curves(3, 3)
    values[2, 1] = np.nan
    agent = OptunaPrunerAgent(optuna.pruners.NopPruner(), "min", 3, seed=5)
    out = simulate(values, agent)
    assert agent.study.study_name == "qhpo-replay-5" and agent.study.direction.name == "MINIMIZE"
    states = [t.state.name for t in agent.study.trials]
    assert states == ["COMPLETE", "COMPLETE", "FAIL"] and out.epochs_trained.tolist() == [3, 3, 2]
    assert [t.value for t in agent.study.trials[:2]] == [0.13, 0.23]
    assert agent.study.trials[0].intermediate_values == {1: 0.11, 2: 0.12, 3: 0.13}
    assert agent.promote(2) == []
    with pytest.raises(ValueError, match="^an Optuna pruner never pauses a trial, so none resumes$"):
        agent.resume(0)


def test_the_optuna_agent_never_prunes_the_last_epoch_and_marks_pruned_trials():
    class PruneAfterOne(optuna.pruners.BasePruner):
        def prune(self, study, trial):
            return trial.last_step >= 1 and trial.number == 0 or trial.last_step >= 3

    agent = OptunaPrunerAgent(PruneAfterOne(), "max", 3, seed=0)
    out = simulate(curves(2, 3), agent)
    assert agent.study.direction.name == "MAXIMIZE"
    assert [t.state.name for t in agent.study.trials] == ["PRUNED", "COMPLETE"]
    assert out.epochs_trained.tolist() == [1, 3] and agent.last_value == {0: 0.11, 1: 0.23}


def test_two_seeds_with_a_sd_and_a_zero_spread_without_a_normalised_regret():
    keys = ("cost_fraction", "regret", "top1_kept", "wallclock", "predictor_seconds", "paused", "resumed")
    scores = [dict.fromkeys(keys, 0.0) | {"winner_resumed": 0.0, "regret": r} for r in (0.1, 0.3)]
    stats = _statistics(scores, 0.0)
    assert stats["regret_sd"] == pytest.approx(0.14142136) and stats["regret_normalised_mean"] is None
    assert score(_table([0.5, 0.9]), _result([False, False], [1, 1]))["winner_resumed"] == 0.0


def test_the_benchmark_document_of_one_table(curve_table_path):
    from qhpo.curves import read_curve_table
    from qhpo.replay import draw_order, run_benchmark
    from qhpo.replay._scores import SPREAD_DEFINITION

    table = read_curve_table(curve_table_path)
    rules = ("none", "median", "sha", "hyperband", "qhpo")
    doc = run_benchmark(
        table, policies=rules, trials=12, seeds=2, first_seed=3, sweep_seeds=1, options={"sha": {"min_resource": 2}}
    )
    assert set(doc) == {
        *("table", "trials", "seeds", "workers", "predictor", "metric", "mode", "epochs", "first_seed", "seconds"),
        *("spread", "spread_definition", "policies", "options", "sweeps", "example"),
    }
    assert (doc["table"], doc["trials"], doc["seeds"], doc["workers"], doc["first_seed"]) == (table.name, 12, 2, 1, 3)
    assert (doc["predictor"], doc["metric"], doc["mode"], doc["epochs"]) == (
        "svr",
        table.metric,
        table.mode,
        table.epochs,
    )
    assert doc["spread"] == round(table_spread(table), 10) and doc["spread_definition"] == SPREAD_DEFINITION
    assert isinstance(doc["seconds"], float) and doc["seconds"] >= 0 and round(doc["seconds"], 3) == doc["seconds"]
    assert doc["options"] == {"sha": {"min_resource": 2}}
    for rule in rules:
        per_seed = doc["policies"][rule]["per_seed"]
        assert set(per_seed) == {"cost_fraction", "regret"} and len(per_seed["regret"]) == 2
        assert np.mean(per_seed["regret"]) == pytest.approx(doc["policies"][rule]["regret_mean"], abs=1e-8)
        assert all(round(r, 8) == r for r in per_seed["regret"] + per_seed["cost_fraction"])
    assert doc["policies"]["none"]["per_seed"]["cost_fraction"] == [1.0, 1.0]
    assert doc["sweeps"]["seeds"] == 1
    for points in doc["sweeps"]["lines"].values():
        assert all(set(p) == {"parameter", "value", "cost_fraction_mean", "regret_mean"} for p in points)
        assert all(isinstance(p["parameter"], str) and not isinstance(p["value"], str) for p in points)
        assert all(p["cost_fraction_mean"] < 1.0 for p in points)  # each point is its own sweep run, none is "none"
    example = doc["example"]
    assert set(example) == {"seed", "rows", "epochs_trained", "complete", "pauses", "resumptions"}
    assert example["seed"] == 3 and example["rows"] == draw_order(table.n_trials, 12, 3).tolist()
    assert set(example["epochs_trained"]) == set(rules) and sum(example["epochs_trained"]["none"]) == 12 * table.epochs
    assert all(example["complete"]["none"]) and set(example["pauses"]) <= {"qhpo"}
    assert set(example["resumptions"]) <= {"qhpo"} and "none" not in example["pauses"]


def test_a_trial_past_its_first_rung_reserves_nothing_and_a_budget_below_it_starts_nothing():
    # first rung 1, budget 5: at t = 2 trial 0 stops and trial 1, past its first rung, reserves
    # nothing, so trial 2 starts (4 spent + 0 + 1 <= 5) and the budget ends with its first epoch
    script = Script({(0, 2): False})
    out = simulate(curves(3, 4), script, workers=2, budget=5, first_rung=1)
    assert out.epochs_trained.tolist() == [2, 2, 1] and ("start", 2) in script.log
    empty = Script()
    nothing = simulate(curves(2, 4), empty, budget=1, first_rung=2)
    assert empty.log == [] and nothing.cost == 0 and nothing.wallclock == 0.0


def test_the_first_rung_is_one_epoch_by_default_and_a_stopped_trial_reserves_nothing():
    assert simulate(curves(2, 4), Script(), budget=1).cost == 1
    # first rung 2, budget 5: trial 0 stops after one epoch; trial 1 alone reserves one more, so
    # trial 2 starts at t = 1 (2 spent + 1 + 2 <= 5)
    out = simulate(curves(3, 4), Script({(0, 1): False}), workers=2, budget=5, first_rung=2)
    assert out.epochs_trained.tolist() == [1, 2, 2]
