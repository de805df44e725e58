"""Stopping policies on synthetic and recorded curves, and the prediction service."""

from __future__ import annotations

import warnings

import dimod
import numpy as np
import pytest
from sklearn.base import BaseEstimator, RegressorMixin
from sklearn.svm import SVR

from qhpo.curves import read_curve_table
from qhpo.policies import (
    POLICY_NAMES,
    Decision,
    DecisionPointPolicy,
    NoStopping,
    PredictionService,
    PredictiveHalving,
    StoppingPolicy,
    TrialStatus,
    TrialView,
    Verdict,
    make_policy,
    rung_epochs,
)
from qhpo.replay import PolicyAgent, simulate


def synthetic_curves(n: int = 40, epochs: int = 40, seed: int = 0, mode: str = "max") -> np.ndarray:
    """Saturating curves ``a_i (1 - exp(-t / tau_i))`` plus noise; loss curves for ``min``."""
    rng = np.random.default_rng(seed)
    plateau = rng.uniform(0.3, 0.9, size=n)
    tau = rng.uniform(3, 12, size=n)
    t = np.arange(1, epochs + 1)
    curves = plateau[:, None] * (1 - np.exp(-t[None, :] / tau[:, None])) + rng.normal(0, 0.005, size=(n, epochs))
    return curves if mode == "max" else 1.0 - curves


def replay(policy, curves, params=None):
    params = params if params is not None else [{"x": float(i)} for i in range(len(curves))]
    return simulate(curves, PolicyAgent(policy, curves, params))


class RaisingSampler(dimod.Sampler):
    """A real dimod sampler whose annealer is down."""

    parameters: dict = {"num_reads": []}
    properties: dict = {}

    def sample(self, bqm, **parameters):
        raise RuntimeError("annealer unreachable")


def test_registry_names_and_errors():
    assert POLICY_NAMES == ("none", "one-epoch", "baker", "poster", "qhpo", "qhpo-stop")
    assert isinstance(make_policy("none", max_epochs=5), NoStopping)
    stop = make_policy("qhpo-stop", max_epochs=200)
    assert isinstance(stop, PredictiveHalving) and stop.name == "qhpo-stop" and not stop.resumes
    assert make_policy("qhpo", max_epochs=200).resumes and not make_policy("qhpo", max_epochs=200, resume=False).resumes
    with pytest.raises(ValueError, match="never resumes"):
        make_policy("qhpo-stop", max_epochs=10, resume=True)
    assert isinstance(make_policy("poster", max_epochs=50), DecisionPointPolicy)
    assert isinstance(make_policy("qhpo", max_epochs=200), PredictiveHalving)
    with pytest.raises(ValueError, match="name must be one of"):
        make_policy("hyperbandit", max_epochs=10)
    with pytest.raises(ValueError, match="creates its own configurations"):
        make_policy("swift-hyperband", max_epochs=10)
    with pytest.raises(ValueError, match="keep_fraction"):
        make_policy("poster", max_epochs=10, keep_fraction=0.0)
    with pytest.raises(ValueError, match="max_epochs"):
        make_policy("qhpo", max_epochs=0)


def test_rungs_follow_the_reduction_factor():
    assert rung_epochs(200, 10, 3) == (10, 30, 90)
    assert make_policy("qhpo", max_epochs=200).decision_epochs() == (10, 20, 40, 80, 160)
    assert make_policy("qhpo", max_epochs=200, reduction_factor=3).decision_epochs() == (10, 30, 90)
    assert make_policy("poster", max_epochs=200).decision_epochs() == (100,)


def test_none_never_stops():
    out = replay(NoStopping(max_epochs=40), synthetic_curves())
    assert out.complete.all() and out.cost == 40 * 40


@pytest.mark.parametrize("name", ["poster", "qhpo"])
@pytest.mark.parametrize("mode", ["max", "min"])
def test_predictive_policies_save_epochs_and_keep_the_best(name, mode):
    curves = synthetic_curves(mode=mode)
    sign = 1 if mode == "max" else -1
    runs = [
        replay(make_policy(name, max_epochs=40, mode=mode, random_state=3, min_completed=5), curves) for _ in range(2)
    ]
    first, second = runs
    np.testing.assert_array_equal(first.epochs_trained, second.epochs_trained)  # deterministic for a seed
    assert first.cost < 0.8 * curves.size
    assert first.complete[np.argmax(sign * curves[:, -1])]
    stopped = first.epochs_trained[~first.complete]
    policy = make_policy(name, max_epochs=40, mode=mode)
    assert set(stopped.tolist()) <= set(policy.decision_epochs())
    assert first.complete[:5].all()  # the startup trials run to the end


