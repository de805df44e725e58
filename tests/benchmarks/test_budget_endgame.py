"""``benchmarks/budget_endgame.py``: qhpo finishing its best paused trial at the end of a budget."""

from __future__ import annotations

import numpy as np
import pytest

from qhpo._policy_options import budget_defaults
from qhpo.curves import read_curve_table
from qhpo.policies import TrialStatus, make_policy
from qhpo.replay import BudgetSettings, PolicyAgent, budget_order, first_rung, run_budget, simulate
from repo_scripts import load_script


@pytest.fixture(scope="module")
def endgame():
    return load_script("benchmarks/budget_endgame.py", "qhpo_budget_endgame")


def test_its_end_is_the_one_qhpo_bench_budget_measures_and_none_is_qhpo_without_it(endgame, curves_dir):
    table = read_curve_table(curves_dir / "baker_metaqnn_svhn.csv")  # the end changes seed 2 at 10 here
    measured = {}
    for slack, options in ((None, {"qhpo": {"endgame_slack": "off"}}), (0.25, {})):
        settings = BudgetSettings(10, policies=("qhpo",), predictor="svr", seeds=1, first_seed=2, options=options)
        bench = run_budget([table], settings)["policies"]["qhpo"]["per_seed"]
        for k in (5, 10):  # each budget its own replay on both sides
            ours = endgame.replay_seed(table, 2, k, slack, "quantile", "svr")
            np.testing.assert_allclose([ours], bench[str(k)], atol=1e-8)
            measured[slack, k] = ours
    assert measured[0.25, 10] < measured[None, 10]  # the end found a better finished trial


@pytest.mark.parametrize("pick", ["quantile", "oracle"])
def test_the_trials_it_finishes_complete_within_the_budget_and_it_counts_every_epoch(endgame, curves_dir, pick):
    table = read_curve_table(curves_dir / "taskset_imdb_3.csv")  # diverged rows: their NaN epoch counts too
    budget = 5 * table.epochs
    drawn = table.take(budget_order(table.n_trials, budget, 3))
    policy = make_policy(
        "qhpo", max_epochs=table.epochs, mode=table.mode, random_state=3, **budget_defaults("qhpo", 51)
    )
    agent = endgame.EndgameAgent(
        PolicyAgent(policy, drawn.curves, drawn.param_rows()), budget=budget, sign=table.sign, slack=1.0, pick=pick
    )
    out = simulate(drawn.curves, agent, budget=budget, first_rung=first_rung("", table.epochs, policy=policy))
    finishing = sorted(agent.finishing)
    assert finishing, "the endgame finished no paused trial"
    for i in finishing:  # each ran to its last epoch, or to the epoch its curve diverged at
        diverged = not np.isfinite(drawn.curves[i]).all()
        assert out.complete[i] or (diverged and not np.isfinite(drawn.curves[i, out.epochs_trained[i] - 1]))
    assert agent.spent == out.cost <= budget


def test_the_candidate_is_the_best_ranked_paused_trial_or_the_best_final_for_the_oracle(endgame):
    curves = np.array(
        [
            [0.1, 0.2, 0.3, 0.9],  # paused at epoch 2: last of the three trials there
            [0.3, 0.5, 0.6, 0.7],  # paused at epoch 2: first there
            [0.2, 0.4, 0.5, 0.8],  # running, at epoch 3
            [0.5, 0.1, 0.1, 0.1],  # paused at epoch 1: first of the four there
        ]
    )
    policy = make_policy("qhpo", max_epochs=4, min_resource=1, random_state=0)
    inner = PolicyAgent(policy, curves, [{}] * 4)
    for i, e in enumerate([2, 2, 3, 1]):
        inner.start(i)
        inner.epochs[i] = e
    for i in (0, 1, 3):
        inner.finish(i, TrialStatus.PAUSED)
    agent = endgame.EndgameAgent(inner, budget=16, sign=1.0, slack=0.0, pick="quantile")
    assert agent._candidate([0, 1, 3]) == 1  # quantile 1 at epoch 2 and at epoch 1: the longer trained
    oracle = endgame.EndgameAgent(inner, budget=16, sign=1.0, slack=0.0, pick="oracle")
    assert oracle._candidate([0, 1, 3]) == 0  # the best final value
    lower_is_better = endgame.EndgameAgent(inner, budget=16, sign=-1.0, slack=0.0, pick="quantile")
    assert lower_is_better._candidate([0, 1, 3]) == 0  # the lowest at epoch 2


def test_the_window_rule_continues_any_trial_that_can_still_finish_near_the_end(endgame):
    policy = make_policy("qhpo", max_epochs=4, min_resource=1, random_state=0)
    inner = PolicyAgent(policy, np.ones((2, 4)), [{}] * 2)
    agent = endgame.EndgameAgent(inner, budget=10, sign=1.0, slack=0.25, pick="quantile", keep="window")
    agent.spent = 7  # 3 epochs left: a trial at epoch t needs 4 - t
    assert agent._in_window(1) and agent._in_window(2)  # needs 3 or 2, and the end is within need + 1
    assert not agent._in_window(0)  # needs 4: cannot finish
    agent.spent = 4  # 6 left
    assert not agent._in_window(2)  # needs 2: the end is further than 2 + 0.25 * 4
    marked = endgame.EndgameAgent(inner, budget=10, sign=1.0, slack=0.25, pick="quantile")
    marked.spent = 7
    assert marked.keep == "marked" and marked._in_window(2)  # the same window, read only with keep="window"


def test_bad_arguments_end_in_one_sentence(endgame, capsys):
    with pytest.raises(SystemExit) as exit_info:
        endgame.main(["--slack", "soon"])
    assert exit_info.value.code == 2
    assert "--slack" in capsys.readouterr().err
