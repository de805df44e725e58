"""The driver every adapter asks its policy through: the gate, the error policy, the bookkeeping."""

from __future__ import annotations

import doctest
import math
import warnings

import pytest

import qhpo.policies._driver as driver_module
from qhpo.policies import (
    Decision,
    DecisionEpochs,
    PolicyDriver,
    Resumption,
    StoppingPolicy,
    TopicWarnings,
    TrialStatus,
    TrialView,
    Verdict,
    make_policy,
)
from qhpo.replay import PolicyAgent, simulate


class _Rungs(StoppingPolicy):
    """Stops a trial below 0.5 at its rungs; goes on unranked below 0.6; predicts above 0.8."""

    def decide(self, trial, trials):
        value = trial.curve[-1]
        if value < 0.5:
            return Verdict(Decision.STOP, trial.epochs, "below 0.5")
        if value < 0.6:
            return Verdict(Decision.CONTINUE, trial.epochs, "held for the start-up", ranked=False)
        if value > 0.8:
            return Verdict(Decision.CONTINUE, trial.epochs, "predicted well", predicted=0.9, threshold=0.7)
        return Verdict(Decision.CONTINUE, trial.epochs)

    def decision_epochs(self):
        return (8, 2, 4)


class _Broken(StoppingPolicy):
    def decide(self, trial, trials):
        raise RuntimeError("no model yet")

    @property
    def resumes(self):
        return True

    def promote(self, trials, *, limit=1):
        raise RuntimeError("no ranking yet")


class _NamesAnyone(StoppingPolicy):
    """Resumes trial 0 (paused), trial 0 again, and trial 1 (running)."""

    def decide(self, trial, trials):
        return Verdict(Decision.CONTINUE, trial.epochs)

    @property
    def resumes(self):
        return True

    def promote(self, trials, *, limit=1):
        return [Resumption(0, 2), Resumption(0, 2), Resumption(1, 2)][:limit]


def _caught(call):
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        result = call()
    return result, [w for w in caught if issubclass(w.category, RuntimeWarning)]


def test_the_gate_opens_at_the_decision_epochs_and_at_every_rung_reached_between_two_reports():
    gate = PolicyDriver(_Rungs(max_epochs=10)).epochs
    assert [e for e in range(1, 11) if gate.decides_at(e)] == [2, 4, 8]
    assert gate.reached(0, 1) == [] and gate.reached(1, 9) == [2, 4, 8] and gate.reached(4, 8) == [8]
    assert gate.reached(4, 4) == [] and gate.first(below=10) == 2 and gate.first(below=2) == 2
    every = DecisionEpochs.of(_Broken(max_epochs=10))  # decision_epochs() None: any epoch
    assert every == DecisionEpochs() and all(every.decides_at(e) for e in (1, 5, 10))
    assert every.reached(3, 7) == [7] and every.first(below=10) == 1
    never = DecisionEpochs.of(make_policy("none", max_epochs=10))
    assert not any(never.decides_at(e) for e in range(1, 11)) and never.reached(0, 10) == []
    assert never.first(below=10) == 10
    qhpo = DecisionEpochs.of(make_policy("qhpo", max_epochs=200))
    assert qhpo.epochs == frozenset({10, 20, 40, 80, 160}) and qhpo.reached(15, 100) == [20, 40, 80]


def test_a_failing_policy_warns_once_per_topic_and_the_trial_continues():
    driver = PolicyDriver(_Broken(max_epochs=4))
    views = [TrialView(0, [0.3], status=TrialStatus.PAUSED), TrialView(1, [0.4])]

    def ask_often():
        return [driver.judge(views[1], views) for _ in range(3)], [driver.promote(views, 2) for _ in range(3)]

    (rulings, promoted), caught = _caught(ask_often)
    assert rulings == [None] * 3 and promoted == [[]] * 3  # the trial continues, the paused one stays paused
    assert len(caught) == 2
    assert "no model yet" in str(caught[0].message) and "the trial continues" in str(caught[0].message)
    assert "no ranking yet" in str(caught[1].message) and "stay paused" in str(caught[1].message)
    assert driver.warnings.told("decide") and driver.warnings.told("promote")