def test_policy_answers_continue_without_enough_completed_trials():
    policy = make_policy("qhpo", max_epochs=40, min_completed=5)
    trials = [TrialView(i, [0.1] * 40, status=TrialStatus.COMPLETE) for i in range(3)]
    trial = TrialView(9, [0.01] * policy.decision_epochs()[0])
    verdict = policy.decide(trial, trials + [trial])
    assert verdict.decision == Decision.CONTINUE and not verdict.predictive and verdict.epoch == trial.epochs


def test_qhpo_policy_on_the_recorded_table(curve_table_path):
    table = read_curve_table(curve_table_path)
    rows = np.random.default_rng(5).permutation(table.n_trials)[:60]
    drawn = table.take(rows)
    outs = []
    for _ in range(2):
        policy = make_policy("qhpo", max_epochs=table.epochs, random_state=5)
        outs.append(simulate(drawn.curves, PolicyAgent(policy, drawn.curves, drawn.param_rows())))
    np.testing.assert_array_equal(outs[0].epochs_trained, outs[1].epochs_trained)
    finals = drawn.final_values
    assert outs[0].cost < 0.5 * drawn.curves.size
    assert finals.max() - finals[outs[0].complete].max() < 0.01


def test_service_refits_as_curves_accumulate():
    curves = synthetic_curves(n=60)
    service = PredictionService("svr", random_state=0, min_curves=5, growth=2.0, step=100)
    assert service.predict(10, curves[:2]) is None  # no curves yet
    fits = []
    for n in range(5, 61):
        service.update(curves[:n])
        mean, std = service.predict(10, curves[:3])
        assert mean.shape == (3,) and np.all(std > 0)
        fits.append(service.n_fits)
    assert fits[0] == 1 and fits[-1] == 4  # refits at 5, 10, 20, 40 curves
    service.update(curves)
    mean = service.predict(10, curves)[0]
    assert np.corrcoef(mean, curves[:, -1])[0, 1] > 0.9


def test_relative_service_predicts_the_change():
    curves = synthetic_curves(n=40)
    service = PredictionService("svr", random_state=0, relative=True)
    service.update(curves)
    mean, _ = service.predict(20, curves)
    assert np.mean(np.abs(mean - curves[:, -1])) < 0.05


def test_background_service_never_blocks_and_serves_the_last_model():
    curves = synthetic_curves(n=30)
    service = PredictionService("svr", background=True, random_state=0)
    service.update(curves)
    first = service.predict(10, curves[:2])  # queues the fit, answers at once
    assert first is None or first[0].shape == (2,)
    assert service.wait(timeout=60)
    mean, std = service.predict(10, curves[:2])
    assert mean.shape == (2,) and service.ready(10)
    service.close()


def test_failing_fits_are_counted_and_close_leaves_nothing_pending():
    broken = synthetic_curves(n=20)
    params = np.full((20, 1), np.nan)  # no model can read these features, not even the classical SVR
    service = PredictionService("svr", background=True, random_state=0, hyperparameters=True)
    service.update(broken, params)
    for t in (5, 10, 5):
        assert service.predict(t, broken[:2], params[:2]) is None  # never a model: the trial continues
        assert service.wait(timeout=60)
    assert not service.fitted and service.n_fits == 0 and service.n_failed_fits == 3
    assert "NaN" in service.last_fit_error

    curves = synthetic_curves(n=40)
    params = np.arange(40.0)[:, None]
    service.update(curves, params)
    for t in range(3, 30):  # queues one fit per decision epoch
        service.predict(t, curves[:1], params[:1])
    service.close()
    assert service.wait(timeout=0)  # nothing pending after close: returns at once
    assert service.predict(12, curves[:1], params[:1]) is None or service.fitted  # a later fit starts a new worker
    assert service.wait(timeout=60) and service.ready(12) and service.fitted
    service.close()


