"""Searches of the CNN on CIFAR-10 with predictive early stopping: what ``qhpo run`` and
``qhpo report`` do, usable from Python as well."""

from qhpo._optuna_schema import (
    BUDGET_CLOCK_PREFIX,
    BUDGET_CUT_ATTR,
    CHECKPOINT_ATTR,
    EPOCH_SECONDS_ATTR,
    FAILURE_ATTR,
    RAY_BUDGET_ATTR,
    RAY_BUDGET_EPOCHS_ATTR,
)
from qhpo.runner._budget import Budget, epochs_of, fits_new_configuration, union_length
from qhpo.runner._config import BACKENDS, OPTUNA_BASELINES, PRESETS, Preset, RunConfig, preset
from qhpo.runner._lifecycle import SearchBackend, SearchRun, evaluate_best_on_test, prepare_data, run_search
from qhpo.runner._plots import draw_plots
from qhpo.runner._recovery import GRACE_PERIOD, HEARTBEAT_INTERVAL, recover_interrupted_trials
from qhpo.runner._search import OptunaBackend, default_workers, run_optuna_search
from qhpo.runner._settings_checks import check_config
from qhpo.runner._storage import StorageLocation, checkpoint_folder, load_study, resolve_storage
from qhpo.runner._study import create_study, hpo_sampler, make_pruner, search_space
from qhpo.runner._summary import SearchSummary, print_summary, summarize
from qhpo.runner._trial import checkpoint_path, trial_seed

__all__ = [
    "BACKENDS",
    "BUDGET_CLOCK_PREFIX",
    "BUDGET_CUT_ATTR",
    "Budget",
    "CHECKPOINT_ATTR",
    "EPOCH_SECONDS_ATTR",
    "FAILURE_ATTR",
    "GRACE_PERIOD",
    "HEARTBEAT_INTERVAL",
    "OPTUNA_BASELINES",
    "OptunaBackend",
    "PRESETS",
    "RAY_BUDGET_ATTR",
    "RAY_BUDGET_EPOCHS_ATTR",
    "Preset",
    "RunConfig",
    "SearchBackend",
    "SearchRun",
    "SearchSummary",
    "StorageLocation",
    "check_config",
    "checkpoint_folder",
    "checkpoint_path",
    "create_study",
    "default_workers",
    "draw_plots",
    "evaluate_best_on_test",
    "epochs_of",
    "fits_new_configuration",
    "hpo_sampler",
    "load_study",
    "make_pruner",
    "preset",
    "prepare_data",
    "print_summary",
    "recover_interrupted_trials",
    "resolve_storage",
    "run_optuna_search",
    "run_search",
    "search_space",
    "summarize",
    "trial_seed",
    "union_length",
]
