"""PredictiveScheduler on a real local Ray: the same decisions as the replay, pauses, state."""

from __future__ import annotations

import sys
from pathlib import Path

import numpy as np
import pytest

pytest.importorskip("ray")

import ray  # noqa: E402
from ray.tune import Callback  # noqa: E402

from qhpo.curves import (
    read_curve_table,  # noqa: E402
    resolve_curve_table,  # noqa: E402
)
from qhpo.policies import (  # noqa: E402
    Decision,
    Resumption,
    StoppingPolicy,
    TrialStatus,
    TrialView,
    Verdict,
    make_policy,
)
from qhpo.ray import PredictiveScheduler, RunningTrialLimiter, SchedulerStateCallback, replay_on_ray  # noqa: E402
from qhpo.replay import PolicyAgent, simulate  # noqa: E402

pytestmark = pytest.mark.ray

# Ray workers cannot import this test module: its trainables travel by value.
ray.cloudpickle.register_pickle_by_value(sys.modules[__name__])


@pytest.fixture(scope="module", autouse=True)
def _every_test_on_local_ray(local_ray):
    yield


@pytest.fixture(scope="module")
def table(curve_table_path):
    # The first 16 recorded CIFAR-10 curves, cut at 20 epochs: big enough for the predictor
    # to stop trials, small enough to replay in seconds.
    return read_curve_table(curve_table_path).take(range(16)).truncate(20)


def _qhpo_policy(table, background=False, name="qhpo", min_completed=5):
    return make_policy(
        name,
        max_epochs=table.epochs,
        mode=table.mode,
        predictor="svr",
        random_state=0,
        background=background,
        min_completed=min_completed,
    )


def _optuna_epochs(table, name: str) -> np.ndarray:
    """Epochs each row trains in a real Optuna study pruned by PredictivePruner, rows in order."""
    import optuna

    from qhpo.optuna import PredictivePruner

    optuna.logging.set_verbosity(optuna.logging.WARNING)
    study = optuna.create_study(direction="maximize", pruner=PredictivePruner(_qhpo_policy(table, name=name)))
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
    # Stop-only, so that Optuna's pruner (which cannot resume a trial) decides alike.
    simulated = simulate(
        table.curves, PolicyAgent(_qhpo_policy(table, name="qhpo-stop"), table.curves, table.param_rows()), workers=1
    )
    on_ray = replay_on_ray(
        table.curves, _qhpo_policy(table, name="qhpo-stop"), params=table.param_rows(), workers=1, time_scale=1e-3
    )
    assert simulated.cost < table.n_trials * table.epochs  # the policy did stop trials
    np.testing.assert_array_equal(on_ray.epochs_trained, simulated.epochs_trained)
    np.testing.assert_array_equal(on_ray.complete, simulated.complete)
    np.testing.assert_array_equal(on_ray.epochs_trained, _optuna_epochs(table, name="qhpo-stop"))
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


#: Rows of the recorded TaskSet IMDB table: row 850 diverges at epoch 2 (a NaN).
_DIVERGING_ROWS = [414, 406, 112, 923, 850, 175, 358, 538, 688, 576, 416, 407]


def test_ray_replay_pauses_and_resumes_as_the_local_replay(curves_dir):
    # 12 recorded TaskSet curves cut at 20 epochs on 3 workers: the default policy pauses
    # trials and resumes some, and one trial diverges.
    table = read_curve_table(resolve_curve_table("taskset_imdb_1")).take(_DIVERGING_ROWS).truncate(20)
    diverging = _DIVERGING_ROWS.index(850)
    first_nan = int(np.argmax(~np.isfinite(table.curves[diverging])))  # 0-based: the NaN epoch is first_nan + 1
    policy = {"min_completed": 3}
    local = simulate(
        table.curves, PolicyAgent(_qhpo_policy(table, **policy), table.curves, table.param_rows()), workers=3
    )
    on_ray = replay_on_ray(
        table.curves, _qhpo_policy(table, **policy), params=table.param_rows(), workers=3, time_scale=1e-3
    )
    assert local.resumptions, "the table must make the policy resume a paused trial"
    assert on_ray.pauses == local.pauses
    assert on_ray.resumptions == local.resumptions
    np.testing.assert_array_equal(on_ray.epochs_trained, local.epochs_trained)
    np.testing.assert_array_equal(on_ray.complete, local.complete)
    # Every resumed trial went on from its pause: its epochs counted once (the Ray replay
    # counts reports, and raises when a resumed trial repeats an epoch).
    for row, epoch in on_ray.resumptions:
        assert on_ray.epochs_trained[row] > epoch
    assert on_ray.epochs_trained.sum() < table.n_trials * table.epochs
    # The diverged trial ended at its first NaN, that epoch counted, with no decision on it.
    assert on_ray.epochs_trained[diverging] == first_nan + 1 and not on_ray.complete[diverging]
    assert all(row != diverging or epoch < first_nan + 1 for row, epoch, _ in on_ray.decisions)


