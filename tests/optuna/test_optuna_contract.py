"""Optuna's generic pruner tests (tests/pruners_tests of Optuna), adapted to PredictivePruner.

Optuna's own tests check each pruner on the same points: the first trial, a trial without
values, both directions, NaN, skipped steps, several studies, a study loaded in another
process, pickling, PatientPruner wrapping and n_jobs threads. Here the same points, with
qhpo's documented answers, plus the rule a plain loop runs (the replay's ``qhpo-stop``) and
freeze-thaw through :class:`qhpo.optuna.ResumePausedTrials`.
"""

from __future__ import annotations

import copy
import pickle
import subprocess
import sys
import textwrap
import warnings

import joblib
import numpy as np
import optuna
import pytest
from optuna.trial import TrialState

from qhpo.optuna import (
    DECISIONS_ATTR,
    MAX_EPOCHS_ATTR,
    PAUSED_ATTR,
    RESUME_OF_ATTR,
    STOP_ATTR,
    PredictivePruner,
    ResumePausedTrials,
    TrialCheckpoint,
)
from qhpo.policies import make_policy

optuna.logging.set_verbosity(optuna.logging.WARNING)

E = 20  # epochs of a full trial here: rungs 1, 2, 4, 8, 16 (min_resource E/20, eta 2)


def rising(x: float, epochs: int = E) -> list[float]:
    """A learning curve that rises to ``x``."""
    return [x * (1.0 - 0.8**e) for e in range(1, epochs + 1)]


def run(study: optuna.Study, curve, steps=None, *, prune_every_step: bool = True) -> optuna.trial.FrozenTrial:
    """One trial reporting ``curve[s - 1]`` at each step ``s`` of ``steps`` (default 1..len),
    asking ``should_prune`` after each; told PRUNED or COMPLETE."""
    trial = study.ask()
    steps = range(1, len(curve) + 1) if steps is None else steps
    for step in steps:
        trial.report(float(curve[step - 1]), step)
        if prune_every_step and trial.should_prune():
            study.tell(trial, state=TrialState.PRUNED)
            return study.trials[trial.number]
    study.tell(trial, float(curve[steps[-1] - 1]))
    return study.trials[trial.number]


def sign(direction: str) -> float:
    return 1.0 if direction == "maximize" else -1.0


# -- Optuna's generic points ---------------------------------------------------------------
@pytest.mark.parametrize("direction", ["maximize", "minimize"])
def test_the_first_trial_is_never_pruned(direction):
    study = optuna.create_study(direction=direction, pruner=PredictivePruner(max_epochs=E))
    trial = study.ask()
    for epoch, value in enumerate(rising(0.1), start=1):
        trial.report(sign(direction) * value, epoch)
        assert not trial.should_prune()  # alone at every rung: the best of one


def test_a_trial_without_values_is_not_pruned():
    study = optuna.create_study(direction="maximize", pruner=PredictivePruner(max_epochs=E))
    run(study, rising(0.9))
    assert not study.ask().should_prune()


@pytest.mark.parametrize("direction", ["maximize", "minimize"])
def test_both_directions_prune_the_worse_trial(direction):
    s = sign(direction)
    study = optuna.create_study(direction=direction, pruner=PredictivePruner(max_epochs=E))
    assert run(study, [s * v for v in rising(0.9)]).state == TrialState.COMPLETE
    worse = run(study, [s * v for v in rising(0.5)])
    assert worse.state == TrialState.PRUNED and len(worse.intermediate_values) == 1  # the first rung
    stop = worse.user_attrs[STOP_ATTR]
    assert stop["decision"] == "stop" and stop["epoch"] == stop["step"] == 1
    assert stop["reason"].startswith("stopped by policy 'qhpo-stop' at epoch 1: observed value")
    assert run(study, [s * v for v in rising(0.95)]).state == TrialState.COMPLETE  # the better one goes on
    policy = study.pruner.policy_for(study)
    assert policy.mode == ("max" if direction == "maximize" else "min") and policy.name == "qhpo-stop"