def test_failing_annealer_falls_back_to_svr_with_one_warning():
    curves = synthetic_curves(n=20)
    service = PredictionService("qsvr", sampler=RaisingSampler(), random_state=0, growth=1.01, step=1)
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        for n in (10, 15, 20):
            service.update(curves[:n])
            for t in (5, 10):
                mean, _ = service.predict(t, curves[:3])
                assert np.all(np.isfinite(mean))
    fallbacks = [w for w in caught if "using the classical SVR" in str(w.message)]
    assert len(fallbacks) == 1 and "annealer unreachable" in str(fallbacks[0].message)
    assert service.active_model == "svr" and service.n_fits == 6


def test_background_fallback_keeps_answering():
    curves = synthetic_curves(n=20)
    policy = make_policy(
        "qhpo-stop",  # predicts at the rung, so the failing annealer is met during the replay
        max_epochs=40,
        predictor="qsvr",
        sampler=RaisingSampler(),
        background=True,
        random_state=1,
        min_completed=5,
    )
    with warnings.catch_warnings(record=True):
        warnings.simplefilter("always")
        out = replay(policy, curves)
        policy.service.wait(timeout=60)
    assert policy.service.active_model == "svr"
    assert out.complete.sum() >= 5


def test_qsvr_predictor_drives_the_poster_policy():
    curves = synthetic_curves(n=24, epochs=20, seed=2)
    policy = make_policy("poster", max_epochs=20, predictor="qsvr", random_state=0, min_completed=8)
    with warnings.catch_warnings():
        warnings.simplefilter("error", RuntimeWarning)  # no fallback: the annealer itself works
        out = replay(policy, curves)
    assert policy.service.active_model == "qsvr" and policy.service.n_fits >= 1
    assert out.cost < curves.size and out.complete[np.argmax(curves[:, -1])]


@pytest.mark.parametrize("name", ["poster", "qhpo-stop"])
def test_qsvr_ensemble_predictor_drives_the_policies(name):
    curves = synthetic_curves(n=16, epochs=12, seed=4)
    policy = make_policy(name, max_epochs=12, predictor="qsvr-ensemble", random_state=0, min_completed=6)
    with warnings.catch_warnings():
        warnings.simplefilter("error", RuntimeWarning)
        out = replay(policy, curves)
    assert policy.service.active_model == "qsvr-ensemble" and policy.service.n_fits >= 1
    assert out.cost < curves.size


def test_dwave_sampler_without_a_token_falls_back(monkeypatch, tmp_path):
    empty = tmp_path / "dwave.conf"
    empty.write_text("")
    monkeypatch.delenv("DWAVE_API_TOKEN", raising=False)
    monkeypatch.setenv("DWAVE_CONFIG_FILE", str(empty))
    curves = synthetic_curves(n=12, epochs=10)
    service = PredictionService("qsvr", sampler="dwave", random_state=0)
    service.update(curves)
    with pytest.warns(RuntimeWarning, match="using the classical SVR"):
        mean, std = service.predict(5, curves[:2])
    assert service.active_model == "svr" and mean.shape == (2,) and np.all(std > 0)


def test_diverged_curves_end_at_their_first_nan_and_never_train_the_predictor():
    name = "poster"  # qhpo's own pool is tested below
    curves = synthetic_curves(n=30)
    curves[8, 1:] = np.nan  # diverges at its second epoch
    curves[2, -3:] = np.inf  # a startup trial that breaks three epochs before the end
    policy = make_policy(name, max_epochs=40, random_state=0, min_completed=5)
    out = replay(policy, curves)
    # the replay ends a diverged trial at its first non-finite epoch, which counts as trained
    assert not out.complete[8] and out.epochs_trained[8] == 2
    assert not out.complete[2] and out.epochs_trained[2] == 38
    views = [
        TrialView(
            i,
            curves[i, : out.epochs_trained[i]],
            status=TrialStatus.COMPLETE if out.complete[i] else TrialStatus.STOPPED,
        )
        for i in range(30)
    ]
    policy.sync(views)
    assert policy.service.n_curves == int(out.complete.sum()) > 0
    assert np.isfinite(policy.service._curves).all()
    # a policy asked about a non-finite prefix directly still stops it
    broken = TrialView(99, curves[8, : policy.decision_epochs()[0]])
    assert policy.decide(broken, views + [broken]).decision == Decision.STOP


