"""The one lifecycle of ``qhpo run`` (``qhpo.runner.run_search``) with a backend of its own:
what a new backend implements, and every step the lifecycle does around it."""

from __future__ import annotations

import optuna
import pytest

from qhpo import QhpoError
from qhpo.optuna import checkpoint_key
from qhpo.runner import CHECKPOINT_ATTR, RunConfig, SearchRun, checkpoint_path, run_search, search_space


class RecordedCurves:
    """A backend whose trials are curves told to the study as they are: the protocol's three
    methods, and the order in which the lifecycle calls them."""

    def __init__(self, finals: list[float]) -> None:
        self.finals, self.steps = finals, []

    def prepare(self, config, location) -> None:
        stored = optuna.get_all_study_names(location.open())
        self.steps.append(("prepare", config.study in stored))

    def run(self, config, location, study) -> SearchRun:
        self.steps.append(("run", study.study_name))
        space = search_space(config.space)
        for final in self.finals:
            trial = study.ask()
            space.suggest(trial)
            trial.set_user_attr(CHECKPOINT_ATTR, trial.number)
            for epoch in range(1, config.epochs + 1):
                trial.report(final * epoch / config.epochs, epoch)
            study.tell(trial, final)
        return SearchRun(study, test_device=config.device, records="curves told by the test")

    def exit_status(self, summary, config) -> int:
        return 0 if summary.complete >= config.trials else 1


def _config(tmp_path, cifar_dir, **changes) -> RunConfig:
    settings = dict(
        study="s",
        storage=str(tmp_path / "q.db"),
        trials=2,
        epochs=3,
        subset=256,
        val_size=250,
        device="cpu",
        policy="none",
        predictor="svr",
        data_dir=cifar_dir,
    )
    return RunConfig(**{**settings, **changes})


def test_the_backend_runs_between_the_study_and_the_report(tmp_path, cifar_dir, capsys):
    backend = RecordedCurves([0.4, 0.6])
    config = _config(tmp_path, cifar_dir)
    summary = run_search(config, backend)
    assert backend.steps == [("prepare", False), ("run", "s")]  # prepared before the study existed
    assert (summary.complete, summary.pruned, summary.failed) == (2, 0, 0) and summary.best[0].value == 0.6
    assert summary.test is None  # no checkpoint of the best trial: nothing was tested
    assert backend.exit_status(summary, config) == 0
    assert (tmp_path / "s" / "s-curves.png").stat().st_size > 0 and (tmp_path / "s" / "s-epochs.png").exists()
    closing = capsys.readouterr().out.strip().splitlines()[-1]
    assert closing.startswith("plots: ") and closing.endswith(
        f"study 's' in sqlite:///{config.storage}; curves told by the test"
    )


def test_bad_settings_never_reach_the_backend(tmp_path, cifar_dir):
    backend = RecordedCurves([0.5])
    with pytest.raises(QhpoError, match="unknown policy 'nope'"):
        run_search(_config(tmp_path, cifar_dir, policy="nope"), backend)
    with pytest.raises(QhpoError, match="Optuna pruner and runs with --backend optuna"):
        run_search(_config(tmp_path, cifar_dir, policy="median", backend="ray"), backend)
    assert backend.steps == [] and not (tmp_path / "q.db").exists()


def test_an_unreadable_best_checkpoint_costs_only_the_test_figure(tmp_path, cifar_dir, capsys):
    backend = RecordedCurves([0.3, 0.7])
    config = _config(tmp_path, cifar_dir)
    folder = tmp_path / "s" / "checkpoints"
    folder.mkdir(parents=True)
    checkpoint_path(folder, 1).write_bytes(b"not a checkpoint")
    summary = run_search(config, backend)
    study = optuna.load_study(study_name="s", storage=f"sqlite:///{tmp_path / 'q.db'}")
    assert checkpoint_key(study.best_trial) == 1 and summary.test is None and summary.complete == 2
    err = capsys.readouterr().err
    assert "qhpo: the best configuration was not tested: " in err and "Traceback" not in err
