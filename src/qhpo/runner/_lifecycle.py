"""``qhpo run`` from start to end, whatever runs the trials: one lifecycle and the backend
protocol that the Optuna backend (:class:`qhpo.runner.OptunaBackend`) and the Ray backend
(:class:`qhpo.ray.RayBackend`) implement.

:func:`run_search` does, in order::

    check the settings -> fetch the data -> open the storage -> backend.prepare
    -> create (or load) the study -> backend.run -> test the best configuration once
    -> summary -> plots

and the backend only runs the trials: what it must read before the study exists
(``prepare``), the training until the search ends (``run``), and what the end means for
the exit status (``exit_status``).
"""

from __future__ import annotations

import sys
from pathlib import Path
from typing import NamedTuple, Protocol

import optuna

from qhpo._errors import QhpoError
from qhpo.optuna import checkpoint_key
from qhpo.runner._budget import Budget, budget_summary
from qhpo.runner._config import RunConfig
from qhpo.runner._plots import draw_plots
from qhpo.runner._settings_checks import check_config
from qhpo.runner._storage import StorageLocation, checkpoint_folder, connection_errors, resolve_storage
from qhpo.runner._study import create_study, search_space
from qhpo.runner._summary import TEST_ATTR, SearchSummary, print_summary, summarize
from qhpo.runner._trial import checkpoint_path, trial_config


class SearchRun(NamedTuple):
    """What a backend's run leaves to the report."""

    #: The study to report: the one the backend was given, or the same study loaded again
    #: where the backend wrote it through a storage of its own.
    study: optuna.Study
    #: Device that tests the best configuration: the run's ``--device``, or ``"auto"`` for the
    #: driver's own when the trials trained elsewhere.
    test_device: str
    #: Where else the run keeps its records, for the closing line ("" for nowhere else).
    records: str = ""


class SearchBackend(Protocol):
    """What runs the trials of a ``qhpo run`` search; :func:`run_search` does every other step.

    A backend's own settings are checked with all the others by :func:`check_config`
    (``RunConfig.backend`` names the backend), before anything is fetched or created.
    """

    def prepare(self, config: RunConfig, location: StorageLocation) -> None:
        """Read or check what must be sound before the study exists; one sentence when it is not."""

    def run(self, config: RunConfig, location: StorageLocation, study: optuna.Study) -> SearchRun:
        """Train the search's trials, or resume them, until the search ends."""

    def exit_status(self, summary: SearchSummary, config: RunConfig) -> int:
        """0 when the search ended, 1 when it has to be run again."""


def run_search(config: RunConfig, backend: SearchBackend) -> SearchSummary:
    """Run (or resume) the search that ``config`` describes, its trials run by ``backend``.

    Returns:
        The summary of the study at the end (``backend.exit_status`` turns it into the
        command's exit status).
    """
    check_config(config)
    space = search_space(config.space)
    config = config.with_(data_dir=prepare_data(config))
    location = resolve_storage(config.storage, config.run_dir)
    backend.prepare(config, location)
    with connection_errors(location):
        study = create_study(config, location, space)
        return _report(config, location, backend.run(config, location, study))


def _report(config: RunConfig, location: StorageLocation, ran: SearchRun) -> SearchSummary:
    """Test the best configuration once, summarise, plot."""
    study = ran.study
    try:
        evaluate_best_on_test(study, config.with_(device=ran.test_device), location)
    except QhpoError as error:  # the search's results stand without the test figure
        status_console(config).print(f"qhpo: the best configuration was not tested: {error}", highlight=False)
    summary = summarize(study, max_epochs=config.epochs, target_trials=config.trials)
    if config.progress:
        from rich.console import Console

        print_summary(summary, Console(width=None if sys.stdout.isatty() else 120, highlight=False))
        if config.budget is not None:
            print(budget_summary(study, Budget.parse(config.budget)))
    paths = draw_plots(study, location.run_dir / config.study, max_epochs=config.epochs)
    if config.progress:
        records = f"; {ran.records}" if ran.records else ""
        print(f"plots: {paths[0]} and {paths[1]}; study {config.study!r} in {location.describe()}{records}")
    return summary


def status_console(config: RunConfig):
    """The console of a run's messages: standard error, silent under ``--quiet``."""
    from rich.console import Console

    return Console(stderr=True, quiet=not config.progress, soft_wrap=True)


def prepare_data(config: RunConfig) -> Path:
    """The data folder, fetched first with ``--download``; one sentence when it is missing."""
    from qhpo.workload import BATCHES_FOLDER, download_cifar10, remove_partial_downloads, resolve_data_dir

    root = resolve_data_dir(config.data_dir)
    remove_partial_downloads(root)
    if config.download:
        download_cifar10(root, progress=config.progress)
    if not (root / BATCHES_FOLDER).is_dir():
        raise QhpoError(
            f"CIFAR-10 was not found: {root} has no {BATCHES_FOLDER} folder; pass --data-dir with the folder that "
            f"contains {BATCHES_FOLDER}, or --download to fetch it there."
        )
    return root


def evaluate_best_on_test(study: optuna.Study, config: RunConfig, location: StorageLocation) -> dict | None:
    """Test accuracy of the best complete trial, measured once and stored in the study.

    The test split is read here only: never by a decision. A resumed run that finds the same
    best trial reuses the stored figure.
    """
    complete = study.get_trials(deepcopy=False, states=(optuna.trial.TrialState.COMPLETE,))
    if not complete:
        return None
    best = study.best_trial
    stored = study.user_attrs.get(TEST_ATTR)
    if stored and stored.get("trial") == best.number:
        return stored
    from qhpo.workload import TrialTrainer, load_cifar10, resolve_device

    path = checkpoint_path(checkpoint_folder(location, config.study, config.checkpoint_dir), checkpoint_key(best))
    if not path.exists():
        return stored
    device = resolve_device(config.device)
    data = load_cifar10(
        config.data_dir, subset=config.subset, val_size=config.val_size, split_seed=config.split_seed, device=device
    )
    trainer = TrialTrainer.from_checkpoint(
        path, trial_config(best, search_space(config.space)), data, device=device, precision=config.precision
    )
    result = {
        "trial": best.number,
        "accuracy": float(trainer.test_accuracy()),
        "images": len(data.test),
        "validation_accuracy": float(best.value),
    }
    study.set_user_attr(TEST_ATTR, result)
    return result