def test_qhpo_stops_diverged_curves_and_floors_huge_values():
    curves = synthetic_curves(n=30, mode="min")
    curves[8, 1:] = np.nan  # diverges after its first epoch
    curves[3, 5:] = 1e16  # a finite but exploding loss, as recorded just before a divergence
    policy = make_policy("qhpo", max_epochs=40, mode="min", random_state=0)
    out = replay(policy, curves)
    assert not out.complete[8] and out.epochs_trained[8] == 2  # the replay ends it at its first NaN
    assert not out.complete[3]
    broken = TrialView(99, curves[8, : policy.decision_epochs()[0]])
    assert policy.decide(broken, [broken]).decision == Decision.STOP  # asked directly, qhpo stops it too
    finals = curves[:, -1]
    regret = finals[out.complete].min() - np.nanmin(finals)
    assert regret < 0.1 * (np.nanmax(finals[finals < 1]) - np.nanmin(finals))  # the huge loss does not squash the rest


def _qhpo_decisions_at_second_rung(predictor="svr"):
    """Twenty trials at the third rung and ten at the second, on synthetic curves (qhpo-stop
    predicts at the rung; qhpo leaves the prediction to promote())."""
    curves = synthetic_curves(n=30)
    policy = make_policy("qhpo-stop", max_epochs=40, predictor=predictor, random_state=0)
    t = policy.decision_epochs()[1]
    ahead = [
        TrialView(i, curves[i, : policy.decision_epochs()[2]], {"x": float(i)}, TrialStatus.RUNNING) for i in range(20)
    ]
    here = [TrialView(i, curves[i, :t], {"x": float(i)}) for i in range(20, 30)]
    return curves, policy, t, here, [policy.decide(view, ahead + here) for view in here]


@pytest.mark.parametrize(("name", "dropped"), [("qhpo", Decision.PAUSE), ("qhpo-stop", Decision.STOP)])
def test_qhpo_keeps_a_clearly_good_trial_and_pauses_or_stops_a_clearly_bad_one(name, dropped):
    curves = synthetic_curves(n=30)
    policy = make_policy(name, max_epochs=40, random_state=0)
    t = policy.decision_epochs()[0]
    others = [TrialView(i, curves[i, :t]) for i in range(29)]
    good = TrialView(98, np.full(t, curves[:, :t].max() + 0.1))
    bad = TrialView(99, np.full(t, curves[:, :t].min() - 0.1))
    assert policy.decide(good, others + [good]).decision == Decision.CONTINUE
    assert policy.decide(bad, others + [bad]).decision == dropped


def test_verdict_carries_the_prediction_and_cut_off_it_rested_on():
    curves, policy, t, here, verdicts = _qhpo_decisions_at_second_rung()
    predicted = [v for v in verdicts if v.predictive]
    assert predicted, "trials outside the observed cut-off are judged on a prediction"
    for verdict in verdicts:
        assert verdict.epoch == t and verdict.threshold is not None
        if verdict.predictive:
            assert (verdict.decision == Decision.CONTINUE) == (verdict.predicted >= verdict.threshold)
            assert "predicted value at epoch" in verdict.reason
        else:
            assert verdict.decision == Decision.CONTINUE and "ranks within" in verdict.reason
    stop = next(v for v in verdicts if v.decision == Decision.STOP)
    record = stop.record("qhpo-stop")
    assert record["predicted_final"] == stop.predicted and record["threshold"] == stop.threshold
    assert record["reason"].startswith(f"stopped by policy 'qhpo-stop' at epoch {t}: observed value")
    # the same inputs give the same verdicts
    assert [v.decision for v in _qhpo_decisions_at_second_rung()[4]] == [v.decision for v in verdicts]


def test_qhpo_trains_on_every_trial_that_reached_the_horizon():
    curves, policy, t, here, verdicts = _qhpo_decisions_at_second_rung()
    # none of the 20 trials ahead is complete: the predictor learned from the running ones
    assert policy.service.n_fits >= 1 and policy.service.n_curves == 30
    assert policy.service.ready(t, policy.decision_epochs()[2])


