"""The default policy at its rungs: where a trial stands at one and the judgement it gets
(each branch of ``RungStanding.judge`` with its exact reason, threshold and value, on a loss
so that every sign shows), the horizon of the predicted rule, which paused trials resume and
in what order, the first-rung test's unjudged trials, and when a cached empty promote is
read again."""

from __future__ import annotations

import numpy as np
import pytest

from qhpo.policies import Decision, PredictionService, TrialStatus, TrialView, Verdict, make_policy, rung_epochs
from qhpo.policies._rung_prediction import RungPrediction, rung_prediction_service
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


def _late_riser(status_of_13=TrialStatus.PAUSED):
    """Rung 2 of an 8-epoch rule (rungs 2 and 4): three flat complete trials (x = 0), three
    that rise to 0.9 after epoch 2 (x = 1), four stopped at 0.6, three paused at 0.15 (x = 0)
    and trial 13 at 0.2 (x = 1), a late riser: one free place of seven, which trial 13 takes
    on its predicted value only."""
    flat, riser = [0.5] * 8, [0.1, 0.2, 0.9, 0.9, 0.9, 0.9, 0.9, 0.9]
    views = [TrialView(i, flat, {"x": 0.0}, TrialStatus.COMPLETE) for i in range(3)]
    views += [TrialView(i, riser, {"x": 1.0}, TrialStatus.COMPLETE) for i in range(3, 6)]
    views += [TrialView(i, [0.6, 0.6], {"x": 0.0}, TrialStatus.STOPPED) for i in range(6, 10)]
    views += [TrialView(i, [0.15, 0.15], {"x": 0.0}, TrialStatus.PAUSED) for i in range(10, 13)]
    return views + [TrialView(13, [0.1, 0.2], {"x": 1.0}, status_of_13)]


# the rung ranks on the anchor alone here (configuration_weight 0): these tests are of the curve predictor's rule
LATE = dict(max_epochs=8, min_resource=2, min_horizon_trials=3, random_state=0, configuration_weight=0.0)


def test_the_predicted_rule_waits_for_its_first_rung_and_a_resumption_carries_its_spread():
    assert make_policy("qhpo", first_predicted_rung=1, **LATE).promote(_late_riser(), limit=4) == []
    (resumed,) = make_policy("qhpo", first_predicted_rung=0, **LATE).promote(_late_riser(), limit=4)
    assert resumed.key == 13 and resumed.predicted is not None and resumed.std is not None and resumed.std >= 0


def test_a_promote_that_resumed_no_one_is_not_reused_once_the_paused_trials_change():
    # rung 2 of four trials, one gone on: one free place; the paused trial ranks outside, then the
    # trial that ranks first (stopped until now) is paused too
    def views(q_status):
        return [
            TrialView("C", [0.5] * 8, status=TrialStatus.COMPLETE),
            TrialView("P", [0.1, 0.1], status=TrialStatus.PAUSED),
            TrialView("Q", [0.7, 0.7], status=q_status),
            TrialView("R", [0.2, 0.2], status=TrialStatus.STOPPED),
        ]

    policy = make_policy("qhpo", max_epochs=8, min_resource=2, random_state=0)
    assert policy.promote(views(TrialStatus.STOPPED), limit=4) == []
    assert [r.key for r in policy.promote(views(TrialStatus.PAUSED), limit=4)] == ["Q"]


