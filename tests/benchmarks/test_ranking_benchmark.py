"""benchmarks/ranking.py scores rankings right on tables whose ranking is known."""

from __future__ import annotations

import numpy as np
import pytest
from scipy.stats import spearmanr
from tests.repo_scripts import load_script

from qhpo.curves import CurveTable

ranking = load_script("benchmarks/ranking.py", "ranking_benchmark")


def test_spearman_and_recall_of_known_orders():
    final = np.arange(20.0)
    assert ranking.spearman_recall(final, final) == (1.0, 1.0)
    rho, recall = ranking.spearman_recall(-final, final)
    assert rho == pytest.approx(-1.0) and recall == 0.0
    # swap the best with the 11th: d = 9 twice, rho = 1 - 6 * 162 / (20 * 399); one of the best two found
    score = final.copy()
    score[[19, 10]] = score[[10, 19]]
    rho, recall = ranking.spearman_recall(score, final)
    assert rho == pytest.approx(1 - 6 * 162 / (20 * 399))
    assert recall == 0.5


def _crossing_table(n: int = 30, epochs: int = 20) -> CurveTable:
    """Curves a_i (10 - e) / 10: ranked by a_i before epoch 10, in reverse after it."""
    a = np.linspace(0.1, 1.0, n)
    e = np.arange(1, epochs + 1)
    curves = a[:, None] * (10 - e)[None, :] / 10
    return CurveTable("crossing", "metric", "max", np.arange(n), {"a": a}, curves)


def test_the_rungs_before_the_crossing_rank_in_reverse_and_the_later_ones_right():
    # 60 runs: the default rule's study completes five (its rungs wait for a quorum of four),
    # enough for the model of the final value from the hyperparameters
    table = _crossing_table(60)
    out = ranking.seed_ranking(table, seed=100, trials=60)
    assert list(out["rungs"]) == [1, 2, 4, 8, 16]  # round(20 / 20) * 2**k
    for r, row in out["rungs"].items():
        assert row["oracle E"] == (1.0, 1.0)
        assert row["observed"][1] == (1.0 if r > 10 else 0.0)  # the final top 3 are the lowest a_i
        # the anchor is the value at r (window 1) floored at the 10 % quantile of the first r values
        anchor = np.maximum(table.curves[:, r - 1], np.quantile(table.curves[:, :r], 0.1))
        assert row["observed"][0] == pytest.approx(spearmanr(anchor, table.curves[:, -1]).statistic)
        assert (row["observed"][0] > 0.85) if r > 10 else (row["observed"][0] < -0.95)
        assert row["horizon"] == {1: 2, 2: 4, 4: 8, 8: 16, 16: 20}[r]
        assert row["oracle h"][0] == pytest.approx(1.0 if row["horizon"] > 10 else -1.0)
        # the predictor and its survivorship check only where at least 6 runs reached the horizon
        assert ("predictor" in row) == ("random" in row) == (row["train"] >= 6)
        assert "predictor-" not in row or row["train"] >= 6
        assert ("obs+hp 0.25" in row) == ("hp" in row)  # the score of configuration_weight = 0.25
    assert any("obs+hp 0.25" in row for row in out["rungs"].values())


def test_the_prior_columns_appear_at_the_rungs_where_the_prior_acts_and_leave_the_table_out():
    from qhpo.priors import build_prior

    table = _crossing_table()
    other = CurveTable(
        "rising",
        "metric",
        "max",
        np.arange(30),
        {"a": np.arange(30.0)},
        np.cumsum(np.random.default_rng(0).uniform(0, 1, (30, 20)), axis=1),
    )
    prior = build_prior([table, other])  # the ranked table is in it: the benchmark must leave it out
    out = ranking.seed_ranking(table, seed=100, trials=30, prior=prior)
    for r, row in out["rungs"].items():
        assert ("prior" in row) == (r / 20 <= 0.3) and ("obs+prior" in row) == (r / 20 <= 0.3)
        # the curves fall from epoch 1 on: the best so far is the first value, ranked by a, the reverse of the final
        assert row["best"][0] == pytest.approx(-1.0)
    assert ranking.prior_for_table(prior, table.curves).tables == ("rising",)


def test_the_survivorship_check_trains_as_many_runs_at_random_and_scores_both_on_runs_neither_saw():
    table = _crossing_table(n=60)
    drawn_rows = np.arange(60)
    v = table.curves
    reached = np.arange(40, 52)  # the survivors: the highest a_i, what the rule keeps before the crossing
    from qhpo.policies import PredictionService

    trained = PredictionService("svr", random_state=0, hyperparameters=True, relative=True, min_curves=6)
    numeric = table.numeric_params()
    trained.update(v[reached, :8], numeric[reached])
    out = ranking._survivorship(
        trained, "svr", v, v[:, :4], numeric, drawn_rows, reached, v[:, -1], r=4, h=8, w=1, floor=-np.inf, seed=3
    )
    assert out["scores"]["random"].shape == (60,)
    # 60 rows, 12 seen by each predictor at most: at least 36 rows that neither saw
    assert set(out) == {"scores", "predictor-", "random-"}
    for name in ("predictor-", "random-"):
        rho, recall = out[name]
        assert -1.0 <= rho <= 1.0 and 0.0 <= recall <= 1.0
    again = ranking._survivorship(
        trained, "svr", v, v[:, :4], numeric, drawn_rows, reached, v[:, -1], r=4, h=8, w=1, floor=-np.inf, seed=3
    )
    np.testing.assert_array_equal(again["scores"]["random"], out["scores"]["random"])  # seeded draw
    too_few = ranking._survivorship(
        trained,
        "svr",
        v[:15],
        v[:15, :4],
        numeric[:15],
        np.arange(15),
        np.arange(8, 14),
        v[:15, -1],
        r=4,
        h=8,
        w=1,
        floor=-np.inf,
        seed=3,
    )
    assert set(too_few) == {"scores"}  # 15 rows less the 6 survivors leave 9 unseen at most: no cells
