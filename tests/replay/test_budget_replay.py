"""Budget mode of the replay (``qhpo bench --budget K``): what it spends, what it starts, how regret falls."""

from __future__ import annotations

import dataclasses
import json

import numpy as np
import pytest

from qhpo.cli import main
from qhpo.curves import builtin_table_paths, read_curve_table
from qhpo.policies import make_policy
from qhpo.replay import (
    BudgetSettings,
    OptunaPrunerAgent,
    PolicyAgent,
    budget_order,
    draw_order,
    first_rung,
    optuna_pruner,
    run_budget,
    simulate,
)


def builtin(name: str):
    return read_curve_table(next(p for p in builtin_table_paths() if p.stem == name))


class SpendRecorder:
    """Wraps an agent and records the epochs spent in all when each trial starts or resumes."""

    def __init__(self, agent):
        self.agent, self.spent, self.starts, self.resumes = agent, 0, [], []

    def start(self, index):
        self.starts.append(self.spent)
        self.agent.start(index)

    def report(self, index, epoch, value):
        self.spent += 1
        return self.agent.report(index, epoch, value)

    def finish(self, index, status):
        self.agent.finish(index, status)

    def promote(self, limit, more_trials=False):
        return self.agent.promote(limit)

    def resume(self, index):
        self.resumes.append(self.spent)
        self.agent.resume(index)


def _agent(rule, table, seed):
    if rule in ("sha", "median"):
        return OptunaPrunerAgent(optuna_pruner(rule, table.epochs), table.mode, table.epochs, seed=seed)
    policy = make_policy(rule, max_epochs=table.epochs, mode=table.mode, predictor="svr", random_state=seed)
    return PolicyAgent(policy, table.curves, table.param_rows())


@pytest.mark.parametrize("rule", ["none", "sha", "median", "qhpo"])
@pytest.mark.parametrize("workers", [1, 3])
def test_a_budget_replay_spends_at_most_the_budget_and_starts_only_what_fits_its_first_rung(rule, workers):
    table = builtin("baker_metaqnn_svhn").truncate(12)  # 12 epochs: first rungs of 1 (sha, qhpo), 1 (median), 12
    budget = int(4.5 * table.epochs)
    drawn = table.take(budget_order(table.n_trials, budget, seed=3))
    agent = SpendRecorder(_agent(rule, drawn, 3))
    rung = first_rung(rule, table.epochs)
    out = simulate(drawn.curves, agent, workers=workers, budget=budget, first_rung=rung)
    assert out.cost == agent.spent <= budget  # the epoch that reaches the budget ends the replay
    assert out.cost > budget - rung  # and it ends only once what is left cannot hold a first rung
    assert all(spent + rung <= budget for spent in agent.starts)
    assert all(spent < budget for spent in agent.resumes)
    if rule == "none":  # nothing is stopped: only the trials whose E epochs fit start, and all complete
        assert len(agent.starts) == 4 and out.complete.sum() == 4 and out.cost == 4 * table.epochs
    assert (out.completed_at[out.complete] <= budget).all() and (out.completed_at[~out.complete] == -1).all()


def test_without_a_budget_the_replay_is_unchanged():
    table = builtin("baker_metaqnn_svhn")
    drawn = table.take(draw_order(table.n_trials, 40, seed=1))
    plain = simulate(drawn.curves, _agent("sha", drawn, 1))
    large = simulate(drawn.curves, _agent("sha", drawn, 1), budget=10**6, first_rung=1)
    assert (plain.epochs_trained == large.epochs_trained).all() and (plain.complete == large.complete).all()


def test_the_budget_order_begins_with_the_benchmarks_draw_and_then_repeats_the_rows():
    order = budget_order(7, 30, seed=5)
    assert (order[:5] == draw_order(7, 5, seed=5)).all()
    for k in range(4):  # each block of 7 is a permutation of all rows
        assert sorted(order[7 * k : 7 * k + 7].tolist()) == list(range(7))


@pytest.mark.parametrize("name", ["baker_metaqnn_svhn", "taskset_imdb_1"])  # max and min tables
def test_normalised_regret_lies_in_0_1_and_never_rises(name):
    table = builtin(name).truncate(10)
    settings = BudgetSettings(12, policies=("none", "sha", "qhpo"), predictor="svr", seeds=3)
    result = run_budget([table], settings)
    assert result["readings"] == ["5", "10", "12"]
    for rule in settings.policies:
        policy = result["policies"][rule]
        for x in result["readings"]:
            seeds = np.asarray(policy["per_seed"][x])
            assert ((seeds >= 0) & (seeds <= 1)).all()
            assert policy["regret"][x] == pytest.approx(seeds.mean())
        curve = np.asarray(policy["curve"])
        assert curve[0] == 1.0  # nothing completed before an epoch is spent
        assert ((curve >= 0) & (curve <= 1)).all() and (np.diff(curve) <= 1e-12).all()
        assert policy["epochs_spent_mean"] <= 12 * table.epochs
        assert policy["configurations_mean"] >= policy["completed_mean"] >= 1


def test_one_replay_read_at_a_smaller_budget_equals_a_replay_under_that_budget():
    """Why one replay serves every reading of a rule that does not read its budget (the budget
    ends a replay and changes no decision before); qhpo, which reads it, is replayed at each."""
    table = builtin("baker_metaqnn_svhn")
    common = dict(policies=("median", "qhpo"), predictor="svr", seeds=2, first_seed=7)
    long = run_budget([table], BudgetSettings(10, **common))
    short = run_budget([table], BudgetSettings(5, **common))
    for rule in common["policies"]:
        assert long["policies"][rule]["per_seed"]["5"] == short["policies"][rule]["per_seed"]["5"]