class _PauseAllPromoteBest(StoppingPolicy):
    """Pauses every trial after epoch 2; once all four are paused, resumes the best one."""

    name = "pause-all"

    @property
    def resumes(self) -> bool:
        return True

    def decide(self, trial: TrialView, trials) -> Verdict:
        return Verdict(Decision.PAUSE, trial.epochs, "every trial waits at epoch 2")

    def decision_epochs(self):
        return (2,)

    def promote(self, trials, *, limit=1):
        if any(t.status == TrialStatus.COMPLETE for t in trials):
            return []
        paused = [t for t in trials if t.status == TrialStatus.PAUSED]
        if len(paused) < 4:
            return []
        best = max(paused, key=lambda t: t.curve[-1])
        return [Resumption(best.key, best.epochs, "the best of four", predicted=best.curve[-1])][:limit]


def _rising(config):
    """Accuracy ``x * (1 - 0.5**epoch)``, checkpointed at every epoch; resumes from its checkpoint."""
    import tempfile

    from ray import tune

    start = 0
    checkpoint = tune.get_checkpoint()
    if checkpoint is not None:
        with checkpoint.as_directory() as folder:
            start = int((Path(folder) / "epoch").read_text())
    for epoch in range(start + 1, 6):
        with tempfile.TemporaryDirectory() as folder:
            (Path(folder) / "epoch").write_text(str(epoch))
            tune.report(
                {"accuracy": config["x"] * (1 - 0.5**epoch), "epoch": epoch, "resumed_from": start},
                checkpoint=tune.Checkpoint.from_directory(folder),
            )


class _Reports(Callback):
    """Every result Ray Tune received: ``(trial id, epoch, resumed_from)``."""

    def __init__(self):
        self.seen: list[tuple[str, int, int]] = []

    def on_trial_result(self, iteration, trials, trial, result, **info):
        self.seen.append((trial.trial_id, int(result["epoch"]), int(result["resumed_from"])))


def test_paused_trial_resumes_from_its_checkpoint(tmp_path):
    from ray import tune

    scheduler = PredictiveScheduler(_PauseAllPromoteBest(max_epochs=5), epoch_attr="epoch", explain=True)
    reports = _Reports()
    xs = [0.6, 0.9, 0.7, 0.8]
    tuner = tune.Tuner(
        tune.with_resources(_rising, {"cpu": 1}),
        param_space={"x": tune.grid_search(xs)},
        tune_config=tune.TuneConfig(metric="accuracy", mode="max", scheduler=scheduler, reuse_actors=True),
        run_config=tune.RunConfig(storage_path=str(tmp_path), verbose=0, callbacks=[reports]),
    )
    tuner.fit()
    views = {v.key: v for v in scheduler.trial_views()}
    best = max(views, key=lambda key: views[key].params["x"])
    assert views[best].params["x"] == 0.9 and views[best].status == TrialStatus.COMPLETE
    # The resumed trial's curve is continuous: epochs 1-5 of one curve, each reported once,
    # epochs 3-5 by the restarted trial that read its epoch-2 checkpoint.
    np.testing.assert_allclose(views[best].curve, [0.9 * (1 - 0.5**e) for e in range(1, 6)])
    assert [(e, start) for key, e, start in reports.seen if key == best] == [(1, 0), (2, 0), (3, 2), (4, 2), (5, 2)]
    # The others were paused at epoch 2, never resumed, and ended as stopped.
    assert sorted(v.status for key, v in views.items() if key != best) == [TrialStatus.STOPPED] * 3
    assert all(v.epochs == 2 for key, v in views.items() if key != best)
    assert sorted(d for key, e, d in scheduler.decisions_ if key == best) == ["pause", "resume"]
    pause, resume = scheduler.decision_records(best)
    assert pause["decision"] == "pause" and resume["decision"] == "resume" and resume["epoch"] == 2
    assert resume["reason"] == "resumed by policy 'pause-all' after epoch 2: the best of four"
    assert resume["predicted_final"] == pytest.approx(0.9 * 0.75)


class _Listed:
    """A Ray Tune searcher that suggests ``{"x": x}`` for each listed ``x``, in order."""

    def __new__(cls, xs):
        from ray.tune.search import Searcher

        class Listed(Searcher):
            def __init__(self):
                super().__init__(metric="accuracy", mode="max")
                self.left = list(xs)

            def suggest(self, trial_id):
                return {"x": self.left.pop(0)} if self.left else Searcher.FINISHED

            def on_trial_complete(self, trial_id, result=None, error=False):
                pass

        return Listed()


class _MostRunning(Callback):
    """The most trials seen running at once."""

    def __init__(self):
        self.most = 0

    def on_step_begin(self, iteration, trials, **info):
        self.most = max(self.most, sum(t.status == "RUNNING" for t in trials))