def test_a_promote_that_resumed_no_one_is_not_reused_once_more_trials_reach_the_horizon():
    # first, five risers run at epoch 3 and the model learns from the three flat curves alone;
    # then they reach the horizon and the refitted model ranks the late riser within
    def views(risers_status, riser_curve):
        flat = [TrialView(i, [0.5] * 8, {"x": 0.0}, TrialStatus.COMPLETE) for i in range(3)]
        risers = [TrialView(i, riser_curve, {"x": 1.0}, risers_status) for i in range(3, 8)]
        stopped = [TrialView(i, [0.6, 0.6], {"x": 0.0}, TrialStatus.STOPPED) for i in range(8, 12)]
        paused = [TrialView(i, [0.15, 0.15], {"x": 0.0}, TrialStatus.PAUSED) for i in range(12, 17)]
        return flat + risers + stopped + paused + [TrialView(17, [0.1, 0.2], {"x": 1.0}, TrialStatus.PAUSED)]

    policy = make_policy("qhpo", first_predicted_rung=0, **LATE)
    assert policy.promote(views(TrialStatus.RUNNING, [0.1, 0.25, 0.9]), limit=4) == []
    (resumed,) = policy.promote(views(TrialStatus.COMPLETE, [0.1, 0.25] + [0.9] * 6), limit=4)
    assert resumed.key == 17 and "predicted value at epoch 4" in resumed.reason


def _two_rungs():
    """One free place at rung 4 (trial "P4" paused there) and one at rung 2 ("P2"), both
    within on their observed values."""
    views = [
        TrialView("C", [0.5] * 8, status=TrialStatus.COMPLETE),
        TrialView("P4", [0.6] * 4, status=TrialStatus.PAUSED),
        TrialView("S4a", [0.1] * 4, status=TrialStatus.STOPPED),
        TrialView("S4b", [0.1] * 4, status=TrialStatus.STOPPED),
        TrialView("P2", [0.7, 0.7], status=TrialStatus.PAUSED),
    ]
    return views + [TrialView(f"S2{i}", [0.1, 0.1], status=TrialStatus.STOPPED) for i in range(6)]


def test_resumptions_are_listed_from_the_highest_rung_down_and_one_by_default():
    policy = make_policy("qhpo", max_epochs=8, min_resource=2, random_state=0)
    assert [(r.key, r.epoch) for r in policy.promote(_two_rungs(), limit=2)] == [("P4", 4), ("P2", 2)]
    assert [r.key for r in policy.promote(_two_rungs())] == ["P4"]
    with pytest.raises(ValueError, match="limit"):
        policy.promote(_two_rungs(), limit=-1)


def test_trials_that_passed_the_first_rung_unjudged_share_eta_squared_at_the_second():
    # eta = 3, rungs 1, 3, 9: twelve testers paused at rung 3 share floor(12 / 9) = 1 place
    policy = make_policy("qhpo", max_epochs=27, min_resource=1, reduction_factor=3, first_rung_test=12, random_state=0)
    assert policy.rungs == (1, 3, 9)
    quality = np.linspace(0.3, 0.9, 12)
    testers = [TrialView(i, [q, q, q], {"x": q}, TrialStatus.PAUSED) for i, q in enumerate(quality)]
    assert policy.first_rung_on(testers) is True
    assert [r.key for r in policy.promote(testers, limit=12)] == [11]


def test_a_tester_passes_the_first_rung_unjudged_and_says_why():
    policy = make_policy("qhpo", max_epochs=16, first_rung_test=4, random_state=0)
    assert policy.rungs[:2] == (1, 2)
    first = TrialView(0, [0.1])
    assert policy.decide(first, [first]) == Verdict(
        Decision.CONTINUE, 1, "passes rung 1 unjudged: it tests the first rung"
    )
    # the four testers rank in reverse at the second rung: the first rung is switched off
    testers = [TrialView(i, [0.1 * (i + 1), 0.9 - 0.1 * i], {"x": float(i)}) for i in range(4)]
    later = TrialView(4, [0.2])
    verdict = policy.decide(later, [*testers, later])
    assert verdict == Verdict(
        Decision.CONTINUE,
        1,
        "passes rung 1 unjudged: it the first rung is off (Spearman -1.00 with the second rung over the tests)",
    )


def test_qhpo_stop_refuses_to_resume():
    with pytest.raises(ValueError, match="^policy 'qhpo-stop' never resumes a trial; use policy 'qhpo' to resume$"):
        make_policy("qhpo-stop", max_epochs=8, resume=True)