def test_a_rule_that_reads_its_budget_is_a_search_of_its_own_at_each_reading():
    table = builtin("baker_metaqnn_svhn")
    result = run_budget([table], BudgetSettings(20, policies=("qhpo",), predictor="svr", seeds=1, first_seed=2))
    qhpo = result["policies"]["qhpo"]
    at_10 = qhpo["curve"][result["grid"].index(10.0)]  # the 20-training search, read after 10
    # the search given 10 finishes its best paused trial at its end, and found a better one by then
    assert qhpo["per_seed"]["10"] == [qhpo["regret"]["10"]] and qhpo["regret"]["10"] < at_10
    assert qhpo["regret"]["20"] == qhpo["curve"][-1]  # the largest budget is the curve's own replay
    off = BudgetSettings(20, policies=("qhpo",), predictor="svr", seeds=1, first_seed=2)
    off = run_budget([table], dataclasses.replace(off, options={"qhpo": {"endgame_slack": "off"}}))
    assert off["policies"]["qhpo"]["regret"]["10"] == at_10  # without the end: one replay read at 10


def test_bench_budget_cli_writes_regret_per_seed_and_a_figure(tmp_path, capsys):
    out_json, out_png = tmp_path / "b.json", tmp_path / "b.png"
    args = ["bench", "--curves", "baker_metaqnn_svhn", "--budget", "6", "--seeds", "2", "--jobs", "1"]
    args += ["--policies", "none,median,qhpo", "--predictor", "svr", "--json", str(out_json), "--plot", str(out_png)]
    assert main(args) == 0
    printed = capsys.readouterr().out
    assert "budget 6 full trainings (120 epochs)" in printed and "regret @5" in printed
    result = json.loads(out_json.read_text())
    assert result["budget_epochs"] == 120 and result["readings"] == ["5", "6"]
    assert len(result["policies"]["qhpo"]["per_seed"]["5"]) == 2
    assert result["policies"]["none"]["first_rung"] == 20 and result["policies"]["none"]["completed_mean"] == 6
    # qhpo's first rung under a budget is E/40 (at least 1), not E/20, its quorum is the budget's, and the JSON says so
    assert result["policies"]["qhpo"]["first_rung"] == 1
    assert result["options"] == {"qhpo": {"min_resource": 1, "quorum": 2, "quorum_span": 0.3, "agreement": "off"}}
    assert result["policies"]["qhpo"]["reads_budget"] and not result["policies"]["median"]["reads_budget"]
    assert "qhpo reads its budget (finishing the best paused trial at the end)" in printed
    assert out_png.stat().st_size > 10_000


def test_budget_defaults_give_way_to_the_users_options():
    table = builtin("cifar10_cnn")
    Q = {"quorum": 2, "quorum_span": 0.3, "agreement": "off"}  # the budget's quorum, without the rung agreement
    assert BudgetSettings(5).rule_options("qhpo", table) == {"min_resource": 5, **Q}
    assert BudgetSettings(5).rule_options("qhpo-stop", table) == {"min_resource": 5}
    assert BudgetSettings(5, rule_defaults=False).rule_options("qhpo", table) == {}
    assert BudgetSettings(5, options={"qhpo": {"min_resource": 4, "quorum": 4}}).rule_options("qhpo", table) == {
        "min_resource": 4,
        "quorum": 4,
        "quorum_span": 0.3,
        "agreement": "off",
    }
    assert BudgetSettings(5).rule_options("sha", table) == {}


def test_bench_budget_suite_averages_over_tables(tmp_path, capsys, curves_dir):
    import shutil

    folder = tmp_path / "suite"
    folder.mkdir()
    for stem in ("baker_metaqnn_svhn", "taskset_imdb_2"):
        for suffix in (".csv", ".json"):
            shutil.copy(curves_dir / f"{stem}{suffix}", folder / f"{stem}{suffix}")
    out_json = tmp_path / "s.json"
    args = ["bench", "--suite", str(folder), "--budget", "5", "--seeds", "1", "--jobs", "1"]
    args += ["--policies", "sha,qhpo", "--predictor", "svr", "--epochs-fraction", "0.5", "--json", str(out_json)]
    assert main(args) == 0
    result = json.loads(out_json.read_text())
    tables = result["tables"]
    assert sorted(tables) == ["baker_metaqnn_svhn", "taskset_imdb_2"] and tables["taskset_imdb_2"]["epochs"] == 26
    for rule in ("sha", "qhpo"):
        mean = np.mean([t["policies"][rule]["regret"]["5"] for t in tables.values()])
        assert result["summary"]["rules"][rule]["regret"]["5"] == pytest.approx(mean)
    assert result["summary"]["read_budget"] == ["qhpo"]
    printed = capsys.readouterr().out
    assert "mean over tables" in printed and "reads its budget" not in printed  # one reading: nothing replayed apart


@pytest.mark.parametrize(
    "extra, message",
    [
        (["--budget", "0"], "--budget must be a positive number of full trainings"),
        (["--budget", "5x"], "--budget must be a positive number of full trainings"),
        (["--budget", "nan"], "--budget must be a positive number of full trainings"),
        (["--budget", "5", "--trials", "50"], "--trials does not apply in budget mode"),
        (["--budget", "5", "--policies", "qhpo,swift-hyperband"], "swift-hyperband chooses its own configurations"),
        (["--budget", "5", "--backend", "ray"], "--backend ray does not apply in budget mode"),
    ],
)
def test_bench_budget_user_errors_give_one_sentence_and_status_2(extra, message, capsys):
    assert main(["bench", "--curves", "baker_metaqnn_svhn", "--predictor", "svr", *extra]) == 2
    err = capsys.readouterr().err.strip()
    assert err.startswith("qhpo: error: ") and len(err.splitlines()) == 1 and message in err