def test_drivers_sharing_their_warnings_tell_a_topic_once_in_all():
    shared = TopicWarnings()
    first, second = (PolicyDriver(_Broken(max_epochs=4), warnings=shared) for _ in range(2))
    view = TrialView(0, [0.3])
    _, caught = _caught(lambda: (first.judge(view, [view]), second.judge(view, [view])))
    assert len(caught) == 1


def test_a_benchmark_driver_raises_what_the_policy_raises():
    driver = PolicyDriver(_Broken(max_epochs=4), on_error="raise")
    views = [TrialView(0, [0.3], status=TrialStatus.PAUSED)]
    with pytest.raises(RuntimeError, match="no model yet"):
        driver.judge(views[0], views)
    with pytest.raises(RuntimeError, match="no ranking yet"):
        driver.promote(views, 1)
    curves = [[0.1, 0.2, 0.3, 0.4]] * 3
    with pytest.raises(RuntimeError, match="no model yet"):  # the replay reports no numbers of a broken policy
        simulate(curves, PolicyAgent(_Broken(max_epochs=4), curves, [{}] * 3))
    with pytest.raises(ValueError, match="on_error"):
        PolicyDriver(_Broken(max_epochs=4), on_error="ignore")
    with pytest.raises(ValueError, match="StoppingPolicy"):
        PolicyDriver("qhpo")


def test_a_ruling_carries_the_unranked_epoch_and_the_record_to_keep():
    driver = PolicyDriver(_Rungs(max_epochs=10), label="rungs")
    held = TrialView(0, [0.55, 0.55], unranked=frozenset({2}))
    plain, unranked, predicted, stopped = (
        driver.judge(v, [v])
        for v in (TrialView(1, [0.7, 0.7]), TrialView(2, [0.5, 0.55, 0.6, 0.55]), TrialView(3, [0.9] * 4), held)
    )
    assert plain.decision == Decision.CONTINUE and plain.unranked_at is None and plain.record is None
    assert plain.unranked_after({2}) is None and not plain.ends_training
    assert unranked.unranked_at == 4 and unranked.record is None  # unranked alone is no record
    assert unranked.unranked_after(()) == frozenset({4}) and unranked.unranked_after([2]) == frozenset({2, 4})
    assert unranked.unranked_after([4, 2]) is None  # already held: nothing to store
    assert predicted.record["predicted_final"] == 0.9 and predicted.record["reason"].startswith(
        "continued by policy 'rungs' at epoch 4"
    )
    assert stopped.unranked_at == 2 and stopped.unranked_after(held.unranked) is None
    stop = driver.judge(TrialView(4, [0.4, 0.45]), [])
    assert stop.ends_training and stop.record["decision"] == "stop" and stop.record["threshold"] is None


def test_promote_keeps_the_paused_trials_the_policy_names_once_within_the_limit():
    driver = PolicyDriver(_NamesAnyone(max_epochs=4))
    views = [TrialView(0, [0.3, 0.4], status=TrialStatus.PAUSED), TrialView(1, [0.5, 0.6])]
    chosen, caught = _caught(lambda: driver.promote(views, 3))
    assert [r.key for r in chosen] == [0] and len(caught) == 1 and "not a paused trial" in str(caught[0].message)
    assert driver.promote(views, 0) == [] and driver.promote(views[1:], 3) == []  # no worker, no paused trial
    assert PolicyDriver(_Rungs(max_epochs=4)).promote(views, 3) == []  # a policy that does not resume
    with pytest.raises(ValueError, match="not a paused trial"):
        PolicyDriver(_NamesAnyone(max_epochs=4), on_error="raise").promote(views, 3)


def test_a_failed_trials_view_ends_before_its_first_non_finite_value():
    curve = [0.2, 0.3, math.nan, 0.4]
    assert TrialView.of(0, curve, status=TrialStatus.FAILED).curve == [0.2, 0.3]
    assert TrialView.of(0, curve, status=TrialStatus.STOPPED).curve == curve  # only a failed trial's is cut
    view = TrialView.of(5, (0.1,), {"lr": 0.1}, TrialStatus.PAUSED, [3, 3])
    assert view == TrialView(5, (0.1,), {"lr": 0.1}, TrialStatus.PAUSED, frozenset({3}))


def test_the_driver_examples_hold():
    assert doctest.testmod(driver_module).failed == 0