def _paused_then_overtaken():
    """Trial 1 ranks second of two at the first rung (paused); trials 2 and 3 rank below it."""
    epochs = 20
    good = np.full(epochs, 0.9)
    late = np.r_[0.5, np.full(epochs - 1, 0.95)]  # slow first epoch, then the best of all
    bad = np.full(epochs, 0.1)
    return np.array([good, late, bad, bad]), [{"x": float(i)} for i in range(4)]


def test_promote_resumes_a_paused_trial_once_it_ranks_within_the_best_half():
    curves, params = _paused_then_overtaken()
    policy = make_policy("qhpo", max_epochs=20, min_resource=1, random_state=0)
    assert policy.decision_epochs()[0] == 1
    views = [TrialView(0, curves[0], params[0], TrialStatus.COMPLETE), TrialView(1, curves[1, :1], params[1])]
    assert policy.decide(views[1], views).decision == Decision.PAUSE
    views[1] = TrialView(1, curves[1, :1], params[1], TrialStatus.PAUSED)
    assert policy.promote(views, limit=4) == []  # 2nd of 2: outside the best 1
    views.append(TrialView(2, curves[2, :1], params[2], TrialStatus.PAUSED))
    assert policy.promote(views, limit=4) == []  # 2nd of 3: still outside the best 1
    views.append(TrialView(3, curves[3, :1], params[3], TrialStatus.PAUSED))
    (resumption,) = policy.promote(views, limit=4)  # 2nd of 4: within the best 2
    assert resumption.key == 1 and resumption.epoch == 1
    assert resumption.record("qhpo")["decision"] == "resume"
    assert "ranks within the best 2 of 4 at rung 1" in resumption.reason
    assert policy.promote(views, limit=0) == []
    assert make_policy("qhpo-stop", max_epochs=20, min_resource=1).promote(views, limit=4) == []


def test_a_resumed_trial_continues_from_its_pause_and_its_epochs_count_once():
    curves, params = _paused_then_overtaken()
    policy = make_policy("qhpo", max_epochs=20, min_resource=1, quorum=0, random_state=0)
    agent = PolicyAgent(policy, curves, params)
    out = simulate(curves, agent)
    assert (1, 1) in out.pauses and (1, 1) in out.resumptions
    assert [r.key for r in agent.resumptions] == [1]
    assert out.complete[1] and out.epochs_trained[1] == 20  # one pause, 20 epochs, none trained twice
    assert out.epochs_trained[2] == out.epochs_trained[3] == 1 and not out.complete[2:].any()
    assert out.cost == 20 + 20 + 1 + 1
    stop = simulate(curves, PolicyAgent(make_policy("qhpo-stop", max_epochs=20, min_resource=1), curves, params))
    assert not stop.complete[1] and stop.epochs_trained[1] == 1 and stop.pauses == () and stop.resumptions == ()


@pytest.mark.parametrize("workers", [1, 3])
def test_freeze_thaw_replay_is_deterministic_and_qhpo_stop_never_pauses(workers):
    curves = synthetic_curves(n=60, seed=1)
    params = [{"x": float(i)} for i in range(60)]
    outs = [
        simulate(
            curves, PolicyAgent(make_policy("qhpo", max_epochs=40, random_state=4), curves, params), workers=workers
        )
        for _ in range(2)
    ]
    np.testing.assert_array_equal(outs[0].epochs_trained, outs[1].epochs_trained)
    assert outs[0].pauses == outs[1].pauses and outs[0].resumptions == outs[1].resumptions
    assert outs[0].resumptions, "some paused trial ranks within the best half later"
    for i, epoch in outs[0].resumptions:  # each resumption continues a pause at the same epoch
        assert (i, epoch) in outs[0].pauses
    assert outs[0].complete[np.argmax(curves[:, -1])]
    stop = simulate(
        curves, PolicyAgent(make_policy("qhpo-stop", max_epochs=40, random_state=4), curves, params), workers=workers
    )
    assert stop.pauses == () and stop.resumptions == () and stop.cost <= outs[0].cost


def test_diverged_curves_are_stopped_not_paused():
    policy = make_policy("qhpo", max_epochs=40, random_state=0)
    t = policy.decision_epochs()[0]
    broken = TrialView(99, [0.5] * (t - 1) + [float("nan")])
    assert policy.decide(broken, [broken]).decision == Decision.STOP
    paused_broken = TrialView(99, [0.5] * (t - 1) + [float("inf")], status=TrialStatus.PAUSED)
    assert policy.promote([paused_broken], limit=1) == []


