"""The configuration rule of ``qhpo`` (``configuration_rule``): promote also ranks paused
trials by the final value predicted from their hyperparameters alone."""

from __future__ import annotations

import numpy as np
import pytest

from qhpo.policies import Decision, PredictiveHalving, TrialStatus, TrialView, make_policy

E = 20  # rungs 2, 4, 8, 16; the anchor is the value at the rung
# the configuration rule of promote, on its own: the rung ranks on the anchor alone, and the
# model learns the final values of the completed trials unless a test says otherwise
OFF = dict(configuration_weight=0.0, configuration_budget="final")


def _study(completed: int = 6, running: bool = False) -> list[TrialView]:
    """``completed`` finished trials (the ``lr = 0.1`` ones end at 0.9, the ``lr = 1.0`` ones
    at 0.5, all at 0.8 by epoch 2) and eight trials paused at rung 2: A (``lr = 1.0``,
    anchor 0.40, the best paused anchor), B (``lr = 0.1``, anchor 0.35, a slow start with a
    winner's configuration) and six ``lr = 1.0`` trials below both. With ``running`` the
    first trials are still running at epoch 10 instead of complete."""
    views = []
    for j in range(completed):
        lr, final = (0.1, 0.9) if j % 2 == 0 else (1.0, 0.5)
        curve = np.linspace(0.8, final, E)
        status = TrialStatus.COMPLETE
        if running:
            curve, status = curve[:10], TrialStatus.RUNNING
        views.append(TrialView(f"done{j}", curve, {"lr": lr}, status))
    views.append(TrialView("A", [0.3, 0.40], {"lr": 1.0}, TrialStatus.PAUSED))
    views.append(TrialView("B", [0.3, 0.35], {"lr": 0.1}, TrialStatus.PAUSED))
    for j in range(6):
        views.append(TrialView(f"slow{j}", [0.2, 0.2 + 0.01 * j], {"lr": 1.0}, TrialStatus.PAUSED))
    # 6 done + 8 paused = 14 at rung 2: 7 places, 6 taken by the finished trials, one free
    views.extend(TrialView(f"pad{j}", [0.1, 0.1], {"lr": 1.0}, TrialStatus.PAUSED) for j in range(14 - len(views)))
    return views


@pytest.mark.parametrize("rule", ["rank", "average"])
def test_the_configuration_rule_gives_the_free_place_to_the_slow_start_with_a_winners_configuration(rule):
    views = _study()
    (default,) = make_policy("qhpo", max_epochs=E, min_resource=2, random_state=0, **OFF).promote(views, limit=4)
    assert default.key == "A" and default.epoch == 2  # the best paused anchor takes the one free place
    policy = make_policy("qhpo", max_epochs=E, min_resource=2, random_state=0, configuration_rule=rule, **OFF)
    (chosen,) = policy.promote(views, limit=4)
    assert chosen.key == "B" and chosen.epoch == 2
    assert "predicted from its hyperparameters ranks within the best 7" in chosen.reason


def test_without_enough_completed_trials_the_configuration_rule_changes_nothing():
    views = _study(completed=4)  # fewer than min_horizon_trials = 6: no configuration model yet
    off = make_policy("qhpo", max_epochs=E, min_resource=2, random_state=0, **OFF).promote(views, limit=4)
    on = make_policy("qhpo", max_epochs=E, min_resource=2, random_state=0, configuration_rule="rank", **OFF).promote(
        views, limit=4
    )
    assert [r.key for r in off] == [r.key for r in on] and on


def test_the_deepest_budget_fits_the_configuration_model_before_any_trial_completes():
    views = _study(running=True)  # six trials at epoch 10: the deepest rung six reached is 8
    options = dict(max_epochs=E, min_resource=2, random_state=0, configuration_rule="average", configuration_weight=0.0)
    (final,) = make_policy("qhpo", configuration_budget="final", **options).promote(views, limit=4)
    assert final.key == "A"  # no trial has completed: no model of the final value yet
    (deepest,) = make_policy("qhpo", configuration_budget="deepest", **options).promote(views, limit=4)
    assert deepest.key == "B"