@pytest.mark.parametrize("bad", [float("nan"), float("inf")])
def test_a_non_finite_value_prunes_at_once_even_the_first_trial(bad):
    study = optuna.create_study(direction="maximize", pruner=PredictivePruner())
    trial = study.ask()
    trial.report(0.5, 1)
    assert not trial.should_prune()
    trial.report(bad, 2)
    assert trial.should_prune()  # documented: as Optuna's pruners prune a NaN
    record = study._storage.get_trial(trial._trial_id).user_attrs[STOP_ATTR]
    assert record["epoch"] == record["step"] == 2 and "is not finite" in record["reason"]


def test_skipped_steps_are_judged_at_the_rungs_by_step():
    # Validation every 3rd epoch (steps 3, 6, 9, ...), 100 epochs: rungs 5, 10, 20, 40, 80.
    study = optuna.create_study(direction="maximize", pruner=PredictivePruner(max_epochs=100))
    every_third = list(range(3, 100, 3)) + [100]
    best = run(study, rising(0.9, 100), every_third)
    assert best.state == TrialState.COMPLETE
    worse = run(study, rising(0.5, 100), every_third)
    # rung 5 is reached by step 6, the 2nd report (counting reports it was judged at the 5th)
    assert worse.state == TrialState.PRUNED and max(worse.intermediate_values) == 6
    stop = worse.user_attrs[STOP_ATTR]
    assert (stop["epoch"], stop["step"]) == (5, 6)
    # the curve the policy read is placed by step, gaps carried forward
    view = next(v for v in study.pruner.trial_views(study) if v.key == worse.number)
    assert len(view.curve) == 6 and view.curve[4] == view.curve[2] == pytest.approx(rising(0.5, 100)[2])
    # a trial whose last step is the budget is never pruned there, however it ranks
    last = study.ask()
    for step in every_third:
        last.report(float(rising(0.9, 100)[step - 1]) if step < 100 else 0.0, step)
        if step < 100:
            assert not last.should_prune()
    assert not last.should_prune()


def test_steps_out_of_order_or_beyond_the_budget_warn_once():
    study = optuna.create_study(direction="maximize", pruner=PredictivePruner(max_epochs=E))
    trial = study.ask()
    trial.report(0.5, 5)
    trial.should_prune()
    trial.report(0.4, 3)
    with pytest.warns(RuntimeWarning, match="after step 5"):
        trial.should_prune()
    trial.report(0.3, 2)
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        trial.should_prune()  # once
    trial.report(0.6, 3 * E)
    with pytest.warns(RuntimeWarning, match="beyond max_epochs=20"):
        trial.should_prune()


def test_one_pruner_keeps_each_study_apart():
    pruner = PredictivePruner()
    up = optuna.create_study(direction="maximize", pruner=pruner)
    down = optuna.create_study(direction="minimize", pruner=pruner)
    up.set_user_attr(MAX_EPOCHS_ATTR, E)
    down.set_user_attr(MAX_EPOCHS_ATTR, 2 * E)
    run(up, rising(0.9))
    run(down, [-v for v in rising(0.9, 2 * E)])
    # -0.5 ranks first in the minimising study, last in the maximising one
    assert run(down, [-v for v in rising(0.95, 2 * E)]).state == TrialState.COMPLETE
    assert run(up, rising(0.5)).state == TrialState.PRUNED
    a, b = pruner.policy_for(up), pruner.policy_for(down)
    assert a is not b and (a.mode, a.max_epochs, b.mode, b.max_epochs) == ("max", E, "min", 2 * E)
    assert [len(v.curve) for v in pruner.trial_views(down)] == [2 * E, 2 * E]  # none of the other study's curves


