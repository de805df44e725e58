"""The rung quorum of ``qhpo``: a rung ranks no one until ``quorum`` trials have reached it."""

import numpy as np

from qhpo.policies import Decision, TrialStatus, TrialView, make_policy
from qhpo.replay import PolicyAgent, simulate

E = 16  # rungs at 1, 2, 4, 8 with min_resource=1
PAUSED = TrialStatus.PAUSED


def _policy(**options):
    return make_policy("qhpo", max_epochs=E, min_resource=1, configuration_weight=0, random_state=0, **options)


def test_the_first_arrivals_at_a_rung_wait_for_the_quorum_and_the_best_of_them_goes_on():
    policy = _policy()  # quorum 4 by default
    assert policy.quorum == 4
    first = TrialView(0, [0.5])
    verdict = policy.decide(first, [first])
    assert verdict.decision == Decision.PAUSE
    assert "1 of the 4 trials that rung 1 waits for have reached it" in verdict.reason
    # three arrivals, all paused: while new configurations follow, none resumes
    views = [TrialView(0, [0.5], status=PAUSED), TrialView(1, [0.9], status=PAUSED), TrialView(2, [0.2])]
    assert policy.decide(views[2], views).decision == Decision.PAUSE
    views[2] = TrialView(2, [0.2], status=PAUSED)
    assert policy.promote(views, limit=4, more_trials=True) == []
    # the fourth arrival completes the quorum: ranked among four, two places; it ranks third
    views.append(TrialView(3, [0.4]))
    verdict = policy.decide(views[3], views)
    assert verdict.decision == Decision.PAUSE and "outside the best 2 of 4" in verdict.reason
    views[3] = TrialView(3, [0.4], status=PAUSED)
    resumed = policy.promote(views, limit=4, more_trials=True)
    assert [r.key for r in resumed] == [1, 0]  # the two best of the four, best first


def test_without_new_configurations_a_thin_rung_ranks_the_trials_it_has():
    policy = _policy()
    views = [TrialView(0, [0.5], status=PAUSED), TrialView(1, [0.9], status=PAUSED)]
    assert policy.promote(views, limit=4, more_trials=True) == []
    (resumed,) = policy.promote(views, limit=4, more_trials=False)  # max(1, 2 // 2) = 1 place
    assert resumed.key == 1 and resumed.epoch == 1


def test_quorum_zero_ranks_each_arrival_at_once_and_a_rule_that_stops_never_waits():
    lone = TrialView(0, [0.5])
    assert _policy(quorum=0).decide(lone, [lone]).decision == Decision.CONTINUE
    stop = make_policy("qhpo-stop", max_epochs=E, min_resource=1, configuration_weight=0, random_state=0)
    assert stop.quorum == 4 and stop.decide(lone, [lone]).decision == Decision.CONTINUE


def test_a_replay_leaves_no_trial_waiting_and_spends_less_than_ranking_each_arrival():
    """Ten rows whose values rise with the row: ranked at once, every row is the best so far
    at every rung and trains to the end; with the quorum, the first rows wait and lose their
    places to the later ones, and once the last row has started every rung ranks what it has."""
    rows = 10
    curves = np.array([np.linspace(0.1, 0.5, E) + 0.04 * i for i in range(rows)])
    params = [{"lr": 0.1 * (i + 1)} for i in range(rows)]
    at_once = simulate(curves, PolicyAgent(_policy(quorum=0), curves, params))
    agent = PolicyAgent(_policy(), curves, params)
    waited = simulate(curves, agent)
    assert at_once.complete.all()
    assert waited.cost < at_once.cost
    assert waited.complete[-1]  # the best row completes
    still = [i for i, s in agent.status.items() if s == PAUSED]
    # every trial left paused lost its place at a rung that reached its quorum
    for i in still:
        epoch = agent.stop_epoch[i]
        assert int((waited.epochs_trained >= epoch).sum()) >= 4


def test_an_agent_written_before_more_trials_is_still_served():
    """A replay agent whose ``promote`` takes no ``more_trials`` is asked as before (and is
    never told that new trials follow, so no rung of its policy waits at promote)."""

    class OldAgent(PolicyAgent):
        def promote(self, limit):
            return super().promote(limit)

    curves = np.array([np.linspace(0.1, 0.5, E) + 0.04 * i for i in range(6)])
    params = [{"lr": 0.1 * (i + 1)} for i in range(6)]
    out = simulate(curves, OldAgent(_policy(), curves, params))
    assert out.complete.any() and out.cost > 0


def test_the_quorum_span_leaves_the_later_rungs_to_rank_each_arrival_at_once():
    """``quorum_span = 0.3`` of 16 epochs: rungs 1, 2 and 4 wait for the quorum, rung 8 does not."""
    policy = _policy(quorum=2, quorum_span=0.3)
    for t in (1, 2, 4):
        lone = TrialView(0, [0.5] * t)
        assert policy.decide(lone, [lone]).decision == Decision.PAUSE, t
    lone = TrialView(0, [0.5] * 8)
    assert policy.decide(lone, [lone]).decision == Decision.CONTINUE
    # a trial paused alone at rung 8 resumes into its place there while new trials follow
    views = [TrialView(0, [0.9] * 8, status=PAUSED), TrialView(1, [0.5] * 3)]
    assert [r.key for r in policy.promote(views, limit=2, more_trials=True)] == [0]
    # with the whole span a lone arrival at rung 8 waits, and promote holds it while trials follow
    whole = _policy(quorum=2)
    assert whole.quorum_span == 1.0 and whole.decide(lone, [lone]).decision == Decision.PAUSE
    assert whole.promote([TrialView(0, [0.9] * 8, status=PAUSED)], limit=2, more_trials=True) == []
