"""PredictiveScheduler on a real local Ray: the same decisions as the replay, pauses, state."""

from __future__ import annotations

import os

import numpy as np
import pytest

pytest.importorskip("ray")

import ray  # noqa: E402

from qhpo.curves import read_curve_table  # noqa: E402
from qhpo.policies import Decision, StoppingPolicy, TrialStatus, TrialView, Verdict, make_policy  # noqa: E402
from qhpo.ray import PredictiveScheduler, SchedulerStateCallback, replay_on_ray  # noqa: E402
from qhpo.replay import PolicyAgent, simulate  # noqa: E402

pytestmark = pytest.mark.ray


@pytest.fixture(scope="module", autouse=True)
def local_ray():
    os.environ["RAY_USAGE_STATS_ENABLED"] = "0"
    ray.init(num_cpus=2, include_dashboard=False, log_to_driver=False)
    yield
    ray.shutdown()


@pytest.fixture(scope="module")
def table(curve_table_path):
    # The first 16 recorded CIFAR-10 curves, cut at 20 epochs: big enough for the predictor
    # to stop trials, small enough to replay in seconds.
    return read_curve_table(curve_table_path).take(range(16)).truncate(20)


def _qhpo_policy(table, background=False):
    return make_policy(
        "qhpo",
        max_epochs=table.epochs,
        mode=table.mode,
        predictor="svr",
        random_state=0,
        background=background,
        min_completed=5,
    )


def _optuna_epochs(table) -> np.ndarray:
    """Epochs each row trains in a real Optuna study pruned by PredictivePruner, rows in order."""
    import optuna

    from qhpo.optuna import PredictivePruner

    optuna.logging.set_verbosity(optuna.logging.WARNING)
    study = optuna.create_study(direction="maximize", pruner=PredictivePruner(_qhpo_policy(table)))
    trained = np.zeros(table.n_trials, dtype=int)
    for row, curve in enumerate(table.curves):
        trial = study.ask()
        for epoch, value in enumerate(curve, start=1):
            trial.report(float(value), epoch)
            trained[row] = epoch
            if epoch < table.epochs and trial.should_prune():
                study.tell(trial, state=optuna.trial.TrialState.PRUNED)
                break
        else:
            study.tell(trial, float(curve[-1]))
    return trained


def test_scheduler_makes_the_replay_and_optuna_decisions(table):
    simulated = simulate(table.curves, PolicyAgent(_qhpo_policy(table), table.curves, table.param_rows()), workers=1)
    on_ray = replay_on_ray(table.curves, _qhpo_policy(table), params=table.param_rows(), workers=1, time_scale=1e-3)
    assert simulated.cost < table.n_trials * table.epochs  # the policy did stop trials
    np.testing.assert_array_equal(on_ray.epochs_trained, simulated.epochs_trained)
    np.testing.assert_array_equal(on_ray.complete, simulated.complete)
    np.testing.assert_array_equal(on_ray.epochs_trained, _optuna_epochs(table))
    assert len(on_ray.decide_seconds) > 0


def test_background_refits_on_two_workers(table):
    policy = _qhpo_policy(table, background=True)
    outcome = replay_on_ray(table.curves, policy, params=table.param_rows(), workers=2, time_scale=1e-3)
    policy.service.wait(timeout=30)
    assert outcome.complete.sum() >= 5  # min_completed trials always finish
    assert np.all((outcome.epochs_trained >= 1) & (outcome.epochs_trained <= table.epochs))
    assert np.array_equal(outcome.complete, outcome.epochs_trained == table.epochs)
    assert policy.service.n_fits >= 1
    assert outcome.measured_seconds > 0 and outcome.wallclock == pytest.approx(outcome.measured_seconds / 1e-3)


class _PauseAllPromoteBest(StoppingPolicy):
    """Pauses every trial after epoch 2; once all four are paused, promotes the best one."""

    name = "pause-all"

    def decide(self, trial: TrialView, trials) -> Verdict:
        return Verdict(Decision.PAUSE, trial.epochs, "every trial waits at epoch 2")

    def decision_epochs(self):
        return (2,)

    def promote(self, trials):
        if any(t.status == TrialStatus.COMPLETE for t in trials):
            return []
        paused = [t for t in trials if t.status == TrialStatus.PAUSED]
        return [max(paused, key=lambda t: t.curve[-1]).key] if len(paused) == 4 else []