def test_the_horizon_is_the_first_later_rung_that_enough_finite_trials_reached():
    service = rung_prediction_service(
        "svr", sampler=None, background=False, random_state=0, hyperparameters=False, anchor_window=1, min_curves=3
    )
    ranking = RungPrediction(
        service,
        rungs=(2, 4),
        max_epochs=8,
        sign=1.0,
        floor_quantile=0.1,
        anchor_window=1,
        min_horizon_trials=3,
        first_predicted_rung=0,
    )
    at_4 = [TrialView(i, [0.5] * 4) for i in range(3)]
    short = [TrialView(i, [0.5] * 2) for i in range(3, 9)]
    broken = TrialView(9, [0.5, float("nan"), 0.5, 0.5])
    assert ranking.horizon(2, at_4) == 4  # exactly three
    assert ranking.horizon(2, at_4[:2] + short + [broken]) is None  # short or broken curves do not count
    done = [TrialView(i, [0.5] * 8, status=TrialStatus.COMPLETE) for i in range(3)]
    assert ranking.horizon(4, done) == 8 and ranking.horizon(2, done) == 4
    assert not ranking.predicts_at(2) or ranking.predicts_at(4)


def test_decide_outside_a_rung_and_on_a_broken_curve():
    policy = make_policy("qhpo", max_epochs=8, min_resource=2, random_state=0)
    view = TrialView(0, [0.5, 0.5, 0.5])
    assert policy.decide(view, [view]) == Verdict(Decision.CONTINUE, 3, "epoch 3 is not a rung")
    broken = TrialView(1, [0.5, float("nan")])
    assert policy.decide(broken, [broken]) == Verdict(
        Decision.STOP, 2, "the curve is not finite within its first 2 epochs"
    )
    held = make_policy("qhpo", max_epochs=8, min_resource=2, min_completed=1).verdict(
        view := TrialView(2, [0.5, 0.5]), [view]
    )
    assert held.ranked is False
    with pytest.raises(ValueError, match="^limit must be an integer >= 0"):
        policy.promote([view], limit=-1)


def _flat_testers(qualities, epochs):
    return [TrialView(i, [q] * epochs, {"x": q}) for i, q in enumerate(qualities)]


def test_a_tester_at_the_third_rung_is_judged_among_every_trial_there():
    # four testers and four others at rung 4: a tester second among the testers and second of
    # all keeps a place of floor(8 / 2) = 4; among the testers alone it would be outside 4 / 4 = 1
    policy = make_policy("qhpo", max_epochs=16, first_rung_test=4, random_state=0)
    views = _flat_testers([0.9, 0.8, 0.3, 0.2, 0.1, 0.15, 0.25, 0.35], 4)
    assert policy.first_rung_on(views) is True
    assert policy.decide(views[1], views).decision == Decision.CONTINUE


def test_a_tester_at_the_second_rung_is_judged_among_every_other_tester_there():
    # eight testers at rung 2 share floor(8 / 4) = 2 places: the second best keeps one
    policy = make_policy("qhpo", max_epochs=16, first_rung_test=8, random_state=0)
    views = _flat_testers([0.1, 0.9, 0.8, 0.3, 0.2, 0.25, 0.35, 0.4], 2)
    assert policy.first_rung_on(views) is True
    assert policy.decide(views[2], views).decision == Decision.CONTINUE
    assert policy.decide(views[7], views).decision == Decision.PAUSE


def test_while_the_first_rung_test_runs_the_testers_at_the_second_rung_are_judged_together():
    # testers 0 and 1 reached rung 2, testers 2 and 3 not yet: 0 ranks below 1 in a group of
    # two with one place
    policy = make_policy("qhpo", max_epochs=16, first_rung_test=4, quorum=0, random_state=0)
    views = [TrialView(0, [0.3, 0.3]), TrialView(1, [0.6, 0.6]), TrialView(2, [0.5]), TrialView(3, [0.4])]
    assert policy.first_rung_on(views) is None
    assert policy.decide(views[0], views).decision == Decision.PAUSE
    assert policy.decide(views[1], views).decision == Decision.CONTINUE