def test_paused_trials_take_no_place_under_the_running_trial_limit(tmp_path):
    # The policy resumes only once four trials wait paused: with Ray Tune's own limit of two
    # the two paused trials would fill it and the search would wait forever.
    from ray import tune

    scheduler = PredictiveScheduler(_PauseAllPromoteBest(max_epochs=5), epoch_attr="epoch")
    running = _MostRunning()
    tuner = tune.Tuner(
        tune.with_resources(_rising, {"cpu": 0.5}),
        tune_config=tune.TuneConfig(
            metric="accuracy",
            mode="max",
            scheduler=scheduler,
            search_alg=RunningTrialLimiter(_Listed([0.6, 0.9, 0.7, 0.8]), 2, scheduler),
            num_samples=4,
            reuse_actors=True,
        ),
        run_config=tune.RunConfig(storage_path=str(tmp_path), verbose=0, callbacks=[running]),
    )
    tuner.fit()
    views = scheduler.trial_views()
    assert len(views) == 4 and running.most <= 2
    (done,) = [v for v in views if v.status == TrialStatus.COMPLETE]
    assert done.params["x"] == 0.9 and done.epochs == 5
    assert sorted(v.status for v in views if v is not done) == [TrialStatus.STOPPED] * 3
    with pytest.raises(ValueError, match="max_concurrent"):
        RunningTrialLimiter(_Listed([0.5]), 0, scheduler)


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
                {"key": "a", "curve": [0.4, 0.6, 0.7], "params": {"lr": 0.1}, "status": "complete", "unranked": [1]},
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
    assert views[0].unranked == frozenset({1}) and views[1].unranked == frozenset()  # kept with the trial
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


def test_bench_replays_on_ray_by_the_simulated_clock(curve_table_path, tmp_path):
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
            "ray-clock",
            "--json",
            str(out),
        ]
    )
    assert code == 0
    none = json.loads(out.read_text())["policies"]["none"]
    assert none["cost_fraction_mean"] == 1.0
    # Three trials of 200 epochs on three workers: measured on Ray, never faster than the ideal 200 epochs.
    assert none["wallclock_mean"] >= 200


def _train_function(config):
    """Ray Tune's function-trainable pattern: restore from ``tune.get_checkpoint()``, report
    the metric with a checkpoint after every epoch (the epoch count is ``training_iteration``)."""
    import json
    import tempfile

    from ray import tune

    epoch = 0
    checkpoint = tune.get_checkpoint()
    if checkpoint is not None:
        with checkpoint.as_directory() as folder:
            epoch = json.loads((Path(folder) / "state.json").read_text())["epoch"]
    while epoch < 6:
        epoch += 1
        with tempfile.TemporaryDirectory() as folder:
            (Path(folder) / "state.json").write_text(json.dumps({"epoch": epoch}))
            accuracy = config["x"] * (1 - 0.7**epoch)
            tune.report({"accuracy": accuracy, "epoch": epoch}, checkpoint=tune.Checkpoint.from_directory(folder))


def test_ray_tunes_own_pattern_with_the_default_search_and_the_running_trial_limit(tmp_path):
    # Ray Tune's default search (param_space sampled by its BasicVariantGenerator) under
    # RunningTrialLimiter: "The ConcurrencyLimiter only works with Searcher objects" no more.
    from ray import tune

    scheduler = PredictiveScheduler("qhpo", max_epochs=6, predictor="svr", random_state=0, explain=True)
    running = _MostRunning()
    reports = _EpochReports()
    tuner = tune.Tuner(
        tune.with_resources(_train_function, {"cpu": 0.5}),
        param_space={"x": tune.grid_search([0.3, 0.9, 0.4, 0.8, 0.5, 0.7])},
        tune_config=tune.TuneConfig(
            metric="accuracy",
            mode="max",
            scheduler=scheduler,
            search_alg=RunningTrialLimiter(None, 2, scheduler),
        ),
        run_config=tune.RunConfig(storage_path=str(tmp_path), verbose=0, callbacks=[running, reports]),
    )
    results = tuner.fit()
    assert len(results) == 6 and not results.errors and running.most <= 2
    views = scheduler.trial_views()
    assert len(views) == 6 and {v.status for v in views} <= {TrialStatus.COMPLETE, TrialStatus.STOPPED}
    assert max(views, key=lambda v: v.params["x"]).status == TrialStatus.COMPLETE
    for view in views:  # a curve is the trainable's, epoch by epoch, across any pause
        np.testing.assert_allclose(view.curve, [view.params["x"] * (1 - 0.7**e) for e in range(1, view.epochs + 1)])
    assert any(decision == "pause" for _, _, decision in scheduler.decisions_)  # freeze-thaw on Ray
    resumed = [key for key, epoch, decision in scheduler.decisions_ if decision == "resume"]
    for key in resumed:  # a resumed trial restarted from its checkpoint: no epoch reported twice
        epochs = [e for k, e in reports.seen if k == key]
        assert epochs == sorted(set(epochs)) == list(range(1, max(epochs) + 1))


class _EpochReports(Callback):
    def __init__(self):
        self.seen: list[tuple[str, int]] = []

    def on_trial_result(self, iteration, trials, trial, result, **info):
        self.seen.append((trial.trial_id, int(result["epoch"])))
