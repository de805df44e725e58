"""The one-epoch rule: one epoch for every configuration, the best share finish."""

from __future__ import annotations

import math

import numpy as np
import pytest

from qhpo.curves import CurveTable
from qhpo.policies import Decision, OneEpoch, TrialView, make_policy
from qhpo.replay import draw_order, replay_rule


def _table(values_at_1, epochs: int = 6, mode: str = "max") -> CurveTable:
    first = np.asarray(values_at_1, dtype=float)
    curves = first[:, None] + 0.01 * np.arange(epochs)[None, :]
    return CurveTable("tiny", "metric", mode, np.arange(len(first)), {"x": first}, curves)


def _finishers_by_hand(values, share, sign=1.0):
    """Trials that finish when they run one after another: ranked among those so far."""
    finished = []
    for i in range(len(values)):
        seen = sign * np.asarray(values[: i + 1])
        k = max(1, math.floor(share * (i + 1) + 1e-9))
        finished.append(seen[-1] >= np.sort(seen)[::-1][k - 1])
    return np.array(finished)


VALUES = [0.5, 0.1, 0.9, 0.2, 0.3, 0.8, 0.05, 0.7, 0.6, 0.95]


def test_it_spends_what_its_formula_says():
    table = _table(VALUES, epochs=6)
    result = replay_rule("one-epoch", table, seed=0, options={"share": 0.3})
    # k = max(1, floor(0.3 m)) = 1, 1, 1, 1, 1, 1, 2, 2, 2, 3: trials 0, 2 and 9 rank within
    expected = _finishers_by_hand(VALUES, 0.3)
    assert expected.tolist() == [True, False, True, False, False, False, False, False, False, True]
    np.testing.assert_array_equal(result.complete, expected)
    assert int(result.epochs_trained.sum()) == 10 * 1 + 3 * (6 - 1)  # n * r + F * (E - r)


@pytest.mark.parametrize("mode", ["max", "min"])
def test_on_a_recorded_draw_the_cost_is_n_plus_the_finishers_epochs(mode, curve_table_path):
    from qhpo.curves import read_curve_table

    table = read_curve_table(curve_table_path)
    if mode == "min":  # the same ranking read as a loss
        table = CurveTable(table.name, "loss", "min", table.trial_ids, table.params, 1.0 - table.curves)
    drawn = table.take(draw_order(table.n_trials, 80, 5))
    result = replay_rule("one-epoch", drawn, seed=5)
    expected = _finishers_by_hand(drawn.curves[:, 0], 0.1, sign=drawn.sign)
    np.testing.assert_array_equal(result.complete, expected)
    assert int(result.epochs_trained.sum()) == 80 + int(expected.sum()) * (drawn.epochs - 1)
    again = replay_rule("one-epoch", drawn, seed=5)
    np.testing.assert_array_equal(again.epochs_trained, result.epochs_trained)  # deterministic for a seed


def test_a_later_decision_epoch_and_a_diverged_trial():
    rule = OneEpoch(max_epochs=10, share=1.0, decision_epoch=3)
    assert rule.decision_epochs() == (3,)
    trial = TrialView(0, [0.1, float("nan"), float("nan")])
    assert rule.decide(trial, [trial]).decision == Decision.STOP
    fine = TrialView(1, [0.1, 0.2, 0.3])
    assert rule.decide(fine, [trial, fine]).decision == Decision.CONTINUE  # share 1: every finite trial


@pytest.mark.parametrize(
    "options, message",
    [({"share": 0}, "share must be"), ({"share": 1.5}, "share must be"), ({"decision_epoch": 10}, "decision_epoch")],
)
def test_bad_options_are_refused(options, message):
    with pytest.raises(ValueError, match=message):
        make_policy("one-epoch", max_epochs=10, **options)
