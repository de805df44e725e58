"""The published baselines in real Optuna studies: Baker et al.'s rule and surestop's ConformalPruner."""

from __future__ import annotations

import numpy as np
import optuna
import pytest
from scipy.stats import norm

from qhpo.curves import read_curve_table
from qhpo.optuna import DECISIONS_ATTR, STOP_ATTR, PredictivePruner
from qhpo.policies import BakerEarlyStopping, Decision, TrialStatus, TrialView, make_policy
from qhpo.replay import draw_order, optuna_pruner, replay_rule

optuna.logging.set_verbosity(optuna.logging.WARNING)


@pytest.fixture(scope="module")
def resnet(curves_dir):
    """ResNet accuracy curves (first 30 epochs) in a fixed shuffled order."""
    table = read_curve_table(curves_dir / "baker_resnet_cifar10.csv").truncate(30)
    return table.take(draw_order(table.n_trials, 60, 0))


def replay_objective(table):
    def objective(trial):
        policy = getattr(trial.study.pruner, "policy_", None)
        if getattr(policy, "service", None) is not None:
            policy.service.wait(60)  # queued fits land first: decisions do not depend on thread timing
        row = trial.number % table.n_trials
        trial.suggest_float("lr", 1e-5, 1e-1, log=True)
        for epoch, value in enumerate(table.curves[row], start=1):
            trial.report(float(value), epoch)
            if trial.should_prune():
                raise optuna.TrialPruned()
        if hasattr(trial.study.pruner, "flush"):
            trial.study.pruner.flush()
        return float(table.curves[row, -1])

    return objective


@pytest.mark.slow
def test_baker_rule_prunes_in_a_real_sqlite_study(tmp_path, resnet):
    pruner = PredictivePruner(
        "baker", max_epochs=resnet.epochs, random_state=0, policy_options={"min_completed": 10, "delta": 0.2}
    )
    study = optuna.create_study(
        storage=f"sqlite:///{tmp_path / 'baker.db'}",
        study_name="baker",
        direction="maximize",
        pruner=pruner,
        sampler=optuna.samplers.RandomSampler(seed=0),
    )
    study.optimize(replay_objective(resnet), n_trials=40)
    states = [t.state for t in study.trials]
    assert all(s == optuna.trial.TrialState.COMPLETE for s in states[:10])  # the training set runs to the end
    pruned = [t for t in study.trials if t.state == optuna.trial.TrialState.PRUNED]
    assert pruned
    for trial in pruned:
        stop = trial.user_attrs[STOP_ATTR]
        assert stop["epoch"] in pruner.policy_.decision_epochs()
        assert "P(final beats the best completed" in stop["reason"] and stop["std"] > 0
        # stopped only when its chance of beating the best completed final was at most delta
        p_beat = float(stop["reason"].split(") = ")[1].split(" <=")[0])
        assert p_beat <= 0.2 and stop["predicted_final"] < stop["threshold"]
        assert trial.user_attrs[DECISIONS_ATTR][-1] == stop


def test_baker_reads_the_gaussian_rule_and_one_hot_categories():
    rng = np.random.default_rng(0)
    t = np.arange(1, 21)
    rows = []
    for i in range(30):
        arch = ["small", "big"][i % 2]
        ceiling = (0.9 if arch == "big" else 0.6) + rng.normal(0, 0.01)
        rows.append((ceiling * (1 - np.exp(-t / 4)), {"lr": float(rng.uniform(0.01, 0.1)), "arch": arch}))
    policy = BakerEarlyStopping(max_epochs=20, min_completed=20, random_state=0)
    done = [TrialView(i, c, p, TrialStatus.COMPLETE) for i, (c, p) in enumerate(rows[:20])]
    verdicts = {}
    for i, (curve, params) in enumerate(rows[20:], start=20):
        view = TrialView(i, curve[:10], params)
        verdicts[params["arch"], i] = policy.decide(view, done + [view])
    assert policy._encoder.columns_ == ["lr", "arch=big", "arch=small"]
    best = max(c[-1] for c, _ in rows[:20])
    for (arch, i), verdict in verdicts.items():
        assert verdict.epoch == 10 and verdict.std > 0 and verdict.threshold == pytest.approx(best)
        assert verdict.predicted == pytest.approx(rows[i][0][-1], abs=0.05)  # the final value, not the prefix
        # the published rule: stop when P(Y_T > y_best) under N(mu, sigma^2) is at most delta
        p_beat = norm.sf(best, loc=verdict.predicted, scale=verdict.std)
        assert verdict.decision == (Decision.STOP if p_beat <= 0.05 else Decision.CONTINUE)
        if arch == "small":  # 0.3 below the best completed: no chance
            assert verdict.decision == Decision.STOP


def test_baker_decisions_are_deterministic_for_a_seed(resnet):
    runs = [replay_rule("baker", resnet, seed=3) for _ in range(2)]
    np.testing.assert_array_equal(runs[0].epochs_trained, runs[1].epochs_trained)
    assert runs[0].complete.sum() >= 20 and runs[0].epochs_trained.sum() < resnet.curves.size
    assert make_policy("baker", max_epochs=30).delta == 0.05


def test_conformal_pruner_with_its_defaults_in_a_real_study(curves_dir):
    table = read_curve_table(curves_dir / "baker_metaqnn_svhn.csv")
    table = table.take(draw_order(table.n_trials, 120, 0))
    pruner = optuna_pruner("conformal", table.epochs)
    assert (pruner.n_calibration, pruner._kw["alpha"]) == (60, 0.05)  # surestop's documented defaults
    study = optuna.create_study(direction="maximize", pruner=pruner, sampler=optuna.samplers.RandomSampler(seed=0))
    study.optimize(replay_objective(table), n_trials=120)
    states = [t.state for t in study.trials]
    assert all(s == optuna.trial.TrialState.COMPLETE for s in states[:60])  # shadow mode: calibration trials
    assert pruner.rule_ is not None and pruner.calibration_trials_ == list(range(60))
    pruned = [t for t in study.trials if t.state == optuna.trial.TrialState.PRUNED]
    assert pruned and all(t.number >= 60 for t in pruned)
    for trial in pruned:  # the rule killed it at the step where its forecast crossed the certified bound
        prefix = np.array([trial.intermediate_values[s] for s in sorted(trial.intermediate_values)])
        assert pruner.rule_.should_kill(prefix)