def test_the_configuration_rule_is_checked_and_off_by_default():
    assert PredictiveHalving(max_epochs=E).configuration_rule is None
    with pytest.raises(ValueError, match="configuration_rule must be one of 'average', 'rank' or None, got 'best'"):
        PredictiveHalving(max_epochs=E, configuration_rule="best")
    with pytest.raises(ValueError, match="configuration_budget must be one of 'deepest', 'final', got 'all'"):
        PredictiveHalving(max_epochs=E, configuration_rule="rank", configuration_budget="all")


def _arrival(hp_of_newcomer: float) -> tuple[TrialView, list[TrialView]]:
    """Six trials running at epoch 10 (the ``lr = 0.1`` ones at 0.9 by then, the ``lr = 1.0``
    ones at 0.5; all 0.8 at epoch 2), seven paused at rung 2 with anchors 0.30-0.36 and
    ``lr = 1.0``, and a newcomer at rung 2 with anchor 0.33 and ``lr = hp_of_newcomer``:
    14 peers, 7 places; the newcomer's anchor ranks 10th."""
    views = []
    for j in range(6):
        lr, late = (0.1, 0.9) if j % 2 == 0 else (1.0, 0.5)
        curve = np.concatenate([[0.8, 0.8], np.linspace(0.8, late, 8)])
        views.append(TrialView(f"run{j}", curve, {"lr": lr}, TrialStatus.RUNNING))
    for j in range(7):
        views.append(TrialView(f"paused{j}", [0.2, 0.30 + 0.01 * j], {"lr": 1.0}, TrialStatus.PAUSED))
    newcomer = TrialView("new", [0.2, 0.33], {"lr": hp_of_newcomer}, TrialStatus.RUNNING)
    return newcomer, [*views, newcomer]


def test_the_configuration_weight_ranks_a_rung_by_the_anchor_and_the_hyperparameter_model():
    options = dict(max_epochs=E, min_resource=2, random_state=0, configuration_budget="deepest")
    winner, trials = _arrival(0.1)  # the configuration of the runs that lead at epoch 8
    off = make_policy("qhpo", configuration_weight=0.0, **options).decide(winner, trials)
    assert off.decision == Decision.PAUSE  # on its anchor: 10th of 14
    verdict = make_policy("qhpo", configuration_weight=0.5, **options).decide(winner, trials)
    assert verdict.decision == Decision.CONTINUE
    assert (
        "observed value 0.33 (ranked as 0.8 by its score with the hyperparameter model's quantile 0.88)"
        in verdict.reason
    )
    loser, trials = _arrival(1.0)  # the configuration of the runs that fall behind: no lift
    paused = make_policy("qhpo", configuration_weight=0.5, **options).decide(loser, trials)
    assert paused.decision == Decision.PAUSE
    # the pause names the value measured and the one it was ranked as
    assert paused.reason.startswith("observed value 0.33 (ranked as ")
    assert "by its score with the hyperparameter model's quantile" in paused.reason


def test_the_configuration_weight_is_a_quarter_by_default_checked_and_acts_only_on_the_first_rungs():
    assert PredictiveHalving(max_epochs=E).configuration_weight == 0.25
    assert PredictiveHalving(max_epochs=E).configuration_budget == "deepest"
    assert PredictiveHalving(max_epochs=E, configuration_weight=0)._ranking.rescore is None
    with pytest.raises(ValueError, match=r"configuration_weight must be a number in \[0, 1\], got 1.5"):
        PredictiveHalving(max_epochs=E, configuration_weight=1.5)
    score = PredictiveHalving(max_epochs=200, configuration_weight=0.25)._ranking.rescore
    assert [t for t in (10, 20, 40, 80, 160) if score.acts_at(t)] == [10, 20, 40]  # up to 30 % of training