def test_the_budget_comes_from_the_study_or_the_largest_step_and_never_freezes_short():
    pruner = PredictivePruner()
    study = optuna.create_study(direction="maximize", pruner=pruner)
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # no "max_epochs ... got 0", no pruner error
        empty = study.ask()
        study.tell(empty, 0.0)  # a complete trial that reported nothing
        short = run(study, rising(0.9, 3))  # a short first trial
        assert short.state == TrialState.COMPLETE and pruner.policy_for(study).max_epochs == 3
        run(study, rising(0.9))  # the longest so far: the budget grows with it
        worse = run(study, rising(0.5))
    assert worse.state == TrialState.PRUNED
    stop = worse.user_attrs[STOP_ATTR]
    assert (stop["max_epochs"], stop["max_epochs_from"]) == (E, "largest step reported so far")
    attr = optuna.create_study(direction="maximize", pruner=PredictivePruner())
    attr.set_user_attr(MAX_EPOCHS_ATTR, E)
    run(attr, rising(0.9, 3))
    assert attr.pruner.policy_for(attr).max_epochs == E
    assert run(attr, rising(0.5)).user_attrs[STOP_ATTR]["max_epochs_from"] == "study user attribute"


def test_the_pruner_pickles_copies_and_goes_through_joblib(tmp_path):
    study = optuna.create_study(direction="maximize", pruner=PredictivePruner(max_epochs=E))
    run(study, rising(0.9))
    run(study, rising(0.5))
    restored = pickle.loads(pickle.dumps(study.pruner))
    copied = copy.deepcopy(study.pruner)
    joblib.dump(study, tmp_path / "study.pkl")
    loaded = joblib.load(tmp_path / "study.pkl")
    for pruner in (restored, copied, loaded.pruner):
        assert pruner.policy_ is None and pruner.rule == "qhpo-stop" and pruner.max_epochs == E
        again = optuna.create_study(direction="maximize", pruner=pruner)
        run(again, rising(0.9))
        assert run(again, rising(0.5)).state == TrialState.PRUNED  # decides anew from its study
    assert run(loaded, rising(0.4)).state == TrialState.PRUNED
    policy = make_policy("qhpo", max_epochs=E, predictor="svr", background=True)
    with pytest.raises(TypeError, match="build it from a policy name"):
        pickle.dumps(PredictivePruner(policy))


LOADER = textwrap.dedent("""
    import sys, optuna
    from qhpo.optuna import PredictivePruner
    study = optuna.load_study(study_name="s", storage=sys.argv[1], pruner=PredictivePruner())
    trial = study.ask()
    for epoch in range(1, 21):
        trial.report(0.3 * (1 - 0.8 ** epoch), epoch)
        if trial.should_prune():
            study.tell(trial, state=optuna.trial.TrialState.PRUNED)
            break
    print(trial.number)
""")