def test_paused_trial_resumes_from_its_checkpoint(table):
    curves = table.curves[:4, :5]
    outcome = replay_on_ray(curves, _PauseAllPromoteBest(max_epochs=5), workers=1, time_scale=1e-3)
    best = int(np.argmax(curves[:, 1]))
    expected = np.full(4, 2)
    expected[best] = 5
    np.testing.assert_array_equal(outcome.epochs_trained, expected)
    np.testing.assert_array_equal(outcome.complete, np.arange(4) == best)
    # One PAUSE per trial: the promoted trial went on from epoch 3, it did not start over.
    assert sorted(outcome.decisions) == [(row, 2, "pause") for row in range(4)]


class _StopBelowFirst(StoppingPolicy):
    def decide(self, trial, trials):
        return Verdict(Decision.STOP if trial.curve[-1] < 0.5 else Decision.CONTINUE, trial.epochs)


def test_state_round_trip(tmp_path):
    scheduler = PredictiveScheduler(_StopBelowFirst(max_epochs=3), metric="acc")
    scheduler.set_state(
        {
            "version": 1,
            "metric": "acc",
            "mode": "max",
            "decisions": [["a", 1, "continue"]],
            "trials": [
                {"key": "a", "curve": [0.4, 0.6, 0.7], "params": {"lr": 0.1}, "status": "complete"},
                {"key": "b", "curve": [0.2], "params": {"lr": 1.0}, "status": "stopped"},
            ],
        }
    )
    scheduler.save(str(tmp_path / "state.json"))
    restored = PredictiveScheduler("qhpo", max_epochs=3)
    SchedulerStateCallback(restored).set_state(SchedulerStateCallback(scheduler).get_state())
    assert restored.get_state() == scheduler.get_state()
    again = PredictiveScheduler("none", max_epochs=3)
    again.restore(str(tmp_path / "state.json"))
    views = again.trial_views()
    assert [v.key for v in views] == ["a", "b"]
    assert views[0].status == TrialStatus.COMPLETE and list(views[0].curve) == [0.4, 0.6, 0.7]
    assert again.metric == "acc" and again.decisions_ == [("a", 1, "continue")]


def test_arguments_are_checked():
    with pytest.raises(ValueError, match="max_epochs"):
        PredictiveScheduler("qhpo")
    with pytest.raises(ValueError, match="mode"):
        PredictiveScheduler("qhpo", max_epochs=5, mode="up")
    with pytest.raises(ValueError, match="disagrees"):
        PredictiveScheduler(_StopBelowFirst(max_epochs=3), max_epochs=4)
    with pytest.raises(ValueError, match="scheduler"):
        SchedulerStateCallback("not a scheduler")


class _Broken(StoppingPolicy):
    def decide(self, trial, trials):
        raise RuntimeError("no model")


def test_a_failing_policy_continues_and_curves_follow_epochs():
    from ray.tune.experiment import Trial

    scheduler = PredictiveScheduler(_Broken(max_epochs=4), metric="acc", epoch_attr="epoch")
    trial = Trial("trainable", config={"lr": 0.1, "__qhpo_row": 3}, trial_id="t1", stub=True)
    scheduler.on_trial_add(None, trial)
    with pytest.warns(RuntimeWarning, match="no model"):
        assert scheduler.on_trial_result(None, trial, {"acc": 0.3, "epoch": 1}) == "CONTINUE"
    assert scheduler.on_trial_result(None, trial, {"acc": 0.4, "epoch": 2}) == "CONTINUE"
    # A trial restored from its epoch-1 checkpoint reports epoch 2 again: the curve is rewritten.
    assert scheduler.on_trial_result(None, trial, {"acc": 0.45, "epoch": 2}) == "CONTINUE"
    assert scheduler.on_trial_result(None, trial, {"acc": float("nan"), "epoch": 3, "diverged": "nan loss"}) == "STOP"
    (view,) = scheduler.trial_views()
    assert view.params == {"lr": 0.1}  # bookkeeping keys are not hyperparameters
    assert list(view.curve[:2]) == [0.3, 0.45] and view.status == TrialStatus.FAILED


def test_bench_replays_on_ray(curve_table_path, tmp_path):
    import json

    from qhpo.cli import main

    out = tmp_path / "bench.json"
    code = main(
        [
            "bench",
            "--curves",
            str(curve_table_path),
            "--policies",
            "none",
            "--trials",
            "3",
            "--seeds",
            "1",
            "--workers",
            "3",
            "--backend",
            "ray",
            "--json",
            str(out),
        ]
    )
    assert code == 0
    none = json.loads(out.read_text())["policies"]["none"]
    assert none["cost_fraction_mean"] == 1.0
    # Three trials of 200 epochs on three workers: measured on Ray, never faster than the ideal 200 epochs.
    assert none["wallclock_mean"] >= 200
