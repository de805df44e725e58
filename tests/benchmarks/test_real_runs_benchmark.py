"""benchmarks/real_runs.py: the figures it reads from a finished study, and the replay it sets beside them."""

from __future__ import annotations

import optuna

from qhpo.optuna import MAX_EPOCHS_ATTR, PAUSED_ATTR, RESUME_OF_ATTR
from qhpo.runner._summary import TEST_ATTR
from repo_scripts import load_script


def _script():
    return load_script("benchmarks/real_runs.py", "qhpo_real_runs_benchmark")


def test_study_figures_count_a_paused_and_resumed_configuration_once(tmp_path):
    study = optuna.create_study(storage=f"sqlite:///{tmp_path / 's.db'}", study_name="s", direction="maximize")
    study.set_user_attr(MAX_EPOCHS_ATTR, 4)

    def run(values, state, attrs=None):
        trial = study.ask()
        for name, value in (attrs or {}).items():
            trial.set_user_attr(name, value)
        for epoch, value in enumerate(values, start=1):
            trial.report(value, epoch)
        study.tell(trial, values[-1] if state == optuna.trial.TrialState.COMPLETE else None, state=state)

    complete, pruned = optuna.trial.TrialState.COMPLETE, optuna.trial.TrialState.PRUNED
    run([0.1, 0.2, 0.3, 0.4], complete)
    run([0.1, 0.1], pruned, {PAUSED_ATTR: {"epoch": 2}})  # paused, resumed by trial 3
    run([0.0], pruned)
    run([0.1, 0.1, 0.5, 0.6], complete, {RESUME_OF_ATTR: 1})
    study.set_user_attr(TEST_ATTR, {"trial": 3, "accuracy": 0.55})
    figures = _script().study_figures(study, rule="qhpo", seed=0, seconds=1.0)
    assert figures["configurations"] == 3
    assert (figures["epochs_trained"], figures["epochs_full"]) == (9, 12)  # 4 + 1 + 4: trial 1 counted in trial 3
    assert figures["cost_fraction"] == 0.75
    assert (figures["paused"], figures["resumed"]) == (1, 1)
    assert (figures["best_trial"], figures["best_validation"], figures["test_accuracy"]) == (3, 0.6, 0.55)


def test_the_replay_beside_the_runs_cuts_the_table_to_their_epochs():
    replay = _script().replay_figures(["none", "median"], trials=12, epochs=8, seeds=2, min_completed=6)
    assert replay["none"] == {"cost_fraction": 1.0, "regret": 0.0, "best_kept": 1.0}
    assert 0 < replay["median"]["cost_fraction"] < 1.0
