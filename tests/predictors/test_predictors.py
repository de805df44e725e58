"""FinalValuePredictor on the recorded CIFAR-10 curves."""

from __future__ import annotations

import numpy as np
import pytest
from scipy.stats import spearmanr

from qhpo.curves import read_curve_table
from qhpo.predictors import FinalValuePredictor, classical_svr
from qhpo.qsvr import QSVR, box_bound


@pytest.fixture(scope="module")
def table(curve_table_path):
    return read_curve_table(curve_table_path)


def test_classical_svr_matches_the_qsvr_problem():
    svr, q = classical_svr(), QSVR()
    assert svr.gamma == q.gamma and svr.epsilon == q.epsilon
    assert svr.C == pytest.approx(box_bound(q.K, q.base, q.exponent_offset))


def test_svr_predicts_final_accuracy_with_held_out_std(table):
    rng = np.random.default_rng(0)
    order = rng.permutation(table.n_trials)
    train, test = order[:40], order[40:]
    p = FinalValuePredictor("svr", t=50, random_state=0).fit(table.curves[train], table.final_values[train])
    mean, std = p.predict(table.curves[test], return_std=True)
    assert mean.shape == std.shape == (test.size,)
    assert spearmanr(mean, table.final_values[test])[0] > 0.85
    # The std comes from held-out residuals: it is of the order of the real error.
    rmse = np.sqrt(np.mean((mean - table.final_values[test]) ** 2))
    assert 0.3 * rmse < std[0] < 3.0 * rmse
    assert p.fit_seconds_ > 0


def test_only_the_first_t_epochs_are_read(table):
    p = FinalValuePredictor("svr", t=10).fit(table.curves[:30], table.final_values[:30])
    changed = table.curves[30:35].copy()
    changed[:, 10:] = 0.0
    np.testing.assert_allclose(p.predict(changed), p.predict(table.curves[30:35, :10]))


def test_hyperparameter_and_difference_features(table):
    params = table.numeric_params()
    p = FinalValuePredictor("svr", t=20, differences=True, hyperparameters=True)
    p.fit(table.curves[:40], table.final_values[:40], params[:40])
    assert p.predict(table.curves[40:45], params[40:45]).shape == (5,)
    with pytest.raises(ValueError, match="params are required"):
        p.predict(table.curves[40:45])


def test_qsvr_models_give_a_mean_and_a_model_spread(table):
    p = FinalValuePredictor("qsvr-ensemble", t=50, sampler="steepest", num_reads=20, random_state=1)
    p.fit(table.curves[:50], table.final_values[:50])
    mean, std = p.predict(table.curves[50:], return_std=True)
    assert spearmanr(mean, table.final_values[50:])[0] > 0.8
    assert np.all(std > 0) and np.ptp(std) > 0  # spread of members differs per trial
    p = FinalValuePredictor("qsvr", t=50, sampler="steepest", num_reads=20, random_state=1)
    p.fit(table.curves[:15], table.final_values[:15])  # no points outside the QUBO: cross-validated error
    assert np.isfinite(p.residual_rms_) and p.residual_rms_ > 0


def test_estimator_object_is_cloned_not_mutated(table):
    model = QSVR(sampler="steepest", num_reads=5, random_state=0)
    p = FinalValuePredictor(model, t=5).fit(table.curves[:25], table.final_values[:25])
    assert not hasattr(model, "dual_coef_") and hasattr(p.estimator_, "dual_coef_")


@pytest.mark.parametrize(
    "kwargs, match",
    [({"model": "gp", "t": 5}, "model must be one of"), ({"model": "svr", "t": 0}, "t must be")],
)
def test_bad_arguments(kwargs, match):
    with pytest.raises(ValueError, match=match):
        FinalValuePredictor(**kwargs)


def test_bad_data(table):
    p = FinalValuePredictor("svr", t=50)
    with pytest.raises(ValueError, match="epochs"):
        p.fit(table.curves[:10, :20], table.final_values[:10])
    with pytest.raises(ValueError, match="y has 9 values"):
        p.fit(table.curves[:10], table.final_values[:9])
    bad = table.curves[:10].copy()
    bad[3, 2] = np.nan
    with pytest.raises(ValueError, match="finite"):
        p.fit(bad, table.final_values[:10])
    with pytest.raises(RuntimeError, match="before fit"):
        p.predict(table.curves[:2])


def test_sampler_objects_are_shared_not_copied(table):
    import dimod

    sampler = dimod.RandomSampler()
    p = FinalValuePredictor("qsvr", t=5, sampler=sampler, num_reads=10, random_state=0)
    p.fit(table.curves[:12], table.final_values[:12])  # <= 20 points: cross-validated refits
    assert p.estimator_.sampler is sampler