def test_qhpo_pauses_on_the_observed_value_and_resumes_on_the_prediction_into_free_places():
    curves = synthetic_curves(n=30)
    policy = make_policy("qhpo", max_epochs=40, random_state=0)
    t, above = policy.decision_epochs()[1], policy.decision_epochs()[2]
    ahead = [TrialView(i, curves[i, :above], {"x": float(i)}) for i in range(8)]  # went on from rung t
    here = [TrialView(i, curves[i, :t], {"x": float(i)}) for i in range(8, 30)]
    verdicts = [policy.decide(view, ahead + here) for view in here]
    assert not any(v.predictive for v in verdicts)  # the prediction waits for promote()
    assert {v.decision for v in verdicts} <= {Decision.CONTINUE, Decision.PAUSE}
    paused = [TrialView(v.key, v.curve, v.params, TrialStatus.PAUSED) for v in here]
    resumptions = policy.promote(ahead + paused, limit=30)
    # 30 trials at rung t: 15 places, 8 taken by the trials ahead, so at most 7 resume
    assert 0 < len(resumptions) <= 7 and all(r.epoch == t for r in resumptions)
    assert len({r.key for r in resumptions}) == len(resumptions)
    for r in resumptions:
        assert "7 of the 15 places at rung" in r.reason
        if r.predicted is not None:
            assert r.predicted >= r.threshold and "predicted value at epoch" in r.reason
    again = make_policy("qhpo", max_epochs=40, random_state=0)
    assert [r.key for r in again.promote(ahead + paused, limit=30)] == [r.key for r in resumptions]
    assert [r.key for r in policy.promote(ahead + paused, limit=2)] == [r.key for r in resumptions][:2]
    # with every place taken, nothing resumes
    went_on = [TrialView(v.key, curves[v.key, :above], v.params) for v in paused[:7]]
    assert policy.promote(ahead + went_on + paused[7:], limit=30) == []


def _noisy_first_epoch(n: int = 60, epochs: int = 16, seed: int = 0, informative: bool = False):
    """Curves whose value after epoch 1 is noise (or, ``informative``, already the run's
    quality) and from epoch 2 on the run's quality plus a slow rise."""
    rng = np.random.default_rng(seed)
    quality = rng.uniform(0.3, 0.9, size=n)
    t = np.arange(1, epochs + 1)
    curves = quality[:, None] + 0.01 * np.log(t)[None, :]
    curves[:, 0] = quality if informative else rng.uniform(0.0, 1.0, size=n)
    return curves, [{"x": float(q)} for q in quality]


def test_the_first_rung_test_switches_off_a_first_rung_that_ranks_at_random():
    curves, params = _noisy_first_epoch()
    policy = make_policy("qhpo", max_epochs=16, first_rung_test=10, random_state=0)
    assert policy.decision_epochs()[:2] == (1, 2)
    agent = PolicyAgent(policy, curves, params)
    out = simulate(curves, agent)
    views = agent._views()[1]
    assert policy.first_rung_on(views) is False and policy.first_rung_correlation < 0.5
    # no trial is paused or stopped after its first epoch: every one reaches the second rung
    assert all(epoch != 1 for _, epoch in out.pauses) and out.epochs_trained.min() >= 2
    # those that skipped the first rung are judged at the second with two rungs' share:
    # far fewer than half go on, and the best run is kept
    assert (out.epochs_trained > 2).sum() < len(curves) / 2
    assert out.complete[np.argmax(curves[:, -1])]
    # the default decides at epoch 1 on the noise
    plain = simulate(curves, PolicyAgent(make_policy("qhpo", max_epochs=16, random_state=0), curves, params))
    assert any(epoch == 1 for _, epoch in plain.pauses)


