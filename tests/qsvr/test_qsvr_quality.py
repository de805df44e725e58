"""Prediction quality of the QSVR on the recorded CIFAR-10 curves (25 % of 200 epochs observed).

Both comparisons use the evaluation behind ``qhpo predict``, with the same random splits
for every model, simulated annealing with its default number of reads, and few splits to
stay cheap; ``benchmarks/qsvr.py`` repeats them over more splits.
"""

from __future__ import annotations

import pytest

from qhpo.curves import read_curve_table
from qhpo.predictors import evaluate_predictor


@pytest.fixture(scope="module")
def table(curve_table_path):
    return read_curve_table(curve_table_path)


@pytest.mark.slow
def test_qsvr_with_simulated_annealing_ranks_like_the_classical_svr(table):
    common = dict(at=0.25, train=20, splits=5, seed=0)
    svr = evaluate_predictor(table, model="svr", **common)
    qsvr = evaluate_predictor(table, model="qsvr", sampler="sa", **common)
    assert qsvr["spearman_median"] >= svr["spearman_median"] - 0.03
    assert qsvr["r2_median"] > 0.7


@pytest.mark.slow
def test_ensemble_on_100_trials_beats_the_svr_on_20(table):
    common = dict(at=0.25, splits=3, seed=0)
    svr = evaluate_predictor(table, model="svr", train=20, **common)
    ensemble = evaluate_predictor(table, model="qsvr-ensemble", sampler="sa", train=100, **common)
    assert ensemble["spearman_median"] > svr["spearman_median"]
    assert ensemble["mae_median"] < svr["mae_median"]