def test_with_eta_3_the_unjudged_share_nine_at_the_second_rung():
    # eighteen testers at rung 3: floor(18 / 9) = 2 places, so the second best keeps one, the third not
    policy = make_policy("qhpo", max_epochs=27, min_resource=1, reduction_factor=3, first_rung_test=18, random_state=0)
    views = _flat_testers(list(np.linspace(0.9, 0.05, 18)), 3)
    assert policy.first_rung_on(views) is True
    assert policy.decide(views[1], views).decision == Decision.CONTINUE
    assert policy.decide(views[2], views).decision == Decision.PAUSE


def test_qhpo_pauses_on_the_observed_value_and_qhpo_stop_reads_the_prediction_at_the_rung():
    views = _late_riser(TrialStatus.RUNNING)
    late = views[13]
    paused = make_policy("qhpo", first_predicted_rung=0, **LATE).decide(late, views)
    assert paused == Verdict(
        Decision.PAUSE,
        2,
        "observed value 0.2 ranks outside the best 7 of 14 at rung 2 (cut-off 0.5); paused until a place there "
        "falls free",
        threshold=0.5,
    )
    kept = make_policy("qhpo-stop", first_predicted_rung=0, **LATE).decide(late, views)
    assert kept.decision == Decision.CONTINUE and "predicted value at epoch 4" in kept.reason
    assert kept.predicted > 0.5 and kept.std is not None and kept.threshold is not None
    observed_only = make_policy("qhpo-stop", first_predicted_rung=1, **LATE).decide(late, views)
    assert observed_only.decision == Decision.STOP and observed_only.predicted is None
    assert observed_only.reason == "observed value 0.2 ranks outside the best 7 of 14 at rung 2 (cut-off 0.5)"


def test_the_defaults_follow_max_epochs_and_the_service_is_built_for_the_rungs():
    policy = make_policy("qhpo", max_epochs=30, random_state=7)
    assert policy.min_resource == 2 and policy.decision_epochs() == (2, 4, 8, 16)  # round(30 / 20) = 2
    assert make_policy("qhpo", max_epochs=200).anchor_window == 5  # round(10 / 2)
    service = policy.service
    assert (service.relative, service.step, service.error_estimate, service.hyperparameters) == (True, 5, False, True)
    assert (service.min_curves, service.anchor_window, service.random_state) == (6, 1, 7)
    assert make_policy("qhpo", max_epochs=30, min_horizon_trials=4, anchor_window=2).service.min_curves == 4
    assert make_policy("qhpo", max_epochs=30, min_horizon_trials=4, anchor_window=2).service.anchor_window == 2
    assert make_policy("qhpo", max_epochs=30, hyperparameters=False).service.hyperparameters is False
    given = PredictionService("svr", min_curves=3)
    assert make_policy("qhpo", max_epochs=30, service=given).service is given
    # two rungs are enough for the first-rung test
    assert make_policy("qhpo", max_epochs=4, min_resource=1, first_rung_test=3).first_rung_test == 3
    configured = make_policy("qhpo", max_epochs=30, configuration_rule="rank", configuration_budget="deepest")
    assert (configured._configuration.rule, configured._configuration.budget) == ("rank", "deepest")


def test_a_prior_is_read_with_its_weight_and_horizon():
    ranking = make_policy("qhpo", max_epochs=30, prior="builtin", prior_weight=0.3)._ranking._ranking
    prior = ranking.__self__
    assert prior.prior is not None and (prior.weight, prior.max_epochs) == (0.3, 30)
    assert make_policy("qhpo", max_epochs=30)._ranking._ranking is RungStanding
