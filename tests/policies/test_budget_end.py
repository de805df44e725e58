"""``qhpo`` at the end of a budget: the paused trial it resumes to finish, when, and what the
adapters keep of it (the replay here; Optuna and Ray in their own test folders)."""

from __future__ import annotations

import numpy as np
import pytest

from qhpo.curves import read_curve_table
from qhpo.policies import Decision, PolicyDriver, Resumption, TrialStatus, TrialView, make_policy
from qhpo.replay import BudgetSettings, PolicyAgent, budget_order, first_rung, simulate

PAUSED = TrialStatus.PAUSED


def _policy(**options):
    return make_policy("qhpo", max_epochs=4, min_resource=1, quorum=0, random_state=0, **options)


def _views() -> list[TrialView]:
    """Trial 0 complete; 1 and 3 paused at epoch 2 (1 above 3); 2 paused at epoch 1, first there."""
    return [
        TrialView(0, [0.5, 0.6, 0.7, 0.8], status=TrialStatus.COMPLETE),
        TrialView(1, [0.3, 0.5], status=PAUSED),
        TrialView(2, [0.9], status=PAUSED),
        TrialView(3, [0.2, 0.4], status=PAUSED),
    ]


def test_near_the_end_the_best_standing_paused_trial_that_can_finish_resumes_to_finish():
    policy = _policy()  # E = 4, slack 0.25: one epoch of reserve
    views = _views()
    # 3 left: trial 2 (value 0.9 at epoch 1, above all three there) needs 3 and stands first;
    # 3 <= 3 + 1, so it finishes
    [made] = policy.promote(views, limit=1, budget_left=3)
    assert made.key == 2 and made.finishing and made.epoch == 1
    assert "3 epochs are left of the budget and it needs 3 to finish" in made.reason
    assert made.record("qhpo")["finishing"] is True
    assert made.record("qhpo")["reason"].startswith("resumed by policy 'qhpo' after epoch 1 to finish: ")
    # 2 left: trial 2 cannot finish any more; of those that can, trial 1 stands above trial 3 at epoch 2
    [made] = policy.promote(views, limit=1, budget_left=2)
    assert made.key == 1 and made.finishing


def test_lower_is_better_picks_the_lowest_value():
    policy = make_policy("qhpo", max_epochs=4, mode="min", min_resource=1, quorum=0, random_state=0)
    [made] = policy.promote(_views(), limit=1, budget_left=2)  # at epoch 2 trial 3 (0.4) is the lowest of all
    assert made.key == 3 and made.finishing


def test_no_end_before_the_reserve_without_a_budget_or_switched_off():
    views = _views()
    # 5 left: the best (trial 2) needs 3 and 5 > 3 + 1; the rung's own rule then resumes nothing
    # finishing (whatever it resumes is judged as usual)
    assert not any(r.finishing for r in _policy().promote(views, limit=1, budget_left=5))
    assert not any(r.finishing for r in _policy().promote(views, limit=1))  # no budget
    assert not any(r.finishing for r in _policy(endgame_slack="off").promote(views, limit=1, budget_left=3))
    assert _policy(endgame_slack="off").reads_budget is False and _policy().reads_budget is True
    assert make_policy("qhpo-stop", max_epochs=4).reads_budget is False  # it never resumes
    # a larger reserve starts the end earlier
    [made] = _policy(endgame_slack=0.5).promote(views, limit=1, budget_left=5)
    assert made.key == 2 and made.finishing


def test_a_finishing_trial_goes_on_at_a_rung_where_it_would_be_paused():
    policy = _policy()
    peers = [TrialView(k, [0.9, 0.9], status=TrialStatus.COMPLETE) for k in range(3)]
    slow = TrialView(9, [0.1, 0.1])
    assert policy.decide(slow, [*peers, slow]).decision == Decision.PAUSE
    finishing = TrialView(9, [0.1, 0.1], finishing=True)
    verdict = policy.decide(finishing, [*peers, finishing])
    assert verdict.decision == Decision.CONTINUE and "unjudged" in verdict.reason


def test_the_driver_tells_the_budget_only_to_a_promote_that_takes_it():
    told = {}

    class Reads(type(_policy())):
        def promote(self, trials, *, limit=1, more_trials=False, budget_left=None):
            told["left"] = budget_left
            return [Resumption(1, 2)]

    driver = PolicyDriver(Reads(max_epochs=4, min_resource=1, random_state=0), on_error="raise")
    driver.promote(_views(), 1, budget_left=7)
    assert told["left"] == 7
    driver.promote(_views(), 1)
    assert told["left"] is None

    class Older(type(_policy())):
        def promote(self, trials, *, limit=1, more_trials=False):  # written before budgets
            told["older"] = True
            return []

    older = PolicyDriver(Older(max_epochs=4, min_resource=1, random_state=0), on_error="raise")
    assert older.promote(_views(), 1, budget_left=7) == [] and told["older"]


@pytest.mark.parametrize("name", ["taskset_imdb_3.csv", "baker_resnet_cifar10.csv"])
def test_in_the_replay_every_finishing_trial_completes_within_the_budget(curves_dir, name):
    table = read_curve_table(curves_dir / name)  # taskset: diverged rows, whose NaN epoch counts too
    budget = BudgetSettings(5).epochs(table)
    finishing_seen = 0
    for seed in range(4):
        drawn = table.take(budget_order(table.n_trials, budget, seed))
        options = BudgetSettings(5).rule_options("qhpo", table)
        policy = make_policy("qhpo", max_epochs=table.epochs, mode=table.mode, random_state=seed, **options)
        agent = PolicyAgent(policy, drawn.curves, drawn.param_rows())
        out = simulate(drawn.curves, agent, budget=budget, first_rung=first_rung("", table.epochs, policy=policy))
        assert out.cost <= budget
        finishing = [r for r in agent.resumptions if r.finishing]
        for r in finishing:
            i = int(r.key)
            diverged = not np.isfinite(drawn.curves[i]).all()
            assert out.complete[i] or (diverged and not np.isfinite(drawn.curves[i, out.epochs_trained[i] - 1]))
        finishing_seen += len(finishing)
    assert finishing_seen > 0, "no seed reached the end of its budget with a paused trial"