def test_the_first_rung_test_keeps_a_first_rung_that_agrees_with_the_second():
    curves, params = _noisy_first_epoch(informative=True)
    policy = make_policy("qhpo", max_epochs=16, first_rung_test=10, random_state=0)
    agent = PolicyAgent(policy, curves, params)
    out = simulate(curves, agent)
    assert policy.first_rung_on(agent._views()[1]) is True and policy.first_rung_correlation > 0.9
    paused_at_first = {i for i, epoch in out.pauses if epoch == 1}
    assert paused_at_first and min(paused_at_first) >= 10  # the testers pass it unjudged, later trials do not
    again = simulate(
        curves, PolicyAgent(make_policy("qhpo", max_epochs=16, first_rung_test=10, random_state=0), curves, params)
    )
    np.testing.assert_array_equal(out.epochs_trained, again.epochs_trained)
    assert out.pauses == again.pauses and out.resumptions == again.resumptions


def test_the_first_rung_test_checks_its_argument_and_needs_two_rungs():
    with pytest.raises(ValueError, match="first_rung_test"):
        make_policy("qhpo", max_epochs=16, first_rung_test=-1)
    assert make_policy("qhpo", max_epochs=2, first_rung_test=10).first_rung_test == 0  # one rung: nothing to test
    assert make_policy("qhpo", max_epochs=2, first_rung_test=10).first_rung_on([]) is True


class GatedSVR(RegressorMixin, BaseEstimator):
    """scikit-learn's SVR whose ``fit`` waits until ``gate`` is set: a background fit that
    lands exactly when the test says."""

    def __init__(self, gate=None):
        self.gate = gate

    def fit(self, X, y):
        if self.gate is not None:
            assert self.gate.wait(30), "the gate was never opened"
        self.model_ = SVR(C=10.0, epsilon=0.01).fit(X, y)
        return self

    def predict(self, X):
        return self.model_.predict(X)


def _late_riser_views():
    """Rung 2 of an 8-epoch rule (rungs 2 and 4): six complete trials (three flat at 0.5 with
    x = 0, three that rise from 0.2 to 0.9 after epoch 2 with x = 1), four stopped at 0.6,
    three paused at 0.15 (x = 0) and one paused late riser at 0.2 (x = 1). 14 trials at the
    rung: 7 places, 6 gone on, so one is free; the late riser ranks outside on its observed
    value and within on its predicted one."""
    flat, riser = [0.5] * 8, [0.1, 0.2, 0.9, 0.9, 0.9, 0.9, 0.9, 0.9]
    views = [TrialView(i, flat, {"x": 0.0}, TrialStatus.COMPLETE) for i in range(3)]
    views += [TrialView(i, riser, {"x": 1.0}, TrialStatus.COMPLETE) for i in range(3, 6)]
    views += [TrialView(i, [0.6, 0.6], {"x": 0.0}, TrialStatus.STOPPED) for i in range(6, 10)]
    views += [TrialView(i, [0.15, 0.15], {"x": 0.0}, TrialStatus.PAUSED) for i in range(10, 13)]
    views.append(TrialView(13, [0.1, 0.2], {"x": 1.0}, TrialStatus.PAUSED))
    return views


def test_a_background_fit_that_lands_after_an_empty_promote_is_read_by_the_next():
    import threading

    gate = threading.Event()
    policy = make_policy(
        "qhpo",
        max_epochs=8,
        min_resource=2,
        first_predicted_rung=0,
        min_horizon_trials=3,
        predictor=GatedSVR(gate),
        background=True,
        random_state=0,
    )
    views = _late_riser_views()
    try:
        assert policy.promote(views, limit=4) == []  # the first fit is still running: no model yet
        version = policy.service.version
        gate.set()
        assert policy.service.wait(30)
        assert policy.service.version == version + 1
        (resumed,) = policy.promote(views, limit=4)  # nothing but the model changed
        assert resumed.key == 13 and resumed.epoch == 2
        assert resumed.predicted is not None and resumed.predicted > 0.6
        assert "predicted value at epoch 4" in resumed.reason and "1 of the 7 places" in resumed.reason
    finally:
        gate.set()
        policy.service.close()


