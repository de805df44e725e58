"""The rung agreement of ``qhpo``: a rung whose ranking the next rung contradicts keeps a
larger share of its trials."""

import numpy as np
import pytest

from qhpo._errors import QhpoError
from qhpo._policy_options import check_policy_options
from qhpo.policies import Decision, TrialStatus, TrialView, make_policy
from qhpo.replay import PolicyAgent, simulate

E = 40  # rungs at 2, 4, 8, 16, 32 with min_resource=2; agreement_span 0.3 covers 2, 4 and 8
PAUSED = TrialStatus.PAUSED


def _policy(**options):
    base = dict(max_epochs=E, min_resource=2, configuration_weight=0, quorum=0, random_state=0)
    return make_policy("qhpo", **(base | options))


def _reached_rung_4(order_at_4):
    """Twelve trials at rung 4 (epoch 4), values at epoch 2 rising with the trial and at
    epoch 4 in ``order_at_4`` (one value per trial)."""
    views = []
    for i, later in enumerate(order_at_4):
        early = 0.30 + 0.01 * i
        views.append(TrialView(i, [early - 0.01, early, later - 0.01, later], status=PAUSED))
    return views


def test_defaults_and_off():
    policy = make_policy("qhpo", max_epochs=E)
    assert (policy.agreement, policy.agreement_share, policy.agreement_pairs, policy.agreement_span) == (
        0.5,
        1.75,
        12,
        0.3,
    )
    assert make_policy("qhpo", max_epochs=E, agreement="off").agreement is None
    # qhpo-stop keeps the rule it was chosen with unless asked
    assert make_policy("qhpo-stop", max_epochs=E).agreement is None
    assert make_policy("qhpo-stop", max_epochs=E, agreement=0.3).agreement == 0.3


@pytest.mark.parametrize(
    ("options", "message"),
    [
        ({"agreement": 2}, "agreement must be"),
        ({"agreement_share": 0.5}, "agreement_share must be a number >= 1"),
        ({"agreement_pairs": 2}, "agreement_pairs must be an integer >= 3"),
    ],
)
def test_refused_values_get_one_sentence(options, message):
    check_policy_options("qhpo", {"agreement": "off"}, epochs=E)  # accepted
    with pytest.raises(QhpoError, match=message):
        check_policy_options("qhpo", options, epochs=E)


def test_the_agreement_is_the_spearman_correlation_over_the_trials_at_the_next_rung():
    policy = _policy()
    same = _reached_rung_4([0.5 + 0.01 * i for i in range(12)])
    reversed_ = _reached_rung_4([0.5 - 0.01 * i for i in range(12)])
    assert policy.rung_agreement(2, same) == pytest.approx((1.0, 12))
    assert policy.rung_agreement(2, reversed_) == pytest.approx((-1.0, 12))
    # too few pairs, a rung beyond the span, the last rung, and the option off: not measured
    assert policy.rung_agreement(2, same[:11]) is None
    assert policy.rung_agreement(16, same) is None
    assert _policy(agreement_span=1.0).rung_agreement(32, same) is None
    assert _policy(agreement="off").rung_agreement(2, reversed_) is None


def _at_rung_2(views, value):
    arrival = TrialView(99, [value - 0.01, value])
    return arrival, [*views, arrival]


def test_a_contradicted_rung_keeps_a_larger_share_and_says_why():
    """Thirteen trials at rung 2: at eta = 2 six places, at 1.75 seven. The arrival ranks
    seventh at epoch 2 (six of the twelve earlier trials are above it)."""
    agreeing = _reached_rung_4([0.5 + 0.01 * i for i in range(12)])
    contradicted = _reached_rung_4([0.5 - 0.01 * i for i in range(12)])
    value = 0.30 + 0.01 * 5.5  # between trials 5 and 6
    arrival, views = _at_rung_2(agreeing, value)
    verdict = _policy().decide(arrival, views)
    assert verdict.decision == Decision.PAUSE and "outside the best 6 of 13" in verdict.reason
    arrival, views = _at_rung_2(contradicted, value)
    verdict = _policy().decide(arrival, views)
    assert verdict.decision == Decision.CONTINUE and "within the best 7 of 13" in verdict.reason
    assert "rung 2 keeps 1/1.75 of its trials, not 1/2" in verdict.reason
    assert "Spearman -1.00 over the 12 trials that reached both, below 0.5" in verdict.reason
    # with the option off the contradicted rung keeps half, as successive halving does
    arrival, views = _at_rung_2(contradicted, value)
    assert _policy(agreement="off").decide(arrival, views).decision == Decision.PAUSE


def _rung_2_after_halving(order_at_4):
    """Twenty-four trials at rung 2, twelve of which went on to rung 4 (values at epoch 4 in
    ``order_at_4``) and twelve paused at rung 2 below them; trial 99 is the best paused."""
    views = _reached_rung_4(order_at_4)
    views += [TrialView(20 + i, [0.19 + 0.005 * i, 0.20 + 0.005 * i], status=PAUSED) for i in range(11)]
    return [*views, TrialView(99, [0.28, 0.29], status=PAUSED)]


def test_promote_fills_the_larger_share_with_the_best_paused_trial():
    """At eta = 2 the rung's twelve places are taken; at 1.75 it has thirteen, and the best
    paused trial there resumes into the thirteenth, its reason saying why."""
    agreeing = _rung_2_after_halving([0.5 + 0.01 * i for i in range(12)])
    assert [r for r in _policy().promote(agreeing, limit=10) if r.epoch == 2] == []
    contradicted = _rung_2_after_halving([0.5 - 0.01 * i for i in range(12)])
    assert [r for r in _policy(agreement="off").promote(contradicted, limit=10) if r.epoch == 2] == []
    resumed = [r for r in _policy().promote(contradicted, limit=10) if r.epoch == 2]
    assert [r.key for r in resumed] == [99]
    assert "1 of the 13 places at rung 2 are free" in resumed[0].reason
    assert "rung 2 keeps 1/1.75 of its trials" in resumed[0].reason


def test_replay_with_late_risers_spends_more_and_keeps_the_best_row():
    """Forty rows whose order at epoch 2 is the reverse of their order from epoch 4 on:
    halving at rung 2 pauses the late risers; with the agreement rule the rung keeps more of
    them once twelve rows show the reversal, and the replay stays deterministic."""
    rows = 40
    rng = np.random.default_rng(0)
    order = rng.permutation(rows)
    t = np.arange(1, E + 1)
    curves = np.array([np.where(t <= 2, 0.5 - 0.005 * r, 0.4 + 0.005 * r + 0.001 * t) for r in order])
    params = [{"lr": 0.01 * (i + 1)} for i in range(rows)]
    off = simulate(curves, PolicyAgent(_policy(agreement="off"), curves, params))
    on = simulate(curves, PolicyAgent(_policy(), curves, params))
    again = simulate(curves, PolicyAgent(_policy(), curves, params))
    assert on.cost > off.cost
    assert np.array_equal(on.epochs_trained, again.epochs_trained)
    best = int(np.argmax(curves[:, -1]))
    assert on.epochs_trained[best] >= off.epochs_trained[best]
