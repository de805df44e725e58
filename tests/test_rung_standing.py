"""The rungs of the default policy, where a trial stands at one, and the judgement it gets:
each branch of ``RungStanding.judge`` with its exact reason, threshold and value, on a loss
(``min``) so that every sign shows."""

from __future__ import annotations

import numpy as np
import pytest

from qhpo.policies import TrialStatus, TrialView, rung_epochs
from qhpo.policies._rungs import Judgement, RungGroup, RungStanding, paused_by_rung

RANKED = "the best 2 of 5 at rung 2"


@pytest.fixture
def standing() -> RungStanding:
    """Five losses at rung 2 (anchors 0.3, 0.2, 0.4, 0.1, 0.4 with a one-epoch window): two places, cut-off 0.2."""
    finals = [0.3, 0.2, 0.4, 0.1, 0.4]
    group = RungGroup(2, tuple(TrialView(i, [0.5, c]) for i, c in enumerate(finals)), 2.0)
    return RungStanding(group, sign=-1.0, floor_quantile=0.0, anchor_window=1)


def test_rungs_grow_by_the_reduction_factor_and_never_repeat_an_epoch():
    # round(1.2**k) is 1 three times and 2 three times: each rung appears once
    assert rung_epochs(10, 1, 1.2) == (1, 2, 3, 4, 5, 6, 7, 9)
    assert rung_epochs(12, 1, 1.5) == (1, 2, 3, 5, 8, 11)
    assert rung_epochs(4, 4, 2.0) == ()


def test_a_standing_starts_without_a_horizon_or_a_prediction(standing):
    assert standing.horizon is None and standing.prediction is None
    assert standing.keep == 2 and standing.m == 5 and standing.cut == pytest.approx(-0.2)


def test_an_anchor_equal_to_the_cut_off_ranks_within(standing):
    assert not standing.ranks_outside(1)  # 0.2 is the cut-off itself
    assert standing.ranks_outside(0) and not standing.ranks_outside(3)
    assert standing.judge(1, predicted_rule=True) == Judgement(
        True, f"observed value 0.2 ranks within {RANKED}", None, None, 0.2, -0.2
    )


def test_outside_on_the_anchor_without_the_predicted_rule_or_a_model(standing):
    outside = f"observed value 0.3 ranks outside {RANKED} (cut-off 0.2)"
    assert standing.judge(0, predicted_rule=False) == Judgement(False, outside, None, None, 0.2, -0.3)
    no_model = standing.judge(0, predicted_rule=True)
    assert no_model == Judgement(False, f"{outside}; no predictor is fitted yet", None, None, 0.2, -0.3)
    assert no_model.keep is False


def test_outside_on_the_anchor_the_prediction_decides_and_a_tie_with_its_cut_off_is_kept(standing):
    # predicted losses 0.15, 0.05, 0.35, 0.25, 0.12: the second best, 0.12, is the cut-off
    standing.horizon = 4
    standing.prediction = (np.array([-0.15, -0.05, -0.35, -0.25, -0.12]), np.array([0.01, 0.02, 0.03, 0.04, 0.05]))
    dropped = standing.judge(0, predicted_rule=True)
    assert dropped == Judgement(
        False,
        f"observed value 0.3 ranks outside {RANKED}; predicted value at epoch 4 0.15 ranks outside {RANKED} "
        "(cut-off 0.12)",
        0.15,
        0.01,
        0.12,
        -0.15,
    )
    tie = standing.judge(4, predicted_rule=True)
    assert tie == Judgement(
        True,
        f"observed value 0.4 ranks outside {RANKED}; predicted value at epoch 4 0.12 ranks within {RANKED} "
        "(cut-off 0.12)",
        0.12,
        0.05,
        0.12,
        -0.12,
    )
    # the predicted rule is not read when the trial ranks within on its anchor
    assert standing.judge(3, predicted_rule=True).predicted is None


def test_only_paused_trials_between_the_first_and_the_last_epoch_with_finite_values_can_resume():
    views = [
        TrialView(0, [], status=TrialStatus.PAUSED),  # paused before any epoch
        TrialView(1, [0.1, 0.2, 0.3, 0.4], status=TrialStatus.PAUSED),  # at the last epoch: nothing left to train
        TrialView(2, [0.1, 0.2], status=TrialStatus.PAUSED),
        TrialView(3, [0.1, float("nan")], status=TrialStatus.PAUSED),
        TrialView(4, [0.1, 0.2], status=TrialStatus.STOPPED),
        TrialView(5, [0.3], status=TrialStatus.PAUSED),
    ]
    assert paused_by_rung(views, 4) == {2: [2], 1: [5]}