def test_a_trial_held_by_the_start_up_rule_is_marked_in_its_verdict_and_takes_no_place():
    options = dict(max_epochs=8, min_resource=2, first_predicted_rung=0, min_horizon_trials=3, random_state=0)
    held = make_policy("qhpo", min_completed=3, **options)
    early = [TrialView(0, [0.1, 0.2]), TrialView(1, [0.3, 0.3])]
    verdict = held.verdict(early[0], early)
    assert verdict.decision == Decision.CONTINUE and not verdict.ranked and verdict.kept
    assert "must complete before any stop" in verdict.reason
    ranked = make_policy("qhpo", **options).verdict(early[0], early)
    assert ranked.decision == Decision.PAUSE and ranked.ranked  # ranked: outside the best 1 of 2

    # Trial 14 went on from rung 2. Marked unranked there, it leaves the free place to the paused
    # late riser; unmarked, it took the last place and nothing resumes. Two policy objects (two
    # processes) answer alike: the mark travels with the view, not in a policy's memory.
    views = _late_riser_views()
    went_on = [0.3, 0.3, 0.3, 0.3]
    marked = views + [TrialView(14, went_on, {"x": 0.0}, TrialStatus.RUNNING, unranked=frozenset({2}))]
    unmarked = views + [TrialView(14, went_on, {"x": 0.0}, TrialStatus.RUNNING)]
    for policy in (make_policy("qhpo", **options), make_policy("qhpo", **options)):
        assert [r.key for r in policy.promote(marked, limit=4)] == [13]
        assert policy.promote(unmarked, limit=4) == []


def test_a_late_riser_on_a_min_table_resumes_on_its_prediction_as_on_a_max_table():
    # the same study as a loss (1 - value, lower is better): the predictor must learn from the
    # negated curves, or it predicts the late riser's loss to rise and leaves it paused
    options = dict(max_epochs=8, min_resource=2, first_predicted_rung=0, min_horizon_trials=3, random_state=0)
    views = [TrialView(v.key, [1.0 - c for c in v.curve], v.params, v.status, v.unranked) for v in _late_riser_views()]
    (resumed,) = make_policy("qhpo", mode="min", **options).promote(views, limit=4)
    assert resumed.key == 13 and "predicted value at epoch 4" in resumed.reason
    assert resumed.predicted < 0.4 and resumed.predicted <= resumed.threshold  # a loss: lower is better
    (on_max,) = make_policy("qhpo", **options).promote(_late_riser_views(), limit=4)
    assert on_max.key == 13 and abs((1.0 - resumed.predicted) - on_max.predicted) < 1e-9


def test_places_at_a_rung_floor_m_over_eta_and_a_running_trial_at_the_rung_takes_one():
    from qhpo.policies._rungs import RungGroup

    at = [TrialView(i, [0.5, 0.5], status=TrialStatus.PAUSED) for i in range(5)]
    assert RungGroup(2, tuple(at), 2.0).places() == 2  # floor(5 / 2), not 3
    assert RungGroup(2, tuple(at[:1]), 2.0).places() == 1  # never fewer than one
    running = TrialView(9, [0.5, 0.5], status=TrialStatus.RUNNING)  # exactly at the rung, going on
    group = RungGroup(2, (*at, running), 2.0)
    assert group.gone_on() == 1 and group.free_places() == 2
    held = TrialView(9, [0.5, 0.5], status=TrialStatus.RUNNING, unranked=frozenset({2}))
    assert RungGroup(2, (*at, held), 2.0).gone_on() == 0
    assert RungGroup(2, (*at, running), 4.0, "unjudged").places() == 1  # eta**2 = 4 for the unjudged


def test_trials_that_passed_the_first_rung_unjudged_share_two_rungs_worth_at_the_second():
    curves, params = _noisy_first_epoch(n=40, informative=True)
    policy = make_policy("qhpo", max_epochs=16, min_resource=1, first_rung_test=12, random_state=0)
    r1 = policy.rungs[1]
    testers = [TrialView(i, curves[i, :r1], params[i], TrialStatus.PAUSED) for i in range(12)]
    assert policy.first_rung_on(testers) is True  # an informative first epoch: the rung stays
    # 12 testers paused at the second rung, none gone on: floor(12 / eta**2) = 3 resume, not 12 / eta = 6
    assert len(policy.promote(testers, limit=12)) == 3


class _PausesAlways(StoppingPolicy):
    def decide(self, trial, trials):
        return Verdict(Decision.PAUSE, trial.epochs, "always")


def test_a_pause_from_a_policy_that_does_not_resume_is_a_stop():
    view = TrialView(0, [0.1])
    assert _PausesAlways(max_epochs=4).verdict(view, [view]).decision == Decision.STOP
