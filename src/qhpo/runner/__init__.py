"""Searches of the CNN on CIFAR-10 with predictive early stopping: what ``qhpo run`` and
``qhpo report`` do, usable from Python as well."""

from qhpo.runner._config import PRESETS, Preset, RunConfig
from qhpo.runner._plots import draw_plots
from qhpo.runner._search import check_config, run_search
from qhpo.runner._storage import StorageLocation, load_study, recover_interrupted_trials, resolve_storage
from qhpo.runner._study import create_study, make_pruner
from qhpo.runner._summary import SearchSummary, print_summary, summarize

__all__ = [
    "PRESETS",
    "Preset",
    "RunConfig",
    "SearchSummary",
    "StorageLocation",
    "check_config",
    "create_study",
    "draw_plots",
    "load_study",
    "make_pruner",
    "print_summary",
    "recover_interrupted_trials",
    "resolve_storage",
    "run_search",
    "summarize",
]