def test_a_study_loaded_in_a_second_process_prunes_from_the_storage(tmp_path):
    storage = f"sqlite:///{tmp_path / 's.db'}"
    study = optuna.create_study(study_name="s", storage=storage, direction="maximize", pruner=PredictivePruner())
    study.set_user_attr(MAX_EPOCHS_ATTR, E)
    for x in (0.9, 0.8):
        run(study, rising(x))
    script = tmp_path / "loader.py"
    script.write_text(LOADER)
    done = subprocess.run([sys.executable, str(script), storage], capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, done.stderr
    trial = optuna.load_study(study_name="s", storage=storage).trials[int(done.stdout.split()[-1])]
    assert trial.state == TrialState.PRUNED and trial.user_attrs[STOP_ATTR]["epoch"] == 1


def test_patient_pruner_wrapping():
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", optuna.exceptions.ExperimentalWarning)
        patient = optuna.pruners.PatientPruner(PredictivePruner(max_epochs=E), patience=2)
    study = optuna.create_study(direction="maximize", pruner=patient)
    run(study, rising(0.9))
    improving = run(study, rising(0.5))
    assert improving.state == TrialState.COMPLETE  # it kept improving: the wrapped pruner was never asked
    falling = run(study, [0.1 - 0.001 * e for e in range(E)])
    # worse for 3 steps than at step 1: asked first at step 4, it judges rungs 1, 2 and 4 in turn
    assert falling.state == TrialState.PRUNED and max(falling.intermediate_values) == 4
    assert (falling.user_attrs[STOP_ATTR]["epoch"], falling.user_attrs[STOP_ATTR]["step"]) == (1, 4)


def test_n_jobs_threads():
    rng = np.random.default_rng(0)
    xs = iter(rng.uniform(0.2, 1.0, 40))

    def objective(trial):
        curve = rising(float(next(xs)))
        trial.suggest_float("lr", 1e-3, 1.0, log=True)
        for epoch, value in enumerate(curve, start=1):
            trial.report(value, epoch)
            if trial.should_prune():
                raise optuna.TrialPruned()
        trial.study.pruner.flush()
        return curve[-1]

    study = optuna.create_study(direction="maximize", pruner=PredictivePruner(max_epochs=E, random_state=0))
    with warnings.catch_warnings():
        warnings.simplefilter("error", RuntimeWarning)
        study.optimize(objective, n_trials=40, n_jobs=4)
    states = [t.state for t in study.trials]
    assert TrialState.FAIL not in states and states.count(TrialState.PRUNED) >= 10
    rungs = set(study.pruner.policy_for(study).decision_epochs())
    for trial in study.trials:
        if trial.state == TrialState.PRUNED:
            assert trial.user_attrs[STOP_ATTR]["epoch"] in rungs
            assert trial.user_attrs[DECISIONS_ATTR][-1] == trial.user_attrs[STOP_ATTR]


# -- the rule a plain loop runs, and freeze-thaw ----------------------------------------------
def test_a_plain_loop_runs_the_replays_qhpo_stop_rule(curve_table_path):
    from qhpo.curves import read_curve_table
    from qhpo.replay import PolicyAgent, simulate

    table = read_curve_table(curve_table_path).take(range(40)).truncate(30)
    policy = make_policy("qhpo-stop", max_epochs=table.epochs, mode=table.mode, predictor="svr", random_state=0)
    replayed = simulate(table.curves, PolicyAgent(policy, table.curves, table.param_rows()), workers=1)
    assert replayed.cost < table.n_trials * table.epochs  # the rule stopped trials
    pruner = PredictivePruner(max_epochs=table.epochs, random_state=0, policy_options={"background": False})
    assert pruner.rule == "qhpo-stop" and not pruner.freeze_thaw
    study = optuna.create_study(direction="maximize", pruner=pruner)
    rows = table.param_rows()
    space = {k: optuna.distributions.CategoricalDistribution(sorted({r[k] for r in rows})) for k in rows[0]}
    trained = []
    for row, curve in enumerate(table.curves):
        study.enqueue_trial(rows[row])  # the row's hyperparameters, which the predictor reads as in the replay
        trial = study.ask(space)
        for epoch, value in enumerate(curve, start=1):
            trial.report(float(value), epoch)
            if epoch < table.epochs and trial.should_prune():
                study.tell(trial, state=TrialState.PRUNED)
                break
        else:
            study.tell(trial, float(curve[-1]))
        trained.append(epoch)
    np.testing.assert_array_equal(trained, replayed.epochs_trained)
    assert any(r.get("predicted_final") is not None for t in study.trials for r in t.user_attrs.get(DECISIONS_ATTR, []))


def test_freeze_thaw_arguments_are_checked():
    assert PredictivePruner("qhpo", freeze_thaw=True).rule == "qhpo"
    assert PredictivePruner("poster").rule == "poster"
    with pytest.raises(ValueError, match="freeze_thaw=True needs a policy that pauses"):
        PredictivePruner("poster", freeze_thaw=True)
    with pytest.raises(ValueError, match="set by the freeze_thaw argument"):
        PredictivePruner("qhpo", policy_options={"resume": True})
    with pytest.raises(ValueError, match="freeze_thaw"):
        PredictivePruner("qhpo", freeze_thaw="yes")


def checkpointed(curves, folder):
    """An objective that replays row ``checkpoint key`` of ``curves`` with the checkpoint hook."""
    import json

    def objective(trial):
        trial.suggest_float("x", 0.0, 1.0)
        checkpoint = TrialCheckpoint(trial, folder, suffix=".json")
        done = json.loads(checkpoint.path.read_text()) if checkpoint.resumes else []
        checkpoint.report_again(done)
        curve = curves[checkpoint.key % len(curves)]
        for epoch in range(len(done) + 1, len(curve) + 1):
            done.append(float(curve[epoch - 1]))
            checkpoint.path.write_text(json.dumps(done))
            trial.report(done[-1], epoch)
            if trial.should_prune():
                checkpoint.pruned()
                raise optuna.TrialPruned()
        trial.study.pruner.flush()
        return done[-1]

    return objective


def test_freeze_thaw_resumes_paused_trials_through_the_callback(tmp_path, curve_table_path):
    from qhpo.curves import read_curve_table
    from qhpo.optuna import configuration_counts

    curves = read_curve_table(curve_table_path).take(range(30)).truncate(20).curves
    pruner = PredictivePruner("qhpo", freeze_thaw=True, max_epochs=20, random_state=0)
    study = optuna.create_study(direction="maximize", pruner=pruner, sampler=optuna.samplers.RandomSampler(0))
    with warnings.catch_warnings():
        warnings.simplefilter("error", RuntimeWarning)  # no "no one asks" warning
        study.optimize(checkpointed(curves, tmp_path), callbacks=[ResumePausedTrials(n_configurations=30)])
    trials = study.trials
    assert configuration_counts(trials) == (30, 0)
    paused = [t for t in trials if PAUSED_ATTR in t.user_attrs]
    resumptions = [t for t in trials if RESUME_OF_ATTR in t.user_attrs]
    assert paused and resumptions and all(not t.state == TrialState.WAITING for t in trials)
    for resumption in resumptions:
        origin = trials[resumption.user_attrs[RESUME_OF_ATTR]]
        values = [resumption.intermediate_values[e] for e in sorted(resumption.intermediate_values)]
        row = origin.user_attrs["qhpo.checkpoint"] % len(curves)  # a resumption paused again is resumed in turn
        assert values == list(curves[row][: len(values)]) and len(values) > len(origin.intermediate_values)
        assert resumption.user_attrs["qhpo.resume"]["reason"].startswith("resumed by policy 'qhpo'")
    assert pruner.policy_for(study).name == "qhpo"
    # a stopped trial's checkpoint is gone, a paused or complete one's is kept
    carried = {t.user_attrs["qhpo.checkpoint"]: t for t in trials}
    for key, trial in carried.items():
        stopped = trial.state == TrialState.PRUNED and PAUSED_ATTR not in trial.user_attrs
        assert (tmp_path / f"trial-{key}.json").exists() != stopped


def test_freeze_thaw_without_anyone_resuming_warns_once(tmp_path, curve_table_path):
    from qhpo.curves import read_curve_table

    curves = read_curve_table(curve_table_path).take(range(12)).truncate(20).curves
    study = optuna.create_study(
        direction="maximize", pruner=PredictivePruner("qhpo", freeze_thaw=True, max_epochs=20, random_state=0)
    )
    with pytest.warns(RuntimeWarning, match="no one asks which paused trials to resume") as caught:
        study.optimize(checkpointed(curves, tmp_path), n_trials=12)
    assert sum("no one asks" in str(w.message) for w in caught) == 1


def test_a_retry_is_judged_from_its_last_reported_step_a_late_first_call_at_every_rung():
    from qhpo.optuna import RETRY_OF_ATTR

    study = optuna.create_study(direction="maximize", pruner=PredictivePruner(max_epochs=E))
    run(study, rising(0.9))
    late = study.ask()  # asks first after step 3: rungs 1 and 2 are judged then
    for step in (1, 2, 3):
        late.report(rising(0.5)[step - 1], step)
    assert late.should_prune()
    assert study._storage.get_trial(late._trial_id).user_attrs[STOP_ATTR]["epoch"] == 1
    study.tell(late, state=TrialState.PRUNED)
    # a retry reports its checkpoint's epochs again: the trial it retries was judged before them
    study.enqueue_trial({}, user_attrs={RETRY_OF_ATTR: 0})
    retry = study.ask()
    for step in (1, 2, 3):
        retry.report(rising(0.5)[step - 1], step)
    assert not retry.should_prune()
    retry.report(rising(0.5)[3], 4)
    assert retry.should_prune()
    assert study._storage.get_trial(retry._trial_id).user_attrs[STOP_ATTR]["epoch"] == 4
